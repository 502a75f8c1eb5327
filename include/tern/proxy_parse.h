/* The PROXY protocol header tern receives from an upstream load balancer
 * before the TLS handshake (--accept-proxy v1|v2|any), as HAProxy's
 * doc/proxy-protocol.txt describes it. proxy_proto.h holds the other
 * direction, the header tern sends to backends; the two share its address
 * family, its limits and its v2 wire constants (signature, command and
 * family codes, address block lengths).
 *
 * Pure: no I/O, no allocation, no state kept between calls. The caller
 * keeps the bytes received so far at the start of its buffer and asks
 * again as more arrive; every answer is one of
 *   > 0  a whole header of that many bytes: what follows it is the
 *        client's own (the TLS ClientHello may arrive in the same read);
 *     0  a valid start of a header: read more;
 *   < 0  -EPROTO: not a header this parser accepts, with the reason in
 *        out->why (a fixed text, never the client's bytes).
 * A prefix that cannot start a valid header is refused as soon as its
 * first wrong byte is in: a TLS client that connects directly is told
 * apart at its first byte (0x16), and nothing waits for bytes that cannot
 * help. Each call looks at no more than the header's own bytes (v1: at
 * most 107; v2: 16 and its length field), so asking again as bytes trickle
 * in costs at most quadratic work in 107 bytes, and one pass for v2.
 *
 * What is accepted (section numbers of doc/proxy-protocol.txt):
 *   v1 (2.1)  "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", TCP6 the same,
 *             with single spaces, addresses of the family named (IPv4
 *             dotted quads with no leading zeros, IPv6 as inet_pton reads
 *             it) and ports 0..65535 without leading zeros; or
 *             "PROXY UNKNOWN" and anything printable up to CRLF. The line
 *             ends with CRLF within TERN_PROXY_V1_LINE_MAX bytes.
 *   v2 (2.2)  the 12-byte signature, version 2 with command LOCAL or
 *             PROXY, an address family and transport from the
 *             specification's table, a length of at most max_len - 16 and
 *             at least the family's address block. For PROXY over TCP4 or
 *             TCP6 the TLVs that follow the addresses must tile the rest
 *             exactly (each within the header), and a PP2_TYPE_CRC32C
 *             among them must match (2.2.3); they are otherwise skipped.
 *
 * What it carries: PROXY over TCP or UDP, IPv4 or IPv6, names the client
 * (source) and the address it connected to (destination). LOCAL (a health
 * check from the load balancer itself), UNSPEC, UNIX and v1 UNKNOWN carry
 * no address to use: family TERN_PROXY_FAMILY_UNSPEC, and the caller keeps
 * the connection's real endpoints, as section 2.2 asks and HAProxy does.
 *
 * Any thread. */
#ifndef TERN_PROXY_PARSE_H
#define TERN_PROXY_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "tern/proxy_proto.h"

/* Versions the caller accepts, a mask: --accept-proxy v1, v2 or any. */
#define TERN_PROXY_PARSE_V1 1u
#define TERN_PROXY_PARSE_V2 2u
#define TERN_PROXY_PARSE_ANY (TERN_PROXY_PARSE_V1 | TERN_PROXY_PARSE_V2)

/* Longest v1 line, CRLF included (section 2.1: "107 characters"). */
#define TERN_PROXY_V1_LINE_MAX 107u

/* A header as the parser read it. */
struct tern_proxy_header {
	unsigned version; /* 1 or 2 */
	/* UNSPEC: no address to use (LOCAL, UNKNOWN, UNSPEC, UNIX). */
	enum tern_proxy_family family;
	/* Network byte order; IPv4 in the first 4 bytes. Ports in host
	 * order. Zero for UNSPEC. */
	uint8_t src_addr[16];
	uint8_t dst_addr[16];
	uint16_t src_port;
	uint16_t dst_port;
	/* Why the header was refused: a fixed text for logs, never the
	 * client's bytes. NULL unless the call returned -EPROTO. */
	const char *why;
};

/* Reads a header from the len bytes at p (the first bytes the connection
 * received), accepting the versions in the mask `versions`; a v2 header
 * longer than max_len bytes is refused (the caller's buffer could not hold
 * it; at least TERN_PROXY_V2_FIXED_LEN). Returns the header's length
 * (> 0) with *out filled, 0 when more bytes are needed, or -EPROTO with
 * out->why set. *out is written in every case. */
__attribute__((warn_unused_result))
int tern_proxy_parse(const uint8_t *p, size_t len, unsigned versions, size_t max_len,
		     struct tern_proxy_header *out);

#endif
