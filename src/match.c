/*
 * match.c: bounded user regexes on PCRE2 (see match.h). glibc's regcomp
 * and regexec have no limits: a nested repeat overflows the stack of the
 * calling thread and one pattern can hold a core for seconds. PCRE2 takes
 * a limit for every resource; the CPU time of all the matches one request
 * makes is summed here on top.
 */
#include "config.h"

#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pcre2.h>

#include "spectrumd/match.h"

#define MATCH_STEPS	100000	/* backtracking steps of one match */
#define MATCH_DEPTH	200	/* nested backtracking frames */
#define MATCH_HEAP_KIB	1024	/* heap of one match */
#define MATCH_NEST	32	/* parentheses nesting at compile time */

struct match {
	pcre2_code		*code;
	pcre2_match_context	*mctx;
	pcre2_match_data	*md;
	double			 cpu0;		/* thread CPU at match_new */
	bool			 failed;
};

/* CPU seconds of the calling thread. */
static double
thread_cpu(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Compiles pat with the compile-time limits. */
static enum spd_err
match_compile(struct match *m, const char *pat, struct spd_errbuf *eb)
{
	pcre2_compile_context	*cctx;
	PCRE2_UCHAR		 why[160];
	PCRE2_SIZE		 off = 0;
	int			 e = 0;

	if ((cctx = pcre2_compile_context_create(NULL)) == NULL)
		return SPD_ENOMEM;
	pcre2_set_max_pattern_length(cctx, MATCH_MAX_PATTERN);
	pcre2_set_parens_nest_limit(cctx, MATCH_NEST);
	m->code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
	    PCRE2_UTF | PCRE2_NO_AUTO_CAPTURE | PCRE2_NEVER_BACKSLASH_C, &e,
	    &off, cctx);
	pcre2_compile_context_free(cctx);
	if (m->code != NULL)
		return SPD_OK;
	if (e == PCRE2_ERROR_NOMEMORY)
		return SPD_ENOMEM;
	pcre2_get_error_message(e, why, sizeof why);
	return spd_fail(eb, SPD_EINVAL, "match: %s at offset %zu", (char *)why,
	    (size_t)off);
}

/* Compiles pat (see match.h). */
enum spd_err
match_new(const char *pat, struct match **out, struct spd_errbuf *eb)
{
	struct match	*m;
	enum spd_err	 rc;

	*out = NULL;
	if (strnlen(pat, MATCH_MAX_PATTERN + 1) > MATCH_MAX_PATTERN)
		return spd_fail(eb, SPD_EINVAL, "match: pattern over %d bytes",
		    MATCH_MAX_PATTERN);
	if ((m = calloc(1, sizeof *m)) == NULL)
		return SPD_ENOMEM;
	if ((rc = match_compile(m, pat, eb)) != SPD_OK) {
		match_free(m);
		return rc;
	}
	m->mctx = pcre2_match_context_create(NULL);
	m->md = pcre2_match_data_create(1, NULL);
	if (m->mctx == NULL || m->md == NULL) {
		match_free(m);
		return SPD_ENOMEM;
	}
	pcre2_set_match_limit(m->mctx, MATCH_STEPS);
	pcre2_set_depth_limit(m->mctx, MATCH_DEPTH);
	pcre2_set_heap_limit(m->mctx, MATCH_HEAP_KIB);
	m->cpu0 = thread_cpu();
	*out = m;
	return SPD_OK;
}

/* Names the limit behind a PCRE2 match error. */
static int
match_limit_hit(struct match *m, int e, struct spd_errbuf *eb)
{
	PCRE2_UCHAR why[160];

	m->failed = true;
	switch (e) {
	case PCRE2_ERROR_MATCHLIMIT:
		spd_fail(eb, SPD_EINVAL, "match: pattern needs more than %d "
		    "backtracking steps on one name; simplify it", MATCH_STEPS);
		break;
	case PCRE2_ERROR_DEPTHLIMIT:
		spd_fail(eb, SPD_EINVAL, "match: pattern nests backtracking "
		    "deeper than %d; simplify it", MATCH_DEPTH);
		break;
	case PCRE2_ERROR_HEAPLIMIT:
		spd_fail(eb, SPD_EINVAL, "match: pattern needs more than %d "
		    "KiB to match; simplify it", MATCH_HEAP_KIB);
		break;
	default:
		pcre2_get_error_message(e, why, sizeof why);
		spd_fail(eb, SPD_EINVAL, "match: %s", (char *)why);
	}
	return -1;
}

/* Tests subject (see match.h). */
int
match_test(struct match *m, const char *subject, struct spd_errbuf *eb)
{
	int e;

	if (m->failed) {
		spd_fail(eb, SPD_EINVAL, "match: limit hit");
		return -1;
	}
	e = pcre2_match(m->code, (PCRE2_SPTR)subject, PCRE2_ZERO_TERMINATED, 0,
	    0, m->md, m->mctx);
	/* A subject that is not UTF-8 cannot match a UTF-8 pattern. */
	if (e <= PCRE2_ERROR_UTF8_ERR1 && e >= PCRE2_ERROR_UTF8_ERR21)
		e = PCRE2_ERROR_NOMATCH;
	if (e < 0 && e != PCRE2_ERROR_NOMATCH)
		return match_limit_hit(m, e, eb);
	if (thread_cpu() - m->cpu0 > MATCH_MAX_CPU_MS / 1000.0) {
		m->failed = true;
		spd_fail(eb, SPD_EINVAL, "match: pattern took over %d ms of "
		    "CPU; simplify it", MATCH_MAX_CPU_MS);
		return -1;
	}
	return e >= 0;
}

/* Frees m. */
void
match_free(struct match *m)
{
	if (m == NULL)
		return;
	pcre2_match_data_free(m->md);
	pcre2_match_context_free(m->mctx);
	pcre2_code_free(m->code);
	free(m);
}
