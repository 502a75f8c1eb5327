/* A connection told to the operator: its `conns` entry (as a struct
 * tern_conn_info; the control thread renders it) and its access-log line
 * (conn.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "tern/conn.h"
#include "tern/conn_info.h"
#include "tern/log.h"

_Static_assert(TERN_CONN_INFO_PEER_MAX >= INET6_ADDRSTRLEN + sizeof("[]:65535") - 1,
	       "conn_info.h's peer holds any address format_peer writes");

/* The peer address, fetched once from the engine when not known yet. */
static void format_peer(struct tern_conn *c, char *out, size_t out_len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (c->peer.sa.sa_family == AF_UNSPEC && c->phase != TERN_PHASE_CLOSED)
		(void)c->host->ops->address(c, false, &c->peer.sa, sizeof(c->peer));
	snprintf(out, out_len, "-");
	if (c->peer.sa.sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->peer;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(out, out_len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (c->peer.sa.sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = &c->peer.sin6;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(out, out_len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	}
}

/* The ALPN protocol chosen, or "-": always one of --alpn's, which the
 * command line holds to printable bytes, so it goes into logs as it is. */
static void format_alpn(const struct tern_conn *c, char out[256])
{
	const uint8_t *alpn = NULL;
	size_t len = 0;

	if (c->handshake_done)
		tern_tls_alpn(&c->tls, &alpn, &len);
	if (!alpn || len == 0 || len > 255) {
		alpn = (const uint8_t *)"-";
		len = 1;
	}
	memcpy(out, alpn, len);
	out[len] = '\0';
}

void tern_conn_log_access(struct tern_conn *c)
{
	char peer[TERN_CONN_INFO_PEER_MAX];
	char alpn[256];
	bool hs = c->handshake_done;

	format_peer(c, peer, sizeof(peer));
	format_alpn(c, alpn);
	tern_log_access("id=%llu peer=%s sni=%s alpn=%s version=%s cipher=%s resumed=%d "
			"bytes_in=%llu bytes_out=%llu duration_ms=%llu reason=%s",
			(unsigned long long)c->id, peer, hs ? tern_tls_sni(&c->tls) : "-", alpn,
			hs ? tern_tls_version(&c->tls) : "-", hs ? tern_tls_cipher(&c->tls) : "-",
			hs ? tern_tls_resumed(&c->tls) : 0, (unsigned long long)c->c2b.bytes,
			(unsigned long long)c->b2c.bytes,
			(unsigned long long)(c->host->now_ms - c->start_ms), c->reason);
}

/* Copies s into out when it fits; a longer one is cut, never overrun
 * (the sizes in conn_info.h are those of what each field can hold). */
static void copy_text(char *out, size_t out_len, const char *s)
{
	snprintf(out, out_len, "%s", s);
}

void tern_conn_describe(struct tern_conn *c, struct tern_conn_info *out)
{
	bool hs = c->handshake_done;

	memset(out, 0, sizeof(*out));
	out->id = c->id;
	out->worker = c->host->worker_index;
	format_peer(c, out->peer, sizeof(out->peer));
	if (hs && strcmp(tern_tls_sni(&c->tls), "-") != 0) {
		out->has_sni = true;
		copy_text(out->sni, sizeof(out->sni), tern_tls_sni(&c->tls));
	}
	format_alpn(c, out->alpn);
	out->has_alpn = strcmp(out->alpn, "-") != 0;
	if (hs) {
		out->handshake_done = true;
		copy_text(out->version, sizeof(out->version), tern_tls_version(&c->tls));
		copy_text(out->cipher, sizeof(out->cipher), tern_tls_cipher(&c->tls));
		out->resumed = tern_tls_resumed(&c->tls);
		out->has_client_cert = tern_tls_client_subject(&c->tls, out->client_cert,
							       sizeof(out->client_cert));
	}
	out->age_ms = c->host->now_ms - c->start_ms;
	out->bytes_in = c->c2b.bytes;
	out->bytes_out = c->b2c.bytes;
	out->num_tickets = tern_tls_num_tickets(&c->tls);
	out->tickets_sent = c->tls.tickets_sent;
	out->tickets_pending = c->tickets.pending + c->tickets.owed;
	out->tickets_requested = c->tickets.requested;
	/* Memory the connection's buffers hold now (borrowed read buffers
	 * included): 0 for an idle connection, the point of lending. */
	out->buffer_bytes = (uint64_t)c->cin.cap + c->cout.cap + c->c2b.buf.cap + c->b2c.buf.cap;
}
