/* Fuzzes the PROXY protocol encoder (include/tern/proxy_proto.h): a struct
 * tern_proxy_info is filled from the input, encoded as v1 and v2 into
 * buffers of exactly the announced size, and decoded back here by a
 * minimal decoder written from HAProxy's doc/proxy-protocol.txt rather
 * than from the encoder, which must find every field as it was given.
 * tern_proxy_info_set_addrs is fuzzed with socket addresses from the
 * input too.
 *
 * Input layout (every field reads as zero once the input runs out):
 *   u8 family (mod 3), u8 flags (bit 0 tls, 1 cert_conn, 2 cert_sess,
 *   3 alpn given, 4 sni, 5 version, 6 cipher, 7 cn), u8 more flags (bit 0
 *   cert given, bits 1-4 the families for set_addrs), 16+16 address
 *   bytes, u16 ports, u32 verify, one length byte for each of alpn, sni,
 *   tls_version, cipher, cn and cert_der, then the pool of bytes the
 *   values are cut from. A length byte below 0xf0 is that many bytes;
 *   0xf0..0xff is (b - 0xef) * 8 KiB, up to 128 KiB, to reach the 16-bit
 *   limit of a v2 header. Values longer than the pool repeat it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fuzz_util.h"
#include "tern/proxy_proto.h"

static const uint8_t pp2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* CRC32C a bit at a time (RFC 3720 appendix B.4), independent of the
 * encoder's table. */
static uint32_t crc32c_bitwise(const uint8_t *p, size_t len)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static size_t value_len(uint8_t b)
{
	return b < 0xf0 ? b : (size_t)(b - 0xef) * 8192u;
}

/* len bytes cut from the pool (repeated as needed), NUL bytes made 'x'
 * when a C string is wanted; a NUL after them either way. */
static uint8_t *make_value(const uint8_t *pool, size_t pool_len, size_t len, bool c_string)
{
	uint8_t *v = malloc(len + 1);

	FUZZ_CHECK(v != NULL);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = pool_len ? pool[i % pool_len] : 'x';
		v[i] = c_string && c == 0 ? 'x' : c;
	}
	v[len] = 0;
	return v;
}

static size_t get16(const uint8_t *p)
{
	return (size_t)p[0] << 8 | p[1];
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The next TLV within [*at, end): its type, value and length. */
static void next_tlv(const uint8_t *buf, size_t *at, size_t end, uint8_t *type, const uint8_t **value,
		     size_t *len)
{
	FUZZ_CHECK(end - *at >= 3);
	*type = buf[*at];
	*len = get16(buf + *at + 1);
	FUZZ_CHECK(*len <= end - *at - 3);
	*value = buf + *at + 3;
	*at += 3 + *len;
}

static void expect_tlv(const uint8_t *buf, size_t *at, size_t end, uint8_t want_type, const void *want,
		       size_t want_len)
{
	uint8_t type;
	const uint8_t *value;
	size_t len;

	next_tlv(buf, at, end, &type, &value, &len);
	FUZZ_CHECK(type == want_type && len == want_len && memcmp(value, want, len) == 0);
}

static size_t str_len(const char *s)
{
	return s ? strlen(s) : 0;
}

/* Decodes a v2 header of exactly len bytes and checks it against info. */
static void check_v2(const struct tern_proxy_info *info, const uint8_t *buf, size_t len)
{
	FUZZ_CHECK(len >= 16 && len <= TERN_PROXY_V2_LIMIT);
	FUZZ_CHECK(memcmp(buf, pp2_signature, 12) == 0);
	FUZZ_CHECK(get16(buf + 14) == len - 16);
	size_t at = 16;
	switch (info->family) {
	case TERN_PROXY_FAMILY_INET:
		FUZZ_CHECK(buf[12] == 0x21 && buf[13] == 0x11 && len >= 16 + 12);
		FUZZ_CHECK(memcmp(buf + 16, info->src_addr, 4) == 0 && memcmp(buf + 20, info->dst_addr, 4) == 0);
		FUZZ_CHECK(get16(buf + 24) == info->src_port && get16(buf + 26) == info->dst_port);
		at += 12;
		break;
	case TERN_PROXY_FAMILY_INET6:
		FUZZ_CHECK(buf[12] == 0x21 && buf[13] == 0x21 && len >= 16 + 36);
		FUZZ_CHECK(memcmp(buf + 16, info->src_addr, 16) == 0 && memcmp(buf + 32, info->dst_addr, 16) == 0);
		FUZZ_CHECK(get16(buf + 48) == info->src_port && get16(buf + 50) == info->dst_port);
		at += 36;
		break;
	default:
		FUZZ_CHECK(buf[12] == 0x20 && buf[13] == 0x00);
		break;
	}

	/* CRC32C first (section 2.2.3): of the whole header, this field
	 * zeroed. */
	uint8_t type;
	const uint8_t *value;
	size_t vlen;
	next_tlv(buf, &at, len, &type, &value, &vlen);
	FUZZ_CHECK(type == TERN_PP2_TYPE_CRC32C && vlen == 4);
	uint8_t *copy = malloc(len);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, buf, len);
	memset(copy + (value - buf), 0, 4);
	FUZZ_CHECK(crc32c_bitwise(copy, len) == get32(value));
	free(copy);

	if (info->alpn != NULL && info->alpn_len > 0)
		expect_tlv(buf, &at, len, TERN_PP2_TYPE_ALPN, info->alpn, info->alpn_len);
	if (str_len(info->sni) > 0)
		expect_tlv(buf, &at, len, TERN_PP2_TYPE_AUTHORITY, info->sni, strlen(info->sni));
	if (info->tls) {
		next_tlv(buf, &at, len, &type, &value, &vlen);
		FUZZ_CHECK(type == TERN_PP2_TYPE_SSL && vlen >= 5);
		bool cert = info->cert_conn || info->cert_sess;
		uint8_t client = TERN_PP2_CLIENT_SSL | (info->cert_conn ? TERN_PP2_CLIENT_CERT_CONN : 0) |
				 (info->cert_sess ? TERN_PP2_CLIENT_CERT_SESS : 0);
		FUZZ_CHECK(value[0] == client);
		FUZZ_CHECK(get32(value + 1) == (cert ? info->verify : TERN_PP2_VERIFY_NO_CERT));
		size_t sub = (size_t)(value - buf) + 5, sub_end = (size_t)(value - buf) + vlen;
		if (str_len(info->tls_version) > 0)
			expect_tlv(buf, &sub, sub_end, TERN_PP2_SUBTYPE_SSL_VERSION, info->tls_version,
				   strlen(info->tls_version));
		if (str_len(info->cn) > 0)
			expect_tlv(buf, &sub, sub_end, TERN_PP2_SUBTYPE_SSL_CN, info->cn, strlen(info->cn));
		if (str_len(info->cipher) > 0)
			expect_tlv(buf, &sub, sub_end, TERN_PP2_SUBTYPE_SSL_CIPHER, info->cipher, strlen(info->cipher));
		bool want_cert = info->cert_der != NULL && info->cert_der_len > 0;
		if (sub < sub_end) {
			FUZZ_CHECK(want_cert);
			expect_tlv(buf, &sub, sub_end, TERN_PP2_SUBTYPE_SSL_CLIENT_CERT, info->cert_der,
				   info->cert_der_len);
		} else if (want_cert) {
			/* Left out only when it could not fit the 16-bit length. */
			FUZZ_CHECK(len + 3 + info->cert_der_len > TERN_PROXY_V2_LIMIT);
		}
		FUZZ_CHECK(sub == sub_end);
	}
	FUZZ_CHECK(at == len);
}

/* The v1 text of one address, as section 2.1 allows it, read back. */
static void check_v1_addr(const char *text, bool v6, const uint8_t *want)
{
	uint8_t got[16];

	FUZZ_CHECK(inet_pton(v6 ? AF_INET6 : AF_INET, text, got) == 1);
	FUZZ_CHECK(memcmp(got, want, v6 ? 16 : 4) == 0);
	if (!v6)
		return;
	/* Hex groups only, and RFC 5952's form: glibc's inet_ntop writes the
	 * same unless it chooses a dotted IPv4 tail. */
	FUZZ_CHECK(strchr(text, '.') == NULL);
	char canon[INET6_ADDRSTRLEN];
	FUZZ_CHECK(inet_ntop(AF_INET6, want, canon, sizeof(canon)) != NULL);
	if (strchr(canon, '.') == NULL)
		FUZZ_CHECK(strcmp(text, canon) == 0);
}

static void check_v1_port(const char *text, uint16_t want)
{
	unsigned long port;

	FUZZ_CHECK(tern_parse_uint(text, 0, 65535, &port) == 0 && port == want);
	FUZZ_CHECK(text[0] != '0' || text[1] == '\0'); /* no leading zeros */
}

static void check_v1(const struct tern_proxy_info *info, const uint8_t *buf, size_t len)
{
	FUZZ_CHECK(len >= 15 && len <= TERN_PROXY_V1_MAX_LEN);
	FUZZ_CHECK(buf[len - 2] == '\r' && buf[len - 1] == '\n');
	char line[TERN_PROXY_V1_MAX_LEN + 1];
	memcpy(line, buf, len - 2);
	line[len - 2] = '\0';
	FUZZ_CHECK(strlen(line) == len - 2);
	if (info->family != TERN_PROXY_FAMILY_INET && info->family != TERN_PROXY_FAMILY_INET6) {
		FUZZ_CHECK(strcmp(line, "PROXY UNKNOWN") == 0);
		return;
	}
	bool v6 = info->family == TERN_PROXY_FAMILY_INET6;
	char *fields[7];
	size_t n = 0;
	for (char *save = NULL, *f = strtok_r(line, " ", &save); f != NULL; f = strtok_r(NULL, " ", &save)) {
		FUZZ_CHECK(n < 6);
		fields[n++] = f;
	}
	FUZZ_CHECK(n == 6 && strcmp(fields[0], "PROXY") == 0 && strcmp(fields[1], v6 ? "TCP6" : "TCP4") == 0);
	/* Single spaces: the fields and five separators make the line. */
	size_t total = 5;
	for (size_t i = 0; i < n; i++)
		total += strlen(fields[i]);
	FUZZ_CHECK(total == len - 2);
	check_v1_addr(fields[2], v6, info->src_addr);
	check_v1_addr(fields[3], v6, info->dst_addr);
	check_v1_port(fields[4], info->src_port);
	check_v1_port(fields[5], info->dst_port);
}

/* set_addrs from two socket addresses of the families in bits 0-1 and
 * 2-3 of which (0 IPv4, 1 IPv6, 2 AF_UNIX, 3 NULL). */
static void fuzz_set_addrs(const struct tern_proxy_info *from, unsigned which)
{
	struct sockaddr_storage ss[2];
	const struct sockaddr *sa[2];
	const uint8_t *addrs[2] = {from->src_addr, from->dst_addr};
	uint16_t ports[2] = {from->src_port, from->dst_port};
	int fam[2];

	memset(ss, 0, sizeof(ss));
	for (int i = 0; i < 2; i++) {
		unsigned w = (which >> (2 * i)) & 3;
		sa[i] = (const struct sockaddr *)&ss[i];
		if (w == 0) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss[i];
			sin->sin_family = AF_INET;
			sin->sin_port = htons(ports[i]);
			memcpy(&sin->sin_addr, addrs[i], 4);
		} else if (w == 1) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss[i];
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(ports[i]);
			memcpy(&sin6->sin6_addr, addrs[i], 16);
		} else if (w == 2) {
			ss[i].ss_family = AF_UNIX;
		} else {
			sa[i] = NULL;
		}
		fam[i] = sa[i] ? ss[i].ss_family : -1;
	}

	struct tern_proxy_info info;
	memset(&info, 0x5a, sizeof(info));
	tern_proxy_info_set_addrs(&info, sa[0], sa[1]);
	bool inet = (fam[0] == AF_INET || fam[0] == AF_INET6) && (fam[1] == AF_INET || fam[1] == AF_INET6);
	if (!inet) {
		FUZZ_CHECK(info.family == TERN_PROXY_FAMILY_UNSPEC);
		return;
	}
	bool v6 = fam[0] == AF_INET6 || fam[1] == AF_INET6;
	FUZZ_CHECK(info.family == (v6 ? TERN_PROXY_FAMILY_INET6 : TERN_PROXY_FAMILY_INET));
	const uint8_t *got[2] = {info.src_addr, info.dst_addr};
	uint16_t got_ports[2] = {info.src_port, info.dst_port};
	for (int i = 0; i < 2; i++) {
		FUZZ_CHECK(got_ports[i] == ports[i]);
		if (fam[i] == AF_INET6) {
			FUZZ_CHECK(memcmp(got[i], addrs[i], 16) == 0);
		} else if (v6) { /* ::ffff:a.b.c.d */
			static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
			FUZZ_CHECK(memcmp(got[i], mapped, 12) == 0 && memcmp(got[i] + 12, addrs[i], 4) == 0);
		} else {
			FUZZ_CHECK(memcmp(got[i], addrs[i], 4) == 0);
		}
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The check value of RFC 3720 and of the header. */
	FUZZ_CHECK(tern_crc32c("123456789", 9) == 0xe3069283u);
	FUZZ_CHECK(crc32c_bitwise((const uint8_t *)"123456789", 9) == 0xe3069283u);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_stream s = {data, size};
	struct tern_proxy_info info;
	size_t n;

	memset(&info, 0, sizeof(info));
	info.family = (enum tern_proxy_family)(fuzz_u8(&s) % 3);
	uint8_t flags = fuzz_u8(&s), more = fuzz_u8(&s);
	memcpy(info.src_addr, fuzz_bytes(&s, 16, &n), n);
	memcpy(info.dst_addr, fuzz_bytes(&s, 16, &n), n);
	info.src_port = fuzz_u16(&s);
	info.dst_port = fuzz_u16(&s);
	info.verify = (uint32_t)fuzz_u16(&s) << 16 | fuzz_u16(&s);
	info.tls = flags & 1;
	info.cert_conn = flags & 2;
	info.cert_sess = flags & 4;
	size_t lens[6];
	for (size_t i = 0; i < 6; i++)
		lens[i] = value_len(fuzz_u8(&s));
	const uint8_t *pool = s.p;
	size_t pool_len = s.left;

	uint8_t *alpn = flags & 8 ? make_value(pool, pool_len, lens[0], false) : NULL;
	char *sni = flags & 16 ? (char *)make_value(pool, pool_len, lens[1], true) : NULL;
	char *version = flags & 32 ? (char *)make_value(pool, pool_len, lens[2], true) : NULL;
	char *cipher = flags & 64 ? (char *)make_value(pool, pool_len, lens[3], true) : NULL;
	char *cn = flags & 128 ? (char *)make_value(pool, pool_len, lens[4], true) : NULL;
	uint8_t *cert = more & 1 ? make_value(pool, pool_len, lens[5], false) : NULL;
	info.alpn = alpn;
	info.alpn_len = alpn ? lens[0] : 0;
	info.sni = sni;
	info.tls_version = version;
	info.cipher = cipher;
	info.cn = cn;
	info.cert_der = cert;
	info.cert_der_len = cert ? lens[5] : 0;

	/* v1: into exactly the room it needs, after a refusal with a byte
	 * less. */
	uint8_t v1[TERN_PROXY_V1_MAX_LEN];
	int v1_len = tern_proxy_v1_encode(&info, v1, sizeof(v1));
	FUZZ_CHECK(v1_len > 0 && (size_t)v1_len <= sizeof(v1));
	uint8_t *exact = malloc((size_t)v1_len);
	FUZZ_CHECK(exact != NULL);
	FUZZ_CHECK(tern_proxy_v1_encode(&info, exact, (size_t)v1_len - 1) == -ENOSPC);
	FUZZ_CHECK(tern_proxy_v1_encode(&info, exact, (size_t)v1_len) == v1_len);
	FUZZ_CHECK(memcmp(exact, v1, (size_t)v1_len) == 0);
	check_v1(&info, exact, (size_t)v1_len);
	free(exact);

	/* v2: the announced length, exactly. */
	size_t v2_max = tern_proxy_v2_max_len(&info);
	FUZZ_CHECK(v2_max <= TERN_PROXY_V2_LIMIT);
	if (v2_max == 0) {
		uint8_t one[1];
		FUZZ_CHECK(tern_proxy_v2_encode(&info, one, sizeof(one)) == -EMSGSIZE);
	} else {
		uint8_t *v2 = malloc(v2_max);
		FUZZ_CHECK(v2 != NULL);
		FUZZ_CHECK(tern_proxy_v2_encode(&info, v2, v2_max - 1) == -ENOSPC);
		FUZZ_CHECK(tern_proxy_v2_encode(&info, v2, v2_max) == (int)v2_max);
		check_v2(&info, v2, v2_max);
		free(v2);
	}

	fuzz_set_addrs(&info, (more >> 1) & 15);

	free(alpn);
	free(sni);
	free(version);
	free(cipher);
	free(cn);
	free(cert);
	return 0;
}
