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
 * after every call.
 *
 * `out` never refuses OpenSSL: whatever a step writes goes in whole, the
 * buffer growing if it must (tern_buf_append). So OpenSSL never holds a
 * half-written record, every step ends at a record boundary, and a read
 * that must write (a KeyUpdate answer, tickets after a post-handshake
 * authentication) never meets a write left half done, which OpenSSL
 * refuses with "bad length". The caller bounds `out` instead: it asks
 * tern_tls_write for no more than `out` has room for, and stops reading
 * while `out` is far over its size. */
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
	/* Storage `out` outgrew while the kernel was sending from it: freed
	 * by tern_tls_out_sent() when that send completes. */
	uint8_t *out_retired;
	bool in_eof;          /* the transport delivered EOF after `in` */
	/* A post-handshake CertificateRequest is out (server): watching for
	 * the client's Finished, which ends its answer. */
	bool pha_awaiting;
	bool pha_answered; /* ... and it came: see tern_tls_client_cert_answered */
	/* After the handshake, how many tickets a post-handshake
	 * authentication issues (SPEC `num-tickets`); OpenSSL's own count is
	 * set to 0 then, so that it never adds tickets nobody asked for. */
	unsigned num_tickets;
	/* The handshake writes no ticket: the caller issues num_tickets
	 * later (tern_tls_defer_handshake_tickets). */
	bool tickets_deferred;
	uint32_t tickets_sent;     /* NewSessionTicket messages written */
	uint32_t tickets_received; /* ... and read (a client's count, for tests) */
	char error[128];           /* why the last step failed, for the log */
	/* tern's own policy refused the handshake (--strict-sni): the
	 * access log's reason, static text; NULL otherwise. */
	const char *refused;
};

/* Creates the SSL object from ctx, server side unless `client`, wired to
 * the two buffers. Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result))
int tern_tls_init(struct tern_tls *tls, struct ssl_ctx_st *ctx, bool client,
		  struct tern_buf *in, struct tern_buf *out, uint32_t out_cap);

/* Server side, before the handshake: OpenSSL writes no ticket in it; the
 * caller issues the num_tickets tickets it would have (one after a
 * resumption) with tern_tls_new_tickets when it chooses, so that they can
 * leave with the first data instead of in a send of their own
 * (--handshake-tickets with-data). */
void tern_tls_defer_handshake_tickets(struct tern_tls *tls);

/* Frees the SSL object; the buffers stay with their owner. */
void tern_tls_free(struct tern_tls *tls);

/* The send from `out` completed (the caller unpinned it): storage it
 * outgrew meanwhile is freed. */
void tern_tls_out_sent(struct tern_tls *tls);

/* Advances the handshake. TERN_TLS_DONE once complete, 0 for no progress,
 * -EPROTO on a TLS failure (alert, if any, is in `out`), -ECONNRESET when
 * the peer ended the transport mid-handshake. */
__attribute__((warn_unused_result))
int tern_tls_handshake(struct tern_tls *tls);

/* Decrypts up to len bytes into dst. Bytes > 0, 0, TERN_TLS_CLOSED or
 * -EPROTO. */
__attribute__((warn_unused_result))
int tern_tls_read(struct tern_tls *tls, void *dst, size_t len);

/* Whether tern_tls_read can make progress: ciphertext waits in `in`,
 * OpenSSL holds bytes of its own (part of a record, or plaintext a short
 * read left), or the transport's EOF is still to be seen. Otherwise a read
 * would only fail with "want read": on a busy connection that is a call
 * into OpenSSL for every completion of the other direction. */
bool tern_tls_read_ready(const struct tern_tls *tls);

/* Encrypts len bytes from src into `out` (one record at most 16 KiB; the
 * caller sizes len by the room `out` has). Returns len (> 0), 0 when
 * OpenSSL cannot write now (a post-handshake exchange waits for the
 * peer's messages), or -EPROTO. Tickets handed to OpenSSL before
 * (tern_tls_new_tickets) are written first, ahead of the data. */
__attribute__((warn_unused_result))
int tern_tls_write(struct tern_tls *tls, const void *src, size_t len);

/* Queues close_notify in `out`. Returns 0, or -EPROTO. */
__attribute__((warn_unused_result))
int tern_tls_shutdown(struct tern_tls *tls);

/* True when OpenSSL can take new TLS 1.3 tickets now: a TLS 1.3 server
 * connection past its handshake, with no handshake exchange in progress
 * (SSL_in_init false) and no post-handshake authentication awaiting its
 * answer (tickets then carry the identity it brings). */
bool tern_tls_tickets_allowed(const struct tern_tls *tls);

/* Hands up to n tickets to OpenSSL (SSL_new_session_ticket), written by
 * the next tern_tls_write() ahead of its data, or by tern_tls_flush().
 * Returns how many OpenSSL took: fewer than n (0 too) means "not now",
 * never a failure, since OpenSSL refuses with nothing on its error queue
 * while its handshake machinery is busy. Call when tickets are allowed. */
unsigned tern_tls_new_tickets(struct tern_tls *tls, unsigned n);

/* Writes the handshake messages OpenSSL has to send (tickets, a
 * CertificateRequest) into `out` without application data.
 * TERN_TLS_DONE when nothing is left, 0 when OpenSSL waits for the peer
 * first, -EPROTO on failure. */
__attribute__((warn_unused_result))
int tern_tls_flush(struct tern_tls *tls);

/* Frees OpenSSL's record buffers unless a record is in them. OpenSSL 3.0
 * keeps them after writing post-handshake messages (the tickets
 * --handshake-tickets with-data hands over with the first response),
 * SSL_MODE_RELEASE_BUFFERS notwithstanding: 11-12 KiB more per idle
 * connection in bench/load's idle_rss phase until this was called. */
void tern_tls_release_buffers(struct tern_tls *tls);

/* True while OpenSSL has handshake messages to write or read (SSL_in_init):
 * tickets handed over, a CertificateRequest, an answer being read. */
bool tern_tls_flush_needed(const struct tern_tls *tls);

bool tern_tls_is_tls13(const struct tern_tls *tls);

/* TLS 1.3 post-handshake client authentication: queues a
 * CertificateRequest (SSL_verify_client_post_handshake), written by the
 * next tern_tls_write() or tern_tls_flush(); the client's answer is read
 * by tern_tls_read(), which sets pha_answered once it is complete (and
 * pha_awaiting until then).
 * Returns 0, -EPROTONOSUPPORT (TLS 1.2), -ENOKEY (no client CA list
 * configured), -EOPNOTSUPP (the client did not offer post_handshake_auth),
 * -EALREADY (a request is in flight), -EINPROGRESS or -EPROTO. */
__attribute__((warn_unused_result))
int tern_tls_request_client_cert(struct tern_tls *tls);

/* A CertificateRequest is out and its answer not yet taken
 * (tern_tls_client_cert_answered): verify-client is in progress. */
static inline bool tern_tls_pha_pending(const struct tern_tls *tls)
{
	return tls->pha_awaiting || tls->pha_answered;
}

/* After pha_answered turned true: stops watching for the answer. */
void tern_tls_client_cert_answered(struct tern_tls *tls);

/* The peer certificate's subject as X509_NAME_oneline writes it
 * ("/O=Example/CN=alice"), but with each value's bytes as they are (UTF-8)
 * rather than partly escaped: the client's bytes, to be escaped (escape.h)
 * wherever they are shown. Writes at most out_len bytes to out, no NUL,
 * and returns how many; out_len when the subject is that long or longer.
 * -ENOENT when there is no peer certificate. */
int tern_tls_client_subject(const struct tern_tls *tls, char *out, size_t out_len);

/* The same for any name (a certificate's subject or issuer): at most
 * out_len bytes, no NUL; returns how many. Certificate bytes, to be
 * escaped wherever they are shown. */
struct X509_name_st;
int tern_tls_name_bytes(const struct X509_name_st *name, char *out, size_t out_len);

/* Called from a server context's callback during the handshake: the
 * connection on ssl is being refused by tern's policy for reason (static
 * text, the access log's reason word), which tern_tls_handshake's caller
 * finds in tls->refused. Does nothing for an SSL that tern_tls_init did
 * not make (unit tests' own). The thread running the handshake. */
void tern_tls_refuse(struct ssl_st *ssl, const char *reason);

/* "ok", or why the peer certificate failed verification. */
const char *tern_tls_verify_status(const struct tern_tls *tls);

/* tls->num_tickets: the context's --num-tickets until a post-handshake
 * `num-tickets` changes it. */
unsigned tern_tls_num_tickets(const struct tern_tls *tls);

/* Negotiated facts for logs; valid after the handshake. Never NULL.
 * Version and cipher are OpenSSL's own names; tern_tls_sni is the
 * client's bytes ("-" when it sent none), to be escaped (escape.h). */
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
