/* Fuzzes the server side of the in-memory TLS state machine
 * (include/tern/tls.h) on the shard tern builds for a worker
 * (include/tern/tls_ctx.h): the input is what a client sends.
 *
 * The shard is built once per process, with more than the defaults so
 * that tern's own callbacks see hostile ClientHellos too: three
 * certificates in three SNI groups ("localhost" the default,
 * "example.com" and "www.example.com", "*.example.org"), so the
 * client-hello callback parses the server_name extension and switches
 * contexts; --alpn h2,http/1.1 (the ALPN callback); a --client-ca with
 * --verify-client optional (a TLS 1.2 client Certificate message arrives
 * in clear); and a ticket key set (the ticket callback, for tickets in
 * the SessionTicket and pre_shared_key extensions). A second shard of the
 * same identities has --strict-sni, so the callback's refusals run too.
 * The certificates are made in memory and written to a temporary
 * directory only while they load.
 *
 * Input layout: byte 0 is flags (bit 0: the transport ends after the last
 * byte; bits 1-2: the capacity of `out`, 16.5 KiB, 1 KiB or 64 bytes;
 * bit 3: the --strict-sni shard),
 * bytes 1-4 are the sizes of the chunks the rest is fed in, in turn (0:
 * all that is left), then the client's bytes. The state machine runs
 * until it makes no progress; what it writes is discarded. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "fuzz_util.h"
#include "tern/buf.h"
#include "tern/config.h"
#include "tern/parse.h"
#include "tern/ticket_keys.h"
#include "tern/tls.h"
#include "tern/tls_ctx.h"

#define IN_CAP (16u * 1024u + 512u)

static struct tern_ticket_keys *ticket_keys;
static struct tern_tls_shard *shard, *strict_shard;

/* A self-signed P-256 certificate for the DNS names in san
 * ("DNS:a,DNS:b"), written with its key to path. */
static void write_cert(const char *path, const char *cn, const char *san)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FUZZ_CHECK(key != NULL && x != NULL);
	FUZZ_CHECK(X509_set_version(x, X509_VERSION_3) == 1);
	FUZZ_CHECK(ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1);
	FUZZ_CHECK(X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL);
	FUZZ_CHECK(X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365) != NULL);
	X509_NAME *name = X509_get_subject_name(x);
	FUZZ_CHECK(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) ==
		   1);
	FUZZ_CHECK(X509_set_issuer_name(x, name) == 1);
	FUZZ_CHECK(X509_set_pubkey(x, key) == 1);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	FUZZ_CHECK(ext != NULL && X509_add_ext(x, ext, -1) == 1);
	X509_EXTENSION_free(ext);
	FUZZ_CHECK(X509_sign(x, key, EVP_sha256()) > 0);

	FILE *f = fopen(path, "w");
	FUZZ_CHECK(f != NULL);
	FUZZ_CHECK(PEM_write_X509(f, x) == 1 && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
	FUZZ_CHECK(fclose(f) == 0);
	X509_free(x);
	EVP_PKEY_free(key);
}

static void build_shard(void)
{
	static const struct {
		const char *file, *cn, *san;
	} certs[] = {
		{"default.pem", "localhost", "DNS:localhost"},
		{"com.pem", "example.com", "DNS:example.com,DNS:www.example.com"},
		{"org.pem", "wild.example.org", "DNS:*.example.org"},
	};
	enum { NUM_CERTS = sizeof(certs) / sizeof(certs[0]) };
	char dir[] = "/tmp/tern-tls-fuzz-XXXXXX";
	char paths[NUM_CERTS][sizeof(dir) + 16];
	char err[512];

	/* The PEMs written below hold private keys: private, as tern requires. */
	umask(077);
	FUZZ_CHECK(mkdtemp(dir) != NULL);
	struct tern_config *cfg = calloc(1, sizeof(*cfg));
	FUZZ_CHECK(cfg != NULL);
	tern_config_init(cfg);
	for (size_t i = 0; i < NUM_CERTS; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", dir, certs[i].file);
		write_cert(paths[i], certs[i].cn, certs[i].san);
		cfg->certs[cfg->num_certs++] = (struct tern_cert_config){.cert_path = paths[i]};
	}
	cfg->alpn = "h2,http/1.1";
	FUZZ_CHECK(tern_parse_alpn(cfg->alpn, cfg->alpn_wire, sizeof(cfg->alpn_wire), &cfg->alpn_wire_len) == 0);
	cfg->client_ca_path = paths[0];
	cfg->verify_client = TERN_VERIFY_CLIENT_OPTIONAL;

	struct tern_tls_identities *ids = NULL;
	if (tern_tls_identities_load(cfg, &ids, err, sizeof(err)) < 0 ||
	    tern_ticket_keys_new_random(&ticket_keys) < 0 ||
	    tern_tls_shard_new(cfg, ids, &ticket_keys, &shard, err, sizeof(err)) < 0 ||
	    (cfg->strict_sni = true,
	     tern_tls_shard_new(cfg, ids, &ticket_keys, &strict_shard, err, sizeof(err)) < 0)) {
		fprintf(stderr, "tls_server_fuzz: cannot build the shard: %s\n", err);
		abort();
	}
	/* The contexts hold their own references from here on. */
	tern_tls_identities_unref(ids);
	for (size_t i = 0; i < NUM_CERTS; i++)
		unlink(paths[i]);
	rmdir(dir);
	free(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t out_caps[] = {16u * 1024u + 512u, 1024u, 64u, 16u * 1024u + 512u};
	struct fuzz_stream s = {data, size};
	struct tern_buf in = {0}, out = {0};
	struct tern_tls tls;
	unsigned char plain[4096];

	if (shard == NULL)
		build_shard();
	uint8_t flags = fuzz_u8(&s);
	uint8_t chunks[4];
	for (size_t i = 0; i < sizeof(chunks); i++)
		chunks[i] = fuzz_u8(&s);
	FUZZ_CHECK(tern_buf_reserve(&in, IN_CAP) == 0);
	struct tern_tls_shard *use = (flags & 8) ? strict_shard : shard;
	FUZZ_CHECK(tern_tls_init(&tls, tern_tls_shard_default_ctx(use), false, &in, &out,
				 out_caps[(flags >> 1) & 3]) == 0);

	bool done = false;
	for (unsigned step = 0, k = 0; step < 100000; step++) {
		bool progress = false;
		if (s.left > 0 && tern_buf_room(&in) > 0) {
			size_t want = chunks[k++ % sizeof(chunks)], got;
			if (want == 0 || want > tern_buf_room(&in))
				want = tern_buf_room(&in);
			const uint8_t *p = fuzz_bytes(&s, want, &got);
			FUZZ_CHECK(tern_buf_write(&in, p, (uint32_t)got) == got);
			progress = true;
		} else if (s.left == 0 && (flags & 1) && !tls.in_eof) {
			tls.in_eof = true;
			progress = true;
		}
		uint32_t in_before = tern_buf_len(&in);
		int rc;
		if (!done) {
			rc = tern_tls_handshake(&tls);
			if (rc < 0)
				break;
			done = rc == TERN_TLS_DONE;
		} else {
			rc = tern_tls_read(&tls, plain, sizeof(plain));
			if (rc < 0)
				break;
		}
		progress = progress || rc > 0 || tern_buf_len(&in) != in_before || !tern_buf_empty(&out);
		tern_buf_check(&in);
		tern_buf_check(&out);
		/* The peer reads everything the server writes. */
		tern_buf_consume(&out, tern_buf_len(&out));
		if (!progress)
			break;
	}
	FUZZ_CHECK(memchr(tls.error, '\0', sizeof(tls.error)) != NULL);
	/* Only --strict-sni refuses on tern's own account. */
	FUZZ_CHECK(use == strict_shard || tls.refused == NULL);
	/* No OpenSSL error left behind for the next connection (tls.h). */
	FUZZ_CHECK(ERR_peek_error() == 0);
	tern_tls_free(&tls);
	tern_buf_free(&in);
	tern_buf_free(&out);
	return 0;
}
