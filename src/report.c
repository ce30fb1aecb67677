/*
 * report.c: the results of one checkpoint as plain data, the reference
 * script's snr_results_<slug>.json byte for byte, and a human table.
 *
 * The reference file is what Python's json.dump(obj, f, indent=4) writes
 * (ensure_ascii on): floats as repr() (shortest round-trip digits),
 * Infinity/-Infinity/NaN as bare tokens, non-ASCII as \uXXXX escapes
 * (surrogate pairs above U+FFFF). A name that is not valid UTF-8 cannot
 * come out of Python; its bad bytes are written as \ufffd, one per byte.
 * Matrices appear in report order; keys are not de-duplicated.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/report.h"

#define REPORT_CAP0	64

/* Allocates an empty report for path. */
struct report *
report_new(const char *path, const char *backend)
{
	struct report *r;

	if ((r = calloc(1, sizeof *r)) == NULL)
		return NULL;
	if ((path != NULL && (r->path = strdup(path)) == NULL) ||
	    (backend != NULL && (r->backend = strdup(backend)) == NULL)) {
		report_free(r);
		return NULL;
	}
	return r;
}

/* Frees r and everything it owns. */
void
report_free(struct report *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nmats; i++)
		mat_result_cleanup(&r->mats[i]);
	free(r->mats);
	free(r->path);
	free(r->backend);
	free(r->method);
	free(r);
}

/* Appends *m to r, taking its strings and spectrum. */
enum spd_err
report_add(struct report *r, struct mat_result *m)
{
	struct mat_result	*mats;
	size_t			 ncap;

	if (r == NULL || m == NULL)
		return SPD_EINVAL;
	if (r->nmats == r->cap) {
		if (r->cap == 0)
			ncap = REPORT_CAP0;
		else if (__builtin_mul_overflow(r->cap, 2, &ncap))
			return SPD_ENOMEM;
		mats = reallocarray(r->mats, ncap, sizeof *mats);
		if (mats == NULL)
			return SPD_ENOMEM;
		r->mats = mats;
		r->cap = ncap;
	}
	r->mats[r->nmats++] = *m;
	memset(m, 0, sizeof *m);
	return SPD_OK;
}

/* Frees the strings and spectrum of m and zeroes it. */
void
mat_result_cleanup(struct mat_result *m)
{
	if (m == NULL)
		return;
	free(m->name);
	free(m->module);
	free(m->type);
	free(m->error);
	free(m->spectrum);
	memset(m, 0, sizeof *m);
}

/* Returns the constant name of a matrix status. */
const char *
mat_status_name(enum mat_status s)
{
	switch (s) {
	case MAT_OK:
		return "ok";
	case MAT_NONFINITE:
		return "nonfinite";
	case MAT_ERROR:
		return "error";
	case MAT_SKIPPED:
		return "skipped";
	}
	return "unknown";
}

/* Counts the matrices of r with status s. */
size_t
report_count(const struct report *r, enum mat_status s)
{
	size_t i, n = 0;

	if (r == NULL)
		return 0;
	for (i = 0; i < r->nmats; i++)
		if (r->mats[i].status == s)
			n++;
	return n;
}

/* ---- Python repr(float) ------------------------------------------------ */

/* True when m·10^q reads back as exactly v. */
static bool
round_trips(uint64_t m, int q, double v)
{
	char buf[48];

	snprintf(buf, sizeof buf, "%llue%d", (unsigned long long)m, q);
	return strtod(buf, NULL) == v;
}

/*
 * Finds the shortest decimal m·10^q that reads back as v > 0 (finite),
 * the nearest one when several of that length do, as Python's repr (David
 * Gay's mode 0) does. printf gives the nearest p-digit decimal; where the
 * rounding interval of v is lopsided (v a power of two), only the p-digit
 * neighbour on the other side may read back, so that one is tried too.
 */
static void
shortest_decimal(double v, uint64_t *mout, int *qout)
{
	char		 buf[48];
	uint64_t	 m, pow_lo, lo;
	int		 p, q, i;

	for (p = 1, pow_lo = 1; ; p++, pow_lo *= 10) {
		snprintf(buf, sizeof buf, "%.*e", p - 1, v);
		m = 0;
		for (i = 0; buf[i] != 'e'; i++)	/* any locale's point */
			if (buf[i] >= '0' && buf[i] <= '9')
				m = m * 10 + (uint64_t)(buf[i] - '0');
		q = (int)strtol(buf + i + 1, NULL, 10) - (p - 1);
		if (p >= 17 || round_trips(m, q, v))
			break;
		lo = m == pow_lo ? pow_lo * 10 - 1 : m - 1;
		if (round_trips(lo, m == pow_lo ? q - 1 : q, v)) {
			q = m == pow_lo ? q - 1 : q;
			m = lo;
			break;
		}
		if (round_trips(m + 1, q, v)) {
			m++;
			break;
		}
	}
	while (m % 10 == 0) {
		m /= 10;
		q++;
	}
	*mout = m;
	*qout = q;
}

/* Formats v as Python's repr(float), json.dump's specials for non-finite. */
void
report_pyfloat(double v, char *buf, size_t len)
{
	char		 out[64], dig[24];
	uint64_t	 m;
	size_t		 o = 0, nd;
	int		 q, decpt, i;

	if (buf == NULL || len == 0)
		return;
	if (isnan(v)) {
		snprintf(buf, len, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, len, "%s", v < 0 ? "-Infinity" : "Infinity");
		return;
	}
	if (signbit(v))
		out[o++] = '-';
	v = fabs(v);
	if (v == 0) {
		snprintf(buf, len, "%s0.0", o > 0 ? "-" : "");
		return;
	}
	shortest_decimal(v, &m, &q);
	snprintf(dig, sizeof dig, "%llu", (unsigned long long)m);
	nd = strlen(dig);
	decpt = (int)nd + q;		/* v = 0.dig · 10^decpt */

	if (decpt <= -4 || decpt > 16) {
		out[o++] = dig[0];
		if (nd > 1) {
			out[o++] = '.';
			memcpy(out + o, dig + 1, nd - 1);
			o += nd - 1;
		}
		snprintf(out + o, sizeof out - o, "e%c%02d",
		    decpt - 1 < 0 ? '-' : '+', abs(decpt - 1));
	} else if (decpt <= 0) {
		out[o++] = '0';
		out[o++] = '.';
		for (i = decpt; i < 0; i++)
			out[o++] = '0';
		memcpy(out + o, dig, nd);
		out[o + nd] = '\0';
	} else if ((size_t)decpt < nd) {
		memcpy(out + o, dig, (size_t)decpt);
		o += (size_t)decpt;
		out[o++] = '.';
		memcpy(out + o, dig + decpt, nd - (size_t)decpt);
		out[o + nd - (size_t)decpt] = '\0';
	} else {
		memcpy(out + o, dig, nd);
		o += nd;
		for (i = (int)nd; i < decpt; i++)
			out[o++] = '0';
		memcpy(out + o, ".0", 3);
	}
	snprintf(buf, len, "%s", out);
}

/* ---- Python json.dump strings -------------------------------------------- */

/*
 * Decodes one UTF-8 sequence at s (strictly: no overlongs, surrogates or
 * values past U+10FFFF). Returns its length and *cp, or 0 when invalid.
 */
static size_t
utf8_decode(const unsigned char *s, uint32_t *cp)
{
	uint32_t	c = s[0], min;
	size_t		n, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		c &= 0x07;
		min = 0x10000;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)	/* also stops at the NUL */
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Writes s as a JSON string the way json.dump(ensure_ascii=True) does. */
static void
put_pystring(FILE *fp, const char *str)
{
	const unsigned char	*s = (const unsigned char *)(str ? str : "");
	uint32_t		 cp;
	size_t			 n;

	fputc('"', fp);
	while (*s != '\0') {
		if ((n = utf8_decode(s, &cp)) == 0) {
			cp = 0xfffd;
			n = 1;
		}
		s += n;
		switch (cp) {
		case '"':
			fputs("\\\"", fp);
			continue;
		case '\\':
			fputs("\\\\", fp);
			continue;
		case '\b':
			fputs("\\b", fp);
			continue;
		case '\f':
			fputs("\\f", fp);
			continue;
		case '\n':
			fputs("\\n", fp);
			continue;
		case '\r':
			fputs("\\r", fp);
			continue;
		case '\t':
			fputs("\\t", fp);
			continue;
		}
		if (cp >= 0x20 && cp < 0x7f)
			fputc((int)cp, fp);
		else if (cp < 0x10000)
			fprintf(fp, "\\u%04x", (unsigned)cp);
		else {
			cp -= 0x10000;
			fprintf(fp, "\\u%04x\\u%04x",
			    (unsigned)(0xd800 | (cp >> 10)),
			    (unsigned)(0xdc00 | (cp & 0x3ff)));
		}
	}
	fputc('"', fp);
}

/* True when m has a usable SNR; see report.h. */
bool
mat_selectable(const struct mat_result *m)
{
	return m->status == MAT_OK && !isnan(m->m.snr);
}

/* Counts the analysed matrices without a usable SNR. */
size_t
report_nonfinite(const struct report *r)
{
	size_t i, n = 0;

	for (i = 0; r != NULL && i < r->nmats; i++)
		n += r->mats[i].status == MAT_NONFINITE ||
		    (r->mats[i].status == MAT_OK && isnan(r->mats[i].m.snr));
	return n;
}

/* Orders indices into a report by layer ascending, then index. */
static int
cmp_layer(const void *a, const void *b, void *arg)
{
	const struct report	*r = arg;
	size_t			 i = *(const size_t *)a, j = *(const size_t *)b;
	int			 li = r->mats[i].layer, lj = r->mats[j].layer;

	if (li != lj)
		return li < lj ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* The reference script's flat JSON, as json.dump(indent=4) writes it. */
char *
report_reference_json(const struct report *r)
{
	const struct mat_result	*m;
	FILE			*fp;
	char			*buf = NULL, num[64];
	size_t			 len = 0, i, n = 0, *ord;

	if (r == NULL || (ord = calloc(r->nmats + 1, sizeof *ord)) == NULL)
		return NULL;
	for (i = 0; i < r->nmats; i++)
		ord[i] = i;
	qsort_r(ord, r->nmats, sizeof *ord, cmp_layer, (void *)r);
	if ((fp = open_memstream(&buf, &len)) == NULL) {
		free(ord);
		return NULL;
	}
	fputc('{', fp);
	for (i = 0; i < r->nmats; i++) {
		m = &r->mats[ord[i]];
		if (!mat_selectable(m))
			continue;
		fputs(n++ > 0 ? ",\n    " : "\n    ", fp);
		put_pystring(fp, m->module != NULL ? m->module : m->name);
		fputs(": {\n        \"snr\": ", fp);
		report_pyfloat(m->m.snr, num, sizeof num);
		fputs(num, fp);
		fputs(",\n        \"type\": ", fp);
		put_pystring(fp, m->type);
		fputs("\n    }", fp);
	}
	fputs(n > 0 ? "\n}" : "}", fp);
	free(ord);
	return spd_memstream_finish(fp, &buf);
}

/* ---- the human table ---------------------------------------------------- */

/* True when matrix m counts in the per-type table. */
static bool
analysed(const struct mat_result *m)
{
	return m->status == MAT_OK || m->status == MAT_NONFINITE;
}

/* Returns the type of m, "" when unset. */
static const char *
type_of(const struct mat_result *m)
{
	return m->type != NULL ? m->type : "";
}

/* Orders matrix indices by type, then by position in the report. */
static int
cmp_by_type(const void *a, const void *b, void *arg)
{
	const struct report	*r = arg;
	size_t			 i = *(const size_t *)a, j = *(const size_t *)b;
	int			 c;

	c = strcmp(type_of(&r->mats[i]), type_of(&r->mats[j]));
	if (c != 0)
		return c;
	return i < j ? -1 : i > j;
}

/* Orders groups by their first member, i.e. by first appearance. */
static int
cmp_first(const void *a, const void *b)
{
	size_t i = ((const struct report_group *)a)->idx[0];
	size_t j = ((const struct report_group *)b)->idx[0];

	return i < j ? -1 : i > j;
}

/* Groups the taken matrices of r by type (see report.h). */
enum spd_err
report_groups(const struct report *r, const bool *take,
    struct report_group **out, size_t *n)
{
	struct report_group	*g;
	size_t			*idx, ni = 0, ng = 0, i, j;

	for (i = 0; i < r->nmats; i++)
		ni += take[i];
	*out = NULL;
	*n = 0;
	if (ni == 0)
		return SPD_OK;
	/* ni groups at most, then the ni positions they point into. */
	g = calloc(1, ni * (sizeof *g + sizeof *idx));
	if (g == NULL)
		return SPD_ENOMEM;
	idx = (size_t *)(g + ni);
	for (i = 0, j = 0; i < r->nmats; i++)
		if (take[i])
			idx[j++] = i;
	qsort_r(idx, ni, sizeof *idx, cmp_by_type, (void *)r);
	for (i = 0; i < ni; i = j) {
		g[ng].type = type_of(&r->mats[idx[i]]);
		for (j = i + 1; j < ni &&
		    strcmp(g[ng].type, type_of(&r->mats[idx[j]])) == 0; j++)
			;
		g[ng].idx = idx + i;
		g[ng++].n = j - i;
	}
	qsort(g, ng, sizeof *g, cmp_first);
	*out = g;
	*n = ng;
	return SPD_OK;
}

/* Orders doubles ascending (+inf last; NaN never reaches here). */
static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of the n > 0 values v, sorted ascending. */
static double
median(const double *v, size_t n)
{
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Prints one table row from the n SNRs in v and the na fitted alphas in
 * a, each sorted ascending.
 */
static void
print_row(FILE *fp, const char *type, int width, const double *v, size_t n,
    size_t nbad, const double *a, size_t na)
{
	char alpha[16] = "-";

	if (na > 0)
		snprintf(alpha, sizeof alpha, "%.4g", median(a, na));
	if (n == 0) {
		fprintf(fp, "%-*.*s %5zu %6zu %11s %11s %11s %12s\n", width,
		    width, type, n, nbad, "-", "-", "-", alpha);
		return;
	}
	fprintf(fp, "%-*.*s %5zu %6zu %11.5g %11.5g %11.5g %12s\n", width,
	    width, type, n, nbad, median(v, n), v[0], v[n - 1], alpha);
}

/*
 * Prints the per-type summary of the analysed matrices: SNRs, and the
 * median heavy-tail alpha of those with a fit.
 */
static void
print_types(const struct report *r, FILE *fp)
{
	struct report_group	*grp = NULL;
	const struct mat_result	*m;
	size_t			 ng = 0, i, j, n, nbad, na;
	double			*v = NULL, *a = NULL;
	bool			*take;
	int			 width = 4;

	take = calloc(r->nmats + 1, sizeof *take);
	v = calloc(r->nmats + 1, sizeof *v);
	a = calloc(r->nmats + 1, sizeof *a);
	for (i = 0; take != NULL && i < r->nmats; i++)
		take[i] = analysed(&r->mats[i]);
	if (take == NULL || v == NULL || a == NULL ||
	    report_groups(r, take, &grp, &ng) != SPD_OK) {
		fprintf(fp, "(no per-type summary: out of memory)\n");
		goto out;
	}
	if (ng == 0)
		goto out;
	for (i = 0; i < ng; i++)
		if (strlen(grp[i].type) > (size_t)width)
			width = strlen(grp[i].type) > 48 ? 48 :
			    (int)strlen(grp[i].type);
	fprintf(fp, "%-*s %5s %6s %11s %11s %11s %12s\n", width, "type", "n",
	    "failed", "median SNR", "min", "max", "median alpha");
	for (i = 0; i < ng; i++) {
		n = nbad = na = 0;
		for (j = 0; j < grp[i].n; j++) {
			m = &r->mats[grp[i].idx[j]];
			if (m->status == MAT_OK && !isnan(m->m.snr))
				v[n++] = m->m.snr;
			else
				nbad++;
			if (m->status == MAT_OK && m->has_ht &&
			    m->ht.status == HEAVYTAIL_OK &&
			    isfinite(m->ht.alpha))
				a[na++] = m->ht.alpha;
		}
		qsort(v, n, sizeof *v, cmp_double);
		qsort(a, na, sizeof *a, cmp_double);
		print_row(fp, grp[i].type, width, v, n, nbad, a, na);
	}
out:
	free(grp);
	free(take);
	free(v);
	free(a);
}

/* Writes a human summary of r: per-type SNRs, then what failed and why. */
void
report_print_table(const struct report *r, FILE *fp)
{
	const struct mat_result	*m;
	size_t			 i;

	if (r == NULL || fp == NULL)
		return;
	fprintf(fp, "%s (%s): %zu matrices, %zu ok, %zu nonfinite, "
	    "%zu errors, %zu skipped, %.1f s\n",
	    r->path ? r->path : "-", r->backend ? r->backend : "-",
	    r->nmats, report_count(r, MAT_OK), report_count(r, MAT_NONFINITE),
	    report_count(r, MAT_ERROR), report_count(r, MAT_SKIPPED),
	    r->seconds);
	print_types(r, fp);
	if (report_count(r, MAT_OK) == r->nmats)
		return;
	fprintf(fp, "not analysed:\n");
	for (i = 0; i < r->nmats; i++) {
		m = &r->mats[i];
		if (m->status == MAT_OK)
			continue;
		fprintf(fp, "  %s: %s%s%s\n", m->name ? m->name : "-",
		    mat_status_name(m->status), m->error ? ": " : "",
		    m->error ? m->error : "");
	}
}
