/* log.c: stderr logging with journald priority prefixes. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "spectrumd/log.h"

static int log_max = LOG_INFO;

/* Sets the highest priority that is written. */
void
log_init(int max_prio)
{
	log_max = max_prio;
}

/* Writes one line "<prio>message\n" to stderr in a single write(2). */
void
log_msg(int prio, const char *fmt, ...)
{
	char	buf[1024];
	va_list	ap;
	int	n, m;

	if (prio > log_max)
		return;
	n = snprintf(buf, sizeof buf, "<%d>", prio);
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
