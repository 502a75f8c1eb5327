/* The watch (watch.c) with real files and real inotify in a temporary
 * directory, and a clock the test moves: what the configuration loads is
 * what is watched; nothing is due without a change; a rename over a
 * file, a write in place, a kubelet-style symlink swap and a file going
 * missing are each due once, after the settle time and not before; a
 * busy directory cannot postpone it past the cap; --reload-interval
 * alone sees a change on its timer; a reload by hand is the new
 * baseline; the list of changed paths is bounded. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "tern/config.h"
#include "tern/watch.h"
#include "tmp_dir.h"

static char dir[256]; /* short: paths built from it fit PATH_MAX */

static void path_in(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		return;
	}
	fputs(text, f);
	fclose(f);
}

/* Writes name.tmp and renames it over name, as an editor does. */
static void replace_file(const char *path, const char *text)
{
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	write_file(tmp, text);
	CHECK_EQ_INT(rename(tmp, path), 0);
}

static void test_config_paths(void)
{
	struct tern_config cfg;
	const char *paths[TERN_WATCH_MAX_PATHS];

	tern_config_init(&cfg);
	CHECK_EQ_UINT(tern_watch_config_paths(&cfg, paths, TERN_WATCH_MAX_PATHS), 0);
	cfg.certs[0] = (struct tern_cert_config){.cert_path = "a.pem", .ocsp_path = "a.ocsp"};
	cfg.certs[1] = (struct tern_cert_config){.cert_path = "b.crt", .key_path = "b.key"};
	cfg.num_certs = 2;
	cfg.client_ca_path = "ca.pem";
	cfg.ticket_keys_path = "t.keys";
	size_t n = tern_watch_config_paths(&cfg, paths, TERN_WATCH_MAX_PATHS);
	CHECK_EQ_UINT(n, 6);
	const char *want[] = {"a.pem", "a.ocsp", "b.crt", "b.key", "ca.pem", "t.keys"};
	for (size_t i = 0; i < n && i < 6; i++)
		CHECK_EQ_STR(paths[i], want[i]);
	CHECK_EQ_UINT(tern_watch_config_paths(&cfg, paths, 3), 3);
}

/* One change seen through inotify: nothing before the settle time, the
 * path at it, nothing after. */
static void expect_due_once(struct tern_watch *w, uint64_t *now, const char *path)
{
	char changed[256];

	tern_watch_readable(w, *now);
	CHECK_EQ_UINT(tern_watch_next(w), *now + TERN_WATCH_SETTLE_MS);
	CHECK(!tern_watch_due(w, *now + TERN_WATCH_SETTLE_MS - 1, changed, sizeof(changed)));
	*now += TERN_WATCH_SETTLE_MS;
	CHECK(tern_watch_due(w, *now, changed, sizeof(changed)));
	CHECK_EQ_STR(changed, path);
	CHECK_EQ_UINT(tern_watch_next(w), UINT64_MAX);
	*now += 1000;
	tern_watch_readable(w, *now); /* nothing left to read */
	CHECK(!tern_watch_due(w, *now + 10000, changed, sizeof(changed)));
}

static void test_inotify(void)
{
	char cert[PATH_MAX], key[PATH_MAX], changed[256];
	struct tern_watch *w = NULL;
	uint64_t now = 1000;

	path_in(cert, sizeof(cert), "cert.pem");
	path_in(key, sizeof(key), "key.pem");
	write_file(cert, "one");
	write_file(key, "key");
	const char *paths[] = {cert, key};
	CHECK_EQ_INT(tern_watch_new(paths, 2, true, 0, now, &w, changed, sizeof(changed)), 0);
	if (!CHECK(w != NULL))
		return;
	CHECK_EQ_STR(changed, ""); /* no reason to complain */
	CHECK(tern_watch_fd(w) >= 0);
	CHECK_EQ_UINT(tern_watch_next(w), UINT64_MAX);
	tern_watch_readable(w, now);
	CHECK(!tern_watch_due(w, now + 100000, changed, sizeof(changed)));

	/* An editor's rename. */
	replace_file(cert, "two");
	expect_due_once(w, &now, cert);
	/* A write in place: the same inode, new size. */
	write_file(key, "a longer key");
	expect_due_once(w, &now, key);
	/* An event for a file nobody loads: compared, nothing changed. */
	char other[PATH_MAX];
	path_in(other, sizeof(other), "unrelated");
	write_file(other, "x");
	tern_watch_readable(w, now);
	now += TERN_WATCH_SETTLE_MS;
	CHECK(!tern_watch_due(w, now, changed, sizeof(changed)));
	/* Gone, then back: each a change. */
	CHECK_EQ_INT(unlink(cert), 0);
	expect_due_once(w, &now, cert);
	write_file(cert, "three");
	expect_due_once(w, &now, cert);

	/* A busy directory: events every 200 ms never leave it quiet for the
	 * settle time, and the cap ends the wait. */
	uint64_t first = now;
	for (int i = 0; i < 20; i++) {
		char text[16];
		snprintf(text, sizeof(text), "busy %d", i);
		write_file(other, text);
		tern_watch_readable(w, now);
		if (now >= first + TERN_WATCH_SETTLE_MAX_MS)
			break;
		CHECK(!tern_watch_due(w, now, changed, sizeof(changed)));
		now += 200;
	}
	CHECK_EQ_UINT(tern_watch_next(w), first + TERN_WATCH_SETTLE_MAX_MS);
	replace_file(cert, "four");
	CHECK(tern_watch_due(w, first + TERN_WATCH_SETTLE_MAX_MS, changed, sizeof(changed)));
	CHECK_EQ_STR(changed, cert);

	/* A reload by hand read both files: the next look finds nothing. */
	replace_file(key, "five");
	tern_watch_readable(w, now);
	tern_watch_loaded(w);
	CHECK(!tern_watch_due(w, now + TERN_WATCH_SETTLE_MAX_MS, changed, sizeof(changed)));
	tern_watch_free(w);
}

/* The kubelet's Secret volume: FILE -> ..data/FILE, ..data -> ..STAMP;
 * an update renames a new ..data link over the old one. */
static void test_symlink_swap(void)
{
	char vol[PATH_MAX], path[PATH_MAX + 16], target[PATH_MAX + 32], link_tmp[PATH_MAX + 16];
	char data[PATH_MAX + 16], changed[256];
	struct tern_watch *w = NULL;
	uint64_t now = 5000;

	path_in(vol, sizeof(vol), "secret");
	CHECK_EQ_INT(mkdir(vol, 0700), 0);
	for (int i = 1; i <= 2; i++) {
		snprintf(target, sizeof(target), "%s/..stamp%d", vol, i);
		CHECK_EQ_INT(mkdir(target, 0700), 0);
		snprintf(target, sizeof(target), "%s/..stamp%d/tls.pem", vol, i);
		write_file(target, i == 1 ? "first" : "second");
	}
	snprintf(data, sizeof(data), "%s/..data", vol);
	CHECK_EQ_INT(symlink("..stamp1", data), 0);
	snprintf(path, sizeof(path), "%s/tls.pem", vol);
	CHECK_EQ_INT(symlink("..data/tls.pem", path), 0);
	const char *paths[] = {path};
	CHECK_EQ_INT(tern_watch_new(paths, 1, true, 0, now, &w, changed, sizeof(changed)), 0);
	if (!CHECK(w != NULL))
		return;
	snprintf(link_tmp, sizeof(link_tmp), "%s/..data_tmp", vol);
	CHECK_EQ_INT(symlink("..stamp2", link_tmp), 0);
	CHECK_EQ_INT(rename(link_tmp, data), 0);
	expect_due_once(w, &now, path);
	/* An edit of the target where it now lives: its directory is
	 * watched since the swap. */
	snprintf(target, sizeof(target), "%s/..stamp2/tls.pem", vol);
	write_file(target, "second, edited");
	expect_due_once(w, &now, path);
	tern_watch_free(w);
}

/* --watch off --reload-interval: no inotify, a look per interval. */
static void test_interval_only(void)
{
	char cert[PATH_MAX], changed[256];
	struct tern_watch *w = NULL;
	uint64_t now = 100;

	path_in(cert, sizeof(cert), "interval.pem");
	write_file(cert, "one");
	const char *paths[] = {cert};
	CHECK_EQ_INT(tern_watch_new(paths, 1, false, 500, now, &w, changed, sizeof(changed)), 0);
	if (!CHECK(w != NULL))
		return;
	CHECK_EQ_INT(tern_watch_fd(w), -1);
	CHECK_EQ_UINT(tern_watch_next(w), 600);
	CHECK(!tern_watch_due(w, 599, changed, sizeof(changed)));
	CHECK(!tern_watch_due(w, 600, changed, sizeof(changed))); /* unchanged */
	CHECK_EQ_UINT(tern_watch_next(w), 1100);
	replace_file(cert, "two");
	CHECK(!tern_watch_due(w, 1099, changed, sizeof(changed)));
	CHECK(tern_watch_due(w, 1100, changed, sizeof(changed)));
	CHECK_EQ_STR(changed, cert);
	CHECK_EQ_UINT(tern_watch_next(w), 1600);
	tern_watch_free(w);

	/* Neither: nothing is ever due. */
	CHECK_EQ_INT(tern_watch_new(paths, 1, false, 0, now, &w, changed, sizeof(changed)), 0);
	replace_file(cert, "three");
	CHECK_EQ_UINT(tern_watch_next(w), UINT64_MAX);
	CHECK(!tern_watch_due(w, UINT64_MAX - 1, changed, sizeof(changed)));
	tern_watch_free(w);
}

/* Many changed paths: the list ends in "..." within its bound. */
static void test_changed_list_bounded(void)
{
	char names[8][PATH_MAX], changed[64];
	const char *paths[8];
	struct tern_watch *w = NULL;

	for (int i = 0; i < 8; i++) {
		char name[32];
		snprintf(name, sizeof(name), "many-%d.pem", i);
		path_in(names[i], sizeof(names[i]), name);
		write_file(names[i], "old");
		paths[i] = names[i];
	}
	CHECK_EQ_INT(tern_watch_new(paths, 8, false, 100, 0, &w, changed, sizeof(changed)), 0);
	for (int i = 0; i < 8; i++)
		replace_file(names[i], "new");
	CHECK(tern_watch_due(w, 100, changed, sizeof(changed)));
	CHECK_EQ_UINT(strlen(changed), sizeof(changed) - 1);
	CHECK(strcmp(changed + sizeof(changed) - 4, "...") == 0);
	CHECK(strncmp(changed, names[0], strlen(names[0])) == 0);
	tern_watch_free(w);
}

int main(void)
{
	test_tmp_dir_make(dir, sizeof(dir), "tern-watch-test");
	test_config_paths();
	test_inotify();
	test_symlink_swap();
	test_interval_only();
	test_changed_list_bounded();
	test_tmp_dir_remove(dir);
	return check_summary();
}
