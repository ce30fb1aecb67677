/*
 * test_names.c: names_parse() and names_slug() on real and awkward tensor
 * names (DESIGN.md §1).
 */
#include "config.h"

#include <limits.h>
#include <string.h>

#include "spectrumd/names.h"
#include "tap.h"

/* Tensor names with their expected module, type, layer and flags. */
static const struct {
	const char	*tensor;
	bool		 group;
	const char	*module, *type;
	int		 layer;
	bool		 embedding, head;
} cases[] = {
	{ "model.layers.3.mlp.down_proj.weight", false,
	    "model.layers.3.mlp.down_proj", "mlp.down_proj", 3, false, false },
	{ "model.layers.0.input_layernorm.weight", false,
	    "model.layers.0.input_layernorm", "input_layernorm", 0, false,
	    false },
	{ "model.layers.3.mlp.experts.17.down_proj.weight", false,
	    "model.layers.3.mlp.experts.17.down_proj",
	    "mlp.experts.17.down_proj", 3, false, false },
	{ "model.layers.3.mlp.experts.17.down_proj.weight", true,
	    "model.layers.3.mlp.experts.17.down_proj",
	    "mlp.experts.*.down_proj", 3, false, false },
	{ "m.1.a.2.b.3.c.weight", true, "m.1.a.2.b.3.c", "a.*.b.3.c", 1,
	    false, false },
	{ "model.layers.12.self_attn.q_proj.weight", true,
	    "model.layers.12.self_attn.q_proj", "self_attn.q_proj", 12, false,
	    false },
	{ "transformer.h.0.attn.c_attn.weight", false,
	    "transformer.h.0.attn.c_attn", "attn.c_attn", 0, false, false },
	{ "model.layers.007.mlp.weight", false, "model.layers.007.mlp", "mlp",
	    7, false, false },
	{ "model.layers.2147483647.mlp.weight", false,
	    "model.layers.2147483647.mlp", "mlp", INT_MAX, false, false },
	{ "model.layers.2147483648.mlp.weight", false,
	    "model.layers.2147483648.mlp", "mlp", INT_MAX, false, false },
	{ "x.99999999999999999999999999999.y.weight", false,
	    "x.99999999999999999999999999999.y", "y", INT_MAX, false, false },
	{ "model.layers.3.weight", false, "model.layers.3", "", 3, false,
	    false },
	{ "0.weight", false, "0", "", 0, false, false },
	{ "model.layers.3a.mlp.weight", false, "model.layers.3a.mlp",
	    "model.layers.3a.mlp", -1, false, false },
	{ "a..1.b.weight", false, "a..1.b", "b", 1, false, false },
	{ "model.layers.3.mlp.down_proj.bias", false,
	    "model.layers.3.mlp.down_proj.bias", "mlp.down_proj.bias", 3,
	    false, false },
	{ "model.norm.weight", false, "model.norm", "model.norm", -1, false,
	    false },
	{ "weight", false, "weight", "weight", -1, false, false },
	{ ".weight", false, ".weight", ".weight", -1, false, false },
	{ "x.weights", false, "x.weights", "x.weights", -1, false, false },
	/* input embeddings */
	{ "model.embed_tokens.weight", false, "model.embed_tokens",
	    "model.embed_tokens", -1, true, false },
	{ "transformer.wte.weight", false, "transformer.wte",
	    "transformer.wte", -1, true, false },
	{ "transformer.word_embeddings.weight", false,
	    "transformer.word_embeddings", "transformer.word_embeddings", -1,
	    true, false },
	{ "gpt_neox.embed_in.weight", false, "gpt_neox.embed_in",
	    "gpt_neox.embed_in", -1, true, false },
	{ "tok_embeddings.weight", false, "tok_embeddings", "tok_embeddings",
	    -1, true, false },
	{ "backbone.embeddings.weight", false, "backbone.embeddings",
	    "backbone.embeddings", -1, true, false },
	{ "model.decoder.embed_tokens.weight", false,
	    "model.decoder.embed_tokens", "model.decoder.embed_tokens", -1,
	    true, false },
	/* heads */
	{ "lm_head.weight", false, "lm_head", "lm_head", -1, true, true },
	{ "language_model.lm_head.weight", false, "language_model.lm_head",
	    "language_model.lm_head", -1, true, true },
	{ "embed_out.weight", false, "embed_out", "embed_out", -1, true,
	    true },
	{ "output.weight", false, "output", "output", -1, true, true },
	/* look-alikes that are not */
	{ "model.output.weight", false, "model.output", "model.output", -1,
	    false, false },
	{ "transformer.wpe.weight", false, "transformer.wpe",
	    "transformer.wpe", -1, false, false },
	{ "model.embed_tokens_extra.weight", false, "model.embed_tokens_extra",
	    "model.embed_tokens_extra", -1, false, false },
	{ "lm_head.bias", false, "lm_head.bias", "lm_head.bias", -1, false,
	    false },
	{ "model.layers.1.embed_tokens.weight", false,
	    "model.layers.1.embed_tokens", "embed_tokens", 1, false, false },
	{ "blocks.2.lm_head.weight", false, "blocks.2.lm_head", "lm_head", 2,
	    false, false },
};

/* Every table case: strings, layer and flags. */
static void
test_parse(void)
{
	struct name_info	ni;
	size_t			i;
	const char		*t;

	for (i = 0; i < nitems(cases); i++) {
		t = cases[i].tensor;
		if (!ok(names_parse(t, cases[i].group, &ni) == SPD_OK,
		    "%s%s: rc", t, cases[i].group ? " (grouped)" : ""))
			continue;
		ok(strcmp(ni.module, cases[i].module) == 0, "%s: module \"%s\"",
		    t, ni.module);
		ok(strcmp(ni.type, cases[i].type) == 0, "%s: type \"%s\"", t,
		    ni.type);
		ok(ni.layer == cases[i].layer, "%s: layer %d", t, ni.layer);
		ok(ni.embedding == cases[i].embedding && ni.head ==
		    cases[i].head, "%s: embedding %d head %d", t, ni.embedding,
		    ni.head);
		names_cleanup(&ni);
		ok(ni.module == NULL && ni.type == NULL, "%s: cleanup", t);
	}
}

/* Refused arguments and a NULL-safe cleanup. */
static void
test_invalid(void)
{
	struct name_info ni;

	ok(names_parse("", false, &ni) == SPD_EINVAL, "empty name refused");
	ok(names_parse(NULL, false, &ni) == SPD_EINVAL, "NULL name refused");
	ok(names_parse("a.weight", false, NULL) == SPD_EINVAL,
	    "NULL out refused");
	names_cleanup(NULL);
	ok(1, "names_cleanup(NULL)");
}

/* Slugs of model paths. */
static void
test_slug(void)
{
	static const struct {
		const char	*path, *want;
	} slugs[] = {
		{ "/models/Llama_2_7b", "Llama-2-7b" },
		{ "/models/Llama_2_7b/", "Llama-2-7b" },
		{ "/models/Llama_2_7b//", "Llama-2-7b" },
		{ "relative_dir", "relative-dir" },
		{ "a/b/checkpoint-500", "checkpoint-500" },
		{ "Qwen_Qwen2.5-7B", "Qwen-Qwen2.5-7B" },
	};
	char	buf[32];
	size_t	i;

	for (i = 0; i < nitems(slugs); i++)
		ok(names_slug(slugs[i].path, buf, sizeof buf) == SPD_OK &&
		    strcmp(buf, slugs[i].want) == 0, "slug of %s: %s",
		    slugs[i].path, buf);
	ok(names_slug("/abcdef", buf, 6) == SPD_EINVAL && buf[0] == '\0',
	    "slug that does not fit refused");
	ok(names_slug("/abcdef", buf, 7) == SPD_OK &&
	    strcmp(buf, "abcdef") == 0, "slug that just fits");
	ok(names_slug("/", buf, sizeof buf) == SPD_EINVAL, "slug of / refused");
	ok(names_slug("", buf, sizeof buf) == SPD_EINVAL, "empty slug refused");
	ok(names_slug("x", buf, 0) == SPD_EINVAL, "zero-size buffer refused");
}

/* Runs every group. */
int
main(void)
{
	test_parse();
	test_invalid();
	test_slug();
	return tap_done();
}
