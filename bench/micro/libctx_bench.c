/* Whether tern's workers contend in OpenSSL 3.0's library context
 * (issue 14, section 3). Every algorithm fetch and property lookup of
 * OpenSSL 3.0 goes through its OSSL_LIB_CTX's stores under read-write
 * locks (the method store, its property cache, the name map, the
 * context's own data table), many times per handshake. tern's workers
 * each have their own SSL_CTX shard, but every shard is built on the one
 * default library context, so two workers' handshakes meet in those
 * locks and on their cache lines. This program runs the same in-memory
 * handshakes on 1 and 2 threads with the default context shared by every
 * thread, and with a context of its own per thread, so the difference
 * between the two on 2 threads is what the sharing costs.
 *
 * Each thread is a worker: its own server SSL_CTX built with tern's
 * settings, its own client SSL_CTX, and a client and a server connection
 * per handshake, driven through tern's own connection code (struct
 * tern_tls, include/tern/tls.h, its BIO over tern_bufs) back to back in
 * memory as tls_bench does: each side's `out` is the other's `in`, no
 * byte is copied, no system call is made. The ticket key callback is
 * tern's (tern_ticket_keys_install), one key set read by every thread, as
 * every worker reads the server's.
 *
 * The server contexts are built here, not by tern_tls_shard_new, because
 * that takes no library context: server_ctx_new below makes the calls
 * tls_ctx.c's ctx_common and ctx_new make for the default configuration,
 * on SSL_CTX_new_ex(libctx, ...), and a check at start compares what it
 * built on the default context with the default context of a shard that
 * tern_tls_shard_new builds (versions, options, modes, ciphers, groups,
 * ticket count, timeout, session cache): a difference fails every
 * benchmark.
 *
 * The two cases:
 *   shared      libctx NULL (the default context) for every thread's
 *               server and client SSL_CTX; the certificate and key are
 *               decoded once in it and used by every thread's server
 *               context, as tern's identities are by every shard. tern
 *               today.
 *   per_thread  each thread makes its own OSSL_LIB_CTX (OSSL_LIB_CTX_new;
 *               the default provider loads into it on first use), decodes
 *               the certificate (X509_new_ex, then PEM_read_bio_X509 into
 *               it) and the key (PEM_read_bio_PrivateKey_ex) in it, and
 *               builds both SSL_CTXs on it (SSL_CTX_new_ex): a worker's
 *               shard that is its own all the way down, except for what
 *               tern's ticket callback takes from the default context
 *               (its AES-256-CBC cipher object, fetched once, and
 *               RAND_bytes for the IV).
 * The key pair and certificate are made once (self-signed for localhost,
 * ECDSA P-256 or RSA-2048) and kept in PEM in memory; every case decodes
 * them from there.
 *
 * libctx_full/<libctx>/<key>
 *	Per iteration: a new server and client connection, a full TLS 1.3
 *	handshake (X25519, the server signing with <key> and writing tern's
 *	two session tickets), close_notify from both, both freed. Checks on
 *	every handshake: both sides done, TLS 1.3, not resumed, two tickets
 *	written; after the loop, as many checked handshakes as iterations.
 * libctx_resumed/<libctx>/<key>
 *	The same, the client offering the session of one earlier full
 *	handshake of its thread: a TLS 1.3 PSK resumption with (EC)DHE, tern's
 *	ticket callback decrypting the ticket and issuing a fresh one. Checks:
 *	both sides resumed, TLS 1.3, one ticket written.
 * libctx_fetch/<what>/<libctx>
 *	The lookup alone, per iteration, fetched and freed: `md`
 *	EVP_MD_fetch("SHA256"), `kdf` EVP_KDF_fetch("TLS13-KDF") (OpenSSL
 *	3.0 fetches it anew for every TLS 1.3 key derivation: a full
 *	handshake here makes about 40 such calls and 60 EVP_MD_fetch, client
 *	and server together), `pkey_ctx` EVP_PKEY_CTX_new_from_name("X25519")
 *	(each key share makes one). Check: every call returns an object.
 *
 * Each is registered on 1 thread (name as above, timed by CPU time as
 * Google Benchmark does by default) and on 2 (".../real_time/threads:2",
 * timed by wall clock, items summed over the threads). Counters, averaged
 * over the threads (each thread reports its share):
 *	cpu_us_per_handshake     the thread's CPU time (CLOCK_THREAD_CPUTIME_ID,
 *	                         client and server) per handshake
 *	server_us_per_handshake  the server's tern_tls_handshake steps alone
 *	vcsw_per_handshake       voluntary context switches (getrusage
 *	                         RUSAGE_THREAD) per handshake: a thread that
 *	                         sleeps in a contended lock's futex shows here
 *	(vcsw_per_op for libctx_fetch). CPU time and switches are read at
 *	the first iteration and after the loop, whose last
 *	tern_bench_keep_running waits for the other thread (asleep: one switch
 *	at most per run); server_us_per_handshake's clock is read around each
 *	server step, two system calls of about a microsecond each.
 *
 * Run: taskset -c 0,1 build/bench/libctx_bench (see README.md here). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tern/config.h"
#include "tern/ticket_keys.h"
#include "tern/tls.h"
#include "tern/tls_ctx.h"
#include "tern_bench.h"

/* A connection's buffer capacity, as conn.c sizes it (see tls_bench.c). */
#define BENCH_BUF_CAP (TERN_DEFAULT_BUFFER_SIZE + 512u)
/* Steps a side may take before a handshake counts as stuck: a TLS 1.3
 * handshake needs two per side. */
#define MAX_STEPS 16
/* tls_ctx.c's session id context, which the settings check cannot read
 * back from OpenSSL: the same bytes. */
static const unsigned char session_id_context[] = "tern";

enum bench_key {
	BENCH_KEY_ECDSA_P256,
	BENCH_KEY_RSA_2048,
	BENCH_NUM_KEYS,
};

enum bench_libctx {
	BENCH_LIBCTX_SHARED,     /* the default context, for every thread */
	BENCH_LIBCTX_PER_THREAD, /* OSSL_LIB_CTX_new per thread */
};

enum bench_fetch {
	BENCH_FETCH_MD,
	BENCH_FETCH_KDF,
	BENCH_FETCH_PKEY_CTX,
};

/* A server identity in PEM, made once per key on first use (RSA key
 * generation takes a good part of a second), and the shared case's
 * objects decoded from it in the default context. Immutable once made:
 * pthread_once publishes it to every thread. */
struct identity {
	char *cert_pem, *key_pem;
	int cert_len, key_len;
	X509 *cert;    /* decoded in the default context, shared */
	EVP_PKEY *key; /* likewise */
	char err[128]; /* empty when the rest is there */
};

static struct identity identities[BENCH_NUM_KEYS];
static pthread_once_t identity_once[BENCH_NUM_KEYS] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};

/* What every case reads, made once (common_init): tern's default
 * configuration, the ticket key set every thread's contexts decrypt and
 * encrypt with, and the verdict of the settings check. */
static pthread_once_t common_once = PTHREAD_ONCE_INIT;
static struct tern_config bench_cfg;
static struct tern_ticket_keys *ticket_keys;
static char common_err[256]; /* empty: ready */

/* One thread's worker: its library context (NULL: the default), identity
 * and contexts, for one run of one benchmark. */
struct worker_fixture {
	OSSL_LIB_CTX *libctx;
	X509 *cert;    /* a reference */
	EVP_PKEY *key; /* a reference */
	/* This worker's pointer-to-current-set, which its server context's
	 * ticket callback reads (tern_ticket_keys_install); a reference. */
	struct tern_ticket_keys *ticket_keys;
	SSL_CTX *sctx, *cctx;
};

/* A client and a server connection back to back (see the top). */
struct pair {
	struct tern_tls client, server;
	struct tern_buf c2s, s2c;
};

/* A thread's CPU time and voluntary context switches, read around a
 * benchmark's loop. */
struct usage {
	int64_t cpu_ns;
	int64_t vcsw;
};

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct usage usage_now(void)
{
	struct rusage ru;
	struct usage u = {.cpu_ns = thread_cpu_ns()};

	if (getrusage(RUSAGE_THREAD, &ru) == 0)
		u.vcsw = ru.ru_nvcsw;
	return u;
}

/* After the loop: a counter per iteration, this thread's share of the
 * threads' average (the shim sums counters over threads). */
static void counter_per_iteration(struct tern_bench_state *st, const char *name, double total)
{
	int64_t n = tern_bench_iterations(st);
	if (n > 0)
		tern_bench_counter(st, name, total / (double)n / tern_bench_threads(st));
}

/* ---- the identity ---- */

static X509 *self_signed(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *name = x ? X509_get_subject_name(x) : NULL;

	if (!x || !name || X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600) || X509_set_pubkey(x, key) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
				       0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || X509_sign(x, key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* A copy of a memory BIO's contents; NULL without memory. */
static char *bio_copy(BIO *bio, int *out_len)
{
	char *data;
	long len = BIO_get_mem_data(bio, &data);
	char *copy = len > 0 ? malloc((size_t)len) : NULL;

	if (copy) {
		memcpy(copy, data, (size_t)len);
		*out_len = (int)len;
	}
	return copy;
}

/* Decodes the identity's certificate and key in libctx (NULL: the
 * default): the X509 made with X509_new_ex keeps libctx for its public
 * key when PEM_read_bio_X509 decodes into it (d2i_X509(3)), and the key is
 * decoded by the providers of libctx. Returns 0 or -EIO. */
static int identity_decode(const struct identity *id, OSSL_LIB_CTX *libctx, X509 **out_cert,
			   EVP_PKEY **out_key)
{
	BIO *cbio = BIO_new_mem_buf(id->cert_pem, id->cert_len);
	BIO *kbio = BIO_new_mem_buf(id->key_pem, id->key_len);
	X509 *cert = X509_new_ex(libctx, NULL);
	EVP_PKEY *key = NULL;
	int ret = -EIO;

	if (!cbio || !kbio || !cert)
		goto out;
	if (!PEM_read_bio_X509(cbio, &cert, NULL, NULL))
		goto out; /* a failed d2i has freed the object and set it NULL */
	key = PEM_read_bio_PrivateKey_ex(kbio, NULL, NULL, NULL, libctx, NULL);
	if (!key || X509_check_private_key(cert, key) != 1)
		goto out;
	*out_cert = cert;
	*out_key = key;
	cert = NULL;
	key = NULL;
	ret = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(key);
	X509_free(cert);
	BIO_free(kbio);
	BIO_free(cbio);
	return ret;
}

static void identity_init(enum bench_key k)
{
	struct identity *id = &identities[k];
	EVP_PKEY *key = k == BENCH_KEY_RSA_2048 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
	X509 *cert = key ? self_signed(key, "localhost") : NULL;
	BIO *cbio = BIO_new(BIO_s_mem()), *kbio = BIO_new(BIO_s_mem());

	if (!cert || !cbio || !kbio || PEM_write_bio_X509(cbio, cert) != 1 ||
	    PEM_write_bio_PrivateKey(kbio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    !(id->cert_pem = bio_copy(cbio, &id->cert_len)) ||
	    !(id->key_pem = bio_copy(kbio, &id->key_len))) {
		snprintf(id->err, sizeof(id->err), "cannot make the key and certificate");
	} else if (identity_decode(id, NULL, &id->cert, &id->key) < 0) {
		snprintf(id->err, sizeof(id->err), "cannot decode the key and certificate");
	}
	ERR_clear_error();
	BIO_free(kbio);
	BIO_free(cbio);
	X509_free(cert);
	EVP_PKEY_free(key);
}

static void identity_init_ecdsa(void)
{
	identity_init(BENCH_KEY_ECDSA_P256);
}

static void identity_init_rsa(void)
{
	identity_init(BENCH_KEY_RSA_2048);
}

static void identity_free(struct identity *id)
{
	X509_free(id->cert);
	EVP_PKEY_free(id->key);
	free(id->cert_pem);
	free(id->key_pem);
	memset(id, 0, sizeof(*id));
}

/* ---- connections (as in tls_bench.c) ---- */

static void pair_close(struct pair *p)
{
	tern_tls_free(&p->server);
	tern_tls_free(&p->client);
	tern_buf_free(&p->c2s);
	tern_buf_free(&p->s2c);
}

/* Runs both handshakes to completion, the client first; *server_ns gains
 * the CPU time of the server's steps (NULL: not timed). True when both
 * completed. */
static bool pair_handshake(struct pair *p, int64_t *server_ns)
{
	bool client_done = false, server_done = false;

	for (int step = 0; step < MAX_STEPS && !(client_done && server_done); step++) {
		if (!client_done) {
			int r = tern_tls_handshake(&p->client);
			if (r < 0)
				return false;
			client_done = r == TERN_TLS_DONE;
		}
		if (!server_done) {
			int64_t t0 = server_ns ? thread_cpu_ns() : 0;
			int r = tern_tls_handshake(&p->server);
			if (server_ns)
				*server_ns += thread_cpu_ns() - t0;
			if (r < 0)
				return false;
			server_done = r == TERN_TLS_DONE;
		}
	}
	return client_done && server_done;
}

/* A new pair on the worker's contexts, the client offering sess when not
 * NULL, handshaken. On success the caller ends it (pair_end); on failure
 * it is closed here. */
static bool pair_connect(struct pair *p, const struct worker_fixture *f, SSL_SESSION *sess,
			 int64_t *server_ns)
{
	memset(p, 0, sizeof(*p));
	if (tern_tls_init(&p->server, f->sctx, false, &p->c2s, &p->s2c, BENCH_BUF_CAP) < 0 ||
	    tern_tls_init(&p->client, f->cctx, true, &p->s2c, &p->c2s, BENCH_BUF_CAP) < 0 ||
	    SSL_set_tlsext_host_name(p->client.ssl, "localhost") != 1 ||
	    (sess && SSL_set_session(p->client.ssl, sess) != 1) || !pair_handshake(p, server_ns)) {
		ERR_clear_error();
		pair_close(p);
		return false;
	}
	return true;
}

/* close_notify from both sides, then free, as tern ends a connection
 * (without the client's, OpenSSL would mark a resumed session not
 * resumable when freeing it). True when both were queued. */
static bool pair_end(struct pair *p)
{
	bool ok = tern_tls_shutdown(&p->client) == 0;
	ok &= tern_tls_shutdown(&p->server) == 0;
	pair_close(p);
	return ok;
}

/* What every handshake is checked for: TLS 1.3 on both sides, resumed or
 * not on both as expected, and the server's tickets written in the
 * handshake: --num-tickets after a full one, one after a resumption
 * (OpenSSL 3.0 issues one when tern's callback asks for a fresh ticket). */
static bool pair_negotiated(const struct pair *p, bool want_resumed)
{
	uint32_t want_tickets = want_resumed ? 1u : bench_cfg.num_tickets;

	return tern_tls_is_tls13(&p->server) && tern_tls_is_tls13(&p->client) &&
	       tern_tls_resumed(&p->server) == want_resumed &&
	       tern_tls_resumed(&p->client) == want_resumed &&
	       p->server.tickets_sent == want_tickets;
}

/* The client reads what the server wrote after its Finished (the
 * tickets), so that it holds a resumable session. */
static bool pair_settle(struct pair *p)
{
	unsigned char byte;
	if (tern_tls_read(&p->client, &byte, 1) != 0 || !tern_buf_empty(&p->s2c))
		return false;
	SSL_SESSION *sess = SSL_get0_session(p->client.ssl);
	return sess && SSL_SESSION_is_resumable(sess);
}

/* ---- the contexts ---- */

/* tls_ctx.c's servername_cb: accepts the name (the context was chosen
 * before; without an OK OpenSSL 3.0 does not acknowledge SNI). */
static int servername_cb(SSL *ssl, int *alert, void *arg)
{
	(void)ssl;
	(void)alert;
	(void)arg;
	return SSL_TLSEXT_ERR_OK;
}

static int tls_proto(enum tern_tls_version v)
{
	return v == TERN_TLS_1_2 ? TLS1_2_VERSION : TLS1_3_VERSION;
}

/* A server context on libctx as tern_tls_shard_new makes its default one
 * for cfg (tls_ctx.c: ctx_common, then ctx_new's certificate; no client
 * CA, ALPN or OCSP, which the default configuration has none of), the
 * ticket callback reading *keys. NULL on failure. */
static SSL_CTX *server_ctx_new(OSSL_LIB_CTX *libctx, const struct tern_config *cfg, X509 *cert,
			       EVP_PKEY *key, struct tern_ticket_keys *const *keys)
{
	SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, TLS_server_method());

	if (!ctx)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, tls_proto(cfg->tls_min));
	SSL_CTX_set_max_proto_version(ctx, tls_proto(cfg->tls_max));
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, cfg->groups) != 1)
		goto fail;
	SSL_CTX_set_num_tickets(ctx, cfg->num_tickets);
	SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
	if (SSL_CTX_set_session_id_context(ctx, session_id_context,
					   sizeof(session_id_context) - 1) != 1)
		goto fail;
	if (cfg->session_cache == 0) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
		SSL_CTX_sess_set_cache_size(ctx, cfg->session_cache);
	}
	SSL_CTX_set_timeout(ctx, (long)(cfg->session_lifetime_ms / 1000));
	if (tern_ticket_keys_install(ctx, keys) < 0 ||
	    SSL_CTX_use_cert_and_key(ctx, cert, key, NULL, 1) != 1)
		goto fail;
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

/* A client on libctx that offers TLS 1.3 only and goes on whatever the
 * verification of the self-signed certificate says. */
static SSL_CTX *client_ctx_new(OSSL_LIB_CTX *libctx)
{
	SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, TLS_client_method());
	if (!ctx) {
		ERR_clear_error();
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

/* The ciphers of ctx in order, joined by ':' into out. */
static void cipher_names(SSL_CTX *ctx, char *out, size_t out_len)
{
	STACK_OF(SSL_CIPHER) *ciphers = SSL_CTX_get_ciphers(ctx);
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < sk_SSL_CIPHER_num(ciphers) && used < out_len; i++) {
		int n = snprintf(out + used, out_len - used, "%s%s", i ? ":" : "",
				 SSL_CIPHER_get_name(sk_SSL_CIPHER_value(ciphers, i)));
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* The groups a server on sctx shares with a client on cctx that offers
 * OpenSSL's defaults (all of them), in the server's order: the server's
 * own list, which OpenSSL 3.0 has no getter for. Writes at most max to
 * out; returns how many there are, or -1 when the handshake fails. */
static int shared_groups(SSL_CTX *sctx, SSL_CTX *cctx, int *out, int max)
{
	struct worker_fixture f = {.sctx = sctx, .cctx = cctx};
	struct pair p;
	int n = -1;

	if (!pair_connect(&p, &f, NULL, NULL))
		return -1;
	n = SSL_get_shared_group(p.server.ssl, -1);
	for (int i = 0; i < n && i < max; i++)
		out[i] = SSL_get_shared_group(p.server.ssl, i);
	if (!pair_end(&p))
		n = -1;
	return n;
}

/* Whether servers on a and b share the same groups, in the same order,
 * with a client offering them all. */
static bool same_groups(SSL_CTX *a, SSL_CTX *b)
{
	SSL_CTX *cctx = client_ctx_new(NULL);
	int ga[32] = {0}, gb[32] = {0};
	int na = cctx ? shared_groups(a, cctx, ga, 32) : -1;
	int nb = cctx ? shared_groups(b, cctx, gb, 32) : -1;

	SSL_CTX_free(cctx);
	return na > 0 && na == nb && memcmp(ga, gb, sizeof(ga)) == 0;
}

/* The settings check (see the top): server_ctx_new on the default
 * context against the default context of tern's own shard. Returns NULL,
 * or the name of the first setting that differs. */
static const char *settings_differ(void)
{
	struct tern_tls_identities *ids = NULL;
	struct tern_tls_shard *shard = NULL;
	const struct identity *id = &identities[BENCH_KEY_ECDSA_P256];
	SSL_CTX *mine = NULL;
	char err[256], a[1024], b[1024];
	const char *what = NULL;

	pthread_once(&identity_once[BENCH_KEY_ECDSA_P256], identity_init_ecdsa);
	if (id->err[0] || tern_tls_identities_load(&bench_cfg, &ids, err, sizeof(err)) < 0 ||
	    tern_tls_shard_new(&bench_cfg, ids, &ticket_keys, &shard, err, sizeof(err)) < 0 ||
	    !(mine = server_ctx_new(NULL, &bench_cfg, id->cert, id->key, &ticket_keys))) {
		what = "(a context could not be built)";
		goto out;
	}
	SSL_CTX *tern = tern_tls_shard_default_ctx(shard);
	cipher_names(mine, a, sizeof(a));
	cipher_names(tern, b, sizeof(b));
	if (SSL_CTX_get_options(mine) != SSL_CTX_get_options(tern))
		what = "options";
	else if (SSL_CTX_get_mode(mine) != SSL_CTX_get_mode(tern))
		what = "modes";
	else if (SSL_CTX_get_min_proto_version(mine) != SSL_CTX_get_min_proto_version(tern) ||
		 SSL_CTX_get_max_proto_version(mine) != SSL_CTX_get_max_proto_version(tern))
		what = "protocol versions";
	else if (strcmp(a, b) != 0)
		what = "ciphers or TLS 1.3 suites";
	else if (!same_groups(mine, tern))
		what = "groups";
	else if (SSL_CTX_get_num_tickets(mine) != SSL_CTX_get_num_tickets(tern))
		what = "number of tickets";
	else if (SSL_CTX_get_timeout(mine) != SSL_CTX_get_timeout(tern))
		what = "session timeout";
	else if (SSL_CTX_get_session_cache_mode(mine) != SSL_CTX_get_session_cache_mode(tern) ||
		 SSL_CTX_sess_get_cache_size(mine) != SSL_CTX_sess_get_cache_size(tern))
		what = "session cache";
	else if (SSL_CTX_get_verify_mode(mine) != SSL_CTX_get_verify_mode(tern))
		what = "verify mode";
out:
	SSL_CTX_free(mine);
	tern_tls_shard_free(shard);
	tern_tls_identities_unref(ids);
	ERR_clear_error();
	return what;
}

static void common_init(void)
{
	tern_config_init(&bench_cfg);
	if (tern_ticket_keys_new_random(&ticket_keys) < 0) {
		snprintf(common_err, sizeof(common_err), "tern_ticket_keys_new_random failed");
		return;
	}
	const char *what = settings_differ();
	if (what)
		snprintf(common_err, sizeof(common_err),
			 "the server context differs from tern_tls_shard_new's: %s", what);
}

/* ---- a thread's worker ---- */

static void fixture_close(struct worker_fixture *f)
{
	SSL_CTX_free(f->cctx);
	SSL_CTX_free(f->sctx);
	X509_free(f->cert);
	EVP_PKEY_free(f->key);
	tern_ticket_keys_unref(f->ticket_keys);
	/* Last: everything above was made in it. */
	OSSL_LIB_CTX_free(f->libctx);
	memset(f, 0, sizeof(*f));
}

/* Builds this thread's worker for key k in the given library context
 * case, and runs one untimed full handshake on it (a new context fetches
 * and caches its algorithms on its first handshakes). False after
 * reporting why, with nothing left to free. */
static bool fixture_open(struct tern_bench_state *st, struct worker_fixture *f, enum bench_key k,
			 enum bench_libctx mode)
{
	static void (*const init[BENCH_NUM_KEYS])(void) = {identity_init_ecdsa, identity_init_rsa};
	const struct identity *id = &identities[k];
	const char *why = NULL;
	struct pair p;

	memset(f, 0, sizeof(*f));
	pthread_once(&common_once, common_init);
	pthread_once(&identity_once[k], init[k]);
	if (common_err[0] || id->err[0]) {
		tern_bench_skip_with_error(st, common_err[0] ? common_err : id->err);
		return false;
	}
	if (mode == BENCH_LIBCTX_SHARED) {
		X509_up_ref(id->cert);
		EVP_PKEY_up_ref(id->key);
		f->cert = id->cert;
		f->key = id->key;
	} else if (!(f->libctx = OSSL_LIB_CTX_new()) ||
		   identity_decode(id, f->libctx, &f->cert, &f->key) < 0) {
		why = "cannot make a library context with the key and certificate in it";
		goto fail;
	}
	f->ticket_keys = tern_ticket_keys_ref(ticket_keys);
	f->sctx = server_ctx_new(f->libctx, &bench_cfg, f->cert, f->key, &f->ticket_keys);
	f->cctx = client_ctx_new(f->libctx);
	if (!f->sctx || !f->cctx) {
		why = "cannot build the server or the client context";
		goto fail;
	}
	if (!pair_connect(&p, f, NULL, NULL)) {
		why = "the warm-up handshake failed";
		goto fail;
	}
	bool negotiated = pair_negotiated(&p, false);
	if (!pair_end(&p) || !negotiated) {
		why = "the warm-up handshake was not a full TLS 1.3 one";
		goto fail;
	}
	return true;
fail:
	ERR_clear_error();
	fixture_close(f);
	tern_bench_skip_with_error(st, why);
	return false;
}

/* One full handshake whose client keeps its session (with a ticket).
 * NULL on failure. */
static SSL_SESSION *first_session(const struct worker_fixture *f)
{
	SSL_SESSION *sess = NULL;
	struct pair p;

	if (!pair_connect(&p, f, NULL, NULL))
		return NULL;
	if (pair_settle(&p))
		sess = SSL_get1_session(p.client.ssl);
	if (!pair_end(&p)) {
		SSL_SESSION_free(sess);
		sess = NULL;
	}
	return sess;
}

/* ---- the benchmarks ---- */

/* libctx_full and libctx_resumed: per iteration a new pair and its
 * handshake on this thread's worker, every one checked. */
static void handshakes(struct tern_bench_state *st, enum bench_key k, enum bench_libctx mode,
		       bool resume)
{
	struct worker_fixture f;
	SSL_SESSION *sess = NULL;
	struct usage start = {0}, end;
	int64_t server_ns = 0, num_checked = 0;
	bool failed = false;
	struct pair p;
	const char *not_negotiated = resume ? "not a TLS 1.3 resumption with one ticket"
					    : "not a full TLS 1.3 handshake with its tickets";

	if (!fixture_open(st, &f, k, mode))
		return;
	if (resume && !(sess = first_session(&f))) {
		tern_bench_skip_with_error(st, "no resumable session from the first handshake");
		fixture_close(&f);
		return;
	}
	while (tern_bench_keep_running(st)) {
		/* Read here, not before the loop: the first call waits for
		 * the other threads, asleep. */
		if (num_checked == 0 && !failed)
			start = usage_now();
		if (failed)
			continue; /* the library ends the loop at the next call */
		if (!pair_connect(&p, &f, sess, &server_ns)) {
			failed = true;
			tern_bench_skip_with_error(st, "a handshake failed");
			continue;
		}
		bool negotiated = pair_negotiated(&p, resume);
		if (!pair_end(&p) || !negotiated) {
			failed = true;
			tern_bench_skip_with_error(st, not_negotiated);
			continue;
		}
		num_checked++;
	}
	end = usage_now();
	if (!failed && num_checked != tern_bench_iterations(st)) {
		failed = true;
		tern_bench_skip_with_error(st, "fewer handshakes checked than iterations");
	}
	if (!failed && num_checked > 0) {
		tern_bench_set_items_processed(st, num_checked);
		counter_per_iteration(st, "cpu_us_per_handshake",
				      (double)(end.cpu_ns - start.cpu_ns) / 1e3);
		counter_per_iteration(st, "server_us_per_handshake", (double)server_ns / 1e3);
		counter_per_iteration(st, "vcsw_per_handshake", (double)(end.vcsw - start.vcsw));
	}
	SSL_SESSION_free(sess);
	fixture_close(&f);
}

/* One lookup of the given kind in libctx, its object freed at once. True
 * when it found one. */
static bool fetch_once(OSSL_LIB_CTX *libctx, enum bench_fetch what)
{
	switch (what) {
	case BENCH_FETCH_MD: {
		EVP_MD *md = EVP_MD_fetch(libctx, "SHA256", NULL);
		EVP_MD_free(md);
		return md != NULL;
	}
	case BENCH_FETCH_KDF: {
		EVP_KDF *kdf = EVP_KDF_fetch(libctx, OSSL_KDF_NAME_TLS1_3_KDF, NULL);
		EVP_KDF_free(kdf);
		return kdf != NULL;
	}
	case BENCH_FETCH_PKEY_CTX: {
		EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(libctx, "X25519", NULL);
		EVP_PKEY_CTX_free(pctx);
		return pctx != NULL;
	}
	}
	return false;
}

/* libctx_fetch: the lookup alone, in the default context or in this
 * thread's own. */
static void fetches(struct tern_bench_state *st, enum bench_fetch what, enum bench_libctx mode)
{
	OSSL_LIB_CTX *libctx = NULL;
	struct usage start = {0}, end;
	int64_t num_found = 0;
	bool failed = false;

	if (mode == BENCH_LIBCTX_PER_THREAD && !(libctx = OSSL_LIB_CTX_new())) {
		tern_bench_skip_with_error(st, "OSSL_LIB_CTX_new failed");
		return;
	}
	/* Untimed: the first fetch in a context loads its provider and fills
	 * the caches. */
	if (!fetch_once(libctx, what)) {
		failed = true;
		tern_bench_skip_with_error(st, "the algorithm was not found");
	}
	while (tern_bench_keep_running(st)) {
		if (num_found == 0 && !failed)
			start = usage_now();
		if (failed)
			continue;
		if (!fetch_once(libctx, what)) {
			failed = true;
			tern_bench_skip_with_error(st, "a fetch found nothing");
			continue;
		}
		num_found++;
	}
	end = usage_now();
	if (!failed && num_found != tern_bench_iterations(st)) {
		failed = true;
		tern_bench_skip_with_error(st, "fewer fetches checked than iterations");
	}
	if (!failed && num_found > 0) {
		tern_bench_set_items_processed(st, num_found);
		counter_per_iteration(st, "vcsw_per_op", (double)(end.vcsw - start.vcsw));
	}
	ERR_clear_error();
	OSSL_LIB_CTX_free(libctx);
}

/* The shim passes no argument to a threaded benchmark: one function per
 * case, each calling the common one. */
#define HANDSHAKE_CASE(fn, key, mode, resume)             \
	static void fn(struct tern_bench_state *st)       \
	{                                                 \
		handshakes(st, key, mode, resume);        \
	}
#define FETCH_CASE(fn, what, mode)                  \
	static void fn(struct tern_bench_state *st) \
	{                                           \
		fetches(st, what, mode);            \
	}

HANDSHAKE_CASE(full_shared_ecdsa, BENCH_KEY_ECDSA_P256, BENCH_LIBCTX_SHARED, false)
HANDSHAKE_CASE(full_per_thread_ecdsa, BENCH_KEY_ECDSA_P256, BENCH_LIBCTX_PER_THREAD, false)
HANDSHAKE_CASE(full_shared_rsa, BENCH_KEY_RSA_2048, BENCH_LIBCTX_SHARED, false)
HANDSHAKE_CASE(full_per_thread_rsa, BENCH_KEY_RSA_2048, BENCH_LIBCTX_PER_THREAD, false)
HANDSHAKE_CASE(resumed_shared_ecdsa, BENCH_KEY_ECDSA_P256, BENCH_LIBCTX_SHARED, true)
HANDSHAKE_CASE(resumed_per_thread_ecdsa, BENCH_KEY_ECDSA_P256, BENCH_LIBCTX_PER_THREAD, true)
HANDSHAKE_CASE(resumed_shared_rsa, BENCH_KEY_RSA_2048, BENCH_LIBCTX_SHARED, true)
HANDSHAKE_CASE(resumed_per_thread_rsa, BENCH_KEY_RSA_2048, BENCH_LIBCTX_PER_THREAD, true)
FETCH_CASE(fetch_md_shared, BENCH_FETCH_MD, BENCH_LIBCTX_SHARED)
FETCH_CASE(fetch_md_per_thread, BENCH_FETCH_MD, BENCH_LIBCTX_PER_THREAD)
FETCH_CASE(fetch_kdf_shared, BENCH_FETCH_KDF, BENCH_LIBCTX_SHARED)
FETCH_CASE(fetch_kdf_per_thread, BENCH_FETCH_KDF, BENCH_LIBCTX_PER_THREAD)
FETCH_CASE(fetch_pkey_ctx_shared, BENCH_FETCH_PKEY_CTX, BENCH_LIBCTX_SHARED)
FETCH_CASE(fetch_pkey_ctx_per_thread, BENCH_FETCH_PKEY_CTX, BENCH_LIBCTX_PER_THREAD)

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		tern_bench_fn *fn;
	} cases[] = {
		{"libctx_full/shared/ecdsa_p256", full_shared_ecdsa},
		{"libctx_full/per_thread/ecdsa_p256", full_per_thread_ecdsa},
		{"libctx_full/shared/rsa2048", full_shared_rsa},
		{"libctx_full/per_thread/rsa2048", full_per_thread_rsa},
		{"libctx_resumed/shared/ecdsa_p256", resumed_shared_ecdsa},
		{"libctx_resumed/per_thread/ecdsa_p256", resumed_per_thread_ecdsa},
		{"libctx_resumed/shared/rsa2048", resumed_shared_rsa},
		{"libctx_resumed/per_thread/rsa2048", resumed_per_thread_rsa},
		{"libctx_fetch/md/shared", fetch_md_shared},
		{"libctx_fetch/md/per_thread", fetch_md_per_thread},
		{"libctx_fetch/kdf/shared", fetch_kdf_shared},
		{"libctx_fetch/kdf/per_thread", fetch_kdf_per_thread},
		{"libctx_fetch/pkey_ctx/shared", fetch_pkey_ctx_shared},
		{"libctx_fetch/pkey_ctx/per_thread", fetch_pkey_ctx_per_thread},
	};
	int ret = 0;

	/* Each case on one thread, then on two, next to each other. */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ret |= tern_bench_register(cases[i].name, cases[i].fn, 1);
		ret |= tern_bench_register(cases[i].name, cases[i].fn, 2);
	}
	if (ret < 0) {
		fprintf(stderr, "libctx_bench: cannot register the benchmarks\n");
		return 1;
	}
	int status = tern_bench_main(argc, argv);
	for (int k = 0; k < BENCH_NUM_KEYS; k++)
		identity_free(&identities[k]);
	tern_ticket_keys_unref(ticket_keys);
	return status;
}
