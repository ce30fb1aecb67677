/*
 * heavytail_tool.c: heavytail_compute() on the singular values read from
 * stdin (whitespace-separated, descending; "nan" and "inf" allowed), for
 * tests/heavytail_check.sh. Prints one line of key=value pairs, numbers
 * with 17 significant digits. Exit status: 0 fitted or not (see status=),
 * 2 refused (SPD_EINVAL), 1 unreadable input or out of memory.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "spectrumd/common.h"
#include "spectrumd/heavytail.h"

/* The most values read: more than any matrix side the daemon sees. */
#define MAX_VALUES	(1u << 22)

/* Reads up to MAX_VALUES numbers from fp into *out (malloc'ed), *n of them. */
static int
read_values(FILE *fp, float **out, size_t *n)
{
	float	*v = NULL, *nv;
	size_t	 cap = 0, len = 0;
	double	 x;
	int	 rc;

	while ((rc = fscanf(fp, "%lf", &x)) == 1) {
		if (len == MAX_VALUES)
			break;
		if (len == cap) {
			cap = cap ? 2 * cap : 1024;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				free(v);
				return -1;
			}
			v = nv;
		}
		v[len++] = (float)x;
	}
	if (rc != EOF || ferror(fp)) {
		free(v);
		return -1;
	}
	*out = v;
	*n = len;
	return 0;
}

/* Prints the result as one key=value line. */
static void
print_result(const struct heavytail_result *r)
{
	printf("status=%s n_evals=%zu n_tail=%zu xmin=%.17g alpha=%.17g "
	    "ks=%.17g sigma=%.17g alpha_weighted=%.17g "
	    "log_spectral_norm=%.17g\n", heavytail_status_name(r->status),
	    r->n_evals, r->n_tail, r->xmin, r->alpha, r->ks, r->sigma,
	    r->alpha_weighted, r->log_spectral_norm);
}

/* Reads the spectrum, fits it and prints the result. */
int
main(void)
{
	struct heavytail_result	 r;
	float			*sv = NULL;
	size_t			 k = 0;
	enum spd_err		 rc;

	if (read_values(stdin, &sv, &k) != 0) {
		fprintf(stderr, "heavytail_tool: unreadable input\n");
		return 1;
	}
	rc = heavytail_compute(sv, k, &r);
	free(sv);
	if (rc != SPD_OK) {
		printf("error=%s\n", spd_strerror(rc));
		return rc == SPD_EINVAL ? 2 : 1;
	}
	print_result(&r);
	return 0;
}
