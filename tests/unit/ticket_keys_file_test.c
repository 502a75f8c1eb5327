/* Unit tests for src/ticket_keys.c's key file parser: good files (comments,
 * blank lines, CRLF, the 64-key limit, a symlink) and every error message
 * (not base64, the wrong length, no keys, too many, duplicate names, a
 * mode that lets other users read or write it, a missing file, a
 * directory, no permission). */
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

int main(void)
{
	test_tmp_dir_make(tmp_dir, sizeof(tmp_dir), "ticket_keys_file_test");
	test_load_good();
	test_load_errors();
	test_tmp_dir_remove(tmp_dir);
	return check_summary();
}
