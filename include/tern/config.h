/* The proxy's configuration: what the command line fills and the engine reads.
 *
 * Filled once by the main thread before any worker starts and immutable
 * afterwards, so workers read it without synchronisation. */
#ifndef TERN_CONFIG_H
#define TERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tern/cidr.h"
#include "tern/cpus.h"
#include "tern/log.h"
#include "tern/proxy_parse.h"

/* Longest address text kept for messages ("unix:/path" up to 108 bytes). */
#define TERN_ADDR_TEXT_MAX 128

/* A resolved listening or backend address. */
struct tern_addr {
	char text[TERN_ADDR_TEXT_MAX]; /* as the operator wrote it */
	struct sockaddr_storage ss;    /* AF_INET, AF_INET6 or AF_UNIX */
	socklen_t ss_len;
};

/* A host name is at most 253 bytes (RFC 1035 section 2.3.4); an IPv6
 * literal with a scope id fits easily. */
#define TERN_HOST_MAX 256

/* A --backend given by host name, as written: resolved when tern starts
 * and again every --resolve-interval (backends.h), never when the flag is
 * read, so a name that does not resolve yet is no reason to refuse to
 * start. host is "" for a literal or unix: backend. */
struct tern_addr_name {
	char host[TERN_HOST_MAX];
	uint16_t port;
};

/* TLS protocol versions, as the flags spell them. */
enum tern_tls_version {
	TERN_TLS_1_2 = 12,
	TERN_TLS_1_3 = 13,
};

/* --proxy-protocol: the PROXY protocol header sent to backends. */
/* --io: the I/O engine every worker runs. */
enum tern_io_engine {
	TERN_IO_AUTO,  /* io_uring, or epoll with one warning when io_uring is refused */
	TERN_IO_URING, /* io_uring or nothing: a refusal is an error at start */
	TERN_IO_EPOLL, /* epoll, edge-triggered */
};

enum tern_proxy_protocol {
	TERN_PROXY_OFF,
	TERN_PROXY_V1,
	TERN_PROXY_V2,
};

/* --accept-proxy: the PROXY protocol header expected from an upstream
 * load balancer before the TLS handshake. The values are the version
 * masks tern_proxy_parse takes. */
enum tern_accept_proxy {
	TERN_ACCEPT_PROXY_OFF = 0,
	TERN_ACCEPT_PROXY_V1 = TERN_PROXY_PARSE_V1,
	TERN_ACCEPT_PROXY_V2 = TERN_PROXY_PARSE_V2,
	TERN_ACCEPT_PROXY_ANY = TERN_PROXY_PARSE_ANY, /* either, told apart by the signature */
};

#define TERN_MAX_ACCEPT_PROXY_FROM 64

#define TERN_MAX_LISTEN 64
#define TERN_MAX_BACKENDS 256

/* One --cert and the --key and --ocsp that follow it. */
/* --handshake-tickets: when a TLS 1.3 handshake's own tickets leave. */
enum tern_handshake_tickets {
	/* OpenSSL's way: in a send of their own as the handshake completes. */
	TERN_HANDSHAKE_TICKETS_AT_ONCE,
	/* Held back, like requested tickets: ahead of the first backend data,
	 * in the same send, or alone after --ticket-flush-delay. The
	 * default (tern_config_init). */
	TERN_HANDSHAKE_TICKETS_WITH_DATA,
};

struct tern_cert_config {
	const char *cert_path; /* PEM: certificate, chain, and the key unless key_path */
	const char *key_path;  /* --key; NULL: the key is inside cert_path */
	const char *ocsp_path; /* --ocsp: DER OCSP response to staple; NULL: none */
};

#define TERN_MAX_CERTS 64

/* --alpn in wire format (RFC 7301 section 3.1): each protocol as a length
 * byte and 1..255 bytes. The text is at most one byte shorter. */
#define TERN_MAX_ALPN_WIRE 512

/* --verify-client: what a client must show when --client-ca is set. */
enum tern_verify_client {
	TERN_VERIFY_CLIENT_NONE,     /* not asked for (post-handshake auth may ask later) */
	TERN_VERIFY_CLIENT_OPTIONAL, /* asked for; one sent must verify */
	TERN_VERIFY_CLIENT_REQUIRE,  /* asked for, must be sent and verify */
};

struct tern_config {
	struct tern_addr listen[TERN_MAX_LISTEN];
	size_t num_listen;
	/* A backend given by name has ss_family AF_UNSPEC here and its name
	 * in backend_names; the addresses it resolves to are backends.h's. */
	struct tern_addr backends[TERN_MAX_BACKENDS];
	struct tern_addr_name backend_names[TERN_MAX_BACKENDS];
	size_t num_backends;
	/* Backend health and names (docs/backends.md). */
	uint64_t backend_check_ms;    /* --backend-check: active TCP checks; 0: passive only */
	uint64_t backend_retry_ms;    /* --backend-retry: a failed backend is skipped this long */
	uint64_t resolve_interval_ms; /* --resolve-interval; 0: names resolved at start only */

	/* --cert, in command-line order; the first is the default, the others
	 * are chosen by SNI. None: an in-memory self-signed cert for localhost. */
	struct tern_cert_config certs[TERN_MAX_CERTS];
	size_t num_certs;
	unsigned session_cache; /* --session-cache: TLS 1.2 sessions per worker; 0: off */
	const char *alpn;       /* --alpn as typed; NULL: no ALPN */
	unsigned char alpn_wire[TERN_MAX_ALPN_WIRE]; /* the same, server preference order */
	size_t alpn_wire_len;                        /* 0: no ALPN */
	const char *client_ca_path; /* --client-ca: PEM bundle of CAs for client certs; NULL: none */
	enum tern_verify_client verify_client; /* --verify-client; not NONE only with client_ca_path */
	const char *crl_path; /* --crl: PEM CRLs checked for client certs; only with client_ca_path */
	bool strict_sni;      /* --strict-sni: refuse a ClientHello whose SNI names no --cert */

	unsigned workers;
	/* Without --workers, what limited the default (cpus.h) as one
	 * token, " workers_from=affinity", that the --check summary and the
	 * ready line write right after workers=N; --workers empties it. */
	char workers_from[TERN_CPUS_TEXT_MAX + 16];
	unsigned max_conns;
	enum tern_tls_version tls_min, tls_max;
	const char *ciphers;      /* TLS 1.2 cipher list */
	const char *ciphersuites; /* TLS 1.3 suites */
	const char *groups;

	uint64_t handshake_timeout_ms;
	uint64_t idle_timeout_ms;
	uint64_t connect_timeout_ms;
	uint64_t drain_timeout_ms;

	size_t buffer_size;    /* per direction, per connection */
	enum tern_io_engine io; /* --io */
	unsigned ring_entries; /* io_uring SQ entries per worker */
	unsigned read_buffers; /* --read-buffers: provided buffers per worker */

	enum tern_log_level log_level;
	bool access_log;
	bool check; /* --check: validate, print a summary, exit */

	/* Tickets on demand and the control socket (SPEC sections 2, 3). */
	const char *control_path;     /* --control; NULL: no control socket */
	unsigned num_tickets;         /* --num-tickets, after a full handshake */
	const char *ticket_keys_path; /* --ticket-keys; NULL: random, in memory */
	uint64_t ticket_rotate_ms;    /* --ticket-rotate */
	/* --ticket-rotate given with --ticket-keys: tern rotates the file
	 * itself (`tern keys FILE rotate`) every ticket_rotate_ms. */
	bool ticket_rotate_file;
	uint64_t ticket_refresh_ms;   /* --ticket-refresh; 0: off */
	uint64_t ticket_flush_delay_ms; /* --ticket-flush-delay */
	uint64_t session_lifetime_ms;   /* --session-lifetime: TLS 1.3 tickets, TLS 1.2 sessions */
	enum tern_handshake_tickets handshake_tickets; /* --handshake-tickets */

	/* Reloads that start themselves (issue 13). */
	bool watch;                  /* --watch: reload when a loaded file changes */
	uint64_t reload_interval_ms; /* --reload-interval; 0: off */

	/* --metrics: the Prometheus endpoint (SPEC section 5). */
	struct tern_addr metrics_addr;
	bool metrics_enabled;

	/* No --listen was given: listen[0] is TERN_DEFAULT_LISTEN, which
	 * inherited sockets (socket activation) replace rather than join. */
	bool listen_is_default;

	/* --user: the user to become once listeners are bound and files
	 * read; NULL: stay who we are. */
	const char *user;

	/* --proxy-protocol: the header each backend connection starts with. */
	enum tern_proxy_protocol proxy_protocol;

	/* --tcp-keepalive: idle time before keepalive probes on client and
	 * backend TCP sockets, whole seconds (TCP_KEEPIDLE); 0: off. */
	uint64_t tcp_keepalive_ms;
	/* --accept-proxy and --accept-proxy-from: the header every client
	 * connection starts with, and the sources allowed to send it (a
	 * connection from any other ends at accept). Not OFF only with at
	 * least one range (the command line refuses it otherwise). */
	enum tern_accept_proxy accept_proxy;
	struct tern_cidr accept_proxy_from[TERN_MAX_ACCEPT_PROXY_FROM];
	size_t num_accept_proxy_from;
};

/* Defaults, as SPEC section 2 lists them. */
#define TERN_DEFAULT_LISTEN "0.0.0.0:8443"
#define TERN_DEFAULT_BACKEND "127.0.0.1:8080"
#define TERN_DEFAULT_MAX_CONNS 100000u
#define TERN_DEFAULT_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"
#define TERN_DEFAULT_CIPHERSUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TERN_DEFAULT_GROUPS "X25519:P-256"
#define TERN_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u
#define TERN_DEFAULT_IDLE_TIMEOUT_MS (5u * 60u * 1000u)
#define TERN_DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define TERN_DEFAULT_BACKEND_RETRY_MS 10000u      /* nginx's fail_timeout */
#define TERN_DEFAULT_RESOLVE_INTERVAL_MS 30000u
#define TERN_DEFAULT_DRAIN_TIMEOUT_MS 30000u
#define TERN_DEFAULT_BUFFER_SIZE (16u * 1024u)
#define TERN_DEFAULT_RING_ENTRIES 4096u
#define TERN_DEFAULT_READ_BUFFERS 64u
#define TERN_DEFAULT_NUM_TICKETS 2u
#define TERN_DEFAULT_SESSION_CACHE 20000u
#define TERN_DEFAULT_TICKET_ROTATE_MS (60u * 60u * 1000u)
#define TERN_DEFAULT_TICKET_REFRESH_MS 0u /* off */
#define TERN_DEFAULT_TICKET_FLUSH_DELAY_MS 200u
#define TERN_DEFAULT_SESSION_LIFETIME_MS (2u * 60u * 60u * 1000u)
/* RFC 8446 4.6.1: a ticket lifetime above seven days is not allowed. */
#define TERN_MIN_SESSION_LIFETIME_MS 1000u
#define TERN_MAX_SESSION_LIFETIME_MS (7ull * 24u * 60u * 60u * 1000u)
/* Keys an in-memory rotation may keep (tern_config_rotate_keep). */
#define TERN_MAX_ROTATE_KEEP 64u

/* Bounds the flags accept. */
#define TERN_MAX_WORKERS 1024u
#define TERN_MIN_BUFFER_SIZE 1024u
#define TERN_MAX_BUFFER_SIZE (16u * 1024u * 1024u)
#define TERN_MIN_RING_ENTRIES 8u
#define TERN_MAX_RING_ENTRIES 32768u
#define TERN_MAX_READ_BUFFERS 4096u
#define TERN_MAX_NUM_TICKETS 16u
#define TERN_MAX_SESSION_CACHE 10000000u
/* TCP_KEEPIDLE's own bound (MAX_TCP_KEEPIDLE in the kernel, tcp(7)). */
#define TERN_MAX_TCP_KEEPALIVE_MS (32767ull * 1000u)

/* Fills *cfg with the defaults above, leaving listen and backends empty:
 * the command line adds the default addresses only when none were given.
 * workers defaults to the CPUs the process may use: its affinity mask,
 * capped by its cgroups' CPU quota (tern_cpus_get), with the reason in
 * workers_from. */
void tern_config_init(struct tern_config *cfg);

/* Keys an in-memory rotation (--ticket-rotate, no key file) keeps: the
 * encrypting one and enough earlier ones that every ticket still within
 * --session-lifetime decrypts: 1 + ceil(lifetime / rotate). 3 for the
 * defaults (1h, 2h): "the previous two". At most TERN_MAX_ROTATE_KEEP:
 * a rotation faster than the lifetime / 63 loses the oldest tickets
 * early, which the control thread warns about at start. */
uint64_t tern_config_rotate_keep(const struct tern_config *cfg);

#endif
