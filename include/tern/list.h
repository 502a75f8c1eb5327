/* An intrusive doubly linked list with a sentinel head. Single thread. */
#ifndef TERN_LIST_H
#define TERN_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct tern_list {
	struct tern_list *prev, *next;
};

#define tern_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void tern_list_init(struct tern_list *head)
{
	head->prev = head->next = head;
}

static inline bool tern_list_empty(const struct tern_list *head)
{
	return head->next == head;
}

/* A node not on any list points at itself, so removal is idempotent. */
static inline bool tern_list_linked(const struct tern_list *node)
{
	return node->next != node && node->next != NULL;
}

static inline void tern_list_add_tail(struct tern_list *head, struct tern_list *node)
{
	node->prev = head->prev;
	node->next = head;
	head->prev->next = node;
	head->prev = node;
}

static inline void tern_list_del(struct tern_list *node)
{
	if (!tern_list_linked(node))
		return;
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->prev = node->next = node;
}

#endif
