/* The in-memory TLS state machine: a custom BIO over tern_bufs. */
#include <pthread.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tern/tls.h"

static BIO_METHOD *buf_bio_method;
static pthread_once_t buf_bio_once = PTHREAD_ONCE_INIT;

/* Reads ciphertext from the connection's input buffer. An empty buffer is
 * "retry later" unless the transport is at EOF, which OpenSSL sees as 0. */
static int buf_bio_read(BIO *bio, char *dst, int len)
{
	struct tern_tls *tls = BIO_get_data(bio);

	BIO_clear_retry_flags(bio);
	if (len <= 0)
		return 0;
	if (tern_buf_empty(tls->in)) {
		if (tls->in_eof)
			return 0;
		BIO_set_retry_read(bio);
		return -1;
	}
	return (int)tern_buf_read(tls->in, dst, (uint32_t)len);
}

/* Appends ciphertext to the connection's output buffer, allocating it on
 * first use. A full buffer is "retry later": OpenSSL keeps the unwritten
 * part of the record and resends it on the next call. */
static int buf_bio_write(BIO *bio, const char *src, int len)
{
	struct tern_tls *tls = BIO_get_data(bio);

	BIO_clear_retry_flags(bio);
	if (len <= 0)
		return 0;
	if (tern_buf_reserve(tls->out, tls->out_cap) < 0)
		return -1; /* not retryable: the step fails, the connection ends */
	uint32_t n = tern_buf_write(tls->out, src, (uint32_t)len);
	if (n == 0) {
		BIO_set_retry_write(bio);
		return -1;
	}
	return (int)n;
}

static long buf_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	struct tern_tls *tls = BIO_get_data(bio);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* the caller sends `out` itself */
	case BIO_CTRL_EOF:
		return tls->in_eof && tern_buf_empty(tls->in);
	case BIO_CTRL_PENDING:
		return (long)tern_buf_len(tls->in);
	case BIO_CTRL_WPENDING:
		return 0;
	default:
		return 0;
	}
}

static int buf_bio_create(BIO *bio)
{
	BIO_set_init(bio, 1);
	return 1;
}

static void buf_bio_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tern_buf");
	if (!m)
		return;
	BIO_meth_set_read(m, buf_bio_read);
	BIO_meth_set_write(m, buf_bio_write);
	BIO_meth_set_ctrl(m, buf_bio_ctrl);
	BIO_meth_set_create(m, buf_bio_create);
	buf_bio_method = m;
}

int tern_tls_init(struct tern_tls *tls, SSL_CTX *ctx, bool client, struct tern_buf *in,
		  struct tern_buf *out, uint32_t out_cap)
{
	pthread_once(&buf_bio_once, buf_bio_method_init);
	memset(tls, 0, sizeof(*tls));
	tls->in = in;
	tls->out = out;
	tls->out_cap = out_cap;
	if (!buf_bio_method)
		return -ENOMEM;

	SSL *ssl = SSL_new(ctx);
	BIO *bio = BIO_new(buf_bio_method);
	if (!ssl || !bio) {
		SSL_free(ssl);
		BIO_free(bio);
		ERR_clear_error();
		return -ENOMEM;
	}
	BIO_set_data(bio, tls);
	SSL_set_bio(ssl, bio, bio); /* one BIO, both directions: ssl owns it */
	SSL_set_app_data(ssl, tls);
	if (client)
		SSL_set_connect_state(ssl);
	else
		SSL_set_accept_state(ssl);
	tls->ssl = ssl;
	return 0;
}

void tern_tls_free(struct tern_tls *tls)
{
	SSL_free(tls->ssl);
	tls->ssl = NULL;
}

/* Records OpenSSL's reason for a failure and empties the thread's error
 * queue, which every connection on this worker shares. */
static int tls_fail(struct tern_tls *tls, const char *what, int ssl_err)
{
	unsigned long e = ERR_peek_last_error();
	if (e) {
		char reason[120];
		ERR_error_string_n(e, reason, sizeof(reason));
		snprintf(tls->error, sizeof(tls->error), "%s: %s", what, reason);
	} else {
		snprintf(tls->error, sizeof(tls->error), "%s: %s", what,
			 ssl_err == SSL_ERROR_SYSCALL ? "transport ended" : "failed");
	}
	ERR_clear_error();
	return -EPROTO;
}

int tern_tls_handshake(struct tern_tls *tls)
{
	int r = SSL_do_handshake(tls->ssl);
	if (r == 1)
		return TERN_TLS_DONE;
	int err = SSL_get_error(tls->ssl, r);
	switch (err) {
	case SSL_ERROR_WANT_READ:
		if (tls->in_eof && tern_buf_empty(tls->in)) {
			snprintf(tls->error, sizeof(tls->error), "handshake: peer closed");
			ERR_clear_error();
			return -ECONNRESET;
		}
		return 0;
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
	case SSL_ERROR_SYSCALL:
		if (tls->in_eof && tern_buf_empty(tls->in)) {
			snprintf(tls->error, sizeof(tls->error), "handshake: peer closed");
			ERR_clear_error();
			return -ECONNRESET;
		}
		return tls_fail(tls, "handshake", err);
	default:
		return tls_fail(tls, "handshake", err);
	}
}

int tern_tls_read(struct tern_tls *tls, void *dst, size_t len)
{
	size_t n = 0;
	if (len > INT32_MAX)
		len = INT32_MAX;
	if (SSL_read_ex(tls->ssl, dst, len, &n) == 1)
		return (int)n;
	int err = SSL_get_error(tls->ssl, 0);
	switch (err) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return TERN_TLS_CLOSED;
	case SSL_ERROR_SYSCALL:
		if (tls->in_eof) {
			ERR_clear_error();
			return TERN_TLS_CLOSED;
		}
		return tls_fail(tls, "read", err);
	default:
		return tls_fail(tls, "read", err);
	}
}

int tern_tls_write(struct tern_tls *tls, const void *src, size_t len)
{
	size_t n = 0;
	if (len > INT32_MAX)
		len = INT32_MAX;
	if (SSL_write_ex(tls->ssl, src, len, &n) == 1) {
		tls->write_pending = false;
		return (int)n;
	}
	int err = SSL_get_error(tls->ssl, 0);
	if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
		/* With partial writes enabled, OpenSSL returns success once a
		 * record is fully written; a WANT here means part of a record
		 * (or of a ticket) waits inside it for room in `out`. */
		tls->write_pending = true;
		return 0;
	}
	return tls_fail(tls, "write", err);
}

int tern_tls_new_tickets(struct tern_tls *tls, unsigned n)
{
	if (SSL_version(tls->ssl) != TLS1_3_VERSION)
		return -EPROTONOSUPPORT;
	for (unsigned i = 0; i < n; i++)
		if (SSL_new_session_ticket(tls->ssl) != 1)
			return tls_fail(tls, "new session ticket", SSL_ERROR_SSL);
	return 0;
}

int tern_tls_flush(struct tern_tls *tls)
{
	int r = SSL_do_handshake(tls->ssl);
	if (r == 1) {
		tls->write_pending = false;
		return TERN_TLS_DONE;
	}
	int err = SSL_get_error(tls->ssl, r);
	if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
		tls->write_pending = true;
		return 0;
	}
	return tls_fail(tls, "ticket flush", err);
}

bool tern_tls_flush_needed(const struct tern_tls *tls)
{
	return SSL_in_init(tls->ssl) != 0;
}

bool tern_tls_is_tls13(const struct tern_tls *tls)
{
	return SSL_version(tls->ssl) == TLS1_3_VERSION;
}

unsigned tern_tls_num_tickets(const struct tern_tls *tls)
{
	return (unsigned)SSL_get_num_tickets(tls->ssl);
}

int tern_tls_set_num_tickets(struct tern_tls *tls, unsigned n)
{
	return SSL_set_num_tickets(tls->ssl, n) == 1 ? 0 : -EINVAL;
}

/* OpenSSL calls the new-session callback for every ticket a TLS 1.3 server
 * writes (and for every new TLS 1.2 session): that is "sent" for tern.
 * Returning 0 leaves the session's reference with OpenSSL. */
static int count_ticket(SSL *ssl, SSL_SESSION *session)
{
	struct tern_tls *tls = SSL_get_app_data(ssl);
	(void)session;
	if (tls)
		tls->tickets_sent++;
	return 0;
}

void tern_tls_ctx_count_tickets(SSL_CTX *ctx)
{
	SSL_CTX_sess_set_new_cb(ctx, count_ticket);
}

int tern_tls_shutdown(struct tern_tls *tls)
{
	/* 0 means "sent ours, the peer's has not arrived": that is all we ask
	 * for, the read side keeps going on its own. A full `out` leaves the
	 * alert inside OpenSSL, flushed by the next write or read step. */
	int r = SSL_shutdown(tls->ssl);
	if (r >= 0)
		return 0;
	int err = SSL_get_error(tls->ssl, r);
	if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
		ERR_clear_error();
		return 0;
	}
	return tls_fail(tls, "shutdown", err);
}

const char *tern_tls_version(const struct tern_tls *tls)
{
	return SSL_get_version(tls->ssl);
}

const char *tern_tls_cipher(const struct tern_tls *tls)
{
	const char *name = SSL_get_cipher_name(tls->ssl);
	return name ? name : "-";
}

const char *tern_tls_sni(const struct tern_tls *tls)
{
	const char *name = SSL_get_servername(tls->ssl, TLSEXT_NAMETYPE_host_name);
	return name ? name : "-";
}

bool tern_tls_resumed(const struct tern_tls *tls)
{
	return SSL_session_reused(tls->ssl) == 1;
}
