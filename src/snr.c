/*
 * snr.c: the Spectrum SNR of one singular-value spectrum (DESIGN.md §1).
 * Pure: no I/O, no allocation. Every sum and quantile is accumulated in
 * double, whatever the float32 input.
 */
#include "config.h"

#include <math.h>

#include "spectrumd/snr.h"

/* The IQR of a normal distribution in units of its standard deviation. */
#define IQR_PER_SIGMA	1.349

/*
 * Returns the q-quantile of the k values sv (descending), linear
 * interpolation at position q·(k−1) of the ascending order, as numpy and
 * torch do by default.
 */
static double
quantile_desc(const float *sv, size_t k, double q)
{
	double	pos, frac, lo, hi;
	size_t	i;

	pos = q * (double)(k - 1);
	i = (size_t)pos;		/* floor: pos ≥ 0 */
	if (i >= k - 1)
		return sv[0];		/* the ascending maximum */
	frac = pos - (double)i;
	lo = sv[k - 1 - i];		/* ascending index i */
	hi = sv[k - 2 - i];		/* ascending index i + 1 */
	return lo + frac * (hi - lo);
}

/* Checks that sv holds k finite, non-negative values in descending order. */
static int
spectrum_valid(const float *sv, size_t k)
{
	size_t i;

	for (i = 0; i < k; i++) {
		if (!isfinite(sv[i]) || sv[i] < 0)
			return 0;
		if (i > 0 && sv[i] > sv[i - 1])
			return 0;
	}
	return 1;
}

/* Computes the SNR and its by-products of one descending spectrum. */
enum spd_err
snr_compute(const float *sv, size_t k, size_t rows, size_t cols,
    struct snr_result *out)
{
	struct snr_result	r = { 0 };
	double			q25, q75, beta, s, noise;
	size_t			i, nnoise = 0;

	if (sv == NULL || out == NULL || k == 0)
		return SPD_EINVAL;
	if (k != (rows < cols ? rows : cols))
		return SPD_EINVAL;
	if (!spectrum_valid(sv, k))
		return SPD_EINVAL;

	r.s1 = sv[0];
	q25 = quantile_desc(sv, k, 0.25);
	q75 = quantile_desc(sv, k, 0.75);
	r.sigma_hat = (q75 - q25) / IQR_PER_SIGMA;
	beta = (double)k / (double)(rows > cols ? rows : cols);
	r.tau = r.sigma_hat * (1 + sqrt(beta));

	noise = 0;
	for (i = 0; i < k; i++) {
		s = sv[i];
		r.fro2 += s * s;
		if (s > r.tau) {
			r.signal += s;
			r.mp_rank++;
		} else {
			noise += s;
			nnoise++;
		}
	}
	/* The reference script's edge rules, in its order. */
	if (nnoise == 0)
		noise = 1;
	r.noise = noise;
	if (noise == 0 || r.s1 == 0)
		r.snr = INFINITY;
	else
		r.snr = r.signal / noise / r.s1;
	r.stable_rank = r.s1 > 0 ? r.fro2 / (r.s1 * r.s1) : 0;
	*out = r;
	return SPD_OK;
}
