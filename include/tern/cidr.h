/* Address ranges in CIDR notation: --accept-proxy-from's list of the
 * sources allowed to send a PROXY header.
 *
 * Pure functions of their arguments; any thread. */
#ifndef TERN_CIDR_H
#define TERN_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* One range: family, the network's address (no bits set past the
 * prefix), the prefix length. */
struct tern_cidr {
	sa_family_t family; /* AF_INET or AF_INET6 */
	uint8_t prefix_len; /* 0..32 or 0..128 */
	uint8_t addr[16];   /* network byte order; IPv4 in the first 4 bytes */
};

/* "ADDR/LEN" ("10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0", "::/0") or an
 * address alone, which is a range of one (/32, /128). ADDR is an IPv4
 * dotted quad or an IPv6 literal (no brackets, no scope); LEN is decimal
 * without leading zeros, at most 32 or 128. A bit set in ADDR past LEN
 * (10.0.0.1/8) is refused rather than masked: it is likely a typo for
 * a host or a longer prefix. Returns 0, or -EINVAL with *out untouched. */
__attribute__((warn_unused_result))
int tern_cidr_parse(const char *text, struct tern_cidr *out);

/* Whether sa (AF_INET or AF_INET6; anything else never matches) is in
 * range. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, the peer of an IPv4
 * client on a dual-stack [::] listener) is matched as the IPv4 address it
 * maps, so 10.0.0.0/8 covers it and ::/0 does not. */
bool tern_cidr_match(const struct tern_cidr *range, const struct sockaddr *sa);

/* Whether any of the n ranges matches. */
bool tern_cidr_match_any(const struct tern_cidr *ranges, size_t n, const struct sockaddr *sa);

/* The range as tern_cidr_parse reads it back, always with its prefix
 * ("10.0.0.0/8", "::1/128"); NUL-terminated, cut to fit. */
void tern_cidr_format(const struct tern_cidr *range, char *out, size_t out_len);

/* Longest text tern_cidr_format writes, NUL included. */
#define TERN_CIDR_TEXT_MAX (46u + 4u)

#endif
