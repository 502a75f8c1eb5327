/* Backend address sets (backend_set.h): built by the backend monitor,
 * chosen from by workers, retired through each worker's views. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "tern/backend_set.h"

struct tern_endpoint *tern_endpoint_new(const struct tern_addr *addr, unsigned backend)
{
	struct tern_endpoint *ep = calloc(1, sizeof(*ep));

	if (!ep)
		return NULL;
	ep->addr = *addr;
	ep->backend = backend;
	atomic_init(&ep->refs, 1);
	return ep;
}

void tern_endpoint_unref(struct tern_endpoint *ep)
{
	/* acq_rel: the thread that frees sees every write the others made
	 * before letting go (health included). */
	if (ep && atomic_fetch_sub_explicit(&ep->refs, 1, memory_order_acq_rel) == 1)
		free(ep);
}

struct tern_backend_set *tern_backend_set_new(size_t cap)
{
	struct tern_backend_set *set = calloc(1, sizeof(*set) + cap * sizeof(set->eps[0]));

	if (!set)
		return NULL;
	atomic_init(&set->refs, 1);
	set->cap = cap;
	return set;
}

bool tern_backend_set_add(struct tern_backend_set *set, struct tern_endpoint *ep)
{
	if (set->num >= set->cap)
		return false;
	atomic_fetch_add_explicit(&ep->refs, 1, memory_order_relaxed);
	set->eps[set->num++] = ep;
	return true;
}

struct tern_backend_set *tern_backend_set_ref(struct tern_backend_set *set)
{
	atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
	return set;
}

void tern_backend_set_unref(struct tern_backend_set *set)
{
	if (!set || atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < set->num; i++)
		tern_endpoint_unref(set->eps[i]);
	free(set);
}

/* The same socket address: family, port and address (and scope for IPv6,
 * the path for unix:); padding and flow labels do not count. */
static bool same_address(const struct tern_addr *a, const struct tern_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return false;
	switch (a->ss.ss_family) {
	case AF_INET: {
		const struct sockaddr_in *x = (const struct sockaddr_in *)&a->ss;
		const struct sockaddr_in *y = (const struct sockaddr_in *)&b->ss;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->ss;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->ss;
		return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	case AF_UNIX: {
		const struct sockaddr_un *x = (const struct sockaddr_un *)&a->ss;
		const struct sockaddr_un *y = (const struct sockaddr_un *)&b->ss;
		return strncmp(x->sun_path, y->sun_path, sizeof(x->sun_path)) == 0;
	}
	default:
		return false;
	}
}

struct tern_endpoint *tern_backend_set_find(const struct tern_backend_set *set, unsigned backend,
					    const struct tern_addr *addr)
{
	for (size_t i = 0; i < set->num; i++)
		if (set->eps[i]->backend == backend && same_address(&set->eps[i]->addr, addr))
			return set->eps[i];
	return NULL;
}

bool tern_backend_set_same(const struct tern_backend_set *set, unsigned backend,
			   const struct tern_addr *addrs, size_t n)
{
	size_t have = 0;

	for (size_t i = 0; i < set->num; i++)
		have += set->eps[i]->backend == backend;
	if (have != n)
		return false;
	/* The resolver drops duplicates, so equal counts and every address
	 * found is equality. n is small (TERN_MAX_ADDRS_PER_BACKEND). */
	for (size_t i = 0; i < n; i++)
		if (!tern_backend_set_find(set, backend, &addrs[i]))
			return false;
	return true;
}

bool tern_backend_set_backend_up(const struct tern_backend_set *set, unsigned backend,
				 uint64_t now_ms)
{
	for (size_t i = 0; i < set->num; i++)
		if (set->eps[i]->backend == backend &&
		    tern_backend_health_usable(&set->eps[i]->health, now_ms))
			return true;
	return false;
}

struct tern_backend_set *tern_backend_set_replace(const struct tern_backend_set *set,
						  unsigned backend, const struct tern_addr *addrs,
						  size_t n)
{
	struct tern_backend_set *next = tern_backend_set_new(set->num + n);
	size_t i = 0;

	if (!next)
		return NULL;
	/* Backends before this one, then this one's kept addresses in their
	 * order, its new ones, and the backends after it: round-robin order
	 * stays as it was for everything that stayed. */
	for (; i < set->num && set->eps[i]->backend < backend; i++)
		(void)tern_backend_set_add(next, set->eps[i]);
	for (; i < set->num && set->eps[i]->backend == backend; i++) {
		for (size_t k = 0; k < n; k++) {
			if (same_address(&set->eps[i]->addr, &addrs[k])) {
				(void)tern_backend_set_add(next, set->eps[i]);
				break;
			}
		}
	}
	for (size_t k = 0; k < n; k++) {
		if (tern_backend_set_find(set, backend, &addrs[k]))
			continue;
		struct tern_endpoint *ep = tern_endpoint_new(&addrs[k], backend);
		if (!ep) {
			tern_backend_set_unref(next);
			return NULL;
		}
		(void)tern_backend_set_add(next, ep);
		tern_endpoint_unref(ep); /* the set's reference stays */
	}
	for (; i < set->num; i++)
		(void)tern_backend_set_add(next, set->eps[i]);
	return next;
}

struct tern_endpoint *tern_backend_set_pick(const struct tern_backend_set *set, unsigned *cursor,
					    uint64_t now_ms, const struct tern_endpoint *skip)
{
	struct tern_endpoint *oldest = NULL;
	uint64_t oldest_ms = UINT64_MAX;

	if (!set || set->num == 0)
		return NULL;
	size_t start = *cursor % set->num;
	for (size_t k = 0; k < set->num; k++) {
		size_t i = (start + k) % set->num;
		struct tern_endpoint *ep = set->eps[i];
		if (ep == skip)
			continue;
		if (tern_backend_health_usable(&ep->health, now_ms)) {
			*cursor = (unsigned)(i + 1);
			return ep;
		}
		uint64_t failed = atomic_load_explicit(&ep->health.failed_ms, memory_order_relaxed);
		if (failed < oldest_ms) {
			oldest_ms = failed;
			oldest = ep;
		}
	}
	return oldest;
}

struct tern_backend_view *tern_backend_view_new(struct tern_backend_set *set)
{
	struct tern_backend_view *v = calloc(1, sizeof(*v));

	if (!v) {
		tern_backend_set_unref(set);
		return NULL;
	}
	v->set = set;
	return v;
}

static void view_free(struct tern_backend_view *v)
{
	tern_backend_set_unref(v->set);
	free(v);
}

void tern_backend_view_retire(struct tern_backend_view *v)
{
	if (!v)
		return;
	v->retired = true;
	if (v->users == 0)
		view_free(v);
}

void tern_backend_view_release(struct tern_backend_view *v)
{
	if (--v->users == 0 && v->retired)
		view_free(v);
}
