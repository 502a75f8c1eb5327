/* The TLS state machine driven in memory: a client and a server tern_tls
 * exchange bytes through tern's own buffers and BIO, moved by a quota that
 * cycles through every size from 1 byte up, so every WANT_READ and
 * WANT_WRITE path of the handshake and the record layer is taken. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "check.h"
#include "tls_fixture.h"
#include "tern/config.h"
#include "tern/tls.h"
#include "tern/tls_ctx.h"

struct side {
	struct tern_tls tls;
	struct tern_buf in, out;
};

/* Moves at most quota bytes from one side's out to the other's in. */
static size_t move_bytes(struct side *from, struct side *to, size_t quota, uint32_t cap)
{
	uint32_t n = tern_buf_len(&from->out);
	if (n > quota)
		n = (uint32_t)quota;
	if (n == 0)
		return 0;
	if (tern_buf_reserve(&to->in, cap) < 0)
		return 0;
	n = tern_buf_write(&to->in, tern_buf_head_ptr(&from->out), n);
	tern_buf_consume(&from->out, n);
	return n;
}

struct pair {
	struct side client, server;
	SSL_CTX *cctx, *sctx;
	unsigned quota; /* cycles 1..max_quota */
	unsigned max_quota;
	uint32_t cap; /* buffer capacity of every side */
};

static size_t next_quota(struct pair *p)
{
	p->quota = p->quota % p->max_quota + 1;
	return p->quota;
}

static void pair_init(struct pair *p, SSL_CTX *sctx, int client_max, uint32_t cap, unsigned max_quota)
{
	memset(p, 0, sizeof(*p));
	p->sctx = sctx;
	p->cctx = fixture_client_ctx(client_max);
	p->cap = cap;
	p->max_quota = max_quota;
	CHECK_EQ_INT(tern_tls_init(&p->server.tls, sctx, false, &p->server.in, &p->server.out, cap), 0);
	CHECK_EQ_INT(tern_tls_init(&p->client.tls, p->cctx, true, &p->client.in, &p->client.out, cap), 0);
	SSL_set_tlsext_host_name(p->client.tls.ssl, "localhost");
}

static void pair_free(struct pair *p)
{
	struct side *sides[2] = {&p->client, &p->server};
	for (int i = 0; i < 2; i++) {
		tern_tls_free(&sides[i]->tls);
		tern_buf_free(&sides[i]->in);
		tern_buf_free(&sides[i]->out);
	}
	SSL_CTX_free(p->cctx);
}

/* Runs both handshakes to completion, moving bytes by quota. */
static bool pair_handshake(struct pair *p)
{
	int cdone = 0, sdone = 0;
	for (int round = 0; round < 100000 && !(cdone == 1 && sdone == 1); round++) {
		if (cdone != 1)
			cdone = tern_tls_handshake(&p->client.tls);
		if (sdone != 1)
			sdone = tern_tls_handshake(&p->server.tls);
		if (cdone < 0 || sdone < 0)
			return false;
		move_bytes(&p->client, &p->server, next_quota(p), p->cap);
		move_bytes(&p->server, &p->client, next_quota(p), p->cap);
	}
	return cdone == 1 && sdone == 1;
}

/* Sends len random bytes from `from` to `to`, with reads of varying size
 * into a small window, and checks they arrive equal. The reader also
 * pumps its own output (TLS 1.3 tickets, key updates) back. */
static bool pair_transfer(struct pair *p, struct side *from, struct side *to, size_t len)
{
	unsigned char *src = malloc(len + 1), *dst = malloc(len + 1);
	size_t sent = 0, got = 0;
	bool ok = false;

	RAND_bytes(src, (int)len + 1);
	for (int round = 0; round < 10000000 && got < len; round++) {
		if (sent < len) {
			size_t chunk = len - sent < 20000 ? len - sent : 20000;
			int n = tern_tls_write(&from->tls, src + sent, chunk);
			if (n < 0)
				goto out;
			sent += (size_t)n;
		}
		move_bytes(from, to, next_quota(p), p->cap);
		move_bytes(to, from, next_quota(p), p->cap);
		size_t want = next_quota(p);
		if (want > len - got)
			want = len - got;
		int n = tern_tls_read(&to->tls, dst + got, want);
		if (n < 0)
			goto out;
		got += (size_t)n;
		/* the sender consumes what the reader sends (tickets) */
		unsigned char sink[64];
		if (tern_tls_read(&from->tls, sink, sizeof(sink)) > 0)
			goto out; /* nothing was sent the other way */
	}
	ok = got == len && memcmp(src, dst, len) == 0;
out:
	free(src);
	free(dst);
	return ok;
}

static void test_round_trip(SSL_CTX *sctx, int version, unsigned max_quota, uint32_t cap)
{
	struct pair p;
	pair_init(&p, sctx, version, cap, max_quota);
	if (!CHECK(pair_handshake(&p))) {
		fprintf(stderr, "    server: %s client: %s\n", p.server.tls.error, p.client.tls.error);
		pair_free(&p);
		return;
	}
	CHECK_EQ_STR(tern_tls_version(&p.server.tls), version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2");
	CHECK_EQ_STR(tern_tls_sni(&p.server.tls), "localhost");
	CHECK(!tern_tls_resumed(&p.server.tls));
	size_t sizes[] = {1, 2, 100, 16383, 16384, 16385, 70000};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		CHECK(pair_transfer(&p, &p.client, &p.server, sizes[i]));
		CHECK(pair_transfer(&p, &p.server, &p.client, sizes[i]));
	}
	/* close_notify from the server reaches the client as an orderly end. */
	CHECK_EQ_INT(tern_tls_shutdown(&p.server.tls), 0);
	for (int i = 0; i < 200; i++)
		move_bytes(&p.server, &p.client, next_quota(&p), p.cap);
	unsigned char b[16];
	CHECK_EQ_INT(tern_tls_read(&p.client.tls, b, sizeof(b)), TERN_TLS_CLOSED);
	pair_free(&p);
}

/* A transport EOF without close_notify also ends the stream (truncation
 * handled as a FIN, SPEC section 6). */
static void test_eof_is_end(SSL_CTX *sctx)
{
	struct pair p;
	pair_init(&p, sctx, TLS1_3_VERSION, 4096, 4096);
	CHECK(pair_handshake(&p));
	p.server.tls.in_eof = true;
	unsigned char b[16];
	CHECK_EQ_INT(tern_tls_read(&p.server.tls, b, sizeof(b)), TERN_TLS_CLOSED);
	pair_free(&p);
}

/* Garbage instead of a ClientHello fails the handshake with a reason. */
static void test_garbage(SSL_CTX *sctx)
{
	struct tern_tls tls;
	struct tern_buf in = {0}, out = {0};
	CHECK_EQ_INT(tern_tls_init(&tls, sctx, false, &in, &out, 4096), 0);
	CHECK_EQ_INT(tern_buf_reserve(&in, 4096), 0);
	const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	CHECK_EQ_UINT(tern_buf_write(&in, http, (uint32_t)strlen(http)), strlen(http));
	CHECK_EQ_INT(tern_tls_handshake(&tls), -EPROTO);
	CHECK(strstr(tls.error, "http request") != NULL);
	tern_tls_free(&tls);
	tern_buf_free(&in);
	tern_buf_free(&out);
}

/* A peer that goes away mid-handshake is -ECONNRESET, not a TLS error. */
static void test_eof_mid_handshake(SSL_CTX *sctx)
{
	struct tern_tls tls;
	struct tern_buf in = {0}, out = {0};
	CHECK_EQ_INT(tern_tls_init(&tls, sctx, false, &in, &out, 4096), 0);
	CHECK_EQ_INT(tern_buf_reserve(&in, 4096), 0);
	const unsigned char partial[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
	CHECK_EQ_UINT(tern_buf_write(&in, partial, sizeof(partial)), sizeof(partial));
	CHECK_EQ_INT(tern_tls_handshake(&tls), 0); /* waits for the rest */
	tls.in_eof = true;
	CHECK_EQ_INT(tern_tls_handshake(&tls), -ECONNRESET);
	tern_tls_free(&tls);
	tern_buf_free(&in);
	tern_buf_free(&out);
}

/* Client-initiated renegotiation is refused: the client's attempt does not
 * produce a new handshake on the server. */
static void test_no_renegotiation(SSL_CTX *sctx)
{
	struct pair p;
	pair_init(&p, sctx, TLS1_2_VERSION, 8192, 8192);
	CHECK(pair_handshake(&p));
	CHECK_EQ_INT(SSL_renegotiate(p.client.tls.ssl), 1);
	int sent = tern_tls_handshake(&p.client.tls); /* sends the new ClientHello */
	CHECK(sent == 0);
	for (int i = 0; i < 10; i++)
		move_bytes(&p.client, &p.server, 8192, p.cap);
	unsigned char b[16];
	int n = tern_tls_read(&p.server.tls, b, sizeof(b));
	CHECK(n == 0 || n == -EPROTO); /* no data; a warning alert or a failure */
	CHECK_EQ_INT(SSL_num_renegotiations(p.server.tls.ssl), 0);
	for (int i = 0; i < 10; i++)
		move_bytes(&p.server, &p.client, 8192, p.cap);
	/* the client hears no_renegotiation (or the connection fails) */
	CHECK(tern_tls_handshake(&p.client.tls) != TERN_TLS_DONE || tern_tls_read(&p.client.tls, b, 1) <= 0);
	pair_free(&p);
}

/* --proxy-protocol's getters, against contexts built here (not from
 * tern's configuration): a client certificate, ALPN and SNI, verified or
 * not, and a resumption, which keeps the session's certificate without
 * presenting it again. */
static int pp_accept_any(int preverify_ok, X509_STORE_CTX *store)
{
	(void)preverify_ok;
	(void)store;
	return 1; /* the handshake goes on; SSL_get_verify_result keeps the error */
}

static int pp_select_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_len,
			  const unsigned char *in, unsigned int in_len, void *arg)
{
	(void)ssl;
	(void)arg;
	static const unsigned char h2[] = "\x02h2";
	unsigned char *sel = NULL;
	if (SSL_select_next_proto(&sel, out_len, h2, 3, in, in_len) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* A server context that asks for a client certificate and trusts
 * `trusted` (NULL: trusts nothing, but lets the handshake go on). */
static SSL_CTX *pp_server_ctx(X509 *cert, EVP_PKEY *key, X509 *trusted)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		return NULL;
	SSL_CTX_use_certificate(ctx, cert);
	SSL_CTX_use_PrivateKey(ctx, key);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, trusted ? NULL : pp_accept_any);
	if (trusted)
		X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), trusted);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"tern", 4);
	SSL_CTX_set_alpn_select_cb(ctx, pp_select_alpn, NULL);
	return ctx;
}

/* Handshakes a client (with cert/key when given, SNI when sni, offering
 * h2 when alpn) against sctx, resuming sess when given. */
static bool pp_pair(struct pair *p, SSL_CTX *sctx, int version, X509 *cert, EVP_PKEY *key,
		    const char *sni, bool alpn, SSL_SESSION *sess)
{
	memset(p, 0, sizeof(*p));
	p->cap = 16384 + 512;
	p->max_quota = 17000;
	p->sctx = sctx;
	p->cctx = fixture_client_ctx(version);
	if (!sctx || !p->cctx)
		return false;
	if (cert) {
		SSL_CTX_use_certificate(p->cctx, cert);
		SSL_CTX_use_PrivateKey(p->cctx, key);
	}
	if (alpn)
		SSL_CTX_set_alpn_protos(p->cctx, (const unsigned char *)"\x02h2\x08http/1.1", 12);
	if (tern_tls_init(&p->server.tls, sctx, false, &p->server.in, &p->server.out, p->cap) < 0 ||
	    tern_tls_init(&p->client.tls, p->cctx, true, &p->client.in, &p->client.out, p->cap) < 0)
		return false;
	if (sni)
		SSL_set_tlsext_host_name(p->client.tls.ssl, sni);
	if (sess)
		SSL_set_session(p->client.tls.ssl, sess);
	return pair_handshake(p);
}

static void test_proxy_info_getters(void)
{
	EVP_PKEY *srv_key = fixture_key(), *cli_key = fixture_key();
	X509 *srv_cert = srv_key ? fixture_self_signed(srv_key, "localhost") : NULL;
	/* A UTF-8 CN, to see it come out as UTF-8. */
	X509 *cli_cert = cli_key ? fixture_self_signed(cli_key, "pr\xc3\xb8xy client") : NULL;
	X509 *no_cn_cert = cli_key ? fixture_self_signed(cli_key, NULL) : NULL;
	SSL_SESSION *sess = NULL;
	SSL_CTX *trusting = NULL, *untrusting = NULL;
	struct pair p;
	const uint8_t *alpn;
	size_t alpn_len;
	bool conn, in_sess;
	char cn[64];
	uint8_t der[4096];

	if (!CHECK(srv_cert && cli_cert && no_cn_cert))
		goto out;
	trusting = pp_server_ctx(srv_cert, srv_key, cli_cert);
	untrusting = pp_server_ctx(srv_cert, srv_key, NULL);

	/* A verified certificate, ALPN, SNI; TLS 1.2 so the session resumes
	 * by ID below. */
	if (CHECK(pp_pair(&p, trusting, TLS1_2_VERSION, cli_cert, cli_key, "localhost", true, NULL))) {
		struct tern_tls *t = &p.server.tls;
		tern_tls_alpn(t, &alpn, &alpn_len);
		CHECK(alpn_len == 2 && alpn && memcmp(alpn, "h2", 2) == 0);
		CHECK_EQ_STR(tern_tls_servername(t), "localhost");
		tern_tls_client_cert_presented(t, &conn, &in_sess);
		CHECK(conn && in_sess);
		CHECK_EQ_UINT(tern_tls_verify_result(t), 0);
		CHECK_EQ_INT(tern_tls_client_cn(t, cn, sizeof(cn)), 13);
		CHECK_EQ_STR(cn, "pr\xc3\xb8xy client");
		/* Too small by one (the NUL): refused, never cut. */
		memset(cn, 'x', sizeof(cn));
		CHECK_EQ_INT(tern_tls_client_cn(t, cn, 13), -ENOSPC);
		CHECK(cn[0] == 'x');
		CHECK_EQ_INT(tern_tls_client_cn(t, cn, 14), 13);
		int want_len = i2d_X509(cli_cert, NULL);
		unsigned char *want = NULL;
		CHECK_EQ_INT(i2d_X509(cli_cert, &want), want_len);
		CHECK_EQ_INT(tern_tls_client_cert_der(t, NULL, 0), want_len);
		CHECK_EQ_INT(tern_tls_client_cert_der(t, der, (size_t)want_len - 1), want_len);
		CHECK_EQ_INT(tern_tls_client_cert_der(t, der, sizeof(der)), want_len);
		CHECK(want && memcmp(der, want, (size_t)want_len) == 0);
		OPENSSL_free(want);
		/* Both close_notify: OpenSSL drops a session from its cache
		 * (and marks it not resumable) when its SSL is freed without. */
		CHECK_EQ_INT(tern_tls_shutdown(&p.client.tls), 0);
		CHECK_EQ_INT(tern_tls_shutdown(&p.server.tls), 0);
		sess = SSL_get1_session(p.client.tls.ssl);
	}
	pair_free(&p);

	/* The resumption: the session's certificate, not presented again. */
	if (CHECK(sess != NULL) &&
	    CHECK(pp_pair(&p, trusting, TLS1_2_VERSION, cli_cert, cli_key, "localhost", true, sess))) {
		struct tern_tls *t = &p.server.tls;
		CHECK(tern_tls_resumed(t));
		tern_tls_client_cert_presented(t, &conn, &in_sess);
		CHECK(!conn && in_sess);
		CHECK_EQ_UINT(tern_tls_verify_result(t), 0);
		CHECK_EQ_INT(tern_tls_client_cn(t, cn, sizeof(cn)), 13);
	}
	pair_free(&p);

	/* A certificate that does not verify (self-signed, not trusted), and
	 * one without a CN; no ALPN, no SNI. */
	if (CHECK(pp_pair(&p, untrusting, TLS1_3_VERSION, no_cn_cert, cli_key, NULL, false, NULL))) {
		struct tern_tls *t = &p.server.tls;
		tern_tls_alpn(t, &alpn, &alpn_len);
		CHECK(alpn == NULL && alpn_len == 0);
		CHECK(tern_tls_servername(t) == NULL);
		tern_tls_client_cert_presented(t, &conn, &in_sess);
		CHECK(conn && in_sess);
		CHECK_EQ_UINT(tern_tls_verify_result(t), X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
		CHECK_EQ_INT(tern_tls_client_cn(t, cn, sizeof(cn)), -ENOENT);
		CHECK(tern_tls_client_cert_der(t, NULL, 0) > 0);
	}
	pair_free(&p);

	/* No certificate at all. */
	if (CHECK(pp_pair(&p, untrusting, TLS1_3_VERSION, NULL, NULL, "localhost", false, NULL))) {
		struct tern_tls *t = &p.server.tls;
		tern_tls_client_cert_presented(t, &conn, &in_sess);
		CHECK(!conn && !in_sess);
		CHECK_EQ_INT(tern_tls_client_cn(t, cn, sizeof(cn)), -ENOENT);
		CHECK_EQ_INT(tern_tls_client_cert_der(t, der, sizeof(der)), -ENOENT);
	}
	pair_free(&p);
out:
	SSL_SESSION_free(sess);
	SSL_CTX_free(trusting);
	SSL_CTX_free(untrusting);
	X509_free(srv_cert);
	X509_free(cli_cert);
	X509_free(no_cn_cert);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(cli_key);
}

int main(void)
{
	struct tern_config cfg;
	struct tern_tls_identities *id = NULL;
	struct tern_tls_shard *shard = NULL;
	char err[256];

	tern_config_init(&cfg);
	if (!CHECK_EQ_INT(tern_tls_identities_load(&cfg, &id, err, sizeof(err)), 0) ||
	    !CHECK_EQ_INT(tern_tls_shard_new(&cfg, id, NULL, &shard, err, sizeof(err)), 0))
		return check_summary();
	SSL_CTX *sctx = tern_tls_shard_default_ctx(shard);

	/* Every quota from 1 byte up to the cap, with small and large
	 * buffers; the small ones force partial BIO writes of records. */
	unsigned quotas[] = {1, 7, 100, 1500, 17000};
	for (size_t i = 0; i < sizeof(quotas) / sizeof(quotas[0]); i++) {
		test_round_trip(sctx, TLS1_3_VERSION, quotas[i], 1024 + 512);
		test_round_trip(sctx, TLS1_2_VERSION, quotas[i], 1024 + 512);
		test_round_trip(sctx, TLS1_3_VERSION, quotas[i], 16384 + 512);
	}
	test_eof_is_end(sctx);
	test_garbage(sctx);
	test_eof_mid_handshake(sctx);
	test_no_renegotiation(sctx);
	test_proxy_info_getters();

	tern_tls_shard_free(shard);
	tern_tls_identities_unref(id);
	return check_summary();
}
