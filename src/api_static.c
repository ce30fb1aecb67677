/*
 * api_static.c: the dashboard: a whitelist of the files in web_dir and
 * web_dir/assets read once at startup, served with ETags; a placeholder
 * page at "/" when there is no index.html.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"

static const char placeholder_html[] =
"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
"<title>spectrumd</title></head><body>\n"
"<h1>spectrumd</h1>\n"
"<p>The dashboard is not installed (no index.html in the web directory). "
"The JSON API is available:</p>\n<ul>\n"
"<li><a href=\"/runs\">/runs</a></li>\n"
"<li><a href=\"/checkpoints\">/checkpoints</a></li>\n"
"<li><a href=\"/selection\">/selection</a> "
"(<a href=\"/selection?format=yaml\">yaml</a>, "
"<a href=\"/selection?format=regex\">regex</a>)</li>\n"
"<li><a href=\"/snr\">/snr</a></li>\n"
"<li><a href=\"/history\">/history</a></li>\n"
"<li><a href=\"/health\">/health</a>, <a href=\"/ready\">/ready</a>, "
"<a href=\"/metrics\">/metrics</a></li>\n"
"</ul>\n</body></html>\n";

/* --- static files ---------------------------------------------------------- */

static const struct {
	const char	*ext;
	const char	*ctype;
} ctypes[] = {
	{ "html",  "text/html; charset=utf-8" },
	{ "js",    "text/javascript; charset=utf-8" },
	{ "mjs",   "text/javascript; charset=utf-8" },
	{ "css",   "text/css; charset=utf-8" },
	{ "svg",   "image/svg+xml" },
	{ "png",   "image/png" },
	{ "json",  "application/json" },
	{ "map",   "application/json" },
	{ "ico",   "image/x-icon" },
	{ "txt",   "text/plain; charset=utf-8" },
	{ "woff2", "font/woff2" },
};

/* The content type of a file name by its extension, or NULL. */
static const char *
ctype_of(const char *name)
{
	const char	*dot = strrchr(name, '.');
	size_t		 i;

	if (dot == NULL)
		return NULL;
	for (i = 0; i < nitems(ctypes); i++)
		if (strcmp(dot + 1, ctypes[i].ext) == 0)
			return ctypes[i].ctype;
	return NULL;
}

/* True for names made of [A-Za-z0-9._-] not starting with a dot. */
static bool
safe_name(const char *name)
{
	const char *p;

	if (name[0] == '.' || name[0] == '\0')
		return false;
	for (p = name; *p != '\0'; p++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789._-", *p) == NULL)
			return false;
	return true;
}

/* Adds the file prefix+name of dfd to the whitelist. */
static enum spd_err
add_file(struct api *a, int dfd, const char *prefix, const char *name,
    size_t *cap, struct spd_errbuf *eb)
{
	struct sfile	*f;
	enum spd_err	 rc;

	if (a->nfiles >= API_MAX_FILES)
		return spd_fail(eb, SPD_EIO, "web: more than %d files",
		    API_MAX_FILES);
	if (!grow((void **)&a->files, cap, a->nfiles, sizeof *a->files))
		return SPD_ENOMEM;
	f = &a->files[a->nfiles];
	memset(f, 0, sizeof *f);
	rc = spd_read_file(dfd, name, API_MAX_FILE, &f->data, &f->len, NULL,
	    eb);
	if (rc == SPD_EUNSUPPORTED)		/* not a regular file: skipped */
		return SPD_OK;
	if (rc != SPD_OK)
		return rc;
	a->nfiles++;
	f->ctype = ctype_of(name);
	snprintf(f->etag, sizeof f->etag, "\"%016" PRIx64 "\"",
	    spd_fnv1a(SPD_FNV1A_INIT, f->data, f->len));
	if (asprintf(&f->url, "%s%s", prefix, name) < 0) {
		f->url = NULL;
		return SPD_ENOMEM;
	}
	return SPD_OK;
}

/* Whitelists the servable files directly in dir (missing dir: none). */
static enum spd_err
scan_dir(struct api *a, const char *dir, const char *prefix, size_t *cap,
    struct spd_errbuf *eb)
{
	struct dirent	*de;
	DIR		*d;
	enum spd_err	 rc = SPD_OK;

	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return SPD_OK;
		return spd_fail(eb, SPD_EIO, "web: %s: %s", dir,
		    strerror(errno));
	}
	while (rc == SPD_OK && (de = readdir(d)) != NULL)
		if (safe_name(de->d_name) && ctype_of(de->d_name) != NULL)
			rc = add_file(a, dirfd(d), prefix, de->d_name, cap, eb);
	closedir(d);
	return rc;
}

/* Loads the whitelist from web_dir and web_dir/assets. */
enum spd_err
load_web(struct api *a, const char *dir, struct spd_errbuf *eb)
{
	char		*assets = NULL;
	size_t		 cap = 0, i;
	enum spd_err	 rc;

	if ((rc = scan_dir(a, dir, "/", &cap, eb)) != SPD_OK)
		return rc;
	if (asprintf(&assets, "%s/assets", dir) < 0)
		return SPD_ENOMEM;
	rc = scan_dir(a, assets, "/assets/", &cap, eb);
	free(assets);
	for (i = 0; i < a->nfiles; i++)
		if (a->files[i].url != NULL &&
		    strcmp(a->files[i].url, "/index.html") == 0)
			a->index = &a->files[i];
	return rc;
}

/* The whitelisted file for path ("/" is index.html), or NULL. */
const struct sfile *
find_file(const struct api *a, const char *path)
{
	size_t i;

	if (strcmp(path, "/") == 0)
		return a->index;
	for (i = 0; i < a->nfiles; i++)
		if (strcmp(a->files[i].url, path) == 0)
			return &a->files[i];
	return NULL;
}

/* Answers a static file (or the placeholder page at "/"). */
void
reply_file(struct ctx *c, const struct sfile *f)
{
	struct api_resp *resp = c->resp;

	if (f == NULL) {
		reply_static(resp, 200, CT_HTML, placeholder_html,
		    sizeof placeholder_html - 1);
		resp->cache_control = CC_NOCACHE;
		return;
	}
	snprintf(resp->etag, sizeof resp->etag, "%s", f->etag);
	resp->cache_control = CC_NOCACHE;
	if (etag_match(c->req->if_none_match, f->etag)) {
		resp->status = 304;
		return;
	}
	reply_static(resp, 200, f->ctype, f->data, f->len);
}
