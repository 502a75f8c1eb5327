/* Unit tests for src/key_handoff.c: the control thread's bookkeeping of
 * which ticket key generation each worker was queued. A worker whose push
 * failed stays owed through later sets until one is queued to it; a
 * worker already owed is not counted twice; the first generation is what
 * every worker is made with. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "tern/key_handoff.h"

static void test_start(void)
{
	struct tern_key_handoff h;

	CHECK_EQ_INT(tern_key_handoff_init(&h, 0), -EINVAL);
	tern_key_handoff_free(&h); /* a failed init frees as a no-op */
	if (!CHECK_EQ_INT(tern_key_handoff_init(&h, 3), 0))
		return;
	CHECK_EQ_UINT(h.generation, TERN_KEY_GENERATION_FIRST);
	CHECK_EQ_UINT(TERN_KEY_GENERATION_FIRST, 1);
	CHECK_EQ_UINT(tern_key_handoff_num_owed(&h), 0);
	for (unsigned i = 0; i < 3; i++) {
		CHECK(!tern_key_handoff_owed(&h, i));
		CHECK_EQ_UINT(tern_key_handoff_queued_generation(&h, i), 1);
	}
	/* Out of range: never owed, nothing queued. */
	CHECK(!tern_key_handoff_owed(&h, 3));
	CHECK_EQ_UINT(tern_key_handoff_queued_generation(&h, 3), 0);
	tern_key_handoff_queued(&h, 3);
	CHECK_EQ_UINT(tern_key_handoff_num_owed(&h), 0);
	tern_key_handoff_free(&h);
	tern_key_handoff_free(&h); /* twice is fine */
}

static void test_every_push_succeeds(void)
{
	struct tern_key_handoff h;
	if (!CHECK_EQ_INT(tern_key_handoff_init(&h, 2), 0))
		return;
	CHECK_EQ_UINT(tern_key_handoff_begin(&h), 2);
	CHECK_EQ_UINT(tern_key_handoff_num_owed(&h), 2);
	CHECK(tern_key_handoff_owed(&h, 0) && tern_key_handoff_owed(&h, 1));
	tern_key_handoff_queued(&h, 0);
	CHECK_EQ_UINT(tern_key_handoff_num_owed(&h), 1);
	tern_key_handoff_queued(&h, 0); /* not owed any more: no change */
	CHECK_EQ_UINT(tern_key_handoff_num_owed(&h), 1);
	tern_key_handoff_queued(&h, 1);
	CHECK_EQ_UINT(tern_key_handoff_num_owed(&h), 0);
	CHECK_EQ_UINT(tern_key_handoff_queued_generation(&h, 0), 2);
	CHECK_EQ_UINT(tern_key_handoff_queued_generation(&h, 1), 2);
	tern_key_handoff_free(&h);
}

/* Worker 1's queue is full for three sets in a row (a frozen worker):
 * it stays owed, at the generation it last got, and one successful push
 * brings it to the newest; the ones it missed are never queued. */
static void test_a_worker_misses_sets(void)
{
	struct tern_key_handoff h;
	if (!CHECK_EQ_INT(tern_key_handoff_init(&h, 3), 0))
		return;
	for (uint64_t gen = 2; gen <= 4; gen++) {
		CHECK_EQ_UINT(tern_key_handoff_begin(&h), gen);
		tern_key_handoff_queued(&h, 0);
		tern_key_handoff_queued(&h, 2);
		CHECK_EQ_UINT(tern_key_handoff_num_owed(&h), 1);
		CHECK(tern_key_handoff_owed(&h, 1));
		/* What tells "fell behind now" from "was behind already"
		 * (server.c says it once per stall): the generation queued. */
		CHECK_EQ_UINT(tern_key_handoff_queued_generation(&h, 1), 1);
		CHECK_EQ_UINT(tern_key_handoff_queued_generation(&h, 0), gen);
	}
	/* The retry: the newest, whatever was missed. */
	tern_key_handoff_queued(&h, 1);
	CHECK_EQ_UINT(tern_key_handoff_num_owed(&h), 0);
	CHECK_EQ_UINT(tern_key_handoff_queued_generation(&h, 1), 4);
	/* A set made while a retry is still owed: owed the newest, counted
	 * once. */
	CHECK_EQ_UINT(tern_key_handoff_begin(&h), 5);
	tern_key_handoff_queued(&h, 0);
	tern_key_handoff_queued(&h, 1);
	CHECK_EQ_UINT(tern_key_handoff_num_owed(&h), 1);
	CHECK_EQ_UINT(tern_key_handoff_begin(&h), 6);
	CHECK_EQ_UINT(tern_key_handoff_num_owed(&h), 3);
	tern_key_handoff_queued(&h, 0);
	tern_key_handoff_queued(&h, 1);
	tern_key_handoff_queued(&h, 2);
	CHECK_EQ_UINT(tern_key_handoff_num_owed(&h), 0);
	for (unsigned i = 0; i < 3; i++)
		CHECK_EQ_UINT(tern_key_handoff_queued_generation(&h, i), 6);
	tern_key_handoff_free(&h);
}

int main(void)
{
	test_start();
	test_every_push_succeeds();
	test_a_worker_misses_sets();
	return check_summary();
}
