/*
 * api_status.c: the daemon's own routes: GET /health, GET /ready,
 * GET /events (handed to the server glue) and POST /rescan.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "api_int.h"

/* GET /health: liveness. */
enum spd_err
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
enum spd_err
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
enum spd_err
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
enum spd_err
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
