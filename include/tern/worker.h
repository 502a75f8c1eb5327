/* A worker: one thread, one I/O engine instance (an io_uring ring, or an
 * epoll instance: srv->io_engine), its own listening sockets and its own
 * SSL_CTX shard. Every connection it accepts stays on it for life, so
 * nothing on the data path is shared or locked.
 *
 * struct tern_worker is private to the worker (src/worker_internal.h).
 * Who may call what:
 *   main thread   tern_worker_new, _add_listener, _listen_addr, _start,
 *                 _wait_started, _join, _free, in that order (the server's
 *                 prepare, start and join_and_free);
 *   any thread    tern_worker_request, _push, _push_wait, _build_shard, and
 *                 reading _counters, _histogram, _ping_answered_ms and
 *                 _ticket_key_generation,
 *                 from _new until _free.
 * Other threads reach a running worker only through requests: a request
 * bit (tern_worker_request) or a queued struct tern_request (push), after
 * which the worker is woken through an eventfd whose read is kept armed in
 * its ring (on epoll: registered with its epoll instance). */
#ifndef TERN_WORKER_H
#define TERN_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tern/counters.h"
#include "tern/histogram.h"

struct tern_addr;
struct tern_backend_stats;
struct tern_config;
struct tern_conn_host;
struct tern_request;
struct tern_server;
struct tern_tls_identities;
struct tern_tls_shard;
struct tern_worker;

/* What a completion is for: the low 3 bits of user_data, beside a pointer
 * to the object (8-byte aligned) the operation belongs to. Completions are
 * dispatched through a table indexed by this (worker_ring.c). On epoll the
 * same tags name what an event is for (epoll_event.data): a listener
 * (ACCEPT), the eventfd (WORKER), a connection's client or backend socket
 * (C_RECV, B_RECV). */
enum tern_op {
	TERN_OP_IGNORE = 0, /* close, cancel, link timeout */
	TERN_OP_ACCEPT,     /* struct tern_listener */
	TERN_OP_C_RECV,     /* struct tern_conn: client socket */
	TERN_OP_C_SEND,
	TERN_OP_B_CONNECT,  /* struct tern_conn: backend socket */
	TERN_OP_B_RECV,
	TERN_OP_B_SEND,
	TERN_OP_WORKER,     /* struct tern_worker_event */
	TERN_OP_COUNT,
};
#define TERN_OP_MASK 7u

static inline uint64_t tern_ud(const void *obj, enum tern_op op)
{
	return (uint64_t)(uintptr_t)obj | (uint64_t)op;
}

/* Request bits for tern_worker_request(). */
#define TERN_REQ_DRAIN 1u /* stop accepting, finish connections */
#define TERN_REQ_STOP 2u  /* close everything now */
/* a --max-conns slot freed (on another worker): serve parked sockets,
 * accept again */
#define TERN_REQ_RESUME_ACCEPT 4u

/* Capacity of each worker's request queue. */
#define TERN_WORKER_QUEUE_CAPACITY 1024

/* Worker thread: struct tern_conn_ops.slot_freed of both engines: a
 * connection of the worker whose host h is was freed, so its slot
 * (--max-conns, whole process) is released, accepting resumes if it was
 * paused there, and the other workers paused at --max-conns are woken
 * (TERN_REQ_RESUME_ACCEPT) while a slot is still free. */
void tern_worker_conn_slot_freed(struct tern_conn_host *h);

/* Main thread: worker `index` of srv, not running yet: its request queue,
 * its wake-up eventfd, a reference to srv->ticket_keys and a TLS shard
 * built from srv->identities. It accepts on nothing until
 * tern_worker_add_listener. Returns 0 with *out the caller's
 * (tern_worker_free), or -errno with err set: tern_tls_shard_new()'s
 * errors, or -ENOMEM, -EMFILE. srv outlives the worker. */
__attribute__((warn_unused_result))
int tern_worker_new(struct tern_server *srv, unsigned index, struct tern_worker **out,
		    char *err, size_t err_len);

/* Main thread, before tern_worker_start: w accepts on the listening
 * socket fd, bound to addr (which outlives w). shared: a socket every
 * worker accepts on (socket activation), which w only stops accepting on
 * and never closes; otherwise fd is w's, closed by its drain or by
 * tern_worker_free. Returns 0, or -ENOMEM with fd left to the caller. */
__attribute__((warn_unused_result))
int tern_worker_add_listener(struct tern_worker *w, int fd, const struct tern_addr *addr,
			     bool shared);

/* Main thread, before tern_worker_start (then the listeners are the
 * worker thread's): the local address of w's listener i, as getsockname
 * gives it, for a port the kernel picked. Returns 0, -ENOENT when w has no
 * listener i, or getsockname's -errno. */
__attribute__((warn_unused_result))
int tern_worker_listen_addr(const struct tern_worker *w, size_t i, struct sockaddr *out,
			    socklen_t *len);

/* Main thread: starts the worker's thread. Returns 0 or -errno (no
 * thread). After 0, call tern_worker_wait_started once, and
 * tern_worker_join before tern_worker_free. */
__attribute__((warn_unused_result))
int tern_worker_start(struct tern_worker *w);

/* Main thread, once after tern_worker_start: waits until the worker has
 * set up its engine (its ring or epoll instance). Returns 0 when it runs,
 * or why it could not start (its thread has then ended, still to be
 * joined). */
__attribute__((warn_unused_result))
int tern_worker_wait_started(struct tern_worker *w);

/* Main thread: waits for a started worker's thread to end (after a
 * TERN_REQ_DRAIN or TERN_REQ_STOP, or a failed start). */
void tern_worker_join(struct tern_worker *w);

/* Main thread, after tern_worker_join (or when it never started): closes
 * the listeners it owns and its eventfd, releases what requests still
 * queued hold (a waiting reply is told "not carried out"), and frees w.
 * NULL does nothing. */
void tern_worker_free(struct tern_worker *w);

/* Any thread: asks the worker for TERN_REQ_* and wakes it. */
void tern_worker_request(struct tern_worker *w, unsigned req);

/* Any thread: queues a request and wakes the worker. Returns 0, or
 * -EBUSY when the worker's queue is full (nothing was queued). */
__attribute__((warn_unused_result))
int tern_worker_push(struct tern_worker *w, const struct tern_request *req);

/* Any thread that may wait (control threads): tern_worker_push, retrying
 * a full queue for up to timeout_ms. The worker drains its queue every
 * loop iteration, so "full" is momentary. */
__attribute__((warn_unused_result))
int tern_worker_push_wait(struct tern_worker *w, const struct tern_request *req,
			  unsigned timeout_ms);

/* Any thread (reload): a new TLS shard for w, built from cfg and ids like
 * its first, whose ticket callback reads w's current ticket keys (the
 * ones TERN_REQ_KIND_TICKET_KEYS hands it). The caller owns *out until a
 * TERN_REQ_KIND_TLS_SHARD request passes it to w. Returns
 * tern_tls_shard_new()'s result. */
__attribute__((warn_unused_result))
int tern_worker_build_shard(struct tern_worker *w, const struct tern_config *cfg,
			    struct tern_tls_identities *ids, struct tern_tls_shard **out,
			    char *err, size_t err_len);

/* Any thread: tern_clock_ms() when w last answered a health ping
 * (TERN_REQ_KIND_PING, health.h), or 0 if it never has. */
uint64_t tern_worker_ping_answered_ms(struct tern_worker *w);

/* Any thread: the generation of the ticket key set w encrypts and
 * decrypts with now (key_handoff.h): TERN_KEY_GENERATION_FIRST from its
 * creation, then the arg of each TERN_REQ_KIND_TICKET_KEYS it carried out.
 * Behind the server's newest while a set waits in its queue, or could not
 * be queued yet. */
uint64_t tern_worker_ticket_key_generation(struct tern_worker *w);

/* The worker's counters and handshake histogram, on cache lines of their
 * own; borrowed, valid until tern_worker_free. Only the worker thread
 * writes them (before start, the thread that made the worker may: tests
 * do); any thread reads them with tern_counter_get and
 * tern_histogram_add_to (counters.h, histogram.h). */
struct tern_counters *tern_worker_counters(struct tern_worker *w);
/* One struct per --backend (conn.h), the same rules as the counters;
 * NULL when the worker has none (no --backend in a test's config). */
const struct tern_backend_stats *tern_worker_backend_stats(struct tern_worker *w);
struct tern_histogram *tern_worker_histogram(struct tern_worker *w);

#endif
