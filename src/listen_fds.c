/* Socket activation without libsystemd: the environment variables of
 * sd_listen_fds(3), each passed descriptor checked before it is trusted. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tern/listen_fds.h"
#include "tern/parse.h"

/* A decimal number with nothing around it; -EBADMSG otherwise. */
static int parse_decimal(const char *text, unsigned long *out)
{
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return -EBADMSG;
	errno = 0;
	*out = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0')
		return -EBADMSG;
	return 0;
}

/* The checks the header lists, on one descriptor; fills s on success. */
static int check_socket(int fd, struct tern_inherited *s, char *err, size_t err_len)
{
	int value = 0;
	socklen_t len = sizeof(value);

	if (fcntl(fd, F_GETFD) < 0) {
		snprintf(err, err_len, "inherited fd %d (LISTEN_FDS): not open", fd);
		return -EBADF;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) < 0) {
		int e = errno;
		snprintf(err, err_len, "inherited fd %d (LISTEN_FDS): %s", fd,
			 e == ENOTSOCK ? "not a socket" : strerror(e));
		return -e;
	}
	if (!value) {
		snprintf(err, err_len, "inherited fd %d (LISTEN_FDS): not a listening socket", fd);
		return -ENOTCONN;
	}
	len = sizeof(value);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) < 0 || value != SOCK_STREAM) {
		snprintf(err, err_len, "inherited fd %d (LISTEN_FDS): not a SOCK_STREAM socket", fd);
		return -EPROTOTYPE;
	}
	s->addr.ss_len = sizeof(s->addr.ss);
	if (getsockname(fd, (struct sockaddr *)&s->addr.ss, &s->addr.ss_len) < 0) {
		int e = errno;
		snprintf(err, err_len, "inherited fd %d (LISTEN_FDS): getsockname: %s", fd, strerror(e));
		return -e;
	}
	/* conn.c formats peers and sets TCP_NODELAY for TCP only. */
	if (s->addr.ss.ss_family != AF_INET && s->addr.ss.ss_family != AF_INET6) {
		snprintf(err, err_len,
			 "inherited fd %d (LISTEN_FDS): address family %d; tern listens on TCP over "
			 "IPv4 or IPv6 only",
			 fd, (int)s->addr.ss.ss_family);
		return -EAFNOSUPPORT;
	}
	/* As sd_listen_fds(3) does: nothing tern might start inherits it. */
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		int e = errno;
		snprintf(err, err_len, "inherited fd %d (LISTEN_FDS): %s", fd, strerror(e));
		return -e;
	}
	s->fd = fd;
	tern_format_addr((const struct sockaddr *)&s->addr.ss, s->addr.text, sizeof(s->addr.text));
	return 0;
}

/* The i-th colon-separated name of names (NULL: none) into out. */
static void nth_name(const char *names, size_t i, char *out, size_t out_len)
{
	out[0] = '\0';
	if (!names)
		return;
	for (; i > 0; i--) {
		names = strchr(names, ':');
		if (!names)
			return;
		names++;
	}
	size_t len = strcspn(names, ":");
	if (len >= out_len)
		len = out_len - 1;
	memcpy(out, names, len);
	out[len] = '\0';
}

static int take(struct tern_listen_fds *out, const char *pid_text, const char *fds_text,
		const char *names, char *err, size_t err_len)
{
	unsigned long pid, num;
	int ret;

	if (!pid_text || !fds_text)
		return 0; /* half the protocol is none of it, as sd_listen_fds() says */
	if (parse_decimal(pid_text, &pid) < 0 || pid == 0) {
		snprintf(err, err_len, "LISTEN_PID=%.32s: not a process id", pid_text);
		return -EBADMSG;
	}
	if (pid != (unsigned long)getpid())
		return 0; /* meant for another process: leave the fds alone */
	if (parse_decimal(fds_text, &num) < 0) {
		snprintf(err, err_len, "LISTEN_FDS=%.32s: not a number of descriptors", fds_text);
		return -EBADMSG;
	}
	if (num > TERN_MAX_INHERITED) {
		snprintf(err, err_len, "LISTEN_FDS=%lu: more than %d sockets", num, TERN_MAX_INHERITED);
		return -ERANGE;
	}
	if (num == 0)
		return 0;
	struct tern_inherited *socks = calloc(num, sizeof(*socks));
	if (!socks) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < num; i++) {
		ret = check_socket(TERN_LISTEN_FDS_START + (int)i, &socks[i], err, err_len);
		if (ret < 0) {
			free(socks);
			return ret;
		}
		nth_name(names, i, socks[i].name, sizeof(socks[i].name));
	}
	out->socks = socks;
	out->num = num;
	return (int)num;
}

int tern_listen_fds_take(struct tern_listen_fds *out, char *err, size_t err_len)
{
	const char *pid_text = getenv("LISTEN_PID");
	const char *fds_text = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");

	out->socks = NULL;
	out->num = 0;
	int ret = take(out, pid_text, fds_text, names, err, err_len);
	/* After take(): unsetenv() may free what getenv() returned. */
	if (pid_text || fds_text || names) {
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
	}
	return ret;
}

void tern_listen_fds_free(struct tern_listen_fds *fds)
{
	for (size_t i = 0; i < fds->num; i++)
		close(fds->socks[i].fd);
	free(fds->socks);
	fds->socks = NULL;
	fds->num = 0;
}

bool tern_listen_fds_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
		return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}
