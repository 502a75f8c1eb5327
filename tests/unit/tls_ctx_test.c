/* Unit tests for src/tls_ctx.c, a worker's shard of SSL_CTX objects and
 * their callbacks, through real handshakes in memory against shards built
 * from certificates this test makes: OCSP stapling per certificate, ALPN
 * in the server's order, TLS 1.2 session-ID resumption with and without
 * the session cache, client certificates under each --verify-client mode
 * on the default and a switched context, client certificates a --crl
 * revokes, and OpenSSL's values refused
 * when a shard is built. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "check.h"
#include "tls_ctx_fixture.h"
#include "tern/config.h"
#include "tern/tls_ctx.h"

/* OCSP stapling: each certificate staples its own --ocsp response (the
 * RSA one of a pair, the default), one without gets none, and a client
 * that does not ask gets none either. */
static void test_ocsp(void)
{
	char good_rsa[PATH_MAX], good_ec[PATH_MAX];
	make_ocsp(&m_d_rsa, OCSP_RESPONSE_STATUS_SUCCESSFUL, good_rsa, "d-rsa.der");
	make_ocsp(&m_default, OCSP_RESPONSE_STATUS_SUCCESSFUL, good_ec, "default.der");

	/* a staple for the default and for the RSA one of a pair */
	cfg_certs(0, NULL);
	cfg.num_certs = 3;
	cfg.certs[0] = (struct tern_cert_config){.cert_path = m_default.pem, .ocsp_path = good_ec};
	cfg.certs[1] = (struct tern_cert_config){.cert_path = m_d_rsa.pem, .ocsp_path = good_rsa};
	cfg.certs[2] = (struct tern_cert_config){.cert_path = m_d_ec.pem};
	struct tern_tls_identities *ids = load_ok();
	struct tern_tls_shard *shard = shard_of(ids);
	SSL_CTX *ctx = tern_tls_shard_default_ctx(shard);
	FILE *f = fopen(good_rsa, "rb");
	unsigned char want_rsa[4096];
	size_t want_rsa_len = f ? fread(want_rsa, 1, sizeof(want_rsa), f) : 0;
	if (f)
		fclose(f);
	f = fopen(good_ec, "rb");
	unsigned char want_ec[4096];
	size_t want_ec_len = f ? fread(want_ec, 1, sizeof(want_ec), f) : 0;
	if (f)
		fclose(f);

	int versions[2] = {TLS1_2_VERSION, TLS1_3_VERSION};
	for (int v = 0; v < 2; v++) {
		struct hs h = {.sni = "d.test", .sigalgs = "RSA-PSS+SHA256", .version = versions[v], .want_ocsp = true};
		handshake(ctx, &h);
		CHECK(h.ok);
		CHECK_EQ_STR(h.org, "d-rsa");
		CHECK_EQ_INT(h.ocsp_len, (long)want_rsa_len);
		CHECK(h.ocsp_len > 0 && memcmp(h.ocsp, want_rsa, want_rsa_len) == 0);

		struct hs e = {.sni = "d.test", .sigalgs = "ECDSA+SHA256", .version = versions[v], .want_ocsp = true};
		handshake(ctx, &e);
		CHECK(e.ok);
		CHECK_EQ_STR(e.org, "d-ec");
		CHECK_EQ_INT(e.ocsp_len, -1); /* none configured for this one */

		struct hs d = {.sni = "default.test", .version = versions[v], .want_ocsp = true};
		handshake(ctx, &d);
		CHECK(d.ok);
		CHECK_EQ_INT(d.ocsp_len, (long)want_ec_len);
		CHECK(d.ocsp_len > 0 && memcmp(d.ocsp, want_ec, want_ec_len) == 0);

		/* not asked for: not sent */
		struct hs n = {.sni = "default.test", .version = versions[v]};
		handshake(ctx, &n);
		CHECK(n.ok);
		CHECK_EQ_INT(n.ocsp_len, -1);
	}
	char line[1024];
	tern_tls_identities_describe(ids, 1, line, sizeof(line));
	char want[PATH_MAX + 16];
	snprintf(want, sizeof(want), " ocsp=%s ", good_rsa);
	CHECK(strstr(line, want) != NULL);
	tern_tls_shard_free(shard);
	tern_tls_identities_unref(ids);
}

/* --alpn: the server's order wins; no overlap is no ALPN, not a failure. */
static void test_alpn(void)
{
	const char *paths[] = {m_default.pem, m_b.pem};
	cfg_certs(2, paths);
	static const char server_list[] = "\x02h2\x08http/1.1";
	memcpy(cfg.alpn_wire, server_list, sizeof(server_list) - 1);
	cfg.alpn_wire_len = sizeof(server_list) - 1;
	cfg.alpn = "h2,http/1.1";
	struct tern_tls_identities *ids = load_ok();
	/* the identities keep their own copy of the list */
	memset(cfg.alpn_wire, 0, sizeof(cfg.alpn_wire));
	struct tern_tls_shard *shard = shard_of(ids);
	SSL_CTX *ctx = tern_tls_shard_default_ctx(shard);

	static const struct {
		const char *offer, *want;
	} cases[] = {
		{"\x08http/1.1\x02h2", "h2"}, /* server preference, not the client's */
		{"\x02h2", "h2"},
		{"\x08http/1.1", "http/1.1"},
		{"\x06spdy/1\x08http/1.1", "http/1.1"},
		{"\x06spdy/1", ""},  /* no overlap: no ALPN, handshake fine */
		{"\x02h3\x01h", ""}, /* prefixes are not matches */
		{"\x03h2c", ""},
		{NULL, ""}, /* none offered */
	};
	int versions[2] = {TLS1_2_VERSION, TLS1_3_VERSION};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int v = 0; v < 2; v++) {
			/* on the default context and on a switched one */
			const char *snis[2] = {"default.test", "b.test"};
			for (int s = 0; s < 2; s++) {
				struct hs h = {.sni = snis[s], .version = versions[v], .alpn_offer = cases[i].offer};
				handshake(ctx, &h);
				CHECK(h.ok);
				if (!CHECK_EQ_STR(h.alpn, cases[i].want))
					fprintf(stderr, "    case %zu version %x sni %s\n", i, versions[v], snis[s]);
			}
		}
	}
	tern_tls_shard_free(shard);
	tern_tls_identities_unref(ids);

	/* without --alpn: nothing selected whatever the client offers */
	cfg_certs(1, paths);
	ids = load_ok();
	shard = shard_of(ids);
	struct hs h = {.version = TLS1_3_VERSION, .alpn_offer = "\x02h2"};
	handshake(tern_tls_shard_default_ctx(shard), &h);
	CHECK(h.ok);
	CHECK_EQ_STR(h.alpn, "");
	tern_tls_shard_free(shard);
	tern_tls_identities_unref(ids);
}

/* TLS 1.2 session-ID resumption through the server cache, on the default
 * context and on a switched one; --session-cache 0 resumes nothing by ID,
 * while tickets still do. */
static void test_session_cache(void)
{
	const char *paths[] = {m_default.pem, m_b.pem};
	unsigned sizes[2] = {20000, 0};
	for (int k = 0; k < 2; k++) {
		cfg_certs(2, paths);
		cfg.session_cache = sizes[k];
		struct tern_tls_identities *ids = load_ok();
		struct tern_tls_shard *shard = shard_of(ids);
		SSL_CTX *ctx = tern_tls_shard_default_ctx(shard);
		const char *snis[3] = {"default.test", "b.test", NULL};
		for (int s = 0; s < 3; s++) {
			struct hs first = {.sni = snis[s], .version = TLS1_2_VERSION, .no_ticket = true};
			SSL_SESSION *sess = handshake_keep(ctx, &first);
			CHECK(first.ok && !first.reused && sess != NULL);
			unsigned id_len = 0;
			SSL_SESSION_get_id(sess, &id_len);
			CHECK(id_len > 0); /* a session ID even with the cache off */
			struct hs again = {.sni = snis[s], .version = TLS1_2_VERSION, .no_ticket = true, .session_in = sess};
			handshake(ctx, &again);
			CHECK(again.ok);
			if (!CHECK_EQ_INT(again.reused, sizes[k] != 0))
				fprintf(stderr, "    session_cache %u sni %s\n", sizes[k], snis[s] ? snis[s] : "(none)");
			/* a resumed TLS 1.2 session still names its host (the
			 * servername callback accepted it into the session) */
			CHECK_EQ_STR(again.server_sni, snis[s] ? snis[s] : "");
			SSL_SESSION_free(sess);

			/* tickets resume either way, in both versions */
			int versions[2] = {TLS1_2_VERSION, TLS1_3_VERSION};
			for (int v = 0; v < 2; v++) {
				struct hs t1 = {.sni = snis[s], .version = versions[v]};
				SSL_SESSION *ticket = handshake_keep(ctx, &t1);
				CHECK(t1.ok && ticket != NULL);
				struct hs t2 = {.sni = snis[s], .version = versions[v], .session_in = ticket};
				handshake(ctx, &t2);
				CHECK(t2.ok);
				CHECK(t2.reused);
				SSL_SESSION_free(ticket);
			}
		}
		tern_tls_shard_free(shard);
		tern_tls_identities_unref(ids);
	}
}

/* --client-ca with each --verify-client mode, on the default context and
 * on one SNI switched to, in both versions. */
static void test_client_auth(void)
{
	struct made ca, other_ca, good, bad;
	make_issued(&ca, "client-ca", NULL);
	make_issued(&other_ca, "other-ca", NULL);
	make_issued(&good, "good-client", &ca);
	make_issued(&bad, "bad-client", &other_ca);
	/* a bundle: another CA first, then ours */
	char bundle[PATH_MAX];
	snprintf(bundle, sizeof(bundle), "%s/bundle.pem", tmp_dir);
	FILE *f = fopen(bundle, "w");
	if (!f || !PEM_write_X509(f, other_ca.cert) || !PEM_write_X509(f, ca.cert))
		exit(1);
	fclose(f);

	static const struct {
		enum tern_verify_client mode;
		int which; /* --client-ca 0: client-ca.pem, 1: the two-CA bundle */
	} setups[] = {
		{TERN_VERIFY_CLIENT_REQUIRE, 0},
		{TERN_VERIFY_CLIENT_OPTIONAL, 0},
		{TERN_VERIFY_CLIENT_NONE, 0},
		{TERN_VERIFY_CLIENT_REQUIRE, 1},
	};
	const char *paths[] = {m_default.pem, m_b.pem};
	int versions[2] = {TLS1_2_VERSION, TLS1_3_VERSION};
	const char *snis[2] = {"default.test", "b.test"};
	for (size_t k = 0; k < sizeof(setups) / sizeof(setups[0]); k++) {
		cfg_certs(2, paths);
		cfg.client_ca_path = setups[k].which ? bundle : ca.pem;
		cfg.verify_client = setups[k].mode;
		struct tern_tls_identities *ids = load_ok();
		struct tern_tls_shard *shard = shard_of(ids);
		SSL_CTX *ctx = tern_tls_shard_default_ctx(shard);
		bool asks = setups[k].mode != TERN_VERIFY_CLIENT_NONE;
		int want_names = !asks ? -1 : setups[k].which ? 2 : 1;
		/* the bundle trusts both CAs, and names both */
		bool other_ok = setups[k].which == 1;
		for (int v = 0; v < 2; v++) {
			for (int s = 0; s < 2; s++) {
				struct hs none = {.sni = snis[s], .version = versions[v]};
				handshake(ctx, &none);
				CHECK_EQ_INT(none.ok, setups[k].mode != TERN_VERIFY_CLIENT_REQUIRE);
				CHECK(!none.server_saw_cert);
				CHECK_EQ_INT(none.ca_names, want_names);

				struct hs with_good = {.sni = snis[s], .version = versions[v], .client_cert = &good};
				handshake(ctx, &with_good);
				CHECK(with_good.ok);
				CHECK_EQ_INT(with_good.server_saw_cert, asks);
				CHECK_EQ_STR(with_good.org, snis[s][0] == 'b' ? "b" : "default");

				struct hs with_bad = {.sni = snis[s], .version = versions[v], .client_cert = &bad};
				handshake(ctx, &with_bad);
				if (!CHECK_EQ_INT(with_bad.ok, !asks || other_ok))
					fprintf(stderr, "    setup %zu version %x sni %s\n", k, versions[v], snis[s]);
			}
		}
		/* a session made with a client certificate resumes (it carries
		 * the session id context every context shares) */
		if (setups[k].mode == TERN_VERIFY_CLIENT_REQUIRE) {
			struct hs first = {.sni = "b.test", .version = TLS1_2_VERSION, .no_ticket = true, .client_cert = &good};
			SSL_SESSION *sess = handshake_keep(ctx, &first);
			CHECK(first.ok && sess);
			struct hs again = {.sni = "b.test", .version = TLS1_2_VERSION, .no_ticket = true, .session_in = sess};
			handshake(ctx, &again);
			CHECK(again.ok);
			CHECK(again.reused);
			CHECK(again.server_saw_cert); /* from the session */
			SSL_SESSION_free(sess);
		}
		tern_tls_shard_free(shard);
		tern_tls_identities_unref(ids);
	}

	made_free(&ca);
	made_free(&other_ca);
	made_free(&good);
	made_free(&bad);
}

/* --crl: a client certificate its CA's CRL revokes is refused on every
 * context, in both versions and every --verify-client mode that asks; one
 * it does not revoke gets in; a certificate whose CA has no CRL in the
 * file is refused (fail closed); a file of two CRLs loads both. */
static void test_crl(void)
{
	struct made ca, other_ca, alice, bob, mallory;
	make_issued(&ca, "crl-ca", NULL);
	make_issued(&other_ca, "crl-other-ca", NULL);
	make_issued_serial(&alice, "alice", &ca, 10);
	make_issued_serial(&bob, "bob", &ca, 11);
	make_issued_serial(&mallory, "mallory", &other_ca, 10); /* alice's serial, another CA */
	char bundle[PATH_MAX], one_crl[PATH_MAX], two_crls[PATH_MAX];
	snprintf(bundle, sizeof(bundle), "%s/crl-bundle.pem", tmp_dir);
	snprintf(one_crl, sizeof(one_crl), "%s/one.crl", tmp_dir);
	snprintf(two_crls, sizeof(two_crls), "%s/two.crl", tmp_dir);
	FILE *f = fopen(bundle, "w");
	if (!f || !PEM_write_X509(f, ca.cert) || !PEM_write_X509(f, other_ca.cert))
		exit(1);
	fclose(f);
	const long revoked[] = {10};
	f = fopen(one_crl, "w");
	if (!f)
		exit(1);
	write_crl(f, &ca, revoked, 1);
	fclose(f);
	f = fopen(two_crls, "w");
	if (!f)
		exit(1);
	write_crl(f, &ca, revoked, 1);
	write_crl(f, &other_ca, NULL, 0);
	fclose(f);

	static const enum tern_verify_client modes[] = {TERN_VERIFY_CLIENT_REQUIRE, TERN_VERIFY_CLIENT_OPTIONAL};
	const char *paths[] = {m_default.pem, m_b.pem};
	int versions[2] = {TLS1_2_VERSION, TLS1_3_VERSION};
	const char *snis[2] = {"default.test", "b.test"};
	for (size_t k = 0; k < 2 * sizeof(modes) / sizeof(modes[0]); k++) {
		bool both = k % 2 == 1; /* the file with both CAs' CRLs */
		cfg_certs(2, paths);
		cfg.client_ca_path = bundle;
		cfg.crl_path = both ? two_crls : one_crl;
		cfg.verify_client = modes[k / 2];
		struct tern_tls_identities *ids = load_ok();
		struct tern_tls_shard *shard = shard_of(ids);
		SSL_CTX *ctx = tern_tls_shard_default_ctx(shard);
		for (int v = 0; v < 2; v++) {
			for (int s = 0; s < 2; s++) {
				struct hs a = {.sni = snis[s], .version = versions[v], .client_cert = &alice};
				handshake(ctx, &a);
				CHECK(!a.ok);
				struct hs b = {.sni = snis[s], .version = versions[v], .client_cert = &bob};
				handshake(ctx, &b);
				CHECK(b.ok && b.server_saw_cert);
				/* its CA has a CRL only in the second file */
				struct hs m = {.sni = snis[s], .version = versions[v], .client_cert = &mallory};
				handshake(ctx, &m);
				if (!CHECK_EQ_INT(m.ok, both))
					fprintf(stderr, "    setup %zu version %x sni %s\n", k, versions[v], snis[s]);
				/* no certificate: as the mode says, CRL or not */
				struct hs none = {.sni = snis[s], .version = versions[v]};
				handshake(ctx, &none);
				CHECK_EQ_INT(none.ok, modes[k / 2] == TERN_VERIFY_CLIENT_OPTIONAL);
			}
		}
		tern_tls_shard_free(shard);
		tern_tls_identities_unref(ids);
	}
	made_free(&ca);
	made_free(&other_ca);
	made_free(&alice);
	made_free(&bob);
	made_free(&mallory);
}

/* OpenSSL's values checked when the contexts are built */
static void test_shard_errors(void)
{
	const char *one[] = {m_default.pem};
	cfg_certs(1, one);
	struct tern_tls_identities *ids = load_ok();
	struct tern_tls_shard *bad = NULL;
	cfg.ciphers = "NOT-A-CIPHER";
	CHECK_EQ_INT(tern_tls_shard_new(&cfg, ids, NULL, &bad, err, sizeof(err)), -EINVAL);
	CHECK(bad == NULL);
	CHECK_EQ_STR(err, "--ciphers: invalid value 'NOT-A-CIPHER' (expected an OpenSSL cipher list, see "
			  "openssl-ciphers(1))");
	cfg_certs(1, one);
	cfg.groups = "nonsense";
	CHECK_EQ_INT(tern_tls_shard_new(&cfg, ids, NULL, &bad, err, sizeof(err)), -EINVAL);
	CHECK_EQ_STR(err, "--groups: invalid value 'nonsense' (expected a colon list of groups such as X25519:P-256)");
	tern_tls_identities_unref(ids);
	CHECK_EQ_UINT(ERR_peek_error(), 0);
}

int main(void)
{
	tls_ctx_fixture_start("tls_ctx_test");
	test_ocsp();
	test_alpn();
	test_session_cache();
	test_client_auth();
	test_crl();
	test_shard_errors();
	tls_ctx_fixture_end();
	return check_summary();
}
