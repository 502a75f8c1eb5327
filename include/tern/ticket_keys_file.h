/* The ticket key file: reading, writing and editing it as a list of keys
 * in file order (tern --ticket-keys reads it, `tern keys` edits it).
 *
 * A file has one of two forms; a file mixing them is refused.
 *
 *   Bare lines (nginx's form, as tern always read it): one base64 key per
 *   line, 80 bytes decoded; the first encrypts, all decrypt. Their role
 *   follows from the order (first encrypt, the rest decrypt) and their
 *   SINCE is unknown.
 *
 *   Role lines: "ROLE SINCE BASE64", fields separated by spaces or tabs,
 *   where ROLE is
 *     encrypt  encrypts new tickets (and decrypts): exactly one per file
 *     staged   decrypts only: a new key that reaches every instance of a
 *              fleet before any encrypts with it, the next to encrypt
 *     decrypt  decrypts only: a key that used to encrypt and decrypts the
 *              tickets it made until they have expired
 *   and SINCE is the time the key took that role, RFC 3339 in UTC to the
 *   second: 2026-12-06T04:00:00Z.
 *
 * In both, blank lines and lines starting with '#' are skipped, CRLF line
 * ends are accepted and there are 1..64 keys with distinct names.
 *
 * Why roles: a fleet rotates with one kind of edit, `rotate`, which
 * promotes the staged key to encrypt, demotes the encrypting key to
 * decrypt, adds a new staged key and drops the decrypt keys older than
 * the ticket lifetime. Every edit distributes the key the next edit will
 * encrypt with, so an instance that has the file from edit N decrypts
 * everything an instance with edit N+1 issues, and the other way round:
 * resumption never breaks as long as edits are at least one propagation
 * delay apart and decrypt keys are kept longer than tickets live.
 *
 * Key material never appears in a message. Lists hold key bytes: clear
 * them with tern_ticket_key_list_clear() when done. */
#ifndef TERN_TICKET_KEYS_FILE_H
#define TERN_TICKET_KEYS_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "tern/ticket_keys.h"

/* "2026-12-06T04:00:00Z" and a NUL. */
#define TERN_TICKET_KEY_TIME_LEN 20
/* The first line tern writes into a key file. */
#define TERN_TICKET_KEYS_FILE_HEADER "# tern ticket keys: ROLE SINCE KEY; edit with tern keys (see tern keys --help)"

struct tern_ticket_key_entry {
	unsigned char key[TERN_TICKET_KEY_LEN]; /* name | HMAC | AES, as decoded */
	enum tern_ticket_key_role role;
	int64_t since; /* Unix seconds, or TERN_TICKET_KEY_SINCE_UNKNOWN */
};

struct tern_ticket_key_list {
	bool roles; /* the role form; false: bare lines (or no keys yet) */
	uint32_t num_keys;
	struct tern_ticket_key_entry keys[TERN_TICKET_KEYS_FILE_MAX]; /* file order */
};

/* Cleanses the list's keys and empties it. */
void tern_ticket_key_list_clear(struct tern_ticket_key_list *l);

/* Parses a key file's content (len bytes of data) into *out, in file
 * order. path is only for messages. Returns 0, or -EIO with "PATH: reason"
 * or "PATH:LINE: reason" in err. The messages, LINE being the line at
 * fault:
 *   "PATH:LINE: not base64"
 *   "PATH:LINE: decodes to N bytes, expected 80 (16 name + 32 HMAC + 32 AES)"
 *   "PATH:LINE: expected ROLE SINCE KEY (three fields)"
 *   "PATH:LINE: unknown role (expected encrypt, staged or decrypt)"
 *   "PATH:LINE: bad time (expected UTC as 2026-12-06T04:00:00Z)"
 *   "PATH:LINE: mixes bare keys and ROLE SINCE KEY lines (line M has the other form)"
 *   "PATH:LINE: a second encrypt key (line M encrypts): exactly one key encrypts"
 *   "PATH:LINE: more than 64 keys"
 *   "PATH:LINE: duplicate key name (same as line M)"
 *   "PATH: no keys"
 *   "PATH: no encrypt key: exactly one key encrypts"
 * Pure: any thread. */
__attribute__((warn_unused_result))
int tern_ticket_key_list_parse(const char *path, const char *data, size_t len,
			       struct tern_ticket_key_list *out, char *err, size_t err_len);

/* Opens, checks and parses the key file at path as tern's loader does
 * (tern_ticket_keys_load_file: the same checks and messages). On success
 * *out_st is fstat() of the file read, after symlinks. Returns 0, -EACCES,
 * -EIO or -ENOMEM, with the message in err. Any thread. */
__attribute__((warn_unused_result))
int tern_ticket_key_list_read(const char *path, struct tern_ticket_key_list *out,
			      struct stat *out_st, char *err, size_t err_len);

/* The role form of l: TERN_TICKET_KEYS_FILE_HEADER, then one
 * "ROLE SINCE BASE64" line per key in list order, each ending in "\n".
 * Every key must have a known SINCE. Writes up to cap bytes to out (no
 * NUL) and returns the length, or -ENOSPC when it does not fit, -EINVAL
 * for a key whose SINCE is unknown or out of range. The text holds key
 * material: cleanse it. Pure. */
__attribute__((warn_unused_result))
long tern_ticket_key_list_format(const struct tern_ticket_key_list *l, char *out, size_t cap);

/* Replaces the file at path with l in the role form, atomically for any
 * reader: a new file in the same directory (O_CREAT|O_EXCL, mode 0600),
 * written and fsync()ed, renamed over path, then the directory fsync()ed.
 * A symlink at path is followed: its target is replaced.
 *
 * old is fstat() of the file l was read from (tern_ticket_key_list_read):
 * the new file keeps its group's read bit (0640 stays 0640, anything else
 * becomes 0600) and, run as root, its owner and group; and when path no
 * longer names that file (another edit replaced it meanwhile) nothing is
 * replaced. With old NULL the file is created, and never over an existing
 * one (it appears by link(), which fails if the name exists).
 *
 * Returns 0, or -errno with "PATH: reason" in err: -EEXIST "PATH: exists;
 * never overwritten by generate" (old NULL), -EAGAIN "PATH: changed while
 * being edited; nothing written, run the command again", or the failing
 * call's error. The temporary file is removed on failure. Any thread. */
__attribute__((warn_unused_result))
int tern_ticket_key_list_write(const char *path, const struct tern_ticket_key_list *l,
			       const struct stat *old, char *err, size_t err_len);

/* Makes a set from l (1..64 keys, exactly one encrypting, as the parser
 * guarantees): the encrypting key first, then the others in list order,
 * each with its role and SINCE. Returns 0 and one reference in *out,
 * -EINVAL for a list without exactly one encrypting key, -ENOMEM, or -EIO
 * when a fingerprint cannot be computed. Any thread. */
__attribute__((warn_unused_result))
int tern_ticket_keys_from_list(const struct tern_ticket_key_list *l, struct tern_ticket_keys **out);

/* `tern keys PATH rotate --lifetime LIFETIME` done by tern itself
 * (--ticket-rotate with --ticket-keys; ticket_keys_schedule.c): reads the
 * file as the loader does, rotates it at now and writes it back
 * atomically. On success done says what changed ("promoted FP, added FP",
 * fingerprints only). Returns 0, or -errno with "PATH: reason" in err
 * (a read-only file, as a mounted Secret is, fails here). Any thread. */
__attribute__((warn_unused_result))
int tern_ticket_keys_file_rotate(const char *path, int64_t now, uint64_t lifetime_ms, char *done,
				 size_t done_len, char *err, size_t err_len);

/* ---- RFC 3339 times, UTC, to the second ---- */

/* Parses exactly "YYYY-MM-DDTHH:MM:SSZ" (len bytes, no NUL needed) with a
 * real date (leap years counted) and a time up to 23:59:59, from year 1970
 * on. Returns 0 and the Unix seconds in *out, or -EINVAL. Pure. */
__attribute__((warn_unused_result))
int tern_ticket_key_time_parse(const char *s, size_t len, int64_t *out);

/* Formats Unix seconds t (0 to the end of year 9999) as
 * "YYYY-MM-DDTHH:MM:SSZ" and a NUL; "unknown" for
 * TERN_TICKET_KEY_SINCE_UNKNOWN. Returns out. Pure. */
const char *tern_ticket_key_time_format(int64_t t, char out[TERN_TICKET_KEY_TIME_LEN + 1]);

/* ---- edits (ticket_keys_edit.c): pure functions on a list ----
 *
 * Each takes `now` (Unix seconds) for the SINCE of the keys it changes,
 * leaves the list in the role form and in the order tern writes files
 * (the encrypting key, the staged keys, the decrypt keys, each group
 * newest first), and records what it did in *changes (appended). A new key's 80 bytes come from the caller
 * (tern_ticket_key_list_new_key()), so that the functions stay pure and
 * their tests exact. On failure the list is unchanged and err says why,
 * without a path (the caller adds it). */

enum tern_ticket_key_change_kind {
	TERN_TICKET_KEY_CONVERTED, /* bare lines given roles: count keys */
	TERN_TICKET_KEY_ADDED,     /* a new key with role `to` */
	TERN_TICKET_KEY_PROMOTED,  /* `from` (since `since`) to `to` */
	TERN_TICKET_KEY_DEMOTED,   /* the same, downwards */
	TERN_TICKET_KEY_RETIRED,   /* dropped: it was `from` since `since` */
};

struct tern_ticket_key_change {
	enum tern_ticket_key_change_kind kind;
	char fingerprint[TERN_TICKET_KEY_FINGERPRINT_LEN + 1];
	enum tern_ticket_key_role from, to;
	int64_t since;  /* when it took the role `from` */
	uint32_t count; /* CONVERTED: the number of keys */
};

/* Enough for any one command: a conversion, a promotion and a demotion, up
 * to 64 retirements, an addition. */
#define TERN_TICKET_KEY_CHANGES_MAX (TERN_TICKET_KEYS_FILE_MAX + 4)

struct tern_ticket_key_changes {
	unsigned num;
	struct tern_ticket_key_change c[TERN_TICKET_KEY_CHANGES_MAX];
};

/* Fills key with 80 fresh random bytes whose name differs from every key
 * in l: a public random name (RAND_bytes), private random secrets
 * (RAND_priv_bytes). Returns 0 or -EIO. Any thread. */
__attribute__((warn_unused_result))
int tern_ticket_key_list_new_key(const struct tern_ticket_key_list *l,
				 unsigned char key[TERN_TICKET_KEY_LEN]);

/* Gives a bare-line list roles (the first key encrypt, the others decrypt,
 * every SINCE now) and records one CONVERTED change. A list in the role
 * form, or an empty one, is left alone. Returns 0. */
__attribute__((warn_unused_result))
int tern_ticket_key_list_convert(struct tern_ticket_key_list *l, int64_t now,
				 struct tern_ticket_key_changes *changes);

/* An empty list gets `key` as its encrypting key (`tern keys generate`).
 * Returns 0, or -EEXIST when the list is not empty. */
__attribute__((warn_unused_result))
int tern_ticket_key_list_generate(struct tern_ticket_key_list *l, int64_t now,
				  const unsigned char key[TERN_TICKET_KEY_LEN],
				  struct tern_ticket_key_changes *changes, char *err, size_t err_len);

/* Adds `key` as staged since now. Returns 0, -ENOSPC with 64 keys already,
 * -EEXIST when its name is already in the list. */
__attribute__((warn_unused_result))
int tern_ticket_key_list_add(struct tern_ticket_key_list *l, int64_t now,
			     const unsigned char key[TERN_TICKET_KEY_LEN],
			     struct tern_ticket_key_changes *changes, char *err, size_t err_len);

/* The newest staged key (latest SINCE; the first in the list among
 * equals) becomes encrypt and the encrypting key decrypt, both since now.
 * Returns 0, or -ENOENT when no key is staged. */
__attribute__((warn_unused_result))
int tern_ticket_key_list_promote(struct tern_ticket_key_list *l, int64_t now,
				 struct tern_ticket_key_changes *changes, char *err, size_t err_len);

/* Drops the oldest decrypt key (earliest SINCE; the last in the list
 * among equals, so the last line of a bare-line list). Never the
 * encrypting key nor a staged one, so never the last key: returns
 * -ENOENT when there is no decrypt key. */
__attribute__((warn_unused_result))
int tern_ticket_key_list_retire(struct tern_ticket_key_list *l, int64_t now,
				struct tern_ticket_key_changes *changes, char *err, size_t err_len);

/* The one edit a fleet repeats: promote when a key is staged; drop every
 * decrypt key that has been one for lifetime_ms or longer (now - SINCE,
 * so the key demoted by this promotion stays); add `key` as staged. The
 * first rotate of a file with no staged key only adds. Returns 0,
 * -ENOSPC or -EEXIST as add does, or -EINVAL for a zero lifetime (and
 * then the list is unchanged). */
__attribute__((warn_unused_result))
int tern_ticket_key_list_rotate(struct tern_ticket_key_list *l, int64_t now, uint64_t lifetime_ms,
				const unsigned char key[TERN_TICKET_KEY_LEN],
				struct tern_ticket_key_changes *changes, char *err, size_t err_len);

#endif
