/* A warning that comes in storms (accept() failing for want of
 * descriptors, clients closed for holding a slot or for not reading),
 * said at most once per interval: the first of a storm at once, the
 * later ones counted, and the count said with the next one. An operator
 * sees that it goes on and how often, without thousands of identical
 * lines crowding out the rest of the log (and the log ring: log.h).
 *
 * One struct belongs to one thread; nothing in it is shared. */
#ifndef TERN_LOG_LIMIT_H
#define TERN_LOG_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct tern_log_limit {
	uint64_t next_ms;              /* occurrences before this are only counted */
	unsigned long long num_unsaid; /* counted since the last one said */
};

/* One occurrence at now (ms, monotonic). Returns true when it is to be
 * said, with *out_unsaid the number counted and not said since the last
 * one (then restarted); false when it is only counted. */
static inline bool tern_log_limit_due(struct tern_log_limit *l, uint64_t now,
				      uint64_t interval_ms, unsigned long long *out_unsaid)
{
	if (now < l->next_ms) {
		l->num_unsaid++;
		return false;
	}
	*out_unsaid = l->num_unsaid;
	l->num_unsaid = 0;
	l->next_ms = now + interval_ms;
	return true;
}

#endif
