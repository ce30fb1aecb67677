/*
 * cfg.c: the configuration table, the config-file reader and the daemon's
 * flags. Every key is one row of cfg_table (name, type, place, bounds,
 * default); the file, the flags and the defaults all go through the same
 * setter, so a default can never be a value the parser would refuse.
 */
#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "spectrumd/cfg.h"

#ifndef SPD_WEBDIR
#define SPD_WEBDIR	"web"
#endif

#define DB_NAME		"spectrumd.db"
#define KEY_MAX		64	/* bytes of a key name */
#define MAX_DEVICE	1023
#define SHOWN		"%.80s"	/* how much of a bad value a message quotes */

enum cfg_type {
	CT_STR,		/* non-empty string */
	CT_TOKEN,	/* string; empty = none (NULL) */
	CT_ADDR,	/* HOST:PORT */
	CT_DEVICES,	/* "0,1" or "" */
	CT_UINT,	/* unsigned in [min, max] */
	CT_SIZE,	/* uint64_t bytes with K/M/G/T, in [min, max] */
	CT_BOOL,
	CT_ENUM,	/* an int from enums[] */
	CT_DOUBLE,	/* finite decimal number in [min, max] */
	CT_FACTOR	/* 0 (off), or a number above 1 up to max */
};

struct cfg_enum {
	const char	*name;
	int		 value;
};

struct cfg_entry {
	const char		*name;
	enum cfg_type		 type;
	size_t			 off;
	uint64_t		 min, max;
	const struct cfg_enum	*enums;		/* NULL-terminated */
	const char		*def;		/* NULL: computed or none */
};

static const struct cfg_enum backends[] = {
	{ "auto", CFG_BACKEND_AUTO }, { "cpu", CFG_BACKEND_CPU },
	{ "cuda", CFG_BACKEND_CUDA }, { NULL, 0 }
};
static const struct cfg_enum levels[] = {
	{ "err", LOG_ERR }, { "warning", LOG_WARNING },
	{ "notice", LOG_NOTICE }, { "info", LOG_INFO },
	{ "debug", LOG_DEBUG }, { NULL, 0 }
};

#define O(f)	offsetof(struct cfg, f)
static const struct cfg_entry cfg_table[] = {
	{ "listen", CT_ADDR, O(listen), .def = "127.0.0.1:8420" },
	{ "db", CT_STR, O(db), .def = NULL },		/* cfg_init */
	{ "backend", CT_ENUM, O(backend), .enums = backends, .def = "auto" },
	{ "threads", CT_UINT, O(threads), 0, 4096, .def = "0" },
	{ "devices", CT_DEVICES, O(devices), .def = "" },
	{ "top_percent", CT_UINT, O(top_percent), 1, 100, .def = "25" },
	{ "settle_ms", CT_UINT, O(settle_ms), 0, 3600000, .def = "2000" },
	{ "incomplete_grace_s", CT_UINT, O(incomplete_grace_s), 0, 2592000,
	    .def = "600" },
	{ "backfill", CT_BOOL, O(backfill), .def = "true" },
	{ "keep_spectra", CT_BOOL, O(keep_spectra), .def = "true" },
	{ "reuse", CT_BOOL, O(reuse), .def = "true" },
	{ "include_embeddings", CT_BOOL, O(include_embeddings),
	    .def = "true" },
	{ "include_1d", CT_BOOL, O(include_1d), .def = "false" },
	{ "split_3d", CT_BOOL, O(split_3d), .def = "false" },
	{ "group_experts", CT_BOOL, O(group_experts), .def = "false" },
	{ "max_inflight_bytes", CT_SIZE, O(max_inflight_bytes), 1ull << 20,
	    1ull << 40, .def = "1G" },
	{ "api_token", CT_TOKEN, O(api_token), .def = NULL },
	{ "web_dir", CT_STR, O(web_dir), .def = SPD_WEBDIR },
	{ "log_level", CT_ENUM, O(log_level), .enums = levels,
	    .def = "info" },
	{ "http_max_connections", CT_UINT, O(http_max_connections), 16,
	    1000000, .def = "4096" },
	{ "http_per_ip_connections", CT_UINT, O(http_per_ip_connections), 0,
	    1000000, .def = "256" },
	{ "http_timeout_s", CT_UINT, O(http_timeout_s), 1, 3600,
	    .def = "30" },
	{ "http_threads", CT_UINT, O(http_threads), 1, 64, .def = "4" },
	{ "stickiness", CT_UINT, O(stickiness), 0, 1000000, .def = "0" },
	{ "lr_scale_max", CT_DOUBLE, O(lr_scale_max), 1, 1000, .def = "2.0" },
	{ "alert_jump_factor", CT_FACTOR, O(alert_jump_factor), 0, 1000,
	    .def = "2" },
	{ "alert_stall_factor", CT_FACTOR, O(alert_stall_factor), 0, 1000,
	    .def = "3" },
	{ "alert_churn_window", CT_UINT, O(alert_churn_window), 1,
	    CFG_MAX_CHURN_WINDOW, .def = "5" },
	{ "alert_churn_min", CT_UINT, O(alert_churn_min), 0,
	    CFG_MAX_CHURN_WINDOW, .def = "3" },
};
#undef O

_Static_assert(sizeof(enum cfg_backend) == sizeof(int),
    "CT_ENUM stores an int");

/* Returns the backend's name. */
const char *
cfg_backend_name(enum cfg_backend b)
{
	size_t i;

	for (i = 0; backends[i].name != NULL; i++)
		if (backends[i].value == (int)b)
			return backends[i].name;
	return "auto";
}

/* Rewrites eb as "prefix: <old message>". */
static enum spd_err
prefix_msg(struct spd_errbuf *eb, enum spd_err rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum spd_err
prefix_msg(struct spd_errbuf *eb, enum spd_err rc, const char *fmt, ...)
{
	char	pre[sizeof eb->msg], old[sizeof eb->msg];
	va_list	ap;

	if (eb == NULL)
		return rc;
	memcpy(old, eb->msg, sizeof old);
	old[sizeof old - 1] = '\0';
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	return spd_fail(eb, rc, "%s: %s", pre, old);
}

/*
 * Parses s as a whole unsigned decimal number (no sign, no blanks) into
 * *out. Returns the first byte after the digits, or NULL.
 */
static const char *
parse_u64(const char *s, uint64_t *out)
{
	unsigned long long	 v;
	char			*end;

	if (*s < '0' || *s > '9')
		return NULL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE || end == s)
		return NULL;
	*out = v;
	return end;
}

/* Parses a whole number in [min, max]. */
static bool
parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char	*end = parse_u64(s, out);

	return end != NULL && *end == '\0' && *out >= min && *out <= max;
}

/* Parses "N[K|M|G|T][i][B]" (binary multiples, any case) into bytes. */
static bool
parse_size(const char *s, uint64_t *out)
{
	static const char	 units[] = "KMGT";
	const char		*end, *u = NULL;
	uint64_t		 v, mul = 1;
	char			 ch;

	if ((end = parse_u64(s, &v)) == NULL)
		return false;
	ch = (char)(*end & ~0x20);		/* upper case */
	if (ch != '\0')
		u = strchr(units, ch);
	if (u != NULL) {
		mul = 1ull << (10 * (u - units + 1));
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
	} else if (*end == 'B' || *end == 'b')
		end++;
	return *end == '\0' && !__builtin_mul_overflow(v, mul, out);
}

/* Parses a whole finite decimal number in [min, max] (no blanks). */
static bool
parse_double(const char *s, uint64_t min, uint64_t max, double *out)
{
	char	*end;
	double	 v;

	if (((*s < '0' || *s > '9') && *s != '.') || strpbrk(s, "xX") != NULL)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno == ERANGE || end == s || *end != '\0' || !isfinite(v))
		return false;
	if (v < (double)min || v > (double)max)
		return false;
	*out = v;
	return true;
}

/* Parses a boolean word. */
static bool
parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < nitems(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* Checks a device list: "" or distinct numbers ≤ MAX_DEVICE, comma-joined. */
static bool
devices_ok(const char *s)
{
	bool		 seen[MAX_DEVICE + 1] = { false };
	const char	*p = s;
	uint64_t	 v;

	if (*s == '\0')
		return true;
	for (;;) {
		if ((p = parse_u64(p, &v)) == NULL || v > MAX_DEVICE || seen[v])
			return false;
		seen[v] = true;
		if (*p == '\0')
			return true;
		if (*p++ != ',')
			return false;
	}
}

/* Parses a listen address (see cfg.h). */
enum spd_err
cfg_parse_addr(const char *s, struct cfg_addr *out, struct spd_errbuf *eb)
{
	struct cfg_addr	 a;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&a.ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.ss;
	char		 host[INET6_ADDRSTRLEN];
	const char	*colon, *hs = s;
	size_t		 hl;
	uint64_t	 port;

	memset(&a, 0, sizeof a);
	if (*s == '[') {
		hs = s + 1;
		if ((colon = strchr(hs, ']')) == NULL || colon[1] != ':')
			return spd_fail(eb, SPD_EINVAL, "'" SHOWN "': expected "
			    "[IPv6]:PORT", s);
		hl = (size_t)(colon - hs);
		colon++;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return spd_fail(eb, SPD_EINVAL, "'" SHOWN "': expected "
			    "HOST:PORT", s);
		hl = (size_t)(colon - s);
		if (memchr(s, ':', hl) != NULL)
			return spd_fail(eb, SPD_EINVAL, "'" SHOWN "': an IPv6 "
			    "address needs brackets: [::1]:8420", s);
	}
	if (hl == 0 || hl >= sizeof host)
		return spd_fail(eb, SPD_EINVAL, "'" SHOWN "': bad host", s);
	memcpy(host, hs, hl);
	host[hl] = '\0';
	if (!parse_uint(colon + 1, 0, 65535, &port))
		return spd_fail(eb, SPD_EINVAL, "'" SHOWN "': port must be "
		    "0..65535", s);
	if (*s == '[' && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		a.len = sizeof *in6;
	} else if (*s != '[' && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		a.len = sizeof *in4;
	} else
		return spd_fail(eb, SPD_EINVAL, "'" SHOWN "': '%s' is not a "
		    "numeric %s address", s, host, *s == '[' ? "IPv6" : "IPv4");
	a.port = (unsigned)port;
	*out = a;
	return SPD_OK;
}

/* Finds the table row for key (dashes match underscores). */
static const struct cfg_entry *
entry_find(const char *key)
{
	char	k[KEY_MAX];
	size_t	i;

	for (i = 0; key[i] != '\0' && i + 1 < sizeof k; i++)
		k[i] = key[i] == '-' ? '_' : key[i];
	if (key[i] != '\0')
		return NULL;
	k[i] = '\0';
	for (i = 0; i < nitems(cfg_table); i++)
		if (strcmp(cfg_table[i].name, k) == 0)
			return &cfg_table[i];
	return NULL;
}

/* Replaces the string at field with a copy of s (NULL stays NULL). */
static enum spd_err
set_str(char **field, const char *s, struct spd_errbuf *eb)
{
	char *copy = NULL;

	if (s != NULL && (copy = strdup(s)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	free(*field);
	*field = copy;
	return SPD_OK;
}

/* Names the allowed values of an enum row into buf ("a|b|c"). */
static const char *
enum_names(const struct cfg_entry *e, char *buf, size_t size)
{
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; e->enums[i].name != NULL && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "|" : "",
		    e->enums[i].name);
	return buf;
}

/* Sets an enum row; c is unchanged on failure. */
static enum spd_err
set_enum(void *field, const struct cfg_entry *e, const char *v,
    struct spd_errbuf *eb)
{
	char	names[128];
	size_t	i;

	for (i = 0; e->enums[i].name != NULL; i++)
		if (strcmp(e->enums[i].name, v) == 0) {
			memcpy(field, &e->enums[i].value, sizeof(int));
			return SPD_OK;
		}
	return spd_fail(eb, SPD_EINVAL, "expected %s, got '" SHOWN "'",
	    enum_names(e, names, sizeof names), v);
}

/* Parses v by e's type and stores it in c; c is unchanged on failure. */
static enum spd_err
set_entry(struct cfg *c, const struct cfg_entry *e, const char *v,
    struct spd_errbuf *eb)
{
	struct cfg_addr	 a;
	char		*field = (char *)c + e->off;
	uint64_t	 u;
	double		 d;
	bool		 b;

	switch (e->type) {
	case CT_STR:
		if (*v == '\0')
			return spd_fail(eb, SPD_EINVAL, "must not be empty");
		return set_str((char **)(void *)field, v, eb);
	case CT_TOKEN:
		return set_str((char **)(void *)field, *v ? v : NULL, eb);
	case CT_ADDR:
		if (cfg_parse_addr(v, &a, eb) != SPD_OK)
			return SPD_EINVAL;
		return set_str((char **)(void *)field, v, eb);
	case CT_DEVICES:
		if (!devices_ok(v))
			return spd_fail(eb, SPD_EINVAL, "expected distinct "
			    "device numbers like 0,1 (empty: all), got '"
			    SHOWN "'", v);
		return set_str((char **)(void *)field, v, eb);
	case CT_UINT:
		if (!parse_uint(v, e->min, e->max, &u))
			return spd_fail(eb, SPD_EINVAL, "expected an integer "
			    "%" PRIu64 "..%" PRIu64 ", got '" SHOWN "'",
			    e->min, e->max, v);
		*(unsigned *)(void *)field = (unsigned)u;
		return SPD_OK;
	case CT_SIZE:
		if (!parse_size(v, &u) || u < e->min || u > e->max)
			return spd_fail(eb, SPD_EINVAL, "expected a size "
			    "1M..1T like 512M or 2G, got '" SHOWN "'", v);
		*(uint64_t *)(void *)field = u;
		return SPD_OK;
	case CT_BOOL:
		if (!parse_bool(v, &b))
			return spd_fail(eb, SPD_EINVAL, "expected true or "
			    "false, got '" SHOWN "'", v);
		*(bool *)(void *)field = b;
		return SPD_OK;
	case CT_ENUM:
		return set_enum(field, e, v, eb);
	case CT_DOUBLE:
		if (!parse_double(v, e->min, e->max, &d))
			return spd_fail(eb, SPD_EINVAL, "expected a number "
			    "%" PRIu64 "..%" PRIu64 ", got '" SHOWN "'",
			    e->min, e->max, v);
		*(double *)(void *)field = d;
		return SPD_OK;
	case CT_FACTOR:
		if (!parse_double(v, e->min, e->max, &d) || (d > 0 && d <= 1))
			return spd_fail(eb, SPD_EINVAL, "expected 0 (off) or a "
			    "number above 1 up to %" PRIu64 ", got '" SHOWN "'",
			    e->max, v);
		*(double *)(void *)field = d;
		return SPD_OK;
	}
	return spd_fail(eb, SPD_EINTERNAL, "bad table row");
}

/* Sets one key (see cfg.h). */
enum spd_err
cfg_set(struct cfg *c, const char *key, const char *value,
    struct spd_errbuf *eb)
{
	const struct cfg_entry	*e;
	enum spd_err		 rc;

	if ((e = entry_find(key)) == NULL)
		return spd_fail(eb, SPD_ENOTFOUND, "unknown key '" SHOWN "'",
		    key);
	if ((rc = set_entry(c, e, value, eb)) != SPD_OK)
		return prefix_msg(eb, rc, "%s", e->name);
	return SPD_OK;
}

/* Frees everything c owns. */
void
cfg_cleanup(struct cfg *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < nitems(cfg_table); i++)
		if (cfg_table[i].type == CT_STR ||
		    cfg_table[i].type == CT_TOKEN ||
		    cfg_table[i].type == CT_ADDR ||
		    cfg_table[i].type == CT_DEVICES)
			free(*(char **)(void *)((char *)c + cfg_table[i].off));
	for (i = 0; i < c->nruns; i++) {
		free(c->runs[i].name);
		free(c->runs[i].dir);
	}
	free(c->runs);
	memset(c, 0, sizeof *c);
}

/* Returns the default database path. */
static char *
default_db(void)
{
	const char	*sd = getenv("STATE_DIRECTORY");
	size_t		 n;
	char		*p;

	if (sd == NULL || *sd == '\0' || *sd == ':')
		return strdup("./" DB_NAME);
	n = strcspn(sd, ":");		/* systemd joins several with ':' */
	while (n > 1 && sd[n - 1] == '/')
		n--;
	if ((p = malloc(n + sizeof DB_NAME + 1)) == NULL)
		return NULL;
	memcpy(p, sd, n);
	if (sd[n - 1] != '/')
		p[n++] = '/';
	memcpy(p + n, DB_NAME, sizeof DB_NAME);
	return p;
}

/* Fills c with the defaults. */
enum spd_err
cfg_init(struct cfg *c, struct spd_errbuf *eb)
{
	enum spd_err	rc;
	size_t		i;

	memset(c, 0, sizeof *c);
	for (i = 0; i < nitems(cfg_table); i++) {
		if (cfg_table[i].def == NULL)
			continue;
		if ((rc = set_entry(c, &cfg_table[i], cfg_table[i].def,
		    eb)) != SPD_OK) {
			cfg_cleanup(c);
			return prefix_msg(eb, rc, "default %s",
			    cfg_table[i].name);
		}
	}
	if ((c->db = default_db()) == NULL) {
		cfg_cleanup(c);
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	}
	return SPD_OK;
}

/* Returns the run called name, or NULL. */
const struct cfg_run *
cfg_run_find(const struct cfg *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nruns; i++)
		if (strcmp(c->runs[i].name, name) == 0)
			return &c->runs[i];
	return NULL;
}

/* True when name can name a run: no '/', no control bytes, not . or .. */
static bool
run_name_ok(const char *name)
{
	const unsigned char *p;

	if (*name == '\0' || strlen(name) > CFG_MAX_NAME ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (p = (const unsigned char *)name; *p != '\0'; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/*
 * Derives a run name from the first dl bytes of dir: its last component,
 * resolved with realpath when that is "." or "..". Returns SPD_OK and
 * *out (malloc'ed), SPD_EINVAL or SPD_ENOMEM.
 */
static enum spd_err
name_from_dir(const char *dir, size_t dl, char **out, struct spd_errbuf *eb)
{
	enum spd_err	 rc = SPD_ENOMEM;
	const char	*base;
	char		*real = NULL, *copy;

	if ((copy = strndup(dir, dl)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	base = strrchr(copy, '/');
	base = base != NULL ? base + 1 : copy;
	if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
	    *base == '\0') {
		if ((real = realpath(copy, NULL)) == NULL) {
			rc = spd_fail(eb, SPD_EINVAL, "cannot name the run "
			    "for '" SHOWN "' (%s): use NAME=DIR", dir,
			    strerror(errno));
			goto out;
		}
		base = strrchr(real, '/');
		base = base != NULL ? base + 1 : real;
	}
	if ((*out = strdup(base)) != NULL)
		rc = SPD_OK;
	else
		spd_fail(eb, SPD_ENOMEM, "out of memory");
out:
	free(copy);
	free(real);
	return rc;
}

/* Adds a run (see cfg.h). */
enum spd_err
cfg_add_run(struct cfg *c, const char *name, const char *dir,
    struct spd_errbuf *eb)
{
	struct cfg_run	*nv;
	const struct cfg_run *dup;
	enum spd_err	 rc;
	size_t		 dl = strlen(dir);
	char		*n = NULL, *d = NULL;

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	if (dl == 0)
		return spd_fail(eb, SPD_EINVAL, "empty run directory");
	if (name == NULL || *name == '\0') {
		if ((rc = name_from_dir(dir, dl, &n, eb)) != SPD_OK)
			return rc;
	} else if ((n = strdup(name)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	if (!run_name_ok(n)) {
		spd_fail(eb, SPD_EINVAL, "bad run name '" SHOWN "' (1..%u "
		    "bytes, no '/', not . or ..)", n, CFG_MAX_NAME);
		goto fail;
	}
	if ((dup = cfg_run_find(c, n)) != NULL) {
		spd_fail(eb, SPD_EINVAL, "duplicate run name '" SHOWN "' (%s "
		    "and " SHOWN ")", n, dup->dir, dir);
		goto fail;
	}
	if (c->nruns >= CFG_MAX_RUNS) {
		spd_fail(eb, SPD_EINVAL, "more than %u runs", CFG_MAX_RUNS);
		goto fail;
	}
	if ((d = strndup(dir, dl)) == NULL ||
	    (nv = reallocarray(c->runs, c->nruns + 1, sizeof *nv)) == NULL) {
		free(d);
		free(n);
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	}
	c->runs = nv;
	c->runs[c->nruns++] = (struct cfg_run){ .name = n, .dir = d };
	return SPD_OK;
fail:
	free(n);
	return SPD_EINVAL;
}

/* --- the config file -------------------------------------------------- */

/* Where the reader is in a file. */
struct cfg_file {
	struct cfg	*c;
	const char	*path;
	unsigned	 line;
	bool		 in_run;	/* inside a [run NAME] section */
	char		*run_name;
	char		*run_dir;
	unsigned	 run_line;
};

/* Returns s without leading blanks; cuts trailing blanks in place. */
static char *
trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
	    s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

/*
 * Parses a value in place: a "quoted" string (\" and \\ escapes) followed
 * only by blanks or a comment, or bare text up to a comment that follows a
 * blank. Returns the value or NULL (eb says why).
 */
static char *
parse_value(char *s, struct spd_errbuf *eb)
{
	char *r, *w, *p;

	s = trim(s);
	if (*s != '"') {
		for (p = s; *p != '\0'; p++)
			if ((*p == '#' || *p == ';') && p > s &&
			    (p[-1] == ' ' || p[-1] == '\t')) {
				*p = '\0';
				break;
			}
		return trim(s);
	}
	for (r = w = s + 1; *r != '"'; r++, w++) {
		if (*r == '\0') {
			spd_fail(eb, SPD_EINVAL, "unterminated quote");
			return NULL;
		}
		if (*r == '\\' && (r[1] == '"' || r[1] == '\\'))
			r++;
		*w = *r;
	}
	*w = '\0';
	p = trim(r + 1);
	if (*p != '\0' && *p != '#' && *p != ';') {
		spd_fail(eb, SPD_EINVAL, "text after the closing quote");
		return NULL;
	}
	return s + 1;
}

/* Closes the open [run] section, adding its run. */
static enum spd_err
end_section(struct cfg_file *f, struct spd_errbuf *eb)
{
	enum spd_err rc = SPD_OK;

	if (!f->in_run)
		return SPD_OK;
	if (f->run_dir == NULL)
		rc = spd_fail(eb, SPD_EINVAL, "%s:%u: [run %s] has no dir",
		    f->path, f->run_line, f->run_name);
	else if ((rc = cfg_add_run(f->c, f->run_name, f->run_dir, eb)) !=
	    SPD_OK)
		rc = prefix_msg(eb, rc, "%s:%u: [run %s]", f->path,
		    f->run_line, f->run_name);
	free(f->run_name);
	free(f->run_dir);
	f->run_name = f->run_dir = NULL;
	f->in_run = false;
	return rc;
}

/* Handles a "[...]" line (s without the brackets). */
static enum spd_err
begin_section(struct cfg_file *f, char *s, struct spd_errbuf *eb)
{
	enum spd_err	 rc;
	char		*name;

	if ((rc = end_section(f, eb)) != SPD_OK)
		return rc;
	s = trim(s);
	if (strncmp(s, "run", 3) != 0 || (s[3] != ' ' && s[3] != '\t'))
		return spd_fail(eb, SPD_EINVAL, "%s:%u: unknown section [" SHOWN
		    "] (only [run NAME])", f->path, f->line, s);
	if ((name = parse_value(s + 4, eb)) == NULL)
		return prefix_msg(eb, SPD_EINVAL, "%s:%u", f->path, f->line);
	if (!run_name_ok(name))
		return spd_fail(eb, SPD_EINVAL, "%s:%u: bad run name '" SHOWN
		    "'", f->path, f->line, name);
	if ((f->run_name = strdup(name)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	f->in_run = true;
	f->run_line = f->line;
	return SPD_OK;
}

/* Handles one "key = value" line. */
static enum spd_err
key_value(struct cfg_file *f, char *s, struct spd_errbuf *eb)
{
	char	*eq = strchr(s, '='), *key, *val;

	if (eq == NULL)
		return spd_fail(eb, SPD_EINVAL, "%s:%u: expected key = value",
		    f->path, f->line);
	*eq = '\0';
	key = trim(s);
	if ((val = parse_value(eq + 1, eb)) == NULL)
		return prefix_msg(eb, SPD_EINVAL, "%s:%u: %s", f->path,
		    f->line, key);
	if (f->in_run) {
		if (strcmp(key, "dir") != 0)
			return spd_fail(eb, SPD_EINVAL, "%s:%u: unknown key '"
			    SHOWN "' in [run %s] (only dir)", f->path,
			    f->line, key, f->run_name);
		if (f->run_dir != NULL)
			return spd_fail(eb, SPD_EINVAL, "%s:%u: dir given "
			    "twice in [run %s]", f->path, f->line, f->run_name);
		if ((f->run_dir = strdup(val)) == NULL)
			return spd_fail(eb, SPD_ENOMEM, "out of memory");
		return SPD_OK;
	}
	if (cfg_set(f->c, key, val, eb) != SPD_OK)
		return prefix_msg(eb, SPD_EINVAL, "%s:%u", f->path, f->line);
	return SPD_OK;
}

/* Handles one line of the file. */
static enum spd_err
file_line(struct cfg_file *f, char *s, struct spd_errbuf *eb)
{
	size_t n;

	s = trim(s);
	if (*s == '\0' || *s == '#' || *s == ';')
		return SPD_OK;
	if (*s == '[') {
		n = strlen(s);
		if (s[n - 1] != ']')
			return spd_fail(eb, SPD_EINVAL, "%s:%u: section "
			    "without ']'", f->path, f->line);
		s[n - 1] = '\0';
		return begin_section(f, s + 1, eb);
	}
	return key_value(f, s, eb);
}

/* Reads the config file (see cfg.h). */
enum spd_err
cfg_load_file(struct cfg *c, const char *path, struct spd_errbuf *eb)
{
	struct cfg_file	 f = { .c = c, .path = path };
	enum spd_err	 rc;
	char		*buf = NULL, *line, *nl;
	size_t		 len = 0, n;

	rc = spd_read_file(AT_FDCWD, path, CFG_MAX_FILE, &buf, &len, NULL, eb);
	if (rc != SPD_OK)
		return rc;
	for (line = buf; rc == SPD_OK && line < buf + len; line += n + 1) {
		f.line++;
		nl = memchr(line, '\n', (size_t)(buf + len - line));
		n = nl != NULL ? (size_t)(nl - line) : (size_t)(buf + len -
		    line);
		if (n > CFG_MAX_LINE)
			rc = spd_fail(eb, SPD_EINVAL, "%s:%u: line longer "
			    "than %u bytes", path, f.line, CFG_MAX_LINE);
		else if (memchr(line, '\0', n) != NULL)
			rc = spd_fail(eb, SPD_EINVAL, "%s:%u: NUL byte", path,
			    f.line);
		else {
			line[n] = '\0';
			rc = file_line(&f, line, eb);
		}
	}
	if (rc == SPD_OK)
		rc = end_section(&f, eb);
	free(f.run_name);
	free(f.run_dir);
	free(buf);
	return rc;
}

/* --- the command line ------------------------------------------------- */

enum flag_kind {
	FK_UNKNOWN, FK_HELP, FK_VERSION, FK_CONFIG, FK_WATCH, FK_VERBOSE,
	FK_KEY,		/* takes a value */
	FK_BOOL_ON, FK_BOOL_OFF
};

/* A classified argument. */
struct flag {
	enum flag_kind		 kind;
	const struct cfg_entry	*e;
	const char		*inline_val;	/* after '=', or NULL */
	char			 name[KEY_MAX];	/* without the dashes */
};

/* Classifies one argument. */
static void
flag_classify(const char *arg, struct flag *fl)
{
	const char	*eq;
	size_t		 n;

	memset(fl, 0, sizeof *fl);
	if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
		fl->kind = FK_HELP;
	else if (strcmp(arg, "--version") == 0)
		fl->kind = FK_VERSION;
	else if (strcmp(arg, "-v") == 0)
		fl->kind = FK_VERBOSE;
	if (fl->kind != FK_UNKNOWN || strncmp(arg, "--", 2) != 0)
		return;
	arg += 2;
	eq = strchr(arg, '=');
	n = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	if (n == 0 || n >= sizeof fl->name)
		return;
	memcpy(fl->name, arg, n);
	fl->inline_val = eq != NULL ? eq + 1 : NULL;
	if (strcmp(fl->name, "config") == 0)
		fl->kind = FK_CONFIG;
	else if (strcmp(fl->name, "watch") == 0)
		fl->kind = FK_WATCH;
	else if ((fl->e = entry_find(fl->name)) != NULL)
		fl->kind = fl->e->type == CT_BOOL ? FK_BOOL_ON : FK_KEY;
	else if (strncmp(fl->name, "no-", 3) == 0 && eq == NULL &&
	    (fl->e = entry_find(fl->name + 3)) != NULL &&
	    fl->e->type == CT_BOOL)
		fl->kind = FK_BOOL_OFF;
}

/*
 * True when the flag takes the next argument (next, NULL at the end) as
 * its value: a key always, a boolean key when next is a boolean word
 * ("--include-embeddings false" as well as "--include-embeddings").
 */
static bool
flag_takes_next(const struct flag *fl, const char *next)
{
	bool b;

	if (fl->inline_val != NULL)
		return false;
	if (fl->kind == FK_BOOL_ON)
		return next != NULL && parse_bool(next, &b);
	return fl->kind == FK_CONFIG || fl->kind == FK_WATCH ||
	    fl->kind == FK_KEY;
}

/* Adds a run from "--watch [NAME=]DIR". */
static enum spd_err
add_watch(struct cfg *c, const char *v, struct spd_errbuf *eb)
{
	const char	*eq = strchr(v, '=');
	enum spd_err	 rc;
	char		*name;

	if (eq == v)
		return spd_fail(eb, SPD_EINVAL, "--watch: empty NAME in '"
		    SHOWN "'", v);
	if (eq == NULL || memchr(v, '/', (size_t)(eq - v)) != NULL)
		rc = cfg_add_run(c, NULL, v, eb);
	else if ((name = strndup(v, (size_t)(eq - v))) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	else {
		rc = cfg_add_run(c, name, eq + 1, eb);
		free(name);
	}
	return rc == SPD_OK ? SPD_OK : prefix_msg(eb, rc, "--watch");
}

/* Applies one flag with its value. */
static enum spd_err
flag_apply(struct cfg *c, const struct flag *fl, const char *arg,
    const char *val, struct spd_errbuf *eb)
{
	enum spd_err rc;

	switch (fl->kind) {
	case FK_WATCH:
		return add_watch(c, val, eb);
	case FK_VERBOSE:
		return cfg_set(c, "log_level", "debug", eb);
	case FK_KEY:
	case FK_BOOL_ON:
		if ((rc = set_entry(c, fl->e, val, eb)) != SPD_OK)
			return prefix_msg(eb, rc, "--%s", fl->name);
		return SPD_OK;
	case FK_BOOL_OFF:
		return set_entry(c, fl->e, "false", eb);
	case FK_CONFIG:
		return SPD_OK;		/* loaded before */
	default:
		return spd_fail(eb, SPD_EINVAL, "unknown option '" SHOWN
		    "' (see --help)", arg);
	}
}

/*
 * First pass: finds --help/--version (stop) and the --config file.
 * Returns SPD_OK or SPD_EINVAL (--config twice or without a file).
 */
static enum spd_err
args_prescan(int argc, char *const argv[], enum cfg_cmd *cmd,
    const char **config, struct spd_errbuf *eb)
{
	const char	*next;
	struct flag	 fl;
	int		 i;

	*cmd = CFG_CMD_RUN;
	*config = NULL;
	for (i = 1; i < argc; i++) {
		flag_classify(argv[i], &fl);
		if (fl.kind == FK_HELP || fl.kind == FK_VERSION) {
			*cmd = fl.kind == FK_HELP ? CFG_CMD_HELP :
			    CFG_CMD_VERSION;
			return SPD_OK;
		}
		next = i + 1 < argc ? argv[i + 1] : NULL;
		if (flag_takes_next(&fl, next) && ++i >= argc)
			return spd_fail(eb, SPD_EINVAL, "%s needs a value",
			    argv[i - 1]);
		if (fl.kind != FK_CONFIG)
			continue;
		if (*config != NULL)
			return spd_fail(eb, SPD_EINVAL, "--config given twice");
		*config = fl.inline_val != NULL ? fl.inline_val : argv[i];
		if (**config == '\0')
			return spd_fail(eb, SPD_EINVAL, "--config: empty path");
	}
	return SPD_OK;
}

/* Checks what one key's bounds cannot: keys that depend on each other. */
static enum spd_err
cfg_check(const struct cfg *c, struct spd_errbuf *eb)
{
	if (c->alert_churn_min > c->alert_churn_window)
		return spd_fail(eb, SPD_EINVAL, "alert_churn_min (%u) must "
		    "not exceed alert_churn_window (%u): the rule counts "
		    "changes among that many checkpoints", c->alert_churn_min,
		    c->alert_churn_window);
	return SPD_OK;
}

/* Applies the command line (see cfg.h). */
enum spd_err
cfg_parse_args(struct cfg *c, int argc, char *const argv[],
    enum cfg_cmd *cmd, struct spd_errbuf *eb)
{
	const char	*config, *val, *arg;
	struct flag	 fl;
	enum spd_err	 rc;
	int		 i;

	if ((rc = args_prescan(argc, argv, cmd, &config, eb)) != SPD_OK ||
	    *cmd != CFG_CMD_RUN)
		return rc;
	if (config != NULL && (rc = cfg_load_file(c, config, eb)) != SPD_OK)
		return rc;
	for (i = 1; i < argc; i++) {
		flag_classify(argv[i], &fl);
		if (fl.kind == FK_UNKNOWN)
			return spd_fail(eb, SPD_EINVAL, "%s '" SHOWN "' (see "
			    "--help)", argv[i][0] == '-' ? "unknown option" :
			    "unexpected argument", argv[i]);
		arg = argv[i];
		val = fl.inline_val;
		if (flag_takes_next(&fl, i + 1 < argc ? argv[i + 1] :
		    NULL))
			val = argv[++i];	/* prescan checked i < argc */
		else if (val == NULL)
			val = "true";
		if ((rc = flag_apply(c, &fl, arg, val, eb)) != SPD_OK)
			return rc;
	}
	return cfg_check(c, eb);
}
