/* Requests from control threads (control socket, timers) to a worker.
 *
 * A request is a small value copied into the worker's lock-free queue
 * (queue.h); anything larger travels by pointer in `ptr`, whose ownership
 * the kind defines. The worker is woken through its ring after a push. */
#ifndef TERN_REQUEST_H
#define TERN_REQUEST_H

#include <stdint.h>

/* conn_id meaning "every connection of the worker". */
#define TERN_CONN_ID_ALL UINT64_MAX

enum tern_request_kind {
	TERN_REQ_KIND_NONE = 0,
	/* count new TLS 1.3 tickets for conn_id (or all); ptr: a
	 * struct tern_reply the worker answers into */
	TERN_REQ_KIND_TICKETS,
	/* SSL_set_num_tickets(count) on conn_id; ptr: struct tern_reply */
	TERN_REQ_KIND_NUM_TICKETS,
	/* list up to `arg` connections, as struct tern_conn_info in the
	 * reply part (conn_info.h); ptr: struct tern_reply */
	TERN_REQ_KIND_LIST_CONNS,
	/* one ticket to every TLS 1.3 connection whose newest ticket is older
	 * than `arg` milliseconds; ptr: NULL (nobody waits) */
	TERN_REQ_KIND_TICKET_REFRESH,
	/* adopt a new ticket key set; ptr: struct tern_ticket_keys holding one
	 * reference that passes to the worker; arg: its generation
	 * (key_handoff.h), which the worker publishes once it uses the set */
	TERN_REQ_KIND_TICKET_KEYS,
	/* post-handshake client authentication on conn_id; ptr: struct
	 * tern_reply */
	TERN_REQ_KIND_VERIFY_CLIENT,
	/* adopt new TLS contexts for new connections (reload); ptr: a
	 * struct tern_tls_shard, which passes to the worker */
	TERN_REQ_KIND_TLS_SHARD,
	/* health (health.h): the worker stores the time in its "last
	 * answered" slot (tern_worker_ping_answered_ms); ptr: NULL (nobody
	 * waits) */
	TERN_REQ_KIND_PING,
	/* end conn_id cleanly (tern_conn_request_close); ptr: struct
	 * tern_reply */
	TERN_REQ_KIND_CLOSE,
	/* adopt a new set of backend addresses for new connections (a name
	 * resolved differently, backends.h); ptr: a struct tern_backend_set
	 * holding one reference that passes to the worker */
	TERN_REQ_KIND_BACKEND_SET,
};

struct tern_request {
	uint32_t kind; /* enum tern_request_kind */
	uint32_t count;
	uint64_t conn_id;
	uint64_t arg;
	void *ptr;
};

#endif
