/*
 * health.c: the daemon's view of its database and run directories (see
 * health.h). One mutex guards everything; the run list is small
 * (CFG_MAX_RUNS) and looked up by name.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spectrumd/health.h"

struct hrun {
	char		*name;
	enum health_run	 state;
};

struct health {
	pthread_mutex_t		 mu;
	struct health_stats	 st;
	char			 why[256];
	struct hrun		*runs;
	size_t			 nruns;
};

static const char *const db_names[HEALTH_DB_NSTATE] = {
	"ok", "full", "error", "gone"
};

/* Allocates the state. */
struct health *
health_new(void)
{
	struct health *h;

	if ((h = calloc(1, sizeof *h)) == NULL)
		return NULL;
	if (pthread_mutex_init(&h->mu, NULL) != 0) {
		free(h);
		return NULL;
	}
	return h;
}

/* Frees a run list. */
static void
runs_free(struct hrun *v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i].name);
	free(v);
}

/* Frees the state. */
void
health_free(struct health *h)
{
	if (h == NULL)
		return;
	runs_free(h->runs, h->nruns);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

/* Sets the database state; returns the previous one. */
enum health_db
health_set_db(struct health *h, enum health_db s, const char *why)
{
	enum health_db prev;

	if ((unsigned)s >= HEALTH_DB_NSTATE)
		s = HEALTH_DB_ERROR;
	pthread_mutex_lock(&h->mu);
	prev = h->st.db;
	h->st.db = s;
	snprintf(h->why, sizeof h->why, "%s", why != NULL ? why : "");
	pthread_mutex_unlock(&h->mu);
	return prev;
}

/* Reads the database state and reason. */
enum health_db
health_db(struct health *h, char *why, size_t len)
{
	enum health_db s;

	pthread_mutex_lock(&h->mu);
	s = h->st.db;
	if (why != NULL && len > 0)
		snprintf(why, len, "%s", s == HEALTH_DB_OK ? "" : h->why);
	pthread_mutex_unlock(&h->mu);
	return s;
}

/* Counts a failed write. */
void
health_count_db_error(struct health *h, enum health_db k)
{
	if (k == HEALTH_DB_OK || (unsigned)k >= HEALTH_DB_NSTATE)
		return;
	pthread_mutex_lock(&h->mu);
	h->st.db_errors[k]++;
	pthread_mutex_unlock(&h->mu);
}

/* Counts a checkpoint given up as incomplete. */
void
health_count_given_up(struct health *h)
{
	pthread_mutex_lock(&h->mu);
	h->st.given_up++;
	pthread_mutex_unlock(&h->mu);
}

/* Copies the counters and the database state. */
void
health_get(struct health *h, struct health_stats *out)
{
	pthread_mutex_lock(&h->mu);
	*out = h->st;
	pthread_mutex_unlock(&h->mu);
}

/* Replaces the run list. */
enum spd_err
health_set_runs(struct health *h, const char *const *names, size_t n)
{
	struct hrun	*v;
	size_t		 i;

	if ((v = calloc(n ? n : 1, sizeof *v)) == NULL)
		return SPD_ENOMEM;
	for (i = 0; i < n; i++)
		if ((v[i].name = strdup(names[i])) == NULL) {
			runs_free(v, i);
			return SPD_ENOMEM;
		}
	pthread_mutex_lock(&h->mu);
	runs_free(h->runs, h->nruns);
	h->runs = v;
	h->nruns = n;
	pthread_mutex_unlock(&h->mu);
	return SPD_OK;
}

/* Sets the state of run i. */
void
health_set_run(struct health *h, size_t i, enum health_run s)
{
	pthread_mutex_lock(&h->mu);
	if (i < h->nruns)
		h->runs[i].state = s;
	pthread_mutex_unlock(&h->mu);
}

/* Looks the state of a run up by name. */
enum health_run
health_run(struct health *h, const char *name)
{
	enum health_run	s = HEALTH_RUN_UNKNOWN;
	size_t		i;

	pthread_mutex_lock(&h->mu);
	for (i = 0; name != NULL && i < h->nruns; i++)
		if (strcmp(h->runs[i].name, name) == 0) {
			s = h->runs[i].state;
			break;
		}
	pthread_mutex_unlock(&h->mu);
	return s;
}

/* Names a database state. */
const char *
health_db_name(enum health_db s)
{
	return (unsigned)s < HEALTH_DB_NSTATE ? db_names[s] : "unknown";
}

/* Names a run state. */
const char *
health_run_name(enum health_run s)
{
	switch (s) {
	case HEALTH_RUN_WATCHING:
		return "watching";
	case HEALTH_RUN_MISSING:
		return "missing";
	case HEALTH_RUN_UNWATCHED:
		return "unwatched";
	default:
		return "unknown";
	}
}
