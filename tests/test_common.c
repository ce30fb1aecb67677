/*
 * test_common.c: the shared helpers: the bounded file reader, path join,
 * prefix and suffix tests, the string comparator and FNV-1a.
 */
#include "config.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spectrumd/common.h"
#include "tap.h"

static char top[PATH_MAX];

/* Writes n bytes of text to top/name and returns the path (static). */
static const char *
put(const char *name, const char *text, size_t n)
{
	static char	 p[PATH_MAX];
	FILE		*f;

	if (snprintf(p, sizeof p, "%s/%s", top, name) >= (int)sizeof p ||
	    (f = fopen(p, "w")) == NULL || fwrite(text, 1, n, f) != n ||
	    fclose(f) != 0) {
		perror(name);
		exit(1);
	}
	return p;
}

/* Reads path with the given cap; returns the code, frees the buffer. */
static enum spd_err
read_rc(int dfd, const char *path, size_t max, size_t *len,
    struct spd_errbuf *eb)
{
	enum spd_err	 rc;
	char		*buf = NULL;

	eb->msg[0] = '\0';
	rc = spd_read_file(dfd, path, max, &buf, len, NULL, eb);
	free(buf);
	return rc;
}

/* The one reader: sizes, kinds, growth, a directory descriptor. */
static void
test_read_file(void)
{
	struct spd_errbuf	 eb;
	struct stat		 st;
	const char		*p;
	char			*buf = NULL, fifo[PATH_MAX + 16];
	size_t			 len = 0;
	int			 dfd;

	p = put("ten", "0123456789", 10);
	ok(spd_read_file(AT_FDCWD, p, 10, &buf, &len, &st, &eb) == SPD_OK &&
	    len == 10 && memcmp(buf, "0123456789", 11) == 0 &&
	    st.st_size == 10, "exactly max bytes: read, NUL-terminated, stat");
	free(buf);
	ok(read_rc(AT_FDCWD, p, 9, &len, &eb) == SPD_EFORMAT &&
	    strstr(eb.msg, "over the 9-byte limit") != NULL,
	    "one byte over max: SPD_EFORMAT (%s)", eb.msg);
	memset(&st, 0, sizeof st);
	ok(spd_read_file(AT_FDCWD, p, 9, &buf, &len, &st, NULL) ==
	    SPD_EFORMAT && st.st_size == 10, "too large: stat still filled");
	p = put("empty", "", 0);
	ok(read_rc(AT_FDCWD, p, 0, &len, &eb) == SPD_OK && len == 0,
	    "empty file with max 0");
	snprintf(fifo, sizeof fifo, "%s/missing", top);
	ok(read_rc(AT_FDCWD, fifo, 100, &len, &eb) == SPD_ENOTFOUND &&
	    strstr(eb.msg, "missing") != NULL, "missing: SPD_ENOTFOUND");
	ok(read_rc(AT_FDCWD, top, 100, &len, &eb) == SPD_EUNSUPPORTED,
	    "a directory: SPD_EUNSUPPORTED");
	snprintf(fifo, sizeof fifo, "%s/fifo", top);
	ok(mkfifo(fifo, 0600) == 0 &&
	    read_rc(AT_FDCWD, fifo, 100, &len, &eb) == SPD_EUNSUPPORTED,
	    "a FIFO: SPD_EUNSUPPORTED, without blocking");
	if (access("/proc/self/status", R_OK) == 0)
		ok(read_rc(AT_FDCWD, "/proc/self/status", 1 << 20, &len,
		    &eb) == SPD_EBUSY && strstr(eb.msg, "grew") != NULL,
		    "more bytes than its size said: SPD_EBUSY (%s)", eb.msg);
	if ((dfd = open(top, O_RDONLY | O_DIRECTORY)) == -1) {
		perror(top);
		exit(1);
	}
	ok(read_rc(dfd, "ten", 10, &len, &eb) == SPD_OK && len == 10,
	    "relative to a directory descriptor");
	close(dfd);
}

/* Path join, prefix and suffix, the comparator, FNV-1a. */
static void
test_small(void)
{
	static const struct {
		const char *dir, *name, *want;
	} joins[] = {
		{ "a", "b", "a/b" }, { "a/", "b", "a/b" }, { "a//", "b", "a/b" },
		{ "/", "b", "/b" }, { "", "b", "b" },
	};
	char	*v[] = { "b", "a", "c" }, *s;
	size_t	 i;

	for (i = 0; i < nitems(joins); i++) {
		s = spd_path_join(joins[i].dir, joins[i].name);
		ok(s != NULL && strcmp(s, joins[i].want) == 0,
		    "join \"%s\" \"%s\" -> \"%s\"", joins[i].dir,
		    joins[i].name, s ? s : "(null)");
		free(s);
	}
	ok(spd_starts_with("checkpoint-1", "checkpoint-") &&
	    !spd_starts_with("check", "checkpoint-") &&
	    spd_starts_with("x", ""), "starts_with");
	ok(spd_ends_with("a.safetensors", ".safetensors") &&
	    !spd_ends_with("safetensors", ".safetensors"), "ends_with");
	qsort(v, nitems(v), sizeof *v, spd_cmp_str);
	ok(strcmp(v[0], "a") == 0 && strcmp(v[2], "c") == 0, "cmp_str sorts");
	/* Published FNV-1a 64 test vectors. */
	ok(spd_fnv1a(SPD_FNV1A_INIT, "", 0) == 0xcbf29ce484222325ULL &&
	    spd_fnv1a(SPD_FNV1A_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL &&
	    spd_fnv1a(SPD_FNV1A_INIT, "foobar", 6) == 0x85944171f73967e8ULL,
	    "fnv1a test vectors");
	ok(spd_fnv1a(spd_fnv1a(SPD_FNV1A_INIT, "foo", 3), "bar", 3) ==
	    0x85944171f73967e8ULL, "fnv1a folds in pieces");
}

/* Runs the cases in a temporary directory. */
int
main(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(top, sizeof top, "%s/spd-common-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_read_file();
	test_small();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
