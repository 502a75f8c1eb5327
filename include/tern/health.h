/* Health: is every worker still running its loop? GET /healthz and
 * /readyz on the metrics listener (metrics.c) and systemd's watchdog
 * (sd_watchdog.h) ask this module.
 *
 * The kernel completes TCP handshakes and the control thread answers its
 * socket even when a worker is wedged (a busy loop, a blocking call, a
 * lock it never gets), so neither says whether connections are served.
 * A worker's request queue does: every TERN_HEALTH_PING_MS the control
 * thread pushes a TERN_REQ_KIND_PING into every worker's queue (a full
 * queue skips that round), and a worker answers by storing the time in its
 * own atomic "last answered" slot (tern_worker_ping_answered_ms) when its
 * loop comes back to the queue. A worker whose last answer is older than
 * a bound is wedged. No lock anywhere: one relaxed atomic per worker,
 * written by that worker, read by whoever judges.
 *
 * Because the pings come from the control thread, a control thread that
 * is stuck (or busy longer than the bound) makes the answers age too: the
 * check then fails as well, which is right for a liveness check, since
 * the control socket, reloads and key rotation have stopped with it. */
#ifndef TERN_HEALTH_H
#define TERN_HEALTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tern_server;

/* How often the control thread pings every worker. */
#define TERN_HEALTH_PING_MS 1000u
/* /healthz and /readyz: a worker whose last answer is older than this is
 * wedged. Three ping periods, so that a worker answering late once (a
 * burst of completions, a slow reload on the control thread) is not. */
#define TERN_HEALTH_BOUND_MS 3000u

/* The health state of a server (struct tern_server's `health`). */
struct tern_health {
	/* tern_clock_ms() of the first ping round, 0 before it: a worker that
	 * has never answered is judged from then. Written once by the
	 * control thread; any thread reads it (relaxed: a lone value that
	 * publishes nothing else). */
	_Atomic uint64_t since_ms;
	/* Set once a drain (or an immediate stop) began; any thread reads
	 * it (relaxed, as since_ms). */
	_Atomic bool draining;
	/* The next ping round; the control thread's alone. */
	uint64_t next_ping_ms;
};

/* Which question: /healthz (alive) or /readyz (alive, and every worker
 * has answered at least once, so it serves). */
enum tern_health_probe {
	TERN_HEALTH_LIVE,
	TERN_HEALTH_READY,
};

/* The facts a verdict is made from, gathered by tern_health_check. */
struct tern_health_input {
	const uint64_t *answered_ms; /* per worker: its last answer, 0 = never */
	unsigned num_workers;
	uint64_t since_ms; /* first ping round, 0 = none yet */
	uint64_t now_ms;
	uint64_t bound_ms;
	bool draining;
	enum tern_health_probe probe;
};

/* The decision, pure (any thread): 503 while draining; 503 when a worker
 * answered longer than bound_ms ago (one that never answered is judged
 * from since_ms, and not at all before the first round); for
 * TERN_HEALTH_READY also 503 while a worker has never answered; else
 * 200. out gets the body, one line: "ok\n", "draining\n", "worker 1 has
 * not answered for 4.2s\n" (the worker that has waited longest) or
 * "worker 0 has not answered yet\n". Returns 200 or 503. */
__attribute__((warn_unused_result))
int tern_health_judge(const struct tern_health_input *in, char *out, size_t out_len);

/* Any thread: judges srv's workers now against bound_ms with
 * tern_health_judge (out as there). Returns 200 or 503. */
__attribute__((warn_unused_result))
int tern_health_check(struct tern_server *srv, enum tern_health_probe probe, uint64_t bound_ms,
		      char *out, size_t out_len);

/* Control thread (its timer hook): when a round is due, pushes one ping
 * to every worker without waiting (a full queue skips that worker's
 * round). Returns when the next round is due. */
uint64_t tern_health_tick(struct tern_server *srv, uint64_t now_ms);

#endif
