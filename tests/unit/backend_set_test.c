/* Unit tests for src/backend_set.c: round-robin over the usable
 * addresses, the address that just failed never chosen again for the
 * retry, the least recently failed one when all are down; a re-resolved
 * name's new set sharing the endpoints (and their health) of addresses
 * that stayed, in their order, with new ones after and old ones gone;
 * "same" telling a change from none; and a worker's views freeing an old
 * set only once no connection holds it (checked through the endpoints'
 * reference counts). */
#include <arpa/inet.h>
#include <stdio.h>

#include "check.h"
#include "tern/backend_set.h"
#include "tern/parse.h"

static struct tern_addr addr(const char *text)
{
	struct tern_addr a;
	CHECK_EQ_INT(tern_parse_addr(text, true, &a), 0);
	return a;
}

/* A set of the given addresses, all of backend b. */
static struct tern_backend_set *set_of(unsigned b, const char *const *texts, size_t n)
{
	struct tern_backend_set *set = tern_backend_set_new(n);
	for (size_t i = 0; i < n; i++) {
		struct tern_addr a = addr(texts[i]);
		struct tern_endpoint *ep = tern_endpoint_new(&a, b);
		CHECK(tern_backend_set_add(set, ep));
		tern_endpoint_unref(ep);
	}
	return set;
}

static const char *pick_text(const struct tern_backend_set *set, unsigned *cursor, uint64_t now,
			     const struct tern_endpoint *skip)
{
	struct tern_endpoint *ep = tern_backend_set_pick(set, cursor, now, skip);
	return ep ? ep->addr.text : "(none)";
}

static void test_pick(void)
{
	static const char *const texts[] = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"};
	struct tern_backend_set *set = set_of(0, texts, 3);
	unsigned cur = 0;

	/* All up: in order, round and round. */
	CHECK_EQ_STR(pick_text(set, &cur, 100, NULL), "10.0.0.1:80");
	CHECK_EQ_STR(pick_text(set, &cur, 100, NULL), "10.0.0.2:80");
	CHECK_EQ_STR(pick_text(set, &cur, 100, NULL), "10.0.0.3:80");
	CHECK_EQ_STR(pick_text(set, &cur, 100, NULL), "10.0.0.1:80");
	/* .2 refused at 100: skipped until 10100, then back in the rotation. */
	CHECK(tern_backend_health_connect_failed(&set->eps[1]->health, 100, 10000));
	CHECK_EQ_STR(pick_text(set, &cur, 200, NULL), "10.0.0.3:80");
	CHECK_EQ_STR(pick_text(set, &cur, 200, NULL), "10.0.0.1:80");
	CHECK_EQ_STR(pick_text(set, &cur, 200, NULL), "10.0.0.3:80");
	CHECK_EQ_STR(pick_text(set, &cur, 10100, NULL), "10.0.0.1:80");
	CHECK_EQ_STR(pick_text(set, &cur, 10100, NULL), "10.0.0.2:80");
	/* The retry after .3 failed never goes to .3. */
	cur = 2;
	CHECK_EQ_STR(pick_text(set, &cur, 10100, set->eps[2]), "10.0.0.1:80");
	/* All down: the least recently failed one (.3 at 300, .1 at 400,
	 * .2 at 500), whatever the cursor says. */
	CHECK(tern_backend_health_connect_failed(&set->eps[2]->health, 300, 10000));
	CHECK(tern_backend_health_connect_failed(&set->eps[0]->health, 400, 10000));
	/* .2 is still skipped from 100: no change, but its failure is newer. */
	CHECK(!tern_backend_health_connect_failed(&set->eps[1]->health, 500, 10000));
	cur = 0;
	CHECK_EQ_STR(pick_text(set, &cur, 600, NULL), "10.0.0.3:80");
	CHECK_EQ_STR(pick_text(set, &cur, 600, NULL), "10.0.0.3:80");
	/* ... but not the one that just failed: the next oldest. */
	CHECK_EQ_STR(pick_text(set, &cur, 600, set->eps[2]), "10.0.0.1:80");
	tern_backend_set_unref(set);

	/* One address, and it just failed: nothing else to try. */
	static const char *const one[] = {"unix:/run/app.sock"};
	set = set_of(0, one, 1);
	cur = 0;
	CHECK_EQ_STR(pick_text(set, &cur, 1, NULL), "unix:/run/app.sock");
	CHECK(tern_backend_set_pick(set, &cur, 1, set->eps[0]) == NULL);
	tern_backend_set_unref(set);
	/* No address (a name not resolved yet). */
	set = tern_backend_set_new(0);
	CHECK(tern_backend_set_pick(set, &cur, 1, NULL) == NULL);
	CHECK(tern_backend_set_pick(NULL, &cur, 1, NULL) == NULL);
	tern_backend_set_unref(set);
}

/* A name's addresses change: backend 1 of three, between two literals. */
static void test_replace(void)
{
	struct tern_backend_set *set = tern_backend_set_new(4);
	struct tern_addr a0 = addr("192.168.0.1:80"), a2 = addr("192.168.0.9:80");
	struct tern_addr x = addr("10.0.0.1:8080"), y = addr("10.0.0.2:8080"), z = addr("10.0.0.3:8080");
	struct tern_addr v6 = addr("[::1]:8080");
	struct tern_endpoint *e0 = tern_endpoint_new(&a0, 0), *e2 = tern_endpoint_new(&a2, 2);
	struct tern_endpoint *ex = tern_endpoint_new(&x, 1), *ey = tern_endpoint_new(&y, 1);

	CHECK(tern_backend_set_add(set, e0));
	CHECK(tern_backend_set_add(set, ex));
	CHECK(tern_backend_set_add(set, ey));
	CHECK(tern_backend_set_add(set, e2));
	CHECK(!tern_backend_set_add(set, e2)); /* full */
	/* y has been failing: its health must survive the swap. */
	CHECK(tern_backend_health_connect_failed(&ey->health, 100, 10000));

	const struct tern_addr same_other_order[] = {y, x};
	CHECK(tern_backend_set_same(set, 1, same_other_order, 2));
	const struct tern_addr fewer[] = {x};
	CHECK(!tern_backend_set_same(set, 1, fewer, 1));
	const struct tern_addr changed[] = {z, y, v6};
	CHECK(!tern_backend_set_same(set, 1, changed, 3));
	CHECK(tern_backend_set_same(set, 0, &a0, 1));
	CHECK(!tern_backend_set_same(set, 0, &a2, 1));

	/* x goes, y stays (the same endpoint, still skipped), z and v6 come. */
	struct tern_backend_set *next = tern_backend_set_replace(set, 1, changed, 3);
	CHECK_EQ_UINT(next->num, 5);
	CHECK(next->eps[0] == e0);
	CHECK(next->eps[1] == ey);
	CHECK_EQ_STR(next->eps[2]->addr.text, "10.0.0.3:8080");
	CHECK_EQ_STR(next->eps[3]->addr.text, "[::1]:8080");
	CHECK_EQ_UINT(next->eps[2]->backend, 1);
	CHECK(next->eps[4] == e2);
	CHECK(!tern_backend_health_usable(&next->eps[1]->health, 200));
	CHECK(tern_backend_health_usable(&next->eps[2]->health, 200));
	CHECK(tern_backend_set_same(next, 1, changed, 3));
	CHECK(tern_backend_set_find(next, 1, &x) == NULL);
	CHECK(tern_backend_set_find(next, 0, &y) == NULL); /* another backend's */
	/* Up: backend 1 has a usable address (z), even with y skipped. */
	CHECK(tern_backend_set_backend_up(next, 1, 200));

	/* References: ours, the old set's, and the new set's for those it kept. */
	CHECK_EQ_UINT(atomic_load(&ex->refs), 2);
	CHECK_EQ_UINT(atomic_load(&ey->refs), 3);
	tern_backend_set_unref(set);
	CHECK_EQ_UINT(atomic_load(&ex->refs), 1);
	CHECK_EQ_UINT(atomic_load(&ey->refs), 2);

	/* A name that no longer resolves to anything of its own is replaced
	 * by none: the backend has no address, the others are untouched. */
	struct tern_backend_set *empty = tern_backend_set_replace(next, 1, NULL, 0);
	CHECK_EQ_UINT(empty->num, 2);
	CHECK(empty->eps[0] == e0 && empty->eps[1] == e2);
	CHECK(!tern_backend_set_backend_up(empty, 1, 200));
	tern_backend_set_unref(empty);
	tern_backend_set_unref(next);
	CHECK_EQ_UINT(atomic_load(&ey->refs), 1);
	CHECK_EQ_UINT(atomic_load(&e0->refs), 1);
	tern_endpoint_unref(e0);
	tern_endpoint_unref(e2);
	tern_endpoint_unref(ex);
	tern_endpoint_unref(ey);
}

/* A worker's views: the old set lives while a connection holds it. */
static void test_views(void)
{
	static const char *const texts[] = {"10.0.0.1:80"};
	struct tern_backend_set *first = set_of(0, texts, 1);
	struct tern_endpoint *ep = first->eps[0];
	atomic_fetch_add(&ep->refs, 1); /* the test's, to watch the set go */

	struct tern_backend_view *v1 = tern_backend_view_new(first);
	v1->users++; /* a connection chose from it */
	v1->users++; /* and another */
	/* A new set comes: v1 is retired but held. */
	struct tern_backend_view *v2 = tern_backend_view_new(tern_backend_set_new(0));
	tern_backend_view_retire(v1);
	CHECK_EQ_UINT(atomic_load(&ep->refs), 2);
	tern_backend_view_release(v1);
	CHECK_EQ_UINT(atomic_load(&ep->refs), 2);
	tern_backend_view_release(v1); /* the last: the set goes */
	CHECK_EQ_UINT(atomic_load(&ep->refs), 1);
	/* A current view whose users all left stays until retired. */
	v2->users++;
	tern_backend_view_release(v2);
	CHECK_EQ_UINT(v2->users, 0);
	tern_backend_view_retire(v2);
	tern_backend_view_retire(NULL);
	tern_endpoint_unref(ep);
}

int main(void)
{
	test_pick();
	test_replace();
	test_views();
	return check_summary();
}
