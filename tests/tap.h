/*
 * tap.h: a tiny TAP producer for the unit tests (after collectd's
 * testing.h). Each test program prints "ok N - …" / "not ok N - …" and ends
 * with tap_done(), which prints the plan and returns the exit status the
 * automake harness expects (0 pass, 1 fail). A test that cannot run here
 * calls tap_skip_all(reason) (plan "1..0 # SKIP", exit 77).
 */
#ifndef SPECTRUMD_TAP_H
#define SPECTRUMD_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed;

static void tap_vreport(int pass, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
tap_vreport(int pass, const char *fmt, va_list ap)
{
	tap_n++;
	if (!pass)
		tap_failed++;
	printf("%sok %d - ", pass ? "" : "not ", tap_n);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
}

/* Records one check; returns pass so callers can stop early. */
static int ok(int pass, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), unused));
static int
ok(int pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vreport(pass, fmt, ap);
	va_end(ap);
	return pass;
}

/*
 * Passes when got is within tol of want, relatively when |want| > 1, else
 * absolutely. Infinities must match exactly; NaN never passes.
 */
static int ok_near(double got, double want, double tol, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), unused));
static int
ok_near(double got, double want, double tol, const char *fmt, ...)
{
	va_list	ap;
	double	scale = fabs(want) > 1 ? fabs(want) : 1;
	int	pass;

	if (isinf(want) || isinf(got))
		pass = got == want;
	else
		pass = fabs(got - want) <= tol * scale;
	va_start(ap, fmt);
	tap_vreport(pass, fmt, ap);
	va_end(ap);
	if (!pass)
		printf("#   got %.17g, want %.17g (tol %g)\n", got, want, tol);
	return pass;
}

/* Prints the plan and returns the harness exit status. */
static int __attribute__((unused))
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

/* Skips the whole program. */
static void __attribute__((noreturn, unused))
tap_skip_all(const char *reason)
{
	printf("1..0 # SKIP %s\n", reason);
	exit(77);
}

#endif
