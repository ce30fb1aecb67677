/*
 * health.h: what the daemon knows about the ground under it, for /ready,
 * /runs and /metrics: whether the database takes writes, whether each run
 * directory is watched, and counters of database errors and of
 * checkpoints given up as incomplete. Thread-safe: the main loop and the
 * worker write, HTTP threads read.
 */
#ifndef SPECTRUMD_HEALTH_H
#define SPECTRUMD_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "spectrumd/common.h"

/* The database as the last write found it. */
enum health_db {
	HEALTH_DB_OK,		/* writes succeed */
	HEALTH_DB_FULL,		/* SQLITE_FULL: no space; retried */
	HEALTH_DB_ERROR,	/* another I/O error; retried */
	HEALTH_DB_GONE,		/* the file was deleted or replaced */
	HEALTH_DB_NSTATE
};

/* A run directory as the main loop sees it. */
enum health_run {
	HEALTH_RUN_UNKNOWN,	/* not looked at yet */
	HEALTH_RUN_WATCHING,	/* inotify watches it */
	HEALTH_RUN_MISSING,	/* it does not exist: retried every second */
	HEALTH_RUN_UNWATCHED	/* it exists but cannot be watched */
};

struct health_stats {
	enum health_db	 db;
	uint64_t	 db_errors[HEALTH_DB_NSTATE];	/* by kind; [OK] = 0 */
	uint64_t	 given_up;	/* incomplete checkpoints failed */
};

struct health;

/* Allocates the state (database ok, no runs). NULL when out of memory. */
struct health	*health_new(void);
void		 health_free(struct health *h);	/* NULL-safe */

/*
 * Sets the database state and its reason (copied, may be NULL). Returns
 * the previous state, so the caller logs only changes.
 */
enum health_db	 health_set_db(struct health *h, enum health_db s,
		    const char *why);
/* The database state; the reason into why (len > 0) when not ok. */
enum health_db	 health_db(struct health *h, char *why, size_t len);
/* Counts one failed database write of kind k (not HEALTH_DB_OK). */
void		 health_count_db_error(struct health *h, enum health_db k);
/* Counts one checkpoint recorded failed after its incomplete grace. */
void		 health_count_given_up(struct health *h);
void		 health_get(struct health *h, struct health_stats *out);

/*
 * Replaces the list of runs (names copied, states unknown). Returns SPD_OK
 * or SPD_ENOMEM (the old list stays).
 */
enum spd_err	 health_set_runs(struct health *h, const char *const *names,
		    size_t n);
/* Sets the state of run i of the list; out of range is ignored. */
void		 health_set_run(struct health *h, size_t i, enum health_run s);
/* The state of the run called name; HEALTH_RUN_UNKNOWN when not listed. */
enum health_run	 health_run(struct health *h, const char *name);

/* "ok", "full", "error", "gone". */
const char	*health_db_name(enum health_db s);
/* "unknown", "watching", "missing", "unwatched". */
const char	*health_run_name(enum health_run s);

#endif
