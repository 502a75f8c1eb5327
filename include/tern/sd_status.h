/* The STATUS= line tern keeps current for systemd (sd_notify(3);
 * `systemctl status tern` shows it): what tern does, how many client
 * connections are open, and how the last reload went, e.g.
 *
 *   serving 12 connections, no reload yet
 *   serving 1 connection, last reload ok at 2025-01-02T10:00:00Z (generation 3)
 *   draining 4 connections, last reload failed at 2025-01-02T10:00:00Z: REASON
 *
 * Everything here runs on the control thread, which also runs every
 * reload (reload.h), so the record needs no lock. Without NOTIFY_SOCKET
 * nothing is composed or sent. */
#ifndef TERN_SD_STATUS_H
#define TERN_SD_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/sd_notify.h"

struct tern_server;

/* How often the line is composed again and, when it changed, sent. */
#define TERN_SD_STATUS_CHECK_MS 1000u

/* A server's STATUS= state (struct tern_server's `status`); the control
 * thread's alone. */
struct tern_sd_status {
	/* The last reload: CLOCK_REALTIME seconds when it ended (0: none
	 * yet), the generation then, and why it failed ("" if it did not). */
	int64_t reload_unix_s;
	uint64_t reload_generation;
	char reload_error[256];
	/* The last line sent: an unchanged line is not sent again. */
	char sent[TERN_SD_STATUS_MAX];
	uint64_t next_check_ms;
};

/* Pure: the line for st, a drain begun or not, and conns open
 * connections, into out (cut to out_len). */
void tern_sd_status_format(const struct tern_sd_status *st, bool draining, uint64_t conns,
			   char *out, size_t out_len);

/* Control thread, as a reload ends (reload.c): records how it went (err:
 * NULL when it worked, else the reason) and sends the line now, changed
 * or not (each reload was announced, so each gets its line). */
void tern_sd_status_reloaded(struct tern_server *srv, const char *err);

/* Control thread (its timer hook): every TERN_SD_STATUS_CHECK_MS, sends
 * the line if it changed. Returns when it is due next. */
uint64_t tern_sd_status_tick(struct tern_server *srv, uint64_t now_ms);

#endif
