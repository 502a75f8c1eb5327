/* `tern keys`: edits a session ticket key file safely and prints what it
 * did, one line per change (the file format and the edits are
 * src/ticket_keys_file.h's).
 *
 *   tern keys FILE generate|add|promote|retire|list
 *   tern keys FILE rotate [--lifetime DUR]
 *
 * Every edit reads FILE under tern's own checks, converts a bare-line file
 * to ROLE SINCE KEY lines, and replaces FILE atomically. Exit status: 0 on
 * success; 1 for a file problem or a refused edit ("tern keys: PATH:
 * reason"); 2 for bad usage ("tern keys: MESSAGE" naming the argument).
 *
 * The pieces are exposed so unit tests reach them; tern_keys_main() is
 * what proxy/main.c calls. Main thread only. */
#ifndef TERN_KEYS_H
#define TERN_KEYS_H

#include <stdint.h>
#include <stdio.h>

/* rotate's default --lifetime: tern's default --session-lifetime. */
#define TERN_KEYS_DEFAULT_LIFETIME_MS (2u * 3600u * 1000u)
#define TERN_KEYS_DEFAULT_LIFETIME_TEXT "2h"

enum tern_keys_exit {
	TERN_KEYS_EXIT_OK = 0,
	TERN_KEYS_EXIT_FAILED = 1, /* the file, or the edit refused */
	TERN_KEYS_EXIT_USAGE = 2,
};

enum tern_keys_command {
	TERN_KEYS_GENERATE,
	TERN_KEYS_ADD,
	TERN_KEYS_PROMOTE,
	TERN_KEYS_RETIRE,
	TERN_KEYS_ROTATE,
	TERN_KEYS_LIST,
};

enum tern_keys_parse_result {
	TERN_KEYS_RUN = 0,  /* *out is complete */
	TERN_KEYS_HELP = 1, /* -h/--help: print tern_keys_usage() and exit 0 */
};

struct tern_keys_options {
	const char *path; /* in argv */
	enum tern_keys_command command;
	uint64_t lifetime_ms; /* rotate's --lifetime */
};

/* Parses `keys FILE COMMAND [--lifetime DUR]` (argv[0] is "keys").
 * Returns a tern_keys_parse_result, or -EINVAL with a one-line message (no
 * "tern keys: " prefix, no newline) in err:
 *   "missing FILE (see tern keys --help)",
 *   "unknown option '-x' (see tern keys --help)" (FILE may not start
 *   with '-'; write ./-x),
 *   "missing COMMAND (expected generate, add, promote, retire, rotate or list)",
 *   "unknown command 'x' (expected generate, add, promote, retire, rotate or list)",
 *   "--lifetime: missing value (expected a duration with a unit such as 30m or 2h)",
 *   "--lifetime: invalid value 'V' (expected a duration with a unit such as 30m or 2h)",
 *   "--lifetime: invalid value 'V' (expected a duration from 1ms to 720h)",
 *   "--lifetime: only rotate takes it",
 *   "COMMAND: unexpected argument 'x'". */
__attribute__((warn_unused_result))
int tern_keys_parse_args(int argc, char **argv, struct tern_keys_options *out, char *err, size_t err_len);

/* The whole of `tern keys` (argv[0] is "keys") at time `now` (Unix
 * seconds: the SINCE of every key it changes, and what `list` measures
 * ages from), printing to out and err. Returns the exit status. */
__attribute__((warn_unused_result))
int tern_keys_run(int argc, char **argv, int64_t now, FILE *out, FILE *err);

/* tern_keys_run() at the current time, on stdout and stderr. */
__attribute__((warn_unused_result))
int tern_keys_main(int argc, char **argv);

/* The `tern keys --help` text. */
const char *tern_keys_usage(void);

#endif
