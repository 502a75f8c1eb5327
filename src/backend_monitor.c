/* The backend monitor (backends.h): one thread that re-resolves host
 * names every --resolve-interval and, with --backend-check, connects to
 * every backend address every interval. Both may block (getaddrinfo for
 * as long as the resolver takes, a check for up to --connect-timeout),
 * which is why they have a thread of their own: not a worker, whose
 * connections would wait, and not the control thread, whose health pings
 * and replies would. Workers learn what it finds from the addresses'
 * health atomics and from the sets it hands them through their queues. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tern/backend_resolve.h"
#include "tern/clock.h"
#include "tern/conn_engine.h"
#include "tern/log.h"
#include "tern/parse.h"
#include "tern/server.h"

#include "backends_internal.h"

uint64_t tern_backend_monitor_retry_ms(const struct tern_config *cfg)
{
	uint64_t every = cfg->resolve_interval_ms;
	return every && every < TERN_BACKEND_UNRESOLVED_RETRY_MS ? every
								 : TERN_BACKEND_UNRESOLVED_RETRY_MS;
}

static bool has_names(const struct tern_config *cfg)
{
	for (size_t i = 0; i < cfg->num_backends; i++)
		if (cfg->backends[i].ss.ss_family == AF_UNSPEC)
			return true;
	return false;
}

static size_t count_addrs(const struct tern_backend_set *set, unsigned backend)
{
	size_t n = 0;
	for (size_t i = 0; i < set->num; i++)
		n += set->eps[i]->backend == backend;
	return n;
}

/* "10.0.0.7:8080, 10.0.0.8:8080" for the log. */
static void join_texts(const struct tern_addr *addrs, size_t n, char *out, size_t out_len)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && used < out_len; i++) {
		int m = snprintf(out + used, out_len - used, "%s%s", i ? ", " : "", addrs[i].text);
		used += m > 0 ? (size_t)m : 0;
	}
}

/* One name, resolved again; a change becomes a new current set. A failure
 * keeps the addresses it had: a resolver's bad minute must not take a
 * backend out of service (nginx's resolver keeps them too). */
static void resolve_one(struct tern_backends *b, unsigned i, bool *failing)
{
	const struct tern_config *cfg = b->cfg;
	static struct tern_addr addrs[TERN_MAX_ADDRS_PER_BACKEND]; /* this thread only */
	char err[128], list[1024];
	bool more;

	int n = tern_backend_resolve(&cfg->backend_names[i], addrs, TERN_MAX_ADDRS_PER_BACKEND,
				     &more, err, sizeof(err));
	if (n < 0) {
		if (!*failing)
			tern_log(TERN_LOG_WARN, "backend %s: cannot resolve %s: %s; %s",
				 cfg->backends[i].text, cfg->backend_names[i].host, err,
				 count_addrs(b->current, i) ? "keeping its addresses"
							    : "still without an address");
		*failing = true;
		tern_backends_set_resolve_error(b, i, err);
		return;
	}
	if (*failing)
		tern_backends_set_resolve_error(b, i, "");
	*failing = false;
	if (tern_backend_set_same(b->current, i, addrs, (size_t)n))
		return;
	struct tern_backend_set *next = tern_backend_set_replace(b->current, i, addrs, (size_t)n);
	if (!next) {
		tern_log(TERN_LOG_WARN, "backend %s: out of memory for its new addresses; trying "
			 "again later", cfg->backends[i].text);
		return;
	}
	join_texts(addrs, (size_t)n, list, sizeof(list));
	tern_log(TERN_LOG_INFO, "backend %s: resolves to %s%s", cfg->backends[i].text, list,
		 more ? " (and more, left out)" : "");
	tern_backends_publish(b, next);
}

/* When name i is resolved again after now: every --resolve-interval,
 * but sooner (tern_backend_monitor_retry_ms) while it has no address at
 * all; never with the interval 0 once it has one. */
static uint64_t next_resolve_at(struct tern_backends *b, unsigned i, uint64_t now)
{
	uint64_t every = count_addrs(b->current, i) == 0 ? tern_backend_monitor_retry_ms(b->cfg)
							 : b->cfg->resolve_interval_ms;
	return every ? now + every : UINT64_MAX;
}

/* ---------------------------------------------------------- active checks */

struct check {
	int fd;       /* -1: done */
	bool ok;
	int err;      /* why not, -errno */
};

/* Starts a non-blocking connect to ep; done at once when connect says so. */
static void check_start(struct check *ck, const struct tern_endpoint *ep)
{
	ck->fd = socket(ep->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck->ok = false;
	ck->err = 0;
	if (ck->fd < 0) {
		ck->err = -errno;
		return;
	}
	if (connect(ck->fd, (const struct sockaddr *)&ep->addr.ss, ep->addr.ss_len) == 0 ||
	    errno == EAGAIN) {
		/* EAGAIN: a unix: socket whose backlog is full. Someone is
		 * listening: busy is not down. */
		ck->ok = true;
	} else if (errno == EINPROGRESS) {
		return; /* polled for */
	} else {
		ck->err = -errno;
	}
	close(ck->fd);
	ck->fd = -1;
}

static void check_finish(struct check *ck)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(ck->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	ck->ok = soerr == 0;
	ck->err = -soerr;
	close(ck->fd);
	ck->fd = -1;
}

/* Waits for the checks in flight until deadline (or a stop). Returns
 * false when asked to stop. */
static bool checks_wait(struct tern_backends *b, struct check *cks, size_t n, uint64_t deadline)
{
	struct pollfd *pfds = calloc(n + 1, sizeof(*pfds));
	size_t *which = calloc(n + 1, sizeof(*which));
	bool stop = false;

	if (!pfds || !which)
		goto out;
	for (;;) {
		size_t m = 0;
		pfds[m++] = (struct pollfd){.fd = b->stop_fd, .events = POLLIN};
		for (size_t i = 0; i < n; i++) {
			if (cks[i].fd < 0)
				continue;
			which[m] = i;
			pfds[m++] = (struct pollfd){.fd = cks[i].fd, .events = POLLOUT};
		}
		uint64_t now = tern_clock_ms();
		if (m == 1 || now >= deadline)
			break;
		uint64_t left = deadline - now;
		int r = poll(pfds, m, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0 && errno != EINTR)
			break;
		if (pfds[0].revents) {
			stop = true;
			break;
		}
		for (size_t k = 1; k < m && r > 0; k++)
			if (pfds[k].revents)
				check_finish(&cks[which[k]]);
	}
out:
	/* What is still in flight timed out. */
	for (size_t i = 0; i < n; i++) {
		if (cks[i].fd >= 0) {
			close(cks[i].fd);
			cks[i].fd = -1;
			cks[i].err = -ETIMEDOUT;
		}
	}
	free(pfds);
	free(which);
	return !stop;
}

static void check_report(const struct tern_config *cfg, const struct tern_endpoint *ep,
			 enum tern_backend_check_change change, int err)
{
	const struct tern_addr *conf = &cfg->backends[ep->backend];
	bool name = conf->ss.ss_family == AF_UNSPEC;

	if (change == TERN_BACKEND_CHECK_DOWN)
		tern_log(TERN_LOG_WARN, "backend %s%s%s%s down: check: %s", conf->text,
			 name ? " (" : "", name ? ep->addr.text : "", name ? ")" : "",
			 err == -ETIMEDOUT ? "connect timed out" : strerror(-err));
	else if (change == TERN_BACKEND_CHECK_UP)
		tern_log(TERN_LOG_INFO, "backend %s%s%s%s up: check connected", conf->text,
			 name ? " (" : "", name ? ep->addr.text : "", name ? ")" : "");
}

/* One round: a TCP connect to every address at once, each given up after
 * --connect-timeout (or the check interval, if shorter). Returns false
 * when asked to stop meanwhile. */
static bool check_round(struct tern_backends *b)
{
	const struct tern_config *cfg = b->cfg;
	struct tern_backend_set *set = tern_backends_get(b);
	struct check *cks = calloc(set->num ? set->num : 1, sizeof(*cks));
	bool go_on = true;

	if (!cks) {
		tern_backend_set_unref(set);
		return true;
	}
	uint64_t limit = cfg->connect_timeout_ms < cfg->backend_check_ms ? cfg->connect_timeout_ms
									 : cfg->backend_check_ms;
	uint64_t deadline = tern_clock_ms() + limit;
	for (size_t i = 0; i < set->num; i++)
		check_start(&cks[i], set->eps[i]);
	go_on = checks_wait(b, cks, set->num, deadline);
	if (go_on) {
		uint64_t now = tern_clock_ms();
		for (size_t i = 0; i < set->num; i++) {
			struct tern_endpoint *ep = set->eps[i];
			check_report(cfg, ep, tern_backend_health_checked(&ep->health, cks[i].ok, now),
				     cks[i].err);
		}
	}
	free(cks);
	tern_backend_set_unref(set);
	return go_on;
}

/* ------------------------------------------------------------ the thread */

static void *monitor_main(void *arg)
{
	struct tern_backends *b = arg;
	const struct tern_config *cfg = b->cfg;
	size_t n = cfg->num_backends;
	uint64_t *next_resolve = calloc(n ? n : 1, sizeof(*next_resolve));
	bool *failing = calloc(n ? n : 1, sizeof(*failing));
	uint64_t now = tern_clock_ms();
	uint64_t next_check = cfg->backend_check_ms ? now : UINT64_MAX;

	(void)pthread_setname_np(pthread_self(), "tern-backends");
	if (!next_resolve || !failing) {
		tern_log(TERN_LOG_ERROR, "backends: out of memory: names are not re-resolved and "
			 "backends not checked");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		next_resolve[i] = UINT64_MAX;
		if (cfg->backends[i].ss.ss_family != AF_UNSPEC)
			continue;
		failing[i] = count_addrs(b->current, (unsigned)i) == 0;
		next_resolve[i] = next_resolve_at(b, (unsigned)i, now);
	}
	for (;;) {
		uint64_t next = next_check;
		now = tern_clock_ms();
		tern_backends_republish(b);
		for (size_t i = 0; i < n; i++) {
			if (now >= next_resolve[i]) {
				resolve_one(b, (unsigned)i, &failing[i]);
				now = tern_clock_ms();
				next_resolve[i] = next_resolve_at(b, (unsigned)i, now);
			}
			if (next_resolve[i] < next)
				next = next_resolve[i];
		}
		if (now >= next_check) {
			if (!check_round(b))
				break;
			now = tern_clock_ms();
			next_check = now + cfg->backend_check_ms;
			if (next_check < next)
				next = next_check;
		}
		struct pollfd pfd = {.fd = b->stop_fd, .events = POLLIN};
		int wait = next == UINT64_MAX ? -1
			   : next <= now      ? 0
			   : next - now > INT_MAX ? INT_MAX
						  : (int)(next - now);
		if (poll(&pfd, 1, wait) > 0)
			break;
	}
out:
	free(next_resolve);
	free(failing);
	return NULL;
}

int tern_backend_monitor_start(struct tern_backends *b, struct tern_server *srv)
{
	const struct tern_config *cfg = b->cfg;

	if (!has_names(cfg) && cfg->backend_check_ms == 0)
		return 0; /* nothing would ever change */
	b->srv = srv;
	b->stale = calloc(srv->num_workers ? srv->num_workers : 1, sizeof(*b->stale));
	if (!b->stale)
		return -ENOMEM;
	b->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->stop_fd < 0)
		return -errno;
	int ret = -pthread_create(&b->thread, NULL, monitor_main, b);
	if (ret < 0)
		return ret;
	b->running = true;
	return 0;
}

void tern_backend_monitor_stop(struct tern_backends *b)
{
	if (b->running) {
		uint64_t one = 1;
		ssize_t ignored = write(b->stop_fd, &one, sizeof(one));
		(void)ignored;
		pthread_join(b->thread, NULL);
		b->running = false;
	}
	if (b->stop_fd >= 0)
		close(b->stop_fd);
	b->stop_fd = -1;
}
