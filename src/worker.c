/* The worker thread: its loop, accepting, timers and requests from other
 * threads. Connections themselves are in conn.c. */
#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tern/clock.h"
#include "tern/conn.h"
#include "tern/conn_ring.h"
#include "tern/json.h"
#include "tern/log.h"
#include "tern/reply.h"
#include "tern/request.h"
#include "tern/ring.h"
#include "tern/server.h"
#include "tern/ticket_keys.h"
#include "tern/tls_ctx.h"
#include "tern/worker.h"

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

static void worker_write_due_tickets(struct tern_worker *w)
{
	unsigned budget = TICKET_BATCH;
	while (budget > 0 && !tern_list_empty(&w->host.tickets_due)) {
		struct tern_conn *c = tern_conn_from_due(w->host.tickets_due.next);
		unsigned n = c->tickets.pending + c->tickets.owed;
		budget = n >= budget ? 0 : budget - n;
		tern_conn_tickets_write_due(c); /* takes c off the list; may free it */
	}
}

static struct tern_conn *worker_find_conn(struct tern_worker *w, uint64_t id)
{
	/* A walk, not a table: control requests are rare next to the data
	 * path, which then pays nothing to keep an index. */
	for (struct tern_list *n = w->host.conns.next; n != &w->host.conns; n = n->next) {
		struct tern_conn *c = tern_conn_from_link(n);
		if (c->id == id)
			return c;
	}
	return NULL;
}

static void part_error(struct tern_reply_part *part, int status, const char *fmt, uint64_t id)
{
	part->status = status;
	snprintf(part->error, sizeof(part->error), fmt, (unsigned long long)id);
}

/* The connection a single-ID request names, or NULL with the part's error
 * set. */
static struct tern_conn *request_conn(struct tern_worker *w, const struct tern_request *req,
				      struct tern_reply_part *part)
{
	struct tern_conn *c = worker_find_conn(w, req->conn_id);
	if (!c)
		part_error(part, -ENOENT, "no connection %llu", req->conn_id);
	return c;
}

/* What tickets ID and num-tickets ID answer: done, or why not (the same
 * refusals, SPEC section 3). */
static void ticket_answer(struct tern_reply_part *part, int ret, uint64_t id)
{
	switch (ret) {
	case 0:
		part->value = 1;
		break;
	case -EPROTONOSUPPORT:
		part_error(part, ret, "connection %llu is TLS 1.2: tickets on demand need TLS 1.3",
			   id);
		break;
	case -EINPROGRESS:
		part_error(part, ret, "connection %llu is still in its handshake", id);
		break;
	case -EBUSY:
		part_error(part, ret, "connection %llu has too many tickets waiting", id);
		break;
	default:
		part_error(part, ret, "connection %llu is closing", id);
		break;
	}
}

/* tickets ID|all N: see tern_conn_request_tickets(). For all, connections
 * that cannot take tickets (TLS 1.2, mid-handshake) are skipped. */
static void handle_tickets(struct tern_worker *w, const struct tern_request *req,
			   struct tern_reply_part *part)
{
	if (req->conn_id == TERN_CONN_ID_ALL) {
		struct tern_list *n = w->host.conns.next;
		while (n != &w->host.conns) {
			struct tern_conn *c = tern_conn_from_link(n);
			n = n->next; /* c may be freed by the request */
			if (tern_conn_request_tickets(c, req->count) == 0)
				part->value++;
		}
		return;
	}
	struct tern_conn *c = request_conn(w, req, part);
	if (!c)
		return;
	int ret = tern_conn_request_tickets(c, req->count);
	ticket_answer(part, ret, req->conn_id);
	/* One connection's tickets due at once (--ticket-flush-delay 0) are
	 * written now, so the next request sees them sent; the batches are
	 * for `tickets all`. May free c. */
	if (ret == 0 && c->tickets.due)
		tern_conn_tickets_write_due(c);
}

static void handle_num_tickets(struct tern_worker *w, const struct tern_request *req,
			       struct tern_reply_part *part)
{
	struct tern_conn *c = request_conn(w, req, part);
	if (c)
		ticket_answer(part, tern_conn_set_num_tickets(c, req->count), req->conn_id);
}

static void handle_verify_client(struct tern_worker *w, const struct tern_request *req,
				 struct tern_reply_part *part)
{
	struct tern_conn *c = request_conn(w, req, part);
	if (!c)
		return;
	int ret = tern_conn_verify_client(c);
	switch (ret) {
	case 0:
		part->value = 1;
		break;
	case -EOPNOTSUPP:
		part_error(part, ret, "the client of connection %llu did not offer post-handshake "
			   "authentication", req->conn_id);
		break;
	case -ENOKEY:
		part_error(part, ret, "no --client-ca configured: connection %llu has nothing to "
			   "verify a certificate against", req->conn_id);
		break;
	case -EPROTONOSUPPORT:
		part_error(part, ret, "connection %llu is TLS 1.2: post-handshake authentication "
			   "needs TLS 1.3", req->conn_id);
		break;
	case -EALREADY:
		part_error(part, ret, "connection %llu already has a certificate request in flight",
			   req->conn_id);
		break;
	case -EINPROGRESS:
		part_error(part, ret, "connection %llu is still in its handshake", req->conn_id);
		break;
	default:
		part_error(part, ret, "connection %llu could not ask for a certificate",
			   req->conn_id);
		break;
	}
}

/* conns: up to arg connections as a JSON array, with where each element
 * ends, so the control thread can take as many as LIMIT leaves it. */
static void handle_list_conns(struct tern_worker *w, const struct tern_request *req,
			      struct tern_reply_part *part)
{
	struct tern_json j;
	int ret = 0;

	tern_json_init(&j);
	tern_json_begin_array(&j);
	for (struct tern_list *n = w->host.conns.next;
	     n != &w->host.conns && part->value < req->arg && ret == 0; n = n->next) {
		tern_conn_describe(tern_conn_from_link(n), &j);
		ret = tern_reply_part_end_item(part, j.len);
	}
	tern_json_end_array(&j);
	if (ret < 0 || tern_json_finish(&j) < 0) {
		tern_json_free(&j);
		part->value = 0;
		part_error(part, -ENOMEM, "out of memory listing worker %llu", w->index);
		return;
	}
	part->json = j.buf; /* the reply frees it */
	part->json_len = j.len;
}

static void handle_refresh(struct tern_worker *w, uint64_t older_than_ms)
{
	struct tern_list *n = w->host.conns.next;
	while (n != &w->host.conns) {
		struct tern_conn *c = tern_conn_from_link(n);
		n = n->next;
		if (tern_conn_wants_refresh(c, older_than_ms))
			(void)tern_conn_request_tickets(c, 1);
	}
}

/* The kinds whose ptr is a struct tern_reply (request.h). */
static bool request_has_reply(const struct tern_request *req)
{
	switch ((enum tern_request_kind)req->kind) {
	case TERN_REQ_KIND_TICKETS:
	case TERN_REQ_KIND_NUM_TICKETS:
	case TERN_REQ_KIND_LIST_CONNS:
	case TERN_REQ_KIND_VERIFY_CLIENT:
		return true;
	default:
		return false;
	}
}

static void handle_request(struct tern_worker *w, const struct tern_request *req)
{
	struct tern_reply *reply = NULL;
	struct tern_reply_part *part = NULL;

	if (request_has_reply(req)) {
		reply = req->ptr;
		/* NULL: the control thread gave up waiting and has reported
		 * the request not carried out, so it must not be (reply.h). */
		part = tern_reply_take(reply, w->index);
		if (!part)
			return;
	}
	switch ((enum tern_request_kind)req->kind) {
	case TERN_REQ_KIND_TICKETS:
		handle_tickets(w, req, part);
		break;
	case TERN_REQ_KIND_NUM_TICKETS:
		handle_num_tickets(w, req, part);
		break;
	case TERN_REQ_KIND_LIST_CONNS:
		handle_list_conns(w, req, part);
		break;
	case TERN_REQ_KIND_VERIFY_CLIENT:
		handle_verify_client(w, req, part);
		break;
	case TERN_REQ_KIND_TICKET_REFRESH:
		handle_refresh(w, req->arg);
		break;
	case TERN_REQ_KIND_TICKET_KEYS: {
		/* The reference in the request becomes the worker's; handshakes
		 * from now on use the new set. */
		struct tern_ticket_keys *old = w->ticket_keys;
		w->ticket_keys = req->ptr;
		tern_ticket_keys_unref(old);
		break;
	}
	case TERN_REQ_KIND_TLS_SHARD: {
		/* New connections use the new contexts; connections in flight
		 * hold their own references to the old ones, which go with the
		 * last of them (tls_ctx.h). */
		struct tern_tls_shard *old = w->shard;
		w->shard = req->ptr;
		w->host.ssl_ctx = tern_tls_shard_default_ctx(w->shard);
		tern_tls_shard_free(old);
		break;
	}
	case TERN_REQ_KIND_NONE:
		break;
	}
	if (reply)
		tern_reply_answer(reply, w->index);
}

static void worker_drain_queue(struct tern_worker *w)
{
	struct tern_request req;
	while (tern_queue_pop(&w->queue, &req))
		handle_request(w, &req);
}

void tern_worker_discard_requests(struct tern_worker *w)
{
	struct tern_request req;
	if (!w->queue.slots)
		return;
	while (tern_queue_pop(&w->queue, &req)) {
		if (req.kind == TERN_REQ_KIND_TICKET_KEYS) {
			tern_ticket_keys_unref(req.ptr);
		} else if (req.kind == TERN_REQ_KIND_TLS_SHARD) {
			tern_tls_shard_free(req.ptr);
		} else if (request_has_reply(&req)) {
			struct tern_reply *reply = req.ptr;
			struct tern_reply_part *part = tern_reply_take(reply, w->index);
			if (!part)
				continue; /* abandoned: reported not carried out */
			part_error(part, -ESHUTDOWN, "worker %llu stopped: not carried out", w->index);
			tern_reply_answer(reply, w->index);
		}
	}
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

void *tern_worker_main(void *arg)
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
	sem_post(&srv->started);
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
		worker_write_due_tickets(w);
	}
	/* Push out the last closes; the ring's exit cancels the tick and the
	 * wake read. */
	tern_ring_submit(w->ring);
	tern_ring_free(w->ring);
	w->ring = NULL;
	atomic_fetch_sub_explicit(&srv->workers_running, 1, memory_order_release);
	return NULL;
}
