/* What the PROXY protocol v2 header costs (include/tern/proxy_proto.h):
 * tern_proxy_v2_encode for a typical TLS client, once per backend
 * connection with --proxy-protocol v2. It sizes the header itself
 * (tern_proxy_v2_max_len), writes the addresses and TLVs and computes the
 * CRC32C over the whole header.
 *
 * proxy_v2_encode/ipv4, proxy_v2_encode/ipv6
 *	Per iteration one header: TCP over IPv4 or IPv6, ALPN "h2",
 *	AUTHORITY (the SNI) "www.example.com", and PP2_TYPE_SSL with the
 *	version "TLSv1.3" and the cipher "TLS_AES_128_GCM_SHA256", no client
 *	certificate; what conn.c gathers for such a client. Items = headers.
 *	Checks: every header has the length worked out below from
 *	doc/proxy-protocol.txt, starts with the v2 signature and carries its
 *	family and length; after the loop, the CRC32C TLV sits first and
 *	matches the header, and tern_crc32c gives RFC 4960's check value.
 *
 * Run: build/bench/proxy_proto_bench (see README.md here for the figures). */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tern/proxy_proto.h"
#include "tern_bench.h"

static const uint8_t v2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

#define ALPN "h2"
#define SNI "www.example.com"
#define TLS_VERSION "TLSv1.3"
#define CIPHER "TLS_AES_128_GCM_SHA256"
/* A TLV's type and 16-bit length (section 2.2.7). */
#define TLV_HEAD 3u

/* What conn.c would gather for a TLS 1.3 client with ALPN and SNI. */
static bool fill_info(struct tern_proxy_info *info, bool ipv6)
{
	memset(info, 0, sizeof(*info));
	info->family = ipv6 ? TERN_PROXY_FAMILY_INET6 : TERN_PROXY_FAMILY_INET;
	int af = ipv6 ? AF_INET6 : AF_INET;
	if (inet_pton(af, ipv6 ? "2001:db8::1" : "192.0.2.1", info->src_addr) != 1 ||
	    inet_pton(af, ipv6 ? "2001:db8::443" : "198.51.100.2", info->dst_addr) != 1)
		return false;
	info->src_port = 51234;
	info->dst_port = 443;
	info->alpn = (const uint8_t *)ALPN;
	info->alpn_len = strlen(ALPN);
	info->sni = SNI;
	info->tls = true;
	info->verify = 0;
	info->tls_version = TLS_VERSION;
	info->cipher = CIPHER;
	return true;
}

/* The header's length, counted from the specification rather than asked
 * of the encoder: fixed part, addresses (section 2.2: 12 bytes for IPv4,
 * 36 for IPv6), then CRC32C, ALPN, AUTHORITY and SSL with its `client`
 * byte, `verify` word and VERSION and CIPHER sub-TLVs. */
static size_t expected_len(bool ipv6)
{
	size_t ssl = 1 + 4 + TLV_HEAD + strlen(TLS_VERSION) + TLV_HEAD + strlen(CIPHER);
	return TERN_PROXY_V2_FIXED_LEN + (ipv6 ? 36 : 12) + TLV_HEAD + 4 + TLV_HEAD + strlen(ALPN) +
	       TLV_HEAD + strlen(SNI) + TLV_HEAD + ssl;
}

static bool header_ok(const uint8_t *hdr, int n, size_t want_len, uint8_t family)
{
	return n > 0 && (size_t)n == want_len && memcmp(hdr, v2_signature, sizeof(v2_signature)) == 0 &&
	       hdr[12] == 0x21 && hdr[13] == family &&
	       (size_t)((hdr[14] << 8) | hdr[15]) == want_len - TERN_PROXY_V2_FIXED_LEN;
}

/* The CRC32C TLV comes first after the addresses and holds the CRC of the
 * header with its value zeroed (section 2.2.3). */
static bool crc_ok(const uint8_t *hdr, size_t len, bool ipv6)
{
	uint8_t copy[512];
	size_t at = TERN_PROXY_V2_FIXED_LEN + (ipv6 ? 36 : 12);

	if (len > sizeof(copy) || hdr[at] != TERN_PP2_TYPE_CRC32C || hdr[at + 1] != 0 ||
	    hdr[at + 2] != 4)
		return false;
	memcpy(copy, hdr, len);
	memset(copy + at + TLV_HEAD, 0, 4);
	uint32_t crc = tern_crc32c(copy, len);
	const uint8_t *v = hdr + at + TLV_HEAD;
	uint32_t sent = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
	return crc == sent && tern_crc32c("123456789", 9) == 0xE3069283u;
}

static void proxy_v2_encode(struct tern_bench_state *st, bool ipv6)
{
	struct tern_proxy_info info;
	uint8_t hdr[512];
	size_t want_len = expected_len(ipv6);
	uint8_t family = ipv6 ? 0x21 : 0x11; /* TCP over IPv6 / IPv4 */
	int n = 0;

	if (!fill_info(&info, ipv6)) {
		tern_bench_skip_with_error(st, "inet_pton failed");
		return;
	}
	while (tern_bench_keep_running(st)) {
		n = tern_proxy_v2_encode(&info, hdr, sizeof(hdr));
		if (!header_ok(hdr, n, want_len, family))
			tern_bench_skip_with_error(st, "the header's signature, family or length is wrong");
	}
	if (n > 0 && !crc_ok(hdr, (size_t)n, ipv6))
		tern_bench_skip_with_error(st, "the CRC32C TLV does not match the header");
	tern_bench_set_items_processed(st, tern_bench_iterations(st));
}

static void proxy_v2_encode_ipv4(struct tern_bench_state *st)
{
	proxy_v2_encode(st, false);
}

static void proxy_v2_encode_ipv6(struct tern_bench_state *st)
{
	proxy_v2_encode(st, true);
}

int main(int argc, char **argv)
{
	if (tern_bench_register("proxy_v2_encode/ipv4", proxy_v2_encode_ipv4, 0) < 0 ||
	    tern_bench_register("proxy_v2_encode/ipv6", proxy_v2_encode_ipv6, 0) < 0) {
		fprintf(stderr, "proxy_proto_bench: cannot register the benchmarks\n");
		return 1;
	}
	return tern_bench_main(argc, argv);
}
