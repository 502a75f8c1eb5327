/* Address ranges in CIDR notation (cidr.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "tern/cidr.h"
#include "tern/parse.h"

/* Longest address text inet_pton reads: an IPv6 address with an IPv4
 * tail, 45 characters. */
#define ADDR_TEXT_MAX 45u

/* A prefix length: decimal, no leading zero (but "0"), at most max. */
static bool parse_prefix(const char *s, unsigned max, unsigned *out)
{
	unsigned long v;

	if ((s[0] == '0' && s[1] != '\0') || tern_parse_uint(s, 0, max, &v) < 0)
		return false;
	*out = (unsigned)v;
	return true;
}

/* Whether any bit of addr (len bytes) past the first prefix_len is set. */
static bool host_bits_set(const uint8_t *addr, size_t len, unsigned prefix_len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned bit = (unsigned)i * 8u;
		uint8_t keep = prefix_len >= bit + 8 ? 0xffu
			     : prefix_len <= bit   ? 0x00u
						   : (uint8_t)(0xffu << (8u - (prefix_len - bit)));
		if (addr[i] & (uint8_t)~keep)
			return true;
	}
	return false;
}

int tern_cidr_parse(const char *text, struct tern_cidr *out)
{
	char addr_text[ADDR_TEXT_MAX + 1];
	const char *slash = strchr(text, '/');
	size_t addr_len = slash ? (size_t)(slash - text) : strlen(text);
	struct tern_cidr r;
	unsigned prefix_len;

	if (addr_len == 0 || addr_len > ADDR_TEXT_MAX)
		return -EINVAL;
	memcpy(addr_text, text, addr_len);
	addr_text[addr_len] = '\0';
	memset(&r, 0, sizeof(r));
	if (inet_pton(AF_INET, addr_text, r.addr) == 1)
		r.family = AF_INET;
	else if (inet_pton(AF_INET6, addr_text, r.addr) == 1)
		r.family = AF_INET6;
	else
		return -EINVAL;
	unsigned max = r.family == AF_INET ? 32u : 128u;
	if (!slash)
		prefix_len = max;
	else if (!parse_prefix(slash + 1, max, &prefix_len))
		return -EINVAL;
	if (host_bits_set(r.addr, max / 8u, prefix_len))
		return -EINVAL;
	r.prefix_len = (uint8_t)prefix_len;
	*out = r;
	return 0;
}

/* The first prefix_len bits of a and b agree. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix_len)
{
	unsigned whole = prefix_len / 8u, rest = prefix_len % 8u;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xffu << (8u - rest));
	return ((a[whole] ^ b[whole]) & mask) == 0;
}

bool tern_cidr_match(const struct tern_cidr *range, const struct sockaddr *sa)
{
	static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const uint8_t *addr;
	sa_family_t family = sa->sa_family;

	if (family == AF_INET) {
		addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (family == AF_INET6) {
		addr = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0) {
			family = AF_INET;
			addr += sizeof(v4_mapped);
		}
	} else {
		return false;
	}
	return family == range->family && prefix_equal(addr, range->addr, range->prefix_len);
}

bool tern_cidr_match_any(const struct tern_cidr *ranges, size_t n, const struct sockaddr *sa)
{
	for (size_t i = 0; i < n; i++)
		if (tern_cidr_match(&ranges[i], sa))
			return true;
	return false;
}

void tern_cidr_format(const struct tern_cidr *range, char *out, size_t out_len)
{
	char addr[INET6_ADDRSTRLEN] = "?";

	inet_ntop(range->family, range->addr, addr, sizeof(addr));
	snprintf(out, out_len, "%s/%u", addr, (unsigned)range->prefix_len);
}
