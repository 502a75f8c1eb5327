/* The control thread: serves the control socket (SPEC section 3) and runs
 * the timers that act on workers (ticket key rotation, ticket refresh).
 *
 * It never touches a connection: everything that concerns connections is
 * a request pushed into the owning worker's queue, answered through a
 * struct tern_reply. Started after the workers, stopped after they ended;
 * main thread only. */
#ifndef TERN_CONTROL_H
#define TERN_CONTROL_H

#include <stddef.h>

struct tern_server;
struct tern_control;

/* Binds --control (if set; mode 0600; a stale socket file is replaced, a
 * live one is an error) and starts the thread. Returns 0 or -errno with
 * the reason in err. */
__attribute__((warn_unused_result))
int tern_control_start(struct tern_server *srv, struct tern_control **out, char *err,
		       size_t err_len);

/* Any thread (the main thread on SIGHUP): asks the control thread to
 * reload, as the `reload` command does. Returns at once. */
void tern_control_request_reload(struct tern_control *ctl);

/* Stops the thread, closes and unlinks the socket, frees. NULL is fine. */
void tern_control_stop(struct tern_control *ctl);

#endif
