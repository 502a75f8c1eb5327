/* Unit tests for src/tls_ctx_identities.c: loading every --cert with its
 * chain, key and OCSP response, the self-signed certificate without one,
 * and the --client-ca bundle, with every load error and its exact
 * message: missing files, private keys other users can read or write, a
 * chain or CA certificate that does not parse, OCSP files that are not a
 * successful DER response. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/ocsp.h>

#include "check.h"
#include "tls_ctx_fixture.h"
#include "tern/config.h"
#include "tern/tls_ctx.h"

/* ---- files written here ---- */

static void write_bytes(char path[PATH_MAX], const char *name, const void *data, size_t len)
{
	snprintf(path, PATH_MAX, "%s/%s", tmp_dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || (len && fwrite(data, 1, len, f) != len))
		exit(1);
	fclose(f);
}

/* Writes tmp_dir/name: a copy of the PEM file src, followed, when
 * bad_cert, by a CERTIFICATE block that does not parse. */
static void write_pem_copy(char path[PATH_MAX], const char *name, const char *src, bool bad_cert)
{
	static const char junk[] = "-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n";
	char pem[16384];
	FILE *f = fopen(src, "r");
	size_t len = f ? fread(pem, 1, sizeof(pem) - sizeof(junk), f) : 0;
	if (!f || len == 0)
		exit(1);
	fclose(f);
	if (bad_cert) {
		memcpy(pem + len, junk, sizeof(junk) - 1);
		len += sizeof(junk) - 1;
	}
	write_bytes(path, name, pem, len);
}

/* no --cert: the self-signed localhost certificate */
static void test_self_signed(void)
{
	tern_config_init(&cfg);
	struct tern_tls_identities *ids = load_ok();
	char line[1024];
	tern_tls_identities_describe(ids, 0, line, sizeof(line));
	CHECK(strncmp(line, "cert=self-signed names=localhost subject=/CN=localhost key=EC ", 62) == 0);
	tern_tls_identities_unref(ids);
}

/* certs: what tern_tls_identities_cert_info gives for each certificate:
 * the names as loaded (lowercase, in certificate order, operator bytes
 * kept as they are: quotes, backslashes, control characters, for the
 * writer to escape), key type and bits, the validity, the OCSP staple's
 * status and times, the default. */
static void test_cert_info(void)
{
	struct made odd;
	char ocsp[PATH_MAX];
	struct tern_cert_info info;
	int64_t now = (int64_t)time(NULL);

	make_cert(&odd, "odd", "EC", NULL, "DNS:Q\"uote\\x.test,DNS:tab\there.test");
	make_ocsp(&m_default, OCSP_RESPONSE_STATUS_SUCCESSFUL, ocsp, "default.der");
	const char *paths[] = {m_default.pem, m_d_rsa.pem, m_cn_only.pem, odd.pem};
	cfg_certs(4, paths);
	cfg.certs[0].ocsp_path = ocsp;
	struct tern_tls_identities *ids = load_ok();

	tern_tls_identities_cert_info(ids, 0, &info);
	CHECK_EQ_STR(info.source, m_default.pem);
	CHECK(info.is_default);
	CHECK_EQ_UINT(info.num_names, 2);
	CHECK_EQ_STR(info.names[0], "default.test");
	CHECK_EQ_STR(info.names[1], "www.default.test");
	CHECK_EQ_STR(info.key_type, "EC");
	CHECK_EQ_INT(info.key_bits, 256);
	/* the fixture's certificates: from an hour ago to an hour from now */
	CHECK(info.not_before >= now - 3600 - 5 && info.not_before <= now - 3600 + 5);
	CHECK(info.not_after >= now + 3600 - 5 && info.not_after <= now + 3600 + 5);
	CHECK_EQ_STR(info.ocsp_source, ocsp);
	CHECK_EQ_STR(info.ocsp_status, "good");
	CHECK(info.ocsp_this_update >= now - 5 && info.ocsp_this_update <= now + 5);
	CHECK(info.ocsp_next_update == TERN_CERT_TIME_NONE); /* the response has none */

	tern_tls_identities_cert_info(ids, 1, &info);
	CHECK(!info.is_default);
	CHECK_EQ_STR(info.key_type, "RSA");
	CHECK_EQ_INT(info.key_bits, 2048);
	CHECK_EQ_UINT(info.num_names, 2);
	CHECK_EQ_STR(info.names[1], "*.d.test");
	CHECK(info.ocsp_source == NULL && info.ocsp_status == NULL);
	CHECK(info.ocsp_next_update == TERN_CERT_TIME_NONE);

	tern_tls_identities_cert_info(ids, 2, &info); /* no SAN: the CN */
	CHECK_EQ_UINT(info.num_names, 1);
	CHECK_EQ_STR(info.names[0], "cn.test");

	tern_tls_identities_cert_info(ids, 3, &info);
	CHECK_EQ_UINT(info.num_names, 2);
	CHECK_EQ_STR(info.names[0], "q\"uote\\x.test");
	CHECK_EQ_STR(info.names[1], "tab\there.test");
	tern_tls_identities_unref(ids);
	made_free(&odd);
}

static void test_load_errors(void)
{
	char path[PATH_MAX], want[2 * PATH_MAX + 256], der[PATH_MAX];

	/* a missing certificate, a missing key, a missing OCSP file */
	snprintf(path, sizeof(path), "%s/missing.pem", tmp_dir);
	const char *missing[] = {m_default.pem, path};
	cfg_certs(2, missing);
	snprintf(want, sizeof(want), "%s: cannot open: %s", path, strerror(ENOENT));
	expect_load_error(-EIO, want);
	cfg_certs(1, missing);
	cfg.certs[0].key_path = path;
	expect_load_error(-EIO, want);
	cfg_certs(1, missing);
	cfg.certs[0].ocsp_path = path;
	expect_load_error(-EIO, want);

	/* A private key other users can read is refused, in --key or inside
	 * the --cert file; 0640 (a group of operators) is fine. */
	cfg_certs(1, missing);
	CHECK_EQ_INT(chmod(m_default.pem, 0644), 0);
	snprintf(want, sizeof(want),
		 "%s: private key readable by other users (mode 0644); chmod 600 or 640 it",
		 m_default.pem);
	expect_load_error(-EACCES, want);
	CHECK_EQ_INT(chmod(m_default.pem, 0602), 0);
	snprintf(want, sizeof(want),
		 "%s: private key writable by other users (mode 0602); chmod 600 or 640 it",
		 m_default.pem);
	expect_load_error(-EACCES, want);
	CHECK_EQ_INT(chmod(m_default.pem, 0640), 0);
	struct tern_tls_identities *ok_ids = NULL;
	CHECK_EQ_INT(tern_tls_identities_load(&cfg, &ok_ids, err, sizeof(err)), 0);
	tern_tls_identities_unref(ok_ids);
	CHECK_EQ_INT(chmod(m_default.pem, 0600), 0);

	/* A chain certificate that does not parse is refused, not dropped:
	 * a silently shorter chain would fail only at the clients. */
	char broken[PATH_MAX];
	write_pem_copy(broken, "broken-chain.pem", m_default.pem, true);
	CHECK_EQ_INT(chmod(broken, 0600), 0);
	const char *broken_certs[] = {broken};
	cfg_certs(1, broken_certs);
	expect_load_error(-EIO, NULL);
	snprintf(want, sizeof(want), "%s: bad PEM certificate in the chain (", broken);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	/* and the same file without the broken block loads */
	write_pem_copy(broken, "broken-chain.pem", m_default.pem, false);
	CHECK_EQ_INT(chmod(broken, 0600), 0);
	CHECK_EQ_INT(tern_tls_identities_load(&cfg, &ok_ids, err, sizeof(err)), 0);
	tern_tls_identities_unref(ok_ids);

	/* OCSP files that are not a successful DER response */
	cfg_certs(1, missing);
	write_bytes(der, "garbage.der", "not DER at all", 14);
	cfg.certs[0].ocsp_path = der;
	expect_load_error(-EIO, NULL);
	snprintf(want, sizeof(want), "%s: not a DER OCSP response (", der);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	write_bytes(der, "empty.der", "", 0);
	expect_load_error(-EIO, NULL);
	CHECK(strncmp(err, der, strlen(der)) == 0);
	cfg.certs[0].ocsp_path = m_default.pem; /* PEM, not DER */
	expect_load_error(-EIO, NULL);
	snprintf(want, sizeof(want), "%s: not a DER OCSP response (", m_default.pem);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	make_ocsp(&m_default, OCSP_RESPONSE_STATUS_UNAUTHORIZED, der, "unauthorized.der");
	cfg.certs[0].ocsp_path = der;
	snprintf(want, sizeof(want), "%s: OCSP response status is unauthorized, not successful", der);
	expect_load_error(-EIO, want);
	/* trailing bytes */
	char good[PATH_MAX];
	make_ocsp(&m_default, OCSP_RESPONSE_STATUS_SUCCESSFUL, good, "good.der");
	FILE *f = fopen(good, "ab");
	fputs("x", f);
	fclose(f);
	cfg.certs[0].ocsp_path = good;
	snprintf(want, sizeof(want), "%s: not a DER OCSP response (trailing bytes after it)", good);
	expect_load_error(-EIO, want);
	cfg.certs[0].ocsp_path = tmp_dir;
	snprintf(want, sizeof(want), "%s: not a DER OCSP response (not a regular file of at most 1 MiB)",
		 tmp_dir);
	expect_load_error(-EIO, want);
}

/* bad --client-ca files: exit 1 material, naming the path */
static void test_client_ca_errors(void)
{
	struct made ca;
	make_issued(&ca, "client-ca", NULL);
	const char *paths[] = {m_default.pem, m_b.pem};
	char path[PATH_MAX], want[2 * PATH_MAX];

	cfg_certs(1, paths);
	snprintf(path, sizeof(path), "%s/no-ca.pem", tmp_dir);
	cfg.client_ca_path = path;
	snprintf(want, sizeof(want), "%s: cannot open: %s", path, strerror(ENOENT));
	expect_load_error(-EIO, want);
	write_bytes(path, "empty-ca.pem", "", 0);
	expect_load_error(-EIO, NULL);
	snprintf(want, sizeof(want), "%s: no PEM certificate found (", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	/* a certificate, then garbage in PEM armour */
	write_pem_copy(path, "mixed-ca.pem", ca.pem, true);
	expect_load_error(-EIO, NULL);
	snprintf(want, sizeof(want), "%s: bad PEM certificate in the CA bundle (", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	made_free(&ca);
}

/* bad --crl files: exit 1 material, naming the path */
static void test_crl_errors(void)
{
	struct made ca;
	make_issued(&ca, "crl-errors-ca", NULL);
	const char *paths[] = {m_default.pem};
	char path[PATH_MAX], want[2 * PATH_MAX];

	cfg_certs(1, paths);
	cfg.client_ca_path = ca.pem;
	snprintf(path, sizeof(path), "%s/no.crl", tmp_dir);
	cfg.crl_path = path;
	snprintf(want, sizeof(want), "%s: cannot open: %s", path, strerror(ENOENT));
	expect_load_error(-EIO, want);
	/* empty, or a certificate where a CRL should be */
	write_bytes(path, "empty.crl", "", 0);
	expect_load_error(-EIO, NULL);
	snprintf(want, sizeof(want), "%s: no PEM CRL found (", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	cfg.crl_path = ca.pem;
	expect_load_error(-EIO, NULL);
	snprintf(want, sizeof(want), "%s: no PEM CRL found (", ca.pem);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	/* a good CRL, then garbage in CRL armour */
	static const char junk[] = "-----BEGIN X509 CRL-----\nnot base64!!\n-----END X509 CRL-----\n";
	snprintf(path, sizeof(path), "%s/half.crl", tmp_dir);
	FILE *f = fopen(path, "w");
	if (!f)
		exit(1);
	write_crl(f, &ca, NULL, 0);
	fputs(junk, f);
	fclose(f);
	cfg.crl_path = path;
	expect_load_error(-EIO, NULL);
	snprintf(want, sizeof(want), "%s: bad PEM CRL (", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	/* the good one alone loads */
	f = fopen(path, "w");
	if (!f)
		exit(1);
	write_crl(f, &ca, NULL, 0);
	fclose(f);
	tern_tls_identities_unref(load_ok());
	made_free(&ca);
}

/* --check and start-up lines: the certificate's names and subject are
 * its maker's bytes, escaped (spaces too) so each stays one key=value
 * word and the line one line. */
static void test_describe_escapes(void)
{
	struct made odd;
	char line[TERN_CERT_LINE_MAX];

	make_cert(&odd, "Odd \"Org\"", "EC", "new\nline", "DNS:Q\"uote\\x.test,DNS:tab\there.test");
	const char *paths[] = {odd.pem};
	cfg_certs(1, paths);
	struct tern_tls_identities *ids = load_ok();
	tern_tls_identities_describe(ids, 0, line, sizeof(line));
	CHECK(strstr(line, " names=q\\x22uote\\x5Cx.test,tab\\x09here.test subject=/CN=new\\x0Aline/"
			   "O=Odd\\x20\\x22Org\\x22 key=EC ") != NULL);
	CHECK(strchr(line, '\n') == NULL && strchr(line, '\t') == NULL);
	tern_tls_identities_unref(ids);
	made_free(&odd);
}

int main(void)
{
	tls_ctx_fixture_start("tls_ctx_identities_test");
	test_self_signed();
	test_cert_info();
	test_load_errors();
	test_client_ca_errors();
	test_crl_errors();
	test_describe_escapes();
	tls_ctx_fixture_end();
	return check_summary();
}
