/*
 * svd_cuda_kern.h (private to svd_cuda.c): the cuda backend's device
 * kernels, in svd_cuda_kern.cu (nvcc). Every analyzable dtype goes up to
 * the device as stored and is widened there (DESIGN.md §6).
 */
#ifndef SPECTRUMD_SVD_CUDA_KERN_H
#define SPECTRUMD_SVD_CUDA_KERN_H

#include <stdbool.h>
#include <stddef.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a source element is. */
enum svd_kern_src {
	SVD_KERN_LUT8,		/* a 1-byte code: F8_E4M3, F8_E5M2 */
	SVD_KERN_LUT16,		/* a 2-byte little-endian code: BF16, F16 */
	SVD_KERN_F32		/* a float32 */
};

/*
 * Queues on stream s the widening of the n elements at src into float32
 * (dbl false) or float64 (dbl true) at dst, all device pointers. A code is
 * replaced by lut[code], a device table of 256 or 65536 float32 values
 * the host filled with tensor_to_f32(), so the device converts exactly as
 * the host does; a float32 becomes a float64 (SVD_KERN_F32 needs dbl).
 * Returns the launch's error (cudaErrorInvalidValue for F32 without dbl).
 */
cudaError_t	svd_kern_widen(const void *src, enum svd_kern_src kind,
		    const float *lut, size_t n, bool dbl, void *dst,
		    cudaStream_t s);

#ifdef __cplusplus
}
#endif

#endif
