/*
 * log.c: stderr logging. Under systemd (stderr is the journal stream named
 * by $JOURNAL_STREAM) each line starts with the "<N>" priority prefix
 * journald reads; on a terminal or in a file the line is plain, with the
 * priority spelt out for warnings and worse.
 */
#include "config.h"

#include <sys/stat.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "spectrumd/log.h"

static int		log_max = LOG_INFO;
static bool		log_journal;
static pthread_once_t	log_once = PTHREAD_ONCE_INIT;

/* Sets log_journal: is stderr the journal stream "DEV:INO" of systemd? */
static void
log_detect(void)
{
	const char		*js = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 st;

	log_journal = js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/* Sets the highest priority that is written. */
void
log_init(int max_prio)
{
	log_max = max_prio;
}

/* The line's start: "<N>" for journald, else a word for bad news. */
static const char *
log_prefix(int prio, char *buf, size_t size)
{
	static const char *const words[] = {
		"emergency: ", "alert: ", "critical: ", "error: ", "warning: "
	};

	pthread_once(&log_once, log_detect);
	if (log_journal) {
		snprintf(buf, size, "<%d>", prio);
		return buf;
	}
	return prio >= 0 && prio <= LOG_WARNING ? words[prio] : "";
}

/* Writes one line to stderr in a single write(2). */
void
log_msg(int prio, const char *fmt, ...)
{
	char	buf[1024], pfx[8];
	va_list	ap;
	int	n, m;

	if (prio > log_max)
		return;
	n = snprintf(buf, sizeof buf, "%s", log_prefix(prio, pfx, sizeof pfx));
	va_start(ap, fmt);
	m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		return;
}
