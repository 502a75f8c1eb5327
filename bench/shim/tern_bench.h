/* A C face for Google Benchmark (libbenchmark-dev), so tern's benchmarks
 * are written in C like the rest of tern; tern_bench.cc is the only C++.
 *
 * A benchmark is a C function that runs its timed loop under
 * tern_bench_keep_running:
 *
 *	static void queue_push_pop(struct tern_bench_state *st)
 *	{
 *		setup, untimed;
 *		while (tern_bench_keep_running(st))
 *			the measured work, once per iteration;
 *		tern_bench_set_items_processed(st, tern_bench_iterations(st));
 *	}
 *
 * and main registers it and hands over:
 *
 *	int main(int argc, char **argv)
 *	{
 *		if (tern_bench_register("queue_push_pop", queue_push_pop, 0) < 0)
 *			return 1;
 *		return tern_bench_main(argc, argv);
 *	}
 *
 * Threads: a benchmark registered with threads = n runs its function in n
 * threads at once, each for the same number of iterations. No thread
 * starts its first iteration before every thread has reached its first
 * tern_bench_keep_running, and no thread's last tern_bench_keep_running
 * returns before every thread has finished its iterations: setup that
 * thread 0 does before its loop happens-before every thread's loop, and
 * thread 0's teardown after its loop happens-after every thread's loop.
 * The other threads must leave what thread 0 sets up alone outside their
 * loop. Such benchmarks are timed by wall clock (Google Benchmark's
 * UseRealTime): CPU time summed over threads that wait for each other
 * says nothing about throughput.
 *
 * Errors: no C++ exception ever crosses into C. Functions that can fail
 * return 0 or -errno. The others cannot fail, or turn an allocation
 * failure into "this benchmark is skipped with an error" (reported by
 * Google Benchmark). Every function is noexcept on the C++ side, so what
 * the shim does not catch (a std::system_error from the threads' barrier,
 * say) ends in std::terminate right there instead of unwinding through C
 * frames, which have no unwind tables. */
#ifndef TERN_BENCH_H
#define TERN_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
#define TERN_BENCH_NOEXCEPT noexcept
extern "C" {
#else
#define TERN_BENCH_NOEXCEPT
#endif

/* Google Benchmark's benchmark::State of one thread of one run, opaque. */
struct tern_bench_state;

typedef void tern_bench_fn(struct tern_bench_state *st);

/* Registers fn under `name` (copied), to run in `threads` threads, 0 or 1
 * meaning a single thread. Returns 0, -EINVAL for a negative thread count
 * or a NULL name or fn, or -ENOMEM. Call from main before tern_bench_main,
 * single-threaded. */
__attribute__((warn_unused_result))
int tern_bench_register(const char *name, tern_bench_fn *fn, int threads) TERN_BENCH_NOEXCEPT;

/* As tern_bench_register, single-threaded, with one argument that fn reads
 * with tern_bench_arg(st, 0); the reported name is "name/arg". Register
 * the same name again for another argument. Same returns. */
__attribute__((warn_unused_result))
int tern_bench_register_args(const char *name, tern_bench_fn *fn, int64_t arg) TERN_BENCH_NOEXCEPT;

/* True while another iteration is to be measured; the clock runs from the
 * first call to the one that returns false. Call it until it returns
 * false, and once per iteration. Any benchmark thread, on its own st. */
bool tern_bench_keep_running(struct tern_bench_state *st) TERN_BENCH_NOEXCEPT;

/* Argument i of this run (see tern_bench_register_args); i must be below
 * the number of arguments registered. */
int64_t tern_bench_arg(const struct tern_bench_state *st, int i) TERN_BENCH_NOEXCEPT;

/* This thread's index in [0, tern_bench_threads(st)). */
int tern_bench_thread_index(const struct tern_bench_state *st) TERN_BENCH_NOEXCEPT;

/* How many threads run this benchmark at once. */
int tern_bench_threads(const struct tern_bench_state *st) TERN_BENCH_NOEXCEPT;

/* Iterations this thread has run so far (all of them after the loop). */
int64_t tern_bench_iterations(const struct tern_bench_state *st) TERN_BENCH_NOEXCEPT;

/* After the loop: how many items or bytes this thread processed in total,
 * reported as a rate (items/s, bytes/s). Summed over threads. */
void tern_bench_set_items_processed(struct tern_bench_state *st, int64_t items) TERN_BENCH_NOEXCEPT;
void tern_bench_set_bytes_processed(struct tern_bench_state *st, int64_t bytes) TERN_BENCH_NOEXCEPT;

/* Stop and restart this thread's clock inside the loop, for per-iteration
 * work that must not be measured. Costly (two clock reads each): use for
 * work much longer than that, or not at all. */
void tern_bench_pause_timing(struct tern_bench_state *st) TERN_BENCH_NOEXCEPT;
void tern_bench_resume_timing(struct tern_bench_state *st) TERN_BENCH_NOEXCEPT;

/* After the loop: a user counter `name` (copied) reported as is, summed
 * over threads. */
void tern_bench_counter(struct tern_bench_state *st, const char *name, double value) TERN_BENCH_NOEXCEPT;

/* Ends this thread's run as failed, with `msg` (copied) in the report
 * instead of figures. Before the loop: return, or enter the loop, whose
 * first tern_bench_keep_running returns false. Inside it: go on to the
 * next tern_bench_keep_running, which returns false (do not break out:
 * the library wants its loop ended by that call). */
void tern_bench_skip_with_error(struct tern_bench_state *st, const char *msg) TERN_BENCH_NOEXCEPT;

/* Google Benchmark's main: parses its --benchmark_* flags out of argv,
 * rejects any other argument, runs the registered benchmarks the flags
 * select and prints the report. Returns the process's exit status: 0, or
 * 1 for an unknown argument, an internal error, or a benchmark skipped
 * with an error (tern_bench_skip_with_error, or an allocation failure
 * above), so that a failed self-check fails the run. Call once, from main,
 * after registering. */
int tern_bench_main(int argc, char **argv) TERN_BENCH_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
