/* Unit tests for src/cidr.c: --accept-proxy-from's address ranges. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "check.h"
#include "tern/cidr.h"

/* Parses text and formats it back: the text tern_cidr_format gives, or
 * "ERR" when it is refused. */
static const char *round_trip(const char *text)
{
	static char out[TERN_CIDR_TEXT_MAX];
	struct tern_cidr r;

	if (tern_cidr_parse(text, &r) < 0)
		return "ERR";
	tern_cidr_format(&r, out, sizeof(out));
	return out;
}

static void test_parse(void)
{
	CHECK_EQ_STR(round_trip("10.0.0.0/8"), "10.0.0.0/8");
	CHECK_EQ_STR(round_trip("0.0.0.0/0"), "0.0.0.0/0");
	CHECK_EQ_STR(round_trip("127.0.0.2/32"), "127.0.0.2/32");
	CHECK_EQ_STR(round_trip("127.0.0.2"), "127.0.0.2/32");
	CHECK_EQ_STR(round_trip("192.168.128.0/17"), "192.168.128.0/17");
	CHECK_EQ_STR(round_trip("::/0"), "::/0");
	CHECK_EQ_STR(round_trip("::1/128"), "::1/128");
	CHECK_EQ_STR(round_trip("::1"), "::1/128");
	CHECK_EQ_STR(round_trip("2001:db8::/32"), "2001:db8::/32");
	CHECK_EQ_STR(round_trip("2001:DB8::/33"), "2001:db8::/33");
	CHECK_EQ_STR(round_trip("::ffff:10.0.0.0/104"), "::ffff:10.0.0.0/104");

	static const char *const bad[] = {
		"",              "/8",          "10.0.0.0/",    "10.0.0.0/33",   "10.0.0.0/-1",
		"10.0.0.0/08",   "10.0.0.0/8/8", "10.0.0.0/ 8", "10.0.0.0/8 ",   " 10.0.0.0/8",
		"10.0.0.1/8",    "1.2.3.4/",    "1.2.3/24",     "256.0.0.0/8",   "01.2.3.4/32",
		"10.0.0.0/1000", "::/129",      "::1/127",      "2001:db8::1/32", "[::1]/128",
		"fe80::1%lo/128", "localhost",  "*",            "10.0.0.0/a",    "10.0.0.0/0x8",
		"2001:db8:::/48", "1.2.3.4/4294967328",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tern_cidr r;
		memset(&r, 0x5a, sizeof(r));
		if (!CHECK_EQ_INT(tern_cidr_parse(bad[i], &r), -EINVAL))
			fprintf(stderr, "    accepted '%s'\n", bad[i]);
		CHECK_EQ_UINT(r.family, 0x5a5a); /* untouched */
	}
}

static struct sockaddr_in sin4(const char *addr)
{
	struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(1234)};
	inet_pton(AF_INET, addr, &s.sin_addr);
	return s;
}

static struct sockaddr_in6 sin6(const char *addr)
{
	struct sockaddr_in6 s = {.sin6_family = AF_INET6, .sin6_port = htons(1234)};
	inet_pton(AF_INET6, addr, &s.sin6_addr);
	return s;
}

static bool in4(const char *range, const char *addr)
{
	struct tern_cidr r;
	struct sockaddr_in s = sin4(addr);
	return tern_cidr_parse(range, &r) == 0 && tern_cidr_match(&r, (struct sockaddr *)&s);
}

static bool in6(const char *range, const char *addr)
{
	struct tern_cidr r;
	struct sockaddr_in6 s = sin6(addr);
	return tern_cidr_parse(range, &r) == 0 && tern_cidr_match(&r, (struct sockaddr *)&s);
}

static void test_match(void)
{
	CHECK(in4("10.0.0.0/8", "10.0.0.0"));
	CHECK(in4("10.0.0.0/8", "10.255.255.255"));
	CHECK(!in4("10.0.0.0/8", "11.0.0.0"));
	CHECK(!in4("10.0.0.0/8", "9.255.255.255"));
	CHECK(in4("0.0.0.0/0", "203.0.113.9"));
	CHECK(in4("127.0.0.2/32", "127.0.0.2"));
	CHECK(!in4("127.0.0.2/32", "127.0.0.1"));
	CHECK(!in4("127.0.0.2/32", "127.0.0.3"));
	CHECK(in4("192.168.128.0/17", "192.168.255.1"));
	CHECK(!in4("192.168.128.0/17", "192.168.127.255"));
	CHECK(in4("127.0.0.0/31", "127.0.0.1"));
	CHECK(!in4("127.0.0.0/31", "127.0.0.2"));

	CHECK(in6("::/0", "2001:db8::1"));
	CHECK(in6("::1/128", "::1"));
	CHECK(!in6("::1/128", "::2"));
	CHECK(in6("2001:db8::/33", "2001:db8:7fff::1"));
	CHECK(!in6("2001:db8::/33", "2001:db8:8000::1"));
	/* Families apart: ::/0 is every IPv6 address, not IPv4's. */
	CHECK(!in4("::/0", "10.0.0.1"));
	CHECK(!in6("0.0.0.0/0", "2001:db8::1"));
	/* An IPv4 client on a [::] listener: matched as IPv4. */
	CHECK(in6("10.0.0.0/8", "::ffff:10.1.2.3"));
	CHECK(!in6("10.0.0.0/8", "::ffff:11.1.2.3"));
	CHECK(in6("0.0.0.0/0", "::ffff:127.0.0.1"));
	CHECK(!in6("::/0", "::ffff:127.0.0.1"));
	CHECK(!in6("::ffff:10.0.0.0/104", "::ffff:10.1.2.3"));

	/* Neither IPv4 nor IPv6: never allowed. */
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct sockaddr none = {.sa_family = AF_UNSPEC};
	struct tern_cidr all;
	CHECK(tern_cidr_parse("0.0.0.0/0", &all) == 0);
	CHECK(!tern_cidr_match(&all, (struct sockaddr *)&un));
	CHECK(!tern_cidr_match(&all, &none));

	/* A list: any one matching. */
	struct tern_cidr list[2];
	CHECK(tern_cidr_parse("10.0.0.0/8", &list[0]) == 0);
	CHECK(tern_cidr_parse("::1", &list[1]) == 0);
	struct sockaddr_in a = sin4("10.9.9.9"), b = sin4("127.0.0.1");
	struct sockaddr_in6 c = sin6("::1");
	CHECK(tern_cidr_match_any(list, 2, (struct sockaddr *)&a));
	CHECK(!tern_cidr_match_any(list, 2, (struct sockaddr *)&b));
	CHECK(tern_cidr_match_any(list, 2, (struct sockaddr *)&c));
	CHECK(!tern_cidr_match_any(list, 0, (struct sockaddr *)&a));
}

int main(void)
{
	test_parse();
	test_match();
	return check_summary();
}
