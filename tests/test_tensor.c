/*
 * test_tensor.c: the dtype table and the conversions to float32, checked
 * against known bit patterns and, for every 8- and 16-bit code, against an
 * independent ldexp() formula.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "spectrumd/tensor.h"
#include "tap.h"

/* The safetensors dtype list (REFERENCE.md) with element sizes in bits. */
static const struct {
	const char	*name;
	enum dtype	 dt;
	unsigned	 bits;
	bool		 analyzable;
} names[] = {
	{ "BOOL", DT_BOOL, 8, false },
	{ "U8", DT_U8, 8, false },
	{ "I8", DT_I8, 8, false },
	{ "I16", DT_I16, 16, false },
	{ "U16", DT_U16, 16, false },
	{ "I32", DT_I32, 32, false },
	{ "U32", DT_U32, 32, false },
	{ "I64", DT_I64, 64, false },
	{ "U64", DT_U64, 64, false },
	{ "F16", DT_F16, 16, true },
	{ "BF16", DT_BF16, 16, true },
	{ "F32", DT_F32, 32, true },
	{ "F64", DT_F64, 64, true },
	{ "C64", DT_C64, 64, false },
	{ "F8_E4M3", DT_F8_E4M3, 8, true },
	{ "F8_E5M2", DT_F8_E5M2, 8, true },
	{ "F8_E8M0", DT_F8_E8M0, 8, false },
	{ "F8_E4M3FNUZ", DT_F8_E4M3FNUZ, 8, false },
	{ "F8_E5M2FNUZ", DT_F8_E5M2FNUZ, 8, false },
	{ "F4", DT_F4, 4, false },
	{ "F6_E2M3", DT_F6_E2M3, 6, false },
	{ "F6_E3M2", DT_F6_E3M2, 6, false },
};

static const char *const bad_names[] = {
	"", "bf16", "BF16 ", "F8_E4M3FN", "Q4_K", "F", "FLOAT32", "F8",
};

#define NAN_BITS	0xffffffffu	/* "any NaN" in the tables below */

/* One element, its stored bytes (little-endian) and the float32 bits expected. */
static const struct {
	const char	*what;
	enum dtype	 dt;
	uint64_t	 raw;
	uint32_t	 want;
} cases[] = {
	{ "bf16 1.0", DT_BF16, 0x3f80, 0x3f800000 },
	{ "bf16 -inf", DT_BF16, 0xff80, 0xff800000 },
	{ "bf16 +inf", DT_BF16, 0x7f80, 0x7f800000 },
	{ "bf16 NaN", DT_BF16, 0x7fc0, NAN_BITS },
	{ "bf16 -0", DT_BF16, 0x8000, 0x80000000 },
	{ "bf16 min subnormal 2^-133", DT_BF16, 0x0001, 0x00010000 },
	{ "bf16 -2.5", DT_BF16, 0xc020, 0xc0200000 },
	{ "f16 1.0", DT_F16, 0x3c00, 0x3f800000 },
	{ "f16 subnormal 0x0001 = 2^-24", DT_F16, 0x0001, 0x33800000 },
	{ "f16 -2^-24", DT_F16, 0x8001, 0xb3800000 },
	{ "f16 max subnormal 1023*2^-24", DT_F16, 0x03ff, 0x387fc000 },
	{ "f16 min normal 2^-14", DT_F16, 0x0400, 0x38800000 },
	{ "f16 max 65504", DT_F16, 0x7bff, 0x477fe000 },
	{ "f16 -65504", DT_F16, 0xfbff, 0xc77fe000 },
	{ "f16 +inf", DT_F16, 0x7c00, 0x7f800000 },
	{ "f16 -inf", DT_F16, 0xfc00, 0xff800000 },
	{ "f16 NaN", DT_F16, 0x7e00, NAN_BITS },
	{ "f16 NaN (low payload)", DT_F16, 0x7c01, NAN_BITS },
	{ "f16 +0", DT_F16, 0x0000, 0x00000000 },
	{ "f16 -0", DT_F16, 0x8000, 0x80000000 },
	{ "f16 1/3 rounded 0x3555", DT_F16, 0x3555, 0x3eaaa000 },
	{ "f32 1.0", DT_F32, 0x3f800000, 0x3f800000 },
	{ "f32 subnormal kept", DT_F32, 0x00000001, 0x00000001 },
	{ "f32 -inf", DT_F32, 0xff800000, 0xff800000 },
	{ "f32 NaN", DT_F32, 0x7fc00001, NAN_BITS },
	{ "f64 1.0", DT_F64, 0x3ff0000000000000, 0x3f800000 },
	{ "f64 0.1 rounds to nearest", DT_F64, 0x3fb999999999999a, 0x3dcccccd },
	{ "f64 1+2^-24 ties to even (down)", DT_F64, 0x3ff0000010000000,
	    0x3f800000 },
	{ "f64 1+3*2^-24 ties to even (up)", DT_F64, 0x3ff0000030000000,
	    0x3f800002 },
	{ "f64 FLT_MAX exact", DT_F64, 0x47efffffe0000000, 0x7f7fffff },
	{ "f64 1e39 overflows to inf", DT_F64, 0x48078287f49c4a1d, 0x7f800000 },
	{ "f64 -1e39 overflows to -inf", DT_F64, 0xc8078287f49c4a1d,
	    0xff800000 },
	{ "f64 1e-46 underflows to 0", DT_F64, 0x366244ce242c5561, 0x00000000 },
	{ "f64 2^-149 is the min subnormal", DT_F64, 0x36a0000000000000,
	    0x00000001 },
	{ "f64 NaN", DT_F64, 0x7ff8000000000000, NAN_BITS },
	{ "f8 e4m3 1.0", DT_F8_E4M3, 0x38, 0x3f800000 },
	{ "f8 e4m3 0x7E = 448", DT_F8_E4M3, 0x7e, 0x43e00000 },
	{ "f8 e4m3 0xFE = -448", DT_F8_E4M3, 0xfe, 0xc3e00000 },
	{ "f8 e4m3 0x7F NaN", DT_F8_E4M3, 0x7f, NAN_BITS },
	{ "f8 e4m3 0xFF NaN", DT_F8_E4M3, 0xff, NAN_BITS },
	{ "f8 e4m3 0x78 = 256 (no inf)", DT_F8_E4M3, 0x78, 0x43800000 },
	{ "f8 e4m3 min subnormal 2^-9", DT_F8_E4M3, 0x01, 0x3b000000 },
	{ "f8 e4m3 max subnormal 7*2^-9", DT_F8_E4M3, 0x07, 0x3c600000 },
	{ "f8 e4m3 min normal 2^-6", DT_F8_E4M3, 0x08, 0x3c800000 },
	{ "f8 e4m3 -0", DT_F8_E4M3, 0x80, 0x80000000 },
	{ "f8 e5m2 1.0", DT_F8_E5M2, 0x3c, 0x3f800000 },
	{ "f8 e5m2 0x7C = inf", DT_F8_E5M2, 0x7c, 0x7f800000 },
	{ "f8 e5m2 0xFC = -inf", DT_F8_E5M2, 0xfc, 0xff800000 },
	{ "f8 e5m2 0x7D NaN", DT_F8_E5M2, 0x7d, NAN_BITS },
	{ "f8 e5m2 max 57344", DT_F8_E5M2, 0x7b, 0x47600000 },
	{ "f8 e5m2 min subnormal 2^-16", DT_F8_E5M2, 0x01, 0x37800000 },
	{ "f8 e5m2 min normal 2^-14", DT_F8_E5M2, 0x04, 0x38800000 },
};

/* Returns the float32 bits of f. */
static uint32_t
bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof u);
	return u;
}

/* Encodes v little-endian into size bytes at p. */
static void
put_le(unsigned char *p, uint64_t v, size_t size)
{
	for (size_t i = 0; i < size; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Independent reference: IEEE binary16 value of h. */
static double
ref_f16(unsigned h)
{
	unsigned	e = (h >> 10) & 0x1f, m = h & 0x3ff;
	double		v;

	if (e == 0x1f)
		v = m ? NAN : INFINITY;
	else if (e == 0)
		v = ldexp(m, -24);
	else
		v = ldexp(1024 + m, (int)e - 25);
	return h & 0x8000 ? -v : v;
}

/* Independent reference: bfloat16 value of h. */
static double
ref_bf16(unsigned h)
{
	unsigned	e = (h >> 7) & 0xff, m = h & 0x7f;
	double		v;

	if (e == 0xff)
		v = m ? NAN : INFINITY;
	else if (e == 0)
		v = ldexp(m, -133);
	else
		v = ldexp(128 + m, (int)e - 134);
	return h & 0x8000 ? -v : v;
}

/* Independent reference: F8_E4M3 (fn) value of b. */
static double
ref_e4m3(unsigned b)
{
	unsigned	e = (b >> 3) & 0xf, m = b & 7;
	double		v;

	if (e == 0xf && m == 7)
		v = NAN;
	else if (e == 0)
		v = ldexp(m, -9);
	else
		v = ldexp(8 + m, (int)e - 10);
	return b & 0x80 ? -v : v;
}

/* Independent reference: F8_E5M2 value of b. */
static double
ref_e5m2(unsigned b)
{
	unsigned	e = (b >> 2) & 0x1f, m = b & 3;
	double		v;

	if (e == 0x1f)
		v = m ? NAN : INFINITY;
	else if (e == 0)
		v = ldexp(m, -16);
	else
		v = ldexp(4 + m, (int)e - 17);
	return b & 0x80 ? -v : v;
}

/* True when got is exactly want (same sign of zero; NaN matches NaN). */
static bool
same(float got, double want)
{
	if (isnan(want))
		return isnan(got);
	return (double)got == want && !signbit(got) == !signbit(want);
}

/* Converts all 2^esz codes of a dtype and compares them to ref(). */
static void
exhaustive(enum dtype dt, unsigned ncodes, double (*ref)(unsigned))
{
	static unsigned char	src[2 * 65536];
	static float		dst[65536];
	size_t			esz = dtype_bits(dt) / 8, nf, want_nf = 0;
	unsigned		i, bad = 0, first_bad = 0;

	for (i = 0; i < ncodes; i++) {
		put_le(src + esz * i, i, esz);
		want_nf += !isfinite(ref(i));
	}
	nf = tensor_to_f32(src, dt, ncodes, dst);
	for (i = 0; i < ncodes; i++) {
		if (!same(dst[i], ref(i)) && bad++ == 0)
			first_bad = i;
	}
	ok(bad == 0, "%s: all %u codes match the ldexp reference",
	    dtype_name(dt), ncodes);
	if (bad != 0)
		printf("#   %u wrong, first code 0x%x: got %a want %a\n", bad,
		    first_bad, (double)dst[first_bad], ref(first_bad));
	ok(nf == want_nf, "%s: non-finite count %zu == %zu", dtype_name(dt),
	    nf, want_nf);
}

/* Checks the name table both ways and the element sizes. */
static void
test_names(void)
{
	enum dtype	dt;
	size_t		i, nan = 0;

	ok(nitems(names) == DT_COUNT, "the table covers all %d dtypes",
	    DT_COUNT);
	for (i = 0; i < nitems(names); i++) {
		dt = DT_COUNT;
		ok(dtype_parse(names[i].name, &dt) == SPD_OK &&
		    dt == names[i].dt, "parse \"%s\"", names[i].name);
		ok(strcmp(dtype_name(names[i].dt), names[i].name) == 0,
		    "name of %s round-trips", names[i].name);
		ok(dtype_bits(names[i].dt) == names[i].bits, "%s is %u bits",
		    names[i].name, names[i].bits);
		ok(dtype_is_analyzable(names[i].dt) == names[i].analyzable,
		    "%s is%s analysable", names[i].name,
		    names[i].analyzable ? "" : " not");
		nan += names[i].analyzable;
	}
	ok(nan == 6, "exactly six analysable dtypes");
	for (i = 0; i < nitems(bad_names); i++)
		ok(dtype_parse(bad_names[i], &dt) == SPD_EFORMAT,
		    "\"%s\" is rejected", bad_names[i]);
}

/* Checks the known bit patterns, one element at a time. */
static void
test_cases(void)
{
	unsigned char	buf[8];
	float		f;
	size_t		i, nf;
	bool		want_nf;

	for (i = 0; i < nitems(cases); i++) {
		put_le(buf, cases[i].raw, dtype_bits(cases[i].dt) / 8);
		f = 12345.0f;
		nf = tensor_to_f32(buf, cases[i].dt, 1, &f);
		if (cases[i].want == NAN_BITS)
			ok(isnan(f), "%s: NaN", cases[i].what);
		else if (!ok(bits(f) == cases[i].want, "%s: bits 0x%08x",
		    cases[i].what, cases[i].want))
			printf("#   got 0x%08x (%a)\n", bits(f), (double)f);
		want_nf = cases[i].want == NAN_BITS ||
		    (cases[i].want & 0x7fffffffu) == 0x7f800000u;
		ok(nf == (size_t)want_nf, "%s: non-finite count %d",
		    cases[i].what, (int)want_nf);
	}
}

/*
 * Converts n elements from an odd offset and in one long run (crossing
 * the internal blocks) and compares with one-at-a-time conversion.
 */
static void
test_unaligned(void)
{
	static const enum dtype dts[] = {
		DT_BF16, DT_F16, DT_F32, DT_F64, DT_F8_E4M3, DT_F8_E5M2
	};
	enum { N = 3 * 256 + 17 };
	static unsigned char	raw[8 * N + 16];
	static float		a[N], b[N];
	uint64_t		x = 0x9e3779b97f4a7c15u;
	size_t			d, i, esz, nf, nf1, bad;

	for (d = 0; d < nitems(dts); d++) {
		esz = dtype_bits(dts[d]) / 8;
		for (i = 0; i < esz * N + 16; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			raw[i] = (unsigned char)x;
		}
		for (size_t off = 1; off < 8; off += 2) {
			nf = tensor_to_f32(raw + off, dts[d], N, a);
			nf1 = bad = 0;
			for (i = 0; i < N; i++) {
				unsigned char one[8];

				memcpy(one, raw + off + esz * i, esz);
				nf1 += tensor_to_f32(one, dts[d], 1, &b[i]);
				bad += bits(a[i]) != bits(b[i]);
			}
			ok(bad == 0 && nf == nf1, "%s: %d elements at offset "
			    "%zu match element-wise conversion (%zu "
			    "non-finite)", dtype_name(dts[d]), N, off, nf);
		}
	}
}

/* Plants NaN/Inf at chosen positions (tail and block edges) and counts them. */
static void
test_nonfinite(void)
{
	static const size_t	pos[] = { 0, 1, 255, 256, 511, 700, 784 };
	enum { N = 785 };
	static uint16_t		h[N];
	static uint32_t		u[N];
	static float		f[N];
	size_t			i, nf;

	for (i = 0; i < N; i++) {
		h[i] = 0x3f80;		/* bf16 1.0 */
		u[i] = 0x3f800000;
	}
	for (i = 0; i < nitems(pos); i++) {
		h[pos[i]] = i % 2 ? 0xff80 : 0x7fc1;
		u[pos[i]] = i % 2 ? 0x7f800000 : 0xffc00000;
	}
	nf = tensor_to_f32(h, DT_BF16, N, f);
	ok(nf == nitems(pos), "bf16: %zu non-finite of %d counted (want %zu)",
	    nf, N, nitems(pos));
	nf = tensor_to_f32(u, DT_F32, N, f);
	ok(nf == nitems(pos), "f32: %zu non-finite of %d counted (want %zu)",
	    nf, N, nitems(pos));
	ok(tensor_to_f32(h, DT_BF16, 0, f) == 0, "n = 0 converts nothing");
	nf = tensor_to_f32(h, DT_BF16, 255, f);
	ok(nf == 2, "bf16 first 255 elements: 2 non-finite (got %zu)", nf);
}

int
main(void)
{
	test_names();
	test_cases();
	exhaustive(DT_F16, 65536, ref_f16);
	exhaustive(DT_BF16, 65536, ref_bf16);
	exhaustive(DT_F8_E4M3, 256, ref_e4m3);
	exhaustive(DT_F8_E5M2, 256, ref_e5m2);
	test_unaligned();
	test_nonfinite();
	return tap_done();
}
