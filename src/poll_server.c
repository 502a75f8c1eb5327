/* The poll() server the control and metrics threads share (poll_server.h).
 *
 * A turn rebuilds the pollfd array (stop, listener, extra fds, clients),
 * sleeps until the first thing due, then gives every client its turn,
 * accepts, serves the extra fds and runs the timer hook. The pollfd array
 * and the client table are both sized at creation: a turn allocates
 * nothing but the clients it accepts. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tern/clock.h"
#include "tern/log.h"
#include "tern/log_limit.h"
#include "tern/poll_server.h"

/* The pollfds before the extra fds': stop, then the listener. */
#define STOP_PFD 0
#define LISTEN_PFD 1
#define FIXED_PFDS 2

struct extra_fd {
	int fd;
	void (*readable)(void *owner);
};

struct tern_poll_server {
	struct tern_poll_server_config cfg;
	int listen_fd;
	int stop_fd;
	pthread_t thread;
	bool thread_started;
	struct extra_fd extra[TERN_POLL_MAX_EXTRA_FDS];
	unsigned num_extra;
	struct pollfd *pfd;                /* FIXED_PFDS + extra + max_clients */
	struct tern_poll_client **clients; /* max_clients; allocated per client */
	unsigned num_clients;
	bool again;           /* a client's last turn was TERN_POLL_AGAIN */
	uint64_t timer_next_ms;
	uint64_t accept_resume_ms; /* 0: accepting */
	/* The storms warned about at most once per warn_interval_ms. */
	struct tern_log_limit accept_failed, slot_reclaimed, stalled_closed;
};

int tern_poll_server_new(const struct tern_poll_server_config *cfg, int listen_fd,
			 struct tern_poll_server **out)
{
	struct tern_poll_server *ps = NULL;
	int ret = -EINVAL;

	if (!cfg->turn || cfg->max_clients == 0 ||
	    cfg->client_size < sizeof(struct tern_poll_client))
		goto fail;
	ret = -ENOMEM;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		goto fail;
	ps->cfg = *cfg;
	if (!ps->cfg.accept_pause_ms)
		ps->cfg.accept_pause_ms = TERN_POLL_ACCEPT_PAUSE_MS;
	if (!ps->cfg.warn_interval_ms)
		ps->cfg.warn_interval_ms = TERN_POLL_WARN_INTERVAL_MS;
	ps->listen_fd = listen_fd;
	/* Before the first poll(): the hook says when it is due. */
	ps->timer_next_ms = cfg->timer ? 0 : UINT64_MAX;
	ps->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (ps->stop_fd < 0) {
		ret = -errno;
		goto fail;
	}
	ps->pfd = calloc(FIXED_PFDS + TERN_POLL_MAX_EXTRA_FDS + cfg->max_clients, sizeof(*ps->pfd));
	ps->clients = calloc(cfg->max_clients, sizeof(*ps->clients));
	if (!ps->pfd || !ps->clients)
		goto fail;
	*out = ps;
	return 0;
fail:
	if (ps)
		tern_poll_server_free(ps); /* closes listen_fd */
	else if (listen_fd >= 0)
		close(listen_fd);
	return ret;
}

int tern_poll_server_add_fd(struct tern_poll_server *ps, int fd, void (*readable)(void *owner))
{
	if (ps->num_extra == TERN_POLL_MAX_EXTRA_FDS)
		return -ENOSPC;
	ps->extra[ps->num_extra++] = (struct extra_fd){.fd = fd, .readable = readable};
	return 0;
}

unsigned tern_poll_server_num_clients(const struct tern_poll_server *ps)
{
	return ps->num_clients;
}

size_t tern_poll_server_output_bytes(const struct tern_poll_server *ps)
{
	size_t total = 0;
	for (unsigned i = 0; i < ps->num_clients; i++)
		total += ps->clients[i]->out_len;
	return total;
}

int tern_poll_client_append(struct tern_poll_client *cl, const void *data, size_t len)
{
	char *grown = realloc(cl->out, cl->out_len + len);
	if (!grown)
		return -ENOMEM;
	memcpy(grown + cl->out_len, data, len);
	if (cl->out_len == 0)
		cl->out_progress_ms = tern_clock_ms(); /* the stall clock starts */
	cl->out = grown;
	cl->out_len += len;
	return 0;
}

int tern_poll_client_give(struct tern_poll_client *cl, char *buf, size_t len)
{
	if (cl->out_len) {
		int ret = tern_poll_client_append(cl, buf, len);
		free(buf);
		return ret;
	}
	free(cl->out); /* NULL by the invariant; kept honest */
	cl->out = buf;
	cl->out_len = len;
	cl->out_off = 0;
	cl->out_progress_ms = tern_clock_ms();
	return 0;
}

int tern_poll_client_flush(struct tern_poll_client *cl)
{
	while (cl->out_off < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		cl->out_off += (size_t)n;
		cl->out_progress_ms = tern_clock_ms();
	}
	free(cl->out);
	cl->out = NULL;
	cl->out_len = cl->out_off = 0;
	return 1;
}

static void client_close(struct tern_poll_server *ps, unsigned i)
{
	struct tern_poll_client *cl = ps->clients[i];
	close(cl->fd);
	free(cl->out);
	free(cl);
	ps->clients[i] = ps->clients[--ps->num_clients];
}

/* A warning of one storm (log_limit.h): "NAME: MESSAGE", said at most
 * once per warn_interval_ms, with the count of the ones not said since. */
__attribute__((format(printf, 4, 5)))
static void warn_storm(struct tern_poll_server *ps, struct tern_log_limit *limit, uint64_t now,
		       const char *fmt, ...)
{
	unsigned long long unsaid;
	char msg[256];
	va_list ap;

	if (!tern_log_limit_due(limit, now, ps->cfg.warn_interval_ms, &unsaid))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (unsaid)
		tern_log(TERN_LOG_WARN, "%s: %s (%llu more since the last warning)",
			 ps->cfg.name, msg, unsaid);
	else
		tern_log(TERN_LOG_WARN, "%s: %s", ps->cfg.name, msg);
}

/* accept() failed for want of descriptors or memory: retrying at once
 * would fail again, with the listener still readable, at 100 % of a core.
 * The listener rests instead (the clients already accepted are served
 * meanwhile), and a run of such failures is warned about once per
 * interval, not once per attempt. */
static void accept_pause(struct tern_poll_server *ps, int err, uint64_t now)
{
	ps->accept_resume_ms = now + ps->cfg.accept_pause_ms;
	warn_storm(ps, &ps->accept_failed, now, "accept: %s; pausing %u ms", strerror(err),
		   ps->cfg.accept_pause_ms);
}

/* The table is full: closes the client idle longest to make room, so
 * that clients which connect and say nothing (idle scrapers left open, a
 * slow-loris) cannot lock out one that asks. False when none is idle. */
static bool reclaim_idle_slot(struct tern_poll_server *ps, uint64_t now)
{
	unsigned oldest = ps->num_clients;
	for (unsigned i = 0; i < ps->num_clients; i++) {
		uint64_t since = ps->clients[i]->idle_since_ms;
		if (since && (oldest == ps->num_clients ||
			      since < ps->clients[oldest]->idle_since_ms))
			oldest = i;
	}
	if (oldest == ps->num_clients)
		return false;
	uint64_t idle_ms = now - ps->clients[oldest]->idle_since_ms;
	client_close(ps, oldest);
	warn_storm(ps, &ps->slot_reclaimed, now, "all %u client slots taken: closed the client "
		   "idle longest (%llu ms) for a new one", ps->cfg.max_clients,
		   (unsigned long long)idle_ms);
	return true;
}

/* Until EAGAIN: the listener is level-triggered, but draining the queue
 * in one turn answers a burst without a poll() per client. */
static void accept_clients(struct tern_poll_server *ps, uint64_t now)
{
	for (;;) {
		int fd = accept4(ps->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				accept_pause(ps, errno, now);
			return; /* EAGAIN, or a connection that died in the queue */
		}
		struct tern_poll_client *cl = NULL;
		if (ps->num_clients == ps->cfg.max_clients && ps->cfg.reclaim_idle)
			(void)reclaim_idle_slot(ps, now);
		if (ps->num_clients == ps->cfg.max_clients ||
		    !(cl = calloc(1, ps->cfg.client_size))) {
			/* Best effort, never waited for: a new socket's send
			 * buffer takes these bytes at once. */
			const char *busy = ps->cfg.busy_reply;
			if (busy) {
				ssize_t ignored = send(fd, busy, strlen(busy), MSG_NOSIGNAL);
				(void)ignored;
			}
			close(fd);
			continue;
		}
		cl->fd = fd;
		cl->deadline_ms = now + ps->cfg.client_timeout_ms;
		ps->clients[ps->num_clients++] = cl;
	}
}

/* When the client, its output pending and none of it taken, counts as
 * having stopped reading: write_stall_ms after the output last moved.
 * UINT64_MAX without output or without write_stall_ms. */
static uint64_t stall_deadline(const struct tern_poll_server *ps, const struct tern_poll_client *cl)
{
	if (!ps->cfg.write_stall_ms || !tern_poll_client_has_output(cl))
		return UINT64_MAX;
	return cl->out_progress_ms + ps->cfg.write_stall_ms;
}

static int poll_timeout(const struct tern_poll_server *ps, uint64_t now)
{
	uint64_t next = now + TERN_POLL_MAX_WAIT_MS;
	if (ps->accept_resume_ms && ps->accept_resume_ms < next)
		next = ps->accept_resume_ms;
	if (ps->timer_next_ms < next)
		next = ps->timer_next_ms;
	for (unsigned i = 0; i < ps->num_clients; i++) {
		const struct tern_poll_client *cl = ps->clients[i];
		uint64_t stall = stall_deadline(ps, cl);
		if (cl->deadline_ms < next)
			next = cl->deadline_ms;
		if (stall < next)
			next = stall;
	}
	if (ps->again)
		next = now;
	return next <= now ? 0 : (int)(next - now);
}

static short client_events(const struct tern_poll_server *ps, const struct tern_poll_client *cl)
{
	if (tern_poll_client_has_output(cl))
		return POLLOUT;
	return ps->cfg.wants ? ps->cfg.wants(ps->cfg.owner, cl) : POLLIN;
}

int tern_poll_server_turn(struct tern_poll_server *ps)
{
	struct pollfd *pfd = ps->pfd;
	uint64_t now = tern_clock_ms();
	nfds_t n = 0;

	if (ps->accept_resume_ms && now >= ps->accept_resume_ms)
		ps->accept_resume_ms = 0;
	pfd[n++] = (struct pollfd){.fd = ps->stop_fd, .events = POLLIN};
	/* A negative fd is skipped by poll(): the listener rests. */
	pfd[n++] = (struct pollfd){.fd = ps->accept_resume_ms ? -1 : ps->listen_fd,
				   .events = POLLIN};
	for (unsigned k = 0; k < ps->num_extra; k++)
		pfd[n++] = (struct pollfd){.fd = ps->extra[k].fd, .events = POLLIN};
	struct pollfd *client_pfd = pfd + n;
	for (unsigned i = 0; i < ps->num_clients; i++)
		pfd[n++] = (struct pollfd){.fd = ps->clients[i]->fd,
					   .events = client_events(ps, ps->clients[i])};

	int ready = poll(pfd, n, poll_timeout(ps, now));
	if (ready < 0) {
		if (errno != EINTR) {
			int ret = -errno;
			tern_log(TERN_LOG_ERROR, "%s: poll: %s", ps->cfg.name, strerror(errno));
			return ret;
		}
		ready = 0; /* the revents were not written */
	}
	if (ready > 0 && pfd[STOP_PFD].revents)
		return 0;
	now = tern_clock_ms();
	ps->again = false;
	/* By index from the end: closing swaps in the last client, whose
	 * pollfd was already looked at. */
	for (unsigned i = ps->num_clients; i-- > 0;) {
		struct tern_poll_client *cl = ps->clients[i];
		short rev = ready > 0 ? client_pfd[i].revents : 0;
		enum tern_poll_verdict verdict = ps->cfg.turn(ps->cfg.owner, cl, rev, now);
		if (rev & (POLLERR | POLLNVAL))
			verdict = TERN_POLL_CLOSE;
		if (now >= cl->deadline_ms)
			verdict = TERN_POLL_CLOSE;
		if (verdict != TERN_POLL_CLOSE && now >= stall_deadline(ps, cl)) {
			warn_storm(ps, &ps->stalled_closed, now, "closed a client that read none of "
				   "its %zu pending bytes for %u ms", cl->out_len - cl->out_off,
				   ps->cfg.write_stall_ms);
			verdict = TERN_POLL_CLOSE;
		}
		if (verdict == TERN_POLL_CLOSE)
			client_close(ps, i);
		else if (verdict == TERN_POLL_AGAIN)
			ps->again = true;
	}
	if (ready > 0 && (pfd[LISTEN_PFD].revents & POLLIN))
		accept_clients(ps, now);
	for (unsigned k = 0; k < ps->num_extra; k++)
		if (ready > 0 && (pfd[FIXED_PFDS + k].revents & POLLIN))
			ps->extra[k].readable(ps->cfg.owner);
	if (ps->cfg.timer)
		ps->timer_next_ms = ps->cfg.timer(ps->cfg.owner, now);
	return 1;
}

static void *poll_server_main(void *arg)
{
	struct tern_poll_server *ps = arg;
	while (tern_poll_server_turn(ps) > 0)
		;
	return NULL;
}

int tern_poll_server_start(struct tern_poll_server *ps)
{
	int ret = -pthread_create(&ps->thread, NULL, poll_server_main, ps);
	if (ret == 0)
		ps->thread_started = true;
	return ret;
}

void tern_poll_server_request_stop(struct tern_poll_server *ps)
{
	uint64_t one = 1;
	/* An eventfd write fails only when the counter would overflow: a
	 * stop is pending then anyway. */
	ssize_t ignored = write(ps->stop_fd, &one, sizeof(one));
	(void)ignored;
}

void tern_poll_server_free(struct tern_poll_server *ps)
{
	if (!ps)
		return;
	if (ps->thread_started) {
		tern_poll_server_request_stop(ps);
		pthread_join(ps->thread, NULL);
	}
	while (ps->num_clients)
		client_close(ps, 0);
	if (ps->listen_fd >= 0)
		close(ps->listen_fd);
	if (ps->stop_fd >= 0)
		close(ps->stop_fd);
	free(ps->pfd);
	free(ps->clients);
	free(ps);
}
