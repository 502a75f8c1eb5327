/* A unit test's own temporary directory: made under $TMPDIR (or /tmp) as
 * NAME.XXXXXX, and removed with everything in it at the end. */
#ifndef TERN_TEST_TMP_DIR_H
#define TERN_TEST_TMP_DIR_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* Fills dir (len bytes) with the new directory's path; exits on failure,
 * as a test without its directory cannot check anything. */
static inline void test_tmp_dir_make(char *dir, size_t len, const char *name)
{
	const char *base = getenv("TMPDIR");
	snprintf(dir, len, "%s/%s.XXXXXX", base && *base ? base : "/tmp", name);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
}

static inline void test_tmp_dir_remove(const char *dir)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

#endif
