/* Unit tests for src/control_proto.c: every command form of SPEC section 3
 * and every error message, compared as the exact string a control client
 * receives. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "tern/control_proto.h"
#include "tern/json.h"
#include "tern/request.h"

static struct tern_command cmd;
static char err[TERN_CONTROL_ERR_MAX];

static int parse_len(const char *line, size_t len)
{
	memset(&cmd, 0xa5, sizeof(cmd)); /* so a field left unset shows */
	memset(err, 'x', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	return tern_control_parse(line, len, &cmd, err, sizeof(err));
}

static int parse(const char *line)
{
	return parse_len(line, strlen(line));
}

/* The line must be accepted as this command, with no message. */
#define EXPECT_CMD(line, want_kind, want_id, want_count, want_limit) \
	do {                                                         \
		CHECK_EQ_INT(parse(line), 0);                        \
		CHECK_EQ_STR(err, "");                               \
		CHECK_EQ_INT(cmd.kind, (want_kind));                 \
		CHECK_EQ_UINT(cmd.conn_id, (want_id));               \
		CHECK_EQ_UINT(cmd.count, (want_count));              \
		CHECK_EQ_UINT(cmd.limit, (want_limit));              \
	} while (0)

/* The line must be refused with exactly this message, *out zeroed. */
#define EXPECT_ERR(line, want)                         \
	do {                                           \
		CHECK_EQ_INT(parse(line), -EINVAL);    \
		CHECK_EQ_STR(err, (want));             \
		CHECK_EQ_INT(cmd.kind, TERN_CMD_NONE); \
		CHECK_EQ_UINT(cmd.conn_id, 0);         \
		CHECK_EQ_UINT(cmd.count, 0);           \
		CHECK_EQ_UINT(cmd.limit, 0);           \
	} while (0)

static void test_simple_commands(void)
{
	EXPECT_CMD("help", TERN_CMD_HELP, 0, 0, 0);
	EXPECT_CMD("stats", TERN_CMD_STATS, 0, 0, 0);
	EXPECT_CMD("rotate-ticket-keys", TERN_CMD_ROTATE_TICKET_KEYS, 0, 0, 0);
	EXPECT_CMD("reload", TERN_CMD_RELOAD, 0, 0, 0);
	EXPECT_CMD("info", TERN_CMD_INFO, 0, 0, 0);
	EXPECT_CMD("keys", TERN_CMD_KEYS, 0, 0, 0);
	EXPECT_CMD("verify-client 281474976710657", TERN_CMD_VERIFY_CLIENT, 281474976710657ull, 0, 0);
	EXPECT_CMD("close 281474976710657", TERN_CMD_CLOSE, 281474976710657ull, 0, 0);
	EXPECT_CMD("close 0", TERN_CMD_CLOSE, 0, 0, 0);
	EXPECT_CMD("certs", TERN_CMD_CERTS, 0, 0, 0);
	EXPECT_CMD("backends", TERN_CMD_BACKENDS, 0, 0, 0);

	/* Spaces and tabs anywhere around the tokens; a trailing "\r". */
	EXPECT_CMD("  stats  ", TERN_CMD_STATS, 0, 0, 0);
	EXPECT_CMD("\tstats\t", TERN_CMD_STATS, 0, 0, 0);
	EXPECT_CMD("help\r", TERN_CMD_HELP, 0, 0, 0);
	EXPECT_CMD(" help \r", TERN_CMD_HELP, 0, 0, 0);

	/* The line is len bytes: what follows is not read. */
	CHECK_EQ_INT(parse_len("statsXYZ", 5), 0);
	CHECK_EQ_INT(cmd.kind, TERN_CMD_STATS);
}

static void test_conns(void)
{
	EXPECT_CMD("conns", TERN_CMD_CONNS, 0, 0, 1000);
	EXPECT_CMD("conns 1", TERN_CMD_CONNS, 0, 0, 1);
	EXPECT_CMD("conns 50", TERN_CMD_CONNS, 0, 0, 50);
	EXPECT_CMD("conns 100000", TERN_CMD_CONNS, 0, 0, 100000);
	EXPECT_CMD("conns\t007", TERN_CMD_CONNS, 0, 0, 7);

	EXPECT_ERR("conns 0", "conns: LIMIT must be 1..100000");
	EXPECT_ERR("conns 100001", "conns: LIMIT must be 1..100000");
	EXPECT_ERR("conns -1", "conns: LIMIT must be 1..100000");
	EXPECT_ERR("conns +5", "conns: LIMIT must be 1..100000");
	EXPECT_ERR("conns 10k", "conns: LIMIT must be 1..100000");
	EXPECT_ERR("conns all", "conns: LIMIT must be 1..100000");
	EXPECT_ERR("conns 99999999999999999999999", "conns: LIMIT must be 1..100000");
	EXPECT_ERR("conns 1 2", "too many arguments for 'conns'");
}

static void test_tickets(void)
{
	EXPECT_CMD("tickets all", TERN_CMD_TICKETS, TERN_CONN_ID_ALL, 1, 0);
	EXPECT_CMD("tickets all 16", TERN_CMD_TICKETS, TERN_CONN_ID_ALL, 16, 0);
	EXPECT_CMD("tickets 42", TERN_CMD_TICKETS, 42, 1, 0);
	EXPECT_CMD("tickets 42 3", TERN_CMD_TICKETS, 42, 3, 0);
	EXPECT_CMD("tickets 42 1", TERN_CMD_TICKETS, 42, 1, 0);
	/* Real IDs are large: worker << 48 | sequence. */
	EXPECT_CMD("tickets 281474976710657 2", TERN_CMD_TICKETS, (1ull << 48) | 1, 2, 0);
	EXPECT_CMD("tickets 0", TERN_CMD_TICKETS, 0, 1, 0);
	/* The largest ID that is not "all". */
	EXPECT_CMD("tickets 18446744073709551614", TERN_CMD_TICKETS, UINT64_MAX - 1, 1, 0);

	EXPECT_ERR("tickets", "tickets: expected ID|all [N]");
	EXPECT_ERR("tickets   ", "tickets: expected ID|all [N]");
	EXPECT_ERR("tickets all 0", "tickets: N must be 1..16");
	EXPECT_ERR("tickets all 17", "tickets: N must be 1..16");
	EXPECT_ERR("tickets 42 x", "tickets: N must be 1..16");
	EXPECT_ERR("tickets 42 -1", "tickets: N must be 1..16");
	EXPECT_ERR("tickets x", "invalid connection ID 'x'");
	EXPECT_ERR("tickets ALL", "invalid connection ID 'ALL'");
	EXPECT_ERR("tickets -1", "invalid connection ID '-1'");
	EXPECT_ERR("tickets +1", "invalid connection ID '+1'");
	EXPECT_ERR("tickets 0x10", "invalid connection ID '0x10'");
	EXPECT_ERR("tickets 1.5", "invalid connection ID '1.5'");
	/* UINT64_MAX is TERN_CONN_ID_ALL: refused as a number. */
	EXPECT_ERR("tickets 18446744073709551615", "invalid connection ID '18446744073709551615'");
	EXPECT_ERR("tickets 18446744073709551616", "invalid connection ID '18446744073709551616'");
	/* The ID is checked before N. */
	EXPECT_ERR("tickets x 99", "invalid connection ID 'x'");
	/* Arity before values. */
	EXPECT_ERR("tickets 1 2 3", "too many arguments for 'tickets'");
	EXPECT_ERR("tickets x y z w v", "too many arguments for 'tickets'");
}

static void test_num_tickets(void)
{
	EXPECT_CMD("num-tickets 42 0", TERN_CMD_NUM_TICKETS, 42, 0, 0);
	EXPECT_CMD("num-tickets 42 16", TERN_CMD_NUM_TICKETS, 42, 16, 0);
	EXPECT_CMD("num-tickets\t562949953421313\t4\r", TERN_CMD_NUM_TICKETS, (2ull << 48) | 1, 4, 0);

	EXPECT_ERR("num-tickets", "num-tickets: expected ID N");
	EXPECT_ERR("num-tickets 42", "num-tickets: expected ID N");
	EXPECT_ERR("num-tickets 42 17", "num-tickets: N must be 0..16");
	EXPECT_ERR("num-tickets 42 two", "num-tickets: N must be 0..16");
	EXPECT_ERR("num-tickets 42 -0", "num-tickets: N must be 0..16");
	/* One live connection: no "all" here. */
	EXPECT_ERR("num-tickets all 2", "invalid connection ID 'all'");
	EXPECT_ERR("num-tickets x 2", "invalid connection ID 'x'");
	EXPECT_ERR("num-tickets 1 2 3", "too many arguments for 'num-tickets'");
}

static void test_unknown_and_arity(void)
{
	EXPECT_ERR("foo", "unknown command 'foo'");
	EXPECT_ERR("foo bar baz", "unknown command 'foo'");
	EXPECT_ERR("HELP", "unknown command 'HELP'");
	EXPECT_ERR("stat", "unknown command 'stat'");
	EXPECT_ERR("stats2", "unknown command 'stats2'");
	EXPECT_ERR("num_tickets 1 2", "unknown command 'num_tickets'");
	EXPECT_ERR("verify-client", "verify-client: expected ID");
	EXPECT_ERR("verify-client all", "invalid connection ID 'all'");
	EXPECT_ERR("verify-client 1 2", "too many arguments for 'verify-client'");
	EXPECT_ERR("reload now", "too many arguments for 'reload'");
	/* close takes one connection: no "all", which would end the proxy's
	 * traffic by a typo. */
	EXPECT_ERR("close", "close: expected ID");
	EXPECT_ERR("close all", "invalid connection ID 'all'");
	EXPECT_ERR("close -1", "invalid connection ID '-1'");
	EXPECT_ERR("close 18446744073709551615", "invalid connection ID '18446744073709551615'");
	EXPECT_ERR("close 1 2", "too many arguments for 'close'");
	EXPECT_ERR("certs all", "too many arguments for 'certs'");
	EXPECT_ERR("backends all", "too many arguments for 'backends'");
	EXPECT_ERR("info uring", "too many arguments for 'info'");
	EXPECT_ERR("INFO", "unknown command 'INFO'");
	EXPECT_ERR("caf\xc3\xa9", "unknown command 'caf\xc3\xa9'");

	EXPECT_ERR("help me", "too many arguments for 'help'");
	EXPECT_ERR("stats now", "too many arguments for 'stats'");
	EXPECT_ERR("stats 1 2 3 4 5 6", "too many arguments for 'stats'");
	EXPECT_ERR("rotate-ticket-keys now", "too many arguments for 'rotate-ticket-keys'");

	/* A long name is quoted cut, so the reply stays short. */
	char line[200], want[TERN_CONTROL_ERR_MAX];
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	snprintf(want, sizeof(want), "unknown command '%.64s...'", line);
	EXPECT_ERR(line, want);
	line[64] = '\0'; /* exactly 64: shown whole */
	snprintf(want, sizeof(want), "unknown command '%s'", line);
	EXPECT_ERR(line, want);

	memset(line, '7', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	char ticket_line[256];
	snprintf(ticket_line, sizeof(ticket_line), "tickets %s", line);
	snprintf(want, sizeof(want), "invalid connection ID '%.32s...'", line);
	EXPECT_ERR(ticket_line, want);
}

static void test_empty_and_control(void)
{
	EXPECT_ERR("", "empty command");
	EXPECT_ERR(" ", "empty command");
	EXPECT_ERR(" \t ", "empty command");
	EXPECT_ERR("\r", "empty command");
	CHECK_EQ_INT(parse_len(NULL, 0), -EINVAL);
	CHECK_EQ_STR(err, "empty command");

	EXPECT_ERR("stats\n", "command contains a control character");
	EXPECT_ERR("stats\r\r", "command contains a control character");
	EXPECT_ERR("st\x1b[31mats", "command contains a control character");
	EXPECT_ERR("stats\x7f", "command contains a control character");
	EXPECT_ERR("\x01", "command contains a control character");
	EXPECT_ERR("tickets\x0b" "1", "command contains a control character");
	CHECK_EQ_INT(parse_len("stats\0x", 7), -EINVAL);
	CHECK_EQ_STR(err, "command contains a control character");
	/* A NUL at the very end too: it is not a terminator. */
	CHECK_EQ_INT(parse_len("stats\0", 6), -EINVAL);
	CHECK_EQ_STR(err, "command contains a control character");
}

static void test_length(void)
{
	static char line[TERN_CONTROL_LINE_MAX + 3];

	/* 4096 bytes: "conns" padded with spaces is still a command. */
	memset(line, ' ', sizeof(line));
	memcpy(line, "conns 5", 7);
	CHECK_EQ_INT(parse_len(line, TERN_CONTROL_LINE_MAX), 0);
	CHECK_EQ_INT(cmd.kind, TERN_CMD_CONNS);
	CHECK_EQ_UINT(cmd.limit, 5);
	/* The "\r" of "\r\n" does not count. */
	line[TERN_CONTROL_LINE_MAX] = '\r';
	CHECK_EQ_INT(parse_len(line, TERN_CONTROL_LINE_MAX + 1), 0);
	CHECK_EQ_UINT(cmd.limit, 5);

	line[TERN_CONTROL_LINE_MAX] = ' ';
	CHECK_EQ_INT(parse_len(line, TERN_CONTROL_LINE_MAX + 1), -EINVAL);
	CHECK_EQ_STR(err, "command longer than 4096 bytes");
	CHECK_EQ_INT(cmd.kind, TERN_CMD_NONE);
	line[TERN_CONTROL_LINE_MAX + 1] = '\r';
	CHECK_EQ_INT(parse_len(line, TERN_CONTROL_LINE_MAX + 2), -EINVAL);
	CHECK_EQ_STR(err, "command longer than 4096 bytes");
	/* Length is judged before content. */
	line[0] = '\x01';
	CHECK_EQ_INT(parse_len(line, TERN_CONTROL_LINE_MAX + 1), -EINVAL);
	CHECK_EQ_STR(err, "command longer than 4096 bytes");
}

/* No buffer, or one too small: never a crash, a NUL-terminated prefix. */
static void test_err_buffer(void)
{
	char small[8];

	CHECK_EQ_INT(tern_control_parse("foo", 3, &cmd, NULL, 0), -EINVAL);
	CHECK_EQ_INT(tern_control_parse("foo", 3, &cmd, small, sizeof(small)), -EINVAL);
	CHECK_EQ_STR(small, "unknown");
	CHECK_EQ_INT(tern_control_parse("stats", 5, &cmd, NULL, 0), 0);
	CHECK_EQ_INT(cmd.kind, TERN_CMD_STATS);
}

/* help lists exactly the commands the parser takes. */
static void test_command_names(void)
{
	static const char *const want[] = {
		"help", "stats", "conns", "tickets", "num-tickets", "rotate-ticket-keys",
		"verify-client", "reload", "info", "keys", "close", "certs", "backends",
	};
	const char *const *names = tern_control_command_names();
	size_t n = 0;

	while (names[n] != NULL)
		n++;
	CHECK_EQ_UINT(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n && i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK_EQ_STR(names[i], want[i]);
		/* Each name is a command: alone, or with the arguments it needs. */
		int rc = parse(names[i]);
		if (rc < 0)
			CHECK(strstr(err, "expected") != NULL);
		else
			CHECK_EQ_INT(rc, 0);
		CHECK(strncmp(err, "unknown command", 15) != 0);
	}
}

/* The reply the control socket sends for a refused command. */
static void test_error_reply(void)
{
	struct tern_json j;

	CHECK_EQ_INT(parse("foo"), -EINVAL);
	tern_json_init(&j);
	tern_json_begin_object(&j);
	tern_json_key(&j, "ok");
	tern_json_bool(&j, false);
	tern_json_key(&j, "error");
	tern_json_string(&j, err);
	tern_json_end_object(&j);
	CHECK_EQ_INT(tern_json_finish(&j), 0);
	CHECK_EQ_STR(j.buf, "{\"ok\":false,\"error\":\"unknown command 'foo'\"}");
	tern_json_free(&j);

	/* A name that is not UTF-8 still makes valid JSON. */
	CHECK_EQ_INT(parse("\xff\xfe"), -EINVAL);
	tern_json_init(&j);
	tern_json_begin_object(&j);
	tern_json_key(&j, "ok");
	tern_json_bool(&j, false);
	tern_json_key(&j, "error");
	tern_json_string(&j, err);
	tern_json_end_object(&j);
	CHECK_EQ_INT(tern_json_finish(&j), 0);
	CHECK_EQ_STR(j.buf, "{\"ok\":false,\"error\":\"unknown command '\\ufffd\\ufffd'\"}");
	tern_json_free(&j);
}

int main(void)
{
	test_simple_commands();
	test_conns();
	test_tickets();
	test_num_tickets();
	test_unknown_and_arity();
	test_empty_and_control();
	test_length();
	test_err_buffer();
	test_command_names();
	test_error_reply();
	return check_summary();
}
