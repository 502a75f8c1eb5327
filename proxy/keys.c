/* `tern keys`: one edit of a ticket key file, printed as it happened.
 *
 * The edits themselves are pure functions on a key list
 * (src/ticket_keys_edit.c), and reading and writing the file are
 * src/ticket_keys_file.c's and src/ticket_keys_write.c's; this file reads
 * the command line, runs read, edit and write in that order, and prints
 * the changes only once the new file is in place, so that a printed line
 * always means a done change. Keys are named by fingerprint only. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "keys.h"
#include "tern/parse.h"
#include "tern/ticket_keys.h"
#include "tern/ticket_keys_file.h"

#define EXPECT_COMMAND "generate, add, promote, retire, rotate or list"
#define EXPECT_DURATION "a duration with a unit such as 30m or 2h"
#define EXPECT_DURATION_RANGE "a duration from 1ms to 720h"
/* Longest argument quoted back in a message. */
#define SHOWN_MAX 128

static const struct {
	const char *name;
	enum tern_keys_command command;
} commands[] = {
	{"generate", TERN_KEYS_GENERATE}, {"add", TERN_KEYS_ADD},       {"promote", TERN_KEYS_PROMOTE},
	{"retire", TERN_KEYS_RETIRE},     {"rotate", TERN_KEYS_ROTATE}, {"list", TERN_KEYS_LIST},
};

/* ---- the command line ---- */

/* arg as it may be shown: control characters as \xNN, cut to SHOWN_MAX
 * bytes with "...", so that an argument cannot drive the terminal. */
static const char *shown(const char *arg, char out[SHOWN_MAX + 8])
{
	size_t used = 0;
	for (const char *p = arg; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (used + 4 > SHOWN_MAX) {
			memcpy(out + used, "...", 3);
			used += 3;
			break;
		}
		if (c < 0x20 || c == 0x7f)
			used += (size_t)snprintf(out + used, 5, "\\x%02x", c);
		else
			out[used++] = (char)c;
	}
	out[used] = '\0';
	return out;
}

__attribute__((format(printf, 3, 4)))
static int usage_error(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_lifetime(const char *value, uint64_t *out_ms, char *err, size_t err_len)
{
	char buf[SHOWN_MAX + 8];

	if (value == NULL)
		return usage_error(err, err_len, "--lifetime: missing value (expected %s)", EXPECT_DURATION);
	int rc = tern_parse_duration_ms(value, false, out_ms);
	if (rc < 0)
		return usage_error(err, err_len, "--lifetime: invalid value '%s' (expected %s)", shown(value, buf),
				   rc == -ERANGE ? EXPECT_DURATION_RANGE : EXPECT_DURATION);
	return 0;
}

/* The arguments after COMMAND: --lifetime DUR or --lifetime=DUR, rotate's. */
static int parse_options(int argc, char **argv, int first, struct tern_keys_options *out, char *err,
			 size_t err_len)
{
	char buf[SHOWN_MAX + 8];

	for (int i = first; i < argc; i++) {
		const char *arg = argv[i];
		bool lifetime = strcmp(arg, "--lifetime") == 0 || strncmp(arg, "--lifetime=", 11) == 0;
		if (!lifetime)
			return usage_error(err, err_len, "%s: unexpected argument '%s'", argv[2], shown(arg, buf));
		if (out->command != TERN_KEYS_ROTATE)
			return usage_error(err, err_len, "--lifetime: only rotate takes it");
		const char *value = arg[10] == '=' ? arg + 11 : (i + 1 < argc ? argv[++i] : NULL);
		int rc = parse_lifetime(value, &out->lifetime_ms, err, err_len);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int tern_keys_parse_args(int argc, char **argv, struct tern_keys_options *out, char *err, size_t err_len)
{
	char buf[SHOWN_MAX + 8];

	memset(out, 0, sizeof(*out));
	out->lifetime_ms = TERN_KEYS_DEFAULT_LIFETIME_MS;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return TERN_KEYS_HELP;
	if (argc < 2)
		return usage_error(err, err_len, "missing FILE (see tern keys --help)");
	if (argv[1][0] == '-')
		return usage_error(err, err_len, "unknown option '%s' (see tern keys --help)", shown(argv[1], buf));
	if (argv[1][0] == '\0')
		return usage_error(err, err_len, "missing FILE (see tern keys --help)");
	out->path = argv[1];
	if (argc < 3)
		return usage_error(err, err_len, "missing COMMAND (expected " EXPECT_COMMAND ")");
	size_t i = 0;
	while (i < sizeof(commands) / sizeof(commands[0]) && strcmp(argv[2], commands[i].name) != 0)
		i++;
	if (i == sizeof(commands) / sizeof(commands[0]))
		return usage_error(err, err_len, "unknown command '%s' (expected " EXPECT_COMMAND ")",
				   shown(argv[2], buf));
	out->command = commands[i].command;
	return parse_options(argc, argv, 3, out, err, err_len);
}

/* ---- printing ---- */

/* secs as "2d3h4m5s", "1h0m0s", "42s"; negative ages (a SINCE ahead of
 * this machine's clock) keep their sign, so the skew shows. */
static void format_age(int64_t secs, char out[32])
{
	const char *sign = secs < 0 ? "-" : "";
	uint64_t s = secs < 0 ? (uint64_t)(-(secs + 1)) + 1 : (uint64_t)secs;
	uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;

	s %= 60;
	if (d > 0)
		snprintf(out, 32, "%s%llud%lluh%llum%llus", sign, (unsigned long long)d, (unsigned long long)h,
			 (unsigned long long)m, (unsigned long long)s);
	else if (h > 0)
		snprintf(out, 32, "%s%lluh%llum%llus", sign, (unsigned long long)h, (unsigned long long)m,
			 (unsigned long long)s);
	else if (m > 0)
		snprintf(out, 32, "%s%llum%llus", sign, (unsigned long long)m, (unsigned long long)s);
	else
		snprintf(out, 32, "%s%llus", sign, (unsigned long long)s);
}

/* One line per key, in file order: FINGERPRINT ROLE SINCE AGE; SINCE is
 * "unknown" and AGE "-" for a bare line. */
static int print_list(const struct tern_ticket_key_list *l, int64_t now, FILE *out)
{
	for (uint32_t i = 0; i < l->num_keys; i++) {
		const struct tern_ticket_key_entry *e = &l->keys[i];
		char fp[TERN_TICKET_KEY_FINGERPRINT_LEN + 1], since[TERN_TICKET_KEY_TIME_LEN + 1], age[32] = "-";
		if (tern_ticket_key_fingerprint(e->key, fp) < 0)
			return -EIO;
		if (e->since != TERN_TICKET_KEY_SINCE_UNKNOWN)
			format_age(now - e->since, age);
		fprintf(out, "%s %-7s %s %s\n", fp, tern_ticket_key_role_name(e->role),
			tern_ticket_key_time_format(e->since, since), age);
	}
	return 0;
}

static void print_change(const struct tern_ticket_key_change *c, FILE *out)
{
	char since[TERN_TICKET_KEY_TIME_LEN + 1];
	const char *from = tern_ticket_key_role_name(c->from), *to = tern_ticket_key_role_name(c->to);

	tern_ticket_key_time_format(c->since, since);
	switch (c->kind) {
	case TERN_TICKET_KEY_CONVERTED:
		fprintf(out, "converted %u bare key%s to roles: %s encrypt, %u decrypt\n", c->count,
			c->count == 1 ? "" : "s", c->fingerprint, c->count - 1);
		break;
	case TERN_TICKET_KEY_ADDED:
		fprintf(out, "added %s as %s\n", c->fingerprint, to);
		break;
	case TERN_TICKET_KEY_PROMOTED:
		fprintf(out, "promoted %s (%s since %s) to %s\n", c->fingerprint, from, since, to);
		break;
	case TERN_TICKET_KEY_DEMOTED:
		fprintf(out, "demoted %s (%s since %s) to %s\n", c->fingerprint, from, since, to);
		break;
	case TERN_TICKET_KEY_RETIRED:
		fprintf(out, "retired %s (%s since %s)\n", c->fingerprint, from, since);
		break;
	}
}

/* ---- running ---- */

/* The edit itself, on a list read from the file (empty for generate). */
static int edit(const struct tern_keys_options *o, struct tern_ticket_key_list *l, int64_t now,
		struct tern_ticket_key_changes *ch, char *err, size_t err_len)
{
	unsigned char key[TERN_TICKET_KEY_LEN];
	int ret = 0;

	if (o->command == TERN_KEYS_GENERATE || o->command == TERN_KEYS_ADD || o->command == TERN_KEYS_ROTATE) {
		ret = tern_ticket_key_list_new_key(l, key);
		if (ret < 0) {
			snprintf(err, err_len, "the random generator failed");
			return ret;
		}
	}
	switch (o->command) {
	case TERN_KEYS_GENERATE:
		ret = tern_ticket_key_list_generate(l, now, key, ch, err, err_len);
		break;
	case TERN_KEYS_ADD:
		ret = tern_ticket_key_list_add(l, now, key, ch, err, err_len);
		break;
	case TERN_KEYS_PROMOTE:
		ret = tern_ticket_key_list_promote(l, now, ch, err, err_len);
		break;
	case TERN_KEYS_RETIRE:
		ret = tern_ticket_key_list_retire(l, now, ch, err, err_len);
		break;
	case TERN_KEYS_ROTATE:
		ret = tern_ticket_key_list_rotate(l, now, o->lifetime_ms, key, ch, err, err_len);
		break;
	case TERN_KEYS_LIST:
		break;
	}
	OPENSSL_cleanse(key, sizeof(key));
	return ret;
}

/* Reads (unless generating), edits or lists, writes; err gets
 * "PATH: reason" on failure. */
static int run_command(const struct tern_keys_options *o, struct tern_ticket_key_list *l, int64_t now,
		       struct tern_ticket_key_changes *ch, FILE *out, char *err, size_t err_len)
{
	struct stat st;
	char why[256];

	int ret = o->command == TERN_KEYS_GENERATE ? 0 : tern_ticket_key_list_read(o->path, l, &st, err, err_len);
	if (ret < 0)
		return ret;
	if (o->command == TERN_KEYS_LIST) {
		ret = print_list(l, now, out);
		if (ret < 0)
			snprintf(err, err_len, "%s: cannot fingerprint the keys", o->path);
		return ret;
	}
	ret = edit(o, l, now, ch, why, sizeof(why));
	if (ret < 0) {
		snprintf(err, err_len, "%s: %s", o->path, why);
		return ret;
	}
	ret = tern_ticket_key_list_write(o->path, l, o->command == TERN_KEYS_GENERATE ? NULL : &st, err, err_len);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < ch->num; i++)
		print_change(&ch->c[i], out);
	return 0;
}

int tern_keys_run(int argc, char **argv, int64_t now, FILE *out, FILE *err)
{
	struct tern_keys_options o;
	char msg[PATH_MAX + 512];

	int rc = tern_keys_parse_args(argc, argv, &o, msg, sizeof(msg));
	if (rc < 0) {
		fprintf(err, "tern keys: %s\n", msg);
		return TERN_KEYS_EXIT_USAGE;
	}
	if (rc == TERN_KEYS_HELP) {
		fputs(tern_keys_usage(), out);
		return TERN_KEYS_EXIT_OK;
	}
	/* On the heap: 64 keys, cleansed before they go. */
	struct tern_ticket_key_list *l = calloc(1, sizeof(*l));
	struct tern_ticket_key_changes *ch = calloc(1, sizeof(*ch));
	int status = TERN_KEYS_EXIT_FAILED;
	if (!l || !ch)
		snprintf(msg, sizeof(msg), "%s: out of memory", o.path);
	else if (run_command(&o, l, now, ch, out, msg, sizeof(msg)) == 0)
		status = TERN_KEYS_EXIT_OK;
	if (status != TERN_KEYS_EXIT_OK)
		fprintf(err, "tern keys: %s\n", msg);
	if (l)
		tern_ticket_key_list_clear(l);
	free(l);
	free(ch);
	if (fflush(out) != 0 && status == TERN_KEYS_EXIT_OK)
		status = TERN_KEYS_EXIT_FAILED; /* a full disk or a closed pipe */
	return status;
}

int tern_keys_main(int argc, char **argv)
{
	return tern_keys_run(argc, argv, (int64_t)time(NULL), stdout, stderr);
}

static const char keys_usage[] =
	"Usage: tern keys FILE COMMAND\n"
	"       tern keys FILE rotate [--lifetime DUR]\n"
	"\n"
	"Edits a session ticket key file (tern --ticket-keys FILE) and prints what it\n"
	"did, one line per change. Each edit reads FILE with tern's own checks, writes\n"
	"the whole new file next to it (mode 0600, or 0640 if FILE was; the same owner\n"
	"and group when run as root) and renames it over FILE, so that readers see the\n"
	"old file or the new one.\n"
	"Exit status: 0 done, 1 FILE cannot be read or written or the edit is refused,\n"
	"2 for bad usage.\n"
	"\n"
	"FILE holds one key per line as ROLE SINCE KEY, KEY 80 bytes in base64 and SINCE\n"
	"the UTC time it took its ROLE (2026-12-06T04:00:00Z):\n"
	"  encrypt  encrypts new tickets, and decrypts: exactly one key\n"
	"  staged   decrypts only, and encrypts next: a new key reaching every instance\n"
	"  decrypt  decrypts only: a former encrypting key, kept until its tickets expire\n"
	"In tern's own words a key encrypts or decrypts: staged is the file's word for\n"
	"a decrypt-only key that will encrypt next. A file of bare base64 lines (nginx's\n"
	"form: the first encrypts) is read as it is and given roles by its first edit\n"
	"(the first key encrypt, the others decrypt). Comments are not kept.\n"
	"\n"
	"Commands:\n"
	"  generate  create FILE with one encrypt key; never overwrites a file\n"
	"  add       add a staged key\n"
	"  promote   the newest staged key encrypts; the encrypting key becomes decrypt\n"
	"  retire    drop the oldest decrypt key (never the encrypt or a staged key)\n"
	"  rotate    promote the staged key if there is one, drop the decrypt keys that\n"
	"            have been decrypt for --lifetime, add a new staged key\n"
	"  list      each key's fingerprint, role, SINCE and age (never the key)\n"
	"\n"
	"Options:\n"
	"      --lifetime DUR  rotate: how long a decrypt key is kept; at least tern's\n"
	"                      --session-lifetime plus the spread of the time FILE takes\n"
	"                      to reach each instance [" TERN_KEYS_DEFAULT_LIFETIME_TEXT "]\n"
	"  -h, --help          print this help and exit\n"
	"\n"
	"A fleet sharing FILE rotates with one repeated edit: `tern keys FILE rotate`,\n"
	"then FILE distributed and re-read (tern ctl rotate-ticket-keys, or a reload),\n"
	"at intervals longer than the distribution takes. Each rotate stages the key the\n"
	"next one will promote, so every instance decrypts what any other encrypts.\n";

_Static_assert(TERN_KEYS_DEFAULT_LIFETIME_MS == 7200000u, "update TERN_KEYS_DEFAULT_LIFETIME_TEXT");

const char *tern_keys_usage(void)
{
	return keys_usage;
}
