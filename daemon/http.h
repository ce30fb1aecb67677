/*
 * http.h: the HTTP server in front of the pure API handlers of api.h:
 * libmicrohttpd's event loop on epoll in a few threads, no thread per
 * connection; long polls and /events streams suspend their connection and
 * are resumed by the hub's events (see http.c). Connection limits (global,
 * per client address) and a deadline for each request keep one client
 * from taking the service. daemon/http.c is the only file that includes
 * <microhttpd.h>.
 *
 * Shutdown order: http_quiesce() (no new connections; long polls answer
 * and /events streams end at once), then hub_close() on the API's hub,
 * then http_stop() (joins the server's threads), then api_free().
 */
#ifndef SPECTRUMD_HTTP_H
#define SPECTRUMD_HTTP_H

#include "spectrumd/api.h"
#include "spectrumd/common.h"

#define HTTP_MAX_CONNECTIONS	4096	/* concurrent connections, default */
#define HTTP_PER_IP_CONNECTIONS	256	/* per client address, default */
#define HTTP_TIMEOUT		30	/* seconds for a request, default */
#define HTTP_THREADS		4	/* event-loop threads, default */
#define HTTP_SSE_KEEPALIVE	15	/* seconds between SSE comments, at most */
#define HTTP_LOG_INTERVAL	10	/* seconds between summary log lines */
#define HTTP_LOG_BURST		5	/* server messages logged per interval */

/* The server's limits; 0 in a field means its default (per_ip: none). */
struct http_limits {
	unsigned	max_connections;	/* all clients together */
	unsigned	per_ip;			/* one client address */
	/*
	 * A connection must deliver each whole request (headers and body)
	 * within timeout_s of opening or of its previous answer, or it is
	 * closed; so is one idle that long. Long polls and /events streams
	 * are exempt while they are answered.
	 */
	unsigned	timeout_s;
	unsigned	threads;		/* event-loop threads */
};

struct http;

/*
 * Starts serving api on listen_addr: "HOST:PORT", "[V6ADDR]:PORT" or
 * "NAME:PORT" (resolved, first address used); PORT 0 binds an ephemeral
 * port (see http_port). api must outlive the server. lim (NULL: the
 * defaults) sets the limits; the soft descriptor limit is raised toward
 * the hard one to fit max_connections, which is lowered (with a warning)
 * when it still does not fit. Counters go to the API's hub (/metrics).
 * Returns SPD_OK and *out, SPD_EINVAL (bad address), SPD_EIO (cannot
 * bind/start; eb says why) or SPD_ENOMEM.
 */
enum spd_err	 http_start(const char *listen_addr, struct api *api,
		    const struct http_limits *lim, struct http **out,
		    struct spd_errbuf *eb);

/* The port actually bound (useful with port 0). */
unsigned	 http_port(const struct http *h);

/*
 * Stops accepting connections; open ones finish their request. Parked
 * long polls answer and /events streams end at once. Idempotent;
 * NULL-safe.
 */
void		 http_quiesce(struct http *h);

/* Stops the server, waits for its threads and frees h. NULL-safe. */
void		 http_stop(struct http *h);

#endif
