/* The log's bounded line buffer: any thread that logs pushes whole lines,
 * one consumer (the log thread, log.c) takes them out and does the
 * blocking writes, so a slow stderr (journald, a container's log pipe)
 * never stalls a worker (SPEC 2: "Logging never blocks a worker").
 *
 * Who may call what: push from any thread; take from one consumer
 * thread at a time; open and close from the thread that starts and stops
 * the consumer.
 *
 * Locking: one mutex, held by a producer for a bounds check and the
 * memcpy of its line (at most TERN_LOG_LINE_MAX bytes), by the consumer
 * for the memcpy of at most what it asks to take, and never across I/O,
 * allocation or waiting (the consumer waits on the condition variable,
 * which releases it). Uncontended, it is two atomic operations and no
 * system call. Why not lock-free: lines have any length up to 4 KiB and
 * must come out whole and, from one thread, in order; a lock-free
 * multi-producer byte ring needs a reserve-then-commit protocol whose
 * half-written records the consumer must wait behind (so a preempted
 * producer stalls everyone's lines anyway), or fixed slots of the largest
 * line (4 KiB for a 200-byte access line). Log lines are rare next to
 * the data path (one per connection at most with --access-log), so the
 * lock is almost never contended, and a wait behind it is one memcpy.
 *
 * Full: the line is dropped and counted (dropped), never waited for.
 * Closed (before the consumer runs and after it stops): push refuses with
 * -EPIPE and the caller writes the line itself.
 *
 * Invariants, under the mutex: len <= cap, head < cap (cap > 0); the bytes
 * [head, head + len) mod cap are whole lines, each ending in '\n'. */
#ifndef TERN_LOG_RING_H
#define TERN_LOG_RING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest line, its '\n' included: PIPE_BUF, so one line is one
 * atomic write to a pipe. */
#define TERN_LOG_LINE_MAX 4096u

struct tern_log_ring {
	pthread_mutex_t mu;
	pthread_cond_t nonempty; /* the consumer waits here */
	char *data;
	uint32_t cap;
	uint32_t head;          /* first byte of the oldest line */
	uint32_t len;           /* bytes held */
	bool open;              /* pushes are taken */
	bool consumer_waiting;  /* asleep on nonempty: the next push signals */
	_Atomic uint64_t dropped; /* lines refused: full, or too long */
};

/* A closed, empty ring over cap bytes at data (the caller's, for as long
 * as the ring lives). Usable as a static initializer. */
#define TERN_LOG_RING_INIT(storage, size)                                               \
	{                                                                               \
		.mu = PTHREAD_MUTEX_INITIALIZER, .nonempty = PTHREAD_COND_INITIALIZER, \
		.data = (storage), .cap = (size)                                        \
	}

/* Starts taking pushes. */
void tern_log_ring_open(struct tern_log_ring *r);

/* Stops taking pushes (they get -EPIPE from now on) and wakes the
 * consumer, which takes what is left and then gets 0. */
void tern_log_ring_close(struct tern_log_ring *r);

/* Appends one line (len bytes ending in '\n', 0 < len <= TERN_LOG_LINE_MAX)
 * whole. Returns 0; -ENOBUFS when it does not fit (dropped, counted);
 * -EMSGSIZE for a line that is empty, too long or has no '\n' at its end
 * (dropped, counted); -EPIPE when the ring is closed (not counted: the
 * caller writes it itself). Never blocks but for the mutex. */
int tern_log_ring_push(struct tern_log_ring *r, const char *line, size_t len);

/* Moves the oldest whole lines, as many as fit in out_cap bytes (out_cap
 * >= TERN_LOG_LINE_MAX takes at least one), into out and returns their
 * length. With wait, sleeps until there is a line or the ring is closed;
 * returns 0 when there is none (with wait: closed and empty). */
size_t tern_log_ring_take(struct tern_log_ring *r, char *out, size_t out_cap, bool wait);

/* Counts n more lines as dropped (the consumer could not write them). */
void tern_log_ring_count_dropped(struct tern_log_ring *r, uint64_t n);

/* Lines dropped so far; any thread, no lock. */
uint64_t tern_log_ring_dropped(const struct tern_log_ring *r);

#endif
