/* Fuzzes the JSON reader (tern_json_parse) and, through
 * tern_json_write_value, the writer: a document that reads must write
 * back, the text written must read again into the same tree (strings
 * equal when they were valid UTF-8; otherwise valid UTF-8 now, each bad
 * subpart replaced by U+FFFD), and from the second writing on the text
 * must not change any more. tern_json_member must find each member's first
 * occurrence. */
#include <errno.h>

#include "fuzz_util.h"
#include "json_reader.h"
#include "tern/json.h"

/* Strict UTF-8 (RFC 3629 / Unicode 15 section 3.9): no overlong forms, no
 * surrogates, nothing above U+10FFFF. Written here independently of the
 * writer's own check, so the two are compared. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			return false;
		}
		if (len - i < n || s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k < n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return false;
		i += n;
	}
	return true;
}

/* A string of the first tree (a) against its copy in the second (b). */
static void check_string(const char *a, size_t a_len, const char *b, size_t b_len)
{
	FUZZ_CHECK(a != NULL && b != NULL);
	FUZZ_CHECK(a[a_len] == '\0' && b[b_len] == '\0');
	if (utf8_valid((const unsigned char *)a, a_len))
		FUZZ_CHECK(a_len == b_len && memcmp(a, b, a_len) == 0);
	else
		FUZZ_CHECK(utf8_valid((const unsigned char *)b, b_len));
}

static void check_same(const struct tern_json_value *a, const struct tern_json_value *b, bool object_member)
{
	FUZZ_CHECK(a->type == b->type);
	if (object_member)
		check_string(a->key, a->key_len, b->key, b->key_len);
	else
		FUZZ_CHECK(a->key == NULL && b->key == NULL);
	switch (a->type) {
	case TERN_JSON_NUMBER:
		FUZZ_CHECK(a->text_len == b->text_len && strcmp(a->text, b->text) == 0);
		break;
	case TERN_JSON_STRING:
		check_string(a->text, a->text_len, b->text, b->text_len);
		break;
	case TERN_JSON_ARRAY:
	case TERN_JSON_OBJECT: {
		const struct tern_json_value *x = a->child, *y = b->child;
		for (; x != NULL && y != NULL; x = x->next, y = y->next)
			check_same(x, y, a->type == TERN_JSON_OBJECT);
		FUZZ_CHECK(x == NULL && y == NULL);
		break;
	}
	default:
		FUZZ_CHECK(a->child == NULL && b->child == NULL);
		break;
	}
}

static void check_members(const struct tern_json_value *obj)
{
	if (obj->type != TERN_JSON_OBJECT)
		return;
	for (const struct tern_json_value *m = obj->child; m != NULL; m = m->next) {
		if (strlen(m->key) != m->key_len)
			continue; /* a NUL inside: not reachable by a C string */
		const struct tern_json_value *first = obj->child;
		while (first->key_len != m->key_len || memcmp(first->key, m->key, m->key_len) != 0)
			first = first->next;
		FUZZ_CHECK(tern_json_member(obj, m->key) == first);
	}
}

/* Writes doc's tree; the writer must accept every tree the reader makes. */
static void write_tree(const struct tern_json_doc *doc, struct tern_json *j)
{
	tern_json_init(j);
	tern_json_write_value(j, doc->root);
	FUZZ_CHECK(tern_json_finish(j) == 0);
	FUZZ_CHECK(j->buf != NULL && strlen(j->buf) == j->len); /* NUL bytes are escaped */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exactly size bytes, no NUL: the reader takes a length. */
	char *text = malloc(size ? size : 1);
	FUZZ_CHECK(text != NULL);
	if (size > 0)
		memcpy(text, data, size);

	struct tern_json_doc doc;
	int rc = tern_json_parse(text, size, &doc);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc != 0) {
		FUZZ_CHECK(doc.root == NULL);
		goto out;
	}
	FUZZ_CHECK(doc.root != NULL);
	check_members(doc.root);

	struct tern_json first, second, third;
	write_tree(&doc, &first);

	struct tern_json_doc again, last;
	FUZZ_CHECK(tern_json_parse(first.buf, first.len, &again) == 0);
	check_same(doc.root, again.root, false);

	/* The first writing made every string valid UTF-8 (a bad subpart is
	 * written as the escape \ufffd, which reads back as the character,
	 * which is then written as is): from the second writing on, text and
	 * tree stay the same. */
	write_tree(&again, &second);
	FUZZ_CHECK(tern_json_parse(second.buf, second.len, &last) == 0);
	check_same(again.root, last.root, false);
	write_tree(&last, &third);
	FUZZ_CHECK(third.len == second.len && memcmp(third.buf, second.buf, second.len) == 0);

	tern_json_free(&first);
	tern_json_free(&second);
	tern_json_free(&third);
	tern_json_doc_free(&again);
	tern_json_doc_free(&last);
out:
	tern_json_doc_free(&doc);
	free(text);
	return 0;
}
