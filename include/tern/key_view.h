/* What the metrics thread may say about the ticket keys in use: each key's
 * fingerprint, role and SINCE, and the set's generation (key_handoff.h),
 * copied from the set whenever the control thread installs one
 * (tern_server_adopt_ticket_keys, and at start). What generation each
 * worker uses is the worker's to say (tern_worker_ticket_key_generation).
 *
 * Why a copy: the set itself belongs to the control thread and may be
 * freed the moment it is replaced, while the metrics thread renders at
 * any time. The copy holds no key material. A mutex, not the data path:
 * only the control thread (writer) and the metrics thread (reader) take
 * it, a few times per scrape or rotation. */
#ifndef TERN_KEY_VIEW_H
#define TERN_KEY_VIEW_H

#include <pthread.h>
#include <stdint.h>

#include "tern/ticket_keys.h"

struct tern_key_view_entry {
	char fingerprint[TERN_TICKET_KEY_FINGERPRINT_LEN + 1];
	enum tern_ticket_key_role role;
	int64_t since; /* Unix seconds, or TERN_TICKET_KEY_SINCE_UNKNOWN */
};

struct tern_key_view {
	pthread_mutex_t lock;
	uint64_t generation; /* the set's; 0: no set yet */
	uint32_t num;
	struct tern_key_view_entry keys[TERN_TICKET_KEYS_FILE_MAX];
};

void tern_key_view_init(struct tern_key_view *v);
void tern_key_view_destroy(struct tern_key_view *v);

/* The view of set k (NULL: no keys), the generation-th the control
 * thread made. Any thread. */
void tern_key_view_set(struct tern_key_view *v, const struct tern_ticket_keys *k,
		       uint64_t generation);

/* Copies the view into out (a snapshot the caller reads at leisure).
 * Any thread. */
void tern_key_view_get(struct tern_key_view *v, struct tern_key_view *out);

#endif
