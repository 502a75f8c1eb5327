/* Listening sockets handed over by a service manager: socket activation as
 * systemd does it (sd_listen_fds(3)), read straight from the environment.
 *
 * The protocol: when LISTEN_PID is this process's PID, LISTEN_FDS=N says
 * that descriptors 3 .. 3+N-1 are open sockets for us, and the optional
 * LISTEN_FDNAMES names them, colon-separated, in the same order. Main
 * thread only, during start-up: it changes the environment. */
#ifndef TERN_LISTEN_FDS_H
#define TERN_LISTEN_FDS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "tern/config.h"

/* SD_LISTEN_FDS_START: the first passed descriptor. */
#define TERN_LISTEN_FDS_START 3
/* More than this many passed sockets is refused. */
#define TERN_MAX_INHERITED 64

struct tern_inherited {
	int fd;
	char name[64];        /* from LISTEN_FDNAMES (cut to fit), or "" */
	struct tern_addr addr; /* getsockname(); text as "HOST:PORT", "[IPV6]:PORT" */
};

struct tern_listen_fds {
	struct tern_inherited *socks; /* owned; NULL when num is 0 */
	size_t num;
};

/* Takes the sockets passed to this process, if any, into *out: each must
 * be a listening (SO_ACCEPTCONN) SOCK_STREAM socket of family AF_INET or
 * AF_INET6, and is made close-on-exec. LISTEN_PID, LISTEN_FDS and
 * LISTEN_FDNAMES are unset whenever any of them was set, used or not, so
 * they cannot mislead anything started later.
 *
 * Returns the number of sockets taken (0: none were passed to this
 * process, which includes a LISTEN_PID naming another one), or -errno with
 * a message in err naming the descriptor or the variable: -EBADMSG for a
 * malformed LISTEN_PID or LISTEN_FDS, -ERANGE for more than
 * TERN_MAX_INHERITED, -EBADF for a descriptor that is not open, -ENOTSOCK,
 * -ENOTCONN (not listening), -EPROTOTYPE (not SOCK_STREAM), -EAFNOSUPPORT
 * (not TCP over IPv4 or IPv6), -ENOMEM. On failure *out is empty and the
 * descriptors are left open (the process is about to exit). */
__attribute__((warn_unused_result))
int tern_listen_fds_take(struct tern_listen_fds *out, char *err, size_t err_len);

/* Closes every descriptor in fds and frees the array. */
void tern_listen_fds_free(struct tern_listen_fds *fds);

/* True when a and b are the same IPv4 or IPv6 address and port (the
 * IPv6 scope too): how an inherited socket is matched to a --listen. */
bool tern_listen_fds_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

#endif
