/* Unit tests for src/metrics.c: the Prometheus text rendered from a
 * server prepared but not started (workers whose counters and histograms
 * the test writes) compared line by line, a text-format checker run over it (and over broken texts,
 * to show it finds what it should), and the HTTP request judge with every
 * status it answers. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tern/config.h"
#include "tern/histogram.h"
#include "tern/metrics.h"
#include "tern/request.h"
#include "tern/server.h"
#include "tern/ticket_keys.h"
#include "tern/worker.h"

static struct tern_config config;

/* A server with the defaults but --num-tickets 3, so the configured value
 * is told apart from the default (2): num_workers real workers, prepared
 * but neither bound nor started, so their counters and histograms are the
 * test's to write. Freed with tern_server_join_and_free. */
static bool make_server(struct tern_server *srv, unsigned num_workers)
{
	char err[256];

	memset(srv, 0, sizeof(*srv));
	tern_config_init(&config);
	config.num_tickets = 3;
	srv->cfg = &config;
	if (num_workers == 0)
		return true; /* tern_server_prepare makes one at least */
	config.workers = num_workers;
	if (!CHECK_EQ_INT(tern_server_prepare(srv, &config, false, err, sizeof(err)), 0)) {
		fprintf(stderr, "    %s\n", err);
		return false;
	}
	return true;
}

static char *render(struct tern_server *srv)
{
	char *text = NULL;
	size_t len = 0;
	if (!CHECK_EQ_INT(tern_metrics_render(srv, &text, &len), 0))
		return NULL;
	CHECK_EQ_UINT(strlen(text), len);
	return text;
}

/* The text holds this exact line (want without its "\n"). */
static bool has_line(const char *text, const char *want)
{
	size_t n = strlen(want);
	for (const char *p = text; (p = strstr(p, want)) != NULL; p++) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	}
	return false;
}

#define CHECK_LINE(text, want)                                          \
	do {                                                            \
		if (!CHECK(has_line((text), (want))))                   \
			fprintf(stderr, "    missing line: %s\n", (want));  \
	} while (0)

/* ------------------------------------------------ a text-format checker */

/* What the Prometheus text format (0.0.4) requires of tern's output:
 * every line is a comment ("# HELP name text", "# TYPE name type") or a
 * sample "name{label="value",...} value"; each family has one HELP and one
 * TYPE, both before its samples, and its samples are contiguous; counters
 * end in _total; a histogram's buckets are cumulative with increasing le,
 * end with le="+Inf", and that bucket equals _count. Returns the number of
 * problems found (each printed). */

#define MAX_FAMILIES 32

struct family {
	char name[80];
	char type[16];
	bool help, samples_done;
	unsigned num_samples;
};

static bool name_char(char ch, bool first)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == ':' ||
	       (!first && ch >= '0' && ch <= '9');
}

static size_t scan_name(const char *s)
{
	size_t i = 0;
	while (name_char(s[i], i == 0))
		i++;
	return i;
}

/* A value as tern writes it: an unsigned integer, a decimal, or +Inf. */
static bool valid_value(const char *s, size_t n)
{
	size_t dots = 0, digits = 0;
	if (n == 4 && memcmp(s, "+Inf", 4) == 0)
		return true;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.')
			dots++;
		else if (s[i] >= '0' && s[i] <= '9')
			digits++;
		else
			return false;
	}
	return digits > 0 && dots <= 1 && s[0] != '.' && s[n - 1] != '.';
}

static struct family *find_family(struct family *fams, unsigned num, const char *name, size_t len)
{
	for (unsigned i = 0; i < num; i++)
		if (strlen(fams[i].name) == len && memcmp(fams[i].name, name, len) == 0)
			return &fams[i];
	return NULL;
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);
	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static unsigned check_format(const char *text)
{
	struct family fams[MAX_FAMILIES];
	unsigned num_fams = 0, problems = 0, lineno = 0;
	struct family *current = NULL; /* the family whose samples came last */
	/* Histogram state for the family being read. */
	double last_le = -1;
	unsigned long long last_bucket = 0, inf_bucket = 0;
	bool saw_inf = false;

#define PROBLEM(...)                                                          \
	do {                                                                  \
		fprintf(stderr, "    line %u: ", lineno);                     \
		fprintf(stderr, __VA_ARGS__);                                 \
		fprintf(stderr, "\n");                                        \
		problems++;                                                   \
	} while (0)

	if (text[0] == '\0' || text[strlen(text) - 1] != '\n') {
		fprintf(stderr, "    the text must end with a newline\n");
		problems++;
	}
	for (const char *line = text; *line != '\0';) {
		size_t len = strcspn(line, "\n");
		const char *next = line + len + (line[len] == '\n');
		lineno++;
		if (len == 0) {
			PROBLEM("empty line");
		} else if (line[0] == '#') {
			bool help = len > 7 && memcmp(line, "# HELP ", 7) == 0;
			bool type = len > 7 && memcmp(line, "# TYPE ", 7) == 0;
			if (!help && !type) {
				PROBLEM("a comment that is neither HELP nor TYPE");
				goto next_line;
			}
			const char *name = line + 7;
			size_t name_len = scan_name(name);
			if (name_len == 0 || name_len >= sizeof(fams[0].name) || name + name_len >= line + len ||
			    name[name_len] != ' ') {
				PROBLEM("bad metric name in a comment");
				goto next_line;
			}
			struct family *f = find_family(fams, num_fams, name, name_len);
			if (!f) {
				if (num_fams == MAX_FAMILIES) {
					PROBLEM("too many families");
					goto next_line;
				}
				f = &fams[num_fams++];
				memset(f, 0, sizeof(*f));
				memcpy(f->name, name, name_len);
			}
			if (f->num_samples)
				PROBLEM("%s after samples of %s", help ? "HELP" : "TYPE", f->name);
			const char *rest = name + name_len + 1;
			size_t rest_len = (size_t)(line + len - rest);
			if (help) {
				if (f->help)
					PROBLEM("second HELP for %s", f->name);
				if (rest_len == 0)
					PROBLEM("empty HELP for %s", f->name);
				f->help = true;
			} else {
				if (f->type[0])
					PROBLEM("second TYPE for %s", f->name);
				if (!f->help)
					PROBLEM("TYPE before HELP for %s", f->name);
				if (rest_len >= sizeof(f->type) ||
				    !((rest_len == 7 && memcmp(rest, "counter", 7) == 0) ||
				      (rest_len == 5 && memcmp(rest, "gauge", 5) == 0) ||
				      (rest_len == 9 && memcmp(rest, "histogram", 9) == 0))) {
					PROBLEM("unknown type for %s", f->name);
					goto next_line;
				}
				memcpy(f->type, rest, rest_len);
				f->type[rest_len] = '\0';
				if (strcmp(f->type, "counter") == 0 &&
				    !ends_with(f->name, strlen(f->name), "_total"))
					PROBLEM("counter %s does not end in _total", f->name);
			}
		} else {
			/* name{labels} value */
			size_t name_len = scan_name(line);
			if (name_len == 0) {
				PROBLEM("a sample line without a name");
				goto next_line;
			}
			const char *p = line + name_len;
			char le[32] = "";
			if (*p == '{') {
				p++;
				for (;;) {
					size_t label_len = scan_name(p);
					if (label_len == 0 || p[label_len] != '=' || p[label_len + 1] != '"') {
						PROBLEM("bad label");
						goto next_line;
					}
					const char *value = p + label_len + 2;
					const char *quote = value;
					while (quote < line + len && *quote != '"' && *quote != '\\')
						quote++;
					if (quote >= line + len || *quote != '"') {
						PROBLEM("unterminated or escaped label value");
						goto next_line;
					}
					if (label_len == 2 && memcmp(p, "le", 2) == 0 &&
					    (size_t)(quote - value) < sizeof(le)) {
						memcpy(le, value, (size_t)(quote - value));
						le[quote - value] = '\0';
					}
					p = quote + 1;
					if (*p == ',') {
						p++;
						continue;
					}
					if (*p != '}') {
						PROBLEM("labels not closed");
						goto next_line;
					}
					p++;
					break;
				}
			}
			if (*p != ' ' || !valid_value(p + 1, (size_t)(line + len - p - 1))) {
				PROBLEM("bad sample value");
				goto next_line;
			}
			unsigned long long value = strtoull(p + 1, NULL, 10);

			/* The family: the name itself, or a histogram's base name. */
			struct family *f = find_family(fams, num_fams, line, name_len);
			const char *suffix = NULL;
			static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
			for (unsigned i = 0; !f && i < 3; i++) {
				if (ends_with(line, name_len, suffixes[i])) {
					f = find_family(fams, num_fams, line,
							name_len - strlen(suffixes[i]));
					if (f && strcmp(f->type, "histogram") == 0)
						suffix = suffixes[i];
					else
						f = NULL;
				}
			}
			if (!f || !f->help || !f->type[0]) {
				PROBLEM("sample %.*s without HELP and TYPE before it", (int)name_len, line);
				goto next_line;
			}
			if (strcmp(f->type, "histogram") == 0 && !suffix) {
				PROBLEM("histogram sample without _bucket, _sum or _count");
				goto next_line;
			}
			if (f != current) {
				if (f->samples_done)
					PROBLEM("samples of %s are not contiguous", f->name);
				if (current)
					current->samples_done = true;
				current = f;
				last_le = -1;
				last_bucket = 0;
				saw_inf = false;
			}
			f->num_samples++;
			if (suffix && strcmp(suffix, "_bucket") == 0) {
				if (le[0] == '\0') {
					PROBLEM("bucket without le");
					goto next_line;
				}
				if (saw_inf)
					PROBLEM("bucket after le=\"+Inf\"");
				double bound = strcmp(le, "+Inf") == 0 ? 1e300 : strtod(le, NULL);
				if (bound <= last_le)
					PROBLEM("le=\"%s\" does not increase", le);
				if (value < last_bucket)
					PROBLEM("bucket le=\"%s\" is not cumulative", le);
				last_le = bound;
				last_bucket = value;
				if (strcmp(le, "+Inf") == 0) {
					saw_inf = true;
					inf_bucket = value;
				}
			} else if (suffix && strcmp(suffix, "_count") == 0) {
				if (!saw_inf)
					PROBLEM("_count before the +Inf bucket");
				else if (value != inf_bucket)
					PROBLEM("_count %llu != +Inf bucket %llu", value, inf_bucket);
			}
		}
next_line:
		line = next;
	}
	for (unsigned i = 0; i < num_fams; i++) {
		if (!fams[i].num_samples) {
			fprintf(stderr, "    family %s has no samples\n", fams[i].name);
			problems++;
		}
	}
#undef PROBLEM
	return problems;
}

/* --------------------------------------------------------------- tests */

static void test_render_values(void)
{
	struct tern_server srv;
	if (!make_server(&srv, 2))
		return;
	struct tern_counters *a = tern_worker_counters(srv.workers[0]);
	struct tern_counters *b = tern_worker_counters(srv.workers[1]);
	struct tern_histogram *ha = tern_worker_histogram(srv.workers[0]);
	struct tern_histogram *hb = tern_worker_histogram(srv.workers[1]);
	/* Each worker's on cache lines of its own. */
	CHECK_EQ_UINT((uintptr_t)a % 64, 0);
	CHECK_EQ_UINT((uintptr_t)ha % 64, 0);
	CHECK_EQ_UINT((uintptr_t)hb % 64, 0);

	tern_counter_add(&a->conns_total, 10);
	tern_counter_add(&b->conns_total, 5);
	tern_counter_add(&a->conns_active, 2);
	tern_counter_add(&b->conns_active, 1);
	tern_counter_add(&a->handshakes_full, 4);
	tern_counter_add(&b->handshakes_full, 3);
	tern_counter_add(&b->handshakes_resumed, 6);
	tern_counter_add(&a->handshake_failures, 1);
	tern_counter_add(&b->handshake_failures, 1);
	tern_counter_add(&a->probe_connections, 5);
	tern_counter_add(&b->probe_connections, 8);
	tern_counter_add(&a->bytes_client_in, 1000);
	tern_counter_add(&b->bytes_client_in, 234);
	tern_counter_add(&a->bytes_client_out, 18446744073709551000ull); /* near 2^64 */
	tern_counter_add(&a->backend_connect_failures, 9);
	tern_counter_add(&a->tickets_requested, 11);
	tern_counter_add(&b->tickets_sent, 12);
	atomic_store(&srv.reload_failures, 3);
	tern_histogram_observe(ha, 400);      /* le 0.0005 */
	tern_histogram_observe(ha, 1000);     /* le 0.001, inclusive */
	tern_histogram_observe(hb, 1500);     /* le 0.002 */
	tern_histogram_observe(hb, 2500000);  /* le 2.5 */
	tern_histogram_observe(hb, 30000000); /* +Inf only */

	char *text = render(&srv);
	tern_server_join_and_free(&srv);
	if (!text)
		return;
	CHECK(strncmp(text, "# HELP tern_connections_active ", 31) == 0);
	CHECK_LINE(text, "# TYPE tern_connections_active gauge");
	CHECK_LINE(text, "tern_connections_active 3");
	CHECK_LINE(text, "# TYPE tern_connections_total counter");
	CHECK_LINE(text, "tern_connections_total 15");
	CHECK_LINE(text, "tern_handshakes_total{kind=\"full\"} 7");
	CHECK_LINE(text, "tern_handshakes_total{kind=\"resumed\"} 6");
	CHECK_LINE(text, "tern_handshake_failures_total 2");
	CHECK_LINE(text, "# TYPE tern_probe_connections_total counter");
	CHECK_LINE(text, "tern_probe_connections_total 13");
	CHECK_LINE(text, "# TYPE tern_log_dropped_total counter");
	CHECK_LINE(text, "tern_log_dropped_total 0"); /* nothing logged through a buffer here */
	CHECK_LINE(text, "tern_bytes_total{direction=\"client_in\"} 1234");
	CHECK_LINE(text, "tern_bytes_total{direction=\"client_out\"} 18446744073709551000");
	CHECK_LINE(text, "tern_tickets_requested_total 11");
	CHECK_LINE(text, "tern_tickets_sent_total 12");
	CHECK_LINE(text, "tern_backend_connect_failures_total 9");
	CHECK_LINE(text, "# TYPE tern_reload_failures_total counter");
	CHECK_LINE(text, "tern_reload_failures_total 3");
	CHECK_LINE(text, "# TYPE tern_workers gauge");
	CHECK_LINE(text, "tern_workers 2");
	CHECK_LINE(text, "# HELP tern_config_num_tickets TLS 1.3 session tickets sent after a full "
			 "handshake (--num-tickets).");
	CHECK_LINE(text, "# TYPE tern_config_num_tickets gauge");
	CHECK_LINE(text, "tern_config_num_tickets 3");
	CHECK_LINE(text, "# TYPE tern_build_info gauge");
	CHECK_LINE(text, "tern_build_info{version=\"" TERN_VERSION "\",io=\"uring\"} 1");
	/* The standard process series, as Prometheus' client libraries name
	 * and describe them (their values: process_stats_test.c). */
	static const char *const process[] = {
		"# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
		"# TYPE process_cpu_seconds_total counter",
		"# HELP process_open_fds Number of open file descriptors.",
		"# TYPE process_open_fds gauge",
		"# HELP process_max_fds Maximum number of open file descriptors.",
		"# TYPE process_max_fds gauge",
		"# HELP process_virtual_memory_bytes Virtual memory size in bytes.",
		"# TYPE process_virtual_memory_bytes gauge",
		"# HELP process_resident_memory_bytes Resident memory size in bytes.",
		"# TYPE process_resident_memory_bytes gauge",
		"# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
		"# TYPE process_start_time_seconds gauge",
	};
	for (size_t i = 0; i < sizeof(process) / sizeof(process[0]); i++)
		CHECK_LINE(text, process[i]);

	static const char histogram[] =
		"# HELP tern_handshake_duration_seconds Time from accepting a client connection to "
		"its TLS handshake completing.\n"
		"# TYPE tern_handshake_duration_seconds histogram\n"
		"tern_handshake_duration_seconds_bucket{le=\"0.0005\"} 1\n"
		"tern_handshake_duration_seconds_bucket{le=\"0.001\"} 2\n"
		"tern_handshake_duration_seconds_bucket{le=\"0.002\"} 3\n"
		"tern_handshake_duration_seconds_bucket{le=\"0.005\"} 3\n"
		"tern_handshake_duration_seconds_bucket{le=\"0.01\"} 3\n"
		"tern_handshake_duration_seconds_bucket{le=\"0.025\"} 3\n"
		"tern_handshake_duration_seconds_bucket{le=\"0.05\"} 3\n"
		"tern_handshake_duration_seconds_bucket{le=\"0.1\"} 3\n"
		"tern_handshake_duration_seconds_bucket{le=\"0.25\"} 3\n"
		"tern_handshake_duration_seconds_bucket{le=\"0.5\"} 3\n"
		"tern_handshake_duration_seconds_bucket{le=\"1\"} 3\n"
		"tern_handshake_duration_seconds_bucket{le=\"2.5\"} 4\n"
		"tern_handshake_duration_seconds_bucket{le=\"5\"} 4\n"
		"tern_handshake_duration_seconds_bucket{le=\"10\"} 4\n"
		"tern_handshake_duration_seconds_bucket{le=\"+Inf\"} 5\n"
		"tern_handshake_duration_seconds_sum 32.5029\n"
		"tern_handshake_duration_seconds_count 5\n";
	const char *hist = strstr(text, "# HELP tern_handshake_duration_seconds ");
	if (CHECK(hist != NULL))
		CHECK_EQ_STR(hist, histogram); /* and it is the last family */
	CHECK_EQ_UINT(check_format(text), 0);
	free(text);
}

/* Ticket key generations with worker 1's queue full (a worker that does
 * not run, as these do not): the new set reaches worker 0's queue, worker
 * 1 is owed it and a retry cannot change that; neither worker has run to
 * adopt it, so both are behind. The sets still queued are released by
 * tern_server_join_and_free (ASan: no leak). */
static void test_render_key_generations(void)
{
	struct tern_server srv;
	struct tern_ticket_keys *next = NULL;
	unsigned pushed = 0;

	if (!make_server(&srv, 2))
		return;
	char *text = render(&srv);
	if (text) {
		CHECK_LINE(text, "# TYPE tern_ticket_key_generation_latest gauge");
		CHECK_LINE(text, "tern_ticket_key_generation_latest 1");
		CHECK_LINE(text, "# TYPE tern_ticket_key_generation gauge");
		CHECK_LINE(text, "tern_ticket_key_generation{worker=\"0\"} 1");
		CHECK_LINE(text, "tern_ticket_key_generation{worker=\"1\"} 1");
		CHECK_LINE(text, "tern_ticket_key_workers_behind 0");
		free(text);
	}
	for (;;) {
		struct tern_request ping = {.kind = TERN_REQ_KIND_PING};
		if (tern_worker_push(srv.workers[1], &ping) < 0)
			break;
		pushed++;
	}
	CHECK_EQ_UINT(pushed, TERN_WORKER_QUEUE_CAPACITY);
	if (CHECK_EQ_INT(tern_ticket_keys_new_random(&next), 0)) {
		CHECK_EQ_UINT(tern_server_adopt_ticket_keys(&srv, next), 1);
		CHECK(tern_key_handoff_owed(&srv.key_handoff, 1));
		CHECK(!tern_key_handoff_owed(&srv.key_handoff, 0));
		CHECK_EQ_UINT(tern_server_retry_ticket_keys(&srv), 1);
		CHECK_EQ_UINT(tern_server_ticket_keys_behind(&srv, 2), 2);
		CHECK_EQ_UINT(tern_server_ticket_keys_behind(&srv, 1), 0);
	}
	text = render(&srv);
	tern_server_join_and_free(&srv);
	if (!text)
		return;
	CHECK_LINE(text, "tern_ticket_key_generation_latest 2");
	CHECK_LINE(text, "tern_ticket_key_generation{worker=\"0\"} 1");
	CHECK_LINE(text, "tern_ticket_key_generation{worker=\"1\"} 1");
	CHECK_LINE(text, "tern_ticket_key_workers_behind 2");
	CHECK_EQ_UINT(check_format(text), 0);
	free(text);
}

static void test_render_empty(void)
{
	/* No traffic yet, and a server with no worker at all: every metric
	 * is there with 0, so dashboards and alerts never see a gap. */
	for (unsigned n = 0; n <= 1; n++) {
		struct tern_server srv;
		if (!make_server(&srv, n))
			return;
		char *text = render(&srv);
		tern_server_join_and_free(&srv);
		if (!text)
			return;
		static const char *const zeros[] = {
			"tern_connections_active 0",
			"tern_connections_total 0",
			"tern_handshakes_total{kind=\"full\"} 0",
			"tern_handshakes_total{kind=\"resumed\"} 0",
			"tern_handshake_failures_total 0",
			"tern_probe_connections_total 0",
			"tern_log_dropped_total 0",
			"tern_bytes_total{direction=\"client_in\"} 0",
			"tern_bytes_total{direction=\"client_out\"} 0",
			"tern_tickets_requested_total 0",
			"tern_tickets_sent_total 0",
			"tern_backend_connect_failures_total 0",
			"tern_reload_failures_total 0",
			"tern_handshake_duration_seconds_bucket{le=\"+Inf\"} 0",
			"tern_handshake_duration_seconds_sum 0",
			"tern_handshake_duration_seconds_count 0",
		};
		for (size_t i = 0; i < sizeof(zeros) / sizeof(zeros[0]); i++)
			CHECK_LINE(text, zeros[i]);
		CHECK_LINE(text, n ? "tern_workers 1" : "tern_workers 0");
		CHECK_LINE(text, "tern_config_num_tickets 3");
		CHECK_EQ_UINT(check_format(text), 0);
		free(text);
	}
}

/* tern_build_info names the engine the workers run: what prepare chose
 * (io_uring on this host), and epoll when that is what runs. */
static void test_render_engine(void)
{
	struct tern_server srv;
	if (!make_server(&srv, 1))
		return;
	char *uring = render(&srv);
	srv.io_engine = TERN_IO_EPOLL;
	char *epoll = render(&srv);
	tern_server_join_and_free(&srv);
	if (uring) {
		CHECK_LINE(uring, "tern_build_info{version=\"" TERN_VERSION "\",io=\"uring\"} 1");
		CHECK_EQ_UINT(check_format(uring), 0);
	}
	if (epoll)
		CHECK_LINE(epoll, "tern_build_info{version=\"" TERN_VERSION "\",io=\"epoll\"} 1");
	free(uring);
	free(epoll);
}

/* The checker itself finds what it is there to find. */
static void test_checker(void)
{
	static const char *const bad[] = {
		"tern_x 1\n",                                            /* no HELP/TYPE */
		"# HELP a_total h\n# TYPE a_total counter\na_total x\n", /* bad value */
		"# HELP a h\n# TYPE a counter\na 1\n",                   /* counter without _total */
		"# TYPE a gauge\n# HELP a h\na 1\n",                     /* TYPE before HELP */
		"# HELP a h\n# TYPE a gauge\na 1\n# HELP b h\n# TYPE b gauge\nb 1\na 2\n",
		"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
		"h_sum 1\nh_count 1\n", /* not cumulative */
		"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
		"h_sum 1\nh_count 3\n", /* +Inf != count */
		"# HELP a h\n# TYPE a gauge\na{x=\"1} 1\n",               /* unterminated label */
		"# HELP a h\n# TYPE a gauge\na 1",                        /* no final newline */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fprintf(stderr, "(expected) checker case %zu:\n", i);
		CHECK(check_format(bad[i]) > 0);
	}
}

struct judge_case {
	const char *request;
	bool eof;
	int status;
	bool head;
};

static void test_http_judge(void)
{
	static const struct judge_case cases[] = {
		/* Complete and fine. */
		{"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", false, 200, false},
		{"GET /metrics HTTP/1.0\r\n\r\n", false, 200, false},
		{"HEAD /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", false, 200, true},
		{"GET /metrics?name[]=x HTTP/1.1\r\n\r\n", false, 200, false},
		{"GET http://10.0.0.1:9100/metrics HTTP/1.1\r\n\r\n", false, 200, false},
		{"GET /metrics HTTP/1.1\n\n", false, 200, false},         /* bare LF */
		{"\r\nGET /metrics HTTP/1.1\r\n\r\n", false, 200, false}, /* empty line first */
		{"GET /metrics HTTP/1.1\r\nUser-Agent: a\tb \x80\r\n\r\n", false, 200, false},
		{"GET /metrics HTTP/1.1\r\nX-Empty:\r\n\r\nleftover body", false, 200, false},
		/* Not found, not allowed. */
		{"GET / HTTP/1.1\r\n\r\n", false, 404, false},
		{"GET /other HTTP/1.1\r\n\r\n", false, 404, false},
		{"GET /metrics/ HTTP/1.1\r\n\r\n", false, 404, false},
		{"GET /METRICS HTTP/1.1\r\n\r\n", false, 404, false},
		{"HEAD /other HTTP/1.1\r\n\r\n", false, 404, true},
		{"GET http://host HTTP/1.1\r\n\r\n", false, 404, false},
		{"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", false, 405, false},
		{"DELETE /metrics HTTP/1.1\r\n\r\n", false, 405, false},
		{"get /metrics HTTP/1.1\r\n\r\n", false, 405, false}, /* methods are case-sensitive */
		{"POST /other HTTP/1.1\r\n\r\n", false, 404, false},
		/* Still coming. */
		{"", false, 0, false},
		{"G", false, 0, false},
		{"GET /metrics HTTP/1.1\r", false, 0, false},
		{"GET /metrics HTTP/1.1\r\n", false, 0, false},
		{"GET /metrics HTTP/1.1\r\nHost: x\r\n", false, 0, false},
		{"GET /metrics HTTP/1.1\r\nHost: x\r\n\r", false, 0, false},
		{"POST /metrics HTTP/1.1\r\n", false, 0, false}, /* the headers first, then 405 */
		/* Cut short. */
		{"GET /metrics HTTP/1.1\r\n", true, 400, false},
		{"GET /metr", true, 400, false},
		{"\r\n", true, 400, false},
		/* Garbage: 400 as soon as it shows. */
		{"\x16\x03\x01\x02\x00\x01", false, 400, false}, /* a TLS ClientHello */
		{"GET /metrics\x00", false, 400, false},
		{"GET /met\rrics HTTP/1.1\r\n\r\n", false, 400, false},
		{"GET /metrics\r\n\r\n", false, 400, false},           /* HTTP/0.9 */
		{"GET /metrics HTTP/2.0\r\n\r\n", false, 400, false},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false, 400, false},
		{"GET /metrics http/1.1\r\n\r\n", false, 400, false},
		{"GET  /metrics HTTP/1.1\r\n\r\n", false, 400, false}, /* two spaces */
		{"GET /metrics HTTP/1.1 \r\n\r\n", false, 400, false},
		{"GET metrics HTTP/1.1\r\n\r\n", false, 400, false},
		{"OPTIONS * HTTP/1.1\r\n\r\n", false, 400, false},
		{" GET /metrics HTTP/1.1\r\n\r\n", false, 400, false},
		{"GE(T /metrics HTTP/1.1\r\n\r\n", false, 400, false},
		{"hello\r\n", false, 400, false},
		{"GET /metrics HTTP/1.1\r\nNo colon\r\n\r\n", false, 400, false},
		{"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", false, 400, false},
		{"GET /metrics HTTP/1.1\r\n: x\r\n\r\n", false, 400, false},
		{"GET /metrics HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", false, 400, false},
		{"GET /metrics HTTP/1.1\r\nA: \x01\r\n", false, 400, false},
		{"GET /metrics HTTP/1.1\r\nA: b\rc\r\n\r\n", false, 400, false},
		{"GET /metrics HTTP/1.1\r\nA: \x7f", false, 400, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool head = !cases[i].head;
		enum tern_metrics_target target = TERN_METRICS_TARGET_READYZ;
		size_t len = strlen(cases[i].request);
		/* Requests holding a NUL are spelled up to and with it. */
		if (strncmp(cases[i].request, "GET /metrics\x00", 13) == 0)
			len = 13;
		int status = tern_metrics_http_judge(cases[i].request, len, cases[i].eof, &head,
						     &target);
		if (!CHECK_EQ_INT(status, cases[i].status))
			fprintf(stderr, "    case %zu: %s\n", i, cases[i].request);
		if (status == 200 || status == 404)
			CHECK(head == cases[i].head);
		/* Every request above that is not 400 names /metrics, or
		 * nothing served (which says /metrics too). */
		if (status == 200 || status == 405 || status == 404)
			CHECK_EQ_INT(target, TERN_METRICS_TARGET_METRICS);
	}

	/* The health probes, as a kubelet and curl send them: which one. */
	static const struct {
		const char *request;
		int status;
		bool head;
		enum tern_metrics_target target;
	} probes[] = {
		{"GET /healthz HTTP/1.1\r\nHost: 10.1.2.3:9100\r\nUser-Agent: kube-probe/1.29\r\n"
		 "Accept: */*\r\nConnection: close\r\n\r\n", 200, false, TERN_METRICS_TARGET_HEALTHZ},
		{"GET /readyz HTTP/1.1\r\n\r\n", 200, false, TERN_METRICS_TARGET_READYZ},
		{"HEAD /readyz HTTP/1.0\r\n\r\n", 200, true, TERN_METRICS_TARGET_READYZ},
		{"GET /healthz?verbose HTTP/1.1\r\n\r\n", 200, false, TERN_METRICS_TARGET_HEALTHZ},
		{"GET http://pod:9100/readyz HTTP/1.1\r\n\r\n", 200, false,
		 TERN_METRICS_TARGET_READYZ},
		{"POST /healthz HTTP/1.1\r\n\r\n", 405, false, TERN_METRICS_TARGET_HEALTHZ},
		{"GET /healthz/ HTTP/1.1\r\n\r\n", 404, false, TERN_METRICS_TARGET_METRICS},
		{"GET /health HTTP/1.1\r\n\r\n", 404, false, TERN_METRICS_TARGET_METRICS},
		{"GET /readyzz HTTP/1.1\r\n\r\n", 404, false, TERN_METRICS_TARGET_METRICS},
		{"GET /HEALTHZ HTTP/1.1\r\n\r\n", 404, false, TERN_METRICS_TARGET_METRICS},
		{"GET /livez HTTP/1.1\r\n\r\n", 404, false, TERN_METRICS_TARGET_METRICS},
	};
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		bool head = !probes[i].head;
		enum tern_metrics_target target = TERN_METRICS_TARGET_READYZ + 1; /* none */
		int status = tern_metrics_http_judge(probes[i].request, strlen(probes[i].request),
						     false, &head, &target);
		if (!CHECK_EQ_INT(status, probes[i].status) ||
		    !CHECK_EQ_INT(target, probes[i].target) || !CHECK(head == probes[i].head))
			fprintf(stderr, "    probe %zu: %s\n", i, probes[i].request);
	}

	/* The size bound: 8 KiB holding no end of the header is 431, an 8 KiB
	 * request that ends exactly there is fine. */
	static char big[TERN_METRICS_REQUEST_MAX];
	enum tern_metrics_target target;
	bool head;
	static const char start[] = "GET /metrics HTTP/1.1\r\nX: ";
	memset(big, 'a', sizeof(big));
	memcpy(big, start, sizeof(start) - 1);
	CHECK_EQ_INT(tern_metrics_http_judge(big, sizeof(big) - 1, false, &head, &target), 0);
	CHECK_EQ_INT(tern_metrics_http_judge(big, sizeof(big), false, &head, &target), 431);
	memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
	CHECK_EQ_INT(tern_metrics_http_judge(big, sizeof(big), false, &head, &target), 200);
	/* A request line alone that long. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	CHECK_EQ_INT(tern_metrics_http_judge(big, sizeof(big), false, &head, &target), 431);
	/* Empty lines count against the bound too. */
	memset(big, '\n', sizeof(big));
	CHECK_EQ_INT(tern_metrics_http_judge(big, sizeof(big), false, &head, &target), 431);

	/* Byte by byte: never an answer before the request is whole, and
	 * the same answer as all at once. */
	static const char *const whole[] = {
		"GET /metrics HTTP/1.1\r\nHost: localhost:9100\r\nAccept: text/plain\r\n\r\n",
		"HEAD /x?y HTTP/1.0\r\n\r\n",
		"GET /readyz HTTP/1.1\r\nHost: pod\r\n\r\n",
		"PUT /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
		size_t len = strlen(whole[i]);
		bool h1, h2;
		enum tern_metrics_target t1, t2;
		int all = tern_metrics_http_judge(whole[i], len, false, &h1, &t1);
		for (size_t n = 0; n < len; n++)
			CHECK_EQ_INT(tern_metrics_http_judge(whole[i], n, false, &h2, &t2), 0);
		CHECK(all != 0);
	}
}

int main(void)
{
	test_render_values();
	test_render_empty();
	test_render_key_generations();
	test_render_engine();
	test_checker();
	test_http_judge();
	return check_summary();
}
