/*
 * fakecuda.h: a fake CUDA device for tests, linked instead of the CUDA
 * runtime, cuBLAS, cuSOLVER and the nvcc kernel (tests/fakecuda/fakecuda.c
 * says what it models). Test-only; not thread-safe.
 */
#ifndef SPECTRUMD_FAKECUDA_H
#define SPECTRUMD_FAKECUDA_H

/* What the fake device has done since the last fakecuda_seed(). */
struct fakecuda_stats {
	unsigned long	ops;		/* stream operations executed */
	unsigned long	reordered;	/* ... while an earlier-issued op of
					   another stream was still queued */
	unsigned long	misuse;		/* misuses reported ("# fakecuda:") */
	unsigned long	queued;		/* operations queued now */
};

/*
 * Seeds the scheduler: the random choice among ready streams and how
 * eagerly queued work runs while the host goes on (seed % 4: never, at
 * each call a little, more, almost always). Clears the statistics.
 */
void	fakecuda_seed(unsigned seed);

/* Copies the statistics into *st. */
void	fakecuda_stats(struct fakecuda_stats *st);

/*
 * Makes the n-th call from now that queues stream work (a copy, memset,
 * event record or wait, kernel, syrk, syevd) fail without queuing it, as
 * a launch failure; 0: none. A fault not reached stays armed.
 */
void	fakecuda_fail(unsigned long n);

#endif
