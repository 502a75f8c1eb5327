/* The scripted engine conn_test.c drives a connection with: struct
 * tern_conn_ops over byte moves instead of sockets, a real TLS client
 * (tern_tls in client mode) on the other end of the client socket, a byte
 * sink and source for the backend, and the worker's timer work. One
 * connection at a time; header-only with static state, like check.h. */
#ifndef TERN_TEST_CONN_FAKE_H
#define TERN_TEST_CONN_FAKE_H

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "check.h"
#include "tls_fixture.h"
#include "tern/backend_set.h"
#include "tern/conn.h"

/* ---- The fake engine ---------------------------------------------------- */

struct fake_conn {
	struct tern_conn conn;
	bool recv_posted[2];
	bool lend_on_complete[2]; /* the recv named a buffer with no memory */
	bool lent[2];
	bool send_posted[2];
	const uint8_t *send_ptr[2];
	uint32_t send_len[2];
	bool connect_posted;
	bool shut_wr[2];
	bool closed[2];
};

struct env {
	struct tern_conn_host host;
	struct tern_config cfg;
	struct tern_counters ctr;
	struct tern_histogram hist;
	struct tern_backend_stats backend_stats[2];
	SSL_CTX *sctx, *cctx;
	struct fake_conn *fc; /* the connection under test; NULL once freed */
	unsigned freed;

	/* The client. */
	struct tern_tls client;
	struct tern_buf client_in, client_out;
	uint8_t *never_retired; /* the fake's buffers are never sent from in flight */
	bool client_done;         /* handshake done */
	bool client_reading;      /* takes what tern sends (false: a stalled reader) */
	bool client_fin;          /* sends FIN once client_out is delivered */
	uint8_t *client_got;      /* plaintext received */
	size_t client_got_len, client_got_cap;
	uint32_t client_chunk;    /* bytes per client -> tern recv completion */
	uint32_t send_quota;      /* bytes per tern send completion */
	bool enobufs_once[2];     /* the next recv of a side completes -ENOBUFS */

	/* The backend. */
	uint8_t *backend_got;
	size_t backend_got_len, backend_got_cap;
	const uint8_t *backend_src; /* what the backend sends, and how far */
	size_t backend_src_len, backend_src_off;
	bool backend_fin;         /* FIN after backend_src */
	bool backend_stalled;     /* takes nothing: a send to it stays in flight */
	int connect_result;       /* the connect completes with this */
	unsigned connect_results_more; /* ... and this many more after it */
	bool hold_connect;        /* ... but not yet */
	int connect_socket_err;   /* ops->connect fails with this */
	int fail_recv[2];         /* the next recv of a side completes with this -errno */
	int fail_send[2];         /* the next send of a side completes with this -errno */
	const char *last_close_reason; /* c->reason when the engine was told to close */

	/* Connections set aside (env_park_and_accept): on the same host, no
	 * longer driven by the network, their clients kept only to be freed. */
	struct parked {
		struct fake_conn *fc;
		struct tern_tls client;
		struct tern_buf client_in, client_out;
	} parked[4];
	unsigned num_parked;
};

static struct env *E;

static struct fake_conn *fake(struct tern_conn *c)
{
	return (struct fake_conn *)c;
}

static int fake_recv(struct tern_conn *c, enum tern_side side, struct tern_buf *b)
{
	struct fake_conn *f = fake(c);
	if (!b->data) {
		f->lend_on_complete[side] = true;
	} else {
		if (tern_buf_free_tail(b) == 0)
			tern_buf_compact(b);
		if (tern_buf_free_tail(b) == 0)
			return 0;
		f->lend_on_complete[side] = false;
		b->pinned = true;
	}
	f->recv_posted[side] = true;
	return 1;
}

static void fake_send(struct tern_conn *c, enum tern_side side, const uint8_t *p, uint32_t len)
{
	struct fake_conn *f = fake(c);
	CHECK(!f->send_posted[side]);
	f->send_posted[side] = true;
	f->send_ptr[side] = p;
	f->send_len[side] = len;
}

static int fake_connect(struct tern_conn *c, const struct tern_addr *addr, uint64_t timeout_ms)
{
	(void)addr;
	(void)timeout_ms;
	if (E->connect_socket_err)
		return E->connect_socket_err;
	c->sock[TERN_SIDE_BACKEND].fd = 100;
	fake(c)->connect_posted = true;
	fake(c)->closed[TERN_SIDE_BACKEND] = false;
	return 0;
}

static void fake_shutdown_wr(struct tern_conn *c, enum tern_side side)
{
	CHECK(!fake(c)->shut_wr[side]);
	fake(c)->shut_wr[side] = true;
}

static void fake_close(struct tern_conn *c, enum tern_side side)
{
	fake(c)->closed[side] = true;
	E->last_close_reason = c->reason;
}

static bool fake_address(struct tern_conn *c, bool local, struct sockaddr *out, socklen_t len)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(local ? 443 : 5555)};
	(void)c;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	if (len < sizeof(sin))
		return false;
	memcpy(out, &sin, sizeof(sin));
	return true;
}

static int fake_return_buffers(struct tern_conn *c)
{
	struct fake_conn *f = fake(c);
	for (int side = 0; side < 2; side++) {
		struct tern_buf *b = side == TERN_SIDE_CLIENT ? &c->cin : &c->b2c.buf;
		if (!f->lent[side])
			continue;
		uint32_t len = tern_buf_len(b);
		uint8_t *own = NULL;
		uint32_t cap = (uint32_t)E->cfg.buffer_size;
		if (len > 0 && c->phase != TERN_PHASE_CLOSED) {
			own = malloc(cap > len ? cap : len);
			memcpy(own, tern_buf_head_ptr(b), len);
		}
		free(b->data);
		b->data = own;
		b->cap = own ? (cap > len ? cap : len) : 0;
		b->head = 0;
		b->tail = own ? len : 0;
		f->lent[side] = false;
	}
	return 0;
}

static void fake_slot_freed(struct tern_conn_host *h)
{
	(void)h;
	E->freed++;
	E->fc = NULL;
}

static const struct tern_conn_ops fake_ops = {
	.conn_size = sizeof(struct fake_conn),
	.recv = fake_recv,
	.send = fake_send,
	.connect = fake_connect,
	.shutdown_wr = fake_shutdown_wr,
	.close = fake_close,
	.address = fake_address,
	.return_buffers = fake_return_buffers,
	.slot_freed = fake_slot_freed,
};

/* ---- Moving bytes ------------------------------------------------------- */

static void append(uint8_t **buf, size_t *len, size_t *cap, const void *src, size_t n)
{
	if (*len + n > *cap) {
		*cap = (*len + n) * 2 + 1024;
		*buf = realloc(*buf, *cap);
	}
	memcpy(*buf + *len, src, n);
	*len += n;
}

/* Completes a recv of side with n bytes from src (n may be 0: EOF, or a
 * negative errno), as the kernel would, into the buffer the recv named or
 * into a lent one. */
static void complete_recv(enum tern_side side, const uint8_t *src, int32_t n)
{
	struct fake_conn *f = E->fc;
	struct tern_conn *c = &f->conn;
	struct tern_buf *b = side == TERN_SIDE_CLIENT ? &c->cin : &c->b2c.buf;

	f->recv_posted[side] = false;
	if (n > 0) {
		if (f->lend_on_complete[side]) {
			b->data = malloc(E->cfg.buffer_size);
			b->cap = (uint32_t)E->cfg.buffer_size;
			b->head = b->tail = 0;
			f->lent[side] = true;
			if ((uint32_t)n > b->cap)
				n = (int32_t)b->cap;
		} else if ((uint32_t)n > tern_buf_free_tail(b)) {
			n = (int32_t)tern_buf_free_tail(b);
		}
		memcpy(tern_buf_tail_ptr(b), src, (size_t)n);
	}
	tern_conn_on_recv(c, side, n);
	tern_conn_settle(c);
}

static int32_t recv_room(enum tern_side side)
{
	struct tern_conn *c = &E->fc->conn;
	struct tern_buf *b = side == TERN_SIDE_CLIENT ? &c->cin : &c->b2c.buf;
	return E->fc->lend_on_complete[side] ? (int32_t)E->cfg.buffer_size
					     : (int32_t)tern_buf_free_tail(b);
}

static void complete_send(enum tern_side side, int32_t res)
{
	E->fc->send_posted[side] = false;
	tern_conn_on_send(&E->fc->conn, side, res);
	tern_conn_settle(&E->fc->conn);
}

/* The client's TLS: handshake, then read everything, answering what must
 * be answered (a CertificateRequest, a KeyUpdate). */
static bool client_step(void)
{
	bool progress = false;
	if (!E->client_done) {
		int r = tern_tls_handshake(&E->client);
		if (r == TERN_TLS_DONE)
			E->client_done = progress = true;
		return progress;
	}
	uint8_t tmp[16384];
	for (;;) {
		int n = tern_tls_read(&E->client, tmp, sizeof(tmp));
		if (n <= 0)
			break;
		append(&E->client_got, &E->client_got_len, &E->client_got_cap, tmp, (size_t)n);
		progress = true;
	}
	return progress;
}

/* One round of the network: every posted operation that can complete
 * does, by the script's quotas. Returns whether anything happened. */
static bool net_step(void)
{
	bool progress = client_step();
	struct fake_conn *f = E->fc;
	if (!f)
		return progress;

	for (int side = 0; side < 2 && E->fc; side++) {
		f = E->fc;
		if (f->closed[side]) { /* the kernel cancels what was in flight */
			if (f->recv_posted[side]) {
				complete_recv((enum tern_side)side, NULL, -ECANCELED);
				progress = true;
			}
			if (E->fc && E->fc->send_posted[side]) {
				complete_send((enum tern_side)side, -ECANCELED);
				progress = true;
			}
			if (E->fc && side == TERN_SIDE_BACKEND && E->fc->connect_posted) {
				E->fc->connect_posted = false;
				tern_conn_on_connect(&E->fc->conn, -ECANCELED);
				tern_conn_settle(&E->fc->conn);
				progress = true;
			}
		}
	}
	if (!(f = E->fc))
		return progress;
	struct tern_conn *c = &f->conn;

	/* Errors the script asked for, at whichever operation is in flight. */
	for (int side = 0; side < 2 && E->fc; side++) {
		if (E->fail_send[side] && E->fc->send_posted[side]) {
			int err = E->fail_send[side];
			E->fail_send[side] = 0;
			complete_send((enum tern_side)side, err);
			return true;
		}
		if (E->fail_recv[side] && E->fc->recv_posted[side]) {
			int err = E->fail_recv[side];
			E->fail_recv[side] = 0;
			complete_recv((enum tern_side)side, NULL, err);
			return true;
		}
	}
	/* tern -> client */
	if (f->send_posted[TERN_SIDE_CLIENT] && !f->closed[TERN_SIDE_CLIENT] && E->client_reading) {
		uint32_t n = f->send_len[TERN_SIDE_CLIENT];
		if (n > E->send_quota)
			n = E->send_quota;
		CHECK_EQ_INT(tern_buf_append(&E->client_in, f->send_ptr[TERN_SIDE_CLIENT], n, 65536,
					     &E->never_retired), 0);
		complete_send(TERN_SIDE_CLIENT, (int32_t)n);
		progress = true;
	}
	if (!(f = E->fc))
		return progress;
	c = &f->conn;
	/* client -> tern */
	if (f->recv_posted[TERN_SIDE_CLIENT] && !f->closed[TERN_SIDE_CLIENT]) {
		if (E->enobufs_once[TERN_SIDE_CLIENT] && f->lend_on_complete[TERN_SIDE_CLIENT]) {
			E->enobufs_once[TERN_SIDE_CLIENT] = false;
			complete_recv(TERN_SIDE_CLIENT, NULL, -ENOBUFS);
			progress = true;
		} else if (!tern_buf_empty(&E->client_out)) {
			int32_t n = (int32_t)tern_buf_len(&E->client_out);
			if ((uint32_t)n > E->client_chunk)
				n = (int32_t)E->client_chunk;
			if (n > recv_room(TERN_SIDE_CLIENT))
				n = recv_room(TERN_SIDE_CLIENT);
			uint8_t tmp[65536];
			memcpy(tmp, tern_buf_head_ptr(&E->client_out), (size_t)n);
			tern_buf_consume(&E->client_out, (uint32_t)n);
			complete_recv(TERN_SIDE_CLIENT, tmp, n);
			progress = true;
		} else if (E->client_fin) {
			E->client_fin = false;
			complete_recv(TERN_SIDE_CLIENT, NULL, 0);
			progress = true;
		}
	}
	if (!(f = E->fc))
		return progress;
	c = &f->conn;
	/* the backend */
	if (f->connect_posted && !f->closed[TERN_SIDE_BACKEND] && !E->hold_connect) {
		f->connect_posted = false;
		int res = E->connect_result;
		if (E->connect_results_more > 0)
			E->connect_results_more--;
		else
			E->connect_result = 0;
		tern_conn_on_connect(c, res);
		tern_conn_settle(c);
		progress = true;
	}
	if (!(f = E->fc))
		return progress;
	c = &f->conn;
	if (f->send_posted[TERN_SIDE_BACKEND] && !f->closed[TERN_SIDE_BACKEND] &&
	    !E->backend_stalled) {
		uint32_t n = f->send_len[TERN_SIDE_BACKEND];
		if (n > E->send_quota)
			n = E->send_quota;
		append(&E->backend_got, &E->backend_got_len, &E->backend_got_cap,
		       f->send_ptr[TERN_SIDE_BACKEND], n);
		complete_send(TERN_SIDE_BACKEND, (int32_t)n);
		progress = true;
	}
	if (!(f = E->fc))
		return progress;
	if (f->recv_posted[TERN_SIDE_BACKEND] && !f->closed[TERN_SIDE_BACKEND]) {
		if (E->enobufs_once[TERN_SIDE_BACKEND] && f->lend_on_complete[TERN_SIDE_BACKEND]) {
			E->enobufs_once[TERN_SIDE_BACKEND] = false;
			complete_recv(TERN_SIDE_BACKEND, NULL, -ENOBUFS);
			progress = true;
		} else if (E->backend_src_off < E->backend_src_len) {
			int32_t n = (int32_t)(E->backend_src_len - E->backend_src_off);
			if (n > 7000)
				n = 7000; /* reads that do not line up with records */
			if (n > recv_room(TERN_SIDE_BACKEND))
				n = recv_room(TERN_SIDE_BACKEND);
			const uint8_t *src = E->backend_src + E->backend_src_off;
			E->backend_src_off += (size_t)n;
			complete_recv(TERN_SIDE_BACKEND, src, n);
			progress = true;
		} else if (E->backend_fin) {
			E->backend_fin = false;
			complete_recv(TERN_SIDE_BACKEND, NULL, 0);
			progress = true;
		}
	}
	return progress;
}

/* Runs the network until nothing moves (bounded). */
static void run(void)
{
	for (int i = 0; i < 2000000 && net_step(); i++)
		;
}

/* The worker's timer work, after the clock moved by ms. */
static void advance(uint64_t ms)
{
	struct tern_conn_host *h = &E->host;
	struct tern_timer *t;
	h->now_ms += ms;
	struct tern_timer_list *lists[] = {&h->handshaking, &h->idle, &h->lingering};
	for (size_t i = 0; i < 3; i++)
		while ((t = tern_timer_pop_due(lists[i], h->now_ms)))
			tern_conn_expire(tern_conn_from_timer(t));
	while ((t = tern_timer_pop_due(&h->ticket_flush, h->now_ms)))
		tern_conn_tickets_flush_expired(tern_conn_from_flush(t));
	(void)tern_conn_host_write_due_tickets(h, UINT32_MAX);
}

/* ---- Set-up ------------------------------------------------------------- */

static X509 *ca_cert, *client_cert;
static EVP_PKEY *ca_key, *client_key;

struct env_opts {
	size_t buffer_size;
	int client_max; /* TLS1_3_VERSION or TLS1_2_VERSION */
	bool pha;       /* the client offers post-handshake auth, with a certificate */
	unsigned num_tickets;
	uint64_t flush_delay_ms;
	bool tickets_with_data; /* --handshake-tickets with-data */
	SSL_SESSION *resume;
	SSL_CTX *sctx; /* the server context to use (borrowed), for resumption */
	enum tern_accept_proxy accept_proxy; /* --accept-proxy */
	const char *accept_from;             /* --accept-proxy-from (one range) */
	enum tern_proxy_protocol proxy_protocol;
	/* Bytes the client sends before its TLS (a PROXY header). */
	const uint8_t *prefix;
	size_t prefix_len;
};

static SSL_CTX *server_ctx(unsigned num_tickets)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = fixture_key();
	X509 *cert = fixture_self_signed(key, "localhost");
	SSL_CTX_use_certificate(ctx, cert);
	SSL_CTX_use_PrivateKey(ctx, key);
	X509_free(cert);
	EVP_PKEY_free(key);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"tern", 4);
	SSL_CTX_set_num_tickets(ctx, num_tickets);
	/* post-handshake auth: a client CA list to ask by, and to verify */
	SSL_CTX_add_client_CA(ctx, ca_cert);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca_cert);
	return ctx;
}

/* A new client, and the connection that accepts it, driven from now on. */
static void env_connect(struct env *e, const struct env_opts *o)
{
	CHECK_EQ_INT(tern_tls_init(&e->client, e->cctx, true, &e->client_in, &e->client_out, 65536), 0);
	SSL_set_tlsext_host_name(e->client.ssl, "localhost");
	if (o->pha)
		SSL_set_post_handshake_auth(e->client.ssl, 1);
	if (o->resume)
		SSL_set_session(e->client.ssl, o->resume);
	if (o->prefix_len)
		CHECK_EQ_INT(tern_buf_append(&e->client_out, o->prefix, (uint32_t)o->prefix_len, 65536,
					     &e->never_retired), 0);
	CHECK_EQ_INT(tern_conn_accept(&e->host, 7), 0);
	/* The newest; none when it ended at accept (and was freed). */
	e->fc = tern_list_empty(&e->host.conns) ? NULL
						: fake(tern_conn_from_link(e->host.conns.prev));
}

static void env_init(struct env *e, const struct env_opts *o)
{
	memset(e, 0, sizeof(*e));
	E = e;
	tern_config_init(&e->cfg);
	e->cfg.buffer_size = o->buffer_size ? o->buffer_size : 16384;
	e->cfg.ticket_flush_delay_ms = o->flush_delay_ms;
	/* The fake's connections write the handshake's tickets at once
	 * unless a test asks for with-data (tern's default). */
	e->cfg.handshake_tickets = o->tickets_with_data ? TERN_HANDSHAKE_TICKETS_WITH_DATA
						       : TERN_HANDSHAKE_TICKETS_AT_ONCE;
	e->cfg.accept_proxy = o->accept_proxy;
	if (o->accept_from) {
		CHECK_EQ_INT(tern_cidr_parse(o->accept_from, &e->cfg.accept_proxy_from[0]), 0);
		e->cfg.num_accept_proxy_from = 1;
	}
	e->cfg.proxy_protocol = o->proxy_protocol;
	e->cfg.num_backends = 2;
	snprintf(e->cfg.backends[0].text, sizeof(e->cfg.backends[0].text), "b0");
	snprintf(e->cfg.backends[1].text, sizeof(e->cfg.backends[1].text), "b1");
	e->sctx = o->sctx ? o->sctx : server_ctx(o->num_tickets ? o->num_tickets : 2);
	if (o->sctx)
		SSL_CTX_up_ref(o->sctx);
	e->cctx = fixture_client_ctx(o->client_max ? o->client_max : TLS1_3_VERSION);
	if (o->pha) {
		SSL_CTX_use_certificate(e->cctx, client_cert);
		SSL_CTX_use_PrivateKey(e->cctx, client_key);
	}
	tern_conn_host_init(&e->host);
	/* The two backends as a worker holds them: a set of two addresses,
	 * a view of it, counts per backend. */
	struct tern_backend_set *set = tern_backend_set_new(2);
	for (unsigned i = 0; i < 2; i++) {
		struct tern_endpoint *ep = tern_endpoint_new(&e->cfg.backends[i], i);
		CHECK(tern_backend_set_add(set, ep));
		tern_endpoint_unref(ep);
	}
	e->host.backends = tern_backend_view_new(set);
	e->host.backend_stats = e->backend_stats;
	e->host.ops = &fake_ops;
	e->host.cfg = &e->cfg;
	e->host.ssl_ctx = e->sctx;
	e->host.ctr = &e->ctr;
	e->host.hs_hist = &e->hist;
	e->host.now_ms = 1000;
	e->client_chunk = 100000;
	e->send_quota = UINT32_MAX;
	e->client_reading = true;
	env_connect(e, o);
}

/* Sets the driven connection aside, on the same host, and starts another
 * (handshake and backend connect). The parked one is driven no more: what
 * it posts stays in flight until env_free. */
static bool env_park_and_accept(struct env *e, const struct env_opts *o)
{
	struct parked *p = &e->parked[e->num_parked++];
	p->fc = e->fc;
	p->client = e->client;
	p->client_in = e->client_in;
	p->client_out = e->client_out;
	memset(&e->client, 0, sizeof(e->client));
	memset(&e->client_in, 0, sizeof(e->client_in));
	memset(&e->client_out, 0, sizeof(e->client_out));
	e->client_done = false;
	env_connect(e, o);
	run();
	return CHECK(e->fc && e->fc->conn.phase == TERN_PHASE_STREAMING && e->client_done);
}

/* Handshake and backend connect: the connection streams. */
static bool env_start(struct env *e, const struct env_opts *o)
{
	env_init(e, o);
	run();
	return CHECK(e->fc && e->fc->conn.phase == TERN_PHASE_STREAMING && e->client_done);
}

/* Completes what is in flight for a connection no network drives, as the
 * kernel does after a close, and lets it be freed. */
static void fake_cancel_all(struct fake_conn *f)
{
	for (int side = 0; side < 2; side++) {
		if (f->recv_posted[side]) {
			f->recv_posted[side] = false;
			tern_conn_on_recv(&f->conn, (enum tern_side)side, -ECANCELED);
		}
		if (f->send_posted[side]) {
			f->send_posted[side] = false;
			tern_conn_on_send(&f->conn, (enum tern_side)side, -ECANCELED);
		}
	}
	if (f->connect_posted) {
		f->connect_posted = false;
		tern_conn_on_connect(&f->conn, -ECANCELED);
	}
	tern_conn_settle(&f->conn);
}

static void env_free(struct env *e)
{
	if (e->fc) {
		tern_conn_abort(&e->fc->conn, "test_end");
		run();
	}
	CHECK(e->fc == NULL);
	for (unsigned i = 0; i < e->num_parked; i++) {
		struct parked *p = &e->parked[i];
		tern_conn_abort(&p->fc->conn, "test_end");
		fake_cancel_all(p->fc);
		tern_tls_free(&p->client);
		tern_buf_free(&p->client_in);
		tern_buf_free(&p->client_out);
	}
	CHECK_EQ_UINT(e->host.num_conns, 0);
	tern_backend_view_retire(e->host.backends);
	tern_tls_free(&e->client);
	tern_buf_free(&e->client_in);
	tern_buf_free(&e->client_out);
	free(e->client_got);
	free(e->backend_got);
	SSL_CTX_free(e->sctx);
	SSL_CTX_free(e->cctx);
}

static struct tern_conn *C(void)
{
	return &E->fc->conn;
}

/* The client writes data (into client_out, for the network to move). */
static void client_write(const void *p, size_t len)
{
	const uint8_t *b = p;
	while (len > 0) {
		size_t n = len > 16384 ? 16384 : len;
		CHECK_EQ_INT(tern_tls_write(&E->client, b, n), (int)n);
		b += n;
		len -= n;
	}
}

static uint8_t *random_bytes(size_t len)
{
	uint8_t *p = malloc(len);
	RAND_bytes(p, (int)len);
	return p;
}

static void backend_sends(const uint8_t *src, size_t len, bool fin)
{
	E->backend_src = src;
	E->backend_src_len = len;
	E->backend_src_off = 0;
	E->backend_fin = fin;
}

#endif
