/* Edits of a ticket key list: what `tern keys` does to a file, as pure
 * functions (the time and every new key come from the caller), so that
 * the rotation policy is tested with exact times. See ticket_keys_file.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tern/ticket_keys.h"
#include "tern/ticket_keys_file.h"

/* Appends one change, naming the key by its fingerprint. */
static void record(struct tern_ticket_key_changes *ch, enum tern_ticket_key_change_kind kind,
		   const struct tern_ticket_key_entry *e, enum tern_ticket_key_role from,
		   enum tern_ticket_key_role to, int64_t since, uint32_t count)
{
	if (ch->num == TERN_TICKET_KEY_CHANGES_MAX)
		return; /* cannot happen: one command makes at most 68 changes */
	struct tern_ticket_key_change *c = &ch->c[ch->num++];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->from = from;
	c->to = to;
	c->since = since;
	c->count = count;
	/* A digest failure costs the name, not the edit. */
	if (tern_ticket_key_fingerprint(e->key, c->fingerprint) < 0)
		memset(c->fingerprint, '?', TERN_TICKET_KEY_FINGERPRINT_LEN);
}

/* Whether a goes before b in a file tern writes: the encrypting key, the
 * staged keys, the decrypt keys (the enum's order), each newest first. */
static bool goes_before(const struct tern_ticket_key_entry *a, const struct tern_ticket_key_entry *b)
{
	if (a->role != b->role)
		return a->role < b->role;
	return a->since > b->since;
}

/* Stable insertion sort into that order: 64 keys at most, and equals keep
 * the order they had, so "first among equals" means what it says. */
static void sort_keys(struct tern_ticket_key_list *l)
{
	for (uint32_t i = 1; i < l->num_keys; i++) {
		struct tern_ticket_key_entry e = l->keys[i];
		uint32_t j = i;
		while (j > 0 && goes_before(&e, &l->keys[j - 1])) {
			l->keys[j] = l->keys[j - 1];
			j--;
		}
		l->keys[j] = e;
		OPENSSL_cleanse(&e, sizeof(e));
	}
}

static void remove_key(struct tern_ticket_key_list *l, uint32_t i)
{
	memmove(&l->keys[i], &l->keys[i + 1], (l->num_keys - i - 1) * sizeof(l->keys[0]));
	l->num_keys--;
	OPENSSL_cleanse(&l->keys[l->num_keys], sizeof(l->keys[0]));
}

static bool has_name(const struct tern_ticket_key_list *l, const unsigned char key[TERN_TICKET_KEY_LEN])
{
	for (uint32_t i = 0; i < l->num_keys; i++)
		if (memcmp(l->keys[i].key, key, TERN_TICKET_KEY_NAME_LEN) == 0)
			return true;
	return false;
}

/* The index of the key with `role` whose SINCE is the latest (newest) or
 * the earliest (!newest); among equals the first in the list for the
 * newest and the last for the oldest, which is the file's own order.
 * -1 when no key has the role. */
static int find_key(const struct tern_ticket_key_list *l, enum tern_ticket_key_role role, bool newest)
{
	int found = -1;
	for (uint32_t i = 0; i < l->num_keys; i++) {
		const struct tern_ticket_key_entry *e = &l->keys[i];
		if (e->role != role)
			continue;
		if (found < 0 || (newest ? e->since > l->keys[found].since : e->since <= l->keys[found].since))
			found = (int)i;
	}
	return found;
}

/* Whether decrypt key e has been one for lifetime_ms or longer. */
static bool expired(const struct tern_ticket_key_entry *e, int64_t now, uint64_t lifetime_ms)
{
	if (e->since == TERN_TICKET_KEY_SINCE_UNKNOWN || now < e->since)
		return false; /* a clock behind the file's: keep it */
	return (uint64_t)(now - e->since) * 1000 >= lifetime_ms;
}

static int edit_error(int ret, char *err, size_t err_len, const char *msg)
{
	snprintf(err, err_len, "%s", msg);
	return ret;
}

int tern_ticket_key_list_convert(struct tern_ticket_key_list *l, int64_t now,
				 struct tern_ticket_key_changes *changes)
{
	if (l->roles || l->num_keys == 0)
		return 0;
	/* nginx's meaning of bare lines: the first encrypts. When each took
	 * its role is unknown; from now on is the safe answer, as it keeps
	 * every decrypt key a full lifetime. */
	for (uint32_t i = 0; i < l->num_keys; i++) {
		l->keys[i].role = i == 0 ? TERN_TICKET_KEY_ENCRYPT : TERN_TICKET_KEY_DECRYPT;
		l->keys[i].since = now;
	}
	l->roles = true;
	record(changes, TERN_TICKET_KEY_CONVERTED, &l->keys[0], TERN_TICKET_KEY_ENCRYPT,
	       TERN_TICKET_KEY_ENCRYPT, now, l->num_keys);
	return 0;
}

int tern_ticket_key_list_generate(struct tern_ticket_key_list *l, int64_t now,
				  const unsigned char key[TERN_TICKET_KEY_LEN],
				  struct tern_ticket_key_changes *changes, char *err, size_t err_len)
{
	if (l->num_keys != 0)
		return edit_error(-EEXIST, err, err_len, "has keys already");
	memcpy(l->keys[0].key, key, TERN_TICKET_KEY_LEN);
	l->keys[0].role = TERN_TICKET_KEY_ENCRYPT;
	l->keys[0].since = now;
	l->num_keys = 1;
	l->roles = true;
	record(changes, TERN_TICKET_KEY_ADDED, &l->keys[0], TERN_TICKET_KEY_ENCRYPT,
	       TERN_TICKET_KEY_ENCRYPT, now, 0);
	return 0;
}

/* Appends key as staged since now; the caller checked room and name. */
static void stage(struct tern_ticket_key_list *l, int64_t now, const unsigned char key[TERN_TICKET_KEY_LEN],
		  struct tern_ticket_key_changes *changes)
{
	struct tern_ticket_key_entry *e = &l->keys[l->num_keys++];
	memcpy(e->key, key, TERN_TICKET_KEY_LEN);
	e->role = TERN_TICKET_KEY_STAGED;
	e->since = now;
	record(changes, TERN_TICKET_KEY_ADDED, e, TERN_TICKET_KEY_STAGED, TERN_TICKET_KEY_STAGED, now, 0);
	sort_keys(l);
}

static int check_new_key(const struct tern_ticket_key_list *l, uint32_t num_after,
			 const unsigned char key[TERN_TICKET_KEY_LEN], char *err, size_t err_len)
{
	if (num_after > TERN_TICKET_KEYS_FILE_MAX)
		return edit_error(-ENOSPC, err, err_len, "already 64 keys: retire one first");
	if (has_name(l, key))
		return edit_error(-EEXIST, err, err_len, "the new key's name is in the file already");
	return 0;
}

int tern_ticket_key_list_add(struct tern_ticket_key_list *l, int64_t now,
			     const unsigned char key[TERN_TICKET_KEY_LEN],
			     struct tern_ticket_key_changes *changes, char *err, size_t err_len)
{
	int ret = check_new_key(l, l->num_keys + 1, key, err, err_len);
	if (ret < 0)
		return ret;
	ret = tern_ticket_key_list_convert(l, now, changes);
	if (ret == 0)
		stage(l, now, key, changes);
	return ret;
}

/* Promotes staged key s; the encrypting key decrypts from now on. */
static void promote(struct tern_ticket_key_list *l, int s, int64_t now,
		    struct tern_ticket_key_changes *changes)
{
	int enc = find_key(l, TERN_TICKET_KEY_ENCRYPT, true);
	struct tern_ticket_key_entry *staged = &l->keys[s];
	record(changes, TERN_TICKET_KEY_PROMOTED, staged, TERN_TICKET_KEY_STAGED, TERN_TICKET_KEY_ENCRYPT,
	       staged->since, 0);
	staged->role = TERN_TICKET_KEY_ENCRYPT;
	staged->since = now;
	if (enc >= 0) {
		struct tern_ticket_key_entry *old = &l->keys[enc];
		record(changes, TERN_TICKET_KEY_DEMOTED, old, TERN_TICKET_KEY_ENCRYPT,
		       TERN_TICKET_KEY_DECRYPT, old->since, 0);
		old->role = TERN_TICKET_KEY_DECRYPT;
		old->since = now;
	}
	sort_keys(l);
}

int tern_ticket_key_list_promote(struct tern_ticket_key_list *l, int64_t now,
				 struct tern_ticket_key_changes *changes, char *err, size_t err_len)
{
	/* A bare-line list has no staged key: refused before converting. */
	int s = l->roles ? find_key(l, TERN_TICKET_KEY_STAGED, true) : -1;
	if (s < 0)
		return edit_error(-ENOENT, err, err_len, "no staged key to promote (add stages one)");
	promote(l, s, now, changes);
	return 0;
}

static void retire(struct tern_ticket_key_list *l, int i, struct tern_ticket_key_changes *changes)
{
	record(changes, TERN_TICKET_KEY_RETIRED, &l->keys[i], l->keys[i].role, l->keys[i].role,
	       l->keys[i].since, 0);
	remove_key(l, (uint32_t)i);
}

int tern_ticket_key_list_retire(struct tern_ticket_key_list *l, int64_t now,
				struct tern_ticket_key_changes *changes, char *err, size_t err_len)
{
	/* In a bare-line list every key after the first decrypts: converted,
	 * they are all "since now", and the oldest among equals is the last
	 * line, the one nginx's convention would drop. */
	int ret = (l->num_keys > 1 || l->roles) ? 0 : -ENOENT;
	if (ret == 0)
		ret = tern_ticket_key_list_convert(l, now, changes);
	int i = ret == 0 ? find_key(l, TERN_TICKET_KEY_DECRYPT, false) : -1;
	if (i < 0)
		return edit_error(-ENOENT, err, err_len,
				  "no decrypt key to retire: the encrypting key and staged keys are never "
				  "retired");
	retire(l, i, changes);
	return 0;
}

int tern_ticket_key_list_rotate(struct tern_ticket_key_list *l, int64_t now, uint64_t lifetime_ms,
				const unsigned char key[TERN_TICKET_KEY_LEN],
				struct tern_ticket_key_changes *changes, char *err, size_t err_len)
{
	if (lifetime_ms == 0)
		return edit_error(-EINVAL, err, err_len, "a zero lifetime would drop every decrypt key");
	/* Room is counted after the drops: a full file of old keys rotates. */
	uint32_t num_dropped = 0;
	for (uint32_t i = 0; i < l->num_keys && l->roles; i++)
		num_dropped += l->keys[i].role == TERN_TICKET_KEY_DECRYPT && expired(&l->keys[i], now, lifetime_ms);
	int ret = check_new_key(l, l->num_keys - num_dropped + 1, key, err, err_len);
	if (ret < 0)
		return ret;
	ret = tern_ticket_key_list_convert(l, now, changes);
	if (ret < 0)
		return ret;
	int s = find_key(l, TERN_TICKET_KEY_STAGED, true);
	if (s >= 0)
		promote(l, s, now, changes);
	/* Oldest first, so the first one still young ends it; the key just
	 * demoted is "since now" and stays. */
	for (;;) {
		int i = find_key(l, TERN_TICKET_KEY_DECRYPT, false);
		if (i < 0 || !expired(&l->keys[i], now, lifetime_ms))
			break;
		retire(l, i, changes);
	}
	stage(l, now, key, changes);
	return 0;
}
