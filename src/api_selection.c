/*
 * api_selection.c: GET /selection, the current selection of a run in
 * JSON, YAML or regex form, with ETags and long polls.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api_int.h"
#include "spectrumd/select.h"

/* --- /selection ------------------------------------------------------------ */

static const char *const sel_formats[] = { "json", "yaml", "regex", NULL };
static const char *const sel_ctypes[] = {	/* by enum sel_format */
	CT_JSON, "application/yaml; charset=utf-8", CT_TEXT
};

/* The current selection of one run and top_percent, in one format. */
struct sel_now {
	bool		 found;
	long long	 version;
	char		*body;
};

/* A done checkpoint, kept while walking a run's history. */
struct done_ck {
	int64_t		 id;
	long long	 step;
	char		*path;
};

struct done_list {
	struct done_ck	*v;
	size_t		 n, cap;
	bool		 oom;
};

/* Collects the done checkpoints (store_ckpts callback). */
static int
done_cb(void *arg, const struct ckpt_row *r)
{
	struct done_list *l = arg;

	if (r->status != CK_DONE)
		return 0;
	if (!grow((void **)&l->v, &l->cap, l->n, sizeof *l->v) ||
	    (l->v[l->n].path = strdup(r->path != NULL ? r->path : "")) ==
	    NULL) {
		l->oom = true;
		return 1;
	}
	l->v[l->n].id = r->id;
	l->v[l->n].step = r->step;
	l->n++;
	return 0;
}

/* Frees a done_list. */
static void
done_cleanup(struct done_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
}

/* Selects from the stored report of checkpoint ckpt_id. */
static enum spd_err
select_ckpt(struct ctx *c, int64_t ckpt_id, unsigned tp,
    struct selection **out)
{
	struct report	*r = NULL;
	enum spd_err	 rc;

	if ((rc = store_load_report(c->st, ckpt_id, &r, c->eb)) != SPD_OK)
		return rc;
	rc = select_compute(r, tp, c->cfg->include_embeddings, out);
	report_free(r);
	if (rc != SPD_OK)
		return spd_fail(c->eb, rc, "select: %s", spd_strerror(rc));
	return SPD_OK;
}

/* Renders sel as the answer (takes nothing; NULL body: out of memory). */
static enum spd_err
sel_answer(const struct selection *sel, enum sel_format fmt,
    const char *run, long long step, const char *path, long long version,
    struct sel_now *out)
{
	out->found = true;
	out->version = version;
	out->body = selection_render(sel, fmt, run, step, path, version);
	return out->body != NULL ? SPD_OK : SPD_ENOMEM;
}

/* The configured top_percent: the stored facts of the served selection. */
static enum spd_err
sel_stored(struct ctx *c, const struct run_ref *run, unsigned tp,
    enum sel_format fmt, struct sel_now *out)
{
	struct selection	*sel = NULL;
	long long		 step = 0, version = 0;
	char			*path = NULL;
	enum spd_err		 rc;

	rc = store_selection_latest(c->st, run->id, tp,
	    c->cfg->include_embeddings, &sel, &version, &step, &path, c->eb);
	if (rc == SPD_ENOTFOUND)
		return SPD_OK;
	if (rc == SPD_OK)
		rc = sel_answer(sel, fmt, run->name, step, path, version, out);
	selection_free(sel);
	free(path);
	return rc;
}

/*
 * Another top_percent: selects at every done checkpoint in step order,
 * versions by selection_version(), the rule the store uses; the last one
 * is current.
 */
static enum spd_err
sel_walk(struct ctx *c, const struct run_ref *run, unsigned tp,
    enum sel_format fmt, struct sel_now *out)
{
	struct done_list	 l = { 0 };
	struct selection	*s = NULL;
	char			*mods = NULL, *prev = NULL;
	long long		 version = 0;
	size_t			 i;
	bool			 changed;
	enum spd_err		 rc;

	rc = store_ckpts(c->st, run->id, done_cb, &l, c->eb);
	if (l.oom || rc == SPD_ECANCELED)
		rc = SPD_ENOMEM;
	for (i = 0; rc == SPD_OK && i < l.n; i++) {
		selection_free(s);
		s = NULL;
		if ((rc = select_ckpt(c, l.v[i].id, tp, &s)) != SPD_OK)
			break;
		if ((mods = selection_modules(s)) == NULL) {
			rc = SPD_ENOMEM;
			break;
		}
		version = selection_version(prev, version, version, false,
		    mods, &changed);
		free(prev);
		prev = mods;
	}
	if (rc == SPD_OK && s != NULL)
		rc = sel_answer(s, fmt, run->name, l.v[l.n - 1].step,
		    l.v[l.n - 1].path, version, out);
	selection_free(s);
	free(prev);
	done_cleanup(&l);
	return rc;
}

/* Computes the current selection (found is false when there is none). */
static enum spd_err
sel_current(struct ctx *c, const struct run_ref *run, unsigned tp,
    enum sel_format fmt, struct sel_now *out)
{
	free(out->body);
	memset(out, 0, sizeof *out);
	if (tp == c->cfg->top_percent)
		return sel_stored(c, run, tp, fmt, out);
	return sel_walk(c, run, tp, fmt, out);
}

/*
 * Writes the quoted ETag "<run>-<tp>-<version>" into buf (48 bytes), with
 * "n" after tp when embeddings are not listed (another series of
 * versions); a run name that is long or holds characters an ETag cannot
 * carry is replaced by "h" and the hex FNV-1a hash of it.
 */
static void
sel_etag(char *buf, size_t len, const char *run, unsigned tp, bool emb,
    long long version)
{
	const char	*p;
	bool		 plain = strlen(run) <= 20;
	int		 n;

	for (p = run; plain && *p != '\0'; p++)
		plain = *p > 0x20 && *p < 0x7f && *p != '"';
	if (plain)
		n = snprintf(buf, len, "\"%s-%u%s-%lld\"", run, tp, emb ? "" :
		    "n", version);
	else
		n = snprintf(buf, len, "\"h%016" PRIx64 "-%u%s-%lld\"",
		    spd_fnv1a(SPD_FNV1A_INIT, run, strlen(run)), tp, emb ? "" :
		    "n", version);
	if (n < 0 || (size_t)n >= len)
		buf[0] = '\0';
}

/* The parsed arguments of /selection. */
struct sel_args {
	struct run_ref	 run;
	unsigned	 tp;
	enum sel_format	 fmt;
	int		 wait_ms;
};

/* Parses top_percent, format and wait, and resolves the run. */
static enum spd_err
parse_sel_args(struct ctx *c, struct sel_args *sa)
{
	unsigned long long	tp, wait;
	size_t			fmt;
	enum spd_err		rc;

	if (!arg_enum(c, "format", sel_formats, &fmt))
		return SPD_EINVAL;
	if ((rc = arg_num(c, "top_percent", 1, 100, c->cfg->top_percent,
	    &tp)) != SPD_OK ||
	    (rc = arg_num(c, "wait", 0, API_MAX_WAIT, 0, &wait)) != SPD_OK)
		return rc;
	sa->tp = (unsigned)tp;
	sa->fmt = (enum sel_format)fmt;
	sa->wait_ms = (int)wait * 1000;
	return resolve_run(c, &sa->run);
}

/*
 * What a parked long poll learns from the hub events after `after`:
 * SEL_NONE (none that can change the selection; *last is the newest seen),
 * SEL_NEWS (a "selection" or "checkpoint" event, or events lost from the
 * ring) or SEL_FINAL (the hub is closed or out of memory: answer now).
 */
enum sel_news { SEL_NONE, SEL_NEWS, SEL_FINAL };

static enum sel_news
sel_news(struct hub *hub, uint64_t after, uint64_t *last)
{
	struct hub_event	ev;
	enum spd_err		rc = SPD_EBUSY;
	bool			news = false;

	while (!news && (rc = hub_next(hub, after, 0, &ev)) == SPD_OK) {
		news = ev.seq != after + 1 ||
		    strcmp(ev.type, "selection") == 0 ||
		    strcmp(ev.type, "checkpoint") == 0;
		after = ev.seq;
		free(ev.data);
	}
	*last = after;
	if (news)
		return SEL_NEWS;
	return rc == SPD_EBUSY ? SEL_NONE : SEL_FINAL;
}

/* Asks the caller to run the request again after hub event seq or at until. */
static void
sel_park(struct ctx *c, uint64_t seq, double until)
{
	c->resp->status = 200;
	c->resp->park = true;
	c->resp->park_after = seq;
	c->resp->park_until = until;
}

/*
 * GET /selection?run&top_percent&format&wait. A long poll (wait > 0)
 * whose client has the current selection, or that finds none, parks
 * instead of answering (api.h); run again, it recomputes only after a
 * "selection" or "checkpoint" event and answers at the deadline. seq is
 * the hub position taken before the computation, so no event between the
 * two is missed.
 */
enum spd_err
api_selection(struct ctx *c)
{
	struct sel_args	 sa = { { 0, NULL }, 0, SEL_JSON, 0 };
	struct sel_now	 cur = { false, 0, NULL };
	struct hub	*hub = c->cfg->hub;
	const struct api_req *q = c->req;
	double		 until;
	uint64_t	 seq;
	enum spd_err	 rc;
	bool		 final = hub == NULL;

	if (q->resumed && !final) {
		if (q->resume_until <= spd_now())
			final = true;
		else switch (sel_news(hub, q->resume_after, &seq)) {
		case SEL_NONE:
			sel_park(c, seq, q->resume_until);
			return SPD_OK;
		case SEL_FINAL:
			final = true;
			break;
		case SEL_NEWS:
			break;
		}
	}
	if ((rc = parse_sel_args(c, &sa)) != SPD_OK)
		goto out;
	seq = hub != NULL ? hub_seq(hub) : 0;
	if ((rc = sel_current(c, &sa.run, sa.tp, sa.fmt, &cur)) != SPD_OK)
		goto out;
	sel_etag(c->resp->etag, sizeof c->resp->etag, sa.run.name, sa.tp,
	    c->cfg->include_embeddings, cur.version);
	until = q->resumed ? q->resume_until : spd_now() + sa.wait_ms / 1000.0;
	if (!final && sa.wait_ms > 0 && until > spd_now() && (!cur.found ||
	    etag_match(q->if_none_match, c->resp->etag))) {
		c->resp->etag[0] = '\0';
		sel_park(c, seq, until);
		goto out;
	}
	if (!cur.found) {
		c->resp->etag[0] = '\0';
		rc = reply_error(c, 404, "no_selection", "run '%s' has no "
		    "selection yet", sa.run.name);
		goto out;
	}
	c->resp->cache_control = CC_NOCACHE;
	if (etag_match(q->if_none_match, c->resp->etag)) {
		c->resp->status = 304;
		goto out;
	}
	reply_owned(c->resp, 200, sel_ctypes[sa.fmt], cur.body,
	    strlen(cur.body));
	cur.body = NULL;
out:
	free(cur.body);
	free(sa.run.name);
	return rc;
}
