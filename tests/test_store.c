/*
 * test_store.c: the SQLite history in a scratch directory: schema creation,
 * versioning and refusal of foreign or newer files (checked in the database
 * header bytes, so the test needs no <sqlite3.h>), runs and checkpoints,
 * exact round trips of metrics (inf, NaN; the heavy-tail ones and their
 * absence), spectra and reports, selection
 * versions, a read-only handle seeing the writer's commits, history,
 * all-or-nothing store_put_report, and its speed.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spectrumd/report.h"
#include "spectrumd/select.h"
#include "spectrumd/store.h"
#include "tap.h"

#define SPEC_K		4096	/* spectrum length of the timing test */
#define TIMING_MATS	224	/* matrices of the timing test */

static char	dir[256];	/* the scratch directory */

/* Joins dir and name into buf. */
static const char *
path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
	return buf;
}

/* Creates the scratch directory under $TMPDIR or /tmp. */
static void
scratch_make(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof dir, "%s/test_store.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

/* Removes the scratch directory and the files in it. */
static void
scratch_remove(void)
{
	struct dirent	*de;
	DIR		*d;
	char		 p[512];

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			unlink(path_in(p, sizeof p, de->d_name));
	}
	closedir(d);
	rmdir(dir);
}

/* Reads the big-endian u32 at off of the file header; -1 on failure. */
static int64_t
header_u32(const char *file, off_t off)
{
	unsigned char	b[4];
	int		fd;
	ssize_t		n;

	if ((fd = open(file, O_RDONLY)) == -1)
		return -1;
	n = pread(fd, b, sizeof b, off);
	close(fd);
	if (n != (ssize_t)sizeof b)
		return -1;
	return (int64_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | b[3]);
}

/* Writes the big-endian u32 v at off of the file header. */
static bool
header_put_u32(const char *file, off_t off, uint32_t v)
{
	unsigned char	b[4] = { v >> 24, v >> 16, v >> 8, v };
	int		fd;
	ssize_t		n;

	if ((fd = open(file, O_WRONLY)) == -1)
		return false;
	n = pwrite(fd, b, sizeof b, off);
	close(fd);
	return n == (ssize_t)sizeof b;
}

/* Copies file a to b. */
static bool
copy_file(const char *a, const char *b)
{
	char	buf[8192];
	FILE	*in, *out;
	size_t	n;
	bool	good = true;

	if ((in = fopen(a, "rb")) == NULL)
		return false;
	if ((out = fopen(b, "wb")) == NULL) {
		fclose(in);
		return false;
	}
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		good = good && fwrite(buf, 1, n, out) == n;
	fclose(in);
	return fclose(out) == 0 && good;
}

/*
 * Doubles equal as stored values: NaN equals NaN. (SQLite writes integral
 * REALs as integers, so -0.0 reads back as +0.0; no metric is ever -0.)
 */
static bool
same(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return a == b;
}

/* All fields of two SNR results equal (see same()). */
static bool
same_snr(const struct snr_result *a, const struct snr_result *b)
{
	return same(a->snr, b->snr) && same(a->s1, b->s1) &&
	    same(a->sigma_hat, b->sigma_hat) && same(a->tau, b->tau) &&
	    same(a->signal, b->signal) && same(a->noise, b->noise) &&
	    same(a->fro2, b->fro2) && same(a->stable_rank, b->stable_rank) &&
	    a->mp_rank == b->mp_rank;
}

/*
 * Heavy-tail results equal as the store keeps them (n_evals is not
 * stored); has says whether there are any.
 */
static bool
same_ht(bool ha, const struct heavytail_result *a, bool hb,
    const struct heavytail_result *b)
{
	if (!ha || !hb)
		return ha == hb;
	return a->status == b->status && same(a->alpha, b->alpha) &&
	    same(a->alpha_weighted, b->alpha_weighted) && same(a->ks, b->ks) &&
	    same(a->log_spectral_norm, b->log_spectral_norm) &&
	    same(a->xmin, b->xmin) && same(a->sigma, b->sigma) &&
	    a->n_tail == b->n_tail;
}

/* Equal strings, both NULL counting as equal. */
static bool
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* One matrix of a test report. */
struct mat_spec {
	const char	*module, *type;
	int		 layer, embedding;
	enum mat_status	 status;
	const char	*error;
	double		 snr, s1;	/* the other fields follow s1 */
	size_t		 k;		/* spectrum length, 0 = none */
};

/* Appends the matrix described by ms to r; false on failure. */
static bool
add_mat(struct report *r, const struct mat_spec *ms, double salt)
{
	struct mat_result	m = { 0 };
	char			name[256];
	size_t			i;

	snprintf(name, sizeof name, "%s.weight", ms->module);
	m.name = strdup(name);
	m.module = strdup(ms->module);
	m.type = strdup(ms->type);
	m.error = ms->error != NULL ? strdup(ms->error) : NULL;
	m.layer = ms->layer;
	m.embedding = ms->embedding;
	m.rows = 64 + (uint64_t)ms->layer;
	m.cols = 32;
	m.dtype = ms->layer % 2 == 0 ? DT_BF16 : DT_F32;
	m.status = ms->status;
	m.m = (struct snr_result){ .snr = ms->snr, .s1 = ms->s1,
	    .sigma_hat = ms->s1 / 7 + salt, .tau = ms->s1 / 3, .signal = 0.1,
	    .noise = 1.0 / 3, .fro2 = ms->s1 * ms->s1 * 1.5,
	    .stable_rank = 1.5 + salt, .mp_rank = 5 + (size_t)ms->layer };
	m.seconds = 0.001 * (ms->layer + 1);
	/*
	 * Heavy-tail metrics for analysed matrices, as heavytail_compute()
	 * fills them: a fit, or none (s1 = 0: too few, log_spectral_norm
	 * -inf, n_tail 0).
	 */
	m.has_ht = ms->status == MAT_OK;
	m.ht.log_spectral_norm = log10(ms->s1 * ms->s1);
	m.ht.n_evals = 10 + (size_t)ms->k;
	if (m.has_ht && ms->s1 > 0) {
		m.ht.status = HEAVYTAIL_OK;
		m.ht.alpha = 2.25 + 0.5 * ms->layer + salt;
		m.ht.alpha_weighted = m.ht.alpha * m.ht.log_spectral_norm;
		m.ht.ks = 0.0625 + salt / 1024;
		m.ht.xmin = ms->s1 / 3;
		m.ht.n_tail = 7 + (size_t)(ms->layer + 1);
		m.ht.sigma = (m.ht.alpha - 1) / sqrt((double)m.ht.n_tail);
	} else {
		m.ht.status = HEAVYTAIL_TOO_FEW;
		m.ht.alpha = m.ht.alpha_weighted = m.ht.ks = NAN;
		m.ht.xmin = m.ht.sigma = NAN;
	}
	if (ms->k > 0) {
		m.spectrum = malloc(ms->k * sizeof *m.spectrum);
		if (m.spectrum == NULL)
			return false;
		for (i = 0; i < ms->k; i++)
			m.spectrum[i] = (float)(ms->s1 / (1.0 + (double)i)) +
			    (float)salt;
		m.k = ms->k;
	}
	if (m.name == NULL || m.module == NULL || m.type == NULL ||
	    report_add(r, &m) != SPD_OK) {
		mat_result_cleanup(&m);
		return false;
	}
	return true;
}

/* Builds a report of n matrices from specs; NULL on failure. */
static struct report *
make_report(const char *path, const struct mat_spec *specs, size_t n,
    double salt)
{
	struct report	*r = report_new(path, "cpu");
	size_t		 i;

	for (i = 0; r != NULL && i < n; i++) {
		if (!add_mat(r, &specs[i], salt)) {
			report_free(r);
			return NULL;
		}
	}
	if (r != NULL) {
		r->bytes = 123456789;
		r->seconds = 4.25 + salt;
	}
	return r;
}

/* The matrices of the main report: every status and non-finite SNR. */
static const struct mat_spec mats_a[] = {
	{ "model.embed_tokens", "model.embed_tokens", -1, 1, MAT_OK, NULL,
	  2.5, 40.0, 16 },
	{ "model.layers.0.mlp.down_proj", "mlp.down_proj", 0, 0, MAT_OK, NULL,
	  13.58, 10.0, 32 },
	{ "model.layers.1.mlp.down_proj", "mlp.down_proj", 1, 0, MAT_OK, NULL,
	  INFINITY, 0.0, 8 },
	{ "model.layers.0.self_attn.q_proj", "self_attn.q_proj", 0, 0,
	  MAT_NONFINITE, "NaN in the weights", NAN, NAN, 0 },
	{ "model.layers.1.self_attn.q_proj", "self_attn.q_proj", 1, 0,
	  MAT_ERROR, "solver failed: info 3", -INFINITY, 1.0, 0 },
	{ "model.layers.0.mlp.experts", "mlp.experts", 0, 0, MAT_SKIPPED,
	  "3-D tensor [8, 64, 32]", 0.0, 0.0, 0 },
	{ "lm_head", "lm_head", -1, 1, MAT_OK, NULL, 1e-300, 1e300, 4 },
};

/*
 * A selection at top of one type "t" whose selected members are the
 * '\n'-separated mods (so selection_modules() gives mods back sorted).
 */
static struct selection *
sel_of(unsigned top, const char *mods)
{
	struct selection	*sel = selection_new(top, true);
	char			*copy = strdup(mods), *m, *save = NULL;
	size_t			 n = 1;
	const char		*p;

	for (p = mods; *p != '\0'; p++)
		n += *p == '\n';
	if (sel == NULL || copy == NULL ||
	    selection_add_type(sel, "t", n + 1) != SPD_OK)
		goto fail;
	for (m = strtok_r(copy, "\n", &save); m != NULL;
	    m = strtok_r(NULL, "\n", &save))
		if (selection_add_member(sel, m) != SPD_OK)
			goto fail;
	free(copy);
	return sel;
fail:
	free(copy);
	selection_free(sel);
	return NULL;
}

/* store_put_report with the selection sel_of(top, mods). */
static enum spd_err
put_report(struct store *s, int64_t c, const struct report *r, unsigned top,
    const char *mods, long long *ver, bool *changed, struct spd_errbuf *eb)
{
	struct selection	*sel = sel_of(top, mods);
	enum spd_err		 rc;

	if (sel == NULL)
		return SPD_ENOMEM;
	rc = store_put_report(s, c, r, sel, ver, changed, eb);
	selection_free(sel);
	return rc;
}

/*
 * The modules of the served selection of run at top (malloc'ed, "" when
 * none), with its version, step and checkpoint path.
 */
static char *
served(struct store *s, int64_t run, unsigned top, long long *ver,
    long long *step, char **path, enum spd_err *rc)
{
	struct spd_errbuf	 eb;
	struct selection	*sel = NULL;
	char			*mods;

	*rc = store_selection_latest(s, run, top, true, &sel, ver, step, path,
	    &eb);
	mods = *rc == SPD_OK ? selection_modules(sel) : strdup("");
	selection_free(sel);
	return mods;
}

/* Collects metric rows: copies of the fields compared by the tests. */
struct got_metric {
	char			*name, *module, *type, *dtype, *status, *error;
	int			 layer;
	uint64_t		 rows, cols;
	struct snr_result	 m;
	struct heavytail_result	 ht;
	bool			 has_ht;
	double			 seconds;
};

struct metrics {
	struct got_metric	 row[512];
	size_t			 n;
};

/* Duplicates a possibly NULL string. */
static char *
dup0(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* store_metric_cb: copies the row into a struct metrics. */
static int
collect_metric(void *arg, const struct metric_row *row)
{
	struct metrics		*ms = arg;
	struct got_metric	*g;

	if (ms->n == nitems(ms->row))
		return 1;
	g = &ms->row[ms->n++];
	g->name = dup0(row->name);
	g->module = dup0(row->module);
	g->type = dup0(row->type);
	g->dtype = dup0(row->dtype);
	g->status = dup0(row->status);
	g->error = dup0(row->error);
	g->layer = row->layer;
	g->rows = row->rows;
	g->cols = row->cols;
	g->m = row->m;
	g->ht = row->ht;
	g->has_ht = row->has_ht;
	g->seconds = row->seconds;
	return 0;
}

/* Frees the strings of collected metrics. */
static void
metrics_clear(struct metrics *ms)
{
	size_t i;

	for (i = 0; i < ms->n; i++) {
		free(ms->row[i].name);
		free(ms->row[i].module);
		free(ms->row[i].type);
		free(ms->row[i].dtype);
		free(ms->row[i].status);
		free(ms->row[i].error);
	}
	ms->n = 0;
}

/* Number of metric rows of a checkpoint, -1 on error. */
static long
metric_count(struct store *s, int64_t ckpt)
{
	static struct metrics	ms;
	long			n;

	if (store_metrics(s, ckpt, collect_metric, &ms, NULL) != SPD_OK) {
		metrics_clear(&ms);
		return -1;
	}
	n = (long)ms.n;
	metrics_clear(&ms);
	return n;
}

/* True when row g holds matrix m of a report exactly. */
static bool
metric_matches(const struct got_metric *g, const struct mat_result *m)
{
	return same_str(g->name, m->name) && same_str(g->module, m->module) &&
	    same_str(g->type, m->type) &&
	    same_str(g->dtype, dtype_name(m->dtype)) &&
	    same_str(g->status, mat_status_name(m->status)) &&
	    same_str(g->error, m->error) && g->layer == m->layer &&
	    g->rows == m->rows && g->cols == m->cols &&
	    same_snr(&g->m, &m->m) && same(g->seconds, m->seconds) &&
	    same_ht(g->has_ht, &g->ht, m->has_ht, &m->ht);
}

/* store_ckpt_cb: copies status, step, id, error and timings. */
struct got_ckpt {
	int64_t			id;
	long long		step;
	enum ckpt_status	status;
	char			error[128];
	char			backend[16];
	uint64_t		done, total, bytes;
	double			wall_time, started, finished, seconds;
	uint64_t		reused;
	size_t			calls;
};

static int
collect_ckpt(void *arg, const struct ckpt_row *row)
{
	struct got_ckpt *g = arg;

	g->id = row->id;
	g->step = row->step;
	g->status = row->status;
	snprintf(g->error, sizeof g->error, "%s",
	    row->error != NULL ? row->error : "(null)");
	snprintf(g->backend, sizeof g->backend, "%s",
	    row->backend != NULL ? row->backend : "(null)");
	g->done = row->done;
	g->total = row->total;
	g->bytes = row->bytes;
	g->wall_time = row->wall_time;
	g->started = row->started;
	g->finished = row->finished;
	g->seconds = row->seconds;
	g->reused = row->reused;
	g->calls++;
	return 0;
}

/* Status of a checkpoint found by step, or CK_NSTATUS when not found. */
static enum ckpt_status
status_at(struct store *s, int64_t run, long long step)
{
	struct got_ckpt g = { 0 };

	if (store_ckpt_get(s, run, step, collect_ckpt, &g, NULL) != SPD_OK)
		return CK_NSTATUS;
	return g.status;
}

/* Opens RW or RO, failing the test program when it cannot. */
static struct store *
must_open(const char *file, enum store_mode mode)
{
	struct spd_errbuf	 eb = { "" };
	struct store		*s = NULL;

	if (store_open(file, mode, &s, &eb) != SPD_OK) {
		printf("Bail out! store_open %s: %s\n", file, eb.msg);
		exit(1);
	}
	return s;
}

/* Schema creation, reopening, and refusal of files that are not ours. */
static void
test_open(const char *db)
{
	struct spd_errbuf	 eb = { "" };
	struct store		*s = NULL;
	char			 p[512];
	int64_t			 id = 0;
	int			 fd;

	ok(store_open(db, STORE_RW, &s, &eb) == SPD_OK, "RW open creates %s",
	    db);
	ok(store_run_ensure(s, "keep", "/d", &id, &eb) == SPD_OK, "run kept");
	store_close(s);
	ok(header_u32(db, 60) == STORE_SCHEMA_VERSION,
	    "user_version is STORE_SCHEMA_VERSION (%" PRId64 ")",
	    header_u32(db, 60));
	ok(header_u32(db, 68) == 0x53504431, "application_id is SPD1");
	s = NULL;
	ok(store_open(db, STORE_RW, &s, &eb) == SPD_OK, "reopen RW");
	ok(store_run_find(s, "keep", &id, &eb) == SPD_OK, "reopen keeps data");
	store_close(s);
	ok(header_u32(db, 60) == STORE_SCHEMA_VERSION, "version unchanged");
	s = NULL;
	ok(store_open(db, STORE_RO, &s, &eb) == SPD_OK &&
	    store_run_find(s, "keep", &id, &eb) == SPD_OK,
	    "RO open with no writer open reads (%s)", eb.msg);
	store_close(s);

	/* a newer schema */
	path_in(p, sizeof p, "newer.db");
	ok(copy_file(db, p) && header_put_u32(p, 60, STORE_SCHEMA_VERSION + 1),
	    "made a newer-schema copy");
	s = NULL;
	ok(store_open(p, STORE_RW, &s, &eb) == SPD_EFORMAT && s == NULL,
	    "RW open of a newer schema: EFORMAT (%s)", eb.msg);
	ok(strstr(eb.msg, "newer") != NULL, "message says newer");
	ok(store_open(p, STORE_RO, &s, &eb) == SPD_EFORMAT,
	    "RO open of a newer schema: EFORMAT");
	ok(header_u32(p, 60) == STORE_SCHEMA_VERSION + 1, "left untouched");

	/* another application's database */
	path_in(p, sizeof p, "foreign.db");
	ok(copy_file(db, p) && header_put_u32(p, 68, 0x12345678),
	    "made a foreign copy");
	ok(store_open(p, STORE_RW, &s, &eb) == SPD_EFORMAT,
	    "RW open of another application's database: EFORMAT (%s)",
	    eb.msg);

	/* not a database at all */
	path_in(p, sizeof p, "text.db");
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(fd != -1 && write(fd, "this is not an SQLite database, only text"
	    " long enough to look like a header................................"
	    "................................................................",
	    170) == 170, "wrote a text file");
	if (fd != -1)
		close(fd);
	ok(store_open(p, STORE_RW, &s, &eb) == SPD_EFORMAT,
	    "RW open of a text file: EFORMAT (%s)", eb.msg);
	ok(strncmp(eb.msg, "store: open ", 12) == 0, "message names the op");
	ok(store_open(p, STORE_RO, &s, &eb) == SPD_EFORMAT,
	    "RO open of a text file: EFORMAT");

	/* missing files and directories */
	path_in(p, sizeof p, "missing.db");
	ok(store_open(p, STORE_RO, &s, &eb) == SPD_ENOTFOUND,
	    "RO open of a missing file: ENOTFOUND");
	ok(access(p, F_OK) == -1, "RO open created nothing");
	path_in(p, sizeof p, "no/such/dir.db");
	ok(store_open(p, STORE_RW, &s, &eb) == SPD_EIO,
	    "RW open in a missing directory: EIO (%s)", eb.msg);
}

/* store_run_cb: remembers the run called "main". */
struct got_run {
	const char	*want;
	char		 dir[64];
	long long	 latest;
	uint64_t	 counts[CK_NSTATUS];
	size_t		 nruns, found;
};

static int
collect_run(void *arg, const struct run_row *row)
{
	struct got_run *g = arg;

	g->nruns++;
	if (strcmp(row->name, g->want) != 0)
		return 0;
	g->found++;
	snprintf(g->dir, sizeof g->dir, "%s", row->dir);
	g->latest = row->latest_step;
	memcpy(g->counts, row->counts, sizeof g->counts);
	return 0;
}

/* store_ckpt_cb: appends the step to a list. */
struct steps {
	long long	step[8];
	size_t		n;
};

static int
collect_step(void *arg, const struct ckpt_row *row)
{
	struct steps *st = arg;

	if (st->n == nitems(st->step))
		return 1;
	st->step[st->n++] = row->step;
	return 0;
}

/* Runs and checkpoints: idempotent ensure, status kept, counts. */
static void
test_runs(struct store *s, int64_t *run_out)
{
	struct spd_errbuf	eb = { "" };
	struct got_run		g = { .want = "main" };
	struct steps		st = { .n = 0 };
	enum ckpt_status	cur = CK_DONE;
	int64_t			run = 0, run2 = 0, c1 = 0, c2 = 0;

	ok(store_run_ensure(s, "main", "/old", &run, &eb) == SPD_OK,
	    "run created");
	ok(store_run_ensure(s, "main", "/ckpt/main", &run2, &eb) == SPD_OK &&
	    run2 == run, "run ensure is idempotent (same id)");
	ok(store_run_find(s, "nope", &run2, &eb) == SPD_ENOTFOUND,
	    "unknown run: ENOTFOUND");
	ok(store_ckpt_ensure(s, run, "/ckpt/main/checkpoint-10", 10, 1e9,
	    CK_PENDING, &c1, &cur, &eb) == SPD_OK && cur == CK_PENDING,
	    "checkpoint created pending");
	ok(store_ckpt_set_status(s, c1, CK_FAILED, "bad header", &eb) ==
	    SPD_OK, "set failed");
	ok(store_ckpt_ensure(s, run, "/ckpt/main/checkpoint-10", 10, 2e9,
	    CK_PENDING, &c2, &cur, &eb) == SPD_OK && c2 == c1 &&
	    cur == CK_FAILED, "ensure again: same id, keeps status failed");
	ok(store_ckpt_set_status(s, 999999, CK_DONE, NULL, &eb) ==
	    SPD_ENOTFOUND, "set status of unknown checkpoint: ENOTFOUND");
	ok(store_ckpt_ensure(s, run, "/ckpt/main/checkpoint-20", 20, 1e9,
	    CK_UNSUPPORTED, &c2, &cur, &eb) == SPD_OK && c2 != c1 &&
	    cur == CK_UNSUPPORTED, "second checkpoint, unsupported");
	ok(store_runs(s, collect_run, &g, &eb) == SPD_OK && g.found == 1,
	    "store_runs lists the run once");
	ok(strcmp(g.dir, "/ckpt/main") == 0, "dir updated to the newest");
	ok(g.counts[CK_FAILED] == 1 && g.counts[CK_UNSUPPORTED] == 1 &&
	    g.counts[CK_PENDING] == 0 && g.counts[CK_DONE] == 0,
	    "counts per status");
	ok(g.latest == -1, "latest_step -1 with nothing done");
	ok(store_ckpts(s, run, collect_step, &st, &eb) == SPD_OK && st.n == 2 &&
	    st.step[0] == 10 && st.step[1] == 20, "store_ckpts in step order");
	ok(store_ckpt_get(s, run, 15, collect_step, &st, &eb) == SPD_ENOTFOUND,
	    "no checkpoint at step 15: ENOTFOUND");
	*run_out = run;
}

/* The metric rows of checkpoint c, read on ro, are exactly those of r. */
static void
check_metrics(struct store *ro, int64_t c, const struct report *r)
{
	struct spd_errbuf	 eb = { "" };
	static struct metrics	 ms;
	enum spd_err		 rc;
	bool			 all = true;
	size_t			 i;

	rc = store_metrics(ro, c, collect_metric, &ms, &eb);
	ok(rc == SPD_OK && ms.n == r->nmats, "RO handle sees %zu metric rows",
	    ms.n);
	for (i = 0; i < ms.n && i < r->nmats; i++)
		all = metric_matches(&ms.row[i], &r->mats[i]) && all;
	ok(all, "every field round-trips exactly, in checkpoint order");
	ok(ms.n > 2 && isinf(ms.row[2].m.snr) && ms.row[2].m.snr > 0,
	    "+inf SNR reads back +inf");
	ok(ms.n > 3 && isnan(ms.row[3].m.snr) && isnan(ms.row[3].m.s1) &&
	    strcmp(ms.row[3].status, "nonfinite") == 0 &&
	    strcmp(ms.row[3].error, "NaN in the weights") == 0,
	    "NaN reads back NaN, with status and error");
	ok(ms.n > 4 && isinf(ms.row[4].m.snr) && ms.row[4].m.snr < 0 &&
	    strcmp(ms.row[4].status, "error") == 0, "-inf and error status");
	ok(ms.n > 6 && ms.row[6].m.snr == 1e-300 && ms.row[6].m.s1 == 1e300,
	    "extreme finite values exact");
	ok(ms.n > 1 && ms.row[1].has_ht &&
	    ms.row[1].ht.status == HEAVYTAIL_OK && ms.row[1].ht.alpha == 2.25 &&
	    ms.row[1].ht.n_tail == 8 &&
	    ms.row[1].ht.log_spectral_norm == 2 && ms.row[1].ht.n_evals == 0,
	    "heavy-tail fit read back (n_evals not stored)");
	ok(ms.n > 2 && ms.row[2].has_ht &&
	    ms.row[2].ht.status == HEAVYTAIL_TOO_FEW &&
	    isnan(ms.row[2].ht.alpha) && isnan(ms.row[2].ht.sigma) &&
	    ms.row[2].ht.n_tail == 0 && isinf(ms.row[2].ht.log_spectral_norm) &&
	    ms.row[2].ht.log_spectral_norm < 0,
	    "no fit: status too_few, NaN metrics, -inf log spectral norm");
	ok(ms.n > 5 && !ms.row[3].has_ht && !ms.row[4].has_ht &&
	    !ms.row[5].has_ht && isnan(ms.row[3].ht.alpha),
	    "not analysed: no heavy-tail metrics");
	metrics_clear(&ms);
}

/* The spectra of checkpoint c are those of r, found by module or name. */
static void
check_spectra(struct store *ro, int64_t c, const struct report *r)
{
	struct spd_errbuf	 eb = { "" };
	struct snr_result	 sm;
	float			*sv = NULL;
	size_t			 k = 0;

	ok(store_spectrum(ro, c, "model.layers.0.mlp.down_proj", &sv, &k, &sm,
	    &eb) == SPD_OK && k == r->mats[1].k &&
	    memcmp(sv, r->mats[1].spectrum, k * sizeof *sv) == 0 &&
	    same_snr(&sm, &r->mats[1].m), "spectrum by module: exact");
	free(sv);
	sv = NULL;
	ok(store_spectrum(ro, c, "lm_head.weight", &sv, &k, NULL, &eb) ==
	    SPD_OK && k == 4 && memcmp(sv, r->mats[6].spectrum, 16) == 0,
	    "spectrum by tensor name: exact");
	free(sv);
	sv = NULL;
	ok(store_spectrum(ro, c, "model.layers.0.self_attn.q_proj", &sv, &k,
	    NULL, &eb) == SPD_ENOTFOUND && sv == NULL,
	    "no spectrum stored: ENOTFOUND");
	ok(store_spectrum(ro, c, "nope", &sv, &k, NULL, &eb) == SPD_ENOTFOUND,
	    "unknown matrix: ENOTFOUND");
}

/* True when report b (loaded, no spectra) holds what a held. */
static bool
same_report(const struct report *a, const struct report *b)
{
	const struct mat_result	*m;
	bool			 all;
	size_t			 i;

	all = a->nmats == b->nmats && same_str(a->path, b->path) &&
	    same_str(a->backend, b->backend) && a->bytes == b->bytes &&
	    a->seconds == b->seconds;
	for (i = 0; all && i < b->nmats; i++) {
		m = &b->mats[i];
		struct got_metric g = { .name = m->name, .module = m->module,
		    .type = m->type, .dtype = (char *)dtype_name(m->dtype),
		    .status = (char *)mat_status_name(m->status),
		    .error = m->error, .layer = m->layer, .rows = m->rows,
		    .cols = m->cols, .m = m->m, .ht = m->ht,
		    .has_ht = m->has_ht, .seconds = m->seconds };

		all = metric_matches(&g, &a->mats[i]) &&
		    m->dtype == a->mats[i].dtype &&
		    m->status == a->mats[i].status &&
		    m->embedding == a->mats[i].embedding &&
		    m->spectrum == NULL && m->k == 0;
	}
	return all;
}

/* store_load_report of checkpoint c gives r back; other checks on ro. */
static void
check_load(struct store *s, struct store *ro, int64_t run, int64_t c,
    const struct report *r)
{
	struct spd_errbuf	 eb = { "" };
	struct report		*back = NULL;
	struct got_run		 gr = { .want = "main" };
	enum spd_err		 rc;
	int64_t			 c40 = 0;

	rc = store_load_report(ro, c, &back, &eb);
	ok(rc == SPD_OK && back != NULL && same_report(r, back),
	    "load_report reproduces every matrix (embedding included)");
	report_free(back);
	back = NULL;
	ok(store_ckpt_ensure(s, run, "/ckpt/main/checkpoint-40", 40, 1e9,
	    CK_PENDING, &c40, NULL, &eb) == SPD_OK &&
	    store_load_report(ro, c40, &back, &eb) == SPD_ENOTFOUND &&
	    back == NULL, "load_report of a pending checkpoint: ENOTFOUND");
	ok(store_runs(ro, collect_run, &gr, &eb) == SPD_OK && gr.latest == 30 &&
	    gr.counts[CK_DONE] == 1 && gr.counts[CK_PENDING] == 1,
	    "run: latest_step 30, counts done 1 pending 1");
	ok(store_ckpt_set_status(ro, c40, CK_DONE, NULL, &eb) == SPD_EINVAL,
	    "writing through a RO handle: EINVAL");
}

/* store_put_report then reading it back every way on a RO handle. */
static void
test_roundtrip(struct store *s, int64_t run, const char *db)
{
	struct spd_errbuf	 eb = { "" };
	struct report		*r;
	struct got_ckpt		 gc = { 0 };
	struct store		*ro;
	enum spd_err		 rc;
	long long		 ver = 0;
	bool			 changed = false;
	int64_t			 c = 0;

	r = make_report("/ckpt/main/checkpoint-30", mats_a, nitems(mats_a), 0);
	if (!ok(r != NULL, "built the report"))
		return;
	ro = must_open(db, STORE_RO);	/* before the write */
	ok(metric_count(ro, 1) == 0, "RO sees no metrics yet");
	ok(store_ckpt_ensure(s, run, r->path, 30, 1.7e9, CK_PENDING, &c, NULL,
	    &eb) == SPD_OK, "checkpoint 30");
	ok(store_ckpt_set_status(s, c, CK_ANALYZING, NULL, &eb) == SPD_OK &&
	    store_ckpt_progress(s, c, 3, 7, &eb) == SPD_OK, "analyzing 3/7");
	ok(store_ckpt_get(ro, run, 30, collect_ckpt, &gc, &eb) == SPD_OK &&
	    gc.status == CK_ANALYZING && gc.done == 3 && gc.total == 7 &&
	    gc.started > 1e9, "RO sees progress 3/7 and a start time");
	rc = put_report(s, c, r, 25, "a\nb", &ver, &changed, &eb);
	ok(rc == SPD_OK, "put_report (%s)", rc == SPD_OK ? "ok" : eb.msg);
	ok(ver == 1 && changed, "first selection: version 1, changed");
	check_metrics(ro, c, r);
	gc = (struct got_ckpt){ 0 };
	ok(store_ckpt_get(ro, run, -1, collect_ckpt, &gc, &eb) == SPD_OK &&
	    gc.id == c && gc.status == CK_DONE && gc.done == r->nmats &&
	    gc.total == r->nmats && gc.bytes == r->bytes &&
	    gc.seconds == r->seconds && strcmp(gc.backend, "cpu") == 0 &&
	    strcmp(gc.error, "(null)") == 0 && gc.finished >= gc.started &&
	    gc.wall_time == 1.7e9, "checkpoint row: done, timings, backend");
	check_spectra(ro, c, r);
	check_load(s, ro, run, c, r);
	store_close(ro);
	report_free(r);
}

/* Puts a small report for a new checkpoint at step; returns its id. */
static int64_t
put_step(struct store *s, int64_t run, long long step, const char *mods,
    unsigned top, long long *ver, bool *changed)
{
	struct spd_errbuf	 eb = { "" };
	struct report		*r;
	char			 path[64];
	int64_t			 c = 0;
	enum spd_err		 rc;

	snprintf(path, sizeof path, "/ckpt/v/checkpoint-%lld", step);
	r = make_report(path, mats_a, 3, (double)step);
	if (r == NULL)
		return -1;
	rc = store_ckpt_ensure(s, run, path, step, 1e9 + (double)step,
	    CK_PENDING, &c, NULL, &eb);
	if (rc == SPD_OK)
		rc = put_report(s, c, r, top, mods, ver, changed, &eb);
	report_free(r);
	if (rc != SPD_OK)
		printf("# put_step %lld: %s\n", step, eb.msg);
	return rc == SPD_OK ? c : -1;
}

/* Selection versions: equal sets keep it, changed sets bump it. */
static void
test_versions(struct store *s)
{
	struct spd_errbuf	 eb = { "" };
	static const struct {
		long long	 step;
		unsigned	 top;
		const char	*mods;
		long long	 want;
		bool		 changed;
	} cases[] = {
		{ 100, 25, "a\nb", 1, true },
		{ 200, 25, "a\nb", 1, false },
		{ 300, 25, "a\nc", 2, true },
		{ 400, 25, "a\nc", 2, false },
		{ 500, 25, "a\nb", 3, true },	/* back to an older set */
		{ 500, 50, "a\nb\nc", 1, true },	/* other top_percent */
	};
	char		*mods, *path = NULL;
	long long	 ver, step;
	bool		 changed;
	int64_t		 run = 0, c;
	size_t		 i;
	enum spd_err	 rc;

	ok(store_run_ensure(s, "versions", "/ckpt/v", &run, &eb) == SPD_OK,
	    "run versions");
	free(served(s, run, 25, &ver, &step, NULL, &rc));
	ok(rc == SPD_ENOTFOUND, "no selection yet: ENOTFOUND");
	for (i = 0; i < nitems(cases); i++) {
		ver = -1;
		changed = !cases[i].changed;
		c = put_step(s, run, cases[i].step, cases[i].mods, cases[i].top,
		    &ver, &changed);
		ok(c > 0 && ver == cases[i].want && changed == cases[i].changed,
		    "step %lld at %u%%: version %lld (want %lld), changed %d",
		    cases[i].step, cases[i].top, ver, cases[i].want, changed);
	}
	mods = served(s, run, 25, &ver, &step, &path, &rc);
	ok(rc == SPD_OK && ver == 3 && step == 500 && path != NULL &&
	    strcmp(path, "/ckpt/v/checkpoint-500") == 0 &&
	    strcmp(mods, "a\nb") == 0, "latest at 25%%: step 500, version 3, "
	    "its checkpoint and its modules back from the facts");
	free(mods);
	free(path);
	mods = served(s, run, 50, &ver, &step, NULL, &rc);
	ok(rc == SPD_OK && ver == 1 && step == 500 &&
	    strcmp(mods, "a\nb\nc") == 0, "latest at 50%%: version 1");
	free(mods);
	/* re-analysis of the newest checkpoint with a new set */
	ver = 0;
	ok(put_step(s, run, 500, "z", 25, &ver, &changed) > 0 && ver == 4 &&
	    changed, "re-put of step 500 with another set: version 4");
	ok(put_step(s, run, 500, "z", 25, &ver, &changed) > 0 && ver == 4 &&
	    !changed, "re-put with the same set: version 4 kept");
	/* backfill: an older step analysed later does not change what is served */
	ok(put_step(s, run, 250, "other", 25, &ver, &changed) > 0 &&
	    ver == 4 && !changed, "backfilled step 250: version 4, unchanged");
	mods = served(s, run, 25, &ver, &step, NULL, &rc);
	ok(rc == SPD_OK && ver == 4 && step == 500 && strcmp(mods, "z") == 0,
	    "still serving step 500 v4 after the backfill (step %lld)", step);
	free(mods);
}

/*
 * store_selection_sync with stickiness: layers 0 and 1 of one type swap
 * the top place at every step. Stored without hysteresis (25 %, nsel 1)
 * the set flips each time (churn 2, version 4); rebuilt by the sync with
 * stickiness 1 against the preceding step, layer 0 stays (version 1,
 * churn 0).
 */
static void
test_sync_sticky(struct store *s)
{
	struct mat_spec		 ms[4] = {
		{ "model.layers.0.mlp.up_proj", "mlp.up_proj", 0, 0, MAT_OK,
		  NULL, 0, 1.0, 0 },
		{ "model.layers.1.mlp.up_proj", "mlp.up_proj", 1, 0, MAT_OK,
		  NULL, 0, 1.0, 0 },
		{ "model.layers.2.mlp.up_proj", "mlp.up_proj", 2, 0, MAT_OK,
		  NULL, 1.0, 1.0, 0 },
		{ "model.layers.3.mlp.up_proj", "mlp.up_proj", 3, 0, MAT_OK,
		  NULL, 0.5, 1.0, 0 },
	};
	struct spd_errbuf	 eb = { "" };
	struct selection	*sel = NULL;
	struct report		*r;
	char			 path[64], *mods = NULL;
	long long		 ver = 0, step;
	size_t			 added = 0, churn = 99;
	bool			 changed;
	int64_t			 run = 0, c = 0;
	enum spd_err		 rc;

	rc = store_run_ensure(s, "sticky", "/ckpt/k", &run, &eb);
	for (step = 1; rc == SPD_OK && step <= 4; step++) {
		ms[0].snr = step % 2 ? 5.1 : 5.0;
		ms[1].snr = step % 2 ? 5.0 : 5.1;
		snprintf(path, sizeof path, "/ckpt/k/checkpoint-%lld", step);
		if ((r = make_report(path, ms, nitems(ms), 0)) == NULL)
			rc = SPD_ENOMEM;
		if (rc == SPD_OK)
			rc = store_ckpt_ensure(s, run, path, step, 1e9,
			    CK_PENDING, &c, NULL, &eb);
		if (rc == SPD_OK)
			rc = select_compute(r, 25, true, &sel);
		if (rc == SPD_OK)
			rc = store_put_report(s, c, r, sel, &ver, &changed,
			    &eb);
		selection_free(sel);
		sel = NULL;
		report_free(r);
	}
	ok(rc == SPD_OK && ver == 4, "oscillating run stored: version 4 "
	    "(%lld; %s)", ver, eb.msg);
	rc = store_selection_churn(s, run, 25, true, &churn, &eb);
	ok(rc == SPD_OK && churn == 2, "churn of the last two: 2 (%zu)",
	    churn);
	ok(store_selection_churn(s, run, 50, true, &churn, &eb) ==
	    SPD_ENOTFOUND, "churn with no selections: not found");
	rc = store_selection_sync(s, 25, false, 1, &added, &eb);
	ok(rc == SPD_OK && added >= 4, "sync with stickiness 1 (%zu)", added);
	rc = store_selection_latest(s, run, 25, false, &sel, &ver, &step,
	    NULL, &eb);
	if (rc == SPD_OK)
		mods = selection_modules(sel);
	ok(rc == SPD_OK && ver == 1 && step == 4 && mods != NULL &&
	    strcmp(mods, "model.layers.0.mlp.up_proj") == 0,
	    "sticky sync: layer 0 kept at every step, version 1 (v%lld %s)",
	    ver, mods != NULL ? mods : "-");
	rc = store_selection_churn(s, run, 25, false, &churn, &eb);
	ok(rc == SPD_OK && churn == 0, "sticky churn of the last two: 0 "
	    "(%zu)", churn);
	free(mods);
	selection_free(sel);
}

/*
 * store_selection_sync: selections missing for another top_percent or
 * include_embeddings are built from the stored metrics, in step order with
 * the one version rule, and read back as the facts select_compute gives.
 */
static void
test_sync(struct store *s)
{
	static const long long	 steps[] = { 10, 20, 30 };
	struct spd_errbuf	 eb = { "" };
	struct selection	*want = NULL, *got = NULL;
	struct report		*r = NULL;
	char			 path[64], *a = NULL, *b = NULL, *ya = NULL;
	char			*yb = NULL;
	long long		 ver = 0, step = 0;
	size_t			 i, added = 99;
	bool			 changed;
	int64_t			 run = 0, c = 0;
	enum spd_err		 rc = SPD_OK;

	ok(store_run_ensure(s, "sync", "/ckpt/s", &run, &eb) == SPD_OK,
	    "run sync");
	for (i = 0; rc == SPD_OK && i < nitems(steps); i++) {
		snprintf(path, sizeof path, "/ckpt/s/checkpoint-%lld", steps[i]);
		if ((r = make_report(path, mats_a, nitems(mats_a), 0)) == NULL)
			rc = SPD_ENOMEM;
		if (rc == SPD_OK)
			rc = store_ckpt_ensure(s, run, path, steps[i], 1e9,
			    CK_PENDING, &c, NULL, &eb);
		if (rc == SPD_OK)
			rc = select_compute(r, 25, true, &want);
		if (rc == SPD_OK)
			rc = store_put_report(s, c, r, want, &ver, &changed,
			    &eb);
		selection_free(want);
		want = NULL;
		if (i + 1 < nitems(steps))
			report_free(r);
	}
	if (!ok(rc == SPD_OK, "three checkpoints stored at 25%% (%s)", eb.msg))
		goto out;
	ok(store_selection_sync(s, 25, true, 0, &added, &eb) == SPD_OK &&
	    added == 0, "sync at the stored settings adds nothing");
	rc = store_selection_sync(s, 50, true, 0, &added, &eb);
	ok(rc == SPD_OK && added >= 3,
	    "sync at 50%%: every done checkpoint selected (%zu)", added);
	ok(store_selection_sync(s, 50, true, 0, &added, &eb) == SPD_OK &&
	    added == 0, "a second sync adds nothing");
	rc = store_selection_latest(s, run, 50, true, &got, &ver, &step, NULL,
	    &eb);
	ok(rc == SPD_OK && ver == 1 && step == 30,
	    "served at 50%%: step 30, version 1 (the same set throughout)");
	if (rc == SPD_OK && select_compute(r, 50, true, &want) == SPD_OK) {
		a = selection_modules(want);
		b = selection_modules(got);
		ya = selection_yaml(want);
		yb = selection_yaml(got);
	}
	ok(a != NULL && b != NULL && strcmp(a, b) == 0 && ya != NULL &&
	    yb != NULL && strcmp(ya, yb) == 0, "the facts read back render "
	    "as the computed selection does (YAML byte for byte)");
	selection_free(got);
	got = NULL;
	ok(store_selection_sync(s, 25, false, 0, &added, &eb) == SPD_OK &&
	    added >= 3 && store_selection_latest(s, run, 25, false, &got,
	    NULL, NULL, NULL, &eb) == SPD_OK && got->nembed == 0 &&
	    !got->with_embeddings, "without embeddings: its own selections, "
	    "none listed apart");
out:
	selection_free(want);
	selection_free(got);
	report_free(r);
	free(a);
	free(b);
	free(ya);
	free(yb);
}

/* store_hist_cb: records module, step and value of each point. */
struct got_hist {
	char		module[64][64];
	long long	step[64];
	double		value[64], wall[64];
	size_t		n;
	bool		types_ok;
	const char	*want_type;
};

static int
collect_hist(void *arg, const struct hist_row *row)
{
	struct got_hist *g = arg;

	if (g->n == nitems(g->step))
		return 1;
	if (g->want_type != NULL && strcmp(row->type, g->want_type) != 0)
		g->types_ok = false;
	snprintf(g->module[g->n], sizeof g->module[0], "%s", row->module);
	g->step[g->n] = row->step;
	g->value[g->n] = row->value;
	g->wall[g->n] = row->wall_time;
	g->n++;
	return 0;
}

/* Reads one metric of a matrix by history metric name. */
static double
field(const struct mat_result *mr, const char *name)
{
	const struct snr_result	*m = &mr->m;

	static const struct {
		const char	*name;
		size_t		 off;
	} f[] = {
		{ "snr", offsetof(struct snr_result, snr) },
		{ "s1", offsetof(struct snr_result, s1) },
		{ "sigma_hat", offsetof(struct snr_result, sigma_hat) },
		{ "tau", offsetof(struct snr_result, tau) },
		{ "signal", offsetof(struct snr_result, signal) },
		{ "noise", offsetof(struct snr_result, noise) },
		{ "fro2", offsetof(struct snr_result, fro2) },
		{ "stable_rank", offsetof(struct snr_result, stable_rank) },
	};
	double	v;
	size_t	i;

	if (strcmp(name, "alpha") == 0)
		return mr->ht.alpha;
	if (strcmp(name, "alpha_weighted") == 0)
		return mr->ht.alpha_weighted;
	if (strcmp(name, "ks") == 0)
		return mr->ht.ks;
	if (strcmp(name, "log_spectral_norm") == 0)
		return mr->ht.log_spectral_norm;
	if (strcmp(name, "mp_rank") == 0)
		return (double)m->mp_rank;
	for (i = 0; i < nitems(f); i++) {
		if (strcmp(f[i].name, name) == 0) {
			memcpy(&v, (const char *)m + f[i].off, sizeof v);
			return v;
		}
	}
	return NAN;
}

/*
 * Heavy-tail history: a checkpoint stored without the metrics (as before
 * schema 5) has no points in theirs, but NaN/Inf weights still give a NaN
 * point, as in the SNR's.
 */
static void
test_history_ht(struct store *s, int64_t run, struct got_hist *g)
{
	struct spd_errbuf	 eb = { "" };
	struct report		*r;
	const char		*path = "/ckpt/h/checkpoint-400";
	int64_t			 c = 0;
	size_t			 i;

	r = make_report(path, mats_a, nitems(mats_a), 400);
	for (i = 0; r != NULL && i < r->nmats; i++)
		r->mats[i].has_ht = false;
	ok(r != NULL && store_ckpt_ensure(s, run, path, 400, 1e9, CK_PENDING,
	    &c, NULL, &eb) == SPD_OK && put_report(s, c, r, 25, "a", NULL,
	    NULL, &eb) == SPD_OK, "step 400 stored without heavy-tail metrics");
	report_free(r);
	memset(g, 0, sizeof *g);
	ok(store_history(s, run, "mlp.down_proj", "snr", collect_hist, g,
	    &eb) == SPD_OK && g->n == 6, "snr: step 400 has points (%zu)",
	    g->n);
	memset(g, 0, sizeof *g);
	ok(store_history(s, run, "mlp.down_proj", "alpha", collect_hist, g,
	    &eb) == SPD_OK && g->n == 4 && g->step[1] == 200 &&
	    g->step[3] == 200, "alpha: none at step 400, not computed (%zu)",
	    g->n);
	memset(g, 0, sizeof *g);
	ok(store_history(s, run, "self_attn.q_proj", "ks", collect_hist, g,
	    &eb) == SPD_OK && g->n == 1 && g->step[0] == 400 &&
	    isnan(g->value[0]), "ks: the NaN-weights matrix has a NaN point, "
	    "the failed one none (%zu)", g->n);
}

/* History: order, type filter, every metric, done checkpoints only. */
static void
test_history(struct store *s)
{
	static const char *const metrics[] = { "snr", "s1", "sigma_hat", "tau",
	    "mp_rank", "signal", "noise", "fro2", "stable_rank", "alpha",
	    "alpha_weighted", "ks", "log_spectral_norm" };
	static const long long steps[] = { 200, 100, 300 };	/* put order */
	struct spd_errbuf	 eb = { "" };
	struct got_hist		*g = calloc(1, sizeof *g);
	struct report		*want;
	long long		 ver;
	bool			 changed, sorted = true, vals;
	int64_t			 run = 0, c300 = 0;
	enum spd_err		 rc;
	size_t			 i, j;

	if (g == NULL)
		return;
	ok(store_run_ensure(s, "hist", "/ckpt/h", &run, &eb) == SPD_OK,
	    "run hist");
	for (i = 0; i < nitems(steps); i++)
		c300 = put_step(s, run, steps[i], "a", 25, &ver, &changed);
	ok(c300 > 0 && store_ckpt_set_status(s, c300, CK_ANALYZING, NULL,
	    &eb) == SPD_OK, "step 300 back to analyzing");
	rc = store_history(s, run, NULL, "snr", collect_hist, g, &eb);
	ok(rc == SPD_OK && g->n == 6, "snr history: 3 modules x 2 done steps"
	    " = %zu points", g->n);
	for (i = 1; i < g->n; i++) {
		int cmp = strcmp(g->module[i - 1], g->module[i]);

		sorted = sorted && (cmp < 0 || (cmp == 0 &&
		    g->step[i - 1] < g->step[i]));
	}
	ok(sorted && g->n == 6 && g->step[0] == 100 && g->step[1] == 200,
	    "ordered by module then step, analysing step 300 left out");
	ok(g->n == 6 && g->wall[0] == 1e9 + 100, "wall time of the point");
	for (i = 0; i < nitems(metrics); i++) {
		want = make_report("x", mats_a, 3, 100);
		memset(g, 0, sizeof *g);
		g->types_ok = true;
		g->want_type = "mlp.down_proj";
		vals = store_history(s, run, "mlp.down_proj", metrics[i],
		    collect_hist, g, &eb) == SPD_OK && g->n == 4 &&
		    g->types_ok && want != NULL;
		/* points 0, 1: layer 0 at steps 100, 200; 2, 3: layer 1 */
		for (j = 0; vals && j < 4; j++) {
			report_free(want);
			want = make_report("x", mats_a, 3,
			    (double)g->step[j]);
			vals = want != NULL && same(g->value[j],
			    field(&want->mats[1 + j / 2], metrics[i]));
		}
		report_free(want);
		ok(vals, "history of %s for type mlp.down_proj: 4 exact points",
		    metrics[i]);
	}
	memset(g, 0, sizeof *g);
	rc = store_history(s, run, NULL, "snr_db", collect_hist, g, &eb);
	ok(rc == SPD_EINVAL && g->n == 0, "unknown metric: EINVAL (%s)",
	    eb.msg);
	ok(store_history(s, run, "no.such.type", "snr", collect_hist, g, &eb) ==
	    SPD_OK && g->n == 0, "unknown type: no points");
	test_history_ht(s, run, g);
	free(g);
}

/* A failed store_put_report stores nothing. */
static void
test_atomic(struct store *s, int64_t run)
{
	static const struct mat_spec dup[] = {
		{ "model.layers.0.mlp.down_proj", "mlp.down_proj", 0, 0, MAT_OK,
		  NULL, 1.0, 2.0, 8 },
		{ "model.layers.0.mlp.down_proj", "mlp.down_proj", 0, 0, MAT_OK,
		  NULL, 3.0, 4.0, 8 },
	};
	struct spd_errbuf	 eb = { "" };
	struct report		*good, *bad;
	struct sel_type		 nameless = { NULL, 1, 0, NULL };
	struct selection	 refused = { .top_percent = 25,
	    .with_embeddings = true, .types = &nameless, .ntypes = 1 };
	char			*mods, want[64];
	long long		 ver = 42, v2 = 0, st = 0;
	bool			 changed = false;
	int64_t			 c = 0;
	enum spd_err		 rc;

	good = make_report("/ckpt/main/checkpoint-50", mats_a, nitems(mats_a),
	    0.5);
	bad = make_report("/ckpt/main/checkpoint-50", dup, nitems(dup), 0);
	if (!ok(good != NULL && bad != NULL, "reports built"))
		goto out;
	ok(store_ckpt_ensure(s, run, good->path, 50, 1e9, CK_PENDING, &c, NULL,
	    &eb) == SPD_OK && put_report(s, c, good, 25, "a\nb", &ver,
	    &changed, &eb) == SPD_OK, "checkpoint 50 stored");
	ok(store_ckpt_set_status(s, c, CK_ANALYZING, NULL, &eb) == SPD_OK,
	    "re-analysing checkpoint 50");

	ver = 42;
	rc = put_report(s, c, bad, 25, "q", &ver, &changed, &eb);
	ok(rc == SPD_EINVAL && ver == 42, "duplicate matrix: EINVAL (%s)",
	    eb.msg);
	snprintf(want, sizeof want, "store: put report for checkpoint %"
	    PRId64 ": ", c);
	ok(strncmp(eb.msg, want, strlen(want)) == 0, "message names the op");
	ok(metric_count(s, c) == (long)good->nmats, "metrics unchanged");
	ok(status_at(s, run, 50) == CK_ANALYZING, "status unchanged");

	/* A type without a name breaks a constraint on its member row: the
	 * last write of the transaction fails. */
	rc = store_put_report(s, c, good, &refused, &ver, &changed, &eb);
	ok(rc != SPD_OK && ver == 42,
	    "selection refused by the database, last: %s (%s)",
	    spd_strerror(rc), eb.msg);
	ok(metric_count(s, c) == (long)good->nmats, "metrics unchanged");
	ok(status_at(s, run, 50) == CK_ANALYZING, "status unchanged");
	mods = served(s, run, 25, &v2, &st, NULL, &rc);
	ok(rc == SPD_OK && st == 50 && v2 == 1 && strcmp(mods, "a\nb") == 0,
	    "selection unchanged (step %lld, v%lld)", st, v2);
	free(mods);

	ok(put_report(s, 987654, good, 25, "q", &ver, &changed, &eb) ==
	    SPD_ENOTFOUND, "unknown checkpoint: ENOTFOUND");
	ok(put_report(s, c, good, 0, "q", &ver, &changed, &eb) == SPD_EINVAL,
	    "top_percent 0: EINVAL");
out:
	report_free(good);
	report_free(bad);
}

/* store_reset_interrupted: analysing → pending, others untouched. */
static void
test_reset(struct store *s, int64_t run)
{
	struct spd_errbuf eb = { "" };

	ok(status_at(s, run, 50) == CK_ANALYZING, "step 50 analysing");
	ok(store_reset_interrupted(s, &eb) == SPD_OK, "reset interrupted");
	ok(status_at(s, run, 50) == CK_PENDING, "step 50 now pending");
	ok(status_at(s, run, 30) == CK_DONE, "step 30 still done");
	ok(status_at(s, run, 10) == CK_FAILED, "step 10 still failed");
}

/* Incomplete checkpoints: marked with a reason, given up, resumed, dropped. */
static void
test_incomplete(struct store *s, int64_t run)
{
	struct spd_errbuf	eb = { "" };
	struct got_ckpt		g = { 0 };
	enum ckpt_status	cur;
	int64_t			c = 0, p = 0;
	double			since = 0;
	bool			resumed = true;

	ok(store_ckpt_ensure(s, run, "/ckpt/main/checkpoint-70", 70, 1e9,
	    CK_INCOMPLETE, &c, &cur, &eb) == SPD_OK && cur == CK_INCOMPLETE,
	    "insert as incomplete");
	ok(store_ckpt_set_incomplete(s, c, "shard is 5 of 10 bytes", 1000.0,
	    &since, &eb) == SPD_OK && since == 1000.0, "first seen at 1000");
	ok(store_ckpt_set_incomplete(s, c, "shard is 7 of 10 bytes", 1005.0,
	    &since, &eb) == SPD_OK && since == 1000.0,
	    "seen again: since kept (%g)", since);
	ok(store_ckpt_get(s, run, 70, collect_ckpt, &g, &eb) == SPD_OK &&
	    g.status == CK_INCOMPLETE &&
	    strcmp(g.error, "shard is 7 of 10 bytes") == 0,
	    "row: incomplete with the latest reason (%s)", g.error);
	ok(store_ckpt_set_status(s, c, CK_FAILED, "gave up", &eb) == SPD_OK,
	    "given up: failed");
	ok(store_ckpt_resume(s, c, &resumed, &eb) == SPD_OK && resumed &&
	    status_at(s, run, 70) == CK_PENDING, "whole later: pending again");
	ok(store_ckpt_resume(s, c, &resumed, &eb) == SPD_OK && !resumed,
	    "resume of a pending one: no change");
	ok(store_ckpt_set_status(s, c, CK_FAILED, "bad matrix", &eb) ==
	    SPD_OK && store_ckpt_resume(s, c, &resumed, &eb) == SPD_OK &&
	    !resumed && status_at(s, run, 70) == CK_FAILED,
	    "an analysis failure is not resumed");
	ok(store_ckpt_ensure(s, run, "/ckpt/plain", 71, 1e9, CK_INCOMPLETE,
	    &p, NULL, &eb) == SPD_OK && store_ckpt_drop_incomplete(s, run,
	    "/ckpt/plain", &eb) == SPD_OK && status_at(s, run, 71) ==
	    CK_NSTATUS, "an incomplete row is dropped");
	ok(store_ckpt_drop_incomplete(s, run, "/ckpt/main/checkpoint-70",
	    &eb) == SPD_OK && status_at(s, run, 70) == CK_FAILED,
	    "a failed analysis is not dropped");
	ok(store_ckpt_set_status(s, c, CK_NSTATUS, NULL, &eb) == SPD_EINVAL,
	    "bad status: EINVAL");
}

/* The lock, and writes refused once the file is deleted or replaced. */
static void
test_gone(void)
{
	struct spd_errbuf	 eb = { "" };
	struct store_lock	*l = NULL, *l2 = NULL;
	struct store		*s = NULL;
	char			 db[512], other[512];
	int64_t			 run = 0;

	path_in(db, sizeof db, "gone.db");
	path_in(other, sizeof other, "gone2.db");
	ok(store_lock(db, &l, &eb) == SPD_OK, "lock (creates the file)");
	ok(store_lock(db, &l2, &eb) == SPD_EBUSY && l2 == NULL &&
	    strstr(eb.msg, "in use by another spectrumd") != NULL,
	    "second lock: EBUSY (%s)", eb.msg);
	s = must_open(db, STORE_RW);
	ok(store_lock_check(l, &eb) == SPD_OK, "lock check: ok");
	ok(store_run_ensure(s, "r", "/r", &run, &eb) == SPD_OK &&
	    store_last_fault(s) == STORE_FAULT_NONE, "write: ok");
	ok(copy_file(db, other) && rename(other, db) == 0, "replaced the file");
	ok(store_lock_check(l, &eb) == SPD_ENOTFOUND &&
	    strstr(eb.msg, "replaced") != NULL, "lock check: %s", eb.msg);
	ok(store_run_ensure(s, "r2", "/r", &run, &eb) == SPD_EIO &&
	    store_last_fault(s) == STORE_FAULT_GONE &&
	    strstr(eb.msg, "replaced") != NULL, "write refused: %s", eb.msg);
	unlink(db);
	ok(store_lock_check(l, &eb) == SPD_ENOTFOUND &&
	    strstr(eb.msg, "deleted") != NULL, "lock check: %s", eb.msg);
	ok(store_run_ensure(s, "r3", "/r", &run, &eb) == SPD_EIO &&
	    store_last_fault(s) == STORE_FAULT_GONE &&
	    strstr(eb.msg, "deleted") != NULL, "write refused: %s", eb.msg);
	store_close(s);
	store_unlock(l);
	ok(store_lock(db, &l, &eb) == SPD_OK, "after unlock: lock again");
	store_unlock(l);
	store_unlock(NULL);
	unlink(db);
}

/* Times store_put_report of TIMING_MATS matrices with SPEC_K spectra. */
static void
test_timing(struct store *s)
{
	static struct mat_spec	 specs[TIMING_MATS];
	static char		 names[TIMING_MATS][64];
	struct spd_errbuf	 eb = { "" };
	struct report		*r;
	long long		 ver;
	bool			 changed;
	int64_t			 run = 0, c = 0;
	double			 t0, dt;
	size_t			 i;

	for (i = 0; i < TIMING_MATS; i++) {
		snprintf(names[i], sizeof names[i],
		    "model.layers.%zu.mlp.proj%zu", i / 7, i % 7);
		specs[i] = (struct mat_spec){ names[i], "mlp.proj", (int)(i / 7),
		    0, MAT_OK, NULL, 1.0 + (double)i, 10.0, SPEC_K };
	}
	r = make_report("/ckpt/t/checkpoint-1", specs, TIMING_MATS, 0);
	ok(r != NULL && store_run_ensure(s, "timing", "/ckpt/t", &run, &eb) ==
	    SPD_OK && store_ckpt_ensure(s, run, "/ckpt/t/checkpoint-1", 1, 1e9,
	    CK_PENDING, &c, NULL, &eb) == SPD_OK, "timing fixture");
	if (r == NULL)
		return;
	t0 = spd_now();
	ok(put_report(s, c, r, 25, "a", &ver, &changed, &eb) == SPD_OK,
	    "put_report of %d matrices x %d floats", TIMING_MATS, SPEC_K);
	dt = spd_now() - t0;
	printf("# store_put_report: %d matrices, %d-float spectra: %.1f ms\n",
	    TIMING_MATS, SPEC_K, dt * 1e3);
	ok(dt < 1.0, "took under a second (%.3f s)", dt);
	ok(metric_count(s, c) == TIMING_MATS, "all %d stored", TIMING_MATS);
	report_free(r);
}

/* Gives matrix i of r the fingerprint {base + i + 1, 0, …}. */
static void
set_fps_from(struct report *r, unsigned base)
{
	size_t i;

	for (i = 0; i < r->nmats; i++) {
		memset(r->mats[i].fp, 0, FINGERPRINT_LEN);
		r->mats[i].fp[0] = (unsigned char)(base + i + 1);
		r->mats[i].has_fp = true;
	}
}

/* Gives matrix i of r the fingerprint {i + 1, 0, …}. */
static void
set_fps(struct report *r)
{
	set_fps_from(r, 0);
}

/* Makes found result m (matrix i of a) matrix i of r, reused. */
static void
take_reused(struct report *r, size_t i, const struct report *a,
    struct mat_result *m)
{
	mat_result_cleanup(&r->mats[i]);
	r->mats[i] = *m;
	memset(m, 0, sizeof *m);
	r->mats[i].name = strdup(a->mats[i].name);
	r->mats[i].module = strdup(a->mats[i].module);
	r->mats[i].type = strdup(a->mats[i].type);
	r->mats[i].rows = a->mats[i].rows;
	r->mats[i].cols = a->mats[i].cols;
	r->mats[i].dtype = a->mats[i].dtype;
	r->mats[i].status = MAT_OK;
	r->reused++;
}

/* Looks fingerprint {b, 0, …} up; returns found, fills *out. */
static bool
find_fp(struct store *s, unsigned char b, const char *method, int64_t excl,
    bool spectrum, struct mat_result *out)
{
	struct spd_errbuf	eb = { "" };
	bool			found = false;

	memset(out, 0, sizeof *out);
	out->fp[0] = b;
	out->has_fp = true;
	if (store_reuse_find(s, method, excl, spectrum, out, &found, &eb) !=
	    SPD_OK)
		return false;
	return found;
}

/*
 * store_reuse_find and the reused-row copy: only 'ok' rows of the same
 * method, outside the excluded checkpoint, with a spectrum when asked;
 * a reused row stores the source's metrics exactly with its origin, and
 * the checkpoint counts it.
 */
static void
test_reuse(struct store *s, int64_t run)
{
	struct spd_errbuf	 eb = { "" };
	struct report		*a, *b;
	struct mat_result	 m;
	static struct metrics	 ms;
	enum ckpt_status	 cur;
	int64_t			 c1 = 0, c2 = 0;
	struct got_ckpt		 row;

	a = make_report("/ckpt/reuse/checkpoint-1", mats_a, nitems(mats_a),
	    0.0);
	b = make_report("/ckpt/reuse/checkpoint-2", mats_a, nitems(mats_a),
	    0.5);
	if (!ok(a != NULL && b != NULL && (a->method = strdup("cpu/r1")) !=
	    NULL && (b->method = strdup("cpu/r1")) != NULL, "reuse reports"))
		goto out;
	set_fps(a);
	ok(!find_fp(s, 2, "cpu/r1", 0, false, &m), "nothing found before");
	ok(store_ckpt_ensure(s, run, a->path, 1, 1e9, CK_PENDING, &c1, &cur,
	    &eb) == SPD_OK && put_report(s, c1, a, 25, "", NULL, NULL,
	    &eb) == SPD_OK, "put a fingerprinted report");
	ok(find_fp(s, 2, "cpu/r1", 0, true, &m) && m.from_ckpt == c1 &&
	    same_snr(&m.m, &a->mats[1].m) && m.k == a->mats[1].k &&
	    same_ht(m.has_ht, &m.ht, a->mats[1].has_ht, &a->mats[1].ht) &&
	    memcmp(m.spectrum, a->mats[1].spectrum, m.k * 4) == 0 &&
	    m.from_step == 1 && m.from_run == run,
	    "found by fingerprint: metrics (heavy-tail too), spectrum and "
	    "origin exact");
	mat_result_cleanup(&m);
	ok(!find_fp(s, 2, "cpu/r0", 0, false, &m),
	    "another method is not found");
	ok(!find_fp(s, 2, "cpu/r1", c1, false, &m),
	    "the excluded checkpoint is not searched");
	ok(!find_fp(s, 4, "cpu/r1", 0, false, &m),
	    "a nonfinite result is not reused");
	ok(!find_fp(s, 5, "cpu/r1", 0, false, &m),
	    "an error result is not reused");
	ok(!find_fp(s, 6, "cpu/r1", 0, false, &m),
	    "a skipped matrix is not reused");
	ok(find_fp(s, 1, "cpu/r1", 0, false, &m) && m.spectrum == NULL &&
	    m.k == 0, "no spectrum unless asked for");
	mat_result_cleanup(&m);
	/* b: matrix 1 reused from a (its own values differ: salt 0.5). */
	set_fps(b);
	ok(find_fp(s, 2, "cpu/r1", 0, true, &m), "found again");
	take_reused(b, 1, a, &m);
	/* Not what the copy stores: the source had its own. */
	b->mats[1].ht.alpha = 99;
	ok(store_ckpt_ensure(s, run, b->path, 2, 1e9, CK_PENDING, &c2, &cur,
	    &eb) == SPD_OK && put_report(s, c2, b, 25, "", NULL, NULL,
	    &eb) == SPD_OK, "put a report with a reused row");
	ok(store_metrics(s, c2, collect_metric, &ms, &eb) == SPD_OK &&
	    ms.n == b->nmats && same_snr(&ms.row[1].m, &a->mats[1].m) &&
	    same_ht(ms.row[1].has_ht, &ms.row[1].ht, a->mats[1].has_ht,
	    &a->mats[1].ht) && same_snr(&ms.row[2].m, &b->mats[2].m) &&
	    same_ht(ms.row[2].has_ht, &ms.row[2].ht, b->mats[2].has_ht,
	    &b->mats[2].ht),
	    "the reused row holds the source's metrics (heavy-tail too), the "
	    "others their own");
	metrics_clear(&ms);
	ok(store_ckpt_get(s, run, 2, collect_ckpt, &row, &eb) == SPD_OK &&
	    row.reused == 1, "the checkpoint counts 1 reused");
	ok(find_fp(s, 2, "cpu/r1", c1, false, &m) && m.from_ckpt == c2 &&
	    m.from_step == 1, "a copy keeps the step it was computed at");
	mat_result_cleanup(&m);
out:
	report_free(a);
	report_free(b);
}

/*
 * Reuse of rows stored without heavy-tail metrics (before schema 5): found
 * only with a spectrum, which comes back even unasked so the caller can
 * fit it; the copy then gets the caller's metrics, and later lookups
 * prefer it.
 */
static void
test_reuse_old(struct store *s, int64_t run)
{
	struct spd_errbuf	 eb = { "" };
	struct report		*a, *b;
	struct mat_result	 m;
	struct heavytail_result	 fit;
	static struct metrics	 ms;
	int64_t			 c1 = 0, c2 = 0;
	size_t			 i;

	a = make_report("/ckpt/reuse/checkpoint-3", mats_a, nitems(mats_a),
	    0.25);
	b = make_report("/ckpt/reuse/checkpoint-4", mats_a, nitems(mats_a),
	    0.75);
	if (!ok(a != NULL && b != NULL && (a->method = strdup("cpu/r1")) !=
	    NULL && (b->method = strdup("cpu/r1")) != NULL, "old-row reports"))
		goto out;
	for (i = 0; i < a->nmats; i++)
		a->mats[i].has_ht = false;
	free(a->mats[6].spectrum);	/* lm_head: no spectrum either */
	a->mats[6].spectrum = NULL;
	a->mats[6].k = 0;
	set_fps_from(a, 0x40);
	ok(store_ckpt_ensure(s, run, a->path, 3, 1e9, CK_PENDING, &c1, NULL,
	    &eb) == SPD_OK && put_report(s, c1, a, 25, "", NULL, NULL,
	    &eb) == SPD_OK, "put a report without heavy-tail metrics");
	ok(find_fp(s, 0x42, "cpu/r1", 0, false, &m) && !m.has_ht &&
	    m.spectrum != NULL && m.k == a->mats[1].k &&
	    memcmp(m.spectrum, a->mats[1].spectrum, m.k * 4) == 0 &&
	    same_snr(&m.m, &a->mats[1].m),
	    "an old row comes with its spectrum, unasked, to fit");
	mat_result_cleanup(&m);
	ok(!find_fp(s, 0x47, "cpu/r1", 0, false, &m),
	    "an old row without a spectrum is not reused");
	ok(find_fp(s, 0x42, "cpu/r1", 0, false, &m), "found to reuse");
	fit = b->mats[1].ht;
	take_reused(b, 1, a, &m);
	b->mats[1].ht = fit;		/* as analyze.c fits the spectrum */
	b->mats[1].has_ht = true;
	set_fps_from(b, 0x80);
	b->mats[1].fp[0] = 0x42;
	ok(store_ckpt_ensure(s, run, b->path, 4, 1e9, CK_PENDING, &c2, NULL,
	    &eb) == SPD_OK && put_report(s, c2, b, 25, "", NULL, NULL,
	    &eb) == SPD_OK, "put a report reusing the old row");
	ok(store_metrics(s, c2, collect_metric, &ms, &eb) == SPD_OK &&
	    ms.n == b->nmats && same_snr(&ms.row[1].m, &a->mats[1].m) &&
	    ms.row[1].has_ht && same_ht(true, &ms.row[1].ht, true, &fit),
	    "the copy holds the source's SNR metrics and the new fit");
	metrics_clear(&ms);
	ok(find_fp(s, 0x42, "cpu/r1", 0, false, &m) && m.from_ckpt == c2 &&
	    m.from_step == 3 && m.has_ht && m.spectrum == NULL &&
	    same_ht(true, &m.ht, true, &fit),
	    "a later lookup takes the copy with the metrics, no spectrum");
	mat_result_cleanup(&m);
	ok(find_fp(s, 0x42, "cpu/r1", c2, false, &m) && m.from_ckpt == c1 &&
	    !m.has_ht && m.spectrum != NULL, "the old row is still found");
	mat_result_cleanup(&m);
out:
	report_free(a);
	report_free(b);
}

/* Collects a training-log series (store_train_log callback). */
struct got_train {
	long long	 step[8];
	double		 value[8];
	size_t		 n;
	bool		 shape_ok;
};

static int
train_cb(void *arg, const struct hist_row *r)
{
	struct got_train *g = arg;

	if (g->n >= nitems(g->step))
		return 1;
	g->shape_ok = g->shape_ok && strcmp(r->type, "train_log") == 0 &&
	    r->layer == -1 && isnan(r->wall_time);
	g->step[g->n] = r->step;
	g->value[g->n++] = r->value;
	return 0;
}

/* Collects the training-log names as "name:points:first:last;". */
static int
train_names_cb(void *arg, const struct train_name_row *r)
{
	char	*b = arg;
	size_t	 n = strlen(b);

	snprintf(b + n, 256 - n, "%s:%" PRIu64 ":%lld:%lld;", r->name,
	    r->points, r->first_step, r->last_step);
	return 0;
}

/* Training log: overlapping histories dedup by (run, step, name). */
static void
test_train(struct store *s)
{
	struct spd_errbuf	 eb = { "" };
	static const struct train_point first[] = {
		{ 10, 2.5, "loss" }, { 10, 1e-4, "learning_rate" },
		{ 20, 2.0, "loss" }, { 20, 0.9, "eval_loss" },
	}, resumed[] = {
		{ 20, 1.9, "loss" }, { 30, 1.5, "loss" },
		{ 20, 0.9, "eval_loss" },
	}, older[] = {
		{ 20, 5.0, "loss" }, { 5, 3.0, "loss" },
	}, bad[] = {
		{ 40, 1.0, "loss" }, { 40, 1.0, "bad name" },
	};
	struct got_train	 g = { .shape_ok = true };
	char			 names[256] = "";
	int64_t			 r1 = 0, r2 = 0;

	ok(store_run_ensure(s, "trainlog", "/ckpt/trainlog", &r1, &eb) ==
	    SPD_OK && store_run_ensure(s, "trainlog2", "/ckpt/trainlog2", &r2,
	    &eb) == SPD_OK, "training-log runs");
	ok(store_train_put(s, r1, 20, first, nitems(first), &eb) == SPD_OK,
	    "first history stored: %s", eb.msg);
	ok(store_train_put(s, r1, 30, resumed, nitems(resumed), &eb) ==
	    SPD_OK, "overlapping resumed history stored: %s", eb.msg);
	ok(store_train_put(s, r1, 10, older, nitems(older), &eb) == SPD_OK,
	    "an older checkpoint's history, analysed last, stored: %s",
	    eb.msg);
	ok(store_train_put(s, r2, 20, first, 1, &eb) == SPD_OK,
	    "another run's history stored");
	ok(store_train_put(s, r1, 40, bad, nitems(bad), &eb) == SPD_EINVAL,
	    "a batch with a bad name: EINVAL");
	ok(store_train_put(s, r1, 40, NULL, 0, &eb) == SPD_OK, "empty batch");
	ok(store_train_log(s, r1, "loss", train_cb, &g, &eb) == SPD_OK &&
	    g.n == 4 && g.shape_ok, "loss: 4 points, not 6 (dedup), not the "
	    "bad batch's");
	ok(g.n == 4 && g.step[0] == 5 && g.step[1] == 10 && g.step[2] == 20 &&
	    g.step[3] == 30 && g.value[0] == 3.0 && g.value[1] == 2.5 &&
	    g.value[2] == 1.9 && g.value[3] == 1.5, "in step order; the "
	    "resumed value replaces the overlapped one, an older one does not");
	memset(&g, 0, sizeof g);
	ok(store_train_log(s, r1, "grad_norm", train_cb, &g, &eb) == SPD_OK &&
	    g.n == 0, "a metric never logged: no points");
	ok(store_train_log(s, r1, "bad name", train_cb, &g, &eb) == SPD_EINVAL,
	    "a bad name: EINVAL");
	ok(store_train_names(s, r1, train_names_cb, names, &eb) == SPD_OK &&
	    strcmp(names, "eval_loss:1:20:20;learning_rate:1:10:10;"
	    "loss:4:5:30;") == 0, "names with counts and steps: %s", names);
	names[0] = '\0';
	ok(store_train_names(s, r2, train_names_cb, names, &eb) == SPD_OK &&
	    strcmp(names, "loss:1:10:10;") == 0, "the other run's own: %s",
	    names);
}


/* What the alert walks below collect. */
struct got_alerts {
	size_t		 n;
	int64_t		 id[8];
	long long	 step[8];
	char		 text[512];	/* "kind:count:modules;" per alert */
};

/* Collects alerts (store_alerts callback). */
static int
alerts_cb(void *arg, const struct alert_row *r)
{
	struct got_alerts	*g = arg;
	size_t			 len = strlen(g->text), i;

	if (g->n < nitems(g->id)) {
		g->id[g->n] = r->id;
		g->step[g->n] = r->step;
	}
	g->n++;
	len += (size_t)snprintf(g->text + len, sizeof g->text - len,
	    "%s/%s:%llu:", r->kind, r->severity, (unsigned long long)r->count);
	for (i = 0; i < r->nmodules && len < sizeof g->text; i++)
		len += (size_t)snprintf(g->text + len, sizeof g->text - len,
		    "%s%s", i > 0 ? "," : "", r->modules[i]);
	if (len < sizeof g->text)
		snprintf(g->text + len, sizeof g->text - len, ";");
	return 0;
}

/* Collects "run:kind:count;" (store_alert_counts callback). */
static int
alert_counts_cb(void *arg, const struct alert_count_row *r)
{
	char	*buf = arg;
	size_t	 len = strlen(buf);

	snprintf(buf + len, 256 - len, "%s:%s:%llu;", r->run, r->kind,
	    (unsigned long long)r->count);
	return 0;
}

/* Collects "step:modules;" (store_selection_steps callback). */
static int
sel_steps_cb(void *arg, const struct sel_step_row *r)
{
	char	*buf = arg;
	size_t	 len = strlen(buf);
	size_t	 i;

	len += (size_t)snprintf(buf + len, 256 - len, "%lld:", r->step);
	for (i = 0; r->modules[i] != '\0' && len + 2 < 256; i++)
		buf[len++] = r->modules[i] == '\n' ? ',' : r->modules[i];
	buf[len++] = ';';
	buf[len] = '\0';
	return 0;
}

/* Alerts: one per (run, step, kind), listed newest first, counted. */
static void
test_alerts_store(struct store *s)
{
	struct spd_errbuf	 eb = { "" };
	struct alert		 a = { .kind = ALERT_SNR_JUMP, .value = 3.5,
	    .threshold = 2, .count = 3, .modules = { "m.q", "m.k" },
	    .nmodules = 2, .message = "jump" };
	struct got_alerts	 g;
	char			 buf[256] = "";
	int64_t			 r1 = 0, r2 = 0, id = -1, first = 0;
	double			 created = 0, wall[ALERT_STALL_N];
	size_t			 n = 0;
	long long		 last = 0;
	bool			 stalled = true;

	ok(store_run_ensure(s, "alerts1", "/ckpt/al1", &r1, &eb) == SPD_OK &&
	    store_run_ensure(s, "alerts2", "/ckpt/al2", &r2, &eb) == SPD_OK,
	    "alert runs");
	ok(store_alert_add(s, r1, 100, &a, &id, &created, &eb) == SPD_OK &&
	    id > 0 && created > 1e9, "snr_jump at step 100 stored: %s", eb.msg);
	first = id;
	ok(store_alert_add(s, r1, 100, &a, &id, NULL, &eb) == SPD_OK &&
	    id == 0, "the same (run, step, kind) again: not stored (id 0)");
	a.kind = ALERT_NONFINITE;
	a.nmodules = 1;
	ok(store_alert_add(s, r1, 100, &a, &id, NULL, &eb) == SPD_OK &&
	    id > first, "another kind at that step: stored");
	ok(store_alert_add(s, r2, 100, &a, &id, NULL, &eb) == SPD_OK &&
	    id > 0, "the same step and kind in another run: stored");
	a.kind = ALERT_CHURN;
	a.nmodules = 0;
	ok(store_alert_add(s, r1, -1, &a, &id, NULL, &eb) == SPD_OK && id > 0 &&
	    store_alert_add(s, r1, -1, &a, &id, NULL, &eb) == SPD_OK && id > 0,
	    "alerts without a step are not keyed");
	a.kind = ALERT_NKINDS;
	ok(store_alert_add(s, r1, 200, &a, &id, NULL, &eb) == SPD_EINVAL,
	    "a bad kind: EINVAL");
	memset(&g, 0, sizeof g);
	ok(store_alerts(s, r1, 0, 100, alerts_cb, &g, &eb) == SPD_OK &&
	    g.n == 4 && strcmp(g.text, "churn/warning:3:;churn/warning:3:;"
	    "nonfinite/critical:3:m.q;snr_jump/warning:3:m.q,m.k;") == 0,
	    "run 1: 4 alerts newest first, with severity and modules: %s",
	    g.text);
	ok(g.n == 4 && g.step[0] == -1 && g.step[3] == 100 && g.id[3] == first,
	    "steps and ids read back (none: -1)");
	memset(&g, 0, sizeof g);
	ok(store_alerts(s, r1, first, 2, alerts_cb, &g, &eb) == SPD_OK &&
	    g.n == 2 && g.id[0] > g.id[1] && g.id[1] > first,
	    "since the first, limit 2: the 2 newest");
	memset(&g, 0, sizeof g);
	ok(store_alerts(s, 0, 0, 100, alerts_cb, &g, &eb) == SPD_OK && g.n == 5,
	    "every run: 5");
	ok(store_alert_counts(s, alert_counts_cb, buf, &eb) == SPD_OK &&
	    strcmp(buf, "alerts1:churn:2;alerts1:nonfinite:1;"
	    "alerts1:snr_jump:1;alerts2:nonfinite:1;") == 0,
	    "counts by run and kind: %s", buf);

	/* Arrivals and the stalled state. */
	ok(store_run_arrivals(s, r2, wall, &n, &last, &eb) == SPD_OK &&
	    n == 0 && last == -1, "no checkpoints: no arrivals");
	for (int i = 1; i <= 12; i++) {
		char	p[64];
		int64_t	c;

		snprintf(p, sizeof p, "/ckpt/al2/checkpoint-%d", i * 10);
		store_ckpt_ensure(s, r2, p, i * 10, 1e9 + i, i == 12 ?
		    CK_INCOMPLETE : CK_DONE, &c, NULL, &eb);
		if (i == 12)
			store_ckpt_set_incomplete(s, c, "writing", 2e9, NULL,
			    &eb);
	}
	ok(store_run_arrivals(s, r2, wall, &n, &last, &eb) == SPD_OK &&
	    n == ALERT_STALL_N && last == 110 && wall[0] == 1e9 + 11 &&
	    wall[9] == 1e9 + 2, "the 10 last whole ones, highest step first "
	    "(the incomplete one left out): last %lld", last);
	ok(store_run_stalled(s, r2, &stalled, &eb) == SPD_OK && !stalled,
	    "not stalled without an alert");
	a.kind = ALERT_STALLED;
	ok(store_alert_add(s, r2, 100, &a, &id, NULL, &eb) == SPD_OK &&
	    store_run_stalled(s, r2, &stalled, &eb) == SPD_OK && !stalled,
	    "a stall alert at an older step: not stalled now");
	ok(store_alert_add(s, r2, 110, &a, &id, NULL, &eb) == SPD_OK &&
	    store_run_stalled(s, r2, &stalled, &eb) == SPD_OK && stalled,
	    "at the latest arrival: stalled");
	store_ckpt_ensure(s, r2, "/ckpt/al2/checkpoint-130", 130, 1e9 + 13,
	    CK_PENDING, &id, NULL, &eb);
	ok(store_run_stalled(s, r2, &stalled, &eb) == SPD_OK && !stalled,
	    "a new checkpoint arrives: not stalled");

	/* The stored selections in step order (those of test_versions). */
	ok(store_run_find(s, "versions", &r1, &eb) == SPD_OK, "versions run");
	buf[0] = '\0';
	ok(store_selection_steps(s, r1, 25, true, INT64_MAX, 100, sel_steps_cb,
	    buf, &eb) == SPD_OK && strcmp(buf, "100:a,b;200:a,b;250:other;"
	    "300:a,c;400:a,c;500:z;") == 0, "selections by step: %s", buf);
	buf[0] = '\0';
	ok(store_selection_steps(s, r1, 25, true, 399, 2, sel_steps_cb, buf,
	    &eb) == SPD_OK && strcmp(buf, "250:other;300:a,c;") == 0,
	    "the last 2 up to step 399, in step order: %s", buf);
	{
		struct selection	*sel = NULL;
		char			*mods = NULL;
		int64_t			 c300 = 0;

		store_ckpt_ensure(s, r1, "/ckpt/v/checkpoint-300", 300, 0,
		    CK_DONE, &c300, NULL, &eb);
		ok(store_selection_at(s, c300, 25, true, &sel, &eb) == SPD_OK &&
		    (mods = selection_modules(sel)) != NULL &&
		    strcmp(mods, "a\nc") == 0, "the stored selection of step "
		    "300 at 25%%");
		free(mods);
		selection_free(sel);
		sel = NULL;
		ok(store_selection_at(s, c300, 77, true, &sel, &eb) ==
		    SPD_ENOTFOUND && sel == NULL, "none stored at 77%%: "
		    "ENOTFOUND");
	}
}

int
main(void)
{
	struct store	*s;
	char		 db[512];
	int64_t		 run = 0;

	scratch_make();
	path_in(db, sizeof db, "spectrumd.db");
	test_open(db);
	s = must_open(db, STORE_RW);
	test_runs(s, &run);
	test_roundtrip(s, run, db);
	test_versions(s);
	test_sync(s);
	test_sync_sticky(s);
	test_history(s);
	test_atomic(s, run);
	test_reset(s, run);
	test_incomplete(s, run);
	test_reuse(s, run);
	test_reuse_old(s, run);
	test_timing(s);
	test_train(s);
	test_alerts_store(s);
	store_close(s);
	ok(header_u32(db, 60) == STORE_SCHEMA_VERSION, "closed cleanly");
	test_gone();
	scratch_remove();
	return tap_done();
}
