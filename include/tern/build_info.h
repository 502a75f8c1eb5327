/* `tern -vv` (SPEC section 2): what this build of tern is and what this
 * host gives it, for a bug report or a "why epoll?" question: tern's
 * version, OpenSSL built against and loaded, liburing, the kernel, the I/O
 * engine `--io auto` would run and why, and kTLS.
 *
 * Main thread, before anything else runs (the io_uring probe may fork,
 * tern_privs_call_as). Writes to out only: no log line. */
#ifndef TERN_BUILD_INFO_H
#define TERN_BUILD_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "tern/io_probe.h"

/* Prints one "key: value" line per fact, after a first "tern VERSION"
 * line. probe is tern_io_probe_ring (tests pass a fake), asked for the
 * current user with need_buffers as the default --read-buffers needs. */
void tern_build_info_print(FILE *out, tern_io_probe_fn *probe, bool need_buffers);

/* Whether len bytes of /proc/sys/net/ipv4/tcp_available_ulp (names
 * separated by spaces) list "tls": the kernel's kTLS module is loaded.
 * Pure. */
bool tern_build_info_ulp_has_tls(const char *text, size_t len);

#endif
