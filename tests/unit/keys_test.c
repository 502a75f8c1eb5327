/* Unit tests for proxy/keys.c, `tern keys`, at fixed times: every usage
 * error with its exact message and exit status 2, then whole commands on
 * files in a temporary directory with their exact output (the lines
 * naming each change, `list` with its ages), the exit status 1 and the
 * message of a refused edit or a bad file, which leave the file as it was.
 * The real binary, the real clock and a running tern are
 * tests/integration/test_keys.py's. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "keys.h"
#include "ticket_keys_fixture.h"
#include "tern/ticket_keys.h"
#include "tern/ticket_keys_file.h"

#define T0 INT64_C(1796529600) /* 2026-12-06T04:00:00Z */

static char out_text[65536], err_text[65536];

/* Runs `tern keys ARGS...` (NULL-terminated) at now; the output lands in
 * out_text and err_text. Returns the exit status. */
static int run_at(int64_t now, const char *first, ...)
{
	char *argv[16] = {(char *)"keys"};
	int argc = 1;
	va_list ap;

	va_start(ap, first);
	for (const char *a = first; a != NULL && argc < 15; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	char *out_buf = NULL, *err_buf = NULL;
	size_t out_len = 0, err_len = 0;
	FILE *out = open_memstream(&out_buf, &out_len);
	FILE *err = open_memstream(&err_buf, &err_len);
	int status = tern_keys_run(argc, argv, now, out, err);
	fclose(out);
	fclose(err);
	snprintf(out_text, sizeof(out_text), "%s", out_buf ? out_buf : "");
	snprintf(err_text, sizeof(err_text), "%s", err_buf ? err_buf : "");
	free(out_buf);
	free(err_buf);
	return status;
}

#define RUN(now, ...) run_at((now), __VA_ARGS__, (const char *)NULL)

static void check_usage_error(int status, const char *want)
{
	CHECK_EQ_INT(status, TERN_KEYS_EXIT_USAGE);
	CHECK_EQ_STR(err_text, want);
	CHECK_EQ_STR(out_text, "");
}

static void test_usage(void)
{
	char *argv[] = {(char *)"keys", (char *)"f", (char *)"rotate", (char *)"--lifetime", (char *)"30m", NULL};
	struct tern_keys_options o;
	char msg[512];

	CHECK_EQ_INT(tern_keys_parse_args(5, argv, &o, msg, sizeof(msg)), TERN_KEYS_RUN);
	CHECK_EQ_STR(o.path, "f");
	CHECK_EQ_INT(o.command, TERN_KEYS_ROTATE);
	CHECK_EQ_UINT(o.lifetime_ms, 30 * 60 * 1000);
	argv[3] = (char *)"--lifetime=1h";
	CHECK_EQ_INT(tern_keys_parse_args(4, argv, &o, msg, sizeof(msg)), TERN_KEYS_RUN);
	CHECK_EQ_UINT(o.lifetime_ms, 3600 * 1000);
	/* the default is tern's default --session-lifetime */
	CHECK_EQ_INT(tern_keys_parse_args(3, argv, &o, msg, sizeof(msg)), TERN_KEYS_RUN);
	CHECK_EQ_UINT(o.lifetime_ms, 2 * 3600 * 1000);

	CHECK_EQ_INT(RUN(T0, "--help"), 0);
	CHECK_EQ_STR(out_text, tern_keys_usage());
	CHECK(strstr(out_text, "Usage: tern keys FILE COMMAND\n") == out_text);
	CHECK_EQ_INT(RUN(T0, "f", "rotate", "-h"), 0);
	CHECK_EQ_STR(out_text, tern_keys_usage());

	check_usage_error(run_at(T0, NULL), "tern keys: missing FILE (see tern keys --help)\n");
	check_usage_error(RUN(T0, ""), "tern keys: missing FILE (see tern keys --help)\n");
	check_usage_error(RUN(T0, "--lifetime", "2h"), "tern keys: unknown option '--lifetime' (see tern keys --help)\n");
	check_usage_error(RUN(T0, "f"), "tern keys: missing COMMAND (expected generate, add, promote, retire, "
					 "rotate or list)\n");
	check_usage_error(RUN(T0, "f", "rotat"), "tern keys: unknown command 'rotat' (expected generate, add, "
						 "promote, retire, rotate or list)\n");
	check_usage_error(RUN(T0, "f", "list\x1b[2J"), "tern keys: unknown command 'list\\x1b[2J' (expected "
						      "generate, add, promote, retire, rotate or list)\n");
	check_usage_error(RUN(T0, "f", "add", "extra"), "tern keys: add: unexpected argument 'extra'\n");
	check_usage_error(RUN(T0, "f", "add", "--lifetime", "2h"), "tern keys: --lifetime: only rotate takes it\n");
	check_usage_error(RUN(T0, "f", "rotate", "--lifetime"),
			  "tern keys: --lifetime: missing value (expected a duration with a unit such as 30m or 2h)\n");
	/* units required, as everywhere in tern */
	check_usage_error(RUN(T0, "f", "rotate", "--lifetime", "7200"),
			  "tern keys: --lifetime: invalid value '7200' (expected a duration with a unit such as 30m "
			  "or 2h)\n");
	check_usage_error(RUN(T0, "f", "rotate", "--lifetime=0s"),
			  "tern keys: --lifetime: invalid value '0s' (expected a duration from 1ms to 720h)\n");
	check_usage_error(RUN(T0, "f", "rotate", "--lifetime", "721h"),
			  "tern keys: --lifetime: invalid value '721h' (expected a duration from 1ms to 720h)\n");
	check_usage_error(RUN(T0, "f", "rotate", "--ttl", "2h"), "tern keys: rotate: unexpected argument '--ttl'\n");
}

/* The fingerprint of the key made from seed. */
static const char *fp_of(unsigned seed, char out[13])
{
	unsigned char key[TERN_TICKET_KEY_LEN];
	key_bytes(key, sizeof(key), seed);
	CHECK_EQ_INT(tern_ticket_key_fingerprint(key, out), 0);
	return out;
}

/* The fingerprint of the file's i-th key. */
static const char *file_fp(const char *path, uint32_t i, char out[13])
{
	struct tern_ticket_key_list l;
	struct stat st;
	char err[512];
	snprintf(out, 13, "(none)");
	if (tern_ticket_key_list_read(path, &l, &st, err, sizeof(err)) == 0 && i < l.num_keys)
		CHECK_EQ_INT(tern_ticket_key_fingerprint(l.keys[i].key, out), 0);
	tern_ticket_key_list_clear(&l);
	return out;
}

static const char *read_all(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	buf[0] = '\0';
	if (f) {
		buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
		fclose(f);
	}
	return buf;
}

static void test_generate_and_list(void)
{
	char path[PATH_MAX], want[PATH_MAX + 4096], fp[13], l1[256], l2[256], l3[256], l4[256], content[4096];

	snprintf(path, sizeof(path), "%s/gen.keys", tmp_dir);
	CHECK_EQ_INT(RUN(T0, path, "generate"), 0);
	snprintf(want, sizeof(want), "added %s as encrypt\n", file_fp(path, 0, fp));
	CHECK_EQ_STR(out_text, want);
	CHECK_EQ_STR(err_text, "");
	CHECK_EQ_UINT(strspn(fp, "0123456789abcdef"), 12);
	CHECK(strstr(read_all(path), "\nencrypt 2026-12-06T04:00:00Z ") != NULL);
	/* again: refused, the file untouched */
	snprintf(content, sizeof(content), "%s", read_all(path));
	CHECK_EQ_INT(RUN(T0 + 1, path, "generate"), 1);
	snprintf(want, sizeof(want), "tern keys: %s: exists; never overwritten by generate\n", path);
	CHECK_EQ_STR(err_text, want);
	CHECK_EQ_STR(out_text, "");
	CHECK_EQ_STR(read_all(path), content);

	/* list: file order, ages from now, a clock behind the file's shown */
	snprintf(content, sizeof(content), "%s\n%s\n%s\n%s\n", role_line(l1, "encrypt", "2026-12-06T04:00:00Z", 10),
		 role_line(l2, "staged", "2026-12-06T05:00:00Z", 20), role_line(l3, "decrypt", "2026-12-05T03:00:00Z", 30),
		 role_line(l4, "decrypt", "2026-12-06T05:06:40Z", 1));
	write_file(path, content, 0600);
	CHECK_EQ_INT(RUN(T0 + 3725, path, "list"), 0);
	CHECK_EQ_STR(out_text, "2d28e37d8021 encrypt 2026-12-06T04:00:00Z 1h2m5s\n"
			       "eab73718887e staged  2026-12-06T05:00:00Z 2m5s\n"
			       "c44d281ca070 decrypt 2026-12-05T03:00:00Z 1d2h2m5s\n"
			       "3627005a71f5 decrypt 2026-12-06T05:06:40Z -4m35s\n");
	CHECK_EQ_STR(read_all(path), content); /* list writes nothing */
	/* a bare file: roles from the order, times unknown */
	snprintf(content, sizeof(content), "%s\n%s\n", key_line(l1, 1), key_line(l2, 2));
	write_file(path, content, 0600);
	CHECK_EQ_INT(RUN(T0, path, "list"), 0);
	CHECK_EQ_STR(out_text, "3627005a71f5 encrypt unknown -\n"
			       "c1172b1dd4e5 decrypt unknown -\n");
}

static void test_edits(void)
{
	char path[PATH_MAX], want[PATH_MAX + 4096], a[13], b[13], c[13], added[13], l1[256], l2[256], l3[256], content[4096];
	struct stat before, after;

	/* promote: two lines, then the file says so */
	snprintf(content, sizeof(content), "%s\n%s\n%s\n", role_line(l1, "encrypt", "2026-12-06T04:00:00Z", 10),
		 role_line(l2, "staged", "2026-12-06T05:00:00Z", 20), role_line(l3, "decrypt", "2026-12-06T03:00:00Z", 30));
	write_file(path, content, 0640);
	CHECK_EQ_INT(RUN(T0 + 7200, path, "promote"), 0);
	snprintf(want, sizeof(want),
		 "promoted %s (staged since 2026-12-06T05:00:00Z) to encrypt\n"
		 "demoted %s (encrypt since 2026-12-06T04:00:00Z) to decrypt\n",
		 fp_of(20, a), fp_of(10, b));
	CHECK_EQ_STR(out_text, want);
	CHECK_EQ_INT(stat(path, &after), 0);
	CHECK_EQ_UINT(after.st_mode & 07777, 0640);
	CHECK_EQ_INT(RUN(T0 + 7200, path, "list"), 0);
	snprintf(want, sizeof(want),
		 "%s encrypt 2026-12-06T06:00:00Z 0s\n"
		 "%s decrypt 2026-12-06T06:00:00Z 0s\n"
		 "%s decrypt 2026-12-06T03:00:00Z 3h0m0s\n",
		 fp_of(20, a), fp_of(10, b), fp_of(30, c));
	CHECK_EQ_STR(out_text, want);

	/* refusals: exit 1, the path and the reason, the file untouched */
	CHECK_EQ_INT(stat(path, &before), 0);
	snprintf(content, sizeof(content), "%s", read_all(path));
	CHECK_EQ_INT(RUN(T0 + 7300, path, "promote"), 1);
	snprintf(want, sizeof(want), "tern keys: %s: no staged key to promote (add stages one)\n", path);
	CHECK_EQ_STR(err_text, want);
	CHECK_EQ_STR(out_text, "");
	CHECK_EQ_STR(read_all(path), content);
	CHECK_EQ_INT(stat(path, &after), 0);
	CHECK_EQ_UINT(after.st_ino, before.st_ino);

	/* retire twice, then refused */
	CHECK_EQ_INT(RUN(T0 + 7300, path, "retire"), 0);
	snprintf(want, sizeof(want), "retired %s (decrypt since 2026-12-06T03:00:00Z)\n", fp_of(30, c));
	CHECK_EQ_STR(out_text, want);
	CHECK_EQ_INT(RUN(T0 + 7300, path, "retire"), 0);
	CHECK_EQ_INT(RUN(T0 + 7300, path, "retire"), 1);
	snprintf(want, sizeof(want),
		 "tern keys: %s: no decrypt key to retire: the encrypting key and staged keys are never retired\n",
		 path);
	CHECK_EQ_STR(err_text, want);

	/* rotate: promote, retire by lifetime, stage; the new key named */
	snprintf(content, sizeof(content), "%s\n%s\n%s\n", role_line(l1, "encrypt", "2026-12-06T04:00:00Z", 10),
		 role_line(l2, "staged", "2026-12-06T04:00:00Z", 20), role_line(l3, "decrypt", "2026-12-06T03:00:00Z", 30));
	write_file(path, content, 0600);
	CHECK_EQ_INT(RUN(T0 + 1800, path, "rotate", "--lifetime", "90m"), 0);
	snprintf(want, sizeof(want),
		 "promoted %s (staged since 2026-12-06T04:00:00Z) to encrypt\n"
		 "demoted %s (encrypt since 2026-12-06T04:00:00Z) to decrypt\n"
		 "retired %s (decrypt since 2026-12-06T03:00:00Z)\n"
		 "added %s as staged\n",
		 fp_of(20, a), fp_of(10, b), fp_of(30, c), file_fp(path, 1, added));
	CHECK_EQ_STR(out_text, want);
	CHECK_EQ_INT(RUN(T0 + 1800, path, "list"), 0);
	snprintf(want, sizeof(want),
		 "%s encrypt 2026-12-06T04:30:00Z 0s\n"
		 "%s staged  2026-12-06T04:30:00Z 0s\n"
		 "%s decrypt 2026-12-06T04:30:00Z 0s\n",
		 a, added, b);
	CHECK_EQ_STR(out_text, want);

	/* a bare file: converted by the first edit, which says so */
	snprintf(content, sizeof(content), "%s\n%s\n", key_line(l1, 1), key_line(l2, 2));
	write_file(path, content, 0600);
	CHECK_EQ_INT(RUN(T0, path, "add"), 0);
	snprintf(want, sizeof(want), "converted 2 bare keys to roles: 3627005a71f5 encrypt, 1 decrypt\nadded %s as staged\n",
		 file_fp(path, 1, added));
	CHECK_EQ_STR(out_text, want);
	snprintf(want, sizeof(want), TERN_TICKET_KEYS_FILE_HEADER "\nencrypt 2026-12-06T04:00:00Z %s\n", key_line(l1, 1));
	CHECK(strncmp(read_all(path), want, strlen(want)) == 0);

	/* files tern would refuse are refused here too, untouched */
	write_file(path, content, 0644);
	CHECK_EQ_INT(RUN(T0, path, "rotate"), 1);
	snprintf(want, sizeof(want), "tern keys: %s: readable by other users (mode 0644); chmod 600 or 640 it\n", path);
	CHECK_EQ_STR(err_text, want);
	CHECK_EQ_STR(read_all(path), content);
	write_file(path, "garbage line\n", 0600);
	CHECK_EQ_INT(RUN(T0, path, "list"), 1);
	snprintf(want, sizeof(want), "tern keys: %s:1: not base64\n", path);
	CHECK_EQ_STR(err_text, want);
	snprintf(path, sizeof(path), "%s/missing.keys", tmp_dir);
	CHECK_EQ_INT(RUN(T0, path, "add"), 1);
	snprintf(want, sizeof(want), "tern keys: %s: cannot open: %s\n", path, strerror(ENOENT));
	CHECK_EQ_STR(err_text, want);
	CHECK(access(path, F_OK) != 0);
}

int main(void)
{
	test_tmp_dir_make(tmp_dir, sizeof(tmp_dir), "keys_test");
	test_usage();
	test_generate_and_list();
	test_edits();
	test_tmp_dir_remove(tmp_dir);
	return check_summary();
}
