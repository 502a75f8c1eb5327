/* Accepting against --max-conns, whatever the I/O engine.
 *
 * The slots are process-wide (srv->conns_open) but each worker accepts on
 * listeners of its own (SO_REUSEPORT), so a waiting client sits in one
 * particular worker's backlog. The rules:
 *
 *   - A worker takes no socket from a backlog without a slot for it. At
 *     --max-conns it stops accepting: epoll takes EPOLLIN away, io_uring
 *     cancels its accepts. Near the limit, io_uring arms single-shot
 *     accepts, no more than the slots free, instead of its multishot one:
 *     a multishot accept takes the whole backlog at once, whatever the
 *     number of slots (the kernel loops until EAGAIN).
 *   - Sockets that accepts already in flight deliver when the last slot
 *     went (another worker took it first, a cancel still on its way) are
 *     parked, oldest first, and served before anything new is accepted.
 *   - A paused worker publishes wants_slot; a worker that frees a slot
 *     wakes the paused ones (TERN_REQ_RESUME_ACCEPT through their request
 *     bits), so a client waiting in one worker's backlog is served when a
 *     connection of another ends. The tick resumes too, as a backstop.
 *   - A socket closed unserved is counted by reason (conns_refused_*) and
 *     logged by the tick, one line for all since the last, at most once a
 *     second per worker.
 *
 * No locks: the slot count and the waiter count are atomics, the rest is
 * the worker's own. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tern/conn.h"
#include "tern/log.h"
#include "tern/server.h"
#include "worker_internal.h"

static const char *const refuse_reason_names[TERN_REFUSE_COUNT] = {
	[TERN_REFUSE_DRAIN] = "drain",
	[TERN_REFUSE_NO_MEMORY] = "no_memory",
	[TERN_REFUSE_OVERFLOW] = "overflow",
};

int tern_worker_accept_setup(struct tern_worker *w)
{
	w->parked_cap = TERN_PARKED_BASE + TERN_ACCEPT_SINGLE_MAX * (unsigned)w->num_listeners;
	w->parked = calloc(w->parked_cap, sizeof(*w->parked));
	return w->parked ? 0 : -ENOMEM;
}

void tern_worker_accept_free(struct tern_worker *w)
{
	free(w->parked);
	w->parked = NULL;
	w->parked_cap = 0;
}

/* Slots free now, whole process: a snapshot, other workers take and free
 * them concurrently. */
static unsigned free_slots(const struct tern_worker *w)
{
	unsigned open = atomic_load_explicit(&w->srv->conns_open, memory_order_seq_cst);
	return open < w->cfg->max_conns ? w->cfg->max_conns - open : 0;
}

/* Takes a process-wide connection slot; false at --max-conns. */
static bool take_slot(struct tern_worker *w)
{
	unsigned open = atomic_fetch_add_explicit(&w->srv->conns_open, 1, memory_order_relaxed);
	if (open < w->cfg->max_conns)
		return true;
	atomic_fetch_sub_explicit(&w->srv->conns_open, 1, memory_order_seq_cst);
	return false;
}

void tern_worker_log_refused(struct tern_worker *w, bool now)
{
	uint64_t total = 0;
	char by_reason[128];
	size_t used = 0;

	for (unsigned i = 0; i < TERN_REFUSE_COUNT; i++)
		total += w->refused_unlogged[i];
	if (total == 0)
		return;
	if (!now && w->refused_logged_ms && w->host.now_ms < w->refused_logged_ms + 1000)
		return;
	by_reason[0] = '\0';
	for (unsigned i = 0; i < TERN_REFUSE_COUNT && used < sizeof(by_reason); i++) {
		int n = snprintf(by_reason + used, sizeof(by_reason) - used, "%s%s=%llu",
				 i ? " " : "", refuse_reason_names[i],
				 (unsigned long long)w->refused_unlogged[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	tern_log(TERN_LOG_INFO, "worker %u: %llu connections refused since the last such line (%s)",
		 w->index, (unsigned long long)total, by_reason);
	memset(w->refused_unlogged, 0, sizeof(w->refused_unlogged));
	w->refused_logged_ms = w->host.now_ms;
}

void tern_worker_refuse(struct tern_worker *w, int fd, enum tern_refuse_reason why)
{
	_Atomic uint64_t *ctr[TERN_REFUSE_COUNT] = {
		[TERN_REFUSE_DRAIN] = &w->ctr.conns_refused_drain,
		[TERN_REFUSE_NO_MEMORY] = &w->ctr.conns_refused_no_memory,
		[TERN_REFUSE_OVERFLOW] = &w->ctr.conns_refused_overflow,
	};

	w->engine->close_fd(w, fd);
	tern_counter_add(ctr[why], 1);
	/* Logged by the next tick, with whatever else it refused by then. */
	w->refused_unlogged[why]++;
}

/* A connection for an accepted client socket that holds a slot; without
 * memory for one, the socket is refused and the slot released. */
static void accept_conn(struct tern_worker *w, int fd)
{
	/* TCP_NODELAY and --tcp-keepalive came with the socket, from its
	 * listener (tern_worker_add_listener). */
	if (tern_conn_accept(&w->host, fd) == 0)
		return;
	tern_log(TERN_LOG_WARN, "worker %u: out of memory for a new connection", w->index);
	tern_worker_refuse(w, fd, TERN_REFUSE_NO_MEMORY);
	tern_worker_conn_slot_freed(&w->host);
}

/* wants_slot and accept_waiters: published before conns_open is looked at
 * again, and a worker freeing a slot subtracts from conns_open before it
 * reads accept_waiters (all sequentially consistent), so one of the two
 * sees the other. */
static void publish_waiting(struct tern_worker *w, bool waiting)
{
	if (atomic_load_explicit(&w->wants_slot, memory_order_relaxed) == waiting)
		return;
	atomic_store_explicit(&w->wants_slot, waiting, memory_order_seq_cst);
	if (waiting)
		atomic_fetch_add_explicit(&w->srv->accept_waiters, 1, memory_order_seq_cst);
	else
		atomic_fetch_sub_explicit(&w->srv->accept_waiters, 1, memory_order_seq_cst);
}

/* At --max-conns: stop taking sockets from the backlogs, which hold new
 * connections until a slot frees. */
static void pause_accept(struct tern_worker *w)
{
	if (w->accept_paused)
		return;
	w->accept_paused = true;
	tern_log(TERN_LOG_DEBUG, "worker %u: --max-conns %u reached, accepting paused", w->index,
		 w->cfg->max_conns);
	for (size_t i = 0; i < w->num_listeners; i++)
		if (w->listeners[i].fd >= 0)
			w->engine->listener_pause(&w->listeners[i]);
	publish_waiting(w, true);
	/* A slot freed between our look at conns_open and the publication
	 * woke nobody: look again, and wake ourselves for it. */
	if (free_slots(w) > 0)
		tern_worker_request(w, TERN_REQ_RESUME_ACCEPT);
}

void tern_worker_arm_listeners(struct tern_worker *w)
{
	if (w->accept_paused || w->draining || w->stopping)
		return;
	unsigned free = free_slots(w);
	if (free == 0) {
		pause_accept(w);
		return;
	}
	for (size_t i = 0; i < w->num_listeners; i++)
		if (w->listeners[i].fd >= 0)
			w->engine->listener_arm(&w->listeners[i], free);
}

bool tern_worker_may_accept(struct tern_worker *w)
{
	if (w->accept_paused || w->draining || w->stopping)
		return false;
	if (free_slots(w) > 0)
		return true;
	pause_accept(w);
	return false;
}

void tern_worker_resume_accept(struct tern_worker *w)
{
	if (!w->accept_paused || w->draining || w->stopping)
		return;
	while (w->num_parked > 0) {
		if (!take_slot(w))
			return;
		int fd = w->parked[0];
		w->num_parked--;
		memmove(&w->parked[0], &w->parked[1], w->num_parked * sizeof(w->parked[0]));
		accept_conn(w, fd);
	}
	if (free_slots(w) == 0)
		return;
	w->accept_paused = false;
	publish_waiting(w, false);
	tern_worker_arm_listeners(w);
}

/* The other workers waiting for a slot, woken once each: a wake already
 * pending is not repeated. */
static void wake_waiters(struct tern_worker *w)
{
	struct tern_server *srv = w->srv;

	for (unsigned i = 0; i < srv->num_workers; i++) {
		struct tern_worker *o = srv->workers[i];
		if (o == w || !atomic_load_explicit(&o->wants_slot, memory_order_relaxed))
			continue;
		if (atomic_load_explicit(&o->requests, memory_order_relaxed) & TERN_REQ_RESUME_ACCEPT)
			continue;
		tern_worker_request(o, TERN_REQ_RESUME_ACCEPT);
	}
}

void tern_worker_conn_slot_freed(struct tern_conn_host *h)
{
	struct tern_worker *w = tern_container_of(h, struct tern_worker, host);

	atomic_fetch_sub_explicit(&w->srv->conns_open, 1, memory_order_seq_cst);
	if (w->accept_paused)
		tern_worker_resume_accept(w);
	if (atomic_load_explicit(&w->srv->accept_waiters, memory_order_seq_cst) > 0 &&
	    free_slots(w) > 0)
		wake_waiters(w);
}

static void park(struct tern_worker *w, int fd)
{
	if (w->num_parked < w->parked_cap)
		w->parked[w->num_parked++] = fd;
	else
		tern_worker_refuse(w, fd, TERN_REFUSE_OVERFLOW);
}

/* As the control and metrics servers warn about their own accepts
 * (poll_server.c): at most one line per 10 s per worker. */
#define TERN_ACCEPT_WARN_INTERVAL_MS 10000u

void tern_worker_warn_accept_failed(struct tern_worker *w, const struct tern_listener *l, int err)
{
	unsigned long long unsaid;

	if (!tern_log_limit_due(&w->accept_failed, w->host.now_ms, TERN_ACCEPT_WARN_INTERVAL_MS, &unsaid))
		return;
	if (unsaid > 0)
		tern_log(TERN_LOG_WARN, "worker %u: accept on %s: %s (%llu more since the last warning)", w->index,
			 l->addr->text, strerror(err), unsaid);
	else
		tern_log(TERN_LOG_WARN, "worker %u: accept on %s: %s", w->index, l->addr->text, strerror(err));
}

void tern_worker_on_accept(struct tern_worker *w, int fd)
{
	if (w->draining || w->stopping) {
		tern_worker_refuse(w, fd, TERN_REFUSE_DRAIN);
		return;
	}
	/* Parked sockets came first: they are served first. */
	if (w->num_parked > 0) {
		park(w, fd);
		tern_worker_resume_accept(w);
		return;
	}
	if (!take_slot(w)) {
		park(w, fd);
		pause_accept(w);
		return;
	}
	accept_conn(w, fd);
}

/* A listener of the worker's own that closes resets the connections in
 * its backlog (the kernel's doing, unseen): accepting them first, and
 * closing them, counts them. Bounded: clients may still be connecting. */
static void refuse_backlog(struct tern_worker *w, struct tern_listener *l)
{
	int flags = fcntl(l->fd, F_GETFL);

	if (flags < 0 || fcntl(l->fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return;
	for (unsigned n = 0; n < 2 * SOMAXCONN; n++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		tern_worker_refuse(w, fd, TERN_REFUSE_DRAIN);
	}
}

void tern_worker_close_listeners(struct tern_worker *w)
{
	for (size_t i = 0; i < w->num_listeners; i++) {
		struct tern_listener *l = &w->listeners[i];
		if (l->fd < 0)
			continue;
		/* A shared socket stays open for the other workers, and its
		 * backlog for whoever passed it to us (the service manager's
		 * next instance): closed once, by the server, at the end. */
		if (!l->shared)
			refuse_backlog(w, l);
		w->engine->listener_close(l);
		l->fd = -1;
	}
	for (unsigned i = 0; i < w->num_parked; i++)
		tern_worker_refuse(w, w->parked[i], TERN_REFUSE_DRAIN);
	w->num_parked = 0;
	publish_waiting(w, false);
}
