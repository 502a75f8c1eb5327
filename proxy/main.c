/* tern: parse the command line, check everything, start the workers, then
 * wait for signals. Everything else lives in src/. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_flags.h"
#include "ctl.h"
#include "keys.h"
#include "tern/build_info.h"
#include "tern/clock.h"
#include "tern/control.h"
#include "tern/io_probe.h"
#include "tern/log.h"
#include "tern/metrics.h"
#include "tern/privs.h"
#include "tern/sd_notify.h"
#include "tern/sd_watchdog.h"
#include "tern/server.h"
#include "tern/ticket_keys.h"
#include "tern/tls_ctx.h"

#define EXIT_USAGE 2
#define EXIT_FILE 1

/* "a,b,c" from a list of addresses, for the start-up line. */
static void join_addrs(const struct tern_addr *addrs, size_t n, char *out, size_t out_len)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && used < out_len; i++) {
		int m = snprintf(out + used, out_len - used, "%s%s", i ? "," : "", addrs[i].text);
		if (m < 0)
			break;
		used += (size_t)m;
	}
}

/* " accept_proxy=V accept_proxy_from=A,B" for --check and the ready
 * line; empty with --accept-proxy off. */
static void describe_accept_proxy(const struct tern_config *cfg, char *out, size_t out_len)
{
	char range[TERN_CIDR_TEXT_MAX];
	size_t used;

	out[0] = '\0';
	if (cfg->accept_proxy == TERN_ACCEPT_PROXY_OFF)
		return;
	int m = snprintf(out, out_len, " accept_proxy=%s accept_proxy_from=",
		     tern_cli_flag_word(tern_cli_flag_find("accept-proxy"), cfg->accept_proxy));
	used = m > 0 ? (size_t)m : 0;
	for (size_t i = 0; i < cfg->num_accept_proxy_from && used < out_len; i++) {
		tern_cidr_format(&cfg->accept_proxy_from[i], range, sizeof(range));
		m = snprintf(out + used, out_len - used, "%s%s", i ? "," : "", range);
		if (m < 0)
			break;
		used += (size_t)m;
	}
}

static void log_totals(struct tern_server *srv)
{
	struct tern_totals t;
	tern_server_totals(srv, &t);
	tern_log(TERN_LOG_INFO,
		 "stopped: conns_total=%llu handshakes_full=%llu handshakes_resumed=%llu "
		 "handshake_failures=%llu probe_connections=%llu backend_connect_failures=%llu "
		 "bytes_client_in=%llu bytes_client_out=%llu conns_refused=%llu",
		 (unsigned long long)t.conns_total, (unsigned long long)t.handshakes_full,
		 (unsigned long long)t.handshakes_resumed, (unsigned long long)t.handshake_failures,
		 (unsigned long long)t.probe_connections, (unsigned long long)t.backend_connect_failures,
		 (unsigned long long)t.bytes_client_in, (unsigned long long)t.bytes_client_out,
		 (unsigned long long)(t.conns_refused_drain + t.conns_refused_no_memory +
				      t.conns_refused_overflow));
}

/* Signals are taken synchronously here; every other thread blocks them. */
static void wait_for_signals(struct tern_server *srv, struct tern_control *control,
			     const sigset_t *set)
{
	unsigned stop_signals = 0;
	struct tern_sd_watchdog watchdog;

	/* WatchdogSec=: fed from here, every tick, while the workers answer. */
	tern_sd_watchdog_init(&watchdog, tern_clock_ms());
	while (!tern_server_finished(srv)) {
		struct timespec tick = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
		tern_sd_watchdog_tick(&watchdog, srv, tern_clock_ms());
		int sig = sigtimedwait(set, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			if (stop_signals++ == 0) {
				tern_log(TERN_LOG_INFO, "%s: draining (up to --drain-timeout %llums); "
					 "send it again to close at once", strsignal(sig),
					 (unsigned long long)srv->cfg->drain_timeout_ms);
				tern_server_drain(srv);
				tern_sd_notify_stopping();
			} else {
				tern_log(TERN_LOG_INFO, "%s again: closing every connection now",
					 strsignal(sig));
				tern_server_stop_now(srv);
			}
		} else if (sig == SIGHUP) {
			tern_log(TERN_LOG_INFO, "SIGHUP: reloading");
			tern_control_request_reload(control);
		}
	}
}

int main(int argc, char **argv)
{
	static struct tern_config cfg;
	struct tern_server srv;
	char err[512];
	char listen[1024], backends[1024], identity[TERN_CERT_LINE_MAX];
	char accept_proxy[64 + TERN_MAX_ACCEPT_PROXY_FROM * TERN_CIDR_TEXT_MAX];
	sigset_t set;
	int ret;

	if (argc > 1 && strcmp(argv[1], "ctl") == 0)
		return tern_ctl_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "keys") == 0)
		return tern_keys_main(argc - 1, argv + 1);
	tern_config_init(&cfg);
	ret = tern_cli_parse(argc, argv, &cfg, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "tern: %s\n", err);
		return EXIT_USAGE;
	}
	if (ret == TERN_CLI_HELP) {
		fputs(tern_cli_usage(), stdout);
		return 0;
	}
	if (ret == TERN_CLI_VERSION) {
		printf("tern %s\n", TERN_VERSION);
		return 0;
	}
	if (ret == TERN_CLI_BUILD) {
		tern_build_info_print(stdout, tern_io_probe_ring, TERN_DEFAULT_READ_BUFFERS > 0);
		return fflush(stdout) == 0 ? 0 : EXIT_FILE;
	}
	tern_log_set_level(cfg.log_level);

	ret = tern_server_prepare(&srv, &cfg, !cfg.check, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "tern: %s\n", err);
		return ret == -EINVAL ? EXIT_USAGE : EXIT_FILE;
	}
	join_addrs(cfg.listen, cfg.num_listen, listen, sizeof(listen));
	join_addrs(cfg.backends, cfg.num_backends, backends, sizeof(backends));
	tern_server_describe(&srv, identity, sizeof(identity));
	describe_accept_proxy(&cfg, accept_proxy, sizeof(accept_proxy));
	if (cfg.check) {
		printf("configuration ok: workers=%u%s io=%s listen=%s backends=%s %s num_tickets=%u "
		       "ticket_keys=%s (%u)%s\n",
		       cfg.workers, cfg.workers_from, tern_io_probe_engine_name(srv.io_engine), listen, backends,
		       identity, cfg.num_tickets,
		       cfg.ticket_keys_path ? cfg.ticket_keys_path : "memory",
		       tern_ticket_keys_count(srv.ticket_keys), accept_proxy);
		for (size_t i = 0; i < tern_tls_identities_count(srv.identities); i++) {
			tern_tls_identities_describe(srv.identities, i, identity, sizeof(identity));
			printf("%s\n", identity);
		}
		tern_server_join_and_free(&srv);
		return 0;
	}
	if (cfg.num_certs == 0)
		tern_log(TERN_LOG_WARN, "no --cert given: serving an in-memory self-signed "
			 "certificate for localhost; clients will not trust it");
	for (size_t i = 0; i < tern_tls_identities_count(srv.identities); i++) {
		char line[TERN_CERT_LINE_MAX];
		tern_tls_identities_describe(srv.identities, i, line, sizeof(line));
		tern_log(TERN_LOG_INFO, "%s", line);
	}

	/* Block before starting threads, so workers inherit the mask and only
	 * sigtimedwait() above sees these signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The control socket is bound before any worker runs, so a bad
	 * --control fails the start as a whole. Requests it queues before the
	 * workers run wait in their queues. */
	struct tern_control *control = NULL;
	ret = tern_control_start(&srv, &control, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "tern: %s\n", err);
		tern_server_join_and_free(&srv);
		return EXIT_FILE;
	}
	/* The same for --metrics, right after: a port in use fails the start
	 * before any worker runs, and a port below 1024 is bound before --user
	 * drops root. It only reads counters, zero until the workers start. */
	struct tern_metrics *metrics = NULL;
	ret = tern_metrics_start(&srv, &metrics, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "tern: %s\n", err);
		tern_control_stop(control);
		tern_server_join_and_free(&srv);
		return EXIT_FILE;
	}
	/* Everything that needs root is done: listeners bound or inherited,
	 * certificates, keys and ticket keys read, the control socket bound.
	 * Workers start as the user; a reload re-reads files as it. */
	if (cfg.user) {
		ret = tern_privs_drop(cfg.user, err, sizeof(err));
		if (ret < 0) {
			fprintf(stderr, "tern: %s\n", err);
			tern_metrics_stop(metrics);
			tern_control_stop(control);
			tern_server_join_and_free(&srv);
			return ret == -ENOENT ? EXIT_USAGE : EXIT_FILE;
		}
		tern_log(TERN_LOG_INFO, "running as user %s (uid %u, gid %u)", cfg.user,
			 (unsigned)getuid(), (unsigned)getgid());
	}
	ret = tern_server_start(&srv, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "tern: %s\n", err);
		tern_metrics_stop(metrics);
		tern_control_stop(control);
		tern_server_join_and_free(&srv);
		return EXIT_FILE;
	}
	tern_server_describe_listen(&srv, listen, sizeof(listen)); /* inherited sockets too */
	tern_log(TERN_LOG_INFO, "tern %s ready: workers=%u%s io=%s listen=%s backends=%s %s%s",
		 TERN_VERSION, cfg.workers, cfg.workers_from, tern_io_probe_engine_name(srv.io_engine), listen,
		 backends, identity, accept_proxy);
	/* From here on lines go through the log thread, so a slow stderr
	 * never holds up a worker (log.h); up to here they were written
	 * directly, the ready line too, before systemd hears of it. */
	if (tern_log_start() < 0)
		tern_log(TERN_LOG_WARN, "no log thread: lines are written directly to stderr");
	tern_sd_notify_ready(); /* after the line above: systemd's "started" follows it */
	wait_for_signals(&srv, control, &set);
	tern_metrics_stop(metrics);
	tern_control_stop(control);
	log_totals(&srv);
	tern_server_join_and_free(&srv);
	tern_log_stop(); /* what is buffered is written, for at most TERN_LOG_FLUSH_MS */
	return 0;
}
