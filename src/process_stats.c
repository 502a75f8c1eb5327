/* The process's own figures for the process_* metrics (process_stats.h),
 * read from /proc the way Prometheus' Go and Python clients read them, so
 * the values mean the same as every other exporter's. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tern/parse.h"
#include "tern/process_stats.h"

/* /proc/self/stat is one line of about 300 bytes (COMM is at most 16). */
#define STAT_MAX 4096

/* proc(5): fields counted from 1, the state being field 3, the first
 * after COMM's ')'. */
#define FIELD_UTIME 14
#define FIELD_STIME 15
#define FIELD_STARTTIME 22
#define FIELD_VSIZE 23
#define FIELD_RSS 24

int tern_process_stats_parse_stat(const char *text, size_t len, long ticks_per_s, long page_size,
				  uint64_t boot_time_s, struct tern_process_stats *out)
{
	uint64_t utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
	const char *p = NULL;

	if (ticks_per_s <= 0 || page_size <= 0)
		return -EINVAL;
	for (size_t i = len; i > 0; i--) {
		if (text[i - 1] == ')') {
			p = text + i;
			break;
		}
	}
	if (!p)
		return -EINVAL;
	const char *end = text + len;
	unsigned field = 2; /* COMM */
	unsigned found = 0;
	while (p < end && found < 5) {
		while (p < end && (*p == ' ' || *p == '\n'))
			p++;
		if (p == end)
			break;
		const char *tok = p;
		while (p < end && *p != ' ' && *p != '\n')
			p++;
		size_t tok_len = (size_t)(p - tok);
		uint64_t *dst = NULL;
		switch (++field) {
		case FIELD_UTIME: dst = &utime; break;
		case FIELD_STIME: dst = &stime; break;
		case FIELD_STARTTIME: dst = &start; break;
		case FIELD_VSIZE: dst = &vsize; break;
		case FIELD_RSS: dst = &rss; break;
		default: break;
		}
		if (!dst)
			continue;
		if (!tern_parse_u64(tok, tok_len, dst))
			return -EINVAL;
		found++;
	}
	if (found < 5)
		return -EINVAL;
	out->have_stat = true;
	out->cpu_seconds = (double)(utime + stime) / (double)ticks_per_s;
	out->virtual_bytes = vsize;
	out->resident_bytes = rss * (uint64_t)page_size;
	if (boot_time_s != 0) {
		out->have_start = true;
		out->start_time_s = (double)boot_time_s + (double)start / (double)ticks_per_s;
	}
	return 0;
}

int tern_process_stats_parse_btime(const char *text, size_t len, uint64_t *out)
{
	static const char key[] = "btime ";
	size_t key_len = sizeof(key) - 1;

	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t line_len = nl ? (size_t)(nl - (text + pos)) : len - pos;
		if (line_len > key_len && memcmp(text + pos, key, key_len) == 0 &&
		    tern_parse_u64(text + pos + key_len, line_len - key_len, out))
			return 0;
		pos += line_len + 1;
	}
	return -ENOENT;
}

/* The boot time never changes while the process runs: read once. 0 until
 * read, and after a failed read (tried again next time). Relaxed: the
 * value is all a reader takes from it. */
static _Atomic uint64_t boot_time_cache;

static uint64_t boot_time(void)
{
	uint64_t t = atomic_load_explicit(&boot_time_cache, memory_order_relaxed);
	char *line = NULL;
	size_t cap = 0;

	if (t != 0)
		return t;
	/* Line by line: the "intr" line before btime can be long on a big
	 * machine. */
	FILE *f = fopen("/proc/stat", "re");
	if (!f)
		return 0;
	for (ssize_t n; (n = getline(&line, &cap, f)) > 0;) {
		if (tern_process_stats_parse_btime(line, (size_t)n, &t) == 0)
			break;
	}
	free(line);
	fclose(f);
	atomic_store_explicit(&boot_time_cache, t, memory_order_relaxed);
	return t;
}

static void read_stat(struct tern_process_stats *out)
{
	char buf[STAT_MAX];
	ssize_t n = -1;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	do
		n = read(fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return;
	/* A line that does not parse leaves the figures unknown. */
	if (tern_process_stats_parse_stat(buf, (size_t)n, sysconf(_SC_CLK_TCK),
					  sysconf(_SC_PAGESIZE), boot_time(), out) < 0)
		out->have_stat = out->have_start = false;
}

/* Entries of /proc/self/fd, but the one the listing itself opened. */
static int64_t count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int64_t n = 0;

	if (!d)
		return -1;
	int own = dirfd(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		uint64_t fd;
		if (tern_parse_u64(e->d_name, strlen(e->d_name), &fd) && fd != (uint64_t)own)
			n++;
	}
	closedir(d);
	return n;
}

void tern_process_stats_read(struct tern_process_stats *out)
{
	struct rlimit rl;

	*out = (struct tern_process_stats){.open_fds = -1, .max_fds = -1};
	read_stat(out);
	out->open_fds = count_fds();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur <= INT64_MAX)
		out->max_fds = (int64_t)rl.rlim_cur;
}
