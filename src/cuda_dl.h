/*
 * cuda_dl.h (private to svd_cuda.c and cuda_dl.c): the cuBLAS and cuSOLVER
 * calls of the cuda backend, resolved at run time with dlopen() from the
 * sonames configure found (CUBLAS_SONAME, CUSOLVER_SONAME), so that a CUDA
 * build starts, and falls back to the cpu backend, on a host without them.
 * The CUDA runtime is linked statically and loads the driver (libcuda.so.1)
 * itself. The only file that includes the CUDA library headers.
 */
#ifndef SPECTRUMD_CUDA_DL_H
#define SPECTRUMD_CUDA_DL_H

#include <cublas_v2.h>
/* CUDA 13's cusolverDn.h declares a function as f(), not f(void). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <cusolverDn.h>
#pragma GCC diagnostic pop

#include "spectrumd/common.h"

/*
 * A pointer typed as the header declares f, named as the header names it:
 * cublas_v2.h maps cublasCreate to cublasCreate_v2, so cuda_dl.cublasCreate
 * is the member cublasCreate_v2, loaded from the symbol "cublasCreate_v2",
 * exactly what a direct link would have used.
 */
#define CUDA_DL_FN(f)	__typeof__(f) *f

/* Every cuBLAS and cuSOLVER call of svd_cuda.c. */
struct cuda_dl {
	CUDA_DL_FN(cublasCreate);
	CUDA_DL_FN(cublasDestroy);
	CUDA_DL_FN(cublasSetStream);
	CUDA_DL_FN(cublasSsyrk);
	CUDA_DL_FN(cublasDsyrk);
	CUDA_DL_FN(cublasGetVectorAsync);
	CUDA_DL_FN(cublasGetStatusString);
	CUDA_DL_FN(cusolverDnCreate);
	CUDA_DL_FN(cusolverDnDestroy);
	CUDA_DL_FN(cusolverDnSetStream);
	CUDA_DL_FN(cusolverDnSsyevd_bufferSize);
	CUDA_DL_FN(cusolverDnDsyevd_bufferSize);
	CUDA_DL_FN(cusolverDnSsyevd);
	CUDA_DL_FN(cusolverDnDsyevd);
};

/* The loaded calls; valid once cuda_dl_load() has returned SPD_OK. */
extern struct cuda_dl cuda_dl;

/*
 * Loads libcublas and libcusolver (once per process; never unloaded) and
 * fills cuda_dl. Returns SPD_OK, or SPD_ENODEV and eb names the library or
 * symbol that is missing, with dlerror()'s text. Thread-safe.
 */
enum spd_err	cuda_dl_load(struct spd_errbuf *eb);

#endif
