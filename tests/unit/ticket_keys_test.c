/* Unit tests for src/ticket_keys.c's key sets: a random set, rotation
 * (a new key first, the oldest dropped, a file-loaded set cut to three),
 * the roles, times and fingerprints a set reports, sets made from a key
 * list, and reference counting, also from several threads at once (run
 * under TSan too). Reading the key file is ticket_keys_file_test.c's;
 * tickets issued and resumed with the sets, ticket_keys_resumption_test.c's. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "ticket_keys_fixture.h"
#include "tern/config.h"
#include "tern/ticket_keys.h"
#include "tern/ticket_keys_file.h"

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

	CHECK_EQ_INT(tern_ticket_keys_rotate(k1, TERN_TICKET_KEYS_ROTATE_KEEP, &k2), 0);
	CHECK_EQ_INT(tern_ticket_keys_rotate(k2, TERN_TICKET_KEYS_ROTATE_KEEP, &k3), 0);
	CHECK_EQ_INT(tern_ticket_keys_rotate(k3, TERN_TICKET_KEYS_ROTATE_KEEP, &k4), 0);
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
	CHECK_EQ_INT(tern_ticket_keys_rotate(NULL, TERN_TICKET_KEYS_ROTATE_KEEP, &k0), 0);
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
	CHECK_EQ_INT(tern_ticket_keys_rotate(k, TERN_TICKET_KEYS_ROTATE_KEEP, &r), 0);
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
	CHECK_EQ_INT(tern_ticket_keys_rotate(k, TERN_TICKET_KEYS_ROTATE_KEEP, &r), 0);
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
	CHECK_EQ_INT(tern_ticket_keys_rotate(one, TERN_TICKET_KEYS_ROTATE_KEEP, &k), 0);
	tern_ticket_keys_unref(one);
	if (!k)
		return;
	for (int i = 0; i < REF_THREADS; i++)
		CHECK_EQ_INT(pthread_create(&threads[i], NULL, ref_worker, tern_ticket_keys_ref(k)), 0);
	tern_ticket_keys_unref(k); /* the threads may now hold the last one */
	for (int i = 0; i < REF_THREADS; i++)
		CHECK_EQ_INT(pthread_join(threads[i], NULL), 0);
}

/* ---- roles, times and fingerprints ---- */

static void test_fingerprint(void)
{
	unsigned char key[TERN_TICKET_KEY_LEN];
	char a[TERN_TICKET_KEY_FINGERPRINT_LEN + 1], b[TERN_TICKET_KEY_FINGERPRINT_LEN + 1];

	/* SHA-256 over the 80 bytes, first 12 hex digits: Python's
	 * hashlib.sha256(key).hexdigest()[:12] for the keys of seeds 1, 2 */
	key_bytes(key, sizeof(key), 1);
	CHECK_EQ_INT(tern_ticket_key_fingerprint(key, a), 0);
	CHECK_EQ_STR(a, "3627005a71f5");
	CHECK_EQ_INT(tern_ticket_key_fingerprint(key, b), 0);
	CHECK_EQ_STR(b, a); /* stable */
	key_bytes(key, sizeof(key), 2);
	CHECK_EQ_INT(tern_ticket_key_fingerprint(key, b), 0);
	CHECK_EQ_STR(b, "c1172b1dd4e5");
	/* one bit of the AES key, which no name shows, changes it */
	key_bytes(key, sizeof(key), 1);
	key[79] ^= 1;
	CHECK_EQ_INT(tern_ticket_key_fingerprint(key, b), 0);
	CHECK(strcmp(a, b) != 0);
	CHECK_EQ_UINT(strlen(b), 12);
	CHECK_EQ_UINT(strspn(b, "0123456789abcdef"), 12);

	CHECK_EQ_STR(tern_ticket_key_role_name(TERN_TICKET_KEY_ENCRYPT), "encrypt");
	CHECK_EQ_STR(tern_ticket_key_role_name(TERN_TICKET_KEY_STAGED), "staged");
	CHECK_EQ_STR(tern_ticket_key_role_name(TERN_TICKET_KEY_DECRYPT), "decrypt");
}

/* In memory, a rotation is an encrypt key since now and a demotion. */
static void test_rotate_roles(void)
{
	struct tern_ticket_keys *k1 = NULL, *k2 = NULL, *k3 = NULL;
	char fp1[13], fp[13];

	int64_t before = (int64_t)time(NULL);
	CHECK_EQ_INT(tern_ticket_keys_new_random(&k1), 0);
	CHECK_EQ_INT(tern_ticket_keys_rotate(k1, TERN_TICKET_KEYS_ROTATE_KEEP, &k2), 0);
	CHECK_EQ_INT(tern_ticket_keys_rotate(k2, TERN_TICKET_KEYS_ROTATE_KEEP, &k3), 0);
	int64_t after = (int64_t)time(NULL);
	if (!k1 || !k2 || !k3)
		return;
	CHECK_EQ_INT(tern_ticket_keys_role(k1, 0), TERN_TICKET_KEY_ENCRYPT);
	CHECK(tern_ticket_keys_since(k1, 0) >= before && tern_ticket_keys_since(k1, 0) <= after);
	for (uint32_t i = 0; i < 3; i++) {
		CHECK_EQ_INT(tern_ticket_keys_role(k3, i), i == 0 ? TERN_TICKET_KEY_ENCRYPT : TERN_TICKET_KEY_DECRYPT);
		CHECK(tern_ticket_keys_since(k3, i) >= before && tern_ticket_keys_since(k3, i) <= after);
	}
	/* the fingerprint follows the key from set to set */
	tern_ticket_keys_fingerprint(k1, 0, fp1);
	tern_ticket_keys_fingerprint(k3, 2, fp);
	CHECK_EQ_STR(fp, fp1);
	tern_ticket_keys_fingerprint(k3, 0, fp);
	CHECK(strcmp(fp, fp1) != 0);
	CHECK_EQ_UINT(strspn(fp, "0123456789abcdef"), 12);
	tern_ticket_keys_unref(k1);
	tern_ticket_keys_unref(k2);
	tern_ticket_keys_unref(k3);
}

static void entry(struct tern_ticket_key_list *l, unsigned seed, enum tern_ticket_key_role role, int64_t since)
{
	struct tern_ticket_key_entry *e = &l->keys[l->num_keys++];
	key_bytes(e->key, sizeof(e->key), seed);
	e->role = role;
	e->since = since;
}

static void test_from_list(void)
{
	struct tern_ticket_key_list l = {.roles = true};
	struct tern_ticket_keys *k = NULL;
	char hex[33], want[33], fp[13];

	entry(&l, 1, TERN_TICKET_KEY_DECRYPT, 100);
	entry(&l, 2, TERN_TICKET_KEY_STAGED, 200);
	entry(&l, 10, TERN_TICKET_KEY_ENCRYPT, 300);
	CHECK_EQ_INT(tern_ticket_keys_from_list(&l, &k), 0);
	if (k) {
		CHECK_EQ_UINT(tern_ticket_keys_count(k), 3);
		/* the encrypting key moves to 0, the others keep their order */
		CHECK_EQ_STR(name_hex(k, 0, hex), seed_name_hex(want, 10));
		CHECK_EQ_STR(name_hex(k, 1, hex), seed_name_hex(want, 1));
		CHECK_EQ_STR(name_hex(k, 2, hex), seed_name_hex(want, 2));
		CHECK_EQ_INT(tern_ticket_keys_since(k, 0), 300);
		CHECK_EQ_INT(tern_ticket_keys_role(k, 1), TERN_TICKET_KEY_DECRYPT);
		CHECK_EQ_INT(tern_ticket_keys_since(k, 1), 100);
		CHECK_EQ_INT(tern_ticket_keys_role(k, 2), TERN_TICKET_KEY_STAGED);
		tern_ticket_keys_fingerprint(k, 0, fp);
		CHECK_EQ_STR(fp, "2d28e37d8021");
		tern_ticket_keys_unref(k);
		k = NULL;
	}
	/* not exactly one encrypting key, or no key: refused */
	l.keys[2].role = TERN_TICKET_KEY_DECRYPT;
	CHECK_EQ_INT(tern_ticket_keys_from_list(&l, &k), -EINVAL);
	l.keys[0].role = l.keys[2].role = TERN_TICKET_KEY_ENCRYPT;
	CHECK_EQ_INT(tern_ticket_keys_from_list(&l, &k), -EINVAL);
	l.num_keys = 0;
	CHECK_EQ_INT(tern_ticket_keys_from_list(&l, &k), -EINVAL);
	CHECK(k == NULL);
	tern_ticket_key_list_clear(&l);
}

/* keep: as many keys as the session lifetime needs (the config's
 * 1 + ceil(lifetime / rotate)), no more; 1 keeps only the new key. */
static void test_rotate_keep(void)
{
	struct tern_config cfg;
	struct tern_ticket_keys *k = NULL, *next = NULL;
	char a[33], b[33];

	tern_config_init(&cfg);
	CHECK_EQ_UINT(tern_config_rotate_keep(&cfg), TERN_TICKET_KEYS_ROTATE_KEEP); /* 1h, 2h */
	cfg.session_lifetime_ms = 5u * 60u * 60u * 1000u + 1; /* just over 5h */
	CHECK_EQ_UINT(tern_config_rotate_keep(&cfg), 7);
	cfg.ticket_rotate_ms = 1000; /* 1s: capped */
	CHECK_EQ_UINT(tern_config_rotate_keep(&cfg), TERN_MAX_ROTATE_KEEP);

	CHECK_EQ_INT(tern_ticket_keys_new_random(&k), 0);
	for (int i = 0; i < 8 && k; i++) {
		CHECK_EQ_INT(tern_ticket_keys_rotate(k, 5, &next), 0);
		if (!next)
			break;
		CHECK_EQ_UINT(tern_ticket_keys_count(next), i + 2 < 5 ? (unsigned)i + 2 : 5u);
		CHECK_EQ_STR(name_hex(next, 1, a), name_hex(k, 0, b));
		tern_ticket_keys_unref(k);
		k = next;
	}
	CHECK_EQ_INT(tern_ticket_keys_rotate(k, 1, &next), 0);
	if (next) {
		CHECK_EQ_UINT(tern_ticket_keys_count(next), 1);
		CHECK(strcmp(name_hex(next, 0, a), name_hex(k, 0, b)) != 0);
		tern_ticket_keys_unref(next);
	}
	tern_ticket_keys_unref(k);
}

int main(void)
{
	test_tmp_dir_make(tmp_dir, sizeof(tmp_dir), "ticket_keys_test");
	test_rotate_keep();
	test_fingerprint();
	test_rotate_roles();
	test_from_list();
	test_rotate();
	test_rotate_file_set();
	test_refcount();
	test_refcount_threads();
	test_tmp_dir_remove(tmp_dir);
	return check_summary();
}
