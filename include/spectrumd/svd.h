/*
 * svd.h: singular values of one matrix, by the backend chosen at run time
 * (DESIGN.md §6). A handle is owned by one thread; open one per worker.
 */
#ifndef SPECTRUMD_SVD_H
#define SPECTRUMD_SVD_H

#include <stddef.h>

#include "spectrumd/common.h"
#include "spectrumd/tensor.h"

/* A row-major rows × cols matrix in its stored dtype (not copied). */
struct svd_matrix {
	const void	*data;
	enum dtype	 dtype;		/* dtype_is_analyzable() */
	size_t		 rows, cols;
};

struct svd_opts {
	const char	*backend;	/* "auto", "cpu" or "cuda"; NULL = auto */
	unsigned	 threads;	/* BLAS threads for cpu; 0 = all cores */
	int		 device;	/* cuda device ordinal */
	int		 quiet;		/* auto: do not report the fallback */
};

struct svd;

/*
 * Opens a backend. "auto" takes cuda when a device is present (and the
 * CUDA libraries load), else cpu; "cuda" with no usable device or library
 * is SPD_ENODEV (eb gives every reason). Returns SPD_OK and *out,
 * SPD_EINVAL (unknown name), SPD_ENODEV or SPD_ENOMEM. When auto fell back
 * to cpu, eb holds one line for the log ("no GPU: using the CPU", or why
 * cuda cannot run) and the call still succeeds.
 */
enum spd_err	 svd_open(const struct svd_opts *o, struct svd **out,
		    struct spd_errbuf *eb);
void		 svd_close(struct svd *s);	/* NULL-safe */

/* "cpu" or "cuda"; borrowed, static. */
const char	*svd_name(const struct svd *s);

/*
 * The version of what decides a backend's values: its route and the
 * float64 redo rule (svd_need_f64). Bump it whenever either changes, so
 * that results stored under the old rule are not reused for new ones.
 */
#define SVD_RULE_VERSION	1

/*
 * What makes two results of one matrix comparable bit for bit: the
 * backend and SVD_RULE_VERSION ("cpu/r1"). Borrowed, static.
 */
const char	*svd_method(const struct svd *s);

/* Number of visible CUDA devices (0 without a CUDA build or a device). */
int		 svd_cuda_devices(void);

/*
 * Writes the min(rows, cols) singular values of m to sv in descending
 * order. Returns SPD_OK, SPD_ENONFINITE (NaN/Inf in m), SPD_EINVAL (empty
 * or unsupported dtype), SPD_ENOMEM (matrix too large for memory) or
 * SPD_EINTERNAL (solver failure; eb says which call).
 */
enum spd_err	 svd_values(struct svd *s, const struct svd_matrix *m,
		    float *sv, struct spd_errbuf *eb);

#endif
