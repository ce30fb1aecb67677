/*
 * api.c: the HTTP/JSON API of DESIGN.md §5 as a route table of pure
 * handlers. No server library types: a request comes in as struct api_req,
 * the answer goes out as struct api_resp, and daemon/http.c does the rest.
 *
 * Conventions of the JSON written here:
 * - Strict JSON. A non-finite number is null with a sibling
 *   "<field>_class": "inf", "-inf" or "nan" (jnum()). In arrays of numbers
 *   (history points, spectrum values) the value is null and a parallel
 *   array ("classes" in a history series, "values_class" in a spectrum)
 *   gives the class of each entry (null for finite ones); that array is
 *   present only when some entry is not finite.
 * - Errors: {"error":{"code":"…","message":"…"}} with the HTTP status.
 * - /history?format=csv writes TensorBoard's "Wall time,Step,Value" when at
 *   most one series matches, else "Series,Wall time,Step,Value" with the
 *   module name first; non-finite values are written inf, -inf, nan.
 *   match= is an extended POSIX regex searched (not anchored) in the module
 *   name.
 *
 * Each calling thread keeps its own read-only store handle in a
 * thread-specific slot, closed by the slot's destructor when the thread
 * exits (or by api_free for the thread calling it).
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "spectrumd/api.h"
#include "spectrumd/match.h"
#include "spectrumd/select.h"
#include "spectrumd/store.h"

#define API_MAX_FILES		256		/* static files served */
#define API_MAX_FILE		(16u << 20)	/* bytes of one static file */
#define API_MAX_WAIT		300		/* seconds of a long poll */
#define API_MAX_POINTS		100000		/* max_points upper bound */
#define API_MAX_HIST		2000000		/* history points collected */

static const char CT_JSON[] = "application/json";
static const char CT_HTML[] = "text/html; charset=utf-8";
static const char CT_TEXT[] = "text/plain; charset=utf-8";
static const char CT_CSV[] = "text/csv; charset=utf-8";
static const char CT_PROM[] = "text/plain; version=0.0.4; charset=utf-8";
static const char CT_SSE[] = "text/event-stream";
static const char CC_NOSTORE[] = "no-store";
static const char CC_NOCACHE[] = "no-cache";

/* A whitelisted static file, read at startup. */
struct sfile {
	char		*url;		/* "/index.html", "/assets/app.js" */
	const char	*ctype;
	char		*data;
	size_t		 len;
	char		 etag[24];
};

struct api {
	const struct api_config	*cfg;
	struct sfile		*files;
	size_t			 nfiles;
	const struct sfile	*index;		/* served at "/", or NULL */
	pthread_key_t		 key;		/* the thread's struct store */
};

/* One request being handled. */
struct ctx {
	struct api		*a;
	const struct api_config	*cfg;
	const struct api_req	*req;
	struct api_resp		*resp;
	struct store		*st;		/* NULL until opened */
	struct spd_errbuf	*eb;
};

/* A resolved run: its id and a copy of its name. */
struct run_ref {
	int64_t	 id;
	char	*name;
};

/* A copy of the checkpoint fields handlers keep past a callback. */
struct ckpt_copy {
	int64_t		 id;
	long long	 step;
	enum ckpt_status status;
	char		*path;
	char		*backend;
};

static const char placeholder_html[] =
"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
"<title>spectrumd</title></head><body>\n"
"<h1>spectrumd</h1>\n"
"<p>The dashboard is not installed (no index.html in the web directory). "
"The JSON API is available:</p>\n<ul>\n"
"<li><a href=\"/runs\">/runs</a></li>\n"
"<li><a href=\"/checkpoints\">/checkpoints</a></li>\n"
"<li><a href=\"/selection\">/selection</a> "
"(<a href=\"/selection?format=yaml\">yaml</a>, "
"<a href=\"/selection?format=regex\">regex</a>)</li>\n"
"<li><a href=\"/snr\">/snr</a></li>\n"
"<li><a href=\"/history\">/history</a></li>\n"
"<li><a href=\"/health\">/health</a>, <a href=\"/ready\">/ready</a>, "
"<a href=\"/metrics\">/metrics</a></li>\n"
"</ul>\n</body></html>\n";

static const char oom_body[] =
"{\"error\":{\"code\":\"unavailable\",\"message\":\"out of memory\"}}";

/* --- responses -------------------------------------------------------- */

/* The class of a non-finite number: "inf", "-inf" or "nan". */
static const char *
num_class(double v)
{
	if (isnan(v))
		return "nan";
	return v > 0 ? "inf" : "-inf";
}

/*
 * Adds key: v to obj. A non-finite v becomes null plus a sibling
 * "<key>_class" naming it: strict JSON has no NaN or Infinity.
 */
static bool
jnum(cJSON *obj, const char *key, double v)
{
	char ck[64];

	if (isfinite(v))
		return cJSON_AddNumberToObject(obj, key, v) != NULL;
	snprintf(ck, sizeof ck, "%s_class", key);
	return cJSON_AddNullToObject(obj, key) != NULL &&
	    cJSON_AddStringToObject(obj, ck, num_class(v)) != NULL;
}

/* A number item for an array; null when v is not finite. */
static cJSON *
jnum_item(double v)
{
	return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

/* Appends item to arr; false (and item freed) on failure. */
static bool
jpush(cJSON *arr, cJSON *item)
{
	if (item == NULL)
		return false;
	if (!cJSON_AddItemToArray(arr, item)) {
		cJSON_Delete(item);
		return false;
	}
	return true;
}

/* Adds key: str, or null when str is NULL. */
static bool
jstr(cJSON *obj, const char *key, const char *str)
{
	if (str == NULL)
		return cJSON_AddNullToObject(obj, key) != NULL;
	return cJSON_AddStringToObject(obj, key, str) != NULL;
}

/* Adds key: v, or null when v is below zero ("unknown"). */
static bool
jint_or_null(cJSON *obj, const char *key, long long v)
{
	if (v < 0)
		return cJSON_AddNullToObject(obj, key) != NULL;
	return jnum(obj, key, (double)v);
}

/* Adds key: v, or null when v is 0 ("unknown" timestamps). */
static bool
jtime(cJSON *obj, const char *key, double v)
{
	if (v == 0)
		return cJSON_AddNullToObject(obj, key) != NULL;
	return jnum(obj, key, v);
}

/* Releases resp's body. */
void
api_resp_cleanup(struct api_resp *resp)
{
	if (resp == NULL)
		return;
	if (!resp->body_static)
		free(resp->body);
	resp->body = NULL;
	resp->len = 0;
	resp->body_static = false;
}

/* Sets a borrowed body. */
static void
reply_static(struct api_resp *resp, int status, const char *ctype,
    const char *body, size_t len)
{
	api_resp_cleanup(resp);
	resp->status = status;
	resp->content_type = ctype;
	resp->body = (char *)(uintptr_t)body;	/* borrowed, never written */
	resp->len = len;
	resp->body_static = true;
}

/* Sets a malloc'ed body (owned by resp from here on). */
static void
reply_owned(struct api_resp *resp, int status, const char *ctype, char *body,
    size_t len)
{
	api_resp_cleanup(resp);
	resp->status = status;
	resp->content_type = ctype;
	resp->body = body;
	resp->len = len;
	if (resp->cache_control == NULL)
		resp->cache_control = CC_NOSTORE;
}

/*
 * Prints root (not deleted) as JSON text that is valid UTF-8: cJSON copies
 * string bytes as they are, and a request can carry any bytes (%ff) into
 * an echoed value, so ill-formed ones become U+FFFD. NULL without memory.
 */
static char *
json_text(const cJSON *root)
{
	char	*s = cJSON_PrintUnformatted(root), *t;
	size_t	 n;

	if (s == NULL || spd_utf8_valid(s, n = strlen(s)))
		return s;
	t = spd_utf8_scrub(s, n);
	free(s);
	return t;
}

/* Serialises root (always deleted) as the body. */
static enum spd_err
reply_json(struct api_resp *resp, int status, cJSON *root)
{
	char *s;

	if (root == NULL)
		return SPD_ENOMEM;
	s = json_text(root);
	cJSON_Delete(root);
	if (s == NULL)
		return SPD_ENOMEM;
	reply_owned(resp, status, CT_JSON, s, strlen(s));
	return SPD_OK;
}

/* Replaces the response with {"error":{"code","message"}}. */
void
api_error(struct api_resp *resp, int status, const char *code,
    const char *message)
{
	cJSON	*root, *err;
	char	*s = NULL;

	api_resp_cleanup(resp);
	resp->etag[0] = '\0';
	resp->cache_control = CC_NOSTORE;
	resp->sse = false;
	if ((root = cJSON_CreateObject()) != NULL &&
	    (err = cJSON_AddObjectToObject(root, "error")) != NULL &&
	    cJSON_AddStringToObject(err, "code", code) != NULL &&
	    cJSON_AddStringToObject(err, "message", message) != NULL)
		s = json_text(root);
	cJSON_Delete(root);
	if (s == NULL)
		reply_static(resp, 503, CT_JSON, oom_body, sizeof oom_body - 1);
	else
		reply_owned(resp, status, CT_JSON, s, strlen(s));
}

/* api_error with a formatted message; returns SPD_OK (the answer is set). */
static enum spd_err
reply_error(struct ctx *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum spd_err
reply_error(struct ctx *c, int status, const char *code, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	api_error(c->resp, status, code, msg);
	return SPD_OK;
}

/* How a handler's error code is answered. */
static const struct {
	enum spd_err	 rc;
	int		 status;
	const char	*code;
} err_map[] = {
	{ SPD_EINVAL,    400, "bad_request" },
	{ SPD_ENOTFOUND, 404, "not_found" },
	{ SPD_EBUSY,     503, "unavailable" },
	{ SPD_EIO,       503, "unavailable" },
	{ SPD_ENOMEM,    503, "unavailable" },
	{ SPD_ECANCELED, 503, "unavailable" },
};

/* Answers a handler's failure rc with eb's message. */
static void
reply_rc(struct api_resp *resp, enum spd_err rc, const struct spd_errbuf *eb)
{
	const char	*msg = eb->msg[0] != '\0' ? eb->msg : spd_strerror(rc);
	size_t		 i;

	for (i = 0; i < nitems(err_map); i++)
		if (err_map[i].rc == rc) {
			api_error(resp, err_map[i].status, err_map[i].code,
			    msg);
			return;
		}
	api_error(resp, 500, "internal", msg);
}

/* --- requests ----------------------------------------------------------- */

/* Returns query argument key, or NULL. */
static const char *
arg(const struct ctx *c, const char *key)
{
	if (c->req->arg == NULL)
		return NULL;
	return c->req->arg(c->req->cls, key);
}

/* Parses a plain decimal (digits only) within [min, max]. */
static bool
parse_dec(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out)
{
	unsigned long long	v = 0;
	size_t			i, n;

	if (s == NULL || (n = strnlen(s, 19)) == 0 || n > 18)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long long)(s[i] - '0');
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Reads the optional numeric argument key (def when absent). */
static enum spd_err
arg_num(struct ctx *c, const char *key, unsigned long long min,
    unsigned long long max, unsigned long long def, unsigned long long *out)
{
	const char *s = arg(c, key);

	if (s == NULL) {
		*out = def;
		return SPD_OK;
	}
	if (!parse_dec(s, min, max, out))
		return spd_fail(c->eb, SPD_EINVAL,
		    "%s must be an integer from %llu to %llu", key, min, max);
	return SPD_OK;
}

/* Reads step=latest|N (absent = latest, returned as -1). */
static enum spd_err
arg_step(struct ctx *c, long long *out)
{
	const char		*s = arg(c, "step");
	unsigned long long	 v;

	if (s == NULL || strcmp(s, "latest") == 0) {
		*out = -1;
		return SPD_OK;
	}
	if (!parse_dec(s, 0, (unsigned long long)INT64_MAX, &v))
		return spd_fail(c->eb, SPD_EINVAL,
		    "step must be \"latest\" or a non-negative integer");
	*out = (long long)v;
	return SPD_OK;
}

/* Finds s in the NULL-terminated names; false when absent. */
static bool
arg_enum(struct ctx *c, const char *key, const char *const *names,
    size_t *out)
{
	const char	*s = arg(c, key);
	size_t		 i;

	if (s == NULL) {
		*out = 0;
		return true;
	}
	for (i = 0; names[i] != NULL; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return true;
		}
	spd_fail(c->eb, SPD_EINVAL, "unknown %s '%.64s'", key, s);
	return false;
}

/* Destructor of the thread slot: closes that thread's store handle. */
static void
close_thread_store(void *p)
{
	store_close(p);
}

/* Opens (once per thread) the calling thread's read-only store handle. */
static enum spd_err
thread_store(struct ctx *c)
{
	struct store	*st = pthread_getspecific(c->a->key);
	enum spd_err	 rc;

	if (st == NULL) {
		rc = store_open(c->cfg->db_path, STORE_RO, &st, c->eb);
		if (rc != SPD_OK)
			return rc;
		if (pthread_setspecific(c->a->key, st) != 0) {
			store_close(st);
			return spd_fail(c->eb, SPD_ENOMEM,
			    "cannot keep a database handle");
		}
	}
	c->st = st;
	return SPD_OK;
}

/* Answers a failed thread_store(): 503 either way. */
static void
reply_store_down(struct ctx *c, enum spd_err rc)
{
	if (rc == SPD_ENOTFOUND)
		reply_error(c, 503, "not_ready", "database not ready");
	else
		reply_error(c, 503, "unavailable", "database: %s", c->eb->msg);
}

/* What the run walk below collects. */
struct run_walk {
	size_t	 n;
	int64_t	 id;
	char	*name;
	char	 names[200];
};

/* Counts runs, keeps the first one and a list of names for messages. */
static int
run_walk_cb(void *arg, const struct run_row *r)
{
	struct run_walk	*w = arg;
	size_t		 len = strlen(w->names);

	if (w->n++ == 0) {
		w->id = r->id;
		if ((w->name = strdup(r->name)) == NULL)
			return 1;
	}
	snprintf(w->names + len, sizeof w->names - len, "%s%s",
	    len > 0 ? ", " : "", r->name);
	return 0;
}

/* Resolves ?run=, or the only run when it is omitted. */
static enum spd_err
resolve_run(struct ctx *c, struct run_ref *out)
{
	struct run_walk	 w = { 0 };
	const char	*name = arg(c, "run");
	enum spd_err	 rc;

	if (name != NULL) {
		rc = store_run_find(c->st, name, &out->id, c->eb);
		if (rc == SPD_ENOTFOUND)
			return spd_fail(c->eb, rc, "unknown run '%.100s'",
			    name);
		if (rc != SPD_OK)
			return rc;
		if ((out->name = strdup(name)) == NULL)
			return SPD_ENOMEM;
		return SPD_OK;
	}
	rc = store_runs(c->st, run_walk_cb, &w, c->eb);
	if (rc == SPD_OK && w.n == 0)
		rc = spd_fail(c->eb, SPD_ENOTFOUND, "no runs yet");
	else if (rc == SPD_OK && w.n > 1)
		rc = spd_fail(c->eb, SPD_EINVAL,
		    "%zu runs: name one with ?run= (%s)", w.n, w.names);
	else if (rc == SPD_ECANCELED)
		rc = SPD_ENOMEM;
	if (rc != SPD_OK) {
		free(w.name);
		return rc;
	}
	out->id = w.id;
	out->name = w.name;
	return SPD_OK;
}

/* Copies one checkpoint row (store_ckpt_get callback). */
static int
ckpt_copy_cb(void *arg, const struct ckpt_row *r)
{
	struct ckpt_copy *cc = arg;

	cc->id = r->id;
	cc->step = r->step;
	cc->status = r->status;
	cc->path = strdup(r->path != NULL ? r->path : "");
	cc->backend = r->backend != NULL ? strdup(r->backend) : NULL;
	return cc->path == NULL || (r->backend != NULL && cc->backend == NULL);
}

/* Releases a ckpt_copy. */
static void
ckpt_copy_cleanup(struct ckpt_copy *cc)
{
	free(cc->path);
	free(cc->backend);
	cc->path = cc->backend = NULL;
}

/* Finds the checkpoint at step (< 0: the latest done) of run. */
static enum spd_err
find_ckpt(struct ctx *c, const struct run_ref *run, long long step,
    struct ckpt_copy *out)
{
	enum spd_err rc;

	memset(out, 0, sizeof *out);
	rc = store_ckpt_get(c->st, run->id, step, ckpt_copy_cb, out, c->eb);
	if (rc == SPD_ECANCELED)
		rc = SPD_ENOMEM;
	if (rc == SPD_ENOTFOUND && step < 0)
		rc = spd_fail(c->eb, rc, "run '%s' has no analysed checkpoint "
		    "yet", run->name);
	else if (rc == SPD_ENOTFOUND)
		rc = spd_fail(c->eb, rc, "run '%s' has no checkpoint at step "
		    "%lld", run->name, step);
	if (rc != SPD_OK)
		ckpt_copy_cleanup(out);
	return rc;
}

/* --- /health, /ready, /events, /rescan ----------------------------------- */

/* GET /health: liveness. */
static enum spd_err
api_health(struct ctx *c)
{
	cJSON	*root = cJSON_CreateObject();
	bool	 ok = root != NULL;

	ok = ok && jstr(root, "status", "ok") &&
	    jstr(root, "version", c->cfg->version) &&
	    jstr(root, "backend", c->cfg->backend);
	if (!ok) {
		cJSON_Delete(root);
		return SPD_ENOMEM;
	}
	return reply_json(c->resp, 200, root);
}

/* GET /ready: 200 once the daemon says so and the database opens. */
static enum spd_err
api_ready(struct ctx *c)
{
	cJSON		*root;
	enum spd_err	 rc;

	char		 why[200];
	enum health_db	 db;

	if (c->cfg->ready == NULL || atomic_load(c->cfg->ready) == 0)
		return reply_error(c, 503, "not_ready", "starting up");
	db = c->cfg->health != NULL ?
	    health_db(c->cfg->health, why, sizeof why) : HEALTH_DB_OK;
	if (db != HEALTH_DB_OK)
		return reply_error(c, 503, "not_ready", "database %s: %s",
		    health_db_name(db), why);
	rc = thread_store(c);
	if (rc != SPD_OK) {
		reply_store_down(c, rc);
		return SPD_OK;
	}
	if ((root = cJSON_CreateObject()) == NULL ||
	    cJSON_AddTrueToObject(root, "ready") == NULL) {
		cJSON_Delete(root);
		return SPD_ENOMEM;
	}
	return reply_json(c->resp, 200, root);
}

/* GET /events: hands the stream of hub events to the server glue. */
static enum spd_err
api_events(struct ctx *c)
{
	if (c->cfg->hub == NULL)
		return reply_error(c, 503, "unavailable", "no event hub");
	reply_static(c->resp, 200, CT_SSE, "", 0);
	c->resp->cache_control = CC_NOCACHE;
	c->resp->sse = true;
	c->resp->sse_after = hub_seq(c->cfg->hub);
	return SPD_OK;
}

/*
 * Compares the whole of a with the secret b, of any length, in time that
 * depends on the length of a alone: every byte of a is looked at, and a
 * prefix of b (or b plus more) is no match.
 */
static bool
ct_equal(const char *a, const char *b)
{
	size_t		la = strlen(a), lb = strlen(b), i;
	unsigned char	d = la != lb;

	for (i = 0; i < la; i++)
		d |= (unsigned char)(a[i] ^ b[i < lb ? i : 0]);
	return d == 0;
}

/* True when the request carries "Authorization: Bearer <api_token>". */
static bool
authorized(const struct ctx *c)
{
	const char *token = c->cfg->api_token, *h = c->req->authorization;

	if (token == NULL || token[0] == '\0')
		return true;
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	for (h += 7; *h == ' '; h++)
		;
	return ct_equal(h, token);
}

/* POST /rescan?run: asks the daemon to rescan one run or all. */
static enum spd_err
api_rescan(struct ctx *c)
{
	const char	*run = arg(c, "run");
	cJSON		*root;
	enum spd_err	 rc;

	if (!authorized(c))
		return reply_error(c, 401, "unauthorized",
		    "a valid \"Authorization: Bearer <api_token>\" header is "
		    "required");
	if (c->cfg->rescan == NULL)
		return reply_error(c, 503, "unavailable", "rescan unavailable");
	rc = c->cfg->rescan(c->cfg->rescan_arg, run);
	if (rc == SPD_ENOTFOUND)
		return spd_fail(c->eb, rc, "unknown run '%.100s'",
		    run != NULL ? run : "");
	if (rc != SPD_OK)
		return spd_fail(c->eb, rc, "rescan: %s", spd_strerror(rc));
	root = cJSON_CreateObject();
	if (root == NULL ||
	    !jstr(root, "rescan", run != NULL ? run : "all")) {
		cJSON_Delete(root);
		return SPD_ENOMEM;
	}
	return reply_json(c->resp, 202, root);
}

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
static enum spd_err
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
static enum spd_err
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
static enum spd_err
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
static enum spd_err
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
	"stable_rank", NULL
};
static const char *const hist_formats[] = { "json", "csv", NULL };

/* Grows *v (of *cap elements of size sz) to hold one more than n. */
static bool
grow(void **v, size_t *cap, size_t n, size_t sz)
{
	size_t	 ncap;
	void	*nv;

	if (n < *cap)
		return true;
	ncap = *cap != 0 ? *cap * 2 : 16;
	if (ncap > SIZE_MAX / sz || (nv = realloc(*v, ncap * sz)) == NULL)
		return false;
	*v = nv;
	*cap = ncap;
	return true;
}

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
			fprintf(fp, "%.6f,%lld,", p->wall, p->step);
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

/* GET /history?run&match&type&metric&format&max_points. */
static enum spd_err
api_history(struct ctx *c)
{
	struct run_ref		run = { 0 };
	struct hist		h = { 0 };
	unsigned long long	maxp;
	size_t			metric, fmt, i;
	enum spd_err		rc;

	if (!arg_enum(c, "metric", hist_metrics, &metric) ||
	    !arg_enum(c, "format", hist_formats, &fmt))
		return SPD_EINVAL;
	if ((rc = arg_num(c, "max_points", 2, API_MAX_POINTS, API_MAX_POINTS,
	    &maxp)) != SPD_OK ||
	    (rc = compile_match(c, &h)) != SPD_OK ||
	    (rc = resolve_run(c, &run)) != SPD_OK)
		goto out;
	rc = store_history(c->st, run.id, arg(c, "type"), hist_metrics[metric],
	    hist_cb, &h, c->eb);
	if (h.badre)
		rc = spd_fail(c->eb, SPD_EINVAL, "%s", h.reeb.msg);
	else if (h.toobig)
		rc = spd_fail(c->eb, SPD_EINVAL, "more than %d points: narrow "
		    "the history with match= or type=", API_MAX_HIST);
	else if (h.oom || rc == SPD_ECANCELED)
		rc = SPD_ENOMEM;
	if (rc != SPD_OK)
		goto out;
	for (i = 0; i < h.n; i++)
		downsample(&h.s[i], (size_t)maxp);
	if (fmt == 0)
		rc = hist_reply_json(c, run.name, hist_metrics[metric], &h);
	else
		rc = hist_reply_csv(c, &h);
out:
	hist_cleanup(&h);
	free(run.name);
	return rc;
}

/* --- /selection ------------------------------------------------------------ */

static const char *const sel_formats[] = { "json", "yaml", "regex", NULL };
static const char *const sel_ctypes[] = {	/* by enum sel_format */
	CT_JSON, "application/yaml; charset=utf-8", CT_TEXT
};

/* The current selection of one run and top_percent, in one format. */
struct sel_now {
	bool		 found;
	long long	 version;
	char		*body;
};

/* A done checkpoint, kept while walking a run's history. */
struct done_ck {
	int64_t		 id;
	long long	 step;
	char		*path;
};

struct done_list {
	struct done_ck	*v;
	size_t		 n, cap;
	bool		 oom;
};

/* Collects the done checkpoints (store_ckpts callback). */
static int
done_cb(void *arg, const struct ckpt_row *r)
{
	struct done_list *l = arg;

	if (r->status != CK_DONE)
		return 0;
	if (!grow((void **)&l->v, &l->cap, l->n, sizeof *l->v) ||
	    (l->v[l->n].path = strdup(r->path != NULL ? r->path : "")) ==
	    NULL) {
		l->oom = true;
		return 1;
	}
	l->v[l->n].id = r->id;
	l->v[l->n].step = r->step;
	l->n++;
	return 0;
}

/* Frees a done_list. */
static void
done_cleanup(struct done_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
}

/* Selects from the stored report of checkpoint ckpt_id. */
static enum spd_err
select_ckpt(struct ctx *c, int64_t ckpt_id, unsigned tp,
    struct selection **out)
{
	struct report	*r = NULL;
	enum spd_err	 rc;

	if ((rc = store_load_report(c->st, ckpt_id, &r, c->eb)) != SPD_OK)
		return rc;
	rc = select_compute(r, tp, c->cfg->include_embeddings, out);
	report_free(r);
	if (rc != SPD_OK)
		return spd_fail(c->eb, rc, "select: %s", spd_strerror(rc));
	return SPD_OK;
}

/* Renders sel as the answer (takes nothing; NULL body: out of memory). */
static enum spd_err
sel_answer(const struct selection *sel, enum sel_format fmt,
    const char *run, long long step, const char *path, long long version,
    struct sel_now *out)
{
	out->found = true;
	out->version = version;
	out->body = selection_render(sel, fmt, run, step, path, version);
	return out->body != NULL ? SPD_OK : SPD_ENOMEM;
}

/* The configured top_percent: the stored facts of the served selection. */
static enum spd_err
sel_stored(struct ctx *c, const struct run_ref *run, unsigned tp,
    enum sel_format fmt, struct sel_now *out)
{
	struct selection	*sel = NULL;
	long long		 step = 0, version = 0;
	char			*path = NULL;
	enum spd_err		 rc;

	rc = store_selection_latest(c->st, run->id, tp,
	    c->cfg->include_embeddings, &sel, &version, &step, &path, c->eb);
	if (rc == SPD_ENOTFOUND)
		return SPD_OK;
	if (rc == SPD_OK)
		rc = sel_answer(sel, fmt, run->name, step, path, version, out);
	selection_free(sel);
	free(path);
	return rc;
}

/*
 * Another top_percent: selects at every done checkpoint in step order,
 * versions by selection_version(), the rule the store uses; the last one
 * is current.
 */
static enum spd_err
sel_walk(struct ctx *c, const struct run_ref *run, unsigned tp,
    enum sel_format fmt, struct sel_now *out)
{
	struct done_list	 l = { 0 };
	struct selection	*s = NULL;
	char			*mods = NULL, *prev = NULL;
	long long		 version = 0;
	size_t			 i;
	bool			 changed;
	enum spd_err		 rc;

	rc = store_ckpts(c->st, run->id, done_cb, &l, c->eb);
	if (l.oom || rc == SPD_ECANCELED)
		rc = SPD_ENOMEM;
	for (i = 0; rc == SPD_OK && i < l.n; i++) {
		selection_free(s);
		s = NULL;
		if ((rc = select_ckpt(c, l.v[i].id, tp, &s)) != SPD_OK)
			break;
		if ((mods = selection_modules(s)) == NULL) {
			rc = SPD_ENOMEM;
			break;
		}
		version = selection_version(prev, version, version, false,
		    mods, &changed);
		free(prev);
		prev = mods;
	}
	if (rc == SPD_OK && s != NULL)
		rc = sel_answer(s, fmt, run->name, l.v[l.n - 1].step,
		    l.v[l.n - 1].path, version, out);
	selection_free(s);
	free(prev);
	done_cleanup(&l);
	return rc;
}

/* Computes the current selection (found is false when there is none). */
static enum spd_err
sel_current(struct ctx *c, const struct run_ref *run, unsigned tp,
    enum sel_format fmt, struct sel_now *out)
{
	free(out->body);
	memset(out, 0, sizeof *out);
	if (tp == c->cfg->top_percent)
		return sel_stored(c, run, tp, fmt, out);
	return sel_walk(c, run, tp, fmt, out);
}

/*
 * Writes the quoted ETag "<run>-<tp>-<version>" into buf (48 bytes), with
 * "n" after tp when embeddings are not listed (another series of
 * versions); a run name that is long or holds characters an ETag cannot
 * carry is replaced by "h" and the hex FNV-1a hash of it.
 */
static void
sel_etag(char *buf, size_t len, const char *run, unsigned tp, bool emb,
    long long version)
{
	const char	*p;
	bool		 plain = strlen(run) <= 20;
	int		 n;

	for (p = run; plain && *p != '\0'; p++)
		plain = *p > 0x20 && *p < 0x7f && *p != '"';
	if (plain)
		n = snprintf(buf, len, "\"%s-%u%s-%lld\"", run, tp, emb ? "" :
		    "n", version);
	else
		n = snprintf(buf, len, "\"h%016" PRIx64 "-%u%s-%lld\"",
		    spd_fnv1a(SPD_FNV1A_INIT, run, strlen(run)), tp, emb ? "" :
		    "n", version);
	if (n < 0 || (size_t)n >= len)
		buf[0] = '\0';
}

/*
 * True when an If-None-Match list (comma-separated, weak W/ prefixes
 * allowed, or "*") names etag.
 */
static bool
etag_match(const char *inm, const char *etag)
{
	const char	*p = inm, *end;
	size_t		 n, el = strlen(etag);

	if (inm == NULL || el == 0)
		return false;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		end = p + strcspn(p, ",");
		n = (size_t)(end - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if ((n == 1 && *p == '*') ||
		    (n == el && strncmp(p, etag, n) == 0))
			return true;
		p = end;
	}
	return false;
}

/* The parsed arguments of /selection. */
struct sel_args {
	struct run_ref	 run;
	unsigned	 tp;
	enum sel_format	 fmt;
	int		 wait_ms;
};

/* Parses top_percent, format and wait, and resolves the run. */
static enum spd_err
parse_sel_args(struct ctx *c, struct sel_args *sa)
{
	unsigned long long	tp, wait;
	size_t			fmt;
	enum spd_err		rc;

	if (!arg_enum(c, "format", sel_formats, &fmt))
		return SPD_EINVAL;
	if ((rc = arg_num(c, "top_percent", 1, 100, c->cfg->top_percent,
	    &tp)) != SPD_OK ||
	    (rc = arg_num(c, "wait", 0, API_MAX_WAIT, 0, &wait)) != SPD_OK)
		return rc;
	sa->tp = (unsigned)tp;
	sa->fmt = (enum sel_format)fmt;
	sa->wait_ms = (int)wait * 1000;
	return resolve_run(c, &sa->run);
}

/*
 * What a parked long poll learns from the hub events after `after`:
 * SEL_NONE (none that can change the selection; *last is the newest seen),
 * SEL_NEWS (a "selection" or "checkpoint" event, or events lost from the
 * ring) or SEL_FINAL (the hub is closed or out of memory: answer now).
 */
enum sel_news { SEL_NONE, SEL_NEWS, SEL_FINAL };

static enum sel_news
sel_news(struct hub *hub, uint64_t after, uint64_t *last)
{
	struct hub_event	ev;
	enum spd_err		rc = SPD_EBUSY;
	bool			news = false;

	while (!news && (rc = hub_next(hub, after, 0, &ev)) == SPD_OK) {
		news = ev.seq != after + 1 ||
		    strcmp(ev.type, "selection") == 0 ||
		    strcmp(ev.type, "checkpoint") == 0;
		after = ev.seq;
		free(ev.data);
	}
	*last = after;
	if (news)
		return SEL_NEWS;
	return rc == SPD_EBUSY ? SEL_NONE : SEL_FINAL;
}

/* Asks the caller to run the request again after hub event seq or at until. */
static void
sel_park(struct ctx *c, uint64_t seq, double until)
{
	c->resp->status = 200;
	c->resp->park = true;
	c->resp->park_after = seq;
	c->resp->park_until = until;
}

/*
 * GET /selection?run&top_percent&format&wait. A long poll (wait > 0)
 * whose client has the current selection, or that finds none, parks
 * instead of answering (api.h); run again, it recomputes only after a
 * "selection" or "checkpoint" event and answers at the deadline. seq is
 * the hub position taken before the computation, so no event between the
 * two is missed.
 */
static enum spd_err
api_selection(struct ctx *c)
{
	struct sel_args	 sa = { { 0, NULL }, 0, SEL_JSON, 0 };
	struct sel_now	 cur = { false, 0, NULL };
	struct hub	*hub = c->cfg->hub;
	const struct api_req *q = c->req;
	double		 until;
	uint64_t	 seq;
	enum spd_err	 rc;
	bool		 final = hub == NULL;

	if (q->resumed && !final) {
		if (q->resume_until <= spd_now())
			final = true;
		else switch (sel_news(hub, q->resume_after, &seq)) {
		case SEL_NONE:
			sel_park(c, seq, q->resume_until);
			return SPD_OK;
		case SEL_FINAL:
			final = true;
			break;
		case SEL_NEWS:
			break;
		}
	}
	if ((rc = parse_sel_args(c, &sa)) != SPD_OK)
		goto out;
	seq = hub != NULL ? hub_seq(hub) : 0;
	if ((rc = sel_current(c, &sa.run, sa.tp, sa.fmt, &cur)) != SPD_OK)
		goto out;
	sel_etag(c->resp->etag, sizeof c->resp->etag, sa.run.name, sa.tp,
	    c->cfg->include_embeddings, cur.version);
	until = q->resumed ? q->resume_until : spd_now() + sa.wait_ms / 1000.0;
	if (!final && sa.wait_ms > 0 && until > spd_now() && (!cur.found ||
	    etag_match(q->if_none_match, c->resp->etag))) {
		c->resp->etag[0] = '\0';
		sel_park(c, seq, until);
		goto out;
	}
	if (!cur.found) {
		c->resp->etag[0] = '\0';
		rc = reply_error(c, 404, "no_selection", "run '%s' has no "
		    "selection yet", sa.run.name);
		goto out;
	}
	c->resp->cache_control = CC_NOCACHE;
	if (etag_match(q->if_none_match, c->resp->etag)) {
		c->resp->status = 304;
		goto out;
	}
	reply_owned(c->resp, 200, sel_ctypes[sa.fmt], cur.body,
	    strlen(cur.body));
	cur.body = NULL;
out:
	free(cur.body);
	free(sa.run.name);
	return rc;
}

/* --- /metrics -------------------------------------------------------------- */

/* Writes a Prometheus label value, escaped. */
static void
prom_label(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(fp, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", fp);
		else
			fputc(*s, fp);
	}
}

/* Writes the # HELP and # TYPE lines of a family. */
static void
prom_family(FILE *fp, const char *name, const char *type, const char *help)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One run seen by the checkpoint gauges, for the selection gauges. */
struct prom_run {
	int64_t	 id;
	char	*name;
};

struct prom_runs {
	FILE		*fp;
	struct prom_run	*v;
	size_t		 n, cap;
};

/* Writes the checkpoint gauges of one run and remembers it. */
static int
prom_runs_cb(void *arg, const struct run_row *r)
{
	struct prom_runs	*pr = arg;
	int			 i;

	for (i = 0; i < CK_NSTATUS; i++) {
		fputs("spectrumd_checkpoints{run=\"", pr->fp);
		prom_label(pr->fp, r->name);
		fprintf(pr->fp, "\",status=\"%s\"} %" PRIu64 "\n",
		    ckpt_status_name((enum ckpt_status)i), r->counts[i]);
	}
	if (!grow((void **)&pr->v, &pr->cap, pr->n, sizeof *pr->v) ||
	    (pr->v[pr->n].name = strdup(r->name)) == NULL)
		return 1;
	pr->v[pr->n++].id = r->id;
	return 0;
}

/* Writes the store-backed families (no samples when the store is down). */
static void
prom_store(struct ctx *c, FILE *fp)
{
	struct prom_runs	 pr = { fp, NULL, 0, 0 };
	long long		 version;
	size_t			 i;
	bool			 up = thread_store(c) == SPD_OK;

	prom_family(fp, "spectrumd_checkpoints", "gauge",
	    "Checkpoints by run and status.");
	if (up)
		store_runs(c->st, prom_runs_cb, &pr, c->eb);
	prom_family(fp, "spectrumd_selection_version", "gauge",
	    "Version of the current selection at the configured top_percent.");
	for (i = 0; i < pr.n; i++) {
		if (store_selection_latest(c->st, pr.v[i].id,
		    c->cfg->top_percent, c->cfg->include_embeddings, NULL,
		    &version, NULL, NULL, c->eb) == SPD_OK) {
			fputs("spectrumd_selection_version{run=\"", fp);
			prom_label(fp, pr.v[i].name);
			fprintf(fp, "\"} %lld\n", version);
		}
		free(pr.v[i].name);
	}
	free(pr.v);
}

/* Writes the hub-backed families: histogram, counter, backend. */
static void
prom_hub(struct ctx *c, FILE *fp)
{
	struct hub_stats	st = { 0 };
	size_t			i;

	if (c->cfg->hub != NULL)
		hub_get_stats(c->cfg->hub, &st);
	prom_family(fp, "spectrumd_analysis_seconds", "histogram",
	    "Wall time of one checkpoint analysis.");
	for (i = 0; i < HUB_NBUCKETS; i++)
		fprintf(fp, "spectrumd_analysis_seconds_bucket{le=\"%g\"} %"
		    PRIu64 "\n", hub_bucket_le[i], st.buckets[i]);
	fprintf(fp, "spectrumd_analysis_seconds_bucket{le=\"+Inf\"} %" PRIu64
	    "\n", st.analyses);
	fprintf(fp, "spectrumd_analysis_seconds_sum %.9g\n",
	    isfinite(st.seconds_sum) ? st.seconds_sum : 0);
	fprintf(fp, "spectrumd_analysis_seconds_count %" PRIu64 "\n",
	    st.analyses);
	prom_family(fp, "spectrumd_matrices_analyzed_total", "counter",
	    "Matrices analysed since the daemon started.");
	fprintf(fp, "spectrumd_matrices_analyzed_total %" PRIu64 "\n",
	    st.matrices);
	prom_family(fp, "spectrumd_nonfinite_matrices_total", "counter",
	    "Matrices analysed with non-finite weights or SNR (never "
	    "selected).");
	fprintf(fp, "spectrumd_nonfinite_matrices_total %" PRIu64 "\n",
	    st.nonfinite);
	prom_family(fp, "spectrumd_matrices_reused_total", "counter",
	    "Matrices whose stored result was reused (same fingerprint),"
	    " counted in matrices_analyzed_total too.");
	fprintf(fp, "spectrumd_matrices_reused_total %" PRIu64 "\n",
	    st.reused);
	prom_family(fp, "spectrumd_hashed_bytes_total", "counter",
	    "Weight bytes fingerprinted (XXH3-128) for reuse.");
	fprintf(fp, "spectrumd_hashed_bytes_total %" PRIu64 "\n", st.hashed);
	prom_family(fp, "spectrumd_hash_seconds_total", "counter",
	    "Seconds spent fingerprinting, summed over workers.");
	fprintf(fp, "spectrumd_hash_seconds_total %.9g\n", st.hash_seconds);
	prom_family(fp, "spectrumd_backend_info", "gauge",
	    "The compute backend in use.");
	fputs("spectrumd_backend_info{backend=\"", fp);
	prom_label(fp, c->cfg->backend != NULL ? c->cfg->backend : "none");
	fputs("\"} 1\n", fp);
}

/* Writes the health families: database state and faults, runs watched. */
static void
prom_health(struct ctx *c, FILE *fp)
{
	struct health_stats	st;
	enum health_db		k;

	if (c->cfg->health == NULL)
		return;
	health_get(c->cfg->health, &st);
	prom_family(fp, "spectrumd_db_writable", "gauge",
	    "1 while the database takes writes; 0 when full, failing or gone.");
	fprintf(fp, "spectrumd_db_writable %d\n", st.db == HEALTH_DB_OK);
	prom_family(fp, "spectrumd_db_errors_total", "counter",
	    "Failed database writes by kind.");
	for (k = HEALTH_DB_FULL; k < HEALTH_DB_NSTATE; k++)
		fprintf(fp, "spectrumd_db_errors_total{kind=\"%s\"} %" PRIu64
		    "\n", health_db_name(k), st.db_errors[k]);
	prom_family(fp, "spectrumd_checkpoints_given_up_total", "counter",
	    "Checkpoints recorded failed after staying incomplete past "
	    "incomplete_grace_s.");
	fprintf(fp, "spectrumd_checkpoints_given_up_total %" PRIu64 "\n",
	    st.given_up);
}

/* Writes the HTTP server's counters (requests by class, rejections). */
static void
prom_http(struct ctx *c, FILE *fp)
{
	struct hub_stats	st = { 0 };
	size_t			i;

	if (c->cfg->hub != NULL)
		hub_get_stats(c->cfg->hub, &st);
	prom_family(fp, "spectrumd_http_requests_total", "counter",
	    "HTTP requests answered, by status class.");
	for (i = 0; i < nitems(st.http_requests); i++)
		fprintf(fp, "spectrumd_http_requests_total{code=\"%zuxx\"} %"
		    PRIu64 "\n", i + 1, st.http_requests[i]);
	prom_family(fp, "spectrumd_http_rejected_connections_total", "counter",
	    "Connections turned away or closed by the server: over a "
	    "connection limit, failed accepts, requests not complete within "
	    "the timeout, idle past it, malformed requests.");
	for (i = 0; i < HUB_NREJECT; i++)
		fprintf(fp, "spectrumd_http_rejected_connections_total{reason="
		    "\"%s\"} %" PRIu64 "\n", hub_reject_name[i],
		    st.http_rejected[i]);
	prom_family(fp, "spectrumd_http_connections", "gauge",
	    "HTTP connections open now.");
	fprintf(fp, "spectrumd_http_connections %" PRIu64 "\n", st.http_open);
}

/* GET /metrics: Prometheus text exposition. */
static enum spd_err
api_metrics(struct ctx *c)
{
	FILE	*fp;
	char	*buf = NULL;
	size_t	 len = 0;

	if ((fp = open_memstream(&buf, &len)) == NULL)
		return SPD_ENOMEM;
	prom_store(c, fp);
	prom_hub(c, fp);
	prom_health(c, fp);
	prom_http(c, fp);
	if (spd_memstream_finish(fp, &buf) == NULL)
		return SPD_ENOMEM;
	reply_owned(c->resp, 200, CT_PROM, buf, strlen(buf));
	return SPD_OK;
}

/* --- static files ---------------------------------------------------------- */

static const struct {
	const char	*ext;
	const char	*ctype;
} ctypes[] = {
	{ "html",  "text/html; charset=utf-8" },
	{ "js",    "text/javascript; charset=utf-8" },
	{ "mjs",   "text/javascript; charset=utf-8" },
	{ "css",   "text/css; charset=utf-8" },
	{ "svg",   "image/svg+xml" },
	{ "png",   "image/png" },
	{ "json",  "application/json" },
	{ "map",   "application/json" },
	{ "ico",   "image/x-icon" },
	{ "txt",   "text/plain; charset=utf-8" },
	{ "woff2", "font/woff2" },
};

/* The content type of a file name by its extension, or NULL. */
static const char *
ctype_of(const char *name)
{
	const char	*dot = strrchr(name, '.');
	size_t		 i;

	if (dot == NULL)
		return NULL;
	for (i = 0; i < nitems(ctypes); i++)
		if (strcmp(dot + 1, ctypes[i].ext) == 0)
			return ctypes[i].ctype;
	return NULL;
}

/* True for names made of [A-Za-z0-9._-] not starting with a dot. */
static bool
safe_name(const char *name)
{
	const char *p;

	if (name[0] == '.' || name[0] == '\0')
		return false;
	for (p = name; *p != '\0'; p++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789._-", *p) == NULL)
			return false;
	return true;
}

/* Adds the file prefix+name of dfd to the whitelist. */
static enum spd_err
add_file(struct api *a, int dfd, const char *prefix, const char *name,
    size_t *cap, struct spd_errbuf *eb)
{
	struct sfile	*f;
	enum spd_err	 rc;

	if (a->nfiles >= API_MAX_FILES)
		return spd_fail(eb, SPD_EIO, "web: more than %d files",
		    API_MAX_FILES);
	if (!grow((void **)&a->files, cap, a->nfiles, sizeof *a->files))
		return SPD_ENOMEM;
	f = &a->files[a->nfiles];
	memset(f, 0, sizeof *f);
	rc = spd_read_file(dfd, name, API_MAX_FILE, &f->data, &f->len, NULL,
	    eb);
	if (rc == SPD_EUNSUPPORTED)		/* not a regular file: skipped */
		return SPD_OK;
	if (rc != SPD_OK)
		return rc;
	a->nfiles++;
	f->ctype = ctype_of(name);
	snprintf(f->etag, sizeof f->etag, "\"%016" PRIx64 "\"",
	    spd_fnv1a(SPD_FNV1A_INIT, f->data, f->len));
	if (asprintf(&f->url, "%s%s", prefix, name) < 0) {
		f->url = NULL;
		return SPD_ENOMEM;
	}
	return SPD_OK;
}

/* Whitelists the servable files directly in dir (missing dir: none). */
static enum spd_err
scan_dir(struct api *a, const char *dir, const char *prefix, size_t *cap,
    struct spd_errbuf *eb)
{
	struct dirent	*de;
	DIR		*d;
	enum spd_err	 rc = SPD_OK;

	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return SPD_OK;
		return spd_fail(eb, SPD_EIO, "web: %s: %s", dir,
		    strerror(errno));
	}
	while (rc == SPD_OK && (de = readdir(d)) != NULL)
		if (safe_name(de->d_name) && ctype_of(de->d_name) != NULL)
			rc = add_file(a, dirfd(d), prefix, de->d_name, cap, eb);
	closedir(d);
	return rc;
}

/* Loads the whitelist from web_dir and web_dir/assets. */
static enum spd_err
load_web(struct api *a, const char *dir, struct spd_errbuf *eb)
{
	char		*assets = NULL;
	size_t		 cap = 0, i;
	enum spd_err	 rc;

	if ((rc = scan_dir(a, dir, "/", &cap, eb)) != SPD_OK)
		return rc;
	if (asprintf(&assets, "%s/assets", dir) < 0)
		return SPD_ENOMEM;
	rc = scan_dir(a, assets, "/assets/", &cap, eb);
	free(assets);
	for (i = 0; i < a->nfiles; i++)
		if (a->files[i].url != NULL &&
		    strcmp(a->files[i].url, "/index.html") == 0)
			a->index = &a->files[i];
	return rc;
}

/* The whitelisted file for path ("/" is index.html), or NULL. */
static const struct sfile *
find_file(const struct api *a, const char *path)
{
	size_t i;

	if (strcmp(path, "/") == 0)
		return a->index;
	for (i = 0; i < a->nfiles; i++)
		if (strcmp(a->files[i].url, path) == 0)
			return &a->files[i];
	return NULL;
}

/* Answers a static file (or the placeholder page at "/"). */
static void
reply_file(struct ctx *c, const struct sfile *f)
{
	struct api_resp *resp = c->resp;

	if (f == NULL) {
		reply_static(resp, 200, CT_HTML, placeholder_html,
		    sizeof placeholder_html - 1);
		resp->cache_control = CC_NOCACHE;
		return;
	}
	snprintf(resp->etag, sizeof resp->etag, "%s", f->etag);
	resp->cache_control = CC_NOCACHE;
	if (etag_match(c->req->if_none_match, f->etag)) {
		resp->status = 304;
		return;
	}
	reply_static(resp, 200, f->ctype, f->data, f->len);
}

/* --- dispatch ---------------------------------------------------------- */

#define R_STORE	0x1	/* needs the thread's store handle */

typedef enum spd_err (*api_fn)(struct ctx *);

/* The routes (DESIGN.md §5). GET routes also answer HEAD. */
static const struct route {
	const char	*method;
	const char	*path;
	api_fn		 fn;
	unsigned	 flags;
} routes[] = {
	{ "GET",  "/selection",   api_selection,   R_STORE },
	{ "GET",  "/runs",        api_runs,        R_STORE },
	{ "GET",  "/checkpoints", api_checkpoints, R_STORE },
	{ "GET",  "/snr",         api_snr,         R_STORE },
	{ "GET",  "/history",     api_history,     R_STORE },
	{ "GET",  "/spectrum",    api_spectrum,    R_STORE },
	{ "GET",  "/events",      api_events,      0 },
	{ "POST", "/rescan",      api_rescan,      0 },
	{ "GET",  "/health",      api_health,      0 },
	{ "GET",  "/ready",       api_ready,       0 },
	{ "GET",  "/metrics",     api_metrics,     0 },
};

/* True when method may call a route registered for want. */
static bool
method_ok(const char *method, const char *want)
{
	return strcmp(method, want) == 0 ||
	    (strcmp(want, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

/* Runs the route's handler and answers its failure. */
static void
run_route(struct ctx *c, const struct route *r)
{
	enum spd_err rc;

	if ((r->flags & R_STORE) != 0 && (rc = thread_store(c)) != SPD_OK) {
		reply_store_down(c, rc);
		return;
	}
	c->eb->msg[0] = '\0';
	rc = r->fn(c);
	if (rc != SPD_OK)
		reply_rc(c->resp, rc, c->eb);
}

/* Handles one request (see api.h). */
void
api_handle(struct api *a, const struct api_req *req, struct api_resp *resp)
{
	struct spd_errbuf	 eb = { "" };
	struct ctx		 c = { a, a->cfg, req, resp, NULL, &eb };
	const struct sfile	*f;
	const char		*path = req->path != NULL ? req->path : "";
	const char		*method = req->method != NULL ? req->method : "";
	size_t			 i;

	memset(resp, 0, sizeof *resp);
	if (req->query_len > API_MAX_QUERY) {
		reply_error(&c, 414, "uri_too_long", "query longer than %d "
		    "bytes", API_MAX_QUERY);
		return;
	}
	for (i = 0; i < nitems(routes); i++) {
		if (strcmp(path, routes[i].path) != 0)
			continue;
		if (method_ok(method, routes[i].method)) {
			run_route(&c, &routes[i]);
			return;
		}
		reply_error(&c, 405, "method_not_allowed", "%s %s: use %s",
		    method, path, routes[i].method);
		resp->allow_post = strcmp(routes[i].method, "POST") == 0;
		return;
	}
	f = find_file(a, path);
	if (f != NULL || strcmp(path, "/") == 0) {
		if (method_ok(method, "GET"))
			reply_file(&c, f);
		else
			reply_error(&c, 405, "method_not_allowed",
			    "%s %s: use GET", method, path);
		return;
	}
	reply_error(&c, 404, "not_found", "no route %s", path);
}

/* --- lifetime -------------------------------------------------------------- */

/* Builds the API and its static-file whitelist. */
enum spd_err
api_new(const struct api_config *cfg, struct api **out,
    struct spd_errbuf *eb)
{
	struct api	*a;
	enum spd_err	 rc = SPD_OK;

	if ((a = calloc(1, sizeof *a)) == NULL)
		return SPD_ENOMEM;
	a->cfg = cfg;
	if (pthread_key_create(&a->key, close_thread_store) != 0) {
		free(a);
		return spd_fail(eb, SPD_ENOMEM, "pthread_key_create failed");
	}
	if (cfg->web_dir != NULL && cfg->web_dir[0] != '\0')
		rc = load_web(a, cfg->web_dir, eb);
	if (rc != SPD_OK) {
		api_free(a);
		return rc;
	}
	*out = a;
	return SPD_OK;
}

/* Frees the API and the calling thread's store handle. */
void
api_free(struct api *a)
{
	size_t i;

	if (a == NULL)
		return;
	store_close(pthread_getspecific(a->key));
	pthread_setspecific(a->key, NULL);
	pthread_key_delete(a->key);
	for (i = 0; i < a->nfiles; i++) {
		free(a->files[i].url);
		free(a->files[i].data);
	}
	free(a->files);
	free(a);
}

/* The event hub of the API's configuration (for the /events stream). */
struct hub *
api_hub(const struct api *a)
{
	return a->cfg->hub;
}
