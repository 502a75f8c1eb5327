/* The --io choice (io_probe.c) against a fake probe: epoll never asks;
 * auto takes io_uring when the probe allows it and epoll, with the reason,
 * when it refuses; uring turns a refusal into an error at start, and a
 * kernel's EINVAL (a missing feature) into -EOPNOTSUPP, since -EINVAL
 * means exit 2 for a bad flag. Then the real probe: this host allows
 * io_uring (every other ring test needs it too). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "tern/io_probe.h"
#include "tern/ring.h"

static unsigned probe_calls;
static bool probe_need_buffers;
static const char *probe_user;
static int probe_result;
static const char *probe_why;

static int fake_probe(const char *user, bool need_buffers, char *why, size_t why_len)
{
	probe_calls++;
	probe_user = user;
	probe_need_buffers = need_buffers;
	snprintf(why, why_len, "%s", probe_why);
	return probe_result;
}

static int choose(enum tern_io_engine requested, bool need_buffers, int result,
		  const char *why, enum tern_io_engine *out, char *err, size_t err_len)
{
	probe_calls = 0;
	probe_result = result;
	probe_why = why;
	*out = TERN_IO_AUTO;
	return tern_io_probe_choose(requested, "nobody", need_buffers, fake_probe, out, err,
				    err_len);
}

static void test_choose(void)
{
	enum tern_io_engine out;
	char err[256];

	/* epoll: no probe at all, whatever it would say. */
	CHECK_EQ_INT(choose(TERN_IO_EPOLL, true, -EPERM, "no", &out, err, sizeof(err)), 0);
	CHECK_EQ_INT(out, TERN_IO_EPOLL);
	CHECK_EQ_UINT(probe_calls, 0);
	CHECK_EQ_STR(err, "");

	/* auto, allowed: io_uring; need_buffers and the user reach the probe. */
	CHECK_EQ_INT(choose(TERN_IO_AUTO, true, 0, "", &out, err, sizeof(err)), 0);
	CHECK_EQ_INT(out, TERN_IO_URING);
	CHECK_EQ_UINT(probe_calls, 1);
	CHECK(probe_need_buffers);
	CHECK_EQ_STR(probe_user, "nobody");
	CHECK_EQ_STR(err, "");
	CHECK_EQ_INT(choose(TERN_IO_AUTO, false, 0, "", &out, err, sizeof(err)), 0);
	CHECK(!probe_need_buffers);

	/* auto, refused: epoll, the reason in err (and in the one warning). */
	CHECK_EQ_INT(choose(TERN_IO_AUTO, true, -EPERM, "Operation not permitted", &out, err,
			    sizeof(err)), 0);
	CHECK_EQ_INT(out, TERN_IO_EPOLL);
	CHECK_EQ_UINT(probe_calls, 1);
	CHECK_EQ_STR(err, "Operation not permitted");
	CHECK_EQ_INT(choose(TERN_IO_AUTO, true, -EINVAL, "multishot accept: Invalid argument",
			    &out, err, sizeof(err)), 0);
	CHECK_EQ_INT(out, TERN_IO_EPOLL);
	CHECK_EQ_STR(err, "multishot accept: Invalid argument");

	/* uring, allowed and refused. */
	CHECK_EQ_INT(choose(TERN_IO_URING, true, 0, "", &out, err, sizeof(err)), 0);
	CHECK_EQ_INT(out, TERN_IO_URING);
	CHECK_EQ_INT(choose(TERN_IO_URING, true, -EPERM, "Operation not permitted", &out, err,
			    sizeof(err)), -EPERM);
	CHECK_EQ_STR(err, "cannot set up io_uring: Operation not permitted (--io uring; --io auto "
			  "would run on epoll)");
	CHECK_EQ_INT(choose(TERN_IO_URING, true, -ENOSYS, "Function not implemented", &out, err,
			    sizeof(err)), -ENOSYS);
	CHECK_EQ_INT(choose(TERN_IO_URING, true, -EINVAL, "multishot accept: Invalid argument",
			    &out, err, sizeof(err)), -EOPNOTSUPP);
	CHECK_EQ_STR(err, "cannot set up io_uring: multishot accept: Invalid argument (--io uring; "
			  "--io auto would run on epoll)");
	/* err is cut, never overrun. */
	CHECK_EQ_INT(choose(TERN_IO_URING, true, -EPERM, "Operation not permitted", &out, err, 8),
		     -EPERM);
	CHECK_EQ_STR(err, "cannot ");
}

static void test_names(void)
{
	CHECK_EQ_STR(tern_io_probe_engine_name(TERN_IO_AUTO), "auto");
	CHECK_EQ_STR(tern_io_probe_engine_name(TERN_IO_URING), "uring");
	CHECK_EQ_STR(tern_io_probe_engine_name(TERN_IO_EPOLL), "epoll");
}

static void test_real_probe(void)
{
	enum tern_io_engine out = TERN_IO_AUTO;
	char err[256];

	CHECK_EQ_INT(tern_io_probe_choose(TERN_IO_AUTO, NULL, true, tern_io_probe_ring, &out, err,
					  sizeof(err)), 0);
	CHECK_EQ_INT(out, TERN_IO_URING);
	CHECK_EQ_STR(err, "");
}

int main(void)
{
	test_choose();
	test_names();
	test_real_probe();
	return check_summary();
}
