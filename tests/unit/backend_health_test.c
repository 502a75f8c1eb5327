/* Unit tests for src/backend_health.c: the state machine of one backend
 * address at fixed times. A failed connect skips it for --backend-retry
 * and then it is usable again; a success ends a skip; an active check
 * that fails keeps it out until one connects (or a connection does);
 * each change is reported exactly once, as a worker and the monitor log
 * it; --backend-retry 0 never skips. */
#include "check.h"
#include "tern/backend_health.h"

static void test_passive(void)
{
	struct tern_backend_health h = {0};

	CHECK(tern_backend_health_usable(&h, 1000));
	/* Refused at t=1000 with --backend-retry 10s: out until 11000. */
	CHECK(tern_backend_health_connect_failed(&h, 1000, 10000));
	CHECK(!tern_backend_health_usable(&h, 1000));
	CHECK(!tern_backend_health_usable(&h, 10999));
	CHECK(tern_backend_health_usable(&h, 11000));
	CHECK_EQ_UINT(atomic_load(&h.failed_ms), 1000);
	/* A second failure while out (another worker's connect that was in
	 * flight) moves the end but reports no new change. */
	CHECK(!tern_backend_health_connect_failed(&h, 2000, 10000));
	CHECK(!tern_backend_health_usable(&h, 11000));
	CHECK(tern_backend_health_usable(&h, 12000));
	CHECK_EQ_UINT(atomic_load(&h.failed_ms), 2000);
	/* Retried after the interval, it fails again: a change, reported. */
	CHECK(tern_backend_health_connect_failed(&h, 12000, 10000));
	CHECK(!tern_backend_health_usable(&h, 12001));
	/* A connect that succeeds (sent when every address was down) brings
	 * it back at once, reported once. */
	CHECK(tern_backend_health_connect_ok(&h, 13000));
	CHECK(tern_backend_health_usable(&h, 13000));
	CHECK(!tern_backend_health_connect_ok(&h, 13001));
	CHECK_EQ_UINT(atomic_load(&h.down_until_ms), 0);
	/* After the skip ran out, a success is no change: it was usable. */
	CHECK(tern_backend_health_connect_failed(&h, 20000, 10000));
	CHECK(!tern_backend_health_connect_ok(&h, 30000));
	CHECK(tern_backend_health_usable(&h, 30000));
}

static void test_retry_zero(void)
{
	struct tern_backend_health h = {0};

	/* Remembered as failed (for "least recently failed"), never skipped. */
	CHECK(!tern_backend_health_connect_failed(&h, 5000, 0));
	CHECK(tern_backend_health_usable(&h, 5000));
	CHECK_EQ_UINT(atomic_load(&h.failed_ms), 5000);
}

static void test_active(void)
{
	struct tern_backend_health h = {0};

	CHECK_EQ_INT(tern_backend_health_checked(&h, true, 100), TERN_BACKEND_CHECK_SAME);
	CHECK_EQ_INT(tern_backend_health_checked(&h, false, 200), TERN_BACKEND_CHECK_DOWN);
	/* Down until a check connects, however long that takes. */
	CHECK(!tern_backend_health_usable(&h, 200));
	CHECK(!tern_backend_health_usable(&h, 1000000));
	CHECK_EQ_INT(tern_backend_health_checked(&h, false, 400), TERN_BACKEND_CHECK_SAME);
	CHECK_EQ_UINT(atomic_load(&h.failed_ms), 400);
	CHECK_EQ_INT(tern_backend_health_checked(&h, true, 600), TERN_BACKEND_CHECK_UP);
	CHECK(tern_backend_health_usable(&h, 600));

	/* A check that connects ends a passive skip too. */
	CHECK(tern_backend_health_connect_failed(&h, 1000, 10000));
	CHECK_EQ_INT(tern_backend_health_checked(&h, true, 1200), TERN_BACKEND_CHECK_UP);
	CHECK(tern_backend_health_usable(&h, 1200));

	/* A failed check on a skipped address: no new change to report. */
	CHECK(tern_backend_health_connect_failed(&h, 2000, 10000));
	CHECK_EQ_INT(tern_backend_health_checked(&h, false, 2100), TERN_BACKEND_CHECK_SAME);
	/* ... and then the skip running out does not bring it back: the
	 * check still says down. */
	CHECK(!tern_backend_health_usable(&h, 13000));
	/* A connection that connects does. */
	CHECK(tern_backend_health_connect_ok(&h, 13000));
	CHECK(tern_backend_health_usable(&h, 13000));
	CHECK(!atomic_load(&h.check_down));
}

int main(void)
{
	test_passive();
	test_retry_zero();
	test_active();
	return check_summary();
}
