/* The flag table (cli_flags.h) and the handlers of the flags no generic
 * type describes. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_flags.h"
#include "tern/parse.h"

#define MAX_CONNS_LIMIT 10000000u

/* A well-formed address whose name did not resolve: names are resolved
 * only without brackets, so the host is everything before the last ':'. */
int tern_cli_cannot_resolve(const struct tern_cli_flag *flag, const char *value, char *err, size_t err_len)
{
	char expected[TERN_ADDR_TEXT_MAX + 256];
	char host[TERN_CLI_SHOWN_MAX + 4], host_shown[TERN_CLI_SHOWN_MAX + 4];
	const char *colon = strrchr(value, ':');
	size_t host_len = colon != NULL ? (size_t)(colon - value) : strlen(value);

	if (host_len >= sizeof(host))
		host_len = sizeof(host) - 1;
	memcpy(host, value, host_len);
	host[host_len] = '\0';
	tern_cli_show_value(host, host_shown, sizeof(host_shown));
	snprintf(expected, sizeof(expected), "%s; cannot resolve %s", flag->expected, host_shown);
	return tern_cli_invalid_value(flag, value, expected, err, err_len);
}

/* Adds one address to addrs[*num] (--listen, --backend, --metrics);
 * names: where a --backend's host name goes, unresolved (NULL: resolve it
 * now, as --listen does). */
static int add_addr(const struct tern_cli_flag *flag, const char *value, bool allow_unix, struct tern_addr *addrs,
		    struct tern_addr_name *names, size_t *num, const char *too_many, char *err, size_t err_len)
{
	char expected[TERN_ADDR_TEXT_MAX + 256];

	if (*num >= flag->max) {
		tern_cli_expand(flag, too_many, expected, sizeof(expected));
		return tern_cli_invalid_value(flag, value, expected, err, err_len);
	}
	/* --backend names are resolved when tern starts and every
	 * --resolve-interval (backends.h), so one that does not resolve yet
	 * is no mistake on the command line; only --check insists on it
	 * (cli.c, check_backend_names). */
	int rc = names != NULL ? tern_parse_addr_unresolved(value, allow_unix, &addrs[*num], &names[*num])
			       : tern_parse_addr(value, allow_unix, &addrs[*num]);
	if (rc == -EINVAL || rc == -ERANGE)
		return tern_cli_invalid_value(flag, value, flag->expected, err, err_len);
	if (rc < 0)
		return tern_cli_cannot_resolve(flag, value, err, err_len);
	(*num)++;
	return 0;
}

static int apply_listen(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg, char *err,
			size_t err_len)
{
	return add_addr(flag, value, false, cfg->listen, NULL, &cfg->num_listen, "at most {max} listen addresses", err,
			err_len);
}

static int apply_backend(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg, char *err,
			 size_t err_len)
{
	return add_addr(flag, value, true, cfg->backends, cfg->backend_names, &cfg->num_backends,
			"at most {max} backends", err,
			err_len);
}

/* One endpoint: a repeated --metrics replaces the earlier one, as a
 * repeated --control does. */
static int apply_metrics(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg, char *err,
			 size_t err_len)
{
	size_t num = 0;
	int rc = add_addr(flag, value, false, &cfg->metrics_addr, NULL, &num, "at most {max} metrics addresses", err,
			  err_len);

	if (rc < 0)
		return rc;
	cfg->metrics_enabled = true;
	return 0;
}

static int apply_cert(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg, char *err,
		      size_t err_len)
{
	char expected[64];

	if (value[0] == '\0')
		return tern_cli_invalid_value(flag, value, flag->expected, err, err_len);
	if (cfg->num_certs >= flag->max) {
		tern_cli_expand(flag, "at most {max} certificates", expected, sizeof(expected));
		return tern_cli_invalid_value(flag, value, expected, err, err_len);
	}
	cfg->certs[cfg->num_certs++] = (struct tern_cert_config){.cert_path = value};
	return 0;
}

/* --key and --ocsp: each belongs to the --cert before it, once. */
static int apply_cert_part(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg, char *err,
			   size_t err_len)
{
	bool is_key = strcmp(flag->name, "key") == 0;

	if (value[0] == '\0')
		return tern_cli_invalid_value(flag, value, flag->expected, err, err_len);
	if (cfg->num_certs == 0)
		return tern_cli_invalid_value(flag, value, "to follow a --cert", err, err_len);
	struct tern_cert_config *cc = &cfg->certs[cfg->num_certs - 1];
	const char **slot = is_key ? &cc->key_path : &cc->ocsp_path;
	if (*slot != NULL)
		return tern_cli_invalid_value(flag, value, is_key ? "one --key per --cert" : "one --ocsp per --cert",
					      err, err_len);
	*slot = value;
	return 0;
}

static int apply_alpn(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg, char *err,
		      size_t err_len)
{
	char expected[256];

	if (tern_parse_alpn(value, cfg->alpn_wire, sizeof(cfg->alpn_wire), &cfg->alpn_wire_len) < 0) {
		tern_cli_flag_expected(flag, expected, sizeof(expected));
		return tern_cli_invalid_value(flag, value, expected, err, err_len);
	}
	cfg->alpn = value;
	return 0;
}

/* A generic integer, and the operator's number needs no reason shown. */
static int apply_workers(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg, char *err,
			 size_t err_len)
{
	unsigned long n;
	char expected[64];

	if (tern_parse_uint(value, flag->min, flag->max, &n) < 0) {
		tern_cli_flag_expected(flag, expected, sizeof(expected));
		return tern_cli_invalid_value(flag, value, expected, err, err_len);
	}
	cfg->workers = (unsigned)n;
	cfg->workers_from[0] = '\0';
	return 0;
}

/* Checked here rather than at bind(): a path that cannot fit sun_path is
 * a typo to report with exit 2, not a failed start. */
static int apply_control(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg, char *err,
			 size_t err_len)
{
	char expected[128];

	if (value[0] == '\0' || strlen(value) > flag->max) {
		tern_cli_flag_expected(flag, expected, sizeof(expected));
		return tern_cli_invalid_value(flag, value, expected, err, err_len);
	}
	cfg->control_path = value;
	return 0;
}

/* One more source allowed to send a PROXY header (repeatable). */
static int apply_accept_proxy_from(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg,
				   char *err, size_t err_len)
{
	char expected[64];

	if (cfg->num_accept_proxy_from >= flag->max) {
		tern_cli_expand(flag, "at most {max} ranges", expected, sizeof(expected));
		return tern_cli_invalid_value(flag, value, expected, err, err_len);
	}
	if (tern_cidr_parse(value, &cfg->accept_proxy_from[cfg->num_accept_proxy_from]) < 0)
		return tern_cli_invalid_value(flag, value, flag->expected, err, err_len);
	cfg->num_accept_proxy_from++;
	return 0;
}

/* TCP_KEEPIDLE counts whole seconds (tcp(7)): 1500ms would be rounded one
 * way or the other behind the operator's back, so it is refused. */
static int apply_tcp_keepalive(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg,
			       char *err, size_t err_len)
{
	if (tern_parse_duration_ms(value, true, &cfg->tcp_keepalive_ms) < 0 || cfg->tcp_keepalive_ms % 1000 != 0 ||
	    cfg->tcp_keepalive_ms > flag->max)
		return tern_cli_invalid_value(flag, value, flag->expected, err, err_len);
	return 0;
}

/* Looked up here, like a --listen host name: a typo is exit 2 before
 * anything starts. The switch itself comes after binding (main.c,
 * privs.h). */
static int apply_user(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg, char *err,
		      size_t err_len)
{
	if (value[0] == '\0' || getpwnam(value) == NULL)
		return tern_cli_invalid_value(flag, value, flag->expected, err, err_len);
	cfg->user = value;
	return 0;
}

static const struct tern_cli_word words_verify_client[] = {
	{"none", TERN_VERIFY_CLIENT_NONE},
	{"optional", TERN_VERIFY_CLIENT_OPTIONAL},
	{"require", TERN_VERIFY_CLIENT_REQUIRE},
	{NULL, 0},
};
static const struct tern_cli_word words_tls_version[] = {
	{"1.2", TERN_TLS_1_2},
	{"1.3", TERN_TLS_1_3},
	{NULL, 0},
};
static const struct tern_cli_word words_on_off[] = {{"on", true}, {"off", false}, {NULL, 0}};
static const struct tern_cli_word words_handshake_tickets[] = {
	{"at-once", TERN_HANDSHAKE_TICKETS_AT_ONCE},
	{"with-data", TERN_HANDSHAKE_TICKETS_WITH_DATA},
	{NULL, 0},
};
static const struct tern_cli_word words_io[] = {
	{"auto", TERN_IO_AUTO},
	{"uring", TERN_IO_URING},
	{"epoll", TERN_IO_EPOLL},
	{NULL, 0},
};
static const struct tern_cli_word words_proxy_protocol[] = {
	{"off", TERN_PROXY_OFF},
	{"v1", TERN_PROXY_V1},
	{"v2", TERN_PROXY_V2},
	{NULL, 0},
};
static const struct tern_cli_word words_accept_proxy[] = {
	{"off", TERN_ACCEPT_PROXY_OFF},
	{"v1", TERN_ACCEPT_PROXY_V1},
	{"v2", TERN_ACCEPT_PROXY_V2},
	{"any", TERN_ACCEPT_PROXY_ANY},
	{NULL, 0},
};
static const struct tern_cli_word words_log_level[] = {
	{"error", TERN_LOG_ERROR},
	{"warn", TERN_LOG_WARN},
	{"info", TERN_LOG_INFO},
	{"debug", TERN_LOG_DEBUG},
	{NULL, 0},
};

/* Bounds every duration flag has unless its row says otherwise: what
 * tern_parse_duration_ms() accepts (parse.h). */
#define DURATION_ANY .min = 1, .max = TERN_MAX_DURATION_MS
#define DURATION_OR_ZERO .min = 0, .max = TERN_MAX_DURATION_MS

/* HOW TO ADD A FLAG (docs/adding-a-flag.md has the longer version):
 *
 *  1. The field in struct tern_config (include/tern/config.h) and its
 *     default in tern_config_init() (src/config.c).
 *  2. One row below, where it should appear in --help:
 *       {.name = "idle-timeout", .metavar = "DUR", .type = TERN_CLI_DURATION,
 *        TERN_CLI_FIELD(idle_timeout_ms), DURATION_ANY,
 *        .help = "longest time a connection may pass no data"},
 *     The type gives the parsing, the "(expected ...)" text and the
 *     default shown ([5m], formatted from what tern_config_init() set):
 *     SWITCH (bool), UINT (.min/.max), DURATION (.min/.max in ms, .zero),
 *     SIZE (.min/.max bytes), WORDS (.words = {"word", enum value}... ,
 *     {NULL, 0}}), STRING (non-empty; .expected says what it is). Write
 *     bounds in texts as {min} and {max}. Set .default_text only when the
 *     default is not a value (e.g. "none", "CPUs allowed").
 *  3. Only when no type fits: .type = TERN_CLI_CUSTOM with an apply_*()
 *     handler above, .expected, and .default_text.
 *  4. A check between flags (one needs another) goes in cli.c's
 *     check_combinations().
 *  5. Run `cmake --build build --target regen-docs` and commit
 *     docs/options.md (and README's flag table) with the change; the man
 *     pages are built from the table. ctest -L docs fails until then.
 *
 * Short letters: only where the SPEC gives one (-l -b -c -w -h -V). */
const struct tern_cli_flag tern_cli_flags[] = {
	{.name = "listen", .short_name = 'l', .metavar = "ADDR", .type = TERN_CLI_CUSTOM, .apply = apply_listen,
	 .max = TERN_MAX_LISTEN, .expected = "HOST:PORT, [IPV6]:PORT or *:PORT",
	 .default_text = TERN_DEFAULT_LISTEN, .apply_default = true,
	 .help = "listening address; repeatable, up to {max}",
	 .details = "Each worker binds its own socket per address (SO_REUSEPORT), so the kernel spreads "
		    "connections over the workers. *:PORT is any IPv4 address; [::]:PORT any IPv6 address "
		    "(IPv6 only). Sockets passed by systemd (LISTEN_FDS) that match an address are used "
		    "instead of binding it."},
	{.name = "backend", .short_name = 'b', .metavar = "ADDR", .type = TERN_CLI_CUSTOM, .apply = apply_backend,
	 .max = TERN_MAX_BACKENDS, .expected = "HOST:PORT, [IPV6]:PORT or unix:/path",
	 .default_text = TERN_DEFAULT_BACKEND, .apply_default = true,
	 .help = "backend; repeatable, up to {max}, used round-robin over the healthy ones; a host name stands "
		 "for every address it has",
	 .details = "A backend that refuses or times out is skipped for the next one, once, and then for "
		    "--backend-retry. Host names are resolved at start and every --resolve-interval; a name that "
		    "does not resolve yet is retried while tern serves through the others (--check insists that "
		    "it resolves). See docs/backends.md."},
	{.name = "cert", .short_name = 'c', .metavar = "FILE", .type = TERN_CLI_CUSTOM, .apply = apply_cert,
	 .max = TERN_MAX_CERTS, .expected = "a non-empty path to a PEM file",
	 .default_text = "self-signed for localhost",
	 .help = "PEM with certificate chain and private key (or key in --key); repeatable, up to {max}: the "
		 "first is the default, the others are chosen by SNI",
	 .details = "A certificate is chosen by the client's SNI against its subjectAltName DNS names (the CN "
		    "when there are none); a wildcard covers exactly one label. An RSA and an ECDSA certificate "
		    "for the same names are both kept, and the client's signature algorithms choose. Without "
		    "any --cert, tern serves an in-memory self-signed certificate for localhost and warns."},
	{.name = "key", .metavar = "FILE", .type = TERN_CLI_CUSTOM, .apply = apply_cert_part,
	 .expected = "a non-empty path to a PEM file", .default_text = "key inside the cert file",
	 .help = "private key for the preceding --cert"},
	{.name = "ocsp", .metavar = "FILE", .type = TERN_CLI_CUSTOM, .apply = apply_cert_part,
	 .expected = "a non-empty path to a DER OCSP response", .default_text = "none",
	 .help = "DER OCSP response stapled for the preceding --cert",
	 .details = "Stapled when the client asks (status_request); re-read on reload."},
	{.name = "alpn", .metavar = "LIST", .type = TERN_CLI_CUSTOM, .apply = apply_alpn,
	 .max = TERN_MAX_ALPN_WIRE - 1,
	 .expected = "a comma list of protocols such as h2,http/1.1, each 1 to 255 printable bytes, at most "
		     "{max} bytes in all",
	 .default_text = "none",
	 .help = "ALPN protocols in server preference order, e.g. h2,http/1.1; no common one: no ALPN, the "
		 "handshake goes on"},
	{.name = "session-cache", .metavar = "N", .type = TERN_CLI_UINT, TERN_CLI_FIELD(session_cache), .min = 0,
	 .max = TERN_MAX_SESSION_CACHE,
	 .help = "TLS 1.2 session-ID cache entries per worker, up to {max}; 0 is off",
	 .details = "Session tickets work either way."},
	{.name = "client-ca", .metavar = "FILE", .type = TERN_CLI_STRING, TERN_CLI_FIELD(client_ca_path),
	 .expected = "a non-empty path to a PEM file of CA certificates", .default_text = "none",
	 .help = "PEM bundle of CAs that client certificates must chain to",
	 .details = "Also what the control command verify-client checks against."},
	{.name = "verify-client", .metavar = "MODE", .type = TERN_CLI_WORDS, TERN_CLI_FIELD(verify_client),
	 .words = words_verify_client,
	 .help = "none, optional (a certificate, if sent, must verify) or require; optional and require need "
		 "--client-ca"},
	{.name = "crl", .metavar = "FILE", .type = TERN_CLI_STRING, TERN_CLI_FIELD(crl_path),
	 .expected = "a non-empty path to a PEM file of CRLs", .default_text = "none",
	 .help = "PEM file of CRLs (one or more) checked for every client certificate and the CAs above it; "
		 "needs --client-ca",
	 .details = "Every CA in a client's chain needs its CRL in the file, and an expired CRL refuses what "
		    "its CA issued (nginx's ssl_crl and HAProxy's crl-file check the same way). Re-read on "
		    "reload and watched. See docs/tls-options.md."},
	{.name = "strict-sni", .type = TERN_CLI_SWITCH, TERN_CLI_FIELD(strict_sni), .default_text = "off",
	 .help = "refuse a handshake whose SNI names no --cert (alert unrecognized_name) or that has no SNI "
		 "(handshake_failure); off: the first --cert serves them"},
	{.name = "workers", .short_name = 'w', .metavar = "N", .type = TERN_CLI_CUSTOM, .apply = apply_workers,
	 .min = 1, .max = TERN_MAX_WORKERS, .expected = "an integer from {min} to {max}",
	 .default_text = "CPUs allowed",
	 .help = "worker threads, {min} to {max}; by default one per CPU of the affinity mask, capped by the "
		 "cgroup CPU quota",
	 .details = "The quota (cgroup v2 cpu.max, v1 cpu.cfs_quota_us, of tern's cgroup or any ancestor) is "
		    "rounded up. --check and the ready line say what limited the count (workers_from=)."},
	{.name = "max-conns", .metavar = "N", .type = TERN_CLI_UINT, TERN_CLI_FIELD(max_conns), .min = 1,
	 .max = MAX_CONNS_LIMIT,
	 .help = "open client connections at most, whole process",
	 .details = "Beyond it new connections wait in the kernel's listen backlog."},
	{.name = "tls-min", .metavar = "VER", .type = TERN_CLI_WORDS, TERN_CLI_FIELD(tls_min),
	 .words = words_tls_version, .help = "lowest TLS version: 1.2 or 1.3"},
	{.name = "tls-max", .metavar = "VER", .type = TERN_CLI_WORDS, TERN_CLI_FIELD(tls_max),
	 .words = words_tls_version, .help = "highest TLS version: 1.2 or 1.3"},
	{.name = "ciphers", .metavar = "STR", .type = TERN_CLI_STRING, TERN_CLI_FIELD(ciphers),
	 .expected = "a non-empty OpenSSL cipher list", .help = "OpenSSL cipher list for TLS 1.2"},
	{.name = "ciphersuites", .metavar = "STR", .type = TERN_CLI_STRING, TERN_CLI_FIELD(ciphersuites),
	 .expected = "a non-empty list of TLS 1.3 cipher suites", .help = "TLS 1.3 cipher suites"},
	{.name = "groups", .metavar = "STR", .type = TERN_CLI_STRING, TERN_CLI_FIELD(groups),
	 .expected = "a non-empty list of groups such as X25519:P-256", .help = "key-exchange groups"},
	{.name = "num-tickets", .metavar = "N", .type = TERN_CLI_UINT, TERN_CLI_FIELD(num_tickets), .min = 0,
	 .max = TERN_MAX_NUM_TICKETS,
	 .help = "session tickets sent after a full handshake, {min} to {max}",
	 .details = "TLS 1.3 (SSL_CTX_set_num_tickets); one after a resumption."},
	{.name = "ticket-keys", .metavar = "FILE", .type = TERN_CLI_STRING, TERN_CLI_FIELD(ticket_keys_path),
	 .expected = "a non-empty path to a ticket key file", .default_text = "random, in memory",
	 .help = "session ticket keys, one base64 80-byte key per line (as nginx); the first encrypts, all "
		 "decrypt",
	 .details = "Lets a fleet resume each other's sessions. The file may also hold ROLE SINCE KEY lines "
		    "that tern keys writes, to stage a rotation across a fleet. Re-read on reload, when it "
		    "changes (--watch) and on the control command rotate-ticket-keys; it must not be readable "
		    "by other users."},
	{.name = "ticket-rotate", .metavar = "DUR", .type = TERN_CLI_DURATION, TERN_CLI_FIELD(ticket_rotate_ms),
	 DURATION_ANY,
	 .help = "a new encryption key this often; earlier ones decrypt for --session-lifetime (the previous "
		 "two); with --ticket-keys, only when given: tern rotates the file (tern keys FILE rotate)",
	 .details = "Keys kept: 1 + lifetime / rotation, rounded up, at most 64, with a warning at start when "
		    "the rotation is so fast that the oldest tickets would stop resuming early."},
	{.name = "ticket-refresh", .metavar = "DUR", .type = TERN_CLI_DURATION, TERN_CLI_FIELD(ticket_refresh_ms),
	 DURATION_OR_ZERO, .zero = TERN_CLI_ZERO_OFF,
	 .help = "a fresh ticket for every TLS 1.3 connection whose newest is older than this; 0 is off"},
	{.name = "ticket-flush-delay", .metavar = "DUR", .type = TERN_CLI_DURATION,
	 TERN_CLI_FIELD(ticket_flush_delay_ms), DURATION_OR_ZERO, .zero = TERN_CLI_ZERO_ALLOWED,
	 .help = "how long requested tickets wait for the connection's next write before they are sent alone"},
	{.name = "session-lifetime", .metavar = "DUR", .type = TERN_CLI_DURATION,
	 TERN_CLI_FIELD(session_lifetime_ms), .min = TERN_MIN_SESSION_LIFETIME_MS,
	 .max = TERN_MAX_SESSION_LIFETIME_MS,
	 .expected = "a duration from {min} to {max} (TLS 1.3 allows tickets at most seven days)",
	 .help = "lifetime of TLS 1.3 tickets and TLS 1.2 sessions, {min} to {max}",
	 .details = "The lifetime every TLS 1.3 ticket announces and the TLS 1.2 session timeout "
		    "(SSL_CTX_set_timeout); --check prints it."},
	{.name = "handshake-tickets", .metavar = "M", .type = TERN_CLI_WORDS, TERN_CLI_FIELD(handshake_tickets),
	 .words = words_handshake_tickets,
	 .help = "when a TLS 1.3 handshake's tickets leave: at-once, in a send of their own, or with-data, "
		 "ahead of the first backend data (or after --ticket-flush-delay)",
	 .details = "with-data saves a send, a TCP segment and a client wake-up per connection for no "
		    "measurable CPU (bench/RESULTS.md); the client then holds its tickets when the first "
		    "response arrives rather than when the handshake ends, and a client that closes "
		    "within --ticket-flush-delay without receiving data gets none. TLS 1.2 tickets are "
		    "part of the handshake either way."},
	{.name = "handshake-timeout", .metavar = "DUR", .type = TERN_CLI_DURATION,
	 TERN_CLI_FIELD(handshake_timeout_ms), DURATION_ANY, .help = "longest TLS handshake per connection"},
	{.name = "idle-timeout", .metavar = "DUR", .type = TERN_CLI_DURATION, TERN_CLI_FIELD(idle_timeout_ms),
	 DURATION_ANY, .help = "longest time a connection may pass no data"},
	{.name = "connect-timeout", .metavar = "DUR", .type = TERN_CLI_DURATION,
	 TERN_CLI_FIELD(connect_timeout_ms), DURATION_ANY, .help = "longest connect to a backend"},
	{.name = "tcp-keepalive", .metavar = "DUR", .type = TERN_CLI_CUSTOM, .apply = apply_tcp_keepalive,
	 .max = TERN_MAX_TCP_KEEPALIVE_MS,
	 .expected = "0 (off) or a whole number of seconds from 1s to 32767s, such as 60s, 5m or 2h",
	 .default_text = "0",
	 .help = "TCP keepalive on client and backend sockets: first probe after this idle time (whole "
		 "seconds, up to 32767s), then every 10s (or DUR if shorter), 3 unanswered end it; 0 is off"},
	{.name = "backend-check", .metavar = "DUR", .type = TERN_CLI_DURATION, TERN_CLI_FIELD(backend_check_ms),
	 DURATION_OR_ZERO, .zero = TERN_CLI_ZERO_OFF,
	 .help = "connect to every backend address this often and skip the ones that do not answer until they "
		 "do; 0 is off: a backend is judged by the connections sent to it only"},
	{.name = "backend-retry", .metavar = "DUR", .type = TERN_CLI_DURATION, TERN_CLI_FIELD(backend_retry_ms),
	 DURATION_OR_ZERO, .zero = TERN_CLI_ZERO_ALLOWED,
	 .help = "a backend address whose connect failed is skipped this long, then tried again (nginx's "
		 "fail_timeout); 0 never skips"},
	{.name = "resolve-interval", .metavar = "DUR", .type = TERN_CLI_DURATION,
	 TERN_CLI_FIELD(resolve_interval_ms), DURATION_OR_ZERO, .zero = TERN_CLI_ZERO_OFF,
	 .help = "resolve backend host names again this often (every address a name has is used); 0 resolves "
		 "them at start only; a name that does not resolve is tried again, tern serves meanwhile"},
	{.name = "drain-timeout", .metavar = "DUR", .type = TERN_CLI_DURATION, TERN_CLI_FIELD(drain_timeout_ms),
	 DURATION_ANY, .help = "on SIGTERM/SIGINT, how long connections may finish"},
	{.name = "buffer-size", .metavar = "SIZE", .type = TERN_CLI_SIZE, TERN_CLI_FIELD(buffer_size),
	 .min = TERN_MIN_BUFFER_SIZE, .max = TERN_MAX_BUFFER_SIZE,
	 .help = "per-direction buffer per connection, {min} to {max}",
	 .details = "Bounds the memory a connection holds, with OpenSSL's own state."},
	{.name = "io", .metavar = "ENGINE", .type = TERN_CLI_WORDS, TERN_CLI_FIELD(io), .words = words_io,
	 .help = "auto, uring or epoll: the I/O engine of every worker; auto uses io_uring and falls back to "
		 "epoll, with one warning, when it is refused (seccomp, kernel.io_uring_disabled)",
	 .details = "uring exits 1 when io_uring is refused. tern -vv says which engine auto would run, and why."},
	{.name = "ring-entries", .metavar = "N", .type = TERN_CLI_UINT, TERN_CLI_FIELD(ring_entries),
	 .min = TERN_MIN_RING_ENTRIES, .max = TERN_MAX_RING_ENTRIES,
	 .help = "io_uring submission queue entries per worker, {min} to {max}"},
	{.name = "read-buffers", .metavar = "N", .type = TERN_CLI_UINT, TERN_CLI_FIELD(read_buffers), .min = 0,
	 .max = TERN_MAX_READ_BUFFERS,
	 .help = "--buffer-size buffers per worker that connections borrow to read into, so an idle one holds "
		 "none; {min} to {max}, 0 is off",
	 .details = "io_uring provided buffers; on epoll, one scratch buffer per worker lent the same way. With "
		    "0 each connection keeps its own read buffers."},
	{.name = "control", .metavar = "PATH", .type = TERN_CLI_CUSTOM, .apply = apply_control,
	 .max = TERN_CLI_CONTROL_PATH_MAX, .expected = TERN_CLI_EXPECT_CONTROL, .default_text = "off",
	 .help = "UNIX control socket, mode 0600, for tern ctl",
	 .details = "One command per line, one JSON reply per line: see tern-ctl(8)."},
	{.name = "metrics", .metavar = "ADDR", .type = TERN_CLI_CUSTOM, .apply = apply_metrics, .max = 1,
	 .expected = "HOST:PORT, [IPV6]:PORT or *:PORT", .default_text = "off",
	 .help = "Prometheus text endpoint, GET /metrics on HOST:PORT, and GET /healthz and /readyz (every "
		 "worker answering)",
	 .details = "/readyz answers 200 only while every worker answers a round trip through its queue, and "
		    "503 while draining."},
	{.name = "watch", .metavar = "on|off", .type = TERN_CLI_WORDS, TERN_CLI_FIELD(watch), .words = words_on_off,
	 .help = "reload when a loaded file changes (certificates, keys, CA, CRL, OCSP, ticket keys; symlink "
		 "swaps and renames included)"},
	{.name = "reload-interval", .metavar = "DUR", .type = TERN_CLI_DURATION,
	 TERN_CLI_FIELD(reload_interval_ms), DURATION_OR_ZERO, .zero = TERN_CLI_ZERO_OFF,
	 .help = "also look for changed files this often, for filesystems without inotify; 0 is off",
	 .details = "For NFS and FUSE mounts that inotify does not see."},
	{.name = "user", .metavar = "NAME", .type = TERN_CLI_CUSTOM, .apply = apply_user,
	 .expected = "the name of an existing user", .default_text = "stay",
	 .help = "become this user once listeners are bound; needs root",
	 .details = "Listeners are bound, and certificates, keys and the control socket set up, before the "
		    "switch; reloads read files as this user. Under systemd use User= instead."},
	{.name = "accept-proxy", .metavar = "V", .type = TERN_CLI_WORDS, TERN_CLI_FIELD(accept_proxy),
	 .words = words_accept_proxy,
	 .help = "expect a PROXY protocol header from a load balancer before the TLS handshake: off, v1, v2 or "
		 "any; its address is the client's everywhere; needs --accept-proxy-from",
	 .details = "The header may arrive split at any byte, and the ClientHello in the same segment. A bad "
		    "or late header ends that connection only, counted apart from TLS failures. See "
		    "docs/proxy-protocol-accept.md."},
	{.name = "accept-proxy-from", .metavar = "CIDR", .type = TERN_CLI_CUSTOM, .apply = apply_accept_proxy_from,
	 .max = TERN_MAX_ACCEPT_PROXY_FROM,
	 .expected = "an address range such as 10.0.0.0/8, ::1/128 or 0.0.0.0/0 (no address bits set past the "
		     "prefix), or one address",
	 .default_text = "none",
	 .help = "sources allowed to send it, e.g. 10.0.0.0/8; repeatable, up to {max}; 0.0.0.0/0 and ::/0 "
		 "allow all; others end at once"},
	{.name = "proxy-protocol", .metavar = "V", .type = TERN_CLI_WORDS, TERN_CLI_FIELD(proxy_protocol),
	 .words = words_proxy_protocol,
	 .help = "PROXY protocol header to backends: off, v1 or v2 (v2 with TLVs for ALPN, SNI, TLS version, "
		 "cipher, client cert)"},
	{.name = "log-level", .metavar = "L", .type = TERN_CLI_WORDS, TERN_CLI_FIELD(log_level),
	 .words = words_log_level, .help = "error, warn, info or debug"},
	{.name = "access-log", .type = TERN_CLI_SWITCH, TERN_CLI_FIELD(access_log),
	 .help = "one line per closed connection on stderr",
	 .details = "Peer, SNI, ALPN, version, cipher, resumed, bytes each way, duration and close reason; "
		    "client-controlled bytes escaped."},
	{.name = "check", .type = TERN_CLI_SWITCH, TERN_CLI_FIELD(check), .default_text = "",
	 .help = "load and validate everything, print a summary, exit 0 or 1"},
	{.name = "help", .short_name = 'h', .type = TERN_CLI_ACTION, .action = TERN_CLI_HELP, .default_text = "",
	 .help = "print this help and exit"},
	{.name = "version", .short_name = 'V', .type = TERN_CLI_ACTION, .action = TERN_CLI_VERSION,
	 .default_text = "", .help = "print the version and exit"},
	{.name = "vv", .type = TERN_CLI_DOC_ONLY, .default_text = "",
	 .help = "print the build: OpenSSL, liburing, kernel, the I/O engine --io auto would run and why; exit"},
};

const size_t tern_cli_num_flags = sizeof(tern_cli_flags) / sizeof(tern_cli_flags[0]);

const struct tern_cli_flag *tern_cli_flag_find(const char *name)
{
	for (size_t i = 0; i < tern_cli_num_flags; i++) {
		if (strcmp(tern_cli_flags[i].name, name) == 0)
			return &tern_cli_flags[i];
	}
	return NULL;
}
