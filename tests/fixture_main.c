/*
 * fixture_main.c: spectrumd-fixture, the command-line face of fixture.c.
 * `checkpoint DIR` writes one synthetic Hugging Face Trainer checkpoint;
 * `planted DIR` writes matrices with planted singular values (fixture.h);
 * `run DIR` simulates a training run that saves checkpoint-<step>/ every few
 * seconds and rotates them like save_total_limit. Exit 0, 1 on a failed
 * write, 2 on bad arguments.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spectrumd/common.h"
#include "fixture.h"

/* What `run` needs on top of the model options. */
struct run_opts {
	double		every;		/* seconds between checkpoints */
	uint64_t	count;		/* checkpoints to write */
	uint64_t	limit;		/* save_total_limit; 0 = keep all */
	uint64_t	start, step_every;
	bool		start_set, drift_set, via_tmp, quiet;
};

enum {
	OPT_LAYERS = 256, OPT_HIDDEN, OPT_INTER, OPT_KV, OPT_VOCAB, OPT_DTYPE,
	OPT_SHARDS, OPT_SIGNAL, OPT_RANK, OPT_SEED, OPT_STEP, OPT_DRIFT,
	OPT_NO_TS, OPT_NO_CONFIG, OPT_TIED, OPT_NAN, OPT_NO_1D, OPT_ONLY,
	OPT_META_STEP, OPT_EVERY, OPT_COUNT, OPT_LIMIT, OPT_START,
	OPT_STEP_EVERY, OPT_VIA_TMP, OPT_FROZEN
};

static const struct option long_opts[] = {
	{ "layers", required_argument, NULL, OPT_LAYERS },
	{ "hidden", required_argument, NULL, OPT_HIDDEN },
	{ "intermediate", required_argument, NULL, OPT_INTER },
	{ "kv-dim", required_argument, NULL, OPT_KV },
	{ "vocab", required_argument, NULL, OPT_VOCAB },
	{ "dtype", required_argument, NULL, OPT_DTYPE },
	{ "shards", required_argument, NULL, OPT_SHARDS },
	{ "signal", required_argument, NULL, OPT_SIGNAL },
	{ "rank", required_argument, NULL, OPT_RANK },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "step", required_argument, NULL, OPT_STEP },
	{ "drift", required_argument, NULL, OPT_DRIFT },
	{ "frozen-percent", required_argument, NULL, OPT_FROZEN },
	{ "no-trainer-state", no_argument, NULL, OPT_NO_TS },
	{ "no-config", no_argument, NULL, OPT_NO_CONFIG },
	{ "tied", no_argument, NULL, OPT_TIED },
	{ "nan-tensor", required_argument, NULL, OPT_NAN },
	{ "no-1d", no_argument, NULL, OPT_NO_1D },
	{ "only", required_argument, NULL, OPT_ONLY },
	{ "meta-step", no_argument, NULL, OPT_META_STEP },
	{ "every", required_argument, NULL, OPT_EVERY },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "save-total-limit", required_argument, NULL, OPT_LIMIT },
	{ "start-step", required_argument, NULL, OPT_START },
	{ "step-every", required_argument, NULL, OPT_STEP_EVERY },
	{ "via-tmp", no_argument, NULL, OPT_VIA_TMP },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static const char usage_text[] =
"usage: spectrumd-fixture checkpoint DIR [model options]\n"
"       spectrumd-fixture planted DIR --spec CLASS:ROWSxCOLS [--spec ...]\n"
"                         [--dtype DT] [--seed S] [--alpha A] [-q]\n"
"       spectrumd-fixture run DIR --every SECONDS --count N [run options]\n"
"                         [model options]\n"
"\n"
"Writes synthetic Llama checkpoints (noise + a planted low-rank signal) in\n"
"the Hugging Face Trainer layout: config.json, model.safetensors or shards +\n"
"model.safetensors.index.json, then trainer_state.json last.\n"
"\n"
"model options (defaults in brackets):\n"
"  --layers N          decoder layers [2]\n"
"  --hidden H          hidden size [64]\n"
"  --intermediate I    MLP size [172]\n"
"  --kv-dim K          rows of k_proj/v_proj (GQA) [hidden]\n"
"  --vocab V           vocabulary [256]\n"
"  --dtype DT          F32 F16 BF16 F64 F8_E4M3 F8_E5M2 [BF16]\n"
"  --shards K          K shards + index (0/1: model.safetensors) [1]\n"
"  --signal X          planted strength scale, 0 = noise only [4]\n"
"  --rank R            rank of the planted component [4]\n"
"  --seed S            [1]\n"
"  --step N            global_step of trainer_state.json [0]\n"
"  --drift X           strength phase per step, radians; non-zero also\n"
"                      redraws the noise each step [0; run: 0.005]\n"
"  --frozen-percent P  per layer type, P % of the layers stay byte-identical\n"
"                      from step to step (a Spectrum run); 100: all [0]\n"
"  --no-trainer-state  leave out trainer_state.json (incomplete checkpoint)\n"
"  --no-config         leave out config.json\n"
"  --tied              tied embeddings: no lm_head.weight\n"
"  --nan-tensor NAME   fill that tensor with NaN\n"
"  --no-1d             leave out the norm weights\n"
"  --only KINDS        comma list: q_proj,down_proj,self_attn,mlp,lm_head,...\n"
"  --meta-step         put \"step\" in each file's __metadata__\n"
"  -q, --quiet         print nothing on success\n"
"\n"
"run options:\n"
"  --every SECONDS     time between checkpoints (may be 0)\n"
"  --count N           checkpoints to write\n"
"  --save-total-limit K  keep the newest K checkpoint-* dirs [0: all]\n"
"  --start-step S      step of the first checkpoint [step-every]\n"
"  --step-every N      steps between checkpoints [100]\n"
"  --via-tmp           write tmp-checkpoint-<step>/ and rename it into place\n"
"\n"
"planted: DIR/model.safetensors holds model.layers.<i>.<CLASS>.weight for\n"
"the i-th --spec, W = U diag(s) V^T with random orthogonal U, V and the\n"
"planted values s of CLASS (singular values change by the dtype rounding):\n"
"  embed    tall embedding-like, s1/s_min ~ 16, SNR ~ 25\n"
"  heavy    power-law ESD, density ~ lambda^-A (--alpha, 2..4) [3]\n"
"  lowrank  k/16 spikes over a flat bulk\n"
"  null     a third of the values exactly zero\n"
"  cluster  k/8 values within 1e-4..1e-2 (relative) of tau\n";

/* Prints an argument error and the usage hint; returns exit status 2. */
static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "spectrumd-fixture: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(try --help)\n");
	return 2;
}

/* Parses a decimal integer in [0, max]. */
static bool
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char			*end;
	unsigned long long	 v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

/* Parses a finite number ≥ 0. */
static bool
parse_nonneg(const char *s, double *out)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0)
		return false;
	*out = v;
	return true;
}

/* Applies one option to o / r; returns false when its argument is bad. */
static bool
apply_opt(int c, const char *arg, struct fixture_opts *o, struct run_opts *r)
{
	uint64_t	v = 0;
	bool		good = true;

	switch (c) {
	case OPT_LAYERS:
		good = parse_u64(arg, 100000, &v);
		o->layers = (unsigned)v;
		break;
	case OPT_HIDDEN:
	case OPT_INTER:
	case OPT_KV:
	case OPT_VOCAB:
		good = parse_u64(arg, 1u << 30, &v) && v > 0;
		*(c == OPT_HIDDEN ? &o->hidden : c == OPT_INTER ?
		    &o->intermediate : c == OPT_KV ? &o->kv_dim : &o->vocab) =
		    (size_t)v;
		break;
	case OPT_DTYPE:
		good = fixture_dtype_parse(arg, &o->dtype) &&
		    fixture_dtype_encodable(o->dtype);
		break;
	case OPT_SHARDS:
		good = parse_u64(arg, 99999, &v);
		o->shards = (unsigned)v;
		break;
	case OPT_RANK:
		good = parse_u64(arg, 1024, &v);
		o->rank = (unsigned)v;
		break;
	case OPT_SEED:
		good = parse_u64(arg, UINT64_MAX, &o->seed);
		break;
	case OPT_STEP:
		good = parse_u64(arg, UINT64_MAX / 2, &o->step);
		break;
	case OPT_SIGNAL:
		good = parse_nonneg(arg, &o->signal);
		break;
	case OPT_DRIFT:
		good = parse_nonneg(arg, &o->drift);
		r->drift_set = true;
		break;
	case OPT_FROZEN:
		good = parse_u64(arg, 100, &v);
		o->frozen_percent = (unsigned)v;
		break;
	case OPT_NO_TS:
		o->trainer_state = false;
		break;
	case OPT_NO_CONFIG:
		o->config = false;
		break;
	case OPT_TIED:
		o->tied_embeddings = true;
		break;
	case OPT_NAN:
		o->nan_tensor = arg;
		break;
	case OPT_NO_1D:
		o->with_1d = false;
		break;
	case OPT_ONLY:
		o->only = arg;
		break;
	case OPT_META_STEP:
		o->meta_step = true;
		break;
	case OPT_EVERY:
		good = parse_nonneg(arg, &r->every) && r->every <= 86400;
		break;
	case OPT_COUNT:
		good = parse_u64(arg, 1000000, &r->count);
		break;
	case OPT_LIMIT:
		good = parse_u64(arg, 1000000, &r->limit);
		break;
	case OPT_START:
		good = parse_u64(arg, UINT64_MAX / 4, &r->start);
		r->start_set = true;
		break;
	case OPT_STEP_EVERY:
		good = parse_u64(arg, 1u << 30, &r->step_every) &&
		    r->step_every > 0;
		break;
	case OPT_VIA_TMP:
		r->via_tmp = true;
		break;
	case 'q':
		r->quiet = true;
		break;
	}
	return good;
}

/* Writes one checkpoint into dir and prints its line. */
static int
write_one(const char *dir, const struct fixture_opts *o, bool quiet)
{
	struct spd_errbuf	 eb = { "" };
	struct fixture_entry	*e = NULL;
	size_t			 n = 0;
	uint64_t		 bytes;
	double			 t0 = spd_now(), dt;
	enum spd_err		 rc;

	if ((rc = fixture_plan(o, &e, &n, &eb)) == SPD_OK)
		rc = fixture_write_checkpoint(dir, o, &eb);
	if (rc != SPD_OK) {
		fprintf(stderr, "spectrumd-fixture: %s: %s\n", dir, eb.msg);
		free(e);
		return rc == SPD_EINVAL ? 2 : 1;
	}
	dt = spd_now() - t0;
	bytes = fixture_plan_bytes(e, n, o->dtype);
	if (!quiet) {
		printf("wrote %s step=%" PRIu64 " tensors=%zu bytes=%" PRIu64
		    " seconds=%.3f MB/s=%.0f\n", dir, o->step, n, bytes, dt,
		    dt > 0 ? bytes / dt / 1e6 : 0.0);
		fflush(stdout);
	}
	free(e);
	return 0;
}

/* Returns the step of a "checkpoint-<digits>" name, or -1. */
static long long
checkpoint_step(const char *name)
{
	uint64_t v;

	if (strncmp(name, "checkpoint-", 11) != 0 ||
	    !parse_u64(name + 11, LLONG_MAX, &v))
		return -1;
	return (long long)v;
}

/* Orders steps ascending for qsort. */
static int
cmp_step(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* Deletes the oldest checkpoint-* dirs of dir beyond limit, like HF. */
static int
rotate(const char *dir, uint64_t limit, bool quiet)
{
	DIR		*d;
	struct dirent	*de;
	long long	*steps = NULL, *p;
	size_t		 n = 0, cap = 0;
	char		 path[PATH_MAX];
	int		 rc = 0;

	if (limit == 0 || (d = opendir(dir)) == NULL)
		return limit == 0 ? 0 : 1;
	while ((de = readdir(d)) != NULL) {
		if (checkpoint_step(de->d_name) < 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			if ((p = realloc(steps, cap * sizeof *p)) == NULL) {
				rc = 1;
				goto out;
			}
			steps = p;
		}
		steps[n++] = checkpoint_step(de->d_name);
	}
	if (n > 0)
		qsort(steps, n, sizeof *steps, cmp_step);
	for (size_t i = 0; n - i > limit; i++) {
		snprintf(path, sizeof path, "%s/checkpoint-%lld", dir,
		    steps[i]);
		if (fixture_rmtree(path) != 0) {
			fprintf(stderr, "spectrumd-fixture: rm %s: %s\n", path,
			    strerror(errno));
			rc = 1;
		} else if (!quiet)
			printf("deleted %s\n", path);
	}
out:
	closedir(d);
	free(steps);
	return rc;
}

/* Writes checkpoint-<step> (through tmp-checkpoint-<step> when asked). */
static int
run_one(const char *dir, const struct fixture_opts *o, const struct run_opts *r)
{
	char	path[PATH_MAX], tmp[PATH_MAX];
	int	rc;

	snprintf(path, sizeof path, "%s/checkpoint-%" PRIu64, dir, o->step);
	snprintf(tmp, sizeof tmp, "%s/tmp-checkpoint-%" PRIu64, dir, o->step);
	if (strlen(tmp) + 1 >= sizeof tmp)
		return usage_error("%s: path too long", dir);
	if (!r->via_tmp)
		return write_one(path, o, r->quiet);
	if ((rc = write_one(tmp, o, true)) != 0)
		return rc;
	if (rename(tmp, path) != 0) {
		fprintf(stderr, "spectrumd-fixture: rename %s: %s\n", tmp,
		    strerror(errno));
		return 1;
	}
	if (!r->quiet) {
		printf("renamed %s -> %s\n", tmp, path);
		fflush(stdout);
	}
	return 0;
}

/* Sleeps until monotonic time t. */
static void
sleep_until(double t)
{
	double		left = t - spd_now();
	struct timespec	ts;

	if (left <= 0)
		return;
	ts.tv_sec = (time_t)left;
	ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The `run` command: count checkpoints, every r->every seconds. */
static int
run(const char *dir, struct fixture_opts *o, const struct run_opts *r)
{
	double	t0 = spd_now();
	int	rc;

	for (uint64_t i = 0; i < r->count; i++) {
		o->step = r->start + i * r->step_every;
		if ((rc = run_one(dir, o, r)) != 0)
			return rc;
		if ((rc = rotate(dir, r->limit, r->quiet)) != 0)
			return rc;
		if (i + 1 < r->count)
			sleep_until(t0 + (double)(i + 1) * r->every);
	}
	return 0;
}

#define PLANTED_MAX	64	/* --spec options of one `planted` */

/* One --spec of `planted`. */
struct planted_spec {
	enum fixture_class	cls;
	uint64_t		rows, cols;
};

/* Parses CLASS:ROWSxCOLS. */
static bool
planted_parse(const char *arg, struct planted_spec *p)
{
	char		 name[32], *x, *end;
	const char	*colon = strchr(arg, ':');
	size_t		 len;

	if (colon == NULL || (len = (size_t)(colon - arg)) >= sizeof name)
		return false;
	memcpy(name, arg, len);
	name[len] = '\0';
	if (!fixture_class_parse(name, &p->cls))
		return false;
	errno = 0;
	p->rows = strtoull(colon + 1, &x, 10);
	if (errno != 0 || x == colon + 1 || *x != 'x' || p->rows == 0 ||
	    p->rows > 1u << 20)
		return false;
	p->cols = strtoull(x + 1, &end, 10);
	return errno == 0 && end != x + 1 && *end == '\0' && p->cols > 0 &&
	    p->cols <= 1u << 20 && p->rows * p->cols <= (uint64_t)1 << 31;
}

/* Builds the planted matrix of spec i into t (values owned by the caller). */
static enum spd_err
planted_one(const struct planted_spec *p, size_t i, uint64_t seed,
    double alpha, struct fixture_tensor *t, char *name, size_t nlen,
    struct spd_errbuf *eb)
{
	size_t	 k = p->rows < p->cols ? p->rows : p->cols;
	double	*s = malloc(k * sizeof *s);
	float	*w = malloc(p->rows * p->cols * sizeof *w);
	enum spd_err rc;

	if (s == NULL || w == NULL) {
		free(s);
		free(w);
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	}
	fixture_spectrum(p->cls, p->rows, p->cols, alpha, seed + i, s);
	rc = fixture_planted(p->rows, p->cols, s, seed * 1000003 + i, w, eb);
	free(s);
	if (rc != SPD_OK) {
		free(w);
		return rc;
	}
	snprintf(name, nlen, "model.layers.%zu.%s.weight", i,
	    fixture_class_name(p->cls));
	t->name = name;
	t->ndim = 2;
	t->shape[0] = p->rows;
	t->shape[1] = p->cols;
	t->values = w;
	return SPD_OK;
}

/* `planted DIR --spec CLASS:RxC ...`: see the usage text. */
static int
planted_main(int ac, char **av)
{
	static const struct option opts[] = {
		{ "spec", required_argument, NULL, 's' },
		{ "dtype", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 'S' },
		{ "alpha", required_argument, NULL, 'a' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 }
	};
	struct planted_spec	 sp[PLANTED_MAX];
	struct fixture_tensor	 t[PLANTED_MAX];
	char			 names[PLANTED_MAX][64], path[PATH_MAX];
	struct spd_errbuf	 eb = { "" };
	enum dtype		 dt = DT_F32;
	uint64_t		 seed = 1;
	double			 alpha = 3;
	size_t			 n = 0, i;
	bool			 quiet = false;
	int			 c, rc = 0;

	opterr = 0;
	while ((c = getopt_long(ac, av, "q", opts, NULL)) != -1) {
		if (c == 's' && n < PLANTED_MAX && planted_parse(optarg,
		    &sp[n]))
			n++;
		else if (c == 'd' && fixture_dtype_parse(optarg, &dt) &&
		    fixture_dtype_encodable(dt))
			;
		else if (c == 'S' && parse_u64(optarg, UINT64_MAX / 2, &seed))
			;
		else if (c == 'a' && parse_nonneg(optarg, &alpha) &&
		    alpha >= 1.5 && alpha <= 10)
			;
		else if (c == 'q')
			quiet = true;
		else
			return usage_error("planted: bad option or value: "
			    "'%s'", av[optind - 1]);
	}
	if (optind + 1 != ac || n == 0)
		return usage_error("planted needs one DIR and a --spec");
	if (snprintf(path, sizeof path, "%s/model.safetensors", av[optind]) >=
	    (int)sizeof path)
		return usage_error("%s: path too long", av[optind]);
	if (mkdir(av[optind], 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "spectrumd-fixture: %s: %s\n", av[optind],
		    strerror(errno));
		return 1;
	}
	memset(t, 0, sizeof t);
	for (i = 0; i < n && rc == 0; i++) {
		t[i].dtype = dt;
		if (planted_one(&sp[i], i, seed, alpha, &t[i], names[i],
		    sizeof names[i], &eb) != SPD_OK)
			rc = 1;
	}
	if (rc == 0 && fixture_write_safetensors(path, t, n, NULL, 0, &eb) !=
	    SPD_OK)
		rc = 1;
	if (rc != 0)
		fprintf(stderr, "spectrumd-fixture: %s: %s\n", path, eb.msg);
	else if (!quiet)
		printf("wrote %s tensors=%zu dtype=%s\n", path, n,
		    fixture_dtype_name(dt));
	for (i = 0; i < n; i++)
		free((void *)t[i].values);
	return rc;
}

/* Parses argv (after the command word) and runs the command. */
int
main(int argc, char **argv)
{
	struct fixture_opts	 o;
	struct run_opts		 r = { .every = -1, .step_every = 100 };
	char			**av = argv + 1;
	int			 ac = argc - 1, c, li;
	bool			 is_run;

	fixture_opts_init(&o);
	if (ac < 1)
		return usage_error("missing command (checkpoint or run)");
	if (strcmp(av[0], "--help") == 0 || strcmp(av[0], "-h") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(av[0], "planted") == 0)
		return planted_main(ac, av);
	is_run = strcmp(av[0], "run") == 0;
	if (!is_run && strcmp(av[0], "checkpoint") != 0)
		return usage_error("unknown command '%s'", av[0]);
	opterr = 0;
	while ((c = getopt_long(ac, av, "qh", long_opts, &li)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return 0;
		}
		if (c == '?' || c == ':')
			return usage_error("bad option or missing value: '%s'",
			    av[optind - 1]);
		if (!apply_opt(c, optarg, &o, &r))
			return usage_error("bad value '%s' for --%s", optarg,
			    long_opts[li].name);
	}
	if (optind + 1 != ac)
		return usage_error("%s needs exactly one DIR", av[0]);
	if (!is_run)
		return write_one(av[optind], &o, r.quiet);
	if (r.every < 0 || r.count == 0)
		return usage_error("run needs --every SECONDS and --count N");
	if (!r.start_set)
		r.start = r.step_every;
	if (!r.drift_set)
		o.drift = 0.005;
	return run(av[optind], &o, &r);
}
