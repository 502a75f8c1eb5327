/* A worker: one thread, one io_uring ring, its own listening sockets and its
 * own SSL_CTX shard. Every connection it accepts stays on it for life, so
 * nothing on the data path is shared or locked.
 *
 * Other threads reach a worker only through tern_worker_request(), which
 * sets a request bit and wakes the ring through an eventfd whose read is
 * kept armed in the ring. */
#ifndef TERN_WORKER_H
#define TERN_WORKER_H

#include <linux/time_types.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tern/config.h"
#include "tern/conn.h"
#include "tern/counters.h"
#include "tern/histogram.h"
#include "tern/list.h"
#include "tern/queue.h"

struct ssl_ctx_st;
struct tern_tls_shard;
struct tern_request;
struct tern_ring;
struct tern_server;
struct tern_ticket_keys;

/* What a completion is for: the low 3 bits of user_data, beside a pointer
 * to the object (8-byte aligned) the operation belongs to. Completions are
 * dispatched through a table indexed by this. */
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

#define TERN_LISTENER_MAGIC 0x4c495354u /* "LIST" */
#define TERN_EVENT_MAGIC 0x45564e54u    /* "EVNT" */

struct tern_listener {
	uint32_t magic;
	int fd;
	bool armed; /* a multishot accept is in flight */
	/* An inherited socket (socket activation) that every worker accepts
	 * on: a worker only stops accepting on it; the server closes it once,
	 * after every worker ended. */
	bool shared;
	const struct tern_addr *addr;
	struct tern_worker *w;
};

enum tern_worker_event_kind {
	TERN_EVENT_TICK,  /* the timer tick: timeouts, accept resume */
	TERN_EVENT_WAKE,  /* the eventfd: requests from other threads */
	TERN_EVENT_FLUSH, /* the earliest ticket-flush deadline, to the millisecond */
};

struct tern_worker_event {
	uint32_t magic;
	enum tern_worker_event_kind kind;
	struct tern_worker *w;
};

/* Request bits other threads set in tern_worker.requests. */
#define TERN_REQ_DRAIN 1u /* stop accepting, finish connections */
#define TERN_REQ_STOP 2u  /* close everything now */

/* Accepted sockets held back while --max-conns is reached (the multishot
 * accept may deliver a few before its cancellation lands). */
#define TERN_MAX_PARKED 64

/* Timer granularity: timeouts fire within this much of their deadline. */
#define TERN_TICK_MS 50

struct tern_worker {
	/* Set before the thread starts, then read-only. */
	unsigned index;
	struct tern_server *srv;
	const struct tern_config *cfg;
	/* The worker's TLS contexts (tls_ctx.h), and the default one new
	 * connections start on: always tern_tls_shard_default_ctx(shard).
	 * Replaced together, on this thread only (reload); connections keep
	 * the context they were made from, so the old shard can be freed at
	 * once. The default context is host.ssl_ctx. */
	struct tern_tls_shard *shard;
	struct tern_listener *listeners;
	size_t num_listeners;
	int wake_fd;
	pthread_t thread;

	/* Written by other threads. */
	_Atomic unsigned requests;
	struct tern_queue queue; /* requests from control threads */

	/* Owned by the worker thread. */
	struct tern_ring *ring;
	/* What connections see of the worker (conn.h): the clock, the
	 * connection list, the timer lists, the counters. */
	struct tern_conn_host host;
	uint64_t wake_value;
	struct __kernel_timespec tick_ts, flush_ts;
	struct tern_worker_event tick_event, wake_event, flush_event;
	uint64_t flush_armed_ms; /* the flush timeout in the ring, or 0 */
	/* The ticket keys this worker's SSL_CTX encrypts and decrypts with;
	 * replaced only on this thread, from a TERN_REQ_KIND_TICKET_KEYS
	 * request, so the handshake path reads it without a lock. */
	struct tern_ticket_keys *ticket_keys;
	int parked[TERN_MAX_PARKED];
	unsigned num_parked;
	bool accept_paused;
	bool draining;
	bool stopping;
	uint64_t drain_deadline_ms;
	int start_err; /* set by the thread before it reports start-up */

	struct tern_counters ctr;
	/* Accept to handshake done, per completed handshake; on cache lines
	 * of its own, like ctr (written by this worker only). */
	struct tern_histogram hs_hist;
};

/* The worker thread's body. */
void *tern_worker_main(void *arg);

/* From any thread: asks the worker for TERN_REQ_* and wakes it. */
void tern_worker_request(struct tern_worker *w, unsigned req);

/* From any thread: queues a request and wakes the worker. Returns 0, or
 * -EBUSY when the worker's queue is full (nothing was queued). */
__attribute__((warn_unused_result))
int tern_worker_push(struct tern_worker *w, const struct tern_request *req);

/* From any thread that may wait (control threads): tern_worker_push,
 * retrying a full queue for up to timeout_ms. The worker drains its queue
 * every loop iteration, so "full" is momentary. */
__attribute__((warn_unused_result))
int tern_worker_push_wait(struct tern_worker *w, const struct tern_request *req,
			  unsigned timeout_ms);

/* Capacity of each worker's request queue. */
#define TERN_WORKER_QUEUE_CAPACITY 1024

/* Releases what requests still queued hold (after the thread ended). */
void tern_worker_discard_requests(struct tern_worker *w);

/* Worker thread: a connection slot was released; resume accepting if
 * accepting was paused at --max-conns. */
void tern_worker_slot_freed(struct tern_worker *w);

#endif
