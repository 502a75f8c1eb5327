/* JSON for control replies: a writer that keeps its own commas, so reply
 * code reads as the document it builds. (The reader `tern ctl` uses is
 * proxy/json_reader.c: the daemon only writes JSON.) */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/json.h"

#define INITIAL_CAP 256

void tern_json_init(struct tern_json *j)
{
	memset(j, 0, sizeof(*j));
}

void tern_json_free(struct tern_json *j)
{
	free(j->buf);
	tern_json_init(j);
}

static bool failed(const struct tern_json *j)
{
	return j->oom || j->misuse;
}

/* Makes room for n more bytes and the NUL. */
static bool reserve(struct tern_json *j, size_t n)
{
	if (failed(j))
		return false;
	if (n > TERN_JSON_MAX_LEN - 1 - j->len) {
		j->oom = true;
		return false;
	}
	size_t need = j->len + n + 1;
	if (need <= j->cap)
		return true;
	size_t cap = j->cap != 0 ? j->cap : INITIAL_CAP;
	while (cap < need)
		cap *= 2;
	if (cap > TERN_JSON_MAX_LEN)
		cap = TERN_JSON_MAX_LEN;
	char *buf = realloc(j->buf, cap);
	if (buf == NULL) {
		j->oom = true;
		return false;
	}
	j->buf = buf;
	j->cap = cap;
	return true;
}

static void append(struct tern_json *j, const char *s, size_t n)
{
	if (!reserve(j, n))
		return;
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void append_str(struct tern_json *j, const char *s)
{
	append(j, s, strlen(s));
}

/* Before any value: the comma when one is due, and the checks that a
 * value may come here at all. */
static bool begin_value(struct tern_json *j)
{
	if (failed(j))
		return false;
	if (j->depth == 0) {
		if (j->done) {
			j->misuse = true; /* a second top-level value */
			return false;
		}
		return true;
	}
	unsigned top = j->depth - 1;
	if (j->in_object[top]) {
		if (!j->after_key) {
			j->misuse = true; /* an object member needs its key */
			return false;
		}
		j->after_key = false;
		return true;
	}
	if (j->has_items[top])
		append(j, ",", 1);
	return !failed(j);
}

/* After a complete value. */
static void end_value(struct tern_json *j)
{
	if (j->depth == 0)
		j->done = true;
	else
		j->has_items[j->depth - 1] = true;
}

static void begin_container(struct tern_json *j, bool object)
{
	if (!begin_value(j))
		return;
	if (j->depth == TERN_JSON_MAX_DEPTH) {
		j->misuse = true;
		return;
	}
	append(j, object ? "{" : "[", 1);
	if (failed(j))
		return;
	j->in_object[j->depth] = object;
	j->has_items[j->depth] = false;
	j->depth++;
}

static void end_container(struct tern_json *j, bool object)
{
	if (failed(j))
		return;
	if (j->depth == 0 || j->in_object[j->depth - 1] != object || j->after_key) {
		j->misuse = true;
		return;
	}
	append(j, object ? "}" : "]", 1);
	if (failed(j))
		return;
	j->depth--;
	end_value(j);
}

void tern_json_begin_object(struct tern_json *j)
{
	begin_container(j, true);
}

void tern_json_end_object(struct tern_json *j)
{
	end_container(j, true);
}

void tern_json_begin_array(struct tern_json *j)
{
	begin_container(j, false);
}

void tern_json_end_array(struct tern_json *j)
{
	end_container(j, false);
}

/* Length of the well-formed UTF-8 sequence at s (at most avail bytes), or
 * 0 when there is none; *out_prefix is then the length of the maximal
 * subpart to replace by one U+FFFD (at least 1). Table 3-7 of Unicode 15:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_sequence(const unsigned char *s, size_t avail, size_t *out_prefix)
{
	unsigned char c = s[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */

	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		*out_prefix = 1; /* 0x80..0xc1, 0xf5..0xff never start one */
		return 0;
	}
	size_t i = 1;
	for (; i < need && i < avail; i++) {
		unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xbf;
		if (s[i] < min || s[i] > max)
			break;
	}
	if (i == need)
		return need;
	*out_prefix = i;
	return 0;
}

static void append_escaped(struct tern_json *j, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	append(j, "\"", 1);
	while (i < len && !failed(j)) {
		/* Plain bytes go out in runs, not one append each. */
		size_t run = i;
		while (run < len && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\')
			run++;
		if (run > i) {
			append(j, s + i, run - i);
			i = run;
			continue;
		}
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			append(j, esc, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			/* 0x7f needs no escape in JSON; escaped anyway so a reply
			 * shown in a terminal carries no raw control byte. */
			char esc[7];
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			append(j, esc, 6);
			i++;
		} else {
			size_t prefix = 0;
			size_t n = utf8_sequence(p + i, len - i, &prefix);
			if (n > 0) {
				append(j, s + i, n);
				i += n;
			} else {
				append_str(j, "\\ufffd");
				i += prefix;
			}
		}
	}
	append(j, "\"", 1);
}

void tern_json_key_len(struct tern_json *j, const char *key, size_t len)
{
	if (failed(j))
		return;
	if (j->depth == 0 || !j->in_object[j->depth - 1] || j->after_key || key == NULL) {
		j->misuse = true;
		return;
	}
	if (j->has_items[j->depth - 1])
		append(j, ",", 1);
	append_escaped(j, key, len);
	append(j, ":", 1);
	if (!failed(j))
		j->after_key = true;
}

void tern_json_key(struct tern_json *j, const char *key)
{
	tern_json_key_len(j, key, key != NULL ? strlen(key) : 0);
}

/* A scalar already formatted as JSON text. */
static void scalar(struct tern_json *j, const char *text, size_t len)
{
	if (!begin_value(j))
		return;
	append(j, text, len);
	if (!failed(j))
		end_value(j);
}

void tern_json_string_len(struct tern_json *j, const char *s, size_t len)
{
	if (s == NULL) {
		tern_json_null(j);
		return;
	}
	if (!begin_value(j))
		return;
	append_escaped(j, s, len);
	if (!failed(j))
		end_value(j);
}

void tern_json_string(struct tern_json *j, const char *s)
{
	tern_json_string_len(j, s, s != NULL ? strlen(s) : 0);
}

void tern_json_uint(struct tern_json *j, uint64_t v)
{
	char text[24];
	int n = snprintf(text, sizeof(text), "%" PRIu64, v);

	scalar(j, text, (size_t)n);
}

void tern_json_int(struct tern_json *j, int64_t v)
{
	char text[24];
	int n = snprintf(text, sizeof(text), "%" PRId64, v);

	scalar(j, text, (size_t)n);
}

void tern_json_bool(struct tern_json *j, bool v)
{
	if (v)
		scalar(j, "true", 4);
	else
		scalar(j, "false", 5);
}

void tern_json_null(struct tern_json *j)
{
	scalar(j, "null", 4);
}

void tern_json_member_string(struct tern_json *j, const char *key, const char *s)
{
	tern_json_key(j, key);
	tern_json_string(j, s);
}

void tern_json_member_uint(struct tern_json *j, const char *key, uint64_t v)
{
	tern_json_key(j, key);
	tern_json_uint(j, v);
}

void tern_json_member_int(struct tern_json *j, const char *key, int64_t v)
{
	tern_json_key(j, key);
	tern_json_int(j, v);
}

void tern_json_member_bool(struct tern_json *j, const char *key, bool v)
{
	tern_json_key(j, key);
	tern_json_bool(j, v);
}

void tern_json_raw_len(struct tern_json *j, const char *json, size_t len)
{
	if (json == NULL || len == 0) {
		if (!failed(j))
			j->misuse = true; /* nothing is not a value */
		return;
	}
	scalar(j, json, len);
}

void tern_json_raw(struct tern_json *j, const char *json)
{
	tern_json_raw_len(j, json, json != NULL ? strlen(json) : 0);
}

int tern_json_finish(struct tern_json *j)
{
	if (j->oom)
		return -ENOMEM;
	if (j->misuse || j->depth != 0 || !j->done)
		return -EINVAL;
	return 0;
}
