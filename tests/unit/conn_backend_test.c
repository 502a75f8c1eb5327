/* The connection's backend choice (conn_backend.c) driven through the
 * scripted engine of conn_fake.h: a refused backend is marked down for
 * --backend-retry and counted at it, the client served by the other, and
 * the next connection goes straight to the other; the per-backend counts
 * (connects, failures, open) follow; a new set handed to the worker while
 * a connect is in flight is what the retry chooses from, and the old set
 * is freed once the connection lets go of it (ASan would see a use after
 * free). */
#include "check.h"
/* The fake engine is conn_test.c's; this test uses only part of it. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "conn_fake.h"

static const struct tern_backend_set *current_set(struct env *e)
{
	return e->host.backends->set;
}

static void test_refused_marks_down(void)
{
	struct env e;
	struct env_opts o = {0};

	env_init(&e, &o);
	struct tern_endpoint *b0 = current_set(&e)->eps[0], *b1 = current_set(&e)->eps[1];
	e.cfg.backend_retry_ms = 10000;
	e.connect_result = -ECONNREFUSED; /* b0, first in the rotation, refuses */
	run();
	CHECK(e.fc && C()->phase == TERN_PHASE_STREAMING);
	CHECK(e.fc && C()->endpoint == b1);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.backend_connect_failures), 1);
	CHECK_EQ_UINT(tern_counter_get(&e.backend_stats[0].failures), 1);
	CHECK_EQ_UINT(tern_counter_get(&e.backend_stats[0].connects), 0);
	CHECK_EQ_UINT(tern_counter_get(&e.backend_stats[1].connects), 1);
	CHECK_EQ_UINT(tern_counter_get(&e.backend_stats[1].open), 1);
	CHECK(!tern_backend_health_usable(&b0->health, e.host.now_ms));
	CHECK(tern_backend_health_usable(&b0->health, e.host.now_ms + 10000));
	CHECK(tern_backend_health_usable(&b1->health, e.host.now_ms));

	/* The next connection: b0 is skipped, no new failure. */
	CHECK(env_park_and_accept(&e, &o));
	CHECK(e.fc && C()->endpoint == b1 && C()->attempts == 1);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.backend_connect_failures), 1);
	CHECK_EQ_UINT(tern_counter_get(&e.backend_stats[1].connects), 2);
	CHECK_EQ_UINT(tern_counter_get(&e.backend_stats[1].open), 2);
	CHECK_EQ_UINT(e.host.backends->users, 2);
	/* One ends: its backend socket is no longer open. */
	tern_conn_abort(C(), "test");
	run();
	CHECK(e.fc == NULL);
	CHECK_EQ_UINT(tern_counter_get(&e.backend_stats[1].open), 1);
	CHECK_EQ_UINT(e.host.backends->users, 1);
	env_free(&e);

	/* Both refuse: two attempts, both counted, no usable address left,
	 * the client told goodbye; counted once as unavailable. */
	env_init(&e, &o);
	e.cfg.backend_retry_ms = 10000;
	e.connect_result = -ECONNREFUSED;
	e.connect_results_more = 1; /* and the second too */
	run();
	CHECK(e.fc == NULL);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.backend_connect_failures), 2);
	CHECK_EQ_UINT(tern_counter_get(&e.ctr.backend_unavailable), 1);
	CHECK_EQ_UINT(tern_counter_get(&e.backend_stats[0].failures), 1);
	CHECK_EQ_UINT(tern_counter_get(&e.backend_stats[1].failures), 1);
	CHECK_EQ_UINT(tern_counter_get(&e.backend_stats[0].open) +
			      tern_counter_get(&e.backend_stats[1].open), 0);
	env_free(&e);
}

/* A new set arrives while the first connect is in flight. */
static void test_new_set_mid_connect(void)
{
	struct env e;
	struct env_opts o = {0};

	env_init(&e, &o);
	e.hold_connect = true;
	run();
	CHECK(e.fc && C()->phase == TERN_PHASE_CONNECTING);
	struct tern_endpoint *b0 = current_set(&e)->eps[0];
	CHECK(e.fc && C()->endpoint == b0);
	atomic_fetch_add(&b0->refs, 1); /* the test's, to see the old set go */

	/* The monitor's new set: b0 gone, "b9" (of the second --backend) in. */
	struct tern_addr b9 = {0};
	snprintf(b9.text, sizeof(b9.text), "b9");
	b9.ss.ss_family = AF_INET;
	struct tern_backend_set *next = tern_backend_set_new(1);
	struct tern_endpoint *ep9 = tern_endpoint_new(&b9, 1);
	CHECK(tern_backend_set_add(next, ep9));
	tern_endpoint_unref(ep9);
	tern_backend_view_retire(e.host.backends);
	e.host.backends = tern_backend_view_new(next);
	CHECK_EQ_UINT(atomic_load(&b0->refs), 2); /* held: the connection is on it */

	/* b0 refuses: the retry goes to b9, and the old set is let go. */
	e.hold_connect = false;
	e.connect_result = -ECONNREFUSED;
	run();
	CHECK(e.fc && C()->phase == TERN_PHASE_STREAMING);
	CHECK(e.fc && C()->endpoint == ep9);
	CHECK(e.fc && C()->bview == e.host.backends);
	CHECK_EQ_UINT(atomic_load(&b0->refs), 1);
	CHECK_EQ_UINT(tern_counter_get(&e.backend_stats[0].failures), 1);
	CHECK_EQ_UINT(tern_counter_get(&e.backend_stats[1].connects), 1);
	tern_endpoint_unref(b0);
	env_free(&e);
}

int main(void)
{
	ca_key = fixture_key();
	ca_cert = fixture_self_signed(ca_key, "tern test CA");
	client_key = ca_key;
	client_cert = ca_cert;

	test_refused_marks_down();
	test_new_set_mid_connect();

	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	return check_summary();
}
