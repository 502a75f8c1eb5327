/* What ctl.c and ctl_print.c share: showing text from another process
 * (a reply, a path) with control characters escaped; tern's own messages
 * quote values through it too (tern_cli_show_value). Main thread only. */
#ifndef TERN_CTL_INTERNAL_H
#define TERN_CTL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* A control character: shown as \\xNN, never written raw. */
bool tern_ctl_is_control(unsigned char c);

/* Copies len bytes of s to out (out_len > 4) with control characters as
 * \xNN; cut at a UTF-8 boundary with "..." when it does not fit. Returns
 * the bytes written, NUL excluded. */
size_t tern_ctl_escape_into(const char *s, size_t len, char *out, size_t out_len);

/* Prints len bytes of s with control characters as \xNN. */
void tern_ctl_put_escaped(FILE *f, const char *s, size_t len);

#endif
