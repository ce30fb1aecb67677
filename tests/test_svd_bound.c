/*
 * test_svd_bound.c: the error bound that decides the float64 redo
 * (svd_route_delta(), svd_snr_bound(); docs/snr-error-bound.md). The bound
 * must hold: true spectra of many kinds (flat, spiked, heavy-tailed, with
 * zeros, with values at τ, embedding-like) get their eigenvalues moved by
 * up to δ (at random and all one way), are rounded to float as the
 * backends do, and the SNR error measured must never exceed the bound.
 * Also the edge rules, and the figures the redo decision rests on.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/common.h"
#include "spectrumd/snr.h"
#include "svd_backend.h"
#include "rng.h"
#include "tap.h"

#define KMAX	400

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

/* Orders floats descending. */
static int
cmp_desc(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x < y) - (x > y);
}

/* Fills t[0..k) with a spectrum of kind (0…5), descending, as floats. */
static void
spectrum(int kind, size_t k, size_t rows, size_t cols, float *t)
{
	struct snr_result	r;
	size_t			i, j;

	for (i = 0; i < k; i++) {
		switch (kind) {
		case 0:		/* log-normal bulk, a few spikes */
			t[i] = (float)(exp(0.5 * rng_normal(&rng)) *
			    (i < 3 ? 10 : 1));
			break;
		case 1:		/* power law */
			t[i] = (float)pow((double)k / ((double)i + 0.5), 0.25);
			break;
		case 2:		/* partial null space */
			t[i] = i < k / 3 ? 0 : (float)exp(rng_normal(&rng));
			break;
		case 3:		/* embedding-like: narrow bulk, 2 small */
			t[i] = (float)(i < 2 ? 1.67 : i < 10 ? 26.3 - i :
			    8.5 * exp(0.18 * rng_normal(&rng)));
			break;
		case 4:		/* flat: no noise value (noise := 1) */
			t[i] = 3;
			break;
		default:	/* values clustered at τ, set below */
			t[i] = (float)exp(0.8 * rng_normal(&rng));
			break;
		}
	}
	qsort(t, k, sizeof *t, cmp_desc);
	if (kind != 5 || snr_compute(t, k, rows, cols, &r) != SPD_OK)
		return;
	for (i = 0, j = k / 3; i < k / 8 && j < k; i++, j++)
		t[j] = (float)(r.tau * (1 + (i % 2 ? -1 : 1) * 1e-7 * (double)i));
	qsort(t, k, sizeof *t, cmp_desc);
}

/*
 * Moves each t² by up to δ (mode 0: at random, 1: all up, 2: all down),
 * takes √max(·, 0) and rounds to float, as the backends do.
 */
static void
perturb(const float *t, size_t k, double d, int mode, float *s)
{
	double	l;
	size_t	i;

	for (i = 0; i < k; i++) {
		l = (double)t[i] * t[i] + (mode == 0 ?
		    d * (2 * rng_uniform(&rng) - 1) : mode == 1 ? d : -d);
		s[i] = (float)sqrt(l > 0 ? l : 0);
	}
	qsort(s, k, sizeof *s, cmp_desc);
}

/* The measured error never exceeds the bound, over many spectra. */
static void
test_sound(void)
{
	static float		t[KMAX], s[KMAX];
	struct snr_result	rt, rs;
	size_t			k, rows, cols, trials = 0, bounded = 0, bad = 0;
	double			d, b, err, worst = 0;
	int			kind, mode, rep;

	for (kind = 0; kind < 6; kind++)
		for (rep = 0; rep < 60; rep++) {
			k = 4 + (size_t)(rng_uniform(&rng) * (KMAX - 4));
			rows = k + (size_t)(rng_uniform(&rng) * 3 * (double)k);
			cols = k;
			spectrum(kind, k, rows, cols, t);
			if (snr_compute(t, k, rows, cols, &rt) != SPD_OK)
				continue;
			/* δ from 0 to 1e-2·s₁². */
			d = rep % 6 == 0 ? 0 : (double)t[0] * t[0] *
			    pow(10, -2 - 12 * rng_uniform(&rng));
			for (mode = 0; mode < 3; mode++) {
				perturb(t, k, d, mode, s);
				if (snr_compute(s, k, rows, cols, &rs) != SPD_OK)
					continue;
				trials++;
				b = svd_snr_bound(s, k, rows, cols, d);
				if (!isfinite(b))
					continue;
				bounded++;
				if (isinf(rt.snr) || rt.snr == 0)
					err = rs.snr == rt.snr ? 0 : INFINITY;
				else
					err = fabs(rs.snr - rt.snr) / rt.snr;
				if (err > b) {
					bad++;
					printf("# kind %d k %zu δ %g mode %d: "
					    "error %g > bound %g\n", kind, k,
					    d, mode, err, b);
				}
				if (b > 0 && err / b > worst)
					worst = err / b;
			}
		}
	ok(bad == 0 && bounded > trials / 3,
	    "bound holds on %zu of %zu perturbed spectra with a finite bound "
	    "(%zu over; largest error/bound %.2f)", bounded, trials, bad,
	    worst);
}

/* Edge rules: exact zeros, τ crossings, the noise := 1 rule. */
static void
test_edges(void)
{
	float	z[8] = { 0 }, flat[8] = { 3, 3, 3, 3, 3, 3, 3, 3 };
	float	one[4] = { 2, 0, 0, 0 };

	ok(svd_snr_bound(z, 8, 8, 8, 0) == 0,
	    "all zero, exact: SNR +inf exactly, bound 0");
	ok(isinf(svd_snr_bound(z, 8, 8, 8, 1e-30)),
	    "all zero, δ > 0: the truth may be finite, no bound");
	ok(svd_snr_bound(one, 4, 4, 4, 0) == 0,
	    "one value, exact zeros elsewhere: +inf exactly");
	ok(isinf(svd_snr_bound(one, 4, 4, 4, 1e-20)),
	    "one value, δ > 0: noise may be non-zero, no bound");
	ok(svd_snr_bound(flat, 8, 8, 8, 0) < 1e-6,
	    "flat, exact: noise := 1 both ways, only float rounding (%g)",
	    svd_snr_bound(flat, 8, 8, 8, 0));
	ok(svd_snr_bound(flat, 8, 8, 8, 1e-3) < 1e-3,
	    "flat, δ > 0: τ stays far below, noise := 1 both ways (%g)",
	    svd_snr_bound(flat, 8, 8, 8, 1e-3));
	flat[7] = 2.9f;		/* Q₂₅ ≠ Q₇₅ is not needed: τ = 0 still */
	ok(svd_snr_bound(flat, 8, 8, 8, 1e-3) < 1e-3,
	    "flat but one, δ > 0: bounded (%g)",
	    svd_snr_bound(flat, 8, 8, 8, 1e-3));
}

/* δ of the routes, and the decisions the README reports. */
static void
test_routes(void)
{
	static float		t[256];
	struct svd_route	f32 = { 0x1p-24, 0x1p-24, 0 };
	struct svd_route	f64 = { 0x1p-53, 0x1p-53, 0 };
	double			tr = 0, d32, d64, b32, b64;
	size_t			i;

	ok(svd_route_delta(&f32, 16, 1u << 23, 1) == INFINITY,
	    "n·u ≥ ½: no bound");
	f32.tr = 0;
	ok(svd_route_delta(&f32, 16, 100, 0) < 1e-30,
	    "zero matrix: δ is only the underflow term");
	spectrum(3, 256, 8002, 256, t);
	for (i = 0; i < 256; i++)
		tr += (double)t[i] * t[i];
	f32.tr = f64.tr = tr;
	d32 = svd_route_delta(&f32, 256, 8002, (double)t[0] * t[0]);
	d64 = svd_route_delta(&f64, 256, 8002, (double)t[0] * t[0]);
	ok(d32 >= 8002 * 0x1p-24 * tr && d64 >= 8002 * 0x1p-53 * tr,
	    "δ ≥ γₙ·tr (float32 %g, float64 %g)", d32, d64);
	b32 = svd_snr_bound(t, 256, 8002, 256, d32);
	b64 = svd_snr_bound(t, 256, 8002, 256, d64);
	/* float64: mostly the rounding of the values to float, 2u each. */
	ok(b32 > 1e-5 && b64 < 1e-6,
	    "8002×256 embedding-like: float32 bound %g (redo), float64 %g",
	    b32, b64);
}

int
main(void)
{
	test_sound();
	test_edges();
	test_routes();
	return tap_done();
}
