/* Unit tests for src/ticket_keys_file.c's key file parser: good files
 * (comments, blank lines, CRLF, the 64-key limit, a symlink) and every
 * error message (not base64, the wrong length, no keys, too many,
 * duplicate names, a mode that lets other users read or write it, a
 * missing file, a directory, no permission); then the ROLE SINCE KEY form:
 * roles and times in the set and in the list, the encrypting key first
 * wherever the file has it, and each of its errors at its line (mixing
 * the forms, no or two encrypt keys, bad times, unknown roles, the wrong
 * number of fields); and the RFC 3339 times alone. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "check.h"
#include "ticket_keys_fixture.h"
#include "tern/ticket_keys.h"
#include "tern/ticket_keys_file.h"

/* 2026-12-06T04:00:00Z and an hour later, as Unix seconds (Python's
 * calendar.timegm). */
#define T0 INT64_C(1796529600)
#define T0_TEXT "2026-12-06T04:00:00Z"
#define T1_TEXT "2026-12-06T05:00:00Z"

/* Loads path expecting failure: returns the error text (static) and checks
 * the return value and that *out was left alone. */
static const char *load_error(const char *path, int want_ret)
{
	static char err[512];
	struct tern_ticket_keys *k = NULL;
	err[0] = '\0';
	int ret = tern_ticket_keys_load_file(path, &k, err, sizeof(err));
	CHECK_EQ_INT(ret, want_ret);
	CHECK(k == NULL);
	if (ret == 0)
		tern_ticket_keys_unref(k);
	return err;
}

/* ---- file parsing ---- */

static void test_load_good(void)
{
	char path[PATH_MAX], line[256], hex[33], want[33], err[512] = "";
	char content[2048];
	struct tern_ticket_keys *k = NULL;

	/* one key, no final newline */
	write_file(path, key_line(line, 1), 0600);
	CHECK_EQ_INT(tern_ticket_keys_load_file(path, &k, err, sizeof(err)), 0);
	CHECK_EQ_STR(err, "");
	if (k) {
		CHECK_EQ_UINT(tern_ticket_keys_count(k), 1);
		CHECK_EQ_STR(name_hex(k, 0, hex), seed_name_hex(want, 1));
		tern_ticket_keys_unref(k);
		k = NULL;
	}

	/* three keys among comments, blank and whitespace-only lines, CRLF
	 * line ends; mode 0640 is fine */
	char l1[256], l2[256], l3[256];
	snprintf(content, sizeof(content),
		 "# tern ticket keys, newest first\r\n"
		 "\r\n"
		 "%s\r\n"
		 "#%s\n"
		 "   \n"
		 "%s\n"
		 "\n"
		 "%s\r\n"
		 "# trailing comment",
		 key_line(l1, 10), key_line(line, 99), key_line(l2, 20), key_line(l3, 30));
	write_file(path, content, 0640);
	CHECK_EQ_INT(tern_ticket_keys_load_file(path, &k, err, sizeof(err)), 0);
	if (k) {
		CHECK_EQ_UINT(tern_ticket_keys_count(k), 3);
		CHECK_EQ_STR(name_hex(k, 0, hex), seed_name_hex(want, 10));
		CHECK_EQ_STR(name_hex(k, 1, hex), seed_name_hex(want, 20));
		CHECK_EQ_STR(name_hex(k, 2, hex), seed_name_hex(want, 30));
		tern_ticket_keys_unref(k);
		k = NULL;
	}

	/* exactly 64 keys is the limit */
	static char big[64 * 128];
	big[0] = '\0';
	append_key_lines(big, 64, 3);
	write_file(path, big, 0600);
	CHECK_EQ_INT(tern_ticket_keys_load_file(path, &k, err, sizeof(err)), 0);
	if (k) {
		CHECK_EQ_UINT(tern_ticket_keys_count(k), 64);
		CHECK_EQ_STR(name_hex(k, 63, hex), seed_name_hex(want, 63 * 3));
		tern_ticket_keys_unref(k);
		k = NULL;
	}

	/* a symlink readable by all, to a file that is not: the file counts */
	char link_path[PATH_MAX + 8];
	write_file(path, key_line(line, 5), 0600);
	snprintf(link_path, sizeof(link_path), "%s.link", path);
	CHECK_EQ_INT(symlink(path, link_path), 0);
	CHECK_EQ_INT(tern_ticket_keys_load_file(link_path, &k, err, sizeof(err)), 0);
	tern_ticket_keys_unref(k);
	k = NULL;
}

static void test_load_errors(void)
{
	char path[PATH_MAX], want[PATH_MAX + 256], content[4096];
	char l1[256], l2[256], l3[256];

	/* not base64: a bad character on line 3 */
	snprintf(content, sizeof(content), "%s\n# comment\n%s!\n", key_line(l1, 1), key_line(l2, 2));
	write_file(path, content, 0600);
	snprintf(want, sizeof(want), "%s:3: not base64", path);
	CHECK_EQ_STR(load_error(path, -EIO), want);

	/* whitespace inside a line, leading or trailing, is not base64 */
	const char *bad_lines[] = {"AAAA AAAA", " AAAAAAAA", "AAAAAAAA ", "AAAAAAAA\t", "AA=A", "A===",
				   "AAA", "=AAA", "AAAA\rAAAA"};
	for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
		snprintf(content, sizeof(content), "%s\n", bad_lines[i]);
		write_file(path, content, 0600);
		snprintf(want, sizeof(want), "%s:1: not base64", path);
		CHECK_EQ_STR(load_error(path, -EIO), want);
	}
	/* a key split by a space in the middle */
	key_line(l1, 1);
	snprintf(content, sizeof(content), "%.50s %s\n", l1, l1 + 50);
	write_file(path, content, 0600);
	snprintf(want, sizeof(want), "%s:1: not base64", path);
	CHECK_EQ_STR(load_error(path, -EIO), want);
	/* a NUL byte */
	write_file_len(path, "AAAA\0AAA\n", 9, 0600);
	CHECK_EQ_STR(load_error(path, -EIO), (snprintf(want, sizeof(want), "%s:1: not base64", path), want));

	/* the old 48-byte format (16 name + 16 AES + 16 HMAC) on line 2 */
	snprintf(content, sizeof(content), "%s\n%s\n", key_line(l1, 1), key_line_len(l2, 2, 48));
	write_file(path, content, 0600);
	snprintf(want, sizeof(want), "%s:2: decodes to 48 bytes, expected 80 (16 name + 32 HMAC + 32 AES)", path);
	CHECK_EQ_STR(load_error(path, -EIO), want);

	/* one byte short: "==" padding counted */
	snprintf(content, sizeof(content), "%s\n", key_line_len(l1, 1, 79));
	write_file(path, content, 0600);
	snprintf(want, sizeof(want), "%s:1: decodes to 79 bytes, expected 80 (16 name + 32 HMAC + 32 AES)", path);
	CHECK_EQ_STR(load_error(path, -EIO), want);
	/* and one byte long */
	snprintf(content, sizeof(content), "%s\n", key_line_len(l1, 1, 81));
	write_file(path, content, 0600);
	snprintf(want, sizeof(want), "%s:1: decodes to 81 bytes, expected 80 (16 name + 32 HMAC + 32 AES)", path);
	CHECK_EQ_STR(load_error(path, -EIO), want);

	/* no keys: empty, or only comments and blank lines */
	write_file(path, "", 0600);
	snprintf(want, sizeof(want), "%s: no keys", path);
	CHECK_EQ_STR(load_error(path, -EIO), want);
	write_file(path, "# nothing here\r\n\n  \n#\n", 0600);
	snprintf(want, sizeof(want), "%s: no keys", path);
	CHECK_EQ_STR(load_error(path, -EIO), want);

	/* too many keys: the 65th, on line 66 after a comment */
	static char big[70 * 128];
	strcpy(big, "# 65 keys\n");
	append_key_lines(big, 65, 3);
	write_file(path, big, 0600);
	snprintf(want, sizeof(want), "%s:66: more than 64 keys", path);
	CHECK_EQ_STR(load_error(path, -EIO), want);

	/* duplicate names: lines 1 and 3 share a name, secrets differ */
	key_line(l1, 7);
	unsigned char raw[80];
	key_bytes(raw, sizeof(raw), 7);
	raw[40] ^= 0xff;
	raw[70] ^= 0xff;
	EVP_EncodeBlock((unsigned char *)l3, raw, sizeof(raw));
	snprintf(content, sizeof(content), "%s\n%s\n%s\n", l1, key_line(l2, 8), l3);
	write_file(path, content, 0600);
	snprintf(want, sizeof(want), "%s:3: duplicate key name (same as line 1)", path);
	CHECK_EQ_STR(load_error(path, -EIO), want);

	/* readable by other users: refused whatever the content */
	write_file(path, key_line(l1, 1), 0644);
	snprintf(want, sizeof(want), "%s: readable by other users (mode 0644); chmod 600 or 640 it", path);
	CHECK_EQ_STR(load_error(path, -EACCES), want);
	write_file(path, key_line(l1, 1), 0604);
	snprintf(want, sizeof(want), "%s: readable by other users (mode 0604); chmod 600 or 640 it", path);
	CHECK_EQ_STR(load_error(path, -EACCES), want);
	/* writable by other users: refused too */
	write_file(path, key_line(l1, 1), 0602);
	snprintf(want, sizeof(want), "%s: writable by other users (mode 0602); chmod 600 or 640 it", path);
	CHECK_EQ_STR(load_error(path, -EACCES), want);
	/* through a symlink: the target's mode is checked */
	char link_path[PATH_MAX + 8];
	write_file(path, key_line(l1, 1), 0644);
	snprintf(link_path, sizeof(link_path), "%s.link", path);
	CHECK_EQ_INT(symlink(path, link_path), 0);
	snprintf(want, sizeof(want), "%s: readable by other users (mode 0644); chmod 600 or 640 it", link_path);
	CHECK_EQ_STR(load_error(link_path, -EACCES), want);

	/* missing file: the path and strerror */
	snprintf(path, sizeof(path), "%s/no-such-file", tmp_dir);
	snprintf(want, sizeof(want), "%s: cannot open: %s", path, strerror(ENOENT));
	CHECK_EQ_STR(load_error(path, -EIO), want);

	/* a directory */
	snprintf(want, sizeof(want), "%s: not a regular file", tmp_dir);
	CHECK_EQ_STR(load_error(tmp_dir, -EIO), want);

	/* no permission to open (root opens anything, so only as a user) */
	write_file(path, key_line(l1, 1), 0200);
	if (geteuid() != 0) {
		snprintf(want, sizeof(want), "%s: cannot open: %s", path, strerror(EACCES));
		CHECK_EQ_STR(load_error(path, -EACCES), want);
	}
}

/* ---- the ROLE SINCE KEY form ---- */

static void test_roles_good(void)
{
	char path[PATH_MAX], content[4096], err[512] = "", hex[33], want[33], fp[13];
	char l1[256], l2[256], l3[256], bare[256];
	struct tern_ticket_keys *k = NULL;

	/* The encrypting key on line 5, after a staged one; blanks and tabs
	 * between fields, trailing blanks, CRLF, comments, tern's header. */
	snprintf(content, sizeof(content),
		 TERN_TICKET_KEYS_FILE_HEADER "\n"
		 "%s\r\n"
		 "\n"
		 "# the next one encrypts\n"
		 "encrypt\t " T0_TEXT "  %s \t\n"
		 "%s\n",
		 role_line(l1, "staged", T1_TEXT, 10), key_line(bare, 20), role_line(l3, "decrypt", T0_TEXT, 30));
	write_file(path, content, 0600);
	CHECK_EQ_INT(tern_ticket_keys_load_file(path, &k, err, sizeof(err)), 0);
	CHECK_EQ_STR(err, "");
	if (k) {
		CHECK_EQ_UINT(tern_ticket_keys_count(k), 3);
		/* key 0 encrypts: line 5's, then the others in file order */
		CHECK_EQ_STR(name_hex(k, 0, hex), seed_name_hex(want, 20));
		CHECK_EQ_STR(name_hex(k, 1, hex), seed_name_hex(want, 10));
		CHECK_EQ_STR(name_hex(k, 2, hex), seed_name_hex(want, 30));
		CHECK_EQ_INT(tern_ticket_keys_role(k, 0), TERN_TICKET_KEY_ENCRYPT);
		CHECK_EQ_INT(tern_ticket_keys_role(k, 1), TERN_TICKET_KEY_STAGED);
		CHECK_EQ_INT(tern_ticket_keys_role(k, 2), TERN_TICKET_KEY_DECRYPT);
		CHECK_EQ_INT(tern_ticket_keys_since(k, 0), T0);
		CHECK_EQ_INT(tern_ticket_keys_since(k, 1), T0 + 3600);
		CHECK_EQ_INT(tern_ticket_keys_since(k, 2), T0);
		/* SHA-256 of the 80 bytes, first 12 hex digits (Python's hashlib) */
		tern_ticket_keys_fingerprint(k, 0, fp);
		CHECK_EQ_STR(fp, "eab73718887e");
		tern_ticket_keys_fingerprint(k, 1, fp);
		CHECK_EQ_STR(fp, "2d28e37d8021");
		tern_ticket_keys_fingerprint(k, 2, fp);
		CHECK_EQ_STR(fp, "c44d281ca070");
		tern_ticket_keys_unref(k);
		k = NULL;
	}

	/* The list keeps the file's order and says which form it was */
	struct tern_ticket_key_list list;
	CHECK_EQ_INT(tern_ticket_key_list_parse(path, content, strlen(content), &list, err, sizeof(err)), 0);
	CHECK(list.roles);
	CHECK_EQ_UINT(list.num_keys, 3);
	CHECK_EQ_INT(list.keys[0].role, TERN_TICKET_KEY_STAGED);
	CHECK_EQ_INT(list.keys[1].role, TERN_TICKET_KEY_ENCRYPT);
	CHECK_EQ_INT(list.keys[2].since, T0);
	tern_ticket_key_list_clear(&list);

	/* bare lines: the first encrypts, SINCE unknown, the form remembered */
	snprintf(content, sizeof(content), "%s\n%s\n", key_line(l1, 1), key_line(l2, 2));
	CHECK_EQ_INT(tern_ticket_key_list_parse("f", content, strlen(content), &list, err, sizeof(err)), 0);
	CHECK(!list.roles);
	CHECK_EQ_UINT(list.num_keys, 2);
	CHECK_EQ_INT(list.keys[0].role, TERN_TICKET_KEY_ENCRYPT);
	CHECK_EQ_INT(list.keys[1].role, TERN_TICKET_KEY_DECRYPT);
	CHECK(list.keys[0].since == TERN_TICKET_KEY_SINCE_UNKNOWN);
	CHECK(list.keys[1].since == TERN_TICKET_KEY_SINCE_UNKNOWN);
	tern_ticket_key_list_clear(&list);
	write_file(path, content, 0600);
	CHECK_EQ_INT(tern_ticket_keys_load_file(path, &k, err, sizeof(err)), 0);
	if (k) {
		CHECK_EQ_INT(tern_ticket_keys_role(k, 1), TERN_TICKET_KEY_DECRYPT);
		CHECK(tern_ticket_keys_since(k, 1) == TERN_TICKET_KEY_SINCE_UNKNOWN);
		tern_ticket_keys_fingerprint(k, 0, fp);
		CHECK_EQ_STR(fp, "3627005a71f5");
		tern_ticket_keys_unref(k);
		k = NULL;
	}

	/* 64 keys with roles is the limit too: one encrypt, 63 decrypt */
	static char big[64 * 160];
	big[0] = '\0';
	for (unsigned i = 0; i < 64; i++) {
		strcat(big, role_line(l1, i == 63 ? "encrypt" : "decrypt", T0_TEXT, i * 3));
		strcat(big, "\n");
	}
	write_file(path, big, 0600);
	CHECK_EQ_INT(tern_ticket_keys_load_file(path, &k, err, sizeof(err)), 0);
	if (k) {
		CHECK_EQ_UINT(tern_ticket_keys_count(k), 64);
		CHECK_EQ_STR(name_hex(k, 0, hex), seed_name_hex(want, 63 * 3));
		CHECK_EQ_STR(name_hex(k, 63, hex), seed_name_hex(want, 62 * 3));
		tern_ticket_keys_unref(k);
	}
}

/* Parses content expecting failure; returns the message (static). */
static const char *parse_error(const char *content)
{
	static char err[512];
	struct tern_ticket_key_list list;
	err[0] = '\0';
	CHECK_EQ_INT(tern_ticket_key_list_parse("keys", content, strlen(content), &list, err, sizeof(err)), -EIO);
	/* nothing half-parsed is left behind */
	CHECK_EQ_UINT(list.num_keys, 0);
	return err;
}

static void test_roles_errors(void)
{
	char content[16384], path[PATH_MAX], want[PATH_MAX + 128];
	char l1[256], l2[256], l3[256];

	/* mixing, both ways round: the message names the line that breaks
	 * the form and the first key's line */
	snprintf(content, sizeof(content), "# c\n%s\n\n%s\n", key_line(l1, 1), role_line(l2, "staged", T0_TEXT, 2));
	CHECK_EQ_STR(parse_error(content),
		     "keys:4: mixes bare keys and ROLE SINCE KEY lines (line 2 has the other form)");
	snprintf(content, sizeof(content), "%s\n%s\n", role_line(l1, "encrypt", T0_TEXT, 1), key_line(l2, 2));
	CHECK_EQ_STR(parse_error(content),
		     "keys:2: mixes bare keys and ROLE SINCE KEY lines (line 1 has the other form)");
	/* a role line with an unknown role still counts as a role line */
	snprintf(content, sizeof(content), "%s\n%s\n", key_line(l1, 1), role_line(l2, "staging", T0_TEXT, 2));
	CHECK_EQ_STR(parse_error(content),
		     "keys:2: mixes bare keys and ROLE SINCE KEY lines (line 1 has the other form)");

	/* no encrypt key; two of them */
	snprintf(content, sizeof(content), "%s\n%s\n", role_line(l1, "staged", T0_TEXT, 1),
		 role_line(l2, "decrypt", T0_TEXT, 2));
	CHECK_EQ_STR(parse_error(content), "keys: no encrypt key: exactly one key encrypts");
	snprintf(content, sizeof(content), "%s\n%s\n# x\n%s\n", role_line(l1, "encrypt", T0_TEXT, 1),
		 role_line(l2, "staged", T0_TEXT, 2), role_line(l3, "encrypt", T1_TEXT, 3));
	CHECK_EQ_STR(parse_error(content), "keys:4: a second encrypt key (line 1 encrypts): exactly one key encrypts");

	/* bad times: not UTC, not a date, not this exact form */
	const char *bad_times[] = {
		"2026-12-06T04:00:00",      "2026-12-06T04:00:00+00:00", "2026-12-06t04:00:00z",
		"2026-12-06T04:00:00.5Z",   "2026-13-06T04:00:00Z",      "2026-00-06T04:00:00Z",
		"2026-12-32T04:00:00Z",     "2026-12-00T04:00:00Z",      "2026-02-29T04:00:00Z",
		"2100-02-29T04:00:00Z",     "2026-04-31T04:00:00Z",      "2026-12-06T24:00:00Z",
		"2026-12-06T04:60:00Z",     "2026-12-06T04:00:60Z",      "1969-12-31T23:59:59Z",
		"2026-1-06T04:00:00Z",      "+026-12-06T04:00:00Z",      "2026-12-06X04:00:00Z",
		"now",                      "1796529600",
	};
	for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++) {
		snprintf(content, sizeof(content), "\n%s\n", role_line(l1, "encrypt", bad_times[i], 1));
		CHECK_EQ_STR(parse_error(content), "keys:2: bad time (expected UTC as 2026-12-06T04:00:00Z)");
	}
	/* a leap day is a date */
	struct tern_ticket_key_list list;
	char err[512];
	snprintf(content, sizeof(content), "%s\n", role_line(l1, "encrypt", "2028-02-29T00:00:00Z", 1));
	CHECK_EQ_INT(tern_ticket_key_list_parse("keys", content, strlen(content), &list, err, sizeof(err)), 0);
	CHECK_EQ_INT(list.keys[0].since, INT64_C(1835395200));

	/* unknown roles and the wrong number of fields */
	snprintf(content, sizeof(content), "%s\n", role_line(l1, "Encrypt", T0_TEXT, 1));
	CHECK_EQ_STR(parse_error(content), "keys:1: unknown role (expected encrypt, staged or decrypt)");
	snprintf(content, sizeof(content), "#\n%s\n", role_line(l1, "retired", T0_TEXT, 1));
	CHECK_EQ_STR(parse_error(content), "keys:2: unknown role (expected encrypt, staged or decrypt)");
	snprintf(content, sizeof(content), "encrypt %s\n", key_line(l1, 1));
	CHECK_EQ_STR(parse_error(content), "keys:1: expected ROLE SINCE KEY (three fields)");
	snprintf(content, sizeof(content), "%s extra\n", role_line(l1, "encrypt", T0_TEXT, 1));
	CHECK_EQ_STR(parse_error(content), "keys:1: expected ROLE SINCE KEY (three fields)");
	snprintf(content, sizeof(content), "decrypt\n");
	CHECK_EQ_STR(parse_error(content), "keys:1: expected ROLE SINCE KEY (three fields)");
	/* a leading blank makes a line bare, and a bare line with blanks is
	 * not base64, as it always was */
	snprintf(content, sizeof(content), " %s\n", role_line(l1, "encrypt", T0_TEXT, 1));
	CHECK_EQ_STR(parse_error(content), "keys:1: not base64");

	/* the key of a role line: base64, 80 bytes, a name of its own */
	snprintf(content, sizeof(content), "encrypt " T0_TEXT " %s!\n", key_line(l1, 1));
	CHECK_EQ_STR(parse_error(content), "keys:1: not base64");
	snprintf(content, sizeof(content), "encrypt " T0_TEXT " %s\n", key_line_len(l1, 1, 48));
	CHECK_EQ_STR(parse_error(content), "keys:1: decodes to 48 bytes, expected 80 (16 name + 32 HMAC + 32 AES)");
	snprintf(content, sizeof(content), "%s\n%s\n%s\n", role_line(l1, "encrypt", T0_TEXT, 7),
		 role_line(l2, "staged", T0_TEXT, 8), role_line(l3, "decrypt", T1_TEXT, 7));
	CHECK_EQ_STR(parse_error(content), "keys:3: duplicate key name (same as line 1)");

	/* 65 keys with roles */
	content[0] = '\0';
	for (unsigned i = 0; i < 65; i++) {
		strcat(content, role_line(l1, i == 0 ? "encrypt" : "decrypt", T0_TEXT, i * 3));
		strcat(content, "\n");
	}
	CHECK_EQ_STR(parse_error(content), "keys:65: more than 64 keys");

	/* through the loader, the path leads the message as before */
	snprintf(content, sizeof(content), "%s\n%s\n", role_line(l1, "encrypt", T0_TEXT, 1),
		 role_line(l2, "encrypt", T1_TEXT, 2));
	write_file(path, content, 0600);
	snprintf(want, sizeof(want), "%s:2: a second encrypt key (line 1 encrypts): exactly one key encrypts", path);
	CHECK_EQ_STR(load_error(path, -EIO), want);
	/* and a role file others may read is refused as a bare one is */
	write_file(path, content, 0644);
	snprintf(want, sizeof(want), "%s: readable by other users (mode 0644); chmod 600 or 640 it", path);
	CHECK_EQ_STR(load_error(path, -EACCES), want);
}

static void test_times(void)
{
	static const struct {
		const char *text;
		int64_t t;
	} cases[] = {
		{"1970-01-01T00:00:00Z", 0},
		{"2026-12-06T04:00:00Z", T0},
		{"2000-02-29T12:34:56Z", INT64_C(951827696)},
		{"9999-12-31T23:59:59Z", INT64_C(253402300799)},
	};
	char out[TERN_TICKET_KEY_TIME_LEN + 1];
	int64_t t;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = -1;
		CHECK_EQ_INT(tern_ticket_key_time_parse(cases[i].text, strlen(cases[i].text), &t), 0);
		CHECK_EQ_INT(t, cases[i].t);
		CHECK_EQ_STR(tern_ticket_key_time_format(cases[i].t, out), cases[i].text);
	}
	/* the length is the caller's: a prefix of a valid time is not one */
	CHECK_EQ_INT(tern_ticket_key_time_parse(T0_TEXT, 19, &t), -EINVAL);
	CHECK_EQ_STR(tern_ticket_key_time_format(TERN_TICKET_KEY_SINCE_UNKNOWN, out), "unknown");
	CHECK_EQ_STR(tern_ticket_key_time_format(-1, out), "unknown");
	CHECK_EQ_STR(tern_ticket_key_time_format(INT64_C(253402300800), out), "unknown");
}

int main(void)
{
	test_tmp_dir_make(tmp_dir, sizeof(tmp_dir), "ticket_keys_file_test");
	test_load_good();
	test_load_errors();
	test_roles_good();
	test_roles_errors();
	test_times();
	test_tmp_dir_remove(tmp_dir);
	return check_summary();
}
