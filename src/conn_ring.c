/* The io_uring engine of connections (conn_ring.h). */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "tern/conn.h"
#include "tern/conn_engine.h"
#include "tern/conn_ring.h"
#include "tern/ring.h"
#include "worker_internal.h"

struct ring_conn {
	struct tern_conn conn; /* first: the core allocates ops.conn_size */
	struct tern_conn_lend lend[2]; /* by side: cin, b2c; id is the ring's bid */
	/* The last provided recv of a side found every buffer taken: its next
	 * read goes into the connection's own memory. */
	bool no_provided[2];
	/* What the last recv of a side asked for, and whether it came back
	 * short: then the socket was drained, and the next recv waits for
	 * data before trying (tern_ring_recv's poll_first), as nginx waits
	 * for the next epoll event once a read returns less than asked. */
	uint32_t recv_asked[2];
	bool drained[2];
	/* The backend connect is in the ring: set when queued, cleared when
	 * its completion comes. The core's recv_busy and send_busy say which
	 * other operations are (ring_close). */
	bool connecting;
	struct __kernel_timespec connect_ts;
};

/* The operations on each side's socket, by enum tern_side. */
static const enum tern_op recv_op[2] = {[TERN_SIDE_CLIENT] = TERN_OP_C_RECV,
					[TERN_SIDE_BACKEND] = TERN_OP_B_RECV};
static const enum tern_op send_op[2] = {[TERN_SIDE_CLIENT] = TERN_OP_C_SEND,
					[TERN_SIDE_BACKEND] = TERN_OP_B_SEND};

static struct ring_conn *ring_conn(struct tern_conn *c)
{
	return (struct ring_conn *)c;
}

static struct tern_worker *conn_worker(const struct tern_conn *c)
{
	return tern_container_of(c->host, struct tern_worker, host);
}

static void release_provided(struct tern_conn *c, uint16_t bid)
{
	tern_ring_buffer_return(conn_worker(c)->ring, bid);
}

static int ring_return_buffers(struct tern_conn *c)
{
	return tern_conn_engine_return_buffers(c, ring_conn(c)->lend, release_provided);
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
	struct ring_conn *rc = ring_conn(c);
	uint64_t ud = tern_ud(c, recv_op[side]);
	int fd = c->sock[side].fd;

	if (tern_conn_engine_give_back(c, b, &rc->lend[side], release_provided) < 0)
		return -ENOMEM;
	if (!b->data && tern_ring_has_buffers(ring) && !rc->no_provided[side]) {
		rc->recv_asked[side] = tern_ring_buffer_size(ring);
		tern_ring_recv_provided(ring, fd, rc->drained[side], ud);
		return 1;
	}
	rc->no_provided[side] = false;
	int ret = tern_conn_engine_own_tail(c, b);
	if (ret <= 0)
		return ret;
	rc->recv_asked[side] = tern_buf_free_tail(b);
	tern_ring_recv(ring, fd, tern_buf_tail_ptr(b), tern_buf_free_tail(b), rc->drained[side], ud);
	return 1;
}

static void ring_send(struct tern_conn *c, enum tern_side side, const uint8_t *p, uint32_t len)
{
	tern_ring_send(conn_worker(c)->ring, c->sock[side].fd, p, len, tern_ud(c, send_op[side]));
}

static int ring_connect(struct tern_conn *c, const struct tern_addr *b, uint64_t timeout_ms)
{
	struct ring_conn *rc = ring_conn(c);
	int fd = tern_conn_engine_backend_socket(c, b->ss.ss_family, 0);

	if (fd < 0)
		return fd;
	c->sock[TERN_SIDE_BACKEND].fd = fd;
	rc->connecting = true;
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

/* Closing the descriptor alone would not end what waits on the socket:
 * each operation holds its own reference to the file. So each one queued
 * on this side is cancelled by its user_data, a hash lookup in the kernel
 * (tern_ring_cancel_one), and the connection is freed once their
 * completions are in (the core counts them, c->inflight). The close is
 * queued after the cancels and the kernel takes entries in order. */
static void ring_close(struct tern_conn *c, enum tern_side side)
{
	struct tern_ring *ring = conn_worker(c)->ring;
	const struct tern_conn_sock *s = &c->sock[side];

	if (s->recv_busy)
		tern_ring_cancel_one(ring, tern_ud(c, recv_op[side]));
	if (s->send_busy)
		tern_ring_cancel_one(ring, tern_ud(c, send_op[side]));
	if (side == TERN_SIDE_BACKEND && ring_conn(c)->connecting)
		tern_ring_cancel_one(ring, tern_ud(c, TERN_OP_B_CONNECT));
	tern_ring_close(ring, s->fd);
}

const struct tern_conn_ops tern_conn_ring_ops = {
	.conn_size = sizeof(struct ring_conn),
	.recv = ring_recv,
	.send = ring_send,
	.connect = ring_connect,
	.shutdown_wr = ring_shutdown_wr,
	.close = ring_close,
	.address = tern_conn_engine_address,
	.ack_now = tern_conn_engine_ack_now,
	.return_buffers = ring_return_buffers,
	.slot_freed = tern_worker_conn_slot_freed,
};

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
		rc->drained[side] = res >= 0 && (uint32_t)res < rc->recv_asked[side];
		if (tern_ring_cqe_buffer(flags, &bid)) {
			struct tern_ring *ring = w->ring;
			tern_conn_engine_borrow(tern_conn_read_buf(c, side), &rc->lend[side],
						tern_ring_buffer_take(ring, bid),
						tern_ring_buffer_size(ring), bid);
		} else if (res == -ENOBUFS) {
			/* No provided buffer was offered: the ring offers more,
			 * and the read is queued again. Only when every buffer is
			 * taken does this side read into memory of its own next
			 * time (held while it waits); nothing is lost either way. */
			tern_ring_buffers_missed(w->ring);
			rc->no_provided[side] = tern_ring_buffers_published(w->ring) == 0;
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
		/* Before the core sees it: it may queue the retry's connect. */
		rc->connecting = false;
		tern_conn_on_connect(c, res);
		break;
	default:
		abort();
	}
	tern_conn_settle(c);
}
