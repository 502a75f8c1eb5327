/* In-process reload: build everything off the data path, then hand each
 * worker its new TLS context through its queue, and the new ticket keys
 * as a rotation does (server.c, key_handoff.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/log.h"
#include "tern/reload.h"
#include "tern/request.h"
#include "tern/sd_notify.h"
#include "tern/sd_status.h"
#include "tern/server.h"
#include "tern/ticket_keys.h"
#include "tern/tls_ctx.h"
#include "tern/worker.h"

/* How long a hand-over retries a full worker queue. */
#define HANDOVER_RETRY_MS 1000

/* What a reload builds before anything reaches a worker. */
struct reload_set {
	struct tern_tls_identities *identities;
	struct tern_ticket_keys *keys;   /* NULL without --ticket-keys */
	struct tern_tls_shard **shards;  /* one per worker */
};

static void reload_set_free(struct reload_set *set, unsigned num_workers)
{
	if (set->shards)
		for (unsigned i = 0; i < num_workers; i++)
			tern_tls_shard_free(set->shards[i]);
	free(set->shards);
	tern_ticket_keys_unref(set->keys);
	tern_tls_identities_unref(set->identities);
	*set = (struct reload_set){0};
}

/* Loads and builds everything the new configuration needs. Nothing
 * reaches a worker here, so any failure is a clean no-op. */
static int reload_build(struct tern_server *srv, struct reload_set *set, char *err,
			size_t err_len)
{
	const struct tern_config *cfg = srv->cfg;
	int ret;

	ret = tern_tls_identities_load(cfg, &set->identities, err, err_len);
	if (ret < 0)
		goto fail;
	if (cfg->ticket_keys_path) {
		ret = tern_ticket_keys_load_file(cfg->ticket_keys_path, &set->keys, err, err_len);
		if (ret < 0)
			goto fail;
	}
	set->shards = calloc(srv->num_workers, sizeof(*set->shards));
	if (!set->shards) {
		ret = -ENOMEM;
		snprintf(err, err_len, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < srv->num_workers; i++) {
		/* The ticket callback reads the worker's own current key set,
		 * on the worker's thread, as the first shards do. */
		ret = tern_worker_build_shard(srv->workers[i], cfg, set->identities,
					      &set->shards[i], err, err_len);
		if (ret < 0)
			goto fail;
	}
	return 0;
fail:
	reload_set_free(set, srv->num_workers);
	return ret;
}

int tern_reload(struct tern_server *srv, char *err, size_t err_len)
{
	struct reload_set set = {0};
	unsigned failed = 0;
	int ret;

	tern_sd_notify_reloading();
	ret = reload_build(srv, &set, err, err_len);
	if (ret < 0) {
		atomic_fetch_add_explicit(&srv->reload_failures, 1, memory_order_relaxed);
		tern_log(TERN_LOG_ERROR, "reload failed, the previous configuration keeps serving: %s",
			 err);
		tern_sd_notify_ready();
		tern_sd_status_reloaded(srv, err);
		return ret;
	}
	/* Commit: each worker adopts its shard on its own thread. */
	for (unsigned i = 0; i < srv->num_workers; i++) {
		struct tern_request req = {.kind = TERN_REQ_KIND_TLS_SHARD, .ptr = set.shards[i]};
		if (tern_worker_push_wait(srv->workers[i], &req, HANDOVER_RETRY_MS) == 0)
			set.shards[i] = NULL; /* the worker owns it now */
		else
			failed++;
	}
	if (set.keys) {
		/* Not a failure when a worker's queue is full: the keys are
		 * retried until it takes them (key_handoff.h), and the shard
		 * it may have missed reads whatever keys the worker holds
		 * (tern_worker_build_shard), so certificates and keys never
		 * have to arrive together. */
		(void)tern_server_adopt_ticket_keys(srv, set.keys);
		set.keys = NULL; /* the server's now */
	}
	struct tern_tls_identities *old_identities = srv->identities;
	srv->identities = set.identities;
	set.identities = old_identities;
	reload_set_free(&set, srv->num_workers); /* the old, and shards not handed over */
	srv->generation++;
	tern_sd_notify_ready();
	if (failed) {
		atomic_fetch_add_explicit(&srv->reload_failures, 1, memory_order_relaxed);
		snprintf(err, err_len, "%u worker hand-over(s) failed: those workers keep the previous "
			 "configuration", failed);
		tern_log(TERN_LOG_ERROR, "reload %llu: %s", (unsigned long long)srv->generation, err);
		tern_sd_status_reloaded(srv, err);
		return -EBUSY;
	}
	tern_log(TERN_LOG_INFO, "reloaded: generation %llu, %zu certificate(s)",
		 (unsigned long long)srv->generation, tern_tls_identities_count(srv->identities));
	tern_sd_status_reloaded(srv, NULL);
	return 0;
}
