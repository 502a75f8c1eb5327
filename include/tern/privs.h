/* --user: giving up root once everything that needs it is done (listeners
 * bound, certificates, keys and ticket keys read, the control socket
 * bound), before any worker runs.
 *
 * Main thread only. glibc applies setuid(), setgid() and setgroups() to
 * every thread of the process (nptl's SIGSETXID broadcast), so a thread
 * already running (the control thread) changes with it. */
#ifndef TERN_PRIVS_H
#define TERN_PRIVS_H

#include <stddef.h>

/* Becomes user name: as root, initgroups() (the user's supplementary
 * groups), setgid() to its primary group, then setuid() to its uid, in that
 * order, since each of the first two needs the root the last gives up;
 * then checks that the real, effective and saved IDs are all the user's
 * and that setuid(0) fails. Not as root: a no-op when the process already
 * runs as that user, otherwise -EPERM (only root can switch users).
 *
 * Returns 0, or -errno with one line in err: -ENOENT for an unknown user,
 * -EPERM as above or when root could be regained, or what a set*id call
 * reported. After a failure the process must exit: it may hold some of
 * the new IDs and not others. */
__attribute__((warn_unused_result))
int tern_privs_drop(const char *name, char *err, size_t err_len);

/* What tern_privs_call_as runs: 0 or -errno, with a reason in msg. */
typedef int tern_privs_call_fn(void *arg, char *msg, size_t msg_len);

/* Runs fn(arg, msg, msg_len) as user name, and returns what it returned,
 * with its msg: as root, in a child process (fork) that drops to the user
 * first, so that the caller stays root; a drop that fails is the child's
 * answer (tern_privs_drop's result and message). With name NULL or not
 * as root, fn runs in the calling process. For asking the kernel at start,
 * as root, what it allows the user (kernel.io_uring_disabled=1 allows
 * io_uring to root, not to others): main thread, before any other thread
 * runs, since only the calling thread lives on in the child. */
__attribute__((warn_unused_result))
int tern_privs_call_as(const char *name, tern_privs_call_fn *fn, void *arg, char *msg,
		       size_t msg_len);

#endif
