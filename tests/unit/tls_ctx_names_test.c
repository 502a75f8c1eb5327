/* Unit tests for src/tls_ctx_names.c: the SNI name rule case by case
 * (tern_tls_name_match), then real handshakes in memory against shards
 * built from certificates this test makes: which certificate each SNI
 * gets (SAN names, a CN alone, wildcards, exact names first, a name two
 * --cert share), RSA versus ECDSA by signature algorithm, the names in
 * the --check lines, a connection that still switches after its shard is
 * freed, and the certificates refused for their names. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/ssl.h>

#include "check.h"
#include "tls_ctx_fixture.h"
#include "tern/config.h"
#include "tern/tls_ctx.h"

/* ---- the name rule ---- */

static void test_name_match(void)
{
	/* exact, ASCII case-insensitive both ways */
	CHECK(tern_tls_name_match("example.com", "example.com"));
	CHECK(tern_tls_name_match("example.com", "EXAMPLE.com"));
	CHECK(tern_tls_name_match("Example.COM", "example.com"));
	CHECK(!tern_tls_name_match("example.com", "www.example.com"));
	CHECK(!tern_tls_name_match("www.example.com", "example.com"));
	CHECK(!tern_tls_name_match("example.com", "example.co"));
	CHECK(!tern_tls_name_match("example.co", "example.com"));
	CHECK(!tern_tls_name_match("example.com", ""));
	/* one trailing dot on the host is the same name */
	CHECK(tern_tls_name_match("example.com", "example.com."));
	CHECK(!tern_tls_name_match("example.com", "example.com.."));
	CHECK(!tern_tls_name_match("example.com", "."));

	/* a wildcard covers exactly one non-empty label */
	CHECK(tern_tls_name_match("*.example.com", "a.example.com"));
	CHECK(tern_tls_name_match("*.example.com", "WWW.Example.Com"));
	CHECK(tern_tls_name_match("*.EXAMPLE.com", "x-1.example.com."));
	CHECK(!tern_tls_name_match("*.example.com", "a.b.example.com"));
	CHECK(!tern_tls_name_match("*.example.com", "example.com"));
	CHECK(!tern_tls_name_match("*.example.com", ".example.com"));
	CHECK(!tern_tls_name_match("*.example.com", "aexample.com"));
	CHECK(!tern_tls_name_match("*.example.com", "a.example.org"));
	CHECK(!tern_tls_name_match("*.example.com", "a.xexample.com"));
	CHECK(tern_tls_name_match("*.com", "example.com"));
	CHECK(!tern_tls_name_match("*.com", "com"));

	/* anything else with a '*' matches nothing, not even itself */
	CHECK(!tern_tls_name_match("*", "example"));
	CHECK(!tern_tls_name_match("*.", "a."));
	CHECK(!tern_tls_name_match("*..com", "a..com"));
	CHECK(!tern_tls_name_match("f*.example.com", "foo.example.com"));
	CHECK(!tern_tls_name_match("f*.example.com", "f*.example.com"));
	CHECK(!tern_tls_name_match("*.*.example.com", "a.b.example.com"));
	CHECK(!tern_tls_name_match("a.*.example.com", "a.b.example.com"));
	CHECK(!tern_tls_name_match("*example.com", "aexample.com"));
	/* a '*' in the host is an ordinary byte of a label */
	CHECK(tern_tls_name_match("*.example.com", "*.example.com"));
	CHECK(!tern_tls_name_match("example.com", "*.com"));

	/* longer than a DNS name can be */
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(!tern_tls_name_match(longname, longname));
	longname[253] = '\0';
	CHECK(tern_tls_name_match(longname, longname));
}

/* ---- which certificate each name gets ---- */

static void test_sni(void)
{
	const char *paths[] = {m_default.pem, m_b.pem, m_wild.pem, m_exact_in_wild.pem,
			       m_d_rsa.pem,   m_d_ec.pem, m_cn_only.pem, m_shadow.pem};
	cfg_certs(8, paths);
	struct tern_tls_identities *ids = load_ok();
	CHECK_EQ_UINT(tern_tls_identities_count(ids), 8);
	struct tern_tls_shard *shard = shard_of(ids);
	SSL_CTX *ctx = tern_tls_shard_default_ctx(shard);

	/* no SNI, unknown SNI: the first --cert */
	EXPECT_SERVED(ctx, NULL, "default");
	EXPECT_SERVED(ctx, "unknown.test", "default");
	EXPECT_SERVED(ctx, "default.test", "default");
	EXPECT_SERVED(ctx, "WWW.default.test.", "default");
	/* SAN names, not the CN, once there are SAN DNS names */
	EXPECT_SERVED(ctx, "b.test", "b");
	EXPECT_SERVED(ctx, "B.TEST", "b");
	EXPECT_SERVED(ctx, "ignored-cn.test", "default");
	/* the CN when there is no SAN at all */
	EXPECT_SERVED(ctx, "cn.test", "cn");
	/* a wildcard: one label, exact names first */
	EXPECT_SERVED(ctx, "a.w.test", "wild");
	EXPECT_SERVED(ctx, "x.w.test", "exact");
	EXPECT_SERVED(ctx, "a.b.w.test", "default");
	EXPECT_SERVED(ctx, "w.test", "default");
	/* a name two --cert share: the earlier one */
	EXPECT_SERVED(ctx, "shadow.test", "shadow");
	/* a pair with default signature algorithms: ECDSA comes first in
	 * the server's preference order */
	EXPECT_SERVED(ctx, "d.test", "d-ec");

	/* RSA and ECDSA with the same names: by signature algorithm */
	int versions[2] = {TLS1_2_VERSION, TLS1_3_VERSION};
	for (int v = 0; v < 2; v++) {
		struct hs rsa = {.sni = "d.test", .sigalgs = "RSA-PSS+SHA256", .version = versions[v]};
		handshake(ctx, &rsa);
		CHECK(rsa.ok);
		CHECK_EQ_STR(rsa.org, "d-rsa");
		CHECK_EQ_STR(rsa.key, "RSA");
		struct hs ec = {.sni = "any.d.test", .sigalgs = "ECDSA+SHA256", .version = versions[v]};
		handshake(ctx, &ec);
		CHECK(ec.ok);
		CHECK_EQ_STR(ec.org, "d-ec");
		CHECK_EQ_STR(ec.key, "EC");
	}

	/* --check lines: names in certificate order, lowercased */
	char line[1024];
	tern_tls_identities_describe(ids, 0, line, sizeof(line));
	CHECK(strstr(line, "names=default.test,www.default.test ") != NULL);
	CHECK(strstr(line, " ocsp=- ") != NULL);
	CHECK(strstr(line, m_default.pem) == line + strlen("cert="));
	size_t len = strlen(line);
	CHECK(len > 8 && strcmp(line + len - 8, " default") == 0);
	tern_tls_identities_describe(ids, 1, line, sizeof(line));
	CHECK(strstr(line, "names=b.test ") != NULL);
	CHECK(strstr(line, "default") == NULL);
	tern_tls_identities_describe(ids, 6, line, sizeof(line));
	CHECK(strstr(line, "names=cn.test ") != NULL);
	tern_tls_identities_describe(ids, 4, line, sizeof(line));
	CHECK(strstr(line, "key=RSA bits=2048") != NULL);

	/* A connection made before the shard is freed still switches: the
	 * default context keeps the others alive. */
	SSL *early = SSL_new(ctx);
	tern_tls_shard_free(shard);
	tern_tls_identities_unref(ids);
	struct hs late = {.sni = "x.w.test", .version = TLS1_3_VERSION};
	handshake_ssl(early, &late);
	CHECK(late.ok);
	CHECK_EQ_STR(late.org, "exact");
	SSL_free(early);
	SSL_SESSION_free(late.session_out);
}

/* One certificate only: no switching, any SNI gets it. */
static void test_single(void)
{
	const char *paths[] = {m_b.pem};
	cfg_certs(1, paths);
	struct tern_tls_identities *ids = load_ok();
	struct tern_tls_shard *shard = shard_of(ids);
	EXPECT_SERVED(tern_tls_shard_default_ctx(shard), "b.test", "b");
	EXPECT_SERVED(tern_tls_shard_default_ctx(shard), "other.test", "b");
	EXPECT_SERVED(tern_tls_shard_default_ctx(shard), NULL, "b");
	tern_tls_shard_free(shard);
	tern_tls_identities_unref(ids);
}

/* --strict-sni: a name no certificate has, and no name at all, are
 * refused before any certificate is chosen; every name a certificate
 * has (the default's too, wildcards, any case) is served as without the
 * flag; with one certificate as with several. */
static void test_strict_sni(void)
{
	int versions[2] = {TLS1_2_VERSION, TLS1_3_VERSION};
	const char *several[] = {m_default.pem, m_b.pem, m_wild.pem};
	const char *one[] = {m_b.pem};

	for (int setup = 0; setup < 2; setup++) {
		if (setup == 0)
			cfg_certs(3, several);
		else
			cfg_certs(1, one);
		cfg.strict_sni = true;
		struct tern_tls_identities *ids = load_ok();
		struct tern_tls_shard *shard = shard_of(ids);
		SSL_CTX *ctx = tern_tls_shard_default_ctx(shard);
		EXPECT_SERVED(ctx, "b.test", "b");
		EXPECT_SERVED(ctx, "B.Test.", "b");
		if (setup == 0) {
			EXPECT_SERVED(ctx, "www.default.test", "default");
			EXPECT_SERVED(ctx, "any.w.test", "wild");
		}
		static const char *const refused[] = {NULL, "unknown.test", "a.b.w.test", "w.test", "127.0.0.1"};
		for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
			for (int v = 0; v < 2; v++) {
				struct hs h = {.sni = refused[i], .version = versions[v]};
				handshake(ctx, &h);
				if (!CHECK(!h.ok))
					fprintf(stderr, "    setup %d sni %s version %x\n", setup,
						refused[i] ? refused[i] : "(none)", versions[v]);
				CHECK_EQ_STR(h.org, ""); /* no certificate was shown */
			}
		}
		tern_tls_shard_free(shard);
		tern_tls_identities_unref(ids);
	}
}

/* Certificates refused for their names: two of one key type for the same
 * names, and one after the first with no name to select it by. */
static void test_name_errors(void)
{
	char want[2 * PATH_MAX + 256];

	/* two certificates of one key type for the same names */
	struct made twin;
	make_cert(&twin, "twin", "EC", "other", "DNS:b.test");
	const char *twins[] = {m_default.pem, m_b.pem, twin.pem};
	cfg_certs(3, twins);
	snprintf(want, sizeof(want),
		 "%s: same names and key type (EC) as %s; give one certificate per key type for a set of names",
		 twin.pem, m_b.pem);
	expect_load_error(-EIO, want);
	made_free(&twin);

	/* a certificate after the first with no name to select it by */
	struct made nameless, starry;
	make_cert(&nameless, "nameless", "EC", NULL, "IP:127.0.0.1");
	make_cert(&starry, "starry", "EC", "f*.test", NULL);
	const char *no_name[] = {m_default.pem, nameless.pem};
	cfg_certs(2, no_name);
	snprintf(want, sizeof(want),
		 "%s: no DNS name (subjectAltName, or CN without one) to choose it by SNI; only the first "
		 "--cert may have none",
		 nameless.pem);
	expect_load_error(-EIO, want);
	no_name[1] = starry.pem;
	cfg_certs(2, no_name);
	snprintf(want, sizeof(want),
		 "%s: no DNS name (subjectAltName, or CN without one) to choose it by SNI; only the first "
		 "--cert may have none",
		 starry.pem);
	expect_load_error(-EIO, want);
	/* ... but the first may: it is the default */
	no_name[0] = nameless.pem;
	no_name[1] = m_b.pem;
	cfg_certs(2, no_name);
	struct tern_tls_identities *ids = load_ok();
	struct tern_tls_shard *shard = shard_of(ids);
	EXPECT_SERVED(tern_tls_shard_default_ctx(shard), "b.test", "b");
	EXPECT_SERVED(tern_tls_shard_default_ctx(shard), "127.0.0.1", "nameless");
	tern_tls_shard_free(shard);
	tern_tls_identities_unref(ids);
	made_free(&nameless);
	made_free(&starry);
}

int main(void)
{
	tls_ctx_fixture_start("tls_ctx_names_test");
	test_name_match();
	test_sni();
	test_single();
	test_strict_sni();
	test_name_errors();
	tls_ctx_fixture_end();
	return check_summary();
}
