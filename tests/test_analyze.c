/*
 * test_analyze: a whole checkpoint through analyzer_run on the CPU backend:
 * which tensors become matrices, names and order, spectra, 1-D and 3-D
 * options, NaN weights, progress, cancelling, and single vs sharded files;
 * the heavy-tail metrics of the spectrum each matrix keeps.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "spectrumd/analyze.h"
#include "spectrumd/heavytail.h"
#include "spectrumd/svd.h"
#include "fixture.h"
#include "tap.h"

static char tmp[512];

/* Writes a small Llama-shaped checkpoint into tmp/name. */
static void
write_ckpt(const char *name, unsigned shards, const char *nan)
{
	struct fixture_opts	o;
	struct spd_errbuf	eb;
	char			dir[600];

	fixture_opts_init(&o);
	o.layers = 2;
	o.hidden = 32;
	o.intermediate = 48;
	o.vocab = 64;
	o.dtype = DT_BF16;
	o.shards = shards;
	o.nan_tensor = nan;
	snprintf(dir, sizeof dir, "%s/%s", tmp, name);
	if (fixture_write_checkpoint(dir, &o, &eb) != SPD_OK) {
		printf("Bail out! fixture: %s\n", eb.msg);
		exit(1);
	}
}

/* Runs the analyzer with options o on tmp/name. */
static enum spd_err
run(const struct analyze_opts *o, const char *name, struct report **r,
    struct spd_errbuf *eb)
{
	struct analyzer	*a;
	char		 path[600];
	enum spd_err	 rc;

	if (analyzer_new(o, &a, eb) != SPD_OK)
		return SPD_EINTERNAL;
	snprintf(path, sizeof path, "%s/%s", tmp, name);
	rc = analyzer_run(a, path, r, eb);
	analyzer_free(a);
	return rc;
}

/* Returns the result for module, or NULL. */
static const struct mat_result *
find(const struct report *r, const char *module)
{
	size_t i;

	for (i = 0; i < r->nmats; i++)
		if (strcmp(r->mats[i].module, module) == 0)
			return &r->mats[i];
	return NULL;
}

/*
 * True when every analysed matrix of r has the heavy-tail metrics that
 * heavytail_compute() gives for its kept spectrum, the others none; *nfit
 * counts the fits.
 */
static bool
ht_consistent(const struct report *r, size_t *nfit)
{
	const struct mat_result	*m;
	struct heavytail_result	 h;
	size_t			 i;

	*nfit = 0;
	for (i = 0; i < r->nmats; i++) {
		m = &r->mats[i];
		if (m->status != MAT_OK) {
			if (m->has_ht)
				return false;
			continue;
		}
		if (!m->has_ht || m->spectrum == NULL ||
		    heavytail_compute(m->spectrum, m->k, &h) != SPD_OK)
			return false;
		if (h.status != m->ht.status || h.n_tail != m->ht.n_tail ||
		    h.log_spectral_norm != m->ht.log_spectral_norm)
			return false;
		if (h.status != HEAVYTAIL_OK)
			continue;
		if (h.alpha != m->ht.alpha || h.ks != m->ht.ks ||
		    h.alpha_weighted != m->ht.alpha_weighted ||
		    h.xmin != m->ht.xmin || !isfinite(h.alpha))
			return false;
		(*nfit)++;
	}
	return true;
}

static size_t	progress_calls, progress_done, progress_total;
static atomic_int cancel_flag;

/* Records progress; cancels after the third matrix when asked. */
static void
on_progress(void *arg, size_t done, size_t total, uint64_t b, uint64_t bt)
{
	(void)arg;
	ok(b <= bt, "bytes done %llu <= total %llu", (unsigned long long)b,
	    (unsigned long long)bt) ;
	progress_calls++;
	progress_done = done;
	progress_total = total;
	if (arg != NULL && done == 3)
		atomic_store(&cancel_flag, 1);
}

static void
test_llama(void)
{
	struct analyze_opts	 o;
	struct report		*r = NULL, *s = NULL;
	struct spd_errbuf	 eb;
	const struct mat_result	*m;
	size_t			 i, sorted = 1, same = 1;
	bool			 htok;

	analyze_opts_init(&o);
	o.backend = "cpu";
	o.progress = on_progress;
	ok(run(&o, "one", &r, &eb) == SPD_OK, "analyse a single-file checkpoint");
	/* 2 layers × 7 projections + embed_tokens + lm_head; norms skipped. */
	ok(r->nmats == 16, "16 matrices (got %zu)", r->nmats);
	ok(strcmp(r->mats[0].module, "model.embed_tokens") == 0,
	    "checkpoint order: embed_tokens first (%s)", r->mats[0].module);
	ok(strcmp(r->mats[r->nmats - 1].module, "lm_head") == 0,
	    "lm_head last");
	ok(report_count(r, MAT_OK) == 16, "all analysed");
	ok(progress_calls == 16 && progress_done == 16 && progress_total == 16,
	    "progress reported per matrix, ending at 16/16");
	m = find(r, "model.layers.1.mlp.down_proj");
	ok(m != NULL && strcmp(m->type, "mlp.down_proj") == 0 && m->layer == 1,
	    "down_proj: type and layer");
	ok(m != NULL && m->rows == 32 && m->cols == 48 && m->k == 32 &&
	    m->spectrum != NULL, "down_proj: 32x48, spectrum of 32 kept");
	for (i = 1; m != NULL && m->spectrum != NULL && i < m->k; i++)
		sorted &= m->spectrum[i] <= m->spectrum[i - 1];
	ok(sorted, "spectrum descending");
	ok(m != NULL && m->m.s1 == m->spectrum[0] && isfinite(m->m.snr) &&
	    m->m.snr > 0, "s1 is the first value, SNR finite and positive");
	ok(find(r, "model.embed_tokens")->embedding, "embedding flagged");
	htok = ht_consistent(r, &i);
	ok(htok && i == r->nmats, "every matrix has the heavy-tail fit of its "
	    "spectrum (%zu fits)", i);

	ok(run(&o, "sharded", &s, &eb) == SPD_OK, "analyse the sharded copy");
	ok(s != NULL && s->nmats == r->nmats, "same matrix count sharded");
	for (i = 0; s != NULL && i < r->nmats && i < s->nmats; i++)
		same &= strcmp(r->mats[i].name, s->mats[i].name) == 0 &&
		    r->mats[i].m.snr == s->mats[i].m.snr;
	ok(same, "sharded and single-file results are identical");
	report_free(s);
	s = NULL;

	/* A bound below every matrix: each still runs, alone, in order. */
	o.max_inflight_bytes = 1;
	ok(run(&o, "one", &s, &eb) == SPD_OK && s->nmats == r->nmats,
	    "max_inflight_bytes below one matrix: every matrix still runs");
	for (i = 0, same = 1; s != NULL && i < r->nmats && i < s->nmats; i++)
		same &= strcmp(r->mats[i].name, s->mats[i].name) == 0 &&
		    r->mats[i].m.snr == s->mats[i].m.snr;
	ok(same, "and gives the same results");
	report_free(r);
	report_free(s);
}

static void
test_options(void)
{
	struct analyze_opts	 o;
	struct report		*r = NULL;
	struct spd_errbuf	 eb;
	const struct mat_result	*m;

	analyze_opts_init(&o);
	o.backend = "cpu";
	o.include_1d = true;
	o.keep_spectra = false;
	ok(run(&o, "one", &r, &eb) == SPD_OK, "include_1d run");
	m = r ? find(r, "model.layers.0.input_layernorm") : NULL;
	ok(m != NULL && m->rows == 1 && m->cols == 32, "1-D weight as 1x32");
	ok(m != NULL && m->status == MAT_OK && fabs(m->m.snr - 1.0) < 1e-12,
	    "1-D weight has SNR 1 as the reference");
	ok(r != NULL && r->nmats == 21, "21 matrices with norms (got %zu)",
	    r ? r->nmats : 0);
	ok(m != NULL && m->spectrum == NULL, "keep_spectra off: no spectrum");
	m = r ? find(r, "model.layers.1.mlp.down_proj") : NULL;
	ok(m != NULL && m->has_ht && m->ht.status == HEAVYTAIL_OK &&
	    isfinite(m->ht.alpha), "keep_spectra off: heavy-tail metrics kept");
	m = r ? find(r, "model.layers.0.input_layernorm") : NULL;
	ok(m != NULL && m->has_ht && m->ht.status == HEAVYTAIL_TOO_FEW &&
	    isnan(m->ht.alpha) && isfinite(m->ht.log_spectral_norm),
	    "1-D weight: one value, too few to fit");
	report_free(r);
}

/* The device list: checked before any backend opens; cuda needs them. */
static void
test_devices(void)
{
	static const char *const bad[] = { "0,0", "x", "0,", ",1", "1;2",
	    "-1", "99999999999" };
	struct analyze_opts	 o;
	struct analyzer		*a = NULL;
	struct spd_errbuf	 eb;
	size_t			 i;

	analyze_opts_init(&o);
	o.backend = "cpu";
	for (i = 0; i < nitems(bad); i++) {
		o.devices = bad[i];
		eb.msg[0] = '\0';
		ok(analyzer_new(&o, &a, &eb) == SPD_EINVAL &&
		    strstr(eb.msg, bad[i]) != NULL, "devices \"%s\" refused: "
		    "%s", bad[i], eb.msg);
	}
	o.devices = "1,0";
	ok(analyzer_new(&o, &a, &eb) == SPD_OK &&
	    strcmp(analyzer_backend(a), "cpu") == 0,
	    "devices \"1,0\" is accepted, and unused by cpu");
	analyzer_free(a);
	a = NULL;
	if (svd_cuda_devices() == 0) {
		o.backend = "cuda";
		o.devices = "0";
		ok(analyzer_new(&o, &a, &eb) == SPD_ENODEV,
		    "cuda without a device: SPD_ENODEV (%s)", eb.msg);
	} else {
		o.backend = "cuda";
		o.devices = "1023";
		ok(analyzer_new(&o, &a, &eb) == SPD_ENODEV &&
		    strstr(eb.msg, "1023") != NULL,
		    "cuda device 1023: SPD_ENODEV (%s)", eb.msg);
	}
}

static void
test_nan_cancel_missing(void)
{
	struct analyze_opts	 o;
	struct report		*r = NULL;
	struct spd_errbuf	 eb;
	const struct mat_result	*m;

	analyze_opts_init(&o);
	o.backend = "cpu";
	ok(run(&o, "nan", &r, &eb) == SPD_OK, "NaN checkpoint still analysed");
	m = r ? find(r, "model.layers.0.self_attn.v_proj") : NULL;
	ok(m != NULL && m->status == MAT_NONFINITE && m->error != NULL,
	    "NaN matrix recorded as nonfinite with a reason");
	ok(r != NULL && report_count(r, MAT_OK) == 15, "the 15 others are ok");
	ok(m != NULL && !m->has_ht, "the NaN matrix has no heavy-tail metrics");
	report_free(r);
	r = NULL;

	o.progress = on_progress;
	o.progress_arg = &o;
	o.cancel = &cancel_flag;
	ok(run(&o, "one", &r, &eb) == SPD_ECANCELED && r == NULL,
	    "cancel flag stops the analysis: %s", eb.msg);
	ok(progress_done == 3, "stopped right after the current matrix (%zu)",
	    progress_done);

	analyze_opts_init(&o);
	o.backend = "cpu";
	ok(run(&o, "nothing-here", &r, &eb) == SPD_ENOTFOUND,
	    "missing checkpoint: %s", eb.msg);
}

/* Truncates the file named by arg after the first matrix. */
static void
truncate_after_first(void *arg, size_t done, size_t total, uint64_t b,
    uint64_t bt)
{
	(void)total;
	(void)b;
	(void)bt;
	if (done == 1 && truncate(arg, 4096) != 0)
		printf("# truncate: failed\n");
}

/*
 * A weight file rewritten in place ("wb") while it is mapped: reads past
 * the new end raise SIGBUS. The analysis must fail with a message, and
 * the process must live on.
 */
static void
test_truncated_under_us(void)
{
	struct analyze_opts	 o;
	struct report		*r = NULL;
	struct spd_errbuf	 eb = { "" };
	char			 file[600];
	enum spd_err		 rc;

	write_ckpt("trunc", 1, NULL);
	snprintf(file, sizeof file, "%s/trunc/model.safetensors", tmp);
	analyze_opts_init(&o);
	o.backend = "cpu";
	o.progress = truncate_after_first;
	o.progress_arg = file;
	rc = run(&o, "trunc", &r, &eb);
	ok(rc == SPD_EIO && r == NULL, "file truncated mid-analysis: "
	    "SPD_EIO, no report (rc %d)", rc);
	ok(strstr(eb.msg, "changed while it was read") != NULL &&
	    strstr(eb.msg, "model.safetensors") != NULL, "message: %s",
	    eb.msg);
	analyze_opts_init(&o);
	o.backend = "cpu";
	ok(run(&o, "one", &r, &eb) == SPD_OK && r != NULL && r->nmats == 16,
	    "the next analysis in the same process works");
	report_free(r);
}

/* A 3-D expert tensor and an integer weight next to a 2-D one. */
static void
test_3d(void)
{
	static float		 v3[3 * 8 * 6], v2[8 * 6];
	static int32_t		 iv[4];
	struct fixture_tensor	 t[3];
	struct analyze_opts	 o;
	struct report		*r = NULL;
	struct spd_errbuf	 eb;
	char			 path[600];
	size_t			 i;

	for (i = 0; i < nitems(v3); i++)
		v3[i] = (float)sin((double)i * 0.7);
	for (i = 0; i < nitems(v2); i++)
		v2[i] = (float)cos((double)i * 1.3);
	memset(t, 0, sizeof t);
	t[0] = (struct fixture_tensor){ .name = "model.layers.0.mlp.experts.weight",
	    .dtype = DT_F32, .ndim = 3, .shape = { 3, 8, 6 }, .values = v3 };
	t[1] = (struct fixture_tensor){ .name = "model.layers.0.mlp.gate.weight",
	    .dtype = DT_F32, .ndim = 2, .shape = { 8, 6 }, .values = v2 };
	t[2] = (struct fixture_tensor){ .name = "model.layers.0.q.weight",
	    .dtype = DT_I32, .ndim = 2, .shape = { 2, 2 }, .raw = iv,
	    .raw_len = sizeof iv };
	snprintf(path, sizeof path, "%s/moe.safetensors", tmp);
	if (fixture_write_safetensors(path, t, 3, NULL, 0, &eb) != SPD_OK) {
		ok(0, "write moe file: %s", eb.msg);
		return;
	}
	analyze_opts_init(&o);
	o.backend = "cpu";
	ok(run(&o, "moe.safetensors", &r, &eb) == SPD_OK, "3-D file analysed");
	ok(r != NULL && r->nmats == 3 && r->mats[0].status == MAT_SKIPPED &&
	    strstr(r->mats[0].error, "split_3d") != NULL,
	    "3-D tensor skipped with a reason: %s",
	    r && r->nmats ? r->mats[0].error : "");
	ok(r != NULL && r->nmats == 3 && r->mats[2].status == MAT_SKIPPED &&
	    strstr(r->mats[2].error, "I32") != NULL,
	    "integer weight skipped with a reason");
	report_free(r);
	r = NULL;
	o.split_3d = true;
	o.group_experts = true;
	ok(run(&o, "moe.safetensors", &r, &eb) == SPD_OK, "split_3d run");
	ok(r != NULL && r->nmats == 5, "3 slices + gate + skipped int (%zu)",
	    r ? r->nmats : 0);
	ok(r != NULL && strcmp(r->mats[0].name,
	    "model.layers.0.mlp.experts.0.weight") == 0 &&
	    strcmp(r->mats[2].module, "model.layers.0.mlp.experts.2") == 0,
	    "slices named <name>.<e>");
	ok(r != NULL && strcmp(r->mats[1].type, "mlp.experts.*") == 0 &&
	    r->mats[1].rows == 8 && r->mats[1].cols == 6,
	    "slices are 8x6 and group into one type: %s",
	    r ? r->mats[1].type : "");
	report_free(r);
}

int
main(void)
{
	struct spd_errbuf eb;

	if (fixture_tmpdir("analyze", tmp, sizeof tmp, &eb) != SPD_OK) {
		printf("Bail out! %s\n", eb.msg);
		return 1;
	}
	write_ckpt("one", 1, NULL);
	write_ckpt("sharded", 3, NULL);
	write_ckpt("nan", 1, "model.layers.0.self_attn.v_proj.weight");
	test_llama();
	test_options();
	test_devices();
	test_nan_cancel_missing();
	test_3d();
	test_truncated_under_us();
	fixture_rmtree(tmp);
	return tap_done();
}
