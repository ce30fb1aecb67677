/*
 * names.h: from a tensor name to module, type and layer (DESIGN.md §1).
 * Pure apart from allocating the strings it returns.
 */
#ifndef SPECTRUMD_NAMES_H
#define SPECTRUMD_NAMES_H

#include <stdbool.h>

#include "spectrumd/common.h"

struct name_info {
	char	*module;	/* tensor name without ".weight" */
	char	*type;		/* suffix after the first all-digit part */
	int	 layer;		/* that number, or -1 */
	bool	 embedding;	/* input embedding or output head (lm_head) */
	bool	 head;		/* the output head (lm_head, embed_out, …) */
};

/*
 * Splits tensor (e.g. "model.layers.3.mlp.down_proj.weight") into module
 * "model.layers.3.mlp.down_proj", type "mlp.down_proj", layer 3. No
 * all-digit component: type = module, layer -1. With group_experts a second
 * all-digit component after the first becomes "*" in the type
 * ("mlp.experts.*.down_proj"). A name without a ".weight" suffix keeps its
 * full name as module. Returns SPD_OK and *out (release with
 * names_cleanup), SPD_EINVAL (empty name) or SPD_ENOMEM.
 */
enum spd_err	names_parse(const char *tensor, bool group_experts,
		    struct name_info *out);
void		names_cleanup(struct name_info *ni);	/* NULL-safe */

/*
 * Writes the reference script's slug of a model path into buf: the basename
 * (trailing '/' ignored) with '/' and '_' replaced by '-'. Returns SPD_OK or
 * SPD_EINVAL when it does not fit.
 */
enum spd_err	names_slug(const char *path, char *buf, size_t len);

/*
 * Writes Axolotl's Spectrum plugin slug of a model name into buf: the whole
 * name with '/' and '_' replaced by '-' ("meta-llama/Llama_2" becomes
 * "meta-llama-Llama-2"). Returns SPD_OK, or SPD_EINVAL when name is empty,
 * holds control bytes, or does not fit.
 */
enum spd_err	names_model_slug(const char *name, char *buf, size_t len);

#endif
