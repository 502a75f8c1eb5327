/* What other threads ask of a worker (request.h), carried out on the
 * worker's thread between completions: tickets, num-tickets and
 * verify-client on one connection or all, close, conns, the ticket
 * refresh, new ticket keys, TLS contexts and backend addresses, and the
 * health ping. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "tern/backend_set.h"
#include "tern/clock.h"
#include "tern/conn.h"
#include "tern/conn_info.h"
#include "tern/log.h"
#include "tern/reply.h"
#include "tern/request.h"
#include "tern/ticket_keys.h"
#include "tern/tls_ctx.h"
#include "worker_internal.h"

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

/* close ID: the connection starts ending (docs/connection.md); one
 * already ending is no error. Only an unknown ID is: a connection closed
 * already has left the list. */
static void handle_close(struct tern_worker *w, const struct tern_request *req,
			 struct tern_reply_part *part)
{
	struct tern_conn *c = request_conn(w, req, part);
	if (!c)
		return;
	if (tern_conn_request_close(c) > 0) /* may free c */
		tern_log(TERN_LOG_INFO, "conn %llu: closing, as the control socket asked",
			 (unsigned long long)req->conn_id);
	part->value = 1;
}

/* conns: up to arg connections, copied out for the control thread, which
 * renders them (and takes as many as LIMIT leaves it). */
static void handle_list_conns(struct tern_worker *w, const struct tern_request *req,
			      struct tern_reply_part *part)
{
	/* Closed connections still in flight are counted but not listed. */
	uint64_t max = req->arg < w->host.num_conns ? req->arg : w->host.num_conns;

	if (max == 0)
		return;
	part->conns = malloc(max * sizeof(*part->conns)); /* the reply frees it */
	if (!part->conns) {
		part_error(part, -ENOMEM, "out of memory listing worker %llu", w->index);
		return;
	}
	for (struct tern_list *n = w->host.conns.next; n != &w->host.conns && part->value < max;
	     n = n->next)
		tern_conn_describe(tern_conn_from_link(n), &part->conns[part->value++]);
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
	case TERN_REQ_KIND_CLOSE:
		return true;
	default:
		return false;
	}
}

void tern_worker_handle_request(struct tern_worker *w, const struct tern_request *req)
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
	case TERN_REQ_KIND_CLOSE:
		handle_close(w, req, part);
		break;
	case TERN_REQ_KIND_TICKET_REFRESH:
		handle_refresh(w, req->arg);
		break;
	case TERN_REQ_KIND_TICKET_KEYS: {
		/* The reference in the request becomes the worker's; handshakes
		 * from now on use the new set. Its generation is published
		 * after the swap: once it shows, this worker's next handshake
		 * uses the set (key_handoff.h). */
		struct tern_ticket_keys *old = w->ticket_keys;
		w->ticket_keys = req->ptr;
		tern_ticket_keys_unref(old);
		atomic_store_explicit(&w->ticket_key_generation, req->arg, memory_order_relaxed);
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
	case TERN_REQ_KIND_BACKEND_SET:
		tern_worker_adopt_backends(w, req->ptr);
		break;
	case TERN_REQ_KIND_PING:
		/* The loop came back to its queue: health.h. Relaxed, as the
		 * time is all the readers take from it. */
		atomic_store_explicit(&w->ping_answered_ms, tern_clock_ms(), memory_order_relaxed);
		break;
	case TERN_REQ_KIND_NONE:
		break;
	}
	if (reply)
		tern_reply_answer(reply, w->index);
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
		} else if (req.kind == TERN_REQ_KIND_BACKEND_SET) {
			tern_backend_set_unref(req.ptr);
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

