/*
 * http.c: libmicrohttpd glue for the API (the only file that includes
 * <microhttpd.h>).
 *
 * Model: a small pool of event-loop threads (libmicrohttpd's internal
 * polling threads on epoll) serves every connection, and no handler
 * blocks. A long poll the API parks (api_resp.park) and an /events stream
 * with nothing to send suspend their connection and go on the park list;
 * the resumer thread resumes them when the hub publishes (hub_set_wake),
 * at their deadline or SSE keepalive, when their client has left (their
 * socket is peeked every few seconds), and at shutdown. The resumer also
 * shuts the socket of a connection whose request is not complete within
 * the timeout (libmicrohttpd's own timeout restarts at every byte, so it
 * never ends a client sending a header byte per second), and once per
 * HTTP_LOG_INTERVAL writes one summary line of the connections turned
 * away and of libmicrohttpd's messages beyond the first few: they are
 * counted in /metrics, never logged one by one.
 *
 * A request is answered once its body (if any) has been read and
 * discarded: no route takes a body, bodies over API_MAX_BODY get 413.
 *
 * Locking: h->mu guards the park and connection lists, the hub position
 * seen and the log counters. MHD_resume_connection is never called with
 * it held; MHD_suspend_connection is (from the event-loop thread that owns
 * the connection), so a resume cannot overtake its suspend.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "spectrumd/api.h"
#include "spectrumd/hub.h"
#include "spectrumd/log.h"

#include "http.h"

#define SSE_BLOCK	4096		/* reader block size */
#define SPARE_FDS	256		/* descriptors kept for all but sockets */
#define TICK_S		1.0		/* resumer's longest sleep */
#define MHD_GRACE_S	2		/* MHD's idle timeout is ours plus this */
#define CUT_BATCH	64		/* sockets cut per hold of h->mu */
#define GONE_EVERY	5		/* ticks between looks for gone clients */

/* A suspended connection waiting for the hub, a deadline or shutdown. */
struct park {
	struct park		*prev, *next;
	struct MHD_Connection	*c;
	MHD_socket		 fd;		/* its socket, to see it close */
	uint64_t		 after;		/* resume on an event past it */
	double			 until;		/* or then (spd_now clock) */
	bool			 on;		/* on the park list */
	bool			 gone;		/* the client closed: end it */
};

/* One open connection, for the request deadline. */
struct conn {
	struct conn		*prev, *next;
	MHD_socket		 fd;
	double			 since;		/* waiting for a request since */
	bool			 started;	/* a request line arrived */
	bool			 busy;		/* a request is being answered */
	bool			 cut;		/* shut down by us */
};

struct http {
	struct MHD_Daemon	*d;
	struct api		*api;
	struct hub		*hub;
	struct http_limits	 lim;
	unsigned		 port;
	double			 keepalive;	/* SSE comment interval */
	MHD_socket		 quiesced;	/* listen fd after quiesce */
	pthread_t		 resumer;
	bool			 resumer_on;

	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct park		*parked;
	struct conn		*conns;
	uint64_t		 seq;		/* newest hub event seen */
	bool			 closed;	/* hub closed */
	bool			 stopping;	/* quiesce or stop */
	bool			 quit;		/* the resumer ends */
	bool			 kick;		/* the resumer has work */
	/* What the next summary line reports. */
	double			 last_summary;
	uint64_t		 turned[HUB_NREJECT];
	unsigned		 msgs;		/* MHD messages logged */
	uint64_t		 dropped;	/* and not logged */
};

/* Per request: how much of the query and body we have seen. */
struct req_state {
	size_t		query_len;	/* bytes after '?' in the raw URI */
	size_t		body_len;
	bool		started;	/* the first access-handler call happened */
	bool		resumed;	/* run again after a park */
	struct park	park;
};

/* One /events stream. */
struct sse {
	struct http	*h;
	struct hub	*hub;
	struct MHD_Connection *c;
	uint64_t	 after;		/* last event sent */
	char		*out;		/* pending bytes */
	size_t		 len, off;
	double		 last;		/* monotonic time of the last write */
	struct park	 park;
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

/* --- parking ------------------------------------------------------------- */

/* The tracking record of c, or NULL. */
static struct conn *
conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/* Links p (h->mu held). */
static void
park_link(struct http *h, struct park *p)
{
	p->prev = NULL;
	p->next = h->parked;
	if (h->parked != NULL)
		h->parked->prev = p;
	h->parked = p;
	p->on = true;
}

/* Unlinks p if linked (h->mu held). */
static void
park_unlink(struct http *h, struct park *p)
{
	if (!p->on)
		return;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		h->parked = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
	p->on = false;
}

/* True when p should run again now (h->mu held). */
static bool
park_due(const struct http *h, const struct park *p, double now)
{
	return h->stopping || h->closed || p->gone || h->seq > p->after ||
	    now >= p->until;
}

/*
 * Marks parked connections whose client has closed (h->mu held): a
 * suspended connection's socket is not watched, so a long poll would
 * otherwise keep its slot until its deadline. Its fd stays open while it
 * is suspended.
 */
static void
find_gone(struct http *h)
{
	struct park	*p;
	ssize_t		 n;
	char		 b;

	for (p = h->parked; p != NULL; p = p->next) {
		if (p->fd == MHD_INVALID_SOCKET)
			continue;
		n = recv(p->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		p->gone = n == 0 || (n < 0 && errno != EAGAIN &&
		    errno != EWOULDBLOCK && errno != EINTR);
	}
}

/*
 * Suspends c (from its event-loop thread) until an event after `after`,
 * until, or shutdown. Returns false, suspending nothing, when that is
 * already the case: the caller runs again at once.
 */
static bool
park(struct http *h, struct park *p, struct MHD_Connection *c,
    uint64_t after, double until)
{
	struct conn	*k;
	bool		 parked = false;

	k = conn_of(c);
	pthread_mutex_lock(&h->mu);
	p->c = c;
	p->fd = k != NULL ? k->fd : MHD_INVALID_SOCKET;
	p->gone = false;
	p->after = after;
	p->until = h->stopping ? 0 : until;	/* 0: answer now */
	if (!park_due(h, p, spd_now())) {
		MHD_suspend_connection(c);
		park_link(h, p);
		h->kick = true;		/* its deadline may be the nearest */
		pthread_cond_signal(&h->cv);
		parked = true;
	}
	pthread_mutex_unlock(&h->mu);
	return parked;
}

/* Forgets p if still parked (request or stream freed). */
static void
park_forget(struct http *h, struct park *p)
{
	pthread_mutex_lock(&h->mu);
	park_unlink(h, p);
	pthread_mutex_unlock(&h->mu);
}

/* The hub's wake hook: notes the position and kicks the resumer. */
static void
on_hub(void *arg, uint64_t seq, bool closed)
{
	struct http *h = arg;

	pthread_mutex_lock(&h->mu);
	if (seq > h->seq)
		h->seq = seq;
	h->closed = h->closed || closed;
	h->kick = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/*
 * Unlinks the parked connections that are due into a list (h->mu held);
 * *next is lowered to the nearest deadline of the others.
 */
static struct park *
take_due(struct http *h, double now, double *next)
{
	struct park	*p, *nx, *due = NULL;

	for (p = h->parked; p != NULL; p = nx) {
		nx = p->next;
		if (park_due(h, p, now)) {
			park_unlink(h, p);
			p->next = due;
			due = p;
		} else if (p->until < *next)
			*next = p->until;
	}
	return due;
}

/* Resumes a list from take_due (h->mu not held: MHD takes its locks). */
static void
resume_list(struct park *p)
{
	struct MHD_Connection	*c;
	struct park		*nx;

	for (; p != NULL; p = nx) {
		nx = p->next;		/* p may be parked again at once */
		c = p->c;
		MHD_resume_connection(c);
	}
}

/* --- connections and the request deadline --------------------------------- */

/* Tracks connections as libmicrohttpd opens and closes them. */
static void
on_conn(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	const union MHD_ConnectionInfo	*ci;
	struct http			*h = cls;
	struct conn			*k = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci == NULL || (k = calloc(1, sizeof *k)) == NULL)
			return;		/* then only MHD's timeout applies */
		k->fd = ci->connect_fd;
		k->since = spd_now();
		pthread_mutex_lock(&h->mu);
		k->next = h->conns;
		if (h->conns != NULL)
			h->conns->prev = k;
		h->conns = k;
		pthread_mutex_unlock(&h->mu);
		*socket_context = k;
		hub_count_open(h->hub, 1);
		return;
	}
	if (k == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		h->conns = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
	pthread_mutex_unlock(&h->mu);
	*socket_context = NULL;
	free(k);
	hub_count_open(h->hub, -1);
}

/* Marks c's request as started, being answered, or done. */
static void
conn_mark(struct http *h, struct MHD_Connection *c, bool started,
    bool busy)
{
	struct conn *k = conn_of(c);

	if (k == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	if (!started && !busy)
		k->since = spd_now();	/* the next request's clock */
	k->started = started;
	k->busy = busy;
	pthread_mutex_unlock(&h->mu);
}

/*
 * Shuts down the sockets of connections that did not deliver a whole
 * request within the timeout (h->mu held). libmicrohttpd then sees the
 * socket end and closes the connection itself; the record stays valid
 * until its close notification, which takes h->mu. After CUT_BATCH
 * sockets the lock is let go for a moment, so that thousands of expiring
 * connections do not stall every request, and the scan starts over.
 */
static void
cut_slow(struct http *h, double now)
{
	struct conn	*k;
	unsigned	 n = 0;
	bool		 idle;

	for (k = h->conns; k != NULL; k = k->next) {
		if (k->busy || k->cut || now - k->since < h->lim.timeout_s)
			continue;
		k->cut = true;
		shutdown(k->fd, SHUT_RDWR);
		idle = !k->started;
		h->turned[idle ? HUB_REJECT_IDLE : HUB_REJECT_SLOW]++;
		hub_count_reject(h->hub, idle ? HUB_REJECT_IDLE :
		    HUB_REJECT_SLOW, 1);
		if (++n % CUT_BATCH == 0) {
			pthread_mutex_unlock(&h->mu);
			sched_yield();
			pthread_mutex_lock(&h->mu);
			k = h->conns;	/* the list may have changed */
			if (k == NULL)
				break;
		}
	}
}

/* --- logging ----------------------------------------------------------- */

/* Writes the summary of the last interval, if there is news (h->mu held). */
static void
log_summary(struct http *h, double now)
{
	uint64_t	*t = h->turned;

	if (now - h->last_summary < HTTP_LOG_INTERVAL)
		return;
	if (t[HUB_REJECT_LIMIT] + t[HUB_REJECT_ACCEPT] + t[HUB_REJECT_SLOW] +
	    t[HUB_REJECT_BAD] + h->dropped > 0)
		log_msg(LOG_WARNING, "http: in the last %.0f s, turned away "
		    "%" PRIu64 " connections over a limit, %" PRIu64 " failed "
		    "accepts (descriptors?), %" PRIu64 " slow requests, "
		    "%" PRIu64 " malformed; %" PRIu64 " more server messages "
		    "not logged (see /metrics)", now - h->last_summary,
		    t[HUB_REJECT_LIMIT], t[HUB_REJECT_ACCEPT],
		    t[HUB_REJECT_SLOW], t[HUB_REJECT_BAD], h->dropped);
	memset(h->turned, 0, sizeof h->turned);
	h->msgs = 0;
	h->dropped = 0;
	h->last_summary = now;
}

/* True for messages about clients that went away (normal for streams). */
static bool
benign(const char *msg)
{
	return strstr(msg, "no longer available") != NULL ||
	    strstr(msg, "connection closure") != NULL ||
	    strstr(msg, "reset by peer") != NULL ||
	    strstr(msg, "Broken pipe") != NULL;
}

/* What a libmicrohttpd message reports, or HUB_NREJECT for other news. */
static enum hub_reject
classify(const char *msg)
{
	if (strstr(msg, "connection limit") != NULL)
		return HUB_REJECT_LIMIT;
	if (strncmp(msg, "Error accepting connection", 26) == 0 ||
	    strstr(msg, "resource limit") != NULL)
		return HUB_REJECT_ACCEPT;
	if (strncmp(msg, "Error processing request", 24) == 0)
		return HUB_REJECT_BAD;
	return HUB_NREJECT;
}

/*
 * libmicrohttpd's error log: clients that went away are debug news,
 * rejections are counted for the summary line, other messages logged up
 * to HTTP_LOG_BURST per interval, then counted.
 */
static void http_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
http_log(void *cls, const char *fmt, va_list ap)
{
	struct http	*h = cls;
	enum hub_reject	 why;
	char		 buf[512];
	size_t		 n;
	bool		 show = false;

	vsnprintf(buf, sizeof buf, fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (benign(buf)) {
		log_debug("http: %s", buf);
		return;
	}
	why = classify(buf);
	if (why != HUB_NREJECT)
		hub_count_reject(h->hub, why, 1);
	pthread_mutex_lock(&h->mu);
	if (why != HUB_NREJECT)
		h->turned[why]++;
	else if (h->msgs < HTTP_LOG_BURST) {
		h->msgs++;
		show = true;
	} else
		h->dropped++;
	pthread_mutex_unlock(&h->mu);
	if (show)
		log_msg(LOG_WARNING, "http: %s", buf);
}

/* --- the resumer thread --------------------------------------------------- */

/* Sleeps on h->cv until `until` (spd_now clock) or a kick (h->mu held). */
static void
sleep_until(struct http *h, double until)
{
	struct timespec	ts;
	double		left = until - spd_now();

	if (left <= 0 || h->kick || h->quit)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)left;
	ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&h->cv, &h->mu, &ts);
}

/*
 * Resumes parked connections when due, cuts slow ones, writes the log
 * summary; sleeps until the nearest deadline, a tick or a kick.
 */
static void *
resumer_main(void *arg)
{
	struct http	*h = arg;
	struct park	*due;
	double		 now, next, tick = 0;
	unsigned	 ticks = 0;

	pthread_mutex_lock(&h->mu);
	while (!h->quit) {
		h->kick = false;
		now = spd_now();
		next = now + TICK_S;
		if (now >= tick && ++ticks % GONE_EVERY == 0)
			find_gone(h);
		due = take_due(h, now, &next);
		if (now >= tick) {	/* not at every kick: a pass is O(conns) */
			cut_slow(h, now);
			log_summary(h, now);
			tick = now + TICK_S;
		}
		if (tick < next)
			next = tick;
		if (due != NULL) {
			pthread_mutex_unlock(&h->mu);
			resume_list(due);
			pthread_mutex_lock(&h->mu);
		}
		sleep_until(h, next);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* Stops the resumer and resumes whatever is still parked. */
static void
resumer_stop(struct http *h)
{
	struct park	*due;
	double		 next = 0;

	if (!h->resumer_on)
		return;
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	h->quit = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->resumer, NULL);
	h->resumer_on = false;
	pthread_mutex_lock(&h->mu);
	due = take_due(h, spd_now(), &next);
	pthread_mutex_unlock(&h->mu);
	resume_list(due);
}

/* --- requests ------------------------------------------------------------- */

/* Called once per request with the raw URI: sets up the request state. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct req_state	*rs = calloc(1, sizeof *rs);
	const char		*q = strchr(uri, '?');

	conn_mark(cls, c, true, false);
	if (rs != NULL && q != NULL)
		rs->query_len = strlen(q + 1);
	return rs;
}

/* Frees the request state when MHD is done with the request. */
static void
on_done(void *cls, struct MHD_Connection *c, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http		*h = cls;
	struct req_state	*rs = *req_cls;

	(void)toe;
	conn_mark(h, c, false, false);
	if (rs != NULL)
		park_forget(h, &rs->park);
	free(rs);
	*req_cls = NULL;
}

/* The api_req arg() callback: a decoded query argument. */
static const char *
query_arg(void *cls, const char *key)
{
	return MHD_lookup_connection_value(cls, MHD_GET_ARGUMENT_KIND, key);
}

/* --- /events -------------------------------------------------------------- */

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

/* What sse_refill found. */
enum sse_next { SSE_DATA, SSE_WAIT, SSE_END };

/* Takes the next event or a due keepalive, without waiting. */
static enum sse_next
sse_refill(struct sse *s)
{
	struct hub_event	ev;
	enum spd_err		rc;
	bool			stopping;

	pthread_mutex_lock(&s->h->mu);
	stopping = s->h->stopping;
	pthread_mutex_unlock(&s->h->mu);
	if (stopping)
		return SSE_END;
	rc = hub_next(s->hub, s->after, 0, &ev);
	if (rc == SPD_OK) {
		s->after = ev.seq;
		rc = sse_format(s, &ev) ? SPD_OK : SPD_ENOMEM;
		free(ev.data);
		return rc == SPD_OK ? SSE_DATA : SSE_END;
	}
	if (rc != SPD_EBUSY)
		return SSE_END;		/* hub closed, or out of memory */
	if (spd_now() - s->last >= s->h->keepalive)
		return sse_text(s, ": keepalive\n\n") ? SSE_DATA : SSE_END;
	return SSE_WAIT;
}

/*
 * MHD content reader of /events: copies pending bytes; with none, parks
 * the connection until the next event or keepalive and returns 0 (MHD
 * calls again once it is resumed).
 */
static ssize_t
sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse	*s = cls;
	size_t		 n;

	(void)pos;
	if (s->park.gone)
		return MHD_CONTENT_READER_END_OF_STREAM;	/* client left */
	while (s->off >= s->len) {
		switch (sse_refill(s)) {
		case SSE_END:
			return MHD_CONTENT_READER_END_OF_STREAM;
		case SSE_DATA:
			continue;
		case SSE_WAIT:
			if (park(s->h, &s->park, s->c, s->after,
			    s->last + s->h->keepalive))
				return 0;
			break;		/* news already: look again */
		}
	}
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

	park_forget(s->h, &s->park);
	free(s->out);
	free(s);
}

/* --- responses ------------------------------------------------------------ */

/* Builds the /events stream response. */
static struct MHD_Response *
sse_response(struct http *h, struct MHD_Connection *c,
    const struct api_resp *ar)
{
	struct MHD_Response	*r;
	struct sse		*s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->h = h;
	s->hub = h->hub;
	s->c = c;
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
make_response(struct http *h, struct MHD_Connection *c, struct api_resp *ar,
    bool head)
{
	struct MHD_Response *r;

	if (ar->sse && !head)
		return sse_response(h, c, ar);
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
	if (ar->disposition[0] != '\0')
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION,
		    ar->disposition);
	if (ar->status == 405)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
		    ar->allow_post ? "POST" : "GET, HEAD");
	if (ar->status == 401)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		    "Bearer realm=\"spectrumd\"");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
}

/* Queues ar on c and counts it. */
static enum MHD_Result
queue(struct http *h, struct MHD_Connection *c, struct api_resp *ar,
    bool head)
{
	struct MHD_Response	*r;
	enum MHD_Result		 ret;

	if ((r = make_response(h, c, ar, head)) == NULL) {
		api_resp_cleanup(ar);
		return MHD_NO;		/* closes the connection */
	}
	add_headers(r, ar);
	ret = MHD_queue_response(c, (unsigned)ar->status, r);
	MHD_destroy_response(r);
	if (h->hub != NULL)
		hub_count_request(h->hub, ar->status);
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

/* Fills the api_req of a complete request on c. */
static void
fill_req(struct api_req *req, struct MHD_Connection *c, const char *url,
    const char *method, const struct req_state *rs)
{
	memset(req, 0, sizeof *req);
	req->method = method;
	req->path = url;
	req->arg = query_arg;
	req->cls = c;
	req->query_len = rs->query_len;
	req->if_none_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_IF_NONE_MATCH);
	req->authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	req->accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_ACCEPT);
	req->resumed = rs->resumed;
	req->resume_after = rs->park.after;
	req->resume_until = rs->park.until;
}

/*
 * Runs the API on a complete request and queues the answer; an answer the
 * API parks suspends the connection (MHD calls again once resumed), or
 * runs again at once when there is news already.
 */
static enum MHD_Result
dispatch(struct http *h, struct MHD_Connection *c, const char *url,
    const char *method, struct req_state *rs)
{
	struct api_req	req;
	struct api_resp	ar;

	if (rs->park.gone)
		rs->park.until = 0;	/* the client left: answer, and close */
	conn_mark(h, c, true, true);
	for (;;) {
		fill_req(&req, c, url, method, rs);
		api_handle(h->api, &req, &ar);
		if (!ar.park)
			break;
		rs->resumed = true;
		if (park(h, &rs->park, c, ar.park_after, ar.park_until))
			return MHD_YES;
	}
	return queue(h, c, &ar, strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
}

/*
 * The access handler: the first call only starts the request, calls with
 * upload data count and discard it, the last call answers (again after
 * each resume of a parked long poll).
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

/* --- lifetime ------------------------------------------------------------- */

/*
 * Raises the soft descriptor limit toward the hard one so that `want`
 * connections fit; returns how many connections fit.
 */
static unsigned
fit_nofile(unsigned want)
{
	struct rlimit	rl;
	rlim_t		need = (rlim_t)want + SPARE_FDS;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max > need ? need : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return want;
	if (rl.rlim_cur <= 2 * SPARE_FDS)
		return SPARE_FDS;
	return (unsigned)(rl.rlim_cur - SPARE_FDS);
}

/* Fills h->lim from lim (NULL: defaults) and the descriptor limit. */
static void
set_limits(struct http *h, const struct http_limits *lim)
{
	unsigned fit;

	h->lim.max_connections = HTTP_MAX_CONNECTIONS;
	h->lim.per_ip = HTTP_PER_IP_CONNECTIONS;
	h->lim.timeout_s = HTTP_TIMEOUT;
	h->lim.threads = HTTP_THREADS;
	if (lim != NULL) {
		if (lim->max_connections > 0)
			h->lim.max_connections = lim->max_connections;
		h->lim.per_ip = lim->per_ip;
		if (lim->timeout_s > 0)
			h->lim.timeout_s = lim->timeout_s;
		if (lim->threads > 0)
			h->lim.threads = lim->threads;
	}
	fit = fit_nofile(h->lim.max_connections);
	if (fit < h->lim.max_connections) {
		log_msg(LOG_WARNING, "http: the descriptor limit (ulimit -n, "
		    "LimitNOFILE=) allows %u connections, not %u", fit,
		    h->lim.max_connections);
		h->lim.max_connections = fit;
	}
	h->keepalive = HTTP_SSE_KEEPALIVE;
	if (h->keepalive > h->lim.timeout_s / 2.0)
		h->keepalive = h->lim.timeout_s / 2.0;
}

/*
 * Binds and listens on ss ourselves, so a failure names its cause (MHD
 * would log "Failed to bind to port 0" for an address given whole).
 */
static enum spd_err
listen_on(const struct sockaddr_storage *ss, socklen_t sslen,
    const char *listen_addr, int *fd, struct spd_errbuf *eb)
{
	int one = 1, e;

	*fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return spd_fail(eb, SPD_EIO, "http: socket for %s: %s",
		    listen_addr, strerror(errno));
	if (setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(*fd, (const struct sockaddr *)ss, sslen) != 0 ||
	    listen(*fd, SOMAXCONN) != 0) {
		e = errno;
		close(*fd);
		*fd = -1;
		return spd_fail(eb, SPD_EIO, "http: cannot listen on %s: %s%s",
		    listen_addr, strerror(e), e == EADDRINUSE ? " (another "
		    "process has that port: choose another with --listen)" :
		    "");
	}
	return SPD_OK;
}

/* Starts libmicrohttpd on the listening socket fd with h's limits. */
static struct MHD_Daemon *
start_mhd(struct http *h, const struct sockaddr_storage *ss, int fd)
{
	unsigned flags;

	flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ERROR_LOG | MHD_USE_ITC;
	if (ss->ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
	    MHD_OPTION_EXTERNAL_LOGGER, http_log, h,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_CONNECTION_LIMIT, h->lim.max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, h->lim.per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, h->lim.timeout_s + MHD_GRACE_S,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
	    MHD_OPTION_NOTIFY_COMPLETED, on_done, h,
	    MHD_OPTION_NOTIFY_CONNECTION, on_conn, h,
	    /* last: one thread is no pool (MHD warns about a pool of 1) */
	    h->lim.threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
	    h->lim.threads, MHD_OPTION_END);
}

/* Frees h (the server and the resumer are stopped). */
static void
http_free(struct http *h)
{
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

/* Allocates h with its lock and monotonic condition variable. */
static struct http *
http_alloc(void)
{
	struct http		*h;

	if ((h = calloc(1, sizeof *h)) == NULL)
		return NULL;
	if (pthread_mutex_init(&h->mu, NULL) != 0) {
		free(h);
		return NULL;
	}
	if (spd_cond_init_monotonic(&h->cv) != 0) {
		pthread_mutex_destroy(&h->mu);
		free(h);
		return NULL;
	}
	h->quiesced = MHD_INVALID_SOCKET;
	h->last_summary = spd_now();
	return h;
}

/* Starts the server (see http.h). */
enum spd_err
http_start(const char *listen_addr, struct api *api,
    const struct http_limits *lim, struct http **out, struct spd_errbuf *eb)
{
	struct sockaddr_storage		 ss;
	socklen_t			 sslen = 0;
	const union MHD_DaemonInfo	*info;
	struct http			*h;
	enum spd_err			 rc;
	int				 fd = -1;

	if (listen_addr == NULL || api == NULL)
		return spd_fail(eb, SPD_EINVAL, "http: bad arguments");
	if ((rc = parse_addr(listen_addr, &ss, &sslen, eb)) != SPD_OK ||
	    (rc = listen_on(&ss, sslen, listen_addr, &fd, eb)) != SPD_OK)
		return rc;
	if ((h = http_alloc()) == NULL) {
		close(fd);
		return SPD_ENOMEM;
	}
	h->api = api;
	h->hub = api_hub(api);
	set_limits(h, lim);
	if (h->hub != NULL)
		h->seq = hub_seq(h->hub);
	if (pthread_create(&h->resumer, NULL, resumer_main, h) != 0) {
		http_free(h);
		close(fd);
		return spd_fail(eb, SPD_ENOMEM, "http: cannot start a thread");
	}
	h->resumer_on = true;
	if ((h->d = start_mhd(h, &ss, fd)) == NULL) {
		resumer_stop(h);
		http_free(h);
		close(fd);
		return spd_fail(eb, SPD_EIO, "http: cannot serve on %s (see "
		    "the http: warning above)", listen_addr);
	}
	if (h->hub != NULL)
		hub_set_wake(h->hub, on_hub, h);
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

/* Stops accepting connections, ends /events streams and long polls. */
void
http_quiesce(struct http *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	h->kick = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	if (h->quiesced == MHD_INVALID_SOCKET)
		h->quiesced = MHD_quiesce_daemon(h->d);
}

/* Stops the server and frees it. */
void
http_stop(struct http *h)
{
	if (h == NULL)
		return;
	if (h->hub != NULL)
		hub_set_wake(h->hub, NULL, NULL);
	resumer_stop(h);
	MHD_stop_daemon(h->d);
	if (h->quiesced != MHD_INVALID_SOCKET)
		close(h->quiesced);
	http_free(h);
}
