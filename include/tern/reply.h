/* A control thread's request fanned out to workers, and their answers.
 *
 * The control thread makes a reply for `num_parts` workers and pushes a
 * request naming it to each. Each worker fills parts[its index] on its own
 * thread and calls tern_reply_answer(); the last answer posts `done`. The
 * control thread waits on `done` with a bound and reads the parts only if
 * every worker answered in time.
 *
 * Lifetime: one reference for the control thread plus one per worker the
 * request reached; whoever drops the last frees it, so a worker answering
 * after the control thread gave up writes into live memory. */
#ifndef TERN_REPLY_H
#define TERN_REPLY_H

#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tern_reply_part {
	int status;      /* 0, or -errno with `error` set */
	uint64_t value;  /* kind-specific count (connections reached, ...) */
	char *json;      /* malloc'd JSON fragment, or NULL */
	size_t json_len;
	char error[160];
};

struct tern_reply {
	_Atomic unsigned refs;
	_Atomic unsigned pending; /* answers still to come */
	sem_t done;
	unsigned num_parts;
	struct tern_reply_part parts[];
};

/* Any thread. A reply with one reference (the caller's) and no answers
 * expected yet; NULL on allocation failure. */
struct tern_reply *tern_reply_new(unsigned num_parts);

/* Before pushing a request that names the reply to a worker. */
void tern_reply_expect(struct tern_reply *r);

/* Undo one tern_reply_expect() when the push failed. */
void tern_reply_unexpect(struct tern_reply *r);

/* Worker: its part is written; drops the worker's reference. */
void tern_reply_answer(struct tern_reply *r);

/* Control thread: waits until every expected answer is in, or timeout_ms
 * passed. True when all answered. */
bool tern_reply_wait(struct tern_reply *r, unsigned timeout_ms);

/* Drops a reference; the last one frees the reply and its parts' JSON. */
void tern_reply_unref(struct tern_reply *r);

#endif
