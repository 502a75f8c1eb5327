/* The JSON reader: a whole document into a tree, for `tern ctl` to walk.
 * It lives with `tern ctl` (proxy/), not in the daemon, which only writes
 * JSON (tern/json.h).
 *
 * Strict RFC 8259 (no comments, no trailing commas, no NaN, nothing after
 * the value but whitespace), nesting bounded by TERN_JSON_MAX_DEPTH, so
 * any reply the writer can produce reads back, and malformed or hostile
 * input is refused without recursion running away. Strings are decoded:
 * escapes to UTF-8, a surrogate pair to one code point, a lone surrogate
 * to U+FFFD; raw bytes >= 0x80 are kept as they are. */
#ifndef TERN_JSON_READER_H
#define TERN_JSON_READER_H

#include <stddef.h>

#include "tern/json.h"

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
