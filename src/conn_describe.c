/* A connection told to the operator: its `conns` entry (as a struct
 * tern_conn_info; the control thread renders it) and its access-log line
 * (conn.h).
 *
 * What the client chose (SNI, ALPN, its certificate's subject) is its
 * bytes: escaped and bounded (escape.h) in the access log here, and by
 * the control thread when it renders `conns`. The peer address is
 * formatted from binary (tern_format_addr), version and cipher are OpenSSL's
 * names: none of those can hold a client's text. */
#include <stdio.h>
#include <string.h>

#include "tern/conn.h"
#include "tern/conn_info.h"
#include "tern/escape.h"
#include "tern/log.h"
#include "tern/parse.h"

#include "conn_internal.h"

_Static_assert(TERN_CONN_INFO_PEER_MAX >= INET6_ADDRSTRLEN + sizeof("[]:65535") - 1,
	       "conn_info.h's peer holds any address format_peer writes");

/* The peer address, fetched once from the engine when not known yet (with
 * --accept-proxy it is known from accept on: the socket's, then the
 * client the PROXY header names). */
static void format_peer(struct tern_conn *c, char *out, size_t out_len)
{
	if (c->peer.sa.sa_family == AF_UNSPEC && c->phase != TERN_PHASE_CLOSED)
		(void)c->host->ops->address(c, false, &c->peer.sa, sizeof(c->peer));
	tern_format_addr(&c->peer.sa, out, out_len);
}

/* The ALPN protocol chosen: one of --alpn's, unless a resumed session
 * says otherwise; escaped all the same. */
static void alpn_of(const struct tern_conn *c, const uint8_t **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	if (c->handshake_done)
		tern_tls_alpn(&c->tls, out, out_len);
}

/* "-" for none, else the escaped text (key=value form: spaces too). */
static const char *log_value(char out[TERN_ESCAPE_OUT_MAX], const void *p, size_t len)
{
	if (!p || len == 0)
		return "-";
	tern_escape(out, TERN_ESCAPE_OUT_MAX, p, len, TERN_ESCAPE_SPACE);
	return out;
}

void tern_conn_log_access(struct tern_conn *c)
{
	char peer[TERN_CONN_INFO_PEER_MAX];
	char sni[TERN_ESCAPE_OUT_MAX], alpn[TERN_ESCAPE_OUT_MAX];
	const uint8_t *alpn_p;
	size_t alpn_len;
	bool hs = c->handshake_done;
	const char *name = hs ? tern_tls_servername(&c->tls) : NULL;

	format_peer(c, peer, sizeof(peer));
	alpn_of(c, &alpn_p, &alpn_len);
	tern_log_access("id=%llu peer=%s sni=%s alpn=%s version=%s cipher=%s resumed=%d "
			"bytes_in=%llu bytes_out=%llu duration_ms=%llu reason=%s",
			(unsigned long long)c->id, peer,
			log_value(sni, name, name ? strlen(name) : 0),
			log_value(alpn, alpn_p, alpn_len), hs ? tern_tls_version(&c->tls) : "-",
			hs ? tern_tls_cipher(&c->tls) : "-", hs ? tern_tls_resumed(&c->tls) : 0,
			(unsigned long long)c->c2b.bytes, (unsigned long long)c->b2c.bytes,
			(unsigned long long)(c->host->now_ms - c->start_ms), c->reason);
}

/* Copies s into out when it fits; a longer one is cut, never overrun
 * (the sizes in conn_info.h are those of what each field can hold). */
static void copy_text(char *out, size_t out_len, const char *s)
{
	snprintf(out, out_len, "%s", s);
}

/* Copies up to sizeof(field) raw bytes; returns how many. */
static uint16_t copy_raw(char *out, size_t out_len, const void *p, size_t len)
{
	if (len > out_len)
		len = out_len;
	memcpy(out, p, len);
	return (uint16_t)len;
}

void tern_conn_describe(struct tern_conn *c, struct tern_conn_info *out)
{
	bool hs = c->handshake_done;

	memset(out, 0, sizeof(*out));
	out->id = c->id;
	out->worker = c->host->worker_index;
	format_peer(c, out->peer, sizeof(out->peer));
	const char *name = hs ? tern_tls_servername(&c->tls) : NULL;
	if (name) {
		out->has_sni = true;
		out->sni_len = copy_raw(out->sni, sizeof(out->sni), name, strlen(name));
	}
	const uint8_t *alpn;
	size_t alpn_len;
	alpn_of(c, &alpn, &alpn_len);
	if (alpn_len > 0) {
		out->has_alpn = true;
		out->alpn_len = copy_raw(out->alpn, sizeof(out->alpn), alpn, alpn_len);
	}
	if (hs) {
		out->handshake_done = true;
		copy_text(out->version, sizeof(out->version), tern_tls_version(&c->tls));
		copy_text(out->cipher, sizeof(out->cipher), tern_tls_cipher(&c->tls));
		out->resumed = tern_tls_resumed(&c->tls);
		int n = tern_tls_client_subject(&c->tls, out->client_cert, sizeof(out->client_cert));
		out->has_client_cert = n >= 0;
		out->client_cert_len = n > 0 ? (uint16_t)n : 0;
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
