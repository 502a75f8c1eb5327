/* In-process reload (SPEC section 4): SIGHUP or the control command
 * `reload`.
 *
 * Everything is loaded and validated, and every worker's new TLS contexts
 * built, on the calling (control) thread, off the data path. Only then is
 * each worker handed its new contexts through its queue: new connections
 * use them, connections in flight keep the ones they started with (every
 * SSL object holds a reference to its SSL_CTX, so the old contexts go away
 * with their last connection). A failure anywhere before that hand-over
 * leaves the old configuration serving untouched. No new process, no
 * second copy of the workers. Control thread only. */
#ifndef TERN_RELOAD_H
#define TERN_RELOAD_H

#include <stddef.h>

struct tern_server;

/* Reloads certificates, keys and the ticket key file. Returns 0, or
 * -errno with the reason in err (and tern_reload_failures_total counted).
 * Logs the outcome either way. */
__attribute__((warn_unused_result))
int tern_reload(struct tern_server *srv, char *err, size_t err_len);

#endif
