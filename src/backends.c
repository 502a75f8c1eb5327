/* The backends of the process (backends.h): the table made at start, the
 * current set, its hand-over to workers, and the summaries. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/backend_resolve.h"
#include "tern/conn.h"
#include "tern/log.h"
#include "tern/parse.h"
#include "tern/request.h"
#include "tern/server.h"
#include "tern/worker.h"

#include "backends_internal.h"

/* How long a hand-over retries a full worker queue. */
#define HANDOVER_RETRY_MS 1000

static bool is_name(const struct tern_config *cfg, unsigned i)
{
	return cfg->backends[i].ss.ss_family == AF_UNSPEC;
}

/* Backend i's addresses into set: its own for a literal or unix: path,
 * what the name resolves to now for a name (none, with a warning, when
 * it does not). False when out of memory. */
static bool add_backend(struct tern_backends *b, struct tern_backend_set **set, unsigned i)
{
	const struct tern_config *cfg = b->cfg;
	static struct tern_addr addrs[TERN_MAX_ADDRS_PER_BACKEND]; /* main thread, at start */
	char err[128];
	bool more;
	int n = 1;

	if (!is_name(cfg, i)) {
		addrs[0] = cfg->backends[i];
	} else {
		n = tern_backend_resolve(&cfg->backend_names[i], addrs, TERN_MAX_ADDRS_PER_BACKEND,
					 &more, err, sizeof(err));
		if (n < 0) {
			char every[32];
			tern_format_duration_ms(tern_backend_monitor_retry_ms(cfg), every, sizeof(every));
			tern_log(TERN_LOG_WARN, "backend %s: cannot resolve %s: %s; serving without it, "
				 "trying again every %s", cfg->backends[i].text,
				 cfg->backend_names[i].host, err, every);
			tern_backends_set_resolve_error(b, i, err);
			return true;
		}
		if (more)
			tern_log(TERN_LOG_WARN, "backend %s: more than %d addresses; the first %d are used",
				 cfg->backends[i].text, TERN_MAX_ADDRS_PER_BACKEND,
				 TERN_MAX_ADDRS_PER_BACKEND);
	}
	struct tern_backend_set *next = tern_backend_set_replace(*set, i, addrs, (size_t)n);
	if (!next)
		return false;
	tern_backend_set_unref(*set);
	*set = next;
	return true;
}

int tern_backends_new(const struct tern_config *cfg, struct tern_backends **out, char *err,
		      size_t err_len)
{
	struct tern_backends *b = calloc(1, sizeof(*b));

	*out = NULL;
	if (!b)
		goto nomem;
	b->cfg = cfg;
	b->stop_fd = -1;
	pthread_mutex_init(&b->lock, NULL);
	b->resolve_error = calloc(cfg->num_backends ? cfg->num_backends : 1,
				  sizeof(b->resolve_error[0]));
	b->current = tern_backend_set_new(0);
	if (!b->resolve_error || !b->current)
		goto nomem;
	for (unsigned i = 0; i < cfg->num_backends; i++)
		if (!add_backend(b, &b->current, i))
			goto nomem;
	*out = b;
	return 0;
nomem:
	tern_backends_free(b);
	snprintf(err, err_len, "out of memory");
	return -ENOMEM;
}

struct tern_backend_set *tern_backends_get(struct tern_backends *b)
{
	pthread_mutex_lock(&b->lock);
	struct tern_backend_set *set = tern_backend_set_ref(b->current);
	pthread_mutex_unlock(&b->lock);
	return set;
}

void tern_backends_set_resolve_error(struct tern_backends *b, unsigned i, const char *err)
{
	pthread_mutex_lock(&b->lock);
	snprintf(b->resolve_error[i], sizeof(b->resolve_error[i]), "%s", err);
	pthread_mutex_unlock(&b->lock);
}

/* Hands worker i a reference to set; false when its queue stayed full. */
static bool hand_over(struct tern_backends *b, unsigned i, struct tern_backend_set *set)
{
	struct tern_request req = {.kind = TERN_REQ_KIND_BACKEND_SET,
				   .ptr = tern_backend_set_ref(set)};
	if (tern_worker_push_wait(b->srv->workers[i], &req, HANDOVER_RETRY_MS) == 0)
		return true;
	tern_backend_set_unref(set);
	return false;
}

void tern_backends_publish(struct tern_backends *b, struct tern_backend_set *next)
{
	pthread_mutex_lock(&b->lock);
	struct tern_backend_set *old = b->current;
	b->current = next;
	pthread_mutex_unlock(&b->lock);
	/* In queue order: a worker never adopts an older set after a newer
	 * one, as only this thread hands sets over. */
	for (unsigned i = 0; i < b->srv->num_workers; i++) {
		b->stale[i] = !hand_over(b, i, next);
		if (b->stale[i])
			tern_log(TERN_LOG_WARN, "backends: worker %u too busy to take the new "
				 "addresses; handed over again on the next round", i);
	}
	tern_backend_set_unref(old);
}

void tern_backends_republish(struct tern_backends *b)
{
	for (unsigned i = 0; i < b->srv->num_workers; i++)
		if (b->stale[i])
			b->stale[i] = !hand_over(b, i, b->current);
}

int tern_backends_start(struct tern_backends *b, struct tern_server *srv)
{
	return tern_backend_monitor_start(b, srv);
}

void tern_backends_free(struct tern_backends *b)
{
	if (!b)
		return;
	tern_backend_monitor_stop(b);
	tern_backend_set_unref(b->current);
	free(b->resolve_error);
	free(b->stale);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

void tern_backends_summarize(struct tern_server *srv, const struct tern_backend_set *set,
			     unsigned i, uint64_t now_ms, struct tern_backend_summary *out)
{
	const struct tern_config *cfg = srv->cfg;

	memset(out, 0, sizeof(*out));
	out->text = cfg->backends[i].text;
	out->is_name = is_name(cfg, i);
	out->up = tern_backend_set_backend_up(set, i, now_ms);
	for (unsigned w = 0; w < srv->num_workers; w++) {
		const struct tern_backend_stats *st = tern_worker_backend_stats(srv->workers[w]);
		if (!st)
			continue;
		out->connects += tern_counter_get(&st[i].connects);
		out->failures += tern_counter_get(&st[i].failures);
		out->open += tern_counter_get(&st[i].open);
	}
	if (srv->backends) {
		pthread_mutex_lock(&srv->backends->lock);
		snprintf(out->resolve_error, sizeof(out->resolve_error), "%s",
			 srv->backends->resolve_error[i]);
		pthread_mutex_unlock(&srv->backends->lock);
	}
}
