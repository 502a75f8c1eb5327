/* Line-at-a-time logging to stderr. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "tern/log.h"

static _Atomic int log_level = TERN_LOG_INFO;

static const char *const level_names[] = {
	[TERN_LOG_ERROR] = "error",
	[TERN_LOG_WARN] = "warn",
	[TERN_LOG_INFO] = "info",
	[TERN_LOG_DEBUG] = "debug",
};

void tern_log_set_level(enum tern_log_level level)
{
	atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

enum tern_log_level tern_log_get_level(void)
{
	return (enum tern_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* Formats one line and writes it with one write(2): lines up to PIPE_BUF
 * are atomic on pipes, so concurrent workers never interleave. */
static void log_line(const char *tag, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, tag);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t ignored = write(STDERR_FILENO, line, len);
	(void)ignored; /* nowhere left to report a failing stderr */
}

void tern_log(enum tern_log_level level, const char *fmt, ...)
{
	if (!tern_log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	log_line(level_names[level], fmt, ap);
	va_end(ap);
}

void tern_log_access(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_line("access", fmt, ap);
	va_end(ap);
}
