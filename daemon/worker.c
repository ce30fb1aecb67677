/*
 * worker.c: the analysis worker thread (see worker.h). Requests arrive
 * under w->lock as flags on the runs; the thread takes them, scans, and
 * analyses one checkpoint at a time, checking for new requests in between
 * so that a newer checkpoint always goes first.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "spectrumd/log.h"
#include "spectrumd/select.h"
#include "spectrumd/layout.h"
#include "alerting.h"
#include "notify.h"
#include "worker.h"

#define RETRY_SECONDS	10	/* after a database error */
#define RETRY_FULL	5	/* while the database's disk is full */
#define IDLE_SECONDS	3600	/* longest sleep without a request */
#define STALL_EVERY	5	/* seconds between two stall checks, at least */

struct wrun {
	char		*name, *dir;
	int64_t		 id;		/* 0 until ensured in the store */
	bool		 scan;		/* a scan was asked for */
	double		 recheck_at;	/* wall time: an incomplete
					   checkpoint's grace ends; 0 */
	long long	 stall_alerted;	/* step of the last stall alert;
					   -2 before the first check */
};

struct worker {
	pthread_t		 tid;
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;
	struct store		*st;
	struct analyzer		*an;
	struct hub		*hub;
	struct worker_config	 wc;
	struct alerting		 al;
	double			 stall_check_at;	/* wall time of the next
							   stall check */
	struct wrun		*runs;		/* written by the thread only */
	size_t			 nruns;
	struct wrun		*new_runs;	/* under lock: from set_runs */
	size_t			 nnew_runs;
	bool			 have_new_runs;
	bool			 stop;		/* under lock */
	bool			 dead;		/* the database is gone */
	int			 handled;	/* seconds to wait after an error
					   analyse() already reported; 0 */
	atomic_int		 cancel;	/* read by analysis threads */
	char			 status[256];	/* under lock */
	double			 last_progress;
	int64_t			 cur_ckpt;
	const char		*cur_run;
	long long		 cur_step;
};

/* A checkpoint that waits for analysis. */
struct cand {
	int64_t		 id;
	long long	 step;
	double		 wall_time;
	char		*path;
	bool		 newest;	/* newest checkpoint of its run */
};

/* Sets the status line (caller holds no lock). */
static void
set_status(struct worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
set_status(struct worker *w, const char *fmt, ...)
{
	char	buf[sizeof w->status], msg[sizeof w->status + 8];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&w->lock);
	memcpy(w->status, buf, sizeof buf);
	pthread_mutex_unlock(&w->lock);
	snprintf(msg, sizeof msg, "STATUS=%s", buf);
	notify_send(msg);
}

/* Publishes a small JSON event built from a cJSON object (consumed). */
static void
publish(struct worker *w, const char *type, cJSON *o)
{
	char *s = o != NULL ? cJSON_PrintUnformatted(o) : NULL;

	if (s != NULL)
		hub_publish(w->hub, type, s);
	free(s);
	cJSON_Delete(o);
}

/* Publishes a checkpoint event {run, step, path, status, error}. */
static void
publish_ckpt(struct worker *w, const char *run, long long step,
    const char *path, enum ckpt_status s, const char *error)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "run", run);
	cJSON_AddNumberToObject(o, "step", (double)step);
	cJSON_AddStringToObject(o, "path", path);
	cJSON_AddStringToObject(o, "status", ckpt_status_name(s));
	if (error != NULL)
		cJSON_AddStringToObject(o, "error", error);
	publish(w, "checkpoint", o);
}

/* Largest step stored for a run, -1 when none (store_ckpts callback). */
static int
max_step_cb(void *arg, const struct ckpt_row *r)
{
	long long *max = arg;

	if (r->step > *max)
		*max = r->step;
	return 0;
}

/* The store key of a found checkpoint: plain layouts add a fingerprint. */
static char *
found_key(const struct watch_found *f)
{
	char *k;

	if (f->fingerprint == NULL)
		return strdup(f->path);
	if (asprintf(&k, "%s#%s", f->path, f->fingerprint) < 0)
		return NULL;
	return k;
}

/* Unix wall time now (stored times survive a restart). */
static double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Gives up on incomplete checkpoint id: failed, logged once, counted. */
static enum spd_err
give_up(struct worker *w, const struct wrun *r, int64_t id, long long step,
    const struct watch_found *f, double age, struct spd_errbuf *eb)
{
	enum spd_err	 rc;
	char		*why;

	why = spd_asprintf("incomplete for %.0f s (incomplete_grace_s = %u): "
	    "%s", age, w->wc.incomplete_grace_s, f->reason);
	if (why == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	rc = store_ckpt_set_status(w->st, id, CK_FAILED, why, eb);
	if (rc == SPD_OK) {
		log_msg(LOG_WARNING, "run %s: step %lld failed: %s", r->name,
		    step, why);
		publish_ckpt(w, r->name, step, f->path, CK_FAILED, why);
		if (w->wc.health != NULL)
			health_count_given_up(w->wc.health);
	}
	free(why);
	return rc;
}

/*
 * Records a checkpoint whose files are not whole: incomplete with the
 * reason at once, failed once it stayed so past incomplete_grace_s (a
 * recheck is scheduled for then). Done, failed and unsupported rows stay.
 */
static enum spd_err
record_incomplete(struct worker *w, struct wrun *r,
    const struct watch_found *f, long long step, struct spd_errbuf *eb)
{
	enum ckpt_status cur;
	enum spd_err	 rc;
	int64_t		 id;
	double		 now = wall_now(), since = now, end;

	rc = store_ckpt_ensure(w->st, r->id, f->path, step, f->mtime,
	    CK_INCOMPLETE, &id, &cur, eb);
	if (rc != SPD_OK || (cur != CK_INCOMPLETE && cur != CK_PENDING &&
	    cur != CK_VANISHED))
		return rc;
	rc = store_ckpt_set_incomplete(w->st, id, f->reason, now, &since, eb);
	if (rc != SPD_OK)
		return rc;
	if (since == now) {
		log_msg(LOG_INFO, "run %s: step %lld incomplete: %s", r->name,
		    step, f->reason);
		publish_ckpt(w, r->name, step, f->path, CK_INCOMPLETE,
		    f->reason);
	}
	end = since + w->wc.incomplete_grace_s;
	if (now >= end)
		return give_up(w, r, id, step, f, now - since, eb);
	if (r->recheck_at == 0 || end < r->recheck_at)
		r->recheck_at = end;
	return SPD_OK;
}

/*
 * Makes checkpoint id pending again if it was incomplete (the trainer
 * finished writing it); a plain layout's incomplete row (keyed by the
 * directory alone) is dropped once a whole version is recorded.
 */
static enum spd_err
record_whole(struct worker *w, const struct wrun *r,
    const struct watch_found *f, int64_t id, enum ckpt_status cur,
    long long step, struct spd_errbuf *eb)
{
	enum spd_err	rc = SPD_OK;
	bool		resumed = false;

	if (cur == CK_INCOMPLETE || cur == CK_FAILED)
		rc = store_ckpt_resume(w->st, id, &resumed, eb);
	if (rc == SPD_OK && resumed) {
		log_msg(LOG_INFO, "run %s: step %lld is complete now", r->name,
		    step);
		publish_ckpt(w, r->name, step, f->path, CK_PENDING, NULL);
	}
	if (rc == SPD_OK && f->fingerprint != NULL)
		rc = store_ckpt_drop_incomplete(w->st, r->id, f->path, eb);
	return rc;
}

/* Records what one scan of run r found. */
static enum spd_err
record_found(struct worker *w, struct wrun *r,
    const struct watch_found *f, long long *next_step,
    struct spd_errbuf *eb)
{
	enum ckpt_status st, cur;
	int64_t		 id;
	long long	 step = f->step;
	char		*key;
	enum spd_err	 rc;

	if (f->state == WF_INCOMPLETE)
		return record_incomplete(w, r, f, step < 0 ? *next_step : step,
		    eb);
	if ((key = found_key(f)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	if (step < 0)
		step = *next_step;
	st = f->state == WF_COMPLETE ? CK_PENDING : CK_UNSUPPORTED;
	rc = store_ckpt_ensure(w->st, r->id, key, step, f->mtime, st, &id,
	    &cur, eb);
	if (rc == SPD_OK && step >= *next_step)
		*next_step = step + 1;
	if (rc == SPD_OK && st == CK_UNSUPPORTED && f->reason != NULL) {
		rc = store_ckpt_set_status(w->st, id, st, f->reason, eb);
		if (rc == SPD_OK && cur != CK_UNSUPPORTED) {
			log_msg(LOG_WARNING, "run %s: %s: %s", r->name, f->path,
			    f->reason);
			publish_ckpt(w, r->name, step, key, st, f->reason);
		}
	} else if (rc == SPD_OK && st == CK_PENDING) {
		rc = record_whole(w, r, f, id, cur, step, eb);
		if (cur == CK_PENDING)
			log_debug("run %s: %s complete, step %lld", r->name,
			    key, step);
	}
	free(key);
	return rc;
}

/* Incomplete checkpoints a scan no longer found (store_ckpts callback). */
struct gone_list {
	const struct watch_found *f;
	size_t			  nf;
	int64_t			 *ids;
	size_t			  n, cap;
};

static int
gone_cb(void *arg, const struct ckpt_row *row)
{
	struct gone_list	*g = arg;
	int64_t			*v;
	size_t			 i;

	if (row->status != CK_INCOMPLETE)
		return 0;
	for (i = 0; i < g->nf; i++)
		if (g->f[i].state == WF_INCOMPLETE &&
		    strcmp(g->f[i].path, row->path) == 0)
			return 0;
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 8;
		if ((v = reallocarray(g->ids, g->cap, sizeof *v)) == NULL)
			return 1;
		g->ids = v;
	}
	g->ids[g->n++] = row->id;
	return 0;
}

/* Marks the incomplete checkpoints that went away (rotated) vanished. */
static enum spd_err
drop_gone(struct worker *w, const struct wrun *r,
    const struct watch_found *f, size_t n, struct spd_errbuf *eb)
{
	struct gone_list	g = { .f = f, .nf = n };
	enum spd_err		rc;
	size_t			i;

	rc = store_ckpts(w->st, r->id, gone_cb, &g, eb);
	if (rc == SPD_ECANCELED)
		rc = spd_fail(eb, SPD_ENOMEM, "out of memory");
	for (i = 0; i < g.n && rc == SPD_OK; i++)
		rc = store_ckpt_set_status(w->st, g.ids[i], CK_VANISHED, NULL,
		    eb);
	free(g.ids);
	return rc;
}

/* Scans run r's directory and records every complete checkpoint. */
static enum spd_err
scan_run(struct worker *w, struct wrun *r, struct spd_errbuf *eb)
{
	struct watch_found	*f = NULL;
	size_t			 n = 0, i;
	long long		 next = 0;
	enum spd_err		 rc;

	if (r->id == 0) {
		rc = store_run_ensure(w->st, r->name, r->dir, &r->id, eb);
		if (rc != SPD_OK)
			return rc;
	}
	r->recheck_at = 0;
	rc = watch_scan(r->dir, &f, &n, eb);
	if (rc == SPD_ENOTFOUND) {	/* the main loop waits for it, logs */
		log_debug("run %s: %s", r->name, eb->msg);
		return SPD_OK;
	}
	if (rc != SPD_OK)
		return rc;
	next = -1;
	rc = store_ckpts(w->st, r->id, max_step_cb, &next, eb);
	next++;
	for (i = 0; i < n && rc == SPD_OK; i++)
		rc = record_found(w, r, &f[i], &next, eb);
	if (rc == SPD_OK)
		rc = drop_gone(w, r, f, n, eb);
	watch_found_free(f, n);
	return rc;
}

/* Collects the pending checkpoints of one run (store_ckpts callback). */
struct cand_list {
	struct cand	*v;
	size_t		 n, cap;
	long long	 max_step;	/* of any checkpoint of the run */
	size_t		 first;		/* of this run in v */
};

static int
cand_cb(void *arg, const struct ckpt_row *r)
{
	struct cand_list	*l = arg;
	struct cand		*v;

	/* Unfinished writes do not make an older checkpoint stale. */
	if (r->status != CK_UNSUPPORTED && r->status != CK_VANISHED &&
	    r->status != CK_INCOMPLETE && r->incomplete_since == 0 &&
	    r->step > l->max_step)
		l->max_step = r->step;
	if (r->status != CK_PENDING && r->status != CK_ANALYZING)
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		v = realloc(l->v, l->cap * sizeof *v);
		if (v == NULL)
			return 1;
		l->v = v;
	}
	v = &l->v[l->n];
	memset(v, 0, sizeof *v);
	v->id = r->id;
	v->step = r->step;
	v->wall_time = r->wall_time;
	v->path = strdup(r->path);
	if (v->path == NULL)
		return 1;
	l->n++;
	return 0;
}

/* Frees a candidate list. */
static void
cand_free(struct cand_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
}

/*
 * Picks the next checkpoint: the newest checkpoint of a run first (newest
 * wall time across runs), then, with backfill, older ones by step
 * descending. Returns the index in l->v or -1.
 */
static long
pick(const struct worker *w, const struct cand_list *l)
{
	long	best = -1;
	size_t	i;

	for (i = 0; i < l->n; i++) {
		const struct cand *c = &l->v[i];

		if (!c->newest && !w->wc.backfill)
			continue;
		if (best < 0 || (c->newest && !l->v[best].newest) ||
		    (c->newest == l->v[best].newest &&
		    (c->newest ? c->wall_time > l->v[best].wall_time :
		    c->step > l->v[best].step)))
			best = (long)i;
	}
	return best;
}

/* Progress callback of analyzer_run: throttled store + event updates. */
static void
on_progress(void *arg, size_t done, size_t total, uint64_t bdone,
    uint64_t btotal)
{
	struct worker	*w = arg;
	double		 now = spd_now();
	size_t		 reused;
	cJSON		*o;

	(void)bdone;
	(void)btotal;
	if (done < total && now - w->last_progress < 0.25)
		return;
	w->last_progress = now;
	if (store_ckpt_progress(w->st, w->cur_ckpt, done, total, NULL) !=
	    SPD_OK)
		log_debug("progress update failed");
	reused = analyzer_reused(w->an);
	set_status(w, "analysing %s step %lld: %zu/%zu matrices, %zu reused",
	    w->cur_run, w->cur_step, done, total, reused);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "run", w->cur_run);
	cJSON_AddNumberToObject(o, "step", (double)w->cur_step);
	cJSON_AddNumberToObject(o, "done", (double)done);
	cJSON_AddNumberToObject(o, "total", (double)total);
	cJSON_AddNumberToObject(o, "reused", (double)reused);
	publish(w, "progress", o);
}

/*
 * Reuse callback of analyzer_run: a stored result of the same bytes and
 * method, from any run but the checkpoint being analysed.
 */
static bool
on_reuse(void *arg, const char *method, bool want_spectrum,
    struct mat_result *r)
{
	struct worker		*w = arg;
	struct spd_errbuf	 eb;
	bool			 found = false;

	if (store_reuse_find(w->st, method, w->cur_ckpt, want_spectrum, r,
	    &found, &eb) != SPD_OK) {
		log_debug("reuse lookup of %s: %s", r->name, eb.msg);
		return false;
	}
	return found;
}

/* The directory to analyse for a store key ("dir#fingerprint" → dir). */
static char *
key_path(const struct wrun *r, const char *key)
{
	size_t n = strlen(r->dir);

	if (strncmp(key, r->dir, n) == 0 && key[n] == '#')
		return strndup(key, n);
	return strdup(key);
}

/* Stores a finished analysis and announces it. */
static enum spd_err
store_result(struct worker *w, const struct wrun *r, const struct cand *c,
    const struct report *rep, struct spd_errbuf *eb)
{
	struct selection	*sel = NULL, *prev = NULL;
	long long		 version = 0;
	bool			 changed = false;
	enum spd_err		 rc;
	cJSON			*o;

	/* Hysteresis against the served selection (select.h). */
	if (w->wc.stickiness > 0) {
		rc = store_selection_latest(w->st, r->id, w->wc.top_percent,
		    w->wc.include_embeddings, &prev, NULL, NULL, NULL, eb);
		if (rc != SPD_OK && rc != SPD_ENOTFOUND)
			return rc;
	}
	rc = select_compute_sticky(rep, w->wc.top_percent,
	    w->wc.include_embeddings, prev, w->wc.stickiness, &sel);
	selection_free(prev);
	if (rc != SPD_OK)
		return spd_fail(eb, rc, "selection: %s", spd_strerror(rc));
	rc = store_put_report(w->st, c->id, rep, sel, &version, &changed, eb);
	if (rc == SPD_OK) {
		hub_count_analysis(w->hub, rep->nmats, rep->seconds);
		hub_count_nonfinite(w->hub, report_nonfinite(rep));
		hub_count_reuse(w->hub, rep->reused, rep->hashed,
		    rep->hash_seconds);
		publish_ckpt(w, r->name, c->step, c->path, CK_DONE, NULL);
		if (changed) {
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "run", r->name);
			cJSON_AddNumberToObject(o, "step", (double)c->step);
			cJSON_AddNumberToObject(o, "version", (double)version);
			cJSON_AddNumberToObject(o, "count",
			    (double)selection_count(sel));
			publish(w, "selection", o);
		}
		alerting_checkpoint(&w->al, r->id, r->name, c->id);
		log_msg(LOG_INFO, "run %s: step %lld analysed: %zu matrices "
		    "(%zu reused) in %.1f s on %s; selection v%lld%s", r->name,
		    c->step, rep->nmats, rep->reused, rep->seconds,
		    rep->backend, version, changed ? " (changed)" : "");
		if (report_nonfinite(rep) > 0)
			log_msg(LOG_WARNING, "run %s: step %lld: %zu matri%s "
			    "with NaN/Inf weights or a NaN SNR, never "
			    "selected", r->name, c->step,
			    report_nonfinite(rep),
			    report_nonfinite(rep) == 1 ? "x" : "ces");
	}
	selection_free(sel);
	return rc;
}

/* Notes that the database takes writes again (logged once). */
static void
db_fine(struct worker *w)
{
	if (w->wc.health != NULL &&
	    health_set_db(w->wc.health, HEALTH_DB_OK, NULL) != HEALTH_DB_OK)
		log_msg(LOG_NOTICE, "database: writable again");
}

/*
 * Handles a failed database operation (eb says what): the file deleted or
 * replaced stops the worker and asks the daemon to exit; a full disk or
 * another I/O error turns /ready false and is retried. Each state is
 * logged once when entered, not once per attempt. Returns the seconds to
 * wait before retrying, or -1 when the worker must do nothing more.
 */
static int
db_trouble(struct worker *w, const struct spd_errbuf *eb)
{
	enum store_fault f = store_last_fault(w->st);
	enum health_db	 s, prev = HEALTH_DB_OK;
	int		 retry;

	if (f == STORE_FAULT_NONE) {
		log_msg(LOG_ERR, "database: %s (retrying in %d s)", eb->msg,
		    RETRY_SECONDS);
		return RETRY_SECONDS;
	}
	s = f == STORE_FAULT_GONE ? HEALTH_DB_GONE : f == STORE_FAULT_FULL ?
	    HEALTH_DB_FULL : HEALTH_DB_ERROR;
	retry = s == HEALTH_DB_FULL ? RETRY_FULL : RETRY_SECONDS;
	if (w->wc.health != NULL) {
		health_count_db_error(w->wc.health, s);
		prev = health_set_db(w->wc.health, s, eb->msg);
	}
	if (s == HEALTH_DB_GONE) {
		if (!w->dead)
			log_msg(LOG_ERR, "database: %s: nothing more can be "
			    "stored; stopping", eb->msg);
		w->dead = true;
		set_status(w, "database file gone: stopping");
		if (w->wc.fatal != NULL)
			w->wc.fatal(w->wc.fatal_arg);
		return -1;
	}
	if (prev != s)
		log_msg(LOG_ERR, "database %s: %s (not ready; retrying every "
		    "%d s, serving what is stored)", health_db_name(s),
		    eb->msg, retry);
	else
		log_debug("database %s: %s", health_db_name(s), eb->msg);
	set_status(w, "database %s: waiting", health_db_name(s));
	return retry;
}

/* Sleeps up to secs (a request or stop wakes it); false when stopping. */
static bool
nap(struct worker *w, int secs)
{
	struct timespec	ts;
	bool		go;

	pthread_mutex_lock(&w->lock);
	if (!w->stop && secs > 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += secs;
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
	}
	go = !w->stop;
	pthread_mutex_unlock(&w->lock);
	return go;
}

/*
 * Stores the training log (trainer_state.json log_history) of the
 * checkpoint at path of run r. Never fatal: a checkpoint without one (a
 * plain layout) stores nothing; a malformed one is noted and skipped.
 */
static void
store_train(struct worker *w, const struct wrun *r, const struct cand *c,
    const char *path)
{
	struct spd_errbuf	 eb = { "" };
	struct train_point	*v = NULL;
	size_t			 n = 0, skipped = 0;
	enum spd_err		 rc;

	rc = layout_train_log(path, &v, &n, &skipped, &eb);
	if (rc == SPD_ENOTFOUND)
		return;
	if (rc != SPD_OK) {
		log_msg(LOG_NOTICE, "run %s: step %lld: no training log: %s",
		    r->name, c->step, eb.msg[0] != '\0' ? eb.msg :
		    spd_strerror(rc));
		return;
	}
	if (skipped > 0)
		log_msg(LOG_NOTICE, "run %s: step %lld: training log: %zu "
		    "malformed entr%s or value%s skipped", r->name, c->step,
		    skipped, skipped == 1 ? "y" : "ies", skipped == 1 ? "" :
		    "s");
	if (n > 0 && (rc = store_train_put(w->st, r->id, c->step, v, n,
	    &eb)) != SPD_OK)
		log_msg(LOG_WARNING, "run %s: step %lld: training log not "
		    "stored: %s", r->name, c->step, eb.msg);
	else if (n > 0)
		log_msg(LOG_DEBUG, "run %s: step %lld: training log: %zu "
		    "numbers", r->name, c->step, n);
	free(v);
}

/*
 * Stores a finished analysis; while the disk is full (or another I/O error
 * lasts) keeps the result in memory and retries, so space coming back
 * costs no second analysis. Returns the last error when it gives up
 * (stop, or the database is gone): w->handled says it was reported.
 */
static enum spd_err
store_held(struct worker *w, const struct wrun *r, const struct cand *c,
    const struct report *rep, struct spd_errbuf *eb)
{
	enum store_fault f;
	enum spd_err	 rc;
	int		 secs;

	for (;;) {
		if ((rc = store_result(w, r, c, rep, eb)) == SPD_OK) {
			db_fine(w);
			return rc;
		}
		f = store_last_fault(w->st);
		if (f == STORE_FAULT_NONE)
			return rc;
		secs = db_trouble(w, eb);
		w->handled = secs < 0 ? -1 : secs;
		if (secs < 0 || f == STORE_FAULT_GONE || !nap(w, secs))
			return rc;
	}
}

/* Analyses candidate c of run r. Returns a database error, else SPD_OK. */
static enum spd_err
analyse(struct worker *w, const struct wrun *r, const struct cand *c,
    struct spd_errbuf *eb)
{
	struct report	*rep = NULL;
	struct stat	 sb;
	char		*path;
	enum spd_err	 rc, arc;

	if ((path = key_path(r, c->path)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	rc = store_ckpt_set_status(w->st, c->id, CK_ANALYZING, NULL, eb);
	if (rc != SPD_OK)
		goto out;
	w->cur_ckpt = c->id;
	w->cur_run = r->name;
	w->cur_step = c->step;
	w->last_progress = 0;
	publish_ckpt(w, r->name, c->step, c->path, CK_ANALYZING, NULL);
	set_status(w, "analysing %s step %lld", r->name, c->step);
	arc = analyzer_run(w->an, path, &rep, eb);
	if (arc == SPD_OK) {
		store_train(w, r, c, path);	/* before "done" is told */
		rc = store_held(w, r, c, rep, eb);
		if (rc != SPD_OK && !w->dead)	/* pending: retry later */
			store_ckpt_set_status(w->st, c->id, CK_PENDING, NULL,
			    NULL);
	} else if (arc == SPD_ECANCELED) {
		rc = store_ckpt_set_status(w->st, c->id, CK_PENDING, NULL, eb);
	} else if (stat(path, &sb) != 0 && errno == ENOENT) {
		log_msg(LOG_INFO, "run %s: %s vanished (rotated away)",
		    r->name, c->path);
		rc = store_ckpt_set_status(w->st, c->id, CK_VANISHED, NULL, eb);
		publish_ckpt(w, r->name, c->step, c->path, CK_VANISHED, NULL);
	} else {
		log_msg(LOG_WARNING, "run %s: step %lld failed: %s", r->name,
		    c->step, eb->msg);
		publish_ckpt(w, r->name, c->step, c->path, CK_FAILED, eb->msg);
		rc = store_ckpt_set_status(w->st, c->id, CK_FAILED, eb->msg,
		    eb);
	}
	set_status(w, "idle");
out:
	report_free(rep);
	free(path);
	return rc;
}

/*
 * Finds the next candidate over all runs and analyses it. Returns SPD_OK
 * with *did set when one was analysed, or a database error.
 */
static enum spd_err
analyse_next(struct worker *w, struct wrun *runs, size_t nruns, bool *did,
    struct spd_errbuf *eb)
{
	struct cand_list l;
	size_t		 i, j, *owner = NULL;
	long		 best;
	enum spd_err	 rc = SPD_OK;

	memset(&l, 0, sizeof l);
	*did = false;
	owner = calloc(nruns + 1, sizeof *owner);
	if (owner == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	for (i = 0; i < nruns && rc == SPD_OK; i++) {
		if (runs[i].id == 0)
			continue;
		l.first = l.n;
		l.max_step = -1;
		rc = store_ckpts(w->st, runs[i].id, cand_cb, &l, eb);
		for (j = l.first; j < l.n; j++)
			l.v[j].newest = l.v[j].step >= l.max_step;
		owner[i] = l.n;
	}
	if (rc == SPD_OK && (best = pick(w, &l)) >= 0) {
		for (i = 0; i < nruns && owner[i] <= (size_t)best; i++)
			;
		rc = analyse(w, &runs[i], &l.v[best], eb);
		*did = true;
	}
	cand_free(&l);
	free(owner);
	return rc;
}

/* Frees an array of runs. */
static void
runs_free(struct wrun *v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++) {
		free(v[i].name);
		free(v[i].dir);
	}
	free(v);
}

/*
 * Takes the run set given to worker_set_runs (caller holds the lock):
 * runs that stay keep their store id; every run is scanned once.
 */
static void
adopt_runs(struct worker *w)
{
	size_t i, j;

	for (i = 0; i < w->nnew_runs; i++) {
		for (j = 0; j < w->nruns; j++)
			if (strcmp(w->new_runs[i].name, w->runs[j].name) == 0 &&
			    strcmp(w->new_runs[i].dir, w->runs[j].dir) == 0) {
				w->new_runs[i].id = w->runs[j].id;
				w->new_runs[i].stall_alerted =
				    w->runs[j].stall_alerted;
			}
		w->new_runs[i].scan = true;
	}
	runs_free(w->runs, w->nruns);
	w->runs = w->new_runs;
	w->nruns = w->nnew_runs;
	w->new_runs = NULL;
	w->nnew_runs = 0;
	w->have_new_runs = false;
}

/* Copies the runs that asked for a scan and clears their flags. */
static void
take_requests(struct worker *w, bool *scan)
{
	size_t i;

	for (i = 0; i < w->nruns; i++) {
		scan[i] = w->runs[i].scan;
		w->runs[i].scan = false;
	}
}

/* Asks for the scans whose incomplete grace ended; returns the next end. */
static double
due_rechecks(struct worker *w)
{
	double	now = wall_now(), next = 0;
	size_t	i;

	for (i = 0; i < w->nruns; i++) {
		if (w->runs[i].recheck_at == 0)
			continue;
		if (w->runs[i].recheck_at <= now) {
			w->runs[i].recheck_at = 0;
			w->runs[i].scan = true;
		} else if (next == 0 || w->runs[i].recheck_at < next)
			next = w->runs[i].recheck_at;
	}
	return next;
}

/*
 * The stall rule on every run, at most every STALL_EVERY seconds (soon
 * after a turn that did something: a new checkpoint moves the times).
 * Returns when the next check is due.
 */
static double
stall_checks(struct worker *w, bool busy)
{
	double	now = wall_now(), due, next = now + IDLE_SECONDS;
	size_t	i;

	if (w->al.stall_factor <= 0 || w->dead)
		return 0;
	if (busy && w->stall_check_at > now + STALL_EVERY)
		w->stall_check_at = now + STALL_EVERY;
	if (now < w->stall_check_at)
		return w->stall_check_at;
	for (i = 0; i < w->nruns; i++) {
		if (w->runs[i].id == 0)
			continue;
		due = alerting_stall(&w->al, w->runs[i].id, w->runs[i].name,
		    now, &w->runs[i].stall_alerted);
		if (due > 0 && due < next)
			next = due;
	}
	if (next < now + STALL_EVERY)
		next = now + STALL_EVERY;
	w->stall_check_at = next;
	return next;
}

/* One turn: the scans asked for, then one analysis. Returns the wait. */
static int
worker_turn(struct worker *w, const bool *scan, bool *did)
{
	struct spd_errbuf	eb;
	enum spd_err		rc = SPD_OK;
	size_t			i;

	*did = false;
	w->handled = 0;
	for (i = 0; i < w->nruns && rc == SPD_OK; i++)
		if (scan[i])
			rc = scan_run(w, &w->runs[i], &eb);
	if (rc == SPD_OK)
		rc = analyse_next(w, w->runs, w->nruns, did, &eb);
	if (rc == SPD_OK) {
		db_fine(w);
		return 0;
	}
	if (w->handled != 0)
		return w->handled;
	return db_trouble(w, &eb);
}

/* Worker thread: scan what was asked for, then analyse, until stopped. */
static void *
worker_main(void *arg)
{
	struct worker		*w = arg;
	struct timespec		 ts;
	bool			 scan[WORKER_MAX_RUNS], did = false, idle_wait;
	double			 next, stall_next = 0;
	size_t			 i;
	int			 wait = 0;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		if (w->stop) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		if (w->have_new_runs)
			adopt_runs(w);
		(void)due_rechecks(w);
		take_requests(w, scan);
		pthread_mutex_unlock(&w->lock);
		if (!w->dead)
			wait = worker_turn(w, scan, &did);
		for (i = 0; i < w->nruns && !scan[i]; i++)
			;
		if (wait == 0)
			stall_next = stall_checks(w, did || i < w->nruns);
		pthread_mutex_lock(&w->lock);
		next = due_rechecks(w);
		if (stall_next > 0 && (next == 0 || stall_next < next))
			next = stall_next;
		if (wait > 0)	/* scan again after the pause */
			for (i = 0; i < w->nruns; i++)
				w->runs[i].scan = true;
		idle_wait = wait != 0 || !did || w->dead;
		for (i = 0; i < w->nruns && !w->runs[i].scan; i++)
			;
		if (wait != 0 || w->dead)
			i = w->nruns;
		if (idle_wait && i == w->nruns && !w->have_new_runs &&
		    !w->stop) {
			clock_gettime(CLOCK_REALTIME, &ts);
			if (wait > 0 && !w->dead)
				ts.tv_sec += wait;
			else if (next > 0 && !w->dead)
				ts.tv_sec = (time_t)ceil(next);
			else
				ts.tv_sec += IDLE_SECONDS;
			pthread_cond_timedwait(&w->cond, &w->lock, &ts);
		}
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

/* Starts the worker thread; takes st and an. */
enum spd_err
worker_start(struct store *st, struct analyzer *an, struct hub *hub,
    const struct worker_config *wc, struct worker **out,
    struct spd_errbuf *eb)
{
	struct worker *w;

	w = calloc(1, sizeof *w);
	if (w == NULL) {
		store_close(st);
		analyzer_free(an);
		return spd_fail(eb, SPD_ENOMEM, "worker: out of memory");
	}
	w->st = st;
	w->an = an;
	w->hub = hub;
	w->wc = *wc;
	w->al = (struct alerting){ .st = st, .hub = hub,
	    .jump_factor = wc->alert_jump_factor,
	    .stall_factor = wc->alert_stall_factor,
	    .churn_window = wc->alert_churn_window,
	    .churn_min = wc->alert_churn_min,
	    .top_percent = wc->top_percent,
	    .include_embeddings = wc->include_embeddings };
	analyzer_set_hooks(an, on_progress, w, &w->cancel);
	analyzer_set_reuse(an, wc->reuse ? on_reuse : NULL, w);
	snprintf(w->status, sizeof w->status, "idle");
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		store_close(st);
		analyzer_free(an);
		free(w);
		return spd_fail(eb, SPD_EINTERNAL, "worker: cannot start "
		    "thread");
	}
	*out = w;
	return SPD_OK;
}

/* Hands a new run set to the thread (adopted at its next turn). */
enum spd_err
worker_set_runs(struct worker *w, const struct worker_run *runs, size_t n)
{
	struct wrun	*v;
	size_t		 i;

	if (n > WORKER_MAX_RUNS)
		return SPD_EINVAL;
	v = calloc(n ? n : 1, sizeof *v);
	if (v == NULL)
		return SPD_ENOMEM;
	for (i = 0; i < n; i++) {
		v[i].name = strdup(runs[i].name);
		v[i].dir = strdup(runs[i].dir);
		v[i].stall_alerted = -2;
		if (v[i].name == NULL || v[i].dir == NULL) {
			runs_free(v, i + 1);
			return SPD_ENOMEM;
		}
	}
	pthread_mutex_lock(&w->lock);
	runs_free(w->new_runs, w->nnew_runs);
	w->new_runs = v;
	w->nnew_runs = n;
	w->have_new_runs = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return SPD_OK;
}

/* Flags run name (NULL = all) for a scan and wakes the thread. */
enum spd_err
worker_rescan(struct worker *w, const char *name)
{
	enum spd_err	rc = name == NULL ? SPD_OK : SPD_ENOTFOUND;
	struct wrun	*v;
	size_t		 i, n;

	pthread_mutex_lock(&w->lock);
	/* Runs not yet adopted are scanned on adoption anyway. */
	v = w->have_new_runs ? w->new_runs : w->runs;
	n = w->have_new_runs ? w->nnew_runs : w->nruns;
	for (i = 0; i < n; i++)
		if (name == NULL || strcmp(v[i].name, name) == 0) {
			v[i].scan = true;
			rc = SPD_OK;
		}
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

/* Copies the status line. */
void
worker_status(struct worker *w, char *buf, size_t len)
{
	pthread_mutex_lock(&w->lock);
	snprintf(buf, len, "%s", w->status);
	pthread_mutex_unlock(&w->lock);
}

/* Stops after the current matrix, joins, frees. */
void
worker_stop(struct worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	atomic_store(&w->cancel, 1);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->tid, NULL);
	runs_free(w->runs, w->nruns);
	runs_free(w->new_runs, w->nnew_runs);
	analyzer_free(w->an);
	store_close(w->st);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
