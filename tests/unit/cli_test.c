/* Unit tests for proxy/cli.c, the command line as a whole: the defaults,
 * every flag at once, short, attached, prefixed and repeated spellings,
 * --help, --version and the usage text, unknown options, stray arguments,
 * flags missing their value, and the error buffer. Each value's form and
 * bounds are cli_values_test.c's; the flags of one feature each (certificates,
 * ALPN, client auth, PROXY protocol, tickets, control, user, metrics) are
 * cli_features_test.c's. */
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "cli_fixture.h"

/* Without --workers: the CPUs as cpus.h counts them for this process
 * (cpus_test.c checks how), with the reason after workers=N, and never
 * more than the affinity mask allows (`taskset -c 0 cli_test`: 1). */
static void check_default_workers(void)
{
	struct tern_cpus cpus;
	char why[TERN_CPUS_TEXT_MAX], want[TERN_CPUS_TEXT_MAX + 16];
	cpu_set_t set;

	tern_cpus_get("/", TERN_MAX_WORKERS, &cpus);
	CHECK_EQ_UINT(cfg.workers, cpus.count);
	snprintf(want, sizeof(want), " workers_from=%s", tern_cpus_describe(&cpus, why, sizeof(why)));
	CHECK_EQ_STR(cfg.workers_from, want);
	if (CHECK_EQ_INT(sched_getaffinity(0, sizeof(set), &set), 0))
		CHECK(cfg.workers <= (unsigned)CPU_COUNT(&set));
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
	check_default_workers();
	CHECK(cfg.workers >= 1 && cfg.workers <= TERN_MAX_WORKERS);
	CHECK_EQ_INT(cfg.log_level, TERN_LOG_INFO);
	CHECK(cfg.control_path == NULL);
	CHECK_EQ_UINT(cfg.num_tickets, 2);
	CHECK(cfg.ticket_keys_path == NULL);
	CHECK_EQ_UINT(cfg.ticket_rotate_ms, 3600000);
	CHECK_EQ_UINT(cfg.ticket_refresh_ms, 0);
	CHECK_EQ_UINT(cfg.ticket_flush_delay_ms, 200);
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
	check_default_workers();
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
	CHECK_EQ_STR(cfg.workers_from, ""); /* the operator's number, not a default to explain */

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

	/* A --backend name is kept, not resolved: tern resolves it when it
	 * starts and every --resolve-interval (backends.h). */
	EXPECT_RUN("--backend", "localhost:9000");
	CHECK_EQ_INT(cfg.backends[0].ss.ss_family, AF_UNSPEC);
	CHECK_EQ_STR(cfg.backends[0].text, "localhost:9000");
	CHECK_EQ_STR(cfg.backend_names[0].host, "localhost");
	CHECK_EQ_UINT(cfg.backend_names[0].port, 9000);
	/* A literal has no name. */
	EXPECT_RUN("--backend", "127.0.0.1:9000");
	CHECK_EQ_INT(cfg.backends[0].ss.ss_family, AF_INET);
	CHECK_EQ_STR(cfg.backend_names[0].host, "");
	/* --listen still resolves at once. */
	EXPECT_RUN("--listen", "localhost:9443");
	CHECK(cfg.listen[0].ss.ss_family == AF_INET || cfg.listen[0].ss.ss_family == AF_INET6);
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
		"--metrics ADDR", "--backend-check DUR", "--backend-retry DUR", "--resolve-interval DUR",
		"--accept-proxy V", "--accept-proxy-from CIDR",
		"tern ctl [--control PATH] [--json] [--timeout DUR] COMMAND [ARGS...]",
	};
	/* The defaults as SPEC section 2 lists them. */
	static const char *const defaults[] = {
		"[0.0.0.0:8443]", "[127.0.0.1:8080]", "[CPUs allowed]", "[100000]", "[1.2]", "[1.3]",
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
	test_defaults();
	test_full_command_line();
	test_short_and_other_spellings();
	test_repeated();
	test_help_and_version();
	test_usage();
	test_unknown_and_unexpected();
	test_missing_values();
	test_listen_is_default();
	test_err_buffer();
	return check_summary();
}
