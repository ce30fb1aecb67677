/*
 * snr.h: the Spectrum signal-to-noise ratio of a singular-value spectrum
 * (DESIGN.md §1). Pure: no I/O, no allocation, reentrant.
 */
#ifndef SPECTRUMD_SNR_H
#define SPECTRUMD_SNR_H

#include <stddef.h>

#include "spectrumd/common.h"

struct snr_result {
	double	snr;		/* may be +inf (edge rules) */
	double	s1;		/* largest singular value */
	double	sigma_hat;	/* IQR / 1.349 */
	double	tau;		/* sigma_hat · (1 + √β) */
	double	signal;		/* Σ s > τ */
	double	noise;		/* Σ s ≤ τ (1 when no value ≤ τ) */
	double	fro2;		/* Σ s² */
	double	stable_rank;	/* Σ s² / s1² (0 when s1 == 0) */
	size_t	mp_rank;	/* count of s > τ */
};

/*
 * Computes the SNR of the k singular values sv of a rows × cols matrix,
 * k == min(rows, cols) ≥ 1. sv must be sorted in descending order and
 * finite and ≥ 0. Returns SPD_OK and *out, or SPD_EINVAL (k == 0, k not
 * min(rows, cols), unsorted, negative or non-finite values).
 */
enum spd_err	snr_compute(const float *sv, size_t k, size_t rows,
		    size_t cols, struct snr_result *out);

#endif
