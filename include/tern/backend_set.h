/* The addresses new connections go to: every --backend, a name expanded
 * to each address it resolves to, as one immutable set that workers
 * choose from without a lock.
 *
 * An endpoint is one address of one --backend, with its health
 * (backend_health.h). A set lists endpoints grouped by --backend in
 * command-line order. When a name resolves differently, the backend
 * monitor (backends.h) builds a new set that shares the endpoints of the
 * addresses that stayed (their health with them) and hands each worker a
 * reference through its queue, as a reload hands over TLS contexts. A
 * worker keeps the set it chose a connection's endpoint from until that
 * connection is freed (struct tern_backend_view counts them, on the
 * worker's thread only), so an address in use never goes away under a
 * connect; the set goes with the last reference, once every worker has
 * moved past it.
 *
 * Reference counts are atomic (sets and endpoints are let go on whichever
 * thread drops the last reference), touched only when a set is built,
 * handed over or retired: never per connection. */
#ifndef TERN_BACKEND_SET_H
#define TERN_BACKEND_SET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/backend_health.h"
#include "tern/config.h"

/* Addresses one name expands to at most; more are left out, with a
 * warning (a headless Service that large wants a real load balancer). */
#define TERN_MAX_ADDRS_PER_BACKEND 64

struct tern_endpoint {
	/* text: the address as numbers ("10.0.0.7:8080", "[::1]:8080") for a
	 * name's address; as written for a literal or unix: backend. */
	struct tern_addr addr;
	unsigned backend; /* its --backend: an index into cfg->backends */
	struct tern_backend_health health;
	_Atomic unsigned refs; /* the sets holding it */
};

struct tern_backend_set {
	_Atomic unsigned refs;
	size_t num;
	size_t cap;
	struct tern_endpoint *eps[]; /* num of them, each a reference */
};

/* A new endpoint for addr, of --backend `backend`, usable, one reference
 * (the caller's). NULL when out of memory. */
struct tern_endpoint *tern_endpoint_new(const struct tern_addr *addr, unsigned backend);
void tern_endpoint_unref(struct tern_endpoint *ep);

/* An empty set with room for cap endpoints, one reference (the caller's).
 * NULL when out of memory. Filled with tern_backend_set_add before it is
 * shared, then never changed. */
struct tern_backend_set *tern_backend_set_new(size_t cap);
/* Appends ep, taking a reference of its own. False when full. */
bool tern_backend_set_add(struct tern_backend_set *set, struct tern_endpoint *ep);
struct tern_backend_set *tern_backend_set_ref(struct tern_backend_set *set);
/* Drops one reference; the last frees the set and its endpoint
 * references. NULL does nothing. Any thread. */
void tern_backend_set_unref(struct tern_backend_set *set);

/* The endpoint of --backend `backend` at addr's socket address, or NULL. */
struct tern_endpoint *tern_backend_set_find(const struct tern_backend_set *set, unsigned backend,
					    const struct tern_addr *addr);

/* Whether set's endpoints of --backend `backend` are exactly addrs[0..n)
 * as socket addresses, in any order: a re-resolution that changed
 * nothing hands no new set over. */
bool tern_backend_set_same(const struct tern_backend_set *set, unsigned backend,
			   const struct tern_addr *addrs, size_t n);

/* Whether any endpoint of --backend `backend` is usable at now_ms. */
bool tern_backend_set_backend_up(const struct tern_backend_set *set, unsigned backend,
				 uint64_t now_ms);

/* A new set: set's endpoints, except that --backend `backend`'s become
 * addrs[0..n): the endpoints of addresses it had stay (health and all, in
 * their order), new ones follow. NULL when out of memory. */
struct tern_backend_set *tern_backend_set_replace(const struct tern_backend_set *set,
						  unsigned backend, const struct tern_addr *addrs,
						  size_t n);

/* Round-robin over the usable endpoints: the first usable one at or after
 * *cursor (modulo num), leaving *cursor just past it; `skip` (the one that
 * just failed, or NULL) is never chosen. When none is usable, the one
 * whose last failure is oldest, so that a backend coming back is found
 * rather than every client refused. NULL only when set holds no endpoint
 * other than skip. Pure apart from the atomic loads; worker thread. */
struct tern_endpoint *tern_backend_set_pick(const struct tern_backend_set *set, unsigned *cursor,
					    uint64_t now_ms, const struct tern_endpoint *skip);

/* A worker's hold on one set: the set it chooses from now (current), or
 * one it chose from before, kept while connections still use an endpoint
 * of it. Worker thread only; nothing here is shared. */
struct tern_backend_view {
	struct tern_backend_set *set; /* one reference */
	unsigned users;               /* connections holding this view */
	bool retired;                 /* a newer set is current */
};

/* A view of set, taking over the caller's reference. NULL when out of
 * memory (the reference is dropped). */
struct tern_backend_view *tern_backend_view_new(struct tern_backend_set *set);
/* A newer set is current: the view goes once no connection holds it. */
void tern_backend_view_retire(struct tern_backend_view *v);
/* A connection stops holding v. */
void tern_backend_view_release(struct tern_backend_view *v);

#endif
