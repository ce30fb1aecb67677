/*
 * api_metrics.c: GET /metrics, the Prometheus text exposition of the
 * store, hub, health and HTTP server counters.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"

/* --- /metrics -------------------------------------------------------------- */

/* Writes a Prometheus label value, escaped. */
static void
prom_label(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(fp, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", fp);
		else
			fputc(*s, fp);
	}
}

/* Writes the # HELP and # TYPE lines of a family. */
static void
prom_family(FILE *fp, const char *name, const char *type, const char *help)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One run seen by the checkpoint gauges, for the per-run gauges. */
struct prom_run {
	int64_t		 id;
	char		*name;
	bool		 analysed;	/* has a done checkpoint: */
	long long	 step;		/* the latest one's step, */
	double		 finished;	/* finish time (0: unknown) */
	uint64_t	 nonfinite;	/* and non-finite matrices */
};

struct prom_runs {
	FILE		*fp;
	struct prom_run	*v;
	size_t		 n, cap;
};

/* Writes the checkpoint gauges of one run and remembers it. */
static int
prom_runs_cb(void *arg, const struct run_row *r)
{
	struct prom_runs	*pr = arg;
	int			 i;

	for (i = 0; i < CK_NSTATUS; i++) {
		fputs("spectrumd_checkpoints{run=\"", pr->fp);
		prom_label(pr->fp, r->name);
		fprintf(pr->fp, "\",status=\"%s\"} %" PRIu64 "\n",
		    ckpt_status_name((enum ckpt_status)i), r->counts[i]);
	}
	if (!grow((void **)&pr->v, &pr->cap, pr->n, sizeof *pr->v) ||
	    (pr->v[pr->n].name = strdup(r->name)) == NULL)
		return 1;
	pr->v[pr->n].analysed = false;
	pr->v[pr->n++].id = r->id;
	return 0;
}

/* Keeps the latest done checkpoint's facts (store_ckpt_get callback). */
static int
prom_latest_cb(void *arg, const struct ckpt_row *r)
{
	struct prom_run *p = arg;

	p->analysed = true;
	p->step = r->step;
	p->finished = r->finished;
	p->nonfinite = r->nonfinite;
	return 0;
}

/* Writes the run label of a sample of family name. */
static void
prom_run_sample(FILE *fp, const char *name, const char *run)
{
	fprintf(fp, "%s{run=\"", name);
	prom_label(fp, run);
	fputs("\"} ", fp);
}

/* Writes the per-run families of the latest analysed checkpoints. */
static void
prom_latest(FILE *fp, const struct prom_runs *pr)
{
	size_t i;

	prom_family(fp, "spectrumd_run_latest_step", "gauge",
	    "Step of the run's latest analysed (done) checkpoint.");
	for (i = 0; i < pr->n; i++)
		if (pr->v[i].analysed) {
			prom_run_sample(fp, "spectrumd_run_latest_step",
			    pr->v[i].name);
			fprintf(fp, "%lld\n", pr->v[i].step);
		}
	prom_family(fp, "spectrumd_run_last_analysis_timestamp_seconds",
	    "gauge", "Unix time the run's latest analysed checkpoint "
	    "finished its analysis.");
	for (i = 0; i < pr->n; i++)
		if (pr->v[i].analysed && pr->v[i].finished > 0) {
			prom_run_sample(fp,
			    "spectrumd_run_last_analysis_timestamp_seconds",
			    pr->v[i].name);
			fprintf(fp, "%.3f\n", pr->v[i].finished);
		}
	prom_family(fp, "spectrumd_run_nonfinite_matrices", "gauge",
	    "Matrices with non-finite weights or SNR in the run's latest "
	    "analysed checkpoint (never selected).");
	for (i = 0; i < pr->n; i++)
		if (pr->v[i].analysed) {
			prom_run_sample(fp, "spectrumd_run_nonfinite_matrices",
			    pr->v[i].name);
			fprintf(fp, "%" PRIu64 "\n", pr->v[i].nonfinite);
		}
}

/* Writes one spectrumd_alerts_total sample (store_alert_counts callback). */
static int
prom_alert_cb(void *arg, const struct alert_count_row *r)
{
	FILE *fp = arg;

	fputs("spectrumd_alerts_total{run=\"", fp);
	prom_label(fp, r->run);
	fputs("\",kind=\"", fp);
	prom_label(fp, r->kind);
	fprintf(fp, "\"} %" PRIu64 "\n", r->count);
	return 0;
}

/* Writes the alert families: counts by run and kind, stalled runs. */
static void
prom_alerts(struct ctx *c, FILE *fp, const struct prom_runs *pr, bool up)
{
	size_t	i;
	bool	stalled;

	prom_family(fp, "spectrumd_alerts_total", "counter",
	    "Alerts raised, by run and kind (nonfinite, stalled, snr_jump, "
	    "alpha_jump, churn); kept across restarts.");
	if (up)
		store_alert_counts(c->st, prom_alert_cb, fp, c->eb);
	prom_family(fp, "spectrumd_run_stalled", "gauge",
	    "1 while the run is stalled: no new checkpoint since its stalled "
	    "alert.");
	for (i = 0; i < pr->n; i++)
		if (store_run_stalled(c->st, pr->v[i].id, &stalled, c->eb) ==
		    SPD_OK) {
			prom_run_sample(fp, "spectrumd_run_stalled",
			    pr->v[i].name);
			fprintf(fp, "%d\n", stalled);
		}
}

/* Writes the store-backed families (no samples when the store is down). */
static void
prom_store(struct ctx *c, FILE *fp)
{
	struct prom_runs	 pr = { fp, NULL, 0, 0 };
	long long		 version;
	size_t			 i, churn;
	bool			 up = thread_store(c) == SPD_OK;

	prom_family(fp, "spectrumd_checkpoints", "gauge",
	    "Checkpoints by run and status.");
	if (up)
		store_runs(c->st, prom_runs_cb, &pr, c->eb);
	prom_family(fp, "spectrumd_selection_version", "gauge",
	    "Version of the current selection at the configured top_percent.");
	for (i = 0; i < pr.n; i++) {
		if (store_selection_latest(c->st, pr.v[i].id,
		    c->cfg->top_percent, c->cfg->include_embeddings, NULL,
		    &version, NULL, NULL, c->eb) == SPD_OK) {
			fputs("spectrumd_selection_version{run=\"", fp);
			prom_label(fp, pr.v[i].name);
			fprintf(fp, "\"} %lld\n", version);
		}
		if (store_ckpt_get(c->st, pr.v[i].id, -1, prom_latest_cb,
		    &pr.v[i], c->eb) != SPD_OK)
			pr.v[i].analysed = false;
	}
	prom_family(fp, "spectrumd_selection_churn", "gauge",
	    "Modules added plus removed between the last two selections at "
	    "the configured top_percent.");
	for (i = 0; i < pr.n; i++) {
		if (store_selection_churn(c->st, pr.v[i].id,
		    c->cfg->top_percent, c->cfg->include_embeddings, &churn,
		    c->eb) == SPD_OK) {
			prom_run_sample(fp, "spectrumd_selection_churn",
			    pr.v[i].name);
			fprintf(fp, "%zu\n", churn);
		}
	}
	prom_latest(fp, &pr);
	prom_alerts(c, fp, &pr, up);
	for (i = 0; i < pr.n; i++)
		free(pr.v[i].name);
	free(pr.v);
}

/* Writes the build's version and compiled-in backends. */
static void
prom_build(struct ctx *c, FILE *fp)
{
#ifdef HAVE_CUDA
	static const char backends[] = "cpu,cuda";
#else
	static const char backends[] = "cpu";
#endif

	prom_family(fp, "spectrumd_build_info", "gauge",
	    "Always 1: the version and the compiled-in backends.");
	fputs("spectrumd_build_info{version=\"", fp);
	prom_label(fp, c->cfg->version != NULL ? c->cfg->version : "unknown");
	fprintf(fp, "\",backends=\"%s\"} 1\n", backends);
}

/* Writes the hub-backed families: histogram, counter, backend. */
static void
prom_hub(struct ctx *c, FILE *fp)
{
	struct hub_stats	st = { 0 };
	size_t			i;

	if (c->cfg->hub != NULL)
		hub_get_stats(c->cfg->hub, &st);
	prom_family(fp, "spectrumd_analysis_seconds", "histogram",
	    "Wall time of one checkpoint analysis.");
	for (i = 0; i < HUB_NBUCKETS; i++)
		fprintf(fp, "spectrumd_analysis_seconds_bucket{le=\"%g\"} %"
		    PRIu64 "\n", hub_bucket_le[i], st.buckets[i]);
	fprintf(fp, "spectrumd_analysis_seconds_bucket{le=\"+Inf\"} %" PRIu64
	    "\n", st.analyses);
	fprintf(fp, "spectrumd_analysis_seconds_sum %.9g\n",
	    isfinite(st.seconds_sum) ? st.seconds_sum : 0);
	fprintf(fp, "spectrumd_analysis_seconds_count %" PRIu64 "\n",
	    st.analyses);
	prom_family(fp, "spectrumd_matrices_analyzed_total", "counter",
	    "Matrices analysed since the daemon started.");
	fprintf(fp, "spectrumd_matrices_analyzed_total %" PRIu64 "\n",
	    st.matrices);
	prom_family(fp, "spectrumd_nonfinite_matrices_total", "counter",
	    "Matrices analysed with non-finite weights or SNR (never "
	    "selected).");
	fprintf(fp, "spectrumd_nonfinite_matrices_total %" PRIu64 "\n",
	    st.nonfinite);
	prom_family(fp, "spectrumd_matrices_reused_total", "counter",
	    "Matrices whose stored result was reused (same fingerprint),"
	    " counted in matrices_analyzed_total too.");
	fprintf(fp, "spectrumd_matrices_reused_total %" PRIu64 "\n",
	    st.reused);
	prom_family(fp, "spectrumd_hashed_bytes_total", "counter",
	    "Weight bytes fingerprinted (XXH3-128) for reuse.");
	fprintf(fp, "spectrumd_hashed_bytes_total %" PRIu64 "\n", st.hashed);
	prom_family(fp, "spectrumd_hash_seconds_total", "counter",
	    "Seconds spent fingerprinting, summed over workers.");
	fprintf(fp, "spectrumd_hash_seconds_total %.9g\n", st.hash_seconds);
	prom_family(fp, "spectrumd_backend_info", "gauge",
	    "The compute backend in use.");
	fputs("spectrumd_backend_info{backend=\"", fp);
	prom_label(fp, c->cfg->backend != NULL ? c->cfg->backend : "none");
	fputs("\"} 1\n", fp);
}

/* Writes the health families: database state and faults, runs watched. */
static void
prom_health(struct ctx *c, FILE *fp)
{
	struct health_stats	st;
	enum health_db		k;

	if (c->cfg->health == NULL)
		return;
	health_get(c->cfg->health, &st);
	prom_family(fp, "spectrumd_db_writable", "gauge",
	    "1 while the database takes writes; 0 when full, failing or gone.");
	fprintf(fp, "spectrumd_db_writable %d\n", st.db == HEALTH_DB_OK);
	prom_family(fp, "spectrumd_db_errors_total", "counter",
	    "Failed database writes by kind.");
	for (k = HEALTH_DB_FULL; k < HEALTH_DB_NSTATE; k++)
		fprintf(fp, "spectrumd_db_errors_total{kind=\"%s\"} %" PRIu64
		    "\n", health_db_name(k), st.db_errors[k]);
	prom_family(fp, "spectrumd_checkpoints_given_up_total", "counter",
	    "Checkpoints recorded failed after staying incomplete past "
	    "incomplete_grace_s.");
	fprintf(fp, "spectrumd_checkpoints_given_up_total %" PRIu64 "\n",
	    st.given_up);
}

/* Writes the HTTP server's counters (requests by class, rejections). */
static void
prom_http(struct ctx *c, FILE *fp)
{
	struct hub_stats	st = { 0 };
	size_t			i;

	if (c->cfg->hub != NULL)
		hub_get_stats(c->cfg->hub, &st);
	prom_family(fp, "spectrumd_http_requests_total", "counter",
	    "HTTP requests answered, by status class.");
	for (i = 0; i < nitems(st.http_requests); i++)
		fprintf(fp, "spectrumd_http_requests_total{code=\"%zuxx\"} %"
		    PRIu64 "\n", i + 1, st.http_requests[i]);
	prom_family(fp, "spectrumd_http_rejected_connections_total", "counter",
	    "Connections turned away or closed by the server: over a "
	    "connection limit, failed accepts, requests not complete within "
	    "the timeout, idle past it, malformed requests.");
	for (i = 0; i < HUB_NREJECT; i++)
		fprintf(fp, "spectrumd_http_rejected_connections_total{reason="
		    "\"%s\"} %" PRIu64 "\n", hub_reject_name[i],
		    st.http_rejected[i]);
	prom_family(fp, "spectrumd_http_connections", "gauge",
	    "HTTP connections open now.");
	fprintf(fp, "spectrumd_http_connections %" PRIu64 "\n", st.http_open);
}

/* GET /metrics: Prometheus text exposition. */
enum spd_err
api_metrics(struct ctx *c)
{
	FILE	*fp;
	char	*buf = NULL;
	size_t	 len = 0;

	if ((fp = open_memstream(&buf, &len)) == NULL)
		return SPD_ENOMEM;
	prom_build(c, fp);
	prom_store(c, fp);
	prom_hub(c, fp);
	prom_health(c, fp);
	prom_http(c, fp);
	if (spd_memstream_finish(fp, &buf) == NULL)
		return SPD_ENOMEM;
	reply_owned(c->resp, 200, CT_PROM, buf, strlen(buf));
	return SPD_OK;
}
