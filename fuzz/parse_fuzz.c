/* Fuzzes the command-line value parsers (include/tern/parse.h) and the SNI
 * name matcher (tern_tls_name_match): every parser gets the input as one
 * NUL-terminated string, and each result is checked against its header's
 * contract. Addresses whose host would go to the resolver are skipped
 * (fuzz_addr_would_resolve). */
#include <errno.h>
#include <limits.h>
#include <sys/un.h>

#include "fuzz_util.h"
#include "tern/parse.h"
#include "tern/tls_ctx.h"

#define MAX_DURATION_MS (30ull * 24 * 60 * 60 * 1000)

static void fuzz_duration(const char *text)
{
	for (int allow_zero = 0; allow_zero <= 1; allow_zero++) {
		uint64_t ms = UINT64_MAX;
		int rc = tern_parse_duration_ms(text, allow_zero, &ms);
		FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
		if (rc < 0) {
			FUZZ_CHECK(ms == UINT64_MAX); /* *out untouched */
			continue;
		}
		FUZZ_CHECK(ms <= MAX_DURATION_MS);
		FUZZ_CHECK(allow_zero || ms > 0);
	}
}

static void fuzz_size(const char *text)
{
	static const size_t bounds[][2] = {{0, SIZE_MAX}, {1024, 16u * 1024 * 1024}, {4096, 4096}};

	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		size_t out = 12345;
		int rc = tern_parse_size(text, bounds[i][0], bounds[i][1], &out);
		FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
		if (rc < 0)
			FUZZ_CHECK(out == 12345);
		else
			FUZZ_CHECK(out >= bounds[i][0] && out <= bounds[i][1]);
	}
}

static void fuzz_uint(const char *text)
{
	static const unsigned long bounds[][2] = {{0, ULONG_MAX}, {1, 65535}, {8, 32768}};

	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		unsigned long out = 12345;
		int rc = tern_parse_uint(text, bounds[i][0], bounds[i][1], &out);
		FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
		if (rc < 0)
			FUZZ_CHECK(out == 12345);
		else
			FUZZ_CHECK(out >= bounds[i][0] && out <= bounds[i][1]);
	}
}

static void fuzz_addr(const char *text)
{
	if (fuzz_addr_would_resolve(text))
		return;
	for (int allow_unix = 0; allow_unix <= 1; allow_unix++) {
		struct tern_addr addr;
		memset(&addr, 0xa5, sizeof(addr));
		int rc = tern_parse_addr(text, allow_unix, &addr);
		/* No name lookup happened, so no -ENOENT or resolver error. */
		FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
		if (rc < 0)
			continue;
		FUZZ_CHECK(memchr(addr.text, '\0', sizeof(addr.text)) != NULL);
		FUZZ_CHECK(strncmp(addr.text, text, sizeof(addr.text) - 1) == 0);
		FUZZ_CHECK(addr.ss_len > 0 && addr.ss_len <= sizeof(addr.ss));
		switch (addr.ss.ss_family) {
		case AF_INET:
			FUZZ_CHECK(addr.ss_len == sizeof(struct sockaddr_in));
			FUZZ_CHECK(((struct sockaddr_in *)&addr.ss)->sin_port != 0);
			break;
		case AF_INET6:
			FUZZ_CHECK(addr.ss_len == sizeof(struct sockaddr_in6));
			FUZZ_CHECK(((struct sockaddr_in6 *)&addr.ss)->sin6_port != 0);
			break;
		case AF_UNIX: {
			FUZZ_CHECK(allow_unix);
			const struct sockaddr_un *sun = (const struct sockaddr_un *)&addr.ss;
			size_t path_len = strnlen(sun->sun_path, sizeof(sun->sun_path));
			FUZZ_CHECK(path_len > 0 && path_len < sizeof(sun->sun_path));
			FUZZ_CHECK(strcmp(sun->sun_path, text + 5) == 0);
			break;
		}
		default:
			FUZZ_CHECK(!"unexpected address family");
		}
	}
}

/* --backend's form: never resolves, so every input is fair. A name is
 * TERN_ADDR_NAME with the host as written before the last ':' and a port
 * 1..65535; the other forms are what tern_parse_addr makes of them. */
static void fuzz_addr_unresolved(const char *text)
{
	struct tern_addr addr;
	struct tern_addr_name name;

	memset(&name, 0xa5, sizeof(name));
	int rc = tern_parse_addr_unresolved(text, true, &addr, &name);
	FUZZ_CHECK(rc == 0 || rc == TERN_ADDR_NAME || rc == -EINVAL || rc == -ERANGE);
	if (rc == TERN_ADDR_NAME) {
		size_t host_len = strnlen(name.host, sizeof(name.host));
		FUZZ_CHECK(host_len > 0 && host_len < sizeof(name.host));
		FUZZ_CHECK(strncmp(name.host, text, host_len) == 0 && text[host_len] == ':');
		FUZZ_CHECK(name.port >= 1);
		FUZZ_CHECK(addr.ss.ss_family == AF_UNSPEC && addr.ss_len == 0);
	} else if (rc == 0) {
		FUZZ_CHECK(name.host[0] == '\0' && name.port == 0);
		FUZZ_CHECK(addr.ss.ss_family == AF_INET || addr.ss.ss_family == AF_INET6 ||
			   addr.ss.ss_family == AF_UNIX);
	}
}

static void fuzz_words(const char *text)
{
	enum tern_tls_version v = (enum tern_tls_version)0;
	if (tern_parse_tls_version(text, &v) == 0)
		FUZZ_CHECK((strcmp(text, "1.2") == 0 && v == TERN_TLS_1_2) ||
			   (strcmp(text, "1.3") == 0 && v == TERN_TLS_1_3));
	else
		FUZZ_CHECK(v == (enum tern_tls_version)0);

	enum tern_log_level level;
	if (tern_parse_log_level(text, &level) == 0)
		FUZZ_CHECK(strcmp(text, "error") == 0 || strcmp(text, "warn") == 0 ||
			   strcmp(text, "info") == 0 || strcmp(text, "debug") == 0);
}

/* The wire format must walk back to exactly out_len bytes of 1..255-byte
 * printable protocols. */
static void fuzz_alpn(const char *text)
{
	static const size_t caps[] = {0, 3, 16, 511, 512};

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		unsigned char *out = malloc(caps[i] + 1); /* exact size (+1: malloc(0)) */
		size_t out_len = SIZE_MAX;
		FUZZ_CHECK(out != NULL);
		int rc = tern_parse_alpn(text, out, caps[i], &out_len);
		FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
		if (rc == 0) {
			FUZZ_CHECK(out_len > 0 && out_len <= caps[i]);
			size_t at = 0;
			while (at < out_len) {
				size_t n = out[at];
				FUZZ_CHECK(n > 0 && at + 1 + n <= out_len);
				for (size_t k = 1; k <= n; k++)
					FUZZ_CHECK(out[at + k] > ' ' && out[at + k] <= '~' && out[at + k] != ',');
				at += 1 + n;
			}
			FUZZ_CHECK(at == out_len);
		}
		free(out);
	}
}

static char ascii_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* pattern NUL host: the match must ignore ASCII case and one trailing dot
 * on the host, as the header promises. */
static void fuzz_name_match(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	if (nul == NULL)
		return;
	size_t pattern_len = (size_t)(nul - data);
	char *pattern = fuzz_strndup(data, pattern_len);
	size_t host_len = size - pattern_len - 1;
	char *host = fuzz_strndup(nul + 1, host_len);
	host_len = strlen(host); /* up to a second NUL */

	bool m = tern_tls_name_match(pattern, host);
	if (host_len > 0 && host[host_len - 1] != '.') {
		char *dotted = malloc(host_len + 2);
		FUZZ_CHECK(dotted != NULL);
		memcpy(dotted, host, host_len);
		memcpy(dotted + host_len, ".", 2);
		FUZZ_CHECK(tern_tls_name_match(pattern, dotted) == m);
		free(dotted);
	}
	for (size_t i = 0; i < host_len; i++)
		host[i] = ascii_upper(host[i]);
	FUZZ_CHECK(tern_tls_name_match(pattern, host) == m);
	free(pattern);
	free(host);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);

	fuzz_duration(text);
	fuzz_size(text);
	fuzz_uint(text);
	fuzz_addr(text);
	fuzz_addr_unresolved(text);
	fuzz_words(text);
	fuzz_alpn(text);
	fuzz_name_match(data, size);
	free(text);
	return 0;
}
