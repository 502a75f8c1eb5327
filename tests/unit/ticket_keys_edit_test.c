/* Unit tests for src/ticket_keys_edit.c: what each `tern keys` edit does
 * to a key list at a fixed "now" (generate, the conversion of bare lines,
 * add, promote, retire and rotate, with every refusal leaving the list as
 * it was), and the property the rotation exists for, checked over a
 * simulated day of hourly rotations: consecutive versions of the file
 * decrypt each other's tickets, and a key keeps decrypting for the whole
 * lifetime after it stopped encrypting, then goes.
 *
 * Keys are the fixture's deterministic ones; a key made from seed S has S
 * as its first byte, so a list reads back as "e1@100 s2@200 d3@50": role
 * (encrypt, staged, decrypt), seed, SINCE, in list order. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "ticket_keys_fixture.h"
#include "tern/ticket_keys.h"
#include "tern/ticket_keys_file.h"

#define H INT64_C(3600)
/* rotate's --lifetime in milliseconds */
#define LIFETIME_2H (2u * 3600u * 1000u)

static struct tern_ticket_key_changes changes;
static char err[256];

static void entry(struct tern_ticket_key_list *l, unsigned seed, enum tern_ticket_key_role role, int64_t since)
{
	struct tern_ticket_key_entry *e = &l->keys[l->num_keys++];
	key_bytes(e->key, sizeof(e->key), seed);
	e->role = role;
	e->since = since;
}

/* A list as the parser leaves a bare-line file. */
static void bare_list(struct tern_ticket_key_list *l, unsigned num, const unsigned *seeds)
{
	memset(l, 0, sizeof(*l));
	for (unsigned i = 0; i < num; i++)
		entry(l, seeds[i], i == 0 ? TERN_TICKET_KEY_ENCRYPT : TERN_TICKET_KEY_DECRYPT,
		      TERN_TICKET_KEY_SINCE_UNKNOWN);
}

static const unsigned char *seed_key(unsigned seed)
{
	static unsigned char key[TERN_TICKET_KEY_LEN];
	key_bytes(key, sizeof(key), seed);
	return key;
}

static const char *describe(const struct tern_ticket_key_list *l)
{
	static char out[4096];
	size_t used = 0;
	out[0] = '\0';
	for (uint32_t i = 0; i < l->num_keys; i++) {
		const struct tern_ticket_key_entry *e = &l->keys[i];
		char since[32];
		if (e->since == TERN_TICKET_KEY_SINCE_UNKNOWN)
			snprintf(since, sizeof(since), "?");
		else
			snprintf(since, sizeof(since), "%lld", (long long)e->since);
		used += (size_t)snprintf(out + used, sizeof(out) - used, "%s%c%u@%s", i ? " " : "",
					 tern_ticket_key_role_name(e->role)[0], e->key[0], since);
	}
	return out;
}

/* The seed whose key has this fingerprint, or -1. */
static int seed_of(const char *fingerprint)
{
	char fp[TERN_TICKET_KEY_FINGERPRINT_LEN + 1];
	for (unsigned seed = 0; seed < 256; seed++) {
		if (tern_ticket_key_fingerprint(seed_key(seed), fp) == 0 && strcmp(fp, fingerprint) == 0)
			return (int)seed;
	}
	return -1;
}

/* The changes recorded since the last call, as "; "-joined phrases. */
static const char *took(void)
{
	static char out[4096];
	size_t used = 0;
	out[0] = '\0';
	for (unsigned i = 0; i < changes.num; i++) {
		const struct tern_ticket_key_change *c = &changes.c[i];
		const char *from = tern_ticket_key_role_name(c->from), *to = tern_ticket_key_role_name(c->to);
		int seed = seed_of(c->fingerprint);
		char what[128];
		switch (c->kind) {
		case TERN_TICKET_KEY_CONVERTED:
			snprintf(what, sizeof(what), "converted %u (%d encrypts)", c->count, seed);
			break;
		case TERN_TICKET_KEY_ADDED:
			snprintf(what, sizeof(what), "added %d as %s", seed, to);
			break;
		case TERN_TICKET_KEY_PROMOTED:
		case TERN_TICKET_KEY_DEMOTED:
			snprintf(what, sizeof(what), "%s %d (%s since %lld) to %s",
				 c->kind == TERN_TICKET_KEY_PROMOTED ? "promoted" : "demoted", seed, from,
				 (long long)c->since, to);
			break;
		case TERN_TICKET_KEY_RETIRED:
			snprintf(what, sizeof(what), "retired %d (%s since %lld)", seed, from, (long long)c->since);
			break;
		}
		used += (size_t)snprintf(out + used, sizeof(out) - used, "%s%s", i ? "; " : "", what);
	}
	memset(&changes, 0, sizeof(changes));
	err[0] = '\0';
	return out;
}

static void test_generate(void)
{
	struct tern_ticket_key_list l = {0};

	CHECK_EQ_INT(tern_ticket_key_list_generate(&l, 1000, seed_key(5), &changes, err, sizeof(err)), 0);
	CHECK(l.roles);
	CHECK_EQ_STR(describe(&l), "e5@1000");
	CHECK_EQ_STR(took(), "added 5 as encrypt");
	CHECK_EQ_INT(tern_ticket_key_list_generate(&l, 2000, seed_key(6), &changes, err, sizeof(err)), -EEXIST);
	CHECK_EQ_STR(err, "has keys already");
	CHECK_EQ_STR(describe(&l), "e5@1000");
	CHECK_EQ_STR(took(), "");
	tern_ticket_key_list_clear(&l);
}

static void test_convert(void)
{
	struct tern_ticket_key_list l;
	static const unsigned seeds[] = {1, 2, 3};

	bare_list(&l, 3, seeds);
	CHECK_EQ_STR(describe(&l), "e1@? d2@? d3@?");
	CHECK_EQ_INT(tern_ticket_key_list_convert(&l, 500, &changes), 0);
	CHECK(l.roles);
	CHECK_EQ_STR(describe(&l), "e1@500 d2@500 d3@500");
	CHECK_EQ_STR(took(), "converted 3 (1 encrypts)");
	/* a list with roles already: nothing */
	CHECK_EQ_INT(tern_ticket_key_list_convert(&l, 900, &changes), 0);
	CHECK_EQ_STR(describe(&l), "e1@500 d2@500 d3@500");
	CHECK_EQ_STR(took(), "");
	tern_ticket_key_list_clear(&l);
}

static void test_add(void)
{
	struct tern_ticket_key_list l = {.roles = true};
	static const unsigned seeds[] = {1, 2};

	entry(&l, 1, TERN_TICKET_KEY_ENCRYPT, 100);
	entry(&l, 4, TERN_TICKET_KEY_DECRYPT, 50);
	CHECK_EQ_INT(tern_ticket_key_list_add(&l, 200, seed_key(9), &changes, err, sizeof(err)), 0);
	/* in the order tern writes: encrypt, staged, decrypt */
	CHECK_EQ_STR(describe(&l), "e1@100 s9@200 d4@50");
	CHECK_EQ_STR(took(), "added 9 as staged");
	/* a second staged key goes before the first: newest first */
	CHECK_EQ_INT(tern_ticket_key_list_add(&l, 300, seed_key(8), &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e1@100 s8@300 s9@200 d4@50");
	CHECK_EQ_STR(took(), "added 8 as staged");

	/* a name already there; no room */
	CHECK_EQ_INT(tern_ticket_key_list_add(&l, 400, seed_key(4), &changes, err, sizeof(err)), -EEXIST);
	CHECK_EQ_STR(err, "the new key's name is in the file already");
	CHECK_EQ_STR(describe(&l), "e1@100 s8@300 s9@200 d4@50");
	CHECK_EQ_STR(took(), "");
	while (l.num_keys < TERN_TICKET_KEYS_FILE_MAX)
		entry(&l, 100 + l.num_keys, TERN_TICKET_KEY_DECRYPT, 10);
	CHECK_EQ_INT(tern_ticket_key_list_add(&l, 400, seed_key(7), &changes, err, sizeof(err)), -ENOSPC);
	CHECK_EQ_STR(err, "already 64 keys: retire one first");
	CHECK_EQ_UINT(l.num_keys, 64);
	CHECK_EQ_STR(took(), "");

	/* a bare-line list is converted first, in the same edit */
	bare_list(&l, 2, seeds);
	CHECK_EQ_INT(tern_ticket_key_list_add(&l, 200, seed_key(9), &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e1@200 s9@200 d2@200");
	CHECK_EQ_STR(took(), "converted 2 (1 encrypts); added 9 as staged");
	tern_ticket_key_list_clear(&l);
}

static void test_promote(void)
{
	struct tern_ticket_key_list l = {.roles = true};
	static const unsigned seeds[] = {1, 2};

	entry(&l, 1, TERN_TICKET_KEY_ENCRYPT, 100);
	entry(&l, 2, TERN_TICKET_KEY_STAGED, 200);
	entry(&l, 3, TERN_TICKET_KEY_STAGED, 300);
	entry(&l, 4, TERN_TICKET_KEY_DECRYPT, 50);
	CHECK_EQ_INT(tern_ticket_key_list_promote(&l, 400, &changes, err, sizeof(err)), 0);
	/* the newest staged key encrypts; the other stays staged */
	CHECK_EQ_STR(describe(&l), "e3@400 s2@200 d1@400 d4@50");
	CHECK_EQ_STR(took(), "promoted 3 (staged since 300) to encrypt; demoted 1 (encrypt since 100) to decrypt");
	CHECK_EQ_INT(tern_ticket_key_list_promote(&l, 500, &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e2@500 d3@500 d1@400 d4@50");
	CHECK_EQ_STR(took(), "promoted 2 (staged since 200) to encrypt; demoted 3 (encrypt since 400) to decrypt");
	/* none staged: refused, nothing changed */
	CHECK_EQ_INT(tern_ticket_key_list_promote(&l, 600, &changes, err, sizeof(err)), -ENOENT);
	CHECK_EQ_STR(err, "no staged key to promote (add stages one)");
	CHECK_EQ_STR(describe(&l), "e2@500 d3@500 d1@400 d4@50");
	CHECK_EQ_STR(took(), "");

	/* equal SINCE: the first in the file is the newest */
	memset(&l, 0, sizeof(l));
	l.roles = true;
	entry(&l, 1, TERN_TICKET_KEY_ENCRYPT, 100);
	entry(&l, 6, TERN_TICKET_KEY_STAGED, 200);
	entry(&l, 5, TERN_TICKET_KEY_STAGED, 200);
	CHECK_EQ_INT(tern_ticket_key_list_promote(&l, 300, &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e6@300 s5@200 d1@300");
	took();

	/* a bare-line list has nothing staged, and stays bare */
	bare_list(&l, 2, seeds);
	CHECK_EQ_INT(tern_ticket_key_list_promote(&l, 300, &changes, err, sizeof(err)), -ENOENT);
	CHECK(!l.roles);
	CHECK_EQ_STR(describe(&l), "e1@? d2@?");
	CHECK_EQ_STR(took(), "");
	tern_ticket_key_list_clear(&l);
}

static void test_retire(void)
{
	struct tern_ticket_key_list l = {.roles = true};
	static const unsigned seeds[] = {1, 2, 3};

	entry(&l, 1, TERN_TICKET_KEY_ENCRYPT, 100);
	entry(&l, 2, TERN_TICKET_KEY_STAGED, 20);
	entry(&l, 3, TERN_TICKET_KEY_DECRYPT, 300);
	entry(&l, 4, TERN_TICKET_KEY_DECRYPT, 50);
	entry(&l, 5, TERN_TICKET_KEY_DECRYPT, 50);
	/* the oldest decrypt key, the last among equals; never the staged
	 * one, older as it is */
	CHECK_EQ_INT(tern_ticket_key_list_retire(&l, 900, &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e1@100 s2@20 d3@300 d4@50");
	CHECK_EQ_STR(took(), "retired 5 (decrypt since 50)");
	CHECK_EQ_INT(tern_ticket_key_list_retire(&l, 900, &changes, err, sizeof(err)), 0);
	CHECK_EQ_INT(tern_ticket_key_list_retire(&l, 900, &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(took(), "retired 4 (decrypt since 50); retired 3 (decrypt since 300)");
	CHECK_EQ_STR(describe(&l), "e1@100 s2@20");
	CHECK_EQ_INT(tern_ticket_key_list_retire(&l, 900, &changes, err, sizeof(err)), -ENOENT);
	CHECK_EQ_STR(err, "no decrypt key to retire: the encrypting key and staged keys are never retired");
	CHECK_EQ_STR(describe(&l), "e1@100 s2@20");
	CHECK_EQ_STR(took(), "");

	/* bare lines: converted, then the last line goes */
	bare_list(&l, 3, seeds);
	CHECK_EQ_INT(tern_ticket_key_list_retire(&l, 700, &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e1@700 d2@700");
	CHECK_EQ_STR(took(), "converted 3 (1 encrypts); retired 3 (decrypt since 700)");
	/* one bare key: never the last key, and not converted for nothing */
	bare_list(&l, 1, seeds);
	CHECK_EQ_INT(tern_ticket_key_list_retire(&l, 700, &changes, err, sizeof(err)), -ENOENT);
	CHECK(!l.roles);
	CHECK_EQ_STR(describe(&l), "e1@?");
	CHECK_EQ_STR(took(), "");
	tern_ticket_key_list_clear(&l);
}

static void test_rotate(void)
{
	struct tern_ticket_key_list l = {.roles = true};
	static const unsigned seeds[] = {1, 2};

	/* a fresh file: the first rotate only stages */
	entry(&l, 1, TERN_TICKET_KEY_ENCRYPT, 0);
	CHECK_EQ_INT(tern_ticket_key_list_rotate(&l, H, LIFETIME_2H, seed_key(2), &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e1@0 s2@3600");
	CHECK_EQ_STR(took(), "added 2 as staged");
	/* then each promotes what the previous one staged */
	CHECK_EQ_INT(tern_ticket_key_list_rotate(&l, 2 * H, LIFETIME_2H, seed_key(3), &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e2@7200 s3@7200 d1@7200");
	CHECK_EQ_STR(took(), "promoted 2 (staged since 3600) to encrypt; demoted 1 (encrypt since 0) to decrypt; "
			     "added 3 as staged");
	CHECK_EQ_INT(tern_ticket_key_list_rotate(&l, 3 * H, LIFETIME_2H, seed_key(4), &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e3@10800 s4@10800 d2@10800 d1@7200");
	took();
	/* key 1 has decrypted for exactly the lifetime now: it goes */
	CHECK_EQ_INT(tern_ticket_key_list_rotate(&l, 4 * H, LIFETIME_2H, seed_key(5), &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e4@14400 s5@14400 d3@14400 d2@10800");
	CHECK_EQ_STR(took(), "promoted 4 (staged since 10800) to encrypt; demoted 3 (encrypt since 10800) to decrypt; "
			     "retired 1 (decrypt since 7200); added 5 as staged");

	/* the boundary, a second either side */
	memset(&l, 0, sizeof(l));
	l.roles = true;
	entry(&l, 1, TERN_TICKET_KEY_ENCRYPT, 0);
	entry(&l, 2, TERN_TICKET_KEY_DECRYPT, 0);
	CHECK_EQ_INT(tern_ticket_key_list_rotate(&l, 2 * H - 1, LIFETIME_2H, seed_key(3), &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e1@0 s3@7199 d2@0");
	took();
	l.num_keys = 2;
	l.keys[1] = l.keys[2];
	CHECK_EQ_STR(describe(&l), "e1@0 d2@0");
	CHECK_EQ_INT(tern_ticket_key_list_rotate(&l, 2 * H, LIFETIME_2H, seed_key(3), &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e1@0 s3@7200");
	CHECK_EQ_STR(took(), "retired 2 (decrypt since 0); added 3 as staged");

	/* several expired ones go, oldest first; a young one and one from a
	 * clock ahead of ours stay */
	memset(&l, 0, sizeof(l));
	l.roles = true;
	entry(&l, 1, TERN_TICKET_KEY_ENCRYPT, 0);
	entry(&l, 2, TERN_TICKET_KEY_DECRYPT, 100);
	entry(&l, 3, TERN_TICKET_KEY_DECRYPT, 50);
	entry(&l, 4, TERN_TICKET_KEY_DECRYPT, 9000);
	entry(&l, 6, TERN_TICKET_KEY_DECRYPT, 20000);
	CHECK_EQ_INT(tern_ticket_key_list_rotate(&l, 10000, 2000 * 1000, seed_key(5), &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e1@0 s5@10000 d6@20000 d4@9000");
	CHECK_EQ_STR(took(), "retired 3 (decrypt since 50); retired 2 (decrypt since 100); added 5 as staged");

	/* bare lines: converted and staged, nothing promoted or dropped */
	bare_list(&l, 2, seeds);
	CHECK_EQ_INT(tern_ticket_key_list_rotate(&l, 100, 1, seed_key(3), &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e1@100 s3@100 d2@100");
	CHECK_EQ_STR(took(), "converted 2 (1 encrypts); added 3 as staged");

	/* refusals leave the list alone: a zero lifetime, a known name, no room */
	CHECK_EQ_INT(tern_ticket_key_list_rotate(&l, 200, 0, seed_key(4), &changes, err, sizeof(err)), -EINVAL);
	CHECK_EQ_STR(err, "a zero lifetime would drop every decrypt key");
	CHECK_EQ_INT(tern_ticket_key_list_rotate(&l, 200, LIFETIME_2H, seed_key(2), &changes, err, sizeof(err)),
		     -EEXIST);
	CHECK_EQ_STR(describe(&l), "e1@100 s3@100 d2@100");
	CHECK_EQ_STR(took(), "");
	memset(&l, 0, sizeof(l));
	l.roles = true;
	entry(&l, 1, TERN_TICKET_KEY_ENCRYPT, 0);
	while (l.num_keys < TERN_TICKET_KEYS_FILE_MAX)
		entry(&l, 100 + l.num_keys, TERN_TICKET_KEY_DECRYPT, 0);
	CHECK_EQ_INT(tern_ticket_key_list_rotate(&l, 100, LIFETIME_2H, seed_key(2), &changes, err, sizeof(err)),
		     -ENOSPC);
	CHECK_EQ_UINT(l.num_keys, 64);
	CHECK_EQ_STR(took(), "");
	/* but a full file whose decrypt keys expired rotates: room is
	 * counted after the drops */
	CHECK_EQ_INT(tern_ticket_key_list_rotate(&l, 2 * H, LIFETIME_2H, seed_key(2), &changes, err, sizeof(err)), 0);
	CHECK_EQ_STR(describe(&l), "e1@0 s2@7200");
	CHECK_EQ_UINT(changes.num, 64); /* 63 retired, 1 added */
	took();
	tern_ticket_key_list_clear(&l);
}

/* ---- the property ---- */

#define VERSIONS 24

static bool has_seed(const struct tern_ticket_key_list *l, unsigned seed)
{
	for (uint32_t i = 0; i < l->num_keys; i++)
		if (l->keys[i].key[0] == seed)
			return true;
	return false;
}

static int encrypting_seed(const struct tern_ticket_key_list *l)
{
	for (uint32_t i = 0; i < l->num_keys; i++)
		if (l->keys[i].role == TERN_TICKET_KEY_ENCRYPT)
			return l->keys[i].key[0];
	return -1;
}

/* Hourly rotations with a two-hour lifetime, versions 0..23 of a file.
 * An instance on version n and one on version n+1 (the next edit has not
 * reached everyone yet) must decrypt each other's tickets: each holds the
 * key the other encrypts with. A key that stopped encrypting at version m
 * must stay while any ticket it made can live (every version before
 * T(m) + lifetime) and then go, so the file does not grow. */
static void test_rotation_never_breaks_resumption(void)
{
	static struct tern_ticket_key_list v[VERSIONS];
	int64_t stopped[256];

	for (unsigned s = 0; s < 256; s++)
		stopped[s] = -1;
	memset(&v[0], 0, sizeof(v[0]));
	CHECK_EQ_INT(tern_ticket_key_list_generate(&v[0], 0, seed_key(1), &changes, err, sizeof(err)), 0);
	for (unsigned n = 1; n < VERSIONS; n++) {
		v[n] = v[n - 1];
		CHECK_EQ_INT(tern_ticket_key_list_rotate(&v[n], (int64_t)n * H, LIFETIME_2H, seed_key(1 + n), &changes,
							 err, sizeof(err)),
			     0);
		took();
		int before = encrypting_seed(&v[n - 1]), now = encrypting_seed(&v[n]);
		CHECK(before > 0 && now > 0);
		if (before > 0 && now > 0 && before != now)
			stopped[before] = (int64_t)n * H;
		/* both ways round, at every edit */
		CHECK(has_seed(&v[n - 1], (unsigned)now));
		CHECK(has_seed(&v[n], (unsigned)before));
		CHECK(v[n].num_keys <= 4);
	}
	/* from the second rotate on, every rotate switched keys */
	CHECK_EQ_INT(encrypting_seed(&v[1]), 1);
	CHECK_EQ_INT(encrypting_seed(&v[VERSIONS - 1]), VERSIONS - 1);
	for (unsigned s = 1; s < VERSIONS; s++) {
		if (stopped[s] < 0)
			continue;
		for (unsigned n = 0; n < VERSIONS; n++) {
			int64_t t = (int64_t)n * H;
			if (t >= stopped[s] && t < stopped[s] + 2 * H)
				CHECK(has_seed(&v[n], s)); /* its tickets may still live */
			if (t >= stopped[s] + 2 * H)
				CHECK(!has_seed(&v[n], s)); /* they cannot: gone */
		}
	}
	for (unsigned n = 0; n < VERSIONS; n++)
		tern_ticket_key_list_clear(&v[n]);
}

int main(void)
{
	test_generate();
	test_convert();
	test_add();
	test_promote();
	test_retire();
	test_rotate();
	test_rotation_never_breaks_resumption();
	return check_summary();
}
