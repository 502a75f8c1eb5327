/* The TLS state machine of one connection, driven entirely in memory.
 *
 * OpenSSL never sees a socket: a custom BIO reads ciphertext from `in` and
 * writes ciphertext into `out`, both tern_bufs owned by the connection. The
 * caller moves bytes between those buffers and the network (or, in unit
 * tests, between two tern_tls objects), then calls the steps below. Every
 * step returns progress / no progress / error:
 *   > 0 (or TERN_TLS_DONE)  progress
 *   0                       no progress: needs more input in `in` or more
 *                           room in `out`; call again after either changes
 *   < 0                     a negative errno; TERN_TLS_CLOSED for an orderly
 *                           end of the peer's data
 * Owned by one thread; the OpenSSL error queue of that thread is left empty
 * after every call. */
#ifndef TERN_TLS_H
#define TERN_TLS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/buf.h"

struct ssl_st;
struct ssl_ctx_st;

/* The peer ended its data: close_notify, or a TCP FIN without one (a
 * truncation is treated as an end, as HAProxy and nginx do). */
#define TERN_TLS_CLOSED (-ESHUTDOWN)
#define TERN_TLS_DONE 1

struct tern_tls {
	struct ssl_st *ssl;
	struct tern_buf *in;  /* ciphertext from the peer */
	struct tern_buf *out; /* ciphertext for the peer */
	uint32_t out_cap;     /* capacity `out` is given when first written */
	bool in_eof;          /* the transport delivered EOF after `in` */
	/* OpenSSL holds part of a record that `out` had no room for: the next
	 * write continues it, so the stream is not at a record boundary. */
	bool write_pending;
	uint32_t tickets_sent; /* session tickets written (new-session callback) */
	bool pha_answered;     /* the client finished answering a CertificateRequest */
	char error[160];       /* why the last step failed, for the log */
};

/* Creates the SSL object from ctx, server side unless `client`, wired to
 * the two buffers. Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result))
int tern_tls_init(struct tern_tls *tls, struct ssl_ctx_st *ctx, bool client,
		  struct tern_buf *in, struct tern_buf *out, uint32_t out_cap);

/* Frees the SSL object; the buffers stay with their owner. */
void tern_tls_free(struct tern_tls *tls);

/* Advances the handshake. TERN_TLS_DONE once complete, 0 for no progress,
 * -EPROTO on a TLS failure (alert, if any, is in `out`), -ECONNRESET when
 * the peer ended the transport mid-handshake. */
__attribute__((warn_unused_result))
int tern_tls_handshake(struct tern_tls *tls);

/* Decrypts up to len bytes into dst. Bytes > 0, 0, TERN_TLS_CLOSED or
 * -EPROTO. */
__attribute__((warn_unused_result))
int tern_tls_read(struct tern_tls *tls, void *dst, size_t len);

/* Encrypts up to len bytes from src into `out`. Returns the number of bytes
 * taken (> 0), 0 when `out` has no room, or -EPROTO. After 0, call again
 * with the same bytes (it may grow; it may have moved). */
__attribute__((warn_unused_result))
int tern_tls_write(struct tern_tls *tls, const void *src, size_t len);

/* Queues close_notify in `out`. Returns 0, or -EPROTO. */
__attribute__((warn_unused_result))
int tern_tls_shutdown(struct tern_tls *tls);

/* Asks OpenSSL for n more TLS 1.3 session tickets
 * (SSL_new_session_ticket). They are written by the next tern_tls_write()
 * ahead of its data, or by tern_tls_flush(). Only at a record boundary
 * (!write_pending) after the handshake. Returns 0, -EPROTONOSUPPORT for a
 * TLS 1.2 connection, -EPROTO on failure. */
__attribute__((warn_unused_result))
int tern_tls_new_tickets(struct tern_tls *tls, unsigned n);

/* Writes handshake messages OpenSSL has pending (requested tickets) into
 * `out` without application data. TERN_TLS_DONE when none is left, 0 when
 * `out` had no room, -EPROTO on failure. */
__attribute__((warn_unused_result))
int tern_tls_flush(struct tern_tls *tls);

/* True while OpenSSL has handshake messages (tickets) to write. */
bool tern_tls_flush_needed(const struct tern_tls *tls);

bool tern_tls_is_tls13(const struct tern_tls *tls);

/* TLS 1.3 post-handshake client authentication: queues a
 * CertificateRequest (SSL_verify_client_post_handshake), written by the
 * next tern_tls_write() or tern_tls_flush(); the client's answer is read
 * by tern_tls_read(), which sets pha_answered once it is complete.
 * Returns 0, -EPROTONOSUPPORT (TLS 1.2), -ENOKEY (no client CA list
 * configured), -EOPNOTSUPP (the client did not offer post_handshake_auth),
 * -EALREADY (a request is in flight), -EINPROGRESS or -EPROTO. */
__attribute__((warn_unused_result))
int tern_tls_request_client_cert(struct tern_tls *tls);

/* After pha_answered turned true: stops watching for the answer. */
void tern_tls_client_cert_answered(struct tern_tls *tls);

/* The peer certificate's subject ("/CN=..."), true if there is one. */
bool tern_tls_client_subject(const struct tern_tls *tls, char *out, size_t out_len);

/* "ok", or why the peer certificate failed verification. */
const char *tern_tls_verify_status(const struct tern_tls *tls);

/* SSL_get_num_tickets / SSL_set_num_tickets on this connection. */
unsigned tern_tls_num_tickets(const struct tern_tls *tls);
__attribute__((warn_unused_result))
int tern_tls_set_num_tickets(struct tern_tls *tls, unsigned n);

/* Makes every connection of ctx count the tickets it writes in its
 * tern_tls.tickets_sent. Called once per SSL_CTX, before use. */
void tern_tls_ctx_count_tickets(struct ssl_ctx_st *ctx);

/* Negotiated facts for logs; valid after the handshake. Never NULL. */
const char *tern_tls_version(const struct tern_tls *tls);
const char *tern_tls_cipher(const struct tern_tls *tls);
const char *tern_tls_sni(const struct tern_tls *tls);
bool tern_tls_resumed(const struct tern_tls *tls);

/* What --proxy-protocol v2 tells the backend about the client's TLS.
 * Valid after the handshake; what they point to is borrowed from the SSL
 * object and lives as long as tls. Worker thread only. */

/* The ALPN protocol selected (SSL_get0_alpn_selected): *out NULL and
 * *out_len 0 when none was. */
void tern_tls_alpn(const struct tern_tls *tls, const uint8_t **out, size_t *out_len);

/* The SNI host name the client sent, or NULL (tern_tls_sni() says "-"). */
const char *tern_tls_servername(const struct tern_tls *tls);

/* Whether the client presented a certificate in this connection's
 * handshake (*out_conn), and whether the TLS session it belongs to has one
 * (*out_sess: a resumption keeps the certificate of its full handshake). */
void tern_tls_client_cert_presented(const struct tern_tls *tls, bool *out_conn, bool *out_sess);

/* SSL_get_verify_result: 0 (X509_V_OK) or an X509_V_ERR_* code. 0 too
 * when no certificate was presented: check that first. */
uint32_t tern_tls_verify_result(const struct tern_tls *tls);

/* The first commonName of the client certificate's subject, in UTF-8 and
 * NUL-terminated in out. Returns its length; -ENOENT without a
 * certificate or a CN; -ENOSPC when it needs more than out_len (nothing is
 * written: a cut name could name someone else); -EPROTO when it cannot be
 * converted or holds a NUL byte. */
__attribute__((warn_unused_result))
int tern_tls_client_cn(const struct tern_tls *tls, char *out, size_t out_len);

/* The client certificate in DER. Returns its length and writes it to out
 * only when out_len is enough, so a call with out NULL sizes the buffer;
 * -ENOENT without a certificate; -EPROTO when it cannot be encoded. */
__attribute__((warn_unused_result))
int tern_tls_client_cert_der(const struct tern_tls *tls, uint8_t *out, size_t out_len);

#endif
