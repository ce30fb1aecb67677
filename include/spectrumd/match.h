/*
 * match.h: user-supplied regular expressions with bounded time and memory
 * (PCRE2 syntax). A pattern from a request may be hostile: its length, its
 * nesting, the backtracking of each match, its heap and the CPU time of all
 * matches of one request are capped, and every cap hit is an error naming
 * the limit, never a crash or a stall. src/match.c is the only file that
 * includes <pcre2.h>.
 */
#ifndef SPECTRUMD_MATCH_H
#define SPECTRUMD_MATCH_H

#include "spectrumd/common.h"

#define MATCH_MAX_PATTERN	512	/* bytes of pattern */
#define MATCH_MAX_CPU_MS	100	/* CPU time of all matches of one matcher */

struct match;

/*
 * Compiles pat (PCRE2, UTF-8, unanchored, no capture groups). Returns
 * SPD_OK and *out, SPD_EINVAL with eb naming the problem (too long, bad
 * syntax, too large once compiled) or SPD_ENOMEM.
 */
enum spd_err	 match_new(const char *pat, struct match **out,
		    struct spd_errbuf *eb);

/*
 * Tests subject: 1 when the pattern matches somewhere in it, 0 when not,
 * -1 when a limit was hit (backtracking, depth, heap, or the matcher's
 * total CPU time over MATCH_MAX_CPU_MS); then m stays failed and *eb says
 * which limit.
 */
int		 match_test(struct match *m, const char *subject,
		    struct spd_errbuf *eb);

/* Frees m (NULL-safe). */
void		 match_free(struct match *m);

#endif
