/* Unit tests for src/escape.c: every byte value alone and in context, the
 * space flag, the bound (256 bytes shown, the marker after), multi-byte
 * UTF-8 as bytes, several pieces sharing one budget, small outputs cut at
 * an escape's boundary, and that the escaping can be undone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tern/escape.h"

static void expect(const void *in, size_t len, unsigned flags, const char *want)
{
	char out[TERN_ESCAPE_OUT_MAX];
	size_t n = tern_escape(out, sizeof(out), in, len, flags);
	CHECK_EQ_STR(out, want);
	CHECK_EQ_UINT(n, strlen(want));
}

/* Each of the 256 byte values, alone and between two letters: printable
 * ASCII but '"' and '\' is itself, the rest "\xHH" upper-case; ' ' only
 * under TERN_ESCAPE_SPACE. */
static void test_every_byte(void)
{
	for (unsigned b = 0; b < 256; b++) {
		for (unsigned flags = 0; flags <= TERN_ESCAPE_SPACE; flags++) {
			unsigned char one = (unsigned char)b;
			unsigned char three[3] = {'a', (unsigned char)b, 'z'};
			char want[8], want3[16];
			bool plain = b >= 0x20 && b <= 0x7e && b != '"' && b != '\\' &&
				     !(b == ' ' && flags);
			if (plain)
				snprintf(want, sizeof(want), "%c", (char)b);
			else
				snprintf(want, sizeof(want), "\\x%02X", b);
			snprintf(want3, sizeof(want3), "a%sz", want);
			CHECK_EQ_INT(tern_escape_byte_needs(one, flags), !plain);
			expect(&one, 1, flags, want);
			expect(three, 3, flags, want3);
		}
	}
}

static void test_examples(void)
{
	expect("", 0, 0, "");
	expect("example.com", 11, TERN_ESCAPE_SPACE, "example.com");
	/* the forged line of issue 15 stays on one line, with no new key */
	const char *forged = "a reason=done\n2026-12-06T00:00:00.000Z error forged";
	expect(forged, strlen(forged), TERN_ESCAPE_SPACE,
	       "a\\x20reason=done\\x0A2026-12-06T00:00:00.000Z\\x20error\\x20forged");
	expect(forged, strlen(forged), 0,
	       "a reason=done\\x0A2026-12-06T00:00:00.000Z error forged");
	expect("say \"hi\" \\o/", 12, 0, "say \\x22hi\\x22 \\x5Co/");
	/* NUL is a byte like the others, and the input goes on after it */
	expect("a\0b", 3, 0, "a\\x00b");
	/* UTF-8 as bytes; invalid UTF-8 the same way */
	expect("Zo\xc3\xab", 4, 0, "Zo\\xC3\\xAB");
	expect("\xe2\x82\xac\xff\xfe", 5, 0, "\\xE2\\x82\\xAC\\xFF\\xFE");
	expect("\x1b[31mred", 8, 0, "\\x1B[31mred");
	expect("\x7f\r\n\t", 4, 0, "\\x7F\\x0D\\x0A\\x09");
}

/* 256 bytes are shown whole; from 257 on, 256 and the marker. */
static void test_bound(void)
{
	unsigned char in[1000];
	char want[TERN_ESCAPE_OUT_MAX];

	memset(in, 'a', sizeof(in));
	memset(want, 'a', 256);
	want[256] = '\0';
	expect(in, 255, 0, want + 1);
	expect(in, 256, 0, want);
	snprintf(want + 256, sizeof(want) - 256, "%s", TERN_ESCAPE_CUT);
	expect(in, 257, 0, want);
	expect(in, sizeof(in), 0, want);

	/* every byte escaped: the largest output, which OUT_MAX holds */
	memset(in, 0xff, sizeof(in));
	size_t at = 0;
	for (int i = 0; i < 256; i++)
		at += (size_t)snprintf(want + at, sizeof(want) - at, "\\xFF");
	expect(in, 256, 0, want);
	snprintf(want + at, sizeof(want) - at, "%s", TERN_ESCAPE_CUT);
	expect(in, 257, 0, want);
	CHECK_EQ_UINT(strlen(want) + 1, TERN_ESCAPE_OUT_MAX);

	/* a cut inside a multi-byte character: bytes, so it simply stops */
	in[0] = 'x';
	for (size_t i = 1; i + 1 < sizeof(in); i += 2) {
		in[i] = 0xc3;
		in[i + 1] = 0xa9;
	}
	at = (size_t)snprintf(want, sizeof(want), "x");
	for (int i = 0; i < 127; i++)
		at += (size_t)snprintf(want + at, sizeof(want) - at, "\\xC3\\xA9");
	at += (size_t)snprintf(want + at, sizeof(want) - at, "\\xC3");
	CHECK_EQ_UINT(at, 1 + 127 * 8 + 4); /* 256 input bytes, the last a lead byte */
	expect(in, 256, 0, want);
	snprintf(want + at, sizeof(want) - at, "%s", TERN_ESCAPE_CUT);
	expect(in, 258, 0, want);
}

/* Outputs smaller than OUT_MAX: cut at an escape's boundary, with the
 * marker; never overrun (ASan watches the exact-size heap copies), always
 * NUL-terminated. */
static void test_small_outputs(void)
{
	const char *in = "ab\ncd";
	const char *want[] = {
		/* out_cap 0..4: no room for text and marker */
		NULL, "", "", "", "",
		"\\...", "a\\...", "ab\\...", "ab\\...", "ab\\...", "ab\\...",
		"ab\\x0A\\...", "ab\\x0Ac\\...",
		/* 13 and up: the whole text, its marker's room kept */
		"ab\\x0Acd", "ab\\x0Acd", "ab\\x0Acd",
	};
	for (size_t cap = 0; cap < sizeof(want) / sizeof(want[0]); cap++) {
		char *out = malloc(cap ? cap : 1);
		size_t n = tern_escape(out, cap, in, 5, 0);
		if (cap == 0) {
			CHECK_EQ_UINT(n, 0);
		} else {
			CHECK_EQ_STR(out, want[cap]);
			CHECK_EQ_UINT(n, strlen(want[cap]));
			CHECK(n < cap);
		}
		free(out);
	}
	/* 12: "ab\x0Acd" and its NUL would fit, but not the marker's room */
	char out[12];
	CHECK_EQ_UINT(tern_escape(out, sizeof(out), in, 5, 0), 11);
	CHECK_EQ_STR(out, "ab\\x0Ac\\...");
}

/* Pieces share the budget and the marker; nothing follows a cut. */
static void test_pieces(void)
{
	char out[TERN_ESCAPE_OUT_MAX];
	struct tern_escaper e;

	tern_escaper_init(&e, out, sizeof(out), TERN_ESCAPE_SPACE);
	tern_escaper_put(&e, "/CN=", 4);
	tern_escaper_put(&e, "Zo\xc3\xab Q", 6);
	tern_escaper_put(&e, "/O=", 3);
	tern_escaper_put(&e, "a\"b", 3);
	CHECK_EQ_UINT(tern_escaper_finish(&e), strlen(out));
	CHECK_EQ_STR(out, "/CN=Zo\\xC3\\xAB\\x20Q/O=a\\x22b");

	char big[300];
	memset(big, 'b', sizeof(big));
	tern_escaper_init(&e, out, sizeof(out), 0);
	tern_escaper_put(&e, big, 200);
	tern_escaper_put(&e, "/", 1);
	tern_escaper_put(&e, big, 100); /* 55 of these fit */
	tern_escaper_put(&e, "tail", 4);
	tern_escaper_finish(&e);
	CHECK_EQ_UINT(strlen(out), 256 + strlen(TERN_ESCAPE_CUT));
	CHECK_EQ_INT(out[200], '/');
	CHECK_EQ_STR(out + 256, TERN_ESCAPE_CUT);

	/* output room, not the budget, cuts: a later short unit is not added */
	char small[10];
	tern_escaper_init(&e, small, sizeof(small), 0);
	tern_escaper_put(&e, "ab\n", 3); /* "ab" fits, "\x0A" does not */
	tern_escaper_put(&e, "c", 1);
	tern_escaper_finish(&e);
	CHECK_EQ_STR(small, "ab\\...");
}

/* Undoing the escaping gives the input back (below the bound), and the
 * text is printable ASCII with no space under TERN_ESCAPE_SPACE. */
static void test_round_trip(void)
{
	unsigned seed = 12345;
	for (int round = 0; round < 2000; round++) {
		unsigned char in[256];
		size_t len = (size_t)(round % 257);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = (unsigned char)(seed >> 16);
		}
		char out[TERN_ESCAPE_OUT_MAX];
		size_t n = tern_escape(out, sizeof(out), in, len, TERN_ESCAPE_SPACE);
		unsigned char back[256];
		size_t back_len = 0;
		bool ok = true;
		for (size_t i = 0; i < n && ok; i++) {
			unsigned char c = (unsigned char)out[i];
			ok = c > 0x20 && c < 0x7f && c != '"';
			if (c == '\\') {
				unsigned v = 0;
				ok = ok && i + 3 < n && out[i + 1] == 'x' &&
				     sscanf(out + i + 2, "%2X", &v) == 1;
				back[back_len++] = (unsigned char)v;
				i += 3;
			} else if (ok) {
				back[back_len++] = c;
			}
		}
		CHECK(ok);
		CHECK(back_len == len && memcmp(back, in, len) == 0);
	}
}

int main(void)
{
	test_every_byte();
	test_examples();
	test_bound();
	test_small_outputs();
	test_pieces();
	test_round_trip();
	return check_summary();
}
