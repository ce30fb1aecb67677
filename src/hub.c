/*
 * hub.c: the event ring and counters shared by the analysis worker and the
 * HTTP threads. One mutex guards everything; one condition variable, timed
 * on CLOCK_MONOTONIC so wall-clock jumps do not stretch a wait, wakes
 * every waiter on publish and on close; the wake hook (the HTTP server's
 * resumer) is called after each, outside the lock.
 *
 * The event with sequence number s lives in ring[(s - 1) % cap]; the ring
 * keeps seq - cap + 1 … seq. A negative timeout in hub_next waits without
 * a limit (until an event or hub_close), zero only looks.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spectrumd/hub.h"

const double hub_bucket_le[HUB_NBUCKETS] = {
	0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600
};

const char *const hub_reject_name[HUB_NREJECT] = {
	"limit", "accept_error", "slow_request", "idle", "bad_request"
};

struct hub {
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct hub_event	*ring;
	unsigned		 cap;
	uint64_t		 seq;		/* newest published */
	bool			 closed;
	struct hub_stats	 st;
	void			(*wake)(void *, uint64_t, bool);
	void			*wake_arg;
};

/* Allocates a hub keeping the last ring events (at least one). */
struct hub *
hub_new(unsigned ring)
{
	struct hub		*h;

	if (ring == 0)
		ring = 1;
	if ((h = calloc(1, sizeof *h)) == NULL)
		return NULL;
	if ((h->ring = calloc(ring, sizeof *h->ring)) == NULL) {
		free(h);
		return NULL;
	}
	h->cap = ring;
	if (pthread_mutex_init(&h->mu, NULL) != 0)
		goto fail;
	if (spd_cond_init_monotonic(&h->cv) != 0) {
		pthread_mutex_destroy(&h->mu);
		goto fail;
	}
	return h;
fail:
	free(h->ring);
	free(h);
	return NULL;
}

/* Frees the hub and the events it still holds. */
void
hub_free(struct hub *h)
{
	unsigned i;

	if (h == NULL)
		return;
	for (i = 0; i < h->cap; i++)
		free(h->ring[i].data);
	free(h->ring);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

/* Copies type into a fixed field, truncated. */
static void
copy_type(char *dst, size_t len, const char *type)
{
	size_t n = strnlen(type, len - 1);

	memcpy(dst, type, n);
	dst[n] = '\0';
}

/* Calls the wake hook read under the lock, after dropping it. */
static void
unlock_and_wake(struct hub *h)
{
	void		(*fn)(void *, uint64_t, bool) = h->wake;
	void		*arg = h->wake_arg;
	uint64_t	 seq = h->seq;
	bool		 closed = h->closed;

	pthread_mutex_unlock(&h->mu);
	if (fn != NULL)
		fn(arg, seq, closed);
}

/* Sets the wake hook (see hub.h). */
void
hub_set_wake(struct hub *h, void (*fn)(void *, uint64_t, bool), void *arg)
{
	pthread_mutex_lock(&h->mu);
	h->wake = fn;
	h->wake_arg = arg;
	pthread_mutex_unlock(&h->mu);
}

/* Appends an event and wakes every waiter; 0 when the copy failed. */
uint64_t
hub_publish(struct hub *h, const char *type, const char *data)
{
	struct hub_event	*ev;
	char			*copy;
	uint64_t		 seq;

	if ((copy = strdup(data != NULL ? data : "{}")) == NULL)
		return 0;
	pthread_mutex_lock(&h->mu);
	seq = ++h->seq;
	ev = &h->ring[(seq - 1) % h->cap];
	free(ev->data);
	ev->seq = seq;
	copy_type(ev->type, sizeof ev->type, type != NULL ? type : "");
	ev->data = copy;
	pthread_cond_broadcast(&h->cv);
	unlock_and_wake(h);
	return seq;
}

/* Returns the newest sequence number. */
uint64_t
hub_seq(struct hub *h)
{
	uint64_t seq;

	pthread_mutex_lock(&h->mu);
	seq = h->seq;
	pthread_mutex_unlock(&h->mu);
	return seq;
}

/* Sets *ts to timeout_ms from now on the monotonic clock. */
static void
deadline(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Copies the first kept event after `after` into *out (lock held). */
static enum spd_err
take(struct hub *h, uint64_t after, struct hub_event *out)
{
	const struct hub_event	*ev;
	uint64_t		 want = after + 1;
	uint64_t		 oldest;
	char			*copy;

	oldest = h->seq > h->cap ? h->seq - h->cap + 1 : 1;
	if (want < oldest)
		want = oldest;
	ev = &h->ring[(want - 1) % h->cap];
	if ((copy = strdup(ev->data)) == NULL)
		return SPD_ENOMEM;
	out->seq = ev->seq;
	memcpy(out->type, ev->type, sizeof out->type);
	out->data = copy;
	return SPD_OK;
}

/* Waits for the first event after `after`, or a timeout, or hub_close. */
enum spd_err
hub_next(struct hub *h, uint64_t after, int timeout_ms,
    struct hub_event *out)
{
	struct timespec	ts;
	enum spd_err	rc;
	int		e = 0;

	if (timeout_ms > 0)
		deadline(&ts, timeout_ms);
	pthread_mutex_lock(&h->mu);
	while (!h->closed && h->seq <= after && e != ETIMEDOUT) {
		if (timeout_ms == 0)
			e = ETIMEDOUT;
		else if (timeout_ms < 0)
			pthread_cond_wait(&h->cv, &h->mu);
		else
			e = pthread_cond_timedwait(&h->cv, &h->mu, &ts);
	}
	if (h->closed)
		rc = SPD_ECANCELED;
	else if (h->seq <= after)
		rc = SPD_EBUSY;
	else
		rc = take(h, after, out);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

/* Marks the hub closed and wakes every waiter. */
void
hub_close(struct hub *h)
{
	pthread_mutex_lock(&h->mu);
	h->closed = true;
	pthread_cond_broadcast(&h->cv);
	unlock_and_wake(h);
}

/* Counts one analysed checkpoint into the counters and the histogram. */
void
hub_count_analysis(struct hub *h, uint64_t matrices, double seconds)
{
	size_t i;

	if (!isfinite(seconds) || seconds < 0)
		seconds = 0;
	pthread_mutex_lock(&h->mu);
	h->st.matrices += matrices;
	h->st.analyses++;
	h->st.seconds_sum += seconds;
	for (i = 0; i < HUB_NBUCKETS; i++)
		if (seconds <= hub_bucket_le[i])
			h->st.buckets[i]++;
	pthread_mutex_unlock(&h->mu);
}

/* Counts n matrices with NaN/Inf weights or a NaN SNR. */
void
hub_count_nonfinite(struct hub *h, uint64_t n)
{
	pthread_mutex_lock(&h->mu);
	h->st.nonfinite += n;
	pthread_mutex_unlock(&h->mu);
}

/* Counts one HTTP answer by its status class. */
void
hub_count_request(struct hub *h, int status)
{
	if (status < 100 || status > 599)
		return;
	pthread_mutex_lock(&h->mu);
	h->st.http_requests[status / 100 - 1]++;
	pthread_mutex_unlock(&h->mu);
}

/* Counts n turned-away connections. */
void
hub_count_reject(struct hub *h, enum hub_reject reason, uint64_t n)
{
	if ((unsigned)reason >= HUB_NREJECT)
		return;
	pthread_mutex_lock(&h->mu);
	h->st.http_rejected[reason] += n;
	pthread_mutex_unlock(&h->mu);
}

/* Moves the open-connection gauge (never below zero). */
void
hub_count_open(struct hub *h, int delta)
{
	pthread_mutex_lock(&h->mu);
	if (delta >= 0)
		h->st.http_open += (uint64_t)delta;
	else if (h->st.http_open >= (uint64_t)-delta)
		h->st.http_open -= (uint64_t)-delta;
	else
		h->st.http_open = 0;
	pthread_mutex_unlock(&h->mu);
}

/* Adds to the reuse counters. */
void
hub_count_reuse(struct hub *h, uint64_t reused, uint64_t hashed,
    double hash_seconds)
{
	pthread_mutex_lock(&h->mu);
	h->st.reused += reused;
	h->st.hashed += hashed;
	if (isfinite(hash_seconds) && hash_seconds > 0)
		h->st.hash_seconds += hash_seconds;
	pthread_mutex_unlock(&h->mu);
}

/* Copies the counters. */
void
hub_get_stats(struct hub *h, struct hub_stats *out)
{
	pthread_mutex_lock(&h->mu);
	*out = h->st;
	pthread_mutex_unlock(&h->mu);
}
