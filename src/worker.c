/* The worker: its start and end, and what its loop does whatever the I/O
 * engine: the tick's timer work, wake-ups, draining and the batches of due
 * tickets. Accepting against --max-conns is in worker_accept.c; each
 * engine's loop is in a file of its own (worker_ring.c, worker_epoll.c);
 * what other threads ask of the worker is in worker_requests.c;
 * connections themselves are in conn.c. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tern/backend_set.h"
#include "tern/backends.h"
#include "tern/clock.h"
#include "tern/conn.h"
#include "tern/key_handoff.h"
#include "tern/log.h"
#include "tern/request.h"
#include "tern/server.h"
#include "tern/sock.h"
#include "tern/ticket_keys.h"
#include "tern/tls_ctx.h"
#include "worker_internal.h"

/* Counters and histogram sit on cache lines of their own (counters.h). */
_Static_assert(offsetof(struct tern_worker, ctr) % 64 == 0, "counters on their own lines");
_Static_assert(offsetof(struct tern_worker, hs_hist) % 64 == 0, "histogram on its own lines");

bool tern_worker_done(const struct tern_worker *w)
{
	return w->draining && w->host.num_conns == 0;
}

static void worker_abort_all(struct tern_worker *w, const char *reason)
{
	while (!tern_list_empty(&w->host.conns))
		tern_conn_abort(tern_conn_from_link(w->host.conns.next), reason);
}

static void worker_expire(struct tern_worker *w, struct tern_timer_list *list)
{
	struct tern_timer *t;
	while ((t = tern_timer_pop_due(list, w->host.now_ms)))
		tern_conn_expire(tern_conn_from_timer(t));
}

void tern_worker_expire_flushes(struct tern_worker *w)
{
	struct tern_timer *t;
	while ((t = tern_timer_pop_due(&w->host.ticket_flush, w->host.now_ms)))
		tern_conn_tickets_flush_expired(tern_conn_from_flush(t));
}

/* Tickets whose time came are written a batch per loop iteration, so that
 * `tickets all` over thousands of connections never holds the loop: the
 * other connections' completions are handled between batches. A batch is
 * about this many tickets (each costs tens of microseconds). */
#define TICKET_BATCH 32u

void tern_worker_write_due_tickets(struct tern_worker *w)
{
	(void)tern_conn_host_write_due_tickets(&w->host, TICKET_BATCH);
}

static void worker_drain_queue(struct tern_worker *w)
{
	struct tern_request req;
	while (tern_queue_pop(&w->queue, &req))
		tern_worker_handle_request(w, &req);
}

void tern_worker_on_tick(struct tern_worker *w)
{
	worker_expire(w, &w->host.handshaking);
	worker_expire(w, &w->host.idle);
	worker_expire(w, &w->host.lingering);
	tern_worker_expire_flushes(w);
	while (!tern_list_empty(&w->host.spare))
		tern_conn_release_spare(tern_conn_from_spare(w->host.spare.next));
	w->engine->tick(w);
	if (w->draining && !w->stopping && w->host.now_ms >= w->drain_deadline_ms) {
		tern_log(TERN_LOG_INFO, "worker %u: --drain-timeout passed, closing %llu connections",
			 w->index, (unsigned long long)tern_counter_get(&w->ctr.conns_active));
		w->stopping = true;
		worker_abort_all(w, "drain_timeout");
	}
	/* A backstop for the wake-ups between workers: a slot may have
	 * freed on another worker. */
	if (w->accept_paused)
		tern_worker_resume_accept(w);
	else
		tern_worker_arm_listeners(w);
	tern_worker_log_refused(w, false);
}

void tern_worker_on_wake(struct tern_worker *w)
{
	unsigned req = atomic_exchange_explicit(&w->requests, 0, memory_order_acquire);

	if ((req & TERN_REQ_DRAIN) && !w->draining) {
		w->draining = true;
		w->drain_deadline_ms = w->host.now_ms + w->cfg->drain_timeout_ms;
		tern_worker_close_listeners(w);
	}
	if ((req & TERN_REQ_STOP) && !w->stopping) {
		w->draining = w->stopping = true;
		tern_worker_close_listeners(w);
		worker_abort_all(w, "shutdown");
	}
	if (req & TERN_REQ_RESUME_ACCEPT)
		tern_worker_resume_accept(w);
	/* After consuming the wake-up: a request published after this pop
	 * loop ends comes with a wake-up of its own (queue.h). */
	worker_drain_queue(w);
}

static void worker_wake(struct tern_worker *w)
{
	uint64_t one = 1;
	/* An eventfd write only fails when the counter would overflow, and
	 * then the worker has a wake-up pending anyway. */
	ssize_t ignored = write(w->wake_fd, &one, sizeof(one));
	(void)ignored;
}

void tern_worker_request(struct tern_worker *w, unsigned req)
{
	atomic_fetch_or_explicit(&w->requests, req, memory_order_release);
	worker_wake(w);
}

int tern_worker_push_wait(struct tern_worker *w, const struct tern_request *req,
			  unsigned timeout_ms)
{
	uint64_t give_up = tern_clock_ms() + timeout_ms;
	for (;;) {
		int ret = tern_worker_push(w, req);
		if (ret != -EBUSY || tern_clock_ms() >= give_up)
			return ret;
		sched_yield();
	}
}

int tern_worker_push(struct tern_worker *w, const struct tern_request *req)
{
	int ret = tern_queue_push(&w->queue, req);
	if (ret == 0)
		worker_wake(w);
	return ret;
}

/* The worker thread's body. */
static void *worker_main(void *arg)
{
	struct tern_worker *w = arg;
	struct tern_server *srv = w->srv;
	char name[16]; /* the kernel's limit, NUL included */

	/* "tern-w3" in top -H, ps -L and /proc/PID/task/TID/comm: which
	 * thread is which worker, for an operator (and the health test, which
	 * stops one). A name that does not fit is only cosmetics. */
	snprintf(name, sizeof(name), "tern-w%u", w->index);
	(void)pthread_setname_np(pthread_self(), name);
	tern_conn_host_init(&w->host);
	w->host.ops = w->engine->conn_ops;
	w->host.cfg = w->cfg;
	w->host.ctr = &w->ctr;
	w->host.hs_hist = &w->hs_hist;
	w->host.worker_index = w->index;
	w->host.next_backend = w->index;
	w->host.now_ms = tern_clock_ms();
	if (w->first_backends) {
		tern_worker_adopt_backends(w, w->first_backends);
		w->first_backends = NULL;
	}
	w->tick_event = (struct tern_worker_event){TERN_EVENT_MAGIC, TERN_EVENT_TICK, w};
	w->wake_event = (struct tern_worker_event){TERN_EVENT_MAGIC, TERN_EVENT_WAKE, w};
	w->flush_event = (struct tern_worker_event){TERN_EVENT_MAGIC, TERN_EVENT_FLUSH, w};

	/* The engine is set up here: this thread is its only user. */
	w->start_err = tern_worker_accept_setup(w);
	if (w->start_err == 0)
		w->start_err = w->engine->setup(w);
	if (w->start_err < 0)
		atomic_fetch_sub_explicit(&srv->workers_running, 1, memory_order_release);
	sem_post(&w->started);
	if (w->start_err >= 0) {
		w->engine->run(w);
		tern_worker_log_refused(w, true);
	}
	/* Every connection is freed: the current view is held by none. */
	tern_backend_view_retire(w->host.backends);
	w->host.backends = NULL;
	if (w->start_err < 0)
		return NULL;
	atomic_fetch_sub_explicit(&srv->workers_running, 1, memory_order_release);
	return NULL;
}

void tern_worker_adopt_backends(struct tern_worker *w, struct tern_backend_set *set)
{
	struct tern_backend_view *v = tern_backend_view_new(set);

	if (!v) {
		tern_log(TERN_LOG_WARN, "worker %u: out of memory for new backend addresses; "
			 "keeping the previous ones", w->index);
		return;
	}
	tern_backend_view_retire(w->host.backends);
	w->host.backends = v;
}

/* ------------------------------------------------------- start and end */

int tern_worker_new(struct tern_server *srv, unsigned index, struct tern_worker **out,
		    char *err, size_t err_len)
{
	/* aligned_alloc, not calloc: the counters and the histogram are
	 * 64-byte aligned, each on cache lines of its own. */
	size_t align = _Alignof(struct tern_worker);
	size_t size = (sizeof(struct tern_worker) + align - 1) & ~(align - 1);
	struct tern_worker *w = aligned_alloc(align, size);
	int ret;

	*out = NULL;
	if (!w) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	memset(w, 0, sizeof(*w));
	/* io_uring unless the server chose epoll (auto is io_uring until
	 * the choice is made: tern_server_prepare never leaves it). */
	w->engine = srv->io_engine == TERN_IO_EPOLL ? &tern_worker_epoll_engine
						    : &tern_worker_ring_engine;
	w->index = index;
	w->srv = srv;
	w->cfg = srv->cfg;
	w->wake_fd = -1;
	sem_init(&w->started, 0, 0);
	/* Every shard encrypts and decrypts tickets with the same keys, so a
	 * session resumes on whichever worker the kernel hands the reconnect:
	 * each of the shard's contexts reads them through &w->ticket_keys. */
	w->ticket_keys = tern_ticket_keys_ref(srv->ticket_keys);
	atomic_init(&w->ticket_key_generation, TERN_KEY_GENERATION_FIRST);
	ret = tern_worker_build_shard(w, w->cfg, srv->identities, &w->shard, err, err_len);
	if (ret < 0)
		goto fail;
	w->host.ssl_ctx = tern_tls_shard_default_ctx(w->shard);
	if (srv->backends)
		w->first_backends = tern_backends_get(srv->backends);
	if (w->cfg->num_backends) {
		/* On cache lines of their own, like the counters. */
		size_t stats_size = (w->cfg->num_backends * sizeof(struct tern_backend_stats) + 63) & ~(size_t)63;
		w->host.backend_stats = aligned_alloc(64, stats_size);
		if (!w->host.backend_stats) {
			ret = -ENOMEM;
			snprintf(err, err_len, "out of memory");
			goto fail;
		}
		memset(w->host.backend_stats, 0, stats_size);
	}
	ret = tern_queue_init(&w->queue, TERN_WORKER_QUEUE_CAPACITY);
	if (ret < 0) {
		snprintf(err, err_len, "out of memory");
		goto fail;
	}
	w->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (w->wake_fd < 0) {
		ret = -errno;
		snprintf(err, err_len, "eventfd: %s", strerror(errno));
		goto fail;
	}
	*out = w;
	return 0;
fail:
	tern_worker_free(w);
	return ret;
}

int tern_worker_add_listener(struct tern_worker *w, int fd, const struct tern_addr *addr,
			     bool shared)
{
	struct tern_listener *grown =
		realloc(w->listeners, (w->num_listeners + 1) * sizeof(*w->listeners));

	if (!grown)
		return -ENOMEM;
	w->listeners = grown;
	/* What every client socket needs, set once here: a socket accepted on
	 * Linux inherits TCP_NODELAY and the keepalive settings from its
	 * listener (and starts the keepalive timer), so no accept pays the
	 * five setsockopt calls. Small records must not wait for Nagle: TLS
	 * already batches. A refusal costs only that: tern goes on. */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int ret = tern_sock_keepalive(fd, w->cfg->tcp_keepalive_ms);
	if (ret < 0)
		tern_log(TERN_LOG_DEBUG, "worker %u: client --tcp-keepalive on %s: %s", w->index,
			 addr->text, strerror(-ret));
	/* Before start: nothing points at the listeners yet (an accept's
	 * user_data does once it is armed), so they may move. */
	w->listeners[w->num_listeners++] = (struct tern_listener){
		.magic = TERN_LISTENER_MAGIC, .fd = fd, .shared = shared, .addr = addr, .w = w};
	return 0;
}

int tern_worker_listen_addr(const struct tern_worker *w, size_t i, struct sockaddr *out,
			    socklen_t *len)
{
	if (i >= w->num_listeners || w->listeners[i].fd < 0)
		return -ENOENT;
	return getsockname(w->listeners[i].fd, out, len) < 0 ? -errno : 0;
}

int tern_worker_start(struct tern_worker *w)
{
	return -pthread_create(&w->thread, NULL, worker_main, w);
}

int tern_worker_wait_started(struct tern_worker *w)
{
	while (sem_wait(&w->started) < 0 && errno == EINTR)
		;
	/* start_err was written before the post. */
	return w->start_err;
}

void tern_worker_join(struct tern_worker *w)
{
	pthread_join(w->thread, NULL);
}

void tern_worker_free(struct tern_worker *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->num_listeners; i++)
		if (w->listeners[i].fd >= 0 && !w->listeners[i].shared)
			close(w->listeners[i].fd);
	free(w->listeners);
	tern_worker_accept_free(w);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	tern_worker_discard_requests(w);
	tern_queue_destroy(&w->queue);
	tern_tls_shard_free(w->shard);
	tern_ticket_keys_unref(w->ticket_keys);
	tern_backend_set_unref(w->first_backends); /* a worker that never ran */
	free(w->host.backend_stats);
	sem_destroy(&w->started);
	free(w);
}

int tern_worker_build_shard(struct tern_worker *w, const struct tern_config *cfg,
			    struct tern_tls_identities *ids, struct tern_tls_shard **out,
			    char *err, size_t err_len)
{
	/* The address of the worker's key slot, not its value: the shard's
	 * ticket callback reads the slot on the worker's thread, where
	 * TERN_REQ_KIND_TICKET_KEYS replaces it. */
	return tern_tls_shard_new(cfg, ids, &w->ticket_keys, out, err, err_len);
}

uint64_t tern_worker_ping_answered_ms(struct tern_worker *w)
{
	return atomic_load_explicit(&w->ping_answered_ms, memory_order_relaxed);
}

struct tern_counters *tern_worker_counters(struct tern_worker *w)
{
	return &w->ctr;
}

const struct tern_backend_stats *tern_worker_backend_stats(struct tern_worker *w)
{
	return w->host.backend_stats;
}

struct tern_histogram *tern_worker_histogram(struct tern_worker *w)
{
	return &w->hs_hist;
}

uint64_t tern_worker_ticket_key_generation(struct tern_worker *w)
{
	/* Relaxed: a figure to show and compare, which orders nothing. */
	return atomic_load_explicit(&w->ticket_key_generation, memory_order_relaxed);
}
