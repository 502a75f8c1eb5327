/* One backend address's health: whether new connections may be sent to
 * it, as the workers' connects (passive) and the backend monitor's TCP
 * checks (active, --backend-check) last found it.
 *
 * Shared by every worker and the monitor thread, so it is atomics only:
 * a worker reads it when it chooses a backend (relaxed loads: a choice
 * made on a value a moment old is as good as any), and writes it only
 * when a connect fails or succeeds after a failure (an exchange, so that
 * exactly one thread reports each change). A healthy backend costs the
 * data path two loads and no writes.
 *
 * The states (docs/backends.md):
 *   up        usable: down_until_ms <= now and not check_down
 *   skipped   a connect failed at t: not chosen until t + --backend-retry,
 *             then tried again (nginx's fail_timeout with max_fails=1)
 *   checked   an active check failed: not chosen until one succeeds (or a
 *             connection, sent when every address is down, connects)
 * When every address is down, connections still go to the one whose last
 * failure is oldest (failed_ms), rather than to none. */
#ifndef TERN_BACKEND_HEALTH_H
#define TERN_BACKEND_HEALTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct tern_backend_health {
	_Atomic uint64_t down_until_ms; /* skipped until then (CLOCK_MONOTONIC ms); 0: not */
	_Atomic uint64_t failed_ms;     /* the last failure, connect or check; 0: never */
	_Atomic bool check_down;        /* the last active check failed */
};

/* Any thread: whether new connections may go there at now_ms. */
bool tern_backend_health_usable(const struct tern_backend_health *h, uint64_t now_ms);

/* A worker: a connect failed (refused, timed out, no socket). Skipped
 * until now_ms + retry_ms (0: not skipped, only remembered as failed).
 * Returns true when this is what took it out of use, for one log line. */
bool tern_backend_health_connect_failed(struct tern_backend_health *h, uint64_t now_ms,
					uint64_t retry_ms);

/* A worker: a connect succeeded: usable again, whatever a check said.
 * Returns true when it had been out of use. */
bool tern_backend_health_connect_ok(struct tern_backend_health *h, uint64_t now_ms);

/* What an active check changed. */
enum tern_backend_check_change {
	TERN_BACKEND_CHECK_SAME = 0,
	TERN_BACKEND_CHECK_DOWN, /* it was usable, the check failed */
	TERN_BACKEND_CHECK_UP,   /* it was not usable, the check connected */
};

/* The monitor thread: an active check connected (ok) or not. A check that
 * connects also ends a passive skip: the address answers now. */
enum tern_backend_check_change tern_backend_health_checked(struct tern_backend_health *h, bool ok,
							   uint64_t now_ms);

#endif
