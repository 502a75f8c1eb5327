/* Start-up, listeners, workers, drain and join. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tern/backends.h"
#include "tern/clock.h"
#include "tern/io_probe.h"
#include "tern/parse.h"
#include "tern/listen_fds.h"
#include "tern/log.h"
#include "tern/request.h"
#include "tern/ring.h"
#include "tern/server.h"
#include "tern/sock.h"
#include "tern/ticket_keys.h"
#include "tern/tls_ctx.h"
#include "tern/worker.h"

/* One listening socket of one worker. SO_REUSEPORT gives each worker its
 * own accept queue on the same address and lets the kernel spread new
 * connections between them. Blocking mode: io_uring arms a poll itself. */
static int listen_socket(const struct tern_addr *addr, char *err, size_t err_len)
{
	return tern_sock_listen(addr, TERN_SOCK_REUSEPORT, err, err_len);
}

/* Worker index with its listeners: the inherited sockets, which every
 * worker shares, and one socket of its own for each address it binds. */
static int prepare_worker(struct tern_server *srv, unsigned index, bool bind, char *err,
			  size_t err_len)
{
	const struct tern_config *cfg = srv->cfg;
	struct tern_worker *w;
	int ret = tern_worker_new(srv, index, &srv->workers[index], err, err_len);

	if (ret < 0 || !bind)
		return ret;
	w = srv->workers[index];
	/* Inherited sockets are one socket for all workers, not one each:
	 * every worker's ring arms its multishot accept on the same fd, and
	 * the kernel hands each connection to exactly one of them (an accept
	 * is atomic; io_uring even wakes only one waiter, as accepts poll
	 * with EPOLLEXCLUSIVE). Unlike SO_REUSEPORT's hash, a connection goes
	 * to whichever worker is waiting, so a busy worker takes fewer. */
	for (size_t i = 0; i < srv->inherited.num; i++) {
		const struct tern_inherited *s = &srv->inherited.socks[i];
		if (tern_worker_add_listener(w, s->fd, &s->addr, true) < 0)
			goto nomem;
	}
	for (size_t i = 0; i < cfg->num_listen; i++) {
		if (!((srv->bind_listen >> i) & 1))
			continue;
		int fd = listen_socket(&cfg->listen[i], err, err_len);
		if (fd < 0)
			return fd;
		if (tern_worker_add_listener(w, fd, &cfg->listen[i], false) < 0) {
			close(fd);
			goto nomem;
		}
	}
	return 0;
nomem:
	snprintf(err, err_len, "out of memory");
	return -ENOMEM;
}

_Static_assert(TERN_MAX_LISTEN <= 64, "bind_listen has one bit per --listen");

/* Socket activation: takes the sockets a service manager passed in, and
 * leaves in bind_listen the --listen addresses none of them covers. An
 * inherited socket stands in for the --listen with its address; one that
 * matches no --listen is served too; with no --listen on the command
 * line, the inherited sockets replace the default address. */
static int plan_listeners(struct tern_server *srv, char *err, size_t err_len)
{
	const struct tern_config *cfg = srv->cfg;
	int ret = tern_listen_fds_take(&srv->inherited, err, err_len);

	if (ret <= 0)
		return ret;
	if (cfg->listen_is_default) {
		srv->bind_listen = 0;
		tern_log(TERN_LOG_INFO, "socket activation: %zu inherited socket(s) replace the "
			 "default --listen %s", srv->inherited.num, cfg->listen[0].text);
	}
	for (size_t i = 0; i < srv->inherited.num; i++) {
		const struct tern_inherited *s = &srv->inherited.socks[i];
		bool matched = false;
		for (size_t j = 0; j < cfg->num_listen && !cfg->listen_is_default; j++) {
			if (tern_listen_fds_same_addr(&s->addr.ss, &cfg->listen[j].ss)) {
				srv->bind_listen &= ~(UINT64_C(1) << j);
				matched = true;
			}
		}
		tern_log(TERN_LOG_INFO, "listening on %s: inherited fd %d%s%s%s (socket activation), "
			 "accepted on by all %u workers%s", s->addr.text, s->fd,
			 s->name[0] ? " named '" : "", s->name, s->name[0] ? "'" : "",
			 cfg->workers,
			 matched || cfg->listen_is_default ? "" : "; it matches no --listen, served too");
	}
	for (size_t i = 0; i < cfg->num_listen; i++)
		if ((srv->bind_listen >> i) & 1)
			tern_log(TERN_LOG_INFO, "--listen %s: no inherited socket has this address; "
				 "binding it", cfg->listen[i].text);
	return 0;
}

static void server_free(struct tern_server *srv)
{
	/* First: the monitor hands sets to the workers. */
	tern_backends_free(srv->backends);
	srv->backends = NULL;
	if (srv->workers)
		for (unsigned i = 0; i < srv->num_workers; i++)
			tern_worker_free(srv->workers[i]);
	free(srv->workers);
	srv->workers = NULL;
	tern_listen_fds_free(&srv->inherited); /* after every worker's listeners */
	tern_ticket_keys_unref(srv->ticket_keys);
	srv->ticket_keys = NULL;
	tern_key_handoff_free(&srv->key_handoff);
	tern_tls_identities_unref(srv->identities);
	srv->identities = NULL;
	if (srv->key_view_ready)
		tern_key_view_destroy(&srv->key_view);
	srv->key_view_ready = false;
}

int tern_server_prepare(struct tern_server *srv, const struct tern_config *cfg, bool bind,
			char *err, size_t err_len)
{
	int ret;

	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;
	srv->started_ms = tern_clock_ms();
	tern_key_view_init(&srv->key_view);
	srv->key_view_ready = true;
	ret = tern_tls_identities_load(cfg, &srv->identities, err, err_len);
	if (ret < 0)
		goto fail;
	if (cfg->ticket_keys_path) {
		ret = tern_ticket_keys_load_file(cfg->ticket_keys_path, &srv->ticket_keys, err,
						 err_len);
	} else {
		ret = tern_ticket_keys_new_random(&srv->ticket_keys);
		if (ret < 0)
			snprintf(err, err_len, "cannot make a ticket key: %s", strerror(-ret));
	}
	if (ret < 0)
		goto fail;
	ret = tern_key_handoff_init(&srv->key_handoff, cfg->workers);
	if (ret < 0) {
		snprintf(err, err_len, "out of memory");
		goto fail;
	}
	tern_key_view_set(&srv->key_view, srv->ticket_keys, srv->key_handoff.generation);
	/* Before any worker exists: each is made for its engine. --check
	 * asks too, so its summary says which engine would run. */
	ret = tern_io_probe_choose(cfg->io, cfg->user, cfg->read_buffers > 0, tern_io_probe_ring,
				   &srv->io_engine, err, err_len);
	if (ret < 0)
		goto fail;
	/* Before the workers: each starts with the current backend set. Under
	 * --check too, which is harmless (names were resolved by the command
	 * line already). */
	ret = tern_backends_new(cfg, &srv->backends, err, err_len);
	if (ret < 0)
		goto fail;
	srv->workers = calloc(cfg->workers, sizeof(*srv->workers));
	if (!srv->workers) {
		ret = -ENOMEM;
		snprintf(err, err_len, "out of memory");
		goto fail;
	}
	srv->num_workers = cfg->workers;
	for (size_t i = 0; i < cfg->num_listen; i++)
		srv->bind_listen |= UINT64_C(1) << i;
	if (bind) {
		ret = plan_listeners(srv, err, err_len);
		if (ret < 0)
			goto fail;
	}
	for (unsigned i = 0; i < cfg->workers; i++) {
		ret = prepare_worker(srv, i, bind, err, err_len);
		if (ret < 0)
			goto fail;
	}
	return 0;
fail:
	server_free(srv);
	return ret;
}

void tern_server_describe(const struct tern_server *srv, char *out, size_t out_len)
{
	const struct tern_config *cfg = srv->cfg;
	static const char *const verify[] = {
		[TERN_VERIFY_CLIENT_NONE] = "none",
		[TERN_VERIFY_CLIENT_OPTIONAL] = "optional",
		[TERN_VERIFY_CLIENT_REQUIRE] = "require",
	};
	char lifetime[32], keepalive[32];

	tern_format_duration_ms(cfg->session_lifetime_ms, lifetime, sizeof(lifetime));
	tern_format_duration_ms(cfg->tcp_keepalive_ms, keepalive, sizeof(keepalive));
	snprintf(out, out_len,
		 "certs=%zu alpn=%s session_cache=%u session_lifetime=%s client_ca=%s verify_client=%s "
		 "crl=%s strict_sni=%s tcp_keepalive=%s",
		 tern_tls_identities_count(srv->identities), cfg->alpn ? cfg->alpn : "-",
		 cfg->session_cache, lifetime, cfg->client_ca_path ? cfg->client_ca_path : "-",
		 verify[cfg->verify_client], cfg->crl_path ? cfg->crl_path : "-",
		 cfg->strict_sni ? "on" : "off", keepalive);
}

void tern_server_describe_listen(const struct tern_server *srv, char *out, size_t out_len)
{
	size_t used = 0;
	int m;

	out[0] = '\0';
	for (size_t i = 0; i < srv->inherited.num && used < out_len; i++) {
		m = snprintf(out + used, out_len - used, "%s%s(inherited)", used ? "," : "",
			     srv->inherited.socks[i].addr.text);
		used += m > 0 ? (size_t)m : 0;
	}
	for (size_t i = 0; i < srv->cfg->num_listen && used < out_len; i++) {
		if (!((srv->bind_listen >> i) & 1))
			continue;
		m = snprintf(out + used, out_len - used, "%s%s", used ? "," : "",
			     srv->cfg->listen[i].text);
		used += m > 0 ? (size_t)m : 0;
	}
}

int tern_server_start(struct tern_server *srv, char *err, size_t err_len)
{
	unsigned started = 0;
	int ret = 0;

	for (unsigned i = 0; i < srv->num_workers; i++) {
		/* Counted before it runs: a worker that fails at once counts
		 * itself out again. */
		atomic_fetch_add_explicit(&srv->workers_running, 1, memory_order_relaxed);
		ret = tern_worker_start(srv->workers[i]);
		if (ret < 0) {
			atomic_fetch_sub_explicit(&srv->workers_running, 1, memory_order_relaxed);
			snprintf(err, err_len, "cannot start worker %u: %s", i, strerror(-ret));
			break;
		}
		started++;
	}
	srv->num_threads = started;
	/* Each started worker says whether its ring is up; the first
	 * failure is the one reported. */
	for (unsigned i = 0; i < started; i++) {
		int e = tern_worker_wait_started(srv->workers[i]);
		if (e < 0 && ret == 0) {
			ret = e;
			snprintf(err, err_len, "worker %u: cannot set up %s: %s", i,
				 srv->io_engine == TERN_IO_EPOLL ? "epoll" : "io_uring",
				 strerror(-ret));
		}
	}
	if (ret == 0 && srv->backends) {
		ret = tern_backends_start(srv->backends, srv);
		if (ret < 0)
			snprintf(err, err_len, "cannot start the backend monitor: %s", strerror(-ret));
	}
	if (ret == 0)
		return 0;
	srv->num_threads = 0; /* joined below */
	/* A worker whose start failed has ended already: the request is a
	 * bit nobody reads. */
	for (unsigned i = 0; i < started; i++)
		tern_worker_request(srv->workers[i], TERN_REQ_STOP);
	for (unsigned i = 0; i < started; i++)
		tern_worker_join(srv->workers[i]);
	return ret;
}

void tern_server_drain(struct tern_server *srv)
{
	atomic_store_explicit(&srv->health.draining, true, memory_order_relaxed);
	for (unsigned i = 0; i < srv->num_workers; i++)
		tern_worker_request(srv->workers[i], TERN_REQ_DRAIN);
}

void tern_server_stop_now(struct tern_server *srv)
{
	atomic_store_explicit(&srv->health.draining, true, memory_order_relaxed);
	for (unsigned i = 0; i < srv->num_workers; i++)
		tern_worker_request(srv->workers[i], TERN_REQ_STOP);
}

bool tern_server_finished(struct tern_server *srv)
{
	return atomic_load_explicit(&srv->workers_running, memory_order_acquire) == 0;
}

void tern_server_totals(struct tern_server *srv, struct tern_totals *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < srv->num_workers; i++) {
		const struct tern_counters *c = tern_worker_counters(srv->workers[i]);
#define TERN_TOTAL_SUM(name) out->name += tern_counter_get(&c->name);
		TERN_COUNTER_FIELDS(TERN_TOTAL_SUM)
#undef TERN_TOTAL_SUM
	}
}

void tern_server_join_and_free(struct tern_server *srv)
{
	for (unsigned i = 0; i < srv->num_threads; i++)
		tern_worker_join(srv->workers[i]);
	srv->num_threads = 0;
	server_free(srv);
}

/* Queues the current ticket key set to worker i; true when it is queued. */
static bool push_ticket_keys(struct tern_server *srv, unsigned i)
{
	struct tern_request req = {.kind = TERN_REQ_KIND_TICKET_KEYS,
				   .arg = srv->key_handoff.generation,
				   .ptr = tern_ticket_keys_ref(srv->ticket_keys)};
	/* No waiting for room: a full queue means a worker that is not
	 * running its loop (frozen, or starved of CPU), which waiting here
	 * would not change, while every other worker's keys and every
	 * control command waited behind it. The retry timer tries again. */
	if (tern_worker_push(srv->workers[i], &req) < 0) {
		tern_ticket_keys_unref(srv->ticket_keys);
		return false;
	}
	tern_key_handoff_queued(&srv->key_handoff, i);
	return true;
}

unsigned tern_server_adopt_ticket_keys(struct tern_server *srv, struct tern_ticket_keys *keys)
{
	struct tern_key_handoff *h = &srv->key_handoff;
	struct tern_ticket_keys *old = srv->ticket_keys;

	srv->ticket_keys = keys;
	uint64_t generation = tern_key_handoff_begin(h);
	tern_key_view_set(&srv->key_view, keys, generation);
	tern_ticket_keys_unref(old);
	for (unsigned i = 0; i < srv->num_workers; i++) {
		/* Said once per stall, when the worker falls behind, not again
		 * for each set it misses while it stays behind. */
		bool was_owed = tern_key_handoff_queued_generation(h, i) < generation - 1;
		if (push_ticket_keys(srv, i) || was_owed)
			continue;
		tern_log(TERN_LOG_WARN, "ticket keys: worker %u's queue is full (is it running?): it "
			 "keeps key generation %llu and is given generation %llu as soon as its queue "
			 "has room; until then tickets issued by the other workers get full handshakes "
			 "on it", i, (unsigned long long)tern_worker_ticket_key_generation(srv->workers[i]),
			 (unsigned long long)generation);
	}
	return tern_key_handoff_num_owed(h);
}

unsigned tern_server_retry_ticket_keys(struct tern_server *srv)
{
	struct tern_key_handoff *h = &srv->key_handoff;

	for (unsigned i = 0; i < srv->num_workers && tern_key_handoff_num_owed(h) > 0; i++) {
		if (tern_key_handoff_owed(h, i) && push_ticket_keys(srv, i))
			tern_log(TERN_LOG_INFO, "ticket keys: worker %u's queue has room again: key "
				 "generation %llu queued to it", i,
				 (unsigned long long)h->generation);
	}
	return tern_key_handoff_num_owed(h);
}

unsigned tern_server_ticket_keys_behind(struct tern_server *srv, uint64_t generation)
{
	unsigned behind = 0;
	for (unsigned i = 0; i < srv->num_workers; i++)
		behind += tern_worker_ticket_key_generation(srv->workers[i]) != generation;
	return behind;
}
