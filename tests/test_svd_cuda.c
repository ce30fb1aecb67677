/*
 * test_svd_cuda.c: the cuda backend against the cpu backend. Skipped
 * (exit 77) when the build has no CUDA backend or the host no device.
 * Every analyzable dtype, square, tall, wide and large shapes: the values
 * agree to 1e-5·s₁ and the SNRs to 1e-5 relative; NaN/Inf, the float64
 * fallback and the degenerate shapes behave as on the cpu.
 *
 * Built with SPD_FAKECUDA it is tests/test_svd_fakecuda: the backend runs
 * on the fake device of tests/fakecuda (no GPU needed) with small panels,
 * once per seed in FAKECUDA_SEEDS (default 1 to 8), each seed a different
 * random order of the streams' work.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/common.h"
#include "spectrumd/snr.h"
#include "spectrumd/svd.h"
#include "spectrumd/tensor.h"
#include "rng.h"
#include "tap.h"
#ifdef SPD_FAKECUDA
#include "fakecuda/fakecuda.h"
#endif

#define SNR_TOL	1e-5

#define RNG_SEED 0x452821e638d01377ULL

static uint64_t		 rng = RNG_SEED;
static struct svd	*cpu, *gpu;

/* Rounds x to bfloat16 bits, nearest even (finite x). */
static uint16_t
to_bf16(float x)
{
	uint32_t u;

	memcpy(&u, &x, 4);
	u += 0x7fff + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

/* Rounds x to binary16 bits (|x| in the normal range; else 0 or Inf). */
static uint16_t
to_f16(float x)
{
	uint32_t	u, man, q;
	uint16_t	sign;
	int		e;

	memcpy(&u, &x, 4);
	sign = (uint16_t)((u >> 16) & 0x8000);
	e = (int)((u >> 23) & 0xff) - 127;
	if ((u & 0x7fffffff) >= 0x7f800000)
		return (u & 0x7fffff) ? 0x7e00 : sign | 0x7c00;
	if (e < -14)
		return sign;
	if (e > 15)
		return sign | 0x7c00;
	man = u & 0x7fffff;
	q = ((uint32_t)(e + 15) << 10 | man >> 13);
	if ((man & 0x1fff) > 0x1000 || ((man & 0x1fff) == 0x1000 && (q & 1)))
		q++;
	return (uint16_t)(sign | q);
}

/*
 * Returns an r × c matrix in dtype dt (caller frees): noise with decaying
 * column scales plus a rank-4 signal, like a trained weight. F8 matrices
 * are random finite codes.
 */
static void *
make(size_t r, size_t c, enum dtype dt)
{
	size_t		 n = r * c, i, j, esz = dtype_bits(dt) / 8;
	unsigned char	*p = malloc(n * esz);
	double		 x, u[4] = { 1.1, -0.7, 0.5, 0.9 };
	float		 f;
	uint16_t	 h;

	if (p == NULL)
		abort();
	for (i = 0; i < r; i++)
		for (j = 0; j < c; j++) {
			x = rng_normal(&rng) / (1 + 3.0 * j / c) +
			    0.3 * u[i % 4] * u[j % 4];
			f = (float)(0.02 * x);
			switch (dt) {
			case DT_F64:
				x *= 0.02;
				memcpy(p + 8 * (i * c + j), &x, 8);
				break;
			case DT_F32:
				memcpy(p + 4 * (i * c + j), &f, 4);
				break;
			case DT_BF16:
				h = to_bf16(f);
				memcpy(p + 2 * (i * c + j), &h, 2);
				break;
			case DT_F16:
				h = to_f16(f * 50);
				memcpy(p + 2 * (i * c + j), &h, 2);
				break;
			default:	/* F8: a finite code */
				do
					p[i * c + j] =
					    (unsigned char)(rng_uniform(&rng) * 256);
				while (dt == DT_F8_E4M3 ?
				    (p[i * c + j] & 0x7f) == 0x7f :
				    (p[i * c + j] & 0x7c) == 0x7c);
				break;
			}
		}
	return p;
}

/* The library's SNR of descending s (tested against DESIGN §1 in test_snr). */
static double
snr(const float *s, size_t k, size_t r, size_t c)
{
	struct snr_result res;

	return snr_compute(s, k, r, c, &res) == SPD_OK ? res.snr : NAN;
}

/*
 * Compares the two backends on one matrix: SNRs to SNR_TOL, values to
 * tol·s₁ (two float32 routes may differ by ~1e-5·s₁ on values near zero;
 * an orientation or dtype bug shows as ~0.1·s₁).
 */
static void
compare(const char *what, const void *data, enum dtype dt, size_t r,
    size_t c, double tol)
{
	struct svd_matrix	 m = { data, dt, r, c };
	struct spd_errbuf	 eb = { "" };
	size_t			 k = r < c ? r : c, i;
	float			*sc = malloc(k * 4), *sg = malloc(k * 4);
	double			 d = 0, a, b;
	int			 sorted = 1;
	enum spd_err		 rc;

	if (sc == NULL || sg == NULL)
		abort();
	rc = svd_values(gpu, &m, sg, &eb);
	if (!ok(rc == SPD_OK && svd_values(cpu, &m, sc, NULL) == SPD_OK,
	    "%s %s %zux%zu: SPD_OK", what, dtype_name(dt), r, c))
		printf("#   cuda: %s: %s\n", spd_strerror(rc), eb.msg);
	for (i = 0; i < k; i++) {
		if (fabs((double)sg[i] - sc[i]) > d)
			d = fabs((double)sg[i] - sc[i]);
		if (i > 0 && sg[i] > sg[i - 1])
			sorted = 0;
	}
	ok(sorted, "%s %s %zux%zu: sorted descending", what, dtype_name(dt),
	    r, c);
	ok_near(d / sc[0], 0, tol, "%s %s %zux%zu: values within %g·s1",
	    what, dtype_name(dt), r, c, tol);
	a = snr(sg, k, r, c);
	b = snr(sc, k, r, c);
	ok_near(fabs(a - b) / b, 0, SNR_TOL, "%s %s %zux%zu: SNR %.7g vs cpu "
	    "%.7g", what, dtype_name(dt), r, c, a, b);
	free(sc);
	free(sg);
}

/*
 * Every analyzable dtype on every shape of the brief, on the route named
 * (SPECTRUMD_CUDA_EIG; NULL: the default, mixed). The backend uploads
 * panels of 4 Mi elements: 1100x4096 and 4096x1100 take two, 6000x1500
 * and 1500x6000 three (the last partial, the first pinned slot reused).
 * The fake device's panels are 8 Ki elements, at least 16 wide: 300x77
 * takes three (106 + 106 + 88), 1000x40 five, 700x130 twelve (the last
 * 7 wide), 256x256 eight full ones; each also transposed.
 */
static void
test_dtypes(const char *route)
{
	static const enum dtype dts[] = { DT_F32, DT_F64, DT_BF16, DT_F16,
	    DT_F8_E4M3, DT_F8_E5M2 };
#ifdef SPD_FAKECUDA
	static const size_t	shapes[][2] = { { 64, 64 }, { 300, 77 },
				    { 77, 300 }, { 1000, 40 }, { 40, 1000 },
				    { 700, 130 }, { 130, 700 },
				    { 256, 256 } };
#else
	static const size_t	shapes[][2] = { { 64, 64 }, { 300, 77 },
				    { 77, 300 }, { 1024, 4096 }, { 1100, 4096 },
				    { 4096, 1100 }, { 6000, 1500 },
				    { 1500, 6000 } };
#endif
	char			 what[32];
	void			*p;
	size_t			 i, j;

	if (route != NULL)
		setenv("SPECTRUMD_CUDA_EIG", route, 1);
	else
		unsetenv("SPECTRUMD_CUDA_EIG");
	snprintf(what, sizeof what, "%s random", route ? route : "mixed");
	for (i = 0; i < nitems(shapes); i++)
		for (j = 0; j < nitems(dts); j++) {
			p = make(shapes[i][0], shapes[i][1], dts[j]);
			compare(what, p, dts[j], shapes[i][0], shapes[i][1],
			    1e-4);
			free(p);
		}
	unsetenv("SPECTRUMD_CUDA_EIG");
}

/* A 20% null space forces the float64 redo on both: they agree closely. */
static void
test_fallback(void)
{
	const size_t	 r = 96, c = 200;
	float		*w = malloc(r * c * 4);
	size_t		 i, j;

	if (w == NULL)
		abort();
	/* Rows 0..76 random, rows 77..95 copies of earlier rows: rank 77. */
	for (i = 0; i < r; i++)
		for (j = 0; j < c; j++)
			w[i * c + j] = i < 77 ? (float)rng_normal(&rng) :
			    w[(i - 77) * c + j];
	compare("rank-deficient", w, DT_F32, r, c, 1e-6);
	free(w);
}

/*
 * NaN/Inf in each dtype reach the Gram diagonal; the host counts them.
 * Then a finite matrix of a smaller k, whose Gram matrix reuses the buffer
 * the NaN Gram matrices were left in.
 */
static void
test_nonfinite(void)
{
	static const enum dtype	 dts[] = { DT_F32, DT_F64, DT_BF16, DT_F16,
				    DT_F8_E4M3 };
	struct svd_matrix	 m;
	struct spd_errbuf	 eb;
	unsigned char		*p;
	float			 sv[40], nanf = NAN;
	double			 nand = NAN;
	uint16_t		 h;
	size_t			 j;

	for (j = 0; j < nitems(dts); j++) {
		p = make(50, 40, dts[j]);
		switch (dts[j]) {
		case DT_F32:
			memcpy(p + 4 * 333, &nanf, 4);
			break;
		case DT_F64:
			memcpy(p + 8 * 333, &nand, 8);
			break;
		case DT_BF16:
			h = 0xff80;	/* -Inf */
			memcpy(p + 2 * 333, &h, 2);
			break;
		case DT_F16:
			h = 0x7c00;	/* +Inf */
			memcpy(p + 2 * 333, &h, 2);
			break;
		default:
			p[333] = 0x7f;	/* E4M3 NaN */
			break;
		}
		m = (struct svd_matrix){ p, dts[j], 50, 40 };
		eb.msg[0] = '\0';
		ok(svd_values(gpu, &m, sv, &eb) == SPD_ENONFINITE,
		    "%s NaN/Inf: SPD_ENONFINITE (%s)", dtype_name(dts[j]),
		    eb.msg);
		free(p);
	}
	p = make(60, 39, DT_F32);
	compare("after NaN", p, DT_F32, 60, 39, 1e-4);
	free(p);
}

/* Degenerate shapes and the zero matrix. */
static void
test_shapes(void)
{
	float	v[257], z[16 * 8];
	size_t	i;

	for (i = 0; i < 257; i++)
		v[i] = (float)rng_normal(&rng);
	compare("row", v, DT_F32, 1, 257, 1e-6);
	compare("column", v, DT_F32, 257, 1, 1e-6);
	memset(z, 0, sizeof z);
	{
		struct svd_matrix	m = { z, DT_F32, 16, 8 };
		float			sv[8];

		ok(svd_values(gpu, &m, sv, NULL) == SPD_OK && sv[0] == 0 &&
		    sv[7] == 0, "zero matrix: all values 0");
	}
}

#ifdef SPD_FAKECUDA
/*
 * A failed call leaves nothing queued on the device (svd_backend.h's
 * values()): the n-th call that queues work fails, for each n up to the
 * last of one matrix (multi-panel BF16); each time svd_values() fails and
 * nothing stays queued, and afterwards the context is still right.
 */
static void
test_faults(void)
{
	const size_t		 r = 300, c = 77;
	struct svd_matrix	 m = { NULL, DT_BF16, r, c };
	struct fakecuda_stats	 st;
	struct spd_errbuf	 eb;
	void			*p = make(r, c, DT_BF16);
	float			 sv[77];
	unsigned long		 n, left = 0, ok_rc = 0;
	enum spd_err		 rc = SPD_EINTERNAL;

	m.data = p;
	for (n = 1; rc != SPD_OK && n < 1000; n++) {
		fakecuda_fail(n);
		rc = svd_values(gpu, &m, sv, &eb);
		fakecuda_stats(&st);
		if (st.queued > 0 && left++ == 0)
			printf("#   fault at call %lu (%s): %lu operations left "
			    "queued\n", n, eb.msg, st.queued);
		ok_rc += rc == SPD_EINTERNAL;
	}
	fakecuda_fail(0);
	ok(rc == SPD_OK && ok_rc == n - 2, "a fault at each of the %lu calls "
	    "that queue work: svd_values() fails (%lu times)", n - 2, ok_rc);
	ok(left == 0, "... and leaves nothing queued (%lu times it did)",
	    left);
	compare("after faults", p, DT_BF16, r, c, 1e-4);
	free(p);
}
#endif

/* Opens the backends and runs every test; 0 when cuda cannot run here. */
static int
run(void)
{
	struct svd_opts		o = { "cuda", 0, 0, 1 };
	struct spd_errbuf	eb = { "" };
	struct svd		*a = NULL;
	enum spd_err		rc;

	rc = svd_open(&o, &gpu, &eb);
	if (rc == SPD_ENODEV)
		tap_skip_all(eb.msg);
	if (!ok(rc == SPD_OK, "open cuda (%s)", eb.msg))
		return 0;
	o.backend = "cpu";
	if (!ok(svd_open(&o, &cpu, &eb) == SPD_OK, "open cpu"))
		return 0;
	ok(strcmp(svd_name(gpu), "cuda") == 0, "name cuda");
	o.backend = "auto";
	ok(svd_open(&o, &a, &eb) == SPD_OK && strcmp(svd_name(a), "cuda") == 0,
	    "auto picks cuda");
	svd_close(a);
	test_dtypes("f64");
	test_dtypes(NULL);
	test_fallback();
	test_nonfinite();
	test_shapes();
#ifdef SPD_FAKECUDA
	test_faults();
#endif
	svd_close(gpu);
	svd_close(cpu);
	return 1;
}

#ifdef SPD_FAKECUDA
/* Runs every test once per seed of FAKECUDA_SEEDS (default 1 to 8). */
int
main(void)
{
	const char		*e = getenv("FAKECUDA_SEEDS");
	char			*end;
	unsigned long		 seed, n = 0;
	struct fakecuda_stats	 st;

	if (e == NULL)
		e = "1 2 3 4 5 6 7 8";
	for (;; e = end) {
		seed = strtoul(e, &end, 10);
		if (end == e)
			break;
		printf("# seed %lu\n", seed);
		fakecuda_seed((unsigned)seed);
		rng = RNG_SEED ^ (seed * 0x9e3779b97f4a7c15ULL);
		if (!run())
			break;
		fakecuda_stats(&st);
		ok(st.misuse == 0, "seed %lu: no misuse of the fake device",
		    seed);
		ok(st.reordered > 0, "seed %lu: %lu of %lu operations ran "
		    "before an earlier-issued one of another stream", seed,
		    st.reordered, st.ops);
		n++;
	}
	ok(n > 0, "FAKECUDA_SEEDS names a seed");
	return tap_done();
}
#else
int
main(void)
{
	if (svd_cuda_devices() == 0)
		tap_skip_all("no CUDA device, or no cuda backend here");
	run();
	return tap_done();
}
#endif
