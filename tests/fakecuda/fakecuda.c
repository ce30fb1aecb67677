/*
 * fakecuda.c: a fake CUDA device on the host, for tests/test_svd_fakecuda
 * (the cuda backend's test without a GPU). It defines every CUDA runtime
 * call src/svd_cuda.c makes, the kernel launcher of svd_cuda_kern.h, and
 * cuda_dl_load(), which fills cuda_dl with fake cuBLAS/cuSOLVER calls; the
 * test links none of CUDA's libraries.
 *
 * What it models, so that a missing ordering shows as wrong values:
 * - Device memory is host memory filled with 0xff bytes (NaN in every
 *   float format) when allocated; every device access is range-checked
 *   against its allocation (abort on overrun).
 * - Stream work (copies, memsets, the widening kernel, syrk, syevd,
 *   cublasGetVectorAsync, event records and waits) is queued per stream and
 *   runs later, one operation at a time, from a random stream whose next
 *   operation may run: in-stream order and cudaStreamWaitEvent() are the
 *   only constraints. Work runs at synchronisation points (until what the
 *   host waits for is done) and, depending on the seed, at random while the
 *   host goes on.
 * - A copy reads its source when it runs, not when queued: refilling a
 *   pinned buffer before the upload that reads it has run corrupts that
 *   upload, as on a GPU. (Stricter than CUDA for pageable buffers, which it
 *   stages when the call is made.)
 * - cudaFree() and cudaFreeHost() synchronise the device, as CUDA's do.
 * - syrk is CBLAS's, syevd LAPACKE's. syevd checks that the unused triangle
 *   of A holds no NaN/Inf (uninitialised memory), and without eigenvectors
 *   destroys all of A afterwards (NaN), as cuSOLVER's documentation allows.
 * - One device, number 0.
 * - fakecuda_fail() makes one call that queues work fail instead.
 * A misuse the code could survive (NaN in the unused triangle) prints
 * "# fakecuda: ..." and counts in the stats; an out-of-range access, the
 * legacy default stream or a deadlock aborts.
 */
#include "config.h"

#include <cuda_runtime_api.h>
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_dl.h"
#include "svd_cuda_kern.h"
#include "fakecuda.h"

/* Streams at most (the test has two per context, a few contexts). */
#define FAKE_STREAMS	64

/* One completion of cudaEventRecord(): done once its op has run. */
struct fake_rec {
	int	done;
	int	refs;		/* the event, the record op, each wait */
};

enum fake_kind {
	FAKE_COPY, FAKE_SET, FAKE_GETVEC, FAKE_WIDEN, FAKE_SYRK, FAKE_SYEVD,
	FAKE_RECORD, FAKE_WAIT
};

/* One queued stream operation. */
struct fake_op {
	struct fake_op		*next;
	enum fake_kind		 kind;
	unsigned long		 seq;		/* issue order, all streams */
	struct fake_rec		*rec;		/* RECORD, WAIT */
	const void		*src;		/* COPY, GETVEC, WIDEN, SYRK A */
	void			*dst;		/* COPY, SET, GETVEC, WIDEN, SYRK
						   C, SYEVD A */
	size_t			 n;		/* bytes; GETVEC, WIDEN elements */
	int			 val;		/* SET byte; SYRK/SYEVD uplo U */
	int			 dbl;		/* WIDEN, SYRK, SYEVD: float64 */
	enum svd_kern_src	 wkind;		/* WIDEN */
	const float		*lut;		/* WIDEN */
	int			 m, k, lda, ldc, trans, incx, incy, esz;
	double			 alpha, beta;	/* SYRK */
	void			*w, *work;	/* SYEVD */
	int			*info;		/* SYEVD */
	int			 vectors;	/* SYEVD */
};

struct CUstream_st {
	struct fake_op	*head, *tail;
};

struct CUevent_st {
	struct fake_rec	*last;		/* the latest record; NULL: none */
};

struct cublasContext {
	cudaStream_t	stream;
};

struct cusolverDnContext {
	cudaStream_t	stream;
};

/* A device or pinned allocation. */
struct fake_mem {
	unsigned char	*p;
	size_t		 n;
	int		 pinned;
	struct fake_mem	*next;
};

static struct CUstream_st	*fake_streams[FAKE_STREAMS];
static struct fake_mem		*fake_mems;
static uint64_t			 fake_rng = 1;
static double			 fake_eager;
static unsigned long		 fake_seq;
static struct fakecuda_stats	 fake_st;
static cudaError_t		 fake_last;
static unsigned long		 fake_fail_at;

/* Prints a fatal misuse and aborts. */
static void __attribute__((noreturn, format(printf, 1, 2)))
fake_die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "fakecuda: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

/* Reports a misuse the code may survive, and counts it. */
static void __attribute__((format(printf, 1, 2)))
fake_misuse(const char *fmt, ...)
{
	va_list ap;

	fake_st.misuse++;
	printf("# fakecuda: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* A random 64-bit number (xorshift64*). */
static uint64_t
fake_rand(void)
{
	fake_rng ^= fake_rng >> 12;
	fake_rng ^= fake_rng << 25;
	fake_rng ^= fake_rng >> 27;
	return fake_rng * 0x2545f4914f6cdd1dULL;
}

/* A random double in [0, 1). */
static double
fake_rand01(void)
{
	return (double)(fake_rand() >> 11) / 9007199254740992.0;
}

void
fakecuda_seed(unsigned seed)
{
	static const double eager[4] = { 0, 0.3, 0.6, 0.9 };

	fake_rng = 0x9e3779b97f4a7c15ULL * (seed + 1);
	(void)fake_rand();
	fake_eager = eager[seed % 4];
	memset(&fake_st, 0, sizeof fake_st);
}

void
fakecuda_stats(struct fakecuda_stats *st)
{
	const struct fake_op	*o;
	int			 i;

	*st = fake_st;
	for (i = 0; i < FAKE_STREAMS; i++)
		for (o = fake_streams[i] != NULL ? fake_streams[i]->head :
		    NULL; o != NULL; o = o->next)
			st->queued++;
}

void
fakecuda_fail(unsigned long n)
{
	fake_fail_at = n;
}

/* True when this call, one that queues work, is the one to fail. */
static int
fake_fault(void)
{
	return fake_fail_at > 0 && --fake_fail_at == 0;
}

/* The allocation holding p, or NULL. */
static struct fake_mem *
fake_find(const void *p)
{
	const unsigned char	*c = p;
	struct fake_mem		*m;

	for (m = fake_mems; m != NULL; m = m->next)
		if (c >= m->p && c < m->p + m->n)
			return m;
	return NULL;
}

/* Aborts unless [p, p + n) lies in one device allocation. */
static void
fake_dev(const void *p, size_t n, const char *what)
{
	struct fake_mem *m = fake_find(p);

	if (m == NULL || m->pinned)
		fake_die("%s: %p is not device memory", what, p);
	if (n > m->n - (size_t)((const unsigned char *)p - m->p))
		fake_die("%s: %zu bytes at %p overrun a %zu-byte allocation",
		    what, n, p, m->n);
}

/* Aborts when p is device memory, or pinned memory too short for n. */
static void
fake_host(const void *p, size_t n, const char *what)
{
	struct fake_mem *m = fake_find(p);

	if (m != NULL && !m->pinned)
		fake_die("%s: %p is device memory, not host", what, p);
	if (m != NULL && n > m->n - (size_t)((const unsigned char *)p - m->p))
		fake_die("%s: %zu bytes at %p overrun a %zu-byte pinned "
		    "buffer", what, n, p, m->n);
}

/* Drops one reference to r. */
static void
fake_rec_put(struct fake_rec *r)
{
	if (r != NULL && --r->refs == 0)
		free(r);
}

/* The element (i, j) of column-major a (float64 when dbl). */
static double
fake_at(const void *a, int dbl, int lda, int i, int j)
{
	size_t o = (size_t)j * (size_t)lda + (size_t)i;

	return dbl ? ((const double *)a)[o] : ((const float *)a)[o];
}

/* Runs the widening kernel's work: dst[i] = lut[src[i]] or (double)src[i]. */
static void
fake_widen(const struct fake_op *o)
{
	const unsigned char	*s = o->src;
	float			 f;
	size_t			 i;

	for (i = 0; i < o->n; i++) {
		if (o->wkind == SVD_KERN_LUT8)
			f = o->lut[s[i]];
		else if (o->wkind == SVD_KERN_LUT16)
			f = o->lut[s[2 * i] | s[2 * i + 1] << 8];
		else
			memcpy(&f, s + 4 * i, sizeof f);
		if (o->dbl)
			((double *)o->dst)[i] = f;
		else
			((float *)o->dst)[i] = f;
	}
}

/* Runs a syrk: C = alpha·op(A)·op(A)ᵀ + beta·C on one triangle. */
static void
fake_syrk(const struct fake_op *o)
{
	enum CBLAS_UPLO		ul = o->val ? CblasUpper : CblasLower;
	enum CBLAS_TRANSPOSE	tr = o->trans ? CblasTrans : CblasNoTrans;
	int			i, j;

	/* beta = 0: C need not be valid on input (cuBLAS), NaN included. */
	if (o->beta == 0)
		for (j = 0; j < o->m; j++)
			for (i = o->val ? 0 : j; i < (o->val ? j + 1 : o->m);
			    i++) {
				if (o->dbl)
					((double *)o->dst)[(size_t)j * o->ldc +
					    i] = 0;
				else
					((float *)o->dst)[(size_t)j * o->ldc +
					    i] = 0;
			}
	if (o->dbl)
		cblas_dsyrk(CblasColMajor, ul, tr, o->m, o->k, o->alpha,
		    o->src, o->lda, o->beta, o->dst, o->ldc);
	else
		cblas_ssyrk(CblasColMajor, ul, tr, o->m, o->k, (float)o->alpha,
		    o->src, o->lda, (float)o->beta, o->dst, o->ldc);
}

/*
 * Runs a syevd: checks the unused triangle, solves with LAPACKE, writes
 * the eigenvalues and info, and without vectors leaves A as NaN.
 */
static void
fake_syevd(const struct fake_op *o)
{
	char		 jz = o->vectors ? 'V' : 'N', ul = o->val ? 'U' : 'L';
	int		 i, j, info, bad = 0;
	double		 x = 0;

	for (j = 0; j < o->m && !bad; j++)
		for (i = o->val ? j + 1 : 0; i < (o->val ? o->m : j); i++) {
			x = fake_at(o->dst, o->dbl, o->lda, i, j);
			if (!isfinite(x)) {
				fake_misuse("syevd: the unused triangle of the "
				    "%dx%d matrix holds %g at (%d, %d)", o->m,
				    o->m, x, i, j);
				bad = 1;
				break;
			}
		}
	memset(o->work, 0xff, (size_t)o->k * (o->dbl ? 8 : 4));
	if (o->dbl)
		info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, jz, ul, o->m, o->dst,
		    o->lda, o->w);
	else
		info = LAPACKE_ssyevd(LAPACK_COL_MAJOR, jz, ul, o->m, o->dst,
		    o->lda, o->w);
	*o->info = bad ? -5 : info;
	if (!o->vectors)
		for (j = 0; j < o->m; j++)
			memset((char *)o->dst + (size_t)j * o->lda *
			    (o->dbl ? 8 : 4), 0xff, (size_t)o->m *
			    (o->dbl ? 8 : 4));
}

/* Runs one operation. */
static void
fake_exec(struct fake_op *o)
{
	const unsigned char	*s = o->src;
	unsigned char		*d = o->dst;
	int			 i;

	switch (o->kind) {
	case FAKE_COPY:
		memmove(o->dst, o->src, o->n);
		break;
	case FAKE_SET:
		memset(o->dst, o->val, o->n);
		break;
	case FAKE_GETVEC:
		for (i = 0; i < (int)o->n; i++)
			memcpy(d + (size_t)i * o->incy * o->esz,
			    s + (size_t)i * o->incx * o->esz, (size_t)o->esz);
		break;
	case FAKE_WIDEN:
		fake_widen(o);
		break;
	case FAKE_SYRK:
		fake_syrk(o);
		break;
	case FAKE_SYEVD:
		fake_syevd(o);
		break;
	case FAKE_RECORD:
		o->rec->done = 1;
		break;
	case FAKE_WAIT:
		break;
	}
	fake_rec_put(o->rec);
	free(o);
}

/* True when stream s has an operation that may run now. */
static int
fake_ready(const struct CUstream_st *s)
{
	return s->head != NULL &&
	    (s->head->kind != FAKE_WAIT || s->head->rec->done);
}

/* Runs the next operation of one random ready stream; 0 when none is. */
static int
fake_step(void)
{
	struct CUstream_st	*r[FAKE_STREAMS], *s;
	struct fake_op		*o;
	unsigned long		 seq = 0;
	int			 i, n = 0;

	for (i = 0; i < FAKE_STREAMS; i++)
		if (fake_streams[i] != NULL && fake_ready(fake_streams[i]))
			r[n++] = fake_streams[i];
	if (n == 0)
		return 0;
	s = r[fake_rand() % (uint64_t)n];
	o = s->head;
	s->head = o->next;
	if (s->head == NULL)
		s->tail = NULL;
	for (i = 0; i < FAKE_STREAMS; i++)
		if (fake_streams[i] != NULL && fake_streams[i] != s &&
		    fake_streams[i]->head != NULL &&
		    fake_streams[i]->head->seq < o->seq)
			seq = 1;
	fake_st.reordered += seq;
	fake_st.ops++;
	fake_exec(o);
	return 1;
}

/* While the host goes on, the device may run some queued work. */
static void
fake_idle(void)
{
	while (fake_rand01() < fake_eager && fake_step())
		;
}

/* Runs queued work until done(arg); aborts on a deadlock. */
static void
fake_until(int (*done)(const void *), const void *arg, const char *what)
{
	while (!done(arg))
		if (!fake_step())
			fake_die("%s: deadlock: no stream can run", what);
	fake_idle();
}

/* fake_until() predicate: stream arg is empty. */
static int
fake_empty(const void *arg)
{
	return ((const struct CUstream_st *)arg)->head == NULL;
}

/* fake_until() predicate: every stream is empty. */
static int
fake_all_empty(const void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < FAKE_STREAMS; i++)
		if (fake_streams[i] != NULL && fake_streams[i]->head != NULL)
			return 0;
	return 1;
}

/* fake_until() predicate: the record arg has run. */
static int
fake_rec_done(const void *arg)
{
	return ((const struct fake_rec *)arg)->done;
}

/* Allocates a zeroed operation of kind k. */
static struct fake_op *
fake_op_new(enum fake_kind k)
{
	struct fake_op *o = calloc(1, sizeof *o);

	if (o == NULL)
		fake_die("out of memory");
	o->kind = k;
	return o;
}

/* Checks that s is a stream of ours. */
static void
fake_stream_check(cudaStream_t s, const char *what)
{
	int i;

	if (s == NULL)
		fake_die("%s: the legacy default stream is not modelled", what);
	for (i = 0; i < FAKE_STREAMS; i++)
		if (fake_streams[i] == s)
			return;
	fake_die("%s: %p is not a live stream", what, (void *)s);
}

/* Queues o on stream s, then lets the device run a little. */
static void
fake_queue(cudaStream_t s, struct fake_op *o, const char *what)
{
	fake_stream_check(s, what);
	o->seq = ++fake_seq;
	if (s->tail != NULL)
		s->tail->next = o;
	else
		s->head = o;
	s->tail = o;
	fake_idle();
}

/* Allocates n bytes of device or pinned memory, filled with 0xff. */
static cudaError_t
fake_alloc(void **p, size_t n, int pinned)
{
	struct fake_mem *m = calloc(1, sizeof *m);

	if (m == NULL || (m->p = malloc(n > 0 ? n : 1)) == NULL) {
		free(m);
		return fake_last = cudaErrorMemoryAllocation;
	}
	memset(m->p, 0xff, n);
	m->n = n;
	m->pinned = pinned;
	m->next = fake_mems;
	fake_mems = m;
	*p = m->p;
	return cudaSuccess;
}

/* Frees the allocation at p (of the kind pinned) after a device sync. */
static cudaError_t
fake_release(void *p, int pinned, const char *what)
{
	struct fake_mem **mp, *m;

	if (p == NULL)
		return cudaSuccess;
	fake_until(fake_all_empty, NULL, what);
	for (mp = &fake_mems; *mp != NULL; mp = &(*mp)->next)
		if ((*mp)->p == p && (*mp)->pinned == pinned) {
			m = *mp;
			*mp = m->next;
			free(m->p);
			free(m);
			return cudaSuccess;
		}
	fake_die("%s: %p was not allocated by it", what, p);
}

/* --- the CUDA runtime ------------------------------------------------- */

cudaError_t
cudaGetDeviceCount(int *count)
{
	*count = 1;
	return cudaSuccess;
}

cudaError_t
cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
	if (device != 0)
		return fake_last = cudaErrorInvalidDevice;
	memset(prop, 0, sizeof *prop);
	snprintf(prop->name, sizeof prop->name, "fakecuda");
	prop->totalGlobalMem = (size_t)1 << 34;
	prop->major = 9;
	prop->multiProcessorCount = 1;
	return cudaSuccess;
}

cudaError_t
cudaDriverGetVersion(int *v)
{
	*v = CUDART_VERSION;
	return cudaSuccess;
}

cudaError_t
cudaRuntimeGetVersion(int *v)
{
	*v = CUDART_VERSION;
	return cudaSuccess;
}

cudaError_t
cudaSetDevice(int device)
{
	if (device != 0)
		return fake_last = cudaErrorInvalidDevice;
	return cudaSuccess;
}

cudaError_t
cudaGetLastError(void)
{
	cudaError_t e = fake_last;

	fake_last = cudaSuccess;
	return e;
}

const char *
cudaGetErrorString(cudaError_t e)
{
	switch (e) {
	case cudaSuccess:
		return "no error (fakecuda)";
	case cudaErrorInvalidValue:
		return "invalid argument (fakecuda)";
	case cudaErrorMemoryAllocation:
		return "out of memory (fakecuda)";
	case cudaErrorInvalidDevice:
		return "invalid device ordinal (fakecuda)";
	case cudaErrorLaunchFailure:
		return "unspecified launch failure (fakecuda)";
	default:
		return "unknown error (fakecuda)";
	}
}

cudaError_t
cudaMalloc(void **p, size_t n)
{
	return fake_alloc(p, n, 0);
}

cudaError_t
cudaHostAlloc(void **p, size_t n, unsigned int flags)
{
	(void)flags;
	return fake_alloc(p, n, 1);
}

cudaError_t
cudaFree(void *p)
{
	return fake_release(p, 0, "cudaFree");
}

cudaError_t
cudaFreeHost(void *p)
{
	return fake_release(p, 1, "cudaFreeHost");
}

cudaError_t
cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags)
{
	int i;

	(void)flags;
	for (i = 0; i < FAKE_STREAMS && fake_streams[i] != NULL; i++)
		;
	if (i == FAKE_STREAMS)
		fake_die("more than %d streams", FAKE_STREAMS);
	fake_streams[i] = calloc(1, sizeof **fake_streams);
	if (fake_streams[i] == NULL)
		return fake_last = cudaErrorMemoryAllocation;
	*s = fake_streams[i];
	return cudaSuccess;
}

cudaError_t
cudaStreamDestroy(cudaStream_t s)
{
	int i;

	fake_stream_check(s, "cudaStreamDestroy");
	fake_until(fake_empty, s, "cudaStreamDestroy");
	for (i = 0; i < FAKE_STREAMS; i++)
		if (fake_streams[i] == s)
			fake_streams[i] = NULL;
	free(s);
	return cudaSuccess;
}

cudaError_t
cudaStreamSynchronize(cudaStream_t s)
{
	fake_stream_check(s, "cudaStreamSynchronize");
	fake_until(fake_empty, s, "cudaStreamSynchronize");
	return cudaSuccess;
}

cudaError_t
cudaDeviceSynchronize(void)
{
	fake_until(fake_all_empty, NULL, "cudaDeviceSynchronize");
	return cudaSuccess;
}

cudaError_t
cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags)
{
	(void)flags;
	*e = calloc(1, sizeof **e);
	return *e != NULL ? cudaSuccess :
	    (fake_last = cudaErrorMemoryAllocation);
}

cudaError_t
cudaEventDestroy(cudaEvent_t e)
{
	if (e == NULL)
		return fake_last = cudaErrorInvalidResourceHandle;
	fake_rec_put(e->last);
	free(e);
	return cudaSuccess;
}

cudaError_t
cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
	struct fake_rec	*r;
	struct fake_op	*o;

	if (fake_fault())
		return fake_last = cudaErrorLaunchFailure;
	r = calloc(1, sizeof *r);
	o = fake_op_new(FAKE_RECORD);
	if (r == NULL)
		fake_die("out of memory");
	r->refs = 2;
	fake_rec_put(e->last);
	e->last = r;
	o->rec = r;
	fake_queue(s, o, "cudaEventRecord");
	return cudaSuccess;
}

cudaError_t
cudaEventSynchronize(cudaEvent_t e)
{
	if (e->last != NULL)
		fake_until(fake_rec_done, e->last, "cudaEventSynchronize");
	else
		fake_idle();
	return cudaSuccess;
}

cudaError_t
cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags)
{
	struct fake_op *o;

	(void)flags;
	fake_stream_check(s, "cudaStreamWaitEvent");
	if (fake_fault())
		return fake_last = cudaErrorLaunchFailure;
	if (e->last == NULL)		/* never recorded: nothing to wait */
		return cudaSuccess;
	o = fake_op_new(FAKE_WAIT);
	o->rec = e->last;
	o->rec->refs++;
	fake_queue(s, o, "cudaStreamWaitEvent");
	return cudaSuccess;
}

cudaError_t
cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind k,
    cudaStream_t s)
{
	struct fake_op *o;

	if (fake_fault())
		return fake_last = cudaErrorLaunchFailure;
	switch (k) {
	case cudaMemcpyHostToDevice:
		fake_host(src, n, "cudaMemcpyAsync source");
		fake_dev(dst, n, "cudaMemcpyAsync destination");
		break;
	case cudaMemcpyDeviceToHost:
		fake_dev(src, n, "cudaMemcpyAsync source");
		fake_host(dst, n, "cudaMemcpyAsync destination");
		break;
	case cudaMemcpyDeviceToDevice:
		fake_dev(src, n, "cudaMemcpyAsync source");
		fake_dev(dst, n, "cudaMemcpyAsync destination");
		break;
	default:
		fake_die("cudaMemcpyAsync: kind %d is not modelled", (int)k);
	}
	o = fake_op_new(FAKE_COPY);
	o->dst = dst;
	o->src = src;
	o->n = n;
	fake_queue(s, o, "cudaMemcpyAsync");
	return cudaSuccess;
}

cudaError_t
cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s)
{
	struct fake_op *o;

	if (fake_fault())
		return fake_last = cudaErrorLaunchFailure;
	fake_dev(p, n, "cudaMemsetAsync");
	o = fake_op_new(FAKE_SET);
	o->dst = p;
	o->val = value;
	o->n = n;
	fake_queue(s, o, "cudaMemsetAsync");
	return cudaSuccess;
}

/* --- the kernel (svd_cuda_kern.h) ------------------------------------- */

cudaError_t
svd_kern_widen(const void *src, enum svd_kern_src kind, const float *lut,
    size_t n, bool dbl, void *dst, cudaStream_t s)
{
	struct fake_op	*o;
	size_t		 in;

	if (n == 0)
		return cudaSuccess;
	if (fake_fault())
		return cudaErrorLaunchFailure;
	switch (kind) {
	case SVD_KERN_LUT8:
		in = 1;
		fake_dev(lut, 256 * sizeof *lut, "svd_kern_widen table");
		break;
	case SVD_KERN_LUT16:
		in = 2;
		fake_dev(lut, 65536 * sizeof *lut, "svd_kern_widen table");
		break;
	case SVD_KERN_F32:
		if (!dbl)
			return cudaErrorInvalidValue;
		in = 4;
		break;
	default:
		return cudaErrorInvalidValue;
	}
	fake_dev(src, n * in, "svd_kern_widen source");
	fake_dev(dst, n * (dbl ? 8 : 4), "svd_kern_widen destination");
	o = fake_op_new(FAKE_WIDEN);
	o->src = src;
	o->wkind = kind;
	o->lut = lut;
	o->n = n;
	o->dbl = dbl;
	o->dst = dst;
	fake_queue(s, o, "svd_kern_widen");
	return cudaSuccess;
}

/* --- cuBLAS -------------------------------------------------------------- */

/* cublasCreate. */
static cublasStatus_t
fake_blas_create(cublasHandle_t *h)
{
	*h = calloc(1, sizeof **h);
	return *h != NULL ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

/* cublasDestroy. */
static cublasStatus_t
fake_blas_destroy(cublasHandle_t h)
{
	free(h);
	return CUBLAS_STATUS_SUCCESS;
}

/* cublasSetStream. */
static cublasStatus_t
fake_blas_stream(cublasHandle_t h, cudaStream_t s)
{
	h->stream = s;
	return CUBLAS_STATUS_SUCCESS;
}

/* The syrk of either precision; scalars are read now (host pointer mode). */
static cublasStatus_t
fake_syrk_q(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t tr,
    int n, int k, double alpha, const void *a, int lda, double beta, void *c,
    int ldc, int dbl)
{
	size_t		 esz = dbl ? 8 : 4;
	int		 t = tr != CUBLAS_OP_N, ra = t ? k : n, ca = t ? n : k;
	struct fake_op	*o;

	if (n < 0 || k < 0 || lda < (ra > 1 ? ra : 1) ||
	    ldc < (n > 1 ? n : 1) || (uplo != CUBLAS_FILL_MODE_UPPER &&
	    uplo != CUBLAS_FILL_MODE_LOWER))
		return CUBLAS_STATUS_INVALID_VALUE;
	if (n == 0)
		return CUBLAS_STATUS_SUCCESS;
	if (fake_fault())
		return CUBLAS_STATUS_EXECUTION_FAILED;
	if (ca > 0)
		fake_dev(a, ((size_t)(ca - 1) * lda + ra) * esz, "syrk A");
	fake_dev(c, ((size_t)(n - 1) * ldc + n) * esz, "syrk C");
	o = fake_op_new(FAKE_SYRK);
	o->val = uplo == CUBLAS_FILL_MODE_UPPER;
	o->trans = t;
	o->m = n;
	o->k = k;
	o->alpha = alpha;
	o->src = a;
	o->lda = lda;
	o->beta = beta;
	o->dst = c;
	o->ldc = ldc;
	o->dbl = dbl;
	fake_queue(h->stream, o, dbl ? "cublasDsyrk" : "cublasSsyrk");
	return CUBLAS_STATUS_SUCCESS;
}

/* cublasSsyrk. */
static cublasStatus_t
fake_ssyrk(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t tr,
    int n, int k, const float *alpha, const float *a, int lda,
    const float *beta, float *c, int ldc)
{
	return fake_syrk_q(h, uplo, tr, n, k, *alpha, a, lda, *beta, c, ldc, 0);
}

/* cublasDsyrk. */
static cublasStatus_t
fake_dsyrk(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t tr,
    int n, int k, const double *alpha, const double *a, int lda,
    const double *beta, double *c, int ldc)
{
	return fake_syrk_q(h, uplo, tr, n, k, *alpha, a, lda, *beta, c, ldc, 1);
}

/* cublasGetVectorAsync. */
static cublasStatus_t
fake_getvec(int n, int esz, const void *x, int incx, void *y, int incy,
    cudaStream_t s)
{
	struct fake_op *o;

	if (n < 0 || esz <= 0 || incx <= 0 || incy <= 0)
		return CUBLAS_STATUS_INVALID_VALUE;
	if (n == 0)
		return CUBLAS_STATUS_SUCCESS;
	if (fake_fault())
		return CUBLAS_STATUS_EXECUTION_FAILED;
	fake_dev(x, ((size_t)(n - 1) * incx + 1) * esz, "cublasGetVector x");
	fake_host(y, ((size_t)(n - 1) * incy + 1) * esz, "cublasGetVector y");
	o = fake_op_new(FAKE_GETVEC);
	o->n = (size_t)n;
	o->esz = esz;
	o->src = x;
	o->incx = incx;
	o->dst = y;
	o->incy = incy;
	fake_queue(s, o, "cublasGetVectorAsync");
	return CUBLAS_STATUS_SUCCESS;
}

/* cublasGetStatusString. */
static const char *
fake_blas_str(cublasStatus_t s)
{
	return s == CUBLAS_STATUS_SUCCESS ? "success (fakecuda)" :
	    "error (fakecuda)";
}

/* --- cuSOLVER ------------------------------------------------------------ */

/* cusolverDnCreate. */
static cusolverStatus_t
fake_solver_create(cusolverDnHandle_t *h)
{
	*h = calloc(1, sizeof **h);
	return *h != NULL ? CUSOLVER_STATUS_SUCCESS :
	    CUSOLVER_STATUS_ALLOC_FAILED;
}

/* cusolverDnDestroy. */
static cusolverStatus_t
fake_solver_destroy(cusolverDnHandle_t h)
{
	free(h);
	return CUSOLVER_STATUS_SUCCESS;
}

/* cusolverDnSetStream. */
static cusolverStatus_t
fake_solver_stream(cusolverDnHandle_t h, cudaStream_t s)
{
	h->stream = s;
	return CUSOLVER_STATUS_SUCCESS;
}

/* The workspace syevd asks for: LAPACK's minimum for dsyevd. */
static int
fake_lwork(cusolverEigMode_t jobz, int n)
{
	if (n <= 1)
		return 1;
	return jobz == CUSOLVER_EIG_MODE_VECTOR ? 1 + 6 * n + 2 * n * n :
	    2 * n + 1;
}

/* cusolverDnSsyevd_bufferSize. */
static cusolverStatus_t
fake_ssyevd_size(cusolverDnHandle_t h, cusolverEigMode_t jobz,
    cublasFillMode_t uplo, int n, const float *a, int lda, const float *w,
    int *lwork)
{
	(void)h, (void)uplo, (void)a, (void)lda, (void)w;
	*lwork = fake_lwork(jobz, n);
	return CUSOLVER_STATUS_SUCCESS;
}

/* cusolverDnDsyevd_bufferSize. */
static cusolverStatus_t
fake_dsyevd_size(cusolverDnHandle_t h, cusolverEigMode_t jobz,
    cublasFillMode_t uplo, int n, const double *a, int lda, const double *w,
    int *lwork)
{
	(void)h, (void)uplo, (void)a, (void)lda, (void)w;
	*lwork = fake_lwork(jobz, n);
	return CUSOLVER_STATUS_SUCCESS;
}

/* The syevd of either precision. */
static cusolverStatus_t
fake_syevd_q(cusolverDnHandle_t h, cusolverEigMode_t jobz,
    cublasFillMode_t uplo, int n, void *a, int lda, void *w, void *work,
    int lwork, int *info, int dbl)
{
	size_t		 esz = dbl ? 8 : 4;
	struct fake_op	*o;

	if (n < 1 || lda < n || lwork < fake_lwork(jobz, n) ||
	    (uplo != CUBLAS_FILL_MODE_UPPER && uplo != CUBLAS_FILL_MODE_LOWER))
		return CUSOLVER_STATUS_INVALID_VALUE;
	if (fake_fault())
		return CUSOLVER_STATUS_EXECUTION_FAILED;
	fake_dev(a, ((size_t)(n - 1) * lda + n) * esz, "syevd A");
	fake_dev(w, (size_t)n * esz, "syevd W");
	fake_dev(work, (size_t)lwork * esz, "syevd work");
	fake_dev(info, sizeof *info, "syevd info");
	o = fake_op_new(FAKE_SYEVD);
	o->vectors = jobz == CUSOLVER_EIG_MODE_VECTOR;
	o->val = uplo == CUBLAS_FILL_MODE_UPPER;
	o->m = n;
	o->dst = a;
	o->lda = lda;
	o->w = w;
	o->work = work;
	o->k = lwork;
	o->info = info;
	o->dbl = dbl;
	fake_queue(h->stream, o, dbl ? "cusolverDnDsyevd" : "cusolverDnSsyevd");
	return CUSOLVER_STATUS_SUCCESS;
}

/* cusolverDnSsyevd. */
static cusolverStatus_t
fake_ssyevd(cusolverDnHandle_t h, cusolverEigMode_t jobz,
    cublasFillMode_t uplo, int n, float *a, int lda, float *w, float *work,
    int lwork, int *info)
{
	return fake_syevd_q(h, jobz, uplo, n, a, lda, w, work, lwork, info, 0);
}

/* cusolverDnDsyevd. */
static cusolverStatus_t
fake_dsyevd(cusolverDnHandle_t h, cusolverEigMode_t jobz,
    cublasFillMode_t uplo, int n, double *a, int lda, double *w,
    double *work, int lwork, int *info)
{
	return fake_syevd_q(h, jobz, uplo, n, a, lda, w, work, lwork, info, 1);
}

/* --- cuda_dl.h: the table, filled with the fakes -------------------------- */

struct cuda_dl cuda_dl;

/* cuda_dl_load() of cuda_dl.c, without the libraries. */
enum spd_err
cuda_dl_load(struct spd_errbuf *eb)
{
	(void)eb;
	cuda_dl.cublasCreate = fake_blas_create;
	cuda_dl.cublasDestroy = fake_blas_destroy;
	cuda_dl.cublasSetStream = fake_blas_stream;
	cuda_dl.cublasSsyrk = fake_ssyrk;
	cuda_dl.cublasDsyrk = fake_dsyrk;
	cuda_dl.cublasGetVectorAsync = fake_getvec;
	cuda_dl.cublasGetStatusString = fake_blas_str;
	cuda_dl.cusolverDnCreate = fake_solver_create;
	cuda_dl.cusolverDnDestroy = fake_solver_destroy;
	cuda_dl.cusolverDnSetStream = fake_solver_stream;
	cuda_dl.cusolverDnSsyevd_bufferSize = fake_ssyevd_size;
	cuda_dl.cusolverDnDsyevd_bufferSize = fake_dsyevd_size;
	cuda_dl.cusolverDnSsyevd = fake_ssyevd;
	cuda_dl.cusolverDnDsyevd = fake_dsyevd;
	return SPD_OK;
}
