/* --accept-proxy: the PROXY protocol header a load balancer sends ahead of
 * the client's TLS bytes (conn_internal.h; docs/proxy-protocol-accept.md).
 *
 * The header is read into cin like any client bytes, and parsed there from
 * its start each time more arrive (proxy_parse.h): once it is whole its
 * bytes are consumed and whatever came after it, often the ClientHello in
 * the same segment, stays in cin where the TLS layer reads it. Nothing is
 * read past what the header needs, so no byte of the client's is lost.
 *
 * What the header holds is the load balancer's word, not the client's
 * text: addresses are kept in binary and printed by inet_ntop, and a
 * refused header is shown only escaped and cut short (escape.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "tern/cidr.h"
#include "tern/conn.h"
#include "tern/escape.h"
#include "tern/log.h"
#include "tern/log_limit.h"
#include "tern/parse.h"
#include "tern/proxy_parse.h"

#include "conn_internal.h"

const char conn_reason_proxy_not_allowed[] = "proxy_not_allowed";
const char conn_reason_proxy_invalid[] = "proxy_header_invalid";
const char conn_reason_proxy_truncated[] = "proxy_header_truncated";
const char conn_reason_proxy_timeout[] = "proxy_header_timeout";

/* At most one refusal line per worker this often (info level). */
#define PROXY_LOG_INTERVAL_MS 1000u
/* Bytes of a refused header shown in its line, escaped. */
#define PROXY_SHOWN_MAX 48u

/* Whether a refusal is logged at info now (log_limit.h: at most one line
 * per PROXY_LOG_INTERVAL_MS per worker); *out_quiet is how many were not
 * since the last one. Otherwise it goes to debug, counted. */
static bool proxy_log_now(struct tern_conn_host *h, unsigned long long *out_quiet)
{
	return tern_log_enabled(TERN_LOG_INFO) &&
	       tern_log_limit_due(&h->proxy_refusals, h->now_ms, PROXY_LOG_INTERVAL_MS, out_quiet);
}

bool conn_proxy_count_end(const struct tern_conn *c)
{
	struct tern_counters *ctr = c->host->ctr;
	const char *r = c->reason;

	if (r == conn_reason_proxy_not_allowed)
		tern_counter_add(&ctr->proxy_not_allowed, 1);
	else if (r == conn_reason_proxy_invalid)
		tern_counter_add(&ctr->proxy_header_invalid, 1);
	else if (r == conn_reason_proxy_truncated)
		tern_counter_add(&ctr->proxy_header_truncated, 1);
	else if (r == conn_reason_proxy_timeout)
		tern_counter_add(&ctr->proxy_header_timeout, 1);
	else
		return false;
	return true;
}

bool conn_proxy_source_allowed(struct tern_conn *c)
{
	const struct tern_config *cfg = c->host->cfg;
	char peer[INET6_ADDRSTRLEN + sizeof("[]:65535")];
	unsigned long long quiet;

	if (tern_cidr_match_any(cfg->accept_proxy_from, cfg->num_accept_proxy_from, &c->peer.sa))
		return true;
	tern_format_addr(&c->peer.sa, peer, sizeof(peer));
	if (proxy_log_now(c->host, &quiet))
		tern_log(TERN_LOG_INFO,
			 "conn %llu: %s is not in --accept-proxy-from: closed "
			 "(%llu more refused on this worker since the last such line)",
			 (unsigned long long)c->id, peer, quiet);
	else
		tern_log(TERN_LOG_DEBUG, "conn %llu: %s is not in --accept-proxy-from: closed",
			 (unsigned long long)c->id, peer);
	return false;
}

/* The addresses the header names become the connection's: sockaddrs
 * built from its binary fields. */
static void apply_header(struct tern_conn *c, const struct tern_proxy_header *hdr)
{
	if (hdr->family == TERN_PROXY_FAMILY_INET) {
		struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(hdr->src_port)};
		struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(hdr->dst_port)};
		memcpy(&src.sin_addr, hdr->src_addr, 4);
		memcpy(&dst.sin_addr, hdr->dst_addr, 4);
		memset(&c->peer, 0, sizeof(c->peer));
		memset(&c->proxied_local, 0, sizeof(c->proxied_local));
		memcpy(&c->peer, &src, sizeof(src));
		memcpy(&c->proxied_local, &dst, sizeof(dst));
	} else {
		struct sockaddr_in6 src = {.sin6_family = AF_INET6, .sin6_port = htons(hdr->src_port)};
		struct sockaddr_in6 dst = {.sin6_family = AF_INET6, .sin6_port = htons(hdr->dst_port)};
		memcpy(&src.sin6_addr, hdr->src_addr, 16);
		memcpy(&dst.sin6_addr, hdr->dst_addr, 16);
		c->peer.sin6 = src;
		c->proxied_local.sin6 = dst;
	}
	c->proxied = true;
}

int conn_proxy_header_read(struct tern_conn *c)
{
	const struct tern_config *cfg = c->host->cfg;
	struct tern_proxy_header hdr;
	char via[INET6_ADDRSTRLEN + sizeof("[]:65535")];
	uint32_t len = tern_buf_len(&c->cin);

	if (len == 0)
		return 0;
	/* The header must fit what cin holds: --buffer-size. */
	int n = tern_proxy_parse(tern_buf_head_ptr(&c->cin), len, (unsigned)cfg->accept_proxy,
				 cfg->buffer_size, &hdr);
	if (n == 0)
		return 0;
	if (n < 0) {
		char shown[TERN_ESCAPE_OUT_MAX];
		unsigned long long quiet;
		tern_format_addr(&c->peer.sa, via, sizeof(via));
		tern_escape(shown, sizeof(shown), tern_buf_head_ptr(&c->cin),
			    len < PROXY_SHOWN_MAX ? len : PROXY_SHOWN_MAX, 0);
		if (proxy_log_now(c->host, &quiet))
			tern_log(TERN_LOG_INFO,
				 "conn %llu: bad PROXY header from %s: %s; it began \"%s%s\" "
				 "(%llu more refused on this worker since the last such line)",
				 (unsigned long long)c->id, via, hdr.why, shown,
				 len > PROXY_SHOWN_MAX ? TERN_ESCAPE_CUT : "", quiet);
		else
			tern_log(TERN_LOG_DEBUG, "conn %llu: bad PROXY header from %s: %s",
				 (unsigned long long)c->id, via, hdr.why);
		return -EPROTO;
	}
	tern_buf_consume(&c->cin, (uint32_t)n);
	/* via, the load balancer (the socket's own peer, which apply_header
	 * replaces), is formatted only for a line that is written. */
	bool debug = tern_log_enabled(TERN_LOG_DEBUG);
	if (debug)
		tern_format_addr(&c->peer.sa, via, sizeof(via));
	if (hdr.family != TERN_PROXY_FAMILY_UNSPEC)
		apply_header(c, &hdr);
	if (debug) {
		char client[sizeof(via)];
		tern_format_addr(&c->peer.sa, client, sizeof(client));
		tern_log(TERN_LOG_DEBUG, "conn %llu: PROXY v%u header from %s: client %s%s",
			 (unsigned long long)c->id, hdr.version, via, client,
			 c->proxied ? "" : " (no address in it: the connection's own)");
	}
	return 1;
}
