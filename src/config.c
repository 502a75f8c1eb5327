/* Configuration defaults. */
#include <stdio.h>
#include <string.h>

#include "tern/config.h"
#include "tern/cpus.h"

/* One worker per CPU the process may use: a worker is one thread running
 * one ring, so more would only time-share a CPU (or, under a CPU quota,
 * be throttled in turn). */
static void default_workers(struct tern_config *cfg)
{
	struct tern_cpus cpus;
	char why[TERN_CPUS_TEXT_MAX];

	tern_cpus_get("/", TERN_MAX_WORKERS, &cpus);
	cfg->workers = cpus.count;
	snprintf(cfg->workers_from, sizeof(cfg->workers_from), " workers_from=%s",
		 tern_cpus_describe(&cpus, why, sizeof(why)));
}

void tern_config_init(struct tern_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->num_listen = 0;
	cfg->num_backends = 0;
	cfg->num_certs = 0;
	cfg->session_cache = TERN_DEFAULT_SESSION_CACHE;
	cfg->alpn = NULL;
	cfg->alpn_wire_len = 0;
	cfg->client_ca_path = NULL;
	cfg->verify_client = TERN_VERIFY_CLIENT_NONE;
	cfg->crl_path = NULL;
	cfg->strict_sni = false;
	default_workers(cfg);
	cfg->max_conns = TERN_DEFAULT_MAX_CONNS;
	cfg->tls_min = TERN_TLS_1_2;
	cfg->tls_max = TERN_TLS_1_3;
	cfg->ciphers = TERN_DEFAULT_CIPHERS;
	cfg->ciphersuites = TERN_DEFAULT_CIPHERSUITES;
	cfg->groups = TERN_DEFAULT_GROUPS;
	cfg->handshake_timeout_ms = TERN_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	cfg->idle_timeout_ms = TERN_DEFAULT_IDLE_TIMEOUT_MS;
	cfg->connect_timeout_ms = TERN_DEFAULT_CONNECT_TIMEOUT_MS;
	cfg->backend_check_ms = 0;
	cfg->backend_retry_ms = TERN_DEFAULT_BACKEND_RETRY_MS;
	cfg->resolve_interval_ms = TERN_DEFAULT_RESOLVE_INTERVAL_MS;
	cfg->drain_timeout_ms = TERN_DEFAULT_DRAIN_TIMEOUT_MS;
	cfg->buffer_size = TERN_DEFAULT_BUFFER_SIZE;
	cfg->ring_entries = TERN_DEFAULT_RING_ENTRIES;
	cfg->read_buffers = TERN_DEFAULT_READ_BUFFERS;
	cfg->log_level = TERN_LOG_INFO;
	cfg->access_log = false;
	cfg->check = false;
	cfg->control_path = NULL;
	cfg->num_tickets = TERN_DEFAULT_NUM_TICKETS;
	cfg->ticket_keys_path = NULL;
	cfg->ticket_rotate_ms = TERN_DEFAULT_TICKET_ROTATE_MS;
	cfg->ticket_refresh_ms = TERN_DEFAULT_TICKET_REFRESH_MS;
	cfg->ticket_flush_delay_ms = TERN_DEFAULT_TICKET_FLUSH_DELAY_MS;
	/* One send and one client wake-up fewer per connection, for no
	 * measurable CPU (bench/RESULTS.md, "Handshake tickets with the
	 * first response"). */
	cfg->handshake_tickets = TERN_HANDSHAKE_TICKETS_WITH_DATA;
	cfg->session_lifetime_ms = TERN_DEFAULT_SESSION_LIFETIME_MS;
	cfg->watch = true;
	cfg->reload_interval_ms = 0;
	cfg->metrics_enabled = false;
	cfg->user = NULL;
	cfg->proxy_protocol = TERN_PROXY_OFF;
	cfg->tcp_keepalive_ms = 0;
	cfg->accept_proxy = TERN_ACCEPT_PROXY_OFF;
	cfg->num_accept_proxy_from = 0;
}

uint64_t tern_config_rotate_keep(const struct tern_config *cfg)
{
	uint64_t rotate = cfg->ticket_rotate_ms ? cfg->ticket_rotate_ms : 1;

	uint64_t keep = 1 + (cfg->session_lifetime_ms + rotate - 1) / rotate;

	return keep < TERN_MAX_ROTATE_KEEP ? keep : TERN_MAX_ROTATE_KEEP;
}
