/*
 * test_svd_cpu.c: the svd module on the cpu backend. Matrices with known
 * singular values (U·diag(s)·Vᵀ, U and V random orthonormal, built here in
 * double) in every analyzable dtype; where the dtype rounds the matrix, the
 * reference is a double-precision one-sided Jacobi SVD of the stored
 * values. Also: orientation, 1×n, NaN/Inf, the float64 fallback, ordering,
 * argument checks and backend choice.
 */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/common.h"
#include "spectrumd/svd.h"
#include "spectrumd/tensor.h"
#include "rng.h"
#include "tap.h"

/* Largest relative SNR error DESIGN.md §1 allows. */
#define SNR_TOL	1e-5

static uint64_t rng = 0x243f6a8885a308d3ULL;

/* Fills the n × k column-major q with orthonormal columns (MGS, twice). */
static void
orthonormal(double *q, size_t n, size_t k)
{
	size_t	i, j, l, pass;
	double	d, nrm;

	for (i = 0; i < n * k; i++)
		q[i] = rng_normal(&rng);
	for (j = 0; j < k; j++) {
		for (pass = 0; pass < 2; pass++)
			for (l = 0; l < j; l++) {
				d = 0;
				for (i = 0; i < n; i++)
					d += q[l * n + i] * q[j * n + i];
				for (i = 0; i < n; i++)
					q[j * n + i] -= d * q[l * n + i];
			}
		nrm = 0;
		for (i = 0; i < n; i++)
			nrm += q[j * n + i] * q[j * n + i];
		nrm = sqrt(nrm);
		for (i = 0; i < n; i++)
			q[j * n + i] /= nrm;
	}
}

/* Returns a row-major r × c matrix U·diag(s)·Vᵀ (caller frees). */
static double *
with_spectrum(size_t r, size_t c, const double *s)
{
	size_t	 k = r < c ? r : c, i, j, l;
	double	*u = malloc(r * k * sizeof *u), *v = malloc(c * k * sizeof *v);
	double	*w = calloc(r * c, sizeof *w);

	if (u == NULL || v == NULL || w == NULL)
		abort();
	orthonormal(u, r, k);
	orthonormal(v, c, k);
	for (l = 0; l < k; l++)
		for (i = 0; i < r; i++)
			for (j = 0; j < c; j++)
				w[i * c + j] +=
				    u[l * r + i] * s[l] * v[l * c + j];
	free(u);
	free(v);
	return w;
}

/* Rounds x to bfloat16 bits, nearest even (finite x). */
static uint16_t
to_bf16(float x)
{
	uint32_t u;

	memcpy(&u, &x, 4);
	u += 0x7fff + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

/* Rounds x to IEEE binary16 bits, nearest even, subnormals included. */
static uint16_t
to_f16(float x)
{
	uint32_t	u, man, sign;
	int		e;

	memcpy(&u, &x, 4);
	sign = (u >> 16) & 0x8000;
	e = (int)((u >> 23) & 0xff) - 127;
	man = (u & 0x7fffff) | 0x800000;
	if ((u & 0x7fffffff) == 0x7f800000 || e > 15)
		return (uint16_t)(sign | 0x7c00);	/* Inf / overflow */
	if (e < -25)
		return (uint16_t)sign;
	/* Keep 11 significant bits (fewer for subnormals), round even. */
	{
		int		sh = e >= -14 ? 13 : 13 + (-14 - e);
		uint32_t	q = man >> sh, rem = man & ((1u << sh) - 1);
		uint32_t	half = 1u << (sh - 1);

		if (rem > half || (rem == half && (q & 1)))
			q++;
		if (e >= -14)
			return (uint16_t)(sign + ((uint32_t)(e + 15) << 10) +
			    (q - 0x400));
		return (uint16_t)(sign + q);
	}
}

/* Stores the n doubles w as dtype dt; returns a new buffer (caller frees). */
static void *
store(const double *w, size_t n, enum dtype dt)
{
	unsigned char	*p = malloc(n * 8 + 1);
	size_t		 i;
	uint16_t	 h;
	float		 f;

	if (p == NULL)
		abort();
	for (i = 0; i < n; i++) {
		f = (float)w[i];
		switch (dt) {
		case DT_F64:
			memcpy(p + 8 * i, &w[i], 8);
			break;
		case DT_F32:
			memcpy(p + 4 * i, &f, 4);
			break;
		case DT_BF16:
			h = to_bf16(f);
			memcpy(p + 2 * i, &h, 2);
			break;
		case DT_F16:
			h = to_f16(f);
			memcpy(p + 2 * i, &h, 2);
			break;
		default:
			abort();
		}
	}
	return p;
}

/* Sorts descending (insertion sort: small k). */
static void
sort_desc(double *s, size_t k)
{
	size_t	i, j;
	double	t;

	for (i = 1; i < k; i++)
		for (j = i; j > 0 && s[j - 1] < s[j]; j--) {
			t = s[j];
			s[j] = s[j - 1];
			s[j - 1] = t;
		}
}

/* Orthogonalises columns p and q of a (length m); returns 1 if it rotated. */
static int
rotate(double *a, size_t m, size_t p, size_t q)
{
	double	*x = a + p * m, *y = a + q * m, al = 0, be = 0, ga = 0;
	double	 z, t, cs, sn, v;
	size_t	 i;

	for (i = 0; i < m; i++) {
		al += x[i] * x[i];
		be += y[i] * y[i];
		ga += x[i] * y[i];
	}
	if (ga == 0 || fabs(ga) <= 1e-15 * sqrt(al * be))
		return 0;
	z = (be - al) / (2 * ga);
	t = (z >= 0 ? 1 : -1) / (fabs(z) + sqrt(1 + z * z));
	cs = 1 / sqrt(1 + t * t);
	sn = cs * t;
	for (i = 0; i < m; i++) {
		v = x[i];
		x[i] = cs * v - sn * y[i];
		y[i] = sn * v + cs * y[i];
	}
	return 1;
}

/*
 * Singular values (descending) of the row-major r × c doubles w by
 * one-sided Jacobi in double: the independent reference.
 */
static void
jacobi(const double *w, size_t r, size_t c, double *s)
{
	size_t	 m = r >= c ? r : c, n = r >= c ? c : r, i, p, q, sweep;
	double	*a = malloc(m * n * sizeof *a), x;
	int	 rotated = 1;

	if (a == NULL)
		abort();
	/* Column j of a (length m) is column j of w, or row j when r < c. */
	for (p = 0; p < n; p++)
		for (i = 0; i < m; i++)
			a[p * m + i] = r >= c ? w[i * c + p] : w[p * c + i];
	for (sweep = 0; sweep < 60 && rotated; sweep++) {
		rotated = 0;
		for (p = 0; p + 1 < n; p++)
			for (q = p + 1; q < n; q++)
				rotated |= rotate(a, m, p, q);
	}
	for (p = 0; p < n; p++) {
		x = 0;
		for (i = 0; i < m; i++)
			x += a[p * m + i] * a[p * m + i];
		s[p] = sqrt(x);
	}
	sort_desc(s, n);
	free(a);
}

/* Linear-interpolated quantile of descending s (numpy's default). */
static double
quantile(const double *s, size_t k, double q)
{
	double	pos = q * (double)(k - 1), f = floor(pos);
	size_t	lo = (size_t)f, hi = lo + 1 < k ? lo + 1 : lo;

	return s[k - 1 - lo] + (pos - f) * (s[k - 1 - hi] - s[k - 1 - lo]);
}

/* The Spectrum SNR of DESIGN.md §1, in double. */
static double
snr(const double *s, size_t k, size_t r, size_t c)
{
	double	tau, sig = 0, noi = 0;
	size_t	i, nn = 0;

	tau = (quantile(s, k, .75) - quantile(s, k, .25)) / 1.349 *
	    (1 + sqrt((double)k / (double)(r > c ? r : c)));
	for (i = 0; i < k; i++)
		if (s[i] > tau)
			sig += s[i];
		else {
			noi += s[i];
			nn++;
		}
	if (nn == 0)
		noi = 1;
	if (noi == 0 || s[0] == 0)
		return INFINITY;
	return sig / noi / s[0];
}

static struct svd *cpu;

/* Runs svd_values; returns the rc and the values as doubles in out. */
static enum spd_err
values(const void *data, enum dtype dt, size_t r, size_t c, double *out,
    struct spd_errbuf *eb)
{
	struct svd_matrix	 m = { data, dt, r, c };
	size_t			 k = r < c ? r : c, i;
	float			*sv = malloc(k * sizeof *sv);
	enum spd_err		 rc;

	if (sv == NULL)
		abort();
	rc = svd_values(cpu, &m, sv, eb);
	for (i = 0; rc == SPD_OK && i < k; i++)
		out[i] = sv[i];
	free(sv);
	return rc;
}

/* True when s is sorted descending and non-negative. */
static int
descending(const double *s, size_t k)
{
	size_t i;

	for (i = 0; i < k; i++)
		if (!(s[i] >= 0) || (i > 0 && s[i] > s[i - 1]))
			return 0;
	return 1;
}

/* Largest |a − b| / b[0] over k values. */
static double
maxdiff(const double *a, const double *b, size_t k)
{
	double	d = 0;
	size_t	i;

	for (i = 0; i < k; i++)
		if (fabs(a[i] - b[i]) > d)
			d = fabs(a[i] - b[i]);
	return b[0] > 0 ? d / b[0] : d;
}

/*
 * Checks one stored matrix against reference values ref: rc, order, each
 * value to tol·s₁, and the SNR to SNR_TOL relative.
 */
static void
check(const char *what, const void *data, enum dtype dt, size_t r, size_t c,
    const double *ref, double tol)
{
	struct spd_errbuf	 eb = { "" };
	size_t			 k = r < c ? r : c;
	double			*s = calloc(k, sizeof *s), want, got;
	enum spd_err		 rc;

	if (s == NULL)
		abort();
	rc = values(data, dt, r, c, s, &eb);
	if (!ok(rc == SPD_OK, "%s %s %zux%zu: SPD_OK", what, dtype_name(dt),
	    r, c))
		printf("#   %s: %s\n", spd_strerror(rc), eb.msg);
	ok(descending(s, k), "%s %s %zux%zu: sorted descending", what,
	    dtype_name(dt), r, c);
	ok_near(maxdiff(s, ref, k), 0, tol, "%s %s %zux%zu: values within "
	    "%g·s1", what, dtype_name(dt), r, c, tol);
	want = snr(ref, k, r, c);
	got = snr(s, k, r, c);
	ok_near(fabs(got - want) / want, 0, SNR_TOL, "%s %s %zux%zu: SNR %.7g "
	    "within 1e-5 (want %.7g)", what, dtype_name(dt), r, c, got, want);
	free(s);
}

/* A spectrum with a signal part and a flat-ish bulk, no tiny values. */
static void
spectrum_plain(double *s, size_t k)
{
	size_t i;

	for (i = 0; i < k; i++)
		s[i] = i < 5 ? 10.0 - 1.5 * i : 1.0 - 0.8 * i / k;
}

/* Known spectra in F32/F64 (exact) and BF16/F16 (Jacobi reference). */
static void
test_known(void)
{
	static const size_t	shapes[][2] = { { 120, 80 }, { 80, 120 },
				    { 64, 64 } };
	static const enum dtype	dts[] = { DT_F32, DT_F64, DT_BF16, DT_F16 };
	double			s[128], ref[128], *w, *dq;
	float			*f;
	void			*p;
	size_t			i, j, r, c, k, n;

	for (i = 0; i < nitems(shapes); i++) {
		r = shapes[i][0];
		c = shapes[i][1];
		k = r < c ? r : c;
		n = r * c;
		spectrum_plain(s, k);
		w = with_spectrum(r, c, s);
		for (j = 0; j < nitems(dts); j++) {
			p = store(w, n, dts[j]);
			if (dts[j] == DT_F32 || dts[j] == DT_F64) {
				check("known", p, dts[j], r, c, s, 2e-6);
			} else {
				/* Reference: Jacobi on the stored values. */
				f = malloc(n * sizeof *f);
				dq = malloc(n * sizeof *dq);
				tensor_to_f32(p, dts[j], n, f);
				for (size_t l = 0; l < n; l++)
					dq[l] = f[l];
				jacobi(dq, r, c, ref);
				check("jacobi", p, dts[j], r, c, ref, 2e-6);
				/* And the rounding only moved s a little. */
				ok_near(maxdiff(ref, s, k), 0,
				    dts[j] == DT_BF16 ? 1e-2 : 1e-3,
				    "%s %zux%zu: near the unrounded spectrum",
				    dtype_name(dts[j]), r, c);
				free(f);
				free(dq);
			}
			free(p);
		}
		free(w);
	}
}

/* F8 matrices from random finite codes, against Jacobi. */
static void
test_f8(void)
{
	static const enum dtype	 dts[] = { DT_F8_E4M3, DT_F8_E5M2 };
	const size_t		 r = 48, c = 72, n = r * c;
	unsigned char		 b[48 * 72];
	float			 f[48 * 72];
	double			 d[48 * 72], ref[48];
	size_t			 i, j;

	for (j = 0; j < nitems(dts); j++) {
		for (i = 0; i < n; i++)
			do	/* redraw NaN (E4M3) and Inf/NaN (E5M2) codes */
				b[i] = (unsigned char)(rng_uniform(&rng) * 256);
			while (dts[j] == DT_F8_E4M3 ? (b[i] & 0x7f) == 0x7f :
			    (b[i] & 0x7c) == 0x7c);
		ok(tensor_to_f32(b, dts[j], n, f) == 0, "%s: codes finite",
		    dtype_name(dts[j]));
		for (i = 0; i < n; i++)
			d[i] = f[i];
		jacobi(d, r, c, ref);
		check("random", b, dts[j], r, c, ref, 2e-6);
	}
}

/* r < c and r > c give the values of the transpose; 1×n and n×1. */
static void
test_shapes(void)
{
	const size_t	 r = 70, c = 150, n = r * c;
	float		*a = malloc(n * 4), *t = malloc(n * 4), v[300];
	double		 sa[70], st[70], ref[70], x2 = 0, s1[1];
	size_t		 i, j;

	if (a == NULL || t == NULL)
		abort();
	for (i = 0; i < r; i++)
		for (j = 0; j < c; j++) {
			a[i * c + j] = (float)rng_normal(&rng);
			t[j * r + i] = a[i * c + j];
		}
	ok(values(a, DT_F32, r, c, sa, NULL) == SPD_OK &&
	    values(t, DT_F32, c, r, st, NULL) == SPD_OK,
	    "70x150 and its transpose: SPD_OK");
	ok_near(maxdiff(st, sa, r), 0, 2e-6, "transpose: same values");
	{
		double *dq = malloc(n * sizeof *dq);

		for (i = 0; i < n; i++)
			dq[i] = a[i];
		jacobi(dq, r, c, ref);
		free(dq);
	}
	ok_near(maxdiff(sa, ref, r), 0, 2e-6, "70x150 random: vs Jacobi");
	for (i = 0; i < 300; i++) {
		v[i] = (float)rng_normal(&rng);
		x2 += (double)v[i] * v[i];
	}
	ok(values(v, DT_F32, 1, 300, s1, NULL) == SPD_OK, "1x300: SPD_OK");
	ok_near(s1[0], sqrt(x2), 1e-6 * sqrt(x2), "1x300: s = |row|");
	ok(values(v, DT_F32, 300, 1, s1, NULL) == SPD_OK, "300x1: SPD_OK");
	ok_near(s1[0], sqrt(x2), 1e-6 * sqrt(x2), "300x1: s = |column|");
	ok(values(v, DT_F32, 1, 1, s1, NULL) == SPD_OK, "1x1: SPD_OK");
	ok_near(s1[0], fabs(v[0]), 1e-7 * fabs(v[0]), "1x1: s = |x|");
	free(a);
	free(t);
}

/*
 * Long sides beyond one panel (the converted dtypes are summed a panel at
 * a time) give the values of the same numbers as unpanelled float32.
 */
static void
test_panels(void)
{
	const size_t	 r = 64, c = 40000, n = r * c;
	double		*w = malloc(n * sizeof *w), s32[64], sbf[64];
	float		*f = malloc(n * 4);
	void		*p;
	size_t		 i, j;

	if (w == NULL || f == NULL)
		abort();
	for (i = 0; i < n; i++)
		w[i] = rng_normal(&rng) * (1 + (double)(i % c) / c);
	p = store(w, n, DT_BF16);
	tensor_to_f32(p, DT_BF16, n, f);
	ok(values(f, DT_F32, r, c, s32, NULL) == SPD_OK &&
	    values(p, DT_BF16, r, c, sbf, NULL) == SPD_OK,
	    "64x40000 F32 and BF16: SPD_OK");
	ok_near(maxdiff(sbf, s32, r), 0, 1e-6, "64x40000: panels = one call");
	/* The transpose, panels of whole rows. */
	for (i = 0; i < r; i++)
		for (j = 0; j < c; j++)
			w[j * r + i] = f[i * c + j];
	free(p);
	p = store(w, n, DT_BF16);
	ok(values(p, DT_BF16, c, r, sbf, NULL) == SPD_OK,
	    "40000x64 BF16: SPD_OK");
	ok_near(maxdiff(sbf, s32, r), 0, 1e-6, "40000x64: panels = one call");
	free(p);
	free(w);
	free(f);
}

/* NaN and Inf in each path are SPD_ENONFINITE; the handle stays usable. */
static void
test_nonfinite(void)
{
	static const struct {
		enum dtype	dt;
		double		bad;
	} cases[] = {
		{ DT_F32, NAN }, { DT_F32, INFINITY }, { DT_BF16, NAN },
		{ DT_BF16, -INFINITY }, { DT_F16, INFINITY }, { DT_F64, NAN },
		{ DT_F64, INFINITY },
	};
	struct spd_errbuf	 eb;
	double			 w[40 * 30], s[30];
	unsigned char		 e4[40 * 30];
	void			*p;
	size_t			 i, n = 40 * 30;

	for (i = 0; i < n; i++)
		w[i] = rng_normal(&rng);
	for (i = 0; i < nitems(cases); i++) {
		w[517] = cases[i].bad;
		p = store(w, n, cases[i].dt);
		eb.msg[0] = '\0';
		ok(values(p, cases[i].dt, 40, 30, s, &eb) == SPD_ENONFINITE &&
		    eb.msg[0] != '\0', "%s with %g: SPD_ENONFINITE (%s)",
		    dtype_name(cases[i].dt), cases[i].bad, eb.msg);
		free(p);
		w[517] = 0.5;
		p = store(w, n, cases[i].dt);
		ok(values(p, cases[i].dt, 40, 30, s, &eb) == SPD_OK,
		    "%s: next matrix fine", dtype_name(cases[i].dt));
		free(p);
	}
	memset(e4, 0x38, sizeof e4);	/* 1.0 */
	e4[77] = 0x7f;			/* E4M3 NaN */
	ok(values(e4, DT_F8_E4M3, 40, 30, s, NULL) == SPD_ENONFINITE,
	    "F8_E4M3 NaN: SPD_ENONFINITE");
}

/*
 * Spectra the float32 Gram cannot resolve: a tiny tail (Q25/s1 < 1e-2)
 * and a 20% null space. Without the float64 redo the second misses the
 * SNR by ~1e-4.
 */
static void
test_fallback(void)
{
	const size_t	 r = 160, c = 240, k = 160;
	double		 s[160], *w;
	void		*p;
	size_t		 i;

	for (i = 0; i < k; i++)
		s[i] = pow(10, -4.0 * i / (k - 1));
	w = with_spectrum(r, c, s);
	p = store(w, r * c, DT_F64);
	check("geometric 1..1e-4", p, DT_F64, r, c, s, 1e-6);
	free(p);
	free(w);
	for (i = 0; i < k; i++)
		s[i] = i < k * 4 / 5 ? 1 - 0.95 * i / (k * 4 / 5) : 0;
	w = with_spectrum(r, c, s);
	p = store(w, r * c, DT_F64);
	check("20% zeros", p, DT_F64, r, c, s, 1e-6);
	free(p);
	free(w);
}

/* All zeros, huge values (float32 squares overflow), float64 overflow. */
static void
test_extremes(void)
{
	double	 s[40], want[40], *w;
	void	*p;
	size_t	 i, n = 60 * 40;

	w = calloc(n, sizeof *w);
	p = store(w, n, DT_BF16);
	ok(values(p, DT_BF16, 60, 40, s, NULL) == SPD_OK && s[0] == 0 &&
	    s[39] == 0, "zero matrix: all values 0");
	free(p);
	free(w);
	spectrum_plain(want, 40);
	for (i = 0; i < 40; i++)
		want[i] *= 1e20;
	w = with_spectrum(60, 40, want);
	p = store(w, n, DT_F32);
	check("scaled 1e20", p, DT_F32, 60, 40, want, 2e-6);
	free(p);
	for (i = 0; i < n; i++)
		w[i] *= 1e140;
	p = store(w, n, DT_F64);
	ok(values(p, DT_F64, 60, 40, s, NULL) == SPD_ENONFINITE,
	    "F64 whose squares overflow float64: SPD_ENONFINITE");
	free(p);
	free(w);
}

/* A float32 matrix at an odd address gives the same values. */
static void
test_unaligned(void)
{
	double		 w[50 * 30], s[30], sa[30];
	unsigned char	*p, *q = malloc(50 * 30 * 4 + 1);
	size_t		 i;

	for (i = 0; i < 50 * 30; i++)
		w[i] = rng_normal(&rng);
	p = store(w, 50 * 30, DT_F32);
	memcpy(q + 1, p, 50 * 30 * 4);
	ok(values(p, DT_F32, 50, 30, sa, NULL) == SPD_OK &&
	    values(q + 1, DT_F32, 50, 30, s, NULL) == SPD_OK,
	    "unaligned F32: SPD_OK");
	ok_near(maxdiff(s, sa, 30), 0, 1e-6, "unaligned F32: same values");
	free(p);
	free(q);
}

/* svd_values rejects what no backend can take. */
static void
test_args(void)
{
	struct spd_errbuf	eb;
	float			d[4] = { 1, 2, 3, 4 }, sv[4];
	struct svd_matrix	m = { d, DT_F32, 2, 2 };

	ok(svd_values(cpu, &m, sv, &eb) == SPD_OK, "2x2: SPD_OK");
	m.rows = 0;
	ok(svd_values(cpu, &m, sv, &eb) == SPD_EINVAL, "0x2: SPD_EINVAL");
	m = (struct svd_matrix){ d, DT_I32, 2, 2 };
	ok(svd_values(cpu, &m, sv, &eb) == SPD_EINVAL, "I32: SPD_EINVAL");
	m = (struct svd_matrix){ d, DT_COUNT, 2, 2 };
	ok(svd_values(cpu, &m, sv, &eb) == SPD_EINVAL,
	    "dtype out of range: SPD_EINVAL");
	m = (struct svd_matrix){ d, DT_F32, SIZE_MAX / 2, 3 };
	ok(svd_values(cpu, &m, sv, &eb) == SPD_EINVAL,
	    "size overflow: SPD_EINVAL (%s)", eb.msg);
	m = (struct svd_matrix){ d, DT_F32, (size_t)INT_MAX + 1, 1 };
	ok(svd_values(cpu, &m, sv, &eb) == SPD_EINVAL,
	    "rows > INT_MAX: SPD_EINVAL");
	m = (struct svd_matrix){ d, DT_F32, 2, 2 };
	ok(svd_values(cpu, &m, NULL, &eb) == SPD_EINVAL,
	    "NULL output: SPD_EINVAL");
	m.data = NULL;
	ok(svd_values(cpu, &m, sv, &eb) == SPD_EINVAL, "NULL data: SPD_EINVAL");
}

/* Backend names and the choice made by auto. */
static void
test_open(void)
{
	struct svd_opts		 o = { "nope", 1, 0, 0 };
	struct spd_errbuf	 eb = { "" };
	struct svd		*s = NULL;
	enum spd_err		 rc;

	ok(svd_open(&o, &s, &eb) == SPD_EINVAL && eb.msg[0] != '\0',
	    "open nope: SPD_EINVAL (%s)", eb.msg);
	o.backend = "cpu";
	o.device = -1;
	ok(svd_open(&o, &s, &eb) == SPD_EINVAL, "device -1: SPD_EINVAL");
	o.device = 0;
	ok(svd_open(&o, &s, &eb) == SPD_OK && strcmp(svd_name(s), "cpu") == 0,
	    "open cpu");
	svd_close(s);
	svd_close(NULL);
	if (svd_cuda_devices() > 0) {
		printf("# a CUDA device is present: skipping no-device "
		    "checks\n");
		return;
	}
	o.backend = "cuda";
	eb.msg[0] = '\0';
	rc = svd_open(&o, &s, &eb);
	ok(rc == SPD_ENODEV && eb.msg[0] != '\0', "open cuda without a "
	    "device: SPD_ENODEV (%s)", eb.msg);
	o.backend = "auto";
	eb.msg[0] = '\0';
	s = NULL;
	ok(svd_open(&o, &s, &eb) == SPD_OK && strcmp(svd_name(s), "cpu") == 0 &&
	    eb.msg[0] != '\0', "auto: cpu, saying why (%s)", eb.msg);
	svd_close(s);
	o.quiet = 1;
	snprintf(eb.msg, sizeof eb.msg, "untouched");
	ok(svd_open(&o, &s, &eb) == SPD_OK && strcmp(eb.msg, "untouched") == 0,
	    "auto, quiet: eb untouched");
	svd_close(s);
	ok(svd_open(NULL, &s, &eb) == SPD_OK && strcmp(svd_name(s), "cpu") == 0,
	    "NULL opts: auto → cpu");
	svd_close(s);
}

int
main(void)
{
	struct svd_opts		o = { "cpu", 1, 0, 1 };
	struct spd_errbuf	eb;

	if (svd_open(&o, &cpu, &eb) != SPD_OK) {
		printf("# svd_open cpu: %s\n", eb.msg);
		ok(0, "svd_open cpu");
		return tap_done();
	}
	test_open();
	test_args();
	test_known();
	test_f8();
	test_shapes();
	test_panels();
	test_nonfinite();
	test_fallback();
	test_extremes();
	test_unaligned();
	svd_close(cpu);
	return tap_done();
}
