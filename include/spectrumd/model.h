/*
 * model.h: the weights of one checkpoint, whatever their layout: a single
 * .safetensors file, a directory with model.safetensors, or a sharded set
 * named by model.safetensors.index.json. Tensors of all shards appear as
 * one list in the order of the files then of their offsets.
 */
#ifndef SPECTRUMD_MODEL_H
#define SPECTRUMD_MODEL_H

#include <stddef.h>

#include "spectrumd/common.h"
#include "spectrumd/safetensors.h"

/* A tensor of the model: its header entry, its bytes and its file. */
struct model_tensor {
	const struct st_tensor	*t;
	const void		*data;		/* end − begin bytes */
	const struct st_file	*file;
	size_t			 index;		/* within file */
};

struct model;

/*
 * Opens path (file, directory, or index.json). For an index: every shard it
 * names must exist in the index's directory (names with '/' or starting with
 * '.' are rejected), every tensor it lists must be found in the shard it
 * names, and no tensor may appear in two shards. A directory with neither
 * model.safetensors nor an index, but exactly the files *.safetensors, opens
 * those in name order. Returns SPD_OK and *out, SPD_ENOTFOUND (no weights
 * here: eb says what was looked for), SPD_EFORMAT, SPD_EIO or SPD_ENOMEM.
 */
enum spd_err	 model_open(const char *path, struct model **out,
		    struct spd_errbuf *eb);
void		 model_close(struct model *m);	/* NULL-safe */

size_t		 model_count(const struct model *m);
/* Returns tensor i (< model_count). Borrowed; valid until model_close. */
const struct model_tensor *model_tensor(const struct model *m, size_t i);
/* Total bytes of tensor data over all files. */
uint64_t	 model_bytes(const struct model *m);
/* Number of files and their paths (borrowed). */
size_t		 model_nfiles(const struct model *m);
const char	*model_file_path(const struct model *m, size_t i);
/* Metadata value of the first file that has key, or NULL (borrowed). */
const char	*model_meta(const struct model *m, const char *key);

#define MODEL_INDEX_NAME	"model.safetensors.index.json"
#define MODEL_MAX_INDEX		(64u << 20)	/* bytes of an index file */
#define MODEL_MAX_SHARDS	100000u		/* distinct shards of an index */

/* One entry of an index's weight_map: a tensor and the shard it is in. */
struct model_index_entry {
	char	*tensor;
	size_t	 shard;		/* into model_index.shards */
};

/* What a model.safetensors.index.json says: the one parser of it. */
struct model_index {
	char				**shards;	/* sorted, distinct */
	size_t				  nshards;	/* ≥ 1 */
	struct model_index_entry	 *entries;	/* in file order */
	size_t				  nentries;
};

/*
 * Reads the index file at path into *ix (zeroed first; model_index_free it
 * on success). Its weight_map must be a non-empty object whose values are
 * plain file names (not empty, no '/', not starting with '.', at most
 * NAME_MAX bytes), naming at most MODEL_MAX_SHARDS distinct shards. Checks
 * nothing on disk besides the index. Returns SPD_OK, what spd_read_file()
 * returns for a file of at most MODEL_MAX_INDEX bytes (SPD_ENOTFOUND,
 * SPD_EUNSUPPORTED, SPD_EFORMAT, SPD_EBUSY, SPD_EIO), SPD_EFORMAT (not
 * such an index) or SPD_ENOMEM; eb says why, naming path.
 */
enum spd_err	 model_index_read(const char *path, struct model_index *ix,
		    struct spd_errbuf *eb);
void		 model_index_free(struct model_index *ix);

#define MODEL_MAX_CONFIG	(1u << 20)	/* bytes of config.json */

/*
 * Returns a malloc'ed copy of the "_name_or_path" string of dir/config.json
 * (the Hugging Face name of the base model, e.g. "meta-llama/Llama-2-7b-hf",
 * or the local path it was loaded from), or NULL when the file is missing,
 * over MODEL_MAX_CONFIG bytes, malformed, or has no such non-empty string.
 */
char		*model_config_name(const char *dir);

#endif
