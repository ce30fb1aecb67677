/*
 * api.c: the HTTP/JSON API of DESIGN.md §5 as a route table of pure
 * handlers. No server library types: a request comes in as struct api_req,
 * the answer goes out as struct api_resp, and daemon/http.c does the rest.
 * This file holds the route table, the dispatcher and the API's lifetime;
 * the handlers live in one file per route family (see api_int.h).
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"

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
	{ "GET",  "/selection/diff", api_selection_diff, R_STORE },
	{ "GET",  "/selection/history", api_selection_history, R_STORE },
	{ "GET",  "/lr_scales",   api_lr_scales,   R_STORE },
	{ "GET",  "/runs",        api_runs,        R_STORE },
	{ "GET",  "/checkpoints", api_checkpoints, R_STORE },
	{ "GET",  "/snr",         api_snr,         R_STORE },
	{ "GET",  "/history",     api_history,     R_STORE },
	{ "GET",  "/train_log",   api_train_log,   R_STORE },
	{ "GET",  "/spectrum",    api_spectrum,    R_STORE },
	{ "GET",  "/snr_results.json", api_snr_results, R_STORE },
	{ "GET",  "/alerts",      api_alerts,      R_STORE },
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
	if (pthread_key_create(&a->memo_key, free_selection_memo) != 0) {
		pthread_key_delete(a->key);
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
	free_selection_memo(pthread_getspecific(a->memo_key));
	pthread_setspecific(a->memo_key, NULL);
	pthread_key_delete(a->memo_key);
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
