/* The control thread in process: a server with one worker on a loopback
 * port, the control socket in a temporary directory, and a client that
 * writes command lines and reads the JSON lines back. Checks each
 * command's exact reply in the states a test can make without TLS (no
 * connection, one still in its handshake), errors for bad input (unknown
 * command, bad ID, a line too long) that leave the thread serving, and
 * pipelined commands answered in order. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "server_fixture.h"
#include "tmp_dir.h"
#include "tern/clock.h"
#include "tern/config.h"
#include "tern/control.h"
#include "tern/parse.h"
#include "tern/server.h"
#include "tern/worker.h"

static struct tern_config cfg;
static struct tern_server srv;

static int connect_control(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 5};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)); /* a wait fails, never hangs */
	return fd;
}

/* Reads one reply line (without its newline) into out; "" on EOF or
 * timeout. Bytes after the line stay in `pending` for the next call. */
static char pending[65536];
static size_t pending_len;

static void read_line(int fd, char *out, size_t out_len)
{
	for (;;) {
		char *nl = memchr(pending, '\n', pending_len);
		if (nl) {
			size_t len = (size_t)(nl - pending);
			snprintf(out, out_len, "%.*s", (int)len, pending);
			pending_len -= len + 1;
			memmove(pending, nl + 1, pending_len);
			return;
		}
		ssize_t n = recv(fd, pending + pending_len, sizeof(pending) - pending_len, 0);
		/* A signal (the sanitizers' runtimes use some) is not the end
		 * of the reply: treated as one, the next command would read
		 * this one's reply, and every later one the one before. */
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			out[0] = '\0';
			return;
		}
		pending_len += (size_t)n;
	}
}

static void ask(int fd, const char *line, char *out, size_t out_len)
{
	CHECK_EQ_INT(send(fd, line, strlen(line), MSG_NOSIGNAL), (long long)strlen(line));
	read_line(fd, out, out_len);
}

static void test_commands(const char *path, uint16_t port)
{
	char reply[8192];
	int fd = connect_control(path);
	if (!CHECK(fd >= 0))
		return;

	ask(fd, "help\n", reply, sizeof(reply));
	CHECK(strncmp(reply, "{\"ok\":true,\"commands\":[", 23) == 0);
	CHECK(strstr(reply, "\"tickets\"") && strstr(reply, "\"verify-client\""));

	ask(fd, "conns\n", reply, sizeof(reply));
	CHECK_EQ_STR(reply, "{\"ok\":true,\"conns\":[]}");
	ask(fd, "tickets 999\n", reply, sizeof(reply));
	CHECK_EQ_STR(reply, "{\"ok\":false,\"error\":\"no connection 999\"}");
	/* worker 7's top bits, with one worker */
	ask(fd, "tickets 1970324836974593 1\n", reply, sizeof(reply));
	CHECK_EQ_STR(reply, "{\"ok\":false,\"error\":\"no connection 1970324836974593\"}");
	ask(fd, "tickets all 2\n", reply, sizeof(reply));
	CHECK_EQ_STR(reply, "{\"ok\":true,\"queued\":0,\"workers\":[{\"worker\":0,\"queued\":0}]}");
	ask(fd, "tickets all 17\n", reply, sizeof(reply));
	CHECK_EQ_STR(reply, "{\"ok\":false,\"error\":\"tickets: N must be 1..16\"}");
	ask(fd, "frobnicate\n", reply, sizeof(reply));
	CHECK_EQ_STR(reply, "{\"ok\":false,\"error\":\"unknown command 'frobnicate'\"}");

	/* A client mid-handshake: listed, refused what needs a handshake. */
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int raw = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_EQ_INT(connect(raw, (struct sockaddr *)&sin, sizeof(sin)), 0);
	for (int i = 0; i < 500; i++) {
		ask(fd, "conns\n", reply, sizeof(reply));
		if (strstr(reply, "\"id\":1,"))
			break;
		usleep(2000);
	}
	CHECK(strstr(reply, "\"id\":1,\"worker\":0,") != NULL);
	CHECK(strstr(reply, "\"version\":null") != NULL);
	ask(fd, "tickets 1 2\n", reply, sizeof(reply));
	CHECK_EQ_STR(reply, "{\"ok\":false,\"error\":\"connection 1 is still in its handshake\"}");
	ask(fd, "verify-client 1\n", reply, sizeof(reply));
	CHECK_EQ_STR(reply, "{\"ok\":false,\"error\":\"connection 1 is still in its handshake\"}");
	ask(fd, "tickets all\n", reply, sizeof(reply)); /* skipped */
	CHECK_EQ_STR(reply, "{\"ok\":true,\"queued\":0,\"workers\":[{\"worker\":0,\"queued\":0}]}");
	close(raw);

	/* Pipelined: two lines in one write, two replies in order. */
	ask(fd, "conns 0\nhelp\n", reply, sizeof(reply));
	CHECK(strncmp(reply, "{\"ok\":", 6) == 0);
	read_line(fd, reply, sizeof(reply));
	CHECK(strncmp(reply, "{\"ok\":true,\"commands\":[", 23) == 0);

	ask(fd, "stats\n", reply, sizeof(reply));
	CHECK(strstr(reply, "\"ok\":true") && strstr(reply, "\"workers\":1") &&
	      strstr(reply, "\"num_tickets\":2") && strstr(reply, "\"conns_total\":1"));
	CHECK(strstr(reply, "\"io\":\"uring\"") != NULL);
	/* info: the engine prepare chose (io_uring on this host). */
	ask(fd, "info\n", reply, sizeof(reply));
	char want[128];
	snprintf(want, sizeof(want), "{\"ok\":true,\"version\":\"%s\",\"uptime_s\":0,\"io\":\"uring\","
		 "\"workers\":1}", TERN_VERSION);
	CHECK_EQ_STR(reply, want);
	ask(fd, "info now\n", reply, sizeof(reply));
	CHECK_EQ_STR(reply, "{\"ok\":false,\"error\":\"too many arguments for 'info'\"}");
	ask(fd, "rotate-ticket-keys\n", reply, sizeof(reply));
	CHECK(strncmp(reply, "{\"ok\":true,\"keys\":2,", 20) == 0);

	/* A line past 4 KiB: answered once, then hung up on. */
	char *longline = malloc(5000);
	memset(longline, 'x', 5000);
	CHECK_EQ_INT(send(fd, longline, 5000, MSG_NOSIGNAL), 5000);
	free(longline);
	read_line(fd, reply, sizeof(reply));
	CHECK_EQ_STR(reply, "{\"ok\":false,\"error\":\"command longer than 4096 bytes\"}");
	read_line(fd, reply, sizeof(reply));
	CHECK_EQ_STR(reply, ""); /* closed */
	close(fd);

	/* The thread serves the next client as before. */
	pending_len = 0;
	fd = connect_control(path);
	ask(fd, "conns\n", reply, sizeof(reply));
	CHECK_EQ_STR(reply, "{\"ok\":true,\"conns\":[]}");
	close(fd);
}

int main(void)
{
	char err[512], dir[PATH_MAX], path[PATH_MAX + 16];
	struct tern_control *ctl = NULL;

	test_tmp_dir_make(dir, sizeof(dir), "tern-control-test");
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	/* The backend is never reached: no handshake completes here. */
	fixture_one_worker_config(&cfg, "127.0.0.1:9");
	cfg.control_path = path;

	if (!CHECK_EQ_INT(tern_server_prepare(&srv, &cfg, true, err, sizeof(err)), 0) ||
	    !CHECK_EQ_INT(tern_server_start(&srv, err, sizeof(err)), 0) ||
	    !CHECK_EQ_INT(tern_control_start(&srv, &ctl, err, sizeof(err)), 0)) {
		fprintf(stderr, "%s\n", err);
		return check_summary();
	}
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	CHECK_EQ_INT(tern_worker_listen_addr(srv.workers[0], 0, (struct sockaddr *)&sin, &len), 0);

	test_commands(path, ntohs(sin.sin_port));

	tern_control_stop(ctl);
	CHECK(access(path, F_OK) < 0); /* the socket file is gone */
	fixture_server_stop(&srv);
	test_tmp_dir_remove(dir);
	return check_summary();
}
