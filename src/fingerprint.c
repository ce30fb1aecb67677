/*
 * fingerprint.c: XXH3-128 of a matrix's dtype, shape and bytes, the only
 * file that includes <xxhash.h> (Debian's libxxhash). The header is hashed
 * as text ("BF16 4096x11008\n", no byte-order question) into the seed of
 * the one-shot XXH3-128 over the bytes: one pass, no streaming state.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "spectrumd/fingerprint.h"

/* Hashes the matrix; see fingerprint.h. */
void
fingerprint_matrix(enum dtype dt, uint64_t rows, uint64_t cols,
    const void *data, size_t n, unsigned char out[FINGERPRINT_LEN])
{
	XXH128_hash_t	h;
	XXH128_canonical_t c;
	char		hdr[80];
	int		len;

	len = snprintf(hdr, sizeof hdr, "%s %" PRIu64 "x%" PRIu64 "\n",
	    dtype_name(dt), rows, cols);
	if (len < 0 || (size_t)len >= sizeof hdr)
		len = 0;
	h = XXH3_128bits_withSeed(data, n, XXH3_64bits(hdr, (size_t)len));
	XXH128_canonicalFromHash(&c, h);
	memcpy(out, c.digest, FINGERPRINT_LEN);
}

/* Formats fp as hex. */
void
fingerprint_hex(const unsigned char fp[FINGERPRINT_LEN], char *buf,
    size_t len)
{
	static const char	hex[] = "0123456789abcdef";
	size_t			i;

	if (len == 0)
		return;
	for (i = 0; i < FINGERPRINT_LEN && 2 * i + 2 < len; i++) {
		buf[2 * i] = hex[fp[i] >> 4];
		buf[2 * i + 1] = hex[fp[i] & 15];
	}
	buf[2 * i] = '\0';
}
