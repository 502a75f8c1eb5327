/* Fuzzes the escaping of client-controlled bytes (tern_escape, the
 * escaper over several pieces): whatever the input, the flags and the
 * output size, the text stays inside the output and NUL-terminated, is
 * printable ASCII with no '"' (and no space under TERN_ESCAPE_SPACE),
 * every '\' starts "\xHH" or the final cut marker, at most
 * TERN_ESCAPE_IN_MAX bytes are shown, and undoing the escapes gives back
 * a prefix of the input: all of it when it was within the bound and the
 * output had TERN_ESCAPE_OUT_MAX bytes.
 *
 * Input: flags (1 byte), output size (2 bytes, taken modulo
 * TERN_ESCAPE_OUT_MAX + 16), number of pieces (1 byte, 1..4), then for
 * each piece a length byte and that many bytes (the last piece takes the
 * rest). */
#include "fuzz_util.h"
#include "tern/escape.h"

#define CUT_LEN (sizeof(TERN_ESCAPE_CUT) - 1)

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_stream s = {data, size};
	unsigned flags = fuzz_u8(&s) & TERN_ESCAPE_SPACE;
	size_t cap = fuzz_u16(&s) % (TERN_ESCAPE_OUT_MAX + 16);
	unsigned num_pieces = 1 + fuzz_u8(&s) % 4;

	/* The pieces, concatenated: what the text must be a prefix of. */
	uint8_t *all = malloc(size + 1);
	FUZZ_CHECK(all != NULL);
	size_t all_len = 0;
	/* Exactly cap bytes: ASan sees a write one past the end. */
	char *out = malloc(cap ? cap : 1);
	FUZZ_CHECK(out != NULL);

	struct tern_escaper e;
	tern_escaper_init(&e, out, cap, flags);
	for (unsigned i = 0; i < num_pieces; i++) {
		size_t want = i + 1 < num_pieces ? fuzz_u8(&s) : s.left;
		size_t len;
		const uint8_t *p = fuzz_bytes(&s, want, &len);
		/* An exact-size copy of each piece, so an over-read shows. */
		uint8_t *piece = malloc(len ? len : 1);
		FUZZ_CHECK(piece != NULL);
		if (len)
			memcpy(piece, p, len);
		tern_escaper_put(&e, piece, len);
		free(piece);
		if (len)
			memcpy(all + all_len, p, len);
		all_len += len;
	}
	size_t n = tern_escaper_finish(&e);

	if (cap == 0) {
		FUZZ_CHECK(n == 0);
		goto out;
	}
	FUZZ_CHECK(n < cap && out[n] == '\0' && strlen(out) == n);

	/* Undo the escapes; the marker may come only at the very end. */
	size_t shown = 0;
	bool marked = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];
		FUZZ_CHECK(c >= 0x20 && c <= 0x7e && c != '"');
		FUZZ_CHECK(!(flags & TERN_ESCAPE_SPACE) || c != ' ');
		FUZZ_CHECK(!marked);
		if (c == '\\' && i + CUT_LEN == n && memcmp(out + i, TERN_ESCAPE_CUT, CUT_LEN) == 0) {
			marked = true;
			i += CUT_LEN - 1;
			continue;
		}
		uint8_t b = c;
		if (c == '\\') {
			FUZZ_CHECK(i + 3 < n && out[i + 1] == 'x');
			int hi = hex_value(out[i + 2]), lo = hex_value(out[i + 3]);
			FUZZ_CHECK(hi >= 0 && lo >= 0);
			b = (uint8_t)(hi << 4 | lo);
			FUZZ_CHECK(tern_escape_byte_needs(b, flags));
			i += 3;
		} else {
			FUZZ_CHECK(!tern_escape_byte_needs(b, flags));
		}
		FUZZ_CHECK(shown < all_len && all[shown] == b);
		shown++;
	}
	FUZZ_CHECK(shown <= TERN_ESCAPE_IN_MAX);
	/* A cut is marked whenever the marker fits; nothing is cut when it
	 * all fits. */
	if (shown < all_len && cap >= CUT_LEN + 1)
		FUZZ_CHECK(marked);
	if (shown == all_len)
		FUZZ_CHECK(!marked);
	if (cap >= TERN_ESCAPE_OUT_MAX)
		FUZZ_CHECK(shown == (all_len < TERN_ESCAPE_IN_MAX ? all_len : TERN_ESCAPE_IN_MAX));

	/* The one-piece form agrees with the escaper. */
	if (num_pieces == 1) {
		char *again = malloc(cap);
		FUZZ_CHECK(again != NULL);
		FUZZ_CHECK(tern_escape(again, cap, all, all_len, flags) == n);
		FUZZ_CHECK(memcmp(again, out, n + 1) == 0);
		free(again);
	}
out:
	free(out);
	free(all);
	return 0;
}
