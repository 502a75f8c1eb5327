/* --io: which engine the workers run (io_probe.h). */
#include <errno.h>
#include <stdio.h>

#include "tern/io_probe.h"
#include "tern/log.h"
#include "tern/privs.h"
#include "tern/ring.h"

/* Long enough for any reason tern_ring_probe gives. */
#define WHY_MAX 160

const char *tern_io_probe_engine_name(enum tern_io_engine engine)
{
	switch (engine) {
	case TERN_IO_AUTO:
		return "auto";
	case TERN_IO_URING:
		return "uring";
	case TERN_IO_EPOLL:
		return "epoll";
	}
	return "?";
}

/* tern_privs_call_as's shape around tern_ring_probe. */
static int ring_probe_call(void *need_buffers, char *why, size_t why_len)
{
	return tern_ring_probe(*(bool *)need_buffers, why, why_len);
}

int tern_io_probe_ring(const char *user, bool need_buffers, char *why, size_t why_len)
{
	return tern_privs_call_as(user, ring_probe_call, &need_buffers, why, why_len);
}

int tern_io_probe_choose(enum tern_io_engine requested, const char *user, bool need_buffers,
			 tern_io_probe_fn *probe, enum tern_io_engine *out, char *err,
			 size_t err_len)
{
	char why[WHY_MAX];
	int ret;

	if (err_len > 0)
		err[0] = '\0';
	if (requested == TERN_IO_EPOLL) {
		*out = TERN_IO_EPOLL;
		return 0;
	}
	ret = probe(user, need_buffers, why, sizeof(why));
	if (ret == 0) {
		*out = TERN_IO_URING;
		return 0;
	}
	if (requested == TERN_IO_AUTO) {
		/* The one line an operator sees: the reason, and that tern
		 * runs anyway. docs/operations.md, "io_uring, epoll and
		 * seccomp", says how to give io_uring back. */
		tern_log(TERN_LOG_WARN, "io_uring refused (%s): running on epoll", why);
		snprintf(err, err_len, "%s", why);
		*out = TERN_IO_EPOLL;
		return 0;
	}
	snprintf(err, err_len, "cannot set up io_uring: %s (--io uring; --io auto would run on "
		 "epoll)", why);
	return ret == -EINVAL ? -EOPNOTSUPP : ret;
}
