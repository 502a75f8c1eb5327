/* Server TLS contexts: the identities loaded once, and one shard of
 * SSL_CTX objects per worker built from them.
 *
 * Identities: every --cert with its chain, key and --ocsp response, the
 * --client-ca bundle, the --crl file's CRLs and the --alpn list, loaded
 * once on the main thread into one immutable, reference-counted object
 * that every worker's shard reads (OpenSSL reference-counts the X509,
 * X509_CRL and EVP_PKEY objects inside it; nothing in it changes after
 * loading). A reload loads new identities and builds new shards from
 * them.
 *
 * Shard: one worker's contexts. The certificates are grouped by their name
 * set (the subjectAltName DNS names, or the CN when there are none): one
 * SSL_CTX per group, so an RSA and an ECDSA certificate for the same names
 * sit in the same SSL_CTX and OpenSSL picks by the client's signature
 * algorithms. The group of the first --cert is the default context, the one
 * SSL_new() uses; a client-hello callback on it moves the connection to the
 * group its SNI names (SSL_set_SSL_CTX) before any version, cipher or
 * certificate is chosen. Matching: an exact name (case-insensitive) before a
 * wildcard; "*.example.com" covers exactly one label; a name in several
 * groups goes to the first --cert that has it; unknown or absent SNI gets
 * the default, or with --strict-sni the same callback refuses the
 * handshake (alert unrecognized_name, or handshake_failure without SNI).
 *
 * Every context of a shard has the same versions, options, ciphers,
 * ticket callback and counts, session id context and cache size, ALPN
 * callback, and client verification (trust store with the --crl CRLs and
 * their check flags, CA list, verify mode):
 * OpenSSL copies some of these into an SSL at SSL_new() and reads others
 * from whichever context the SSL is on, so they must agree. With
 * --client-ca every context can also serve a later TLS 1.3
 * post-handshake certificate request (see ctx_client_auth in tls_ctx.c).
 *
 * Lifetimes: an SSL holds a reference to its current SSL_CTX, and every
 * SSL_CTX holds what its callbacks read (a reference to the identities; the
 * default context also holds references to the contexts it switches to).
 * So a shard can be freed, or replaced by a new one on reload, while its
 * connections live on: tern_tls_shard_free() only drops the shard's own
 * references (SSL_CTX_free), and each context goes with its last
 * connection. */
#ifndef TERN_TLS_CTX_H
#define TERN_TLS_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/config.h"

struct ssl_ctx_st;
struct tern_ticket_keys;
struct tern_tls_identities;
struct tern_tls_shard;

/* Loads every cfg->certs[] entry (certificate, chain, key, OCSP response),
 * or makes an in-memory self-signed certificate for localhost when there is
 * none, groups them by name set, loads cfg->client_ca_path and the CRLs
 * of cfg->crl_path, and keeps cfg->alpn_wire. Returns 0 with *out holding
 * one reference, or -EIO with "PATH: reason" in err for a file that cannot
 * be read or parsed (or a certificate that clashes with an earlier one),
 * or -ENOMEM. Main thread. */
__attribute__((warn_unused_result))
int tern_tls_identities_load(const struct tern_config *cfg, struct tern_tls_identities **out,
			     char *err, size_t err_len);

/* Reference counting; any thread. unref(NULL) does nothing; the last
 * unref frees. ref returns its argument. */
struct tern_tls_identities *tern_tls_identities_ref(struct tern_tls_identities *ids);
void tern_tls_identities_unref(struct tern_tls_identities *ids);

/* How many certificates were loaded (1 for the self-signed one). */
size_t tern_tls_identities_count(const struct tern_tls_identities *ids);

/* One line describing certificate i (< count) for --check and the log:
 * path, names, subject, key type and size, chain length, OCSP file,
 * expiry, and "default" for the first. Names and subject are escaped and
 * bounded (escape.h, spaces too), so a certificate's bytes never reach
 * the log raw. TERN_CERT_LINE_MAX holds both at their longest
 * (TERN_ESCAPE_OUT_MAX each) and paths of any usual length; a longer line
 * is cut. */
#define TERN_CERT_LINE_MAX 4096
void tern_tls_identities_describe(const struct tern_tls_identities *ids, size_t i, char *out,
				  size_t out_len);

/* What `certs` shows of one certificate (SPEC section 3). Text is the
 * certificate's and the operator's own, neither escaped nor checked
 * beyond what loading did (names are at most 253 bytes, without NUL):
 * whoever writes it out escapes it. Pointers borrow from the identities
 * and live as long as the caller's reference. */
#define TERN_CERT_TIME_NONE INT64_MIN
struct tern_cert_info {
	const char *source;       /* the --cert path, or "self-signed" */
	const char *const *names; /* DNS names (subjectAltName, else CN), lowercase */
	size_t num_names;
	const char *key_type;     /* OpenSSL's name: "EC", "RSA", "ED25519"... */
	int key_bits;
	int64_t not_before, not_after; /* seconds since the epoch; TERN_CERT_TIME_NONE if unreadable */
	bool is_default;          /* the first --cert: unknown or absent SNI gets it */
	const char *ocsp_source;  /* the --ocsp path, or NULL: nothing stapled */
	/* From the stapled response's first SingleResponse: "good",
	 * "revoked" or "unknown", NULL when not stapled or unreadable;
	 * thisUpdate and nextUpdate, TERN_CERT_TIME_NONE when absent. */
	const char *ocsp_status;
	int64_t ocsp_this_update, ocsp_next_update;
};

/* Fills *out for certificate i (< count). Any thread holding a reference
 * (the identities are immutable). */
void tern_tls_identities_cert_info(const struct tern_tls_identities *ids, size_t i,
				   struct tern_cert_info *out);

/* Builds one worker's shard: one SSL_CTX per name set, all with the same
 * versions, options, ciphers, groups, ticket settings and session id
 * context, and each with the ticket key callback reading *ticket_keys
 * (tern_ticket_keys_install; ticket_keys must outlive every context, as
 * the worker does; NULL leaves each context OpenSSL's own ticket keys, for
 * tests). Returns 0, -EINVAL with a message in the command-line
 * error format ("--ciphers: invalid value ...") when OpenSSL rejects a
 * flag's value, -EIO for a certificate OpenSSL refuses, or -ENOMEM. The
 * caller owns *out. The thread building it; afterwards the shard and its
 * contexts are used by one worker thread only. */
__attribute__((warn_unused_result))
int tern_tls_shard_new(const struct tern_config *cfg, struct tern_tls_identities *ids,
		       struct tern_ticket_keys *const *ticket_keys, struct tern_tls_shard **out,
		       char *err, size_t err_len);

/* The context new connections start on (SSL_new); borrowed, valid while
 * the shard is, and afterwards for as long as an SSL made from it lives. */
struct ssl_ctx_st *tern_tls_shard_default_ctx(const struct tern_tls_shard *shard);

/* Drops the shard's references to its contexts; connections made from it
 * keep theirs (see above). NULL does nothing. */
void tern_tls_shard_free(struct tern_tls_shard *shard);

/* The OpenSSL tern runs on, for tern -vv: the version it was built
 * against (OPENSSL_VERSION_TEXT), the one loaded at run time
 * (OpenSSL_version), and whether that build has kTLS support (no
 * OPENSSL_NO_KTLS; tern itself does not turn kTLS on). Static storage;
 * any thread. */
const char *tern_tls_library_built(void);
const char *tern_tls_library_running(void);
bool tern_tls_library_ktls(void);

/* Whether a certificate name covers host, as the SNI lookup decides:
 * ASCII case-insensitive; a trailing dot on host is ignored; a pattern
 * "*.rest" covers one non-empty label followed by ".rest" (not rest itself,
 * not two labels); any other '*' in a pattern matches nothing. Pure. */
bool tern_tls_name_match(const char *pattern, const char *host);

#endif
