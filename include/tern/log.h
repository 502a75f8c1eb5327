/* Logging: one line per call on stderr, "<UTC time> <level> <message>".
 * Safe from any thread, and never blocks one on a slow stderr.
 *
 * Between tern_log_start and tern_log_stop, a line goes into a bounded
 * buffer (log_ring.h) and a log thread writes it; when the buffer is full
 * the line is dropped and counted (tern_log_dropped), never waited for.
 * Before the log thread starts and after it stops (start-up, --check,
 * `tern ctl`, unit tests), lines are written directly, one write(2) each,
 * so lines from different threads never interleave either way. */
#ifndef TERN_LOG_H
#define TERN_LOG_H

#include <stdint.h>

enum tern_log_level {
	TERN_LOG_ERROR = 0,
	TERN_LOG_WARN = 1,
	TERN_LOG_INFO = 2,
	TERN_LOG_DEBUG = 3,
};

/* Bytes of lines the buffer holds while stderr is slow. */
#define TERN_LOG_BUFFER_SIZE (256u * 1024u)
/* How long tern_log_stop lets the log thread write what is buffered. */
#define TERN_LOG_FLUSH_MS 2000u

/* Sets the most verbose level printed; call before starting threads. */
void tern_log_set_level(enum tern_log_level level);
enum tern_log_level tern_log_get_level(void);

/* Writes "<ISO time> <level> <message>\n" when level is enabled. A
 * message that makes the line longer than 4096 bytes is cut. */
void tern_log(enum tern_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Writes "<ISO time> access <message>\n" regardless of level. */
void tern_log_access(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes "<ISO time> error <message>\n" directly, blocking if it must,
 * lines in the buffer or not: for the last words before abort(), which
 * the log thread would never get to write. */
void tern_log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Starts the log thread; lines go through the buffer from now on.
 * Returns 0 (also when it runs already) or -errno, and lines are then
 * still written directly. Main thread, once, before or after other
 * threads start. */
__attribute__((warn_unused_result))
int tern_log_start(void);

/* Stops taking lines into the buffer (they are written directly again),
 * lets the log thread write what is buffered for at most
 * TERN_LOG_FLUSH_MS, and joins it. If stderr took nothing until then, the
 * rest is dropped and counted, and so are lines logged afterwards: the
 * exit is never held up by stderr. The thread that called tern_log_start. */
void tern_log_stop(void);

/* Lines dropped so far (buffer full, or stderr unwritable): the
 * tern_log_dropped_total metric and `stats`' log_dropped. Any thread. */
uint64_t tern_log_dropped(void);

#define tern_log_enabled(level) ((level) <= tern_log_get_level())

#endif
