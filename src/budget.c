/* budget.c: a byte budget shared by threads (see budget.h). */
#include "config.h"

#include <pthread.h>
#include <stdint.h>

#include "spectrumd/budget.h"

/* Initialises b for at most max bytes at a time. */
void
budget_init(struct budget *b, uint64_t max)
{
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->room, NULL);
	b->max = max;
	b->used = 0;
	b->peak = 0;
}

/* Releases the lock and condition of b. */
void
budget_destroy(struct budget *b)
{
	pthread_cond_destroy(&b->room);
	pthread_mutex_destroy(&b->lock);
}

/* True when bytes may be taken now. */
static int
fits(const struct budget *b, uint64_t bytes)
{
	return b->max == 0 || b->used == 0 || (bytes <= b->max &&
	    b->used <= b->max - bytes);
}

/* Waits until bytes fit, then takes them. */
void
budget_take(struct budget *b, uint64_t bytes)
{
	pthread_mutex_lock(&b->lock);
	while (!fits(b, bytes))
		pthread_cond_wait(&b->room, &b->lock);
	b->used += bytes;
	if (b->used > b->peak)
		b->peak = b->used;
	pthread_mutex_unlock(&b->lock);
}

/* Gives bytes back and wakes every waiter. */
void
budget_give(struct budget *b, uint64_t bytes)
{
	pthread_mutex_lock(&b->lock);
	b->used -= bytes < b->used ? bytes : b->used;
	pthread_cond_broadcast(&b->room);
	pthread_mutex_unlock(&b->lock);
}

/* Returns the largest number of bytes taken at once. */
uint64_t
budget_peak(struct budget *b)
{
	uint64_t p;

	pthread_mutex_lock(&b->lock);
	p = b->peak;
	pthread_mutex_unlock(&b->lock);
	return p;
}
