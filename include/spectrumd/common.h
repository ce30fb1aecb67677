/*
 * common.h: the one error type, its explanation buffer and small helpers
 * shared by every module.
 */
#ifndef SPECTRUMD_COMMON_H
#define SPECTRUMD_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum spd_err {
	SPD_OK = 0,
	SPD_ENOMEM,		/* an allocation failed */
	SPD_EIO,		/* a system call failed (open, read, mmap, …) */
	SPD_EFORMAT,		/* input is malformed (file, header, request) */
	SPD_ENOTFOUND,		/* the thing asked for does not exist */
	SPD_EINVAL,		/* an argument is out of range */
	SPD_EUNSUPPORTED,	/* valid input we do not handle (dtype, layout) */
	SPD_ENONFINITE,		/* NaN or Inf in a matrix */
	SPD_EBUSY,		/* resource locked or temporarily unavailable */
	SPD_ENODEV,		/* no usable compute device */
	SPD_ECANCELED,		/* stopped on request */
	SPD_EINTERNAL		/* a bug or a library failure we cannot name */
};

/* Why the last call failed, in words a user can act on. */
struct spd_errbuf {
	char	msg[512];
};

/*
 * Formats the message into eb (eb may be NULL) and returns e, so that
 * `return spd_fail(eb, SPD_EFORMAT, "…", …);` reads as one statement.
 */
enum spd_err	 spd_fail(struct spd_errbuf *eb, enum spd_err e,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Returns a short constant name for e ("format error", …). */
const char	*spd_strerror(enum spd_err e);

/* Returns a malloc'ed formatted string, or NULL on allocation failure. */
char		*spd_asprintf(const char *fmt, ...)
		    __attribute__((format(printf, 1, 2)));

/* True when s ends with suffix. */
bool		 spd_ends_with(const char *s, const char *suffix);

/* True when s starts with prefix. */
bool		 spd_starts_with(const char *s, const char *prefix);

/* qsort/bsearch comparator for an array of C strings (char *), by strcmp. */
int		 spd_cmp_str(const void *a, const void *b);

/*
 * Returns malloc'ed dir + "/" + name with exactly one slash between them
 * (trailing slashes of dir dropped, "/" kept), or NULL when out of memory.
 */
char		*spd_path_join(const char *dir, const char *name);

/* FNV-1a, 64 bits: start from SPD_FNV1A_INIT, fold n bytes of p into h. */
#define SPD_FNV1A_INIT	0xcbf29ce484222325ULL
uint64_t	 spd_fnv1a(uint64_t h, const void *p, size_t n);

struct stat;

/*
 * The one bounded reader of small files (configs, JSON side files, web
 * files). Reads the whole regular file name, relative to the directory
 * descriptor dfd (AT_FDCWD: relative to the working directory, or an
 * absolute path), into *buf, NUL-terminated (the caller frees), its length
 * into *len and, when st is not NULL, its fstat into *st (filled for every
 * file that could be opened, even one refused as too large). Returns
 * SPD_OK; SPD_ENOTFOUND when it does not exist; SPD_EUNSUPPORTED when it is
 * not a regular file; SPD_EFORMAT when it holds more than max bytes;
 * SPD_EBUSY when it grew while read (still being written: the reader takes
 * at most its size at open time, plus one byte to notice growth; a file
 * that shrank is read as it now is); SPD_EIO; SPD_ENOMEM. eb (may be NULL)
 * names the file and the cause.
 */
enum spd_err	 spd_read_file(int dfd, const char *name, size_t max,
		    char **buf, size_t *len, struct stat *st,
		    struct spd_errbuf *eb);

/* Bytes of a name quoted in a message before it is cut. */
#define SPD_NAME_SHOWN	160

/*
 * Copies name into buf (size bytes, always NUL-terminated) for a message:
 * control bytes become '?', names over SPD_NAME_SHOWN bytes end in "...".
 * Returns buf.
 */
const char	*spd_shown(const char *name, char *buf, size_t size);

/*
 * Closes a stream from open_memstream() and returns its buffer (final only
 * once the stream is closed; the caller frees it), or NULL, buffer freed,
 * after any write or close failure.
 */
char		*spd_memstream_finish(FILE *fp, char **bufp);

/* True when s[0..n) is well-formed UTF-8 (RFC 3629). */
bool		 spd_utf8_valid(const char *s, size_t n);

/*
 * Returns a malloc'ed, NUL-terminated copy of s[0..n) in which every byte
 * that is not part of a well-formed UTF-8 sequence is replaced by U+FFFD,
 * or NULL on allocation failure.
 */
char		*spd_utf8_scrub(const char *s, size_t n);

/* Monotonic seconds, for timings. */
double		 spd_now(void);
/*
 * Initialises cv to time its waits on CLOCK_MONOTONIC (spd_now()'s clock),
 * so wall-clock jumps do not stretch them. 0, or pthread's error number.
 */
int		 spd_cond_init_monotonic(pthread_cond_t *cv);

#define SPD_TRAIN_NAME_MAX	64	/* bytes of a training-log metric name */

/* One number of a training log (trainer_state.json log_history). */
struct train_point {
	long long	 step;
	double		 value;
	char		 name[SPD_TRAIN_NAME_MAX + 1];
};

/*
 * True when name may name a training-log metric: 1 to SPD_TRAIN_NAME_MAX
 * bytes of [A-Za-z0-9_./-].
 */
bool		 spd_train_name_ok(const char *name);

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

#endif
