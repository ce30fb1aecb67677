/*
 * svd_cuda.c: singular values on an NVIDIA GPU with cuBLAS + cuSOLVER, the
 * only C file that includes the CUDA runtime's header (DESIGN.md §6). The
 * runtime is linked statically; cuBLAS and cuSOLVER are called through
 * cuda_dl (loaded at run time, once a GPU is seen). The dtype widening is
 * the one kernel, in svd_cuda_kern.cu.
 *
 * Route: the matrix goes up as stored, one panel of its longer side at a
 * time (svd_panels in svd_kit.h): the host copies panel p into pinned
 * slot p % 2 while the device uploads and works on panel p - 1; on the
 * device the panel is widened (bf16/fp16/fp8 through a table the host
 * filled with tensor_to_f32(), so both convert alike) and syrk adds its
 * Gram matrix. Fast route (dbl false): float32 Gram (cublasSsyrk), widened
 * to float64 on the device, cusolverDnDsyevd values only, s = √max(λ, 0).
 * dbl (F64 matrices, and where the bound of docs/snr-error-bound.md cannot
 * vouch for the fast route, svd.c): float64 panels,
 * cublasDsyrk, Dsyevd. On an H200 the faster routes missed the 1e-5 SNR
 * contract: a tensor-core cublasGemmEx Gram straight from BF16, and
 * cusolverDnSsyevd (SPECTRUMD_CUDA_EIG=f32 keeps it, for measurements).
 * NaN/Inf reach the Gram diagonal, which is checked before the solve.
 *
 * Device memory per context is bounded by the panels, not the matrix: two
 * stored panels, one widened panel, the Gram matrix (k² float32 + float64)
 * and the solver's workspace; the host side holds two pinned panels.
 */
#include "config.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/common.h"
#include "spectrumd/svd.h"
#include "spectrumd/tensor.h"
#include "cuda_dl.h"
#include "svd_backend.h"
#include "svd_kit.h"
#include "svd_cuda_kern.h"

/*
 * Elements per panel (a bf16 panel is 8 MiB), and the narrowest panel; the
 * fake-device test (tests/fakecuda) builds with small ones.
 */
#ifndef CUDA_PANEL
#define CUDA_PANEL	(1u << 22)
#endif
#ifndef CUDA_PANEL_MIN
#define CUDA_PANEL_MIN	256
#endif
/* Entries of the widening table: every 16-bit code. */
#define CUDA_LUT	65536

/* One worker's device state: streams, handles, cached buffers. */
struct cuda_ctx {
	int			 device;
	cudaStream_t		 stream;	/* widening, syrk, solve */
	cudaStream_t		 copy;		/* host → device panels */
	cudaEvent_t		 up[2];		/* slot i's upload is done */
	cudaEvent_t		 used[2];	/* slot i's device panel is read */
	cublasHandle_t		 blas;
	cusolverDnHandle_t	 solver;
	void			*pin[2];	/* pinned host panels */
	size_t			 pin_cap[2];
	void			*d_raw[2];	/* device panels, as stored */
	size_t			 raw_cap[2];
	void			*d_pan;		/* one panel, widened */
	size_t			 pan_cap;
	float			*d_lut;		/* CUDA_LUT floats */
	enum dtype		 lut_dt;	/* what d_lut holds; DT_COUNT: none */
	void			*d_g;		/* k × k Gram matrix */
	size_t			 g_cap;
	double			*d_g64;		/* the float32 Gram, widened */
	size_t			 g64_cap;
	void			*d_w;		/* k eigenvalues */
	size_t			 w_cap;
	void			*d_work;	/* syevd workspace */
	size_t			 work_cap;
	int			*d_info;
	float			*h_tmp;		/* host conversions */
	size_t			 htmp_cap;
	void			*h_w;		/* eigenvalues or diagonal */
	size_t			 hw_cap;
};

/* The Gram matrix of one call: panels, precision, where it is. */
struct cuda_geom {
	struct svd_panels	pl;
	bool			dbl;		/* float64 Gram */
};

/* Turns a CUDA runtime error into an spd_err. */
static enum spd_err
cuda_rt(cudaError_t e, const char *call, struct spd_errbuf *eb)
{
	if (e == cudaSuccess)
		return SPD_OK;
	(void)cudaGetLastError();	/* clear it for the next call */
	return spd_fail(eb, e == cudaErrorMemoryAllocation ? SPD_ENOMEM :
	    SPD_EINTERNAL, "cuda: %s failed: %s", call, cudaGetErrorString(e));
}

/* Turns a cuBLAS status into an spd_err. */
static enum spd_err
cuda_blas(cublasStatus_t s, const char *call, struct spd_errbuf *eb)
{
	if (s == CUBLAS_STATUS_SUCCESS)
		return SPD_OK;
	return spd_fail(eb, s == CUBLAS_STATUS_ALLOC_FAILED ? SPD_ENOMEM :
	    SPD_EINTERNAL, "cuda: %s failed: %s", call,
	    cuda_dl.cublasGetStatusString(s));
}

/* Returns the name of a cuSOLVER status (the library has no such call). */
static const char *
cuda_solver_str(cusolverStatus_t s)
{
	switch (s) {
	case CUSOLVER_STATUS_NOT_INITIALIZED:
		return "not initialized";
	case CUSOLVER_STATUS_ALLOC_FAILED:
		return "allocation failed";
	case CUSOLVER_STATUS_INVALID_VALUE:
		return "invalid value";
	case CUSOLVER_STATUS_ARCH_MISMATCH:
		return "architecture mismatch";
	case CUSOLVER_STATUS_EXECUTION_FAILED:
		return "execution failed";
	case CUSOLVER_STATUS_INTERNAL_ERROR:
		return "internal error";
	case CUSOLVER_STATUS_NOT_SUPPORTED:
		return "not supported";
	default:
		return "unknown status";
	}
}

/* Turns a cuSOLVER status into an spd_err. */
static enum spd_err
cuda_solver(cusolverStatus_t s, const char *call, struct spd_errbuf *eb)
{
	if (s == CUSOLVER_STATUS_SUCCESS)
		return SPD_OK;
	return spd_fail(eb, s == CUSOLVER_STATUS_ALLOC_FAILED ? SPD_ENOMEM :
	    SPD_EINTERNAL, "cuda: %s failed: %s (%d)", call,
	    cuda_solver_str(s), (int)s);
}

/* Makes the device buffer *p hold n × esz bytes; contents are not kept. */
static enum spd_err
cuda_grow(void **p, size_t *cap, size_t n, size_t esz, struct spd_errbuf *eb)
{
	size_t		bytes;
	enum spd_err	rc;

	if (__builtin_mul_overflow(n, esz, &bytes))
		return spd_fail(eb, SPD_ENOMEM,
		    "cuda: %zu × %zu bytes overflow", n, esz);
	if (bytes <= *cap)
		return SPD_OK;
	cudaFree(*p);
	*p = NULL;
	*cap = 0;
	rc = cuda_rt(cudaMalloc(p, bytes), "cudaMalloc", eb);
	if (rc == SPD_OK)
		*cap = bytes;
	return rc;
}

/* The backend's devices(): the number of visible CUDA devices. */
static int
cuda_count(void)
{
	int n = 0;

	if (cudaGetDeviceCount(&n) != cudaSuccess) {
		(void)cudaGetLastError();
		return 0;
	}
	return n;
}

/*
 * SPD_OK when a CUDA device is visible, else SPD_ENODEV and why: plainly
 * "no GPU" when there is no NVIDIA driver or no device, with the detail
 * when named (the backend was asked for by name).
 */
static enum spd_err
cuda_probe_device(bool named, struct spd_errbuf *eb)
{
	cudaError_t	e;
	int		n = 0, drv = 0, rt = 0;

	e = cudaGetDeviceCount(&n);
	if (e == cudaSuccess && n > 0)
		return SPD_OK;
	(void)cudaGetLastError();
	if (e == cudaErrorInsufficientDriver) {
		/* Also what the runtime says when libcuda.so.1 is absent. */
		(void)cudaDriverGetVersion(&drv);
		(void)cudaRuntimeGetVersion(&rt);
		if (drv > 0)
			return spd_fail(eb, SPD_ENODEV, "cuda: the NVIDIA "
			    "driver supports CUDA %d.%d, this build needs %d.%d",
			    drv / 1000, drv % 1000 / 10, rt / 1000,
			    rt % 1000 / 10);
		return spd_fail(eb, SPD_ENODEV, "%s", named ? "cuda: no GPU: "
		    "no NVIDIA driver (libcuda.so.1 not found)" : "no GPU");
	}
	if (e == cudaSuccess || e == cudaErrorNoDevice)
		return spd_fail(eb, SPD_ENODEV, "%s", named ? "cuda: no GPU: "
		    "the NVIDIA driver sees no device" : "no GPU");
	return spd_fail(eb, SPD_ENODEV, "cuda: no usable device "
	    "(cudaGetDeviceCount: %s)", cudaGetErrorString(e));
}

/*
 * SPD_OK when a device is visible and cuBLAS and cuSOLVER load, else
 * SPD_ENODEV and why. The libraries are loaded only once a device is seen,
 * so a host without a GPU never maps them; named also checks them there and
 * says all that is missing.
 */
static enum spd_err
cuda_probe(bool named, struct spd_errbuf *eb)
{
	struct spd_errbuf	dev, lib;
	enum spd_err		rc;

	rc = cuda_probe_device(named, &dev);
	if (rc != SPD_OK && !named)
		return spd_fail(eb, rc, "%s", dev.msg);
	if (cuda_dl_load(&lib) != SPD_OK)
		return rc == SPD_OK ? spd_fail(eb, SPD_ENODEV, "%s", lib.msg) :
		    spd_fail(eb, SPD_ENODEV, "%s; %s", dev.msg, lib.msg);
	if (rc != SPD_OK)
		return spd_fail(eb, rc, "%s", dev.msg);
	return SPD_OK;
}

/* Makes the pinned host buffer *p hold bytes; contents are not kept. */
static enum spd_err
pinned_grow(void **p, size_t *cap, size_t bytes, struct spd_errbuf *eb)
{
	enum spd_err rc;

	if (bytes <= *cap)
		return SPD_OK;
	cudaFreeHost(*p);
	*p = NULL;
	*cap = 0;
	rc = cuda_rt(cudaHostAlloc(p, bytes, cudaHostAllocDefault),
	    "cudaHostAlloc", eb);
	if (rc == SPD_OK)
		*cap = bytes;
	return rc;
}

/* Releases a context: buffers, handles, streams. NULL-safe. */
static void
cuda_ctx_free(void *ctx)
{
	struct cuda_ctx	*c = ctx;
	int		 i;

	if (c == NULL)
		return;
	(void)cudaSetDevice(c->device);
	if (c->copy != NULL)
		(void)cudaStreamSynchronize(c->copy);
	if (c->stream != NULL)
		(void)cudaStreamSynchronize(c->stream);
	for (i = 0; i < 2; i++) {
		cudaFreeHost(c->pin[i]);
		cudaFree(c->d_raw[i]);
		if (c->up[i] != NULL)
			cudaEventDestroy(c->up[i]);
		if (c->used[i] != NULL)
			cudaEventDestroy(c->used[i]);
	}
	cudaFree(c->d_pan);
	cudaFree(c->d_lut);
	cudaFree(c->d_g);
	cudaFree(c->d_g64);
	cudaFree(c->d_w);
	cudaFree(c->d_work);
	cudaFree(c->d_info);
	if (c->solver != NULL)
		cuda_dl.cusolverDnDestroy(c->solver);
	if (c->blas != NULL)
		cuda_dl.cublasDestroy(c->blas);
	if (c->stream != NULL)
		cudaStreamDestroy(c->stream);
	if (c->copy != NULL)
		cudaStreamDestroy(c->copy);
	free(c->h_tmp);
	free(c->h_w);
	free(c);
}

/* Creates the streams, events and handles of a context on o->device. */
static enum spd_err
cuda_ctx_new(const struct svd_opts *o, void **ctx, struct spd_errbuf *eb)
{
	struct cuda_ctx	*c;
	int		 n = cuda_count(), dev = o != NULL ? o->device : 0;
	int		 i;
	enum spd_err	 rc;

	rc = cuda_dl_load(eb);		/* loaded by cuda_probe() */
	if (rc != SPD_OK)
		return rc;
	if (dev < 0 || dev >= n)
		return spd_fail(eb, SPD_ENODEV,
		    "cuda: device %d not present (%d visible)", dev, n);
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return spd_fail(eb, SPD_ENOMEM, "cuda: out of memory");
	c->device = dev;
	c->lut_dt = DT_COUNT;
	rc = cuda_rt(cudaSetDevice(dev), "cudaSetDevice", eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaStreamCreateWithFlags(&c->stream,
		    cudaStreamNonBlocking), "cudaStreamCreate", eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaStreamCreateWithFlags(&c->copy,
		    cudaStreamNonBlocking), "cudaStreamCreate", eb);
	for (i = 0; i < 2 && rc == SPD_OK; i++) {
		rc = cuda_rt(cudaEventCreateWithFlags(&c->up[i],
		    cudaEventDisableTiming), "cudaEventCreate", eb);
		if (rc == SPD_OK)
			rc = cuda_rt(cudaEventCreateWithFlags(&c->used[i],
			    cudaEventDisableTiming), "cudaEventCreate", eb);
	}
	if (rc == SPD_OK)
		rc = cuda_blas(cuda_dl.cublasCreate(&c->blas), "cublasCreate",
		    eb);
	if (rc == SPD_OK)
		rc = cuda_blas(cuda_dl.cublasSetStream(c->blas, c->stream),
		    "cublasSetStream", eb);
	if (rc == SPD_OK)
		rc = cuda_solver(cuda_dl.cusolverDnCreate(&c->solver),
		    "cusolverDnCreate", eb);
	if (rc == SPD_OK)
		rc = cuda_solver(cuda_dl.cusolverDnSetStream(c->solver,
		    c->stream), "cusolverDnSetStream", eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaMalloc((void **)&c->d_info, sizeof(int)),
		    "cudaMalloc", eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaMalloc((void **)&c->d_lut,
		    CUDA_LUT * sizeof(float)), "cudaMalloc", eb);
	if (rc != SPD_OK) {
		cuda_ctx_free(c);
		return rc;
	}
	*ctx = c;
	return SPD_OK;
}

/* How the kernel widens dtype dt (F64 is never widened). */
static enum svd_kern_src
cuda_src_kind(enum dtype dt)
{
	if (dt == DT_F32)
		return SVD_KERN_F32;
	return dtype_bits(dt) == 8 ? SVD_KERN_LUT8 : SVD_KERN_LUT16;
}

/*
 * Fills the device table with the float32 value of every 1- or 2-byte code
 * of dt, by tensor_to_f32() on the host (codes in file byte order, little
 * endian, as the device reads them). Kept while the dtype stays the same.
 */
static enum spd_err
cuda_lut(struct cuda_ctx *c, enum dtype dt, struct spd_errbuf *eb)
{
	unsigned char	*codes;
	size_t		 n = dtype_bits(dt) == 8 ? 256 : CUDA_LUT, i;
	enum spd_err	 rc;

	if (c->lut_dt == dt)
		return SPD_OK;
	rc = svd_grow((void **)&c->h_tmp, &c->htmp_cap, CUDA_LUT,
	    sizeof(float), eb);
	if (rc != SPD_OK)
		return rc;
	codes = malloc(CUDA_LUT * 2);
	if (codes == NULL)
		return spd_fail(eb, SPD_ENOMEM, "cuda: out of memory");
	for (i = 0; i < n; i++) {
		if (n == 256)
			codes[i] = (unsigned char)i;
		else {
			codes[2 * i] = (unsigned char)(i & 0xff);
			codes[2 * i + 1] = (unsigned char)(i >> 8);
		}
	}
	(void)tensor_to_f32(codes, dt, n, c->h_tmp);	/* NaN codes stay NaN */
	free(codes);
	c->lut_dt = DT_COUNT;
	rc = cuda_rt(cudaMemcpyAsync(c->d_lut, c->h_tmp, n * sizeof(float),
	    cudaMemcpyHostToDevice, c->stream), "cudaMemcpyAsync", eb);
	/* h_tmp is pageable and reused: let the copy finish. */
	if (rc == SPD_OK)
		rc = cuda_rt(cudaStreamSynchronize(c->stream),
		    "cudaStreamSynchronize", eb);
	if (rc == SPD_OK)
		c->lut_dt = dt;
	return rc;
}

/* svd_put_fn for the pinned panels: a plain copy of arg's size_t bytes. */
static size_t
cuda_put(void *arg, const unsigned char *src, size_t n, void *dst)
{
	memcpy(dst, src, n * *(const size_t *)arg);
	return 0;
}

/* Adds (acc) or stores the Gram matrix of one n-wide panel a into d_g. */
static enum spd_err
cuda_syrk(struct cuda_ctx *c, const struct cuda_geom *g, const void *a,
    size_t n, bool acc, struct spd_errbuf *eb)
{
	const float		one = 1, zero = 0;
	const double		one64 = 1, zero64 = 0;
	const cublasFillMode_t	up = CUBLAS_FILL_MODE_UPPER;
	cublasOperation_t	op = g->pl.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
	int			k = (int)g->pl.k, kd = (int)n;
	int			lda = g->pl.trans ? (int)n : (int)g->pl.k;

	if (g->dbl)
		return cuda_blas(cuda_dl.cublasDsyrk(c->blas, up, op, k, kd,
		    &one64, a, lda, acc ? &one64 : &zero64, c->d_g, k),
		    "cublasDsyrk", eb);
	return cuda_blas(cuda_dl.cublasSsyrk(c->blas, up, op, k, kd, &one, a,
	    lda, acc ? &one : &zero, c->d_g, k), "cublasSsyrk", eb);
}

/* Sizes every buffer the panels of m need, and the widening table. */
static enum spd_err
cuda_buffers(struct cuda_ctx *c, const struct svd_matrix *m,
    const struct cuda_geom *g, bool widen, struct spd_errbuf *eb)
{
	size_t		esz = dtype_bits(m->dtype) / 8, gsz, pe, i;
	enum spd_err	rc = SPD_OK;

	gsz = g->dbl ? sizeof(double) : sizeof(float);
	pe = g->pl.b * g->pl.k;		/* ≤ max(CUDA_PANEL, k·MIN) */
	for (i = 0; i < 2 && rc == SPD_OK; i++) {
		rc = pinned_grow(&c->pin[i], &c->pin_cap[i], pe * esz, eb);
		if (rc == SPD_OK)
			rc = cuda_grow(&c->d_raw[i], &c->raw_cap[i], pe, esz,
			    eb);
	}
	if (rc == SPD_OK && widen)
		rc = cuda_grow(&c->d_pan, &c->pan_cap, pe, gsz, eb);
	if (rc == SPD_OK && widen && m->dtype != DT_F32)
		rc = cuda_lut(c, m->dtype, eb);
	if (rc == SPD_OK)
		rc = cuda_grow(&c->d_g, &c->g_cap, g->pl.k * g->pl.k, gsz, eb);
	/*
	 * syrk writes the upper triangle only, and syevd should read no
	 * more; insurance against one that does: the lower is zeroed for
	 * every matrix (once per growth is not enough: the buffer serves
	 * every k and both precisions, and a values-only syevd may destroy
	 * all of it). k² elements, on the compute stream, behind the upload.
	 */
	if (rc == SPD_OK)
		rc = cuda_rt(cudaMemsetAsync(c->d_g, 0,
		    g->pl.k * g->pl.k * gsz, c->stream), "cudaMemsetAsync", eb);
	return rc;
}

/*
 * Forms the Gram matrix of m in d_g, panel by panel (see the top): the
 * host fills pinned slot p % 2 once its previous upload is done, the copy
 * stream uploads it once the compute stream has read that device slot, and
 * the compute stream widens it and adds its syrk.
 */
static enum spd_err
cuda_gram_panels(struct cuda_ctx *c, const struct svd_matrix *m,
    const struct cuda_geom *g, struct spd_errbuf *eb)
{
	size_t		esz = dtype_bits(m->dtype) / 8, j0, n, s, p;
	bool		widen = m->dtype != (g->dbl ? DT_F64 : DT_F32);
	const void	*a;
	enum spd_err	rc;

	rc = cuda_buffers(c, m, g, widen, eb);
	for (p = 0, j0 = 0; rc == SPD_OK && j0 < g->pl.len; p++, j0 += n) {
		s = p % 2;
		n = g->pl.len - j0 < g->pl.b ? g->pl.len - j0 : g->pl.b;
		rc = cuda_rt(cudaEventSynchronize(c->up[s]),
		    "cudaEventSynchronize", eb);
		if (rc != SPD_OK)
			break;
		/* The only read of the mapping: under analyze.c's guard. */
		(void)svd_panel_pack(&g->pl, m->data, esz, esz, j0, n,
		    cuda_put, &esz, c->pin[s]);
		rc = cuda_rt(cudaStreamWaitEvent(c->copy, c->used[s], 0),
		    "cudaStreamWaitEvent", eb);
		if (rc == SPD_OK)
			rc = cuda_rt(cudaMemcpyAsync(c->d_raw[s], c->pin[s],
			    n * g->pl.k * esz, cudaMemcpyHostToDevice,
			    c->copy), "cudaMemcpyAsync", eb);
		if (rc == SPD_OK)
			rc = cuda_rt(cudaEventRecord(c->up[s], c->copy),
			    "cudaEventRecord", eb);
		if (rc == SPD_OK)
			rc = cuda_rt(cudaStreamWaitEvent(c->stream, c->up[s],
			    0), "cudaStreamWaitEvent", eb);
		a = c->d_raw[s];
		if (rc == SPD_OK && widen) {
			rc = cuda_rt(svd_kern_widen(a, cuda_src_kind(m->dtype),
			    c->d_lut, n * g->pl.k, g->dbl, c->d_pan, c->stream),
			    "svd_kern_widen", eb);
			a = c->d_pan;
		}
		if (rc == SPD_OK)
			rc = cuda_syrk(c, g, a, n, p > 0, eb);
		if (rc == SPD_OK)
			rc = cuda_rt(cudaEventRecord(c->used[s], c->stream),
			    "cudaEventRecord", eb);
	}
	return rc;
}

/* Copies the Gram diagonal to the host and returns its sum in *trace. */
static enum spd_err
cuda_trace(struct cuda_ctx *c, const struct cuda_geom *g, double *trace,
    struct spd_errbuf *eb)
{
	size_t		esz = g->dbl ? sizeof(double) : sizeof(float), i;
	size_t		k = g->pl.k;
	enum spd_err	rc;

	rc = svd_grow(&c->h_w, &c->hw_cap, k, esz, eb);
	if (rc == SPD_OK)
		rc = cuda_blas(cuda_dl.cublasGetVectorAsync((int)k, (int)esz,
		    c->d_g, (int)k + 1, c->h_w, 1, c->stream),
		    "cublasGetVectorAsync", eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaStreamSynchronize(c->stream),
		    "cudaStreamSynchronize", eb);
	if (rc != SPD_OK)
		return rc;
	*trace = 0;
	for (i = 0; i < k; i++)
		*trace += g->dbl ? ((double *)c->h_w)[i] : ((float *)c->h_w)[i];
	return SPD_OK;
}

/*
 * Forms the Gram matrix in g's precision and checks it. Returns SPD_OK,
 * SPD_ENONFINITE (NaN/Inf in m), SPD_EUNSUPPORTED (finite, but the sum of
 * squares overflows), SPD_ENOMEM or SPD_EINTERNAL.
 */
static enum spd_err
cuda_gram(struct cuda_ctx *c, const struct svd_matrix *m,
    const struct cuda_geom *g, double *trp, struct spd_errbuf *eb)
{
	size_t		bad = 0;
	double		tr = 0;
	enum spd_err	rc;

	rc = cuda_gram_panels(c, m, g, eb);
	if (rc == SPD_OK)
		rc = cuda_trace(c, g, &tr, eb);
	*trp = tr;
	if (rc != SPD_OK || isfinite(tr))
		return rc;
	rc = svd_grow((void **)&c->h_tmp, &c->htmp_cap, CUDA_PANEL,
	    sizeof(float), eb);
	if (rc == SPD_OK)
		bad = svd_count_nonfinite(m, c->h_tmp, CUDA_PANEL);
	if (rc == SPD_OK && bad == 0)
		return spd_fail(eb, SPD_EUNSUPPORTED,
		    "cuda: sum of squares overflows %s",
		    g->dbl ? "float64" : "float32");
	if (rc == SPD_OK)
		return spd_fail(eb, SPD_ENONFINITE,
		    "cuda: %zux%zu matrix holds %zu NaN/Inf value%s", m->rows,
		    m->cols, bad, bad == 1 ? "" : "s");
	return rc;
}

/*
 * Runs cusolverDn[SD]syevd, values only, on the k × k matrix a (upper
 * triangle; float64 when dbl) and copies the eigenvalues to h_w.
 */
static enum spd_err
cuda_syevd(struct cuda_ctx *c, void *a, size_t k, bool dbl, int *info,
    struct spd_errbuf *eb)
{
	const cusolverEigMode_t	 nov = CUSOLVER_EIG_MODE_NOVECTOR;
	const cublasFillMode_t	 up = CUBLAS_FILL_MODE_UPPER;
	size_t			 esz = dbl ? sizeof(double) : sizeof(float);
	int			 n = (int)k, lw = 0;
	enum spd_err		 rc;

	rc = cuda_grow(&c->d_w, &c->w_cap, k, esz, eb);
	if (rc == SPD_OK)
		rc = cuda_solver(dbl ?
		    cuda_dl.cusolverDnDsyevd_bufferSize(c->solver, nov, up, n,
		    a, n, c->d_w, &lw) :
		    cuda_dl.cusolverDnSsyevd_bufferSize(c->solver, nov, up, n,
		    a, n, c->d_w, &lw), "cusolverDnXsyevd_bufferSize", eb);
	if (rc == SPD_OK)
		rc = cuda_grow(&c->d_work, &c->work_cap,
		    (size_t)(lw > 0 ? lw : 1), esz, eb);
	if (rc == SPD_OK)
		rc = cuda_solver(dbl ?
		    cuda_dl.cusolverDnDsyevd(c->solver, nov, up, n, a, n,
		    c->d_w, c->d_work, lw, c->d_info) :
		    cuda_dl.cusolverDnSsyevd(c->solver, nov, up, n, a, n,
		    c->d_w, c->d_work, lw, c->d_info),
		    dbl ? "cusolverDnDsyevd" : "cusolverDnSsyevd", eb);
	if (rc == SPD_OK)
		rc = svd_grow(&c->h_w, &c->hw_cap, k, esz, eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaMemcpyAsync(c->h_w, c->d_w, k * esz,
		    cudaMemcpyDeviceToHost, c->stream), "cudaMemcpyAsync", eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaMemcpyAsync(info, c->d_info, sizeof *info,
		    cudaMemcpyDeviceToHost, c->stream), "cudaMemcpyAsync", eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaStreamSynchronize(c->stream),
		    "cudaStreamSynchronize", eb);
	return rc;
}

/*
 * The eigen-solve of the Gram matrix in d_g → descending singular values
 * in sv. A float32 Gram is widened to float64 on the device first (mixed
 * route) unless f32 is set: cusolverDnSsyevd alone was 1e-5 to 5e-5 off
 * the float64 SNR on the H200, over the contract.
 */
static enum spd_err
cuda_eig(struct cuda_ctx *c, const struct cuda_geom *g, bool f32, float *sv,
    struct spd_errbuf *eb)
{
	size_t		k = g->pl.k;
	void		*a = c->d_g;
	bool		dbl = g->dbl;
	int		info = 0;
	enum spd_err	rc = SPD_OK;

	if (!dbl && !f32) {
		rc = cuda_grow((void **)&c->d_g64, &c->g64_cap, k * k,
		    sizeof(double), eb);
		if (rc == SPD_OK)
			rc = cuda_rt(svd_kern_widen(c->d_g, SVD_KERN_F32, NULL,
			    k * k, true, c->d_g64, c->stream),
			    "svd_kern_widen", eb);
		a = c->d_g64;
		dbl = true;
	}
	if (rc == SPD_OK)
		rc = cuda_syevd(c, a, k, dbl, &info, eb);
	if (rc != SPD_OK)
		return rc;
	if (info != 0)
		return spd_fail(eb, SPD_EINTERNAL, "cuda: %csyevd info %d",
		    dbl ? 'D' : 'S', info);
	return svd_from_eigen(c->h_w, dbl, k, sv,
	    dbl ? "cuda: Dsyevd" : "cuda: Ssyevd", eb);
}

/*
 * The route, for measurements only: SPECTRUMD_CUDA_EIG=f32 (float32 Gram
 * and solve: fastest, not within 1e-5), f64 (float64 Gram and solve for
 * every matrix) or, by default, mixed (float32 Gram, float64 solve).
 */
enum cuda_route { CUDA_MIXED, CUDA_F32, CUDA_F64 };

static enum cuda_route
cuda_route(void)
{
	const char *e = getenv("SPECTRUMD_CUDA_EIG");

	if (e != NULL && strcmp(e, "f32") == 0)
		return CUDA_F32;
	if (e != NULL && strcmp(e, "f64") == 0)
		return CUDA_F64;
	return CUDA_MIXED;
}

/*
 * Singular values of m into sv. The fast route (dbl false) is the mixed
 * one (SPECTRUMD_CUDA_EIG may pick another); F64 matrices have none
 * (SPD_EUNSUPPORTED, so svd.c asks for dbl). dbl: float64 throughout. On
 * return nothing queued on the device reads the context's buffers.
 */
static enum spd_err
cuda_values(void *ctx, const struct svd_matrix *m, bool dbl, float *sv,
    struct svd_route *rt, struct spd_errbuf *eb)
{
	struct cuda_ctx	*c = ctx;
	struct cuda_geom g;
	enum cuda_route	 route = cuda_route();
	enum spd_err	 rc;

	if (!dbl && (m->dtype == DT_F64 || route == CUDA_F64))
		return SPD_EUNSUPPORTED;
	svd_panels_init(&g.pl, m->rows, m->cols, CUDA_PANEL, CUDA_PANEL_MIN);
	g.dbl = dbl;
	rt->ug = dbl ? 0x1p-53 : 0x1p-24;
	rt->ue = dbl || route != CUDA_F32 ? 0x1p-53 : 0x1p-24;
	rc = cuda_rt(cudaSetDevice(c->device), "cudaSetDevice", eb);
	if (rc == SPD_OK)
		rc = cuda_gram(c, m, &g, &rt->tr, eb);
	if (rc == SPD_OK)
		rc = cuda_eig(c, &g, route == CUDA_F32, sv, eb);
	if (rc != SPD_OK) {
		/* A failed call may leave copies and kernels queued. */
		(void)cudaStreamSynchronize(c->copy);
		(void)cudaStreamSynchronize(c->stream);
		(void)cudaGetLastError();
	}
	return rc;
}

const struct svd_backend svd_cuda_backend = {
	.name = "cuda",
	.method = SVD_METHOD("cuda"),
	.probe = cuda_probe,
	.devices = cuda_count,
	.ctx_new = cuda_ctx_new,
	.ctx_free = cuda_ctx_free,
	.values = cuda_values,
};
