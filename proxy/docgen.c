/* tern-docgen: writes tern's documentation from the tables the program
 * itself runs on, so the two cannot drift: the flag table
 * (proxy/cli_flags.c), tern ctl's options (proxy/ctl.c) and the control
 * commands (src/control_proto.c).
 *
 *   tern-docgen man-tern [OUT]      the man page tern(8), roff
 *   tern-docgen man-ctl [OUT]       the man page tern-ctl(8), roff
 *   tern-docgen options-md [OUT]    docs/options.md
 *   tern-docgen readme-flags [OUT]  README's flag table, the lines between
 *                                   its "generated: tern-docgen readme-flags"
 *                                   markers
 *
 * Without OUT it writes to stdout. Built by CMake, never installed; the
 * build runs it for the man pages, tools/regen-docs for the Markdown. The
 * output depends on nothing but the tables (no date, no host), so it can
 * be committed and compared. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_flags.h"
#include "ctl.h"
#include "tern/control_proto.h"

#define GENERATED_BY "tern-docgen"
#define REGEN_COMMAND "cmake --build build --target regen-docs"

/* A config straight from tern_config_init(): the defaults shown. */
static struct tern_config defaults;

static bool is_option_word(const char *word, size_t len)
{
	return len >= 2 && word[0] == '-' && (isalpha((unsigned char)word[1]) || word[1] == '-');
}

/* Roff: text on one line of its own. Options' dashes become \- (a
 * minus, so a pasted option works); a backslash is \e; a line that
 * would start with a control character is guarded with \&; a word too
 * long for a line (a cipher list) may break after its colons (\:). */
static void roff_text(FILE *out, const char *text)
{
	if (text[0] == '.' || text[0] == '\'')
		fputs("\\&", out);
	for (const char *p = text; *p != '\0';) {
		while (*p == '(')
			fputc(*p++, out);
		size_t len = strcspn(p, " ");
		bool option = is_option_word(p, len);
		for (size_t i = 0; i < len; i++) {
			if (p[i] == '\\')
				fputs("\\e", out);
			else if (p[i] == '-' && option)
				fputs("\\-", out);
			else if (p[i] == ':' && len > 40)
				fputs(":\\:", out);
			else
				fputc(p[i], out);
		}
		p += len;
		while (*p == ' ')
			fputc(*p++, out);
	}
}

/* "ID|all [N]": words in capitals are placeholders, in italics. */
static void roff_args(FILE *out, const char *args)
{
	for (const char *p = args; *p != '\0';) {
		size_t caps = 0;
		while (isupper((unsigned char)p[caps]))
			caps++;
		if (caps > 0) {
			fprintf(out, "\\fI%.*s\\fR", (int)caps, p);
			p += caps;
		} else {
			if (*p == '-')
				fputs("\\-", out);
			else
				fputc(*p, out);
			p++;
		}
	}
}

/* The help of a row, expanded, and its details. */
static void row_texts(const struct tern_cli_flag *flag, char *help, size_t help_len, char *details,
		      size_t details_len, char *dflt, size_t dflt_len)
{
	tern_cli_expand(flag, flag->help, help, help_len);
	details[0] = '\0';
	if (flag->details != NULL)
		tern_cli_expand(flag, flag->details, details, details_len);
	tern_cli_flag_default(flag, &defaults, dflt, dflt_len);
}

/* A man page's option tag: ".TP" then "\fB\-l\fR, \fB\-\-listen\fR \fIADDR\fR". */
static void roff_option_tag(FILE *out, char short_name, const char *long_name, const char *metavar)
{
	fputs(".TP\n", out);
	if (short_name != '\0')
		fprintf(out, "\\fB\\-%c\\fR, ", short_name);
	fputs("\\fB", out);
	roff_text(out, long_name);
	fputs("\\fR", out);
	if (metavar != NULL) {
		fputs(" \\fI", out);
		roff_text(out, metavar);
		fputs("\\fR", out);
	}
	fputc('\n', out);
}

static void man_tern(FILE *out)
{
	fputs(".\\\" Written by " GENERATED_BY " from proxy/cli_flags.c: edit that table, not this file.\n", out);
	fputs(".TH TERN 8 \"\" \"tern " TERN_VERSION "\" \"System Manager's Manual\"\n"
	      /* Left-adjusted: a justified line around a long cipher list
	       * would be mostly gaps. */
	      ".ad l\n"
	      ".nh\n"
	      ".SH NAME\n"
	      "tern \\- TLS-terminating proxy\n"
	      ".SH SYNOPSIS\n"
	      ".B tern\n"
	      ".RI [ OPTIONS ]\n"
	      ".br\n"
	      ".B tern ctl\n"
	      ".RI [ OPTIONS ] \" COMMAND \" [ ARGS ...]\n"
	      ".br\n"
	      ".B tern keys\n"
	      ".I FILE COMMAND\n"
	      ".SH DESCRIPTION\n"
	      ".B tern\n"
	      "accepts TLS connections on its listening addresses, terminates TLS 1.2 and 1.3 with OpenSSL,\n"
	      "and forwards the plaintext byte stream to its backends over TCP or UNIX sockets,\n"
	      "round-robin over the healthy ones.\n"
	      "It runs in the foreground (it never daemonises) with one worker thread per CPU;\n"
	      "each worker has its own io_uring ring (or epoll), its own listening sockets and its own\n"
	      "TLS contexts, and a connection stays on one worker for its whole life.\n"
	      ".PP\n"
	      "With no options it listens on " TERN_DEFAULT_LISTEN ", forwards to " TERN_DEFAULT_BACKEND
	      " and serves an in-memory self-signed certificate for localhost, with a warning.\n"
	      ".PP\n"
	      ".B tern ctl\n"
	      "sends one command to a running tern's control socket; see\n"
	      ".BR tern\\-ctl (8).\n"
	      ".B tern keys\n"
	      "edits a session ticket key file safely (generate, add, promote, retire, rotate, list);\n"
	      "see\n"
	      ".BR \"tern keys \\-\\-help\" .\n"
	      ".PP\n"
	      "Values:\n"
	      ".TP\n"
	      ".I ADDR\n",
	      out);
	roff_text(out, TERN_CLI_VALUES_ADDR);
	fputs("\n.TP\n.I DUR\n", out);
	roff_text(out, TERN_CLI_VALUES_DUR);
	fputs("\n.TP\n.I SIZE\n", out);
	roff_text(out, TERN_CLI_VALUES_SIZE);
	fputs("\n.SH OPTIONS\n", out);

	for (size_t i = 0; i < tern_cli_num_flags; i++) {
		const struct tern_cli_flag *flag = &tern_cli_flags[i];
		char help[1024], details[2048], dflt[256], expected[512], name[64];

		row_texts(flag, help, sizeof(help), details, sizeof(details), dflt, sizeof(dflt));
		snprintf(name, sizeof(name), "%s%s", flag->type == TERN_CLI_DOC_ONLY ? "-" : "--", flag->name);
		roff_option_tag(out, flag->short_name, name, flag->metavar);
		roff_text(out, help);
		fputs(".\n", out);
		if (details[0] != '\0') {
			roff_text(out, details);
			fputc('\n', out);
		}
		if (flag->metavar != NULL) {
			tern_cli_flag_expected(flag, expected, sizeof(expected));
			fputs(".br\nTakes ", out);
			roff_text(out, expected);
			fputs(".\n", out);
		}
		if (dflt[0] != '\0') {
			fputs(".br\nDefault: ", out);
			roff_text(out, dflt);
			fputs(".\n", out);
		}
	}

	fputs(".SH SIGNALS\n"
	      ".TP\n"
	      ".B SIGHUP\n"
	      "Reload: re-read certificates, keys, CA, OCSP responses and ticket keys and build new TLS\n"
	      "contexts. New connections use them; open connections keep theirs. When anything fails to\n"
	      "load, tern serves on with the old configuration and logs the error. The control command\n"
	      ".B reload\n"
	      "does the same and answers whether it worked.\n"
	      ".TP\n"
	      ".BR SIGTERM \", \" SIGINT\n"
	      "Drain: stop accepting, let open connections finish for up to\n"
	      ".BR \\-\\-drain\\-timeout ,\n"
	      "then close the rest and exit 0.\n"
	      "A second SIGTERM or SIGINT closes every connection at once.\n"
	      ".SH EXIT STATUS\n"
	      ".TP\n"
	      ".B 0\n"
	      "Stopped after a drain, or\n"
	      ".BR \\-\\-check ,\n"
	      ".BR \\-\\-help ,\n"
	      ".BR \\-\\-version ,\n"
	      ".B \\-vv\n"
	      "succeeded.\n"
	      ".TP\n"
	      ".B 1\n"
	      "A file that cannot be read or parsed (certificate, key, CA, OCSP response, ticket keys),\n"
	      "named with its path and OpenSSL's reason; or a start that failed (an address in use,\n"
	      "io_uring refused with\n"
	      ".BR \"\\-\\-io uring\" );\n"
	      "or a problem that\n"
	      ".B \\-\\-check\n"
	      "found.\n"
	      ".TP\n"
	      ".B 2\n"
	      "A bad command line: one line on standard error naming the flag, the value and what was\n"
	      "expected, as in\n"
	      ".IR \"tern: \\-\\-workers: invalid value '0' (expected an integer from 1 to 1024)\" .\n"
	      ".SH ENVIRONMENT\n"
	      ".TP\n"
	      ".B NOTIFY_SOCKET\n"
	      "Set by systemd for\n"
	      ".BR Type=notify :\n"
	      "tern sends READY=1 once every worker runs, RELOADING=1 and READY=1 around each reload,\n"
	      "STOPPING=1 when it drains, and a STATUS= line.\n"
	      ".TP\n"
	      ".BR WATCHDOG_USEC \", \" WATCHDOG_PID\n"
	      "Set by systemd for\n"
	      ".BR WatchdogSec= :\n"
	      "tern sends WATCHDOG=1 at half the interval, but only while every worker answers a round\n"
	      "trip through its queue.\n"
	      ".TP\n"
	      ".BR LISTEN_FDS \", \" LISTEN_PID \", \" LISTEN_FDNAMES\n"
	      "Socket activation: listening sockets passed by systemd. A socket equal to a\n"
	      ".B \\-\\-listen\n"
	      "address is used instead of binding it; one that matches none is served too, with a line\n"
	      "in the log. tern removes these variables once it has taken the sockets.\n"
	      ".SH FILES\n"
	      ".TP\n"
	      ".I " TERN_CTL_DEFAULT_CONTROL_PATH "\n"
	      "Where the systemd unit puts the control socket\n"
	      ".RB ( \\-\\-control ),\n"
	      "and where\n"
	      ".B tern ctl\n"
	      "looks by default.\n"
	      ".TP\n"
	      ".I /etc/tern/\n"
	      "Where the systemd unit expects the certificate and the ticket keys: owned root:tern,\n"
	      "mode 0640 (tern refuses ticket keys other users can read).\n"
	      ".TP\n"
	      ".IR tern.service \", \" tern.socket\n"
	      "The systemd units installed with tern, in lib/systemd/system under the installation prefix.\n"
	      ".SH SEE ALSO\n"
	      ".BR tern\\-ctl (8),\n"
	      ".BR systemd.service (5),\n"
	      ".BR systemd.socket (5),\n"
	      ".BR openssl\\-ciphers (1)\n",
	      out);
}

static void man_ctl(FILE *out)
{
	fputs(".\\\" Written by " GENERATED_BY " from proxy/ctl.c and src/control_proto.c: edit those, not this "
	      "file.\n",
	      out);
	fputs(".TH TERN\\-CTL 8 \"\" \"tern " TERN_VERSION "\" \"System Manager's Manual\"\n"
	      ".ad l\n"
	      ".nh\n"
	      ".SH NAME\n"
	      "tern\\-ctl \\- send one command to a running tern\n"
	      ".SH SYNOPSIS\n"
	      ".B tern ctl\n"
	      "[\\fB\\-\\-control\\fR \\fIPATH\\fR] [\\fB\\-\\-json\\fR] [\\fB\\-\\-timeout\\fR \\fIDUR\\fR]\n"
	      "\\fICOMMAND\\fR [\\fIARGS\\fR...]\n"
	      ".SH DESCRIPTION\n"
	      ".B tern ctl\n"
	      "connects to the control socket of a running\n"
	      ".BR tern (8)\n"
	      "(started with\n"
	      ".BR \\-\\-control ),\n"
	      "sends COMMAND and its ARGS as one line, and prints the reply: readable by default (a table\n"
	      "for\n"
	      ".BR conns ,\n"
	      "key: value lines otherwise), or the raw JSON line with\n"
	      ".BR \\-\\-json .\n"
	      "Text from the reply is shown with control characters escaped.\n"
	      ".PP\n"
	      "The socket speaks one command line (at most 4096 bytes) in, one JSON object on one line out:\n"
	      "{\"ok\":true,...} or {\"ok\":false,\"error\":\"...\"}. Any client can use it, e.g.\n"
	      ".BR \"socat \\- UNIX\\-CONNECT:" TERN_CTL_DEFAULT_CONTROL_PATH "\" .\n"
	      "An unknown or malformed command never affects the proxy.\n"
	      ".SH OPTIONS\n"
	      "Options come before COMMAND; everything from COMMAND on is sent.\n",
	      out);
	for (const struct tern_cli_flag *flag = tern_ctl_option_docs(); flag->name != NULL; flag++) {
		char name[64];
		snprintf(name, sizeof(name), "--%s", flag->name);
		roff_option_tag(out, flag->short_name, name, flag->metavar);
		roff_text(out, flag->help);
		fputs(".\n", out);
		if (flag->default_text[0] != '\0') {
			fputs(".br\nDefault: ", out);
			roff_text(out, flag->default_text);
			fputs(".\n", out);
		}
	}
	fputs(".SH COMMANDS\n", out);
	for (const struct tern_control_command_doc *c = tern_control_command_docs(); c->name != NULL; c++) {
		fputs(".TP\n\\fB", out);
		roff_text(out, c->name);
		fputs("\\fR", out);
		if (c->args[0] != '\0') {
			fputc(' ', out);
			roff_args(out, c->args);
		}
		fputc('\n', out);
		roff_text(out, c->summary);
		fputs(".\n", out);
	}
	fputs(".SH EXIT STATUS\n"
	      ".TP\n"
	      ".B 0\n"
	      "The reply says \"ok\":true.\n"
	      ".TP\n"
	      ".B 1\n"
	      "The reply says \"ok\":false (the error is printed), is not a reply, or the socket could not\n"
	      "be reached within\n"
	      ".BR \\-\\-timeout .\n"
	      "So\n"
	      ".B ExecReload=tern ctl reload\n"
	      "fails when the reload failed.\n"
	      ".TP\n"
	      ".B 2\n"
	      "A bad command line.\n"
	      ".SH ENVIRONMENT\n"
	      ".TP\n"
	      ".B TERN_CONTROL\n"
	      "The control socket when\n"
	      ".B \\-\\-control\n"
	      "is not given (ignored when empty).\n"
	      ".SH FILES\n"
	      ".TP\n"
	      ".I " TERN_CTL_DEFAULT_CONTROL_PATH "\n"
	      "The control socket when neither\n"
	      ".B \\-\\-control\n"
	      "nor TERN_CONTROL says otherwise: where the systemd unit puts it.\n"
	      ".SH EXAMPLES\n"
	      ".nf\n"
	      "tern ctl stats\n"
	      "tern ctl \\-\\-json conns 10\n"
	      "tern ctl tickets all 2\n"
	      "tern ctl \\-\\-timeout 60s reload\n"
	      ".fi\n"
	      ".SH SEE ALSO\n"
	      ".BR tern (8)\n",
	      out);
}

/* Is the token (without trailing punctuation) one of flag's words? */
static bool is_flag_word(const struct tern_cli_flag *flag, const char *token, size_t len)
{
	if (flag == NULL || flag->type != TERN_CLI_WORDS)
		return false;
	for (const struct tern_cli_word *w = flag->words; w->word != NULL; w++) {
		if (strlen(w->word) == len && strncmp(w->word, token, len) == 0)
			return true;
	}
	return false;
}

/* Markdown: text with options (and, given flag, its words) in code spans
 * and characters that would turn into markup escaped; in a table cell,
 * '|' too. */
static void md_text(FILE *out, const char *text, const struct tern_cli_flag *flag, bool in_table)
{
	for (const char *p = text; *p != '\0';) {
		while (*p == '(')
			fputc(*p++, out);
		size_t len = strcspn(p, " ");
		/* Punctuation around stays outside a code span. */
		size_t code = len;
		while (code > 0 && strchr(",;:.)", p[code - 1]) != NULL)
			code--;
		if (is_option_word(p, len) || is_flag_word(flag, p, code)) {
			fprintf(out, "`%.*s`%.*s", (int)code, p, (int)(len - code), p + code);
		} else {
			for (size_t i = 0; i < len; i++) {
				if (p[i] == '*' || p[i] == '\\' || p[i] == '`' || p[i] == '<' || (in_table && p[i] == '|'))
					fputc('\\', out);
				fputc(p[i], out);
			}
		}
		p += len;
		while (*p == ' ')
			fputc(*p++, out);
	}
}

/* A default in a code span when it is a value one could type. */
static void md_default(FILE *out, const struct tern_cli_flag *flag, const char *dflt, bool in_table)
{
	bool is_value = flag->default_text == NULL || flag->apply_default;

	if (is_value) {
		fprintf(out, "`%s`", dflt);
		return;
	}
	md_text(out, dflt, NULL, in_table);
}

static void md_label(FILE *out, const struct tern_cli_flag *flag, bool in_table)
{
	char label[64];

	tern_cli_flag_label(flag, label, sizeof(label));
	fputc('`', out);
	for (const char *p = label; *p != '\0'; p++) {
		if (*p == '|' && in_table)
			fputc('\\', out);
		fputc(*p, out);
	}
	fputc('`', out);
}

static void options_md(FILE *out)
{
	fputs("<!-- Written by " GENERATED_BY " from proxy/cli_flags.c: edit that table, then run `" REGEN_COMMAND
	      "`. -->\n"
	      "# tern's options\n"
	      "\n"
	      "`tern [OPTIONS]` runs the proxy in the foreground. This page is written from the same table\n"
	      "that parses the command line, as are `tern --help` and the man page `tern(8)`; `tern ctl`\n"
	      "is `tern-ctl(8)`.\n"
	      "\n"
	      "Values:\n"
	      "\n"
	      "- `ADDR`: ",
	      out);
	md_text(out, TERN_CLI_VALUES_ADDR, NULL, false);
	fputs("\n- `DUR`: ", out);
	md_text(out, TERN_CLI_VALUES_DUR, NULL, false);
	fputs("\n- `SIZE`: ", out);
	md_text(out, TERN_CLI_VALUES_SIZE, NULL, false);
	fputs("\n\nA bad value exits with status 2 and one line naming the flag, the value and what was\n"
	      "expected: the \"Takes\" line of each option below.\n",
	      out);

	for (size_t i = 0; i < tern_cli_num_flags; i++) {
		const struct tern_cli_flag *flag = &tern_cli_flags[i];
		char help[1024], details[2048], dflt[256], expected[512];

		row_texts(flag, help, sizeof(help), details, sizeof(details), dflt, sizeof(dflt));
		fputs("\n## ", out);
		md_label(out, flag, false);
		fputs("\n\n", out);
		md_text(out, help, flag, false);
		fputs(".", out);
		if (details[0] != '\0') {
			fputc(' ', out);
			md_text(out, details, flag, false);
		}
		fputc('\n', out);
		if (flag->metavar != NULL) {
			tern_cli_flag_expected(flag, expected, sizeof(expected));
			fputs("\n- Takes ", out);
			md_text(out, expected, flag, false);
			fputs(".\n", out);
		}
		if (dflt[0] != '\0') {
			fputs(flag->metavar != NULL ? "- Default: " : "\n- Default: ", out);
			md_default(out, flag, dflt, false);
			fputs(".\n", out);
		}
	}
}

static void readme_flags(FILE *out)
{
	fputs("<!-- Written by " GENERATED_BY " from proxy/cli_flags.c: run `" REGEN_COMMAND
	      "`; docs/options.md has the details. -->\n"
	      "| flag | meaning | default |\n"
	      "|---|---|---|\n",
	      out);
	for (size_t i = 0; i < tern_cli_num_flags; i++) {
		const struct tern_cli_flag *flag = &tern_cli_flags[i];
		char help[1024], details[2048], dflt[256];

		row_texts(flag, help, sizeof(help), details, sizeof(details), dflt, sizeof(dflt));
		fputs("| ", out);
		md_label(out, flag, true);
		fputs(" | ", out);
		md_text(out, help, flag, true);
		fputs(" | ", out);
		if (dflt[0] != '\0')
			md_default(out, flag, dflt, true);
		fputs(" |\n", out);
	}
}

static const struct {
	const char *name;
	void (*write)(FILE *out);
} outputs[] = {
	{"man-tern", man_tern},
	{"man-ctl", man_ctl},
	{"options-md", options_md},
	{"readme-flags", readme_flags},
};

int main(int argc, char **argv)
{
	FILE *out = stdout;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: tern-docgen man-tern|man-ctl|options-md|readme-flags [OUT]\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
		if (strcmp(argv[1], outputs[i].name) != 0)
			continue;
		tern_config_init(&defaults);
		if (argc == 3 && (out = fopen(argv[2], "w")) == NULL) {
			perror(argv[2]);
			return 1;
		}
		outputs[i].write(out);
		if (ferror(out) || (out != stdout ? fclose(out) : fflush(out)) != 0) {
			fprintf(stderr, "tern-docgen: writing %s failed\n", argc == 3 ? argv[2] : "stdout");
			return 1;
		}
		return 0;
	}
	fprintf(stderr, "tern-docgen: unknown output '%s'\n", argv[1]);
	return 2;
}
