/*
 * cuda_dl.c: loads the cuda backend's cuBLAS and cuSOLVER calls at run
 * time (see cuda_dl.h). The libraries are found as the dynamic linker finds
 * any: LD_LIBRARY_PATH, the program's run path (the toolkit's lib64 that
 * configure used), ld.so.conf.
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "cuda_dl.h"

#define CUDA_DL_STR2(f)	#f
#define CUDA_DL_STR(f)	CUDA_DL_STR2(f)

struct cuda_dl	cuda_dl;

/* The libraries, in load order (libcusolver needs libcublas). */
enum { CUDA_DL_BLAS, CUDA_DL_SOLVER, CUDA_DL_NLIBS };
static const char *const cuda_dl_sonames[CUDA_DL_NLIBS] = {
	CUBLAS_SONAME, CUSOLVER_SONAME
};

/* One member of struct cuda_dl: its library, symbol and place. */
struct cuda_dl_sym {
	int		 lib;
	const char	*name;
	size_t		 off;
};

#define CUDA_DL_SYM(l, f) \
	{ CUDA_DL_##l, CUDA_DL_STR(f), offsetof(struct cuda_dl, f) }

static const struct cuda_dl_sym cuda_dl_syms[] = {
	CUDA_DL_SYM(BLAS, cublasCreate),
	CUDA_DL_SYM(BLAS, cublasDestroy),
	CUDA_DL_SYM(BLAS, cublasSetStream),
	CUDA_DL_SYM(BLAS, cublasSsyrk),
	CUDA_DL_SYM(BLAS, cublasDsyrk),
	CUDA_DL_SYM(BLAS, cublasGetVectorAsync),
	CUDA_DL_SYM(BLAS, cublasGetStatusString),
	CUDA_DL_SYM(SOLVER, cusolverDnCreate),
	CUDA_DL_SYM(SOLVER, cusolverDnDestroy),
	CUDA_DL_SYM(SOLVER, cusolverDnSetStream),
	CUDA_DL_SYM(SOLVER, cusolverDnSsyevd_bufferSize),
	CUDA_DL_SYM(SOLVER, cusolverDnDsyevd_bufferSize),
	CUDA_DL_SYM(SOLVER, cusolverDnSsyevd),
	CUDA_DL_SYM(SOLVER, cusolverDnDsyevd),
};

_Static_assert(sizeof(struct cuda_dl) == nitems(cuda_dl_syms) * sizeof(void *),
    "every member of struct cuda_dl has an entry in cuda_dl_syms");

/* The outcome of the one load: SPD_OK or SPD_ENODEV and why. */
static pthread_once_t		cuda_dl_once = PTHREAD_ONCE_INIT;
static enum spd_err		cuda_dl_rc;
static struct spd_errbuf	cuda_dl_why;

/* Opens the libraries and resolves every symbol into t. */
static enum spd_err
cuda_dl_open(struct cuda_dl *t, struct spd_errbuf *eb)
{
	void		*h[CUDA_DL_NLIBS], *p;
	const char	*err;
	size_t		 i;

	for (i = 0; i < CUDA_DL_NLIBS; i++) {
		h[i] = dlopen(cuda_dl_sonames[i], RTLD_NOW | RTLD_LOCAL);
		if (h[i] == NULL) {
			err = dlerror();
			return spd_fail(eb, SPD_ENODEV,
			    "cuda: cannot load %s: %s", cuda_dl_sonames[i],
			    err != NULL ? err : "?");
		}
	}
	for (i = 0; i < nitems(cuda_dl_syms); i++) {
		(void)dlerror();
		p = dlsym(h[cuda_dl_syms[i].lib], cuda_dl_syms[i].name);
		if (p == NULL) {
			err = dlerror();
			return spd_fail(eb, SPD_ENODEV, "cuda: %s lacks %s: %s",
			    cuda_dl_sonames[cuda_dl_syms[i].lib],
			    cuda_dl_syms[i].name, err != NULL ? err : "NULL");
		}
		/* POSIX: a dlsym() result converts to a function pointer. */
		memcpy((char *)t + cuda_dl_syms[i].off, &p, sizeof p);
	}
	return SPD_OK;
}

/* pthread_once routine: loads into cuda_dl, or records why not. */
static void
cuda_dl_init(void)
{
	struct cuda_dl t;

	memset(&t, 0, sizeof t);
	cuda_dl_rc = cuda_dl_open(&t, &cuda_dl_why);
	if (cuda_dl_rc == SPD_OK)
		cuda_dl = t;
}

/* Loads the libraries once; see cuda_dl.h. */
enum spd_err
cuda_dl_load(struct spd_errbuf *eb)
{
	if (pthread_once(&cuda_dl_once, cuda_dl_init) != 0)
		return spd_fail(eb, SPD_EINTERNAL, "cuda: pthread_once failed");
	if (cuda_dl_rc != SPD_OK)
		return spd_fail(eb, cuda_dl_rc, "%s", cuda_dl_why.msg);
	return SPD_OK;
}
