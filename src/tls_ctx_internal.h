/* Between the three files of the server TLS contexts (tern/tls_ctx.h):
 * tls_ctx_identities.c loads the certificates into the immutable identity
 * set, tls_ctx_names.c reads their names and answers which group an SNI
 * name goes to, tls_ctx.c builds a worker's SSL_CTX shard from the set.
 * What each needs of the others, private to those files. */
#ifndef TERN_TLS_CTX_INTERNAL_H
#define TERN_TLS_CTX_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tern/config.h"

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
	/* --crl: every CRL of the file, in file order, loaded once and added
	 * to every context's store (OpenSSL reference-counts them and locks
	 * the one lazy sort of their entries); NULL without the flag. */
	STACK_OF(X509_CRL) *crls;
	char *crl_source;
};

/* tls_ctx_identities.c */

/* The reason OpenSSL gave for the newest error, or fallback. Empties the
 * error queue. */
void tls_ctx_ssl_reason(char *out, size_t out_len, const char *fallback);

/* tls_ctx_names.c */

/* Fills id->names from its certificate and id->name_set from them.
 * Returns 0 or -ENOMEM. */
int tls_ctx_read_names(struct identity *id);

/* Once every certificate is loaded and named: puts each in a group and
 * builds the SNI tables. Returns 0, -EIO with "PATH: reason" in err for a
 * certificate that clashes with an earlier one or has no name to be
 * chosen by, or -ENOMEM. */
int tls_ctx_index_names(struct tern_tls_identities *ids, char *err, size_t err_len);

/* The group serving SNI host (len bytes, not NUL-terminated), by the rules
 * of tern_tls_name_match: exact first, then a wildcard. true with
 * *out_group set, or false when no certificate has that name (the default
 * serves it, or --strict-sni refuses it). */
bool tls_ctx_find_group(const struct tern_tls_identities *ids, const char *host, size_t len,
			size_t *out_group);

#endif
