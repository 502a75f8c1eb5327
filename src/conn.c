/* The proxied connection's state machine.
 *
 * Every event (a completion, a timer) updates the buffers and then calls
 * conn_pump(), which does all the TLS work the buffers allow and queues the
 * socket operations that are now possible. At most one operation of each
 * kind (client recv, client send, backend recv, backend send, backend
 * connect) is in flight, so each buffer has at most one kernel user. */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "tern/clock.h"
#include "tern/conn.h"
#include "tern/json.h"
#include "tern/log.h"
#include "tern/proxy_proto.h"
#include "tern/ring.h"
#include "tern/server.h"
#include "tern/tls.h"

#define TERN_CONN_MAGIC 0x434f4e4eu /* "CONN" */

/* cout holds --buffer-size of ciphertext plus room for one record's
 * framing (header, tag, padding), so a full 16 KiB record fits at once. */
#define TLS_RECORD_ROOM 512u
/* Largest plaintext handed to one SSL_write: one TLS record. */
#define TLS_RECORD_MAX 16384u
/* Room close_notify needs in cout (a 2-byte alert in one record). */
#define TLS_ALERT_ROOM 64u
/* How long a connection that is ending may take to flush its last bytes. */
#define LINGER_MS 2000u

enum conn_timer {
	TIMER_NONE,
	TIMER_HANDSHAKE,
	TIMER_IDLE,
	TIMER_LINGER,
};

/* A read buffer's dealings with the worker's provided buffers (see
 * conn_post_recv). */
struct conn_lending {
	bool lent;        /* the buffer is the ring's buffer bid, borrowed */
	bool no_provided; /* the last provided recv found every buffer taken: the next
			   * reads into the connection's own memory */
	uint16_t bid;
};

struct tern_conn {
	uint32_t magic;
	uint8_t inflight; /* operations in flight that name this connection */
	uint8_t timer_kind;

	bool hs_done : 1;
	bool closed : 1;    /* sockets closed; freed once inflight is 0 */
	bool finishing : 1; /* flushing cout, then closing */
	bool c_recv_busy : 1;
	bool c_send_busy : 1;
	bool c_eof : 1;               /* the client's data ended */
	bool close_notify_queued : 1; /* our close_notify is in cout */
	bool c_wr_shut : 1;           /* FIN sent to the client */
	bool b_connecting : 1;
	bool b_connected : 1;
	bool b_recv_busy : 1;
	bool b_send_busy : 1;
	bool b_eof : 1;     /* the backend's data ended */
	bool b_wr_shut : 1; /* FIN sent to the backend */
	bool ticket_flush_due : 1; /* --ticket-flush-delay passed: flush alone */
	bool pha_pending : 1;      /* verify-client asked; the answer not in yet */
	/* How cin and b2c stand with the ring's provided buffers. */
	struct conn_lending cin_lend, b2c_lend;

	int cfd;
	int bfd;
	uint64_t id;
	struct tern_worker *w;
	struct tern_list link;  /* w->conns */
	struct tern_list timer; /* one of w's timer lists */
	uint64_t deadline_ms;
	uint64_t start_ms;
	uint64_t start_us; /* CLOCK_MONOTONIC at accept, for the handshake histogram */
	uint64_t touched_ms;
	uint64_t bytes_in;  /* plaintext from the client */
	uint64_t bytes_out; /* plaintext to the client */
	unsigned attempts;  /* backend connects tried */
	/* Tickets on demand (SPEC 1): requested, not yet handed to OpenSSL;
	 * they wait for the next backend data, or for the flush deadline. */
	uint32_t tickets_pending;
	uint32_t tickets_requested;
	uint32_t tickets_seen; /* tls.tickets_sent already added to counters */
	uint64_t last_ticket_ms;
	struct tern_list flush_link; /* w->ticket_flush while tickets wait */
	struct tern_list spare_link; /* w->spare while cout or c2b is drained */
	uint64_t flush_deadline_ms;
	const struct tern_addr *backend;
	struct __kernel_timespec connect_ts;
	const char *reason;
	union {
		struct sockaddr sa;
		struct sockaddr_in6 sin6; /* large enough for AF_INET too */
	} peer; /* kept for the access log: the socket may be reset by then */

	struct tern_tls tls;
	struct tern_buf cin, cout, c2b, b2c;
	/* --proxy-protocol: the header the backend gets before any of c2b
	 * (pp_sent of pp_len bytes sent so far); NULL when off or once sent. */
	uint8_t *pp_hdr;
	uint32_t pp_len, pp_sent;
};

static void conn_pump(struct tern_conn *c);
static void conn_close(struct tern_conn *c, const char *reason);
static void conn_maybe_free(struct tern_conn *c);
static void conn_sync_tickets(struct tern_conn *c);
static void conn_settle_buffers(struct tern_conn *c);

struct tern_conn *tern_conn_from_link(struct tern_list *node)
{
	return tern_container_of(node, struct tern_conn, link);
}

struct tern_conn *tern_conn_from_timer(struct tern_list *node)
{
	return tern_container_of(node, struct tern_conn, timer);
}

uint64_t tern_conn_deadline(const struct tern_conn *c)
{
	return c->deadline_ms;
}

static struct tern_conn *conn_from_ud(uint64_t ud)
{
	struct tern_conn *c = (struct tern_conn *)(uintptr_t)(ud & ~(uint64_t)TERN_OP_MASK);
	/* Always on: a stale user_data would be a use after free. */
	if (c->magic != TERN_CONN_MAGIC) {
		tern_log(TERN_LOG_ERROR, "completion for a freed connection (ud=%#llx)",
			 (unsigned long long)ud);
		abort();
	}
	return c;
}

/* Puts the connection on the timer list for kind, deadline from now. Each
 * list holds one duration, so appending keeps it sorted by deadline. */
static void conn_set_timer(struct tern_conn *c, enum conn_timer kind)
{
	struct tern_worker *w = c->w;
	const struct tern_config *cfg = w->cfg;
	struct tern_list *list = NULL;
	uint64_t duration = 0;

	tern_list_del(&c->timer);
	c->timer_kind = (uint8_t)kind;
	switch (kind) {
	case TIMER_NONE:
		return;
	case TIMER_HANDSHAKE:
		list = &w->handshaking;
		duration = cfg->handshake_timeout_ms;
		break;
	case TIMER_IDLE:
		list = &w->idle;
		duration = cfg->idle_timeout_ms;
		break;
	case TIMER_LINGER:
		list = &w->lingering;
		duration = LINGER_MS;
		break;
	}
	c->deadline_ms = w->now_ms + duration;
	c->touched_ms = w->now_ms;
	tern_list_add_tail(list, &c->timer);
}

/* Data moved: push the idle deadline back (once per loop iteration). */
static void conn_touch(struct tern_conn *c)
{
	if (c->timer_kind == TIMER_IDLE && c->touched_ms != c->w->now_ms)
		conn_set_timer(c, TIMER_IDLE);
}

static void conn_release_slot(struct tern_worker *w)
{
	atomic_fetch_sub_explicit(&w->srv->conns_open, 1, memory_order_relaxed);
	tern_worker_slot_freed(w);
}

void tern_conn_accept(struct tern_worker *w, int fd)
{
	const struct tern_config *cfg = w->cfg;
	struct tern_conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c)
		goto fail;
	c->magic = TERN_CONN_MAGIC;
	c->w = w;
	c->cfd = fd;
	c->bfd = -1;
	c->id = ((uint64_t)w->index << TERN_CONN_ID_WORKER_SHIFT) | ++w->next_conn_seq;
	c->start_ms = w->now_ms;
	/* w->now_ms is too coarse for handshakes well under a millisecond. */
	c->start_us = tern_clock_us();
	tern_list_init(&c->timer);
	tern_list_init(&c->flush_link);
	tern_list_init(&c->spare_link);
	if (tern_tls_init(&c->tls, w->ssl_ctx, false, &c->cin, &c->cout,
			  (uint32_t)cfg->buffer_size + TLS_RECORD_ROOM) < 0) {
		free(c);
		goto fail;
	}
	if (cfg->access_log) {
		socklen_t len = sizeof(c->peer);
		(void)getpeername(fd, &c->peer.sa, &len);
	}
	/* Small records must not wait for Nagle: TLS already batches. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	tern_list_add_tail(&w->conns, &c->link);
	w->num_conns++;
	tern_counter_add(&w->ctr.conns_total, 1);
	tern_counter_add(&w->ctr.conns_active, 1);
	conn_set_timer(c, TIMER_HANDSHAKE);
	conn_pump(c);
	conn_maybe_free(c);
	return;
fail:
	tern_log(TERN_LOG_WARN, "worker %u: out of memory for a new connection", w->index);
	tern_ring_close(w->ring, fd);
	conn_release_slot(w);
}

static void conn_maybe_free(struct tern_conn *c)
{
	if (!c->closed || c->inflight)
		return;
	struct tern_worker *w = c->w;
	conn_settle_buffers(c); /* borrowed buffers back to the ring */
	tern_tls_free(&c->tls);
	tern_buf_free(&c->cin);
	tern_buf_free(&c->cout);
	tern_buf_free(&c->c2b);
	tern_buf_free(&c->b2c);
	free(c->pp_hdr);
	c->magic = 0;
	free(c);
	w->num_conns--;
	conn_release_slot(w);
}

static void format_peer(const struct tern_conn *c, char *out, size_t out_len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	snprintf(out, out_len, "-");
	if (c->peer.sa.sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->peer;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
		snprintf(out, out_len, "%s:%u", host, port);
	} else if (c->peer.sa.sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = &c->peer.sin6;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
		snprintf(out, out_len, "[%s]:%u", host, port);
	}
}

/* The ALPN protocol chosen, or "-": always one of --alpn's, which the
 * command line holds to printable bytes, so it goes into logs as it is. */
static void format_alpn(const struct tern_conn *c, char out[256])
{
	const uint8_t *alpn = NULL;
	size_t len = 0;

	if (c->hs_done)
		tern_tls_alpn(&c->tls, &alpn, &len);
	if (!alpn || len == 0 || len > 255) {
		alpn = (const uint8_t *)"-";
		len = 1;
	}
	memcpy(out, alpn, len);
	out[len] = '\0';
}

static void conn_log_access(struct tern_conn *c)
{
	char peer[INET6_ADDRSTRLEN + 16];
	char alpn[256];
	format_peer(c, peer, sizeof(peer));
	format_alpn(c, alpn);
	tern_log_access("id=%llu peer=%s sni=%s alpn=%s version=%s cipher=%s resumed=%d "
			"bytes_in=%llu bytes_out=%llu duration_ms=%llu reason=%s",
			(unsigned long long)c->id, peer,
			c->hs_done ? tern_tls_sni(&c->tls) : "-", alpn,
			c->hs_done ? tern_tls_version(&c->tls) : "-",
			c->hs_done ? tern_tls_cipher(&c->tls) : "-",
			c->hs_done ? tern_tls_resumed(&c->tls) : 0,
			(unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out,
			(unsigned long long)(c->w->now_ms - c->start_ms), c->reason);
}

/* Ends the connection now: cancels what is in flight on both sockets and
 * closes them. The memory goes when the last cancelled completion is in. */
static void conn_close(struct tern_conn *c, const char *reason)
{
	struct tern_worker *w = c->w;

	if (c->closed)
		return;
	c->closed = true;
	if (!c->reason)
		c->reason = reason;
	if (!c->hs_done)
		tern_counter_add(&w->ctr.handshake_failures, 1);
	conn_sync_tickets(c);
	tern_list_del(&c->flush_link);
	if (w->cfg->access_log)
		conn_log_access(c);
	tern_log(TERN_LOG_DEBUG, "conn %llu closed: %s%s%s", (unsigned long long)c->id, c->reason,
		 c->tls.error[0] ? ": " : "", c->tls.error);
	if (c->cfd >= 0) {
		tern_ring_cancel_fd(w->ring, c->cfd);
		tern_ring_close(w->ring, c->cfd);
		c->cfd = -1;
	}
	if (c->bfd >= 0) {
		tern_ring_cancel_fd(w->ring, c->bfd);
		tern_ring_close(w->ring, c->bfd);
		c->bfd = -1;
	}
	conn_set_timer(c, TIMER_NONE);
	tern_list_del(&c->link);
	tern_counter_sub(&w->ctr.conns_active, 1);
	/* Freed by the entry point that got here, once nothing is in flight:
	 * the caller may still be looking at c. */
}

void tern_conn_abort(struct tern_conn *c, const char *reason)
{
	conn_close(c, reason);
	conn_maybe_free(c);
}

/* Ends the connection politely: drops the backend side, sends the client
 * what cout holds (an alert, or our close_notify) and then closes, within
 * LINGER_MS. */
static void conn_finish(struct tern_conn *c, const char *reason)
{
	struct tern_worker *w = c->w;

	if (c->closed || c->finishing)
		return;
	c->finishing = true;
	c->reason = reason;
	/* After a TLS failure the alert is the goodbye: no close_notify. */
	if (c->hs_done && !c->close_notify_queued && !c->tls.error[0] &&
	    tern_tls_shutdown(&c->tls) == 0)
		c->close_notify_queued = true;
	if (c->bfd >= 0) {
		tern_ring_cancel_fd(w->ring, c->bfd);
		tern_ring_close(w->ring, c->bfd);
		c->bfd = -1;
		c->b_connected = false;
	}
	conn_set_timer(c, TIMER_LINGER);
	conn_pump(c);
}

/* Starts a connect to the next backend in round-robin order. The first
 * failure moves on to the next backend once (SPEC section 6); after that
 * the client is told goodbye and the failure counted. */
static void conn_connect_next(struct tern_conn *c)
{
	struct tern_worker *w = c->w;
	const struct tern_config *cfg = w->cfg;
	unsigned max_attempts = cfg->num_backends > 1 ? 2 : 1;

	while (c->attempts < max_attempts) {
		const struct tern_addr *b = &cfg->backends[w->next_backend++ % cfg->num_backends];
		c->attempts++;
		int fd = socket(b->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			tern_counter_add(&w->ctr.backend_connect_failures, 1);
			tern_log(TERN_LOG_WARN, "conn %llu: backend %s: socket: %s",
				 (unsigned long long)c->id, b->text, strerror(errno));
			continue;
		}
		if (b->ss.ss_family != AF_UNIX) {
			int one = 1;
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		c->bfd = fd;
		c->backend = b;
		c->connect_ts.tv_sec = (long long)(cfg->connect_timeout_ms / 1000);
		c->connect_ts.tv_nsec = (long long)(cfg->connect_timeout_ms % 1000) * 1000000;
		c->b_connecting = true;
		c->inflight++;
		tern_ring_connect(w->ring, fd, (const struct sockaddr *)&b->ss, b->ss_len,
				  &c->connect_ts, tern_ud(c, TERN_OP_B_CONNECT));
		return;
	}
	tern_log(TERN_LOG_WARN, "conn %llu: no backend reachable after %u attempt%s",
		 (unsigned long long)c->id, c->attempts, c->attempts == 1 ? "" : "s");
	conn_finish(c, "backend_unavailable");
}

static void conn_handshake_done(struct tern_conn *c)
{
	struct tern_worker *w = c->w;

	c->hs_done = true;
	tern_histogram_observe(&w->hs_hist, tern_clock_us() - c->start_us);
	if (tern_tls_resumed(&c->tls))
		tern_counter_add(&w->ctr.handshakes_resumed, 1);
	else
		tern_counter_add(&w->ctr.handshakes_full, 1);
	conn_set_timer(c, TIMER_IDLE);
	c->last_ticket_ms = w->now_ms;
	conn_connect_next(c);
}

/* Adds the tickets OpenSSL wrote since the last look to the counters. */
static void conn_sync_tickets(struct tern_conn *c)
{
	uint32_t sent = c->tls.tickets_sent;
	if (sent == c->tickets_seen)
		return;
	tern_counter_add(&c->w->ctr.tickets_sent, sent - c->tickets_seen);
	c->tickets_seen = sent;
	c->last_ticket_ms = c->w->now_ms;
}

/* A TLS failure after the handshake: OpenSSL has put its alert in cout,
 * so the connection ends politely (the alert goes out) rather than at once.
 * A failed post-handshake authentication is worth a warning: verify-client
 * already answered ok, and the log is where its outcome is told. */
static void conn_tls_failed(struct tern_conn *c)
{
	if (c->pha_pending)
		tern_log(TERN_LOG_WARN, "conn %llu: post-handshake client authentication failed: %s",
			 (unsigned long long)c->id, c->tls.error);
	conn_finish(c, "tls_error");
}

/* Hands the waiting tickets to OpenSSL when they can go out now and the
 * stream is at a record boundary: just before backend data is encrypted
 * (so they leave in the same send, ahead of it), or alone once the flush
 * delay passed or the backend's data ended. */
static void conn_issue_tickets(struct tern_conn *c)
{
	if (c->tickets_pending == 0 || c->tls.write_pending || c->close_notify_queued)
		return;
	if (tern_buf_empty(&c->b2c) && !c->ticket_flush_due && !c->b_eof)
		return;
	int r = tern_tls_new_tickets(&c->tls, c->tickets_pending);
	c->tickets_pending = 0;
	c->ticket_flush_due = false;
	tern_list_del(&c->flush_link);
	if (r < 0)
		conn_tls_failed(c);
}

/* Writes handshake messages (tickets) OpenSSL still holds when no
 * application data is about to carry them. */
static void conn_flush_tickets(struct tern_conn *c)
{
	if (!tern_buf_empty(&c->b2c) || !tern_tls_flush_needed(&c->tls))
		return;
	if (tern_tls_flush(&c->tls) < 0)
		conn_tls_failed(c);
}

/* The client answered a post-handshake CertificateRequest (a failed
 * verification does not get here: OpenSSL ends the connection). The
 * tickets OpenSSL sends next carry the new identity. */
static void conn_pha_done(struct tern_conn *c)
{
	char subject[256];

	c->pha_pending = false;
	tern_tls_client_cert_answered(&c->tls);
	if (tern_tls_client_subject(&c->tls, subject, sizeof(subject)))
		tern_log(TERN_LOG_INFO, "conn %llu: post-handshake client certificate %s (verify: %s)",
			 (unsigned long long)c->id, subject, tern_tls_verify_status(&c->tls));
	else
		tern_log(TERN_LOG_INFO, "conn %llu: post-handshake authentication: the client sent "
			 "no certificate", (unsigned long long)c->id);
}

/* Decrypts what cin holds into c2b, while c2b has room. */
static void pump_client_to_backend(struct tern_conn *c)
{
	struct tern_worker *w = c->w;

	while (!c->c_eof) {
		if (tern_buf_reserve(&c->c2b, (uint32_t)w->cfg->buffer_size) < 0) {
			conn_close(c, "out_of_memory");
			return;
		}
		if (tern_buf_free_tail(&c->c2b) == 0) {
			tern_buf_compact(&c->c2b);
			if (tern_buf_free_tail(&c->c2b) == 0)
				return;
		}
		int n = tern_tls_read(&c->tls, tern_buf_tail_ptr(&c->c2b),
				      tern_buf_free_tail(&c->c2b));
		if (n > 0) {
			tern_buf_produce(&c->c2b, (uint32_t)n);
			c->bytes_in += (uint64_t)n;
			tern_counter_add(&w->ctr.bytes_client_in, (uint64_t)n);
		} else if (n == 0) {
			return;
		} else if (n == TERN_TLS_CLOSED) {
			c->c_eof = true;
		} else {
			conn_tls_failed(c);
			return;
		}
	}
}

/* Encrypts what b2c holds into cout, a record at a time, while cout takes
 * it; queues close_notify once the backend's data has all gone in. */
static void pump_backend_to_client(struct tern_conn *c)
{
	struct tern_worker *w = c->w;

	while (!tern_buf_empty(&c->b2c)) {
		uint32_t len = tern_buf_len(&c->b2c);
		if (len > TLS_RECORD_MAX)
			len = TLS_RECORD_MAX;
		int n = tern_tls_write(&c->tls, tern_buf_head_ptr(&c->b2c), len);
		if (n > 0) {
			tern_buf_consume(&c->b2c, (uint32_t)n);
			c->bytes_out += (uint64_t)n;
			tern_counter_add(&w->ctr.bytes_client_out, (uint64_t)n);
		} else if (n == 0) {
			return;
		} else {
			conn_tls_failed(c);
			return;
		}
	}
	/* cout without memory (freed when it drained) has all its room. */
	if (c->b_eof && !c->close_notify_queued &&
	    (!c->cout.data || tern_buf_room(&c->cout) >= TLS_ALERT_ROOM)) {
		if (tern_tls_shutdown(&c->tls) < 0) {
			conn_tls_failed(c);
			return;
		}
		c->close_notify_queued = true;
	}
}

/* Queues the recv of one socket (op: TERN_OP_C_RECV into cin, or
 * TERN_OP_B_RECV into b2c). An idle connection holds no buffer memory: an
 * empty buffer is read through a provided buffer of the ring, chosen by
 * the kernel when data arrives and lent to the connection while the
 * completion is handled (conn_borrow). A buffer that still holds bytes
 * reads into its own memory, and only when those bytes need more to make
 * progress (want_more: a partial record), so that a read in flight never
 * pins a buffer that could have drained and been freed. So does a side
 * whose last provided recv found every buffer taken, and every read when
 * the ring has none. Returns 0, or -ENOMEM with the connection closed. */
static int conn_post_recv(struct tern_conn *c, struct tern_buf *b, struct conn_lending *lend,
			  enum tern_op op, bool want_more)
{
	struct tern_ring *ring = c->w->ring;
	bool client = op == TERN_OP_C_RECV;
	int fd = client ? c->cfd : c->bfd;

	if (!b->data && tern_ring_has_buffers(ring) && !lend->no_provided) {
		tern_ring_recv_provided(ring, fd, tern_ud(c, op));
	} else {
		lend->no_provided = false;
		if (!tern_buf_empty(b) && !want_more)
			return 0;
		if (tern_buf_reserve(b, (uint32_t)c->w->cfg->buffer_size) < 0) {
			conn_close(c, "out_of_memory");
			return -ENOMEM;
		}
		if (tern_buf_free_tail(b) == 0)
			tern_buf_compact(b);
		if (tern_buf_free_tail(b) == 0)
			return 0;
		b->pinned = true;
		tern_ring_recv(ring, fd, tern_buf_tail_ptr(b), tern_buf_free_tail(b), tern_ud(c, op));
	}
	if (client)
		c->c_recv_busy = true;
	else
		c->b_recv_busy = true;
	c->inflight++;
	return 0;
}

/* A recv completion that took a provided buffer: b borrows it, empty,
 * for the handler to fill as if the recv had been into b. */
static void conn_borrow(struct tern_conn *c, struct tern_buf *b, struct conn_lending *lend,
			uint16_t bid)
{
	struct tern_ring *ring = c->w->ring;

	assert(!b->data && !lend->lent);
	b->data = tern_ring_buffer_take(ring, bid);
	b->cap = tern_ring_buffer_size(ring);
	b->head = b->tail = 0;
	lend->lent = true;
	lend->bid = bid;
}

/* Gives a borrowed buffer back to the ring. Bytes the connection still
 * needs (a partial record; data waiting for room on the other side) move
 * to memory of its own first: one copy, only in that case. */
static void conn_give_back(struct tern_conn *c, struct tern_buf *b, struct conn_lending *lend)
{
	uint32_t len = tern_buf_len(b);
	uint8_t *own = NULL;
	uint32_t cap = (uint32_t)c->w->cfg->buffer_size;

	if (!lend->lent)
		return;
	if (len > 0 && !c->closed) {
		if (cap < len)
			cap = len;
		own = malloc(cap);
		if (own)
			memcpy(own, tern_buf_head_ptr(b), len);
	}
	lend->lent = false;
	tern_ring_buffer_return(c->w->ring, lend->bid);
	b->data = own;
	b->cap = own ? cap : 0;
	b->head = 0;
	b->tail = own ? len : 0;
	if (len > 0 && !c->closed && !own)
		conn_close(c, "out_of_memory");
}

static bool buf_drained(const struct tern_buf *b)
{
	return b->data && tern_buf_empty(b) && !b->pinned;
}

/* After every event: borrowed buffers go back to the ring and drained read
 * buffers are freed at once (an allocated one would be read into, and so
 * held, while the connection waits). Drained write buffers wait on the
 * spare list for the next tick: a connection busy with requests reuses
 * them instead of allocating and freeing two per request. So between
 * events a connection holds memory only for bytes in flight, and for
 * at most a tick (TERN_TICK_MS) its empty write buffers. */
static void conn_settle_buffers(struct tern_conn *c)
{
	conn_give_back(c, &c->cin, &c->cin_lend);
	conn_give_back(c, &c->b2c, &c->b2c_lend);
	tern_buf_release_if_empty(&c->cin);
	tern_buf_release_if_empty(&c->b2c);
	if (c->closed) {
		tern_conn_release_spare(c);
	} else if ((buf_drained(&c->c2b) || buf_drained(&c->cout)) &&
		   !tern_list_linked(&c->spare_link)) {
		tern_list_add_tail(&c->w->spare, &c->spare_link);
	}
}

struct tern_conn *tern_conn_from_spare(struct tern_list *node)
{
	return tern_container_of(node, struct tern_conn, spare_link);
}

void tern_conn_release_spare(struct tern_conn *c)
{
	tern_list_del(&c->spare_link);
	tern_buf_release_if_empty(&c->c2b);
	tern_buf_release_if_empty(&c->cout);
}

/* Queues every socket operation the buffers allow now. */
static void conn_post_io(struct tern_conn *c)
{
	struct tern_worker *w = c->w;
	struct tern_ring *ring = w->ring;

	conn_settle_buffers(c);
	if (c->closed)
		return;

	if (!c->c_send_busy && !c->c_wr_shut && !tern_buf_empty(&c->cout)) {
		c->cout.pinned = true;
		c->c_send_busy = true;
		c->inflight++;
		tern_ring_send(ring, c->cfd, tern_buf_head_ptr(&c->cout), tern_buf_len(&c->cout),
			       tern_ud(c, TERN_OP_C_SEND));
	}
	if (c->close_notify_queued && !c->finishing && !c->c_send_busy && !c->c_wr_shut &&
	    tern_buf_empty(&c->cout)) {
		/* SPEC 6: backend FIN -> close_notify, then FIN to the client;
		 * the client may still send until it closes its side.
		 * shutdown(2) never blocks, while IORING_OP_SHUTDOWN always
		 * goes to an io-wq thread: the direct call is the cheap one. */
		(void)shutdown(c->cfd, SHUT_WR);
		c->c_wr_shut = true;
	}
	if (!c->c_recv_busy && !c->c_eof && !c->finishing && !c->tls.in_eof) {
		/* Bytes left in cin with room in c2b can only be a partial
		 * record: they need more. Otherwise c2b is full and reading
		 * waits for it to drain. */
		bool partial = !c->c2b.data || tern_buf_room(&c->c2b) > 0;
		if (conn_post_recv(c, &c->cin, &c->cin_lend, TERN_OP_C_RECV, partial) < 0)
			return;
	}
	if (!c->b_connected)
		return;
	if (c->pp_hdr && !c->b_send_busy) {
		/* The PROXY header first and alone: c2b waits until all of it
		 * is sent (b_send_busy), partial sends included. */
		c->b_send_busy = true;
		c->inflight++;
		tern_ring_send(ring, c->bfd, c->pp_hdr + c->pp_sent, c->pp_len - c->pp_sent,
			       tern_ud(c, TERN_OP_B_SEND));
	}
	if (!c->b_send_busy && !c->b_wr_shut && !tern_buf_empty(&c->c2b)) {
		c->c2b.pinned = true;
		c->b_send_busy = true;
		c->inflight++;
		tern_ring_send(ring, c->bfd, tern_buf_head_ptr(&c->c2b), tern_buf_len(&c->c2b),
			       tern_ud(c, TERN_OP_B_SEND));
	}
	if (c->c_eof && !c->b_send_busy && !c->b_wr_shut && tern_buf_empty(&c->c2b)) {
		/* SPEC 6: client close_notify/FIN -> FIN to the backend. */
		(void)shutdown(c->bfd, SHUT_WR);
		c->b_wr_shut = true;
	}
	/* Bytes left in b2c wait for room in cout: reading waits for them. */
	if (!c->b_recv_busy && !c->b_eof)
		(void)conn_post_recv(c, &c->b2c, &c->b2c_lend, TERN_OP_B_RECV, false);
}

static void conn_pump(struct tern_conn *c)
{
	if (c->closed)
		return;
	if (!c->hs_done && !c->finishing) {
		int r = tern_tls_handshake(&c->tls);
		if (r == TERN_TLS_DONE) {
			conn_handshake_done(c);
		} else if (r < 0) {
			conn_finish(c, r == -ECONNRESET ? "client_error" : "tls_error");
			return;
		}
		if (c->closed || c->finishing)
			return;
	}
	if (c->hs_done && !c->finishing) {
		/* A step that ends the connection has already queued what must
		 * still go out (conn_finish pumps): stop here. */
		pump_client_to_backend(c);
		if (c->closed || c->finishing)
			return;
		conn_issue_tickets(c);
		if (c->closed || c->finishing)
			return;
		conn_flush_tickets(c);
		if (c->closed || c->finishing)
			return;
		pump_backend_to_client(c);
		if (c->closed || c->finishing)
			return;
	}
	conn_sync_tickets(c);
	if (c->pha_pending && c->tls.pha_answered)
		conn_pha_done(c);
	conn_post_io(c);
	if (c->closed)
		return;
	if (c->finishing) {
		if (!c->c_send_busy && tern_buf_empty(&c->cout))
			conn_close(c, c->reason);
		return;
	}
	/* Both directions over: the client's data is all at the backend with
	 * a FIN after it, and the backend's is all at the client with
	 * close_notify and a FIN after it. */
	if (c->b_wr_shut && c->c_wr_shut && c->c_eof && c->b_eof)
		conn_close(c, "done");
}

static void on_client_recv(struct tern_conn *c, int32_t res)
{
	/* The bytes landed at the tail the recv was given: count them before
	 * unpinning, which may move an empty buffer's tail back to 0. */
	if (res > 0)
		tern_buf_produce(&c->cin, (uint32_t)res);
	c->c_recv_busy = false;
	tern_buf_unpin(&c->cin);
	if (c->closed)
		return;
	if (res > 0) {
		conn_touch(c);
	} else if (res == 0) {
		c->tls.in_eof = true;
	} else if (res != -EAGAIN) {
		conn_close(c, "client_error");
		return;
	}
	conn_pump(c);
}

static void on_client_send(struct tern_conn *c, int32_t res)
{
	c->c_send_busy = false;
	tern_buf_unpin(&c->cout);
	if (c->closed)
		return;
	if (res < 0) {
		conn_close(c, "client_error");
		return;
	}
	tern_buf_consume(&c->cout, (uint32_t)res);
	conn_touch(c);
	conn_pump(c);
}

/* --proxy-protocol: builds the header the backend gets before any client
 * data. Source = the client, destination = the address it connected to
 * (the listener's, from getsockname()). Runs once per connection, only
 * with the flag on. Returns 0 or -ENOMEM. */
static int conn_build_proxy_header(struct tern_conn *c)
{
	struct tern_proxy_info info = {0};
	struct sockaddr_storage local = {0};
	socklen_t len = sizeof(local);
	uint8_t *der = NULL;
	char cn[512];
	size_t hdr_len = TERN_PROXY_V1_MAX_LEN;
	int n = -ENOMEM;

	if (c->peer.sa.sa_family == AF_UNSPEC) {
		socklen_t peer_len = sizeof(c->peer);
		(void)getpeername(c->cfd, &c->peer.sa, &peer_len);
	}
	if (getsockname(c->cfd, (struct sockaddr *)&local, &len) < 0)
		local.ss_family = AF_UNSPEC; /* unknown: UNKNOWN / LOCAL */
	tern_proxy_info_set_addrs(&info, &c->peer.sa, (struct sockaddr *)&local);

	if (c->w->cfg->proxy_protocol == TERN_PROXY_V2) {
		tern_tls_alpn(&c->tls, &info.alpn, &info.alpn_len);
		info.sni = tern_tls_servername(&c->tls);
		info.tls = true;
		info.tls_version = tern_tls_version(&c->tls);
		info.cipher = tern_tls_cipher(&c->tls);
		tern_tls_client_cert_presented(&c->tls, &info.cert_conn, &info.cert_sess);
		if (info.cert_sess) {
			info.verify = tern_tls_verify_result(&c->tls);
			if (tern_tls_client_cn(&c->tls, cn, sizeof(cn)) >= 0)
				info.cn = cn;
			int der_len = tern_tls_client_cert_der(&c->tls, NULL, 0);
			if (der_len > 0) {
				der = malloc((size_t)der_len);
				if (!der)
					goto out;
				if (tern_tls_client_cert_der(&c->tls, der, (size_t)der_len) == der_len) {
					info.cert_der = der;
					info.cert_der_len = (size_t)der_len;
				}
			}
		}
		hdr_len = tern_proxy_v2_max_len(&info);
	}
	c->pp_hdr = malloc(hdr_len);
	if (!c->pp_hdr)
		goto out;
	if (c->w->cfg->proxy_protocol == TERN_PROXY_V2)
		n = tern_proxy_v2_encode(&info, c->pp_hdr, hdr_len);
	else
		n = tern_proxy_v1_encode(&info, c->pp_hdr, hdr_len);
	/* Always on: the buffer is the size the encoder asked for, and
	 * v2_max_len is never 0 for what TLS can carry (SNI and ALPN are at
	 * most 255 bytes, the CN is capped by cn[] above). */
	if (n <= 0) {
		tern_log(TERN_LOG_ERROR, "conn %llu: PROXY header encoding failed (%d)",
			 (unsigned long long)c->id, n);
		abort();
	}
	c->pp_len = (uint32_t)n;
	c->pp_sent = 0;
	n = 0;
out:
	free(der);
	return n;
}

static void on_backend_connect(struct tern_conn *c, int32_t res)
{
	struct tern_worker *w = c->w;

	c->b_connecting = false;
	if (c->closed || c->finishing)
		return;
	if (res < 0) {
		/* Every failed attempt counts, as HAProxy's connection errors
		 * do: a backend that is down shows even while the retry on the
		 * next one saves the client. */
		tern_counter_add(&w->ctr.backend_connect_failures, 1);
		tern_log(TERN_LOG_DEBUG, "conn %llu: backend %s: %s", (unsigned long long)c->id,
			 c->backend->text, res == -ECANCELED ? "connect timed out" : strerror(-res));
		tern_ring_close(w->ring, c->bfd);
		c->bfd = -1;
		conn_connect_next(c);
		return;
	}
	c->b_connected = true;
	if (w->cfg->proxy_protocol != TERN_PROXY_OFF && conn_build_proxy_header(c) < 0) {
		conn_close(c, "out_of_memory");
		return;
	}
	conn_touch(c);
	conn_pump(c);
}

static void on_backend_recv(struct tern_conn *c, int32_t res)
{
	if (res > 0)
		tern_buf_produce(&c->b2c, (uint32_t)res); /* before unpin, as above */
	c->b_recv_busy = false;
	tern_buf_unpin(&c->b2c);
	if (c->closed || c->finishing)
		return;
	if (res > 0) {
		conn_touch(c);
	} else if (res == 0) {
		c->b_eof = true;
	} else if (res != -EAGAIN) {
		conn_close(c, "backend_error");
		return;
	}
	conn_pump(c);
}

/* A send of the PROXY header completed: the rest goes next, then c2b. */
static void on_proxy_header_sent(struct tern_conn *c, int32_t res)
{
	c->b_send_busy = false;
	if (c->closed || c->finishing)
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

static void on_backend_send(struct tern_conn *c, int32_t res)
{
	if (c->pp_hdr) {
		on_proxy_header_sent(c, res);
		return;
	}
	c->b_send_busy = false;
	tern_buf_unpin(&c->c2b);
	if (c->closed || c->finishing)
		return;
	if (res < 0) {
		conn_close(c, "backend_error");
		return;
	}
	tern_buf_consume(&c->c2b, (uint32_t)res);
	conn_touch(c);
	conn_pump(c);
}

typedef void conn_handler_fn(struct tern_conn *c, int32_t res);

static conn_handler_fn *const conn_handlers[TERN_OP_COUNT] = {
	[TERN_OP_C_RECV] = on_client_recv,
	[TERN_OP_C_SEND] = on_client_send,
	[TERN_OP_B_CONNECT] = on_backend_connect,
	[TERN_OP_B_RECV] = on_backend_recv,
	[TERN_OP_B_SEND] = on_backend_send,
};

void tern_conn_complete(uint64_t ud, enum tern_op op, int32_t res, uint32_t flags)
{
	struct tern_conn *c = conn_from_ud(ud);
	bool recv = op == TERN_OP_C_RECV || op == TERN_OP_B_RECV;
	struct tern_buf *b = op == TERN_OP_C_RECV ? &c->cin : &c->b2c;
	struct conn_lending *lend = op == TERN_OP_C_RECV ? &c->cin_lend : &c->b2c_lend;
	uint16_t bid;

	assert(c->inflight > 0 && conn_handlers[op]);
	c->inflight--;
	if (recv && tern_ring_cqe_buffer(flags, &bid)) {
		conn_borrow(c, b, lend, bid);
	} else if (recv && res == -ENOBUFS) {
		/* No provided buffer was offered: the ring offers more, and
		 * the read is queued again. Only when every buffer is taken
		 * does this side read into memory of its own next time (held
		 * while it waits), and nothing is lost either way. */
		tern_ring_buffers_missed(c->w->ring);
		lend->no_provided = tern_ring_buffers_published(c->w->ring) == 0;
		tern_counter_add(&c->w->ctr.read_buffer_misses, 1);
		res = -EAGAIN;
	}
	conn_handlers[op](c, res);
	/* A handler that pumped settled the buffers already (conn_post_io);
	 * one that stopped early (the connection closed or finishing) still
	 * owes the ring the buffer it borrowed. */
	if (c->cin_lend.lent || c->b2c_lend.lent)
		conn_settle_buffers(c);
	conn_maybe_free(c);
}

void tern_conn_expire(struct tern_conn *c)
{
	switch ((enum conn_timer)c->timer_kind) {
	case TIMER_HANDSHAKE:
		conn_close(c, "handshake_timeout");
		break;
	case TIMER_IDLE:
		conn_finish(c, "idle_timeout");
		break;
	case TIMER_LINGER:
	case TIMER_NONE:
		conn_close(c, c->reason ? c->reason : "client_error");
		break;
	}
	conn_maybe_free(c);
}

uint64_t tern_conn_id(const struct tern_conn *c)
{
	return c->id;
}

int tern_conn_request_tickets(struct tern_conn *c, unsigned n)
{
	struct tern_worker *w = c->w;

	if (c->closed || c->finishing)
		return -ENOTCONN;
	if (!c->hs_done)
		return -EINPROGRESS;
	if (!tern_tls_is_tls13(&c->tls))
		return -EPROTONOSUPPORT;
	/* Requests add up; OpenSSL is asked once, at the boundary. */
	if (c->tickets_pending + n > TERN_CONN_MAX_PENDING_TICKETS)
		return -EBUSY;
	c->tickets_pending += n;
	c->tickets_requested += n;
	tern_counter_add(&w->ctr.tickets_requested, n);
	if (!tern_list_linked(&c->flush_link)) {
		c->flush_deadline_ms = w->now_ms + w->cfg->ticket_flush_delay_ms;
		tern_list_add_tail(&w->ticket_flush, &c->flush_link);
	}
	if (w->cfg->ticket_flush_delay_ms == 0)
		c->ticket_flush_due = true;
	conn_pump(c);
	conn_maybe_free(c);
	return 0;
}

bool tern_conn_wants_refresh(const struct tern_conn *c, uint64_t older_than_ms)
{
	return !c->closed && !c->finishing && c->hs_done && c->tickets_pending == 0 &&
	       tern_tls_is_tls13(&c->tls) && c->w->now_ms - c->last_ticket_ms >= older_than_ms;
}

struct tern_conn *tern_conn_from_flush(struct tern_list *node)
{
	return tern_container_of(node, struct tern_conn, flush_link);
}

uint64_t tern_conn_flush_deadline(const struct tern_conn *c)
{
	return c->flush_deadline_ms;
}

void tern_conn_flush_due(struct tern_conn *c)
{
	tern_list_del(&c->flush_link);
	c->ticket_flush_due = true;
	conn_pump(c);
	conn_maybe_free(c);
}

int tern_conn_set_num_tickets(struct tern_conn *c, unsigned n)
{
	if (c->closed || c->finishing)
		return -ENOTCONN;
	return tern_tls_set_num_tickets(&c->tls, n);
}

void tern_conn_describe(struct tern_conn *c, struct tern_json *j)
{
	char peer[INET6_ADDRSTRLEN + 16];

	if (c->peer.sa.sa_family == AF_UNSPEC) {
		socklen_t len = sizeof(c->peer);
		(void)getpeername(c->cfd, &c->peer.sa, &len);
	}
	format_peer(c, peer, sizeof(peer));
	tern_json_begin_object(j);
	tern_json_key(j, "id");
	tern_json_uint(j, c->id);
	tern_json_key(j, "worker");
	tern_json_uint(j, c->w->index);
	tern_json_key(j, "peer");
	tern_json_string(j, peer);
	tern_json_key(j, "sni");
	if (c->hs_done && strcmp(tern_tls_sni(&c->tls), "-") != 0)
		tern_json_string(j, tern_tls_sni(&c->tls));
	else
		tern_json_null(j);
	tern_json_key(j, "alpn");
	char alpn[256];
	format_alpn(c, alpn);
	if (strcmp(alpn, "-") != 0)
		tern_json_string(j, alpn);
	else
		tern_json_null(j);
	tern_json_key(j, "version");
	if (c->hs_done)
		tern_json_string(j, tern_tls_version(&c->tls));
	else
		tern_json_null(j);
	tern_json_key(j, "cipher");
	if (c->hs_done)
		tern_json_string(j, tern_tls_cipher(&c->tls));
	else
		tern_json_null(j);
	tern_json_key(j, "resumed");
	tern_json_bool(j, c->hs_done && tern_tls_resumed(&c->tls));
	tern_json_key(j, "age_ms");
	tern_json_uint(j, c->w->now_ms - c->start_ms);
	tern_json_key(j, "bytes_in");
	tern_json_uint(j, c->bytes_in);
	tern_json_key(j, "bytes_out");
	tern_json_uint(j, c->bytes_out);
	tern_json_key(j, "num_tickets");
	tern_json_uint(j, tern_tls_num_tickets(&c->tls));
	tern_json_key(j, "tickets_sent");
	tern_json_uint(j, c->tls.tickets_sent);
	tern_json_key(j, "tickets_pending");
	tern_json_uint(j, c->tickets_pending);
	tern_json_key(j, "tickets_requested");
	tern_json_uint(j, c->tickets_requested);
	/* Memory the connection's buffers hold now (borrowed read buffers
	 * included): 0 for an idle connection, the point of lending. */
	tern_json_key(j, "buffer_bytes");
	tern_json_uint(j, (uint64_t)c->cin.cap + c->cout.cap + c->c2b.cap + c->b2c.cap);
	tern_json_key(j, "client_cert");
	char subject[256];
	if (c->hs_done && tern_tls_client_subject(&c->tls, subject, sizeof(subject)))
		tern_json_string(j, subject);
	else
		tern_json_null(j);
	tern_json_end_object(j);
}

int tern_conn_verify_client(struct tern_conn *c)
{
	if (c->closed || c->finishing)
		return -ENOTCONN;
	if (!c->hs_done)
		return -EINPROGRESS;
	if (c->pha_pending)
		return -EALREADY;
	int ret = tern_tls_request_client_cert(&c->tls);
	if (ret < 0)
		return ret;
	c->pha_pending = true;
	conn_pump(c); /* the CertificateRequest leaves now, at a boundary */
	conn_maybe_free(c);
	return 0;
}
