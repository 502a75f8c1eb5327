/* Per-worker counters.
 *
 * Each worker writes only its own struct, on its own cache lines, with
 * relaxed atomic loads and stores (plain moves on x86: no locked
 * instructions on the hot path); readers on other threads sum all workers
 * with relaxed loads. A sum is a consistent-enough snapshot for
 * monitoring, never used for decisions. */
#ifndef TERN_COUNTERS_H
#define TERN_COUNTERS_H

#include <stdatomic.h>
#include <stdint.h>

#define TERN_COUNTER_FIELDS(X)       \
	X(conns_total)               \
	X(conns_active)              \
	X(handshakes_full)           \
	X(handshakes_resumed)        \
	X(handshake_failures)        \
	X(probe_connections)         \
	X(bytes_client_in)           \
	X(bytes_client_out)          \
	X(backend_connect_failures)  \
	X(backend_unavailable)       \
	X(tickets_requested)         \
	X(tickets_sent)              \
	X(read_buffer_misses)        \
	X(proxy_not_allowed)         \
	X(proxy_header_invalid)      \
	X(proxy_header_truncated)    \
	X(proxy_header_timeout)      \
	X(conns_refused_drain)       \
	X(conns_refused_no_memory)   \
	X(conns_refused_overflow)

struct tern_counters {
#define TERN_COUNTER_DECLARE(name) _Atomic uint64_t name;
	TERN_COUNTER_FIELDS(TERN_COUNTER_DECLARE)
#undef TERN_COUNTER_DECLARE
} __attribute__((aligned(64)));

/* Single writer: the owning worker. */
static inline void tern_counter_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void tern_counter_sub(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - n,
			      memory_order_relaxed);
}

static inline uint64_t tern_counter_get(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

#endif
