/* The `backends` reply (control_internal.h): each --backend as the
 * operator wrote it, the addresses it stands for now with each one's
 * state, and its counts summed over the workers. */
#include <string.h>

#include "tern/backend_set.h"
#include "tern/backends.h"
#include "tern/clock.h"
#include "tern/escape.h"
#include "tern/json.h"
#include "tern/server.h"

#include "control_internal.h"

static void view_addresses(const struct tern_backend_set *set, unsigned backend, uint64_t now,
			   struct tern_json *j)
{
	tern_json_key(j, "resolved");
	tern_json_begin_array(j);
	for (size_t i = 0; i < set->num; i++) {
		const struct tern_endpoint *ep = set->eps[i];
		if (ep->backend != backend)
			continue;
		tern_json_begin_object(j);
		/* numbers, or the configured text */
		tern_json_member_string(j, "address", ep->addr.text);
		tern_json_member_bool(j, "up", tern_backend_health_usable(&ep->health, now));
		tern_json_end_object(j);
	}
	tern_json_end_array(j);
}

void tern_control_view_backends(struct tern_server *srv, struct tern_json *j)
{
	struct tern_backend_set *set = srv->backends ? tern_backends_get(srv->backends) : NULL;
	uint64_t now = tern_clock_ms();
	char shown[TERN_ESCAPE_OUT_MAX];

	tern_json_begin_object(j);
	tern_json_member_bool(j, "ok", true);
	tern_json_key(j, "backends");
	tern_json_begin_array(j);
	for (unsigned i = 0; set && i < srv->cfg->num_backends; i++) {
		struct tern_backend_summary s;
		tern_backends_summarize(srv, set, i, now, &s);
		tern_json_begin_object(j);
		/* The operator's own words, but escaped and bounded like
		 * everything else shown. */
		tern_escape(shown, sizeof(shown), s.text, strlen(s.text), 0);
		tern_json_member_string(j, "address", shown);
		view_addresses(set, i, now, j);
		tern_json_member_bool(j, "up", s.up);
		tern_json_member_uint(j, "connects", s.connects);
		tern_json_member_uint(j, "failures", s.failures);
		tern_json_member_uint(j, "open", s.open);
		if (s.is_name)
			tern_json_member_string(j, "resolve_error",
						s.resolve_error[0] ? s.resolve_error : NULL);
		tern_json_end_object(j);
	}
	tern_json_end_array(j);
	tern_json_end_object(j);
	tern_backend_set_unref(set);
}
