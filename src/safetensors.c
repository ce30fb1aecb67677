/*
 * safetensors.c: the .safetensors reader. safetensors_parse_header() is a
 * pure validator of the JSON header (unit-tested and fuzzed on its own);
 * safetensors_open() adds the I/O: the 8-byte length, the header read, the
 * size check and a read-only mapping of the file. Nothing here trusts the
 * file: every length and offset is bounded and overflow-checked before use.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "spectrumd/safetensors.h"

#define META_KEY	"__metadata__"
#define MAX_EXACT_INT	9007199254740992.0	/* 2^53: doubles exact below */
#define MAX_DEPTH	3	/* root object → entry object → shape array */

struct st_file {
	char			*path;
	struct st_header	*h;
	unsigned char		*map;		/* the whole file */
	size_t			 maplen;
	size_t			 data_off;	/* 8 + N */
	size_t			 pagesz;
};

/* Formats shape as "[11008,4096]" into buf (always NUL-terminated). */
void
safetensors_shape_str(const struct st_tensor *t, char *buf, size_t size)
{
	size_t	used = 0;
	int	n;

	n = snprintf(buf, size, "[");
	for (unsigned d = 0; d < t->ndim && n >= 0; d++) {
		used += (size_t)n;
		if (used >= size)
			return;
		n = snprintf(buf + used, size - used, "%s%" PRIu64,
		    d ? "," : "", t->shape[d]);
	}
	if (n >= 0 && (used += (size_t)n) < size)
		snprintf(buf + used, size - used, "]");
}

/* Returns the length of the valid UTF-8 sequence at s (≤ n bytes), 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned char	c = s[0];
	size_t		len, i;
	uint32_t	cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/*
 * Checks the raw header bytes before cJSON sees them: valid UTF-8, no
 * control bytes but JSON whitespace, nesting no deeper than a header can be
 * and no array longer than ST_MAX_DIMS. The last two bound the parse tree
 * of a hostile header (a flat "[0,0,0,…]" would otherwise cost 64 bytes of
 * tree per 2 bytes of input). Messages name the top-level key (raw, as
 * written) the offending bytes belong to.
 */
static enum spd_err
prescan(const unsigned char *s, size_t len, struct spd_errbuf *eb)
{
	unsigned	depth = 0, items[MAX_DEPTH + 1] = { 0 };
	bool		instr = false, esc = false, isarr[MAX_DEPTH + 1] = { 0 };
	size_t		i = 0, n, kbeg = 0, klen = 0;

	while (i < len) {
		unsigned char c = s[i];

		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			return spd_fail(eb, SPD_EFORMAT, "header has control "
			    "byte 0x%02x at offset %zu", c, i);
		if ((n = utf8_len(s + i, len - i)) == 0)
			return spd_fail(eb, SPD_EFORMAT, "header is not valid "
			    "UTF-8 at offset %zu", i);
		i += n;
		if (instr) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"') {
				instr = false;
				if (depth == 1)		/* a key (or value) */
					klen = i - 1 - kbeg;
			}
			continue;
		}
		switch (c) {
		case '"':
			instr = true;
			if (depth == 1)
				kbeg = i;
			break;
		case '{':
		case '[':
			if (depth == 0 && c == '[')	/* before cJSON builds it */
				return spd_fail(eb, SPD_EFORMAT, "header is an "
				    "array, not a JSON object");
			if (depth == MAX_DEPTH)
				return spd_fail(eb, SPD_EFORMAT, "tensor \"%.*s\": "
				    "nests deeper than a header entry can, at "
				    "offset %zu", (int)(klen < SPD_NAME_SHOWN ?
				    klen : SPD_NAME_SHOWN), (const char *)s + kbeg,
				    i - 1);
			depth++;
			isarr[depth] = c == '[';
			items[depth] = 0;
			break;
		case '}':
		case ']':
			if (depth > 0)
				depth--;
			break;
		case ',':
			if (depth > 1 && isarr[depth] &&
			    ++items[depth] >= ST_MAX_DIMS)
				return spd_fail(eb, SPD_EFORMAT, "tensor \"%.*s\": "
				    "an array has more than %d elements (a shape "
				    "has at most %d dimensions), at offset %zu",
				    (int)(klen < SPD_NAME_SHOWN ? klen :
				    SPD_NAME_SHOWN),
				    (const char *)s + kbeg, ST_MAX_DIMS,
				    ST_MAX_DIMS, i - 1);
			break;
		default:
			break;
		}
	}
	return SPD_OK;
}

/* Names the JSON type of item for messages. */
static const char *
json_type(const cJSON *item)
{
	if (cJSON_IsObject(item))
		return "an object";
	if (cJSON_IsArray(item))
		return "an array";
	if (cJSON_IsString(item))
		return "a string";
	if (cJSON_IsNumber(item))
		return "a number";
	if (cJSON_IsBool(item))
		return "a boolean";
	if (cJSON_IsNull(item))
		return "null";
	return "invalid";
}

/* Reads a JSON number that must be an integer in [0, 2^53]. */
static bool
json_u64(const cJSON *item, uint64_t *out)
{
	double d;

	if (!cJSON_IsNumber(item))
		return false;
	d = item->valuedouble;
	if (!(d >= 0 && d <= MAX_EXACT_INT) || (double)(uint64_t)d != d)
		return false;
	*out = (uint64_t)d;
	return true;
}

/* Parses the "shape" array of tensor t. */
static enum spd_err
parse_shape(const cJSON *arr, struct st_tensor *t, const char *nm,
    struct spd_errbuf *eb)
{
	const cJSON	*it;
	unsigned	 d = 0;

	if (!cJSON_IsArray(arr))
		return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": shape is %s, "
		    "not an array", nm, json_type(arr));
	cJSON_ArrayForEach(it, arr) {
		if (d == ST_MAX_DIMS)
			return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": shape "
			    "has more than %d dimensions", nm, ST_MAX_DIMS);
		if (!json_u64(it, &t->shape[d])) {
			if (cJSON_IsNumber(it))
				return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": "
				    "shape[%u] is %.17g, not a non-negative "
				    "integer <= 2^53", nm, d, it->valuedouble);
			return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": "
			    "shape[%u] is %s, not a non-negative integer", nm,
			    d, json_type(it));
		}
		d++;
	}
	t->ndim = d;
	return SPD_OK;
}

/* Parses the "data_offsets" pair of tensor t. */
static enum spd_err
parse_offsets(const cJSON *arr, struct st_tensor *t, const char *nm,
    struct spd_errbuf *eb)
{
	const cJSON *b, *e;

	if (!cJSON_IsArray(arr))
		return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": data_offsets "
		    "is %s, not an array", nm, json_type(arr));
	b = arr->child;
	e = b != NULL ? b->next : NULL;
	if (b == NULL || e == NULL || e->next != NULL)
		return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": data_offsets "
		    "must hold exactly two integers", nm);
	if (!json_u64(b, &t->begin) || !json_u64(e, &t->end))
		return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": data_offsets "
		    "must be non-negative integers <= 2^53", nm);
	if (t->begin > t->end)
		return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": data_offsets "
		    "[%" PRIu64 ",%" PRIu64 "] end before they begin", nm,
		    t->begin, t->end);
	return SPD_OK;
}

/* Checks that dtype × shape is exactly end − begin bytes. */
static enum spd_err
check_size(const struct st_tensor *t, const char *nm, struct spd_errbuf *eb)
{
	char		sh[ST_MAX_DIMS * 21 + 3];
	uint64_t	nel = 1, bits;
	unsigned	d;
	bool		zero = false;

	for (d = 0; d < t->ndim; d++)
		zero |= t->shape[d] == 0;
	safetensors_shape_str(t, sh, sizeof sh);
	if (zero)
		nel = 0;
	for (d = 0; d < t->ndim && !zero; d++) {
		if (__builtin_mul_overflow(nel, t->shape[d], &nel))
			goto overflow;
	}
	if (__builtin_mul_overflow(nel, (uint64_t)dtype_bits(t->dtype), &bits))
		goto overflow;
	if (bits % 8 != 0)
		return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": shape %s x %s "
		    "is %" PRIu64 " bits, not a whole number of bytes", nm, sh,
		    dtype_name(t->dtype), bits);
	if (bits / 8 != t->end - t->begin)
		return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": shape %s x %s "
		    "is %" PRIu64 " bytes but data_offsets span %" PRIu64, nm,
		    sh, dtype_name(t->dtype), bits / 8, t->end - t->begin);
	return SPD_OK;
overflow:
	return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": shape %s x %s "
	    "overflows 64 bits", nm, sh, dtype_name(t->dtype));
}

/* Fills t from one header entry {"dtype", "shape", "data_offsets"}. */
static enum spd_err
parse_entry(const cJSON *ent, struct st_tensor *t, struct spd_errbuf *eb)
{
	const cJSON	*it, *dt = NULL, *shape = NULL, *offs = NULL;
	const cJSON	**slot;
	char		 nm[SPD_NAME_SHOWN + 8];
	enum spd_err	 rc;

	spd_shown(t->name, nm, sizeof nm);
	if (!cJSON_IsObject(ent))
		return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": entry is %s, "
		    "not an object", nm, json_type(ent));
	cJSON_ArrayForEach(it, ent) {
		if (strcmp(it->string, "dtype") == 0)
			slot = &dt;
		else if (strcmp(it->string, "shape") == 0)
			slot = &shape;
		else if (strcmp(it->string, "data_offsets") == 0)
			slot = &offs;
		else
			continue;	/* unknown fields are ignored */
		if (*slot != NULL)
			return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": field "
			    "\"%s\" appears twice", nm, it->string);
		*slot = it;
	}
	if (dt == NULL || shape == NULL || offs == NULL)
		return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": missing "
		    "field \"%s\"", nm, dt == NULL ? "dtype" :
		    shape == NULL ? "shape" : "data_offsets");
	if (!cJSON_IsString(dt))
		return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": dtype is %s, "
		    "not a string", nm, json_type(dt));
	if (dtype_parse(dt->valuestring, &t->dtype) != SPD_OK) {
		char d[40];

		return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": unknown "
		    "dtype \"%s\"", nm, spd_shown(dt->valuestring, d, sizeof d));
	}
	if ((rc = parse_shape(shape, t, nm, eb)) != SPD_OK ||
	    (rc = parse_offsets(offs, t, nm, eb)) != SPD_OK)
		return rc;
	return check_size(t, nm, eb);
}

/* Copies the __metadata__ object (strings only) into h. */
static enum spd_err
parse_meta(const cJSON *obj, struct st_header *h, struct spd_errbuf *eb)
{
	const cJSON	*it;
	size_t		 n = 0, i;
	char		 nm[SPD_NAME_SHOWN + 8];

	if (!cJSON_IsObject(obj))
		return spd_fail(eb, SPD_EFORMAT, "__metadata__ is %s, not an "
		    "object of strings", json_type(obj));
	cJSON_ArrayForEach(it, obj)
		n++;
	if (n == 0)
		return SPD_OK;
	h->meta_keys = calloc(n, sizeof *h->meta_keys);
	h->meta_values = calloc(n, sizeof *h->meta_values);
	if (h->meta_keys == NULL || h->meta_values == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, obj) {
		if (!cJSON_IsString(it))
			return spd_fail(eb, SPD_EFORMAT, "__metadata__ key "
			    "\"%s\" is %s, not a string",
			    spd_shown(it->string, nm, sizeof nm), json_type(it));
		for (i = 0; i < h->nmeta; i++)
			if (strcmp(h->meta_keys[i], it->string) == 0)
				return spd_fail(eb, SPD_EFORMAT, "__metadata__ "
				    "key \"%s\" appears twice",
				    spd_shown(it->string, nm, sizeof nm));
		h->meta_keys[h->nmeta] = strdup(it->string);
		h->meta_values[h->nmeta] = strdup(it->valuestring);
		h->nmeta++;	/* counted first: header_free frees both */
		if (h->meta_keys[h->nmeta - 1] == NULL ||
		    h->meta_values[h->nmeta - 1] == NULL)
			return spd_fail(eb, SPD_ENOMEM, "out of memory");
	}
	return SPD_OK;
}

/* qsort: tensors by name. */
static int
cmp_name(const void *a, const void *b)
{
	const struct st_tensor *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* qsort: tensors by (begin, end), then name (unique by then). */
static int
cmp_offset(const void *a, const void *b)
{
	const struct st_tensor *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Rejects duplicate names (cJSON keeps every duplicate key as a child). */
static enum spd_err
check_unique(struct st_header *h, struct spd_errbuf *eb)
{
	const struct st_tensor	**v;
	char			  nm[SPD_NAME_SHOWN + 8];
	size_t			  i;
	enum spd_err		  rc = SPD_OK;

	if (h->ntensors < 2)
		return SPD_OK;
	if ((v = calloc(h->ntensors, sizeof *v)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	for (i = 0; i < h->ntensors; i++)
		v[i] = &h->tensors[i];
	qsort(v, h->ntensors, sizeof *v, cmp_name);
	for (i = 1; i < h->ntensors; i++) {
		if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
			rc = spd_fail(eb, SPD_EFORMAT, "tensor \"%s\" appears "
			    "twice in the header (duplicate name)",
			    spd_shown(v[i]->name, nm, sizeof nm));
			break;
		}
	}
	free(v);
	return rc;
}

/* Sorts by offset and checks the data is tiled from 0 with no hole or overlap. */
static enum spd_err
check_layout(struct st_header *h, struct spd_errbuf *eb)
{
	char		nm[SPD_NAME_SHOWN + 8], pv[SPD_NAME_SHOWN + 8];
	uint64_t	at = 0;
	size_t		i;

	if (h->ntensors > 1)
		qsort(h->tensors, h->ntensors, sizeof *h->tensors, cmp_offset);
	for (i = 0; i < h->ntensors; i++) {
		const struct st_tensor *t = &h->tensors[i];

		if (t->begin > at)
			return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": "
			    "data_offsets [%" PRIu64 ",%" PRIu64 "] leave a "
			    "hole: no tensor covers bytes [%" PRIu64 ",%" PRIu64
			    ")", spd_shown(t->name, nm, sizeof nm), t->begin,
			    t->end, at, t->begin);
		if (t->begin < at)
			return spd_fail(eb, SPD_EFORMAT, "tensor \"%s\": "
			    "data_offsets [%" PRIu64 ",%" PRIu64 "] overlap "
			    "tensor \"%s\", which ends at %" PRIu64,
			    spd_shown(t->name, nm, sizeof nm), t->begin, t->end,
			    spd_shown(h->tensors[i - 1].name, pv, sizeof pv), at);
		at = t->end;
	}
	h->data_len = at;
	return SPD_OK;
}

/* Walks the root object: metadata and tensor entries, then global checks. */
static enum spd_err
parse_root(const cJSON *root, struct st_header *h, struct spd_errbuf *eb)
{
	const cJSON	*it, *meta = NULL;
	size_t		 n = 0;
	enum spd_err	 rc;

	cJSON_ArrayForEach(it, root)
		n++;
	if (n > 0 && (h->tensors = calloc(n, sizeof *h->tensors)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, root) {
		struct st_tensor *t;

		if (strcmp(it->string, META_KEY) == 0) {
			if (meta != NULL)
				return spd_fail(eb, SPD_EFORMAT,
				    "__metadata__ appears twice");
			meta = it;
			if ((rc = parse_meta(it, h, eb)) != SPD_OK)
				return rc;
			continue;
		}
		t = &h->tensors[h->ntensors];
		if ((t->name = strdup(it->string)) == NULL)
			return spd_fail(eb, SPD_ENOMEM, "out of memory");
		h->ntensors++;
		if ((rc = parse_entry(it, t, eb)) != SPD_OK)
			return rc;
	}
	if ((rc = check_unique(h, eb)) != SPD_OK)
		return rc;
	return check_layout(h, eb);
}

/* Parses and validates a header buffer (pure). */
enum spd_err
safetensors_parse_header(const char *buf, size_t len, struct st_header **out,
    struct spd_errbuf *eb)
{
	struct st_header	*h = NULL;
	cJSON			*root = NULL;
	char			*copy = NULL;
	const char		*end = NULL;
	size_t			 i;
	enum spd_err		 rc;

	*out = NULL;
	if (len == 0)
		return spd_fail(eb, SPD_EFORMAT, "header is empty");
	if (len > ST_MAX_HEADER)
		return spd_fail(eb, SPD_EFORMAT, "header is %zu bytes, over "
		    "the %u-byte limit", len, ST_MAX_HEADER);
	if ((rc = prescan((const unsigned char *)buf, len, eb)) != SPD_OK)
		return rc;
	/* A NUL-terminated copy: cJSON never has to honour len alone. */
	if ((copy = malloc(len + 1)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	memcpy(copy, buf, len);
	copy[len] = '\0';
	root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
	if (root == NULL) {
		rc = spd_fail(eb, SPD_EFORMAT, "header is not valid JSON "
		    "(error at offset %td)", end != NULL ? end - copy : 0);
		goto out;
	}
	for (i = (size_t)(end - copy); i < len; i++) {
		if (strchr(" \t\r\n", copy[i]) == NULL) {
			rc = spd_fail(eb, SPD_EFORMAT, "header has data after "
			    "the JSON value at offset %zu (only space padding "
			    "may follow)", i);
			goto out;
		}
	}
	if (!cJSON_IsObject(root)) {
		rc = spd_fail(eb, SPD_EFORMAT, "header is %s, not a JSON "
		    "object", json_type(root));
		goto out;
	}
	if ((h = calloc(1, sizeof *h)) == NULL) {
		rc = spd_fail(eb, SPD_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = parse_root(root, h, eb)) != SPD_OK)
		goto out;
	*out = h;
	h = NULL;
out:
	safetensors_header_free(h);
	cJSON_Delete(root);
	free(copy);
	return rc;
}

/* Frees a parsed header (NULL-safe). */
void
safetensors_header_free(struct st_header *h)
{
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < h->ntensors; i++)
		free(h->tensors[i].name);
	free(h->tensors);
	for (i = 0; i < h->nmeta; i++) {
		free(h->meta_keys[i]);
		free(h->meta_values[i]);
	}
	free(h->meta_keys);
	free(h->meta_values);
	free(h);
}

/* Returns the metadata value for key, or NULL. */
const char *
safetensors_header_meta(const struct st_header *h, const char *key)
{
	size_t i;

	if (h == NULL || key == NULL)
		return NULL;
	for (i = 0; i < h->nmeta; i++)
		if (strcmp(h->meta_keys[i], key) == 0)
			return h->meta_values[i];
	return NULL;
}

/* Prefixes the message already in eb with path. */
static enum spd_err
prefix_path(struct spd_errbuf *eb, enum spd_err rc, const char *path)
{
	char tmp[sizeof eb->msg];

	if (eb == NULL)
		return rc;
	memcpy(tmp, eb->msg, sizeof tmp);
	tmp[sizeof tmp - 1] = '\0';
	return spd_fail(eb, rc, "%s: %s", path, tmp);
}

/* Reads exactly n bytes at off; SPD_EFORMAT on a short file. */
static enum spd_err
read_at(int fd, void *buf, size_t n, off_t off, const char *path,
    struct spd_errbuf *eb)
{
	unsigned char	*p = buf;
	ssize_t		 r;

	while (n > 0) {
		r = pread(fd, p, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return spd_fail(eb, SPD_EIO, "%s: read: %s", path,
			    strerror(errno));
		if (r == 0)
			return spd_fail(eb, SPD_EFORMAT, "%s: file shrank "
			    "while being read", path);
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return SPD_OK;
}

/*
 * Opens path and reads and parses its header. Returns the descriptor, the
 * file size, 8 + N and the header.
 */
static enum spd_err
open_header(const char *path, int *fdp, uint64_t *fsize, size_t *data_off,
    struct st_header **hp, struct spd_errbuf *eb)
{
	struct stat	 st;
	unsigned char	 lenbuf[8];
	char		*hbuf = NULL;
	uint64_t	 n = 0;
	int		 fd, i;
	enum spd_err	 rc;

	*fdp = -1;
	*hp = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return spd_fail(eb, SPD_ENOTFOUND, "%s: no such file",
			    path);
		return spd_fail(eb, SPD_EIO, "%s: open: %s", path,
		    strerror(errno));
	}
	if (fstat(fd, &st) != 0) {
		rc = spd_fail(eb, SPD_EIO, "%s: fstat: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = spd_fail(eb, SPD_EFORMAT, "%s: not a regular file", path);
		goto fail;
	}
	*fsize = (uint64_t)st.st_size;
	if (*fsize == 0) {
		rc = spd_fail(eb, SPD_EFORMAT, "%s: empty file (0 bytes)",
		    path);
		goto fail;
	}
	if (*fsize < 8) {
		rc = spd_fail(eb, SPD_EFORMAT, "%s: file is %" PRIu64 " bytes, "
		    "too short for the 8-byte header length", path, *fsize);
		goto fail;
	}
	if ((rc = read_at(fd, lenbuf, 8, 0, path, eb)) != SPD_OK)
		goto fail;
	for (i = 7; i >= 0; i--)
		n = n << 8 | lenbuf[i];
	if (n > ST_MAX_HEADER) {
		rc = spd_fail(eb, SPD_EFORMAT, "%s: header length %" PRIu64
		    " exceeds the %u-byte limit", path, n, ST_MAX_HEADER);
		goto fail;
	}
	if (n > *fsize - 8) {
		rc = spd_fail(eb, SPD_EFORMAT, "%s: header length %" PRIu64
		    " runs past the end of the file (%" PRIu64 " bytes)", path,
		    n, *fsize);
		goto fail;
	}
	if ((hbuf = malloc(n > 0 ? n : 1)) == NULL) {
		rc = spd_fail(eb, SPD_ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	if ((rc = read_at(fd, hbuf, n, 8, path, eb)) != SPD_OK)
		goto fail;
	if ((rc = safetensors_parse_header(hbuf, n, hp, eb)) != SPD_OK) {
		rc = prefix_path(eb, rc, path);
		goto fail;
	}
	free(hbuf);
	*data_off = 8 + (size_t)n;
	*fdp = fd;
	return SPD_OK;
fail:
	free(hbuf);
	close(fd);
	return rc;
}

/* Returns 8 + N + data_len, or false if it overflows. */
static bool
implied_size(size_t data_off, const struct st_header *h, uint64_t *out)
{
	return !__builtin_add_overflow((uint64_t)data_off, h->data_len, out);
}

/* Opens, validates and maps a .safetensors file. */
enum spd_err
safetensors_open(const char *path, struct st_file **out,
    struct spd_errbuf *eb)
{
	struct st_file	*f = NULL;
	struct st_header *h = NULL;
	struct stat	 st;
	uint64_t	 fsize, want;
	size_t		 data_off;
	void		*map;
	int		 fd = -1;
	enum spd_err	 rc;

	*out = NULL;
	if ((rc = open_header(path, &fd, &fsize, &data_off, &h, eb)) != SPD_OK)
		return rc;
	if (!implied_size(data_off, h, &want)) {
		rc = spd_fail(eb, SPD_EFORMAT, "%s: truncated: header implies "
		    "a size over 2^64 bytes", path);
		goto out;
	}
	if (want != fsize) {
		if (want > fsize)
			rc = spd_fail(eb, SPD_EFORMAT, "%s: truncated: file is "
			    "%" PRIu64 " bytes, header implies %" PRIu64, path,
			    fsize, want);
		else
			rc = spd_fail(eb, SPD_EFORMAT, "%s: trailing data: file "
			    "is %" PRIu64 " bytes, header implies %" PRIu64,
			    path, fsize, want);
		goto out;
	}
	if (fsize > SIZE_MAX) {
		rc = spd_fail(eb, SPD_EUNSUPPORTED, "%s: too large to map",
		    path);
		goto out;
	}
	map = mmap(NULL, (size_t)fsize, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		rc = spd_fail(eb, SPD_EIO, "%s: mmap: %s", path,
		    strerror(errno));
		goto out;
	}
	/* A file cut short after the check would fault on access: recheck. */
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != fsize) {
		munmap(map, (size_t)fsize);
		rc = spd_fail(eb, SPD_EIO, "%s: file changed size while being "
		    "opened", path);
		goto out;
	}
	if ((f = calloc(1, sizeof *f)) == NULL ||
	    (f->path = strdup(path)) == NULL) {
		munmap(map, (size_t)fsize);
		free(f);
		rc = spd_fail(eb, SPD_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	f->h = h;
	h = NULL;
	f->map = map;
	f->maplen = (size_t)fsize;
	f->data_off = data_off;
	f->pagesz = (size_t)sysconf(_SC_PAGESIZE);
	*out = f;
out:
	safetensors_header_free(h);
	close(fd);
	return rc;
}

/* Unmaps and frees f (NULL-safe). */
void
safetensors_close(struct st_file *f)
{
	if (f == NULL)
		return;
	munmap(f->map, f->maplen);
	safetensors_header_free(f->h);
	free(f->path);
	free(f);
}

/* Reads only the header of path and returns the file size it implies. */
enum spd_err
safetensors_expected_size(const char *path, uint64_t *size,
    struct spd_errbuf *eb)
{
	struct st_header	*h;
	uint64_t		 fsize;
	size_t			 data_off;
	int			 fd;
	enum spd_err		 rc;

	if ((rc = open_header(path, &fd, &fsize, &data_off, &h, eb)) != SPD_OK)
		return rc;
	if (!implied_size(data_off, h, size))
		rc = spd_fail(eb, SPD_EFORMAT, "%s: header implies a size "
		    "over 2^64 bytes", path);
	safetensors_header_free(h);
	close(fd);
	return rc;
}

/* Returns the parsed header of f. */
const struct st_header *
safetensors_header(const struct st_file *f)
{
	return f->h;
}

/* Returns the path f was opened with. */
const char *
safetensors_path(const struct st_file *f)
{
	return f->path;
}

/* Returns the start of tensor i's bytes, or NULL when i is out of range. */
const void *
safetensors_data(const struct st_file *f, size_t i)
{
	if (f == NULL || i >= f->h->ntensors)
		return NULL;
	return f->map + f->data_off + f->h->tensors[i].begin;
}

/*
 * Applies advice to the pages of tensor i: the covering pages (outward) to
 * prefetch, only the pages wholly inside it (inward) to release, so that a
 * neighbour in flight keeps its shared edge page.
 */
static void
advise(const struct st_file *f, size_t i, int advice, bool outward)
{
	const struct st_tensor	*t;
	size_t			 a, b, mask;

	if (f == NULL || i >= f->h->ntensors)
		return;
	t = &f->h->tensors[i];
	mask = f->pagesz - 1;
	a = f->data_off + (size_t)t->begin;
	b = f->data_off + (size_t)t->end;
	if (outward) {
		a &= ~mask;
		b = (b + mask) & ~mask;
	} else {
		a = (a + mask) & ~mask;
		b &= ~mask;
	}
	if (b <= a)
		return;
	(void)madvise(f->map + a, b - a, advice);
}

/* Hints that tensor i will be read soon. */
void
safetensors_prefetch(const struct st_file *f, size_t i)
{
	advise(f, i, MADV_WILLNEED, true);
}

/* Hints that tensor i is done, so its pages may be dropped. */
void
safetensors_release(const struct st_file *f, size_t i)
{
	advise(f, i, MADV_DONTNEED, false);
}
