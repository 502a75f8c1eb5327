/* Unit tests for src/build_info.c: `tern -vv`'s lines with a fake io_uring
 * probe that allows it and one that refuses it, and the kTLS module's
 * name found in tcp_available_ulp's list. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tern/build_info.h"

static int probe_ok(const char *user, bool need_buffers, char *why, size_t why_len)
{
	(void)user;
	(void)need_buffers;
	snprintf(why, why_len, "%s", "");
	return 0;
}

static int probe_refused(const char *user, bool need_buffers, char *why, size_t why_len)
{
	(void)user;
	(void)need_buffers;
	snprintf(why, why_len, "%s", "Operation not permitted");
	return -EPERM;
}

static char *print(tern_io_probe_fn *probe, bool need_buffers)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!CHECK(f != NULL))
		return NULL;
	tern_build_info_print(f, probe, need_buffers);
	fclose(f);
	return text;
}

/* The line starting with prefix, whole (without "\n"), into out. */
static bool line_of(const char *text, const char *prefix, char *out, size_t out_len)
{
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, prefix, strlen(prefix)) == 0) {
			snprintf(out, out_len, "%.*s", (int)strcspn(p, "\n"), p);
			return true;
		}
	}
	return false;
}

static void test_print(void)
{
	char line[512];
	char *ok = print(probe_ok, true);
	char *refused = print(probe_refused, false);

	if (ok) {
		CHECK(strncmp(ok, "tern " TERN_VERSION "\n", strlen("tern " TERN_VERSION "\n")) == 0);
		static const char *const keys[] = {"openssl: OpenSSL 3.", "liburing: ", "kernel: Linux ",
						   "io_uring: ", "io: ", "ktls: "};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (!CHECK(line_of(ok, keys[i], line, sizeof(line))))
				fprintf(stderr, "    no line %s in:\n%s", keys[i], ok);
		CHECK(line_of(ok, "openssl: ", line, sizeof(line)) && strstr(line, "(built against OpenSSL 3."));
		CHECK(line_of(ok, "io_uring: ", line, sizeof(line)) &&
		      strcmp(line, "io_uring: works (a ring with the workers' flags, a provided buffer "
				   "ring, multishot accept)") == 0);
		CHECK(line_of(ok, "io: ", line, sizeof(line)) &&
		      strcmp(line, "io: --io auto would run uring") == 0);
		CHECK(line_of(ok, "ktls: ", line, sizeof(line)) &&
		      strncmp(line, "ktls: not used by tern; OpenSSL built with", 42) == 0);
	}
	if (refused) {
		CHECK(line_of(refused, "io_uring: ", line, sizeof(line)) &&
		      strcmp(line, "io_uring: refused: Operation not permitted") == 0);
		CHECK(line_of(refused, "io: ", line, sizeof(line)) &&
		      strcmp(line, "io: --io auto would run epoll") == 0);
	}
	free(ok);
	free(refused);
}

static void test_ulp(void)
{
	CHECK(tern_build_info_ulp_has_tls("tls", 3));
	CHECK(tern_build_info_ulp_has_tls("mptcp tls\n", 10));
	CHECK(tern_build_info_ulp_has_tls("tls espintcp", 12));
	CHECK(!tern_build_info_ulp_has_tls("mptcp\n", 6));
	CHECK(!tern_build_info_ulp_has_tls("tlsx xtls", 9));
	CHECK(!tern_build_info_ulp_has_tls("", 0));
	CHECK(!tern_build_info_ulp_has_tls("tls", 2)); /* len bytes only */
}

int main(void)
{
	test_print();
	test_ulp();
	return check_summary();
}
