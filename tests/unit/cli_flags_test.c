/* Unit tests for the flag table (proxy/cli_flags.c, cli_values.c): that
 * every row is well formed, that the default each row shows is a value
 * the flag accepts and parses to exactly what tern_config_init() sets
 * (so --help, the man page and the README can never show a default
 * other than the one applied), and that the texts derived from a row's
 * type and bounds read as the error messages have always read. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli.h"
#include "cli_flags.h"
#include "tern/parse.h"

/* Both ~80 KiB: off the stack. */
static struct tern_config defaults, parsed;

static void test_rows_are_well_formed(void)
{
	CHECK(tern_cli_num_flags <= TERN_CLI_MAX_FLAGS);
	for (size_t i = 0; i < tern_cli_num_flags; i++) {
		const struct tern_cli_flag *f = &tern_cli_flags[i];
		bool takes_value = f->type != TERN_CLI_SWITCH && f->type != TERN_CLI_ACTION &&
				   f->type != TERN_CLI_DOC_ONLY;

		if (!CHECK(f->name != NULL && f->help != NULL && f->help[0] != '\0'))
			continue;
		/* Names as operators type them: lowercase words and dashes. */
		for (const char *p = f->name; *p != '\0'; p++)
			CHECK(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-');
		if (!CHECK((f->metavar != NULL) == takes_value))
			fprintf(stderr, "    --%s: a metavar exactly when it takes a value\n", f->name);
		for (size_t k = 0; k < i; k++) {
			CHECK(strcmp(f->name, tern_cli_flags[k].name) != 0);
			CHECK(f->short_name == '\0' || f->short_name != tern_cli_flags[k].short_name);
		}
		/* The field's width is one the generic code writes. */
		switch (f->type) {
		case TERN_CLI_SWITCH:
			CHECK_EQ_UINT(f->size, sizeof(bool));
			break;
		case TERN_CLI_UINT:
			CHECK_EQ_UINT(f->size, sizeof(unsigned));
			CHECK(f->min <= f->max);
			break;
		case TERN_CLI_DURATION:
			CHECK_EQ_UINT(f->size, sizeof(uint64_t));
			CHECK(f->min <= f->max && f->max <= TERN_MAX_DURATION_MS);
			CHECK((f->min == 0) == (f->zero != TERN_CLI_ZERO_REFUSED));
			break;
		case TERN_CLI_SIZE:
			CHECK_EQ_UINT(f->size, sizeof(size_t));
			CHECK(f->min <= f->max);
			break;
		case TERN_CLI_WORDS:
			CHECK(f->size == 1 || f->size == 4);
			CHECK(f->words != NULL && f->words[0].word != NULL);
			break;
		case TERN_CLI_STRING:
			CHECK_EQ_UINT(f->size, sizeof(const char *));
			CHECK(f->expected != NULL);
			break;
		case TERN_CLI_CUSTOM:
			CHECK(f->apply != NULL && f->expected != NULL && f->default_text != NULL);
			break;
		case TERN_CLI_ACTION:
		case TERN_CLI_DOC_ONLY:
			break;
		}
		CHECK(!f->apply_default || f->type == TERN_CLI_CUSTOM);
		/* Every placeholder filled in. */
		char text[1024];
		tern_cli_expand(f, f->help, text, sizeof(text));
		if (!CHECK(strchr(text, '{') == NULL))
			fprintf(stderr, "    --%s: %s\n", f->name, text);
		if (f->details != NULL) {
			tern_cli_expand(f, f->details, text, sizeof(text));
			CHECK(strchr(text, '{') == NULL);
		}
		tern_cli_flag_expected(f, text, sizeof(text));
		CHECK(strchr(text, '{') == NULL);
	}
}

/* The default shown, typed back as the flag's value, gives the value
 * tern_config_init() set: the shown text cannot drift from the applied
 * one. */
static void test_defaults_shown_are_defaults_applied(void)
{
	char shown[256], err[TERN_CLI_ERR_MAX];
	size_t checked = 0;

	tern_config_init(&defaults);
	for (size_t i = 0; i < tern_cli_num_flags; i++) {
		const struct tern_cli_flag *f = &tern_cli_flags[i];
		if (f->default_text != NULL || f->type == TERN_CLI_SWITCH || f->type == TERN_CLI_CUSTOM ||
		    f->type == TERN_CLI_ACTION || f->type == TERN_CLI_DOC_ONLY)
			continue;
		tern_cli_flag_default(f, &defaults, shown, sizeof(shown));
		/* A different value in the field first, so that a parse that
		 * writes nothing cannot pass. */
		memcpy(&parsed, &defaults, sizeof(parsed));
		memset((char *)&parsed + f->offset, 0x5a, f->size);
		err[0] = '\0';
		if (!CHECK_EQ_INT(tern_cli_flag_apply(f, shown, &parsed, err, sizeof(err)), 0)) {
			fprintf(stderr, "    --%s %s: %s\n", f->name, shown, err);
			continue;
		}
		if (f->type == TERN_CLI_STRING) {
			/* The same text: the field points into what was parsed. */
			const char *want, *got;
			memcpy(&want, (char *)&defaults + f->offset, sizeof(want));
			memcpy(&got, (char *)&parsed + f->offset, sizeof(got));
			if (!CHECK(want != NULL && got == shown && strcmp(got, want) == 0))
				fprintf(stderr, "    --%s: shown default %s is not the default applied\n", f->name, shown);
		} else if (!CHECK(memcmp((char *)&parsed + f->offset, (char *)&defaults + f->offset, f->size) == 0)) {
			fprintf(stderr, "    --%s: shown default %s is not the default applied\n", f->name, shown);
		}
		checked++;
	}
	CHECK(checked >= 25);

	/* Switches are off unless given. */
	for (size_t i = 0; i < tern_cli_num_flags; i++) {
		const struct tern_cli_flag *f = &tern_cli_flags[i];
		if (f->type != TERN_CLI_SWITCH)
			continue;
		CHECK(*((const bool *)((const char *)&defaults + f->offset)) == false);
		tern_cli_flag_default(f, &defaults, shown, sizeof(shown));
		CHECK(strcmp(shown, "off") == 0 || strcmp(shown, "") == 0);
	}
}

static const char *shown_default(const char *name)
{
	static char shown[256];

	tern_cli_flag_default(tern_cli_flag_find(name), &defaults, shown, sizeof(shown));
	return shown;
}

static const char *expected(const char *name)
{
	static char text[256];

	tern_cli_flag_expected(tern_cli_flag_find(name), text, sizeof(text));
	return text;
}

/* The SPEC's defaults, as --help shows them. */
static void test_defaults_shown(void)
{
	CHECK_EQ_STR(shown_default("listen"), "0.0.0.0:8443");
	CHECK_EQ_STR(shown_default("backend"), "127.0.0.1:8080");
	CHECK_EQ_STR(shown_default("workers"), "CPUs allowed");
	CHECK_EQ_STR(shown_default("max-conns"), "100000");
	CHECK_EQ_STR(shown_default("tls-min"), "1.2");
	CHECK_EQ_STR(shown_default("tls-max"), "1.3");
	CHECK_EQ_STR(shown_default("groups"), "X25519:P-256");
	CHECK_EQ_STR(shown_default("num-tickets"), "2");
	CHECK_EQ_STR(shown_default("ticket-rotate"), "1h");
	CHECK_EQ_STR(shown_default("ticket-refresh"), "0");
	CHECK_EQ_STR(shown_default("ticket-flush-delay"), "200ms");
	CHECK_EQ_STR(shown_default("session-lifetime"), "2h");
	CHECK_EQ_STR(shown_default("session-cache"), "20000");
	CHECK_EQ_STR(shown_default("verify-client"), "none");
	CHECK_EQ_STR(shown_default("client-ca"), "none");
	CHECK_EQ_STR(shown_default("watch"), "on");
	CHECK_EQ_STR(shown_default("reload-interval"), "0");
	CHECK_EQ_STR(shown_default("handshake-timeout"), "10s");
	CHECK_EQ_STR(shown_default("idle-timeout"), "5m");
	CHECK_EQ_STR(shown_default("connect-timeout"), "5s");
	CHECK_EQ_STR(shown_default("drain-timeout"), "30s");
	CHECK_EQ_STR(shown_default("buffer-size"), "16k");
	CHECK_EQ_STR(shown_default("ring-entries"), "4096");
	CHECK_EQ_STR(shown_default("read-buffers"), "64");
	CHECK_EQ_STR(shown_default("io"), "auto");
	CHECK_EQ_STR(shown_default("control"), "off");
	CHECK_EQ_STR(shown_default("metrics"), "off");
	CHECK_EQ_STR(shown_default("user"), "stay");
	CHECK_EQ_STR(shown_default("proxy-protocol"), "off");
	CHECK_EQ_STR(shown_default("log-level"), "info");
	CHECK_EQ_STR(shown_default("access-log"), "off");
	CHECK_EQ_STR(shown_default("check"), "");
	CHECK_EQ_STR(shown_default("help"), "");
}

/* The texts derived from types and bounds: what the messages say. */
static void test_expected_texts(void)
{
	CHECK_EQ_STR(expected("workers"), "an integer from 1 to 1024");
	CHECK_EQ_STR(expected("session-cache"), "an integer from 0 to 10000000");
	CHECK_EQ_STR(expected("buffer-size"), "a size such as 16k or 1m, from 1k to 16m");
	CHECK_EQ_STR(expected("idle-timeout"), "a duration with a unit such as 250ms, 30s, 5m or 2h");
	CHECK_EQ_STR(expected("ticket-refresh"), "0 (off) or a duration with a unit such as 250ms, 30s, 5m or 2h");
	CHECK_EQ_STR(expected("ticket-flush-delay"), "0 or a duration with a unit such as 250ms, 30s, 5m or 2h");
	CHECK_EQ_STR(expected("session-lifetime"),
		     "a duration from 1s to 168h (TLS 1.3 allows tickets at most seven days)");
	CHECK_EQ_STR(expected("log-level"), "error, warn, info or debug");
	CHECK_EQ_STR(expected("tls-min"), "1.2 or 1.3");
	CHECK_EQ_STR(expected("watch"), "on or off");
	CHECK_EQ_STR(expected("control"), "a non-empty path of at most 107 bytes for the UNIX control socket");
	CHECK_EQ_STR(expected("alpn"), "a comma list of protocols such as h2,http/1.1, each 1 to 255 printable "
				       "bytes, at most 511 bytes in all");
	CHECK_EQ_STR(expected("check"), "no value");
}

static void test_labels_and_expand(void)
{
	char text[128];

	tern_cli_flag_label(tern_cli_flag_find("listen"), text, sizeof(text));
	CHECK_EQ_STR(text, "-l, --listen ADDR");
	tern_cli_flag_label(tern_cli_flag_find("key"), text, sizeof(text));
	CHECK_EQ_STR(text, "--key FILE");
	tern_cli_flag_label(tern_cli_flag_find("check"), text, sizeof(text));
	CHECK_EQ_STR(text, "--check");
	tern_cli_flag_label(tern_cli_flag_find("vv"), text, sizeof(text));
	CHECK_EQ_STR(text, "-vv");
	CHECK(tern_cli_flag_find("frob") == NULL);

	tern_cli_expand(tern_cli_flag_find("buffer-size"), "{min}..{max} {x}", text, sizeof(text));
	CHECK_EQ_STR(text, "1k..16m {x}");
	tern_cli_expand(tern_cli_flag_find("session-lifetime"), "{min}-{max}", text, sizeof(text));
	CHECK_EQ_STR(text, "1s-168h");
	/* Cut, never overrun. */
	tern_cli_expand(tern_cli_flag_find("workers"), "from {min} to {max}", text, 11);
	CHECK_EQ_STR(text, "from 1 to ");
	tern_cli_expand(tern_cli_flag_find("workers"), "up to {max}", text, 8);
	CHECK_EQ_STR(text, "up to 1");
}

/* --help lays every row out in two columns, defaults in brackets. */
static void test_usage_layout(void)
{
	const char *usage = tern_cli_usage();

	CHECK(strstr(usage, "\n  -l, --listen ADDR            listening address; repeatable, up to 64 "
			    "[0.0.0.0:8443]\n") != NULL);
	CHECK(strstr(usage, "\n      --key FILE               private key for the preceding --cert [key inside the "
			    "cert file]\n") != NULL);
	/* A default too long for the column goes on a line of its own. */
	CHECK(strstr(usage, "\n        [" TERN_DEFAULT_CIPHERSUITES "]\n") != NULL);
	/* A default with spaces is never broken. */
	CHECK(strstr(usage, "[random, in memory]") != NULL);
	CHECK(strstr(usage, "\n  -vv                          print the build") != NULL);
	for (size_t i = 0; i < tern_cli_num_flags; i++) {
		char label[64];
		tern_cli_flag_label(&tern_cli_flags[i], label, sizeof(label));
		if (!CHECK(strstr(usage, label) != NULL))
			fprintf(stderr, "    missing %s\n", label);
	}
	CHECK(usage == tern_cli_usage()); /* made once */
}

int main(void)
{
	test_rows_are_well_formed();
	test_defaults_shown_are_defaults_applied();
	test_defaults_shown();
	test_expected_texts();
	test_labels_and_expand();
	test_usage_layout();
	return check_summary();
}
