/* Fuzzes the PROXY protocol header parser (include/tern/proxy_parse.h),
 * what --accept-proxy reads from a load balancer before TLS.
 *
 * Input: one byte of choices, then the bytes the connection received.
 * The choice byte's low two bits are the versions accepted (0 and 3 any,
 * 1 v1, 2 v2); the rest pick the receive buffer's size (0: the largest
 * header there can be, else 16 + n * 256 bytes).
 *
 * What must hold, whatever the bytes:
 *   - an answer is a length within the input (and within the bounds: 107
 *     bytes for v1, the buffer for v2), 0, or -EPROTO with a reason;
 *   - the answers agree as the bytes arrive: every prefix of the input
 *     shorter than a header's length asks for more, once refused always
 *     refused, and once whole the same header whatever follows it (the
 *     connection asks again each time a read adds bytes);
 *   - an address read back encodes (tern's own encoder) and parses again
 *     to the same address, v1 and v2. */
#include <errno.h>

#include "fuzz_util.h"
#include "tern/proxy_parse.h"
#include "tern/proxy_proto.h"

/* Prefixes checked one by one: all of them up to here, then a few. */
#define ALL_PREFIXES_UP_TO 300u

static void check_answer(int rc, size_t len, size_t max_len, const struct tern_proxy_header *h)
{
	FUZZ_CHECK(rc == 0 || rc == -EPROTO || (rc > 0 && (size_t)rc <= len));
	FUZZ_CHECK((rc == -EPROTO) == (h->why != NULL));
	if (rc > 0) {
		FUZZ_CHECK(h->version == 1 || h->version == 2);
		FUZZ_CHECK(h->version != 1 || (size_t)rc <= TERN_PROXY_V1_LINE_MAX);
		FUZZ_CHECK(h->version != 2 || (size_t)rc <= max_len);
		FUZZ_CHECK(h->version != 2 || (size_t)rc >= TERN_PROXY_V2_FIXED_LEN);
	} else {
		FUZZ_CHECK(h->family == TERN_PROXY_FAMILY_UNSPEC);
	}
}

/* The answer for the first n bytes, from an exact-size copy. */
static int parse_prefix(const uint8_t *p, size_t n, unsigned versions, size_t max_len,
			struct tern_proxy_header *out)
{
	uint8_t *copy = malloc(n ? n : 1);
	FUZZ_CHECK(copy != NULL);
	if (n)
		memcpy(copy, p, n);
	int rc = tern_proxy_parse(copy, n, versions, max_len, out);
	free(copy);
	check_answer(rc, n, max_len, out);
	return rc;
}

/* A prefix's answer against the whole input's. */
static void check_prefix(const uint8_t *p, size_t n, unsigned versions, size_t max_len, int whole,
			 const struct tern_proxy_header *whole_hdr)
{
	struct tern_proxy_header h;
	int rc = parse_prefix(p, n, versions, max_len, &h);

	if (whole > 0 && n < (size_t)whole)
		FUZZ_CHECK(rc == 0);
	if (whole > 0 && n >= (size_t)whole) {
		FUZZ_CHECK(rc == whole);
		FUZZ_CHECK(memcmp(&h, whole_hdr, sizeof(h)) == 0);
	}
	if (whole == 0)
		FUZZ_CHECK(rc == 0);
	if (rc < 0)
		FUZZ_CHECK(whole < 0); /* refused stays refused */
}

/* An address read from the header, written back by tern's encoder and
 * read again. */
static void check_round_trip(const struct tern_proxy_header *h)
{
	struct tern_proxy_info info = {0};
	struct tern_proxy_header back;
	uint8_t buf[512];

	if (h->family == TERN_PROXY_FAMILY_UNSPEC)
		return;
	info.family = h->family;
	memcpy(info.src_addr, h->src_addr, sizeof(info.src_addr));
	memcpy(info.dst_addr, h->dst_addr, sizeof(info.dst_addr));
	info.src_port = h->src_port;
	info.dst_port = h->dst_port;

	int n = tern_proxy_v1_encode(&info, buf, sizeof(buf));
	FUZZ_CHECK(n > 0);
	FUZZ_CHECK(tern_proxy_parse(buf, (size_t)n, TERN_PROXY_PARSE_V1, sizeof(buf), &back) == n);
	FUZZ_CHECK(back.family == h->family && back.src_port == h->src_port &&
		   back.dst_port == h->dst_port);
	FUZZ_CHECK(memcmp(back.src_addr, h->src_addr, 16) == 0 &&
		   memcmp(back.dst_addr, h->dst_addr, 16) == 0);

	n = tern_proxy_v2_encode(&info, buf, sizeof(buf));
	FUZZ_CHECK(n > 0);
	FUZZ_CHECK(tern_proxy_parse(buf, (size_t)n, TERN_PROXY_PARSE_V2, sizeof(buf), &back) == n);
	FUZZ_CHECK(back.family == h->family && back.src_port == h->src_port &&
		   back.dst_port == h->dst_port);
	FUZZ_CHECK(memcmp(back.src_addr, h->src_addr, 16) == 0 &&
		   memcmp(back.dst_addr, h->dst_addr, 16) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tern_proxy_header whole_hdr;

	if (size == 0)
		return 0;
	unsigned versions = data[0] & 3u;
	if (versions == 0)
		versions = TERN_PROXY_PARSE_ANY;
	size_t max_len = (data[0] >> 2) == 0 ? TERN_PROXY_V2_LIMIT : 16u + (size_t)(data[0] >> 2) * 256u;
	const uint8_t *p = data + 1;
	size_t len = size - 1;

	int whole = parse_prefix(p, len, versions, max_len, &whole_hdr);
	for (size_t n = 0; n < len && n <= ALL_PREFIXES_UP_TO; n++)
		check_prefix(p, n, versions, max_len, whole, &whole_hdr);
	if (len > ALL_PREFIXES_UP_TO) {
		check_prefix(p, len - 1, versions, max_len, whole, &whole_hdr);
		check_prefix(p, len / 2, versions, max_len, whole, &whole_hdr);
		if (whole > 0)
			check_prefix(p, (size_t)whole - 1, versions, max_len, whole, &whole_hdr);
	}
	if (whole > 0)
		check_round_trip(&whole_hdr);
	return 0;
}
