/* A small JSON writer for control replies (RFC 8259). The reader
 * `tern ctl` uses to show them is proxy/json_reader.h: the daemon only
 * writes JSON.
 *
 * Appends to a buffer that grows with realloc() up to TERN_JSON_MAX_LEN.
 * Commas are inserted automatically from a nesting stack of at most
 * TERN_JSON_MAX_DEPTH open arrays and objects. Calls never fail one by
 * one: the first failure is remembered (oom for memory or the size cap,
 * misuse for a call out of order, such as a value in an object without a
 * key, or nesting too deep), every later call does nothing, and
 * tern_json_finish() reports it. So a reply is built with plain calls and
 * checked once.
 *
 * One writer belongs to one thread; nothing is shared. */
#ifndef TERN_JSON_H
#define TERN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest document, terminating NUL included: a `conns` reply for 100000
 * connections fits, a runaway loop does not eat the process. */
#define TERN_JSON_MAX_LEN (16u * 1024u * 1024u)
#define TERN_JSON_MAX_DEPTH 16

struct tern_json {
	char *buf;  /* NUL-terminated text so far; NULL until the first byte */
	size_t len; /* bytes of text, NUL excluded */
	size_t cap; /* bytes allocated at buf */
	bool oom;   /* realloc failed, or the text would pass TERN_JSON_MAX_LEN */
	bool misuse; /* a call out of order: the text would not be JSON */

	/* The nesting stack: one entry per open array or object. */
	unsigned depth;
	bool in_object[TERN_JSON_MAX_DEPTH];
	bool has_items[TERN_JSON_MAX_DEPTH];
	bool after_key; /* a key was written; its value comes next */
	bool done;      /* the top-level value is complete */
};

/* An empty writer: all zero, no allocation yet. */
void tern_json_init(struct tern_json *j);

/* Frees the buffer; *j is empty again (as after tern_json_init). */
void tern_json_free(struct tern_json *j);

void tern_json_begin_object(struct tern_json *j);
void tern_json_end_object(struct tern_json *j);
void tern_json_begin_array(struct tern_json *j);
void tern_json_end_array(struct tern_json *j);

/* A member name inside an object; its value is the next call. */
void tern_json_key(struct tern_json *j, const char *key);
/* The same for len bytes at key, which may hold NUL bytes (as \u0000). */
void tern_json_key_len(struct tern_json *j, const char *key, size_t len);

/* A string value, escaped: '"' and '\\' with a backslash, bytes below 0x20
 * and 0x7f as \u00XX, valid UTF-8 as is, and each maximal invalid UTF-8
 * subpart (Unicode 15 section 3.9) as \ufffd. s == NULL writes null. */
void tern_json_string(struct tern_json *j, const char *s);
/* The same for len bytes at s, which may hold NUL bytes (as \u0000). */
void tern_json_string_len(struct tern_json *j, const char *s, size_t len);

void tern_json_uint(struct tern_json *j, uint64_t v);
void tern_json_int(struct tern_json *j, int64_t v);
void tern_json_bool(struct tern_json *j, bool v);
void tern_json_null(struct tern_json *j);

/* A member: tern_json_key(key), then the value, as one call (a reply is
 * mostly these). tern_json_member_string writes null for s == NULL. */
void tern_json_member_string(struct tern_json *j, const char *key, const char *s);
void tern_json_member_uint(struct tern_json *j, const char *key, uint64_t v);
void tern_json_member_int(struct tern_json *j, const char *key, int64_t v);
void tern_json_member_bool(struct tern_json *j, const char *key, bool v);

/* Text already in JSON (say, a fragment a worker wrote), copied as is
 * where a value goes. The caller vouches for it: one complete value, or
 * several array elements ("{..},{..}") inside an array. Empty text or
 * NULL is misuse. */
void tern_json_raw(struct tern_json *j, const char *json);
/* The same for len bytes at json. */
void tern_json_raw_len(struct tern_json *j, const char *json, size_t len);

/* Checks the document is complete. Returns 0 with j->buf holding
 * j->len bytes of JSON and a NUL (nothing else is added: the caller
 * appends the "\n" of the line protocol), -ENOMEM after oom, or -EINVAL
 * after misuse or with arrays/objects left open or no value at all. The
 * buffer stays j's: tern_json_free() releases it. */
__attribute__((warn_unused_result))
int tern_json_finish(struct tern_json *j);

#endif
