/* Logging: one line per call on stderr, written with a single write(2) so
 * lines from different threads never interleave. Safe from any thread. */
#ifndef TERN_LOG_H
#define TERN_LOG_H

enum tern_log_level {
	TERN_LOG_ERROR = 0,
	TERN_LOG_WARN = 1,
	TERN_LOG_INFO = 2,
	TERN_LOG_DEBUG = 3,
};

/* Sets the most verbose level printed; call before starting threads. */
void tern_log_set_level(enum tern_log_level level);
enum tern_log_level tern_log_get_level(void);

/* Writes "<ISO time> <level> <message>\n" when level is enabled. */
void tern_log(enum tern_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Writes "<ISO time> access <message>\n" regardless of level. */
void tern_log_access(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define tern_log_enabled(level) ((level) <= tern_log_get_level())

#endif
