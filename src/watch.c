/*
 * watch.c: which runs changed, an inotify wrapper. The only file that
 * includes <sys/inotify.h>. Each run (a tag) is watched in its directory
 * and in each checkpoint-<digits> subdirectory; what a directory holds is
 * layout.c's job.
 */
#include "config.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spectrumd/layout.h"
#include "spectrumd/watch.h"

#define WATCH_MASK	(IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | \
			    IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | \
			    IN_MOVE_SELF | IN_ONLYDIR)

/* One inotify watch; several records may share a wd (two runs, one dir). */
struct wrec {
	int	 wd;
	int	 tag;
	bool	 root;		/* the run dir itself */
	bool	 lost;		/* root moved or deleted: drop the tag */
	dev_t	 dev;		/* of the root directory watched */
	ino_t	 ino;
	char	*path;
};

struct watch {
	int		 fd;
	struct wrec	*v;
	size_t		 n, cap;
};

/* Opens the inotify instance. */
enum spd_err
watch_open(struct watch **out, struct spd_errbuf *eb)
{
	struct watch *w;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	if ((w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1) {
		free(w);
		return spd_fail(eb, SPD_EIO, "inotify_init1: %s%s",
		    strerror(errno), errno == EMFILE ?
		    " (raise fs.inotify.max_user_instances)" : "");
	}
	*out = w;
	return SPD_OK;
}

/* Closes the instance and frees every record. */
void
watch_close(struct watch *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->n; i++)
		free(w->v[i].path);
	free(w->v);
	close(w->fd);
	free(w);
}

/* Returns the descriptor to poll. */
int
watch_fd(const struct watch *w)
{
	return w->fd;
}

/* Records (wd, tag) unless it is already known; root notes sb's inode. */
static enum spd_err
rec_add(struct watch *w, int wd, int tag, bool root, const char *path,
    const struct stat *sb)
{
	struct wrec	*nv;
	size_t		 i, cap;
	char		*p;

	for (i = 0; i < w->n; i++)
		if (w->v[i].wd == wd && w->v[i].tag == tag) {
			w->v[i].root = w->v[i].root || root;
			if (root) {
				w->v[i].dev = sb->st_dev;
				w->v[i].ino = sb->st_ino;
			}
			return SPD_OK;
		}
	if (w->n == w->cap) {
		cap = w->cap ? w->cap * 2 : 16;
		if ((nv = reallocarray(w->v, cap, sizeof *nv)) == NULL)
			return SPD_ENOMEM;
		w->v = nv;
		w->cap = cap;
	}
	if ((p = strdup(path)) == NULL)
		return SPD_ENOMEM;
	w->v[w->n++] = (struct wrec){ .wd = wd, .tag = tag, .root = root,
	    .dev = sb->st_dev, .ino = sb->st_ino, .path = p };
	return SPD_OK;
}

/* Removes record i (order is not kept). */
static void
rec_del(struct watch *w, size_t i)
{
	free(w->v[i].path);
	w->v[i] = w->v[--w->n];
}

/* True when another record than i uses wd. */
static bool
wd_shared(const struct watch *w, size_t i)
{
	size_t j;

	for (j = 0; j < w->n; j++)
		if (j != i && w->v[j].wd == w->v[i].wd)
			return true;
	return false;
}

/*
 * Adds a watch on path for tag. A path that vanished or is not a directory
 * gives SPD_ENOTFOUND.
 */
static enum spd_err
add_one(struct watch *w, int tag, bool root, const char *path,
    struct spd_errbuf *eb)
{
	struct stat	sb;
	int		wd;

	if ((wd = inotify_add_watch(w->fd, path, WATCH_MASK)) == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			return spd_fail(eb, SPD_ENOTFOUND, "%s: %s", path,
			    strerror(errno));
		return spd_fail(eb, SPD_EIO, "inotify_add_watch %s: %s%s",
		    path, strerror(errno), errno == ENOSPC ?
		    " (raise fs.inotify.max_user_watches)" : "");
	}
	/* The inode now watched; a race with a rename shows as "lost" later. */
	if (stat(path, &sb) == -1)
		memset(&sb, 0, sizeof sb);
	if (rec_add(w, wd, tag, root, path, &sb) != SPD_OK)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	return SPD_OK;
}

/* Adds a watch on the checkpoint dir dir/name; vanished is fine. */
static enum spd_err
add_sub(struct watch *w, int tag, const char *dir, const char *name,
    struct spd_errbuf *eb)
{
	enum spd_err	 rc;
	char		*path;

	if ((path = spd_path_join(dir, name)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	rc = add_one(w, tag, false, path, eb);
	free(path);
	return rc == SPD_ENOTFOUND ? SPD_OK : rc;
}

/* Watches dir and its checkpoint subdirectories for tag. */
enum spd_err
watch_add(struct watch *w, int tag, const char *dir, struct spd_errbuf *eb)
{
	enum spd_err	 rc;
	struct dirent	*de;
	DIR		*d;

	if ((rc = add_one(w, tag, true, dir, eb)) != SPD_OK)
		return rc;
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? spd_fail(eb, SPD_ENOTFOUND, "%s: %s",
		    dir, strerror(errno)) : spd_fail(eb, SPD_EIO, "%s: %s",
		    dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (!layout_ckpt_name(de->d_name))
			continue;	/* a file: IN_ONLYDIR refuses it */
		if ((rc = add_sub(w, tag, dir, de->d_name, eb)) != SPD_OK)
			break;
	}
	closedir(d);
	return rc;
}

/* Removes every watch of tag. */
void
watch_remove_all(struct watch *w, int tag)
{
	size_t i = 0;

	while (i < w->n) {
		if (w->v[i].tag != tag) {
			i++;
			continue;
		}
		if (!wd_shared(w, i))
			inotify_rm_watch(w->fd, w->v[i].wd);
		rec_del(w, i);
	}
}

/* Says whether run tag's directory is watched as it is now. */
enum watch_root
watch_root(const struct watch *w, int tag, const char *dir)
{
	struct stat	sb;
	size_t		i;

	if (stat(dir, &sb) == -1)
		return errno == ENOENT || errno == ENOTDIR ? WATCH_ROOT_MISSING :
		    WATCH_ROOT_LOST;
	if (!S_ISDIR(sb.st_mode))
		return WATCH_ROOT_MISSING;
	for (i = 0; i < w->n; i++)
		if (w->v[i].tag == tag && w->v[i].root)
			return w->v[i].dev == sb.st_dev &&
			    w->v[i].ino == sb.st_ino ? WATCH_ROOT_OK :
			    WATCH_ROOT_LOST;
	return WATCH_ROOT_LOST;
}

/* Drops every watch of the tags whose run directory moved or went. */
static void
drop_lost(struct watch *w)
{
	size_t i;

	for (;;) {
		for (i = 0; i < w->n && !w->v[i].lost; i++)
			;
		if (i == w->n)
			return;
		watch_remove_all(w, w->v[i].tag);
	}
}

/* Handles one event: new subdirectories, callbacks, forgotten watches. */
static enum spd_err
handle_event(struct watch *w, const struct inotify_event *ev,
    void (*changed)(void *, int), void *arg, bool *overflow,
    struct spd_errbuf *eb)
{
	enum spd_err	 rc = SPD_OK, r;
	const char	*name = ev->len > 0 ? ev->name : "";
	size_t		 i, n = w->n;

	if (ev->mask & IN_Q_OVERFLOW) {
		*overflow = true;
		return SPD_OK;
	}
	for (i = 0; i < n; i++) {
		if (w->v[i].wd != ev->wd)
			continue;
		if (w->v[i].root && (ev->mask & (IN_CREATE | IN_MOVED_TO)) &&
		    (ev->mask & IN_ISDIR) && layout_ckpt_name(name)) {
			r = add_sub(w, w->v[i].tag, w->v[i].path, name, eb);
			if (r != SPD_OK)
				rc = r;
		}
		if (w->v[i].root && (ev->mask & (IN_MOVE_SELF | IN_DELETE_SELF)))
			w->v[i].lost = true;
		else if (ev->mask & IN_MOVE_SELF)	/* a checkpoint moved out */
			inotify_rm_watch(w->fd, ev->wd);
		if (name[0] != '.')
			changed(arg, w->v[i].tag);
	}
	drop_lost(w);
	if (ev->mask & IN_IGNORED) {	/* the kernel dropped this watch */
		i = 0;
		while (i < w->n)
			if (w->v[i].wd == ev->wd)
				rec_del(w, i);
			else
				i++;
	}
	return rc;
}

/* Drains pending events (see watch.h). */
enum spd_err
watch_read(struct watch *w, void (*changed)(void *, int), void *arg,
    bool *overflow, struct spd_errbuf *eb)
{
	char				 buf[64 * 1024]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event	*ev;
	enum spd_err			 rc = SPD_OK, r;
	ssize_t				 len;
	size_t				 off;

	for (;;) {
		len = read(w->fd, buf, sizeof buf);
		if (len == -1 && errno == EINTR)
			continue;
		if (len == -1 && errno == EAGAIN)
			break;
		if (len <= 0) {
			if (len == -1)
				rc = spd_fail(eb, SPD_EIO, "inotify read: %s",
				    strerror(errno));
			break;
		}
		for (off = 0; off + sizeof *ev <= (size_t)len;
		    off += sizeof *ev + ev->len) {
			ev = (const struct inotify_event *)(buf + off);
			r = handle_event(w, ev, changed, arg, overflow, eb);
			if (r != SPD_OK)
				rc = r;
		}
	}
	return rc;
}
