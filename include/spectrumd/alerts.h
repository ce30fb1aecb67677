/*
 * alerts.h: the rules behind the daemon's alerts (issue 15, docs/alerts.md):
 * a checkpoint with non-finite matrices, an SNR or alpha jump between two
 * checkpoints, a churning selection, a stalled run. Pure: no I/O, no
 * allocation; an alert borrows the module names of its inputs.
 */
#ifndef SPECTRUMD_ALERTS_H
#define SPECTRUMD_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spectrumd/common.h"

#define ALERT_MAX_MODULES	20	/* module names one alert lists */
#define ALERT_STALL_N		10	/* checkpoints the stall rule reads */
#define ALERT_MAX_WINDOW	100	/* largest churn window */

enum alert_kind {
	ALERT_NONFINITE, ALERT_STALLED, ALERT_SNR_JUMP, ALERT_ALPHA_JUMP,
	ALERT_CHURN, ALERT_NKINDS
};

/* "nonfinite", "stalled", "snr_jump", "alpha_jump", "churn". */
const char	*alert_kind_name(enum alert_kind k);
/* Looks a kind up by name; false when unknown. */
bool		 alert_kind_parse(const char *name, enum alert_kind *out);
/* "critical" for nonfinite, "warning" for the others. */
const char	*alert_severity(enum alert_kind k);

/* One alert as a rule gives it (the store adds id, run, step, time). */
struct alert {
	enum alert_kind	 kind;
	double		 value, threshold;
	uint64_t	 count;
	const char	*modules[ALERT_MAX_MODULES];	/* borrowed */
	size_t		 nmodules;
	char		 message[256];
};

/* What the checkpoint rules read of one matrix. */
struct alert_metric {
	const char	*module;
	double		 snr, alpha;	/* NaN when unknown */
	bool		 nonfinite;	/* NaN/Inf weights or a NaN SNR */
};

/*
 * The nonfinite rule: true and *out when some of the n matrices are
 * nonfinite (value = count = how many, modules the first 20 in order).
 */
bool	 alerts_nonfinite(const struct alert_metric *cur, size_t n,
	    struct alert *out);

/*
 * The jump rules (kind ALERT_SNR_JUMP or ALERT_ALPHA_JUMP): the matrices
 * of cur whose metric changed from prev's matrix of the same module by a
 * ratio max(a/b, b/a) strictly above factor, both values finite and > 0.
 * True and *out when there is one: value = the largest ratio, modules the
 * 20 largest, largest first (ties in cur's order), count = how many.
 * factor 0 disables (false). prev_step names prev in the message. Modules
 * are matched by name, in linear time when both lists share their order.
 */
bool	 alerts_jump(enum alert_kind kind, const struct alert_metric *prev,
	    size_t np, long long prev_step, const struct alert_metric *cur,
	    size_t nc, double factor, struct alert *out);

/*
 * The churn rule over changed[0..n-1], whether each of the run's
 * checkpoints (step order, the one judged last) changed the selection:
 * it holds at i when at least min of the window flags ending at i are
 * set. True and *out when it holds at n-1 and did not at n-2 (fires once,
 * then not again until it stopped holding): value = count = the changes
 * in the window, threshold = min. min 0 or window 0 disables.
 */
bool	 alerts_churn(const bool *changed, size_t n, size_t window,
	    size_t min, struct alert *out);

/*
 * The stall rule: wall[0..n-1] the arrival times (unix seconds, any order)
 * of the run's last checkpoints (the last ALERT_STALL_N are read; zero,
 * negative and non-finite ones are ignored). The usual interval is the
 * median of the gaps between them in time order (needs 3 times, and a
 * median above 0); the run is stalled when now − the latest time exceeds
 * factor × that median: true and *out (value = seconds since, threshold
 * = factor × median, count = checkpoints read). *due (may be NULL) is
 * when the stall begins (0 when it cannot be told). factor 0 disables.
 */
bool	 alerts_stall(const double *wall, size_t n, double now, double factor,
	    struct alert *out, double *due);

#endif
