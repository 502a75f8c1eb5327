/* What the engines of connections share (conn_ring.c over io_uring,
 * conn_epoll.c over epoll): the lending of read buffers, the read into a
 * connection's own memory, the backend socket and the client's address.
 *
 * Lending: an idle connection holds no buffer memory. A recv of an empty
 * buffer reads into memory the engine owns (io_uring: a provided buffer
 * the kernel picks; epoll: the worker's scratch buffer), which the
 * connection's buffer borrows while the completion is handled; after the
 * event (struct tern_conn_ops.return_buffers) the engine takes it back,
 * and bytes the connection still needs (a partial record, data waiting
 * for room on the other side) move to memory of its own: one copy, only
 * in that case. Worker thread only. */
#ifndef TERN_CONN_ENGINE_H
#define TERN_CONN_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tern/conn.h"

/* A read buffer's dealings with the engine's memory. */
struct tern_conn_lend {
	bool lent;   /* the buffer borrows the engine's memory `id` */
	uint16_t id; /* the engine's name for it (the ring's buffer id) */
};

/* The buffer side's recv reads into: cin for the client, b2c for the
 * backend. */
static inline struct tern_buf *tern_conn_read_buf(struct tern_conn *c, enum tern_side side)
{
	return side == TERN_SIDE_CLIENT ? &c->cin : &c->b2c.buf;
}

/* Hands the engine's memory back once the connection is done with it. */
typedef void tern_conn_lend_release_fn(struct tern_conn *c, uint16_t id);

/* A recv completion read cap bytes' worth into the engine's memory at
 * data: b, which holds no memory, borrows it, empty, for the completion
 * to fill as if the recv had been into b. */
void tern_conn_engine_borrow(struct tern_buf *b, struct tern_conn_lend *lend, uint8_t *data,
			     uint32_t cap, uint16_t id);

/* Takes back what b borrowed, if anything, and release()s it. Bytes c
 * still holds in it move to memory of its own (--buffer-size, or their
 * length if more); a closed connection's are dropped. Returns 0, or
 * -ENOMEM when such bytes were lost (the connection must end). */
__attribute__((warn_unused_result))
int tern_conn_engine_give_back(struct tern_conn *c, struct tern_buf *b,
			       struct tern_conn_lend *lend, tern_conn_lend_release_fn *release);

/* struct tern_conn_ops.return_buffers over both sides' lends (by side). */
__attribute__((warn_unused_result))
int tern_conn_engine_return_buffers(struct tern_conn *c, struct tern_conn_lend lend[2],
				    tern_conn_lend_release_fn *release);

/* Readies b, which holds bytes or memory, to be read into: its own
 * memory (--buffer-size) reserved, compacted when its tail is full, and
 * pinned while the read is in flight. Returns 1 with the free tail to
 * read into, 0 when b has no room (nothing pinned), or -ENOMEM. */
__attribute__((warn_unused_result))
int tern_conn_engine_own_tail(struct tern_conn *c, struct tern_buf *b);

/* A stream socket for c's backend of family, close-on-exec, with
 * TCP_NODELAY on TCP (TLS already batches; small records must not wait for
 * Nagle) and --tcp-keepalive (tern_sock_keepalive). type_flags adds
 * SOCK_NONBLOCK for epoll. Returns the fd or -errno. */
__attribute__((warn_unused_result))
int tern_conn_engine_backend_socket(const struct tern_conn *c, int family, int type_flags);

/* ops->ack_now of both engines: TCP_QUICKACK on the client socket, which
 * sends an ACK the kernel was delaying at once. */
void tern_conn_engine_ack_now(struct tern_conn *c);

/* struct tern_conn_ops.address: getsockname/getpeername of the client
 * socket. */
bool tern_conn_engine_address(struct tern_conn *c, bool local, struct sockaddr *out,
			      socklen_t len);

#endif
