/*
 * test_model.c: the checkpoint layouts model_open() accepts (one file, a
 * directory with model.safetensors, an index with shards, a bare directory
 * of *.safetensors) and the index mistakes it must refuse. Files are built
 * here, in a scratch directory, with F32 tensors whose values encode their
 * name, so a pointer to the wrong tensor shows.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spectrumd/model.h"
#include "tap.h"

static char tmpdir[256];

/* One F32 tensor to write: n values, value j = base + j. */
struct wt {
	const char	*name;
	unsigned	 n;
	float		 base;
};

/* Returns tmpdir/sub[/name] in a static buffer (one of two, alternating). */
static const char *
at(const char *sub, const char *name)
{
	static char	buf[2][600];
	static int	k;

	k ^= 1;
	if (name != NULL)
		snprintf(buf[k], sizeof buf[k], "%s/%s/%s", tmpdir, sub, name);
	else
		snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, sub);
	return buf[k];
}

/* Creates tmpdir/sub. */
static void
mkdir_sub(const char *sub)
{
	if (mkdir(at(sub, NULL), 0755) != 0 && errno != EEXIST) {
		printf("# mkdir %s: %s\n", at(sub, NULL), strerror(errno));
		exit(1);
	}
}

/* Writes a text file. */
static void
write_text(const char *path, const char *text)
{
	FILE *fp;

	if ((fp = fopen(path, "w")) == NULL || fputs(text, fp) < 0 ||
	    fclose(fp) != 0) {
		printf("# cannot write %s\n", path);
		exit(1);
	}
}

/* Writes a .safetensors file of F32 1-D tensors (and optional step metadata). */
static void
write_st(const char *path, const struct wt *t, size_t nt, const char *step)
{
	char		 hdr[4096];
	size_t		 hl = 0, i;
	uint64_t	 off = 0, len;
	unsigned char	 le[8];
	FILE		*fp;

	hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "{");
	if (step != NULL)
		hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl,
		    "\"__metadata__\":{\"step\":\"%s\"},", step);
	for (i = 0; i < nt; i++) {
		hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl,
		    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%u],"
		    "\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}",
		    i ? "," : "", t[i].name, t[i].n, off, off + 4 * t[i].n);
		off += 4 * t[i].n;
	}
	hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "}");
	while (hl % 8 != 0)
		hdr[hl++] = ' ';
	len = hl;
	for (i = 0; i < 8; i++)
		le[i] = (unsigned char)(len >> (8 * i));
	if ((fp = fopen(path, "wb")) == NULL) {
		printf("# cannot write %s\n", path);
		exit(1);
	}
	fwrite(le, 1, 8, fp);
	fwrite(hdr, 1, hl, fp);
	for (i = 0; i < nt; i++)
		for (unsigned j = 0; j < t[i].n; j++) {
			float v = t[i].base + (float)j;

			fwrite(&v, sizeof v, 1, fp);
		}
	if (fclose(fp) != 0)
		exit(1);
}

static const struct wt shard1[] = {
	{ "model.embed_tokens.weight", 6, 100 },
	{ "model.layers.0.mlp.down_proj.weight", 4, 200 },
};
static const struct wt shard2[] = {
	{ "model.layers.1.mlp.down_proj.weight", 4, 300 },
	{ "lm_head.weight", 6, 400 },
	{ "model.norm.weight", 2, 500 },
};

/* The index for shard1 + shard2, with one entry replaceable for tests. */
static void
write_index(const char *path, const char *extra)
{
	char text[2048];

	snprintf(text, sizeof text,
	    "{\"metadata\":{\"total_size\":88},\"weight_map\":{"
	    "\"lm_head.weight\":\"model-00002-of-00002.safetensors\","
	    "\"model.embed_tokens.weight\":\"model-00001-of-00002.safetensors\","
	    "\"model.layers.0.mlp.down_proj.weight\":"
	    "\"model-00001-of-00002.safetensors\","
	    "\"model.layers.1.mlp.down_proj.weight\":"
	    "\"model-00002-of-00002.safetensors\"%s}}", extra);
	write_text(path, text);
}

/* Checks that tensor i of m is name with values base, base+1, … */
static bool
tensor_is(const struct model *m, size_t i, const char *name, unsigned n,
    float base)
{
	const struct model_tensor	*t = model_tensor(m, i);
	float				 v;

	if (t == NULL || strcmp(t->t->name, name) != 0 ||
	    t->t->end - t->t->begin != 4 * (uint64_t)n)
		return false;
	for (unsigned j = 0; j < n; j++) {
		memcpy(&v, (const char *)t->data + 4 * j, sizeof v);
		if (v != base + (float)j)
			return false;
	}
	return safetensors_data(t->file, t->index) == t->data;
}

/* A single file, by path. */
static void
test_single_file(void)
{
	struct model		*m;
	struct spd_errbuf	 eb;

	mkdir_sub("single");
	write_st(at("single", "weights.safetensors"), shard2, 3, "7");
	if (!ok(model_open(at("single", "weights.safetensors"), &m, &eb) ==
	    SPD_OK, "open a single file by path")) {
		printf("#   %s\n", eb.msg);
		return;
	}
	ok(model_nfiles(m) == 1 && model_count(m) == 3, "1 file, 3 tensors");
	ok(tensor_is(m, 0, shard2[0].name, 4, 300) &&
	    tensor_is(m, 1, shard2[1].name, 6, 400) &&
	    tensor_is(m, 2, shard2[2].name, 2, 500), "tensors and data match");
	ok(model_bytes(m) == 48, "48 bytes of data");
	ok(model_meta(m, "step") != NULL &&
	    strcmp(model_meta(m, "step"), "7") == 0, "metadata step");
	ok(model_tensor(m, 3) == NULL && model_file_path(m, 1) == NULL,
	    "out-of-range indices give NULL");
	model_close(m);
	model_close(NULL);
}

/* A directory with model.safetensors (which wins over other files). */
static void
test_dir_single(void)
{
	struct model		*m;
	struct spd_errbuf	 eb;

	mkdir_sub("dir1");
	write_st(at("dir1", "model.safetensors"), shard1, 2, NULL);
	write_st(at("dir1", "aaa-other.safetensors"), shard2, 3, NULL);
	write_text(at("dir1", "config.json"), "{}");
	if (!ok(model_open(at("dir1", NULL), &m, &eb) == SPD_OK,
	    "open a directory with model.safetensors")) {
		printf("#   %s\n", eb.msg);
		return;
	}
	ok(model_nfiles(m) == 1 && model_count(m) == 2 &&
	    strcmp(model_file_path(m, 0), at("dir1", "model.safetensors")) == 0,
	    "only model.safetensors is read");
	ok(tensor_is(m, 0, shard1[0].name, 6, 100) &&
	    tensor_is(m, 1, shard1[1].name, 4, 200), "its tensors");
	ok(model_meta(m, "step") == NULL, "no metadata: NULL");
	model_close(m);
}

/* Checks the five tensors of the sharded model, in file then offset order. */
static void
check_sharded(struct model *m, const char *how)
{
	ok(model_nfiles(m) == 2 && model_count(m) == 5, "%s: 2 files, 5 "
	    "tensors (got %zu, %zu)", how, model_nfiles(m), model_count(m));
	ok(strcmp(model_file_path(m, 0),
	    at("sharded", "model-00001-of-00002.safetensors")) == 0 &&
	    strcmp(model_file_path(m, 1),
	    at("sharded", "model-00002-of-00002.safetensors")) == 0,
	    "%s: shards in name order", how);
	ok(tensor_is(m, 0, shard1[0].name, 6, 100) &&
	    tensor_is(m, 1, shard1[1].name, 4, 200) &&
	    tensor_is(m, 2, shard2[0].name, 4, 300) &&
	    tensor_is(m, 3, shard2[1].name, 6, 400) &&
	    tensor_is(m, 4, shard2[2].name, 2, 500),
	    "%s: tensors and data across shards", how);
	ok(model_tensor(m, 2)->file != model_tensor(m, 1)->file &&
	    model_tensor(m, 2)->index == 0, "%s: per-file index", how);
	ok(model_bytes(m) == 88, "%s: 88 bytes in all", how);
	ok(model_meta(m, "step") != NULL &&
	    strcmp(model_meta(m, "step"), "2") == 0,
	    "%s: metadata from the shard that has it", how);
}

/* Sharded: a directory with an index and two shards, and the index path. */
static void
test_sharded(void)
{
	struct model		*m;
	struct spd_errbuf	 eb;

	mkdir_sub("sharded");
	write_st(at("sharded", "model-00001-of-00002.safetensors"), shard1, 2,
	    NULL);
	write_st(at("sharded", "model-00002-of-00002.safetensors"), shard2, 3,
	    "2");
	write_index(at("sharded", "model.safetensors.index.json"),
	    ",\"model.norm.weight\":\"model-00002-of-00002.safetensors\"");
	if (ok(model_open(at("sharded", NULL), &m, &eb) == SPD_OK,
	    "open a sharded directory")) {
		check_sharded(m, "directory");
		model_close(m);
	} else
		printf("#   %s\n", eb.msg);
	if (ok(model_open(at("sharded", "model.safetensors.index.json"), &m,
	    &eb) == SPD_OK, "open the index by path")) {
		check_sharded(m, "index path");
		model_close(m);
	} else
		printf("#   %s\n", eb.msg);
}

/* Index mistakes: each is refused with the expected code and words. */
static void
test_index_errors(void)
{
	static const struct {
		const char	*what;
		const char	*extra;		/* appended to weight_map */
		const char	*raw;		/* whole index text instead */
		enum spd_err	 rc;
		const char	*words[2];
	} cases[] = {
		{ "a missing shard",
		    ",\"model.norm.weight\":\"model-00003-of-00003.safetensors\"",
		    NULL, SPD_ENOTFOUND,
		    { "index model.safetensors.index.json names shard "
		    "\"model-00003-of-00003.safetensors\", which does not "
		    "exist" } },
		{ "a tensor in the wrong shard",
		    ",\"model.norm.weight\":\"model-00001-of-00002.safetensors\"",
		    NULL, SPD_EFORMAT,
		    { "tensor \"model.norm.weight\" in shard "
		    "\"model-00001-of-00002.safetensors\"",
		    "but it is in shard \"model-00002-of-00002.safetensors\"" } },
		{ "a shard tensor the index omits", "", NULL, SPD_EFORMAT,
		    { "\"model.norm.weight\"", "does not list" } },
		{ "a tensor no shard has",
		    ",\"model.norm.weight\":\"model-00002-of-00002.safetensors\","
		    "\"ghost.weight\":\"model-00001-of-00002.safetensors\"",
		    NULL, SPD_EFORMAT,
		    { "\"ghost.weight\"", "does not contain it" } },
		{ "a tensor listed twice",
		    ",\"model.norm.weight\":\"model-00002-of-00002.safetensors\","
		    "\"lm_head.weight\":\"model-00002-of-00002.safetensors\"",
		    NULL, SPD_EFORMAT, { "\"lm_head.weight\"", "twice" } },
		{ "a shard path with a slash",
		    ",\"model.norm.weight\":\"../sharded/model-00002-of-00002."
		    "safetensors\"", NULL, SPD_EFORMAT,
		    { "../sharded", "plain file names" } },
		{ "a hidden shard name",
		    ",\"model.norm.weight\":\".model.safetensors\"", NULL,
		    SPD_EFORMAT, { "\".model.safetensors\"", "plain" } },
		{ "a shard name not a string",
		    ",\"model.norm.weight\":2", NULL, SPD_EFORMAT,
		    { "\"model.norm.weight\"", "not a string" } },
		{ "not JSON", NULL, "{\"weight_map\": {", SPD_EFORMAT,
		    { "not valid JSON" } },
		{ "no weight_map", NULL, "{\"metadata\": {}}", SPD_EFORMAT,
		    { "\"weight_map\" object" } },
		{ "an empty weight_map", NULL, "{\"weight_map\": {}}",
		    SPD_EFORMAT, { "empty" } },
		{ "an array", NULL, "[]", SPD_EFORMAT, { "not an index" } },
	};
	struct model		*m;
	struct spd_errbuf	 eb;
	char			 sub[32];
	size_t			 i, k;

	for (i = 0; i < nitems(cases); i++) {
		snprintf(sub, sizeof sub, "idx%zu", i);
		mkdir_sub(sub);
		write_st(at(sub, "model-00001-of-00002.safetensors"), shard1, 2,
		    NULL);
		write_st(at(sub, "model-00002-of-00002.safetensors"), shard2, 3,
		    NULL);
		if (cases[i].raw != NULL)
			write_text(at(sub, "model.safetensors.index.json"),
			    cases[i].raw);
		else
			write_index(at(sub, "model.safetensors.index.json"),
			    cases[i].extra);
		eb.msg[0] = '\0';
		m = (struct model *)&eb;
		ok(model_open(at(sub, NULL), &m, &eb) == cases[i].rc &&
		    m == NULL, "refuse an index with %s (%s)", cases[i].what,
		    spd_strerror(cases[i].rc));
		for (k = 0; k < 2; k++)
			if (cases[i].words[k] != NULL &&
			    strstr(eb.msg, cases[i].words[k]) == NULL)
				break;
		ok(k == 2, "%s: %s", cases[i].what, eb.msg);
	}
}

/* Directories without model.safetensors or an index. */
static void
test_bare_dirs(void)
{
	static const struct wt extra[] = {
		{ "x0", 1, 10 }, { "x1", 1, 11 }, { "x2", 1, 12 },
		{ "x3", 1, 13 }, { "x4", 1, 14 }, { "x5", 1, 15 },
	};
	struct model		*m;
	struct spd_errbuf	 eb;
	char			 want[700], name[64];
	size_t			 i;

	mkdir_sub("empty");
	write_text(at("empty", "config.json"), "{}");
	write_text(at("empty", "pytorch_model.bin"), "pickle");
	ok(model_open(at("empty", NULL), &m, &eb) == SPD_ENOTFOUND && m == NULL,
	    "a directory without weights is SPD_ENOTFOUND");
	snprintf(want, sizeof want, "no model.safetensors, "
	    "model.safetensors.index.json or *.safetensors in %s",
	    at("empty", NULL));
	ok(strcmp(eb.msg, want) == 0, "message: %s", eb.msg);

	/* Written out of order: readdir order must not leak through. */
	mkdir_sub("plain");
	for (i = nitems(extra); i-- > 0;) {
		snprintf(name, sizeof name, "x%zu.safetensors", i);
		write_st(at("plain", name), &extra[i], 1, NULL);
	}
	write_st(at("plain", "b.safetensors"), shard2, 3, NULL);
	write_st(at("plain", "a.safetensors"), shard1, 2, NULL);
	write_text(at("plain", ".partial.safetensors"), "junk");
	write_text(at("plain", "c.safetensors.tmp"), "junk");
	if (ok(model_open(at("plain", NULL), &m, &eb) == SPD_OK,
	    "a directory of *.safetensors (no index) opens")) {
		bool sorted = model_nfiles(m) == 2 + nitems(extra) &&
		    model_count(m) == 5 + nitems(extra) &&
		    tensor_is(m, 0, shard1[0].name, 6, 100) &&
		    tensor_is(m, 2, shard2[0].name, 4, 300);

		for (i = 0; sorted && i < nitems(extra); i++)
			sorted = tensor_is(m, 5 + i, extra[i].name, 1,
			    extra[i].base);
		ok(sorted, "all files in name order; dot-files and other names "
		    "skipped");
		model_close(m);
	} else
		printf("#   %s\n", eb.msg);

	mkdir_sub("dup");
	write_st(at("dup", "a.safetensors"), shard1, 2, NULL);
	write_st(at("dup", "b.safetensors"), shard1, 1, NULL);
	ok(model_open(at("dup", NULL), &m, &eb) == SPD_EFORMAT &&
	    strstr(eb.msg, "\"model.embed_tokens.weight\" appears in both") !=
	    NULL, "a tensor in two files is refused: %s", eb.msg);

	mkdir_sub("corrupt");
	write_text(at("corrupt", "model.safetensors"), "short");
	ok(model_open(at("corrupt", NULL), &m, &eb) == SPD_EFORMAT &&
	    strstr(eb.msg, at("corrupt", "model.safetensors")) == eb.msg,
	    "a corrupt file's error names it: %s", eb.msg);

	ok(model_open(at("nowhere", NULL), &m, &eb) == SPD_ENOTFOUND,
	    "a missing path is SPD_ENOTFOUND");
}

/* Removes the scratch directory and what is in it. */
static void
cleanup(void)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
}

int
main(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof tmpdir, "%s/test_model.XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		printf("# mkdtemp %s: %s\n", tmpdir, strerror(errno));
		return 1;
	}
	test_single_file();
	test_dir_single();
	test_sharded();
	test_index_errors();
	test_bare_dirs();
	cleanup();
	return tap_done();
}
