/*
 * daemon.h: the long-running service: start-up in order, the main poll
 * loop (signals, inotify, settle timers), tear-down in reverse.
 */
#ifndef SPECTRUMD_DAEMON_H
#define SPECTRUMD_DAEMON_H

#include "spectrumd/cfg.h"

/*
 * Runs the daemon until SIGTERM/SIGINT with configuration c (taken over:
 * freed on return). argv is kept to re-read the configuration on SIGHUP.
 * Returns the process exit status: 0 after a clean stop, 1 when start-up
 * failed (e.g. another daemon holds the database's lock) or when the
 * database file was deleted or replaced while running (logged).
 */
int	daemon_main(struct cfg *c, int argc, char **argv);

#endif
