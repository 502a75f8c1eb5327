/* The epoll engine of connections: the socket operations a connection
 * asks for (conn.h's struct tern_conn_ops) over non-blocking sockets, each
 * registered once, edge-triggered, with the worker's epoll instance, which
 * this module owns (the worker adds its listeners and its eventfd to it).
 *
 * The core is not re-entrant, so an operation never completes inside the
 * call that posts it: it is recorded on its connection (at most one recv
 * and one send per socket, and the backend connect, as the core asks) and
 * tried when the loop next runs (tern_conn_epoll_run): at once if its
 * socket may be ready, else once epoll reports an edge on it. A try that
 * meets EAGAIN waits for the next edge. A result reaches the core through
 * tern_conn_on_* and then tern_conn_settle, as conn_ring.c's completions
 * do; what was pending when a side closed completes -ECANCELED on the next
 * run, never inside the close.
 *
 * Memory: a recv of a buffer that holds no memory waits for readability
 * without any, then reads into the worker's scratch buffer of
 * --buffer-size, which the connection borrows for that completion
 * (conn_engine.h), so an idle connection holds no buffer memory, as on
 * io_uring. A backend connect gives up after its timeout with
 * -ECANCELED: a deadline the loop waits for (tern_conn_epoll_next_deadline).
 *
 * One instance per worker; every function here runs on that worker's
 * thread. */
#ifndef TERN_CONN_EPOLL_H
#define TERN_CONN_EPOLL_H

#include <stdbool.h>
#include <stdint.h>

#include "tern/conn.h"

struct tern_conn_epoll;

/* A host whose connections run on e has host->engine = e. */
extern const struct tern_conn_ops tern_conn_epoll_ops;

/* Makes an epoll instance and, when lend (--read-buffers above 0), a
 * scratch buffer of buffer_size bytes (the hosts' --buffer-size); without
 * one, every read goes into the connection's own memory, which an idle
 * connection then keeps, as on io_uring without provided buffers.
 * Returns 0 with *out the caller's (tern_conn_epoll_free), or -errno. */
__attribute__((warn_unused_result))
int tern_conn_epoll_new(uint32_t buffer_size, bool lend, struct tern_conn_epoll **out);

/* Closes the epoll instance and frees e once every connection on it is
 * freed. NULL does nothing. */
void tern_conn_epoll_free(struct tern_conn_epoll *e);

/* Registers fd, edge-triggered, for input, for something other than a
 * connection (a listener, the eventfd): its events go to
 * tern_conn_epoll_wait's fn with ud, whose low bits (worker.h's
 * enum tern_op) must be neither TERN_OP_C_RECV nor TERN_OP_B_RECV, which
 * name connection sockets. Returns 0 or -errno. */
__attribute__((warn_unused_result))
int tern_conn_epoll_add(struct tern_conn_epoll *e, int fd, uint64_t ud);

/* For a descriptor registered with tern_conn_epoll_add: input events on
 * (readable) or off, e.g. a listener paused at --max-conns whose new
 * connections must not wake the worker. Returns 0 or -errno. */
__attribute__((warn_unused_result))
int tern_conn_epoll_interest(struct tern_conn_epoll *e, int fd, uint64_t ud, bool readable);

/* Takes fd out of the instance: for a descriptor that stays open (an
 * inherited listener other workers still accept on). */
void tern_conn_epoll_del(struct tern_conn_epoll *e, int fd);

typedef void tern_conn_epoll_event_fn(void *ctx, uint64_t ud, uint32_t events);

/* Waits up to timeout_ms (-1: no bound) for events. One on a connection's
 * socket marks it ready for tern_conn_epoll_run, completing nothing, so
 * every connection a batch names is alive while the batch is read;
 * others go to fn(ctx, ud, events). Returns the number of events, or
 * -errno (-EINTR is normal). */
__attribute__((warn_unused_result))
int tern_conn_epoll_wait(struct tern_conn_epoll *e, int timeout_ms,
			 tern_conn_epoll_event_fn *fn, void *ctx);

/* True while tern_conn_epoll_run has operations to try or to complete:
 * the loop must not sleep. */
bool tern_conn_epoll_busy(const struct tern_conn_epoll *e);

/* The earliest backend connect deadline (ms, CLOCK_MONOTONIC), or
 * TERN_TIMER_NEVER. */
uint64_t tern_conn_epoll_next_deadline(const struct tern_conn_epoll *e);

/* Gives up the connects whose deadline is at or before now_ms, then
 * visits each connection waiting now: tries each of its operations that
 * may be ready once, and completes those with a result. What their
 * completions post is tried on a later run. May free connections. */
void tern_conn_epoll_run(struct tern_conn_epoll *e, uint64_t now_ms);

#endif
