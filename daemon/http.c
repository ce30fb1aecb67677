/*
 * http.c: libmicrohttpd glue for the API (the only file that includes
 * <microhttpd.h>). Each connection gets its own thread, because long polls
 * (/selection?wait=) and /events block in the handler; the connection
 * count is capped. A request is answered once its body (if any) has been
 * read and discarded: no route takes a body, bodies over API_MAX_BODY get
 * 413. /events streams hub events as Server-Sent Events from a content
 * reader that blocks on the hub in slices, so quiesce/stop end it quickly.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "spectrumd/api.h"
#include "spectrumd/hub.h"
#include "spectrumd/log.h"

#include "http.h"

#define SSE_SLICE_MS	1000		/* hub waits between stop checks */
#define SSE_BLOCK	4096		/* reader block size */

struct http {
	struct MHD_Daemon	*d;
	struct api		*api;
	unsigned		 port;
	MHD_socket		 quiesced;	/* listen fd after quiesce */
	atomic_bool		 stopping;
};

/* Per request: how much of the query and body we have seen. */
struct req_state {
	size_t	query_len;	/* bytes after '?' in the raw URI */
	size_t	body_len;
	bool	started;	/* the first access-handler call happened */
};

/* One /events stream. */
struct sse {
	struct http	*h;
	struct hub	*hub;
	uint64_t	 after;		/* last event sent */
	char		*out;		/* pending bytes */
	size_t		 len, off;
	double		 last;		/* monotonic time of the last write */
};

/* --- address ------------------------------------------------------------ */

/* Splits "HOST:PORT" / "[V6]:PORT" into host and port strings. */
static enum spd_err
split_addr(const char *addr, char *host, size_t hlen, const char **port,
    struct spd_errbuf *eb)
{
	const char	*colon, *end;
	size_t		 n;

	if (addr[0] == '[') {
		end = strchr(addr, ']');
		if (end == NULL || end[1] != ':')
			return spd_fail(eb, SPD_EINVAL, "listen %s: expected "
			    "[ADDRESS]:PORT", addr);
		addr++;
		colon = end + 1;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL)
			return spd_fail(eb, SPD_EINVAL, "listen %s: expected "
			    "HOST:PORT", addr);
		end = colon;
	}
	n = (size_t)(end - addr);
	if (n == 0 || n >= hlen)
		return spd_fail(eb, SPD_EINVAL, "listen %s: bad host", addr);
	memcpy(host, addr, n);
	host[n] = '\0';
	*port = colon + 1;
	return SPD_OK;
}

/* Resolves listen_addr into *ss (numeric port 0..65535). */
static enum spd_err
parse_addr(const char *listen_addr, struct sockaddr_storage *ss,
    socklen_t *sslen, struct spd_errbuf *eb)
{
	struct addrinfo	 hints, *res = NULL;
	const char	*port = "";
	char		 host[256];
	enum spd_err	 rc;
	unsigned long	 v;
	size_t		 i;
	int		 e;

	if ((rc = split_addr(listen_addr, host, sizeof host, &port, eb)) !=
	    SPD_OK)
		return rc;
	for (i = 0, v = 0; i < 6 && port[i] >= '0' && port[i] <= '9'; i++)
		v = v * 10 + (unsigned long)(port[i] - '0');
	if (i == 0 || i > 5 || port[i] != '\0' || v > 65535)
		return spd_fail(eb, SPD_EINVAL, "listen %s: bad port",
		    listen_addr);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0)
		return spd_fail(eb, SPD_EINVAL, "listen %s: %s", listen_addr,
		    gai_strerror(e));
	if (res->ai_addrlen > sizeof *ss) {
		freeaddrinfo(res);
		return spd_fail(eb, SPD_EINVAL, "listen %s: odd address",
		    listen_addr);
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return SPD_OK;
}

/* --- callbacks ------------------------------------------------------------ */

/* MHD's error log, into ours. */
static void http_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
http_log(void *cls, const char *fmt, va_list ap)
{
	char	buf[512];
	size_t	n;

	(void)cls;
	vsnprintf(buf, sizeof buf, fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_msg(LOG_WARNING, "http: %s", buf);
}

/* Called once per request with the raw URI: sets up the request state. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct req_state	*rs = calloc(1, sizeof *rs);
	const char		*q = strchr(uri, '?');

	(void)cls;
	(void)c;
	if (rs != NULL && q != NULL)
		rs->query_len = strlen(q + 1);
	return rs;
}

/* Frees the request state when MHD is done with the request. */
static void
on_done(void *cls, struct MHD_Connection *c, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	free(*req_cls);
	*req_cls = NULL;
}

/* The api_req arg() callback: a decoded query argument. */
static const char *
query_arg(void *cls, const char *key)
{
	return MHD_lookup_connection_value(cls, MHD_GET_ARGUMENT_KIND, key);
}

/* Writes one event as SSE ("id", "event", one "data:" per line). */
static bool
sse_format(struct sse *s, const struct hub_event *ev)
{
	FILE		*fp;
	const char	*p;

	free(s->out);
	s->out = NULL;
	s->len = s->off = 0;
	if ((fp = open_memstream(&s->out, &s->len)) == NULL)
		return false;
	fprintf(fp, "id: %llu\nevent: %s\ndata: ", (unsigned long long)ev->seq,
	    ev->type);
	for (p = ev->data; *p != '\0'; p++) {
		if (*p == '\n')
			fputs("\ndata: ", fp);
		else if (*p != '\r')
			fputc(*p, fp);
	}
	fputs("\n\n", fp);
	if (fclose(fp) != 0 || s->out == NULL) {
		free(s->out);
		s->out = NULL;
		return false;
	}
	return true;
}

/* Sets a constant pending text (keepalive, retry hint). */
static bool
sse_text(struct sse *s, const char *text)
{
	free(s->out);
	s->len = strlen(text);
	s->off = 0;
	s->out = strdup(text);
	return s->out != NULL;
}

/* Waits for the next event or keepalive; false to end the stream. */
static bool
sse_refill(struct sse *s)
{
	struct hub_event	ev;
	enum spd_err		rc;

	for (;;) {
		if (atomic_load(&s->h->stopping))
			return false;
		rc = hub_next(s->hub, s->after, SSE_SLICE_MS, &ev);
		if (rc == SPD_OK) {
			s->after = ev.seq;
			rc = sse_format(s, &ev) ? SPD_OK : SPD_ENOMEM;
			free(ev.data);
			return rc == SPD_OK;
		}
		if (rc != SPD_EBUSY)
			return false;	/* hub closed, or out of memory */
		if (spd_now() - s->last >= HTTP_SSE_KEEPALIVE)
			return sse_text(s, ": keepalive\n\n");
	}
}

/* MHD content reader of /events: blocks (own thread) until there is data. */
static ssize_t
sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse	*s = cls;
	size_t		 n;

	(void)pos;
	if (s->off >= s->len && !sse_refill(s))
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = s->len - s->off;
	if (n > max)
		n = max;
	memcpy(buf, s->out + s->off, n);
	s->off += n;
	s->last = spd_now();
	return (ssize_t)n;
}

/* Frees an /events stream. */
static void
sse_free(void *cls)
{
	struct sse *s = cls;

	free(s->out);
	free(s);
}

/* --- responses ------------------------------------------------------------ */

/* Builds the /events stream response. */
static struct MHD_Response *
sse_response(struct http *h, const struct api_resp *ar)
{
	struct MHD_Response	*r;
	struct sse		*s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->h = h;
	s->hub = api_hub(h->api);
	s->after = ar->sse_after;
	s->last = spd_now();
	if (s->hub == NULL || !sse_text(s, "retry: 5000\n\n")) {
		sse_free(s);
		return NULL;
	}
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK,
	    sse_read, s, sse_free);
	if (r == NULL)
		sse_free(s);
	else
		MHD_add_response_header(r, "X-Accel-Buffering", "no");
	return r;
}

/* Builds the MHD response of an API answer (takes its body). */
static struct MHD_Response *
make_response(struct http *h, struct api_resp *ar, bool head)
{
	struct MHD_Response *r;

	if (ar->sse && !head)
		return sse_response(h, ar);
	if (ar->body == NULL || ar->status == 304)
		return MHD_create_response_from_buffer(0, NULL,
		    MHD_RESPMEM_PERSISTENT);
	if (ar->body_static)
		return MHD_create_response_from_buffer(ar->len, ar->body,
		    MHD_RESPMEM_PERSISTENT);
	r = MHD_create_response_from_buffer(ar->len, ar->body,
	    MHD_RESPMEM_MUST_FREE);
	if (r != NULL)
		ar->body = NULL;	/* MHD frees it */
	return r;
}

/* Adds the headers an API answer asks for. */
static void
add_headers(struct MHD_Response *r, const struct api_resp *ar)
{
	if (ar->content_type != NULL && ar->status != 304)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
		    ar->content_type);
	if (ar->etag[0] != '\0')
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, ar->etag);
	if (ar->cache_control != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
		    ar->cache_control);
	if (ar->status == 405)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
		    ar->allow_post ? "POST" : "GET, HEAD");
	if (ar->status == 401)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		    "Bearer realm=\"spectrumd\"");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
}

/* Queues ar on c. */
static enum MHD_Result
queue(struct http *h, struct MHD_Connection *c, struct api_resp *ar,
    bool head)
{
	struct MHD_Response	*r;
	enum MHD_Result		 ret;

	if ((r = make_response(h, ar, head)) == NULL) {
		api_resp_cleanup(ar);
		return MHD_NO;		/* closes the connection */
	}
	add_headers(r, ar);
	ret = MHD_queue_response(c, (unsigned)ar->status, r);
	MHD_destroy_response(r);
	api_resp_cleanup(ar);
	return ret;
}

/* Answers 413 for an oversized body. */
static enum MHD_Result
too_large(struct http *h, struct MHD_Connection *c)
{
	struct api_resp	ar;
	char		msg[96];

	memset(&ar, 0, sizeof ar);
	snprintf(msg, sizeof msg, "request body over %u bytes", API_MAX_BODY);
	api_error(&ar, 413, "payload_too_large", msg);
	return queue(h, c, &ar, false);
}

/* True when the request announces a body larger than API_MAX_BODY. */
static bool
announced_too_large(struct MHD_Connection *c)
{
	const char	*cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
			    MHD_HTTP_HEADER_CONTENT_LENGTH);
	char		*end;
	unsigned long long v;

	if (cl == NULL)
		return false;
	v = strtoull(cl, &end, 10);
	return end == cl || *end != '\0' || v > API_MAX_BODY;
}

/* Runs the API on a complete request. */
static enum MHD_Result
dispatch(struct http *h, struct MHD_Connection *c, const char *url,
    const char *method, const struct req_state *rs)
{
	struct api_req	req;
	struct api_resp	ar;

	memset(&req, 0, sizeof req);
	req.method = method;
	req.path = url;
	req.arg = query_arg;
	req.cls = c;
	req.query_len = rs->query_len;
	req.if_none_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_IF_NONE_MATCH);
	req.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	req.accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_ACCEPT);
	api_handle(h->api, &req, &ar);
	return queue(h, c, &ar, strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
}

/*
 * The access handler: the first call only starts the request, calls with
 * upload data count and discard it, the last call answers.
 */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	struct http		*h = cls;
	struct req_state	*rs = *req_cls;

	(void)version;
	(void)upload_data;
	if (rs == NULL)
		return MHD_NO;		/* on_uri could not allocate */
	if (!rs->started) {
		rs->started = true;
		if (announced_too_large(c))
			return too_large(h, c);
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		rs->body_len += *upload_data_size;
		*upload_data_size = 0;
		if (rs->body_len > API_MAX_BODY)
			return too_large(h, c);
		return MHD_YES;
	}
	if (rs->body_len > API_MAX_BODY)
		return too_large(h, c);
	return dispatch(h, c, url, method, rs);
}

/* --- lifetime --------------------------------------------------------------- */

/* Starts the server (see http.h). */
enum spd_err
http_start(const char *listen_addr, struct api *api, struct http **out,
    struct spd_errbuf *eb)
{
	struct sockaddr_storage		 ss;
	socklen_t			 sslen = 0;
	const union MHD_DaemonInfo	*info;
	struct http			*h;
	unsigned			 flags;
	enum spd_err			 rc;

	if (listen_addr == NULL || api == NULL)
		return spd_fail(eb, SPD_EINVAL, "http: bad arguments");
	if ((rc = parse_addr(listen_addr, &ss, &sslen, eb)) != SPD_OK)
		return rc;
	if ((h = calloc(1, sizeof *h)) == NULL)
		return SPD_ENOMEM;
	h->api = api;
	h->quiesced = MHD_INVALID_SOCKET;
	atomic_init(&h->stopping, false);
	flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
	    MHD_OPTION_EXTERNAL_LOGGER, http_log, (void *)NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, on_done, (void *)NULL,
	    MHD_OPTION_END);
	if (h->d == NULL) {
		free(h);
		return spd_fail(eb, SPD_EIO, "http: cannot listen on %s "
		    "(address in use or not available?)", listen_addr);
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info != NULL ? info->port : 0;
	*out = h;
	return SPD_OK;
}

/* The bound port. */
unsigned
http_port(const struct http *h)
{
	return h->port;
}

/* Stops accepting connections and ends the /events streams. */
void
http_quiesce(struct http *h)
{
	MHD_socket fd;

	if (h == NULL)
		return;
	atomic_store(&h->stopping, true);
	if (h->quiesced != MHD_INVALID_SOCKET)
		return;
	fd = MHD_quiesce_daemon(h->d);
	h->quiesced = fd;
}

/* Stops the server and frees it. */
void
http_stop(struct http *h)
{
	if (h == NULL)
		return;
	atomic_store(&h->stopping, true);
	MHD_stop_daemon(h->d);
	if (h->quiesced != MHD_INVALID_SOCKET)
		close(h->quiesced);
	free(h);
}
