/* Unit tests for proxy/cli.c, the flags of one feature each, with their
 * values, repeats and exact error messages: --cert/--key/--ocsp,
 * --alpn and --session-cache, --client-ca and --verify-client,
 * --proxy-protocol, the ticket flags and --control, --user and
 * --metrics. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "cli_fixture.h"

/* --proxy-protocol off|v1|v2, off by default; anything else refused. */
static void test_proxy_protocol(void)
{
	tern_config_init(&cfg);
	CHECK_EQ_INT(cfg.proxy_protocol, TERN_PROXY_OFF);
	EXPECT_RUN("-w", "1");
	CHECK_EQ_INT(cfg.proxy_protocol, TERN_PROXY_OFF);
	EXPECT_RUN("--proxy-protocol", "v1");
	CHECK_EQ_INT(cfg.proxy_protocol, TERN_PROXY_V1);
	EXPECT_RUN("--proxy-protocol=v2");
	CHECK_EQ_INT(cfg.proxy_protocol, TERN_PROXY_V2);
	EXPECT_RUN("--proxy-protocol", "v2", "--proxy-protocol", "off");
	CHECK_EQ_INT(cfg.proxy_protocol, TERN_PROXY_OFF);
	EXPECT_ERR("--proxy-protocol: invalid value 'x' (expected off, v1 or v2)", "--proxy-protocol", "x");
	EXPECT_ERR("--proxy-protocol: invalid value 'V2' (expected off, v1 or v2)", "--proxy-protocol", "V2");
	EXPECT_ERR("--proxy-protocol: invalid value '2' (expected off, v1 or v2)", "--proxy-protocol", "2");
	EXPECT_ERR("--proxy-protocol: invalid value '' (expected off, v1 or v2)", "--proxy-protocol", "");
	EXPECT_ERR("--proxy-protocol: invalid value 'v1 ' (expected off, v1 or v2)", "--proxy-protocol", "v1 ");
	EXPECT_ERR("--proxy-protocol: missing value (expected off, v1 or v2)", "--proxy-protocol");
	CHECK(strstr(tern_cli_usage(), "--proxy-protocol V") != NULL);
}

static void test_cert_and_key(void)
{
	EXPECT_ERR("--key: invalid value 'k.pem' (expected to follow a --cert)", "--key", "k.pem");
	EXPECT_ERR("--key: invalid value 'k.pem' (expected to follow a --cert)", "--key", "k.pem", "--cert",
		   "c.pem");
	EXPECT_ERR("--key: invalid value 'x' (expected one --key per --cert)", "--cert", "c.pem", "--key", "k.pem",
		   "--key", "x");
	EXPECT_ERR("--ocsp: invalid value 'r.der' (expected to follow a --cert)", "--ocsp", "r.der");
	EXPECT_ERR("--ocsp: invalid value 'r.der' (expected to follow a --cert)", "--ocsp", "r.der", "--cert",
		   "c.pem");
	EXPECT_ERR("--ocsp: invalid value 'b.der' (expected one --ocsp per --cert)", "--cert", "c.pem", "--ocsp",
		   "a.der", "--key", "k.pem", "--ocsp", "b.der");
	EXPECT_ERR("--ocsp: invalid value '' (expected a non-empty path to a DER OCSP response)", "--cert", "c.pem",
		   "--ocsp", "");
	/* A second --cert opens a new entry: its --key and --ocsp are its own. */
	EXPECT_ERR("--key: invalid value 'y' (expected one --key per --cert)", "--cert", "a.pem", "--cert", "b.pem",
		   "--key", "x", "--key", "y");

	/* Several certificates, each with what follows it, in order. */
	EXPECT_RUN("--cert", "a.pem", "--ocsp", "a.der", "-c", "b.pem", "--key", "b.key", "--cert", "c.pem",
		   "--key", "c.key", "--ocsp", "c.der", "--cert", "a.pem");
	CHECK_EQ_UINT(cfg.num_certs, 4);
	CHECK_EQ_STR(cfg.certs[0].cert_path, "a.pem");
	CHECK(cfg.certs[0].key_path == NULL);
	CHECK_EQ_STR(cfg.certs[0].ocsp_path, "a.der");
	CHECK_EQ_STR(cfg.certs[1].cert_path, "b.pem");
	CHECK_EQ_STR(cfg.certs[1].key_path, "b.key");
	CHECK(cfg.certs[1].ocsp_path == NULL);
	CHECK_EQ_STR(cfg.certs[2].cert_path, "c.pem");
	CHECK_EQ_STR(cfg.certs[2].key_path, "c.key");
	CHECK_EQ_STR(cfg.certs[2].ocsp_path, "c.der");
	CHECK_EQ_STR(cfg.certs[3].cert_path, "a.pem");
	CHECK(cfg.certs[3].key_path == NULL && cfg.certs[3].ocsp_path == NULL);

	/* At most TERN_MAX_CERTS. */
	static char values[TERN_MAX_CERTS + 1][16];
	char *argv[2 * (TERN_MAX_CERTS + 1) + 2];
	int argc = 0;
	argv[argc++] = "tern";
	for (int i = 0; i < TERN_MAX_CERTS; i++) {
		snprintf(values[i], sizeof(values[i]), "c%d.pem", i + 1);
		argv[argc++] = "--cert";
		argv[argc++] = values[i];
	}
	argv[argc] = NULL;
	CHECK_EQ_INT(parse(argc, argv), TERN_CLI_RUN);
	CHECK_EQ_UINT(cfg.num_certs, TERN_MAX_CERTS);
	CHECK_EQ_STR(cfg.certs[TERN_MAX_CERTS - 1].cert_path, "c64.pem");
	snprintf(values[TERN_MAX_CERTS], sizeof(values[0]), "c%d.pem", TERN_MAX_CERTS + 1);
	argv[argc++] = "-c";
	argv[argc++] = values[TERN_MAX_CERTS];
	argv[argc] = NULL;
	CHECK_EQ_INT(parse(argc, argv), -EINVAL);
	CHECK_EQ_STR(err, "--cert: invalid value 'c65.pem' (expected at most 64 certificates)");
	EXPECT_ERR("--cert: invalid value '' (expected a non-empty path to a PEM file)", "--cert", "");
	EXPECT_ERR("--cert: invalid value '' (expected a non-empty path to a PEM file)", "-c", "");
	EXPECT_ERR("--key: invalid value '' (expected a non-empty path to a PEM file)", "--cert", "c.pem", "--key",
		   "");
}

static void test_alpn_and_session_cache(void)
{
	EXPECT_RUN("--alpn", "http/1.1");
	CHECK_EQ_STR(cfg.alpn, "http/1.1");
	CHECK_EQ_UINT(cfg.alpn_wire_len, 9);
	CHECK(memcmp(cfg.alpn_wire, "\x08http/1.1", 9) == 0);
	/* the last --alpn counts, like every single-valued flag */
	EXPECT_RUN("--alpn", "x", "--alpn", "h2");
	CHECK_EQ_STR(cfg.alpn, "h2");
	CHECK_EQ_UINT(cfg.alpn_wire_len, 3);
#define ALPN_EXPECTED                                                                            \
	"(expected a comma list of protocols such as h2,http/1.1, each 1 to 255 printable bytes, at " \
	"most 511 bytes in all)"
	EXPECT_ERR("--alpn: invalid value '' " ALPN_EXPECTED, "--alpn", "");
	EXPECT_ERR("--alpn: invalid value 'h2,' " ALPN_EXPECTED, "--alpn", "h2,");
	EXPECT_ERR("--alpn: invalid value 'h2,,http/1.1' " ALPN_EXPECTED, "--alpn", "h2,,http/1.1");
	EXPECT_ERR("--alpn: invalid value 'h2, http/1.1' " ALPN_EXPECTED, "--alpn", "h2, http/1.1");
	EXPECT_ERR("--alpn: invalid value 'h2\\x0a' " ALPN_EXPECTED, "--alpn", "h2\n");
	static char long_proto[300];
	memset(long_proto, 'p', 256);
	char want[512];
	snprintf(want, sizeof(want), "--alpn: invalid value '%.128s...' " ALPN_EXPECTED, long_proto);
	EXPECT_ERR(want, "--alpn", long_proto);
	static char long_list[600];
	memset(long_list, 'x', 512);
	for (int i = 100; i < 512; i += 100)
		long_list[i] = ',';
	CHECK_EQ_INT(PARSE("--alpn", long_list), -EINVAL);
	CHECK(strncmp(err, "--alpn: invalid value 'xxx", 26) == 0);
	long_list[511] = '\0';
	EXPECT_RUN("--alpn", long_list);
	CHECK_EQ_UINT(cfg.alpn_wire_len, 512);
#undef ALPN_EXPECTED

	EXPECT_RUN("--session-cache", "0");
	CHECK_EQ_UINT(cfg.session_cache, 0);
	EXPECT_RUN("--session-cache", "10000000");
	CHECK_EQ_UINT(cfg.session_cache, 10000000);
	EXPECT_ERR("--session-cache: invalid value '10000001' (expected an integer from 0 to 10000000)",
		   "--session-cache", "10000001");
	EXPECT_ERR("--session-cache: invalid value '-1' (expected an integer from 0 to 10000000)",
		   "--session-cache", "-1");
	EXPECT_ERR("--session-cache: invalid value '20k' (expected an integer from 0 to 10000000)",
		   "--session-cache", "20k");
	EXPECT_ERR("--session-cache: missing value (expected an integer from 0 to 10000000)", "--session-cache");
}

static void test_client_auth(void)
{
	EXPECT_RUN("--client-ca", "ca.pem");
	CHECK_EQ_STR(cfg.client_ca_path, "ca.pem");
	CHECK_EQ_INT(cfg.verify_client, TERN_VERIFY_CLIENT_NONE); /* post-handshake auth only */
	EXPECT_RUN("--client-ca", "ca.pem", "--verify-client", "require");
	CHECK_EQ_INT(cfg.verify_client, TERN_VERIFY_CLIENT_REQUIRE);
	/* either order */
	EXPECT_RUN("--verify-client", "optional", "--client-ca", "ca.pem");
	CHECK_EQ_INT(cfg.verify_client, TERN_VERIFY_CLIENT_OPTIONAL);
	EXPECT_RUN("--verify-client", "none");
	CHECK_EQ_INT(cfg.verify_client, TERN_VERIFY_CLIENT_NONE);
	CHECK(cfg.client_ca_path == NULL);
	/* the last one counts */
	EXPECT_RUN("--client-ca", "ca.pem", "--verify-client", "require", "--verify-client", "none");
	CHECK_EQ_INT(cfg.verify_client, TERN_VERIFY_CLIENT_NONE);

	EXPECT_ERR("--verify-client: invalid value 'require' (expected none, or a --client-ca to verify client "
		   "certificates against)",
		   "--verify-client", "require");
	EXPECT_ERR("--verify-client: invalid value 'optional' (expected none, or a --client-ca to verify client "
		   "certificates against)",
		   "-w", "2", "--verify-client", "optional");
	EXPECT_ERR("--verify-client: invalid value 'yes' (expected none, optional or require)", "--client-ca",
		   "ca.pem", "--verify-client", "yes");
	EXPECT_ERR("--verify-client: invalid value 'Require' (expected none, optional or require)",
		   "--verify-client", "Require");
	EXPECT_ERR("--verify-client: missing value (expected none, optional or require)", "--verify-client");
	EXPECT_ERR("--client-ca: invalid value '' (expected a non-empty path to a PEM file of CA certificates)",
		   "--client-ca", "");
}

static void test_tickets_and_control(void)
{
	/* Bounds and forms accepted. */
	EXPECT_RUN("--num-tickets", "0", "--ticket-refresh", "0", "--ticket-flush-delay", "0");
	CHECK_EQ_UINT(cfg.num_tickets, 0);
	CHECK_EQ_UINT(cfg.ticket_refresh_ms, 0);
	CHECK_EQ_UINT(cfg.ticket_flush_delay_ms, 0);
	EXPECT_RUN("--num-tickets", "16", "--ticket-refresh", "0s", "--ticket-flush-delay", "0ms",
		   "--ticket-rotate", "1ms");
	CHECK_EQ_UINT(cfg.num_tickets, 16);
	CHECK_EQ_UINT(cfg.ticket_refresh_ms, 0);
	CHECK_EQ_UINT(cfg.ticket_flush_delay_ms, 0);
	CHECK_EQ_UINT(cfg.ticket_rotate_ms, 1);
	EXPECT_RUN("--ticket-rotate", "720h", "--ticket-refresh", "720h", "--ticket-flush-delay", "720h");
	CHECK_EQ_UINT(cfg.ticket_rotate_ms, 720ull * 3600 * 1000);
	CHECK_EQ_UINT(cfg.ticket_refresh_ms, 720ull * 3600 * 1000);
	CHECK_EQ_UINT(cfg.ticket_flush_delay_ms, 720ull * 3600 * 1000);
	EXPECT_RUN("--ticket-rotate=5m", "--ticket-refresh=30s", "--ticket-flush-delay=1s", "--num-tickets=3",
		   "--control=rel.sock");
	CHECK_EQ_UINT(cfg.ticket_rotate_ms, 300000);
	CHECK_EQ_UINT(cfg.ticket_refresh_ms, 30000);
	CHECK_EQ_UINT(cfg.ticket_flush_delay_ms, 1000);
	CHECK_EQ_UINT(cfg.num_tickets, 3);
	CHECK_EQ_STR(cfg.control_path, "rel.sock");
	/* Repeated: the last one wins. */
	EXPECT_RUN("--num-tickets", "1", "--num-tickets", "4", "--control", "/a", "--control", "/b",
		   "--ticket-keys", "k1", "--ticket-keys", "k2");
	CHECK_EQ_UINT(cfg.num_tickets, 4);
	CHECK_EQ_STR(cfg.control_path, "/b");
	CHECK_EQ_STR(cfg.ticket_keys_path, "k2");
	/* An unambiguous prefix. */
	EXPECT_RUN("--num", "7", "--ticket-k", "k", "--contr", "/c");
	CHECK_EQ_UINT(cfg.num_tickets, 7);
	CHECK_EQ_STR(cfg.ticket_keys_path, "k");
	CHECK_EQ_STR(cfg.control_path, "/c");

	EXPECT_ERR("--num-tickets: invalid value 'x' (expected an integer from 0 to 16)", "--num-tickets", "x");
	EXPECT_ERR("--num-tickets: invalid value '17' (expected an integer from 0 to 16)", "--num-tickets", "17");
	EXPECT_ERR("--num-tickets: invalid value '-1' (expected an integer from 0 to 16)", "--num-tickets", "-1");
	EXPECT_ERR("--num-tickets: invalid value '' (expected an integer from 0 to 16)", "--num-tickets", "");
	EXPECT_ERR("--num-tickets: invalid value '2k' (expected an integer from 0 to 16)", "--num-tickets", "2k");

	EXPECT_ERR("--ticket-keys: invalid value '' (expected a non-empty path to a ticket key file)",
		   "--ticket-keys", "");

	EXPECT_ERR("--ticket-rotate: invalid value '0' (expected a duration with a unit such as 250ms, 30s, 5m "
		   "or 2h)",
		   "--ticket-rotate", "0");
	EXPECT_ERR("--ticket-rotate: invalid value '60' (expected a duration with a unit such as 250ms, 30s, 5m "
		   "or 2h)",
		   "--ticket-rotate", "60");
	EXPECT_ERR("--ticket-rotate: invalid value '0s' (expected a duration from 1ms to 720h)", "--ticket-rotate",
		   "0s");
	EXPECT_ERR("--ticket-rotate: invalid value '721h' (expected a duration from 1ms to 720h)",
		   "--ticket-rotate", "721h");

	EXPECT_ERR("--ticket-refresh: invalid value '10' (expected 0 (off) or a duration with a unit such as "
		   "250ms, 30s, 5m or 2h)",
		   "--ticket-refresh", "10");
	EXPECT_ERR("--ticket-refresh: invalid value 'off' (expected 0 (off) or a duration with a unit such as "
		   "250ms, 30s, 5m or 2h)",
		   "--ticket-refresh", "off");
	EXPECT_ERR("--ticket-refresh: invalid value '' (expected 0 (off) or a duration with a unit such as "
		   "250ms, 30s, 5m or 2h)",
		   "--ticket-refresh", "");
	EXPECT_ERR("--ticket-refresh: invalid value '721h' (expected a duration from 0 to 720h)",
		   "--ticket-refresh", "721h");

	EXPECT_ERR("--ticket-flush-delay: invalid value '200' (expected 0 or a duration with a unit such as "
		   "250ms, 30s, 5m or 2h)",
		   "--ticket-flush-delay", "200");
	EXPECT_ERR("--ticket-flush-delay: invalid value '-0' (expected 0 or a duration with a unit such as "
		   "250ms, 30s, 5m or 2h)",
		   "--ticket-flush-delay", "-0");
	EXPECT_ERR("--ticket-flush-delay: invalid value '99999999999999999999ms' (expected a duration from 0 to "
		   "720h)",
		   "--ticket-flush-delay", "99999999999999999999ms");

	EXPECT_ERR("--control: invalid value '' (expected a non-empty path of at most 107 bytes for the UNIX "
		   "control socket)",
		   "--control", "");
	/* 107 bytes fit sun_path with its NUL; 108 do not. */
	char path[120], want[TERN_CLI_ERR_MAX];
	memset(path, 'p', 108);
	path[108] = '\0';
	snprintf(want, sizeof(want),
		 "--control: invalid value '%s' (expected a non-empty path of at most 107 bytes for the UNIX "
		 "control socket)",
		 path);
	EXPECT_ERR(want, "--control", path);
	path[107] = '\0';
	EXPECT_RUN("--control", path);
	CHECK_EQ_UINT(strlen(cfg.control_path), 107);

	/* A key file with a rotation period: tern rotates the file itself,
	 * in either order, also with the default period typed out. */
	EXPECT_RUN("--ticket-keys", "keys", "--ticket-rotate", "5m");
	CHECK(cfg.ticket_rotate_file);
	CHECK_EQ_UINT(cfg.ticket_rotate_ms, 300000);
	EXPECT_RUN("--ticket-rotate", "1h", "--ticket-rotate", "5m", "--ticket-keys", "keys");
	CHECK(cfg.ticket_rotate_file);
	EXPECT_RUN("--ticket-rotate=1h", "--ticket-keys=keys");
	CHECK(cfg.ticket_rotate_file);
	/* A bad period is reported as such first. */
	EXPECT_ERR("--ticket-rotate: invalid value '0s' (expected a duration from 1ms to 720h)", "--ticket-keys",
		   "keys", "--ticket-rotate", "0s");
	/* Either alone: a key file alone is never rotated by tern. */
	EXPECT_RUN("--ticket-keys", "keys");
	CHECK_EQ_STR(cfg.ticket_keys_path, "keys");
	CHECK(!cfg.ticket_rotate_file);
	EXPECT_RUN("--ticket-rotate", "10m");
	CHECK(cfg.ticket_keys_path == NULL);
	CHECK_EQ_UINT(cfg.ticket_rotate_ms, 600000);
}

/* --user: a name the user database knows (looked up at parse time, so a
 * typo is exit 2); the switch itself is privs_test's. nobody and root
 * exist on every Debian system. */
static void test_user(void)
{
	EXPECT_RUN("-w", "1");
	CHECK(cfg.user == NULL);
	EXPECT_RUN("--user", "nobody");
	CHECK_EQ_STR(cfg.user, "nobody");
	EXPECT_RUN("--user=root");
	CHECK_EQ_STR(cfg.user, "root");
	EXPECT_RUN("--user", "root", "--user", "nobody");
	CHECK_EQ_STR(cfg.user, "nobody");
	EXPECT_ERR("--user: invalid value 'tern-no-such-user' (expected the name of an existing user)",
		   "--user", "tern-no-such-user");
	EXPECT_ERR("--user: invalid value '' (expected the name of an existing user)", "--user", "");
	EXPECT_ERR("--user: invalid value 'no\\x0abody' (expected the name of an existing user)", "--user",
		   "no\nbody");
	EXPECT_ERR("--user: missing value (expected the name of an existing user)", "--user");
	EXPECT_ERR("--user: missing value (expected the name of an existing user)", "-w", "2", "--user");
	CHECK(strstr(tern_cli_usage(), "needs root [stay]") != NULL);
}

/* --metrics HOST:PORT: one TCP endpoint, off by default, never unix:. */
static void test_metrics(void)
{
	EXPECT_RUN("-w", "1");
	CHECK(!cfg.metrics_enabled);
	EXPECT_RUN("--metrics", "127.0.0.1:9100");
	CHECK(cfg.metrics_enabled);
	CHECK_EQ_STR(cfg.metrics_addr.text, "127.0.0.1:9100");
	check_inet(&cfg.metrics_addr, AF_INET, "127.0.0.1", 9100);
	/* Beside the listening address, not instead of it. */
	CHECK_EQ_UINT(cfg.num_listen, 1);
	CHECK_EQ_STR(cfg.listen[0].text, TERN_DEFAULT_LISTEN);
	EXPECT_RUN("--metrics=[::1]:9100");
	check_inet(&cfg.metrics_addr, AF_INET6, "::1", 9100);
	EXPECT_RUN("--metrics", "*:9100");
	CHECK(cfg.metrics_enabled);
	check_inet(&cfg.metrics_addr, AF_INET, "0.0.0.0", 9100);
	EXPECT_RUN("--metrics", "localhost:9100");
	CHECK(cfg.metrics_enabled);
	/* Repeated: the last one wins. */
	EXPECT_RUN("--metrics", "127.0.0.1:1", "--metrics", "127.0.0.1:2");
	check_inet(&cfg.metrics_addr, AF_INET, "127.0.0.1", 2);
	CHECK_EQ_STR(cfg.metrics_addr.text, "127.0.0.1:2");

	EXPECT_ERR("--metrics: invalid value 'x' (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--metrics", "x");
	EXPECT_ERR("--metrics: invalid value 'unix:/run/tern/metrics.sock' (expected HOST:PORT, [IPV6]:PORT or "
		   "*:PORT)",
		   "--metrics", "unix:/run/tern/metrics.sock");
	EXPECT_ERR("--metrics: invalid value '9100' (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--metrics", "9100");
	EXPECT_ERR("--metrics: invalid value '' (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--metrics", "");
	EXPECT_ERR("--metrics: invalid value '*:0' (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--metrics", "*:0");
	EXPECT_ERR("--metrics: invalid value '127.0.0.1:65536' (expected HOST:PORT, [IPV6]:PORT or *:PORT)",
		   "--metrics", "127.0.0.1:65536");
	EXPECT_ERR("--metrics: invalid value '[::1]' (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--metrics",
		   "[::1]");
	EXPECT_ERR("--metrics: invalid value 'nosuch.invalid:9100' (expected HOST:PORT, [IPV6]:PORT or *:PORT; "
		   "cannot resolve nosuch.invalid)",
		   "--metrics", "nosuch.invalid:9100");
	EXPECT_ERR("--metrics: missing value (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--metrics");
	/* A bad value after a good one is still refused. */
	EXPECT_ERR("--metrics: invalid value 'x' (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--metrics",
		   "127.0.0.1:9100", "--metrics", "x");
	CHECK(strstr(tern_cli_usage(), "--metrics ADDR") != NULL);
}

/* --backend-check, --backend-retry, --resolve-interval: durations, 0
 * allowed (off / never skip / at start only), defaults 0, 10s, 30s. */
static void test_backend_health_flags(void)
{
	EXPECT_RUN("--workers", "1");
	CHECK_EQ_UINT(cfg.backend_check_ms, 0);
	CHECK_EQ_UINT(cfg.backend_retry_ms, 10000);
	CHECK_EQ_UINT(cfg.resolve_interval_ms, 30000);
	EXPECT_RUN("--backend-check", "200ms", "--backend-retry", "2s", "--resolve-interval", "5m");
	CHECK_EQ_UINT(cfg.backend_check_ms, 200);
	CHECK_EQ_UINT(cfg.backend_retry_ms, 2000);
	CHECK_EQ_UINT(cfg.resolve_interval_ms, 300000);
	EXPECT_RUN("--backend-check", "0", "--backend-retry", "0", "--resolve-interval", "0s");
	CHECK_EQ_UINT(cfg.backend_check_ms, 0);
	CHECK_EQ_UINT(cfg.backend_retry_ms, 0);
	CHECK_EQ_UINT(cfg.resolve_interval_ms, 0);
	EXPECT_ERR("--backend-check: invalid value '5' (expected 0 (off) or a duration with a unit such as "
		   "250ms, 30s, 5m or 2h)",
		   "--backend-check", "5");
	EXPECT_ERR("--backend-retry: invalid value '10' (expected 0 or a duration with a unit such as 250ms, "
		   "30s, 5m or 2h)",
		   "--backend-retry", "10");
	EXPECT_ERR("--resolve-interval: invalid value 'soon' (expected 0 (off) or a duration with a unit "
		   "such as 250ms, 30s, 5m or 2h)",
		   "--resolve-interval", "soon");
	EXPECT_ERR("--resolve-interval: missing value (expected 0 (off) or a duration with a unit such as "
		   "250ms, 30s, 5m or 2h)",
		   "--resolve-interval");
}

/* The expected text of --accept-proxy-from, and what --accept-proxy
 * alone says. */
#define EXPECT_FROM                                                                               \
	"(expected an address range such as 10.0.0.0/8, ::1/128 or 0.0.0.0/0 (no address bits set " \
	"past the prefix), or one address)"
#define NEEDS_FROM                                                                               \
	"(expected --accept-proxy-from too: the sources allowed to send the header, 0.0.0.0/0 and " \
	"::/0 for all)"

/* --accept-proxy off|v1|v2|any with --accept-proxy-from CIDR (repeatable,
 * up to 64); the first alone is refused, naming the second. */
static void test_accept_proxy(void)
{
	char range[64];
	char *argv[2 + 2 * (TERN_MAX_ACCEPT_PROXY_FROM + 1) + 1];
	static char ranges[TERN_MAX_ACCEPT_PROXY_FROM + 1][32];

	EXPECT_RUN("--listen", "127.0.0.1:8443");
	CHECK_EQ_INT(cfg.accept_proxy, TERN_ACCEPT_PROXY_OFF);
	CHECK_EQ_UINT(cfg.num_accept_proxy_from, 0);
	EXPECT_RUN("--accept-proxy", "v1", "--accept-proxy-from", "10.0.0.0/8");
	CHECK_EQ_INT(cfg.accept_proxy, TERN_ACCEPT_PROXY_V1);
	CHECK_EQ_UINT(cfg.num_accept_proxy_from, 1);
	tern_cidr_format(&cfg.accept_proxy_from[0], range, sizeof(range));
	CHECK_EQ_STR(range, "10.0.0.0/8");
	EXPECT_RUN("--accept-proxy-from=::1", "--accept-proxy=v2", "--accept-proxy-from", "127.0.0.2");
	CHECK_EQ_INT(cfg.accept_proxy, TERN_ACCEPT_PROXY_V2);
	CHECK_EQ_UINT(cfg.num_accept_proxy_from, 2);
	tern_cidr_format(&cfg.accept_proxy_from[0], range, sizeof(range));
	CHECK_EQ_STR(range, "::1/128");
	tern_cidr_format(&cfg.accept_proxy_from[1], range, sizeof(range));
	CHECK_EQ_STR(range, "127.0.0.2/32");
	EXPECT_RUN("--accept-proxy", "any", "--accept-proxy-from", "0.0.0.0/0", "--accept-proxy-from", "::/0");
	CHECK_EQ_INT(cfg.accept_proxy, TERN_ACCEPT_PROXY_ANY);
	/* The last --accept-proxy counts; off needs no range, and ranges
	 * without it are kept for nothing. */
	EXPECT_RUN("--accept-proxy", "v2", "--accept-proxy", "off");
	CHECK_EQ_INT(cfg.accept_proxy, TERN_ACCEPT_PROXY_OFF);
	EXPECT_RUN("--accept-proxy-from", "10.0.0.0/8");
	CHECK_EQ_INT(cfg.accept_proxy, TERN_ACCEPT_PROXY_OFF);

	EXPECT_ERR("--accept-proxy: invalid value 'v2' " NEEDS_FROM, "--accept-proxy", "v2");
	EXPECT_ERR("--accept-proxy: invalid value 'v1' " NEEDS_FROM, "--accept-proxy", "v1");
	EXPECT_ERR("--accept-proxy: invalid value 'any' " NEEDS_FROM, "--accept-proxy", "any",
		   "--listen", "127.0.0.1:8443");
	EXPECT_ERR("--accept-proxy: invalid value 'x' (expected off, v1, v2 or any)", "--accept-proxy", "x");
	EXPECT_ERR("--accept-proxy: invalid value 'V2' (expected off, v1, v2 or any)", "--accept-proxy", "V2");
	EXPECT_ERR("--accept-proxy: invalid value 'on' (expected off, v1, v2 or any)", "--accept-proxy", "on");
	EXPECT_ERR("--accept-proxy: invalid value '' (expected off, v1, v2 or any)", "--accept-proxy", "");
	EXPECT_ERR("--accept-proxy: missing value (expected off, v1, v2 or any)", "--accept-proxy");

	EXPECT_ERR("--accept-proxy-from: invalid value '10.0.0.0/33' " EXPECT_FROM, "--accept-proxy", "v2",
		   "--accept-proxy-from", "10.0.0.0/33");
	EXPECT_ERR("--accept-proxy-from: invalid value '1.2.3.4/' " EXPECT_FROM, "--accept-proxy-from",
		   "1.2.3.4/");
	EXPECT_ERR("--accept-proxy-from: invalid value '10.0.0.1/8' " EXPECT_FROM, "--accept-proxy-from",
		   "10.0.0.1/8");
	EXPECT_ERR("--accept-proxy-from: invalid value '::/129' " EXPECT_FROM, "--accept-proxy-from", "::/129");
	EXPECT_ERR("--accept-proxy-from: invalid value '[::1]/128' " EXPECT_FROM, "--accept-proxy-from",
		   "[::1]/128");
	EXPECT_ERR("--accept-proxy-from: invalid value 'localhost' " EXPECT_FROM, "--accept-proxy-from",
		   "localhost");
	EXPECT_ERR("--accept-proxy-from: invalid value '' " EXPECT_FROM, "--accept-proxy-from", "");
	EXPECT_ERR("--accept-proxy-from: invalid value '10.0.0.0/8,10.1.0.0/16' " EXPECT_FROM,
		   "--accept-proxy-from", "10.0.0.0/8,10.1.0.0/16");
	EXPECT_ERR("--accept-proxy-from: invalid value '10.0.0.0/8\\x0a' " EXPECT_FROM, "--accept-proxy-from",
		   "10.0.0.0/8\n");
	EXPECT_ERR("--accept-proxy-from: missing value " EXPECT_FROM, "--accept-proxy-from");

	/* 64 ranges, and not one more. */
	int argc = 0;
	argv[argc++] = "tern";
	argv[argc++] = "--accept-proxy=any";
	for (unsigned i = 0; i <= TERN_MAX_ACCEPT_PROXY_FROM; i++) {
		snprintf(ranges[i], sizeof(ranges[i]), "10.%u.0.0/16", i);
		argv[argc++] = "--accept-proxy-from";
		argv[argc++] = ranges[i];
	}
	argv[argc] = NULL;
	CHECK_EQ_INT(parse(argc - 2, argv), TERN_CLI_RUN);
	CHECK_EQ_UINT(cfg.num_accept_proxy_from, TERN_MAX_ACCEPT_PROXY_FROM);
	argv[argc] = NULL;
	CHECK_EQ_INT(parse(argc, argv), -EINVAL);
	CHECK_EQ_STR(err, "--accept-proxy-from: invalid value '10.64.0.0/16' (expected at most 64 ranges)");

	CHECK(strstr(tern_cli_usage(), "--accept-proxy V ") != NULL);
	CHECK(strstr(tern_cli_usage(), "--accept-proxy-from CIDR ") != NULL);
}

int main(void)
{
	test_backend_health_flags();
	test_proxy_protocol();
	test_accept_proxy();
	test_cert_and_key();
	test_alpn_and_session_cache();
	test_client_auth();
	test_tickets_and_control();
	test_user();
	test_metrics();
	return check_summary();
}
