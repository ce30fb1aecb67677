/*
 * log.h: one logging call with syslog priorities, written to stderr: with
 * the "<N>" prefix journald understands when stderr is the journal
 * ($JOURNAL_STREAM), else plain. Thread-safe (one write per line).
 */
#ifndef SPECTRUMD_LOG_H
#define SPECTRUMD_LOG_H

#include <syslog.h>

/* Messages above this priority are dropped (default LOG_INFO). */
void	log_init(int max_prio);

void	log_msg(int prio, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
