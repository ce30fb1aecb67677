/*
 * layout.c: what a run directory holds (watch_scan): which checkpoints,
 * in which layout, and whether each is complete. It trusts nothing it
 * reads: JSON files are size-capped, weight files are checked against the
 * size their header implies, and anything that disappears while it is
 * looked at (checkpoint rotation) is simply absent.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "spectrumd/layout.h"
#include "spectrumd/model.h"
#include "spectrumd/safetensors.h"

#define CKPT_PREFIX	LAYOUT_CKPT_PREFIX
#define DS_PREFIX	"global_step"
#define TRAINER_STATE	"trainer_state.json"
#define MODEL_ST	"model.safetensors"
#define MODEL_INDEX	MODEL_INDEX_NAME
#define MAX_FILES	MODEL_MAX_SHARDS	/* weight files of one checkpoint */

#define MSG_PICKLE	"%s has only PyTorch pickles (%s); save with " \
	"safe_serialization=True or export model.safetensors"
#define MSG_DEEPSPEED	"%s is a DeepSpeed ZeRO checkpoint (%s); convert it " \
	"with zero_to_fp32.py --safe_serialization, or save with " \
	"stage3_gather_16bit_weights_on_model_save=true, to get " \
	"model.safetensors"
#define MSG_FSDP	"%s holds FSDP sharded *.distcp files (%s); convert " \
	"with torch.distributed.checkpoint.format_utils.dcp_to_torch_save " \
	"then save_pretrained(safe_serialization=True), or save with " \
	"state_dict_type=FULL_STATE_DICT"
#define MSG_LIGHTNING	"%s is a PyTorch Lightning pickle; load it and " \
	"export model.safetensors (save_pretrained(safe_serialization=True) " \
	"or safetensors.torch.save_file)"
#define MSG_ADAPTER	"%s holds only a PEFT adapter (%s), not the full " \
	"weights; merge_and_unload() then save_pretrained(" \
	"safe_serialization=True)"

/* A growing list of scan results. */
struct found_list {
	struct watch_found	*v;
	size_t			 n, cap;
};

/* A growing list of file names. */
struct name_list {
	char	**v;
	size_t	  n, cap;
};

/* What the listing of one checkpoint directory showed. */
struct ckpt_listing {
	bool	 state, model, index;
	char	*pickle;	/* smallest weight pickle name, or NULL */
	char	*adapter;	/* adapter_model.* name, or NULL */
	char	*deepspeed;	/* a global_step* subdir name, or NULL */
	char	*fsdp;		/* where *.distcp files are, or NULL */
};

/* The weight files of one checkpoint, once checked. */
struct weight_check {
	char		*why;		/* NULL: all whole */
	double		 mtime;		/* newest file */
	uint64_t	 hash;		/* FNV-1a: name, size, mtime, inode */
};

/*
 * Parses the leading decimal digits of s into *out (no sign, no overflow)
 * and returns the first byte after them; NULL when s has no digit or the
 * number overflows.
 */
static const char *
parse_digits(const char *s, long long *out)
{
	long long v = 0;

	if (*s < '0' || *s > '9')
		return NULL;
	for (; *s >= '0' && *s <= '9'; s++)
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, *s - '0', &v))
			return NULL;
	*out = v;
	return s;
}

/* Parses s as a whole non-negative decimal number. */
static bool
parse_step(const char *s, long long *out)
{
	const char *end = parse_digits(s, out);

	return end != NULL && *end == '\0';
}

/* Unix seconds of a stat's mtime. */
static double
st_mtime_of(const struct stat *st)
{
	return (double)st->st_mtim.tv_sec + (double)st->st_mtim.tv_nsec * 1e-9;
}

/*
 * Stats name inside the open directory d (following links). Returns 0, or
 * an errno value (ENOENT when it vanished).
 */
static int
stat_in(DIR *d, const char *name, struct stat *st)
{
	if (fstatat(dirfd(d), name, st, 0) == -1)
		return errno;
	return 0;
}

/* True when the dirent names a directory (a vanished entry is not one). */
static bool
is_dir_in(DIR *d, const struct dirent *de)
{
	struct stat st;

	if (de->d_type == DT_DIR)
		return true;
	if (de->d_type != DT_UNKNOWN && de->d_type != DT_LNK)
		return false;
	return stat_in(d, de->d_name, &st) == 0 && S_ISDIR(st.st_mode);
}

/* True when name is a file of PyTorch weights (not the Trainer's extras). */
static bool
is_weight_pickle(const char *name)
{
	static const char *const extras[] = {
		"training_args.bin", "optimizer.pt", "scheduler.pt",
		"scaler.pt", "optimizer.bin", "scheduler.bin",
	};
	size_t i;

	if (!spd_ends_with(name, ".bin") && !spd_ends_with(name, ".pt") &&
	    !spd_ends_with(name, ".pth"))
		return false;
	if (spd_starts_with(name, "rng_state") || spd_starts_with(name, "adapter_"))
		return false;
	for (i = 0; i < nitems(extras); i++)
		if (strcmp(name, extras[i]) == 0)
			return false;
	return true;
}

/* Keeps in *slot the smallest of its name and name (for stable reasons). */
static enum spd_err
keep_min(char **slot, const char *name)
{
	char *s;

	if (*slot != NULL && strcmp(*slot, name) <= 0)
		return SPD_OK;
	if ((s = strdup(name)) == NULL)
		return SPD_ENOMEM;
	free(*slot);
	*slot = s;
	return SPD_OK;
}

/* Frees the strings of one entry. */
static void
found_clear(struct watch_found *f)
{
	free(f->path);
	free(f->reason);
	free(f->fingerprint);
}

/* Frees n entries and the array. */
void
watch_found_free(struct watch_found *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		found_clear(&v[i]);
	free(v);
}

/* Returns the name of a state. */
const char *
watch_state_name(enum watch_state s)
{
	switch (s) {
	case WF_COMPLETE:
		return "complete";
	case WF_INCOMPLETE:
		return "incomplete";
	case WF_UNSUPPORTED:
		return "unsupported";
	}
	return "unknown";
}

/*
 * Appends *f to l, taking its strings (freed on failure too). A NULL path,
 * or a NULL reason on an entry that is not complete, means an allocation
 * failed upstream.
 */
static enum spd_err
found_push(struct found_list *l, struct watch_found *f,
    struct spd_errbuf *eb)
{
	struct watch_found	*nv;
	size_t			 cap;

	if (f->path == NULL || (f->state != WF_COMPLETE && f->reason == NULL))
		goto nomem;
	if (l->n >= WATCH_MAX_FOUND) {
		found_clear(f);
		return spd_fail(eb, SPD_EFORMAT,
		    "more than %u checkpoints in one directory",
		    WATCH_MAX_FOUND);
	}
	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 16;
		if ((nv = reallocarray(l->v, cap, sizeof *nv)) == NULL)
			goto nomem;
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = *f;
	return SPD_OK;
nomem:
	found_clear(f);
	return spd_fail(eb, SPD_ENOMEM, "out of memory");
}

/* Appends a copy of name to l. */
static enum spd_err
names_push(struct name_list *l, const char *name)
{
	char	**nv;
	size_t	  cap;

	if (l->n >= MAX_FILES)
		return SPD_EFORMAT;
	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 8;
		if ((nv = reallocarray(l->v, cap, sizeof *nv)) == NULL)
			return SPD_ENOMEM;
		l->v = nv;
		l->cap = cap;
	}
	if ((l->v[l->n] = strdup(name)) == NULL)
		return SPD_ENOMEM;
	l->n++;
	return SPD_OK;
}

/* Frees the names of l. */
static void
names_clear(struct name_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* Sorts l and drops duplicates. */
static void
names_sort_unique(struct name_list *l)
{
	size_t i, j;

	if (l->n == 0)
		return;
	qsort(l->v, l->n, sizeof *l->v, spd_cmp_str);
	for (i = 1, j = 1; i < l->n; i++) {
		if (strcmp(l->v[i], l->v[j - 1]) == 0)
			free(l->v[i]);
		else
			l->v[j++] = l->v[i];
	}
	l->n = j;
}

/* Words for a spd_read_file() failure. */
static const char *
read_problem(enum spd_err rc)
{
	switch (rc) {
	case SPD_ENOTFOUND:
		return "missing";
	case SPD_EFORMAT:
		return "too large";
	case SPD_EUNSUPPORTED:
		return "not a regular file";
	case SPD_EBUSY:
		return "being written";
	default:
		return "unreadable";
	}
}

/*
 * Reads the index in dir (model_index_read) and lists the shards it names
 * (sorted, unique) into out. Returns SPD_OK, with *why set when the index
 * is unusable, or SPD_ENOMEM.
 */
static enum spd_err
index_shards(const char *dir, struct name_list *out, char **why)
{
	struct spd_errbuf	 eb;
	struct model_index	 ix;
	enum spd_err		 rc;
	const char		*msg = eb.msg;
	char			*path;
	size_t			 i, ld;

	*why = NULL;
	if ((path = spd_path_join(dir, MODEL_INDEX)) == NULL)
		return SPD_ENOMEM;
	eb.msg[0] = '\0';
	rc = model_index_read(path, &ix, &eb);
	free(path);
	if (rc == SPD_ENOMEM)
		return rc;
	if (rc != SPD_OK) {
		for (ld = strlen(dir); ld > 1 && dir[ld - 1] == '/'; ld--)
			;
		if (strncmp(msg, dir, ld) == 0 && msg[ld] == '/')
			msg += ld + 1;	/* the reason names the file alone */
		*why = msg[0] != '\0' ? spd_asprintf("%s", msg) :
		    spd_asprintf("%s is %s", MODEL_INDEX, read_problem(rc));
		return *why == NULL ? SPD_ENOMEM : SPD_OK;
	}
	for (i = 0; i < ix.nshards && rc == SPD_OK; i++)
		rc = names_push(out, ix.shards[i]);	/* ≤ MAX_FILES */
	model_index_free(&ix);
	return rc;
}

/* Folds a file's identity (name, size, mtime in ns, inode) into h. */
static uint64_t
hash_file(uint64_t h, const char *name, const struct stat *st)
{
	int64_t v[4] = { (int64_t)st->st_size, (int64_t)st->st_mtim.tv_sec,
	    (int64_t)st->st_mtim.tv_nsec, (int64_t)st->st_ino };

	h = spd_fnv1a(h, name, strlen(name) + 1);
	return spd_fnv1a(h, v, sizeof v);
}

/*
 * Checks that dir/name has exactly the size its header implies; on
 * success fills *st. Returns SPD_OK with *why NULL (whole) or set (not
 * whole, in words), or SPD_ENOMEM.
 */
static enum spd_err
check_file(const char *dir, const char *name, struct stat *st, char **why)
{
	struct spd_errbuf	 eb;
	enum spd_err		 rc;
	uint64_t		 want;
	char			*path;

	*why = NULL;
	if ((path = spd_path_join(dir, name)) == NULL)
		return SPD_ENOMEM;
	eb.msg[0] = '\0';
	if (stat(path, st) == -1)
		*why = spd_asprintf("%s is %s", name,
		    errno == ENOENT ? "missing" : strerror(errno));
	else if (!S_ISREG(st->st_mode))
		*why = spd_asprintf("%s is not a regular file", name);
	else if ((rc = safetensors_expected_size(path, &want, &eb)) != SPD_OK) {
		if (rc == SPD_ENOMEM) {
			free(path);
			return rc;
		}
		*why = rc == SPD_ENOTFOUND ? spd_asprintf("%s is missing", name) :
		    spd_asprintf("%s", eb.msg[0] ? eb.msg : spd_strerror(rc));
	} else if ((uint64_t)st->st_size < want)
		*why = spd_asprintf("%s is %jd of %" PRIu64 " bytes", name,
		    (intmax_t)st->st_size, want);
	else if ((uint64_t)st->st_size > want)
		*why = spd_asprintf("%s is %jd bytes but its header implies %"
		    PRIu64, name, (intmax_t)st->st_size, want);
	else {
		free(path);
		return SPD_OK;
	}
	free(path);
	return *why == NULL ? SPD_ENOMEM : SPD_OK;
}

/*
 * Checks every file of names in dir; stops at the first one not whole
 * (wc->why). Fills wc->mtime and wc->hash. Returns SPD_OK or SPD_ENOMEM.
 */
static enum spd_err
check_files(const char *dir, const struct name_list *names,
    struct weight_check *wc)
{
	enum spd_err	rc;
	struct stat	st;
	size_t		i;
	double		t;

	wc->why = NULL;
	wc->mtime = 0;
	wc->hash = SPD_FNV1A_INIT;
	for (i = 0; i < names->n; i++) {
		rc = check_file(dir, names->v[i], &st, &wc->why);
		if (rc != SPD_OK)
			return rc;
		if (wc->why != NULL)
			return SPD_OK;
		t = st_mtime_of(&st);
		if (t > wc->mtime)
			wc->mtime = t;
		wc->hash = hash_file(wc->hash, names->v[i], &st);
	}
	return SPD_OK;
}

/* True when the directory at path holds a *.distcp file. */
static bool
dir_has_distcp(DIR *parent, const char *name)
{
	struct dirent	*de;
	DIR		*d;
	bool		 found = false;
	int		 fd;

	fd = openat(dirfd(parent), name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return false;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return false;
	}
	while (!found && (de = readdir(d)) != NULL)
		found = spd_ends_with(de->d_name, ".distcp");
	closedir(d);
	return found;
}

/* Frees what a checkpoint listing holds and empties it (safe to repeat). */
static void
listing_clear(struct ckpt_listing *l)
{
	free(l->pickle);
	free(l->adapter);
	free(l->deepspeed);
	free(l->fsdp);
	memset(l, 0, sizeof *l);
}

/* Notes one entry of a checkpoint directory in l. */
static enum spd_err
listing_note(struct ckpt_listing *l, DIR *d, const struct dirent *de)
{
	const char *n = de->d_name;

	if (strcmp(n, TRAINER_STATE) == 0)
		l->state = true;
	else if (strcmp(n, MODEL_ST) == 0)
		l->model = true;
	else if (strcmp(n, MODEL_INDEX) == 0)
		l->index = true;
	else if (spd_starts_with(n, "adapter_model."))
		return keep_min(&l->adapter, n);
	else if (is_weight_pickle(n))
		return keep_min(&l->pickle, n);
	else if (spd_ends_with(n, ".distcp"))
		return keep_min(&l->fsdp, n);
	else if (spd_starts_with(n, DS_PREFIX) && is_dir_in(d, de))
		return keep_min(&l->deepspeed, n);
	else if (l->fsdp == NULL && is_dir_in(d, de) && dir_has_distcp(d, n))
		return keep_min(&l->fsdp, n);
	return SPD_OK;
}

/*
 * Lists the checkpoint directory path into l. Returns SPD_OK,
 * SPD_ENOTFOUND (it vanished), SPD_EIO (*err = errno) or SPD_ENOMEM.
 */
static enum spd_err
list_ckpt(const char *path, struct ckpt_listing *l, int *err)
{
	enum spd_err	 rc = SPD_OK;
	struct dirent	*de;
	DIR		*d;

	if ((d = opendir(path)) == NULL) {
		*err = errno;
		return errno == ENOENT || errno == ENOTDIR ? SPD_ENOTFOUND :
		    SPD_EIO;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (de->d_name[0] == '.')
			continue;
		if ((rc = listing_note(l, d, de)) != SPD_OK)
			break;
	}
	if (rc == SPD_OK && errno != 0) {
		*err = errno;
		rc = errno == ENOENT ? SPD_ENOTFOUND : SPD_EIO;
	}
	closedir(d);
	return rc;
}

/* Takes a usable step from a JSON number (integral, 0 ≤ n < 2^53). */
static bool
json_step(const cJSON *n, long long *step)
{
	double v;

	if (!cJSON_IsNumber(n))
		return false;
	v = n->valuedouble;
	if (!(v >= 0 && v < 9007199254740992.0) || v != (double)(long long)v)
		return false;
	*step = (long long)v;
	return true;
}

/*
 * Reads trainer_state.json of the checkpoint at path: its mtime, and
 * global_step into *step when present (else *step is left alone: a file
 * over WATCH_MAX_JSON also keeps the suffix). Returns SPD_OK, with *why set
 * when the file is not (yet) valid JSON or vanished, or SPD_ENOMEM.
 */
static enum spd_err
read_trainer_state(const char *path, const char *label, long long *step,
    double *mtime, char **why)
{
	enum spd_err	 rc;
	struct stat	 st;
	cJSON		*root;
	char		*file, *buf = NULL;
	size_t		 len;

	*why = NULL;
	if ((file = spd_path_join(path, TRAINER_STATE)) == NULL)
		return SPD_ENOMEM;
	memset(&st, 0, sizeof st);
	rc = spd_read_file(AT_FDCWD, file, WATCH_MAX_JSON, &buf, &len, &st,
	    NULL);
	free(file);
	if (rc == SPD_ENOMEM)
		return rc;
	if (rc == SPD_EFORMAT) {	/* too large: keeps the suffix */
		*mtime = st_mtime_of(&st);
		return SPD_OK;
	}
	if (rc != SPD_OK) {
		*why = spd_asprintf("%s: %s is %s", label, TRAINER_STATE,
		    rc == SPD_ENOTFOUND ? "not written yet" : read_problem(rc));
		return *why == NULL ? SPD_ENOMEM : SPD_OK;
	}
	*mtime = st_mtime_of(&st);
	root = cJSON_ParseWithLength(buf, len);
	free(buf);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		*why = spd_asprintf("%s: %s is not complete JSON yet", label,
		    TRAINER_STATE);
		return *why == NULL ? SPD_ENOMEM : SPD_OK;
	}
	json_step(cJSON_GetObjectItemCaseSensitive(root, "global_step"), step);
	cJSON_Delete(root);
	return SPD_OK;
}

/*
 * Says why a checkpoint with trainer_state.json but no safetensors weights
 * cannot be read, into f (unsupported) or (incomplete).
 */
static void
ckpt_no_weights(const struct ckpt_listing *l, const char *label,
    struct watch_found *f)
{
	f->state = WF_UNSUPPORTED;
	if (l->deepspeed != NULL)
		f->reason = spd_asprintf(MSG_DEEPSPEED, label, l->deepspeed);
	else if (l->fsdp != NULL)
		f->reason = spd_asprintf(MSG_FSDP, label, l->fsdp);
	else if (l->pickle != NULL)
		f->reason = spd_asprintf(MSG_PICKLE, label, l->pickle);
	else if (l->adapter != NULL)
		f->reason = spd_asprintf(MSG_ADAPTER, label, l->adapter);
	else {
		f->state = WF_INCOMPLETE;
		f->reason = spd_asprintf("%s: no %s or %s", label, MODEL_ST,
		    MODEL_INDEX);
	}
}

/*
 * Checks the safetensors weights of a listed checkpoint into f (complete,
 * or incomplete with a reason). Returns SPD_OK or SPD_ENOMEM.
 */
static enum spd_err
ckpt_weights(const char *path, const char *label,
    const struct ckpt_listing *l, struct watch_found *f)
{
	struct name_list	names = { 0 };
	struct weight_check	wc = { 0 };
	enum spd_err		rc;
	char			*why = NULL;

	if (l->index)
		rc = index_shards(path, &names, &why);
	else
		rc = names_push(&names, MODEL_ST);
	if (rc == SPD_OK && why == NULL)
		rc = check_files(path, &names, &wc);
	names_clear(&names);
	if (rc != SPD_OK) {
		free(why);
		free(wc.why);
		return rc;
	}
	if (why == NULL)
		why = wc.why;
	if (why != NULL) {
		f->state = WF_INCOMPLETE;
		f->reason = spd_asprintf("%s: %s", label, why);
		free(why);
	} else
		f->state = WF_COMPLETE;
	return SPD_OK;
}

/*
 * Classifies one HF Trainer checkpoint directory and appends it to out,
 * unless it vanished.
 */
static enum spd_err
scan_ckpt(const char *dir, const char *name, long long step,
    struct found_list *out, struct spd_errbuf *eb)
{
	struct ckpt_listing	 l = { 0 };
	struct watch_found	 f = { .step = step, .state = WF_INCOMPLETE };
	struct stat		 st;
	enum spd_err		 rc;
	int			 err = 0;

	if ((f.path = spd_path_join(dir, name)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	if (stat(f.path, &st) == 0)
		f.mtime = st_mtime_of(&st);
	rc = list_ckpt(f.path, &l, &err);
	if (rc == SPD_ENOTFOUND)
		goto vanished;
	if (rc == SPD_EIO)
		f.reason = spd_asprintf("%s: cannot list: %s", name, strerror(err));
	else if (rc == SPD_OK && !l.state)
		f.reason = spd_asprintf("%s: %s not written yet", name,
		    TRAINER_STATE);
	else if (rc == SPD_OK)
		rc = read_trainer_state(f.path, name, &f.step, &f.mtime,
		    &f.reason);
	if (rc == SPD_OK && l.state && f.reason == NULL) {
		if (l.model || l.index)
			rc = ckpt_weights(f.path, name, &l, &f);
		else
			ckpt_no_weights(&l, name, &f);
	}
	listing_clear(&l);
	if (rc == SPD_ENOMEM) {
		found_clear(&f);
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	}
	/* Rotated away while we looked: absent, not incomplete. */
	if (f.state != WF_COMPLETE && stat(f.path, &st) == -1 &&
	    errno == ENOENT)
		goto vanished;
	return found_push(out, &f, eb);
vanished:
	listing_clear(&l);
	found_clear(&f);
	return SPD_OK;
}

/*
 * Appends an unsupported entry for dir/name (dir itself when name is NULL),
 * taking reason (NULL: an allocation failed).
 */
static enum spd_err
push_unsupported(struct found_list *out, const char *dir, const char *name,
    long long step, char *reason, struct spd_errbuf *eb)
{
	struct watch_found	f = { .step = step, .state = WF_UNSUPPORTED };
	struct stat		st;

	f.reason = reason;
	f.path = name != NULL ? spd_path_join(dir, name) : strdup(dir);
	if (f.path != NULL && stat(f.path, &st) == 0)
		f.mtime = st_mtime_of(&st);
	return found_push(out, &f, eb);
}

/* What the run directory listing holds besides checkpoint dirs. */
struct run_listing {
	struct name_list	 plain;		/* *.safetensors */
	bool			 index;		/* an index file */
	bool			 distcp;	/* *.distcp directly in dir */
	char			*pickle;	/* smallest weight pickle */
};

/* Returns the step encoded as "step=S" in a Lightning file name, or -1. */
static long long
lightning_step(const char *name)
{
	const char	*p = strstr(name, "step=");
	long long	 v;

	if (p != NULL && parse_digits(p + 5, &v) != NULL)
		return v;
	return -1;
}

/* Returns a step from the digits that end name ("step_100" → 100), or -1. */
static long long
trailing_step(const char *name)
{
	size_t		i = strlen(name);
	long long	v;

	while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9')
		i--;
	return parse_step(name + i, &v) ? v : -1;
}

/* Handles one entry of the run directory. */
static enum spd_err
scan_entry(const char *dir, DIR *d, const struct dirent *de,
    struct run_listing *rl, struct found_list *out, struct spd_errbuf *eb)
{
	const char	*n = de->d_name;
	struct stat	 st;
	long long	 step;

	if (spd_starts_with(n, CKPT_PREFIX) && parse_step(n + strlen(CKPT_PREFIX),
	    &step)) {
		if (!is_dir_in(d, de))
			return SPD_OK;
		return scan_ckpt(dir, n, step, out, eb);
	}
	if (spd_ends_with(n, ".safetensors")) {
		if (names_push(&rl->plain, n) == SPD_ENOMEM)
			return spd_fail(eb, SPD_ENOMEM, "out of memory");
		return SPD_OK;	/* beyond MAX_FILES: not one model */
	}
	if (strcmp(n, MODEL_INDEX) == 0)
		rl->index = true;
	else if (spd_ends_with(n, ".distcp"))
		rl->distcp = true;
	else if (spd_ends_with(n, ".ckpt") && stat_in(d, n, &st) == 0)
		return push_unsupported(out, dir, n, lightning_step(n),
		    spd_asprintf(MSG_LIGHTNING, n), eb);
	else if (is_weight_pickle(n))
		return keep_min(&rl->pickle, n) == SPD_OK ? SPD_OK :
		    spd_fail(eb, SPD_ENOMEM, "out of memory");
	else if (spd_starts_with(n, DS_PREFIX) && is_dir_in(d, de))
		return push_unsupported(out, dir, n,
		    parse_step(n + strlen(DS_PREFIX), &step) ? step : -1,
		    spd_asprintf(MSG_DEEPSPEED, n, n), eb);
	else if (!spd_starts_with(n, "tmp-checkpoint-") && is_dir_in(d, de) &&
	    dir_has_distcp(d, n))
		return push_unsupported(out, dir, n, trailing_step(n),
		    spd_asprintf(MSG_FSDP, n, n), eb);
	return SPD_OK;
}

/* Parses __metadata__["step"] of the first weight file, or leaves -1. */
static enum spd_err
plain_step(const char *dir, const char *first, long long *step, char **why)
{
	struct spd_errbuf	 eb;
	struct st_file		*f = NULL;
	enum spd_err		 rc;
	const char		*s;
	char			*path;

	*why = NULL;
	if ((path = spd_path_join(dir, first)) == NULL)
		return SPD_ENOMEM;
	eb.msg[0] = '\0';
	rc = safetensors_open(path, &f, &eb);
	free(path);
	if (rc == SPD_ENOMEM)
		return rc;
	if (rc != SPD_OK) {
		*why = spd_asprintf("%s", eb.msg[0] ? eb.msg : spd_strerror(rc));
		return *why == NULL ? SPD_ENOMEM : SPD_OK;
	}
	s = safetensors_header_meta(safetensors_header(f), "step");
	if (s == NULL || !parse_step(s, step))
		*step = -1;
	safetensors_close(f);
	return SPD_OK;
}

/*
 * Classifies the plain layout (weights directly in dir) and appends it.
 * rl->plain is consumed.
 */
static enum spd_err
scan_plain(const char *dir, struct run_listing *rl, struct found_list *out,
    struct spd_errbuf *eb)
{
	struct watch_found	 f = { .step = -1, .state = WF_INCOMPLETE };
	struct weight_check	 wc = { 0 };
	struct name_list	 shards = { 0 };
	const struct name_list	*names = &rl->plain;
	struct stat		 st;
	enum spd_err		 rc = SPD_OK;
	char			*why = NULL, *ipath = NULL;

	f.path = strdup(dir);
	if (rl->index) {
		rc = index_shards(dir, &shards, &why);
		names = &shards;
	} else
		names_sort_unique(&rl->plain);
	if (rc == SPD_OK && why == NULL)
		rc = check_files(dir, names, &wc);
	if (rc == SPD_OK && why == NULL && (why = wc.why) == NULL)
		rc = plain_step(dir, names->v[0], &f.step, &why);
	if (rc == SPD_OK && why == NULL && rl->index) {
		if ((ipath = spd_path_join(dir, MODEL_INDEX)) == NULL)
			rc = SPD_ENOMEM;
		else if (stat(ipath, &st) == 0)
			wc.hash = hash_file(wc.hash, MODEL_INDEX, &st);
		free(ipath);
	}
	names_clear(&shards);
	if (rc != SPD_OK) {
		free(why);
		found_clear(&f);
		return spd_fail(eb, rc, "out of memory");
	}
	f.mtime = wc.mtime;
	if (why != NULL) {
		f.reason = why;
	} else {
		f.state = WF_COMPLETE;
		f.fingerprint = spd_asprintf("%016" PRIx64, wc.hash);
		if (f.fingerprint == NULL) {
			found_clear(&f);
			return spd_fail(eb, SPD_ENOMEM, "out of memory");
		}
	}
	return found_push(out, &f, eb);
}

/* Orders entries by step, then path. */
static int
cmp_found(const void *a, const void *b)
{
	const struct watch_found *x = a, *y = b;

	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* Lists the run directory dir into out and rl. */
static enum spd_err
scan_dir(const char *dir, struct run_listing *rl, struct found_list *out,
    struct spd_errbuf *eb)
{
	enum spd_err	 rc = SPD_OK;
	struct dirent	*de;
	DIR		*d;

	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return spd_fail(eb, SPD_ENOTFOUND, "%s: %s", dir,
			    strerror(errno));
		return spd_fail(eb, SPD_EIO, "%s: %s", dir, strerror(errno));
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (de->d_name[0] == '.')
			continue;
		if ((rc = scan_entry(dir, d, de, rl, out, eb)) != SPD_OK)
			break;
	}
	if (rc == SPD_OK && errno != 0)
		rc = spd_fail(eb, errno == ENOENT ? SPD_ENOTFOUND : SPD_EIO,
		    "%s: %s", dir, strerror(errno));
	closedir(d);
	return rc;
}

/* Scans the run directory dir (see layout.h). */
enum spd_err
watch_scan(const char *dir, struct watch_found **out, size_t *n,
    struct spd_errbuf *eb)
{
	struct run_listing	rl = { 0 };
	struct found_list	l = { 0 };
	enum spd_err		rc;
	char			*why;

	rc = scan_dir(dir, &rl, &l, eb);
	if (rc == SPD_OK && (rl.plain.n > 0 || rl.index))
		rc = scan_plain(dir, &rl, &l, eb);
	else if (rc == SPD_OK && (rl.distcp || rl.pickle != NULL)) {
		why = rl.distcp ? spd_asprintf(MSG_FSDP, dir, dir) :
		    spd_asprintf(MSG_PICKLE, dir, rl.pickle);
		rc = push_unsupported(&l, dir, NULL, -1, why, eb);
	}
	names_clear(&rl.plain);
	free(rl.pickle);
	if (rc != SPD_OK) {
		watch_found_free(l.v, l.n);
		return rc;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof *l.v, cmp_found);
	*out = l.v;
	*n = l.n;
	return SPD_OK;
}

/* True when name is checkpoint-<digits> (see layout.h). */
bool
layout_ckpt_name(const char *name)
{
	long long step;

	return spd_starts_with(name, CKPT_PREFIX) &&
	    parse_step(name + strlen(CKPT_PREFIX), &step);
}

/* Adds the numbers of one log_history entry to v (see layout_train_log). */
static void
train_entry(const cJSON *e, struct train_point *v, size_t *n,
    size_t *skipped)
{
	const cJSON	*it;
	long long	 step;

	if (!cJSON_IsObject(e) ||
	    !json_step(cJSON_GetObjectItemCaseSensitive(e, "step"), &step)) {
		(*skipped)++;
		return;
	}
	cJSON_ArrayForEach(it, e) {
		if (it->string != NULL && strcmp(it->string, "step") == 0)
			continue;
		if (!cJSON_IsNumber(it) || !spd_train_name_ok(it->string) ||
		    !isfinite(it->valuedouble)) {
			(*skipped)++;
			continue;
		}
		if (*n >= LAYOUT_MAX_TRAIN) {
			(*skipped)++;
			continue;
		}
		v[*n].step = step;
		v[*n].value = it->valuedouble;
		snprintf(v[*n].name, sizeof v[*n].name, "%s", it->string);
		(*n)++;
	}
}

/*
 * Reads dir's trainer_state.json into *root, a JSON object (cJSON_Delete
 * it): SPD_ENOTFOUND, SPD_EFORMAT (not an object, or too large), SPD_EIO
 * or SPD_ENOMEM otherwise.
 */
static enum spd_err
state_json(const char *dir, cJSON **root, struct spd_errbuf *eb)
{
	enum spd_err	 rc;
	char		*file, *buf = NULL;
	size_t		 len;

	*root = NULL;
	if ((file = spd_path_join(dir, TRAINER_STATE)) == NULL)
		return SPD_ENOMEM;
	rc = spd_read_file(AT_FDCWD, file, WATCH_MAX_JSON, &buf, &len, NULL,
	    eb);
	free(file);
	if (rc != SPD_OK)
		return rc;
	*root = cJSON_ParseWithLength(buf, len);
	free(buf);
	if (!cJSON_IsObject(*root)) {
		cJSON_Delete(*root);
		*root = NULL;
		return spd_fail(eb, SPD_EFORMAT, "%s: %s is not a JSON object",
		    dir, TRAINER_STATE);
	}
	return SPD_OK;
}

/* Whether a checkpoint's trainer_state.json ends training (layout.h). */
enum spd_err
layout_train_finished(const char *dir, bool *finished,
    struct spd_errbuf *eb)
{
	cJSON		*root;
	long long	 global = -1, max = -1;
	enum spd_err	 rc;

	*finished = false;
	if ((rc = state_json(dir, &root, eb)) != SPD_OK)
		return rc;
	json_step(cJSON_GetObjectItemCaseSensitive(root, "global_step"),
	    &global);
	json_step(cJSON_GetObjectItemCaseSensitive(root, "max_steps"), &max);
	cJSON_Delete(root);
	*finished = max > 0 && global >= max;
	return SPD_OK;
}

/* Reads a checkpoint's trainer_state.json log_history (see layout.h). */
enum spd_err
layout_train_log(const char *dir, struct train_point **out, size_t *n,
    size_t *skipped, struct spd_errbuf *eb)
{
	struct train_point	*v = NULL;
	const cJSON		*hist, *e;
	cJSON			*root;
	enum spd_err		 rc;
	size_t			 cap = 0;

	*out = NULL;
	*n = *skipped = 0;
	if ((rc = state_json(dir, &root, eb)) != SPD_OK)
		return rc;
	hist = cJSON_GetObjectItemCaseSensitive(root, "log_history");
	if (hist != NULL && !cJSON_IsArray(hist))
		(*skipped)++;
	if (cJSON_IsArray(hist))
		cJSON_ArrayForEach(e, hist)
			if (cJSON_IsObject(e))
				cap += (size_t)cJSON_GetArraySize(e);
	if (cap > LAYOUT_MAX_TRAIN)
		cap = LAYOUT_MAX_TRAIN;
	if (cap > 0 && (v = calloc(cap, sizeof *v)) == NULL) {
		cJSON_Delete(root);
		return SPD_ENOMEM;
	}
	if (cJSON_IsArray(hist))
		cJSON_ArrayForEach(e, hist)
			train_entry(e, v, n, skipped);
	cJSON_Delete(root);
	if (*n == 0) {
		free(v);
		v = NULL;
	}
	*out = v;
	return SPD_OK;
}
