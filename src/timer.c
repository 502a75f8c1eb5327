/* Deadline lists (timer.h). */
#include "tern/timer.h"

void tern_timer_arm(struct tern_timer_list *l, struct tern_timer *t, uint64_t deadline_ms)
{
	tern_list_del(&t->link);
	t->deadline_ms = deadline_ms;
	/* From the tail: the first timer not later than this one is the
	 * place, which for a list of one duration is the tail itself. */
	struct tern_list *at = l->head.prev;
	while (at != &l->head &&
	       tern_container_of(at, struct tern_timer, link)->deadline_ms > deadline_ms)
		at = at->prev;
	/* Insert after `at`: before at->next. */
	tern_list_add_tail(at->next, &t->link);
}

uint64_t tern_timer_next(const struct tern_timer_list *l)
{
	if (tern_list_empty(&l->head))
		return TERN_TIMER_NEVER;
	return tern_container_of(l->head.next, struct tern_timer, link)->deadline_ms;
}

struct tern_timer *tern_timer_pop_due(struct tern_timer_list *l, uint64_t now_ms)
{
	if (tern_timer_next(l) > now_ms)
		return NULL;
	struct tern_timer *t = tern_container_of(l->head.next, struct tern_timer, link);
	tern_list_del(&t->link);
	return t;
}
