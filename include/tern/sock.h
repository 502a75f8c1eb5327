/* Listening TCP sockets, for the workers and the metrics endpoint, and the
 * options every connected TCP socket of a connection gets. */
#ifndef TERN_SOCK_H
#define TERN_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/config.h"

/* Flags for tern_sock_listen. */
#define TERN_SOCK_REUSEPORT 1u /* share the port with other sockets (workers) */
#define TERN_SOCK_NONBLOCK 2u  /* for poll() loops; io_uring arms its own poll */

/* A socket bound to addr and listening, with SO_REUSEADDR (a restart binds
 * past connections in TIME_WAIT) and, for IPv6, IPV6_V6ONLY ([::]:443 must
 * not also claim 0.0.0.0:443: that is a --listen of its own). Returns the
 * fd, or -errno with "cannot listen on ADDR: reason" in err. */
__attribute__((warn_unused_result))
int tern_sock_listen(const struct tern_addr *addr, unsigned flags, char *err, size_t err_len);

/* --tcp-keepalive on a connected TCP socket (client or backend side):
 * SO_KEEPALIVE, the first probe after idle_ms of silence (TCP_KEEPIDLE,
 * whole seconds), then one every TERN_SOCK_KEEPALIVE_INTERVAL_S seconds
 * or every idle_ms if that is shorter (TCP_KEEPINTVL), and the connection
 * reset after TERN_SOCK_KEEPALIVE_PROBES unanswered (TCP_KEEPCNT): a dead
 * peer is noticed at most idle + 3 x 10 s after it went quiet, however
 * long the idle time, rather than the kernel's 9 x 75 s. idle_ms 0 does
 * nothing (the socket keeps the kernel's default: no keepalive). Returns 0
 * or -errno; a failure costs the connection nothing else, so callers may
 * go on without it. Any thread. */
#define TERN_SOCK_KEEPALIVE_INTERVAL_S 10
#define TERN_SOCK_KEEPALIVE_PROBES 3
__attribute__((warn_unused_result))
int tern_sock_keepalive(int fd, uint64_t idle_ms);

#endif
