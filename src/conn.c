/* The proxied connection's state machine (conn.h; the table is in
 * docs/connection.md).
 *
 * Every event (a completion, a timer, a control request) updates the state
 * and then calls conn_pump(), which does all the TLS work the buffers allow
 * and asks the engine for the socket operations that are now possible. At
 * most one operation of each kind (client recv, client send, backend recv,
 * backend send, backend connect) is in flight, so each buffer has at most
 * one kernel user. Nothing here does I/O: the engine does, through
 * host->ops. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/clock.h"
#include "tern/conn.h"
#include "tern/log.h"

#include "conn_internal.h"

/* cout holds --buffer-size of ciphertext plus room for one record's
 * framing (header, tag, padding), so a full 16 KiB record fits at once. */
#define TLS_RECORD_ROOM 512u
/* Largest plaintext handed to one SSL_write: one TLS record. */
#define TLS_RECORD_MAX 16384u
/* A write smaller than this (and than what b2c holds) waits for more room
 * in cout rather than go out as a small record. */
#define TLS_RECORD_MIN 1024u
/* How long a connection that is ending may take to flush its last bytes. */
#define LINGER_MS 2000u

static void conn_settle_buffers(struct tern_conn *c);
static void conn_close(struct tern_conn *c, const char *reason);

/* The reason a `close` gives, compared by address in conn_close. */
static const char conn_reason_control[] = TERN_CONN_REASON_CONTROL;
/* A client that left before sending a byte: a health probe (a load
 * balancer's or Kubernetes' tcpSocket check), counted apart from failed
 * TLS (SPEC 5). Compared by address in conn_close. */
static const char conn_reason_probe[] = "probe";

void tern_conn_host_init(struct tern_conn_host *h)
{
	tern_list_init(&h->conns);
	tern_timer_list_init(&h->handshaking);
	tern_timer_list_init(&h->idle);
	tern_timer_list_init(&h->lingering);
	tern_timer_list_init(&h->ticket_flush);
	tern_list_init(&h->tickets_due);
	tern_list_init(&h->spare);
}

void tern_conn_check(const struct tern_conn *c)
{
	if (c->magic != TERN_CONN_MAGIC) {
		tern_log_fatal("completion for a freed connection (%p)", (const void *)c);
		abort();
	}
}

static const struct tern_conn_ops *conn_ops(const struct tern_conn *c)
{
	return c->host->ops;
}

static uint32_t buffer_size(const struct tern_conn *c)
{
	return (uint32_t)c->host->cfg->buffer_size;
}

/* cout's size: what the data written into it is bounded by. */
static uint32_t cout_limit(const struct tern_conn *c)
{
	return buffer_size(c) + TLS_RECORD_ROOM;
}

/* Puts the connection on the timer list for kind, deadline from now. */
static void conn_set_timer(struct tern_conn *c, enum tern_timer_kind kind)
{
	struct tern_conn_host *h = c->host;
	const struct tern_config *cfg = h->cfg;

	tern_timer_disarm(&c->timer);
	c->timer_kind = (uint8_t)kind;
	c->touched_ms = h->now_ms;
	switch (kind) {
	case TERN_TIMER_NONE:
		break;
	case TERN_TIMER_HANDSHAKE:
		tern_timer_arm(&h->handshaking, &c->timer, h->now_ms + cfg->handshake_timeout_ms);
		break;
	case TERN_TIMER_IDLE:
		tern_timer_arm(&h->idle, &c->timer, h->now_ms + cfg->idle_timeout_ms);
		break;
	case TERN_TIMER_LINGER:
		tern_timer_arm(&h->lingering, &c->timer, h->now_ms + LINGER_MS);
		break;
	}
}

/* Data moved: push the idle deadline back (once per loop iteration). */
static void conn_touch(struct tern_conn *c)
{
	if (c->timer_kind == TERN_TIMER_IDLE && c->touched_ms != c->host->now_ms)
		conn_set_timer(c, TERN_TIMER_IDLE);
}

bool conn_live(const struct tern_conn *c)
{
	return c->phase == TERN_PHASE_CONNECTING || c->phase == TERN_PHASE_STREAMING;
}

/* Where tickets and a CertificateRequest may still be written: the TLS
 * session is up and our close_notify is not queued yet. */
bool conn_can_write_handshake(const struct tern_conn *c)
{
	return conn_live(c) && c->b2c.state < TERN_FLOW_ENDING;
}

/* Why a client that went away (EOF or reset) ended its connection: a
 * probe when it never sent a byte (or, with --accept-proxy, none after
 * its PROXY header: a load balancer's health check), a truncated header
 * when it left in the middle of one, else client_error. */
static const char *conn_client_left(const struct tern_conn *c)
{
	if (!c->client_spoke)
		return conn_reason_probe;
	return c->phase == TERN_PHASE_PROXY_HEADER ? conn_reason_proxy_truncated : "client_error";
}

int tern_conn_accept(struct tern_conn_host *h, int fd)
{
	struct tern_conn *c = calloc(1, h->ops->conn_size);

	if (!c)
		return -ENOMEM;
	c->magic = TERN_CONN_MAGIC;
	c->host = h;
	c->phase = h->cfg->accept_proxy != TERN_ACCEPT_PROXY_OFF ? TERN_PHASE_PROXY_HEADER
								 : TERN_PHASE_HANDSHAKING;
	c->sock[TERN_SIDE_CLIENT].fd = fd;
	c->sock[TERN_SIDE_BACKEND].fd = -1;
	c->id = ((uint64_t)h->worker_index << TERN_CONN_ID_WORKER_SHIFT) | ++h->next_conn_seq;
	c->start_ms = h->now_ms;
	/* now_ms is too coarse for handshakes well under a millisecond. */
	c->start_us = tern_clock_us();
	tern_timer_init(&c->timer);
	tern_timer_init(&c->tickets.flush);
	tern_list_init(&c->tickets.due_link);
	tern_list_init(&c->spare_link);
	if (tern_tls_init(&c->tls, h->ssl_ctx, false, &c->cin, &c->cout, cout_limit(c)) < 0) {
		free(c);
		return -ENOMEM;
	}
	if (h->cfg->handshake_tickets == TERN_HANDSHAKE_TICKETS_WITH_DATA)
		tern_tls_defer_handshake_tickets(&c->tls);
	/* --accept-proxy needs the source now, to check it. */
	if (h->cfg->access_log || h->cfg->accept_proxy != TERN_ACCEPT_PROXY_OFF)
		(void)h->ops->address(c, false, &c->peer.sa, sizeof(c->peer));

	tern_list_add_tail(&h->conns, &c->link);
	h->num_conns++;
	tern_counter_add(&h->ctr->conns_total, 1);
	tern_counter_add(&h->ctr->conns_active, 1);
	/* --handshake-timeout covers the PROXY header too. */
	conn_set_timer(c, TERN_TIMER_HANDSHAKE);
	if (c->phase == TERN_PHASE_PROXY_HEADER && !conn_proxy_source_allowed(c)) {
		conn_close(c, conn_reason_proxy_not_allowed);
		tern_conn_settle(c);
		return 0;
	}
	conn_pump(c);
	tern_conn_settle(c);
	return 0;
}

static void conn_free(struct tern_conn *c)
{
	struct tern_conn_host *h = c->host;

	conn_settle_buffers(c); /* lent buffers back to the engine */
	tern_tls_free(&c->tls);
	tern_buf_free(&c->cin);
	tern_buf_free(&c->cout);
	tern_buf_free(&c->c2b.buf);
	tern_buf_free(&c->b2c.buf);
	free(c->pp_hdr);
	conn_backend_release(c);
	c->magic = 0;
	free(c);
	h->num_conns--;
	h->ops->slot_freed(h);
}

static void conn_close_sock(struct tern_conn *c, enum tern_side side)
{
	if (c->sock[side].fd < 0)
		return;
	if (side == TERN_SIDE_BACKEND)
		conn_backend_closing(c);
	conn_ops(c)->close(c, side);
	c->sock[side].fd = -1;
}

/* Counts a connection that ends before its handshake completed, by why.
 * An operator's `close` mid-handshake is no failed TLS, and neither is a
 * probe; --accept-proxy's ends come before TLS and have counters of their
 * own. */
static void conn_count_end(const struct tern_conn *c)
{
	struct tern_counters *ctr = c->host->ctr;
	const char *r = c->reason;

	if (c->handshake_done || r == conn_reason_control)
		return;
	if (r == conn_reason_probe)
		tern_counter_add(&ctr->probe_connections, 1);
	else if (!conn_proxy_count_end(c))
		tern_counter_add(&ctr->handshake_failures, 1);
}

/* Ends the connection now: cancels what is in flight on both sockets and
 * closes them. The memory goes when the last cancelled completion is in
 * (tern_conn_settle). */
static void conn_close(struct tern_conn *c, const char *reason)
{
	struct tern_conn_host *h = c->host;

	if (c->phase == TERN_PHASE_CLOSED)
		return;
	c->phase = TERN_PHASE_CLOSED;
	if (!c->reason)
		c->reason = reason;
	conn_count_end(c);
	conn_sync_tickets(c);
	conn_drop_tickets(c);
	if (h->cfg->access_log)
		tern_conn_log_access(c);
	tern_log(TERN_LOG_DEBUG, "conn %llu closed: %s%s%s", (unsigned long long)c->id, c->reason,
		 c->tls.error[0] ? ": " : "", c->tls.error);
	conn_close_sock(c, TERN_SIDE_CLIENT);
	conn_close_sock(c, TERN_SIDE_BACKEND);
	conn_set_timer(c, TERN_TIMER_NONE);
	tern_list_del(&c->link);
	tern_counter_sub(&h->ctr->conns_active, 1);
}

void tern_conn_abort(struct tern_conn *c, const char *reason)
{
	conn_close(c, reason);
	tern_conn_settle(c);
}

/* Ends the connection politely: drops the backend side, sends the client
 * what cout holds (an alert, or our close_notify) and then closes, within
 * LINGER_MS. */
static void conn_finish(struct tern_conn *c, const char *reason)
{
	if (c->phase == TERN_PHASE_CLOSED || c->phase == TERN_PHASE_FINISHING)
		return;
	c->phase = TERN_PHASE_FINISHING;
	c->reason = reason;
	conn_drop_tickets(c);
	/* After a TLS failure the alert is the goodbye: no close_notify. */
	if (c->handshake_done && c->b2c.state < TERN_FLOW_ENDING && !c->tls.error[0] &&
	    tern_tls_shutdown(&c->tls) == 0)
		c->b2c.state = TERN_FLOW_ENDING;
	conn_close_sock(c, TERN_SIDE_BACKEND);
	conn_set_timer(c, TERN_TIMER_LINGER);
	conn_pump(c);
}

int tern_conn_request_close(struct tern_conn *c)
{
	int started = 1;

	switch (c->phase) {
	case TERN_PHASE_PROXY_HEADER:
	case TERN_PHASE_HANDSHAKING:
		conn_close(c, conn_reason_control);
		break;
	case TERN_PHASE_CONNECTING:
	case TERN_PHASE_STREAMING:
		/* b2c at ENDING or SHUT: our close_notify is queued or sent
		 * already; conn_finish adds none. */
		conn_finish(c, conn_reason_control);
		break;
	case TERN_PHASE_FINISHING:
	case TERN_PHASE_CLOSED:
		started = 0;
		break;
	}
	tern_conn_settle(c);
	return started;
}

/* Starts a connect to the next backend in round-robin order; with none
 * left to try the client is told goodbye (conn_backend.c counts it). */
static void conn_connect_next(struct tern_conn *c)
{
	if (!conn_backend_connect_next(c))
		conn_finish(c, "backend_unavailable");
}

static void conn_handshake_done(struct tern_conn *c)
{
	struct tern_conn_host *h = c->host;

	c->handshake_done = true;
	c->phase = TERN_PHASE_CONNECTING;
	tern_histogram_observe(h->hs_hist, tern_clock_us() - c->start_us);
	if (tern_tls_resumed(&c->tls))
		tern_counter_add(&h->ctr->handshakes_resumed, 1);
	else
		tern_counter_add(&h->ctr->handshakes_full, 1);
	conn_set_timer(c, TERN_TIMER_IDLE);
	c->tickets.last_ms = h->now_ms;
	conn_tickets_handshake_done(c);
	/* The client's last flight came and nothing goes back now (TLS 1.3
	 * with its tickets held back or none, a TLS 1.2 resumption, whose
	 * Finished the server sent first): no segment carries the ACK, and a
	 * client without TCP_NODELAY (Python's, Java's defaults) that writes
	 * its request after the handshake would have Nagle hold the request
	 * until the kernel's delayed ACK, 40 ms later. A bare ACK goes now. */
	if (tern_buf_empty(&c->cout) && conn_ops(c)->ack_now)
		conn_ops(c)->ack_now(c);
	conn_connect_next(c);
}

/* A TLS failure after the handshake: OpenSSL has put its alert in cout,
 * so the connection ends politely (the alert goes out) rather than at once.
 * A failed post-handshake authentication is worth a warning: verify-client
 * already answered ok, and the log is where its outcome is told. */
static void conn_tls_failed(struct tern_conn *c)
{
	if (tern_tls_pha_pending(&c->tls))
		tern_log(TERN_LOG_WARN, "conn %llu: post-handshake client authentication failed: %s",
			 (unsigned long long)c->id, c->tls.error);
	conn_finish(c, "tls_error");
}

/* The room cout has for the next record's plaintext: what keeps it within
 * its size (OpenSSL's output is never refused, tls.h). A buffer the kernel
 * is sending from cannot be compacted, so only its free tail counts then:
 * writing past it would copy the bytes in flight to new storage. */
static uint32_t cout_write_room(const struct tern_conn *c)
{
	const struct tern_buf *out = &c->cout;
	uint32_t len = tern_buf_len(out);
	uint32_t limit = cout_limit(c);

	if (len >= limit)
		return 0;
	uint32_t room = limit - len;
	if (out->data && out->pinned && tern_buf_free_tail(out) < room)
		room = tern_buf_free_tail(out);
	return room > TLS_RECORD_ROOM ? room - TLS_RECORD_ROOM : 0;
}

/* How much of b2c the next SSL_write may take now: 0 when cout has too
 * little room for a worthwhile record. */
uint32_t conn_b2c_next_write(const struct tern_conn *c)
{
	uint32_t want = tern_buf_len(&c->b2c.buf);
	uint32_t room = cout_write_room(c);

	if (want > TLS_RECORD_MAX)
		want = TLS_RECORD_MAX;
	if (room >= want)
		return want;
	return room >= TLS_RECORD_MIN ? room : 0;
}

/* Decrypts what cin holds into c2b, while c2b has room and cout is within
 * its size (a read may write: a KeyUpdate answer, tickets after an
 * authentication). Returns false when the connection ended. */
static bool pump_client_to_backend(struct tern_conn *c)
{
	struct tern_flow *f = &c->c2b;

	while (f->state == TERN_FLOW_OPEN && tern_buf_len(&c->cout) <= cout_limit(c) &&
	       tern_tls_read_ready(&c->tls)) {
		if (tern_buf_reserve(&f->buf, buffer_size(c)) < 0) {
			conn_close(c, "out_of_memory");
			return false;
		}
		if (tern_buf_free_tail(&f->buf) == 0) {
			tern_buf_compact(&f->buf);
			if (tern_buf_free_tail(&f->buf) == 0)
				break;
		}
		int n = tern_tls_read(&c->tls, tern_buf_tail_ptr(&f->buf), tern_buf_free_tail(&f->buf));
		if (n > 0) {
			tern_buf_produce(&f->buf, (uint32_t)n);
			f->bytes += (uint64_t)n;
			tern_counter_add(&c->host->ctr->bytes_client_in, (uint64_t)n);
		} else if (n == 0) {
			break;
		} else if (n == TERN_TLS_CLOSED) {
			f->state = TERN_FLOW_EOF;
		} else {
			conn_tls_failed(c);
			return false;
		}
	}
	return true;
}

/* Encrypts what b2c holds into cout, a record at a time, while cout has
 * room; tickets handed over first go ahead of the data. Handshake
 * messages OpenSSL still has to write (tickets with no data to carry
 * them, a CertificateRequest) are flushed on their own. close_notify is
 * queued once the backend's data has all gone in. Returns false when the
 * connection ended. */
static bool pump_backend_to_client(struct tern_conn *c)
{
	struct tern_flow *f = &c->b2c;
	struct tern_conn_host *h = c->host;

	if (f->state >= TERN_FLOW_ENDING)
		return true;
	conn_hand_over_tickets(c);
	for (uint32_t len; (len = conn_b2c_next_write(c)) > 0;) {
		int n = tern_tls_write(&c->tls, tern_buf_head_ptr(&f->buf), len);
		if (n == 0)
			break;
		if (n < 0) {
			conn_tls_failed(c);
			return false;
		}
		tern_buf_consume(&f->buf, (uint32_t)n);
		f->bytes += (uint64_t)n;
		tern_counter_add(&h->ctr->bytes_client_out, (uint64_t)n);
	}
	if (tern_tls_flush_needed(&c->tls) && tern_tls_flush(&c->tls) < 0) {
		conn_tls_failed(c);
		return false;
	}
	/* Every ticket asked for goes before close_notify: wait while
	 * OpenSSL cannot take them yet (an authentication in progress). */
	if (f->state == TERN_FLOW_EOF && tern_buf_empty(&f->buf) &&
	    c->tickets.pending + c->tickets.owed == 0) {
		if (tern_tls_shutdown(&c->tls) < 0) {
			conn_tls_failed(c);
			return false;
		}
		f->state = TERN_FLOW_ENDING;
	}
	return true;
}

/* Asks the engine to read side into b, unless it has no room. Returns
 * false when the connection ended (out of memory). */
static bool conn_post_recv(struct tern_conn *c, enum tern_side side, struct tern_buf *b)
{
	int ret = conn_ops(c)->recv(c, side, b);
	if (ret < 0) {
		conn_close(c, "out_of_memory");
		return false;
	}
	if (ret > 0) {
		c->sock[side].recv_busy = true;
		c->inflight++;
	}
	return true;
}

static void conn_post_send(struct tern_conn *c, enum tern_side side, struct tern_buf *b)
{
	b->pinned = true;
	c->sock[side].send_busy = true;
	c->inflight++;
	conn_ops(c)->send(c, side, tern_buf_head_ptr(b), tern_buf_len(b));
}

/* Queues every socket operation the state allows now. */
static void conn_post_io(struct tern_conn *c)
{
	struct tern_conn_sock *cs = &c->sock[TERN_SIDE_CLIENT];
	struct tern_conn_sock *bs = &c->sock[TERN_SIDE_BACKEND];

	conn_settle_buffers(c);
	if (c->phase == TERN_PHASE_CLOSED)
		return;

	if (!cs->send_busy && c->b2c.state != TERN_FLOW_SHUT && !tern_buf_empty(&c->cout))
		conn_post_send(c, TERN_SIDE_CLIENT, &c->cout);
	if (c->b2c.state == TERN_FLOW_ENDING && c->phase != TERN_PHASE_FINISHING &&
	    !cs->send_busy && tern_buf_empty(&c->cout)) {
		/* SPEC 6: backend FIN -> close_notify, then FIN to the client;
		 * the client may still send until it closes its side. */
		conn_ops(c)->shutdown_wr(c, TERN_SIDE_CLIENT);
		c->b2c.state = TERN_FLOW_SHUT;
	}
	if (!cs->recv_busy && c->c2b.state == TERN_FLOW_OPEN && c->phase != TERN_PHASE_FINISHING &&
	    !c->tls.in_eof) {
		/* OpenSSL takes every byte cin holds whenever it reads (the
		 * BIO hands over part of a record too), so bytes left in cin
		 * have not been offered to it yet: they wait for room in c2b,
		 * and the pump offers them when that comes. Reading more now
		 * would go into cin's own memory and, should the client then
		 * fall silent, pin it for as long as the connection lives. The
		 * PROXY header is the exception: its parser leaves a partial
		 * header in cin. */
		bool wants_more = tern_buf_empty(&c->cin) || c->phase == TERN_PHASE_PROXY_HEADER;
		if (wants_more && !conn_post_recv(c, TERN_SIDE_CLIENT, &c->cin))
			return;
	}
	if (c->phase != TERN_PHASE_STREAMING)
		return;
	if (c->pp_hdr && !bs->send_busy) {
		/* The PROXY header first and alone: c2b waits until all of it
		 * is sent (send_busy), partial sends included. */
		bs->send_busy = true;
		c->inflight++;
		conn_ops(c)->send(c, TERN_SIDE_BACKEND, c->pp_hdr + c->pp_sent, c->pp_len - c->pp_sent);
	}
	if (!bs->send_busy && c->c2b.state != TERN_FLOW_SHUT && !tern_buf_empty(&c->c2b.buf))
		conn_post_send(c, TERN_SIDE_BACKEND, &c->c2b.buf);
	if (c->c2b.state == TERN_FLOW_EOF && !bs->send_busy && tern_buf_empty(&c->c2b.buf)) {
		/* SPEC 6: client close_notify/FIN -> FIN to the backend. */
		conn_ops(c)->shutdown_wr(c, TERN_SIDE_BACKEND);
		c->c2b.state = TERN_FLOW_SHUT;
	}
	/* Bytes left in b2c wait for room in cout: reading waits for them. */
	if (!bs->recv_busy && c->b2c.state == TERN_FLOW_OPEN && tern_buf_empty(&c->b2c.buf))
		(void)conn_post_recv(c, TERN_SIDE_BACKEND, &c->b2c.buf);
}

/* --accept-proxy: reads the PROXY header; once it is whole, the
 * handshake starts on what follows it in cin. Returns
 * false when the connection ended (a bad or truncated header, or an EOF
 * before any byte: a probe). */
static bool pump_proxy_header(struct tern_conn *c)
{
	int r = conn_proxy_header_read(c);

	if (r < 0) {
		conn_close(c, conn_reason_proxy_invalid);
		return false;
	}
	if (r == 0) {
		if (c->tls.in_eof) {
			conn_close(c, conn_client_left(c));
			return false;
		}
		return true; /* conn_post_io reads more */
	}
	c->phase = TERN_PHASE_HANDSHAKING;
	/* A health check that sent a header and left is still a probe: the
	 * client speaks with its first byte of TLS. */
	c->client_spoke = !tern_buf_empty(&c->cin);
	return true;
}

void conn_pump(struct tern_conn *c)
{
	if (c->phase == TERN_PHASE_PROXY_HEADER && !pump_proxy_header(c))
		return;
	if (c->phase == TERN_PHASE_HANDSHAKING) {
		int r = tern_tls_handshake(&c->tls);
		if (r == TERN_TLS_DONE) {
			conn_handshake_done(c);
		} else if (r < 0 && !c->client_spoke) {
			/* Only the client's EOF fails a handshake that read
			 * nothing: a probe, with no alert to send. */
			conn_close(c, conn_reason_probe);
			return;
		} else if (r < 0) {
			/* A refusal of tern's own (--strict-sni) names itself;
			 * anything else OpenSSL refused is a tls_error. */
			conn_finish(c, r == -ECONNRESET ? "client_error"
				       : c->tls.refused ? c->tls.refused : "tls_error");
			return;
		}
	}
	/* A step that ends the connection has already queued what must still
	 * go out (conn_finish pumps): stop there. */
	if (conn_live(c)) {
		if (!pump_client_to_backend(c))
			return;
		conn_pha_check(c);
		if (!pump_backend_to_client(c))
			return;
	}
	if (c->phase == TERN_PHASE_CLOSED)
		return;
	conn_sync_tickets(c);
	conn_post_io(c);
	if (c->phase == TERN_PHASE_FINISHING) {
		if (!c->sock[TERN_SIDE_CLIENT].send_busy && tern_buf_empty(&c->cout))
			conn_close(c, c->reason);
		return;
	}
	/* Both directions over: the client's data is all at the backend with
	 * a FIN after it, and the backend's is all at the client with
	 * close_notify and a FIN after it. */
	if (c->c2b.state == TERN_FLOW_SHUT && c->b2c.state == TERN_FLOW_SHUT)
		conn_close(c, "done");
}

void tern_conn_on_recv(struct tern_conn *c, enum tern_side side, int32_t res)
{
	struct tern_buf *b = side == TERN_SIDE_CLIENT ? &c->cin : &c->b2c.buf;

	assert(c->inflight > 0 && c->sock[side].recv_busy);
	c->inflight--;
	c->sock[side].recv_busy = false;
	/* The bytes landed at the tail the recv was given: count them before
	 * unpinning, which may move an empty buffer's tail back to 0. */
	if (res > 0)
		tern_buf_produce(b, (uint32_t)res);
	tern_buf_unpin(b);
	if (c->phase == TERN_PHASE_CLOSED)
		return;
	if (side == TERN_SIDE_BACKEND && c->phase == TERN_PHASE_FINISHING)
		return;
	if (res > 0) {
		if (side == TERN_SIDE_CLIENT)
			c->client_spoke = true;
		conn_touch(c);
	} else if (res == 0) {
		if (side == TERN_SIDE_CLIENT)
			c->tls.in_eof = true;
		else if (c->b2c.state == TERN_FLOW_OPEN)
			c->b2c.state = TERN_FLOW_EOF;
	} else if (res != -EAGAIN && res != -ENOBUFS) {
		conn_close(c, side == TERN_SIDE_CLIENT ? conn_client_left(c) : "backend_error");
		return;
	}
	conn_pump(c);
}

/* A send of the PROXY header completed: the rest goes next, then c2b. */
static void on_proxy_header_sent(struct tern_conn *c, int32_t res)
{
	if (c->phase != TERN_PHASE_STREAMING)
		return;
	if (res < 0) {
		conn_close(c, "backend_error");
		return;
	}
	c->pp_sent += (uint32_t)res;
	if (c->pp_sent >= c->pp_len) {
		free(c->pp_hdr);
		c->pp_hdr = NULL;
	}
	conn_touch(c);
	conn_pump(c);
}

void tern_conn_on_send(struct tern_conn *c, enum tern_side side, int32_t res)
{
	struct tern_buf *b = side == TERN_SIDE_CLIENT ? &c->cout : &c->c2b.buf;

	assert(c->inflight > 0 && c->sock[side].send_busy);
	c->inflight--;
	c->sock[side].send_busy = false;
	if (side == TERN_SIDE_BACKEND && c->pp_hdr) {
		on_proxy_header_sent(c, res);
		return;
	}
	tern_buf_unpin(b);
	if (side == TERN_SIDE_CLIENT)
		tern_tls_out_sent(&c->tls);
	if (c->phase == TERN_PHASE_CLOSED)
		return;
	if (side == TERN_SIDE_BACKEND && c->phase == TERN_PHASE_FINISHING)
		return;
	if (res < 0) {
		conn_close(c, side == TERN_SIDE_CLIENT ? "client_error" : "backend_error");
		return;
	}
	tern_buf_consume(b, (uint32_t)res);
	conn_touch(c);
	conn_pump(c);
}

void tern_conn_on_connect(struct tern_conn *c, int32_t res)
{
	struct tern_conn_host *h = c->host;

	assert(c->inflight > 0);
	c->inflight--;
	if (c->phase != TERN_PHASE_CONNECTING)
		return; /* finishing or closed: the socket is closed already */
	if (res < 0) {
		conn_backend_connect_failed(c, res);
		conn_close_sock(c, TERN_SIDE_BACKEND);
		conn_connect_next(c);
		return;
	}
	conn_backend_connected(c);
	c->phase = TERN_PHASE_STREAMING;
	if (h->cfg->proxy_protocol != TERN_PROXY_OFF && tern_conn_build_proxy_header(c) < 0) {
		conn_close(c, "out_of_memory");
		return;
	}
	conn_touch(c);
	conn_pump(c);
}

static bool buf_drained(const struct tern_buf *b)
{
	return b->data && tern_buf_empty(b) && !b->pinned;
}

/* After every event: lent buffers go back to the engine and drained read
 * buffers are freed at once (an allocated one would be read into, and so
 * held, while the connection waits). Drained write buffers wait on the
 * spare list for the next tick: a connection busy with requests reuses
 * them instead of allocating and freeing two per request. So between
 * events a connection holds memory only for bytes in flight, and for at
 * most a tick its empty write buffers. */
static void conn_settle_buffers(struct tern_conn *c)
{
	if (conn_ops(c)->return_buffers(c) < 0)
		conn_close(c, "out_of_memory");
	tern_buf_release_if_empty(&c->cin);
	tern_buf_release_if_empty(&c->b2c.buf);
	if (c->phase == TERN_PHASE_CLOSED) {
		tern_conn_release_spare(c);
	} else if ((buf_drained(&c->c2b.buf) || buf_drained(&c->cout)) &&
		   !tern_list_linked(&c->spare_link)) {
		tern_list_add_tail(&c->host->spare, &c->spare_link);
	}
}

void tern_conn_release_spare(struct tern_conn *c)
{
	tern_list_del(&c->spare_link);
	tern_buf_release_if_empty(&c->c2b.buf);
	tern_buf_release_if_empty(&c->cout);
}

/* Whether conn_settle_buffers has anything to do, read off the buffers:
 * a read buffer with memory and no recv in flight is lent, empty or
 * waiting; a drained write buffer not yet on the spare list. After a pump
 * (conn_post_io settles first, then queues reads) this is false in the
 * common case, so a completion is not settled twice. */
static bool conn_buffers_unsettled(const struct tern_conn *c)
{
	return (c->cin.data && !c->cin.pinned) || (c->b2c.buf.data && !c->b2c.buf.pinned) ||
	       ((buf_drained(&c->c2b.buf) || buf_drained(&c->cout)) &&
		!tern_list_linked(&c->spare_link)) ||
	       c->phase == TERN_PHASE_CLOSED;
}

void tern_conn_settle(struct tern_conn *c)
{
	if (c->phase == TERN_PHASE_CLOSED && c->inflight == 0)
		conn_free(c);
	else if (conn_buffers_unsettled(c))
		conn_settle_buffers(c);
}

void tern_conn_expire(struct tern_conn *c)
{
	switch ((enum tern_timer_kind)c->timer_kind) {
	case TERN_TIMER_HANDSHAKE:
		conn_close(c, c->phase == TERN_PHASE_PROXY_HEADER ? conn_reason_proxy_timeout
								  : "handshake_timeout");
		break;
	case TERN_TIMER_IDLE:
		conn_finish(c, "idle_timeout");
		break;
	case TERN_TIMER_LINGER:
	case TERN_TIMER_NONE:
		conn_close(c, c->reason ? c->reason : "client_error");
		break;
	}
	tern_conn_settle(c);
}


