/* The control protocol's pure part: one command line to a struct
 * tern_command (SPEC section 3). No I/O: the control socket reads a line,
 * calls tern_control_parse() and answers the error text as
 * {"ok":false,"error":"..."}, so every accepted form and every refusal is
 * unit-tested without a socket.
 *
 * Grammar: tokens separated by spaces or tabs, the first one the command,
 * case-sensitive. A count is decimal digits only (no sign, no spaces, no
 * suffix); a connection ID is a decimal uint64. Arity is checked before the
 * values, so "tickets x 1 2" is "too many arguments", not a bad ID. */
#ifndef TERN_CONTROL_PROTO_H
#define TERN_CONTROL_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Longest command line, without its "\n" or "\r\n" terminator. */
#define TERN_CONTROL_LINE_MAX 4096

/* Bounds of the command arguments, as the error texts spell them. */
#define TERN_CONTROL_CONNS_DEFAULT 1000u
#define TERN_CONTROL_CONNS_MAX 100000u
#define TERN_CONTROL_TICKETS_DEFAULT 1u
#define TERN_CONTROL_TICKETS_MAX 16u     /* tickets ID|all [N]: N is 1..16 */
#define TERN_CONTROL_NUM_TICKETS_MAX 16u /* num-tickets ID N: N is 0..16 */

/* Every message tern_control_parse() writes fits in this many bytes: a
 * command name quoted back is cut at 64 bytes, an ID at 32. */
#define TERN_CONTROL_ERR_MAX 256

enum tern_command_kind {
	TERN_CMD_NONE = 0, /* nothing parsed (the value *out holds on error) */
	TERN_CMD_HELP,
	TERN_CMD_STATS,
	TERN_CMD_CONNS,              /* limit */
	TERN_CMD_TICKETS,            /* conn_id (or TERN_CONN_ID_ALL), count */
	TERN_CMD_NUM_TICKETS,        /* conn_id, count */
	TERN_CMD_ROTATE_TICKET_KEYS,
	TERN_CMD_VERIFY_CLIENT, /* conn_id */
	TERN_CMD_RELOAD,
	TERN_CMD_INFO,
	TERN_CMD_KEYS,
	TERN_CMD_CLOSE, /* conn_id */
	TERN_CMD_CERTS,
	TERN_CMD_BACKENDS,
};

struct tern_command {
	enum tern_command_kind kind;
	uint64_t conn_id; /* tickets, num-tickets, verify-client, close; TERN_CONN_ID_ALL for "all" */
	uint32_t count;   /* tickets: 1..16 (default 1); num-tickets: 0..16 */
	uint32_t limit;   /* conns: 1..100000 (default 1000) */
};

/* Parses one command line of len bytes (no "\n"; one trailing "\r" is
 * dropped, so telnet-style "\r\n" lines work). The line need not be
 * NUL-terminated and may contain NUL bytes (refused as control
 * characters). Returns 0 and fills *out, or -EINVAL with a one-line
 * message in err (cut to err_len, NUL-terminated; err may be NULL when
 * err_len is 0) and *out zeroed (kind TERN_CMD_NONE).
 *
 * The messages, exactly:
 *   "command longer than 4096 bytes", "command contains a control
 *   character" (a byte below 0x20 other than tab, or 0x7f), "empty
 *   command", "unknown command 'NAME'", "too many arguments for 'NAME'",
 *   "conns: LIMIT must be 1..100000", "tickets: expected ID|all [N]",
 *   "tickets: N must be 1..16", "num-tickets: expected ID N",
 *   "num-tickets: N must be 0..16", "verify-client: expected ID",
 *   "close: expected ID", "invalid connection ID 'ID'".
 * A quoted NAME longer than 64 bytes (or ID longer than 32) is cut and
 * ends in "...". The ID UINT64_MAX is refused: it is TERN_CONN_ID_ALL.
 *
 * Pure: safe from any thread. */
__attribute__((warn_unused_result))
int tern_control_parse(const char *line, size_t len, struct tern_command *out, char *err, size_t err_len);

/* The command names tern_control_parse() accepts, in the order `help`
 * lists them, ending with NULL. Static storage. */
const char *const *tern_control_command_names(void);

/* What `tern ctl --help` and the man page tern-ctl(8) say of a command. */
struct tern_control_command_doc {
	const char *name;
	const char *args;    /* "ID|all [N]"; "" when it takes none */
	const char *summary; /* one sentence, no final period; a default in [brackets] */
};

/* The commands in the order of tern_control_command_names(), ending with
 * {NULL, NULL, NULL}. Static storage. */
const struct tern_control_command_doc *tern_control_command_docs(void);

#endif
