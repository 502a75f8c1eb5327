/* The worker's loop on io_uring: one ring per worker, accepts on its
 * listeners (multishot far from --max-conns, single-shot near it), the tick, the ticket-flush deadline and the eventfd read
 * as ring operations, every completion dispatched through one table by
 * its tag (worker.h's enum tern_op), and one submit per loop iteration.
 * What the loop does with each event is shared with epoll (worker.c). */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "tern/clock.h"
#include "tern/conn.h"
#include "tern/conn_ring.h"
#include "tern/log.h"
#include "tern/ring.h"
#include "tern/server.h"
#include "worker_internal.h"

/* How far from --max-conns a multishot accept is safe: one wake-up of
 * it accepts everything in the listener's backlog (up to SOMAXCONN,
 * sock.c) without asking, and every worker's may do so at once. Closer
 * than this, single-shot accepts, as many as the slots free. */
static unsigned multishot_headroom(const struct tern_worker *w)
{
	return w->srv->num_workers * (unsigned)w->num_listeners * SOMAXCONN;
}

/* Cancels every accept in flight on l (they share one user_data); each
 * completes, with a socket or -ECANCELED, before anything is armed anew. */
static void ring_listener_cancel(struct tern_listener *l)
{
	if (l->cancelling || (!l->multishot && l->num_single == 0))
		return;
	l->cancelling = true;
	tern_ring_cancel(l->w->ring, tern_ud(l, TERN_OP_ACCEPT));
}

static void ring_listener_arm(struct tern_listener *l, unsigned free_slots)
{
	struct tern_worker *w = l->w;
	bool multishot_safe = free_slots >= multishot_headroom(w);

	if (l->fd < 0 || l->cancelling)
		return;
	if (l->multishot) {
		if (!multishot_safe)
			ring_listener_cancel(l);
		return;
	}
	if (multishot_safe) {
		/* The single-shot ones in flight finish first. */
		if (l->num_single == 0) {
			l->multishot = true;
			tern_ring_accept_multishot(w->ring, l->fd, tern_ud(l, TERN_OP_ACCEPT));
		}
		return;
	}
	unsigned want = free_slots < TERN_ACCEPT_SINGLE_MAX ? free_slots : TERN_ACCEPT_SINGLE_MAX;
	for (; l->num_single < want; l->num_single++)
		tern_ring_accept(w->ring, l->fd, tern_ud(l, TERN_OP_ACCEPT));
}

/* Accepts in flight may still deliver a few sockets before the
 * cancellation lands (worker_accept.c parks them). */
static void ring_listener_pause(struct tern_listener *l)
{
	ring_listener_cancel(l);
}

static void ring_listener_close(struct tern_listener *l)
{
	ring_listener_cancel(l);
	if (!l->shared)
		tern_ring_close(l->w->ring, l->fd);
}

static void ring_close_fd(struct tern_worker *w, int fd)
{
	tern_ring_close(w->ring, fd);
}

static void ring_tick(struct tern_worker *w)
{
	tern_ring_buffers_tick(w->ring);
}

/* --read-buffers provided buffers per worker, shared by its connections
 * for their reads (see conn.c): a buffer is held only from the moment data
 * arrives until the event is handled, so a few dozen serve thousands of
 * connections; when all are taken a read falls back to the connection's
 * own buffer. Kernels without buffer rings (before 5.19) run without. */
static void worker_provide_buffers(struct tern_worker *w)
{
	unsigned count = w->cfg->read_buffers;

	if (count == 0)
		return;
	int ret = tern_ring_provide_buffers(w->ring, count, (uint32_t)w->cfg->buffer_size);
	if (ret < 0)
		tern_log(TERN_LOG_INFO, "worker %u: no provided buffers (%s): each connection "
			 "reads into buffers of its own", w->index, strerror(-ret));
}

static int ring_setup(struct tern_worker *w)
{
	int ret = tern_ring_new(w->cfg->ring_entries, &w->ring);
	if (ret == 0)
		worker_provide_buffers(w);
	return ret;
}

static void on_accept(struct tern_worker *w, uint64_t ud, int32_t res, uint32_t flags)
{
	struct tern_listener *l = (struct tern_listener *)(uintptr_t)(ud & ~(uint64_t)TERN_OP_MASK);

	assert(l->magic == TERN_LISTENER_MAGIC);
	if (!tern_ring_cqe_more(flags)) {
		/* The multishot accept's last completion, or a single one's. */
		if (l->multishot)
			l->multishot = false;
		else if (l->num_single > 0)
			l->num_single--;
		if (!l->multishot && l->num_single == 0)
			l->cancelling = false;
	}
	if (res >= 0)
		tern_worker_on_accept(w, res);
	else if (res != -ECANCELED) {
		/* -ECANCELED is ours (pause, drain, a change of kind). Others
		 * (EMFILE, ENOBUFS) are left to the tick to re-arm, so a
		 * persistent error costs one attempt per tick, not a spin. */
		tern_worker_warn_accept_failed(w, l, -res);
		return;
	}
	/* Single-shot accepts are topped up to the slots free, one kind of
	 * accept is replaced by the other, or accepting pauses. */
	tern_worker_arm_listeners(w);
}

/* --ticket-flush-delay is kept to the millisecond, not to the tick: a
 * timeout of its own for the earliest flush deadline. Every deadline is
 * the same delay after its request, so the earliest is the first armed:
 * one timeout at a time is enough. */
static void arm_flush(struct tern_worker *w)
{
	uint64_t next = tern_timer_next(&w->host.ticket_flush);
	if (next == TERN_TIMER_NEVER || w->flush_armed_ms)
		return;
	uint64_t in_ms = next > w->host.now_ms ? next - w->host.now_ms : 0;
	w->flush_ts.tv_sec = (long long)(in_ms / 1000);
	w->flush_ts.tv_nsec = (long long)(in_ms % 1000) * 1000000LL;
	w->flush_armed_ms = next;
	tern_ring_timeout(w->ring, &w->flush_ts, tern_ud(&w->flush_event, TERN_OP_WORKER));
}

static void arm_tick(struct tern_worker *w)
{
	w->tick_ts.tv_sec = 0;
	w->tick_ts.tv_nsec = TERN_TICK_MS * 1000000LL;
	tern_ring_timeout(w->ring, &w->tick_ts, tern_ud(&w->tick_event, TERN_OP_WORKER));
}

static void arm_wake(struct tern_worker *w)
{
	tern_ring_read(w->ring, w->wake_fd, &w->wake_value, sizeof(w->wake_value),
		       tern_ud(&w->wake_event, TERN_OP_WORKER));
}

static void on_worker_event(struct tern_worker *w, uint64_t ud, int32_t res, uint32_t flags)
{
	struct tern_worker_event *ev =
		(struct tern_worker_event *)(uintptr_t)(ud & ~(uint64_t)TERN_OP_MASK);

	(void)flags;
	assert(ev->magic == TERN_EVENT_MAGIC && ev->w == w);
	switch (ev->kind) {
	case TERN_EVENT_TICK:
		tern_worker_on_tick(w);
		arm_tick(w);
		break;
	case TERN_EVENT_WAKE:
		if (res < 0 && res != -EINTR && res != -ECANCELED)
			tern_log(TERN_LOG_ERROR, "worker %u: wake read: %s", w->index, strerror(-res));
		tern_worker_on_wake(w);
		arm_wake(w);
		break;
	case TERN_EVENT_FLUSH:
		w->flush_armed_ms = 0;
		tern_worker_expire_flushes(w);
		break;
	}
}

/* The completion table: every operation's completion lands here by its
 * tag. Connection operations all go to conn.c. */
typedef void completion_fn(struct tern_worker *w, uint64_t ud, int32_t res, uint32_t flags);

static void on_conn_op(struct tern_worker *w, uint64_t ud, int32_t res, uint32_t flags)
{
	(void)w;
	tern_conn_ring_complete(ud, (enum tern_op)(ud & TERN_OP_MASK), res, flags);
}

static void on_ignore(struct tern_worker *w, uint64_t ud, int32_t res, uint32_t flags)
{
	(void)w, (void)ud, (void)res, (void)flags;
}

static completion_fn *const completion_table[TERN_OP_COUNT] = {
	[TERN_OP_IGNORE] = on_ignore,
	[TERN_OP_ACCEPT] = on_accept,
	[TERN_OP_C_RECV] = on_conn_op,
	[TERN_OP_C_SEND] = on_conn_op,
	[TERN_OP_B_CONNECT] = on_conn_op,
	[TERN_OP_B_RECV] = on_conn_op,
	[TERN_OP_B_SEND] = on_conn_op,
	[TERN_OP_WORKER] = on_worker_event,
};

static void dispatch(void *ctx, uint64_t ud, int32_t res, uint32_t flags)
{
	completion_table[ud & TERN_OP_MASK]((struct tern_worker *)ctx, ud, res, flags);
}

static void ring_run(struct tern_worker *w)
{
	tern_worker_arm_listeners(w);
	arm_wake(w);
	arm_tick(w);
	while (!tern_worker_done(w)) {
		arm_flush(w);
		/* With tickets still to write, look for completions without
		 * waiting: the loop comes back to them at once. */
		int ret = tern_list_empty(&w->host.tickets_due) ? tern_ring_submit_and_wait(w->ring)
								 : tern_ring_submit_and_poll(w->ring);
		if (ret < 0 && ret != -EINTR && ret != -ETIME && ret != -EAGAIN && ret != -EBUSY) {
			tern_log(TERN_LOG_ERROR, "worker %u: io_uring: %s", w->index, strerror(-ret));
			break;
		}
		w->host.now_ms = tern_clock_ms();
		tern_ring_drain(w->ring, dispatch, w);
		tern_worker_write_due_tickets(w);
	}
	/* Push out the last closes; the ring's exit cancels the tick and the
	 * wake read. */
	tern_ring_submit(w->ring);
	tern_ring_free(w->ring);
	w->ring = NULL;
}

const struct tern_worker_engine tern_worker_ring_engine = {
	.conn_ops = &tern_conn_ring_ops,
	.setup = ring_setup,
	.run = ring_run,
	.listener_arm = ring_listener_arm,
	.listener_pause = ring_listener_pause,
	.listener_close = ring_listener_close,
	.close_fd = ring_close_fd,
	.tick = ring_tick,
};
