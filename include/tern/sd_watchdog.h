/* systemd's watchdog (WatchdogSec=, sd_watchdog_enabled(3)): when the
 * service manager sets WATCHDOG_USEC (and WATCHDOG_PID is unset or names
 * this process), tern sends WATCHDOG=1 every half interval, but only
 * while every worker answers its health pings (health.h): a worker that
 * has not answered for the interval (at least TERN_HEALTH_BOUND_MS) stops
 * the keep-alives, and systemd then kills and, with Restart=on-failure,
 * restarts tern. A wedged worker serves nobody, and only a restart gets
 * its connections' clients served again.
 *
 * While draining, keep-alives go on whatever the workers do: a drained
 * worker has stopped answering on purpose, and --drain-timeout and
 * TimeoutStopSec= already bound how long a stop takes.
 *
 * Main thread only (proxy/main.c's signal loop, every 100 ms). */
#ifndef TERN_SD_WATCHDOG_H
#define TERN_SD_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>

struct tern_server;

struct tern_sd_watchdog {
	uint64_t interval_ms; /* WATCHDOG_USEC, rounded up; 0: no watchdog */
	uint64_t next_ms;     /* the next keep-alive is due */
	bool withheld;        /* keep-alives stopped (logged once) */
};

/* Pure: the interval sd_watchdog_enabled(3) would find in the values of
 * WATCHDOG_USEC and WATCHDOG_PID (either may be NULL) for the process
 * self. Returns the interval in microseconds, 0 when the watchdog is not
 * for us (no WATCHDOG_USEC, or WATCHDOG_PID names another process), or
 * -EINVAL for a value that is not a positive decimal number. */
__attribute__((warn_unused_result))
long long tern_sd_watchdog_parse(const char *usec, const char *pid, long self);

/* Reads the environment into wd (logging what it found, or a bad value,
 * which leaves the watchdog off); the first keep-alive is due at now_ms. */
void tern_sd_watchdog_init(struct tern_sd_watchdog *wd, uint64_t now_ms);

/* Sends WATCHDOG=1 when one is due and srv's workers all answered within
 * the interval (or a drain began); logs when it starts and stops
 * withholding them. */
void tern_sd_watchdog_tick(struct tern_sd_watchdog *wd, struct tern_server *srv,
			   uint64_t now_ms);

#endif
