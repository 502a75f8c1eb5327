/* Unit tests for src/log.c with stderr on a pipe: the line format written
 * directly before the log thread runs, lines through the log thread, a
 * message cut at 4096 bytes, a stderr nobody reads (logging returns at
 * once, lines are dropped and counted, and what arrives once the reader
 * reads is whole lines), last words written at once, a stop that
 * flushes, and a stop against a stderr that takes nothing, which gives up
 * within its bound. The checks run with stderr restored, since check.h
 * reports there. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "tern/clock.h"
#include "tern/log.h"
#include "tern/log_ring.h"

static int saved_stderr = -1;
static int pipe_r = -1;

/* stderr becomes a pipe's write end; the test reads the other end. */
static void stderr_to_pipe(void)
{
	int fds[2];
	if (pipe(fds) < 0)
		abort();
	saved_stderr = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	close(fds[1]);
	pipe_r = fds[0];
}

static void stderr_restore(void)
{
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	close(pipe_r);
	pipe_r = -1;
}

/* What the pipe holds now, appended to buf (NUL-terminated); waits up to
 * wait_ms for the first byte. */
static size_t read_pipe(char *buf, size_t len, size_t cap, int wait_ms)
{
	struct pollfd p = {.fd = pipe_r, .events = POLLIN};
	while (len + 1 < cap && poll(&p, 1, wait_ms) > 0) {
		ssize_t n = read(pipe_r, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		wait_ms = 0;
	}
	buf[len] = '\0';
	return len;
}

static unsigned count_char(const char *s, size_t len, char c)
{
	unsigned n = 0;
	for (size_t i = 0; i < len; i++)
		n += s[i] == c;
	return n;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ <tag> <message>" */
static bool line_is(const char *line, size_t len, const char *tag, const char *message)
{
	char want[256];
	snprintf(want, sizeof(want), " %s %s\n", tag, message);
	size_t wl = strlen(want);
	return len == 24 + wl && line[4] == '-' && line[10] == 'T' && line[19] == '.' &&
	       line[23] == 'Z' && memcmp(line + 24, want, wl) == 0;
}

static void test_direct_then_thread(void)
{
	static char buf[16384];
	size_t len;

	stderr_to_pipe();
	tern_log(TERN_LOG_INFO, "before the thread %d", 1);
	tern_log(TERN_LOG_DEBUG, "not at level info");
	len = read_pipe(buf, 0, sizeof(buf), 0); /* direct: there already */
	bool direct_ok = line_is(buf, len, "info", "before the thread 1");

	int started = tern_log_start();
	tern_log(TERN_LOG_WARN, "through the thread");
	tern_log_access("id=1 reason=done");
	static char long_msg[5000];
	memset(long_msg, 'm', sizeof(long_msg) - 1);
	tern_log(TERN_LOG_ERROR, "%s", long_msg);
	len = 0;
	uint64_t deadline = tern_clock_ms() + 5000;
	while (count_char(buf, len, '\n') < 3 && tern_clock_ms() < deadline)
		len = read_pipe(buf, len, sizeof(buf), 100);
	bool thread_ok = count_char(buf, len, '\n') == 3;
	char *second = memchr(buf, '\n', len);
	char *third = second ? memchr(second + 1, '\n', len - (size_t)(second + 1 - buf)) : NULL;
	bool first_ok = second && line_is(buf, (size_t)(second + 1 - buf), "warn", "through the thread");
	bool access_ok = third && line_is(second + 1, (size_t)(third - second), "access", "id=1 reason=done");
	size_t cut_len = third ? len - (size_t)(third + 1 - buf) : 0;
	/* last words before abort(): written before tern_log_fatal returns */
	static char fatal[256];
	tern_log_fatal("last words %d", 7);
	size_t fatal_len = read_pipe(fatal, 0, sizeof(fatal), 0);
	bool fatal_ok = line_is(fatal, fatal_len, "error", "last words 7");
	stderr_restore();

	CHECK(direct_ok);
	CHECK_EQ_INT(started, 0);
	CHECK(thread_ok);
	CHECK(first_ok);
	CHECK(access_ok);
	/* cut: 4095 bytes and the newline */
	CHECK_EQ_UINT(cut_len, TERN_LOG_LINE_MAX);
	CHECK(third && third[cut_len] == '\n' && memcmp(third + 1 + 24, " error mmm", 10) == 0);
	CHECK(fatal_ok);
}

/* Nobody reads: every call returns at once (the buffer fills, then lines
 * are dropped and counted); once the reader reads, what arrives is whole
 * lines, and arrived + dropped is what was logged. */
static void test_stalled_reader(void)
{
	static char buf[2 * 1024 * 1024];
	char msg[1000];
	const unsigned lines = 2000; /* ~2 MB: more than the pipe and the buffer hold */
	uint64_t slowest_us = 0;

	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	stderr_to_pipe();
	uint64_t dropped_before = tern_log_dropped();
	for (unsigned i = 0; i < lines; i++) {
		uint64_t t0 = tern_clock_us();
		tern_log(TERN_LOG_INFO, "stalled %05u %s", i, msg);
		uint64_t took = tern_clock_us() - t0;
		if (took > slowest_us)
			slowest_us = took;
	}
	uint64_t dropped = tern_log_dropped() - dropped_before;
	size_t len = 0;
	uint64_t deadline = tern_clock_ms() + 10000;
	while (count_char(buf, len, '\n') + dropped < lines && tern_clock_ms() < deadline)
		len = read_pipe(buf, len, sizeof(buf), 100);
	unsigned arrived = count_char(buf, len, '\n');
	bool whole = true;
	long last = -1;
	for (char *p = buf; p < buf + len;) {
		char *nl = memchr(p, '\n', (size_t)(buf + len - p));
		unsigned seq;
		const char *at = strstr(p, " info stalled ");
		if (!nl || (size_t)(nl - p) != 24 + 14 + 6 + 999 || at != p + 24 ||
		    sscanf(at + 14, "%u", &seq) != 1 || (long)seq <= last) {
			whole = false;
			break;
		}
		last = seq;
		p = nl + 1;
	}
	stderr_restore();

	CHECK(dropped > 0);
	CHECK_EQ_UINT(arrived + dropped, lines);
	CHECK(whole);
	/* never waited for stderr: a call is a memcpy, not a 64 KiB pipe's
	 * worth of waiting (a generous bound for a loaded CI machine) */
	CHECK(slowest_us < 500000);
	printf("log stalled reader: %u arrived, %llu dropped, slowest call %llu us\n", arrived,
	       (unsigned long long)dropped, (unsigned long long)slowest_us);
}

/* A stop writes what is buffered; after it, lines go directly. */
static void test_stop_flushes(void)
{
	static char buf[65536];

	stderr_to_pipe();
	for (int i = 0; i < 50; i++)
		tern_log(TERN_LOG_INFO, "before stop %d", i);
	tern_log_stop();
	size_t len = read_pipe(buf, 0, sizeof(buf), 0); /* all there once stop returns */
	unsigned n_before = count_char(buf, len, '\n');
	tern_log(TERN_LOG_INFO, "after stop");
	size_t len2 = read_pipe(buf, len, sizeof(buf), 0);
	bool after_ok = line_is(buf + len, len2 - len, "info", "after stop");
	stderr_restore();

	CHECK_EQ_UINT(n_before, 50);
	CHECK(after_ok);
}

/* A stderr that takes nothing at all: the stop gives up within its
 * bound, counting what it could not write, and so are lines after it. */
static void test_stop_stalled(void)
{
	char msg[2000];

	memset(msg, 'y', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	stderr_to_pipe();
	int started = tern_log_start();
	for (int i = 0; i < 200; i++) /* 400 KB: the pipe and the buffer full */
		tern_log(TERN_LOG_INFO, "%s", msg);
	uint64_t dropped_before = tern_log_dropped();
	uint64_t t0 = tern_clock_ms();
	tern_log_stop();
	uint64_t took = tern_clock_ms() - t0;
	uint64_t dropped_by_stop = tern_log_dropped() - dropped_before;
	uint64_t t1 = tern_clock_us();
	tern_log(TERN_LOG_INFO, "after a stuck stop");
	uint64_t after_us = tern_clock_us() - t1;
	uint64_t dropped_after = tern_log_dropped() - dropped_before - dropped_by_stop;
	stderr_restore();

	CHECK_EQ_INT(started, 0);
	CHECK(took >= TERN_LOG_FLUSH_MS - 50 && took < TERN_LOG_FLUSH_MS + 1500);
	CHECK(dropped_by_stop > 0);
	CHECK_EQ_UINT(dropped_after, 1);
	CHECK(after_us < 500000);
}

int main(void)
{
	tern_log_set_level(TERN_LOG_INFO);
	test_direct_then_thread();
	test_stalled_reader();
	test_stop_flushes();
	test_stop_stalled();
	return check_summary();
}
