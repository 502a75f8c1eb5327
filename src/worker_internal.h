/* The worker's own state, private to the worker: worker.c (start and end,
 * and what its loop does whatever the engine: accepting, timers, wake-ups),
 * the loop of each I/O engine (worker_ring.c on io_uring, worker_epoll.c
 * on epoll), worker_requests.c (what other threads ask of it) and
 * conn_ring.c (the io_uring engine of its connections, which reaches the
 * worker from a connection's host). Everything else goes through
 * tern/worker.h. */
#ifndef TERN_WORKER_INTERNAL_H
#define TERN_WORKER_INTERNAL_H

#include <linux/time_types.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tern/config.h"
#include "tern/conn.h"
#include "tern/counters.h"
#include "tern/histogram.h"
#include "tern/log_limit.h"
#include "tern/queue.h"
#include "tern/worker.h"

struct tern_backend_set;
struct tern_conn_epoll;
struct tern_request;
struct tern_ring;
struct tern_server;
struct tern_ticket_keys;
struct tern_tls_shard;

#define TERN_LISTENER_MAGIC 0x4c495354u /* "LIST" */
#define TERN_EVENT_MAGIC 0x45564e54u    /* "EVNT" */

struct tern_listener {
	uint32_t magic;
	int fd;
	/* epoll: accepting (EPOLLIN registered); ready: connections may be
	 * waiting, no EAGAIN since its last edge. */
	bool armed;
	bool ready;
	bool interest_off; /* epoll: EPOLLIN taken away at --max-conns */
	/* io_uring: a multishot accept in flight (far from --max-conns), or
	 * num_single single-shot ones (near it, so that the kernel never
	 * takes more from the backlog than there are slots: worker_accept.c);
	 * cancelling: a cancel is on its way, nothing new is armed until
	 * every accept in flight has completed. */
	bool multishot;
	bool cancelling;
	unsigned num_single;
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

/* Accepted sockets held back while --max-conns is reached: the accepts
 * that were in flight when the last slot went (worker_accept.c). Room for
 * this many, plus TERN_ACCEPT_SINGLE_MAX per listener. */
#define TERN_PARKED_BASE 64
/* Single-shot accepts in flight per listener near --max-conns (io_uring),
 * never more than the slots free when they are armed. */
#define TERN_ACCEPT_SINGLE_MAX 4u

/* Why an accepted socket was closed unserved: the reason label of
 * tern_connections_refused_total (TERN_COUNTER_FIELDS' conns_refused_*). */
enum tern_refuse_reason {
	TERN_REFUSE_DRAIN,     /* draining or stopping: the listeners' last sockets */
	TERN_REFUSE_NO_MEMORY, /* no memory for the connection */
	TERN_REFUSE_OVERFLOW,  /* more accepted at once than the parking holds */
	TERN_REFUSE_COUNT,
};

struct tern_worker_engine;

struct tern_worker {
	/* Set before the thread starts, then read-only. */
	const struct tern_worker_engine *engine; /* srv->io_engine's */
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
	/* Posted by the thread once start_err is set: the ring is up, or
	 * could not be. */
	sem_t started;
	int start_err;

	/* Written by other threads. */
	_Atomic unsigned requests;
	/* Written by this worker, read by the others: accepting is paused at
	 * --max-conns (or sockets are parked), so a slot freed anywhere
	 * should wake it (TERN_REQ_RESUME_ACCEPT; worker_accept.c). */
	_Atomic bool wants_slot;
	struct tern_queue queue; /* requests from control threads */

	/* Written by this worker, read by others: tern_clock_ms() when it
	 * last answered a TERN_REQ_KIND_PING, 0 before (health.h). Once a
	 * second, so sharing a cache line with the queue costs nothing. */
	_Atomic uint64_t ping_answered_ms;
	/* Written by this worker, read by others: the generation of the
	 * ticket key set it uses (key_handoff.h), stored after the swap. */
	_Atomic uint64_t ticket_key_generation;

	/* Owned by the worker thread. */
	/* What connections see of the worker (conn.h): the clock, the
	 * connection list, the timer lists, the counters. */
	struct tern_conn_host host;
	struct tern_worker_event tick_event, wake_event, flush_event;
	/* io_uring (worker_ring.c). */
	struct tern_ring *ring;
	uint64_t wake_value;
	struct __kernel_timespec tick_ts, flush_ts;
	uint64_t flush_armed_ms; /* the flush timeout in the ring, or 0 */
	/* epoll (worker_epoll.c). */
	struct tern_conn_epoll *epoll;
	uint64_t next_tick_ms;
	bool wake_pending; /* the eventfd had an edge: read it, then the queue */
	/* The ticket keys this worker's SSL_CTX encrypts and decrypts with;
	 * replaced only on this thread, from a TERN_REQ_KIND_TICKET_KEYS
	 * request, so the handshake path reads it without a lock. */
	struct tern_ticket_keys *ticket_keys;
	/* Accepted sockets waiting for a slot, oldest first; room for
	 * parked_cap (worker_accept.c). */
	int *parked;
	unsigned num_parked, parked_cap;
	bool accept_paused;
	/* accept() failing for another reason than a network error (EMFILE,
	 * ENFILE, ENOBUFS): retried each tick, warned once per interval. */
	struct tern_log_limit accept_failed;
	/* Refusals not yet logged, by reason, and when the last line was
	 * (at most one a second). */
	uint64_t refused_unlogged[TERN_REFUSE_COUNT];
	uint64_t refused_logged_ms;
	bool draining;
	bool stopping;
	uint64_t drain_deadline_ms;

	/* The backend set the worker starts with (a reference), until its
	 * thread makes it the first view of host.backends. */
	struct tern_backend_set *first_backends;

	struct tern_counters ctr;
	/* Accept to handshake done, per completed handshake; on cache lines
	 * of its own, like ctr (written by this worker only). */
	struct tern_histogram hs_hist;
};

/* Timer granularity: timeouts fire within this much of their deadline. */
#define TERN_TICK_MS 50

/* What differs between the I/O engines at the worker's level, chosen once
 * from srv->io_engine when the worker is made: tern_worker_ring_engine
 * (worker_ring.c) or tern_worker_epoll_engine (worker_epoll.c). The
 * functions run on the worker's thread. */
struct tern_worker_engine {
	const struct tern_conn_ops *conn_ops; /* the engine of its connections */
	/* Sets up the engine (the ring, or the epoll instance): its only
	 * user is this thread. Returns 0 or -errno (the worker does not
	 * start). */
	int (*setup)(struct tern_worker *w);
	/* The loop, until tern_worker_done; then frees what setup made. */
	void (*run)(struct tern_worker *w);
	/* Accepts on l again (nothing if it does already), with free_slots
	 * (at least 1) connection slots free now: on io_uring, how many
	 * single-shot accepts it may keep in flight, or whether a multishot
	 * one is safe. */
	void (*listener_arm)(struct tern_listener *l, unsigned free_slots);
	/* Stops accepting on l for now (--max-conns): nothing more is taken
	 * from its backlog, except by accepts already in flight. */
	void (*listener_pause)(struct tern_listener *l);
	/* Stops accepting on l for good, and closes it unless shared. */
	void (*listener_close)(struct tern_listener *l);
	/* Closes an accepted socket that does not become a connection. */
	void (*close_fd)(struct tern_worker *w, int fd);
	/* Every tick, with the timers' work. */
	void (*tick)(struct tern_worker *w);
};

extern const struct tern_worker_engine tern_worker_ring_engine;
extern const struct tern_worker_engine tern_worker_epoll_engine;

/* worker.c: what the loops of both engines share. Worker thread only. */

/* The loop ends: draining, and every connection freed. */
bool tern_worker_done(const struct tern_worker *w);

/* worker_accept.c: accepting against --max-conns. Worker thread only. */

/* Makes room for the parked sockets (after the listeners were added).
 * Returns 0 or -ENOMEM. */
int tern_worker_accept_setup(struct tern_worker *w);
void tern_worker_accept_free(struct tern_worker *w);

/* Accepting resumes on every listener, unless paused (--max-conns),
 * draining or stopping; with no slot free, it pauses instead. */
void tern_worker_arm_listeners(struct tern_worker *w);

/* Whether the worker may take one more socket from a backlog now (epoll,
 * before each accept4): a slot is free and accepting is not paused; with
 * no slot free, accepting pauses. */
bool tern_worker_may_accept(struct tern_worker *w);

/* accept() on l failed with err (a positive errno) for a reason the tick
 * retries: one warning per TERN_ACCEPT_WARN_INTERVAL_MS per worker, with
 * the count of failures since the last one, not one per attempt. */
void tern_worker_warn_accept_failed(struct tern_worker *w, const struct tern_listener *l, int err);

/* A client socket was accepted: a connection, or parked at --max-conns
 * (accepting pauses), or closed while draining (counted as refused). */
void tern_worker_on_accept(struct tern_worker *w, int fd);

/* Parked sockets are served and accepting resumes, if slots allow (a
 * slot freed here or on another worker: TERN_REQ_RESUME_ACCEPT, tick). */
void tern_worker_resume_accept(struct tern_worker *w);

/* Draining or stopping: the listeners stop for good; what this worker
 * still holds of them (parked sockets, the backlog of a listener of its
 * own) is closed and counted as refused (drain). */
void tern_worker_close_listeners(struct tern_worker *w);

/* Closes an accepted socket unserved and counts it (refused). */
void tern_worker_refuse(struct tern_worker *w, int fd, enum tern_refuse_reason why);

/* Logs the refusals not yet logged, at most once a second unless now
 * (the worker's end). */
void tern_worker_log_refused(struct tern_worker *w, bool now);

/* The tick: the deadline lists, drained buffers, the drain deadline,
 * accepting resumed when slots freed. The engine re-arms it. */
void tern_worker_on_tick(struct tern_worker *w);

/* The eventfd was read: request bits (drain, stop), then the queue. */
void tern_worker_on_wake(struct tern_worker *w);

/* Ticket flush deadlines that passed: their tickets become due. */
void tern_worker_expire_flushes(struct tern_worker *w);

/* One batch of due tickets, once per loop iteration. */
void tern_worker_write_due_tickets(struct tern_worker *w);

/* New connections choose from set (the caller's reference passes to w);
 * the previous set goes once no connection of w holds it. */
void tern_worker_adopt_backends(struct tern_worker *w, struct tern_backend_set *set);

/* worker_requests.c, on the worker thread: carries out a request popped
 * from w's queue. */
void tern_worker_handle_request(struct tern_worker *w, const struct tern_request *req);

/* worker_requests.c, after w's thread ended: releases what requests still
 * queued hold; a waiting reply's part says "not carried out". */
void tern_worker_discard_requests(struct tern_worker *w);

#endif
