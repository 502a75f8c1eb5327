/* A fixed-bucket latency histogram, per worker.
 *
 * Like counters.h: each worker writes only its own histogram, with relaxed
 * atomic loads and stores (plain moves on x86: no locked instructions on
 * the hot path); readers on other threads add every worker's buckets with
 * relaxed loads, for monitoring only.
 *
 * Buckets are kept per bucket, not cumulative: one observation is one
 * bucket store and one sum store. The count is not stored separately but
 * is the sum of the buckets, so a reader's +Inf bucket and its count are
 * always the same number, however the reads interleave with the writer
 * (Prometheus requires _bucket{le="+Inf"} == _count). Only the sum may be
 * one observation ahead of or behind the buckets in a racing read. */
#ifndef TERN_HISTOGRAM_H
#define TERN_HISTOGRAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/counters.h"

/* Upper bounds (inclusive, "le") in microseconds; one more bucket, +Inf,
 * follows the last. In seconds: 0.0005 0.001 0.002 0.005 0.01 0.025 0.05
 * 0.1 0.25 0.5 1 2.5 5 10. */
#define TERN_HISTOGRAM_NUM_BOUNDS 14
#define TERN_HISTOGRAM_NUM_BUCKETS (TERN_HISTOGRAM_NUM_BOUNDS + 1)
extern const uint64_t tern_histogram_bounds_us[TERN_HISTOGRAM_NUM_BOUNDS];

struct tern_histogram {
	_Atomic uint64_t buckets[TERN_HISTOGRAM_NUM_BUCKETS]; /* not cumulative */
	_Atomic uint64_t sum_us;
} __attribute__((aligned(64)));

/* What a reader adds up: cumulative buckets, as Prometheus shows them. */
struct tern_histogram_totals {
	uint64_t cumulative[TERN_HISTOGRAM_NUM_BUCKETS]; /* [NUM_BOUNDS] is +Inf */
	uint64_t sum_us;
	uint64_t count; /* == cumulative[TERN_HISTOGRAM_NUM_BOUNDS] */
};

/* The bucket a value in microseconds falls in: the first bound >= us. */
static inline unsigned tern_histogram_bucket(uint64_t us)
{
	unsigned i = 0;
	while (i < TERN_HISTOGRAM_NUM_BOUNDS && us > tern_histogram_bounds_us[i])
		i++;
	return i;
}

/* Single writer: the owning worker. */
static inline void tern_histogram_observe(struct tern_histogram *h, uint64_t us)
{
	tern_counter_add(&h->buckets[tern_histogram_bucket(us)], 1);
	tern_counter_add(&h->sum_us, us);
}

/* Any thread: adds h into *out (zero *out first, then call once per
 * worker); cumulative and count are recomputed from the buckets seen. */
void tern_histogram_add_to(const struct tern_histogram *h, struct tern_histogram_totals *out);

/* Writes microseconds as decimal seconds with no trailing zeros and no
 * rounding ("0.0005", "2.5", "10", "0"): the text Prometheus reads for le
 * and _sum. Returns the length written (excluding the NUL), or the length
 * it would have needed when out_len is too small, as snprintf. */
int tern_histogram_format_seconds(uint64_t us, char *out, size_t out_len);

#endif
