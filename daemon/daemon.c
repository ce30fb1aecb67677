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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spectrumd/analyze.h"
#include "spectrumd/api.h"
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
	volatile int		 ready;
	char			 backend[16];
};

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
	size_t			 i;
	enum spd_err		 rc;

	v = calloc(d->cfg.nruns ? d->cfg.nruns : 1, sizeof *v);
	if (v == NULL)
		return SPD_ENOMEM;
	for (i = 0; i < d->cfg.nruns; i++) {
		v[i].name = d->cfg.runs[i].name;
		v[i].dir = d->cfg.runs[i].dir;
	}
	rc = worker_set_runs(d->worker, v, d->cfg.nruns);
	free(v);
	return rc;
}

/* Adds the inotify watches of every run; a missing dir is a warning. */
static void
watch_runs(struct daemon *d)
{
	struct spd_errbuf	eb;
	size_t			i;

	for (i = 0; i < d->cfg.nruns; i++)
		if (watch_add(d->watch, (int)i, d->cfg.runs[i].dir, &eb) !=
		    SPD_OK)
			log_msg(LOG_WARNING, "run %s: not watched: %s",
			    d->cfg.runs[i].name, eb.msg);
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

	if ((rc = store_open(d->cfg.db, STORE_RW, &st, eb)) != SPD_OK)
		return rc;
	if ((rc = store_reset_interrupted(st, eb)) != SPD_OK) {
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
	wc.backfill = d->cfg.backfill;
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
	a->group_experts = d->cfg.group_experts;
	a->api_token = d->cfg.api_token;
	a->web_dir = d->cfg.web_dir;
	a->version = PACKAGE_VERSION;
	a->rescan = on_rescan;
	a->rescan_arg = d;
	a->ready = &d->ready;
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
	d->hub = hub_new(1024);
	if (d->deadline == NULL || d->hub == NULL)
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
	d->ready = 1;
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
	free(d->deadline);
	signals_close(d->sfd);
	cfg_cleanup(&d->cfg);
}

/* inotify callback: (re)arms the settle timer of run tag. */
static void
on_change(void *arg, int tag)
{
	struct daemon *d = arg;

	if (tag >= 0 && (size_t)tag < d->cfg.nruns)
		d->deadline[tag] = spd_now() + d->cfg.settle_ms / 1000.0;
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

/* The main loop: signals, inotify, settle timers. */
static void
loop(struct daemon *d)
{
	struct pollfd		 pfd[2];
	struct spd_errbuf	 eb;
	bool			 overflow;
	int			 timeout = -1;

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
		timeout = fire_deadlines(d);
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
	log_msg(LOG_INFO, "stopped");
	return 0;
}
