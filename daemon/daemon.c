/*
 * daemon.c: start-up, the main loop and tear-down of the service. The main
 * thread owns the signal pipe and the inotify watch; it turns settled
 * directory changes into scan requests for the worker. HTTP threads read
 * the database on their own; the worker writes it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spectrumd/analyze.h"
#include "spectrumd/api.h"
#include "spectrumd/health.h"
#include "spectrumd/hub.h"
#include "spectrumd/log.h"
#include "spectrumd/store.h"
#include "spectrumd/watch.h"
#include "daemon.h"
#include "http.h"
#include "notify.h"
#include "worker.h"

struct daemon {
	struct cfg		 cfg;
	int			 argc;
	char			**argv;
	int			 sfd;		/* signal pipe, read end */
	struct hub		*hub;
	struct worker		*worker;
	struct api		*api;
	struct api_config	 acfg;
	struct http		*http;
	struct watch		*watch;
	double			*deadline;	/* per run: scan at, or 0 */
	enum health_run		*rstate;	/* per run: as last seen */
	double			 next_tick;	/* heal runs, check the db */
	struct health		*health;
	struct store_lock	*lock;		/* on the database file */
	int			 status;	/* exit status */
	atomic_int		 ready;	/* read by the HTTP thread */
	char			 backend[16];
};

#define TICK_SECONDS	1.0	/* missing runs, the database file */
#define FATAL_BYTE	0	/* on the signal pipe: the worker gave up */

/* Write end of the self-pipe the signal handler reports to. */
static int sig_pipe = -1;

/* Async-signal-safe: hands the signal number to the main loop. */
static void
on_signal(int sig)
{
	unsigned char	b = (unsigned char)sig;
	int		saved = errno;

	if (write(sig_pipe, &b, 1) < 0)
		(void)0;	/* pipe full: a signal is already pending */
	errno = saved;
}

/*
 * Turns SIGTERM, SIGINT and SIGHUP into bytes on a pipe the main loop
 * polls. A self-pipe rather than a signalfd: libraries (OpenBLAS) start
 * threads before main() that we cannot make block the signals, and a
 * signal delivered to one of them must still reach the loop.
 */
static int
signals_open(void)
{
	struct sigaction	sa;
	int			p[2];

	signal(SIGPIPE, SIG_IGN);
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	sig_pipe = p[1];
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 ||
	    sigaction(SIGINT, &sa, NULL) != 0 ||
	    sigaction(SIGHUP, &sa, NULL) != 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	return p[0];
}

/* Restores the default actions and closes the pipe. */
static void
signals_close(int fd)
{
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (fd >= 0) {
		close(fd);
		close(sig_pipe);
		sig_pipe = -1;
	}
}

/* The worker found the database gone: wakes the main loop to stop. */
static void
on_fatal(void *arg)
{
	unsigned char b = FATAL_BYTE;

	(void)arg;
	if (write(sig_pipe, &b, 1) < 0)
		(void)0;	/* pipe full: the loop wakes anyway */
}

/* POST /rescan: forwards to the worker (called from HTTP threads). */
static enum spd_err
on_rescan(void *arg, const char *run)
{
	struct daemon *d = arg;

	return worker_rescan(d->worker, run);
}

/* Gives the worker the configured runs. */
static enum spd_err
push_runs(struct daemon *d)
{
	struct worker_run	*v;
	const char		**names;
	size_t			 i;
	enum spd_err		 rc;

	v = calloc(d->cfg.nruns ? d->cfg.nruns : 1, sizeof *v);
	names = calloc(d->cfg.nruns ? d->cfg.nruns : 1, sizeof *names);
	if (v == NULL || names == NULL) {
		free(v);
		free(names);
		return SPD_ENOMEM;
	}
	for (i = 0; i < d->cfg.nruns; i++) {
		names[i] = v[i].name = d->cfg.runs[i].name;
		v[i].dir = d->cfg.runs[i].dir;
	}
	rc = worker_set_runs(d->worker, v, d->cfg.nruns);
	if (rc == SPD_OK)
		rc = health_set_runs(d->health, names, d->cfg.nruns);
	free(v);
	free(names);
	return rc;
}

/* inotify callback: (re)arms the settle timer of run tag. */
static void
on_change(void *arg, int tag)
{
	struct daemon *d = arg;

	if (tag >= 0 && (size_t)tag < d->cfg.nruns)
		d->deadline[tag] = spd_now() + d->cfg.settle_ms / 1000.0;
}

/*
 * Looks at the directory of run i as it is now: (re)watches it when it
 * appeared, came back or was replaced, forgets its watches while it is
 * missing. Logs and publishes (health, /runs) state changes only; a run
 * that comes back is scanned once it settles.
 */
static void
heal_run(struct daemon *d, size_t i)
{
	const struct cfg_run	*r = &d->cfg.runs[i];
	struct spd_errbuf	 eb;
	enum health_run		 was = d->rstate[i], now;
	enum spd_err		 rc;

	eb.msg[0] = '\0';
	switch (watch_root(d->watch, (int)i, r->dir)) {
	case WATCH_ROOT_OK:
		now = HEALTH_RUN_WATCHING;
		break;
	case WATCH_ROOT_MISSING:
		watch_remove_all(d->watch, (int)i);
		now = HEALTH_RUN_MISSING;
		break;
	default:
		watch_remove_all(d->watch, (int)i);
		rc = watch_add(d->watch, (int)i, r->dir, &eb);
		now = rc == SPD_OK ? HEALTH_RUN_WATCHING : rc == SPD_ENOTFOUND ?
		    HEALTH_RUN_MISSING : HEALTH_RUN_UNWATCHED;
		if (rc == SPD_OK && was == HEALTH_RUN_WATCHING)
			on_change(d, (int)i);	/* replaced: scan the new one */
	}
	if (now == was)
		return;
	d->rstate[i] = now;
	health_set_run(d->health, i, now);
	if (now == HEALTH_RUN_MISSING)
		log_msg(LOG_WARNING, "run %s: %s does not exist: waiting for "
		    "it", r->name, r->dir);
	else if (now == HEALTH_RUN_UNWATCHED)
		log_msg(LOG_WARNING, "run %s: not watched: %s (retrying)",
		    r->name, eb.msg);
	else if (was != HEALTH_RUN_UNKNOWN) {
		log_msg(LOG_NOTICE, "run %s: %s is there: watching it",
		    r->name, r->dir);
		on_change(d, (int)i);
	}
}

/* Adds the inotify watches of every run; a missing dir is waited for. */
static void
watch_runs(struct daemon *d)
{
	size_t i;

	for (i = 0; i < d->cfg.nruns; i++) {
		d->rstate[i] = HEALTH_RUN_UNKNOWN;
		heal_run(d, i);
	}
}

/*
 * Before anything is served: every analysed checkpoint gets its selection
 * for the configured top_percent and include_embeddings, from the stored
 * metrics (after an upgrade, or a restart with other settings).
 */
static enum spd_err
sync_selections(struct daemon *d, struct store *st, struct spd_errbuf *eb)
{
	size_t		added = 0;
	enum spd_err	rc;

	rc = store_selection_sync(st, d->cfg.top_percent,
	    d->cfg.include_embeddings, d->cfg.stickiness, &added, eb);
	if (rc == SPD_OK && added > 0)
		log_msg(LOG_NOTICE, "selected %zu analysed checkpoint%s at "
		    "top_percent %u%s from stored metrics", added,
		    added == 1 ? "" : "s", d->cfg.top_percent,
		    d->cfg.include_embeddings ? "" : " without embeddings");
	return rc;
}

/* Opens the database, probes the backend and starts the worker. */
static enum spd_err
start_worker(struct daemon *d, struct spd_errbuf *eb)
{
	struct analyze_opts	 ao;
	struct worker_config	 wc;
	struct store		*st = NULL;
	struct analyzer		*an = NULL;
	enum spd_err		 rc;

	if ((rc = store_lock(d->cfg.db, &d->lock, eb)) != SPD_OK)
		return rc;
	if ((rc = store_open(d->cfg.db, STORE_RW, &st, eb)) != SPD_OK)
		return rc;
	if ((rc = store_reset_interrupted(st, eb)) != SPD_OK ||
	    (rc = sync_selections(d, st, eb)) != SPD_OK) {
		store_close(st);
		return rc;
	}
	analyze_opts_init(&ao);
	ao.backend = cfg_backend_name(d->cfg.backend);
	ao.devices = d->cfg.devices;
	ao.threads = d->cfg.threads;
	ao.keep_spectra = d->cfg.keep_spectra;
	ao.include_1d = d->cfg.include_1d;
	ao.split_3d = d->cfg.split_3d;
	ao.group_experts = d->cfg.group_experts;
	ao.max_inflight_bytes = d->cfg.max_inflight_bytes;
	eb->msg[0] = '\0';
	if ((rc = analyzer_new(&ao, &an, eb)) != SPD_OK) {
		store_close(st);
		return rc;
	}
	if (eb->msg[0] != '\0')
		log_msg(LOG_NOTICE, "%s", eb->msg);
	snprintf(d->backend, sizeof d->backend, "%s", analyzer_backend(an));
	log_msg(LOG_INFO, "database %s; compute backend %s", d->cfg.db,
	    d->backend);
	memset(&wc, 0, sizeof wc);
	wc.top_percent = d->cfg.top_percent;
	wc.include_embeddings = d->cfg.include_embeddings;
	wc.stickiness = d->cfg.stickiness;
	wc.backfill = d->cfg.backfill;
	wc.reuse = d->cfg.reuse;
	wc.incomplete_grace_s = d->cfg.incomplete_grace_s;
	wc.alert_jump_factor = d->cfg.alert_jump_factor;
	wc.alert_stall_factor = d->cfg.alert_stall_factor;
	wc.alert_churn_window = d->cfg.alert_churn_window;
	wc.alert_churn_min = d->cfg.alert_churn_min;
	wc.health = d->health;
	wc.fatal = on_fatal;
	wc.fatal_arg = d;
	return worker_start(st, an, d->hub, &wc, &d->worker, eb);
}

/* Starts the HTTP side on the configured address. */
static enum spd_err
start_http(struct daemon *d, struct spd_errbuf *eb)
{
	struct api_config *a = &d->acfg;
	struct http_limits lim;
	enum spd_err	   rc;

	memset(a, 0, sizeof *a);
	a->db_path = d->cfg.db;
	a->hub = d->hub;
	a->top_percent = d->cfg.top_percent;
	a->include_embeddings = d->cfg.include_embeddings;
	a->stickiness = d->cfg.stickiness;
	a->lr_scale_max = d->cfg.lr_scale_max;
	a->group_experts = d->cfg.group_experts;
	a->api_token = d->cfg.api_token;
	a->web_dir = d->cfg.web_dir;
	a->version = PACKAGE_VERSION;
	a->rescan = on_rescan;
	a->rescan_arg = d;
	a->ready = &d->ready;
	a->health = d->health;
	a->backend = d->backend;
	if ((rc = api_new(a, &d->api, eb)) != SPD_OK)
		return rc;
	lim.max_connections = d->cfg.http_max_connections;
	lim.per_ip = d->cfg.http_per_ip_connections;
	lim.timeout_s = d->cfg.http_timeout_s;
	lim.threads = d->cfg.http_threads;
	return http_start(d->cfg.listen, d->api, &lim, &d->http, eb);
}

/* Starts everything in order; on failure the caller tears down. */
static enum spd_err
startup(struct daemon *d, struct spd_errbuf *eb)
{
	enum spd_err rc;

	if ((d->sfd = signals_open()) < 0)
		return spd_fail(eb, SPD_EIO, "signals: %s", strerror(errno));
	d->deadline = calloc(CFG_MAX_RUNS, sizeof *d->deadline);
	d->rstate = calloc(CFG_MAX_RUNS, sizeof *d->rstate);
	d->hub = hub_new(1024);
	d->health = health_new();
	if (d->deadline == NULL || d->rstate == NULL || d->hub == NULL ||
	    d->health == NULL)
		return spd_fail(eb, SPD_ENOMEM, "out of memory");
	if ((rc = start_worker(d, eb)) != SPD_OK)
		return rc;
	if ((rc = push_runs(d)) != SPD_OK)
		return spd_fail(eb, rc, "runs: %s", spd_strerror(rc));
	if ((rc = start_http(d, eb)) != SPD_OK)
		return rc;
	if ((rc = watch_open(&d->watch, eb)) != SPD_OK)
		return rc;
	watch_runs(d);
	atomic_store(&d->ready, 1);
	return SPD_OK;
}

/* Stops everything in reverse order (NULL-safe throughout). */
static void
teardown(struct daemon *d)
{
	if (d->http != NULL)
		http_quiesce(d->http);
	if (d->hub != NULL)
		hub_close(d->hub);
	worker_stop(d->worker);
	http_stop(d->http);
	api_free(d->api);
	watch_close(d->watch);
	hub_free(d->hub);
	health_free(d->health);
	store_unlock(d->lock);	/* after every handle on the file closed */
	free(d->deadline);
	free(d->rstate);
	signals_close(d->sfd);
	cfg_cleanup(&d->cfg);
}

/* Re-reads the configuration and swaps in its runs (SIGHUP). */
static void
reload(struct daemon *d)
{
	struct cfg		 n;
	struct cfg_run		*runs;
	struct spd_errbuf	 eb;
	enum cfg_cmd		 cmd;
	size_t			 i, nruns;

	if (cfg_init(&n, &eb) != SPD_OK ||
	    cfg_parse_args(&n, d->argc, d->argv, &cmd, &eb) != SPD_OK) {
		log_msg(LOG_ERR, "reload: %s (keeping the running "
		    "configuration)", eb.msg);
		cfg_cleanup(&n);
		return;
	}
	for (i = 0; i < d->cfg.nruns; i++)
		watch_remove_all(d->watch, (int)i);
	runs = d->cfg.runs;
	nruns = d->cfg.nruns;
	d->cfg.runs = n.runs;
	d->cfg.nruns = n.nruns;
	n.runs = runs;
	n.nruns = nruns;
	cfg_cleanup(&n);
	memset(d->deadline, 0, CFG_MAX_RUNS * sizeof *d->deadline);
	if (push_runs(d) != SPD_OK)
		log_msg(LOG_ERR, "reload: out of memory");
	watch_runs(d);
	log_msg(LOG_INFO, "reloaded: %zu runs", d->cfg.nruns);
}

/* Handles the pending signals; returns 1 when the daemon must stop. */
static int
on_signals(struct daemon *d)
{
	unsigned char sig;

	while (read(d->sfd, &sig, 1) == 1) {
		if (sig == FATAL_BYTE) {	/* logged by the worker */
			atomic_store(&d->ready, 0);
			d->status = 1;
			return 1;
		}
		if (sig == SIGHUP) {
			notify_send("RELOADING=1");
			reload(d);
			notify_send("READY=1");
		} else {
			log_msg(LOG_INFO, "signal %d: stopping", sig);
			return 1;
		}
	}
	return 0;
}

/*
 * Sends the runs whose settle time has passed to the worker; returns the
 * poll timeout until the next deadline (-1 = none).
 */
static int
fire_deadlines(struct daemon *d)
{
	struct spd_errbuf	eb;
	double			now = spd_now(), next = 0;
	size_t			i;

	for (i = 0; i < d->cfg.nruns; i++) {
		if (d->deadline[i] == 0)
			continue;
		if (d->deadline[i] <= now) {
			d->deadline[i] = 0;
			/* New subdirectories, or a run dir that came back. */
			if (watch_add(d->watch, (int)i, d->cfg.runs[i].dir,
			    &eb) != SPD_OK)
				log_debug("watch %s: %s", d->cfg.runs[i].dir,
				    eb.msg);
			worker_rescan(d->worker, d->cfg.runs[i].name);
		} else if (next == 0 || d->deadline[i] < next) {
			next = d->deadline[i];
		}
	}
	return next == 0 ? -1 : (int)ceil((next - now) * 1000);
}

/*
 * Once a second: heals the run watches and checks that the database path
 * still names the locked file. Returns 1 when the daemon must stop (the
 * file was deleted or replaced: whatever it would store next is lost, so
 * it exits non-zero and lets systemd start it afresh).
 */
static int
tick(struct daemon *d)
{
	struct spd_errbuf	eb;
	double			now = spd_now();
	size_t			i;

	if (now < d->next_tick)
		return 0;
	d->next_tick = now + TICK_SECONDS;
	for (i = 0; i < d->cfg.nruns; i++)
		heal_run(d, i);
	if (store_lock_check(d->lock, &eb) != SPD_ENOTFOUND)
		return 0;
	atomic_store(&d->ready, 0);
	health_set_db(d->health, HEALTH_DB_GONE, eb.msg);
	health_count_db_error(d->health, HEALTH_DB_GONE);
	log_msg(LOG_ERR, "database: %s: nothing more can be stored; stopping",
	    eb.msg);
	d->status = 1;
	return 1;
}

/* The poll timeout in ms: the next settle deadline or tick. */
static int
next_timeout(struct daemon *d, int deadline_ms)
{
	int t = (int)ceil((d->next_tick - spd_now()) * 1000);

	if (t < 0)
		t = 0;
	return deadline_ms >= 0 && deadline_ms < t ? deadline_ms : t;
}

/* The main loop: signals, inotify, settle timers. */
static void
loop(struct daemon *d)
{
	struct pollfd		 pfd[2];
	struct spd_errbuf	 eb;
	bool			 overflow;
	int			 timeout = 0;

	for (;;) {
		pfd[0].fd = d->sfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = watch_fd(d->watch);
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
			log_msg(LOG_ERR, "poll: %s", strerror(errno));
			return;
		}
		if ((pfd[0].revents & POLLIN) && on_signals(d))
			return;
		if (pfd[1].revents & POLLIN) {
			overflow = false;
			if (watch_read(d->watch, on_change, d, &overflow,
			    &eb) != SPD_OK)
				log_msg(LOG_WARNING, "inotify: %s", eb.msg);
			if (overflow) {
				log_msg(LOG_NOTICE, "inotify queue overflow: "
				    "rescanning every run");
				worker_rescan(d->worker, NULL);
			}
		}
		if (tick(d))
			return;
		timeout = next_timeout(d, fire_deadlines(d));
	}
}

/* Runs the daemon (see daemon.h). */
int
daemon_main(struct cfg *c, int argc, char **argv)
{
	struct daemon		d;
	struct spd_errbuf	eb;
	enum spd_err		rc;
	const char		*colon;

	memset(&d, 0, sizeof d);
	d.cfg = *c;
	memset(c, 0, sizeof *c);
	d.argc = argc;
	d.argv = argv;
	d.sfd = -1;
	log_init(d.cfg.log_level);
	eb.msg[0] = '\0';
	rc = startup(&d, &eb);
	if (rc != SPD_OK) {
		log_msg(LOG_ERR, "startup: %s: %s", spd_strerror(rc), eb.msg);
		teardown(&d);
		return 1;
	}
	colon = strrchr(d.cfg.listen, ':');
	log_msg(LOG_INFO, "spectrumd %s listening on http://%.*s:%u/ "
	    "(%zu runs)", PACKAGE_VERSION,
	    colon ? (int)(colon - d.cfg.listen) : 0, d.cfg.listen,
	    http_port(d.http), d.cfg.nruns);
	notify_send("READY=1");
	loop(&d);
	notify_send("STOPPING=1");
	teardown(&d);
	if (d.status != 0)
		log_msg(LOG_ERR, "stopped: exit status %d", d.status);
	else
		log_msg(LOG_INFO, "stopped");
	return d.status;
}
