/* What backends.c (the table, the current set, the summaries) and
 * backend_monitor.c (the thread that resolves and checks) share. */
#ifndef TERN_BACKENDS_INTERNAL_H
#define TERN_BACKENDS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "tern/backend_set.h"
#include "tern/backends.h"

struct tern_backends {
	const struct tern_config *cfg;
	/* Guards current and resolve_error against readers on other
	 * threads; held for a copy or a swap only. */
	pthread_mutex_t lock;
	struct tern_backend_set *current; /* a reference */
	/* Per --backend: why its name last failed to resolve ("" if it did). */
	char (*resolve_error)[128];

	/* The monitor thread (backend_monitor.c). */
	struct tern_server *srv;
	pthread_t thread;
	bool running;
	int stop_fd; /* an eventfd: written once, to stop it */
	/* Per worker: whether it missed the current set (its queue was full
	 * for a whole hand-over); handed over again on the next round. */
	bool *stale;
};

/* The monitor thread: makes next (the caller's reference) current and
 * hands every worker a reference. */
void tern_backends_publish(struct tern_backends *b, struct tern_backend_set *next);

/* The monitor thread: hands the current set to workers that missed it. */
void tern_backends_republish(struct tern_backends *b);

/* How often a name with no address at all is resolved again: every
 * --resolve-interval, but at least every 5 s (and with the interval 0,
 * which re-resolves nothing, until it resolves once). */
#define TERN_BACKEND_UNRESOLVED_RETRY_MS 5000u
uint64_t tern_backend_monitor_retry_ms(const struct tern_config *cfg);

/* Any thread: records backend i's resolution failure (or "" for none). */
void tern_backends_set_resolve_error(struct tern_backends *b, unsigned i, const char *err);

#endif
