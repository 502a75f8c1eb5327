/* Socket activation: the LISTEN_* variables read as sd_listen_fds(3) does
 * (this PID only, unset afterwards in every case), each passed descriptor
 * checked (open, a socket, listening, SOCK_STREAM, TCP) with a message
 * naming it, names from LISTEN_FDNAMES, and address matching. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "tern/listen_fds.h"

/* Moves fd to target (closing whatever was there), so descriptors 3, 4...
 * hold what the test passes, as a service manager would lay them out. */
static void place(int fd, int target)
{
	if (fd < 0) {
		perror("socket");
		exit(1);
	}
	if (fd != target) {
		if (dup2(fd, target) < 0) {
			perror("dup2");
			exit(1);
		}
		close(fd);
	}
}

/* A new descriptor above the ones the test lays out. */
static int high(int fd)
{
	int moved = fcntl(fd, F_DUPFD, 20);
	close(fd);
	return moved;
}

static int tcp_listener(int family, unsigned short *out_port)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int fd = socket(family, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0) {
		close(fd);
		return -1;
	}
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	*out_port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					    : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return high(fd);
}

static void set_env(const char *pid, const char *fds, const char *names)
{
	char own[32];

	if (pid && strcmp(pid, "self") == 0) {
		snprintf(own, sizeof(own), "%ld", (long)getpid());
		pid = own;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (pid)
		setenv("LISTEN_PID", pid, 1);
	if (fds)
		setenv("LISTEN_FDS", fds, 1);
	if (names)
		setenv("LISTEN_FDNAMES", names, 1);
}

static bool env_clear(void)
{
	return !getenv("LISTEN_PID") && !getenv("LISTEN_FDS") && !getenv("LISTEN_FDNAMES");
}

/* tern_listen_fds_take() must fail with want and a message naming what. */
static void expect_error(int want, const char *message)
{
	struct tern_listen_fds fds;
	char err[256] = "";

	CHECK_EQ_INT(tern_listen_fds_take(&fds, err, sizeof(err)), want);
	CHECK_EQ_STR(err, message);
	CHECK(fds.num == 0 && fds.socks == NULL);
	CHECK(env_clear());
}

static void test_not_for_us(void)
{
	struct tern_listen_fds fds;
	char err[256] = "";

	set_env(NULL, NULL, NULL);
	CHECK_EQ_INT(tern_listen_fds_take(&fds, err, sizeof(err)), 0);
	CHECK(fds.num == 0);

	/* Another process's sockets: ignored, and the variables still go. */
	set_env("1", "2", "a:b");
	CHECK_EQ_INT(tern_listen_fds_take(&fds, err, sizeof(err)), 0);
	CHECK(env_clear());

	/* Half the protocol is none of it. */
	set_env(NULL, "1", NULL);
	CHECK_EQ_INT(tern_listen_fds_take(&fds, err, sizeof(err)), 0);
	CHECK(env_clear());
	set_env("self", NULL, NULL);
	CHECK_EQ_INT(tern_listen_fds_take(&fds, err, sizeof(err)), 0);
	CHECK(env_clear());
	set_env("self", "0", NULL);
	CHECK_EQ_INT(tern_listen_fds_take(&fds, err, sizeof(err)), 0);
	CHECK(env_clear());
	CHECK_EQ_STR(err, "");
}

static void test_malformed(void)
{
	set_env("abc", "1", NULL);
	expect_error(-EBADMSG, "LISTEN_PID=abc: not a process id");
	set_env("0", "1", NULL);
	expect_error(-EBADMSG, "LISTEN_PID=0: not a process id");
	set_env("-5", "1", NULL);
	expect_error(-EBADMSG, "LISTEN_PID=-5: not a process id");
	set_env("self", "two", NULL);
	expect_error(-EBADMSG, "LISTEN_FDS=two: not a number of descriptors");
	set_env("self", "1 ", NULL);
	expect_error(-EBADMSG, "LISTEN_FDS=1 : not a number of descriptors");
	set_env("self", "65", NULL);
	expect_error(-ERANGE, "LISTEN_FDS=65: more than 64 sockets");
}

static void test_two_sockets(void)
{
	struct tern_listen_fds fds;
	unsigned short port4, port6;
	char err[256] = "", want[64];
	int fd4 = tcp_listener(AF_INET, &port4);
	int fd6 = tcp_listener(AF_INET6, &port6);

	CHECK(fd4 >= 0);
	if (fd6 < 0) {
		/* No IPv6 on this host: a second IPv4 socket instead. */
		fprintf(stderr, "note: no IPv6 loopback, testing with two IPv4 sockets\n");
		fd6 = tcp_listener(AF_INET, &port6);
	}
	place(fd4, 3);
	place(fd6, 4);
	set_env("self", "2", "web");
	CHECK_EQ_INT(tern_listen_fds_take(&fds, err, sizeof(err)), 2);
	CHECK(env_clear());
	if (!CHECK_EQ_UINT(fds.num, 2)) {
		fprintf(stderr, "    %s\n", err);
		return;
	}
	CHECK_EQ_INT(fds.socks[0].fd, 3);
	CHECK_EQ_INT(fds.socks[1].fd, 4);
	CHECK_EQ_STR(fds.socks[0].name, "web");
	CHECK_EQ_STR(fds.socks[1].name, ""); /* fewer names than sockets */
	snprintf(want, sizeof(want), "127.0.0.1:%u", port4);
	CHECK_EQ_STR(fds.socks[0].addr.text, want);
	if (fds.socks[1].addr.ss.ss_family == AF_INET6) {
		snprintf(want, sizeof(want), "[::1]:%u", port6);
		CHECK_EQ_STR(fds.socks[1].addr.text, want);
	}
	/* Made close-on-exec, as sd_listen_fds() does. */
	CHECK(fcntl(3, F_GETFD) & FD_CLOEXEC);
	CHECK(fcntl(4, F_GETFD) & FD_CLOEXEC);

	/* Matching a --listen: same family, address and port. */
	struct sockaddr_in same = {.sin_family = AF_INET, .sin_port = htons(port4),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_storage ss = {0};
	memcpy(&ss, &same, sizeof(same));
	CHECK(tern_listen_fds_same_addr(&fds.socks[0].addr.ss, &ss));
	((struct sockaddr_in *)&ss)->sin_port = htons((unsigned short)(port4 + 1));
	CHECK(!tern_listen_fds_same_addr(&fds.socks[0].addr.ss, &ss));
	((struct sockaddr_in *)&ss)->sin_port = htons(port4);
	((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_ANY);
	CHECK(!tern_listen_fds_same_addr(&fds.socks[0].addr.ss, &ss));
	CHECK(!tern_listen_fds_same_addr(&fds.socks[0].addr.ss, &fds.socks[1].addr.ss));
	CHECK(tern_listen_fds_same_addr(&fds.socks[1].addr.ss, &fds.socks[1].addr.ss));

	tern_listen_fds_free(&fds);
	CHECK(fds.num == 0 && fds.socks == NULL);
	CHECK(fcntl(3, F_GETFD) < 0 && errno == EBADF);
	CHECK(fcntl(4, F_GETFD) < 0 && errno == EBADF);
}

/* Names: one per socket, colon-separated, cut to fit. */
static void test_names(void)
{
	struct tern_listen_fds fds;
	unsigned short port;
	char err[256] = "", long_names[200];

	place(tcp_listener(AF_INET, &port), 3);
	place(tcp_listener(AF_INET, &port), 4);
	memset(long_names, 'n', sizeof(long_names) - 1);
	long_names[sizeof(long_names) - 1] = '\0';
	memcpy(long_names, "a:", 2);
	set_env("self", "2", long_names);
	CHECK_EQ_INT(tern_listen_fds_take(&fds, err, sizeof(err)), 2);
	if (fds.num == 2) {
		CHECK_EQ_STR(fds.socks[0].name, "a");
		CHECK_EQ_UINT(strlen(fds.socks[1].name), sizeof(fds.socks[1].name) - 1);
	}
	tern_listen_fds_free(&fds);
}

static void test_bad_descriptors(void)
{
	int pipe_fds[2];
	unsigned short port;

	/* Not open. */
	close(3);
	set_env("self", "1", NULL);
	expect_error(-EBADF, "inherited fd 3 (LISTEN_FDS): not open");

	/* The second of two is bad: the message names it. */
	place(tcp_listener(AF_INET, &port), 3);
	close(4);
	set_env("self", "2", NULL);
	expect_error(-EBADF, "inherited fd 4 (LISTEN_FDS): not open");

	/* Not a socket. */
	CHECK_EQ_INT(pipe(pipe_fds), 0);
	place(high(pipe_fds[0]), 3);
	close(pipe_fds[1]);
	set_env("self", "1", NULL);
	expect_error(-ENOTSOCK, "inherited fd 3 (LISTEN_FDS): not a socket");

	/* A TCP socket that does not listen, and a UDP one. */
	place(high(socket(AF_INET, SOCK_STREAM, 0)), 3);
	set_env("self", "1", NULL);
	expect_error(-ENOTCONN, "inherited fd 3 (LISTEN_FDS): not a listening socket");
	place(high(socket(AF_INET, SOCK_DGRAM, 0)), 3);
	set_env("self", "1", NULL);
	expect_error(-ENOTCONN, "inherited fd 3 (LISTEN_FDS): not a listening socket");

	/* Listening, but not SOCK_STREAM: a UNIX seqpacket socket. */
	char name[64];
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(name, sizeof(name), "tern-listen-fds-test-%ld", (long)getpid());
	memcpy(sun.sun_path + 1, name, strlen(name));
	socklen_t sun_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sun, sun_len) == 0 && listen(fd, 4) == 0);
	place(high(fd), 3);
	set_env("self", "1", NULL);
	expect_error(-EPROTOTYPE, "inherited fd 3 (LISTEN_FDS): not a SOCK_STREAM socket");

	/* A listening stream socket, but not TCP. */
	close(3);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sun, sun_len) == 0 && listen(fd, 4) == 0);
	place(high(fd), 3);
	set_env("self", "1", NULL);
	expect_error(-EAFNOSUPPORT, "inherited fd 3 (LISTEN_FDS): address family 1; tern listens "
				    "on TCP over IPv4 or IPv6 only");
	close(3);
	close(4);
}

int main(void)
{
	test_not_for_us();
	test_malformed();
	test_two_sockets();
	test_names();
	test_bad_descriptors();
	return check_summary();
}
