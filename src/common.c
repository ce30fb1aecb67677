/*
 * common.c: error strings and formatting, and the small helpers every
 * module shares (strings, paths, hashing, the bounded file reader).
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spectrumd/common.h"

static const char *const err_names[] = {
	[SPD_OK] = "ok",
	[SPD_ENOMEM] = "out of memory",
	[SPD_EIO] = "I/O error",
	[SPD_EFORMAT] = "format error",
	[SPD_ENOTFOUND] = "not found",
	[SPD_EINVAL] = "invalid argument",
	[SPD_EUNSUPPORTED] = "unsupported",
	[SPD_ENONFINITE] = "non-finite values",
	[SPD_EBUSY] = "busy",
	[SPD_ENODEV] = "no device",
	[SPD_ECANCELED] = "canceled",
	[SPD_EINTERNAL] = "internal error",
};

/* Formats into eb (may be NULL) and returns e. */
enum spd_err
spd_fail(struct spd_errbuf *eb, enum spd_err e, const char *fmt, ...)
{
	va_list ap;

	if (eb != NULL) {
		va_start(ap, fmt);
		vsnprintf(eb->msg, sizeof eb->msg, fmt, ap);
		va_end(ap);
	}
	return e;
}

/* Returns the constant name of an error code. */
const char *
spd_strerror(enum spd_err e)
{
	if ((size_t)e >= nitems(err_names) || err_names[e] == NULL)
		return "unknown error";
	return err_names[e];
}

/* Returns monotonic time in seconds. */
double
spd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Initialises a condition variable timed on CLOCK_MONOTONIC. */
int
spd_cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t	ca;
	int			e;

	if ((e = pthread_condattr_init(&ca)) != 0)
		return e;
	if ((e = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
		e = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return e;
}

/* Returns a malloc'ed formatted string, or NULL. */
char *
spd_asprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* True when s ends with suffix. */
bool
spd_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* True when s starts with prefix. */
bool
spd_starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Orders two char * array elements by strcmp. */
int
spd_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns dir + "/" + name (one slash), malloc'ed; NULL on failure. */
char *
spd_path_join(const char *dir, const char *name)
{
	size_t	 ld = strlen(dir), ln = strlen(name), n;
	char	*p;

	while (ld > 1 && dir[ld - 1] == '/')
		ld--;
	if (__builtin_add_overflow(ld, ln, &n) ||
	    __builtin_add_overflow(n, 2, &n) || (p = malloc(n)) == NULL)
		return NULL;
	memcpy(p, dir, ld);
	if (ld > 0 && dir[ld - 1] != '/')
		p[ld++] = '/';
	memcpy(p + ld, name, ln + 1);
	return p;
}

/* Folds n bytes into a 64-bit FNV-1a hash. */
uint64_t
spd_fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n-- > 0) {
		h ^= *b++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Reads up to cap bytes of fd into b; returns the count, or -1 (errno). */
static ssize_t
read_upto(int fd, char *b, size_t cap)
{
	size_t	have = 0;
	ssize_t	r;

	while (have < cap) {
		r = read(fd, b + have, cap - have);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0)
			break;
		have += (size_t)r;
	}
	return (ssize_t)have;
}

/* Reads a whole small regular file (see common.h). */
enum spd_err
spd_read_file(int dfd, const char *name, size_t max, char **buf,
    size_t *len, struct stat *st, struct spd_errbuf *eb)
{
	struct stat	 sb;
	enum spd_err	 rc;
	char		*b = NULL;
	size_t		 cap;
	ssize_t		 got;
	int		 fd;

	if (st == NULL)
		st = &sb;
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd == -1)
		return spd_fail(eb, errno == ENOENT || errno == ENOTDIR ?
		    SPD_ENOTFOUND : SPD_EIO, "%s: %s", name, strerror(errno));
	if (fstat(fd, st) == -1) {
		rc = spd_fail(eb, SPD_EIO, "%s: %s", name, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st->st_mode)) {
		rc = spd_fail(eb, SPD_EUNSUPPORTED, "%s: not a regular file",
		    name);
		goto out;
	}
	if ((uintmax_t)st->st_size > max) {
		rc = spd_fail(eb, SPD_EFORMAT, "%s: %jd bytes, over the "
		    "%zu-byte limit", name, (intmax_t)st->st_size, max);
		goto out;
	}
	cap = (size_t)st->st_size + 1;		/* one more: sees growth */
	if ((b = malloc(cap + 1)) == NULL) {
		rc = spd_fail(eb, SPD_ENOMEM, "%s: out of memory", name);
		goto out;
	}
	if ((got = read_upto(fd, b, cap)) == -1) {
		rc = spd_fail(eb, SPD_EIO, "%s: %s", name, strerror(errno));
		goto out;
	}
	if ((size_t)got == cap) {
		rc = spd_fail(eb, SPD_EBUSY, "%s: grew while read (still "
		    "being written)", name);
		goto out;
	}
	b[got] = '\0';
	*buf = b;
	*len = (size_t)got;
	b = NULL;
	rc = SPD_OK;
out:
	free(b);
	close(fd);
	return rc;
}

/* Copies name into buf for a message: '?' for control bytes, cut long. */
const char *
spd_shown(const char *name, char *buf, size_t size)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i + 4 < size && i < SPD_NAME_SHOWN; i++)
		buf[i] = (unsigned char)name[i] < 0x20 ? '?' : name[i];
	if (name[i] != '\0' && i + 4 <= size) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

/* Closes a memstream and returns its buffer, or NULL after a failure. */
char *
spd_memstream_finish(FILE *fp, char **bufp)
{
	int bad = ferror(fp);

	if (fclose(fp) != 0 || bad) {
		free(*bufp);
		*bufp = NULL;
		return NULL;
	}
	return *bufp;
}

/*
 * Length of the well-formed UTF-8 sequence at p (n bytes left), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629).
 */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	size_t		len, i;
	unsigned	lo = 0x80, hi = 0xbf;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;		/* overlong */
	else if (p[0] == 0xed)
		hi = 0x9f;		/* surrogates */
	else if (p[0] == 0xf0)
		lo = 0x90;		/* overlong */
	else if (p[0] == 0xf4)
		hi = 0x8f;		/* above U+10FFFF */
	if (len > n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* True when s[0..n) is well-formed UTF-8. */
bool
spd_utf8_valid(const char *s, size_t n)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i, k;

	for (i = 0; i < n; i += k)
		if ((k = utf8_seq(p + i, n - i)) == 0)
			return false;
	return true;
}

/* A malloc'ed copy of s[0..n) with each ill-formed byte as U+FFFD. */
char *
spd_utf8_scrub(const char *s, size_t n)
{
	static const char	 repl[] = "\xef\xbf\xbd";
	const unsigned char	*p = (const unsigned char *)s;
	char			*out, *o;
	size_t			 i, k;

	if (n > (SIZE_MAX - 1) / 3 || (out = malloc(n * 3 + 1)) == NULL)
		return NULL;
	for (i = 0, o = out; i < n; i += k) {
		if ((k = utf8_seq(p + i, n - i)) == 0) {
			memcpy(o, repl, 3);
			o += 3;
			k = 1;
		} else {
			memcpy(o, s + i, k);
			o += k;
		}
	}
	*o = '\0';
	return out;
}

/* True when name is a valid training-log metric name (see common.h). */
bool
spd_train_name_ok(const char *name)
{
	size_t	n;

	if (name == NULL)
		return false;
	for (n = 0; name[n] != '\0'; n++) {
		if (n >= SPD_TRAIN_NAME_MAX)
			return false;
		if (!((name[n] >= 'A' && name[n] <= 'Z') ||
		    (name[n] >= 'a' && name[n] <= 'z') ||
		    (name[n] >= '0' && name[n] <= '9') ||
		    strchr("_./-", name[n]) != NULL))
			return false;
	}
	return n > 0;
}
