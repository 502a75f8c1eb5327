/* The PROXY protocol header tern sends to a backend before the client's
 * plaintext (--proxy-protocol v1|v2), byte for byte as HAProxy's
 * doc/proxy-protocol.txt describes it (revision 2026/04/27).
 *
 * Pure: no OpenSSL, no I/O, no allocation. The caller gathers what it knows
 * about the client connection into a struct tern_proxy_info and encodes it
 * into a buffer it owns; every function is safe on any thread.
 *
 * v1 (section 2.1): one text line,
 *   "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", "PROXY TCP6 ...", or
 *   "PROXY UNKNOWN\r\n" (the short form) when the addresses are unknown.
 *
 * v2 (section 2.2): the 12-byte signature, 0x21 (version 2, PROXY) with
 * family/transport 0x11 (TCP over IPv4) or 0x21 (TCP over IPv6) and the
 * addresses, or 0x20 (version 2, LOCAL) with family 0x00 and no addresses
 * when they are unknown, as HAProxy sends; then the TLVs, in this order:
 *   PP2_TYPE_CRC32C   0x03  always; CRC32C of the whole header with this
 *                           field zeroed (section 2.2.3)
 *   PP2_TYPE_ALPN     0x01  when a protocol was negotiated
 *   PP2_TYPE_AUTHORITY 0x02 the SNI host name, when the client sent one
 *   PP2_TYPE_SSL      0x20  when the client spoke TLS: the `client` flags
 *                           byte, the 32-bit `verify` field, and sub-TLVs
 *                           VERSION 0x21, CN 0x22, CIPHER 0x23 and the client
 *                           certificate in DER, CLIENT_CERT 0x28 (added to
 *                           the specification in 2026; HAProxy does not send
 *                           it yet).
 * `verify` follows the specification (section 2.2.6): zero only when the
 * client presented a certificate and it verified. With no certificate tern
 * sends TERN_PP2_VERIFY_NO_CERT; HAProxy sends 0 there, which a backend
 * testing `verify == 0` alone would take for a verified client.
 *
 * The v2 header's length field is 16 bits: a client certificate too large
 * to fit beside everything else is left out (no 0x28 TLV) rather than
 * failing the connection; its CN, flags and verify result still go. */
#ifndef TERN_PROXY_PROTO_H
#define TERN_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* Longest v1 line tern writes: "PROXY TCP6 " two full IPv6 addresses and
 * two 5-digit ports, CRLF (section 2.1 counts 104). */
#define TERN_PROXY_V1_MAX_LEN 104u
/* The fixed part of a v2 header: signature, ver_cmd, fam, len. */
#define TERN_PROXY_V2_FIXED_LEN 16u
/* A v2 header is at most the fixed part and a 16-bit length. */
#define TERN_PROXY_V2_LIMIT (TERN_PROXY_V2_FIXED_LEN + 0xffffu)

/* The v2 wire format (section 2.2), for the encoder here and the parser
 * (proxy_parse.h): the 12-byte signature "\r\n\r\n\0\r\nQUIT\n"; the 13th
 * byte, version (high nibble) and command (low); the 14th, address family
 * and transport; the address block each family carries (two addresses,
 * two ports); a TLV's type and 16-bit length, and the CRC32C value. */
extern const uint8_t tern_pp2_signature[12];
#define TERN_PP2_VERSION 0x20u
#define TERN_PP2_CMD_LOCAL 0x00u
#define TERN_PP2_CMD_PROXY 0x01u
#define TERN_PP2_FAM_UNSPEC 0x00u
#define TERN_PP2_FAM_TCP4 0x11u
#define TERN_PP2_FAM_UDP4 0x12u
#define TERN_PP2_FAM_TCP6 0x21u
#define TERN_PP2_FAM_UDP6 0x22u
#define TERN_PP2_FAM_UNIX_STREAM 0x31u
#define TERN_PP2_FAM_UNIX_DGRAM 0x32u
#define TERN_PP2_ADDR_LEN_INET 12u   /* 2*4 + 2*2 */
#define TERN_PP2_ADDR_LEN_INET6 36u  /* 2*16 + 2*2 */
#define TERN_PP2_ADDR_LEN_UNIX 216u  /* 2*108 */
#define TERN_PP2_TLV_HDR_LEN 3u      /* type, length_hi, length_lo */
#define TERN_PP2_CRC32C_LEN 4u

/* TLV types and sub-types (section 2.2). */
#define TERN_PP2_TYPE_ALPN 0x01
#define TERN_PP2_TYPE_AUTHORITY 0x02
#define TERN_PP2_TYPE_CRC32C 0x03
#define TERN_PP2_TYPE_SSL 0x20
#define TERN_PP2_SUBTYPE_SSL_VERSION 0x21
#define TERN_PP2_SUBTYPE_SSL_CN 0x22
#define TERN_PP2_SUBTYPE_SSL_CIPHER 0x23
#define TERN_PP2_SUBTYPE_SSL_CLIENT_CERT 0x28
/* The `client` field of PP2_TYPE_SSL. */
#define TERN_PP2_CLIENT_SSL 0x01
#define TERN_PP2_CLIENT_CERT_CONN 0x02
#define TERN_PP2_CLIENT_CERT_SESS 0x04
/* `verify` when no certificate was presented: OpenSSL's
 * X509_V_ERR_UNSPECIFIED, non-zero as section 2.2.6 asks. */
#define TERN_PP2_VERIFY_NO_CERT 1u

enum tern_proxy_family {
	TERN_PROXY_FAMILY_UNSPEC = 0, /* unknown: v1 UNKNOWN, v2 LOCAL */
	TERN_PROXY_FAMILY_INET,       /* TCP over IPv4 */
	TERN_PROXY_FAMILY_INET6,      /* TCP over IPv6 */
};

/* What the backend is told about one client connection. Pointers are
 * borrowed for the duration of the encode call; NULL (or a zero length)
 * means "absent" and leaves the TLV out. */
struct tern_proxy_info {
	enum tern_proxy_family family;
	/* Source = the client, destination = the address it connected to.
	 * Network byte order; IPv4 uses the first 4 bytes. Ports in host
	 * order. Ignored for TERN_PROXY_FAMILY_UNSPEC. */
	uint8_t src_addr[16];
	uint8_t dst_addr[16];
	uint16_t src_port;
	uint16_t dst_port;

	const uint8_t *alpn; /* the negotiated protocol, e.g. "h2" */
	size_t alpn_len;
	const char *sni; /* NUL-terminated host name (PP2_TYPE_AUTHORITY) */

	bool tls;       /* the client spoke TLS: PP2_TYPE_SSL is sent */
	bool cert_conn; /* a client certificate came in this connection */
	bool cert_sess; /* ... or at least once in its TLS session */
	uint32_t verify; /* X509_V_OK (0) or the verify error; used when a
			  * certificate was presented */
	const char *tls_version; /* "TLSv1.3" */
	const char *cipher;      /* OpenSSL's name, "TLS_AES_128_GCM_SHA256" */
	const char *cn;          /* the client certificate's subject CN, UTF-8 */
	const uint8_t *cert_der; /* the client certificate, DER */
	size_t cert_der_len;
};

/* Sets family, addresses and ports from two socket addresses (what
 * getpeername()/getsockname() give on the client socket). Both AF_INET:
 * IPv4. Both AF_INET6, or one of each (the IPv4 one is written as
 * ::ffff:a.b.c.d, as HAProxy does): IPv6. Anything else, or NULL:
 * unspecified. Leaves every other field alone. */
void tern_proxy_info_set_addrs(struct tern_proxy_info *info, const struct sockaddr *src,
			       const struct sockaddr *dst);

/* Writes the v1 line for info into out (no NUL). Returns its length
 * (at most TERN_PROXY_V1_MAX_LEN), or -ENOSPC when out_len is too small
 * (out is then unspecified). */
__attribute__((warn_unused_result))
int tern_proxy_v1_encode(const struct tern_proxy_info *info, uint8_t *out, size_t out_len);

/* The exact length tern_proxy_v2_encode() writes for info: at most
 * TERN_PROXY_V2_LIMIT, the client certificate left out when it would not
 * fit. Returns 0 when even without it the header would pass the 16-bit
 * limit (strings of tens of kilobytes; never from real TLS). */
size_t tern_proxy_v2_max_len(const struct tern_proxy_info *info);

/* Writes the v2 header for info into out. Returns its length, -ENOSPC when
 * out_len is smaller than tern_proxy_v2_max_len(info) (out is then
 * unspecified), or -EMSGSIZE when that is 0. */
__attribute__((warn_unused_result))
int tern_proxy_v2_encode(const struct tern_proxy_info *info, uint8_t *out, size_t out_len);

/* CRC32C (Castagnoli, reflected, polynomial 0x82F63B78; RFC 4960
 * appendix B) of len bytes, starting from a fresh CRC:
 * tern_crc32c("123456789", 9) == 0xE3069283. */
uint32_t tern_crc32c(const void *data, size_t len);

/* The CRC32C of what crc was computed over followed by len more bytes:
 * tern_crc32c_extend(tern_crc32c(a, n), b, m) is the CRC of a then b, so
 * a header can be checked in pieces (the PROXY header parser feeds its
 * CRC field as zeros without copying the header). crc 0 starts afresh. */
uint32_t tern_crc32c_extend(uint32_t crc, const void *data, size_t len);

#endif
