/* The epoll engine of connections (conn_epoll.h). */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tern/conn_engine.h"
#include "tern/conn_epoll.h"
#include "tern/worker.h"

/* Events taken per epoll_wait; more wait in the kernel for the next. */
#define EVENTS_PER_WAIT 256

/* How often a connect to a UNIX socket whose backlog is full is tried
 * again: no event says that room was made. */
#define CONNECT_RETRY_MS 5

struct tern_conn_epoll {
	int epfd;
	uint8_t *scratch; /* reads of buffers with no memory land here; or NULL */
	uint32_t scratch_size;
	bool scratch_lent; /* to the connection whose completion is handled */
	/* Connections with an operation that may be ready or is done. */
	struct tern_list run;
	struct tern_timer_list connects; /* backend connect deadlines */
};

/* An operation's life: posted and WAITING until its socket may be ready,
 * tried then (EAGAIN: WAITING again, for the next edge); or DONE with a
 * result known outside a try (a connect that finished or failed at once,
 * a cancellation, a deadline), completed on the next run; IDLE once the
 * core has its completion. */
enum op_state { OP_IDLE, OP_WAITING, OP_DONE };

struct epoll_op {
	uint8_t state;
	int32_t res;         /* OP_DONE's result */
	uint8_t *into;       /* recv: the buffer's tail, or NULL: the scratch buffer */
	const uint8_t *from; /* send */
	uint32_t len;
};

struct epoll_sock {
	struct epoll_op recv, send;
	bool registered;    /* in the epoll instance: once per socket */
	bool read_blocked;  /* a read met EAGAIN (or read short) since the last edge */
	bool write_blocked; /* a write met EAGAIN (or the connect is under way) */
	bool read_hup;      /* an edge said the peer's data ended (RDHUP, HUP, ERR) */
};

struct epoll_conn {
	struct tern_conn conn; /* first: the core allocates ops.conn_size */
	struct tern_conn_lend lend[2];  /* by side: cin, b2c borrow the scratch buffer */
	struct epoll_sock sock[2];      /* by side */
	struct epoll_op connect;        /* the backend's */
	struct tern_timer connect_deadline; /* on e->connects while the connect waits */
	/* A connect retried (a UNIX socket's full backlog) until this time;
	 * 0 for one that waits for an edge. */
	uint64_t connect_until_ms;
	struct tern_list run_link;      /* on e->run */
};

/* The order a connection's operations are tried in: the connect first
 * (it opens the backend side), then each side's send before its recv (a
 * send makes room that a recv's completion may fill). */
enum op_kind { KIND_CONNECT, KIND_C_SEND, KIND_C_RECV, KIND_B_SEND, KIND_B_RECV, NUM_KINDS };

static struct epoll_conn *epoll_conn(struct tern_conn *c)
{
	return (struct epoll_conn *)c;
}

static struct tern_conn_epoll *conn_engine(const struct tern_conn *c)
{
	return c->host->engine;
}

static enum tern_side kind_side(enum op_kind k)
{
	return k == KIND_C_SEND || k == KIND_C_RECV ? TERN_SIDE_CLIENT : TERN_SIDE_BACKEND;
}

static struct epoll_op *kind_op(struct epoll_conn *ec, enum op_kind k)
{
	switch (k) {
	case KIND_CONNECT:
		return &ec->connect;
	case KIND_C_SEND:
	case KIND_B_SEND:
		return &ec->sock[kind_side(k)].send;
	default:
		return &ec->sock[kind_side(k)].recv;
	}
}

/* Whether op of kind k has a result or may have one if tried now. */
static bool op_ready(struct epoll_conn *ec, enum op_kind k)
{
	const struct epoll_op *op = kind_op(ec, k);
	const struct epoll_sock *s = &ec->sock[kind_side(k)];
	bool recv = k == KIND_C_RECV || k == KIND_B_RECV;

	if (op->state == OP_DONE)
		return true;
	return op->state == OP_WAITING && !(recv ? s->read_blocked : s->write_blocked);
}

static bool conn_has_ready(struct epoll_conn *ec)
{
	for (int k = 0; k < NUM_KINDS; k++)
		if (op_ready(ec, (enum op_kind)k))
			return true;
	return false;
}

/* Invariant: a connection on e->run has an operation recorded (WAITING or
 * DONE), which holds c->inflight, so it is never freed while linked. */
static void schedule(struct epoll_conn *ec)
{
	if (!tern_list_linked(&ec->run_link))
		tern_list_add_tail(&conn_engine(&ec->conn)->run, &ec->run_link);
}

static void op_done(struct epoll_conn *ec, struct epoll_op *op, int32_t res)
{
	op->state = OP_DONE;
	op->res = res;
	schedule(ec);
}

static void op_cancel(struct epoll_conn *ec, struct epoll_op *op)
{
	if (op->state == OP_WAITING)
		op_done(ec, op, -ECANCELED);
}

/* A socket is registered for every event at its first operation, and its
 * events come back tagged with the connection and the side. */
static int sock_register(struct epoll_conn *ec, enum tern_side side)
{
	struct epoll_sock *s = &ec->sock[side];
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};

	if (s->registered)
		return 0;
	ev.data.u64 = tern_ud(ec, side == TERN_SIDE_CLIENT ? TERN_OP_C_RECV : TERN_OP_B_RECV);
	if (epoll_ctl(conn_engine(&ec->conn)->epfd, EPOLL_CTL_ADD, ec->conn.sock[side].fd, &ev) < 0)
		return -errno;
	s->registered = true;
	return 0;
}

/* Records op as posted on side; scheduled for the next run unless its
 * socket is known not to be ready (blocked). A socket the instance
 * refuses (out of memory, max_user_watches) fails the operation. */
static void op_post(struct epoll_conn *ec, enum tern_side side, struct epoll_op *op, bool blocked)
{
	int ret = sock_register(ec, side);

	assert(op->state == OP_IDLE);
	if (ret < 0) {
		op_done(ec, op, ret);
		return;
	}
	op->state = OP_WAITING;
	if (!blocked)
		schedule(ec);
}

static void release_scratch(struct tern_conn *c, uint16_t id)
{
	(void)id;
	conn_engine(c)->scratch_lent = false;
}

static int epoll_return_buffers(struct tern_conn *c)
{
	return tern_conn_engine_return_buffers(c, epoll_conn(c)->lend, release_scratch);
}

/* An empty buffer is read through the scratch buffer when data arrives;
 * one that holds bytes (a partial record: the connection asks only when
 * they need more) reads into its own memory, pinned until the
 * completion, and so does every buffer without a scratch buffer
 * (--read-buffers 0). */
static int epoll_recv(struct tern_conn *c, enum tern_side side, struct tern_buf *b)
{
	struct epoll_conn *ec = epoll_conn(c);
	struct epoll_op *op = &ec->sock[side].recv;

	if (tern_conn_engine_give_back(c, b, &ec->lend[side], release_scratch) < 0)
		return -ENOMEM;
	op->into = NULL;
	op->len = conn_engine(c)->scratch_size;
	if (b->data || !conn_engine(c)->scratch) {
		int ret = tern_conn_engine_own_tail(c, b);
		if (ret <= 0)
			return ret;
		op->into = tern_buf_tail_ptr(b);
		op->len = tern_buf_free_tail(b);
	}
	op_post(ec, side, op, ec->sock[side].read_blocked);
	return 1;
}

static void epoll_send(struct tern_conn *c, enum tern_side side, const uint8_t *p, uint32_t len)
{
	struct epoll_conn *ec = epoll_conn(c);
	struct epoll_op *op = &ec->sock[side].send;

	op->from = p;
	op->len = len;
	op_post(ec, side, op, ec->sock[side].write_blocked);
}

/* connect(2) on the backend socket: 0, or -errno. */
static int connect_backend(struct epoll_conn *ec, const struct tern_addr *addr)
{
	int fd = ec->conn.sock[TERN_SIDE_BACKEND].fd;

	return connect(fd, (const struct sockaddr *)&addr->ss, addr->ss_len) == 0 ? 0 : -errno;
}

/* A non-blocking connect finishes at once (a UNIX socket), fails at once,
 * or goes on (EINPROGRESS) until the socket turns writable. A UNIX socket
 * whose backlog is full says EAGAIN rather than wait, and no event says
 * when room is made: the connect is tried again every CONNECT_RETRY_MS
 * until the deadline, so that a burst to a busy UNIX backend waits as
 * long as on io_uring (whose connect waits for room) rather than fail at
 * once. The socket is registered after connect(2), so the instance
 * reports its state from then on: nothing while the handshake runs, an
 * edge when it ends. */
static int epoll_connect(struct tern_conn *c, const struct tern_addr *addr, uint64_t timeout_ms)
{
	struct epoll_conn *ec = epoll_conn(c);
	uint64_t deadline_ms = c->host->now_ms + timeout_ms;
	int fd = tern_conn_engine_backend_socket(c, addr->ss.ss_family, SOCK_NONBLOCK);
	int ret;

	if (fd < 0)
		return fd;
	c->sock[TERN_SIDE_BACKEND].fd = fd;
	ec->connect_until_ms = 0;
	do
		ret = connect_backend(ec, addr);
	while (ret == -EINTR);
	if (ret == -EAGAIN && addr->ss.ss_family == AF_UNIX) {
		ec->connect_until_ms = deadline_ms;
		deadline_ms = c->host->now_ms + CONNECT_RETRY_MS < deadline_ms
				      ? c->host->now_ms + CONNECT_RETRY_MS
				      : deadline_ms;
	} else if (ret != -EINPROGRESS) {
		op_done(ec, &ec->connect, ret);
		return 0;
	}
	ec->sock[TERN_SIDE_BACKEND].write_blocked = true;
	tern_timer_arm(&conn_engine(c)->connects, &ec->connect_deadline, deadline_ms);
	op_post(ec, TERN_SIDE_BACKEND, &ec->connect, true);
	return 0;
}

/* The connect timer of ec is due: the deadline, which cancels the connect
 * (the core counts a timeout), or a retry of a connect to a full UNIX
 * backlog, which ends it or waits for the next retry. */
static void connect_timer_due(struct tern_conn_epoll *e, struct epoll_conn *ec, uint64_t now_ms)
{
	int ret;

	if (ec->connect.state != OP_WAITING)
		return;
	if (!ec->connect_until_ms || now_ms >= ec->connect_until_ms) {
		op_cancel(ec, &ec->connect);
		return;
	}
	do
		ret = connect_backend(ec, ec->conn.backend);
	while (ret == -EINTR);
	if (ret == -EAGAIN) {
		uint64_t next = now_ms + CONNECT_RETRY_MS;
		tern_timer_arm(&e->connects, &ec->connect_deadline,
			       next < ec->connect_until_ms ? next : ec->connect_until_ms);
		return;
	}
	/* Connected by this call, not by an edge: nothing else says the
	 * socket is writable now. */
	ec->sock[TERN_SIDE_BACKEND].write_blocked = false;
	op_done(ec, &ec->connect, ret);
}

static void epoll_shutdown_wr(struct tern_conn *c, enum tern_side side)
{
	(void)shutdown(c->sock[side].fd, SHUT_WR);
}

/* close(2) also takes the socket out of the epoll instance, since no other
 * descriptor refers to it (close-on-exec, and tern does not fork): no
 * later event names this connection for it. What waited on it completes
 * -ECANCELED on the next run; a result already in stays. */
static void epoll_close(struct tern_conn *c, enum tern_side side)
{
	struct epoll_conn *ec = epoll_conn(c);
	struct epoll_sock *s = &ec->sock[side];

	(void)close(c->sock[side].fd);
	op_cancel(ec, &s->recv);
	op_cancel(ec, &s->send);
	if (side == TERN_SIDE_BACKEND) {
		op_cancel(ec, &ec->connect);
		tern_timer_disarm(&ec->connect_deadline);
	}
	s->registered = s->read_blocked = s->write_blocked = s->read_hup = false;
}

const struct tern_conn_ops tern_conn_epoll_ops = {
	.conn_size = sizeof(struct epoll_conn),
	.recv = epoll_recv,
	.send = epoll_send,
	.connect = epoll_connect,
	.shutdown_wr = epoll_shutdown_wr,
	.close = epoll_close,
	.address = tern_conn_engine_address,
	.ack_now = tern_conn_engine_ack_now,
	.return_buffers = epoll_return_buffers,
	.slot_freed = tern_worker_conn_slot_freed,
};

/* ------------------------------------------------------------ the runs */

/* The connect's outcome once the socket turned writable (or failed):
 * SO_ERROR, and a peer to be sure it is connected, not still under way.
 * Returns false while it is. */
static bool try_connect(struct epoll_conn *ec, int32_t *res)
{
	int fd = ec->conn.sock[TERN_SIDE_BACKEND].fd;
	int err = 0;
	socklen_t len = sizeof(err);
	struct sockaddr_storage peer;
	socklen_t peer_len = sizeof(peer);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0 && getpeername(fd, (struct sockaddr *)&peer, &peer_len) < 0) {
		if (errno == ENOTCONN) {
			ec->sock[TERN_SIDE_BACKEND].write_blocked = true;
			return false;
		}
		err = errno;
	}
	*res = -err;
	return true;
}

/* Tries the operation of kind k: true with *res when it has a result,
 * false when it waits for an edge (EAGAIN). */
static bool op_try(struct tern_conn_epoll *e, struct epoll_conn *ec, enum op_kind k, int32_t *res)
{
	struct epoll_op *op = kind_op(ec, k);
	struct epoll_sock *s = &ec->sock[kind_side(k)];
	int fd = ec->conn.sock[kind_side(k)].fd;
	bool recv_op = k == KIND_C_RECV || k == KIND_B_RECV;
	ssize_t n;

	if (op->state == OP_DONE) {
		*res = op->res;
		return true;
	}
	if (k == KIND_CONNECT)
		return try_connect(ec, res);
	/* The scratch buffer is lent for one completion at a time and taken
	 * back when it is settled, before the next try. */
	assert(op->into || !e->scratch_lent);
	do {
		n = recv_op ? recv(fd, op->into ? op->into : e->scratch, op->len, 0)
			    : send(fd, op->from, op->len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		if (recv_op)
			s->read_blocked = true;
		else
			s->write_blocked = true;
		return false;
	}
	/* A short read took all the socket held: the next would meet EAGAIN,
	 * so it waits for an edge instead, which whatever arrives after the
	 * last one reported brings. Unless that report said the peer's data
	 * ended: its end (a read of 0) is due without another edge. */
	if (recv_op && n > 0 && (uint32_t)n < op->len && !s->read_hup)
		s->read_blocked = true;
	*res = n < 0 ? -errno : (int32_t)n;
	return true;
}

/* Hands the result of kind k to the core, then settles the connection
 * (which the visit holds: it is not freed here). */
static void op_complete(struct tern_conn_epoll *e, struct epoll_conn *ec, enum op_kind k,
			int32_t res)
{
	struct tern_conn *c = &ec->conn;
	struct epoll_op *op = kind_op(ec, k);
	enum tern_side side = kind_side(k);

	op->state = OP_IDLE;
	switch (k) {
	case KIND_CONNECT:
		tern_timer_disarm(&ec->connect_deadline);
		tern_conn_on_connect(c, res);
		break;
	case KIND_C_SEND:
	case KIND_B_SEND:
		tern_conn_on_send(c, side, res);
		break;
	case KIND_C_RECV:
	case KIND_B_RECV:
		if (!op->into && res > 0) {
			tern_conn_engine_borrow(tern_conn_read_buf(c, side), &ec->lend[side],
						e->scratch, e->scratch_size, 0);
			e->scratch_lent = true;
		}
		tern_conn_on_recv(c, side, res);
		break;
	default:
		abort();
	}
	tern_conn_settle(c);
}

/* One connection's turn: each operation that may be ready is tried once,
 * in kind order, and completed if it has a result. The visit holds the
 * connection (one more in c->inflight), so a completion that closes it
 * does not free it under the visit; the last settle below may. */
static void conn_visit(struct tern_conn_epoll *e, struct epoll_conn *ec)
{
	struct tern_conn *c = &ec->conn;

	tern_conn_check(c);
	c->inflight++;
	for (int k = 0; k < NUM_KINDS; k++) {
		int32_t res;
		if (op_ready(ec, (enum op_kind)k) && op_try(e, ec, (enum op_kind)k, &res))
			op_complete(e, ec, (enum op_kind)k, res);
	}
	c->inflight--;
	/* Scheduled again by a completion only for something tried already,
	 * which waits for an edge now: off the list, or it would be freed on
	 * it. */
	if (!conn_has_ready(ec))
		tern_list_del(&ec->run_link);
	tern_conn_settle(c);
}

void tern_conn_epoll_run(struct tern_conn_epoll *e, uint64_t now_ms)
{
	struct tern_timer *t;
	struct tern_list pass;

	while ((t = tern_timer_pop_due(&e->connects, now_ms)))
		connect_timer_due(e, tern_container_of(t, struct epoll_conn, connect_deadline),
				  now_ms);
	if (tern_list_empty(&e->run))
		return;
	/* This pass takes the connections waiting now; what their completions
	 * schedule goes on e->run for the next (as io_uring submits once per
	 * loop iteration), so one busy connection cannot hold the loop. */
	pass = e->run;
	pass.next->prev = pass.prev->next = &pass;
	tern_list_init(&e->run);
	while (!tern_list_empty(&pass)) {
		struct epoll_conn *ec = tern_container_of(pass.next, struct epoll_conn, run_link);
		tern_list_del(&ec->run_link);
		conn_visit(e, ec);
	}
}

/* An edge on a connection's socket: the directions it names may be ready
 * again. A hang-up or an error readies both; what waits finds out by
 * trying. Nothing completes here. */
static void conn_event(uint64_t ud, uint32_t events)
{
	struct epoll_conn *ec = (struct epoll_conn *)(uintptr_t)(ud & ~(uint64_t)TERN_OP_MASK);
	enum tern_side side =
		(ud & TERN_OP_MASK) == TERN_OP_C_RECV ? TERN_SIDE_CLIENT : TERN_SIDE_BACKEND;
	struct epoll_sock *s = &ec->sock[side];

	tern_conn_check(&ec->conn);
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		s->read_hup = true;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		s->read_blocked = false;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		s->write_blocked = false;
	if (conn_has_ready(ec))
		schedule(ec);
}

int tern_conn_epoll_wait(struct tern_conn_epoll *e, int timeout_ms,
			 tern_conn_epoll_event_fn *fn, void *ctx)
{
	struct epoll_event ev[EVENTS_PER_WAIT];
	int n = epoll_wait(e->epfd, ev, EVENTS_PER_WAIT, timeout_ms);

	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		uint64_t ud = ev[i].data.u64;
		uint64_t op = ud & TERN_OP_MASK;
		if (op == TERN_OP_C_RECV || op == TERN_OP_B_RECV)
			conn_event(ud, ev[i].events);
		else
			fn(ctx, ud, ev[i].events);
	}
	return n;
}

bool tern_conn_epoll_busy(const struct tern_conn_epoll *e)
{
	return !tern_list_empty(&e->run);
}

uint64_t tern_conn_epoll_next_deadline(const struct tern_conn_epoll *e)
{
	return tern_timer_next(&e->connects);
}

/* ------------------------------------------------ the instance itself */

int tern_conn_epoll_new(uint32_t buffer_size, bool lend, struct tern_conn_epoll **out)
{
	struct tern_conn_epoll *e = calloc(1, sizeof(*e));

	*out = NULL;
	if (!e)
		return -ENOMEM;
	e->scratch_size = buffer_size;
	e->scratch = lend ? malloc(buffer_size) : NULL;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if ((lend && !e->scratch) || e->epfd < 0) {
		int ret = e->epfd < 0 ? -errno : -ENOMEM;
		if (e->epfd >= 0)
			close(e->epfd);
		free(e->scratch);
		free(e);
		return ret;
	}
	tern_list_init(&e->run);
	tern_timer_list_init(&e->connects);
	*out = e;
	return 0;
}

void tern_conn_epoll_free(struct tern_conn_epoll *e)
{
	if (!e)
		return;
	close(e->epfd);
	free(e->scratch);
	free(e);
}

int tern_conn_epoll_add(struct tern_conn_epoll *e, int fd, uint64_t ud)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = ud};

	assert((ud & TERN_OP_MASK) != TERN_OP_C_RECV && (ud & TERN_OP_MASK) != TERN_OP_B_RECV);
	return epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int tern_conn_epoll_interest(struct tern_conn_epoll *e, int fd, uint64_t ud, bool readable)
{
	/* EPOLLET even without EPOLLIN: EPOLLERR and EPOLLHUP are always
	 * reported, and must not be level-triggered. */
	struct epoll_event ev = {.events = EPOLLET | (readable ? EPOLLIN : 0u), .data.u64 = ud};

	return epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void tern_conn_epoll_del(struct tern_conn_epoll *e, int fd)
{
	(void)epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
}
