/* Unit tests for src/tls_ctx.c: the SNI name rule case by case, then real
 * handshakes in memory against shards built from certificates this test
 * makes: which certificate each SNI gets, RSA versus ECDSA by signature
 * algorithm, OCSP stapling, a shard freed under a live connection, and
 * every load error with its exact message. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "tmp_dir.h"
#include "tern/config.h"
#include "tern/tls_ctx.h"

static char tmp_dir[256];


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

/* ---- certificates made here ---- */

struct made {
	char pem[PATH_MAX]; /* certificate, then key */
	X509 *cert;
	EVP_PKEY *key;
};

/* A self-signed certificate: subject CN cn (none when NULL) and a
 * subjectAltName of san ("DNS:a,DNS:b"; none when NULL), key "EC" or
 * "RSA". Written with its key to DIR/name.pem. */
static void make_cert(struct made *m, const char *name, const char *type, const char *cn, const char *san)
{
	X509V3_CTX v3;

	memset(m, 0, sizeof(*m));
	m->key = strcmp(type, "RSA") == 0 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
	m->cert = X509_new();
	X509_NAME *subject = X509_NAME_new();
	if (!m->key || !m->cert || !subject)
		exit(1);
	X509_set_version(m->cert, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(m->cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(m->cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(m->cert), 3600);
	if (cn)
		X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
	X509_set_subject_name(m->cert, subject);
	X509_set_issuer_name(m->cert, subject);
	X509_NAME_free(subject);
	X509_set_pubkey(m->cert, m->key);
	if (san) {
		X509V3_set_ctx(&v3, m->cert, m->cert, NULL, NULL, 0);
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		if (!ext || !X509_add_ext(m->cert, ext, -1))
			exit(1);
		X509_EXTENSION_free(ext);
	}
	if (!X509_sign(m->cert, m->key, EVP_sha256()))
		exit(1);
	snprintf(m->pem, sizeof(m->pem), "%s/%s.pem", tmp_dir, name);
	FILE *f = fopen(m->pem, "w");
	if (!f || !PEM_write_X509(f, m->cert) || !PEM_write_PrivateKey(f, m->key, NULL, NULL, 0, NULL, NULL))
		exit(1);
	fclose(f);
}

/* A CA (basicConstraints CA:TRUE, self-signed), or a client certificate
 * for cn issued by ca; EC keys; written with its key to DIR/name.pem. */
static void make_issued(struct made *m, const char *name, const struct made *ca)
{
	X509V3_CTX v3;

	memset(m, 0, sizeof(*m));
	m->key = EVP_EC_gen("P-256");
	m->cert = X509_new();
	X509_NAME *subject = X509_NAME_new();
	if (!m->key || !m->cert || !subject)
		exit(1);
	X509_set_version(m->cert, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(m->cert), 2);
	X509_gmtime_adj(X509_getm_notBefore(m->cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(m->cert), 3600);
	X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
	X509_set_subject_name(m->cert, subject);
	X509_set_issuer_name(m->cert, ca ? X509_get_subject_name(ca->cert) : subject);
	X509_NAME_free(subject);
	X509_set_pubkey(m->cert, m->key);
	X509V3_set_ctx(&v3, ca ? ca->cert : m->cert, m->cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
						  ca ? "critical,CA:FALSE" : "critical,CA:TRUE");
	if (!ext || !X509_add_ext(m->cert, ext, -1))
		exit(1);
	X509_EXTENSION_free(ext);
	if (!X509_sign(m->cert, ca ? ca->key : m->key, EVP_sha256()))
		exit(1);
	snprintf(m->pem, sizeof(m->pem), "%s/%s.pem", tmp_dir, name);
	FILE *f = fopen(m->pem, "w");
	if (!f || !PEM_write_X509(f, m->cert) || !PEM_write_PrivateKey(f, m->key, NULL, NULL, 0, NULL, NULL))
		exit(1);
	fclose(f);
}

static void made_free(struct made *m)
{
	X509_free(m->cert);
	EVP_PKEY_free(m->key);
}

/* A DER OCSP response with the given status; a successful one says
 * "good" for m's certificate, signed by itself. */
static void make_ocsp(const struct made *m, int status, char path[PATH_MAX], const char *name)
{
	OCSP_BASICRESP *basic = NULL;

	if (status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		basic = OCSP_BASICRESP_new();
		OCSP_CERTID *id = OCSP_cert_to_id(NULL, m->cert, m->cert);
		ASN1_TIME *now = X509_gmtime_adj(NULL, 0);
		if (!basic || !id || !now ||
		    !OCSP_basic_add1_status(basic, id, V_OCSP_CERTSTATUS_GOOD, 0, NULL, now, NULL) ||
		    !OCSP_basic_sign(basic, m->cert, m->key, EVP_sha256(), NULL, 0))
			exit(1);
		OCSP_CERTID_free(id);
		ASN1_TIME_free(now);
	}
	OCSP_RESPONSE *resp = OCSP_response_create(status, basic);
	OCSP_BASICRESP_free(basic);
	unsigned char *der = NULL;
	int len = i2d_OCSP_RESPONSE(resp, &der);
	OCSP_RESPONSE_free(resp);
	snprintf(path, PATH_MAX, "%s/%s", tmp_dir, name);
	FILE *f = fopen(path, "wb");
	if (len <= 0 || !f || fwrite(der, 1, (size_t)len, f) != (size_t)len)
		exit(1);
	fclose(f);
	OPENSSL_free(der);
}

static void write_bytes(char path[PATH_MAX], const char *name, const void *data, size_t len)
{
	snprintf(path, PATH_MAX, "%s/%s", tmp_dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || (len && fwrite(data, 1, len, f) != len))
		exit(1);
	fclose(f);
}

/* Writes tmp_dir/name: a copy of the PEM file src, followed, when
 * bad_cert, by a CERTIFICATE block that does not parse. */
static void write_pem_copy(char path[PATH_MAX], const char *name, const char *src, bool bad_cert)
{
	static const char junk[] = "-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n";
	char pem[16384];
	FILE *f = fopen(src, "r");
	size_t len = f ? fread(pem, 1, sizeof(pem) - sizeof(junk), f) : 0;
	if (!f || len == 0)
		exit(1);
	fclose(f);
	if (bad_cert) {
		memcpy(pem + len, junk, sizeof(junk) - 1);
		len += sizeof(junk) - 1;
	}
	write_bytes(path, name, pem, len);
}

/* ---- handshakes in memory ---- */

struct hs {
	const char *sni;     /* NULL: no server_name extension */
	const char *sigalgs; /* NULL: OpenSSL's defaults */
	int version;         /* TLS1_2_VERSION or TLS1_3_VERSION */
	bool want_ocsp;
	const char *alpn_offer;   /* wire format, NUL-terminated for brevity; NULL: none */
	bool no_ticket;           /* client refuses tickets: TLS 1.2 resumes by session ID */
	SSL_SESSION *session_in;  /* offered for resumption */
	SSL_SESSION *session_out; /* the new session, owned by the caller */
	const struct made *client_cert; /* sent when asked; NULL: none */
	/* results */
	bool ok;
	bool reused;
	char alpn[64]; /* selected, "" for none */
	bool server_saw_cert; /* the server has a (verified) client certificate */
	char server_sni[64];  /* SSL_get_servername() on the server, "" for none */
	int ca_names;         /* CA names in the server's CertificateRequest; -1: none came */
	char org[64];  /* the served certificate's O: which --cert it was */
	char key[16];  /* its key type */
	unsigned char ocsp[4096];
	long ocsp_len; /* -1: no staple */
};

static void pump(BIO *from, BIO *to)
{
	char buf[4096];
	int n;
	while ((n = BIO_read(from, buf, sizeof(buf))) > 0)
		BIO_write(to, buf, n);
}

/* One handshake of a fresh client against an SSL made from ctx (or the
 * given server SSL). */
static void handshake_ssl(SSL *server, struct hs *h)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *client = SSL_new(cctx);
	BIO *c_in = BIO_new(BIO_s_mem()), *c_out = BIO_new(BIO_s_mem());
	BIO *s_in = BIO_new(BIO_s_mem()), *s_out = BIO_new(BIO_s_mem());

	SSL_set_min_proto_version(client, h->version);
	SSL_set_max_proto_version(client, h->version);
	SSL_set_verify(client, SSL_VERIFY_NONE, NULL);
	if (h->sni)
		SSL_set_tlsext_host_name(client, h->sni);
	if (h->sigalgs)
		CHECK_EQ_INT(SSL_set1_sigalgs_list(client, h->sigalgs), 1);
	if (h->want_ocsp)
		SSL_set_tlsext_status_type(client, TLSEXT_STATUSTYPE_ocsp);
	if (h->alpn_offer)
		CHECK_EQ_INT(SSL_set_alpn_protos(client, (const unsigned char *)h->alpn_offer,
						 (unsigned)strlen(h->alpn_offer)),
			     0);
	if (h->no_ticket)
		SSL_set_options(client, SSL_OP_NO_TICKET);
	if (h->session_in)
		CHECK_EQ_INT(SSL_set_session(client, h->session_in), 1);
	if (h->client_cert) {
		CHECK_EQ_INT(SSL_use_certificate(client, h->client_cert->cert), 1);
		CHECK_EQ_INT(SSL_use_PrivateKey(client, h->client_cert->key), 1);
	}
	SSL_set_bio(client, c_in, c_out);
	SSL_set_bio(server, s_in, s_out);
	SSL_set_connect_state(client);
	SSL_set_accept_state(server);

	int rc = 0, rs = 0;
	for (int i = 0; i < 20 && (rc != 1 || rs != 1); i++) {
		rc = SSL_do_handshake(client);
		pump(c_out, s_in);
		rs = SSL_do_handshake(server);
		pump(s_out, c_in);
	}
	h->ok = rc == 1 && rs == 1;
	h->reused = SSL_session_reused(client) == 1;
	h->server_saw_cert = SSL_get0_peer_certificate(server) != NULL;
	const char *sn = SSL_get_servername(server, TLSEXT_NAMETYPE_host_name);
	snprintf(h->server_sni, sizeof(h->server_sni), "%s", sn ? sn : "");
	const STACK_OF(X509_NAME) *cas = SSL_get0_peer_CA_list(client);
	h->ca_names = cas ? sk_X509_NAME_num(cas) : -1;
	const unsigned char *sel = NULL;
	unsigned sel_len = 0;
	SSL_get0_alpn_selected(client, &sel, &sel_len);
	snprintf(h->alpn, sizeof(h->alpn), "%.*s", (int)sel_len, sel ? (const char *)sel : "");
	if (h->ok && h->version == TLS1_3_VERSION) {
		/* TLS 1.3 tickets come after the handshake */
		char buf[1];
		SSL_read(client, buf, sizeof(buf));
	}
	h->session_out = SSL_get1_session(client);
	/* An orderly end: OpenSSL forgets the session of a connection freed
	 * without one (SSL_free -> SSL_CTX_remove_session), on both sides. */
	if (h->ok) {
		SSL_set_shutdown(client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_set_shutdown(server, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	}
	h->org[0] = h->key[0] = '\0';
	h->ocsp_len = -1;
	X509 *peer = SSL_get0_peer_certificate(client);
	if (peer) {
		X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_organizationName, h->org,
					  sizeof(h->org));
		EVP_PKEY *pk = X509_get0_pubkey(peer);
		snprintf(h->key, sizeof(h->key), "%s", pk ? EVP_PKEY_get0_type_name(pk) : "?");
	}
	const unsigned char *resp = NULL;
	long len = SSL_get_tlsext_status_ocsp_resp(client, &resp);
	if (resp && len > 0 && (size_t)len <= sizeof(h->ocsp)) {
		memcpy(h->ocsp, resp, (size_t)len);
		h->ocsp_len = len;
	}
	SSL_free(client);
	SSL_CTX_free(cctx);
	ERR_clear_error();
}

static void handshake(SSL_CTX *sctx, struct hs *h)
{
	SSL *server = SSL_new(sctx);
	handshake_ssl(server, h);
	SSL_free(server);
	SSL_SESSION_free(h->session_out);
	h->session_out = NULL;
}

/* A handshake whose new session the caller keeps (SSL_SESSION_free). */
static SSL_SESSION *handshake_keep(SSL_CTX *sctx, struct hs *h)
{
	SSL *server = SSL_new(sctx);
	handshake_ssl(server, h);
	SSL_free(server);
	return h->session_out;
}

/* Which certificate (its O) a client gets for sni, in both versions. */
#define EXPECT_SERVED(ctx, sni_, want)                                             \
	do {                                                                       \
		int versions_[2] = {TLS1_2_VERSION, TLS1_3_VERSION};               \
		for (int v_ = 0; v_ < 2; v_++) {                                   \
			struct hs h_ = {.sni = (sni_), .version = versions_[v_]};  \
			handshake((ctx), &h_);                                     \
			CHECK(h_.ok);                                              \
			CHECK_EQ_STR(h_.org, (want));                              \
		}                                                                  \
	} while (0)

static struct tern_config cfg;
static char err[512];

static void cfg_certs(size_t n, const char *const *paths)
{
	tern_config_init(&cfg);
	cfg.num_certs = n;
	for (size_t i = 0; i < n; i++)
		cfg.certs[i] = (struct tern_cert_config){.cert_path = paths[i]};
}

static struct tern_tls_shard *shard_of(struct tern_tls_identities *ids)
{
	struct tern_tls_shard *shard = NULL;
	err[0] = '\0';
	CHECK_EQ_INT(tern_tls_shard_new(&cfg, ids, NULL, &shard, err, sizeof(err)), 0);
	CHECK_EQ_STR(err, "");
	if (!shard)
		exit(1);
	return shard;
}

static struct tern_tls_identities *load_ok(void)
{
	struct tern_tls_identities *ids = NULL;
	err[0] = '\0';
	CHECK_EQ_INT(tern_tls_identities_load(&cfg, &ids, err, sizeof(err)), 0);
	CHECK_EQ_STR(err, "");
	if (!ids)
		exit(1);
	return ids;
}

/* Loading must fail with exactly this message (when want is not NULL). */
static void expect_load_error(int want_ret, const char *want)
{
	struct tern_tls_identities *ids = NULL;
	err[0] = '\0';
	CHECK_EQ_INT(tern_tls_identities_load(&cfg, &ids, err, sizeof(err)), want_ret);
	CHECK(ids == NULL);
	if (want)
		CHECK_EQ_STR(err, want);
	CHECK(strchr(err, '\n') == NULL);
}

static struct made m_default, m_b, m_wild, m_exact_in_wild, m_d_rsa, m_d_ec, m_cn_only, m_shadow;

static void make_all(void)
{
	make_cert(&m_default, "default", "EC", "default.test", "DNS:default.test,DNS:www.default.test");
	make_cert(&m_b, "b", "EC", "ignored-cn.test", "DNS:B.test");
	make_cert(&m_wild, "wild", "EC", "w.test", "DNS:*.w.test");
	make_cert(&m_exact_in_wild, "exact", "EC", "x.w.test", "DNS:x.w.test");
	make_cert(&m_d_rsa, "d-rsa", "RSA", "d.test", "DNS:d.test,DNS:*.d.test");
	make_cert(&m_d_ec, "d-ec", "EC", "d.test", "DNS:*.d.test,DNS:d.test");
	make_cert(&m_cn_only, "cn", "EC", "cn.test", NULL);
	/* b.test again, later: b.pem keeps it; shadow.test is its own */
	make_cert(&m_shadow, "shadow", "EC", "shadow.test", "DNS:b.test,DNS:shadow.test");
}

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

	/* no --cert: the self-signed localhost certificate */
	tern_config_init(&cfg);
	ids = load_ok();
	char line[1024];
	tern_tls_identities_describe(ids, 0, line, sizeof(line));
	CHECK(strncmp(line, "cert=self-signed names=localhost subject=/CN=localhost key=EC ", 62) == 0);
	tern_tls_identities_unref(ids);
}

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

	/* bad --client-ca files: exit 1 material, naming the path */
	char path[PATH_MAX], want[2 * PATH_MAX];
	cfg_certs(1, paths);
	snprintf(path, sizeof(path), "%s/no-ca.pem", tmp_dir);
	cfg.client_ca_path = path;
	snprintf(want, sizeof(want), "%s: cannot open: %s", path, strerror(ENOENT));
	expect_load_error(-EIO, want);
	write_bytes(path, "empty-ca.pem", "", 0);
	expect_load_error(-EIO, NULL);
	snprintf(want, sizeof(want), "%s: no PEM certificate found (", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	/* a certificate, then garbage in PEM armour */
	write_pem_copy(path, "mixed-ca.pem", ca.pem, true);
	expect_load_error(-EIO, NULL);
	snprintf(want, sizeof(want), "%s: bad PEM certificate in the CA bundle (", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);

	made_free(&ca);
	made_free(&other_ca);
	made_free(&good);
	made_free(&bad);
}

static void test_load_errors(void)
{
	char path[PATH_MAX], want[2 * PATH_MAX + 256], der[PATH_MAX];

	/* a missing certificate, a missing key, a missing OCSP file */
	snprintf(path, sizeof(path), "%s/missing.pem", tmp_dir);
	const char *missing[] = {m_default.pem, path};
	cfg_certs(2, missing);
	snprintf(want, sizeof(want), "%s: cannot open: %s", path, strerror(ENOENT));
	expect_load_error(-EIO, want);
	cfg_certs(1, missing);
	cfg.certs[0].key_path = path;
	expect_load_error(-EIO, want);
	cfg_certs(1, missing);
	cfg.certs[0].ocsp_path = path;
	expect_load_error(-EIO, want);

	/* A private key other users can read is refused, in --key or inside
	 * the --cert file; 0640 (a group of operators) is fine. */
	cfg_certs(1, missing);
	CHECK_EQ_INT(chmod(m_default.pem, 0644), 0);
	snprintf(want, sizeof(want),
		 "%s: private key readable by other users (mode 0644); chmod 600 or 640 it",
		 m_default.pem);
	expect_load_error(-EACCES, want);
	CHECK_EQ_INT(chmod(m_default.pem, 0602), 0);
	snprintf(want, sizeof(want),
		 "%s: private key writable by other users (mode 0602); chmod 600 or 640 it",
		 m_default.pem);
	expect_load_error(-EACCES, want);
	CHECK_EQ_INT(chmod(m_default.pem, 0640), 0);
	struct tern_tls_identities *ok_ids = NULL;
	CHECK_EQ_INT(tern_tls_identities_load(&cfg, &ok_ids, err, sizeof(err)), 0);
	tern_tls_identities_unref(ok_ids);
	CHECK_EQ_INT(chmod(m_default.pem, 0600), 0);

	/* A chain certificate that does not parse is refused, not dropped:
	 * a silently shorter chain would fail only at the clients. */
	char broken[PATH_MAX];
	write_pem_copy(broken, "broken-chain.pem", m_default.pem, true);
	CHECK_EQ_INT(chmod(broken, 0600), 0);
	const char *broken_certs[] = {broken};
	cfg_certs(1, broken_certs);
	expect_load_error(-EIO, NULL);
	snprintf(want, sizeof(want), "%s: bad PEM certificate in the chain (", broken);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	/* and the same file without the broken block loads */
	write_pem_copy(broken, "broken-chain.pem", m_default.pem, false);
	CHECK_EQ_INT(chmod(broken, 0600), 0);
	CHECK_EQ_INT(tern_tls_identities_load(&cfg, &ok_ids, err, sizeof(err)), 0);
	tern_tls_identities_unref(ok_ids);

	/* OCSP files that are not a successful DER response */
	cfg_certs(1, missing);
	write_bytes(der, "garbage.der", "not DER at all", 14);
	cfg.certs[0].ocsp_path = der;
	expect_load_error(-EIO, NULL);
	snprintf(want, sizeof(want), "%s: not a DER OCSP response (", der);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	write_bytes(der, "empty.der", "", 0);
	expect_load_error(-EIO, NULL);
	CHECK(strncmp(err, der, strlen(der)) == 0);
	cfg.certs[0].ocsp_path = m_default.pem; /* PEM, not DER */
	expect_load_error(-EIO, NULL);
	snprintf(want, sizeof(want), "%s: not a DER OCSP response (", m_default.pem);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	make_ocsp(&m_default, OCSP_RESPONSE_STATUS_UNAUTHORIZED, der, "unauthorized.der");
	cfg.certs[0].ocsp_path = der;
	snprintf(want, sizeof(want), "%s: OCSP response status is unauthorized, not successful", der);
	expect_load_error(-EIO, want);
	/* trailing bytes */
	char good[PATH_MAX];
	make_ocsp(&m_default, OCSP_RESPONSE_STATUS_SUCCESSFUL, good, "good.der");
	FILE *f = fopen(good, "ab");
	fputs("x", f);
	fclose(f);
	cfg.certs[0].ocsp_path = good;
	snprintf(want, sizeof(want), "%s: not a DER OCSP response (trailing bytes after it)", good);
	expect_load_error(-EIO, want);
	cfg.certs[0].ocsp_path = tmp_dir;
	snprintf(want, sizeof(want), "%s: not a DER OCSP response (not a regular file of at most 1 MiB)",
		 tmp_dir);
	expect_load_error(-EIO, want);

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

	/* OpenSSL's values checked when the contexts are built */
	const char *one[] = {m_default.pem};
	cfg_certs(1, one);
	ids = load_ok();
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
	/* Files written here hold private keys: private, as tern requires. */
	umask(077);
	test_tmp_dir_make(tmp_dir, sizeof(tmp_dir), "tls_ctx_test");
	test_name_match();
	make_all();
	test_sni();
	test_single();
	test_ocsp();
	test_alpn();
	test_session_cache();
	test_client_auth();
	test_load_errors();
	struct made *all[] = {&m_default, &m_b, &m_wild, &m_exact_in_wild, &m_d_rsa, &m_d_ec, &m_cn_only, &m_shadow};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		made_free(all[i]);
	test_tmp_dir_remove(tmp_dir);
	return check_summary();
}
