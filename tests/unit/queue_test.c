/* The request queue on one thread: empty, FIFO, full at exactly capacity,
 * wrap-around, capacity rounding, init errors, and the transient state of a
 * producer stalled between claim and publish. The threaded behaviour is in
 * queue_stress_test.c. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "tern/queue.h"

/* A request whose every field derives from n, so a wrong, torn or stale
 * copy cannot pass for the right one. */
static struct tern_request req_of(uint64_t n)
{
	struct tern_request r = {
		.kind = TERN_REQ_KIND_TICKETS,
		.count = (uint32_t)(n * 7 + 1),
		.conn_id = n,
		.arg = n * 0x9E3779B97F4A7C15u,
		.ptr = (void *)(uintptr_t)(0x1000 + n * 16),
	};
	return r;
}

static bool req_is(const struct tern_request *r, uint64_t n)
{
	struct tern_request want = req_of(n);
	return r->kind == want.kind && r->count == want.count && r->conn_id == want.conn_id &&
	       r->arg == want.arg && r->ptr == want.ptr;
}

static void test_empty_pop(void)
{
	struct tern_queue q;
	struct tern_request out = req_of(99);

	CHECK_EQ_INT(tern_queue_init(&q, 8), 0);
	CHECK(!tern_queue_pop(&q, &out));
	CHECK(req_is(&out, 99)); /* untouched */
	CHECK(!tern_queue_pop(&q, &out)); /* and stays empty */
	tern_queue_destroy(&q);
}

static void test_fifo(void)
{
	struct tern_queue q;
	struct tern_request r, out;

	CHECK_EQ_INT(tern_queue_init(&q, 16), 0);
	for (uint64_t n = 0; n < 10; n++) {
		r = req_of(n);
		CHECK_EQ_INT(tern_queue_push(&q, &r), 0);
	}
	r = req_of(12345); /* push copied: changing the source changes nothing */
	for (uint64_t n = 0; n < 10; n++) {
		memset(&out, 0, sizeof(out));
		CHECK(tern_queue_pop(&q, &out));
		CHECK_EQ_UINT(out.conn_id, n);
		CHECK(req_is(&out, n));
	}
	CHECK(!tern_queue_pop(&q, &out));
	tern_queue_destroy(&q);
}

/* Full at exactly capacity: capacity pushes succeed, the next is -EBUSY
 * and changes nothing; one pop makes room for exactly one. */
static void check_full_at(uint32_t requested, uint32_t capacity)
{
	struct tern_queue q;
	struct tern_request r, out;

	CHECK_EQ_INT(tern_queue_init(&q, requested), 0);
	CHECK_EQ_UINT(tern_queue_capacity(&q), capacity);
	for (uint64_t n = 0; n < capacity; n++) {
		r = req_of(n);
		CHECK_EQ_INT(tern_queue_push(&q, &r), 0);
	}
	r = req_of(capacity);
	CHECK_EQ_INT(tern_queue_push(&q, &r), -EBUSY);
	CHECK_EQ_INT(tern_queue_push(&q, &r), -EBUSY); /* still, not dropped */

	CHECK(tern_queue_pop(&q, &out));
	CHECK(req_is(&out, 0));
	CHECK_EQ_INT(tern_queue_push(&q, &r), 0); /* n = capacity */
	r = req_of(capacity + 1);
	CHECK_EQ_INT(tern_queue_push(&q, &r), -EBUSY);

	for (uint64_t n = 1; n <= capacity; n++) {
		CHECK(tern_queue_pop(&q, &out));
		CHECK(req_is(&out, n));
	}
	CHECK(!tern_queue_pop(&q, &out));
	tern_queue_destroy(&q);
}

static void test_full(void)
{
	check_full_at(2, 2);
	check_full_at(8, 8);
	check_full_at(5, 8); /* rounded up: full at 8, not 5 */
	check_full_at(1, 2);
}

/* Many laps around a small ring with varying batch sizes, so head and tail
 * cross the slot array's end at every offset. */
static void test_wrap_around(void)
{
	struct tern_queue q;
	struct tern_request r, out;
	uint64_t pushed = 0, popped = 0;
	unsigned num_bad = 0;

	CHECK_EQ_INT(tern_queue_init(&q, 4), 0);
	for (unsigned round = 0; round < 20000; round++) {
		/* 0 or 1 left from the last round, then up to exactly full */
		unsigned level = (unsigned)(pushed - popped);
		unsigned batch = 1 + round % (4 - level);
		for (unsigned i = 0; i < batch; i++) {
			r = req_of(pushed);
			if (tern_queue_push(&q, &r) != 0)
				num_bad++;
			pushed++;
		}
		while (pushed - popped > round % 2) {
			if (!tern_queue_pop(&q, &out) || !req_is(&out, popped))
				num_bad++;
			popped++;
		}
	}
	while (tern_queue_pop(&q, &out)) {
		if (!req_is(&out, popped))
			num_bad++;
		popped++;
	}
	CHECK_EQ_UINT(num_bad, 0);
	CHECK_EQ_UINT(popped, pushed);
	CHECK(pushed / 4 > 10000); /* thousands of laps */
	tern_queue_destroy(&q);
}

static void test_capacity_rounding(void)
{
	static const struct {
		uint32_t requested, capacity;
	} cases[] = {
		{1, 2}, {2, 2}, {3, 4}, {4, 4}, {5, 8}, {64, 64}, {65, 128},
		{1000, 1024}, {(1u << 19) + 1, 1u << 20}, {1u << 20, 1u << 20},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tern_queue q;
		CHECK_EQ_INT(tern_queue_init(&q, cases[i].requested), 0);
		CHECK_EQ_UINT(tern_queue_capacity(&q), cases[i].capacity);
		tern_queue_destroy(&q);
	}
}

static void test_init_errors(void)
{
	static const uint32_t bad[] = {0, (1u << 20) + 1, 1u << 21, UINT32_MAX};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tern_queue q;
		CHECK_EQ_INT(tern_queue_init(&q, bad[i]), -EINVAL);
		CHECK(q.slots == NULL);
		CHECK_EQ_UINT(tern_queue_capacity(&q), 0);
		tern_queue_destroy(&q); /* a no-op after a failed init */
	}
	struct tern_queue zeroed = {0};
	tern_queue_destroy(&zeroed);
	CHECK(zeroed.slots == NULL);
}

/* A producer preempted between its CAS and its publish, emulated by doing
 * push's two halves by hand (white-box: these lines mirror queue.c). The
 * consumer must not pass the claimed slot, other producers must not be
 * blocked by it, and the claimed slot counts towards "full". */
static void test_claimed_not_published(void)
{
	struct tern_queue q;
	struct tern_request r, out;

	CHECK_EQ_INT(tern_queue_init(&q, 4), 0);
	/* the stalled producer: claims position 0 ... */
	uint64_t pos = atomic_fetch_add_explicit(&q.tail, 1, memory_order_relaxed);
	CHECK_EQ_UINT(pos, 0);
	CHECK(!tern_queue_pop(&q, &out)); /* claimed: looks empty */

	/* ... other producers carry on behind it ... */
	for (uint64_t n = 1; n <= 3; n++) {
		r = req_of(n);
		CHECK_EQ_INT(tern_queue_push(&q, &r), 0);
	}
	r = req_of(4);
	CHECK_EQ_INT(tern_queue_push(&q, &r), -EBUSY); /* 4 claimed: full */
	CHECK(!tern_queue_pop(&q, &out)); /* 1..3 wait behind position 0 */

	/* ... until it publishes. */
	q.slots[pos & q.mask].req = req_of(0);
	atomic_store_explicit(&q.slots[pos & q.mask].seq, pos + 1, memory_order_release);
	for (uint64_t n = 0; n <= 3; n++) {
		CHECK(tern_queue_pop(&q, &out));
		CHECK(req_is(&out, n));
	}
	CHECK(!tern_queue_pop(&q, &out));
	CHECK_EQ_INT(tern_queue_push(&q, &r), 0); /* room again */
	CHECK(tern_queue_pop(&q, &out));
	CHECK(req_is(&out, 4));
	tern_queue_destroy(&q);
}

int main(void)
{
	test_empty_pop();
	test_fifo();
	test_full();
	test_wrap_around();
	test_capacity_rounding();
	test_init_errors();
	test_claimed_not_published();
	return check_summary();
}
