/* The request queue under contention: 4 producer threads push millions of
 * values through a 64-slot queue (so it is full much of the time and
 * producers retry on -EBUSY) while the main thread pops. Checks that
 * nothing is lost or duplicated, that each producer's values arrive in its
 * order, and that every value arrives intact. Run under ThreadSanitizer by
 * CI (ctest label tsan), which also checks the memory orders: a missing
 * acquire/release on a slot shows up as a data race on its payload.
 *
 * TERN_STRESS_ITEMS=N sets the values per producer (default 1,000,000;
 * 500,000 under ThreadSanitizer, which is several times slower). The test fails with
 * abort() if it runs longer than 60 s, so a lost value or a livelock ends
 * as a failure with a diagnosis, not a hang. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "tern/queue.h"

#if defined(__SANITIZE_THREAD__)
#define STRESS_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STRESS_UNDER_TSAN 1
#endif
#endif
#ifdef STRESS_UNDER_TSAN
#define STRESS_DEFAULT_ITEMS 500000u
#else
#define STRESS_DEFAULT_ITEMS 1000000u
#endif

#define NUM_PRODUCERS 4
#define QUEUE_CAPACITY 64
#define DEADLINE_NS (60 * 1000000000ll)

struct producer {
	unsigned id;
	uint64_t num_items;
	struct tern_queue *q;
	pthread_barrier_t *start;
	atomic_uint *num_done;
	uint64_t num_busy; /* -EBUSY answers; read after join */
};

/* arg: a function of producer and sequence that differs in every bit
 * position from its neighbours, so a torn or misplaced copy is caught. */
static uint64_t payload_arg(unsigned id, uint64_t seq)
{
	return (seq * 0x9E3779B97F4A7C15u) ^ ((uint64_t)id << 56) ^ 0x5555AAAA5555AAAAu;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void *produce(void *arg)
{
	struct producer *p = arg;

	pthread_barrier_wait(p->start);
	for (uint64_t seq = 0; seq < p->num_items; seq++) {
		struct tern_request r = {
			.kind = TERN_REQ_KIND_TICKET_REFRESH,
			.count = p->id,
			.conn_id = seq,
			.arg = payload_arg(p->id, seq),
			.ptr = p,
		};
		while (tern_queue_push(p->q, &r) == -EBUSY) {
			p->num_busy++;
			sched_yield();
		}
	}
	/* release: every publish of ours happens-before the consumer's
	 * acquire load that sees us counted, so its final drain finds all. */
	atomic_fetch_add_explicit(p->num_done, 1, memory_order_release);
	return NULL;
}

struct tally {
	uint64_t next_seq[NUM_PRODUCERS]; /* per producer: the seq expected next */
	uint64_t num_received;
	uint64_t num_bad_producer, num_bad_order, num_bad_payload;
};

static void tally_one(struct tally *t, const struct tern_request *r, struct producer *producers)
{
	t->num_received++;
	if (r->count >= NUM_PRODUCERS) {
		t->num_bad_producer++;
		return;
	}
	unsigned id = r->count;
	/* a loss skips ahead, a duplicate or reordering goes back */
	if (r->conn_id != t->next_seq[id])
		t->num_bad_order++;
	t->next_seq[id] = r->conn_id + 1;
	if (r->kind != TERN_REQ_KIND_TICKET_REFRESH || r->arg != payload_arg(id, r->conn_id) ||
	    r->ptr != &producers[id])
		t->num_bad_payload++;
}

static void fail_deadline(const struct tally *t, const struct tern_queue *q, uint64_t expected)
{
	fprintf(stderr, "queue_stress_test: FAILED: still running after 60 s: received %" PRIu64
			" of %" PRIu64 "; head %" PRIu64 ", tail %" PRIu64 "\n",
		t->num_received, expected, q->head, atomic_load_explicit(&q->tail, memory_order_relaxed));
	for (unsigned i = 0; i < NUM_PRODUCERS; i++)
		fprintf(stderr, "    producer %u: next expected seq %" PRIu64 "\n", i, t->next_seq[i]);
	abort();
}

static uint64_t items_per_producer(void)
{
	const char *env = getenv("TERN_STRESS_ITEMS");
	if (!env || !*env)
		return STRESS_DEFAULT_ITEMS;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(env, &end, 10);
	if (errno || *end || n == 0 || n > UINT32_MAX) {
		fprintf(stderr, "queue_stress_test: TERN_STRESS_ITEMS=%s: expected 1..%u values per producer\n",
			env, UINT32_MAX);
		exit(1);
	}
	return n;
}

int main(void)
{
	const uint64_t num_items = items_per_producer();
	const uint64_t expected = num_items * NUM_PRODUCERS;
	struct tern_queue q;
	struct producer producers[NUM_PRODUCERS];
	pthread_t threads[NUM_PRODUCERS];
	pthread_barrier_t start;
	atomic_uint num_done = 0;
	struct tally t = {0};
	uint64_t num_empty = 0, num_behind_claim = 0;

	if (!CHECK_EQ_INT(tern_queue_init(&q, QUEUE_CAPACITY), 0))
		return check_summary();
	CHECK_EQ_INT(pthread_barrier_init(&start, NULL, NUM_PRODUCERS + 1), 0);
	for (unsigned i = 0; i < NUM_PRODUCERS; i++) {
		producers[i] = (struct producer){
			.id = i, .num_items = num_items, .q = &q, .start = &start, .num_done = &num_done,
		};
		if (!CHECK_EQ_INT(pthread_create(&threads[i], NULL, produce, &producers[i]), 0))
			abort(); /* the others would wait at the barrier forever */
	}

	pthread_barrier_wait(&start);
	const int64_t started = now_ns();
	for (uint64_t iter = 1;; iter++) {
		if ((iter & 4095) == 0 && now_ns() - started > DEADLINE_NS)
			fail_deadline(&t, &q, expected);
		struct tern_request r;
		if (tern_queue_pop(&q, &r)) {
			tally_one(&t, &r, producers);
			continue;
		}
		/* acquire: pairs with each producer's release increment, so once
		 * all are counted, all their values are published. */
		if (atomic_load_explicit(&num_done, memory_order_acquire) == NUM_PRODUCERS) {
			while (tern_queue_pop(&q, &r))
				tally_one(&t, &r, producers);
			break;
		}
		num_empty++;
		/* A claim outstanding at our head: the transient state of
		 * queue.h (or a push that claimed just after our load). */
		if (atomic_load_explicit(&q.tail, memory_order_relaxed) != q.head)
			num_behind_claim++;
		sched_yield(); /* 2 cores, 5 threads: let a producer run */
	}
	const int64_t elapsed = now_ns() - started;

	uint64_t num_busy = 0;
	for (unsigned i = 0; i < NUM_PRODUCERS; i++) {
		CHECK_EQ_INT(pthread_join(threads[i], NULL), 0);
		num_busy += producers[i].num_busy;
	}
	pthread_barrier_destroy(&start);

	CHECK_EQ_UINT(t.num_received, expected);
	for (unsigned i = 0; i < NUM_PRODUCERS; i++)
		CHECK_EQ_UINT(t.next_seq[i], num_items);
	CHECK_EQ_UINT(t.num_bad_producer, 0);
	CHECK_EQ_UINT(t.num_bad_order, 0);
	CHECK_EQ_UINT(t.num_bad_payload, 0);
	struct tern_request r;
	CHECK(!tern_queue_pop(&q, &r));
	tern_queue_destroy(&q);

	printf("%d producers x %" PRIu64 " values through %d slots in %.2f s: %" PRIu64
	       " full (-EBUSY) retries, %" PRIu64 " empty pops, %" PRIu64 " of them behind a claim\n",
	       NUM_PRODUCERS, num_items, QUEUE_CAPACITY, (double)elapsed / 1e9, num_busy, num_empty,
	       num_behind_claim);
	return check_summary();
}
