/* Parsers for command-line values. Each is a function of its text alone
 * (host names aside, which go through the resolver), so every accepted form
 * and every refusal is unit-tested without starting anything. Digits are
 * matched as '0'..'9' rather than with isdigit(), which follows the locale. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "tern/parse.h"


/* Reads the run of decimal digits at the start of text into *out_value and
 * returns how many digits there were. The value saturates and *out_overflow
 * is set instead of wrapping, so "18446744073709551617" is reported as out
 * of range rather than read as 1. */
static size_t scan_digits(const char *text, uint64_t *out_value, bool *out_overflow)
{
	uint64_t value = 0;
	bool overflow = false;
	size_t n = 0;

	while (text[n] >= '0' && text[n] <= '9') {
		unsigned digit = (unsigned)(text[n] - '0');
		if (value > (UINT64_MAX - digit) / 10)
			overflow = true;
		else
			value = value * 10 + digit;
		n++;
	}
	*out_value = value;
	*out_overflow = overflow;
	return n;
}

bool tern_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t value = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned digit = (unsigned)(s[i] - '0');
		if (value > (UINT64_MAX - digit) / 10)
			return false;
		value = value * 10 + digit;
	}
	*out = value;
	return true;
}

int tern_parse_duration_ms(const char *text, bool allow_zero, uint64_t *out_ms)
{
	uint64_t value, scale;
	bool overflow;

	if (text == NULL)
		return -EINVAL;
	size_t n = scan_digits(text, &value, &overflow);
	if (n == 0)
		return -EINVAL;

	const char *unit = text + n;
	if (unit[0] == '\0') {
		/* A bare number is refused because "30" could mean seconds or
		 * milliseconds; zero is the one value where the unit does not
		 * matter, so it may stand alone where zero means "off". */
		if (allow_zero && !overflow && value == 0) {
			*out_ms = 0;
			return 0;
		}
		return -EINVAL;
	}
	if (strcmp(unit, "ms") == 0)
		scale = 1;
	else if (strcmp(unit, "s") == 0)
		scale = 1000;
	else if (strcmp(unit, "m") == 0)
		scale = 60 * 1000;
	else if (strcmp(unit, "h") == 0)
		scale = 60 * 60 * 1000;
	else
		return -EINVAL; /* "1.5s", "5sec", "1d", "30S", "10 s" */

	/* Compare before multiplying so the product cannot overflow. */
	if (overflow || value > TERN_MAX_DURATION_MS / scale)
		return -ERANGE;
	uint64_t ms = value * scale;
	if (ms == 0 && !allow_zero)
		return -ERANGE;
	*out_ms = ms;
	return 0;
}

int tern_parse_size(const char *text, size_t min, size_t max, size_t *out)
{
	uint64_t value, scale;
	bool overflow;

	if (text == NULL)
		return -EINVAL;
	size_t n = scan_digits(text, &value, &overflow);
	if (n == 0)
		return -EINVAL;

	const char *suffix = text + n;
	switch (suffix[0]) {
	case '\0':
		scale = 1;
		break;
	case 'k':
	case 'K':
		scale = 1024;
		break;
	case 'm':
	case 'M':
		scale = 1024 * 1024;
		break;
	case 'g':
	case 'G':
		scale = 1024 * 1024 * 1024;
		break;
	default:
		return -EINVAL;
	}
	if (suffix[0] != '\0' && suffix[1] != '\0')
		return -EINVAL; /* "16kb", "1mm", "4k " */

	if (overflow || value > SIZE_MAX / scale)
		return -ERANGE;
	size_t bytes = (size_t)(value * scale);
	if (bytes < min || bytes > max)
		return -ERANGE;
	*out = bytes;
	return 0;
}

int tern_parse_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out)
{
	uint64_t value;
	bool overflow;

	if (text == NULL)
		return -EINVAL;
	size_t n = scan_digits(text, &value, &overflow);
	if (n == 0 || text[n] != '\0')
		return -EINVAL;
	if (overflow || value > ULONG_MAX || value < min || value > max)
		return -ERANGE;
	*out = (unsigned long)value;
	return 0;
}

/* "unix:" already stripped. Any non-empty path is taken, relative ones
 * included: connect(2) resolves them against the working directory just as
 * a shell would. */
static int parse_unix(const char *path, struct tern_addr *addr)
{
	struct sockaddr_un sun;
	size_t len = strlen(path);

	if (len == 0)
		return -EINVAL;
	/* sun_path must hold the terminating NUL too (unix(7)). */
	if (len >= sizeof(sun.sun_path))
		return -ERANGE;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, len + 1);
	memcpy(&addr->ss, &sun, sizeof(sun));
	addr->ss_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	return 0;
}

/* Copies the first getaddrinfo() result; the port is set afterwards. */
static void copy_addrinfo(const struct addrinfo *ai, struct tern_addr *addr)
{
	size_t len = ai->ai_addrlen;

	if (len > sizeof(addr->ss))
		len = sizeof(addr->ss); /* cannot happen for AF_INET/AF_INET6 */
	memcpy(&addr->ss, ai->ai_addr, len);
	addr->ss_len = (socklen_t)len;
}

/* Maps a getaddrinfo() failure to -errno: a name with no address is
 * -ENOENT, which callers tell apart from the syntax errors. */
static int gai_to_errno(int gai_rc)
{
	switch (gai_rc) {
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno > 0 ? -errno : -EIO;
	default:
		return -ENOENT;
	}
}

static void set_port(struct tern_addr *addr, uint16_t port)
{
	if (addr->ss.ss_family == AF_INET) {
		struct sockaddr_in sin;
		memcpy(&sin, &addr->ss, sizeof(sin));
		sin.sin_port = htons(port);
		memcpy(&addr->ss, &sin, sizeof(sin));
	} else {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, &addr->ss, sizeof(sin6));
		sin6.sin6_port = htons(port);
		memcpy(&addr->ss, &sin6, sizeof(sin6));
	}
}

/* Host names are letters, digits, '-', '.' and '_' (the last for the
 * SRV-style names some resolvers hand out); refusing anything else here
 * keeps spaces and control characters away from the resolver and reports
 * them as a malformed value rather than a name that did not resolve. */
static bool host_chars_ok(const char *host, size_t len)
{
	if (len == 1 && host[0] == '*')
		return true;
	for (size_t i = 0; i < len; i++) {
		char c = host[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '-' || c == '.' || c == '_';
		if (!ok)
			return false;
	}
	return true;
}

/* name: NULL resolves a host name here (first result); otherwise a name
 * is left to the caller, in *name, and the result is TERN_ADDR_NAME. */
static int parse_inet(const char *text, struct tern_addr *addr, struct tern_addr_name *name)
{
	char host[TERN_HOST_MAX];
	const char *port_text;
	size_t host_len;
	bool bracketed = text[0] == '[';

	if (bracketed) {
		const char *close = strchr(text, ']');
		if (close == NULL || close[1] != ':')
			return -EINVAL;
		host_len = (size_t)(close - (text + 1));
		if (host_len == 0 || host_len >= sizeof(host))
			return -EINVAL;
		memcpy(host, text + 1, host_len);
		port_text = close + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (colon == NULL)
			return -EINVAL;
		host_len = (size_t)(colon - text);
		/* "::1:80" cannot be split unambiguously: IPv6 needs brackets. */
		if (host_len == 0 || host_len >= sizeof(host) || memchr(text, ':', host_len) != NULL)
			return -EINVAL;
		memcpy(host, text, host_len);
		port_text = colon + 1;
		if (!host_chars_ok(host, host_len))
			return -EINVAL;
	}
	host[host_len] = '\0';

	/* Numeric ports only: a service name would depend on /etc/services. */
	unsigned long port;
	int rc = tern_parse_uint(port_text, 1, 65535, &port);
	if (rc < 0)
		return rc;

	struct addrinfo hints, *res = NULL;
	struct sockaddr_in sin;
	memset(&hints, 0, sizeof(hints));
	memset(&sin, 0, sizeof(sin));
	hints.ai_socktype = SOCK_STREAM;
	if (bracketed) {
		/* Literals only, through getaddrinfo() rather than inet_pton()
		 * so a scope id ("[fe80::1%eth0]") is understood. */
		hints.ai_family = AF_INET6;
		hints.ai_flags = AI_NUMERICHOST;
		if (getaddrinfo(host, NULL, &hints, &res) != 0)
			return -EINVAL;
		copy_addrinfo(res, addr);
		freeaddrinfo(res);
	} else if (strcmp(host, "*") == 0 || inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		/* An IPv4 literal needs no resolver; "*" is the IPv4 wildcard. */
		sin.sin_family = AF_INET;
		if (strcmp(host, "*") == 0)
			sin.sin_addr.s_addr = htonl(INADDR_ANY);
		memcpy(&addr->ss, &sin, sizeof(sin));
		addr->ss_len = sizeof(sin);
	} else if (name != NULL) {
		/* Resolved later, by whoever asked (backends.h). */
		memcpy(name->host, host, host_len + 1);
		name->port = (uint16_t)port;
		addr->ss.ss_family = AF_UNSPEC;
		addr->ss_len = 0;
		return TERN_ADDR_NAME;
	} else {
		hints.ai_family = AF_UNSPEC;
		int gai_rc = getaddrinfo(host, NULL, &hints, &res);
		if (gai_rc != 0)
			return gai_to_errno(gai_rc);
		copy_addrinfo(res, addr);
		freeaddrinfo(res);
	}
	set_port(addr, (uint16_t)port);
	return 0;
}

static int parse_addr(const char *text, bool allow_unix, struct tern_addr *out,
		      struct tern_addr_name *out_name)
{
	static const char unix_prefix[] = "unix:";
	struct tern_addr addr;
	struct tern_addr_name name = {0};
	int rc;

	if (text == NULL)
		return -EINVAL;
	/* Build in a local so *out stays untouched on failure. */
	memset(&addr, 0, sizeof(addr));
	snprintf(addr.text, sizeof(addr.text), "%s", text);

	if (strncmp(text, unix_prefix, sizeof(unix_prefix) - 1) == 0) {
		if (!allow_unix)
			return -EINVAL;
		rc = parse_unix(text + sizeof(unix_prefix) - 1, &addr);
	} else {
		rc = parse_inet(text, &addr, out_name ? &name : NULL);
	}
	if (rc < 0)
		return rc;
	*out = addr;
	if (out_name)
		*out_name = name;
	return rc;
}

int tern_parse_addr(const char *text, bool allow_unix, struct tern_addr *out)
{
	return parse_addr(text, allow_unix, out, NULL);
}

int tern_parse_addr_unresolved(const char *text, bool allow_unix, struct tern_addr *out,
			       struct tern_addr_name *out_name)
{
	return parse_addr(text, allow_unix, out, out_name);
}

int tern_parse_tls_version(const char *text, enum tern_tls_version *out)
{
	if (text == NULL)
		return -EINVAL;
	if (strcmp(text, "1.2") == 0)
		*out = TERN_TLS_1_2;
	else if (strcmp(text, "1.3") == 0)
		*out = TERN_TLS_1_3;
	else
		return -EINVAL;
	return 0;
}

int tern_parse_log_level(const char *text, enum tern_log_level *out)
{
	static const struct {
		const char *name;
		enum tern_log_level level;
	} levels[] = {
		{"error", TERN_LOG_ERROR},
		{"warn", TERN_LOG_WARN},
		{"info", TERN_LOG_INFO},
		{"debug", TERN_LOG_DEBUG},
	};

	if (text == NULL)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (strcmp(text, levels[i].name) == 0) {
			*out = levels[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

int tern_parse_alpn(const char *text, unsigned char *out, size_t cap, size_t *out_len)
{
	size_t len = 0;

	if (text == NULL)
		return -EINVAL;
	for (const char *p = text;;) {
		size_t n = strcspn(p, ",");
		if (n == 0 || n > 255)
			return -EINVAL;
		for (size_t i = 0; i < n; i++)
			if (p[i] <= ' ' || p[i] > '~')
				return -EINVAL;
		len += 1 + n;
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	if (len > cap)
		return -ERANGE;
	size_t used = 0;
	for (const char *p = text;;) {
		size_t n = strcspn(p, ",");
		out[used++] = (unsigned char)n;
		memcpy(out + used, p, n);
		used += n;
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	*out_len = used;
	return 0;
}

void tern_format_size(uint64_t bytes, char *out, size_t out_len)
{
	static const struct {
		uint64_t bytes;
		const char *unit;
	} units[] = {{1024ull * 1024 * 1024, "g"}, {1024 * 1024, "m"}, {1024, "k"}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (bytes != 0 && bytes % units[i].bytes == 0) {
			snprintf(out, out_len, "%llu%s", (unsigned long long)(bytes / units[i].bytes), units[i].unit);
			return;
		}
	}
	snprintf(out, out_len, "%llu", (unsigned long long)bytes);
}

void tern_format_duration_ms(uint64_t ms, char *out, size_t out_len)
{
	static const struct {
		uint64_t ms;
		const char *unit;
	} units[] = {{3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};

	if (ms == 0) {
		snprintf(out, out_len, "0");
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms % units[i].ms == 0) {
			snprintf(out, out_len, "%llu%s", (unsigned long long)(ms / units[i].ms),
				 units[i].unit);
			return;
		}
	}
}

void tern_format_addr(const struct sockaddr *sa, char *out, size_t out_len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(out, out_len, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(out, out_len, "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
	} else {
		snprintf(out, out_len, "-");
	}
}
