/* The command line: argv to struct tern_config, with one exact message per
 * mistake so that operators, unit tests and integration tests all see the
 * same words. Every message names the flag in its long form, even when the
 * short form was typed, so one message can be searched for in the docs.
 *
 * What each flag takes lives in the flag table (cli_flags.c); this file
 * runs getopt over it, checks the flags against each other and writes
 * --help from it. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_flags.h"
#include "tern/backend_resolve.h"
#include "tern/backend_set.h"

/* getopt_long() returns a short flag's own letter; long-only flags get
 * FIRST_LONG_ID + their row, which no character can collide with. */
#define FIRST_LONG_ID 256

/* --help's layout: the flag column, where the help starts, the width. */
#define USAGE_HELP_COLUMN 31
#define USAGE_WIDTH 96

static int flag_id(size_t row)
{
	return tern_cli_flags[row].short_name != '\0' ? tern_cli_flags[row].short_name
						       : FIRST_LONG_ID + (int)row;
}

static const struct tern_cli_flag *flag_by_id(int id)
{
	if (id >= FIRST_LONG_ID)
		return (size_t)(id - FIRST_LONG_ID) < tern_cli_num_flags ? &tern_cli_flags[id - FIRST_LONG_ID] : NULL;
	for (size_t i = 0; i < tern_cli_num_flags; i++) {
		if (tern_cli_flags[i].short_name != '\0' && tern_cli_flags[i].short_name == id)
			return &tern_cli_flags[i];
	}
	return NULL;
}

static bool takes_value(const struct tern_cli_flag *flag)
{
	return flag->metavar != NULL;
}

__attribute__((format(printf, 3, 4)))
static int cli_error(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && err_len > 0) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A '?' from getopt_long(): an unknown option, or a switch given a value
 * with "--switch=value" (glibc then sets optopt to the switch's id; for an
 * unknown or ambiguous long option it sets optopt to 0). */
static int unknown_option(char **argv, char *err, size_t err_len)
{
	const struct tern_cli_flag *flag = optopt != 0 ? flag_by_id(optopt) : NULL;
	const char *arg = argv[optind - 1];
	char text[TERN_CLI_SHOWN_MAX + 4];

	if (flag != NULL) {
		const char *eq = strchr(arg, '=');
		return tern_cli_invalid_value(flag, eq != NULL ? eq + 1 : "", "no value", err, err_len);
	}
	if (optopt != 0) {
		char short_opt[3] = {'-', (char)optopt, '\0'};
		tern_cli_show_value(short_opt, text, sizeof(text));
	} else {
		/* Quote the name only: "--frob=1" is reported as '--frob'. */
		char name[TERN_CLI_SHOWN_MAX + 4];
		size_t len = strcspn(arg, "=");
		if (len >= sizeof(name))
			len = sizeof(name) - 1;
		memcpy(name, arg, len);
		name[len] = '\0';
		tern_cli_show_value(name, text, sizeof(text));
	}
	return cli_error(err, err_len, "unknown option '%s' (see tern --help)", text);
}

/* What no single flag can judge: flags that need or contradict each
 * other. given_ticket_rotate: --ticket-rotate was typed. */
static int check_combinations(struct tern_config *cfg, bool given_ticket_rotate, char *err, size_t err_len)
{
	const struct tern_cli_flag *tls_min = tern_cli_flag_find("tls-min");
	const struct tern_cli_flag *verify_client = tern_cli_flag_find("verify-client");
	const struct tern_cli_flag *accept_proxy = tern_cli_flag_find("accept-proxy");

	if (cfg->tls_min > cfg->tls_max)
		return cli_error(err, err_len, "--tls-min: invalid value '%s' (expected a version not above --tls-max %s)",
				 tern_cli_flag_word(tls_min, cfg->tls_min), tern_cli_flag_word(tls_min, cfg->tls_max));
	/* With a key file, an explicit --ticket-rotate rotates the file
	 * itself (staged, then encrypting one interval later, retired after
	 * --session-lifetime): for one instance, or the one that owns the
	 * fleet's copy. Without it the file changes only when edited. */
	if (given_ticket_rotate && cfg->ticket_keys_path != NULL)
		cfg->ticket_rotate_file = true;
	/* Asking for a client certificate with nothing to verify it against
	 * would accept any: refused rather than guessed at. */
	if (cfg->verify_client != TERN_VERIFY_CLIENT_NONE && cfg->client_ca_path == NULL)
		return tern_cli_invalid_value(verify_client, tern_cli_flag_word(verify_client, cfg->verify_client),
					      "none, or a --client-ca to verify client certificates against", err,
					      err_len);
	/* A PROXY header says who the client is: taken from anyone, it
	 * would let every client claim any address. */
	if (cfg->accept_proxy != TERN_ACCEPT_PROXY_OFF && cfg->num_accept_proxy_from == 0)
		return tern_cli_invalid_value(accept_proxy, tern_cli_flag_word(accept_proxy, cfg->accept_proxy),
					      "--accept-proxy-from too: the sources allowed to send the header, "
					      "0.0.0.0/0 and ::/0 for all",
					      err, err_len);
	/* A CRL revokes what a CA issued: without --client-ca no client
	 * certificate is ever verified, so it would check nothing. */
	if (cfg->crl_path != NULL && cfg->client_ca_path == NULL)
		return tern_cli_invalid_value(tern_cli_flag_find("crl"), cfg->crl_path,
					      "a --client-ca whose client certificates it revokes", err, err_len);
	return 0;
}

/* --check: every --backend name must resolve now, as it had to before
 * names were resolved at run time, so a deployment check still catches a
 * typo (a running tern only warns and keeps trying). */
static int check_backend_names(const struct tern_config *cfg, char *err, size_t err_len)
{
	static struct tern_addr addrs[TERN_MAX_ADDRS_PER_BACKEND];
	char why[128];
	bool more;

	for (size_t i = 0; i < cfg->num_backends; i++) {
		if (cfg->backends[i].ss.ss_family != AF_UNSPEC)
			continue;
		if (tern_backend_resolve(&cfg->backend_names[i], addrs, TERN_MAX_ADDRS_PER_BACKEND, &more, why,
					 sizeof(why)) < 0)
			return tern_cli_cannot_resolve(tern_cli_flag_find("backend"), cfg->backends[i].text, err,
						       err_len);
	}
	return 0;
}

int tern_cli_parse(int argc, char **argv, struct tern_config *cfg, char *err, size_t err_len)
{
	struct option long_options[TERN_CLI_MAX_FLAGS + 1];
	char short_options[1 + 2 * TERN_CLI_MAX_FLAGS + 1];
	bool given[TERN_CLI_MAX_FLAGS];
	char shown[TERN_CLI_SHOWN_MAX + 4];
	size_t num_long = 0, short_len = 0;
	int rc;

	if (tern_cli_num_flags > TERN_CLI_MAX_FLAGS)
		return cli_error(err, err_len, "more flags than TERN_CLI_MAX_FLAGS (internal error)");
	/* ':' first: a missing value is reported as ':', not '?'. */
	short_options[short_len++] = ':';
	for (size_t i = 0; i < tern_cli_num_flags; i++) {
		const struct tern_cli_flag *flag = &tern_cli_flags[i];
		given[i] = false;
		if (flag->type == TERN_CLI_DOC_ONLY)
			continue;
		long_options[num_long++] = (struct option){
			.name = flag->name,
			.has_arg = takes_value(flag) ? required_argument : no_argument,
			.flag = NULL,
			.val = flag_id(i),
		};
		if (flag->short_name != '\0') {
			short_options[short_len++] = flag->short_name;
			if (takes_value(flag))
				short_options[short_len++] = ':';
		}
	}
	long_options[num_long] = (struct option){0};
	short_options[short_len] = '\0';

	/* -vv (SPEC section 2) answers at once, as --help and -V do, wherever
	 * it stands before "--": matched whole here, since getopt would read
	 * it as -v twice, and a single -v means nothing. */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "-vv") == 0)
			return TERN_CLI_BUILD;

	/* optind = 0 makes glibc reinitialise all of getopt's state, so the
	 * parser can run again (unit tests call it many times); opterr = 0
	 * because messages are ours to word. */
	optind = 0;
	opterr = 0;
	for (;;) {
		int id = argc > 0 ? getopt_long(argc, argv, short_options, long_options, NULL) : -1;
		if (id == -1)
			break;
		if (id == '?')
			return unknown_option(argv, err, err_len);
		const struct tern_cli_flag *flag = flag_by_id(id == ':' ? optopt : id);
		if (flag == NULL)
			return cli_error(err, err_len, "option %d not handled (internal error)", id);
		if (id == ':') {
			char expected[256];
			tern_cli_flag_expected(flag, expected, sizeof(expected));
			return cli_error(err, err_len, "--%s: missing value (expected %s)", flag->name, expected);
		}
		/* --help and --version answer at once: whatever follows them is
		 * not checked, as with most tools. */
		if (flag->type == TERN_CLI_ACTION)
			return flag->action;
		rc = tern_cli_flag_apply(flag, optarg, cfg, err, err_len);
		if (rc < 0)
			return rc;
		given[flag - tern_cli_flags] = true;
	}
	/* getopt_long() moves operands after the options, so the first one
	 * left is the first one typed. */
	if (argc > 0 && optind < argc) {
		tern_cli_show_value(argv[optind], shown, sizeof(shown));
		return cli_error(err, err_len, "unexpected argument '%s' (see tern --help)", shown);
	}

	rc = check_combinations(cfg, given[tern_cli_flag_find("ticket-rotate") - tern_cli_flags], err, err_len);
	if (rc < 0)
		return rc;

	/* Defaults that are values to parse, only when the flag was not
	 * given: a --listen replaces the default address rather than adding
	 * to it. */
	for (size_t i = 0; i < tern_cli_num_flags; i++) {
		const struct tern_cli_flag *flag = &tern_cli_flags[i];
		if (!flag->apply_default || given[i])
			continue;
		rc = tern_cli_flag_apply(flag, flag->default_text, cfg, err, err_len);
		if (rc < 0)
			return rc;
	}
	cfg->listen_is_default = !given[tern_cli_flag_find("listen") - tern_cli_flags];
	if (cfg->check) {
		rc = check_backend_names(cfg, err, err_len);
		if (rc < 0)
			return rc;
	}
	return TERN_CLI_RUN;
}

void tern_cli_print_usage(FILE *out)
{
	struct tern_config *defaults = malloc(sizeof(*defaults));

	if (defaults == NULL)
		return;
	tern_config_init(defaults);
	fputs("Usage: tern [OPTIONS]\n"
	      "       tern ctl [--control PATH] [--json] [--timeout DUR] COMMAND [ARGS...]\n"
	      "       tern keys FILE generate|add|promote|retire|rotate|list (see tern keys --help)\n"
	      "\n"
	      "Terminates TLS on the listening addresses and forwards the plaintext to the backends.\n"
	      "With no options: listen on " TERN_DEFAULT_LISTEN ", forward to " TERN_DEFAULT_BACKEND ",\n"
	      "and serve an in-memory self-signed certificate for localhost (with a warning).\n"
	      "\n"
	      "ADDR is " TERN_CLI_VALUES_ADDR ".\n"
	      "DUR is " TERN_CLI_VALUES_DUR ".\n"
	      "SIZE is " TERN_CLI_VALUES_SIZE ".\n"
	      "\n"
	      "Options:\n",
	      out);
	for (size_t i = 0; i < tern_cli_num_flags; i++)
		tern_cli_print_flag_entry(out, &tern_cli_flags[i], defaults, USAGE_HELP_COLUMN, USAGE_WIDTH);
	fputs("\nBad input on the command line exits with status 2.\n", out);
	free(defaults);
}

const char *tern_cli_usage(void)
{
	static char *usage;

	return tern_cli_text_once(&usage, tern_cli_print_usage, "Usage: tern [OPTIONS] (see man tern)\n");
}
