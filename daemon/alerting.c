/*
 * alerting.c: the worker's alerts (see alerting.h): reads what the rules
 * need from the store, runs them, and stores, logs and publishes what
 * they raise.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/alerts.h"
#include "spectrumd/api.h"
#include "spectrumd/layout.h"
#include "spectrumd/log.h"
#include "alerting.h"

/* The analysed checkpoints of a run in step order. */
struct done_list {
	int64_t		*id;
	long long	*step;
	size_t		 n, cap;
};

/* The matrices of one checkpoint as the rules read them. */
struct metric_list {
	struct alert_metric	*v;
	size_t			 n, cap;
};

/* The selection-change flags of a run's analysed checkpoints. */
struct flag_list {
	int64_t		*id;
	bool		*changed;
	size_t		 n, cap;
	char		*prev;		/* modules of the last row */
	bool		 oom;
};

/* Grows an array pair to hold one more element; false without memory. */
static bool
grow2(void **a, size_t asz, void **b, size_t bsz, size_t n, size_t *cap)
{
	size_t	 ncap = *cap != 0 ? *cap * 2 : 32;
	void	*na, *nb;

	if (n < *cap)
		return true;
	if ((na = reallocarray(*a, ncap, asz)) == NULL)
		return false;
	*a = na;
	if ((nb = reallocarray(*b, ncap, bsz)) == NULL)
		return false;
	*b = nb;
	*cap = ncap;
	return true;
}

/* Keeps the done checkpoints (store_ckpts callback). */
static int
done_cb(void *arg, const struct ckpt_row *r)
{
	struct done_list *l = arg;

	if (r->status != CK_DONE)
		return 0;
	if (!grow2((void **)&l->id, sizeof *l->id, (void **)&l->step,
	    sizeof *l->step, l->n, &l->cap))
		return 1;
	l->id[l->n] = r->id;
	l->step[l->n++] = r->step;
	return 0;
}

/* Keeps one matrix's metrics (store_metrics callback). */
static int
metric_cb(void *arg, const struct metric_row *r)
{
	struct metric_list	*l = arg;
	struct alert_metric	*m, *nv;
	bool			 ok = r->status != NULL &&
	    strcmp(r->status, "ok") == 0;

	if (l->n == l->cap) {
		l->cap = l->cap != 0 ? l->cap * 2 : 64;
		if ((nv = reallocarray(l->v, l->cap, sizeof *nv)) == NULL)
			return 1;
		l->v = nv;
	}
	m = &l->v[l->n];
	if ((m->module = strdup(r->module != NULL ? r->module : "")) == NULL)
		return 1;
	m->snr = ok ? r->m.snr : NAN;
	m->alpha = ok && r->has_ht ? r->ht.alpha : NAN;
	m->nonfinite = (r->status != NULL &&
	    strcmp(r->status, "nonfinite") == 0) || (ok && isnan(r->m.snr));
	l->n++;
	return 0;
}

/* Frees a metric list. */
static void
metric_list_free(struct metric_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free((char *)(uintptr_t)l->v[i].module);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* Keeps whether each selection differs from the one before it. */
static int
flag_cb(void *arg, const struct sel_step_row *r)
{
	struct flag_list	*l = arg;
	char			*copy;

	if (!grow2((void **)&l->id, sizeof *l->id, (void **)&l->changed,
	    sizeof *l->changed, l->n, &l->cap) ||
	    (copy = strdup(r->modules)) == NULL) {
		l->oom = true;
		return 1;
	}
	l->id[l->n] = r->ckpt_id;
	l->changed[l->n++] = l->prev != NULL && strcmp(l->prev, copy) != 0;
	free(l->prev);
	l->prev = copy;
	return 0;
}

/*
 * Stores alert a of a run at step; a new one is logged and published.
 * False when it could not be stored (logged).
 */
static bool
raise_alert(const struct alerting *al, int64_t run_id, const char *name,
    long long step, const struct alert *a)
{
	struct spd_errbuf	 eb = { "" };
	struct alert_row	 row;
	int64_t			 id = 0;
	double			 created = 0;
	char			*json;
	size_t			 i;

	if (store_alert_add(al->st, run_id, step, a, &id, &created, &eb) !=
	    SPD_OK) {
		log_msg(LOG_WARNING, "run %s: step %lld: %s alert not stored: "
		    "%s", name, step, alert_kind_name(a->kind), eb.msg);
		return false;
	}
	if (id == 0)	/* raised before: a checkpoint analysed again */
		return true;
	log_msg(a->kind == ALERT_NONFINITE ? LOG_ERR : LOG_WARNING,
	    "run %s: step %lld: alert %s: %s", name, step,
	    alert_kind_name(a->kind), a->message);
	memset(&row, 0, sizeof row);
	row.id = id;
	row.run = name;
	row.step = step;
	row.kind = alert_kind_name(a->kind);
	row.severity = alert_severity(a->kind);
	row.message = a->message;
	row.value = a->value;
	row.threshold = a->threshold;
	row.count = a->count;
	for (i = 0; i < a->nmodules; i++)
		row.modules[i] = a->modules[i];
	row.nmodules = a->nmodules;
	row.time = created;
	if ((json = api_alert_json(&row)) != NULL)
		hub_publish(al->hub, "alert", json);
	free(json);
	return true;
}

/* Loads the metrics of one checkpoint; false (logged) on failure. */
static bool
load_metrics(const struct alerting *al, const char *name, long long step,
    int64_t ckpt_id, struct metric_list *out)
{
	struct spd_errbuf	eb = { "" };
	enum spd_err		rc;

	memset(out, 0, sizeof *out);
	rc = store_metrics(al->st, ckpt_id, metric_cb, out, &eb);
	if (rc == SPD_OK)
		return true;
	log_msg(LOG_WARNING, "run %s: step %lld: alerts not computed: %s",
	    name, step, rc == SPD_ECANCELED ? "out of memory" : eb.msg);
	metric_list_free(out);
	return false;
}

/* The churn rule at checkpoint ckpt_id (an alert at step when it fires). */
static void
check_churn(const struct alerting *al, int64_t run_id, const char *name,
    long long step, int64_t ckpt_id)
{
	struct spd_errbuf	eb = { "" };
	struct flag_list	l = { 0 };
	struct alert		a;
	size_t			i, from;

	if (al->churn_min == 0)
		return;
	/* window + 1 flags: those of the window ending here and before. */
	if (store_selection_steps(al->st, run_id, al->top_percent,
	    al->include_embeddings, step, (size_t)al->churn_window + 2,
	    flag_cb, &l, &eb) != SPD_OK)
		log_msg(LOG_WARNING, "run %s: step %lld: churn not computed: "
		    "%s", name, step, l.oom ? "out of memory" : eb.msg);
	else {
		for (i = 0; i < l.n && l.id[i] != ckpt_id; i++)
			;
		/* A first row with no predecessor here is not "changed". */
		from = i > al->churn_window ? i - al->churn_window : 0;
		if (i < l.n && alerts_churn(l.changed + from, i + 1 - from,
		    al->churn_window, al->churn_min, &a))
			raise_alert(al, run_id, name, step, &a);
	}
	free(l.id);
	free(l.changed);
	free(l.prev);
}

/* The checkpoint rules for the k-th analysed checkpoint of the run. */
static void
check_one(const struct alerting *al, int64_t run_id, const char *name,
    const struct done_list *d, size_t k)
{
	struct metric_list	cur, prev;
	struct alert		a;

	if (!load_metrics(al, name, d->step[k], d->id[k], &cur))
		return;
	if (alerts_nonfinite(cur.v, cur.n, &a))
		raise_alert(al, run_id, name, d->step[k], &a);
	if (k > 0 && al->jump_factor > 0 && load_metrics(al, name,
	    d->step[k], d->id[k - 1], &prev)) {
		if (alerts_jump(ALERT_SNR_JUMP, prev.v, prev.n, d->step[k - 1],
		    cur.v, cur.n, al->jump_factor, &a))
			raise_alert(al, run_id, name, d->step[k], &a);
		if (alerts_jump(ALERT_ALPHA_JUMP, prev.v, prev.n,
		    d->step[k - 1], cur.v, cur.n, al->jump_factor, &a))
			raise_alert(al, run_id, name, d->step[k], &a);
		metric_list_free(&prev);
	}
	metric_list_free(&cur);
	check_churn(al, run_id, name, d->step[k], d->id[k]);
}

/* The alerts of a stored checkpoint and of its successor (alerting.h). */
void
alerting_checkpoint(const struct alerting *al, int64_t run_id,
    const char *name, int64_t ckpt_id)
{
	struct spd_errbuf	eb = { "" };
	struct done_list	d = { 0 };
	enum spd_err		rc;
	size_t			k;

	rc = store_ckpts(al->st, run_id, done_cb, &d, &eb);
	if (rc != SPD_OK)
		log_msg(LOG_WARNING, "run %s: alerts not computed: %s", name,
		    rc == SPD_ECANCELED ? "out of memory" : eb.msg);
	for (k = 0; rc == SPD_OK && k < d.n && d.id[k] != ckpt_id; k++)
		;
	if (rc == SPD_OK && k < d.n) {
		check_one(al, run_id, name, &d, k);
		if (k + 1 < d.n)
			check_one(al, run_id, name, &d, k + 1);
	}
	free(d.id);
	free(d.step);
}

/* Copies a checkpoint's path (store_ckpt_get callback). */
static int
path_cb(void *arg, const struct ckpt_row *r)
{
	char **path = arg;

	*path = strdup(r->path);
	return *path == NULL;
}

/*
 * Whether run's checkpoint at step ends its training (the Trainer's last
 * save: global_step >= max_steps): a run that is over does not stall.
 * Logged once per step by the caller's bookkeeping; false when unknown.
 */
static bool
ended(const struct alerting *al, int64_t run_id, const char *name,
    long long step)
{
	struct spd_errbuf	 eb = { "" };
	char			*path = NULL;
	bool			 done = false;

	if (store_ckpt_get(al->st, run_id, step, path_cb, &path, &eb) ==
	    SPD_OK && path != NULL &&
	    layout_train_finished(path, &done, &eb) == SPD_OK && done)
		log_msg(LOG_INFO, "run %s: training ended at step %lld "
		    "(global_step >= max_steps): not watched for stalls",
		    name, step);
	free(path);
	return done;
}

/* The stall rule on one run (alerting.h). */
double
alerting_stall(const struct alerting *al, int64_t run_id, const char *name,
    double now, long long *alerted)
{
	struct spd_errbuf	eb = { "" };
	struct alert		a;
	double			wall[ALERT_STALL_N], due = 0;
	size_t			n = 0;
	long long		last = -1;

	if (al->stall_factor <= 0)
		return 0;
	if (store_run_arrivals(al->st, run_id, wall, &n, &last, &eb) !=
	    SPD_OK) {
		log_msg(LOG_WARNING, "run %s: stall not checked: %s", name,
		    eb.msg);
		return 0;
	}
	if (alerts_stall(wall, n, now, al->stall_factor, &a, &due) &&
	    *alerted != last) {
		if (ended(al, run_id, name, last) ||
		    raise_alert(al, run_id, name, last, &a))
			*alerted = last;
	}
	return due > now ? due : 0;
}
