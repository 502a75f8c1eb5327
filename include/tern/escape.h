/* Client-controlled bytes made safe to show: SNI, ALPN, certificate
 * subjects, anything a PROXY header carries, on their way into a log
 * line, the access log, a control reply or a metric label (SPEC 2).
 *
 * As nginx writes its logs: a byte outside printable ASCII (below 0x20,
 * 0x7f and above), '"' and '\' become "\xHH" (two upper-case hex
 * digits); with TERN_ESCAPE_SPACE a space does too, for key=value lines,
 * where it would start a new key. Everything else is copied. So the text
 * is printable ASCII, one line, and a '\' in it always starts "\xHH" or
 * the cut marker: the escaping can be undone, and a client cannot make
 * its bytes look like tern's own words.
 *
 * At most TERN_ESCAPE_IN_MAX bytes of input are shown. Longer input is
 * cut there and TERN_ESCAPE_CUT follows: "\..." cannot come from escaped
 * bytes (a client's '\' is "\x5C"), so a cut is never forged. Multi-byte
 * UTF-8 is bytes like any others: "é" is "\xC3\xA9".
 *
 * Pure functions of their arguments; any thread. */
#ifndef TERN_ESCAPE_H
#define TERN_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/* Input bytes shown at most; the rest is cut. */
#define TERN_ESCAPE_IN_MAX 256u
#define TERN_ESCAPE_CUT "\\..."
/* Output that always holds the whole result, NUL included: every byte
 * escaped, then the marker. */
#define TERN_ESCAPE_OUT_MAX (4u * TERN_ESCAPE_IN_MAX + sizeof(TERN_ESCAPE_CUT))

/* Flags. */
#define TERN_ESCAPE_SPACE 1u /* ' ' as "\x20" too: for key=value lines */

/* Builds one escaped text from several pieces (a certificate subject is
 * "/" name "=" value ...): they share the TERN_ESCAPE_IN_MAX budget and
 * one cut marker. */
struct tern_escaper {
	char *out;
	size_t out_cap; /* bytes at out, NUL included */
	size_t len;     /* text written, NUL excluded */
	size_t in_used; /* input bytes shown so far */
	unsigned flags;
	bool cut;       /* some input was not shown: the marker follows */
};

/* Starts an empty text in out (out_cap > 0: it is NUL-terminated at
 * once). out_cap >= TERN_ESCAPE_OUT_MAX holds any result whole; a smaller
 * one cuts earlier, at an escape's boundary, keeping room for the marker. */
void tern_escaper_init(struct tern_escaper *e, char *out, size_t out_cap, unsigned flags);

/* Appends len bytes of in, escaped, while the budget and out allow. */
void tern_escaper_put(struct tern_escaper *e, const void *in, size_t len);

/* Appends the marker if anything was cut; returns the text's length. */
size_t tern_escaper_finish(struct tern_escaper *e);

/* The whole of it for one piece: out gets the escaped, NUL-terminated
 * text of in[0..len); returns its length. */
size_t tern_escape(char *out, size_t out_cap, const void *in, size_t len, unsigned flags);

/* Whether byte b is written as "\xHH" under flags. */
bool tern_escape_byte_needs(unsigned char b, unsigned flags);

#endif
