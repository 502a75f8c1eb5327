// The C shim over Google Benchmark: tern_bench.h says what each function
// does. The only C++ in tern. Every entry point is noexcept (the header
// declares it so) and catches what it can turn into an error, which is
// std::bad_alloc from the library's strings, maps and vectors; anything
// else, or a failure while reporting that error, ends in std::terminate
// at the boundary rather than unwinding through C frames.
#include "tern_bench.h"

#include <benchmark/benchmark.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <string>

namespace {

benchmark::State &state_of(struct tern_bench_state *st) noexcept
{
	return *reinterpret_cast<benchmark::State *>(st);
}

const benchmark::State &state_of(const struct tern_bench_state *st) noexcept
{
	return *reinterpret_cast<const benchmark::State *>(st);
}

// The function Google Benchmark calls for every run of every thread. The
// C function pointer is captured by value; the C code it calls cannot
// throw, and nothing it calls back into (above) throws either.
benchmark::internal::Benchmark *register_c(const char *name, tern_bench_fn *fn)
{
	return benchmark::RegisterBenchmark(name, [fn](benchmark::State &state) {
		fn(reinterpret_cast<struct tern_bench_state *>(&state));
	});
}

// Set by any thread's skip, read by tern_bench_main after every run: the
// library reports the error but still exits 0, and a benchmark's failed
// self-check must fail the process (CI runs each benchmark once).
std::atomic<bool> any_skipped{false};

// Can throw: the library copies msg into a std::string.
void skip(benchmark::State &state, const char *msg)
{
	// relaxed: the threads are joined before tern_bench_main reads it.
	any_skipped.store(true, std::memory_order_relaxed);
	// SkipWithError may be called once per thread.
	if (!state.error_occurred())
		state.SkipWithError(msg);
}

} // namespace

extern "C" int tern_bench_register(const char *name, tern_bench_fn *fn, int threads) noexcept
{
	if (!name || !fn || threads < 0)
		return -EINVAL;
	try {
		benchmark::internal::Benchmark *b = register_c(name, fn);
		if (threads > 1)
			b->Threads(threads)->UseRealTime();
		return 0;
	} catch (...) {
		// Registration allocates, and allocation is all that throws.
		return -ENOMEM;
	}
}

extern "C" int tern_bench_register_args(const char *name, tern_bench_fn *fn, int64_t arg) noexcept
{
	if (!name || !fn)
		return -EINVAL;
	try {
		register_c(name, fn)->Arg(arg);
		return 0;
	} catch (...) {
		return -ENOMEM;
	}
}

extern "C" bool tern_bench_keep_running(struct tern_bench_state *st) noexcept
{
	// KeepRunning() counts down, and at the start and the end waits at
	// the threads' barrier (a mutex and a condvar): nothing to catch.
	return state_of(st).KeepRunning();
}

extern "C" int64_t tern_bench_arg(const struct tern_bench_state *st, int i) noexcept
{
	return state_of(st).range(static_cast<std::size_t>(i));
}

extern "C" int tern_bench_thread_index(const struct tern_bench_state *st) noexcept
{
	return state_of(st).thread_index();
}

extern "C" int tern_bench_threads(const struct tern_bench_state *st) noexcept
{
	return state_of(st).threads();
}

extern "C" int64_t tern_bench_iterations(const struct tern_bench_state *st) noexcept
{
	return static_cast<int64_t>(state_of(st).iterations());
}

extern "C" void tern_bench_set_items_processed(struct tern_bench_state *st, int64_t items) noexcept
{
	benchmark::State &state = state_of(st);
	try {
		state.SetItemsProcessed(items);
	} catch (...) {
		skip(state, "tern_bench_set_items_processed: out of memory");
	}
}

extern "C" void tern_bench_set_bytes_processed(struct tern_bench_state *st, int64_t bytes) noexcept
{
	benchmark::State &state = state_of(st);
	try {
		state.SetBytesProcessed(bytes);
	} catch (...) {
		skip(state, "tern_bench_set_bytes_processed: out of memory");
	}
}

extern "C" void tern_bench_pause_timing(struct tern_bench_state *st) noexcept
{
	state_of(st).PauseTiming();
}

extern "C" void tern_bench_resume_timing(struct tern_bench_state *st) noexcept
{
	state_of(st).ResumeTiming();
}

extern "C" void tern_bench_counter(struct tern_bench_state *st, const char *name, double value) noexcept
{
	benchmark::State &state = state_of(st);
	try {
		state.counters[name] = value;
	} catch (...) {
		skip(state, "tern_bench_counter: out of memory");
	}
}

extern "C" void tern_bench_skip_with_error(struct tern_bench_state *st, const char *msg) noexcept
{
	skip(state_of(st), msg);
}

extern "C" int tern_bench_main(int argc, char **argv) noexcept
{
	try {
		benchmark::Initialize(&argc, argv);
		if (benchmark::ReportUnrecognizedArguments(argc, argv))
			return 1;
		benchmark::RunSpecifiedBenchmarks();
		benchmark::Shutdown();
		if (any_skipped.load(std::memory_order_relaxed)) {
			std::fprintf(stderr, "%s: a benchmark failed (ERROR OCCURRED above)\n", argv[0]);
			return 1;
		}
		return 0;
	} catch (const std::exception &e) {
		std::fprintf(stderr, "tern_bench_main: %s\n", e.what());
		return 1;
	} catch (...) {
		std::fprintf(stderr, "tern_bench_main: unknown exception\n");
		return 1;
	}
}
