/* The connection state machine (conn.c) driven by a scripted engine: no
 * sockets, no ring. A real TLS client (tern_tls in client mode) talks to
 * the connection through the fake's byte moves; the backend is a byte
 * sink and source. The script decides how much each recv and send
 * completes with (records split at every byte, partial sends, a reader
 * that stops), when reads find no buffer (-ENOBUFS), when operations fail,
 * and in which phase control requests (tickets, num-tickets, verify-client)
 * arrive. The cases of issue 11 each have a test here. */
#include "conn_fake.h"

/* ---- Tests -------------------------------------------------------------- */

/* Bytes exact both ways with the client's records split at every byte and
 * sends completing a few bytes at a time, then both half-close orders. */
static void test_split_records_and_half_closes(bool client_first, uint32_t chunk)
{
	struct env e;
	struct env_opts o = {.buffer_size = 4096};
	if (!env_start(&e, &o))
		goto out;
	e.client_chunk = chunk;
	e.send_quota = chunk * 3 + 1;
	size_t up_len = 30000, down_len = 50000;
	uint8_t *up = random_bytes(up_len), *down = random_bytes(down_len);
	client_write(up, up_len);
	backend_sends(down, down_len, !client_first);
	run();
	CHECK_EQ_UINT(e.backend_got_len, up_len);
	CHECK(e.backend_got_len == up_len && memcmp(e.backend_got, up, up_len) == 0);
	CHECK_EQ_UINT(e.client_got_len, down_len);
	CHECK(e.client_got_len == down_len && memcmp(e.client_got, down, down_len) == 0);
	if (client_first) {
		CHECK_EQ_INT(tern_tls_shutdown(&e.client), 0);
		e.client_fin = true;
		run();
		CHECK(e.fc && e.fc->shut_wr[TERN_SIDE_BACKEND]);
		CHECK(e.fc && C()->c2b.state == TERN_FLOW_SHUT && C()->b2c.state == TERN_FLOW_OPEN);
		/* the other direction still flows */
		backend_sends(down, 1000, true);
		run();
	} else {
		CHECK(e.fc && e.fc->shut_wr[TERN_SIDE_CLIENT]);
		CHECK(e.fc && C()->b2c.state == TERN_FLOW_SHUT && C()->c2b.state == TERN_FLOW_OPEN);
		uint8_t tmp[1];
		CHECK_EQ_INT(tern_tls_read(&e.client, tmp, 1), TERN_TLS_CLOSED);
		client_write(up, 999);
		run();
		CHECK_EQ_UINT(e.backend_got_len, up_len + 999);
		CHECK_EQ_INT(tern_tls_shutdown(&e.client), 0);
		e.client_fin = true;
		run();
	}
	CHECK(e.fc == NULL); /* both directions over: closed "done" and freed */
	CHECK_EQ_UINT(e.freed, 1);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.conns_active), 0);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.handshake_failures), 0);
	free(up);
	free(down);
out:
	env_free(&e);
}

/* Reads that find no buffer, a failed socket, a refused backend (the
 * next is tried once), and errors on each side. */
static void test_enobufs_and_errors(void)
{
	struct env e;
	struct env_opts o = {0};

	env_init(&e, &o);
	e.enobufs_once[TERN_SIDE_CLIENT] = true;
	e.connect_result = -ECONNREFUSED; /* the first backend refuses */
	run();
	CHECK(e.fc && C()->phase == TERN_PHASE_STREAMING);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.backend_connect_failures), 1);
	CHECK(e.fc && C()->attempts == 2);
	e.enobufs_once[TERN_SIDE_BACKEND] = true;
	uint8_t *down = random_bytes(5000);
	backend_sends(down, 5000, false);
	run();
	CHECK_EQ_UINT(e.client_got_len, 5000);
	e.fail_recv[TERN_SIDE_BACKEND] = -ECONNRESET;
	backend_sends(down, 0, false);
	run();
	CHECK(e.fc == NULL);
	env_free(&e);

	/* No backend at all: both fail, the client gets close_notify. */
	env_init(&e, &o);
	e.connect_socket_err = -EMFILE;
	run();
	CHECK(e.fc == NULL);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.backend_connect_failures), 2);
	uint8_t tmp[1];
	CHECK_EQ_INT(tern_tls_read(&e.client, tmp, 1), TERN_TLS_CLOSED);
	env_free(&e);

	/* The client sends garbage mid-stream: an alert, then closed. */
	if (env_start(&e, &o)) {
		uint8_t junk[64];
		memset(junk, 0x17, sizeof(junk));
		CHECK_EQ_INT(tern_buf_append(&e.client_out, junk, sizeof(junk), 1024, &e.never_retired), 0);
		run();
		CHECK(e.fc == NULL);
	}
	env_free(&e);
	free(down);
}

/* An error at every step: each socket operation failing while the
 * connection streams ends it at once with the side's reason, counted as
 * no handshake failure; during the handshake, it is one. */
static void test_errors_at_every_step(void)
{
	struct {
		bool send;
		enum tern_side side;
		const char *reason;
	} steps[] = {
		{false, TERN_SIDE_CLIENT, "client_error"},
		{true, TERN_SIDE_CLIENT, "client_error"},
		{false, TERN_SIDE_BACKEND, "backend_error"},
		{true, TERN_SIDE_BACKEND, "backend_error"},
	};
	uint8_t *data = random_bytes(20000);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct env e;
		struct env_opts o = {.buffer_size = 4096};
		if (env_start(&e, &o)) {
			/* both ways busy, so a send is in flight on each side */
			client_write(data, 20000);
			backend_sends(data, 20000, false);
			e.send_quota = 100;
			for (int k = 0; k < 5; k++)
				net_step();
			if (steps[i].send)
				e.fail_send[steps[i].side] = -EPIPE;
			else
				e.fail_recv[steps[i].side] = -ECONNRESET;
			run();
			CHECK(e.fc == NULL);
			CHECK_EQ_STR(e.last_close_reason, steps[i].reason);
			CHECK_EQ_UINT(tern_counter_get(&e.ctr.conns_active), 0);
			CHECK_EQ_UINT(tern_counter_get(&e.ctr.handshake_failures), 0);
		}
		env_free(&e);
	}
	free(data);

	/* mid-handshake, after part of the ClientHello: the client's recv fails */
	struct env e;
	struct env_opts o = {0};
	env_init(&e, &o);
	e.client_chunk = 10;
	net_step();
	CHECK(e.fc && e.fc->conn.client_spoke);
	e.fail_recv[TERN_SIDE_CLIENT] = -ECONNRESET;
	run();
	CHECK(e.fc == NULL);
	CHECK_EQ_STR(e.last_close_reason, "client_error");
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.handshake_failures), 1);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.probe_connections), 0);
	env_free(&e);
}

/* Health probes (SPEC 5): a client that leaves before sending a byte,
 * with a FIN or a reset, is a probe: reason "probe", counted apart, no
 * handshake failure. One byte, or a whole ClientHello, before leaving
 * makes it a failed handshake again. */
static void test_probes(void)
{
	struct {
		int32_t first; /* the first client recv completes with this */
		uint32_t bytes; /* ... or, if > 0, with this many ClientHello bytes, then EOF */
		const char *reason;
		bool probe;
	} cases[] = {
		{0, 0, "probe", true},            /* connect, close */
		{-ECONNRESET, 0, "probe", true},  /* connect, reset (SO_LINGER 0) */
		{-EPIPE, 0, "probe", true},
		/* OpenSSL read part of a record: "unexpected eof" */
		{0, 1, "tls_error", false},       /* one byte, then close */
		{0, 100, "tls_error", false},     /* part of a ClientHello */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct env e;
		struct env_opts o = {0};
		env_init(&e, &o);
		/* the client's handshake writes its ClientHello into client_out */
		CHECK_EQ_INT(tern_tls_handshake(&e.client), 0);
		CHECK(e.fc && e.fc->recv_posted[TERN_SIDE_CLIENT]);
		if (cases[i].bytes > 0) {
			complete_recv(TERN_SIDE_CLIENT, tern_buf_head_ptr(&e.client_out),
				      (int32_t)cases[i].bytes);
			CHECK(e.fc && e.fc->recv_posted[TERN_SIDE_CLIENT]);
		}
		if (e.fc)
			complete_recv(TERN_SIDE_CLIENT, NULL, cases[i].first);
		run();
		CHECK(e.fc == NULL);
		CHECK_EQ_STR(e.last_close_reason, cases[i].reason);
		CHECK_EQ_UINT(tern_counter_get(&e.ctr.probe_connections), cases[i].probe ? 1 : 0);
		CHECK_EQ_UINT(tern_counter_get(&e.ctr.handshake_failures), cases[i].probe ? 0 : 1);
		CHECK_EQ_UINT(tern_counter_get(&e.ctr.conns_total), 1);
		CHECK_EQ_UINT(tern_counter_get(&e.ctr.conns_active), 0);
		env_free(&e);
	}

	/* silent until the handshake timeout: not a probe (it never left),
	 * a failure as before */
	struct env e;
	struct env_opts o = {0};
	env_init(&e, &o);
	advance(e.cfg.handshake_timeout_ms);
	run();
	CHECK(e.fc == NULL);
	CHECK_EQ_STR(e.last_close_reason, "handshake_timeout");
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.probe_connections), 0);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.handshake_failures), 1);
	env_free(&e);
}

/* Case 1 and case 10: a post-handshake CertificateRequest, and the
 * client's KeyUpdate asking for one back, while tern's output to the
 * client is backed up by a slow reader, with --buffer-size 4k: OpenSSL
 * must never be asked to write while a write is half done inside it. */
static void test_write_from_read_with_output_backed_up(bool pha)
{
	struct env e;
	struct env_opts o = {.buffer_size = 4096, .pha = pha};
	if (!env_start(&e, &o))
		goto out;
	size_t len = 400000;
	uint8_t *down = random_bytes(len);
	backend_sends(down, len, true);
	e.client_reading = false;
	e.send_quota = 1000;
	run(); /* tern fills cout and stalls */
	CHECK(e.fc && !tern_buf_empty(&C()->cout));
	if (pha) {
		CHECK_EQ_INT(tern_conn_verify_client(C()), 0);
	} else {
		CHECK_EQ_INT(SSL_key_update(e.client.ssl, SSL_KEY_UPDATE_REQUESTED), 1);
		uint8_t x = 'k';
		client_write(&x, 1); /* carries the KeyUpdate out */
	}
	/* the reader trickles: each round a little, so every read and write
	 * meets a full cout */
	for (int i = 0; i < 20000 && e.fc && e.client_got_len < len; i++) {
		e.client_reading = true;
		net_step();
		e.client_reading = (i % 3) == 0;
		net_step();
	}
	e.client_reading = true;
	run();
	CHECK_EQ_UINT(e.client_got_len, len);
	CHECK(e.client_got_len == len && memcmp(e.client_got, down, len) == 0);
	CHECK_EQ_STR(e.client.error, "");
	if (pha) {
		char subject[256];
		/* the answer went through while the stream ran */
		CHECK(e.fc == NULL || !tern_tls_pha_pending(&C()->tls));
		(void)subject;
	} else {
		CHECK_EQ_UINT(e.backend_got_len, 1);
	}
	free(down);
out:
	env_free(&e);
}

/* Case 2: tickets asked while the client's answer to a CertificateRequest
 * has only partly arrived (OpenSSL is mid-exchange: "not now"). They go
 * out after it, with the num_tickets the authentication issues. */
static void test_tickets_during_partial_pha_answer(void)
{
	struct env e;
	struct env_opts o = {.pha = true};
	if (!env_start(&e, &o))
		goto out;
	uint32_t before = e.client.tickets_received;
	CHECK_EQ_UINT(before, 2);
	CHECK_EQ_INT(tern_conn_verify_client(C()), 0);
	/* the client reads the request and answers; deliver it a byte at a
	 * time and ask for a ticket in the middle */
	e.client_chunk = 1;
	for (int i = 0; i < 40 && e.fc; i++)
		net_step();
	CHECK(e.fc && tern_tls_pha_pending(&C()->tls));
	CHECK_EQ_INT(tern_conn_request_tickets(C(), 1), 0);
	advance(1000);
	for (int i = 0; i < 200 && e.fc; i++)
		net_step();
	CHECK_EQ_INT(tern_conn_request_tickets(C(), 1), 0);
	e.client_chunk = 100000;
	run();
	advance(1000);
	run();
	CHECK(e.fc && !tern_tls_pha_pending(&C()->tls) && C()->phase == TERN_PHASE_STREAMING);
	CHECK_EQ_UINT(e.client.tickets_received - before, 2 + 2);
	CHECK_EQ_UINT(C()->tickets.pending + C()->tickets.owed, 0);
	X509 *peer = e.fc ? SSL_get0_peer_certificate(C()->tls.ssl) : NULL;
	CHECK(peer != NULL);
	/* still a working connection */
	client_write("ping", 4);
	run();
	CHECK_EQ_UINT(e.backend_got_len, 4);
out:
	env_free(&e);
}

/* Case 3: more tickets than cout holds, with nobody reading: all are
 * written (cout grows; OpenSSL keeps nothing half written), and tickets
 * asked later are not blocked by the earlier ones. */
static void test_many_tickets_small_buffer(void)
{
	struct env e;
	struct env_opts o = {.buffer_size = 4096, .flush_delay_ms = 200};
	if (!env_start(&e, &o))
		goto out;
	e.client_reading = false;
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(tern_conn_request_tickets(C(), 16), 0);
	CHECK_EQ_INT(tern_conn_request_tickets(C(), 1), -EBUSY); /* 64 waiting at most */
	advance(200);
	run();
	CHECK_EQ_UINT(C()->tls.tickets_sent, 2 + 64);
	CHECK_EQ_INT(tern_conn_request_tickets(C(), 1), 0);
	advance(200);
	CHECK_EQ_UINT(C()->tls.tickets_sent, 2 + 65);
	CHECK_EQ_UINT(C()->tickets.pending, 0);
	e.client_reading = true;
	run();
	CHECK_EQ_UINT(e.client.tickets_received, 2 + 65);
	/* backend data after them arrives after them */
	uint8_t *down = random_bytes(3000);
	backend_sends(down, 3000, false);
	run();
	CHECK_EQ_UINT(e.client_got_len, 3000);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.tickets_sent), 2 + 65);
	free(down);
out:
	env_free(&e);
}

/* --handshake-tickets with-data: none in the handshake; the two wait
 * for the backend's first bytes and go ahead of them, with the client
 * reading slowly and records split small; or alone after the delay. */
static void test_handshake_tickets_with_data(void)
{
	struct env e;
	struct env_opts o = {.buffer_size = 4096, .flush_delay_ms = 200,
			     .tickets_with_data = true};
	if (!env_start(&e, &o))
		goto out;
	CHECK_EQ_UINT(C()->tls.tickets_sent, 0);
	CHECK_EQ_UINT(C()->tickets.pending, 2);
	CHECK_EQ_UINT(tern_tls_num_tickets(&C()->tls), 2);
	advance(199);
	CHECK_EQ_UINT(C()->tls.tickets_sent, 0);
	uint8_t *down = random_bytes(10000);
	backend_sends(down, 10000, false);
	run();
	CHECK_EQ_UINT(C()->tls.tickets_sent, 2);
	CHECK_EQ_UINT(C()->tickets.pending, 0);
	CHECK_EQ_UINT(e.client.tickets_received, 2);
	CHECK(e.client_got_len == 10000 && memcmp(e.client_got, down, 10000) == 0);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.tickets_requested), 0);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.tickets_sent), 2);
	advance(1000); /* nothing left for the timer */
	CHECK_EQ_UINT(C()->tls.tickets_sent, 2);
	free(down);
	env_free(&e);

	/* Nothing from the backend: alone, at the flush delay. */
	if (!env_start(&e, &o))
		goto out;
	advance(199);
	CHECK_EQ_UINT(C()->tls.tickets_sent, 0);
	advance(1);
	CHECK_EQ_UINT(C()->tls.tickets_sent, 2);
	run();
	CHECK_EQ_UINT(e.client.tickets_received, 2);
out:
	env_free(&e);
}

/* Case 4: num-tickets does not inflate a later on-demand batch. */
static void test_num_tickets_then_tickets(void)
{
	struct env e;
	struct env_opts o = {.flush_delay_ms = 0};
	if (!env_start(&e, &o))
		goto out;
	CHECK_EQ_INT(tern_conn_set_num_tickets(C(), 7), 0);
	CHECK_EQ_UINT(tern_tls_num_tickets(&C()->tls), 7);
	CHECK_EQ_INT(tern_conn_request_tickets(C(), 1), 0);
	advance(0);
	run();
	CHECK_EQ_UINT(e.client.tickets_received, 2 + 1);
	/* the next post-handshake authentication issues exactly 7 */
out:
	env_free(&e);
}

/* Case 5 and the control requests in every phase: handshaking,
 * connecting, streaming, half-closed either way, closing. */
static void test_control_in_every_phase(void)
{
	struct env e;
	struct env_opts o = {.pha = true, .flush_delay_ms = 50};

	env_init(&e, &o);
	CHECK_EQ_INT(tern_conn_request_tickets(C(), 1), -EINPROGRESS);
	CHECK_EQ_INT(tern_conn_verify_client(C()), -EINPROGRESS);
	CHECK_EQ_INT(tern_conn_set_num_tickets(C(), 3), -EINPROGRESS);
	/* connecting: the handshake is done, the backend not yet there */
	e.hold_connect = true;
	run();
	CHECK(e.fc && C()->phase == TERN_PHASE_CONNECTING);
	CHECK_EQ_INT(tern_conn_request_tickets(C(), 1), 0);
	CHECK_EQ_INT(tern_conn_set_num_tickets(C(), 3), 0);
	e.hold_connect = false;
	run();
	advance(50);
	run();
	CHECK_EQ_UINT(e.client.tickets_received, 2 + 1);
	/* streaming */
	CHECK_EQ_INT(tern_conn_verify_client(C()), 0);
	CHECK_EQ_INT(tern_conn_verify_client(C()), -EALREADY);
	run();
	CHECK_EQ_UINT(e.client.tickets_received, 3 + 3); /* num-tickets after the answer */
	/* the client's side closed (close_notify): tickets still go */
	CHECK_EQ_INT(tern_tls_shutdown(&e.client), 0);
	run();
	CHECK(C()->c2b.state == TERN_FLOW_SHUT);
	CHECK_EQ_INT(tern_conn_request_tickets(C(), 2), 0);
	advance(50);
	run();
	CHECK_EQ_UINT(e.client.tickets_received, 6 + 2);
	/* the backend's FIN with a ticket waiting: the ticket goes first,
	 * then close_notify, and from then on the answer is "closing" */
	CHECK_EQ_INT(tern_conn_request_tickets(C(), 1), 0);
	backend_sends(NULL, 0, true);
	e.client_reading = false;
	run();
	CHECK(e.fc && C()->b2c.state >= TERN_FLOW_ENDING);
	CHECK_EQ_UINT(C()->tls.tickets_sent, 2 + 1 + 3 + 2 + 1);
	CHECK_EQ_INT(tern_conn_request_tickets(C(), 1), -ENOTCONN);
	CHECK_EQ_INT(tern_conn_verify_client(C()), -ENOTCONN);
	CHECK(!tern_conn_wants_refresh(C(), 0));
	e.client_reading = true;
	run();
	CHECK(e.fc == NULL);
	CHECK_EQ_UINT(e.client.tickets_received, 9);
	env_free(&e);

	/* finishing (idle timeout): closing */
	if (env_start(&e, &o)) {
		e.client_reading = false;
		advance(e.cfg.idle_timeout_ms);
		CHECK(e.fc && C()->phase == TERN_PHASE_FINISHING);
		CHECK_EQ_INT(tern_conn_request_tickets(C(), 1), -ENOTCONN);
		CHECK_EQ_INT(tern_conn_set_num_tickets(C(), 1), -ENOTCONN);
		e.client_reading = true;
		run();
		CHECK(e.fc == NULL);
	}
	env_free(&e);
}

/* After a close: the connection is gone, its reason closed_by_control,
 * and it was no handshake failure. */
static void check_closed_by_control(struct env *e)
{
	CHECK(e->fc == NULL);
	CHECK_EQ_STR(e->last_close_reason, TERN_CONN_REASON_CONTROL);
	CHECK_EQ_UINT(tern_counter_get(&e->ctr.conns_active), 0);
	CHECK_EQ_UINT(tern_counter_get(&e->ctr.handshake_failures), 0);
}

/* The client saw close_notify: its next read says the stream is over. */
static void check_client_got_close_notify(struct env *e)
{
	uint8_t tmp[1];
	CHECK_EQ_INT(tern_tls_read(&e->client, tmp, 1), TERN_TLS_CLOSED);
}

/* `close ID` in every phase (docs/connection.md, the close row):
 * handshaking (at once, no failure counted), connecting, streaming with a
 * slow reader (close_notify after what is queued, the backend dropped at
 * once; closed at the linger deadline if the reader never reads), with a
 * busy backend (its send in flight cancelled), half-closed either way,
 * and already closing (nothing changes). */
static void test_close_in_every_phase(void)
{
	struct env e;
	struct env_opts o = {.buffer_size = 4096};
	size_t len = 100000;
	uint8_t *down = random_bytes(len), *up = random_bytes(20000);

	/* handshaking, before and in the middle of the exchange */
	for (int steps = 0; steps <= 2; steps += 2) {
		env_init(&e, &o);
		for (int i = 0; i < steps; i++)
			net_step();
		CHECK(e.fc && C()->phase == TERN_PHASE_HANDSHAKING);
		CHECK_EQ_INT(tern_conn_request_close(C()), 1);
		run();
		check_closed_by_control(&e);
		/* a TLS 1.3 client is done before the server has its Finished */
		CHECK(steps > 0 || !e.client_done);
		env_free(&e);
	}

	/* connecting: the backend's connect is cancelled, the client told */
	env_init(&e, &o);
	e.hold_connect = true;
	run();
	CHECK(e.fc && C()->phase == TERN_PHASE_CONNECTING);
	CHECK_EQ_INT(tern_conn_request_close(C()), 1);
	CHECK(e.fc && e.fc->closed[TERN_SIDE_BACKEND]);
	run();
	check_closed_by_control(&e);
	check_client_got_close_notify(&e);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.handshakes_full), 1);
	env_free(&e);

	/* streaming to a slow reader, who then reads: what was encrypted
	 * arrives, a prefix of the backend's bytes, then close_notify */
	if (env_start(&e, &o)) {
		e.client_reading = false;
		backend_sends(down, len, false);
		run();
		CHECK(e.fc && !tern_buf_empty(&C()->b2c.buf)); /* backed up */
		CHECK_EQ_INT(tern_conn_request_close(C()), 1);
		CHECK(e.fc && C()->phase == TERN_PHASE_FINISHING);
		CHECK(e.fc && e.fc->closed[TERN_SIDE_BACKEND] && !e.fc->closed[TERN_SIDE_CLIENT]);
		CHECK_EQ_INT(tern_conn_request_close(C()), 0); /* already closing */
		e.client_reading = true;
		run();
		check_closed_by_control(&e);
		CHECK(e.client_got_len > 0 && e.client_got_len < len);
		CHECK(memcmp(e.client_got, down, e.client_got_len) == 0);
		check_client_got_close_notify(&e);
	}
	env_free(&e);

	/* ... or never reads: closed at the linger deadline, same reason */
	if (env_start(&e, &o)) {
		e.client_reading = false;
		backend_sends(down, len, false);
		run();
		CHECK_EQ_INT(tern_conn_request_close(C()), 1);
		advance(1999);
		run();
		CHECK(e.fc && C()->phase == TERN_PHASE_FINISHING);
		advance(1);
		run();
		check_closed_by_control(&e);
	}
	env_free(&e);

	/* a busy backend: the client's bytes wait in a send that never
	 * completes; the close cancels it, the client gets close_notify */
	if (env_start(&e, &o)) {
		e.backend_stalled = true;
		client_write(up, 20000);
		backend_sends(down, 5000, false);
		run();
		CHECK(e.fc && e.fc->send_posted[TERN_SIDE_BACKEND]);
		CHECK_EQ_UINT(e.client_got_len, 5000);
		CHECK_EQ_INT(tern_conn_request_close(C()), 1);
		run();
		check_closed_by_control(&e);
		CHECK_EQ_UINT(e.backend_got_len, 0);
		CHECK_EQ_UINT(e.client_got_len, 5000);
		CHECK(memcmp(e.client_got, down, 5000) == 0);
		check_client_got_close_notify(&e);
	}
	env_free(&e);

	/* half-closed: the client's side ended, the backend still sends */
	if (env_start(&e, &o)) {
		CHECK_EQ_INT(tern_tls_shutdown(&e.client), 0);
		run();
		CHECK(e.fc && C()->c2b.state == TERN_FLOW_SHUT && C()->b2c.state == TERN_FLOW_OPEN);
		CHECK_EQ_INT(tern_conn_request_close(C()), 1);
		run();
		check_closed_by_control(&e);
		check_client_got_close_notify(&e);
	}
	env_free(&e);

	/* half-closed: the backend's side ended (close_notify and FIN sent),
	 * the client still sends: both sockets close at once */
	if (env_start(&e, &o)) {
		backend_sends(NULL, 0, true);
		run();
		CHECK(e.fc && C()->b2c.state == TERN_FLOW_SHUT && C()->c2b.state == TERN_FLOW_OPEN);
		check_client_got_close_notify(&e);
		CHECK_EQ_INT(tern_conn_request_close(C()), 1);
		run();
		check_closed_by_control(&e);
	}
	env_free(&e);

	/* already closing (the idle timeout, close_notify waiting for a slow
	 * reader): nothing changes, the reason stays the timeout's */
	if (env_start(&e, &o)) {
		e.client_reading = false;
		advance(e.cfg.idle_timeout_ms);
		CHECK(e.fc && C()->phase == TERN_PHASE_FINISHING);
		CHECK_EQ_INT(tern_conn_request_close(C()), 0);
		CHECK(e.fc && C()->phase == TERN_PHASE_FINISHING);
		e.client_reading = true;
		run();
		CHECK(e.fc == NULL);
		CHECK_EQ_STR(e.last_close_reason, "idle_timeout");
	}
	env_free(&e);
	free(down);
	free(up);
}

/* Case 6: tickets_sent counts NewSessionTickets written, in TLS 1.2 too. */
static void test_tls12_ticket_count(void)
{
	struct env e;
	struct env_opts o = {.client_max = TLS1_2_VERSION};
	if (!env_start(&e, &o))
		goto out;
	CHECK_EQ_UINT(e.client.tickets_received, 1);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.tickets_sent), 1);
	CHECK_EQ_INT(tern_conn_request_tickets(C(), 1), -EPROTONOSUPPORT);
	/* Case 12: num-tickets is a TLS 1.3 matter too */
	CHECK_EQ_INT(tern_conn_set_num_tickets(C(), 3), -EPROTONOSUPPORT);
	CHECK_EQ_INT(tern_conn_verify_client(C()), -EPROTONOSUPPORT);
	SSL_SESSION *sess = SSL_get1_session(e.client.ssl);
	env_free(&e);

	/* A session-ID client (no ticket extension): no ticket, none counted. */
	o.resume = NULL;
	env_init(&e, &o);
	SSL_set_options(e.client.ssl, SSL_OP_NO_TICKET);
	run();
	CHECK_EQ_UINT(e.client.tickets_received, 0);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.tickets_sent), 0);
	env_free(&e);
	SSL_SESSION_free(sess);
out:
	return;
}

/* Case 7: due tickets go out at the flush deadline even while the
 * backend's data waits for a slow reader in a large buffer. */
static void test_flush_with_backed_up_stream(void)
{
	struct env e;
	struct env_opts o = {.buffer_size = 65536, .flush_delay_ms = 100};
	if (!env_start(&e, &o))
		goto out;
	size_t len = 300000;
	uint8_t *down = random_bytes(len);
	backend_sends(down, len, false);
	e.client_reading = false;
	run();
	CHECK(!tern_buf_empty(&C()->b2c.buf)); /* data waiting for room */
	CHECK_EQ_INT(tern_conn_request_tickets(C(), 1), 0);
	advance(99);
	CHECK_EQ_UINT(C()->tls.tickets_sent, 2);
	advance(1);
	CHECK_EQ_UINT(C()->tls.tickets_sent, 3);
	CHECK_EQ_UINT(C()->tickets.pending, 0);
	e.client_reading = true;
	run();
	CHECK(e.client_got_len == len && memcmp(e.client_got, down, len) == 0);
	CHECK_EQ_UINT(e.client.tickets_received, 3);
	free(down);
out:
	env_free(&e);
}

/* Case 12: after a resumed handshake, a post-handshake authentication
 * issues num_tickets tickets (OpenSSL alone would issue at most one). */
static void test_pha_after_resumption(void)
{
	struct env e;
	struct env_opts o = {.pha = true};
	o.sctx = server_ctx(2);
	if (!env_start(&e, &o))
		return;
	/* A copy: freeing the client's connection unfinished marks its own
	 * session not resumable. */
	SSL_SESSION *sess = SSL_SESSION_dup(SSL_get0_session(e.client.ssl));
	CHECK(SSL_SESSION_is_resumable(sess));
	env_free(&e);
	o.resume = sess;
	if (env_start(&e, &o)) {
		CHECK(SSL_session_reused(e.client.ssl));
		CHECK_EQ_UINT(e.client.tickets_received, 1);
		CHECK_EQ_INT(tern_conn_set_num_tickets(C(), 3), 0);
		CHECK_EQ_INT(tern_conn_verify_client(C()), 0);
		run();
		CHECK_EQ_UINT(e.client.tickets_received, 1 + 3);
	}
	env_free(&e);
	SSL_SESSION_free(sess);
	SSL_CTX_free(o.sctx);
}

/* Case 11: tickets that fell due are written in batches of about the
 * budget, whole connections at a time and in the order they fell due;
 * the rest waits for the next batch, so the worker's loop comes back to
 * other connections in between. */
static void test_due_tickets_in_batches(void)
{
	struct env e;
	struct env_opts o = {.flush_delay_ms = 0};
	if (!env_start(&e, &o) || !env_park_and_accept(&e, &o) || !env_park_and_accept(&e, &o))
		goto out;
	struct tern_conn *conns[3] = {&e.parked[0].fc->conn, &e.parked[1].fc->conn, C()};
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(tern_conn_request_tickets(conns[i], 16), 0);
	CHECK_EQ_UINT(tern_conn_host_write_due_tickets(&e.host, 16), 1);
	CHECK_EQ_UINT(conns[0]->tls.tickets_sent, 2 + 16);
	CHECK_EQ_UINT(conns[1]->tls.tickets_sent, 2);
	CHECK_EQ_UINT(conns[2]->tls.tickets_sent, 2);
	CHECK_EQ_UINT(tern_conn_host_write_due_tickets(&e.host, 20), 2); /* at least whole ones */
	CHECK_EQ_UINT(conns[1]->tls.tickets_sent, 2 + 16);
	CHECK_EQ_UINT(conns[2]->tls.tickets_sent, 2 + 16);
	CHECK(tern_list_empty(&e.host.tickets_due));
	CHECK_EQ_UINT(tern_conn_host_write_due_tickets(&e.host, 32), 0);
	run();
	CHECK_EQ_UINT(e.client.tickets_received, 2 + 16);
out:
	env_free(&e);
}

/* OpenSSL takes every byte cin holds whenever it reads, so bytes left in
 * cin have not been offered to it yet: they wait for room in c2b, and no
 * read is queued for more until they have gone in. Before, a c2b with
 * room at its head but none at its tail (a partial send to the backend
 * still in flight, so no compaction) made tern take those bytes for a
 * partial record and queue a read into cin's tail, in memory of the
 * connection's own; once the client fell silent that read stayed queued
 * and pinned the memory for as long as the connection lived
 * (test_memory.py's idle check failed now and then). */
static void test_record_waiting_for_c2b(void)
{
	struct env e;
	struct env_opts o = {.buffer_size = 4096};
	if (!env_start(&e, &o))
		goto out;
	uint8_t a[4096], b[100];
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	e.send_quota = 1000;
	e.backend_stalled = true;
	client_write(a, sizeof(a));
	run(); /* c2b full, its send in flight */
	CHECK(e.fc && e.fc->send_posted[TERN_SIDE_BACKEND] && tern_buf_len(&C()->c2b.buf) == 4096);
	e.backend_stalled = false;
	net_step(); /* 1000 bytes taken; the rest is sent again from offset 1000 */
	e.backend_stalled = true;
	CHECK_EQ_UINT(e.backend_got_len, 1000);
	client_write(b, sizeof(b));
	net_step(); /* b arrives: no room at c2b's tail, and it cannot move */
	CHECK(e.fc && !tern_buf_empty(&C()->cin));
	CHECK(e.fc && !e.fc->recv_posted[TERN_SIDE_CLIENT]);
	e.backend_stalled = false;
	run();
	CHECK_EQ_UINT(e.backend_got_len, sizeof(a) + sizeof(b));
	CHECK(e.backend_got_len == sizeof(a) + sizeof(b) &&
	      memcmp(e.backend_got, a, sizeof(a)) == 0 &&
	      memcmp(e.backend_got + sizeof(a), b, sizeof(b)) == 0);
	CHECK(e.fc != NULL);
	if (e.fc) {
		/* idle: a read is queued for the client, holding no memory */
		CHECK(e.fc->recv_posted[TERN_SIDE_CLIENT] && e.fc->lend_on_complete[TERN_SIDE_CLIENT]);
		CHECK_EQ_UINT(C()->cin.cap, 0);
	}
out:
	env_free(&e);
}

int main(void)
{
	ca_key = fixture_key();
	ca_cert = fixture_self_signed(ca_key, "tern test CA");
	client_key = ca_key;
	client_cert = ca_cert; /* self-signed and trusted: enough to verify */

	test_split_records_and_half_closes(true, 1);
	test_split_records_and_half_closes(false, 1);
	test_split_records_and_half_closes(true, 777);
	test_split_records_and_half_closes(false, 5000);
	test_enobufs_and_errors();
	test_errors_at_every_step();
	test_probes();
	test_write_from_read_with_output_backed_up(true);
	test_write_from_read_with_output_backed_up(false);
	test_tickets_during_partial_pha_answer();
	test_handshake_tickets_with_data();
	test_many_tickets_small_buffer();
	test_num_tickets_then_tickets();
	test_control_in_every_phase();
	test_close_in_every_phase();
	test_tls12_ticket_count();
	test_flush_with_backed_up_stream();
	test_pha_after_resumption();
	test_due_tickets_in_batches();
	test_record_waiting_for_c2b();

	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	return check_summary();
}
