/* Between conn.c (phases, flows, I/O), conn_tickets.c (tickets and
 * post-handshake authentication) and conn_accept_proxy.c (the PROXY header
 * from a load balancer): what each needs of the others. Private to those
 * files. Worker thread only. */
#ifndef TERN_CONN_INTERNAL_H
#define TERN_CONN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;
struct tern_conn;

/* conn.c */

/* Does all the TLS work the state allows and asks for the I/O now
 * possible; may end the connection (never frees it). */
void conn_pump(struct tern_conn *c);
/* Phase CONNECTING or STREAMING: the TLS session is up. */
bool conn_live(const struct tern_conn *c);
/* ... and our close_notify is not queued: handshake messages (tickets,
 * a CertificateRequest) can still be written. */
bool conn_can_write_handshake(const struct tern_conn *c);
/* How much of b2c the next SSL_write may take now (0: not worth a record). */
uint32_t conn_b2c_next_write(const struct tern_conn *c);

/* conn_backend.c */

/* Starts a connect to the next usable backend address, round-robin: the
 * first attempt, or the one retry on another address after a failure
 * (SPEC section 6). Returns true when a connect is in flight, false when
 * there is none to try (every attempt used, or no address at all): the
 * caller ends the connection, backend_unavailable. */
bool conn_backend_connect_next(struct tern_conn *c);
/* The connect in flight failed with res (-errno, -ECANCELED: timed out):
 * counted, and the address skipped for --backend-retry. */
void conn_backend_connect_failed(struct tern_conn *c, int32_t res);
/* The connect succeeded: counted, and the address usable again. */
void conn_backend_connected(struct tern_conn *c);
/* The backend socket is being closed. */
void conn_backend_closing(struct tern_conn *c);
/* The connection is freed: its hold on the backend set goes. */
void conn_backend_release(struct tern_conn *c);

/* conn_tickets.c */

/* Adds the tickets OpenSSL wrote since the last look to the counters. */
void conn_sync_tickets(struct tern_conn *c);
/* Forgets tickets not handed over: the connection ends. */
void conn_drop_tickets(struct tern_conn *c);
/* Hands waiting tickets to OpenSSL if they may go now (docs/connection.md). */
void conn_hand_over_tickets(struct tern_conn *c);
/* The handshake is done: with --handshake-tickets with-data, the tickets
 * OpenSSL did not write become pending, to leave with the first backend
 * data or after the flush delay. */
void conn_tickets_handshake_done(struct tern_conn *c);
/* Notices a completed answer to a CertificateRequest: logs it, and owes
 * the connection its num_tickets tickets. */
void conn_pha_check(struct tern_conn *c);

/* conn_accept_proxy.c (--accept-proxy) */

/* Its access-log reasons, for ends before TLS: compared by address. */
extern const char conn_reason_proxy_not_allowed[];
extern const char conn_reason_proxy_invalid[];
extern const char conn_reason_proxy_truncated[];
extern const char conn_reason_proxy_timeout[];
/* Counts an end for one of those reasons in its own counter (never a
 * handshake failure: SPEC 5 counts failed TLS only there); false for
 * any other reason, counted by the caller. */
bool conn_proxy_count_end(const struct tern_conn *c);

/* At accept: whether c's source (c->peer, filled) is in
 * --accept-proxy-from. A refusal is logged (info, rate-limited). */
bool conn_proxy_source_allowed(struct tern_conn *c);
/* Reads the PROXY header from the start of cin. Returns 1 when it is
 * whole: its bytes are consumed (what follows stays in cin for TLS) and
 * the addresses it names are c's from now on; 0 when more bytes are
 * needed; -EPROTO for a header refused (logged, rate-limited). */
int conn_proxy_header_read(struct tern_conn *c);

/* conn_describe.c */

#endif
