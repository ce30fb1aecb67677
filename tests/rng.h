/*
 * rng.h: the tests' small deterministic random numbers: xorshift64*
 * uniforms in (0, 1) and Box-Muller normals, on a state the caller owns
 * (any nonzero seed).
 */
#ifndef SPD_TESTS_RNG_H
#define SPD_TESTS_RNG_H

#include <math.h>
#include <stdint.h>

/* A uniform double in (0, 1) (xorshift64*); *s must not be 0. */
static inline double
rng_uniform(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((*s * 0x2545f4914f6cdd1dULL >> 11) + 0.5) /
	    9007199254740992.0;
}

/* A standard normal deviate (Box-Muller). */
static inline double
rng_normal(uint64_t *s)
{
	double u = rng_uniform(s);

	return sqrt(-2 * log(u)) * cos(2 * M_PI * rng_uniform(s));
}

#endif
