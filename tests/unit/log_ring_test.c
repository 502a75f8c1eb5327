/* Unit tests for src/log_ring.c, the log's bounded line buffer: closed
 * and open, full (dropped and counted, never waited for), wrap-around at
 * every offset, whole lines out whatever the room, malformed lines, a
 * waiting consumer woken by a push and by close, and concurrent producers
 * against one consumer (run under ThreadSanitizer in CI: label tsan). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tern/log_ring.h"

static void test_closed_open(void)
{
	char storage[64];
	struct tern_log_ring r = TERN_LOG_RING_INIT(storage, sizeof(storage));
	char out[TERN_LOG_LINE_MAX];

	CHECK_EQ_INT(tern_log_ring_push(&r, "a\n", 2), -EPIPE);
	CHECK_EQ_UINT(tern_log_ring_dropped(&r), 0); /* written by the caller */
	tern_log_ring_open(&r);
	CHECK_EQ_INT(tern_log_ring_push(&r, "one\n", 4), 0);
	CHECK_EQ_INT(tern_log_ring_push(&r, "two\n", 4), 0);
	size_t n = tern_log_ring_take(&r, out, sizeof(out), false);
	CHECK(n == 8 && memcmp(out, "one\ntwo\n", 8) == 0);
	CHECK_EQ_UINT(tern_log_ring_take(&r, out, sizeof(out), false), 0);
	/* closed: what is in it still comes out, then 0 even with wait */
	CHECK_EQ_INT(tern_log_ring_push(&r, "three\n", 6), 0);
	tern_log_ring_close(&r);
	CHECK_EQ_INT(tern_log_ring_push(&r, "four\n", 5), -EPIPE);
	n = tern_log_ring_take(&r, out, sizeof(out), true);
	CHECK(n == 6 && memcmp(out, "three\n", 6) == 0);
	CHECK_EQ_UINT(tern_log_ring_take(&r, out, sizeof(out), true), 0);
}

/* Full: the line that does not fit is dropped whole and counted; a
 * shorter one that fits still goes in; taking makes room again. */
static void test_full(void)
{
	char storage[20];
	struct tern_log_ring r = TERN_LOG_RING_INIT(storage, sizeof(storage));
	char out[TERN_LOG_LINE_MAX];

	tern_log_ring_open(&r);
	CHECK_EQ_INT(tern_log_ring_push(&r, "0123456\n", 8), 0);
	CHECK_EQ_INT(tern_log_ring_push(&r, "abcdefg\n", 8), 0);
	CHECK_EQ_INT(tern_log_ring_push(&r, "ABCDEFG\n", 8), -ENOBUFS); /* 4 bytes left */
	CHECK_EQ_INT(tern_log_ring_push(&r, "xyzxyz\n", 7), -ENOBUFS);
	CHECK_EQ_UINT(tern_log_ring_dropped(&r), 2);
	CHECK_EQ_INT(tern_log_ring_push(&r, "xyz\n", 4), 0); /* exactly full */
	CHECK_EQ_INT(tern_log_ring_push(&r, "\n", 1), -ENOBUFS);
	CHECK_EQ_UINT(tern_log_ring_dropped(&r), 3);
	size_t n = tern_log_ring_take(&r, out, 10, false); /* room for one line */
	CHECK(n == 8 && memcmp(out, "0123456\n", 8) == 0);
	CHECK_EQ_INT(tern_log_ring_push(&r, "ABCDEFG\n", 8), 0); /* wraps */
	n = tern_log_ring_take(&r, out, sizeof(out), false);
	CHECK(n == 20 && memcmp(out, "abcdefg\nxyz\nABCDEFG\n", 20) == 0);
	CHECK_EQ_UINT(tern_log_ring_dropped(&r), 3);
	tern_log_ring_close(&r);
}

/* Lines of every length from every starting offset: they come out
 * whole and in order whichever way they straddle the end. The ring is
 * checked against a plain copy of what went in and was not dropped. */
static void test_wrap_around(void)
{
	char storage[37]; /* prime: lines start at every offset */
	struct tern_log_ring r = TERN_LOG_RING_INIT(storage, sizeof(storage));
	char line[40], out[TERN_LOG_LINE_MAX];
	char model[256];
	size_t model_len = 0;
	unsigned seq = 0, dropped = 0, taken = 0;

	tern_log_ring_open(&r);
	for (size_t len = 1; len <= 30; len++) {
		for (unsigned k = 0; k < 40; k++, seq++) {
			memset(line, 'a' + (char)(seq % 26), len - 1);
			line[len - 1] = '\n';
			int ret = tern_log_ring_push(&r, line, len);
			if (ret == 0) {
				memcpy(model + model_len, line, len);
				model_len += len;
			} else {
				CHECK_EQ_INT(ret, -ENOBUFS);
				CHECK(model_len + len > sizeof(storage));
				dropped++;
			}
			if (seq % 3 != 0)
				continue;
			/* room for one to three lines, or everything */
			size_t room = seq % 2 ? sizeof(out) : len * (1 + seq % 3);
			size_t n = tern_log_ring_take(&r, out, room, false);
			CHECK(n <= model_len && n <= room && memcmp(out, model, n) == 0);
			CHECK(n == 0 || out[n - 1] == '\n');
			memmove(model, model + n, model_len - n);
			model_len -= n;
			taken++;
		}
	}
	size_t n = tern_log_ring_take(&r, out, sizeof(out), false);
	CHECK(n == model_len && memcmp(out, model, n) == 0);
	CHECK_EQ_UINT(tern_log_ring_dropped(&r), dropped);
	CHECK(dropped > 0 && taken > 0);
	tern_log_ring_close(&r);
}

/* take never splits a line: with less room than the oldest line it
 * moves the lines that fit, and a line alone when out_cap is too small
 * for any (not by contract) comes out in pieces rather than never. */
static void test_whole_lines_out(void)
{
	char storage[100];
	struct tern_log_ring r = TERN_LOG_RING_INIT(storage, sizeof(storage));
	char out[TERN_LOG_LINE_MAX];

	tern_log_ring_open(&r);
	CHECK_EQ_INT(tern_log_ring_push(&r, "aaaa\n", 5), 0);
	CHECK_EQ_INT(tern_log_ring_push(&r, "bbbbbbbb\n", 9), 0);
	CHECK_EQ_UINT(tern_log_ring_take(&r, out, 13, false), 5);
	CHECK_EQ_UINT(tern_log_ring_take(&r, out, 9, false), 9);
	CHECK(memcmp(out, "bbbbbbbb\n", 9) == 0);
	CHECK_EQ_INT(tern_log_ring_push(&r, "cccccc\n", 7), 0);
	CHECK_EQ_UINT(tern_log_ring_take(&r, out, 4, false), 4);
	CHECK_EQ_UINT(tern_log_ring_take(&r, out, 4, false), 3);
	tern_log_ring_close(&r);
}

static void test_malformed(void)
{
	char storage[TERN_LOG_LINE_MAX * 2];
	struct tern_log_ring r = TERN_LOG_RING_INIT(storage, sizeof(storage));
	static char big[TERN_LOG_LINE_MAX + 1];

	tern_log_ring_open(&r);
	CHECK_EQ_INT(tern_log_ring_push(&r, "", 0), -EMSGSIZE);
	CHECK_EQ_INT(tern_log_ring_push(&r, "no newline", 10), -EMSGSIZE);
	memset(big, 'x', sizeof(big));
	big[TERN_LOG_LINE_MAX] = '\n';
	CHECK_EQ_INT(tern_log_ring_push(&r, big, sizeof(big)), -EMSGSIZE);
	big[TERN_LOG_LINE_MAX - 1] = '\n';
	CHECK_EQ_INT(tern_log_ring_push(&r, big, TERN_LOG_LINE_MAX), 0); /* the longest */
	CHECK_EQ_UINT(tern_log_ring_dropped(&r), 3);
	tern_log_ring_count_dropped(&r, 5);
	CHECK_EQ_UINT(tern_log_ring_dropped(&r), 8);
	tern_log_ring_close(&r);
}

/* ---- threads ---------------------------------------------------------- */

#define PRODUCERS 4
#define LINES_EACH 20000

struct consumer {
	struct tern_log_ring *ring;
	uint64_t got[PRODUCERS]; /* lines received from each */
	long last[PRODUCERS];    /* the last sequence number seen */
	bool bad;                /* a line not whole, or out of order */
	char bad_line[128];
};

/* A line of producer p, number seq: "p=<p> seq=<seq> <padding>\n", its
 * length varying with seq so that lines wrap at every offset. */
static size_t make_line(char *buf, size_t cap, unsigned p, unsigned seq)
{
	int n = snprintf(buf, cap, "p=%u seq=%u ", p, seq);
	size_t pad = seq % 53;
	memset(buf + n, '.', pad);
	buf[(size_t)n + pad] = '\n';
	return (size_t)n + pad + 1;
}

static void check_line(struct consumer *c, const char *line, size_t len)
{
	unsigned p, seq;
	char want[128];
	if (sscanf(line, "p=%u seq=%u ", &p, &seq) != 2 || p >= PRODUCERS ||
	    make_line(want, sizeof(want), p, seq) != len || memcmp(want, line, len) != 0 ||
	    (long)seq <= c->last[p]) {
		if (!c->bad)
			snprintf(c->bad_line, sizeof(c->bad_line), "%.*s", (int)(len < 100 ? len : 100), line);
		c->bad = true;
		return;
	}
	c->last[p] = (long)seq;
	c->got[p]++;
}

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;
	char out[TERN_LOG_LINE_MAX];
	size_t n;

	while ((n = tern_log_ring_take(c->ring, out, sizeof(out), true)) > 0) {
		if (out[n - 1] != '\n')
			c->bad = true;
		for (size_t at = 0; at < n;) {
			const char *nl = memchr(out + at, '\n', n - at);
			size_t len = nl ? (size_t)(nl - (out + at)) + 1 : n - at;
			check_line(c, out + at, len);
			at += len;
		}
	}
	return NULL;
}

struct producer {
	struct tern_log_ring *ring;
	unsigned index;
	uint64_t pushed, dropped;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	char line[128];

	for (unsigned seq = 0; seq < LINES_EACH; seq++) {
		size_t len = make_line(line, sizeof(line), p->index, seq);
		int ret = tern_log_ring_push(p->ring, line, len);
		if (ret == 0)
			p->pushed++;
		else if (ret == -ENOBUFS)
			p->dropped++;
		if (seq % 16 == 0)
			sched_yield(); /* let the consumer in now and then: fewer drops */
	}
	return NULL;
}

/* Producers push as fast as they can into a small ring while one
 * consumer takes: every line out is whole, each producer's in order,
 * and taken + dropped is everything pushed. A ring this small overflows
 * now and then (some drops) and wraps all the time. */
static void test_concurrent(size_t cap)
{
	char *storage = malloc(cap);
	struct tern_log_ring r = TERN_LOG_RING_INIT(storage, (uint32_t)cap);
	struct consumer c = {.ring = &r};
	struct producer p[PRODUCERS];
	pthread_t ct, pt[PRODUCERS];

	for (int i = 0; i < PRODUCERS; i++)
		c.last[i] = -1;
	tern_log_ring_open(&r);
	CHECK_EQ_INT(pthread_create(&ct, NULL, consumer_main, &c), 0);
	for (unsigned i = 0; i < PRODUCERS; i++) {
		p[i] = (struct producer){.ring = &r, .index = i};
		CHECK_EQ_INT(pthread_create(&pt[i], NULL, producer_main, &p[i]), 0);
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(pt[i], NULL);
	tern_log_ring_close(&r); /* the consumer takes the rest, then ends */
	pthread_join(ct, NULL);

	uint64_t dropped = 0;
	CHECK(!c.bad);
	if (c.bad)
		fprintf(stderr, "    bad line: %s\n", c.bad_line);
	for (int i = 0; i < PRODUCERS; i++) {
		CHECK_EQ_UINT(c.got[i], p[i].pushed);
		CHECK_EQ_UINT(p[i].pushed + p[i].dropped, LINES_EACH);
		dropped += p[i].dropped;
	}
	CHECK_EQ_UINT(tern_log_ring_dropped(&r), dropped);
	printf("log_ring concurrent, %zu bytes: %llu of %u lines dropped\n", cap,
	       (unsigned long long)dropped, PRODUCERS * LINES_EACH);
	free(storage);
}

/* A consumer asleep in take is woken by a push, and by close. */
struct waiter {
	struct tern_log_ring *ring;
	size_t n;
	char out[TERN_LOG_LINE_MAX];
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	w->n = tern_log_ring_take(w->ring, w->out, sizeof(w->out), true);
	return NULL;
}

static bool waiter_sleeping(struct tern_log_ring *r)
{
	pthread_mutex_lock(&r->mu);
	bool asleep = r->consumer_waiting;
	pthread_mutex_unlock(&r->mu);
	return asleep;
}

static void test_wakeups(void)
{
	char storage[64];
	struct tern_log_ring r = TERN_LOG_RING_INIT(storage, sizeof(storage));
	struct waiter w = {.ring = &r};
	pthread_t t;

	tern_log_ring_open(&r);
	CHECK_EQ_INT(pthread_create(&t, NULL, waiter_main, &w), 0);
	while (!waiter_sleeping(&r))
		sched_yield();
	CHECK_EQ_INT(tern_log_ring_push(&r, "wake\n", 5), 0);
	pthread_join(t, NULL);
	CHECK(w.n == 5 && memcmp(w.out, "wake\n", 5) == 0);

	w.n = 99;
	CHECK_EQ_INT(pthread_create(&t, NULL, waiter_main, &w), 0);
	while (!waiter_sleeping(&r))
		sched_yield();
	tern_log_ring_close(&r);
	pthread_join(t, NULL);
	CHECK_EQ_UINT(w.n, 0);
}

int main(void)
{
	test_closed_open();
	test_full();
	test_wrap_around();
	test_whole_lines_out();
	test_malformed();
	test_wakeups();
	test_concurrent(1000);
	test_concurrent(64 * 1024);
	return check_summary();
}
