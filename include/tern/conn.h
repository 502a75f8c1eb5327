/* A proxied connection: a state machine that does no I/O.
 *
 * The client's TLS socket and the backend's plaintext socket belong to an
 * engine (io_uring, conn_ring.c, or epoll, conn_epoll.c) that the
 * connection asks for I/O through struct tern_conn_ops and that reports
 * completions back through the tern_conn_on_* calls. Four buffers, named
 * by what they carry:
 *   cin   ciphertext received from the client       (recv -> TLS)
 *   cout  ciphertext for the client                 (TLS -> send)
 *   c2b   plaintext from the client for the backend (TLS -> send)
 *   b2c   plaintext from the backend for the client (recv -> TLS)
 * Backpressure falls out of the buffers: a socket is read only while the
 * buffer it fills has room, so memory per connection is bounded by the
 * four buffers (--buffer-size each, cout a record's overhead more) plus
 * OpenSSL's state.
 *
 * The states and what moves between them are in docs/connection.md; the
 * code in conn.c follows that table. In short:
 *   phase   HANDSHAKING -> CONNECTING -> STREAMING -> FINISHING -> CLOSED
 *   flows   c2b and b2c, each OPEN -> EOF (-> ENDING, b2c only) -> SHUT
 *   actions tickets (pending, due), post-handshake auth (awaiting)
 *
 * A connection lives on one worker; every function here runs on that
 * worker's thread. It is freed only when no operation is in flight for it
 * (the kernel may still write into its buffers until then). */
#ifndef TERN_CONN_H
#define TERN_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tern/buf.h"
#include "tern/config.h"
#include "tern/counters.h"
#include "tern/histogram.h"
#include "tern/list.h"
#include "tern/log_limit.h"
#include "tern/timer.h"
#include "tern/tls.h"

struct tern_backend_view;
struct tern_conn;
struct tern_conn_host;
struct tern_conn_info;
struct tern_endpoint;
struct ssl_ctx_st;

enum tern_side {
	TERN_SIDE_CLIENT = 0,
	TERN_SIDE_BACKEND = 1,
};

enum tern_conn_phase {
	TERN_PHASE_PROXY_HEADER, /* --accept-proxy: the load balancer's PROXY header */
	TERN_PHASE_HANDSHAKING, /* TLS handshake with the client */
	TERN_PHASE_CONNECTING,  /* handshake done, connecting to a backend */
	TERN_PHASE_STREAMING,   /* both flows run until both are SHUT */
	TERN_PHASE_FINISHING,   /* the backend is dropped; cout's last bytes go out */
	TERN_PHASE_CLOSED,      /* sockets closed; freed once nothing is in flight */
};

enum tern_flow_state {
	TERN_FLOW_OPEN,   /* the source may send more */
	TERN_FLOW_EOF,    /* the source ended; what is buffered still goes */
	TERN_FLOW_ENDING, /* b2c only: close_notify is in cout, the FIN follows it */
	TERN_FLOW_SHUT,   /* all delivered, and the end passed on (a FIN) */
};

/* One direction's plaintext and where it stands. */
struct tern_flow {
	enum tern_flow_state state;
	struct tern_buf buf;
	uint64_t bytes; /* plaintext moved this way */
};

/* One socket as the engine sees it. */
struct tern_conn_sock {
	int fd; /* the engine's handle; -1 once closed */
	bool recv_busy;
	bool send_busy;
};

/* Tickets on demand (SPEC 1): asked for, then handed to OpenSSL when the
 * connection next writes backend data (ahead of it) or when the flush
 * delay passed (due), always at a record boundary. */
struct tern_conn_tickets {
	uint32_t pending;   /* asked for (`tickets`, --ticket-refresh), not yet handed over */
	uint32_t owed;      /* num_tickets owed after a post-handshake authentication */
	uint32_t requested; /* asked for on demand, over the connection's life */
	uint32_t seen;      /* tls.tickets_sent already added to the counters */
	bool due;           /* go out now, with or without data */
	uint64_t last_ms;   /* when the newest ticket (or the handshake) was written */
	struct tern_timer flush;  /* on host->ticket_flush while pending and not due */
	struct tern_list due_link; /* on host->tickets_due while due (worker batches) */
};

enum tern_timer_kind {
	TERN_TIMER_NONE,
	TERN_TIMER_HANDSHAKE,
	TERN_TIMER_IDLE,
	TERN_TIMER_LINGER,
};

struct tern_conn {
	uint32_t magic;
	enum tern_conn_phase phase;
	uint8_t inflight; /* operations in flight that name this connection */
	uint8_t timer_kind;
	bool handshake_done; /* it was, once: a failure after it is not a handshake failure */
	bool client_spoke;   /* a byte came from the client: leaving is no longer a probe */
	/* The header named the client: peer is its source, proxied_local the
	 * address the client connected to (for --proxy-protocol). */
	bool proxied;
	struct tern_conn_host *host;
	uint64_t id;
	struct tern_conn_sock sock[2]; /* by enum tern_side */
	struct tern_flow c2b, b2c;
	struct tern_buf cin, cout;
	struct tern_tls tls;
	struct tern_conn_tickets tickets;

	struct tern_list link;    /* host->conns */
	struct tern_timer timer;  /* handshake, idle or linger deadline */
	struct tern_list spare_link; /* host->spare while cout or c2b is drained */
	uint64_t start_ms;
	uint64_t start_us; /* at accept, for the handshake histogram */
	uint64_t touched_ms;
	unsigned attempts; /* backend connects tried */
	/* The backend address chosen (conn_backend.c): an endpoint of the set
	 * bview holds, so it lives as long as the connection does. backend is
	 * its address, for the engine's connect. */
	struct tern_backend_view *bview;
	struct tern_endpoint *endpoint;
	const struct tern_addr *backend;
	bool backend_open; /* connected: counted in its backend's open connections */
	const char *reason; /* why it ends: the access log's reason */
	union {
		struct sockaddr sa;
		struct sockaddr_in6 sin6; /* large enough for AF_INET too */
	} peer; /* kept for the access log: the socket may be reset by then;
		 * with --accept-proxy, the client the PROXY header names */
	union {
		struct sockaddr sa;
		struct sockaddr_in6 sin6;
	} proxied_local; /* set when proxied */
	/* --proxy-protocol: the header the backend gets before any of c2b
	 * (pp_sent of pp_len bytes sent so far); NULL when off or once sent. */
	uint8_t *pp_hdr;
	uint32_t pp_len, pp_sent;
};

/* What a connection asks of its engine. Every call is on the worker's
 * thread; none blocks. Operations complete later through tern_conn_on_*,
 * exactly once each, including after close (with -ECANCELED). */
struct tern_conn_ops {
	size_t conn_size; /* the engine's struct, which starts with a struct tern_conn */
	/* Read from side into its buffer (cin for the client, b2c.buf for
	 * the backend). The buffer may hold no memory: the engine then reads
	 * into memory it lends for the completion (return_buffers takes it
	 * back) or allocates. Returns 1 when a read is queued, 0 when the
	 * buffer has no room, -ENOMEM. */
	int (*recv)(struct tern_conn *c, enum tern_side side, struct tern_buf *b);
	/* Send len bytes at p to side; p stays valid until the completion. */
	void (*send)(struct tern_conn *c, enum tern_side side, const uint8_t *p, uint32_t len);
	/* A socket for the backend at addr and a connect on it, given up
	 * after timeout_ms (-ECANCELED). Returns 0 or -errno (nothing
	 * queued). */
	int (*connect)(struct tern_conn *c, const struct tern_addr *addr, uint64_t timeout_ms);
	/* shutdown(SHUT_WR): our side of the stream ends. */
	void (*shutdown_wr)(struct tern_conn *c, enum tern_side side);
	/* Cancels what is in flight on side and closes it. */
	void (*close)(struct tern_conn *c, enum tern_side side);
	/* What the client has sent so far is acknowledged now rather than
	 * after the delayed-ACK timer (TCP_QUICKACK). Optional (NULL: nothing
	 * done). */
	void (*ack_now)(struct tern_conn *c);
	/* The client socket's peer or local address; false if unknown. */
	bool (*address)(struct tern_conn *c, bool local, struct sockaddr *out, socklen_t len);
	/* Takes back buffers lent for the event being handled; bytes the
	 * connection still holds in them move to memory of its own. Returns
	 * 0, or -ENOMEM when such bytes were lost (the connection ends). */
	int (*return_buffers)(struct tern_conn *c);
	/* A connection was freed: its slot (--max-conns) is free again. */
	void (*slot_freed)(struct tern_conn_host *host);
};

/* One --backend's counts on one worker (counters.h: this worker writes,
 * others sum). */
struct tern_backend_stats {
	_Atomic uint64_t connects; /* connects that succeeded */
	_Atomic uint64_t failures; /* connects that failed or timed out */
	_Atomic uint64_t open;     /* connected backend sockets open now */
};

/* Everything a connection needs from the worker it runs on. */
struct tern_conn_host {
	const struct tern_conn_ops *ops;
	void *engine; /* the engine's own per-worker state, for ops (conn_epoll.h) */
	const struct tern_config *cfg;
	struct ssl_ctx_st *ssl_ctx; /* new connections start on this one */
	struct tern_counters *ctr;
	struct tern_histogram *hs_hist;
	unsigned worker_index;
	uint64_t now_ms; /* CLOCK_MONOTONIC, refreshed once per loop iteration */
	struct tern_list conns; /* every live connection */
	struct tern_timer_list handshaking, idle, lingering;
	struct tern_timer_list ticket_flush; /* tickets waiting for a write */
	struct tern_list tickets_due;        /* tickets to write now, in batches */
	struct tern_list spare;              /* drained buffers kept until the next tick */
	uint64_t num_conns; /* allocated connections */
	/* --accept-proxy's refusals are logged at info at most once a second
	 * per worker, so a flood of them cannot flood the log. */
	struct tern_log_limit proxy_refusals;
	uint64_t next_conn_seq;
	/* Backends (backend_set.h): the set new connections choose from
	 * (NULL: none yet, every connection ends backend_unavailable), the
	 * round-robin cursor into it, and one struct per --backend. */
	struct tern_backend_view *backends;
	unsigned next_backend;
	struct tern_backend_stats *backend_stats; /* cfg->num_backends of them */
};

void tern_conn_host_init(struct tern_conn_host *h);

/* Connection IDs carry the owning worker in their top 16 bits, so a
 * request for an ID routes to its worker with no table and no lock. */
#define TERN_CONN_ID_WORKER_SHIFT 48
static inline unsigned tern_conn_id_worker(uint64_t id)
{
	return (unsigned)(id >> TERN_CONN_ID_WORKER_SHIFT);
}

#define TERN_CONN_MAGIC 0x434f4e4eu /* "CONN" */

/* Always on: a stale completion would be a use after free. Aborts. */
void tern_conn_check(const struct tern_conn *c);

/* Makes a connection for an accepted client socket and starts the
 * handshake. Returns 0, or -ENOMEM: the caller closes fd and frees the
 * slot. */
__attribute__((warn_unused_result))
int tern_conn_accept(struct tern_conn_host *h, int fd);

/* Completions, from the engine. res is the kernel's: bytes, or -errno.
 * For a recv, the bytes are at the tail of the buffer the recv named (or
 * of the buffer the engine lent it). -EAGAIN and -ENOBUFS mean nothing was
 * read and the read is queued again. */
void tern_conn_on_recv(struct tern_conn *c, enum tern_side side, int32_t res);
void tern_conn_on_send(struct tern_conn *c, enum tern_side side, int32_t res);
void tern_conn_on_connect(struct tern_conn *c, int32_t res);

/* After every event the engine delivered: frees the connection if it is
 * closed and nothing is in flight, and otherwise drops buffer memory it
 * no longer needs. c must not be used afterwards. */
void tern_conn_settle(struct tern_conn *c);

/* Its deadline passed on the timer list it is on: ends the connection with
 * the reason that list stands for. May free c. */
void tern_conn_expire(struct tern_conn *c);

/* Ends the connection at once: both sockets closed, no goodbye. May free c. */
void tern_conn_abort(struct tern_conn *c, const char *reason);

/* close ID (SPEC section 3): ends the connection cleanly, by the `close`
 * row of docs/connection.md. Mid-handshake at once, as there is no session
 * to say goodbye in. Once the session is up (connecting or streaming,
 * half-closed either way): close_notify queued after what cout holds, at
 * a record boundary; the backend socket closed at once (plaintext not yet
 * sent either way is dropped); the client's once cout is sent, or after
 * the linger time (2 s) for a client that does not read. A connection
 * already ending keeps ending as it was, with its own reason. The access
 * log's reason is TERN_CONN_REASON_CONTROL; never a handshake failure.
 * Returns 1 when this started the end, 0 when it had started already.
 * May free c. */
#define TERN_CONN_REASON_CONTROL "closed_by_control"
int tern_conn_request_close(struct tern_conn *c);

/* Tickets on demand (SPEC 1). Queues n new TLS 1.3 session tickets: they
 * leave with the connection's next write of backend data, ahead of it, or
 * alone once --ticket-flush-delay passed, always at a record boundary.
 * Returns 0, -EPROTONOSUPPORT (TLS 1.2), -EINPROGRESS (handshake not done),
 * -ENOTCONN (ending: close_notify queued, or finishing) or -EBUSY (more
 * than TERN_CONN_MAX_PENDING_TICKETS waiting). Never frees c. */
#define TERN_CONN_MAX_PENDING_TICKETS 64
int tern_conn_request_tickets(struct tern_conn *c, unsigned n);

/* True for a live TLS 1.3 connection that can take tickets, has none
 * waiting, and whose newest ticket (or handshake) is older than
 * older_than_ms (--ticket-refresh). */
bool tern_conn_wants_refresh(const struct tern_conn *c, uint64_t older_than_ms);

/* The flush delay of c's tickets passed: they join host->tickets_due. */
void tern_conn_tickets_flush_expired(struct tern_conn *c);

/* The worker serves host->tickets_due in batches: writes c's tickets now.
 * May free c. */
void tern_conn_tickets_write_due(struct tern_conn *c);

/* One batch: writes the tickets of the connections on h->tickets_due, in
 * the order they fell due and a whole connection at a time, until about
 * `budget` tickets are written (at least one connection's). What is left
 * waits for the next batch. Returns the connections served. */
unsigned tern_conn_host_write_due_tickets(struct tern_conn_host *h, unsigned budget);

/* verify-client: TLS 1.3 post-handshake client authentication. The
 * CertificateRequest goes out at once (at a record boundary); the outcome
 * is logged and shows in `conns` as client_cert. Returns 0 or
 * tern_tls_request_client_cert()'s errors, -ENOTCONN, -EINPROGRESS,
 * -EALREADY. c may be freed on return (when writing the request failed). */
int tern_conn_verify_client(struct tern_conn *c);

/* num-tickets: how many tickets a later post-handshake authentication
 * issues. 0, -ENOTCONN, -EINPROGRESS or -EPROTONOSUPPORT (TLS 1.2). */
int tern_conn_set_num_tickets(struct tern_conn *c, unsigned n);

/* The spare list: connections keeping drained write buffers (ciphertext
 * for the client, plaintext for the backend) for their next bytes. Each
 * tick frees them, so an idle connection holds none after at most one
 * tick, while a busy one does not allocate and free them per request. */
void tern_conn_release_spare(struct tern_conn *c);

/* The connection on a host list node. */
static inline struct tern_conn *tern_conn_from_link(struct tern_list *node)
{
	return tern_container_of(node, struct tern_conn, link);
}
static inline struct tern_conn *tern_conn_from_timer(struct tern_timer *t)
{
	return tern_container_of(t, struct tern_conn, timer);
}
static inline struct tern_conn *tern_conn_from_flush(struct tern_timer *t)
{
	return tern_container_of(t, struct tern_conn, tickets.flush);
}
static inline struct tern_conn *tern_conn_from_due(struct tern_list *node)
{
	return tern_container_of(node, struct tern_conn, tickets.due_link);
}
static inline struct tern_conn *tern_conn_from_spare(struct tern_list *node)
{
	return tern_container_of(node, struct tern_conn, spare_link);
}

/* conn_describe.c: fills *out with the connection as `conns` lists it
 * (conn_info.h; the control thread renders it), and writes its access-log
 * line. */
void tern_conn_describe(struct tern_conn *c, struct tern_conn_info *out);
void tern_conn_log_access(struct tern_conn *c);

/* conn_proxy_header.c: --proxy-protocol's header for c's backend, into
 * c->pp_hdr. Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result))
int tern_conn_build_proxy_header(struct tern_conn *c);

#endif
