/* Pure parsers for command-line values: durations, sizes, counts, addresses.
 *
 * Each returns 0 and writes *out on success, or a negative errno and leaves
 * *out untouched: -EINVAL for text that is not of the form, -ERANGE for a
 * well-formed value outside the bounds. Callers turn that into the message
 * naming the flag. Safe from any thread. */
#ifndef TERN_PARSE_H
#define TERN_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/config.h"

/* The longest duration tern_parse_duration_ms() accepts, 30 days (720h):
 * longer than any sensible timeout, short enough that adding it to a
 * monotonic clock in milliseconds can never overflow. */
#define TERN_MAX_DURATION_MS (30ull * 24 * 60 * 60 * 1000)

/* "250ms", "30s", "5m", "2h" to milliseconds. A bare number is refused
 * (-EINVAL), except "0" when allow_zero is set. Values above 30 days are
 * -ERANGE; so is a zero duration ("0s") when allow_zero is not set. */
__attribute__((warn_unused_result))
int tern_parse_duration_ms(const char *text, bool allow_zero, uint64_t *out_ms);

/* The other way: ms as tern_parse_duration_ms reads it back, in the
 * largest unit that divides it ("2h", "90m", "45s", "250ms"; "0" for 0).
 * Always NUL-terminated. */
void tern_format_duration_ms(uint64_t ms, char *out, size_t out_len);

/* "16k", "1m", "1g" (powers of 1024, either case) or plain bytes "4096",
 * within [min, max]. */
__attribute__((warn_unused_result))
int tern_parse_size(const char *text, size_t min, size_t max, size_t *out);

/* The other way: bytes as tern_parse_size reads it back, in the largest
 * unit that divides it ("16k", "1m"; "1000" for 1000). Always
 * NUL-terminated. */
void tern_format_size(uint64_t bytes, char *out, size_t out_len);

/* A decimal integer within [min, max]; no sign, no spaces, no suffix. */
__attribute__((warn_unused_result))
int tern_parse_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out);

/* Exactly the len bytes at s as a decimal number: digits only, at least
 * one, no sign, no overflow (the bytes need no NUL after them, so a token
 * inside a longer text can be read in place). False otherwise. */
bool tern_parse_u64(const char *s, size_t len, uint64_t *out);

/* "HOST:PORT", "[IPV6]:PORT", "*:PORT" (any IPv4 address) or, when
 * allow_unix is set, "unix:/path". HOST is an IP literal or a name resolved
 * with getaddrinfo (first result). PORT is 1..65535. out->text keeps the
 * text as written, cut to fit. A well-formed name that does not resolve is
 * -ENOENT (or -ENOMEM, or the resolver's -errno), so callers can say so; a
 * unix path that does not fit sun_path is -ERANGE. */
__attribute__((warn_unused_result))
int tern_parse_addr(const char *text, bool allow_unix, struct tern_addr *out);

/* As tern_parse_addr, but a host name is not resolved: a well-formed
 * name is TERN_ADDR_NAME, with out->ss.ss_family AF_UNSPEC, out->text as
 * written and the name and port in *out_name (zeroed for the other
 * forms, which return 0). For --backend, whose names are resolved when
 * tern starts and again every --resolve-interval (backends.h). */
#define TERN_ADDR_NAME 1
__attribute__((warn_unused_result))
int tern_parse_addr_unresolved(const char *text, bool allow_unix, struct tern_addr *out,
			       struct tern_addr_name *out_name);

/* The other way, in numbers: an AF_INET or AF_INET6 socket address as
 * "10.0.0.7:8080" or "[::1]:8080" (no scope id), "-" for any other
 * family. Always NUL-terminated, cut to fit; TERN_ADDR_TEXT_MAX holds
 * any. */
void tern_format_addr(const struct sockaddr *sa, char *out, size_t out_len);

/* "1.2" or "1.3". */
__attribute__((warn_unused_result))
int tern_parse_tls_version(const char *text, enum tern_tls_version *out);

/* "error", "warn", "info" or "debug". */
__attribute__((warn_unused_result))
int tern_parse_log_level(const char *text, enum tern_log_level *out);

/* An ALPN list "h2,http/1.1" to its wire format (RFC 7301 section 3.1):
 * each protocol 1..255 printable ASCII bytes other than ',' and ' ', in
 * the order given. -EINVAL for an empty or bad protocol, -ERANGE when the
 * wire format needs more than cap bytes. */
__attribute__((warn_unused_result))
int tern_parse_alpn(const char *text, unsigned char *out, size_t cap, size_t *out_len);

#endif
