/* Fuzzes the ticket key file parser (tern_ticket_keys_load_file), which
 * takes a path: the input is written to one temporary file made once per
 * process (mkstemp, mode 0600, as a key file must be), rewritten in place
 * each run with pwrite and ftruncate, and removed at exit. Checks the
 * header's contract: 1..64 keys on success, key 0 and only key 0
 * encrypting, 12-hex-digit fingerprints, -EIO with a "PATH:..." message
 * otherwise, and no key material in a message: no run of 16 base64
 * characters from the file may appear in it after the path.
 *
 * Both forms (bare lines, ROLE SINCE KEY lines) go through the same
 * parser; the list parser (what `tern keys` reads with) must agree with
 * the loader, word for word. A list that parses is then edited as
 * `tern keys FILE rotate` would (convert, rotate at a fixed time) and
 * written out: the text must parse back to exactly the edited list. */
#include <errno.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "tern/ticket_keys.h"
#include "tern/ticket_keys_file.h"

/* A fixed "now" for the edits: 2026-12-06T04:00:00Z. */
#define FUZZ_NOW INT64_C(1796529600)

static char key_path[] = "/tmp/tern-ticket-keys-fuzz-XXXXXX";
static int key_fd = -1;

static void remove_key_file(void)
{
	if (key_fd >= 0) {
		close(key_fd);
		unlink(key_path);
	}
}

static void make_key_file(void)
{
	/* mkstemp creates the file 0600 whatever the umask. */
	key_fd = mkstemp(key_path);
	FUZZ_CHECK(key_fd >= 0);
	atexit(remove_key_file);
}

static bool is_base64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '/' || c == '=';
}

/* Whether msg quotes 16 or more base64 characters that are in the file. */
static bool quotes_file(const char *msg, const uint8_t *data, size_t size)
{
	size_t run = 0;

	for (const char *p = msg; *p != '\0'; p++) {
		run = is_base64_char(*p) ? run + 1 : 0;
		if (run >= 16 && memmem(data, size, p - 15, 16) != NULL)
			return true;
	}
	return false;
}

static bool is_fingerprint(const char *fp)
{
	return strlen(fp) == TERN_TICKET_KEY_FINGERPRINT_LEN &&
	       strspn(fp, "0123456789abcdef") == TERN_TICKET_KEY_FINGERPRINT_LEN;
}

/* Two lists hold the same keys, roles and times in the same order. */
static bool same_list(const struct tern_ticket_key_list *a, const struct tern_ticket_key_list *b)
{
	if (a->num_keys != b->num_keys || a->roles != b->roles)
		return false;
	for (uint32_t i = 0; i < a->num_keys; i++) {
		if (memcmp(a->keys[i].key, b->keys[i].key, TERN_TICKET_KEY_LEN) != 0 ||
		    a->keys[i].role != b->keys[i].role || a->keys[i].since != b->keys[i].since)
			return false;
	}
	return true;
}

/* A rotate of a parsed list, written out and read back. */
static void edit_and_write(struct tern_ticket_key_list *l)
{
	static struct tern_ticket_key_list back;
	static struct tern_ticket_key_changes changes;
	static char text[64 * 1024];
	unsigned char key[TERN_TICKET_KEY_LEN];
	char err[256];

	memset(&changes, 0, sizeof(changes));
	/* A new key whose name no key of the input has: 0xff.. then a
	 * counter, so the run stays deterministic. */
	memset(key, 0xa5, sizeof(key));
	for (unsigned n = 0;; n++) {
		memset(key, 0xff, TERN_TICKET_KEY_NAME_LEN - 1);
		key[TERN_TICKET_KEY_NAME_LEN - 1] = (unsigned char)n;
		bool taken = false;
		for (uint32_t i = 0; i < l->num_keys; i++)
			taken |= memcmp(l->keys[i].key, key, TERN_TICKET_KEY_NAME_LEN) == 0;
		if (!taken)
			break;
	}
	uint32_t before = l->num_keys;
	int rc = tern_ticket_key_list_rotate(l, FUZZ_NOW, 2 * 3600 * 1000, key, &changes, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || (rc == -ENOSPC && before == TERN_TICKET_KEYS_FILE_MAX));
	if (rc < 0)
		return;
	FUZZ_CHECK(l->roles && l->num_keys >= 2 && l->num_keys <= TERN_TICKET_KEYS_FILE_MAX);
	FUZZ_CHECK(changes.num >= 1 && changes.c[changes.num - 1].kind == TERN_TICKET_KEY_ADDED);
	unsigned num_encrypt = 0, num_staged = 0;
	for (uint32_t i = 0; i < l->num_keys; i++) {
		num_encrypt += l->keys[i].role == TERN_TICKET_KEY_ENCRYPT;
		num_staged += l->keys[i].role == TERN_TICKET_KEY_STAGED;
	}
	FUZZ_CHECK(num_encrypt == 1 && num_staged >= 1);
	FUZZ_CHECK(l->keys[0].role == TERN_TICKET_KEY_ENCRYPT); /* the order tern writes */

	long len = tern_ticket_key_list_format(l, text, sizeof(text));
	FUZZ_CHECK(len > 0);
	rc = tern_ticket_key_list_parse("written", text, (size_t)len, &back, err, sizeof(err));
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(same_list(l, &back));
	tern_ticket_key_list_clear(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tern_ticket_key_list list;

	if (key_fd < 0)
		make_key_file();
	FUZZ_CHECK(ftruncate(key_fd, 0) == 0);
	size_t done = 0;
	while (done < size) {
		ssize_t n = pwrite(key_fd, data + done, size - done, (off_t)done);
		FUZZ_CHECK(n > 0);
		done += (size_t)n;
	}

	struct tern_ticket_keys *keys = NULL;
	uint32_t num_loaded = 0;
	char err[512];
	memset(err, 0, sizeof(err));
	int rc = tern_ticket_keys_load_file(key_path, &keys, err, sizeof(err));
	if (rc == 0) {
		FUZZ_CHECK(keys != NULL);
		uint32_t n = tern_ticket_keys_count(keys);
		FUZZ_CHECK(n >= 1 && n <= TERN_TICKET_KEYS_FILE_MAX);
		num_loaded = n;
		char name[33], fp[TERN_TICKET_KEY_FINGERPRINT_LEN + 1];
		for (uint32_t i = 0; i < n; i++) {
			tern_ticket_keys_name_hex(keys, i, name);
			FUZZ_CHECK(strlen(name) == 32 && strspn(name, "0123456789abcdef") == 32);
			FUZZ_CHECK((tern_ticket_keys_role(keys, i) == TERN_TICKET_KEY_ENCRYPT) == (i == 0));
			tern_ticket_keys_fingerprint(keys, i, fp);
			FUZZ_CHECK(is_fingerprint(fp));
		}
		tern_ticket_keys_unref(keys);
	} else {
		FUZZ_CHECK(rc == -EIO || rc == -ENOMEM);
		FUZZ_CHECK(keys == NULL);
		FUZZ_CHECK(strncmp(err, key_path, strlen(key_path)) == 0 && err[strlen(key_path)] == ':');
		FUZZ_CHECK(strchr(err, '\n') == NULL);
		FUZZ_CHECK(!quotes_file(err + strlen(key_path), data, size));
	}

	char list_err[512];
	memset(list_err, 0, sizeof(list_err));
	int list_rc = tern_ticket_key_list_parse(key_path, (const char *)data, size, &list, list_err,
						 sizeof(list_err));
	FUZZ_CHECK((list_rc == 0) == (rc == 0));
	if (list_rc == 0) {
		FUZZ_CHECK(list.num_keys == num_loaded);
		edit_and_write(&list);
	} else if (rc == -EIO) {
		FUZZ_CHECK(strcmp(list_err, err) == 0);
	}
	tern_ticket_key_list_clear(&list);
	return 0;
}
