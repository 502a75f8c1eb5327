/* The metrics thread's copy of the ticket keys' public facts (key_view.h). */
#include <string.h>

#include "tern/key_view.h"

void tern_key_view_init(struct tern_key_view *v)
{
	memset(v, 0, sizeof(*v));
	pthread_mutex_init(&v->lock, NULL);
}

void tern_key_view_destroy(struct tern_key_view *v)
{
	pthread_mutex_destroy(&v->lock);
}

void tern_key_view_set(struct tern_key_view *v, const struct tern_ticket_keys *k,
		       uint64_t generation)
{
	struct tern_key_view_entry entries[TERN_TICKET_KEYS_FILE_MAX];
	uint32_t n = k ? tern_ticket_keys_count(k) : 0;

	/* Built outside the lock: the fingerprints are kept in the set, but
	 * nothing the reader waits for needs to be done under it. */
	for (uint32_t i = 0; i < n && i < TERN_TICKET_KEYS_FILE_MAX; i++) {
		tern_ticket_keys_fingerprint(k, i, entries[i].fingerprint);
		entries[i].role = tern_ticket_keys_role(k, i);
		entries[i].since = tern_ticket_keys_since(k, i);
	}
	pthread_mutex_lock(&v->lock);
	v->generation = generation;
	v->num = n;
	memcpy(v->keys, entries, n * sizeof(entries[0]));
	pthread_mutex_unlock(&v->lock);
}

void tern_key_view_get(struct tern_key_view *v, struct tern_key_view *out)
{
	pthread_mutex_lock(&v->lock);
	out->generation = v->generation;
	out->num = v->num;
	memcpy(out->keys, v->keys, v->num * sizeof(v->keys[0]));
	pthread_mutex_unlock(&v->lock);
}
