/*
 * fixture.c: synthetic Llama checkpoints in the Hugging Face Trainer layout,
 * written with a safetensors writer and dtype encoders of its own (never
 * the project's reader), streamed a block of rows at a time.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "spectrumd/common.h"
#include "spectrumd/tensor.h"
#include "fixture.h"

#define BLOCK_ELEMS	(256u * 1024)		/* float32 values per block */
#define HEADER_MAX	100000000u	/* the reference reader's limit */
#define SHARDS_MAX	99999u			/* five digits in shard names */

/* --- dtypes ----------------------------------------------------------- */

static const struct {
	const char	*name;
	unsigned	 bits;
} dtypes[DT_COUNT] = {
	[DT_BOOL] = { "BOOL", 8 },	[DT_U8] = { "U8", 8 },
	[DT_I8] = { "I8", 8 },		[DT_I16] = { "I16", 16 },
	[DT_U16] = { "U16", 16 },	[DT_I32] = { "I32", 32 },
	[DT_U32] = { "U32", 32 },	[DT_I64] = { "I64", 64 },
	[DT_U64] = { "U64", 64 },	[DT_F16] = { "F16", 16 },
	[DT_BF16] = { "BF16", 16 },	[DT_F32] = { "F32", 32 },
	[DT_F64] = { "F64", 64 },	[DT_C64] = { "C64", 64 },
	[DT_F8_E4M3] = { "F8_E4M3", 8 }, [DT_F8_E5M2] = { "F8_E5M2", 8 },
	[DT_F8_E8M0] = { "F8_E8M0", 8 },
	[DT_F8_E4M3FNUZ] = { "F8_E4M3FNUZ", 8 },
	[DT_F8_E5M2FNUZ] = { "F8_E5M2FNUZ", 8 },
	[DT_F4] = { "F4", 4 },		[DT_F6_E2M3] = { "F6_E2M3", 6 },
	[DT_F6_E3M2] = { "F6_E3M2", 6 },
};

/* Returns the safetensors name of dt. */
const char *
fixture_dtype_name(enum dtype dt)
{
	if ((unsigned)dt >= DT_COUNT || dtypes[dt].name == NULL)
		return "?";
	return dtypes[dt].name;
}

/* Looks up a dtype by name. */
bool
fixture_dtype_parse(const char *name, enum dtype *out)
{
	for (unsigned i = 0; i < DT_COUNT; i++) {
		if (dtypes[i].name != NULL &&
		    strcasecmp(dtypes[i].name, name) == 0) {
			*out = (enum dtype)i;
			return true;
		}
	}
	return false;
}

/* Returns the bits of one element of dt. */
unsigned
fixture_dtype_bits(enum dtype dt)
{
	return (unsigned)dt < DT_COUNT ? dtypes[dt].bits : 0;
}

/* True for the dtypes fixture_encode() writes. */
bool
fixture_dtype_encodable(enum dtype dt)
{
	return dt == DT_F32 || dt == DT_F16 || dt == DT_BF16 || dt == DT_F64 ||
	    dt == DT_F8_E4M3 || dt == DT_F8_E5M2;
}

/* --- float32 encoders (round to nearest even) -------------------------- */

/* Returns the bits of f. */
static uint32_t
f32_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof u);
	return u;
}

/*
 * Rounds a finite, non-negative float32 (bits a) to a format with mbits
 * mantissa bits and exponent bias ≤ 15, subnormals included. Returns the
 * unsigned bit pattern; a value past the largest finite one comes back as
 * a larger pattern, for the caller to map to Inf or NaN.
 */
static uint32_t
round_small(uint32_t a, int mbits, int bias)
{
	int		 e = (int)(a >> 23), te, s;
	uint32_t	 m, r, rem, half, base = 0;

	if (e == 0)
		return 0;	/* f32 subnormals: below half a quantum */
	m = (a & 0x7fffff) | 0x800000;
	te = e - 127 + bias;
	if (te >= 1) {
		s = 23 - mbits;
		base = (uint32_t)(te - 1) << mbits;	/* the carry makes te */
	} else {
		s = 24 - mbits - te;
		if (s > 25)
			return 0;
	}
	r = m >> s;
	rem = m & ((1u << s) - 1);
	half = 1u << (s - 1);
	if (rem > half || (rem == half && (r & 1)))
		r++;
	return base + r;
}

/* Encodes f as IEEE binary16. */
static uint16_t
enc_f16(float f)
{
	uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000;
	uint32_t a = u & 0x7fffffff, r;

	if (a > 0x7f800000)
		return (uint16_t)(sign | 0x7e00);
	r = a == 0x7f800000 ? 0x7c00 : round_small(a, 10, 15);
	return (uint16_t)(sign | (r >= 0x7c00 ? 0x7c00 : r));
}

/* Encodes f as bfloat16. */
static uint16_t
enc_bf16(float f)
{
	uint32_t u = f32_bits(f);

	if ((u & 0x7fffffff) > 0x7f800000)
		return (uint16_t)((u >> 16) | 0x40);
	return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

/* Encodes f as F8_E5M2 (IEEE-like: Inf and NaN). */
static uint8_t
enc_e5m2(float f)
{
	uint32_t u = f32_bits(f), sign = (u >> 24) & 0x80;
	uint32_t a = u & 0x7fffffff, r;

	if (a > 0x7f800000)
		return (uint8_t)(sign | 0x7e);
	r = a == 0x7f800000 ? 0x7c : round_small(a, 2, 15);
	return (uint8_t)(sign | (r >= 0x7c ? 0x7c : r));
}

/* Encodes f as F8_E4M3 (fn: no Inf, NaN = S.1111.111, max 448). */
static uint8_t
enc_e4m3(float f)
{
	uint32_t u = f32_bits(f), sign = (u >> 24) & 0x80;
	uint32_t a = u & 0x7fffffff, r;

	if (a >= 0x7f800000)
		return (uint8_t)(sign | 0x7f);
	r = round_small(a, 3, 7);
	return (uint8_t)(sign | (r > 0x7e ? 0x7f : r));
}

/* Stores v little-endian in nb bytes at p. */
static inline void
put_le(uint8_t *p, uint64_t v, unsigned nb)
{
	for (unsigned i = 0; i < nb; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Encodes n values as bfloat16 into d; blocks of 8 for the vectorizer. */
static void
encode_bf16(const float *restrict src, size_t n, uint8_t *restrict d)
{
	uint16_t	h[8];
	size_t		i = 0;

	for (; i + 8 <= n; i += 8) {
		for (int l = 0; l < 8; l++)
			h[l] = enc_bf16(src[i + l]);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		memcpy(d + 2 * i, h, sizeof h);
#else
		for (int l = 0; l < 8; l++)
			put_le(d + 2 * (i + l), h[l], 2);
#endif
	}
	for (; i < n; i++)
		put_le(d + 2 * i, enc_bf16(src[i]), 2);
}

/* Encodes n values into dst as dt; returns the bytes written. */
size_t
fixture_encode(enum dtype dt, const float *src, size_t n, void *dst)
{
	uint8_t	*d = dst;
	size_t	 i;

	switch (dt) {
	case DT_F32:
		for (i = 0; i < n; i++)
			put_le(d + 4 * i, f32_bits(src[i]), 4);
		return 4 * n;
	case DT_F64:
		for (i = 0; i < n; i++) {
			double		x = src[i];
			uint64_t	b;

			memcpy(&b, &x, sizeof b);
			put_le(d + 8 * i, b, 8);
		}
		return 8 * n;
	case DT_BF16:
		encode_bf16(src, n, d);
		return 2 * n;
	case DT_F16:
		for (i = 0; i < n; i++)
			put_le(d + 2 * i, enc_f16(src[i]), 2);
		return 2 * n;
	case DT_F8_E5M2:
		for (i = 0; i < n; i++)
			d[i] = enc_e5m2(src[i]);
		return n;
	case DT_F8_E4M3:
		for (i = 0; i < n; i++)
			d[i] = enc_e4m3(src[i]);
		return n;
	default:
		return 0;
	}
}

/* --- deterministic randomness ------------------------------------------ */

/* Advances *x and returns the next splitmix64 output. */
static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* xoshiro256** state. */
struct rng {
	uint64_t	s[4];
};

/* Seeds r from one 64-bit value. */
static void
rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

/* Rotates x left by k bits. */
static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* Returns the next 64 random bits. */
static inline uint64_t
rng_next(struct rng *r)
{
	uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

/* Hashes (seed, name, salt) into 64 bits (FNV-1a, then splitmix). */
static uint64_t
hash_name(uint64_t seed, const char *name, uint64_t salt)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (const char *p = name; *p != '\0'; p++) {
		h ^= (unsigned char)*p;
		h *= 0x100000001b3ULL;
	}
	h ^= salt * 0xd1b54a32d192ed03ULL;
	return splitmix64(&h);
}

/* Maps 64 random bits to [0, 1). */
static double
unit(uint64_t h)
{
	return (double)(h >> 11) * 0x1p-53;
}

/* --- a bounded string builder ------------------------------------------ */

struct sbuf {
	char	*p;
	size_t	 len, cap;
	bool	 failed;	/* out of memory or over HEADER_MAX */
};

/* Appends formatted text to b; on failure sets b->failed. */
static void sbuf_add(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sbuf_add(struct sbuf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;
	size_t	 cap;
	char	*p;

	if (b->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p == NULL ? NULL : b->p + b->len,
	    b->p == NULL ? 0 : b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (b->p != NULL && (size_t)n < b->cap - b->len) {
		b->len += (size_t)n;
		return;
	}
	cap = b->cap == 0 ? 4096 : b->cap;
	while (cap - b->len <= (size_t)n && cap <= HEADER_MAX)
		cap *= 2;
	if (cap - b->len <= (size_t)n || (p = realloc(b->p, cap)) == NULL) {
		b->failed = true;
		return;
	}
	b->p = p;
	b->cap = cap;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Appends s as a JSON string. */
static void
sbuf_json_str(struct sbuf *b, const char *s)
{
	sbuf_add(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			sbuf_add(b, "\\%c", *p);
		else if (*p < 0x20)
			sbuf_add(b, "\\u%04x", *p);
		else
			sbuf_add(b, "%c", *p);
	}
	sbuf_add(b, "\"");
}

/* --- file helpers ------------------------------------------------------ */

/* Writes all len bytes of buf to fd; returns 0 or -1. */
static int
write_all(int fd, const void *buf, size_t len)
{
	const char	*p = buf;
	ssize_t		 w;

	while (len > 0) {
		w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Writes the text b to dir/name (created or truncated). */
static enum spd_err
write_text(const char *dir, const char *name, const struct sbuf *b,
    struct spd_errbuf *eb)
{
	char	path[PATH_MAX];
	int	fd, n;

	if (b->failed)
		return spd_fail(eb, SPD_ENOMEM, "%s: out of memory", name);
	n = snprintf(path, sizeof path, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof path)
		return spd_fail(eb, SPD_EINVAL, "%s/%s: path too long", dir,
		    name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return spd_fail(eb, SPD_EIO, "%s: %s", path, strerror(errno));
	if (write_all(fd, b->p, b->len) != 0) {
		spd_fail(eb, SPD_EIO, "%s: %s", path, strerror(errno));
		close(fd);
		return SPD_EIO;
	}
	if (close(fd) != 0)
		return spd_fail(eb, SPD_EIO, "%s: %s", path, strerror(errno));
	return SPD_OK;
}

/* Creates dir and its missing parents (mode 0755). */
static enum spd_err
mkdir_p(const char *dir, struct spd_errbuf *eb)
{
	char		 buf[PATH_MAX], c;
	struct stat	 st;
	size_t		 len = strlen(dir);

	if (len == 0 || len >= sizeof buf)
		return spd_fail(eb, SPD_EINVAL, "bad directory name '%s'", dir);
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		c = *p;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 &&
		    (errno != EEXIST || stat(buf, &st) != 0 ||
		    !S_ISDIR(st.st_mode)))
			return spd_fail(eb, SPD_EIO, "mkdir %s: %s", buf,
			    errno == EEXIST ? "not a directory" :
			    strerror(errno));
		*p = c;
		if (c == '\0')
			return SPD_OK;
	}
}

/* --- the safetensors writer -------------------------------------------- */

/* Computes the data bytes of t into *out. */
static enum spd_err
tensor_bytes(const struct fixture_tensor *t, uint64_t *out,
    struct spd_errbuf *eb)
{
	uint64_t	n = 1;
	unsigned	bits = fixture_dtype_bits(t->dtype);

	if (t->name == NULL)
		return spd_fail(eb, SPD_EINVAL, "tensor without a name");
	if (t->ndim > FIXTURE_MAX_DIM || bits == 0)
		return spd_fail(eb, SPD_EINVAL, "%s: bad ndim or dtype",
		    t->name);
	if (t->raw != NULL) {
		*out = t->raw_len;
		return SPD_OK;
	}
	if (!fixture_dtype_encodable(t->dtype))
		return spd_fail(eb, SPD_EINVAL, "%s: cannot encode %s from "
		    "float32 (give raw bytes)", t->name,
		    fixture_dtype_name(t->dtype));
	for (size_t i = 0; i < t->ndim; i++)
		if (__builtin_mul_overflow(n, t->shape[i], &n))
			return spd_fail(eb, SPD_EINVAL, "%s: size overflows",
			    t->name);
	if (__builtin_mul_overflow(n, bits / 8, out) || n > SIZE_MAX)
		return spd_fail(eb, SPD_EINVAL, "%s: size overflows", t->name);
	return SPD_OK;
}

/* Builds the padded JSON header; len[i] are the tensors' data bytes. */
static enum spd_err
build_header(struct sbuf *h, const struct fixture_tensor *t, size_t nt,
    const uint64_t *len, const struct fixture_meta *meta, size_t nmeta,
    struct spd_errbuf *eb)
{
	uint64_t	off = 0;
	const char	*sep = "";

	sbuf_add(h, "{");
	if (nmeta > 0) {
		sbuf_add(h, "\"__metadata__\":{");
		for (size_t i = 0; i < nmeta; i++) {
			sbuf_add(h, "%s", i > 0 ? "," : "");
			sbuf_json_str(h, meta[i].key);
			sbuf_add(h, ":");
			sbuf_json_str(h, meta[i].value);
		}
		sbuf_add(h, "}");
		sep = ",";
	}
	for (size_t i = 0; i < nt; i++) {
		sbuf_add(h, "%s", sep);
		sbuf_json_str(h, t[i].name);
		sbuf_add(h, ":{\"dtype\":\"%s\",\"shape\":[",
		    fixture_dtype_name(t[i].dtype));
		for (size_t d = 0; d < t[i].ndim; d++)
			sbuf_add(h, "%s%" PRIu64, d > 0 ? "," : "",
			    t[i].shape[d]);
		sbuf_add(h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}",
		    off, off + len[i]);
		off += len[i];
		sep = ",";
	}
	sbuf_add(h, "}");
	while (!h->failed && h->len % 8 != 0)
		sbuf_add(h, " ");
	if (h->failed)
		return spd_fail(eb, SPD_ENOMEM, "header: out of memory or "
		    "over %u bytes", HEADER_MAX);
	return SPD_OK;
}

/* Block buffers of the writer. */
struct block {
	float	*f;
	uint8_t	*b;
};

/* Streams the data of one tensor (nbytes, from tensor_bytes) to fd. */
static enum spd_err
write_data(int fd, const char *path, const struct fixture_tensor *t,
    uint64_t nbytes, struct block *blk, struct spd_errbuf *eb)
{
	uint64_t	 nelem, row = 1, per = BLOCK_ELEMS, first, cnt;
	const float	*src;
	enum spd_err	 rc;

	if (t->raw != NULL)
		return write_all(fd, t->raw, t->raw_len) == 0 ? SPD_OK :
		    spd_fail(eb, SPD_EIO, "%s: %s", path, strerror(errno));
	nelem = nbytes / (fixture_dtype_bits(t->dtype) / 8);
	if (t->ndim > 0)
		row = t->shape[t->ndim - 1];
	if (row > 0 && row <= BLOCK_ELEMS)
		per = BLOCK_ELEMS / row * row;
	for (first = 0; first < nelem; first += cnt) {
		cnt = nelem - first < per ? nelem - first : per;
		src = blk->f;
		if (t->values != NULL)
			src = t->values + first;
		else if (t->gen != NULL) {
			rc = t->gen(t->arg, first, (size_t)cnt, blk->f);
			if (rc != SPD_OK)
				return spd_fail(eb, rc, "%s: %s: generator: %s",
				    path, t->name, spd_strerror(rc));
		} else
			memset(blk->f, 0, (size_t)cnt * sizeof(float));
		if (write_all(fd, blk->b, fixture_encode(t->dtype, src,
		    (size_t)cnt, blk->b)) != 0)
			return spd_fail(eb, SPD_EIO, "%s: %s", path,
			    strerror(errno));
	}
	return SPD_OK;
}

/* Writes a safetensors file; see fixture.h. */
enum spd_err
fixture_write_safetensors(const char *path, const struct fixture_tensor *t,
    size_t nt, const struct fixture_meta *meta, size_t nmeta,
    struct spd_errbuf *eb)
{
	struct sbuf	 h = { 0 };
	struct block	 blk = { NULL, NULL };
	uint64_t	*len = NULL;
	uint8_t		 n8[8];
	int		 fd = -1;
	bool		 created = false;
	enum spd_err	 rc = SPD_ENOMEM;

	if ((len = calloc(nt + 1, sizeof *len)) == NULL ||
	    (blk.f = malloc(BLOCK_ELEMS * sizeof(float))) == NULL ||
	    (blk.b = malloc(BLOCK_ELEMS * 8)) == NULL) {
		spd_fail(eb, rc, "%s: out of memory", path);
		goto out;
	}
	for (size_t i = 0; i < nt; i++)
		if ((rc = tensor_bytes(&t[i], &len[i], eb)) != SPD_OK)
			goto out;
	if ((rc = build_header(&h, t, nt, len, meta, nmeta, eb)) != SPD_OK)
		goto out;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = spd_fail(eb, SPD_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	created = true;
	put_le(n8, h.len, 8);
	if (write_all(fd, n8, 8) != 0 || write_all(fd, h.p, h.len) != 0) {
		rc = spd_fail(eb, SPD_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < nt; i++)
		if ((rc = write_data(fd, path, &t[i], len[i], &blk,
		    eb)) != SPD_OK)
			goto out;
	rc = close(fd) == 0 ? SPD_OK :
	    spd_fail(eb, SPD_EIO, "%s: %s", path, strerror(errno));
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	if (rc != SPD_OK && created)
		unlink(path);
	free(h.p);
	free(len);
	free(blk.f);
	free(blk.b);
	return rc;
}

/* --- the Llama plan ---------------------------------------------------- */

enum dim { D_ONE, D_HIDDEN, D_INTER, D_KV, D_VOCAB };

/* A tensor kind: its type (after "model.layers.<i>.") and shape. */
struct kind {
	const char	*type;
	enum dim	 rows, cols;	/* rows D_ONE: a 1-D [cols] weight */
};

static const struct kind layer_kinds[] = {
	{ "self_attn.q_proj", D_HIDDEN, D_HIDDEN },
	{ "self_attn.k_proj", D_KV, D_HIDDEN },
	{ "self_attn.v_proj", D_KV, D_HIDDEN },
	{ "self_attn.o_proj", D_HIDDEN, D_HIDDEN },
	{ "mlp.gate_proj", D_INTER, D_HIDDEN },
	{ "mlp.up_proj", D_INTER, D_HIDDEN },
	{ "mlp.down_proj", D_HIDDEN, D_INTER },
	{ "input_layernorm", D_ONE, D_HIDDEN },
	{ "post_attention_layernorm", D_ONE, D_HIDDEN },
};
static const struct kind embed_kind = { "model.embed_tokens", D_VOCAB,
    D_HIDDEN };
static const struct kind norm_kind = { "model.norm", D_ONE, D_HIDDEN };
static const struct kind head_kind = { "lm_head", D_VOCAB, D_HIDDEN };

#define ONLY_MAX	64

/* The parsed `only` filter and which of its kinds matched. */
struct only {
	char	 buf[1024];
	char	*tok[ONLY_MAX];
	bool	 hit[ONLY_MAX];
	size_t	 n;
};

/* Sets the defaults documented in fixture.h. */
void
fixture_opts_init(struct fixture_opts *o)
{
	memset(o, 0, sizeof *o);
	o->layers = 2;
	o->hidden = 64;
	o->intermediate = 172;
	o->vocab = 256;
	o->dtype = DT_BF16;
	o->signal = 4;
	o->rank = 4;
	o->seed = 1;
	o->config = true;
	o->trainer_state = true;
	o->with_1d = true;
}

/* Returns the size of dimension d. */
static uint64_t
dim_size(const struct fixture_opts *o, enum dim d)
{
	switch (d) {
	case D_HIDDEN:
		return o->hidden;
	case D_INTER:
		return o->intermediate;
	case D_KV:
		return o->kv_dim != 0 ? o->kv_dim : o->hidden;
	case D_VOCAB:
		return o->vocab;
	default:
		return 1;
	}
}

/* Splits the comma list s (NULL: take all) into f. */
static enum spd_err
only_parse(const char *s, struct only *f, struct spd_errbuf *eb)
{
	char	*save = NULL, *t;

	memset(f, 0, sizeof *f);
	if (s == NULL)
		return SPD_OK;
	if (strlen(s) >= sizeof f->buf)
		return spd_fail(eb, SPD_EINVAL, "only: list too long");
	memcpy(f->buf, s, strlen(s) + 1);
	for (t = strtok_r(f->buf, ",", &save); t != NULL;
	    t = strtok_r(NULL, ",", &save)) {
		if (f->n == ONLY_MAX)
			return spd_fail(eb, SPD_EINVAL, "only: over %d kinds",
			    ONLY_MAX);
		f->tok[f->n++] = t;
	}
	if (f->n == 0)
		return spd_fail(eb, SPD_EINVAL, "only: empty list");
	return SPD_OK;
}

/* True when tok is the first dotted part of type ("mlp" of "mlp.up_proj"). */
static bool
first_part_is(const char *type, const char *tok)
{
	const char *dot = strchr(type, '.');

	return dot != NULL && strlen(tok) == (size_t)(dot - type) &&
	    strncmp(type, tok, strlen(tok)) == 0;
}

/* Whether the filter takes module (ltype: its layer type, or NULL). */
static bool
only_take(struct only *f, const char *module, const char *ltype)
{
	const char	*type = ltype != NULL ? ltype : module;
	const char	*last = strrchr(module, '.');
	bool		 take = f->n == 0;

	last = last != NULL ? last + 1 : module;
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->tok[i], type) == 0 ||
		    strcmp(f->tok[i], last) == 0 ||
		    (ltype != NULL && first_part_is(ltype, f->tok[i]))) {
			f->hit[i] = true;
			take = true;
		}
	}
	return take;
}

/* Planted strength of a 2-D tensor (fixture.h) at step. */
static double
strength(const struct fixture_opts *o, const char *name, uint64_t step)
{
	double b = 0.25 + 1.75 * unit(hash_name(o->seed, name, 1));
	double phi = 2 * M_PI * unit(hash_name(o->seed, name, 2));

	return o->signal * b * (1 + 0.5 * sin(phi + o->drift *
	    (double)step));
}

/*
 * Whether layer l of layer type ltype is frozen (fixture.h): its place
 * among the layers ordered by a hash of (seed, type, layer) is below
 * ⌊layers · frozen_percent / 100⌋.
 */
static bool
layer_frozen(const struct fixture_opts *o, const char *ltype, unsigned l)
{
	uint64_t	h = hash_name(o->seed ^ l, ltype, 7), g;
	unsigned	i, pos = 0;

	if (o->frozen_percent >= 100)
		return true;
	for (i = 0; i < o->layers; i++) {
		g = hash_name(o->seed ^ i, ltype, 7);
		if (g < h || (g == h && i < l))
			pos++;
	}
	return pos < (uint64_t)o->layers * o->frozen_percent / 100;
}

/* Appends module (of kind k, layer type ltype or NULL) to e[*n] if taken. */
static enum spd_err
plan_add(const struct fixture_opts *o, struct only *f, const char *module,
    const struct kind *k, const char *ltype, unsigned layer,
    struct fixture_entry *e, size_t *n, struct spd_errbuf *eb)
{
	struct fixture_entry	*x = &e[*n];
	int			 len;

	if ((k->rows == D_ONE && !o->with_1d) || !only_take(f, module, ltype))
		return SPD_OK;
	memset(x, 0, sizeof *x);
	len = snprintf(x->name, sizeof x->name, "%s.weight", module);
	if (len < 0 || (size_t)len >= sizeof x->name)
		return spd_fail(eb, SPD_EINVAL, "%s: name too long", module);
	x->ndim = k->rows == D_ONE ? 1 : 2;
	x->shape[0] = dim_size(o, x->ndim == 1 ? k->cols : k->rows);
	x->shape[1] = x->ndim == 1 ? 0 : dim_size(o, k->cols);
	x->frozen = o->frozen_percent >= 100 || (ltype != NULL &&
	    layer_frozen(o, ltype, layer));
	x->strength = x->ndim == 2 ? strength(o, x->name, x->frozen ? 0 :
	    o->step) : 0;
	x->nan = o->nan_tensor != NULL && (strcmp(o->nan_tensor, module) == 0
	    || strcmp(o->nan_tensor, x->name) == 0);
	(*n)++;
	return SPD_OK;
}

/* Lists every tensor of the model in file order into e (room enough). */
static enum spd_err
plan_all(const struct fixture_opts *o, struct only *f, struct fixture_entry *e,
    size_t *n, struct spd_errbuf *eb)
{
	char		module[FIXTURE_NAME_MAX];
	enum spd_err	rc;

	*n = 0;
	if ((rc = plan_add(o, f, embed_kind.type, &embed_kind, NULL, 0, e, n,
	    eb)) != SPD_OK)
		return rc;
	for (unsigned l = 0; l < o->layers; l++) {
		for (size_t i = 0; i < nitems(layer_kinds); i++) {
			snprintf(module, sizeof module, "model.layers.%u.%s", l,
			    layer_kinds[i].type);
			rc = plan_add(o, f, module, &layer_kinds[i],
			    layer_kinds[i].type, l, e, n, eb);
			if (rc != SPD_OK)
				return rc;
		}
	}
	if ((rc = plan_add(o, f, norm_kind.type, &norm_kind, NULL, 0, e, n,
	    eb)) != SPD_OK)
		return rc;
	if (!o->tied_embeddings)
		rc = plan_add(o, f, head_kind.type, &head_kind, NULL, 0, e, n,
		    eb);
	return rc;
}

/* Bytes of one planned tensor. */
static uint64_t
entry_bytes(const struct fixture_entry *e, enum dtype dt)
{
	uint64_t n = e->shape[0] * (e->ndim == 2 ? e->shape[1] : 1);

	return n * (fixture_dtype_bits(dt) / 8);
}

/* Total tensor bytes of a plan. */
uint64_t
fixture_plan_bytes(const struct fixture_entry *e, size_t n, enum dtype dt)
{
	uint64_t total = 0;

	for (size_t i = 0; i < n; i++)
		total += entry_bytes(&e[i], dt);
	return total;
}

/*
 * Puts a contiguous run of tensors in each of k shards, moving to the next
 * shard when the cumulative size passes its share, or when every tensor
 * left is needed to keep the remaining shards non-empty. Needs n >= k.
 */
static void
assign_shards(struct fixture_entry *e, size_t n, unsigned k, enum dtype dt)
{
	uint64_t	total = fixture_plan_bytes(e, n, dt), cum = 0, b;
	unsigned	s = 0;
	size_t		in_cur = 0;

	for (size_t i = 0; i < n; i++) {
		b = entry_bytes(&e[i], dt);
		if (k > 1 && in_cur > 0 && s < k - 1 && (n - i <= k - 1 - s ||
		    cum + b > (total / k) * (s + 1))) {
			s++;
			in_cur = 0;
		}
		e[i].shard = s;
		in_cur++;
		cum += b;
	}
}

/* Checks the options that fixture_plan() cannot check while listing. */
static enum spd_err
check_opts(const struct fixture_opts *o, struct spd_errbuf *eb)
{
	uint64_t	dims[] = { o->hidden, o->intermediate, o->vocab,
			    o->kv_dim != 0 ? o->kv_dim : o->hidden };

	if (o->layers > 100000)
		return spd_fail(eb, SPD_EINVAL, "layers: %u is over 100000",
		    o->layers);
	/* Sizes ≤ 2^30: a tensor is ≤ 2^63 bytes, no overflow below. */
	for (size_t i = 0; i < nitems(dims); i++)
		if (dims[i] == 0 || dims[i] > (1u << 30))
			return spd_fail(eb, SPD_EINVAL, "sizes must be in "
			    "1 .. 2^30");
	if (!fixture_dtype_encodable(o->dtype))
		return spd_fail(eb, SPD_EINVAL, "dtype %s: only F32, F16, "
		    "BF16, F64, F8_E4M3 and F8_E5M2 are written",
		    fixture_dtype_name(o->dtype));
	if (o->frozen_percent > 100)
		return spd_fail(eb, SPD_EINVAL, "frozen percent: %u is over "
		    "100", o->frozen_percent);
	if (o->shards > SHARDS_MAX)
		return spd_fail(eb, SPD_EINVAL, "shards: %u is over %u",
		    o->shards, SHARDS_MAX);
	if (o->rank > 1024 || !(o->signal >= 0) || isinf(o->signal) ||
	    !isfinite(o->drift))
		return spd_fail(eb, SPD_EINVAL, "rank must be ≤ 1024, signal "
		    "≥ 0 and finite, drift finite");
	return SPD_OK;
}

/* Lists the tensors of a checkpoint; see fixture.h. */
enum spd_err
fixture_plan(const struct fixture_opts *o, struct fixture_entry **out,
    size_t *nout, struct spd_errbuf *eb)
{
	struct only		 f;
	struct fixture_entry	*e = NULL;
	size_t			 n = 0, max = 3 + (size_t)o->layers *
				    nitems(layer_kinds);
	enum spd_err		 rc;
	bool			 nan_found = o->nan_tensor == NULL;

	if ((rc = check_opts(o, eb)) != SPD_OK ||
	    (rc = only_parse(o->only, &f, eb)) != SPD_OK)
		return rc;
	if ((e = calloc(max, sizeof *e)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "plan: out of memory");
	if ((rc = plan_all(o, &f, e, &n, eb)) != SPD_OK)
		goto out;
	rc = SPD_EINVAL;
	for (size_t i = 0; i < f.n; i++)
		if (!f.hit[i]) {
			spd_fail(eb, rc, "only: '%s' matches no tensor",
			    f.tok[i]);
			goto out;
		}
	for (size_t i = 0; i < n; i++)
		nan_found = nan_found || e[i].nan;
	if (!nan_found) {
		spd_fail(eb, rc, "nan_tensor: '%s' matches no tensor",
		    o->nan_tensor);
		goto out;
	}
	if (n == 0 || (o->shards > 1 && n < o->shards)) {
		spd_fail(eb, rc, "%zu tensors cannot fill %u shards", n,
		    o->shards > 1 ? o->shards : 1);
		goto out;
	}
	assign_shards(e, n, o->shards, o->dtype);
	*out = e;
	*nout = n;
	e = NULL;
	rc = SPD_OK;
out:
	free(e);
	return rc;
}

/* --- the value generator ----------------------------------------------- */

#define GTAB_BITS	12
#define GTAB		(1u << GTAB_BITS)

/*
 * The one tensor being generated: noise parameters and planted vectors.
 * Noise comes from a table of GTAB Gaussian quantiles (mean 0, variance
 * rescaled to 1) indexed by 12-bit slices of the random stream: five
 * values per 64-bit draw.
 */
struct gen {
	float				 table[GTAB];
	const struct fixture_opts	*o;
	const struct fixture_entry	*cur;
	uint64_t			 rows, cols, seed;
	float				 std, offset;
	unsigned			 rank;
	float				*a, *u, *v, *row;
};

/* Binds one planned tensor to the shared generator (the gen callback's arg). */
struct gen_slot {
	struct gen			*g;
	const struct fixture_entry	*e;
};

/* Frees the planted vectors of g. */
static void
gen_reset(struct gen *g)
{
	free(g->a);
	free(g->u);
	free(g->v);
	free(g->row);
	g->a = g->u = g->v = g->row = NULL;
	g->cur = NULL;
}

/* Fills g->table with the quantiles Φ⁻¹((i + ½) / GTAB), variance 1. */
static void
gen_init(struct gen *g, const struct fixture_opts *o)
{
	double	lo, hi, mid, p, var = 0;

	memset(g, 0, sizeof *g);
	g->o = o;
	for (unsigned i = GTAB / 2; i < GTAB; i++) {
		p = (i + 0.5) / GTAB;
		lo = 0;
		hi = 10;
		for (int it = 0; it < 60; it++) {
			mid = (lo + hi) / 2;
			if (0.5 * erfc(-mid / M_SQRT2) < p)
				lo = mid;
			else
				hi = mid;
		}
		g->table[i] = (float)lo;
		g->table[GTAB - 1 - i] = (float)-lo;
		var += 2 * lo * lo / GTAB;
	}
	for (unsigned i = 0; i < GTAB; i++)
		g->table[i] = (float)(g->table[i] / sqrt(var));
}

/* Fills out[0 … n) with offset + scale · noise from r. */
static void
fill_noise(const float *table, struct rng *r, float offset, float scale,
    float *out, uint64_t n)
{
	const uint64_t	mask = GTAB - 1;
	uint64_t	j = 0, x;

	for (; j + 5 <= n; j += 5) {
		x = rng_next(r);
		out[j] = offset + scale * table[x & mask];
		out[j + 1] = offset + scale * table[(x >> 12) & mask];
		out[j + 2] = offset + scale * table[(x >> 24) & mask];
		out[j + 3] = offset + scale * table[(x >> 36) & mask];
		out[j + 4] = offset + scale * table[(x >> 48) & mask];
	}
	for (x = rng_next(r); j < n; j++, x >>= 12)
		out[j] = offset + scale * table[x & mask];
}

/* Fills x with a random unit vector of length n. */
static void
unit_vector(const float *table, float *x, uint64_t n, uint64_t seed)
{
	struct rng	r;
	double		ss = 0, scale;

	rng_seed(&r, seed);
	fill_noise(table, &r, 0, 1, x, n);
	for (uint64_t i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	scale = ss > 0 ? 1 / sqrt(ss) : 0;
	for (uint64_t i = 0; i < n; i++)
		x[i] = (float)(x[i] * scale);
}

/* Prepares g for tensor e: seeds and the rank-r outer product factors. */
static enum spd_err
gen_setup(struct gen *g, const struct fixture_entry *e)
{
	const struct fixture_opts	*o = g->o;
	uint64_t			 step = o->step, nu, nv;

	gen_reset(g);
	g->rows = e->ndim == 2 ? e->shape[0] : 1;
	g->cols = e->ndim == 2 ? e->shape[1] : e->shape[0];
	if (e->frozen)
		step = 0;
	g->seed = hash_name(o->seed, e->name, 3) ^
	    (o->drift != 0 ? splitmix64(&step) : 0);
	g->std = e->ndim == 2 ? (float)(1 / sqrt((double)g->cols)) : 0.02f;
	g->offset = e->ndim == 2 ? 0 : 1;
	g->rank = e->ndim == 2 && e->strength > 0 ? o->rank : 0;
	nu = g->rank * g->rows;
	nv = g->rank * g->cols;
	g->row = malloc(g->cols * sizeof(float));
	g->a = malloc((g->rank + 1) * sizeof(float));
	g->u = malloc((nu + 1) * sizeof(float));
	g->v = malloc((nv + 1) * sizeof(float));
	if (g->row == NULL || g->a == NULL || g->u == NULL || g->v == NULL) {
		gen_reset(g);
		return SPD_ENOMEM;
	}
	for (unsigned r = 0; r < g->rank; r++) {
		g->a[r] = (float)(e->strength * (g->rank - r) / g->rank);
		unit_vector(g->table, g->u + r * g->rows, g->rows,
		    hash_name(o->seed, e->name, 100 + 2 * r));
		unit_vector(g->table, g->v + r * g->cols, g->cols,
		    hash_name(o->seed, e->name, 101 + 2 * r));
	}
	g->cur = e;
	return SPD_OK;
}

/* Adds c · v to out (n values); blocks of 8 so that the compiler vectorizes. */
static void
axpy(float *restrict out, float c, const float *restrict v, uint64_t n)
{
	uint64_t j = 0;

	for (; j + 8 <= n; j += 8)
		for (int l = 0; l < 8; l++)
			out[j + l] += c * v[j + l];
	for (; j < n; j++)
		out[j] += c * v[j];
}

/* Writes row i of the current tensor (cols values) into out. */
static void
gen_row(const struct gen *g, uint64_t i, float *out)
{
	struct rng	r;

	rng_seed(&r, g->seed ^ (i * 0x9e3779b97f4a7c15ULL));
	fill_noise(g->table, &r, g->offset, g->std, out, g->cols);
	for (unsigned k = 0; k < g->rank; k++)
		axpy(out, g->a[k] * g->u[k * g->rows + i], g->v + k * g->cols,
		    g->cols);
}

/* The gen callback of struct fixture_tensor for planned tensors. */
static enum spd_err
gen_fill(void *arg, uint64_t first, size_t n, float *out)
{
	struct gen_slot	*sl = arg;
	struct gen	*g = sl->g;
	uint64_t	 row, col, take;
	enum spd_err	 rc;

	if (g->cur != sl->e && (rc = gen_setup(g, sl->e)) != SPD_OK)
		return rc;
	if (sl->e->nan) {
		for (size_t i = 0; i < n; i++)
			out[i] = NAN;
		return SPD_OK;
	}
	for (size_t done = 0; done < n; done += take) {
		row = (first + done) / g->cols;
		col = (first + done) % g->cols;
		take = g->cols - col < n - done ? g->cols - col : n - done;
		if (col == 0 && take == g->cols)
			gen_row(g, row, out + done);
		else {
			gen_row(g, row, g->row);
			memcpy(out + done, g->row + col, take * sizeof(float));
		}
	}
	return SPD_OK;
}

/* --- the checkpoint ---------------------------------------------------- */

/* Writes the name of shard s (from 0) of k into buf. */
static void
shard_name(char *buf, size_t len, unsigned s, unsigned k)
{
	if (k <= 1)
		snprintf(buf, len, "model.safetensors");
	else
		snprintf(buf, len, "model-%05u-of-%05u.safetensors", s + 1, k);
}

/* Writes the weight file of shard s: its run of tensors, streamed. */
static enum spd_err
write_shard(const char *dir, const struct fixture_opts *o,
    const struct fixture_entry *e, size_t n, unsigned s, unsigned k,
    struct gen *g, struct spd_errbuf *eb)
{
	struct fixture_tensor	*t = NULL;
	struct gen_slot		*sl = NULL;
	struct fixture_meta	 meta[2] = { { "format", "pt" },
				    { "step", NULL } };
	char			 file[64], path[PATH_MAX], step[24];
	size_t			 nt = 0;
	int			 len;
	enum spd_err		 rc = SPD_ENOMEM;

	shard_name(file, sizeof file, s, k);
	snprintf(step, sizeof step, "%" PRIu64, o->step);
	meta[1].value = step;
	len = snprintf(path, sizeof path, "%s/%s", dir, file);
	if (len < 0 || (size_t)len >= sizeof path)
		return spd_fail(eb, SPD_EINVAL, "%s: path too long", dir);
	if ((t = calloc(n, sizeof *t)) == NULL ||
	    (sl = calloc(n, sizeof *sl)) == NULL) {
		spd_fail(eb, rc, "%s: out of memory", path);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (e[i].shard != s)
			continue;
		sl[nt] = (struct gen_slot){ g, &e[i] };
		t[nt] = (struct fixture_tensor){ .name = e[i].name,
		    .dtype = o->dtype, .ndim = e[i].ndim, .gen = gen_fill,
		    .arg = &sl[nt] };
		memcpy(t[nt].shape, e[i].shape, sizeof e[i].shape);
		nt++;
	}
	rc = fixture_write_safetensors(path, t, nt, meta, o->meta_step ? 2 : 1,
	    eb);
out:
	gen_reset(g);
	free(t);
	free(sl);
	return rc;
}

/* Writes model.safetensors.index.json: total_size and the weight map. */
static enum spd_err
write_index(const char *dir, const struct fixture_opts *o,
    const struct fixture_entry *e, size_t n, unsigned k,
    struct spd_errbuf *eb)
{
	struct sbuf	b = { 0 };
	char		file[64];
	enum spd_err	rc;

	sbuf_add(&b, "{\n  \"metadata\": {\n    \"total_size\": %" PRIu64
	    "\n  },\n  \"weight_map\": {\n", fixture_plan_bytes(e, n,
	    o->dtype));
	for (size_t i = 0; i < n; i++) {
		shard_name(file, sizeof file, e[i].shard, k);
		sbuf_add(&b, "    ");
		sbuf_json_str(&b, e[i].name);
		sbuf_add(&b, ": \"%s\"%s\n", file, i + 1 < n ? "," : "");
	}
	sbuf_add(&b, "  }\n}\n");
	rc = write_text(dir, "model.safetensors.index.json", &b, eb);
	free(b.p);
	return rc;
}

/* Returns the torch dtype name of dt for config.json. */
static const char *
torch_dtype(enum dtype dt)
{
	switch (dt) {
	case DT_F32:
		return "float32";
	case DT_F16:
		return "float16";
	case DT_F64:
		return "float64";
	case DT_F8_E4M3:
		return "float8_e4m3fn";
	case DT_F8_E5M2:
		return "float8_e5m2";
	default:
		return "bfloat16";
	}
}

/* Writes a Llama config.json. */
static enum spd_err
write_config(const char *dir, const struct fixture_opts *o,
    struct spd_errbuf *eb)
{
	struct sbuf	b = { 0 };
	uint64_t	kv = dim_size(o, D_KV), hd = 128;
	enum spd_err	rc;

	while (hd > 1 && (o->hidden % hd != 0 || kv % hd != 0))
		hd /= 2;
	sbuf_add(&b, "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n"
	    "  \"model_type\": \"llama\",\n  \"hidden_act\": \"silu\",\n"
	    "  \"hidden_size\": %zu,\n  \"intermediate_size\": %zu,\n"
	    "  \"num_hidden_layers\": %u,\n", o->hidden, o->intermediate,
	    o->layers);
	sbuf_add(&b, "  \"num_attention_heads\": %" PRIu64 ",\n"
	    "  \"num_key_value_heads\": %" PRIu64 ",\n  \"head_dim\": %" PRIu64
	    ",\n", o->hidden / hd, kv / hd, hd);
	sbuf_add(&b, "  \"vocab_size\": %zu,\n  \"max_position_embeddings\": "
	    "4096,\n  \"rms_norm_eps\": 1e-05,\n  \"tie_word_embeddings\": "
	    "%s,\n  \"torch_dtype\": \"%s\",\n  \"transformers_version\": "
	    "\"4.46.0\"\n}\n", o->vocab, o->tied_embeddings ? "true" :
	    "false", torch_dtype(o->dtype));
	rc = write_text(dir, "config.json", &b, eb);
	free(b.p);
	return rc;
}

#define LOG_STEPS	5	/* logging_steps of the simulated trainer */
#define LOG_EVAL	4	/* an eval every LOG_EVAL logs */
#define LOG_MAX		400	/* logs kept in log_history: the last */
#define LOG_WARMUP	50	/* learning-rate warm-up steps */
#define LOG_TOTAL	2000	/* steps of the cosine schedule */
#define LOG_LR		2e-4	/* peak learning rate */

/* A deterministic noise in [-1, 1) of (seed, step, salt). */
static double
log_noise(const struct fixture_opts *o, uint64_t s, uint64_t salt)
{
	uint64_t x = o->seed * 0x9e3779b97f4a7c15ull ^ s * 0xbf58476d1ce4e5b9ull
	    ^ salt;

	return 2 * unit(splitmix64(&x)) - 1;
}

/* The learning rate at step s: linear warm-up, then cosine decay. */
static double
log_lr(uint64_t s)
{
	double t;

	if (s < LOG_WARMUP)
		return LOG_LR * (double)s / LOG_WARMUP;
	t = (double)(s < LOG_TOTAL ? s : LOG_TOTAL) - LOG_WARMUP;
	return LOG_LR * 0.5 * (1 + cos(M_PI * t / (LOG_TOTAL - LOG_WARMUP)));
}

/*
 * Appends the log_history of a run at step o->step, as the HF Trainer
 * writes it: a training log every LOG_STEPS steps (loss falling with
 * noise, learning_rate, grad_norm, epoch) and an eval every LOG_EVAL logs.
 * Values depend on (seed, step) only, so successive checkpoints' histories
 * overlap exactly, as a resumed run's do.
 */
static void
write_log_history(struct sbuf *b, const struct fixture_opts *o)
{
	uint64_t	s, first = LOG_STEPS;
	double		base;
	bool		sep = false;

	if (o->step / LOG_STEPS > LOG_MAX)
		first = (o->step / LOG_STEPS - LOG_MAX + 1) * LOG_STEPS;
	sbuf_add(b, "[");
	for (s = first; s <= o->step; s += LOG_STEPS) {
		base = 0.6 + 2.4 * exp(-(double)s / 400);
		sbuf_add(b, "%s\n    {\n      \"epoch\": %.4f,\n      "
		    "\"grad_norm\": %.6f,\n      \"learning_rate\": %.6e,\n"
		    "      \"loss\": %.4f,\n      \"step\": %" PRIu64
		    "\n    }", sep ? "," : "", (double)s / 1000,
		    0.8 + 1.5 * exp(-(double)s / 250) +
		    0.15 * log_noise(o, s, 2), log_lr(s),
		    base + 0.08 * log_noise(o, s, 1), s);
		sep = true;
		if (s % (LOG_STEPS * LOG_EVAL) == 0)
			sbuf_add(b, ",\n    {\n      \"epoch\": %.4f,\n      "
			    "\"eval_loss\": %.4f,\n      \"eval_runtime\": "
			    "%.3f,\n      \"eval_samples_per_second\": %.2f,\n"
			    "      \"step\": %" PRIu64 "\n    }",
			    (double)s / 1000, base + 0.05 +
			    0.02 * log_noise(o, s, 3),
			    1.2 + 0.1 * log_noise(o, s, 4),
			    120 + 5 * log_noise(o, s, 5), s);
	}
	sbuf_add(b, "%s]", sep ? "\n  " : "");
}

/* Writes trainer_state.json (the completion marker: last). */
static enum spd_err
write_trainer_state(const char *dir, const struct fixture_opts *o,
    struct spd_errbuf *eb)
{
	struct sbuf	b = { 0 };
	enum spd_err	rc;

	sbuf_add(&b, "{\n  \"best_metric\": null,\n  \"epoch\": %.4f,\n"
	    "  \"global_step\": %" PRIu64 ",\n  \"is_world_process_zero\": "
	    "true,\n  \"logging_steps\": %d,\n  \"log_history\": ",
	    (double)o->step / 1000, o->step, LOG_STEPS);
	write_log_history(&b, o);
	sbuf_add(&b, "\n}\n");
	rc = write_text(dir, "trainer_state.json", &b, eb);
	free(b.p);
	return rc;
}

/* Writes a whole checkpoint directory; see fixture.h. */
enum spd_err
fixture_write_checkpoint(const char *dir, const struct fixture_opts *o,
    struct spd_errbuf *eb)
{
	struct fixture_entry	*e = NULL;
	struct gen		 g;
	size_t			 n = 0;
	unsigned		 k = o->shards > 1 ? o->shards : 1;
	enum spd_err		 rc;

	if ((rc = fixture_plan(o, &e, &n, eb)) != SPD_OK)
		return rc;
	gen_init(&g, o);
	if ((rc = mkdir_p(dir, eb)) != SPD_OK)
		goto out;
	if (o->config && (rc = write_config(dir, o, eb)) != SPD_OK)
		goto out;
	for (unsigned s = 0; s < k; s++)
		if ((rc = write_shard(dir, o, e, n, s, k, &g, eb)) != SPD_OK)
			goto out;
	if (k > 1 && (rc = write_index(dir, o, e, n, k, eb)) != SPD_OK)
		goto out;
	if (o->trainer_state)
		rc = write_trainer_state(dir, o, eb);
out:
	gen_reset(&g);
	free(e);
	return rc;
}

/* --- scratch directories ----------------------------------------------- */

/* Creates a fresh scratch directory; see fixture.h. */
enum spd_err
fixture_tmpdir(const char *tag, char *buf, size_t len, struct spd_errbuf *eb)
{
	const char	*base = getenv("TMPDIR");
	int		 n;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	n = snprintf(buf, len, "%s/spectrumd-%s.XXXXXX", base, tag);
	if (n < 0 || (size_t)n >= len)
		return spd_fail(eb, SPD_EINVAL, "%s: path too long", base);
	if (mkdtemp(buf) == NULL)
		return spd_fail(eb, SPD_EIO, "mkdtemp %s: %s", buf,
		    strerror(errno));
	return SPD_OK;
}

/* Removes one entry met by nftw (children first). */
static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Removes a directory tree; see fixture.h. */
int
fixture_rmtree(const char *path)
{
	if (path == NULL || *path == '\0' || strcmp(path, "/") == 0) {
		errno = EINVAL;
		return -1;
	}
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- planted spectra --------------------------------------------------- */

static const char *const class_names[FC_COUNT] = {
	"embed", "heavy", "lowrank", "null", "cluster"
};

/* The name of class c; see fixture.h. */
const char *
fixture_class_name(enum fixture_class c)
{
	return (unsigned)c < FC_COUNT ? class_names[c] : NULL;
}

/* Parses a class name; see fixture.h. */
bool
fixture_class_parse(const char *name, enum fixture_class *out)
{
	for (unsigned i = 0; i < FC_COUNT; i++)
		if (strcmp(name, class_names[i]) == 0) {
			*out = (enum fixture_class)i;
			return true;
		}
	return false;
}

/* Returns a standard normal draw (Box-Muller). */
static double
gauss(struct rng *r)
{
	double u1 = unit(rng_next(r)), u2 = unit(rng_next(r));

	return sqrt(-2 * log(1 - u1)) * cos(2 * M_PI * u2);
}

/* Orders doubles descending, for qsort. */
static int
cmp_desc(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x < y) - (x > y);
}

/* τ of DESIGN.md §1 of the k descending values s of a rows × cols matrix. */
static double
planted_tau(const double *s, size_t k, size_t rows, size_t cols)
{
	double	q[2], pos, f;
	size_t	i, lo, hi;

	for (i = 0; i < 2; i++) {
		pos = (i == 0 ? 0.25 : 0.75) * (double)(k - 1);
		f = floor(pos);
		lo = (size_t)f;
		hi = lo + 1 < k ? lo + 1 : lo;
		q[i] = s[k - 1 - lo] + (pos - f) * (s[k - 1 - hi] -
		    s[k - 1 - lo]);
	}
	return (q[1] - q[0]) / 1.349 * (1 + sqrt((double)k /
	    (double)(rows > cols ? rows : cols)));
}

/* Planted singular values of a class; see fixture.h. */
void
fixture_spectrum(enum fixture_class c, size_t rows, size_t cols,
    double alpha, uint64_t seed, double *s)
{
	struct rng	r;
	size_t		k = rows < cols ? rows : cols, i, j, m, nc, it;
	double		tau;

	rng_seed(&r, seed ^ 0x5eed5eed5eedULL);
	switch (c) {
	case FC_EMBED:
		/* 8 spikes 26.3 → 17, bulk 8.5·e^{0.18 z}, m lows ≈ 1.67. */
		m = k / 128 > 2 ? k / 128 : 2;
		for (i = 0; i < k; i++) {
			if (i < 8 && i + m < k)
				s[i] = 26.3 * exp(-(double)i / 7 *
				    log(26.3 / 17));
			else if (i + m < k)
				s[i] = 8.5 * exp(0.18 * gauss(&r));
			else
				s[i] = 1.67 * (1 + 0.07 * (double)(k - 1 - i) /
				    (double)m);
		}
		break;
	case FC_HEAVY:
		/* The quantiles of a Pareto ESD, density ∝ λ^-α, λ ≥ 1. */
		for (i = 0; i < k; i++)
			s[i] = sqrt(pow((double)k / ((double)i + 0.5),
			    1 / (alpha - 1)));
		break;
	case FC_LOWRANK:
		m = k / 16 > 1 ? k / 16 : 1;
		for (i = 0; i < k; i++)
			s[i] = i < m ? 3 + 10 * (double)(m - i) / (double)m :
			    0.2 + 0.8 * unit(rng_next(&r));
		break;
	case FC_NULL:
		for (i = 0; i < k; i++)
			s[i] = i < k - k / 3 ? exp(gauss(&r)) : 0;
		break;
	case FC_CLUSTER:
	default:
		for (i = 0; i < k; i++)
			s[i] = exp(0.8 * gauss(&r));
		nc = k / 8 > 1 ? k / 8 : 1;
		/* Move nc values next to τ; τ moves with them: iterate. */
		for (it = 0; it < 30; it++) {
			qsort(s, k, sizeof *s, cmp_desc);
			tau = planted_tau(s, k, rows, cols);
			/* The nc values nearest τ (by rank). */
			for (j = 0; j < k && s[j] > tau; j++)
				;
			j = j > nc / 2 ? j - nc / 2 : 0;
			if (j + nc > k)
				j = k - nc;
			for (i = 0; i < nc; i++)
				s[j + i] = tau * (1 + (i % 2 ? -1 : 1) *
				    pow(10, -4 + 2 * (double)i / (double)nc));
		}
		break;
	}
	qsort(s, k, sizeof *s, cmp_desc);
}

/* Applies k random Householder reflectors to Q = [I; 0] (n × k, row-major). */
static enum spd_err
planted_basis(size_t n, size_t k, struct rng *r, double *q,
    struct spd_errbuf *eb)
{
	double	*v = malloc(n * sizeof *v), *w = malloc(k * sizeof *w), nv;
	size_t	 i, j, t;

	if (v == NULL || w == NULL) {
		free(v);
		free(w);
		return spd_fail(eb, SPD_ENOMEM, "fixture: out of memory");
	}
	memset(q, 0, n * k * sizeof *q);
	for (i = 0; i < k; i++)
		q[i * k + i] = 1;
	for (t = 0; t < k; t++) {
		nv = 0;
		for (i = 0; i < n; i++) {
			v[i] = gauss(r);
			nv += v[i] * v[i];
		}
		nv = sqrt(nv);
		for (i = 0; i < n; i++)
			v[i] /= nv;
		/* Q -= 2 v (vᵀQ). */
		memset(w, 0, k * sizeof *w);
		for (i = 0; i < n; i++)
			for (j = 0; j < k; j++)
				w[j] += v[i] * q[i * k + j];
		for (i = 0; i < n; i++)
			for (j = 0; j < k; j++)
				q[i * k + j] -= 2 * v[i] * w[j];
	}
	free(v);
	free(w);
	return SPD_OK;
}

/* W = U·diag(s)·Vᵀ with random orthonormal U, V; see fixture.h. */
enum spd_err
fixture_planted(size_t rows, size_t cols, const double *s, uint64_t seed,
    float *out, struct spd_errbuf *eb)
{
	struct rng	 r;
	size_t		 k = rows < cols ? rows : cols, i, j, t;
	double		*u, *v, *us, acc;
	enum spd_err	 rc;

	u = malloc(rows * k * sizeof *u);
	v = malloc(cols * k * sizeof *v);
	us = malloc(k * sizeof *us);
	if (u == NULL || v == NULL || us == NULL) {
		rc = spd_fail(eb, SPD_ENOMEM, "fixture: out of memory");
		goto out;
	}
	rng_seed(&r, seed);
	rc = planted_basis(rows, k, &r, u, eb);
	if (rc == SPD_OK)
		rc = planted_basis(cols, k, &r, v, eb);
	if (rc != SPD_OK)
		goto out;
	for (i = 0; i < rows; i++) {
		for (t = 0; t < k; t++)
			us[t] = u[i * k + t] * s[t];
		for (j = 0; j < cols; j++) {
			acc = 0;
			for (t = 0; t < k; t++)
				acc += us[t] * v[j * k + t];
			out[i * cols + j] = (float)acc;
		}
	}
out:
	free(u);
	free(v);
	free(us);
	return rc;
}
