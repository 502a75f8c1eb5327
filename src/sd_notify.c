/* systemd's notify protocol without libsystemd: see sd_notify(3) and the
 * protocol description in systemd's docs (NOTIFY_SOCKET, one datagram per
 * message, credentials checked by the receiver from the socket). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tern/log.h"
#include "tern/sd_notify.h"

/* NOTIFY_SOCKET to a socket address. '@' stands for the leading NUL of an
 * abstract name (unix(7)), whose length is then exactly the name's: an
 * abstract address is not NUL-terminated. */
static int notify_address(const char *name, struct sockaddr_un *sun, socklen_t *out_len)
{
	size_t len = strlen(name);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (name[0] != '/' && name[0] != '@')
		return -EINVAL; /* relative paths and vsock: are not ours to guess */
	if (len >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, name, len);
	if (name[0] == '@') {
		sun->sun_path[0] = '\0';
		*out_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else {
		*out_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	}
	return 0;
}

int tern_sd_notify_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t sun_len;
	int ret;

	if (!name || name[0] == '\0')
		return 0;
	ret = notify_address(name, &sun, &sun_len);
	if (ret < 0)
		return ret;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* One datagram; MSG_NOSIGNAL in case the receiver went away, and
	 * MSG_DONTWAIT because a receiver that stops reading fills its queue
	 * (net.unix.max_dgram_qlen datagrams) and would then block the
	 * sender: the main thread, which takes the signals, or the control
	 * thread. Better a keep-alive or a STATUS= lost (-EAGAIN) than a
	 * tern that no longer stops on SIGTERM. */
	ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT,
			      (struct sockaddr *)&sun, sun_len);
	ret = sent < 0 ? -errno : 1;
	close(fd);
	return ret;
}

/* Sends, and logs a failure at debug: see the header for why no more. */
static void notify(const char *state, const char *what)
{
	int ret = tern_sd_notify_send(state);
	if (ret < 0)
		tern_log(TERN_LOG_DEBUG, "sd_notify %s to NOTIFY_SOCKET=%s: %s", what,
			 getenv("NOTIFY_SOCKET"), strerror(-ret));
}

void tern_sd_notify_ready(void)
{
	char state[64];
	snprintf(state, sizeof(state), "READY=1\nMAINPID=%ld", (long)getpid());
	notify(state, "READY");
}

void tern_sd_notify_reloading(void)
{
	struct timespec ts;
	char state[96];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)usec);
	notify(state, "RELOADING");
}

void tern_sd_notify_stopping(void)
{
	notify("STOPPING=1", "STOPPING");
}

bool tern_sd_notify_wanted(void)
{
	const char *name = getenv("NOTIFY_SOCKET");
	return name && name[0] != '\0';
}

void tern_sd_notify_status(const char *text)
{
	char state[TERN_SD_STATUS_MAX + sizeof("STATUS=")];
	size_t n = (size_t)snprintf(state, sizeof(state), "STATUS=%s", text);

	/* One line: a newline would start another assignment (and a NUL
	 * would end the datagram's text early). */
	for (size_t i = sizeof("STATUS=") - 1; i < n && i < sizeof(state) - 1; i++)
		if ((unsigned char)state[i] < 0x20 || state[i] == 0x7f)
			state[i] = ' ';
	notify(state, "STATUS");
}

void tern_sd_notify_watchdog(void)
{
	notify("WATCHDOG=1", "WATCHDOG");
}
