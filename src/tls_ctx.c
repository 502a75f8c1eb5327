/* Building each worker's shard of SSL_CTX objects from the identities
 * (tls_ctx_identities.c): one per certificate name set, switched by SNI,
 * with the callbacks that choose the context, the ALPN protocol and the
 * OCSP staple. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tern/escape.h"
#include "tern/log.h"
#include "tern/ticket_keys.h"
#include "tern/tls.h"
#include "tern/tls_ctx.h"
#include "tls_ctx_internal.h"

/* OpenSSL's configuration says whether it was built without kTLS. */
#ifdef OPENSSL_NO_KTLS
#define TLS_LIBRARY_KTLS false
#else
#define TLS_LIBRARY_KTLS true
#endif

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
	bool strict_sni; /* --strict-sni: client_hello_cb refuses unknown and absent SNI */
};

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

/* --strict-sni: ends the handshake with alert (RFC 8446 section 6), the
 * connection's access-log reason saying why. */
static int refuse_hello(SSL *ssl, int *alert, int code, const char *reason, const unsigned char *name,
			size_t name_len)
{
	if (tern_log_enabled(TERN_LOG_DEBUG)) {
		char shown[TERN_ESCAPE_OUT_MAX];
		tern_escape(shown, sizeof(shown), name, name_len, TERN_ESCAPE_SPACE);
		tern_log(TERN_LOG_DEBUG, "--strict-sni: handshake refused (%s, sni=%s)", reason,
			 name_len ? shown : "-");
	}
	tern_tls_refuse(ssl, reason);
	*alert = code;
	return SSL_CLIENT_HELLO_ERROR;
}

/* SSL_CTX_set_client_hello_cb(3), on the default context only: moves the
 * connection to the context of the group its SNI names before OpenSSL
 * chooses anything, so version, cipher, certificate and signature
 * algorithm are all chosen from the right context. The other contexts
 * have no such callback: after a HelloRetryRequest the second ClientHello
 * carries the same SNI (RFC 8446 section 4.1.2), and the connection stays
 * where the first one put it.
 *
 * With --strict-sni it also refuses, before any certificate is shown: a
 * name no certificate has gets unrecognized_name (RFC 6066 section 3),
 * and a ClientHello without the extension handshake_failure. RFC 8446
 * section 9.2 names missing_extension for a server that requires SNI,
 * but before the version is chosen OpenSSL 3.0 sends that as
 * handshake_failure whatever the client offers (tls1_alert_code), so
 * tern says so itself rather than rely on the translation. */
static int client_hello_cb(SSL *ssl, int *alert, void *arg)
{
	const struct ctx_data *d = arg;
	const unsigned char *p;
	size_t len;

	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) != 1) {
		if (d->strict_sni)
			return refuse_hello(ssl, alert, SSL_AD_HANDSHAKE_FAILURE, "sni_missing", NULL, 0);
		return SSL_CLIENT_HELLO_SUCCESS;
	}
	/* RFC 6066 section 3: a list of (type, length, name); the first
	 * host_name counts. A malformed extension selects the default here
	 * and is refused by OpenSSL's own parsing right after (decode_error,
	 * --strict-sni or not: OpenSSL accepts nothing but one host_name). */
	if (len < 2)
		return SSL_CLIENT_HELLO_SUCCESS;
	size_t list_len = ((size_t)p[0] << 8) | p[1];
	if (list_len + 2 != len)
		return SSL_CLIENT_HELLO_SUCCESS;
	for (size_t off = 2; off + 3 <= len;) {
		size_t name_len = ((size_t)p[off + 1] << 8) | p[off + 2];
		const unsigned char *name = p + off + 3;
		size_t group = 0;
		if (off + 3 + name_len > len)
			break;
		if (p[off] != TLSEXT_NAMETYPE_host_name) {
			off += 3 + name_len;
			continue;
		}
		if (!tls_ctx_find_group(d->ids, (const char *)name, name_len, &group) && d->strict_sni)
			return refuse_hello(ssl, alert, SSL_AD_UNRECOGNIZED_NAME, "sni_unknown", name,
					    name_len);
		if (group != d->group && !SSL_set_SSL_CTX(ssl, d->switch_to[group])) {
			*alert = SSL_AD_INTERNAL_ERROR;
			return SSL_CLIENT_HELLO_ERROR;
		}
		break;
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
	/* --session-lifetime: how long a TLS 1.2 session stays resumable
	 * and, in TLS 1.3, the ticket_lifetime every ticket announces (and
	 * past which OpenSSL refuses it). Set even at the default, which
	 * equals OpenSSL 3.0's (7200 s, which its man page gives as 300 s):
	 * stated, not inherited. Whole seconds: the flag refuses less than
	 * 1s. */
	SSL_CTX_set_timeout(ctx, (long)(cfg->session_lifetime_ms / 1000));
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
			tls_ctx_ssl_reason(reason, sizeof(reason), "rejected");
			snprintf(err, err_len, "%s: CA certificate unusable (%s)", ids->client_ca_source,
				 reason);
			return -EIO;
		}
	}
	/* --crl. CRL_CHECK_ALL as nginx (ssl_crl) and HAProxy (crl-file)
	 * set it: every certificate of the client's chain below the trust
	 * anchor is checked, an intermediate CA too, so each CA that issues
	 * one needs its CRL in the file; a certificate whose issuer has none
	 * there is refused ("unable to get certificate CRL"), as is every one
	 * once a CRL is past its nextUpdate. Fail closed: a revocation list
	 * that cannot answer does not let certificates in. */
	for (int i = 0; ids->crls && i < sk_X509_CRL_num(ids->crls); i++) {
		if (X509_STORE_add_crl(store, sk_X509_CRL_value(ids->crls, i)) != 1) {
			char reason[128];
			tls_ctx_ssl_reason(reason, sizeof(reason), "rejected");
			snprintf(err, err_len, "%s: CRL unusable (%s)", ids->crl_source, reason);
			return -EIO;
		}
	}
	if (ids->crls)
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
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
			tls_ctx_ssl_reason(reason, sizeof(reason), "rejected");
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
	struct ctx_data *d = SSL_CTX_get_ex_data(shard->ctx[0], ex_index);
	d->strict_sni = cfg->strict_sni;
	if (ids->num_groups > 1) {
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
	}
	/* Nothing to switch and nothing to refuse: no callback to run. */
	if (ids->num_groups > 1 || cfg->strict_sni)
		SSL_CTX_set_client_hello_cb(shard->ctx[0], client_hello_cb, d);
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

const char *tern_tls_library_built(void)
{
	return OPENSSL_VERSION_TEXT;
}

const char *tern_tls_library_running(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}

bool tern_tls_library_ktls(void)
{
	return TLS_LIBRARY_KTLS;
}
