/* The backends of the process (docs/backends.md): the set of addresses
 * new connections go to (backend_set.h), kept current by the backend
 * monitor thread, which re-resolves host names every --resolve-interval
 * and, with --backend-check, connects to every address to mark it up or
 * down; and what `backends` and /metrics show of them.
 *
 * Threads: the main thread makes, starts, stops and frees; the monitor
 * thread replaces the current set and hands it to every worker through
 * its queue; any thread may take a reference to the current set. The lock
 * inside is held only for a pointer swap or copy, never by a worker. */
#ifndef TERN_BACKENDS_H
#define TERN_BACKENDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/config.h"

struct tern_backend_set;
struct tern_backends;
struct tern_server;

/* Main thread: the backends of cfg, each name resolved once now (a name
 * that does not resolve is a warning: it has no address until the
 * monitor resolves it). Returns 0 or -ENOMEM (err set). */
__attribute__((warn_unused_result))
int tern_backends_new(const struct tern_config *cfg, struct tern_backends **out, char *err,
		      size_t err_len);

/* Any thread: a reference to the current set (tern_backend_set_unref). */
struct tern_backend_set *tern_backends_get(struct tern_backends *b);

/* Main thread, once srv's workers run: starts the monitor thread when
 * there is work for it (names to re-resolve, --backend-check). Returns 0
 * or -errno. */
__attribute__((warn_unused_result))
int tern_backends_start(struct tern_backends *b, struct tern_server *srv);

/* Main thread: stops the monitor (if running) and frees b. NULL is fine. */
void tern_backends_free(struct tern_backends *b);

/* One --backend as `backends` and /metrics show it. */
struct tern_backend_summary {
	const char *text; /* as configured */
	bool is_name;
	bool up;          /* some address of it is usable */
	uint64_t connects, failures, open; /* all workers */
	char resolve_error[128]; /* the last resolution's failure; "" when it resolved */
};

/* Any thread: backend i (an index into cfg->backends) in set, at now_ms. */
void tern_backends_summarize(struct tern_server *srv, const struct tern_backend_set *set,
			     unsigned i, uint64_t now_ms, struct tern_backend_summary *out);

/* backend_monitor.c: the monitor's thread body and its stop. */
int tern_backend_monitor_start(struct tern_backends *b, struct tern_server *srv);
void tern_backend_monitor_stop(struct tern_backends *b);

#endif
