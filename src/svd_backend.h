/*
 * svd_backend.h (private to svd*.c): the vtable each compute backend fills.
 * svd.c picks a backend and owns the shared logic.
 */
#ifndef SPECTRUMD_SVD_BACKEND_H
#define SPECTRUMD_SVD_BACKEND_H

#include "spectrumd/svd.h"

struct svd_backend {
	const char	*name;
	/* SPD_OK when usable on this host, else SPD_ENODEV and eb says why. */
	enum spd_err	(*probe)(struct spd_errbuf *eb);
	enum spd_err	(*ctx_new)(const struct svd_opts *o, void **ctx,
			    struct spd_errbuf *eb);
	void		(*ctx_free)(void *ctx);
	/* As svd_values(). */
	enum spd_err	(*values)(void *ctx, const struct svd_matrix *m,
			    float *sv, struct spd_errbuf *eb);
};

/*
 * True when the float32-route values sv (k of them, descending, finite) of a
 * rows × cols matrix may miss the SNR by more than its 1e-5 budget, so the
 * backend must redo the matrix in float64 (DESIGN.md §6). Pure; in svd.c.
 */
bool	svd_need_f64(const float *sv, size_t k, size_t rows, size_t cols);

extern const struct svd_backend svd_cpu_backend;
#ifdef HAVE_CUDA
extern const struct svd_backend svd_cuda_backend;
int	svd_cuda_count(void);
#endif

#endif
