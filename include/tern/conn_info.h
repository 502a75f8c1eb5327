/* One connection as `conns` lists it: what a worker copies out of a live
 * connection (tern_conn_describe, conn.h) for the control thread, which
 * renders it as JSON (tern_reply_render_conns, reply.h).
 *
 * A plain value: no pointer into the worker, so it outlives the
 * connection and crosses threads inside a reply part. One is made per
 * listed connection (up to LIMIT per worker), so it holds fixed arrays
 * sized for what they carry and nothing more. A string field whose has_
 * flag is false is absent, and is rendered as null.
 *
 * sni, alpn and client_cert are the client's bytes, kept raw (with their
 * length: they may hold any byte) and escaped when rendered (escape.h):
 * at most TERN_ESCAPE_IN_MAX of them are shown, so one more is kept to
 * tell that there were more. */
#ifndef TERN_CONN_INFO_H
#define TERN_CONN_INFO_H

#include <stdbool.h>
#include <stdint.h>

#include "tern/escape.h"

/* "[IPv6]:port" is at most 1 + 45 + 2 + 5 bytes, and its NUL. */
#define TERN_CONN_INFO_PEER_MAX 64

struct tern_conn_info {
	uint64_t id;
	uint64_t age_ms;
	uint64_t bytes_in;  /* plaintext from the client */
	uint64_t bytes_out; /* plaintext to the client */
	uint64_t buffer_bytes; /* buffer memory held now, borrowed read buffers included */
	uint32_t worker;
	uint32_t num_tickets;
	uint32_t tickets_sent;
	uint32_t tickets_pending;
	uint32_t tickets_requested;
	bool resumed;
	bool has_sni, has_alpn, has_client_cert;
	uint16_t sni_len, alpn_len, client_cert_len; /* bytes in the fields below */
	bool handshake_done; /* version and cipher are set */
	char peer[TERN_CONN_INFO_PEER_MAX]; /* "-" when unknown */
	char version[16];   /* "TLSv1.3" */
	char cipher[48];    /* OpenSSL's name; the longest today are 30 bytes */
	/* a host_name is at most 255 bytes (RFC 6066 section 3), a protocol
	 * name too (RFC 7301 section 3.1), a subject has no bound */
	char sni[TERN_ESCAPE_IN_MAX + 1];
	char alpn[TERN_ESCAPE_IN_MAX + 1];
	char client_cert[TERN_ESCAPE_IN_MAX + 1]; /* tern_tls_client_subject's */
};

#endif
