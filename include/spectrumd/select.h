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
	bool		 with_embeddings; /* embeddings and heads listed apart */
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

/*
 * select_compute with hysteresis (config `stickiness` = margin): per type,
 * with nsel = ⌊n·p/100⌋ and ranks 1..n as select_compute orders them, a
 * module selected in prev (same type) and now ranked nsel+1 .. nsel+margin
 * stays selected, displacing the lowest-ranked newcomer (a module ranked
 * 1..nsel that prev did not select); the best-ranked such modules stay
 * first, and only while there are newcomers to displace, so every type
 * still selects exactly nsel. A module ranked beyond nsel+margin, or no
 * longer a member (NaN SNR, error), drops out. prev NULL or margin 0:
 * exactly select_compute. prev should be the selection served before this
 * one at the same top_percent. Modules stay listed highest SNR first.
 */
enum spd_err	 select_compute_sticky(const struct report *r,
		    unsigned top_percent, bool include_embeddings,
		    const struct selection *prev, unsigned margin,
		    struct selection **out);
void		 selection_free(struct selection *s);	/* NULL-safe */

/* True when a and b select the same modules (order-insensitive). */
bool		 selection_equal(const struct selection *a,
		    const struct selection *b);

/*
 * The churn between two selections: how many modules one selects and the
 * other does not (|added| + |removed|), in *out. SPD_OK, SPD_EINVAL (NULL)
 * or SPD_ENOMEM.
 */
enum spd_err	 selection_churn(const struct selection *a,
		    const struct selection *b, size_t *out);

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

/* --- the selection as stored facts ------------------------------------ */

/*
 * An empty selection, to be filled from stored facts in order: the
 * embeddings, then each type followed by its selected members, highest
 * SNR first. NULL on allocation failure.
 */
struct selection *selection_new(unsigned top_percent, bool embeddings);
/* Appends an embedding or head module. SPD_OK or SPD_ENOMEM. */
enum spd_err	 selection_add_embedding(struct selection *s,
		    const char *module);
/* Appends a type with n members in the checkpoint and none selected yet. */
enum spd_err	 selection_add_type(struct selection *s, const char *type,
		    size_t n);
/*
 * Appends module as the next selected member of the last type added.
 * SPD_EINVAL when there is no type or it would exceed the type's n.
 */
enum spd_err	 selection_add_member(struct selection *s,
		    const char *module);

/*
 * THE version rule (DESIGN.md §2), the one place it is written: the version
 * of a run's new selection `modules` (selection_modules()) at top_percent,
 * given the one served now (the selection of the highest step so far:
 * `served` and its `served_version`; served NULL when there is none yet)
 * and the highest version given so far (`max_version`). `older` is true
 * when the new selection belongs to a checkpoint older than the served one
 * (backfill): the served one stays, so does its version. Otherwise the same
 * set keeps the version and a new set gets max_version + 1 (the first: 1).
 * *changed says whether the served set changes.
 */
long long	 selection_version(const char *served, long long served_version,
		    long long max_version, bool older, const char *modules,
		    bool *changed);

/*
 * The learning-rate multiplier (GET /lr_scales) of the module listed
 * rank-th (1 = highest SNR) among the nsel selected of its type: linear
 * from max at rank 1 to 1.0 at rank nsel; max when nsel is 1. rank is
 * clamped to 1..nsel.
 */
double		 selection_lr_scale(size_t rank, size_t nsel, double max);

/* --- rendering ------------------------------------------------------------ */

enum sel_format { SEL_JSON, SEL_YAML, SEL_REGEX };

/*
 * s in one format: the one path from a selection to what is served or
 * written (JSON takes run, step, checkpoint and version as
 * selection_json does; YAML and regex ignore them). Caller free()s; NULL on
 * allocation failure.
 */
char		*selection_render(const struct selection *s,
		    enum sel_format fmt, const char *run, long long step,
		    const char *checkpoint, long long version);

#endif
