/* Fan-out replies between control threads and workers (see reply.h for the
 * part states), and the JSON replies rendered from them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tern/conn_info.h"
#include "tern/escape.h"
#include "tern/json.h"
#include "tern/reply.h"

struct tern_reply *tern_reply_new(unsigned num_parts)
{
	struct tern_reply *r = calloc(1, sizeof(*r) + num_parts * sizeof(r->parts[0]));
	if (!r)
		return NULL;
	atomic_init(&r->refs, 1);
	atomic_init(&r->pending, 0);
	r->num_parts = num_parts;
	for (unsigned i = 0; i < num_parts; i++)
		atomic_init(&r->parts[i].state, TERN_REPLY_IDLE);
	if (sem_init(&r->done, 0, 0) < 0) {
		free(r);
		return NULL;
	}
	return r;
}

void tern_reply_expect(struct tern_reply *r, unsigned i)
{
	/* Relaxed: the push that follows publishes the reply (queue.h). */
	atomic_store_explicit(&r->parts[i].state, TERN_REPLY_PENDING, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->pending, 1, memory_order_relaxed);
}

/* Part i is DONE, UNSENT or ABANDONED: one fewer to wait for. acq_rel: the
 * part's fields are published before the count drops, and the last
 * resolver sees every other part before posting. */
static void resolve(struct tern_reply *r)
{
	if (atomic_fetch_sub_explicit(&r->pending, 1, memory_order_acq_rel) == 1)
		sem_post(&r->done);
}

void tern_reply_withdraw(struct tern_reply *r, unsigned i)
{
	struct tern_reply_part *part = &r->parts[i];

	/* The request never reached the queue: no other thread knows of the
	 * part, so plain stores do. */
	atomic_store_explicit(&part->state, TERN_REPLY_UNSENT, memory_order_relaxed);
	part->status = -EBUSY;
	snprintf(part->error, sizeof(part->error), "worker %u is busy (its queue is full)", i);
	resolve(r);
	tern_reply_unref(r);
}

struct tern_reply_part *tern_reply_take(struct tern_reply *r, unsigned i)
{
	struct tern_reply_part *part = &r->parts[i];
	unsigned expected = TERN_REPLY_PENDING;

	/* Relaxed both ways: the request came through the queue (acquire),
	 * and what the worker writes next is published by resolve(). Losing
	 * means the control thread abandoned the part and said so. */
	if (atomic_compare_exchange_strong_explicit(&part->state, &expected, TERN_REPLY_TAKEN,
						    memory_order_relaxed, memory_order_relaxed))
		return part;
	tern_reply_unref(r);
	return NULL;
}

void tern_reply_answer(struct tern_reply *r, unsigned i)
{
	atomic_store_explicit(&r->parts[i].state, TERN_REPLY_DONE, memory_order_release);
	resolve(r);
	tern_reply_unref(r);
}

/* Waits until pending is zero, or until deadline when it is not NULL.
 * True when it is zero. */
static bool wait_pending(struct tern_reply *r, const struct timespec *deadline)
{
	/* done is posted once, after the decrement to zero: one successful
	 * wait is enough, and a zero seen first needs none. */
	while (atomic_load_explicit(&r->pending, memory_order_acquire) != 0) {
		int ret = deadline ? sem_timedwait(&r->done, deadline) : sem_wait(&r->done);
		if (ret < 0 && errno != EINTR)
			return false;
	}
	return true;
}

unsigned tern_reply_finish(struct tern_reply *r, unsigned timeout_ms)
{
	struct timespec deadline;
	unsigned abandoned = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	if (wait_pending(r, &deadline))
		return 0;
	for (unsigned i = 0; i < r->num_parts; i++) {
		struct tern_reply_part *part = &r->parts[i];
		unsigned expected = TERN_REPLY_PENDING;
		/* Relaxed: winning means the worker will never write the part;
		 * losing means it is TAKEN or DONE, and resolve() publishes it. */
		if (!atomic_compare_exchange_strong_explicit(&part->state, &expected,
							     TERN_REPLY_ABANDONED, memory_order_relaxed,
							     memory_order_relaxed))
			continue;
		part->status = -ETIMEDOUT;
		snprintf(part->error, sizeof(part->error), "worker %u did not answer within %u ms",
			 i, timeout_ms);
		abandoned++;
		resolve(r);
	}
	/* Only TAKEN parts are left: their workers are carrying them out. */
	(void)wait_pending(r, NULL);
	return abandoned;
}

void tern_reply_unref(struct tern_reply *r)
{
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (unsigned i = 0; i < r->num_parts; i++)
		free(r->parts[i].conns);
	sem_destroy(&r->done);
	free(r);
}

/* ------------------------------------------------------------ rendering */

static bool addressed(const struct tern_reply_part *part)
{
	return atomic_load_explicit(&part->state, memory_order_acquire) != TERN_REPLY_IDLE;
}

static bool carried_out(const struct tern_reply_part *part)
{
	return atomic_load_explicit(&part->state, memory_order_acquire) == TERN_REPLY_DONE;
}

void tern_reply_render_error(struct tern_json *j, const char *error)
{
	tern_json_begin_object(j);
	tern_json_member_bool(j, "ok", false);
	tern_json_member_string(j, "error", error);
	tern_json_end_object(j);
}

void tern_reply_render_one(const struct tern_reply *r, unsigned i, const char *count_key,
			   struct tern_json *j)
{
	const struct tern_reply_part *part = &r->parts[i];

	if (part->status < 0) {
		char error[sizeof(part->error) + 32];
		snprintf(error, sizeof(error), carried_out(part) ? "%s" : "%s: not carried out",
			 part->error);
		tern_reply_render_error(j, error);
		return;
	}
	tern_json_begin_object(j);
	tern_json_member_bool(j, "ok", true);
	if (count_key)
		tern_json_member_uint(j, count_key, part->value);
	tern_json_end_object(j);
}

/* Writes "ok" and, when an addressed part failed, an "error" naming as
 * many of the failed workers as fit, then `tail` (may be ""). */
static void render_ok(struct tern_json *j, const struct tern_reply *r, const char *tail)
{
	char error[1024];
	unsigned num_addressed = 0, num_failed = 0;
	size_t len = 0;

	for (unsigned i = 0; i < r->num_parts; i++) {
		const struct tern_reply_part *part = &r->parts[i];
		if (!addressed(part))
			continue;
		num_addressed++;
		if (part->status >= 0)
			continue;
		/* Names past the buffer are cut; the count stays exact. */
		if (len < sizeof(error))
			len += (size_t)snprintf(error + len, sizeof(error) - len, "%s%s",
						num_failed ? "; " : "", part->error);
		num_failed++;
	}
	tern_json_member_bool(j, "ok", num_failed == 0);
	if (num_failed == 0)
		return;
	char text[sizeof(error) + 128];
	snprintf(text, sizeof(text), "%u of %u workers not reached: %s%s", num_failed,
		 num_addressed, error, tail);
	tern_json_member_string(j, "error", text);
}

void tern_reply_render_counts(const struct tern_reply *r, const char *count_key,
			      struct tern_json *j)
{
	uint64_t total = 0;
	char tail[96];

	for (unsigned i = 0; i < r->num_parts; i++) {
		if (addressed(&r->parts[i]) && r->parts[i].status >= 0)
			total += r->parts[i].value;
	}
	snprintf(tail, sizeof(tail), "; %s on the others: %llu", count_key,
		 (unsigned long long)total);
	tern_json_begin_object(j);
	render_ok(j, r, tail);
	tern_json_member_uint(j, count_key, total);
	tern_json_key(j, "workers");
	tern_json_begin_array(j);
	for (unsigned i = 0; i < r->num_parts; i++) {
		const struct tern_reply_part *part = &r->parts[i];
		if (!addressed(part))
			continue;
		tern_json_begin_object(j);
		tern_json_member_uint(j, "worker", i);
		if (part->status < 0)
			tern_json_member_string(j, "error", part->error);
		else
			tern_json_member_uint(j, count_key, part->value);
		tern_json_end_object(j);
	}
	tern_json_end_array(j);
	tern_json_end_object(j);
}

/* A string, or null when it is absent. */
static void member_text(struct tern_json *j, const char *key, bool present, const char *s)
{
	tern_json_member_string(j, key, present ? s : NULL);
}

/* A client's bytes (conn_info.h), escaped and bounded (escape.h), or
 * null when absent. Spaces are kept: a JSON string holds them safely. */
static void member_client_bytes(struct tern_json *j, const char *key, bool present,
				const char *p, size_t len)
{
	char text[TERN_ESCAPE_OUT_MAX];

	tern_json_key(j, key);
	if (!present) {
		tern_json_null(j);
		return;
	}
	tern_escape(text, sizeof(text), p, len, 0);
	tern_json_string(j, text);
}

/* One connection of `conns`. The field names, their order and the nulls
 * are what clients parse: change none of them. */
static void render_conn(struct tern_json *j, const struct tern_conn_info *ci)
{
	tern_json_begin_object(j);
	tern_json_member_uint(j, "id", ci->id);
	tern_json_member_uint(j, "worker", ci->worker);
	tern_json_member_string(j, "peer", ci->peer);
	member_client_bytes(j, "sni", ci->has_sni, ci->sni, ci->sni_len);
	member_client_bytes(j, "alpn", ci->has_alpn, ci->alpn, ci->alpn_len);
	member_text(j, "version", ci->handshake_done, ci->version);
	member_text(j, "cipher", ci->handshake_done, ci->cipher);
	tern_json_member_bool(j, "resumed", ci->resumed);
	tern_json_member_uint(j, "age_ms", ci->age_ms);
	tern_json_member_uint(j, "bytes_in", ci->bytes_in);
	tern_json_member_uint(j, "bytes_out", ci->bytes_out);
	tern_json_member_uint(j, "num_tickets", ci->num_tickets);
	tern_json_member_uint(j, "tickets_sent", ci->tickets_sent);
	tern_json_member_uint(j, "tickets_pending", ci->tickets_pending);
	tern_json_member_uint(j, "tickets_requested", ci->tickets_requested);
	tern_json_member_uint(j, "buffer_bytes", ci->buffer_bytes);
	member_client_bytes(j, "client_cert", ci->has_client_cert, ci->client_cert,
			    ci->client_cert_len);
	tern_json_end_object(j);
}

void tern_reply_render_conns(const struct tern_reply *r, uint64_t limit, struct tern_json *j)
{
	uint64_t listed = 0;

	tern_json_begin_object(j);
	render_ok(j, r, "");
	tern_json_key(j, "conns");
	tern_json_begin_array(j);
	for (unsigned i = 0; i < r->num_parts && listed < limit; i++) {
		const struct tern_reply_part *part = &r->parts[i];
		if (!addressed(part) || part->status < 0 || !part->conns)
			continue;
		for (uint64_t k = 0; k < part->value && listed < limit; k++, listed++)
			render_conn(j, &part->conns[k]);
	}
	tern_json_end_array(j);
	tern_json_end_object(j);
}
