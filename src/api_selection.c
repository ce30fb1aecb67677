/*
 * api_selection.c: GET /selection, the current selection of a run in
 * JSON, YAML or regex form, with ETags and long polls.
 */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
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

/*
 * Selects from the stored report of checkpoint ckpt_id, with the
 * configured stickiness against prev (NULL: none).
 */
static enum spd_err
select_ckpt(struct ctx *c, int64_t ckpt_id, unsigned tp,
    const struct selection *prev, struct selection **out)
{
	struct report	*r = NULL;
	enum spd_err	 rc;

	if ((rc = store_load_report(c->st, ckpt_id, &r, c->eb)) != SPD_OK)
		return rc;
	rc = select_compute_sticky(r, tp, c->cfg->include_embeddings, prev,
	    c->cfg->stickiness, out);
	report_free(r);
	if (rc != SPD_OK)
		return spd_fail(c->eb, rc, "select: %s", spd_strerror(rc));
	return SPD_OK;
}

/* A run's current selection at one top_percent (sel NULL: none yet). */
struct sel_got {
	struct selection	*sel;
	long long		 step, version;
	char			*path;
};

/* Frees what g holds. */
static void
sel_got_cleanup(struct sel_got *g)
{
	selection_free(g->sel);
	free(g->path);
	memset(g, 0, sizeof *g);
}

/* The configured top_percent: the stored facts of the served selection. */
static enum spd_err
sel_stored(struct ctx *c, const struct run_ref *run, unsigned tp,
    struct sel_got *g)
{
	enum spd_err rc;

	rc = store_selection_latest(c->st, run->id, tp,
	    c->cfg->include_embeddings, &g->sel, &g->version, &g->step,
	    &g->path, c->eb);
	return rc == SPD_ENOTFOUND ? SPD_OK : rc;
}

/*
 * Another top_percent: selects at every done checkpoint in step order,
 * each with the configured stickiness against the one before, versions by
 * selection_version(), the rule the store uses. Calls cb (NULL: none) with
 * each step's modules and version, as store_selection_steps() does for the
 * stored ones (non-zero: stops, SPD_ECANCELED); the last selection is the
 * current one (g; NULL: not kept).
 */
static enum spd_err
sel_walk(struct ctx *c, const struct run_ref *run, unsigned tp,
    store_sel_step_cb cb, void *arg, struct sel_got *g)
{
	struct done_list	 l = { 0 };
	struct selection	*s = NULL, *ns;
	struct sel_step_row	 row;
	char			*mods = NULL, *prev = NULL;
	long long		 version = 0;
	size_t			 i;
	bool			 changed;
	enum spd_err		 rc;

	rc = store_ckpts(c->st, run->id, done_cb, &l, c->eb);
	if (l.oom || rc == SPD_ECANCELED)
		rc = SPD_ENOMEM;
	for (i = 0; rc == SPD_OK && i < l.n; i++) {
		ns = NULL;
		rc = select_ckpt(c, l.v[i].id, tp, s, &ns);
		selection_free(s);
		s = ns;
		if (rc != SPD_OK)
			break;
		if ((mods = selection_modules(s)) == NULL) {
			rc = SPD_ENOMEM;
			break;
		}
		version = selection_version(prev, version, version, false,
		    mods, &changed);
		free(prev);
		prev = mods;
		row = (struct sel_step_row){ l.v[i].id, l.v[i].step, mods,
		    version };
		if (cb != NULL && cb(arg, &row) != 0)
			rc = spd_fail(c->eb, SPD_ECANCELED, "selection walk: "
			    "stopped");
	}
	if (rc == SPD_OK && s != NULL && g != NULL) {
		g->step = l.v[l.n - 1].step;
		g->version = version;
		g->path = l.v[l.n - 1].path;
		l.v[l.n - 1].path = NULL;
		g->sel = s;
		s = NULL;
	}
	selection_free(s);
	free(prev);
	done_cleanup(&l);
	return rc;
}

/* The current selection of run at tp (g->sel NULL when none yet). */
static enum spd_err
sel_get(struct ctx *c, const struct run_ref *run, unsigned tp,
    struct sel_got *g)
{
	memset(g, 0, sizeof *g);
	if (tp == c->cfg->top_percent)
		return sel_stored(c, run, tp, g);
	return sel_walk(c, run, tp, NULL, NULL, g);
}

/*
 * The answers this thread last rendered from the served selection, one per
 * format, named by the selection row (store_selection_row): the row never
 * changes, so neither does what was rendered from it.
 */
struct sel_memo {
	int64_t		 run_id, id;
	double		 created;
	long long	 version;
	char		*body;		/* NULL: empty slot */
};

/* Frees a thread's memos (the thread-slot destructor; NULL-safe). */
void
free_selection_memo(void *p)
{
	struct sel_memo	*m = p;
	size_t		 i;

	if (m == NULL)
		return;
	for (i = 0; i < nitems(sel_ctypes); i++)
		free(m[i].body);
	free(m);
}

/* The calling thread's memo for fmt; NULL without memory. */
static struct sel_memo *
sel_memo(struct ctx *c, enum sel_format fmt)
{
	struct sel_memo *m = pthread_getspecific(c->a->memo_key);

	if (m == NULL) {
		if ((m = calloc(nitems(sel_ctypes), sizeof *m)) == NULL)
			return NULL;
		if (pthread_setspecific(c->a->memo_key, m) != 0) {
			free(m);
			return NULL;
		}
	}
	return &m[fmt];
}

/*
 * Adds "stickiness" (the configured hysteresis, which the selection does
 * not carry) as the last member of the JSON object that selection_json()
 * wrote; frees body. NULL without memory.
 */
static char *
sel_json_stickiness(char *body, unsigned stickiness)
{
	size_t	 n = body != NULL ? strlen(body) : 0;
	char	*out = NULL;

	if (n > 2 && body[n - 1] == '}')	/* "{...}", never empty */
		out = spd_asprintf("%.*s,\"stickiness\":%u}", (int)(n - 1),
		    body, stickiness);
	free(body);
	return out;
}

/* Computes the current selection (found is false when there is none). */
static enum spd_err
sel_current(struct ctx *c, const struct run_ref *run, unsigned tp,
    enum sel_format fmt, struct sel_now *out)
{
	struct sel_got	g;
	enum spd_err	rc;

	struct sel_memo	*m = NULL;
	int64_t		 id = 0;
	double		 created = 0;

	free(out->body);
	memset(out, 0, sizeof *out);
	if (tp == c->cfg->top_percent && store_selection_row(c->st, run->id,
	    tp, c->cfg->include_embeddings, &id, &created, c->eb) == SPD_OK &&
	    (m = sel_memo(c, fmt)) != NULL && m->body != NULL &&
	    m->run_id == run->id && m->id == id && m->created == created) {
		out->found = true;
		out->version = m->version;
		out->body = strdup(m->body);
		return out->body != NULL ? SPD_OK : SPD_ENOMEM;
	}
	rc = sel_get(c, run, tp, &g);
	if (rc == SPD_OK && g.sel != NULL) {
		out->found = true;
		out->version = g.version;
		out->body = selection_render(g.sel, fmt, run->name, g.step,
		    g.path, g.version);
		if (fmt == SEL_JSON)
			out->body = sel_json_stickiness(out->body,
			    c->cfg->stickiness);
		if (out->body == NULL)
			rc = SPD_ENOMEM;
	}
	if (rc == SPD_OK && out->body != NULL && m != NULL) {
		free(m->body);
		m->body = strdup(out->body);	/* none on failure: fine */
		m->run_id = run->id;
		m->id = id;
		m->created = created;
		m->version = g.version;
	}
	sel_got_cleanup(&g);
	return rc;
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

/* --- /lr_scales ----------------------------------------------------------- */

/*
 * GET /lr_scales?run&top_percent: a learning-rate multiplier per selected
 * module of the current selection (that of /selection): within each type,
 * by selection_lr_scale() from its place among the type's selected
 * modules (highest SNR first), up to lr_scale_max; embeddings and heads
 * listed apart get 1.0.
 */
enum spd_err
api_lr_scales(struct ctx *c)
{
	struct run_ref		 run = { 0, NULL };
	struct sel_got		 g = { 0 };
	const struct sel_type	*t;
	unsigned long long	 tp;
	cJSON			*root = NULL, *sc;
	size_t			 i, j;
	bool			 ok;
	enum spd_err		 rc;

	if ((rc = arg_num(c, "top_percent", 1, 100, c->cfg->top_percent,
	    &tp)) != SPD_OK || (rc = resolve_run(c, &run)) != SPD_OK ||
	    (rc = sel_get(c, &run, (unsigned)tp, &g)) != SPD_OK)
		goto out;
	if (g.sel == NULL) {
		rc = reply_error(c, 404, "no_selection", "run '%s' has no "
		    "selection yet", run.name);
		goto out;
	}
	root = cJSON_CreateObject();
	ok = root != NULL && jstr(root, "run", run.name) &&
	    jnum(root, "step", (double)g.step) &&
	    jnum(root, "version", (double)g.version) &&
	    jnum(root, "top_percent", (double)tp) &&
	    jnum(root, "lr_scale_max", c->cfg->lr_scale_max) &&
	    (sc = cJSON_AddObjectToObject(root, "scales")) != NULL;
	for (i = 0; ok && i < g.sel->nembed; i++)
		ok = jnum(sc, g.sel->embeddings[i], 1.0);
	for (i = 0; ok && i < g.sel->ntypes; i++) {
		t = &g.sel->types[i];
		for (j = 0; ok && j < t->nsel; j++)
			ok = jnum(sc, t->modules[j], selection_lr_scale(j + 1,
			    t->nsel, c->cfg->lr_scale_max));
	}
	if (!ok) {
		cJSON_Delete(root);
		rc = SPD_ENOMEM;
		goto out;
	}
	c->resp->cache_control = CC_NOCACHE;
	rc = reply_json(c->resp, 200, root);
out:
	sel_got_cleanup(&g);
	free(run.name);
	return rc;
}

/* --- /selection/diff ------------------------------------------------------ */

/* One side of a diff: a run's selection at one analysed checkpoint. */
struct diff_side {
	struct run_ref		 run;
	long long		 step;
	char			*path;
	struct selection	*sel;
};

/* Resolves run `name` (NULL: ?run=, or the only run). */
static enum spd_err
diff_run(struct ctx *c, const char *name, struct run_ref *out)
{
	enum spd_err rc;

	if (name == NULL)
		return resolve_run(c, out);
	rc = store_run_find(c->st, name, &out->id, c->eb);
	if (rc == SPD_ENOTFOUND)
		return spd_fail(c->eb, rc, "unknown run '%.100s'", name);
	if (rc == SPD_OK && (out->name = strdup(name)) == NULL)
		rc = SPD_ENOMEM;
	return rc;
}

/*
 * Reads step key (absent: dflt, -1 = latest; "latest" too) and selects the
 * done checkpoint of d->run at that step, or the done one just before
 * `before` when before > 0 and the key is absent.
 */
static enum spd_err
diff_load(struct ctx *c, const char *key, long long before, unsigned tp,
    struct diff_side *d)
{
	struct done_list	 l = { 0 };
	const char		*s = arg(c, key);
	unsigned long long	 v;
	long long		 want = -1;
	size_t			 i, pick = SIZE_MAX;
	enum spd_err		 rc;

	if (s != NULL && strcmp(s, "latest") != 0) {
		if (!parse_dec(s, 0, (unsigned long long)INT64_MAX, &v))
			return spd_fail(c->eb, SPD_EINVAL, "%s must be "
			    "\"latest\" or a step", key);
		want = (long long)v;
	}
	rc = store_ckpts(c->st, d->run.id, done_cb, &l, c->eb);
	if (l.oom || rc == SPD_ECANCELED)
		rc = SPD_ENOMEM;
	for (i = 0; rc == SPD_OK && i < l.n; i++) {
		if (want >= 0 ? l.v[i].step == want : s == NULL &&
		    before >= 0 ? l.v[i].step < before : true)
			pick = i;	/* step order: the last one wins */
	}
	if (rc == SPD_OK && pick == SIZE_MAX)
		rc = spd_fail(c->eb, SPD_ENOTFOUND, "run '%s' has no analysed "
		    "checkpoint %s%lld", d->run.name, want >= 0 ? "at step " :
		    before >= 0 ? "before step " : "", want >= 0 ? want :
		    before >= 0 ? before : 0);
	if (rc == SPD_OK) {
		d->step = l.v[pick].step;
		d->path = l.v[pick].path;
		l.v[pick].path = strdup("");
		/* What was stored (with its stickiness), else from metrics. */
		rc = store_selection_at(c->st, l.v[pick].id, tp,
		    c->cfg->include_embeddings, &d->sel, c->eb);
		if (rc == SPD_ENOTFOUND)
			rc = select_ckpt(c, l.v[pick].id, tp, NULL, &d->sel);
	}
	done_cleanup(&l);
	return rc;
}

/* The type and rank (1 = best) of module in s; false when not selected. */
static bool
diff_find(const struct selection *s, const char *module, const char **type,
    size_t *rank)
{
	size_t i, j;

	for (i = 0; i < s->nembed; i++)
		if (strcmp(s->embeddings[i], module) == 0) {
			*type = "(embeddings)";
			*rank = i + 1;
			return true;
		}
	for (i = 0; i < s->ntypes; i++)
		for (j = 0; j < s->types[i].nsel; j++)
			if (strcmp(s->types[i].modules[j], module) == 0) {
				*type = s->types[i].type;
				*rank = j + 1;
				return true;
			}
	return false;
}

/* Adds {run, step, checkpoint} of d as key of root. */
static bool
diff_head(cJSON *root, const char *key, const struct diff_side *d)
{
	cJSON *o = cJSON_AddObjectToObject(root, key);

	return o != NULL && jstr(o, "run", d->run.name) &&
	    jnum(o, "step", (double)d->step) && jstr(o, "checkpoint", d->path);
}

/*
 * Lists the modules of `a` absent from `b` into arr (added or removed), or,
 * with moved, those in both whose rank differs.
 */
static bool
diff_list(cJSON *arr, const struct selection *a, const struct selection *b,
    bool moved, size_t *same)
{
	const char	*mod, *ta, *tb;
	size_t		 i, n = selection_count(a), ra, rb, t, k;
	cJSON		*o;

	for (i = 0; i < n; i++) {
		/* the i-th selected module of a, embeddings first */
		k = i;
		if (k < a->nembed)
			mod = a->embeddings[k];
		else {
			k -= a->nembed;
			for (t = 0; k >= a->types[t].nsel; t++)
				k -= a->types[t].nsel;
			mod = a->types[t].modules[k];
		}
		diff_find(a, mod, &ta, &ra);
		if (diff_find(b, mod, &tb, &rb) != moved)
			continue;
		if (moved && ra == rb) {
			(*same)++;
			continue;
		}
		o = cJSON_CreateObject();
		if (!jpush(arr, o) || !jstr(o, "module", mod) ||
		    !jstr(o, "type", ta) || (!moved && !jnum(o, "rank",
		    (double)ra)) || (moved && (!jnum(o, "from_rank",
		    (double)rb) || !jnum(o, "to_rank", (double)ra))))
			return false;
	}
	return true;
}

/*
 * GET /selection/diff?run&from&to&run2&top_percent: what changes from the
 * selection of run at step `from` to that of run2 (default run) at step
 * `to` (default latest): modules added, removed, and kept at another rank
 * within their type. Without `from` (and run2): the analysed checkpoint
 * before `to`; with run2: run's latest. Each side is the checkpoint's
 * stored selection for top_percent (as served, stickiness included), or,
 * when none is stored for it, one computed from its metrics.
 */
enum spd_err
api_selection_diff(struct ctx *c)
{
	struct diff_side	 from = { 0 }, to = { 0 };
	unsigned long long	 tp;
	size_t			 same = 0;
	cJSON			*root = NULL;
	bool			 ok;
	enum spd_err		 rc;

	if ((rc = arg_num(c, "top_percent", 1, 100, c->cfg->top_percent,
	    &tp)) != SPD_OK ||
	    (rc = diff_run(c, NULL, &from.run)) != SPD_OK ||
	    (rc = diff_run(c, arg(c, "run2") != NULL ? arg(c, "run2") :
	    from.run.name, &to.run)) != SPD_OK ||
	    (rc = diff_load(c, "to", -1, (unsigned)tp, &to)) != SPD_OK ||
	    (rc = diff_load(c, "from", arg(c, "run2") != NULL ? -1 : to.step,
	    (unsigned)tp, &from)) != SPD_OK)
		goto out;
	root = cJSON_CreateObject();
	ok = root != NULL && jnum(root, "top_percent", (double)tp) &&
	    diff_head(root, "from", &from) && diff_head(root, "to", &to);
	ok = ok && diff_list(cJSON_AddArrayToObject(root, "added"), to.sel,
	    from.sel, false, &same);
	ok = ok && diff_list(cJSON_AddArrayToObject(root, "removed"), from.sel,
	    to.sel, false, &same);
	ok = ok && diff_list(cJSON_AddArrayToObject(root, "moved"), to.sel,
	    from.sel, true, &same);
	ok = ok && jnum(root, "unchanged", (double)same);
	if (!ok) {
		cJSON_Delete(root);
		rc = SPD_ENOMEM;
		goto out;
	}
	rc = reply_json(c->resp, 200, root);
out:
	selection_free(from.sel);
	selection_free(to.sel);
	free(from.path);
	free(to.path);
	free(from.run.name);
	free(to.run.name);
	return rc;
}

/* --- /selection/history --------------------------------------------------- */

/* A selection_modules() list split into its names (sorted, distinct). */
struct name_list {
	char		 *buf;
	const char	**v;
	size_t		  n;
};

/* Frees what l holds. */
static void
names_cleanup(struct name_list *l)
{
	free(l->buf);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* Splits text ('\n'-joined names; "": none) into l; false without memory. */
static bool
names_split(const char *text, struct name_list *l)
{
	size_t	 n = 0;
	char	*p, *q;

	memset(l, 0, sizeof *l);
	if ((l->buf = strdup(text)) == NULL)
		return false;
	for (p = l->buf; *p != '\0'; p++)
		n += *p == '\n';
	n = l->buf[0] != '\0' ? n + 1 : 0;
	if ((l->v = calloc(n + 1, sizeof *l->v)) == NULL)
		return false;
	for (p = l->buf; l->n < n; p = q + 1) {
		l->v[l->n++] = p;
		if ((q = strchr(p, '\n')) == NULL)
			break;
		*q = '\0';
	}
	return true;
}

/* Adds key: [the n names of v]. */
static bool
jnames(cJSON *obj, const char *key, const char *const *v, size_t n)
{
	cJSON	*arr = cJSON_AddArrayToObject(obj, key);
	size_t	 i;

	for (i = 0; arr != NULL && i < n; i++)
		if (!jpush(arr, cJSON_CreateString(v[i])))
			return false;
	return arr != NULL;
}

/*
 * Adds "added" (the names of b not in a) and "removed" (those of a not in
 * b) to obj: a merge of the two sorted lists.
 */
static bool
jdelta(cJSON *obj, const struct name_list *a, const struct name_list *b)
{
	cJSON	*add = cJSON_AddArrayToObject(obj, "added");
	cJSON	*rem = cJSON_AddArrayToObject(obj, "removed");
	size_t	 i = 0, j = 0;
	int	 d;

	if (add == NULL || rem == NULL)
		return false;
	while (i < a->n || j < b->n) {
		d = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->v[i], b->v[j]);
		if ((d < 0 && !jpush(rem, cJSON_CreateString(a->v[i]))) ||
		    (d > 0 && !jpush(add, cJSON_CreateString(b->v[j]))))
			return false;
		i += d <= 0;
		j += d >= 0;
	}
	return true;
}

/* The history being written (a store_sel_step_cb for both sources). */
struct hist_build {
	cJSON			*steps;
	struct name_list	 prev;		/* the step before (n 0: none) */
	bool			 with_modules;
	bool			 oom;
};

/* Adds one step: its version, count, modules if asked, added, removed. */
static int
hist_step(void *arg, const struct sel_step_row *r)
{
	struct hist_build	*h = arg;
	struct name_list	 cur;
	cJSON			*o = cJSON_CreateObject();
	bool			 ok;

	ok = names_split(r->modules, &cur);
	if (!ok)
		cJSON_Delete(o);	/* not pushed: ours (NULL-safe) */
	ok = ok && jpush(h->steps, o) && jnum(o, "step", (double)r->step) &&
	    jnum(o, "version", (double)r->version) &&
	    jnum(o, "count", (double)cur.n) &&
	    (!h->with_modules || jnames(o, "modules", cur.v, cur.n)) &&
	    jdelta(o, &h->prev, &cur);
	names_cleanup(&h->prev);
	h->prev = cur;
	h->oom = !ok;
	return !ok;
}

/*
 * GET /selection/history?run&top_percent&modules=0|1: the run's selection
 * at every analysed checkpoint in step order, as the daemon served it:
 * {run, top_percent, include_embeddings, stickiness, steps: [{step,
 * version, count, modules (with modules=1), added, removed}]}, added and
 * removed against the step before (the first: added = all). At the
 * configured top_percent the stored selections (store_selection_steps(),
 * one query); at another the walk /selection makes (sel_walk()). The
 * members are left out by default: a page rebuilds them from the changes,
 * which are small when the selection is stable.
 */
enum spd_err
api_selection_history(struct ctx *c)
{
	struct run_ref		 run = { 0, NULL };
	struct hist_build	 h = { 0 };
	unsigned long long	 tp, mods;
	cJSON			*root = NULL;
	enum spd_err		 rc;

	if ((rc = arg_num(c, "top_percent", 1, 100, c->cfg->top_percent,
	    &tp)) != SPD_OK ||
	    (rc = arg_num(c, "modules", 0, 1, 0, &mods)) != SPD_OK ||
	    (rc = resolve_run(c, &run)) != SPD_OK)
		goto out;
	h.with_modules = mods != 0;
	root = cJSON_CreateObject();
	if (root == NULL || !jstr(root, "run", run.name) ||
	    !jnum(root, "top_percent", (double)tp) ||
	    !cJSON_AddBoolToObject(root, "include_embeddings",
	    c->cfg->include_embeddings) ||
	    !jnum(root, "stickiness", c->cfg->stickiness) ||
	    (h.steps = cJSON_AddArrayToObject(root, "steps")) == NULL) {
		rc = SPD_ENOMEM;
		goto out;
	}
	if (tp == c->cfg->top_percent)
		rc = store_selection_steps(c->st, run.id, (unsigned)tp,
		    c->cfg->include_embeddings, LLONG_MAX, (size_t)INT64_MAX,
		    hist_step, &h, c->eb);
	else
		rc = sel_walk(c, &run, (unsigned)tp, hist_step, &h, NULL);
	if (h.oom)
		rc = SPD_ENOMEM;
	if (rc == SPD_OK) {
		c->resp->cache_control = CC_NOCACHE;
		rc = reply_json(c->resp, 200, root);
		root = NULL;
	}
out:
	cJSON_Delete(root);
	names_cleanup(&h.prev);
	free(run.name);
	return rc;
}
