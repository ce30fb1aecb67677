/*
 * api_runs.c: what was analysed: GET /runs, /checkpoints, /snr,
 * /spectrum, and /snr_results.json (the reference script's flat file, as
 * `spectrumd scan` writes it, for Axolotl's Spectrum plugin).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api_int.h"
#include "spectrumd/names.h"
#include "spectrumd/report.h"

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

/*
 * Adds the heavy-tail fields (docs/heavytail.md): alpha, alpha_weighted,
 * ks, log_spectral_norm, xmin, n_tail and alpha_status; all null with
 * alpha_status null when the row has none (stored before they existed).
 */
static bool
ht_fields(cJSON *o, const struct metric_row *r)
{
	const struct heavytail_result *h = &r->ht;

	if (!r->has_ht)
		return cJSON_AddNullToObject(o, "alpha") != NULL &&
		    cJSON_AddNullToObject(o, "alpha_status") != NULL;
	return jnum(o, "alpha", h->alpha) &&
	    jnum(o, "alpha_weighted", h->alpha_weighted) &&
	    jnum(o, "ks", h->ks) &&
	    jnum(o, "log_spectral_norm", h->log_spectral_norm) &&
	    jnum(o, "xmin", h->xmin) && jnum(o, "n_tail", (double)h->n_tail) &&
	    jstr(o, "alpha_status", heavytail_status_name(h->status));
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
	    snr_fields(o, &r->m) && ht_fields(o, r) &&
	    jnum(o, "seconds", r->seconds);
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

/* --- /snr_results.json --------------------------------------------------- */

#define SLUG_MAX	180	/* bytes of a slug; the disposition holds 5x */

/* Writes s as RFC 5987 ext-value characters (UTF-8, %-encoded). */
static void
put_pct(FILE *fp, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr(".-_~", *p) != NULL)
			fputc(*p, fp);
		else
			fprintf(fp, "%%%02X", *p);
}

/*
 * Sets the Content-Disposition of snr_results_<slug>.json: the quoted
 * filename with " and \ escaped and bytes over 0x7e as "_", plus RFC
 * 5987's filename* with the exact UTF-8 name when it is not ASCII.
 */
static enum spd_err
set_disposition(struct api_resp *resp, const char *slug)
{
	const unsigned char	*p;
	FILE			*fp;
	char			*buf = NULL;
	size_t			 len = 0;
	bool			 ascii = true;

	if ((fp = open_memstream(&buf, &len)) == NULL)
		return SPD_ENOMEM;
	fputs("attachment; filename=\"snr_results_", fp);
	for (p = (const unsigned char *)slug; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', fp);
		fputc(*p > 0x7e ? '_' : *p, fp);
		ascii = ascii && *p <= 0x7e;
	}
	fputs(".json\"", fp);
	if (!ascii) {
		fputs("; filename*=UTF-8''snr_results_", fp);
		put_pct(fp, slug);
		fputs(".json", fp);
	}
	if (spd_memstream_finish(fp, &buf) == NULL)
		return SPD_ENOMEM;
	len = strlen(buf);
	if (len < sizeof resp->disposition)
		memcpy(resp->disposition, buf, len + 1);
	free(buf);
	return len < sizeof resp->disposition ? SPD_OK : SPD_EINVAL;
}

/*
 * GET /snr_results.json?run&step&name: the reference script's flat file of
 * one analysed checkpoint, byte for byte what `spectrumd scan` writes for
 * it (report_reference_json of the stored report: non-finite matrices
 * left out), named for Axolotl: snr_results_<slug>.json, the slug of
 * name= or else of the run's name (names_model_slug).
 */
enum spd_err
api_snr_results(struct ctx *c)
{
	struct run_ref		 run = { 0 };
	struct ckpt_copy	 ck = { 0 };
	struct report		*r = NULL;
	const char		*name = arg(c, "name");
	char			 slug[SLUG_MAX + 1], *body = NULL;
	long long		 step;
	enum spd_err		 rc;

	if ((rc = arg_step(c, &step)) != SPD_OK ||
	    (rc = resolve_run(c, &run)) != SPD_OK)
		goto out;
	if (names_model_slug(name != NULL ? name : run.name, slug,
	    sizeof slug) != SPD_OK) {
		rc = spd_fail(c->eb, SPD_EINVAL, "%s cannot name a file (1 to "
		    "%d bytes, no control characters)", name != NULL ?
		    "name" : "the run's name", SLUG_MAX);
		goto out;
	}
	if ((rc = find_ckpt(c, &run, step, &ck)) != SPD_OK)
		goto out;
	if (ck.status != CK_DONE) {
		rc = spd_fail(c->eb, SPD_ENOTFOUND, "run '%s': the checkpoint "
		    "at step %lld is %s, not analysed", run.name, ck.step,
		    ckpt_status_name(ck.status));
		goto out;
	}
	if ((rc = store_load_report(c->st, ck.id, &r, c->eb)) != SPD_OK)
		goto out;
	if ((body = report_reference_json(r)) == NULL)
		rc = SPD_ENOMEM;
	else
		rc = set_disposition(c->resp, slug);
	if (rc != SPD_OK)
		goto out;
	reply_owned(c->resp, 200, CT_JSON, body, strlen(body));
	body = NULL;
out:
	free(body);
	report_free(r);
	ckpt_copy_cleanup(&ck);
	free(run.name);
	return rc;
}
