/* The in-memory TLS state machine: a custom BIO over tern_bufs. */
#include <pthread.h>
#include <stdio.h>
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

/* Appends ciphertext to the connection's output buffer, whole: never
 * "retry later", so OpenSSL never keeps part of a record (tls.h). Only a
 * failed allocation fails, and that ends the step and the connection. */
static int buf_bio_write(BIO *bio, const char *src, int len)
{
	struct tern_tls *tls = BIO_get_data(bio);

	BIO_clear_retry_flags(bio);
	if (len <= 0)
		return 0;
	if (tern_buf_append(tls->out, src, (uint32_t)len, tls->out_cap, &tls->out_retired) < 0)
		return -1;
	return len;
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

/* Sees every handshake message OpenSSL writes or reads (and every record
 * header, ignored): counts the NewSessionTickets actually written, in TLS
 * 1.2 and 1.3 alike (the new-session callback, by contrast, is skipped for
 * TLS 1.2 ticket sessions and called for session-ID ones), and spots the
 * client's Finished that ends its answer to a post-handshake
 * CertificateRequest (OpenSSL leaves "init" as soon as the request is
 * written, so its state cannot tell). */
static void watch_messages(int write_p, int version, int content_type, const void *buf,
			   size_t len, SSL *ssl, void *arg)
{
	struct tern_tls *tls = arg;
	(void)version;
	(void)ssl;
	if (content_type != SSL3_RT_HANDSHAKE || len == 0)
		return;
	unsigned char type = ((const unsigned char *)buf)[0];
	if (type == SSL3_MT_NEWSESSION_TICKET) {
		if (write_p)
			tls->tickets_sent++;
		else
			tls->tickets_received++;
	} else if (type == SSL3_MT_FINISHED && !write_p && tls->pha_awaiting) {
		tls->pha_awaiting = false;
		tls->pha_answered = true;
	}
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
	SSL_set_msg_callback(ssl, watch_messages);
	SSL_set_msg_callback_arg(ssl, tls);
	tls->num_tickets = (unsigned)SSL_get_num_tickets(ssl);
	if (client)
		SSL_set_connect_state(ssl);
	else
		SSL_set_accept_state(ssl);
	tls->ssl = ssl;
	return 0;
}

void tern_tls_defer_handshake_tickets(struct tern_tls *tls)
{
	tls->num_tickets = (unsigned)SSL_get_num_tickets(tls->ssl);
	(void)SSL_set_num_tickets(tls->ssl, 0);
	tls->tickets_deferred = true;
}

void tern_tls_free(struct tern_tls *tls)
{
	SSL_free(tls->ssl);
	tls->ssl = NULL;
	tern_tls_out_sent(tls);
}

void tern_tls_out_sent(struct tern_tls *tls)
{
	free(tls->out_retired);
	tls->out_retired = NULL;
}

/* Records OpenSSL's reason for a failure and empties the thread's error
 * queue, which every connection on this worker shares. */
static int tls_fail(struct tern_tls *tls, const char *what, int ssl_err)
{
	unsigned long e = ERR_peek_last_error();
	if (e) {
		/* what (at most 20 bytes), ": ", and the reason: within error[] */
		char reason[96];
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
	if (r == 1) {
		/* The automatic tickets are written. From now on tern counts
		 * tickets itself: OpenSSL would top up every later batch to
		 * num_tickets, and a post-handshake authentication after a
		 * resumption to one ticket at most. */
		if (SSL_is_server(tls->ssl) && !tls->tickets_deferred) {
			tls->num_tickets = (unsigned)SSL_get_num_tickets(tls->ssl);
			(void)SSL_set_num_tickets(tls->ssl, 0);
		}
		return TERN_TLS_DONE;
	}
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

bool tern_tls_read_ready(const struct tern_tls *tls)
{
	return !tern_buf_empty(tls->in) || tls->in_eof || SSL_has_pending(tls->ssl) == 1;
}

int tern_tls_write(struct tern_tls *tls, const void *src, size_t len)
{
	size_t n = 0;
	if (len > INT32_MAX)
		len = INT32_MAX;
	if (SSL_write_ex(tls->ssl, src, len, &n) == 1)
		return (int)n;
	int err = SSL_get_error(tls->ssl, 0);
	if (err == SSL_ERROR_WANT_READ) {
		/* A handshake exchange (the client's answer to a
		 * CertificateRequest) must finish first; nothing was written. */
		ERR_clear_error();
		return 0;
	}
	return tls_fail(tls, "write", err);
}

bool tern_tls_tickets_allowed(const struct tern_tls *tls)
{
	return SSL_version(tls->ssl) == TLS1_3_VERSION && SSL_is_init_finished(tls->ssl) &&
	       !tls->pha_awaiting;
}

unsigned tern_tls_new_tickets(struct tern_tls *tls, unsigned n)
{
	unsigned taken = 0;
	while (taken < n && SSL_new_session_ticket(tls->ssl) == 1)
		taken++;
	ERR_clear_error();
	return taken;
}

int tern_tls_flush(struct tern_tls *tls)
{
	int r = SSL_do_handshake(tls->ssl);
	if (r == 1)
		return TERN_TLS_DONE;
	int err = SSL_get_error(tls->ssl, r);
	if (err == SSL_ERROR_WANT_READ) {
		ERR_clear_error();
		return 0;
	}
	return tls_fail(tls, "post-handshake flush", err);
}

void tern_tls_release_buffers(struct tern_tls *tls)
{
	/* Refused (nothing freed) while a record is partly read or written:
	 * then the buffers are in use and go with the next release. */
	(void)SSL_free_buffers(tls->ssl);
}

bool tern_tls_flush_needed(const struct tern_tls *tls)
{
	return SSL_in_init(tls->ssl) != 0;
}

bool tern_tls_is_tls13(const struct tern_tls *tls)
{
	return SSL_version(tls->ssl) == TLS1_3_VERSION;
}

int tern_tls_request_client_cert(struct tern_tls *tls)
{
	if (SSL_version(tls->ssl) != TLS1_3_VERSION)
		return -EPROTONOSUPPORT;
	/* Without a CA list the client has nothing to choose a certificate
	 * by and tern nothing to verify it against. */
	STACK_OF(X509_NAME) *cas = SSL_get_client_CA_list(tls->ssl);
	if (!cas || sk_X509_NAME_num(cas) == 0)
		return -ENOKEY;
	int mode = SSL_get_verify_mode(tls->ssl);
	/* SSL_VERIFY_PEER is what makes OpenSSL ask and verify; a
	 * certificate, if sent, must verify (--verify-client optional), and
	 * FAIL_IF_NO_PEER_CERT stays if --verify-client require set it. */
	SSL_set_verify(tls->ssl, mode | SSL_VERIFY_PEER, NULL);
	if (SSL_verify_client_post_handshake(tls->ssl) == 1) {
		tls->pha_answered = false;
		tls->pha_awaiting = true;
		return 0;
	}
	int reason = ERR_GET_REASON(ERR_peek_last_error());
	ERR_clear_error();
	SSL_set_verify(tls->ssl, mode, NULL);
	switch (reason) {
	case SSL_R_EXTENSION_NOT_RECEIVED:
		return -EOPNOTSUPP; /* the client did not offer post_handshake_auth */
	case SSL_R_REQUEST_PENDING:
	case SSL_R_REQUEST_SENT:
		return -EALREADY;
	case SSL_R_STILL_IN_INIT:
		return -EINPROGRESS;
	default:
		return -EPROTO;
	}
}

void tern_tls_client_cert_answered(struct tern_tls *tls)
{
	tls->pha_answered = false;
}

/* Appends len bytes to out (of out_len), as many as fit; returns the new
 * position. */
static size_t put_bytes(char *out, size_t out_len, size_t at, const void *p, size_t len)
{
	size_t n = at < out_len ? out_len - at : 0;
	if (n > len)
		n = len;
	memcpy(out + at, p, n);
	return at + n;
}

int tern_tls_client_subject(const struct tern_tls *tls, char *out, size_t out_len)
{
	X509 *cert = SSL_get0_peer_certificate(tls->ssl);

	if (!cert)
		return -ENOENT;
	return tern_tls_name_bytes(X509_get_subject_name(cert), out, out_len);
}

void tern_tls_refuse(struct ssl_st *ssl, const char *reason)
{
	struct tern_tls *tls = SSL_get_app_data(ssl);

	if (tls)
		tls->refused = reason;
}

int tern_tls_name_bytes(const struct X509_name_st *name, char *out, size_t out_len)
{
	size_t at = 0;

	/* X509_NAME_oneline's "/SN=value" form, with each value's bytes as
	 * they are (UTF-8 where the certificate's string type says how):
	 * X509_NAME_oneline writes its own "\xHH" for some bytes and not for
	 * '"', '\' or spaces, and cuts silently; escape.h does it all. */
	for (int i = 0; i < X509_NAME_entry_count(name) && at < out_len; i++) {
		const X509_NAME_ENTRY *entry = X509_NAME_get_entry(name, i);
		const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(entry);
		const ASN1_STRING *data = X509_NAME_ENTRY_get_data(entry);
		int nid = OBJ_obj2nid(obj);
		const char *sn = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
		char oid[80];
		if (!sn) {
			if (OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0)
				snprintf(oid, sizeof(oid), "?");
			sn = oid;
		}
		at = put_bytes(out, out_len, at, "/", 1);
		at = put_bytes(out, out_len, at, sn, strlen(sn));
		at = put_bytes(out, out_len, at, "=", 1);
		unsigned char *utf8 = NULL;
		int len = ASN1_STRING_to_UTF8(&utf8, data);
		if (len >= 0)
			at = put_bytes(out, out_len, at, utf8, (size_t)len);
		else /* a string type with no UTF-8 form: its bytes */
			at = put_bytes(out, out_len, at, ASN1_STRING_get0_data(data),
				       (size_t)ASN1_STRING_length(data));
		OPENSSL_free(utf8);
	}
	ERR_clear_error();
	return (int)at;
}

const char *tern_tls_verify_status(const struct tern_tls *tls)
{
	long result = SSL_get_verify_result(tls->ssl);
	return result == X509_V_OK ? "ok" : X509_verify_cert_error_string(result);
}

unsigned tern_tls_num_tickets(const struct tern_tls *tls)
{
	return tls->num_tickets;
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

void tern_tls_alpn(const struct tern_tls *tls, const uint8_t **out, size_t *out_len)
{
	const unsigned char *data = NULL;
	unsigned int len = 0;

	SSL_get0_alpn_selected(tls->ssl, &data, &len);
	*out = len > 0 ? data : NULL;
	*out_len = len > 0 ? len : 0;
}

const char *tern_tls_servername(const struct tern_tls *tls)
{
	return SSL_get_servername(tls->ssl, TLSEXT_NAMETYPE_host_name);
}

void tern_tls_client_cert_presented(const struct tern_tls *tls, bool *out_conn, bool *out_sess)
{
	/* The peer certificate lives in the session: after a resumption it is
	 * the one of the full handshake, not sent again on this connection. */
	bool sess = SSL_get0_peer_certificate(tls->ssl) != NULL;
	*out_sess = sess;
	*out_conn = sess && !SSL_session_reused(tls->ssl);
}

uint32_t tern_tls_verify_result(const struct tern_tls *tls)
{
	return (uint32_t)SSL_get_verify_result(tls->ssl);
}

int tern_tls_client_cn(const struct tern_tls *tls, char *out, size_t out_len)
{
	X509 *cert = SSL_get0_peer_certificate(tls->ssl);
	unsigned char *utf8 = NULL;
	int ret = -ENOENT;

	if (!cert)
		return -ENOENT;
	const X509_NAME *name = X509_get_subject_name(cert);
	int at = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (at < 0)
		goto out;
	const ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at));
	int len = ASN1_STRING_to_UTF8(&utf8, data);
	if (len < 0 || memchr(utf8, '\0', (size_t)len) != NULL) {
		ret = -EPROTO;
		goto out;
	}
	if ((size_t)len >= out_len) {
		ret = -ENOSPC;
		goto out;
	}
	memcpy(out, utf8, (size_t)len);
	out[len] = '\0';
	ret = len;
out:
	OPENSSL_free(utf8);
	ERR_clear_error();
	return ret;
}

int tern_tls_client_cert_der(const struct tern_tls *tls, uint8_t *out, size_t out_len)
{
	X509 *cert = SSL_get0_peer_certificate(tls->ssl);

	if (!cert)
		return -ENOENT;
	int len = i2d_X509(cert, NULL);
	if (len <= 0) {
		ERR_clear_error();
		return -EPROTO;
	}
	if (out != NULL && (size_t)len <= out_len) {
		unsigned char *p = out;
		if (i2d_X509(cert, &p) != len) {
			ERR_clear_error();
			return -EPROTO;
		}
	}
	return len;
}
