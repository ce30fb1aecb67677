/*
 * svd_cuda_kern.cu: the cuda backend's only device code, the dtype widening
 * of svd_cuda_kern.h. Compiled by nvcc; called from plain C.
 */
#include <stdint.h>

#include "svd_cuda_kern.h"

/* Threads per block, and the most blocks one launch uses (grid-stride). */
#define KERN_THREADS	256
#define KERN_BLOCKS	4096

/* dst[i] = lut[src[i]]: a 1- or 2-byte code through the host's table. */
template <typename S, typename D>
static __global__ void
widen_lut(const S *__restrict__ src, const float *__restrict__ lut,
    size_t n, D *__restrict__ dst)
{
	size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
	size_t step = (size_t)gridDim.x * blockDim.x;

	for (; i < n; i += step)
		dst[i] = (D)lut[src[i]];
}

/* dst[i] = src[i], float32 to float64 (exact). */
static __global__ void
widen_f32(const float *__restrict__ src, size_t n, double *__restrict__ dst)
{
	size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
	size_t step = (size_t)gridDim.x * blockDim.x;

	for (; i < n; i += step)
		dst[i] = (double)src[i];
}

/* Launches widen_lut for codes of type S into float32 or float64. */
template <typename S>
static void
launch_lut(const void *src, const float *lut, size_t n, bool dbl, void *dst,
    unsigned blocks, cudaStream_t s)
{
	if (dbl)
		widen_lut<<<blocks, KERN_THREADS, 0, s>>>((const S *)src, lut, n,
		    (double *)dst);
	else
		widen_lut<<<blocks, KERN_THREADS, 0, s>>>((const S *)src, lut, n,
		    (float *)dst);
}

extern "C" cudaError_t
svd_kern_widen(const void *src, enum svd_kern_src kind, const float *lut,
    size_t n, bool dbl, void *dst, cudaStream_t s)
{
	size_t		nb = (n + KERN_THREADS - 1) / KERN_THREADS;
	unsigned	blocks = nb < KERN_BLOCKS ? (unsigned)nb : KERN_BLOCKS;

	if (n == 0)
		return cudaSuccess;
	switch (kind) {
	case SVD_KERN_LUT8:
		launch_lut<uint8_t>(src, lut, n, dbl, dst, blocks, s);
		break;
	case SVD_KERN_LUT16:
		launch_lut<uint16_t>(src, lut, n, dbl, dst, blocks, s);
		break;
	case SVD_KERN_F32:
		if (!dbl)
			return cudaErrorInvalidValue;
		widen_f32<<<blocks, KERN_THREADS, 0, s>>>((const float *)src,
		    n, (double *)dst);
		break;
	default:
		return cudaErrorInvalidValue;
	}
	return cudaGetLastError();
}
