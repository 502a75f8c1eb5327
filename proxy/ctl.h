/* `tern ctl`: sends one command to a running tern's control socket (SPEC
 * section 3) and prints the reply, readable or as the raw JSON line.
 *
 *   tern ctl [--control PATH] [--json] [--timeout DUR] COMMAND [ARGS...]
 *
 * PATH is --control, else $TERN_CONTROL when set and non-empty, else
 * TERN_CTL_DEFAULT_CONTROL_PATH. Options come before COMMAND; everything
 * from COMMAND on is joined with single spaces into the command line.
 * Exit status: 0 when the reply has "ok":true; 1 when it has ok:false, is
 * not a reply, or the socket cannot be reached in time; 2 for bad usage.
 *
 * The pieces are exposed so unit tests reach them; tern_ctl_main() is what
 * proxy/main.c calls. Main thread only (nothing here is shared). */
#ifndef TERN_CTL_H
#define TERN_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tern/control_proto.h"

/* Where `tern --control` is usually pointed (systemd's RuntimeDirectory). */
#define TERN_CTL_DEFAULT_CONTROL_PATH "/run/tern/control.sock"
#define TERN_CTL_DEFAULT_TIMEOUT_MS 5000u
#define TERN_CTL_DEFAULT_TIMEOUT_TEXT "5s"

enum tern_ctl_exit {
	TERN_CTL_EXIT_OK = 0,     /* the reply says "ok":true */
	TERN_CTL_EXIT_FAILED = 1, /* ok:false, no reply, or not a reply */
	TERN_CTL_EXIT_USAGE = 2,  /* bad command line */
};

enum tern_ctl_parse_result {
	TERN_CTL_SEND = 0, /* *out is complete: send out->line */
	TERN_CTL_HELP = 1, /* -h/--help: print tern_ctl_usage() and exit 0 */
};

/* Every message tern_ctl_parse_args() writes fits in this many bytes. */
#define TERN_CTL_ERR_MAX 512

struct tern_ctl_options {
	const char *control_path; /* points into argv, the environment or a literal */
	bool json;
	uint64_t timeout_ms;
	const char *timeout_text; /* as typed, for messages: "no reply within 5s" */
	const char *command;      /* the first word of the line, in argv */
	char line[TERN_CONTROL_LINE_MAX + 1]; /* COMMAND ARGS..., NUL-terminated, no "\n" */
	size_t line_len;
};

/* Parses `ctl [OPTIONS] COMMAND [ARGS...]` (argv[0] is "ctl"); env_control
 * is $TERN_CONTROL or NULL. Returns a tern_ctl_parse_result, or -EINVAL
 * with a one-line message (no "tern ctl: " prefix, no newline) in err:
 *   "unknown option '--x' (see tern ctl --help)",
 *   "--control: missing value (expected ...)",
 *   "--control: invalid value 'V' (expected a non-empty path of at most 107
 *   bytes for the UNIX control socket)" (the same for TERN_CONTROL),
 *   "--timeout: invalid value 'V' (expected a duration with a unit such as
 *   250ms, 30s, 5m or 2h)" or "(expected a duration from 1ms to 720h)",
 *   "--json: invalid value 'V' (expected no value)",
 *   "missing COMMAND (see tern ctl --help)",
 *   "command contains a control character",
 *   "command longer than 4096 bytes". */
__attribute__((warn_unused_result))
int tern_ctl_parse_args(int argc, char **argv, const char *env_control, struct tern_ctl_options *out, char *err,
			size_t err_len);

/* Prints the reply line (len bytes, without its "\n") to the command
 * `command`: with json, the line as it came; otherwise `conns` as a table,
 * ok:false as "error: MESSAGE" on err, anything else as "key: value"
 * lines, or "ok" when there is nothing but "ok". Text from the reply is
 * shown with control characters as \xNN. A line that is not a JSON object
 * with a boolean "ok" is printed as it came, with a message on err.
 * Returns the exit status: TERN_CTL_EXIT_OK or TERN_CTL_EXIT_FAILED. */
__attribute__((warn_unused_result))
int tern_ctl_print_reply(const char *command, bool json, const char *reply, size_t len, FILE *out, FILE *err);

/* The whole of `tern ctl` (argv[0] is "ctl"), with $TERN_CONTROL, printing
 * to out and err: returns the exit status. Usage errors are one line,
 * "tern ctl: MESSAGE"; so are failures to reach tern: "tern ctl: cannot
 * connect to PATH: REASON", "tern ctl: PATH: no reply within DUR",
 * "tern ctl: PATH: connection closed before a reply". */
__attribute__((warn_unused_result))
int tern_ctl_run(int argc, char **argv, FILE *out, FILE *err);

/* tern_ctl_run() on stdout and stderr, with $TERN_CONTROL. */
__attribute__((warn_unused_result))
int tern_ctl_main(int argc, char **argv);

/* The `tern ctl --help` text, written from tern_ctl_option_docs() and
 * the control protocol's command table (tern_control_command_docs) on the
 * first call and kept. Main thread only. */
const char *tern_ctl_usage(void);

/* Writes the `tern ctl --help` text to out. */
void tern_ctl_print_usage(FILE *out);

struct tern_cli_flag;

/* tern ctl's options as rows of the flag table's type (cli_flags.h), for
 * --help and tern-ctl(8); ends with a row whose name is NULL. Static
 * storage. */
const struct tern_cli_flag *tern_ctl_option_docs(void);

#endif
