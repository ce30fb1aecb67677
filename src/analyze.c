/*
 * analyze.c: one checkpoint → one report. The tensors to analyse are listed
 * first (jobs); workers, each owning a compute backend, take jobs in order,
 * solve them and write the result into the job's slot, so the report keeps
 * checkpoint order whatever the finishing order.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spectrumd/analyze.h"
#include "spectrumd/budget.h"
#include "spectrumd/fingerprint.h"
#include "spectrumd/heavytail.h"
#include "spectrumd/model.h"
#include "spectrumd/names.h"
#include "spectrumd/snr.h"
#include "spectrumd/svd.h"

#define ANALYZE_MAX_WORKERS 16

struct run_state;

struct analyzer {
	struct analyze_opts	 o;
	struct svd		*svd[ANALYZE_MAX_WORKERS];
	unsigned		 nworkers;
	analyze_reuse_fn	 reuse;		/* NULL: reuse off */
	void			*reuse_arg;
	struct run_state	*cur;		/* the analysis in progress */
};

/* One matrix to solve: a 2-D tensor, a 1-D one as 1×d, or a 3-D slice. */
struct job {
	const struct model_tensor	*mt;
	struct svd_matrix		 mat;
	char				*name;		/* as reported */
	char				*skip;		/* why not analysed */
	uint64_t			 bytes;
};

/* What the workers share while one checkpoint is analysed. */
struct run_state {
	struct analyzer		*a;
	const struct model	*m;
	struct job		*jobs;
	struct mat_result	*res;		/* one slot per job */
	size_t			 njobs;
	size_t			 next, done, reused;
	uint64_t		 bytes_done, bytes_total, hashed;
	double			 hash_seconds;
	enum spd_err		 fatal;		/* first fatal error */
	struct spd_errbuf	 fatal_eb;
	pthread_mutex_t		 lock;
	struct budget		 inflight;	/* max_inflight_bytes */
};

/* Fills o with the defaults documented in analyze.h. */
void
analyze_opts_init(struct analyze_opts *o)
{
	memset(o, 0, sizeof *o);
	o->backend = "auto";
	o->keep_spectra = true;
	o->max_inflight_bytes = (uint64_t)1 << 30;
}

/* Returns the number of online cores, at least 1. */
static unsigned
ncores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (unsigned)n;
}

/*
 * Workers per CUDA device: two by default, so one uploads and forms its
 * Gram while the other's eigen-solve runs. SPECTRUMD_CUDA_WORKERS (1-4)
 * overrides it, for measurements.
 */
static unsigned
cuda_workers_per_device(void)
{
	const char	*e = getenv("SPECTRUMD_CUDA_WORKERS");
	char		*end;
	long		 v;

	if (e == NULL)
		return 2;
	v = strtol(e, &end, 10);
	return *end == '\0' && v >= 1 && v <= 4 ? (unsigned)v : 2;
}

/*
 * Parses the device list s ("0,2"; NULL or "" = every visible device) into
 * dev[0..*n). Returns SPD_OK, or SPD_EINVAL when s is not distinct
 * comma-separated ordinals or lists more than max.
 */
static enum spd_err
parse_devices(const char *s, int *dev, unsigned max, unsigned *n,
    struct spd_errbuf *eb)
{
	const char	*p = s;
	char		*end;
	unsigned long	 v;
	unsigned	 i;

	*n = 0;
	if (s == NULL || *s == '\0')
		return SPD_OK;
	for (;;) {
		if (*p < '0' || *p > '9')
			break;
		v = strtoul(p, &end, 10);
		if (v > INT_MAX || *n == max)
			break;
		for (i = 0; i < *n && dev[i] != (int)v; i++)
			;
		if (i < *n)
			break;
		dev[(*n)++] = (int)v;
		if (*end == '\0')
			return SPD_OK;
		if (*end != ',')
			break;
		p = end + 1;
	}
	return spd_fail(eb, SPD_EINVAL, "devices \"%s\": want distinct CUDA "
	    "device numbers, comma-separated, at most %u", s, max);
}

/*
 * Opens one backend for the first worker and decides the worker count: two
 * per CUDA device (o->devices, or every visible one); on the CPU one worker
 * whose BLAS uses every core (one worker with 2 BLAS threads beat two
 * 1-thread workers, DESIGN §6). A listed device that cannot be opened is
 * an error, not fewer workers.
 */
enum spd_err
analyzer_new(const struct analyze_opts *o, struct analyzer **out,
    struct spd_errbuf *eb)
{
	struct analyzer	*a;
	struct svd_opts	 so;
	enum spd_err	 rc;
	int		 dev[ANALYZE_MAX_WORKERS];
	unsigned	 i, ndev, want = 1, per = 1;

	rc = parse_devices(o->devices, dev, ANALYZE_MAX_WORKERS, &ndev, eb);
	if (rc != SPD_OK)
		return rc;
	a = calloc(1, sizeof *a);
	if (a == NULL)
		return spd_fail(eb, SPD_ENOMEM, "analyzer: out of memory");
	a->o = *o;
	memset(&so, 0, sizeof so);
	so.backend = o->backend;
	so.threads = o->threads != 0 ? o->threads : ncores();
	so.device = ndev > 0 ? dev[0] : 0;
	rc = svd_open(&so, &a->svd[0], eb);
	if (rc != SPD_OK) {
		free(a);
		return rc;
	}
	a->nworkers = 1;
	if (strcmp(svd_name(a->svd[0]), "cuda") == 0) {
		if (ndev == 0)
			for (; ndev < ANALYZE_MAX_WORKERS &&
			    ndev < (unsigned)svd_cuda_devices(); ndev++)
				dev[ndev] = (int)ndev;
		per = cuda_workers_per_device();
		want = ndev * per;
		if (want > ANALYZE_MAX_WORKERS)
			want = ANALYZE_MAX_WORKERS;
	}
	for (i = 1; i < want; i++) {
		so.device = dev[i / per];
		rc = svd_open(&so, &a->svd[i], eb);
		if (rc != SPD_OK) {
			analyzer_free(a);
			return rc;
		}
		a->nworkers++;
	}
	*out = a;
	return SPD_OK;
}

/* Closes every backend. */
void
analyzer_free(struct analyzer *a)
{
	unsigned i;

	if (a == NULL)
		return;
	for (i = 0; i < a->nworkers; i++)
		svd_close(a->svd[i]);
	free(a);
}

/* Returns the backend name ("cpu", "cuda"). */
const char *
analyzer_backend(const struct analyzer *a)
{
	return svd_name(a->svd[0]);
}

/* Sets the progress callback and cancel flag. */
void
analyzer_set_hooks(struct analyzer *a,
    void (*progress)(void *, size_t, size_t, uint64_t, uint64_t), void *arg,
    atomic_int *cancel)
{
	a->o.progress = progress;
	a->o.progress_arg = arg;
	a->o.cancel = cancel;
}

/* Sets or clears the reuse lookup. */
void
analyzer_set_reuse(struct analyzer *a, analyze_reuse_fn fn, void *arg)
{
	a->reuse = fn;
	a->reuse_arg = arg;
}

/* Matrices reused so far in the running analysis (0 when none runs). */
size_t
analyzer_reused(const struct analyzer *a)
{
	return a->cur != NULL ? a->cur->reused : 0;
}

/* Returns a newly allocated copy of s, or NULL. */
static char *
dupstr(const char *s)
{
	return s == NULL ? NULL : strdup(s);
}

/* Fills the name fields of r for the matrix called name. */
static enum spd_err
fill_names(const struct analyzer *a, const char *name, struct mat_result *r)
{
	struct name_info ni;

	if (names_parse(name, a->o.group_experts, &ni) != SPD_OK)
		return SPD_ENOMEM;
	r->name = dupstr(name);
	r->module = ni.module;
	r->type = ni.type;
	r->layer = ni.layer;
	r->embedding = ni.embedding;
	ni.module = ni.type = NULL;
	names_cleanup(&ni);
	return r->name == NULL ? SPD_ENOMEM : SPD_OK;
}

/* Appends one job to the growing array *jobs. */
static enum spd_err
push_job(struct job **jobs, size_t *n, size_t *cap, const struct job *j)
{
	struct job *v;

	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		v = realloc(*jobs, *cap * sizeof *v);
		if (v == NULL)
			return SPD_ENOMEM;
		*jobs = v;
	}
	(*jobs)[(*n)++] = *j;
	return SPD_OK;
}

/* Appends a job that only records why tensor mt is skipped. */
static enum spd_err
push_skip(struct job **jobs, size_t *n, size_t *cap,
    const struct model_tensor *mt, char *why)
{
	struct job	j;
	enum spd_err	rc;

	memset(&j, 0, sizeof j);
	j.mt = mt;
	j.mat.dtype = mt->t->dtype;
	j.skip = why;
	j.name = dupstr(mt->t->name);
	rc = why != NULL && j.name != NULL ? push_job(jobs, n, cap, &j) :
	    SPD_ENOMEM;
	if (rc != SPD_OK) {
		free(j.name);
		free(why);
	}
	return rc;
}

/* Frees the jobs' strings and the array. */
static void
jobs_free(struct job *jobs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(jobs[i].name);
		free(jobs[i].skip);
	}
	free(jobs);
}

/*
 * Lists the matrices of m as jobs in checkpoint order, with the tensors
 * that are skipped with a reason (≥3-D without split_3d, dtypes we cannot
 * convert). 1-D weights are silently ignored unless include_1d.
 */
static enum spd_err
plan_jobs(const struct analyzer *a, const struct model *m,
    struct job **out, size_t *nout)
{
	struct job	*jobs = NULL, j;
	size_t		 i, n = 0, cap = 0;
	uint64_t	 e, esz;
	char		 shp[96];
	enum spd_err	 rc = SPD_OK;

	for (i = 0; i < model_count(m) && rc == SPD_OK; i++) {
		const struct model_tensor *mt = model_tensor(m, i);
		const struct st_tensor *t = mt->t;

		if (!spd_ends_with(t->name, ".weight") || t->ndim == 0)
			continue;
		if (t->ndim == 1 && !a->o.include_1d)
			continue;
		safetensors_shape_str(t, shp, sizeof shp);
		if (!dtype_is_analyzable(t->dtype)) {
			rc = push_skip(&jobs, &n, &cap, mt, spd_asprintf("dtype %s %s: "
			    "not a floating-point type spectrumd converts",
			    dtype_name(t->dtype), shp));
			continue;
		}
		if (t->end == t->begin) {
			rc = push_skip(&jobs, &n, &cap, mt,
			    spd_asprintf("empty tensor %s", shp));
			continue;
		}
		if (t->ndim > 3 || (t->ndim == 3 && !a->o.split_3d)) {
			rc = push_skip(&jobs, &n, &cap, mt, spd_asprintf("%u-D tensor %s: "
			    "%s", t->ndim, shp, t->ndim == 3 ?
			    "set split_3d to analyse each slice" :
			    "only 2-D weights are analysed"));
			continue;
		}
		memset(&j, 0, sizeof j);
		j.mt = mt;
		j.mat.dtype = t->dtype;
		j.mat.data = mt->data;
		j.bytes = t->end - t->begin;
		if (t->ndim == 1) {
			j.mat.rows = 1;
			j.mat.cols = (size_t)t->shape[0];
		} else {
			j.mat.rows = (size_t)t->shape[t->ndim - 2];
			j.mat.cols = (size_t)t->shape[t->ndim - 1];
		}
		if (t->ndim < 3) {
			j.name = dupstr(t->name);
			rc = j.name ? push_job(&jobs, &n, &cap, &j) : SPD_ENOMEM;
			if (rc != SPD_OK)
				free(j.name);
			continue;
		}
		/* split_3d: slice e of [E,r,c] is "<name>.<e>". */
		esz = j.bytes / t->shape[0];
		j.bytes = esz;
		for (e = 0; e < t->shape[0] && rc == SPD_OK; e++) {
			j.mat.data = (const char *)mt->data + e * esz;
			j.name = spd_asprintf("%.*s.%" PRIu64 ".weight",
			    (int)(strlen(t->name) - strlen(".weight")),
			    t->name, e);
			rc = j.name ? push_job(&jobs, &n, &cap, &j) : SPD_ENOMEM;
			if (rc != SPD_OK)
				free(j.name);
		}
	}
	if (rc != SPD_OK) {
		jobs_free(jobs, n);
		return rc;
	}
	*out = jobs;
	*nout = n;
	return SPD_OK;
}

/*
 * Fingerprints job j (reading its bytes once, before the conversion reads
 * them again from the page cache) and asks the reuse callback for a
 * stored result. Returns true when r was filled from one.
 */
static bool
reuse(struct run_state *st, struct svd *s, const struct job *j,
    struct mat_result *r)
{
	double	t0 = spd_now();
	bool	hit;

	fingerprint_matrix(j->mat.dtype, j->mat.rows, j->mat.cols,
	    j->mat.data, (size_t)j->bytes, r->fp);
	r->has_fp = true;
	pthread_mutex_lock(&st->lock);
	st->hashed += j->bytes;
	st->hash_seconds += spd_now() - t0;
	hit = st->a->reuse(st->a->reuse_arg, svd_method(s),
	    st->a->o.keep_spectra, r);
	pthread_mutex_unlock(&st->lock);
	if (!hit)
		return false;
	r->status = MAT_OK;
	/* A result stored before the heavy-tail metrics: fit its spectrum. */
	if (!r->has_ht && r->spectrum != NULL)
		r->has_ht = heavytail_compute(r->spectrum, r->k, &r->ht) ==
		    SPD_OK;
	if (!st->a->o.keep_spectra) {
		free(r->spectrum);
		r->spectrum = NULL;
		r->k = 0;
	}
	return true;
}

/* Solves job j with backend s and fills its result slot r. */
static enum spd_err
solve(struct run_state *st, struct svd *s, const struct job *j,
    struct mat_result *r)
{
	struct spd_errbuf eb;
	size_t		  k = j->mat.rows < j->mat.cols ? j->mat.rows :
			    j->mat.cols;
	float		 *sv;
	enum spd_err	  rc;
	double		  t0 = spd_now();

	if ((rc = fill_names(st->a, j->name, r)) != SPD_OK)
		return rc;
	if (j->skip != NULL) {
		r->status = MAT_SKIPPED;
		r->dtype = j->mat.dtype;
		r->error = dupstr(j->skip);
		return r->error != NULL ? SPD_OK : SPD_ENOMEM;
	}
	r->rows = j->mat.rows;
	r->cols = j->mat.cols;
	r->dtype = j->mat.dtype;
	if (st->a->reuse != NULL && reuse(st, s, j, r)) {
		r->seconds = spd_now() - t0;
		return SPD_OK;
	}
	/* r owns sv from here, so a jump out of svd_values() leaks nothing. */
	sv = r->spectrum = malloc(k * sizeof *sv);
	if (sv == NULL) {
		r->status = MAT_ERROR;
		r->error = spd_asprintf("out of memory for %zu singular values", k);
		return SPD_OK;
	}
	eb.msg[0] = '\0';
	rc = svd_values(s, &j->mat, sv, &eb);
	if (rc == SPD_OK)
		rc = snr_compute(sv, k, j->mat.rows, j->mat.cols, &r->m);
	if (rc == SPD_OK && (rc = heavytail_compute(sv, k, &r->ht)) != SPD_OK)
		spd_fail(&eb, rc, "heavy-tail fit of %zu values", k);
	r->has_ht = rc == SPD_OK;
	r->seconds = spd_now() - t0;
	if (rc == SPD_OK) {
		r->status = MAT_OK;
		r->k = k;
	} else if (rc == SPD_ENONFINITE) {
		r->status = MAT_NONFINITE;
		r->error = dupstr("NaN or Inf in the weights");
	} else {
		r->status = MAT_ERROR;
		r->error = spd_asprintf("%s: %s", spd_strerror(rc), eb.msg);
	}
	if (rc != SPD_OK || !st->a->o.keep_spectra) {
		free(r->spectrum);
		r->spectrum = NULL;
		r->k = 0;
	}
	return SPD_OK;
}

/*
 * A weight file truncated in place while it is mapped (a writer reopening
 * it with "wb") turns reads past the new end into SIGBUS. Reads of mapped
 * tensor data happen only in the analysing threads (the backends convert
 * into their own buffers), so the handler jumps back to that thread's
 * solve() and the checkpoint fails with a message instead of the process
 * dying. A SIGBUS anywhere else keeps its default action.
 */
static __thread sigjmp_buf	*bus_jmp;
static pthread_once_t		 bus_once = PTHREAD_ONCE_INIT;

/* SIGBUS handler: back to the analysing thread, or the default action. */
static void
on_sigbus(int sig)
{
	if (bus_jmp != NULL)
		siglongjmp(*bus_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Installs on_sigbus once per process. */
static void
bus_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

/*
 * solve() with the SIGBUS guard: a fault while reading the mapping fails
 * the matrix with SPD_EIO (which stops the checkpoint).
 */
static enum spd_err
solve_guarded(struct run_state *st, struct svd *s, const struct job *j,
    struct mat_result *r)
{
	sigjmp_buf		jb;
	volatile enum spd_err	rc = SPD_EIO;

	pthread_once(&bus_once, bus_install);
	if (sigsetjmp(jb, 1) == 0) {
		bus_jmp = &jb;
		rc = solve(st, s, j, r);
	}
	bus_jmp = NULL;
	return rc;
}

/*
 * Worker loop: takes the next job until none is left or a stop. A job
 * whose weights would overflow max_inflight_bytes waits, holding st->lock
 * so that no later job passes it, until the workers in flight give their
 * bytes back (budget_give takes no st->lock, so they can).
 */
static void *
worker(void *arg)
{
	struct run_state	*st = ((void **)arg)[0];
	struct svd		*s = ((void **)arg)[1];
	const struct analyze_opts *o = &st->a->o;
	size_t			 i;
	enum spd_err		 rc;

	for (;;) {
		pthread_mutex_lock(&st->lock);
		if (st->fatal != SPD_OK || st->next == st->njobs ||
		    (o->cancel != NULL && atomic_load(o->cancel))) {
			pthread_mutex_unlock(&st->lock);
			break;
		}
		i = st->next;
		/* In job order: the next job waits for room, so do the rest. */
		budget_take(&st->inflight, st->jobs[i].bytes);
		st->next++;
		if (st->next < st->njobs)
			safetensors_prefetch(st->jobs[st->next].mt->file,
			    st->jobs[st->next].mt->index);
		pthread_mutex_unlock(&st->lock);

		rc = solve_guarded(st, s, &st->jobs[i], &st->res[i]);
		if (rc != SPD_EIO)
			safetensors_release(st->jobs[i].mt->file,
			    st->jobs[i].mt->index);
		budget_give(&st->inflight, st->jobs[i].bytes);

		pthread_mutex_lock(&st->lock);
		if (rc != SPD_OK && st->fatal == SPD_OK) {
			st->fatal = rc;
			if (rc == SPD_EIO)
				spd_fail(&st->fatal_eb, rc, "%s: %s changed "
				    "while it was read (truncated or rewritten "
				    "in place)", st->jobs[i].name,
				    safetensors_path(st->jobs[i].mt->file));
			else
				spd_fail(&st->fatal_eb, rc, "out of memory");
		}
		st->done++;
		if (st->res[i].from_ckpt != 0)
			st->reused++;
		st->bytes_done += st->jobs[i].bytes;
		if (o->progress != NULL)
			o->progress(o->progress_arg, st->done, st->njobs,
			    st->bytes_done, st->bytes_total);
		pthread_mutex_unlock(&st->lock);
	}
	return NULL;
}

/* Runs the workers over st->jobs; the calling thread is worker 0. */
static void
run_workers(struct run_state *st)
{
	pthread_t	 tid[ANALYZE_MAX_WORKERS];
	void		*args[ANALYZE_MAX_WORKERS][2];
	unsigned	 i, started = 0;

	for (i = 0; i < st->a->nworkers; i++) {
		args[i][0] = st;
		args[i][1] = st->a->svd[i];
	}
	for (i = 1; i < st->a->nworkers; i++) {
		if (pthread_create(&tid[i], NULL, worker, args[i]) != 0)
			break;
		started = i;
	}
	worker(args[0]);
	for (i = 1; i <= started; i++)
		pthread_join(tid[i], NULL);
}

/* Analyses the checkpoint at path into a new report. */
enum spd_err
analyzer_run(struct analyzer *a, const char *path, struct report **out,
    struct spd_errbuf *eb)
{
	struct run_state st;
	struct model	*m = NULL;
	struct report	*rep = NULL;
	enum spd_err	 rc;
	size_t		 i;
	double		 t0 = spd_now();

	memset(&st, 0, sizeof st);
	st.a = a;
	pthread_mutex_init(&st.lock, NULL);
	budget_init(&st.inflight, a->o.max_inflight_bytes != 0 ?
	    a->o.max_inflight_bytes : (uint64_t)1 << 30);
	if ((rc = model_open(path, &m, eb)) != SPD_OK)
		goto out;
	rc = SPD_ENOMEM;
	rep = report_new(path, analyzer_backend(a));
	if (rep == NULL || plan_jobs(a, m, &st.jobs, &st.njobs) != SPD_OK)
		goto nomem;
	st.res = calloc(st.njobs ? st.njobs : 1, sizeof *st.res);
	if (st.res == NULL)
		goto nomem;
	for (i = 0; i < st.njobs; i++)
		st.bytes_total += st.jobs[i].bytes;
	st.m = m;
	rep->method = strdup(svd_method(a->svd[0]));
	if (rep->method == NULL)
		goto nomem;
	a->cur = &st;
	run_workers(&st);
	a->cur = NULL;
	if (st.fatal != SPD_OK) {
		rc = spd_fail(eb, st.fatal, "%s", st.fatal_eb.msg);
		goto out;
	}
	if (a->o.cancel != NULL && atomic_load(a->o.cancel) && st.done < st.njobs) {
		rc = spd_fail(eb, SPD_ECANCELED, "analysis of %s stopped "
		    "after %zu of %zu matrices", path, st.done, st.njobs);
		goto out;
	}
	for (i = 0; i < st.njobs; i++)
		if (report_add(rep, &st.res[i]) != SPD_OK)
			goto nomem;
	rep->bytes = st.bytes_total;
	rep->reused = st.reused;
	rep->hashed = st.hashed;
	rep->hash_seconds = st.hash_seconds;
	rep->seconds = spd_now() - t0;
	*out = rep;
	rep = NULL;
	rc = SPD_OK;
	goto out;
nomem:
	rc = spd_fail(eb, SPD_ENOMEM, "out of memory analysing %s", path);
out:
	for (i = 0; st.res != NULL && i < st.njobs; i++)
		mat_result_cleanup(&st.res[i]);
	jobs_free(st.jobs, st.njobs);
	free(st.res);
	report_free(rep);
	model_close(m);
	budget_destroy(&st.inflight);
	pthread_mutex_destroy(&st.lock);
	return rc;
}
