/* The process: configuration checked, listeners bound, workers started,
 * drained and joined. Main thread only, except where noted. */
#ifndef TERN_SERVER_H
#define TERN_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/config.h"
#include "tern/counters.h"
#include "tern/health.h"
#include "tern/key_handoff.h"
#include "tern/key_view.h"
#include "tern/listen_fds.h"
#include "tern/sd_status.h"

struct tern_backends;
struct tern_worker;
struct tern_tls_identities;
struct tern_ticket_keys;

struct tern_server {
	const struct tern_config *cfg;
	/* Every certificate, loaded once (a reference; workers' contexts
	 * hold their own). */
	struct tern_tls_identities *identities;
	/* The current ticket key set (a reference). After start, only the
	 * control thread replaces it; workers hold references of their own. */
	struct tern_ticket_keys *ticket_keys;
	/* The backend addresses, their health and the monitor thread that
	 * keeps them current (backends.h); made before the workers, which
	 * each start with a reference to its current set. */
	struct tern_backends *backends;
	/* Its generation, and which generation each worker was queued: the
	 * control thread's, like ticket_keys (key_handoff.h). */
	struct tern_key_handoff key_handoff;
	struct tern_worker **workers; /* num_workers of them (worker.h) */
	unsigned num_workers;
	unsigned num_threads; /* worker threads started and not yet joined */
	/* Open client connections, whole process, against --max-conns.
	 * Workers add and subtract; relaxed is enough for a cap. */
	_Atomic unsigned conns_open;
	/* Workers paused at --max-conns (their wants_slot set): a worker that
	 * frees a slot wakes them only when this is not 0 (worker_accept.c).
	 * Sequentially consistent with conns_open, so that a pause and a
	 * freed slot never miss each other. */
	_Atomic unsigned accept_waiters;
	_Atomic unsigned workers_running;
	/* Listening sockets passed in by a service manager (socket
	 * activation): every worker accepts on each of them; closed once, by
	 * tern_server_join_and_free. */
	struct tern_listen_fds inherited;
	/* Bit i set: each worker binds cfg->listen[i] itself (every address,
	 * unless inherited sockets stand in for some). */
	uint64_t bind_listen;
	/* Reloads that failed and left the old configuration in place
	 * (SPEC section 4); read by metrics and stats. Rare: any thread may
	 * add with atomic_fetch_add, relaxed. */
	_Atomic uint64_t reload_failures;
	/* The I/O engine every worker runs (never TERN_IO_AUTO once
	 * tern_server_prepare returned): --io, or for auto what the io_uring
	 * probe allowed. Read-only after prepare. */
	enum tern_io_engine io_engine;
	/* tern_clock_ms() when tern_server_prepare began: `info`'s uptime. */
	uint64_t started_ms;
	/* Reloads applied; the control thread's, like ticket_keys. */
	uint64_t generation;
	/* Workers' health pings and the drain flag (health.h). */
	struct tern_health health;
	/* systemd's STATUS= line; the control thread's (sd_status.h). */
	struct tern_sd_status status;
	/* The ticket keys' fingerprints, roles and times for the metrics
	 * thread, renewed with ticket_keys (key_view.h). */
	struct tern_key_view key_view;
	bool key_view_ready; /* initialised: server_free destroys it once */
};

/* Chooses the I/O engine (--io; io_probe.h: auto falls back to epoll with
 * one warning when io_uring is refused, the probe runs under --check too),
 * loads the certificate and builds one SSL_CTX shard per worker, and, unless
 * bind is false (--check), binds every worker's listening sockets, or takes
 * the ones a service manager passed in (LISTEN_FDS, see listen_fds.h) and
 * binds only the --listen addresses they do not cover. Nothing runs yet. Returns 0, -EINVAL for a flag value OpenSSL rejects (exit 2), or
 * another -errno for a file or address problem (exit 1); err says which. */
__attribute__((warn_unused_result))
int tern_server_prepare(struct tern_server *srv, const struct tern_config *cfg, bool bind,
			char *err, size_t err_len);

/* A one-line summary of the TLS settings ("certs=2 ..."), for --check
 * and the log; tern_tls_identities_describe() has one line per
 * certificate. */
void tern_server_describe(const struct tern_server *srv, char *out, size_t out_len);

/* The addresses served, comma-separated, inherited ones marked
 * "(inherited)", for the ready line. */
void tern_server_describe_listen(const struct tern_server *srv, char *out, size_t out_len);

/* Starts the workers; returns once each has its ring armed, or -errno
 * (with every started worker stopped and joined; the caller still frees
 * with tern_server_join_and_free). */
__attribute__((warn_unused_result))
int tern_server_start(struct tern_server *srv, char *err, size_t err_len);

/* Any thread: graceful drain (first signal) or immediate close (second).
 * Either makes the health probes answer "draining" (health.h). */
void tern_server_drain(struct tern_server *srv);
void tern_server_stop_now(struct tern_server *srv);

/* Any thread: true once every worker thread has left its loop. */
bool tern_server_finished(struct tern_server *srv);

/* Joins the worker threads still running (none if start was not called or
 * failed) and frees everything prepare and start made. */
void tern_server_join_and_free(struct tern_server *srv);

/* Control thread: makes keys (the caller's reference) the current ticket
 * key set, its next generation, and queues every worker a reference
 * without waiting. Returns how many workers' queues were full: they are
 * owed the set (key_handoff.h) until tern_server_retry_ticket_keys
 * reaches them, and keep the keys they have meanwhile. */
unsigned tern_server_adopt_ticket_keys(struct tern_server *srv, struct tern_ticket_keys *keys);

/* Control thread: queues the current ticket key set to every worker owed
 * it, without waiting. Returns how many are still owed (0: every worker
 * has it queued or uses it; call again later otherwise). */
unsigned tern_server_retry_ticket_keys(struct tern_server *srv);

/* Any thread: how many workers use a ticket key set other than the
 * newest, generation (key_view.h has it for threads other than the
 * control thread). */
unsigned tern_server_ticket_keys_behind(struct tern_server *srv, uint64_t generation);

/* Any thread: the sum of all workers' counters. */
struct tern_totals {
#define TERN_TOTAL_DECLARE(name) uint64_t name;
	TERN_COUNTER_FIELDS(TERN_TOTAL_DECLARE)
#undef TERN_TOTAL_DECLARE
};
void tern_server_totals(struct tern_server *srv, struct tern_totals *out);

#endif
