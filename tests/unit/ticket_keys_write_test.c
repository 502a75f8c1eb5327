/* Unit tests for src/ticket_keys_write.c: the exact text of a key list in
 * the role form (and that the parser reads it back as it was), and the
 * atomic replacement: a new file is created 0600 and never over an
 * existing one; a replaced file keeps 0640 or becomes 0600 whatever the
 * umask, keeps its owner and group when run as root, is replaced through
 * a symlink without replacing the link, and is not replaced when another
 * edit changed it meanwhile; no temporary file is ever left behind. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ticket_keys_fixture.h"
#include "tern/ticket_keys.h"
#include "tern/ticket_keys_file.h"

#define T0 INT64_C(1796529600) /* 2026-12-06T04:00:00Z */

static void entry(struct tern_ticket_key_list *l, unsigned seed, enum tern_ticket_key_role role, int64_t since)
{
	struct tern_ticket_key_entry *e = &l->keys[l->num_keys++];
	key_bytes(e->key, sizeof(e->key), seed);
	e->role = role;
	e->since = since;
}

static void three_keys(struct tern_ticket_key_list *l)
{
	memset(l, 0, sizeof(*l));
	l->roles = true;
	entry(l, 10, TERN_TICKET_KEY_ENCRYPT, T0);
	entry(l, 20, TERN_TICKET_KEY_STAGED, T0 + 3600);
	entry(l, 30, TERN_TICKET_KEY_DECRYPT, T0 - 1);
}

static const char *read_all(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	buf[0] = '\0';
	if (!f)
		return "(cannot open)";
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Entries of tmp_dir other than "." and "..": temporary files left
 * behind would show here. */
static unsigned dir_entries(void)
{
	unsigned n = 0;
	DIR *d = opendir(tmp_dir);
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_mode & 07777 : 0;
}

static void test_format(void)
{
	struct tern_ticket_key_list l, back;
	char text[4096], want[4096], k10[256], k20[256], k30[256], err[512];

	three_keys(&l);
	long len = tern_ticket_key_list_format(&l, text, sizeof(text));
	snprintf(want, sizeof(want),
		 "# tern ticket keys: ROLE SINCE KEY; edit with tern keys (see tern keys --help)\n"
		 "encrypt 2026-12-06T04:00:00Z %s\n"
		 "staged 2026-12-06T05:00:00Z %s\n"
		 "decrypt 2026-12-06T03:59:59Z %s\n",
		 key_line(k10, 10), key_line(k20, 20), key_line(k30, 30));
	CHECK_EQ_INT(len, (long)strlen(want));
	if (len > 0) {
		text[len] = '\0';
		CHECK_EQ_STR(text, want);
	}
	/* read back: the same keys, roles and times */
	CHECK_EQ_INT(tern_ticket_key_list_parse("f", text, (size_t)len, &back, err, sizeof(err)), 0);
	CHECK(back.roles);
	CHECK_EQ_UINT(back.num_keys, 3);
	CHECK(memcmp(back.keys, l.keys, 3 * sizeof(l.keys[0])) == 0);

	/* one byte short: -ENOSPC, not a cut file */
	CHECK_EQ_INT(tern_ticket_key_list_format(&l, text, strlen(want)), -ENOSPC);
	/* a key without a SINCE (a bare line not converted) is not written */
	l.keys[2].since = TERN_TICKET_KEY_SINCE_UNKNOWN;
	CHECK_EQ_INT(tern_ticket_key_list_format(&l, text, sizeof(text)), -EINVAL);
	tern_ticket_key_list_clear(&l);
	tern_ticket_key_list_clear(&back);
}

static void test_create(void)
{
	struct tern_ticket_key_list l, back;
	char path[PATH_MAX], err[PATH_MAX + 256] = "", want[PATH_MAX + 256];
	struct stat st;

	three_keys(&l);
	snprintf(path, sizeof(path), "%s/new.keys", tmp_dir);
	unsigned before = dir_entries();
	/* a umask that would make it world-readable does not */
	mode_t old_umask = umask(0);
	CHECK_EQ_INT(tern_ticket_key_list_write(path, &l, NULL, err, sizeof(err)), 0);
	umask(old_umask);
	CHECK_EQ_STR(err, "");
	CHECK_EQ_UINT(mode_of(path), 0600);
	CHECK_EQ_UINT(dir_entries(), before + 1); /* the file, no temporary one */
	CHECK_EQ_INT(tern_ticket_key_list_read(path, &back, &st, err, sizeof(err)), 0);
	CHECK_EQ_UINT(back.num_keys, 3);

	/* never over an existing file, and it stays as it was */
	char content[64 * 1024];
	snprintf(content, sizeof(content), "%s", read_all(path));
	l.keys[0].since = T0 + 5;
	snprintf(want, sizeof(want), "%s: exists; never overwritten by generate", path);
	CHECK_EQ_INT(tern_ticket_key_list_write(path, &l, NULL, err, sizeof(err)), -EEXIST);
	CHECK_EQ_STR(err, want);
	CHECK_EQ_STR(read_all(path), content);
	CHECK_EQ_UINT(dir_entries(), before + 1);
	/* nor over a dangling symlink */
	char link_path[PATH_MAX + 8];
	snprintf(link_path, sizeof(link_path), "%s/dangling.keys", tmp_dir);
	CHECK_EQ_INT(symlink("nowhere", link_path), 0);
	CHECK_EQ_INT(tern_ticket_key_list_write(link_path, &l, NULL, err, sizeof(err)), -EEXIST);
	unlink(link_path);
	/* a directory that does not exist */
	snprintf(path, sizeof(path), "%s/no-such-dir/new.keys", tmp_dir);
	snprintf(want, sizeof(want), "%s: cannot create a temporary file next to it: %s", path, strerror(ENOENT));
	CHECK_EQ_INT(tern_ticket_key_list_write(path, &l, NULL, err, sizeof(err)), -ENOENT);
	CHECK_EQ_STR(err, want);
	tern_ticket_key_list_clear(&l);
	tern_ticket_key_list_clear(&back);
}

/* Writes the bare key of seed 1 to a new file of the given mode and
 * reads it as an edit would; returns its stat in st. */
static void old_file(char path[PATH_MAX], mode_t mode, struct stat *st)
{
	char line[256], err[512];
	struct tern_ticket_key_list l;
	write_file(path, key_line(line, 1), mode);
	CHECK_EQ_INT(tern_ticket_key_list_read(path, &l, st, err, sizeof(err)), 0);
	tern_ticket_key_list_clear(&l);
}

static void test_replace(void)
{
	struct tern_ticket_key_list l, back;
	char path[PATH_MAX], err[PATH_MAX + 256] = "", want[PATH_MAX + 256];
	struct stat st, after;

	three_keys(&l);
	/* 0640 stays 0640 (a group-readable deployment keeps working); 0600
	 * and 0400 become 0600 */
	static const struct {
		mode_t before, after;
	} modes[] = {{0640, 0640}, {0600, 0600}, {0400, 0600}, {0660, 0640}, {0700, 0600}};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		old_file(path, modes[i].before, &st);
		unsigned before = dir_entries();
		CHECK_EQ_INT(tern_ticket_key_list_write(path, &l, &st, err, sizeof(err)), 0);
		CHECK_EQ_UINT(mode_of(path), modes[i].after);
		CHECK_EQ_UINT(dir_entries(), before);
		CHECK_EQ_INT(tern_ticket_key_list_read(path, &back, &after, err, sizeof(err)), 0);
		CHECK_EQ_UINT(back.num_keys, 3);
		CHECK(after.st_ino != st.st_ino); /* a new file, renamed in */
	}

	/* as root, the owner and group stay the old file's */
	if (geteuid() == 0) {
		old_file(path, 0640, &st);
		CHECK_EQ_INT(chown(path, 4242, 4243), 0);
		CHECK_EQ_INT(stat(path, &st), 0);
		CHECK_EQ_INT(tern_ticket_key_list_write(path, &l, &st, err, sizeof(err)), 0);
		CHECK_EQ_INT(stat(path, &after), 0);
		CHECK_EQ_UINT(after.st_uid, 4242);
		CHECK_EQ_UINT(after.st_gid, 4243);
		CHECK_EQ_UINT(after.st_mode & 07777, 0640);
	}

	/* through a symlink: the target is replaced, the link stays a link */
	char link_path[PATH_MAX + 8];
	old_file(path, 0600, &st);
	snprintf(link_path, sizeof(link_path), "%s.link", path);
	CHECK_EQ_INT(symlink(path, link_path), 0);
	CHECK_EQ_INT(tern_ticket_key_list_write(link_path, &l, &st, err, sizeof(err)), 0);
	CHECK_EQ_INT(lstat(link_path, &after), 0);
	CHECK(S_ISLNK(after.st_mode));
	CHECK_EQ_INT(tern_ticket_key_list_read(path, &back, &after, err, sizeof(err)), 0);
	CHECK_EQ_UINT(back.num_keys, 3);

	/* another edit replaced the file after ours read it: ours writes
	 * nothing and says so */
	old_file(path, 0600, &st);
	char other[PATH_MAX];
	write_file(other, "# someone else's edit\n", 0600);
	CHECK_EQ_INT(rename(other, path), 0);
	unsigned before = dir_entries();
	snprintf(want, sizeof(want), "%s: changed while being edited; nothing written, run the command again",
		 path);
	CHECK_EQ_INT(tern_ticket_key_list_write(path, &l, &st, err, sizeof(err)), -EAGAIN);
	CHECK_EQ_STR(err, want);
	CHECK_EQ_STR(read_all(path), "# someone else's edit\n");
	CHECK_EQ_UINT(dir_entries(), before);
	/* or rewrote it in place */
	old_file(path, 0600, &st);
	FILE *f = fopen(path, "a");
	if (f) {
		fputs("\n", f);
		fclose(f);
	}
	CHECK_EQ_INT(tern_ticket_key_list_write(path, &l, &st, err, sizeof(err)), -EAGAIN);
	/* or removed it */
	unlink(path);
	CHECK_EQ_INT(tern_ticket_key_list_write(path, &l, &st, err, sizeof(err)), -ENOENT);
	tern_ticket_key_list_clear(&l);
	tern_ticket_key_list_clear(&back);
}

int main(void)
{
	test_tmp_dir_make(tmp_dir, sizeof(tmp_dir), "ticket_keys_write_test");
	test_format();
	test_create();
	test_replace();
	test_tmp_dir_remove(tmp_dir);
	return check_summary();
}
