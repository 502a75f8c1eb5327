/* Unit tests for src/control_bounds.c: each bound at its edge, and the
 * exact texts a refused client reads. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "tern/control_bounds.h"

#define MIB (1u << 20)

static void test_reply_per_client(void)
{
	char err[256] = "";
	/* Exactly the cap passes, one byte more does not, whatever is queued. */
	CHECK(!tern_control_reply_refused(0, TERN_CONTROL_REPLY_MAX, err, sizeof(err)));
	CHECK(tern_control_reply_refused(0, TERN_CONTROL_REPLY_MAX + 1, err, sizeof(err)));
	CHECK_EQ_STR(err, "reply too large: 4194305 bytes, more than the 4194304 a control client "
			  "may have queued (ask for fewer: conns LIMIT)");
}

static void test_reply_total(void)
{
	char err[256] = "";
	size_t big = 1 * MIB;
	/* Up to the total, a big reply passes; past it, "busy". */
	CHECK(!tern_control_reply_refused(TERN_CONTROL_REPLIES_TOTAL_MAX - big, big, err,
					  sizeof(err)));
	CHECK(tern_control_reply_refused(TERN_CONTROL_REPLIES_TOTAL_MAX - big + 1, big, err,
					 sizeof(err)));
	CHECK_EQ_STR(err, "busy: replies other control clients have not read hold 15728641 bytes; "
			  "try again");
	/* A small reply passes however much is queued. */
	CHECK(!tern_control_reply_refused(64 * MIB, TERN_CONTROL_REPLY_SMALL, err, sizeof(err)));
	CHECK(tern_control_reply_refused(64 * MIB, TERN_CONTROL_REPLY_SMALL + 1, err, sizeof(err)));
}

static void test_conns_before_building(void)
{
	char err[256] = "";
	size_t full = TERN_CONTROL_REPLIES_TOTAL_MAX;
	unsigned small = TERN_CONTROL_REPLY_SMALL / TERN_CONTROL_CONNS_ENTRY_BOUND; /* 32 */

	/* A short listing passes with the total full: by LIMIT, or because
	 * few connections are open whatever LIMIT says. */
	CHECK(!tern_control_conns_refused(full, small, 100000, err, sizeof(err)));
	CHECK(!tern_control_conns_refused(full, 100000, small, err, sizeof(err)));
	CHECK(tern_control_conns_refused(full, small + 1, 100000, err, sizeof(err)));
	CHECK_EQ_STR(err, "busy: replies other control clients have not read hold 16777216 bytes; "
			  "try again");
	/* A long one passes while a largest reply still fits under the
	 * total, not once it might not. */
	CHECK(!tern_control_conns_refused(full - TERN_CONTROL_REPLY_MAX, 100000, 100000, err,
					  sizeof(err)));
	CHECK(tern_control_conns_refused(full - TERN_CONTROL_REPLY_MAX + 1, 100000, 100000, err,
					 sizeof(err)));
	/* 1,000 connections judged at 2 KiB each: 2 MB. */
	CHECK(!tern_control_conns_refused(full - 2048000, 1000, 5000, err, sizeof(err)));
	CHECK(tern_control_conns_refused(full - 2048000 + 1, 1000, 5000, err, sizeof(err)));
	/* Nothing queued: never refused, however large (the size cap judges
	 * the listing once built), and no overflow for a huge count. */
	CHECK(!tern_control_conns_refused(0, UINT64_MAX, UINT64_MAX, err, sizeof(err)));
}

int main(void)
{
	test_reply_per_client();
	test_reply_total();
	test_conns_before_building();
	return check_summary();
}
