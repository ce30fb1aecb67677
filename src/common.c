/* common.c: error strings and formatting, shared by every module. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
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
