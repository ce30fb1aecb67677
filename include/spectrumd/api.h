/*
 * api.h: the HTTP/JSON API (DESIGN.md §5) as pure handlers: a request in,
 * a response out, no libmicrohttpd types, so tests call them without a
 * socket. daemon/http.c is the only glue to the server library.
 */
#ifndef SPECTRUMD_API_H
#define SPECTRUMD_API_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spectrumd/common.h"
#include "spectrumd/health.h"
#include "spectrumd/hub.h"
#include "spectrumd/store.h"

#define API_MAX_BODY	(1u << 20)	/* request bodies */
#define API_MAX_QUERY	8192		/* bytes of query string */

/* What the handlers need from the daemon; set once before serving. */
struct api_config {
	const char	*db_path;	/* read-only handles are opened from it */
	struct hub	*hub;
	unsigned	 top_percent;	/* default for /selection */
	bool		 include_embeddings;
	unsigned	 stickiness;	/* selection hysteresis (select.h) */
	double		 lr_scale_max;	/* /lr_scales at rank 1 */
	bool		 group_experts;
	const char	*api_token;	/* NULL/"" = POST /rescan is open */
	const char	*web_dir;	/* dashboard files; NULL = none */
	const char	*version;	/* PACKAGE_VERSION */
	/*
	 * Asks the daemon to rescan run (NULL = every run). Returns SPD_OK or
	 * SPD_ENOTFOUND. Called from HTTP threads: must be thread-safe.
	 */
	enum spd_err	(*rescan)(void *arg, const char *run);
	void		*rescan_arg;
	/* Readiness and backend, read at each request (set by the daemon). */
	atomic_int	*ready;
	const char	*backend;
	/* Database state, run states, fault counters; NULL = not shown. */
	struct health	*health;
};

struct api_req {
	const char	*method;	/* "GET", "POST", … */
	const char	*path;		/* without the query string */
	/* Returns the value of query argument key, or NULL. */
	const char	*(*arg)(void *cls, const char *key);
	void		*cls;
	size_t		 query_len;	/* total bytes of the query string */
	const char	*if_none_match;	/* header or NULL */
	const char	*authorization;	/* header or NULL */
	const char	*accept;	/* header or NULL */
	/*
	 * Set when the request runs again after the handler parked it (see
	 * api_resp.park): copy park_after and park_until from that answer.
	 * A resume_until already past makes it answer now.
	 */
	bool		 resumed;
	uint64_t	 resume_after;
	double		 resume_until;
};

struct api_resp {
	int		 status;	/* HTTP status */
	char		*body;		/* malloc'ed; NULL for 304 */
	size_t		 len;
	const char	*content_type;	/* static string */
	char		 etag[48];	/* "" when none */
	const char	*cache_control;	/* static string or NULL */
	bool		 body_static;	/* body is borrowed (static file) */
	bool		 sse;		/* stream /events from hub: seq after */
	uint64_t	 sse_after;
	bool		 allow_post;	/* 405: send "Allow: POST" */
	/* A Content-Disposition header's value, "" when none. */
	char		 disposition[1024];
	/*
	 * Not answered yet (a long poll with nothing new): the caller runs
	 * the request again, with resumed set, once the hub has an event
	 * after park_after or hub_close was called, or at park_until
	 * (spd_now() clock), whichever comes first. No body.
	 */
	bool		 park;
	uint64_t	 park_after;
	double		 park_until;
};

struct api;

/*
 * Builds the API: loads the static-file whitelist from cfg->web_dir (every
 * regular file directly in it or in its assets/ folder whose name is
 * [A-Za-z0-9._-], not a dot-file, with a known extension, read into memory
 * once; requests never name files on disk). A missing web_dir (or one
 * without index.html) serves a placeholder page at "/". cfg must outlive
 * the api. Returns SPD_OK and *out, SPD_EIO (web_dir unreadable, a file
 * over 16 MiB, over 256 files), SPD_ENOMEM.
 */
enum spd_err	 api_new(const struct api_config *cfg, struct api **out,
		    struct spd_errbuf *eb);
/*
 * Frees a (NULL-safe) and the calling thread's database handle. Call it
 * after every other thread that called api_handle has exited (their
 * handles are closed as they exit).
 */
void		 api_free(struct api *a);

/*
 * Handles one request: fills *resp (status always set; errors as
 * {"error":{"code","message"}} JSON). Thread-safe: each calling thread gets
 * its own read-only database handle, closed when the thread exits. Never
 * blocks on the hub: /selection?wait=S parks (resp->park) until there is
 * news or S seconds have passed, and /events hands the stream to the
 * caller (resp->sse).
 */
void		 api_handle(struct api *a, const struct api_req *req,
		    struct api_resp *resp);

/* Releases resp's body (NULL-safe). */
void		 api_resp_cleanup(struct api_resp *resp);

/*
 * Replaces resp's body (resp zeroed or holding an answer) with
 * {"error":{"code","message"}} and sets status (for the glue's own
 * errors, e.g. 413). Never fails: without memory it answers a static 503
 * body.
 */
void		 api_error(struct api_resp *resp, int status, const char *code,
		    const char *message);

/*
 * The alert object of GET /alerts, which the `alert` event of GET /events
 * carries too, as JSON text (malloc'ed; NULL without memory).
 */
char		*api_alert_json(const struct alert_row *r);

/* The hub given in the configuration (borrowed; for the /events stream). */
struct hub	*api_hub(const struct api *a);

#endif
