/* Per-direction connection buffers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tern/buf.h"

int tern_buf_reserve(struct tern_buf *b, uint32_t cap)
{
	if (b->data)
		return 0;
	b->data = malloc(cap);
	if (!b->data)
		return -ENOMEM;
	b->cap = cap;
	b->head = b->tail = 0;
	return 0;
}

void tern_buf_compact(struct tern_buf *b)
{
	if (b->head == 0 || b->pinned)
		return;
	uint32_t len = tern_buf_len(b);
	memmove(b->data, b->data + b->head, len);
	b->head = 0;
	b->tail = len;
	tern_buf_check(b);
}

void tern_buf_release_if_empty(struct tern_buf *b)
{
	if (b->data && tern_buf_empty(b) && !b->pinned)
		tern_buf_free(b);
}

void tern_buf_free(struct tern_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->cap = b->head = b->tail = 0;
	b->pinned = false;
}

int tern_buf_append(struct tern_buf *b, const void *src, uint32_t len, uint32_t min_cap,
		    uint8_t **retired)
{
	if (!b->data && tern_buf_reserve(b, min_cap > len ? min_cap : len) < 0)
		return -ENOMEM;
	if (tern_buf_free_tail(b) < len)
		tern_buf_compact(b);
	if (tern_buf_free_tail(b) < len) {
		uint32_t held = tern_buf_len(b);
		uint64_t want = (uint64_t)held + len;
		if (want < (uint64_t)b->cap * 2)
			want = (uint64_t)b->cap * 2;
		if (want > UINT32_MAX)
			return -ENOMEM;
		uint8_t *grown = malloc(want);
		if (!grown)
			return -ENOMEM;
		memcpy(grown, tern_buf_head_ptr(b), held);
		/* Only the storage current when the send was queued is the
		 * kernel's: one that replaced it since is ours to free. */
		if (b->pinned && !*retired)
			*retired = b->data;
		else
			free(b->data);
		b->data = grown;
		b->cap = (uint32_t)want;
		b->head = 0;
		b->tail = held;
	}
	memcpy(tern_buf_tail_ptr(b), src, len);
	tern_buf_produce(b, len);
	return 0;
}

uint32_t tern_buf_write(struct tern_buf *b, const void *src, uint32_t len)
{
	if (tern_buf_free_tail(b) < len)
		tern_buf_compact(b);
	uint32_t n = tern_buf_free_tail(b);
	if (n > len)
		n = len;
	memcpy(tern_buf_tail_ptr(b), src, n);
	tern_buf_produce(b, n);
	return n;
}

uint32_t tern_buf_read(struct tern_buf *b, void *dst, uint32_t len)
{
	uint32_t n = tern_buf_len(b);
	if (n > len)
		n = len;
	memcpy(dst, tern_buf_head_ptr(b), n);
	tern_buf_consume(b, n);
	return n;
}
