/*
 * budget.h: a byte budget shared by threads: the bytes of weights in
 * flight across analysis workers (max_inflight_bytes). A taker waits until
 * its bytes fit; an item larger than the whole budget still proceeds, alone.
 */
#ifndef SPECTRUMD_BUDGET_H
#define SPECTRUMD_BUDGET_H

#include <pthread.h>
#include <stdint.h>

struct budget {
	pthread_mutex_t	lock;
	pthread_cond_t	room;
	uint64_t	max;		/* 0: unbounded */
	uint64_t	used;		/* bytes taken, not yet given back */
	uint64_t	peak;		/* largest used so far */
};

/* Initialises b for at most max bytes at a time (0: no bound). */
void		budget_init(struct budget *b, uint64_t max);
void		budget_destroy(struct budget *b);

/*
 * Waits until bytes fit (used + bytes <= max, or nothing is taken: one
 * item larger than max proceeds alone), then counts them as taken. Must not
 * be called by a thread that holds bytes it has not given back.
 */
void		budget_take(struct budget *b, uint64_t bytes);

/* Gives back bytes taken by budget_take and wakes the waiters. */
void		budget_give(struct budget *b, uint64_t bytes);

/* Largest number of bytes taken at once so far. */
uint64_t	budget_peak(struct budget *b);

#endif
