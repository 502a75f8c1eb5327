/* The process's own figures for the standard process_* metrics (SPEC
 * section 5), read as Prometheus' client libraries read them: proc(5)'s
 * /proc/self/stat (CPU time, memory, start time), /proc/stat (the boot
 * time the start time counts from), /proc/self/fd (open descriptors) and
 * getrlimit(RLIMIT_NOFILE) (the soft limit).
 *
 * Nothing here fails as a whole: a figure that cannot be read (a /proc
 * from another namespace, a sandbox that hides it) is marked unknown and
 * left out of the metrics rather than made up. Any thread; nothing is
 * kept between calls. */
#ifndef TERN_PROCESS_STATS_H
#define TERN_PROCESS_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tern_process_stats {
	bool have_stat;         /* the /proc/self/stat figures below are known */
	double cpu_seconds;     /* user and system CPU time, every thread */
	uint64_t resident_bytes;
	uint64_t virtual_bytes;
	bool have_start;        /* start_time_s is known (needs the boot time too) */
	double start_time_s;    /* seconds since the epoch */
	int64_t open_fds;       /* -1: unknown */
	int64_t max_fds;        /* the soft RLIMIT_NOFILE; -1: unknown or unlimited */
};

/* Reads every figure; what cannot be read is marked unknown. */
void tern_process_stats_read(struct tern_process_stats *out);

/* The pure part, for tests and fuzzing: parses len bytes of a
 * /proc/PID/stat line ("PID (COMM) STATE PPID ..."; COMM may hold spaces
 * and parentheses, so fields are counted from its last ')') into
 * cpu_seconds, resident_bytes, virtual_bytes (have_stat) and, when
 * boot_time_s is not 0, start_time_s (have_start). ticks_per_s is
 * sysconf(_SC_CLK_TCK), page_size sysconf(_SC_PAGESIZE). Returns 0, or
 * -EINVAL for text that is not such a line (nothing changed then). */
__attribute__((warn_unused_result))
int tern_process_stats_parse_stat(const char *text, size_t len, long ticks_per_s, long page_size,
				  uint64_t boot_time_s, struct tern_process_stats *out);

/* The "btime SECONDS" line of len bytes of /proc/stat: 0 with *out, or
 * -ENOENT when there is none. Pure. */
__attribute__((warn_unused_result))
int tern_process_stats_parse_btime(const char *text, size_t len, uint64_t *out);

#endif
