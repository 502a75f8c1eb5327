/* The flag table: one row per `tern` option, the single source of its
 * parsing, its default, its error texts, `tern --help`, the man page
 * tern(8), docs/options.md and README's flag table (proxy/docgen.c).
 *
 * A row says what type of value the flag takes and where it goes in
 * struct tern_config; parsing is generic by type (cli_values.c), and only
 * the few flags no type describes (addresses, --cert and what follows it,
 * --alpn, --control, --user, --workers) have a handler of their own
 * (cli_flags.c). How to add a flag: the comment above the table in
 * cli_flags.c, and docs/adding-a-flag.md.
 *
 * Texts in rows (help, details, expected) may hold {min} and {max}: the
 * row's bounds, written as its type writes values ("1k", "720h", "1024"),
 * so a bound changed in config.h changes every text that states it.
 *
 * Everything here is immutable data and pure functions: any thread. */
#ifndef TERN_CLI_FLAGS_H
#define TERN_CLI_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/un.h>

#include "tern/config.h"

enum tern_cli_type {
	TERN_CLI_SWITCH,   /* no value: sets a bool field to true */
	TERN_CLI_UINT,     /* decimal, min..max, into an unsigned field */
	TERN_CLI_DURATION, /* "250ms", "30s", "5m", "2h", min..max ms, into a uint64_t; see zero */
	TERN_CLI_SIZE,     /* "16k", "1m" or bytes, min..max, into a size_t */
	TERN_CLI_WORDS,    /* one of words[], whose value goes into an enum or bool field */
	TERN_CLI_STRING,   /* non-empty, into a const char * field (pointing into argv) */
	TERN_CLI_CUSTOM,   /* apply() does everything; expected and default_text say what it takes */
	TERN_CLI_ACTION,   /* --help, --version: the parse answers action at once */
	TERN_CLI_DOC_ONLY, /* -vv: matched before getopt (cli.c), here for the docs alone */
};

/* What "0" means to a duration flag. */
enum tern_cli_zero {
	TERN_CLI_ZERO_REFUSED, /* a duration of at least 1ms */
	TERN_CLI_ZERO_OFF,     /* 0 switches the feature off */
	TERN_CLI_ZERO_ALLOWED, /* 0 is a duration like any other (no wait) */
};

struct tern_cli_word {
	const char *word;
	int value;
};

struct tern_cli_flag;

/* A custom flag's parser: applies value to *cfg, or returns -EINVAL with
 * the one-line message in err (tern_cli_invalid_value()). */
typedef int (*tern_cli_apply_fn)(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg,
				 char *err, size_t err_len);

struct tern_cli_flag {
	const char *name;    /* long form, without "--" */
	char short_name;     /* '\0': none */
	const char *metavar; /* ADDR, DUR, N...; NULL when no value is taken */
	enum tern_cli_type type;
	/* The struct tern_config field (TERN_CLI_FIELD); 0, 0 for custom rows. */
	size_t offset, size;
	uint64_t min, max;                 /* UINT, DURATION (ms), SIZE; custom rows: for {min}/{max} */
	enum tern_cli_zero zero;           /* DURATION */
	const struct tern_cli_word *words; /* WORDS: ends with {NULL, 0} */
	tern_cli_apply_fn apply;           /* CUSTOM */
	/* The "(expected ...)" of every message about a bad value. NULL:
	 * derived from the type and bounds (tern_cli_flag_expected). */
	const char *expected;
	/* The default as --help shows it. NULL: the value tern_config_init()
	 * puts in the field, written as it would be typed ("16k", "5m") — so
	 * the default shown is the default applied. "": no default shown. */
	const char *default_text;
	/* CUSTOM: when the flag is not given, apply() runs once on
	 * default_text after all flags (--listen, --backend). */
	bool apply_default;
	int action;          /* ACTION: the tern_cli_result to answer */
	const char *help;    /* --help, README, man page: one sentence or two */
	const char *details; /* man page and docs/options.md only, after help; may be NULL */
};

/* For a row's field: TERN_CLI_FIELD(session_cache). */
#define TERN_CLI_FIELD(field) \
	.offset = offsetof(struct tern_config, field), .size = sizeof(((struct tern_config *)0)->field)

/* The table, in --help order; at most TERN_CLI_MAX_FLAGS rows (the
 * parser's getopt arrays are this big). */
#define TERN_CLI_MAX_FLAGS 128
extern const struct tern_cli_flag tern_cli_flags[];
extern const size_t tern_cli_num_flags;

/* The row named name (long form, without "--"), or NULL. */
const struct tern_cli_flag *tern_cli_flag_find(const char *name);

/* Parses value for flag into *cfg by the row's type (custom rows call
 * apply). Returns 0, or -EINVAL with "--NAME: invalid value 'V' (expected
 * ...)" in err. Not for SWITCH, ACTION or DOC_ONLY rows. */
__attribute__((warn_unused_result))
int tern_cli_flag_apply(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg, char *err,
			size_t err_len);

/* Parses value for a UINT, DURATION, SIZE or WORDS row into *v (a
 * word's value), checking the row's bounds, with the messages of
 * tern_cli_flag_apply(): for a caller whose field is not in struct
 * tern_config (tern ctl --timeout). */
__attribute__((warn_unused_result))
int tern_cli_flag_number(const struct tern_cli_flag *flag, const char *value, uint64_t *v, char *err,
			 size_t err_len);

/* The "(expected ...)" text of flag, its placeholders filled in. */
void tern_cli_flag_expected(const struct tern_cli_flag *flag, char *out, size_t out_len);

/* The default of flag as --help shows it, computed from *defaults (a
 * config straight from tern_config_init(); may be NULL for a row with
 * default_text); "" when none is shown. */
void tern_cli_flag_default(const struct tern_cli_flag *flag, const struct tern_config *defaults, char *out,
			   size_t out_len);

/* The word of a WORDS row for value (an enum or bool field's value), or
 * "?": "1.3" for --tls-min's TERN_TLS_1_3. */
const char *tern_cli_flag_word(const struct tern_cli_flag *flag, uint64_t value);

/* "-l, --listen ADDR", "--key FILE", "-vv". */
void tern_cli_flag_label(const struct tern_cli_flag *flag, char *out, size_t out_len);

/* text with {min} and {max} replaced by flag's bounds. */
void tern_cli_expand(const struct tern_cli_flag *flag, const char *text, char *out, size_t out_len);

/* "--NAME: invalid value 'V' (expected EXPECTED)" in err, V escaped and
 * cut; returns -EINVAL. For apply() functions and cli.c. */
int tern_cli_invalid_value(const struct tern_cli_flag *flag, const char *value, const char *expected, char *err,
			   size_t err_len);

/* Longest piece of a value quoted back in a message: enough for any
 * valid unix socket address ("unix:" and 107 bytes), short enough that the
 * "(expected ...)" after it still fits in TERN_CLI_ERR_MAX. */
#define TERN_CLI_SHOWN_MAX 128

/* Copies value for quoting in a message: control characters become \xHH
 * (H a hex digit) so the message stays on one line, and a value longer
 * than TERN_CLI_SHOWN_MAX bytes is cut (at a UTF-8 boundary) and ends in
 * "...". out_len >= TERN_CLI_SHOWN_MAX + 4. */
void tern_cli_show_value(const char *value, char *out, size_t out_len);

/* The message for a well-formed address whose host name did not resolve
 * (--listen, --metrics at once; --backend under --check); returns -EINVAL. */
int tern_cli_cannot_resolve(const struct tern_cli_flag *flag, const char *value, char *err, size_t err_len);

/* --control's socket path, tern's and tern ctl's: sun_path holds it and
 * its NUL. */
#define TERN_CLI_CONTROL_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define TERN_CLI_EXPECT_CONTROL "a non-empty path of at most {max} bytes for the UNIX control socket"

/* What the metavars ADDR, DUR and SIZE stand for: --help and the docs. */
#define TERN_CLI_VALUES_ADDR "HOST:PORT, [IPV6]:PORT, *:PORT (any IPv4 address) or, for backends, unix:/path"
#define TERN_CLI_VALUES_DUR "a number with a unit: 250ms, 30s, 5m or 2h; a bare number is refused"
#define TERN_CLI_VALUES_SIZE "a number of bytes, or a number with k, m or g (powers of 1024)"

/* Written as a space by tern_cli_wrap(), but never broken at: for the
 * default in "[random, in memory]". */
#define TERN_CLI_NBSP '\x1f'

/* Writes text word-wrapped to width columns: the first line continues at
 * column col, the others start at column indent. A word too long for a
 * line of its own at indent goes on a line at column 8. */
void tern_cli_wrap(FILE *out, const char *text, size_t col, size_t indent, size_t width);

/* One --help entry (tern --help, tern ctl --help): label, then help from
 * column col (one space after a longer label), " [dflt]" after it kept
 * on one line (dflt NULL or "": none), wrapped at width. */
void tern_cli_print_entry(FILE *out, const char *label, const char *help, const char *dflt, size_t col,
			  size_t width);

/* tern_cli_print_entry() for a row: its label indented ("  -l, --listen
 * ADDR", "      --key FILE"), its help expanded, its default from
 * *defaults (tern_cli_flag_default). */
void tern_cli_print_flag_entry(FILE *out, const struct tern_cli_flag *flag, const struct tern_config *defaults,
			       size_t col, size_t width);

/* What write() puts out, written into *cache on the first call and kept
 * (--help texts); fallback when no memory could be had. */
const char *tern_cli_text_once(char **cache, void (*write)(FILE *out), const char *fallback);

#endif
