/*
 * store.h: the history in SQLite (DESIGN.md §4). One read-write handle for
 * the analysis worker, read-only handles for HTTP threads; WAL lets them
 * work side by side. A handle is owned by one thread. Rows passed to
 * callbacks are borrowed: valid only during the call.
 */
#ifndef SPECTRUMD_STORE_H
#define SPECTRUMD_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "spectrumd/alerts.h"
#include "spectrumd/common.h"
#include "spectrumd/report.h"
#include "spectrumd/select.h"

#define STORE_SCHEMA_VERSION 7

enum store_mode { STORE_RW, STORE_RO };

/*
 * Checkpoint states (DESIGN.md §3). incomplete: its files are not whole
 * (error says which and why); past the daemon's grace it becomes failed
 * with incomplete_since kept, and pending again if it turns whole.
 */
enum ckpt_status {
	CK_PENDING, CK_ANALYZING, CK_DONE, CK_FAILED, CK_UNSUPPORTED,
	CK_VANISHED, CK_INCOMPLETE, CK_NSTATUS
};

/* What the last failed write of a handle ran into (store_last_fault). */
enum store_fault {
	STORE_FAULT_NONE,	/* no write failed, or not for these */
	STORE_FAULT_FULL,	/* SQLITE_FULL: the disk (or quota) is full */
	STORE_FAULT_IO,		/* another I/O or file error */
	STORE_FAULT_GONE	/* the file was deleted or replaced */
};
const char	*ckpt_status_name(enum ckpt_status s);	/* "pending", … */
enum spd_err	 ckpt_status_parse(const char *name, enum ckpt_status *out);

struct store;

/*
 * Opens (RW: creates, migrates to STORE_SCHEMA_VERSION, sets WAL and a busy
 * timeout) the database at path. A RW handle notes which file path names
 * and, before every write and commit, fails with SPD_EIO and
 * STORE_FAULT_GONE when path was since deleted or replaced. RO opens read-only and fails with
 * SPD_ENOTFOUND when the file does not exist yet. Returns SPD_OK and *out,
 * SPD_EIO (cannot open/create), SPD_EFORMAT (not a spectrumd database, or a
 * newer schema), SPD_EBUSY (locked).
 */
enum spd_err	 store_open(const char *path, enum store_mode mode,
		    struct store **out, struct spd_errbuf *eb);
void		 store_close(struct store *s);	/* NULL-safe */

/* --- writing (STORE_RW) -------------------------------------------------- */

/* Finds or creates the run called name; updates its dir. */
enum spd_err	 store_run_ensure(struct store *s, const char *name,
		    const char *dir, int64_t *run_id, struct spd_errbuf *eb);

/*
 * Finds the checkpoint (run_id, path) or inserts it with status, step and
 * wall_time (the checkpoint's mtime, unix seconds). An existing row keeps
 * its status. Returns its id and, in *status, its current status.
 */
enum spd_err	 store_ckpt_ensure(struct store *s, int64_t run_id,
		    const char *path, long long step, double wall_time,
		    enum ckpt_status status, int64_t *ckpt_id,
		    enum ckpt_status *cur, struct spd_errbuf *eb);

/* Sets status and error (NULL clears it) of a checkpoint. */
enum spd_err	 store_ckpt_set_status(struct store *s, int64_t ckpt_id,
		    enum ckpt_status status, const char *error,
		    struct spd_errbuf *eb);

/* Records progress (matrices done of total) of an analysing checkpoint. */
enum spd_err	 store_ckpt_progress(struct store *s, int64_t ckpt_id,
		    uint64_t done, uint64_t total, struct spd_errbuf *eb);

/*
 * Stores a whole analysis in ONE transaction: matrices (created once per
 * run), metrics, spectra (when present), the checkpoint row (status done,
 * backend, seconds, bytes, finished time), and the selection sel as facts
 * (its modules by type and rank, for sel->top_percent and
 * sel->embeddings) with its version from selection_version() against the
 * served one (the selection of the run's highest step): *version, and
 * *changed when the served set changes. Either all of it is stored or none.
 * A matrix with from_ckpt set (store_reuse_find) gets a copy of its
 * source's metrics row, every column, with its origin (reused_run,
 * reused_step); the checkpoint row counts them (reused = r->reused).
 */
enum spd_err	 store_put_report(struct store *s, int64_t ckpt_id,
		    const struct report *r, const struct selection *sel,
		    long long *version, bool *changed, struct spd_errbuf *eb);

/*
 * Makes every done checkpoint have a selection for top_percent and
 * include_embeddings, computed from its stored metrics (no SVD): the ones
 * missing (after an upgrade, or a restart with another top_percent or
 * include_embeddings) are selected and stored in step order, all in one
 * transaction, with versions by the same rule as store_put_report. With
 * stickiness > 0 each is selected by select_compute_sticky() against the
 * run's selection at the preceding step (the one just rebuilt, or stored).
 * *added (may be NULL) counts them. Call it before serving.
 */
enum spd_err	 store_selection_sync(struct store *s, unsigned top_percent,
		    bool include_embeddings, unsigned stickiness,
		    size_t *added, struct spd_errbuf *eb);

/*
 * Marks a checkpoint incomplete with reason; incomplete_since is set to
 * now unless already set, and returned in *since (may be NULL).
 */
enum spd_err	 store_ckpt_set_incomplete(struct store *s, int64_t ckpt_id,
		    const char *reason, double now, double *since,
		    struct spd_errbuf *eb);
/*
 * Makes a checkpoint pending again (error and incomplete_since cleared)
 * when it is incomplete, or failed after being incomplete; *resumed says
 * whether it was (may be NULL).
 */
enum spd_err	 store_ckpt_resume(struct store *s, int64_t ckpt_id,
		    bool *resumed, struct spd_errbuf *eb);
/* Deletes checkpoint (run_id, path) if incomplete or failed so. */
enum spd_err	 store_ckpt_drop_incomplete(struct store *s, int64_t run_id,
		    const char *path, struct spd_errbuf *eb);
/*
 * The fault behind the last failed operation of s (reset when any store
 * call starts; reads fail with STORE_FAULT_NONE): the caller tells a full
 * disk from a vanished file. NULL-safe.
 */
enum store_fault store_last_fault(const struct store *s);

/* Marks every 'analyzing' checkpoint 'pending' (after a crash). */
enum spd_err	 store_reset_interrupted(struct store *s,
		    struct spd_errbuf *eb);

/* --- reading (either mode) ------------------------------------------------ */

struct run_row {
	int64_t		 id;
	const char	*name, *dir;
	long long	 latest_step;	/* of the latest done checkpoint, -1 */
	uint64_t	 counts[CK_NSTATUS];
};

struct ckpt_row {
	int64_t		 id, run_id;
	long long	 step;
	const char	*path;
	enum ckpt_status status;
	const char	*error;		/* NULL when none */
	uint64_t	 done, total;	/* progress */
	uint64_t	 nonfinite;	/* matrices with NaN/Inf weights or SNR */
	double		 wall_time;	/* checkpoint mtime */
	double		 started, finished, seconds;	/* 0 when unknown */
	uint64_t	 bytes;
	const char	*backend;	/* NULL until analysed */
	double		 incomplete_since;	/* first seen incomplete, 0 */
	uint64_t	 reused;	/* matrices reused, of done */
};

struct metric_row {
	const char	*name, *module, *type, *dtype;
	int		 layer;
	uint64_t	 rows, cols;
	const char	*status;	/* mat_status_name() */
	const char	*error;
	struct snr_result m;		/* snr may be inf or NaN */
	/* Heavy-tail metrics (sigma derived, n_evals 0), when has_ht. */
	struct heavytail_result ht;
	bool		 has_ht;
	double		 seconds;
};

/* One point of a history series. */
struct hist_row {
	const char	*module, *type;
	int		 layer;
	long long	 step;
	double		 wall_time;
	double		 value;		/* may be inf or NaN */
};

/* One metric of a run's training log. */
struct train_name_row {
	const char	*name;
	uint64_t	 points;
	long long	 first_step, last_step;
};

/* Callbacks return 0 to go on, nonzero to stop (returned as SPD_ECANCELED). */
typedef int	(*store_run_cb)(void *arg, const struct run_row *);
typedef int	(*store_ckpt_cb)(void *arg, const struct ckpt_row *);
typedef int	(*store_metric_cb)(void *arg, const struct metric_row *);
typedef int	(*store_hist_cb)(void *arg, const struct hist_row *);
typedef int	(*store_train_cb)(void *arg, const struct train_name_row *);

enum spd_err	 store_runs(struct store *s, store_run_cb cb, void *arg,
		    struct spd_errbuf *eb);
/* Looks a run up by name: SPD_ENOTFOUND when unknown. */
enum spd_err	 store_run_find(struct store *s, const char *name,
		    int64_t *run_id, struct spd_errbuf *eb);
/* Checkpoints of a run in step order (ties by path). */
enum spd_err	 store_ckpts(struct store *s, int64_t run_id,
		    store_ckpt_cb cb, void *arg, struct spd_errbuf *eb);
/* One checkpoint of a run by step; step < 0 = latest done. ENOTFOUND. */
enum spd_err	 store_ckpt_get(struct store *s, int64_t run_id,
		    long long step, store_ckpt_cb cb, void *arg,
		    struct spd_errbuf *eb);
/* Metrics of one checkpoint in checkpoint order. */
enum spd_err	 store_metrics(struct store *s, int64_t ckpt_id,
		    store_metric_cb cb, void *arg, struct spd_errbuf *eb);
/*
 * History of one metric ("snr", "s1", "sigma_hat", "tau", "mp_rank",
 * "signal", "noise", "fro2", "stable_rank", and the heavy-tail "alpha",
 * "alpha_weighted", "ks", "log_spectral_norm") for the done checkpoints
 * of a run, optionally restricted to one type (NULL = all), ordered by
 * module then step. A matrix with NaN/Inf weights has a NaN point; one
 * whose heavy-tail metrics were not computed (stored before schema 5)
 * has no point in theirs. SPD_EINVAL for an unknown metric.
 */
enum spd_err	 store_history(struct store *s, int64_t run_id,
		    const char *type, const char *metric, store_hist_cb cb,
		    void *arg, struct spd_errbuf *eb);
/*
 * Stores n training-log numbers (trainer_state.json log_history) of run
 * run_id, read from the checkpoint at step source, in one transaction. A
 * number already stored for the same (step, name) is replaced unless it
 * came from a later checkpoint (a resumed run's history overlaps the
 * earlier one; the latest log wins in any order of analysis). SPD_EINVAL,
 * nothing stored, when a name fails spd_train_name_ok(), a value is not finite or
 * a step is negative.
 */
enum spd_err	 store_train_put(struct store *s, int64_t run_id,
		    long long source, const struct train_point *v, size_t n,
		    struct spd_errbuf *eb);
/*
 * The training-log series name of a run in step order, as history rows:
 * module = name, type "train_log", layer -1, wall_time NaN. No rows when
 * the run never logged it; SPD_EINVAL for a bad name.
 */
enum spd_err	 store_train_log(struct store *s, int64_t run_id,
		    const char *name, store_hist_cb cb, void *arg,
		    struct spd_errbuf *eb);
/* The training-log metric names of a run, in name order. */
enum spd_err	 store_train_names(struct store *s, int64_t run_id,
		    store_train_cb cb, void *arg, struct spd_errbuf *eb);
/*
 * Spectrum of one matrix (module or tensor name) of one checkpoint; *sv is
 * malloc'ed (caller frees), k values descending. ENOTFOUND when absent.
 */
enum spd_err	 store_spectrum(struct store *s, int64_t ckpt_id,
		    const char *matrix, float **sv, size_t *k,
		    struct snr_result *m, struct spd_errbuf *eb);
/*
 * Names the row of the served selection (what store_selection_latest
 * would load): its id and creation time. A stored row never changes, and
 * (id, created) is never reused, so a reader may cache what it rendered
 * from it under that name. ENOTFOUND when none yet.
 */
enum spd_err	 store_selection_row(struct store *s, int64_t run_id,
		    unsigned top_percent, bool include_embeddings,
		    int64_t *id, double *created, struct spd_errbuf *eb);

/*
 * The served selection of a run for top_percent and include_embeddings,
 * that of the highest step, rebuilt from its facts: *sel (selection_free),
 * its version, and its checkpoint's step and path (malloc'ed, caller
 * frees). Any of sel, version, step and path may be NULL to skip it.
 * ENOTFOUND when none yet.
 */
enum spd_err	 store_selection_latest(struct store *s, int64_t run_id,
		    unsigned top_percent, bool include_embeddings,
		    struct selection **sel, long long *version,
		    long long *step, char **path, struct spd_errbuf *eb);
/*
 * The stored selection of checkpoint ckpt_id for top_percent and
 * include_embeddings, rebuilt from its facts (as stored: with the
 * stickiness of its day) into *sel (selection_free). ENOTFOUND when none
 * is stored for that key.
 */
enum spd_err	 store_selection_at(struct store *s, int64_t ckpt_id,
		    unsigned top_percent, bool include_embeddings,
		    struct selection **sel, struct spd_errbuf *eb);
/*
 * The churn (selection_churn(): |added| + |removed|) between the run's
 * last two served selections for top_percent and include_embeddings, those
 * of its two highest steps. ENOTFOUND when it has fewer than two.
 */
enum spd_err	 store_selection_churn(struct store *s, int64_t run_id,
		    unsigned top_percent, bool include_embeddings,
		    size_t *churn, struct spd_errbuf *eb);
/*
 * Rebuilds the report of a done checkpoint from stored metrics (no
 * spectra), e.g. to select at another top_percent. Caller report_free()s.
 */
enum spd_err	 store_load_report(struct store *s, int64_t ckpt_id,
		    struct report **out, struct spd_errbuf *eb);

/*
 * Finds a stored 'ok' result of the matrix whose fingerprint r->fp is
 * (r->has_fp), computed by method (svd_method()), in any run, outside
 * checkpoint exclude; with want_spectrum only one that kept its spectrum.
 * On a hit sets *found and fills r->m, r->ht and r->has_ht, r->spectrum
 * and r->k (when want_spectrum; r owns them) and r->from_* (the source row
 * and where it was first computed). A row stored before the heavy-tail
 * metrics is found only with a spectrum, which is then filled in even
 * without want_spectrum (has_ht false: the caller fits it).
 * store_put_report then copies the source row whole (every metric column)
 * for r, adding r->ht when the source had none. Returns SPD_OK or a
 * database error.
 */
enum spd_err	 store_reuse_find(struct store *s, const char *method,
		    int64_t exclude, bool want_spectrum, struct mat_result *r,
		    bool *found, struct spd_errbuf *eb);

/* --- alerts (docs/alerts.md) ----------------------------------------------- */

/* One stored alert. */
struct alert_row {
	int64_t		 id;
	const char	*run;
	long long	 step;		/* -1: none */
	const char	*kind, *severity, *message;
	double		 value, threshold;	/* NaN when not stored */
	uint64_t	 count;
	const char	*modules[ALERT_MAX_MODULES];
	size_t		 nmodules;
	double		 time;		/* created, unix seconds */
};

/* Alerts of one run and kind (store_alert_counts). */
struct alert_count_row {
	const char	*run, *kind;
	uint64_t	 count;
};

/* One stored selection of a run, in step order (store_selection_steps). */
struct sel_step_row {
	int64_t		 ckpt_id;
	long long	 step;
	const char	*modules;	/* selection_modules(): equal text, equal set */
	long long	 version;	/* as stored (selection_version()) */
};

typedef int	(*store_alert_cb)(void *arg, const struct alert_row *);
typedef int	(*store_alert_count_cb)(void *arg,
		    const struct alert_count_row *);
typedef int	(*store_sel_step_cb)(void *arg, const struct sel_step_row *);

/*
 * Stores alert a of run run_id at step (-1: none), with its first
 * a->nmodules module names, in one transaction, unless the run has one of
 * that kind at that step already (a checkpoint analysed again, a stall
 * seen again after a restart). *id: the new alert's id, 0 when it was
 * there; *created (may be NULL): its time.
 */
enum spd_err	 store_alert_add(struct store *s, int64_t run_id,
		    long long step, const struct alert *a, int64_t *id,
		    double *created, struct spd_errbuf *eb);
/*
 * Calls cb for the alerts of run run_id (0: every run) with an id above
 * since, newest first, at most limit of them.
 */
enum spd_err	 store_alerts(struct store *s, int64_t run_id, int64_t since,
		    size_t limit, store_alert_cb cb, void *arg,
		    struct spd_errbuf *eb);
/* Calls cb for every (run, kind) with alerts, by run then kind name. */
enum spd_err	 store_alert_counts(struct store *s, store_alert_count_cb cb,
		    void *arg, struct spd_errbuf *eb);
/*
 * The arrival times (wall_time) of the run's last checkpoints by step, at
 * most ALERT_STALL_N, highest step first, into wall[ALERT_STALL_N]: every
 * checkpoint that arrived whole, whatever became of it (not those
 * incomplete, or failed for staying so). *last_step: the highest step
 * (-1 when none).
 */
enum spd_err	 store_run_arrivals(struct store *s, int64_t run_id,
		    double *wall, size_t *n, long long *last_step,
		    struct spd_errbuf *eb);
/*
 * Whether run run_id is stalled now: it has a stalled alert at the step of
 * its latest arrival (store_run_arrivals), so a new checkpoint ends it.
 */
enum spd_err	 store_run_stalled(struct store *s, int64_t run_id,
		    bool *stalled, struct spd_errbuf *eb);
/*
 * Calls cb, in step order, for the last limit done checkpoints of run
 * run_id at or below step upto that have a stored selection for
 * top_percent and include_embeddings.
 */
enum spd_err	 store_selection_steps(struct store *s, int64_t run_id,
		    unsigned top_percent, bool include_embeddings,
		    long long upto, size_t limit, store_sel_step_cb cb,
		    void *arg, struct spd_errbuf *eb);

/* --- the lock ------------------------------------------------------------- */

struct store_lock;

/*
 * Takes an exclusive flock(2) on the database file path (created empty if
 * missing) so that one daemon owns it; held until store_unlock. Returns
 * SPD_OK and *out, SPD_EBUSY (another process holds it; eb says so) or
 * SPD_EIO. Keep it until every handle on path is closed: it is also the
 * reference for store_lock_check.
 */
enum spd_err	 store_lock(const char *path, struct store_lock **out,
		    struct spd_errbuf *eb);
/*
 * Returns SPD_OK while path still names the locked file, SPD_ENOTFOUND
 * when it was deleted or replaced (eb says which), SPD_EIO when it cannot
 * be checked.
 */
enum spd_err	 store_lock_check(const struct store_lock *l,
		    struct spd_errbuf *eb);
void		 store_unlock(struct store_lock *l);	/* NULL-safe */

#endif
