/*
 * watch.h: finding checkpoints in a run directory (DESIGN.md §3). Two
 * independent parts:
 *  - watch_scan() classifies what one run directory holds right now (no
 *    inotify, no timing: call it once the directory has settled);
 *  - struct watch wraps inotify and says which runs (tags) changed.
 * The daemon remembers a deadline now + settle_ms for each changed tag and
 * scans the run once the deadline passes without a newer change; after an
 * overflow it rescans every run.
 */
#ifndef SPECTRUMD_WATCH_H
#define SPECTRUMD_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "spectrumd/common.h"

#define WATCH_MAX_FOUND		100000	/* entries per scan */
#define WATCH_MAX_JSON		(64u << 20)	/* trainer_state / index */

enum watch_state {
	WF_COMPLETE,		/* every weight file is whole: analyse it */
	WF_INCOMPLETE,		/* still being written (reason says what) */
	WF_UNSUPPORTED		/* a layout we do not read (reason: way out) */
};

/* One checkpoint (or one unsupported thing) found in a run directory. */
struct watch_found {
	char		*path;		/* checkpoint dir; run dir (plain) */
	long long	 step;		/* -1: unknown (plain: daemon counts) */
	double		 mtime;		/* unix seconds: trainer_state.json,
					   newest weight file, or the item */
	enum watch_state state;
	char		*reason;	/* NULL when complete */
	char		*fingerprint;	/* plain layout when complete: changes
					   whenever a weight file is replaced;
					   else NULL */
};

/*
 * Classifies the contents of the run directory dir:
 *  - HF Trainer: each subdirectory checkpoint-<digits> (tmp-checkpoint-*
 *    and dot-names are ignored). Complete when trainer_state.json parses
 *    and the weights are whole: model.safetensors, or
 *    model.safetensors.index.json and every shard it names, each exactly the
 *    size its header implies. step = trainer_state.json "global_step", else
 *    the directory suffix. Without safetensors weights it is unsupported
 *    when it holds pickles, a DeepSpeed global_step* dir, FSDP *.distcp
 *    files or only a PEFT adapter; else incomplete.
 *  - Plain: *.safetensors files (or an index) directly in dir: one entry
 *    whose path is dir, step = __metadata__["step"] of the first file (in
 *    name order) or -1, with a fingerprint.
 *  - Unsupported, one entry each: DeepSpeed global_step<N>/ (step N), a
 *    subdirectory holding *.distcp files, Lightning *.ckpt files (step from
 *    "step=S"), and PyTorch weight pickles directly in dir (path = dir).
 * Anything that vanishes while it is examined (rotation) is left out, not
 * an error. Entries are sorted by step, then path.
 * Returns SPD_OK with *out (free with watch_found_free(*out, *n); *out may
 * be NULL when *n is 0), SPD_ENOTFOUND (dir itself does not exist),
 * SPD_EIO (dir cannot be read), SPD_EFORMAT (more than WATCH_MAX_FOUND
 * entries) or SPD_ENOMEM. Reentrant.
 */
enum spd_err	 watch_scan(const char *dir, struct watch_found **out,
		    size_t *n, struct spd_errbuf *eb);
/* Frees n entries and the array v. NULL-safe. */
void		 watch_found_free(struct watch_found *v, size_t n);

/* Returns "complete", "incomplete" or "unsupported". */
const char	*watch_state_name(enum watch_state s);

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
