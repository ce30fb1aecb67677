/*
 * test_match.c: bounded user regexes (match.h): compile-time caps, plain
 * matching, the per-match step limit, the per-matcher CPU limit, and the
 * UTF-8 rules for pattern and subject.
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include "spectrumd/common.h"
#include "spectrumd/match.h"
#include "tap.h"

/* CPU seconds of this thread. */
static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* match_new must refuse pat with a message containing want. */
static void
refuses(const char *pat, const char *want, const char *what)
{
	struct spd_errbuf	 eb = { "" };
	struct match		*m = NULL;
	enum spd_err		 rc = match_new(pat, &m, &eb);

	ok(rc == SPD_EINVAL && m == NULL && strstr(eb.msg, want) != NULL,
	    "refused: %s (%s)", what, eb.msg);
	match_free(m);
}

/* Compile-time caps and syntax errors. */
static void
test_compile(void)
{
	char long_pat[MATCH_MAX_PATTERN + 2];

	memset(long_pat, 'x', sizeof long_pat - 1);
	long_pat[sizeof long_pat - 1] = '\0';
	refuses(long_pat, "over 512 bytes", "pattern one byte over the cap");
	long_pat[MATCH_MAX_PATTERN] = '\0';
	{
		struct spd_errbuf	 eb;
		struct match		*m = NULL;

		ok(match_new(long_pat, &m, &eb) == SPD_OK,
		    "a pattern of exactly the cap compiles");
		match_free(m);
	}
	refuses("(", "parenthesis", "unbalanced parenthesis");
	refuses("(.*){1,255}{1,255}x", "quantifier", "stacked repeats "
	    "(crashed glibc regcomp)");
	refuses("((((((((((((((((((((((((((((((((((a))))))))))))))))))))))"
	    "))))))))))))", "nested", "parentheses nested 34 deep");
	refuses("\xff", "UTF-8", "a pattern that is not UTF-8");
}

/* Plain patterns behave as users expect. */
static void
test_plain(void)
{
	struct spd_errbuf	 eb;
	struct match		*m = NULL;

	if (!ok(match_new("self_attn\\.(q|k)_proj$", &m, &eb) == SPD_OK,
	    "plain pattern compiles"))
		return;
	ok(match_test(m, "model.layers.3.self_attn.q_proj", &eb) == 1,
	    "matches unanchored");
	ok(match_test(m, "model.layers.3.self_attn.v_proj", &eb) == 0,
	    "does not match another module");
	ok(match_test(m, "model.layers.3.self_attn.q_proj\xff", &eb) == 0,
	    "a subject that is not UTF-8 is no match, not an error");
	ok(match_test(m, "model.layers.4.self_attn.k_proj", &eb) == 1,
	    "and the matcher goes on after it");
	match_free(m);
}

/* A catastrophic pattern hits the step limit on one subject. */
static void
test_steps(void)
{
	struct spd_errbuf	 eb = { "" };
	struct match		*m = NULL;
	double			 t0;
	int			 r;

	if (!ok(match_new("^(a|a)*[^a]", &m, &eb) == SPD_OK,
	    "catastrophic pattern compiles"))
		return;
	t0 = cpu_now();
	r = match_test(m, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &eb);
	ok(r == -1 && strstr(eb.msg, "backtracking steps") != NULL,
	    "2^48 paths: stopped by the step limit (%s)", eb.msg);
	ok(cpu_now() - t0 < 0.1, "within 100 ms of CPU (%.4f s)",
	    cpu_now() - t0);
	ok(match_test(m, "b", &eb) == -1, "a failed matcher stays failed");
	match_free(m);
}

/* Many subjects each under the step limit hit the CPU limit together. */
static void
test_cpu(void)
{
	struct spd_errbuf	 eb = { "" };
	struct match		*m = NULL;
	double			 t0, used;
	int			 r = 0, i;

	t0 = cpu_now();		/* the matcher's clock starts in match_new */
	if (!ok(match_new("^(a|a)*[^a]", &m, &eb) == SPD_OK,
	    "pattern compiles"))
		return;
	/* 2^13 paths: a few thousand steps each, far below the step limit. */
	for (i = 0; i < 1000000 && r == 0; i++)
		r = match_test(m, "aaaaaaaaaaaaa", &eb);
	used = cpu_now() - t0;
	ok(r == -1 && strstr(eb.msg, "ms of CPU") != NULL,
	    "%d cheap matches stopped by the CPU limit (%s)", i, eb.msg);
	ok(used >= MATCH_MAX_CPU_MS / 1000.0 && used < 0.2,
	    "after %.3f s of CPU (limit %d ms)", used, MATCH_MAX_CPU_MS);
	match_free(m);
}

int
main(void)
{
	test_compile();
	test_plain();
	test_steps();
	test_cpu();
	return tap_done();
}
