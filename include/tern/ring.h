/* The worker's io_uring ring: the only module that includes liburing.
 *
 * Every operation tern issues goes through one of the prep calls below,
 * which queue a submission entry; nothing reaches the kernel until
 * tern_ring_submit_and_wait(), so a whole loop iteration's work is
 * submitted in one system call. user_data is opaque here: the worker
 * encodes the object and the operation in it (see worker.h). Results are
 * the kernel's: >= 0, or -errno. Each ring is used by the one thread that
 * created it (IORING_SETUP_SINGLE_ISSUER). */
#ifndef TERN_RING_H
#define TERN_RING_H

#include <linux/time_types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct tern_ring;

/* user_data for operations whose completion nobody waits for (close,
 * cancel, link timeouts). */
#define TERN_RING_UD_IGNORE 0

/* Creates a ring with `entries` submission slots, in the calling thread,
 * which becomes its only submitter. Returns 0 or -errno. */
__attribute__((warn_unused_result))
int tern_ring_new(unsigned entries, struct tern_ring **out);
void tern_ring_free(struct tern_ring *ring);

/* Whether a worker's ring can run here: creates a small ring with the
 * workers' flags (tern_ring_new), registers a provided buffer ring when
 * need_buffers (--read-buffers above 0), arms a multishot accept on a
 * UNIX socket with a connection waiting and checks it stays armed, then
 * tears everything down. Returns 0, or -errno with the reason in why
 * (cut to why_len, NUL-terminated): the bare strerror text when
 * io_uring_setup itself was refused ("Operation not permitted" under a
 * seccomp profile or kernel.io_uring_disabled, "Function not
 * implemented" without io_uring), else the step and its error
 * ("multishot accept: Invalid argument" before Linux 5.19). Any thread;
 * it blocks at most two seconds. */
__attribute__((warn_unused_result))
int tern_ring_probe(bool need_buffers, char *why, size_t why_len);

/* The liburing version tern was built against, "2.3": liburing 2.3
 * (Debian 12's) has neither io_uring_major_version() nor the
 * IO_URING_VERSION_* macros of 2.4, so CMake passes what pkg-config says.
 * Static storage. */
const char *tern_ring_library_version(void);

/* Queue an operation. They cannot fail: a full submission queue is
 * submitted to the kernel first to make room. The memory passed (buffers,
 * addresses, timespecs) must stay valid until the operation completes. */
void tern_ring_accept_multishot(struct tern_ring *ring, int fd, uint64_t ud);
/* One socket, then the accept ends (no IORING_CQE_F_MORE): the kernel
 * takes no more from the backlog than accepts were queued. */
void tern_ring_accept(struct tern_ring *ring, int fd, uint64_t ud);
/* poll_first: the caller expects no data yet (its last read on fd came
 * back short, the socket drained), so the kernel waits for data before
 * its first attempt rather than try, fail and then wait: one failed
 * tcp_recvmsg less per wait. Ignored on kernels before 6.1, which this
 * ring runs without DEFER_TASKRUN (the flag needs 5.19). A wrong guess
 * costs little: data already there completes the wait at once. */
void tern_ring_recv(struct tern_ring *ring, int fd, void *buf, size_t len, bool poll_first,
		    uint64_t ud);
void tern_ring_send(struct tern_ring *ring, int fd, const void *buf, size_t len, uint64_t ud);
void tern_ring_read(struct tern_ring *ring, int fd, void *buf, size_t len, uint64_t ud);
/* connect, cancelled with -ECANCELED if it has not completed after *ts. */
void tern_ring_connect(struct tern_ring *ring, int fd, const struct sockaddr *addr,
		       socklen_t addr_len, struct __kernel_timespec *ts, uint64_t ud);
void tern_ring_close(struct tern_ring *ring, int fd);
/* Cancels every operation in flight with the given user_data (several
 * accepts may share one); each completes -ECANCELED. */
void tern_ring_cancel(struct tern_ring *ring, uint64_t target_ud);
/* Cancels the one operation in flight with the given user_data, if any:
 * it completes -ECANCELED (or with its own result, if it was finishing).
 * The kernel finds a waiting socket operation by hashing the user_data, so
 * this costs the same with ten thousand others pending; a cancel by file
 * descriptor (IORING_ASYNC_CANCEL_FD) walks every pending one instead,
 * which made closing n connections cost O(n^2) (docs/overload.md). One
 * that finds nothing is harmless, though it walks the ring's few plain
 * timeouts before saying so. */
void tern_ring_cancel_one(struct tern_ring *ring, uint64_t target_ud);
void tern_ring_timeout(struct tern_ring *ring, struct __kernel_timespec *ts, uint64_t ud);

/* Provided buffers: `count` buffers of `size` bytes registered with the
 * kernel as a buffer ring (group 0). A recv queued with
 * tern_ring_recv_provided() takes one only when data arrives, so a socket
 * that waits for data holds no memory of its own; the completion carries
 * the buffer (tern_ring_cqe_buffer), which the caller hands back with
 * tern_ring_buffer_return() once done with it. When none is free the recv
 * completes with -ENOBUFS. count is at most 32768. Returns
 * 0 or -errno (-EINVAL on kernels before 5.19: run without). */
__attribute__((warn_unused_result))
int tern_ring_provide_buffers(struct tern_ring *ring, unsigned count, uint32_t size);
bool tern_ring_has_buffers(const struct tern_ring *ring);
uint32_t tern_ring_buffer_size(const struct tern_ring *ring);
void tern_ring_recv_provided(struct tern_ring *ring, int fd, bool poll_first, uint64_t ud);
/* True if the completion's flags carry a provided buffer; sets *bid. */
bool tern_ring_cqe_buffer(uint32_t flags, uint16_t *bid);
/* The buffer a completion carried (its bid), now the caller's. */
uint8_t *tern_ring_buffer_take(struct tern_ring *ring, uint16_t bid);
void tern_ring_buffer_return(struct tern_ring *ring, uint16_t bid);
/* Only a few buffers are offered to the kernel at a time, the most
 * recently returned first, so that reads land in cache-warm memory; a
 * recv that got -ENOBUFS reports it here and more are offered, and
 * tern_ring_buffers_tick (every worker tick) offers fewer again after a
 * quiet second. */
void tern_ring_buffers_missed(struct tern_ring *ring);
void tern_ring_buffers_tick(struct tern_ring *ring);
/* Buffers offered to the kernel now: 0 when every one is taken. */
unsigned tern_ring_buffers_published(const struct tern_ring *ring);

/* Submits everything queued and waits for at least one completion.
 * Returns 0 or -errno (-EINTR, -ETIME are normal). */
int tern_ring_submit_and_wait(struct tern_ring *ring);

/* Submits everything queued and takes the completions ready now, without
 * waiting for one. Returns 0 or -errno. */
int tern_ring_submit_and_poll(struct tern_ring *ring);

/* Submits everything queued without waiting. */
void tern_ring_submit(struct tern_ring *ring);

/* Calls fn for each completion ready now, then retires them. Returns the
 * number handled. IORING_CQE_F_MORE in flags means a multishot operation
 * stays armed. */
typedef void tern_ring_completion_fn(void *ctx, uint64_t ud, int32_t res, uint32_t flags);
unsigned tern_ring_drain(struct tern_ring *ring, tern_ring_completion_fn *fn, void *ctx);

bool tern_ring_cqe_more(uint32_t flags);

#endif
