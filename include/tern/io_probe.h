/* The I/O engine choice (--io, SPEC section 2): io_uring where the kernel
 * and the sandbox allow it, epoll where they refuse it.
 *
 * Docker 25+ and containerd 2.0+ default seccomp profiles refuse
 * io_uring_setup, io_uring_enter and io_uring_register; hosts may set
 * kernel.io_uring_disabled; older kernels lack multishot accept or
 * provided buffer rings. `auto` asks the kernel once, at start, with a
 * ring like a worker's (tern_ring_probe), and runs every worker on epoll
 * when it is refused. */
#ifndef TERN_IO_PROBE_H
#define TERN_IO_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "tern/config.h"

/* Asks whether io_uring works as the workers need it, for the user they
 * will run as (--user, or NULL for the current one): 0, or -errno with
 * the reason in why. tern_io_probe_ring's shape, so tests can pass a
 * fake. */
typedef int tern_io_probe_fn(const char *user, bool need_buffers, char *why, size_t why_len);

/* The real probe: tern_ring_probe, run as user (tern_privs_call_as),
 * because a host may allow io_uring to root and refuse it to the user the
 * workers become (kernel.io_uring_disabled=1 with kernel.io_uring_group).
 * A user tern cannot become is the probe's answer; the start then fails
 * on the same user, with its own message. */
int tern_io_probe_ring(const char *user, bool need_buffers, char *why, size_t why_len);

/* The engine to run for --io `requested`: epoll without asking for
 * TERN_IO_EPOLL; otherwise probe(user, need_buffers, ...) decides. A refusal
 * under TERN_IO_AUTO is epoll, with one warning line logged ("io_uring
 * refused (REASON): running on epoll") and REASON also in err; under
 * TERN_IO_URING it is an error. Returns 0 with *out set (never
 * TERN_IO_AUTO; err is "" unless auto fell back), or -errno with
 * "cannot set up io_uring: REASON ..." in err. Never -EINVAL, which
 * tern_server_prepare keeps for bad flag values: a kernel's EINVAL (a
 * missing feature) comes back as -EOPNOTSUPP. Main thread, at start. */
__attribute__((warn_unused_result))
int tern_io_probe_choose(enum tern_io_engine requested, const char *user, bool need_buffers,
			 tern_io_probe_fn *probe, enum tern_io_engine *out, char *err,
			 size_t err_len);

/* "auto", "uring" or "epoll": the --io spelling, as the ready line,
 * --check, stats, info and the metrics show it. Static storage. */
const char *tern_io_probe_engine_name(enum tern_io_engine engine);

#endif
