/*
 * api_runs.c: what was analysed: GET /runs, /checkpoints, /snr and
 * /spectrum.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api_int.h"

/* --- /runs, /checkpoints ------------------------------------------------- */

/* A JSON array being filled by store callbacks. */
struct jwalk {
	cJSON		*arr;
	bool		 oom;
	struct health	*health;	/* run states, or NULL */
};

/* Appends one run (store_runs callback). */
static int
runs_cb(void *arg, const struct run_row *r)
{
	struct jwalk	*w = arg;
	cJSON		*o = cJSON_CreateObject(), *counts;
	bool		 ok;
	int		 i;

	if (!jpush(w->arr, o)) {
		w->oom = true;
		return 1;
	}
	ok = jstr(o, "name", r->name) && jstr(o, "dir", r->dir) &&
	    (w->health == NULL || jstr(o, "state",
	    health_run_name(health_run(w->health, r->name)))) &&
	    jint_or_null(o, "latest_step", r->latest_step) &&
	    (counts = cJSON_AddObjectToObject(o, "counts")) != NULL;
	for (i = 0; ok && i < CK_NSTATUS; i++)
		ok = jnum(counts, ckpt_status_name((enum ckpt_status)i),
		    (double)r->counts[i]);
	w->oom = !ok;
	return !ok;
}

/* Maps a walk's end: a stop by the callback was an allocation failure. */
static enum spd_err
walk_rc(enum spd_err rc, const struct jwalk *w)
{
	if (w->oom || rc == SPD_ECANCELED)
		return SPD_ENOMEM;
	return rc;
}

/* GET /runs: every run with its latest step and status counts. */
enum spd_err
api_runs(struct ctx *c)
{
	struct jwalk	w = { cJSON_CreateArray(), false, c->cfg->health };
	enum spd_err	rc;

	if (w.arr == NULL)
		return SPD_ENOMEM;
	rc = walk_rc(store_runs(c->st, runs_cb, &w, c->eb), &w);
	if (rc != SPD_OK) {
		cJSON_Delete(w.arr);
		return rc;
	}
	return reply_json(c->resp, 200, w.arr);
}

/* Fills o with the fields of one checkpoint row. */
static bool
ckpt_fields(cJSON *o, const struct ckpt_row *r)
{
	cJSON	*pr;
	bool	 ok;

	ok = jnum(o, "step", (double)r->step) && jstr(o, "path", r->path) &&
	    jstr(o, "status", ckpt_status_name(r->status)) &&
	    jstr(o, "error", r->error) &&
	    (pr = cJSON_AddObjectToObject(o, "progress")) != NULL &&
	    jnum(pr, "done", (double)r->done) &&
	    jnum(pr, "total", (double)r->total) &&
	    jnum(o, "nonfinite", (double)r->nonfinite) &&
	    jtime(o, "wall_time", r->wall_time) &&
	    jtime(o, "started", r->started) &&
	    jtime(o, "finished", r->finished) &&
	    jtime(o, "incomplete_since", r->incomplete_since);
	/* Of a done checkpoint: matrices solved here vs reused. */
	if (r->status == CK_DONE)
		ok = ok && jnum(o, "analysed", (double)(r->total -
		    (r->reused < r->total ? r->reused : r->total))) &&
		    jnum(o, "reused", (double)r->reused);
	if (r->finished != 0)
		ok = ok && jnum(o, "seconds", r->seconds) &&
		    jnum(o, "bytes", (double)r->bytes);
	else
		ok = ok && cJSON_AddNullToObject(o, "seconds") != NULL &&
		    cJSON_AddNullToObject(o, "bytes") != NULL;
	return ok && jstr(o, "backend", r->backend);
}

/* Appends one checkpoint (store_ckpts callback). */
static int
ckpts_cb(void *arg, const struct ckpt_row *r)
{
	struct jwalk	*w = arg;
	cJSON		*o = cJSON_CreateObject();

	if (!jpush(w->arr, o) || !ckpt_fields(o, r)) {
		w->oom = true;
		return 1;
	}
	return 0;
}

/* GET /checkpoints?run: the run's checkpoints in step order. */
enum spd_err
api_checkpoints(struct ctx *c)
{
	struct jwalk	w = { NULL, false, NULL };
	struct run_ref	run = { 0 };
	enum spd_err	rc;

	if ((rc = resolve_run(c, &run)) != SPD_OK)
		return rc;
	if ((w.arr = cJSON_CreateArray()) == NULL)
		rc = SPD_ENOMEM;
	else
		rc = walk_rc(store_ckpts(c->st, run.id, ckpts_cb, &w, c->eb),
		    &w);
	free(run.name);
	if (rc != SPD_OK) {
		cJSON_Delete(w.arr);
		return rc;
	}
	return reply_json(c->resp, 200, w.arr);
}

/* --- /snr, /spectrum ------------------------------------------------------ */

/* Adds the SNR result fields of m to o. */
static bool
snr_fields(cJSON *o, const struct snr_result *m)
{
	return jnum(o, "snr", m->snr) && jnum(o, "s1", m->s1) &&
	    jnum(o, "sigma_hat", m->sigma_hat) && jnum(o, "tau", m->tau) &&
	    jnum(o, "mp_rank", (double)m->mp_rank) &&
	    jnum(o, "signal", m->signal) && jnum(o, "noise", m->noise) &&
	    jnum(o, "fro2", m->fro2) && jnum(o, "stable_rank", m->stable_rank);
}

/* Appends one matrix's metrics (store_metrics callback). */
static int
metrics_cb(void *arg, const struct metric_row *r)
{
	struct jwalk	*w = arg;
	cJSON		*o = cJSON_CreateObject();
	bool		 ok;

	ok = jpush(w->arr, o) && jstr(o, "name", r->name) &&
	    jstr(o, "module", r->module) && jstr(o, "type", r->type) &&
	    jnum(o, "layer", r->layer) && jnum(o, "rows", (double)r->rows) &&
	    jnum(o, "cols", (double)r->cols) && jstr(o, "dtype", r->dtype) &&
	    jstr(o, "status", r->status) && jstr(o, "error", r->error) &&
	    snr_fields(o, &r->m) && jnum(o, "seconds", r->seconds);
	w->oom = !ok;
	return !ok;
}

/* Builds {run, step, checkpoint, status, backend} of a checkpoint. */
static cJSON *
ckpt_head(const struct run_ref *run, const struct ckpt_copy *ck)
{
	cJSON *root = cJSON_CreateObject();

	if (root == NULL || !jstr(root, "run", run->name) ||
	    !jnum(root, "step", (double)ck->step) ||
	    !jstr(root, "checkpoint", ck->path) ||
	    !jstr(root, "status", ckpt_status_name(ck->status)) ||
	    !jstr(root, "backend", ck->backend)) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* GET /snr?run&step: per-matrix metrics of one checkpoint. */
enum spd_err
api_snr(struct ctx *c)
{
	struct run_ref		run = { 0 };
	struct ckpt_copy	ck = { 0 };
	struct jwalk		w = { NULL, false, NULL };
	cJSON			*root = NULL;
	long long		step;
	enum spd_err		rc;

	if ((rc = arg_step(c, &step)) != SPD_OK ||
	    (rc = resolve_run(c, &run)) != SPD_OK ||
	    (rc = find_ckpt(c, &run, step, &ck)) != SPD_OK)
		goto out;
	rc = SPD_ENOMEM;
	if ((root = ckpt_head(&run, &ck)) == NULL ||
	    (w.arr = cJSON_AddArrayToObject(root, "matrices")) == NULL)
		goto out;
	rc = walk_rc(store_metrics(c->st, ck.id, metrics_cb, &w, c->eb), &w);
	if (rc == SPD_OK) {
		rc = reply_json(c->resp, 200, root);
		root = NULL;
	}
out:
	cJSON_Delete(root);
	ckpt_copy_cleanup(&ck);
	free(run.name);
	return rc;
}

/* Adds key: [values] and, when some are not finite, key_class: [...]. */
static bool
jnum_array(cJSON *obj, const char *key, const float *v, size_t n)
{
	cJSON	*arr, *cls = NULL;
	char	 ck[64];
	size_t	 i;

	if ((arr = cJSON_AddArrayToObject(obj, key)) == NULL)
		return false;
	for (i = 0; i < n; i++)
		if (!jpush(arr, jnum_item(v[i])))
			return false;
	for (i = 0; i < n; i++)
		if (!isfinite(v[i]))
			break;
	if (i == n)
		return true;
	snprintf(ck, sizeof ck, "%s_class", key);
	if ((cls = cJSON_AddArrayToObject(obj, ck)) == NULL)
		return false;
	for (i = 0; i < n; i++)
		if (!jpush(cls, isfinite(v[i]) ? cJSON_CreateNull() :
		    cJSON_CreateString(num_class(v[i]))))
			return false;
	return true;
}

/* Builds the /spectrum body. */
static cJSON *
spectrum_json(const struct run_ref *run, const struct ckpt_copy *ck,
    const char *matrix, const float *sv, size_t k,
    const struct snr_result *m)
{
	cJSON *root = cJSON_CreateObject();

	if (root == NULL || !jstr(root, "run", run->name) ||
	    !jstr(root, "module", matrix) ||
	    !jnum(root, "step", (double)ck->step) ||
	    !jnum(root, "k", (double)k) || !jnum(root, "tau", m->tau) ||
	    !jnum(root, "sigma_hat", m->sigma_hat) || !jnum(root, "s1", m->s1) ||
	    !jnum(root, "mp_rank", (double)m->mp_rank) ||
	    !jnum(root, "snr", m->snr) || !jnum_array(root, "values", sv, k)) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* GET /spectrum?run&step&matrix: the singular values of one matrix. */
enum spd_err
api_spectrum(struct ctx *c)
{
	struct run_ref		 run = { 0 };
	struct ckpt_copy	 ck = { 0 };
	struct snr_result	 m;
	const char		*matrix = arg(c, "matrix");
	float			*sv = NULL;
	size_t			 k = 0;
	long long		 step;
	enum spd_err		 rc;

	if (matrix == NULL || matrix[0] == '\0')
		return spd_fail(c->eb, SPD_EINVAL, "matrix= is required");
	if ((rc = arg_step(c, &step)) != SPD_OK ||
	    (rc = resolve_run(c, &run)) != SPD_OK ||
	    (rc = find_ckpt(c, &run, step, &ck)) != SPD_OK)
		goto out;
	rc = store_spectrum(c->st, ck.id, matrix, &sv, &k, &m, c->eb);
	if (rc == SPD_ENOTFOUND)
		rc = spd_fail(c->eb, rc, "no spectrum of '%.200s' at step %lld "
		    "(unknown matrix, or keep_spectra is off)", matrix, ck.step);
	if (rc == SPD_OK)
		rc = reply_json(c->resp, 200,
		    spectrum_json(&run, &ck, matrix, sv, k, &m));
out:
	free(sv);
	ckpt_copy_cleanup(&ck);
	free(run.name);
	return rc;
}
