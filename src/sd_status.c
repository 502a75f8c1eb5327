/* The STATUS= line for systemd: see sd_status.h. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tern/sd_status.h"
#include "tern/server.h"

void tern_sd_status_format(const struct tern_sd_status *st, bool draining, uint64_t conns,
			   char *out, size_t out_len)
{
	char when[32] = "";
	int n = snprintf(out, out_len, "%s %llu connection%s, ", draining ? "draining" : "serving",
			 (unsigned long long)conns, conns == 1 ? "" : "s");
	size_t used = n < 0 ? 0 : (size_t)n;

	if (used >= out_len)
		return;
	if (st->reload_unix_s == 0) {
		snprintf(out + used, out_len - used, "no reload yet");
		return;
	}
	/* UTC, as the log's times: no time zone file to read. */
	struct tm tm;
	time_t t = (time_t)st->reload_unix_s;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (st->reload_error[0])
		snprintf(out + used, out_len - used, "last reload failed at %s: %s", when,
			 st->reload_error);
	else
		snprintf(out + used, out_len - used, "last reload ok at %s (generation %llu)", when,
			 (unsigned long long)st->reload_generation);
}

/* Composes the line now and sends it, unless it is what was sent last and
 * always is false. */
static void status_send(struct tern_server *srv, bool always)
{
	struct tern_sd_status *st = &srv->status;
	struct tern_totals totals;
	char line[TERN_SD_STATUS_MAX];

	if (!tern_sd_notify_wanted())
		return;
	tern_server_totals(srv, &totals);
	tern_sd_status_format(st, atomic_load_explicit(&srv->health.draining, memory_order_relaxed),
			      totals.conns_active, line, sizeof(line));
	if (!always && strcmp(line, st->sent) == 0)
		return;
	tern_sd_notify_status(line);
	memcpy(st->sent, line, sizeof(st->sent));
}

void tern_sd_status_reloaded(struct tern_server *srv, const char *err)
{
	struct tern_sd_status *st = &srv->status;
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	/* Never 0, which means "no reload yet", even with a clock at 1970. */
	st->reload_unix_s = now.tv_sec > 0 ? (int64_t)now.tv_sec : 1;
	st->reload_generation = srv->generation;
	/* A failure always has a reason to show: "" would read as success. */
	snprintf(st->reload_error, sizeof(st->reload_error), "%s",
		 !err ? "" : err[0] ? err : "no reason given");
	/* Always: two reloads failing alike within a second are still two
	 * reloads, and each was announced with RELOADING=1. */
	status_send(srv, true);
}

uint64_t tern_sd_status_tick(struct tern_server *srv, uint64_t now_ms)
{
	struct tern_sd_status *st = &srv->status;

	if (now_ms < st->next_check_ms)
		return st->next_check_ms;
	st->next_check_ms = now_ms + TERN_SD_STATUS_CHECK_MS;
	status_send(srv, false);
	return st->next_check_ms;
}
