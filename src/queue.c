/* The per-worker request queue: Vyukov's bounded queue with one consumer.
 * The protocol, its states and guarantees are described in queue.h. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tern/queue.h"

/* A lock-based fallback would turn "never takes a lock" into a lie. */
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
	       "64-bit atomics must be lock-free");

int tern_queue_init(struct tern_queue *q, uint32_t capacity)
{
	memset(q, 0, sizeof(*q));
	if (capacity == 0 || capacity > TERN_QUEUE_MAX_CAPACITY)
		return -EINVAL;
	uint32_t cap = TERN_QUEUE_MIN_CAPACITY;
	while (cap < capacity)
		cap <<= 1;

	/* cap <= 1 << 20 slots of 40 bytes: no overflow. */
	struct tern_queue_slot *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	/* Plain initialisation: the queue reaches other threads only through
	 * a happens-before edge the caller provides (queue.h, "Who"). */
	for (uint32_t i = 0; i < cap; i++)
		atomic_init(&slots[i].seq, i);
	q->slots = slots;
	q->mask = cap - 1;
	atomic_init(&q->tail, 0);
	q->head = 0;
	return 0;
}

void tern_queue_destroy(struct tern_queue *q)
{
	free(q->slots);
	q->slots = NULL;
	q->mask = 0;
}

uint32_t tern_queue_capacity(const struct tern_queue *q)
{
	return q->slots ? (uint32_t)(q->mask + 1) : 0;
}

int tern_queue_push(struct tern_queue *q, const struct tern_request *req)
{
	/* relaxed: tail is only a hint of where to try; the CAS below checks
	 * it, and the slot's seq, not tail, carries the data hand-off. */
	uint64_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
	struct tern_queue_slot *slot;
	for (;;) {
		slot = &q->slots[pos & q->mask];
		/* acquire: pairs with the consumer's release store of
		 * seq = pos (pop, a lap ago), so its copy-out of this slot
		 * happens-before our overwrite below. */
		uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - pos);
		if (dif == 0) {
			/* The slot is free for position pos: claim it.
			 * relaxed on success: the CAS only decides which
			 * producer owns pos; the acquire above already ordered
			 * us after the consumer, and nothing else is published
			 * through tail. relaxed on failure: pos is reloaded and
			 * rechecked against the slot's seq with acquire. */
			if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				break;
			/* Another producer took pos (or a spurious failure);
			 * pos now holds the current tail. */
		} else if (dif < 0) {
			/* The slot still belongs to the previous lap (published
			 * and not popped, or still being written): at the moment
			 * of that load, `capacity` positions were claimed and
			 * not popped. That load is the linearisation point. */
			return -EBUSY;
		} else {
			/* seq > pos: our pos is stale, other producers claimed
			 * it and maybe more. relaxed: as for the first load. */
			pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
		}
	}

	/* Position pos is ours alone until we publish it: plain writes. */
	slot->req = *req;
	/* release: the value (and whatever the caller wrote before push) is
	 * visible to the consumer whose acquire load reads pos + 1. */
	atomic_store_explicit(&slot->seq, pos + 1, memory_order_release);
	return 0;
}

bool tern_queue_pop(struct tern_queue *q, struct tern_request *out)
{
	uint64_t pos = q->head; /* consumer-private */
	struct tern_queue_slot *slot = &q->slots[pos & q->mask];
	/* acquire: pairs with the producer's release store of pos + 1, so the
	 * value it wrote is visible to the copy below. */
	uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
	if (seq != pos + 1) {
		/* Empty, or claimed and not yet published: a claim leaves seq
		 * alone. Only this pop can move it past pos + 1. */
		assert(seq == pos);
		return false;
	}

	*out = slot->req;
	/* release: our copy-out happens-before the next lap's producer, whose
	 * acquire load reads pos + capacity, overwrites the slot. */
	atomic_store_explicit(&slot->seq, pos + q->mask + 1, memory_order_release);
	q->head = pos + 1;
	return true;
}
