/*
 * test_report.c: the report container, Python-repr floats and the
 * reference snr_results JSON byte for byte (expected strings generated
 * with Python's json.dumps(obj, indent=4) and embedded here), the table.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/report.h"
#include "tap.h"

/* Doubles with Python's json.dumps() of them. */
static const struct {
	double		 v;
	const char	*want;
} floats[] = {
	{ 0x1.999999999999ap-4, "0.1" },
	{ 0x1.5555555555555p-2, "0.3333333333333333" },
	{ 0x1.5555555555555p-1, "0.6666666666666666" },
	{ 0x1.1c37937e08000p+53, "1e+16" },
	{ 0x1.d6f34547df3b6p+26, "123456789.123" },
	{ 0x0.0000000000001p-1022, "5e-324" },
	{ 0x1.0f0cf064dd592p+73, "1e+22" },
	{ 0x1.b28f5c28f5c29p+3, "13.58" },
	{ 0x1.4f8b588e368f1p-17, "1e-05" },
	{ 0x1.aa535d3d0c000p+53, "1.5e+16" },
	{ 0x1.18b54f22aeb00p+50, "1234567890123456.0" },
	{ 0x1.5ee2a2eb5a5c4p+53, "1.2345678901234568e+16" },
	{ 0x0.0p+0, "0.0" },
	{ -0.0, "-0.0" },
	{ 0x1.0000000000000p+0, "1.0" },
	{ 0x1.9000000000000p+6, "100.0" },
	/* powers of two whose nearest short decimal does not read back */
	{ 0x1.0000000000000p-24, "5.960464477539063e-08" },
	{ 0x1.0000000000000p-1017, "7.120236347223045e-307" },
	{ 0x1.0000000000000p+89, "6.189700196426902e+26" },
	{ 0x1.a36e2eb1c432dp-14, "0.0001" },
	{ 0x1.02e4b6ce5dc68p-13, "0.00012345" },
	{ 0x1.1c37937e07fffp+53, "9999999999999998.0" },
	{ 0x1.c6bf526340000p+49, "1000000000000000.0" },
	{ 0x1.6345785d8a000p+56, "1e+17" },
	{ 0x1.fffffffffffffp+1023, "1.7976931348623157e+308" },
	{ 0x1.0000000000000p-1022, "2.2250738585072014e-308" },
	{ -0x1.4000000000000p+1, "-2.5" },
	{ 0x1.6666666666666p-3, "0.175" },
	{ 0x1.f851ec0000000p+1, "3.940000057220459" },
	{ 0x1.ad7f29abcaf48p-24, "1e-07" },
	{ -0x1.56e1fc2f8f359p-997, "-1e-300" },
	{ 0x1.edd2f1a9fbe77p+6, "123.456" },
	{ 0x1.249ad2594c37dp+332, "1e+100" },
	{ 0x1.0000000000000p-1, "0.5" },
	{ 0x1.0000000000000p+53, "9007199254740992.0" },
	{ 0x1.0000000000001p+53, "9007199254740994.0" },
	{ 0x1.3333333333334p-2, "0.30000000000000004" },
	{ INFINITY, "Infinity" },
	{ -INFINITY, "-Infinity" },
	{ NAN, "NaN" },
};

/* The matrices of the reference-JSON case. */
static const struct {
	const char	*module, *type;
	enum mat_status	 status;
	double		 snr;
} mats[] = {
	{ "model.layers.0.mlp.down_proj", "mlp.down_proj", MAT_OK, 13.58 },
	{ "model.layers.1.mlp.down_proj", "mlp.down_proj", MAT_OK, INFINITY },
	{ "model.layers.0.self_attn.q_proj", "self_attn.q_proj",
	    MAT_NONFINITE, 5 },
	{ "model.layers.0.mlp.experts", "mlp.experts", MAT_SKIPPED, 0 },
	{ "model.layers.1.self_attn.q_proj", "self_attn.q_proj", MAT_ERROR,
	    0 },
	{ "lm_head", "lm_head", MAT_OK, 0.1 },
	{ "model.layers.2.w\xc3\xa9ird\"na\\me\n\t\xf0\x9f\x98\x80/"
	    "\xe2\x80\xa8",
	    "w\xc3\xa9ird", MAT_OK, 1e-5 },
	{ "bad\xff\xc3(x\xed\xa0\x80", "t\x01\x7f\x1f", MAT_OK, 1e16 },
	{ "zero", "", MAT_OK, 0 },
};

/* json.dumps(…, indent=4) of the matrices above (the invalid UTF-8 name
 * decoded with errors="replace"), the NaN/Inf-weight one left out. */
static const char want_json[] =
    "{\n"
    "    \"model.layers.0.mlp.down_proj\": {\n"
    "        \"snr\": 13.58,\n"
    "        \"type\": \"mlp.down_proj\"\n"
    "    },\n"
    "    \"model.layers.1.mlp.down_proj\": {\n"
    "        \"snr\": Infinity,\n"
    "        \"type\": \"mlp.down_proj\"\n"
    "    },\n"
    "    \"lm_head\": {\n"
    "        \"snr\": 0.1,\n"
    "        \"type\": \"lm_head\"\n"
    "    },\n"
    "    \"model.layers.2.w\\u00e9ird\\\"na\\\\me\\n\\t"
    "\\ud83d\\ude00/\\u2028\": {\n"
    "        \"snr\": 1e-05,\n"
    "        \"type\": \"w\\u00e9ird\"\n"
    "    },\n"
    "    \"bad\\ufffd\\ufffd(x\\ufffd\\ufffd\\ufffd\": {\n"
    "        \"snr\": 1e+16,\n"
    "        \"type\": \"t\\u0001\\u007f\\u001f\"\n"
    "    },\n"
    "    \"zero\": {\n"
    "        \"snr\": 0.0,\n"
    "        \"type\": \"\"\n"
    "    }\n"
    "}";

/* Prints s as TAP diagnostics, "# " before every line. */
static void
diag(const char *s)
{
	const char *nl;

	for (; *s != '\0'; s = nl + 1) {
		if ((nl = strchr(s, '\n')) == NULL) {
			printf("# %s\n", s);
			return;
		}
		printf("# %.*s\n", (int)(nl - s), s);
	}
}

/* Appends one hand-made matrix to r; returns the report_add status. */
static enum spd_err
add_mat(struct report *r, const char *module, const char *type,
    enum mat_status st, double snr)
{
	struct mat_result	m = { 0 };
	enum spd_err		rc;

	if (asprintf(&m.name, "%s.weight", module) < 0)
		return SPD_ENOMEM;
	m.module = strdup(module);
	m.type = strdup(type);
	m.layer = -1;
	m.rows = m.cols = 4;
	m.dtype = DT_BF16;
	m.status = st;
	m.m.snr = snr;
	if (st != MAT_OK)
		m.error = strdup(st == MAT_SKIPPED ? "3-D tensor" :
		    "solver failed");
	if ((m.spectrum = calloc(4, sizeof *m.spectrum)) != NULL)
		m.k = 4;
	rc = report_add(r, &m);
	if (rc != SPD_OK)
		mat_result_cleanup(&m);
	return rc;
}

/* Gives matrix i of r heavy-tail metrics: status st, alpha a. */
static void
set_alpha(struct report *r, size_t i, enum heavytail_status st, double a)
{
	if (i >= r->nmats)
		return;
	r->mats[i].has_ht = true;
	r->mats[i].ht.status = st;
	r->mats[i].ht.alpha = a;
}

/* Python repr of every table double, and round trips of random ones. */
static void
test_pyfloat(void)
{
	char		buf[64], small[5];
	size_t		i;
	uint64_t	x = 88172645463325252ULL, bits;
	double		v;
	int		bad = 0;

	for (i = 0; i < nitems(floats); i++) {
		report_pyfloat(floats[i].v, buf, sizeof buf);
		ok(strcmp(buf, floats[i].want) == 0, "pyfloat %a: %s (want %s)",
		    floats[i].v, buf, floats[i].want);
	}
	for (i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		bits = x;
		memcpy(&v, &bits, sizeof v);
		if (!isfinite(v))
			continue;
		report_pyfloat(v, buf, sizeof buf);
		if (strtod(buf, NULL) != v || strlen(buf) > 24)
			bad++;
	}
	ok(bad == 0, "20000 random doubles read back exactly (%d do not)",
	    bad);
	report_pyfloat(13.58, small, sizeof small);
	ok(strcmp(small, "13.5") == 0, "pyfloat truncates to the buffer");
}

/* The reference file's bytes, and an empty report. */
static void
test_reference_json(void)
{
	struct report	*r;
	char		*js;
	size_t		 i;
	enum spd_err	 rc = SPD_OK;

	if ((r = report_new("/ckpt/checkpoint-10", "cpu")) == NULL) {
		ok(0, "report_new");
		return;
	}
	js = report_reference_json(r);
	ok(js != NULL && strcmp(js, "{}") == 0, "empty report is {}: %s",
	    js ? js : "(null)");
	free(js);
	for (i = 0; i < nitems(mats) && rc == SPD_OK; i++)
		rc = add_mat(r, mats[i].module, mats[i].type, mats[i].status,
		    mats[i].snr);
	ok(rc == SPD_OK && r->nmats == nitems(mats), "matrices added");
	js = report_reference_json(r);
	ok(js != NULL && strcmp(js, want_json) == 0,
	    "reference JSON matches json.dumps(indent=4) byte for byte");
	if (js != NULL && strcmp(js, want_json) != 0)
		diag(js);
	free(js);
	ok(report_count(r, MAT_OK) == 6 &&
	    report_count(r, MAT_NONFINITE) == 1 &&
	    report_count(r, MAT_ERROR) == 1 &&
	    report_count(r, MAT_SKIPPED) == 1,
	    "counts by status");
	report_free(r);
}

/*
 * Non-finite entries are left out (a NaN SNR too, +inf kept), and entries
 * come by layer ascending, so Python's stable sort breaks ties by layer.
 */
static void
test_reference_order(void)
{
	static const struct {
		const char	*module;
		int		 layer;
		enum mat_status	 st;
		double		 snr;
	} t[] = {
		{ "m.layers.10.a", 10, MAT_OK, 1 },
		{ "m.layers.2.a", 2, MAT_OK, 1 },
		{ "m.layers.3.a", 3, MAT_OK, NAN },
		{ "m.layers.4.a", 4, MAT_NONFINITE, 0 },
		{ "m.layers.1.a", 1, MAT_OK, INFINITY },
		{ "m.emb", -1, MAT_OK, 0.5 },
	};
	struct report	*r = report_new("/x", "cpu");
	char		*js = NULL;
	const char	*p10, *p2, *p1, *pe;
	size_t		 i;
	enum spd_err	 rc = r != NULL ? SPD_OK : SPD_ENOMEM;

	for (i = 0; i < nitems(t) && rc == SPD_OK; i++) {
		rc = add_mat(r, t[i].module, "a", t[i].st, t[i].snr);
		if (rc == SPD_OK)
			r->mats[r->nmats - 1].layer = t[i].layer;
	}
	if (rc == SPD_OK)
		js = report_reference_json(r);
	ok(js != NULL && strstr(js, "NaN") == NULL &&
	    strstr(js, "layers.3.") == NULL && strstr(js, "layers.4.") == NULL,
	    "NaN SNR and NaN/Inf weights left out");
	p10 = js ? strstr(js, "layers.10.") : NULL;
	p2 = js ? strstr(js, "layers.2.") : NULL;
	p1 = js ? strstr(js, "layers.1.") : NULL;
	pe = js ? strstr(js, "m.emb") : NULL;
	ok(pe != NULL && p1 != NULL && p2 != NULL && p10 != NULL && pe < p1 &&
	    p1 < p2 && p2 < p10 && strstr(js, "Infinity") != NULL,
	    "by layer: -1, 1 (Infinity), 2, 10");
	ok(r != NULL && report_nonfinite(r) == 2, "report_nonfinite counts 2");
	free(js);
	report_free(r);
}

/* Ownership, growth, statuses, NULL-safety. */
static void
test_container(void)
{
	struct report		*r;
	struct mat_result	 m = { 0 };
	char			 name[32];
	size_t			 i;
	int			 good = 1;

	r = report_new(NULL, NULL);
	ok(r != NULL && r->path == NULL && r->nmats == 0,
	    "report_new with no path");
	for (i = 0; r != NULL && i < 300; i++) {
		snprintf(name, sizeof name, "model.layers.%zu.mlp", i);
		if (add_mat(r, name, "mlp", MAT_OK, (double)i) != SPD_OK)
			good = 0;
	}
	ok(good && r->nmats == 300 && r->cap >= 300, "300 matrices added");
	for (i = 0; good && i < 300; i++) {
		snprintf(name, sizeof name, "model.layers.%zu.mlp", i);
		good = strcmp(r->mats[i].module, name) == 0 &&
		    r->mats[i].m.snr == (double)i && r->mats[i].k == 4;
	}
	ok(good, "matrices kept in order");

	m.name = strdup("x.weight");
	m.error = strdup("why");
	ok(report_add(r, &m) == SPD_OK && m.name == NULL && m.error == NULL,
	    "report_add takes ownership and zeroes m");
	ok(report_add(NULL, &m) == SPD_EINVAL, "report_add(NULL) refused");
	ok(report_count(r, MAT_OK) == 301 && report_count(NULL, MAT_OK) == 0,
	    "report_count");
	report_free(r);
	report_free(NULL);
	mat_result_cleanup(NULL);
	ok(report_reference_json(NULL) == NULL, "reference JSON of NULL");

	ok(strcmp(mat_status_name(MAT_OK), "ok") == 0 &&
	    strcmp(mat_status_name(MAT_NONFINITE), "nonfinite") == 0 &&
	    strcmp(mat_status_name(MAT_ERROR), "error") == 0 &&
	    strcmp(mat_status_name(MAT_SKIPPED), "skipped") == 0,
	    "status names");
}

/* The human table: rows per type in first-seen order, then failures. */
static void
test_table(void)
{
	struct report	*r;
	char		*buf = NULL, *a, *b;
	size_t		 len = 0;
	FILE		*fp;

	r = report_new("/ckpt/checkpoint-7", "cpu");
	add_mat(r, "model.layers.0.self_attn.q_proj", "self_attn.q_proj",
	    MAT_OK, 2);
	add_mat(r, "model.layers.0.mlp.down_proj", "mlp.down_proj", MAT_OK, 3);
	add_mat(r, "model.layers.1.mlp.down_proj", "mlp.down_proj", MAT_OK, 1);
	add_mat(r, "model.layers.2.mlp.down_proj", "mlp.down_proj", MAT_OK,
	    INFINITY);
	add_mat(r, "model.layers.3.mlp.down_proj", "mlp.down_proj",
	    MAT_NONFINITE, 0);
	add_mat(r, "model.layers.1.self_attn.q_proj", "self_attn.q_proj",
	    MAT_OK, 4);
	add_mat(r, "model.layers.0.mlp.experts", "mlp.experts", MAT_SKIPPED,
	    0);
	add_mat(r, "model.layers.0.mlp.up_proj", "mlp.up_proj", MAT_OK, 0.5);
	/* Median alpha: of the fits of analysed matrices only. */
	set_alpha(r, 0, HEAVYTAIL_OK, 2.5);
	set_alpha(r, 5, HEAVYTAIL_OK, 3.5);
	set_alpha(r, 1, HEAVYTAIL_OK, 6);
	set_alpha(r, 2, HEAVYTAIL_TOO_FEW, NAN);
	set_alpha(r, 3, HEAVYTAIL_OK, 4);
	set_alpha(r, 4, HEAVYTAIL_OK, 100);	/* nonfinite: not counted */
	if ((fp = open_memstream(&buf, &len)) == NULL) {
		ok(0, "open_memstream");
		report_free(r);
		return;
	}
	report_print_table(r, fp);
	fclose(fp);
	diag(buf);
	ok(strstr(buf, "8 matrices, 6 ok, 1 nonfinite, 0 errors, 1 skipped") !=
	    NULL, "table: counts");
	ok(strstr(buf, "type                 n failed  median SNR         min"
	    "         max median alpha\n") != NULL, "table: header");
	a = strstr(buf, "self_attn.q_proj     2      0           3           2"
	    "           4            3\n");
	b = strstr(buf, "mlp.down_proj        3      1           3           1"
	    "         inf            5\n");
	ok(a != NULL, "table: q_proj row (median of 2 and 4, alpha of 2.5 and "
	    "3.5)");
	ok(b != NULL, "table: down_proj row (inf max, one failed; alpha of 6 "
	    "and 4, no fit and nonfinite left out)");
	ok(strstr(buf, "mlp.up_proj          1      0         0.5         0.5"
	    "         0.5            -\n") != NULL,
	    "table: no alpha without a fit: -");
	ok(a != NULL && b != NULL && a < b, "table: first-seen order");
	ok(strstr(buf, "model.layers.3.mlp.down_proj.weight: nonfinite: "
	    "solver failed\n") != NULL && strstr(buf,
	    "model.layers.0.mlp.experts.weight: skipped: 3-D tensor\n") !=
	    NULL, "table: failures with reasons");
	ok(strstr(buf, "mlp.experts   ") == NULL, "table: no row for skipped");
	free(buf);
	report_free(r);
}

/* Runs every group. */
int
main(void)
{
	test_pyfloat();
	test_reference_json();
	test_reference_order();
	test_container();
	test_table();
	return tap_done();
}
