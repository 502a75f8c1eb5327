/* The ticket key file, read: both forms (bare base64 lines, ROLE SINCE KEY
 * lines), the checks on the file itself, and RFC 3339 times. The format
 * and every message are in ticket_keys_file.h; writing a file is
 * ticket_keys_write.c's, editing a list ticket_keys_edit.c's. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "tern/ticket_keys.h"
#include "tern/ticket_keys_file.h"

/* A key file larger than this is not a key file: 64 keys of 108 base64
 * characters fit many times over, with room for comments. */
#define TICKET_FILE_MAX (1024 * 1024)

/* The latest time a SINCE may be: 9999-12-31T23:59:59Z, so that every
 * SINCE formats in four-digit years. */
#define TIME_MAX INT64_C(253402300799)

void tern_ticket_key_list_clear(struct tern_ticket_key_list *l)
{
	OPENSSL_cleanse(l, sizeof(*l));
}

/* ---- RFC 3339 times ---- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil): pure arithmetic, no timegm() and no
 * time zone files. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* n digits at s as a number, or -1 if any is not a digit. */
static int digits(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int tern_ticket_key_time_parse(const char *s, size_t len, int64_t *out)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	/* YYYY-MM-DDTHH:MM:SSZ, and nothing else: no offset, no fraction,
	 * no lowercase t or z. A file written by tern is always this form;
	 * a hand-written one gets a clear refusal rather than a guess. */
	if (len != TERN_TICKET_KEY_TIME_LEN || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[19] != 'Z')
		return -EINVAL;
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	int h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    sec < 0 || sec > 59)
		return -EINVAL;
	if (d > mdays[mo - 1] + (mo == 2 && leap_year(y)))
		return -EINVAL;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	return 0;
}

const char *tern_ticket_key_time_format(int64_t t, char out[TERN_TICKET_KEY_TIME_LEN + 1])
{
	struct tm tm;
	time_t tt = (time_t)t;

	/* The range keeps %Y at four digits, so the text is always 20
	 * characters. */
	if (t < 0 || t > TIME_MAX || !gmtime_r(&tt, &tm) ||
	    strftime(out, TERN_TICKET_KEY_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm) != TERN_TICKET_KEY_TIME_LEN)
		snprintf(out, TERN_TICKET_KEY_TIME_LEN + 1, "unknown");
	return out;
}

/* ---- base64 ---- */

/* Whether s[0..len) is strict base64 (RFC 4648 section 4): a multiple of
 * four characters from the standard alphabet, with at most two '=' and
 * only at the very end. Whitespace anywhere is refused. Sets *out_len to
 * the number of bytes it decodes to. */
static bool base64_check(const char *s, size_t len, size_t *out_len)
{
	if (len == 0 || len % 4 != 0)
		return false;
	size_t pad = 0;
	while (pad < 2 && s[len - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < len - pad; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  c == '+' || c == '/';
		if (!ok)
			return false;
	}
	*out_len = len / 4 * 3 - pad;
	return true;
}

/* Decodes one 80-byte key from text already checked by base64_check.
 * EVP_DecodeBlock writes whole 3-byte groups, padding bytes included (82
 * for an 80-byte key with one '='), so it decodes into a scratch buffer
 * that is cleansed afterwards. */
static int base64_decode_key(const char *s, size_t len, unsigned char key[TERN_TICKET_KEY_LEN])
{
	unsigned char scratch[TERN_TICKET_KEY_LEN + 3];
	int ret = -EIO;

	assert(len / 4 * 3 <= sizeof(scratch));
	int n = EVP_DecodeBlock(scratch, (const unsigned char *)s, (int)len);
	if (n >= TERN_TICKET_KEY_LEN) {
		memcpy(key, scratch, TERN_TICKET_KEY_LEN);
		ret = 0;
	}
	OPENSSL_cleanse(scratch, sizeof(scratch));
	ERR_clear_error();
	return ret;
}

/* ---- lines ---- */

static bool is_blank_char(char c)
{
	return c == ' ' || c == '\t';
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_blank_char(s[i]))
			return false;
	return true;
}

/* One key line, split (text points into the file's data). */
struct key_line {
	bool has_role;
	enum tern_ticket_key_role role;
	const char *since;
	size_t since_len;
	const char *key; /* the base64 text */
	size_t key_len;
};

/* The role a line's first word names, or -1. */
static int role_of(const char *word, size_t len)
{
	static const enum tern_ticket_key_role roles[] = {
		TERN_TICKET_KEY_ENCRYPT, TERN_TICKET_KEY_STAGED, TERN_TICKET_KEY_DECRYPT};
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		const char *name = tern_ticket_key_role_name(roles[i]);
		if (len == strlen(name) && memcmp(word, name, len) == 0)
			return (int)roles[i];
	}
	return -1;
}

/* Splits s[0..len) into at most max words separated by runs of blanks
 * (a leading blank makes an empty first word); returns the number of
 * words, max + 1 when there are more. */
static size_t split_words(const char *s, size_t len, const char **words, size_t *lens, size_t max)
{
	size_t n = 0, pos = 0;
	for (;;) {
		size_t start = pos;
		while (pos < len && !is_blank_char(s[pos]))
			pos++;
		if (n == max)
			return max + 1;
		words[n] = s + start;
		lens[n++] = pos - start;
		while (pos < len && is_blank_char(s[pos]))
			pos++;
		if (pos == len)
			return n;
	}
}

/* Classifies a key line. A line whose first word is a role is a role
 * line and must have exactly three words (trailing blanks are fine); so
 * is any other line of exactly three words, with an unknown role. The
 * rest are bare lines, checked as base64 whole: a bare line with a blank
 * anywhere stays "not base64", as tern always said. */
static int split_key_line(const char *line, size_t len, struct key_line *out, const char **out_reason)
{
	const char *words[3];
	size_t lens[3];
	size_t n = split_words(line, len, words, lens, 3);
	int role = role_of(words[0], lens[0]);

	memset(out, 0, sizeof(*out));
	if (role < 0 && (n != 3 || lens[0] == 0)) {
		out->key = line;
		out->key_len = len;
		return 0;
	}
	out->has_role = true;
	if (role < 0) {
		*out_reason = "unknown role (expected encrypt, staged or decrypt)";
		return -EIO;
	}
	if (n != 3) {
		*out_reason = "expected ROLE SINCE KEY (three fields)";
		return -EIO;
	}
	out->role = (enum tern_ticket_key_role)role;
	out->since = words[1];
	out->since_len = lens[1];
	out->key = words[2];
	out->key_len = lens[2];
	return 0;
}

/* ---- the whole file ---- */

/* The parser's state across lines, for the rules that span them. */
struct parser {
	const char *path;
	char *err;
	size_t err_len;
	unsigned line_no;
	unsigned key_line[TERN_TICKET_KEYS_FILE_MAX]; /* the line of each key */
	unsigned encrypt_line;                        /* 0 until an encrypt key */
	struct tern_ticket_key_list *out;
};

__attribute__((format(printf, 2, 3)))
static int line_error(struct parser *p, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->err_len, "%s:%u: %s", p->path, p->line_no, reason);
	return -EIO;
}

/* Decodes the line's key into key, with the messages tern always gave,
 * in the order it always checked: base64, length, room, then decoding. */
static int decode_key(struct parser *p, const struct key_line *kl, unsigned char key[TERN_TICKET_KEY_LEN])
{
	size_t decoded_len;
	if (!base64_check(kl->key, kl->key_len, &decoded_len))
		return line_error(p, "not base64");
	if (decoded_len != TERN_TICKET_KEY_LEN) {
		/* 48 bytes is the old 16 name + 16 AES-128 + 16 HMAC format,
		 * which tern does not read: say what it wants. */
		return line_error(p, "decodes to %zu bytes, expected %d (%d name + %d HMAC + %d AES)",
				  decoded_len, TERN_TICKET_KEY_LEN, TERN_TICKET_KEY_NAME_LEN,
				  TERN_TICKET_KEY_HMAC_LEN, TERN_TICKET_KEY_AES_LEN);
	}
	if (p->out->num_keys == TERN_TICKET_KEYS_FILE_MAX)
		return line_error(p, "more than %d keys", TERN_TICKET_KEYS_FILE_MAX);
	if (base64_decode_key(kl->key, kl->key_len, key) < 0)
		return line_error(p, "not base64");
	return 0;
}

/* Checks one key line against the file-wide rules and appends it. */
static int parse_key(struct parser *p, const char *line, size_t len)
{
	struct tern_ticket_key_list *l = p->out;
	struct key_line kl;
	const char *reason = NULL;

	int split = split_key_line(line, len, &kl, &reason);
	/* The first key line sets the file's form; mixing is an error at the
	 * line that breaks it, whatever else is wrong with that line. */
	if (l->num_keys == 0)
		l->roles = kl.has_role;
	else if (kl.has_role != l->roles)
		return line_error(p, "mixes bare keys and ROLE SINCE KEY lines (line %u has the other form)",
				  p->key_line[0]);
	if (split < 0)
		return line_error(p, "%s", reason);
	int64_t since = TERN_TICKET_KEY_SINCE_UNKNOWN;
	if (kl.has_role && tern_ticket_key_time_parse(kl.since, kl.since_len, &since) < 0)
		return line_error(p, "bad time (expected UTC as 2026-12-06T04:00:00Z)");
	if (kl.has_role && kl.role == TERN_TICKET_KEY_ENCRYPT && p->encrypt_line != 0)
		return line_error(p, "a second encrypt key (line %u encrypts): exactly one key encrypts",
				  p->encrypt_line);
	unsigned char key[TERN_TICKET_KEY_LEN];
	int ret = decode_key(p, &kl, key);
	if (ret < 0)
		return ret;
	/* decode_key checked there is room for one more. */
	struct tern_ticket_key_entry *e = &l->keys[l->num_keys];
	memcpy(e->key, key, sizeof(key));
	OPENSSL_cleanse(key, sizeof(key));
	for (uint32_t i = 0; i < l->num_keys; i++) {
		if (memcmp(l->keys[i].key, e->key, TERN_TICKET_KEY_NAME_LEN) == 0)
			return line_error(p, "duplicate key name (same as line %u)", p->key_line[i]);
	}
	if (kl.has_role) {
		e->role = kl.role;
		e->since = since;
	} else {
		/* nginx's order: the first line encrypts. */
		e->role = l->num_keys == 0 ? TERN_TICKET_KEY_ENCRYPT : TERN_TICKET_KEY_DECRYPT;
		e->since = TERN_TICKET_KEY_SINCE_UNKNOWN;
	}
	if (e->role == TERN_TICKET_KEY_ENCRYPT)
		p->encrypt_line = p->line_no;
	p->key_line[l->num_keys++] = p->line_no;
	return 0;
}

int tern_ticket_key_list_parse(const char *path, const char *data, size_t data_len,
			       struct tern_ticket_key_list *out, char *err, size_t err_len)
{
	struct parser p = {.path = path, .err = err, .err_len = err_len, .out = out};
	size_t pos = 0;
	int ret = 0;

	tern_ticket_key_list_clear(out);
	while (pos < data_len && ret == 0) {
		const char *line = data + pos;
		const char *nl = memchr(line, '\n', data_len - pos);
		size_t len = nl ? (size_t)(nl - line) : data_len - pos;
		pos += len + (nl ? 1 : 0);
		p.line_no++;

		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (blank(line, len) || line[0] == '#')
			continue;
		ret = parse_key(&p, line, len);
	}
	if (ret == 0 && out->num_keys == 0) {
		snprintf(err, err_len, "%s: no keys", path);
		ret = -EIO;
	}
	if (ret == 0 && p.encrypt_line == 0) {
		snprintf(err, err_len, "%s: no encrypt key: exactly one key encrypts", path);
		ret = -EIO;
	}
	if (ret < 0)
		tern_ticket_key_list_clear(out);
	return ret;
}

/* Opens path and reads all of it into *out_data (allocated; the caller
 * cleanses and frees it), after checking what it is and who may read or
 * write it; *out_st is its fstat(). */
static int read_key_file(const char *path, char **out_data, size_t *out_len, struct stat *out_st,
			 char *err, size_t err_len)
{
	char *data = NULL;
	size_t len = 0;
	struct stat st;
	int ret;

	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = errno == EACCES ? -EACCES : -EIO;
		snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
		return ret;
	}
	/* fstat on the opened descriptor: the mode of what will actually be
	 * read, after symlinks, with no window for a swap between check and
	 * use. */
	if (fstat(fd, &st) < 0) {
		snprintf(err, err_len, "%s: cannot stat: %s", path, strerror(errno));
		ret = -EIO;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, err_len, "%s: not a regular file", path);
		ret = -EIO;
		goto out;
	}
	if (st.st_mode & S_IROTH) {
		snprintf(err, err_len, "%s: readable by other users (mode %04o); chmod 600 or 640 it",
			 path, (unsigned)(st.st_mode & 07777));
		ret = -EACCES;
		goto out;
	}
	/* Whoever can write the keys can forge tickets, and a forged ticket
	 * resumes a session with any identity in it (a client certificate
	 * included): worse than reading them. */
	if (st.st_mode & S_IWOTH) {
		snprintf(err, err_len, "%s: writable by other users (mode %04o); chmod 600 or 640 it",
			 path, (unsigned)(st.st_mode & 07777));
		ret = -EACCES;
		goto out;
	}
	if (st.st_size > TICKET_FILE_MAX) {
		snprintf(err, err_len, "%s: larger than %d bytes, not a key file", path,
			 TICKET_FILE_MAX);
		ret = -EIO;
		goto out;
	}
	/* One byte more than the limit: a file that grew past it since fstat
	 * is still caught. */
	data = malloc(TICKET_FILE_MAX + 1);
	if (!data) {
		snprintf(err, err_len, "%s: out of memory", path);
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, data + len, TICKET_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, err_len, "%s: cannot read: %s", path, strerror(errno));
			ret = -EIO;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > TICKET_FILE_MAX) {
			snprintf(err, err_len, "%s: larger than %d bytes, not a key file", path,
				 TICKET_FILE_MAX);
			ret = -EIO;
			goto out;
		}
	}
	*out_data = data;
	*out_len = len;
	*out_st = st;
	data = NULL;
	ret = 0;
out:
	if (data) {
		OPENSSL_cleanse(data, len);
		free(data);
	}
	close(fd);
	return ret;
}

int tern_ticket_key_list_read(const char *path, struct tern_ticket_key_list *out,
			      struct stat *out_st, char *err, size_t err_len)
{
	char *data = NULL;
	size_t data_len = 0;

	int ret = read_key_file(path, &data, &data_len, out_st, err, err_len);
	if (ret < 0)
		return ret;
	ret = tern_ticket_key_list_parse(path, data, data_len, out, err, err_len);
	OPENSSL_cleanse(data, data_len);
	free(data);
	return ret;
}

int tern_ticket_keys_load_file(const char *path, struct tern_ticket_keys **out, char *err,
			       size_t err_len)
{
	struct stat st;

	/* On the heap: 64 keys, cleansed before they go. */
	struct tern_ticket_key_list *l = malloc(sizeof(*l));
	if (!l) {
		snprintf(err, err_len, "%s: out of memory", path);
		return -ENOMEM;
	}
	int ret = tern_ticket_key_list_read(path, l, &st, err, err_len);
	if (ret == 0) {
		ret = tern_ticket_keys_from_list(l, out);
		if (ret == -ENOMEM)
			snprintf(err, err_len, "%s: out of memory", path);
		else if (ret < 0)
			snprintf(err, err_len, "%s: cannot fingerprint the keys", path);
		if (ret < 0)
			ret = ret == -ENOMEM ? -ENOMEM : -EIO;
	}
	tern_ticket_key_list_clear(l);
	free(l);
	return ret;
}
