/*
 * analyze.h: one checkpoint in, one report out. Opens the weights, picks the
 * matrices, converts and solves them on the analyzer's workers, computes
 * SNRs. Memory stays bounded by the matrices in flight.
 */
#ifndef SPECTRUMD_ANALYZE_H
#define SPECTRUMD_ANALYZE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spectrumd/common.h"
#include "spectrumd/report.h"

struct analyze_opts {
	const char	*backend;	/* auto|cpu|cuda */
	const char	*devices;	/* cuda ordinals "0,1"; NULL/"" = all */
	unsigned	 threads;	/* cores to use; 0 = all */
	bool		 keep_spectra;	/* default true */
	bool		 include_1d;	/* 1-D weights as 1×d, SNR 1 */
	bool		 split_3d;	/* [E,r,c] as E matrices "<name>.<e>" */
	bool		 group_experts;
	/* Bytes of weights (as stored) the workers hold at once; a matrix
	   larger than this still runs, alone. 0 = 1 GiB. */
	uint64_t	 max_inflight_bytes;
	/* Called from worker threads, serialised, after each matrix. */
	void		(*progress)(void *arg, size_t done, size_t total,
			    uint64_t bytes_done, uint64_t bytes_total);
	void		*progress_arg;
	/* Polled between matrices; nonzero stops with SPD_ECANCELED. */
	atomic_int	*cancel;
};

/*
 * Looks a matrix up by content before its SVD. r has its names, dtype,
 * shape and fingerprint (r->fp) set; method is svd_method() of the
 * backend that would solve it. On a hit the callback fills r->m, the
 * spectrum (malloc'ed, r->k values) when want_spectrum, and r->from_*,
 * and returns true; the matrix is then not solved. Called from worker
 * threads, serialised with the progress callback.
 */
typedef bool	(*analyze_reuse_fn)(void *arg, const char *method,
		    bool want_spectrum, struct mat_result *r);

/* Fills o with the defaults above. */
void		 analyze_opts_init(struct analyze_opts *o);

struct analyzer;

/*
 * Opens the compute backend(s) once for many checkpoints. Returns SPD_OK
 * and *out, or svd_open()'s errors. eb may hold a notice (fallback to cpu)
 * even on success. Owned by one thread.
 */
enum spd_err	 analyzer_new(const struct analyze_opts *o,
		    struct analyzer **out, struct spd_errbuf *eb);
void		 analyzer_free(struct analyzer *a);	/* NULL-safe */
const char	*analyzer_backend(const struct analyzer *a);

/*
 * Replaces the progress callback and the cancel flag given in the options
 * (for an owner that exists only after the analyzer, like the worker).
 */
void		 analyzer_set_hooks(struct analyzer *a,
		    void (*progress)(void *, size_t, size_t, uint64_t,
		    uint64_t), void *arg, atomic_int *cancel);

/*
 * Turns reuse on (fn not NULL: every matrix is fingerprinted and looked
 * up with fn before its SVD) or off (fn NULL: nothing is hashed).
 */
void		 analyzer_set_reuse(struct analyzer *a, analyze_reuse_fn fn,
		    void *arg);

/*
 * Matrices reused so far by the analysis in progress; meant for the
 * progress callback (which runs under the same lock).
 */
size_t		 analyzer_reused(const struct analyzer *a);

/*
 * Analyses the checkpoint at path (see model_open for layouts). Per-matrix
 * failures are recorded in the report, not returned. Returns SPD_OK and
 * *out (report_free), model_open()'s errors, SPD_ECANCELED or SPD_ENOMEM.
 */
enum spd_err	 analyzer_run(struct analyzer *a, const char *path,
		    struct report **out, struct spd_errbuf *eb);

#endif
