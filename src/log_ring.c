/* The log's bounded line buffer (log_ring.h): a byte ring under one short
 * mutex, lines in whole, lines out whole. */
#include <errno.h>
#include <string.h>

#include "tern/log_ring.h"

void tern_log_ring_open(struct tern_log_ring *r)
{
	pthread_mutex_lock(&r->mu);
	r->open = true;
	pthread_mutex_unlock(&r->mu);
}

void tern_log_ring_close(struct tern_log_ring *r)
{
	pthread_mutex_lock(&r->mu);
	r->open = false;
	pthread_mutex_unlock(&r->mu);
	pthread_cond_broadcast(&r->nonempty);
}

int tern_log_ring_push(struct tern_log_ring *r, const char *line, size_t len)
{
	if (len == 0 || len > TERN_LOG_LINE_MAX || line[len - 1] != '\n') {
		tern_log_ring_count_dropped(r, 1);
		return -EMSGSIZE;
	}
	pthread_mutex_lock(&r->mu);
	if (!r->open) {
		pthread_mutex_unlock(&r->mu);
		return -EPIPE;
	}
	if (len > r->cap - r->len) {
		pthread_mutex_unlock(&r->mu);
		tern_log_ring_count_dropped(r, 1);
		return -ENOBUFS;
	}
	/* At the tail, wrapping around the end if it must. */
	uint32_t tail = (r->head + r->len) % r->cap;
	size_t first = r->cap - tail < len ? r->cap - tail : len;
	memcpy(r->data + tail, line, first);
	memcpy(r->data, line + first, len - first);
	r->len += (uint32_t)len;
	/* Only a consumer asleep needs the signal, and one signal per
	 * burst is enough: it takes everything there is before it sleeps
	 * again. */
	bool wake = r->consumer_waiting;
	r->consumer_waiting = false;
	pthread_mutex_unlock(&r->mu);
	if (wake)
		pthread_cond_signal(&r->nonempty);
	return 0;
}

size_t tern_log_ring_take(struct tern_log_ring *r, char *out, size_t out_cap, bool wait)
{
	pthread_mutex_lock(&r->mu);
	while (wait && r->len == 0 && r->open) {
		r->consumer_waiting = true;
		pthread_cond_wait(&r->nonempty, &r->mu);
	}
	r->consumer_waiting = false;
	/* Copy what fits, then keep whole lines: up to the last '\n' in
	 * it (a ring holds only whole lines, so when everything fits, that
	 * is everything). */
	uint32_t n = r->len < out_cap ? r->len : (uint32_t)out_cap;
	uint32_t first = r->cap - r->head < n ? r->cap - r->head : n;
	memcpy(out, r->data + r->head, first);
	memcpy(out + first, r->data, n - first);
	const char *nl = n > 0 ? memrchr(out, '\n', n) : NULL;
	if (nl)
		n = (uint32_t)(nl - out) + 1;
	/* else out_cap is below one line: not by contract, but progress */
	r->head = (r->head + n) % r->cap;
	r->len -= n;
	if (r->len == 0)
		r->head = 0; /* empty: start over, fewer lines cut by the end */
	pthread_mutex_unlock(&r->mu);
	return n;
}

void tern_log_ring_count_dropped(struct tern_log_ring *r, uint64_t n)
{
	atomic_fetch_add_explicit(&r->dropped, n, memory_order_relaxed);
}

uint64_t tern_log_ring_dropped(const struct tern_log_ring *r)
{
	return atomic_load_explicit(&r->dropped, memory_order_relaxed);
}
