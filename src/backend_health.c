/* One backend address's health (backend_health.h): atomics, no lock. */
#include "tern/backend_health.h"

bool tern_backend_health_usable(const struct tern_backend_health *h, uint64_t now_ms)
{
	return !atomic_load_explicit(&h->check_down, memory_order_relaxed) &&
	       atomic_load_explicit(&h->down_until_ms, memory_order_relaxed) <= now_ms;
}

bool tern_backend_health_connect_failed(struct tern_backend_health *h, uint64_t now_ms,
					uint64_t retry_ms)
{
	bool was_usable = tern_backend_health_usable(h, now_ms);

	atomic_store_explicit(&h->failed_ms, now_ms, memory_order_relaxed);
	if (retry_ms == 0)
		return false;
	/* An exchange: of two workers failing at once, only the one that
	 * found it usable reports the change. */
	uint64_t old = atomic_exchange_explicit(&h->down_until_ms, now_ms + retry_ms,
						memory_order_relaxed);
	return was_usable && old <= now_ms;
}

bool tern_backend_health_connect_ok(struct tern_backend_health *h, uint64_t now_ms)
{
	bool was_usable = tern_backend_health_usable(h, now_ms);
	bool changed = false;

	/* Loads first: the healthy case writes nothing shared. */
	if (atomic_load_explicit(&h->down_until_ms, memory_order_relaxed) != 0)
		changed |= atomic_exchange_explicit(&h->down_until_ms, 0, memory_order_relaxed) > now_ms;
	if (atomic_load_explicit(&h->check_down, memory_order_relaxed))
		changed |= atomic_exchange_explicit(&h->check_down, false, memory_order_relaxed);
	return !was_usable && changed;
}

enum tern_backend_check_change tern_backend_health_checked(struct tern_backend_health *h, bool ok,
							   uint64_t now_ms)
{
	bool was_usable = tern_backend_health_usable(h, now_ms);

	if (ok) {
		atomic_store_explicit(&h->check_down, false, memory_order_relaxed);
		if (atomic_load_explicit(&h->down_until_ms, memory_order_relaxed) != 0)
			atomic_store_explicit(&h->down_until_ms, 0, memory_order_relaxed);
		return was_usable ? TERN_BACKEND_CHECK_SAME : TERN_BACKEND_CHECK_UP;
	}
	atomic_store_explicit(&h->failed_ms, now_ms, memory_order_relaxed);
	atomic_store_explicit(&h->check_down, true, memory_order_relaxed);
	return was_usable ? TERN_BACKEND_CHECK_DOWN : TERN_BACKEND_CHECK_SAME;
}
