/* Unit tests for src/json.c and proxy/json_reader.c: the writer's exact
 * output (commas, nesting, escaping), its sticky failures, and the size
 * cap; the reader on tern's own replies, on every escape, and on malformed
 * input (refused, never a crash: run under ASan). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json_reader.h"
#include "tern/json.h"

static struct tern_json j;

/* Finishes j, checks the text and frees it. */
#define EXPECT_JSON(want)                                  \
	do {                                               \
		CHECK_EQ_INT(tern_json_finish(&j), 0);     \
		CHECK_EQ_STR(j.buf, (want));               \
		CHECK_EQ_UINT(j.len, strlen(want));        \
		tern_json_free(&j);                        \
	} while (0)

#define EXPECT_FINISH(want_rc)                               \
	do {                                                 \
		CHECK_EQ_INT(tern_json_finish(&j), (want_rc)); \
		tern_json_free(&j);                          \
	} while (0)

static void expect_string(const char *in, size_t len, const char *want)
{
	tern_json_init(&j);
	tern_json_string_len(&j, in, len);
	EXPECT_JSON(want);
}

static void test_scalars(void)
{
	tern_json_init(&j);
	tern_json_uint(&j, 0);
	EXPECT_JSON("0");
	tern_json_init(&j);
	tern_json_uint(&j, UINT64_MAX);
	EXPECT_JSON("18446744073709551615");
	tern_json_init(&j);
	tern_json_int(&j, INT64_MIN);
	EXPECT_JSON("-9223372036854775808");
	tern_json_init(&j);
	tern_json_int(&j, 42);
	EXPECT_JSON("42");
	tern_json_init(&j);
	tern_json_bool(&j, true);
	EXPECT_JSON("true");
	tern_json_init(&j);
	tern_json_bool(&j, false);
	EXPECT_JSON("false");
	tern_json_init(&j);
	tern_json_null(&j);
	EXPECT_JSON("null");
	tern_json_init(&j);
	tern_json_string(&j, NULL);
	EXPECT_JSON("null");
	tern_json_init(&j);
	tern_json_string(&j, "");
	EXPECT_JSON("\"\"");
	tern_json_init(&j);
	tern_json_raw(&j, "{\"a\":[1,2]}");
	EXPECT_JSON("{\"a\":[1,2]}");
}

static void test_nesting(void)
{
	tern_json_init(&j);
	tern_json_begin_object(&j);
	tern_json_end_object(&j);
	EXPECT_JSON("{}");

	tern_json_init(&j);
	tern_json_begin_array(&j);
	tern_json_end_array(&j);
	EXPECT_JSON("[]");

	/* The shape of a stats and a help reply. */
	tern_json_init(&j);
	tern_json_begin_object(&j);
	tern_json_key(&j, "ok");
	tern_json_bool(&j, true);
	tern_json_key(&j, "conns_active");
	tern_json_uint(&j, 3);
	tern_json_key(&j, "commands");
	tern_json_begin_array(&j);
	tern_json_string(&j, "help");
	tern_json_string(&j, "stats");
	tern_json_end_array(&j);
	tern_json_key(&j, "delta");
	tern_json_int(&j, -1);
	tern_json_end_object(&j);
	EXPECT_JSON("{\"ok\":true,\"conns_active\":3,\"commands\":[\"help\",\"stats\"],\"delta\":-1}");

	/* Arrays of objects of arrays, empties in between, raw fragments. */
	tern_json_init(&j);
	tern_json_begin_object(&j);
	tern_json_key(&j, "ok");
	tern_json_bool(&j, true);
	tern_json_key(&j, "conns");
	tern_json_begin_array(&j);
	tern_json_begin_object(&j);
	tern_json_key(&j, "id");
	tern_json_uint(&j, 281474976710657ull);
	tern_json_key(&j, "sni");
	tern_json_null(&j);
	tern_json_key(&j, "x");
	tern_json_begin_array(&j);
	tern_json_end_array(&j);
	tern_json_end_object(&j);
	tern_json_begin_object(&j);
	tern_json_end_object(&j);
	tern_json_raw_len(&j, "{\"id\":2}garbage", 8);
	tern_json_raw(&j, "{\"id\":3},{\"id\":4}");
	tern_json_begin_array(&j);
	tern_json_begin_array(&j);
	tern_json_uint(&j, 1);
	tern_json_end_array(&j);
	tern_json_null(&j);
	tern_json_end_array(&j);
	tern_json_end_array(&j);
	tern_json_end_object(&j);
	EXPECT_JSON("{\"ok\":true,\"conns\":[{\"id\":281474976710657,\"sni\":null,\"x\":[]},{},{\"id\":2},"
		    "{\"id\":3},{\"id\":4},[[1],null]]}");

	/* Exactly the maximum depth. */
	tern_json_init(&j);
	for (int i = 0; i < TERN_JSON_MAX_DEPTH; i++)
		tern_json_begin_array(&j);
	for (int i = 0; i < TERN_JSON_MAX_DEPTH; i++)
		tern_json_end_array(&j);
	EXPECT_JSON("[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]");
}

static void test_escaping(void)
{
	expect_string("plain text", 10, "\"plain text\"");
	expect_string("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"");
	expect_string("\n\r\t\b\f", 5, "\"\\u000a\\u000d\\u0009\\u0008\\u000c\"");
	expect_string("\x01\x1f\x7f ~", 5, "\"\\u0001\\u001f\\u007f ~\"");
	expect_string("a\0b", 3, "\"a\\u0000b\"");
	expect_string("\x1b[31mred", 8, "\"\\u001b[31mred\"");

	/* Valid UTF-8 passes through: 2, 3 and 4 bytes, and the edges of
	 * Table 3-7. */
	expect_string("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");
	expect_string("\xe2\x82\xac", 3, "\"\xe2\x82\xac\"");
	expect_string("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"");
	expect_string("\xc2\x80", 2, "\"\xc2\x80\"");
	expect_string("\xe0\xa0\x80", 3, "\"\xe0\xa0\x80\"");
	expect_string("\xed\x9f\xbf", 3, "\"\xed\x9f\xbf\"");
	expect_string("\xee\x80\x80", 3, "\"\xee\x80\x80\"");
	expect_string("\xf0\x90\x80\x80", 4, "\"\xf0\x90\x80\x80\"");
	expect_string("\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\"");

	/* Invalid UTF-8: each maximal subpart becomes one U+FFFD. */
	expect_string("\x80", 1, "\"\\ufffd\"");
	expect_string("a\xffz", 3, "\"a\\ufffdz\"");
	expect_string("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");             /* overlong '/' */
	expect_string("\xc1\xbf", 2, "\"\\ufffd\\ufffd\"");
	expect_string("\xe0\x80\xaf", 3, "\"\\ufffd\\ufffd\\ufffd\"");  /* overlong */
	expect_string("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");  /* surrogate */
	expect_string("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
	expect_string("\xf5\x80", 2, "\"\\ufffd\\ufffd\"");
	expect_string("\xe2\x82", 2, "\"\\ufffd\"");          /* truncated at the end */
	expect_string("\xe2\x82x", 3, "\"\\ufffdx\"");        /* truncated before ASCII */
	expect_string("\xf0\x9f\x98\"", 4, "\"\\ufffd\\\"\""); /* truncated before a quote */
	expect_string("\xc3\xc3\xa9", 3, "\"\\ufffd\xc3\xa9\"");
	/* Unicode 15 section 3.9's example: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64. */
	expect_string("a\xf1\x80\x80\xe1\x80\xc2" "b\x80" "c\x80\xbf" "d", 13,
		      "\"a\\ufffd\\ufffd\\ufffdb\\ufffdc\\ufffd\\ufffdd\"");

	/* Keys are escaped the same way. */
	tern_json_init(&j);
	tern_json_begin_object(&j);
	tern_json_key(&j, "k\"\n\xff");
	tern_json_uint(&j, 1);
	tern_json_end_object(&j);
	EXPECT_JSON("{\"k\\\"\\u000a\\ufffd\":1}");
}

/* A member is its key and its value; a NULL string is null. */
static void test_members(void)
{
	tern_json_init(&j);
	tern_json_begin_object(&j);
	tern_json_member_bool(&j, "ok", true);
	tern_json_member_uint(&j, "n", UINT64_MAX);
	tern_json_member_int(&j, "d", -3);
	tern_json_member_string(&j, "s", "a\"b");
	tern_json_member_string(&j, "none", NULL);
	tern_json_end_object(&j);
	EXPECT_JSON("{\"ok\":true,\"n\":18446744073709551615,\"d\":-3,\"s\":\"a\\\"b\","
		    "\"none\":null}");

	/* Outside an object the key is misuse, as tern_json_key's. */
	tern_json_init(&j);
	tern_json_begin_array(&j);
	tern_json_member_uint(&j, "n", 1);
	tern_json_end_array(&j);
	EXPECT_FINISH(-EINVAL);
}

static void test_misuse(void)
{
	/* Nothing written. */
	tern_json_init(&j);
	EXPECT_FINISH(-EINVAL);
	/* Left open. */
	tern_json_init(&j);
	tern_json_begin_object(&j);
	EXPECT_FINISH(-EINVAL);
	tern_json_init(&j);
	tern_json_begin_object(&j);
	tern_json_key(&j, "a");
	EXPECT_FINISH(-EINVAL);
	/* A value in an object without a key. */
	tern_json_init(&j);
	tern_json_begin_object(&j);
	tern_json_uint(&j, 1);
	tern_json_end_object(&j);
	EXPECT_FINISH(-EINVAL);
	/* Two keys in a row; a key in an array; a key at the top. */
	tern_json_init(&j);
	tern_json_begin_object(&j);
	tern_json_key(&j, "a");
	tern_json_key(&j, "b");
	tern_json_uint(&j, 1);
	tern_json_end_object(&j);
	EXPECT_FINISH(-EINVAL);
	tern_json_init(&j);
	tern_json_begin_array(&j);
	tern_json_key(&j, "a");
	tern_json_end_array(&j);
	EXPECT_FINISH(-EINVAL);
	tern_json_init(&j);
	tern_json_key(&j, "a");
	EXPECT_FINISH(-EINVAL);
	/* A NULL key. */
	tern_json_init(&j);
	tern_json_begin_object(&j);
	tern_json_key(&j, NULL);
	EXPECT_FINISH(-EINVAL);
	/* Mismatched and unbalanced ends. */
	tern_json_init(&j);
	tern_json_begin_array(&j);
	tern_json_end_object(&j);
	EXPECT_FINISH(-EINVAL);
	tern_json_init(&j);
	tern_json_end_array(&j);
	EXPECT_FINISH(-EINVAL);
	tern_json_init(&j);
	tern_json_begin_object(&j);
	tern_json_key(&j, "a");
	tern_json_end_object(&j);
	EXPECT_FINISH(-EINVAL);
	/* Two top-level values. */
	tern_json_init(&j);
	tern_json_uint(&j, 1);
	tern_json_uint(&j, 2);
	EXPECT_FINISH(-EINVAL);
	tern_json_init(&j);
	tern_json_begin_object(&j);
	tern_json_end_object(&j);
	tern_json_begin_object(&j);
	tern_json_end_object(&j);
	EXPECT_FINISH(-EINVAL);
	/* An empty raw fragment is no value. */
	tern_json_init(&j);
	tern_json_raw(&j, "");
	EXPECT_FINISH(-EINVAL);
	tern_json_init(&j);
	tern_json_raw_len(&j, "1", 0);
	EXPECT_FINISH(-EINVAL);
	tern_json_init(&j);
	tern_json_raw(&j, NULL);
	EXPECT_FINISH(-EINVAL);
	/* One level too deep. */
	tern_json_init(&j);
	for (int i = 0; i <= TERN_JSON_MAX_DEPTH; i++)
		tern_json_begin_array(&j);
	for (int i = 0; i <= TERN_JSON_MAX_DEPTH; i++)
		tern_json_end_array(&j);
	EXPECT_FINISH(-EINVAL);

	/* Failure is sticky: the text stops where it went wrong. */
	tern_json_init(&j);
	tern_json_begin_array(&j);
	tern_json_uint(&j, 1);
	tern_json_end_object(&j);
	tern_json_uint(&j, 2);
	tern_json_end_array(&j);
	CHECK_EQ_STR(j.buf, "[1");
	EXPECT_FINISH(-EINVAL);
}

/* The document stops growing at TERN_JSON_MAX_LEN: -ENOMEM, not a crash
 * and not a truncated reply passed off as complete. */
static void test_size_cap(void)
{
	size_t chunk_len = 1024 * 1024;
	char *chunk = malloc(chunk_len + 1);

	if (!CHECK(chunk != NULL))
		return;
	memset(chunk, 'a', chunk_len);
	chunk[chunk_len] = '\0';

	tern_json_init(&j);
	tern_json_begin_array(&j);
	for (int i = 0; i < 20; i++)
		tern_json_string(&j, chunk);
	tern_json_end_array(&j);
	CHECK(j.oom);
	CHECK(j.len < TERN_JSON_MAX_LEN);
	CHECK(j.cap <= TERN_JSON_MAX_LEN);
	EXPECT_FINISH(-ENOMEM);

	/* Fifteen chunks fit under 16 MiB. */
	tern_json_init(&j);
	tern_json_begin_array(&j);
	for (int i = 0; i < 15; i++)
		tern_json_string(&j, chunk);
	tern_json_end_array(&j);
	CHECK_EQ_INT(tern_json_finish(&j), 0);
	CHECK_EQ_UINT(j.len, 15 * (chunk_len + 3) - 1 + 2);
	tern_json_free(&j);
	CHECK(j.buf == NULL && j.len == 0 && j.cap == 0);
	free(chunk);
}

static struct tern_json_doc doc;

static const struct tern_json_value *parse_ok(const char *text)
{
	tern_json_doc_free(&doc);
	if (!CHECK_EQ_INT(tern_json_parse(text, strlen(text), &doc), 0))
		fprintf(stderr, "    input: %s\n", text);
	return doc.root;
}

/* Parses text and writes it back compact: want, or "(refused)". */
static void expect_roundtrip(const char *text, const char *want)
{
	struct tern_json w;
	const char *got = "(refused)";

	tern_json_init(&w);
	tern_json_doc_free(&doc);
	if (tern_json_parse(text, strlen(text), &doc) == 0) {
		tern_json_write_value(&w, doc.root);
		got = tern_json_finish(&w) == 0 ? w.buf : "(not written)";
	}
	if (!CHECK_EQ_STR(got, want))
		fprintf(stderr, "    input: %s\n", text);
	tern_json_free(&w);
	tern_json_doc_free(&doc);
}

static void expect_refused(const char *text, size_t len)
{
	struct tern_json_doc d;

	if (!CHECK_EQ_INT(tern_json_parse(text, len, &d), -EINVAL))
		fprintf(stderr, "    input: %.*s\n", (int)len, text);
	CHECK(d.root == NULL);
	tern_json_doc_free(&d);
}

#define REFUSED(text) expect_refused((text), sizeof(text) - 1)

static void test_read_replies(void)
{
	const struct tern_json_value *root, *v, *conns, *c;

	root = parse_ok("{\"ok\":true,\"conns_active\":3,\"workers\":2,\"commands\":[\"help\",\"stats\"]}");
	if (CHECK(root != NULL) && CHECK_EQ_INT(root->type, TERN_JSON_OBJECT)) {
		CHECK(root->key == NULL);
		v = tern_json_member(root, "ok");
		CHECK(v != NULL && v->type == TERN_JSON_TRUE);
		v = tern_json_member(root, "conns_active");
		if (CHECK(v != NULL && v->type == TERN_JSON_NUMBER))
			CHECK_EQ_STR(v->text, "3");
		v = tern_json_member(root, "commands");
		if (CHECK(v != NULL && v->type == TERN_JSON_ARRAY && v->child != NULL)) {
			CHECK_EQ_STR(v->child->text, "help");
			CHECK(v->child->key == NULL);
			CHECK_EQ_STR(v->child->next->text, "stats");
			CHECK(v->child->next->next == NULL);
		}
		CHECK(tern_json_member(root, "missing") == NULL);
		CHECK(tern_json_member(root, "Ok") == NULL);
		CHECK(tern_json_member(v, "help") == NULL); /* not an object */
	}
	CHECK(tern_json_member(NULL, "ok") == NULL);

	root = parse_ok(" {\"ok\" : false , \"error\" : \"unknown command 'foo'\"}\r\n");
	v = tern_json_member(root, "ok");
	CHECK(v != NULL && v->type == TERN_JSON_FALSE);
	v = tern_json_member(root, "error");
	if (CHECK(v != NULL && v->type == TERN_JSON_STRING))
		CHECK_EQ_STR(v->text, "unknown command 'foo'");

	root = parse_ok("{\"ok\":true,\"conns\":[{\"id\":281474976710657,\"worker\":1,\"peer\":\"[::1]:5000\","
			"\"sni\":null,\"resumed\":false,\"age_ms\":12},{\"id\":2}]}");
	conns = tern_json_member(root, "conns");
	if (CHECK(conns != NULL && conns->type == TERN_JSON_ARRAY)) {
		c = conns->child;
		if (CHECK(c != NULL && c->type == TERN_JSON_OBJECT)) {
			CHECK_EQ_STR(tern_json_member(c, "id")->text, "281474976710657");
			CHECK_EQ_STR(tern_json_member(c, "peer")->text, "[::1]:5000");
			CHECK_EQ_INT(tern_json_member(c, "sni")->type, TERN_JSON_NULL);
			CHECK(tern_json_member(c, "sni")->text == NULL);
			CHECK_EQ_STR(tern_json_member(c, "sni")->key, "sni");
			CHECK_EQ_INT(tern_json_member(c, "resumed")->type, TERN_JSON_FALSE);
			c = c->next;
			CHECK(c != NULL && c->next == NULL);
		}
	}

	/* Duplicate names: the first one wins. */
	root = parse_ok("{\"a\":1,\"a\":2}");
	CHECK_EQ_STR(tern_json_member(root, "a")->text, "1");

	/* Scalars at the top, and the empty containers. */
	CHECK_EQ_INT(parse_ok("null")->type, TERN_JSON_NULL);
	CHECK_EQ_INT(parse_ok(" true ")->type, TERN_JSON_TRUE);
	CHECK_EQ_STR(parse_ok("-0.5e+10")->text, "-0.5e+10");
	CHECK_EQ_STR(parse_ok("0")->text, "0");
	CHECK_EQ_STR(parse_ok("1E-2")->text, "1E-2");
	CHECK(parse_ok("[]")->child == NULL);
	CHECK(parse_ok("{}")->child == NULL);
	tern_json_doc_free(&doc);
}

static void test_read_strings(void)
{
	const struct tern_json_value *v;

	v = parse_ok("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"");
	CHECK_EQ_STR(v->text, "a\"b\\c/d\b\f\n\r\t");
	CHECK_EQ_UINT(v->text_len, 12);
	v = parse_ok("\"caf\\u00e9 \\u20AC \\ud83d\\ude00\"");
	CHECK_EQ_STR(v->text, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	/* Raw UTF-8 is kept as is. */
	v = parse_ok("\"caf\xc3\xa9\"");
	CHECK_EQ_STR(v->text, "caf\xc3\xa9");
	/* NUL inside: counted by text_len. */
	v = parse_ok("\"a\\u0000b\"");
	CHECK_EQ_UINT(v->text_len, 3);
	CHECK(memcmp(v->text, "a\0b", 4) == 0);
	/* Lone surrogates become U+FFFD. */
	v = parse_ok("\"\\ud83dx\"");
	CHECK_EQ_STR(v->text, "\xef\xbf\xbdx");
	v = parse_ok("\"\\ude00\"");
	CHECK_EQ_STR(v->text, "\xef\xbf\xbd");
	v = parse_ok("\"\\ud83d\\u0041\"");
	CHECK_EQ_STR(v->text, "\xef\xbf\xbd" "A");
	/* Keys are decoded too. */
	v = parse_ok("{\"k\\u00e9\\n\":1}");
	CHECK_EQ_STR(v->child->key, "k\xc3\xa9\n");
	CHECK_EQ_UINT(v->child->key_len, 4);
	CHECK(tern_json_member(v, "k\xc3\xa9\n") != NULL);
	tern_json_doc_free(&doc);
}

/* What the writer writes, the reader reads back to the same text. */
static void test_roundtrip(void)
{
	expect_roundtrip("{\"ok\":false,\"error\":\"unknown command 'foo'\"}",
			 "{\"ok\":false,\"error\":\"unknown command 'foo'\"}");
	expect_roundtrip(" { \"a\" : [ 1 , -2.5e3 , true , false , null , { } , [ ] ] } ",
			 "{\"a\":[1,-2.5e3,true,false,null,{},[]]}");
	expect_roundtrip("\"\\n\\u001b\\u007f\xff\"", "\"\\u000a\\u001b\\u007f\\ufffd\"");
	expect_roundtrip("{\"\\u0000\":\"\\u0000\"}", "{\"\\u0000\":\"\\u0000\"}");
	expect_roundtrip("[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]", "[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]");

	/* A NULL value is misuse for the writer. */
	struct tern_json w;
	tern_json_init(&w);
	tern_json_write_value(&w, NULL);
	CHECK_EQ_INT(tern_json_finish(&w), -EINVAL);
	tern_json_free(&w);
}

static void test_read_malformed(void)
{
	REFUSED("");
	REFUSED("   ");
	REFUSED("{");
	REFUSED("}");
	REFUSED("[");
	REFUSED("]");
	REFUSED("[1,]");
	REFUSED("[,1]");
	REFUSED("[1 2]");
	REFUSED("[]]");
	REFUSED("{\"a\"}");
	REFUSED("{\"a\":}");
	REFUSED("{\"a\":1,}");
	REFUSED("{\"a\":1 \"b\":2}");
	REFUSED("{a:1}");
	REFUSED("{1:1}");
	REFUSED("{'a':1}");
	REFUSED("1 2");
	REFUSED("{} {}");
	REFUSED("{}x");
	REFUSED("01");
	REFUSED("-01");
	REFUSED("1.");
	REFUSED(".5");
	REFUSED("-");
	REFUSED("1e");
	REFUSED("1e+");
	REFUSED("+1");
	REFUSED("0x10");
	REFUSED("NaN");
	REFUSED("Infinity");
	REFUSED("tru");
	REFUSED("truex");
	REFUSED("nul");
	REFUSED("True");
	REFUSED("\"abc");
	REFUSED("\"a\x01z\"");
	REFUSED("\"a\nb\"");
	REFUSED("\"\\x\"");
	REFUSED("\"\\u12\"");
	REFUSED("\"\\u12G4\"");
	REFUSED("\"\\");
	REFUSED("\"\\u");
	REFUSED("\xef\xbb\xbf{}"); /* a byte order mark is not JSON */
	REFUSED("{\"ok\":true}\0");
	REFUSED("/* c */ {}");
	/* One level deeper than the writer goes. */
	REFUSED("[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]");
	/* Objects too: 16 levels read, 17 do not. */
	char nested[256];
	size_t used = 0;
	for (int i = 0; i < TERN_JSON_MAX_DEPTH - 1; i++)
		used += (size_t)snprintf(nested + used, sizeof(nested) - used, "{\"a\":");
	used += (size_t)snprintf(nested + used, sizeof(nested) - used, "{}");
	for (int i = 0; i < TERN_JSON_MAX_DEPTH - 1; i++)
		nested[used++] = '}';
	nested[used] = '\0';
	CHECK(parse_ok(nested) != NULL);
	tern_json_doc_free(&doc);
	memmove(nested + 5, nested, used + 1);
	memcpy(nested, "{\"a\":", 5);
	nested[used + 5] = '}';
	nested[used + 6] = '\0';
	expect_refused(nested, used + 6);
	/* A deep bomb is refused by depth, not by the stack. */
	static char bomb[100001];
	memset(bomb, '[', sizeof(bomb) - 1);
	expect_refused(bomb, sizeof(bomb) - 1);
	CHECK_EQ_INT(tern_json_parse(NULL, 0, &doc), -EINVAL);
	tern_json_doc_free(&doc);

	/* Every proper prefix of a reply is refused; so is every one-byte
	 * corruption that breaks it, and none crashes. */
	const char reply[] = "{\"ok\":true,\"conns\":[{\"id\":1,\"sni\":\"a\\u00e9\",\"x\":[-1.5e2,null]}]}";
	size_t reply_len = sizeof(reply) - 1;
	for (size_t n = 0; n < reply_len; n++)
		expect_refused(reply, n);
	static const char junk[] = "\"\\{}[],:0-eu\x01\xff ";
	char buf[sizeof(reply)];
	unsigned accepted = 0;
	for (size_t i = 0; i < reply_len; i++) {
		for (size_t k = 0; k < sizeof(junk) - 1; k++) {
			memcpy(buf, reply, sizeof(reply));
			buf[i] = junk[k];
			struct tern_json_doc d;
			int rc = tern_json_parse(buf, reply_len, &d);
			CHECK(rc == 0 || rc == -EINVAL);
			CHECK((rc == 0) == (d.root != NULL));
			accepted += rc == 0;
			tern_json_doc_free(&d);
		}
	}
	CHECK(accepted > 0); /* some changes keep it valid ("1" to "0") */
}

/* Many values: the node blocks chain. */
static void test_read_large(void)
{
	struct tern_json w;

	tern_json_init(&w);
	tern_json_begin_array(&w);
	for (unsigned i = 0; i < 1000; i++) {
		tern_json_begin_object(&w);
		tern_json_key(&w, "id");
		tern_json_uint(&w, i);
		tern_json_end_object(&w);
	}
	tern_json_end_array(&w);
	if (CHECK_EQ_INT(tern_json_finish(&w), 0)) {
		const struct tern_json_value *root = parse_ok(w.buf);
		unsigned n = 0;
		bool in_order = true;
		for (const struct tern_json_value *c = root != NULL ? root->child : NULL; c != NULL; c = c->next) {
			char want[16];
			snprintf(want, sizeof(want), "%u", n++);
			in_order = in_order && strcmp(tern_json_member(c, "id")->text, want) == 0;
		}
		CHECK_EQ_UINT(n, 1000);
		CHECK(in_order);
	}
	tern_json_free(&w);
	tern_json_doc_free(&doc);
}

int main(void)
{
	test_scalars();
	test_nesting();
	test_escaping();
	test_members();
	test_misuse();
	test_size_cap();
	test_read_replies();
	test_read_strings();
	test_roundtrip();
	test_read_malformed();
	test_read_large();
	return check_summary();
}
