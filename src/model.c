/*
 * model.c: the weights of one checkpoint as one tensor list, whatever the
 * layout: a single file, a directory with model.safetensors, a sharded set
 * named by model.safetensors.index.json, or a directory of *.safetensors.
 * Every file is opened (validated and mapped) once; a sharded set is
 * checked against its index in both directions.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "spectrumd/model.h"

#define SINGLE_NAME	"model.safetensors"
#define INDEX_NAME	MODEL_INDEX_NAME
#define INDEX_SUFFIX	".index.json"
#define ST_SUFFIX	".safetensors"
#define MAX_FILES	MODEL_MAX_SHARDS	/* files in a directory */

struct model {
	struct st_file		**files;
	size_t			  nfiles;
	struct model_tensor	 *tensors;
	size_t			  ntensors;
	uint64_t		  bytes;
};

/* One tensor of the model in a name-sorted lookup table. */
struct name_ref {
	const char	*name;
	size_t		 file;
	size_t		 index;		/* within file */
	bool		 seen;		/* named by the index */
};


/* Returns a malloc'd copy of the directory part of path ("." if none). */
static char *
dir_of(const char *path)
{
	const char	*slash = strrchr(path, '/');
	size_t		 n;
	char		*p;

	if (slash == NULL)
		return strdup(".");
	n = slash == path ? 1 : (size_t)(slash - path);
	if ((p = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(p, path, n);
	p[n] = '\0';
	return p;
}

/* Returns the last component of path (borrowed). */
static const char *
base_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* True when something (even a dangling link) exists at path. */
static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* qsort: name_ref by name. */
static int
cmp_ref(const void *a, const void *b)
{
	const struct name_ref *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* Frees a list of n strings. */
static void
free_names(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n && v != NULL; i++)
		free(v[i]);
	free(v);
}

/* Opens path as the next file of m (files has room for it). */
static enum spd_err
open_one(struct model *m, const char *path, struct spd_errbuf *eb)
{
	enum spd_err rc;

	if ((rc = safetensors_open(path, &m->files[m->nfiles], eb)) != SPD_OK)
		return rc;
	m->nfiles++;
	return SPD_OK;
}

/* Opens every path of the list, in order, into m->files. */
static enum spd_err
open_files(struct model *m, char **paths, size_t n, struct spd_errbuf *eb)
{
	enum spd_err	rc;
	size_t		i;

	if ((m->files = calloc(n, sizeof *m->files)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	for (i = 0; i < n; i++)
		if ((rc = open_one(m, paths[i], eb)) != SPD_OK)
			return rc;
	return SPD_OK;
}

/*
 * Builds the name-sorted table of every tensor of m and rejects a name
 * found in two files. *out is NULL when m has no tensors.
 */
static enum spd_err
build_refs(const struct model *m, struct name_ref **out, size_t *nout,
    struct spd_errbuf *eb)
{
	struct name_ref	*r;
	char		 nm[SPD_NAME_SHOWN + 8];
	size_t		 n = 0, f, i;

	*out = NULL;
	*nout = 0;
	for (f = 0; f < m->nfiles; f++)
		n += safetensors_header(m->files[f])->ntensors;
	if (n == 0)
		return SPD_OK;
	if ((r = calloc(n, sizeof *r)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	n = 0;
	for (f = 0; f < m->nfiles; f++) {
		const struct st_header *h = safetensors_header(m->files[f]);

		for (i = 0; i < h->ntensors; i++, n++) {
			r[n].name = h->tensors[i].name;
			r[n].file = f;
			r[n].index = i;
		}
	}
	qsort(r, n, sizeof *r, cmp_ref);
	for (i = 1; i < n; i++) {
		if (strcmp(r[i - 1].name, r[i].name) == 0) {
			const char *a = safetensors_path(m->files[r[i - 1].file]);
			const char *b = safetensors_path(m->files[r[i].file]);

			spd_fail(eb, SPD_EFORMAT, "tensor \"%s\" appears in "
			    "both %s and %s", spd_shown(r[i].name, nm, sizeof nm),
			    a, b);
			free(r);
			return SPD_EFORMAT;
		}
	}
	*out = r;
	*nout = n;
	return SPD_OK;
}

/* Concatenates the files' tensors (file order, then offset order). */
static enum spd_err
build_list(struct model *m, struct spd_errbuf *eb)
{
	size_t n = 0, f, i;

	for (f = 0; f < m->nfiles; f++)
		n += safetensors_header(m->files[f])->ntensors;
	if (n > 0 && (m->tensors = calloc(n, sizeof *m->tensors)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	for (f = 0; f < m->nfiles; f++) {
		const struct st_header *h = safetensors_header(m->files[f]);

		for (i = 0; i < h->ntensors; i++) {
			struct model_tensor *t = &m->tensors[m->ntensors++];

			t->t = &h->tensors[i];
			t->data = safetensors_data(m->files[f], i);
			t->file = m->files[f];
			t->index = i;
		}
		m->bytes += h->data_len;
	}
	return SPD_OK;
}

/* True for a shard name that stays inside the index's directory. */
static bool
plain_name(const char *s)
{
	return s[0] != '\0' && s[0] != '.' && strchr(s, '/') == NULL &&
	    strlen(s) <= NAME_MAX;
}

/* Frees what an index holds and empties it (NULL-safe, safe to repeat). */
void
model_index_free(struct model_index *ix)
{
	size_t i;

	if (ix == NULL)
		return;
	free_names(ix->shards, ix->nshards);
	for (i = 0; i < ix->nentries; i++)
		free(ix->entries[i].tensor);
	free(ix->entries);
	memset(ix, 0, sizeof *ix);
}

/*
 * Checks every entry of the weight_map wm (strings naming plain files) and
 * counts them into *n.
 */
static enum spd_err
index_validate(const cJSON *wm, const char *ipath, size_t *n,
    struct spd_errbuf *eb)
{
	const cJSON	*it;
	char		 nm[SPD_NAME_SHOWN + 8], sh[SPD_NAME_SHOWN + 8];

	*n = 0;
	cJSON_ArrayForEach(it, wm) {
		if (!cJSON_IsString(it))
			return spd_fail(eb, SPD_EFORMAT, "%s: weight_map entry "
			    "\"%s\" is not a string", ipath,
			    spd_shown(it->string, nm, sizeof nm));
		if (!plain_name(it->valuestring))
			return spd_fail(eb, SPD_EFORMAT, "%s: weight_map names "
			    "shard \"%s\" for \"%s\": shard names must be plain "
			    "file names (no '/', not starting with '.')", ipath,
			    spd_shown(it->valuestring, sh, sizeof sh),
			    spd_shown(it->string, nm, sizeof nm));
		(*n)++;
	}
	if (*n == 0)
		return spd_fail(eb, SPD_EFORMAT, "%s: weight_map is empty",
		    ipath);
	return SPD_OK;
}

/*
 * Fills ix->shards with the sorted, distinct shard names of the n entries
 * of wm (known valid).
 */
static enum spd_err
index_shards(const cJSON *wm, size_t n, const char *ipath,
    struct model_index *ix, struct spd_errbuf *eb)
{
	const cJSON	 *it;
	const char	**v;
	size_t		  i = 0, k;

	if ((v = calloc(n, sizeof *v)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, wm)
		v[i++] = it->valuestring;
	qsort(v, n, sizeof *v, spd_cmp_str);
	for (i = k = 0; i < n; i++)	/* unique, in place */
		if (k == 0 || strcmp(v[k - 1], v[i]) != 0)
			v[k++] = v[i];
	if (k > MODEL_MAX_SHARDS) {
		free(v);
		return spd_fail(eb, SPD_EFORMAT, "%s: names %zu shards, over "
		    "the limit of %u", ipath, k, MODEL_MAX_SHARDS);
	}
	if ((ix->shards = calloc(k, sizeof *ix->shards)) == NULL) {
		free(v);
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	}
	for (i = 0; i < k; i++, ix->nshards++)
		if ((ix->shards[i] = strdup(v[i])) == NULL) {
			free(v);
			return spd_fail(eb, SPD_ENOMEM, "out of memory");
		}
	free(v);
	return SPD_OK;
}

/* Returns the position of name in the sorted list v[0..n), or n. */
static size_t
find_name(char **v, size_t n, const char *name)
{
	char **p = bsearch(&name, v, n, sizeof *v, spd_cmp_str);

	return p != NULL ? (size_t)(p - v) : n;
}

/* Fills ix->entries from the n entries of wm, in file order. */
static enum spd_err
index_entries(const cJSON *wm, size_t n, struct model_index *ix,
    struct spd_errbuf *eb)
{
	const cJSON			*it;
	struct model_index_entry	*e;

	if ((ix->entries = calloc(n, sizeof *ix->entries)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, wm) {
		e = &ix->entries[ix->nentries];
		if ((e->tensor = strdup(it->string)) == NULL)
			return spd_fail(eb, SPD_ENOMEM, "out of memory");
		e->shard = find_name(ix->shards, ix->nshards,
		    it->valuestring);
		ix->nentries++;
	}
	return SPD_OK;
}

/* Reads and checks an index file (see model.h). */
enum spd_err
model_index_read(const char *ipath, struct model_index *ix,
    struct spd_errbuf *eb)
{
	cJSON		*root = NULL;
	const cJSON	*wm;
	char		*text = NULL;
	const char	*end = NULL;
	size_t		 len = 0, n = 0;
	enum spd_err	 rc;

	memset(ix, 0, sizeof *ix);
	rc = spd_read_file(AT_FDCWD, ipath, MODEL_MAX_INDEX, &text, &len, NULL,
	    eb);
	if (rc != SPD_OK)
		return rc;
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
	if (root == NULL)
		rc = spd_fail(eb, SPD_EFORMAT, "%s: not valid JSON (error at "
		    "offset %td)", ipath, end != NULL ? end - text : 0);
	else if (!cJSON_IsObject(root) || !cJSON_IsObject(wm))
		rc = spd_fail(eb, SPD_EFORMAT, "%s: not an index: expected a "
		    "JSON object with a \"weight_map\" object", ipath);
	else if ((rc = index_validate(wm, ipath, &n, eb)) == SPD_OK &&
	    (rc = index_shards(wm, n, ipath, ix, eb)) == SPD_OK)
		rc = index_entries(wm, n, ix, eb);
	if (rc != SPD_OK)
		model_index_free(ix);
	cJSON_Delete(root);
	free(text);
	return rc;
}

/*
 * Checks the index against the opened shards (in ix->shards order): every
 * listed tensor is in the shard it names, every tensor of a shard is
 * listed, none is listed twice.
 */
static enum spd_err
index_check(const struct model *m, const struct model_index *ix,
    const char *dir, const char *iname, struct spd_errbuf *eb)
{
	const struct model_index_entry	*e;
	struct name_ref			*refs, key, *r;
	char				 nm[SPD_NAME_SHOWN + 8];
	char				**shards = ix->shards;
	size_t				 nrefs, i, s;
	enum spd_err			 rc;

	if ((rc = build_refs(m, &refs, &nrefs, eb)) != SPD_OK)
		return rc;
	for (e = ix->entries; e < ix->entries + ix->nentries; e++) {
		s = e->shard;
		key.name = e->tensor;
		r = nrefs > 0 ? bsearch(&key, refs, nrefs, sizeof *refs,
		    cmp_ref) : NULL;
		spd_shown(e->tensor, nm, sizeof nm);
		if (r == NULL) {
			rc = spd_fail(eb, SPD_EFORMAT, "%s: index %s puts "
			    "tensor \"%s\" in shard \"%s\", which does not "
			    "contain it (nor does any other shard)", dir, iname,
			    nm, shards[s]);
			goto out;
		}
		if (r->file != s) {
			rc = spd_fail(eb, SPD_EFORMAT, "%s: index %s puts "
			    "tensor \"%s\" in shard \"%s\", but it is in shard "
			    "\"%s\"", dir, iname, nm, shards[s],
			    shards[r->file]);
			goto out;
		}
		if (r->seen) {
			rc = spd_fail(eb, SPD_EFORMAT, "%s: index %s lists "
			    "tensor \"%s\" twice", dir, iname, nm);
			goto out;
		}
		r->seen = true;
	}
	for (i = 0; i < nrefs; i++) {
		if (!refs[i].seen) {
			rc = spd_fail(eb, SPD_EFORMAT, "%s: shard \"%s\" holds "
			    "tensor \"%s\", which index %s does not list", dir,
			    shards[refs[i].file], spd_shown(refs[i].name, nm,
			    sizeof nm), iname);
			goto out;
		}
	}
out:
	free(refs);
	return rc;
}

/* Opens a sharded model from its index file. */
static enum spd_err
open_index(struct model *m, const char *ipath, struct spd_errbuf *eb)
{
	struct model_index	 ix;
	char			*dir = NULL, **paths = NULL;
	const char		*iname = base_of(ipath);
	size_t			 i;
	enum spd_err		 rc;

	if ((rc = model_index_read(ipath, &ix, eb)) != SPD_OK)
		return rc;
	if ((dir = dir_of(ipath)) == NULL ||
	    (paths = calloc(ix.nshards, sizeof *paths)) == NULL) {
		rc = spd_fail(eb, SPD_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < ix.nshards; i++) {
		if ((paths[i] = spd_path_join(dir, ix.shards[i])) == NULL) {
			rc = spd_fail(eb, SPD_ENOMEM, "out of memory");
			goto out;
		}
		if (!exists(paths[i])) {
			rc = spd_fail(eb, SPD_ENOTFOUND, "%s: index %s names "
			    "shard \"%s\", which does not exist", dir, iname,
			    ix.shards[i]);
			goto out;
		}
	}
	if ((rc = open_files(m, paths, ix.nshards, eb)) != SPD_OK)
		goto out;
	rc = index_check(m, &ix, dir, iname, eb);
out:
	free_names(paths, ix.nshards);
	free(dir);
	model_index_free(&ix);
	return rc;
}

/* Lists the *.safetensors files of dir (no dot-files), sorted by name. */
static enum spd_err
list_dir(const char *dir, char ***out, size_t *nout, struct spd_errbuf *eb)
{
	DIR		*d;
	struct dirent	*de;
	char		**v = NULL, **nv;
	size_t		 n = 0, cap = 0;
	enum spd_err	 rc = SPD_OK;

	*out = NULL;
	*nout = 0;
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)	/* vanished */
			return spd_fail(eb, SPD_ENOTFOUND, "%s: no such "
			    "directory", dir);
		return spd_fail(eb, SPD_EIO, "%s: opendir: %s", dir,
		    strerror(errno));
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !spd_ends_with(de->d_name, ST_SUFFIX))
			continue;
		if (n == MAX_FILES) {
			rc = spd_fail(eb, SPD_EFORMAT, "%s: more than %u "
			    "*.safetensors files", dir, MAX_FILES);
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof *v)) == NULL) {
				rc = spd_fail(eb, SPD_ENOMEM, "out of memory");
				goto out;
			}
			v = nv;
		}
		if ((v[n] = spd_path_join(dir, de->d_name)) == NULL) {
			rc = spd_fail(eb, SPD_ENOMEM, "out of memory");
			goto out;
		}
		n++;
	}
	if (errno != 0) {
		rc = spd_fail(eb, SPD_EIO, "%s: readdir: %s", dir,
		    strerror(errno));
		goto out;
	}
	if (n > 0)
		qsort(v, n, sizeof *v, spd_cmp_str);
out:
	closedir(d);
	if (rc != SPD_OK) {
		free_names(v, n);
		return rc;
	}
	*out = v;
	*nout = n;
	return SPD_OK;
}

/* Opens a directory: model.safetensors, else the index, else *.safetensors. */
static enum spd_err
open_dir(struct model *m, const char *dir, struct spd_errbuf *eb)
{
	char		*p, **paths = NULL;
	size_t		 n = 0;
	struct name_ref	*refs;
	enum spd_err	 rc;

	if ((p = spd_path_join(dir, SINGLE_NAME)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	if (exists(p)) {
		rc = open_files(m, &p, 1, eb);
		free(p);
		return rc;
	}
	free(p);
	if ((p = spd_path_join(dir, INDEX_NAME)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	if (exists(p)) {
		rc = open_index(m, p, eb);
		free(p);
		return rc;
	}
	free(p);
	if ((rc = list_dir(dir, &paths, &n, eb)) != SPD_OK)
		return rc;
	if (n == 0)
		return spd_fail(eb, SPD_ENOTFOUND, "no " SINGLE_NAME ", "
		    INDEX_NAME " or *" ST_SUFFIX " in %s", dir);
	rc = open_files(m, paths, n, eb);
	free_names(paths, n);
	if (rc != SPD_OK)
		return rc;
	if ((rc = build_refs(m, &refs, &n, eb)) != SPD_OK)
		return rc;
	free(refs);
	return SPD_OK;
}

/* Opens the weights at path (file, directory or index). */
enum spd_err
model_open(const char *path, struct model **out, struct spd_errbuf *eb)
{
	struct model	*m;
	struct stat	 st;
	enum spd_err	 rc;

	*out = NULL;
	if (stat(path, &st) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return spd_fail(eb, SPD_ENOTFOUND, "%s: no such file "
			    "or directory", path);
		return spd_fail(eb, SPD_EIO, "%s: stat: %s", path,
		    strerror(errno));
	}
	if ((m = calloc(1, sizeof *m)) == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	if (S_ISDIR(st.st_mode))
		rc = open_dir(m, path, eb);
	else if (spd_ends_with(path, INDEX_SUFFIX))
		rc = open_index(m, path, eb);
	else if ((m->files = calloc(1, sizeof *m->files)) == NULL)
		rc = spd_fail(eb, SPD_ENOMEM, "out of memory");
	else
		rc = open_one(m, path, eb);
	if (rc == SPD_OK)
		rc = build_list(m, eb);
	if (rc != SPD_OK) {
		model_close(m);
		return rc;
	}
	*out = m;
	return SPD_OK;
}

/* Closes every file of m and frees it (NULL-safe). */
void
model_close(struct model *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nfiles; i++)
		safetensors_close(m->files[i]);
	free(m->files);
	free(m->tensors);
	free(m);
}

/* Returns the number of tensors over all files. */
size_t
model_count(const struct model *m)
{
	return m->ntensors;
}

/* Returns tensor i, or NULL when i is out of range. */
const struct model_tensor *
model_tensor(const struct model *m, size_t i)
{
	return i < m->ntensors ? &m->tensors[i] : NULL;
}

/* Returns the total tensor bytes over all files. */
uint64_t
model_bytes(const struct model *m)
{
	return m->bytes;
}

/* Returns the number of files. */
size_t
model_nfiles(const struct model *m)
{
	return m->nfiles;
}

/* Returns the path of file i, or NULL when i is out of range. */
const char *
model_file_path(const struct model *m, size_t i)
{
	return i < m->nfiles ? safetensors_path(m->files[i]) : NULL;
}

/* Returns the metadata value of the first file that has key, or NULL. */
const char *
model_meta(const struct model *m, const char *key)
{
	const char	*v;
	size_t		 i;

	for (i = 0; i < m->nfiles; i++)
		if ((v = safetensors_header_meta(
		    safetensors_header(m->files[i]), key)) != NULL)
			return v;
	return NULL;
}

/* Returns config.json's "_name_or_path" in dir (see model.h). */
char *
model_config_name(const char *dir)
{
	const cJSON	*v;
	cJSON		*root;
	char		*path, *buf = NULL, *name = NULL;
	size_t		 len = 0;

	if ((path = spd_path_join(dir, "config.json")) == NULL)
		return NULL;
	if (spd_read_file(AT_FDCWD, path, MODEL_MAX_CONFIG, &buf, &len, NULL,
	    NULL) == SPD_OK &&
	    (root = cJSON_ParseWithLength(buf, len)) != NULL) {
		v = cJSON_GetObjectItemCaseSensitive(root, "_name_or_path");
		if (cJSON_IsString(v) && v->valuestring[0] != '\0')
			name = strdup(v->valuestring);
		cJSON_Delete(root);
	}
	free(buf);
	free(path);
	return name;
}
