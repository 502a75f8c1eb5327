/* Fuzzes the command line (proxy/cli.h): the input split on NUL bytes is
 * argv[1..] (at most 64 arguments), parsed into a fresh copy of
 * tern_config_init's defaults each run. Checks the header's contract: a result or -EINVAL, a one-line
 * message shorter than TERN_CLI_ERR_MAX, and at least one listen address
 * and backend after TERN_CLI_RUN.
 *
 * No host name reaches the resolver: an input is skipped when any of its
 * arguments, as a whole, after its first '=' ("--backend=HOST:PORT") or
 * after two bytes ("-bHOST:PORT"), is an address that tern_parse_addr
 * would look up. That over-approximates which arguments are addresses
 * (getopt_long also takes abbreviations such as "--back"), which only
 * costs a few skipped inputs. */
#include <errno.h>

#include "cli.h"
#include "fuzz_util.h"
#include "tern/config.h"

#define MAX_ARGS 64

/* tern_config_init's result, made once: it reads the CPU count from
 * /sys on every call, a file read per run that would slow the fuzzer
 * and change nothing. */
static struct tern_config *config_defaults;

static bool arg_would_resolve(const char *arg)
{
	const char *eq = strchr(arg, '=');

	return fuzz_addr_would_resolve(arg) || (eq != NULL && fuzz_addr_would_resolve(eq + 1)) ||
	       (arg[0] != '\0' && arg[1] != '\0' && fuzz_addr_would_resolve(arg + 2));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* One copy with a NUL after the last piece: each piece between NULs
	 * is one argument. */
	char *copy = fuzz_strndup(data, size);
	char *argv[MAX_ARGS + 2];
	int argc = 0;

	argv[argc++] = "tern";
	for (size_t at = 0; at <= size && argc <= MAX_ARGS;) {
		char *arg = copy + at;
		size_t len = strlen(arg);
		if (arg_would_resolve(arg))
			goto out;
		argv[argc++] = arg;
		at += len + 1;
	}
	argv[argc] = NULL;

	/* struct tern_config is large (320 addresses): on the heap, so that
	 * ASan sees every byte of it. */
	struct tern_config *cfg = malloc(sizeof(*cfg));
	char err[4 * TERN_CLI_ERR_MAX];
	FUZZ_CHECK(cfg != NULL);
	if (config_defaults == NULL) {
		config_defaults = malloc(sizeof(*config_defaults));
		FUZZ_CHECK(config_defaults != NULL);
		tern_config_init(config_defaults);
	}
	memcpy(cfg, config_defaults, sizeof(*cfg));
	memset(err, 0, sizeof(err));

	int rc = tern_cli_parse(argc, argv, cfg, err, sizeof(err));
	switch (rc) {
	case TERN_CLI_RUN:
		FUZZ_CHECK(cfg->num_listen >= 1 && cfg->num_listen <= TERN_MAX_LISTEN);
		FUZZ_CHECK(cfg->num_backends >= 1 && cfg->num_backends <= TERN_MAX_BACKENDS);
		FUZZ_CHECK(cfg->num_certs <= TERN_MAX_CERTS);
		FUZZ_CHECK(cfg->tls_min <= cfg->tls_max);
		FUZZ_CHECK(cfg->alpn_wire_len <= sizeof(cfg->alpn_wire));
		FUZZ_CHECK(cfg->verify_client == TERN_VERIFY_CLIENT_NONE || cfg->client_ca_path != NULL);
		break;
	case TERN_CLI_HELP:
	case TERN_CLI_VERSION:
	case TERN_CLI_BUILD:
		break;
	case -EINVAL: {
		size_t len = strlen(err);
		FUZZ_CHECK(len > 0 && len < TERN_CLI_ERR_MAX);
		FUZZ_CHECK(strchr(err, '\n') == NULL);
		break;
	}
	default:
		FUZZ_CHECK(!"tern_cli_parse returned something else");
	}
	free(cfg);
out:
	free(copy);
	return 0;
}
