/* The tern command line: turns argv into a struct tern_config.
 *
 * Errors never print or exit here: the caller prints the one-line message
 * and exits 2, so unit tests can check every message. Main thread only. */
#ifndef TERN_CLI_H
#define TERN_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "tern/config.h"

enum tern_cli_result {
	TERN_CLI_RUN = 0,     /* *cfg is complete: run (or --check) */
	TERN_CLI_HELP = 1,    /* --help: print tern_cli_usage() and exit 0 */
	TERN_CLI_VERSION = 2, /* --version: print the version and exit 0 */
	TERN_CLI_BUILD = 3,   /* -vv: print the build (tern_build_info_print) and exit 0 */
};

/* Every message tern_cli_parse() writes fits in this many bytes (values
 * quoted back are cut at 128 bytes). */
#define TERN_CLI_ERR_MAX 512

/* Parses argv into *cfg (which must come from tern_config_init). Returns a
 * tern_cli_result, or -EINVAL with a one-line message (no trailing newline,
 * no "tern: " prefix) in err. After TERN_CLI_RUN, num_listen and
 * num_backends are at least 1 (the defaults fill in when none was given).
 * Pointers in *cfg point into argv. */
__attribute__((warn_unused_result))
int tern_cli_parse(int argc, char **argv, struct tern_config *cfg, char *err, size_t err_len);

/* The --help text, written from the flag table (cli_flags.h) on the first
 * call and kept. Main thread only. */
const char *tern_cli_usage(void);

/* Writes the --help text to out. */
void tern_cli_print_usage(FILE *out);

#endif
