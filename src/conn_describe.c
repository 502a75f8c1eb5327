/* A connection told to the operator: its `conns` entry and its access-log
 * line (conn.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "tern/conn.h"
#include "tern/json.h"
#include "tern/log.h"

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
	char peer[INET6_ADDRSTRLEN + 16];
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

static void json_string_or_null(struct tern_json *j, bool present, const char *s)
{
	if (present)
		tern_json_string(j, s);
	else
		tern_json_null(j);
}

void tern_conn_describe(struct tern_conn *c, struct tern_json *j)
{
	char peer[INET6_ADDRSTRLEN + 16];
	char alpn[256];
	char subject[256];
	bool hs = c->handshake_done;

	format_peer(c, peer, sizeof(peer));
	format_alpn(c, alpn);
	tern_json_begin_object(j);
	tern_json_key(j, "id");
	tern_json_uint(j, c->id);
	tern_json_key(j, "worker");
	tern_json_uint(j, c->host->worker_index);
	tern_json_key(j, "peer");
	tern_json_string(j, peer);
	tern_json_key(j, "sni");
	json_string_or_null(j, hs && strcmp(tern_tls_sni(&c->tls), "-") != 0, tern_tls_sni(&c->tls));
	tern_json_key(j, "alpn");
	json_string_or_null(j, strcmp(alpn, "-") != 0, alpn);
	tern_json_key(j, "version");
	json_string_or_null(j, hs, hs ? tern_tls_version(&c->tls) : NULL);
	tern_json_key(j, "cipher");
	json_string_or_null(j, hs, hs ? tern_tls_cipher(&c->tls) : NULL);
	tern_json_key(j, "resumed");
	tern_json_bool(j, hs && tern_tls_resumed(&c->tls));
	tern_json_key(j, "age_ms");
	tern_json_uint(j, c->host->now_ms - c->start_ms);
	tern_json_key(j, "bytes_in");
	tern_json_uint(j, c->c2b.bytes);
	tern_json_key(j, "bytes_out");
	tern_json_uint(j, c->b2c.bytes);
	tern_json_key(j, "num_tickets");
	tern_json_uint(j, tern_tls_num_tickets(&c->tls));
	tern_json_key(j, "tickets_sent");
	tern_json_uint(j, c->tls.tickets_sent);
	tern_json_key(j, "tickets_pending");
	tern_json_uint(j, c->tickets.pending + c->tickets.owed);
	tern_json_key(j, "tickets_requested");
	tern_json_uint(j, c->tickets.requested);
	/* Memory the connection's buffers hold now (borrowed read buffers
	 * included): 0 for an idle connection, the point of lending. */
	tern_json_key(j, "buffer_bytes");
	tern_json_uint(j, (uint64_t)c->cin.cap + c->cout.cap + c->c2b.buf.cap + c->b2c.buf.cap);
	tern_json_key(j, "client_cert");
	bool cert = hs && tern_tls_client_subject(&c->tls, subject, sizeof(subject));
	json_string_or_null(j, cert, subject);
	tern_json_end_object(j);
}
