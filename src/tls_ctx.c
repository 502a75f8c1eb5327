/* Loading the certificates and building each worker's shard of SSL_CTX
 * objects: one per certificate name set, switched by SNI. */
#include <errno.h>
#include <pthread.h>
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
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tern/log.h"
#include "tern/ticket_keys.h"
#include "tern/tls.h"
#include "tern/tls_ctx.h"

/* Longest DNS name (RFC 1035 section 2.3.4: 255 octets on the wire, 253
 * characters as text) kept from a certificate or looked up from SNI. */
#define NAME_MAX_LEN 253

/* An OCSP response is a few KiB; anything near this is not one. */
#define OCSP_MAX_LEN (1024 * 1024)

/* One --cert. */
struct identity {
	X509 *cert;
	STACK_OF(X509) *chain;
	EVP_PKEY *key;
	unsigned char *ocsp; /* DER OCSP response to staple, or NULL */
	size_t ocsp_len;
	char **names; /* lowercase, in certificate order, no duplicates */
	size_t num_names;
	char *name_set; /* the names sorted and joined by '\n': the group key */
	size_t group;   /* index of the SSL_CTX serving it in every shard */
	char *source;   /* the --cert path, or "self-signed" */
	char *ocsp_source;
};

/* A name the SNI lookup knows: exact, or a wildcard's part after "*.". */
struct name_entry {
	const char *name; /* points into an identity's names */
	size_t group;
	size_t cert; /* the first --cert with this name, for messages */
};

struct tern_tls_identities {
	_Atomic unsigned refs;
	struct identity *certs;
	size_t num_certs;
	size_t num_groups; /* group 0 is the first --cert's: the default */
	/* Sorted by name with strcmp, one entry per name, for bsearch. */
	struct name_entry *exact;
	size_t num_exact;
	struct name_entry *wild;
	size_t num_wild;
	/* --alpn in wire format, server preference order; alpn_len 0: none. */
	unsigned char alpn[TERN_MAX_ALPN_WIRE];
	size_t alpn_len;
	/* --client-ca: the CAs client certificates must chain to, in file
	 * order; NULL without the flag. */
	STACK_OF(X509) *client_cas;
	char *client_ca_source;
};

/* Every context's session id context: the same everywhere, so a TLS 1.2
 * session resumes whichever context the connection is switched to (and
 * OpenSSL refuses to resume a session of another id context). */
static const unsigned char session_id_context[] = "tern";

struct tern_tls_shard {
	SSL_CTX **ctx; /* [num_ctx], one reference each; ctx[0] is the default */
	size_t num_ctx;
};

/* What a context's callbacks read, attached to it as ex_data and freed
 * with it (ctx_data_free), so the callbacks of a context kept alive by an
 * old connection never read freed memory. */
struct ctx_data {
	struct tern_tls_identities *ids; /* a reference */
	size_t group;
	/* Default context only, with several groups: a reference to the
	 * context of every other group, NULL for its own. Only the default
	 * context points at others, so references never form a cycle. */
	SSL_CTX **switch_to;
	size_t num_switch;
};

/* ---- small helpers ---- */

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

static int open_error(char *err, size_t err_len, const char *path)
{
	snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno ? errno : EIO));
	ERR_clear_error();
	return -EIO;
}

/* ASCII only: host names are compared byte-wise, whatever the locale. */
static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ---- name matching ---- */

/* host without one trailing dot, lowercased into buf; false when it is
 * empty or too long to be a DNS name. */
static bool normalise_host(const char *host, size_t len, char buf[NAME_MAX_LEN + 1])
{
	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (host[i] == '\0')
			return false;
		buf[i] = ascii_lower(host[i]);
	}
	buf[len] = '\0';
	return true;
}

/* The part of a normalised host a wildcard must equal: everything after
 * its first label, or NULL when the host has a single label or an empty
 * first label. */
static const char *after_first_label(const char *host)
{
	const char *dot = strchr(host, '.');
	if (!dot || dot == host || dot[1] == '\0')
		return NULL;
	return dot + 1;
}

/* A wildcard pattern's suffix ("*.example.com" -> "example.com"), or NULL
 * when the pattern is not a usable wildcard. */
static const char *wildcard_suffix(const char *pattern)
{
	if (pattern[0] != '*' || pattern[1] != '.' || pattern[2] == '\0' || pattern[2] == '.' ||
	    strchr(pattern + 2, '*'))
		return NULL;
	return pattern + 2;
}

static bool equal_ignoring_case(const char *a, const char *b)
{
	while (*a && ascii_lower(*a) == ascii_lower(*b)) {
		a++;
		b++;
	}
	return ascii_lower(*a) == ascii_lower(*b);
}

bool tern_tls_name_match(const char *pattern, const char *host)
{
	char h[NAME_MAX_LEN + 1];

	if (!normalise_host(host, strlen(host), h))
		return false;
	if (pattern[0] != '*')
		return !strchr(pattern, '*') && equal_ignoring_case(pattern, h);
	const char *suffix = wildcard_suffix(pattern);
	const char *rest = after_first_label(h);
	return suffix && rest && equal_ignoring_case(suffix, rest);
}

static int entry_cmp(const void *a, const void *b)
{
	const struct name_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c != 0)
		return c;
	return x->cert < y->cert ? -1 : x->cert > y->cert;
}

static int entry_key_cmp(const void *key, const void *entry)
{
	return strcmp(key, ((const struct name_entry *)entry)->name);
}

static const struct name_entry *find_entry(const struct name_entry *v, size_t n, const char *name)
{
	return n ? bsearch(name, v, n, sizeof(*v), entry_key_cmp) : NULL;
}

/* The group serving SNI host (len bytes, not NUL-terminated), by the rules
 * of tern_tls_name_match: exact first, then a wildcard; 0 (the default)
 * when nothing matches. */
static size_t lookup_group(const struct tern_tls_identities *ids, const char *host, size_t len)
{
	char h[NAME_MAX_LEN + 1];

	if (!normalise_host(host, len, h))
		return 0;
	const struct name_entry *e = find_entry(ids->exact, ids->num_exact, h);
	if (e)
		return e->group;
	const char *rest = after_first_label(h);
	e = rest ? find_entry(ids->wild, ids->num_wild, rest) : NULL;
	return e ? e->group : 0;
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
	/* The loop ends on "no start line" at the end of the file. */
	unsigned long e = ERR_peek_last_error();
	if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
		return -EBADMSG;
	return 0; /* the caller clears the error queue */
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

/* Adds one name from the certificate, lowercased, unless it is empty, too
 * long, holds a NUL (a forged-name trick) or is there already. */
static int add_name(struct identity *id, const unsigned char *data, int len)
{
	char buf[NAME_MAX_LEN + 1];

	if (len <= 0 || len > NAME_MAX_LEN || memchr(data, '\0', (size_t)len))
		return 0;
	for (int i = 0; i < len; i++)
		buf[i] = ascii_lower((char)data[i]);
	buf[len] = '\0';
	for (size_t i = 0; i < id->num_names; i++)
		if (strcmp(id->names[i], buf) == 0)
			return 0;
	char **names = realloc(id->names, (id->num_names + 1) * sizeof(*names));
	if (!names)
		return -ENOMEM;
	id->names = names;
	names[id->num_names] = strdup(buf);
	if (!names[id->num_names])
		return -ENOMEM;
	id->num_names++;
	return 0;
}

/* The subjectAltName DNS names; the subject CNs only when there are none
 * (RFC 6125 section 6.4.4, as browsers do). */
static int read_names(struct identity *id)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(id->cert, NID_subject_alt_name, NULL, NULL);
	int ret = 0;

	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && ret == 0; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type == GEN_DNS)
			ret = add_name(id, ASN1_STRING_get0_data(gn->d.dNSName),
				       ASN1_STRING_length(gn->d.dNSName));
	}
	GENERAL_NAMES_free(sans);
	if (ret < 0 || id->num_names > 0)
		goto out;
	const X509_NAME *subject = X509_get_subject_name(id->cert);
	for (int i = -1; ret == 0;) {
		i = X509_NAME_get_index_by_NID(subject, NID_commonName, i);
		if (i < 0)
			break;
		unsigned char *utf8 = NULL;
		int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
		if (len >= 0)
			ret = add_name(id, utf8, len);
		OPENSSL_free(utf8);
	}
out:
	ERR_clear_error();
	return ret;
}

static int str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names sorted and joined: two certificates with equal keys go into
 * one SSL_CTX. */
static int make_name_set(struct identity *id)
{
	size_t len = 1;
	char **sorted = malloc((id->num_names + 1) * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	for (size_t i = 0; i < id->num_names; i++) {
		sorted[i] = id->names[i];
		len += strlen(id->names[i]) + 1;
	}
	qsort(sorted, id->num_names, sizeof(*sorted), str_ptr_cmp);
	id->name_set = malloc(len);
	if (!id->name_set) {
		free(sorted);
		return -ENOMEM;
	}
	char *p = id->name_set;
	for (size_t i = 0; i < id->num_names; i++) {
		size_t n = strlen(sorted[i]);
		memcpy(p, sorted[i], n);
		p[n] = '\n';
		p += n + 1;
	}
	*p = '\0';
	free(sorted);
	return 0;
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
		ssl_reason(reason, sizeof(reason), "out of memory");
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

/* Puts each certificate in a group: the first earlier one with the same
 * name set, or a new one. Two certificates of one group must differ in key
 * type, since an SSL_CTX holds one per type and a second would silently
 * replace the first. */
static int assign_groups(struct tern_tls_identities *ids, char *err, size_t err_len)
{
	for (size_t i = 0; i < ids->num_certs; i++) {
		struct identity *id = &ids->certs[i];
		size_t j = 0;
		while (j < i && strcmp(ids->certs[j].name_set, id->name_set) != 0)
			j++;
		if (j == i) {
			id->group = ids->num_groups++;
			continue;
		}
		id->group = ids->certs[j].group;
		for (size_t k = j; k < i; k++) {
			const struct identity *other = &ids->certs[k];
			if (other->group == id->group &&
			    EVP_PKEY_get_base_id(other->key) == EVP_PKEY_get_base_id(id->key)) {
				snprintf(err, err_len,
					 "%s: same names and key type (%s) as %s; give one certificate "
					 "per key type for a set of names",
					 id->source, EVP_PKEY_get0_type_name(id->key), other->source);
				return -EIO;
			}
		}
	}
	return 0;
}

/* The SNI tables: every usable name of every certificate, sorted, the
 * first --cert winning a name several groups share. */
static int build_tables(struct tern_tls_identities *ids, char *err, size_t err_len)
{
	size_t total = 0;
	for (size_t i = 0; i < ids->num_certs; i++)
		total += ids->certs[i].num_names;
	ids->exact = calloc(total + 1, sizeof(*ids->exact));
	ids->wild = calloc(total + 1, sizeof(*ids->wild));
	if (!ids->exact || !ids->wild)
		return -ENOMEM;
	for (size_t i = 0; i < ids->num_certs; i++) {
		const struct identity *id = &ids->certs[i];
		size_t usable = 0;
		for (size_t k = 0; k < id->num_names; k++) {
			const char *name = id->names[k];
			const char *suffix = wildcard_suffix(name);
			struct name_entry e = {.name = suffix ? suffix : name, .group = id->group, .cert = i};
			if (suffix)
				ids->wild[ids->num_wild++] = e;
			else if (!strchr(name, '*'))
				ids->exact[ids->num_exact++] = e;
			else
				continue; /* "f*.example.com", "*": matched by nothing */
			usable++;
		}
		/* The default serves whatever matches nothing; any other
		 * certificate must be reachable by some name. */
		if (i > 0 && usable == 0) {
			snprintf(err, err_len,
				 "%s: no DNS name (subjectAltName, or CN without one) to choose it "
				 "by SNI; only the first --cert may have none",
				 id->source);
			return -EIO;
		}
	}
	struct {
		struct name_entry *v;
		size_t *n;
		const char *prefix;
	} tables[] = {{ids->exact, &ids->num_exact, ""}, {ids->wild, &ids->num_wild, "*."}};
	for (size_t t = 0; t < 2; t++) {
		struct name_entry *v = tables[t].v;
		size_t n = *tables[t].n, kept = 0;
		qsort(v, n, sizeof(*v), entry_cmp);
		for (size_t k = 0; k < n; k++) {
			if (kept > 0 && strcmp(v[kept - 1].name, v[k].name) == 0) {
				if (v[kept - 1].group != v[k].group)
					tern_log(TERN_LOG_WARN, "%s: name %s%s is served by %s, the "
						 "earlier --cert with it",
						 ids->certs[v[k].cert].source, tables[t].prefix, v[k].name,
						 ids->certs[v[kept - 1].cert].source);
				continue;
			}
			v[kept++] = v[k];
		}
		*tables[t].n = kept;
	}
	return 0;
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
			ret = read_names(id);
		if (ret == 0)
			ret = make_name_set(id);
		if (ret < 0)
			goto fail;
	}
	if (cfg->client_ca_path) {
		ret = load_client_cas(ids, cfg->client_ca_path, err, err_len);
		if (ret < 0)
			goto fail;
	}
	ret = assign_groups(ids, err, err_len);
	if (ret == 0)
		ret = build_tables(ids, err, err_len);
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
	char subject[256] = "?";
	char expires[64] = "?";
	char names[512] = "-";
	size_t used = 0;

	for (size_t k = 0; k < id->num_names && used < sizeof(names); k++) {
		int m = snprintf(names + used, sizeof(names) - used, "%s%s", k ? "," : "",
				 id->names[k]);
		if (m < 0)
			break;
		used += (size_t)m;
	}
	if (used >= sizeof(names))
		memcpy(names + sizeof(names) - 4, "...", 4);
	X509_NAME_oneline(X509_get_subject_name(id->cert), subject, sizeof(subject));
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

/* ---- the contexts ---- */

static void ctx_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			  void *argp)
{
	struct ctx_data *d = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (!d) /* a context tern_tls_shard_new() did not make */
		return;
	for (size_t i = 0; i < d->num_switch; i++)
		SSL_CTX_free(d->switch_to[i]);
	free(d->switch_to);
	tern_tls_identities_unref(d->ids);
	free(d);
}

static pthread_once_t ex_index_once = PTHREAD_ONCE_INIT;
static int ex_index = -1;

static void ex_index_init(void)
{
	ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_data_free);
}

/* SSL_CTX_set_client_hello_cb(3), on the default context only: moves the
 * connection to the context of the group its SNI names before OpenSSL
 * chooses anything, so version, cipher, certificate and signature
 * algorithm are all chosen from the right context. The other contexts
 * have no such callback: after a HelloRetryRequest the second ClientHello
 * carries the same SNI (RFC 8446 section 4.1.2), and the connection stays
 * where the first one put it. */
static int client_hello_cb(SSL *ssl, int *alert, void *arg)
{
	const struct ctx_data *d = arg;
	const unsigned char *p;
	size_t len;

	/* RFC 6066 section 3: a list of (type, length, name); the first
	 * host_name counts. A malformed extension selects the default here
	 * and is refused by OpenSSL's own parsing right after. */
	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) != 1 || len < 2)
		return SSL_CLIENT_HELLO_SUCCESS;
	size_t list_len = ((size_t)p[0] << 8) | p[1];
	if (list_len + 2 != len)
		return SSL_CLIENT_HELLO_SUCCESS;
	for (size_t off = 2; off + 3 <= len;) {
		size_t name_len = ((size_t)p[off + 1] << 8) | p[off + 2];
		if (off + 3 + name_len > len)
			break;
		if (p[off] == TLSEXT_NAMETYPE_host_name) {
			size_t group = lookup_group(d->ids, (const char *)p + off + 3, name_len);
			if (group == d->group)
				break;
			if (!SSL_set_SSL_CTX(ssl, d->switch_to[group])) {
				*alert = SSL_AD_INTERNAL_ERROR;
				return SSL_CLIENT_HELLO_ERROR;
			}
			break;
		}
		off += 3 + name_len;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* SSL_CTX_set_tlsext_servername_callback(3), on every context: the
 * context was chosen already (client_hello_cb); this only accepts the
 * name. Without an OK here OpenSSL 3.0 neither acknowledges SNI nor keeps
 * the name in a TLS 1.2 session, so a connection resuming one would have
 * no SNI (SSL_get_servername() returns the session's name then) in the
 * logs, in `conns` or in a PROXY header. */
static int servername_cb(SSL *ssl, int *alert, void *arg)
{
	(void)ssl;
	(void)alert;
	(void)arg;
	return SSL_TLSEXT_ERR_OK;
}

/* SSL_CTX_set_tlsext_status_cb(3), server side: called only when the
 * client asked for a status, after the certificate was chosen, so
 * SSL_get_certificate() is the one being sent (RSA or ECDSA). Each
 * connection gets its own copy of the response: OpenSSL frees it with the
 * connection. No response for that certificate, or no memory: no staple,
 * the handshake goes on. */
static int ocsp_status_cb(SSL *ssl, void *arg)
{
	const struct ctx_data *d = arg;
	const X509 *cert = SSL_get_certificate(ssl);

	for (size_t i = 0; i < d->ids->num_certs; i++) {
		const struct identity *id = &d->ids->certs[i];
		if (id->cert != cert || !id->ocsp)
			continue;
		unsigned char *copy = OPENSSL_memdup(id->ocsp, id->ocsp_len);
		if (!copy)
			break;
		if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)id->ocsp_len) != 1) {
			OPENSSL_free(copy);
			break;
		}
		return SSL_TLSEXT_ERR_OK;
	}
	ERR_clear_error();
	return SSL_TLSEXT_ERR_NOACK;
}

/* SSL_CTX_set_alpn_select_cb(3): the first protocol of --alpn that the
 * client offers, so the server's preference wins. No common protocol is
 * not an error: the handshake goes on without ALPN (NOACK), as nginx and
 * HAProxy do, and the backend sees whatever the client speaks. *out
 * points into the client's list, which lives through the handshake. */
static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *out_len,
			  const unsigned char *in, unsigned int in_len, void *arg)
{
	const struct tern_tls_identities *ids = arg;

	(void)ssl;
	for (size_t i = 0; i < ids->alpn_len; i += 1u + ids->alpn[i]) {
		const unsigned char *want = &ids->alpn[i];
		for (unsigned j = 0; j < in_len;) {
			unsigned n = in[j];
			if (n == 0 || j + 1 + n > in_len)
				break; /* malformed: OpenSSL has already refused it */
			if (n == want[0] && memcmp(in + j + 1, want + 1, n) == 0) {
				*out = in + j + 1;
				*out_len = (unsigned char)n;
				return SSL_TLSEXT_ERR_OK;
			}
			j += 1 + n;
		}
	}
	return SSL_TLSEXT_ERR_NOACK;
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

/* The settings every context of a shard shares. OpenSSL copies some of
 * them into an SSL at SSL_new() (options, versions, verify mode,
 * num_tickets) and reads others from the current context after
 * SSL_set_SSL_CTX() (ciphers, certificates, callbacks), so they must be
 * the same everywhere for a switched connection to behave as configured. */
static int ctx_common(SSL_CTX *ctx, const struct tern_config *cfg,
		      struct tern_ticket_keys *const *ticket_keys, char *err, size_t err_len)
{
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

	if (SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1)
		return flag_error(err, err_len, "--ciphers", cfg->ciphers,
				  "an OpenSSL cipher list, see openssl-ciphers(1)");
	if (SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1)
		return flag_error(err, err_len, "--ciphersuites", cfg->ciphersuites,
				  "a colon list of TLS 1.3 suites such as TLS_AES_128_GCM_SHA256");
	if (SSL_CTX_set1_groups_list(ctx, cfg->groups) != 1)
		return flag_error(err, err_len, "--groups", cfg->groups,
				  "a colon list of groups such as X25519:P-256");
	SSL_CTX_set_num_tickets(ctx, cfg->num_tickets);
	SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
	if (SSL_CTX_set_session_id_context(ctx, session_id_context, sizeof(session_id_context) - 1) != 1) {
		snprintf(err, err_len, "cannot set the session id context");
		ERR_clear_error();
		return -ENOMEM;
	}
	/* The server's TLS 1.2 session-ID cache. It is per worker (OpenSSL
	 * keeps it in the context a connection started on, the default one),
	 * so a client resumes by ID only on the worker that made the session;
	 * tickets, shared by every worker, resume anywhere. "Off" keeps
	 * SSL_SESS_CACHE_SERVER but stores and looks up nothing
	 * (NO_INTERNAL): SSL_SESS_CACHE_OFF would also silence the
	 * new-session callback that counts the tickets sent. Clients then get
	 * a session ID that never resumes, which they treat as a miss. */
	if (cfg->session_cache == 0) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
		SSL_CTX_sess_set_cache_size(ctx, cfg->session_cache);
	}
	if (ticket_keys && tern_ticket_keys_install(ctx, ticket_keys) < 0) {
		snprintf(err, err_len, "cannot install the ticket key callback");
		return -ENOMEM;
	}
	return 0;
}

/* --client-ca and --verify-client. Every context gets them, since a
 * connection keeps the verify mode of the context it started on while it
 * reads the trust store and the CA list of the one SNI moved it to. With
 * --client-ca and mode none, nothing is asked during the handshake, but
 * the store and the CA list are there for a later TLS 1.3
 * post-handshake request (SSL_verify_client_post_handshake, after
 * SSL_set_verify(SSL_VERIFY_PEER) on that connection). */
static int ctx_client_auth(SSL_CTX *ctx, const struct tern_config *cfg,
			   const struct tern_tls_identities *ids, char *err, size_t err_len)
{
	static const int modes[] = {
		[TERN_VERIFY_CLIENT_NONE] = SSL_VERIFY_NONE,
		[TERN_VERIFY_CLIENT_OPTIONAL] = SSL_VERIFY_PEER,
		[TERN_VERIFY_CLIENT_REQUIRE] = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
	};

	if (!ids->client_cas)
		return 0;
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	for (int i = 0; i < sk_X509_num(ids->client_cas); i++) {
		X509 *ca = sk_X509_value(ids->client_cas, i);
		/* The CertificateRequest names the CAs (RFC 8446 section
		 * 4.2.4), so a client with several certificates sends the right
		 * one. */
		if (X509_STORE_add_cert(store, ca) != 1 || SSL_CTX_add_client_CA(ctx, ca) != 1) {
			char reason[128];
			ssl_reason(reason, sizeof(reason), "rejected");
			snprintf(err, err_len, "%s: CA certificate unusable (%s)", ids->client_ca_source,
				 reason);
			return -EIO;
		}
	}
	SSL_CTX_set_verify(ctx, modes[cfg->verify_client], NULL);
	return 0;
}

/* One context: the common settings and the certificates of one group. */
static int ctx_new(const struct tern_config *cfg, struct tern_tls_identities *ids, size_t group,
		   struct tern_ticket_keys *const *ticket_keys, SSL_CTX **out, char *err,
		   size_t err_len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	struct ctx_data *d = calloc(1, sizeof(*d));
	bool ocsp = false;
	int ret;

	pthread_once(&ex_index_once, ex_index_init);
	if (!ctx || !d || ex_index < 0) {
		free(d);
		SSL_CTX_free(ctx);
		snprintf(err, err_len, "cannot create a TLS context");
		ERR_clear_error();
		return -ENOMEM;
	}
	d->ids = tern_tls_identities_ref(ids);
	d->group = group;
	if (SSL_CTX_set_ex_data(ctx, ex_index, d) != 1) {
		tern_tls_identities_unref(d->ids);
		free(d);
		ret = -ENOMEM;
		snprintf(err, err_len, "cannot create a TLS context");
		goto fail;
	}
	/* From here ctx owns d: SSL_CTX_free() frees it. */
	ret = ctx_common(ctx, cfg, ticket_keys, err, err_len);
	if (ret < 0)
		goto fail;
	for (size_t i = 0; i < ids->num_certs; i++) {
		const struct identity *id = &ids->certs[i];
		if (id->group != group)
			continue;
		if (SSL_CTX_use_cert_and_key(ctx, id->cert, id->key, id->chain, 1) != 1) {
			char reason[128];
			ssl_reason(reason, sizeof(reason), "rejected");
			snprintf(err, err_len, "%s: certificate unusable (%s)", id->source, reason);
			ret = -EIO;
			goto fail;
		}
		ocsp = ocsp || id->ocsp;
	}
	ret = ctx_client_auth(ctx, cfg, ids, err, err_len);
	if (ret < 0)
		goto fail;
	if (ids->alpn_len)
		SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, ids);
	if (ocsp) {
		SSL_CTX_set_tlsext_status_cb(ctx, ocsp_status_cb);
		SSL_CTX_set_tlsext_status_arg(ctx, d);
	}
	*out = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return ret;
}

int tern_tls_shard_new(const struct tern_config *cfg, struct tern_tls_identities *ids,
		       struct tern_ticket_keys *const *ticket_keys, struct tern_tls_shard **out,
		       char *err, size_t err_len)
{
	struct tern_tls_shard *shard = calloc(1, sizeof(*shard));
	int ret = -ENOMEM;

	if (!shard || !(shard->ctx = calloc(ids->num_groups, sizeof(*shard->ctx)))) {
		snprintf(err, err_len, "out of memory");
		goto fail;
	}
	for (size_t g = 0; g < ids->num_groups; g++) {
		ret = ctx_new(cfg, ids, g, ticket_keys, &shard->ctx[g], err, err_len);
		if (ret < 0)
			goto fail;
		shard->num_ctx = g + 1;
	}
	if (ids->num_groups > 1) {
		struct ctx_data *d = SSL_CTX_get_ex_data(shard->ctx[0], ex_index);
		d->switch_to = calloc(ids->num_groups, sizeof(*d->switch_to));
		if (!d->switch_to) {
			ret = -ENOMEM;
			snprintf(err, err_len, "out of memory");
			goto fail;
		}
		d->num_switch = ids->num_groups;
		for (size_t g = 1; g < ids->num_groups; g++) {
			SSL_CTX_up_ref(shard->ctx[g]);
			d->switch_to[g] = shard->ctx[g];
		}
		SSL_CTX_set_client_hello_cb(shard->ctx[0], client_hello_cb, d);
	}
	*out = shard;
	return 0;
fail:
	tern_tls_shard_free(shard);
	return ret;
}

struct ssl_ctx_st *tern_tls_shard_default_ctx(const struct tern_tls_shard *shard)
{
	return shard->ctx[0];
}

void tern_tls_shard_free(struct tern_tls_shard *shard)
{
	if (!shard)
		return;
	for (size_t g = 0; g < shard->num_ctx; g++)
		SSL_CTX_free(shard->ctx[g]);
	free(shard->ctx);
	free(shard);
}
