/*
 * worker.h: the analysis worker thread. It owns the compute backend and the
 * read-write database handle: it scans run directories when asked, records
 * what it finds, and analyses complete checkpoints newest first, then (with
 * backfill) the older ones while idle. Other threads only call the
 * functions below, which are thread-safe.
 */
#ifndef SPECTRUMD_WORKER_H
#define SPECTRUMD_WORKER_H

#include <stdbool.h>

#include "spectrumd/analyze.h"
#include "spectrumd/common.h"
#include "spectrumd/health.h"
#include "spectrumd/hub.h"
#include "spectrumd/store.h"

#define WORKER_MAX_RUNS 256

struct worker_run {
	const char	*name;
	const char	*dir;
};

struct worker_config {
	unsigned	 top_percent;
	bool		 include_embeddings;
	unsigned	 stickiness;	/* selection hysteresis (ranks) */
	bool		 backfill;
	bool		 reuse;		/* reuse results by fingerprint */
	unsigned	 incomplete_grace_s;	/* incomplete → failed after */
	double		 alert_jump_factor;	/* alerts (docs/alerts.md) */
	double		 alert_stall_factor;
	unsigned	 alert_churn_window, alert_churn_min;
	struct health	*health;	/* database state, counters; or NULL */
	/* Called (from the worker thread) once the database file is gone:
	 * the daemon must stop. NULL: the worker just idles. */
	void		(*fatal)(void *arg);
	void		*fatal_arg;
};

struct worker;

/*
 * Starts the worker thread. It takes ownership of st and an (both closed
 * by worker_stop, also when this call fails). hub and wc must outlive the
 * worker. Returns SPD_OK and *out, or SPD_ENOMEM / SPD_EINTERNAL.
 */
enum spd_err	 worker_start(struct store *st, struct analyzer *an,
		    struct hub *hub, const struct worker_config *wc,
		    struct worker **out, struct spd_errbuf *eb);

/*
 * Replaces the set of runs (copied; at most WORKER_MAX_RUNS). Every run is
 * scanned when the thread adopts the set. Returns SPD_OK, SPD_EINVAL (too
 * many) or SPD_ENOMEM (the old set stays).
 */
enum spd_err	 worker_set_runs(struct worker *w,
		    const struct worker_run *runs, size_t n);

/* Asks for a scan of run name (NULL = all). SPD_ENOTFOUND if unknown. */
enum spd_err	 worker_rescan(struct worker *w, const char *name);

/* Writes a one-line status ("idle", "analysing …: 12/224") into buf. */
void		 worker_status(struct worker *w, char *buf, size_t len);

/*
 * Stops the current analysis after its current matrix (nothing partial is
 * committed: the checkpoint goes back to pending), joins the thread and
 * frees everything. NULL-safe.
 */
void		 worker_stop(struct worker *w);

#endif
