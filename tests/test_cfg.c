/*
 * test_cfg.c: defaults, the config file, the flags and listen addresses.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "spectrumd/cfg.h"
#include "tap.h"

#ifndef SPD_WEBDIR
#define SPD_WEBDIR "web"
#endif

static char top[PATH_MAX];

/* Writes text to top/name and returns the path (static buffer ring). */
static const char *
conf(const char *name, const char *text)
{
	static char	 buf[4][PATH_MAX];
	static int	 next;
	char		*p = buf[next++ % 4];
	FILE		*f;

	if (snprintf(p, PATH_MAX, "%s/%s", top, name) >= PATH_MAX ||
	    (f = fopen(p, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) != 0) {
		perror(name);
		exit(1);
	}
	return p;
}

/* True when s is non-NULL and equals want. */
static bool
streq(const char *s, const char *want)
{
	return s != NULL && strcmp(s, want) == 0;
}

/* True when the message contains want (printed when it does not). */
static bool
has(const struct spd_errbuf *eb, const char *want)
{
	if (strstr(eb->msg, want) != NULL)
		return true;
	printf("#   message: %s\n#   wanted:  %s\n", eb->msg, want);
	return false;
}

static void
test_defaults(void)
{
	struct spd_errbuf	eb;
	struct cfg		c;

	unsetenv("STATE_DIRECTORY");
	ok(cfg_init(&c, &eb) == SPD_OK, "cfg_init");
	ok(streq(c.listen, "127.0.0.1:8420"), "default listen");
	ok(streq(c.db, "./spectrumd.db"), "default db without STATE_DIRECTORY");
	ok(c.backend == CFG_BACKEND_AUTO &&
	    streq(cfg_backend_name(c.backend), "auto"), "default backend");
	ok(c.threads == 0 && streq(c.devices, ""), "default threads, devices");
	ok(c.top_percent == 25 && c.settle_ms == 2000,
	    "default top_percent 25, settle_ms 2000");
	ok(c.incomplete_grace_s == 600, "default incomplete_grace_s 600");
	ok(c.stickiness == 0 && c.lr_scale_max == 2.0,
	    "default stickiness 0, lr_scale_max 2.0");
	ok(c.alert_jump_factor == 2 && c.alert_stall_factor == 3 &&
	    c.alert_churn_window == 5 && c.alert_churn_min == 3,
	    "default alerts: jump 2, stall 3, churn 3 of 5");
	ok(c.backfill && c.keep_spectra && c.include_embeddings &&
	    !c.include_1d && !c.split_3d && !c.group_experts, "default bools");
	ok(c.max_inflight_bytes == 1ull << 30, "default max_inflight 1 GiB");
	ok(c.api_token == NULL, "no api_token by default");
	ok(streq(c.web_dir, SPD_WEBDIR), "web_dir = SPD_WEBDIR");
	ok(c.log_level == LOG_INFO, "default log_level info");
	ok(c.http_max_connections == 4096 && c.http_per_ip_connections == 256 &&
	    c.http_timeout_s == 30 && c.http_threads == 4,
	    "default HTTP limits 4096, 256 per address, 30 s, 4 threads");
	ok(c.nruns == 0 && c.runs == NULL, "no runs");
	cfg_cleanup(&c);
	cfg_cleanup(&c);
	cfg_cleanup(NULL);

	setenv("STATE_DIRECTORY", "/var/lib/spectrumd", 1);
	ok(cfg_init(&c, &eb) == SPD_OK &&
	    streq(c.db, "/var/lib/spectrumd/spectrumd.db"),
	    "db in $STATE_DIRECTORY");
	cfg_cleanup(&c);
	setenv("STATE_DIRECTORY", "/srv/a/:/srv/b", 1);
	ok(cfg_init(&c, &eb) == SPD_OK && streq(c.db, "/srv/a/spectrumd.db"),
	    "several state dirs: the first");
	cfg_cleanup(&c);
	unsetenv("STATE_DIRECTORY");
}

static void
test_file(void)
{
	struct spd_errbuf	 eb;
	struct cfg		 c;
	const struct cfg_run	*r;
	const char		*p;

	p = conf("good.conf",
	    "# spectrumd config\n"
	    "; another comment\n"
	    "\n"
	    "listen = \"[::1]:9000\"\n"
	    "  top_percent=30   # inline comment\n"
	    "settle_ms = 500\r\n"
	    "backend = cpu\n"
	    "devices = 0,1\n"
	    "include_1d = yes\n"
	    "keep_spectra = off\n"
	    "max_inflight_bytes = 512M\n"
	    "api_token = \"s3cr#t \\\"x\\\" \\\\\"  ; quoted keeps # and ;\n"
	    "web_dir = /usr/share/x#y\n"
	    "log_level = debug\n"
	    "\n"
	    "[run llama]\n"
	    "dir = /data/llama-ft/\n"
	    "[ run \"qwen moe\" ]\n"
	    "# comment inside a section\n"
	    "dir = \"/data/qwen moe\"\n");
	ok(cfg_init(&c, &eb) == SPD_OK, "init");
	if (!ok(cfg_load_file(&c, p, &eb) == SPD_OK, "load good.conf"))
		printf("#   %s\n", eb.msg);
	ok(streq(c.listen, "[::1]:9000"), "quoted listen");
	ok(c.top_percent == 30, "top_percent with inline comment");
	ok(c.settle_ms == 500, "CRLF line");
	ok(c.backend == CFG_BACKEND_CPU, "backend cpu");
	ok(streq(c.devices, "0,1"), "devices");
	ok(c.include_1d && !c.keep_spectra, "bools yes/off");
	ok(c.max_inflight_bytes == 512ull << 20, "512M");
	ok(streq(c.api_token, "s3cr#t \"x\" \\"), "quoted value with escapes");
	ok(streq(c.web_dir, "/usr/share/x#y"), "# without a blank before "
	    "it is part of the value");
	ok(c.log_level == LOG_DEBUG, "log_level debug");
	ok(c.nruns == 2, "two runs");
	r = cfg_run_find(&c, "llama");
	ok(r != NULL && streq(r->dir, "/data/llama-ft"),
	    "[run llama] dir, trailing / removed");
	r = cfg_run_find(&c, "qwen moe");
	ok(r != NULL && streq(r->dir, "/data/qwen moe"), "quoted section name");
	ok(cfg_run_find(&c, "nope") == NULL, "cfg_run_find: unknown");
	cfg_cleanup(&c);
}

/* Loads text as a config file and expects failure naming want. */
static void
bad_file(const char *label, const char *text, enum spd_err rc,
    const char *want)
{
	struct spd_errbuf	eb;
	struct cfg		c;
	char			w[PATH_MAX + 64];

	snprintf(w, sizeof w, "%s/bad.conf%s", top, want);
	cfg_init(&c, &eb);
	eb.msg[0] = '\0';
	ok(cfg_load_file(&c, conf("bad.conf", text), &eb) == rc &&
	    has(&eb, w), "%s", label);
	cfg_cleanup(&c);
}

static void
test_file_errors(void)
{
	struct spd_errbuf	eb;
	struct cfg		c;

	bad_file("unknown key", "top_percent = 20\n\nfrobnicate = 1\n",
	    SPD_EINVAL, ":3: unknown key 'frobnicate'");
	bad_file("bad bool", "# x\nbackfill = maybe\n", SPD_EINVAL,
	    ":2: backfill: expected true or false, got 'maybe'");
	bad_file("bad int", "threads = 4x\n", SPD_EINVAL,
	    ":1: threads: expected an integer 0..4096, got '4x'");
	bad_file("negative int", "settle_ms = -5\n", SPD_EINVAL,
	    ":1: settle_ms: expected an integer");
	bad_file("top_percent 0", "top_percent = 0\n", SPD_EINVAL,
	    ":1: top_percent: expected an integer 1..100, got '0'");
	bad_file("top_percent 101", "\ntop_percent = 101\n", SPD_EINVAL,
	    ":2: top_percent: expected an integer 1..100, got '101'");
	bad_file("section without dir",
	    "[run a]\ndir = /x\n\n[run b]\n# none\n",
	    SPD_EINVAL, ":4: [run b] has no dir");
	bad_file("key other than dir in a run",
	    "[run a]\ndir = /x\ntop_percent = 5\n", SPD_EINVAL,
	    ":3: unknown key 'top_percent' in [run a]");
	bad_file("unknown section", "[global]\n", SPD_EINVAL,
	    ":1: unknown section [global]");
	bad_file("unterminated quote", "db = \"/x\n", SPD_EINVAL,
	    ":1: db: unterminated quote");
	bad_file("no '='", "listen 1.2.3.4:5\n", SPD_EINVAL,
	    ":1: expected key = value");
	bad_file("bad listen", "listen = localhost:80\n", SPD_EINVAL,
	    ":1: listen: 'localhost:80'");
	bad_file("bad backend", "backend = gpu\n", SPD_EINVAL,
	    ":1: backend: expected auto|cpu|cuda, got 'gpu'");
	bad_file("duplicate run in file", "[run a]\ndir=/x\n[run a]\ndir=/y\n",
	    SPD_EINVAL, ":3: [run a]: duplicate run name 'a'");
	bad_file("dir twice", "[run a]\ndir=/x\ndir=/y\n", SPD_EINVAL,
	    ":3: dir given twice");
	bad_file("empty db", "db = \"\"\n", SPD_EINVAL, ":1: db: must not be "
	    "empty");

	cfg_init(&c, &eb);
	ok(cfg_load_file(&c, "/nonexistent/spectrumd.conf", &eb) ==
	    SPD_ENOTFOUND, "missing file: SPD_ENOTFOUND");
	ok(cfg_load_file(&c, top, &eb) == SPD_EUNSUPPORTED,
	    "a directory: SPD_EUNSUPPORTED");
	cfg_cleanup(&c);
}

/* Runs cfg_parse_args on a NULL-terminated list after "spectrumd". */
static enum spd_err
args(struct cfg *c, enum cfg_cmd *cmd, struct spd_errbuf *eb, ...)
{
	char	*argv[32];
	va_list	 ap;
	int	 argc = 0;

	argv[argc++] = "spectrumd";
	va_start(ap, eb);
	while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	cfg_init(c, eb);
	eb->msg[0] = '\0';
	return cfg_parse_args(c, argc, argv, cmd, eb);
}

static void
test_args(void)
{
	struct spd_errbuf	 eb;
	struct cfg		 c;
	enum cfg_cmd		 cmd;
	const struct cfg_run	*r;
	const char		*p;
	char			 cwd[PATH_MAX], *base;

	p = conf("flags.conf", "top_percent = 30\nsettle_ms = 100\n"
	    "listen = 0.0.0.0:1\n[run filerun]\ndir = /data/f\n");
	ok(args(&c, &cmd, &eb, "--top-percent", "40", "--watch",
	    "exp1=/data/run1", "--config", p, "--watch", "/data/run2/",
	    "--listen=127.0.0.1:0", NULL) == SPD_OK && cmd == CFG_CMD_RUN,
	    "flags with --config last");
	ok(c.top_percent == 40, "flag overrides the file even when --config "
	    "comes later");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--alert-churn-min", "7", NULL) == SPD_EINVAL &&
	    strstr(eb.msg, "alert_churn_min (7) must not exceed "
	    "alert_churn_window (5)") != NULL, "churn min above the window "
	    "refused: %s", eb.msg);
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--alert-churn-min", "7",
	    "--alert-churn-window", "8", NULL) == SPD_OK &&
	    c.alert_churn_min == 7 && c.alert_churn_window == 8,
	    "checked once all flags are read (window given after min)");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--top-percent", "40", "--watch",
	    "exp1=/data/run1", "--config", p, "--watch", "/data/run2/",
	    "--listen=127.0.0.1:0", NULL) == SPD_OK, "flags again");
	ok(c.settle_ms == 100, "file value kept where no flag");
	ok(streq(c.listen, "127.0.0.1:0"), "--listen=ADDR");
	r = cfg_run_find(&c, "exp1");
	ok(r != NULL && streq(r->dir, "/data/run1"), "--watch NAME=DIR");
	r = cfg_run_find(&c, "run2");
	ok(r != NULL && streq(r->dir, "/data/run2"), "--watch DIR: basename");
	ok(cfg_run_find(&c, "filerun") != NULL && c.nruns == 3,
	    "file runs and flag runs together");
	cfg_cleanup(&c);

	ok(args(&c, &cmd, &eb, "--watch", "/x/a=b", "--watch", "n=/y=z",
	    NULL) == SPD_OK && cfg_run_find(&c, "a=b") != NULL &&
	    streq(cfg_run_find(&c, "n")->dir, "/y=z"),
	    "--watch: '=' after a '/' is part of DIR");
	cfg_cleanup(&c);

	ok(args(&c, &cmd, &eb, "--watch", "a=/x", "--config", p, "--watch",
	    "filerun=/z", NULL) == SPD_EINVAL &&
	    has(&eb, "--watch: duplicate run name 'filerun'"),
	    "duplicate of a file run rejected");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--watch", "/a/run", "--watch", "/b/run",
	    NULL) == SPD_EINVAL && has(&eb, "duplicate run name 'run'"),
	    "two dirs with one basename rejected");
	cfg_cleanup(&c);

	ok(args(&c, &cmd, &eb, "--db", "/tmp/x.db", "--backend", "cuda",
	    "--threads", "3", "--settle-ms", "0", "--web-dir", "/w",
	    "--api-token", "tok", "--log-level", "warning", "--devices", "1",
	    "--max-inflight-bytes", "2G", "--include-1d", "--no-backfill",
	    "--keep-spectra=false", "--incomplete-grace-s", "2", NULL) ==
	    SPD_OK, "every flag");
	ok(c.incomplete_grace_s == 2, "--incomplete-grace-s");
	ok(streq(c.db, "/tmp/x.db") && c.backend == CFG_BACKEND_CUDA &&
	    c.threads == 3 && c.settle_ms == 0 && streq(c.web_dir, "/w") &&
	    streq(c.api_token, "tok") && c.log_level == LOG_WARNING &&
	    streq(c.devices, "1") && c.max_inflight_bytes == 2ull << 30,
	    "flag values applied");
	ok(c.include_1d && !c.backfill && !c.keep_spectra,
	    "--include-1d, --no-backfill, --keep-spectra=false");
	cfg_cleanup(&c);

	ok(args(&c, &cmd, &eb, "--include-embeddings", "false", "--backfill",
	    "no", "--keep-spectra", "--split-3d", "--watch", "/r", NULL) ==
	    SPD_OK && !c.include_embeddings && !c.backfill && c.keep_spectra &&
	    c.split_3d && cfg_run_find(&c, "r") != NULL,
	    "boolean flags take a following true/false word, or stand alone");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--include-embeddings", "maybe", NULL) ==
	    SPD_EINVAL && has(&eb, "unexpected argument 'maybe'"),
	    "a boolean flag leaves a non-boolean word alone: %s", eb.msg);
	cfg_cleanup(&c);

	ok(args(&c, &cmd, &eb, "--log-level", "err", "-v", NULL) == SPD_OK &&
	    c.log_level == LOG_DEBUG, "-v after --log-level: debug");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--bogus", "--help", NULL) == SPD_OK &&
	    cmd == CFG_CMD_HELP, "--help wins over bad flags");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--version", NULL) == SPD_OK &&
	    cmd == CFG_CMD_VERSION, "--version");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--watch", "--help", NULL) == SPD_OK &&
	    cmd == CFG_CMD_RUN && cfg_run_find(&c, "--help") != NULL,
	    "--help as the value of --watch is a directory name");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--bogus", NULL) == SPD_EINVAL &&
	    has(&eb, "unknown option '--bogus'"), "unknown flag");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "stray", NULL) == SPD_EINVAL &&
	    has(&eb, "unexpected argument 'stray'"), "stray argument");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--threads", NULL) == SPD_EINVAL &&
	    has(&eb, "--threads needs a value"), "missing value");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--top-percent", "0", NULL) == SPD_EINVAL &&
	    has(&eb, "--top-percent: expected an integer 1..100"),
	    "bad flag value names the flag");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--config", p, "--config=x", NULL) ==
	    SPD_EINVAL && has(&eb, "--config given twice"), "--config twice");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--config", "/nonexistent.conf", NULL) ==
	    SPD_ENOTFOUND, "--config missing file");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--watch", "=/x", NULL) == SPD_EINVAL,
	    "--watch =DIR: empty name");
	cfg_cleanup(&c);
	ok(args(&c, &cmd, &eb, "--watch", "/", NULL) == SPD_EINVAL &&
	    has(&eb, "bad run name"), "--watch /: no name to derive");
	cfg_cleanup(&c);

	if (getcwd(cwd, sizeof cwd) != NULL) {
		base = strrchr(cwd, '/');
		ok(args(&c, &cmd, &eb, "--watch", ".", NULL) == SPD_OK &&
		    c.nruns == 1 && streq(c.runs[0].name, base + 1) &&
		    streq(c.runs[0].dir, "."), "--watch .: named after cwd");
		cfg_cleanup(&c);
	}
}

static void
test_set(void)
{
	struct spd_errbuf	eb;
	struct cfg		c;
	static const struct {
		const char	*key, *val;
		enum spd_err	 rc;
	} cases[] = {
		{ "max_inflight_bytes", "1024K", SPD_OK },
		{ "max_inflight_bytes", "1GiB", SPD_OK },
		{ "max_inflight_bytes", "3gb", SPD_OK },
		{ "max_inflight_bytes", "1K", SPD_EINVAL },
		{ "max_inflight_bytes", "10X", SPD_EINVAL },
		{ "max_inflight_bytes", "1 G", SPD_EINVAL },
		{ "max_inflight_bytes", "99999999999999999999", SPD_EINVAL },
		{ "max_inflight_bytes", "17179869184T", SPD_EINVAL },
		{ "devices", "0,1,7", SPD_OK },
		{ "devices", "", SPD_OK },
		{ "devices", "0,0", SPD_EINVAL },
		{ "devices", "0,", SPD_EINVAL },
		{ "devices", "x", SPD_EINVAL },
		{ "threads", "+3", SPD_EINVAL },
		{ "threads", " 3", SPD_EINVAL },
		{ "threads", "4097", SPD_EINVAL },
		{ "threads", "18446744073709551617", SPD_EINVAL },
		{ "log_level", "error", SPD_EINVAL },
		{ "backfill", "TRUE", SPD_OK },
		{ "http_per_ip_connections", "0", SPD_OK },
		{ "http_max_connections", "15", SPD_EINVAL },
		{ "http_timeout_s", "0", SPD_EINVAL },
		{ "http_threads", "0", SPD_EINVAL },
		{ "http_threads", "65", SPD_EINVAL },
		{ "stickiness", "3", SPD_OK },
		{ "stickiness", "-1", SPD_EINVAL },
		{ "lr_scale_max", "1", SPD_OK },
		{ "lr_scale_max", "3.5", SPD_OK },
		{ "lr_scale_max", ".5", SPD_EINVAL },
		{ "lr_scale_max", "0x2", SPD_EINVAL },
		{ "lr_scale_max", "inf", SPD_EINVAL },
		{ "lr_scale_max", "nan", SPD_EINVAL },
		{ "lr_scale_max", "2.0 ", SPD_EINVAL },
		{ "lr_scale_max", "1e9", SPD_EINVAL },
		{ "alert_jump_factor", "0", SPD_OK },
		{ "alert_jump_factor", "1.5", SPD_OK },
		{ "alert_jump_factor", "1000", SPD_OK },
		{ "alert_jump_factor", "1", SPD_EINVAL },
		{ "alert_jump_factor", "0.5", SPD_EINVAL },
		{ "alert_jump_factor", "1001", SPD_EINVAL },
		{ "alert_jump_factor", "-2", SPD_EINVAL },
		{ "alert_jump_factor", "nan", SPD_EINVAL },
		{ "alert_stall_factor", "0", SPD_OK },
		{ "alert_stall_factor", "1.01", SPD_OK },
		{ "alert_stall_factor", "1.0", SPD_EINVAL },
		{ "alert_churn_window", "1", SPD_OK },
		{ "alert_churn_window", "100", SPD_OK },
		{ "alert_churn_window", "0", SPD_EINVAL },
		{ "alert_churn_window", "101", SPD_EINVAL },
		{ "alert_churn_min", "0", SPD_OK },
		{ "alert_churn_min", "101", SPD_EINVAL },
		{ "no_such_key", "1", SPD_ENOTFOUND },
	};
	size_t i;

	cfg_init(&c, &eb);
	for (i = 0; i < nitems(cases); i++)
		ok(cfg_set(&c, cases[i].key, cases[i].val, &eb) == cases[i].rc,
		    "cfg_set %s = '%s' → %s", cases[i].key, cases[i].val,
		    spd_strerror(cases[i].rc));
	ok(cfg_set(&c, "max_inflight_bytes", "3gb", &eb) == SPD_OK &&
	    c.max_inflight_bytes == 3ull << 30, "3gb = 3 GiB");
	ok(cfg_set(&c, "top_percent", "50", &eb) == SPD_OK &&
	    cfg_set(&c, "top_percent", "500", &eb) == SPD_EINVAL &&
	    c.top_percent == 50, "a failed set leaves the value");
	ok(cfg_set(&c, "lr_scale_max", "2.5", &eb) == SPD_OK &&
	    c.lr_scale_max == 2.5, "lr_scale_max 2.5");
	ok(cfg_set(&c, "alert_jump_factor", "0.5", &eb) == SPD_EINVAL &&
	    strstr(eb.msg, "alert_jump_factor") != NULL &&
	    strstr(eb.msg, "0 (off) or a number above 1 up to 1000") != NULL,
	    "a bad factor names the key and the range: %s", eb.msg);
	ok(cfg_set(&c, "api_token", "abc", &eb) == SPD_OK &&
	    cfg_set(&c, "api_token", "", &eb) == SPD_OK && c.api_token == NULL,
	    "empty api_token: none");
	cfg_cleanup(&c);
}

static void
test_addr(void)
{
	static const struct {
		const char	*s;
		bool		 good;
		int		 family;
		unsigned	 port;
	} cases[] = {
		{ "127.0.0.1:8420", true, AF_INET, 8420 },
		{ "0.0.0.0:65535", true, AF_INET, 65535 },
		{ "[::1]:0", true, AF_INET6, 0 },
		{ "[::]:8420", true, AF_INET6, 8420 },
		{ "[fe80::1:2]:80", true, AF_INET6, 80 },
		{ "::1:80", false, 0, 0 },
		{ "127.0.0.1", false, 0, 0 },
		{ "127.0.0.1:", false, 0, 0 },
		{ "127.0.0.1:65536", false, 0, 0 },
		{ "127.0.0.1:-1", false, 0, 0 },
		{ "127.0.0.1:80x", false, 0, 0 },
		{ "127.0.0.1: 80", false, 0, 0 },
		{ "1.2.3:80", false, 0, 0 },
		{ "localhost:80", false, 0, 0 },
		{ ":80", false, 0, 0 },
		{ "[::1]80", false, 0, 0 },
		{ "[::1]", false, 0, 0 },
		{ "[1.2.3.4]:80", false, 0, 0 },
		{ "[zz]:80", false, 0, 0 },
		{ "", false, 0, 0 },
	};
	struct spd_errbuf	 eb;
	struct cfg_addr		 a;
	struct sockaddr_in	*in4 = (struct sockaddr_in *)&a.ss;
	struct sockaddr_in6	*in6 = (struct sockaddr_in6 *)&a.ss;
	enum spd_err		 rc;
	size_t			 i;
	bool			 pass;

	for (i = 0; i < nitems(cases); i++) {
		memset(&a, 0xa5, sizeof a);
		rc = cfg_parse_addr(cases[i].s, &a, &eb);
		if (!cases[i].good) {
			ok(rc == SPD_EINVAL, "addr '%s' rejected (%s)",
			    cases[i].s, rc == SPD_EINVAL ? eb.msg : "");
			continue;
		}
		pass = rc == SPD_OK && a.port == cases[i].port &&
		    a.ss.ss_family == cases[i].family;
		if (pass && cases[i].family == AF_INET)
			pass = a.len == sizeof *in4 &&
			    ntohs(in4->sin_port) == cases[i].port;
		else if (pass)
			pass = a.len == sizeof *in6 &&
			    ntohs(in6->sin6_port) == cases[i].port;
		ok(pass, "addr '%s' parsed", cases[i].s);
	}
	cfg_parse_addr("127.0.0.1:1", &a, &eb);
	ok(in4->sin_addr.s_addr == htonl(INADDR_LOOPBACK), "127.0.0.1 bytes");
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(top, sizeof top, "%s/test_cfg.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_defaults();
	test_file();
	test_file_errors();
	test_args();
	test_set();
	test_addr();
	remove(conf("good.conf", ""));
	remove(conf("bad.conf", ""));
	remove(conf("flags.conf", ""));
	rmdir(top);
	return tap_done();
}
