/*
 * hub.h: what the analysis worker tells the HTTP side while the daemon runs:
 * a numbered ring of recent events (for /events and long polls), a wake
 * hook for the event-driven server, and the counters behind /metrics.
 * Thread-safe: any thread may publish or wait.
 */
#ifndef SPECTRUMD_HUB_H
#define SPECTRUMD_HUB_H

#include <stdbool.h>
#include <stdint.h>

#include "spectrumd/common.h"

#define HUB_NBUCKETS 14		/* analysis-seconds buckets, 0.1 s to 1 h */

struct hub_event {
	uint64_t	 seq;		/* 1, 2, … */
	char		 type[16];	/* "checkpoint", "progress", "selection" */
	char		*data;		/* JSON text, malloc'ed copy */
};

/* Why the HTTP side turned a connection away (labels of /metrics). */
enum hub_reject {
	HUB_REJECT_LIMIT,	/* over the global or the per-address limit */
	HUB_REJECT_ACCEPT,	/* accept() failed (e.g. out of descriptors) */
	HUB_REJECT_SLOW,	/* request begun, not complete in the timeout */
	HUB_REJECT_IDLE,	/* no request within the timeout */
	HUB_REJECT_BAD,		/* malformed request the server refused */
	HUB_NREJECT
};
extern const char *const hub_reject_name[HUB_NREJECT];

struct hub_stats {
	uint64_t	 matrices;		/* analysed, all runs */
	uint64_t	 nonfinite;		/* of them NaN/Inf weights or SNR */
	uint64_t	 analyses;		/* checkpoints analysed */
	uint64_t	 reused;		/* matrices reused, all runs */
	uint64_t	 hashed;		/* bytes fingerprinted */
	double		 hash_seconds;		/* spent fingerprinting */
	double		 seconds_sum;
	uint64_t	 buckets[HUB_NBUCKETS];	/* cumulative counts ≤ hub_bucket_le[i] */
	uint64_t	 http_requests[5];	/* answered, by status class 1xx..5xx */
	uint64_t	 http_rejected[HUB_NREJECT];
	uint64_t	 http_open;		/* connections open now */
};
extern const double hub_bucket_le[HUB_NBUCKETS];

struct hub;

/* Allocates a hub keeping the last ring events. NULL on allocation failure. */
struct hub	*hub_new(unsigned ring);
void		 hub_free(struct hub *h);	/* NULL-safe; no waiter may remain */

/*
 * Appends an event (type and data are copied) and wakes every waiter.
 * Returns its sequence number, or 0 when the copy failed (event dropped).
 */
uint64_t	 hub_publish(struct hub *h, const char *type, const char *data);

/* The sequence number of the newest event (0 when none). */
uint64_t	 hub_seq(struct hub *h);

/*
 * Waits up to timeout_ms for the first event after seq `after` and copies it
 * into *out (free out->data). If that event already left the ring, the
 * oldest kept one is returned. Returns SPD_OK, SPD_EBUSY (timed out) or
 * SPD_ECANCELED (hub_close was called), or SPD_ENOMEM.
 */
enum spd_err	 hub_next(struct hub *h, uint64_t after, int timeout_ms,
		    struct hub_event *out);

/* Wakes all waiters for good: hub_next returns SPD_ECANCELED from now on. */
void		 hub_close(struct hub *h);

/*
 * Sets fn(arg, seq, closed) to be called after each hub_publish and
 * hub_close, from the calling thread, without the hub's lock held (fn may
 * call hub functions): seq is the newest sequence number, closed whether
 * hub_close was called. NULL clears it. Set and clear it while no thread
 * publishes (a publish racing a clear may still call the old fn).
 */
void		 hub_set_wake(struct hub *h,
		    void (*fn)(void *arg, uint64_t seq, bool closed),
		    void *arg);

/* Counts one analysed checkpoint. */
void		 hub_count_analysis(struct hub *h, uint64_t matrices,
		    double seconds);
/* Counts one HTTP answer with status (100..599; others are ignored). */
void		 hub_count_request(struct hub *h, int status);
/* Counts n connections turned away for reason. */
void		 hub_count_reject(struct hub *h, enum hub_reject reason,
		    uint64_t n);
/* Adds delta (+1 opened, -1 closed) to the open-connection gauge. */
void		 hub_count_open(struct hub *h, int delta);
/* Counts the matrices one analysis reused and the bytes it hashed. */
void		 hub_count_reuse(struct hub *h, uint64_t reused,
		    uint64_t hashed, double hash_seconds);
/* Copies the counters. */
void		 hub_get_stats(struct hub *h, struct hub_stats *out);

/* Counts n analysed matrices with NaN/Inf weights or a NaN SNR. */
void		 hub_count_nonfinite(struct hub *h, uint64_t n);

#endif
