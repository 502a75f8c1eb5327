/* The PROXY protocol header tern receives (proxy_parse.h), read from the
 * bytes received so far; HAProxy's doc/proxy-protocol.txt is the
 * reference, section numbers below are its. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "tern/proxy_parse.h"

static const uint8_t v1_signature[] = "PROXY ";
#define V1_SIGNATURE_LEN (sizeof(v1_signature) - 1)

/* Longest IPv6 text inet_pton can read: 45 characters (INET6_ADDRSTRLEN
 * less its NUL). */
#define V1_ADDR_TEXT_MAX 45u

static int refuse(struct tern_proxy_header *out, const char *why)
{
	out->why = why;
	return -EPROTO;
}

/* Whether the n bytes at p agree with the start of want (want_len long). */
static bool prefix_matches(const uint8_t *p, size_t n, const uint8_t *want, size_t want_len)
{
	return memcmp(p, want, n < want_len ? n : want_len) == 0;
}

/* ---------------------------------------------------------------- v1 */

/* One space-separated field of a v1 line: [*at, end) up to the next
 * space. Advances *at past it and the single space after it (none after
 * the last). Returns its length, 0 for an empty one. */
static size_t v1_field(const char *line, size_t end, size_t *at, const char **out)
{
	size_t start = *at, i = start;

	while (i < end && line[i] != ' ')
		i++;
	*out = line + start;
	*at = i < end ? i + 1 : i;
	return i - start;
}

/* A port: 1 to 5 digits, no leading zero (except "0" itself), at most
 * 65535. */
static bool v1_port(const char *s, size_t len, uint16_t *out)
{
	unsigned long v = 0;

	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* An address of the family the line named, as inet_pton reads it (which
 * for IPv4 takes exactly four decimal parts, no leading zeros). */
static bool v1_addr(int af, const char *s, size_t len, uint8_t out[16])
{
	char text[V1_ADDR_TEXT_MAX + 1];

	if (len == 0 || len > V1_ADDR_TEXT_MAX)
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	return inet_pton(af, text, out) == 1;
}

/* The line between "PROXY " and CRLF: [V1_SIGNATURE_LEN, end). */
static int v1_parse_line(const char *line, size_t end, struct tern_proxy_header *out)
{
	size_t at = V1_SIGNATURE_LEN;
	const char *proto, *fields[4];
	size_t proto_len = v1_field(line, end, &at, &proto);
	size_t field_len[4];
	int af;

	/* Section 2.1: whatever follows UNKNOWN is to be ignored. */
	if (proto_len == 7 && memcmp(proto, "UNKNOWN", 7) == 0)
		return 0;
	if (proto_len == 4 && memcmp(proto, "TCP4", 4) == 0) {
		af = AF_INET;
		out->family = TERN_PROXY_FAMILY_INET;
	} else if (proto_len == 4 && memcmp(proto, "TCP6", 4) == 0) {
		af = AF_INET6;
		out->family = TERN_PROXY_FAMILY_INET6;
	} else {
		return refuse(out, "v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)");
	}
	for (unsigned i = 0; i < 4; i++) {
		if (at >= end)
			return refuse(out, "v1: missing fields (expected source, destination and two ports)");
		field_len[i] = v1_field(line, end, &at, &fields[i]);
		if (field_len[i] == 0)
			return refuse(out, "v1: empty field (fields are separated by one space)");
	}
	if (at < end || line[end - 1] == ' ')
		return refuse(out, "v1: more than six fields");
	if (!v1_addr(af, fields[0], field_len[0], out->src_addr))
		return refuse(out, af == AF_INET ? "v1: bad TCP4 source address"
						 : "v1: bad TCP6 source address");
	if (!v1_addr(af, fields[1], field_len[1], out->dst_addr))
		return refuse(out, af == AF_INET ? "v1: bad TCP4 destination address"
						 : "v1: bad TCP6 destination address");
	if (!v1_port(fields[2], field_len[2], &out->src_port))
		return refuse(out, "v1: bad source port");
	if (!v1_port(fields[3], field_len[3], &out->dst_port))
		return refuse(out, "v1: bad destination port");
	return 0;
}

/* Whether the protocol bytes received so far (after "PROXY ", n of them,
 * up to the first space if any) can still become TCP4, TCP6 or UNKNOWN. */
static bool v1_proto_possible(const uint8_t *p, size_t n)
{
	static const char *const protos[] = {"TCP4 ", "TCP6 ", "UNKNOWN"};

	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		size_t want = strlen(protos[i]);
		if (memcmp(p, protos[i], n < want ? n : want) == 0)
			return true;
	}
	return false;
}

static int v1_parse(const uint8_t *p, size_t len, struct tern_proxy_header *out)
{
	size_t limit = len < TERN_PROXY_V1_LINE_MAX ? len : TERN_PROXY_V1_LINE_MAX;

	out->version = 1;
	if (!v1_proto_possible(p + V1_SIGNATURE_LEN, limit - V1_SIGNATURE_LEN))
		return refuse(out, "v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)");
	for (size_t i = V1_SIGNATURE_LEN; i < limit; i++) {
		if (p[i] == '\r') {
			if (i + 1 == limit)
				break; /* its LF may follow */
			if (p[i + 1] != '\n')
				return refuse(out, "v1: CR without LF");
			int rc = v1_parse_line((const char *)p, i, out);
			return rc < 0 ? rc : (int)(i + 2);
		}
		if (p[i] < 0x20 || p[i] > 0x7e)
			return refuse(out, "v1: a byte that is not printable ASCII before CRLF");
	}
	if (len >= TERN_PROXY_V1_LINE_MAX)
		return refuse(out, "v1: no CRLF within 107 bytes");
	return 0;
}

/* ---------------------------------------------------------------- v2 */

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The address block a PROXY command's family needs; 0 for UNSPEC, and
 * SIZE_MAX for a family the table does not have (to be refused). */
static size_t v2_addr_len(uint8_t fam)
{
	switch (fam) {
	case TERN_PP2_FAM_UNSPEC:
		return 0;
	case TERN_PP2_FAM_TCP4:
	case TERN_PP2_FAM_UDP4:
		return TERN_PP2_ADDR_LEN_INET;
	case TERN_PP2_FAM_TCP6:
	case TERN_PP2_FAM_UDP6:
		return TERN_PP2_ADDR_LEN_INET6;
	case TERN_PP2_FAM_UNIX_STREAM:
	case TERN_PP2_FAM_UNIX_DGRAM:
		return TERN_PP2_ADDR_LEN_UNIX;
	default:
		return SIZE_MAX;
	}
}

/* The TLVs after the addresses, [at, total): each within the header, the
 * last ending exactly at its end; a PP2_TYPE_CRC32C checked over the whole
 * header with its own four bytes counted as zeros (section 2.2.3). */
static int v2_check_tlvs(const uint8_t *p, size_t at, size_t total, struct tern_proxy_header *out)
{
	static const uint8_t zeros[TERN_PP2_CRC32C_LEN] = {0};

	while (at < total) {
		if (total - at < TERN_PP2_TLV_HDR_LEN)
			return refuse(out, "v2: truncated TLV header");
		uint8_t type = p[at];
		size_t len = get_u16(p + at + 1);
		size_t value = at + TERN_PP2_TLV_HDR_LEN;
		if (total - value < len)
			return refuse(out, "v2: TLV longer than the header");
		if (type == TERN_PP2_TYPE_CRC32C) {
			if (len != TERN_PP2_CRC32C_LEN)
				return refuse(out, "v2: CRC32C TLV not 4 bytes long");
			uint32_t crc = tern_crc32c_extend(0, p, value);
			crc = tern_crc32c_extend(crc, zeros, TERN_PP2_CRC32C_LEN);
			crc = tern_crc32c_extend(crc, p + value + TERN_PP2_CRC32C_LEN,
						 total - value - TERN_PP2_CRC32C_LEN);
			if (crc != get_u32(p + value))
				return refuse(out, "v2: CRC32C mismatch");
		}
		at = value + len;
	}
	return 0;
}

static int v2_parse(const uint8_t *p, size_t len, size_t max_len, struct tern_proxy_header *out)
{
	out->version = 2;
	if (len <= sizeof(tern_pp2_signature))
		return 0;
	uint8_t ver_cmd = p[12];
	if ((ver_cmd & 0xf0u) != TERN_PP2_VERSION)
		return refuse(out, "v2: version is not 2");
	uint8_t cmd = ver_cmd & 0x0fu;
	if (cmd != TERN_PP2_CMD_LOCAL && cmd != TERN_PP2_CMD_PROXY)
		return refuse(out, "v2: command is neither LOCAL nor PROXY");
	if (len < 14)
		return 0;
	uint8_t fam = p[13];
	size_t addr_len = v2_addr_len(fam);
	if (addr_len == SIZE_MAX)
		return refuse(out, "v2: unknown address family or transport");
	if (len < TERN_PROXY_V2_FIXED_LEN)
		return 0;
	size_t total = TERN_PROXY_V2_FIXED_LEN + get_u16(p + 14);
	if (total > max_len)
		return refuse(out, "v2: header longer than the receive buffer");
	/* LOCAL: section 2.2 says to discard the block, family included. */
	if (cmd == TERN_PP2_CMD_PROXY && total - TERN_PROXY_V2_FIXED_LEN < addr_len)
		return refuse(out, "v2: length too short for the address family");
	if (len < total)
		return 0;
	if (cmd == TERN_PP2_CMD_LOCAL || (fam != TERN_PP2_FAM_TCP4 && fam != TERN_PP2_FAM_TCP6))
		return (int)total; /* no address to use: UNSPEC */

	const uint8_t *a = p + TERN_PROXY_V2_FIXED_LEN;
	if (fam == TERN_PP2_FAM_TCP4) {
		out->family = TERN_PROXY_FAMILY_INET;
		memcpy(out->src_addr, a, 4);
		memcpy(out->dst_addr, a + 4, 4);
		out->src_port = get_u16(a + 8);
		out->dst_port = get_u16(a + 10);
	} else {
		out->family = TERN_PROXY_FAMILY_INET6;
		memcpy(out->src_addr, a, 16);
		memcpy(out->dst_addr, a + 16, 16);
		out->src_port = get_u16(a + 32);
		out->dst_port = get_u16(a + 34);
	}
	int rc = v2_check_tlvs(p, TERN_PROXY_V2_FIXED_LEN + addr_len, total, out);
	if (rc < 0) {
		/* Nothing half-read is handed on. */
		out->family = TERN_PROXY_FAMILY_UNSPEC;
		return rc;
	}
	return (int)total;
}

/* ------------------------------------------------------------- both */

int tern_proxy_parse(const uint8_t *p, size_t len, unsigned versions, size_t max_len,
		     struct tern_proxy_header *out)
{
	memset(out, 0, sizeof(*out));
	out->family = TERN_PROXY_FAMILY_UNSPEC;
	if (len == 0)
		return 0;
	/* The first byte tells the versions apart: 'P' or CR. */
	if ((versions & TERN_PROXY_PARSE_V1) && p[0] == v1_signature[0]) {
		if (!prefix_matches(p, len, v1_signature, V1_SIGNATURE_LEN))
			return refuse(out, "not a PROXY header (bad v1 signature)");
		if (len <= V1_SIGNATURE_LEN)
			return 0;
		int rc = v1_parse(p, len, out);
		if (rc < 0)
			out->family = TERN_PROXY_FAMILY_UNSPEC;
		return rc;
	}
	if ((versions & TERN_PROXY_PARSE_V2) && p[0] == tern_pp2_signature[0]) {
		if (!prefix_matches(p, len, tern_pp2_signature, sizeof(tern_pp2_signature)))
			return refuse(out, "not a PROXY header (bad v2 signature)");
		return v2_parse(p, len, max_len, out);
	}
	/* The first byte starts no header accepted: refused at once. */
	if (p[0] == 0x16)
		return refuse(out, "not a PROXY header (a TLS handshake record: a client "
				   "connecting directly?)");
	if (versions == TERN_PROXY_PARSE_V1)
		return refuse(out, p[0] == tern_pp2_signature[0]
					   ? "not a v1 header (a v2 one? only v1 is accepted)"
					   : "not a v1 header (only v1 is accepted)");
	if (versions == TERN_PROXY_PARSE_V2)
		return refuse(out, p[0] == v1_signature[0]
					   ? "not a v2 header (a v1 one? only v2 is accepted)"
					   : "not a v2 header (only v2 is accepted)");
	return refuse(out, "not a PROXY header");
}
