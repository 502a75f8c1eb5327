/* A proxied connection: the client's TLS socket, the backend's plaintext
 * socket, and four buffers named by what they carry:
 *   cin   ciphertext received from the client       (recv -> TLS)
 *   cout  ciphertext for the client                 (TLS -> send)
 *   c2b   plaintext from the client for the backend (TLS -> send)
 *   b2c   plaintext from the backend for the client (recv -> TLS)
 * Backpressure falls out of the buffers: a socket is read only while the
 * buffer it fills has room, so memory per connection is bounded by the
 * four buffers (--buffer-size each, cout a record's overhead more) plus
 * OpenSSL's state.
 *
 * A connection lives on one worker; every function here runs on that
 * worker's thread. It is freed only when no operation is in flight for it
 * (the kernel may still write into its buffers until then). */
#ifndef TERN_CONN_H
#define TERN_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "tern/worker.h"

struct tern_conn;

/* Takes ownership of an accepted client socket and starts the handshake.
 * On failure the socket is closed and the slot released. */
void tern_conn_accept(struct tern_worker *w, int fd);

/* Handles a completion for operation op of the connection encoded in ud. */
void tern_conn_complete(uint64_t ud, enum tern_op op, int32_t res, uint32_t flags);

/* The connection on a worker list node (conns or a timer list). */
struct tern_conn *tern_conn_from_link(struct tern_list *node);
struct tern_conn *tern_conn_from_timer(struct tern_list *node);
uint64_t tern_conn_deadline(const struct tern_conn *c);

/* Its deadline passed on the timer list it is on: ends the connection with
 * the reason that list stands for. */
void tern_conn_expire(struct tern_conn *c);

/* Ends the connection at once: both sockets closed, no goodbye. */
void tern_conn_abort(struct tern_conn *c, const char *reason);

uint64_t tern_conn_id(const struct tern_conn *c);

/* Tickets on demand (SPEC 1). Queues n new TLS 1.3 session tickets: they
 * leave with the connection's next write of backend data, ahead of it, or
 * alone once --ticket-flush-delay passed, always at a record boundary.
 * Returns 0, -EPROTONOSUPPORT (TLS 1.2), -EINPROGRESS (handshake not done),
 * -ENOTCONN (ending) or -EBUSY (more than TERN_CONN_MAX_PENDING_TICKETS
 * waiting). The connection may be freed on return when it failed. */
#define TERN_CONN_MAX_PENDING_TICKETS 64
int tern_conn_request_tickets(struct tern_conn *c, unsigned n);

/* True for a live TLS 1.3 connection with no tickets waiting whose newest
 * ticket (or handshake) is older than older_than_ms (--ticket-refresh). */
bool tern_conn_wants_refresh(const struct tern_conn *c, uint64_t older_than_ms);

/* The spare list: connections keeping drained write buffers (ciphertext
 * for the client, plaintext for the backend) for their next bytes. Each
 * tick frees them, so an idle connection holds none after at most one
 * tick, while a busy one does not allocate and free them per request. */
struct tern_conn *tern_conn_from_spare(struct tern_list *node);
/* Frees the connection's drained buffers and takes it off the list. */
void tern_conn_release_spare(struct tern_conn *c);

/* The ticket-flush list: connections whose requested tickets wait. */
struct tern_conn *tern_conn_from_flush(struct tern_list *node);
uint64_t tern_conn_flush_deadline(const struct tern_conn *c);
/* The flush delay passed: the tickets go out alone. May free c. */
void tern_conn_flush_due(struct tern_conn *c);

/* verify-client: TLS 1.3 post-handshake client authentication. The
 * CertificateRequest goes out at once (at a record boundary); the outcome
 * is logged and shows in `conns` as client_cert. Returns 0 or
 * tern_tls_request_client_cert()'s errors, -ENOTCONN, -EINPROGRESS,
 * -EALREADY. The connection may be freed on return when it failed. */
int tern_conn_verify_client(struct tern_conn *c);

/* SSL_set_num_tickets on the live connection. 0, -ENOTCONN or -EINVAL. */
int tern_conn_set_num_tickets(struct tern_conn *c, unsigned n);

/* Appends the connection as a JSON object (the fields of `conns`). */
struct tern_json;
void tern_conn_describe(struct tern_conn *c, struct tern_json *j);

#endif
