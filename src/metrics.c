/* The --metrics endpoint: Prometheus text at GET /metrics, and the health
 * probes GET /healthz and /readyz (health.h).
 *
 * Rendering sums the workers' counters and histograms (relaxed loads, no
 * worker involved). Serving is a minimal HTTP/1.1 server on one thread
 * and one poll() loop (poll_server.c, given the HTTP exchange here as its
 * callbacks): each client is non-blocking, must send its request
 * within TERN_METRICS_REQUEST_MAX bytes and the whole exchange must end
 * within TERN_METRICS_CLIENT_TIMEOUT_MS, so a slow, silent or hostile
 * client costs one of TERN_METRICS_MAX_CLIENTS slots for a bounded time,
 * never the loop, and never the workers. And with every slot taken, the
 * client that has been connected longest without a complete request
 * gives its slot to the new one (reclaim_idle, poll_server.h): idle
 * connections, however many, do not lock a scraper out; only clients
 * being answered do, each for at most the exchange bound. Every answer closes the
 * connection (Connection: close): a scrape every few seconds gains
 * nothing from keep-alive, and a server that never reads a second request
 * has no request-smuggling or pipelining states to get wrong. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tern/backend_set.h"
#include "tern/backends.h"
#include "tern/clock.h"
#include "tern/escape.h"
#include "tern/health.h"
#include "tern/histogram.h"
#include "tern/io_probe.h"
#include "tern/list.h"
#include "tern/log.h"
#include "tern/metrics.h"
#include "tern/poll_server.h"
#include "tern/process_stats.h"
#include "tern/sock.h"
#include "tern/server.h"
#include "tern/worker.h"

/* ------------------------------------------------------------ rendering */

/* A growing output buffer; a failed allocation sticks, so the formatting
 * code stays linear and the error is looked at once, at the end. */
struct text {
	char *buf;
	size_t len, cap;
	bool failed;
};

__attribute__((format(printf, 2, 3)))
static void text_printf(struct text *t, const char *fmt, ...)
{
	va_list ap;

	if (t->failed)
		return;
	for (;;) {
		size_t room = t->cap - t->len;
		va_start(ap, fmt);
		int n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 4096;
		while (cap - t->len <= (size_t)n)
			cap *= 2;
		char *grown = realloc(t->buf, cap);
		if (!grown) {
			t->failed = true;
			return;
		}
		t->buf = grown;
		t->cap = cap;
	}
}

static void header(struct text *t, const char *name, const char *type, const char *help)
{
	text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(struct text *t, const char *name, const char *labels, uint64_t value)
{
	text_printf(t, "%s%s %llu\n", name, labels, (unsigned long long)value);
}

/* One series per ticket key held, named by fingerprint (never the key)
 * and role, valued with how long it has had that role: a fleet has
 * converged on a rotation when every instance shows the same
 * fingerprints in the same roles. -1 when the key file does not say (a
 * bare-line file). The labels are tern's own words, not a client's. */
static void render_ticket_keys(struct text *t, struct tern_server *srv)
{
	struct tern_key_view view;
	int64_t now = (int64_t)time(NULL);

	tern_key_view_get(&srv->key_view, &view);
	if (view.num == 0)
		return; /* not started yet (a test's server): no family without samples */
	header(t, "tern_ticket_key_age_seconds", "gauge",
	       "Ticket keys held, by fingerprint (first 12 hex digits of SHA-256 over the key) and "
	       "role (encrypt, staged, decrypt): seconds since the key took its role, -1 when "
	       "the key file does not say.");
	for (uint32_t i = 0; i < view.num; i++) {
		const struct tern_key_view_entry *e = &view.keys[i];
		long long age = e->since == TERN_TICKET_KEY_SINCE_UNKNOWN ? -1 : (long long)(now - e->since);
		text_printf(t, "tern_ticket_key_age_seconds{fingerprint=\"%s\",role=\"%s\"} %lld\n",
			    e->fingerprint, tern_ticket_key_role_name(e->role), age);
	}
	/* Which set each worker uses, against the newest (key_handoff.h): a
	 * worker behind for long is frozen or cannot drain its queue, and
	 * tickets do not resume across it meanwhile. */
	header(t, "tern_ticket_key_generation_latest", "gauge",
	       "Generation of the newest ticket key set: 1 at start, one more at each rotation or "
	       "reload of the key file.");
	sample(t, "tern_ticket_key_generation_latest", "", view.generation);
	header(t, "tern_ticket_key_generation", "gauge",
	       "Generation of the ticket key set each worker encrypts and decrypts with; below "
	       "tern_ticket_key_generation_latest while the newest set has not reached it.");
	unsigned behind = 0;
	for (unsigned i = 0; i < srv->num_workers; i++) {
		uint64_t used = tern_worker_ticket_key_generation(srv->workers[i]);
		char labels[32];
		snprintf(labels, sizeof(labels), "{worker=\"%u\"}", i);
		sample(t, "tern_ticket_key_generation", labels, used);
		behind += used != view.generation;
	}
	header(t, "tern_ticket_key_workers_behind", "gauge",
	       "Workers not using the newest ticket key set yet: tickets issued by the others get "
	       "full handshakes on them.");
	sample(t, "tern_ticket_key_workers_behind", "", behind);
}

/* A label value from text: escaped as everywhere tern shows bytes
 * (escape.h: printable ASCII, '"' and '\' as \xHH), then its '\'s
 * doubled, as the text format wants (a parser reads back the \xHH). */
static void label_value(const char *text, char *out, size_t out_len)
{
	char shown[TERN_ESCAPE_OUT_MAX];
	size_t used = 0;

	tern_escape(shown, sizeof(shown), text, strlen(text), 0);
	for (const char *p = shown; *p && used + 3 < out_len; p++) {
		if (*p == '\\')
			out[used++] = '\\';
		out[used++] = *p;
	}
	out[used] = '\0';
}

/* Per --backend, labelled with the address as configured: whether it is
 * up, its connects and failures, its open connections. No family at all
 * without backends (a test's server). */
static void render_backends(struct text *t, struct tern_server *srv)
{
	static const struct {
		const char *name, *type, *help;
	} families[] = {
		{"tern_backend_up", "gauge",
		 "1 when new connections may go to the backend: some address of it is up (not "
		 "skipped after a failed connect, not failing --backend-check)."},
		{"tern_backend_connects_total", "counter", "Connects to the backend that succeeded."},
		{"tern_backend_failures_total", "counter",
		 "Connects to the backend that failed or timed out."},
		{"tern_backend_open_connections", "gauge", "Connections to the backend open now."},
	};
	size_t n = srv->cfg->num_backends;
	if (!srv->backends || n == 0)
		return;
	struct tern_backend_summary *sums = calloc(n, sizeof(*sums));
	struct tern_backend_set *set = tern_backends_get(srv->backends);
	char label[2 * TERN_ESCAPE_OUT_MAX];
	uint64_t now = tern_clock_ms();

	if (!sums) {
		t->failed = true;
		tern_backend_set_unref(set);
		return;
	}
	for (size_t i = 0; i < n; i++)
		tern_backends_summarize(srv, set, (unsigned)i, now, &sums[i]);
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		header(t, families[f].name, families[f].type, families[f].help);
		for (size_t i = 0; i < n; i++) {
			const struct tern_backend_summary *s = &sums[i];
			uint64_t v = f == 0 ? s->up : f == 1 ? s->connects : f == 2 ? s->failures : s->open;
			label_value(s->text, label, sizeof(label));
			text_printf(t, "%s{backend=\"%s\"} %llu\n", families[f].name, label,
				    (unsigned long long)v);
		}
	}
	free(sums);
	tern_backend_set_unref(set);
}

/* The standard process_* series, with the names, HELP and TYPE
 * Prometheus' client libraries give them, so dashboards and alerts made
 * for any exporter read tern's too. A figure /proc does not give is left
 * out, never made up (process_stats.h). */
static void render_process(struct text *t)
{
	struct tern_process_stats p;

	tern_process_stats_read(&p);
	if (p.have_stat) {
		header(t, "process_cpu_seconds_total", "counter",
		       "Total user and system CPU time spent in seconds.");
		text_printf(t, "process_cpu_seconds_total %.2f\n", p.cpu_seconds);
	}
	if (p.open_fds >= 0) {
		header(t, "process_open_fds", "gauge", "Number of open file descriptors.");
		text_printf(t, "process_open_fds %lld\n", (long long)p.open_fds);
	}
	if (p.max_fds >= 0) {
		header(t, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		text_printf(t, "process_max_fds %lld\n", (long long)p.max_fds);
	}
	if (p.have_stat) {
		header(t, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
		sample(t, "process_virtual_memory_bytes", "", p.virtual_bytes);
		header(t, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
		sample(t, "process_resident_memory_bytes", "", p.resident_bytes);
	}
	if (p.have_start) {
		header(t, "process_start_time_seconds", "gauge",
		       "Start time of the process since unix epoch in seconds.");
		text_printf(t, "process_start_time_seconds %.2f\n", p.start_time_s);
	}
}

int tern_metrics_render(struct tern_server *srv, char **out, size_t *out_len)
{
	struct tern_totals c;
	struct tern_histogram_totals h = {0};
	struct text t = {0};
	char num[32];

	tern_server_totals(srv, &c);
	for (unsigned i = 0; i < srv->num_workers; i++)
		tern_histogram_add_to(tern_worker_histogram(srv->workers[i]), &h);

	header(&t, "tern_connections_active", "gauge", "Client connections open now.");
	sample(&t, "tern_connections_active", "", c.conns_active);
	header(&t, "tern_connections_total", "counter", "Client connections accepted.");
	sample(&t, "tern_connections_total", "", c.conns_total);
	header(&t, "tern_connections_refused_total", "counter",
	       "Client connections accepted and closed unserved, by reason: drain (accepted "
	       "while draining, or waiting in a listener's backlog when it closed), no_memory, "
	       "overflow (more accepted at once than could wait for a --max-conns slot).");
	sample(&t, "tern_connections_refused_total", "{reason=\"drain\"}", c.conns_refused_drain);
	sample(&t, "tern_connections_refused_total", "{reason=\"no_memory\"}",
	       c.conns_refused_no_memory);
	sample(&t, "tern_connections_refused_total", "{reason=\"overflow\"}",
	       c.conns_refused_overflow);
	header(&t, "tern_handshakes_total", "counter",
	       "TLS handshakes completed, by kind: full, or resumed from a session ticket or "
	       "the session cache.");
	sample(&t, "tern_handshakes_total", "{kind=\"full\"}", c.handshakes_full);
	sample(&t, "tern_handshakes_total", "{kind=\"resumed\"}", c.handshakes_resumed);
	header(&t, "tern_handshake_failures_total", "counter",
	       "Client connections that sent bytes and ended before their TLS handshake "
	       "completed (connections that sent none are probes).");
	sample(&t, "tern_handshake_failures_total", "", c.handshake_failures);
	header(&t, "tern_probe_connections_total", "counter",
	       "Client connections that closed before sending a byte (health probes): never "
	       "handshake failures.");
	sample(&t, "tern_probe_connections_total", "", c.probe_connections);
	header(&t, "tern_accept_proxy_failures_total", "counter",
	       "Client connections ended before TLS by --accept-proxy, by reason: not_allowed "
	       "(source not in --accept-proxy-from), invalid (a bad PROXY header), truncated "
	       "(closed in the middle of one), timeout (none whole within --handshake-timeout). "
	       "Never handshake failures.");
	sample(&t, "tern_accept_proxy_failures_total", "{reason=\"not_allowed\"}", c.proxy_not_allowed);
	sample(&t, "tern_accept_proxy_failures_total", "{reason=\"invalid\"}", c.proxy_header_invalid);
	sample(&t, "tern_accept_proxy_failures_total", "{reason=\"truncated\"}",
	       c.proxy_header_truncated);
	sample(&t, "tern_accept_proxy_failures_total", "{reason=\"timeout\"}", c.proxy_header_timeout);
	header(&t, "tern_log_dropped_total", "counter",
	       "Log lines dropped because stderr was slower than they came: the log buffer was "
	       "full, or stderr failed.");
	sample(&t, "tern_log_dropped_total", "", tern_log_dropped());
	header(&t, "tern_bytes_total", "counter",
	       "Plaintext bytes, by direction: client_in from clients to backends, client_out "
	       "from backends to clients.");
	sample(&t, "tern_bytes_total", "{direction=\"client_in\"}", c.bytes_client_in);
	sample(&t, "tern_bytes_total", "{direction=\"client_out\"}", c.bytes_client_out);
	header(&t, "tern_tickets_requested_total", "counter",
	       "Session tickets requested on demand (tickets command, --ticket-refresh).");
	sample(&t, "tern_tickets_requested_total", "", c.tickets_requested);
	header(&t, "tern_tickets_sent_total", "counter", "Session tickets sent to clients.");
	sample(&t, "tern_tickets_sent_total", "", c.tickets_sent);
	header(&t, "tern_backend_connect_failures_total", "counter",
	       "Backend connection attempts that failed or timed out.");
	sample(&t, "tern_backend_connect_failures_total", "", c.backend_connect_failures);
	header(&t, "tern_backend_unavailable_total", "counter",
	       "Client connections ended because no backend could be connected to "
	       "(reason=backend_unavailable).");
	sample(&t, "tern_backend_unavailable_total", "", c.backend_unavailable);
	render_backends(&t, srv);
	header(&t, "tern_read_buffer_misses_total", "counter",
	       "Reads that found none of the worker's --read-buffers offered: more are offered, "
	       "and when all are taken the read uses a buffer of the connection's own.");
	sample(&t, "tern_read_buffer_misses_total", "", c.read_buffer_misses);
	header(&t, "tern_reload_failures_total", "counter",
	       "Configuration reloads that failed and kept the running configuration.");
	sample(&t, "tern_reload_failures_total", "",
	       atomic_load_explicit(&srv->reload_failures, memory_order_relaxed));
	header(&t, "tern_workers", "gauge", "Worker threads.");
	sample(&t, "tern_workers", "", srv->num_workers);
	header(&t, "tern_config_num_tickets", "gauge",
	       "TLS 1.3 session tickets sent after a full handshake (--num-tickets).");
	sample(&t, "tern_config_num_tickets", "", srv->cfg->num_tickets);
	/* Always 1: the facts are the labels, to join on or to count by
	 * (e.g. how many of a fleet fell back to epoll). */
	header(&t, "tern_build_info", "gauge",
	       "The version running and the I/O engine its workers run: uring or epoll (--io; "
	       "with auto, epoll when io_uring was refused at start).");
	text_printf(&t, "tern_build_info{version=\"%s\",io=\"%s\"} 1\n", TERN_VERSION,
		    tern_io_probe_engine_name(srv->io_engine));

	render_ticket_keys(&t, srv);
	render_process(&t);

	header(&t, "tern_handshake_duration_seconds", "histogram",
	       "Time from accepting a client connection to its TLS handshake completing.");
	for (unsigned i = 0; i < TERN_HISTOGRAM_NUM_BUCKETS; i++) {
		if (i < TERN_HISTOGRAM_NUM_BOUNDS)
			tern_histogram_format_seconds(tern_histogram_bounds_us[i], num, sizeof(num));
		else
			snprintf(num, sizeof(num), "+Inf");
		text_printf(&t, "tern_handshake_duration_seconds_bucket{le=\"%s\"} %llu\n", num,
			    (unsigned long long)h.cumulative[i]);
	}
	tern_histogram_format_seconds(h.sum_us, num, sizeof(num));
	text_printf(&t, "tern_handshake_duration_seconds_sum %s\n", num);
	sample(&t, "tern_handshake_duration_seconds_count", "", h.count);

	if (t.failed || !t.buf) {
		free(t.buf);
		return -ENOMEM;
	}
	*out = t.buf;
	*out_len = t.len;
	return 0;
}

/* ------------------------------------------------------ judging requests */

/* RFC 9110 section 5.6.2: the characters of a method or a field name. */
static bool is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* A request that has not ended yet: wait, or give up. */
static int incomplete(size_t len, bool eof)
{
	if (len >= TERN_METRICS_REQUEST_MAX)
		return 431;
	return eof ? 400 : 0;
}

/* The paths served, matched exactly (case-sensitive, as RFC 3986 has
 * paths): a path that differs in any byte is 404. */
static const struct {
	const char *path;
	enum tern_metrics_target target;
} served_paths[] = {
	{"/metrics", TERN_METRICS_TARGET_METRICS},
	{"/healthz", TERN_METRICS_TARGET_HEALTHZ},
	{"/readyz", TERN_METRICS_TARGET_READYZ},
};

/* Which target path names; false for none. */
static bool find_target(const char *path, size_t path_len, enum tern_metrics_target *out)
{
	for (size_t i = 0; i < sizeof(served_paths) / sizeof(served_paths[0]); i++) {
		if (strlen(served_paths[i].path) == path_len &&
		    memcmp(path, served_paths[i].path, path_len) == 0) {
			*out = served_paths[i].target;
			return true;
		}
	}
	return false;
}

/* "METHOD SP TARGET SP HTTP/1.x" (RFC 9112 section 3), its characters
 * already checked to be visible ASCII or spaces. */
static int judge_request_line(const char *s, size_t n, bool *out_head,
			      enum tern_metrics_target *out_target)
{
	size_t i = 0;

	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	size_t method_len = i;
	if (method_len == 0 || i >= n || s[i] != ' ')
		return 400;
	const char *target = s + ++i;
	while (i < n && s[i] != ' ')
		i++;
	size_t target_len = (size_t)(s + i - target);
	if (target_len == 0 || i >= n || s[i] != ' ')
		return 400;
	i++;
	if (n - i != 8 || (memcmp(s + i, "HTTP/1.1", 8) != 0 && memcmp(s + i, "HTTP/1.0", 8) != 0))
		return 400;

	/* origin-form "/path?query", or absolute-form "http://host/path"
	 * (which a server must accept, RFC 9112 section 3.2.2). */
	const char *path = target;
	size_t path_len = target_len;
	size_t scheme = 0;
	if (target_len >= 7 && strncasecmp(target, "http://", 7) == 0)
		scheme = 7;
	else if (target_len >= 8 && strncasecmp(target, "https://", 8) == 0)
		scheme = 8;
	if (scheme) {
		const char *slash = memchr(target + scheme, '/', target_len - scheme);
		path = slash ? slash : "/";
		path_len = slash ? target_len - (size_t)(slash - target) : 1;
	} else if (target[0] != '/') {
		return 400; /* "*" (OPTIONS) or nonsense */
	}
	const char *query = memchr(path, '?', path_len);
	if (query)
		path_len = (size_t)(query - path);

	bool get = method_len == 3 && memcmp(s, "GET", 3) == 0;
	bool head = method_len == 4 && memcmp(s, "HEAD", 4) == 0;
	*out_head = head;
	if (!find_target(path, path_len, out_target))
		return 404;
	return get || head ? 200 : 405;
}

int tern_metrics_http_judge(const char *in, size_t len, bool eof, bool *out_head,
			    enum tern_metrics_target *out_target)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t pos = 0;

	*out_head = false;
	*out_target = TERN_METRICS_TARGET_METRICS;
	/* Empty lines before the request line are ignored (RFC 9112 section
	 * 2.2); the size bound still counts them. */
	while (pos < len && (p[pos] == '\r' || p[pos] == '\n'))
		pos++;
	const unsigned char *nl = memchr(p + pos, '\n', len - pos);
	size_t end = nl ? (size_t)(nl - p) : len;
	/* Checked before the line is complete, so that a TLS ClientHello or
	 * binary junk gets its 400 at once rather than at the timeout. */
	for (size_t i = pos; i < end; i++) {
		if (p[i] == '\r' && i + 1 == end)
			continue; /* the CR of CRLF, or the last byte so far */
		if (p[i] < 0x20 || p[i] > 0x7e)
			return 400;
	}
	if (!nl)
		return incomplete(len, eof);
	size_t line_len = end - pos - (end > pos && p[end - 1] == '\r');
	int status = judge_request_line(in + pos, line_len, out_head, out_target);
	if (status == 400)
		return 400;

	/* Header fields up to the empty line: only their form is checked,
	 * none of them changes the answer. */
	for (pos = end + 1;; pos = end + 1) {
		nl = memchr(p + pos, '\n', len - pos);
		end = nl ? (size_t)(nl - p) : len;
		for (size_t i = pos; i < end; i++) {
			if (p[i] == '\r' && i + 1 == end)
				continue;
			/* Field values may hold HTAB and obs-text (RFC 9110 5.5). */
			if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
				return 400;
		}
		if (!nl)
			return incomplete(len, eof);
		size_t field_len = end - pos - (end > pos && p[end - 1] == '\r');
		if (field_len == 0)
			return status;
		/* "name:" with no space before the colon (RFC 9112 section 5.1),
		 * and no line folding (a line starting with whitespace). */
		size_t k = pos;
		while (k < pos + field_len && is_tchar(p[k]))
			k++;
		if (k == pos || k == pos + field_len || p[k] != ':')
			return 400;
	}
}

/* -------------------------------------------------------------- serving */

enum client_state {
	CLIENT_READING,  /* the request line and headers */
	CLIENT_WRITING,  /* the response */
	CLIENT_DRAINING, /* response sent and FIN too: reading to EOF */
};

/* After the response, unread request bytes (a POST body) would make
 * close() send a reset that can destroy the response in flight (RFC 9112
 * section 9.6): the client gets this long to read it and close first. */
#define DRAIN_MS 1000

struct metrics_client {
	struct tern_poll_client base; /* fd, deadline, the response being written */
	enum client_state state;
	size_t in_len;
	char in[TERN_METRICS_REQUEST_MAX];
};

struct tern_metrics {
	struct tern_server *srv;
	struct tern_poll_server *ps;
};

/* Sent to a client beyond TERN_METRICS_MAX_CLIENTS, which is then closed. */
#define BUSY_BODY "503 Service Unavailable: too many clients\n"
static const char busy_reply[] =
	"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; "
	"charset=utf-8\r\nContent-Length: 42\r\nConnection: close\r\n\r\n" BUSY_BODY;
_Static_assert(sizeof(BUSY_BODY) - 1 == 42, "update the 503 Content-Length");
#undef BUSY_BODY

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	default:  return "Internal Server Error";
	}
}

/* The whole response for a judged request; false when out of memory. */
static bool client_respond(struct tern_metrics *m, struct metrics_client *cl, int status,
			   bool head, enum tern_metrics_target target)
{
	char *body = NULL;
	size_t body_len = 0;
	const char *type = TERN_METRICS_CONTENT_TYPE;
	char small[160];

	if (status == 200 && target == TERN_METRICS_TARGET_METRICS &&
	    tern_metrics_render(m->srv, &body, &body_len) < 0)
		status = 500;
	if (status == 200 && target != TERN_METRICS_TARGET_METRICS) {
		/* A probe: the verdict is the status, the reason the body
		 * (200 "ok", or 503 naming the worker or the drain). */
		status = tern_health_check(m->srv, target == TERN_METRICS_TARGET_READYZ
							   ? TERN_HEALTH_READY : TERN_HEALTH_LIVE,
					   TERN_HEALTH_BOUND_MS, small, sizeof(small));
		body_len = strlen(small);
		type = "text/plain; charset=utf-8";
	} else if (status != 200) {
		/* A short reason, as plain text, so curl shows something. */
		body_len = (size_t)snprintf(small, sizeof(small), "%d %s%s\n", status,
					    status_text(status),
					    status == 404 ? ": the metrics are at /metrics, the "
							    "health probes at /healthz and /readyz"
							  : "");
		type = "text/plain; charset=utf-8";
	}
	struct text t = {0};
	text_printf(&t, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		    "Connection: close\r\n\r\n",
		    status, status_text(status), type, body_len,
		    status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head)
		text_printf(&t, "%.*s", (int)body_len, body ? body : small);
	free(body);
	bool ok = !t.failed && tern_poll_client_append(&cl->base, t.buf, t.len) == 0;
	free(t.buf);
	if (ok)
		cl->state = CLIENT_WRITING;
	return ok;
}

/* Reads what is there; answers once the request is complete or hopeless.
 * False: close now. */
static bool client_read(struct tern_metrics *m, struct metrics_client *cl)
{
	for (;;) {
		size_t room = sizeof(cl->in) - cl->in_len;
		ssize_t n = room ? recv(cl->base.fd, cl->in + cl->in_len, room, 0) : 0;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		bool eof = n == 0 && room > 0;
		if (eof && cl->in_len == 0)
			return false; /* connected and left: nothing to answer */
		cl->in_len += (size_t)n;
		bool head = false;
		enum tern_metrics_target target;
		int status = tern_metrics_http_judge(cl->in, cl->in_len, eof, &head, &target);
		if (status == 0 && !eof && cl->in_len < sizeof(cl->in))
			continue;
		if (status == 0)
			status = 400; /* the judge answers at EOF and when full: a backstop */
		return client_respond(m, cl, status, head, target);
	}
}

/* Writes what it can; after the last byte, sends FIN and starts draining.
 * False: close now. */
static bool client_write(struct metrics_client *cl, uint64_t now)
{
	int ret = tern_poll_client_flush(&cl->base);
	if (ret <= 0)
		return ret == 0;
	if (shutdown(cl->base.fd, SHUT_WR) < 0)
		return false;
	cl->state = CLIENT_DRAINING;
	if (cl->base.deadline_ms > now + DRAIN_MS)
		cl->base.deadline_ms = now + DRAIN_MS;
	return true;
}

/* Discards what the client still sends. False: it closed, or failed. */
static bool client_drain(struct metrics_client *cl)
{
	char sink[4096];
	for (;;) {
		ssize_t n = recv(cl->base.fd, sink, sizeof(sink), 0);
		if (n > 0)
			continue;
		return n < 0 && (errno == EAGAIN || errno == EINTR);
	}
}

/* The poll-server's turn callback (poll_server.h): a client waits for
 * POLLOUT while its response is pending, for POLLIN otherwise, and is
 * closed by the server at its deadline, the bound on the whole exchange. */
static enum tern_poll_verdict client_turn(void *owner, struct tern_poll_client *base, short rev,
					  uint64_t now)
{
	struct metrics_client *cl = tern_container_of(base, struct metrics_client, base);
	bool keep = true;

	if (rev & (POLLIN | POLLHUP | POLLERR)) {
		if (cl->state == CLIENT_READING)
			keep = client_read(owner, cl);
		else if (cl->state == CLIENT_DRAINING)
			keep = client_drain(cl);
	}
	/* A response is tried at once: usually it all fits the socket buffer
	 * and the client is done in one pass. */
	if (keep && cl->state == CLIENT_WRITING &&
	    ((rev & (POLLOUT | POLLIN)) || cl->base.out_off == 0))
		keep = client_write(cl, now);
	/* Idle, its slot reclaimable, from its first turn while no request
	 * is complete (partial bytes do not renew it: a slow-loris stays the
	 * oldest idle client); never again once it is answered (a draining
	 * client is bounded by DRAIN_MS, and closing it early could reset
	 * the answer in flight). */
	tern_poll_client_mark_idle(&cl->base, cl->state == CLIENT_READING, now);
	return keep ? TERN_POLL_WAIT : TERN_POLL_CLOSE;
}

/* Without SO_REUSEPORT: a second tern on the same --metrics is an error. */
static int bind_metrics(const struct tern_addr *addr, char *err, size_t err_len)
{
	char why[TERN_ADDR_TEXT_MAX + 128];
	int fd = tern_sock_listen(addr, TERN_SOCK_NONBLOCK, why, sizeof(why));
	if (fd < 0)
		snprintf(err, err_len, "--metrics: %s", why);
	return fd;
}

int tern_metrics_start(struct tern_server *srv, struct tern_metrics **out, char *err,
		       size_t err_len)
{
	const struct tern_config *cfg = srv->cfg;
	int ret;

	*out = NULL;
	if (!cfg->metrics_enabled)
		return 0;
	struct tern_metrics *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, err_len, "--metrics: out of memory");
		return -ENOMEM;
	}
	m->srv = srv;
	int listen_fd = bind_metrics(&cfg->metrics_addr, err, err_len);
	if (listen_fd < 0) {
		ret = listen_fd;
		goto fail;
	}
	const struct tern_poll_server_config pcfg = {
		.name = "metrics",
		.max_clients = TERN_METRICS_MAX_CLIENTS,
		.client_size = sizeof(struct metrics_client),
		.client_timeout_ms = TERN_METRICS_CLIENT_TIMEOUT_MS,
		.busy_reply = busy_reply,
		.reclaim_idle = true,
		/* No write_stall_ms: the exchange bound is shorter than any
		 * useful one. */
		.owner = m,
		.turn = client_turn,
	};
	ret = tern_poll_server_new(&pcfg, listen_fd, &m->ps);
	if (ret < 0) {
		snprintf(err, err_len, "--metrics: %s", strerror(-ret));
		goto fail;
	}
	ret = tern_poll_server_start(m->ps);
	if (ret < 0) {
		snprintf(err, err_len, "--metrics: cannot start the metrics thread: %s",
			 strerror(-ret));
		goto fail;
	}
	tern_log(TERN_LOG_INFO, "metrics: serving GET /metrics, /healthz and /readyz on %s",
		 cfg->metrics_addr.text);
	*out = m;
	return 0;
fail:
	tern_metrics_stop(m);
	return ret;
}

void tern_metrics_stop(struct tern_metrics *m)
{
	if (!m)
		return;
	tern_poll_server_free(m->ps);
	free(m);
}
