/* Unit tests for src/poll_server.c, driven turn by turn on the test's own
 * thread (and once on a thread of its own) over a loopback listener, with
 * a toy line protocol as the owner: each line "X\n" is answered "echo:X\n".
 *
 * A line "big" is answered with BIG_REPLY bytes, given without a copy.
 *
 * Cases: a client that sends and is answered; a client that stalls past
 * its deadline; pipelined lines answered without the loop sleeping; the
 * table full (the busy reply, then close); the table full with idle
 * clients (the longest idle gives its slot; busy ones never do); a reader
 * that stops reading closed after write_stall_ms while a slow one is not;
 * a listener hitting EMFILE under
 * a lowered RLIMIT_NOFILE, which must pause instead of spinning, warn once
 * per interval with the count of the others, and recover; the timer hook
 * and an extra fd; stop; and the server on its own thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "tern/clock.h"
#include "tern/list.h"
#include "tern/log.h"
#include "tern/poll_server.h"
#include "tmp_dir.h"

/* ---------------------------------------------------------- the owner */

/* Much more than the socket buffers take: a peer that does not read
 * leaves most of it pending. */
#define BIG_REPLY (16u << 20)

struct echo_client {
	struct tern_poll_client base;
	size_t in_len;
	char in[256];
};

struct echo_owner {
	unsigned turns;        /* client turns, all clients */
	unsigned timer_calls;
	unsigned timer_period_ms; /* 0: no timer wish */
	unsigned extra_reads;
	int extra_fd;
};

static bool has_line(const struct echo_client *cl)
{
	return memchr(cl->in, '\n', cl->in_len) != NULL;
}

/* Answers one buffered line; the rest wait for the next turn, so a
 * pipelined client needs TERN_POLL_AGAIN. */
static enum tern_poll_verdict echo_turn(void *owner, struct tern_poll_client *base, short rev,
					uint64_t now)
{
	struct echo_owner *o = owner;
	struct echo_client *cl = tern_container_of(base, struct echo_client, base);
	o->turns++;
	if ((rev & (POLLIN | POLLHUP)) && !has_line(cl)) {
		ssize_t n = recv(base->fd, cl->in + cl->in_len, sizeof(cl->in) - cl->in_len, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return TERN_POLL_CLOSE;
		if (n > 0)
			cl->in_len += (size_t)n;
	}
	if (tern_poll_client_has_output(base) && tern_poll_client_flush(base) < 0)
		return TERN_POLL_CLOSE;
	char *nl = memchr(cl->in, '\n', cl->in_len);
	if (nl && !tern_poll_client_has_output(base)) {
		size_t len = (size_t)(nl - cl->in) + 1;
		if (len == 4 && memcmp(cl->in, "big\n", 4) == 0) {
			/* A fixed send buffer (no autotuning): a peer reading
			 * 128 KiB at a time frees enough of it to be progress. */
			int sndbuf = 64 << 10;
			(void)setsockopt(base->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
			char *big = malloc(BIG_REPLY);
			if (!big || (memset(big, 'b', BIG_REPLY), 0) ||
			    tern_poll_client_give(base, big, BIG_REPLY) < 0 ||
			    tern_poll_client_flush(base) < 0)
				return TERN_POLL_CLOSE;
		} else if (tern_poll_client_append(base, "echo:", 5) < 0 ||
			   tern_poll_client_append(base, cl->in, len) < 0 ||
			   tern_poll_client_flush(base) < 0) {
			return TERN_POLL_CLOSE;
		}
		cl->in_len -= len;
		memmove(cl->in, cl->in + len, cl->in_len);
	}
	/* Idle while it holds nothing: no bytes of a line, no output. */
	tern_poll_client_mark_idle(base, !cl->in_len && !tern_poll_client_has_output(base), now);
	return has_line(cl) && !tern_poll_client_has_output(base) ? TERN_POLL_AGAIN : TERN_POLL_WAIT;
}

/* Not read while a line waits: the pipelined case relies on AGAIN. */
static short echo_wants(void *owner, const struct tern_poll_client *base)
{
	(void)owner;
	return has_line(tern_container_of(base, const struct echo_client, base)) ? 0 : POLLIN;
}

static uint64_t echo_timer(void *owner, uint64_t now)
{
	struct echo_owner *o = owner;
	o->timer_calls++;
	return o->timer_period_ms ? now + o->timer_period_ms : UINT64_MAX;
}

static void echo_extra(void *owner)
{
	struct echo_owner *o = owner;
	uint64_t count;
	if (read(o->extra_fd, &count, sizeof(count)) == sizeof(count))
		o->extra_reads++;
}

/* ------------------------------------------------------------- helpers */

static int listen_loopback(struct sockaddr_in *out_addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
		perror("listen_loopback");
		exit(1);
	}
	*out_addr = addr;
	return fd;
}

/* A blocking client, connected (the kernel completes it from the backlog
 * whether or not the server has accepted it yet). */
static int connect_loopback(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0) {
		perror("connect_loopback");
		exit(1);
	}
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* An echo server on a loopback listener; a test sets cfg, then starts. */
struct fixture {
	struct echo_owner o;
	struct tern_poll_server_config cfg;
	struct sockaddr_in addr;
	struct tern_poll_server *ps;
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->cfg = (struct tern_poll_server_config){
		.name = "test",
		.max_clients = 8,
		.client_size = sizeof(struct echo_client),
		.client_timeout_ms = 5000,
		.busy_reply = "busy\n",
		.owner = &f->o,
		.turn = echo_turn,
		.wants = echo_wants,
	};
}

static bool fixture_start(struct fixture *f)
{
	return CHECK_EQ_INT(tern_poll_server_new(&f->cfg, listen_loopback(&f->addr), &f->ps), 0);
}

/* Turns until cond(arg) holds or ms pass; returns the turns taken, or -1
 * on a timeout or a failed turn. */
static int turn_until(struct tern_poll_server *ps, bool (*cond)(void *), void *arg, unsigned ms)
{
	uint64_t end = tern_clock_ms() + ms;
	for (int turns = 0; tern_clock_ms() < end; turns++) {
		if (cond(arg))
			return turns;
		if (tern_poll_server_turn(ps) != 1)
			return -1;
	}
	return cond(arg) ? 0 : -1;
}

/* Turns for ms of wall-clock time; returns how many. */
static unsigned turn_for(struct tern_poll_server *ps, unsigned ms)
{
	uint64_t end = tern_clock_ms() + ms;
	unsigned turns = 0;
	while (tern_clock_ms() < end && tern_poll_server_turn(ps) == 1)
		turns++;
	return turns;
}

struct clients_wanted {
	struct tern_poll_server *ps;
	unsigned num;
};

static bool clients_are(void *arg)
{
	struct clients_wanted *w = arg;
	return tern_poll_server_num_clients(w->ps) == w->num;
}

/* Turns until the table holds num clients; the turns, or -1. */
static int turn_until_clients(struct tern_poll_server *ps, unsigned num)
{
	struct clients_wanted w = {ps, num};
	return turn_until(ps, clients_are, &w, 2000);
}

struct peer_read {
	int fd;
	char buf[256];
	size_t len;
	const char *want;
};

/* Whatever has arrived, without waiting; done when `want` is all there. */
static bool peer_has(void *arg)
{
	struct peer_read *r = arg;
	ssize_t n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - 1 - r->len, MSG_DONTWAIT);
	if (n > 0)
		r->len += (size_t)n;
	r->buf[r->len] = '\0';
	return strcmp(r->buf, r->want) == 0;
}

/* Sends "line\n" from the peer and turns until "echo:line\n" is back. */
static bool echoes(struct tern_poll_server *ps, int fd, const char *line)
{
	char want[64];
	size_t len = strlen(line);
	snprintf(want, sizeof(want), "echo:%s\n", line);
	struct peer_read r = {.fd = fd, .want = want};
	return send(fd, line, len, 0) == (ssize_t)len && send(fd, "\n", 1, 0) == 1 &&
	       turn_until(ps, peer_has, &r, 2000) >= 0;
}

/* The peer's next recv() sees EOF (or a reset): the server closed it. */
static bool peer_closed(int fd)
{
	char byte;
	return recv(fd, &byte, 1, 0) <= 0;
}

/* --------------------------------------------------------------- cases */

static void test_client_is_answered(void)
{
	struct fixture f;
	fixture_init(&f);
	if (!fixture_start(&f))
		return;
	int c = connect_loopback(&f.addr);
	CHECK(echoes(f.ps, c, "hello"));
	CHECK(echoes(f.ps, c, "again"));
	CHECK_EQ_UINT(tern_poll_server_num_clients(f.ps), 1);

	/* The client leaves: its turn sees EOF and the table empties. */
	close(c);
	CHECK(turn_until_clients(f.ps, 0) >= 0);
	tern_poll_server_free(f.ps);
}

static void test_stalled_client_closed_at_deadline(void)
{
	struct fixture f;
	fixture_init(&f);
	f.cfg.client_timeout_ms = 150;
	if (!fixture_start(&f))
		return;
	uint64_t start = tern_clock_ms();
	int c = connect_loopback(&f.addr);
	CHECK_EQ_INT(send(c, "no newline", 10, 0), 10);
	CHECK(turn_until_clients(f.ps, 1) >= 0);
	int turns = turn_until_clients(f.ps, 0);
	uint64_t took = tern_clock_ms() - start;
	CHECK(took >= 150);
	CHECK(took < 1000);
	/* Slept until the deadline rather than spinning towards it. */
	CHECK(turns >= 0 && turns < 20);
	CHECK(peer_closed(c));
	close(c);
	tern_poll_server_free(f.ps);
}

static void test_pipelined_lines_do_not_wait(void)
{
	struct fixture f;
	fixture_init(&f);
	if (!fixture_start(&f))
		return;
	int c = connect_loopback(&f.addr);
	CHECK(turn_until_clients(f.ps, 1) >= 0);
	CHECK_EQ_INT(send(c, "a\nb\nc\n", 6, 0), 6);
	/* One line a turn, and the loop does not sleep (TERN_POLL_MAX_WAIT_MS)
	 * between them: the socket has nothing new to wake it. */
	uint64_t start = tern_clock_ms();
	struct peer_read r = {.fd = c, .want = "echo:a\necho:b\necho:c\n"};
	CHECK(turn_until(f.ps, peer_has, &r, 3000) >= 0);
	CHECK_EQ_STR(r.buf, "echo:a\necho:b\necho:c\n");
	CHECK(tern_clock_ms() - start < TERN_POLL_MAX_WAIT_MS / 2);
	close(c);
	tern_poll_server_free(f.ps);
}

static void test_table_full_refuses(void)
{
	struct fixture f;
	fixture_init(&f);
	f.cfg.max_clients = 2;
	if (!fixture_start(&f))
		return;
	int c[3];
	for (unsigned i = 0; i < 3; i++)
		c[i] = connect_loopback(&f.addr);
	CHECK(turn_until_clients(f.ps, 2) >= 0);
	/* The third gets the busy reply and a close; the first two are served. */
	char buf[16] = {0};
	CHECK_EQ_INT(recv(c[2], buf, sizeof(buf) - 1, MSG_WAITALL), 5);
	CHECK_EQ_STR(buf, "busy\n");
	CHECK(peer_closed(c[2]));
	CHECK(echoes(f.ps, c[0], "x"));
	CHECK_EQ_UINT(tern_poll_server_num_clients(f.ps), 2);

	/* A slot freed is a slot to take. */
	close(c[1]);
	CHECK(turn_until_clients(f.ps, 1) >= 0);
	int d = connect_loopback(&f.addr);
	CHECK(turn_until_clients(f.ps, 2) >= 0);
	CHECK(echoes(f.ps, d, "y"));
	close(d);
	close(c[0]);
	close(c[2]);
	tern_poll_server_free(f.ps);
}

/* A client sends part of a line: busy, never reclaimed. */
static void send_partial(int fd)
{
	CHECK_EQ_INT(send(fd, "part", 4, 0), 4);
}

struct idle_wanted {
	struct tern_poll_server *ps;
	int fd; /* the peer whose close is awaited */
};

static bool peer_sees_close(void *arg)
{
	struct idle_wanted *w = arg;
	char byte;
	ssize_t n = recv(w->fd, &byte, 1, MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN);
}

static void test_table_full_reclaims_idle(void)
{
	struct fixture f;
	fixture_init(&f);
	f.cfg.max_clients = 2;
	f.cfg.reclaim_idle = true;
	if (!fixture_start(&f))
		return;
	int idle = connect_loopback(&f.addr);
	CHECK(turn_until_clients(f.ps, 1) >= 0);
	int busy = connect_loopback(&f.addr);
	send_partial(busy);
	CHECK(turn_until_clients(f.ps, 2) >= 0);
	CHECK(turn_for(f.ps, 20) >= 1); /* busy's partial line is read */

	/* The idle one gives its slot; the new one is served, not refused. */
	int fresh = connect_loopback(&f.addr);
	struct idle_wanted w = {f.ps, idle};
	CHECK(turn_until(f.ps, peer_sees_close, &w, 2000) >= 0);
	CHECK(echoes(f.ps, fresh, "taken"));
	CHECK_EQ_UINT(tern_poll_server_num_clients(f.ps), 2);

	/* fresh, answered and idle again, gives its slot in turn: the
	 * client with a partial line never does. */
	int next = connect_loopback(&f.addr);
	w.fd = fresh;
	CHECK(turn_until(f.ps, peer_sees_close, &w, 2000) >= 0);
	send_partial(next);
	CHECK(turn_for(f.ps, 20) >= 1);

	/* Both busy: a newcomer is refused as before, and they are served. */
	int refused = connect_loopback(&f.addr);
	struct peer_read r = {.fd = refused, .want = "busy\n"};
	CHECK(turn_until(f.ps, peer_has, &r, 2000) >= 0);
	CHECK_EQ_UINT(tern_poll_server_num_clients(f.ps), 2);
	struct peer_read rb = {.fd = busy, .want = "echo:part-a\n"};
	CHECK_EQ_INT(send(busy, "-a\n", 3, 0), 3);
	CHECK(turn_until(f.ps, peer_has, &rb, 2000) >= 0);
	close(idle);
	close(busy);
	close(fresh);
	close(next);
	close(refused);
	tern_poll_server_free(f.ps);
}

/* A peer with a small, fixed receive buffer: what it reads frees the
 * server's send buffer at once, and what it does not read stays pending
 * at the server. */
static int connect_small_rcvbuf(const struct sockaddr_in *addr, int small)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) < 0 ||
	    connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0) {
		perror("connect_small_rcvbuf");
		exit(1);
	}
	return fd;
}

static void test_stalled_reader_closed(void)
{
	enum { STALL_MS = 150 };
	struct fixture f;
	fixture_init(&f);
	f.cfg.write_stall_ms = STALL_MS;
	/* The peers read on this thread between turns: a timer wish every
	 * 10 ms keeps a turn from sleeping through their pace. */
	f.cfg.timer = echo_timer;
	f.o.timer_period_ms = 10;
	if (!fixture_start(&f))
		return;
	int deaf = connect_small_rcvbuf(&f.addr, 4096);
	int slow = connect_small_rcvbuf(&f.addr, 64 << 10);
	CHECK(turn_until_clients(f.ps, 2) >= 0);
	CHECK_EQ_INT(send(deaf, "big\n", 4, 0), 4);
	CHECK_EQ_INT(send(slow, "big\n", 4, 0), 4);
	CHECK(turn_for(f.ps, 30) >= 1);
	/* Both replies pending, each held once (given, not copied). */
	size_t held = tern_poll_server_output_bytes(f.ps);
	CHECK(held == 2 * (size_t)BIG_REPLY);

	/* slow takes 128 KiB every 50 ms: the server's socket buffer takes
	 * more, and its stall clock restarts each time; deaf takes nothing
	 * and is closed once STALL_MS pass. (The server sees progress only
	 * when its socket buffer takes more: a reader slower than that buffer
	 * per STALL_MS counts as stopped.) */
	uint64_t start = tern_clock_ms();
	static char sink[128 << 10];
	while (tern_clock_ms() - start < 3 * STALL_MS) {
		(void)turn_for(f.ps, 50);
		size_t got = 0;
		ssize_t n;
		while (got < sizeof(sink) &&
		       (n = recv(slow, sink + got, sizeof(sink) - got, MSG_DONTWAIT)) > 0)
			got += (size_t)n;
	}
	CHECK_EQ_UINT(tern_poll_server_num_clients(f.ps), 1);
	CHECK(tern_poll_server_output_bytes(f.ps) == (size_t)BIG_REPLY);

	/* And slow, once it stops reading too. */
	start = tern_clock_ms();
	CHECK(turn_until_clients(f.ps, 0) >= 0);
	CHECK(tern_clock_ms() - start >= STALL_MS - 60);
	close(deaf);
	close(slow);
	tern_poll_server_free(f.ps);
}

/* Counts the lines of path holding `what`. */
static unsigned count_lines_with(const char *path, const char *what)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	unsigned n = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, what))
			n++;
	fclose(f);
	return n;
}

static void test_emfile_pauses_instead_of_spinning(void)
{
	enum { PAUSE_MS = 20, WARN_MS = 200, RUN_MS = 500 };
	struct fixture f;
	fixture_init(&f);
	f.cfg.accept_pause_ms = PAUSE_MS;
	f.cfg.warn_interval_ms = WARN_MS;
	if (!fixture_start(&f))
		return;

	/* The log goes to a file for the run, opened before the fds run out. */
	char dir[512], log_path[600];
	test_tmp_dir_make(dir, sizeof(dir), "poll_server_test");
	snprintf(log_path, sizeof(log_path), "%s/log", dir);
	int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int saved_stderr = dup(STDERR_FILENO);
	CHECK(log_fd >= 0 && saved_stderr >= 0);
	int waiting = connect_loopback(&f.addr);

	/* Every fd number below the lowest free one is taken: lowering the
	 * soft limit to it makes the next accept() fail with EMFILE. */
	struct rlimit saved, low;
	CHECK_EQ_INT(getrlimit(RLIMIT_NOFILE, &saved), 0);
	int lowest_free = dup(STDIN_FILENO);
	close(lowest_free);
	low = saved;
	low.rlim_cur = (rlim_t)lowest_free;
	dup2(log_fd, STDERR_FILENO);
	CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &low), 0);

	unsigned turns = turn_for(f.ps, RUN_MS);
	unsigned clients = tern_poll_server_num_clients(f.ps);

	CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &saved), 0);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	close(log_fd);

	CHECK_EQ_UINT(clients, 0);
	/* About two turns a pause (one sleeping it out, one failing again):
	 * a loop that retried at once would turn hundreds of thousands of
	 * times. */
	CHECK(turns >= 2);
	if (!CHECK(turns <= 4 * RUN_MS / PAUSE_MS))
		fprintf(stderr, "    %u turns in %u ms\n", turns, RUN_MS);
	/* Warned once per interval, not once per failure, the later
	 * warnings with the count of those in between. */
	unsigned warnings = count_lines_with(log_path, "test: accept: ");
	unsigned counted = count_lines_with(log_path, "more since the last warning)");
	if (!CHECK(warnings >= 2 && warnings <= RUN_MS / WARN_MS + 1))
		fprintf(stderr, "    %u warnings in %u ms\n", warnings, RUN_MS);
	CHECK(count_lines_with(log_path, strerror(EMFILE)) == warnings);
	CHECK(counted >= 1 && counted == warnings - 1);
	test_tmp_dir_remove(dir);

	/* With descriptors back, the waiting client is taken and served. */
	CHECK(turn_until_clients(f.ps, 1) >= 0);
	CHECK(echoes(f.ps, waiting, "back"));
	close(waiting);
	tern_poll_server_free(f.ps);
}

static void test_timer_extra_fd_and_stop(void)
{
	struct fixture f;
	fixture_init(&f);
	f.o.timer_period_ms = 50;
	f.cfg.timer = echo_timer;
	/* No listener: the control thread without --control. */
	if (!CHECK_EQ_INT(tern_poll_server_new(&f.cfg, -1, &f.ps), 0))
		return;
	f.o.extra_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK_EQ_INT(tern_poll_server_add_fd(f.ps, f.o.extra_fd, echo_extra), 0);
	CHECK_EQ_INT(tern_poll_server_add_fd(f.ps, f.o.extra_fd, echo_extra), 0);
	CHECK_EQ_INT(tern_poll_server_add_fd(f.ps, f.o.extra_fd, echo_extra), -ENOSPC);

	/* The hook runs on every turn and its wish sets the sleep: about
	 * one turn per 50 ms, not one per TERN_POLL_MAX_WAIT_MS, nor a spin. */
	unsigned turns = turn_for(f.ps, 300);
	CHECK(turns >= 4 && turns <= 10);
	CHECK_EQ_UINT(f.o.timer_calls, turns);
	CHECK_EQ_UINT(f.o.extra_reads, 0);

	uint64_t one = 1;
	CHECK_EQ_INT(write(f.o.extra_fd, &one, sizeof(one)), sizeof(one));
	CHECK_EQ_INT(tern_poll_server_turn(f.ps), 1);
	CHECK_EQ_UINT(f.o.extra_reads, 1); /* the first watcher read it */

	tern_poll_server_request_stop(f.ps);
	CHECK_EQ_INT(tern_poll_server_turn(f.ps), 0);
	CHECK_EQ_INT(tern_poll_server_turn(f.ps), 0); /* and stays stopped */
	tern_poll_server_free(f.ps);
	close(f.o.extra_fd);
}

/* A config without a turn, a slot or room for the client is refused, and
 * the listener it was given is closed all the same. */
static void test_bad_config(void)
{
	struct fixture f;
	for (unsigned k = 0; k < 3; k++) {
		fixture_init(&f);
		if (k == 0)
			f.cfg.client_size = sizeof(struct tern_poll_client) - 1;
		else if (k == 1)
			f.cfg.max_clients = 0;
		else
			f.cfg.turn = NULL;
		int lfd = listen_loopback(&f.addr);
		CHECK_EQ_INT(tern_poll_server_new(&f.cfg, lfd, &f.ps), -EINVAL);
		CHECK(f.ps == NULL);
		CHECK(fcntl(lfd, F_GETFD) < 0 && errno == EBADF);
	}
}

/* As control and metrics run it: its own thread, stopped by free. */
static void test_on_its_own_thread(void)
{
	struct fixture f;
	fixture_init(&f);
	if (!fixture_start(&f))
		return;
	CHECK_EQ_INT(tern_poll_server_start(f.ps), 0);
	int c = connect_loopback(&f.addr);
	CHECK_EQ_INT(send(c, "thread\n", 7, 0), 7);
	char buf[32] = {0};
	CHECK_EQ_INT(recv(c, buf, 12, MSG_WAITALL), 12);
	CHECK_EQ_STR(buf, "echo:thread\n");
	/* A client still connected is closed by free, after the join. */
	tern_poll_server_free(f.ps);
	CHECK(peer_closed(c));
	close(c);
}

int main(void)
{
	tern_log_set_level(TERN_LOG_WARN);
	test_client_is_answered();
	test_stalled_client_closed_at_deadline();
	test_pipelined_lines_do_not_wait();
	test_table_full_refuses();
	test_table_full_reclaims_idle();
	test_stalled_reader_closed();
	test_emfile_pauses_instead_of_spinning();
	test_timer_extra_fd_and_stop();
	test_bad_config();
	test_on_its_own_thread();
	return check_summary();
}
