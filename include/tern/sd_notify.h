/* Service state for systemd's notify protocol (sd_notify(3)), spoken
 * directly instead of through libsystemd: one AF_UNIX datagram of
 * newline-separated VAR=VALUE assignments to the socket named by
 * NOTIFY_SOCKET, an absolute path or, starting with '@', an abstract
 * socket name.
 *
 * Without NOTIFY_SOCKET (not run by systemd with Type=notify or
 * Type=notify-reload) every call does nothing. A failed send is logged at
 * debug level and never stops tern: a supervisor that cannot hear us is
 * not a reason to stop serving. Nor does a send ever wait: a receiver
 * whose queue is full loses the datagram (-EAGAIN).
 *
 * Any thread may call these: each call reads NOTIFY_SOCKET, opens its own
 * socket and closes it. The environment must not change meanwhile, which
 * holds because tern changes it only during start-up (LISTEN_*), before
 * other threads run. */
#ifndef TERN_SD_NOTIFY_H
#define TERN_SD_NOTIFY_H

#include <stdbool.h>

/* Sends state (e.g. "READY=1\nMAINPID=42") as one datagram to
 * NOTIFY_SOCKET. Returns 1 once sent, 0 when NOTIFY_SOCKET is unset or
 * empty, or -errno: -EINVAL for a NOTIFY_SOCKET that is neither an
 * absolute path nor '@'name, -ENAMETOOLONG for one that does not fit
 * sun_path, or what socket() or sendmsg() reported. */
__attribute__((warn_unused_result))
int tern_sd_notify_send(const char *state);

/* "READY=1\nMAINPID=<pid>": start-up is complete, or a reload finished
 * (systemd accepts MAINPID again there; it names the same process). */
void tern_sd_notify_ready(void);

/* "RELOADING=1\nMONOTONIC_USEC=<CLOCK_MONOTONIC in microseconds>": a reload
 * began; follow it with tern_sd_notify_ready() when the reload ends,
 * whether it succeeded or not. systemd >= 253 needs MONOTONIC_USEC for
 * Type=notify-reload, to tell this reload from an earlier one. */
void tern_sd_notify_reloading(void);

/* "STOPPING=1": a graceful drain began. */
void tern_sd_notify_stopping(void);

/* Whether NOTIFY_SOCKET names a receiver: without one, nothing is worth
 * composing. */
bool tern_sd_notify_wanted(void);

/* The longest STATUS= text sent; a longer one is cut. */
#define TERN_SD_STATUS_MAX 320

/* "STATUS=<text>": one line that `systemctl status` shows. Control
 * characters in text become spaces, so it stays one assignment. */
void tern_sd_notify_status(const char *text);

/* "WATCHDOG=1": a keep-alive for WatchdogSec= (sd_watchdog.h decides
 * when). */
void tern_sd_notify_watchdog(void);

#endif
