/*
 * watch.h: which runs changed (DESIGN.md §3): struct watch wraps inotify
 * and reports the runs (tags) whose directory or checkpoint directories
 * changed. The daemon remembers a deadline now + settle_ms for each changed
 * tag and scans the run (layout.h) once the deadline passes without a newer
 * change; after an overflow it rescans every run.
 */
#ifndef SPECTRUMD_WATCH_H
#define SPECTRUMD_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "spectrumd/common.h"

struct watch;

/*
 * Opens an inotify instance (non-blocking, close-on-exec). Returns SPD_OK
 * and *out (close with watch_close), SPD_EIO (eb says why, e.g. the
 * per-user instance limit) or SPD_ENOMEM. A watch is owned by one thread.
 */
enum spd_err	 watch_open(struct watch **out, struct spd_errbuf *eb);
void		 watch_close(struct watch *w);	/* NULL-safe */

/* The descriptor to poll() for POLLIN; borrowed, valid until watch_close. */
int		 watch_fd(const struct watch *w);

/*
 * Watches the run directory dir for tag (any int the caller chooses),
 * and each checkpoint-<digits> subdirectory in it now; later ones are
 * added by watch_read when they appear. Calling it again for the same tag
 * and dir (e.g. on a rescan) adds what is missing, never duplicates.
 * Returns SPD_OK, SPD_ENOTFOUND (dir does not exist or is not a
 * directory), SPD_EIO (e.g. fs.inotify.max_user_watches reached; eb says
 * so; the watches added so far stay) or SPD_ENOMEM.
 */
enum spd_err	 watch_add(struct watch *w, int tag, const char *dir,
		    struct spd_errbuf *eb);

/* What watch_root() finds. */
enum watch_root {
	WATCH_ROOT_OK,		/* the directory at dir is the one watched */
	WATCH_ROOT_MISSING,	/* dir does not exist or is not a directory */
	WATCH_ROOT_LOST		/* dir exists but is not (or no longer, e.g.
				   replaced by another) the one watched */
};

/*
 * Compares the run directory dir of tag with the watch on it (one stat).
 * A LOST tag is healed with watch_remove_all then watch_add. Never fails.
 */
enum watch_root	 watch_root(const struct watch *w, int tag, const char *dir);

/* Removes every watch of tag (run dir and subdirs). Unknown tags are fine. */
void		 watch_remove_all(struct watch *w, int tag);

/*
 * Drains the pending events without blocking. For each event of interest
 * calls changed(arg, tag) (possibly several times for one tag; changed
 * must not call watch functions: note the tag and act after); new
 * checkpoint subdirectories get their own watch first, so no write inside
 * them is missed once the caller scans. Sets *overflow to true when the
 * kernel queue overflowed (IN_Q_OVERFLOW: events were lost, the caller
 * must rescan every run); leaves it alone otherwise. A run directory that
 * is deleted or moved away reports its tag once and every watch of the
 * tag is dropped (watch_root then says so; watch_add it again after it
 * reappears). Returns SPD_OK, or SPD_EIO (reading failed,
 * or a new subdirectory could not be watched; events were still
 * delivered).
 */
enum spd_err	 watch_read(struct watch *w,
		    void (*changed)(void *arg, int tag), void *arg,
		    bool *overflow, struct spd_errbuf *eb);

#endif
