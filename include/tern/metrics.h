/* Metrics: the Prometheus text format (SPEC section 5) and the --metrics
 * endpoint that serves it, with the health probes GET /healthz and
 * /readyz (health.h) beside it.
 *
 * The endpoint is its own thread with one poll() loop over a TCP listening
 * socket and at most TERN_METRICS_MAX_CLIENTS non-blocking clients: the
 * control plane, not the data path. It reads only atomics the workers
 * write (counters.h, histogram.h, and each worker's last health answer)
 * and never talks to a worker, so a scrape or a probe costs the workers
 * nothing and a bad client cannot reach them. */
#ifndef TERN_METRICS_H
#define TERN_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct tern_server;
struct tern_metrics;

/* Bounds on one HTTP client: its request line and headers, the time from
 * accept to closed, and how many are served at once (one more is answered
 * 503 and closed). */
#define TERN_METRICS_REQUEST_MAX 8192
#define TERN_METRICS_CLIENT_TIMEOUT_MS 5000
#define TERN_METRICS_MAX_CLIENTS 64

/* The exposition format's media type (version 0.0.4 of the text format),
 * with the charset Prometheus' own client libraries send: HELP text is
 * UTF-8. */
#define TERN_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Formats every metric of SPEC section 5, each with # HELP and # TYPE,
 * from the sum of all workers' counters and histograms. Any thread: it
 * only reads atomics. Returns 0 with *out (a NUL-terminated string the
 * caller frees) and *out_len, or -ENOMEM. */
__attribute__((warn_unused_result))
int tern_metrics_render(struct tern_server *srv, char **out, size_t *out_len);

/* What a request asks for. */
enum tern_metrics_target {
	TERN_METRICS_TARGET_METRICS, /* /metrics */
	TERN_METRICS_TARGET_HEALTHZ, /* /healthz: every worker alive */
	TERN_METRICS_TARGET_READYZ,  /* /readyz: and every worker answered once */
};

/* Judges the bytes an HTTP client sent so far: the request line and the
 * header fields (RFC 9112), never a body. Returns 0 while more bytes are
 * needed, otherwise the status to answer: 200 for GET or HEAD /metrics,
 * /healthz or /readyz (*out_head tells HEAD, *out_target which; a query
 * string is ignored), 404 for another path, 405 for another method on
 * one of those, 400 for anything that is not a well-formed HTTP/1.0 or
 * 1.1 request (at once, before the line ends, for bytes no request line
 * holds) or for a request cut short by eof, and 431 when
 * TERN_METRICS_REQUEST_MAX bytes hold no complete request. A 200 for a
 * health target is only the request's verdict: the answer's status is
 * the probe's. Pure: any thread. */
__attribute__((warn_unused_result))
int tern_metrics_http_judge(const char *in, size_t len, bool eof, bool *out_head,
			    enum tern_metrics_target *out_target);

/* Main thread, before the workers start: binds srv->cfg->metrics_addr and
 * starts the endpoint's thread. With --metrics not given, *out = NULL and
 * nothing runs. Returns 0, or -errno with the address and the reason in
 * err (nothing left running). */
__attribute__((warn_unused_result))
int tern_metrics_start(struct tern_server *srv, struct tern_metrics **out, char *err,
		       size_t err_len);

/* Main thread, before the workers are freed: stops and joins the thread,
 * closes every socket, frees. NULL is fine. */
void tern_metrics_stop(struct tern_metrics *m);

#endif
