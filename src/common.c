/* common.c: error strings and formatting, shared by every module. */
#include "config.h"

#include <stdarg.h>
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
