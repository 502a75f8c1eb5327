/* The worker: its start and end, its thread's loop, accepting, timers and
 * wake-ups. What other threads ask of it is in worker_requests.c;
 * connections themselves are in conn.c. */
#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "tern/clock.h"
#include "tern/conn.h"
#include "tern/conn_ring.h"
#include "tern/log.h"
#include "tern/request.h"
#include "tern/ring.h"
#include "tern/server.h"
#include "tern/ticket_keys.h"
#include "tern/tls_ctx.h"
#include "worker_internal.h"

/* Timer granularity: timeouts fire within this much of their deadline. */
#define TERN_TICK_MS 50

/* Counters and histogram sit on cache lines of their own (counters.h). */
_Static_assert(offsetof(struct tern_worker, ctr) % 64 == 0, "counters on their own lines");
_Static_assert(offsetof(struct tern_worker, hs_hist) % 64 == 0, "histogram on its own lines");

static void listener_arm(struct tern_listener *l)
{
	if (l->armed || l->fd < 0)
		return;
	l->armed = true;
	tern_ring_accept_multishot(l->w->ring, l->fd, tern_ud(l, TERN_OP_ACCEPT));
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

/* Re-arms every listener whose accept ended, unless accepting is paused. */
static void worker_arm_listeners(struct tern_worker *w)
{
	if (w->accept_paused || w->draining || w->stopping)
		return;
	for (size_t i = 0; i < w->num_listeners; i++)
		listener_arm(&w->listeners[i]);
}

/* At --max-conns: cancel the multishot accepts; the kernel backlog holds
 * new connections until a slot frees. */
static void worker_pause_accept(struct tern_worker *w)
{
	if (w->accept_paused)
		return;
	w->accept_paused = true;
	tern_log(TERN_LOG_DEBUG, "worker %u: --max-conns %u reached, accepting paused", w->index,
		 w->cfg->max_conns);
	for (size_t i = 0; i < w->num_listeners; i++) {
		struct tern_listener *l = &w->listeners[i];
		if (l->armed)
			tern_ring_cancel(w->ring, tern_ud(l, TERN_OP_ACCEPT));
	}
}

/* Takes a process-wide connection slot; false at --max-conns. */
static bool worker_take_slot(struct tern_worker *w)
{
	unsigned open = atomic_fetch_add_explicit(&w->srv->conns_open, 1, memory_order_relaxed);
	if (open < w->cfg->max_conns)
		return true;
	atomic_fetch_sub_explicit(&w->srv->conns_open, 1, memory_order_relaxed);
	return false;
}

/* Serves parked sockets while slots allow, then accepts again. */
static void worker_resume_accept(struct tern_worker *w)
{
	if (!w->accept_paused || w->draining || w->stopping)
		return;
	while (w->num_parked > 0) {
		if (!worker_take_slot(w))
			return;
		int fd = w->parked[0];
		w->num_parked--;
		memmove(&w->parked[0], &w->parked[1], w->num_parked * sizeof(w->parked[0]));
		tern_conn_ring_accept(w, fd);
	}
	if (atomic_load_explicit(&w->srv->conns_open, memory_order_relaxed) >= w->cfg->max_conns)
		return;
	w->accept_paused = false;
	worker_arm_listeners(w);
}

void tern_worker_slot_freed(struct tern_worker *w)
{
	if (w->accept_paused)
		worker_resume_accept(w);
}

static void on_accept(struct tern_worker *w, uint64_t ud, int32_t res, uint32_t flags)
{
	struct tern_listener *l = (struct tern_listener *)(uintptr_t)(ud & ~(uint64_t)TERN_OP_MASK);

	assert(l->magic == TERN_LISTENER_MAGIC);
	if (!tern_ring_cqe_more(flags))
		l->armed = false;
	if (res < 0) {
		/* -ECANCELED is ours (pause, drain). Others (EMFILE, ENOBUFS)
		 * leave the listener unarmed; the tick re-arms it, so a
		 * persistent error costs one attempt per tick, not a spin. */
		if (res != -ECANCELED)
			tern_log(TERN_LOG_WARN, "worker %u: accept on %s: %s", w->index, l->addr->text,
				 strerror(-res));
		return;
	}
	if (w->draining || w->stopping) {
		tern_ring_close(w->ring, res);
		return;
	}
	if (!worker_take_slot(w)) {
		if (w->num_parked < TERN_MAX_PARKED)
			w->parked[w->num_parked++] = res;
		else
			tern_ring_close(w->ring, res);
		worker_pause_accept(w);
		return;
	}
	tern_conn_ring_accept(w, res);
	if (!l->armed)
		worker_arm_listeners(w);
}

static void worker_close_listeners(struct tern_worker *w)
{
	for (size_t i = 0; i < w->num_listeners; i++) {
		struct tern_listener *l = &w->listeners[i];
		if (l->fd < 0)
			continue;
		if (l->armed)
			tern_ring_cancel(w->ring, tern_ud(l, TERN_OP_ACCEPT));
		/* A shared socket stays open for the other workers, and its
		 * backlog for whoever passed it to us (the service manager's
		 * next instance): closed once, by the server, at the end. */
		if (!l->shared)
			tern_ring_close(w->ring, l->fd);
		l->fd = -1;
	}
	for (unsigned i = 0; i < w->num_parked; i++)
		tern_ring_close(w->ring, w->parked[i]);
	w->num_parked = 0;
}

static void worker_abort_all(struct tern_worker *w, const char *reason)
{
	while (!tern_list_empty(&w->host.conns))
		tern_conn_abort(tern_conn_from_link(w->host.conns.next), reason);
}

static void worker_expire(struct tern_worker *w, struct tern_timer_list *list)
{
	struct tern_timer *t;
	while ((t = tern_timer_pop_due(list, w->host.now_ms)))
		tern_conn_expire(tern_conn_from_timer(t));
}

static void worker_expire_flushes(struct tern_worker *w)
{
	struct tern_timer *t;
	while ((t = tern_timer_pop_due(&w->host.ticket_flush, w->host.now_ms)))
		tern_conn_tickets_flush_expired(tern_conn_from_flush(t));
}

/* --ticket-flush-delay is kept to the millisecond, not to the tick: a
 * timeout of its own for the earliest flush deadline. Every deadline is
 * the same delay after its request, so the earliest is the first armed:
 * one timeout at a time is enough. */
static void worker_arm_flush(struct tern_worker *w)
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

/* Tickets whose time came are written a batch per loop iteration, so that
 * `tickets all` over thousands of connections never holds the loop: the
 * other connections' completions are handled between batches. A batch is
 * about this many tickets (each costs tens of microseconds). */
#define TICKET_BATCH 32u

static void worker_drain_queue(struct tern_worker *w)
{
	struct tern_request req;
	while (tern_queue_pop(&w->queue, &req))
		tern_worker_handle_request(w, &req);
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

static void on_tick(struct tern_worker *w)
{
	worker_expire(w, &w->host.handshaking);
	worker_expire(w, &w->host.idle);
	worker_expire(w, &w->host.lingering);
	worker_expire_flushes(w);
	while (!tern_list_empty(&w->host.spare))
		tern_conn_release_spare(tern_conn_from_spare(w->host.spare.next));
	tern_ring_buffers_tick(w->ring);
	if (w->draining && !w->stopping && w->host.now_ms >= w->drain_deadline_ms) {
		tern_log(TERN_LOG_INFO, "worker %u: --drain-timeout passed, closing %llu connections",
			 w->index, (unsigned long long)tern_counter_get(&w->ctr.conns_active));
		w->stopping = true;
		worker_abort_all(w, "drain_timeout");
	}
	if (w->accept_paused)
		worker_resume_accept(w); /* a slot may have freed on another worker */
	else
		worker_arm_listeners(w);
	arm_tick(w);
}

static void on_wake(struct tern_worker *w, int32_t res)
{
	unsigned req = atomic_exchange_explicit(&w->requests, 0, memory_order_acquire);

	if (res < 0 && res != -EINTR && res != -ECANCELED)
		tern_log(TERN_LOG_ERROR, "worker %u: wake read: %s", w->index, strerror(-res));
	if ((req & TERN_REQ_DRAIN) && !w->draining) {
		w->draining = true;
		w->drain_deadline_ms = w->host.now_ms + w->cfg->drain_timeout_ms;
		worker_close_listeners(w);
	}
	if ((req & TERN_REQ_STOP) && !w->stopping) {
		w->draining = w->stopping = true;
		worker_close_listeners(w);
		worker_abort_all(w, "shutdown");
	}
	/* After consuming the wake-up: a request published after this pop
	 * loop ends comes with a wake-up of its own (queue.h). */
	worker_drain_queue(w);
	arm_wake(w);
}

static void on_worker_event(struct tern_worker *w, uint64_t ud, int32_t res, uint32_t flags)
{
	struct tern_worker_event *ev =
		(struct tern_worker_event *)(uintptr_t)(ud & ~(uint64_t)TERN_OP_MASK);

	(void)flags;
	assert(ev->magic == TERN_EVENT_MAGIC && ev->w == w);
	switch (ev->kind) {
	case TERN_EVENT_TICK:
		on_tick(w);
		break;
	case TERN_EVENT_WAKE:
		on_wake(w, res);
		break;
	case TERN_EVENT_FLUSH:
		w->flush_armed_ms = 0;
		worker_expire_flushes(w);
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

static void worker_wake(struct tern_worker *w)
{
	uint64_t one = 1;
	/* An eventfd write only fails when the counter would overflow, and
	 * then the worker has a wake-up pending anyway. */
	ssize_t ignored = write(w->wake_fd, &one, sizeof(one));
	(void)ignored;
}

void tern_worker_request(struct tern_worker *w, unsigned req)
{
	atomic_fetch_or_explicit(&w->requests, req, memory_order_release);
	worker_wake(w);
}

int tern_worker_push_wait(struct tern_worker *w, const struct tern_request *req,
			  unsigned timeout_ms)
{
	uint64_t give_up = tern_clock_ms() + timeout_ms;
	for (;;) {
		int ret = tern_worker_push(w, req);
		if (ret != -EBUSY || tern_clock_ms() >= give_up)
			return ret;
		sched_yield();
	}
}

int tern_worker_push(struct tern_worker *w, const struct tern_request *req)
{
	int ret = tern_queue_push(&w->queue, req);
	if (ret == 0)
		worker_wake(w);
	return ret;
}

/* The worker thread's body. */
static void *worker_main(void *arg)
{
	struct tern_worker *w = arg;
	struct tern_server *srv = w->srv;

	tern_conn_host_init(&w->host);
	w->host.ops = &tern_conn_ring_ops;
	w->host.cfg = w->cfg;
	w->host.ctr = &w->ctr;
	w->host.hs_hist = &w->hs_hist;
	w->host.worker_index = w->index;
	w->host.next_backend = w->index;
	w->host.now_ms = tern_clock_ms();
	w->tick_event = (struct tern_worker_event){TERN_EVENT_MAGIC, TERN_EVENT_TICK, w};
	w->wake_event = (struct tern_worker_event){TERN_EVENT_MAGIC, TERN_EVENT_WAKE, w};
	w->flush_event = (struct tern_worker_event){TERN_EVENT_MAGIC, TERN_EVENT_FLUSH, w};

	/* The ring is made here: its creator is its only submitter. */
	w->start_err = tern_ring_new(w->cfg->ring_entries, &w->ring);
	if (w->start_err == 0)
		worker_provide_buffers(w);
	if (w->start_err < 0)
		atomic_fetch_sub_explicit(&srv->workers_running, 1, memory_order_release);
	sem_post(&w->started);
	if (w->start_err < 0)
		return NULL;

	worker_arm_listeners(w);
	arm_wake(w);
	arm_tick(w);
	while (!(w->draining && w->host.num_conns == 0)) {
		worker_arm_flush(w);
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
		(void)tern_conn_host_write_due_tickets(&w->host, TICKET_BATCH);
	}
	/* Push out the last closes; the ring's exit cancels the tick and the
	 * wake read. */
	tern_ring_submit(w->ring);
	tern_ring_free(w->ring);
	w->ring = NULL;
	atomic_fetch_sub_explicit(&srv->workers_running, 1, memory_order_release);
	return NULL;
}

/* ------------------------------------------------------- start and end */

int tern_worker_new(struct tern_server *srv, unsigned index, struct tern_worker **out,
		    char *err, size_t err_len)
{
	/* aligned_alloc, not calloc: the counters and the histogram are
	 * 64-byte aligned, each on cache lines of its own. */
	size_t align = _Alignof(struct tern_worker);
	size_t size = (sizeof(struct tern_worker) + align - 1) & ~(align - 1);
	struct tern_worker *w = aligned_alloc(align, size);
	int ret;

	*out = NULL;
	if (!w) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	memset(w, 0, sizeof(*w));
	w->index = index;
	w->srv = srv;
	w->cfg = srv->cfg;
	w->wake_fd = -1;
	sem_init(&w->started, 0, 0);
	/* Every shard encrypts and decrypts tickets with the same keys, so a
	 * session resumes on whichever worker the kernel hands the reconnect:
	 * each of the shard's contexts reads them through &w->ticket_keys. */
	w->ticket_keys = tern_ticket_keys_ref(srv->ticket_keys);
	ret = tern_worker_build_shard(w, w->cfg, srv->identities, &w->shard, err, err_len);
	if (ret < 0)
		goto fail;
	w->host.ssl_ctx = tern_tls_shard_default_ctx(w->shard);
	ret = tern_queue_init(&w->queue, TERN_WORKER_QUEUE_CAPACITY);
	if (ret < 0) {
		snprintf(err, err_len, "out of memory");
		goto fail;
	}
	w->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (w->wake_fd < 0) {
		ret = -errno;
		snprintf(err, err_len, "eventfd: %s", strerror(errno));
		goto fail;
	}
	*out = w;
	return 0;
fail:
	tern_worker_free(w);
	return ret;
}

int tern_worker_add_listener(struct tern_worker *w, int fd, const struct tern_addr *addr,
			     bool shared)
{
	struct tern_listener *grown =
		realloc(w->listeners, (w->num_listeners + 1) * sizeof(*w->listeners));

	if (!grown)
		return -ENOMEM;
	w->listeners = grown;
	/* Before start: nothing points at the listeners yet (an accept's
	 * user_data does once it is armed), so they may move. */
	w->listeners[w->num_listeners++] = (struct tern_listener){
		.magic = TERN_LISTENER_MAGIC, .fd = fd, .shared = shared, .addr = addr, .w = w};
	return 0;
}

int tern_worker_listen_addr(const struct tern_worker *w, size_t i, struct sockaddr *out,
			    socklen_t *len)
{
	if (i >= w->num_listeners || w->listeners[i].fd < 0)
		return -ENOENT;
	return getsockname(w->listeners[i].fd, out, len) < 0 ? -errno : 0;
}

int tern_worker_start(struct tern_worker *w)
{
	return -pthread_create(&w->thread, NULL, worker_main, w);
}

int tern_worker_wait_started(struct tern_worker *w)
{
	while (sem_wait(&w->started) < 0 && errno == EINTR)
		;
	/* start_err was written before the post. */
	return w->start_err;
}

void tern_worker_join(struct tern_worker *w)
{
	pthread_join(w->thread, NULL);
}

void tern_worker_free(struct tern_worker *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->num_listeners; i++)
		if (w->listeners[i].fd >= 0 && !w->listeners[i].shared)
			close(w->listeners[i].fd);
	free(w->listeners);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	tern_worker_discard_requests(w);
	tern_queue_destroy(&w->queue);
	tern_tls_shard_free(w->shard);
	tern_ticket_keys_unref(w->ticket_keys);
	sem_destroy(&w->started);
	free(w);
}

int tern_worker_build_shard(struct tern_worker *w, const struct tern_config *cfg,
			    struct tern_tls_identities *ids, struct tern_tls_shard **out,
			    char *err, size_t err_len)
{
	/* The address of the worker's key slot, not its value: the shard's
	 * ticket callback reads the slot on the worker's thread, where
	 * TERN_REQ_KIND_TICKET_KEYS replaces it. */
	return tern_tls_shard_new(cfg, ids, &w->ticket_keys, out, err, err_len);
}

struct tern_counters *tern_worker_counters(struct tern_worker *w)
{
	return &w->ctr;
}

struct tern_histogram *tern_worker_histogram(struct tern_worker *w)
{
	return &w->hs_hist;
}
