/* Line-at-a-time logging to stderr, through a log thread once it runs
 * (log.h): a worker formats its line and hands it to a bounded buffer
 * (log_ring.h); the log thread does the blocking writes. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tern/clock.h"
#include "tern/log.h"
#include "tern/log_ring.h"

static _Atomic int log_level = TERN_LOG_INFO;

static const char *const level_names[] = {
	[TERN_LOG_ERROR] = "error",
	[TERN_LOG_WARN] = "warn",
	[TERN_LOG_INFO] = "info",
	[TERN_LOG_DEBUG] = "debug",
};

/* The buffer between the threads that log and the log thread: about 1300
 * access lines, or a second of a busy proxy's, on top of what the pipe
 * or socket under stderr holds. Static: it outlives a log thread that
 * could not be joined (tern_log_stop). */
static char ring_storage[TERN_LOG_BUFFER_SIZE];
static struct tern_log_ring ring = TERN_LOG_RING_INIT(ring_storage, sizeof(ring_storage));

/* The log thread, and the start/stop state; only the thread that calls
 * tern_log_start and tern_log_stop touches these two. */
static pthread_t log_thread;
static bool log_thread_running;
/* 0 while running; the CLOCK_MONOTONIC ms by which a stopping log thread
 * must be done writing, giving up on what is left. */
static _Atomic uint64_t flush_deadline_ms;
/* The log thread gave up on stderr (it failed, or took nothing until the
 * stop's deadline): lines after the stop are dropped and counted rather
 * than written directly, which could block the exit. */
static _Atomic bool stderr_stuck;

void tern_log_set_level(enum tern_log_level level)
{
	atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

enum tern_log_level tern_log_get_level(void)
{
	return (enum tern_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

uint64_t tern_log_dropped(void)
{
	return tern_log_ring_dropped(&ring);
}

/* Writes len bytes to stderr, blocking; gives up only on an error. */
static void write_direct(const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nowhere left to report a failing stderr */
		p += n;
		len -= (size_t)n;
	}
}

/* Formats one line, "<time> <tag> <message>\n", at most TERN_LOG_LINE_MAX
 * bytes (a longer message is cut), and hands it to the log thread, or
 * writes it with one write(2) while there is none (or when direct): a
 * line up to PIPE_BUF is atomic on a pipe, so concurrent threads never
 * interleave. */
static void log_line(const char *tag, bool direct, const char *fmt, va_list ap)
{
	char line[TERN_LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, tag);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 1)
		len = sizeof(line) - 1; /* the NUL's place takes the '\n' */
	line[len++] = '\n';
	if (direct) {
		write_direct(line, len);
		return;
	}
	if (tern_log_ring_push(&ring, line, len) != -EPIPE)
		return; /* taken, or dropped and counted: never waited for */
	if (atomic_load_explicit(&stderr_stuck, memory_order_relaxed)) {
		tern_log_ring_count_dropped(&ring, 1);
		return;
	}
	write_direct(line, len);
}

void tern_log(enum tern_log_level level, const char *fmt, ...)
{
	if (!tern_log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	log_line(level_names[level], false, fmt, ap);
	va_end(ap);
}

void tern_log_access(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_line("access", false, fmt, ap);
	va_end(ap);
}

void tern_log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_line(level_names[TERN_LOG_ERROR], true, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ log thread */

/* Waits until stderr takes bytes, in steps of POLL_MS so that a stop is
 * noticed. False once a stop's flush deadline passes first. A poll error
 * says yes: write(2) then tells what is wrong. */
#define POLL_MS 200
static bool wait_writable(void)
{
	for (;;) {
		int timeout = POLL_MS;
		uint64_t deadline = atomic_load_explicit(&flush_deadline_ms, memory_order_relaxed);
		if (deadline != 0) {
			uint64_t now = tern_clock_ms();
			if (now >= deadline)
				return false;
			if (deadline - now < POLL_MS)
				timeout = (int)(deadline - now);
		}
		struct pollfd p = {.fd = STDERR_FILENO, .events = POLLOUT};
		int r = poll(&p, 1, timeout);
		if (r > 0 || (r < 0 && errno != EINTR))
			return true;
	}
}

/* Writes a chunk of whole lines (at most PIPE_BUF bytes: after POLLOUT a
 * pipe takes it without blocking). False when stderr failed or the stop's
 * deadline passed. */
static bool write_chunk(const char *p, size_t len)
{
	while (len > 0) {
		if (!wait_writable())
			return false;
		ssize_t n = write(STDERR_FILENO, p, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue; /* EAGAIN: a non-blocking stderr, shared with the parent */
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static uint64_t count_lines(const char *p, size_t len)
{
	uint64_t n = 0;
	for (const char *end = p + len; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
		n++;
	return n;
}

static void *log_thread_main(void *arg)
{
	char chunk[TERN_LOG_LINE_MAX];
	bool failed = false;

	(void)arg;
	(void)pthread_setname_np(pthread_self(), "tern-log");
	for (;;) {
		size_t n = tern_log_ring_take(&ring, chunk, sizeof(chunk), true);
		if (n == 0)
			break; /* stopped, and everything taken */
		/* After a failure (stderr closed, or the stop's deadline) the
		 * rest is only counted, so the stop ends in bounded time. */
		if (failed || !write_chunk(chunk, n)) {
			failed = true;
			atomic_store_explicit(&stderr_stuck, true, memory_order_relaxed);
			tern_log_ring_count_dropped(&ring, count_lines(chunk, n));
		}
	}
	return NULL;
}

int tern_log_start(void)
{
	sigset_t all, old;

	if (log_thread_running)
		return 0;
	atomic_store_explicit(&flush_deadline_ms, 0, memory_order_relaxed);
	/* Open first: the thread ends when it finds the ring closed. */
	tern_log_ring_open(&ring);
	/* Every signal blocked: the main thread takes them synchronously. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int ret = -pthread_create(&log_thread, NULL, log_thread_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret < 0) {
		/* Lines pushed meanwhile are written here. */
		char chunk[TERN_LOG_LINE_MAX];
		size_t n;
		tern_log_ring_close(&ring);
		while ((n = tern_log_ring_take(&ring, chunk, sizeof(chunk), false)) > 0)
			write_direct(chunk, n);
		return ret;
	}
	log_thread_running = true;
	return 0;
}

void tern_log_stop(void)
{
	struct timespec until;

	if (!log_thread_running)
		return;
	atomic_store_explicit(&flush_deadline_ms, tern_clock_ms() + TERN_LOG_FLUSH_MS,
			      memory_order_relaxed);
	tern_log_ring_close(&ring); /* from here on, lines are written directly */
	/* The thread gives up at the deadline; a write(2) that blocks despite
	 * POLLOUT (a terminal stopped with ^S) gets a little longer, then the
	 * thread is left behind and the process exits without it. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += TERN_LOG_FLUSH_MS / 1000 + 1;
	if (pthread_timedjoin_np(log_thread, NULL, &until) != 0) {
		(void)pthread_detach(log_thread);
		atomic_store_explicit(&stderr_stuck, true, memory_order_relaxed);
	}
	log_thread_running = false;
}
