/* Deadline lists: timers kept in order of deadline, for one thread.
 *
 * A list knows deadlines, not what they are for: its owner embeds a
 * struct tern_timer in its object and gets the object back with
 * tern_container_of(). Insertion walks from the tail, so a list whose
 * timers all have the same duration (the handshake, idle, linger and
 * ticket-flush lists) takes each in O(1). Owned by one thread. */
#ifndef TERN_TIMER_H
#define TERN_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "tern/list.h"

#define TERN_TIMER_NEVER UINT64_MAX

struct tern_timer {
	struct tern_list link;
	uint64_t deadline_ms;
};

struct tern_timer_list {
	struct tern_list head;
};

static inline void tern_timer_init(struct tern_timer *t)
{
	tern_list_init(&t->link);
	t->deadline_ms = TERN_TIMER_NEVER;
}

static inline void tern_timer_list_init(struct tern_timer_list *l)
{
	tern_list_init(&l->head);
}

static inline bool tern_timer_armed(const struct tern_timer *t)
{
	return tern_list_linked(&t->link);
}

/* Takes t off whatever list it is on (nothing if it is on none). */
static inline void tern_timer_disarm(struct tern_timer *t)
{
	tern_list_del(&t->link);
	t->deadline_ms = TERN_TIMER_NEVER;
}

/* (Re)arms t on l for deadline_ms, keeping l in deadline order. */
void tern_timer_arm(struct tern_timer_list *l, struct tern_timer *t, uint64_t deadline_ms);

/* The earliest deadline on l, or TERN_TIMER_NEVER when it is empty. */
uint64_t tern_timer_next(const struct tern_timer_list *l);

/* Takes the first timer whose deadline is at or before now_ms off l and
 * returns it; NULL when none is due. */
struct tern_timer *tern_timer_pop_due(struct tern_timer_list *l, uint64_t now_ms);

#endif
