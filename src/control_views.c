/* The control thread's read-only answers (control_internal.h). */
#include <stdint.h>
#include <time.h>

#include "tern/clock.h"
#include "tern/control_proto.h"
#include "tern/io_probe.h"
#include "tern/json.h"
#include "tern/key_handoff.h"
#include "tern/server.h"
#include "tern/ticket_keys.h"
#include "tern/ticket_keys_file.h"
#include "tern/tls_ctx.h"
#include "tern/worker.h"

#include "control_internal.h"

void tern_control_view_help(struct tern_json *j)
{
	tern_json_begin_object(j);
	tern_json_member_bool(j, "ok", true);
	tern_json_key(j, "commands");
	tern_json_begin_array(j);
	for (const char *const *name = tern_control_command_names(); *name; name++)
		tern_json_string(j, *name);
	tern_json_end_array(j);
	tern_json_end_object(j);
}

void tern_control_view_stats(struct tern_server *srv, struct tern_json *j)
{
	struct tern_totals t;
	tern_server_totals(srv, &t);
	tern_json_begin_object(j);
	tern_json_member_bool(j, "ok", true);
#define TERN_STATS_FIELD(name) tern_json_member_uint(j, #name, t.name);
	TERN_COUNTER_FIELDS(TERN_STATS_FIELD)
#undef TERN_STATS_FIELD
	tern_json_member_uint(j, "workers", srv->num_workers);
	/* --num-tickets: fixed at start (a reload keeps it). */
	tern_json_member_uint(j, "num_tickets", srv->cfg->num_tickets);
	tern_json_member_uint(j, "reload_failures",
			      atomic_load_explicit(&srv->reload_failures, memory_order_relaxed));
	/* tern_log_dropped_total: log lines a slow stderr cost. */
	tern_json_member_uint(j, "log_dropped", tern_log_dropped());
	tern_json_member_string(j, "io", tern_io_probe_engine_name(srv->io_engine));
	/* The newest ticket key set, and how many workers do not use it yet
	 * (key_handoff.h; `keys` says which). */
	tern_json_member_uint(j, "ticket_key_generation", srv->key_handoff.generation);
	tern_json_member_uint(j, "ticket_key_workers_behind",
			      tern_server_ticket_keys_behind(srv, srv->key_handoff.generation));
	tern_json_end_object(j);
}

/* What runs: version, seconds since start, the I/O engine the workers
 * run (for --io auto, what the probe allowed) and how many workers. */
void tern_control_view_info(struct tern_server *srv, struct tern_json *j)
{
	tern_json_begin_object(j);
	tern_json_member_bool(j, "ok", true);
	tern_json_member_string(j, "version", TERN_VERSION);
	tern_json_member_uint(j, "uptime_s", (tern_clock_ms() - srv->started_ms) / 1000);
	tern_json_member_string(j, "io", tern_io_probe_engine_name(srv->io_engine));
	tern_json_member_uint(j, "workers", srv->num_workers);
	tern_json_end_object(j);
}

/* keys: what the ticket keys in use are, named by fingerprint (never the
 * key), so that an operator can watch a fleet converge on a rotation. */
void tern_control_view_keys(struct tern_server *srv, struct tern_json *j)
{
	const struct tern_ticket_keys *k = srv->ticket_keys;
	int64_t now = (int64_t)time(NULL);
	char fp[TERN_TICKET_KEY_FINGERPRINT_LEN + 1], since[TERN_TICKET_KEY_TIME_LEN + 1];

	tern_json_begin_object(j);
	tern_json_member_bool(j, "ok", true);
	tern_json_member_string(j, "source",
				srv->cfg->ticket_keys_path ? srv->cfg->ticket_keys_path : "memory");
	tern_json_key(j, "keys");
	tern_json_begin_array(j);
	for (uint32_t i = 0; i < tern_ticket_keys_count(k); i++) {
		int64_t t = tern_ticket_keys_since(k, i);
		tern_ticket_keys_fingerprint(k, i, fp);
		tern_json_begin_object(j);
		tern_json_member_string(j, "fingerprint", fp);
		tern_json_member_string(j, "role",
					tern_ticket_key_role_name(tern_ticket_keys_role(k, i)));
		tern_json_key(j, "since");
		if (t == TERN_TICKET_KEY_SINCE_UNKNOWN)
			tern_json_null(j);
		else
			tern_json_string(j, tern_ticket_key_time_format(t, since));
		tern_json_key(j, "age_s");
		if (t == TERN_TICKET_KEY_SINCE_UNKNOWN)
			tern_json_null(j);
		else
			tern_json_int(j, now - t);
		tern_json_end_object(j);
	}
	tern_json_end_array(j);
	/* Which set each worker encrypts and decrypts with: all the newest
	 * but while a worker is frozen or its queue full (key_handoff.h).
	 * A worker behind gives full handshakes to tickets issued under the
	 * newest key, and issues tickets the others may not read. */
	uint64_t generation = srv->key_handoff.generation;
	tern_json_member_uint(j, "generation", generation);
	tern_json_member_uint(j, "workers_behind", tern_server_ticket_keys_behind(srv, generation));
	tern_json_key(j, "workers");
	tern_json_begin_array(j);
	for (unsigned i = 0; i < srv->num_workers; i++) {
		uint64_t used = tern_worker_ticket_key_generation(srv->workers[i]);
		tern_json_begin_object(j);
		tern_json_member_uint(j, "worker", i);
		tern_json_member_uint(j, "generation", used);
		tern_json_member_bool(j, "queued", !tern_key_handoff_owed(&srv->key_handoff, i));
		tern_json_end_object(j);
	}
	tern_json_end_array(j);
	tern_json_end_object(j);
}

/* Most names `certs` lists per certificate; "names_more" counts the
 * rest, so a certificate with thousands of SANs cannot swell the reply. */
#define CERTS_NAMES_MAX 100

/* A certificate time in RFC 3339 UTC, or null. */
static void member_cert_time(struct tern_json *j, const char *key, int64_t t)
{
	char text[TERN_TICKET_KEY_TIME_LEN + 1];

	if (t == TERN_CERT_TIME_NONE)
		tern_json_member_string(j, key, NULL);
	else /* the key file's time format is RFC 3339's */
		tern_json_member_string(j, key, tern_ticket_key_time_format(t, text));
}

/* certs: every certificate served, from the identities in use (a reload
 * replaces them on this thread, so they cannot change under the walk).
 * Names and paths are escaped by the JSON writer and bounded in number
 * here and in length by loading. */
void tern_control_view_certs(struct tern_server *srv, struct tern_json *j)
{
	const struct tern_tls_identities *ids = srv->identities;
	int64_t now = (int64_t)time(NULL);
	struct tern_cert_info info;

	tern_json_begin_object(j);
	tern_json_member_bool(j, "ok", true);
	tern_json_member_uint(j, "generation", srv->generation);
	tern_json_key(j, "certs");
	tern_json_begin_array(j);
	for (size_t i = 0; ids && i < tern_tls_identities_count(ids); i++) {
		tern_tls_identities_cert_info(ids, i, &info);
		tern_json_begin_object(j);
		tern_json_member_string(j, "cert", info.source);
		tern_json_member_bool(j, "default", info.is_default);
		tern_json_key(j, "names");
		tern_json_begin_array(j);
		for (size_t k = 0; k < info.num_names && k < CERTS_NAMES_MAX; k++)
			tern_json_string(j, info.names[k]);
		tern_json_end_array(j);
		if (info.num_names > CERTS_NAMES_MAX)
			tern_json_member_uint(j, "names_more", info.num_names - CERTS_NAMES_MAX);
		tern_json_member_string(j, "key_type", info.key_type);
		tern_json_member_int(j, "key_bits", info.key_bits);
		member_cert_time(j, "not_before", info.not_before);
		member_cert_time(j, "not_after", info.not_after);
		/* Whole days left, rounded down: 0 on the last day, negative
		 * once expired. */
		tern_json_key(j, "days_left");
		if (info.not_after == TERN_CERT_TIME_NONE) {
			tern_json_null(j);
		} else {
			int64_t left = info.not_after - now;
			tern_json_int(j, left >= 0 ? left / 86400 : -((-left + 86399) / 86400));
		}
		tern_json_member_bool(j, "ocsp", info.ocsp_source != NULL);
		tern_json_member_string(j, "ocsp_file", info.ocsp_source);
		tern_json_member_string(j, "ocsp_status", info.ocsp_status);
		member_cert_time(j, "ocsp_this_update", info.ocsp_this_update);
		member_cert_time(j, "ocsp_next_update", info.ocsp_next_update);
		tern_json_end_object(j);
	}
	tern_json_end_array(j);
	tern_json_end_object(j);
}

