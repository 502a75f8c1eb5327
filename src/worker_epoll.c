/* The worker's loop on epoll: one epoll instance per worker (conn_epoll.h
 * owns it), edge-triggered, its listeners and its eventfd registered
 * beside its connections' sockets. Timers come from epoll_wait's timeout:
 * the tick, the earliest ticket-flush deadline (to the millisecond) and
 * the earliest backend connect deadline; it is 0 while anything can run
 * at once (connection operations, due tickets, listeners with connections
 * waiting). What the loop does with each event is shared with io_uring
 * (worker.c). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tern/clock.h"
#include "tern/conn_epoll.h"
#include "tern/log.h"
#include "worker_internal.h"

/* Connections accepted per listener per loop iteration; the rest wait for
 * the next, so a burst of connects never holds the others' traffic. */
#define ACCEPT_BATCH 64u

/* Accepting resumes with EPOLLIN back and an attempt at once: whatever
 * waits in the backlog came while it was paused. accept_batch asks for a
 * free slot before each accept, so the count is not needed here. */
static void epoll_listener_arm(struct tern_listener *l, unsigned free_slots)
{
	(void)free_slots;
	if (l->armed || l->fd < 0)
		return;
	if (l->interest_off &&
	    tern_conn_epoll_interest(l->w->epoll, l->fd, tern_ud(l, TERN_OP_ACCEPT), true) == 0)
		l->interest_off = false;
	l->armed = l->ready = true;
}

/* Paused (--max-conns), a listener is not accepted on, and new
 * connections in its backlog do not wake the worker: EPOLLIN is taken
 * away until a slot frees. */
static void epoll_listener_pause(struct tern_listener *l)
{
	l->armed = false;
	if (!l->interest_off &&
	    tern_conn_epoll_interest(l->w->epoll, l->fd, tern_ud(l, TERN_OP_ACCEPT), false) == 0)
		l->interest_off = true;
}

/* A shared listener stays open for the other workers: only this
 * instance lets go of it. Closing one takes it out of the instance. */
static void epoll_listener_close(struct tern_listener *l)
{
	l->armed = l->ready = false;
	if (l->shared)
		tern_conn_epoll_del(l->w->epoll, l->fd);
	else
		(void)close(l->fd);
}

static void epoll_close_fd(struct tern_worker *w, int fd)
{
	(void)w;
	(void)close(fd);
}

static void epoll_tick(struct tern_worker *w)
{
	(void)w;
}

static int set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* The instance, with the eventfd and the listeners in it, non-blocking:
 * each edge is followed by reads or accepts until EAGAIN. An eventfd
 * with a count already (a request before the start) reports it at once. */
static int epoll_setup(struct tern_worker *w)
{
	int ret = tern_conn_epoll_new((uint32_t)w->cfg->buffer_size, w->cfg->read_buffers > 0,
				      &w->epoll);

	if (ret < 0)
		return ret;
	w->host.engine = w->epoll;
	ret = set_nonblock(w->wake_fd);
	if (ret == 0)
		ret = tern_conn_epoll_add(w->epoll, w->wake_fd,
					  tern_ud(&w->wake_event, TERN_OP_WORKER));
	for (size_t i = 0; i < w->num_listeners && ret == 0; i++) {
		struct tern_listener *l = &w->listeners[i];
		ret = set_nonblock(l->fd);
		if (ret == 0)
			ret = tern_conn_epoll_add(w->epoll, l->fd, tern_ud(l, TERN_OP_ACCEPT));
	}
	if (ret < 0) {
		tern_conn_epoll_free(w->epoll);
		w->epoll = NULL;
		w->host.engine = NULL;
	}
	return ret;
}

/* An event that is not a connection's: a listener's or the eventfd's. */
static void on_event(void *ctx, uint64_t ud, uint32_t events)
{
	struct tern_worker *w = ctx;
	void *obj = (void *)(uintptr_t)(ud & ~(uint64_t)TERN_OP_MASK);

	(void)events;
	switch (ud & TERN_OP_MASK) {
	case TERN_OP_ACCEPT: {
		struct tern_listener *l = obj;
		assert(l->magic == TERN_LISTENER_MAGIC && l->w == w);
		if (l->fd >= 0)
			l->ready = true;
		break;
	}
	case TERN_OP_WORKER: {
		struct tern_worker_event *ev = obj;
		assert(ev->magic == TERN_EVENT_MAGIC && ev->w == w && ev->kind == TERN_EVENT_WAKE);
		(void)ev;
		w->wake_pending = true;
		break;
	}
	default:
		abort();
	}
}

/* One read resets the eventfd's count; a wake-up after it comes with an
 * edge of its own. Then the requests (worker.c). */
static void on_wake(struct tern_worker *w)
{
	uint64_t value;

	w->wake_pending = false;
	if (read(w->wake_fd, &value, sizeof(value)) < 0 && errno != EAGAIN && errno != EINTR)
		tern_log(TERN_LOG_ERROR, "worker %u: wake read: %s", w->index, strerror(errno));
	tern_worker_on_wake(w);
}

/* Accepts on l until EAGAIN (then the next edge), a batch at most, while
 * slots are free. Errors
 * the kernel passes on from the network (accept(2)) are retried; others
 * (EMFILE, ENOBUFS) stop accepting on l until the tick re-arms it, so a
 * persistent error costs one attempt per tick, not a spin. */
static void accept_batch(struct tern_worker *w, struct tern_listener *l)
{
	/* A slot before each accept: at --max-conns the rest wait in the
	 * backlog (tern_worker_may_accept pauses, l->armed false). */
	for (unsigned n = 0; n < ACCEPT_BATCH && l->armed && l->ready && tern_worker_may_accept(w);
	     n++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			tern_worker_on_accept(w, fd); /* may pause: l->armed false */
			continue;
		}
		switch (errno) {
		case EAGAIN:
			l->ready = false;
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case ENETDOWN:
		case ENOPROTOOPT:
		case EHOSTDOWN:
		case ENONET:
		case EHOSTUNREACH:
		case ENETUNREACH:
		case EOPNOTSUPP:
			continue;
		default:
			tern_worker_warn_accept_failed(w, l, errno);
			l->armed = false;
			return;
		}
	}
}

static bool listeners_ready(const struct tern_worker *w)
{
	for (size_t i = 0; i < w->num_listeners; i++)
		if (w->listeners[i].armed && w->listeners[i].ready)
			return true;
	return false;
}

/* How long epoll_wait may sleep: 0 while something can run now, else
 * until the earliest of the tick, the first ticket-flush deadline and the
 * first connect deadline. */
static int wait_ms(struct tern_worker *w)
{
	uint64_t now = tern_clock_ms();
	uint64_t next = w->next_tick_ms;
	uint64_t t;

	if (w->wake_pending || tern_conn_epoll_busy(w->epoll) ||
	    !tern_list_empty(&w->host.tickets_due) || listeners_ready(w))
		return 0;
	if ((t = tern_timer_next(&w->host.ticket_flush)) < next)
		next = t;
	if ((t = tern_conn_epoll_next_deadline(w->epoll)) < next)
		next = t;
	return next > now ? (int)(next - now) : 0;
}

static void epoll_run(struct tern_worker *w)
{
	w->next_tick_ms = w->host.now_ms + TERN_TICK_MS;
	tern_worker_arm_listeners(w);
	while (!tern_worker_done(w)) {
		int ret = tern_conn_epoll_wait(w->epoll, wait_ms(w), on_event, w);
		if (ret < 0 && ret != -EINTR) {
			tern_log(TERN_LOG_ERROR, "worker %u: epoll: %s", w->index, strerror(-ret));
			break;
		}
		w->host.now_ms = tern_clock_ms();
		if (w->wake_pending)
			on_wake(w);
		if (w->host.now_ms >= w->next_tick_ms) {
			tern_worker_on_tick(w);
			w->next_tick_ms = w->host.now_ms + TERN_TICK_MS;
		}
		tern_worker_expire_flushes(w);
		for (size_t i = 0; i < w->num_listeners; i++)
			accept_batch(w, &w->listeners[i]);
		tern_conn_epoll_run(w->epoll, w->host.now_ms);
		tern_worker_write_due_tickets(w);
	}
	tern_conn_epoll_free(w->epoll);
	w->epoll = NULL;
	w->host.engine = NULL;
}

const struct tern_worker_engine tern_worker_epoll_engine = {
	.conn_ops = &tern_conn_epoll_ops,
	.setup = epoll_setup,
	.run = epoll_run,
	.listener_arm = epoll_listener_arm,
	.listener_pause = epoll_listener_pause,
	.listener_close = epoll_listener_close,
	.close_fd = epoll_close_fd,
	.tick = epoll_tick,
};
