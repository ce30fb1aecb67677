/*
 * tensor.h: safetensors dtypes and their conversion to float32. Pure: no
 * I/O, no allocation, reentrant.
 */
#ifndef SPECTRUMD_TENSOR_H
#define SPECTRUMD_TENSOR_H

#include <stdbool.h>
#include <stddef.h>

#include "spectrumd/common.h"

/* Every dtype of the safetensors format (REFERENCE.md). */
enum dtype {
	DT_BOOL, DT_U8, DT_I8, DT_I16, DT_U16, DT_I32, DT_U32, DT_I64, DT_U64,
	DT_F16, DT_BF16, DT_F32, DT_F64, DT_C64,
	DT_F8_E4M3, DT_F8_E5M2, DT_F8_E8M0, DT_F8_E4M3FNUZ, DT_F8_E5M2FNUZ,
	DT_F4, DT_F6_E2M3, DT_F6_E3M2,
	DT_COUNT
};

/*
 * Looks up a dtype by its safetensors name ("BF16"). Returns SPD_OK and *out,
 * or SPD_EFORMAT for a name the format does not define.
 */
enum spd_err	 dtype_parse(const char *name, enum dtype *out);

/* Returns the safetensors name of dt ("BF16"). */
const char	*dtype_name(enum dtype dt);

/* Returns the size of one element in bits (4 for F4, 6 for F6_*, 16 for BF16). */
unsigned	 dtype_bits(enum dtype dt);

/* True when tensor_to_f32() converts dt: F32, F16, BF16, F64, F8_E4M3, F8_E5M2. */
bool		 dtype_is_analyzable(enum dtype dt);

/*
 * Converts n little-endian elements of dtype dt at src to float32 at dst.
 * Exact wherever float32 can hold the value (F64 rounds to nearest).
 * src needs no alignment. Returns the number of NaN/Inf values written
 * (0 for a finite matrix); dt must satisfy dtype_is_analyzable().
 */
size_t		 tensor_to_f32(const void *src, enum dtype dt, size_t n,
		    float *dst);

#endif
