/* The bounds on what the control thread holds for clients that do not
 * read their replies (issue 16), judged by pure functions so that each
 * boundary is unit-tested (tests/unit/control_bounds_test.c).
 *
 * The control thread answers a client's commands one at a time and reads
 * none of its next ones while a reply is unread (control.c), so what a
 * client that never reads can hold is one reply: these bound that reply,
 * the sum of them over all clients, and how long one is held. */
#ifndef TERN_CONTROL_BOUNDS_H
#define TERN_CONTROL_BOUNDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A client whose reply has been pending this long with no byte of it
 * taken is closed, its reply freed. `tern ctl` and scripts read a reply
 * as soon as it comes, so 5 s of nothing read is a reader that stopped
 * (a suspended script, one that sends commands and never reads), not a
 * slow one; without it the reply would be held until the client's 30 s
 * timeout. */
#define TERN_CONTROL_WRITE_STALL_MS 5000
/* The most reply bytes one client may have queued: one reply. 4 MiB is
 * ten times the default `conns` listing (1,000 connections at 270 to 400
 * bytes each) and holds 10,000 or more; a longer listing is refused with
 * an error naming LIMIT, rather than held for a client that may never
 * read it. */
#define TERN_CONTROL_REPLY_MAX (4u << 20)
/* The most reply bytes all clients together may have queued: four
 * clients at TERN_CONTROL_REPLY_MAX. Whatever clients stop reading, the
 * control thread holds at most this much of their replies (plus small
 * ones), each for at most TERN_CONTROL_WRITE_STALL_MS. */
#define TERN_CONTROL_REPLIES_TOTAL_MAX (16u << 20)
/* Replies this small (stats, help, every single-connection command, a
 * short listing) are never refused for the total, so an operator's
 * `tern ctl stats` works while a runaway script is dealt with: 256
 * clients of them are 16 MiB at most. */
#define TERN_CONTROL_REPLY_SMALL (64u << 10)
/* A `conns` entry's size, generously (escaped SNI, ALPN and certificate
 * names make the longest ones): a listing is judged by it before it is
 * built. With 32 connections or fewer a listing is small. */
#define TERN_CONTROL_CONNS_ENTRY_BOUND 2048u

/* Whether a finished reply of len bytes (its "\n" included) is refused
 * while `queued` bytes of replies wait unread: longer than
 * TERN_CONTROL_REPLY_MAX, or not small and passing
 * TERN_CONTROL_REPLIES_TOTAL_MAX. When refused, the error text for the
 * client in err. Pure: any thread. */
bool tern_control_reply_refused(size_t queued, size_t len, char *err, size_t err_len);

/* Whether a `conns` for up to `limit` of `active` connections is refused
 * before it is built, while `queued` bytes of replies wait unread: its
 * listing, judged at TERN_CONTROL_CONNS_ENTRY_BOUND an entry, could pass
 * TERN_CONTROL_REPLIES_TOTAL_MAX and is not small. So clients that
 * pipeline `conns` and never read cost no listing per line, built only
 * to be refused. When refused, the error text in err. Pure: any thread. */
bool tern_control_conns_refused(size_t queued, uint64_t limit, uint64_t active, char *err,
				size_t err_len);

#endif
