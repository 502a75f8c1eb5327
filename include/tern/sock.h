/* Listening TCP sockets, for the workers and the metrics endpoint. */
#ifndef TERN_SOCK_H
#define TERN_SOCK_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
