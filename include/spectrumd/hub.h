/*
 * hub.h: what the analysis worker tells the HTTP side while the daemon runs:
 * a numbered ring of recent events (for /events and long polls) and the
 * counters behind /metrics. Thread-safe: any thread may publish or wait.
 */
#ifndef SPECTRUMD_HUB_H
#define SPECTRUMD_HUB_H

#include <stdint.h>

#include "spectrumd/common.h"

#define HUB_NBUCKETS 10		/* analysis-seconds histogram buckets */

struct hub_event {
	uint64_t	 seq;		/* 1, 2, … */
	char		 type[16];	/* "checkpoint", "progress", "selection" */
	char		*data;		/* JSON text, malloc'ed copy */
};

struct hub_stats {
	uint64_t	 matrices;		/* analysed, all runs */
	uint64_t	 analyses;		/* checkpoints analysed */
	uint64_t	 reused;		/* matrices reused, all runs */
	uint64_t	 hashed;		/* bytes fingerprinted */
	double		 hash_seconds;		/* spent fingerprinting */
	double		 seconds_sum;
	uint64_t	 buckets[HUB_NBUCKETS];	/* cumulative counts ≤ hub_bucket_le[i] */
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

/* Counts one analysed checkpoint. */
void		 hub_count_analysis(struct hub *h, uint64_t matrices,
		    double seconds);
/* Counts the matrices one analysis reused and the bytes it hashed. */
void		 hub_count_reuse(struct hub *h, uint64_t reused,
		    uint64_t hashed, double hash_seconds);
/* Copies the counters. */
void		 hub_get_stats(struct hub *h, struct hub_stats *out);

#endif
