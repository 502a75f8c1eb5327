/* Unit tests for src/json.c: the writer's exact output (commas, nesting,
 * escaping), its sticky failures, and the size cap. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
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

int main(void)
{
	test_scalars();
	test_nesting();
	test_escaping();
	test_misuse();
	test_size_cap();
	return check_summary();
}
