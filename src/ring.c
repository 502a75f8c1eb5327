/* io_uring through liburing, for one worker thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <liburing.h>

#include "tern/log.h"
#include "tern/ring.h"

const char *tern_ring_library_version(void)
{
	return TERN_LIBURING_VERSION;
}

/* The provided-buffer group every recv_provided draws from. */
#define PROVIDED_GROUP 0
/* Provided buffers published to the kernel at the least, and the ticks
 * without a miss after which the published set halves. */
#define WARM_MIN 4u
#define WARM_DECAY_TICKS 20u

/* The kernel takes provided buffers from the head of its ring and a
 * returned one goes to the tail, so with all of them published every recv
 * would land in the buffer used longest ago: a busy worker cycles through
 * all of them (64 × 16 KiB by default), out of the CPU's cache, and both
 * the kernel's copy into it and OpenSSL's read of it miss. So only `warm`
 * buffers are published at a time; the others wait on a stack, the one
 * returned last on top, and go in first. A recv that finds none published
 * (-ENOBUFS, tern_ring_buffers_missed) doubles `warm`; a second of ticks
 * without one halves it again. */
struct tern_ring {
	struct io_uring uring;
	/* Provided buffers (none when buf_ring is NULL). */
	struct io_uring_buf_ring *buf_ring;
	uint8_t *buf_base; /* the buffers, buf_size bytes each, back to back */
	uint32_t buf_size;
	unsigned buf_entries;   /* the kernel ring's size: a power of two */
	unsigned buf_count;     /* buffers in all */
	uint16_t *buf_stack;    /* ids not published and not taken, last returned on top */
	unsigned buf_stacked;
	unsigned buf_published; /* in the kernel ring, not yet taken by a recv */
	unsigned warm;          /* how many to keep published */
	unsigned quiet_ticks;   /* ticks since the last miss */
	/* The kernel takes IORING_RECVSEND_POLL_FIRST (tern_ring_recv). */
	bool poll_first_ok;
};

static struct io_uring_sqe *ring_sqe(struct tern_ring *ring);

int tern_ring_new(unsigned entries, struct tern_ring **out)
{
	struct tern_ring *ring = calloc(1, sizeof(*ring));
	struct io_uring_params p = {0};
	int ret;

	if (!ring)
		return -ENOMEM;
	/* One submitter, and completion work run only when this thread asks
	 * for completions: no cross-CPU task-work interrupts while the worker
	 * is busy. A larger completion queue absorbs multishot bursts. */
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = entries * 4;
	ret = io_uring_queue_init_params(entries, &ring->uring, &p);
	/* DEFER_TASKRUN came in 6.1, after POLL_FIRST (5.19): a kernel that
	 * takes the one takes the other. */
	ring->poll_first_ok = ret == 0;
	if (ret == -EINVAL) {
		/* Kernels before 6.1 lack DEFER_TASKRUN: run without it. */
		struct io_uring_params plain = {.flags = IORING_SETUP_CQSIZE,
						.cq_entries = entries * 4};
		ret = io_uring_queue_init_params(entries, &ring->uring, &plain);
	}
	if (ret < 0) {
		free(ring);
		return ret;
	}
	*out = ring;
	return 0;
}

void tern_ring_free(struct tern_ring *ring)
{
	if (!ring)
		return;
	/* Exiting the ring unregisters the buffer ring with it. */
	io_uring_queue_exit(&ring->uring);
	free(ring->buf_ring);
	free(ring->buf_base);
	free(ring->buf_stack);
	free(ring);
}

static uint8_t *buffer_at(const struct tern_ring *ring, uint16_t bid)
{
	return ring->buf_base + (size_t)bid * ring->buf_size;
}

static void buffer_publish(struct tern_ring *ring, uint16_t bid)
{
	io_uring_buf_ring_add(ring->buf_ring, buffer_at(ring, bid), ring->buf_size, bid,
			      io_uring_buf_ring_mask(ring->buf_entries), 0);
	io_uring_buf_ring_advance(ring->buf_ring, 1);
	ring->buf_published++;
}

static void buffers_fill(struct tern_ring *ring)
{
	while (ring->buf_published < ring->warm && ring->buf_stacked > 0)
		buffer_publish(ring, ring->buf_stack[--ring->buf_stacked]);
}

int tern_ring_provide_buffers(struct tern_ring *ring, unsigned count, uint32_t size)
{
	struct io_uring_buf_reg reg = {0};
	int ret;

	unsigned entries = 1;

	if (ring->buf_ring || count == 0 || count > 32768 || size == 0)
		return -EINVAL;
	/* The ring's size is a power of two; it may hold fewer buffers. */
	while (entries < count)
		entries *= 2;
	/* The kernel maps the ring's entries: page-aligned. The buffers are
	 * plain memory, touched (made resident) only as they are used. */
	if (posix_memalign((void **)&ring->buf_ring, 4096, entries * sizeof(struct io_uring_buf)))
		return -ENOMEM;
	ring->buf_base = malloc((size_t)count * size);
	ring->buf_stack = malloc(count * sizeof(*ring->buf_stack));
	if (!ring->buf_base || !ring->buf_stack) {
		ret = -ENOMEM;
		goto fail;
	}
	reg.ring_addr = (uint64_t)(uintptr_t)ring->buf_ring;
	reg.ring_entries = entries;
	reg.bgid = PROVIDED_GROUP;
	ret = io_uring_register_buf_ring(&ring->uring, &reg, 0);
	if (ret < 0)
		goto fail;
	ring->buf_size = size;
	ring->buf_entries = entries;
	ring->buf_count = count;
	io_uring_buf_ring_init(ring->buf_ring);
	/* Buffer 0 on top: the first ones used are the first in memory. */
	for (unsigned i = 0; i < count; i++)
		ring->buf_stack[i] = (uint16_t)(count - 1 - i);
	ring->buf_stacked = count;
	ring->warm = count < WARM_MIN ? count : WARM_MIN;
	buffers_fill(ring);
	return 0;
fail:
	free(ring->buf_ring);
	free(ring->buf_base);
	free(ring->buf_stack);
	ring->buf_ring = NULL;
	ring->buf_base = NULL;
	ring->buf_stack = NULL;
	return ret;
}

bool tern_ring_has_buffers(const struct tern_ring *ring)
{
	return ring->buf_ring != NULL;
}

uint32_t tern_ring_buffer_size(const struct tern_ring *ring)
{
	return ring->buf_size;
}

static void recv_poll_first(const struct tern_ring *ring, struct io_uring_sqe *sqe, bool poll_first)
{
	if (poll_first && ring->poll_first_ok)
		sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
}

void tern_ring_recv_provided(struct tern_ring *ring, int fd, bool poll_first, uint64_t ud)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);
	io_uring_prep_recv(sqe, fd, NULL, ring->buf_size, 0);
	recv_poll_first(ring, sqe, poll_first);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = PROVIDED_GROUP;
	io_uring_sqe_set_data64(sqe, ud);
}

bool tern_ring_cqe_buffer(uint32_t flags, uint16_t *bid)
{
	if (!(flags & IORING_CQE_F_BUFFER))
		return false;
	*bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
	return true;
}


uint8_t *tern_ring_buffer_take(struct tern_ring *ring, uint16_t bid)
{
	ring->buf_published--;
	buffers_fill(ring);
	return buffer_at(ring, bid);
}

void tern_ring_buffer_return(struct tern_ring *ring, uint16_t bid)
{
	/* On top of the stack, and so the next published: it is the warmest.
	 * Published at once only to keep the published set full. */
	ring->buf_stack[ring->buf_stacked++] = bid;
	buffers_fill(ring);
}

void tern_ring_buffers_missed(struct tern_ring *ring)
{
	ring->quiet_ticks = 0;
	ring->warm = ring->warm * 2 < ring->buf_count ? ring->warm * 2 : ring->buf_count;
	buffers_fill(ring);
}

void tern_ring_buffers_tick(struct tern_ring *ring)
{
	if (!ring->buf_ring || ring->warm <= WARM_MIN || ++ring->quiet_ticks < WARM_DECAY_TICKS)
		return;
	ring->quiet_ticks = 0;
	ring->warm = ring->warm / 2 > WARM_MIN ? ring->warm / 2 : WARM_MIN;
}

unsigned tern_ring_buffers_published(const struct tern_ring *ring)
{
	return ring->buf_published;
}

/* A free submission entry, submitting what is queued when the queue is
 * full. The kernel takes every entry on submit (they are copied), so the
 * second attempt always succeeds. */
static struct io_uring_sqe *ring_sqe(struct tern_ring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring->uring);
	while (!sqe) {
		int ret = io_uring_submit(&ring->uring);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			tern_log(TERN_LOG_ERROR, "io_uring submit: %d", ret);
		sqe = io_uring_get_sqe(&ring->uring);
	}
	return sqe;
}

void tern_ring_accept_multishot(struct tern_ring *ring, int fd, uint64_t ud)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);
	io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	io_uring_sqe_set_data64(sqe, ud);
}

void tern_ring_accept(struct tern_ring *ring, int fd, uint64_t ud)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);
	io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	io_uring_sqe_set_data64(sqe, ud);
}

void tern_ring_recv(struct tern_ring *ring, int fd, void *buf, size_t len, bool poll_first,
		    uint64_t ud)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);
	io_uring_prep_recv(sqe, fd, buf, len, 0);
	recv_poll_first(ring, sqe, poll_first);
	io_uring_sqe_set_data64(sqe, ud);
}

void tern_ring_send(struct tern_ring *ring, int fd, const void *buf, size_t len, uint64_t ud)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);
	io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud);
}

void tern_ring_read(struct tern_ring *ring, int fd, void *buf, size_t len, uint64_t ud)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);
	io_uring_prep_read(sqe, fd, buf, (unsigned)len, 0);
	io_uring_sqe_set_data64(sqe, ud);
}

void tern_ring_connect(struct tern_ring *ring, int fd, const struct sockaddr *addr,
		       socklen_t addr_len, struct __kernel_timespec *ts, uint64_t ud)
{
	/* Both entries must land in one submission for the link to hold. */
	if (io_uring_sq_space_left(&ring->uring) < 2)
		io_uring_submit(&ring->uring);
	struct io_uring_sqe *sqe = ring_sqe(ring);
	io_uring_prep_connect(sqe, fd, addr, addr_len);
	io_uring_sqe_set_data64(sqe, ud);
	sqe->flags |= IOSQE_IO_LINK;
	sqe = ring_sqe(ring);
	io_uring_prep_link_timeout(sqe, ts, 0);
	io_uring_sqe_set_data64(sqe, TERN_RING_UD_IGNORE);
}

/* ThreadSanitizer follows descriptors through its close() interceptor and
 * cannot see IORING_OP_CLOSE: once the kernel had closed a socket this way
 * and another thread got the same number (the metrics thread's opendir of
 * /proc/self/fd), it reported a race between the two creations, and with
 * halt_on_error the process died. Its builds close directly; what is still
 * queued on the descriptor holds its own reference to the file and is
 * cancelled by user_data either way. */
#if defined(__SANITIZE_THREAD__)
#define RING_CLOSE_DIRECTLY 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RING_CLOSE_DIRECTLY 1
#endif
#endif

void tern_ring_close(struct tern_ring *ring, int fd)
{
#ifdef RING_CLOSE_DIRECTLY
	(void)ring;
	(void)close(fd);
#else
	struct io_uring_sqe *sqe = ring_sqe(ring);
	io_uring_prep_close(sqe, fd);
	io_uring_sqe_set_data64(sqe, TERN_RING_UD_IGNORE);
#endif
}

/* Without IORING_ASYNC_CANCEL_ALL: the kernel stops at the first match
 * instead of searching on until it finds none (which, for the last
 * search, means every place an operation can wait). */
void tern_ring_cancel_one(struct tern_ring *ring, uint64_t target_ud)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);
	io_uring_prep_cancel64(sqe, target_ud, 0);
	io_uring_sqe_set_data64(sqe, TERN_RING_UD_IGNORE);
}

void tern_ring_cancel(struct tern_ring *ring, uint64_t target_ud)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);
	io_uring_prep_cancel64(sqe, target_ud, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, TERN_RING_UD_IGNORE);
}

void tern_ring_timeout(struct tern_ring *ring, struct __kernel_timespec *ts, uint64_t ud)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);
	io_uring_prep_timeout(sqe, ts, 0, 0);
	io_uring_sqe_set_data64(sqe, ud);
}

int tern_ring_submit_and_wait(struct tern_ring *ring)
{
	int ret = io_uring_submit_and_wait(&ring->uring, 1);
	return ret < 0 ? ret : 0;
}

int tern_ring_submit_and_poll(struct tern_ring *ring)
{
	int ret = io_uring_submit_and_get_events(&ring->uring);
	return ret < 0 ? ret : 0;
}

void tern_ring_submit(struct tern_ring *ring)
{
	io_uring_submit(&ring->uring);
}

unsigned tern_ring_drain(struct tern_ring *ring, tern_ring_completion_fn *fn, void *ctx)
{
	struct io_uring_cqe *cqe;
	unsigned head, count = 0;

	io_uring_for_each_cqe(&ring->uring, head, cqe) {
		fn(ctx, io_uring_cqe_get_data64(cqe), cqe->res, cqe->flags);
		count++;
	}
	io_uring_cq_advance(&ring->uring, count);
	return count;
}

bool tern_ring_cqe_more(uint32_t flags)
{
	return (flags & IORING_CQE_F_MORE) != 0;
}

/* ------------------------------------------------------------- the probe */

/* The probe's ring and its operations: small, since it lives for a few
 * system calls. */
#define PROBE_ENTRIES 8u
#define PROBE_BUFFER_SIZE 64u
#define PROBE_UD_ACCEPT 1u
#define PROBE_UD_TIMEOUT 2u

struct probe_outcome {
	bool accepted; /* the accept completed: res and more hold its result */
	bool timed_out;
	int32_t res;
	bool more;
};

static void probe_completion(void *ctx, uint64_t ud, int32_t res, uint32_t flags)
{
	struct probe_outcome *o = ctx;

	if (ud == PROBE_UD_ACCEPT && !o->accepted) {
		o->accepted = true;
		o->res = res;
		o->more = tern_ring_cqe_more(flags);
		if (res >= 0)
			close(res);
	} else if (ud == PROBE_UD_TIMEOUT) {
		o->timed_out = true;
	}
}

/* A connected pair over an autobound abstract UNIX socket (nothing on the
 * filesystem, no network needed): *lfd listens with *cfd's connection
 * waiting in its backlog. Returns 0 or -errno. */
static int probe_sockets(int *lfd, int *cfd)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len = sizeof(sa_family_t);

	*cfd = -1;
	*lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (*lfd < 0)
		return -errno;
	/* Binding with only the family autobinds (unix(7)). */
	if (bind(*lfd, (struct sockaddr *)&sun, len) < 0 || listen(*lfd, 1) < 0)
		return -errno;
	len = sizeof(sun);
	if (getsockname(*lfd, (struct sockaddr *)&sun, &len) < 0)
		return -errno;
	*cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (*cfd < 0)
		return -errno;
	/* A UNIX stream connect completes at once while the backlog has
	 * room. */
	if (connect(*cfd, (struct sockaddr *)&sun, len) < 0)
		return -errno;
	return 0;
}

/* Multishot accept (IORING_ACCEPT_MULTISHOT, Linux 5.19): armed on a
 * listener with one connection waiting, it must complete with that
 * connection and stay armed (IORING_CQE_F_MORE). A kernel without it
 * refuses the flag with -EINVAL. This also goes through io_uring_enter,
 * which a seccomp profile may refuse on its own. A timeout bounds the
 * wait, so a probe never hangs a start. Socket trouble is not io_uring's:
 * the check is skipped then (the listeners will tell). */
static int probe_accept(struct tern_ring *ring, char *why, size_t why_len)
{
	struct __kernel_timespec ts = {.tv_sec = 2};
	struct probe_outcome o = {0};
	int lfd = -1, cfd = -1;
	int ret = probe_sockets(&lfd, &cfd);

	if (ret < 0) {
		tern_log(TERN_LOG_DEBUG, "io_uring probe: no UNIX socket pair (%s): multishot "
			 "accept not checked", strerror(-ret));
		ret = 0;
		goto out;
	}
	tern_ring_accept_multishot(ring, lfd, PROBE_UD_ACCEPT);
	tern_ring_timeout(ring, &ts, PROBE_UD_TIMEOUT);
	while (!o.accepted && !o.timed_out) {
		ret = tern_ring_submit_and_wait(ring);
		if (ret < 0 && ret != -EINTR && ret != -ETIME) {
			snprintf(why, why_len, "io_uring_enter: %s", strerror(-ret));
			goto out;
		}
		tern_ring_drain(ring, probe_completion, &o);
	}
	ret = 0;
	if (!o.accepted) {
		ret = -ETIMEDOUT;
		snprintf(why, why_len, "multishot accept: no completion within %llds",
			 (long long)ts.tv_sec);
	} else if (o.res < 0) {
		ret = o.res;
		snprintf(why, why_len, "multishot accept: %s", strerror(-ret));
	} else if (!o.more) {
		ret = -EOPNOTSUPP;
		snprintf(why, why_len, "multishot accept: ended after one connection");
	}
out:
	if (cfd >= 0)
		close(cfd);
	if (lfd >= 0)
		close(lfd);
	return ret;
}

int tern_ring_probe(bool need_buffers, char *why, size_t why_len)
{
	struct tern_ring *ring = NULL;
	int ret;

	if (why_len > 0)
		why[0] = '\0';
	/* tern_ring_new: the flags the workers use, and the same fallback. */
	ret = tern_ring_new(PROBE_ENTRIES, &ring);
	if (ret < 0) {
		snprintf(why, why_len, "%s", strerror(-ret));
		return ret;
	}
	if (need_buffers) {
		/* A buffer ring (Linux 5.19) through io_uring_register. */
		ret = tern_ring_provide_buffers(ring, 1, PROBE_BUFFER_SIZE);
		if (ret < 0) {
			snprintf(why, why_len, "provided buffer ring: %s", strerror(-ret));
			goto out;
		}
	}
	ret = probe_accept(ring, why, why_len);
out:
	/* Exiting the ring cancels the armed accept and the timeout. */
	tern_ring_free(ring);
	return ret;
}
