/* The handshake-duration histogram: bucket bounds, reading, formatting. */
#include <stdio.h>

#include "tern/histogram.h"

/* Prometheus' default buckets (0.005 .. 10 s) with 0.5, 1 and 2 ms added
 * in front: a resumed handshake on a LAN takes well under a millisecond,
 * and a full one a few, so the defaults would put nearly everything in
 * their first bucket. */
const uint64_t tern_histogram_bounds_us[TERN_HISTOGRAM_NUM_BOUNDS] = {
	500, 1000, 2000, 5000, 10000, 25000, 50000,
	100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

void tern_histogram_add_to(const struct tern_histogram *h, struct tern_histogram_totals *out)
{
	uint64_t running = 0;
	/* Cumulative over this worker's buckets, then added to the totals:
	 * a sum of cumulative series is the cumulative series of the sum. */
	for (unsigned i = 0; i < TERN_HISTOGRAM_NUM_BUCKETS; i++) {
		running += tern_counter_get(&h->buckets[i]);
		out->cumulative[i] += running;
	}
	out->count += running;
	out->sum_us += tern_counter_get(&h->sum_us);
}

int tern_histogram_format_seconds(uint64_t us, char *out, size_t out_len)
{
	uint64_t whole = us / 1000000u;
	unsigned frac = (unsigned)(us % 1000000u);
	unsigned digits = 6;

	if (frac == 0)
		return snprintf(out, out_len, "%llu", (unsigned long long)whole);
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	return snprintf(out, out_len, "%llu.%0*u", (unsigned long long)whole, (int)digits, frac);
}
