/* Unit tests for src/histogram.c: bucket boundaries (le is inclusive),
 * summing workers into cumulative buckets, the layout beside the counters,
 * and seconds written exactly from microseconds. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "tern/histogram.h"

static void test_histogram_buckets(void)
{
	CHECK_EQ_UINT(tern_histogram_bucket(0), 0);
	CHECK_EQ_UINT(tern_histogram_bucket(500), 0); /* le is inclusive */
	CHECK_EQ_UINT(tern_histogram_bucket(501), 1);
	CHECK_EQ_UINT(tern_histogram_bucket(1000), 1);
	CHECK_EQ_UINT(tern_histogram_bucket(1001), 2);
	CHECK_EQ_UINT(tern_histogram_bucket(2500000), 11);
	CHECK_EQ_UINT(tern_histogram_bucket(10000000), 13);
	CHECK_EQ_UINT(tern_histogram_bucket(10000001), TERN_HISTOGRAM_NUM_BOUNDS);
	CHECK_EQ_UINT(tern_histogram_bucket(UINT64_MAX), TERN_HISTOGRAM_NUM_BOUNDS);
	for (unsigned i = 1; i < TERN_HISTOGRAM_NUM_BOUNDS; i++)
		CHECK(tern_histogram_bounds_us[i - 1] < tern_histogram_bounds_us[i]);

	struct tern_histogram h;
	struct tern_histogram_totals t;
	memset(&h, 0, sizeof(h));
	memset(&t, 0, sizeof(t));
	tern_histogram_observe(&h, 100);
	tern_histogram_observe(&h, 700);
	tern_histogram_observe(&h, 20000000);
	tern_histogram_add_to(&h, &t);
	tern_histogram_add_to(&h, &t); /* a second worker alike */
	CHECK_EQ_UINT(t.cumulative[0], 2);
	CHECK_EQ_UINT(t.cumulative[1], 4);
	CHECK_EQ_UINT(t.cumulative[TERN_HISTOGRAM_NUM_BOUNDS - 1], 4);
	CHECK_EQ_UINT(t.cumulative[TERN_HISTOGRAM_NUM_BOUNDS], 6);
	CHECK_EQ_UINT(t.count, 6);
	CHECK_EQ_UINT(t.sum_us, 2 * 20000800);
	/* Its own cache lines, beside the counters (worker.c asserts where
	 * the worker keeps it; metrics_test checks a real worker's). */
	CHECK_EQ_UINT(_Alignof(struct tern_histogram), 64);
}

static void test_format_seconds(void)
{
	static const struct {
		uint64_t us;
		const char *text;
	} cases[] = {
		{0, "0"},           {1, "0.000001"},      {10, "0.00001"},         {500, "0.0005"},
		{1000, "0.001"},    {25000, "0.025"},     {100000, "0.1"},         {1000000, "1"},
		{2500000, "2.5"},   {10000000, "10"},     {123456789, "123.456789"}, {1000001, "1.000001"},
		{UINT64_MAX, "18446744073709.551615"},
	};
	char buf[32];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = tern_histogram_format_seconds(cases[i].us, buf, sizeof(buf));
		CHECK_EQ_STR(buf, cases[i].text);
		CHECK_EQ_INT(n, (int)strlen(cases[i].text));
	}
	/* Too small: cut like snprintf, the needed length returned. */
	CHECK_EQ_INT(tern_histogram_format_seconds(2500000, buf, 3), 3);
	CHECK_EQ_STR(buf, "2.");
}

int main(void)
{
	test_histogram_buckets();
	test_format_seconds();
	return check_summary();
}
