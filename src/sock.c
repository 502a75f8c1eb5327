/* Listening sockets. */
#include <errno.h>
#include <netinet/in.h>
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
