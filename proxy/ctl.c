/* `tern ctl`: one command to the control socket, one reply printed.
 *
 * The whole exchange (connect, send, read the reply line) runs on a
 * non-blocking socket under one deadline, --timeout, so a wedged or busy
 * tern never hangs a script. What the reply holds comes from another
 * process: it is parsed strictly (json_reader.c) and every piece of text is
 * shown with control characters escaped, so a reply cannot drive the
 * terminal. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli_flags.h"
#include "ctl.h"
#include "ctl_internal.h"
#include "json_reader.h"
#include "tern/json.h"
#include "tern/parse.h"

_Static_assert(TERN_CONTROL_LINE_MAX == 4096, "update 'command longer than 4096 bytes'");

/* Longest table cell; longer ones are cut and end in "...". */
#define CELL_MAX 256
/* --help's layout: where help starts after an option, after a command;
 * the width. */
#define CTL_OPTION_COLUMN 22
#define CTL_COMMAND_COLUMN 24
#define CTL_USAGE_WIDTH 88
/* The reply buffer starts here and doubles up to the writer's cap. */
#define REPLY_INITIAL_CAP 4096

__attribute__((format(printf, 3, 4)))
static int ctl_error(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && err_len > 0) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* tern ctl's own options: --help, tern-ctl(8) and the parser below read
 * this table; values are checked and worded as tern's own (cli_flags.h). */
enum { CTL_CONTROL, CTL_JSON, CTL_TIMEOUT };
static const struct tern_cli_flag ctl_flags[] = {
	[CTL_CONTROL] = {.name = "control", .metavar = "PATH", .type = TERN_CLI_CUSTOM,
			 .max = TERN_CLI_CONTROL_PATH_MAX, .expected = TERN_CLI_EXPECT_CONTROL,
			 .default_text = "$TERN_CONTROL, else " TERN_CTL_DEFAULT_CONTROL_PATH,
			 .help = "the control socket"},
	[CTL_JSON] = {.name = "json", .type = TERN_CLI_SWITCH, .default_text = "",
		      .help = "print the reply as the raw JSON line"},
	[CTL_TIMEOUT] = {.name = "timeout", .metavar = "DUR", .type = TERN_CLI_DURATION, .min = 1,
			 .max = TERN_MAX_DURATION_MS, .default_text = TERN_CTL_DEFAULT_TIMEOUT_TEXT,
			 .help = "longest wait for the whole exchange, e.g. 500ms or 10s"},
	{.name = "help", .short_name = 'h', .type = TERN_CLI_ACTION, .default_text = "",
	 .help = "print this help and exit"},
	{.name = NULL},
};

_Static_assert(TERN_CTL_DEFAULT_TIMEOUT_MS == 5000u, "update TERN_CTL_DEFAULT_TIMEOUT_TEXT");

const struct tern_cli_flag *tern_ctl_option_docs(void)
{
	return ctl_flags;
}

/* The option "--NAME" (name_len bytes of arg) that takes a value or is a
 * switch, or NULL: no prefixes, "--c" could be --control or a typo. */
static const struct tern_cli_flag *ctl_flag_find(const char *arg, size_t name_len)
{
	for (const struct tern_cli_flag *f = ctl_flags; f->name != NULL; f++) {
		if (f->type != TERN_CLI_ACTION && name_len == 2 + strlen(f->name) && strncmp(arg, "--", 2) == 0 &&
		    strncmp(arg + 2, f->name, name_len - 2) == 0)
			return f;
	}
	return NULL;
}

/* A socket path as tern --control takes it; name: "--control" or
 * "TERN_CONTROL", for the message. */
static int check_control_path(const char *name, const char *path, char *err, size_t err_len)
{
	const struct tern_cli_flag *flag = &ctl_flags[CTL_CONTROL];
	char shown[TERN_CLI_SHOWN_MAX + 4], expected[128];

	if (path[0] != '\0' && strlen(path) <= flag->max)
		return 0;
	tern_cli_show_value(path, shown, sizeof(shown));
	tern_cli_flag_expected(flag, expected, sizeof(expected));
	return ctl_error(err, err_len, "%s: invalid value '%s' (expected %s)", name, shown, expected);
}

/* Joins argv[first..argc-1] with single spaces into out->line. */
static int join_command(int argc, char **argv, int first, struct tern_ctl_options *out, char *err,
			size_t err_len)
{
	size_t used = 0;

	for (int i = first; i < argc; i++) {
		size_t len = strlen(argv[i]);
		for (size_t k = 0; k < len; k++) {
			/* A "\n" would end the line early and send the rest as a
			 * second command. */
			if (tern_ctl_is_control((unsigned char)argv[i][k]))
				return ctl_error(err, err_len, "command contains a control character");
		}
		size_t sep = i > first ? 1 : 0;
		if (len + sep > TERN_CONTROL_LINE_MAX - used)
			return ctl_error(err, err_len, "command longer than 4096 bytes");
		if (sep)
			out->line[used++] = ' ';
		memcpy(out->line + used, argv[i], len);
		used += len;
	}
	out->line[used] = '\0';
	out->line_len = used;
	out->command = argv[first];
	return 0;
}

int tern_ctl_parse_args(int argc, char **argv, const char *env_control, struct tern_ctl_options *out, char *err,
			size_t err_len)
{
	char shown[TERN_CLI_SHOWN_MAX + 4];
	int i;

	memset(out, 0, sizeof(*out));
	out->control_path = TERN_CTL_DEFAULT_CONTROL_PATH;
	out->timeout_ms = TERN_CTL_DEFAULT_TIMEOUT_MS;
	out->timeout_text = TERN_CTL_DEFAULT_TIMEOUT_TEXT;
	if (env_control != NULL && env_control[0] != '\0') {
		if (check_control_path("TERN_CONTROL", env_control, err, err_len) < 0)
			return -EINVAL;
		out->control_path = env_control;
	}

	/* Options end at the first word that is not one (the command), or
	 * after "--": ARGS are never taken for options. */
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0')
			break;
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
			return TERN_CTL_HELP;

		const char *eq = strchr(arg, '=');
		size_t name_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		const char *value = eq != NULL ? eq + 1 : NULL;
		const struct tern_cli_flag *flag = ctl_flag_find(arg, name_len);
		if (flag == NULL) {
			char name[TERN_CLI_SHOWN_MAX + 4];
			size_t n = name_len < sizeof(name) - 1 ? name_len : sizeof(name) - 1;
			memcpy(name, arg, n);
			name[n] = '\0';
			tern_cli_show_value(name, shown, sizeof(shown));
			return ctl_error(err, err_len, "unknown option '%s' (see tern ctl --help)", shown);
		}
		if (flag == &ctl_flags[CTL_JSON]) {
			if (value != NULL)
				return tern_cli_invalid_value(flag, value, "no value", err, err_len);
			out->json = true;
			continue;
		}
		if (value == NULL) {
			if (i + 1 == argc) {
				char expected[256];
				tern_cli_flag_expected(flag, expected, sizeof(expected));
				return ctl_error(err, err_len, "--%s: missing value (expected %s)", flag->name, expected);
			}
			value = argv[++i];
		}
		if (flag == &ctl_flags[CTL_CONTROL]) {
			if (check_control_path("--control", value, err, err_len) < 0)
				return -EINVAL;
			out->control_path = value;
			continue;
		}
		int rc = tern_cli_flag_number(flag, value, &out->timeout_ms, err, err_len);
		if (rc < 0)
			return rc;
		out->timeout_text = value;
	}
	if (i >= argc)
		return ctl_error(err, err_len, "missing COMMAND (see tern ctl --help)");
	int rc = join_command(argc, argv, i, out, err, err_len);
	if (rc < 0)
		return rc;
	return TERN_CTL_SEND;
}

/* ---- The exchange ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits for events on fd until deadline: 1 ready, 0 timed out, -errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return 0;
		uint64_t left = deadline - now;
		struct pollfd pfd = {.fd = fd, .events = events};
		int n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

struct exchange {
	const struct tern_ctl_options *opts;
	int fd;
	uint64_t deadline;
	char *reply;
	size_t reply_len, reply_cap;
	char path_shown[TERN_CLI_SHOWN_MAX + 4];
};

static int connect_socket(struct exchange *x, char *err, size_t err_len)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	const char *path = x->opts->control_path;
	int rc;

	memcpy(sun.sun_path, path, strlen(path) + 1); /* length checked when parsed */
	x->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (x->fd < 0)
		return ctl_error(err, err_len, "cannot create a socket: %s", strerror(errno));
	for (;;) {
		if (connect(x->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			/* A UNIX socket with a full backlog: tern is busy; try
			 * again until the deadline. */
			if (now_ms() >= x->deadline)
				break;
			poll(NULL, 0, 10);
			continue;
		}
		if (errno != EINPROGRESS)
			return ctl_error(err, err_len, "cannot connect to %s: %s", x->path_shown, strerror(errno));
		rc = wait_fd(x->fd, POLLOUT, x->deadline);
		if (rc < 0)
			return ctl_error(err, err_len, "cannot connect to %s: %s", x->path_shown, strerror(-rc));
		if (rc == 0)
			break;
		int so_error = 0;
		socklen_t so_len = sizeof(so_error);
		if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len) < 0)
			so_error = errno;
		if (so_error != 0)
			return ctl_error(err, err_len, "cannot connect to %s: %s", x->path_shown, strerror(so_error));
		return 0;
	}
	return ctl_error(err, err_len, "cannot connect to %s: no answer within %s", x->path_shown,
			 x->opts->timeout_text);
}

static int send_line(struct exchange *x, char *err, size_t err_len)
{
	char line[TERN_CONTROL_LINE_MAX + 1];
	size_t len = x->opts->line_len, off = 0;

	memcpy(line, x->opts->line, len);
	line[len++] = '\n';
	while (off < len) {
		/* MSG_NOSIGNAL: a tern that went away is an error to report,
		 * not a SIGPIPE to die of. */
		ssize_t n = send(x->fd, line + off, len - off, MSG_NOSIGNAL);
		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return ctl_error(err, err_len, "%s: cannot send the command: %s", x->path_shown,
					 strerror(errno));
		int rc = wait_fd(x->fd, POLLOUT, x->deadline);
		if (rc < 0)
			return ctl_error(err, err_len, "%s: cannot send the command: %s", x->path_shown,
					 strerror(-rc));
		if (rc == 0)
			return ctl_error(err, err_len, "%s: no reply within %s", x->path_shown, x->opts->timeout_text);
	}
	return 0;
}

/* Reads until the first "\n"; x->reply holds the line without it. */
static int read_reply(struct exchange *x, char *err, size_t err_len)
{
	for (;;) {
		if (x->reply_len == x->reply_cap) {
			/* The writer never makes a line longer than its cap. */
			if (x->reply_cap >= TERN_JSON_MAX_LEN)
				return ctl_error(err, err_len, "%s: reply longer than %u bytes", x->path_shown,
						 TERN_JSON_MAX_LEN);
			size_t cap = x->reply_cap != 0 ? x->reply_cap * 2 : REPLY_INITIAL_CAP;
			char *grown = realloc(x->reply, cap);
			if (grown == NULL)
				return ctl_error(err, err_len, "%s: reading the reply: %s", x->path_shown,
						 strerror(ENOMEM));
			x->reply = grown;
			x->reply_cap = cap;
		}
		ssize_t n = recv(x->fd, x->reply + x->reply_len, x->reply_cap - x->reply_len, 0);
		if (n > 0) {
			char *nl = memchr(x->reply + x->reply_len, '\n', (size_t)n);
			x->reply_len += (size_t)n;
			if (nl != NULL) {
				x->reply_len = (size_t)(nl - x->reply);
				return 0;
			}
			continue;
		}
		if (n == 0)
			return ctl_error(err, err_len, "%s: connection closed before a reply", x->path_shown);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return ctl_error(err, err_len, "%s: cannot read the reply: %s", x->path_shown,
					 strerror(errno));
		int rc = wait_fd(x->fd, POLLIN, x->deadline);
		if (rc < 0)
			return ctl_error(err, err_len, "%s: cannot read the reply: %s", x->path_shown,
					 strerror(-rc));
		if (rc == 0)
			return ctl_error(err, err_len, "%s: no reply within %s", x->path_shown, x->opts->timeout_text);
	}
}

/* Connects, sends opts->line and reads one reply line into *x. */
static int exchange(struct exchange *x, char *err, size_t err_len)
{
	int rc;

	x->deadline = now_ms() + x->opts->timeout_ms;
	tern_cli_show_value(x->opts->control_path, x->path_shown, sizeof(x->path_shown));
	rc = connect_socket(x, err, err_len);
	if (rc == 0)
		rc = send_line(x, err, err_len);
	if (rc == 0)
		rc = read_reply(x, err, err_len);
	return rc;
}

int tern_ctl_run(int argc, char **argv, FILE *out, FILE *err)
{
	struct tern_ctl_options opts;
	struct exchange x = {.opts = &opts, .fd = -1};
	char msg[TERN_CTL_ERR_MAX];
	int status;

	int rc = tern_ctl_parse_args(argc, argv, getenv("TERN_CONTROL"), &opts, msg, sizeof(msg));
	if (rc < 0) {
		fprintf(err, "tern ctl: %s\n", msg);
		return TERN_CTL_EXIT_USAGE;
	}
	if (rc == TERN_CTL_HELP) {
		fputs(tern_ctl_usage(), out);
		return TERN_CTL_EXIT_OK;
	}
	if (exchange(&x, msg, sizeof(msg)) < 0) {
		fprintf(err, "tern ctl: %s\n", msg);
		status = TERN_CTL_EXIT_FAILED;
	} else {
		status = tern_ctl_print_reply(opts.command, opts.json, x.reply, x.reply_len, out, err);
	}
	if (x.fd >= 0)
		close(x.fd);
	free(x.reply);
	if (fflush(out) != 0 && status == TERN_CTL_EXIT_OK)
		status = TERN_CTL_EXIT_FAILED; /* a full disk or a closed pipe */
	return status;
}

int tern_ctl_main(int argc, char **argv)
{
	return tern_ctl_run(argc, argv, stdout, stderr);
}

void tern_ctl_print_usage(FILE *out)
{
	fputs("Usage: tern ctl [--control PATH] [--json] [--timeout DUR] COMMAND [ARGS...]\n"
	      "\n"
	      "Sends one command to the control socket of a running tern (tern --control PATH)\n"
	      "and prints the reply: readable by default, the raw JSON line with --json.\n"
	      "Exit status: 0 when the reply says ok, 1 when it says ok:false or the socket\n"
	      "cannot be reached, 2 for bad usage.\n"
	      "\n"
	      "Options (before COMMAND):\n",
	      out);
	for (const struct tern_cli_flag *f = ctl_flags; f->name != NULL; f++)
		tern_cli_print_flag_entry(out, f, NULL, CTL_OPTION_COLUMN, CTL_USAGE_WIDTH);
	fputs("\nCommands:\n", out);
	for (const struct tern_control_command_doc *c = tern_control_command_docs(); c->name != NULL; c++) {
		char label[128];
		snprintf(label, sizeof(label), "  %s%s%s", c->name, c->args[0] != '\0' ? " " : "", c->args);
		tern_cli_print_entry(out, label, c->summary, NULL, CTL_COMMAND_COLUMN, CTL_USAGE_WIDTH);
	}
}

const char *tern_ctl_usage(void)
{
	static char *usage;

	return tern_cli_text_once(&usage, tern_ctl_print_usage,
				  "Usage: tern ctl [--control PATH] [--json] [--timeout DUR] COMMAND [ARGS...]\n");
}
