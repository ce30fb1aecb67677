/*
 * tensor.c: the safetensors dtype table and the conversions of the
 * analysable dtypes to float32. Pure: no I/O, no allocation, no global
 * state. Every conversion loads through memcpy (src may be unaligned) and
 * counts non-finite outputs in the same pass by testing the float32
 * exponent bits, so the inner loops stay branch-free and vectorise.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "spectrumd/tensor.h"

/* Elements per inner block: a constant trip count the vectoriser likes. */
#define CONV_BLOCK	256

static const struct {
	const char	*name;
	unsigned	 bits;
	bool		 analyzable;
} dtypes[DT_COUNT] = {
	[DT_BOOL] = { "BOOL", 8, false },
	[DT_U8] = { "U8", 8, false },
	[DT_I8] = { "I8", 8, false },
	[DT_I16] = { "I16", 16, false },
	[DT_U16] = { "U16", 16, false },
	[DT_I32] = { "I32", 32, false },
	[DT_U32] = { "U32", 32, false },
	[DT_I64] = { "I64", 64, false },
	[DT_U64] = { "U64", 64, false },
	[DT_F16] = { "F16", 16, true },
	[DT_BF16] = { "BF16", 16, true },
	[DT_F32] = { "F32", 32, true },
	[DT_F64] = { "F64", 64, true },
	[DT_C64] = { "C64", 64, false },
	[DT_F8_E4M3] = { "F8_E4M3", 8, true },
	[DT_F8_E5M2] = { "F8_E5M2", 8, true },
	[DT_F8_E8M0] = { "F8_E8M0", 8, false },
	[DT_F8_E4M3FNUZ] = { "F8_E4M3FNUZ", 8, false },
	[DT_F8_E5M2FNUZ] = { "F8_E5M2FNUZ", 8, false },
	[DT_F4] = { "F4", 4, false },
	[DT_F6_E2M3] = { "F6_E2M3", 6, false },
	[DT_F6_E3M2] = { "F6_E3M2", 6, false },
};

/* Looks up a dtype by its exact (case-sensitive) safetensors name. */
enum spd_err
dtype_parse(const char *name, enum dtype *out)
{
	size_t i;

	if (name == NULL)
		return SPD_EFORMAT;
	for (i = 0; i < DT_COUNT; i++) {
		if (strcmp(dtypes[i].name, name) == 0) {
			*out = (enum dtype)i;
			return SPD_OK;
		}
	}
	return SPD_EFORMAT;
}

/* Returns the safetensors name of dt, or "?" for an out-of-range value. */
const char *
dtype_name(enum dtype dt)
{
	if ((unsigned)dt >= DT_COUNT)
		return "?";
	return dtypes[dt].name;
}

/* Returns the element size in bits, 0 for an out-of-range value. */
unsigned
dtype_bits(enum dtype dt)
{
	if ((unsigned)dt >= DT_COUNT)
		return 0;
	return dtypes[dt].bits;
}

/* True for the dtypes tensor_to_f32() converts. */
bool
dtype_is_analyzable(enum dtype dt)
{
	if ((unsigned)dt >= DT_COUNT)
		return false;
	return dtypes[dt].analyzable;
}

/* 1 when the float32 bit pattern u is an Inf or a NaN. */
static inline unsigned
bits_nonfinite(uint32_t u)
{
	return (u & 0x7f800000u) == 0x7f800000u;
}

/*
 * Converts IEEE binary16 bits to binary32 bits, exactly (F. Giesen's method,
 * made branch-free so the loops vectorise): rebias the exponent, widen
 * Inf/NaN, and renormalise zeros/subnormals with one exact float subtraction.
 */
static inline uint32_t
half_to_bits(uint16_t h)
{
	uint32_t	u = (uint32_t)(h & 0x7fffu) << 13;
	uint32_t	exp = u & 0x0f800000u;
	uint32_t	infnan = -(uint32_t)(exp == 0x0f800000u);
	uint32_t	tiny = -(uint32_t)(exp == 0);
	uint32_t	sub;
	float		f;

	u += (uint32_t)(127 - 15) << 23;
	u += infnan & (uint32_t)(128 - 16) << 23;
	sub = u + (1u << 23);
	memcpy(&f, &sub, sizeof f);
	f -= 0x1p-14f;
	memcpy(&sub, &f, sizeof sub);
	u = (u & ~tiny) | (sub & tiny);
	return u | (uint32_t)(h & 0x8000u) << 16;
}

/* One BF16 element: the top half of a float32. */
static inline uint32_t
load_bf16(const unsigned char *p)
{
	uint16_t h;

	memcpy(&h, p, sizeof h);
	return (uint32_t)h << 16;
}

/* One F16 element. */
static inline uint32_t
load_f16(const unsigned char *p)
{
	uint16_t h;

	memcpy(&h, p, sizeof h);
	return half_to_bits(h);
}

/* One F32 element. */
static inline uint32_t
load_f32(const unsigned char *p)
{
	uint32_t u;

	memcpy(&u, p, sizeof u);
	return u;
}

/* One F64 element, rounded to nearest (overflow gives ±Inf). */
static inline uint32_t
load_f64(const unsigned char *p)
{
	double		d;
	float		f;
	uint32_t	u;

	memcpy(&d, p, sizeof d);
	f = (float)d;
	memcpy(&u, &f, sizeof u);
	return u;
}

/*
 * Defines conv_<T>(src, n, dst): full blocks of CONV_BLOCK elements (a
 * constant trip count, restrict pointers and an unsigned counter: the shape
 * GCC -O2 vectorises), then the tail.
 */
#define DEFINE_CONV(T, ESZ)						\
static inline unsigned							\
block_##T(const unsigned char *restrict s, size_t m,			\
    float *restrict d)							\
{									\
	unsigned	nf = 0;						\
	size_t		j;						\
									\
	for (j = 0; j < m; j++) {					\
		uint32_t u = load_##T(s + (ESZ) * j);			\
									\
		memcpy(d + j, &u, sizeof u);				\
		nf += bits_nonfinite(u);				\
	}								\
	return nf;							\
}									\
									\
static size_t								\
conv_##T(const unsigned char *restrict s, size_t n, float *restrict d)	\
{									\
	size_t	nf = 0, i = 0;						\
									\
	for (; n - i >= CONV_BLOCK; i += CONV_BLOCK)			\
		nf += block_##T(s + (ESZ) * i, CONV_BLOCK, d + i);	\
	return nf + block_##T(s + (ESZ) * i, n - i, d + i);		\
}

DEFINE_CONV(bf16, 2)
DEFINE_CONV(f16, 2)
DEFINE_CONV(f32, 4)
DEFINE_CONV(f64, 8)

/*
 * Value of an F8_E4M3 ("fn": bias 7, no Inf, S.1111.111 is NaN, max 448)
 * byte as float32 bits.
 */
static uint32_t
e4m3_to_bits(unsigned b)
{
	unsigned	e = (b >> 3) & 0xfu, m = b & 7u;
	uint32_t	sign = (uint32_t)(b & 0x80u) << 24;
	float		f;
	uint32_t	u;

	if (e == 0xfu && m == 7u)
		return sign | 0x7fc00000u;
	if (e == 0) {
		f = (float)m * 0x1p-9f;			/* m/8 · 2^(1-7) */
		memcpy(&u, &f, sizeof u);
		return sign | u;
	}
	/* (1 + m/8) · 2^(e-7): rebias into a float32 exponent. */
	return sign | (uint32_t)(e - 7 + 127) << 23 | (uint32_t)m << 20;
}

/* F8 → F32 through a 256-entry table built on the stack for this call. */
static size_t
conv_f8(const unsigned char *restrict src, enum dtype dt, size_t n,
    float *restrict dst)
{
	uint32_t	lut[256];
	size_t		nf = 0, i;

	for (i = 0; i < 256; i++) {
		/* F8_E5M2 is the top byte of an IEEE half. */
		lut[i] = dt == DT_F8_E4M3 ? e4m3_to_bits((unsigned)i) :
		    half_to_bits((uint16_t)(i << 8));
	}
	for (i = 0; i < n; i++) {
		uint32_t u = lut[src[i]];

		memcpy(dst + i, &u, sizeof u);
		nf += bits_nonfinite(u);
	}
	return nf;
}

/* Converts n elements of dt at src to float32; returns the non-finite count. */
size_t
tensor_to_f32(const void *src, enum dtype dt, size_t n, float *dst)
{
	const unsigned char *s = src;

	switch (dt) {
	case DT_BF16:
		return conv_bf16(s, n, dst);
	case DT_F16:
		return conv_f16(s, n, dst);
	case DT_F32:
		return conv_f32(s, n, dst);
	case DT_F64:
		return conv_f64(s, n, dst);
	case DT_F8_E4M3:
	case DT_F8_E5M2:
		return conv_f8(s, dt, n, dst);
	default:
		break;
	}
	/* Contract broken (dt not analysable): make it loud, not silent. */
	for (size_t i = 0; i < n; i++)
		dst[i] = __builtin_nanf("");
	return n;
}
