/* Unit tests for src/parse.c: every accepted form, every refusal with the
 * right error (-EINVAL for a malformed value, -ERANGE for a well-formed one
 * out of bounds), the bounds themselves and overflow. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>

#include "check.h"
#include "tern/parse.h"

#define MS_PER_DAY (24ull * 60 * 60 * 1000)

/* Accepted: the value comes out in milliseconds. */
#define DURATION_OK(text, allow_zero, want)                                     \
	do {                                                                    \
		uint64_t ms_ = 12345;                                           \
		CHECK_EQ_INT(tern_parse_duration_ms((text), (allow_zero), &ms_), 0); \
		CHECK_EQ_UINT(ms_, (want));                                     \
	} while (0)

/* Refused with rc, and the output left untouched. */
#define DURATION_BAD(text, allow_zero, rc)                                      \
	do {                                                                    \
		uint64_t ms_ = 12345;                                           \
		CHECK_EQ_INT(tern_parse_duration_ms((text), (allow_zero), &ms_), (rc)); \
		CHECK_EQ_UINT(ms_, 12345);                                      \
	} while (0)

static void test_duration(void)
{
	DURATION_OK("250ms", false, 250);
	DURATION_OK("1500ms", false, 1500);
	DURATION_OK("1ms", false, 1);
	DURATION_OK("30s", false, 30000);
	DURATION_OK("5m", false, 300000);
	DURATION_OK("2h", false, 7200000);
	DURATION_OK("007s", false, 7000);

	/* The bound is 30 days, in every unit, inclusive. */
	DURATION_OK("720h", false, 30 * MS_PER_DAY);
	DURATION_OK("43200m", false, 30 * MS_PER_DAY);
	DURATION_OK("2592000s", false, 30 * MS_PER_DAY);
	DURATION_OK("2592000000ms", false, 30 * MS_PER_DAY);
	DURATION_BAD("721h", false, -ERANGE);
	DURATION_BAD("43201m", false, -ERANGE);
	DURATION_BAD("2592001s", false, -ERANGE);
	DURATION_BAD("2592000001ms", false, -ERANGE);

	/* Overflow is out of range, never a wrapped small value. */
	DURATION_BAD("99999999999999999999ms", false, -ERANGE);
	DURATION_BAD("18446744073709551615ms", false, -ERANGE);
	DURATION_BAD("18446744073709551616ms", false, -ERANGE);
	DURATION_BAD("18446744073709551617ms", false, -ERANGE);
	DURATION_BAD("5124095576030431h", false, -ERANGE); /* * 3600000 wraps 2^64 */
	DURATION_BAD("99999999999999999999999999999999999999h", false, -ERANGE);

	/* Zero: a bare "0" only where zero is allowed; with a unit, zero is
	 * well formed but out of range unless allowed. */
	DURATION_OK("0", true, 0);
	DURATION_OK("0s", true, 0);
	DURATION_OK("0ms", true, 0);
	DURATION_OK("0h", true, 0);
	DURATION_BAD("0", false, -EINVAL);
	DURATION_BAD("0s", false, -ERANGE);
	DURATION_BAD("0ms", false, -ERANGE);
	DURATION_BAD("0m", false, -ERANGE);

	/* A bare number is refused: seconds or milliseconds? */
	DURATION_BAD("10", false, -EINVAL);
	DURATION_BAD("10", true, -EINVAL);
	DURATION_BAD("1", true, -EINVAL);

	/* Not of the form. */
	DURATION_BAD("1.5s", false, -EINVAL);
	DURATION_BAD("1,5s", false, -EINVAL);
	DURATION_BAD("", false, -EINVAL);
	DURATION_BAD("", true, -EINVAL);
	DURATION_BAD("s", false, -EINVAL);
	DURATION_BAD("ms", false, -EINVAL);
	DURATION_BAD("-5s", false, -EINVAL);
	DURATION_BAD("+5s", false, -EINVAL);
	DURATION_BAD(" 5s", false, -EINVAL);
	DURATION_BAD("5s ", false, -EINVAL);
	DURATION_BAD("5 s", false, -EINVAL);
	DURATION_BAD("5sec", false, -EINVAL);
	DURATION_BAD("5S", false, -EINVAL);
	DURATION_BAD("5MS", false, -EINVAL);
	DURATION_BAD("1d", false, -EINVAL);
	DURATION_BAD("5us", false, -EINVAL);
	DURATION_BAD("5ns", false, -EINVAL);
	DURATION_BAD("5mss", false, -EINVAL);
	DURATION_BAD("1h30m", false, -EINVAL);
	DURATION_BAD("0x10s", false, -EINVAL);
	DURATION_BAD("1e3ms", false, -EINVAL);
	/* Malformed wins over out of range: the text is wrong first. */
	DURATION_BAD("99999999999999999999", false, -EINVAL);
	DURATION_BAD("99999999999999999999x", false, -EINVAL);
	DURATION_BAD(NULL, true, -EINVAL);
}

#define SIZE_OK(text, min, max, want)                                      \
	do {                                                               \
		size_t n_ = 777;                                           \
		CHECK_EQ_INT(tern_parse_size((text), (min), (max), &n_), 0); \
		CHECK_EQ_UINT(n_, (want));                                 \
	} while (0)

#define SIZE_BAD(text, min, max, rc)                                         \
	do {                                                                 \
		size_t n_ = 777;                                             \
		CHECK_EQ_INT(tern_parse_size((text), (min), (max), &n_), (rc)); \
		CHECK_EQ_UINT(n_, 777);                                      \
	} while (0)

static void test_size(void)
{
	const size_t lo = TERN_MIN_BUFFER_SIZE, hi = TERN_MAX_BUFFER_SIZE;

	SIZE_OK("16k", lo, hi, 16384);
	SIZE_OK("16K", lo, hi, 16384);
	SIZE_OK("1m", lo, hi, 1048576);
	SIZE_OK("1M", lo, hi, 1048576);
	SIZE_OK("4096", lo, hi, 4096);
	SIZE_OK("1g", 0, SIZE_MAX, 1073741824);
	SIZE_OK("1G", 0, SIZE_MAX, 1073741824);
	SIZE_OK("0", 0, 10, 0);
	SIZE_OK("0k", 0, 10, 0);

	/* Bounds inclusive, in each spelling. */
	SIZE_OK("1k", lo, hi, 1024);
	SIZE_OK("1024", lo, hi, 1024);
	SIZE_OK("16m", lo, hi, 16777216);
	SIZE_OK("16384k", lo, hi, 16777216);
	SIZE_OK("16777216", lo, hi, 16777216);
	SIZE_BAD("1023", lo, hi, -ERANGE);
	SIZE_BAD("0", lo, hi, -ERANGE);
	SIZE_BAD("0k", lo, hi, -ERANGE);
	SIZE_BAD("16777217", lo, hi, -ERANGE);
	SIZE_BAD("16385k", lo, hi, -ERANGE);
	SIZE_BAD("17m", lo, hi, -ERANGE);
	SIZE_BAD("1g", lo, hi, -ERANGE);

	/* Overflow, with and without a suffix. */
	SIZE_BAD("99999999999999999999", 0, SIZE_MAX, -ERANGE);
	SIZE_BAD("18446744073709551616", 0, SIZE_MAX, -ERANGE);
	SIZE_OK("18446744073709551615", 0, SIZE_MAX, SIZE_MAX);
	SIZE_BAD("18014398509481984k", 0, SIZE_MAX, -ERANGE); /* 2^54 * 2^10 */
	SIZE_OK("18014398509481983k", 0, SIZE_MAX, 18014398509481983ull * 1024);
	SIZE_BAD("17179869184g", 0, SIZE_MAX, -ERANGE); /* 2^34 * 2^30 */
	SIZE_BAD("99999999999999999999g", 0, SIZE_MAX, -ERANGE);

	/* Not of the form. */
	SIZE_BAD("", lo, hi, -EINVAL);
	SIZE_BAD("k", lo, hi, -EINVAL);
	SIZE_BAD("16kb", lo, hi, -EINVAL);
	SIZE_BAD("16KiB", lo, hi, -EINVAL);
	SIZE_BAD("16kk", lo, hi, -EINVAL);
	SIZE_BAD("16t", lo, hi, -EINVAL);
	SIZE_BAD("1.5m", lo, hi, -EINVAL);
	SIZE_BAD("-16k", lo, hi, -EINVAL);
	SIZE_BAD("+16k", lo, hi, -EINVAL);
	SIZE_BAD(" 16k", lo, hi, -EINVAL);
	SIZE_BAD("16k ", lo, hi, -EINVAL);
	SIZE_BAD("16 k", lo, hi, -EINVAL);
	SIZE_BAD("0x4000", lo, hi, -EINVAL);
	SIZE_BAD(NULL, lo, hi, -EINVAL);
}

#define UINT_OK(text, min, max, want)                                      \
	do {                                                               \
		unsigned long n_ = 777;                                    \
		CHECK_EQ_INT(tern_parse_uint((text), (min), (max), &n_), 0); \
		CHECK_EQ_UINT(n_, (want));                                 \
	} while (0)

#define UINT_BAD(text, min, max, rc)                                         \
	do {                                                                 \
		unsigned long n_ = 777;                                      \
		CHECK_EQ_INT(tern_parse_uint((text), (min), (max), &n_), (rc)); \
		CHECK_EQ_UINT(n_, 777);                                      \
	} while (0)

static void test_uint(void)
{
	UINT_OK("1", 1, 1024, 1);
	UINT_OK("1024", 1, 1024, 1024);
	UINT_OK("01024", 1, 1024, 1024);
	UINT_OK("0", 0, 10, 0);
	UINT_OK("18446744073709551615", 0, ULONG_MAX, ULONG_MAX);
	UINT_BAD("0", 1, 1024, -ERANGE);
	UINT_BAD("1025", 1, 1024, -ERANGE);
	UINT_BAD("7", 8, 32768, -ERANGE);
	UINT_BAD("18446744073709551616", 0, ULONG_MAX, -ERANGE);
	UINT_BAD("99999999999999999999", 1, 1024, -ERANGE);
	UINT_BAD("", 1, 1024, -EINVAL);
	UINT_BAD("abc", 1, 1024, -EINVAL);
	UINT_BAD("4k", 1, 1024, -EINVAL);
	UINT_BAD("-1", 0, 1024, -EINVAL);
	UINT_BAD("+1", 0, 1024, -EINVAL);
	UINT_BAD(" 1", 0, 1024, -EINVAL);
	UINT_BAD("1 ", 0, 1024, -EINVAL);
	UINT_BAD("1.0", 0, 1024, -EINVAL);
	UINT_BAD("0x10", 0, 1024, -EINVAL);
	UINT_BAD("99999999999999999999x", 1, 1024, -EINVAL);
	UINT_BAD(NULL, 0, 1024, -EINVAL);
}

static void check_inet(const struct tern_addr *a, const char *want_ip, unsigned want_port)
{
	struct sockaddr_in sin;
	char ip[INET_ADDRSTRLEN] = "";

	if (!CHECK_EQ_INT(a->ss.ss_family, AF_INET))
		return;
	CHECK_EQ_UINT(a->ss_len, sizeof(struct sockaddr_in));
	memcpy(&sin, &a->ss, sizeof(sin));
	CHECK(inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip)) != NULL);
	CHECK_EQ_STR(ip, want_ip);
	CHECK_EQ_UINT(ntohs(sin.sin_port), want_port);
}

static void check_inet6(const struct tern_addr *a, const char *want_ip, unsigned want_port)
{
	struct sockaddr_in6 sin6;
	char ip[INET6_ADDRSTRLEN] = "";

	if (!CHECK_EQ_INT(a->ss.ss_family, AF_INET6))
		return;
	CHECK_EQ_UINT(a->ss_len, sizeof(struct sockaddr_in6));
	memcpy(&sin6, &a->ss, sizeof(sin6));
	CHECK(inet_ntop(AF_INET6, &sin6.sin6_addr, ip, sizeof(ip)) != NULL);
	CHECK_EQ_STR(ip, want_ip);
	CHECK_EQ_UINT(ntohs(sin6.sin6_port), want_port);
}

/* Refused with rc and *out untouched (checked through its text). */
#define ADDR_BAD(text_, allow_unix_, rc_)                                          \
	do {                                                                    \
		struct tern_addr a_;                                            \
		memset(&a_, 0, sizeof(a_));                                     \
		memcpy(a_.text, "untouched", sizeof("untouched"));              \
		CHECK_EQ_INT(tern_parse_addr((text_), (allow_unix_), &a_), (rc_)); \
		CHECK_EQ_STR(a_.text, "untouched");                             \
		CHECK_EQ_INT(a_.ss_len, 0);                                     \
	} while (0)

/* A token read in place: exactly its bytes, digits only, no overflow. */
static void test_u64_span(void)
{
	uint64_t v = 7;

	CHECK(tern_parse_u64("12 34", 2, &v));
	CHECK_EQ_UINT(v, 12);
	CHECK(tern_parse_u64("18446744073709551615", 20, &v));
	CHECK(v == UINT64_MAX);
	v = 7;
	CHECK(!tern_parse_u64("18446744073709551616", 20, &v));
	CHECK(!tern_parse_u64("", 0, &v));
	CHECK(!tern_parse_u64("12 34", 3, &v));
	CHECK(!tern_parse_u64("-1", 2, &v));
	CHECK(!tern_parse_u64("+1", 2, &v));
	CHECK_EQ_UINT(v, 7);
}

static void test_addr_ipv4(void)
{
	struct tern_addr a;

	CHECK_EQ_INT(tern_parse_addr("127.0.0.1:8080", false, &a), 0);
	check_inet(&a, "127.0.0.1", 8080);
	CHECK_EQ_STR(a.text, "127.0.0.1:8080");

	CHECK_EQ_INT(tern_parse_addr("0.0.0.0:8443", true, &a), 0);
	check_inet(&a, "0.0.0.0", 8443);

	CHECK_EQ_INT(tern_parse_addr("*:443", false, &a), 0);
	check_inet(&a, "0.0.0.0", 443);
	CHECK_EQ_STR(a.text, "*:443");

	CHECK_EQ_INT(tern_parse_addr("192.0.2.1:1", false, &a), 0);
	check_inet(&a, "192.0.2.1", 1);
	CHECK_EQ_INT(tern_parse_addr("255.255.255.255:65535", false, &a), 0);
	check_inet(&a, "255.255.255.255", 65535);

	/* Port bounds: 0 and 65536 are well formed but out of range. */
	ADDR_BAD("127.0.0.1:0", false, -ERANGE);
	ADDR_BAD("127.0.0.1:65536", false, -ERANGE);
	ADDR_BAD("127.0.0.1:99999999999999999999", false, -ERANGE);
	ADDR_BAD("*:0", false, -ERANGE);

	ADDR_BAD("127.0.0.1", false, -EINVAL);
	ADDR_BAD("127.0.0.1:", false, -EINVAL);
	ADDR_BAD("127.0.0.1:http", false, -EINVAL);
	ADDR_BAD("127.0.0.1:-1", false, -EINVAL);
	ADDR_BAD("127.0.0.1:+80", false, -EINVAL);
	ADDR_BAD("127.0.0.1: 80", false, -EINVAL);
	ADDR_BAD("127.0.0.1:80 ", false, -EINVAL);
	ADDR_BAD(":8080", false, -EINVAL);
	ADDR_BAD("8080", false, -EINVAL);
	ADDR_BAD("", false, -EINVAL);
	ADDR_BAD("", true, -EINVAL);
	ADDR_BAD(":", false, -EINVAL);
	ADDR_BAD(" 127.0.0.1:80", false, -EINVAL);
	ADDR_BAD("127.0.0.1 junk:80", false, -EINVAL);
	ADDR_BAD("local\nhost:80", false, -EINVAL);
	ADDR_BAD("**:80", false, -EINVAL);
	ADDR_BAD(NULL, true, -EINVAL);
}

static void test_addr_ipv6(void)
{
	struct tern_addr a;

	CHECK_EQ_INT(tern_parse_addr("[::1]:8443", false, &a), 0);
	check_inet6(&a, "::1", 8443);
	CHECK_EQ_STR(a.text, "[::1]:8443");

	CHECK_EQ_INT(tern_parse_addr("[::]:443", false, &a), 0);
	check_inet6(&a, "::", 443);

	CHECK_EQ_INT(tern_parse_addr("[2001:db8::17]:65535", true, &a), 0);
	check_inet6(&a, "2001:db8::17", 65535);

	CHECK_EQ_INT(tern_parse_addr("[::ffff:192.0.2.1]:80", false, &a), 0);
	check_inet6(&a, "::ffff:192.0.2.1", 80);

	ADDR_BAD("[::1]:0", false, -ERANGE);
	ADDR_BAD("[::1]:65536", false, -ERANGE);

	/* Without brackets an IPv6 address cannot be told from its port. */
	ADDR_BAD("::1:8443", false, -EINVAL);
	ADDR_BAD("2001:db8::1:80", false, -EINVAL);
	ADDR_BAD("[::1]", false, -EINVAL);
	ADDR_BAD("[::1]:", false, -EINVAL);
	ADDR_BAD("[::1]8443", false, -EINVAL);
	ADDR_BAD("[::1:8443", false, -EINVAL);
	ADDR_BAD("[]:8443", false, -EINVAL);
	ADDR_BAD("[::g]:8443", false, -EINVAL);
	ADDR_BAD("[1.2.3.4]:80", false, -EINVAL);
	ADDR_BAD("[localhost]:80", false, -EINVAL);
	ADDR_BAD("[*]:80", false, -EINVAL);
}

static void test_addr_unix(void)
{
	struct tern_addr a;
	struct sockaddr_un sun;
	char text[200], path[sizeof(sun.sun_path) + 1];

	CHECK_EQ_INT(tern_parse_addr("unix:/run/app.sock", true, &a), 0);
	CHECK_EQ_INT(a.ss.ss_family, AF_UNIX);
	memcpy(&sun, &a.ss, sizeof(sun));
	CHECK_EQ_STR(sun.sun_path, "/run/app.sock");
	CHECK_EQ_UINT(a.ss_len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/app.sock") + 1);
	CHECK_EQ_STR(a.text, "unix:/run/app.sock");

	/* A relative path is taken as connect(2) would take it. */
	CHECK_EQ_INT(tern_parse_addr("unix:app.sock", true, &a), 0);
	CHECK_EQ_INT(a.ss.ss_family, AF_UNIX);

	/* The longest path that fits sun_path with its NUL, and one more. */
	memset(path, 'p', sizeof(sun.sun_path) - 1);
	path[0] = '/';
	path[sizeof(sun.sun_path) - 1] = '\0';
	snprintf(text, sizeof(text), "unix:%s", path);
	CHECK_EQ_INT(tern_parse_addr(text, true, &a), 0);
	memcpy(&sun, &a.ss, sizeof(sun));
	CHECK_EQ_UINT(strnlen(sun.sun_path, sizeof(sun.sun_path)), sizeof(sun.sun_path) - 1);
	CHECK_EQ_UINT(a.ss_len, sizeof(struct sockaddr_un));
	CHECK_EQ_STR(a.text, text);

	path[sizeof(sun.sun_path) - 1] = 'p';
	path[sizeof(sun.sun_path)] = '\0';
	snprintf(text, sizeof(text), "unix:%s", path);
	ADDR_BAD(text, true, -ERANGE);

	ADDR_BAD("unix:", true, -EINVAL);
	ADDR_BAD("unix:/run/app.sock", false, -EINVAL);
	ADDR_BAD("unix:", false, -EINVAL);
	/* Not the prefix: an ordinary (unresolvable, malformed) host. */
	ADDR_BAD("UNIX:/x", true, -EINVAL);
}

static void test_addr_names(void)
{
	struct tern_addr a;

	/* "localhost" resolves from /etc/hosts, to 127.0.0.1 or ::1 depending
	 * on the system's order; the first result is taken. */
	CHECK_EQ_INT(tern_parse_addr("localhost:9000", false, &a), 0);
	if (a.ss.ss_family == AF_INET6)
		check_inet6(&a, "::1", 9000);
	else
		check_inet(&a, "127.0.0.1", 9000);
	CHECK_EQ_STR(a.text, "localhost:9000");

	/* The .invalid top-level domain never resolves (RFC 6761 section
	 * 6.4): well formed, so neither -EINVAL nor -ERANGE. */
	ADDR_BAD("nosuch.invalid:80", true, -ENOENT);
	ADDR_BAD("nosuch.invalid:0", true, -ERANGE);
	ADDR_BAD("nosuch.invalid:x", true, -EINVAL);

	/* A name longer than DNS allows (a 174-byte label) never resolves. */
	char text[TERN_ADDR_TEXT_MAX + 50];
	size_t len = sizeof(text) - 1;
	memset(text, 'a', len);
	memcpy(text + len - 3, ":80", 4);
	int rc = tern_parse_addr(text, false, &a);
	CHECK(rc == -ENOENT || rc == -EINVAL);

	/* out->text keeps what fits of a long text, NUL-terminated. Here a
	 * legal address longer than TERN_ADDR_TEXT_MAX: an IPv4 literal with
	 * a long run of leading zeros in the port. */
	char long_text[TERN_ADDR_TEXT_MAX + 20];
	int n = snprintf(long_text, sizeof(long_text), "10.0.0.1:");
	memset(long_text + n, '0', sizeof(long_text) - (size_t)n - 3);
	memcpy(long_text + sizeof(long_text) - 3, "80", 3);
	CHECK_EQ_INT(tern_parse_addr(long_text, false, &a), 0);
	check_inet(&a, "10.0.0.1", 80);
	CHECK_EQ_UINT(strlen(a.text), TERN_ADDR_TEXT_MAX - 1);
	CHECK(memcmp(a.text, long_text, TERN_ADDR_TEXT_MAX - 1) == 0);
}

static void test_tls_version(void)
{
	enum tern_tls_version v = TERN_TLS_1_3;

	CHECK_EQ_INT(tern_parse_tls_version("1.2", &v), 0);
	CHECK_EQ_INT(v, TERN_TLS_1_2);
	CHECK_EQ_INT(tern_parse_tls_version("1.3", &v), 0);
	CHECK_EQ_INT(v, TERN_TLS_1_3);

	static const char *const bad[] = {"", "1.1", "1.0", "1.4", "1", "12", "1.2 ", "TLSv1.2", "tls1.3", "2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = TERN_TLS_1_3;
		CHECK_EQ_INT(tern_parse_tls_version(bad[i], &v), -EINVAL);
		CHECK_EQ_INT(v, TERN_TLS_1_3);
	}
	CHECK_EQ_INT(tern_parse_tls_version(NULL, &v), -EINVAL);
}

static void test_log_level(void)
{
	enum tern_log_level l = TERN_LOG_INFO;

	CHECK_EQ_INT(tern_parse_log_level("error", &l), 0);
	CHECK_EQ_INT(l, TERN_LOG_ERROR);
	CHECK_EQ_INT(tern_parse_log_level("warn", &l), 0);
	CHECK_EQ_INT(l, TERN_LOG_WARN);
	CHECK_EQ_INT(tern_parse_log_level("debug", &l), 0);
	CHECK_EQ_INT(l, TERN_LOG_DEBUG);
	CHECK_EQ_INT(tern_parse_log_level("info", &l), 0);
	CHECK_EQ_INT(l, TERN_LOG_INFO);

	static const char *const bad[] = {"", "INFO", "warning", "trace", "err", "debug ", "3"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		l = TERN_LOG_INFO;
		CHECK_EQ_INT(tern_parse_log_level(bad[i], &l), -EINVAL);
		CHECK_EQ_INT(l, TERN_LOG_INFO);
	}
	CHECK_EQ_INT(tern_parse_log_level(NULL, &l), -EINVAL);
}

/* The wire format is compared byte for byte; a refused list leaves the
 * output untouched. */
static void test_alpn(void)
{
	unsigned char out[TERN_MAX_ALPN_WIRE];
	size_t len = 0;

	CHECK_EQ_INT(tern_parse_alpn("h2,http/1.1", out, sizeof(out), &len), 0);
	CHECK_EQ_UINT(len, 12);
	CHECK(memcmp(out, "\x02h2\x08http/1.1", 12) == 0);
	CHECK_EQ_INT(tern_parse_alpn("http/1.1", out, sizeof(out), &len), 0);
	CHECK_EQ_UINT(len, 9);
	CHECK(memcmp(out, "\x08http/1.1", 9) == 0);
	CHECK_EQ_INT(tern_parse_alpn("a,b,a", out, sizeof(out), &len), 0); /* repeats are harmless */
	CHECK_EQ_UINT(len, 6);
	CHECK(memcmp(out, "\x01" "a" "\x01" "b" "\x01" "a", 6) == 0);

	/* 255 bytes is the longest protocol, 256 too long */
	char proto[300];
	memset(proto, 'p', sizeof(proto));
	proto[255] = '\0';
	CHECK_EQ_INT(tern_parse_alpn(proto, out, sizeof(out), &len), 0);
	CHECK_EQ_UINT(len, 256);
	CHECK_EQ_UINT(out[0], 255);
	proto[255] = 'p';
	proto[256] = '\0';
	len = 7;
	CHECK_EQ_INT(tern_parse_alpn(proto, out, sizeof(out), &len), -EINVAL);
	CHECK_EQ_UINT(len, 7);

	/* 511 bytes of text fill 512 of wire; one more is -ERANGE */
	char list[600];
	memset(list, 'x', sizeof(list));
	list[200] = ',';
	list[400] = ',';
	list[511] = '\0';
	CHECK_EQ_INT(tern_parse_alpn(list, out, sizeof(out), &len), 0);
	CHECK_EQ_UINT(len, 512);
	list[511] = 'x';
	list[512] = '\0';
	len = 7;
	CHECK_EQ_INT(tern_parse_alpn(list, out, sizeof(out), &len), -ERANGE);
	CHECK_EQ_UINT(len, 7);

	static const char *const bad[] = {
		"", ",", "h2,", ",h2", "h2,,http/1.1", "h 2", "h2, http/1.1", "h2\t", "caf\xc3\xa9", "\x7f",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = 7;
		if (!CHECK_EQ_INT(tern_parse_alpn(bad[i], out, sizeof(out), &len), -EINVAL))
			fprintf(stderr, "    for '%s'\n", bad[i]);
		CHECK_EQ_UINT(len, 7);
	}
	CHECK_EQ_INT(tern_parse_alpn(NULL, out, sizeof(out), &len), -EINVAL);
}

/* tern_format_addr: the address in numbers, back from a parsed one. */
static void test_format_addr(void)
{
	struct tern_addr a;
	char text[TERN_ADDR_TEXT_MAX];

	CHECK_EQ_INT(tern_parse_addr("192.0.2.7:8080", false, &a), 0);
	tern_format_addr((const struct sockaddr *)&a.ss, text, sizeof(text));
	CHECK_EQ_STR(text, "192.0.2.7:8080");
	CHECK_EQ_INT(tern_parse_addr("[2001:db8::17]:65535", false, &a), 0);
	tern_format_addr((const struct sockaddr *)&a.ss, text, sizeof(text));
	CHECK_EQ_STR(text, "[2001:db8::17]:65535");
	CHECK_EQ_INT(tern_parse_addr("unix:/run/app.sock", true, &a), 0);
	tern_format_addr((const struct sockaddr *)&a.ss, text, sizeof(text));
	CHECK_EQ_STR(text, "-");
	CHECK_EQ_INT(tern_parse_addr("192.0.2.7:8080", false, &a), 0);
	tern_format_addr((const struct sockaddr *)&a.ss, text, 8);
	CHECK_EQ_STR(text, "192.0.2");
}

int main(void)
{
	test_alpn();
	test_duration();
	test_size();
	test_uint();
	test_u64_span();
	test_addr_ipv4();
	test_addr_ipv6();
	test_addr_unix();
	test_addr_names();
	test_format_addr();
	test_tls_version();
	test_log_level();
	return check_summary();
}
