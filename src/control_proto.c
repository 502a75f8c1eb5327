/* The control protocol's command parser (SPEC section 3). A function of its
 * input alone: the control thread owns the socket, this file owns the
 * words. Digits are matched as '0'..'9' rather than with isdigit(), which
 * follows the locale. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tern/control_proto.h"
#include "tern/parse.h"
#include "tern/request.h"

/* The most tokens any command takes, plus one to see that there are too
 * many without counting the rest. */
#define MAX_TOKENS 4

/* Longest command name or ID quoted back in a message: enough for any
 * real one, short enough that a 4 KiB line does not become a 4 KiB
 * error reply. */
#define SHOWN_NAME_MAX 64
#define SHOWN_ID_MAX 32

struct token {
	const char *text;
	size_t len;
};

struct command_spec {
	const char *name;
	enum tern_command_kind kind;
	unsigned min_args, max_args;
	const char *usage_error; /* fewer than min_args; NULL when min_args is 0 */
};

/* Every command, once: X(name, kind, min_args, max_args, usage_error,
 * args, summary). args and summary are what `tern ctl --help` and
 * tern-ctl(8) show (tern_control_command_docs). `help` lists the commands
 * in this order. A command comes with its feature: until then it is
 * unknown, never accepted and ignored. */
#define TERN_CONTROL_COMMANDS(X)                                                                          \
	X("help", TERN_CMD_HELP, 0, 0, NULL, "", "list the commands")                                      \
	X("stats", TERN_CMD_STATS, 0, 0, NULL, "", "counters of the whole process")                       \
	X("conns", TERN_CMD_CONNS, 0, 1, NULL, "[LIMIT]",                                                  \
	  "open connections, at most LIMIT (1 to 100000) [1000]")                                          \
	X("tickets", TERN_CMD_TICKETS, 1, 2, "tickets: expected ID|all [N]", "ID|all [N]",                \
	  "send N (1 to 16) new TLS 1.3 session tickets to connection ID, or to every TLS 1.3 "           \
	  "connection [1]")                                                                                \
	X("num-tickets", TERN_CMD_NUM_TICKETS, 2, 2, "num-tickets: expected ID N", "ID N",                \
	  "set how many tickets (0 to 16) connection ID gets after a later post-handshake "                \
	  "authentication")                                                                                \
	X("rotate-ticket-keys", TERN_CMD_ROTATE_TICKET_KEYS, 0, 0, NULL, "",                               \
	  "re-read --ticket-keys, or make a new in-memory encryption key")                                 \
	X("verify-client", TERN_CMD_VERIFY_CLIENT, 1, 1, "verify-client: expected ID", "ID",              \
	  "ask connection ID's client for its certificate (TLS 1.3)")                                      \
	X("reload", TERN_CMD_RELOAD, 0, 0, NULL, "", "re-read certificates, keys and files, as SIGHUP")   \
	X("info", TERN_CMD_INFO, 0, 0, NULL, "", "version, uptime, I/O engine (uring or epoll) and workers") \
	X("keys", TERN_CMD_KEYS, 0, 0, NULL, "",                                                           \
	  "the ticket keys in use: fingerprint, role, since, age (never the keys themselves), and each "  \
	  "worker's key generation")             \
	X("close", TERN_CMD_CLOSE, 1, 1, "close: expected ID", "ID",                                       \
	  "end connection ID cleanly: close_notify to the client, then both sides closed")                \
	X("certs", TERN_CMD_CERTS, 0, 0, NULL, "",                                                         \
	  "the certificates served: names, key type and bits, expiry, OCSP staple, which is the default") \
	X("backends", TERN_CMD_BACKENDS, 0, 0, NULL, "",                                                   \
	  "each backend: its addresses (what a name resolves to now), up or down, connects, failures, "    \
	  "open connections")

#define COMMAND_SPEC(name, kind, min_args, max_args, usage_error, args, summary) \
	{name, kind, min_args, max_args, usage_error},
#define COMMAND_NAME(name, kind, min_args, max_args, usage_error, args, summary) name,
#define COMMAND_DOC(name, kind, min_args, max_args, usage_error, args, summary) {name, args, summary},

static const struct command_spec command_specs[] = {TERN_CONTROL_COMMANDS(COMMAND_SPEC)};

#define NUM_COMMANDS (sizeof(command_specs) / sizeof(command_specs[0]))

static const char *const command_names[NUM_COMMANDS + 1] = {TERN_CONTROL_COMMANDS(COMMAND_NAME) NULL};

static const struct tern_control_command_doc command_docs[NUM_COMMANDS + 1] = {
	TERN_CONTROL_COMMANDS(COMMAND_DOC){NULL, NULL, NULL},
};

/* The numbers in the messages below are written out; these keep them
 * honest when the header changes. */
_Static_assert(TERN_CONTROL_LINE_MAX == 4096, "update 'command longer than 4096 bytes'");
_Static_assert(TERN_CONTROL_CONNS_MAX == 100000u && TERN_CONTROL_CONNS_DEFAULT == 1000u,
	       "update the conns message and summary");
_Static_assert(TERN_CONTROL_TICKETS_MAX == 16u && TERN_CONTROL_TICKETS_DEFAULT == 1u,
	       "update the tickets message and summary");
_Static_assert(TERN_CONTROL_NUM_TICKETS_MAX == 16u, "update the num-tickets message and summary");

const struct tern_control_command_doc *tern_control_command_docs(void)
{
	return command_docs;
}

const char *const *tern_control_command_names(void)
{
	return command_names;
}

__attribute__((format(printf, 3, 4)))
static int parse_error(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && err_len > 0) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Copies a token for quoting in a message, cut at max bytes with "..."
 * after it. Control characters never get here: the line was checked. */
static void show_token(const struct token *t, size_t max, char *out, size_t out_len)
{
	size_t n = t->len;
	bool cut = false;

	if (n > max) {
		n = max;
		cut = true;
	}
	if (n + 4 > out_len) /* callers size out for max + "..." + NUL */
		n = out_len > 4 ? out_len - 4 : 0;
	memcpy(out, t->text, n);
	if (cut) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

static bool token_is(const struct token *t, const char *word)
{
	size_t word_len = strlen(word);

	return t->len == word_len && memcmp(t->text, word, word_len) == 0;
}

/* A decimal uint64 of digits only. Returns false for an empty token, any
 * other byte, or a value that does not fit (never wraps). */
static bool parse_count(const struct token *t, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t value;

	if (!tern_parse_u64(t->text, t->len, &value) || value < min || value > max)
		return false;
	*out = (uint32_t)value;
	return true;
}

/* "all" where allowed, else a decimal ID other than TERN_CONN_ID_ALL,
 * which would otherwise let "18446744073709551615" mean "all". */
static int parse_conn_id(const struct token *t, bool allow_all, uint64_t *out, char *err, size_t err_len)
{
	char shown[SHOWN_ID_MAX + 4];

	if (allow_all && token_is(t, "all")) {
		*out = TERN_CONN_ID_ALL;
		return 0;
	}
	if (tern_parse_u64(t->text, t->len, out) && *out != TERN_CONN_ID_ALL)
		return 0;
	show_token(t, SHOWN_ID_MAX, shown, sizeof(shown));
	return parse_error(err, err_len, "invalid connection ID '%s'", shown);
}

/* Splits line into at most MAX_TOKENS tokens; returns how many there
 * were, or MAX_TOKENS when there were more. */
static size_t tokenize(const char *line, size_t len, struct token *tokens)
{
	size_t num = 0;
	size_t i = 0;

	while (i < len && num < MAX_TOKENS) {
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len)
			break;
		size_t start = i;
		while (i < len && line[i] != ' ' && line[i] != '\t')
			i++;
		tokens[num++] = (struct token){.text = line + start, .len = i - start};
	}
	return num;
}

static int parse_args(const struct command_spec *spec, const struct token *args, size_t num_args,
		      struct tern_command *out, char *err, size_t err_len)
{
	int rc;

	switch (spec->kind) {
	case TERN_CMD_HELP:
	case TERN_CMD_STATS:
	case TERN_CMD_ROTATE_TICKET_KEYS:
	case TERN_CMD_RELOAD:
	case TERN_CMD_INFO:
	case TERN_CMD_KEYS:
	case TERN_CMD_CERTS:
	case TERN_CMD_BACKENDS:
		return 0;
	case TERN_CMD_VERIFY_CLIENT:
	case TERN_CMD_CLOSE:
		return parse_conn_id(&args[0], false, &out->conn_id, err, err_len);
	case TERN_CMD_CONNS:
		out->limit = TERN_CONTROL_CONNS_DEFAULT;
		if (num_args == 1 && !parse_count(&args[0], 1, TERN_CONTROL_CONNS_MAX, &out->limit))
			return parse_error(err, err_len, "conns: LIMIT must be 1..100000");
		return 0;
	case TERN_CMD_TICKETS:
		rc = parse_conn_id(&args[0], true, &out->conn_id, err, err_len);
		if (rc < 0)
			return rc;
		out->count = TERN_CONTROL_TICKETS_DEFAULT;
		if (num_args == 2 && !parse_count(&args[1], 1, TERN_CONTROL_TICKETS_MAX, &out->count))
			return parse_error(err, err_len, "tickets: N must be 1..16");
		return 0;
	case TERN_CMD_NUM_TICKETS:
		/* One live connection only: SPEC section 3 has no "all" here. */
		rc = parse_conn_id(&args[0], false, &out->conn_id, err, err_len);
		if (rc < 0)
			return rc;
		if (!parse_count(&args[1], 0, TERN_CONTROL_NUM_TICKETS_MAX, &out->count))
			return parse_error(err, err_len, "num-tickets: N must be 0..16");
		return 0;
	case TERN_CMD_NONE:
		break;
	}
	return parse_error(err, err_len, "command '%s' not handled (internal error)", spec->name);
}

int tern_control_parse(const char *line, size_t len, struct tern_command *out, char *err, size_t err_len)
{
	struct token tokens[MAX_TOKENS];
	struct tern_command cmd = {.kind = TERN_CMD_NONE};
	char shown[SHOWN_NAME_MAX + 4];
	int rc;

	*out = cmd;
	if (err != NULL && err_len > 0)
		err[0] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > TERN_CONTROL_LINE_MAX)
		return parse_error(err, err_len, "command longer than 4096 bytes");
	/* Refused rather than skipped: a NUL or an escape sequence in a
	 * command is a client bug or an attack, and would end up quoted
	 * back in an error and in the log. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return parse_error(err, err_len, "command contains a control character");
	}

	size_t num_tokens = tokenize(line, len, tokens);
	if (num_tokens == 0)
		return parse_error(err, err_len, "empty command");

	const struct command_spec *spec = NULL;
	for (size_t i = 0; i < NUM_COMMANDS; i++) {
		if (token_is(&tokens[0], command_specs[i].name)) {
			spec = &command_specs[i];
			break;
		}
	}
	if (spec == NULL) {
		show_token(&tokens[0], SHOWN_NAME_MAX, shown, sizeof(shown));
		return parse_error(err, err_len, "unknown command '%s'", shown);
	}

	size_t num_args = num_tokens - 1;
	if (num_args > spec->max_args)
		return parse_error(err, err_len, "too many arguments for '%s'", spec->name);
	if (num_args < spec->min_args)
		return parse_error(err, err_len, "%s", spec->usage_error);

	cmd.kind = spec->kind;
	rc = parse_args(spec, &tokens[1], num_args, &cmd, err, err_len);
	if (rc < 0)
		return rc;
	*out = cmd;
	return 0;
}
