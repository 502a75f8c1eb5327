/* The bounds on unread control replies (control_bounds.h). */
#include <stdio.h>

#include "tern/control_bounds.h"

/* Said to a client refused for the total. */
static void busy(size_t queued, char *err, size_t err_len)
{
	snprintf(err, err_len,
		 "busy: replies other control clients have not read hold %zu bytes; try again",
		 queued);
}

bool tern_control_reply_refused(size_t queued, size_t len, char *err, size_t err_len)
{
	if (len > TERN_CONTROL_REPLY_MAX) {
		snprintf(err, err_len, "reply too large: %zu bytes, more than the %u a control "
			 "client may have queued (ask for fewer: conns LIMIT)", len,
			 TERN_CONTROL_REPLY_MAX);
		return true;
	}
	if (len > TERN_CONTROL_REPLY_SMALL && queued + len > TERN_CONTROL_REPLIES_TOTAL_MAX) {
		busy(queued, err, err_len);
		return true;
	}
	return false;
}

bool tern_control_conns_refused(size_t queued, uint64_t limit, uint64_t active, char *err,
				size_t err_len)
{
	uint64_t listed = limit < active ? limit : active;
	/* Capped before it can overflow: a longer listing is refused by
	 * size anyway, once built. */
	uint64_t bound = listed > TERN_CONTROL_REPLY_MAX / TERN_CONTROL_CONNS_ENTRY_BOUND
				 ? TERN_CONTROL_REPLY_MAX
				 : listed * TERN_CONTROL_CONNS_ENTRY_BOUND;
	if (bound <= TERN_CONTROL_REPLY_SMALL || queued + bound <= TERN_CONTROL_REPLIES_TOTAL_MAX)
		return false;
	busy(queued, err, err_len);
	return true;
}
