/* Unit tests for proxy/ctl.c: the argument parser's exact messages, the
 * pretty printer on tern's replies and on malformed ones (printed raw,
 * never a crash), and whole runs against a fake tern on a UNIX socket in a
 * temporary directory: a reply, a reply in pieces, silence (--timeout), a
 * hang-up, and no socket at all. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "ctl.h"

static struct tern_ctl_options opts;
static char err[TERN_CTL_ERR_MAX];

static int parse_env(const char *env, int argc, char **argv)
{
	memset(err, 0, sizeof(err));
	return tern_ctl_parse_args(argc, argv, env, &opts, err, sizeof(err));
}

#define ARGV(...) (char *[]){"ctl", __VA_ARGS__, NULL}
#define ARGC(...) ((int)(sizeof((char *[]){"ctl", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(...) parse_env(NULL, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

#define EXPECT_ERR(want, ...)                              \
	do {                                               \
		CHECK_EQ_INT(PARSE(__VA_ARGS__), -EINVAL); \
		CHECK_EQ_STR(err, (want));                 \
	} while (0)

static void test_args(void)
{
	CHECK_EQ_INT(PARSE("stats"), TERN_CTL_SEND);
	CHECK_EQ_STR(opts.control_path, "/run/tern/control.sock");
	CHECK(!opts.json);
	CHECK_EQ_UINT(opts.timeout_ms, 5000);
	CHECK_EQ_STR(opts.timeout_text, "5s");
	CHECK_EQ_STR(opts.command, "stats");
	CHECK_EQ_STR(opts.line, "stats");
	CHECK_EQ_UINT(opts.line_len, 5);

	CHECK_EQ_INT(PARSE("--control", "/tmp/t.sock", "--json", "--timeout", "250ms", "tickets", "all", "3"),
		     TERN_CTL_SEND);
	CHECK_EQ_STR(opts.control_path, "/tmp/t.sock");
	CHECK(opts.json);
	CHECK_EQ_UINT(opts.timeout_ms, 250);
	CHECK_EQ_STR(opts.timeout_text, "250ms");
	CHECK_EQ_STR(opts.command, "tickets");
	CHECK_EQ_STR(opts.line, "tickets all 3");

	CHECK_EQ_INT(PARSE("--control=/a", "--timeout=2m", "conns"), TERN_CTL_SEND);
	CHECK_EQ_STR(opts.control_path, "/a");
	CHECK_EQ_UINT(opts.timeout_ms, 120000);
	/* The last one counts. */
	CHECK_EQ_INT(PARSE("--control", "/a", "--control", "/b", "help"), TERN_CTL_SEND);
	CHECK_EQ_STR(opts.control_path, "/b");

	/* The environment, and the flag over it; an empty one is unset. */
	CHECK_EQ_INT(parse_env("/env.sock", ARGC("stats"), ARGV("stats")), TERN_CTL_SEND);
	CHECK_EQ_STR(opts.control_path, "/env.sock");
	CHECK_EQ_INT(parse_env("/env.sock", ARGC("--control", "/f", "stats"), ARGV("--control", "/f", "stats")),
		     TERN_CTL_SEND);
	CHECK_EQ_STR(opts.control_path, "/f");
	CHECK_EQ_INT(parse_env("", ARGC("stats"), ARGV("stats")), TERN_CTL_SEND);
	CHECK_EQ_STR(opts.control_path, "/run/tern/control.sock");

	/* Options end at the command and after "--": ARGS pass as typed. */
	CHECK_EQ_INT(PARSE("tickets", "--json"), TERN_CTL_SEND);
	CHECK(!opts.json);
	CHECK_EQ_STR(opts.line, "tickets --json");
	CHECK_EQ_INT(PARSE("--", "--weird", "x"), TERN_CTL_SEND);
	CHECK_EQ_STR(opts.command, "--weird");
	CHECK_EQ_STR(opts.line, "--weird x");
	CHECK_EQ_INT(PARSE("-", "x"), TERN_CTL_SEND);
	CHECK_EQ_STR(opts.line, "- x");
	/* Empty arguments are kept: the server judges "tickets ". */
	CHECK_EQ_INT(PARSE("tickets", ""), TERN_CTL_SEND);
	CHECK_EQ_STR(opts.line, "tickets ");

	CHECK_EQ_INT(PARSE("--help"), TERN_CTL_HELP);
	CHECK_EQ_INT(PARSE("-h", "--frob"), TERN_CTL_HELP);
	CHECK_EQ_INT(PARSE("--json", "--help", "stats"), TERN_CTL_HELP);
}

static void test_arg_errors(void)
{
	char *none[] = {"ctl", NULL};

	CHECK_EQ_INT(parse_env(NULL, 1, none), -EINVAL);
	CHECK_EQ_STR(err, "missing COMMAND (see tern ctl --help)");
	EXPECT_ERR("missing COMMAND (see tern ctl --help)", "--json");
	EXPECT_ERR("missing COMMAND (see tern ctl --help)", "--");
	EXPECT_ERR("unknown option '--frob' (see tern ctl --help)", "--frob", "stats");
	EXPECT_ERR("unknown option '--frob' (see tern ctl --help)", "--frob=1", "stats");
	EXPECT_ERR("unknown option '-j' (see tern ctl --help)", "-j", "stats");
	/* No prefixes: "--c" could be --control or a typo. */
	EXPECT_ERR("unknown option '--c' (see tern ctl --help)", "--c", "/x", "stats");
	EXPECT_ERR("unknown option '--\\x1b' (see tern ctl --help)", "--\x1b", "stats");

	EXPECT_ERR("--control: missing value (expected a non-empty path of at most 107 bytes for the UNIX control "
		   "socket)",
		   "--control");
	EXPECT_ERR("--timeout: missing value (expected a duration with a unit such as 250ms, 30s, 5m or 2h)",
		   "--timeout");
	EXPECT_ERR("--control: invalid value '' (expected a non-empty path of at most 107 bytes for the UNIX "
		   "control socket)",
		   "--control", "", "stats");
	EXPECT_ERR("--control: invalid value '' (expected a non-empty path of at most 107 bytes for the UNIX "
		   "control socket)",
		   "--control=", "stats");
	char long_path[120], want[TERN_CTL_ERR_MAX];
	memset(long_path, 'p', 108);
	long_path[108] = '\0';
	snprintf(want, sizeof(want),
		 "--control: invalid value '%s' (expected a non-empty path of at most 107 bytes for the UNIX "
		 "control socket)",
		 long_path);
	EXPECT_ERR(want, "--control", long_path, "stats");
	long_path[107] = '\0';
	CHECK_EQ_INT(PARSE("--control", long_path, "stats"), TERN_CTL_SEND);
	long_path[107] = 'p';
	snprintf(want, sizeof(want),
		 "TERN_CONTROL: invalid value '%s' (expected a non-empty path of at most 107 bytes for the UNIX "
		 "control socket)",
		 long_path);
	CHECK_EQ_INT(parse_env(long_path, ARGC("stats"), ARGV("stats")), -EINVAL);
	CHECK_EQ_STR(err, want);

	EXPECT_ERR("--timeout: invalid value '5' (expected a duration with a unit such as 250ms, 30s, 5m or 2h)",
		   "--timeout", "5", "stats");
	EXPECT_ERR("--timeout: invalid value 'soon' (expected a duration with a unit such as 250ms, 30s, 5m or "
		   "2h)",
		   "--timeout=soon", "stats");
	EXPECT_ERR("--timeout: invalid value '0s' (expected a duration from 1ms to 720h)", "--timeout", "0s",
		   "stats");
	EXPECT_ERR("--timeout: invalid value '721h' (expected a duration from 1ms to 720h)", "--timeout", "721h",
		   "stats");
	EXPECT_ERR("--json: invalid value '1' (expected no value)", "--json=1", "stats");

	/* A newline would send a second command. */
	EXPECT_ERR("command contains a control character", "stats\nreload");
	EXPECT_ERR("command contains a control character", "tickets", "all\r");
	EXPECT_ERR("command contains a control character", "tickets", "\t1");

	static char big[TERN_CONTROL_LINE_MAX + 2];
	memset(big, 'a', TERN_CONTROL_LINE_MAX);
	big[TERN_CONTROL_LINE_MAX] = '\0';
	CHECK_EQ_INT(PARSE(big), TERN_CTL_SEND);
	CHECK_EQ_UINT(opts.line_len, TERN_CONTROL_LINE_MAX);
	big[TERN_CONTROL_LINE_MAX - 1] = '\0';
	CHECK_EQ_INT(PARSE(big, "b"), -EINVAL); /* 4095 + " b" */
	CHECK_EQ_STR(err, "command longer than 4096 bytes");
	big[TERN_CONTROL_LINE_MAX - 2] = '\0';
	CHECK_EQ_INT(PARSE(big, "b"), TERN_CTL_SEND); /* 4094 + " b" */
	CHECK_EQ_UINT(opts.line_len, TERN_CONTROL_LINE_MAX);
}

/* Runs the printer on reply; out and errs get what was printed. */
static char out_text[8192], err_text[8192];

static int print_reply(const char *command, bool json, const char *reply, size_t len)
{
	char *out_buf = NULL, *err_buf = NULL;
	size_t out_len = 0, err_len = 0;
	FILE *out = open_memstream(&out_buf, &out_len);
	FILE *errs = open_memstream(&err_buf, &err_len);
	int status = -1;

	if (CHECK(out != NULL && errs != NULL))
		status = tern_ctl_print_reply(command, json, reply, len, out, errs);
	if (out != NULL)
		fclose(out);
	if (errs != NULL)
		fclose(errs);
	snprintf(out_text, sizeof(out_text), "%s", out_buf != NULL ? out_buf : "");
	snprintf(err_text, sizeof(err_text), "%s", err_buf != NULL ? err_buf : "");
	free(out_buf);
	free(err_buf);
	return status;
}

#define EXPECT_PRINT(command, json, reply, want_status, want_out, want_err)                  \
	do {                                                                                 \
		CHECK_EQ_INT(print_reply((command), (json), (reply), strlen(reply)), (want_status)); \
		CHECK_EQ_STR(out_text, (want_out));                                          \
		CHECK_EQ_STR(err_text, (want_err));                                          \
	} while (0)

static void test_print(void)
{
	EXPECT_PRINT("stats", false,
		     "{\"ok\":true,\"conns_active\":2,\"conns_total\":10,\"tickets_sent\":4,\"workers\":2}", 0,
		     "conns_active: 2\nconns_total: 10\ntickets_sent: 4\nworkers: 2\n", "");
	EXPECT_PRINT("stats", true, "{\"ok\":true,\"workers\":2}", 0, "{\"ok\":true,\"workers\":2}\n", "");
	EXPECT_PRINT("help", false,
		     "{\"ok\":true,\"commands\":[\"help\",\"stats\",\"conns\",\"tickets\",\"num-tickets\","
		     "\"rotate-ticket-keys\"]}",
		     0, "commands: help, stats, conns, tickets, num-tickets, rotate-ticket-keys\n", "");
	EXPECT_PRINT("tickets", false, "{\"ok\":true,\"queued\":3}", 0, "queued: 3\n", "");
	EXPECT_PRINT("num-tickets", false, "{\"ok\":true}", 0, "ok\n", "");
	EXPECT_PRINT("rotate-ticket-keys", false, "{\"ok\":true,\"keys\":3}", 0, "keys: 3\n", "");
	EXPECT_PRINT("info", false,
		     "{\"ok\":true,\"version\":\"0.1.0\",\"uptime_s\":12,\"io\":\"epoll\",\"workers\":2}", 0,
		     "version: 0.1.0\nuptime_s: 12\nio: epoll\nworkers: 2\n", "");
	/* Other shapes a later tern may send: nested values as JSON, empty
	 * lists as "-", null as "-", booleans as words. */
	EXPECT_PRINT("x", false,
		     "{\"ok\":true,\"a\":{\"b\":[1,{\"c\":null}]},\"e\":[],\"n\":null,\"t\":true,\"f\":false,"
		     "\"s\":\"\"}",
		     0, "a: {\"b\":[1,{\"c\":null}]}\ne: []\nn: null\nt: true\nf: false\ns: \n", "");

	/* ok:false: the message on stderr, exit 1; raw with --json. */
	EXPECT_PRINT("foo", false, "{\"ok\":false,\"error\":\"unknown command 'foo'\"}", 1, "",
		     "error: unknown command 'foo'\n");
	EXPECT_PRINT("foo", true, "{\"ok\":false,\"error\":\"unknown command 'foo'\"}", 1,
		     "{\"ok\":false,\"error\":\"unknown command 'foo'\"}\n", "");
	EXPECT_PRINT("foo", false, "{\"ok\":false}", 1, "", "error: (no message)\n");
	/* Control characters from the socket never reach the terminal raw. */
	EXPECT_PRINT("foo", false, "{\"ok\":false,\"error\":\"bad \\u001b[31m\\n\\u007f\"}", 1, "",
		     "error: bad \\x1b[31m\\x0a\\x7f\n");
	EXPECT_PRINT("stats", false, "{\"ok\":true,\"k\\u0000\\u0007\":\"v\\u0000\"}", 0, "k\\x00\\x07: v\\x00\n",
		     "");
}

static void test_print_conns(void)
{
	EXPECT_PRINT("conns", false,
		     "{\"ok\":true,\"conns\":[{\"id\":281474976710657,\"worker\":1,\"peer\":\"127.0.0.1:40000\","
		     "\"sni\":\"example.com\",\"alpn\":null,\"version\":\"TLSv1.3\",\"cipher\":\"x\","
		     "\"resumed\":false,\"age_ms\":1500,\"bytes_in\":517,\"bytes_out\":4096,\"num_tickets\":2,"
		     "\"tickets_sent\":3,\"tickets_pending\":0,\"client_cert\":null},"
		     "{\"id\":2,\"worker\":0,\"peer\":\"[::1]:5\",\"sni\":null,\"version\":\"TLSv1.2\","
		     "\"age_ms\":7,\"bytes_in\":0,\"bytes_out\":0,\"num_tickets\":0,\"tickets_sent\":0}]}",
		     0,
		     "             id  worker  peer             sni          version  age_ms  bytes_in  bytes_out  "
		     "tickets_sent  num_tickets\n"
		     "281474976710657       1  127.0.0.1:40000  example.com  TLSv1.3    1500       517       4096  "
		     "           3            2\n"
		     "              2       0  [::1]:5          -            TLSv1.2       7         0          0  "
		     "           0            0\n",
		     "");
	/* No connections: the header alone. */
	EXPECT_PRINT("conns", false, "{\"ok\":true,\"conns\":[]}", 0,
		     "id  worker  peer  sni  version  age_ms  bytes_in  bytes_out  tickets_sent  num_tickets\n", "");
	/* Missing fields, a non-object row, UTF-8 and escapes in a cell. */
	EXPECT_PRINT("conns", false,
		     "{\"ok\":true,\"conns\":[{\"id\":5,\"sni\":\"caf\\u00e9\\u001b\"},7,{\"sni\":[1]}]}", 0,
		     "id  worker  peer  sni       version  age_ms  bytes_in  bytes_out  tickets_sent  num_tickets\n"
		     " 5       -  -     caf\xc3\xa9\\x1b  -             -         -          -             -            -\n"
		     " -       -  -     -         -             -         -          -             -            -\n"
		     " -       -  -     [1]       -             -         -          -             -            -\n",
		     "");
	/* A cell longer than 256 columns is cut. */
	char reply[1024], want[2048], sni[400];
	memset(sni, 's', 300);
	sni[300] = '\0';
	snprintf(reply, sizeof(reply), "{\"ok\":true,\"conns\":[{\"sni\":\"%s\"}]}", sni);
	CHECK_EQ_INT(print_reply("conns", false, reply, strlen(reply)), 0);
	snprintf(want, sizeof(want), " -       -  -     %.256s...  -", sni);
	CHECK(strstr(out_text, want) != NULL);
	/* conns as something else: fields. */
	EXPECT_PRINT("conns", false, "{\"ok\":true,\"conns\":5}", 0, "conns: 5\n", "");
	/* A conns-shaped reply to another command: fields. */
	EXPECT_PRINT("stats", false, "{\"ok\":true,\"conns\":[1,2]}", 0, "conns: 1, 2\n", "");
}

static void test_print_malformed(void)
{
	EXPECT_PRINT("stats", false, "not json", 1, "not json\n", "tern ctl: the reply is not valid JSON\n");
	EXPECT_PRINT("stats", true, "not json", 1, "not json\n", "tern ctl: the reply is not valid JSON\n");
	EXPECT_PRINT("stats", false, "", 1, "\n", "tern ctl: the reply is not valid JSON\n");
	EXPECT_PRINT("stats", false, "{\"ok\":true", 1, "{\"ok\":true\n", "tern ctl: the reply is not valid JSON\n");
	EXPECT_PRINT("stats", false, "[1]", 1, "[1]\n", "tern ctl: the reply is not a JSON object\n");
	EXPECT_PRINT("stats", false, "{\"ok\":1}", 1, "{\"ok\":1}\n",
		     "tern ctl: the reply has no \"ok\": true or false\n");
	EXPECT_PRINT("stats", false, "{}", 1, "{}\n", "tern ctl: the reply has no \"ok\": true or false\n");
	/* Raw, but still escaped for the terminal (not with --json). */
	EXPECT_PRINT("stats", false, "\x1b]0;pwned\x07", 1, "\\x1b]0;pwned\\x07\n",
		     "tern ctl: the reply is not valid JSON\n");

	/* Every prefix and every one-byte corruption of a conns reply: exit
	 * 0 or 1, never a crash (ASan watches). */
	const char reply[] = "{\"ok\":true,\"conns\":[{\"id\":1,\"sni\":\"a\\u00e9\",\"age_ms\":3}]}";
	static const char junk[] = "\"\\{}[],:0-eu\x01\xff ";
	char buf[sizeof(reply)];
	bool all_0_or_1 = true;
	for (size_t n = 0; n < sizeof(reply) - 1; n++)
		all_0_or_1 = all_0_or_1 && print_reply("conns", false, reply, n) == 1;
	for (size_t i = 0; i < sizeof(reply) - 1; i++) {
		for (size_t k = 0; k < sizeof(junk) - 1; k++) {
			memcpy(buf, reply, sizeof(reply));
			buf[i] = junk[k];
			int status = print_reply("conns", false, buf, sizeof(reply) - 1);
			all_0_or_1 = all_0_or_1 && (status == 0 || status == 1);
		}
	}
	CHECK(all_0_or_1);
}

/* ---- Whole runs against a fake tern ---- */

enum fake_mode {
	FAKE_REPLY,        /* answer `reply` in one write */
	FAKE_REPLY_PIECES, /* answer it a few bytes at a time, then more lines */
	FAKE_SILENT,       /* read the command, answer nothing */
	FAKE_HANG_UP,      /* read the command, close */
};

struct fake_tern {
	int listen_fd;
	enum fake_mode mode;
	const char *reply;
	char got[TERN_CONTROL_LINE_MAX + 2];
	size_t got_len;
	pthread_t thread;
};

static void *fake_tern_run(void *arg)
{
	struct fake_tern *f = arg;
	int fd = accept(f->listen_fd, NULL, NULL);

	if (fd < 0)
		return NULL;
	while (f->got_len < sizeof(f->got) && memchr(f->got, '\n', f->got_len) == NULL) {
		ssize_t n = read(fd, f->got + f->got_len, sizeof(f->got) - f->got_len);
		if (n <= 0)
			break;
		f->got_len += (size_t)n;
	}
	if (f->mode == FAKE_REPLY) {
		if (send(fd, f->reply, strlen(f->reply), MSG_NOSIGNAL) < 0)
			perror("fake tern: write");
	} else if (f->mode == FAKE_REPLY_PIECES) {
		for (size_t off = 0, len = strlen(f->reply); off < len; off += 3) {
			/* The client hangs up after the first line. */
			if (send(fd, f->reply + off, len - off < 3 ? len - off : 3, MSG_NOSIGNAL) < 0)
				break;
			usleep(1000);
		}
	} else if (f->mode == FAKE_SILENT) {
		char c;
		/* Until the client gives up and closes. */
		while (read(fd, &c, 1) > 0) {
		}
	}
	close(fd);
	return NULL;
}

static char dir[] = "/tmp/tern-ctl-test-XXXXXX";
static char sock_path[64];

static bool fake_tern_start(struct fake_tern *f, enum fake_mode mode, const char *reply)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->reply = reply;
	unlink(sock_path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!CHECK(f->listen_fd >= 0))
		return false;
	if (!CHECK(bind(f->listen_fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) ||
	    !CHECK(listen(f->listen_fd, 4) == 0) ||
	    !CHECK(pthread_create(&f->thread, NULL, fake_tern_run, f) == 0)) {
		close(f->listen_fd);
		return false;
	}
	return true;
}

static void fake_tern_stop(struct fake_tern *f)
{
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	unlink(sock_path);
}

/* Runs `tern ctl ARGS...`, capturing out_text and err_text. */
static int run_ctl(int argc, char **argv)
{
	char *out_buf = NULL, *err_buf = NULL;
	size_t out_len = 0, err_len = 0;
	FILE *out = open_memstream(&out_buf, &out_len);
	FILE *errs = open_memstream(&err_buf, &err_len);
	int status = -1;

	if (CHECK(out != NULL && errs != NULL))
		status = tern_ctl_run(argc, argv, out, errs);
	if (out != NULL)
		fclose(out);
	if (errs != NULL)
		fclose(errs);
	snprintf(out_text, sizeof(out_text), "%s", out_buf != NULL ? out_buf : "");
	snprintf(err_text, sizeof(err_text), "%s", err_buf != NULL ? err_buf : "");
	free(out_buf);
	free(err_buf);
	return status;
}

#define RUN(...) run_ctl(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static void test_runs(void)
{
	struct fake_tern f;
	char want[512];

	if (!CHECK(mkdtemp(dir) != NULL))
		return;
	snprintf(sock_path, sizeof(sock_path), "%s/control.sock", dir);
	unsetenv("TERN_CONTROL");

	if (fake_tern_start(&f, FAKE_REPLY, "{\"ok\":true,\"queued\":2}\n")) {
		CHECK_EQ_INT(RUN("--control", sock_path, "tickets", "all", "2"), 0);
		fake_tern_stop(&f);
		CHECK_EQ_UINT(f.got_len, strlen("tickets all 2\n"));
		CHECK(memcmp(f.got, "tickets all 2\n", f.got_len) == 0);
		CHECK_EQ_STR(out_text, "queued: 2\n");
		CHECK_EQ_STR(err_text, "");
	}

	/* In pieces, with more after the line: only the first line counts.
	 * The path comes from the environment. */
	setenv("TERN_CONTROL", sock_path, 1);
	if (fake_tern_start(&f, FAKE_REPLY_PIECES, "{\"ok\":false,\"error\":\"tickets: N must be 1..16\"}\n{junk")) {
		CHECK_EQ_INT(RUN("tickets", "all", "99"), 1);
		fake_tern_stop(&f);
		CHECK_EQ_STR(out_text, "");
		CHECK_EQ_STR(err_text, "error: tickets: N must be 1..16\n");
	}
	if (fake_tern_start(&f, FAKE_REPLY, "{\"ok\":true,\"workers\":2}\n")) {
		CHECK_EQ_INT(RUN("--json", "stats"), 0);
		fake_tern_stop(&f);
		CHECK_EQ_STR(out_text, "{\"ok\":true,\"workers\":2}\n");
	}
	unsetenv("TERN_CONTROL");

	/* Not a reply. */
	if (fake_tern_start(&f, FAKE_REPLY, "HTTP/1.1 400 Bad Request\r\n")) {
		CHECK_EQ_INT(RUN("--control", sock_path, "stats"), 1);
		fake_tern_stop(&f);
		CHECK_EQ_STR(out_text, "HTTP/1.1 400 Bad Request\\x0d\n");
		CHECK_EQ_STR(err_text, "tern ctl: the reply is not valid JSON\n");
	}

	/* Silence: --timeout bounds the wait. */
	if (fake_tern_start(&f, FAKE_SILENT, NULL)) {
		CHECK_EQ_INT(RUN("--control", sock_path, "--timeout", "100ms", "stats"), 1);
		fake_tern_stop(&f);
		snprintf(want, sizeof(want), "tern ctl: %s: no reply within 100ms\n", sock_path);
		CHECK_EQ_STR(err_text, want);
		CHECK_EQ_STR(out_text, "");
	}

	/* A hang-up, and a reply cut before its newline. */
	if (fake_tern_start(&f, FAKE_HANG_UP, NULL)) {
		CHECK_EQ_INT(RUN("--control", sock_path, "stats"), 1);
		fake_tern_stop(&f);
		snprintf(want, sizeof(want), "tern ctl: %s: connection closed before a reply\n", sock_path);
		CHECK_EQ_STR(err_text, want);
	}
	if (fake_tern_start(&f, FAKE_REPLY, "{\"ok\":true}")) {
		CHECK_EQ_INT(RUN("--control", sock_path, "stats"), 1);
		fake_tern_stop(&f);
		CHECK_EQ_STR(err_text, want);
	}

	/* No socket; not a socket. */
	CHECK_EQ_INT(RUN("--control", sock_path, "stats"), 1);
	snprintf(want, sizeof(want), "tern ctl: cannot connect to %s: No such file or directory\n", sock_path);
	CHECK_EQ_STR(err_text, want);
	CHECK_EQ_INT(RUN("--control", dir, "stats"), 1);
	snprintf(want, sizeof(want), "tern ctl: cannot connect to %s: Connection refused\n", dir);
	CHECK_EQ_STR(err_text, want);

	/* Usage: exit 2 before anything is sent; --help on stdout. */
	CHECK_EQ_INT(RUN("--control", sock_path, "--timeout", "5", "stats"), 2);
	CHECK_EQ_STR(err_text, "tern ctl: --timeout: invalid value '5' (expected a duration with a unit such as "
			       "250ms, 30s, 5m or 2h)\n");
	CHECK_EQ_STR(out_text, "");
	CHECK_EQ_INT(RUN("--help"), 0);
	CHECK_EQ_STR(out_text, tern_ctl_usage());
	CHECK_EQ_STR(err_text, "");

	rmdir(dir);
}

static void test_usage(void)
{
	const char *usage = tern_ctl_usage();
	static const char *const words[] = {
		"Usage: tern ctl [--control PATH] [--json] [--timeout DUR] COMMAND [ARGS...]\n",
		"--control PATH", "--json", "--timeout DUR", "$TERN_CONTROL", "/run/tern/control.sock", "[5s]",
		"help", "stats", "conns [LIMIT]", "tickets ID|all [N]", "num-tickets ID N", "rotate-ticket-keys",
		"verify-client ID", "reload", "info", "keys", "close ID", "certs",
	};

	CHECK(strncmp(usage, words[0], strlen(words[0])) == 0);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (!CHECK(strstr(usage, words[i]) != NULL))
			fprintf(stderr, "    missing %s\n", words[i]);
	}
	size_t longest = 0;
	for (const char *line = usage; *line != '\0';) {
		size_t len = strcspn(line, "\n");
		if (len > longest)
			longest = len;
		line += len + (line[len] == '\n');
	}
	CHECK(longest < 100);

	/* Every command the control socket takes has its line under
	 * "Commands:", starting "  NAME" (so a new one cannot be left out). */
	const char *commands = strstr(usage, "\nCommands:\n");
	CHECK(commands != NULL);
	for (const char *const *name = tern_control_command_names(); commands && *name; name++) {
		char line[64];
		snprintf(line, sizeof(line), "\n  %s ", *name);
		if (!CHECK(strstr(commands, line) != NULL))
			fprintf(stderr, "    tern ctl --help lacks the command %s\n", *name);
	}
}

/* keys: the source, the keys' table, then the generations and which
 * worker uses which (a worker behind, its queue full); a reply without
 * the worker part (an older tern) prints the keys alone. */
static void test_print_keys(void)
{
	EXPECT_PRINT("keys", false,
		     "{\"ok\":true,\"source\":\"memory\",\"keys\":[{\"fingerprint\":\"0123456789ab\","
		     "\"role\":\"encrypt\",\"since\":\"2025-01-02T10:00:00Z\",\"age_s\":5},"
		     "{\"fingerprint\":\"ba9876543210\",\"role\":\"decrypt\",\"since\":null,\"age_s\":null}],"
		     "\"generation\":1101,\"workers_behind\":1,\"workers\":[{\"worker\":0,"
		     "\"generation\":1101,\"queued\":true},{\"worker\":1,\"generation\":1,"
		     "\"queued\":false}]}",
		     0,
		     "source: memory\n"
		     "fingerprint   role     since                 age_s\n"
		     "0123456789ab  encrypt  2025-01-02T10:00:00Z      5\n"
		     "ba9876543210  decrypt  -                         -\n"
		     "generation: 1101\n"
		     "workers_behind: 1\n"
		     "worker  generation  queued\n"
		     "     0        1101  true\n"
		     "     1           1  false\n",
		     "");
	EXPECT_PRINT("keys", false,
		     "{\"ok\":true,\"keys\":[{\"fingerprint\":\"0123456789ab\",\"role\":\"encrypt\"}]}", 0,
		     "fingerprint   role     since  age_s\n"
		     "0123456789ab  encrypt  -          -\n",
		     "");
}

/* certs: a table, one row per certificate, the names joined with ",";
 * escapes in a name never reach the terminal raw. */
static void test_print_certs(void)
{
	EXPECT_PRINT("certs", false,
		     "{\"ok\":true,\"generation\":0,\"certs\":[{\"cert\":\"/etc/tern/a.pem\",\"default\":true,"
		     "\"names\":[\"a.test\",\"*.a.test\"],\"key_type\":\"EC\",\"key_bits\":256,"
		     "\"not_before\":\"2026-01-01T00:00:00Z\",\"not_after\":\"2027-01-01T00:00:00Z\","
		     "\"days_left\":25,\"ocsp\":true,\"ocsp_file\":\"/etc/tern/a.der\",\"ocsp_status\":"
		     "\"good\",\"ocsp_this_update\":\"2026-12-05T00:00:00Z\",\"ocsp_next_update\":"
		     "\"2026-12-08T00:00:00Z\"},{\"cert\":\"b.pem\",\"default\":false,\"names\":[\"b\\u001b\"],"
		     "\"key_type\":\"RSA\",\"key_bits\":2048,\"not_after\":\"2026-12-01T00:00:00Z\","
		     "\"days_left\":-5,\"ocsp\":false,\"ocsp_file\":null,\"ocsp_status\":null,"
		     "\"ocsp_next_update\":null}]}",
		     0,
		     "cert             default  key_type  key_bits  not_after             days_left  ocsp_status  "
		     "ocsp_next_update      names\n"
		     "/etc/tern/a.pem  true     EC             256  2027-01-01T00:00:00Z         25  good         "
		     "2026-12-08T00:00:00Z  a.test,*.a.test\n"
		     "b.pem            false    RSA           2048  2026-12-01T00:00:00Z         -5  -            "
		     "-                     b\\x1b\n",
		     "");
	/* A list longer than a cell is cut like any cell. */
	char reply[2048], name[200];
	memset(name, 'n', 150);
	name[150] = '\0';
	snprintf(reply, sizeof(reply), "{\"ok\":true,\"certs\":[{\"names\":[\"%s\",\"%s\"]}]}", name,
		 name);
	CHECK_EQ_INT(print_reply("certs", false, reply, strlen(reply)), 0);
	CHECK(strstr(out_text, "...\n") != NULL);
	CHECK(strstr(out_text, ",nnnn") != NULL);
}

int main(void)
{
	test_args();
	test_arg_errors();
	test_print();
	test_print_conns();
	test_print_malformed();
	test_runs();
	test_usage();
	test_print_keys();
	test_print_certs();
	return check_summary();
}
