/*
 * scan.c: `spectrumd scan`: analyse one checkpoint, write
 * snr_results_<slug>.json and the unfrozen-parameters YAML like the
 * reference script, print the selection or a summary. PATH may also be a
 * run directory (a Trainer output_dir): its newest complete checkpoint is
 * scanned. With --cache FILE the results are also stored in that database
 * (the daemon's schema), and a matrix whose bytes it already holds is
 * reused instead of solved. Exit 0 on success (per-matrix failures are
 * listed, not fatal), 2 on bad input, 1 when the results cannot be
 * written.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spectrumd/analyze.h"
#include "spectrumd/model.h"
#include "spectrumd/names.h"
#include "spectrumd/report.h"
#include "spectrumd/select.h"
#include "spectrumd/layout.h"
#include "spectrumd/store.h"
#include "scan.h"

enum scan_format { FMT_TABLE, FMT_JSON, FMT_YAML, FMT_REGEX };

struct scan_args {
	const char		*path;
	const char		*name;		/* --name: the model's name */
	char			*run_ckpt;	/* newest checkpoint of a run dir */
	const char		*out_dir;
	const char		*timings;	/* TSV of per-matrix times */
	const char		*cache;		/* --cache: a database */
	unsigned		 top_percent;
	enum scan_format	 format;
	bool			 include_embeddings;
	bool			 quiet;
	struct analyze_opts	 ao;
};

/* Progress bar state, drawn on stderr when it is a terminal. */
struct bar {
	double		 t0, last;
	struct analyzer	*an;		/* for the reused count */
};

/* The --cache database: its lock, handle, and this scan's checkpoint. */
struct cache {
	struct store_lock	*lock;
	struct store		*st;
	int64_t			 ckpt;
	char			*run;		/* "scan:<weights path>" */
	char			*path;		/* real path of the weights */
};

static const char scan_usage[] =
"usage: spectrumd scan PATH [options]\n"
"Analyse one checkpoint (a .safetensors file, a directory with\n"
"model.safetensors, or a sharded directory with model.safetensors.index.json;\n"
"a run directory holding checkpoint-N/ folders means its newest complete one)\n"
"and write model_snr_results/snr_results_<slug>.json and\n"
"snr_results_<slug>_unfrozenparameters_<P>percent.yaml, where <slug> is the\n"
"model's name with '/' and '_' as '-' (what Axolotl's Spectrum plugin reads).\n"
"\n"
"  -n, --name MODEL      the model's name for the file names, as Axolotl's\n"
"                        base_model or spectrum_model_name (default: config.json\n"
"                        \"_name_or_path\", else the folder's name)\n"
"  -p, --top-percent P   keep the top P% of each type (1-100, default 25)\n"
"  -o, --out DIR         output directory (default model_snr_results)\n"
"  -t, --threads N       cores to use (default all)\n"
"  -b, --backend B       auto, cpu or cuda (default auto)\n"
"      --devices LIST    CUDA devices to use, e.g. 0,1 (default: all)\n"
"  -f, --format F        stdout: table, json, yaml or regex (default table)\n"
"      --group-experts   one type for all MoE experts of a kind\n"
"      --include-1d      analyse 1-D weights as 1xd (SNR 1, as the reference)\n"
"      --split-3d        analyse each slice of 3-D weights\n"
"      --no-embeddings   do not add embeddings and lm_head to the selection\n"
"      --no-spectra      do not keep spectra (less memory)\n"
"      --timings FILE    write name, shape, dtype, seconds, SNR, alpha per\n"
"                        matrix (TSV)\n"
"      --cache FILE      store the results in the SQLite database FILE (the\n"
"                        daemon's schema; created if missing) and reuse every\n"
"                        matrix whose bytes it already analysed\n"
"  -q, --quiet           no progress bar\n"
"  -h, --help            this text\n"
"Exit status: 0 done (failed matrices are listed on stderr), 1 the results\n"
"could not be written (or out of memory), 2 bad arguments or input, 3 done\n"
"but some matrices have NaN/Inf weights or a NaN SNR (listed; left out of\n"
"the JSON, never selected).\n";

/* Parses an unsigned decimal in [min, max]; false when it is not one. */
static bool
parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char		*end;
	unsigned long	 v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
	    v < min || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

/* Parses --format's value. */
static bool
parse_format(const char *s, enum scan_format *out)
{
	static const char *const names[] = { "table", "json", "yaml", "regex" };
	size_t i;

	for (i = 0; i < nitems(names); i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum scan_format)i;
			return true;
		}
	return false;
}

/* Fills a from argv; returns -1 to go on, else the exit status. */
static int
parse_args(int argc, char **argv, struct scan_args *a)
{
	enum { O_GROUP = 256, O_1D, O_3D, O_NOEMB, O_NOSPEC, O_TIMINGS,
	    O_DEVICES, O_CACHE };
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "top-percent", required_argument, NULL, 'p' },
		{ "out", required_argument, NULL, 'o' },
		{ "threads", required_argument, NULL, 't' },
		{ "backend", required_argument, NULL, 'b' },
		{ "devices", required_argument, NULL, O_DEVICES },
		{ "format", required_argument, NULL, 'f' },
		{ "group-experts", no_argument, NULL, O_GROUP },
		{ "include-1d", no_argument, NULL, O_1D },
		{ "split-3d", no_argument, NULL, O_3D },
		{ "no-embeddings", no_argument, NULL, O_NOEMB },
		{ "no-spectra", no_argument, NULL, O_NOSPEC },
		{ "timings", required_argument, NULL, O_TIMINGS },
		{ "cache", required_argument, NULL, O_CACHE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	memset(a, 0, sizeof *a);
	analyze_opts_init(&a->ao);
	a->out_dir = "model_snr_results";
	a->top_percent = 25;
	a->include_embeddings = true;
	optind = 1;
	while ((c = getopt_long(argc, argv, "n:p:o:t:b:f:qh", opts, NULL)) !=
	    -1) {
		switch (c) {
		case 'n':
			a->name = optarg;
			break;
		case 'p':
			if (!parse_uint(optarg, 1, 100, &a->top_percent))
				goto bad_value;
			break;
		case 'o':
			a->out_dir = optarg;
			break;
		case 't':
			if (!parse_uint(optarg, 1, 1024, &a->ao.threads))
				goto bad_value;
			break;
		case 'b':
			a->ao.backend = optarg;
			break;
		case 'f':
			if (!parse_format(optarg, &a->format))
				goto bad_value;
			break;
		case O_GROUP: a->ao.group_experts = true; break;
		case O_1D: a->ao.include_1d = true; break;
		case O_3D: a->ao.split_3d = true; break;
		case O_NOEMB: a->include_embeddings = false; break;
		case O_NOSPEC: a->ao.keep_spectra = false; break;
		case O_TIMINGS: a->timings = optarg; break;
		case O_CACHE: a->cache = optarg; break;
		case O_DEVICES: a->ao.devices = optarg; break;
		case 'q': a->quiet = true; break;
		case 'h':
			fputs(scan_usage, stdout);
			return 0;
		default:
			fputs(scan_usage, stderr);
			return EXIT_BADINPUT;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "spectrumd scan: expected one PATH "
		    "(try --help)\n");
		return EXIT_BADINPUT;
	}
	a->path = argv[optind];
	return -1;
bad_value:
	fprintf(stderr, "spectrumd scan: %s: expected %s, got '%s'\n",
	    c == 'p' ? "--top-percent" : c == 't' ? "--threads" : "--format",
	    c == 'p' ? "an integer 1..100" : c == 't' ? "an integer 1..1024" :
	    "table, json, yaml or regex", optarg);
	return EXIT_BADINPUT;
}

/*
 * When a->path is a run directory (checkpoint-N/ folders, no weights of
 * its own), points a->path at its newest complete checkpoint. Returns 0,
 * or -1 with a message when it holds checkpoints but none is complete.
 */
static int
resolve_run_dir(struct scan_args *a)
{
	struct watch_found	*f = NULL;
	struct spd_errbuf	 eb;
	struct stat		 sb;
	size_t			 n = 0, i, pick = SIZE_MAX, seen = 0;

	if (stat(a->path, &sb) != 0 || !S_ISDIR(sb.st_mode) ||
	    watch_scan(a->path, &f, &n, &eb) != SPD_OK)
		return 0;		/* model_open explains */
	for (i = 0; i < n; i++) {
		if (strcmp(f[i].path, a->path) == 0)
			break;		/* weights of its own */
		seen++;
		if (f[i].state == WF_COMPLETE)
			pick = i;	/* sorted by step */
	}
	if (i == n && pick != SIZE_MAX &&
	    (a->run_ckpt = strdup(f[pick].path)) != NULL) {
		fprintf(stderr, "spectrumd scan: %s is a run directory: "
		    "scanning its newest complete checkpoint %s (step %lld)\n",
		    a->path, a->run_ckpt, f[pick].step);
	} else if (i == n && seen > 0) {
		fprintf(stderr, "spectrumd scan: %s: no complete checkpoint "
		    "yet (%s: %s)\n", a->path, f[n - 1].path,
		    f[n - 1].reason != NULL ? f[n - 1].reason : "unsupported");
		watch_found_free(f, n);
		return -1;
	}
	watch_found_free(f, n);
	return 0;
}

/* Draws "[####    ] 12/224 matrices  850 MB/s  ETA 0:42" on stderr. */
static void
bar_progress(void *arg, size_t done, size_t total, uint64_t bdone,
    uint64_t btotal)
{
	struct bar	*b = arg;
	double		 now = spd_now(), el = now - b->t0, rate, eta;
	char		 fill[31];
	size_t		 w;

	if (done < total && now - b->last < 0.1)
		return;
	b->last = now;
	w = total ? done * 30 / total : 30;
	memset(fill, '#', w);
	memset(fill + w, ' ', 30 - w);
	fill[30] = '\0';
	rate = el > 0 ? (double)bdone / el / 1e6 : 0;
	eta = bdone > 0 ? el * (double)(btotal - bdone) / (double)bdone : 0;
	fprintf(stderr, "\r[%s] %zu/%zu matrices, %zu reused  %.0f MB/s  "
	    "ETA %d:%02d ", fill, done, total, analyzer_reused(b->an), rate,
	    (int)eta / 60, (int)eta % 60);
	if (done == total)
		fputc('\n', stderr);
}

/*
 * Writes text to dir/name through a temporary file and rename(2), so a
 * reader never sees half a file. Returns 0, or -1 with a message printed.
 */
static int
write_file(const char *dir, const char *name, const char *text)
{
	char	 path[4096], tmp[4200];
	FILE	*fp;
	int	 bad;

	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >=
	    sizeof path) {
		fprintf(stderr, "spectrumd scan: %s/%s: path too long\n",
		    dir, name);
		return -1;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	fp = fopen(tmp, "w");
	if (fp == NULL) {
		fprintf(stderr, "spectrumd scan: %s: %s\n", tmp,
		    strerror(errno));
		return -1;
	}
	bad = fputs(text, fp) == EOF;
	bad |= fclose(fp) != 0;
	if (bad || rename(tmp, path) != 0) {
		fprintf(stderr, "spectrumd scan: writing %s: %s\n", path,
		    strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Returns the slug of the model at path (its directory for a file). */
static int
path_slug(const char *path, char *buf, size_t len)
{
	struct stat	 sb;
	char		 dir[4096], abs[4096], *slash;

	if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
		if ((size_t)snprintf(dir, sizeof dir, "%s", path) >= sizeof dir)
			return -1;
		slash = strrchr(dir, '/');
		if (slash == NULL)
			snprintf(dir, sizeof dir, ".");
		else
			*slash = '\0';
		if (realpath(dir, abs) == NULL)
			return -1;
		path = abs;
	} else if (realpath(path, abs) != NULL) {
		path = abs;
	}
	return names_slug(path, buf, len) == SPD_OK ? 0 : -1;
}

/*
 * Finds the model's name and slug: --name, else config.json's
 * "_name_or_path" beside the weights, else the folder's name (then *name
 * is the slug). Returns 0, or -1 with a message.
 */
static int
model_slug(const struct scan_args *a, char *slug, size_t len, char **name)
{
	const char	*weights = a->run_ckpt != NULL ? a->run_ckpt : a->path;
	struct stat	 sb;
	char		*dir;

	*name = a->name != NULL ? strdup(a->name) : NULL;
	if (a->name == NULL && (dir = strdup(weights)) != NULL) {
		/* config.json sits beside a single weights file */
		if (stat(weights, &sb) == 0 && !S_ISDIR(sb.st_mode))
			*name = model_config_name(dirname(dir));
		else
			*name = model_config_name(dir);
		free(dir);
	}
	if (*name != NULL) {
		if (names_model_slug(*name, slug, len) == SPD_OK)
			return 0;
		fprintf(stderr, "spectrumd scan: model name '%s' cannot name "
		    "a file\n", *name);
		free(*name);
		*name = NULL;
		return -1;
	}
	if (path_slug(a->path, slug, len) != 0 ||
	    (*name = strdup(slug)) == NULL) {
		fprintf(stderr, "spectrumd scan: %s: cannot derive a model "
		    "name (give --name)\n", a->path);
		return -1;
	}
	return 0;
}

/* Tells where the files went and how Axolotl finds them. */
static void
print_written(const struct scan_args *a, const char *name, const char *json,
    const char *yaml)
{
	if (a->quiet)
		return;
	fprintf(stderr, "wrote %s/%s\n      %s/%s\n"
	    "Axolotl: run it from the directory that holds %s/ with\n"
	    "  plugins:\n"
	    "    - axolotl.integrations.spectrum.SpectrumPlugin\n"
	    "  spectrum_model_name: %s\n"
	    "  spectrum_top_fraction: %g\n"
	    "or paste the YAML's unfrozen_parameters into the training config.\n",
	    a->out_dir, json, a->out_dir, yaml, a->out_dir, name,
	    a->top_percent / 100.0);
}

/* Writes the two reference-compatible files into a->out_dir. */
static int
write_outputs(const struct scan_args *a, const struct report *r,
    const struct selection *sel)
{
	char	 slug[512], name[700], yname[760];
	char	*json = NULL, *yaml = NULL, *model = NULL;
	int	 rc = -1;

	if (model_slug(a, slug, sizeof slug, &model) != 0)
		return -1;
	if (mkdir(a->out_dir, 0777) != 0 && errno != EEXIST) {
		fprintf(stderr, "spectrumd scan: %s: %s\n", a->out_dir,
		    strerror(errno));
		return -1;
	}
	json = report_reference_json(r);
	yaml = selection_yaml(sel);
	if (json == NULL || yaml == NULL) {
		fprintf(stderr, "spectrumd scan: out of memory\n");
		goto out;
	}
	snprintf(name, sizeof name, "snr_results_%s.json", slug);
	if (write_file(a->out_dir, name, json) != 0)
		goto out;
	snprintf(yname, sizeof yname,
	    "snr_results_%s_unfrozenparameters_%upercent.yaml", slug,
	    a->top_percent);
	if (write_file(a->out_dir, yname, yaml) != 0)
		goto out;
	print_written(a, model, name, yname);
	rc = 0;
out:
	free(model);
	free(json);
	free(yaml);
	return rc;
}

/* Prints the selection (or the summary table) on stdout. */
static int
print_result(const struct scan_args *a, const struct report *r,
    const struct selection *sel)
{
	char *text = NULL;

	switch (a->format) {
	case FMT_TABLE:
		report_print_table(r, stdout);
		printf("selected %zu modules (top %u%% per type) from %zu "
		    "matrices (%zu reused) in %.1f s on %s\n",
		    selection_count(sel), a->top_percent,
		    report_count(r, MAT_OK), r->reused, r->seconds,
		    r->backend);
		return 0;
	case FMT_JSON:
		text = selection_json(sel, NULL, -1, r->path, -1);
		break;
	case FMT_YAML:
		text = selection_yaml(sel);
		break;
	case FMT_REGEX:
		text = selection_regex(sel);
		break;
	}
	if (text == NULL)
		return -1;
	fputs(text, stdout);
	if (a->format == FMT_JSON)
		fputc('\n', stdout);
	free(text);
	return 0;
}

/* Writes one TSV line per analysed matrix: where the time went. */
static int
write_timings(const char *path, const struct report *r)
{
	FILE	*fp = fopen(path, "w");
	size_t	 i;
	int	 bad;

	if (fp == NULL) {
		fprintf(stderr, "spectrumd scan: %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	fprintf(fp, "name\trows\tcols\tdtype\tseconds\tsnr\talpha\n");
	for (i = 0; i < r->nmats; i++) {
		const struct mat_result *m = &r->mats[i];

		if (m->status == MAT_SKIPPED)
			continue;
		fprintf(fp, "%s\t%" PRIu64 "\t%" PRIu64 "\t%s\t%.6f\t%.17g\t"
		    "%.17g\n", m->name, m->rows, m->cols, dtype_name(m->dtype),
		    m->seconds, m->m.snr, m->has_ht ? m->ht.alpha : NAN);
	}
	fprintf(fp, "# total\t\t\t\t%.6f\t\t\n", r->seconds);
	bad = ferror(fp);
	if (fclose(fp) != 0 || bad) {
		fprintf(stderr, "spectrumd scan: writing %s failed\n", path);
		return -1;
	}
	return 0;
}

/*
 * Lists per-matrix errors on stderr, then the matrices without a usable
 * SNR (NaN/Inf weights, a NaN SNR) in a warning block: they are left out
 * of the reference JSON and never selected. Returns how many those are.
 */
static size_t
print_failures(const struct report *r)
{
	size_t i, nf = report_nonfinite(r);

	for (i = 0; i < r->nmats; i++) {
		const struct mat_result *m = &r->mats[i];

		if (m->status == MAT_ERROR)
			fprintf(stderr, "spectrumd scan: %s: %s\n", m->name,
			    m->error ? m->error : mat_status_name(m->status));
	}
	if (nf == 0)
		return 0;
	fprintf(stderr, "spectrumd scan: warning: %zu matri%s with NaN/Inf "
	    "weights or a NaN SNR, left out of snr_results_*.json and never "
	    "selected (exit %d):\n", nf, nf == 1 ? "x" : "ces",
	    EXIT_NONFINITE);
	for (i = 0; i < r->nmats; i++) {
		const struct mat_result *m = &r->mats[i];

		if (m->status == MAT_NONFINITE)
			fprintf(stderr, "  %s: %s\n", m->name,
			    m->error ? m->error : "NaN/Inf weights");
		else if (m->status == MAT_OK && !mat_selectable(m))
			fprintf(stderr, "  %s: SNR is NaN\n", m->name);
	}
	return nf;
}

/* Reuse callback: a result of the same bytes stored in the cache. */
static bool
cache_reuse(void *arg, const char *method, bool want_spectrum,
    struct mat_result *r)
{
	struct cache		*c = arg;
	struct spd_errbuf	 eb;
	bool			 found = false;

	/* Its own earlier rows count too: they are rewritten from r. */
	if (store_reuse_find(c->st, method, 0, want_spectrum, r, &found,
	    &eb) != SPD_OK)
		return false;
	return found;
}

/* Closes the cache (NULL-safe members). */
static void
cache_close(struct cache *c)
{
	store_close(c->st);
	store_unlock(c->lock);
	free(c->run);
	free(c->path);
	memset(c, 0, sizeof *c);
}

/*
 * Opens a->cache (taking its lock, so no daemon writes it meanwhile) and
 * records the checkpoint weights in run "scan:<real path>". Returns 0, or
 * -1 with a message.
 */
static int
cache_open(const struct scan_args *a, const char *weights, struct cache *c)
{
	struct spd_errbuf	 eb;
	enum ckpt_status	 cur;
	int64_t			 run_id;
	enum spd_err		 rc;
	char			*dir;

	memset(c, 0, sizeof *c);
	if ((c->path = realpath(weights, NULL)) == NULL) {
		fprintf(stderr, "spectrumd scan: %s: %s\n", weights,
		    strerror(errno));
		return -1;
	}
	c->run = spd_asprintf("scan:%s", c->path);
	dir = c->run != NULL ? strdup(c->path) : NULL;
	if (dir == NULL) {
		fprintf(stderr, "spectrumd scan: out of memory\n");
		return -1;
	}
	rc = store_lock(a->cache, &c->lock, &eb);
	if (rc == SPD_OK)
		rc = store_open(a->cache, STORE_RW, &c->st, &eb);
	if (rc == SPD_OK)
		rc = store_run_ensure(c->st, c->run, dirname(dir), &run_id,
		    &eb);
	if (rc == SPD_OK)
		rc = store_ckpt_ensure(c->st, run_id, c->path, 0, spd_now(),
		    CK_PENDING, &c->ckpt, &cur, &eb);
	free(dir);
	if (rc != SPD_OK) {
		fprintf(stderr, "spectrumd scan: --cache %s: %s\n", a->cache,
		    eb.msg);
		return -1;
	}
	return 0;
}

/* Stores the analysis in the cache. Returns 0, or -1 with a message. */
static int
cache_store(struct cache *c, const struct scan_args *a,
    const struct report *r, const struct selection *sel)
{
	struct spd_errbuf	 eb;

	if (store_put_report(c->st, c->ckpt, r, sel, NULL, NULL, &eb) !=
	    SPD_OK) {
		fprintf(stderr, "spectrumd scan: --cache %s: %s\n", a->cache,
		    eb.msg);
		return -1;
	}
	return 0;
}

/* Runs `spectrumd scan`. */
int
scan_main(int argc, char **argv)
{
	struct scan_args	 a;
	struct analyzer		*an = NULL;
	struct report		*r = NULL;
	struct selection	*sel = NULL;
	struct spd_errbuf	 eb;
	struct bar		 bar;
	struct cache		 cache;
	enum spd_err		 rc;
	size_t			 nonfinite;
	int			 status;

	memset(&cache, 0, sizeof cache);
	if ((status = parse_args(argc, argv, &a)) >= 0)
		return status;
	if (resolve_run_dir(&a) != 0)
		return EXIT_BADINPUT;
	if (a.cache != NULL && cache_open(&a, a.run_ckpt != NULL ?
	    a.run_ckpt : a.path, &cache) != 0) {
		cache_close(&cache);
		free(a.run_ckpt);
		return EXIT_BADINPUT;
	}
	if (!a.quiet && isatty(STDERR_FILENO)) {
		bar.t0 = bar.last = spd_now();
		a.ao.progress = bar_progress;
		a.ao.progress_arg = &bar;
	}
	eb.msg[0] = '\0';
	rc = analyzer_new(&a.ao, &an, &eb);
	if (rc != SPD_OK) {
		fprintf(stderr, "spectrumd scan: backend: %s\n", eb.msg);
		cache_close(&cache);
		free(a.run_ckpt);
		return EXIT_BADINPUT;
	}
	bar.an = an;
	if (cache.st != NULL)
		analyzer_set_reuse(an, cache_reuse, &cache);
	if (eb.msg[0] != '\0' && !a.quiet)
		fprintf(stderr, "spectrumd scan: %s\n", eb.msg);
	rc = analyzer_run(an, a.run_ckpt != NULL ? a.run_ckpt : a.path, &r,
	    &eb);
	if (rc != SPD_OK) {
		fprintf(stderr, "spectrumd scan: %s\n", eb.msg);
		status = rc == SPD_ENOMEM || rc == SPD_EINTERNAL ? 1 :
		    EXIT_BADINPUT;
		goto out;
	}
	status = 1;
	if (select_compute(r, a.top_percent, a.include_embeddings, &sel) !=
	    SPD_OK) {
		fprintf(stderr, "spectrumd scan: out of memory\n");
		goto out;
	}
	nonfinite = print_failures(r);
	if (write_outputs(&a, r, sel) != 0 || print_result(&a, r, sel) != 0)
		goto out;
	if (a.timings != NULL && write_timings(a.timings, r) != 0)
		goto out;
	if (cache.st != NULL && cache_store(&cache, &a, r, sel) != 0)
		goto out;
	status = nonfinite > 0 ? EXIT_NONFINITE : 0;
out:
	cache_close(&cache);
	selection_free(sel);
	report_free(r);
	analyzer_free(an);
	free(a.run_ckpt);
	return status;
}
