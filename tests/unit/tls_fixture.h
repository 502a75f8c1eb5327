/* Certificates and contexts for unit tests that run TLS in memory: a key,
 * a self-signed certificate, and a client context. Header-only, like
 * check.h: each test is one executable. */
#ifndef TERN_TEST_TLS_FIXTURE_H
#define TERN_TEST_TLS_FIXTURE_H

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static inline EVP_PKEY *fixture_key(void)
{
	return EVP_EC_gen("P-256");
}

/* A self-signed certificate for key, O=tern test and CN=cn (none when
 * NULL), valid for an hour. NULL on failure. */
static inline X509 *fixture_self_signed(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *name = x ? X509_get_subject_name(x) : NULL;

	if (!x || !name || X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 7) != 1 ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 3600) || X509_set_pubkey(x, key) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"tern test", -1,
				       -1, 0) != 1 ||
	    (cn && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					      -1, 0) != 1) ||
	    X509_set_issuer_name(x, name) != 1 || X509_sign(x, key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* A client context up to max_version that verifies nothing. */
static inline SSL_CTX *fixture_client_ctx(int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_max_proto_version(ctx, max_version);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

#endif
