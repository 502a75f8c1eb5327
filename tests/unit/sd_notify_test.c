/* sd_notify without libsystemd: the exact datagrams on a socket bound in a
 * temp dir and on an abstract socket (STATUS= kept to one bounded line),
 * nothing at all without NOTIFY_SOCKET, every bad NOTIFY_SOCKET refused
 * without a crash, a receiver that stops reading never blocking a send,
 * and no descriptor left open by a send. */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "tern/sd_notify.h"

/* Short enough that every socket path below fits sun_path (108 bytes). */
static char tmp_dir[64];

static int bind_dgram(const struct sockaddr_un *sun, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (const struct sockaddr *)sun, len) < 0) {
		perror("bind notify socket");
		exit(1);
	}
	return fd;
}

/* A socket bound to a path in the temp dir; the path goes to path. */
static int bind_path(char *path, size_t path_len)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(path, path_len, "%s/notify.sock", tmp_dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	return bind_dgram(&sun, sizeof(sun));
}

/* A socket bound to an abstract name; "@name" goes to env_value. */
static int bind_abstract(char *env_value, size_t env_len)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char name[64];
	snprintf(name, sizeof(name), "tern-sd-notify-test-%ld-%ld", (long)getpid(), (long)time(NULL));
	snprintf(env_value, env_len, "@%s", name);
	memcpy(sun.sun_path + 1, name, strlen(name));
	return bind_dgram(&sun, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name)));
}

/* The next datagram, NUL-terminated in buf; "" when none is waiting. */
static const char *recv_datagram(int fd, char *buf, size_t buf_len)
{
	ssize_t n = recv(fd, buf, buf_len - 1, MSG_DONTWAIT);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	return buf;
}

static unsigned count_fds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static uint64_t monotonic_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The three helpers' datagrams, exactly, on the socket fd. */
static void check_messages(int fd)
{
	char buf[256], want[64];

	snprintf(want, sizeof(want), "READY=1\nMAINPID=%ld", (long)getpid());
	tern_sd_notify_ready();
	CHECK_EQ_STR(recv_datagram(fd, buf, sizeof(buf)), want);

	tern_sd_notify_stopping();
	CHECK_EQ_STR(recv_datagram(fd, buf, sizeof(buf)), "STOPPING=1");

	uint64_t before = monotonic_usec();
	tern_sd_notify_reloading();
	uint64_t after = monotonic_usec();
	recv_datagram(fd, buf, sizeof(buf));
	const char *prefix = "RELOADING=1\nMONOTONIC_USEC=";
	if (CHECK(strncmp(buf, prefix, strlen(prefix)) == 0)) {
		char *end;
		unsigned long long usec = strtoull(buf + strlen(prefix), &end, 10);
		CHECK(*end == '\0');
		CHECK(usec >= before && usec <= after);
	} else {
		fprintf(stderr, "    got \"%s\"\n", buf);
	}

	/* The raw call, as a reload would send "READY=1" after RELOADING. */
	CHECK_EQ_INT(tern_sd_notify_send("READY=1"), 1);
	CHECK_EQ_STR(recv_datagram(fd, buf, sizeof(buf)), "READY=1");

	tern_sd_notify_watchdog();
	CHECK_EQ_STR(recv_datagram(fd, buf, sizeof(buf)), "WATCHDOG=1");
	tern_sd_notify_status("serving 2 connections, no reload yet");
	CHECK_EQ_STR(recv_datagram(fd, buf, sizeof(buf)),
		     "STATUS=serving 2 connections, no reload yet");
	/* One assignment whatever the text holds: a newline in a reload
	 * error must not become a second variable. */
	tern_sd_notify_status("failed: bad\nREADY=1\tx\r");
	CHECK_EQ_STR(recv_datagram(fd, buf, sizeof(buf)), "STATUS=failed: bad READY=1 x ");
	CHECK(tern_sd_notify_wanted());
	CHECK_EQ_STR(recv_datagram(fd, buf, sizeof(buf)), ""); /* nothing more */
}

/* A STATUS= text longer than TERN_SD_STATUS_MAX is cut, not dropped. */
static void check_long_status(int fd)
{
	char text[TERN_SD_STATUS_MAX * 2], buf[TERN_SD_STATUS_MAX * 3];

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	tern_sd_notify_status(text);
	recv_datagram(fd, buf, sizeof(buf));
	CHECK_EQ_UINT(strlen(buf), strlen("STATUS=") + TERN_SD_STATUS_MAX);
	CHECK(strncmp(buf, "STATUS=xxx", 10) == 0);
}

static void test_path_socket(void)
{
	char path[108];
	int fd = bind_path(path, sizeof(path));

	setenv("NOTIFY_SOCKET", path, 1);
	unsigned fds = count_fds();
	check_messages(fd);
	check_long_status(fd);
	CHECK_EQ_UINT(count_fds(), fds); /* every send closed its socket */
	unsetenv("NOTIFY_SOCKET");
	close(fd);
	unlink(path);
}

static void test_abstract_socket(void)
{
	char value[80];
	int fd = bind_abstract(value, sizeof(value));

	setenv("NOTIFY_SOCKET", value, 1);
	check_messages(fd);
	/* The name is exactly the bytes after '@': one byte more or less is
	 * another socket. */
	char longer[96];
	snprintf(longer, sizeof(longer), "%sx", value);
	setenv("NOTIFY_SOCKET", longer, 1);
	CHECK_EQ_INT(tern_sd_notify_send("READY=1"), -ECONNREFUSED);
	unsetenv("NOTIFY_SOCKET");
	close(fd);
}

static void test_unset_does_nothing(void)
{
	char path[108], buf[64];
	int fd = bind_path(path, sizeof(path));

	unsetenv("NOTIFY_SOCKET");
	unsigned fds = count_fds();
	CHECK_EQ_INT(tern_sd_notify_send("READY=1"), 0);
	tern_sd_notify_ready();
	tern_sd_notify_reloading();
	tern_sd_notify_stopping();
	tern_sd_notify_status("serving");
	tern_sd_notify_watchdog();
	CHECK(!tern_sd_notify_wanted());
	CHECK_EQ_STR(recv_datagram(fd, buf, sizeof(buf)), "");
	CHECK_EQ_UINT(count_fds(), fds);

	setenv("NOTIFY_SOCKET", "", 1);
	CHECK_EQ_INT(tern_sd_notify_send("READY=1"), 0);
	tern_sd_notify_ready();
	CHECK(!tern_sd_notify_wanted());
	CHECK_EQ_STR(recv_datagram(fd, buf, sizeof(buf)), "");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
	unlink(path);
}

/* A receiver that does not read: its queue fills and a send then fails
 * at once with -EAGAIN instead of blocking tern's thread (an alarm ends
 * the test if one ever blocks). */
static void test_full_receiver_never_blocks(void)
{
	char path[108];
	int fd = bind_path(path, sizeof(path));
	int ret = 0;

	setenv("NOTIFY_SOCKET", path, 1);
	alarm(10);
	for (int i = 0; i < 100000 && ret >= 0; i++)
		ret = tern_sd_notify_send("WATCHDOG=1");
	CHECK_EQ_INT(ret, -EAGAIN);
	tern_sd_notify_watchdog(); /* logs at debug, returns */
	tern_sd_notify_status("still not blocking");
	alarm(0);
	unsetenv("NOTIFY_SOCKET");
	close(fd);
	unlink(path);
}

static void test_bad_socket(void)
{
	char missing[300], too_long[200];

	/* Relative paths are not a systemd address; nor is vsock (not ours). */
	setenv("NOTIFY_SOCKET", "notify.sock", 1);
	CHECK_EQ_INT(tern_sd_notify_send("READY=1"), -EINVAL);
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	CHECK_EQ_INT(tern_sd_notify_send("READY=1"), -EINVAL);

	memset(too_long, 'a', sizeof(too_long) - 1);
	too_long[0] = '/';
	too_long[sizeof(too_long) - 1] = '\0';
	setenv("NOTIFY_SOCKET", too_long, 1);
	CHECK_EQ_INT(tern_sd_notify_send("READY=1"), -ENAMETOOLONG);

	snprintf(missing, sizeof(missing), "%s/nobody-listens.sock", tmp_dir);
	setenv("NOTIFY_SOCKET", missing, 1);
	unsigned fds = count_fds();
	CHECK_EQ_INT(tern_sd_notify_send("READY=1"), -ENOENT);
	CHECK_EQ_UINT(count_fds(), fds);
	/* The helpers only log (at debug) and return. */
	tern_sd_notify_ready();
	tern_sd_notify_reloading();
	tern_sd_notify_stopping();
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	if (!base || !*base || strlen(base) > 40)
		base = "/tmp";
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/sd_notify_test.XXXXXX", base);
	if (!mkdtemp(tmp_dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_path_socket();
	test_abstract_socket();
	test_unset_does_nothing();
	test_full_receiver_never_blocks();
	test_bad_socket();
	rmdir(tmp_dir);
	return check_summary();
}
