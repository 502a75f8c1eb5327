/* What the proxy/cli.c tests share: one config and error buffer, a parse
 * of "tern ARGS..." into them, the macros that expect a run or an exact
 * error, and a check of a parsed IP address. Header-only with static
 * state, like check.h: each test is one .c file and one executable. */
#ifndef TERN_TEST_CLI_FIXTURE_H
#define TERN_TEST_CLI_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "cli.h"
#include "tern/config.h"

/* 80 KiB: kept out of the stack frames of the many macro expansions. */
static struct tern_config cfg;
static char err[TERN_CLI_ERR_MAX];

static inline int parse(int argc, char **argv)
{
	tern_config_init(&cfg);
	memset(err, 0, sizeof(err));
	return tern_cli_parse(argc, argv, &cfg, err, sizeof(err));
}

/* Parses "tern ARGS..."; the argv array is writable, as getopt_long()
 * reorders it. */
#define PARSE(...)                                                         \
	parse((int)(sizeof((char *[]){"tern", __VA_ARGS__}) / sizeof(char *)), \
	      (char *[]){"tern", __VA_ARGS__, NULL})

/* The arguments must be refused with exactly this message. */
#define EXPECT_ERR(want, ...)                                 \
	do {                                                  \
		CHECK_EQ_INT(PARSE(__VA_ARGS__), -EINVAL);    \
		CHECK_EQ_STR(err, (want));                    \
		CHECK(strchr(err, '\n') == NULL);             \
	} while (0)

#define EXPECT_RUN(...)                                                \
	do {                                                           \
		CHECK_EQ_INT(PARSE(__VA_ARGS__), TERN_CLI_RUN);        \
		CHECK_EQ_STR(err, "");                                 \
	} while (0)

static inline void check_inet(const struct tern_addr *a, int family, const char *want_ip, unsigned want_port)
{
	char ip[INET6_ADDRSTRLEN] = "";
	unsigned port;

	if (!CHECK_EQ_INT(a->ss.ss_family, family))
		return;
	if (family == AF_INET) {
		struct sockaddr_in sin;
		memcpy(&sin, &a->ss, sizeof(sin));
		CHECK(inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip)) != NULL);
		port = ntohs(sin.sin_port);
	} else {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, &a->ss, sizeof(sin6));
		CHECK(inet_ntop(AF_INET6, &sin6.sin6_addr, ip, sizeof(ip)) != NULL);
		port = ntohs(sin6.sin6_port);
	}
	CHECK_EQ_STR(ip, want_ip);
	CHECK_EQ_UINT(port, want_port);
}

#endif
