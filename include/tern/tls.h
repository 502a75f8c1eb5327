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

#endif
