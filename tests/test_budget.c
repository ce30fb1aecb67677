/*
 * test_budget.c: the byte budget behind max_inflight_bytes: concurrent
 * takers never hold more than the bound, an oversized item runs alone.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "spectrumd/budget.h"
#include "tap.h"

#define NTHREADS	8
#define ROUNDS		200

static struct budget	b;
static atomic_uint_fast64_t held;	/* what the takers hold, seen by them */
static atomic_uint_fast64_t worst;	/* the most held at once */

/* Sleeps about us microseconds. */
static void
nap(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* Takes, holds and gives sizes from a table, recording the most held. */
static void *
taker(void *arg)
{
	static const uint64_t sizes[] = { 100, 250, 400, 150, 300, 50 };
	uintptr_t	 id = (uintptr_t)arg;
	uint64_t	 n, now, w;
	int		 r;

	for (r = 0; r < ROUNDS; r++) {
		n = sizes[(id + (uintptr_t)r) % (sizeof sizes / sizeof *sizes)];
		budget_take(&b, n);
		now = atomic_fetch_add(&held, n) + n;
		w = atomic_load(&worst);
		while (now > w && !atomic_compare_exchange_weak(&worst, &w, now))
			;
		nap(50);
		atomic_fetch_sub(&held, n);
		budget_give(&b, n);
	}
	return NULL;
}

/* Runs NTHREADS takers against a budget of max; returns the most held. */
static uint64_t
contend(uint64_t max)
{
	pthread_t	t[NTHREADS];
	uintptr_t	i;

	budget_init(&b, max);
	atomic_store(&held, 0);
	atomic_store(&worst, 0);
	for (i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, taker, (void *)i);
	for (i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	budget_destroy(&b);
	return atomic_load(&worst);
}

static atomic_bool	got;

/* Takes arg bytes, says so, and keeps them. */
static void *
take_big(void *arg)
{
	budget_take(&b, (uint64_t)(uintptr_t)arg);
	atomic_store(&got, true);
	return NULL;
}

/* An item larger than the bound waits for an empty budget, then runs. */
static void
test_oversized(void)
{
	pthread_t t;

	budget_init(&b, 1000);
	budget_take(&b, 300);
	atomic_store(&got, false);
	pthread_create(&t, NULL, take_big, (void *)(uintptr_t)5000);
	nap(50000);
	ok(!atomic_load(&got), "5000 bytes wait while 300 are in flight");
	budget_give(&b, 300);
	pthread_join(t, NULL);
	ok(atomic_load(&got) && budget_peak(&b) == 5000,
	    "then run alone, over the bound of 1000");
	atomic_store(&got, false);
	pthread_create(&t, NULL, take_big, (void *)(uintptr_t)1);
	nap(50000);
	ok(!atomic_load(&got), "1 byte waits while the oversized item runs");
	budget_give(&b, 5000);
	pthread_join(t, NULL);
	ok(atomic_load(&got), "and runs once it is given back");
	budget_give(&b, 1);
	budget_destroy(&b);
}

/* Runs the cases. */
int
main(void)
{
	uint64_t w;

	w = contend(1000);
	ok(w <= 1000, "%d threads under a 1000-byte bound hold at most %ju",
	    NTHREADS, (uintmax_t)w);
	w = contend(0);
	ok(w > 1000, "without a bound they hold more (%ju): the test sees it",
	    (uintmax_t)w);
	test_oversized();
	return tap_done();
}
