/*
 * layout.h: what a run directory holds (DESIGN.md §3): watch_scan()
 * classifies its checkpoints right now (no inotify, no timing: call it once
 * the directory has settled; watch.h says when something changed).
 */
#ifndef SPECTRUMD_LAYOUT_H
#define SPECTRUMD_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>

#include "spectrumd/common.h"

#define WATCH_MAX_FOUND		100000	/* entries per scan */
#define WATCH_MAX_JSON		(64u << 20)	/* trainer_state.json */
#define LAYOUT_CKPT_PREFIX	"checkpoint-"	/* HF Trainer checkpoint dirs */

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

/* True when name is LAYOUT_CKPT_PREFIX followed by decimal digits only. */
bool		 layout_ckpt_name(const char *name);

#define LAYOUT_MAX_TRAIN	65536	/* training-log numbers per checkpoint */

/*
 * Reads the training log of the HF checkpoint directory dir: every number
 * of every entry of trainer_state.json "log_history" but its "step" (loss,
 * learning_rate, grad_norm, epoch, eval_* ...), at that step. An entry
 * that is not an object or lacks a whole, non-negative "step", a value that
 * is not a number, a name that fails spd_train_name_ok(), and anything past
 * LAYOUT_MAX_TRAIN numbers is skipped and counted in *skipped; no
 * log_history at all is *n = 0, nothing skipped. Returns SPD_OK with *out
 * (free(); NULL when *n is 0), SPD_ENOTFOUND (no trainer_state.json),
 * SPD_EFORMAT (not a JSON object, or over WATCH_MAX_JSON), SPD_EIO or
 * SPD_ENOMEM. Reentrant.
 */
enum spd_err	 layout_train_log(const char *dir, struct train_point **out,
		    size_t *n, size_t *skipped, struct spd_errbuf *eb);

/*
 * Whether the HF checkpoint directory dir ends its training: its
 * trainer_state.json has whole "global_step" and "max_steps", max_steps
 * above 0 and global_step at least max_steps (the Trainer's last save).
 * SPD_OK with *finished, or layout_train_log()'s errors. Reentrant.
 */
enum spd_err	 layout_train_finished(const char *dir, bool *finished,
		    struct spd_errbuf *eb);

#endif
