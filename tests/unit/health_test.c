/* Health (src/health.c): the verdict as a pure function of the workers'
 * answer times, the clock, the bound and the drain (every status and
 * body it gives, and which worker it names), then the round trip itself
 * on a real one-worker server, on io_uring and (`health_test epoll`) on
 * epoll: not ready before the first ping, answered through the queue,
 * ready after, one round per TERN_HEALTH_PING_MS, "draining" once a drain
 * began. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "server_fixture.h"
#include "tern/clock.h"
#include "tern/health.h"
#include "tern/server.h"
#include "tern/worker.h"

#define NOW 1000000u
#define BOUND 3000u

/* Judges answered[0..n) at NOW against BOUND; the body goes to out. */
static int judge(const uint64_t *answered, unsigned n, uint64_t since, bool draining,
		 enum tern_health_probe probe, char *out, size_t out_len)
{
	struct tern_health_input in = {
		.answered_ms = answered,
		.num_workers = n,
		.since_ms = since,
		.now_ms = NOW,
		.bound_ms = BOUND,
		.draining = draining,
		.probe = probe,
	};
	return tern_health_judge(&in, out, out_len);
}

/* Both probes give status and body. */
static void check_both(const uint64_t *answered, unsigned n, uint64_t since, int status,
		       const char *body)
{
	char out[128];
	CHECK_EQ_INT(judge(answered, n, since, false, TERN_HEALTH_LIVE, out, sizeof(out)), status);
	CHECK_EQ_STR(out, body);
	CHECK_EQ_INT(judge(answered, n, since, false, TERN_HEALTH_READY, out, sizeof(out)), status);
	CHECK_EQ_STR(out, body);
}

static void test_every_worker_answered(void)
{
	uint64_t fresh[3] = {NOW - 10, NOW - 900, NOW};
	check_both(fresh, 3, NOW - 5000, 200, "ok\n");
	/* Exactly the bound is still in time; a millisecond more is not. */
	uint64_t edge[2] = {NOW - BOUND, NOW - 1};
	check_both(edge, 2, NOW - 5000, 200, "ok\n");
	edge[0] = NOW - BOUND - 1;
	check_both(edge, 2, NOW - 5000, 503, "worker 0 has not answered for 3.0s\n");
	/* An answer stamped after the judge read its clock (another
	 * thread's reading) is fresh, not 584 million years old. */
	uint64_t future[1] = {NOW + 5};
	check_both(future, 1, NOW - 5000, 200, "ok\n");
}

static void test_wedged_worker_is_named(void)
{
	uint64_t one[2] = {NOW - 100, NOW - 4200};
	check_both(one, 2, NOW - 60000, 503, "worker 1 has not answered for 4.2s\n");
	/* Of several late ones, the one that waited longest. */
	uint64_t several[4] = {NOW - 3500, NOW - 20, NOW - 61999, NOW - 4000};
	check_both(several, 4, NOW - 90000, 503, "worker 2 has not answered for 61.9s\n");
}

static void test_never_answered(void)
{
	char out[128];
	uint64_t answered[3] = {NOW - 10, 0, 0};

	/* Before the first round nothing can be late yet: alive, not ready
	 * (the first worker that has not answered is named). */
	CHECK_EQ_INT(judge(answered, 3, 0, false, TERN_HEALTH_LIVE, out, sizeof(out)), 200);
	CHECK_EQ_STR(out, "ok\n");
	CHECK_EQ_INT(judge(answered, 3, 0, false, TERN_HEALTH_READY, out, sizeof(out)), 503);
	CHECK_EQ_STR(out, "worker 1 has not answered yet\n");
	/* Within the bound of the first round: the same. */
	CHECK_EQ_INT(judge(answered, 3, NOW - 2000, false, TERN_HEALTH_LIVE, out, sizeof(out)),
		     200);
	CHECK_EQ_INT(judge(answered, 3, NOW - 2000, false, TERN_HEALTH_READY, out, sizeof(out)),
		     503);
	CHECK_EQ_STR(out, "worker 1 has not answered yet\n");
	/* A worker silent since a round more than the bound ago is wedged,
	 * for both probes: it never started serving. */
	check_both(answered, 3, NOW - 3500, 503, "worker 1 has not answered for 3.5s\n");
}

static void test_draining_wins(void)
{
	char out[128];
	uint64_t fresh[2] = {NOW, NOW};
	uint64_t wedged[2] = {NOW, NOW - 10000};

	for (int probe = TERN_HEALTH_LIVE; probe <= TERN_HEALTH_READY; probe++) {
		CHECK_EQ_INT(judge(fresh, 2, NOW - 5000, true, probe, out, sizeof(out)), 503);
		CHECK_EQ_STR(out, "draining\n");
		CHECK_EQ_INT(judge(wedged, 2, NOW - 50000, true, probe, out, sizeof(out)), 503);
		CHECK_EQ_STR(out, "draining\n");
	}
}

static void test_small_buffer(void)
{
	char out[8];
	uint64_t wedged[1] = {NOW - 10000};
	/* Cut, NUL-terminated, and the status unchanged. */
	CHECK_EQ_INT(judge(wedged, 1, NOW - 50000, false, TERN_HEALTH_LIVE, out, sizeof(out)), 503);
	CHECK_EQ_STR(out, "worker ");
}

/* Waits (at most 5 s) until worker 0 answered after `after`; its time. */
static uint64_t wait_answer(struct tern_server *srv, uint64_t after)
{
	uint64_t t = tern_worker_ping_answered_ms(srv->workers[0]);
	for (int i = 0; i < 2500 && t <= after; i++) {
		usleep(2000);
		t = tern_worker_ping_answered_ms(srv->workers[0]);
	}
	return t;
}

/* The round trip on a started one-worker server. */
static void test_ping_round_trip(enum tern_io_engine io)
{
	struct tern_config cfg;
	struct tern_server srv;
	char err[512], out[128];

	fixture_one_worker_config(&cfg, "127.0.0.1:1");
	cfg.io = io;
	if (!CHECK_EQ_INT(tern_server_prepare(&srv, &cfg, true, err, sizeof(err)), 0)) {
		fprintf(stderr, "    %s\n", err);
		return;
	}
	if (!CHECK_EQ_INT(tern_server_start(&srv, err, sizeof(err)), 0)) {
		fprintf(stderr, "    %s\n", err);
		tern_server_join_and_free(&srv);
		return;
	}
	/* Running, never pinged: alive but not ready. */
	CHECK_EQ_UINT(tern_worker_ping_answered_ms(srv.workers[0]), 0);
	CHECK_EQ_INT(tern_health_check(&srv, TERN_HEALTH_LIVE, BOUND, out, sizeof(out)), 200);
	CHECK_EQ_INT(tern_health_check(&srv, TERN_HEALTH_READY, BOUND, out, sizeof(out)), 503);
	CHECK_EQ_STR(out, "worker 0 has not answered yet\n");

	/* A round: the worker answers through its queue with its clock. */
	uint64_t start = tern_clock_ms();
	uint64_t next = tern_health_tick(&srv, start);
	CHECK_EQ_UINT(next, start + TERN_HEALTH_PING_MS);
	CHECK_EQ_UINT(atomic_load(&srv.health.since_ms), start);
	uint64_t first = wait_answer(&srv, 0);
	CHECK(first >= start && first <= tern_clock_ms());
	CHECK_EQ_INT(tern_health_check(&srv, TERN_HEALTH_READY, BOUND, out, sizeof(out)), 200);
	CHECK_EQ_STR(out, "ok\n");

	/* Not due yet: no ping, the same deadline; due: the next round. */
	CHECK_EQ_UINT(tern_health_tick(&srv, next - 1), next);
	usleep(20000);
	CHECK_EQ_UINT(tern_worker_ping_answered_ms(srv.workers[0]), first);
	CHECK_EQ_UINT(tern_health_tick(&srv, next), next + TERN_HEALTH_PING_MS);
	CHECK(wait_answer(&srv, first) > first); /* 20 ms later at least */
	/* The first round's time stays what never-answered workers are
	 * judged from. */
	CHECK_EQ_UINT(atomic_load(&srv.health.since_ms), start);

	/* A drain: 503 at once, though every worker answered. */
	tern_server_drain(&srv);
	CHECK_EQ_INT(tern_health_check(&srv, TERN_HEALTH_LIVE, BOUND, out, sizeof(out)), 503);
	CHECK_EQ_STR(out, "draining\n");
	fixture_server_stop(&srv);
}

/* `health_test epoll` runs the round trip on the epoll engine. */
int main(int argc, char **argv)
{
	bool epoll = argc > 1 && strcmp(argv[1], "epoll") == 0;

	test_every_worker_answered();
	test_wedged_worker_is_named();
	test_never_answered();
	test_draining_wins();
	test_small_buffer();
	test_ping_round_trip(epoll ? TERN_IO_EPOLL : TERN_IO_URING);
	return check_summary();
}
