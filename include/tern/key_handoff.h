/* Ticket key hand-off bookkeeping: which generation of the ticket key set
 * each worker has been handed, so that a hand-off that could not be queued
 * is retried until every worker has the newest set.
 *
 * Why retry, not all-or-nothing: a worker's queue is bounded (worker.h),
 * and a worker that is frozen (a debugger, a stuck system call, a CPU
 * starved by a noisy neighbour) stops draining it, so a push to it fails
 * once it is full. An all-or-nothing change would have to wait for the
 * slowest worker before any worker switches, so one stuck worker would
 * stop every rotation (the keys would age past --ticket-rotate with
 * nothing said), and undoing a switch on the workers that took it needs a
 * second hand-off that can fail the same way. Retrying instead lets every
 * worker that runs switch at once, and the stuck one as soon as it runs
 * again: the split lasts as long as the stall, never until the next
 * rotation. While it lasts it is visible (the per-worker generation in
 * `tern ctl keys`, `stats` and tern_ticket_key_generation{worker="N"}),
 * and it costs only resumption: a ticket issued under the newest key
 * gets a full handshake on the worker that is behind, nothing fails.
 *
 * Generations: the control thread owns them. The set made at start is
 * generation 1 (every worker is given it when it is made); each new set
 * (rotation, reload of the key file) is one more. Sets reach a worker in
 * the order they were made, as only the control thread queues them and
 * the queue is FIFO per producer (queue.h), so a worker's generation only
 * grows.
 *
 * Not thread-safe: the control thread's alone (the workers publish the
 * generation they adopted through tern_worker_ticket_key_generation). */
#ifndef TERN_KEY_HANDOFF_H
#define TERN_KEY_HANDOFF_H

#include <stdbool.h>
#include <stdint.h>

/* The generation of the key set every worker is made with. */
#define TERN_KEY_GENERATION_FIRST 1u

struct tern_key_handoff {
	uint64_t generation; /* the newest set's */
	unsigned num_workers;
	/* Per worker: the newest generation queued to it (or given at its
	 * creation). Never above generation. */
	uint64_t *queued;
	unsigned num_owed; /* workers whose queued < generation */
};

/* Sets up the bookkeeping of num_workers workers (at least 1), each
 * holding generation TERN_KEY_GENERATION_FIRST. Returns 0 or -ENOMEM (h
 * is then left so that free is a no-op). */
__attribute__((warn_unused_result))
int tern_key_handoff_init(struct tern_key_handoff *h, unsigned num_workers);

/* Frees what init made; a zeroed h is fine. */
void tern_key_handoff_free(struct tern_key_handoff *h);

/* A new set was made: its generation (one more than the last), which
 * every worker is owed from now on. */
uint64_t tern_key_handoff_begin(struct tern_key_handoff *h);

/* The newest generation queued to worker i (or given at its creation).
 * i < num_workers. */
uint64_t tern_key_handoff_queued_generation(const struct tern_key_handoff *h, unsigned i);

/* Whether worker i still has to be queued the newest set. */
bool tern_key_handoff_owed(const struct tern_key_handoff *h, unsigned i);

/* The newest set was queued to worker i (its push succeeded). i <
 * num_workers; a worker not owed is left as it is. */
void tern_key_handoff_queued(struct tern_key_handoff *h, unsigned i);

/* How many workers are owed the newest set. */
unsigned tern_key_handoff_num_owed(const struct tern_key_handoff *h);

#endif
