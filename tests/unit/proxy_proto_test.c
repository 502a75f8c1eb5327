/* Unit tests for src/proxy_proto.c: the PROXY protocol encoder against
 * HAProxy's doc/proxy-protocol.txt.
 *
 * The expected outputs below are written by hand from the specification,
 * field by field, as C string literals (a literal is cut wherever a \x
 * escape would swallow the text after it). Each CRC32C value in them was
 * computed outside tern and is checked here again by a bit-at-a-time
 * CRC32C over the expected bytes with the field zeroed, so the vectors
 * hold on their own, whatever the encoder does. The random round trip
 * decodes with a decoder of its own, written from the specification. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "check.h"
#include "proxy_vectors.h"
#include "tern/proxy_proto.h"

/* CRC32C one bit at a time, straight from the definition (reflected,
 * polynomial 0x82F63B78, initial and final xor 0xFFFFFFFF). */
static uint32_t crc32c_bitwise(const uint8_t *p, size_t len)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int bit = 0; bit < 8; bit++)
			crc = (crc & 1u) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static unsigned get_u16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static void dump(const char *what, const uint8_t *p, size_t len)
{
	fprintf(stderr, "    %s (%zu):", what, len);
	for (size_t i = 0; i < len; i++)
		fprintf(stderr, "%s%02x", i % 32 == 0 ? "\n      " : " ", p[i]);
	fprintf(stderr, "\n");
}

static bool check_bytes(const uint8_t *got, int got_len, const uint8_t *want, size_t want_len, int line)
{
	bool ok = got_len == (int)want_len && memcmp(got, want, want_len) == 0;
	if (!check_record(ok, __FILE__, line, "encoded bytes == expected bytes")) {
		dump("got", got, got_len > 0 ? (size_t)got_len : 0);
		dump("want", want, want_len);
	}
	return ok;
}

/* A v2 vector: its CRC32C value (of the first TLV, right after the
 * addresses; crc_at is the offset of the value) must be the CRC32C of the
 * vector with those 4 bytes zeroed. */
static void check_vector_crc(const uint8_t *want, size_t want_len, size_t crc_at, int line)
{
	uint8_t copy[512];

	if (!check_record(want_len <= sizeof(copy) && want[crc_at - 3] == 0x03, __FILE__, line,
			  "vector has a CRC32C TLV first"))
		return;
	memcpy(copy, want, want_len);
	memset(copy + crc_at, 0, 4);
	check_eq_uint(crc32c_bitwise(copy, want_len), get_u32(want + crc_at), __FILE__, line,
		      "vector CRC32C computed bit by bit");
}

static void info_v4(struct tern_proxy_info *info)
{
	memset(info, 0, sizeof(*info));
	info->family = TERN_PROXY_FAMILY_INET;
	memcpy(info->src_addr, "\xc0\xa8\x00\x01", 4);
	memcpy(info->dst_addr, "\xc0\xa8\x00\x0b", 4);
	info->src_port = 56324;
	info->dst_port = 443;
}

static void info_v6(struct tern_proxy_info *info)
{
	memset(info, 0, sizeof(*info));
	info->family = TERN_PROXY_FAMILY_INET6;
	CHECK(inet_pton(AF_INET6, "2001:db8::1", info->src_addr) == 1);
	CHECK(inet_pton(AF_INET6, "::1", info->dst_addr) == 1);
	info->src_port = 1234;
	info->dst_port = 8443;
}

/* Encodes info as v2 and compares with want; the returned length must be
 * what tern_proxy_v2_max_len() promised. */
#define EXPECT_V2(info, want, crc_at)                                                  \
	do {                                                                           \
		uint8_t out_[512];                                                     \
		int n_ = tern_proxy_v2_encode((info), out_, sizeof(out_));             \
		check_bytes(out_, n_, LIT(want), __LINE__);                            \
		CHECK_EQ_UINT(tern_proxy_v2_max_len(info), sizeof(want) - 1);          \
		check_vector_crc(LIT(want), (crc_at), __LINE__);                       \
	} while (0)

#define EXPECT_V1(info, want)                                                  \
	do {                                                                   \
		uint8_t out_[TERN_PROXY_V1_MAX_LEN];                           \
		int n_ = tern_proxy_v1_encode((info), out_, sizeof(out_));     \
		check_bytes(out_, n_, LIT(want), __LINE__);                    \
	} while (0)

static void test_crc32c(void)
{
	uint8_t buf[32];

	/* The standard check value, and RFC 3720 appendix B.4's vectors. */
	CHECK_EQ_UINT(tern_crc32c("123456789", 9), 0xe3069283u);
	CHECK_EQ_UINT(crc32c_bitwise((const uint8_t *)"123456789", 9), 0xe3069283u);
	CHECK_EQ_UINT(tern_crc32c("", 0), 0);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ_UINT(tern_crc32c(buf, sizeof(buf)), 0x8a9136aau);
	memset(buf, 0xff, sizeof(buf));
	CHECK_EQ_UINT(tern_crc32c(buf, sizeof(buf)), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	CHECK_EQ_UINT(tern_crc32c(buf, sizeof(buf)), 0x46dd794eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	CHECK_EQ_UINT(tern_crc32c(buf, sizeof(buf)), 0x113fdb5cu);

	/* Every single byte value reaches a different table entry. */
	bool all = true;
	for (unsigned b = 0; b < 256; b++) {
		uint8_t one = (uint8_t)b;
		if (tern_crc32c(&one, 1) != crc32c_bitwise(&one, 1)) {
			fprintf(stderr, "    crc32c of byte %u differs\n", b);
			all = false;
		}
	}
	CHECK(all);
}

static void test_v1(void)
{
	struct tern_proxy_info info;

	info_v4(&info);
	EXPECT_V1(&info, "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");

	/* The longest TCP4 line (56 bytes) and the shortest; no leading
	 * zeros anywhere. */
	memset(info.src_addr, 255, 4);
	memset(info.dst_addr, 255, 4);
	info.src_port = 65535;
	info.dst_port = 65535;
	EXPECT_V1(&info, "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
	memset(info.src_addr, 0, 4);
	memcpy(info.dst_addr, "\x0a\x00\x64\x09", 4);
	info.src_port = 0;
	info.dst_port = 80;
	EXPECT_V1(&info, "PROXY TCP4 0.0.0.0 10.0.100.9 0 80\r\n");

	info_v6(&info);
	EXPECT_V1(&info, "PROXY TCP6 2001:db8::1 ::1 1234 8443\r\n");

	/* The longest TCP6 line: 104 bytes, section 2.1's count. */
	memset(info.src_addr, 0xff, 16);
	memset(info.dst_addr, 0xff, 16);
	info.src_port = 65535;
	info.dst_port = 65535;
	EXPECT_V1(&info, "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
			 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");

	/* RFC 5952: the longest zero run is "::" (the first on a tie), a
	 * lone zero group stays "0", and an IPv4-mapped address stays in hex
	 * groups, the only form section 2.1 allows. */
	CHECK(inet_pton(AF_INET6, "1:0:0:2:0:0:3:4", info.src_addr) == 1);
	CHECK(inet_pton(AF_INET6, "1:0:0:2:0:0:0:4", info.dst_addr) == 1);
	info.src_port = 1;
	info.dst_port = 2;
	EXPECT_V1(&info, "PROXY TCP6 1::2:0:0:3:4 1:0:0:2::4 1 2\r\n");
	CHECK(inet_pton(AF_INET6, "fe80:0:1:2:3:4:5:6", info.src_addr) == 1);
	CHECK(inet_pton(AF_INET6, "::ffff:1.2.3.4", info.dst_addr) == 1);
	EXPECT_V1(&info, "PROXY TCP6 fe80:0:1:2:3:4:5:6 ::ffff:102:304 1 2\r\n");
	CHECK(inet_pton(AF_INET6, "::", info.src_addr) == 1);
	CHECK(inet_pton(AF_INET6, "abcd::", info.dst_addr) == 1);
	EXPECT_V1(&info, "PROXY TCP6 :: abcd:: 1 2\r\n");

	memset(&info, 0, sizeof(info));
	info.family = TERN_PROXY_FAMILY_UNSPEC;
	EXPECT_V1(&info, "PROXY UNKNOWN\r\n");

	/* Too small a buffer: -ENOSPC, at every length short of the line. */
	uint8_t small[64];
	info_v4(&info);
	int full = tern_proxy_v1_encode(&info, small, sizeof(small));
	CHECK_EQ_INT(full, 47);
	bool all = true;
	for (int len = 0; len < full; len++)
		all &= tern_proxy_v1_encode(&info, small, (size_t)len) == -ENOSPC;
	CHECK(all);
	CHECK_EQ_INT(tern_proxy_v1_encode(&info, small, (size_t)full), full);
	memset(&info, 0, sizeof(info));
	CHECK_EQ_INT(tern_proxy_v1_encode(&info, small, 14), -ENOSPC);
}

static void test_v2_addresses(void)
{
	struct tern_proxy_info info;

	/* Only the CRC32C TLV: IPv4, 12 address bytes + 7 = 0x13. */
	info_v4(&info);
	EXPECT_V2(&info,
		  SIG "\x21\x11\x00\x13" ADDR4
		  "\x03\x00\x04" "\x1c\x1a\xe9\xc6",
		  31);

	/* IPv6: 36 address bytes + 7 = 0x2b. */
	info_v6(&info);
	EXPECT_V2(&info,
		  SIG "\x21\x21\x00\x2b" ADDR6
		  "\x03\x00\x04" "\x85\x80\x96\x23",
		  55);

	/* Unknown endpoints: LOCAL, family UNSPEC, no address block. */
	memset(&info, 0, sizeof(info));
	EXPECT_V2(&info,
		  SIG "\x20\x00\x00\x07"
		  "\x03\x00\x04" "\xa9\xb8\x7e\x8f",
		  19);
}

static void test_v2_tlvs(void)
{
	struct tern_proxy_info info;

	/* PP2_TYPE_ALPN */
	info_v4(&info);
	info.alpn = (const uint8_t *)"h2";
	info.alpn_len = 2;
	EXPECT_V2(&info,
		  SIG "\x21\x11\x00\x18" ADDR4
		  "\x03\x00\x04" "\xdf\x3a\x35\x62"
		  "\x01\x00\x02" "h2",
		  31);

	/* PP2_TYPE_AUTHORITY: the SNI. */
	info_v4(&info);
	info.sni = "example.com";
	EXPECT_V2(&info,
		  SIG "\x21\x11\x00\x21" ADDR4
		  "\x03\x00\x04" "\xcc\x5b\xc6\x6b"
		  "\x02\x00\x0b" "example.com",
		  31);

	/* PP2_TYPE_SSL with nothing known but TLS itself: client =
	 * PP2_CLIENT_SSL, and verify non-zero since no certificate came. */
	info_v4(&info);
	info.tls = true;
	info.verify = 0;
	EXPECT_V2(&info,
		  SIG "\x21\x11\x00\x1b" ADDR4
		  "\x03\x00\x04" "\xcc\x28\xb1\x8a"
		  "\x20\x00\x05" "\x01" "\x00\x00\x00\x01",
		  31);

	/* Every sub-TLV: a verified certificate in this connection and
	 * session (client = 0x07, verify = 0), VERSION, CN, CIPHER and the
	 * DER certificate (0x28). */
	info_v4(&info);
	info.tls = true;
	info.cert_conn = true;
	info.cert_sess = true;
	info.verify = 0;
	info.tls_version = "TLSv1.3";
	info.cn = "client";
	info.cipher = "TLS_AES_128_GCM_SHA256";
	info.cert_der = (const uint8_t *)"\x30\x03\x02\x01\x05";
	info.cert_der_len = 5;
	EXPECT_V2(&info,
		  SIG "\x21\x11\x00\x4f" ADDR4
		  "\x03\x00\x04" "\x47\xa6\x33\x43"
		  "\x20\x00\x39" "\x07" "\x00\x00\x00\x00"
		  "\x21\x00\x07" "TLSv1.3"
		  "\x22\x00\x06" "client"
		  "\x23\x00\x16" "TLS_AES_128_GCM_SHA256"
		  "\x28\x00\x05" "\x30\x03\x02\x01\x05",
		  31);

	/* A certificate from the session only (a resumption), that failed
	 * to verify (20: unable to get local issuer certificate). */
	info_v4(&info);
	info.tls = true;
	info.cert_sess = true;
	info.verify = 20;
	info.tls_version = "TLSv1.2";
	info.cipher = "ECDHE-RSA-AES128-GCM-SHA256";
	EXPECT_V2(&info,
		  SIG "\x21\x11\x00\x43" ADDR4
		  "\x03\x00\x04" "\x6f\x94\x7c\x6e"
		  "\x20\x00\x2d" "\x05" "\x00\x00\x00\x14"
		  "\x21\x00\x07" "TLSv1.2"
		  "\x23\x00\x1b" "ECDHE-RSA-AES128-GCM-SHA256",
		  31);

	/* All of them over IPv6, in order: CRC32C, ALPN, AUTHORITY, SSL. */
	info_v6(&info);
	info.alpn = (const uint8_t *)"http/1.1";
	info.alpn_len = 8;
	info.sni = "a.example";
	info.tls = true;
	info.tls_version = "TLSv1.3";
	info.cipher = "TLS_AES_256_GCM_SHA384";
	EXPECT_V2(&info,
		  SIG "\x21\x21\x00\x6d" ADDR6
		  "\x03\x00\x04" "\x73\x5e\x29\x93"
		  "\x01\x00\x08" "http/1.1"
		  "\x02\x00\x09" "a.example"
		  "\x20\x00\x28" "\x01" "\x00\x00\x00\x01"
		  "\x21\x00\x07" "TLSv1.3"
		  "\x23\x00\x16" "TLS_AES_256_GCM_SHA384",
		  55);

	/* Empty values are absent, not zero-length TLVs; no SSL TLV and no
	 * certificate without TLS. */
	info_v4(&info);
	info.alpn = (const uint8_t *)"";
	info.sni = "";
	info.cert_der = (const uint8_t *)"\x30\x00";
	info.cert_der_len = 2;
	info.cn = "ignored";
	EXPECT_V2(&info,
		  SIG "\x21\x11\x00\x13" ADDR4
		  "\x03\x00\x04" "\x1c\x1a\xe9\xc6",
		  31);
}

static void test_v2_limits(void)
{
	struct tern_proxy_info info;
	uint8_t *big = calloc(1, 70000);
	uint8_t *out = malloc(TERN_PROXY_V2_LIMIT + 16);

	if (!CHECK(big != NULL && out != NULL))
		goto out;

	/* -ENOSPC whenever the buffer is a byte short. */
	info_v4(&info);
	info.sni = "example.com";
	size_t need = tern_proxy_v2_max_len(&info);
	CHECK_EQ_UINT(need, 49);
	CHECK_EQ_INT(tern_proxy_v2_encode(&info, out, need - 1), -ENOSPC);
	CHECK_EQ_INT(tern_proxy_v2_encode(&info, out, 0), -ENOSPC);
	CHECK_EQ_INT(tern_proxy_v2_encode(&info, out, need), (int)need);

	/* The certificate that exactly fills the 16-bit length goes in; one
	 * byte more and it is left out, the rest of the header unchanged. */
	info_v4(&info);
	info.tls = true;
	info.cert_conn = info.cert_sess = true;
	info.cn = "client";
	info.cert_der = big;
	info.cert_der_len = 0;
	/* fixed 16 + addresses 12 + CRC 7 + SSL 3+5 + CN 3+6 = 52 */
	size_t base = 52;
	info.cert_der_len = TERN_PROXY_V2_LIMIT - base - 3;
	CHECK_EQ_UINT(tern_proxy_v2_max_len(&info), TERN_PROXY_V2_LIMIT);
	int n = tern_proxy_v2_encode(&info, out, TERN_PROXY_V2_LIMIT);
	CHECK_EQ_INT(n, (int)TERN_PROXY_V2_LIMIT);
	CHECK_EQ_UINT(get_u16(out + 14), 0xffff);
	CHECK_EQ_UINT(out[base], 0x28);
	CHECK_EQ_UINT(get_u16(out + base + 1), info.cert_der_len);
	info.cert_der_len++;
	CHECK_EQ_UINT(tern_proxy_v2_max_len(&info), base);
	n = tern_proxy_v2_encode(&info, out, TERN_PROXY_V2_LIMIT);
	CHECK_EQ_INT(n, (int)base);
	CHECK_EQ_UINT(get_u16(out + 14), base - 16);
	CHECK_EQ_UINT(out[35], 0x20);
	CHECK_EQ_UINT(get_u16(out + 36), 5 + 9);
	CHECK_EQ_UINT(out[38], 0x07);
	CHECK_EQ_UINT(out[43], 0x22);
	/* Still a valid CRC over what was written. */
	uint32_t crc = get_u32(out + 31);
	memset(out + 31, 0, 4);
	CHECK_EQ_UINT(crc32c_bitwise(out, base), crc);

	/* Without the certificate it still cannot fit: refused, not cut. */
	memset(big, 'a', 69999);
	info_v4(&info);
	info.sni = (const char *)big;
	CHECK_EQ_UINT(tern_proxy_v2_max_len(&info), 0);
	CHECK_EQ_INT(tern_proxy_v2_encode(&info, out, TERN_PROXY_V2_LIMIT + 16), -EMSGSIZE);
out:
	free(big);
	free(out);
}

static void test_set_addrs(void)
{
	struct tern_proxy_info info;
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(40000)};
	struct sockaddr_in b4 = {.sin_family = AF_INET, .sin_port = htons(443)};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(40001)};
	struct sockaddr_in6 b6 = {.sin6_family = AF_INET6, .sin6_port = htons(8443)};
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	uint8_t line[TERN_PROXY_V1_MAX_LEN + 1];
	int n;

	CHECK(inet_pton(AF_INET, "203.0.113.7", &a4.sin_addr) == 1);
	CHECK(inet_pton(AF_INET, "198.51.100.1", &b4.sin_addr) == 1);
	CHECK(inet_pton(AF_INET6, "2001:db8::7", &a6.sin6_addr) == 1);
	CHECK(inet_pton(AF_INET6, "2001:db8::1", &b6.sin6_addr) == 1);

	memset(&info, 0xa5, sizeof(info));
	tern_proxy_info_set_addrs(&info, (struct sockaddr *)&a4, (struct sockaddr *)&b4);
	CHECK_EQ_INT(info.family, TERN_PROXY_FAMILY_INET);
	CHECK(memcmp(info.src_addr, "\xcb\x00\x71\x07", 4) == 0);
	CHECK(memcmp(info.dst_addr, "\xc6\x33\x64\x01", 4) == 0);
	CHECK_EQ_UINT(info.src_port, 40000);
	CHECK_EQ_UINT(info.dst_port, 443);

	memset(&info, 0, sizeof(info));
	tern_proxy_info_set_addrs(&info, (struct sockaddr *)&a6, (struct sockaddr *)&b6);
	n = tern_proxy_v1_encode(&info, line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = '\0';
	CHECK_EQ_STR((char *)line, "PROXY TCP6 2001:db8::7 2001:db8::1 40001 8443\r\n");

	/* Mixed families: the IPv4 side becomes IPv4-mapped IPv6. */
	tern_proxy_info_set_addrs(&info, (struct sockaddr *)&a4, (struct sockaddr *)&b6);
	n = tern_proxy_v1_encode(&info, line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = '\0';
	CHECK_EQ_STR((char *)line, "PROXY TCP6 ::ffff:cb00:7107 2001:db8::1 40000 8443\r\n");

	/* Not TCP/IP, or unknown: unspecified. */
	tern_proxy_info_set_addrs(&info, (struct sockaddr *)&un, (struct sockaddr *)&b4);
	CHECK_EQ_INT(info.family, TERN_PROXY_FAMILY_UNSPEC);
	tern_proxy_info_set_addrs(&info, (struct sockaddr *)&a4, NULL);
	CHECK_EQ_INT(info.family, TERN_PROXY_FAMILY_UNSPEC);
	tern_proxy_info_set_addrs(&info, NULL, NULL);
	CHECK_EQ_INT(info.family, TERN_PROXY_FAMILY_UNSPEC);
}

/* ---- a decoder of the test's own, from the specification ---- */

struct decoded {
	int ver_cmd, fam;
	uint8_t src[16], dst[16];
	unsigned sport, dport;
	bool has_crc, crc_ok;
	const uint8_t *alpn, *sni, *version, *cn, *cipher, *cert;
	size_t alpn_len, sni_len, version_len, cn_len, cipher_len, cert_len;
	bool has_ssl;
	int client;
	uint32_t verify;
	int num_unknown;
};

/* Parses one v2 header of exactly len bytes; false when malformed. */
static bool decode_v2(const uint8_t *p, size_t len, struct decoded *d)
{
	memset(d, 0, sizeof(*d));
	if (len < 16 || memcmp(p, SIG, 12) != 0 || (p[12] & 0xf0) != 0x20)
		return false;
	d->ver_cmd = p[12];
	d->fam = p[13];
	if (16 + get_u16(p + 14) != len)
		return false;
	size_t at = 16;
	if (d->fam == 0x11) {
		if (len < at + 12)
			return false;
		memcpy(d->src, p + at, 4);
		memcpy(d->dst, p + at + 4, 4);
		d->sport = get_u16(p + at + 8);
		d->dport = get_u16(p + at + 10);
		at += 12;
	} else if (d->fam == 0x21) {
		if (len < at + 36)
			return false;
		memcpy(d->src, p + at, 16);
		memcpy(d->dst, p + at + 16, 16);
		d->sport = get_u16(p + at + 32);
		d->dport = get_u16(p + at + 34);
		at += 36;
	} else if (d->fam != 0x00) {
		return false;
	}
	while (at < len) {
		if (len - at < 3)
			return false;
		unsigned type = p[at], vlen = get_u16(p + at + 1);
		const uint8_t *v = p + at + 3;
		if (len - at - 3 < vlen)
			return false;
		switch (type) {
		case 0x01:
			d->alpn = v;
			d->alpn_len = vlen;
			break;
		case 0x02:
			d->sni = v;
			d->sni_len = vlen;
			break;
		case 0x03: {
			uint8_t *copy = malloc(len);
			if (vlen != 4 || copy == NULL) {
				free(copy);
				return false;
			}
			memcpy(copy, p, len);
			memset(copy + (v - p), 0, 4);
			d->has_crc = true;
			d->crc_ok = crc32c_bitwise(copy, len) == get_u32(v);
			free(copy);
			break;
		}
		case 0x20: {
			if (vlen < 5)
				return false;
			d->has_ssl = true;
			d->client = v[0];
			d->verify = get_u32(v + 1);
			size_t sat = 5;
			while (sat < vlen) {
				if (vlen - sat < 3)
					return false;
				unsigned stype = v[sat], slen = get_u16(v + sat + 1);
				const uint8_t *sv = v + sat + 3;
				if (vlen - sat - 3 < slen)
					return false;
				if (stype == 0x21) {
					d->version = sv;
					d->version_len = slen;
				} else if (stype == 0x22) {
					d->cn = sv;
					d->cn_len = slen;
				} else if (stype == 0x23) {
					d->cipher = sv;
					d->cipher_len = slen;
				} else if (stype == 0x28) {
					d->cert = sv;
					d->cert_len = slen;
				} else {
					d->num_unknown++;
				}
				sat += 3 + slen;
			}
			break;
		}
		default:
			d->num_unknown++;
			break;
		}
		at += 3 + vlen;
	}
	return true;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	/* xorshift64*: the same sequence on every run and every libc. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static void fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rnd();
}

/* A NUL-terminated string of len printable bytes, or NULL (absent). */
static char *random_text(char *buf, size_t len)
{
	if (len == 0)
		return rnd() % 2 ? NULL : strcpy(buf, "");
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(0x21 + rnd() % 94);
	buf[len] = '\0';
	return buf;
}

static bool same(const uint8_t *got, size_t got_len, const void *want, size_t want_len)
{
	if (want == NULL || want_len == 0)
		return got == NULL;
	return got != NULL && got_len == want_len && memcmp(got, want, want_len) == 0;
}

/* The v1 line parsed back with inet_pton, so the IPv6 text form is
 * checked by libc's parser, not by the encoder's own idea of it; and,
 * where inet_ntop writes only hex groups, compared with it as well. */
static bool v1_round_trip(const struct tern_proxy_info *info)
{
	uint8_t raw[TERN_PROXY_V1_MAX_LEN + 1];
	char proto[8], src[64], dst[64], tail[4];
	unsigned sport, dport;
	uint8_t addr[16];
	int af = info->family == TERN_PROXY_FAMILY_INET ? AF_INET : AF_INET6;
	size_t alen = af == AF_INET ? 4 : 16;

	int n = tern_proxy_v1_encode(info, raw, TERN_PROXY_V1_MAX_LEN);
	if (n < 0)
		return false;
	raw[n] = '\0';
	if (info->family == TERN_PROXY_FAMILY_UNSPEC)
		return strcmp((char *)raw, "PROXY UNKNOWN\r\n") == 0;
	if (n < 2 || raw[n - 2] != '\r' || raw[n - 1] != '\n')
		return false;
	if (sscanf((char *)raw, "PROXY %7s %63s %63s %u %u%3s", proto, src, dst, &sport, &dport, tail) != 5)
		return false;
	if (strcmp(proto, af == AF_INET ? "TCP4" : "TCP6") != 0 || sport != info->src_port ||
	    dport != info->dst_port)
		return false;
	if (inet_pton(af, src, addr) != 1 || memcmp(addr, info->src_addr, alen) != 0)
		return false;
	if (inet_pton(af, dst, addr) != 1 || memcmp(addr, info->dst_addr, alen) != 0)
		return false;
	char ntop[INET6_ADDRSTRLEN];
	if (inet_ntop(af, info->src_addr, ntop, sizeof(ntop)) == NULL)
		return false;
	if (af == AF_INET6 && strchr(ntop, '.') == NULL && strcmp(ntop, src) != 0)
		return false;
	return true;
}

static void test_random_round_trip(void)
{
	static uint8_t cert[70000];
	static uint8_t out[TERN_PROXY_V2_LIMIT];
	char sni[300], version[40], cn[300], cipher[80];
	uint8_t alpn[256];
	unsigned failures = 0, with_cert = 0, cert_omitted = 0;

	for (int iter = 0; iter < 1000; iter++) {
		struct tern_proxy_info info;
		memset(&info, 0, sizeof(info));
		info.family = (enum tern_proxy_family)(rnd() % 3);
		fill_random(info.src_addr, 16);
		fill_random(info.dst_addr, 16);
		/* Runs of zero groups, for the "::" rules. */
		for (int g = 0; g < 8; g++) {
			if (rnd() % 3 == 0)
				info.src_addr[2 * g] = info.src_addr[2 * g + 1] = 0;
			if (rnd() % 3 == 0)
				info.dst_addr[2 * g] = info.dst_addr[2 * g + 1] = 0;
		}
		if (info.family == TERN_PROXY_FAMILY_INET) {
			memset(info.src_addr + 4, 0, 12);
			memset(info.dst_addr + 4, 0, 12);
		} else if (info.family == TERN_PROXY_FAMILY_UNSPEC) {
			memset(info.src_addr, 0, 16);
			memset(info.dst_addr, 0, 16);
		}
		if (info.family != TERN_PROXY_FAMILY_UNSPEC) {
			info.src_port = (uint16_t)rnd();
			info.dst_port = (uint16_t)rnd();
		}
		info.alpn_len = rnd() % 3 == 0 ? 0 : 1 + rnd() % 255;
		fill_random(alpn, info.alpn_len);
		info.alpn = info.alpn_len > 0 || rnd() % 2 ? alpn : NULL;
		info.sni = random_text(sni, rnd() % 3 == 0 ? 0 : 1 + rnd() % 253);
		info.tls = rnd() % 4 != 0;
		info.cert_conn = rnd() % 2;
		info.cert_sess = info.cert_conn || rnd() % 2;
		info.verify = rnd() % 2 ? 0 : rnd();
		info.tls_version = random_text(version, rnd() % 12);
		info.cn = random_text(cn, rnd() % 3 == 0 ? 0 : rnd() % 300);
		info.cipher = random_text(cipher, rnd() % 60);
		if (rnd() % 3 != 0) {
			/* Mostly certificate-sized, sometimes too large to fit. */
			info.cert_der_len = rnd() % 10 == 0 ? 65000 + rnd() % 5000 : rnd() % 4000;
			fill_random(cert, info.cert_der_len);
			info.cert_der = cert;
		}

		size_t want_len = tern_proxy_v2_max_len(&info);
		int n = tern_proxy_v2_encode(&info, out, sizeof(out));
		struct decoded d;
		bool ok = n > 0 && (size_t)n == want_len && decode_v2(out, (size_t)n, &d);
		if (ok) {
			size_t alen = info.family == TERN_PROXY_FAMILY_INET6 ? 16 : 4;
			bool cert_in = info.tls && info.cert_der != NULL && info.cert_der_len > 0 &&
				       d.cert != NULL;
			bool presented = info.cert_conn || info.cert_sess;
			int want_client = !info.tls ? 0 :
				0x01 | (info.cert_conn ? 0x02 : 0) | (info.cert_sess ? 0x04 : 0);
			ok = d.has_crc && d.crc_ok && d.num_unknown == 0 &&
			     same(d.alpn, d.alpn_len, info.alpn, info.alpn_len) &&
			     same(d.sni, d.sni_len, info.sni, info.sni ? strlen(info.sni) : 0) &&
			     d.has_ssl == info.tls;
			if (info.family == TERN_PROXY_FAMILY_UNSPEC)
				ok = ok && d.ver_cmd == 0x20 && d.fam == 0x00;
			else
				ok = ok && d.ver_cmd == 0x21 &&
				     d.fam == (info.family == TERN_PROXY_FAMILY_INET ? 0x11 : 0x21) &&
				     memcmp(d.src, info.src_addr, alen) == 0 &&
				     memcmp(d.dst, info.dst_addr, alen) == 0 &&
				     d.sport == info.src_port && d.dport == info.dst_port;
			if (info.tls) {
				ok = ok && d.client == want_client &&
				     d.verify == (presented ? info.verify : 1u) &&
				     same(d.version, d.version_len, info.tls_version,
					  info.tls_version ? strlen(info.tls_version) : 0) &&
				     same(d.cn, d.cn_len, info.cn, info.cn ? strlen(info.cn) : 0) &&
				     same(d.cipher, d.cipher_len, info.cipher,
					  info.cipher ? strlen(info.cipher) : 0);
				if (info.cert_der != NULL && info.cert_der_len > 0) {
					/* Left out exactly when it could not fit. */
					size_t without = (size_t)n - (cert_in ? 3 + info.cert_der_len : 0);
					bool fits = without + 3 + info.cert_der_len <= TERN_PROXY_V2_LIMIT;
					ok = ok && cert_in == fits &&
					     (!cert_in || same(d.cert, d.cert_len, info.cert_der,
							       info.cert_der_len));
					with_cert += cert_in;
					cert_omitted += !cert_in;
				}
			} else {
				ok = ok && d.cert == NULL;
			}
		}
		ok = ok && v1_round_trip(&info);
		if (!ok && failures++ < 5)
			fprintf(stderr, "    round trip failed at iteration %d (n=%d, want %zu)\n", iter, n,
				want_len);
	}
	CHECK_EQ_UINT(failures, 0);
	/* The random inputs reached both certificate outcomes. */
	CHECK(with_cert > 100);
	CHECK(cert_omitted > 10);
}

int main(void)
{
	test_crc32c();
	test_v1();
	test_v2_addresses();
	test_v2_tlvs();
	test_v2_limits();
	test_set_addrs();
	test_random_round_trip();
	return check_summary();
}
