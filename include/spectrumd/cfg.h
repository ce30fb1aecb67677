/*
 * cfg.h: the daemon's configuration (DESIGN.md §7). Built-in defaults, then
 * a `key = value` file with [run NAME] sections, then command-line flags;
 * every value is validated once, by one table, and struct cfg is read-only
 * afterwards. Not thread-safe while being built; immutable once built.
 *
 * SIGHUP: build a fresh struct with cfg_init() + cfg_parse_args() on the
 * same argv (which reloads --config), compare its runs with the running
 * ones by name (cfg_run_find) to add, drop or re-point watches, then
 * cfg_cleanup() whichever struct is no longer used. Other keys take effect
 * on restart only. On failure keep the running config.
 */
#ifndef SPECTRUMD_CFG_H
#define SPECTRUMD_CFG_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spectrumd/common.h"

#define CFG_MAX_RUNS	256
#define CFG_MAX_FILE	(1u << 20)	/* bytes of a config file */
#define CFG_MAX_LINE	65536		/* bytes of one line (long api_token) */
#define CFG_MAX_NAME	128		/* bytes of a run name */
#define CFG_MAX_CHURN_WINDOW 100	/* = ALERT_MAX_WINDOW */

enum cfg_backend { CFG_BACKEND_AUTO, CFG_BACKEND_CPU, CFG_BACKEND_CUDA };

/* One watched run directory. */
struct cfg_run {
	char	*name;		/* unique; no '/', no control bytes */
	char	*dir;		/* as given, trailing '/' removed */
};

/* Every setting; strings are owned by the struct (cfg_cleanup frees). */
struct cfg {
	char		*listen;		/* "127.0.0.1:8420", valid */
	char		*db;			/* see cfg_init */
	enum cfg_backend backend;		/* auto */
	unsigned	 threads;		/* 0 = all cores */
	char		*devices;		/* "0,1"; "" = all */
	unsigned	 top_percent;		/* 1..100, 25 */
	unsigned	 settle_ms;		/* 2000 */
	unsigned	 incomplete_grace_s;	/* 600: then incomplete is failed */
	bool		 backfill;		/* true */
	bool		 keep_spectra;		/* true */
	bool		 reuse;			/* true: reuse by fingerprint */
	bool		 include_embeddings;	/* true */
	bool		 include_1d;		/* false */
	bool		 split_3d;		/* false */
	bool		 group_experts;		/* false */
	uint64_t	 max_inflight_bytes;	/* 1 GiB; K/M/G/T suffixes */
	char		*api_token;		/* NULL = no token required */
	char		*web_dir;		/* SPD_WEBDIR */
	int		 log_level;		/* LOG_ERR..LOG_DEBUG; info */
	unsigned	 http_max_connections;	/* 4096 */
	unsigned	 http_per_ip_connections; /* 256; 0 = no limit */
	unsigned	 http_timeout_s;	/* 30: idle / request deadline */
	unsigned	 http_threads;		/* 4: event-loop threads */
	unsigned	 stickiness;		/* 0: selection hysteresis, ranks */
	double		 lr_scale_max;		/* 2.0: /lr_scales at rank 1 */
	double		 alert_jump_factor;	/* 2: SNR/alpha ratio; 0 = off */
	double		 alert_stall_factor;	/* 3: × usual interval; 0 = off */
	unsigned	 alert_churn_window;	/* 5: checkpoints looked at */
	unsigned	 alert_churn_min;	/* 3: changes among them; 0 = off */
	struct cfg_run	*runs;
	size_t		 nruns;
};

/* What the command line asks for besides running. */
enum cfg_cmd { CFG_CMD_RUN, CFG_CMD_HELP, CFG_CMD_VERSION };

/*
 * Fills c with the defaults. db is $STATE_DIRECTORY/spectrumd.db (the
 * first directory when systemd lists several) when that is set, else
 * ./spectrumd.db. Returns SPD_OK or SPD_ENOMEM (c is then cleaned up).
 */
enum spd_err	 cfg_init(struct cfg *c, struct spd_errbuf *eb);

/* Frees everything c owns and zeroes it. NULL-safe; safe to repeat. */
void		 cfg_cleanup(struct cfg *c);

/*
 * Sets one key from its text, as a config line would (e.g. "top_percent",
 * "30"; sizes take K/M/G/T, bools true/false/yes/no/on/off/1/0). Returns
 * SPD_OK, SPD_ENOTFOUND (unknown key), SPD_EINVAL (bad value; eb says what
 * is allowed) or SPD_ENOMEM. On failure c is unchanged.
 */
enum spd_err	 cfg_set(struct cfg *c, const char *key, const char *value,
		    struct spd_errbuf *eb);

/*
 * Adds a run. name NULL or "" takes the basename of dir ("." and ".." are
 * resolved with realpath). Returns SPD_OK, SPD_EINVAL (bad or duplicate
 * name, empty dir, more than CFG_MAX_RUNS) or SPD_ENOMEM.
 */
enum spd_err	 cfg_add_run(struct cfg *c, const char *name, const char *dir,
		    struct spd_errbuf *eb);

/* Returns the run called name, or NULL. Borrowed from c. */
const struct cfg_run *cfg_run_find(const struct cfg *c, const char *name);

/*
 * Reads the config file at path on top of c: `key = value` lines, `#` or
 * `;` comments (whole lines, or after whitespace in an unquoted value),
 * values optionally in "double quotes" (\" and \\ escapes), and
 * `[run NAME]` sections whose only key is `dir`. Returns SPD_OK, what
 * spd_read_file() returns for the file itself (SPD_ENOTFOUND: no such
 * file; SPD_EUNSUPPORTED: not a regular file; SPD_EFORMAT: over
 * CFG_MAX_FILE bytes; SPD_EBUSY: grew while read; SPD_EIO), SPD_EINVAL (eb:
 * "path:line: key: why" for unknown keys, bad values, bad sections, a
 * section without dir, duplicate runs, lines over CFG_MAX_LINE) or
 * SPD_ENOMEM. On failure c may hold part of the file: cfg_cleanup it.
 */
enum spd_err	 cfg_load_file(struct cfg *c, const char *path,
		    struct spd_errbuf *eb);

/*
 * Applies the daemon's command line (argv[0] is the program and is
 * skipped). --config FILE (or --config=FILE, once) is loaded first wherever
 * it appears, then the other flags apply in order, so they override it:
 * --watch [NAME=]DIR (repeatable; NAME= only when NAME has no '/'),
 * --listen, --db, --backend, --threads, --top-percent, --settle-ms,
 * --web-dir, --api-token, --log-level, and every other key of the table as
 * --key-with-dashes VALUE or --key=VALUE; bool keys as --key / --no-key;
 * -v is --log-level=debug. --help/-h and --version stop parsing: *cmd says
 * which and nothing is loaded. Returns SPD_OK and *cmd, SPD_EINVAL
 * (unknown flag, missing or bad value, stray argument; eb names the flag;
 * or keys at odds with each other once all is read, e.g. alert_churn_min
 * above alert_churn_window), cfg_load_file()'s errors, or SPD_ENOMEM. On
 * failure cfg_cleanup c.
 */
enum spd_err	 cfg_parse_args(struct cfg *c, int argc, char *const argv[],
		    enum cfg_cmd *cmd, struct spd_errbuf *eb);

/* Returns "auto", "cpu" or "cuda". */
const char	*cfg_backend_name(enum cfg_backend b);

/* A parsed listen address. */
struct cfg_addr {
	struct sockaddr_storage	 ss;		/* AF_INET or AF_INET6 */
	socklen_t		 len;
	unsigned		 port;		/* 0: ephemeral (tests) */
};

/*
 * Parses "A.B.C.D:PORT" or "[IPv6]:PORT" (numeric only, port 0..65535)
 * into *out. Returns SPD_OK or SPD_EINVAL (eb says why). Pure.
 */
enum spd_err	 cfg_parse_addr(const char *s, struct cfg_addr *out,
		    struct spd_errbuf *eb);

#endif
