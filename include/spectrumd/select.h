/*
 * select.h: the unfreeze set (DESIGN.md §2) and its formats.
 */
#ifndef SPECTRUMD_SELECT_H
#define SPECTRUMD_SELECT_H

#include <stdbool.h>
#include <stddef.h>

#include "spectrumd/common.h"
#include "spectrumd/report.h"

struct sel_type {
	char	*type;
	size_t	 n;		/* members with a usable SNR (mat_selectable) */
	size_t	 nsel;		/* ⌊n·p/100⌋ */
	char	**modules;	/* the nsel chosen, highest SNR first */
};

struct selection {
	unsigned	 top_percent;
	char		**embeddings;	/* modules: output head(s) first, then inputs */
	size_t		 nembed;
	struct sel_type	*types;		/* in first-seen order */
	size_t		 ntypes;
};

/*
 * Selects, per type, the ⌊n·p/100⌋ matrices of highest SNR: +inf highest,
 * ties by layer ascending. Only matrices with a usable SNR
 * (mat_selectable()) are members: NaN/Inf weights, NaN SNRs, errors and
 * skipped matrices take no part and are never selected, so the reference
 * JSON (which leaves them out) re-sorted by a consumer selects the same.
 * Embedding and head modules (as found in r) are listed apart when
 * include_embeddings, except those with NaN/Inf weights, and then are not
 * members of their types. Returns
 * SPD_OK and *out (free with selection_free), SPD_EINVAL (p not in 1..100)
 * or SPD_ENOMEM.
 */
enum spd_err	 select_compute(const struct report *r, unsigned top_percent,
		    bool include_embeddings, struct selection **out);
void		 selection_free(struct selection *s);	/* NULL-safe */

/* True when a and b select the same modules (order-insensitive). */
bool		 selection_equal(const struct selection *a,
		    const struct selection *b);

/*
 * The selected modules, embeddings included, sorted and joined with '\n':
 * equal strings mean equal sets. Caller free()s; NULL on allocation failure.
 */
char		*selection_modules(const struct selection *s);

/* Total selected modules, embeddings included. */
size_t		 selection_count(const struct selection *s);

/*
 * The Axolotl unfrozen_parameters YAML in the reference layout:
 * "- ^<head>.weight$", "- ^<embed>.weight$", then "# <type> layers" and bare
 * module names. Caller free()s; NULL on allocation failure.
 */
char		*selection_yaml(const struct selection *s);

/* One anchored pattern per line, "^<module>\.weight$". Caller free()s. */
char		*selection_regex(const struct selection *s);

/*
 * Strict JSON {run, step, checkpoint, version, top_percent, parameters,
 * modules, patterns, by_type}; run/checkpoint may be NULL (null), step < 0
 * is null. Caller free()s; NULL on allocation failure.
 */
char		*selection_json(const struct selection *s, const char *run,
		    long long step, const char *checkpoint, long long version);

#endif
