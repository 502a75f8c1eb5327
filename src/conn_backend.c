/* A connection's backend: which address it connects to, and what its
 * connects tell the others (conn_internal.h).
 *
 * Round-robin over the usable addresses of the worker's current backend
 * set (backend_set.h); a failed connect marks its address down for
 * --backend-retry, for every worker, and the connection tries another
 * address once (SPEC section 6). The connection holds the set it chose
 * from until it is freed, so the address it connects to never goes away
 * under it when a re-resolution hands the worker a new set. Worker thread
 * only. */
#include <errno.h>
#include <string.h>

#include "tern/backend_set.h"
#include "tern/conn.h"
#include "tern/log.h"
#include "tern/parse.h"

#include "conn_internal.h"

static struct tern_backend_stats *stats_of(struct tern_conn *c)
{
	return &c->host->backend_stats[c->endpoint->backend];
}

/* "name:80 (10.0.0.7:80)" for a name's address, the text alone for a
 * literal, in log lines. */
static const char *configured_text(const struct tern_conn *c)
{
	return c->host->cfg->backends[c->endpoint->backend].text;
}

static bool is_name(const struct tern_conn *c)
{
	return c->host->cfg->backends[c->endpoint->backend].ss.ss_family == AF_UNSPEC;
}

/* After a choice from a new view: the connection's hold on the one it
 * chose from before goes (the endpoint it had with it). */
static void conn_let_go(struct tern_conn *c, struct tern_backend_view *old)
{
	if (!old || old == c->bview)
		return;
	if (c->endpoint && !c->backend_open) {
		c->endpoint = NULL;
		c->backend = NULL;
	}
	tern_backend_view_release(old);
}

/* Every failed attempt counts, as HAProxy's connection errors do: a
 * backend that is down shows even while the retry on the next one saves
 * the client. */
static void count_failure(struct tern_conn *c)
{
	tern_counter_add(&c->host->ctr->backend_connect_failures, 1);
	tern_counter_add(&stats_of(c)->failures, 1);
}

bool conn_backend_connect_next(struct tern_conn *c)
{
	struct tern_conn_host *h = c->host;
	const struct tern_config *cfg = h->cfg;

	/* A retry after a new set arrived chooses from the new one. The old
	 * view is let go only after the choice: the address that just failed
	 * (c->endpoint, never chosen again) may live only in it. */
	struct tern_backend_view *old = c->bview;
	if (old != h->backends) {
		c->bview = h->backends;
		if (c->bview)
			c->bview->users++;
	}
	const struct tern_backend_set *set = c->bview ? c->bview->set : NULL;
	size_t num = set ? set->num : 0;

	/* Two attempts at most (SPEC section 6); with one address, the pick
	 * finds none but the one that failed, so one. */
	while (num > 0 && c->attempts < 2) {
		/* Never the address that just failed: the retry goes elsewhere. */
		struct tern_endpoint *ep =
			tern_backend_set_pick(set, &h->next_backend, h->now_ms, c->endpoint);
		if (!ep)
			break;
		conn_let_go(c, old);
		old = c->bview;
		c->attempts++;
		c->endpoint = ep;
		c->backend = &ep->addr;
		int ret = h->ops->connect(c, &ep->addr, cfg->connect_timeout_ms);
		if (ret < 0) {
			/* Our failure (out of descriptors, say), not the
			 * backend's: counted, but its health is left alone. */
			tern_log(TERN_LOG_WARN, "conn %llu: backend %s: socket: %s",
				 (unsigned long long)c->id, ep->addr.text, strerror(-ret));
			count_failure(c);
			continue;
		}
		c->inflight++;
		return true;
	}
	conn_let_go(c, old);
	/* Counted once per client sent away, whatever the attempts were:
	 * the connections a missing backend cost. */
	tern_counter_add(&h->ctr->backend_unavailable, 1);
	if (num == 0)
		tern_log(TERN_LOG_WARN, "conn %llu: no backend address to connect to (names not "
			 "resolved yet?)", (unsigned long long)c->id);
	else
		tern_log(TERN_LOG_WARN, "conn %llu: no backend reachable after %u attempt%s",
			 (unsigned long long)c->id, c->attempts, c->attempts == 1 ? "" : "s");
	return false;
}

void conn_backend_connect_failed(struct tern_conn *c, int32_t res)
{
	struct tern_conn_host *h = c->host;
	const char *why = res == -ECANCELED ? "connect timed out" : strerror(-res);

	count_failure(c);
	tern_log(TERN_LOG_DEBUG, "conn %llu: backend %s: %s", (unsigned long long)c->id,
		 c->endpoint->addr.text, why);
	if (tern_backend_health_connect_failed(&c->endpoint->health, h->now_ms,
					       h->cfg->backend_retry_ms)) {
		char retry[32];
		tern_format_duration_ms(h->cfg->backend_retry_ms, retry, sizeof(retry));
		tern_log(TERN_LOG_WARN, "backend %s%s%s%s down: %s; skipped for %s (--backend-retry)",
			 configured_text(c), is_name(c) ? " (" : "", is_name(c) ? c->endpoint->addr.text : "",
			 is_name(c) ? ")" : "", why, retry);
	}
}

void conn_backend_connected(struct tern_conn *c)
{
	struct tern_backend_stats *st = stats_of(c);

	tern_counter_add(&st->connects, 1);
	tern_counter_add(&st->open, 1);
	c->backend_open = true;
	if (tern_backend_health_connect_ok(&c->endpoint->health, c->host->now_ms))
		tern_log(TERN_LOG_INFO, "backend %s%s%s%s up: a connect succeeded",
			 configured_text(c), is_name(c) ? " (" : "", is_name(c) ? c->endpoint->addr.text : "",
			 is_name(c) ? ")" : "");
}

void conn_backend_closing(struct tern_conn *c)
{
	if (!c->backend_open)
		return;
	c->backend_open = false;
	tern_counter_sub(&stats_of(c)->open, 1);
}

void conn_backend_release(struct tern_conn *c)
{
	if (c->bview)
		tern_backend_view_release(c->bview);
	c->bview = NULL;
	c->endpoint = NULL;
	c->backend = NULL;
}
