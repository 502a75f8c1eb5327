/* Loading the identities: every --cert with its chain, key and OCSP
 * response (or a self-signed certificate), the --client-ca bundle and the
 * --alpn list, into one immutable, reference-counted set that every
 * worker's shard reads. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tern/escape.h"
#include "tern/tls.h"
#include "tern/tls_ctx.h"
#include "tls_ctx_internal.h"

/* An OCSP response is a few KiB; anything near this is not one. */
#define OCSP_MAX_LEN (1024 * 1024)

/* ---- small helpers ---- */

void tls_ctx_ssl_reason(char *out, size_t out_len, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;
	snprintf(out, out_len, "%s", reason ? reason : fallback);
	ERR_clear_error();
}

static int file_error(char *err, size_t err_len, const char *path, const char *what)
{
	char reason[128];
	tls_ctx_ssl_reason(reason, sizeof(reason), what);
	snprintf(err, err_len, "%s: %s (%s)", path, what, reason);
	return -EIO;
}

static int open_error(char *err, size_t err_len, const char *path)
{
	snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno ? errno : EIO));
	ERR_clear_error();
	return -EIO;
}

/* ---- loading ---- */

static void identity_clear(struct identity *id)
{
	X509_free(id->cert);
	sk_X509_pop_free(id->chain, X509_free);
	EVP_PKEY_free(id->key);
	OPENSSL_free(id->ocsp);
	for (size_t i = 0; i < id->num_names; i++)
		free(id->names[i]);
	free(id->names);
	free(id->name_set);
	free(id->source);
	free(id->ocsp_source);
}

static void identities_free(struct tern_tls_identities *ids)
{
	for (size_t i = 0; i < ids->num_certs; i++)
		identity_clear(&ids->certs[i]);
	free(ids->certs);
	free(ids->exact);
	free(ids->wild);
	sk_X509_pop_free(ids->client_cas, X509_free);
	free(ids->client_ca_source);
	sk_X509_CRL_pop_free(ids->crls, X509_CRL_free);
	free(ids->crl_source);
	free(ids);
}

struct tern_tls_identities *tern_tls_identities_ref(struct tern_tls_identities *ids)
{
	/* Relaxed: the caller already holds a reference, so the object is
	 * alive and immutable; only the count changes. */
	atomic_fetch_add_explicit(&ids->refs, 1, memory_order_relaxed);
	return ids;
}

void tern_tls_identities_unref(struct tern_tls_identities *ids)
{
	if (!ids)
		return;
	/* acq_rel: every use by other threads happens before the free. */
	if (atomic_fetch_sub_explicit(&ids->refs, 1, memory_order_acq_rel) == 1)
		identities_free(ids);
}

size_t tern_tls_identities_count(const struct tern_tls_identities *ids)
{
	return ids->num_certs;
}

/* How a loop of PEM reads ended: 0 on "no start line" at the end of the
 * file, -EBADMSG on a block that did not parse. The caller clears the
 * error queue. */
static int pem_loop_end(void)
{
	unsigned long e = ERR_peek_last_error();
	if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
		return -EBADMSG;
	return 0;
}

/* Appends every PEM certificate left in bio to certs. Returns 0 at the end
 * of the file, -ENOMEM, or -EBADMSG for a CERTIFICATE block that does not
 * parse (OpenSSL's reason left in the error queue for the message). Other
 * PEM blocks, such as a private key, are skipped. */
static int read_pem_certs(BIO *bio, STACK_OF(X509) *certs)
{
	for (;;) {
		X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (!cert)
			break;
		if (!sk_X509_push(certs, cert)) {
			X509_free(cert);
			return -ENOMEM;
		}
	}
	return pem_loop_end();
}

/* Reads the leaf and the chain that follows it from one PEM file. */
static int load_cert_file(struct identity *id, const char *path, char *err, size_t err_len)
{
	BIO *bio = BIO_new_file(path, "r");
	if (!bio)
		return open_error(err, err_len, path);
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
	ret = read_pem_certs(bio, id->chain);
	if (ret == -EBADMSG)
		ret = file_error(err, err_len, path, "bad PEM certificate in the chain");
out:
	ERR_clear_error();
	BIO_free(bio);
	return ret;
}

/* The file holding a private key (--key, or the --cert file the key is
 * in) must not be readable or writable by other users: whoever reads it
 * can impersonate the site, whoever writes it can swap in their own. Checked on the open file, so no rename can slip
 * another file in between the check and the read. */
static int load_key_file(struct identity *id, const char *path, char *err, size_t err_len)
{
	struct stat st;
	FILE *f = fopen(path, "r");
	if (!f)
		return open_error(err, err_len, path);
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH))) {
		fclose(f);
		snprintf(err, err_len,
			 "%s: private key %s by other users (mode %04o); chmod 600 or 640 it", path,
			 (st.st_mode & S_IROTH) ? "readable" : "writable",
			 (unsigned)(st.st_mode & 07777));
		return -EACCES;
	}
	BIO *bio = BIO_new_fp(f, BIO_CLOSE);
	if (!bio) {
		fclose(f);
		return -ENOMEM;
	}
	id->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!id->key)
		return file_error(err, err_len, path, "no PEM private key found");
	return 0;
}

/* Reads a DER OCSP response (as `openssl ocsp -respout` writes it) and
 * checks that it parses and says "successful": a response that only says
 * "tryLater" or "unauthorized" is an operator's mistake to report at
 * start, not something to staple. The bytes are kept as they are in the
 * file. */
static int load_ocsp_file(struct identity *id, const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *der = NULL;
	OCSP_RESPONSE *resp = NULL;
	struct stat st;
	int ret = -EIO;

	if (!f)
		return open_error(err, err_len, path);
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > OCSP_MAX_LEN) {
		snprintf(err, err_len, "%s: not a DER OCSP response (not a regular file of at most 1 MiB)",
			 path);
		goto out;
	}
	size_t len = (size_t)st.st_size;
	der = OPENSSL_malloc(len ? len : 1);
	if (!der) {
		ret = -ENOMEM;
		goto out;
	}
	if (fread(der, 1, len, f) != len) {
		snprintf(err, err_len, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
		goto out;
	}
	const unsigned char *p = der;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	if (!resp) {
		ret = file_error(err, err_len, path, "not a DER OCSP response");
		goto out;
	}
	if (p != der + len) {
		snprintf(err, err_len, "%s: not a DER OCSP response (trailing bytes after it)", path);
		goto out;
	}
	int status = OCSP_response_status(resp);
	if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		snprintf(err, err_len, "%s: OCSP response status is %s, not successful", path,
			 OCSP_response_status_str(status));
		goto out;
	}
	id->ocsp = der;
	id->ocsp_len = len;
	der = NULL;
	ret = 0;
out:
	OCSP_RESPONSE_free(resp);
	OPENSSL_free(der);
	fclose(f);
	ERR_clear_error();
	return ret;
}

/* Reads every certificate of a PEM bundle. At least one, and nothing
 * but certificates: a half-read bundle would trust fewer CAs than the
 * operator meant without a word. */
static int load_client_cas(struct tern_tls_identities *ids, const char *path, char *err,
			   size_t err_len)
{
	BIO *bio = BIO_new_file(path, "r");
	int ret = 0;

	if (!bio)
		return open_error(err, err_len, path);
	ids->client_cas = sk_X509_new_null();
	ids->client_ca_source = strdup(path);
	if (!ids->client_cas || !ids->client_ca_source) {
		ret = -ENOMEM;
		goto out;
	}
	ret = read_pem_certs(bio, ids->client_cas);
	if (ret == -EBADMSG)
		ret = file_error(err, err_len, path, "bad PEM certificate in the CA bundle");
	else if (ret == 0 && sk_X509_num(ids->client_cas) == 0)
		ret = file_error(err, err_len, path, "no PEM certificate found");
out:
	ERR_clear_error();
	BIO_free(bio);
	return ret;
}

/* Reads every CRL of a PEM file (X509 CRL blocks; other blocks are
 * skipped, as in a CA bundle). At least one, and each must parse: a CRL
 * that silently failed to load would let its revoked certificates in.
 * Their signatures and dates are checked where they are used, against
 * the --client-ca certificates, on every verification. */
static int load_crls(struct tern_tls_identities *ids, const char *path, char *err, size_t err_len)
{
	BIO *bio = BIO_new_file(path, "r");
	int ret = 0;

	if (!bio)
		return open_error(err, err_len, path);
	ids->crls = sk_X509_CRL_new_null();
	ids->crl_source = strdup(path);
	if (!ids->crls || !ids->crl_source) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		X509_CRL *crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		if (!crl)
			break;
		if (!sk_X509_CRL_push(ids->crls, crl)) {
			X509_CRL_free(crl);
			ret = -ENOMEM;
			goto out;
		}
	}
	if (pem_loop_end() < 0)
		ret = file_error(err, err_len, path, "bad PEM CRL");
	else if (sk_X509_CRL_num(ids->crls) == 0)
		ret = file_error(err, err_len, path, "no PEM CRL found");
out:
	ERR_clear_error();
	BIO_free(bio);
	return ret;
}

/* A throwaway ECDSA P-256 certificate for localhost, valid for a year, so
 * that tern with no flags answers TLS at once (a warning says so). */
static int make_self_signed(struct identity *id, char *err, size_t err_len)
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
	id->source = strdup("self-signed");
	if (!id->source)
		goto out;
	ret = 0;
out:
	if (ret < 0) {
		char reason[128];
		tls_ctx_ssl_reason(reason, sizeof(reason), "out of memory");
		snprintf(err, err_len, "cannot make a self-signed certificate: %s", reason);
	}
	X509_EXTENSION_free(ext);
	X509_NAME_free(name);
	return ret;
}

static int load_identity(struct identity *id, const struct tern_cert_config *cc, char *err,
			 size_t err_len)
{
	int ret;

	id->source = strdup(cc->cert_path);
	if (!id->source)
		return -ENOMEM;
	ret = load_cert_file(id, cc->cert_path, err, err_len);
	if (ret < 0)
		return ret;
	const char *key_path = cc->key_path ? cc->key_path : cc->cert_path;
	ret = load_key_file(id, key_path, err, err_len);
	if (ret < 0)
		return ret;
	if (X509_check_private_key(id->cert, id->key) != 1)
		return file_error(err, err_len, key_path, "private key does not match the certificate");
	if (cc->ocsp_path) {
		id->ocsp_source = strdup(cc->ocsp_path);
		if (!id->ocsp_source)
			return -ENOMEM;
		ret = load_ocsp_file(id, cc->ocsp_path, err, err_len);
	}
	return ret;
}

int tern_tls_identities_load(const struct tern_config *cfg, struct tern_tls_identities **out,
			     char *err, size_t err_len)
{
	struct tern_tls_identities *ids = calloc(1, sizeof(*ids));
	size_t n = cfg->num_certs ? cfg->num_certs : 1;
	int ret = -ENOMEM;

	if (!ids)
		return -ENOMEM;
	atomic_init(&ids->refs, 1);
	if (cfg->alpn_wire_len > sizeof(ids->alpn)) {
		identities_free(ids);
		snprintf(err, err_len, "--alpn: too long");
		return -EINVAL;
	}
	memcpy(ids->alpn, cfg->alpn_wire, cfg->alpn_wire_len);
	ids->alpn_len = cfg->alpn_wire_len;
	ids->certs = calloc(n, sizeof(*ids->certs));
	if (!ids->certs)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct identity *id = &ids->certs[i];
		ids->num_certs = i + 1;
		if (cfg->num_certs == 0)
			ret = make_self_signed(id, err, err_len);
		else
			ret = load_identity(id, &cfg->certs[i], err, err_len);
		if (ret == 0)
			ret = tls_ctx_read_names(id);
		if (ret < 0)
			goto fail;
	}
	if (cfg->client_ca_path) {
		ret = load_client_cas(ids, cfg->client_ca_path, err, err_len);
		if (ret < 0)
			goto fail;
	}
	if (cfg->crl_path) {
		ret = load_crls(ids, cfg->crl_path, err, err_len);
		if (ret < 0)
			goto fail;
	}
	ret = tls_ctx_index_names(ids, err, err_len);
	if (ret < 0)
		goto fail;
	*out = ids;
	return 0;
fail:
	if (ret == -ENOMEM)
		snprintf(err, err_len, "out of memory loading certificates");
	identities_free(ids);
	return ret;
}

void tern_tls_identities_describe(const struct tern_tls_identities *ids, size_t i, char *out,
				  size_t out_len)
{
	const struct identity *id = &ids->certs[i];
	char subject_bytes[TERN_ESCAPE_IN_MAX + 1];
	char subject[TERN_ESCAPE_OUT_MAX], names[TERN_ESCAPE_OUT_MAX];
	char expires[64] = "?";
	struct tern_escaper e;

	/* Names and subject are the certificate's bytes, whoever made it:
	 * escaped and bounded as a client's are (escape.h), spaces too, so
	 * the line stays one line of key=value words. */
	tern_escaper_init(&e, names, sizeof(names), TERN_ESCAPE_SPACE);
	for (size_t k = 0; k < id->num_names; k++) {
		if (k)
			tern_escaper_put(&e, ",", 1);
		tern_escaper_put(&e, id->names[k], strlen(id->names[k]));
	}
	if (tern_escaper_finish(&e) == 0)
		snprintf(names, sizeof(names), "-");
	int n = tern_tls_name_bytes(X509_get_subject_name(id->cert), subject_bytes,
				    sizeof(subject_bytes));
	tern_escape(subject, sizeof(subject), subject_bytes, n > 0 ? (size_t)n : 0, TERN_ESCAPE_SPACE);
	if (n <= 0)
		snprintf(subject, sizeof(subject), "-");
	BIO *mem = BIO_new(BIO_s_mem());
	if (mem && ASN1_TIME_print(mem, X509_get0_notAfter(id->cert)) > 0) {
		int m = BIO_read(mem, expires, sizeof(expires) - 1);
		expires[m > 0 ? m : 0] = '\0';
	}
	BIO_free(mem);
	snprintf(out, out_len,
		 "cert=%s names=%s subject=%s key=%s bits=%d chain=%d ocsp=%s expires=\"%s\"%s",
		 id->source, names, subject, EVP_PKEY_get0_type_name(id->key),
		 EVP_PKEY_get_bits(id->key), sk_X509_num(id->chain),
		 id->ocsp_source ? id->ocsp_source : "-", expires, i == 0 ? " default" : "");
	ERR_clear_error();
}

/* An ASN1_TIME as seconds since the epoch, or TERN_CERT_TIME_NONE. */
static int64_t asn1_time_epoch(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return TERN_CERT_TIME_NONE;
	return (int64_t)timegm(&tm);
}

/* The stapled response's status for the certificate: the first
 * SingleResponse, which is the one `openssl ocsp` writes for one
 * certificate. Parsed again for every `certs`: rare, and the identities
 * keep only the bytes they staple. */
static void ocsp_info(const struct identity *id, struct tern_cert_info *out)
{
	const unsigned char *p = id->ocsp;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)id->ocsp_len);
	OCSP_BASICRESP *basic = resp ? OCSP_response_get1_basic(resp) : NULL;
	OCSP_SINGLERESP *single = basic ? OCSP_resp_get0(basic, 0) : NULL;
	ASN1_GENERALIZEDTIME *this_update = NULL, *next_update = NULL;
	int reason;

	if (single) {
		int status = OCSP_single_get0_status(single, &reason, NULL, &this_update, &next_update);
		out->ocsp_status = status >= 0 ? OCSP_cert_status_str(status) : NULL;
		out->ocsp_this_update = asn1_time_epoch(this_update);
		out->ocsp_next_update = asn1_time_epoch(next_update);
	}
	OCSP_BASICRESP_free(basic);
	OCSP_RESPONSE_free(resp);
	ERR_clear_error();
}

void tern_tls_identities_cert_info(const struct tern_tls_identities *ids, size_t i,
				   struct tern_cert_info *out)
{
	const struct identity *id = &ids->certs[i];

	*out = (struct tern_cert_info){
		.source = id->source,
		/* char ** to const char *const *: C wants the cast. */
		.names = (const char *const *)id->names,
		.num_names = id->num_names,
		.key_type = EVP_PKEY_get0_type_name(id->key),
		.key_bits = EVP_PKEY_get_bits(id->key),
		.not_before = asn1_time_epoch(X509_get0_notBefore(id->cert)),
		.not_after = asn1_time_epoch(X509_get0_notAfter(id->cert)),
		.is_default = i == 0,
		.ocsp_source = id->ocsp ? id->ocsp_source : NULL,
		.ocsp_this_update = TERN_CERT_TIME_NONE,
		.ocsp_next_update = TERN_CERT_TIME_NONE,
	};
	if (!out->key_type)
		out->key_type = "?";
	if (id->ocsp)
		ocsp_info(id, out);
}
