/* Helpers shared by the fuzz targets: exact-size copies (so ASan sees a
 * read one byte past the input), checks that stay on in every build, a
 * reader that takes the fuzzer's bytes as a stream of choices, and the
 * test that keeps host names away from the resolver. Header only: each
 * target is one executable. */
#ifndef TERN_FUZZ_UTIL_H
#define TERN_FUZZ_UTIL_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A broken contract is a crash, so libFuzzer keeps the input: abort()
 * rather than assert(), which a build type could compile away. */
#define FUZZ_CHECK(cond)                                                                          \
	do {                                                                                      \
		if (!(cond)) {                                                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                  \
		}                                                                                 \
	} while (0)

/* len bytes and a NUL, in an allocation of exactly that size. */
static inline char *fuzz_strndup(const uint8_t *data, size_t len)
{
	char *s = malloc(len + 1);

	FUZZ_CHECK(s != NULL);
	if (len > 0)
		memcpy(s, data, len);
	s[len] = '\0';
	return s;
}

/* The input as a stream of choices: each take consumes bytes from the
 * front, and an exhausted stream reads as zeros, so every input is
 * usable. */
struct fuzz_stream {
	const uint8_t *p;
	size_t left;
};

static inline uint8_t fuzz_u8(struct fuzz_stream *s)
{
	if (s->left == 0)
		return 0;
	s->left--;
	return *s->p++;
}

static inline uint16_t fuzz_u16(struct fuzz_stream *s)
{
	uint16_t hi = fuzz_u8(s);
	return (uint16_t)(hi << 8 | fuzz_u8(s));
}

/* Up to n bytes from the front; *out_len says how many there were. */
static inline const uint8_t *fuzz_bytes(struct fuzz_stream *s, size_t n, size_t *out_len)
{
	const uint8_t *p = s->p;

	if (n > s->left)
		n = s->left;
	s->p += n;
	s->left -= n;
	*out_len = n;
	return p;
}

/* Whether tern_parse_addr(text, ...) would hand the host to getaddrinfo()
 * for a name lookup, following src/parse.c: not "unix:...", not
 * "[literal]:PORT" (looked up with AI_NUMERICHOST), and a host before the
 * last ':' that passes its character check, has a valid port after it,
 * and is neither "*" nor an IPv4 literal. The fuzzers skip such values:
 * DNS in a fuzzer is slow, flaky and sends traffic off the machine. Errs
 * on the side of skipping (a 1..255-byte host of name characters). */
static inline bool fuzz_addr_would_resolve(const char *text)
{
	if (strncmp(text, "unix:", 5) == 0 || text[0] == '[')
		return false;
	const char *colon = strrchr(text, ':');
	if (colon == NULL)
		return false;
	size_t host_len = (size_t)(colon - text);
	if (host_len == 0 || host_len > 255)
		return false;
	for (size_t i = 0; i < host_len; i++) {
		char c = text[i];
		bool name_char = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
				 c == '-' || c == '.' || c == '_';
		if (!name_char && !(host_len == 1 && c == '*'))
			return false;
	}
	unsigned long port;
	if (tern_parse_uint(colon + 1, 1, 65535, &port) < 0)
		return false;
	char host[256];
	memcpy(host, text, host_len);
	host[host_len] = '\0';
	struct in_addr a4;
	if (strcmp(host, "*") == 0 || inet_pton(AF_INET, host, &a4) == 1)
		return false;
	return true;
}

#endif
