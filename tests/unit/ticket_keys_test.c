/* Unit tests for src/ticket_keys.c's key sets: a random set, rotation
 * (a new key first, the oldest dropped, a file-loaded set cut to three),
 * and reference counting, also from several threads at once (run under
 * TSan too). Reading the key file is ticket_keys_file_test.c's; tickets
 * issued and resumed with the sets, ticket_keys_resumption_test.c's. */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "ticket_keys_fixture.h"
#include "tern/ticket_keys.h"

/* ---- rotation and reference counting ---- */

static void test_rotate(void)
{
	struct tern_ticket_keys *k1 = NULL, *k2 = NULL, *k3 = NULL, *k4 = NULL, *k0 = NULL;
	char a[33], b[33];

	CHECK_EQ_INT(tern_ticket_keys_new_random(&k1), 0);
	if (!k1)
		return;
	CHECK_EQ_UINT(tern_ticket_keys_count(k1), 1);
	CHECK_EQ_UINT(strlen(name_hex(k1, 0, a)), 32);
	CHECK_EQ_UINT(strspn(a, "0123456789abcdef"), 32);

	CHECK_EQ_INT(tern_ticket_keys_rotate(k1, &k2), 0);
	CHECK_EQ_INT(tern_ticket_keys_rotate(k2, &k3), 0);
	CHECK_EQ_INT(tern_ticket_keys_rotate(k3, &k4), 0);
	if (!k2 || !k3 || !k4)
		return;
	CHECK_EQ_UINT(tern_ticket_keys_count(k2), 2);
	CHECK_EQ_UINT(tern_ticket_keys_count(k3), 3);
	CHECK_EQ_UINT(tern_ticket_keys_count(k4), 3);

	/* key 0 is new each time; the old keys follow in order */
	CHECK(strcmp(name_hex(k2, 0, a), name_hex(k1, 0, b)) != 0);
	CHECK_EQ_STR(name_hex(k2, 1, a), name_hex(k1, 0, b));
	CHECK(strcmp(name_hex(k3, 0, a), name_hex(k2, 0, b)) != 0);
	CHECK_EQ_STR(name_hex(k3, 1, a), name_hex(k2, 0, b));
	CHECK_EQ_STR(name_hex(k3, 2, a), name_hex(k1, 0, b));
	CHECK(strcmp(name_hex(k4, 0, a), name_hex(k3, 0, b)) != 0);
	CHECK(strcmp(name_hex(k4, 0, a), name_hex(k1, 0, b)) != 0);
	CHECK_EQ_STR(name_hex(k4, 1, a), name_hex(k3, 0, b));
	CHECK_EQ_STR(name_hex(k4, 2, a), name_hex(k2, 0, b));
	/* the oldest is gone */
	for (uint32_t i = 0; i < 3; i++)
		CHECK(strcmp(name_hex(k4, i, a), name_hex(k1, 0, b)) != 0);

	/* rotate(NULL) is a fresh one-key set */
	CHECK_EQ_INT(tern_ticket_keys_rotate(NULL, &k0), 0);
	if (k0) {
		CHECK_EQ_UINT(tern_ticket_keys_count(k0), 1);
		tern_ticket_keys_unref(k0);
	}

	tern_ticket_keys_unref(k1);
	tern_ticket_keys_unref(k2);
	tern_ticket_keys_unref(k3);
	tern_ticket_keys_unref(k4);
}

static void test_rotate_file_set(void)
{
	static char big[64 * 128];
	char path[PATH_MAX], err[512] = "", a[33], want[33];
	struct tern_ticket_keys *k = NULL, *r = NULL;

	big[0] = '\0';
	append_key_lines(big, 5, 16);
	write_file(path, big, 0600);
	CHECK_EQ_INT(tern_ticket_keys_load_file(path, &k, err, sizeof(err)), 0);
	if (!k)
		return;
	CHECK_EQ_INT(tern_ticket_keys_rotate(k, &r), 0);
	if (r) {
		CHECK_EQ_UINT(tern_ticket_keys_count(r), 3);
		CHECK_EQ_STR(name_hex(r, 1, a), seed_name_hex(want, 0));
		CHECK_EQ_STR(name_hex(r, 2, a), seed_name_hex(want, 16));
	}
	tern_ticket_keys_unref(k);
	tern_ticket_keys_unref(r);
}

static void test_refcount(void)
{
	struct tern_ticket_keys *k = NULL, *r = NULL;
	char before[33], after[33];

	CHECK_EQ_INT(tern_ticket_keys_new_random(&k), 0);
	if (!k)
		return;
	name_hex(k, 0, before);
	CHECK(tern_ticket_keys_ref(k) == k);
	CHECK(tern_ticket_keys_ref(k) == k);
	tern_ticket_keys_unref(k);
	tern_ticket_keys_unref(k);
	/* still alive with the last reference (ASan would report a use
	 * after free otherwise) */
	CHECK_EQ_STR(name_hex(k, 0, after), before);
	/* a rotated set copies the keys: it outlives the set it came from */
	CHECK_EQ_INT(tern_ticket_keys_rotate(k, &r), 0);
	tern_ticket_keys_unref(k);
	if (r) {
		CHECK_EQ_STR(name_hex(r, 1, after), before);
		tern_ticket_keys_unref(r);
	}
	tern_ticket_keys_unref(NULL);
}

/* Workers take and drop references and read the keys while others do the
 * same; the last unref, wherever it happens, frees the set once (ASan:
 * no leak, no double free; TSan: no race between readers and the free). */
#define REF_THREADS 4

static void *ref_worker(void *arg)
{
	struct tern_ticket_keys *k = arg; /* one reference, ours to drop */
	char hex[33];
	for (int i = 0; i < 1000; i++) {
		struct tern_ticket_keys *mine = tern_ticket_keys_ref(k);
		tern_ticket_keys_name_hex(mine, tern_ticket_keys_count(mine) - 1, hex);
		tern_ticket_keys_unref(mine);
	}
	tern_ticket_keys_unref(k);
	return NULL;
}

static void test_refcount_threads(void)
{
	struct tern_ticket_keys *one = NULL, *k = NULL;
	pthread_t threads[REF_THREADS];

	CHECK_EQ_INT(tern_ticket_keys_new_random(&one), 0);
	if (!one)
		return;
	CHECK_EQ_INT(tern_ticket_keys_rotate(one, &k), 0);
	tern_ticket_keys_unref(one);
	if (!k)
		return;
	for (int i = 0; i < REF_THREADS; i++)
		CHECK_EQ_INT(pthread_create(&threads[i], NULL, ref_worker, tern_ticket_keys_ref(k)), 0);
	tern_ticket_keys_unref(k); /* the threads may now hold the last one */
	for (int i = 0; i < REF_THREADS; i++)
		CHECK_EQ_INT(pthread_join(threads[i], NULL), 0);
}

int main(void)
{
	test_tmp_dir_make(tmp_dir, sizeof(tmp_dir), "ticket_keys_test");
	test_rotate();
	test_rotate_file_set();
	test_refcount();
	test_refcount_threads();
	test_tmp_dir_remove(tmp_dir);
	return check_summary();
}
