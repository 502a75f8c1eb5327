/* What tern's server side of a TLS connection costs in CPU, driven through
 * tern's own code: the connection's TLS state machine (struct tern_tls,
 * include/tern/tls.h, with its BIO over tern_bufs) on a context that
 * tern's own builder makes (tern_tls_shard_new with the default
 * configuration, a ticket key set installed as the server installs it).
 * Everything runs in memory on one thread: a client and a server
 * tern_tls are wired back to back, each side's `out` buffer being the
 * other side's `in`, so no byte is copied between them and no system call
 * is made. What remains is cryptography, OpenSSL's state machine, tern's
 * BIO and the allocations of a new connection.
 *
 * The certificate and key are made at start (self-signed for localhost,
 * ECDSA P-256 or RSA-2048, OpenSSL's EVP API), written to a private
 * temporary file only because tern's loader reads files, and the file is
 * deleted as soon as it is loaded.
 *
 * tls_handshake_full/<key>
 *	Per iteration: a new server and a new client connection, a full TLS
 *	1.3 handshake (X25519, the server signing with <key> and writing two
 *	session tickets, tern's defaults), close_notify from both sides, both
 *	connections freed. The Time column is client and server together; the
 *	counters are the server's thread CPU time (CLOCK_THREAD_CPUTIME_ID
 *	around each server call), per handshake: server_us_per_handshake for
 *	its tern_tls_handshake steps alone, server_us_conn_total adding
 *	tern_tls_init (SSL_new), tern_tls_shutdown and tern_tls_free. Each
 *	clock read costs about a microsecond itself (a system call), two
 *	pairs per handshake. Checks: both sides complete, TLS 1.3, not
 *	resumed, close_notify queued.
 *
 * tls_handshake_resumed/<key>
 *	The same with the client offering the session (ticket) of one first
 *	full handshake, SSL_set_session on every new client: a TLS 1.3 PSK
 *	resumption with (EC)DHE, tern's ticket callback decrypting the ticket
 *	and issuing new ones. Checks: both sides say it resumed.
 *
 * tls_record_encrypt/<bytes>
 *	One established connection; per iteration the server encrypts <bytes>
 *	of plaintext with tern_tls_write into its `out` buffer, which is then
 *	emptied as a send completion would. Bytes = plaintext. Check: before
 *	the loop, what the server encrypts decrypts at the client to the same
 *	bytes; in it, every call takes all bytes and writes at least one
 *	record's overhead more.
 *
 * tls_record_decrypt/<bytes>
 *	Per iteration the server decrypts one record of <bytes> the client
 *	encrypted, with tern_tls_read from its `in` buffer. The client
 *	encrypts the records in batches (about 1 MiB) with the clock stopped.
 *	Checks: each record carries its sequence number, which must come out
 *	in order; every batch's last record is compared byte for byte.
 *
 * Run: build/bench/tls_bench (see README.md here for the figures). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tern/config.h"
#include "tern/ticket_keys.h"
#include "tern/tls.h"
#include "tern/tls_ctx.h"
#include "tern_bench.h"

/* A connection's buffer capacity, as conn.c sizes it: --buffer-size and
 * room for one record's header and tag (its TLS_RECORD_ROOM). */
#define BENCH_BUF_CAP (TERN_DEFAULT_BUFFER_SIZE + 512u)
/* A TLS 1.3 record adds a 5-byte header, the 1-byte inner content type
 * and a 16-byte AEAD tag to its plaintext (RFC 8446 section 5.2). */
#define TLS13_RECORD_OVERHEAD 22u
/* The decrypt benchmark's batch of client records. */
#define DECRYPT_BATCH_BYTES (1u << 20)
/* Steps a side may take before a handshake or a transfer counts as
 * stuck: a TLS 1.3 handshake needs two per side. */
#define MAX_STEPS 16

enum bench_key {
	BENCH_KEY_ECDSA_P256,
	BENCH_KEY_RSA_2048,
	BENCH_NUM_KEYS,
};

/* One server identity and tern's contexts for it, made on first use and
 * kept for the whole process: RSA key generation alone takes a good part
 * of a second, and Google Benchmark calls each function several times. */
struct server_fixture {
	struct tern_config cfg;
	struct tern_tls_identities *ids;
	struct tern_tls_shard *shard;
	SSL_CTX *sctx; /* borrowed from shard */
	SSL_CTX *cctx; /* the clients' */
	bool ready;
};

static struct server_fixture fixtures[BENCH_NUM_KEYS];
/* The worker's pointer-to-current-set that every context's ticket
 * callback reads (tern_ticket_keys_install); lives as long as they do. */
static struct tern_ticket_keys *ticket_keys;

/* A client and a server connection back to back (see the top). */
struct pair {
	struct tern_tls client, server;
	struct tern_buf c2s, s2c;
};

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static EVP_PKEY *bench_key_new(enum bench_key k)
{
	return k == BENCH_KEY_RSA_2048 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
}

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

/* Writes certificate then key into a new file only this user may read, as
 * tern's loader insists for a file holding a key. Returns 0 or -errno. */
static int write_identity(const char *path, X509 *cert, EVP_PKEY *key)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	bool ok = PEM_write_X509(f, cert) == 1 &&
		  PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
	ok &= fclose(f) == 0;
	return ok ? 0 : -EIO;
}

/* Makes a key and certificate and loads them with tern's loader, through
 * a temporary file deleted right after. Returns 0 or -errno. */
static int load_identity(struct server_fixture *f, enum bench_key k, char *err, size_t err_len)
{
	EVP_PKEY *key = bench_key_new(k);
	X509 *cert = key ? self_signed(key, "localhost") : NULL;
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX], path[PATH_MAX + 16];
	int ret = -ENOMEM;

	if (!cert) {
		snprintf(err, err_len, "cannot make the key and certificate");
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/tern-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		ret = -errno;
		snprintf(err, err_len, "mkdtemp %.160s: %s", dir, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/server.pem", dir);
	ret = write_identity(path, cert, key);
	if (ret < 0) {
		snprintf(err, err_len, "%.160s: %s", path, strerror(-ret));
	} else {
		f->cfg.certs[0].cert_path = path;
		f->cfg.num_certs = 1;
		ret = tern_tls_identities_load(&f->cfg, &f->ids, err, err_len);
		f->cfg.certs[0].cert_path = NULL; /* path is about to go */
		f->cfg.num_certs = 0;
	}
	unlink(path);
	rmdir(dir);
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return ret;
}

/* A client that offers TLS 1.3 only and goes on whatever the verification
 * of the self-signed certificate says (it fails: nothing trusts it). */
static SSL_CTX *client_ctx_new(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

static void fixture_free(struct server_fixture *f)
{
	SSL_CTX_free(f->cctx);
	tern_tls_shard_free(f->shard);
	tern_tls_identities_unref(f->ids);
	memset(f, 0, sizeof(*f));
}

static bool fixture_warm_up(const struct server_fixture *f);

/* The fixture for key k, made on first use; NULL after reporting why. */
static struct server_fixture *fixture_get(struct tern_bench_state *st, enum bench_key k)
{
	struct server_fixture *f = &fixtures[k];
	char err[256] = "";

	if (f->ready)
		return f;
	if (!ticket_keys && tern_ticket_keys_new_random(&ticket_keys) < 0) {
		tern_bench_skip_with_error(st, "tern_ticket_keys_new_random failed");
		return NULL;
	}
	tern_config_init(&f->cfg);
	if (load_identity(f, k, err, sizeof(err)) < 0 ||
	    tern_tls_shard_new(&f->cfg, f->ids, &ticket_keys, &f->shard, err, sizeof(err)) < 0) {
		tern_bench_skip_with_error(st, err[0] ? err : "cannot build the server context");
		fixture_free(f);
		return NULL;
	}
	f->sctx = tern_tls_shard_default_ctx(f->shard);
	f->cctx = client_ctx_new();
	if (!f->cctx) {
		tern_bench_skip_with_error(st, "cannot build the client context");
		fixture_free(f);
		return NULL;
	}
	if (!fixture_warm_up(f)) {
		tern_bench_skip_with_error(st, "the warm-up handshake failed");
		fixture_free(f);
		return NULL;
	}
	f->ready = true;
	return f;
}

/* The client side of a new pair, offering sess when not NULL. */
static int pair_open_client(struct pair *p, const struct server_fixture *f, SSL_SESSION *sess,
			    uint32_t client_out_cap)
{
	if (tern_tls_init(&p->client, f->cctx, true, &p->s2c, &p->c2s, client_out_cap) < 0)
		return -ENOMEM;
	if (SSL_set_tlsext_host_name(p->client.ssl, "localhost") != 1 ||
	    (sess && SSL_set_session(p->client.ssl, sess) != 1))
		return -EINVAL;
	return 0;
}

/* Frees both connections and their buffers. */
static void pair_close(struct pair *p)
{
	tern_tls_free(&p->server);
	tern_tls_free(&p->client);
	tern_buf_free(&p->c2s);
	tern_buf_free(&p->s2c);
}

/* Ends a connected pair as tern ends a connection: close_notify from both
 * sides, then free. Without the client's, OpenSSL would mark the session
 * it resumed not resumable when freeing it (ssl_clear_bad_session).
 * *server_ns gains the CPU time of the server's close_notify and free.
 * True when both close_notify alerts were queued. */
static bool pair_end(struct pair *p, int64_t *server_ns)
{
	bool ok = tern_tls_shutdown(&p->client) == 0;
	int64_t t0 = thread_cpu_ns();
	ok &= tern_tls_shutdown(&p->server) == 0;
	tern_tls_free(&p->server);
	*server_ns += thread_cpu_ns() - t0;
	pair_close(p);
	return ok;
}

/* Runs both handshakes to completion, the client first as a connection
 * starts; *server_ns gains the CPU time of the server's steps. True when
 * both completed. */
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
			int64_t t0 = thread_cpu_ns();
			int r = tern_tls_handshake(&p->server);
			*server_ns += thread_cpu_ns() - t0;
			if (r < 0)
				return false;
			server_done = r == TERN_TLS_DONE;
		}
	}
	return client_done && server_done;
}

/* The per-iteration tallies of a handshake benchmark. */
struct handshake_cost {
	int64_t handshake_ns; /* the server's tern_tls_handshake calls */
	int64_t new_free_ns;  /* its tern_tls_init, close_notify and tern_tls_free */
};

/* Opens a new pair (the server's tern_tls_init timed) and handshakes it.
 * On success the caller closes it; on failure it is closed here. */
static bool pair_connect(struct pair *p, const struct server_fixture *f, SSL_SESSION *sess,
			 uint32_t client_out_cap, struct handshake_cost *cost)
{
	memset(p, 0, sizeof(*p));
	int64_t t0 = thread_cpu_ns();
	int r = tern_tls_init(&p->server, f->sctx, false, &p->c2s, &p->s2c, BENCH_BUF_CAP);
	cost->new_free_ns += thread_cpu_ns() - t0;
	if (r < 0 || pair_open_client(p, f, sess, client_out_cap) < 0 ||
	    !pair_handshake(p, &cost->handshake_ns)) {
		pair_close(p);
		return false;
	}
	return true;
}

/* What a handshake benchmark checks on every connection. */
static bool pair_negotiated(const struct pair *p, bool want_resumed)
{
	return tern_tls_is_tls13(&p->server) && tern_tls_is_tls13(&p->client) &&
	       tern_tls_resumed(&p->server) == want_resumed &&
	       tern_tls_resumed(&p->client) == want_resumed;
}

/* The client reads what the server wrote after its Finished (the session
 * tickets), so that s2c is empty and the client holds a resumable
 * session. True when it does. */
static bool pair_settle(struct pair *p)
{
	unsigned char byte;
	if (tern_tls_read(&p->client, &byte, 1) != 0 || !tern_buf_empty(&p->s2c))
		return false;
	SSL_SESSION *sess = SSL_get0_session(p->client.ssl);
	return sess && SSL_SESSION_is_resumable(sess);
}

/* One untimed handshake on a new fixture: OpenSSL fetches and caches
 * algorithms on a process's first handshakes, which would otherwise land
 * in the first measured run. */
static bool fixture_warm_up(const struct server_fixture *f)
{
	struct handshake_cost ignored = {0};
	struct pair p;

	if (!pair_connect(&p, f, NULL, BENCH_BUF_CAP, &ignored))
		return false;
	return pair_end(&p, &ignored.new_free_ns);
}

static void report_handshakes(struct tern_bench_state *st, const struct handshake_cost *cost)
{
	int64_t n = tern_bench_iterations(st);
	if (n <= 0)
		return;
	tern_bench_set_items_processed(st, n);
	tern_bench_counter(st, "server_us_per_handshake", (double)cost->handshake_ns / 1e3 / (double)n);
	tern_bench_counter(st, "server_us_conn_total",
			   (double)(cost->handshake_ns + cost->new_free_ns) / 1e3 / (double)n);
}

/* One full handshake whose client keeps the session (with its ticket).
 * NULL on failure. */
static SSL_SESSION *first_session(const struct server_fixture *f)
{
	struct handshake_cost ignored = {0};
	struct pair p;
	SSL_SESSION *sess = NULL;

	if (!pair_connect(&p, f, NULL, BENCH_BUF_CAP, &ignored))
		return NULL;
	if (pair_settle(&p))
		sess = SSL_get1_session(p.client.ssl);
	if (!pair_end(&p, &ignored.new_free_ns)) {
		SSL_SESSION_free(sess);
		sess = NULL;
	}
	return sess;
}

/* tls_handshake_full (resume false) and tls_handshake_resumed: a new
 * pair and its handshake per iteration, the server's CPU time counted. */
static void handshakes(struct tern_bench_state *st, enum bench_key k, bool resume)
{
	struct server_fixture *f = fixture_get(st, k);
	struct handshake_cost cost = {0};
	SSL_SESSION *sess = f && resume ? first_session(f) : NULL;
	struct pair p;

	if (!f)
		return;
	if (resume && !sess) {
		tern_bench_skip_with_error(st, "no session from the first handshake");
		return;
	}
	while (tern_bench_keep_running(st)) {
		if (!pair_connect(&p, f, sess, BENCH_BUF_CAP, &cost)) {
			tern_bench_skip_with_error(st, "handshake failed");
			continue;
		}
		if (!pair_negotiated(&p, resume))
			tern_bench_skip_with_error(st, resume ? "the session was not resumed"
							      : "not a full TLS 1.3 handshake");
		if (!pair_end(&p, &cost.new_free_ns))
			tern_bench_skip_with_error(st, "close_notify failed");
	}
	report_handshakes(st, &cost);
	SSL_SESSION_free(sess);
}

static void handshake_full_ecdsa(struct tern_bench_state *st)
{
	handshakes(st, BENCH_KEY_ECDSA_P256, false);
}

static void handshake_full_rsa(struct tern_bench_state *st)
{
	handshakes(st, BENCH_KEY_RSA_2048, false);
}

static void handshake_resumed_ecdsa(struct tern_bench_state *st)
{
	handshakes(st, BENCH_KEY_ECDSA_P256, true);
}

static void handshake_resumed_rsa(struct tern_bench_state *st)
{
	handshakes(st, BENCH_KEY_RSA_2048, true);
}

/* Hands all len bytes to tern_tls_write. Returns len, or < len when a call
 * failed or `out` filled up. */
static size_t write_all(struct tern_tls *tls, const uint8_t *src, size_t len)
{
	size_t done = 0;
	for (int step = 0; step < MAX_STEPS && done < len; step++) {
		int n = tern_tls_write(tls, src + done, len - done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	return done;
}

/* Reads len bytes with tern_tls_read. Returns len, or < len. */
static size_t read_all(struct tern_tls *tls, uint8_t *dst, size_t len)
{
	size_t done = 0;
	for (int step = 0; step < MAX_STEPS && done < len; step++) {
		int n = tern_tls_read(tls, dst + done, len - done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	return done;
}

/* An established pair on the ECDSA fixture, settled (no tickets in
 * flight). False after reporting why. */
static bool established(struct tern_bench_state *st, struct pair *p, uint32_t client_out_cap)
{
	struct server_fixture *f = fixture_get(st, BENCH_KEY_ECDSA_P256);
	struct handshake_cost ignored = {0};

	if (!f)
		return false;
	if (!pair_connect(p, f, NULL, client_out_cap, &ignored)) {
		tern_bench_skip_with_error(st, "handshake failed");
		return false;
	}
	if (!pair_settle(p)) {
		tern_bench_skip_with_error(st, "the client did not take its tickets");
		pair_close(p);
		return false;
	}
	return true;
}

/* A plaintext that is not all one byte, so a decryption that loses or
 * reorders bytes shows. */
static void fill_pattern(uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + 7);
}

static size_t record_arg(struct tern_bench_state *st)
{
	int64_t len = tern_bench_arg(st, 0);
	if (len < 16 || len > 16384) {
		tern_bench_skip_with_error(st, "record size outside [16, 16384]");
		return 0;
	}
	return (size_t)len;
}

static void record_encrypt(struct tern_bench_state *st)
{
	size_t len = record_arg(st);
	uint8_t *src = len ? malloc(len) : NULL, *dst = len ? malloc(len) : NULL;
	struct pair p;

	if (len && (!src || !dst))
		tern_bench_skip_with_error(st, "out of memory");
	if (!src || !dst || !established(st, &p, BENCH_BUF_CAP))
		goto out;
	fill_pattern(src, len);
	/* The check, before the loop: there every record is dropped, so the
	 * client's sequence numbers fall behind and it can read no more. */
	if (write_all(&p.server, src, len) != len || read_all(&p.client, dst, len) != len ||
	    memcmp(src, dst, len) != 0)
		tern_bench_skip_with_error(st, "the client does not read what the server wrote");

	while (tern_bench_keep_running(st)) {
		size_t n = write_all(&p.server, src, len);
		if (n != len || tern_buf_len(&p.s2c) < len + TLS13_RECORD_OVERHEAD)
			tern_bench_skip_with_error(st, "tern_tls_write did not encrypt it all");
		/* What the send completion does (conn.c, on_client_send). */
		tern_buf_consume(&p.s2c, tern_buf_len(&p.s2c));
	}
	tern_bench_set_bytes_processed(st, tern_bench_iterations(st) * (int64_t)len);
	pair_close(&p);
out:
	free(src);
	free(dst);
}

/* Marks a plaintext with its record number at both ends. */
static void stamp(uint8_t *buf, size_t len, uint64_t seq)
{
	memcpy(buf, &seq, sizeof(seq));
	memcpy(buf + len - sizeof(seq), &seq, sizeof(seq));
}

static bool stamped(const uint8_t *buf, size_t len, uint64_t seq)
{
	return memcmp(buf, &seq, sizeof(seq)) == 0 &&
	       memcmp(buf + len - sizeof(seq), &seq, sizeof(seq)) == 0;
}

/* The client encrypts num records into c2s, numbered from *seq. */
static bool encrypt_batch(struct pair *p, uint8_t *src, size_t len, size_t num, uint64_t *seq)
{
	for (size_t i = 0; i < num; i++) {
		stamp(src, len, (*seq)++);
		if (write_all(&p->client, src, len) != len)
			return false;
	}
	return true;
}

static void record_decrypt(struct tern_bench_state *st)
{
	size_t len = record_arg(st);
	size_t batch = len ? DECRYPT_BATCH_BYTES / len : 0;
	uint8_t *src = len ? malloc(len) : NULL, *dst = len ? malloc(len) : NULL;
	uint64_t num_written = 0, num_read = 0;
	struct pair p;

	if (len && (!src || !dst))
		tern_bench_skip_with_error(st, "out of memory");
	/* c2s, the client's `out`, holds a whole batch. */
	if (!src || !dst ||
	    !established(st, &p, (uint32_t)(batch * (len + TLS13_RECORD_OVERHEAD) + BENCH_BUF_CAP)))
		goto out;
	fill_pattern(src, len);

	while (tern_bench_keep_running(st)) {
		if (tern_buf_empty(&p.c2s)) {
			tern_bench_pause_timing(st);
			/* The last record read, in full: only its stamp differs
			 * from the pattern left in src. */
			if (num_read > 0) {
				stamp(src, len, num_read - 1);
				if (memcmp(src, dst, len) != 0)
					tern_bench_skip_with_error(st, "a decrypted record differs from the input");
			}
			if (!encrypt_batch(&p, src, len, batch, &num_written))
				tern_bench_skip_with_error(st, "the client cannot encrypt a batch");
			tern_bench_resume_timing(st);
		}
		if (read_all(&p.server, dst, len) != len || !stamped(dst, len, num_read))
			tern_bench_skip_with_error(st, "a record did not decrypt to its input");
		num_read++;
	}
	tern_bench_set_bytes_processed(st, tern_bench_iterations(st) * (int64_t)len);
	pair_close(&p);
out:
	free(src);
	free(dst);
}

/* The response each ticket_refresh iteration writes: a small answer, as
 * in the storm phase of bench/load (GET /small). */
#define REFRESH_RESPONSE_BYTES 64u

/* tls_ticket_refresh/0 and /1: what a refreshed ticket (--ticket-refresh)
 * adds to the response it rides with. Every iteration the server writes
 * one small response, after asking OpenSSL for one new session ticket
 * (/1) or not (/0), as conn_hand_over_tickets does at the record
 * boundary; the client reads it all. Only the server's CPU is counted:
 * server_us_per_response; /1 minus /0 is the cost of one ticket. */
static void ticket_refresh(struct tern_bench_state *st)
{
	bool with_ticket = tern_bench_arg(st, 0) != 0;
	uint8_t resp[REFRESH_RESPONSE_BYTES], got[REFRESH_RESPONSE_BYTES];
	int64_t server_ns = 0, tickets = 0;
	struct pair p;

	if (!established(st, &p, BENCH_BUF_CAP))
		return;
	fill_pattern(resp, sizeof(resp));
	while (tern_bench_keep_running(st)) {
		int64_t t0 = thread_cpu_ns();
		if (with_ticket)
			tickets += tern_tls_new_tickets(&p.server, 1);
		size_t n = write_all(&p.server, resp, sizeof(resp));
		server_ns += thread_cpu_ns() - t0;
		/* A ticket is a record of its own ahead of the response's. */
		size_t wire = tern_buf_len(&p.s2c), alone = sizeof(resp) + TLS13_RECORD_OVERHEAD;
		if (n != sizeof(resp) || (with_ticket ? wire <= alone : wire != alone))
			tern_bench_skip_with_error(st, with_ticket ? "no ticket went with the response"
								   : "the response is not one record");
		if (read_all(&p.client, got, sizeof(got)) != sizeof(got) ||
		    memcmp(resp, got, sizeof(got)) != 0 || !tern_buf_empty(&p.s2c))
			tern_bench_skip_with_error(st, "the client did not read the response");
	}
	int64_t iters = tern_bench_iterations(st);
	if (with_ticket && tickets != iters)
		tern_bench_skip_with_error(st, "OpenSSL refused a ticket");
	if (iters > 0)
		tern_bench_counter(st, "server_us_per_response", (double)server_ns / 1e3 / (double)iters);
	pair_close(&p);
}

int main(int argc, char **argv)
{
	static const int64_t record_sizes[] = {1024, 16384};
	int ret = 0;

	ret |= tern_bench_register("tls_handshake_full/ecdsa_p256", handshake_full_ecdsa, 0);
	ret |= tern_bench_register("tls_handshake_full/rsa2048", handshake_full_rsa, 0);
	ret |= tern_bench_register("tls_handshake_resumed/ecdsa_p256", handshake_resumed_ecdsa, 0);
	ret |= tern_bench_register("tls_handshake_resumed/rsa2048", handshake_resumed_rsa, 0);
	for (size_t i = 0; i < sizeof(record_sizes) / sizeof(record_sizes[0]); i++)
		ret |= tern_bench_register_args("tls_record_encrypt", record_encrypt, record_sizes[i]);
	for (size_t i = 0; i < sizeof(record_sizes) / sizeof(record_sizes[0]); i++)
		ret |= tern_bench_register_args("tls_record_decrypt", record_decrypt, record_sizes[i]);
	ret |= tern_bench_register_args("tls_ticket_refresh", ticket_refresh, 0);
	ret |= tern_bench_register_args("tls_ticket_refresh", ticket_refresh, 1);
	if (ret < 0) {
		fprintf(stderr, "tls_bench: cannot register the benchmarks\n");
		return 1;
	}
	int status = tern_bench_main(argc, argv);
	for (int k = 0; k < BENCH_NUM_KEYS; k++)
		fixture_free(&fixtures[k]);
	tern_ticket_keys_unref(ticket_keys);
	return status;
}
