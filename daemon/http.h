/*
 * http.h: the HTTP server (libmicrohttpd, one thread per connection) in
 * front of the pure API handlers of api.h. daemon/http.c is the only file
 * that includes <microhttpd.h>.
 *
 * Shutdown order: http_quiesce() (no new connections), then hub_close() on
 * the API's hub (ends long polls and /events streams at once), then
 * http_stop() (joins the connection threads), then api_free().
 */
#ifndef SPECTRUMD_HTTP_H
#define SPECTRUMD_HTTP_H

#include "spectrumd/api.h"
#include "spectrumd/common.h"

#define HTTP_MAX_CONNECTIONS	256	/* concurrent connections (threads) */
#define HTTP_IDLE_TIMEOUT	60	/* seconds a quiet connection may stay */
#define HTTP_SSE_KEEPALIVE	15	/* seconds between SSE comments */

struct http;

/*
 * Starts serving api on listen_addr: "HOST:PORT", "[V6ADDR]:PORT" or
 * "NAME:PORT" (resolved, first address used); PORT 0 binds an ephemeral
 * port (see http_port). api must outlive the server. Returns SPD_OK and
 * *out, SPD_EINVAL (bad address), SPD_EIO (cannot bind/start; eb says
 * why) or SPD_ENOMEM.
 */
enum spd_err	 http_start(const char *listen_addr, struct api *api,
		    struct http **out, struct spd_errbuf *eb);

/* The port actually bound (useful with port 0). */
unsigned	 http_port(const struct http *h);

/*
 * Stops accepting connections; open ones continue. /events streams end
 * within about a second. Idempotent; NULL-safe.
 */
void		 http_quiesce(struct http *h);

/* Stops the server, waits for its threads and frees h. NULL-safe. */
void		 http_stop(struct http *h);

#endif
