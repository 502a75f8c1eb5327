/* Health: workers pinged through their queues, and the verdict. See
 * health.h for why a queue round trip is the question to ask. */
#include <stdio.h>

#include "tern/clock.h"
#include "tern/health.h"
#include "tern/log.h"
#include "tern/request.h"
#include "tern/server.h"
#include "tern/worker.h"

/* How long ago worker i answered, judged from since_ms when it never
 * has; 0 for a time in the future (clocks read on other threads). */
static uint64_t answer_age_ms(const struct tern_health_input *in, unsigned i)
{
	uint64_t from = in->answered_ms[i] ? in->answered_ms[i] : in->since_ms;
	return from && in->now_ms > from ? in->now_ms - from : 0;
}

int tern_health_judge(const struct tern_health_input *in, char *out, size_t out_len)
{
	unsigned oldest = 0, never = 0;
	uint64_t oldest_age = 0;
	bool any_never = false;

	if (in->draining) {
		snprintf(out, out_len, "draining\n");
		return 503;
	}
	for (unsigned i = 0; i < in->num_workers; i++) {
		uint64_t age = answer_age_ms(in, i);
		if (age > oldest_age) {
			oldest_age = age;
			oldest = i;
		}
		if (!in->answered_ms[i] && !any_never) {
			any_never = true;
			never = i;
		}
	}
	/* The worst news first: a worker overdue fails both probes. */
	if (oldest_age > in->bound_ms) {
		snprintf(out, out_len, "worker %u has not answered for %llu.%llus\n", oldest,
			 (unsigned long long)(oldest_age / 1000),
			 (unsigned long long)(oldest_age % 1000 / 100));
		return 503;
	}
	if (in->probe == TERN_HEALTH_READY && any_never) {
		snprintf(out, out_len, "worker %u has not answered yet\n", never);
		return 503;
	}
	snprintf(out, out_len, "ok\n");
	return 200;
}

int tern_health_check(struct tern_server *srv, enum tern_health_probe probe, uint64_t bound_ms,
		      char *out, size_t out_len)
{
	/* 8 KiB at most, on the caller's stack: a probe allocates nothing. */
	uint64_t answered[TERN_MAX_WORKERS];
	unsigned n = srv->num_workers < TERN_MAX_WORKERS ? srv->num_workers : TERN_MAX_WORKERS;
	struct tern_health_input in = {
		.answered_ms = answered,
		.num_workers = n,
		.since_ms = atomic_load_explicit(&srv->health.since_ms, memory_order_relaxed),
		.bound_ms = bound_ms,
		.draining = atomic_load_explicit(&srv->health.draining, memory_order_relaxed),
		.probe = probe,
	};
	for (unsigned i = 0; i < n; i++)
		answered[i] = tern_worker_ping_answered_ms(srv->workers[i]);
	/* The clock after the answers, so that none is in its future. */
	in.now_ms = tern_clock_ms();
	return tern_health_judge(&in, out, out_len);
}

uint64_t tern_health_tick(struct tern_server *srv, uint64_t now_ms)
{
	struct tern_health *h = &srv->health;

	if (now_ms < h->next_ping_ms)
		return h->next_ping_ms;
	h->next_ping_ms = now_ms + TERN_HEALTH_PING_MS;
	if (atomic_load_explicit(&h->since_ms, memory_order_relaxed) == 0)
		atomic_store_explicit(&h->since_ms, now_ms, memory_order_relaxed);
	for (unsigned i = 0; i < srv->num_workers; i++) {
		struct tern_request req = {.kind = TERN_REQ_KIND_PING};
		/* A full queue means the worker has a backlog already: this
		 * round is skipped, and the answers age until it catches up. */
		if (tern_worker_push(srv->workers[i], &req) < 0)
			tern_log(TERN_LOG_DEBUG, "health: worker %u's queue is full, ping skipped",
				 i);
	}
	return h->next_ping_ms;
}
