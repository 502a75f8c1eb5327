/* A test's own systemd notify socket: an abstract datagram socket named
 * in NOTIFY_SOCKET, so that what tern sends with sd_notify can be read
 * back (sd_status_test, sd_watchdog_test). */
#ifndef TERN_TEST_NOTIFY_FIXTURE_H
#define TERN_TEST_NOTIFY_FIXTURE_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Binds "@<prefix>-<pid>" and sets NOTIFY_SOCKET to it; exits on
 * failure, as the test cannot check anything without it. */
static inline int test_notify_socket(const char *prefix)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char name[64], env[80];
	snprintf(name, sizeof(name), "%s-%ld", prefix, (long)getpid());
	memcpy(sun.sun_path + 1, name, strlen(name));
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, len) < 0) {
		perror("notify socket");
		exit(1);
	}
	snprintf(env, sizeof(env), "@%s", name);
	setenv("NOTIFY_SOCKET", env, 1);
	return fd;
}

#endif
