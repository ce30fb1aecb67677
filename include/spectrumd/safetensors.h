/*
 * safetensors.h: one .safetensors file: a pure header parser and an mmap'd
 * reader built on it. Every rejection names the file (when there is one),
 * the tensor (when there is one) and the rule broken.
 */
#ifndef SPECTRUMD_SAFETENSORS_H
#define SPECTRUMD_SAFETENSORS_H

#include <stdint.h>
#include <stddef.h>

#include "spectrumd/common.h"
#include "spectrumd/tensor.h"

#define ST_MAX_HEADER	100000000u	/* the reference reader's limit */
#define ST_MAX_DIMS	8

/* One tensor entry of a header. Offsets are relative to the data buffer. */
struct st_tensor {
	char		*name;
	enum dtype	 dtype;
	unsigned	 ndim;
	uint64_t	 shape[ST_MAX_DIMS];
	uint64_t	 begin, end;	/* data_offsets */
};

/* A parsed, validated header. Tensors are sorted by begin offset. */
struct st_header {
	struct st_tensor	*tensors;
	size_t			 ntensors;
	char			**meta_keys;	/* __metadata__, string → string */
	char			**meta_values;
	size_t			 nmeta;
	uint64_t		 data_len;	/* end of the last tensor */
};

/*
 * Parses and validates the JSON header of length len (not NUL-terminated;
 * trailing spaces allowed). Checks: a JSON object; every entry has a known
 * dtype, a shape of non-negative integers (≤ ST_MAX_DIMS) and two offsets;
 * shape × element size == end − begin without overflow; offsets contiguous
 * from 0 with no holes or overlaps; no duplicate names; __metadata__ a
 * string map. Returns SPD_OK and *out (free with safetensors_header_free),
 * SPD_EFORMAT (eb says which tensor and rule) or SPD_ENOMEM. Pure.
 */
enum spd_err	 safetensors_parse_header(const char *buf, size_t len,
		    struct st_header **out, struct spd_errbuf *eb);
void		 safetensors_header_free(struct st_header *h);	/* NULL-safe */

/* Formats t's shape as "[11008,4096]" into buf (always NUL-terminated). */
void		 safetensors_shape_str(const struct st_tensor *t, char *buf,
		    size_t size);

/* Returns the metadata value for key, or NULL. Borrowed from h. */
const char	*safetensors_header_meta(const struct st_header *h,
		    const char *key);

struct st_file;

/*
 * Opens path, checks 8-byte length ≤ ST_MAX_HEADER and within the file,
 * parses the header and checks 8 + N + data_len == file size, then maps the
 * file read-only. Returns SPD_OK and *out, SPD_ENOTFOUND (no such file),
 * SPD_EIO, SPD_EFORMAT or SPD_ENOMEM; eb names the file. The caller closes
 * *out with safetensors_close(). Handles are not shared between threads
 * for writing; reading tensors from several threads is safe.
 */
enum spd_err	 safetensors_open(const char *path, struct st_file **out,
		    struct spd_errbuf *eb);
void		 safetensors_close(struct st_file *f);	/* NULL-safe */

/*
 * Reads only the header of path and returns in *size the file size it
 * implies (8 + N + data_len), for completeness checks. Same errors as open.
 */
enum spd_err	 safetensors_expected_size(const char *path, uint64_t *size,
		    struct spd_errbuf *eb);

/* Borrowed views, valid until safetensors_close(). */
const struct st_header	*safetensors_header(const struct st_file *f);
const char		*safetensors_path(const struct st_file *f);
/* Start of tensor i's bytes inside the mapping (end − begin bytes long). */
const void		*safetensors_data(const struct st_file *f, size_t i);

/*
 * Tells the kernel tensor i will be read soon (MADV_WILLNEED) or is done
 * (MADV_DONTNEED, so resident memory stays bounded by the tensors in flight).
 */
void		 safetensors_prefetch(const struct st_file *f, size_t i);
void		 safetensors_release(const struct st_file *f, size_t i);

#endif
