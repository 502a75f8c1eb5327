/* The io_uring engine of connections: the socket operations a connection
 * asks for (conn.h's struct tern_conn_ops) go through the worker's ring,
 * and reads of an empty buffer through the ring's provided buffers, lent
 * to the connection while their completion is handled. Worker thread
 * only. */
#ifndef TERN_CONN_RING_H
#define TERN_CONN_RING_H

#include <stdint.h>

#include "tern/worker.h"

extern const struct tern_conn_ops tern_conn_ring_ops;

/* A completion for operation op of the connection encoded in ud. */
void tern_conn_ring_complete(uint64_t ud, enum tern_op op, int32_t res, uint32_t flags);

#endif
