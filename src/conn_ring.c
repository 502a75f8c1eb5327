/* The io_uring engine of connections (conn_ring.h). */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tern/conn.h"
#include "tern/conn_ring.h"
#include "tern/log.h"
#include "tern/ring.h"
#include "tern/server.h"
#include "worker_internal.h"

/* A read buffer's dealings with the worker's provided buffers. */
struct lending {
	bool lent;        /* the buffer is the ring's buffer bid, borrowed */
	bool no_provided; /* the last provided recv found every buffer taken:
			   * the next reads into the connection's own memory */
	uint16_t bid;
};

struct ring_conn {
	struct tern_conn conn; /* first: the core allocates ops.conn_size */
	struct lending lend[2]; /* by side: cin, b2c */
	struct __kernel_timespec connect_ts;
};

static struct ring_conn *ring_conn(struct tern_conn *c)
{
	return (struct ring_conn *)c;
}

static struct tern_worker *conn_worker(const struct tern_conn *c)
{
	return tern_container_of(c->host, struct tern_worker, host);
}

static struct tern_buf *read_buf(struct tern_conn *c, enum tern_side side)
{
	return side == TERN_SIDE_CLIENT ? &c->cin : &c->b2c.buf;
}

/* A recv completion that took a provided buffer: b borrows it, empty,
 * for the handler to fill as if the recv had been into b. */
static void borrow(struct tern_conn *c, struct tern_buf *b, struct lending *lend, uint16_t bid)
{
	struct tern_ring *ring = conn_worker(c)->ring;

	assert(!b->data && !lend->lent);
	b->data = tern_ring_buffer_take(ring, bid);
	b->cap = tern_ring_buffer_size(ring);
	b->head = b->tail = 0;
	lend->lent = true;
	lend->bid = bid;
}

/* Gives a borrowed buffer back to the ring. Bytes the connection still
 * needs (a partial record; data waiting for room on the other side) move
 * to memory of its own first: one copy, only in that case. */
static int give_back(struct tern_conn *c, struct tern_buf *b, struct lending *lend)
{
	bool closed = c->phase == TERN_PHASE_CLOSED;
	uint32_t len = tern_buf_len(b);
	uint32_t cap = (uint32_t)c->host->cfg->buffer_size;
	uint8_t *own = NULL;

	if (!lend->lent)
		return 0;
	if (len > 0 && !closed) {
		if (cap < len)
			cap = len;
		own = malloc(cap);
		if (own)
			memcpy(own, tern_buf_head_ptr(b), len);
	}
	lend->lent = false;
	tern_ring_buffer_return(conn_worker(c)->ring, lend->bid);
	b->data = own;
	b->cap = own ? cap : 0;
	b->head = 0;
	b->tail = own ? len : 0;
	/* Out of memory: the bytes are lost, so the connection must end. */
	return len > 0 && !closed && !own ? -ENOMEM : 0;
}

static int ring_return_buffers(struct tern_conn *c)
{
	struct ring_conn *rc = ring_conn(c);
	int a = give_back(c, &c->cin, &rc->lend[TERN_SIDE_CLIENT]);
	int b = give_back(c, &c->b2c.buf, &rc->lend[TERN_SIDE_BACKEND]);
	return a < 0 ? a : b;
}

/* An idle connection holds no buffer memory: an empty buffer is read
 * through a provided buffer of the ring, chosen by the kernel when data
 * arrives. A buffer that holds bytes reads into its own memory (the
 * connection asks only when those bytes need more: a partial record), and
 * so does a side whose last provided recv found every buffer taken, and
 * every read when the ring has none. */
static int ring_recv(struct tern_conn *c, enum tern_side side, struct tern_buf *b)
{
	struct tern_ring *ring = conn_worker(c)->ring;
	struct lending *lend = &ring_conn(c)->lend[side];
	uint64_t ud = tern_ud(c, side == TERN_SIDE_CLIENT ? TERN_OP_C_RECV : TERN_OP_B_RECV);
	int fd = c->sock[side].fd;

	if (give_back(c, b, lend) < 0)
		return -ENOMEM;
	if (!b->data && tern_ring_has_buffers(ring) && !lend->no_provided) {
		tern_ring_recv_provided(ring, fd, ud);
		return 1;
	}
	lend->no_provided = false;
	if (tern_buf_reserve(b, (uint32_t)c->host->cfg->buffer_size) < 0)
		return -ENOMEM;
	if (tern_buf_free_tail(b) == 0)
		tern_buf_compact(b);
	if (tern_buf_free_tail(b) == 0)
		return 0;
	b->pinned = true;
	tern_ring_recv(ring, fd, tern_buf_tail_ptr(b), tern_buf_free_tail(b), ud);
	return 1;
}

static void ring_send(struct tern_conn *c, enum tern_side side, const uint8_t *p, uint32_t len)
{
	enum tern_op op = side == TERN_SIDE_CLIENT ? TERN_OP_C_SEND : TERN_OP_B_SEND;
	tern_ring_send(conn_worker(c)->ring, c->sock[side].fd, p, len, tern_ud(c, op));
}

static int ring_connect(struct tern_conn *c, const struct tern_addr *b, uint64_t timeout_ms)
{
	struct ring_conn *rc = ring_conn(c);
	int fd = socket(b->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (b->ss.ss_family != AF_UNIX) {
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	c->sock[TERN_SIDE_BACKEND].fd = fd;
	rc->connect_ts.tv_sec = (long long)(timeout_ms / 1000);
	rc->connect_ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
	tern_ring_connect(conn_worker(c)->ring, fd, (const struct sockaddr *)&b->ss, b->ss_len,
			  &rc->connect_ts, tern_ud(c, TERN_OP_B_CONNECT));
	return 0;
}

/* shutdown(2) never blocks, while IORING_OP_SHUTDOWN always goes to an
 * io-wq thread: the direct call is the cheap one. */
static void ring_shutdown_wr(struct tern_conn *c, enum tern_side side)
{
	(void)shutdown(c->sock[side].fd, SHUT_WR);
}

static void ring_close(struct tern_conn *c, enum tern_side side)
{
	struct tern_ring *ring = conn_worker(c)->ring;
	tern_ring_cancel_fd(ring, c->sock[side].fd);
	tern_ring_close(ring, c->sock[side].fd);
}

static bool ring_address(struct tern_conn *c, bool local, struct sockaddr *out, socklen_t len)
{
	int fd = c->sock[TERN_SIDE_CLIENT].fd;
	if (fd < 0)
		return false;
	return (local ? getsockname(fd, out, &len) : getpeername(fd, out, &len)) == 0;
}

static void ring_slot_freed(struct tern_conn_host *h)
{
	struct tern_worker *w = tern_container_of(h, struct tern_worker, host);
	atomic_fetch_sub_explicit(&w->srv->conns_open, 1, memory_order_relaxed);
	tern_worker_slot_freed(w);
}

const struct tern_conn_ops tern_conn_ring_ops = {
	.conn_size = sizeof(struct ring_conn),
	.recv = ring_recv,
	.send = ring_send,
	.connect = ring_connect,
	.shutdown_wr = ring_shutdown_wr,
	.close = ring_close,
	.address = ring_address,
	.return_buffers = ring_return_buffers,
	.slot_freed = ring_slot_freed,
};

void tern_conn_ring_accept(struct tern_worker *w, int fd)
{
	int one = 1;

	/* Small records must not wait for Nagle: TLS already batches. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (tern_conn_accept(&w->host, fd) == 0)
		return;
	tern_log(TERN_LOG_WARN, "worker %u: out of memory for a new connection", w->index);
	tern_ring_close(w->ring, fd);
	ring_slot_freed(&w->host);
}

void tern_conn_ring_complete(uint64_t ud, enum tern_op op, int32_t res, uint32_t flags)
{
	struct tern_conn *c = (struct tern_conn *)(uintptr_t)(ud & ~(uint64_t)TERN_OP_MASK);
	struct ring_conn *rc = ring_conn(c);
	uint16_t bid;

	tern_conn_check(c);
	switch (op) {
	case TERN_OP_C_RECV:
	case TERN_OP_B_RECV: {
		enum tern_side side = op == TERN_OP_C_RECV ? TERN_SIDE_CLIENT : TERN_SIDE_BACKEND;
		struct tern_worker *w = conn_worker(c);
		if (tern_ring_cqe_buffer(flags, &bid)) {
			borrow(c, read_buf(c, side), &rc->lend[side], bid);
		} else if (res == -ENOBUFS) {
			/* No provided buffer was offered: the ring offers more,
			 * and the read is queued again. Only when every buffer is
			 * taken does this side read into memory of its own next
			 * time (held while it waits); nothing is lost either way. */
			tern_ring_buffers_missed(w->ring);
			rc->lend[side].no_provided = tern_ring_buffers_published(w->ring) == 0;
			tern_counter_add(&w->ctr.read_buffer_misses, 1);
		}
		tern_conn_on_recv(c, side, res);
		break;
	}
	case TERN_OP_C_SEND:
		tern_conn_on_send(c, TERN_SIDE_CLIENT, res);
		break;
	case TERN_OP_B_SEND:
		tern_conn_on_send(c, TERN_SIDE_BACKEND, res);
		break;
	case TERN_OP_B_CONNECT:
		tern_conn_on_connect(c, res);
		break;
	default:
		abort();
	}
	tern_conn_settle(c);
}
