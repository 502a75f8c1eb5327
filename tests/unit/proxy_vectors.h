/* What the PROXY protocol tests share (proxy_proto_test.c,
 * proxy_parse_test.c, conn_accept_proxy_test.c): the v2 signature and the
 * address blocks of HAProxy's doc/proxy-protocol.txt, written by hand from
 * the specification (never from tern's own constants), and LIT() to pass
 * a literal's bytes. Header-only, like check.h. */
#ifndef TERN_TEST_PROXY_VECTORS_H
#define TERN_TEST_PROXY_VECTORS_H

#include <stdint.h>

/* The v2 signature (section 2.2). */
#define SIG "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
/* 192.168.0.1:56324 -> 192.168.0.11:443 (the example of section 2.1). */
#define ADDR4 "\xc0\xa8\x00\x01" "\xc0\xa8\x00\x0b" "\xdc\x04" "\x01\xbb"
/* [2001:db8::1]:1234 -> [::1]:8443 */
#define ADDR6                                                               \
	"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" \
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" \
	"\x04\xd2" "\x20\xfb"

/* A literal's bytes, without the NUL the compiler adds. */
#define LIT(s) (const uint8_t *)(s), (sizeof(s) - 1)

#endif
