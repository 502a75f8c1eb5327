/* Ticket key hand-off bookkeeping (key_handoff.h): pure, the control
 * thread's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tern/key_handoff.h"

int tern_key_handoff_init(struct tern_key_handoff *h, unsigned num_workers)
{
	memset(h, 0, sizeof(*h));
	if (num_workers == 0)
		return -EINVAL;
	h->queued = calloc(num_workers, sizeof(*h->queued));
	if (!h->queued)
		return -ENOMEM;
	h->generation = TERN_KEY_GENERATION_FIRST;
	h->num_workers = num_workers;
	for (unsigned i = 0; i < num_workers; i++)
		h->queued[i] = TERN_KEY_GENERATION_FIRST;
	return 0;
}

void tern_key_handoff_free(struct tern_key_handoff *h)
{
	free(h->queued);
	memset(h, 0, sizeof(*h));
}

uint64_t tern_key_handoff_begin(struct tern_key_handoff *h)
{
	h->generation++;
	h->num_owed = h->num_workers;
	return h->generation;
}

uint64_t tern_key_handoff_queued_generation(const struct tern_key_handoff *h, unsigned i)
{
	return i < h->num_workers ? h->queued[i] : 0;
}

bool tern_key_handoff_owed(const struct tern_key_handoff *h, unsigned i)
{
	return i < h->num_workers && h->queued[i] < h->generation;
}

void tern_key_handoff_queued(struct tern_key_handoff *h, unsigned i)
{
	if (!tern_key_handoff_owed(h, i))
		return;
	h->queued[i] = h->generation;
	h->num_owed--;
}

unsigned tern_key_handoff_num_owed(const struct tern_key_handoff *h)
{
	return h->num_owed;
}
