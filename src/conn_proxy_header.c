/* --proxy-protocol: the header a connection's backend gets before any
 * client data (conn.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/conn.h"
#include "tern/log.h"
#include "tern/proxy_proto.h"

/* --proxy-protocol: builds the header the backend gets before any client
 * data. Source = the client, destination = the address it connected to
 * (the listener's, from getsockname(); with --accept-proxy, the ones the
 * load balancer's header named). Runs once per connection, only
 * with the flag on. Returns 0 or -ENOMEM. */
int tern_conn_build_proxy_header(struct tern_conn *c)
{
	struct tern_proxy_info info = {0};
	struct sockaddr_storage local = {0};
	socklen_t len = sizeof(local);
	uint8_t *der = NULL;
	char cn[512];
	size_t hdr_len = TERN_PROXY_V1_MAX_LEN;
	int n = -ENOMEM;

	if (c->peer.sa.sa_family == AF_UNSPEC)
		(void)c->host->ops->address(c, false, &c->peer.sa, sizeof(c->peer));
	if (c->proxied) /* --accept-proxy: the addresses the load balancer saw */
		memcpy(&local, &c->proxied_local, sizeof(c->proxied_local));
	else if (!c->host->ops->address(c, true, (struct sockaddr *)&local, len))
		local.ss_family = AF_UNSPEC; /* unknown: UNKNOWN / LOCAL */
	tern_proxy_info_set_addrs(&info, &c->peer.sa, (struct sockaddr *)&local);

	if (c->host->cfg->proxy_protocol == TERN_PROXY_V2) {
		tern_tls_alpn(&c->tls, &info.alpn, &info.alpn_len);
		info.sni = tern_tls_servername(&c->tls);
		info.tls = true;
		info.tls_version = tern_tls_version(&c->tls);
		info.cipher = tern_tls_cipher(&c->tls);
		tern_tls_client_cert_presented(&c->tls, &info.cert_conn, &info.cert_sess);
		if (info.cert_sess) {
			info.verify = tern_tls_verify_result(&c->tls);
			if (tern_tls_client_cn(&c->tls, cn, sizeof(cn)) >= 0)
				info.cn = cn;
			int der_len = tern_tls_client_cert_der(&c->tls, NULL, 0);
			if (der_len > 0) {
				der = malloc((size_t)der_len);
				if (!der)
					goto out;
				if (tern_tls_client_cert_der(&c->tls, der, (size_t)der_len) == der_len) {
					info.cert_der = der;
					info.cert_der_len = (size_t)der_len;
				}
			}
		}
		hdr_len = tern_proxy_v2_max_len(&info);
	}
	c->pp_hdr = malloc(hdr_len);
	if (!c->pp_hdr)
		goto out;
	if (c->host->cfg->proxy_protocol == TERN_PROXY_V2)
		n = tern_proxy_v2_encode(&info, c->pp_hdr, hdr_len);
	else
		n = tern_proxy_v1_encode(&info, c->pp_hdr, hdr_len);
	/* Always on: the buffer is the size the encoder asked for, and
	 * v2_max_len is never 0 for what TLS can carry (SNI and ALPN are at
	 * most 255 bytes, the CN is capped by cn[] above). */
	if (n <= 0) {
		tern_log_fatal("conn %llu: PROXY header encoding failed (%d)",
			       (unsigned long long)c->id, n);
		abort();
	}
	c->pp_len = (uint32_t)n;
	c->pp_sent = 0;
	n = 0;
out:
	free(der);
	return n;
}
