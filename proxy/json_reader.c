/* The strict JSON reader for the replies `tern ctl` shows, and the way
 * from its tree back to the writer. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_reader.h"

#define NODES_PER_BLOCK 64

struct tern_json_node_block {
	struct tern_json_node_block *next;
	size_t used;
	struct tern_json_value nodes[NODES_PER_BLOCK];
};

struct reader {
	const unsigned char *p, *end;
	struct tern_json_doc *doc;
	/* Decoded strings and number texts, each with its NUL. Never more
	 * than the input plus one byte: a string's decoded bytes and NUL fit
	 * in its span (two quotes), a number's NUL in the byte after it (a
	 * delimiter) or in the one spare byte at the very end. */
	char *strings;
	size_t strings_used, strings_cap;
	bool oom;
};

static struct tern_json_value *new_node(struct reader *r, enum tern_json_type type)
{
	struct tern_json_node_block *b = r->doc->blocks;

	if (b == NULL || b->used == NODES_PER_BLOCK) {
		b = calloc(1, sizeof(*b));
		if (b == NULL) {
			r->oom = true;
			return NULL;
		}
		b->next = r->doc->blocks;
		r->doc->blocks = b;
	}
	struct tern_json_value *v = &b->nodes[b->used++];
	v->type = type;
	return v;
}

static void skip_ws(struct reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static bool literal(struct reader *r, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
		return false;
	r->p += n;
	return true;
}

/* Room for n more decoded bytes; the bound above makes this a check of
 * the arithmetic, not an allocation. */
static char *string_room(struct reader *r, size_t n)
{
	if (n > r->strings_cap - r->strings_used)
		return NULL;
	return r->strings + r->strings_used;
}

static size_t put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static bool hex4(const unsigned char *p, const unsigned char *end, uint32_t *out)
{
	uint32_t v = 0;

	if (end - p < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		unsigned char c = p[i];
		uint32_t d;
		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	*out = v;
	return true;
}

/* A string at r->p (the opening quote) decoded into the strings area. */
static bool read_string(struct reader *r, const char **out, size_t *out_len)
{
	r->p++; /* the quote */
	char *start = string_room(r, 0);
	size_t n = 0;

	if (start == NULL)
		return false;
	for (;;) {
		if (r->p == r->end)
			return false;
		unsigned char c = *r->p;
		if (c == '"')
			break;
		if (c < 0x20)
			return false; /* RFC 8259 section 7: must be escaped */
		if (c != '\\') {
			if (string_room(r, n + 1) == NULL)
				return false;
			start[n++] = (char)c;
			r->p++;
			continue;
		}
		if (r->end - r->p < 2)
			return false;
		unsigned char e = r->p[1];
		r->p += 2;
		char simple = 0;
		switch (e) {
		case '"': simple = '"'; break;
		case '\\': simple = '\\'; break;
		case '/': simple = '/'; break;
		case 'b': simple = '\b'; break;
		case 'f': simple = '\f'; break;
		case 'n': simple = '\n'; break;
		case 'r': simple = '\r'; break;
		case 't': simple = '\t'; break;
		case 'u': break;
		default: return false;
		}
		if (e != 'u') {
			if (string_room(r, n + 1) == NULL)
				return false;
			start[n++] = simple;
			continue;
		}
		uint32_t cp, low;
		if (!hex4(r->p, r->end, &cp))
			return false;
		r->p += 4;
		if (cp >= 0xd800 && cp <= 0xdbff && r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u' &&
		    hex4(r->p + 2, r->end, &low) && low >= 0xdc00 && low <= 0xdfff) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
			r->p += 6;
		} else if (cp >= 0xd800 && cp <= 0xdfff) {
			cp = 0xfffd; /* a lone surrogate has no UTF-8 form */
		}
		if (string_room(r, n + 4) == NULL)
			return false;
		n += put_utf8(start + n, cp);
	}
	r->p++; /* the closing quote */
	if (string_room(r, n + 1) == NULL)
		return false;
	start[n] = '\0';
	r->strings_used += n + 1;
	*out = start;
	*out_len = n;
	return true;
}

static bool is_digit(const unsigned char *p, const unsigned char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/* RFC 8259 section 6: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool read_number(struct reader *r, struct tern_json_value *v)
{
	const unsigned char *start = r->p;

	if (r->p < r->end && *r->p == '-')
		r->p++;
	if (!is_digit(r->p, r->end))
		return false;
	if (*r->p == '0') {
		r->p++;
	} else {
		while (is_digit(r->p, r->end))
			r->p++;
	}
	if (r->p < r->end && *r->p == '.') {
		r->p++;
		if (!is_digit(r->p, r->end))
			return false;
		while (is_digit(r->p, r->end))
			r->p++;
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		if (!is_digit(r->p, r->end))
			return false;
		while (is_digit(r->p, r->end))
			r->p++;
	}
	size_t n = (size_t)(r->p - start);
	char *text = string_room(r, n + 1);
	if (text == NULL)
		return false;
	memcpy(text, start, n);
	text[n] = '\0';
	r->strings_used += n + 1;
	v->text = text;
	v->text_len = n;
	return true;
}

static struct tern_json_value *read_value(struct reader *r, unsigned depth);

/* An array or object at r->p (its opening bracket). */
static bool read_container(struct reader *r, struct tern_json_value *v, unsigned depth)
{
	bool object = v->type == TERN_JSON_OBJECT;
	char close = object ? '}' : ']';
	struct tern_json_value **link = &v->child;

	if (depth >= TERN_JSON_MAX_DEPTH)
		return false;
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == close) {
		r->p++;
		return true;
	}
	for (;;) {
		const char *key = NULL;
		size_t key_len = 0;
		if (object) {
			skip_ws(r);
			if (r->p == r->end || *r->p != '"' || !read_string(r, &key, &key_len))
				return false;
			skip_ws(r);
			if (r->p == r->end || *r->p != ':')
				return false;
			r->p++;
		}
		struct tern_json_value *item = read_value(r, depth + 1);
		if (item == NULL)
			return false;
		item->key = key;
		item->key_len = key_len;
		*link = item;
		link = &item->next;
		skip_ws(r);
		if (r->p == r->end)
			return false;
		if (*r->p == close) {
			r->p++;
			return true;
		}
		if (*r->p != ',')
			return false;
		r->p++;
	}
}

static struct tern_json_value *read_value(struct reader *r, unsigned depth)
{
	struct tern_json_value *v;
	bool ok;

	skip_ws(r);
	if (r->p == r->end)
		return NULL;
	switch (*r->p) {
	case '{':
	case '[':
		v = new_node(r, *r->p == '{' ? TERN_JSON_OBJECT : TERN_JSON_ARRAY);
		ok = v != NULL && read_container(r, v, depth);
		break;
	case '"':
		v = new_node(r, TERN_JSON_STRING);
		ok = v != NULL && read_string(r, &v->text, &v->text_len);
		break;
	case 't':
		v = new_node(r, TERN_JSON_TRUE);
		ok = v != NULL && literal(r, "true");
		break;
	case 'f':
		v = new_node(r, TERN_JSON_FALSE);
		ok = v != NULL && literal(r, "false");
		break;
	case 'n':
		v = new_node(r, TERN_JSON_NULL);
		ok = v != NULL && literal(r, "null");
		break;
	default:
		v = new_node(r, TERN_JSON_NUMBER);
		ok = v != NULL && read_number(r, v);
		break;
	}
	return ok ? v : NULL;
}

int tern_json_parse(const char *text, size_t len, struct tern_json_doc *out)
{
	struct reader r = {
		.p = (const unsigned char *)text,
		.end = (const unsigned char *)text + len,
		.doc = out,
	};

	memset(out, 0, sizeof(*out));
	if (text == NULL || len >= TERN_JSON_MAX_LEN)
		return -EINVAL;
	out->strings = malloc(len + 1);
	if (out->strings == NULL)
		return -ENOMEM;
	r.strings = out->strings;
	r.strings_cap = len + 1;

	struct tern_json_value *root = read_value(&r, 0);
	if (root != NULL)
		skip_ws(&r);
	if (root == NULL || r.p != r.end)
		return r.oom ? -ENOMEM : -EINVAL;
	out->root = root;
	return 0;
}

void tern_json_doc_free(struct tern_json_doc *doc)
{
	struct tern_json_node_block *b = doc->blocks;

	while (b != NULL) {
		struct tern_json_node_block *next = b->next;
		free(b);
		b = next;
	}
	free(doc->strings);
	memset(doc, 0, sizeof(*doc));
}

const struct tern_json_value *tern_json_member(const struct tern_json_value *obj, const char *key)
{
	if (obj == NULL || obj->type != TERN_JSON_OBJECT || key == NULL)
		return NULL;
	size_t len = strlen(key);
	for (const struct tern_json_value *m = obj->child; m != NULL; m = m->next) {
		if (m->key_len == len && memcmp(m->key, key, len) == 0)
			return m;
	}
	return NULL;
}

void tern_json_write_value(struct tern_json *j, const struct tern_json_value *v)
{
	if (v == NULL) {
		/* No value: misuse, recorded as for any other call. */
		tern_json_raw_len(j, NULL, 0);
		return;
	}
	switch (v->type) {
	case TERN_JSON_NULL:
		tern_json_null(j);
		return;
	case TERN_JSON_FALSE:
	case TERN_JSON_TRUE:
		tern_json_bool(j, v->type == TERN_JSON_TRUE);
		return;
	case TERN_JSON_NUMBER:
		tern_json_raw_len(j, v->text, v->text_len);
		return;
	case TERN_JSON_STRING:
		tern_json_string_len(j, v->text, v->text_len);
		return;
	case TERN_JSON_ARRAY:
	case TERN_JSON_OBJECT:
		break;
	}
	bool object = v->type == TERN_JSON_OBJECT;
	if (object)
		tern_json_begin_object(j);
	else
		tern_json_begin_array(j);
	/* Depth is bounded by the reader and the writer alike. */
	for (const struct tern_json_value *c = v->child; c != NULL && !j->oom && !j->misuse;
	     c = c->next) {
		if (object)
			tern_json_key_len(j, c->key, c->key_len);
		tern_json_write_value(j, c);
	}
	if (object)
		tern_json_end_object(j);
	else
		tern_json_end_array(j);
}
