/*
 * heavytail.h: heavy-tailed self-regularisation metrics of a singular-value
 * spectrum (WeightWatcher's alpha, alpha_weighted, KS distance and log
 * spectral norm; docs/heavytail.md). Pure math: no I/O; allocates scratch
 * memory only inside the call; reentrant.
 */
#ifndef SPECTRUMD_HEAVYTAIL_H
#define SPECTRUMD_HEAVYTAIL_H

#include <stddef.h>

#include "spectrumd/common.h"

/*
 * Eigenvalues λ = s² at or below this are left out of the fit (and so are
 * zeros): WeightWatcher's EVALS_THRESH.
 */
#define HEAVYTAIL_EVALS_THRESH	1e-5

/* The fit needs at least this many eigenvalues above the threshold. */
#define HEAVYTAIL_MIN_EVALS	10

/* Why a spectrum has no fit. The metrics are NaN unless HEAVYTAIL_OK. */
enum heavytail_status {
	HEAVYTAIL_OK = 0,
	HEAVYTAIL_NONFINITE,	/* a NaN or Inf among the values */
	HEAVYTAIL_TOO_FEW,	/* < HEAVYTAIL_MIN_EVALS eigenvalues above thresh */
	HEAVYTAIL_FLAT		/* those eigenvalues are all equal: no tail */
};

struct heavytail_result {
	enum heavytail_status status;
	double	alpha;		/* power-law exponent of the ESD tail */
	double	alpha_weighted;	/* alpha · log10(λ_max) */
	double	ks;		/* Kolmogorov–Smirnov distance D of the fit */
	double	log_spectral_norm; /* log10(λ_max) = log10(s₁²) */
	double	xmin;		/* the tail's lower bound, an eigenvalue */
	double	sigma;		/* standard error of alpha: (alpha−1)/√n_tail */
	size_t	n_tail;		/* eigenvalues ≥ xmin */
	size_t	n_evals;	/* eigenvalues > HEAVYTAIL_EVALS_THRESH */
};

/*
 * Fits a power law to the eigenvalues λ = s² of the k singular values sv
 * (descending, ≥ 0), every sum in double: alpha by the continuous
 * maximum-likelihood estimator of Clauset, Shalizi and Newman (2009) with
 * xmin the distinct eigenvalue whose fit has the smallest KS distance.
 * Returns SPD_OK and *out, its status saying whether there is a fit
 * (log_spectral_norm is set whenever the values are finite: −inf for an
 * all-zero spectrum); SPD_EINVAL (sv or out NULL, k == 0, a negative
 * value, values not descending); SPD_ENOMEM (scratch of ~24·k bytes).
 */
enum spd_err	 heavytail_compute(const float *sv, size_t k,
		    struct heavytail_result *out);

/* Returns a one-word constant name for st ("ok", "too_few", …). */
const char	*heavytail_status_name(enum heavytail_status st);

#endif
