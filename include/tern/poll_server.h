/* A small poll() server: one thread, one listener, a bounded table of
 * non-blocking clients, and the control thread's and the metrics thread's
 * shared machinery around them.
 *
 * It owns what both need and neither should write twice: the pollfd
 * array rebuilt every turn; the listener, accepted until EAGAIN; with the
 * table full, the slot of the longest-idle client taken back for the new
 * one (reclaim_idle), or else a refusal (a fixed reply, then close); a
 * pause instead of a retry when accept() fails for want of descriptors or
 * memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), the clients already accepted
 * served meanwhile; the client table with swap-remove; each client's
 * deadline, after which it is closed; each client's pending output,
 * written without blocking, and the client closed when it takes none of
 * it for write_stall_ms; a stop eventfd; a few extra readable fds (the
 * control thread's reload eventfd); and a timer hook (the control
 * thread's key rotation and ticket refresh). Each of those storms (accept
 * failing, slots reclaimed, stalled readers closed) is warned about at
 * most once per interval, with the count of those not warned about
 * (log_limit.h). What a client says and what it is answered is the
 * owner's, through struct tern_poll_server_config's callbacks.
 *
 * Threads: everything runs on the one thread that calls
 * tern_poll_server_turn() (or that tern_poll_server_start() made),
 * callbacks included; tern_poll_server_new() and tern_poll_server_free()
 * belong to the thread that owns the server (main, in tern). */
#ifndef TERN_POLL_SERVER_H
#define TERN_POLL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tern_poll_server;

/* How long the listener rests after accept() failed for want of
 * descriptors or memory: long enough that a process out of descriptors
 * costs ten accept() calls a second, not a core; short enough that a
 * client waiting in the backlog is taken within 100 ms of one being
 * free. And how often each storm is warned about at most. */
#define TERN_POLL_ACCEPT_PAUSE_MS 100
#define TERN_POLL_WARN_INTERVAL_MS 10000
/* A loop with nothing due still wakes this often. */
#define TERN_POLL_MAX_WAIT_MS 1000
/* Extra fds besides the listener and the stop eventfd. */
#define TERN_POLL_MAX_EXTRA_FDS 2

/* One client. The owner's client struct starts with it (client_size), so
 * the owner gets its own back with tern_container_of(). Invariant:
 * out_off <= out_len, and out == NULL when out_len == 0. */
struct tern_poll_client {
	int fd;               /* the server's: closed with the client */
	uint64_t deadline_ms; /* closed once the clock reaches it; the owner may move it */
	/* The owner's to set, with tern_poll_client_mark_idle(): since when
	 * the client has been idle, holding its slot with nothing under way
	 * (no request complete, no output pending), so that its slot may be
	 * reclaimed for a new client; 0 while busy (never reclaimed). A new
	 * client starts at 0 until the owner's first turn for it: one
	 * accepted in the same burst as the newcomer may have its request
	 * waiting unread, and is not to be taken for idle. */
	uint64_t idle_since_ms;
	char *out;            /* pending output, the server's */
	size_t out_len, out_off;
	uint64_t out_progress_ms; /* when the output last started or moved */
};

/* What a client's turn decided. */
enum tern_poll_verdict {
	TERN_POLL_CLOSE, /* close it now */
	TERN_POLL_WAIT,  /* keep it; wait for its events or its deadline */
	TERN_POLL_AGAIN, /* keep it; it has more to do at once: the next poll() does not sleep */
};

struct tern_poll_server_config {
	const char *name;          /* log prefix: "control", "metrics" */
	unsigned max_clients;      /* one more is refused with busy_reply */
	size_t client_size;        /* >= sizeof(struct tern_poll_client) */
	unsigned client_timeout_ms; /* a new client's deadline, from accept */
	const char *busy_reply;    /* NUL-terminated; sent best effort, never waited for */
	unsigned accept_pause_ms;  /* 0: TERN_POLL_ACCEPT_PAUSE_MS */
	unsigned warn_interval_ms; /* 0: TERN_POLL_WARN_INTERVAL_MS */
	/* With the table full, close the client idle longest (by
	 * idle_since_ms) for a new one; the new one is refused only when
	 * none is idle. */
	bool reclaim_idle;
	/* A client with output pending that takes none of it for this long is
	 * closed (and warned about); 0: only its deadline bounds it. */
	unsigned write_stall_ms;
	void *owner;               /* passed to every callback */

	/* Required. A client's turn, every loop iteration for every client,
	 * with what poll() reported for it (0: nothing). After it, the
	 * server closes the client on TERN_POLL_CLOSE, on POLLERR or
	 * POLLNVAL, and when its deadline has passed. */
	enum tern_poll_verdict (*turn)(void *owner, struct tern_poll_client *cl, short revents,
				       uint64_t now_ms);
	/* Optional. The events a client with no output pending waits for
	 * (with output pending it waits for POLLOUT); NULL: POLLIN. */
	short (*wants)(void *owner, const struct tern_poll_client *cl);
	/* Optional. Runs after the clients on every loop iteration; returns
	 * the next time it wants to run by (UINT64_MAX: no wish). */
	uint64_t (*timer)(void *owner, uint64_t now_ms);
};

/* Makes a server on listen_fd (non-blocking; -1 for none) as cfg says
 * (copied; the strings must outlive the server). The listener is taken
 * either way: closed by tern_poll_server_free, or at once on failure.
 * Returns 0 with *out, or -errno (-EINVAL for a config without turn,
 * clients or room for struct tern_poll_client). */
__attribute__((warn_unused_result))
int tern_poll_server_new(const struct tern_poll_server_config *cfg, int listen_fd,
			 struct tern_poll_server **out);

/* Adds an fd that poll() watches for input: on POLLIN, readable(owner)
 * runs after the clients and the listener. The fd stays the caller's.
 * Before the server runs. Returns 0, or -ENOSPC beyond
 * TERN_POLL_MAX_EXTRA_FDS. */
__attribute__((warn_unused_result))
int tern_poll_server_add_fd(struct tern_poll_server *ps, int fd, void (*readable)(void *owner));

/* One loop iteration: poll() (sleeping until an event, the earliest
 * deadline or timer, the listener's pause ending, at most
 * TERN_POLL_MAX_WAIT_MS), then the clients' turns, the listener, the
 * extra fds, the timer. Returns 1 to go on, 0 once stopped, -errno when
 * poll() failed (logged). The thread that runs the server. */
__attribute__((warn_unused_result))
int tern_poll_server_turn(struct tern_poll_server *ps);

/* Starts a thread that turns until stopped. Returns 0 or -errno. */
__attribute__((warn_unused_result))
int tern_poll_server_start(struct tern_poll_server *ps);

/* Any thread: the next turn returns 0 (the thread, if any, ends). */
void tern_poll_server_request_stop(struct tern_poll_server *ps);

/* Stops and joins the thread if one was started, closes every client and
 * the listener, frees. NULL is fine. */
void tern_poll_server_free(struct tern_poll_server *ps);

/* Clients in the table now. The thread that runs the server. */
unsigned tern_poll_server_num_clients(const struct tern_poll_server *ps);

/* Bytes the clients' output buffers hold now, all clients together
 * (written bytes included until the buffer is freed: the memory, not the
 * backlog). The thread that runs the server. */
size_t tern_poll_server_output_bytes(const struct tern_poll_server *ps);

/* Appends len bytes to the client's pending output. Returns 0 or -ENOMEM
 * (nothing appended). */
__attribute__((warn_unused_result))
int tern_poll_client_append(struct tern_poll_client *cl, const void *data, size_t len);

/* The same for len bytes at buf (from malloc), which it takes either way:
 * with no output pending buf becomes the output buffer as it is, without
 * a copy (a control reply of many megabytes is not held twice); else it
 * is appended and freed. Returns 0 or -ENOMEM (nothing appended). */
__attribute__((warn_unused_result))
int tern_poll_client_give(struct tern_poll_client *cl, char *buf, size_t len);

/* Writes what of the pending output the socket takes now (MSG_NOSIGNAL).
 * Returns 1 once all of it is written (the buffer freed), 0 when some is
 * left for POLLOUT, -errno when the socket failed. */
__attribute__((warn_unused_result))
int tern_poll_client_flush(struct tern_poll_client *cl);

static inline bool tern_poll_client_has_output(const struct tern_poll_client *cl)
{
	return cl->out_off < cl->out_len;
}

/* The owner's verdict at the end of a turn: whether the client is idle
 * now (idle_since_ms). An idle client keeps the time it became idle, so
 * the one idle longest is reclaimed first; a busy one is never reclaimed. */
static inline void tern_poll_client_mark_idle(struct tern_poll_client *cl, bool idle, uint64_t now)
{
	if (!idle)
		cl->idle_since_ms = 0;
	else if (!cl->idle_since_ms)
		cl->idle_since_ms = now;
}

#endif
