/*
 * api_history.c: GET /history, per-module metric series over a run's
 * checkpoints, as JSON or CSV.
 * - format=csv writes TensorBoard's "Wall time,Step,Value" when at most
 *   one series matches, else "Series,Wall time,Step,Value" with the
 *   module name first; non-finite values are written inf, -inf, nan.
 * - match= is a bounded PCRE2 pattern (match.h) searched (not anchored) in
 *   the module name.
 * - a metric that is not a per-matrix one names a series of the run's
 *   training log (trainer_state.json log_history: loss, learning_rate,
 *   grad_norm, epoch, eval_* ...): one series named after it, type
 *   "train_log", layer -1, points [step, null, value] (CSV: an empty wall
 *   time). GET /train_log lists the names a run has.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api_int.h"
#include "spectrumd/match.h"

/* --- /history -------------------------------------------------------------- */

struct hpoint {
	long long	step;
	double		wall, value;
};

struct hseries {
	char		*module, *type;
	int		 layer;
	struct hpoint	*pts;
	size_t		 n, cap;
};

struct hist {
	struct hseries	*s;
	size_t		 n, cap;
	size_t		 total;
	struct match	*re;		/* NULL: every module */
	struct spd_errbuf reeb;		/* why re failed */
	char		*last;		/* the module re last tested */
	bool		 last_in;	/* and whether it matched */
	bool		 oom, toobig, badre;
};

static const char *const hist_metrics[] = {
	"snr", "s1", "sigma_hat", "tau", "mp_rank", "signal", "noise", "fro2",
	"stable_rank", "alpha", "alpha_weighted", "ks", "log_spectral_norm",
	NULL
};
static const char *const hist_formats[] = { "json", "csv", NULL };

/* Training-log names known without a log (else an unknown metric). */
static const char *const train_known[] = {
	"loss", "learning_rate", "grad_norm", "epoch", NULL
};

/* Starts a series for row's module. */
static bool
hist_series(struct hist *h, const struct hist_row *r)
{
	struct hseries *s;

	if (!grow((void **)&h->s, &h->cap, h->n, sizeof *h->s))
		return false;
	s = &h->s[h->n];
	memset(s, 0, sizeof *s);
	s->layer = r->layer;
	s->module = strdup(r->module);
	s->type = strdup(r->type != NULL ? r->type : "");
	h->n++;
	return s->module != NULL && s->type != NULL;
}

/*
 * True when module passes ?match=. Rows come grouped by module, so each
 * module is tested once; a pattern over its limits sets h->badre.
 */
static bool
hist_wanted(struct hist *h, const char *module)
{
	int m;

	if (h->re == NULL)
		return true;
	if (h->last != NULL && strcmp(h->last, module) == 0)
		return h->last_in;
	free(h->last);
	if ((h->last = strdup(module)) == NULL) {
		h->oom = true;
		return false;
	}
	if ((m = match_test(h->re, module, &h->reeb)) < 0)
		h->badre = true;
	h->last_in = m > 0;
	return h->last_in;
}

/* Collects one history point (store_history callback). */
static int
hist_cb(void *arg, const struct hist_row *r)
{
	struct hist	*h = arg;
	struct hseries	*s;

	if (r->module == NULL || !hist_wanted(h, r->module))
		return h->badre || h->oom;
	if (h->total++ >= API_MAX_HIST) {
		h->toobig = true;
		return 1;
	}
	if ((h->n == 0 || strcmp(h->s[h->n - 1].module, r->module) != 0) &&
	    !hist_series(h, r))
		goto oom;
	s = &h->s[h->n - 1];
	if (!grow((void **)&s->pts, &s->cap, s->n, sizeof *s->pts))
		goto oom;
	s->pts[s->n++] = (struct hpoint){ r->step, r->wall_time, r->value };
	return 0;
oom:
	h->oom = true;
	return 1;
}

/* Frees the collected series. */
static void
hist_cleanup(struct hist *h)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		free(h->s[i].module);
		free(h->s[i].type);
		free(h->s[i].pts);
	}
	free(h->s);
	h->s = NULL;
	h->n = h->cap = 0;
	free(h->last);
	h->last = NULL;
	match_free(h->re);
	h->re = NULL;
}

/*
 * Keeps at most max points of s, evenly spaced by index, the first and
 * the last included: point i of the result is round(i·(n−1)/(max−1)).
 */
static void
downsample(struct hseries *s, size_t max)
{
	uint64_t	n = s->n, m = max, i;

	if (n <= m || m < 2)
		return;
	for (i = 0; i < m; i++)
		s->pts[i] = s->pts[(i * (n - 1) + (m - 1) / 2) / (m - 1)];
	s->n = max;
}

/* Builds one series object of the JSON history. */
static cJSON *
series_json(const struct hseries *s)
{
	cJSON	*o = cJSON_CreateObject(), *pts, *cls, *p;
	size_t	 i, bad = 0;
	bool	 ok;

	ok = o != NULL && jstr(o, "module", s->module) &&
	    jstr(o, "type", s->type) && jnum(o, "layer", s->layer) &&
	    (pts = cJSON_AddArrayToObject(o, "points")) != NULL;
	for (i = 0; ok && i < s->n; i++) {
		bad += !isfinite(s->pts[i].value);
		ok = (p = cJSON_CreateArray()) != NULL && jpush(pts, p) &&
		    jpush(p, cJSON_CreateNumber((double)s->pts[i].step)) &&
		    jpush(p, jnum_item(s->pts[i].wall)) &&
		    jpush(p, jnum_item(s->pts[i].value));
	}
	if (ok && bad > 0)
		ok = (cls = cJSON_AddArrayToObject(o, "classes")) != NULL;
	for (i = 0; ok && bad > 0 && i < s->n; i++)
		ok = jpush(cls, isfinite(s->pts[i].value) ? cJSON_CreateNull() :
		    cJSON_CreateString(num_class(s->pts[i].value)));
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* Answers the history as JSON. */
static enum spd_err
hist_reply_json(struct ctx *c, const char *run, const char *metric,
    const struct hist *h)
{
	cJSON	*root = cJSON_CreateObject(), *arr;
	size_t	 i;
	bool	 ok;

	ok = root != NULL && jstr(root, "run", run) &&
	    jstr(root, "metric", metric) &&
	    (arr = cJSON_AddArrayToObject(root, "series")) != NULL;
	for (i = 0; ok && i < h->n; i++)
		ok = jpush(arr, series_json(&h->s[i]));
	if (!ok) {
		cJSON_Delete(root);
		return SPD_ENOMEM;
	}
	return reply_json(c->resp, 200, root);
}

/* Writes s as one CSV field, quoted when it needs to be. */
static void
csv_field(FILE *fp, const char *s)
{
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, fp);
		return;
	}
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputc('"', fp);
		fputc(*s, fp);
	}
	fputc('"', fp);
}

/* Answers the history as TensorBoard-style CSV. */
static enum spd_err
hist_reply_csv(struct ctx *c, const struct hist *h)
{
	const struct hpoint	*p;
	FILE			*fp;
	char			*buf = NULL;
	size_t			 len = 0, i, j;
	bool			 named = h->n > 1;

	if ((fp = open_memstream(&buf, &len)) == NULL)
		return SPD_ENOMEM;
	fputs(named ? "Series,Wall time,Step,Value\n" : "Wall time,Step,Value\n",
	    fp);
	for (i = 0; i < h->n; i++)
		for (j = 0; j < h->s[i].n; j++) {
			p = &h->s[i].pts[j];
			if (named) {
				csv_field(fp, h->s[i].module);
				fputc(',', fp);
			}
			if (isfinite(p->wall))
				fprintf(fp, "%.6f", p->wall);
			fprintf(fp, ",%lld,", p->step);
			if (isfinite(p->value))
				fprintf(fp, "%.10g\n", p->value);
			else
				fprintf(fp, "%s\n", num_class(p->value));
		}
	if (spd_memstream_finish(fp, &buf) == NULL)
		return SPD_ENOMEM;
	reply_owned(c->resp, 200, CT_CSV, buf, strlen(buf));
	return SPD_OK;
}

/* Compiles ?match= (PCRE2, bounded: see match.h) into h when given. */
static enum spd_err
compile_match(struct ctx *c, struct hist *h)
{
	const char *pat = arg(c, "match");

	if (pat == NULL)
		return SPD_OK;
	return match_new(pat, &h->re, c->eb);
}

/*
 * True when ?metric= names a training-log series: not a per-matrix metric,
 * a valid name; *name is it.
 */
static bool
train_metric(struct ctx *c, const char **name)
{
	const char	*m = arg(c, "metric");
	size_t		 i;

	if (m == NULL || !spd_train_name_ok(m))
		return false;
	for (i = 0; hist_metrics[i] != NULL; i++)
		if (strcmp(hist_metrics[i], m) == 0)
			return false;
	*name = m;
	return true;
}

/* True when a training-log name is known even with no points. */
static bool
train_known_name(const char *name)
{
	size_t i;

	if (strncmp(name, "eval_", 5) == 0)
		return true;
	for (i = 0; train_known[i] != NULL; i++)
		if (strcmp(train_known[i], name) == 0)
			return true;
	return false;
}

/* GET /history?run&match&type&metric&format&max_points. */
enum spd_err
api_history(struct ctx *c)
{
	struct run_ref		run = { 0 };
	struct hist		h = { 0 };
	unsigned long long	maxp;
	const char		*name = NULL;
	size_t			metric = 0, fmt, i;
	enum spd_err		rc;

	if ((!train_metric(c, &name) &&
	    !arg_enum(c, "metric", hist_metrics, &metric)) ||
	    !arg_enum(c, "format", hist_formats, &fmt))
		return SPD_EINVAL;
	if ((rc = arg_num(c, "max_points", 2, API_MAX_POINTS, API_MAX_POINTS,
	    &maxp)) != SPD_OK ||
	    (rc = compile_match(c, &h)) != SPD_OK ||
	    (rc = resolve_run(c, &run)) != SPD_OK)
		goto out;
	if (name != NULL)
		rc = store_train_log(c->st, run.id, name, hist_cb, &h, c->eb);
	else
		rc = store_history(c->st, run.id, arg(c, "type"),
		    hist_metrics[metric], hist_cb, &h, c->eb);
	if (h.badre)
		rc = spd_fail(c->eb, SPD_EINVAL, "%s", h.reeb.msg);
	else if (h.toobig)
		rc = spd_fail(c->eb, SPD_EINVAL, "more than %d points: narrow "
		    "the history with match= or type=", API_MAX_HIST);
	else if (h.oom || rc == SPD_ECANCELED)
		rc = SPD_ENOMEM;
	else if (rc == SPD_OK && name != NULL && h.n == 0 &&
	    arg(c, "match") == NULL && !train_known_name(name))
		rc = spd_fail(c->eb, SPD_EINVAL, "metric: unknown value '%s' "
		    "(not a per-matrix metric, nor in the run's training log)",
		    name);
	if (rc != SPD_OK)
		goto out;
	for (i = 0; i < h.n; i++)
		downsample(&h.s[i], (size_t)maxp);
	if (fmt == 0)
		rc = hist_reply_json(c, run.name, name != NULL ? name :
		    hist_metrics[metric], &h);
	else
		rc = hist_reply_csv(c, &h);
out:
	hist_cleanup(&h);
	free(run.name);
	return rc;
}

/* --- /train_log ----------------------------------------------------------- */

/* Adds one training-log name to the JSON list (store_train_names cb). */
static int
train_name_cb(void *arg, const struct train_name_row *r)
{
	cJSON	*arr = arg, *o = cJSON_CreateObject();

	return !(o != NULL && jpush(arr, o) && jstr(o, "name", r->name) &&
	    jnum(o, "points", (double)r->points) &&
	    jnum(o, "first_step", (double)r->first_step) &&
	    jnum(o, "last_step", (double)r->last_step));
}

/* GET /train_log?run: the metric names of a run's training log. */
enum spd_err
api_train_log(struct ctx *c)
{
	struct run_ref	 run = { 0 };
	cJSON		*root = NULL, *arr = NULL;
	enum spd_err	 rc;

	if ((rc = resolve_run(c, &run)) != SPD_OK)
		goto out;
	if ((root = cJSON_CreateObject()) == NULL || !jstr(root, "run",
	    run.name) || (arr = cJSON_AddArrayToObject(root, "metrics")) ==
	    NULL) {
		rc = SPD_ENOMEM;
		goto out;
	}
	rc = store_train_names(c->st, run.id, train_name_cb, arr, c->eb);
	if (rc == SPD_ECANCELED)
		rc = SPD_ENOMEM;
	if (rc == SPD_OK) {
		rc = reply_json(c->resp, 200, root);
		root = NULL;
	}
out:
	cJSON_Delete(root);
	free(run.name);
	return rc;
}
