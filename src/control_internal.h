/* The control thread's read-only answers (control_views.c): what runs
 * and what it holds, rendered from the server's state without asking the
 * workers. Control thread only, as the state they read (the ticket keys,
 * the identities, the generation) is that thread's. */
#ifndef TERN_CONTROL_INTERNAL_H
#define TERN_CONTROL_INTERNAL_H

#include "tern/json.h"
#include "tern/server.h"

/* help: every command's name. */
void tern_control_view_help(struct tern_json *j);
/* stats: the counters of the whole process, and a few settings. */
void tern_control_view_stats(struct tern_server *srv, struct tern_json *j);
/* info: version, uptime, engine, workers. */
void tern_control_view_info(struct tern_server *srv, struct tern_json *j);
/* keys: the ticket keys by fingerprint, role and age, never the keys. */
void tern_control_view_keys(struct tern_server *srv, struct tern_json *j);
/* certs: each certificate's names, key, validity and OCSP status. */
void tern_control_view_certs(struct tern_server *srv, struct tern_json *j);
/* backends: each --backend as configured, the addresses it stands for
 * now, up or down, its connects, failures and open connections
 * (control_backends.c). Any thread, in fact: it reads atomics and takes
 * a reference to the current backend set. */
void tern_control_view_backends(struct tern_server *srv, struct tern_json *j);

#endif
