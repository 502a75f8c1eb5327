/* Fuzzes the ticket key file parser (tern_ticket_keys_load_file), which
 * takes a path: the input is written to one temporary file made once per
 * process (mkstemp, mode 0600, as a key file must be), rewritten in place
 * each run with pwrite and ftruncate, and removed at exit. Checks the
 * header's contract: 1..64 keys on success, -EIO with a "PATH:..."
 * message otherwise, and no key material in a message: no run of 16
 * base64 characters from the file may appear in it after the path. */
#include <errno.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "tern/ticket_keys.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
	char err[512];
	memset(err, 0, sizeof(err));
	int rc = tern_ticket_keys_load_file(key_path, &keys, err, sizeof(err));
	if (rc == 0) {
		FUZZ_CHECK(keys != NULL);
		uint32_t n = tern_ticket_keys_count(keys);
		FUZZ_CHECK(n >= 1 && n <= TERN_TICKET_KEYS_FILE_MAX);
		char name[33];
		for (uint32_t i = 0; i < n; i++) {
			tern_ticket_keys_name_hex(keys, i, name);
			FUZZ_CHECK(strlen(name) == 32 && strspn(name, "0123456789abcdef") == 32);
		}
		tern_ticket_keys_unref(keys);
	} else {
		FUZZ_CHECK(rc == -EIO || rc == -ENOMEM);
		FUZZ_CHECK(keys == NULL);
		FUZZ_CHECK(strncmp(err, key_path, strlen(key_path)) == 0 && err[strlen(key_path)] == ':');
		FUZZ_CHECK(strchr(err, '\n') == NULL);
		FUZZ_CHECK(!quotes_file(err + strlen(key_path), data, size));
	}
	return 0;
}
