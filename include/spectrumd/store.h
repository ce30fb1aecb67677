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

#include "spectrumd/common.h"
#include "spectrumd/report.h"

#define STORE_SCHEMA_VERSION 1

enum store_mode { STORE_RW, STORE_RO };

/* Checkpoint states (DESIGN.md §3). */
enum ckpt_status {
	CK_PENDING, CK_ANALYZING, CK_DONE, CK_FAILED, CK_UNSUPPORTED,
	CK_VANISHED, CK_NSTATUS
};
const char	*ckpt_status_name(enum ckpt_status s);	/* "pending", … */
enum spd_err	 ckpt_status_parse(const char *name, enum ckpt_status *out);

struct store;

/*
 * Opens (RW: creates, migrates to STORE_SCHEMA_VERSION, sets WAL and a busy
 * timeout) the database at path. RO opens read-only and fails with
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
 * Builds the selection body once store_put_report knows the version.
 * Returns a malloc'ed string (the store frees it) or NULL (out of memory).
 */
typedef char	*(*store_body_fn)(void *arg, long long version);

/*
 * Stores a whole analysis in ONE transaction: matrices (created once per
 * run), metrics, spectra (when present), the checkpoint row (status done,
 * backend, seconds, bytes, finished time), and the selection for
 * top_percent with its version. The served selection is that of the
 * highest step: when this checkpoint's step is at least that of every
 * other stored selection, the version stays if sel_modules equals the
 * served one's and becomes the largest version + 1 otherwise (first = 1;
 * *changed tells which); an older checkpoint (backfill) gets the current
 * version and *changed = false. sel_modules is the sorted,
 * '\n'-joined selected module list (selection_modules()); the body stored
 * is make_body(arg, version). Either all of it is stored or none.
 */
enum spd_err	 store_put_report(struct store *s, int64_t ckpt_id,
		    const struct report *r, unsigned top_percent,
		    const char *sel_modules, store_body_fn make_body,
		    void *arg, long long *version, bool *changed,
		    struct spd_errbuf *eb);

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
};

struct metric_row {
	const char	*name, *module, *type, *dtype;
	int		 layer;
	uint64_t	 rows, cols;
	const char	*status;	/* mat_status_name() */
	const char	*error;
	struct snr_result m;		/* snr may be inf or NaN */
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

/* Callbacks return 0 to go on, nonzero to stop (returned as SPD_ECANCELED). */
typedef int	(*store_run_cb)(void *arg, const struct run_row *);
typedef int	(*store_ckpt_cb)(void *arg, const struct ckpt_row *);
typedef int	(*store_metric_cb)(void *arg, const struct metric_row *);
typedef int	(*store_hist_cb)(void *arg, const struct hist_row *);

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
 * "signal", "noise", "fro2", "stable_rank") for the done checkpoints of a
 * run, optionally restricted to one type (NULL = all), ordered by module
 * then step. SPD_EINVAL for an unknown metric.
 */
enum spd_err	 store_history(struct store *s, int64_t run_id,
		    const char *type, const char *metric, store_hist_cb cb,
		    void *arg, struct spd_errbuf *eb);
/*
 * Spectrum of one matrix (module or tensor name) of one checkpoint; *sv is
 * malloc'ed (caller frees), k values descending. ENOTFOUND when absent.
 */
enum spd_err	 store_spectrum(struct store *s, int64_t ckpt_id,
		    const char *matrix, float **sv, size_t *k,
		    struct snr_result *m, struct spd_errbuf *eb);
/*
 * The served selection of a run for top_percent, that of the highest
 * step: body (malloc'ed, caller frees), version and step. ENOTFOUND when
 * none yet.
 */
enum spd_err	 store_selection_latest(struct store *s, int64_t run_id,
		    unsigned top_percent, char **body, long long *version,
		    long long *step, struct spd_errbuf *eb);
/*
 * Rebuilds the report of a done checkpoint from stored metrics (no
 * spectra), e.g. to select at another top_percent. Caller report_free()s.
 */
enum spd_err	 store_load_report(struct store *s, int64_t ckpt_id,
		    struct report **out, struct spd_errbuf *eb);

#endif
