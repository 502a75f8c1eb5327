/* A worker through its queue, on a real ring (or, given `epoll`, on an
 * epoll instance): one worker started by the server on a loopback port,
 * requests pushed and answered the way the control thread does it
 * (tern_reply), with a raw TCP client still in its handshake and a real
 * TLS client streaming through to a backend socket the test holds. Checks
 * what each request answers in each state, that an abandoned request is
 * never carried out, that `tickets all` skips what cannot take tickets,
 * and that the worker drains and stops. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "check.h"
#include "server_fixture.h"
#include "tls_fixture.h"
#include "tern/clock.h"
#include "tern/config.h"
#include "tern/conn_info.h"
#include "tern/parse.h"
#include "tern/reply.h"
#include "tern/request.h"
#include "tern/server.h"
#include "tern/worker.h"

static struct tern_config cfg;
static struct tern_server srv;

/* What the control thread does for one worker: expect, push, finish. The
 * caller checks the part and unrefs. */
static struct tern_reply *ask(enum tern_request_kind kind, uint64_t conn_id, uint32_t count,
			      uint64_t arg)
{
	struct tern_reply *r = tern_reply_new(1);
	struct tern_request req = {.kind = kind, .count = count, .conn_id = conn_id, .arg = arg,
				   .ptr = r};
	tern_reply_expect(r, 0);
	if (tern_worker_push_wait(srv.workers[0], &req, 1000) < 0)
		tern_reply_withdraw(r, 0);
	CHECK_EQ_UINT(tern_reply_finish(r, 5000), 0);
	return r;
}

/* A request's part: status and value, the reply dropped. */
static int ask_status(enum tern_request_kind kind, uint64_t conn_id, uint32_t count,
		      uint64_t *out_value, char *out_error, size_t error_len)
{
	struct tern_reply *r = ask(kind, conn_id, count, 0);
	int status = r->parts[0].status;
	CHECK_EQ_UINT(atomic_load(&r->parts[0].state), TERN_REPLY_DONE);
	if (out_value)
		*out_value = r->parts[0].value;
	if (out_error)
		snprintf(out_error, error_len, "%s", r->parts[0].error);
	tern_reply_unref(r);
	return status;
}

/* `conns`: the number listed, and the tickets_requested of connection id. */
static uint64_t list_conns(uint64_t id, uint64_t *out_requested)
{
	struct tern_reply *r = ask(TERN_REQ_KIND_LIST_CONNS, 0, 0, 100);
	struct tern_reply_part *part = &r->parts[0];
	uint64_t listed = part->value;

	for (uint64_t k = 0; out_requested && k < listed; k++) {
		if (part->conns[k].id == id)
			*out_requested = part->conns[k].tickets_requested;
	}
	tern_reply_unref(r);
	return listed;
}

static int listen_loopback(uint16_t *out_port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		return -1;
	*out_port = ntohs(sin.sin_port);
	return fd;
}

static int connect_loopback(uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {.tv_sec = 5};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return -1;
	/* Every read is bounded: a test that waits fails, never hangs. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static unsigned tickets_seen;

static void count_tickets(int write_p, int version, int content_type, const void *buf,
			  size_t len, SSL *ssl, void *arg)
{
	(void)version, (void)ssl, (void)arg;
	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
	    ((const unsigned char *)buf)[0] == SSL3_MT_NEWSESSION_TICKET)
		tickets_seen++;
}

/* Reads from the TLS client until `tickets` NewSessionTickets came, or a
 * bound passed; app data read meanwhile goes to out. */
static size_t read_until_tickets(SSL *ssl, unsigned tickets, char *out, size_t out_len)
{
	size_t got = 0;
	uint64_t give_up = tern_clock_ms() + 5000;
	struct timeval tv = {.tv_usec = 50000};
	setsockopt(SSL_get_fd(ssl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (tickets_seen < tickets && tern_clock_ms() < give_up) {
		int n = SSL_read(ssl, out + got, (int)(out_len - got));
		if (n > 0)
			got += (size_t)n;
		ERR_clear_error();
	}
	return got;
}

/* SSL_connect on a blocking socket, again when a signal interrupted its
 * read (EINTR: ThreadSanitizer's own signal handling causes it now and
 * then), at most 100 times. */
static int connect_tls(SSL *ssl)
{
	int rc = SSL_connect(ssl);

	for (int i = 0; i < 100 && rc != 1; i++) {
		int why = SSL_get_error(ssl, rc);
		if ((why != SSL_ERROR_WANT_READ && why != SSL_ERROR_WANT_WRITE) || errno != EINTR)
			break;
		ERR_clear_error();
		rc = SSL_connect(ssl);
	}
	return rc;
}

static void test_requests_by_state(uint16_t port, int backend_listen)
{
	char err[160];
	uint64_t value = 0, requested = 0;

	CHECK_EQ_UINT(list_conns(0, NULL), 0);
	CHECK_EQ_INT(ask_status(TERN_REQ_KIND_TICKETS, 999, 1, NULL, err, sizeof(err)), -ENOENT);
	CHECK_EQ_STR(err, "no connection 999");

	/* A client that connected and said nothing: mid-handshake. The
	 * worker's first connection is number 1. */
	int raw = connect_loopback(port);
	CHECK(raw >= 0);
	for (int i = 0; i < 500 && list_conns(0, NULL) < 1; i++)
		usleep(2000);
	CHECK_EQ_UINT(list_conns(0, NULL), 1);
	CHECK_EQ_INT(ask_status(TERN_REQ_KIND_TICKETS, 1, 1, NULL, err, sizeof(err)), -EINPROGRESS);
	CHECK_EQ_STR(err, "connection 1 is still in its handshake");
	CHECK_EQ_INT(ask_status(TERN_REQ_KIND_NUM_TICKETS, 1, 3, NULL, NULL, 0), -EINPROGRESS);
	CHECK_EQ_INT(ask_status(TERN_REQ_KIND_VERIFY_CLIENT, 1, 0, NULL, NULL, 0), -EINPROGRESS);

	/* A TLS 1.3 client, streaming to the backend: connection 2. */
	SSL_CTX *cctx = fixture_client_ctx(TLS1_3_VERSION);
	SSL_CTX_set_msg_callback(cctx, count_tickets);
	SSL *ssl = SSL_new(cctx);
	int fd = connect_loopback(port);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	CHECK_EQ_INT(connect_tls(ssl), 1);
	char buf[256];
	read_until_tickets(ssl, 2, buf, sizeof(buf)); /* the automatic ones */
	CHECK_EQ_UINT(tickets_seen, 2);
	int backend = accept(backend_listen, NULL, NULL);
	CHECK(backend >= 0);
	CHECK_EQ_INT(SSL_write(ssl, "hi", 2), 2);
	CHECK_EQ_INT(recv(backend, buf, sizeof(buf), 0), 2);

	CHECK_EQ_INT(ask_status(TERN_REQ_KIND_TICKETS, 2, 3, &value, NULL, 0), 0);
	CHECK_EQ_UINT(value, 1);
	CHECK_EQ_UINT(list_conns(2, &requested), 2);
	CHECK_EQ_UINT(requested, 3);
	read_until_tickets(ssl, 5, buf, sizeof(buf));
	CHECK_EQ_UINT(tickets_seen, 5);

	/* Abandoned before the worker took it (the control thread's wait ran
	 * out): never carried out, even though it is still in the queue. */
	struct tern_reply *r = tern_reply_new(1);
	struct tern_request req = {.kind = TERN_REQ_KIND_TICKETS, .count = 4, .conn_id = 2, .ptr = r};
	tern_reply_expect(r, 0);
	CHECK_EQ_UINT(tern_reply_finish(r, 0), 1);
	CHECK_EQ_UINT(atomic_load(&r->parts[0].state), TERN_REPLY_ABANDONED);
	CHECK_EQ_INT(tern_worker_push_wait(srv.workers[0], &req, 1000), 0);
	tern_reply_unref(r);
	CHECK_EQ_UINT(list_conns(2, &requested), 2); /* handled after it, in order */
	CHECK_EQ_UINT(requested, 3);

	/* tickets all: the TLS connection, not the one mid-handshake. */
	CHECK_EQ_INT(ask_status(TERN_REQ_KIND_TICKETS, TERN_CONN_ID_ALL, 1, &value, NULL, 0), 0);
	CHECK_EQ_UINT(value, 1);
	read_until_tickets(ssl, 6, buf, sizeof(buf));
	CHECK_EQ_UINT(tickets_seen, 6);

	/* --ticket-refresh's request: nobody waits for it; the next request
	 * sees what it did. */
	struct tern_request refresh = {.kind = TERN_REQ_KIND_TICKET_REFRESH, .arg = 0};
	CHECK_EQ_INT(tern_worker_push_wait(srv.workers[0], &refresh, 1000), 0);
	CHECK_EQ_UINT(list_conns(2, &requested), 2);
	CHECK_EQ_UINT(requested, 3 + 1 + 1);
	read_until_tickets(ssl, 7, buf, sizeof(buf));
	CHECK_EQ_UINT(tickets_seen, 7);

	/* The backend's answer still reaches the client after all that. */
	CHECK_EQ_INT(send(backend, "yo", 2, 0), 2);
	size_t got = 0;
	for (uint64_t give_up = tern_clock_ms() + 5000; got < 2 && tern_clock_ms() < give_up;) {
		int n = SSL_read(ssl, buf + got, 2);
		if (n > 0)
			got += (size_t)n;
	}
	CHECK(got == 2 && memcmp(buf, "yo", 2) == 0);

	/* The backend closes: close_notify queued; from then on "closing". */
	close(backend);
	int n = -1;
	for (uint64_t give_up = tern_clock_ms() + 5000; n < 0 && tern_clock_ms() < give_up;) {
		n = SSL_read(ssl, buf, sizeof(buf));
		ERR_clear_error();
	}
	CHECK_EQ_INT(n, 0); /* close_notify */
	CHECK_EQ_INT(ask_status(TERN_REQ_KIND_TICKETS, 2, 1, NULL, err, sizeof(err)), -ENOTCONN);
	CHECK_EQ_STR(err, "connection 2 is closing");

	SSL_free(ssl);
	close(fd);
	close(raw);
	SSL_CTX_free(cctx);
	for (int i = 0; i < 500 && list_conns(0, NULL) > 0; i++)
		usleep(2000);
	CHECK_EQ_UINT(list_conns(0, NULL), 0);
}

/* `worker_test epoll` runs the same on the epoll engine (--io epoll). */
int main(int argc, char **argv)
{
	char err[512], text[64];
	uint16_t backend_port = 0, port = 0;

	int backend_listen = listen_loopback(&backend_port);
	CHECK(backend_listen >= 0);
	snprintf(text, sizeof(text), "127.0.0.1:%u", backend_port);
	fixture_one_worker_config(&cfg, text);
	if (argc > 1 && strcmp(argv[1], "epoll") == 0)
		cfg.io = TERN_IO_EPOLL;
	cfg.ticket_flush_delay_ms = 0;

	if (!CHECK_EQ_INT(tern_server_prepare(&srv, &cfg, true, err, sizeof(err)), 0)) {
		fprintf(stderr, "%s\n", err);
		return check_summary();
	}
	/* The port the kernel picked, asked before the listener is the
	 * worker thread's. */
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	CHECK_EQ_INT(tern_worker_listen_addr(srv.workers[0], 0, (struct sockaddr *)&sin, &len), 0);
	CHECK_EQ_INT(tern_worker_listen_addr(srv.workers[0], 1, (struct sockaddr *)&sin, &len),
		     -ENOENT);
	port = ntohs(sin.sin_port);
	if (!CHECK_EQ_INT(tern_server_start(&srv, err, sizeof(err)), 0)) {
		fprintf(stderr, "%s\n", err);
		tern_server_join_and_free(&srv);
		return check_summary();
	}

	test_requests_by_state(port, backend_listen);

	fixture_server_stop(&srv);
	close(backend_listen);
	return check_summary();
}
