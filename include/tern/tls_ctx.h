/* Server TLS contexts: the identity (certificate, chain, key) loaded once,
 * and one SSL_CTX shard per worker built from it.
 *
 * The identity is immutable after loading and shared by every shard
 * (OpenSSL reference-counts the X509 and EVP_PKEY objects). A shard belongs
 * to one worker; no SSL_CTX is shared between workers. Main thread only. */
#ifndef TERN_TLS_CTX_H
#define TERN_TLS_CTX_H

#include <stddef.h>

#include "tern/config.h"

struct ssl_ctx_st;
struct tern_tls_identity;

/* Loads cfg->cert_path (+ cfg->key_path), or makes an in-memory self-signed
 * certificate for localhost when cert_path is NULL. Returns 0, or -EIO with
 * "PATH: reason" in err for a file that cannot be read or parsed. */
__attribute__((warn_unused_result))
int tern_tls_identity_load(const struct tern_config *cfg, struct tern_tls_identity **out,
			   char *err, size_t err_len);

void tern_tls_identity_free(struct tern_tls_identity *id);

/* One line describing the identity for --check and the start-up log:
 * subject, names, key type and expiry. */
void tern_tls_identity_describe(const struct tern_tls_identity *id, char *out, size_t out_len);

/* Builds one server SSL_CTX shard. Returns 0, or -EINVAL with a message in
 * the command-line error format ("--ciphers: invalid value ...") when
 * OpenSSL rejects a flag's value, or -ENOMEM. The caller owns *out
 * (SSL_CTX_free). */
__attribute__((warn_unused_result))
int tern_tls_ctx_new(const struct tern_config *cfg, const struct tern_tls_identity *id,
		     struct ssl_ctx_st **out, char *err, size_t err_len);

void tern_tls_ctx_free(struct ssl_ctx_st *ctx);

#endif
