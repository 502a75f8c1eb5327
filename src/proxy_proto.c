/* The PROXY protocol encoder (v1 text, v2 binary with TLVs and CRC32C). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tern/proxy_proto.h"

/* Section 2.2 (proxy_proto.h). */
const uint8_t tern_pp2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
#define PP2_SSL_FIXED_LEN 5u   /* client (1), verify (4) */
#define PP2_CRC32C_TLV_LEN (TERN_PP2_TLV_HDR_LEN + TERN_PP2_CRC32C_LEN)

/* CRC32C, reflected, polynomial 0x82F63B78: table[i] is the CRC of the
 * byte i alone (eight shift-and-xor steps), so a byte costs one lookup.
 * tests/unit/proxy_proto_test.c checks the CRC of every single byte value
 * (each reaches a different entry) against a bit-at-a-time CRC. */
static const uint32_t crc32c_table[256] = {
	0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu, 0x35f1141cu,
	0x26a1e7e8u, 0xd4ca64ebu, 0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu,
	0x4d43cfd0u, 0xbf284cd3u, 0xac78bf27u, 0x5e133c24u, 0x105ec76fu, 0xe235446cu,
	0xf165b798u, 0x030e349bu, 0xd7c45070u, 0x25afd373u, 0x36ff2087u, 0xc494a384u,
	0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u, 0x5d1d08bfu, 0xaf768bbcu,
	0xbc267848u, 0x4e4dfb4bu, 0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u, 0x33ed7d2au,
	0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u, 0xaa64d611u, 0x580f5512u,
	0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau,
	0x30e349b1u, 0xc288cab2u, 0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu,
	0x1642ae59u, 0xe4292d5au, 0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au,
	0x7da08661u, 0x8fcb0562u, 0x9c9bf696u, 0x6ef07595u, 0x417b1dbcu, 0xb3109ebfu,
	0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u, 0x67dafa54u, 0x95b17957u,
	0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u, 0x0c38d26cu, 0xfe53516fu,
	0xed03a29bu, 0x1f682198u, 0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u,
	0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u, 0xdbfc821cu, 0x2997011fu,
	0x3ac7f2ebu, 0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u,
	0x61c69362u, 0x93ad1061u, 0x80fde395u, 0x72966096u, 0xa65c047du, 0x5437877eu,
	0x4767748au, 0xb50cf789u, 0xeb1fcbadu, 0x197448aeu, 0x0a24bb5au, 0xf84f3859u,
	0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u, 0x7198540du, 0x83f3d70eu,
	0x90a324fau, 0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u, 0xa55230e6u,
	0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu, 0xceb018deu,
	0xdde0eb2au, 0x2f8b6829u, 0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu,
	0x456cac67u, 0xb7072f64u, 0xa457dc90u, 0x563c5f93u, 0x082f63b7u, 0xfa44e0b4u,
	0xe9141340u, 0x1b7f9043u, 0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu,
	0x92a8fc17u, 0x60c37f14u, 0x73938ce0u, 0x81f80fe3u, 0x55326b08u, 0xa759e80bu,
	0xb4091bffu, 0x466298fcu, 0x1871a4d8u, 0xea1a27dbu, 0xf94ad42fu, 0x0b21572cu,
	0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u, 0xa24bb5a6u, 0x502036a5u,
	0x4370c551u, 0xb11b4652u, 0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
	0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u,
	0x0e330a81u, 0xfc588982u, 0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du,
	0x758fe5d6u, 0x87e466d5u, 0x94b49521u, 0x66df1622u, 0x38cc2a06u, 0xcaa7a905u,
	0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u, 0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu,
	0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u, 0x0417b1dbu, 0xf67c32d8u,
	0xe52cc12cu, 0x1747422fu, 0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu, 0x5a048dffu,
	0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u, 0xd3d3e1abu, 0x21b862a8u,
	0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u,
	0x590ab964u, 0xab613a67u, 0xb831c993u, 0x4a5a4a90u, 0x9e902e7bu, 0x6cfbad78u,
	0x7fab5e8cu, 0x8dc0dd8fu, 0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu,
	0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u, 0x37faccf1u, 0x69e9f0d5u, 0x9b8273d6u,
	0x88d28022u, 0x7ab90321u, 0xae7367cau, 0x5c18e4c9u, 0x4f48173du, 0xbd23943eu,
	0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au, 0xc69f7b69u,
	0xd5cf889du, 0x27a40b9eu, 0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu,
	0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};

uint32_t tern_crc32c_extend(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	crc ^= 0xffffffffu;
	for (size_t i = 0; i < len; i++)
		crc = (crc >> 8) ^ crc32c_table[(crc ^ p[i]) & 0xffu];
	return crc ^ 0xffffffffu;
}

uint32_t tern_crc32c(const void *data, size_t len)
{
	return tern_crc32c_extend(0, data, len);
}

void tern_proxy_info_set_addrs(struct tern_proxy_info *info, const struct sockaddr *src,
			       const struct sockaddr *dst)
{
	const struct sockaddr *sides[2] = {src, dst};
	uint8_t *addrs[2] = {info->src_addr, info->dst_addr};
	uint16_t *ports[2] = {&info->src_port, &info->dst_port};
	bool any_inet6 = false;

	info->family = TERN_PROXY_FAMILY_UNSPEC;
	memset(info->src_addr, 0, sizeof(info->src_addr));
	memset(info->dst_addr, 0, sizeof(info->dst_addr));
	info->src_port = 0;
	info->dst_port = 0;
	for (int i = 0; i < 2; i++) {
		if (sides[i] == NULL ||
		    (sides[i]->sa_family != AF_INET && sides[i]->sa_family != AF_INET6))
			return;
		any_inet6 |= sides[i]->sa_family == AF_INET6;
	}
	for (int i = 0; i < 2; i++) {
		if (sides[i]->sa_family == AF_INET6) {
			struct sockaddr_in6 sin6;
			memcpy(&sin6, sides[i], sizeof(sin6));
			memcpy(addrs[i], &sin6.sin6_addr, 16);
			*ports[i] = ntohs(sin6.sin6_port);
		} else {
			struct sockaddr_in sin;
			memcpy(&sin, sides[i], sizeof(sin));
			if (any_inet6) {
				/* ::ffff:a.b.c.d, the IPv4-mapped form (RFC 4291
				 * 2.5.5.2), so both sides share a family. */
				addrs[i][10] = 0xff;
				addrs[i][11] = 0xff;
				memcpy(addrs[i] + 12, &sin.sin_addr, 4);
			} else {
				memcpy(addrs[i], &sin.sin_addr, 4);
			}
			*ports[i] = ntohs(sin.sin_port);
		}
	}
	info->family = any_inet6 ? TERN_PROXY_FAMILY_INET6 : TERN_PROXY_FAMILY_INET;
}

/* Decimal without leading zeros (section 2.1 forbids them). */
static size_t put_decimal(char *out, unsigned v)
{
	char digits[10];
	size_t n = 0;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		out[i] = digits[n - 1 - i];
	return n;
}

/* "a.b.c.d": at most 15 bytes. */
static size_t put_ipv4(char *out, const uint8_t *a)
{
	size_t n = 0;

	for (int i = 0; i < 4; i++) {
		if (i > 0)
			out[n++] = '.';
		n += put_decimal(out + n, a[i]);
	}
	return n;
}

/* RFC 5952 text (lower case, no leading zeros, the longest run of two or
 * more zero groups as "::", the first such run on a tie), always as hex
 * groups: section 2.1 admits only colon-separated hex, so an IPv4-mapped
 * address is "::ffff:102:304", never inet_ntop's "::ffff:1.2.3.4".
 * At most 39 bytes. */
static size_t put_ipv6(char *out, const uint8_t *a)
{
	static const char hex[] = "0123456789abcdef";
	unsigned groups[8];
	int best_at = -1, best_len = 0;
	size_t n = 0;

	for (int i = 0; i < 8; i++)
		groups[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
	for (int i = 0; i < 8;) {
		int j = i;
		while (j < 8 && groups[j] == 0)
			j++;
		if (j - i > best_len && j - i >= 2) {
			best_at = i;
			best_len = j - i;
		}
		i = j > i ? j : i + 1;
	}
	for (int i = 0; i < 8; i++) {
		if (i == best_at) {
			out[n++] = ':';
			out[n++] = ':';
			i += best_len - 1;
			continue;
		}
		if (i > 0 && i != best_at + best_len)
			out[n++] = ':';
		bool started = false;
		for (int shift = 12; shift >= 0; shift -= 4) {
			unsigned nibble = (groups[i] >> shift) & 0xfu;
			if (nibble != 0 || started || shift == 0) {
				out[n++] = hex[nibble];
				started = true;
			}
		}
	}
	return n;
}

int tern_proxy_v1_encode(const struct tern_proxy_info *info, uint8_t *out, size_t out_len)
{
	char line[TERN_PROXY_V1_MAX_LEN];
	size_t n = 0;

	switch (info->family) {
	case TERN_PROXY_FAMILY_INET:
		memcpy(line, "PROXY TCP4 ", 11);
		n = 11;
		n += put_ipv4(line + n, info->src_addr);
		line[n++] = ' ';
		n += put_ipv4(line + n, info->dst_addr);
		break;
	case TERN_PROXY_FAMILY_INET6:
		memcpy(line, "PROXY TCP6 ", 11);
		n = 11;
		n += put_ipv6(line + n, info->src_addr);
		line[n++] = ' ';
		n += put_ipv6(line + n, info->dst_addr);
		break;
	case TERN_PROXY_FAMILY_UNSPEC:
	default:
		/* The short form: the rest of the line may be omitted. */
		memcpy(line, "PROXY UNKNOWN\r\n", 15);
		n = 15;
		goto out;
	}
	line[n++] = ' ';
	n += put_decimal(line + n, info->src_port);
	line[n++] = ' ';
	n += put_decimal(line + n, info->dst_port);
	line[n++] = '\r';
	line[n++] = '\n';
out:
	if (n > out_len)
		return -ENOSPC;
	memcpy(out, line, n);
	return (int)n;
}

static size_t str_len(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

static size_t tlv_len(size_t value_len)
{
	return value_len > 0 ? TERN_PP2_TLV_HDR_LEN + value_len : 0;
}

static size_t cert_tlv_len(const struct tern_proxy_info *info)
{
	return info->cert_der != NULL ? tlv_len(info->cert_der_len) : 0;
}

/* The PP2_TYPE_SSL value without the client certificate sub-TLV. */
static size_t ssl_value_len_base(const struct tern_proxy_info *info)
{
	return PP2_SSL_FIXED_LEN + tlv_len(str_len(info->tls_version)) + tlv_len(str_len(info->cn)) +
	       tlv_len(str_len(info->cipher));
}

/* The header without the client certificate sub-TLV. */
static size_t v2_len_base(const struct tern_proxy_info *info)
{
	size_t len = TERN_PROXY_V2_FIXED_LEN + PP2_CRC32C_TLV_LEN;

	if (info->family == TERN_PROXY_FAMILY_INET)
		len += TERN_PP2_ADDR_LEN_INET;
	else if (info->family == TERN_PROXY_FAMILY_INET6)
		len += TERN_PP2_ADDR_LEN_INET6;
	len += info->alpn != NULL ? tlv_len(info->alpn_len) : 0;
	len += tlv_len(str_len(info->sni));
	if (info->tls)
		len += TERN_PP2_TLV_HDR_LEN + ssl_value_len_base(info);
	return len;
}

/* Whether the client certificate goes in: only with TLS, and only when
 * the header still fits its 16-bit length with it. */
static bool v2_has_cert(const struct tern_proxy_info *info, size_t base)
{
	size_t cert = cert_tlv_len(info);
	return info->tls && cert > 0 && cert <= TERN_PROXY_V2_LIMIT - base;
}

size_t tern_proxy_v2_max_len(const struct tern_proxy_info *info)
{
	size_t base = v2_len_base(info);

	if (base > TERN_PROXY_V2_LIMIT)
		return 0;
	return base + (v2_has_cert(info, base) ? cert_tlv_len(info) : 0);
}

static uint8_t *put_u16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

/* One TLV; nothing for an empty value (the caller's "absent"). */
static uint8_t *put_tlv(uint8_t *p, uint8_t type, const void *value, size_t len)
{
	if (len == 0)
		return p;
	*p++ = type;
	p = put_u16(p, len);
	memcpy(p, value, len);
	return p + len;
}

int tern_proxy_v2_encode(const struct tern_proxy_info *info, uint8_t *out, size_t out_len)
{
	size_t base = v2_len_base(info);
	size_t total = tern_proxy_v2_max_len(info);
	uint8_t *p = out;

	if (total == 0)
		return -EMSGSIZE;
	if (out_len < total)
		return -ENOSPC;
	bool with_cert = v2_has_cert(info, base);

	memcpy(p, tern_pp2_signature, sizeof(tern_pp2_signature));
	p += sizeof(tern_pp2_signature);
	switch (info->family) {
	case TERN_PROXY_FAMILY_INET:
		*p++ = TERN_PP2_VERSION | TERN_PP2_CMD_PROXY;
		*p++ = TERN_PP2_FAM_TCP4;
		p = put_u16(p, total - TERN_PROXY_V2_FIXED_LEN);
		memcpy(p, info->src_addr, 4);
		memcpy(p + 4, info->dst_addr, 4);
		p = put_u16(p + 8, info->src_port);
		p = put_u16(p, info->dst_port);
		break;
	case TERN_PROXY_FAMILY_INET6:
		*p++ = TERN_PP2_VERSION | TERN_PP2_CMD_PROXY;
		*p++ = TERN_PP2_FAM_TCP6;
		p = put_u16(p, total - TERN_PROXY_V2_FIXED_LEN);
		memcpy(p, info->src_addr, 16);
		memcpy(p + 16, info->dst_addr, 16);
		p = put_u16(p + 32, info->src_port);
		p = put_u16(p, info->dst_port);
		break;
	case TERN_PROXY_FAMILY_UNSPEC:
	default:
		/* Unknown endpoints: LOCAL, as HAProxy sends; the receiver
		 * then uses the connection's own addresses (section 2.2). */
		*p++ = TERN_PP2_VERSION | TERN_PP2_CMD_LOCAL;
		*p++ = TERN_PP2_FAM_UNSPEC;
		p = put_u16(p, total - TERN_PROXY_V2_FIXED_LEN);
		break;
	}

	/* CRC32C first, zeroed; filled in once the header is complete. */
	uint8_t *crc_at = p + TERN_PP2_TLV_HDR_LEN;
	p = put_tlv(p, TERN_PP2_TYPE_CRC32C, "\0\0\0\0", 4);
	if (info->alpn != NULL)
		p = put_tlv(p, TERN_PP2_TYPE_ALPN, info->alpn, info->alpn_len);
	p = put_tlv(p, TERN_PP2_TYPE_AUTHORITY, info->sni, str_len(info->sni));
	if (info->tls) {
		size_t ssl_len = ssl_value_len_base(info) + (with_cert ? cert_tlv_len(info) : 0);
		uint8_t client = TERN_PP2_CLIENT_SSL;
		bool cert = info->cert_conn || info->cert_sess;

		if (info->cert_conn)
			client |= TERN_PP2_CLIENT_CERT_CONN;
		if (info->cert_sess)
			client |= TERN_PP2_CLIENT_CERT_SESS;
		*p++ = TERN_PP2_TYPE_SSL;
		p = put_u16(p, ssl_len);
		*p++ = client;
		p = put_u32(p, cert ? info->verify : TERN_PP2_VERIFY_NO_CERT);
		p = put_tlv(p, TERN_PP2_SUBTYPE_SSL_VERSION, info->tls_version, str_len(info->tls_version));
		p = put_tlv(p, TERN_PP2_SUBTYPE_SSL_CN, info->cn, str_len(info->cn));
		p = put_tlv(p, TERN_PP2_SUBTYPE_SSL_CIPHER, info->cipher, str_len(info->cipher));
		if (with_cert)
			p = put_tlv(p, TERN_PP2_SUBTYPE_SSL_CLIENT_CERT, info->cert_der,
				    info->cert_der_len);
	}
	/* Always on: a miscounted length would send garbage to a backend. */
	if ((size_t)(p - out) != total)
		abort();
	put_u32(crc_at, tern_crc32c(out, total));
	return (int)total;
}
