/* --accept-proxy in the connection (src/conn_accept_proxy.c and the
 * HANDSHAKING sub-state in conn.c), driven by conn_test's scripted engine
 * (conn_fake.h) with a real TLS client: the PROXY header and the
 * ClientHello after it arrive in reads of every size from one byte up, so
 * the header ends at every point of a read, the ClientHello's first bytes
 * often in the same one; each time the handshake completes, the client is
 * the one the header names, and every byte after the header reaches TLS.
 * Then every way it ends before TLS, with its reason and counter. */
/* conn_fake.h is conn_test's too: not every helper of it is used here. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "conn_fake.h"
#include "proxy_vectors.h"

#include "tern/log.h"
#include "tern/proxy_parse.h"

#define HDR_V1 "PROXY TCP4 203.0.113.7 198.51.100.1 40001 8443\r\n"
/* [2001:db8::7]:40002 -> [2001:db8::1]:443, then an AWS-style TLV */
#define HDR_V2                                                               \
	SIG "\x21\x21\x00\x33"                                               \
	"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07" \
	"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" \
	"\x9c\x42" "\x01\xbb" "\xea\x00\x0c\x01vpce-012345"
#define HDR_LOCAL SIG "\x20\x00\x00\x00"

static uint64_t counter(_Atomic uint64_t *c)
{
	return tern_counter_get(c);
}

/* The connection's peer as the access log writes it. */
static const char *peer_of(struct tern_conn *c)
{
	static char out[64];
	char host[INET6_ADDRSTRLEN] = "?";

	if (c->peer.sa.sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->peer;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(out, sizeof(out), "%s:%u", host, ntohs(sin->sin_port));
	} else {
		inet_ntop(AF_INET6, &c->peer.sin6.sin6_addr, host, sizeof(host));
		snprintf(out, sizeof(out), "[%s]:%u", host, ntohs(c->peer.sin6.sin6_port));
	}
	return out;
}

/* The header, then TLS, in reads of `chunk` bytes: the handshake
 * completes, the peer is the header's client, and the client's data
 * reaches the backend exact (with --proxy-protocol v1 behind the header
 * tern sends, naming the same client). */
static void test_header_then_tls(const uint8_t *hdr, size_t hdr_len, enum tern_accept_proxy v,
				 uint32_t chunk, const char *want_peer, const char *want_pp)
{
	struct env e;
	struct env_opts o = {.accept_proxy = v, .accept_from = "127.0.0.0/8", .prefix = hdr,
			     .prefix_len = hdr_len, .proxy_protocol = TERN_PROXY_V1};

	env_init(&e, &o);
	e.client_chunk = chunk;
	run();
	if (!CHECK(e.fc && C()->phase == TERN_PHASE_STREAMING && e.client_done)) {
		fprintf(stderr, "    header of %zu bytes, reads of %u\n", hdr_len, chunk);
		goto out;
	}
	CHECK(C()->phase != TERN_PHASE_PROXY_HEADER);
	CHECK_EQ_STR(peer_of(C()), want_peer);
	client_write("ping", 4);
	run();
	size_t pp_len = strlen(want_pp);
	CHECK_EQ_UINT(e.backend_got_len, pp_len + 4);
	CHECK(e.backend_got_len == pp_len + 4 && memcmp(e.backend_got, want_pp, pp_len) == 0 &&
	      memcmp(e.backend_got + pp_len, "ping", 4) == 0);
	CHECK_EQ_UINT(counter(&e.ctr.handshakes_full), 1);
	CHECK_EQ_UINT(counter(&e.ctr.handshake_failures), 0);
	CHECK_EQ_UINT(counter(&e.ctr.proxy_header_invalid), 0);
out:
	env_free(&e);
}

static void test_every_split(void)
{
	/* Up to past the header's end: reads that end inside the header,
	 * exactly at its end, and a few bytes into the ClientHello. */
	for (uint32_t chunk = 1; chunk <= sizeof(HDR_V1) + 8; chunk++)
		test_header_then_tls(LIT(HDR_V1), TERN_ACCEPT_PROXY_V1, chunk, "203.0.113.7:40001",
				     "PROXY TCP4 203.0.113.7 198.51.100.1 40001 8443\r\n");
	for (uint32_t chunk = 1; chunk <= sizeof(HDR_V2) + 8; chunk++)
		test_header_then_tls(LIT(HDR_V2), TERN_ACCEPT_PROXY_ANY, chunk, "[2001:db8::7]:40002",
				     "PROXY TCP6 2001:db8::7 2001:db8::1 40002 443\r\n");
	/* Everything in one read. */
	test_header_then_tls(LIT(HDR_V1), TERN_ACCEPT_PROXY_ANY, 100000, "203.0.113.7:40001",
			     "PROXY TCP4 203.0.113.7 198.51.100.1 40001 8443\r\n");
	/* LOCAL: the connection's own addresses (the fake's), everywhere. */
	for (uint32_t chunk = 1; chunk <= sizeof(HDR_LOCAL) + 2; chunk++)
		test_header_then_tls(LIT(HDR_LOCAL), TERN_ACCEPT_PROXY_V2, chunk, "127.0.0.1:5555",
				     "PROXY TCP4 127.0.0.1 127.0.0.1 5555 443\r\n");
}

/* Ends before TLS: each with its reason and its own counter, none a
 * handshake failure, and no byte sent to the client (no alert). */
struct end_case {
	const char *name;
	const char *allow;      /* --accept-proxy-from */
	const uint8_t *bytes;   /* the client's, in one read, */
	size_t len;
	int32_t then;           /* then this completion: 0 EOF, -errno, 1 nothing */
	uint64_t timeout_ms;    /* then the clock moves this much */
	const char *reason;
};

static void test_end(const struct end_case *k)
{
	struct env e;
	struct env_opts o = {.accept_proxy = TERN_ACCEPT_PROXY_ANY, .accept_from = k->allow};

	env_init(&e, &o);
	if (e.fc && k->len > 0) {
		CHECK(e.fc->recv_posted[TERN_SIDE_CLIENT]);
		complete_recv(TERN_SIDE_CLIENT, k->bytes, (int32_t)k->len);
	}
	if (e.fc && k->then <= 0) {
		CHECK(e.fc->recv_posted[TERN_SIDE_CLIENT]);
		complete_recv(TERN_SIDE_CLIENT, NULL, k->then);
	}
	if (e.fc && k->timeout_ms) {
		advance(k->timeout_ms - 1);
		CHECK(e.fc != NULL); /* not before */
		advance(1);
	}
	run();
	if (!CHECK(e.fc == NULL))
		fprintf(stderr, "    %s: still open\n", k->name);
	if (!CHECK_EQ_STR(e.last_close_reason, k->reason))
		fprintf(stderr, "    %s\n", k->name);
	CHECK_EQ_UINT(e.client_in.tail, 0); /* nothing was sent */
	CHECK_EQ_UINT(counter(&e.ctr.handshake_failures), 0);
	CHECK_EQ_UINT(counter(&e.ctr.conns_total), 1);
	CHECK_EQ_UINT(counter(&e.ctr.conns_active), 0);
	uint64_t want_probe = strcmp(k->reason, "probe") == 0;
	CHECK_EQ_UINT(counter(&e.ctr.probe_connections), want_probe);
	CHECK_EQ_UINT(counter(&e.ctr.proxy_not_allowed), strcmp(k->reason, "proxy_not_allowed") == 0);
	CHECK_EQ_UINT(counter(&e.ctr.proxy_header_invalid),
		      strcmp(k->reason, "proxy_header_invalid") == 0);
	CHECK_EQ_UINT(counter(&e.ctr.proxy_header_truncated),
		      strcmp(k->reason, "proxy_header_truncated") == 0);
	CHECK_EQ_UINT(counter(&e.ctr.proxy_header_timeout),
		      strcmp(k->reason, "proxy_header_timeout") == 0);
	env_free(&e);
}

static void test_ends(void)
{
	static const uint8_t hello[] = "\x16\x03\x01\x00\xf4\x01\x00\x00\xf0\x03\x03";
	const struct end_case cases[] = {
		{"not allowed", "10.0.0.0/8", NULL, 0, 1, 0, "proxy_not_allowed"},
		{"not allowed, IPv6 range", "::/0", NULL, 0, 1, 0, "proxy_not_allowed"},
		{"no byte, EOF", "127.0.0.1", NULL, 0, 0, 0, "probe"},
		{"no byte, reset", "127.0.0.1", NULL, 0, -ECONNRESET, 0, "probe"},
		{"LOCAL then EOF: a health check", "127.0.0.1", LIT(HDR_LOCAL), 0, 0, "probe"},
		{"half a v1 header, EOF", "127.0.0.1", LIT("PROXY TCP4 203.0"), 0, 0,
		 "proxy_header_truncated"},
		{"half a v2 header, reset", "127.0.0.1", LIT(SIG "\x21\x11"), -ECONNRESET, 0,
		 "proxy_header_truncated"},
		{"half a header, silent", "127.0.0.1", LIT("PROXY "), 1, TERN_DEFAULT_HANDSHAKE_TIMEOUT_MS,
		 "proxy_header_timeout"},
		{"no byte, silent", "127.0.0.1", NULL, 0, 1, TERN_DEFAULT_HANDSHAKE_TIMEOUT_MS,
		 "proxy_header_timeout"},
		{"a ClientHello", "127.0.0.1", hello, sizeof(hello) - 1, 1, 0, "proxy_header_invalid"},
		{"bad v1", "127.0.0.1", LIT("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n"), 1, 0,
		 "proxy_header_invalid"},
		{"bad v2 family", "127.0.0.1", LIT(SIG "\x21\x41"), 1, 0, "proxy_header_invalid"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		test_end(&cases[i]);
}

/* A header as long as --buffer-size (cin's room): taken; one byte more:
 * refused as soon as its length is in. */
static void test_v2_at_the_buffer_limit(void)
{
	for (int over = 0; over <= 1; over++) {
		struct env e;
		size_t total = 1024 + (size_t)over;
		uint8_t *hdr = calloc(1, total);
		memcpy(hdr, SIG "\x21\x11", 14);
		hdr[14] = (uint8_t)((total - 16) >> 8);
		hdr[15] = (uint8_t)(total - 16);
		memcpy(hdr + 16, "\xc0\x00\x02\x09\xc0\x00\x02\x01\x00\x50\x01\xbb", 12);
		hdr[28] = 0x04; /* PP2_TYPE_NOOP over the rest */
		hdr[29] = (uint8_t)((total - 31) >> 8);
		hdr[30] = (uint8_t)(total - 31);
		struct env_opts o = {.buffer_size = 1024, .accept_proxy = TERN_ACCEPT_PROXY_V2,
				     .accept_from = "127.0.0.1", .prefix = hdr, .prefix_len = total};
		env_init(&e, &o);
		e.client_chunk = 100;
		run();
		if (over) {
			CHECK(e.fc == NULL);
			CHECK_EQ_STR(e.last_close_reason, "proxy_header_invalid");
		} else if (CHECK(e.fc && C()->phase == TERN_PHASE_STREAMING)) {
			CHECK_EQ_STR(peer_of(C()), "192.0.2.9:80");
		}
		env_free(&e);
		free(hdr);
	}
}

int main(void)
{
	tern_log_set_level(TERN_LOG_WARN); /* the refusals' info lines */
	ca_key = fixture_key();
	ca_cert = fixture_self_signed(ca_key, "tern test CA");
	client_key = ca_key;
	client_cert = ca_cert;

	test_every_split();
	test_ends();
	test_v2_at_the_buffer_limit();

	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	return check_summary();
}
