/* Unit tests for src/proxy_parse.c: the PROXY protocol header tern
 * receives (--accept-proxy), against HAProxy's doc/proxy-protocol.txt.
 *
 * Every header is parsed from a heap copy of exactly the bytes given, so
 * under ASan a read past them is caught. Each good header is offered at
 * every split point (each proper prefix must ask for more, the whole must
 * be taken, and bytes after it, a ClientHello's start, are never
 * consumed); each bad one is checked to be refused at exactly the first
 * byte that makes it bad, with its reason, and to ask for more before. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proxy_vectors.h"
#include "tern/proxy_parse.h"
#include "tern/proxy_proto.h"

/* The start of a TLS ClientHello record: what follows a header. */
#define HELLO "\x16\x03\x01\x00\xf4\x01\x00\x00\xf0\x03\x03"
#define BIG 65536u

static int parse_copy(const uint8_t *p, size_t n, unsigned versions, size_t max_len,
		      struct tern_proxy_header *out)
{
	uint8_t *copy = malloc(n ? n : 1);
	if (!copy)
		abort();
	if (n)
		memcpy(copy, p, n);
	int rc = tern_proxy_parse(copy, n, versions, max_len, out);
	free(copy);
	return rc;
}

/* Every split point of a good header of len bytes; *out as parsed whole,
 * with HELLO after it. */
static void check_good(const char *name, const uint8_t *p, size_t len, unsigned versions,
		       struct tern_proxy_header *out)
{
	struct tern_proxy_header h;
	unsigned early = 0;

	for (size_t n = 0; n < len; n++) {
		int rc = parse_copy(p, n, versions, BIG, &h);
		if (rc != 0) {
			early++;
			fprintf(stderr, "%s: prefix of %zu bytes gave %d (%s)\n", name, n, rc,
				h.why ? h.why : "-");
		}
	}
	CHECK_EQ_UINT(early, 0);
	CHECK_EQ_INT(parse_copy(p, len, versions, BIG, &h), (int)len);
	CHECK(h.why == NULL);

	uint8_t *more = malloc(len + sizeof(HELLO) - 1);
	if (!more)
		abort();
	memcpy(more, p, len);
	memcpy(more + len, HELLO, sizeof(HELLO) - 1);
	CHECK_EQ_INT(tern_proxy_parse(more, len + sizeof(HELLO) - 1, versions, BIG, out), (int)len);
	free(more);
	CHECK(memcmp(&h, out, sizeof(h)) == 0);
}

/* A bad header: refused with `why` once refused_at bytes are in, asking
 * for more before. */
static void check_bad(const char *name, const uint8_t *p, size_t len, size_t refused_at,
		      unsigned versions, size_t max_len, const char *why)
{
	struct tern_proxy_header h;

	for (size_t n = 0; n < refused_at && n <= len; n++) {
		int rc = parse_copy(p, n, versions, max_len, &h);
		if (!CHECK_EQ_INT(rc, 0))
			fprintf(stderr, "%s: prefix of %zu bytes: %s\n", name, n, h.why ? h.why : "-");
	}
	for (size_t n = refused_at; n <= len; n++) {
		int rc = parse_copy(p, n, versions, max_len, &h);
		if (!CHECK_EQ_INT(rc, -EPROTO) || !CHECK_EQ_STR(h.why, why))
			fprintf(stderr, "%s: %zu of %zu bytes\n", name, n, len);
		CHECK_EQ_INT(h.family, TERN_PROXY_FAMILY_UNSPEC);
	}
}

/* The addresses and ports parsed; an IPv6 src (written with ':') means
 * TERN_PROXY_FAMILY_INET6, else TERN_PROXY_FAMILY_INET. */
static void check_addr(const struct tern_proxy_header *h, const char *src, const char *dst,
		       uint16_t sport, uint16_t dport)
{
	int af = strchr(src, ':') ? AF_INET6 : AF_INET;
	size_t len = af == AF_INET6 ? 16 : 4;
	uint8_t want[16];

	CHECK_EQ_INT(h->family, af == AF_INET6 ? TERN_PROXY_FAMILY_INET6 : TERN_PROXY_FAMILY_INET);
	CHECK(inet_pton(af, src, want) == 1 && memcmp(h->src_addr, want, len) == 0);
	CHECK(inet_pton(af, dst, want) == 1 && memcmp(h->dst_addr, want, len) == 0);
	CHECK_EQ_UINT(h->src_port, sport);
	CHECK_EQ_UINT(h->dst_port, dport);
}

/* ----------------------------------------------------------------- v1 */

static void test_v1_good(void)
{
	struct tern_proxy_header h;

	check_good("v1 tcp4", LIT("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
		   TERN_PROXY_PARSE_V1, &h);
	CHECK_EQ_UINT(h.version, 1);
	check_addr(&h, "192.168.0.1", "192.168.0.11", 56324, 443);

	check_good("v1 tcp6", LIT("PROXY TCP6 2001:db8::1 ::1 1234 8443\r\n"), TERN_PROXY_PARSE_ANY, &h);
	check_addr(&h, "2001:db8::1", "::1", 1234, 8443);

	check_good("v1 ports 0 and 65535", LIT("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"),
		   TERN_PROXY_PARSE_V1, &h);
	check_addr(&h, "0.0.0.0", "255.255.255.255", 0, 65535);

	check_good("v1 v4-mapped", LIT("PROXY TCP6 ::ffff:10.1.2.3 ::ffff:10.0.0.1 1 2\r\n"),
		   TERN_PROXY_PARSE_V1, &h);
	check_addr(&h, "::ffff:10.1.2.3", "::ffff:10.0.0.1", 1, 2);

	/* UNKNOWN: no address; whatever follows it is ignored (2.1). */
	check_good("v1 unknown", LIT("PROXY UNKNOWN\r\n"), TERN_PROXY_PARSE_V1, &h);
	CHECK_EQ_INT(h.family, TERN_PROXY_FAMILY_UNSPEC);
	CHECK_EQ_UINT(h.version, 1);

	/* The specification's worst case: 107 bytes, CRLF included. */
	static const char worst[] = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
	char line[TERN_PROXY_V1_LINE_MAX + 1];
	size_t fill = TERN_PROXY_V1_LINE_MAX - (sizeof(worst) - 1);
	memcpy(line, "PROXY UNKNOWN ", 14);
	memset(line + 14, 'f', fill);
	memcpy(line + 14 + fill, worst + 14, sizeof(worst) - 1 - 14);
	CHECK_EQ_UINT(14 + fill + sizeof(worst) - 1 - 14, TERN_PROXY_V1_LINE_MAX);
	check_good("v1 107 bytes", (const uint8_t *)line, TERN_PROXY_V1_LINE_MAX, TERN_PROXY_PARSE_V1, &h);
	CHECK_EQ_INT(h.family, TERN_PROXY_FAMILY_UNSPEC);

	/* The longest TCP6 line: two full IPv6 addresses, 5-digit ports. */
	check_good("v1 tcp6 longest",
		   LIT("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
		       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
		   TERN_PROXY_PARSE_ANY, &h);
	CHECK_EQ_UINT(h.src_port, 65535);
}

static void test_v1_bad(void)
{
	/* Where it is refused: at the CRLF, unless a byte before it already
	 * cannot be right. */
#define BAD_LINE(line, why)                                                          \
	check_bad(line, LIT(line), sizeof(line) - 1, TERN_PROXY_PARSE_V1, BIG, why)
	BAD_LINE("PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n", "v1: bad source port");
	BAD_LINE("PROXY TCP4 192.168.0.1 192.168.0.11 56324 99999\r\n", "v1: bad destination port");
	BAD_LINE("PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n", "v1: bad source port");
	BAD_LINE("PROXY TCP4 192.168.0.1 192.168.0.11 0443 443\r\n", "v1: bad source port");
	BAD_LINE("PROXY TCP4 192.168.0.1 192.168.0.11 1a 443\r\n", "v1: bad source port");
	BAD_LINE("PROXY TCP4 192.168.0.1 192.168.0.11 123456 443\r\n", "v1: bad source port");
	BAD_LINE("PROXY TCP4 192.168.0.1 192.168.0.11 +1 443\r\n", "v1: bad source port");
	BAD_LINE("PROXY TCP4 256.168.0.1 192.168.0.11 1 2\r\n", "v1: bad TCP4 source address");
	BAD_LINE("PROXY TCP4 192.168.0 192.168.0.11 1 2\r\n", "v1: bad TCP4 source address");
	BAD_LINE("PROXY TCP4 192.168.0.01 192.168.0.11 1 2\r\n", "v1: bad TCP4 source address");
	BAD_LINE("PROXY TCP4 ::1 192.168.0.11 1 2\r\n", "v1: bad TCP4 source address");
	BAD_LINE("PROXY TCP4 192.168.0.1 ::1 1 2\r\n", "v1: bad TCP4 destination address");
	BAD_LINE("PROXY TCP6 192.168.0.1 ::1 1 2\r\n", "v1: bad TCP6 source address");
	BAD_LINE("PROXY TCP6 ::1 2001:db8:::1 1 2\r\n", "v1: bad TCP6 destination address");
	BAD_LINE("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "v1: bad TCP6 source address");
	BAD_LINE("PROXY TCP4 192.168.0.1  192.168.0.11 1 2\r\n",
		 "v1: empty field (fields are separated by one space)");
	BAD_LINE("PROXY TCP4 192.168.0.1 192.168.0.11 1 2 \r\n", "v1: more than six fields");
	BAD_LINE("PROXY TCP4 192.168.0.1 192.168.0.11 1 2 3\r\n", "v1: more than six fields");
	BAD_LINE("PROXY TCP4 192.168.0.1 192.168.0.11 1\r\n",
		 "v1: missing fields (expected source, destination and two ports)");
	BAD_LINE("PROXY TCP4 \r\n", "v1: missing fields (expected source, destination and two ports)");
	BAD_LINE("PROXY UNKNOWNX\r\n", "v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)");
#undef BAD_LINE
	/* Refused early: at the first byte that cannot be part of a header. */
	check_bad("lower case", LIT("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n"), 1, TERN_PROXY_PARSE_V1, BIG,
		  "not a v1 header (only v1 is accepted)");
	check_bad("lower case, any", LIT("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n"), 1, TERN_PROXY_PARSE_ANY,
		  BIG, "not a PROXY header");
	check_bad("bad v1 signature", LIT("PROXX TCP4\r\n"), 5, TERN_PROXY_PARSE_V1, BIG,
		  "not a PROXY header (bad v1 signature)");
	check_bad("no space", LIT("PROXYTCP4\r\n"), 6, TERN_PROXY_PARSE_ANY, BIG,
		  "not a PROXY header (bad v1 signature)");
	check_bad("TCP5", LIT("PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n"), 10, TERN_PROXY_PARSE_V1, BIG,
		  "v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)");
	check_bad("UDP4", LIT("PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n"), 8, TERN_PROXY_PARSE_V1, BIG,
		  "v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)");
	check_bad("bare LF", LIT("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n"), 31, TERN_PROXY_PARSE_V1, BIG,
		  "v1: a byte that is not printable ASCII before CRLF");
	check_bad("CR alone", LIT("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX"), 32, TERN_PROXY_PARSE_V1, BIG,
		  "v1: CR without LF");
	check_bad("NUL", LIT("PROXY TCP4 1.2.3.4\0 1.2.3.4 1 2\r\n"), 19, TERN_PROXY_PARSE_V1, BIG,
		  "v1: a byte that is not printable ASCII before CRLF");
	check_bad("8-bit", LIT("PROXY UNKNOWN \xc3\xa9\r\n"), 15, TERN_PROXY_PARSE_V1, BIG,
		  "v1: a byte that is not printable ASCII before CRLF");

	/* No CRLF within 107 bytes: refused at the 107th, not later. */
	uint8_t longer[200];
	memcpy(longer, "PROXY UNKNOWN ", 14);
	memset(longer + 14, 'x', sizeof(longer) - 14);
	check_bad("no CRLF", longer, sizeof(longer), TERN_PROXY_V1_LINE_MAX, TERN_PROXY_PARSE_V1, BIG,
		  "v1: no CRLF within 107 bytes");
	/* 108 bytes with its CRLF: one too many. */
	longer[106] = '\r';
	longer[107] = '\n';
	check_bad("108 bytes", longer, 108, TERN_PROXY_V1_LINE_MAX, TERN_PROXY_PARSE_V1, BIG,
		  "v1: no CRLF within 107 bytes");
}

/* ----------------------------------------------------------------- v2 */

static void test_v2_good(void)
{
	struct tern_proxy_header h;

	check_good("v2 tcp4", LIT(SIG "\x21\x11\x00\x0c" ADDR4), TERN_PROXY_PARSE_V2, &h);
	CHECK_EQ_UINT(h.version, 2);
	check_addr(&h, "192.168.0.1", "192.168.0.11", 56324, 443);

	check_good("v2 tcp6", LIT(SIG "\x21\x21\x00\x24" ADDR6), TERN_PROXY_PARSE_ANY, &h);
	check_addr(&h, "2001:db8::1", "::1", 1234, 8443);

	/* TLVs are skipped: an ALPN, an AWS-style custom one (0xEA), an
	 * empty NOOP (0x04). */
	check_good("v2 tcp4 tlvs",
		   LIT(SIG "\x21\x11\x00\x21" ADDR4 "\x01\x00\x02h2"
			   "\xea\x00\x0a\x01vpce-1234" "\x04\x00\x00"),
		   TERN_PROXY_PARSE_V2, &h);
	check_addr(&h, "192.168.0.1", "192.168.0.11", 56324, 443);

	/* LOCAL (a health check): no address, whatever the block holds. */
	check_good("v2 local", LIT(SIG "\x20\x00\x00\x00"), TERN_PROXY_PARSE_V2, &h);
	CHECK_EQ_INT(h.family, TERN_PROXY_FAMILY_UNSPEC);
	check_good("v2 local with an address", LIT(SIG "\x20\x11\x00\x0c" ADDR4), TERN_PROXY_PARSE_V2, &h);
	CHECK_EQ_INT(h.family, TERN_PROXY_FAMILY_UNSPEC);
	check_good("v2 local, short block", LIT(SIG "\x20\x21\x00\x03xyz"), TERN_PROXY_PARSE_V2, &h);
	CHECK_EQ_INT(h.family, TERN_PROXY_FAMILY_UNSPEC);
	/* PROXY over UNSPEC, UDP and UNIX: accepted, no address to use. */
	check_good("v2 unspec", LIT(SIG "\x21\x00\x00\x00"), TERN_PROXY_PARSE_V2, &h);
	CHECK_EQ_INT(h.family, TERN_PROXY_FAMILY_UNSPEC);
	check_good("v2 udp4", LIT(SIG "\x21\x12\x00\x0c" ADDR4), TERN_PROXY_PARSE_V2, &h);
	CHECK_EQ_INT(h.family, TERN_PROXY_FAMILY_UNSPEC);
	uint8_t unix_hdr[16 + 216];
	memcpy(unix_hdr, SIG "\x21\x31\x00\xd8", 16);
	memset(unix_hdr + 16, 'u', 216);
	check_good("v2 unix", unix_hdr, sizeof(unix_hdr), TERN_PROXY_PARSE_V2, &h);
	CHECK_EQ_INT(h.family, TERN_PROXY_FAMILY_UNSPEC);
}

/* A v2 header with a CRC32C TLV, as tern's own encoder writes it (with
 * ALPN, SNI and the SSL TLV), read back; then one bit flipped. */
static void test_v2_crc(void)
{
	struct tern_proxy_info info = {0};
	uint8_t buf[1024];
	struct tern_proxy_header h;

	info.family = TERN_PROXY_FAMILY_INET6;
	inet_pton(AF_INET6, "2001:db8::7", info.src_addr);
	inet_pton(AF_INET6, "2001:db8::1", info.dst_addr);
	info.src_port = 40000;
	info.dst_port = 443;
	info.alpn = (const uint8_t *)"h2";
	info.alpn_len = 2;
	info.sni = "example.com";
	info.tls = true;
	info.tls_version = "TLSv1.3";
	info.cipher = "TLS_AES_128_GCM_SHA256";
	int n = tern_proxy_v2_encode(&info, buf, sizeof(buf));
	CHECK(n > 36);
	if (n <= 36)
		return;
	check_good("v2 from tern's encoder", buf, (size_t)n, TERN_PROXY_PARSE_V2, &h);
	check_addr(&h, "2001:db8::7", "2001:db8::1", 40000, 443);

	/* The CRC32C TLV comes first after the addresses (proxy_proto.h). */
	CHECK_EQ_UINT(buf[16 + 36], TERN_PP2_TYPE_CRC32C);
	buf[n - 1] ^= 0x01;
	check_bad("crc mismatch", buf, (size_t)n, (size_t)n, TERN_PROXY_PARSE_V2, BIG,
		  "v2: CRC32C mismatch");
	buf[n - 1] ^= 0x01;
	buf[16 + 36 + 3] ^= 0x80; /* the CRC itself */
	check_bad("crc field", buf, (size_t)n, (size_t)n, TERN_PROXY_PARSE_V2, BIG,
		  "v2: CRC32C mismatch");

	n = tern_proxy_v1_encode(&info, buf, sizeof(buf));
	CHECK(n > 0);
	if (n > 0) {
		check_good("v1 from tern's encoder", buf, (size_t)n, TERN_PROXY_PARSE_V1, &h);
		check_addr(&h, "2001:db8::7", "2001:db8::1", 40000, 443);
	}
}

static void test_v2_bad(void)
{
	/* Each signature byte wrong: refused as soon as it is in. */
	for (size_t i = 1; i < 12; i++) {
		uint8_t hdr[] = SIG "\x21\x11\x00\x0c" ADDR4;
		hdr[i] ^= 0x40;
		check_bad("signature", hdr, sizeof(hdr) - 1, i + 1, TERN_PROXY_PARSE_V2, BIG,
			  "not a PROXY header (bad v2 signature)");
	}
	check_bad("version 1", LIT(SIG "\x11\x11\x00\x0c" ADDR4), 13, TERN_PROXY_PARSE_V2, BIG,
		  "v2: version is not 2");
	check_bad("version 3", LIT(SIG "\x31\x11\x00\x0c" ADDR4), 13, TERN_PROXY_PARSE_ANY, BIG,
		  "v2: version is not 2");
	check_bad("command 2", LIT(SIG "\x22\x11\x00\x0c" ADDR4), 13, TERN_PROXY_PARSE_V2, BIG,
		  "v2: command is neither LOCAL nor PROXY");
	check_bad("command 15", LIT(SIG "\x2f\x11\x00\x0c" ADDR4), 13, TERN_PROXY_PARSE_V2, BIG,
		  "v2: command is neither LOCAL nor PROXY");
	static const uint8_t bad_fams[] = {0x01, 0x02, 0x10, 0x13, 0x20, 0x23, 0x30, 0x41, 0xff};
	for (size_t i = 0; i < sizeof(bad_fams); i++) {
		uint8_t hdr[] = SIG "\x21\x11\x00\x0c" ADDR4;
		hdr[13] = bad_fams[i];
		check_bad("family", hdr, sizeof(hdr) - 1, 14, TERN_PROXY_PARSE_V2, BIG,
			  "v2: unknown address family or transport");
	}
	/* The length is judged as soon as it is in, before the body. */
	check_bad("tcp4 short", LIT(SIG "\x21\x11\x00\x0b" "\xc0\xa8\x00\x01\xc0\xa8\x00\x0b\xdc\x04\x01"),
		  16, TERN_PROXY_PARSE_V2, BIG, "v2: length too short for the address family");
	check_bad("tcp6 short", LIT(SIG "\x21\x21\x00\x0c" ADDR4), 16, TERN_PROXY_PARSE_V2, BIG,
		  "v2: length too short for the address family");
	check_bad("unix short", LIT(SIG "\x21\x31\x00\x24" ADDR6), 16, TERN_PROXY_PARSE_V2, BIG,
		  "v2: length too short for the address family");
	check_bad("udp6 short", LIT(SIG "\x21\x22\x00\x0c" ADDR4), 16, TERN_PROXY_PARSE_V2, BIG,
		  "v2: length too short for the address family");
	/* Oversize: longer than the caller's buffer can hold. 0xffff is the
	 * most a header can say, 65551 bytes in all. */
	check_bad("oversize", LIT(SIG "\x21\x11\xff\xff" ADDR4), 16, TERN_PROXY_PARSE_V2, 16384,
		  "v2: header longer than the receive buffer");
	check_bad("one over", LIT(SIG "\x21\x11\x00\x0d" ADDR4 "x"), 16, TERN_PROXY_PARSE_V2, 28,
		  "v2: header longer than the receive buffer");
	{
		struct tern_proxy_header h;
		CHECK_EQ_INT(parse_copy(LIT(SIG "\x21\x11\x00\x0c" ADDR4), TERN_PROXY_PARSE_V2, 28, &h), 28);
	}
	/* TLVs: each within the header, tiling it exactly. */
	check_bad("tlv header cut", LIT(SIG "\x21\x11\x00\x0e" ADDR4 "\x01\x00"), 30, TERN_PROXY_PARSE_V2,
		  BIG, "v2: truncated TLV header");
	check_bad("tlv overrun", LIT(SIG "\x21\x11\x00\x11" ADDR4 "\x01\x00\x03h2"), 33,
		  TERN_PROXY_PARSE_V2, BIG, "v2: TLV longer than the header");
	check_bad("tlv way over", LIT(SIG "\x21\x21\x00\x27" ADDR6 "\x02\xff\xff"), 55,
		  TERN_PROXY_PARSE_V2, BIG, "v2: TLV longer than the header");
	check_bad("crc of 3 bytes", LIT(SIG "\x21\x11\x00\x12" ADDR4 "\x03\x00\x03\x00\x00\x00"), 34,
		  TERN_PROXY_PARSE_V2, BIG, "v2: CRC32C TLV not 4 bytes long");
}

/* ---------------------------------------------------------------- both */

static void test_versions(void)
{
	struct tern_proxy_header h;

	/* A version not accepted: refused at its first byte. */
	check_bad("v1 where v2", LIT("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\n"), 1, TERN_PROXY_PARSE_V2, BIG,
		  "not a v2 header (a v1 one? only v2 is accepted)");
	check_bad("v2 where v1", LIT(SIG "\x21\x11\x00\x0c" ADDR4), 1, TERN_PROXY_PARSE_V1, BIG,
		  "not a v1 header (a v2 one? only v1 is accepted)");
	/* A TLS client connecting directly: told at its first byte. */
	check_bad("tls", LIT(HELLO), 1, TERN_PROXY_PARSE_ANY, BIG,
		  "not a PROXY header (a TLS handshake record: a client connecting directly?)");
	check_bad("http", LIT("GET / HTTP/1.1\r\n"), 1, TERN_PROXY_PARSE_ANY, BIG, "not a PROXY header");
	check_bad("P then no", LIT("PUT / HTTP/1.1\r\n"), 2, TERN_PROXY_PARSE_ANY, BIG,
		  "not a PROXY header (bad v1 signature)");
	check_bad("CR then no", LIT("\r\n\r\nGET"), 5, TERN_PROXY_PARSE_ANY, BIG,
		  "not a PROXY header (bad v2 signature)");
	check_bad("http, v2 only", LIT("GET /"), 1, TERN_PROXY_PARSE_V2, BIG,
		  "not a v2 header (only v2 is accepted)");
	check_bad("tls, v1 only", LIT(HELLO), 1, TERN_PROXY_PARSE_V1, BIG,
		  "not a PROXY header (a TLS handshake record: a client connecting directly?)");
	CHECK_EQ_INT(parse_copy(NULL, 0, TERN_PROXY_PARSE_ANY, BIG, &h), 0);
	CHECK(h.why == NULL);

	/* any: both, by signature. */
	check_good("any v1", LIT("PROXY TCP4 10.0.0.1 10.0.0.2 1000 443\r\n"), TERN_PROXY_PARSE_ANY, &h);
	CHECK_EQ_UINT(h.version, 1);
	check_good("any v2", LIT(SIG "\x21\x11\x00\x0c" ADDR4), TERN_PROXY_PARSE_ANY, &h);
	CHECK_EQ_UINT(h.version, 2);
}

/* Two headers back to back: only the first is taken, the second is the
 * client's (a connection carries one header). */
static void test_only_one(void)
{
	struct tern_proxy_header h;
	static const uint8_t two[] = "PROXY TCP4 10.0.0.1 10.0.0.2 1000 443\r\n"
				     "PROXY TCP4 6.6.6.6 10.0.0.2 1 443\r\n";

	CHECK_EQ_INT(tern_proxy_parse(two, sizeof(two) - 1, TERN_PROXY_PARSE_ANY, BIG, &h), 39);
	check_addr(&h, "10.0.0.1", "10.0.0.2", 1000, 443);
}

int main(void)
{
	test_v1_good();
	test_v1_bad();
	test_v2_good();
	test_v2_crc();
	test_v2_bad();
	test_versions();
	test_only_one();
	return check_summary();
}
