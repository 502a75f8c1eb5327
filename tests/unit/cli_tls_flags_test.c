/* Unit tests for proxy/cli.c, the flags of issue 15 with their values,
 * defaults and exact error messages: --strict-sni, --crl (which needs
 * --client-ca) and --tcp-keepalive (whole seconds, 0 for off, at most
 * TCP_KEEPIDLE's 32767s). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "cli_fixture.h"

#define KEEPALIVE_EXPECTED \
	"(expected 0 (off) or a whole number of seconds from 1s to 32767s, such as 60s, 5m or 2h)"

/* --strict-sni: a switch, off by default. */
static void test_strict_sni(void)
{
	EXPECT_RUN("-w", "1");
	CHECK(!cfg.strict_sni);
	EXPECT_RUN("--strict-sni");
	CHECK(cfg.strict_sni);
	EXPECT_RUN("--strict-sni", "--strict-sni");
	CHECK(cfg.strict_sni);
	EXPECT_ERR("--strict-sni: invalid value 'on' (expected no value)", "--strict-sni=on");
	EXPECT_ERR("--strict-sni: invalid value '' (expected no value)", "--strict-sni=");
	/* No argument: what follows is an operand, not its value. */
	EXPECT_ERR("unexpected argument 'on' (see tern --help)", "--strict-sni", "on");
	CHECK(strstr(tern_cli_usage(), "      --strict-sni ") != NULL);
}

/* --crl FILE: a path (OpenSSL reads it later), the last one wins, and only
 * with --client-ca: with nothing verified it would check nothing. */
static void test_crl(void)
{
	EXPECT_RUN("-w", "1");
	CHECK(cfg.crl_path == NULL);
	EXPECT_RUN("--client-ca", "ca.pem", "--crl", "revoked.pem");
	CHECK_EQ_STR(cfg.crl_path, "revoked.pem");
	EXPECT_RUN("--crl", "a.pem", "--client-ca", "ca.pem", "--verify-client", "require", "--crl=b.pem");
	CHECK_EQ_STR(cfg.crl_path, "b.pem");
	CHECK_EQ_INT(cfg.verify_client, TERN_VERIFY_CLIENT_REQUIRE);
	EXPECT_ERR("--crl: invalid value 'revoked.pem' (expected a --client-ca whose client certificates it "
		   "revokes)",
		   "--crl", "revoked.pem");
	EXPECT_ERR("--crl: invalid value 'revoked.pem' (expected a --client-ca whose client certificates it "
		   "revokes)",
		   "--crl", "revoked.pem", "--verify-client", "none");
	EXPECT_ERR("--crl: invalid value '' (expected a non-empty path to a PEM file of CRLs)", "--client-ca",
		   "ca.pem", "--crl", "");
	EXPECT_ERR("--crl: missing value (expected a non-empty path to a PEM file of CRLs)", "--crl");
	CHECK(strstr(tern_cli_usage(), "      --crl FILE ") != NULL);
}

/* --tcp-keepalive DUR: 0 or whole seconds up to 32767s, 0 by default. */
static void test_tcp_keepalive(void)
{
	EXPECT_RUN("-w", "1");
	CHECK_EQ_UINT(cfg.tcp_keepalive_ms, 0);
	EXPECT_RUN("--tcp-keepalive", "60s");
	CHECK_EQ_UINT(cfg.tcp_keepalive_ms, 60000);
	EXPECT_RUN("--tcp-keepalive", "5m");
	CHECK_EQ_UINT(cfg.tcp_keepalive_ms, 300000);
	EXPECT_RUN("--tcp-keepalive=2h");
	CHECK_EQ_UINT(cfg.tcp_keepalive_ms, 7200000);
	EXPECT_RUN("--tcp-keepalive", "1s");
	CHECK_EQ_UINT(cfg.tcp_keepalive_ms, 1000);
	EXPECT_RUN("--tcp-keepalive", "32767s");
	CHECK_EQ_UINT(cfg.tcp_keepalive_ms, 32767000);
	/* 2000ms is two whole seconds, however it is written */
	EXPECT_RUN("--tcp-keepalive", "2000ms");
	CHECK_EQ_UINT(cfg.tcp_keepalive_ms, 2000);
	EXPECT_RUN("--tcp-keepalive", "30s", "--tcp-keepalive", "0");
	CHECK_EQ_UINT(cfg.tcp_keepalive_ms, 0);
	EXPECT_RUN("--tcp-keepalive", "0s");
	CHECK_EQ_UINT(cfg.tcp_keepalive_ms, 0);

	EXPECT_ERR("--tcp-keepalive: invalid value '60' " KEEPALIVE_EXPECTED, "--tcp-keepalive", "60");
	EXPECT_ERR("--tcp-keepalive: invalid value '1500ms' " KEEPALIVE_EXPECTED, "--tcp-keepalive", "1500ms");
	EXPECT_ERR("--tcp-keepalive: invalid value '500ms' " KEEPALIVE_EXPECTED, "--tcp-keepalive", "500ms");
	EXPECT_ERR("--tcp-keepalive: invalid value '32768s' " KEEPALIVE_EXPECTED, "--tcp-keepalive", "32768s");
	EXPECT_ERR("--tcp-keepalive: invalid value '10h' " KEEPALIVE_EXPECTED, "--tcp-keepalive", "10h");
	EXPECT_ERR("--tcp-keepalive: invalid value '-1s' " KEEPALIVE_EXPECTED, "--tcp-keepalive", "-1s");
	EXPECT_ERR("--tcp-keepalive: invalid value 'off' " KEEPALIVE_EXPECTED, "--tcp-keepalive", "off");
	EXPECT_ERR("--tcp-keepalive: invalid value '' " KEEPALIVE_EXPECTED, "--tcp-keepalive", "");
	EXPECT_ERR("--tcp-keepalive: missing value " KEEPALIVE_EXPECTED, "--tcp-keepalive");
	CHECK(strstr(tern_cli_usage(), "      --tcp-keepalive DUR ") != NULL);
}

int main(void)
{
	test_strict_sni();
	test_crl();
	test_tcp_keepalive();
	return check_summary();
}
