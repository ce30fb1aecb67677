/*
 * svd_backend.h (private to svd*.c): the vtable each compute backend fills,
 * and the float64 rule of svd.c that tests/test_svd_bound.c checks. svd.c
 * picks a backend and owns the policy; the graph is svd.c → the backends
 * (svd_cpu.c, svd_cuda.c, through this table) → svd_kit.c, and a backend
 * never calls svd.c (tests/check-layers.sh checks the objects).
 */
#ifndef SPECTRUMD_SVD_BACKEND_H
#define SPECTRUMD_SVD_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "spectrumd/common.h"

/* spectrumd/svd.h: the backends include it for the members. */
struct svd_matrix;
struct svd_opts;

/*
 * What a route did, for the error bound of docs/snr-error-bound.md: the
 * unit roundoffs of the Gram accumulation and of the eigen-solve (2^-24 or
 * 2^-53) and the computed trace of the Gram matrix. The stored values
 * must reach the Gram matrix exactly (F64 matrices take no float32 route).
 */
struct svd_route {
	double	ug;
	double	ue;
	double	tr;
};

struct svd_backend {
	const char	*name;
	const char	*method;	/* svd_method(): SVD_METHOD(name) */
	/*
	 * SPD_OK when usable on this host, else SPD_ENODEV and eb says why:
	 * briefly for auto, every reason when named (asked for by name).
	 */
	enum spd_err	(*probe)(bool named, struct spd_errbuf *eb);
	/*
	 * The number of devices svd_opts.device may name (0: none seen);
	 * NULL for a backend without device ordinals (cpu).
	 */
	int		(*devices)(void);
	enum spd_err	(*ctx_new)(const struct svd_opts *o, void **ctx,
			    struct spd_errbuf *eb);
	void		(*ctx_free)(void *ctx);
	/*
	 * The min(rows, cols) singular values of m into sv, descending, by
	 * the backend's fast float32-Gram route (dbl false) or in float64.
	 * Errors as svd_values(), plus SPD_EUNSUPPORTED when the route cannot
	 * take m (finite values whose squares overflow it, or no fast route
	 * for m's dtype, as F64): svd.c then takes the float64 route. *rt
	 * says what the route did.
	 */
	enum spd_err	(*values)(void *ctx, const struct svd_matrix *m,
			    bool dbl, float *sv, struct svd_route *rt,
			    struct spd_errbuf *eb);
};

/* The method tag of backend name under SVD_RULE_VERSION ("cpu/r1"). */
#define SVD_METHOD(name)	name "/r" SVD_STR(SVD_RULE_VERSION)
#define SVD_STR(x)		SVD_STR_(x)
#define SVD_STR_(x)		#x

/* svd.c's float64 rule, here for tests and the benchmark: no backend. */

/*
 * A bound δ on |λ̂ᵢ − sᵢ²| for every i (Weyl), from the route rt of a
 * matrix whose Gram matrix is k × k with inner dimension n and whose
 * largest computed eigenvalue is lmax; +inf when none holds. Pure.
 */
double	svd_route_delta(const struct svd_route *rt, size_t k, size_t n,
	    double lmax);

/*
 * An upper bound on the relative SNR error |SNR̂ − SNR| / SNR of the k
 * descending float values sv of a rows × cols matrix, when each came from
 * an eigenvalue within delta of the true sᵢ² and was rounded to float; 0
 * when exact, +inf when the edge rules may differ or nothing bounds it.
 * Pure. docs/snr-error-bound.md derives it.
 */
double	svd_snr_bound(const float *sv, size_t k, size_t rows, size_t cols,
	    double delta);

extern const struct svd_backend svd_cpu_backend;
#ifdef HAVE_CUDA
extern const struct svd_backend svd_cuda_backend;
#endif

#endif
