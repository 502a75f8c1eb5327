/* What the tls_ctx tests share (tls_ctx_names_test.c,
 * tls_ctx_identities_test.c, tls_ctx_test.c): certificates, CAs and OCSP
 * responses made in a private temporary directory, one handshake in memory
 * of a fresh client against a server SSL with what each side saw, and a
 * config to load identities and build shards from. Header-only with static
 * state, like check.h: each test is one .c file and one executable. */
#ifndef TERN_TEST_TLS_CTX_FIXTURE_H
#define TERN_TEST_TLS_CTX_FIXTURE_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* ---- certificates made here ---- */

struct made {
	char pem[PATH_MAX]; /* certificate, then key */
	X509 *cert;
	EVP_PKEY *key;
};

/* Starts m: a new key, "EC" or "RSA", and a version 3 certificate for it
 * with this serial, valid from an hour ago to an hour from now, named
 * subject and issued by issuer (NULL: by subject itself). The caller
 * keeps the names. */
static inline void made_begin(struct made *m, const char *type, long serial, const X509_NAME *subject,
			      const X509_NAME *issuer)
{
	memset(m, 0, sizeof(*m));
	m->key = strcmp(type, "RSA") == 0 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
	m->cert = X509_new();
	if (!m->key || !m->cert)
		exit(1);
	X509_set_version(m->cert, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(m->cert), serial);
	X509_gmtime_adj(X509_getm_notBefore(m->cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(m->cert), 3600);
	X509_set_subject_name(m->cert, subject);
	X509_set_issuer_name(m->cert, issuer ? issuer : subject);
	X509_set_pubkey(m->cert, m->key);
}

/* Ends m: adds the extension nid with value (none when NULL), signs it
 * with issuer's key (issuer may be m) and writes it with its own key to
 * DIR/name.pem. */
static inline void made_finish(struct made *m, int nid, const char *value, const struct made *issuer,
			       const char *name)
{
	X509V3_CTX v3;

	if (value) {
		X509V3_set_ctx(&v3, issuer->cert, m->cert, NULL, NULL, 0);
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
		if (!ext || !X509_add_ext(m->cert, ext, -1))
			exit(1);
		X509_EXTENSION_free(ext);
	}
	if (!X509_sign(m->cert, issuer->key, EVP_sha256()))
		exit(1);
	snprintf(m->pem, sizeof(m->pem), "%s/%s.pem", tmp_dir, name);
	FILE *f = fopen(m->pem, "w");
	if (!f || !PEM_write_X509(f, m->cert) || !PEM_write_PrivateKey(f, m->key, NULL, NULL, 0, NULL, NULL))
		exit(1);
	fclose(f);
}

/* A self-signed certificate: subject CN cn (none when NULL) and O name,
 * a subjectAltName of san ("DNS:a,DNS:b"; none when NULL), key "EC" or
 * "RSA". Written with its key to DIR/name.pem. */
static inline void make_cert(struct made *m, const char *name, const char *type, const char *cn, const char *san)
{
	X509_NAME *subject = X509_NAME_new();
	if (!subject)
		exit(1);
	if (cn)
		X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
	made_begin(m, type, 1, subject, NULL);
	X509_NAME_free(subject);
	made_finish(m, NID_subject_alt_name, san, m, name);
}

/* A CA (basicConstraints CA:TRUE, self-signed), or a client certificate
 * for CN name issued by ca; EC keys; written with its key to
 * DIR/name.pem. */
static inline void make_issued(struct made *m, const char *name, const struct made *ca)
{
	X509_NAME *subject = X509_NAME_new();
	if (!subject)
		exit(1);
	X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
	made_begin(m, "EC", 2, subject, ca ? X509_get_subject_name(ca->cert) : NULL);
	X509_NAME_free(subject);
	made_finish(m, NID_basic_constraints, ca ? "critical,CA:FALSE" : "critical,CA:TRUE", ca ? ca : m, name);
}

/* A client certificate for CN name issued by ca, as make_issued makes
 * one, but with its own serial (make_issued gives every one serial 2). */
static inline void make_issued_serial(struct made *m, const char *name, const struct made *ca, long serial)
{
	X509_NAME *subject = X509_NAME_new();
	if (!subject)
		exit(1);
	X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
	made_begin(m, "EC", serial, subject, X509_get_subject_name(ca->cert));
	X509_NAME_free(subject);
	made_finish(m, NID_basic_constraints, "critical,CA:FALSE", ca, name);
}

/* Appends to f a PEM CRL signed by ca revoking the serials (num of them),
 * issued a minute ago and valid for an hour. */
static inline void write_crl(FILE *f, const struct made *ca, const long *serials, size_t num)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *then = X509_gmtime_adj(NULL, -60), *next = X509_gmtime_adj(NULL, 3600);
	if (!crl || !then || !next || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) ||
	    !X509_CRL_set1_lastUpdate(crl, then) || !X509_CRL_set1_nextUpdate(crl, next))
		exit(1);
	for (size_t i = 0; i < num; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *serial = ASN1_INTEGER_new();
		if (!r || !serial || !ASN1_INTEGER_set(serial, serials[i]) ||
		    !X509_REVOKED_set_serialNumber(r, serial) || !X509_REVOKED_set_revocationDate(r, then) ||
		    !X509_CRL_add0_revoked(crl, r))
			exit(1);
		ASN1_INTEGER_free(serial);
	}
	if (!X509_CRL_sort(crl) || !X509_CRL_sign(crl, ca->key, EVP_sha256()) || !PEM_write_X509_CRL(f, crl))
		exit(1);
	ASN1_TIME_free(then);
	ASN1_TIME_free(next);
	X509_CRL_free(crl);
}

static inline void made_free(struct made *m)
{
	X509_free(m->cert);
	EVP_PKEY_free(m->key);
}

/* A DER OCSP response with the given status; a successful one says
 * "good" for m's certificate, signed by itself. */
static inline void make_ocsp(const struct made *m, int status, char path[PATH_MAX], const char *name)
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

static inline void pump(BIO *from, BIO *to)
{
	char buf[4096];
	int n;
	while ((n = BIO_read(from, buf, sizeof(buf))) > 0)
		BIO_write(to, buf, n);
}

/* One handshake of a fresh client against an SSL made from ctx (or the
 * given server SSL). */
static inline void handshake_ssl(SSL *server, struct hs *h)
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

static inline void handshake(SSL_CTX *sctx, struct hs *h)
{
	SSL *server = SSL_new(sctx);
	handshake_ssl(server, h);
	SSL_free(server);
	SSL_SESSION_free(h->session_out);
	h->session_out = NULL;
}

/* A handshake whose new session the caller keeps (SSL_SESSION_free). */
static inline SSL_SESSION *handshake_keep(SSL_CTX *sctx, struct hs *h)
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

static inline void cfg_certs(size_t n, const char *const *paths)
{
	tern_config_init(&cfg);
	cfg.num_certs = n;
	for (size_t i = 0; i < n; i++)
		cfg.certs[i] = (struct tern_cert_config){.cert_path = paths[i]};
}

static inline struct tern_tls_shard *shard_of(struct tern_tls_identities *ids)
{
	struct tern_tls_shard *shard = NULL;
	err[0] = '\0';
	CHECK_EQ_INT(tern_tls_shard_new(&cfg, ids, NULL, &shard, err, sizeof(err)), 0);
	CHECK_EQ_STR(err, "");
	if (!shard)
		exit(1);
	return shard;
}

static inline struct tern_tls_identities *load_ok(void)
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
static inline void expect_load_error(int want_ret, const char *want)
{
	struct tern_tls_identities *ids = NULL;
	err[0] = '\0';
	CHECK_EQ_INT(tern_tls_identities_load(&cfg, &ids, err, sizeof(err)), want_ret);
	CHECK(ids == NULL);
	if (want)
		CHECK_EQ_STR(err, want);
	CHECK(strchr(err, '\n') == NULL);
}

/* The certificates every test starts with (tls_ctx_fixture_start), each
 * named by its O: a default, SAN and CN-only names, a wildcard with an
 * exact name inside it, an RSA and ECDSA pair for the same names, and a
 * later certificate repeating an earlier one's name. */
static struct made m_default, m_b, m_wild, m_exact_in_wild, m_d_rsa, m_d_ec, m_cn_only, m_shadow;

static inline void make_all(void)
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

/* Starts a test: files written here hold private keys, so they are
 * private, as tern requires; then the directory and the certificates
 * above. */
static inline void tls_ctx_fixture_start(const char *name)
{
	umask(077);
	test_tmp_dir_make(tmp_dir, sizeof(tmp_dir), name);
	make_all();
}

static inline void tls_ctx_fixture_end(void)
{
	struct made *all[] = {&m_default, &m_b, &m_wild, &m_exact_in_wild, &m_d_rsa, &m_d_ec, &m_cn_only, &m_shadow};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		made_free(all[i]);
	test_tmp_dir_remove(tmp_dir);
}

#endif
