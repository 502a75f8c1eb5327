/* Unit tests for src/ticket_keys.c's ticket callback, end to end:
 * resumption across two SSL_CTX shards driven in memory (TLS 1.3 and 1.2)
 * through rotations, with file-loaded sets, and without keys, including
 * an independent decryption of a ticket with the file's bytes, which pins
 * the key layout that nginx reads (16 name, 32 HMAC, 32 AES). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>

#include "check.h"
#include "ticket_keys_fixture.h"
#include "tern/config.h"
#include "tern/ticket_keys.h"
#include "tern/tls_ctx.h"

/* ---- end to end: two shards, tickets in memory ---- */

/* A worker's default context, ticket keys installed by the shard, with a
 * reference of its own (SSL_CTX_free): the shard itself is freed at once,
 * as a reload would. */
static SSL_CTX *server_shard(struct tern_tls_identities *id, struct tern_ticket_keys *const *current)
{
	struct tern_config cfg;
	char err[256] = "";
	struct tern_tls_shard *shard = NULL;

	tern_config_init(&cfg);
	CHECK_EQ_INT(tern_tls_shard_new(&cfg, id, current, &shard, err, sizeof(err)), 0);
	CHECK_EQ_STR(err, "");
	if (!shard)
		exit(1);
	SSL_CTX *ctx = tern_tls_shard_default_ctx(shard);
	SSL_CTX_up_ref(ctx);
	tern_tls_shard_free(shard);
	return ctx;
}

/* New sessions the client was told of during one connection: one per
 * ticket in TLS 1.3, one per full handshake in TLS 1.2 (OpenSSL 3.0 does
 * not report a ticket renewed in a resumed TLS 1.2 handshake here). */
static unsigned num_new_sessions;

static int client_new_session(SSL *ssl, SSL_SESSION *sess)
{
	(void)ssl;
	(void)sess;
	num_new_sessions++;
	return 0; /* the reference stays with OpenSSL */
}

static SSL_CTX *client_ctx(int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		exit(1);
	SSL_CTX_set_max_proto_version(ctx, max_version);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* every new session reaches client_new_session */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, client_new_session);
	return ctx;
}

struct conn_result {
	int ok;
	int reused;         /* SSL_session_reused on the client */
	int server_reused;  /* and on the server: they must agree */
	int version;
	unsigned num_tickets; /* new sessions reported, see num_new_sessions */
	SSL_SESSION *newest;  /* what the client would offer next, owned */
};

/* One connection from cctx to sctx, offering `resume` if not NULL: the
 * handshake, then client reads until the server's tickets (sent right
 * after the handshake in TLS 1.3) are processed. */
static struct conn_result connect_once(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *resume)
{
	struct conn_result r = {0};
	SSL *client = SSL_new(cctx), *server = SSL_new(sctx);
	BIO *bc = NULL, *bs = NULL;

	if (!client || !server || BIO_new_bio_pair(&bc, 0, &bs, 0) != 1)
		exit(1);
	SSL_set_bio(client, bc, bc);
	SSL_set_bio(server, bs, bs);
	SSL_set_connect_state(client);
	SSL_set_accept_state(server);
	SSL_set_tlsext_host_name(client, "localhost");
	if (resume) {
		/* The OpenSSL TLS 1.3 client uses a session once: after a
		 * resumption it marks it not resumable (RFC 8446 appendix C.4).
		 * Offering a copy keeps `resume` usable for later steps, as if
		 * the client had kept several copies of the ticket. */
		SSL_SESSION *copy = SSL_SESSION_dup(resume);
		CHECK(copy != NULL);
		CHECK_EQ_INT(SSL_set_session(client, copy), 1);
		SSL_SESSION_free(copy);
	}
	num_new_sessions = 0;

	int done_c = 0, done_s = 0;
	for (int i = 0; i < 50 && !(done_c && done_s); i++) {
		if (!done_c) {
			int rc = SSL_do_handshake(client);
			if (rc == 1)
				done_c = 1;
			else if (SSL_get_error(client, rc) != SSL_ERROR_WANT_READ)
				goto out;
		}
		if (!done_s) {
			int rc = SSL_do_handshake(server);
			if (rc == 1)
				done_s = 1;
			else if (SSL_get_error(server, rc) != SSL_ERROR_WANT_READ)
				goto out;
		}
	}
	if (!(done_c && done_s))
		goto out;
	/* The client processes the NewSessionTicket messages on a read; no
	 * application data follows, so the read ends in WANT_READ. */
	char byte;
	int rc = SSL_read(client, &byte, 1);
	if (rc > 0 || SSL_get_error(client, rc) != SSL_ERROR_WANT_READ)
		goto out;
	r.ok = 1;
	r.reused = SSL_session_reused(client);
	r.server_reused = SSL_session_reused(server);
	r.version = SSL_version(client);
	r.num_tickets = num_new_sessions;
	r.newest = SSL_get1_session(client);
	/* An orderly close: SSL_free without one marks the client's session
	 * not resumable (ssl_clear_bad_session). */
	SSL_shutdown(client);
	SSL_shutdown(server);
out:
	ERR_clear_error();
	SSL_free(client);
	SSL_free(server);
	return r;
}

/* The hex key name at the front of a session's ticket; "" without one. */
static const char *ticket_name_hex(const SSL_SESSION *sess, char out[33])
{
	const unsigned char *tick = NULL;
	size_t len = 0;
	out[0] = '\0';
	if (sess)
		SSL_SESSION_get0_ticket(sess, &tick, &len);
	if (len < 16)
		return out;
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", tick[i]);
	return out;
}

/* Whether two sessions carry the very same ticket. */
static int same_ticket(const SSL_SESSION *x, const SSL_SESSION *y)
{
	const unsigned char *tx = NULL, *ty = NULL;
	size_t lx = 0, ly = 0;
	if (!x || !y)
		return 0;
	SSL_SESSION_get0_ticket(x, &tx, &lx);
	SSL_SESSION_get0_ticket(y, &ty, &ly);
	return lx > 0 && lx == ly && memcmp(tx, ty, lx) == 0;
}

static void result_free(struct conn_result *r)
{
	SSL_SESSION_free(r->newest);
	r->newest = NULL;
}

/* The scenario for one protocol version: issue on A, resume on B; rotate
 * once and resume (with a fresh ticket under the new key); rotate twice
 * more and the first ticket is refused while the renewed one resumes. */
static void test_shards(struct tern_tls_identities *id, int version)
{
	struct tern_ticket_keys *set = NULL, *next = NULL;
	/* one current-set pointer per worker, as each worker owns its own */
	struct tern_ticket_keys *current_a = NULL, *current_b = NULL;
	char a[33], b[33];

	CHECK_EQ_INT(tern_ticket_keys_new_random(&set), 0);
	if (!set)
		return;
	current_a = tern_ticket_keys_ref(set);
	current_b = tern_ticket_keys_ref(set);
	SSL_CTX *shard_a = server_shard(id, &current_a);
	SSL_CTX *shard_b = server_shard(id, &current_b);
	SSL_CTX *cctx = client_ctx(version);

	/* full handshake on A: tickets under key 0 */
	struct conn_result first = connect_once(shard_a, cctx, NULL);
	CHECK(first.ok);
	CHECK_EQ_INT(first.version, version);
	CHECK_EQ_INT(first.reused, 0);
	CHECK(first.num_tickets >= 1);
	CHECK_EQ_STR(ticket_name_hex(first.newest, a), name_hex(set, 0, b));
	SSL_SESSION *original = first.newest;
	first.newest = NULL;

	/* resumed on B */
	struct conn_result r = connect_once(shard_b, cctx, original);
	CHECK(r.ok);
	CHECK_EQ_INT(r.reused, 1);
	CHECK_EQ_INT(r.server_reused, 1);
	CHECK_EQ_STR(ticket_name_hex(r.newest, a), name_hex(set, 0, b));
	if (version == TLS1_3_VERSION) {
		/* TLS 1.3: one fresh ticket after every resumption (the
		 * callback returns 2 even for key 0) */
		CHECK_EQ_UINT(r.num_tickets, 1);
		CHECK(!same_ticket(r.newest, original));
	} else {
		/* TLS 1.2 under the current key: the ticket stays valid and no
		 * new one is sent (the callback returned 1) */
		CHECK_EQ_UINT(r.num_tickets, 0);
		CHECK(same_ticket(r.newest, original));
	}
	result_free(&r);
	/* and on A too */
	r = connect_once(shard_a, cctx, original);
	CHECK(r.ok && r.reused == 1);
	/* a client that keeps only its newest session resumes again and
	 * again, alternating workers: in TLS 1.3 this needs the fresh ticket
	 * every resumption brings, as a used session is not resumable */
	for (int i = 0; i < 4; i++) {
		struct conn_result next_conn = connect_once(i % 2 ? shard_a : shard_b, cctx, r.newest);
		CHECK(next_conn.ok);
		CHECK_EQ_INT(next_conn.reused, 1);
		result_free(&r);
		r = next_conn;
	}
	result_free(&r);

	/* one rotation: both workers adopt the new set and drop the old */
	CHECK_EQ_INT(tern_ticket_keys_rotate(set, TERN_TICKET_KEYS_ROTATE_KEEP, &next), 0);
	tern_ticket_keys_unref(current_a);
	tern_ticket_keys_unref(current_b);
	tern_ticket_keys_unref(set);
	set = next;
	current_a = tern_ticket_keys_ref(set);
	current_b = tern_ticket_keys_ref(set);

	/* the original ticket (now key 1) resumes on B, and the callback's 2
	 * makes the server send a fresh ticket under the new key 0 */
	r = connect_once(shard_b, cctx, original);
	CHECK(r.ok);
	CHECK_EQ_INT(r.reused, 1);
	CHECK_EQ_INT(r.server_reused, 1);
	if (version == TLS1_3_VERSION)
		CHECK_EQ_UINT(r.num_tickets, 1);
	CHECK_EQ_STR(ticket_name_hex(r.newest, a), name_hex(set, 0, b));
	CHECK(!same_ticket(r.newest, original));
	SSL_SESSION *renewed = r.newest;
	r.newest = NULL;

	/* two more rotations: the original key is gone */
	for (int i = 0; i < 2; i++) {
		CHECK_EQ_INT(tern_ticket_keys_rotate(set, TERN_TICKET_KEYS_ROTATE_KEEP, &next), 0);
		tern_ticket_keys_unref(current_a);
		tern_ticket_keys_unref(current_b);
		tern_ticket_keys_unref(set);
		set = next;
		current_a = tern_ticket_keys_ref(set);
		current_b = tern_ticket_keys_ref(set);
	}
	CHECK_EQ_UINT(tern_ticket_keys_count(set), 3);
	r = connect_once(shard_a, cctx, original);
	CHECK(r.ok); /* a full handshake, not a failure */
	CHECK_EQ_INT(r.reused, 0);
	CHECK_EQ_INT(r.server_reused, 0);
	CHECK(r.num_tickets >= 1);
	CHECK_EQ_STR(ticket_name_hex(r.newest, a), name_hex(set, 0, b));
	result_free(&r);
	/* the renewed ticket (now key 2, the oldest kept) still resumes */
	r = connect_once(shard_b, cctx, renewed);
	CHECK(r.ok);
	CHECK_EQ_INT(r.reused, 1);
	CHECK_EQ_STR(ticket_name_hex(r.newest, a), name_hex(set, 0, b));
	result_free(&r);

	/* a worker without keys issues and accepts no tickets, and its
	 * handshakes still complete */
	struct tern_ticket_keys *saved = current_b;
	current_b = NULL;
	r = connect_once(shard_b, cctx, renewed);
	CHECK(r.ok);
	CHECK_EQ_INT(r.reused, 0);
	result_free(&r);
	current_b = saved;

	SSL_SESSION_free(original);
	SSL_SESSION_free(renewed);
	SSL_CTX_free(cctx);
	SSL_CTX_free(shard_a);
	SSL_CTX_free(shard_b);
	tern_ticket_keys_unref(current_a);
	tern_ticket_keys_unref(current_b);
	tern_ticket_keys_unref(set);
}

/* A ticket is name (16) | IV (16) | AES-256-CBC ciphertext | HMAC-SHA256
 * (32) over everything before it. Checks it with the raw key file bytes:
 * HMAC secret = bytes 16..47, AES key = bytes 48..79 (nginx's order), and
 * that the plaintext is the session in DER. Returns whether it all held. */
static int ticket_opens_with(const SSL_SESSION *sess, const unsigned char raw[80])
{
	const unsigned char *tick = NULL;
	size_t len = 0;
	unsigned char mac[32], plain[4096];
	unsigned mac_len = 0;
	int n1 = 0, n2 = 0, ok = 0;

	SSL_SESSION_get0_ticket(sess, &tick, &len);
	if (len < 16 + 16 + 16 + 32 || len - 64 > sizeof(plain) - 16)
		return 0;
	size_t ct_len = len - 16 - 16 - 32;
	if (memcmp(tick, raw, 16) != 0)
		return 0;
	if (!HMAC(EVP_sha256(), raw + 16, 32, tick, len - 32, mac, &mac_len) || mac_len != 32 ||
	    memcmp(mac, tick + len - 32, 32) != 0)
		return 0;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (c && EVP_DecryptInit_ex(c, EVP_aes_256_cbc(), NULL, raw + 48, tick + 16) == 1 &&
	    EVP_DecryptUpdate(c, plain, &n1, tick + 32, (int)ct_len) == 1 &&
	    EVP_DecryptFinal_ex(c, plain + n1, &n2) == 1) {
		const unsigned char *p = plain;
		SSL_SESSION *inner = d2i_SSL_SESSION(NULL, &p, n1 + n2);
		ok = inner != NULL && p == plain + n1 + n2;
		SSL_SESSION_free(inner);
	}
	EVP_CIPHER_CTX_free(c);
	ERR_clear_error();
	return ok;
}

/* A file-loaded set resumes across shards; a ticket under the file's
 * second key resumes and is renewed under the first; tickets open with the
 * file's bytes in nginx's order. */
static void test_file_shards(struct tern_tls_identities *id, int version)
{
	char path_new[PATH_MAX], path_old[PATH_MAX], content[1024], l1[256], l2[256], err[512] = "";
	char a[33], b[33];
	struct tern_ticket_keys *newer = NULL, *older = NULL;
	unsigned char raw1[80], raw2[80];

	key_bytes(raw1, sizeof(raw1), 0x11);
	key_bytes(raw2, sizeof(raw2), 0x22);
	snprintf(content, sizeof(content), "# rotated in\n%s\n%s\n", key_line(l1, 0x11), key_line(l2, 0x22));
	write_file(path_new, content, 0600);
	snprintf(content, sizeof(content), "%s\n", key_line(l2, 0x22));
	write_file(path_old, content, 0600);
	CHECK_EQ_INT(tern_ticket_keys_load_file(path_new, &newer, err, sizeof(err)), 0);
	CHECK_EQ_INT(tern_ticket_keys_load_file(path_old, &older, err, sizeof(err)), 0);
	CHECK_EQ_STR(err, "");
	if (!newer || !older)
		return;

	struct tern_ticket_keys *current_a = older, *current_b = older;
	SSL_CTX *shard_a = server_shard(id, &current_a);
	SSL_CTX *shard_b = server_shard(id, &current_b);
	SSL_CTX *cctx = client_ctx(version);

	/* a ticket under the old file's only key, on A */
	struct conn_result first = connect_once(shard_a, cctx, NULL);
	CHECK(first.ok && first.reused == 0 && first.num_tickets >= 1);
	CHECK_EQ_STR(ticket_name_hex(first.newest, a), seed_name_hex(b, 0x22));
	CHECK(first.newest && ticket_opens_with(first.newest, raw2));
	/* the same bytes in HAProxy's order (AES before HMAC) do not open it */
	unsigned char swapped[80];
	memcpy(swapped, raw2, 16);
	memcpy(swapped + 16, raw2 + 48, 32);
	memcpy(swapped + 48, raw2 + 16, 32);
	CHECK(first.newest && !ticket_opens_with(first.newest, swapped));

	/* resumes on B with the same file */
	struct conn_result r = connect_once(shard_b, cctx, first.newest);
	CHECK(r.ok);
	CHECK_EQ_INT(r.reused, 1);
	result_free(&r);

	/* the new file (its second line is the old key) is reloaded */
	current_a = newer;
	current_b = newer;
	r = connect_once(shard_b, cctx, first.newest);
	CHECK(r.ok);
	CHECK_EQ_INT(r.reused, 1);
	if (version == TLS1_3_VERSION)
		CHECK_EQ_UINT(r.num_tickets, 1);
	CHECK_EQ_STR(ticket_name_hex(r.newest, a), seed_name_hex(b, 0x11));
	CHECK(r.newest && ticket_opens_with(r.newest, raw1));
	/* and the renewed ticket resumes on A */
	struct conn_result r2 = connect_once(shard_a, cctx, r.newest);
	CHECK(r2.ok);
	CHECK_EQ_INT(r2.reused, 1);
	result_free(&r2);
	result_free(&r);

	/* a set that does not hold the key: a full handshake */
	struct tern_ticket_keys *stranger = NULL;
	CHECK_EQ_INT(tern_ticket_keys_new_random(&stranger), 0);
	current_a = stranger;
	r = connect_once(shard_a, cctx, first.newest);
	CHECK(r.ok);
	CHECK_EQ_INT(r.reused, 0);
	result_free(&r);

	result_free(&first);
	SSL_CTX_free(cctx);
	SSL_CTX_free(shard_a);
	SSL_CTX_free(shard_b);
	tern_ticket_keys_unref(stranger);
	tern_ticket_keys_unref(newer);
	tern_ticket_keys_unref(older);
}

int main(void)
{
	test_tmp_dir_make(tmp_dir, sizeof(tmp_dir), "ticket_keys_resumption_test");
	struct tern_config cfg;
	struct tern_tls_identities *id = NULL;
	char err[256] = "";
	tern_config_init(&cfg); /* no --cert: self-signed */
	CHECK_EQ_INT(tern_tls_identities_load(&cfg, &id, err, sizeof(err)), 0);
	if (id) {
		test_shards(id, TLS1_3_VERSION);
		test_shards(id, TLS1_2_VERSION);
		test_file_shards(id, TLS1_3_VERSION);
		test_file_shards(id, TLS1_2_VERSION);
		tern_tls_identities_unref(id);
	}
	test_tmp_dir_remove(tmp_dir);
	return check_summary();
}
