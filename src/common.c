/* common.c: error strings and formatting, shared by every module. */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
