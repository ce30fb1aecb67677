/*
 * report.h: the results of analysing one checkpoint, as plain data, the
 * grouping of its matrices by type, and two serialisations: the reference
 * script's snr_results_<slug>.json (Python-style JSON) and a human table.
 * The strict JSON of the HTTP API is built in api.c from these structs.
 */
#ifndef SPECTRUMD_REPORT_H
#define SPECTRUMD_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "spectrumd/common.h"
#include "spectrumd/fingerprint.h"
#include "spectrumd/heavytail.h"
#include "spectrumd/snr.h"
#include "spectrumd/tensor.h"

enum mat_status {
	MAT_OK,		/* m is valid */
	MAT_NONFINITE,	/* NaN/Inf in the weights */
	MAT_ERROR,	/* solver or read failure; error says why */
	MAT_SKIPPED	/* not analysed (≥3-D, dtype); error says why */
};

struct mat_result {
	char		*name;		/* tensor name (".weight" kept) */
	char		*module;	/* name without ".weight" */
	char		*type;
	int		 layer;		/* -1 when none */
	int		 embedding;	/* embedding or output head */
	uint64_t	 rows, cols;
	enum dtype	 dtype;
	enum mat_status	 status;
	char		*error;		/* NULL when MAT_OK */
	struct snr_result m;
	/*
	 * The heavy-tail metrics of the same spectrum (docs/heavytail.md),
	 * when has_ht: set for MAT_OK, false for the other statuses and for
	 * results stored before they were computed (schema < 5).
	 */
	struct heavytail_result ht;
	bool		 has_ht;
	float		*spectrum;	/* k values, descending, or NULL */
	size_t		 k;
	double		 seconds;	/* compute time of this matrix */
	/* The content fingerprint, when has_fp (reuse on). */
	unsigned char	 fp[FINGERPRINT_LEN];
	bool		 has_fp;
	/*
	 * A reused result: the stored row it was copied from (checkpoint
	 * and matrix ids, 0 when computed here) and the run and step where
	 * it was computed.
	 */
	int64_t		 from_ckpt, from_matrix;
	int64_t		 from_run;
	long long	 from_step;
};

struct report {
	char			*path;		/* checkpoint analysed */
	char			*backend;	/* "cpu" / "cuda" */
	struct mat_result	*mats;		/* in checkpoint order */
	size_t			 nmats, cap;
	uint64_t		 bytes;		/* tensor bytes read */
	double			 seconds;	/* wall time of the analysis */
	char			*method;	/* svd_method(), or NULL */
	size_t			 reused;	/* matrices with from_ckpt */
	uint64_t		 hashed;	/* bytes fingerprinted */
	double			 hash_seconds;	/* summed over workers */
};

/* Allocates an empty report for path. NULL on allocation failure. */
struct report	*report_new(const char *path, const char *backend);
void		 report_free(struct report *r);	/* NULL-safe; frees all */

/*
 * Appends *m to r, taking ownership of its strings and spectrum (m is
 * zeroed). Returns SPD_OK or SPD_ENOMEM (m is left to the caller).
 */
enum spd_err	 report_add(struct report *r, struct mat_result *m);
void		 mat_result_cleanup(struct mat_result *m);	/* NULL-safe */

const char	*mat_status_name(enum mat_status s);	/* "ok", … */

/*
 * True when m has a usable SNR (MAT_OK, not NaN; +inf is usable and ranks
 * highest). The others (NaN/Inf weights, a NaN SNR, errors) are never
 * selected and are left out of the reference JSON (DESIGN.md §2).
 */
bool		 mat_selectable(const struct mat_result *m);

/*
 * Counts the analysed matrices of r without a usable SNR: MAT_NONFINITE,
 * and MAT_OK with a NaN SNR.
 */
size_t		 report_nonfinite(const struct report *r);

/* Counts of matrices by status. */
size_t		 report_count(const struct report *r, enum mat_status s);

/* The members of one type: positions in r->mats, in report order. */
struct report_group {
	const char	*type;		/* borrowed from the report ("" = none) */
	size_t		*idx;		/* the caller may reorder them */
	size_t		 n;
};

/*
 * Groups the matrices i of r with take[i] true by type: types in first-seen
 * order, members in report order. Returns SPD_OK with *out (free it with
 * free(); the groups and their idx are one allocation) and *n (0 when
 * nothing is taken, *out NULL), or SPD_ENOMEM. Reentrant.
 */
enum spd_err	 report_groups(const struct report *r, const bool *take,
		    struct report_group **out, size_t *n);

/*
 * The reference script's flat {module: {"snr": x, "type": t}} for every
 * matrix with a usable SNR (mat_selectable(): NaN/Inf weights and NaN SNRs
 * are left out, so consumers that re-sort it select what select.c does),
 * by layer ascending, report order within a layer (so Python's stable sort
 * breaks ties as select.c does), formatted exactly as Python's
 * json.dump(indent=4): repr() floats, a bare Infinity for +inf.
 * Returns a string the caller free()s, or NULL on allocation failure.
 */
char		*report_reference_json(const struct report *r);

/*
 * Writes a human summary table: per type, count, median/min/max SNR, the
 * median heavy-tail alpha of the matrices with a fit ("-" when none), and
 * the failed or skipped matrices with their reasons.
 */
void		 report_print_table(const struct report *r, FILE *fp);

/*
 * Formats v as Python's repr(float) does ("13.58", "1e-05", "inf" is
 * "Infinity", nan "NaN" as json.dump writes them) into buf.
 */
void		 report_pyfloat(double v, char *buf, size_t len);

#endif
