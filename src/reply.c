/* Fan-out replies between control threads and workers. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "tern/reply.h"

struct tern_reply *tern_reply_new(unsigned num_parts)
{
	struct tern_reply *r = calloc(1, sizeof(*r) + num_parts * sizeof(r->parts[0]));
	if (!r)
		return NULL;
	atomic_init(&r->refs, 1);
	atomic_init(&r->pending, 0);
	r->num_parts = num_parts;
	if (sem_init(&r->done, 0, 0) < 0) {
		free(r);
		return NULL;
	}
	return r;
}

void tern_reply_expect(struct tern_reply *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->pending, 1, memory_order_relaxed);
}

void tern_reply_unexpect(struct tern_reply *r)
{
	atomic_fetch_sub_explicit(&r->pending, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&r->refs, 1, memory_order_relaxed);
}

void tern_reply_answer(struct tern_reply *r)
{
	/* acq_rel: this worker's part is published before the count drops,
	 * and the last answerer sees every other part before posting. */
	if (atomic_fetch_sub_explicit(&r->pending, 1, memory_order_acq_rel) == 1)
		sem_post(&r->done);
	tern_reply_unref(r);
}

bool tern_reply_wait(struct tern_reply *r, unsigned timeout_ms)
{
	if (atomic_load_explicit(&r->pending, memory_order_acquire) == 0)
		return true;
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	while (sem_timedwait(&r->done, &deadline) < 0) {
		if (errno != EINTR)
			return false;
	}
	/* sem_post happened after the last acq_rel decrement: parts visible. */
	return atomic_load_explicit(&r->pending, memory_order_acquire) == 0;
}

void tern_reply_unref(struct tern_reply *r)
{
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (unsigned i = 0; i < r->num_parts; i++)
		free(r->parts[i].json);
	sem_destroy(&r->done);
	free(r);
}
