/*
 * api_util.c: what every route of the API uses: answers (JSON, errors,
 * borrowed and owned bodies), strict JSON values, query arguments, the
 * calling thread's read-only store handle, and run and checkpoint lookup.
 * Conventions: see api_int.h.
 *
 * Each calling thread keeps its own read-only store handle in a
 * thread-specific slot, closed by the slot's destructor when the thread
 * exits (or by api_free for the thread calling it).
 */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api_int.h"

const char CT_JSON[] = "application/json";
const char CT_HTML[] = "text/html; charset=utf-8";
const char CT_TEXT[] = "text/plain; charset=utf-8";
const char CT_CSV[] = "text/csv; charset=utf-8";
const char CT_PROM[] = "text/plain; version=0.0.4; charset=utf-8";
const char CT_SSE[] = "text/event-stream";
const char CC_NOSTORE[] = "no-store";
const char CC_NOCACHE[] = "no-cache";

static const char oom_body[] =
"{\"error\":{\"code\":\"unavailable\",\"message\":\"out of memory\"}}";

/* --- responses -------------------------------------------------------- */

/* The class of a non-finite number: "inf", "-inf" or "nan". */
const char *
num_class(double v)
{
	if (isnan(v))
		return "nan";
	return v > 0 ? "inf" : "-inf";
}

/*
 * A number item that reads back as exactly v (finite): cJSON prints 15
 * digits when they read back within a relative epsilon, which can lose
 * the last bit; here 15 digits only when they read back exactly, else 17.
 */
static cJSON *
exact_number(double v)
{
	char buf[32];

	if (v == trunc(v) && fabs(v) < 9007199254740992.0)
		return cJSON_CreateNumber(v);	/* an integer: exact */
	snprintf(buf, sizeof buf, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, sizeof buf, "%.17g", v);
	return cJSON_CreateRaw(buf);
}

/*
 * Adds key: v to obj. A non-finite v becomes null plus a sibling
 * "<key>_class" naming it: strict JSON has no NaN or Infinity.
 */
bool
jnum(cJSON *obj, const char *key, double v)
{
	char ck[64];

	if (isfinite(v))
		return cJSON_AddItemToObject(obj, key, exact_number(v));
	snprintf(ck, sizeof ck, "%s_class", key);
	return cJSON_AddNullToObject(obj, key) != NULL &&
	    cJSON_AddStringToObject(obj, ck, num_class(v)) != NULL;
}

/* A number item for an array; null when v is not finite. */
cJSON *
jnum_item(double v)
{
	return isfinite(v) ? exact_number(v) : cJSON_CreateNull();
}

/* Appends item to arr; false (and item freed) on failure. */
bool
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
bool
jstr(cJSON *obj, const char *key, const char *str)
{
	if (str == NULL)
		return cJSON_AddNullToObject(obj, key) != NULL;
	return cJSON_AddStringToObject(obj, key, str) != NULL;
}

/* Adds key: v, or null when v is below zero ("unknown"). */
bool
jint_or_null(cJSON *obj, const char *key, long long v)
{
	if (v < 0)
		return cJSON_AddNullToObject(obj, key) != NULL;
	return jnum(obj, key, (double)v);
}

/* Adds key: v, or null when v is 0 ("unknown" timestamps). */
bool
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
void
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
void
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
enum spd_err
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
	resp->disposition[0] = '\0';
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
enum spd_err
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
void
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

/* Returns query argument key, or NULL. */
const char *
arg(const struct ctx *c, const char *key)
{
	if (c->req->arg == NULL)
		return NULL;
	return c->req->arg(c->req->cls, key);
}

/* Parses a plain decimal (digits only) within [min, max]. */
bool
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
enum spd_err
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
enum spd_err
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
bool
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
void
close_thread_store(void *p)
{
	store_close(p);
}

/* Opens (once per thread) the calling thread's read-only store handle. */
enum spd_err
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
void
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
enum spd_err
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
void
ckpt_copy_cleanup(struct ckpt_copy *cc)
{
	free(cc->path);
	free(cc->backend);
	cc->path = cc->backend = NULL;
}

/* Finds the checkpoint at step (< 0: the latest done) of run. */
enum spd_err
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

/* Grows *v (of *cap elements of size sz) to hold one more than n. */
bool
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

/*
 * True when an If-None-Match list (comma-separated, weak W/ prefixes
 * allowed, or "*") names etag.
 */
bool
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
