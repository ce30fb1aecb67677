/*
 * names.c: module, type and layer of a tensor name, the way the reference
 * Spectrum script derives them (DESIGN.md §1), and the file-name slug.
 *
 * Only ASCII digits make an all-digit component (Python's str.isdigit()
 * also accepts other Unicode digits; checkpoints do not use them). A
 * component with more digits than an int holds still splits the type as
 * the reference does; its layer saturates at INT_MAX.
 *
 * Embedding and head detection looks at the last component of the module,
 * and only for modules with no layer (layer == -1):
 *   input embeddings: embed_tokens, wte, word_embeddings, embed_in,
 *                     tok_embeddings, embeddings
 *   output heads:     lm_head, embed_out, and "output" as a whole top-level
 *                     module name (Meta's original Llama layout)
 * Position embeddings (wpe, embed_positions) are not input embeddings.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/names.h"

#define WEIGHT_SUFFIX	".weight"

static const char *const input_embeddings[] = {
	"embed_tokens", "wte", "word_embeddings", "embed_in",
	"tok_embeddings", "embeddings",
};

static const char *const heads[] = {
	"lm_head", "embed_out",
};

/* True when s[0..len) is a non-empty run of ASCII digits. */
static bool
all_digits(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Parses len ASCII digits, saturating at INT_MAX. */
static int
digits_value(const char *s, size_t len)
{
	long long	v = 0;
	size_t		i;

	for (i = 0; i < len; i++) {
		v = v * 10 + (s[i] - '0');
		if (v > INT_MAX)
			return INT_MAX;
	}
	return (int)v;
}

/* Length of the component that starts at s (up to '.' or the end). */
static size_t
component_len(const char *s)
{
	const char *dot = strchr(s, '.');

	return dot != NULL ? (size_t)(dot - s) : strlen(s);
}

/* True when name is one of the n words in list. */
static bool
in_list(const char *name, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(name, list[i]) == 0)
			return true;
	return false;
}

/* Sets the embedding and head flags of a module with no layer. */
static void
classify(const char *module, struct name_info *ni)
{
	const char *last = strrchr(module, '.');

	last = last != NULL ? last + 1 : module;
	if (in_list(last, heads, nitems(heads)) ||
	    strcmp(module, "output") == 0)
		ni->head = true;
	else if (in_list(last, input_embeddings, nitems(input_embeddings)))
		ni->embedding = true;
	if (ni->head)
		ni->embedding = true;
}

/*
 * Builds the type from the components after the first all-digit one (at
 * rest), folding the next all-digit component into "*" when group.
 */
static char *
make_type(const char *rest, bool group)
{
	char	*type, *p;
	size_t	 n;
	bool	 folded = false;

	/* "*" is never longer than the digits it replaces. */
	if ((type = malloc(strlen(rest) + 1)) == NULL)
		return NULL;
	p = type;
	while (*rest != '\0') {
		n = component_len(rest);
		if (group && !folded && all_digits(rest, n)) {
			*p++ = '*';
			folded = true;
		} else {
			memcpy(p, rest, n);
			p += n;
		}
		rest += n;
		if (*rest == '.')
			*p++ = *rest++;
	}
	*p = '\0';
	return type;
}

/* Splits a tensor name into module, type, layer and embedding flags. */
enum spd_err
names_parse(const char *tensor, bool group_experts, struct name_info *out)
{
	struct name_info	 ni = { .layer = -1 };
	const char		*c;
	size_t			 len, slen = strlen(WEIGHT_SUFFIX), n;

	if (tensor == NULL || out == NULL || *tensor == '\0')
		return SPD_EINVAL;
	len = strlen(tensor);
	if (len > slen && strcmp(tensor + len - slen, WEIGHT_SUFFIX) == 0)
		len -= slen;
	if ((ni.module = strndup(tensor, len)) == NULL)
		return SPD_ENOMEM;

	for (c = ni.module; ; c += n + 1) {
		n = component_len(c);
		if (all_digits(c, n)) {
			ni.layer = digits_value(c, n);
			ni.type = make_type(c[n] == '.' ? c + n + 1 : c + n,
			    group_experts);
			break;
		}
		if (c[n] == '\0')
			break;
	}
	if (ni.layer == -1) {
		ni.type = strdup(ni.module);
		classify(ni.module, &ni);
	}
	if (ni.type == NULL) {
		names_cleanup(&ni);
		return SPD_ENOMEM;
	}
	*out = ni;
	return SPD_OK;
}

/* Frees the strings of ni and resets it. */
void
names_cleanup(struct name_info *ni)
{
	if (ni == NULL)
		return;
	free(ni->module);
	free(ni->type);
	ni->module = ni->type = NULL;
	ni->layer = -1;
	ni->embedding = ni->head = false;
}

/* Writes the reference slug of path's basename into buf. */
enum spd_err
names_slug(const char *path, char *buf, size_t len)
{
	const char	*end, *start;
	size_t		 n, i;

	if (path == NULL || buf == NULL || len == 0)
		return SPD_EINVAL;
	buf[0] = '\0';
	end = path + strlen(path);
	while (end > path && end[-1] == '/')
		end--;
	start = end;
	while (start > path && start[-1] != '/')
		start--;
	n = (size_t)(end - start);
	if (n == 0 || n >= len)
		return SPD_EINVAL;
	for (i = 0; i < n; i++)
		buf[i] = start[i] == '_' ? '-' : start[i];
	buf[n] = '\0';
	return SPD_OK;
}

/* Writes Axolotl's slug of a model name into buf. */
enum spd_err
names_model_slug(const char *name, char *buf, size_t len)
{
	size_t i, n;

	if (name == NULL || buf == NULL || len == 0)
		return SPD_EINVAL;
	buf[0] = '\0';
	n = strlen(name);
	if (n == 0 || n >= len)
		return SPD_EINVAL;
	for (i = 0; i < n; i++) {
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return SPD_EINVAL;
		buf[i] = name[i] == '/' || name[i] == '_' ? '-' : name[i];
	}
	buf[n] = '\0';
	return SPD_OK;
}
