/* Unit tests for proxy/cli.c, the values flags take: integers and their
 * bounds, sizes, durations, TLS versions, log levels, OpenSSL strings,
 * listen and backend addresses and how many of each, and how a bad value
 * is quoted back (escaped, cut), each error compared as the exact string
 * an operator sees.
 *
 * A name that does not resolve is reported in the same "invalid value"
 * form, with "; cannot resolve HOST" after the expected text: see
 * test_addresses(). */
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "check.h"
#include "cli_fixture.h"

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
	 * RFC 6761): a --backend is fine (tern starts, warns and keeps
	 * trying), except under --check, which refuses it in the same form as
	 * a --listen, naming the host, wherever --check stands. */
	EXPECT_RUN("--backend", "nosuch.invalid:80");
	CHECK_EQ_INT(cfg.backends[0].ss.ss_family, AF_UNSPEC);
	CHECK_EQ_STR(cfg.backend_names[0].host, "nosuch.invalid");
	EXPECT_ERR("--backend: invalid value 'nosuch.invalid:80' (expected HOST:PORT, [IPV6]:PORT or unix:/path; "
		   "cannot resolve nosuch.invalid)",
		   "--check", "--backend", "nosuch.invalid:80");
	EXPECT_ERR("--backend: invalid value 'nosuch.invalid:80' (expected HOST:PORT, [IPV6]:PORT or unix:/path; "
		   "cannot resolve nosuch.invalid)",
		   "--backend", "127.0.0.1:80", "--backend", "nosuch.invalid:80", "--check");
	/* A name that resolves passes --check. */
	EXPECT_RUN("--backend", "localhost:80", "--check");
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
	/* A cut never leaves half a UTF-8 character behind. */
	memcpy(value + 127, "\xc3\xa9", 2);
	snprintf(want, sizeof(want), "--log-level: invalid value '%.127s...' (expected error, warn, info or debug)",
		 value);
	EXPECT_ERR(want, "--log-level", value);

	/* A value of exactly 128 bytes is shown whole. */
	value[128] = '\0';
	snprintf(want, sizeof(want), "--log-level: invalid value '%s' (expected error, warn, info or debug)", value);
	EXPECT_ERR(want, "--log-level", value);
}

int main(void)
{
	test_numbers();
	test_durations();
	test_tls_and_log_level();
	test_strings();
	test_addresses();
	test_address_limits();
	test_value_display();
	return check_summary();
}
