/* What the PROXY protocol tests share (proxy_proto_test.c for the header
 * tern sends, proxy_parse_test.c for the one it receives): the v2
 * signature and two address blocks as the specification spells them,
 * written out here rather than taken from the code under test. */
#ifndef TERN_TEST_PROXY_WIRE_FIXTURE_H
#define TERN_TEST_PROXY_WIRE_FIXTURE_H

#include <stdint.h>

#define SIG "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
/* 192.168.0.1:56324 -> 192.168.0.11:443 (the example of section 2.1). */
#define ADDR4 "\xc0\xa8\x00\x01" "\xc0\xa8\x00\x0b" "\xdc\x04" "\x01\xbb"
/* [2001:db8::1]:1234 -> [::1]:8443 */
#define ADDR6                                                                      \
	"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"        \
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"        \
	"\x04\xd2" "\x20\xfb"

/* A literal's bytes, without the NUL the compiler adds. */
#define LIT(s) (const uint8_t *)(s), (sizeof(s) - 1)

#endif
