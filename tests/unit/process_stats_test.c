/* Unit tests for src/process_stats.c: the /proc/PID/stat and /proc/stat
 * parsers on fixed text (a COMM with spaces and parentheses, short and
 * malformed lines), then the real read of this process against what the
 * test reads itself. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "tern/process_stats.h"

/* A real line's shape (proc(5)): utime 250, stime 50, starttime 12345,
 * vsize 104857600, rss 2560 pages. */
#define STAT_TAIL                                                                              \
	" S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 3 0 12345 104857600 2560 "   \
	"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"

static int parse(const char *text, uint64_t boot, struct tern_process_stats *out)
{
	*out = (struct tern_process_stats){.open_fds = -1, .max_fds = -1};
	return tern_process_stats_parse_stat(text, strlen(text), 100, 4096, boot, out);
}

static void test_parse_stat(void)
{
	struct tern_process_stats s;

	CHECK_EQ_INT(parse("4242 (tern)" STAT_TAIL, 1700000000, &s), 0);
	CHECK(s.have_stat && s.have_start);
	CHECK(s.cpu_seconds > 2.999 && s.cpu_seconds < 3.001);
	CHECK_EQ_UINT(s.virtual_bytes, 104857600);
	CHECK_EQ_UINT(s.resident_bytes, 2560u * 4096u);
	CHECK(s.start_time_s > 1700000123.449 && s.start_time_s < 1700000123.451);

	/* COMM is whatever the process named itself: spaces, parentheses,
	 * digits; fields count from its last ')'. */
	CHECK_EQ_INT(parse("4242 (a) b (c) 1 2 3)" STAT_TAIL, 1700000000, &s), 0);
	CHECK_EQ_UINT(s.virtual_bytes, 104857600);
	CHECK(s.cpu_seconds > 2.999 && s.cpu_seconds < 3.001);

	/* No boot time: the start time stays unknown, the rest is known. */
	CHECK_EQ_INT(parse("4242 (tern)" STAT_TAIL, 0, &s), 0);
	CHECK(s.have_stat && !s.have_start);

	/* Not such a line: refused, nothing set. */
	static const char *const bad[] = {
		"",
		"4242 tern S 1",
		"4242 (tern) S 1 4242",                              /* cut short */
		"4242 (tern) S 1 4242 4242 0 -1 4194560 1000 0 0 0 x 50", /* a letter in utime */
		"4242 (tern) S 1 4242 4242 0 -1 4194560 1000 0 0 0 -250 50 0 0 20 0 3 0 1 2 3 4",
		"4242 (tern) S 1 4242 4242 0 -1 4194560 1000 0 0 0 99999999999999999999 50 0 0 20 0 3 "
		"0 1 2 3 4",                                         /* overflows */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(parse(bad[i], 1700000000, &s), -EINVAL);
		CHECK(!s.have_stat && !s.have_start);
	}
	CHECK_EQ_INT(tern_process_stats_parse_stat("4242 (t)" STAT_TAIL, 20, 0, 4096, 1, &s), -EINVAL);
}

static void test_parse_btime(void)
{
	static const char text[] = "cpu  1 2 3\ncpu0 1 2 3\nintr 1 2 3 4\nctxt 99\n"
				   "btime 1733450000\nprocesses 7\n";
	uint64_t t = 0;

	CHECK_EQ_INT(tern_process_stats_parse_btime(text, strlen(text), &t), 0);
	CHECK_EQ_UINT(t, 1733450000);
	static const char bad[] = "xbtime 5\nbtime x\nbtime \n";
	CHECK_EQ_INT(tern_process_stats_parse_btime("btime 5", 7, &t), 0); /* no newline */
	CHECK_EQ_UINT(t, 5);
	CHECK_EQ_INT(tern_process_stats_parse_btime(bad, strlen(bad), &t), -ENOENT);
	CHECK_EQ_INT(tern_process_stats_parse_btime("", 0, &t), -ENOENT);
}

/* This process, read for real: plausible against what the test sees. */
static void test_read(void)
{
	struct tern_process_stats s;
	struct rlimit rl;

	tern_process_stats_read(&s);
	CHECK(s.have_stat && s.have_start);
	CHECK(s.resident_bytes > 0);
	CHECK(s.virtual_bytes >= s.resident_bytes);
	CHECK(s.cpu_seconds >= 0);
	double now = (double)time(NULL);
	CHECK(s.start_time_s <= now + 1 && s.start_time_s > now - 600);
	/* stdin, stdout, stderr at least; one more opened, one more seen. */
	int64_t before = s.open_fds;
	CHECK(before >= 3);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	tern_process_stats_read(&s);
	CHECK_EQ_INT(s.open_fds, before + 1);
	close(fd);
	CHECK_EQ_INT(getrlimit(RLIMIT_NOFILE, &rl), 0);
	CHECK_EQ_INT(s.max_fds, (long long)rl.rlim_cur);
	/* A lowered soft limit shows at once. */
	struct rlimit lower = {.rlim_cur = rl.rlim_cur > 200 ? 200 : rl.rlim_cur, .rlim_max = rl.rlim_max};
	CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &lower), 0);
	tern_process_stats_read(&s);
	CHECK_EQ_INT(s.max_fds, (long long)lower.rlim_cur);
	CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

int main(void)
{
	test_parse_stat();
	test_parse_btime();
	test_read();
	return check_summary();
}
