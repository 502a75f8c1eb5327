/* A small JSON writer for control replies (RFC 8259), and the reader
 * `tern ctl` uses to show them (at the end of this file).
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

/* The reader: a whole document into a tree, for `tern ctl` to walk.
 *
 * Strict RFC 8259 (no comments, no trailing commas, no NaN, nothing after
 * the value but whitespace), nesting bounded by TERN_JSON_MAX_DEPTH, so
 * any reply the writer can produce reads back, and malformed or hostile
 * input is refused without recursion running away. Strings are decoded:
 * escapes to UTF-8, a surrogate pair to one code point, a lone surrogate
 * to U+FFFD; raw bytes >= 0x80 are kept as they are. */

enum tern_json_type {
	TERN_JSON_NULL,
	TERN_JSON_FALSE,
	TERN_JSON_TRUE,
	TERN_JSON_NUMBER,
	TERN_JSON_STRING,
	TERN_JSON_ARRAY,
	TERN_JSON_OBJECT,
};

struct tern_json_value {
	enum tern_json_type type;
	/* A member of an object: its name, decoded and NUL-terminated (it may
	 * hold NUL bytes of its own, hence key_len). NULL elsewhere. */
	const char *key;
	size_t key_len;
	/* NUMBER: the text as written; STRING: the decoded bytes. Both
	 * NUL-terminated; NULL for the other types. */
	const char *text;
	size_t text_len;
	struct tern_json_value *child; /* ARRAY, OBJECT: first element or member */
	struct tern_json_value *next;  /* the next element or member */
};

struct tern_json_node_block;

struct tern_json_doc {
	struct tern_json_value *root;
	/* Private: where the values and strings live. */
	struct tern_json_node_block *blocks;
	char *strings;
};

/* Parses len bytes at text (no NUL needed) into *out. Returns 0, -EINVAL
 * for anything that is not one JSON value (out->root is then NULL), or
 * -ENOMEM. *out owns everything and does not point into text; free it with
 * tern_json_doc_free() whatever the result. */
__attribute__((warn_unused_result))
int tern_json_parse(const char *text, size_t len, struct tern_json_doc *out);

void tern_json_doc_free(struct tern_json_doc *doc);

/* The first member of obj named key, or NULL (also when obj is NULL or
 * not an object). */
const struct tern_json_value *tern_json_member(const struct tern_json_value *obj, const char *key);

/* Writes v back as compact JSON, as the value the writer expects next. */
void tern_json_write_value(struct tern_json *j, const struct tern_json_value *v);

#endif
