/* The command line: argv to struct tern_config, with one exact message per
 * mistake so that operators, unit tests and integration tests all see the
 * same words. Every message names the flag in its long form, even when the
 * short form was typed, so one message can be searched for in the docs. */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "cli.h"
#include "tern/parse.h"

/* Short options are their own letter; long-only ones count up from 256 so
 * they can never collide with a character getopt returns. */
enum cli_flag_id {
	FLAG_LISTEN = 'l',
	FLAG_BACKEND = 'b',
	FLAG_CERT = 'c',
	FLAG_WORKERS = 'w',
	FLAG_HELP = 'h',
	FLAG_VERSION = 'V',
	FLAG_KEY = 256,
	FLAG_OCSP,
	FLAG_ALPN,
	FLAG_SESSION_CACHE,
	FLAG_CLIENT_CA,
	FLAG_VERIFY_CLIENT,
	FLAG_MAX_CONNS,
	FLAG_TLS_MIN,
	FLAG_TLS_MAX,
	FLAG_CIPHERS,
	FLAG_CIPHERSUITES,
	FLAG_GROUPS,
	FLAG_HANDSHAKE_TIMEOUT,
	FLAG_IDLE_TIMEOUT,
	FLAG_CONNECT_TIMEOUT,
	FLAG_DRAIN_TIMEOUT,
	FLAG_BUFFER_SIZE,
	FLAG_RING_ENTRIES,
	FLAG_READ_BUFFERS,
	FLAG_IO,
	FLAG_LOG_LEVEL,
	FLAG_ACCESS_LOG,
	FLAG_CHECK,
	FLAG_NUM_TICKETS,
	FLAG_TICKET_KEYS,
	FLAG_TICKET_ROTATE,
	FLAG_TICKET_REFRESH,
	FLAG_TICKET_FLUSH_DELAY,
	FLAG_CONTROL,
	FLAG_PROXY_PROTOCOL,
	FLAG_METRICS,
	FLAG_USER,
	FLAG_SESSION_LIFETIME,
	FLAG_WATCH,
	FLAG_RELOAD_INTERVAL,
	FLAG_HANDSHAKE_TICKETS,
	FLAG_ACCEPT_PROXY,
	FLAG_ACCEPT_PROXY_FROM,
};

/* Only the flags of this version: later ones from the SPEC are refused as
 * unknown until the engine implements them, rather than silently ignored. */
static const char cli_short_options[] = ":l:b:c:w:hV";

#define EXPECT_DURATION "a duration with a unit such as 250ms, 30s, 5m or 2h"
/* A well-formed duration outside the bounds gets its own words: telling an
 * operator who typed "0s" that a unit is expected would mislead. */
#define EXPECT_DURATION_RANGE "a duration from 1ms to 720h"
/* Where zero is allowed ("0" alone or with a unit). */
#define EXPECT_DURATION_OR_OFF "0 (off) or a duration with a unit such as 250ms, 30s, 5m or 2h"
#define EXPECT_DURATION_OR_ZERO "0 or a duration with a unit such as 250ms, 30s, 5m or 2h"
#define EXPECT_DURATION_RANGE_ZERO "a duration from 0 to 720h"

struct cli_flag {
	const char *name; /* long form, without "--" */
	int has_arg;      /* no_argument or required_argument */
	int id;
	const char *expected; /* the "(expected ...)" text; NULL for switches */
};

static const struct cli_flag cli_flags[] = {
	{"listen", required_argument, FLAG_LISTEN, "HOST:PORT, [IPV6]:PORT or *:PORT"},
	{"backend", required_argument, FLAG_BACKEND, "HOST:PORT, [IPV6]:PORT or unix:/path"},
	{"cert", required_argument, FLAG_CERT, "a non-empty path to a PEM file"},
	{"key", required_argument, FLAG_KEY, "a non-empty path to a PEM file"},
	{"ocsp", required_argument, FLAG_OCSP, "a non-empty path to a DER OCSP response"},
	{"alpn", required_argument, FLAG_ALPN,
	 "a comma list of protocols such as h2,http/1.1, each 1 to 255 printable bytes, at most 511 bytes "
	 "in all"},
	{"session-cache", required_argument, FLAG_SESSION_CACHE, "an integer from 0 to 10000000"},
	{"client-ca", required_argument, FLAG_CLIENT_CA, "a non-empty path to a PEM file of CA certificates"},
	{"verify-client", required_argument, FLAG_VERIFY_CLIENT, "none, optional or require"},
	{"workers", required_argument, FLAG_WORKERS, "an integer from 1 to 1024"},
	{"max-conns", required_argument, FLAG_MAX_CONNS, "an integer from 1 to 10000000"},
	{"tls-min", required_argument, FLAG_TLS_MIN, "1.2 or 1.3"},
	{"tls-max", required_argument, FLAG_TLS_MAX, "1.2 or 1.3"},
	{"ciphers", required_argument, FLAG_CIPHERS, "a non-empty OpenSSL cipher list"},
	{"ciphersuites", required_argument, FLAG_CIPHERSUITES, "a non-empty list of TLS 1.3 cipher suites"},
	{"groups", required_argument, FLAG_GROUPS, "a non-empty list of groups such as X25519:P-256"},
	{"num-tickets", required_argument, FLAG_NUM_TICKETS, "an integer from 0 to 16"},
	{"ticket-keys", required_argument, FLAG_TICKET_KEYS, "a non-empty path to a ticket key file"},
	{"ticket-rotate", required_argument, FLAG_TICKET_ROTATE, EXPECT_DURATION},
	{"ticket-refresh", required_argument, FLAG_TICKET_REFRESH, EXPECT_DURATION_OR_OFF},
	{"ticket-flush-delay", required_argument, FLAG_TICKET_FLUSH_DELAY, EXPECT_DURATION_OR_ZERO},
	{"session-lifetime", required_argument, FLAG_SESSION_LIFETIME,
	 "a duration from 1s to 168h (TLS 1.3 allows tickets at most seven days)"},
	{"watch", required_argument, FLAG_WATCH, "on or off"},
	{"handshake-tickets", required_argument, FLAG_HANDSHAKE_TICKETS, "at-once or with-data"},
	{"reload-interval", required_argument, FLAG_RELOAD_INTERVAL, EXPECT_DURATION_OR_OFF},
	{"handshake-timeout", required_argument, FLAG_HANDSHAKE_TIMEOUT, EXPECT_DURATION},
	{"idle-timeout", required_argument, FLAG_IDLE_TIMEOUT, EXPECT_DURATION},
	{"connect-timeout", required_argument, FLAG_CONNECT_TIMEOUT, EXPECT_DURATION},
	{"drain-timeout", required_argument, FLAG_DRAIN_TIMEOUT, EXPECT_DURATION},
	{"buffer-size", required_argument, FLAG_BUFFER_SIZE, "a size such as 16k or 1m, from 1k to 16m"},
	{"ring-entries", required_argument, FLAG_RING_ENTRIES, "an integer from 8 to 32768"},
	{"read-buffers", required_argument, FLAG_READ_BUFFERS, "an integer from 0 to 4096"},
	{"io", required_argument, FLAG_IO, "auto, uring or epoll"},
	{"control", required_argument, FLAG_CONTROL,
	 "a non-empty path of at most 107 bytes for the UNIX control socket"},
	{"metrics", required_argument, FLAG_METRICS, "HOST:PORT, [IPV6]:PORT or *:PORT"},
	{"user", required_argument, FLAG_USER, "the name of an existing user"},
	{"proxy-protocol", required_argument, FLAG_PROXY_PROTOCOL, "off, v1 or v2"},
	{"accept-proxy", required_argument, FLAG_ACCEPT_PROXY, "off, v1, v2 or any"},
	{"accept-proxy-from", required_argument, FLAG_ACCEPT_PROXY_FROM,
	 "an address range such as 10.0.0.0/8, ::1/128 or 0.0.0.0/0 (no address bits set past the "
	 "prefix), or one address"},
	{"log-level", required_argument, FLAG_LOG_LEVEL, "error, warn, info or debug"},
	{"access-log", no_argument, FLAG_ACCESS_LOG, NULL},
	{"check", no_argument, FLAG_CHECK, NULL},
	{"help", no_argument, FLAG_HELP, NULL},
	{"version", no_argument, FLAG_VERSION, NULL},
};

#define NUM_CLI_FLAGS (sizeof(cli_flags) / sizeof(cli_flags[0]))

/* The bounds in the expected texts above and in the help text are written
 * out as words; these keep them honest when config.h changes. */
_Static_assert(TERN_MAX_WORKERS == 1024u, "update the --workers texts");
_Static_assert(TERN_MIN_BUFFER_SIZE == 1024u && TERN_MAX_BUFFER_SIZE == 16u * 1024u * 1024u,
	       "update the --buffer-size texts");
_Static_assert(TERN_MIN_RING_ENTRIES == 8u && TERN_MAX_RING_ENTRIES == 32768u,
	       "update the --ring-entries texts");
_Static_assert(TERN_MAX_LISTEN == 64 && TERN_MAX_BACKENDS == 256, "update the --listen/--backend texts");
_Static_assert(TERN_MAX_CERTS == 64, "update the --cert texts");
_Static_assert(TERN_MAX_ACCEPT_PROXY_FROM == 64, "update the --accept-proxy-from texts");
_Static_assert(TERN_MAX_ALPN_WIRE == 512, "update the --alpn texts");
_Static_assert(TERN_MAX_SESSION_CACHE == 10000000u && TERN_DEFAULT_SESSION_CACHE == 20000u,
	       "update the --session-cache texts");
_Static_assert(TERN_DEFAULT_MAX_CONNS == 100000u, "update the --max-conns default in the help");
_Static_assert(TERN_DEFAULT_HANDSHAKE_TIMEOUT_MS == 10000u && TERN_DEFAULT_IDLE_TIMEOUT_MS == 300000u &&
		       TERN_DEFAULT_CONNECT_TIMEOUT_MS == 5000u && TERN_DEFAULT_DRAIN_TIMEOUT_MS == 30000u,
	       "update the timeout defaults in the help");
_Static_assert(TERN_DEFAULT_BUFFER_SIZE == 16u * 1024u, "update the --buffer-size default in the help");
_Static_assert(TERN_DEFAULT_RING_ENTRIES == 4096u, "update the --ring-entries default in the help");
_Static_assert(TERN_MAX_READ_BUFFERS == 4096u && TERN_DEFAULT_READ_BUFFERS == 64u, "update the --read-buffers texts");
_Static_assert(TERN_MAX_NUM_TICKETS == 16u && TERN_DEFAULT_NUM_TICKETS == 2u, "update the --num-tickets texts");
_Static_assert(TERN_DEFAULT_TICKET_ROTATE_MS == 3600000u && TERN_DEFAULT_TICKET_REFRESH_MS == 0u &&
		       TERN_DEFAULT_TICKET_FLUSH_DELAY_MS == 200u,
	       "update the ticket defaults in the help");
_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == 108, "update the --control texts");

#define TERN_MAX_CONNS_LIMIT 10000000ul

/* Longest piece of a value quoted back in a message: enough for any valid
 * unix socket address ("unix:" and 107 bytes), short enough that the
 * "(expected ...)" after it still fits in TERN_CLI_ERR_MAX. */
#define SHOWN_VALUE_MAX 128

static const struct cli_flag *flag_by_id(int id)
{
	for (size_t i = 0; i < NUM_CLI_FLAGS; i++) {
		if (cli_flags[i].id == id)
			return &cli_flags[i];
	}
	return NULL;
}

/* Copies value for quoting in a message: control characters become \xNN
 * so the message stays on one line, and a value longer than
 * SHOWN_VALUE_MAX is cut and ends in "..." so what was expected still
 * follows it. */
static void show_value(const char *value, char *out, size_t out_len)
{
	size_t used = 0;

	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
		char piece[8];
		size_t piece_len = 1;

		if (*p < 0x20 || *p == 0x7f)
			piece_len = (size_t)snprintf(piece, sizeof(piece), "\\x%02x", *p);
		else
			piece[0] = (char)*p;
		/* Keep room for "..." and the NUL whatever comes next. */
		if (used + piece_len + 4 > out_len) {
			memcpy(out + used, "...", 3);
			used += 3;
			break;
		}
		memcpy(out + used, piece, piece_len);
		used += piece_len;
	}
	out[used] = '\0';
}

__attribute__((format(printf, 3, 4)))
static int cli_error(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && err_len > 0) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int invalid_value(char *err, size_t err_len, const struct cli_flag *flag, const char *value,
			 const char *expected)
{
	char shown[SHOWN_VALUE_MAX + 4];

	show_value(value, shown, sizeof(shown));
	return cli_error(err, err_len, "--%s: invalid value '%s' (expected %s)", flag->name, shown, expected);
}

/* Adds one --listen or --backend address. */
static int add_addr(const struct cli_flag *flag, const char *value, bool allow_unix, struct tern_addr *addrs,
		    size_t *num, size_t max, const char *what, char *err, size_t err_len)
{
	char expected[TERN_ADDR_TEXT_MAX + 128];

	if (*num >= max) {
		snprintf(expected, sizeof(expected), "at most %zu %s", max, what);
		return invalid_value(err, err_len, flag, value, expected);
	}
	int rc = tern_parse_addr(value, allow_unix, &addrs[*num]);
	if (rc == -EINVAL || rc == -ERANGE)
		return invalid_value(err, err_len, flag, value, flag->expected);
	if (rc < 0) {
		/* Well-formed, but the name did not resolve: names are resolved
		 * only without brackets, so the host is everything before the
		 * last ':'. */
		char host[SHOWN_VALUE_MAX + 4], host_shown[SHOWN_VALUE_MAX + 4];
		const char *colon = strrchr(value, ':');
		size_t host_len = colon != NULL ? (size_t)(colon - value) : strlen(value);
		if (host_len >= sizeof(host))
			host_len = sizeof(host) - 1;
		memcpy(host, value, host_len);
		host[host_len] = '\0';
		show_value(host, host_shown, sizeof(host_shown));
		snprintf(expected, sizeof(expected), "%s; cannot resolve %s", flag->expected, host_shown);
		return invalid_value(err, err_len, flag, value, expected);
	}
	(*num)++;
	return 0;
}

static int parse_unsigned(const struct cli_flag *flag, const char *value, unsigned long min, unsigned long max,
			  unsigned *out, char *err, size_t err_len)
{
	unsigned long n;

	if (tern_parse_uint(value, min, max, &n) < 0)
		return invalid_value(err, err_len, flag, value, flag->expected);
	*out = (unsigned)n;
	return 0;
}

static int parse_duration(const struct cli_flag *flag, const char *value, bool allow_zero, uint64_t *out_ms,
			  char *err, size_t err_len)
{
	int rc = tern_parse_duration_ms(value, allow_zero, out_ms);

	if (rc == -ERANGE)
		return invalid_value(err, err_len, flag, value,
				     allow_zero ? EXPECT_DURATION_RANGE_ZERO : EXPECT_DURATION_RANGE);
	if (rc < 0)
		return invalid_value(err, err_len, flag, value, flag->expected);
	return 0;
}

/* Strings handed to OpenSSL (or to open()) later: only emptiness is
 * checked here, OpenSSL judges the rest when the contexts are built. */
static int parse_string(const struct cli_flag *flag, const char *value, const char **out, char *err,
			size_t err_len)
{
	if (value[0] == '\0')
		return invalid_value(err, err_len, flag, value, flag->expected);
	*out = value;
	return 0;
}

static const char *tls_version_text(enum tern_tls_version v)
{
	return v == TERN_TLS_1_2 ? "1.2" : "1.3";
}

/* Handles one flag that getopt_long() returned with its value. */
static int apply_flag(const struct cli_flag *flag, const char *value, struct tern_config *cfg, char *err,
		      size_t err_len)
{
	switch (flag->id) {
	case FLAG_LISTEN:
		return add_addr(flag, value, false, cfg->listen, &cfg->num_listen, TERN_MAX_LISTEN,
				"listen addresses", err, err_len);
	case FLAG_BACKEND:
		return add_addr(flag, value, true, cfg->backends, &cfg->num_backends, TERN_MAX_BACKENDS,
				"backends", err, err_len);
	case FLAG_CERT:
		if (value[0] == '\0')
			return invalid_value(err, err_len, flag, value, flag->expected);
		if (cfg->num_certs >= TERN_MAX_CERTS)
			return invalid_value(err, err_len, flag, value, "at most 64 certificates");
		cfg->certs[cfg->num_certs++] = (struct tern_cert_config){.cert_path = value};
		return 0;
	case FLAG_KEY:
	case FLAG_OCSP: {
		/* Each belongs to the --cert before it, once. */
		if (value[0] == '\0')
			return invalid_value(err, err_len, flag, value, flag->expected);
		if (cfg->num_certs == 0)
			return invalid_value(err, err_len, flag, value, "to follow a --cert");
		struct tern_cert_config *cc = &cfg->certs[cfg->num_certs - 1];
		const char **slot = flag->id == FLAG_KEY ? &cc->key_path : &cc->ocsp_path;
		if (*slot != NULL)
			return invalid_value(err, err_len, flag, value,
					     flag->id == FLAG_KEY ? "one --key per --cert" : "one --ocsp per --cert");
		*slot = value;
		return 0;
	}
	case FLAG_ALPN:
		if (tern_parse_alpn(value, cfg->alpn_wire, sizeof(cfg->alpn_wire), &cfg->alpn_wire_len) < 0)
			return invalid_value(err, err_len, flag, value, flag->expected);
		cfg->alpn = value;
		return 0;
	case FLAG_SESSION_CACHE:
		return parse_unsigned(flag, value, 0, TERN_MAX_SESSION_CACHE, &cfg->session_cache, err, err_len);
	case FLAG_CLIENT_CA:
		return parse_string(flag, value, &cfg->client_ca_path, err, err_len);
	case FLAG_VERIFY_CLIENT:
		if (strcmp(value, "none") == 0)
			cfg->verify_client = TERN_VERIFY_CLIENT_NONE;
		else if (strcmp(value, "optional") == 0)
			cfg->verify_client = TERN_VERIFY_CLIENT_OPTIONAL;
		else if (strcmp(value, "require") == 0)
			cfg->verify_client = TERN_VERIFY_CLIENT_REQUIRE;
		else
			return invalid_value(err, err_len, flag, value, flag->expected);
		return 0;
	case FLAG_WORKERS:
		cfg->workers_from[0] = '\0'; /* the operator's number: no reason to show */
		return parse_unsigned(flag, value, 1, TERN_MAX_WORKERS, &cfg->workers, err, err_len);
	case FLAG_MAX_CONNS:
		return parse_unsigned(flag, value, 1, TERN_MAX_CONNS_LIMIT, &cfg->max_conns, err, err_len);
	case FLAG_RING_ENTRIES:
		return parse_unsigned(flag, value, TERN_MIN_RING_ENTRIES, TERN_MAX_RING_ENTRIES, &cfg->ring_entries,
				      err, err_len);
	case FLAG_READ_BUFFERS:
		return parse_unsigned(flag, value, 0, TERN_MAX_READ_BUFFERS, &cfg->read_buffers, err, err_len);
	case FLAG_IO:
		if (strcmp(value, "auto") == 0)
			cfg->io = TERN_IO_AUTO;
		else if (strcmp(value, "uring") == 0)
			cfg->io = TERN_IO_URING;
		else if (strcmp(value, "epoll") == 0)
			cfg->io = TERN_IO_EPOLL;
		else
			return invalid_value(err, err_len, flag, value, flag->expected);
		return 0;
	case FLAG_TLS_MIN:
		if (tern_parse_tls_version(value, &cfg->tls_min) < 0)
			return invalid_value(err, err_len, flag, value, flag->expected);
		return 0;
	case FLAG_TLS_MAX:
		if (tern_parse_tls_version(value, &cfg->tls_max) < 0)
			return invalid_value(err, err_len, flag, value, flag->expected);
		return 0;
	case FLAG_CIPHERS:
		return parse_string(flag, value, &cfg->ciphers, err, err_len);
	case FLAG_CIPHERSUITES:
		return parse_string(flag, value, &cfg->ciphersuites, err, err_len);
	case FLAG_GROUPS:
		return parse_string(flag, value, &cfg->groups, err, err_len);
	case FLAG_HANDSHAKE_TIMEOUT:
		return parse_duration(flag, value, false, &cfg->handshake_timeout_ms, err, err_len);
	case FLAG_IDLE_TIMEOUT:
		return parse_duration(flag, value, false, &cfg->idle_timeout_ms, err, err_len);
	case FLAG_CONNECT_TIMEOUT:
		return parse_duration(flag, value, false, &cfg->connect_timeout_ms, err, err_len);
	case FLAG_DRAIN_TIMEOUT:
		return parse_duration(flag, value, false, &cfg->drain_timeout_ms, err, err_len);
	case FLAG_BUFFER_SIZE:
		if (tern_parse_size(value, TERN_MIN_BUFFER_SIZE, TERN_MAX_BUFFER_SIZE, &cfg->buffer_size) < 0)
			return invalid_value(err, err_len, flag, value, flag->expected);
		return 0;
	case FLAG_LOG_LEVEL:
		if (tern_parse_log_level(value, &cfg->log_level) < 0)
			return invalid_value(err, err_len, flag, value, flag->expected);
		return 0;
	case FLAG_ACCESS_LOG:
		cfg->access_log = true;
		return 0;
	case FLAG_CHECK:
		cfg->check = true;
		return 0;
	case FLAG_NUM_TICKETS:
		return parse_unsigned(flag, value, 0, TERN_MAX_NUM_TICKETS, &cfg->num_tickets, err, err_len);
	case FLAG_TICKET_KEYS:
		return parse_string(flag, value, &cfg->ticket_keys_path, err, err_len);
	case FLAG_TICKET_ROTATE:
		return parse_duration(flag, value, false, &cfg->ticket_rotate_ms, err, err_len);
	case FLAG_TICKET_REFRESH:
		return parse_duration(flag, value, true, &cfg->ticket_refresh_ms, err, err_len);
	case FLAG_TICKET_FLUSH_DELAY:
		return parse_duration(flag, value, true, &cfg->ticket_flush_delay_ms, err, err_len);
	case FLAG_SESSION_LIFETIME:
		/* Its own bounds, in the flag's expected text: the parser's
		 * range message would name 720h. */
		if (tern_parse_duration_ms(value, false, &cfg->session_lifetime_ms) < 0 ||
		    cfg->session_lifetime_ms < TERN_MIN_SESSION_LIFETIME_MS ||
		    cfg->session_lifetime_ms > TERN_MAX_SESSION_LIFETIME_MS)
			return invalid_value(err, err_len, flag, value, flag->expected);
		return 0;
	case FLAG_WATCH:
		if (strcmp(value, "on") == 0)
			cfg->watch = true;
		else if (strcmp(value, "off") == 0)
			cfg->watch = false;
		else
			return invalid_value(err, err_len, flag, value, flag->expected);
		return 0;
	case FLAG_HANDSHAKE_TICKETS:
		if (strcmp(value, "at-once") == 0)
			cfg->handshake_tickets = TERN_HANDSHAKE_TICKETS_AT_ONCE;
		else if (strcmp(value, "with-data") == 0)
			cfg->handshake_tickets = TERN_HANDSHAKE_TICKETS_WITH_DATA;
		else
			return invalid_value(err, err_len, flag, value, flag->expected);
		return 0;
	case FLAG_RELOAD_INTERVAL:
		return parse_duration(flag, value, true, &cfg->reload_interval_ms, err, err_len);
	case FLAG_CONTROL:
		/* Checked here rather than at bind(): a path that cannot fit
		 * sun_path is a typo to report with exit 2, not a failed start. */
		if (value[0] == '\0' || strlen(value) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return invalid_value(err, err_len, flag, value, flag->expected);
		cfg->control_path = value;
		return 0;
	case FLAG_USER:
		/* Looked up here, like a --listen host name: a typo is exit 2
		 * before anything starts. The switch itself comes after binding
		 * (main.c, privs.h). */
		if (value[0] == '\0' || getpwnam(value) == NULL)
			return invalid_value(err, err_len, flag, value, flag->expected);
		cfg->user = value;
		return 0;
	case FLAG_METRICS: {
		/* One endpoint: a repeated --metrics replaces the earlier one,
		 * as a repeated --control does. */
		size_t num = 0;
		int rc = add_addr(flag, value, false, &cfg->metrics_addr, &num, 1, "metrics addresses",
				  err, err_len);
		if (rc < 0)
			return rc;
		cfg->metrics_enabled = true;
		return 0;
	}
	case FLAG_PROXY_PROTOCOL:
		if (strcmp(value, "off") == 0)
			cfg->proxy_protocol = TERN_PROXY_OFF;
		else if (strcmp(value, "v1") == 0)
			cfg->proxy_protocol = TERN_PROXY_V1;
		else if (strcmp(value, "v2") == 0)
			cfg->proxy_protocol = TERN_PROXY_V2;
		else
			return invalid_value(err, err_len, flag, value, flag->expected);
		return 0;
	case FLAG_ACCEPT_PROXY:
		if (strcmp(value, "off") == 0)
			cfg->accept_proxy = TERN_ACCEPT_PROXY_OFF;
		else if (strcmp(value, "v1") == 0)
			cfg->accept_proxy = TERN_ACCEPT_PROXY_V1;
		else if (strcmp(value, "v2") == 0)
			cfg->accept_proxy = TERN_ACCEPT_PROXY_V2;
		else if (strcmp(value, "any") == 0)
			cfg->accept_proxy = TERN_ACCEPT_PROXY_ANY;
		else
			return invalid_value(err, err_len, flag, value, flag->expected);
		return 0;
	case FLAG_ACCEPT_PROXY_FROM:
		if (cfg->num_accept_proxy_from >= TERN_MAX_ACCEPT_PROXY_FROM)
			return invalid_value(err, err_len, flag, value, "at most 64 ranges");
		if (tern_cidr_parse(value, &cfg->accept_proxy_from[cfg->num_accept_proxy_from]) < 0)
			return invalid_value(err, err_len, flag, value, flag->expected);
		cfg->num_accept_proxy_from++;
		return 0;
	default:
		return cli_error(err, err_len, "--%s: not handled (internal error)", flag->name);
	}
}

/* A '?' from getopt_long(): an unknown option, or a switch given a value
 * with "--switch=value" (glibc then sets optopt to the switch's id; for an
 * unknown or ambiguous long option it sets optopt to 0). */
static int unknown_option(char **argv, char *err, size_t err_len)
{
	const struct cli_flag *flag = optopt != 0 ? flag_by_id(optopt) : NULL;
	const char *arg = argv[optind - 1];
	char text[SHOWN_VALUE_MAX + 4];

	if (flag != NULL) {
		const char *eq = strchr(arg, '=');
		return invalid_value(err, err_len, flag, eq != NULL ? eq + 1 : "", "no value");
	}
	if (optopt != 0) {
		char short_opt[3] = {'-', (char)optopt, '\0'};
		show_value(short_opt, text, sizeof(text));
	} else {
		/* Quote the name only: "--frob=1" is reported as '--frob'. */
		char name[SHOWN_VALUE_MAX + 4];
		size_t len = strcspn(arg, "=");
		if (len >= sizeof(name))
			len = sizeof(name) - 1;
		memcpy(name, arg, len);
		name[len] = '\0';
		show_value(name, text, sizeof(text));
	}
	return cli_error(err, err_len, "unknown option '%s' (see tern --help)", text);
}

int tern_cli_parse(int argc, char **argv, struct tern_config *cfg, char *err, size_t err_len)
{
	struct option long_options[NUM_CLI_FLAGS + 1];
	char shown[SHOWN_VALUE_MAX + 4];
	const char *ticket_rotate_value = NULL; /* as typed, for the check after all flags */
	int rc;

	for (size_t i = 0; i < NUM_CLI_FLAGS; i++) {
		long_options[i] = (struct option){
			.name = cli_flags[i].name,
			.has_arg = cli_flags[i].has_arg,
			.flag = NULL,
			.val = cli_flags[i].id,
		};
	}
	long_options[NUM_CLI_FLAGS] = (struct option){0};

	/* -vv (SPEC section 2) answers at once, as --help and -V do, wherever
	 * it stands before "--": matched whole here, since getopt would read
	 * it as -v twice, and a single -v means nothing. */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "-vv") == 0)
			return TERN_CLI_BUILD;

	/* optind = 0 makes glibc reinitialise all of getopt's state, so the
	 * parser can run again (unit tests call it many times); opterr = 0
	 * because messages are ours to word. */
	optind = 0;
	opterr = 0;
	for (;;) {
		int id = argc > 0 ? getopt_long(argc, argv, cli_short_options, long_options, NULL) : -1;
		if (id == -1)
			break;
		if (id == '?')
			return unknown_option(argv, err, err_len);
		if (id == ':') {
			const struct cli_flag *flag = flag_by_id(optopt);
			if (flag == NULL || flag->expected == NULL)
				return cli_error(err, err_len, "missing value for an option (internal error)");
			return cli_error(err, err_len, "--%s: missing value (expected %s)", flag->name,
					 flag->expected);
		}
		/* --help and --version answer at once: whatever follows them is
		 * not checked, as with most tools. */
		if (id == FLAG_HELP)
			return TERN_CLI_HELP;
		if (id == FLAG_VERSION)
			return TERN_CLI_VERSION;

		const struct cli_flag *flag = flag_by_id(id);
		if (flag == NULL)
			return cli_error(err, err_len, "option %d not handled (internal error)", id);
		rc = apply_flag(flag, optarg, cfg, err, err_len);
		if (rc < 0)
			return rc;
		if (id == FLAG_TICKET_ROTATE)
			ticket_rotate_value = optarg;
	}
	/* getopt_long() moves operands after the options, so the first one
	 * left is the first one typed. */
	if (argc > 0 && optind < argc) {
		show_value(argv[optind], shown, sizeof(shown));
		return cli_error(err, err_len, "unexpected argument '%s' (see tern --help)", shown);
	}

	if (cfg->tls_min > cfg->tls_max)
		return cli_error(err, err_len, "--tls-min: invalid value '%s' (expected a version not above --tls-max %s)",
				 tls_version_text(cfg->tls_min), tls_version_text(cfg->tls_max));
	/* With a key file, an explicit --ticket-rotate rotates the file
	 * itself (staged, then encrypting one interval later, retired after
	 * --session-lifetime): for one instance, or the one that owns the
	 * fleet's copy. Without it the file changes only when edited. */
	if (ticket_rotate_value != NULL && cfg->ticket_keys_path != NULL)
		cfg->ticket_rotate_file = true;
	/* Asking for a client certificate with nothing to verify it against
	 * would accept any: refused rather than guessed at. */
	if (cfg->verify_client != TERN_VERIFY_CLIENT_NONE && cfg->client_ca_path == NULL)
		return invalid_value(err, err_len, flag_by_id(FLAG_VERIFY_CLIENT),
				     cfg->verify_client == TERN_VERIFY_CLIENT_REQUIRE ? "require" : "optional",
				     "none, or a --client-ca to verify client certificates against");

	/* A PROXY header says who the client is: taken from anyone, it
	 * would let every client claim any address. */
	if (cfg->accept_proxy != TERN_ACCEPT_PROXY_OFF && cfg->num_accept_proxy_from == 0)
		return invalid_value(err, err_len, flag_by_id(FLAG_ACCEPT_PROXY),
				     cfg->accept_proxy == TERN_ACCEPT_PROXY_V1   ? "v1"
				     : cfg->accept_proxy == TERN_ACCEPT_PROXY_V2 ? "v2"
										 : "any",
				     "--accept-proxy-from too: the sources allowed to send the header, "
				     "0.0.0.0/0 and ::/0 for all");

	/* Defaults only when none was given: a --listen replaces the default
	 * address rather than adding to it. */
	if (cfg->num_listen == 0) {
		rc = tern_parse_addr(TERN_DEFAULT_LISTEN, false, &cfg->listen[0]);
		if (rc < 0)
			return cli_error(err, err_len, "default listen address %s: %s", TERN_DEFAULT_LISTEN,
					 strerror(-rc));
		cfg->num_listen = 1;
		cfg->listen_is_default = true;
	}
	if (cfg->num_backends == 0) {
		rc = tern_parse_addr(TERN_DEFAULT_BACKEND, true, &cfg->backends[0]);
		if (rc < 0)
			return cli_error(err, err_len, "default backend %s: %s", TERN_DEFAULT_BACKEND,
					 strerror(-rc));
		cfg->num_backends = 1;
	}
	return TERN_CLI_RUN;
}

/* Laid out like the table in SPEC section 2: flag, meaning, default. The
 * _Static_asserts above tie the numbers written here to config.h. */
static const char cli_usage[] =
	"Usage: tern [OPTIONS]\n"
	"       tern ctl [--control PATH] [--json] [--timeout DUR] COMMAND [ARGS...]\n"
	"       tern keys FILE generate|add|promote|retire|rotate|list (see tern keys --help)\n"
	"\n"
	"Terminates TLS on the listening addresses and forwards the plaintext to the backends.\n"
	"With no options: listen on " TERN_DEFAULT_LISTEN ", forward to " TERN_DEFAULT_BACKEND ",\n"
	"and serve an in-memory self-signed certificate for localhost (with a warning).\n"
	"\n"
	"ADDR is HOST:PORT, [IPV6]:PORT, *:PORT (any IPv4 address) or, for backends, unix:/path.\n"
	"DUR needs a unit: 250ms, 30s, 5m or 2h; a bare number is refused.\n"
	"SIZE is a number of bytes, or a number with k, m or g (powers of 1024).\n"
	"\n"
	"Options:\n"
	"  -l, --listen ADDR            listening address; repeatable, up to 64 [" TERN_DEFAULT_LISTEN "]\n"
	"  -b, --backend ADDR           backend; repeatable, up to 256, used round-robin\n"
	"                               [" TERN_DEFAULT_BACKEND "]\n"
	"  -c, --cert FILE              PEM with certificate chain and private key (or key in --key);\n"
	"                               repeatable, up to 64: the first is the default, the others are\n"
	"                               chosen by SNI [self-signed for localhost]\n"
	"      --key FILE               private key for the preceding --cert [key inside the cert file]\n"
	"      --ocsp FILE              DER OCSP response stapled for the preceding --cert [none]\n"
	"      --alpn LIST              ALPN protocols in server preference order, e.g. h2,http/1.1;\n"
	"                               no common one: no ALPN, the handshake goes on [none]\n"
	"      --session-cache N        TLS 1.2 session-ID cache entries per worker, 0 is off [20000]\n"
	"      --client-ca FILE         PEM bundle of CAs that client certificates must chain to [none]\n"
	"      --verify-client MODE     none, optional (a certificate, if sent, must verify) or require;\n"
	"                               optional and require need --client-ca [none]\n"
	"  -w, --workers N              worker threads, 1 to 1024; by default one per CPU of the\n"
	"                               affinity mask, capped by the cgroup CPU quota [CPUs allowed]\n"
	"      --max-conns N            open client connections at most, whole process [100000]\n"
	"      --tls-min VER            lowest TLS version: 1.2 or 1.3 [1.2]\n"
	"      --tls-max VER            highest TLS version: 1.2 or 1.3 [1.3]\n"
	"      --ciphers STR            OpenSSL cipher list for TLS 1.2\n"
	"                               [" TERN_DEFAULT_CIPHERS "]\n"
	"      --ciphersuites STR       TLS 1.3 cipher suites\n"
	"        [" TERN_DEFAULT_CIPHERSUITES "]\n"
	"      --groups STR             key-exchange groups [" TERN_DEFAULT_GROUPS "]\n"
	"      --num-tickets N          session tickets sent after a full handshake, 0 to 16 [2]\n"
	"      --ticket-keys FILE       session ticket keys, one base64 80-byte key per line (as nginx);\n"
	"                               the first encrypts, all decrypt [random, in memory]\n"
	"      --ticket-rotate DUR      a new encryption key this often; earlier ones decrypt for\n"
	"                               --session-lifetime (the previous two) [1h]; with --ticket-keys,\n"
	"                               only when given: tern rotates the file (tern keys FILE rotate)\n"
	"      --ticket-refresh DUR     a fresh ticket for every TLS 1.3 connection whose newest is\n"
	"                               older than this; 0 is off [0]\n"
	"      --ticket-flush-delay DUR how long requested tickets wait for the connection's next write\n"
	"                               before they are sent alone [200ms]\n"
	"      --session-lifetime DUR   lifetime of TLS 1.3 tickets and TLS 1.2 sessions, 1s to 168h [2h]\n"
	"      --handshake-tickets M    when a TLS 1.3 handshake's tickets leave: at-once, in a send of\n"
	"                               their own, or with-data, ahead of the first backend data (or\n"
	"                               after --ticket-flush-delay) [at-once]\n"
	"      --handshake-timeout DUR  longest TLS handshake per connection [10s]\n"
	"      --idle-timeout DUR       longest time a connection may pass no data [5m]\n"
	"      --connect-timeout DUR    longest connect to a backend [5s]\n"
	"      --drain-timeout DUR      on SIGTERM/SIGINT, how long connections may finish [30s]\n"
	"      --buffer-size SIZE       per-direction buffer per connection, 1k to 16m [16k]\n"
	"      --io ENGINE              auto, uring or epoll: the I/O engine of every worker; auto uses\n"
	"                               io_uring and falls back to epoll, with one warning, when it is\n"
	"                               refused (seccomp, kernel.io_uring_disabled) [auto]\n"
	"      --ring-entries N         io_uring submission queue entries per worker, 8 to 32768 [4096]\n"
	"      --read-buffers N         --buffer-size buffers per worker that connections borrow to read\n"
	"                               into, so an idle one holds none; 0 to 4096, 0 is off [64]\n"
	"      --control PATH           UNIX control socket, mode 0600, for tern ctl [off]\n"
	"      --metrics ADDR           Prometheus text endpoint, GET /metrics on HOST:PORT, and\n"
	"                               GET /healthz and /readyz (every worker answering) [off]\n"
	"      --watch on|off           reload when a loaded file changes (certificates, keys, CA, OCSP,\n"
	"                               ticket keys; symlink swaps and renames included) [on]\n"
	"      --reload-interval DUR    also look for changed files this often, for filesystems without\n"
	"                               inotify; 0 is off [0]\n"
	"      --user NAME              run as this user once listeners are bound and files read;\n"
	"                               needs root [stay]\n"
	"      --proxy-protocol V       PROXY protocol header to backends: off, v1 or v2 (v2 with TLVs\n"
	"                               for ALPN, SNI, TLS version, cipher, client cert) [off]\n"
	"      --accept-proxy V         expect a PROXY protocol header from a load balancer before\n"
	"                               the TLS handshake: off, v1, v2 or any; its address is the\n"
	"                               client's everywhere; needs --accept-proxy-from [off]\n"
	"      --accept-proxy-from CIDR sources allowed to send it, e.g. 10.0.0.0/8; repeatable, up\n"
	"                               to 64; 0.0.0.0/0 and ::/0 allow all; others end at once [none]\n"
	"      --log-level L            error, warn, info or debug [info]\n"
	"      --access-log             one line per closed connection on stderr [off]\n"
	"      --check                  load and validate everything, print a summary, exit 0 or 1\n"
	"  -h, --help                   print this help and exit\n"
	"  -V, --version                print the version and exit\n"
	"  -vv                          print the build: OpenSSL, liburing, kernel, the I/O engine\n"
	"                               --io auto would run and why; exit\n"
	"\n"
	"Bad input on the command line exits with status 2.\n";

const char *tern_cli_usage(void)
{
	return cli_usage;
}
