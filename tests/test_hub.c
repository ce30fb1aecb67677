/* test_hub.c: the event ring, its waits, hub_close and the counters. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spectrumd/hub.h"
#include "tap.h"

/* What a waiter thread saw. */
struct waiter {
	struct hub		*h;
	uint64_t		 after;
	int			 timeout_ms;
	enum spd_err		 rc;
	struct hub_event	 ev;
	double			 waited;
};

/* Thread body: one hub_next call, timed. */
static void *
wait_one(void *arg)
{
	struct waiter	*w = arg;
	double		 t0 = spd_now();

	w->rc = hub_next(w->h, w->after, w->timeout_ms, &w->ev);
	w->waited = spd_now() - t0;
	return NULL;
}

/* Sleeps ms milliseconds. */
static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Publish, then read back in order; the past and the empty future. */
static void
test_order(void)
{
	struct hub		*h = hub_new(8);
	struct hub_event	 ev;
	uint64_t		 s1, s2, s3;
	double			 t0;
	enum spd_err		 rc;

	ok(h != NULL, "hub_new");
	ok(hub_seq(h) == 0, "empty hub: seq 0");
	s1 = hub_publish(h, "checkpoint", "{\"a\":1}");
	s2 = hub_publish(h, "progress", "{\"a\":2}");
	s3 = hub_publish(h, "selection", NULL);
	ok(s1 == 1 && s2 == 2 && s3 == 3, "seq 1, 2, 3 (%llu %llu %llu)",
	    (unsigned long long)s1, (unsigned long long)s2,
	    (unsigned long long)s3);
	ok(hub_seq(h) == 3, "hub_seq is the newest");

	rc = hub_next(h, 0, 0, &ev);
	ok(rc == SPD_OK && ev.seq == 1 && strcmp(ev.type, "checkpoint") == 0 &&
	    strcmp(ev.data, "{\"a\":1}") == 0, "after 0: first event");
	if (rc == SPD_OK)
		free(ev.data);
	rc = hub_next(h, 1, 0, &ev);
	ok(rc == SPD_OK && ev.seq == 2 && strcmp(ev.type, "progress") == 0,
	    "after 1: second event");
	if (rc == SPD_OK)
		free(ev.data);
	rc = hub_next(h, 2, 0, &ev);
	ok(rc == SPD_OK && ev.seq == 3 && strcmp(ev.data, "{}") == 0,
	    "NULL data is published as {}");
	if (rc == SPD_OK)
		free(ev.data);

	t0 = spd_now();
	rc = hub_next(h, 3, 50, &ev);
	ok(rc == SPD_EBUSY, "nothing newer: SPD_EBUSY (%s)", spd_strerror(rc));
	ok(spd_now() - t0 >= 0.045 && spd_now() - t0 < 1.0,
	    "the timeout took ~50 ms (%.3f s)", spd_now() - t0);
	ok(hub_next(h, 3, 0, &ev) == SPD_EBUSY, "zero timeout only looks");

	s1 = hub_publish(h, "a-type-name-longer-than-fifteen", "x");
	rc = hub_next(h, 3, 0, &ev);
	ok(rc == SPD_OK && strlen(ev.type) == sizeof ev.type - 1 &&
	    strncmp(ev.type, "a-type-name-lon", 15) == 0,
	    "long type truncated to the field");
	if (rc == SPD_OK)
		free(ev.data);
	hub_free(h);
}

/* A ring of 4 after 10 publishes keeps 7..10; older asks get 7. */
static void
test_overflow(void)
{
	struct hub		*h = hub_new(4);
	struct hub_event	 ev;
	char			 buf[16];
	enum spd_err		 rc;
	int			 i;

	for (i = 1; i <= 10; i++) {
		snprintf(buf, sizeof buf, "%d", i);
		hub_publish(h, "progress", buf);
	}
	rc = hub_next(h, 2, 0, &ev);
	ok(rc == SPD_OK && ev.seq == 7 && strcmp(ev.data, "7") == 0,
	    "overflowed: the oldest kept (7) is returned (got %llu)",
	    rc == SPD_OK ? (unsigned long long)ev.seq : 0ULL);
	if (rc == SPD_OK)
		free(ev.data);
	rc = hub_next(h, 8, 0, &ev);
	ok(rc == SPD_OK && ev.seq == 9 && strcmp(ev.data, "9") == 0,
	    "within the ring: exact successor");
	if (rc == SPD_OK)
		free(ev.data);
	hub_free(h);
}

/* A blocked waiter is woken by a publish from another thread. */
static void
test_wakeup(void)
{
	struct hub	*h = hub_new(4);
	struct waiter	 w = { .h = h, .after = 0, .timeout_ms = 5000 };
	pthread_t	 t;

	pthread_create(&t, NULL, wait_one, &w);
	sleep_ms(30);
	hub_publish(h, "selection", "{\"version\":2}");
	pthread_join(t, NULL);
	ok(w.rc == SPD_OK && w.ev.seq == 1 &&
	    strcmp(w.ev.type, "selection") == 0, "waiter got the published event");
	ok(w.waited < 2.0, "woken promptly (%.3f s)", w.waited);
	if (w.rc == SPD_OK)
		free(w.ev.data);

	/* A waiter with no limit is woken too. */
	w = (struct waiter){ .h = h, .after = 1, .timeout_ms = -1 };
	pthread_create(&t, NULL, wait_one, &w);
	sleep_ms(20);
	hub_publish(h, "progress", "{}");
	pthread_join(t, NULL);
	ok(w.rc == SPD_OK && w.ev.seq == 2, "unbounded waiter woken");
	if (w.rc == SPD_OK)
		free(w.ev.data);
	hub_free(h);
}

/* hub_close wakes every waiter with SPD_ECANCELED, and stays closed. */
static void
test_close(void)
{
	struct hub		*h = hub_new(4);
	struct waiter		 w[2];
	struct hub_event	 ev;
	pthread_t		 t[2];
	int			 i;

	for (i = 0; i < 2; i++) {
		w[i] = (struct waiter){ .h = h, .after = 0,
		    .timeout_ms = i == 0 ? 10000 : -1 };
		pthread_create(&t[i], NULL, wait_one, &w[i]);
	}
	sleep_ms(30);
	hub_close(h);
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		ok(w[i].rc == SPD_ECANCELED && w[i].waited < 2.0,
		    "waiter %d: SPD_ECANCELED after close (%s, %.3f s)", i,
		    spd_strerror(w[i].rc), w[i].waited);
	}
	hub_publish(h, "progress", "{}");
	ok(hub_next(h, 0, 1000, &ev) == SPD_ECANCELED,
	    "closed hub: hub_next returns SPD_ECANCELED at once");
	hub_free(h);
}

/* Counters and the cumulative histogram. */
static void
test_stats(void)
{
	struct hub		*h = hub_new(2);
	struct hub_stats	 st;
	size_t			 i;
	int			 sorted = 1;

	for (i = 1; i < HUB_NBUCKETS; i++)
		sorted &= hub_bucket_le[i] > hub_bucket_le[i - 1];
	ok(sorted, "bucket bounds increase");

	hub_get_stats(h, &st);
	ok(st.matrices == 0 && st.analyses == 0 && st.seconds_sum == 0,
	    "fresh counters are zero");
	hub_count_analysis(h, 7, 0.05);		/* every bucket */
	hub_count_analysis(h, 3, 1.5);		/* le 2 and up */
	hub_count_analysis(h, 10, 1000);	/* le 1200 and up */
	hub_count_analysis(h, 2, 7200);		/* above every bucket */
	hub_count_analysis(h, 1, -1);		/* clamped to 0 */
	hub_get_stats(h, &st);
	ok(st.matrices == 23 && st.analyses == 5, "matrices 23, analyses 5");
	ok_near(st.seconds_sum, 8201.55, 1e-12, "seconds_sum");
	ok(st.buckets[0] == 2, "le 0.1: 2 (got %llu)",
	    (unsigned long long)st.buckets[0]);
	ok(st.buckets[2] == 2 && hub_bucket_le[3] == 2 && st.buckets[3] == 3,
	    "le 1: 2, le 2: 3");
	ok(hub_bucket_le[9] == 300 && st.buckets[9] == 3 &&
	    hub_bucket_le[10] == 600 && st.buckets[10] == 3 &&
	    hub_bucket_le[11] == 1200 && st.buckets[11] == 4,
	    "le 300: 3, le 600: 3, le 1200: 4 (1000 s)");
	ok(hub_bucket_le[HUB_NBUCKETS - 1] == 3600 &&
	    st.buckets[HUB_NBUCKETS - 1] == 4,
	    "le 3600: 4 (7200 s is only +Inf)");
	hub_free(h);
}

/* What the wake hook saw. */
struct woken {
	unsigned	calls;
	uint64_t	seq;
	bool		closed;
	uint64_t	hub_seq;	/* hub_seq() from inside the hook */
	struct hub	*h;
};

/* The wake hook: records its arguments and calls back into the hub. */
static void
on_wake(void *arg, uint64_t seq, bool closed)
{
	struct woken *w = arg;

	w->calls++;
	w->seq = seq;
	w->closed = closed;
	w->hub_seq = hub_seq(w->h);	/* the hub's lock is not held */
}

/* The wake hook and the HTTP counters. */
static void
test_wake_and_http(void)
{
	struct hub		*h = hub_new(4);
	struct woken		 w = { 0, 0, false, 0, h };
	struct hub_stats	 st;

	hub_set_wake(h, on_wake, &w);
	hub_publish(h, "progress", "{}");
	hub_publish(h, "selection", "{}");
	ok(w.calls == 2 && w.seq == 2 && !w.closed && w.hub_seq == 2,
	    "wake hook called on each publish with the new seq (%u, %llu)",
	    w.calls, (unsigned long long)w.seq);
	hub_set_wake(h, NULL, NULL);
	hub_publish(h, "progress", "{}");
	ok(w.calls == 2, "a cleared hook is not called");
	hub_set_wake(h, on_wake, &w);
	hub_close(h);
	ok(w.calls == 3 && w.closed && w.seq == 3, "hub_close calls it, closed");

	hub_count_request(h, 200);
	hub_count_request(h, 304);
	hub_count_request(h, 404);
	hub_count_request(h, 404);
	hub_count_request(h, 99);		/* ignored */
	hub_count_request(h, 600);		/* ignored */
	hub_count_reject(h, HUB_REJECT_LIMIT, 5);
	hub_count_reject(h, HUB_REJECT_SLOW, 1);
	hub_count_reject(h, HUB_NREJECT, 7);	/* ignored */
	hub_count_open(h, 1);
	hub_count_open(h, 1);
	hub_count_open(h, -1);
	hub_get_stats(h, &st);
	ok(st.http_requests[1] == 1 && st.http_requests[2] == 1 &&
	    st.http_requests[3] == 2 && st.http_requests[0] == 0 &&
	    st.http_requests[4] == 0, "requests by class: 2xx 1, 3xx 1, 4xx 2");
	ok(st.http_rejected[HUB_REJECT_LIMIT] == 5 &&
	    st.http_rejected[HUB_REJECT_SLOW] == 1 &&
	    st.http_rejected[HUB_REJECT_IDLE] == 0, "rejections by reason");
	hub_count_open(h, -5);
	hub_get_stats(h, &st);
	ok(st.http_open == 0, "the open gauge stops at zero");
	ok(strcmp(hub_reject_name[HUB_REJECT_LIMIT], "limit") == 0 &&
	    hub_reject_name[HUB_NREJECT - 1] != NULL, "reason labels");
	hub_free(h);
}

int
main(void)
{
	test_order();
	test_overflow();
	test_wakeup();
	test_close();
	test_stats();
	test_wake_and_http();
	hub_free(NULL);
	return tap_done();
}
