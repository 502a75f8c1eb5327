/* A tiny test helper: each CHECK records a pass or a failure (printed with
 * file:line and the values) and carries on, so one run shows every broken
 * case, not just the first. main() ends with `return check_summary();`.
 *
 * Header-only with static state: each test is one .c file and one
 * executable, so there is nothing to share. */
#ifndef TERN_TEST_CHECK_H
#define TERN_TEST_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static unsigned check_num_passed;
static unsigned check_num_failed;

static inline bool check_record(bool ok, const char *file, int line, const char *what)
{
	if (ok) {
		check_num_passed++;
	} else {
		check_num_failed++;
		fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
	}
	return ok;
}

static inline bool check_eq_int(long long got, long long want, const char *file, int line, const char *what)
{
	bool ok = got == want;
	if (!check_record(ok, file, line, what))
		fprintf(stderr, "    got %lld, want %lld\n", got, want);
	return ok;
}

static inline bool check_eq_uint(unsigned long long got, unsigned long long want, const char *file, int line,
				  const char *what)
{
	bool ok = got == want;
	if (!check_record(ok, file, line, what))
		fprintf(stderr, "    got %llu, want %llu\n", got, want);
	return ok;
}

/* NULL equals only NULL, so a missing string is a failure, not a crash. */
static inline bool check_eq_str(const char *got, const char *want, const char *file, int line, const char *what)
{
	bool ok = (got == NULL || want == NULL) ? got == want : strcmp(got, want) == 0;
	if (!check_record(ok, file, line, what))
		fprintf(stderr, "    got  \"%s\"\n    want \"%s\"\n", got != NULL ? got : "(null)",
			want != NULL ? want : "(null)");
	return ok;
}

/* Each evaluates its arguments once and returns whether the check held. */
#define CHECK(cond) check_record((cond), __FILE__, __LINE__, #cond)
#define CHECK_EQ_INT(got, want) check_eq_int((long long)(got), (long long)(want), __FILE__, __LINE__, #got " == " #want)
#define CHECK_EQ_UINT(got, want) \
	check_eq_uint((unsigned long long)(got), (unsigned long long)(want), __FILE__, __LINE__, #got " == " #want)
#define CHECK_EQ_STR(got, want) check_eq_str((got), (want), __FILE__, __LINE__, #got " == " #want)

/* Prints "N passed, N failed" on its own line; returns the exit code:
 * 0 when nothing failed, 1 otherwise. A test that checked nothing fails
 * too, so a test that silently skips everything cannot pass. */
static inline int check_summary(void)
{
	printf("%u passed, %u failed\n", check_num_passed, check_num_failed);
	fflush(stdout);
	return check_num_failed == 0 && check_num_passed > 0 ? 0 : 1;
}

#endif
