/* A --backend host name to the addresses it resolves to now. Blocks in
 * getaddrinfo(3) for as long as the resolver takes: the main thread at
 * start (and under --check) and the backend monitor thread call it,
 * never a worker. */
#ifndef TERN_BACKEND_RESOLVE_H
#define TERN_BACKEND_RESOLVE_H

#include <stddef.h>

#include "tern/config.h"

/* Every address name->host has for TCP (IPv4 and IPv6, in the resolver's
 * order, duplicates dropped), with name->port, at most max of them; text
 * is the address in numbers ("10.0.0.7:8080", "[::1]:8080"). Returns how
 * many (>= 1), or -ENOENT for a name with no address (err: the resolver's
 * words), -EAGAIN for a resolver that did not answer, -ENOMEM. *out_more
 * is set when addresses beyond max were left out. */
__attribute__((warn_unused_result))
int tern_backend_resolve(const struct tern_addr_name *name, struct tern_addr *out, size_t max,
			 bool *out_more, char *err, size_t err_len);

#endif
