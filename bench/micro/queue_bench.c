/* What a request costs on its way through a worker's request queue
 * (include/tern/queue.h): tern_queue_push plus tern_queue_pop, on a queue
 * of the workers' own capacity (TERN_WORKER_QUEUE_CAPACITY). The wake-up
 * through the ring that follows a real push is not part of it.
 *
 * queue_push_pop/N
 *	One thread pushes N values, then pops them, per iteration: no other
 *	thread touches the queue, so this is the bare cost of the two calls
 *	with their cache lines already in this core's cache. N = 1 is one
 *	push then one pop (the value is popped right after it was written);
 *	N = capacity fills the whole queue, then drains it, so the consumer
 *	reads slots that the producer wrote a lap earlier. Items = values.
 *
 * queue_mpsc/real_time/threads:3
 *	Two producers and one consumer at once, as control threads feeding a
 *	worker: thread 0 consumes, threads 1 and 2 produce. Per iteration a
 *	producer pushes MPSC_BATCH values, calling sched_yield() and retrying
 *	while the queue is full (-EBUSY), and the consumer pops
 *	(threads - 1) * MPSC_BATCH values, calling sched_yield() while the
 *	queue looks empty. Every thread runs the same number of iterations
 *	(Google Benchmark gives each thread the same count), so the consumer
 *	pops exactly what the producers pushed: nobody waits for a value that
 *	never comes, and none is left behind. Waiting is bounded because the
 *	other side always has work left while one side waits, and yielding
 *	hands the core over (three threads share two cores here, or one under
 *	taskset -c 0). Items = values popped, over wall-clock time; the
 *	counters full_retries and empty_polls (per value) tell how much of that
 *	time went to waiting for the other side. The consumer also checks
 *	that each producer's values arrive complete and in its order, and
 *	fails the run if not.
 *
 * Run: build/bench/queue_bench (see README.md here for the figures). */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tern/queue.h"
#include "tern/request.h"
#include "tern/worker.h"
#include "tern_bench.h"

/* Values each producer pushes per iteration: enough that the benchmark
 * loop's own per-iteration cost is small beside them. */
#define MPSC_BATCH 16
#define MPSC_THREADS 3
#define MPSC_PRODUCERS (MPSC_THREADS - 1)

/* The value pushed: a request like the control thread's, numbered. */
static struct tern_request bench_request(uint64_t producer, uint64_t seq)
{
	return (struct tern_request){
		.kind = TERN_REQ_KIND_TICKET_REFRESH,
		.conn_id = producer,
		.arg = seq,
	};
}

static void queue_push_pop(struct tern_bench_state *st)
{
	int64_t n = tern_bench_arg(st, 0);
	struct tern_queue q;
	if (tern_queue_init(&q, TERN_WORKER_QUEUE_CAPACITY) < 0) {
		tern_bench_skip_with_error(st, "tern_queue_init failed");
		return;
	}
	if (n < 1 || n > (int64_t)tern_queue_capacity(&q)) {
		tern_bench_skip_with_error(st, "argument outside [1, capacity]");
		goto out;
	}

	const struct tern_request req = bench_request(0, 0);
	struct tern_request out;
	while (tern_bench_keep_running(st)) {
		bool ok = true;
		for (int64_t i = 0; i < n; i++)
			ok &= tern_queue_push(&q, &req) == 0;
		for (int64_t i = 0; i < n; i++)
			ok &= tern_queue_pop(&q, &out);
		/* On an error, keep_running returns false next: the library
		 * wants its loop ended by keep_running, not by a break. */
		if (!ok)
			tern_bench_skip_with_error(st, "push or pop failed on a queue with room");
	}
	tern_bench_set_items_processed(st, tern_bench_iterations(st) * n);
out:
	tern_queue_destroy(&q);
}

/* Shared by the threads of one queue_mpsc run. Thread 0 sets it up before
 * its first keep_running and tears it down after its last: the library's
 * start and stop barriers order that before and after every thread's
 * loop (tern_bench.h, "Threads"). Runs follow one another, never overlap. */
static struct tern_queue mpsc_queue;
static bool mpsc_ready;

static void mpsc_consume(struct tern_bench_state *st)
{
	const int64_t per_iteration = (int64_t)MPSC_PRODUCERS * MPSC_BATCH;
	uint64_t next_seq[MPSC_PRODUCERS] = { 0 };
	int64_t num_popped = 0;
	int64_t num_empty = 0;
	bool in_order = true;
	struct tern_request out;

	while (tern_bench_keep_running(st)) {
		for (int64_t i = 0; i < per_iteration;) {
			if (!tern_queue_pop(&mpsc_queue, &out)) {
				num_empty++;
				sched_yield();
				continue;
			}
			/* conn_id < MPSC_PRODUCERS by construction; a torn value
			 * would fail this before it indexes next_seq. */
			if (out.conn_id >= MPSC_PRODUCERS || out.arg != next_seq[out.conn_id])
				in_order = false;
			else
				next_seq[out.conn_id]++;
			i++;
		}
		num_popped += per_iteration;
	}

	/* Every producer has finished (stop barrier): the queue must be empty
	 * and each producer's values all here, in order. */
	int64_t per_producer = tern_bench_iterations(st) * MPSC_BATCH;
	for (int p = 0; p < MPSC_PRODUCERS; p++)
		in_order &= next_seq[p] == (uint64_t)per_producer;
	if (tern_queue_pop(&mpsc_queue, &out))
		in_order = false;
	if (!in_order)
		tern_bench_skip_with_error(st, "values lost, duplicated or out of order");
	tern_bench_set_items_processed(st, num_popped);
	if (num_popped > 0)
		tern_bench_counter(st, "empty_polls", (double)num_empty / (double)num_popped);
}

static void mpsc_produce(struct tern_bench_state *st, uint64_t producer)
{
	uint64_t seq = 0;
	int64_t num_full = 0;

	while (tern_bench_keep_running(st)) {
		if (!mpsc_ready) {
			/* Thread 0's init failed and it has stopped: push
			 * nothing, and the next keep_running returns false. */
			tern_bench_skip_with_error(st, "no queue");
			continue;
		}
		for (int i = 0; i < MPSC_BATCH;) {
			struct tern_request req = bench_request(producer, seq);
			if (tern_queue_push(&mpsc_queue, &req) < 0) {
				/* -EBUSY, the only error: full until the consumer
				 * runs. */
				num_full++;
				sched_yield();
				continue;
			}
			seq++;
			i++;
		}
	}

	/* Divided by every producer's values, so that the counters, summed
	 * over the threads, give retries per value. */
	int64_t num_values = tern_bench_iterations(st) * MPSC_BATCH * MPSC_PRODUCERS;
	if (num_values > 0)
		tern_bench_counter(st, "full_retries", (double)num_full / (double)num_values);
}

static void queue_mpsc(struct tern_bench_state *st)
{
	int index = tern_bench_thread_index(st);

	if (tern_bench_threads(st) != MPSC_THREADS) {
		/* Every thread of the run sees the same count: all skip. */
		tern_bench_skip_with_error(st, "queue_mpsc needs exactly 3 threads");
		return;
	}
	if (index == 0) {
		mpsc_ready = tern_queue_init(&mpsc_queue, TERN_WORKER_QUEUE_CAPACITY) == 0;
		if (!mpsc_ready)
			tern_bench_skip_with_error(st, "tern_queue_init failed");
	}
	/* The first keep_running waits at the start barrier, so inside the
	 * loop every thread sees mpsc_ready as thread 0 left it. After a failed
	 * init the consumer's keep_running returns false at once and the
	 * producers stop before their first push (mpsc_produce). */
	if (index == 0)
		mpsc_consume(st);
	else
		mpsc_produce(st, (uint64_t)(index - 1));

	if (index == 0) {
		tern_queue_destroy(&mpsc_queue);
		mpsc_ready = false;
	}
}

int main(int argc, char **argv)
{
	if (tern_bench_register_args("queue_push_pop", queue_push_pop, 1) < 0 ||
	    tern_bench_register_args("queue_push_pop", queue_push_pop, TERN_WORKER_QUEUE_CAPACITY) < 0 ||
	    tern_bench_register("queue_mpsc", queue_mpsc, MPSC_THREADS) < 0) {
		fprintf(stderr, "queue_bench: cannot register the benchmarks\n");
		return 1;
	}
	return tern_bench_main(argc, argv);
}
