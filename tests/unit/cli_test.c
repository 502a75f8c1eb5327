/* Unit tests for proxy/cli.c: every flag, every error message compared as
 * the exact string an operator sees, the defaults, repeated and short
 * flags, --help and --version.
 *
 * A name that does not resolve is reported in the same "invalid value"
 * form, with "; cannot resolve HOST" after the expected text: see
 * test_addresses(). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "cli.h"
#include "tern/config.h"

/* 80 KiB: kept out of the stack frames of the many macro expansions. */
static struct tern_config cfg;
static char err[TERN_CLI_ERR_MAX];

static int parse(int argc, char **argv)
{
	tern_config_init(&cfg);
	memset(err, 0, sizeof(err));
	return tern_cli_parse(argc, argv, &cfg, err, sizeof(err));
}

/* Parses "tern ARGS..."; the argv array is writable, as getopt_long()
 * reorders it. */
#define PARSE(...)                                                         \
	parse((int)(sizeof((char *[]){"tern", __VA_ARGS__}) / sizeof(char *)), \
	      (char *[]){"tern", __VA_ARGS__, NULL})

/* The arguments must be refused with exactly this message. */
#define EXPECT_ERR(want, ...)                                 \
	do {                                                  \
		CHECK_EQ_INT(PARSE(__VA_ARGS__), -EINVAL);    \
		CHECK_EQ_STR(err, (want));                    \
		CHECK(strchr(err, '\n') == NULL);             \
	} while (0)

#define EXPECT_RUN(...)                                                \
	do {                                                           \
		CHECK_EQ_INT(PARSE(__VA_ARGS__), TERN_CLI_RUN);        \
		CHECK_EQ_STR(err, "");                                 \
	} while (0)

static unsigned expected_default_workers(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus < 1)
		return 1;
	return cpus > (long)TERN_MAX_WORKERS ? TERN_MAX_WORKERS : (unsigned)cpus;
}

static void check_inet(const struct tern_addr *a, int family, const char *want_ip, unsigned want_port)
{
	char ip[INET6_ADDRSTRLEN] = "";
	unsigned port;

	if (!CHECK_EQ_INT(a->ss.ss_family, family))
		return;
	if (family == AF_INET) {
		struct sockaddr_in sin;
		memcpy(&sin, &a->ss, sizeof(sin));
		CHECK(inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip)) != NULL);
		port = ntohs(sin.sin_port);
	} else {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, &a->ss, sizeof(sin6));
		CHECK(inet_ntop(AF_INET6, &sin6.sin6_addr, ip, sizeof(ip)) != NULL);
		port = ntohs(sin6.sin6_port);
	}
	CHECK_EQ_STR(ip, want_ip);
	CHECK_EQ_UINT(port, want_port);
}

static void test_config_init(void)
{
	tern_config_init(&cfg);
	CHECK_EQ_UINT(cfg.num_listen, 0);
	CHECK_EQ_UINT(cfg.num_backends, 0);
	CHECK_EQ_UINT(cfg.num_certs, 0);
	CHECK_EQ_UINT(cfg.session_cache, 20000);
	CHECK(cfg.alpn == NULL);
	CHECK_EQ_UINT(cfg.alpn_wire_len, 0);
	CHECK(cfg.client_ca_path == NULL);
	CHECK_EQ_INT(cfg.verify_client, TERN_VERIFY_CLIENT_NONE);
	CHECK_EQ_UINT(cfg.workers, expected_default_workers());
	CHECK(cfg.workers >= 1 && cfg.workers <= TERN_MAX_WORKERS);
	CHECK_EQ_INT(cfg.log_level, TERN_LOG_INFO);
	CHECK(cfg.control_path == NULL);
	CHECK_EQ_UINT(cfg.num_tickets, 2);
	CHECK(cfg.ticket_keys_path == NULL);
	CHECK_EQ_UINT(cfg.ticket_rotate_ms, 3600000);
	CHECK_EQ_UINT(cfg.ticket_refresh_ms, 0);
	CHECK_EQ_UINT(cfg.ticket_flush_delay_ms, 200);
}

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

/* No options at all: every default, and the default addresses filled in. */
static void test_defaults(void)
{
	char *argv[] = {"tern", NULL};

	CHECK_EQ_INT(parse(1, argv), TERN_CLI_RUN);
	CHECK_EQ_UINT(cfg.num_listen, 1);
	CHECK_EQ_STR(cfg.listen[0].text, "0.0.0.0:8443");
	check_inet(&cfg.listen[0], AF_INET, "0.0.0.0", 8443);
	CHECK_EQ_UINT(cfg.num_backends, 1);
	CHECK_EQ_STR(cfg.backends[0].text, "127.0.0.1:8080");
	check_inet(&cfg.backends[0], AF_INET, "127.0.0.1", 8080);
	CHECK_EQ_UINT(cfg.num_certs, 0);
	CHECK_EQ_UINT(cfg.session_cache, 20000);
	CHECK(cfg.alpn == NULL);
	CHECK_EQ_UINT(cfg.alpn_wire_len, 0);
	CHECK(cfg.client_ca_path == NULL);
	CHECK_EQ_INT(cfg.verify_client, TERN_VERIFY_CLIENT_NONE);
	CHECK_EQ_UINT(cfg.workers, expected_default_workers());
	CHECK_EQ_UINT(cfg.max_conns, 100000);
	CHECK_EQ_INT(cfg.tls_min, TERN_TLS_1_2);
	CHECK_EQ_INT(cfg.tls_max, TERN_TLS_1_3);
	CHECK_EQ_STR(cfg.ciphers, TERN_DEFAULT_CIPHERS);
	CHECK_EQ_STR(cfg.ciphersuites, TERN_DEFAULT_CIPHERSUITES);
	CHECK_EQ_STR(cfg.groups, "X25519:P-256");
	CHECK_EQ_UINT(cfg.handshake_timeout_ms, 10000);
	CHECK_EQ_UINT(cfg.idle_timeout_ms, 300000);
	CHECK_EQ_UINT(cfg.connect_timeout_ms, 5000);
	CHECK_EQ_UINT(cfg.drain_timeout_ms, 30000);
	CHECK_EQ_UINT(cfg.buffer_size, 16384);
	CHECK_EQ_UINT(cfg.ring_entries, 4096);
	CHECK_EQ_UINT(cfg.read_buffers, 64);
	CHECK_EQ_INT(cfg.log_level, TERN_LOG_INFO);
	CHECK(!cfg.access_log);
	CHECK(!cfg.check);
	CHECK(cfg.control_path == NULL);
	CHECK_EQ_UINT(cfg.num_tickets, 2);
	CHECK(cfg.ticket_keys_path == NULL);
	CHECK_EQ_UINT(cfg.ticket_rotate_ms, 3600000);
	CHECK_EQ_UINT(cfg.ticket_refresh_ms, 0);
	CHECK_EQ_UINT(cfg.ticket_flush_delay_ms, 200);

	/* argc 0 (an exec with an empty argv) is the same as no options. */
	char *empty[] = {NULL};
	CHECK_EQ_INT(parse(0, empty), TERN_CLI_RUN);
	CHECK_EQ_UINT(cfg.num_listen, 1);
	CHECK_EQ_UINT(cfg.num_backends, 1);
}

/* Every flag in its long form, each with a non-default value. */
static void test_full_command_line(void)
{
	EXPECT_RUN("--listen", "127.0.0.1:9443", "--listen", "[::1]:9444", "--backend", "10.0.0.2:8000",
		   "--backend", "unix:/run/app.sock", "--cert", "site.pem", "--key", "site.key", "--ocsp",
		   "site.der", "--alpn", "h2,http/1.1", "--session-cache", "77", "--client-ca", "ca.pem",
		   "--verify-client", "optional", "--workers",
		   "3", "--max-conns", "5000", "--tls-min", "1.3", "--tls-max", "1.3", "--ciphers",
		   "ECDHE+AESGCM", "--ciphersuites", "TLS_AES_256_GCM_SHA384", "--groups", "X25519",
		   "--handshake-timeout", "2s", "--idle-timeout", "90s", "--connect-timeout", "750ms",
		   "--drain-timeout", "1m", "--buffer-size", "64k", "--ring-entries", "256", "--read-buffers", "0", "--log-level",
		   "debug", "--access-log", "--check", "--num-tickets", "5", "--ticket-keys", "/etc/tern/keys",
		   "--ticket-refresh", "10m", "--ticket-flush-delay", "50ms", "--control", "/run/tern/c.sock");
	CHECK_EQ_UINT(cfg.num_listen, 2);
	CHECK_EQ_STR(cfg.listen[0].text, "127.0.0.1:9443");
	check_inet(&cfg.listen[0], AF_INET, "127.0.0.1", 9443);
	CHECK_EQ_STR(cfg.listen[1].text, "[::1]:9444");
	check_inet(&cfg.listen[1], AF_INET6, "::1", 9444);
	CHECK_EQ_UINT(cfg.num_backends, 2);
	check_inet(&cfg.backends[0], AF_INET, "10.0.0.2", 8000);
	CHECK_EQ_INT(cfg.backends[1].ss.ss_family, AF_UNIX);
	struct sockaddr_un sun;
	memcpy(&sun, &cfg.backends[1].ss, sizeof(sun));
	CHECK_EQ_STR(sun.sun_path, "/run/app.sock");
	CHECK_EQ_STR(cfg.backends[1].text, "unix:/run/app.sock");
	CHECK_EQ_UINT(cfg.num_certs, 1);
	CHECK_EQ_STR(cfg.certs[0].cert_path, "site.pem");
	CHECK_EQ_STR(cfg.certs[0].key_path, "site.key");
	CHECK_EQ_STR(cfg.certs[0].ocsp_path, "site.der");
	CHECK_EQ_STR(cfg.alpn, "h2,http/1.1");
	CHECK_EQ_UINT(cfg.alpn_wire_len, 12);
	CHECK_EQ_UINT(cfg.session_cache, 77);
	CHECK_EQ_STR(cfg.client_ca_path, "ca.pem");
	CHECK_EQ_INT(cfg.verify_client, TERN_VERIFY_CLIENT_OPTIONAL);
	CHECK_EQ_UINT(cfg.workers, 3);
	CHECK_EQ_UINT(cfg.max_conns, 5000);
	CHECK_EQ_INT(cfg.tls_min, TERN_TLS_1_3);
	CHECK_EQ_INT(cfg.tls_max, TERN_TLS_1_3);
	CHECK_EQ_STR(cfg.ciphers, "ECDHE+AESGCM");
	CHECK_EQ_STR(cfg.ciphersuites, "TLS_AES_256_GCM_SHA384");
	CHECK_EQ_STR(cfg.groups, "X25519");
	CHECK_EQ_UINT(cfg.handshake_timeout_ms, 2000);
	CHECK_EQ_UINT(cfg.idle_timeout_ms, 90000);
	CHECK_EQ_UINT(cfg.connect_timeout_ms, 750);
	CHECK_EQ_UINT(cfg.drain_timeout_ms, 60000);
	CHECK_EQ_UINT(cfg.buffer_size, 65536);
	CHECK_EQ_UINT(cfg.ring_entries, 256);
	CHECK_EQ_UINT(cfg.read_buffers, 0);
	CHECK_EQ_INT(cfg.log_level, TERN_LOG_DEBUG);
	CHECK(cfg.access_log);
	CHECK(cfg.check);
	CHECK_EQ_UINT(cfg.num_tickets, 5);
	CHECK_EQ_STR(cfg.ticket_keys_path, "/etc/tern/keys");
	CHECK_EQ_UINT(cfg.ticket_rotate_ms, 3600000); /* unused with a key file */
	CHECK_EQ_UINT(cfg.ticket_refresh_ms, 600000);
	CHECK_EQ_UINT(cfg.ticket_flush_delay_ms, 50);
	CHECK_EQ_STR(cfg.control_path, "/run/tern/c.sock");
}

static void test_short_and_other_spellings(void)
{
	EXPECT_RUN("-l", "127.0.0.1:1", "-b", "127.0.0.1:2", "-c", "a.pem", "-w", "7");
	check_inet(&cfg.listen[0], AF_INET, "127.0.0.1", 1);
	check_inet(&cfg.backends[0], AF_INET, "127.0.0.1", 2);
	CHECK_EQ_UINT(cfg.num_certs, 1);
	CHECK_EQ_STR(cfg.certs[0].cert_path, "a.pem");
	CHECK(cfg.certs[0].key_path == NULL);
	CHECK(cfg.certs[0].ocsp_path == NULL);
	CHECK_EQ_UINT(cfg.workers, 7);

	/* Value attached to a short flag, and "--flag=value". */
	EXPECT_RUN("-w8", "-l*:9000", "--backend=127.0.0.1:3", "--idle-timeout=1h", "--log-level=error");
	CHECK_EQ_UINT(cfg.workers, 8);
	check_inet(&cfg.listen[0], AF_INET, "0.0.0.0", 9000);
	check_inet(&cfg.backends[0], AF_INET, "127.0.0.1", 3);
	CHECK_EQ_UINT(cfg.idle_timeout_ms, 3600000);
	CHECK_EQ_INT(cfg.log_level, TERN_LOG_ERROR);

	/* getopt_long() takes an unambiguous prefix of a long flag. */
	EXPECT_RUN("--work", "5", "--access");
	CHECK_EQ_UINT(cfg.workers, 5);
	CHECK(cfg.access_log);

	/* Bounds accepted. */
	EXPECT_RUN("-w", "1", "--max-conns", "1", "--ring-entries", "8", "--buffer-size", "1k");
	CHECK_EQ_UINT(cfg.workers, 1);
	CHECK_EQ_UINT(cfg.max_conns, 1);
	CHECK_EQ_UINT(cfg.ring_entries, 8);
	CHECK_EQ_UINT(cfg.buffer_size, 1024);
	EXPECT_RUN("-w", "1024", "--max-conns", "10000000", "--ring-entries", "32768", "--buffer-size", "16m",
		   "--drain-timeout", "720h", "--handshake-timeout", "1ms", "--read-buffers", "4096");
	CHECK_EQ_UINT(cfg.read_buffers, 4096);
	CHECK_EQ_UINT(cfg.workers, 1024);
	CHECK_EQ_UINT(cfg.max_conns, 10000000);
	CHECK_EQ_UINT(cfg.ring_entries, 32768);
	CHECK_EQ_UINT(cfg.buffer_size, 16777216);
	CHECK_EQ_UINT(cfg.drain_timeout_ms, 720ull * 3600 * 1000);
	CHECK_EQ_UINT(cfg.handshake_timeout_ms, 1);
	EXPECT_RUN("--buffer-size", "4096");
	CHECK_EQ_UINT(cfg.buffer_size, 4096);
	EXPECT_RUN("--buffer-size", "1M");
	CHECK_EQ_UINT(cfg.buffer_size, 1048576);

	/* TLS versions: equal, and the ordinary range. */
	EXPECT_RUN("--tls-min", "1.2", "--tls-max", "1.2");
	CHECK_EQ_INT(cfg.tls_min, TERN_TLS_1_2);
	CHECK_EQ_INT(cfg.tls_max, TERN_TLS_1_2);
	EXPECT_RUN("--tls-max", "1.3", "--tls-min", "1.3");
	CHECK_EQ_INT(cfg.tls_min, TERN_TLS_1_3);

	/* Every log level. */
	EXPECT_RUN("--log-level", "warn");
	CHECK_EQ_INT(cfg.log_level, TERN_LOG_WARN);
	EXPECT_RUN("--log-level", "info");
	CHECK_EQ_INT(cfg.log_level, TERN_LOG_INFO);

	/* --key may come later than right after its --cert. */
	EXPECT_RUN("--cert", "a.pem", "-w", "2", "--key", "a.key");
	CHECK_EQ_STR(cfg.certs[0].key_path, "a.key");

	/* Options after "--" are operands, so nothing is left: fine. */
	EXPECT_RUN("-w", "2", "--");
	CHECK_EQ_UINT(cfg.workers, 2);
}

static void test_repeated(void)
{
	EXPECT_RUN("-l", "127.0.0.1:1", "--listen", "127.0.0.1:2", "-l", "[::1]:3");
	CHECK_EQ_UINT(cfg.num_listen, 3);
	check_inet(&cfg.listen[0], AF_INET, "127.0.0.1", 1);
	check_inet(&cfg.listen[1], AF_INET, "127.0.0.1", 2);
	check_inet(&cfg.listen[2], AF_INET6, "::1", 3);
	/* A --listen alone keeps the default backend, and vice versa. */
	CHECK_EQ_UINT(cfg.num_backends, 1);
	CHECK_EQ_STR(cfg.backends[0].text, "127.0.0.1:8080");

	EXPECT_RUN("-b", "127.0.0.1:1", "-b", "unix:/a", "--backend", "127.0.0.1:3");
	CHECK_EQ_UINT(cfg.num_backends, 3);
	CHECK_EQ_STR(cfg.backends[1].text, "unix:/a");
	CHECK_EQ_UINT(cfg.num_listen, 1);
	CHECK_EQ_STR(cfg.listen[0].text, "0.0.0.0:8443");

	/* Single-valued flags: the last one wins. */
	EXPECT_RUN("-w", "2", "--workers", "4", "--log-level", "debug", "--log-level", "warn", "--idle-timeout",
		   "1s", "--idle-timeout", "2s", "--ciphers", "A", "--ciphers", "B", "--check", "--check");
	CHECK_EQ_UINT(cfg.workers, 4);
	CHECK_EQ_INT(cfg.log_level, TERN_LOG_WARN);
	CHECK_EQ_UINT(cfg.idle_timeout_ms, 2000);
	CHECK_EQ_STR(cfg.ciphers, "B");
	CHECK(cfg.check);

	/* Names resolve: localhost from /etc/hosts. */
	EXPECT_RUN("--backend", "localhost:9000");
	CHECK(cfg.backends[0].ss.ss_family == AF_INET || cfg.backends[0].ss.ss_family == AF_INET6);
	CHECK_EQ_STR(cfg.backends[0].text, "localhost:9000");
}

static void test_help_and_version(void)
{
	CHECK_EQ_INT(PARSE("--help"), TERN_CLI_HELP);
	CHECK_EQ_INT(PARSE("-h"), TERN_CLI_HELP);
	CHECK_EQ_INT(PARSE("--version"), TERN_CLI_VERSION);
	CHECK_EQ_INT(PARSE("-V"), TERN_CLI_VERSION);
	/* They answer as soon as they are seen... */
	CHECK_EQ_INT(PARSE("-w", "2", "--help", "--frob"), TERN_CLI_HELP);
	CHECK_EQ_INT(PARSE("--version", "--help"), TERN_CLI_VERSION);
	CHECK_EQ_INT(PARSE("-hV"), TERN_CLI_HELP);
	/* ...so a mistake before them is still reported. */
	EXPECT_ERR("unknown option '--frob' (see tern --help)", "--frob", "--help");
	EXPECT_ERR("--workers: invalid value '0' (expected an integer from 1 to 1024)", "-w", "0", "-h");
	EXPECT_ERR("--help: invalid value 'yes' (expected no value)", "--help=yes");

	/* The parser starts afresh on every call, even after one that stopped
	 * in the middle of "-hV". */
	CHECK_EQ_INT(PARSE("-Vh"), TERN_CLI_VERSION);
	EXPECT_RUN("-w", "3");
	CHECK_EQ_UINT(cfg.workers, 3);
}

static void test_usage(void)
{
	const char *usage = tern_cli_usage();
	static const char *const flags[] = {
		"-l, --listen ADDR", "-b, --backend ADDR", "-c, --cert FILE", "--key FILE", "-w, --workers N",
		"--max-conns N", "--ocsp FILE", "--alpn LIST", "--session-cache N", "--client-ca FILE",
		"--verify-client MODE", "--tls-min VER", "--tls-max VER", "--ciphers STR", "--ciphersuites STR",
		"--groups STR", "--handshake-timeout DUR", "--idle-timeout DUR", "--connect-timeout DUR",
		"--drain-timeout DUR", "--buffer-size SIZE", "--ring-entries N", "--read-buffers N", "--log-level L",
		"--access-log", "--check", "-h, --help", "-V, --version", "--num-tickets N", "--ticket-keys FILE",
		"--ticket-rotate DUR", "--ticket-refresh DUR", "--ticket-flush-delay DUR", "--control PATH", "--proxy-protocol V",
		"--user NAME",
		"--metrics ADDR",
		"tern ctl [--control PATH] [--json] [--timeout DUR] COMMAND [ARGS...]",
	};
	/* The defaults as SPEC section 2 lists them. */
	static const char *const defaults[] = {
		"[0.0.0.0:8443]", "[127.0.0.1:8080]", "[online CPUs]", "[100000]", "[1.2]", "[1.3]",
		"[X25519:P-256]", "[10s]", "[5m]", "[5s]", "[30s]", "[16k]", "[4096]", "[info]", "[off]",
		"[" TERN_DEFAULT_CIPHERS "]", "[" TERN_DEFAULT_CIPHERSUITES "]", "[2]", "[random, in memory]",
		"[1h]", "0 is off [0]", "[200ms]", "for tern ctl [off]",
	};

	CHECK(strncmp(usage, "Usage: tern [OPTIONS]\n", strlen("Usage: tern [OPTIONS]\n")) == 0);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		if (!CHECK(strstr(usage, flags[i]) != NULL))
			fprintf(stderr, "    missing flag %s\n", flags[i]);
	}
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		if (!CHECK(strstr(usage, defaults[i]) != NULL))
			fprintf(stderr, "    missing default %s\n", defaults[i]);
	}

	size_t longest = 0;
	for (const char *line = usage; *line != '\0';) {
		size_t len = strcspn(line, "\n");
		if (len > longest)
			longest = len;
		line += len + (line[len] == '\n');
	}
	CHECK(longest < 100);
	CHECK(usage[strlen(usage) - 1] == '\n');
}

static void test_unknown_and_unexpected(void)
{
	EXPECT_ERR("unknown option '--frob' (see tern --help)", "--frob");
	EXPECT_ERR("unknown option '--frob' (see tern --help)", "--frob=3");
	EXPECT_ERR("unknown option '--frob' (see tern --help)", "-w", "2", "--frob", "x");
	EXPECT_ERR("unknown option '-x' (see tern --help)", "-x");
	EXPECT_ERR("unknown option '-x' (see tern --help)", "-w", "2", "-x", "-w", "3");
	EXPECT_ERR("unknown option '-L' (see tern --help)", "-L", "127.0.0.1:1");
	/* Ambiguous prefixes (--cert, --check, --ciphers, ...) are unknown. */
	EXPECT_ERR("unknown option '--c' (see tern --help)", "--c", "x");
	EXPECT_ERR("unknown option '--tls' (see tern --help)", "--tls", "1.2");
	/* Flags the SPEC lists for later versions are refused, not ignored. */
	/* Prefixes the ticket flags made ambiguous. */
	EXPECT_ERR("unknown option '--ticket' (see tern --help)", "--ticket", "x");
	EXPECT_ERR("unknown option '--ticket-r' (see tern --help)", "--ticket-r", "1h");
	EXPECT_ERR("unknown option '--con' (see tern --help)", "--con", "x");
	/* A control character is shown escaped, keeping the message one line. */
	EXPECT_ERR("unknown option '--a\\x0ab' (see tern --help)", "--a\nb");

	EXPECT_ERR("unexpected argument 'foo' (see tern --help)", "foo");
	EXPECT_ERR("unexpected argument 'foo' (see tern --help)", "-w", "2", "foo", "bar");
	EXPECT_ERR("unexpected argument 'foo' (see tern --help)", "foo", "-w", "2");
	EXPECT_ERR("unexpected argument 'foo' (see tern --help)", "--", "foo");
	EXPECT_ERR("unexpected argument '--check' (see tern --help)", "--", "--check");
	EXPECT_ERR("unexpected argument '-' (see tern --help)", "-");

	/* Switches take no value. */
	EXPECT_ERR("--check: invalid value 'yes' (expected no value)", "--check=yes");
	EXPECT_ERR("--access-log: invalid value '' (expected no value)", "--access-log=");
}

static void test_missing_values(void)
{
	EXPECT_ERR("--workers: missing value (expected an integer from 1 to 1024)", "--workers");
	EXPECT_ERR("--workers: missing value (expected an integer from 1 to 1024)", "-w");
	EXPECT_ERR("--workers: missing value (expected an integer from 1 to 1024)", "--check", "-w");
	EXPECT_ERR("--listen: missing value (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "-l");
	EXPECT_ERR("--listen: missing value (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--listen");
	EXPECT_ERR("--backend: missing value (expected HOST:PORT, [IPV6]:PORT or unix:/path)", "-b");
	EXPECT_ERR("--backend: missing value (expected HOST:PORT, [IPV6]:PORT or unix:/path)", "--backend");
	EXPECT_ERR("--cert: missing value (expected a non-empty path to a PEM file)", "-c");
	EXPECT_ERR("--cert: missing value (expected a non-empty path to a PEM file)", "--cert");
	EXPECT_ERR("--key: missing value (expected a non-empty path to a PEM file)", "--key");
	EXPECT_ERR("--max-conns: missing value (expected an integer from 1 to 10000000)", "--max-conns");
	EXPECT_ERR("--tls-min: missing value (expected 1.2 or 1.3)", "--tls-min");
	EXPECT_ERR("--tls-max: missing value (expected 1.2 or 1.3)", "--tls-max");
	EXPECT_ERR("--ciphers: missing value (expected a non-empty OpenSSL cipher list)", "--ciphers");
	EXPECT_ERR("--ciphersuites: missing value (expected a non-empty list of TLS 1.3 cipher suites)",
		   "--ciphersuites");
	EXPECT_ERR("--groups: missing value (expected a non-empty list of groups such as X25519:P-256)",
		   "--groups");
	EXPECT_ERR("--handshake-timeout: missing value (expected a duration with a unit such as 250ms, 30s, 5m "
		   "or 2h)",
		   "--handshake-timeout");
	EXPECT_ERR("--idle-timeout: missing value (expected a duration with a unit such as 250ms, 30s, 5m or 2h)",
		   "--idle-timeout");
	EXPECT_ERR("--connect-timeout: missing value (expected a duration with a unit such as 250ms, 30s, 5m "
		   "or 2h)",
		   "--connect-timeout");
	EXPECT_ERR("--drain-timeout: missing value (expected a duration with a unit such as 250ms, 30s, 5m or 2h)",
		   "--drain-timeout");
	EXPECT_ERR("--buffer-size: missing value (expected a size such as 16k or 1m, from 1k to 16m)",
		   "--buffer-size");
	EXPECT_ERR("--ring-entries: missing value (expected an integer from 8 to 32768)", "--ring-entries");
	EXPECT_ERR("--log-level: missing value (expected error, warn, info or debug)", "--log-level");
	EXPECT_ERR("--num-tickets: missing value (expected an integer from 0 to 16)", "--num-tickets");
	EXPECT_ERR("--ticket-keys: missing value (expected a non-empty path to a ticket key file)",
		   "--ticket-keys");
	EXPECT_ERR("--ticket-rotate: missing value (expected a duration with a unit such as 250ms, 30s, 5m or "
		   "2h)",
		   "--ticket-rotate");
	EXPECT_ERR("--ticket-refresh: missing value (expected 0 (off) or a duration with a unit such as 250ms, "
		   "30s, 5m or 2h)",
		   "--ticket-refresh");
	EXPECT_ERR("--ticket-flush-delay: missing value (expected 0 or a duration with a unit such as 250ms, "
		   "30s, 5m or 2h)",
		   "--ticket-flush-delay");
	EXPECT_ERR("--control: missing value (expected a non-empty path of at most 107 bytes for the UNIX "
		   "control socket)",
		   "--control");
}

static void test_numbers(void)
{
	EXPECT_ERR("--workers: invalid value 'abc' (expected an integer from 1 to 1024)", "--workers", "abc");
	EXPECT_ERR("--workers: invalid value 'abc' (expected an integer from 1 to 1024)", "-w", "abc");
	EXPECT_ERR("--workers: invalid value 'abc' (expected an integer from 1 to 1024)", "-wabc");
	EXPECT_ERR("--workers: invalid value 'abc' (expected an integer from 1 to 1024)", "--workers=abc");
	EXPECT_ERR("--workers: invalid value '0' (expected an integer from 1 to 1024)", "-w", "0");
	EXPECT_ERR("--workers: invalid value '1025' (expected an integer from 1 to 1024)", "-w", "1025");
	EXPECT_ERR("--workers: invalid value '-1' (expected an integer from 1 to 1024)", "-w", "-1");
	EXPECT_ERR("--workers: invalid value '' (expected an integer from 1 to 1024)", "-w", "");
	EXPECT_ERR("--workers: invalid value '4 ' (expected an integer from 1 to 1024)", "-w", "4 ");
	EXPECT_ERR("--workers: invalid value '99999999999999999999' (expected an integer from 1 to 1024)", "-w",
		   "99999999999999999999");
	/* A flag right after a flag that needs a value is taken as the value. */
	EXPECT_ERR("--workers: invalid value '--check' (expected an integer from 1 to 1024)", "-w", "--check");

	EXPECT_ERR("--max-conns: invalid value '0' (expected an integer from 1 to 10000000)", "--max-conns", "0");
	EXPECT_ERR("--max-conns: invalid value '10000001' (expected an integer from 1 to 10000000)", "--max-conns",
		   "10000001");
	EXPECT_ERR("--max-conns: invalid value '100k' (expected an integer from 1 to 10000000)", "--max-conns",
		   "100k");

	EXPECT_ERR("--ring-entries: invalid value '7' (expected an integer from 8 to 32768)", "--ring-entries",
		   "7");
	EXPECT_ERR("--read-buffers: invalid value '4097' (expected an integer from 0 to 4096)", "--read-buffers",
		   "4097");
	EXPECT_ERR("--read-buffers: missing value (expected an integer from 0 to 4096)", "--read-buffers");
	EXPECT_ERR("--ring-entries: invalid value '32769' (expected an integer from 8 to 32768)",
		   "--ring-entries", "32769");
	EXPECT_ERR("--ring-entries: invalid value '4k' (expected an integer from 8 to 32768)", "--ring-entries",
		   "4k");

	EXPECT_ERR("--buffer-size: invalid value '1023' (expected a size such as 16k or 1m, from 1k to 16m)",
		   "--buffer-size", "1023");
	EXPECT_ERR("--buffer-size: invalid value '17m' (expected a size such as 16k or 1m, from 1k to 16m)",
		   "--buffer-size", "17m");
	EXPECT_ERR("--buffer-size: invalid value '16385k' (expected a size such as 16k or 1m, from 1k to 16m)",
		   "--buffer-size", "16385k");
	EXPECT_ERR("--buffer-size: invalid value '16kb' (expected a size such as 16k or 1m, from 1k to 16m)",
		   "--buffer-size", "16kb");
	EXPECT_ERR("--buffer-size: invalid value '' (expected a size such as 16k or 1m, from 1k to 16m)",
		   "--buffer-size", "");
	EXPECT_ERR("--buffer-size: invalid value '99999999999999999999g' (expected a size such as 16k or 1m, "
		   "from 1k to 16m)",
		   "--buffer-size", "99999999999999999999g");
}

static void test_durations(void)
{
	/* Malformed: the form is what was expected. */
	EXPECT_ERR("--idle-timeout: invalid value '10' (expected a duration with a unit such as 250ms, 30s, 5m "
		   "or 2h)",
		   "--idle-timeout", "10");
	EXPECT_ERR("--idle-timeout: invalid value '0' (expected a duration with a unit such as 250ms, 30s, 5m "
		   "or 2h)",
		   "--idle-timeout", "0");
	EXPECT_ERR("--handshake-timeout: invalid value '1.5s' (expected a duration with a unit such as 250ms, "
		   "30s, 5m or 2h)",
		   "--handshake-timeout", "1.5s");
	EXPECT_ERR("--connect-timeout: invalid value '5sec' (expected a duration with a unit such as 250ms, 30s, "
		   "5m or 2h)",
		   "--connect-timeout", "5sec");
	EXPECT_ERR("--drain-timeout: invalid value '' (expected a duration with a unit such as 250ms, 30s, 5m or "
		   "2h)",
		   "--drain-timeout", "");
	EXPECT_ERR("--drain-timeout: invalid value '1d' (expected a duration with a unit such as 250ms, 30s, 5m "
		   "or 2h)",
		   "--drain-timeout", "1d");

	/* Well formed but out of bounds (zero, above 30 days, overflow): the
	 * bounds are what was expected. */
	EXPECT_ERR("--drain-timeout: invalid value '0s' (expected a duration from 1ms to 720h)", "--drain-timeout",
		   "0s");
	EXPECT_ERR("--handshake-timeout: invalid value '0ms' (expected a duration from 1ms to 720h)",
		   "--handshake-timeout", "0ms");
	EXPECT_ERR("--idle-timeout: invalid value '721h' (expected a duration from 1ms to 720h)", "--idle-timeout",
		   "721h");
	EXPECT_ERR("--connect-timeout: invalid value '99999999999999999999ms' (expected a duration from 1ms to "
		   "720h)",
		   "--connect-timeout", "99999999999999999999ms");
}

static void test_tls_and_log_level(void)
{
	EXPECT_ERR("--tls-min: invalid value '1.1' (expected 1.2 or 1.3)", "--tls-min", "1.1");
	EXPECT_ERR("--tls-max: invalid value '1.4' (expected 1.2 or 1.3)", "--tls-max", "1.4");
	EXPECT_ERR("--tls-min: invalid value 'TLSv1.2' (expected 1.2 or 1.3)", "--tls-min", "TLSv1.2");
	EXPECT_ERR("--tls-max: invalid value '' (expected 1.2 or 1.3)", "--tls-max", "");
	/* The order between them is checked after all flags, on --tls-min. */
	EXPECT_ERR("--tls-min: invalid value '1.3' (expected a version not above --tls-max 1.2)", "--tls-min",
		   "1.3", "--tls-max", "1.2");
	EXPECT_ERR("--tls-min: invalid value '1.3' (expected a version not above --tls-max 1.2)", "--tls-max",
		   "1.2", "--tls-min", "1.3");

	EXPECT_ERR("--log-level: invalid value 'verbose' (expected error, warn, info or debug)", "--log-level",
		   "verbose");
	EXPECT_ERR("--log-level: invalid value 'INFO' (expected error, warn, info or debug)", "--log-level",
		   "INFO");
	EXPECT_ERR("--log-level: invalid value '' (expected error, warn, info or debug)", "--log-level", "");
}

static void test_addresses(void)
{
	EXPECT_ERR("--listen: invalid value 'unix:/run/x.sock' (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "-l",
		   "unix:/run/x.sock");
	EXPECT_ERR("--listen: invalid value '8443' (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--listen",
		   "8443");
	EXPECT_ERR("--listen: invalid value '::1:8443' (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--listen",
		   "::1:8443");
	EXPECT_ERR("--listen: invalid value '[::1]' (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--listen",
		   "[::1]");
	EXPECT_ERR("--listen: invalid value '*:0' (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--listen", "*:0");
	EXPECT_ERR("--listen: invalid value '*:65536' (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--listen",
		   "*:65536");
	EXPECT_ERR("--listen: invalid value '' (expected HOST:PORT, [IPV6]:PORT or *:PORT)", "--listen", "");

	EXPECT_ERR("--backend: invalid value 'unix:' (expected HOST:PORT, [IPV6]:PORT or unix:/path)", "-b",
		   "unix:");
	EXPECT_ERR("--backend: invalid value 'app:http' (expected HOST:PORT, [IPV6]:PORT or unix:/path)",
		   "--backend", "app:http");
	EXPECT_ERR("--backend: invalid value '' (expected HOST:PORT, [IPV6]:PORT or unix:/path)", "--backend", "");
	EXPECT_ERR("--backend: invalid value '127.0.0.1:0' (expected HOST:PORT, [IPV6]:PORT or unix:/path)",
		   "--backend", "127.0.0.1:0");

	/* A unix path one byte too long for sun_path. */
	char too_long[200];
	char want[TERN_CLI_ERR_MAX];
	struct sockaddr_un sun;
	int n = snprintf(too_long, sizeof(too_long), "unix:/");
	memset(too_long + n, 's', sizeof(sun.sun_path) - 1);
	too_long[n + sizeof(sun.sun_path) - 1] = '\0';
	snprintf(want, sizeof(want), "--backend: invalid value '%s' (expected HOST:PORT, [IPV6]:PORT or unix:/path)",
		 too_long);
	EXPECT_ERR(want, "--backend", too_long);
	too_long[strlen(too_long) - 1] = '\0'; /* now it fits */
	EXPECT_RUN("--backend", too_long);
	CHECK_EQ_INT(cfg.backends[0].ss.ss_family, AF_UNIX);

	/* Well formed, but the name does not resolve (.invalid never does,
	 * RFC 6761): the same form, naming the host. */
	EXPECT_ERR("--backend: invalid value 'nosuch.invalid:80' (expected HOST:PORT, [IPV6]:PORT or unix:/path; "
		   "cannot resolve nosuch.invalid)",
		   "--backend", "nosuch.invalid:80");
	EXPECT_ERR("--listen: invalid value 'nosuch.invalid:443' (expected HOST:PORT, [IPV6]:PORT or *:PORT; "
		   "cannot resolve nosuch.invalid)",
		   "-l", "nosuch.invalid:443");
}

/* --listen 64 times is fine, 65 is refused; --backend 256 and 257. */
static void test_address_limits(void)
{
	enum { MAX_ARGS = 2 * (TERN_MAX_BACKENDS + 1) + 2 };
	static char values[TERN_MAX_BACKENDS + 1][32];
	char *argv[MAX_ARGS];
	int argc;

	argc = 0;
	argv[argc++] = "tern";
	for (int i = 0; i < TERN_MAX_LISTEN; i++) {
		snprintf(values[i], sizeof(values[i]), "127.0.0.1:%d", 10001 + i);
		argv[argc++] = "-l";
		argv[argc++] = values[i];
	}
	argv[argc] = NULL;
	CHECK_EQ_INT(parse(argc, argv), TERN_CLI_RUN);
	CHECK_EQ_UINT(cfg.num_listen, TERN_MAX_LISTEN);
	check_inet(&cfg.listen[TERN_MAX_LISTEN - 1], AF_INET, "127.0.0.1", 10000 + TERN_MAX_LISTEN);

	snprintf(values[TERN_MAX_LISTEN], sizeof(values[0]), "127.0.0.1:%d", 10001 + TERN_MAX_LISTEN);
	argv[argc++] = "--listen";
	argv[argc++] = values[TERN_MAX_LISTEN];
	argv[argc] = NULL;
	CHECK_EQ_INT(parse(argc, argv), -EINVAL);
	CHECK_EQ_STR(err, "--listen: invalid value '127.0.0.1:10065' (expected at most 64 listen addresses)");

	argc = 0;
	argv[argc++] = "tern";
	for (int i = 0; i < TERN_MAX_BACKENDS; i++) {
		snprintf(values[i], sizeof(values[i]), "127.0.0.1:%d", 20001 + i);
		argv[argc++] = "-b";
		argv[argc++] = values[i];
	}
	argv[argc] = NULL;
	CHECK_EQ_INT(parse(argc, argv), TERN_CLI_RUN);
	CHECK_EQ_UINT(cfg.num_backends, TERN_MAX_BACKENDS);
	check_inet(&cfg.backends[TERN_MAX_BACKENDS - 1], AF_INET, "127.0.0.1", 20000 + TERN_MAX_BACKENDS);

	snprintf(values[TERN_MAX_BACKENDS], sizeof(values[0]), "unix:/run/%d", TERN_MAX_BACKENDS + 1);
	argv[argc++] = "-b";
	argv[argc++] = values[TERN_MAX_BACKENDS];
	argv[argc] = NULL;
	CHECK_EQ_INT(parse(argc, argv), -EINVAL);
	CHECK_EQ_STR(err, "--backend: invalid value 'unix:/run/257' (expected at most 256 backends)");
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

static void test_strings(void)
{
	EXPECT_ERR("--ciphers: invalid value '' (expected a non-empty OpenSSL cipher list)", "--ciphers", "");
	EXPECT_ERR("--ciphersuites: invalid value '' (expected a non-empty list of TLS 1.3 cipher suites)",
		   "--ciphersuites", "");
	EXPECT_ERR("--groups: invalid value '' (expected a non-empty list of groups such as X25519:P-256)",
		   "--groups", "");
	/* Anything else is OpenSSL's to judge when the contexts are built. */
	EXPECT_RUN("--ciphers", "NOT-A-CIPHER", "--groups", "nonsense");
	CHECK_EQ_STR(cfg.ciphers, "NOT-A-CIPHER");
	CHECK_EQ_STR(cfg.groups, "nonsense");
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

/* Whether --listen was given: socket activation replaces only the
 * default address. */
static void test_listen_is_default(void)
{
	EXPECT_RUN("-w", "1");
	CHECK(cfg.listen_is_default);
	EXPECT_RUN("--listen", "127.0.0.1:9443");
	CHECK(!cfg.listen_is_default);
	EXPECT_RUN("--listen", "0.0.0.0:8443"); /* the default's text, but typed */
	CHECK(!cfg.listen_is_default);
	CHECK_EQ_UINT(cfg.num_listen, 1);
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

	/* A key file and a rotation period contradict each other, in
	 * either order; the period is quoted as typed. */
	EXPECT_ERR("--ticket-rotate: invalid value '5m' (expected no --ticket-rotate with --ticket-keys: the "
		   "file's keys are rotated by rewriting it and running rotate-ticket-keys)",
		   "--ticket-keys", "keys", "--ticket-rotate", "5m");
	EXPECT_ERR("--ticket-rotate: invalid value '5m' (expected no --ticket-rotate with --ticket-keys: the "
		   "file's keys are rotated by rewriting it and running rotate-ticket-keys)",
		   "--ticket-rotate", "1h", "--ticket-rotate", "5m", "--ticket-keys", "keys");
	/* Even when the period is the default. */
	EXPECT_ERR("--ticket-rotate: invalid value '1h' (expected no --ticket-rotate with --ticket-keys: the "
		   "file's keys are rotated by rewriting it and running rotate-ticket-keys)",
		   "--ticket-rotate=1h", "--ticket-keys=keys");
	/* A bad period is reported as such first. */
	EXPECT_ERR("--ticket-rotate: invalid value '0s' (expected a duration from 1ms to 720h)", "--ticket-keys",
		   "keys", "--ticket-rotate", "0s");
	/* Either alone is fine. */
	EXPECT_RUN("--ticket-keys", "keys");
	CHECK_EQ_STR(cfg.ticket_keys_path, "keys");
	EXPECT_RUN("--ticket-rotate", "10m");
	CHECK(cfg.ticket_keys_path == NULL);
	CHECK_EQ_UINT(cfg.ticket_rotate_ms, 600000);
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

/* Values are quoted back escaped and cut, so a message stays one line and
 * still ends with what was expected. */
static void test_value_display(void)
{
	EXPECT_ERR("--workers: invalid value 'a\\x0ab' (expected an integer from 1 to 1024)", "-w", "a\nb");
	EXPECT_ERR("--log-level: invalid value '\\x1b[31mred' (expected error, warn, info or debug)",
		   "--log-level", "\x1b[31mred");

	char value[300], want[TERN_CLI_ERR_MAX];
	memset(value, 'x', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	snprintf(want, sizeof(want), "--log-level: invalid value '%.128s...' (expected error, warn, info or debug)",
		 value);
	EXPECT_ERR(want, "--log-level", value);
	CHECK(strlen(err) < sizeof(err) - 1);

	/* A value of exactly 128 bytes is shown whole. */
	value[128] = '\0';
	snprintf(want, sizeof(want), "--log-level: invalid value '%s' (expected error, warn, info or debug)", value);
	EXPECT_ERR(want, "--log-level", value);
}

/* The caller may pass no buffer, or one too small: never a crash, and a
 * small buffer gets a NUL-terminated prefix. */
static void test_err_buffer(void)
{
	char *argv[] = {"tern", "--frob", NULL};
	char small[8];

	tern_config_init(&cfg);
	CHECK_EQ_INT(tern_cli_parse(2, argv, &cfg, NULL, 0), -EINVAL);
	tern_config_init(&cfg);
	CHECK_EQ_INT(tern_cli_parse(2, argv, &cfg, small, sizeof(small)), -EINVAL);
	CHECK_EQ_STR(small, "unknown");
}

int main(void)
{
	test_config_init();
	test_proxy_protocol();
	test_defaults();
	test_full_command_line();
	test_short_and_other_spellings();
	test_repeated();
	test_help_and_version();
	test_usage();
	test_unknown_and_unexpected();
	test_missing_values();
	test_numbers();
	test_durations();
	test_tls_and_log_level();
	test_addresses();
	test_address_limits();
	test_cert_and_key();
	test_alpn_and_session_cache();
	test_client_auth();
	test_strings();
	test_tickets_and_control();
	test_user();
	test_listen_is_default();
	test_metrics();
	test_value_display();
	test_err_buffer();
	return check_summary();
}
