/* What the engines of connections share (conn_engine.h). */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tern/conn_engine.h"
#include "tern/log.h"
#include "tern/sock.h"

void tern_conn_engine_borrow(struct tern_buf *b, struct tern_conn_lend *lend, uint8_t *data,
			     uint32_t cap, uint16_t id)
{
	assert(!b->data && !lend->lent);
	b->data = data;
	b->cap = cap;
	b->head = b->tail = 0;
	lend->lent = true;
	lend->id = id;
}

int tern_conn_engine_give_back(struct tern_conn *c, struct tern_buf *b,
			       struct tern_conn_lend *lend, tern_conn_lend_release_fn *release)
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
	release(c, lend->id);
	b->data = own;
	b->cap = own ? cap : 0;
	b->head = 0;
	b->tail = own ? len : 0;
	/* Out of memory: the bytes are lost, so the connection must end. */
	return len > 0 && !closed && !own ? -ENOMEM : 0;
}

int tern_conn_engine_return_buffers(struct tern_conn *c, struct tern_conn_lend lend[2],
				    tern_conn_lend_release_fn *release)
{
	int a = tern_conn_engine_give_back(c, &c->cin, &lend[TERN_SIDE_CLIENT], release);
	int b = tern_conn_engine_give_back(c, &c->b2c.buf, &lend[TERN_SIDE_BACKEND], release);
	return a < 0 ? a : b;
}

int tern_conn_engine_own_tail(struct tern_conn *c, struct tern_buf *b)
{
	if (tern_buf_reserve(b, (uint32_t)c->host->cfg->buffer_size) < 0)
		return -ENOMEM;
	if (tern_buf_free_tail(b) == 0)
		tern_buf_compact(b);
	if (tern_buf_free_tail(b) == 0)
		return 0;
	b->pinned = true;
	return 1;
}

int tern_conn_engine_backend_socket(const struct tern_conn *c, int family, int type_flags)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);

	if (fd < 0)
		return -errno;
	if (family != AF_UNIX) {
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* Set before connect(2), so the first idle period starts with
		 * the connection. A refusal (it has none on TCP) costs only the
		 * probes: the connection goes on. */
		int ret = tern_sock_keepalive(fd, c->host->cfg->tcp_keepalive_ms);
		if (ret < 0)
			tern_log(TERN_LOG_DEBUG, "conn %llu: backend --tcp-keepalive: %s",
				 (unsigned long long)c->id, strerror(-ret));
	}
	return fd;
}

void tern_conn_engine_ack_now(struct tern_conn *c)
{
	int fd = c->sock[TERN_SIDE_CLIENT].fd;
	int one = 1;

	/* A failure (a UNIX socket from an inherited listener) only leaves the
	 * ACK to the timer. */
	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

bool tern_conn_engine_address(struct tern_conn *c, bool local, struct sockaddr *out,
			      socklen_t len)
{
	int fd = c->sock[TERN_SIDE_CLIENT].fd;
	if (fd < 0)
		return false;
	return (local ? getsockname(fd, out, &len) : getpeername(fd, out, &len)) == 0;
}
