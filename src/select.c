/*
 * select.c: the unfreeze set of one report (DESIGN.md §2) and its YAML,
 * regex and JSON forms.
 *
 * Types are those of the report's matrices with a usable SNR, in
 * first-seen order; a type left with no members (its only modules were
 * embeddings listed apart, or have no usable SNR) does not appear. The YAML writes a "# <type> layers"
 * comment for every type, also for one with nothing selected, as the
 * reference script does. Patterns keep the module names as they are (the
 * reference layout); the regex format escapes every metacharacter.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "spectrumd/names.h"
#include "spectrumd/select.h"

/* Returns the module of m (its name when no module was set). */
static const char *
module_of(const struct mat_result *m)
{
	if (m->module != NULL)
		return m->module;
	return m->name != NULL ? m->name : "";
}

/*
 * Orders matrix indices by SNR descending (+inf first), then layer
 * ascending, then report order. Only mat_selectable() members are ranked.
 */
static int
cmp_rank(const void *a, const void *b, void *arg)
{
	const struct report	*r = arg;
	size_t			 i = *(const size_t *)a, j = *(const size_t *)b;
	const struct mat_result	*x = &r->mats[i], *y = &r->mats[j];

	if (x->m.snr != y->m.snr)
		return x->m.snr > y->m.snr ? -1 : 1;
	if (x->layer != y->layer)
		return x->layer < y->layer ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* Frees the n strings of v and v. */
static void
free_strv(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * Lists the embedding and head modules of r in s->embeddings: heads first,
 * then inputs, each in report order. Marks them in skip[].
 */
static enum spd_err
collect_embeddings(const struct report *r, struct selection *s, bool *skip)
{
	struct name_info	 ni;
	const struct mat_result	*m;
	size_t			 i, pass;
	bool			*head;
	char			*str;
	enum spd_err		 rc = SPD_OK;

	if ((head = calloc(r->nmats + 1, sizeof *head)) == NULL)
		return SPD_ENOMEM;
	for (i = 0; i < r->nmats; i++) {
		m = &r->mats[i];
		if (!m->embedding || m->status == MAT_SKIPPED)
			continue;
		skip[i] = true;
		/* NaN/Inf weights or a NaN SNR: never selected. */
		if (m->status == MAT_NONFINITE || (m->status == MAT_OK &&
		    isnan(m->m.snr)))
			continue;
		s->nembed++;
		rc = names_parse(m->name != NULL ? m->name : module_of(m),
		    false, &ni);
		if (rc == SPD_ENOMEM)
			goto out;
		if (rc == SPD_OK) {	/* an empty name is no head */
			head[i] = ni.head;
			names_cleanup(&ni);
		}
		rc = SPD_OK;
	}
	if (s->nembed == 0)
		goto out;
	s->embeddings = calloc(s->nembed, sizeof *s->embeddings);
	if (s->embeddings == NULL) {
		s->nembed = 0;
		rc = SPD_ENOMEM;
		goto out;
	}
	s->nembed = 0;
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < r->nmats; i++) {
			if (!skip[i] || head[i] != (pass == 0) ||
			    r->mats[i].status == MAT_NONFINITE ||
			    (r->mats[i].status == MAT_OK &&
			    isnan(r->mats[i].m.snr)))
				continue;
			str = strdup(module_of(&r->mats[i]));
			if ((s->embeddings[s->nembed++] = str) == NULL) {
				rc = SPD_ENOMEM;
				goto out;
			}
		}
	}
out:
	free(head);
	return rc;
}

/* True when module is one of the selected members of type in prev. */
static bool
was_selected(const struct selection *prev, const char *type,
    const char *module)
{
	size_t i, j;

	if (prev == NULL)
		return false;
	for (i = 0; i < prev->ntypes; i++) {
		if (strcmp(prev->types[i].type, type) != 0)
			continue;
		for (j = 0; j < prev->types[i].nsel; j++)
			if (strcmp(prev->types[i].modules[j], module) == 0)
				return true;
	}
	return false;
}

/*
 * Hysteresis on the ranked idx[0..n) of a type (see select.h): marks in
 * keep[] the nsel indices (positions in idx) to select. A member of prev
 * ranked nsel+1 .. nsel+margin displaces the lowest-ranked newcomer (a
 * top-nsel member not in prev), best-ranked first, while newcomers last.
 */
static void
sticky_keep(const struct report *r, const size_t *idx, size_t n, size_t nsel,
    const char *type, const struct selection *prev, unsigned margin,
    bool *keep)
{
	size_t	i, lo, hi;

	for (i = 0; i < n; i++)
		keep[i] = i < nsel;
	if (prev == NULL || margin == 0 || nsel == 0)
		return;
	hi = nsel;		/* next candidate among the sticky ones */
	lo = nsel;		/* newcomers are looked for below lo */
	for (;;) {
		while (hi < n && hi < nsel + margin &&
		    !was_selected(prev, type, module_of(&r->mats[idx[hi]])))
			hi++;
		if (hi >= n || hi >= nsel + margin)
			return;
		while (lo > 0 &&
		    was_selected(prev, type, module_of(&r->mats[idx[lo - 1]])))
			lo--;
		if (lo == 0)
			return;
		keep[--lo] = false;
		keep[hi++] = true;
	}
}

/*
 * Fills type t from group g (its members are sorted in place by rank),
 * keeping ⌊n·p/100⌋ of them, with hysteresis against prev by margin.
 */
static enum spd_err
fill_type(const struct report *r, const struct report_group *g, unsigned p,
    const struct selection *prev, unsigned margin, struct sel_type *t)
{
	size_t	*idx = g->idx, n = g->n, i, np, nsel;
	bool	*keep;

	if (__builtin_mul_overflow(n, (size_t)p, &np))
		return SPD_ENOMEM;
	t->n = n;
	if ((t->type = strdup(g->type)) == NULL)
		return SPD_ENOMEM;
	qsort_r(idx, n, sizeof *idx, cmp_rank, (void *)r);
	if (np / 100 == 0)
		return SPD_OK;
	nsel = np / 100;
	if ((t->modules = calloc(nsel, sizeof *t->modules)) == NULL)
		return SPD_ENOMEM;
	if ((keep = calloc(n, sizeof *keep)) == NULL)
		return SPD_ENOMEM;
	sticky_keep(r, idx, n, nsel, g->type, prev, margin, keep);
	for (i = 0; i < n && t->nsel < nsel; i++) {
		if (!keep[i])
			continue;
		if ((t->modules[t->nsel] = strdup(module_of(&r->mats[idx[i]])))
		    == NULL) {
			free(keep);
			return SPD_ENOMEM;
		}
		t->nsel++;
	}
	free(keep);
	return SPD_OK;
}

/* Groups the members of r by type, first-seen order, and fills s->types. */
static enum spd_err
collect_types(const struct report *r, unsigned p, const bool *skip,
    const struct selection *prev, unsigned margin, struct selection *s)
{
	struct report_group	*grp = NULL;
	size_t			 ng = 0, i;
	bool			*take;
	enum spd_err		 rc;

	if ((take = calloc(r->nmats + 1, sizeof *take)) == NULL)
		return SPD_ENOMEM;
	/*
	 * Members with a usable SNR only: n counts them, as consumers that
	 * re-sort the reference JSON (which leaves the others out) count.
	 */
	for (i = 0; i < r->nmats; i++)
		take[i] = !skip[i] && mat_selectable(&r->mats[i]);
	rc = report_groups(r, take, &grp, &ng);
	if (rc == SPD_OK && ng > 0 &&
	    (s->types = calloc(ng, sizeof *s->types)) == NULL)
		rc = SPD_ENOMEM;
	for (i = 0; rc == SPD_OK && i < ng; i++) {
		s->ntypes++;
		rc = fill_type(r, &grp[i], p, prev, margin, &s->types[i]);
	}
	free(grp);
	free(take);
	return rc;
}

/* Selects the highest-SNR ⌊n·p/100⌋ modules of every type of r. */
enum spd_err
select_compute(const struct report *r, unsigned top_percent,
    bool include_embeddings, struct selection **out)
{
	return select_compute_sticky(r, top_percent, include_embeddings,
	    NULL, 0, out);
}

/* select_compute with hysteresis against prev by margin ranks. */
enum spd_err
select_compute_sticky(const struct report *r, unsigned top_percent,
    bool include_embeddings, const struct selection *prev, unsigned margin,
    struct selection **out)
{
	struct selection	*s;
	bool			*skip;
	enum spd_err		 rc;

	if (r == NULL || out == NULL || top_percent < 1 || top_percent > 100)
		return SPD_EINVAL;
	if ((s = calloc(1, sizeof *s)) == NULL)
		return SPD_ENOMEM;
	s->top_percent = top_percent;
	s->with_embeddings = include_embeddings;
	if ((skip = calloc(r->nmats + 1, sizeof *skip)) == NULL) {
		free(s);
		return SPD_ENOMEM;
	}
	rc = SPD_OK;
	if (include_embeddings)
		rc = collect_embeddings(r, s, skip);
	if (rc == SPD_OK)
		rc = collect_types(r, top_percent, skip, prev, margin, s);
	free(skip);
	if (rc != SPD_OK) {
		selection_free(s);
		return rc;
	}
	*out = s;
	return SPD_OK;
}

/* Frees s and all it owns. */
void
selection_free(struct selection *s)
{
	size_t i;

	if (s == NULL)
		return;
	free_strv(s->embeddings, s->nembed);
	for (i = 0; i < s->ntypes; i++) {
		free(s->types[i].type);
		free_strv(s->types[i].modules, s->types[i].nsel);
	}
	free(s->types);
	free(s);
}

/* Counts the selected modules of s, embeddings included. */
size_t
selection_count(const struct selection *s)
{
	size_t i, n;

	if (s == NULL)
		return 0;
	n = s->nembed;
	for (i = 0; i < s->ntypes; i++)
		n += s->types[i].nsel;
	return n;
}

/* Returns selected module i of s, embeddings first (i < selection_count). */
static const char *
selection_at(const struct selection *s, size_t i)
{
	size_t t;

	if (i < s->nembed)
		return s->embeddings[i];
	i -= s->nembed;
	for (t = 0; i >= s->types[t].nsel; t++)
		i -= s->types[t].nsel;
	return s->types[t].modules[i];
}

/* Orders string pointers by strcmp. */
static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fills v with the modules of s, sorted and without duplicates. */
static size_t
sorted_modules(const struct selection *s, const char **v)
{
	size_t i, n = selection_count(s), k = 0;

	for (i = 0; i < n; i++)
		v[i] = selection_at(s, i);
	qsort(v, n, sizeof *v, cmp_str);
	for (i = 0; i < n; i++)
		if (k == 0 || strcmp(v[k - 1], v[i]) != 0)
			v[k++] = v[i];
	return k;
}

/* True when every module of a is one of b (quadratic; no allocation). */
static bool
subset(const struct selection *a, const struct selection *b)
{
	size_t i, j, na = selection_count(a), nb = selection_count(b);

	for (i = 0; i < na; i++) {
		for (j = 0; j < nb; j++)
			if (strcmp(selection_at(a, i), selection_at(b, j)) == 0)
				break;
		if (j == nb)
			return false;
	}
	return true;
}

/* True when a and b select the same set of modules. */
bool
selection_equal(const struct selection *a, const struct selection *b)
{
	const char	**va, **vb;
	size_t		  na, nb, i;
	bool		  eq;

	if (a == NULL || b == NULL)
		return a == b;
	va = calloc(selection_count(a) + 1, sizeof *va);
	vb = calloc(selection_count(b) + 1, sizeof *vb);
	if (va == NULL || vb == NULL) {
		free(va);
		free(vb);
		return subset(a, b) && subset(b, a);
	}
	na = sorted_modules(a, va);
	nb = sorted_modules(b, vb);
	eq = na == nb;
	for (i = 0; eq && i < na; i++)
		eq = strcmp(va[i], vb[i]) == 0;
	free(va);
	free(vb);
	return eq;
}

/* How many modules one of a and b selects and the other does not. */
enum spd_err
selection_churn(const struct selection *a, const struct selection *b,
    size_t *out)
{
	const char	**va, **vb;
	size_t		  na, nb, i = 0, j = 0, n = 0;
	int		  d;

	if (a == NULL || b == NULL || out == NULL)
		return SPD_EINVAL;
	va = calloc(selection_count(a) + 1, sizeof *va);
	vb = calloc(selection_count(b) + 1, sizeof *vb);
	if (va == NULL || vb == NULL) {
		free(va);
		free(vb);
		return SPD_ENOMEM;
	}
	na = sorted_modules(a, va);
	nb = sorted_modules(b, vb);
	while (i < na && j < nb) {
		d = strcmp(va[i], vb[j]);
		if (d == 0) {
			i++;
			j++;
		} else {
			n++;
			if (d < 0)
				i++;
			else
				j++;
		}
	}
	*out = n + (na - i) + (nb - j);
	free(va);
	free(vb);
	return SPD_OK;
}

/* The selected modules, sorted, de-duplicated and joined with '\n'. */
char *
selection_modules(const struct selection *s)
{
	const char	**v;
	char		 *out, *p;
	size_t		  n, i, k, len = 1;

	if (s == NULL)
		return NULL;
	if ((v = calloc(selection_count(s) + 1, sizeof *v)) == NULL)
		return NULL;
	n = sorted_modules(s, v);
	for (i = 0; i < n; i++)
		len += strlen(v[i]) + 1;	/* cannot overflow: in memory */
	if ((out = malloc(len)) != NULL) {
		p = out;
		for (i = 0; i < n; i++) {
			if (i > 0)
				*p++ = '\n';
			k = strlen(v[i]);
			memcpy(p, v[i], k);
			p += k;
		}
		*p = '\0';
	}
	free(v);
	return out;
}

/* The Axolotl unfrozen_parameters YAML in the reference layout. */
char *
selection_yaml(const struct selection *s)
{
	FILE	*fp;
	char	*buf = NULL;
	size_t	 len = 0, i, j;

	if (s == NULL || (fp = open_memstream(&buf, &len)) == NULL)
		return NULL;
	fputs("unfrozen_parameters:\n", fp);
	for (i = 0; i < s->nembed; i++)
		fprintf(fp, "- ^%s.weight$\n", s->embeddings[i]);
	for (i = 0; i < s->ntypes; i++) {
		fprintf(fp, "# %s layers\n", s->types[i].type);
		for (j = 0; j < s->types[i].nsel; j++)
			fprintf(fp, "- %s\n", s->types[i].modules[j]);
	}
	return spd_memstream_finish(fp, &buf);
}

/* One anchored, fully escaped pattern per selected module. */
char *
selection_regex(const struct selection *s)
{
	FILE		*fp;
	char		*buf = NULL;
	const char	*c;
	size_t		 len = 0, i, n;

	if (s == NULL || (fp = open_memstream(&buf, &len)) == NULL)
		return NULL;
	n = selection_count(s);
	for (i = 0; i < n; i++) {
		fputc('^', fp);
		for (c = selection_at(s, i); *c != '\0'; c++) {
			if (strchr("\\.^$|?*+()[]{}", *c) != NULL)
				fputc('\\', fp);
			fputc(*c, fp);
		}
		fputs("\\.weight$\n", fp);
	}
	return spd_memstream_finish(fp, &buf);
}

/* Adds key = str (null when str is NULL) to obj; false on failure. */
static bool
add_string_or_null(cJSON *obj, const char *key, const char *str)
{
	if (str == NULL)
		return cJSON_AddNullToObject(obj, key) != NULL;
	return cJSON_AddStringToObject(obj, key, str) != NULL;
}

/* Appends a copy of str to the array arr; false on failure. */
static bool
append_string(cJSON *arr, const char *str)
{
	cJSON *item = cJSON_CreateString(str);

	if (item == NULL)
		return false;
	if (!cJSON_AddItemToArray(arr, item)) {
		cJSON_Delete(item);
		return false;
	}
	return true;
}

/* Appends module + suffix to arr; false on failure. */
static bool
append_suffixed(cJSON *arr, const char *pre, const char *module,
    const char *suf)
{
	char	*str;
	bool	 ok;

	if (asprintf(&str, "%s%s%s", pre, module, suf) < 0)
		return false;
	ok = append_string(arr, str);
	free(str);
	return ok;
}

/* Fills the parameters, modules, patterns and by_type members of root. */
static bool
json_lists(cJSON *root, const struct selection *s)
{
	cJSON		*par, *mod, *pat, *bt, *arr;
	const char	*m;
	size_t		 i, j, n = selection_count(s);

	if ((par = cJSON_AddArrayToObject(root, "parameters")) == NULL ||
	    (mod = cJSON_AddArrayToObject(root, "modules")) == NULL ||
	    (pat = cJSON_AddArrayToObject(root, "patterns")) == NULL ||
	    (bt = cJSON_AddObjectToObject(root, "by_type")) == NULL)
		return false;
	for (i = 0; i < n; i++) {
		m = selection_at(s, i);
		if (!append_suffixed(par, "", m, ".weight") ||
		    !append_string(mod, m))
			return false;
		if (i < s->nembed ? !append_suffixed(pat, "^", m, ".weight$") :
		    !append_string(pat, m))
			return false;
	}
	for (i = 0; i < s->ntypes; i++) {
		if ((arr = cJSON_AddArrayToObject(bt, s->types[i].type)) ==
		    NULL)
			return false;
		for (j = 0; j < s->types[i].nsel; j++)
			if (!append_string(arr, s->types[i].modules[j]))
				return false;
	}
	return true;
}

/* The selection as strict JSON for the API. */
char *
selection_json(const struct selection *s, const char *run, long long step,
    const char *checkpoint, long long version)
{
	cJSON	*root;
	char	*out = NULL;
	bool	 ok;

	if (s == NULL || (root = cJSON_CreateObject()) == NULL)
		return NULL;
	ok = add_string_or_null(root, "run", run) &&
	    (step < 0 ? cJSON_AddNullToObject(root, "step") != NULL :
	    cJSON_AddNumberToObject(root, "step", (double)step) != NULL) &&
	    add_string_or_null(root, "checkpoint", checkpoint) &&
	    cJSON_AddNumberToObject(root, "version", (double)version) != NULL &&
	    cJSON_AddNumberToObject(root, "top_percent",
	    (double)s->top_percent) != NULL &&
	    json_lists(root, s);
	if (ok)
		out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return out;
}

/* --- the selection as stored facts ------------------------------------ */

/* Appends a strdup of str to the n strings of *v. */
static enum spd_err
push_str(char ***v, size_t *n, const char *str)
{
	char **nv;

	if ((nv = realloc(*v, (*n + 1) * sizeof **v)) == NULL)
		return SPD_ENOMEM;
	*v = nv;
	if ((nv[*n] = strdup(str)) == NULL)
		return SPD_ENOMEM;
	(*n)++;
	return SPD_OK;
}

/* An empty selection to fill from facts. */
struct selection *
selection_new(unsigned top_percent, bool embeddings)
{
	struct selection *s = calloc(1, sizeof *s);

	if (s != NULL) {
		s->top_percent = top_percent;
		s->with_embeddings = embeddings;
	}
	return s;
}

/* Appends an embedding or head module. */
enum spd_err
selection_add_embedding(struct selection *s, const char *module)
{
	return push_str(&s->embeddings, &s->nembed, module);
}

/* Appends a type with n members and nothing selected. */
enum spd_err
selection_add_type(struct selection *s, const char *type, size_t n)
{
	struct sel_type *nt;

	nt = realloc(s->types, (s->ntypes + 1) * sizeof *s->types);
	if (nt == NULL)
		return SPD_ENOMEM;
	s->types = nt;
	memset(&nt[s->ntypes], 0, sizeof *nt);
	if ((nt[s->ntypes].type = strdup(type)) == NULL)
		return SPD_ENOMEM;
	nt[s->ntypes++].n = n;
	return SPD_OK;
}

/* Appends the next selected member of the last type. */
enum spd_err
selection_add_member(struct selection *s, const char *module)
{
	struct sel_type *t;

	if (s->ntypes == 0)
		return SPD_EINVAL;
	t = &s->types[s->ntypes - 1];
	if (t->nsel >= t->n)
		return SPD_EINVAL;
	return push_str(&t->modules, &t->nsel, module);
}

/* The version of a new selection against the served one (see select.h). */
long long
selection_version(const char *served, long long served_version,
    long long max_version, bool older, const char *modules, bool *changed)
{
	if (served == NULL) {
		*changed = true;
		return max_version + 1;
	}
	if (older) {
		*changed = false;
		return served_version;
	}
	*changed = strcmp(served, modules) != 0;
	return *changed ? max_version + 1 : served_version;
}

/* The learning-rate multiplier of the rank-th of nsel (see select.h). */
double
selection_lr_scale(size_t rank, size_t nsel, double max)
{
	if (nsel <= 1)
		return max;
	if (rank < 1)
		rank = 1;
	if (rank > nsel)
		rank = nsel;
	return max - (max - 1.0) * (double)(rank - 1) / (double)(nsel - 1);
}

/* s in one format (see select.h). */
char *
selection_render(const struct selection *s, enum sel_format fmt,
    const char *run, long long step, const char *checkpoint,
    long long version)
{
	switch (fmt) {
	case SEL_YAML:
		return selection_yaml(s);
	case SEL_REGEX:
		return selection_regex(s);
	case SEL_JSON:
	default:
		return selection_json(s, run, step, checkpoint, version);
	}
}
