/*
 * Fuzz the safetensors header validator (safetensors_parse_header): the
 * input as a bare header, then, like safetensors_open(), as a whole file:
 * an 8-byte little-endian length N, N bytes of header, and the rest as
 * data whose size must match what the header implies. Everything parsed is
 * walked (so ASan sees any bad pointer) and freed.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/safetensors.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touches every field of h and checks the invariants the parser promises. */
static void
walk(const struct st_header *h)
{
	uint64_t	at = 0;
	size_t		i;

	for (i = 0; i < h->ntensors; i++) {
		const struct st_tensor *t = &h->tensors[i];

		if (t->begin != at || t->end < t->begin ||
		    t->ndim > ST_MAX_DIMS || dtype_bits(t->dtype) == 0 ||
		    strlen(t->name) > SIZE_MAX / 2)
			abort();	/* a header the parser should have refused */
		at = t->end;
	}
	if (at != h->data_len)
		abort();
	for (i = 0; i < h->nmeta; i++)
		if (safetensors_header_meta(h, h->meta_keys[i]) == NULL ||
		    strlen(h->meta_values[i]) > SIZE_MAX / 2)
			abort();
}

/* Parses buf[0..len) as a header; walks and frees the result. */
static int
try_header(const uint8_t *buf, size_t len, struct st_header **keep)
{
	struct spd_errbuf	 eb;
	struct st_header	*h = NULL;

	if (safetensors_parse_header((const char *)buf, len, &h, &eb) !=
	    SPD_OK) {
		if (h != NULL || memchr(eb.msg, '\0', sizeof eb.msg) == NULL)
			abort();
		return -1;
	}
	walk(h);
	if (keep != NULL)
		*keep = h;
	else
		safetensors_header_free(h);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_header	*h = NULL;
	uint64_t		 n = 0, want;
	int			 i;

	try_header(data, size, NULL);
	if (size < 8)
		return 0;
	for (i = 7; i >= 0; i--)
		n = n << 8 | data[i];
	if (n > ST_MAX_HEADER || n > size - 8)
		return 0;		/* open() refuses these before parsing */
	if (try_header(data + 8, (size_t)n, &h) != 0)
		return 0;
	/* The size rule of open(): 8 + N + data_len == file size. */
	if (!__builtin_add_overflow(8 + n, h->data_len, &want) &&
	    want == size) {
		const uint8_t *base = data + 8 + n;
		volatile uint8_t sink = 0;

		for (size_t k = 0; k < h->ntensors; k++)
			if (h->tensors[k].end > h->tensors[k].begin)
				sink ^= base[h->tensors[k].end - 1];
		(void)sink;
	}
	safetensors_header_free(h);
	return 0;
}
