/* A worker's request queue: bounded, lock-free, many producers, one
 * consumer, carrying struct tern_request values (request.h) by copy.
 *
 * Who
 *   push: any thread (control socket, timers, other workers), concurrently.
 *   pop:  the one consumer, the worker that owns the queue; never two
 *         threads at once.
 *   init/destroy: not concurrent with anything. The initialised queue
 *         reaches producers through a happens-before edge (thread creation,
 *         a mutex, a release store); destroy runs after every producer has
 *         returned from its last push.
 *
 * Design: D. Vyukov's bounded queue. `capacity` slots, a power of two;
 * positions count up forever (64 bits: they never wrap) and position p
 * lives in slot p & mask. Each slot carries a sequence number that says
 * whose turn it is:
 *   seq == p             free for the producer of position p (or claimed
 *                        by it and still being written, see below)
 *   seq == p + 1         published: holds the value of position p
 *   seq == p + capacity  popped; free for position p + capacity
 * A producer claims position p with a CAS tail: p -> p + 1, copies the value
 * in, then release-stores seq = p + 1. The consumer, at position head,
 * acquire-loads seq; if it is head + 1 it copies the value out,
 * release-stores seq = head + capacity and advances head, a plain variable
 * only it touches (no read-modify-write on the consumer side).
 *
 * Transient states the consumer can see at its head position p
 *   - empty: nobody claimed p yet (tail == p): pop returns false.
 *   - claimed, not yet published: a producer won the CAS for p and has not
 *     stored seq = p + 1 yet (it may be preempted there for a whole time
 *     slice). seq still reads p, so pop returns false, exactly as if the
 *     queue were empty, even when later positions are already published:
 *     the consumer never passes an unpublished slot, so FIFO holds. The
 *     consumer must simply try again later; nothing is lost, because the
 *     producer that claimed p publishes it and then wakes the consumer
 *     (the wake protocol below).
 * Producers see one more: a slot of the previous lap that is published but
 * not yet popped, or still being written (seq < p): that is "full".
 *
 * Full: push returns -EBUSY when the slot of the next position still
 * belongs to the previous lap, i.e. `capacity` positions are claimed and
 * not yet popped (some may still be being written). A value is never
 * overwritten and never dropped silently: the caller decides (retry later,
 * or answer "busy"). An unpublished slot counts as occupied.
 *
 * Ordering
 *   - FIFO per producer: a producer's pushes claim increasing positions.
 *   - Across producers, values come out in the order their CASes on tail
 *     succeeded (the linearisation point of push); a push that returned
 *     before another began comes out first.
 *   - Memory: everything a producer wrote before push (the value, and what
 *     `ptr` points to) happens-before everything the consumer does after
 *     the pop that returns it: the slot is written before the release store
 *     of its seq, and the consumer's acquire load reads that store. Likewise
 *     the consumer's copy-out happens-before the next producer's overwrite
 *     of that slot, a lap later.
 *
 * Progress
 *   - push is lock-free and never blocks, allocates or sleeps: its CAS
 *     fails only because another producer's succeeded, so some push always
 *     completes. A producer stalled between claim and publish does not
 *     block other producers: they claim later positions, until the queue
 *     wraps back to the stalled slot, where they see "full".
 *   - pop is wait-free: a bounded number of steps, no loop.
 *   - The stalled producer of the transient state above blocks the
 *     consumer from passing that one slot, for as long as it is stalled.
 *
 * Wake protocol (the caller's side of "nothing is lost")
 *   A producer wakes the consumer after every successful push (for a
 *   worker: a message through its ring). The consumer, on each wake, first
 *   consumes the wake-up and then pops until pop returns false. A value
 *   hidden behind an unpublished slot is then popped after the wake of the
 *   producer that publishes that slot, which comes after its publish. */
#ifndef TERN_QUEUE_H
#define TERN_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tern/request.h"

/* Capacities are rounded up to a power of two in this range. The minimum
 * is 2, not 1: with one slot a popped slot's seq (p + 1) would read as
 * "published" for position p + 1. */
#define TERN_QUEUE_MIN_CAPACITY 2u
#define TERN_QUEUE_MAX_CAPACITY (1u << 20)

/* Keeps fields written by different threads on different cache lines. */
#define TERN_QUEUE_GAP 64

struct tern_queue_slot {
	_Atomic uint64_t seq; /* whose turn: see the table above */
	struct tern_request req;
};

/* Separation by distance, not by _Alignas: the queue is embedded in
 * calloc'd worker structs, whose 16-byte alignment would break an
 * alignment promise (and UBSan checks such promises). A full gap between
 * groups keeps them on different lines at any base address. */
struct tern_queue {
	/* Set by init, read-only afterwards; read by every thread. */
	struct tern_queue_slot *slots;
	uint64_t mask; /* capacity - 1 */
	char gap_tail[TERN_QUEUE_GAP];
	/* Next position to claim. Producers only: CAS. */
	_Atomic uint64_t tail;
	char gap_head[TERN_QUEUE_GAP];
	/* Next position to pop. The consumer only: a plain variable. */
	uint64_t head;
	char gap_end[TERN_QUEUE_GAP];
};

/* Sets up an empty queue of `capacity` rounded up to a power of two, at
 * least TERN_QUEUE_MIN_CAPACITY; the slots are allocated here, once.
 * Returns 0, -EINVAL for a capacity of 0 or above TERN_QUEUE_MAX_CAPACITY,
 * or -ENOMEM. On failure the queue is left so that destroy is a no-op.
 * Not thread-safe (see "Who"). */
__attribute__((warn_unused_result))
int tern_queue_init(struct tern_queue *q, uint32_t capacity);

/* Frees the slots. Values still queued are discarded without a look:
 * whatever their `ptr` owns is the caller's to drain first. Safe on a
 * zeroed queue or one whose init failed. Not thread-safe (see "Who"). */
void tern_queue_destroy(struct tern_queue *q);

/* The capacity after rounding: how many values fit at once; 0 for a queue
 * that is zeroed, failed init or was destroyed. Any thread. */
uint32_t tern_queue_capacity(const struct tern_queue *q);

/* Copies *req into the queue. Any thread. Returns 0, or -EBUSY when the
 * queue is full (nothing was queued; the caller still owns what req->ptr
 * points to). Lock-free: never blocks, allocates or takes a lock. After 0,
 * wake the consumer (see "Wake protocol"). */
__attribute__((warn_unused_result))
int tern_queue_push(struct tern_queue *q, const struct tern_request *req);

/* Copies the oldest value into *out and returns true; the consumer now owns
 * what out->ptr points to, as its kind defines. Returns false, leaving *out
 * untouched, when the queue is empty or when the next value's producer has
 * claimed its slot but not finished publishing it: either way try again
 * later, after the next wake. The single consumer thread only. Wait-free. */
__attribute__((warn_unused_result))
bool tern_queue_pop(struct tern_queue *q, struct tern_request *out);

#endif
