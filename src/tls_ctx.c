/* Loading the certificate and building per-worker SSL_CTX shards. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tern/log.h"
#include "tern/tls.h"
#include "tern/tls_ctx.h"

struct tern_tls_identity {
	X509 *cert;
	STACK_OF(X509) *chain;
	EVP_PKEY *key;
	char source[TERN_ADDR_TEXT_MAX + 64];
};

/* The reason OpenSSL gave for the newest error, or fallback. Empties the
 * error queue. */
static void ssl_reason(char *out, size_t out_len, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;
	snprintf(out, out_len, "%s", reason ? reason : fallback);
	ERR_clear_error();
}

static int file_error(char *err, size_t err_len, const char *path, const char *what)
{
	char reason[128];
	ssl_reason(reason, sizeof(reason), what);
	snprintf(err, err_len, "%s: %s (%s)", path, what, reason);
	return -EIO;
}

static void identity_free(struct tern_tls_identity *id)
{
	if (!id)
		return;
	X509_free(id->cert);
	sk_X509_pop_free(id->chain, X509_free);
	EVP_PKEY_free(id->key);
	free(id);
}

void tern_tls_identity_free(struct tern_tls_identity *id)
{
	identity_free(id);
}

/* Reads the leaf and the chain that follows it from one PEM file. */
static int load_cert_file(struct tern_tls_identity *id, const char *path, char *err, size_t err_len)
{
	BIO *bio = BIO_new_file(path, "r");
	if (!bio) {
		snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno ? errno : EIO));
		ERR_clear_error();
		return -EIO;
	}
	int ret = 0;
	id->cert = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
	if (!id->cert) {
		ret = file_error(err, err_len, path, "no PEM certificate found");
		goto out;
	}
	id->chain = sk_X509_new_null();
	if (!id->chain) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		X509 *ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (!ca)
			break;
		if (!sk_X509_push(id->chain, ca)) {
			X509_free(ca);
			ret = -ENOMEM;
			goto out;
		}
	}
	ERR_clear_error(); /* the loop ends on "no start line": not an error */
out:
	BIO_free(bio);
	return ret;
}

static int load_key_file(struct tern_tls_identity *id, const char *path, char *err, size_t err_len)
{
	BIO *bio = BIO_new_file(path, "r");
	if (!bio) {
		snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno ? errno : EIO));
		ERR_clear_error();
		return -EIO;
	}
	id->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!id->key)
		return file_error(err, err_len, path, "no PEM private key found");
	return 0;
}

/* A throwaway ECDSA P-256 certificate for localhost, valid for a year, so
 * that tern with no flags answers TLS at once (a warning says so). */
static int make_self_signed(struct tern_tls_identity *id, char *err, size_t err_len)
{
	X509_NAME *name = NULL;
	X509_EXTENSION *ext = NULL;
	X509V3_CTX v3;
	int ret = -ENOMEM;

	id->key = EVP_EC_gen("P-256");
	id->cert = X509_new();
	id->chain = sk_X509_new_null();
	if (!id->key || !id->cert || !id->chain)
		goto out;
	if (!X509_set_version(id->cert, X509_VERSION_3) ||
	    !ASN1_INTEGER_set_int64(X509_get_serialNumber(id->cert), (int64_t)time(NULL)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(id->cert), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(id->cert), 365L * 24 * 3600))
		goto out;
	name = X509_NAME_new();
	if (!name || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
						 (const unsigned char *)"localhost", -1, -1, 0) ||
	    !X509_set_subject_name(id->cert, name) || !X509_set_issuer_name(id->cert, name) ||
	    !X509_set_pubkey(id->cert, id->key))
		goto out;
	X509V3_set_ctx(&v3, id->cert, id->cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
				  "DNS:localhost,IP:127.0.0.1,IP:::1");
	if (!ext || !X509_add_ext(id->cert, ext, -1))
		goto out;
	if (!X509_sign(id->cert, id->key, EVP_sha256()))
		goto out;
	snprintf(id->source, sizeof(id->source), "self-signed");
	ret = 0;
out:
	if (ret < 0) {
		char reason[128];
		ssl_reason(reason, sizeof(reason), "out of memory");
		snprintf(err, err_len, "cannot make a self-signed certificate: %s", reason);
	}
	X509_EXTENSION_free(ext);
	X509_NAME_free(name);
	return ret;
}

int tern_tls_identity_load(const struct tern_config *cfg, struct tern_tls_identity **out,
			   char *err, size_t err_len)
{
	struct tern_tls_identity *id = calloc(1, sizeof(*id));
	int ret;

	if (!id)
		return -ENOMEM;
	if (!cfg->cert_path) {
		ret = make_self_signed(id, err, err_len);
		if (ret < 0)
			goto fail;
		*out = id;
		return 0;
	}
	ret = load_cert_file(id, cfg->cert_path, err, err_len);
	if (ret < 0)
		goto fail;
	const char *key_path = cfg->key_path ? cfg->key_path : cfg->cert_path;
	ret = load_key_file(id, key_path, err, err_len);
	if (ret < 0)
		goto fail;
	if (X509_check_private_key(id->cert, id->key) != 1) {
		ret = file_error(err, err_len, key_path, "private key does not match the certificate");
		goto fail;
	}
	snprintf(id->source, sizeof(id->source), "%s", cfg->cert_path);
	*out = id;
	return 0;
fail:
	identity_free(id);
	return ret;
}

void tern_tls_identity_describe(const struct tern_tls_identity *id, char *out, size_t out_len)
{
	char subject[256] = "?";
	char expires[64] = "?";
	X509_NAME_oneline(X509_get_subject_name(id->cert), subject, sizeof(subject));

	BIO *mem = BIO_new(BIO_s_mem());
	if (mem && ASN1_TIME_print(mem, X509_get0_notAfter(id->cert)) > 0) {
		int n = BIO_read(mem, expires, sizeof(expires) - 1);
		expires[n > 0 ? n : 0] = '\0';
	}
	BIO_free(mem);
	snprintf(out, out_len, "cert=%s subject=%s key=%s bits=%d chain=%d expires=\"%s\"", id->source,
		 subject, EVP_PKEY_get0_type_name(id->key), EVP_PKEY_get_bits(id->key),
		 sk_X509_num(id->chain), expires);
	ERR_clear_error();
}

static int flag_error(char *err, size_t err_len, const char *flag, const char *value,
		      const char *expected)
{
	ERR_clear_error();
	snprintf(err, err_len, "%s: invalid value '%s' (expected %s)", flag, value, expected);
	return -EINVAL;
}

static int tls_proto(enum tern_tls_version v)
{
	return v == TERN_TLS_1_2 ? TLS1_2_VERSION : TLS1_3_VERSION;
}

int tern_tls_ctx_new(const struct tern_config *cfg, const struct tern_tls_identity *id,
		     SSL_CTX **out, char *err, size_t err_len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int ret;

	if (!ctx) {
		snprintf(err, err_len, "cannot create a TLS context");
		ERR_clear_error();
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(ctx, tls_proto(cfg->tls_min));
	SSL_CTX_set_max_proto_version(ctx, tls_proto(cfg->tls_max));
	/* Client-initiated renegotiation is refused: it costs the server a full
	 * handshake on the client's say-so. Truncation (EOF without
	 * close_notify) ends the stream like a FIN, as SPEC section 6 reads. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
	/* RELEASE_BUFFERS: an idle connection keeps no OpenSSL record buffers.
	 * The write modes let a write resume from a moved or grown buffer. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

	if (SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1) {
		ret = flag_error(err, err_len, "--ciphers", cfg->ciphers,
				 "an OpenSSL cipher list, see openssl-ciphers(1)");
		goto fail;
	}
	if (SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1) {
		ret = flag_error(err, err_len, "--ciphersuites", cfg->ciphersuites,
				 "a colon list of TLS 1.3 suites such as TLS_AES_128_GCM_SHA256");
		goto fail;
	}
	if (SSL_CTX_set1_groups_list(ctx, cfg->groups) != 1) {
		ret = flag_error(err, err_len, "--groups", cfg->groups,
				 "a colon list of groups such as X25519:P-256");
		goto fail;
	}
	if (SSL_CTX_use_cert_and_key(ctx, id->cert, id->key, id->chain, 1) != 1) {
		char reason[128];
		ssl_reason(reason, sizeof(reason), "rejected");
		snprintf(err, err_len, "%s: certificate unusable (%s)", id->source, reason);
		ret = -EIO;
		goto fail;
	}
	SSL_CTX_set_num_tickets(ctx, cfg->num_tickets);
	tern_tls_ctx_count_tickets(ctx);
	*out = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return ret;
}

void tern_tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}
