/* What the ticket key tests share (ticket_keys_file_test.c,
 * ticket_keys_test.c, ticket_keys_resumption_test.c,
 * ticket_keys_edit_test.c, ticket_keys_write_test.c, keys_test.c): key files written
 * in the test's temporary directory, deterministic keys and their base64
 * lines, and key names as hex. Header-only with static state, like
 * check.h: each test is one .c file and one executable. */
#ifndef TERN_TEST_TICKET_KEYS_FIXTURE_H
#define TERN_TEST_TICKET_KEYS_FIXTURE_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "check.h"
#include "tmp_dir.h"
#include "tern/ticket_keys.h"

/* ---- temp files ---- */

static char tmp_dir[256];
static unsigned tmp_seq;

/* Writes len bytes of content to a new file with the given mode; its name
 * goes to path. */
static inline void write_file_len(char path[PATH_MAX], const char *content, size_t len, mode_t mode)
{
	snprintf(path, PATH_MAX, "%s/keys%u.XXXXXX", tmp_dir, tmp_seq++);
	int fd = mkstemp(path); /* mode 0600 */
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_EQ_INT(write(fd, content, len), (long long)len);
	CHECK_EQ_INT(fchmod(fd, mode), 0);
	close(fd);
}

static inline void write_file(char path[PATH_MAX], const char *content, mode_t mode)
{
	write_file_len(path, content, strlen(content), mode);
}

/* ---- key lines ---- */

/* A deterministic key: name bytes seed+i, HMAC bytes 0x40+seed+i, AES
 * bytes 0x80+seed+i, truncated or extended to len bytes. */
static inline void key_bytes(unsigned char *out, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++) {
		if (i < 16)
			out[i] = (unsigned char)(seed + i);
		else if (i < 48)
			out[i] = (unsigned char)(0x40 + seed + i);
		else
			out[i] = (unsigned char)(0x80 + seed + i);
	}
}

/* The base64 line (no newline) for a key of len bytes made from seed. */
static inline const char *key_line_len(char *out, unsigned seed, size_t len)
{
	unsigned char raw[256];
	key_bytes(raw, len, seed);
	EVP_EncodeBlock((unsigned char *)out, raw, (int)len);
	return out;
}

static inline const char *key_line(char *out, unsigned seed)
{
	return key_line_len(out, seed, TERN_TICKET_KEY_LEN);
}

/* "ROLE SINCE BASE64" (no newline) for the key made from seed; out has
 * 256 bytes, as for key_line. */
static inline const char *role_line(char out[256], const char *role, const char *since, unsigned seed)
{
	char b64[256];
	key_line(b64, seed);
	int n = snprintf(out, 256, "%s %s ", role, since);
	CHECK(n > 0 && n + strlen(b64) < 256);
	if (n > 0 && n + strlen(b64) < 256)
		memcpy(out + n, b64, strlen(b64) + 1);
	return out;
}

/* The hex name of the key made from seed. */
static inline const char *seed_name_hex(char out[33], unsigned seed)
{
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", (seed + i) & 0xff);
	return out;
}

static inline const char *name_hex(const struct tern_ticket_keys *k, uint32_t i, char out[33])
{
	tern_ticket_keys_name_hex(k, i, out);
	return out;
}

/* Appends n key lines, made from seeds 0, step, 2 * step..., each with its
 * newline, to out (which has room for them). */
static inline void append_key_lines(char *out, unsigned n, unsigned step)
{
	char line[256];
	for (unsigned i = 0; i < n; i++) {
		strcat(out, key_line(line, i * step));
		strcat(out, "\n");
	}
}

#endif
