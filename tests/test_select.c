/*
 * test_select.c: the unfreeze set (DESIGN.md §2) on hand-built reports:
 * ⌊n·p/100⌋, ranking, embeddings, and the YAML/regex/JSON bytes.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "spectrumd/names.h"
#include "spectrumd/select.h"
#include "tap.h"

/* A matrix of a test report: its tensor name, status and SNR. */
struct tmat {
	const char	*name;
	enum mat_status	 status;
	double		 snr;
};

/* Builds a report from n matrices, names parsed as the analyzer does. */
static struct report *
build(const struct tmat *t, size_t n)
{
	struct report		*r;
	struct mat_result	 m;
	struct name_info	 ni;
	size_t			 i;

	if ((r = report_new("/ck/checkpoint-500", "cpu")) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		memset(&m, 0, sizeof m);
		if (names_parse(t[i].name, false, &ni) != SPD_OK)
			goto fail;
		m.name = strdup(t[i].name);
		m.module = ni.module;
		m.type = ni.type;
		m.layer = ni.layer;
		m.embedding = ni.embedding;
		m.status = t[i].status;
		m.m.snr = t[i].snr;
		if (m.name == NULL || report_add(r, &m) != SPD_OK) {
			mat_result_cleanup(&m);
			goto fail;
		}
	}
	return r;
fail:
	report_free(r);
	return NULL;
}

/* Selects from a report built from t; NULL when anything fails. */
static struct selection *
sel_of(const struct tmat *t, size_t n, unsigned p, bool emb)
{
	struct report		*r = build(t, n);
	struct selection	*s = NULL;

	if (r == NULL || select_compute(r, p, emb, &s) != SPD_OK)
		s = NULL;
	report_free(r);
	return s;
}

/* Joins the n strings of v with ',' for comparison. */
static char *
joined(char *const *v, size_t n)
{
	char	*buf = NULL;
	size_t	 len = 0, i;
	FILE	*fp;

	if ((fp = open_memstream(&buf, &len)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		fprintf(fp, "%s%s", i ? "," : "", v[i]);
	fclose(fp);
	return buf;
}

/* Checks the modules of type ti of s against a comma-separated list. */
static void
check_type(const struct selection *s, size_t ti, const char *type, size_t n,
    const char *want, const char *what)
{
	char *got;

	if (!ok(s != NULL && ti < s->ntypes, "%s: type %zu exists", what, ti))
		return;
	got = joined(s->types[ti].modules, s->types[ti].nsel);
	ok(strcmp(s->types[ti].type, type) == 0 && s->types[ti].n == n &&
	    got != NULL && strcmp(got, want) == 0,
	    "%s: %s n %zu [%s]", what, s->types[ti].type, s->types[ti].n,
	    got ? got : "(null)");
	free(got);
}

/* ⌊n·p/100⌋ in integer arithmetic: 32 at 25 → 8, 3 at 25 → 0, 1 at 100. */
static void
test_floor(void)
{
	static const unsigned	 ps[] = { 25, 100, 1, 99 };
	static const size_t	 want[][3] = {
		{ 8, 0, 0 }, { 32, 3, 1 }, { 0, 0, 0 }, { 31, 2, 0 },
	};
	struct tmat		 t[36];
	char			 names[36][64];
	struct selection	*s;
	size_t			 i, k = 0;

	for (i = 0; i < 32; i++) {
		snprintf(names[k], sizeof names[k], "m.layers.%zu.a.weight", i);
		t[k] = (struct tmat){ names[k], MAT_OK, (double)i };
		k++;
	}
	for (i = 0; i < 3; i++) {
		snprintf(names[k], sizeof names[k], "m.layers.%zu.b.weight", i);
		t[k] = (struct tmat){ names[k], MAT_OK, 1 };
		k++;
	}
	t[k++] = (struct tmat){ "m.layers.0.c.weight", MAT_OK, 1 };
	for (i = 0; i < nitems(ps); i++) {
		s = sel_of(t, k, ps[i], true);
		ok(s != NULL && s->ntypes == 3 &&
		    s->types[0].nsel == want[i][0] &&
		    s->types[1].nsel == want[i][1] &&
		    s->types[2].nsel == want[i][2] &&
		    s->types[0].n == 32 && s->types[1].n == 3 &&
		    s->types[2].n == 1 && selection_count(s) ==
		    want[i][0] + want[i][1] + want[i][2],
		    "p %u: 32/3/1 members keep %zu/%zu/%zu", ps[i], want[i][0],
		    want[i][1], want[i][2]);
		if (i == 0 && s != NULL)	/* highest SNR first */
			check_type(s, 0, "a", 32, "m.layers.31.a,m.layers.30.a,"
			    "m.layers.29.a,m.layers.28.a,m.layers.27.a,"
			    "m.layers.26.a,m.layers.25.a,m.layers.24.a",
			    "p 25 keeps the top 8");
		selection_free(s);
	}
}

/*
 * +inf first, ties by layer (not report order); NaN SNRs, NaN/Inf weights
 * and errors are no members and never selected, even at p 100.
 */
static void
test_ranking(void)
{
	static const struct tmat t[] = {
		{ "x.6.d.weight", MAT_OK, 1.0 },
		{ "x.0.d.weight", MAT_OK, 1.0 },
		{ "x.5.d.weight", MAT_NONFINITE, 9.0 },
		{ "x.1.d.weight", MAT_OK, INFINITY },
		{ "x.3.d.weight", MAT_ERROR, 9.0 },
		{ "x.2.d.weight", MAT_OK, NAN },
		{ "x.4.d.weight", MAT_OK, 2.0 },
		{ "x.7.d.weight", MAT_SKIPPED, 50.0 },
		{ "x.8.d.weight", MAT_OK, 0.5 },
	};
	struct selection *s;

	s = sel_of(t, nitems(t), 100, true);
	check_type(s, 0, "d", 5, "x.1.d,x.4.d,x.0.d,x.6.d,x.8.d",
	    "p 100 order");
	selection_free(s);
	s = sel_of(t, nitems(t), 50, true);
	check_type(s, 0, "d", 5, "x.1.d,x.4.d", "p 50 order");
	selection_free(s);
}

/* A GPT-2-like model: embeddings by their real names, heads first. */
static const struct tmat gpt2[] = {
	{ "transformer.wte.weight", MAT_OK, 0.1 },
	{ "transformer.wpe.weight", MAT_OK, 0.2 },
	{ "transformer.h.0.attn.c_attn.weight", MAT_OK, 3 },
	{ "transformer.h.1.attn.c_attn.weight", MAT_OK, 4 },
	{ "lm_head.weight", MAT_OK, 0.3 },
};

/* Embeddings listed apart, excluded from their types, or not. */
static void
test_embeddings(void)
{
	static const struct tmat tied[] = {
		{ "model.embed_tokens.weight", MAT_OK, 1 },
		{ "model.layers.0.mlp.up_proj.weight", MAT_OK, 1 },
	};
	static const struct tmat skipped[] = {
		{ "model.embed_tokens.weight", MAT_SKIPPED, 1 },
		{ "lm_head.weight", MAT_ERROR, 1 },
		{ "model.layers.0.mlp.up_proj.weight", MAT_OK, 1 },
	};
	struct selection	*s;
	char			*got;

	s = sel_of(gpt2, nitems(gpt2), 50, true);
	got = s ? joined(s->embeddings, s->nembed) : NULL;
	ok(got != NULL && strcmp(got, "lm_head,transformer.wte") == 0,
	    "gpt2 embeddings, head first: %s", got ? got : "(null)");
	free(got);
	ok(s != NULL && s->ntypes == 2, "gpt2: lm_head and wte are no types");
	check_type(s, 0, "transformer.wpe", 1, "", "gpt2 wpe");
	check_type(s, 1, "attn.c_attn", 2, "transformer.h.1.attn.c_attn",
	    "gpt2 attn");
	ok(selection_count(s) == 3, "gpt2: 3 selected");
	selection_free(s);

	s = sel_of(gpt2, nitems(gpt2), 100, false);
	ok(s != NULL && s->nembed == 0 && s->ntypes == 4,
	    "include_embeddings off: no embeddings, 4 types");
	check_type(s, 0, "transformer.wte", 1, "transformer.wte",
	    "off: wte is a type");
	check_type(s, 3, "lm_head", 1, "lm_head", "off: lm_head is a type");
	selection_free(s);

	s = sel_of(tied, nitems(tied), 25, true);
	ok(s != NULL && s->nembed == 1 &&
	    strcmp(s->embeddings[0], "model.embed_tokens") == 0 &&
	    s->ntypes == 1, "tied embeddings: only the input embedding");
	selection_free(s);

	s = sel_of(skipped, nitems(skipped), 25, true);
	ok(s != NULL && s->nembed == 1 &&
	    strcmp(s->embeddings[0], "lm_head") == 0 && s->ntypes == 1 &&
	    s->types[0].n == 1,
	    "skipped embedding not listed, errored head is");
	selection_free(s);
}

/* A small Llama-like case for the three formats. */
static const struct tmat llama[] = {
	{ "model.embed_tokens.weight", MAT_OK, 5 },
	{ "model.layers.0.self_attn.q_proj.weight", MAT_OK, 1 },
	{ "model.layers.0.mlp.down_proj.weight", MAT_OK, 3 },
	{ "model.layers.1.self_attn.q_proj.weight", MAT_OK, 2 },
	{ "model.layers.1.mlp.down_proj.weight", MAT_OK, 4 },
	{ "model.norm.weight", MAT_OK, 1 },
	{ "lm_head.weight", MAT_OK, 0.5 },
};

static const char want_yaml[] =
    "unfrozen_parameters:\n"
    "- ^lm_head.weight$\n"
    "- ^model.embed_tokens.weight$\n"
    "# self_attn.q_proj layers\n"
    "- model.layers.1.self_attn.q_proj\n"
    "# mlp.down_proj layers\n"
    "- model.layers.1.mlp.down_proj\n"
    "# model.norm layers\n";

static const char want_regex[] =
    "^lm_head\\.weight$\n"
    "^model\\.embed_tokens\\.weight$\n"
    "^model\\.layers\\.1\\.self_attn\\.q_proj\\.weight$\n"
    "^model\\.layers\\.1\\.mlp\\.down_proj\\.weight$\n";

static const char want_json[] =
    "{\"run\":\"r1\",\"step\":500,\"checkpoint\":\"/ck/checkpoint-500\","
    "\"version\":3,\"top_percent\":50,"
    "\"parameters\":[\"lm_head.weight\",\"model.embed_tokens.weight\","
    "\"model.layers.1.self_attn.q_proj.weight\","
    "\"model.layers.1.mlp.down_proj.weight\"],"
    "\"modules\":[\"lm_head\",\"model.embed_tokens\","
    "\"model.layers.1.self_attn.q_proj\",\"model.layers.1.mlp.down_proj\"],"
    "\"patterns\":[\"^lm_head.weight$\",\"^model.embed_tokens.weight$\","
    "\"model.layers.1.self_attn.q_proj\",\"model.layers.1.mlp.down_proj\"],"
    "\"by_type\":{\"self_attn.q_proj\":[\"model.layers.1.self_attn.q_proj\"],"
    "\"mlp.down_proj\":[\"model.layers.1.mlp.down_proj\"],"
    "\"model.norm\":[]}}";

/* Prints s as TAP diagnostics, "# " before every line. */
static void
diag(const char *s)
{
	const char *nl;

	for (; s != NULL && *s != '\0'; s = nl + 1) {
		if ((nl = strchr(s, '\n')) == NULL) {
			printf("# %s\n", s);
			return;
		}
		printf("# %.*s\n", (int)(nl - s), s);
	}
}

/* Checks got against want exactly, showing got when it differs. */
static void
same(char *got, const char *want, const char *what)
{
	if (!ok(got != NULL && strcmp(got, want) == 0, "%s exact", what))
		diag(got);
	free(got);
}

/* The YAML, regex and JSON bytes of the small case. */
static void
test_formats(void)
{
	static const struct tmat meta[] = {
		{ "a+b(c)[d]{e}|f?g*h^i$j\\k.weight", MAT_OK, 1 },
	};
	struct selection	*s;
	cJSON			*j;
	char			*js;

	s = sel_of(llama, nitems(llama), 50, true);
	if (!ok(s != NULL, "llama selection"))
		return;
	same(selection_yaml(s), want_yaml, "yaml");
	same(selection_regex(s), want_regex, "regex");
	same(selection_json(s, "r1", 500, "/ck/checkpoint-500", 3), want_json,
	    "json");
	js = selection_json(s, NULL, -1, NULL, 0);
	j = js ? cJSON_Parse(js) : NULL;
	ok(j != NULL && cJSON_IsNull(cJSON_GetObjectItem(j, "run")) &&
	    cJSON_IsNull(cJSON_GetObjectItem(j, "step")) &&
	    cJSON_IsNull(cJSON_GetObjectItem(j, "checkpoint")) &&
	    cJSON_GetArraySize(cJSON_GetObjectItem(j, "parameters")) == 4,
	    "json: NULL run/checkpoint and step -1 are null");
	cJSON_Delete(j);
	free(js);
	selection_free(s);

	s = sel_of(meta, nitems(meta), 100, true);
	if (ok(s != NULL, "metacharacter selection"))
		same(selection_regex(s),
		    "^a\\+b\\(c\\)\\[d\\]\\{e\\}\\|f\\?g\\*h\\^i\\$j\\\\k"
		    "\\.weight$\n", "regex escapes every metacharacter");
	selection_free(s);

	ok(selection_yaml(NULL) == NULL && selection_regex(NULL) == NULL &&
	    selection_json(NULL, NULL, 0, NULL, 0) == NULL &&
	    selection_modules(NULL) == NULL,
	    "formats of NULL are NULL");
}

/* Set equality, order-insensitive. */
static void
test_equal(void)
{
	static const struct tmat swapped[] = {
		{ "model.embed_tokens.weight", MAT_OK, 5 },
		{ "model.layers.0.self_attn.q_proj.weight", MAT_OK, 2 },
		{ "model.layers.0.mlp.down_proj.weight", MAT_OK, 4 },
		{ "model.layers.1.self_attn.q_proj.weight", MAT_OK, 1 },
		{ "model.layers.1.mlp.down_proj.weight", MAT_OK, 3 },
		{ "model.norm.weight", MAT_OK, 1 },
		{ "lm_head.weight", MAT_OK, 0.5 },
	};
	struct selection	*a, *b, *c, *d, *e;
	char			*ma, *mb;

	a = sel_of(llama, nitems(llama), 50, true);
	b = sel_of(llama, nitems(llama), 50, true);
	c = sel_of(swapped, nitems(swapped), 50, true);
	d = sel_of(llama, nitems(llama), 100, true);
	e = sel_of(llama, nitems(llama), 100, false);
	ok(a && b && c && d && e, "selections built");
	ok(selection_equal(a, b), "same report, same set");
	ok(!selection_equal(a, c), "other SNRs, other set");
	ok(!selection_equal(a, d) && !selection_equal(d, a),
	    "p 50 and 100 differ");
	ok(selection_equal(d, e) && selection_equal(e, d),
	    "same set in another order (embeddings apart or in types)");
	ok(selection_equal(NULL, NULL) && !selection_equal(a, NULL),
	    "NULL cases");
	same(selection_modules(a), "lm_head\nmodel.embed_tokens\n"
	    "model.layers.1.mlp.down_proj\nmodel.layers.1.self_attn.q_proj",
	    "selection_modules sorted");
	ma = selection_modules(d);
	mb = selection_modules(e);
	ok(ma != NULL && mb != NULL && strcmp(ma, mb) == 0,
	    "selection_modules equal for equal sets");
	free(ma);
	free(mb);
	ma = selection_modules(c);
	mb = selection_modules(a);
	ok(ma != NULL && mb != NULL && strcmp(ma, mb) != 0,
	    "selection_modules differ for other sets");
	free(ma);
	free(mb);
	selection_free(a);
	selection_free(b);
	selection_free(c);
	selection_free(d);
	selection_free(e);
}

/* Refused arguments. */
static void
test_invalid(void)
{
	struct report		*r = build(llama, nitems(llama));
	struct selection	*s = NULL;

	ok(r != NULL, "report built");
	ok(select_compute(r, 0, true, &s) == SPD_EINVAL && s == NULL,
	    "p 0 refused");
	ok(select_compute(r, 101, true, &s) == SPD_EINVAL && s == NULL,
	    "p 101 refused");
	ok(select_compute(NULL, 25, true, &s) == SPD_EINVAL, "NULL report");
	ok(select_compute(r, 25, true, NULL) == SPD_EINVAL, "NULL out");
	report_free(r);
	r = report_new(NULL, NULL);
	ok(select_compute(r, 25, true, &s) == SPD_OK && s != NULL &&
	    s->ntypes == 0 && s->nembed == 0 && selection_count(s) == 0,
	    "empty report: empty selection");
	same(selection_yaml(s), "unfrozen_parameters:\n", "empty yaml");
	same(selection_regex(s), "", "empty regex");
	same(selection_modules(s), "", "empty modules");
	selection_free(s);
	selection_free(NULL);
	report_free(r);
}

/*
 * One step of the hysteresis tests: 8 members of type a whose SNRs are
 * snr[] (layer order), selected at 25 % (nsel 2) with margin against prev.
 */
static struct selection *
sticky_step(const double *snr, const struct selection *prev,
    unsigned margin)
{
	struct tmat		 t[8];
	char			 names[8][64];
	struct report		*r;
	struct selection	*s = NULL;
	size_t			 i;

	for (i = 0; i < 8; i++) {
		snprintf(names[i], sizeof names[i], "m.layers.%zu.a.weight", i);
		t[i] = (struct tmat){ names[i], MAT_OK, snr[i] };
	}
	if ((r = build(t, 8)) == NULL ||
	    select_compute_sticky(r, 25, true, prev, margin, &s) != SPD_OK)
		s = NULL;
	report_free(r);
	return s;
}

/*
 * Hysteresis: layers 1 and 2 swap places around the cut-off (rank 2/3)
 * at every step. Margin 0 flips the set each time; margin 1 keeps layer 1
 * (rank 3 ≤ nsel + 1), displacing the newcomer; a module that falls
 * further drops out; margin 2 keeps two, best-ranked first.
 */
static void
test_sticky(void)
{
	static const double	 up[8] = { 10, 5.1, 5.0, 1, 1, 1, 1, 1 };
	static const double	 dn[8] = { 10, 5.0, 5.1, 1, 1, 1, 1, 1 };
	static const double	 fall[8] = { 10, 0.5, 5.1, 4, 1, 1, 1, 1 };
	static const double	 two[8] = { 1, 2, 3, 10, 9, 1, 1, 1 };
	static const double	 nan1[8] = { 1, NAN, 5.1, 4, 1, 1, 1, 1 };
	struct selection	*prev, *s, *plain;
	unsigned		 margin, flips[2] = { 0, 0 };
	size_t			 i;

	for (margin = 0; margin < 2; margin++) {
		prev = sticky_step(up, NULL, margin);
		for (i = 0; prev != NULL && i < 6; i++) {
			s = sticky_step(i % 2 == 0 ? dn : up, prev, margin);
			if (s == NULL)
				break;
			flips[margin] += !selection_equal(prev, s);
			selection_free(prev);
			prev = s;
		}
		ok(prev != NULL && i == 6, "margin %u: 6 steps", margin);
		selection_free(prev);
	}
	ok(flips[0] == 6, "margin 0: the set flips at every step (%u)",
	    flips[0]);
	ok(flips[1] == 0, "margin 1: the set never flips (%u)", flips[1]);

	prev = sticky_step(up, NULL, 0);
	s = sticky_step(dn, prev, 1);
	check_type(s, 0, "a", 8, "m.layers.0.a,m.layers.1.a",
	    "margin 1 keeps layer 1 at rank 3");
	selection_free(s);
	s = sticky_step(fall, prev, 1);
	check_type(s, 0, "a", 8, "m.layers.0.a,m.layers.2.a",
	    "margin 1 drops layer 1 at rank 8");
	selection_free(s);
	s = sticky_step(fall, prev, 7);
	check_type(s, 0, "a", 8, "m.layers.0.a,m.layers.1.a",
	    "margin 7 keeps layer 1 at rank 8");
	selection_free(s);
	s = sticky_step(nan1, prev, 7);
	/* 7 members, nsel 1: layer 0 (rank 4) stays, NaN layer 1 cannot. */
	check_type(s, 0, "a", 7, "m.layers.0.a",
	    "a NaN SNR is never kept");
	selection_free(s);
	/* prev {0, 1}; now 3, 4 top, 2, 1 next: margin 2 keeps 1 only
	 * (layer 0 is rank 6 > 4), displacing 4, the lower newcomer. */
	s = sticky_step(two, prev, 2);
	check_type(s, 0, "a", 8, "m.layers.3.a,m.layers.1.a",
	    "margin 2 keeps layer 1 at rank 4, displaces layer 4");
	selection_free(s);
	s = sticky_step(two, prev, 5);
	check_type(s, 0, "a", 8, "m.layers.1.a,m.layers.0.a",
	    "margin 5 keeps both, best-ranked first");
	selection_free(s);
	s = sticky_step(two, prev, 0);
	plain = sticky_step(two, NULL, 3);
	ok(s != NULL && plain != NULL && selection_equal(s, plain),
	    "margin 0 or no previous selection: select_compute's set");
	check_type(plain, 0, "a", 8, "m.layers.3.a,m.layers.4.a",
	    "plain top 2");
	selection_free(s);
	selection_free(plain);
	selection_free(prev);
}

/* Runs every group. */
int
main(void)
{
	test_floor();
	test_ranking();
	test_embeddings();
	test_formats();
	test_equal();
	test_invalid();
	test_sticky();
	return tap_done();
}
