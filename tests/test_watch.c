/*
 * test_watch.c: the run-directory scanner on hand-made layouts, and the
 * inotify wrapper on a temporary directory.
 *
 * Not tested here: IN_Q_OVERFLOW. Provoking it needs more queued events
 * than fs.inotify.max_queued_events (16384 by default) and a reader that
 * does not drain them, which is slow and depends on the host's sysctl. The
 * code path is two lines in handle_event(): it sets *overflow and the
 * daemon rescans every run; it is checked by reading only.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spectrumd/layout.h"
#include "spectrumd/watch.h"
#include "tap.h"

static char top[PATH_MAX];

/* Formats a path under top into a static ring of buffers. */
static const char *
P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *
P(const char *fmt, ...)
{
	static char	buf[8][PATH_MAX];
	static int	next;
	char		rel[PATH_MAX];
	va_list		ap;
	char		*b = buf[next++ % 8];

	va_start(ap, fmt);
	vsnprintf(rel, sizeof rel, fmt, ap);
	va_end(ap);
	if (snprintf(b, PATH_MAX, "%s/%s", top, rel) >= PATH_MAX) {
		fprintf(stderr, "path too long: %s\n", rel);
		exit(1);
	}
	return b;
}

/* Creates a directory or dies. */
static void
mk(const char *path)
{
	if (mkdir(path, 0700) == -1 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
}

/* Writes text to path or dies. */
static void
put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/*
 * Writes a safetensors file by hand: one F32 tensor "w" of n elements,
 * optional __metadata__ step, header padded to 8 bytes; the last cut bytes
 * are left out (a short file). Returns the size of the whole file.
 */
static unsigned long
write_st(const char *path, unsigned n, const char *step, unsigned cut)
{
	char		 hdr[256];
	unsigned char	 len8[8];
	unsigned long	 hl, total, i;
	FILE		*f;
	int		 k;

	if (step != NULL)
		k = snprintf(hdr, sizeof hdr, "{\"__metadata__\":{\"step\":"
		    "\"%s\"},\"w\":{\"dtype\":\"F32\",\"shape\":[%u],"
		    "\"data_offsets\":[0,%u]}}", step, n, 4 * n);
	else
		k = snprintf(hdr, sizeof hdr, "{\"w\":{\"dtype\":\"F32\","
		    "\"shape\":[%u],\"data_offsets\":[0,%u]}}", n, 4 * n);
	hl = (unsigned long)k;
	while (hl % 8 != 0)
		hdr[hl++] = ' ';
	for (i = 0; i < 8; i++)
		len8[i] = (unsigned char)(hl >> (8 * i));
	total = 8 + hl + 4ul * n - cut;
	if ((f = fopen(path, "wb")) == NULL) {
		perror(path);
		exit(1);
	}
	for (i = 0; i < total; i++)
		fputc(i < 8 ? len8[i] : i < 8 + hl ? hdr[i - 8] : 0x3f, f);
	if (fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	return total + cut;
}

/* Returns the entry whose path is top/rel, or NULL. */
static const struct watch_found *
entry(const struct watch_found *v, size_t n, const char *rel)
{
	const char	*want = P("%s", rel);
	size_t		 i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].path, want) == 0)
			return &v[i];
	return NULL;
}

/* True when the entry's reason contains s. */
static bool
says(const struct watch_found *f, const char *s)
{
	return f != NULL && f->reason != NULL && strstr(f->reason, s) != NULL;
}

/* Prints an entry's reason as a TAP comment. */
static void
show(const struct watch_found *f)
{
	if (f != NULL)
		printf("#   %s: %s, step %lld: %s\n", f->path,
		    watch_state_name(f->state), f->step,
		    f->reason ? f->reason : "-");
}

/* A complete single-file HF checkpoint run/checkpoint-<step>. */
static void
hf_single(const char *run, int step, const char *state)
{
	mk(P("%s/checkpoint-%d", run, step));
	write_st(P("%s/checkpoint-%d/model.safetensors", run, step), 16,
	    NULL, 0);
	put(P("%s/checkpoint-%d/config.json", run, step), "{}");
	if (state != NULL)
		put(P("%s/checkpoint-%d/trainer_state.json", run, step), state);
}

/*
 * A sharded HF checkpoint; shard 2 is cut by cut bytes or absent. Returns
 * the whole size of shard 2.
 */
static unsigned long
hf_sharded(const char *run, int step, int cut)
{
	unsigned long size = 0;

	mk(P("%s/checkpoint-%d", run, step));
	write_st(P("%s/checkpoint-%d/model-00001-of-00002.safetensors", run,
	    step), 8, NULL, 0);
	if (cut >= 0)
		size = write_st(P("%s/checkpoint-%d/model-00002-of-00002."
		    "safetensors", run, step), 4, NULL, (unsigned)cut);
	put(P("%s/checkpoint-%d/model.safetensors.index.json", run, step),
	    "{\"metadata\":{\"total_size\":48},\"weight_map\":{"
	    "\"a.weight\":\"model-00001-of-00002.safetensors\","
	    "\"b.weight\":\"model-00002-of-00002.safetensors\","
	    "\"c.weight\":\"model-00001-of-00002.safetensors\"}}");
	put(P("%s/checkpoint-%d/trainer_state.json", run, step),
	    "{\"global_step\": 0, \"log_history\": []}");
	return size;
}

/* The HF Trainer layout and the unsupported ones, in one run dir. */
static void
test_hf(void)
{
	struct spd_errbuf		 eb;
	struct watch_found		*v = NULL;
	const struct watch_found	*f;
	size_t				 n = 0, i;
	bool				 sorted = true;
	unsigned long			 size;
	char				 want[128];

	mk(P("hf"));
	hf_single("hf", 10, "{\"global_step\": 10, \"epoch\": 0.5}");
	hf_single("hf", 40, "{\"global_step\": 41}");
	hf_single("hf", 50, "{\"epoch\": 1.0}");
	hf_single("hf", 60, NULL);
	hf_single("hf", 65, "{\"global_step\": 6");	/* cut mid-write */
	hf_sharded("hf", 20, 0);
	hf_sharded("hf", 30, -1);
	size = hf_sharded("hf", 35, 1);
	hf_single("hf", 5, "{\"global_step\": 5}");
	if (rename(P("hf/checkpoint-5"), P("hf/tmp-checkpoint-5")) != 0)
		perror("rename");
	hf_single("hf", 6, "{\"global_step\": 6}");
	if (rename(P("hf/checkpoint-6"), P("hf/.checkpoint-6")) != 0)
		perror("rename");
	mk(P("hf/.hidden"));
	mk(P("hf/checkpoint-70"));
	put(P("hf/checkpoint-70/pytorch_model.bin"), "pickle");
	put(P("hf/checkpoint-70/training_args.bin"), "pickle");
	put(P("hf/checkpoint-70/optimizer.pt"), "pickle");
	put(P("hf/checkpoint-70/trainer_state.json"), "{\"global_step\":70}");
	mk(P("hf/checkpoint-75"));
	mk(P("hf/checkpoint-75/global_step75"));
	put(P("hf/checkpoint-75/trainer_state.json"), "{\"global_step\":75}");
	mk(P("hf/global_step100"));
	put(P("hf/global_step100/mp_rank_00_model_states.pt"), "pickle");
	mk(P("hf/fsdp_step_7"));
	put(P("hf/fsdp_step_7/__0_0.distcp"), "x");
	put(P("hf/epoch=0-step=300.ckpt"), "pickle");
	mk(P("hf/runs"));			/* tensorboard: nothing */
	put(P("hf/checkpoint-99"), "a file, not a directory");

	if (!ok(watch_scan(P("hf"), &v, &n, &eb) == SPD_OK, "hf: scan"))
		printf("#   %s\n", eb.msg);
	for (i = 0; i < n; i++)
		show(&v[i]);
	ok(n == 13, "hf: 13 entries (tmp-, dot-names and files ignored): %zu",
	    n);

	f = entry(v, n, "hf/checkpoint-10");
	ok(f && f->state == WF_COMPLETE && f->step == 10 &&
	    f->reason == NULL && f->fingerprint == NULL && f->mtime > 0,
	    "single file + trainer_state: complete, step 10");
	f = entry(v, n, "hf/checkpoint-20");
	ok(f && f->state == WF_COMPLETE && f->step == 0,
	    "sharded with index: complete, step 0 from global_step");
	f = entry(v, n, "hf/checkpoint-30");
	ok(f && f->state == WF_INCOMPLETE &&
	    says(f, "model-00002-of-00002.safetensors is missing"),
	    "missing shard: incomplete, named");
	f = entry(v, n, "hf/checkpoint-35");
	snprintf(want, sizeof want, "model-00002-of-00002.safetensors is %lu "
	    "of %lu bytes", size - 1, size);
	ok(f && f->state == WF_INCOMPLETE && says(f, want),
	    "shard short by one byte: incomplete");
	f = entry(v, n, "hf/checkpoint-40");
	ok(f && f->step == 41, "step from global_step (41, not 40)");
	f = entry(v, n, "hf/checkpoint-50");
	ok(f && f->state == WF_COMPLETE && f->step == 50,
	    "no global_step: step from the suffix");
	f = entry(v, n, "hf/checkpoint-60");
	ok(f && f->state == WF_INCOMPLETE && f->step == 60 &&
	    says(f, "trainer_state.json not written yet"),
	    "no trainer_state.json: incomplete");
	f = entry(v, n, "hf/checkpoint-65");
	ok(f && f->state == WF_INCOMPLETE && says(f, "not complete JSON"),
	    "half-written trainer_state.json: incomplete");
	f = entry(v, n, "hf/checkpoint-70");
	ok(f && f->state == WF_UNSUPPORTED && f->step == 70 && says(f,
	    "checkpoint-70 has only PyTorch pickles (pytorch_model.bin); save "
	    "with safe_serialization=True or export model.safetensors"),
	    "pickle-only checkpoint: unsupported, with the way out");
	f = entry(v, n, "hf/checkpoint-75");
	ok(f && f->state == WF_UNSUPPORTED && says(f, "zero_to_fp32.py"),
	    "checkpoint holding only global_step75/: unsupported");
	f = entry(v, n, "hf/global_step100");
	ok(f && f->state == WF_UNSUPPORTED && f->step == 100 &&
	    says(f, "DeepSpeed") && says(f, "zero_to_fp32.py"),
	    "global_step100/: unsupported, step 100");
	f = entry(v, n, "hf/fsdp_step_7");
	ok(f && f->state == WF_UNSUPPORTED && f->step == 7 &&
	    says(f, "distcp") && says(f, "dcp_to_torch_save"),
	    "a dir of *.distcp files: unsupported");
	f = entry(v, n, "hf/epoch=0-step=300.ckpt");
	ok(f && f->state == WF_UNSUPPORTED && f->step == 300 &&
	    says(f, "Lightning"), "Lightning .ckpt: unsupported, step 300");
	for (i = 1; i < n; i++)
		if (v[i - 1].step > v[i].step)
			sorted = false;
	ok(sorted && n > 0 && v[0].step == 0, "sorted by step");
	watch_found_free(v, n);
}

/* Scans top/rel expecting exactly one entry; returns a copy of it. */
static bool
scan_one(const char *rel, struct watch_found *out)
{
	struct spd_errbuf	 eb;
	struct watch_found	*v = NULL;
	size_t			 n = 0;

	memset(out, 0, sizeof *out);
	if (watch_scan(P("%s", rel), &v, &n, &eb) != SPD_OK) {
		printf("#   scan %s: %s\n", rel, eb.msg);
		return false;
	}
	if (n == 1) {
		show(&v[0]);
		*out = v[0];
		free(v);
		return true;
	}
	watch_found_free(v, n);
	return false;
}

/* Frees the strings of a copied entry. */
static void
found_done(struct watch_found *f)
{
	free(f->path);
	free(f->reason);
	free(f->fingerprint);
}

/* The plain layout: weights directly in the watched dir. */
static void
test_plain(void)
{
	struct watch_found	a, b, c, d;
	char			fp[64] = "", want[128];
	unsigned long		size;

	mk(P("plain"));
	write_st(P("plain/model.safetensors"), 8, "123", 0);
	write_st(P("plain/extra.safetensors"), 8, NULL, 0);
	ok(scan_one("plain", &a) && strcmp(a.path, P("plain")) == 0 &&
	    a.state == WF_COMPLETE && a.fingerprint != NULL,
	    "plain: one complete entry for the dir");
	ok(a.step == -1, "plain: step from the first file by name "
	    "(extra.safetensors has none): -1");
	found_done(&a);

	mk(P("plain2"));
	write_st(P("plain2/model.safetensors"), 8, "123", 0);
	ok(scan_one("plain2", &a) && a.step == 123,
	    "plain: step from __metadata__ step");
	if (a.fingerprint != NULL)
		snprintf(fp, sizeof fp, "%s", a.fingerprint);
	ok(scan_one("plain2", &b) && b.fingerprint != NULL &&
	    strcmp(b.fingerprint, fp) == 0, "plain: fingerprint is stable");
	write_st(P("plain2/.model.safetensors.tmp"), 8, "124", 0);
	rename(P("plain2/.model.safetensors.tmp"),
	    P("plain2/model.safetensors"));
	ok(scan_one("plain2", &c) && c.fingerprint != NULL &&
	    strcmp(c.fingerprint, fp) != 0 && c.step == 124,
	    "plain: replaced by rename → new fingerprint, step 124");
	size = write_st(P("plain2/.model.safetensors.tmp"), 8, "124", 1);
	snprintf(want, sizeof want, "model.safetensors is %lu of %lu", size - 1,
	    size);
	rename(P("plain2/.model.safetensors.tmp"),
	    P("plain2/model.safetensors"));
	ok(scan_one("plain2", &d) && d.state == WF_INCOMPLETE &&
	    d.fingerprint == NULL && says(&d, want),
	    "plain: short file → incomplete, no fingerprint");
	found_done(&a);
	found_done(&b);
	found_done(&c);
	found_done(&d);

	mk(P("plain3"));
	write_st(P("plain3/model-00001-of-00002.safetensors"), 8, "7", 0);
	put(P("plain3/model.safetensors.index.json"), "{\"weight_map\":{"
	    "\"a\":\"model-00001-of-00002.safetensors\","
	    "\"b\":\"model-00002-of-00002.safetensors\"}}");
	ok(scan_one("plain3", &a) && a.state == WF_INCOMPLETE &&
	    says(&a, "model-00002-of-00002.safetensors is missing"),
	    "plain index: missing shard → incomplete");
	write_st(P("plain3/model-00002-of-00002.safetensors"), 8, NULL, 0);
	ok(scan_one("plain3", &b) && b.state == WF_COMPLETE && b.step == 7,
	    "plain index: all shards → complete, step 7");
	found_done(&a);
	found_done(&b);

	mk(P("pickles"));
	put(P("pickles/pytorch_model.bin"), "pickle");
	put(P("pickles/training_args.bin"), "pickle");
	ok(scan_one("pickles", &a) && a.state == WF_UNSUPPORTED &&
	    says(&a, "pytorch_model.bin") && strcmp(a.path, P("pickles")) == 0,
	    "plain pickles: one unsupported entry for the dir");
	found_done(&a);
}

/* Rotation: things that vanish are absent, not errors. */
static void
test_vanish(void)
{
	struct spd_errbuf	 eb;
	struct watch_found	*v = NULL, one;
	size_t			 n = 99;

	mk(P("rot"));
	hf_single("rot", 1, "{\"global_step\": 1}");
	hf_single("rot", 2, "{\"global_step\": 2}");
	unlink(P("rot/checkpoint-1/model.safetensors"));
	unlink(P("rot/checkpoint-1/config.json"));
	unlink(P("rot/checkpoint-1/trainer_state.json"));
	rmdir(P("rot/checkpoint-1"));
	if (symlink(P("rot/gone"), P("rot/checkpoint-3")) != 0)
		perror("symlink");
	ok(scan_one("rot", &one) && one.step == 2,
	    "checkpoint removed before the scan, dangling link: absent");
	found_done(&one);
	ok(watch_scan(P("no-such-run"), &v, &n, &eb) == SPD_ENOTFOUND,
	    "missing run dir: SPD_ENOTFOUND (%s)", eb.msg);
	mk(P("empty"));
	n = 99;
	ok(watch_scan(P("empty"), &v, &n, &eb) == SPD_OK && n == 0,
	    "empty run dir: no entries");
	watch_found_free(v, n);
}

/* Removes one path (nftw callback). */
static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes a directory tree. */
static void
rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int seen[8];

/* Records a changed tag. */
static void
on_change(void *arg, int tag)
{
	(void)arg;
	if (tag >= 0 && tag < 8)
		seen[tag]++;
}

/* Polls up to ms for events and drains them; returns seen[tag]. */
static int
wait_tag(struct watch *w, int tag, int ms)
{
	struct spd_errbuf	eb;
	struct pollfd		pfd = { .fd = watch_fd(w), .events = POLLIN };
	bool			overflow = false;

	memset(seen, 0, sizeof seen);
	if (poll(&pfd, 1, ms) > 0 &&
	    watch_read(w, on_change, NULL, &overflow, &eb) != SPD_OK)
		printf("#   watch_read: %s\n", eb.msg);
	if (overflow)
		printf("#   overflow\n");
	return seen[tag];
}

/* watch_root: the watched directory against what the path names now. */
static void
test_roots(struct watch *w)
{
	struct spd_errbuf eb;

	ok(watch_root(w, 6, P("other")) == WATCH_ROOT_OK, "root: ok");
	ok(watch_root(w, 7, P("nope")) == WATCH_ROOT_MISSING,
	    "root of a missing dir: missing");
	ok(watch_root(w, 7, P("other")) == WATCH_ROOT_LOST,
	    "an existing dir never watched for the tag: lost");
	rename(P("other"), P("other.old"));
	ok(wait_tag(w, 6, 2000) > 0, "run dir moved away: tag 6");
	ok(watch_root(w, 6, P("other")) == WATCH_ROOT_MISSING,
	    "moved away: missing");
	put(P("other.old/y.safetensors"), "x");
	ok(wait_tag(w, 6, 100) == 0, "the moved-away dir is no longer watched");
	mk(P("other"));
	ok(watch_root(w, 6, P("other")) == WATCH_ROOT_LOST,
	    "a new dir in its place: lost");
	watch_remove_all(w, 6);
	ok(watch_add(w, 6, P("other"), &eb) == SPD_OK &&
	    watch_root(w, 6, P("other")) == WATCH_ROOT_OK, "re-added: ok");
	rm_tree(P("other"));
	ok(wait_tag(w, 6, 2000) > 0 &&
	    watch_root(w, 6, P("other")) == WATCH_ROOT_MISSING,
	    "deleted: tag 6, then missing");
	mk(P("other"));
	ok(watch_root(w, 6, P("other")) == WATCH_ROOT_LOST,
	    "recreated: lost until watched again");
}

/* The inotify wrapper. */
static void
test_inotify(void)
{
	struct spd_errbuf	 eb;
	struct watch		*w = NULL;
	int			 fl;

	mk(P("live"));
	mk(P("live/checkpoint-3"));
	mk(P("other"));
	if (!ok(watch_open(&w, &eb) == SPD_OK, "watch_open")) {
		printf("#   %s\n", eb.msg);
		return;
	}
	fl = fcntl(watch_fd(w), F_GETFL);
	ok(fl != -1 && (fl & O_NONBLOCK) &&
	    (fcntl(watch_fd(w), F_GETFD) & FD_CLOEXEC), "fd non-blocking, "
	    "close-on-exec");
	ok(watch_add(w, 5, P("live"), &eb) == SPD_OK, "watch_add live");
	ok(watch_add(w, 5, P("live"), &eb) == SPD_OK, "watch_add again: fine");
	ok(watch_add(w, 6, P("other"), &eb) == SPD_OK, "watch_add other");
	ok(watch_add(w, 7, P("nope"), &eb) == SPD_ENOTFOUND,
	    "watch_add missing dir: SPD_ENOTFOUND");
	put(P("plain/notadir"), "x");
	ok(watch_add(w, 7, P("plain/notadir"), &eb) == SPD_ENOTFOUND,
	    "watch_add on a file: SPD_ENOTFOUND");
	ok(wait_tag(w, 5, 50) == 0, "quiet before any change");

	put(P("live/checkpoint-3/trainer_state.json"), "{}");
	ok(wait_tag(w, 5, 2000) > 0 && seen[6] == 0,
	    "write inside an existing checkpoint dir: tag 5 only");
	mk(P("live/checkpoint-7"));
	ok(wait_tag(w, 5, 2000) > 0, "checkpoint-7 created: tag 5");
	put(P("live/checkpoint-7/model.safetensors"), "x");
	ok(wait_tag(w, 5, 2000) > 0,
	    "file inside the new checkpoint-7: tag 5 (its dir is watched)");
	mk(P("live/tmp-checkpoint-9"));
	ok(wait_tag(w, 5, 2000) > 0, "tmp-checkpoint-9 created: tag 5");
	put(P("live/tmp-checkpoint-9/model.safetensors"), "x");
	ok(wait_tag(w, 5, 100) == 0, "inside tmp-checkpoint-9: not watched");
	rename(P("live/tmp-checkpoint-9"), P("live/checkpoint-9"));
	ok(wait_tag(w, 5, 2000) > 0, "renamed to checkpoint-9: tag 5");
	put(P("live/checkpoint-9/trainer_state.json"), "{}");
	ok(wait_tag(w, 5, 2000) > 0, "inside checkpoint-9 after the rename");
	put(P("live/.partial"), "x");
	ok(wait_tag(w, 5, 100) == 0, "dot-file in the run dir: ignored");
	put(P("other/model.safetensors"), "x");
	ok(wait_tag(w, 6, 2000) > 0 && seen[5] == 0, "other run: tag 6 only");

	rm_tree(P("live/checkpoint-9"));
	ok(wait_tag(w, 5, 2000) > 0, "checkpoint-9 deleted (rotation): tag 5");

	watch_remove_all(w, 5);
	put(P("live/checkpoint-7/config.json"), "x");
	put(P("live/new.safetensors"), "x");
	ok(wait_tag(w, 5, 100) == 0, "after watch_remove_all(5): silent");
	put(P("other/x.safetensors"), "x");
	ok(wait_tag(w, 6, 2000) > 0, "tag 6 still watched");
	rm_tree(P("other"));
	ok(wait_tag(w, 6, 2000) > 0, "run dir deleted: tag 6");
	mk(P("other"));
	put(P("other/model.safetensors"), "x");
	ok(wait_tag(w, 6, 100) == 0, "recreated run dir: not watched");
	ok(watch_add(w, 6, P("other"), &eb) == SPD_OK, "watch_add it again");
	put(P("other/x.safetensors"), "x");
	ok(wait_tag(w, 6, 2000) > 0, "recreated run dir watched again");
	watch_remove_all(w, 42);
	test_roots(w);
	watch_close(w);
	watch_close(NULL);
}

/* Which names are HF Trainer checkpoint directories (watched, scanned). */
static void
test_ckpt_names(void)
{
	static const struct {
		const char	*name;
		bool		 want;
	} cases[] = {
		{ "checkpoint-0", true }, { "checkpoint-1500", true },
		{ "checkpoint-", false }, { "checkpoint-12a", false },
		{ "tmp-checkpoint-10", false }, { "checkpoint--1", false },
		{ "checkpoint-99999999999999999999999", false },
	};
	size_t i;

	for (i = 0; i < nitems(cases); i++)
		ok(layout_ckpt_name(cases[i].name) == cases[i].want,
		    "layout_ckpt_name(\"%s\") is %d", cases[i].name,
		    cases[i].want);
}

/* layout_train_log(): numbers kept, malformed things skipped and counted. */
static void
test_train_log(void)
{
	struct spd_errbuf	 eb = { "" };
	struct train_point	*v = NULL;
	size_t			 n = 9, skipped = 9;
	char			*big;
	size_t			 i, len;

	mk(P("tl"));
	ok(layout_train_log(P("tl"), &v, &n, &skipped, &eb) == SPD_ENOTFOUND &&
	    v == NULL && n == 0, "no trainer_state.json: ENOTFOUND");
	put(P("tl/trainer_state.json"), "{\"global_step\": 3, \"log");
	ok(layout_train_log(P("tl"), &v, &n, &skipped, &eb) == SPD_EFORMAT,
	    "half-written JSON: EFORMAT (%s)", eb.msg);
	put(P("tl/trainer_state.json"), "{\"global_step\": 3}");
	ok(layout_train_log(P("tl"), &v, &n, &skipped, &eb) == SPD_OK &&
	    n == 0 && skipped == 0 && v == NULL, "no log_history: nothing");
	put(P("tl/trainer_state.json"), "{\"log_history\": {\"step\": 1}}");
	ok(layout_train_log(P("tl"), &v, &n, &skipped, &eb) == SPD_OK &&
	    n == 0 && skipped == 1, "log_history not a list: one skipped");
	put(P("tl/trainer_state.json"), "{\"log_history\": ["
	    "{\"loss\": 2.5, \"learning_rate\": 1e-4, \"step\": 10},"
	    "{\"eval_loss\": 2.25, \"epoch\": 0.5, \"step\": 10},"
	    "7, {\"loss\": 1}, {\"step\": -1, \"loss\": 1},"
	    "{\"step\": 2.5, \"loss\": 1}, {\"step\": \"20\", \"loss\": 1},"
	    "{\"step\": 20, \"loss\": \"x\", \"grad_norm\": null,"
	    " \"a b\": 1, \"ok/name.1-x\": 3, \"nested\": {\"v\": 1},"
	    " \"" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "\": 1}]}");
	ok(layout_train_log(P("tl"), &v, &n, &skipped, &eb) == SPD_OK &&
	    n == 5 && skipped == 10, "5 numbers kept, 10 malformed skipped");
	ok(n == 5 && strcmp(v[0].name, "loss") == 0 && v[0].step == 10 &&
	    v[0].value == 2.5 && strcmp(v[1].name, "learning_rate") == 0 &&
	    v[1].value == 1e-4 && strcmp(v[3].name, "epoch") == 0 &&
	    strcmp(v[4].name, "ok/name.1-x") == 0 && v[4].step == 20 &&
	    v[4].value == 3, "names, steps and values in file order");
	free(v);
	v = NULL;

	/* Over LAYOUT_MAX_TRAIN numbers: the rest is skipped, bounded. */
	len = 64 + (size_t)(LAYOUT_MAX_TRAIN + 10) * 40;
	if ((big = malloc(len)) == NULL)
		exit(1);
	i = (size_t)snprintf(big, len, "{\"log_history\": [");
	for (n = 0; n < LAYOUT_MAX_TRAIN + 10; n++)
		i += (size_t)snprintf(big + i, len - i, "%s{\"loss\": 1, "
		    "\"step\": %zu}", n > 0 ? "," : "", n);
	snprintf(big + i, len - i, "]}");
	put(P("tl/trainer_state.json"), big);
	free(big);
	ok(layout_train_log(P("tl"), &v, &n, &skipped, &eb) == SPD_OK &&
	    n == LAYOUT_MAX_TRAIN && skipped == 10, "at most %d numbers, the "
	    "rest counted as skipped", LAYOUT_MAX_TRAIN);
	free(v);
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(top, sizeof top, "%s/test_watch.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_ckpt_names();
	test_hf();
	test_plain();
	test_vanish();
	test_train_log();
	test_inotify();
	rm_tree(top);
	return tap_done();
}
