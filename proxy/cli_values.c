/* The generic half of the flag table (cli_flags.h): parsing a value by its
 * row's type, and the texts derived from a row — "(expected ...)", the
 * default as typed, the label — that --help, the error messages and the
 * docs share. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "cli_flags.h"
#include "ctl_internal.h"
#include "tern/parse.h"

#define EXPECT_DURATION "a duration with a unit such as 250ms, 30s, 5m or 2h"

/* tern ctl's escaper (ctl_print.c), given room for TERN_CLI_SHOWN_MAX
 * bytes at most: one set of rules for every value quoted back. */
void tern_cli_show_value(const char *value, char *out, size_t out_len)
{
	size_t room = TERN_CLI_SHOWN_MAX + 4;

	tern_ctl_escape_into(value, strlen(value), out, out_len < room ? out_len : room);
}

int tern_cli_invalid_value(const struct tern_cli_flag *flag, const char *value, const char *expected, char *err,
			   size_t err_len)
{
	char shown[TERN_CLI_SHOWN_MAX + 4];

	tern_cli_show_value(value, shown, sizeof(shown));
	if (err != NULL && err_len > 0)
		snprintf(err, err_len, "--%s: invalid value '%s' (expected %s)", flag->name, shown, expected);
	return -EINVAL;
}

/* One bound as the row's type writes values. */
static void format_bound(const struct tern_cli_flag *flag, uint64_t v, char *out, size_t out_len)
{
	if (flag->type == TERN_CLI_DURATION)
		tern_format_duration_ms(v, out, out_len);
	else if (flag->type == TERN_CLI_SIZE)
		tern_format_size(v, out, out_len);
	else
		snprintf(out, out_len, "%llu", (unsigned long long)v);
}

void tern_cli_expand(const struct tern_cli_flag *flag, const char *text, char *out, size_t out_len)
{
	size_t used = 0;

	if (out_len == 0)
		return;
	while (*text != '\0' && used + 1 < out_len) {
		bool is_min = strncmp(text, "{min}", 5) == 0, is_max = strncmp(text, "{max}", 5) == 0;
		if (is_min || is_max) {
			char bound[32];
			format_bound(flag, is_min ? flag->min : flag->max, bound, sizeof(bound));
			size_t n = strlen(bound);
			if (n > out_len - 1 - used)
				n = out_len - 1 - used;
			memcpy(out + used, bound, n);
			used += n;
			text += 5;
		} else {
			out[used++] = *text++;
		}
	}
	out[used] = '\0';
}

/* "a, b or c" from a word list. */
static void join_words(const struct tern_cli_word *words, char *out, size_t out_len)
{
	size_t num = 0, used = 0;

	while (words[num].word != NULL)
		num++;
	out[0] = '\0';
	for (size_t i = 0; i < num && used < out_len; i++) {
		const char *sep = i == 0 ? "" : i + 1 == num ? " or " : ", ";
		int n = snprintf(out + used, out_len - used, "%s%s", sep, words[i].word);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static const char *duration_expected(enum tern_cli_zero zero)
{
	switch (zero) {
	case TERN_CLI_ZERO_OFF:
		return "0 (off) or " EXPECT_DURATION;
	case TERN_CLI_ZERO_ALLOWED:
		return "0 or " EXPECT_DURATION;
	case TERN_CLI_ZERO_REFUSED:
		break;
	}
	return EXPECT_DURATION;
}

void tern_cli_flag_expected(const struct tern_cli_flag *flag, char *out, size_t out_len)
{
	if (flag->expected != NULL) {
		tern_cli_expand(flag, flag->expected, out, out_len);
		return;
	}
	switch (flag->type) {
	case TERN_CLI_UINT:
		tern_cli_expand(flag, "an integer from {min} to {max}", out, out_len);
		return;
	case TERN_CLI_DURATION:
		snprintf(out, out_len, "%s", duration_expected(flag->zero));
		return;
	case TERN_CLI_SIZE:
		tern_cli_expand(flag, "a size such as 16k or 1m, from {min} to {max}", out, out_len);
		return;
	case TERN_CLI_WORDS:
		join_words(flag->words, out, out_len);
		return;
	default:
		/* Switches and actions take no value. */
		snprintf(out, out_len, "no value");
		return;
	}
}

/* A well-formed duration outside the bounds gets its own words: telling
 * an operator who typed "0s" that a unit is expected would mislead. A row
 * with its own expected text says the bounds there. */
static void duration_range_expected(const struct tern_cli_flag *flag, char *out, size_t out_len)
{
	tern_cli_expand(flag, flag->expected != NULL ? flag->expected : "a duration from {min} to {max}", out,
			out_len);
}

/* Writes v into the field, whatever its width (bool, enum, unsigned,
 * size_t, uint64_t): the table's unit test checks every width. */
static void store_number(struct tern_config *cfg, const struct tern_cli_flag *flag, uint64_t v)
{
	char *field = (char *)cfg + flag->offset;

	switch (flag->size) {
	case 1: {
		uint8_t b = (uint8_t)v;
		memcpy(field, &b, 1);
		break;
	}
	case 4: {
		uint32_t w = (uint32_t)v;
		memcpy(field, &w, 4);
		break;
	}
	case 8:
		memcpy(field, &v, 8);
		break;
	default:
		break;
	}
}

static uint64_t load_number(const struct tern_config *cfg, const struct tern_cli_flag *flag)
{
	const char *field = (const char *)cfg + flag->offset;
	uint8_t b;
	uint32_t w;
	uint64_t v = 0;

	switch (flag->size) {
	case 1:
		memcpy(&b, field, 1);
		return b;
	case 4:
		memcpy(&w, field, 4);
		return w;
	case 8:
		memcpy(&v, field, 8);
		return v;
	default:
		return 0;
	}
}

int tern_cli_flag_number(const struct tern_cli_flag *flag, const char *value, uint64_t *v, char *err,
			 size_t err_len)
{
	char expected[256];
	unsigned long n;
	size_t bytes;
	int rc;

	switch (flag->type) {
	case TERN_CLI_UINT:
		if (tern_parse_uint(value, flag->min, flag->max, &n) < 0)
			break;
		*v = n;
		return 0;
	case TERN_CLI_DURATION:
		rc = tern_parse_duration_ms(value, flag->zero != TERN_CLI_ZERO_REFUSED, v);
		if (rc == 0 && (*v < flag->min || *v > flag->max))
			rc = -ERANGE;
		if (rc == -ERANGE) {
			duration_range_expected(flag, expected, sizeof(expected));
			return tern_cli_invalid_value(flag, value, expected, err, err_len);
		}
		if (rc < 0)
			break;
		return 0;
	case TERN_CLI_SIZE:
		if (tern_parse_size(value, flag->min, flag->max, &bytes) < 0)
			break;
		*v = bytes;
		return 0;
	case TERN_CLI_WORDS:
		for (const struct tern_cli_word *w = flag->words; w->word != NULL; w++) {
			if (strcmp(value, w->word) == 0) {
				*v = (uint64_t)w->value;
				return 0;
			}
		}
		break;
	default:
		if (err != NULL && err_len > 0)
			snprintf(err, err_len, "--%s: not a number (internal error)", flag->name);
		return -EINVAL;
	}
	tern_cli_flag_expected(flag, expected, sizeof(expected));
	return tern_cli_invalid_value(flag, value, expected, err, err_len);
}

int tern_cli_flag_apply(const struct tern_cli_flag *flag, const char *value, struct tern_config *cfg, char *err,
			size_t err_len)
{
	char expected[256];
	uint64_t v;
	int rc;

	switch (flag->type) {
	case TERN_CLI_SWITCH:
		store_number(cfg, flag, 1);
		return 0;
	case TERN_CLI_UINT:
	case TERN_CLI_DURATION:
	case TERN_CLI_SIZE:
	case TERN_CLI_WORDS:
		rc = tern_cli_flag_number(flag, value, &v, err, err_len);
		if (rc < 0)
			return rc;
		store_number(cfg, flag, v);
		return 0;
	case TERN_CLI_STRING:
		/* Strings handed to OpenSSL (or to open()) later: only
		 * emptiness is checked here, OpenSSL judges the rest when the
		 * contexts are built. */
		if (value[0] == '\0')
			break;
		memcpy((char *)cfg + flag->offset, &value, sizeof(value));
		return 0;
	case TERN_CLI_CUSTOM:
		return flag->apply(flag, value, cfg, err, err_len);
	case TERN_CLI_ACTION:
	case TERN_CLI_DOC_ONLY:
		if (err != NULL && err_len > 0)
			snprintf(err, err_len, "--%s: not handled (internal error)", flag->name);
		return -EINVAL;
	}
	tern_cli_flag_expected(flag, expected, sizeof(expected));
	return tern_cli_invalid_value(flag, value, expected, err, err_len);
}

const char *tern_cli_flag_word(const struct tern_cli_flag *flag, uint64_t value)
{
	for (const struct tern_cli_word *w = flag->words; w->word != NULL; w++) {
		if ((uint64_t)(uint32_t)w->value == value)
			return w->word;
	}
	return "?";
}

void tern_cli_flag_default(const struct tern_cli_flag *flag, const struct tern_config *defaults, char *out,
			   size_t out_len)
{
	uint64_t v;
	const char *s;

	if (flag->default_text != NULL) {
		tern_cli_expand(flag, flag->default_text, out, out_len);
		return;
	}
	v = load_number(defaults, flag);
	switch (flag->type) {
	case TERN_CLI_SWITCH:
		snprintf(out, out_len, "%s", v ? "on" : "off");
		return;
	case TERN_CLI_UINT:
		snprintf(out, out_len, "%llu", (unsigned long long)v);
		return;
	case TERN_CLI_DURATION:
		tern_format_duration_ms(v, out, out_len);
		return;
	case TERN_CLI_SIZE:
		tern_format_size(v, out, out_len);
		return;
	case TERN_CLI_WORDS:
		snprintf(out, out_len, "%s", tern_cli_flag_word(flag, v)); /* "?": the table's unit test fails */
		return;
	case TERN_CLI_STRING:
		memcpy(&s, (const char *)defaults + flag->offset, sizeof(s));
		snprintf(out, out_len, "%s", s != NULL ? s : "none");
		return;
	default:
		out[0] = '\0';
		return;
	}
}

void tern_cli_flag_label(const struct tern_cli_flag *flag, char *out, size_t out_len)
{
	if (flag->type == TERN_CLI_DOC_ONLY) {
		snprintf(out, out_len, "-%s", flag->name);
		return;
	}
	char short_part[8] = "";
	if (flag->short_name != '\0')
		snprintf(short_part, sizeof(short_part), "-%c, ", flag->short_name);
	snprintf(out, out_len, "%s--%s%s%s", short_part, flag->name, flag->metavar != NULL ? " " : "",
		 flag->metavar != NULL ? flag->metavar : "");
}

void tern_cli_wrap(FILE *out, const char *text, size_t col, size_t indent, size_t width)
{
	bool first_word = true;

	while (*text != '\0') {
		while (*text == ' ')
			text++;
		size_t len = strcspn(text, " ");
		if (len == 0)
			break;
		if (!first_word && col + 1 + len > width) {
			/* A word no line at indent holds (a long cipher list)
			 * goes on a line of its own, further left. */
			size_t pad = indent + len > width && indent > 8 ? 8 : indent;
			fprintf(out, "\n%*s", (int)pad, "");
			col = pad;
		} else if (!first_word) {
			fputc(' ', out);
			col++;
		}
		for (size_t i = 0; i < len; i++)
			fputc(text[i] == TERN_CLI_NBSP ? ' ' : text[i], out);
		col += len;
		first_word = false;
		text += len;
	}
}

void tern_cli_print_entry(FILE *out, const char *label, const char *help, const char *dflt, size_t col,
			  size_t width)
{
	char text[1536];
	int n = fprintf(out, "%s", label);

	if (n < 0)
		return;
	fprintf(out, "%*s", (size_t)n < col ? (int)(col - (size_t)n) : 1, "");
	snprintf(text, sizeof(text), "%s", help);
	if (dflt != NULL && dflt[0] != '\0') {
		/* " [default]", never broken across lines. */
		size_t used = strlen(text);
		snprintf(text + used, sizeof(text) - used, " [%s]", dflt);
		for (char *p = text + used + 1; *p != '\0'; p++)
			if (*p == ' ')
				*p = TERN_CLI_NBSP;
	}
	tern_cli_wrap(out, text, (size_t)n < col ? col : (size_t)n + 1, col, width);
	fputc('\n', out);
}

void tern_cli_print_flag_entry(FILE *out, const struct tern_cli_flag *flag, const struct tern_config *defaults,
			       size_t col, size_t width)
{
	char label[64], indented[80], help[1024], dflt[256];

	tern_cli_flag_label(flag, label, sizeof(label));
	/* Long-only flags line up after the "-x, " of the others. */
	bool indent_long = flag->short_name == '\0' && flag->type != TERN_CLI_DOC_ONLY;
	snprintf(indented, sizeof(indented), "  %s%s", indent_long ? "    " : "", label);
	tern_cli_expand(flag, flag->help, help, sizeof(help));
	tern_cli_flag_default(flag, defaults, dflt, sizeof(dflt));
	tern_cli_print_entry(out, indented, help, dflt, col, width);
}

const char *tern_cli_text_once(char **cache, void (*write)(FILE *out), const char *fallback)
{
	size_t len;

	if (*cache == NULL) {
		FILE *f = open_memstream(cache, &len);
		if (f == NULL)
			return fallback;
		write(f);
		if (fclose(f) != 0 || *cache == NULL)
			return fallback;
	}
	return *cache;
}
