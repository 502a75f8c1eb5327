/* Client-controlled bytes escaped and bounded for logs, replies and labels
 * (escape.h). */
#include "tern/escape.h"

#define CUT_LEN (sizeof(TERN_ESCAPE_CUT) - 1)

bool tern_escape_byte_needs(unsigned char b, unsigned flags)
{
	if (b < 0x20 || b > 0x7e || b == '"' || b == '\\')
		return true;
	return b == ' ' && (flags & TERN_ESCAPE_SPACE);
}

void tern_escaper_init(struct tern_escaper *e, char *out, size_t out_cap, unsigned flags)
{
	*e = (struct tern_escaper){.out = out, .out_cap = out_cap, .flags = flags};
	if (out_cap > 0)
		out[0] = '\0';
}

void tern_escaper_put(struct tern_escaper *e, const void *in, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = in;

	if (e->cut)
		return; /* nothing after a gap */
	for (size_t i = 0; i < len; i++) {
		bool esc = tern_escape_byte_needs(p[i], e->flags);
		size_t unit = esc ? 4 : 1;
		/* Every unit leaves room for the marker and the NUL, so a cut
		 * found later can always be marked. */
		if (e->in_used >= TERN_ESCAPE_IN_MAX || e->out_cap < CUT_LEN + 1 ||
		    e->len + unit > e->out_cap - CUT_LEN - 1) {
			e->cut = true;
			break;
		}
		char *o = e->out + e->len;
		if (esc) {
			o[0] = '\\';
			o[1] = 'x';
			o[2] = hex[p[i] >> 4];
			o[3] = hex[p[i] & 0xf];
		} else {
			o[0] = (char)p[i];
		}
		e->len += unit;
		e->in_used++;
	}
	if (e->out_cap > 0)
		e->out[e->len] = '\0';
}

size_t tern_escaper_finish(struct tern_escaper *e)
{
	if (e->cut && e->out_cap >= CUT_LEN + 1) {
		for (size_t i = 0; i < CUT_LEN; i++)
			e->out[e->len++] = TERN_ESCAPE_CUT[i];
	}
	if (e->out_cap > 0)
		e->out[e->len] = '\0';
	return e->len;
}

size_t tern_escape(char *out, size_t out_cap, const void *in, size_t len, unsigned flags)
{
	struct tern_escaper e;

	tern_escaper_init(&e, out, out_cap, flags);
	tern_escaper_put(&e, in, len);
	return tern_escaper_finish(&e);
}
