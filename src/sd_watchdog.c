/* systemd's watchdog, fed only while every worker answers: sd_watchdog.h. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tern/health.h"
#include "tern/log.h"
#include "tern/sd_notify.h"
#include "tern/sd_watchdog.h"
#include "tern/server.h"

/* A positive decimal number, nothing else (no sign, no spaces, no
 * suffix); -EINVAL otherwise. */
static long long parse_positive(const char *text)
{
	char *end;

	if (!text || text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno || *end != '\0' || value == 0 || value > (unsigned long long)LLONG_MAX)
		return -EINVAL;
	return (long long)value;
}

long long tern_sd_watchdog_parse(const char *usec, const char *pid, long self)
{
	if (!usec)
		return 0;
	long long interval = parse_positive(usec);
	if (interval < 0)
		return interval;
	/* As sd_watchdog_enabled(3): WATCHDOG_PID, when set, says whose
	 * watchdog it is; a child that inherited the variables is not it. */
	if (pid) {
		long long owner = parse_positive(pid);
		if (owner < 0)
			return owner;
		if (owner != self)
			return 0;
	}
	return interval;
}

/* How long a worker may go without answering: the interval, but never
 * below the probes' bound, since the pings come once a second and a
 * shorter WatchdogSec= would fail workers merely between two pings. */
static uint64_t answer_bound_ms(const struct tern_sd_watchdog *wd)
{
	return wd->interval_ms > TERN_HEALTH_BOUND_MS ? wd->interval_ms : TERN_HEALTH_BOUND_MS;
}

void tern_sd_watchdog_init(struct tern_sd_watchdog *wd, uint64_t now_ms)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	long long interval = tern_sd_watchdog_parse(usec, pid, (long)getpid());

	*wd = (struct tern_sd_watchdog){.next_ms = now_ms};
	if (interval < 0) {
		tern_log(TERN_LOG_WARN, "watchdog: WATCHDOG_USEC=%s WATCHDOG_PID=%s is not valid: "
			 "no watchdog", usec, pid ? pid : "(unset)");
		return;
	}
	if (interval == 0)
		return;
	wd->interval_ms = ((uint64_t)interval + 999) / 1000;
	tern_log(TERN_LOG_INFO, "watchdog: WATCHDOG=1 every %llums while every worker answers "
		 "within %llums (WatchdogSec=)", (unsigned long long)(wd->interval_ms / 2),
		 (unsigned long long)answer_bound_ms(wd));
}

void tern_sd_watchdog_tick(struct tern_sd_watchdog *wd, struct tern_server *srv,
			   uint64_t now_ms)
{
	char why[128];

	if (!wd->interval_ms || now_ms < wd->next_ms)
		return;
	/* Half the interval, as sd_watchdog_enabled(3) advises: one late
	 * keep-alive is not yet a missed one. */
	wd->next_ms = now_ms + (wd->interval_ms / 2 ? wd->interval_ms / 2 : 1);
	bool draining = atomic_load_explicit(&srv->health.draining, memory_order_relaxed);

	if (!draining && tern_health_check(srv, TERN_HEALTH_LIVE, answer_bound_ms(wd), why,
					   sizeof(why)) != 200) {
		if (!wd->withheld) {
			why[strcspn(why, "\n")] = '\0';
			tern_log(TERN_LOG_ERROR, "watchdog: %s: WATCHDOG=1 withheld, so systemd "
				 "restarts tern", why);
			wd->withheld = true;
		}
		return;
	}
	if (wd->withheld) {
		tern_log(TERN_LOG_INFO, "watchdog: every worker answers again: WATCHDOG=1 resumed");
		wd->withheld = false;
	}
	tern_sd_notify_watchdog();
}
