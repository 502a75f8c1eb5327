/* The ring's provided buffers, on a real io_uring: reads land in the few
 * most recently used buffers instead of cycling through all of them; a
 * read that finds none offered makes more offered; quiet ticks make fewer
 * offered again. A recv that waits for data before trying (poll_first)
 * gets the bytes already queued at once, and bytes that come later when
 * they come. And the probe (tern_ring_probe): 0 here, and the reason
 * when a seccomp filter refuses each io_uring system call in turn, as a
 * container runtime's default profile does. And cancelling by user_data:
 * tern_ring_cancel_one ends the one operation named, and leaves the
 * others (even one with the same user_data) waiting. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "tern/ring.h"

/* The audit architecture a seccomp filter checks; 0 where this test does
 * not know it, and the seccomp cases are skipped. */
#if defined(__x86_64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#define TEST_AUDIT_ARCH 0
#endif

#define COUNT 16u
#define SIZE 4096u
#define WARM_MIN 4u          /* ring.c's published set at the least */
#define WARM_DECAY_TICKS 20u /* ring.c's quiet ticks before it halves */

struct completion {
	uint64_t ud;
	int32_t res;
	uint32_t flags;
};

struct reaped {
	struct completion c[64];
	unsigned n;
};

static void on_completion(void *ctx, uint64_t ud, int32_t res, uint32_t flags)
{
	struct reaped *r = ctx;
	if (r->n < sizeof(r->c) / sizeof(r->c[0]))
		r->c[r->n++] = (struct completion){ud, res, flags};
}

/* Submits what is queued and reaps until `want` completions came. */
static void reap(struct tern_ring *ring, struct reaped *r, unsigned want)
{
	r->n = 0;
	for (int i = 0; i < 100 && r->n < want; i++) {
		int ret = tern_ring_submit_and_wait(ring);
		if (ret < 0 && ret != -EINTR && ret != -ETIME)
			break;
		tern_ring_drain(ring, on_completion, r);
	}
}

static bool new_ring(struct tern_ring **ring, unsigned count)
{
	if (!CHECK(tern_ring_new(64, ring) == 0))
		return false;
	int ret = tern_ring_provide_buffers(*ring, count, SIZE);
	if (ret == -EINVAL) {
		fprintf(stderr, "SKIP: this kernel has no buffer rings\n");
		tern_ring_free(*ring);
		exit(0);
	}
	return CHECK_EQ_INT(ret, 0);
}

/* Writes `len` bytes to pair[0] and reads them on pair[1] through a
 * provided buffer; returns its id (taken, not returned) or -1. */
static int read_one(struct tern_ring *ring, int pair[2], uint8_t fill, size_t len)
{
	uint8_t msg[SIZE];
	struct reaped r;
	uint16_t bid;

	memset(msg, fill, len);
	if (!CHECK(write(pair[0], msg, len) == (ssize_t)len))
		return -1;
	tern_ring_recv_provided(ring, pair[1], false, 7);
	reap(ring, &r, 1);
	if (!CHECK_EQ_UINT(r.n, 1) || !CHECK_EQ_INT(r.c[0].res, (long long)len) ||
	    !CHECK(tern_ring_cqe_buffer(r.c[0].flags, &bid)))
		return -1;
	uint8_t *data = tern_ring_buffer_take(ring, bid);
	CHECK(memcmp(data, msg, len) == 0);
	return bid;
}

static void test_reads_reuse_warm_buffers(void)
{
	struct tern_ring *ring;
	int pair[2];
	bool used[COUNT] = {0};
	unsigned distinct = 0;

	if (!new_ring(&ring, COUNT))
		return;
	CHECK_EQ_UINT(tern_ring_buffers_published(ring), WARM_MIN);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
	/* One read at a time, each buffer returned once read: with all 16
	 * offered, 64 reads would go through all 16; here they stay in the
	 * four offered plus the one being returned. */
	for (unsigned i = 0; i < 64; i++) {
		int bid = read_one(ring, pair, (uint8_t)i, 100 + i);
		if (bid < 0)
			break;
		if (!used[bid]) {
			used[bid] = true;
			distinct++;
		}
		CHECK_EQ_UINT(tern_ring_buffers_published(ring), WARM_MIN);
		tern_ring_buffer_return(ring, (uint16_t)bid);
	}
	CHECK_EQ_UINT(distinct, WARM_MIN + 1);
	close(pair[0]);
	close(pair[1]);
	tern_ring_free(ring);
}

static void test_miss_offers_more_and_quiet_ticks_fewer(void)
{
	struct tern_ring *ring;
	int pairs[WARM_MIN + 1][2];
	struct reaped r;
	uint16_t held[2 * WARM_MIN + 1];
	unsigned num_held = 0, misses = 0;

	if (!new_ring(&ring, COUNT))
		return;
	/* Five reads with data waiting, in one submit: four get a buffer,
	 * the fifth finds none offered. */
	for (unsigned i = 0; i <= WARM_MIN; i++) {
		CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[i]) == 0);
		CHECK(write(pairs[i][0], "abc", 3) == 3);
		tern_ring_recv_provided(ring, pairs[i][1], false, i + 1);
	}
	reap(ring, &r, WARM_MIN + 1);
	CHECK_EQ_UINT(r.n, WARM_MIN + 1);
	for (unsigned i = 0; i < r.n; i++) {
		uint16_t bid;
		if (tern_ring_cqe_buffer(r.c[i].flags, &bid)) {
			CHECK_EQ_INT(r.c[i].res, 3);
			(void)tern_ring_buffer_take(ring, bid);
			held[num_held++] = bid;
		} else {
			CHECK_EQ_INT(r.c[i].res, -ENOBUFS);
			misses++;
		}
	}
	CHECK_EQ_UINT(num_held, WARM_MIN);
	CHECK_EQ_UINT(misses, 1);
	/* Taking refills the offered set; the miss doubles it. */
	CHECK_EQ_UINT(tern_ring_buffers_published(ring), WARM_MIN);
	tern_ring_buffers_missed(ring);
	CHECK_EQ_UINT(tern_ring_buffers_published(ring), 2 * WARM_MIN);

	/* A second of quiet ticks halves it: what is offered already stays
	 * offered, but once reads have taken the surplus no more is added. */
	for (unsigned i = 0; i < WARM_DECAY_TICKS - 1; i++)
		tern_ring_buffers_tick(ring);
	int bid = read_one(ring, pairs[0], 'x', 10);
	CHECK(bid >= 0);
	if (bid >= 0)
		held[num_held++] = (uint16_t)bid;
	CHECK_EQ_UINT(tern_ring_buffers_published(ring), 2 * WARM_MIN); /* refilled: not yet */
	tern_ring_buffers_tick(ring);
	for (unsigned i = 0; i < WARM_MIN; i++) {
		bid = read_one(ring, pairs[0], 'y', 10);
		if (!CHECK(bid >= 0))
			break;
		held[num_held++] = (uint16_t)bid;
	}
	CHECK_EQ_UINT(tern_ring_buffers_published(ring), WARM_MIN);
	for (unsigned i = 0; i < num_held; i++)
		tern_ring_buffer_return(ring, held[i]);
	CHECK_EQ_UINT(tern_ring_buffers_published(ring), WARM_MIN);
	for (unsigned i = 0; i <= WARM_MIN; i++) {
		close(pairs[i][0]);
		close(pairs[i][1]);
	}
	tern_ring_free(ring);
}

static void test_fewer_buffers_than_the_minimum(void)
{
	struct tern_ring *ring;

	if (!new_ring(&ring, 2))
		return;
	CHECK_EQ_UINT(tern_ring_buffers_published(ring), 2);
	tern_ring_buffers_missed(ring);
	CHECK_EQ_UINT(tern_ring_buffers_published(ring), 2);
	tern_ring_free(ring);
}

/* Makes system call nr fail with EPERM in this process from now on. */
static bool refuse_syscall(unsigned nr)
{
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(insns) / sizeof(insns[0]), .filter = insns};

	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
	       prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0;
}

/* Runs the probe in a child with system call nr refused; returns its
 * result and copies its reason to why (through a pipe: the child's
 * memory is its own). */
static int probe_refusing(unsigned nr, bool need_buffers, char *why, size_t why_len)
{
	int fds[2];
	int status, ret = -ECHILD;

	why[0] = '\0';
	if (!CHECK(pipe(fds) == 0))
		return ret;
	pid_t pid = fork();
	if (pid == 0) {
		char buf[256] = "";
		size_t len = why_len < sizeof(buf) ? why_len : sizeof(buf);
		int r = refuse_syscall(nr) ? tern_ring_probe(need_buffers, buf, len) : 1;
		ssize_t ignored = write(fds[1], buf, strlen(buf));
		(void)ignored;
		_exit(r < 0 ? -r : r == 0 ? 0 : 255);
	}
	close(fds[1]);
	ssize_t n = read(fds[0], why, why_len - 1);
	why[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	if (CHECK(pid > 0 && waitpid(pid, &status, 0) == pid) && CHECK(WIFEXITED(status)) &&
	    CHECK(WEXITSTATUS(status) != 255))
		ret = -WEXITSTATUS(status);
	return ret;
}

static void test_probe(void)
{
	char why[256] = "x";

	CHECK_EQ_INT(tern_ring_probe(true, why, sizeof(why)), 0);
	CHECK_EQ_STR(why, "");
	CHECK_EQ_INT(tern_ring_probe(false, why, 4), 0);
	if (TEST_AUDIT_ARCH == 0) {
		fprintf(stderr, "SKIP: the seccomp cases (no audit architecture for this CPU)\n");
		return;
	}
	/* Docker's and containerd's default profiles: setup refused. */
	CHECK_EQ_INT(probe_refusing(__NR_io_uring_setup, true, why, sizeof(why)), -EPERM);
	CHECK_EQ_STR(why, "Operation not permitted");
	/* A ring made, but nothing can be submitted. */
	CHECK_EQ_INT(probe_refusing(__NR_io_uring_enter, true, why, sizeof(why)), -EPERM);
	CHECK_EQ_STR(why, "io_uring_enter: Operation not permitted");
	/* No buffer ring: refused only when --read-buffers wants one. */
	CHECK_EQ_INT(probe_refusing(__NR_io_uring_register, true, why, sizeof(why)), -EPERM);
	CHECK_EQ_STR(why, "provided buffer ring: Operation not permitted");
	CHECK_EQ_INT(probe_refusing(__NR_io_uring_register, false, why, sizeof(why)), 0);
	CHECK_EQ_STR(why, "");
	/* A reason cut to its buffer stays a string. */
	CHECK_EQ_INT(probe_refusing(__NR_io_uring_setup, true, why, 10), -EPERM);
	CHECK_EQ_STR(why, "Operation");
}

/* poll_first is a guess that the socket is drained: a wrong guess must
 * still find the bytes already there (own memory and provided buffer),
 * and a right one must wait for the bytes that come later. */
static void test_poll_first_recv(void)
{
	struct tern_ring *ring;
	int pair[2];
	struct reaped r;
	uint8_t got[64];
	uint16_t bid;

	if (!new_ring(&ring, COUNT))
		return;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
	CHECK(write(pair[0], "early", 5) == 5);
	tern_ring_recv(ring, pair[1], got, sizeof(got), true, 1);
	reap(ring, &r, 1);
	if (CHECK_EQ_UINT(r.n, 1) && CHECK_EQ_INT(r.c[0].res, 5))
		CHECK(memcmp(got, "early", 5) == 0);

	CHECK(write(pair[0], "queued", 6) == 6);
	tern_ring_recv_provided(ring, pair[1], true, 2);
	reap(ring, &r, 1);
	if (CHECK_EQ_UINT(r.n, 1) && CHECK_EQ_INT(r.c[0].res, 6) &&
	    CHECK(tern_ring_cqe_buffer(r.c[0].flags, &bid))) {
		CHECK(memcmp(tern_ring_buffer_take(ring, bid), "queued", 6) == 0);
		tern_ring_buffer_return(ring, bid);
	}

	/* Nothing queued: the recv waits past a 20 ms timeout, then
	 * completes with what is written after it. */
	struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
	tern_ring_recv(ring, pair[1], got, sizeof(got), true, 3);
	tern_ring_timeout(ring, &ts, 4);
	reap(ring, &r, 1);
	if (CHECK_EQ_UINT(r.n, 1))
		CHECK_EQ_UINT(r.c[0].ud, 4);
	CHECK(write(pair[0], "late", 4) == 4);
	reap(ring, &r, 1);
	if (CHECK_EQ_UINT(r.n, 1) && CHECK_EQ_UINT(r.c[0].ud, 3) && CHECK_EQ_INT(r.c[0].res, 4))
		CHECK(memcmp(got, "late", 4) == 0);
	close(pair[0]);
	close(pair[1]);
	tern_ring_free(ring);
}

/* The completion for ud in r, or NULL. */
static const struct completion *find(const struct reaped *r, uint64_t ud)
{
	for (unsigned i = 0; i < r->n; i++)
		if (r->c[i].ud == ud)
			return &r->c[i];
	return NULL;
}

/* Submits what is queued and takes the completions already there,
 * without waiting for more. */
static void reap_ready(struct tern_ring *ring, struct reaped *r)
{
	r->n = 0;
	CHECK_EQ_INT(tern_ring_submit_and_poll(ring), 0);
	tern_ring_drain(ring, on_completion, r);
}

static void test_cancel_one(void)
{
	struct tern_ring *ring;
	int a[2], b[2];
	char buf_a[16], buf_b[16];
	struct reaped r;
	const struct completion *got;

	if (!CHECK(tern_ring_new(64, &ring) == 0))
		return;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, b) == 0);
	/* Two reads waiting, on two sockets: one is cancelled, and only it. */
	tern_ring_recv(ring, a[0], buf_a, sizeof(buf_a), false, 0x10);
	tern_ring_recv(ring, b[0], buf_b, sizeof(buf_b), false, 0x20);
	reap_ready(ring, &r);
	CHECK_EQ_UINT(r.n, 0);
	tern_ring_cancel_one(ring, 0x10);
	reap(ring, &r, 2);
	CHECK_EQ_UINT(r.n, 2);
	got = find(&r, 0x10);
	if (CHECK(got != NULL))
		CHECK_EQ_INT(got->res, -ECANCELED);
	got = find(&r, TERN_RING_UD_IGNORE); /* the cancel's own completion */
	if (CHECK(got != NULL))
		CHECK_EQ_INT(got->res, 0);
	CHECK(find(&r, 0x20) == NULL);
	/* Nothing by that name in flight any more: harmless. */
	tern_ring_cancel_one(ring, 0x10);
	reap(ring, &r, 1);
	CHECK_EQ_UINT(r.n, 1);
	CHECK_EQ_INT(r.c[0].ud, TERN_RING_UD_IGNORE);
	CHECK_EQ_INT(r.c[0].res, -ENOENT);
	/* The other one still reads. */
	CHECK(write(b[1], "hi", 2) == 2);
	reap(ring, &r, 1);
	got = find(&r, 0x20);
	if (CHECK(got != NULL))
		CHECK_EQ_INT(got->res, 2);

	/* Two with one user_data (a listener's accepts): cancel_one ends one
	 * of them, tern_ring_cancel the rest. */
	tern_ring_recv(ring, a[0], buf_a, sizeof(buf_a), false, 0x30);
	tern_ring_recv(ring, b[0], buf_b, sizeof(buf_b), false, 0x30);
	tern_ring_cancel_one(ring, 0x30);
	reap(ring, &r, 2);
	CHECK_EQ_UINT(r.n, 2);
	got = find(&r, 0x30);
	if (CHECK(got != NULL))
		CHECK_EQ_INT(got->res, -ECANCELED);
	reap_ready(ring, &r);
	CHECK_EQ_UINT(r.n, 0);
	tern_ring_cancel(ring, 0x30);
	reap(ring, &r, 2);
	CHECK_EQ_UINT(r.n, 2);
	got = find(&r, 0x30);
	if (CHECK(got != NULL))
		CHECK_EQ_INT(got->res, -ECANCELED);

	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	tern_ring_free(ring);
}

int main(void)
{
	test_probe();
	test_reads_reuse_warm_buffers();
	test_miss_offers_more_and_quiet_ticks_fewer();
	test_fewer_buffers_than_the_minimum();
	test_poll_first_recv();
	test_cancel_one();
	return check_summary();
}
