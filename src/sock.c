/* Listening sockets, and options of connected ones. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tern/sock.h"

int tern_sock_listen(const struct tern_addr *addr, unsigned flags, char *err, size_t err_len)
{
	int one = 1;
	int type = SOCK_STREAM | SOCK_CLOEXEC | ((flags & TERN_SOCK_NONBLOCK) ? SOCK_NONBLOCK : 0);
	int fd = socket(addr->ss.ss_family, type, 0);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if ((flags & TERN_SOCK_REUSEPORT) &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (addr->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&addr->ss, addr->ss_len) < 0 ||
	    listen(fd, SOMAXCONN) < 0)
		goto fail;
	return fd;
fail:;
	int e = errno;
	snprintf(err, err_len, "cannot listen on %s: %s", addr->text, strerror(e));
	if (fd >= 0)
		close(fd);
	return -e;
}

int tern_sock_keepalive(int fd, uint64_t idle_ms)
{
	int one = 1;
	int idle = (int)(idle_ms / 1000);
	int interval = idle < TERN_SOCK_KEEPALIVE_INTERVAL_S ? idle : TERN_SOCK_KEEPALIVE_INTERVAL_S;
	int probes = TERN_SOCK_KEEPALIVE_PROBES;

	if (idle_ms == 0)
		return 0;
	/* The timings first: keepalive is never on with the kernel's. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}
