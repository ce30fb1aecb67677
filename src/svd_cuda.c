/*
 * svd_cuda.c: singular values on an NVIDIA GPU with cuBLAS + cuSOLVER, the
 * only file that includes the CUDA headers (DESIGN.md §6). Plain C, no
 * nvcc: every device computation is a library call.
 *
 * Route (measured on an H200, tests/gpu/check.sh): every dtype but F32 is
 * converted to float32 on the host and uploaded; cublasSsyrk forms the
 * Gram matrix of the smaller side in float32; it is widened to float64
 * (through the host) and cusolverDnDsyevd gives the eigenvalues only,
 * s = √max(λ, 0) in descending order. Faster routes missed the 1e-5 SNR
 * contract there: a tensor-core cublasGemmEx Gram straight from BF16/F16,
 * and cusolverDnSsyevd. F64, and any matrix svd_need_f64() flags, takes a
 * float64 Gram (cublasDsyrk over panels converted on the host). NaN/Inf in
 * the matrix reach the Gram diagonal, which is checked before the solve.
 */
#include "config.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
/* CUDA 13's cusolverDn.h declares a function as f(), not f(void). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <cusolverDn.h>
#pragma GCC diagnostic pop
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/common.h"
#include "spectrumd/svd.h"
#include "spectrumd/tensor.h"
#include "svd_backend.h"

/* Elements converted on the host per chunk or panel. */
#define CUDA_CHUNK	(1u << 22)
#define CUDA_PANEL_MIN	512

/* One worker's device state: stream, handles, cached buffers. */
struct cuda_ctx {
	int			 device;
	cudaStream_t		 stream;
	cublasHandle_t		 blas;
	cusolverDnHandle_t	 solver;
	void			*d_a;		/* the matrix, or one panel */
	size_t			 a_cap;
	void			*d_g;		/* k × k Gram matrix */
	size_t			 g_cap;
	void			*d_w;		/* k eigenvalues */
	size_t			 w_cap;
	void			*d_work;	/* syevd workspace */
	size_t			 work_cap;
	int			*d_info;
	void			*h_buf;		/* host staging */
	size_t			 hbuf_cap;
	float			*h_tmp;		/* float32 for float64 */
	size_t			 htmp_cap;
	void			*h_w;		/* eigenvalues or diagonal */
	size_t			 hw_cap;
	float			*h_sv;		/* result, out on success */
	size_t			 hsv_cap;
};

/* The shape of the Gram matrix, as in svd_cpu.c. */
struct cuda_geom {
	size_t	k;		/* min(rows, cols) */
	size_t	len;		/* max(rows, cols) */
	bool	trans;		/* rows < cols: Gram = W·Wᵀ */
	bool	dbl;		/* float64 */
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
	    cublasGetStatusString(s));
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

/* Makes the host buffer *p hold n × esz bytes; contents are not kept. */
static enum spd_err
host_grow(void **p, size_t *cap, size_t n, size_t esz, struct spd_errbuf *eb)
{
	size_t	 bytes;
	void	*q;

	if (__builtin_mul_overflow(n, esz, &bytes))
		return spd_fail(eb, SPD_ENOMEM,
		    "cuda: %zu × %zu bytes overflow", n, esz);
	if (bytes <= *cap)
		return SPD_OK;
	free(*p);
	*p = NULL;
	*cap = 0;
	q = malloc(bytes);
	if (q == NULL)
		return spd_fail(eb, SPD_ENOMEM,
		    "cuda: cannot allocate %zu bytes", bytes);
	*p = q;
	*cap = bytes;
	return SPD_OK;
}

int
svd_cuda_count(void)
{
	int n = 0;

	if (cudaGetDeviceCount(&n) != cudaSuccess) {
		(void)cudaGetLastError();
		return 0;
	}
	return n;
}

/* SPD_OK when a CUDA device is visible, else SPD_ENODEV and why. */
static enum spd_err
cuda_probe(struct spd_errbuf *eb)
{
	cudaError_t	e;
	int		n = 0;

	e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess) {
		(void)cudaGetLastError();
		return spd_fail(eb, SPD_ENODEV,
		    "cuda: no usable device (cudaGetDeviceCount: %s)",
		    cudaGetErrorString(e));
	}
	if (n < 1)
		return spd_fail(eb, SPD_ENODEV, "cuda: no device found");
	return SPD_OK;
}

/* Releases a context: buffers, handles, stream. NULL-safe. */
static void
cuda_ctx_free(void *ctx)
{
	struct cuda_ctx *c = ctx;

	if (c == NULL)
		return;
	(void)cudaSetDevice(c->device);
	if (c->stream != NULL)
		(void)cudaStreamSynchronize(c->stream);
	cudaFree(c->d_a);
	cudaFree(c->d_g);
	cudaFree(c->d_w);
	cudaFree(c->d_work);
	cudaFree(c->d_info);
	if (c->solver != NULL)
		cusolverDnDestroy(c->solver);
	if (c->blas != NULL)
		cublasDestroy(c->blas);
	if (c->stream != NULL)
		cudaStreamDestroy(c->stream);
	free(c->h_buf);
	free(c->h_tmp);
	free(c->h_w);
	free(c->h_sv);
	free(c);
}

/* Creates the stream and handles of a context on device o->device. */
static enum spd_err
cuda_ctx_new(const struct svd_opts *o, void **ctx, struct spd_errbuf *eb)
{
	struct cuda_ctx	*c;
	int		 n = svd_cuda_count(), dev = o != NULL ? o->device : 0;
	enum spd_err	 rc;

	if (dev < 0 || dev >= n)
		return spd_fail(eb, SPD_ENODEV,
		    "cuda: device %d not present (%d visible)", dev, n);
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return spd_fail(eb, SPD_ENOMEM, "cuda: out of memory");
	c->device = dev;
	rc = cuda_rt(cudaSetDevice(dev), "cudaSetDevice", eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaStreamCreateWithFlags(&c->stream,
		    cudaStreamNonBlocking), "cudaStreamCreate", eb);
	if (rc == SPD_OK)
		rc = cuda_blas(cublasCreate(&c->blas), "cublasCreate", eb);
	if (rc == SPD_OK)
		rc = cuda_blas(cublasSetStream(c->blas, c->stream),
		    "cublasSetStream", eb);
	if (rc == SPD_OK)
		rc = cuda_solver(cusolverDnCreate(&c->solver),
		    "cusolverDnCreate", eb);
	if (rc == SPD_OK)
		rc = cuda_solver(cusolverDnSetStream(c->solver, c->stream),
		    "cusolverDnSetStream", eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaMalloc((void **)&c->d_info, sizeof(int)),
		    "cudaMalloc", eb);
	if (rc != SPD_OK) {
		cuda_ctx_free(c);
		return rc;
	}
	*ctx = c;
	return SPD_OK;
}

/* Copies nbytes from the host to the device buffer at dst, on the stream. */
static enum spd_err
cuda_upload(struct cuda_ctx *c, void *dst, const void *src, size_t nbytes,
    struct spd_errbuf *eb)
{
	return cuda_rt(cudaMemcpyAsync(dst, src, nbytes,
	    cudaMemcpyHostToDevice, c->stream), "cudaMemcpyAsync", eb);
}

/* Converts n elements of m from element off to float32 or float64. */
static size_t
cuda_convert(struct cuda_ctx *c, const struct svd_matrix *m, size_t off,
    size_t n, bool dbl, void *dst)
{
	const unsigned char	*src = m->data;
	double			*d = dst;
	size_t			 i, bad = 0;

	src += off * (dtype_bits(m->dtype) / 8);
	if (!dbl)
		return tensor_to_f32(src, m->dtype, n, dst);
	if (m->dtype == DT_F64) {
		memcpy(d, src, n * sizeof *d);
		for (i = 0; i < n; i++)
			bad += !isfinite(d[i]);
		return bad;
	}
	bad = tensor_to_f32(src, m->dtype, n, c->h_tmp);
	for (i = 0; i < n; i++)
		d[i] = c->h_tmp[i];
	return bad;
}

/* Counts the NaN/Inf values of m on the host, a chunk at a time. */
static enum spd_err
cuda_count_bad(struct cuda_ctx *c, const struct svd_matrix *m, size_t *bad,
    struct spd_errbuf *eb)
{
	size_t		n = m->rows * m->cols, off, b = CUDA_CHUNK;
	enum spd_err	rc;

	rc = host_grow(&c->h_buf, &c->hbuf_cap, b, sizeof(double), eb);
	if (rc == SPD_OK)
		rc = host_grow((void **)&c->h_tmp, &c->htmp_cap, b,
		    sizeof(float), eb);
	if (rc != SPD_OK)
		return rc;
	*bad = 0;
	for (off = 0; off < n; off += b)
		*bad += cuda_convert(c, m, off, n - off < b ? n - off : b,
		    m->dtype == DT_F64, c->h_buf);
	return SPD_OK;
}

/*
 * Puts m on the device as float32, converted on the host for every dtype
 * but F32. BF16/F16 went up raw at first, for a tensor-core GemmEx Gram:
 * on the H200 that Gram was 2e-5 to 5e-5 off the float64 SNR (over the
 * 1e-5 contract), the float32 cublasSsyrk one 1e-6.
 */
static enum spd_err
cuda_put(struct cuda_ctx *c, const struct svd_matrix *m, size_t *bad,
    struct spd_errbuf *eb)
{
	size_t		n = m->rows * m->cols, esz = dtype_bits(m->dtype) / 8;
	size_t		off, b;
	enum spd_err	rc;
	bool		conv = m->dtype != DT_F32;

	*bad = 0;
	rc = cuda_grow(&c->d_a, &c->a_cap, n, conv ? sizeof(float) : esz, eb);
	if (rc != SPD_OK)
		return rc;
	if (!conv)
		return cuda_upload(c, c->d_a, m->data, n * esz, eb);
	rc = host_grow(&c->h_buf, &c->hbuf_cap, CUDA_CHUNK, sizeof(float), eb);
	for (off = 0; rc == SPD_OK && off < n; off += b) {
		b = n - off < CUDA_CHUNK ? n - off : CUDA_CHUNK;
		*bad += tensor_to_f32((const unsigned char *)m->data + off * esz,
		    m->dtype, b, c->h_buf);
		rc = cuda_upload(c, (float *)c->d_a + off, c->h_buf,
		    b * sizeof(float), eb);
		/* The staging buffer is reused: let the copy finish. */
		if (rc == SPD_OK)
			rc = cuda_rt(cudaStreamSynchronize(c->stream),
			    "cudaStreamSynchronize", eb);
	}
	return rc;
}

/* Forms the float32 Gram matrix of the matrix in c->d_a. */
static enum spd_err
cuda_gram32(struct cuda_ctx *c, const struct svd_matrix *m,
    const struct cuda_geom *g, struct spd_errbuf *eb)
{
	const float		one = 1, zero = 0;
	cublasOperation_t	na = g->trans ? CUBLAS_OP_T : CUBLAS_OP_N;
	int			k = (int)g->k, len = (int)g->len;
	int			ld = (int)m->cols;
	enum spd_err		rc;

	rc = cuda_grow(&c->d_g, &c->g_cap, g->k * g->k, sizeof(float), eb);
	if (rc != SPD_OK)
		return rc;
	return cuda_blas(cublasSsyrk(c->blas, CUBLAS_FILL_MODE_UPPER, na, k,
	    len, &one, c->d_a, ld, &zero, c->d_g, k), "cublasSsyrk", eb);
}

/* Packs the panel [j0, j0 + b) of the long side as float64 on the host. */
static size_t
cuda_pack64(struct cuda_ctx *c, const struct svd_matrix *m,
    const struct cuda_geom *g, size_t j0, size_t b)
{
	double	*p = c->h_buf;
	size_t	 i, bad = 0;

	if (!g->trans)
		return cuda_convert(c, m, j0 * g->k, b * g->k, true, p);
	for (i = 0; i < g->k; i++)
		bad += cuda_convert(c, m, i * m->cols + j0, b, true, p + i * b);
	return bad;
}

/* Uploads one float64 panel and adds its Gram matrix to c->d_g. */
static enum spd_err
cuda_panel64(struct cuda_ctx *c, const struct cuda_geom *g, size_t b,
    bool accumulate, struct spd_errbuf *eb)
{
	const double	one = 1, zero = 0;
	enum spd_err	rc;

	rc = cuda_upload(c, c->d_a, c->h_buf, b * g->k * sizeof(double), eb);
	if (rc == SPD_OK)
		rc = cuda_blas(cublasDsyrk(c->blas, CUBLAS_FILL_MODE_UPPER,
		    g->trans ? CUBLAS_OP_T : CUBLAS_OP_N, (int)g->k, (int)b,
		    &one, c->d_a, g->trans ? (int)b : (int)g->k,
		    accumulate ? &one : &zero, c->d_g, (int)g->k),
		    "cublasDsyrk", eb);
	/* The host panel is refilled next: let the copy finish. */
	if (rc == SPD_OK)
		rc = cuda_rt(cudaStreamSynchronize(c->stream),
		    "cudaStreamSynchronize", eb);
	return rc;
}

/* Forms the float64 Gram matrix over panels converted on the host. */
static enum spd_err
cuda_gram64(struct cuda_ctx *c, const struct svd_matrix *m,
    const struct cuda_geom *g, size_t *bad, struct spd_errbuf *eb)
{
	size_t		b = CUDA_CHUNK / g->k, n, j0;
	enum spd_err	rc;

	b = b < CUDA_PANEL_MIN ? CUDA_PANEL_MIN : b;
	b = b < g->len ? b : g->len;
	*bad = 0;
	rc = cuda_grow(&c->d_g, &c->g_cap, g->k * g->k, sizeof(double), eb);
	if (rc == SPD_OK)
		rc = cuda_grow(&c->d_a, &c->a_cap, b * g->k, sizeof(double),
		    eb);
	if (rc == SPD_OK)
		rc = host_grow(&c->h_buf, &c->hbuf_cap, b * g->k,
		    sizeof(double), eb);
	if (rc == SPD_OK)
		rc = host_grow((void **)&c->h_tmp, &c->htmp_cap, b * g->k,
		    sizeof(float), eb);
	for (j0 = 0; rc == SPD_OK && j0 < g->len; j0 += b) {
		n = g->len - j0 < b ? g->len - j0 : b;
		*bad = cuda_pack64(c, m, g, j0, n);
		if (*bad != 0)
			break;
		rc = cuda_panel64(c, g, n, j0 > 0, eb);
	}
	return rc;
}

/* Copies the Gram diagonal to the host and returns its sum in *trace. */
static enum spd_err
cuda_trace(struct cuda_ctx *c, const struct cuda_geom *g, double *trace,
    struct spd_errbuf *eb)
{
	size_t		esz = g->dbl ? sizeof(double) : sizeof(float), i;
	enum spd_err	rc;

	rc = host_grow(&c->h_w, &c->hw_cap, g->k, esz, eb);
	if (rc == SPD_OK)
		rc = cuda_blas(cublasGetVectorAsync((int)g->k, (int)esz,
		    c->d_g, (int)g->k + 1, c->h_w, 1, c->stream),
		    "cublasGetVectorAsync", eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaStreamSynchronize(c->stream),
		    "cudaStreamSynchronize", eb);
	if (rc != SPD_OK)
		return rc;
	*trace = 0;
	for (i = 0; i < g->k; i++)
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
    const struct cuda_geom *g, struct spd_errbuf *eb)
{
	size_t		bad = 0;
	double		tr = 0;
	enum spd_err	rc;

	if (g->dbl)
		rc = cuda_gram64(c, m, g, &bad, eb);
	else {
		rc = cuda_put(c, m, &bad, eb);
		if (rc == SPD_OK && bad == 0)
			rc = cuda_gram32(c, m, g, eb);
	}
	if (rc == SPD_OK && bad == 0)
		rc = cuda_trace(c, g, &tr, eb);
	if (rc == SPD_OK && bad == 0 && !isfinite(tr)) {
		rc = cuda_count_bad(c, m, &bad, eb);
		if (rc == SPD_OK && bad == 0)
			return spd_fail(eb, SPD_EUNSUPPORTED,
			    "cuda: sum of squares overflows %s",
			    g->dbl ? "float64" : "float32");
	}
	if (rc == SPD_OK && bad != 0)
		return spd_fail(eb, SPD_ENONFINITE,
		    "cuda: %zux%zu matrix holds %zu NaN/Inf value%s", m->rows,
		    m->cols, bad, bad == 1 ? "" : "s");
	return rc;
}

/* Runs cusolverDn[SD]syevd, values only, and copies them back. */
static enum spd_err
cuda_syevd(struct cuda_ctx *c, const struct cuda_geom *g, int *info,
    struct spd_errbuf *eb)
{
	const cusolverEigMode_t	 nov = CUSOLVER_EIG_MODE_NOVECTOR;
	const cublasFillMode_t	 up = CUBLAS_FILL_MODE_UPPER;
	size_t			 esz = g->dbl ? sizeof(double) : sizeof(float);
	int			 n = (int)g->k, lw = 0;
	enum spd_err		 rc;

	rc = cuda_grow(&c->d_w, &c->w_cap, g->k, esz, eb);
	if (rc == SPD_OK)
		rc = cuda_solver(g->dbl ?
		    cusolverDnDsyevd_bufferSize(c->solver, nov, up, n, c->d_g,
		    n, c->d_w, &lw) :
		    cusolverDnSsyevd_bufferSize(c->solver, nov, up, n, c->d_g,
		    n, c->d_w, &lw), "cusolverDnXsyevd_bufferSize", eb);
	if (rc == SPD_OK)
		rc = cuda_grow(&c->d_work, &c->work_cap,
		    (size_t)(lw > 0 ? lw : 1), esz, eb);
	if (rc == SPD_OK)
		rc = cuda_solver(g->dbl ?
		    cusolverDnDsyevd(c->solver, nov, up, n, c->d_g, n, c->d_w,
		    c->d_work, lw, c->d_info) :
		    cusolverDnSsyevd(c->solver, nov, up, n, c->d_g, n, c->d_w,
		    c->d_work, lw, c->d_info), g->dbl ? "cusolverDnDsyevd" :
		    "cusolverDnSsyevd", eb);
	if (rc == SPD_OK)
		rc = host_grow(&c->h_w, &c->hw_cap, g->k, esz, eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaMemcpyAsync(c->h_w, c->d_w, g->k * esz,
		    cudaMemcpyDeviceToHost, c->stream), "cudaMemcpyAsync", eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaMemcpyAsync(info, c->d_info, sizeof *info,
		    cudaMemcpyDeviceToHost, c->stream), "cudaMemcpyAsync", eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaStreamSynchronize(c->stream),
		    "cudaStreamSynchronize", eb);
	return rc;
}

/* Eigenvalues of the Gram matrix → descending singular values in h_sv. */
static enum spd_err
cuda_eig(struct cuda_ctx *c, const struct cuda_geom *g, struct spd_errbuf *eb)
{
	int		info = 0;
	enum spd_err	rc;

	rc = cuda_syevd(c, g, &info, eb);
	if (rc == SPD_OK)
		rc = host_grow((void **)&c->h_sv, &c->hsv_cap, g->k,
		    sizeof(float), eb);
	if (rc != SPD_OK)
		return rc;
	if (info != 0)
		return spd_fail(eb, SPD_EINTERNAL, "cuda: %csyevd info %d",
		    g->dbl ? 'D' : 'S', info);
	return svd_from_eigen(c->h_w, g->dbl, g->k, c->h_sv,
	    g->dbl ? "cuda: Dsyevd" : "cuda: Ssyevd", eb);
}

/*
 * Widens the float32 Gram in d_g to float64 in place (through the host:
 * no kernels, so no nvcc), so the eigen-solve runs in float64. On the H200
 * cusolverDnSsyevd alone was 1e-5 to 5e-5 off the float64 SNR, over the
 * 1e-5 contract; the float32 Gram itself is as good as on the CPU.
 */
static enum spd_err
cuda_widen(struct cuda_ctx *c, struct cuda_geom *g, struct spd_errbuf *eb)
{
	size_t		n = g->k * g->k, i;
	double		*d;
	enum spd_err	rc;

	rc = host_grow((void **)&c->h_tmp, &c->htmp_cap, n, sizeof(float), eb);
	if (rc == SPD_OK)
		rc = host_grow(&c->h_buf, &c->hbuf_cap, n, sizeof(double), eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaMemcpyAsync(c->h_tmp, c->d_g, n * sizeof(float),
		    cudaMemcpyDeviceToHost, c->stream), "cudaMemcpyAsync", eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaStreamSynchronize(c->stream),
		    "cudaStreamSynchronize", eb);
	if (rc != SPD_OK)
		return rc;
	d = c->h_buf;
	for (i = 0; i < n; i++)
		d[i] = c->h_tmp[i];
	rc = cuda_grow(&c->d_g, &c->g_cap, n, sizeof(double), eb);
	if (rc == SPD_OK)
		rc = cuda_rt(cudaMemcpyAsync(c->d_g, d, n * sizeof(double),
		    cudaMemcpyHostToDevice, c->stream), "cudaMemcpyAsync", eb);
	g->dbl = true;
	return rc;
}

/*
 * The eigen-solve route, for measurements only: SPECTRUMD_CUDA_EIG=f32
 * (float32 Gram and solve: fastest, not within 1e-5), f64 (float64 Gram
 * and solve) or, by default, mixed (float32 Gram, float64 solve).
 */
static int
cuda_route(void)
{
	const char *e = getenv("SPECTRUMD_CUDA_EIG");

	if (e != NULL && strcmp(e, "f32") == 0)
		return 0;
	if (e != NULL && strcmp(e, "f64") == 0)
		return 2;
	return 1;
}

/*
 * Singular values of m. The fast route (dbl false): float32 Gram, widened,
 * float64 solve (SPECTRUMD_CUDA_EIG may pick another, for measurements);
 * F64 matrices have none (SPD_EUNSUPPORTED). dbl: float64 throughout.
 */
static enum spd_err
cuda_values(void *ctx, const struct svd_matrix *m, bool dbl, float *sv,
    struct spd_errbuf *eb)
{
	struct cuda_ctx	*c = ctx;
	struct cuda_geom g;
	enum spd_err	 rc;
	int		 route = cuda_route();

	if (!dbl && (m->dtype == DT_F64 || route == 2))
		return SPD_EUNSUPPORTED;
	g.trans = m->rows < m->cols;
	g.k = g.trans ? m->rows : m->cols;
	g.len = g.trans ? m->cols : m->rows;
	g.dbl = dbl;
	rc = cuda_rt(cudaSetDevice(c->device), "cudaSetDevice", eb);
	if (rc == SPD_OK)
		rc = cuda_gram(c, m, &g, eb);
	if (rc == SPD_OK && !dbl && route == 1)
		rc = cuda_widen(c, &g, eb);
	if (rc == SPD_OK)
		rc = cuda_eig(c, &g, eb);
	if (rc == SPD_OK)
		memcpy(sv, c->h_sv, g.k * sizeof *sv);
	return rc;
}

const struct svd_backend svd_cuda_backend = {
	.name = "cuda",
	.probe = cuda_probe,
	.ctx_new = cuda_ctx_new,
	.ctx_free = cuda_ctx_free,
	.values = cuda_values,
};
