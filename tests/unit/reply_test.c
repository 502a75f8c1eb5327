/* Unit tests for src/reply.c: every path through the part states on one
 * thread (answered, withdrawn, abandoned, taken after being abandoned), a
 * control thread that gives up while a worker carries a part out, a
 * threaded race between take and abandon checked for "done or reported not
 * done" (run under TSan: label tsan), and the JSON rendered from replies:
 * one worker, counts per worker with some not reached, conns cut at
 * exactly LIMIT connections across workers, and every field of one. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "json_reader.h"
#include "tern/conn_info.h"
#include "tern/json.h"
#include "tern/reply.h"

static unsigned state_of(const struct tern_reply *r, unsigned i)
{
	return atomic_load_explicit(&r->parts[i].state, memory_order_acquire);
}

static unsigned refs_of(struct tern_reply *r)
{
	return atomic_load_explicit(&r->refs, memory_order_acquire);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Finishes j and compares its text with want; frees j. */
static void check_json(struct tern_json *j, const char *want)
{
	if (CHECK_EQ_INT(tern_json_finish(j), 0))
		CHECK_EQ_STR(j->buf, want);
	tern_json_free(j);
}

/* ----------------------------------------------------------- the states */

static void test_all_answered(void)
{
	struct tern_reply *r = tern_reply_new(2);
	if (!CHECK(r != NULL))
		return;
	CHECK_EQ_UINT(state_of(r, 0), TERN_REPLY_IDLE);
	tern_reply_expect(r, 0);
	tern_reply_expect(r, 1);
	CHECK_EQ_UINT(state_of(r, 0), TERN_REPLY_PENDING);
	CHECK_EQ_UINT(refs_of(r), 3);
	for (unsigned i = 0; i < 2; i++) {
		struct tern_reply_part *part = tern_reply_take(r, i);
		if (!CHECK(part == &r->parts[i]))
			continue;
		CHECK_EQ_UINT(state_of(r, i), TERN_REPLY_TAKEN);
		part->value = 10 + i;
		tern_reply_answer(r, i);
	}
	uint64_t t0 = now_ms();
	CHECK_EQ_UINT(tern_reply_finish(r, 2000), 0);
	CHECK(now_ms() - t0 < 1000); /* nothing to wait for */
	for (unsigned i = 0; i < 2; i++) {
		CHECK_EQ_UINT(state_of(r, i), TERN_REPLY_DONE);
		CHECK_EQ_INT(r->parts[i].status, 0);
		CHECK_EQ_UINT(r->parts[i].value, 10 + i);
	}
	CHECK_EQ_UINT(refs_of(r), 1);
	CHECK_EQ_UINT(atomic_load(&r->pending), 0);
	tern_reply_unref(r);
}

/* Worker 0 answers, worker 1's push fails, worker 2 never pops in time and
 * pops later: its request is skipped, and the reply said so. */
static void test_withdrawn_and_abandoned(void)
{
	struct tern_reply *r = tern_reply_new(4);
	if (!CHECK(r != NULL))
		return;
	for (unsigned i = 0; i < 3; i++)
		tern_reply_expect(r, i);
	struct tern_reply_part *part = tern_reply_take(r, 0);
	if (CHECK(part != NULL)) {
		part->value = 7;
		tern_reply_answer(r, 0);
	}
	tern_reply_withdraw(r, 1);
	CHECK_EQ_UINT(state_of(r, 1), TERN_REPLY_UNSENT);
	CHECK_EQ_INT(r->parts[1].status, -EBUSY);
	CHECK_EQ_STR(r->parts[1].error, "worker 1 is busy (its queue is full)");
	CHECK_EQ_UINT(refs_of(r), 2); /* control's and worker 2's */

	uint64_t t0 = now_ms();
	CHECK_EQ_UINT(tern_reply_finish(r, 50), 1);
	uint64_t waited = now_ms() - t0;
	CHECK(waited >= 40 && waited < 1000);
	CHECK_EQ_UINT(state_of(r, 0), TERN_REPLY_DONE);
	CHECK_EQ_UINT(r->parts[0].value, 7);
	CHECK_EQ_UINT(state_of(r, 2), TERN_REPLY_ABANDONED);
	CHECK_EQ_INT(r->parts[2].status, -ETIMEDOUT);
	CHECK_EQ_STR(r->parts[2].error, "worker 2 did not answer within 50 ms");
	CHECK_EQ_UINT(state_of(r, 3), TERN_REPLY_IDLE); /* never addressed */
	CHECK_EQ_UINT(atomic_load(&r->pending), 0);

	/* Worker 2 pops its request at last: not to be carried out, and its
	 * reference is gone with the refusal. */
	CHECK(tern_reply_take(r, 2) == NULL);
	CHECK_EQ_UINT(state_of(r, 2), TERN_REPLY_ABANDONED);
	CHECK_EQ_UINT(refs_of(r), 1);
	tern_reply_unref(r);
}

/* The control thread unrefs first; the worker that pops the abandoned
 * request afterwards frees the reply (ASan: no leak, no use after free). */
static void test_worker_frees_last(void)
{
	struct tern_reply *r = tern_reply_new(1);
	if (!CHECK(r != NULL))
		return;
	tern_reply_expect(r, 0);
	CHECK_EQ_UINT(tern_reply_finish(r, 0), 1);
	tern_reply_unref(r);
	CHECK(tern_reply_take(r, 0) == NULL);
}

struct slow_worker {
	struct tern_reply *r;
	sem_t taken;
	unsigned hold_ms;
};

static void *slow_worker_main(void *arg)
{
	struct slow_worker *sw = arg;
	struct tern_reply_part *part = tern_reply_take(sw->r, 0);
	sem_post(&sw->taken);
	if (!part)
		return NULL;
	struct timespec hold = {0, (long)sw->hold_ms * 1000000L};
	nanosleep(&hold, NULL);
	part->value = 42;
	tern_reply_answer(sw->r, 0);
	return NULL;
}

/* A part taken before the control thread gives up is waited for past the
 * timeout, so the reply says what the worker did. */
static void test_finish_waits_for_a_taken_part(void)
{
	struct slow_worker sw = {.r = tern_reply_new(1), .hold_ms = 150};
	pthread_t t;

	if (!CHECK(sw.r != NULL))
		return;
	sem_init(&sw.taken, 0, 0);
	tern_reply_expect(sw.r, 0);
	if (!CHECK_EQ_INT(pthread_create(&t, NULL, slow_worker_main, &sw), 0))
		return;
	sem_wait(&sw.taken);
	uint64_t t0 = now_ms();
	CHECK_EQ_UINT(tern_reply_finish(sw.r, 10), 0);
	CHECK(now_ms() - t0 >= 100);
	CHECK_EQ_UINT(state_of(sw.r, 0), TERN_REPLY_DONE);
	CHECK_EQ_UINT(sw.r->parts[0].value, 42);
	CHECK_EQ_INT(sw.r->parts[0].status, 0);
	pthread_join(t, NULL);
	sem_destroy(&sw.taken);
	CHECK_EQ_UINT(refs_of(sw.r), 1);
	tern_reply_unref(sw.r);
}

/* ------------------------------------------ the race: take versus abandon */

#define RACE_WORKERS 2
#define RACE_ROUNDS 1000

struct racer {
	struct tern_reply *r;
	unsigned index;
	_Atomic bool *go;
	unsigned spin;   /* iterations to wait after go, so either side may win */
	bool carried_out; /* read by the main thread after join */
};

static void spin_for(unsigned n)
{
	for (volatile unsigned i = 0; i < n; i++)
		;
}

static void *racer_main(void *arg)
{
	struct racer *rc = arg;
	/* Yielding: more spinners than CPUs would starve the main thread. */
	while (!atomic_load_explicit(rc->go, memory_order_acquire))
		sched_yield();
	spin_for(rc->spin);
	struct tern_reply_part *part = tern_reply_take(rc->r, rc->index);
	if (!part)
		return NULL;
	rc->carried_out = true; /* the "work" */
	part->value = 1000 + rc->index;
	tern_reply_answer(rc->r, rc->index);
	return NULL;
}

static void test_race_take_abandon(void)
{
	unsigned seed = 12345, num_done = 0, num_abandoned = 0, mismatches = 0;

	for (unsigned round = 0; round < RACE_ROUNDS; round++) {
		struct tern_reply *r = tern_reply_new(RACE_WORKERS);
		struct racer rc[RACE_WORKERS];
		pthread_t t[RACE_WORKERS];
		_Atomic bool go = false;

		if (!CHECK(r != NULL))
			return;
		for (unsigned i = 0; i < RACE_WORKERS; i++) {
			tern_reply_expect(r, i);
			rc[i] = (struct racer){.r = r, .index = i, .go = &go,
					       .spin = (unsigned)rand_r(&seed) % 200000};
			if (pthread_create(&t[i], NULL, racer_main, &rc[i]) != 0) {
				CHECK(!"pthread_create");
				return;
			}
		}
		unsigned spin = (unsigned)rand_r(&seed) % 20000;
		atomic_store_explicit(&go, true, memory_order_release);
		spin_for(spin);
		unsigned abandoned = tern_reply_finish(r, 0);
		/* Before joining: what finish reported is final. A DONE part's
		 * value is visible here (TSan checks the ordering). */
		unsigned seen_abandoned = 0;
		unsigned state[RACE_WORKERS];
		for (unsigned i = 0; i < RACE_WORKERS; i++) {
			state[i] = state_of(r, i);
			if (state[i] == TERN_REPLY_DONE && r->parts[i].value != 1000 + i)
				mismatches++;
			if (state[i] == TERN_REPLY_ABANDONED)
				seen_abandoned++;
			else if (state[i] != TERN_REPLY_DONE)
				mismatches++; /* PENDING or TAKEN after finish */
		}
		if (seen_abandoned != abandoned)
			mismatches++;
		for (unsigned i = 0; i < RACE_WORKERS; i++) {
			pthread_join(t[i], NULL);
			/* Done exactly when reported done. */
			if (rc[i].carried_out != (state[i] == TERN_REPLY_DONE))
				mismatches++;
			if (state[i] == TERN_REPLY_DONE)
				num_done++;
			else
				num_abandoned++;
		}
		if (refs_of(r) != 1)
			mismatches++;
		tern_reply_unref(r);
	}
	CHECK_EQ_UINT(mismatches, 0);
	CHECK_EQ_UINT(num_done + num_abandoned, RACE_ROUNDS * RACE_WORKERS);
	/* Both sides won sometimes, or the race was not exercised. */
	CHECK(num_done > 0);
	CHECK(num_abandoned > 0);
	printf("race: %u parts done, %u abandoned\n", num_done, num_abandoned);
}

/* ------------------------------------------------------------ rendering */

/* Part i answered with `value` (or the worker's error when error is set). */
static void answer(struct tern_reply *r, unsigned i, uint64_t value, const char *error)
{
	tern_reply_expect(r, i);
	struct tern_reply_part *part = tern_reply_take(r, i);
	if (!CHECK(part != NULL))
		return;
	part->value = value;
	if (error) {
		part->status = -ENOENT;
		snprintf(part->error, sizeof(part->error), "%s", error);
	}
	tern_reply_answer(r, i);
}

/* Part i answered with a list of n connections, ids first..first+n-1, as
 * the worker copies them out for `conns`: handshake not done, nothing but
 * the id and the worker set. */
static void answer_list(struct tern_reply *r, unsigned i, unsigned first, unsigned n)
{
	tern_reply_expect(r, i);
	struct tern_reply_part *part = tern_reply_take(r, i);
	if (!CHECK(part != NULL))
		return;
	if (n > 0) {
		part->conns = calloc(n, sizeof(*part->conns));
		if (!CHECK(part->conns != NULL))
			n = 0;
	}
	for (unsigned k = 0; k < n; k++) {
		part->conns[k].id = first + k;
		part->conns[k].worker = i;
	}
	part->value = n;
	tern_reply_answer(r, i);
}

/* What answer_list's connection `id` on worker `w` renders as. */
#define CONN(id, w)                                                                       \
	"{\"id\":" #id ",\"worker\":" #w ",\"peer\":\"\",\"sni\":null,\"alpn\":null,"            \
	"\"version\":null,\"cipher\":null,\"resumed\":false,\"age_ms\":0,\"bytes_in\":0,"         \
	"\"bytes_out\":0,\"num_tickets\":0,\"tickets_sent\":0,\"tickets_pending\":0,"              \
	"\"tickets_requested\":0,\"buffer_bytes\":0,\"client_cert\":null}"

static void test_render_one(void)
{
	struct tern_reply *r = tern_reply_new(4);
	struct tern_json j;

	if (!CHECK(r != NULL))
		return;
	answer(r, 0, 1, NULL);
	answer(r, 1, 0, "no connection 5");
	tern_reply_expect(r, 2);
	tern_reply_withdraw(r, 2);
	tern_reply_expect(r, 3);
	CHECK_EQ_UINT(tern_reply_finish(r, 0), 1);

	tern_json_init(&j);
	tern_reply_render_one(r, 0, "queued", &j);
	check_json(&j, "{\"ok\":true,\"queued\":1}");
	tern_json_init(&j);
	tern_reply_render_one(r, 0, NULL, &j);
	check_json(&j, "{\"ok\":true}");
	tern_json_init(&j);
	tern_reply_render_one(r, 1, "queued", &j);
	check_json(&j, "{\"ok\":false,\"error\":\"no connection 5\"}");
	tern_json_init(&j);
	tern_reply_render_one(r, 2, "queued", &j);
	check_json(&j, "{\"ok\":false,\"error\":\"worker 2 is busy (its queue is full): "
		       "not carried out\"}");
	tern_json_init(&j);
	tern_reply_render_one(r, 3, NULL, &j);
	check_json(&j, "{\"ok\":false,\"error\":\"worker 3 did not answer within 0 ms: "
		       "not carried out\"}");
	tern_reply_unref(r);
	CHECK(tern_reply_take(r, 3) == NULL); /* worker 3 comes late */
}

static void test_render_counts(void)
{
	struct tern_reply *r = tern_reply_new(3);
	struct tern_json j;

	if (!CHECK(r != NULL))
		return;
	answer(r, 0, 2, NULL);
	answer(r, 1, 0, NULL);
	answer(r, 2, 3, NULL);
	CHECK_EQ_UINT(tern_reply_finish(r, 2000), 0);
	tern_json_init(&j);
	tern_reply_render_counts(r, "queued", &j);
	check_json(&j, "{\"ok\":true,\"queued\":5,\"workers\":[{\"worker\":0,\"queued\":2},"
		       "{\"worker\":1,\"queued\":0},{\"worker\":2,\"queued\":3}]}");
	tern_reply_unref(r);

	/* Worker 1's queue is full, worker 3 does not answer: not ok, but
	 * the operator still learns what the others did. */
	r = tern_reply_new(4);
	if (!CHECK(r != NULL))
		return;
	for (unsigned i = 0; i < 4; i++)
		tern_reply_expect(r, i);
	tern_reply_withdraw(r, 1);
	for (unsigned i = 0; i < 4; i += 2) {
		struct tern_reply_part *part = tern_reply_take(r, i);
		if (CHECK(part != NULL)) {
			part->value = 2 + i;
			tern_reply_answer(r, i);
		}
	}
	CHECK_EQ_UINT(tern_reply_finish(r, 5), 1);
	tern_json_init(&j);
	tern_reply_render_counts(r, "queued", &j);
	check_json(&j, "{\"ok\":false,\"error\":\"2 of 4 workers not reached: worker 1 is busy "
		       "(its queue is full); worker 3 did not answer within 5 ms; queued on the "
		       "others: 6\",\"queued\":6,\"workers\":[{\"worker\":0,\"queued\":2},"
		       "{\"worker\":1,\"error\":\"worker 1 is busy (its queue is full)\"},"
		       "{\"worker\":2,\"queued\":4},"
		       "{\"worker\":3,\"error\":\"worker 3 did not answer within 5 ms\"}]}");
	CHECK(tern_reply_take(r, 3) == NULL);
	tern_reply_unref(r);
}

/* Every worker unreachable, more than the error text can name: the text
 * stays bounded, the count exact, and every worker is in the list. */
static void test_render_many_failures(void)
{
	enum { N = 1024 };
	struct tern_reply *r = tern_reply_new(N);
	struct tern_json j;

	if (!CHECK(r != NULL))
		return;
	for (unsigned i = 0; i < N; i++)
		tern_reply_expect(r, i);
	for (unsigned i = 0; i < N; i++)
		tern_reply_withdraw(r, i);
	CHECK_EQ_UINT(tern_reply_finish(r, 2000), 0);
	tern_json_init(&j);
	tern_reply_render_counts(r, "queued", &j);
	if (CHECK_EQ_INT(tern_json_finish(&j), 0)) {
		static const char prefix[] = "{\"ok\":false,\"error\":\"1024 of 1024 workers not "
					     "reached: worker 0 is busy (its queue is full); worker 1 is busy";
		CHECK(strncmp(j.buf, prefix, sizeof(prefix) - 1) == 0);
		CHECK(strstr(j.buf, "{\"worker\":1023,\"error\":\"worker 1023 is busy") != NULL);
		const char *error_end = strstr(j.buf, "\",\"queued\":0,");
		CHECK(error_end != NULL && error_end - j.buf < 1300);
	}
	tern_json_free(&j);
	tern_reply_unref(r);
}

static void check_list(struct tern_reply *r, uint64_t limit, const char *want)
{
	struct tern_json j;
	tern_json_init(&j);
	tern_reply_render_conns(r, limit, &j);
	check_json(&j, want);
}

/* Case 9 of issue 11: `conns 2` with one connection on worker 0 and two on
 * worker 1 listed one; every LIMIT gives min(LIMIT, all) now. */
static void test_render_list_limits(void)
{
	struct tern_reply *r = tern_reply_new(3);
	if (!CHECK(r != NULL))
		return;
	answer_list(r, 0, 1, 1);
	answer_list(r, 1, 2, 2);
	answer_list(r, 2, 9, 0);
	CHECK_EQ_UINT(tern_reply_finish(r, 2000), 0);
	check_list(r, 1, "{\"ok\":true,\"conns\":[" CONN(1, 0) "]}");
	check_list(r, 2, "{\"ok\":true,\"conns\":[" CONN(1, 0) "," CONN(2, 1) "]}");
	check_list(r, 3, "{\"ok\":true,\"conns\":[" CONN(1, 0) "," CONN(2, 1) "," CONN(3, 1) "]}");
	check_list(r, 1000, "{\"ok\":true,\"conns\":[" CONN(1, 0) "," CONN(2, 1) "," CONN(3, 1) "]}");
	tern_reply_unref(r);

	/* Empty everywhere. */
	r = tern_reply_new(2);
	if (!CHECK(r != NULL))
		return;
	answer_list(r, 0, 1, 0);
	answer_list(r, 1, 1, 0);
	CHECK_EQ_UINT(tern_reply_finish(r, 2000), 0);
	check_list(r, 5, "{\"ok\":true,\"conns\":[]}");
	tern_reply_unref(r);

	/* Long lists cut in the middle of the second. */
	r = tern_reply_new(2);
	if (!CHECK(r != NULL))
		return;
	answer_list(r, 0, 0, 100);
	answer_list(r, 1, 100, 300);
	CHECK_EQ_UINT(tern_reply_finish(r, 2000), 0);
	struct tern_json j;
	tern_json_init(&j);
	tern_reply_render_conns(r, 250, &j);
	if (CHECK_EQ_INT(tern_json_finish(&j), 0)) {
		struct tern_json_doc doc;
		if (CHECK_EQ_INT(tern_json_parse(j.buf, j.len, &doc), 0)) {
			const struct tern_json_value *conns = tern_json_member(doc.root, "conns");
			unsigned n = 0;
			bool in_order = true;
			for (const struct tern_json_value *e = conns ? conns->child : NULL; e;
			     e = e->next, n++) {
				const struct tern_json_value *id = tern_json_member(e, "id");
				in_order = in_order && id && strtoul(id->text, NULL, 10) == n;
			}
			CHECK_EQ_UINT(n, 250);
			CHECK(in_order);
		}
		tern_json_doc_free(&doc);
	}
	tern_json_free(&j);
	tern_reply_unref(r);
}

#define RAW(field, text) .field = text, .field##_len = sizeof(text) - 1

/* Every field of a connection, present and absent: absence is the has_
 * flag (an empty subject is still a certificate), the client's bytes (SNI,
 * ALPN, subject) escaped as in the log but for spaces and bounded (escape.h),
 * and the order is the one clients parse. */
static void test_render_conn_fields(void)
{
	struct tern_reply *r = tern_reply_new(2);
	if (!CHECK(r != NULL))
		return;
	tern_reply_expect(r, 1);
	struct tern_reply_part *part = tern_reply_take(r, 1);
	if (!CHECK(part != NULL))
		return;
	part->conns = calloc(2, sizeof(*part->conns));
	if (CHECK(part->conns != NULL)) {
		part->value = 2;
		part->conns[0] = (struct tern_conn_info){
			.id = 281474976710657ull, .worker = 1, .age_ms = 1500, .bytes_in = 517,
			.bytes_out = 4096, .buffer_bytes = 33792, .num_tickets = 2,
			.tickets_sent = 3, .tickets_pending = 4, .tickets_requested = 5,
			.resumed = true, .has_sni = true, .has_alpn = true, .has_client_cert = true,
			.handshake_done = true, .peer = "[::1]:40000", .version = "TLSv1.3",
			.cipher = "TLS_AES_128_GCM_SHA256", RAW(sni, "a\"b\x1b.example\n"),
			RAW(alpn, "h2"), RAW(client_cert, "/O=tern test/CN=Zo\xc3\xab \\")};
		part->conns[1] = (struct tern_conn_info){
			.id = 281474976710658ull, .worker = 1, .handshake_done = true,
			.has_client_cert = true, .peer = "127.0.0.1:5", .version = "TLSv1.2",
			.cipher = "ECDHE-RSA-AES128-GCM-SHA256", .sni = "ignored", .alpn = "ignored"};
	}
	tern_reply_answer(r, 1);
	CHECK_EQ_UINT(tern_reply_finish(r, 2000), 0);
	check_list(r, 10, "{\"ok\":true,\"conns\":[{\"id\":281474976710657,\"worker\":1,"
			  "\"peer\":\"[::1]:40000\",\"sni\":\"a\\\\x22b\\\\x1B.example\\\\x0A\",\"alpn\":\"h2\","
			  "\"version\":\"TLSv1.3\",\"cipher\":\"TLS_AES_128_GCM_SHA256\",\"resumed\":true,"
			  "\"age_ms\":1500,\"bytes_in\":517,\"bytes_out\":4096,\"num_tickets\":2,"
			  "\"tickets_sent\":3,\"tickets_pending\":4,\"tickets_requested\":5,"
			  "\"buffer_bytes\":33792,\"client_cert\":\"/O=tern test/CN=Zo\\\\xC3\\\\xAB \\\\x5C\"},"
			  "{\"id\":281474976710658,\"worker\":1,\"peer\":\"127.0.0.1:5\",\"sni\":null,"
			  "\"alpn\":null,\"version\":\"TLSv1.2\",\"cipher\":\"ECDHE-RSA-AES128-GCM-SHA256\","
			  "\"resumed\":false,\"age_ms\":0,\"bytes_in\":0,\"bytes_out\":0,"
			  "\"num_tickets\":0,\"tickets_sent\":0,\"tickets_pending\":0,"
			  "\"tickets_requested\":0,\"buffer_bytes\":0,\"client_cert\":\"\"}]}");
	tern_reply_unref(r);
}

/* A client's bytes are bounded: 256 of them shown, then the marker, in a
 * subject as in an SNI (which the protocol bounds at 255 anyway). */
static void test_render_conn_bound(void)
{
	struct tern_reply *r = tern_reply_new(1);
	if (!CHECK(r != NULL))
		return;
	tern_reply_expect(r, 0);
	struct tern_reply_part *part = tern_reply_take(r, 0);
	if (!CHECK(part != NULL))
		return;
	part->conns = calloc(1, sizeof(*part->conns));
	if (CHECK(part->conns != NULL)) {
		struct tern_conn_info *ci = &part->conns[0];
		part->value = 1;
		ci->has_sni = ci->has_client_cert = true;
		memset(ci->sni, 's', sizeof(ci->sni));
		ci->sni_len = 255;
		memset(ci->client_cert, 'c', sizeof(ci->client_cert));
		ci->client_cert_len = sizeof(ci->client_cert);
		snprintf(ci->peer, sizeof(ci->peer), "-");
	}
	tern_reply_answer(r, 0);
	CHECK_EQ_UINT(tern_reply_finish(r, 2000), 0);
	char want[2048], sni[256], subject[257];
	memset(sni, 's', 255);
	sni[255] = '\0';
	memset(subject, 'c', 256);
	subject[256] = '\0';
	snprintf(want, sizeof(want),
		 "{\"ok\":true,\"conns\":[{\"id\":0,\"worker\":0,\"peer\":\"-\",\"sni\":\"%s\","
		 "\"alpn\":null,\"version\":null,\"cipher\":null,\"resumed\":false,\"age_ms\":0,"
		 "\"bytes_in\":0,\"bytes_out\":0,\"num_tickets\":0,\"tickets_sent\":0,"
		 "\"tickets_pending\":0,\"tickets_requested\":0,\"buffer_bytes\":0,"
		 "\"client_cert\":\"%s\\\\...\"}]}",
		 sni, subject);
	check_list(r, 10, want);
	tern_reply_unref(r);
}

/* A worker that cannot be reached: not ok, and the others' entries. */
static void test_render_list_not_reached(void)
{
	struct tern_reply *r = tern_reply_new(2);
	if (!CHECK(r != NULL))
		return;
	tern_reply_expect(r, 0);
	tern_reply_withdraw(r, 0);
	answer_list(r, 1, 5, 2);
	CHECK_EQ_UINT(tern_reply_finish(r, 2000), 0);
	check_list(r, 10, "{\"ok\":false,\"error\":\"1 of 2 workers not reached: worker 0 is busy "
			  "(its queue is full)\",\"conns\":[" CONN(5, 1) "," CONN(6, 1) "]}");
	tern_reply_unref(r);
}

int main(void)
{
	test_all_answered();
	test_withdrawn_and_abandoned();
	test_worker_frees_last();
	test_finish_waits_for_a_taken_part();
	test_race_take_abandon();
	test_render_one();
	test_render_counts();
	test_render_many_failures();
	test_render_list_limits();
	test_render_conn_fields();
	test_render_conn_bound();
	test_render_list_not_reached();
	return check_summary();
}
