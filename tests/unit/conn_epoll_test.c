/* The epoll engine of connections (conn_epoll.h) against its contract, on
 * real sockets: UNIX socket pairs for the client side, loopback TCP for
 * the backend connect.
 *
 * The core's side of the contract is played here: tern_conn_on_recv,
 * _on_send, _on_connect, tern_conn_settle and tern_conn_check (and the
 * worker's tern_worker_conn_slot_freed) are defined in this file, doing
 * what conn.c does with a completion's bookkeeping (inflight, busy flags,
 * the buffer's tail and pin, settling lent buffers, freeing a closed
 * connection) and recording each completion. The linker takes them
 * instead of libtern_core's conn.c and worker.c, which nothing else here
 * pulls in. The loop is the worker's: tern_conn_epoll_wait, then
 * tern_conn_epoll_run.
 *
 * Checked: a posted operation completes only from the loop, never inside
 * the post (nor a close); a read of a buffer with no memory waits without
 * any, lands byte-exact in the lent scratch buffer, and what the
 * connection keeps of it (a partial record) moves to memory of its own,
 * which the next read appends to (and without a scratch buffer every read
 * goes into its own memory); EAGAIN waits for the socket's edge; a
 * close completes what was pending with -ECANCELED and the connection is
 * freed after; a send completes with what the socket took; EOF is 0; a
 * connect to a closed port fails with -ECONNREFUSED, and one that gets no
 * answer gives up at its timeout with -ECANCELED. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "tern/clock.h"
#include "tern/conn.h"
#include "tern/conn_epoll.h"
#include "tern/worker.h"

/* ---- The core's side, recorded ----------------------------------------- */

enum kind { GOT_RECV, GOT_SEND, GOT_CONNECT };

struct completion {
	enum kind kind;
	enum tern_side side;
	int32_t res;
	const uint8_t *data;  /* recv: where the buffer's bytes were */
	char bytes[64];       /* recv: the bytes the buffer held, NUL-ended */
};

static struct tern_config cfg;
static struct tern_conn_host host;
static struct tern_conn_epoll *engine;
static bool in_post;           /* the test is inside an ops call */
static bool completed_in_post; /* a completion came inside one */
static struct completion got[32];
static unsigned num_got;
static uint32_t keep_after_recv; /* bytes the "core" leaves in the buffer */
static unsigned num_freed, num_slots_freed;

static struct tern_buf *read_buf(struct tern_conn *c, enum tern_side side)
{
	return side == TERN_SIDE_CLIENT ? &c->cin : &c->b2c.buf;
}

static struct completion *record(enum kind kind, enum tern_side side, int32_t res)
{
	struct completion *r = &got[num_got < 32 ? num_got : 31];
	if (in_post)
		completed_in_post = true;
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->side = side;
	r->res = res;
	num_got++;
	return r;
}

void tern_conn_check(const struct tern_conn *c)
{
	if (c->magic != TERN_CONN_MAGIC)
		abort();
}

void tern_conn_on_recv(struct tern_conn *c, enum tern_side side, int32_t res)
{
	struct tern_buf *b = read_buf(c, side);
	struct completion *r = record(GOT_RECV, side, res);
	uint32_t len;

	CHECK(c->inflight > 0 && c->sock[side].recv_busy);
	c->inflight--;
	c->sock[side].recv_busy = false;
	if (res > 0)
		tern_buf_produce(b, (uint32_t)res);
	tern_buf_unpin(b);
	len = tern_buf_len(b);
	r->data = b->data;
	if (len > 0 && len < sizeof(r->bytes))
		memcpy(r->bytes, tern_buf_head_ptr(b), len);
	/* The core takes what makes whole records and keeps the rest. */
	if (len > keep_after_recv)
		tern_buf_consume(b, len - keep_after_recv);
}

void tern_conn_on_send(struct tern_conn *c, enum tern_side side, int32_t res)
{
	record(GOT_SEND, side, res);
	CHECK(c->inflight > 0 && c->sock[side].send_busy);
	c->inflight--;
	c->sock[side].send_busy = false;
}

void tern_conn_on_connect(struct tern_conn *c, int32_t res)
{
	record(GOT_CONNECT, TERN_SIDE_BACKEND, res);
	CHECK(c->inflight > 0);
	c->inflight--;
}

void tern_conn_settle(struct tern_conn *c)
{
	CHECK_EQ_INT(host.ops->return_buffers(c), 0);
	tern_buf_release_if_empty(&c->cin);
	tern_buf_release_if_empty(&c->b2c.buf);
	if (c->phase != TERN_PHASE_CLOSED || c->inflight > 0)
		return;
	tern_buf_free(&c->cin);
	tern_buf_free(&c->b2c.buf);
	c->magic = 0;
	free(c);
	num_freed++;
	host.ops->slot_freed(&host);
}

void tern_worker_conn_slot_freed(struct tern_conn_host *h)
{
	CHECK(h == &host);
	num_slots_freed++;
}

/* ---- Driving it -------------------------------------------------------- */

static struct tern_conn *new_conn(int client_fd)
{
	struct tern_conn *c = calloc(1, tern_conn_epoll_ops.conn_size);
	c->magic = TERN_CONN_MAGIC;
	c->host = &host;
	c->phase = TERN_PHASE_STREAMING;
	c->sock[TERN_SIDE_CLIENT].fd = client_fd;
	c->sock[TERN_SIDE_BACKEND].fd = -1;
	return c;
}

static int post_recv(struct tern_conn *c, enum tern_side side)
{
	in_post = true;
	int ret = host.ops->recv(c, side, read_buf(c, side));
	in_post = false;
	if (ret > 0) {
		c->inflight++;
		c->sock[side].recv_busy = true;
	}
	return ret;
}

static void post_send(struct tern_conn *c, enum tern_side side, const void *p, uint32_t len)
{
	c->inflight++;
	c->sock[side].send_busy = true;
	in_post = true;
	host.ops->send(c, side, p, len);
	in_post = false;
}

static int post_connect(struct tern_conn *c, const struct tern_addr *addr, uint64_t timeout_ms)
{
	host.now_ms = tern_clock_ms(); /* the deadline counts from now */
	in_post = true;
	int ret = host.ops->connect(c, addr, timeout_ms);
	in_post = false;
	if (ret == 0)
		c->inflight++;
	return ret;
}

/* The core closes a side (the connection's end: phase CLOSED first). */
static void close_side(struct tern_conn *c, enum tern_side side)
{
	in_post = true;
	host.ops->close(c, side);
	in_post = false;
	c->sock[side].fd = -1;
}

/* Ends a connection with nothing in flight: freed at once. */
static void end_idle(struct tern_conn *c, int peer)
{
	c->phase = TERN_PHASE_CLOSED;
	close_side(c, TERN_SIDE_CLIENT);
	tern_conn_settle(c);
	close(peer);
}

static void ignore_event(void *ctx, uint64_t ud, uint32_t events)
{
	(void)ctx, (void)ud, (void)events;
	CHECK(!"an event for something that is not a connection");
}

/* One loop iteration, waiting at most timeout_ms (less for a deadline). */
static void loop_once(int timeout_ms)
{
	uint64_t now = tern_clock_ms();
	struct tern_conn_epoll *e = host.engine;
	uint64_t next = tern_conn_epoll_next_deadline(e);

	if (tern_conn_epoll_busy(e))
		timeout_ms = 0;
	else if (next != TERN_TIMER_NEVER && (int64_t)(next - now) < timeout_ms)
		timeout_ms = next > now ? (int)(next - now) : 0;
	CHECK(tern_conn_epoll_wait(e, timeout_ms, ignore_event, NULL) >= 0);
	host.now_ms = tern_clock_ms();
	tern_conn_epoll_run(e, host.now_ms);
}

/* Runs the loop until `want` completions in all, or max_ms passed. */
static void loop_until(unsigned want, unsigned max_ms)
{
	uint64_t give_up = tern_clock_ms() + max_ms;
	while (num_got < want && tern_clock_ms() < give_up)
		loop_once(20);
}

static void pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
}

/* ---- The cases ------------------------------------------------------- */

/* Data waiting before the recv is posted: still completed only by the
 * loop, through the lent scratch buffer; the three bytes the core keeps
 * move to memory of its own, and the next read appends to them there. */
static void test_recv_lent_then_own(void)
{
	int sv[2];
	pair(sv);
	struct tern_conn *c = new_conn(sv[0]);
	unsigned base = num_got;

	CHECK_EQ_INT(write(sv[1], "hello world", 11), 11);
	CHECK_EQ_INT(post_recv(c, TERN_SIDE_CLIENT), 1);
	CHECK_EQ_UINT(num_got, base);
	CHECK(c->cin.data == NULL); /* waiting holds no memory */
	CHECK(tern_conn_epoll_busy(engine));

	keep_after_recv = 3;
	loop_until(base + 1, 1000);
	CHECK_EQ_UINT(num_got, base + 1);
	CHECK_EQ_INT(got[base].res, 11);
	CHECK_EQ_STR(got[base].bytes, "hello world");
	const uint8_t *scratch = got[base].data;
	/* Settled: the scratch buffer went back, "rld" is the connection's. */
	CHECK(c->cin.data != NULL && c->cin.data != scratch);
	CHECK_EQ_UINT(tern_buf_len(&c->cin), 3);
	CHECK(c->cin.data && memcmp(tern_buf_head_ptr(&c->cin), "rld", 3) == 0);
	CHECK(!c->cin.pinned);

	/* The partial record needs more: read into its own memory. */
	const uint8_t *own = c->cin.data;
	CHECK_EQ_INT(post_recv(c, TERN_SIDE_CLIENT), 1);
	CHECK(c->cin.pinned);
	CHECK_EQ_INT(write(sv[1], "!!", 2), 2);
	keep_after_recv = 0;
	loop_until(base + 2, 1000);
	CHECK_EQ_UINT(num_got, base + 2);
	CHECK_EQ_INT(got[base + 1].res, 2);
	CHECK_EQ_STR(got[base + 1].bytes, "rld!!");
	CHECK(got[base + 1].data == own);
	CHECK(c->cin.data == NULL); /* all taken: nothing held */

	/* The scratch buffer serves the next empty read again. */
	CHECK_EQ_INT(write(sv[1], "x", 1), 1);
	CHECK_EQ_INT(post_recv(c, TERN_SIDE_CLIENT), 1);
	loop_until(base + 3, 1000);
	CHECK_EQ_INT(got[base + 2].res, 1);
	CHECK(got[base + 2].data == scratch);
	CHECK(c->cin.data == NULL);

	end_idle(c, sv[1]);
}

/* Without a scratch buffer (--read-buffers 0) a read goes into the
 * connection's own memory, held while it waits. */
static void test_no_scratch(void)
{
	struct tern_conn_epoll *own_only;
	int sv[2];

	if (!CHECK_EQ_INT(tern_conn_epoll_new((uint32_t)cfg.buffer_size, false, &own_only), 0))
		return;
	host.engine = own_only;
	pair(sv);
	struct tern_conn *c = new_conn(sv[0]);
	unsigned base = num_got;

	CHECK_EQ_INT(post_recv(c, TERN_SIDE_CLIENT), 1);
	CHECK(c->cin.data != NULL && c->cin.pinned);
	const uint8_t *own = c->cin.data;
	CHECK_EQ_INT(write(sv[1], "abc", 3), 3);
	keep_after_recv = 0;
	loop_until(base + 1, 1000);
	CHECK_EQ_INT(got[base].res, 3);
	CHECK_EQ_STR(got[base].bytes, "abc");
	CHECK(got[base].data == own);
	end_idle(c, sv[1]);
	tern_conn_epoll_free(own_only);
	host.engine = engine;
}

/* Nothing to read: the try meets EAGAIN and the recv waits, with no
 * memory, for the socket's edge; so does one after a short read; EOF
 * completes 0, also when it came in the same edge as the last bytes. */
static void test_eagain_waits_for_edge(void)
{
	int sv[2];
	pair(sv);
	struct tern_conn *c = new_conn(sv[0]);
	unsigned base = num_got;

	CHECK_EQ_INT(post_recv(c, TERN_SIDE_CLIENT), 1);
	loop_once(0);
	CHECK_EQ_UINT(num_got, base);
	CHECK(!tern_conn_epoll_busy(engine)); /* waits for an edge, not a spin */
	loop_once(30);
	CHECK_EQ_UINT(num_got, base);
	CHECK(c->cin.data == NULL);

	CHECK_EQ_INT(write(sv[1], "ping", 4), 4);
	loop_until(base + 1, 1000);
	CHECK_EQ_UINT(num_got, base + 1);
	CHECK_EQ_INT(got[base].res, 4);
	CHECK_EQ_STR(got[base].bytes, "ping");

	CHECK_EQ_INT(post_recv(c, TERN_SIDE_CLIENT), 1);
	loop_once(0);
	CHECK_EQ_UINT(num_got, base + 1);
	shutdown(sv[1], SHUT_WR);
	loop_until(base + 2, 1000);
	CHECK_EQ_UINT(num_got, base + 2);
	CHECK_EQ_INT(got[base + 1].res, 0);
	end_idle(c, sv[1]);

	/* The last bytes and the end, reported in one edge before the read:
	 * the read takes the bytes, short, and the end still follows with no
	 * edge to come. */
	pair(sv);
	c = new_conn(sv[0]);
	CHECK_EQ_INT(post_recv(c, TERN_SIDE_CLIENT), 1);
	loop_once(0); /* registered, nothing there: waits for an edge */
	CHECK_EQ_INT(write(sv[1], "bye", 3), 3);
	shutdown(sv[1], SHUT_WR);
	loop_until(base + 3, 1000);
	CHECK_EQ_INT(got[base + 2].res, 3);
	CHECK_EQ_INT(post_recv(c, TERN_SIDE_CLIENT), 1);
	loop_until(base + 4, 1000);
	CHECK_EQ_UINT(num_got, base + 4);
	CHECK_EQ_INT(got[base + 3].res, 0);
	end_idle(c, sv[1]);
}

/* A send completes with what the socket took; one that finds the socket
 * full waits for room; a close completes the waiting send and recv with
 * -ECANCELED, from the loop, and the connection is freed after the last. */
static void test_send_and_close_cancels(void)
{
	int sv[2];
	pair(sv);
	struct tern_conn *c = new_conn(sv[0]);
	unsigned base = num_got;
	size_t big_len = 8u << 20;
	uint8_t *big = calloc(1, big_len);
	char tmp[8] = {0};

	post_send(c, TERN_SIDE_CLIENT, "abc", 3);
	CHECK_EQ_UINT(num_got, base);
	loop_until(base + 1, 1000);
	CHECK_EQ_INT(got[base].kind, GOT_SEND);
	CHECK_EQ_INT(got[base].res, 3);
	CHECK_EQ_INT(read(sv[1], tmp, sizeof(tmp)), 3);
	CHECK_EQ_STR(tmp, "abc");

	/* More than the socket holds: a part goes, the rest waits. */
	post_send(c, TERN_SIDE_CLIENT, big, (uint32_t)big_len);
	loop_until(base + 2, 1000);
	CHECK(got[base + 1].res > 0 && (size_t)got[base + 1].res < big_len);
	size_t off = (size_t)got[base + 1].res;
	post_send(c, TERN_SIDE_CLIENT, big + off, (uint32_t)(big_len - off));
	CHECK_EQ_INT(post_recv(c, TERN_SIDE_CLIENT), 1);
	loop_once(20);
	CHECK_EQ_UINT(num_got, base + 2);

	c->phase = TERN_PHASE_CLOSED;
	unsigned freed = num_freed;
	close_side(c, TERN_SIDE_CLIENT);
	tern_conn_settle(c);
	CHECK_EQ_UINT(num_got, base + 2); /* never inside the close */
	CHECK_EQ_UINT(num_freed, freed);
	loop_until(base + 4, 1000);
	CHECK_EQ_UINT(num_got, base + 4);
	for (unsigned i = base + 2; i < base + 4 && i < 32; i++)
		CHECK_EQ_INT(got[i].res, -ECANCELED);
	CHECK(got[base + 2].kind != got[base + 3].kind);
	CHECK_EQ_UINT(num_freed, freed + 1);
	CHECK(!tern_conn_epoll_busy(engine));
	close(sv[1]);
	free(big);
}

static struct tern_addr loopback_addr(uint16_t port)
{
	struct tern_addr a = {.ss_len = sizeof(struct sockaddr_in)};
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(a.text, sizeof(a.text), "127.0.0.1:%u", port);
	return a;
}

/* A loopback listener with the given backlog; its port in *port. */
static int listener(int backlog, uint16_t *port)
{
	struct tern_addr a = loopback_addr(0);
	socklen_t len = sizeof(a.ss);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a.ss, a.ss_len) < 0 || listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a.ss, &len) < 0)
		abort();
	*port = ntohs(((struct sockaddr_in *)&a.ss)->sin_port);
	return fd;
}

/* A listener that answers no SYN: its accept queue (backlog 0 takes one
 * connection) is full of fillers, so the kernel drops a new connect's
 * SYN, and the connect would wait a second for the retransmission. */
#define NUM_FILLERS 3
static int full_listener(struct tern_addr *out, int fillers[NUM_FILLERS])
{
	uint16_t port;
	int lfd = listener(0, &port);

	*out = loopback_addr(port);
	for (int i = 0; i < NUM_FILLERS; i++) {
		fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		(void)connect(fillers[i], (struct sockaddr *)&out->ss, out->ss_len);
	}
	usleep(50000); /* the first one's handshake fills the queue */
	return lfd;
}

/* The backend side: a connect that succeeds, one refused, one timed out. */
static void test_connect(void)
{
	int sv[2];
	pair(sv);
	struct tern_conn *c = new_conn(sv[0]);
	unsigned base = num_got;
	uint16_t port;

	/* Refused: a port nothing listens on. */
	int gone = listener(1, &port);
	close(gone);
	struct tern_addr closed_port = loopback_addr(port);
	CHECK_EQ_INT(post_connect(c, &closed_port, 1000), 0);
	CHECK_EQ_UINT(num_got, base);
	CHECK(c->sock[TERN_SIDE_BACKEND].fd >= 0);
	loop_until(base + 1, 1000);
	CHECK_EQ_UINT(num_got, base + 1);
	CHECK_EQ_INT(got[base].kind, GOT_CONNECT);
	CHECK_EQ_INT(got[base].res, -ECONNREFUSED);
	close_side(c, TERN_SIDE_BACKEND);

	/* Connected, and then a send and a recv on the backend side. */
	int lfd = listener(4, &port);
	struct tern_addr up = loopback_addr(port);
	CHECK_EQ_INT(post_connect(c, &up, 1000), 0);
	loop_until(base + 2, 1000);
	CHECK_EQ_INT(got[base + 1].res, 0);
	int peer = accept(lfd, NULL, NULL);
	CHECK(peer >= 0);
	post_send(c, TERN_SIDE_BACKEND, "req", 3);
	CHECK_EQ_INT(post_recv(c, TERN_SIDE_BACKEND), 1);
	loop_until(base + 3, 1000);
	CHECK_EQ_INT(got[base + 2].kind, GOT_SEND);
	CHECK_EQ_INT(write(peer, "resp", 4), 4);
	loop_until(base + 4, 1000);
	CHECK_EQ_INT(got[base + 3].kind, GOT_RECV);
	CHECK_EQ_INT(got[base + 3].side, TERN_SIDE_BACKEND);
	CHECK_EQ_STR(got[base + 3].bytes, "resp");
	close_side(c, TERN_SIDE_BACKEND);
	close(peer);
	close(lfd);

	/* No answer: it gives up at its timeout, 100 ms. */
	int fillers[NUM_FILLERS];
	struct tern_addr full;
	lfd = full_listener(&full, fillers);
	uint64_t start = tern_clock_ms();
	CHECK_EQ_INT(post_connect(c, &full, 100), 0);
	CHECK(tern_conn_epoll_next_deadline(engine) != TERN_TIMER_NEVER);
	loop_until(base + 5, 2000);
	uint64_t took = tern_clock_ms() - start;
	CHECK_EQ_UINT(num_got, base + 5);
	CHECK_EQ_INT(got[base + 4].kind, GOT_CONNECT);
	CHECK_EQ_INT(got[base + 4].res, -ECANCELED);
	if (!CHECK(took >= 100 && took < 900))
		fprintf(stderr, "    took %llu ms\n", (unsigned long long)took);
	CHECK_EQ_UINT(tern_conn_epoll_next_deadline(engine), TERN_TIMER_NEVER);
	close_side(c, TERN_SIDE_BACKEND);

	/* A connect under way when its side closes: -ECANCELED, from the
	 * loop, and its deadline gone with it. */
	CHECK_EQ_INT(post_connect(c, &full, 5000), 0);
	loop_once(10);
	CHECK_EQ_UINT(num_got, base + 5);
	c->phase = TERN_PHASE_CLOSED;
	close_side(c, TERN_SIDE_BACKEND);
	close_side(c, TERN_SIDE_CLIENT);
	CHECK_EQ_UINT(num_got, base + 5);
	CHECK_EQ_UINT(tern_conn_epoll_next_deadline(engine), TERN_TIMER_NEVER);
	loop_until(base + 6, 1000);
	CHECK_EQ_INT(got[base + 5].kind, GOT_CONNECT);
	CHECK_EQ_INT(got[base + 5].res, -ECANCELED);
	for (int i = 0; i < NUM_FILLERS; i++)
		close(fillers[i]);
	close(lfd);
	close(sv[1]);
}

int main(void)
{
	cfg.buffer_size = 64;
	/* Not tern_conn_host_init: conn.c stays out of the link. */
	host.ops = &tern_conn_epoll_ops;
	host.cfg = &cfg;
	host.now_ms = tern_clock_ms();
	if (!CHECK_EQ_INT(tern_conn_epoll_new((uint32_t)cfg.buffer_size, true, &engine), 0))
		return check_summary();
	host.engine = engine;

	test_recv_lent_then_own();
	test_no_scratch();
	test_eagain_waits_for_edge();
	test_send_and_close_cancels();
	test_connect();

	CHECK(!completed_in_post);
	CHECK_EQ_UINT(num_freed, 6);
	CHECK_EQ_UINT(num_slots_freed, 6);
	tern_conn_epoll_free(engine);
	return check_summary();
}
