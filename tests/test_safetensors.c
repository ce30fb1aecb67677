/*
 * test_safetensors.c: the header validator (pure, from strings) and the
 * file reader (from bytes written to a scratch directory). Every rejection
 * must carry the expected words, so a wrong reason fails too.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spectrumd/safetensors.h"
#include "tap.h"

static char tmpdir[256];

/* A header that must be rejected, and words its message must contain. */
static const struct {
	const char	*what;
	const char	*json;
	const char	*words[3];
} bad_headers[] = {
	{ "not JSON", "hello world", { "not valid JSON" } },
	{ "truncated JSON", "{\"a\": {\"dtype\": \"F32\"", { "not valid JSON" } },
	{ "an array", "[1, 2]", { "an array", "not a JSON object" } },
	{ "a string", "\"x\"", { "a string", "not a JSON object" } },
	{ "data after the object", "{} x", { "after the JSON", "offset 3" } },
	{ "two objects", "{}{}", { "after the JSON" } },
	{ "unknown dtype",
	    "{\"w\":{\"dtype\":\"Q4_K\",\"shape\":[2],\"data_offsets\":[0,2]}}",
	    { "tensor \"w\"", "unknown dtype \"Q4_K\"" } },
	{ "lower-case dtype",
	    "{\"w\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
	    { "tensor \"w\"", "unknown dtype" } },
	{ "dtype not a string",
	    "{\"w\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}",
	    { "tensor \"w\"", "dtype is a number" } },
	{ "shape/offset mismatch",
	    "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}",
	    { "tensor \"w\"", "shape [2,3] x F32 is 24 bytes",
	    "data_offsets span 20" } },
	{ "overlapping offsets",
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
	    "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
	    { "tensor \"b\"", "overlap", "tensor \"a\"" } },
	{ "same offsets twice",
	    "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
	    "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
	    { "overlap" } },
	{ "hole in offsets",
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
	    "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[20,36]}}",
	    { "tensor \"b\"", "hole", "[16,20)" } },
	{ "one-byte hole",
	    "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
	    "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}",
	    { "tensor \"b\"", "hole", "[1,2)" } },
	{ "one-byte overlap",
	    "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
	    "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
	    { "tensor \"b\"", "overlap" } },
	{ "data not starting at 0",
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
	    { "tensor \"a\"", "hole", "[0,4)" } },
	{ "duplicate names",
	    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
	    { "tensor \"a\"", "twice", "duplicate" } },
	{ "metadata value not a string",
	    "{\"__metadata__\":{\"format\":\"pt\",\"step\":5}}",
	    { "__metadata__", "\"step\"", "not a string" } },
	{ "metadata not an object", "{\"__metadata__\":[\"pt\"]}",
	    { "__metadata__", "not an object" } },
	{ "metadata twice",
	    "{\"__metadata__\":{},\"__metadata__\":{}}",
	    { "__metadata__", "twice" } },
	{ "metadata key twice",
	    "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}",
	    { "__metadata__", "\"k\"", "twice" } },
	{ "entry not an object", "{\"w\": 5}",
	    { "tensor \"w\"", "a number", "not an object" } },
	{ "entry an array", "{\"w\": [1]}",
	    { "tensor \"w\"", "an array", "not an object" } },
	{ "missing data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}",
	    { "tensor \"w\"", "missing", "data_offsets" } },
	{ "missing shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}",
	    { "tensor \"w\"", "missing", "shape" } },
	{ "field twice",
	    "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],"
	    "\"data_offsets\":[0,4]}}",
	    { "tensor \"w\"", "\"dtype\" appears twice" } },
	{ "negative dimension",
	    "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
	    { "tensor \"w\"", "shape[0]", "non-negative integer" } },
	{ "fractional dimension",
	    "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,1.5],\"data_offsets\":[0,12]}}",
	    { "tensor \"w\"", "shape[1] is 1.5", "integer" } },
	{ "dimension over 2^53",
	    "{\"w\":{\"dtype\":\"U8\",\"shape\":[18014398509481984],"
	    "\"data_offsets\":[0,4]}}",
	    { "tensor \"w\"", "shape[0]", "2^53" } },
	{ "dimension a string",
	    "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"4\"],\"data_offsets\":[0,16]}}",
	    { "tensor \"w\"", "shape[0] is a string" } },
	{ "shape not an array",
	    "{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}",
	    { "tensor \"w\"", "shape is a number" } },
	{ "nine dimensions",
	    "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
	    "\"data_offsets\":[0,1]}}",
	    { "tensor \"w\"", "more than 8" } },
	{ "a huge top-level array", "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]",
	    { "an array", "not a JSON object" } },
	{ "a long array in metadata",
	    "{\"__metadata__\":{\"k\":[1,2,3,4,5,6,7,8,9,10]}}",
	    { "tensor \"__metadata__\"", "more than 8" } },
	{ "three offsets",
	    "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}",
	    { "tensor \"w\"", "exactly two" } },
	{ "one offset",
	    "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}",
	    { "tensor \"w\"", "exactly two" } },
	{ "negative offset",
	    "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}",
	    { "tensor \"w\"", "non-negative" } },
	{ "end before begin",
	    "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}",
	    { "tensor \"w\"", "[4,0]", "end before" } },
	{ "size overflows 64 bits",
	    "{\"w\":{\"dtype\":\"F64\",\"shape\":[9007199254740992,"
	    "9007199254740992],\"data_offsets\":[0,8]}}",
	    { "tensor \"w\"", "overflows" } },
	{ "F4 odd count is not whole bytes",
	    "{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}",
	    { "tensor \"w\"", "12 bits", "whole number of bytes" } },
	{ "nesting too deep",
	    "{\"w\":{\"dtype\":\"U8\",\"shape\":[[1]],\"data_offsets\":[0,1]}}",
	    { "tensor \"w\"", "nests deeper" } },
	{ "control byte", "{\"w\x01\":{}}", { "control byte 0x01" } },
	{ "invalid UTF-8", "{\"w\xff\":{}}", { "UTF-8", "offset 3" } },
	{ "overlong UTF-8", "{\"\xc0\xaf\":{}}", { "UTF-8" } },
	{ "UTF-16 surrogate in UTF-8", "{\"\xed\xa0\x80\":{}}", { "UTF-8" } },
};

/* A header that must be accepted, with the tensor count and data length. */
static const struct {
	const char	*what;
	const char	*json;
	size_t		 ntensors;
	uint64_t	 data_len;
} good_headers[] = {
	{ "empty object", "{}", 0, 0 },
	{ "space padding", "{}        ", 0, 0 },
	{ "leading and trailing whitespace", " \n{}\t\r\n ", 0, 0 },
	{ "metadata only", "{\"__metadata__\":{\"format\":\"pt\"}}", 0, 0 },
	{ "0-rank tensor has one element",
	    "{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}",
	    1, 8 },
	{ "empty tensors take no bytes",
	    "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,4096],\"data_offsets\":[0,0]},"
	    "\"f\":{\"dtype\":\"BF16\",\"shape\":[3,0],\"data_offsets\":[0,0]},"
	    "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
	    3, 4 },
	{ "empty tensor with a huge other dimension",
	    "{\"e\":{\"dtype\":\"F64\",\"shape\":[9007199254740992,"
	    "9007199254740992,0],\"data_offsets\":[0,0]}}", 1, 0 },
	{ "F4 even count packs two per byte",
	    "{\"w\":{\"dtype\":\"F4\",\"shape\":[2,3],\"data_offsets\":[0,3]}}",
	    1, 3 },
	{ "F6 four per three bytes",
	    "{\"w\":{\"dtype\":\"F6_E3M2\",\"shape\":[4],\"data_offsets\":[0,3]}}",
	    1, 3 },
	{ "unknown fields ignored",
	    "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2],"
	    "\"note\":\"x\"}}", 1, 2 },
	{ "eight dimensions",
	    "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,2],"
	    "\"data_offsets\":[0,2]}}", 1, 2 },
	{ "UTF-8 names",
	    "{\"poids.\xc3\xa9t\xc3\xa9\":{\"dtype\":\"U8\",\"shape\":[1],"
	    "\"data_offsets\":[0,1]}}", 1, 1 },
	{ "escaped quote in a name",
	    "{\"a\\\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
	    1, 1 },
};

/* True when every non-NULL word occurs in msg; prints the message if not. */
static bool
has_words(const char *msg, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (words[i] != NULL && strstr(msg, words[i]) == NULL) {
			printf("#   message \"%s\" lacks \"%s\"\n", msg, words[i]);
			return false;
		}
	}
	return true;
}

/* Parses a NUL-terminated header string. */
static enum spd_err
parse(const char *json, struct st_header **h, struct spd_errbuf *eb)
{
	return safetensors_parse_header(json, strlen(json), h, eb);
}

/* Runs the two header tables. */
static void
test_header_tables(void)
{
	struct spd_errbuf	 eb;
	struct st_header	*h;
	enum spd_err		 rc;
	size_t			 i;

	for (i = 0; i < nitems(bad_headers); i++) {
		eb.msg[0] = '\0';
		h = (struct st_header *)&eb;	/* must be reset to NULL */
		rc = parse(bad_headers[i].json, &h, &eb);
		ok(rc == SPD_EFORMAT && h == NULL, "reject %s: SPD_EFORMAT",
		    bad_headers[i].what);
		ok(has_words(eb.msg, bad_headers[i].words, 3),
		    "reject %s: %s", bad_headers[i].what, eb.msg);
		safetensors_header_free(h == (struct st_header *)&eb ? NULL : h);
	}
	for (i = 0; i < nitems(good_headers); i++) {
		h = NULL;
		eb.msg[0] = '\0';
		rc = parse(good_headers[i].json, &h, &eb);
		if (!ok(rc == SPD_OK && h != NULL, "accept %s",
		    good_headers[i].what)) {
			printf("#   %s\n", eb.msg);
			continue;
		}
		ok(h->ntensors == good_headers[i].ntensors &&
		    h->data_len == good_headers[i].data_len,
		    "%s: %zu tensors, %" PRIu64 " data bytes (got %zu, %" PRIu64
		    ")", good_headers[i].what, good_headers[i].ntensors,
		    good_headers[i].data_len, h->ntensors, h->data_len);
		safetensors_header_free(h);
	}
}

/* Checks the parsed fields of one realistic header. */
static void
test_header_fields(void)
{
	static const char json[] =
	    "{\"__metadata__\":{\"format\":\"pt\",\"step\":\"1200\"},"
	    "\"model.norm.weight\":{\"dtype\":\"BF16\",\"shape\":[8],"
	    "\"data_offsets\":[64,80]},"
	    "\"model.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":[4,4],"
	    "\"data_offsets\":[0,64]},"
	    "\"scalar\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[80,88]}"
	    "}XXXX not part of the header";
	struct spd_errbuf	 eb;
	struct st_header	*h;
	size_t			 len = strstr(json, "XXXX") - json;

	if (!ok(safetensors_parse_header(json, len, &h, &eb) == SPD_OK,
	    "len bounds the parse: bytes after len are ignored")) {
		printf("#   %s\n", eb.msg);
		return;
	}
	ok(h->ntensors == 3 && h->data_len == 88, "3 tensors, 88 bytes");
	ok(strcmp(h->tensors[0].name, "model.embed_tokens.weight") == 0 &&
	    strcmp(h->tensors[1].name, "model.norm.weight") == 0 &&
	    strcmp(h->tensors[2].name, "scalar") == 0,
	    "tensors are sorted by begin offset, not header order");
	ok(h->tensors[0].dtype == DT_F32 && h->tensors[0].ndim == 2 &&
	    h->tensors[0].shape[0] == 4 && h->tensors[0].shape[1] == 4 &&
	    h->tensors[0].begin == 0 && h->tensors[0].end == 64,
	    "embed_tokens: F32 [4,4] at [0,64]");
	ok(h->tensors[1].dtype == DT_BF16 && h->tensors[1].ndim == 1 &&
	    h->tensors[1].shape[0] == 8 && h->tensors[1].begin == 64,
	    "norm: BF16 [8] at 64");
	ok(h->tensors[2].ndim == 0 && h->tensors[2].end == 88,
	    "scalar: 0-rank F64");
	ok(h->nmeta == 2, "two metadata entries");
	ok(safetensors_header_meta(h, "step") != NULL &&
	    strcmp(safetensors_header_meta(h, "step"), "1200") == 0,
	    "metadata step = 1200");
	ok(safetensors_header_meta(h, "missing") == NULL,
	    "absent metadata key gives NULL");
	safetensors_header_free(h);
	safetensors_header_free(NULL);
	ok(safetensors_parse_header(json, 0, &h, &eb) == SPD_EFORMAT &&
	    strstr(eb.msg, "empty") != NULL, "a 0-byte header is rejected");
	ok(safetensors_parse_header(json, (size_t)ST_MAX_HEADER + 1, &h,
	    &eb) == SPD_EFORMAT && strstr(eb.msg, "limit") != NULL,
	    "a header over 100 MB is rejected before it is read");
}

/* The exact message for the canonical size mismatch. */
static void
test_exact_message(void)
{
	static const char json[] = "{\"model.layers.0.mlp.up_proj.weight\":"
	    "{\"dtype\":\"BF16\",\"shape\":[11008,4096],"
	    "\"data_offsets\":[0,90177534]}}";
	struct spd_errbuf	 eb;
	struct st_header	*h;

	ok(parse(json, &h, &eb) == SPD_EFORMAT, "mismatch rejected");
	ok(strcmp(eb.msg, "tensor \"model.layers.0.mlp.up_proj.weight\": "
	    "shape [11008,4096] x BF16 is 90177536 bytes but data_offsets "
	    "span 90177534") == 0, "exact message: %s", eb.msg);
}

/* Encodes v as 8 little-endian bytes. */
static void
le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes len bytes to tmpdir/name; returns the path (static buffer). */
static const char *
write_file(const char *name, const void *buf, size_t len)
{
	static char	path[512];
	FILE		*fp;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	if ((fp = fopen(path, "wb")) == NULL ||
	    (len > 0 && fwrite(buf, 1, len, fp) != len) || fclose(fp) != 0) {
		printf("# cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return path;
}

/*
 * Writes a .safetensors file: declared header length hlen_decl (or the real
 * one when ~0), header json, data of data_len bytes (byte i = i * 7 + 1).
 * Returns the path.
 */
static const char *
write_st(const char *name, const char *json, uint64_t hlen_decl,
    size_t data_len)
{
	size_t		 hl = strlen(json), len = 8 + hl + data_len;
	unsigned char	*buf = malloc(len);
	const char	*path;

	if (buf == NULL)
		exit(1);
	le64(buf, hlen_decl == ~(uint64_t)0 ? hl : hlen_decl);
	memcpy(buf + 8, json, hl);
	for (size_t i = 0; i < data_len; i++)
		buf[8 + hl + i] = (unsigned char)(i * 7 + 1);
	path = write_file(name, buf, len);
	free(buf);
	return path;
}

/* A valid file: pointers, header, metadata, expected size, madvise. */
static void
test_open_valid(void)
{
	/* 56 bytes of JSON padded to 64 as writers do: data 8-aligned. */
	static const char json[] =
	    "{\"__metadata__\":{\"format\":\"pt\"},"
	    "\"b\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]},"
	    "\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
	    "\"e\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[24,24]},"
	    "\"big\":{\"dtype\":\"U8\",\"shape\":[20000],"
	    "\"data_offsets\":[24,20024]}}      ";
	const struct st_header	*h;
	struct st_file		*f;
	struct spd_errbuf	 eb;
	const unsigned char	*p;
	const char		*path;
	uint64_t		 want, size = 0;
	size_t			 i, bad = 0;

	path = write_st("valid.safetensors", json, ~(uint64_t)0, 20024);
	want = 8 + strlen(json) + 20024;
	if (!ok(safetensors_open(path, &f, &eb) == SPD_OK, "open a valid file")) {
		printf("#   %s\n", eb.msg);
		return;
	}
	h = safetensors_header(f);
	ok(h->ntensors == 4 && h->data_len == 20024, "4 tensors, 20024 bytes");
	ok(strcmp(safetensors_path(f), path) == 0, "path kept");
	ok(strcmp(h->tensors[0].name, "a") == 0 &&
	    strcmp(h->tensors[1].name, "b") == 0 &&
	    strcmp(h->tensors[2].name, "e") == 0 &&
	    strcmp(h->tensors[3].name, "big") == 0,
	    "sorted by offset; the empty tensor before the one at its offset");
	for (i = 0; i < h->ntensors; i++) {
		p = safetensors_data(f, i);
		ok(p != NULL && (h->tensors[i].end == h->tensors[i].begin ||
		    p[0] == (unsigned char)(h->tensors[i].begin * 7 + 1)),
		    "tensor %s points at data byte %" PRIu64, h->tensors[i].name,
		    h->tensors[i].begin);
	}
	ok((const unsigned char *)safetensors_data(f, 1) -
	    (const unsigned char *)safetensors_data(f, 0) == 8,
	    "data pointers are begin apart");
	ok(safetensors_data(f, 4) == NULL, "out-of-range index gives NULL");
	safetensors_prefetch(f, 3);
	safetensors_release(f, 3);
	safetensors_release(f, 0);
	safetensors_prefetch(f, 2);		/* empty: nothing to do */
	safetensors_release(f, 99);		/* out of range: ignored */
	p = safetensors_data(f, 3);
	for (i = 0; i < 20000; i++)
		bad += p[i] != (unsigned char)((24 + i) * 7 + 1);
	ok(bad == 0, "data reads back intact after release (MADV_DONTNEED)");
	ok(safetensors_header_meta(h, "format") != NULL,
	    "metadata reachable through the file");
	safetensors_close(f);
	safetensors_close(NULL);
	ok(safetensors_expected_size(path, &size, &eb) == SPD_OK &&
	    size == want, "expected size %" PRIu64 " (got %" PRIu64 ")", want,
	    size);
}

/* Files that must be rejected, built from a header and a data length. */
static void
test_open_rejects(void)
{
	static const char one[] =
	    "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
	static const char past[] =
	    "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
	    "\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}";
	static const struct {
		const char	*what;
		const char	*json;
		uint64_t	 hlen;		/* ~0: the real length */
		size_t		 data_len;
		enum spd_err	 rc;
		const char	*words[3];
	} cases[] = {
		{ "truncated data", one, ~(uint64_t)0, 10, SPD_EFORMAT,
		    { "truncated: file is 73 bytes, header implies 79" } },
		{ "offsets past the data", past, ~(uint64_t)0, 16, SPD_EFORMAT,
		    { "truncated", "header implies 142" } },
		{ "trailing bytes", one, ~(uint64_t)0, 20, SPD_EFORMAT,
		    { "trailing data: file is 83 bytes, header implies 79" } },
		{ "header length past EOF", one, 1000, 16, SPD_EFORMAT,
		    { "header length 1000", "past the end", "(79 bytes)" } },
		{ "header length over 100 MB", one, 100000001, 16, SPD_EFORMAT,
		    { "header length 100000001", "exceeds", "100000000" } },
		{ "header length near 2^64", one, UINT64_MAX - 1, 16, SPD_EFORMAT,
		    { "exceeds" } },
		{ "header length 0", one, 0, 16, SPD_EFORMAT, { "empty" } },
		{ "bad header in a file", "[]", ~(uint64_t)0, 0, SPD_EFORMAT,
		    { "not a JSON object" } },
	};
	struct spd_errbuf	 eb;
	struct st_file		*f;
	const char		*path;
	char			 name[64];
	uint64_t		 size;

	for (size_t i = 0; i < nitems(cases); i++) {
		snprintf(name, sizeof name, "bad%zu.safetensors", i);
		path = write_st(name, cases[i].json, cases[i].hlen,
		    cases[i].data_len);
		eb.msg[0] = '\0';
		f = (struct st_file *)&eb;
		ok(safetensors_open(path, &f, &eb) == cases[i].rc && f == NULL,
		    "reject %s", cases[i].what);
		ok(strncmp(eb.msg, path, strlen(path)) == 0 &&
		    has_words(eb.msg, cases[i].words, 3),
		    "%s: message names the file and the rule: %s",
		    cases[i].what, eb.msg);
	}
	/* expected_size works on a partial file: it is for completeness. */
	path = write_st("partial.safetensors", one, ~(uint64_t)0, 3);
	ok(safetensors_expected_size(path, &size, &eb) == SPD_OK &&
	    size == 79, "expected_size of a partial file is the full size");
}

/* Degenerate files: empty, 7 bytes, missing, a directory. */
static void
test_open_degenerate(void)
{
	static const unsigned char seven[7] = { 2, 0, 0, 0, 0, 0, 0 };
	static const struct {
		const char		*what;
		const unsigned char	*bytes;
		size_t			 len;
		enum spd_err		 rc;
		const char		*word;
	} cases[] = {
		{ "empty file", seven, 0, SPD_EFORMAT, "empty file" },
		{ "7-byte file", seven, 7, SPD_EFORMAT, "7 bytes, too short" },
	};
	struct spd_errbuf	 eb;
	struct st_file		*f;
	const char		*path;
	char			 p[600];
	uint64_t		 size;

	for (size_t i = 0; i < nitems(cases); i++) {
		path = write_file(cases[i].what, cases[i].bytes, cases[i].len);
		ok(safetensors_open(path, &f, &eb) == cases[i].rc &&
		    strncmp(eb.msg, path, strlen(path)) == 0 &&
		    strstr(eb.msg, cases[i].word) != NULL, "reject %s: %s",
		    cases[i].what, eb.msg);
		ok(safetensors_expected_size(path, &size, &eb) == cases[i].rc,
		    "expected_size rejects %s too", cases[i].what);
	}
	snprintf(p, sizeof p, "%s/no-such.safetensors", tmpdir);
	ok(safetensors_open(p, &f, &eb) == SPD_ENOTFOUND &&
	    strstr(eb.msg, "no-such.safetensors") != NULL,
	    "a missing file is SPD_ENOTFOUND, named");
	ok(safetensors_open(tmpdir, &f, &eb) == SPD_EFORMAT &&
	    strstr(eb.msg, "not a regular file") != NULL,
	    "a directory is rejected");
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

	snprintf(tmpdir, sizeof tmpdir, "%s/test_safetensors.XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		printf("# mkdtemp %s: %s\n", tmpdir, strerror(errno));
		return 1;
	}
	test_header_tables();
	test_header_fields();
	test_exact_message();
	test_open_valid();
	test_open_rejects();
	test_open_degenerate();
	cleanup();
	return tap_done();
}
