/*
 * test_api.c: every route of the HTTP/JSON API through api_handle() on fake
 * requests, over a scratch database filled through store.h: statuses, key
 * JSON fields (parsed with cJSON), strict JSON (no NaN/Infinity tokens,
 * *_class siblings), ETag/304 and the long poll, 400/401/404/405/414/503
 * cases, history downsampling and CSV, /metrics line by line, and the
 * static-file whitelist.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "spectrumd/api.h"
#include "spectrumd/hub.h"
#include "spectrumd/report.h"
#include "spectrumd/select.h"
#include "spectrumd/store.h"
#include "fixture.h"
#include "tap.h"

#define TP	25		/* the configured top_percent */

static char	tmp[512];		/* scratch directory */
static char	dbpath[600];
static char	webdir[600];

/* --- fake requests ---------------------------------------------------------- */

/* A parsed query string: key/value pairs pointing into buf. */
struct fake {
	char		 buf[9000];
	const char	*k[16], *v[16];
	size_t		 n;
};

/* The arg() callback: looks key up in the fake query. */
static const char *
fake_arg(void *cls, const char *key)
{
	struct fake	*f = cls;
	size_t		 i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->k[i], key) == 0)
			return f->v[i];
	return NULL;
}

/* Splits "a=1&b=2" (no %-decoding) into f. */
static void
fake_parse(struct fake *f, const char *query)
{
	char *p, *eq, *save = NULL;

	f->n = 0;
	snprintf(f->buf, sizeof f->buf, "%s", query != NULL ? query : "");
	for (p = strtok_r(f->buf, "&", &save); p != NULL && f->n < 16;
	    p = strtok_r(NULL, "&", &save)) {
		eq = strchr(p, '=');
		if (eq != NULL)
			*eq++ = '\0';
		f->k[f->n] = p;
		f->v[f->n++] = eq != NULL ? eq : "";
	}
}

/* Optional request headers. */
struct hdrs {
	const char	*inm, *auth;
};

/* Runs one request; returns the status. */
static int
call_h(struct api *a, const char *method, const char *path,
    const char *query, const struct hdrs *h, struct api_resp *resp)
{
	static struct fake	f;
	struct api_req		req = { 0 };

	fake_parse(&f, query);
	req.method = method;
	req.path = path;
	req.arg = fake_arg;
	req.cls = &f;
	req.query_len = query != NULL ? strlen(query) : 0;
	if (h != NULL) {
		req.if_none_match = h->inm;
		req.authorization = h->auth;
	}
	api_handle(a, &req, resp);
	while (resp->park) {	/* as the server glue does: wait, run again */
		struct hub_event	ev;
		double			left = resp->park_until - spd_now();

		if (left > 0 && hub_next(api_hub(a), resp->park_after,
		    (int)(left * 1000) + 1, &ev) == SPD_OK)
			free(ev.data);
		req.resumed = true;
		req.resume_after = resp->park_after;
		req.resume_until = resp->park_until;
		api_handle(a, &req, resp);
	}
	return resp->status;
}

/* GET path?query without headers. */
static int
get(struct api *a, const char *path, const char *query, struct api_resp *r)
{
	return call_h(a, "GET", path, query, NULL, r);
}

/* True when the body contains s. */
static bool
has(const struct api_resp *r, const char *s)
{
	return r->body != NULL && memmem(r->body, r->len, s, strlen(s)) != NULL;
}

/* Parses the body; NULL when it is not JSON. */
static cJSON *
parse(const struct api_resp *r)
{
	if (r->body == NULL)
		return NULL;
	return cJSON_ParseWithLength(r->body, r->len);
}

/*
 * True when every bare word outside string literals of the body is true,
 * false or null: no NaN, Infinity, inf tokens.
 */
static bool
bare_words_ok(const char *b, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if (b[i] == '"') {
			for (i++; i < len && b[i] != '"'; i++)
				if (b[i] == '\\')
					i++;
			i++;
		} else if ((b[i] >= 'a' && b[i] <= 'z') ||
		    (b[i] >= 'A' && b[i] <= 'Z')) {
			for (n = 0; i + n < len && ((b[i + n] >= 'a' &&
			    b[i + n] <= 'z') || (b[i + n] >= 'A' &&
			    b[i + n] <= 'Z')); n++)
				;
			if (!(n == 4 && strncmp(b + i, "true", 4) == 0) &&
			    !(n == 5 && strncmp(b + i, "false", 5) == 0) &&
			    !(n == 4 && strncmp(b + i, "null", 4) == 0) &&
			    !(n == 1 && (b[i] == 'e' || b[i] == 'E')))
				return false;
			i += n;
		} else
			i++;
	}
	return true;
}

/* Strings may say NaN or Infinity; numbers may have exponents. */
static const char strict_sample[] =
    "{\"e\":\"NaN \\\" Infinity\",\"x\":1e5,\"y\":[true,false,null]}";

/* True when the body is strict JSON: parses, no NaN/Infinity tokens. */
static bool
strict(const struct api_resp *r)
{
	cJSON	*j = parse(r);
	bool	 ok = j != NULL && bare_words_ok(r->body, r->len);

	cJSON_Delete(j);
	return ok;
}

/* The error code of an error body, "" when there is none. */
static const char *
err_code(const struct api_resp *r, char *buf, size_t len)
{
	cJSON		*j = parse(r);
	const cJSON	*c = cJSON_GetObjectItem(cJSON_GetObjectItem(j,
			    "error"), "code");

	snprintf(buf, len, "%s", cJSON_IsString(c) ? c->valuestring : "");
	cJSON_Delete(j);
	return buf;
}

/* Checks status and error code of one request. */
static void
expect_error(struct api *a, const char *method, const char *path,
    const char *query, int status, const char *code)
{
	struct api_resp	r;
	char		c[64];

	call_h(a, method, path, query, NULL, &r);
	ok(r.status == status && strcmp(err_code(&r, c, sizeof c), code) == 0
	    && strict(&r), "%s %s?%.40s: %d %s (got %d %s)", method, path,
	    query != NULL ? query : "", status, code, r.status,
	    err_code(&r, c, sizeof c));
	api_resp_cleanup(&r);
}

/* --- the database ------------------------------------------------------------ */

/* One matrix of the synthetic model. */
struct mspec {
	const char	*module, *type;
	int		 layer;
	bool		 embedding;
};

static const struct mspec model[] = {
	{ "model.embed_tokens", "model.embed_tokens", -1, true },
	{ "model.layers.0.mlp.down_proj", "mlp.down_proj", 0, false },
	{ "model.layers.0.self_attn.q_proj", "self_attn.q_proj", 0, false },
	{ "model.layers.1.mlp.down_proj", "mlp.down_proj", 1, false },
	{ "model.layers.1.self_attn.q_proj", "self_attn.q_proj", 1, false },
	{ "model.layers.2.mlp.down_proj", "mlp.down_proj", 2, false },
	{ "model.layers.2.self_attn.q_proj", "self_attn.q_proj", 2, false },
	{ "model.layers.3.mlp.down_proj", "mlp.down_proj", 3, false },
	{ "model.layers.3.self_attn.q_proj", "self_attn.q_proj", 3, false },
	/* A fifth q_proj: with layer 2's NaN left out, 4 members keep 1. */
	{ "model.layers.4.self_attn.q_proj", "self_attn.q_proj", 4, false },
	{ "lm_head", "lm_head", -1, true },
};

/*
 * The SNR of matrix i at step: layer 1 down_proj is +inf, layer 2 q_proj
 * non-finite (NaN); the best q_proj moves from layer 0 to layer 3 at step
 * 300 and back to layer 0 at step 500.
 */
static double
snr_at(size_t i, long long step)
{
	const struct mspec *m = &model[i];

	if (m->layer < 0)
		return 1.5;
	if (strcmp(m->type, "mlp.down_proj") == 0) {
		static const double v[] = { 1.0, INFINITY, 0.5, 0.25 };
		return v[m->layer];
	}
	if (m->layer == 2)
		return NAN;
	if (m->layer == 3)
		return step >= 300 && step < 500 ? 3.0 : 0.5;
	if (m->layer == 0)
		return step >= 500 ? 10.0 : 2.0;
	return 1.0;
}

/* Builds the report of one checkpoint. */
static struct report *
make_report(const char *path, long long step)
{
	struct report		*r = report_new(path, "cpu");
	struct mat_result	 m;
	size_t			 i, j;

	for (i = 0; r != NULL && i < nitems(model); i++) {
		memset(&m, 0, sizeof m);
		m.module = strdup(model[i].module);
		m.type = strdup(model[i].type);
		if (asprintf(&m.name, "%s.weight", model[i].module) < 0)
			m.name = NULL;
		m.layer = model[i].layer;
		m.embedding = model[i].embedding;
		m.rows = m.cols = 4;
		m.dtype = DT_F32;
		m.seconds = 0.01;
		m.m = (struct snr_result){ snr_at(i, step), 4, 1, 2, 7, 3, 30,
		    1.875, 2 };
		if (isnan(m.m.snr)) {
			m.status = MAT_NONFINITE;
			m.error = strdup("NaN or Inf in the weights");
		} else {
			m.k = 4;
			m.spectrum = malloc(4 * sizeof *m.spectrum);
			for (j = 0; m.spectrum != NULL && j < 4; j++)
				m.spectrum[j] = (float)(4 - j);
		}
		if (report_add(r, &m) != SPD_OK) {
			mat_result_cleanup(&m);
			report_free(r);
			return NULL;
		}
	}
	if (r != NULL)
		r->seconds = 0.5;
	return r;
}

/* Stores one analysed checkpoint of run as the worker would. */
static enum spd_err
put_ckpt(struct store *rw, int64_t run_id, const char *run, long long step,
    long long *version)
{
	struct selection	*sel = NULL;
	struct report		*r = NULL;
	struct spd_errbuf	 eb;
	enum ckpt_status	 cur;
	char			 path[128];
	int64_t			 id;
	bool			 changed;
	enum spd_err		 rc;

	snprintf(path, sizeof path, "/ckpt/%s/checkpoint-%lld", run, step);
	rc = store_ckpt_ensure(rw, run_id, path, step, 1.7e9 + (double)step,
	    CK_PENDING, &id, &cur, &eb);
	if (rc == SPD_OK && (r = make_report(path, step)) == NULL)
		rc = SPD_ENOMEM;
	if (rc == SPD_OK)
		rc = select_compute(r, TP, true, &sel);
	if (rc == SPD_OK)
		rc = store_put_report(rw, id, r, sel, version, &changed, &eb);
	if (rc != SPD_OK)
		printf("# put_ckpt %lld: %s: %s\n", step, spd_strerror(rc),
		    eb.msg);
	selection_free(sel);
	report_free(r);
	return rc;
}

/* Creates run alpha: done checkpoints 100, 200, 300 and a pending 400. */
static enum spd_err
fill(struct store *rw, int64_t *run_id)
{
	struct spd_errbuf	eb;
	enum ckpt_status	cur;
	long long		v[3];
	int64_t			id;
	enum spd_err		rc;

	rc = store_run_ensure(rw, "alpha", "/ckpt/alpha", run_id, &eb);
	if (rc == SPD_OK)
		rc = put_ckpt(rw, *run_id, "alpha", 100, &v[0]);
	if (rc == SPD_OK)
		rc = put_ckpt(rw, *run_id, "alpha", 200, &v[1]);
	if (rc == SPD_OK)
		rc = put_ckpt(rw, *run_id, "alpha", 300, &v[2]);
	if (rc == SPD_OK)
		rc = store_ckpt_ensure(rw, *run_id, "/ckpt/alpha/checkpoint-400",
		    400, 1.7e9 + 400, CK_PENDING, &id, &cur, &eb);
	ok(rc == SPD_OK && v[0] == 1 && v[1] == 1 && v[2] == 2,
	    "fixture: selection versions 1, 1, 2 (%s)", spd_strerror(rc));
	return rc;
}

/* --- routes ------------------------------------------------------------------ */

static atomic_int	ready_flag;
static int		rescans;
static char		last_rescan[64];

/* The rescan callback: knows runs alpha and beta. */
static enum spd_err
fake_rescan(void *arg, const char *run)
{
	(void)arg;
	if (run != NULL && strcmp(run, "alpha") != 0 &&
	    strcmp(run, "beta") != 0)
		return SPD_ENOTFOUND;
	rescans++;
	snprintf(last_rescan, sizeof last_rescan, "%s",
	    run != NULL ? run : "(all)");
	return SPD_OK;
}

/* Before the database exists: 503 for data routes, health still fine. */
static void
test_no_db(struct api *a)
{
	struct api_resp	 r;
	cJSON		*j;

	expect_error(a, "GET", "/runs", NULL, 503, "not_ready");
	expect_error(a, "GET", "/selection", NULL, 503, "not_ready");
	expect_error(a, "GET", "/ready", NULL, 503, "not_ready");
	get(a, "/health", NULL, &r);
	j = parse(&r);
	ok(r.status == 200 && j != NULL &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "status")),
	    "ok") == 0 &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "version")),
	    "9.9.9") == 0 &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "backend")),
	    "cpu") == 0, "/health: ok, version, backend");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	get(a, "/metrics", NULL, &r);
	ok(r.status == 200 && has(&r, "spectrumd_backend_info"),
	    "/metrics answers without a database");
	api_resp_cleanup(&r);
}

/* /ready, /runs and /checkpoints. */
static void
test_runs(struct api *a)
{
	struct api_resp	 r;
	cJSON		*j, *o, *c;

	atomic_store(&ready_flag, 0);
	expect_error(a, "GET", "/ready", NULL, 503, "not_ready");
	atomic_store(&ready_flag, 1);
	get(a, "/ready", NULL, &r);
	j = parse(&r);
	ok(r.status == 200 && cJSON_IsTrue(cJSON_GetObjectItem(j, "ready")),
	    "/ready: 200 ready true once ready and the database opens");
	cJSON_Delete(j);
	api_resp_cleanup(&r);

	get(a, "/runs", NULL, &r);
	j = parse(&r);
	o = cJSON_GetArrayItem(j, 0);
	c = cJSON_GetObjectItem(o, "counts");
	ok(r.status == 200 && strict(&r) && cJSON_GetArraySize(j) == 1 &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(o, "name")),
	    "alpha") == 0 &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(o, "dir")),
	    "/ckpt/alpha") == 0 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(o, "latest_step")) == 300
	    && cJSON_GetNumberValue(cJSON_GetObjectItem(c, "done")) == 3 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(c, "pending")) == 1 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(c, "failed")) == 0,
	    "/runs: alpha, dir, latest_step 300, counts done 3 pending 1");
	ok(strcmp(r.content_type, "application/json") == 0,
	    "/runs: application/json");
	cJSON_Delete(j);
	api_resp_cleanup(&r);

	get(a, "/checkpoints", NULL, &r);
	j = parse(&r);
	o = cJSON_GetArrayItem(j, 0);
	c = cJSON_GetObjectItem(o, "progress");
	ok(r.status == 200 && strict(&r) && cJSON_GetArraySize(j) == 4 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(o, "step")) == 100 &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(o, "status")),
	    "done") == 0 &&
	    cJSON_IsNull(cJSON_GetObjectItem(o, "error")) &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(c, "done")) == 11 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(c, "total")) == 11 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(o, "nonfinite")) == 1 &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(o, "backend")),
	    "cpu") == 0 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(o, "wall_time")) == 1.7e9 +
	    100, "/checkpoints: 4 in step order, first done 11/11 on cpu, "
	    "1 nonfinite");
	o = cJSON_GetArrayItem(j, 3);
	ok(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "step")) == 400 &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(o, "status")),
	    "pending") == 0 && cJSON_IsNull(cJSON_GetObjectItem(o, "started"))
	    && cJSON_IsNull(cJSON_GetObjectItem(o, "seconds")),
	    "/checkpoints: step 400 pending, started and seconds null");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	expect_error(a, "GET", "/checkpoints", "run=nope", 404, "not_found");
}

/* Finds the matrix called module in a /snr matrices array. */
static const cJSON *
find_matrix(const cJSON *arr, const char *module)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, arr)
		if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(m, "module")),
		    module) == 0)
			return m;
	return NULL;
}

/* /snr: latest and by step, non-finite classes. */
static void
test_snr(struct api *a)
{
	struct api_resp	 r;
	cJSON		*j;
	const cJSON	*arr, *m;

	get(a, "/snr", "run=alpha&step=latest", &r);
	j = parse(&r);
	arr = cJSON_GetObjectItem(j, "matrices");
	ok(r.status == 200 && strict(&r) &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(j, "step")) == 300 &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "run")),
	    "alpha") == 0 &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "checkpoint")),
	    "/ckpt/alpha/checkpoint-300") == 0 &&
	    cJSON_GetArraySize(arr) == (int)nitems(model),
	    "/snr latest: step 300, checkpoint, %zu matrices", nitems(model));
	m = find_matrix(arr, "model.layers.1.mlp.down_proj");
	ok(m != NULL && cJSON_IsNull(cJSON_GetObjectItem(m, "snr")) &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(m, "snr_class")),
	    "inf") == 0 && cJSON_GetNumberValue(cJSON_GetObjectItem(m, "s1")) ==
	    4 && cJSON_GetNumberValue(cJSON_GetObjectItem(m, "layer")) == 1,
	    "/snr: +inf SNR is null with snr_class inf");
	m = find_matrix(arr, "model.layers.2.self_attn.q_proj");
	ok(m != NULL && cJSON_IsNull(cJSON_GetObjectItem(m, "snr")) &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(m, "snr_class")),
	    "nan") == 0 &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(m, "status")),
	    "nonfinite") == 0 && cJSON_IsString(cJSON_GetObjectItem(m, "error")),
	    "/snr: NaN SNR is null with snr_class nan, status nonfinite");
	m = find_matrix(arr, "model.layers.3.self_attn.q_proj");
	ok(m != NULL && cJSON_GetNumberValue(cJSON_GetObjectItem(m, "snr")) == 3
	    && cJSON_GetObjectItem(m, "snr_class") == NULL &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(m, "dtype")), "F32")
	    == 0 && cJSON_GetNumberValue(cJSON_GetObjectItem(m, "rows")) == 4,
	    "/snr: finite SNR is a number without a class");
	cJSON_Delete(j);
	api_resp_cleanup(&r);

	get(a, "/snr", "step=100", &r);
	j = parse(&r);
	ok(r.status == 200 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(j, "step")) == 100,
	    "/snr?step=100 (run omitted: the only run)");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	expect_error(a, "GET", "/snr", "step=999", 404, "not_found");
	expect_error(a, "GET", "/snr", "step=abc", 400, "bad_request");
	expect_error(a, "GET", "/snr", "step=-1", 400, "bad_request");
	expect_error(a, "GET", "/snr", "run=ghost", 404, "not_found");
}

/* /spectrum. */
static void
test_spectrum(struct api *a)
{
	struct api_resp	 r;
	cJSON		*j, *v;

	get(a, "/spectrum", "step=100&matrix=model.layers.0.mlp.down_proj", &r);
	j = parse(&r);
	v = cJSON_GetObjectItem(j, "values");
	ok(r.status == 200 && strict(&r) && cJSON_GetArraySize(v) == 4 &&
	    cJSON_GetNumberValue(cJSON_GetArrayItem(v, 0)) == 4 &&
	    cJSON_GetNumberValue(cJSON_GetArrayItem(v, 3)) == 1 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(j, "k")) == 4 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(j, "tau")) == 2 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(j, "step")) == 100 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(j, "mp_rank")) == 2,
	    "/spectrum: 4 values descending, k, tau, step, mp_rank");
	cJSON_Delete(j);
	api_resp_cleanup(&r);

	get(a, "/spectrum", "matrix=model.layers.1.mlp.down_proj.weight", &r);
	j = parse(&r);
	ok(r.status == 200 && strict(&r) &&
	    cJSON_IsNull(cJSON_GetObjectItem(j, "snr")) &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "snr_class")),
	    "inf") == 0, "/spectrum by tensor name, latest: snr null + class");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	expect_error(a, "GET", "/spectrum", "step=100", 400, "bad_request");
	expect_error(a, "GET", "/spectrum", "matrix=nope", 404, "not_found");
	expect_error(a, "GET", "/spectrum",
	    "matrix=model.layers.2.self_attn.q_proj", 404, "not_found");
}

/* True when r is the reference JSON of the fixture's report at step. */
static bool
same_as_scan(const struct api_resp *r, const char *run, long long step)
{
	struct report	*rep;
	char		 path[128], *want = NULL;
	bool		 same;

	snprintf(path, sizeof path, "/ckpt/%s/checkpoint-%lld", run, step);
	if ((rep = make_report(path, step)) != NULL)
		want = report_reference_json(rep);
	same = want != NULL && r->body != NULL && r->len == strlen(want) &&
	    memcmp(r->body, want, r->len) == 0;
	if (!same)
		printf("# want %s\n# got  %.*s\n", want != NULL ? want :
		    "(null)", (int)r->len, r->body != NULL ? r->body : "");
	free(want);
	report_free(rep);
	return same;
}

/* /snr_results.json: scan's file from the store, named for Axolotl. */
static void
test_snr_results(struct api *a)
{
	struct api_resp	r;

	get(a, "/snr_results.json", "run=alpha&step=100", &r);
	ok(r.status == 200 && strcmp(r.content_type, "application/json") == 0 &&
	    same_as_scan(&r, "alpha", 100), "/snr_results.json step 100: "
	    "byte for byte the reference JSON scan writes");
	ok(strcmp(r.disposition, "attachment; filename=\"snr_results_alpha"
	    ".json\"") == 0, "/snr_results.json: named after the run (%s)",
	    r.disposition);
	ok(!has(&r, "layers.2.self_attn.q_proj") && has(&r, "Infinity") &&
	    !has(&r, "NaN") && has(&r, "\"model.layers.1.mlp.down_proj\": {"),
	    "/snr_results.json: the NaN matrix left out, +inf as Infinity");
	api_resp_cleanup(&r);
	get(a, "/snr_results.json", "step=latest", &r);
	ok(r.status == 200 && same_as_scan(&r, "alpha", 300),
	    "/snr_results.json step=latest: step 300's file");
	api_resp_cleanup(&r);
	get(a, "/snr_results.json", "step=200&name=org/My_Model", &r);
	ok(r.status == 200 && same_as_scan(&r, "alpha", 200) &&
	    strcmp(r.disposition, "attachment; filename=\"snr_results_org-My-"
	    "Model.json\"") == 0, "/snr_results.json name=org/My_Model: "
	    "Axolotl's slug org-My-Model (%s)", r.disposition);
	api_resp_cleanup(&r);
	get(a, "/snr_results.json", "name=a\"b\\c/\xc3\xa9", &r);
	ok(r.status == 200 && strcmp(r.disposition, "attachment; filename="
	    "\"snr_results_a\\\"b\\\\c-__.json\"; filename*=UTF-8''snr_results_"
	    "a%22b%5Cc-%C3%A9.json") == 0, "/snr_results.json: quotes escaped, "
	    "non-ASCII in filename* (%s)", r.disposition);
	api_resp_cleanup(&r);
	expect_error(a, "GET", "/snr_results.json", "step=400", 404,
	    "not_found");
	expect_error(a, "GET", "/snr_results.json", "step=7", 404,
	    "not_found");
	expect_error(a, "GET", "/snr_results.json", "run=ghost", 404,
	    "not_found");
	expect_error(a, "GET", "/snr_results.json", "step=x", 400,
	    "bad_request");
	expect_error(a, "GET", "/snr_results.json", "name=a\x01", 400,
	    "bad_request");
	expect_error(a, "GET", "/snr_results.json", "name=", 400,
	    "bad_request");
	call_h(a, "POST", "/snr_results.json", NULL, NULL, &r);
	ok(r.status == 405 && r.disposition[0] == '\0',
	    "POST /snr_results.json: 405 without a Content-Disposition");
	api_resp_cleanup(&r);
}

/* Checks every series of a /history body has ≤ max points. */
static bool
series_bounded(const cJSON *j, int max, int *nseries)
{
	const cJSON	*s;
	bool		 ok = true;

	*nseries = 0;
	cJSON_ArrayForEach(s, cJSON_GetObjectItem(j, "series")) {
		ok = ok && cJSON_GetArraySize(cJSON_GetObjectItem(s, "points"))
		    <= max;
		(*nseries)++;
	}
	return ok;
}

/* /history of training-log metrics, and /train_log. */
static void
test_train_log(struct api *a, struct store *rw, int64_t run_id)
{
	static const struct train_point pts[] = {
		{ 10, 2.5, "loss" }, { 20, 2.25, "loss" }, { 30, 2, "loss" },
		{ 10, 1e-4, "learning_rate" }, { 20, 1.5, "eval_loss" },
	};
	struct spd_errbuf	 eb = { "" };
	struct api_resp		 r;
	cJSON			*j;
	const cJSON		*s, *p, *m;

	get(a, "/train_log", "run=alpha", &r);
	j = parse(&r);
	ok(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(j,
	    "metrics")) == 0, "/train_log before any: no metrics");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	get(a, "/history", "run=alpha&metric=loss", &r);
	j = parse(&r);
	ok(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(j,
	    "series")) == 0, "/history metric=loss before any log: no series");
	cJSON_Delete(j);
	api_resp_cleanup(&r);

	ok(store_train_put(rw, run_id, 30, pts, nitems(pts), &eb) == SPD_OK,
	    "training log stored: %s", eb.msg);
	get(a, "/history", "run=alpha&metric=loss", &r);
	j = parse(&r);
	s = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "series"), 0);
	p = cJSON_GetObjectItem(s, "points");
	ok(r.status == 200 && strict(&r) && cJSON_GetArraySize(
	    cJSON_GetObjectItem(j, "series")) == 1 && strcmp(
	    cJSON_GetStringValue(cJSON_GetObjectItem(j, "metric")), "loss") ==
	    0 && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(s, "module")),
	    "loss") == 0 && cJSON_GetArraySize(p) == 3 &&
	    cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetArrayItem(p, 1),
	    0)) == 20 && cJSON_IsNull(cJSON_GetArrayItem(cJSON_GetArrayItem(p,
	    1), 1)) && cJSON_GetNumberValue(cJSON_GetArrayItem(
	    cJSON_GetArrayItem(p, 1), 2)) == 2.25,
	    "/history metric=loss: one series, [step, null, value]");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	get(a, "/history", "run=alpha&metric=loss&format=csv", &r);
	ok(r.status == 200 && r.len > 21 &&
	    strncmp(r.body, "Wall time,Step,Value\n", 21) == 0 &&
	    has(&r, "\n,10,2.5\n") && has(&r, "\n,30,2\n"),
	    "/history metric=loss CSV: empty wall time");
	api_resp_cleanup(&r);
	get(a, "/history", "run=alpha&metric=eval_loss&max_points=2", &r);
	j = parse(&r);
	ok(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(
	    cJSON_GetArrayItem(cJSON_GetObjectItem(j, "series"), 0),
	    "points")) == 1, "/history metric=eval_loss: its one point");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	get(a, "/history", "run=alpha&metric=snr&max_points=2", &r);
	j = parse(&r);
	ok(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(j,
	    "series")) == (int)nitems(model),
	    "/history metric=snr still per matrix");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	expect_error(a, "GET", "/history", "metric=eval%20loss", 400,
	    "bad_request");
	expect_error(a, "GET", "/history", "metric=not_logged", 400,
	    "bad_request");

	get(a, "/train_log", "run=alpha", &r);
	j = parse(&r);
	m = cJSON_GetObjectItem(j, "metrics");
	s = cJSON_GetArrayItem(m, 2);
	ok(r.status == 200 && cJSON_GetArraySize(m) == 3 &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(s, "name")),
	    "loss") == 0 && cJSON_GetNumberValue(cJSON_GetObjectItem(s,
	    "points")) == 3 && cJSON_GetNumberValue(cJSON_GetObjectItem(s,
	    "first_step")) == 10 && cJSON_GetNumberValue(cJSON_GetObjectItem(s,
	    "last_step")) == 30, "/train_log: names, points, step range");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	expect_error(a, "GET", "/train_log", "run=nosuch", 404, "not_found");
}

/* /history: JSON, filters, classes, downsampling, CSV. */
static void
test_history(struct api *a)
{
	struct api_resp	 r;
	cJSON		*j;
	const cJSON	*s, *p, *cls;
	int		 n = 0;

	get(a, "/history", "run=alpha", &r);
	j = parse(&r);
	ok(r.status == 200 && strict(&r) && series_bounded(j, 3, &n) &&
	    n == (int)nitems(model) && strcmp(cJSON_GetStringValue(
	    cJSON_GetObjectItem(j, "metric")), "snr") == 0,
	    "/history: one series per matrix (%d), 3 points each", n);
	cJSON_Delete(j);
	api_resp_cleanup(&r);

	get(a, "/history", "match=layers\\.1\\.mlp", &r);
	j = parse(&r);
	s = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "series"), 0);
	p = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "points"), 0);
	cls = cJSON_GetObjectItem(s, "classes");
	ok(r.status == 200 && strict(&r) &&
	    cJSON_GetArraySize(cJSON_GetObjectItem(j, "series")) == 1 &&
	    cJSON_GetNumberValue(cJSON_GetArrayItem(p, 0)) == 100 &&
	    cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1)) == 1.7e9 + 100 &&
	    cJSON_IsNull(cJSON_GetArrayItem(p, 2)) &&
	    cJSON_GetArraySize(cls) == 3 && strcmp(cJSON_GetStringValue(
	    cJSON_GetArrayItem(cls, 0)), "inf") == 0,
	    "/history match: the inf series, [step, wall, null] + classes");
	cJSON_Delete(j);
	api_resp_cleanup(&r);

	get(a, "/history", "type=self_attn.q_proj&metric=s1", &r);
	j = parse(&r);
	s = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "series"), 0);
	p = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "points"), 0);
	ok(r.status == 200 && strict(&r) && series_bounded(j, 3, &n) &&
	    n == 5 && cJSON_GetNumberValue(cJSON_GetArrayItem(p, 2)) == 4 &&
	    cJSON_GetObjectItem(s, "classes") == NULL,
	    "/history type + metric s1: 5 series, no classes when finite");
	cJSON_Delete(j);
	api_resp_cleanup(&r);

	get(a, "/history", "max_points=2", &r);
	j = parse(&r);
	s = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "series"), 0);
	p = cJSON_GetObjectItem(s, "points");
	ok(r.status == 200 && series_bounded(j, 2, &n) &&
	    n == (int)nitems(model) && cJSON_GetArraySize(p) == 2 &&
	    cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetArrayItem(p, 0),
	    0)) == 100 &&
	    cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetArrayItem(p, 1),
	    0)) == 300, "/history max_points=2: first and last kept");
	cJSON_Delete(j);
	api_resp_cleanup(&r);

	get(a, "/history", "format=csv&match=layers\\.0\\.mlp", &r);
	ok(r.status == 200 && strncmp(r.content_type, "text/csv", 8) == 0 &&
	    r.len > 21 && strncmp(r.body, "Wall time,Step,Value\n", 21) == 0 &&
	    has(&r, "1700000100.000000,100,1\n") &&
	    has(&r, "1700000300.000000,300,1\n"),
	    "/history csv, one series: Wall time,Step,Value rows");
	api_resp_cleanup(&r);
	get(a, "/history", "format=csv&match=mlp&max_points=2", &r);
	ok(r.status == 200 && r.len > 28 &&
	    strncmp(r.body, "Series,Wall time,Step,Value\n", 28) == 0 &&
	    has(&r, "model.layers.1.mlp.down_proj,1700000100.000000,100,inf\n")
	    && !has(&r, ",200,"),
	    "/history csv, several series: Series column, inf, downsampled");
	api_resp_cleanup(&r);

	expect_error(a, "GET", "/history", "match=(", 400, "bad_request");
	expect_error(a, "GET", "/history", "metric=bogus", 400, "bad_request");
	expect_error(a, "GET", "/history", "format=xml", 400, "bad_request");
	expect_error(a, "GET", "/history", "max_points=1", 400, "bad_request");
	expect_error(a, "GET", "/history", "max_points=100001", 400,
	    "bad_request");
	expect_error(a, "GET", "/history", "max_points=12x", 400,
	    "bad_request");
}

/* Reads the "version" of a JSON selection body (-1 when absent). */
static double
sel_version(const struct api_resp *r)
{
	cJSON	*j = parse(r);
	double	 v = -1;

	if (cJSON_IsNumber(cJSON_GetObjectItem(j, "version")))
		v = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "version"));
	cJSON_Delete(j);
	return v;
}

/* /selection/diff: modules in, out and moved between two steps. */
static void
test_selection_diff(struct api *a)
{
	struct api_resp	r;

	get(a, "/selection/diff", "run=alpha&from=200&to=300", &r);
	ok(r.status == 200 && strict(&r) &&
	    has(&r, "\"added\":[{\"module\":\"model.layers.3.self_attn.q_proj\"") &&
	    has(&r, "\"removed\":[{\"module\":\"model.layers.0.self_attn."
	    "q_proj\"") && has(&r, "\"step\":200") && has(&r, "\"step\":300"),
	    "/selection/diff 200 -> 300: layer 3's q_proj in, layer 0's out");
	api_resp_cleanup(&r);
	get(a, "/selection/diff", "run=alpha&to=200", &r);
	ok(r.status == 200 && has(&r, "\"step\":100") &&
	    has(&r, "\"added\":[],\"removed\":[],\"moved\":[]"),
	    "/selection/diff to=200: from the checkpoint before (100), "
	    "nothing changed");
	api_resp_cleanup(&r);
	expect_error(a, "GET", "/selection/diff", "run=alpha&from=150", 404,
	    "not_found");
	expect_error(a, "GET", "/selection/diff", "run=alpha&run2=nope", 404,
	    "not_found");
	expect_error(a, "GET", "/selection/diff", "run=alpha&from=x", 400,
	    "bad_request");
}


/* The number at key of object o, or NAN. */
static double
num_at(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);

	return cJSON_IsNumber(v) ? cJSON_GetNumberValue(v) : NAN;
}

/* The strings of array arr joined with ',' into buf ("" when none). */
static const char *
joined(const cJSON *arr, char *buf, size_t len)
{
	const cJSON	*e;
	size_t		 n = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(e, arr)
		if (cJSON_IsString(e) && n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s",
			    n > 0 ? "," : "", e->valuestring);
	return buf;
}

/* The module names of the objects of arr (a diff list), sorted, joined. */
static const char *
joined_modules(const cJSON *arr, char *buf, size_t len)
{
	const cJSON	*e;
	cJSON		*names = cJSON_CreateArray();
	const char	*v[64];
	size_t		 n = 0, i, j;

	cJSON_ArrayForEach(e, arr)
		if (n < nitems(v))
			v[n++] = cJSON_GetStringValue(cJSON_GetObjectItem(e,
			    "module"));
	for (i = 1; i < n; i++)		/* insertion sort: a few names */
		for (j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
			const char *t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(names, cJSON_CreateString(v[i]));
	joined(names, buf, len);
	cJSON_Delete(names);
	return buf;
}

/*
 * GET /selection/history?run=alpha&query; checks that its added/removed
 * between consecutive steps are /selection/diff's (compare: diff only at
 * the stored top_percent) and that its last step is /selection's (the
 * modules with modules=1, and the version). Returns the body (cJSON_Delete)
 * or NULL.
 */
static cJSON *
hist_get(struct api *a, const char *query, bool compare, const char *what)
{
	struct api_resp	 r, d;
	char		 q[160], h1[512], h2[512], d1[512], d2[512];
	const cJSON	*steps, *st, *prev = NULL;
	cJSON		*j, *dj, *sj;
	bool		 good, same = true;

	snprintf(q, sizeof q, "run=alpha%s%s", query[0] != '\0' ? "&" : "",
	    query);
	get(a, "/selection/history", q, &r);
	j = parse(&r);
	steps = cJSON_GetObjectItem(j, "steps");
	good = r.status == 200 && strict(&r) && cJSON_IsArray(steps);
	api_resp_cleanup(&r);
	cJSON_ArrayForEach(st, steps) {
		if (!compare || prev == NULL) {
			prev = st;
			continue;
		}
		snprintf(q, sizeof q, "run=alpha&from=%.0f&to=%.0f%s%s",
		    num_at(prev, "step"), num_at(st, "step"),
		    query[0] != '\0' ? "&" : "", query);
		get(a, "/selection/diff", q, &d);
		dj = parse(&d);
		same = same && d.status == 200 && strcmp(joined(
		    cJSON_GetObjectItem(st, "added"), h1, sizeof h1),
		    joined_modules(cJSON_GetObjectItem(dj, "added"), d1,
		    sizeof d1)) == 0 && strcmp(joined(cJSON_GetObjectItem(st,
		    "removed"), h2, sizeof h2), joined_modules(
		    cJSON_GetObjectItem(dj, "removed"), d2, sizeof d2)) == 0;
		cJSON_Delete(dj);
		api_resp_cleanup(&d);
		prev = st;
	}
	snprintf(q, sizeof q, "run=alpha%s%s", query[0] != '\0' ? "&" : "",
	    query);
	get(a, "/selection", q, &d);
	sj = parse(&d);
	st = cJSON_GetArrayItem(steps, cJSON_GetArraySize(steps) - 1);
	same = same && d.status == 200 && num_at(st, "version") ==
	    num_at(sj, "version") && num_at(st, "step") == num_at(sj, "step") &&
	    num_at(st, "count") == cJSON_GetArraySize(cJSON_GetObjectItem(sj,
	    "modules")) && (cJSON_GetObjectItem(st, "modules") == NULL ||
	    strcmp(joined(cJSON_GetObjectItem(st, "modules"), h1, sizeof h1),
	    joined(cJSON_GetObjectItem(sj, "modules"), d1, sizeof d1)) == 0);
	cJSON_Delete(sj);
	api_resp_cleanup(&d);
	ok(good && same, "/selection/history %s: %s", query, what);
	if (!good) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

/* The step i of history h: "step:version:count:+added:-removed". */
static const char *
hist_line(const cJSON *h, int i, char *buf, size_t len)
{
	const cJSON	*st = cJSON_GetArrayItem(cJSON_GetObjectItem(h,
			    "steps"), i);
	char		 a[512], r[512];

	snprintf(buf, len, "%.0f:%.0f:%.0f:+%s:-%s", num_at(st, "step"),
	    num_at(st, "version"), num_at(st, "count"),
	    joined(cJSON_GetObjectItem(st, "added"), a, sizeof a),
	    joined(cJSON_GetObjectItem(st, "removed"), r, sizeof r));
	return buf;
}

#define Q0	"model.layers.0.self_attn.q_proj"
#define Q1	"model.layers.1.self_attn.q_proj"
#define Q3	"model.layers.3.self_attn.q_proj"
#define ALL25	"lm_head,model.embed_tokens,model.layers.0.self_attn.q_proj," \
		"model.layers.1.mlp.down_proj"

/*
 * /selection/history: the stored selections at the configured
 * top_percent (step 300 moves q_proj from layer 0 to 3), even when the
 * configured stickiness (1) would now keep layer 0; the walk of /selection
 * at another one (50: layer 1 out for layer 3 at step 300, or nothing
 * with stickiness 1); members only with modules=1; errors.
 */
static void
test_selection_history(struct api *a, struct api_config *cfg)
{
	cJSON	*h;
	char	 b0[1024], b1[1024], b2[1024];

	h = hist_get(a, "", true, "the stored steps, as /selection/diff");
	ok(h != NULL && cJSON_GetArraySize(cJSON_GetObjectItem(h, "steps")) ==
	    3 && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(h, "run")),
	    "alpha") == 0 && num_at(h, "top_percent") == TP &&
	    num_at(h, "stickiness") == 0 && cJSON_IsTrue(cJSON_GetObjectItem(h,
	    "include_embeddings")) && strcmp(hist_line(h, 0, b0, sizeof b0),
	    "100:1:4:+" ALL25 ":-") == 0 && strcmp(hist_line(h, 1, b1,
	    sizeof b1), "200:1:4:+:-") == 0 && strcmp(hist_line(h, 2, b2,
	    sizeof b2), "300:2:4:+" Q3 ":-" Q0) == 0 &&
	    cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(h,
	    "steps"), 0), "modules") == NULL,
	    "/selection/history: %s | %s | %s", b0, b1, b2);
	cJSON_Delete(h);

	h = hist_get(a, "modules=1", true, "members as /selection's");
	ok(h != NULL && strcmp(joined(cJSON_GetObjectItem(cJSON_GetArrayItem(
	    cJSON_GetObjectItem(h, "steps"), 1), "modules"), b0, sizeof b0),
	    ALL25) == 0, "/selection/history modules=1: step 200's members");
	cJSON_Delete(h);

	cfg->stickiness = 1;
	h = hist_get(a, "", true, "stored, not recomputed with stickiness 1");
	ok(h != NULL && num_at(h, "stickiness") == 1 && strcmp(hist_line(h, 2,
	    b2, sizeof b2), "300:2:4:+" Q3 ":-" Q0) == 0,
	    "/selection/history, stickiness 1 now: the stored step 300 (%s)",
	    b2);
	cJSON_Delete(h);
	h = hist_get(a, "top_percent=50", false, "the walk, stickiness 1");
	ok(h != NULL && strcmp(hist_line(h, 2, b2, sizeof b2),
	    "300:1:6:+:-") == 0, "/selection/history top 50, stickiness 1: "
	    "layer 1 kept (%s)", b2);
	cJSON_Delete(h);
	cfg->stickiness = 0;
	h = hist_get(a, "top_percent=50", true, "the walk, stickiness 0");
	ok(h != NULL && strcmp(hist_line(h, 1, b1, sizeof b1),
	    "200:1:6:+:-") == 0 && strcmp(hist_line(h, 2, b2, sizeof b2),
	    "300:2:6:+" Q3 ":-" Q1) == 0,
	    "/selection/history top 50: %s | %s", b1, b2);
	cJSON_Delete(h);

	expect_error(a, "GET", "/selection/history", "run=alpha&top_percent=0",
	    400, "bad_request");
	expect_error(a, "GET", "/selection/history",
	    "run=alpha&top_percent=101", 400, "bad_request");
	expect_error(a, "GET", "/selection/history", "run=alpha&modules=2",
	    400, "bad_request");
	expect_error(a, "GET", "/selection/history", "run=nope", 404,
	    "not_found");
}

/*
 * /lr_scales: linear in the rank among a type's selected modules, from
 * lr_scale_max at the top to 1.0 at the cut-off; embeddings 1.0. And
 * stickiness in the walk for another top_percent (50: q_proj keeps 2 of
 * layers 0, 1, 3, 4): at step 300 layer 3 jumps from rank 4 to 1, layer 1
 * falls to rank 3; with stickiness 1 layer 1 stays and the set (and its
 * version) does not change.
 */
static void
test_lr_scales(struct api *a, struct api_config *cfg)
{
	struct api_resp	 r;
	cJSON		*j, *sc;

	get(a, "/lr_scales", "run=alpha&top_percent=100", &r);
	j = parse(&r);
	sc = cJSON_GetObjectItem(j, "scales");
	ok(r.status == 200 && strict(&r) && num_at(j, "step") == 300 &&
	    num_at(j, "version") == 1 && num_at(j, "top_percent") == 100 &&
	    num_at(j, "lr_scale_max") == 2 &&
	    num_at(sc, "model.layers.3.self_attn.q_proj") == 2 &&
	    fabs(num_at(sc, "model.layers.0.self_attn.q_proj") - 5.0 / 3) <
	    1e-12 &&
	    fabs(num_at(sc, "model.layers.1.self_attn.q_proj") - 4.0 / 3) <
	    1e-12 &&
	    num_at(sc, "model.layers.4.self_attn.q_proj") == 1 &&
	    isnan(num_at(sc, "model.layers.2.self_attn.q_proj")) &&
	    num_at(sc, "model.layers.1.mlp.down_proj") == 2 &&
	    num_at(sc, "model.layers.3.mlp.down_proj") == 1 &&
	    num_at(sc, "model.embed_tokens") == 1 &&
	    num_at(sc, "lm_head") == 1 && cJSON_GetArraySize(sc) == 10,
	    "/lr_scales top 100: 2, 5/3, 4/3, 1 down the ranks; NaN left "
	    "out; embeddings 1");
	cJSON_Delete(j);
	api_resp_cleanup(&r);

	get(a, "/lr_scales", "run=alpha", &r);
	j = parse(&r);
	sc = cJSON_GetObjectItem(j, "scales");
	ok(r.status == 200 && num_at(j, "top_percent") == TP &&
	    num_at(sc, "model.layers.3.self_attn.q_proj") == 2 &&
	    num_at(sc, "model.layers.1.mlp.down_proj") == 2 &&
	    cJSON_GetArraySize(sc) == 4,
	    "/lr_scales: one selected per type gets lr_scale_max");
	cJSON_Delete(j);
	api_resp_cleanup(&r);

	get(a, "/lr_scales", "run=alpha&top_percent=50", &r);
	j = parse(&r);
	sc = cJSON_GetObjectItem(j, "scales");
	ok(r.status == 200 && num_at(j, "version") == 2 &&
	    num_at(sc, "model.layers.3.self_attn.q_proj") == 2 &&
	    num_at(sc, "model.layers.0.self_attn.q_proj") == 1 &&
	    isnan(num_at(sc, "model.layers.1.self_attn.q_proj")),
	    "/lr_scales top 50, stickiness 0: layers 3, 0 (version 2)");
	cJSON_Delete(j);
	api_resp_cleanup(&r);

	cfg->stickiness = 1;
	get(a, "/lr_scales", "run=alpha&top_percent=50", &r);
	j = parse(&r);
	sc = cJSON_GetObjectItem(j, "scales");
	ok(r.status == 200 && num_at(j, "version") == 1 &&
	    num_at(sc, "model.layers.0.self_attn.q_proj") == 2 &&
	    num_at(sc, "model.layers.1.self_attn.q_proj") == 1 &&
	    isnan(num_at(sc, "model.layers.3.self_attn.q_proj")),
	    "/lr_scales top 50, stickiness 1: layer 1 kept at rank 3, "
	    "layer 3 kept out (version 1)");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	get(a, "/selection", "run=alpha&top_percent=50", &r);
	ok(r.status == 200 && sel_version(&r) == 1 &&
	    has(&r, "\"self_attn.q_proj\":[\"model.layers.0.self_attn.q_proj\","
	    "\"model.layers.1.self_attn.q_proj\"]") &&
	    has(&r, ",\"stickiness\":1}"),
	    "/selection top 50, stickiness 1: the same sticky set, version 1");
	api_resp_cleanup(&r);
	cfg->stickiness = 0;

	expect_error(a, "GET", "/lr_scales", "run=nope", 404, "not_found");
	expect_error(a, "GET", "/lr_scales", "run=alpha&top_percent=0", 400,
	    "bad_request");
}

/* /selection: stored and computed, formats, ETag and 304. */
static void
test_selection(struct api *a)
{
	struct api_resp	 r;
	struct hdrs	 h = { 0 };
	cJSON		*j;

	get(a, "/selection", NULL, &r);
	j = parse(&r);
	ok(r.status == 200 && strict(&r) && sel_version(&r) == 2 &&
	    strcmp(r.etag, "\"alpha-25-2\"") == 0 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(j, "step")) == 300 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(j, "top_percent")) == 25 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(j, "stickiness")) == 0,
	    "/selection: stored body, version 2, ETag \"alpha-25-2\", "
	    "stickiness 0 (%s)", r.etag);
	ok(has(&r, "\"model.layers.3.self_attn.q_proj\"") &&
	    has(&r, "\"model.layers.1.mlp.down_proj\"") &&
	    !has(&r, "\"model.layers.0.self_attn.q_proj\""),
	    "/selection: the highest SNR per type (inf first)");
	cJSON_Delete(j);
	api_resp_cleanup(&r);

	h.inm = "\"alpha-25-2\"";
	call_h(a, "GET", "/selection", "run=alpha", &h, &r);
	ok(r.status == 304 && r.body == NULL && r.etag[0] == '"',
	    "If-None-Match equal: 304, no body, ETag kept");
	api_resp_cleanup(&r);
	h.inm = "W/\"x\", \"alpha-25-2\"";
	call_h(a, "GET", "/selection", NULL, &h, &r);
	ok(r.status == 304, "If-None-Match list with it: 304");
	api_resp_cleanup(&r);
	h.inm = "\"alpha-25-1\"";
	call_h(a, "GET", "/selection", NULL, &h, &r);
	ok(r.status == 200 && sel_version(&r) == 2,
	    "If-None-Match of an older version: 200");
	api_resp_cleanup(&r);

	get(a, "/selection", "format=yaml", &r);
	ok(r.status == 200 && strncmp(r.body, "unfrozen_parameters:\n", 21) == 0
	    && has(&r, "- ^lm_head.weight$\n") &&
	    has(&r, "- model.layers.3.self_attn.q_proj\n") &&
	    strcmp(r.etag, "\"alpha-25-2\"") == 0,
	    "/selection yaml: Axolotl layout, same ETag");
	api_resp_cleanup(&r);
	get(a, "/selection", "format=regex", &r);
	ok(r.status == 200 && strncmp(r.content_type, "text/plain", 10) == 0 &&
	    has(&r, "^model\\.layers\\.1\\.mlp\\.down_proj\\.weight$\n"),
	    "/selection regex: anchored, escaped patterns");
	api_resp_cleanup(&r);

	get(a, "/selection", "top_percent=50", &r);
	j = parse(&r);
	ok(r.status == 200 && strict(&r) && sel_version(&r) == 2 &&
	    strcmp(r.etag, "\"alpha-50-2\"") == 0 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(j, "top_percent")) == 50 &&
	    has(&r, "\"model.layers.0.mlp.down_proj\""),
	    "/selection top_percent=50: computed, version 2 (%s)", r.etag);
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	get(a, "/selection", "top_percent=100", &r);
	ok(r.status == 200 && sel_version(&r) == 1 &&
	    strcmp(r.etag, "\"alpha-100-1\"") == 0,
	    "/selection top_percent=100: the set never changed, version 1");
	api_resp_cleanup(&r);

	expect_error(a, "GET", "/selection", "top_percent=0", 400,
	    "bad_request");
	expect_error(a, "GET", "/selection", "top_percent=101", 400,
	    "bad_request");
	expect_error(a, "GET", "/selection", "format=toml", 400,
	    "bad_request");
	expect_error(a, "GET", "/selection", "wait=301", 400, "bad_request");
	expect_error(a, "GET", "/selection", "wait=1.5", 400, "bad_request");
}

/* What the writer thread of the long-poll test does. */
struct writer {
	struct store	*rw;
	struct hub	*hub;
	int64_t		 run_id;
	enum spd_err	 rc;
};

/* Stores checkpoint 500 (a new selection) after 150 ms and announces it. */
static void *
writer_main(void *arg)
{
	struct writer	*w = arg;
	struct timespec	 ts = { 0, 150 * 1000000L };
	long long	 v;

	nanosleep(&ts, NULL);
	hub_publish(w->hub, "progress", "{}");
	w->rc = put_ckpt(w->rw, w->run_id, "alpha", 500, &v);
	hub_publish(w->hub, "selection", "{\"version\":3}");
	return NULL;
}

/* ?wait=: times out with 304, and wakes on a new version. */
static void
test_long_poll(struct api *a, struct store *rw, struct hub *hub,
    int64_t run_id)
{
	struct writer	 w = { rw, hub, run_id, SPD_OK };
	struct api_resp	 r;
	struct hdrs	 h = { "\"alpha-25-2\"", NULL };
	pthread_t	 t;
	double		 t0;

	t0 = spd_now();
	call_h(a, "GET", "/selection", "wait=1", &h, &r);
	ok(r.status == 304 && spd_now() - t0 >= 0.9 && spd_now() - t0 < 3,
	    "wait=1 with the current ETag: 304 after ~1 s (%.2f s)",
	    spd_now() - t0);
	api_resp_cleanup(&r);

	pthread_create(&t, NULL, writer_main, &w);
	t0 = spd_now();
	call_h(a, "GET", "/selection", "wait=10", &h, &r);
	pthread_join(t, NULL);
	ok(w.rc == SPD_OK && r.status == 200 && sel_version(&r) == 3 &&
	    strcmp(r.etag, "\"alpha-25-3\"") == 0,
	    "long poll: woken by the new selection, version 3 (%d %s)",
	    r.status, r.etag);
	ok(spd_now() - t0 < 5, "long poll returned early (%.2f s)",
	    spd_now() - t0);
	api_resp_cleanup(&r);
}

/* /events, /rescan (open and with a token), methods, limits. */
static void
test_misc(struct api *a, struct api_config *cfg, struct hub *hub)
{
	struct api_resp	 r;
	struct hdrs	 h = { NULL, NULL };
	char		 q[API_MAX_QUERY + 16];

	get(a, "/events", NULL, &r);
	ok(r.status == 200 && r.sse && r.sse_after == hub_seq(hub) &&
	    strcmp(r.content_type, "text/event-stream") == 0,
	    "/events: SSE from the current hub position");
	api_resp_cleanup(&r);

	call_h(a, "POST", "/rescan", NULL, NULL, &r);
	ok(r.status == 202 && has(&r, "{\"rescan\":\"all\"}") && rescans == 1 &&
	    strcmp(last_rescan, "(all)") == 0, "POST /rescan: 202 all");
	api_resp_cleanup(&r);
	call_h(a, "POST", "/rescan", "run=alpha", NULL, &r);
	ok(r.status == 202 && has(&r, "\"alpha\"") &&
	    strcmp(last_rescan, "alpha") == 0, "POST /rescan?run=alpha: 202");
	api_resp_cleanup(&r);
	expect_error(a, "POST", "/rescan", "run=zzz", 404, "not_found");

	cfg->api_token = "s3cret";
	call_h(a, "POST", "/rescan", NULL, &h, &r);
	ok(r.status == 401 && strict(&r), "token set, none sent: 401");
	api_resp_cleanup(&r);
	h.auth = "Bearer s3cre";
	call_h(a, "POST", "/rescan", NULL, &h, &r);
	ok(r.status == 401, "wrong (prefix) token: 401");
	api_resp_cleanup(&r);
	h.auth = "Bearer s3cret!";
	call_h(a, "POST", "/rescan", NULL, &h, &r);
	ok(r.status == 401, "wrong (longer) token: 401");
	api_resp_cleanup(&r);
	h.auth = "Basic s3cret";
	call_h(a, "POST", "/rescan", NULL, &h, &r);
	ok(r.status == 401, "not a bearer token: 401");
	api_resp_cleanup(&r);
	h.auth = "Bearer s3cret";
	call_h(a, "POST", "/rescan", NULL, &h, &r);
	ok(r.status == 202 && rescans == 3, "right token: 202");
	api_resp_cleanup(&r);
	cfg->api_token = NULL;

	call_h(a, "GET", "/rescan", NULL, NULL, &r);
	ok(r.status == 405 && r.allow_post && strict(&r),
	    "GET /rescan: 405, Allow: POST");
	api_resp_cleanup(&r);
	call_h(a, "POST", "/runs", NULL, NULL, &r);
	ok(r.status == 405 && !r.allow_post, "POST /runs: 405, Allow: GET");
	api_resp_cleanup(&r);
	call_h(a, "HEAD", "/health", NULL, NULL, &r);
	ok(r.status == 200, "HEAD /health: 200");
	api_resp_cleanup(&r);

	memset(q, 'a', sizeof q - 1);
	q[0] = 'x';
	q[1] = '=';
	q[sizeof q - 1] = '\0';
	expect_error(a, "GET", "/runs", q, 414, "uri_too_long");
	expect_error(a, "GET", "/nope", NULL, 404, "not_found");
	expect_error(a, "GET", "/../../etc/passwd", NULL, 404, "not_found");
	expect_error(a, "GET", "/assets/../api.c", NULL, 404, "not_found");
}

/* A second run makes ?run= necessary. */
static void
test_two_runs(struct api *a, struct store *rw)
{
	struct spd_errbuf	eb;
	struct api_resp		r;
	int64_t			id;

	ok(store_run_ensure(rw, "beta", "/ckpt/beta", &id, &eb) == SPD_OK,
	    "second run beta");
	expect_error(a, "GET", "/snr", NULL, 400, "bad_request");
	expect_error(a, "GET", "/selection", "run=beta", 404, "no_selection");
	get(a, "/selection", "run=alpha", &r);
	ok(r.status == 200, "/selection?run=alpha with two runs: 200");
	api_resp_cleanup(&r);
	get(a, "/checkpoints", "run=beta", &r);
	ok(r.status == 200 && has(&r, "[]"), "/checkpoints of an empty run: []");
	api_resp_cleanup(&r);
}

/* GET /alerts, the alert object, and the alert families of /metrics. */
static void
test_alerts_api(struct api *a, struct store *rw)
{
	struct spd_errbuf	 eb;
	struct api_resp		 r;
	struct alert		 al = { .kind = ALERT_SNR_JUMP, .value = 3.5,
	    .threshold = 2, .count = 2, .modules = { "m.q", "m.k" },
	    .nmodules = 2, .message = "2 matrices jumped" };
	struct alert_row	 row = { .id = 7, .run = "alpha", .step = -1,
	    .kind = "stalled", .severity = "warning", .message = "m",
	    .value = NAN, .threshold = 1, .count = 0, .time = 1.5 };
	cJSON			*j, *arr, *o;
	int64_t			 alpha = 0, beta = 0, id1 = 0, id2 = 0;
	char			*s;

	ok(store_run_find(rw, "alpha", &alpha, &eb) == SPD_OK &&
	    store_run_find(rw, "beta", &beta, &eb) == SPD_OK, "runs for alerts");
	get(a, "/alerts", NULL, &r);
	ok(r.status == 200 && has(&r, "{\"alerts\":[]}"),
	    "/alerts with none yet: [] (no run needed with two runs)");
	api_resp_cleanup(&r);
	ok(store_alert_add(rw, alpha, 300, &al, &id1, NULL, &eb) == SPD_OK &&
	    id1 > 0, "an snr_jump of alpha stored");
	al.kind = ALERT_NONFINITE;
	al.nmodules = 0;
	ok(store_alert_add(rw, beta, 10, &al, &id2, NULL, &eb) == SPD_OK &&
	    id2 > id1, "a nonfinite of beta stored");
	get(a, "/alerts", NULL, &r);
	j = parse(&r);
	arr = cJSON_GetObjectItem(j, "alerts");
	ok(r.status == 200 && cJSON_GetArraySize(arr) == 2 &&
	    cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "id")->valuedouble
	    == (double)id2, "/alerts: both runs, newest first");
	o = cJSON_GetArrayItem(arr, 1);
	ok(o != NULL && strcmp(cJSON_GetObjectItem(o, "run")->valuestring,
	    "alpha") == 0 && cJSON_GetObjectItem(o, "step")->valuedouble == 300 &&
	    strcmp(cJSON_GetObjectItem(o, "kind")->valuestring, "snr_jump") == 0
	    && strcmp(cJSON_GetObjectItem(o, "severity")->valuestring,
	    "warning") == 0 && cJSON_GetObjectItem(o, "value")->valuedouble ==
	    3.5 && cJSON_GetObjectItem(o, "threshold")->valuedouble == 2 &&
	    cJSON_GetObjectItem(o, "count")->valuedouble == 2 &&
	    cJSON_GetArraySize(cJSON_GetObjectItem(o, "modules")) == 2 &&
	    strcmp(cJSON_GetObjectItem(o, "message")->valuestring,
	    "2 matrices jumped") == 0 &&
	    cJSON_GetObjectItem(o, "time")->valuedouble > 1e9,
	    "the alert object's fields");
	o = cJSON_GetArrayItem(arr, 0);
	ok(o != NULL && strcmp(cJSON_GetObjectItem(o, "severity")->valuestring,
	    "critical") == 0 && cJSON_IsArray(cJSON_GetObjectItem(o,
	    "modules")) && cJSON_GetArraySize(cJSON_GetObjectItem(o,
	    "modules")) == 0, "nonfinite: critical, modules []");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	get(a, "/alerts", "run=beta", &r);
	j = parse(&r);
	ok(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(j,
	    "alerts")) == 1, "?run=beta: its one alert");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	{
		char q[64];

		snprintf(q, sizeof q, "since=%lld", (long long)id1);
		get(a, "/alerts", q, &r);
		j = parse(&r);
		ok(r.status == 200 && cJSON_GetArraySize(
		    cJSON_GetObjectItem(j, "alerts")) == 1, "?since=id: "
		    "only newer ones");
		cJSON_Delete(j);
		api_resp_cleanup(&r);
	}
	get(a, "/alerts", "limit=1", &r);
	j = parse(&r);
	ok(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(j,
	    "alerts")) == 1, "?limit=1: one");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	expect_error(a, "GET", "/alerts", "run=nosuch", 404, "not_found");
	expect_error(a, "GET", "/alerts", "since=-1", 400, "bad_request");
	expect_error(a, "GET", "/alerts", "since=x", 400, "bad_request");
	expect_error(a, "GET", "/alerts", "limit=0", 400, "bad_request");
	expect_error(a, "GET", "/alerts", "limit=1001", 400, "bad_request");
	s = api_alert_json(&row);
	ok(s != NULL && strstr(s, "\"step\":null") != NULL &&
	    strstr(s, "\"value\":null,\"value_class\":\"nan\"") != NULL &&
	    strstr(s, "\"modules\":[]") != NULL, "api_alert_json: no step, "
	    "NaN value as null with its class: %s", s);
	free(s);
	get(a, "/metrics", NULL, &r);
	ok(has(&r, "# TYPE spectrumd_alerts_total counter\n") &&
	    has(&r, "spectrumd_alerts_total{run=\"alpha\",kind=\"snr_jump\"} "
	    "1\n") && has(&r, "spectrumd_alerts_total{run=\"beta\","
	    "kind=\"nonfinite\"} 1\n") && !has(&r, "kind=\"churn\""),
	    "/metrics: alerts by run and kind that occurred");
	ok(has(&r, "# TYPE spectrumd_run_stalled gauge\n") &&
	    has(&r, "spectrumd_run_stalled{run=\"alpha\"} 0\n") &&
	    has(&r, "spectrumd_run_stalled{run=\"beta\"} 0\n"),
	    "/metrics: no run stalled");
	api_resp_cleanup(&r);
}

/* Checks one Prometheus sample line: name{labels} value, value not NaN. */
static bool
prom_line_ok(const char *line)
{
	const char	*p = line, *sp;
	char		*end;
	double		 v;

	if (strncmp(line, "# HELP spectrumd_", 17) == 0 ||
	    strncmp(line, "# TYPE spectrumd_", 17) == 0)
		return true;
	if (strncmp(line, "spectrumd_", 10) != 0)
		return false;
	p += strspn(p, "abcdefghijklmnopqrstuvwxyz_0123456789");
	if (*p == '{' && (p = strchr(p, '}')) != NULL)
		p++;
	if (p == NULL || *p != ' ' || (sp = p + 1) == NULL)
		return false;
	v = strtod(sp, &end);
	return end != sp && *end == '\0' && !isnan(v);
}

#ifdef HAVE_CUDA
#define BACKENDS ",cuda"
#else
#define BACKENDS ""
#endif

/* Reads the value of the sample line starting with prefix. */
static bool
prom_value(const struct api_resp *r, const char *prefix, double *v)
{
	const char	*p;
	char		*end;
	size_t		 n = strlen(prefix);

	*v = 0;
	if (r->body == NULL || (p = memmem(r->body, r->len, prefix, n)) ==
	    NULL)
		return false;
	*v = strtod(p + n, &end);
	return end != p + n && *end == '\n';
}

/* /metrics: families present, every line well formed. */
static void
test_metrics(struct api *a)
{
	struct api_resp	 r;
	char		*copy, *line, *save = NULL;
	int		 lines = 0, bad = 0;
	double		 v = 0, now;
	bool		 got;

	get(a, "/metrics", NULL, &r);
	ok(r.status == 200 && strncmp(r.content_type,
	    "text/plain; version=0.0.4", 25) == 0, "/metrics: 200 text 0.0.4");
	ok(has(&r, "spectrumd_checkpoints{run=\"alpha\",status=\"done\"} 4\n") &&
	    has(&r, "spectrumd_checkpoints{run=\"alpha\",status=\"pending\"} "
	    "1\n") && has(&r, "spectrumd_checkpoints{run=\"beta\",status="
	    "\"done\"} 0\n"), "/metrics: checkpoints by run and status");
	ok(has(&r, "# TYPE spectrumd_analysis_seconds histogram\n") &&
	    has(&r, "spectrumd_analysis_seconds_bucket{le=\"1\"} 1\n") &&
	    has(&r, "spectrumd_analysis_seconds_bucket{le=\"+Inf\"} 2\n") &&
	    has(&r, "spectrumd_analysis_seconds_count 2\n") &&
	    has(&r, "spectrumd_analysis_seconds_sum 50.5\n"),
	    "/metrics: analysis seconds histogram");
	ok(has(&r, "# TYPE spectrumd_matrices_analyzed_total counter\n") &&
	    has(&r, "spectrumd_matrices_analyzed_total 30\n") &&
	    has(&r, "# TYPE spectrumd_nonfinite_matrices_total counter\n") &&
	    has(&r, "spectrumd_nonfinite_matrices_total 2\n") &&
	    has(&r, "spectrumd_backend_info{backend=\"cpu\"} 1\n") &&
	    has(&r, "spectrumd_selection_version{run=\"alpha\"} 3\n") &&
	    !has(&r, "spectrumd_selection_version{run=\"beta\"}"),
	    "/metrics: matrices and nonfinite counters, backend info, "
	    "selection version");
	ok(has(&r, "# TYPE spectrumd_selection_churn gauge\n") &&
	    has(&r, "spectrumd_selection_churn{run=\"alpha\"} 2\n") &&
	    !has(&r, "spectrumd_selection_churn{run=\"beta\"}"),
	    "/metrics: selection churn, layer 3 out and layer 0 in from 300 "
	    "to 500");
	ok(has(&r, "spectrumd_build_info{version=\"9.9.9\",backends=\"cpu"
	    BACKENDS "\"} 1\n"), "/metrics: build info with version and "
	    "backends");
	ok(has(&r, "# TYPE spectrumd_run_latest_step gauge\n") &&
	    has(&r, "spectrumd_run_latest_step{run=\"alpha\"} 500\n") &&
	    !has(&r, "spectrumd_run_latest_step{run=\"beta\"}") &&
	    has(&r, "spectrumd_run_nonfinite_matrices{run=\"alpha\"} 1\n") &&
	    !has(&r, "spectrumd_run_nonfinite_matrices{run=\"beta\"}"),
	    "/metrics: latest analysed step and its non-finite matrices, "
	    "none for a run without analyses");
	got = prom_value(&r, "spectrumd_run_last_analysis_timestamp_seconds{"
	    "run=\"alpha\"} ", &v);
	now = (double)time(NULL);
	ok(got && v > now - 600 && v <= now + 5 &&
	    !has(&r, "spectrumd_run_last_analysis_timestamp_seconds{run="
	    "\"beta\"}"), "/metrics: time of the last analysis (%.0f)", v);
	ok(has(&r, "spectrumd_analysis_seconds_bucket{le=\"3600\"} 2\n") &&
	    has(&r, "spectrumd_analysis_seconds_bucket{le=\"1800\"} 2\n"),
	    "/metrics: histogram buckets up to an hour");
	ok(has(&r, "# TYPE spectrumd_http_requests_total counter\n") &&
	    has(&r, "spectrumd_http_rejected_connections_total{reason=\"limit\"}"
	    " 3\n") && has(&r, "spectrumd_http_rejected_connections_total{"
	    "reason=\"idle\"} 0\n") && has(&r, "spectrumd_http_connections 0\n"),
	    "/metrics: HTTP rejections by reason, open connections");
	copy = strndup(r.body != NULL ? r.body : "", r.len);
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		lines++;
		if (!prom_line_ok(line)) {
			bad++;
			printf("# bad metrics line: %s\n", line);
		}
	}
	ok(lines > 20 && bad == 0, "/metrics: %d lines, all well formed",
	    lines);
	free(copy);
	api_resp_cleanup(&r);
}

/* Writes text to dir/name. */
static void
write_file(const char *d, const char *name, const char *text)
{
	char	 p[800];
	FILE	*fp;

	snprintf(p, sizeof p, "%s/%s", d, name);
	if ((fp = fopen(p, "w")) != NULL) {
		fputs(text, fp);
		fclose(fp);
	}
}

/* Bytes that are not UTF-8 never reach a JSON body as they are. */
static void
test_utf8(void)
{
	static const struct {
		const char	*in, *out;
	} cases[] = {
		{ "plain", "plain" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", NULL },
		{ "\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd" },
		{ "a\xc3(", "a\xef\xbf\xbd(" },		/* cut sequence */
		{ "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },	/* overlong */
		{ "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
		    "\xef\xbf\xbd" },			/* > U+10FFFF */
	};
	struct api_resp	 r = { 0 };
	char		*s;
	size_t		 i;

	for (i = 0; i < nitems(cases); i++) {
		const char *want = cases[i].out != NULL ? cases[i].out :
		    cases[i].in;

		s = spd_utf8_scrub(cases[i].in, strlen(cases[i].in));
		ok(s != NULL && strcmp(s, want) == 0 &&
		    spd_utf8_valid(s, strlen(s)) &&
		    spd_utf8_valid(cases[i].in, strlen(cases[i].in)) ==
		    (cases[i].out == NULL || strcmp(cases[i].in, want) == 0),
		    "utf8 case %zu scrubbed as expected", i);
		free(s);
	}
	api_error(&r, 404, "not_found", "unknown run '\xff\xfe'");
	ok(r.status == 404 && spd_utf8_valid(r.body, r.len) &&
	    strstr(r.body, "\xef\xbf\xbd\xef\xbf\xbd") != NULL,
	    "an error echoing bytes that are not UTF-8 is valid UTF-8 JSON");
	api_resp_cleanup(&r);
}

/* The static whitelist, and the placeholder without a dashboard. */
static void
test_static(struct api_config *cfg)
{
	struct spd_errbuf	 eb;
	struct api		*w = NULL;
	struct api_resp		 r;
	struct hdrs		 h = { NULL, NULL };
	char			 assets[700];

	cfg->web_dir = "/nonexistent/spectrumd-web";
	ok(api_new(cfg, &w, &eb) == SPD_OK, "missing web_dir: api_new ok");
	get(w, "/", NULL, &r);
	ok(r.status == 200 && has(&r, "not installed") &&
	    has(&r, "href=\"/runs\"") &&
	    strncmp(r.content_type, "text/html", 9) == 0,
	    "/ without a dashboard: the placeholder page");
	api_resp_cleanup(&r);
	expect_error(w, "GET", "/index.html", NULL, 404, "not_found");
	api_free(w);

	snprintf(webdir, sizeof webdir, "%s/web", tmp);
	snprintf(assets, sizeof assets, "%s/assets", webdir);
	mkdir(webdir, 0700);
	mkdir(assets, 0700);
	write_file(webdir, "index.html", "<html>dashboard</html>\n");
	write_file(webdir, "secret.db", "no");
	write_file(webdir, ".hidden.js", "no");
	write_file(assets, "app.js", "console.log(1);\n");
	cfg->web_dir = webdir;
	w = NULL;
	ok(api_new(cfg, &w, &eb) == SPD_OK, "api_new with a web_dir");
	get(w, "/", NULL, &r);
	ok(r.status == 200 && has(&r, "dashboard") && r.body_static &&
	    r.etag[0] == '"', "/ serves index.html (borrowed body, ETag)");
	h.inm = r.etag[0] != '\0' ? strdup(r.etag) : NULL;
	api_resp_cleanup(&r);
	call_h(w, "GET", "/index.html", NULL, &h, &r);
	ok(r.status == 304 && r.body == NULL, "static If-None-Match: 304");
	free((char *)(uintptr_t)h.inm);
	api_resp_cleanup(&r);
	get(w, "/assets/app.js", NULL, &r);
	ok(r.status == 200 && has(&r, "console.log") &&
	    strncmp(r.content_type, "text/javascript", 15) == 0,
	    "/assets/app.js: text/javascript");
	api_resp_cleanup(&r);
	expect_error(w, "GET", "/secret.db", NULL, 404, "not_found");
	expect_error(w, "GET", "/.hidden.js", NULL, 404, "not_found");
	expect_error(w, "GET", "/app.js", NULL, 404, "not_found");
	expect_error(w, "POST", "/", NULL, 405, "method_not_allowed");
	api_free(w);
	cfg->web_dir = NULL;
}

/* /ready, /runs and /metrics with the daemon's health state. */
static void
test_health(struct api *a, struct api_config *cfg)
{
	static const char *const names[] = { "alpha" };
	struct api_resp	 r;
	struct health	*h = health_new();
	cJSON		*j;

	if (!ok(h != NULL && health_set_runs(h, names, 1) == SPD_OK,
	    "health state"))
		return;
	cfg->health = h;
	health_set_run(h, 0, HEALTH_RUN_MISSING);
	get(a, "/runs", NULL, &r);
	j = parse(&r);
	ok(r.status == 200 && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(
	    cJSON_GetArrayItem(j, 0), "state")), "missing") == 0 &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(
	    cJSON_GetArrayItem(j, 1), "state")), "unknown") == 0,
	    "/runs: state missing (alpha), unknown (beta)");
	cJSON_Delete(j);
	api_resp_cleanup(&r);
	health_set_db(h, HEALTH_DB_FULL, "store: commit: database or disk is "
	    "full");
	health_count_db_error(h, HEALTH_DB_FULL);
	expect_error(a, "GET", "/ready", NULL, 503, "not_ready");
	get(a, "/ready", NULL, &r);
	ok(has(&r, "database full: store: commit: database or disk is full"),
	    "/ready says the database is full and why");
	api_resp_cleanup(&r);
	get(a, "/metrics", NULL, &r);
	ok(has(&r, "spectrumd_db_writable 0\n") &&
	    has(&r, "spectrumd_db_errors_total{kind=\"full\"} 1\n") &&
	    has(&r, "spectrumd_db_errors_total{kind=\"gone\"} 0\n") &&
	    has(&r, "spectrumd_checkpoints_given_up_total 0\n"),
	    "/metrics: db not writable, one full error");
	api_resp_cleanup(&r);
	health_set_db(h, HEALTH_DB_OK, NULL);
	health_count_given_up(h);
	get(a, "/ready", NULL, &r);
	ok(r.status == 200, "/ready: 200 again once writable");
	api_resp_cleanup(&r);
	get(a, "/metrics", NULL, &r);
	ok(has(&r, "spectrumd_db_writable 1\n") &&
	    has(&r, "spectrumd_checkpoints_given_up_total 1\n"),
	    "/metrics: writable, one checkpoint given up");
	api_resp_cleanup(&r);
	cfg->health = NULL;
	health_free(h);
}

int
main(void)
{
	struct spd_errbuf	 eb;
	struct api_config	 cfg = { 0 };
	struct api		*a = NULL;
	struct store		*rw = NULL;
	struct hub		*hub = hub_new(32);
	int64_t			 run_id = 0;

	if (fixture_tmpdir("api", tmp, sizeof tmp, &eb) != SPD_OK) {
		printf("# %s\n", eb.msg);
		return 1;
	}
	snprintf(dbpath, sizeof dbpath, "%s/spectrumd.db", tmp);
	cfg.db_path = dbpath;
	cfg.hub = hub;
	cfg.top_percent = TP;
	cfg.include_embeddings = true;
	cfg.lr_scale_max = 2.0;
	cfg.version = "9.9.9";
	cfg.backend = "cpu";
	cfg.ready = &ready_flag;
	cfg.rescan = fake_rescan;
	ok(!bare_words_ok("{\"a\":NaN}", 10) &&
	    !bare_words_ok("[Infinity]", 10) && !bare_words_ok("[-inf]", 6) &&
	    bare_words_ok(strict_sample, sizeof strict_sample - 1),
	    "the strictness check itself tells tokens from strings");
	ok(api_new(&cfg, &a, &eb) == SPD_OK, "api_new");

	test_no_db(a);
	if (store_open(dbpath, STORE_RW, &rw, &eb) != SPD_OK) {
		printf("# store_open: %s\n", eb.msg);
		return 1;
	}
	if (fill(rw, &run_id) == SPD_OK) {
		hub_count_analysis(hub, 10, 0.5);
		hub_count_analysis(hub, 20, 50);
		hub_count_nonfinite(hub, 2);
		hub_count_reject(hub, HUB_REJECT_LIMIT, 3);
		test_runs(a);
		test_snr(a);
		test_spectrum(a);
		test_snr_results(a);
		test_history(a);
		test_train_log(a, rw, run_id);
		test_selection(a);
		test_selection_diff(a);
		test_selection_history(a, &cfg);
		test_lr_scales(a, &cfg);
		test_long_poll(a, rw, hub, run_id);
		test_misc(a, &cfg, hub);
		test_two_runs(a, rw);
		test_alerts_api(a, rw);
		test_metrics(a);
		test_health(a, &cfg);
	}
	test_static(&cfg);
	test_utf8();
	api_free(a);
	store_close(rw);
	hub_free(hub);
	fixture_rmtree(tmp);
	return tap_done();
}
