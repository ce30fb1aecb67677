/*
 * alerting.h: the worker's alerts (docs/alerts.md): after a checkpoint is
 * stored, the rules of alerts.h on its stored metrics and selections; now
 * and then, the stall rule on every run. New alerts are stored (one per
 * run, step and kind), logged, and published on the hub as `alert`
 * events. Called from the worker thread with its read-write store; never
 * fails: a problem is logged and the analysis goes on.
 */
#ifndef SPECTRUMD_ALERTING_H
#define SPECTRUMD_ALERTING_H

#include <stdbool.h>
#include <stdint.h>

#include "spectrumd/hub.h"
#include "spectrumd/store.h"

struct alerting {
	struct store	*st;
	struct hub	*hub;
	double		 jump_factor;	/* 0: no snr_jump/alpha_jump */
	double		 stall_factor;	/* 0: no stalled */
	unsigned	 churn_window, churn_min;	/* min 0: no churn */
	unsigned	 top_percent;	/* the selections churn reads */
	bool		 include_embeddings;
};

/*
 * The alerts of checkpoint ckpt_id of run (run_id, name), just stored,
 * against its step-predecessor among the run's analysed checkpoints; and
 * those of its analysed step-successor against it (a checkpoint analysed
 * out of order, e.g. by a newest-first backfill, sits between them).
 */
void	 alerting_checkpoint(const struct alerting *al, int64_t run_id,
	    const char *name, int64_t ckpt_id);

/*
 * The stall rule on run (run_id, name) at time now: a stalled alert when
 * it holds and *alerted (the step last alerted for, in memory; -2 at
 * first) is not the run's last step. Returns when the run would stall,
 * if after now; 0 when not known or already past.
 */
double	 alerting_stall(const struct alerting *al, int64_t run_id,
	    const char *name, double now, long long *alerted);

#endif
