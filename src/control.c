/* The control thread: the control socket and the worker-facing timers.
 *
 * One thread, one poll() loop (poll_server.c, which this file gives the
 * line protocol, the reload eventfd and the timers): the control plane is
 * not the data path, so it may block briefly on a worker's answer (bounded
 * by REPLY_TIMEOUT_MS). Every client is non-blocking with its own input and
 * output buffer, so a slow or silent client costs a slot, never the loop;
 * a client that stops reading costs its one reply for a bounded time, and
 * all such replies together are bounded too (control_bounds.h). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tern/clock.h"
#include "tern/conn.h"
#include "tern/control.h"
#include "tern/control_bounds.h"
#include "tern/control_proto.h"
#include "tern/health.h"
#include "tern/json.h"
#include "tern/key_handoff.h"
#include "tern/list.h"
#include "tern/log.h"
#include "tern/parse.h"
#include "tern/poll_server.h"
#include "tern/reload.h"
#include "tern/reply.h"
#include "tern/request.h"
#include "tern/sd_status.h"
#include "tern/server.h"
#include "tern/ticket_keys.h"
#include "tern/ticket_keys_file.h"
#include "tern/watch.h"
#include "tern/worker.h"

#include "control_internal.h"

#define MAX_CLIENTS 256
/* A client must send a full command line within this long of connecting
 * or of its previous reply (and keep taking a reply's bytes: none taken
 * for TERN_CONTROL_WRITE_STALL_MS closes it). */
#define CLIENT_TIMEOUT_MS 30000
/* How long a command waits for the workers' answers. */
#define REPLY_TIMEOUT_MS 2000
/* How long a push retries a full worker queue before giving up. */
#define PUSH_RETRY_MS 1000
/* How often ticket keys are queued again to a worker whose queue was full
 * (key_handoff.h): a worker that runs again takes them within about this
 * long of emptying its queue. A failed push costs nothing. */
#define KEY_RETRY_MS 100

struct control_client {
	struct tern_poll_client base; /* fd, deadline, pending output */
	bool closing; /* close once the output is written */
	size_t in_len;
	char in[TERN_CONTROL_LINE_MAX + 2]; /* a longest line and its "\r\n" */
};

struct tern_control {
	struct tern_server *srv;
	const struct tern_config *cfg;
	struct tern_poll_server *ps;
	bool bound;    /* cfg->control_path is ours to unlink */
	int reload_fd; /* SIGHUP, passed on by the main thread */
	uint64_t next_rotate_ms;  /* 0: no rotation timer */
	uint64_t next_refresh_ms; /* 0: no refresh timer */
	uint64_t next_key_retry_ms; /* 0: every worker was queued the newest keys */
	/* --watch, --reload-interval: NULL when both are off. */
	struct tern_watch *watch;
	const char *watch_paths[TERN_WATCH_MAX_PATHS];
};

/* Every reload the control thread runs (SIGHUP, `reload`, the watch):
 * afterwards the files as read are the watch's baseline, so it does not
 * reload them again. */
static int control_reload(struct tern_control *ctl, char *err, size_t err_len)
{
	int ret = tern_reload(ctl->srv, err, err_len);

	if (ctl->watch)
		tern_watch_loaded(ctl->watch);
	return ret;
}

/* Sends one request to worker `only` (or every worker when only < 0) and
 * waits for the answers: every addressed part of the reply then says
 * whether its worker carried the request out (reply.h). Returns the reply
 * (the caller unrefs it), or NULL when out of memory. */
static struct tern_reply *fan_out(struct tern_control *ctl, enum tern_request_kind kind,
				  uint64_t conn_id, uint32_t count, uint64_t arg, int only)
{
	struct tern_server *srv = ctl->srv;
	struct tern_reply *reply = tern_reply_new(srv->num_workers);
	unsigned first = only < 0 ? 0 : (unsigned)only;
	unsigned last = only < 0 ? srv->num_workers : (unsigned)only + 1;

	if (!reply)
		return NULL;
	for (unsigned i = first; i < last; i++)
		tern_reply_expect(reply, i);
	for (unsigned i = first; i < last; i++) {
		struct tern_request req = {.kind = kind, .count = count, .conn_id = conn_id,
					   .arg = arg, .ptr = reply};
		if (tern_worker_push_wait(srv->workers[i], &req, PUSH_RETRY_MS) < 0)
			tern_reply_withdraw(reply, i);
	}
	unsigned abandoned = tern_reply_finish(reply, REPLY_TIMEOUT_MS);
	if (abandoned)
		tern_log(TERN_LOG_WARN, "control: %u worker(s) did not answer within %u ms; the "
			 "request was not carried out there", abandoned, REPLY_TIMEOUT_MS);
	return reply;
}

static void cmd_conns(struct tern_control *ctl, const struct tern_command *cmd, struct tern_json *j)
{
	struct tern_totals totals;
	char err[128];

	tern_server_totals(ctl->srv, &totals);
	if (tern_control_conns_refused(tern_poll_server_output_bytes(ctl->ps), cmd->limit,
				       totals.conns_active, err, sizeof(err))) {
		tern_reply_render_error(j, err);
		return;
	}
	struct tern_reply *reply = fan_out(ctl, TERN_REQ_KIND_LIST_CONNS, 0, 0, cmd->limit, -1);
	if (!reply) {
		tern_reply_render_error(j, "out of memory");
		return;
	}
	/* Each worker listed up to LIMIT; LIMIT of them in all are taken, in
	 * worker order. */
	tern_reply_render_conns(reply, cmd->limit, j);
	tern_reply_unref(reply);
}

/* The worker request a connection command makes. */
static enum tern_request_kind conn_request_kind(enum tern_command_kind kind)
{
	switch (kind) {
	case TERN_CMD_TICKETS:
		return TERN_REQ_KIND_TICKETS;
	case TERN_CMD_NUM_TICKETS:
		return TERN_REQ_KIND_NUM_TICKETS;
	case TERN_CMD_CLOSE:
		return TERN_REQ_KIND_CLOSE;
	case TERN_CMD_VERIFY_CLIENT:
	default: /* execute() sends only these four here */
		return TERN_REQ_KIND_VERIFY_CLIENT;
	}
}

/* tickets, num-tickets, verify-client and close: one connection, or all
 * (tickets only). */
static void cmd_conn_request(struct tern_control *ctl, const struct tern_command *cmd,
			     struct tern_json *j)
{
	bool all = cmd->conn_id == TERN_CONN_ID_ALL;
	unsigned owner = tern_conn_id_worker(cmd->conn_id);
	enum tern_request_kind kind = conn_request_kind(cmd->kind);
	const char *count_key = kind == TERN_REQ_KIND_TICKETS ? "queued" : NULL;

	if (!all && owner >= ctl->srv->num_workers) {
		char err[64];
		snprintf(err, sizeof(err), "no connection %llu", (unsigned long long)cmd->conn_id);
		tern_reply_render_error(j, err);
		return;
	}
	struct tern_reply *reply = fan_out(ctl, kind, cmd->conn_id, cmd->count, 0,
					   all ? -1 : (int)owner);
	if (!reply) {
		tern_reply_render_error(j, "out of memory");
		return;
	}
	/* Only tickets takes "all" (control_proto.c). */
	assert(!all || count_key);
	if (all)
		tern_reply_render_counts(reply, count_key, j);
	else
		tern_reply_render_one(reply, owner, count_key, j);
	tern_reply_unref(reply);
}

/* rotate-ticket-keys and the --ticket-rotate timer: re-reads the key file,
 * or puts a new random key in front of the current two. */
static int rotate_keys(struct tern_control *ctl, char *err, size_t err_len)
{
	struct tern_server *srv = ctl->srv;
	struct tern_ticket_keys *next = NULL;
	int ret;

	if (ctl->cfg->ticket_keys_path)
		ret = tern_ticket_keys_load_file(ctl->cfg->ticket_keys_path, &next, err, err_len);
	else
		ret = tern_ticket_keys_rotate(srv->ticket_keys,
					      (uint32_t)tern_config_rotate_keep(ctl->cfg), &next);
	if (ret < 0) {
		if (!ctl->cfg->ticket_keys_path)
			snprintf(err, err_len, "cannot make a ticket key: %s", strerror(-ret));
		tern_log(TERN_LOG_ERROR, "ticket key rotation failed, old keys stay: %s", err);
		return ret;
	}
	/* A worker whose queue is full is no failure of the rotation: it is
	 * owed the keys, and the timer (retry_key_handoff) queues them to it
	 * once it has room (key_handoff.h says why not all-or-nothing). */
	unsigned not_reached = tern_server_adopt_ticket_keys(srv, next);
	tern_log(TERN_LOG_INFO, "ticket keys rotated: %u key(s), %s, generation %llu%s",
		 tern_ticket_keys_count(next),
		 ctl->cfg->ticket_keys_path ? ctl->cfg->ticket_keys_path : "in memory",
		 (unsigned long long)srv->key_handoff.generation,
		 not_reached ? "; not every worker reached yet, retried" : "");
	return 0;
}

/* --ticket-rotate with --ticket-keys: the file's rotation (a key staged,
 * the staged one promoted, the expired ones retired), then the file
 * re-read. The watch is told the file is read, so it does not reload for
 * tern's own write. A file tern cannot write (a mounted Secret) fails
 * every interval, logged each time. */
static void rotate_key_file(struct tern_control *ctl)
{
	const char *path = ctl->cfg->ticket_keys_path;
	char done[512], err[TERN_ADDR_TEXT_MAX + 256];

	if (tern_ticket_keys_file_rotate(path, (int64_t)time(NULL), ctl->cfg->session_lifetime_ms,
					 done, sizeof(done), err, sizeof(err)) < 0) {
		tern_log(TERN_LOG_ERROR, "--ticket-rotate: cannot rotate the key file, its keys stay: "
			 "%s", err);
		return;
	}
	tern_log(TERN_LOG_INFO, "--ticket-rotate: %s: %s", path, done);
	if (rotate_keys(ctl, err, sizeof(err)) == 0 && ctl->watch)
		tern_watch_loaded_path(ctl->watch, path);
}

static void cmd_rotate(struct tern_control *ctl, struct tern_json *j)
{
	char err[TERN_ADDR_TEXT_MAX + 256];
	if (rotate_keys(ctl, err, sizeof(err)) < 0) {
		tern_reply_render_error(j, err);
		return;
	}
	tern_json_begin_object(j);
	tern_json_member_bool(j, "ok", true);
	tern_json_member_uint(j, "keys", tern_ticket_keys_count(ctl->srv->ticket_keys));
	/* The encrypting key's name is no secret (every ticket starts with
	 * it) and lets an operator check a fleet encrypts with one key. */
	char name[33];
	tern_ticket_keys_name_hex(ctl->srv->ticket_keys, 0, name);
	tern_json_member_string(j, "encrypting_key", name);
	/* Which set this is, and how many workers it could not be queued
	 * to yet (retried; `keys` shows each worker's generation). */
	tern_json_member_uint(j, "generation", ctl->srv->key_handoff.generation);
	tern_json_member_uint(j, "workers_not_reached",
			      tern_key_handoff_num_owed(&ctl->srv->key_handoff));
	tern_json_end_object(j);
	/* An in-memory rotation by hand restarts the timer's period. */
	if (ctl->next_rotate_ms)
		ctl->next_rotate_ms = tern_clock_ms() + ctl->cfg->ticket_rotate_ms;
}

static void cmd_reload(struct tern_control *ctl, struct tern_json *j)
{
	char err[TERN_ADDR_TEXT_MAX + 512];
	if (control_reload(ctl, err, sizeof(err)) < 0) {
		tern_reply_render_error(j, err);
		return;
	}
	tern_json_begin_object(j);
	tern_json_member_bool(j, "ok", true);
	tern_json_member_uint(j, "generation", ctl->srv->generation);
	tern_json_end_object(j);
}

static void execute(struct tern_control *ctl, const char *line, size_t len, struct tern_json *j)
{
	struct tern_command cmd;
	char err[TERN_CONTROL_ERR_MAX];

	if (tern_control_parse(line, len, &cmd, err, sizeof(err)) < 0) {
		tern_reply_render_error(j, err);
		return;
	}
	switch (cmd.kind) {
	case TERN_CMD_HELP:
		tern_control_view_help(j);
		break;
	case TERN_CMD_STATS:
		tern_control_view_stats(ctl->srv, j);
		break;
	case TERN_CMD_CONNS:
		cmd_conns(ctl, &cmd, j);
		break;
	case TERN_CMD_TICKETS:
	case TERN_CMD_NUM_TICKETS:
	case TERN_CMD_VERIFY_CLIENT:
	case TERN_CMD_CLOSE:
		cmd_conn_request(ctl, &cmd, j);
		break;
	case TERN_CMD_CERTS:
		tern_control_view_certs(ctl->srv, j);
		break;
	case TERN_CMD_BACKENDS:
		tern_control_view_backends(ctl->srv, j);
		break;
	case TERN_CMD_RELOAD:
		cmd_reload(ctl, j);
		break;
	case TERN_CMD_INFO:
		tern_control_view_info(ctl->srv, j);
		break;
	case TERN_CMD_KEYS:
		tern_control_view_keys(ctl->srv, j);
		break;
	case TERN_CMD_ROTATE_TICKET_KEYS:
		cmd_rotate(ctl, j);
		break;
	case TERN_CMD_NONE:
		tern_reply_render_error(j, "empty command");
		break;
	}
}

/* Appends text to the client's output; false when out of memory. */
static bool client_append(struct control_client *cl, const char *text, size_t len)
{
	return tern_poll_client_append(&cl->base, text, len) == 0;
}

static void client_reply(struct tern_control *ctl, struct control_client *cl, const char *line,
			 size_t len)
{
	struct tern_json j;
	char err[192];

	tern_json_init(&j);
	execute(ctl, line, len, &j);
	bool failed = tern_json_finish(&j) < 0;
	if (failed || tern_control_reply_refused(tern_poll_server_output_bytes(ctl->ps),
						 j.len + 1, err, sizeof(err))) {
		tern_json_free(&j);
		tern_reply_render_error(&j, failed ? "reply too large" : err);
		if (tern_json_finish(&j) < 0) {
			cl->closing = true;
			return;
		}
	}
	/* The writer's NUL becomes the line's "\n", and its buffer, trimmed
	 * to size, becomes the client's output: a large reply is never held
	 * twice. */
	j.buf[j.len] = '\n';
	char *trimmed = realloc(j.buf, j.len + 1);
	if (trimmed)
		j.buf = trimmed;
	if (tern_poll_client_give(&cl->base, j.buf, j.len + 1) < 0)
		cl->closing = true;
	tern_json_init(&j); /* the buffer is the client's now */
	cl->base.deadline_ms = tern_clock_ms() + CLIENT_TIMEOUT_MS;
}

/* Most lines one client gets answered per loop iteration, so a client
 * with a full pipeline of commands cannot starve the others. */
#define LINES_PER_TURN 16

static const char too_long_reply[] = "{\"ok\":false,\"error\":\"command longer than 4096 bytes\"}\n";

static bool client_has_line(const struct control_client *cl)
{
	return memchr(cl->in, '\n', cl->in_len) != NULL;
}

static bool client_has_output(const struct control_client *cl)
{
	return tern_poll_client_has_output(&cl->base);
}

/* Writes what it can. False: close. */
static bool client_write(struct control_client *cl)
{
	int ret = tern_poll_client_flush(&cl->base);
	if (ret <= 0)
		return ret == 0;
	return !cl->closing;
}

/* Answers buffered lines one at a time, each reply written before the next
 * line is looked at: a client that does not read its replies stops being
 * served (and read) instead of growing an unbounded backlog. False: close. */
static bool client_answer(struct tern_control *ctl, struct control_client *cl)
{
	for (unsigned turn = 0; turn < LINES_PER_TURN; turn++) {
		if (client_has_output(cl) && !client_write(cl))
			return false;
		if (client_has_output(cl) || cl->closing)
			return true;
		char *nl = memchr(cl->in, '\n', cl->in_len);
		if (!nl)
			return true;
		size_t len = (size_t)(nl - cl->in);
		size_t text_len = len > 0 && cl->in[len - 1] == '\r' ? len - 1 : len;
		if (text_len > TERN_CONTROL_LINE_MAX) {
			/* Answer once and hang up: what follows cannot be trusted
			 * to be a command boundary. */
			if (!client_append(cl, too_long_reply, sizeof(too_long_reply) - 1))
				return false;
			cl->closing = true;
		} else {
			client_reply(ctl, cl, cl->in, len);
		}
		cl->in_len -= len + 1;
		memmove(cl->in, nl + 1, cl->in_len);
	}
	return true;
}

/* Reads once, when nothing is waiting to be answered or written. False:
 * close. */
static bool client_read(struct control_client *cl)
{
	if (cl->closing || client_has_output(cl) || client_has_line(cl))
		return true;
	ssize_t n = read(cl->base.fd, cl->in + cl->in_len, sizeof(cl->in) - cl->in_len);
	if (n == 0)
		return false;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	cl->in_len += (size_t)n;
	if (cl->in_len == sizeof(cl->in) && !client_has_line(cl)) {
		/* No newline within the limit. */
		if (!client_append(cl, too_long_reply, sizeof(too_long_reply) - 1))
			return false;
		cl->closing = true;
		cl->in_len = 0;
	}
	return true;
}

/* The poll-server's callbacks (poll_server.h). A client that is neither
 * answered nor read within CLIENT_TIMEOUT_MS is closed by the server. */
static enum tern_poll_verdict client_turn(void *owner, struct tern_poll_client *base, short rev,
					  uint64_t now)
{
	struct control_client *cl = tern_container_of(base, struct control_client, base);
	if ((rev & POLLIN) && !client_read(cl))
		return TERN_POLL_CLOSE;
	if (!client_answer(owner, cl))
		return TERN_POLL_CLOSE;
	if ((rev & POLLHUP) && !(rev & POLLIN) && !client_has_line(cl))
		return TERN_POLL_CLOSE;
	if (cl->closing && !client_has_output(cl))
		return TERN_POLL_CLOSE;
	/* Idle, its slot reclaimable (poll_server.h), while it holds nothing:
	 * no bytes of a command, no reply, no hang-up pending. */
	tern_poll_client_mark_idle(&cl->base, !cl->in_len && !client_has_output(cl) && !cl->closing,
				   now);
	/* A pipelined command waits, beyond this turn's LINES_PER_TURN. */
	return !client_has_output(cl) && client_has_line(cl) ? TERN_POLL_AGAIN : TERN_POLL_WAIT;
}

/* Not read while a line waits to be answered: one command at a time. */
static short client_wants(void *owner, const struct tern_poll_client *base)
{
	const struct control_client *cl = tern_container_of(base, const struct control_client, base);
	(void)owner;
	return !cl->closing && !client_has_line(cl) ? POLLIN : 0;
}

static void reload_readable(void *owner)
{
	struct tern_control *ctl = owner;
	uint64_t count;
	char err[TERN_ADDR_TEXT_MAX + 512];
	if (read(ctl->reload_fd, &count, sizeof(count)) == sizeof(count) &&
	    control_reload(ctl, err, sizeof(err)) < 0)
		tern_log(TERN_LOG_DEBUG, "SIGHUP reload failed (logged above)");
}

/* An in-memory rotation keeps at most TERN_MAX_ROTATE_KEEP keys: one
 * much faster than --session-lifetime cannot keep every key a live ticket
 * needs. Said once, at start. */
static void warn_short_rotation(const struct tern_config *cfg)
{
	uint64_t covered = (TERN_MAX_ROTATE_KEEP - 1) * cfg->ticket_rotate_ms;
	char rotate[32], lifetime[32], shown[32];

	if (covered >= cfg->session_lifetime_ms)
		return;
	tern_format_duration_ms(cfg->ticket_rotate_ms, rotate, sizeof(rotate));
	tern_format_duration_ms(cfg->session_lifetime_ms, lifetime, sizeof(lifetime));
	tern_format_duration_ms(covered, shown, sizeof(shown));
	tern_log(TERN_LOG_WARN, "--ticket-rotate %s keeps %u keys: tickets stop resuming after %s, "
		 "before --session-lifetime %s", rotate, TERN_MAX_ROTATE_KEEP, shown, lifetime);
}

/* The watch's turn: when files changed, the reload they call for. */
static void watch_turn(struct tern_control *ctl, uint64_t now)
{
	char changed[512], err[TERN_ADDR_TEXT_MAX + 512];

	if (!tern_watch_due(ctl->watch, now, changed, sizeof(changed)))
		return;
	tern_log(TERN_LOG_INFO, "changed on disk: %s; reloading", changed);
	/* tern_reload logs the outcome and counts a failure; the changed
	 * files are the baseline already, so a bad one is not retried
	 * until it changes again. */
	if (tern_reload(ctl->srv, err, sizeof(err)) < 0)
		tern_log(TERN_LOG_DEBUG, "watch: reload failed (logged above)");
}

static void watch_readable(void *owner)
{
	struct tern_control *ctl = owner;

	tern_watch_readable(ctl->watch, tern_clock_ms());
}

/* The watch, when --watch or --reload-interval asks for one. Not being
 * able to watch is not fatal: tern serves on and says why once. */
static int start_watch(struct tern_control *ctl, uint64_t now)
{
	const struct tern_config *cfg = ctl->cfg;
	char why[128];
	int ret;

	if (!cfg->watch && cfg->reload_interval_ms == 0)
		return 0;
	size_t n = tern_watch_config_paths(cfg, ctl->watch_paths, TERN_WATCH_MAX_PATHS);
	if (n == 0)
		return 0; /* nothing loaded from files: the self-signed certificate */
	ret = tern_watch_new(ctl->watch_paths, n, cfg->watch, cfg->reload_interval_ms, now,
			     &ctl->watch, why, sizeof(why));
	if (ret < 0)
		return ret;
	if (why[0])
		tern_log(TERN_LOG_WARN, "--watch: %s: changed files are not noticed%s", why,
			 cfg->reload_interval_ms ? " but by --reload-interval"
						 : "; --reload-interval looks on a timer");
	if (tern_watch_fd(ctl->watch) >= 0)
		return tern_poll_server_add_fd(ctl->ps, tern_watch_fd(ctl->watch), watch_readable);
	return 0;
}

/* Ticket keys owed to a worker whose queue was full are queued again
 * every KEY_RETRY_MS until every worker has them (key_handoff.h): a split
 * lasts as long as a worker cannot take requests, never until the next
 * rotation. */
static void retry_key_handoff(struct tern_control *ctl, uint64_t now)
{
	struct tern_server *srv = ctl->srv;

	if (tern_key_handoff_num_owed(&srv->key_handoff) == 0) {
		ctl->next_key_retry_ms = 0;
		return;
	}
	if (ctl->next_key_retry_ms == 0) {
		ctl->next_key_retry_ms = now + KEY_RETRY_MS; /* it just failed */
		return;
	}
	if (now < ctl->next_key_retry_ms)
		return;
	ctl->next_key_retry_ms =
		tern_server_retry_ticket_keys(srv) > 0 ? now + KEY_RETRY_MS : 0;
}

static uint64_t run_timers(void *owner, uint64_t now)
{
	struct tern_control *ctl = owner;
	if (ctl->next_rotate_ms && now >= ctl->next_rotate_ms) {
		char err[256];
		ctl->next_rotate_ms = now + ctl->cfg->ticket_rotate_ms;
		if (ctl->cfg->ticket_rotate_file)
			rotate_key_file(ctl);
		else
			(void)rotate_keys(ctl, err, sizeof(err));
	}
	if (ctl->next_refresh_ms && now >= ctl->next_refresh_ms) {
		/* Checked four times per period, so a ticket is refreshed at most
		 * a quarter period late. Nobody waits: a busy worker skips one
		 * round. */
		uint64_t period = ctl->cfg->ticket_refresh_ms / 4;
		ctl->next_refresh_ms = now + (period < 50 ? 50 : period);
		for (unsigned i = 0; i < ctl->srv->num_workers; i++) {
			struct tern_request req = {.kind = TERN_REQ_KIND_TICKET_REFRESH,
						   .arg = ctl->cfg->ticket_refresh_ms};
			if (tern_worker_push(ctl->srv->workers[i], &req) < 0)
				tern_log(TERN_LOG_DEBUG, "control: worker %u busy, ticket refresh "
					 "skipped this round", i);
		}
	}
	uint64_t next = UINT64_MAX;
	if (ctl->watch) {
		watch_turn(ctl, now);
		next = tern_watch_next(ctl->watch);
	}
	/* After every key change above (rotation, a reload by the watch),
	 * and after any a command made this turn. */
	retry_key_handoff(ctl, now);
	if (ctl->next_key_retry_ms && ctl->next_key_retry_ms < next)
		next = ctl->next_key_retry_ms;
	if (ctl->next_rotate_ms && ctl->next_rotate_ms < next)
		next = ctl->next_rotate_ms;
	if (ctl->next_refresh_ms && ctl->next_refresh_ms < next)
		next = ctl->next_refresh_ms;
	/* Health pings to every worker (health.h), systemd's STATUS= line. */
	uint64_t pings = tern_health_tick(ctl->srv, now);
	uint64_t status = tern_sd_status_tick(ctl->srv, now);
	next = pings < next ? pings : next;
	return status < next ? status : next;
}


/* Binds the socket at path with mode 0600. A socket file nobody listens on
 * (left by a crash) is replaced; one that answers belongs to a live
 * process and is an error. */
static int bind_control(const char *path, char *err, size_t err_len)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd = -1, ret;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, err_len, "%s: control socket path too long (at most %zu bytes)", path,
			 sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, err_len, "%s: exists and is not a socket", path);
			return -EEXIST;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			snprintf(err, err_len, "%s: in use by a running process", path);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* The umask decides the mode bind() creates: no moment exists when
	 * another user could connect. Start-up is single-threaded here. */
	mode_t old = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (ret < 0 || listen(fd, 16) < 0)
		goto fail;
	return fd;
fail:
	ret = -errno;
	snprintf(err, err_len, "%s: cannot listen: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return ret;
}

int tern_control_start(struct tern_server *srv, struct tern_control **out, char *err,
		       size_t err_len)
{
	struct tern_control *ctl = calloc(1, sizeof(*ctl));
	int listen_fd = -1, ret;

	if (!ctl)
		return -ENOMEM;
	ctl->srv = srv;
	ctl->cfg = srv->cfg;
	ctl->reload_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctl->reload_fd < 0) {
		ret = -errno;
		snprintf(err, err_len, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (ctl->cfg->control_path) {
		listen_fd = bind_control(ctl->cfg->control_path, err, err_len);
		if (listen_fd < 0) {
			ret = listen_fd;
			goto fail;
		}
		ctl->bound = true;
	}
	const struct tern_poll_server_config pcfg = {
		.name = "control",
		.max_clients = MAX_CLIENTS,
		.client_size = sizeof(struct control_client),
		.client_timeout_ms = CLIENT_TIMEOUT_MS,
		.busy_reply = "{\"ok\":false,\"error\":\"too many control clients\"}\n",
		/* A connection kept open and unused gives its slot to a new
		 * one rather than lock `tern ctl` out for CLIENT_TIMEOUT_MS. */
		.reclaim_idle = true,
		.write_stall_ms = TERN_CONTROL_WRITE_STALL_MS,
		.owner = ctl,
		.turn = client_turn,
		.wants = client_wants,
		.timer = run_timers,
	};
	ret = tern_poll_server_new(&pcfg, listen_fd, &ctl->ps);
	if (ret < 0)
		goto fail_errno;
	ret = tern_poll_server_add_fd(ctl->ps, ctl->reload_fd, reload_readable);
	if (ret < 0)
		goto fail_errno;
	uint64_t now = tern_clock_ms();
	ret = start_watch(ctl, now);
	if (ret < 0)
		goto fail_errno;
	if (!ctl->cfg->ticket_keys_path) {
		ctl->next_rotate_ms = now + ctl->cfg->ticket_rotate_ms;
		warn_short_rotation(ctl->cfg);
	} else if (ctl->cfg->ticket_rotate_file) {
		ctl->next_rotate_ms = now + ctl->cfg->ticket_rotate_ms;
	}
	if (ctl->cfg->ticket_refresh_ms)
		ctl->next_refresh_ms = now + ctl->cfg->ticket_refresh_ms / 4;
	ret = tern_poll_server_start(ctl->ps);
	if (ret < 0) {
		snprintf(err, err_len, "cannot start the control thread: %s", strerror(-ret));
		goto fail;
	}
	*out = ctl;
	return 0;
fail_errno:
	snprintf(err, err_len, "control: %s", strerror(-ret));
fail:
	tern_control_stop(ctl);
	return ret;
}

void tern_control_stop(struct tern_control *ctl)
{
	if (!ctl)
		return;
	tern_poll_server_free(ctl->ps);
	tern_watch_free(ctl->watch);
	if (ctl->bound)
		unlink(ctl->cfg->control_path);
	if (ctl->reload_fd >= 0)
		close(ctl->reload_fd);
	free(ctl);
}


void tern_control_request_reload(struct tern_control *ctl)
{
	uint64_t one = 1;
	/* An eventfd write fails only when the counter would overflow: a
	 * reload is pending then anyway. */
	ssize_t ignored = write(ctl->reload_fd, &one, sizeof(one));
	(void)ignored;
}
