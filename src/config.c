/* Configuration defaults. */
#include <string.h>
#include <unistd.h>

#include "tern/config.h"

/* One worker per online CPU: a worker is one thread running one ring, so
 * more would only time-share a CPU. */
static unsigned default_workers(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (cpus < 1)
		return 1; /* sysconf failed: one worker still runs the proxy */
	if ((unsigned long)cpus > TERN_MAX_WORKERS)
		return TERN_MAX_WORKERS;
	return (unsigned)cpus;
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
	cfg->workers = default_workers();
	cfg->max_conns = TERN_DEFAULT_MAX_CONNS;
	cfg->tls_min = TERN_TLS_1_2;
	cfg->tls_max = TERN_TLS_1_3;
	cfg->ciphers = TERN_DEFAULT_CIPHERS;
	cfg->ciphersuites = TERN_DEFAULT_CIPHERSUITES;
	cfg->groups = TERN_DEFAULT_GROUPS;
	cfg->handshake_timeout_ms = TERN_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	cfg->idle_timeout_ms = TERN_DEFAULT_IDLE_TIMEOUT_MS;
	cfg->connect_timeout_ms = TERN_DEFAULT_CONNECT_TIMEOUT_MS;
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
	cfg->metrics_enabled = false;
	cfg->user = NULL;
	cfg->proxy_protocol = TERN_PROXY_OFF;
}
