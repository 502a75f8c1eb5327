/* A control thread's request fanned out to workers, their answers, and the
 * JSON reply made of them.
 *
 * The control thread makes a reply with one part per worker, expects the
 * parts it addresses and pushes a request naming the reply to each of those
 * workers. Every expected part ends in exactly one of three ways, and the
 * reply says which, so a request is either done or reported not done:
 *
 *   IDLE -expect-> PENDING -take-> TAKEN -answer-> DONE       (carried out)
 *                  PENDING -withdraw->  UNSENT    (the push failed: never queued)
 *                  PENDING -abandon->   ABANDONED (no answer in time: skipped)
 *
 * take (the worker) and abandon (the control thread, when its wait runs
 * out) race for a PENDING part; one compare-and-swap decides. A worker that
 * loses does not carry the request out; a control thread that loses waits
 * for the answer, without a bound: a taken request is a walk over one
 * worker's connections, short and never blocked. So after
 * tern_reply_finish() no part is PENDING or TAKEN, and every part says
 * exactly what happened on its worker.
 *
 * Who touches a part: the control thread until it expects the part and
 * again after tern_reply_finish() returns; the worker between take and
 * answer; the control thread for an UNSENT or ABANDONED part (writing why).
 * `state` alone is atomic. The other fields cross threads through `pending`:
 * every resolution (answer, withdraw, abandon) is an acq_rel decrement, the
 * one reaching zero posts `done`, and finish returns after an acquire load
 * of zero, so every part written before its resolution is visible.
 *
 * Lifetime: one reference for the control thread plus one per expected
 * part until its worker (or withdraw, for a request never queued) drops it;
 * the last one frees the reply. A worker that pops an abandoned request
 * long after the control thread moved on still points into live memory. */
#ifndef TERN_REPLY_H
#define TERN_REPLY_H

#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tern_conn_info;
struct tern_json;

enum tern_reply_state {
	TERN_REPLY_IDLE = 0,  /* not addressed */
	TERN_REPLY_PENDING,   /* queued for the worker, not taken yet */
	TERN_REPLY_TAKEN,     /* the worker is carrying it out */
	TERN_REPLY_DONE,      /* carried out; status, value and conns are the worker's */
	TERN_REPLY_UNSENT,    /* never queued (the worker's queue stayed full) */
	TERN_REPLY_ABANDONED, /* not taken in time: the worker skips it */
};

struct tern_reply_part {
	_Atomic unsigned state; /* enum tern_reply_state */
	int status;             /* 0, or -errno with `error` set */
	uint64_t value;         /* kind-specific count (connections reached, listed) */
	/* conns: `value` connections, in the worker's order; malloc'd (the
	 * reply frees it), or NULL when none. */
	struct tern_conn_info *conns;
	char error[160];
};

struct tern_reply {
	_Atomic unsigned refs;
	_Atomic unsigned pending; /* parts PENDING or TAKEN */
	sem_t done;               /* posted once, when pending reaches zero */
	unsigned num_parts;
	struct tern_reply_part parts[];
};

/* Any thread. A reply with one reference (the caller's) and every part
 * IDLE; NULL on allocation failure. */
struct tern_reply *tern_reply_new(unsigned num_parts);

/* Control thread, before pushing a request for part i: PENDING, with a
 * reference for the worker. Expect every part before the first push, so
 * the count cannot reach zero while parts are still to be sent. */
void tern_reply_expect(struct tern_reply *r, unsigned i);

/* Control thread, when the push for part i failed: UNSENT with -EBUSY and
 * "worker i is busy ...", and the worker's reference dropped. */
void tern_reply_withdraw(struct tern_reply *r, unsigned i);

/* Worker i, on popping the request: the part to fill, now TAKEN, or NULL
 * when the control thread abandoned it; then the request must not be
 * carried out, and the worker's reference is already dropped. */
__attribute__((warn_unused_result))
struct tern_reply_part *tern_reply_take(struct tern_reply *r, unsigned i);

/* Worker i: its taken part is written; DONE, and the worker's reference
 * dropped. */
void tern_reply_answer(struct tern_reply *r, unsigned i);

/* Control thread: waits up to timeout_ms for every expected part; then
 * abandons the parts still PENDING (-ETIMEDOUT, "worker i did not answer
 * within timeout_ms ms") and waits for the TAKEN ones to be answered.
 * Returns the number of parts abandoned. */
unsigned tern_reply_finish(struct tern_reply *r, unsigned timeout_ms);

/* Drops a reference; the last one frees the reply and its parts. */
void tern_reply_unref(struct tern_reply *r);

/* Rendering, on the control thread after tern_reply_finish(). A part
 * counts as failed when its status is negative: UNSENT, ABANDONED, or an
 * error its worker wrote. */

/* {"ok":false,"error":error}. */
void tern_reply_render_error(struct tern_json *j, const char *error);

/* A request to the one worker of part i: {"ok":true} with "count_key":value
 * when count_key is not NULL, or {"ok":false,"error":...}; an error of a
 * part never carried out says so. */
void tern_reply_render_one(const struct tern_reply *r, unsigned i, const char *count_key,
			   struct tern_json *j);

/* A request to every addressed worker whose parts are counts (tickets
 * all): {"ok":B,"count_key":TOTAL,"workers":[{"worker":0,"count_key":N} or
 * {"worker":1,"error":"..."}...]}. ok is true only when every addressed
 * worker carried the request out; otherwise an "error" after "ok" names
 * the workers that did not, and the counts of the others still follow. */
void tern_reply_render_counts(const struct tern_reply *r, const char *count_key,
			      struct tern_json *j);

/* conns, from every addressed worker's part->conns:
 * {"ok":B,"conns":[{"id":...,"client_cert":...}...]} with the connections
 * of every part in worker order, min(limit, all listed) of them; this is
 * the one place a connection becomes JSON. ok and "error" as for
 * tern_reply_render_counts. */
void tern_reply_render_conns(const struct tern_reply *r, uint64_t limit, struct tern_json *j);

#endif
