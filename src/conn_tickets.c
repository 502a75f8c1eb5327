/* Tickets on demand and post-handshake client authentication: the
 * connection's control actions (conn.h, docs/connection.md). What they
 * may do in each phase is decided here; the writing itself happens in
 * conn.c's pump, which calls conn_hand_over_tickets() at the record
 * boundary before backend data is encrypted. */
#include <errno.h>

#include "tern/conn.h"
#include "tern/escape.h"
#include "tern/log.h"

#include "conn_internal.h"

/* Adds the tickets OpenSSL wrote since the last look to the counters, and
 * has OpenSSL give back the record buffers writing them left behind, so
 * that a connection that now waits holds none (tls.h). */
void conn_sync_tickets(struct tern_conn *c)
{
	uint32_t sent = c->tls.tickets_sent;
	if (sent == c->tickets.seen)
		return;
	tern_counter_add(&c->host->ctr->tickets_sent, sent - c->tickets.seen);
	c->tickets.seen = sent;
	c->tickets.last_ms = c->host->now_ms;
	tern_tls_release_buffers(&c->tls);
}

/* Tickets asked for and not handed over go with a connection that ends. */
void conn_drop_tickets(struct tern_conn *c)
{
	c->tickets.pending = c->tickets.owed = 0;
	c->tickets.due = false;
	tern_timer_disarm(&c->tickets.flush);
	tern_list_del(&c->tickets.due_link);
}

/* Hands the waiting tickets to OpenSSL when they may go now: when due (the
 * flush delay passed; owed after a post-handshake authentication), when
 * backend data is about to be written (they go ahead of it, in the same
 * send), or when the backend's data ended (they go before close_notify).
 * OpenSSL may take fewer than asked ("not now"): the rest stay. */
void conn_hand_over_tickets(struct tern_conn *c)
{
	struct tern_conn_tickets *t = &c->tickets;
	uint32_t n = t->pending + t->owed;

	if (n == 0 || !tern_tls_tickets_allowed(&c->tls))
		return;
	bool writing = conn_b2c_next_write(c) > 0;
	bool ended = c->b2c.state == TERN_FLOW_EOF && tern_buf_empty(&c->b2c.buf);
	if (!t->due && !writing && !ended)
		return;
	unsigned taken = tern_tls_new_tickets(&c->tls, n);
	unsigned from_owed = taken < t->owed ? taken : t->owed;
	t->owed -= from_owed;
	t->pending -= taken - from_owed;
	if (t->pending + t->owed == 0) {
		t->due = false;
		tern_timer_disarm(&t->flush);
		tern_list_del(&t->due_link);
	}
}

/* The client finished answering a post-handshake CertificateRequest (a
 * failed verification does not get here: OpenSSL ends the connection).
 * num_tickets tickets follow at once, carrying the new identity. */
void conn_pha_check(struct tern_conn *c)
{
	char subject[TERN_ESCAPE_IN_MAX + 1], text[TERN_ESCAPE_OUT_MAX];

	if (!c->tls.pha_answered)
		return;
	tern_tls_client_cert_answered(&c->tls);
	int n = tern_tls_client_subject(&c->tls, subject, sizeof(subject));
	if (n >= 0) {
		/* the client's bytes: escaped, spaces too, as in every log line */
		tern_escape(text, sizeof(text), subject, (size_t)n, TERN_ESCAPE_SPACE);
		tern_log(TERN_LOG_INFO, "conn %llu: post-handshake client certificate %s (verify: %s)",
			 (unsigned long long)c->id, text, tern_tls_verify_status(&c->tls));
	} else {
		tern_log(TERN_LOG_INFO, "conn %llu: post-handshake authentication: the client sent "
			 "no certificate", (unsigned long long)c->id);
	}
	c->tickets.owed += tern_tls_num_tickets(&c->tls);
	if (c->tickets.owed + c->tickets.pending > 0)
		c->tickets.due = true;
}

static void conn_tickets_make_due(struct tern_conn *c)
{
	tern_timer_disarm(&c->tickets.flush);
	c->tickets.due = true;
	if (!tern_list_linked(&c->tickets.due_link))
		tern_list_add_tail(&c->host->tickets_due, &c->tickets.due_link);
}

/* The control requests' rows of the table (docs/connection.md): 0 when
 * the request may act now, or the error the operator is told. `writes`:
 * it makes OpenSSL write a handshake message, which our close_notify ends
 * the chance of. */
static int conn_control_allowed(const struct tern_conn *c, bool writes)
{
	if (c->phase <= TERN_PHASE_HANDSHAKING)
		return -EINPROGRESS;
	if (writes ? !conn_can_write_handshake(c) : !conn_live(c))
		return -ENOTCONN;
	if (!tern_tls_is_tls13(&c->tls))
		return -EPROTONOSUPPORT;
	return 0;
}

/* Pending tickets wait for the connection's next write of backend data,
 * or the flush delay; due ones are written by the worker in batches, so
 * that asking every connection at once does not stall the loop. */
static void conn_tickets_schedule(struct tern_conn *c)
{
	struct tern_conn_host *h = c->host;
	struct tern_conn_tickets *t = &c->tickets;

	if (h->cfg->ticket_flush_delay_ms == 0)
		conn_tickets_make_due(c);
	else if (!t->due && !tern_timer_armed(&t->flush))
		tern_timer_arm(&h->ticket_flush, &t->flush, h->now_ms + h->cfg->ticket_flush_delay_ms);
}

void conn_tickets_handshake_done(struct tern_conn *c)
{
	unsigned n = tern_tls_num_tickets(&c->tls);

	if (!c->tls.tickets_deferred || !tern_tls_is_tls13(&c->tls) || n == 0)
		return;
	/* What OpenSSL would have written: num_tickets after a full
	 * handshake, one after a resumption. */
	if (tern_tls_resumed(&c->tls))
		n = 1;
	c->tickets.pending += n;
	conn_tickets_schedule(c);
}

int tern_conn_request_tickets(struct tern_conn *c, unsigned n)
{
	struct tern_conn_host *h = c->host;
	struct tern_conn_tickets *t = &c->tickets;
	int ret = conn_control_allowed(c, true);

	if (ret < 0)
		return ret;
	/* Requests add up; OpenSSL is asked once, at the boundary. */
	if (t->pending + n > TERN_CONN_MAX_PENDING_TICKETS)
		return -EBUSY;
	t->pending += n;
	t->requested += n;
	tern_counter_add(&h->ctr->tickets_requested, n);
	conn_tickets_schedule(c); /* no write now */
	return 0;
}

bool tern_conn_wants_refresh(const struct tern_conn *c, uint64_t older_than_ms)
{
	return conn_can_write_handshake(c) && tern_tls_is_tls13(&c->tls) &&
	       c->tickets.pending + c->tickets.owed == 0 &&
	       c->host->now_ms - c->tickets.last_ms >= older_than_ms;
}

void tern_conn_tickets_flush_expired(struct tern_conn *c)
{
	conn_tickets_make_due(c);
}

void tern_conn_tickets_write_due(struct tern_conn *c)
{
	tern_list_del(&c->tickets.due_link);
	if (conn_live(c))
		conn_pump(c);
	tern_conn_settle(c);
}

unsigned tern_conn_host_write_due_tickets(struct tern_conn_host *h, unsigned budget)
{
	unsigned served = 0;
	while (budget > 0 && !tern_list_empty(&h->tickets_due)) {
		struct tern_conn *c = tern_conn_from_due(h->tickets_due.next);
		unsigned n = c->tickets.pending + c->tickets.owed;
		budget = n >= budget ? 0 : budget - n;
		tern_conn_tickets_write_due(c); /* takes c off the list; may free it */
		served++;
	}
	return served;
}

int tern_conn_verify_client(struct tern_conn *c)
{
	int ret = conn_control_allowed(c, true);

	if (ret < 0)
		return ret;
	if (tern_tls_pha_pending(&c->tls))
		return -EALREADY;
	ret = tern_tls_request_client_cert(&c->tls);
	if (ret < 0)
		return ret;
	conn_pump(c); /* the CertificateRequest leaves now, at a boundary */
	tern_conn_settle(c);
	return 0;
}

int tern_conn_set_num_tickets(struct tern_conn *c, unsigned n)
{
	int ret = conn_control_allowed(c, false);

	if (ret < 0)
		return ret;
	c->tls.num_tickets = n;
	return 0;
}
