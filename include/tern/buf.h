/* A connection's byte buffer for one direction: a linear window that is
 * filled at the tail and drained at the head.
 *
 * Invariant, checked by tern_buf_check():  0 <= head <= tail <= cap.
 *   bytes held   = tail - head
 *   free at tail = cap - tail
 * The storage is allocated lazily on first use and may be released when the
 * buffer is empty, so an idle connection holds no buffer memory.
 *
 * Kernel I/O (io_uring recv into the tail, send from the head) points into
 * the storage while in flight: the owner sets `pinned` for that time, and a
 * pinned buffer is never compacted, reset to offset 0 or released, so the
 * offsets the kernel was given stay valid. Owned by one worker thread. */
#ifndef TERN_BUF_H
#define TERN_BUF_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tern_buf {
	uint8_t *data; /* NULL until first tern_buf_reserve() */
	uint32_t cap;
	uint32_t head;
	uint32_t tail;
	bool pinned; /* an io_uring operation points into data */
};

static inline void tern_buf_check(const struct tern_buf *b)
{
	assert(b->head <= b->tail && b->tail <= b->cap);
	(void)b;
}

static inline uint32_t tern_buf_len(const struct tern_buf *b)
{
	return b->tail - b->head;
}

static inline bool tern_buf_empty(const struct tern_buf *b)
{
	return b->head == b->tail;
}

static inline uint32_t tern_buf_free_tail(const struct tern_buf *b)
{
	return b->cap - b->tail;
}

/* Room left if the buffer were compacted: what a producer may still add. */
static inline uint32_t tern_buf_room(const struct tern_buf *b)
{
	return b->cap - tern_buf_len(b);
}

static inline uint8_t *tern_buf_head_ptr(const struct tern_buf *b)
{
	return b->data + b->head;
}

static inline uint8_t *tern_buf_tail_ptr(const struct tern_buf *b)
{
	return b->data + b->tail;
}

/* Marks n bytes at the tail as filled. */
static inline void tern_buf_produce(struct tern_buf *b, uint32_t n)
{
	b->tail += n;
	tern_buf_check(b);
}

/* Drops n bytes from the head; an emptied, unpinned buffer restarts at
 * offset 0, which keeps the whole capacity usable without copying. */
static inline void tern_buf_consume(struct tern_buf *b, uint32_t n)
{
	b->head += n;
	tern_buf_check(b);
	if (b->head == b->tail && !b->pinned)
		b->head = b->tail = 0;
}

/* The kernel operation on the buffer completed: it may be reset again. */
static inline void tern_buf_unpin(struct tern_buf *b)
{
	b->pinned = false;
	if (b->head == b->tail)
		b->head = b->tail = 0;
}

/* Allocates the storage (cap bytes) if it is not there yet. Returns 0 or
 * -ENOMEM. */
__attribute__((warn_unused_result))
int tern_buf_reserve(struct tern_buf *b, uint32_t cap);

/* Moves held bytes to offset 0 so the whole free room is at the tail. Does
 * nothing to a pinned buffer. */
void tern_buf_compact(struct tern_buf *b);

/* Frees the storage if the buffer is empty and not pinned. */
void tern_buf_release_if_empty(struct tern_buf *b);

/* Frees the storage whatever it holds. */
void tern_buf_free(struct tern_buf *b);

/* Copies up to len bytes into the tail, compacting first (when not pinned)
 * if that makes room. Returns the number of bytes copied (0 when full). */
uint32_t tern_buf_write(struct tern_buf *b, const void *src, uint32_t len);

/* Copies all len bytes into the tail, growing the storage when they do not
 * fit (to at least min_cap on first use). A pinned buffer's old storage,
 * which the kernel may still read (the bytes in flight are the same in
 * both), goes to *retired for the owner to free once the buffer is
 * unpinned; storage that replaced it since is freed at once. Returns 0 or
 * -ENOMEM (nothing copied). For a buffer whose producer cannot be told
 * "later" (OpenSSL's output, tls.h): its owner bounds what it asks the
 * producer for instead. The retired pointer is kept outside the buffer
 * because only that one buffer of a connection ever needs it. */
__attribute__((warn_unused_result))
int tern_buf_append(struct tern_buf *b, const void *src, uint32_t len, uint32_t min_cap,
		    uint8_t **retired);

/* Copies up to len bytes from the head out and consumes them. Returns the
 * number copied (0 when empty). */
uint32_t tern_buf_read(struct tern_buf *b, void *dst, uint32_t len);

#endif
