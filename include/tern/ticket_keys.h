/* Session ticket keys: one immutable, reference-counted key set shared by
 * every worker's SSL_CTX shard, so a ticket issued by one worker resumes on
 * any other (and, with a key file, on any other server holding that file).
 *
 * A key is 80 bytes, in this order (nginx's layout for its 80-byte
 * ssl_session_ticket_key files):
 *   16 bytes  key name, sent in clear at the start of every ticket
 *   32 bytes  HMAC-SHA256 secret
 *   32 bytes  AES-256-CBC key
 * Key 0 encrypts new tickets; every key of the set decrypts.
 *
 * Each key also has a role and the time it took that role, as the key
 * file says (ticket_keys_file.h): key 0 is the encrypting key, the others
 * are staged (decrypt only, and will encrypt next) or decrypt (decrypt
 * only, and used to encrypt). A fingerprint names a key to operators
 * without revealing it: the first 12 hex digits of SHA-256 over its 80
 * bytes.
 *
 * Sharing keys with other servers (checked against nginx 1.22 and HAProxy
 * 2.6, both ways, TLS 1.2 and 1.3): the tickets are OpenSSL's format with
 * AES-256-CBC and HMAC-SHA256, as theirs are.
 *   nginx: one raw 80-byte file per ssl_session_ticket_key directive, the
 *     first directive encrypting; `base64 -d` of one line of ours is one
 *     such file, in the same byte order.
 *   HAProxy (tls-ticket-keys): base64 lines too, but its 80-byte layout is
 *     name, AES, HMAC (the two 32-byte halves swapped relative to ours), it
 *     wants at least three keys, and the next-to-last line encrypts.
 * Resuming across products also needs the same session id context
 * (SSL_CTX_set_session_id_context: nginx and HAProxy each set their own)
 * and, in TLS 1.3, a cipher suite with the ticket's hash.
 *
 * Threads: a set is immutable once created, so any thread holding a
 * reference may read it. A control thread makes a new set (load_file or
 * rotate) and hands one reference per worker through the worker's queue
 * (a worker whose queue is full gets it later: key_handoff.h); each
 * worker swaps its own `current` pointer on its own thread and drops the
 * reference to the set it replaced. Handshakes already past the ticket
 * callback keep nothing from the old set, so it can go at once.
 *
 * Key material is never logged; key names are not secret. Memory holding
 * keys is cleansed (OPENSSL_cleanse) before it is freed. */
#ifndef TERN_TICKET_KEYS_H
#define TERN_TICKET_KEYS_H

#include <stddef.h>
#include <stdint.h>

struct ssl_ctx_st;
struct tern_ticket_keys;

#define TERN_TICKET_KEY_NAME_LEN 16
#define TERN_TICKET_KEY_HMAC_LEN 32
#define TERN_TICKET_KEY_AES_LEN 32
#define TERN_TICKET_KEY_LEN \
	(TERN_TICKET_KEY_NAME_LEN + TERN_TICKET_KEY_HMAC_LEN + TERN_TICKET_KEY_AES_LEN)
/* Most keys a file may hold. */
#define TERN_TICKET_KEYS_FILE_MAX 64
/* Keys an in-memory rotation keeps with the default --ticket-rotate and
 * --session-lifetime (tern_config_rotate_keep): the new one and the
 * previous two. */
#define TERN_TICKET_KEYS_ROTATE_KEEP 3
/* Hex digits of a key's fingerprint (a NUL follows in the buffers). */
#define TERN_TICKET_KEY_FINGERPRINT_LEN 12
/* The SINCE of a key whose file line does not say (a bare base64 line). */
#define TERN_TICKET_KEY_SINCE_UNKNOWN INT64_MIN

/* What a key does. Every key decrypts; exactly one encrypts. */
enum tern_ticket_key_role {
	TERN_TICKET_KEY_ENCRYPT = 0, /* encrypts new tickets (key 0 of a set) */
	TERN_TICKET_KEY_STAGED,      /* decrypts; the next to encrypt */
	TERN_TICKET_KEY_DECRYPT,     /* decrypts; encrypted before */
};

/* Reads a key file (format in ticket_keys_file.h): either one base64 key
 * per line, each decoding to exactly 80 bytes, the first encrypting, or
 * "ROLE SINCE BASE64" lines with exactly one encrypt key; blank lines and
 * lines starting with '#' are skipped; CRLF line ends are accepted; every
 * key decrypts; 1..64 keys. Key 0 of the set is the encrypting key, the
 * others follow in file order. The file must be neither readable nor
 * writable by "other" (checked on the opened file, after symlinks).
 *
 * Returns 0 and one reference in *out (the caller unrefs it), or:
 *   -EACCES  the file cannot be opened for lack of permission, or other
 *            users may read or write it
 *   -EIO     it cannot be read or its content is invalid
 *   -ENOMEM
 * with "PATH: reason" or "PATH:LINE: reason" in err (never key material).
 * Any thread. */
__attribute__((warn_unused_result))
int tern_ticket_keys_load_file(const char *path, struct tern_ticket_keys **out, char *err,
			       size_t err_len);

/* Makes a set of one fresh random key. Returns 0 and one reference in
 * *out, -ENOMEM, or -EIO when the random generator fails. Any thread. */
__attribute__((warn_unused_result))
int tern_ticket_keys_new_random(struct tern_ticket_keys **out);

/* Makes the set that follows `old` (borrowed; NULL for none): a fresh
 * random key 0, then the first keep - 1 keys of old in their order, so at
 * most keep keys (1..64; tern_config_rotate_keep says how many the
 * session lifetime needs). The new key encrypts and old's key 0 decrypts
 * from now on (their SINCE is now); the other kept keys keep their role
 * and SINCE. Returns 0 and one reference in *out, -ENOMEM, or -EIO when
 * the random generator fails. Any thread. */
__attribute__((warn_unused_result))
int tern_ticket_keys_rotate(const struct tern_ticket_keys *old, uint32_t keep,
			    struct tern_ticket_keys **out);

/* Takes one more reference; returns k. Any thread holding a reference. */
struct tern_ticket_keys *tern_ticket_keys_ref(struct tern_ticket_keys *k);

/* Drops one reference; the last one cleanses and frees the set. NULL is
 * ignored. Any thread. */
void tern_ticket_keys_unref(struct tern_ticket_keys *k);

/* The number of keys in the set, 1..64. */
uint32_t tern_ticket_keys_count(const struct tern_ticket_keys *k);

/* Key i's 16-byte name as 32 lowercase hex digits and a NUL (the name is
 * not secret: it travels in clear in every ticket). i < count. */
void tern_ticket_keys_name_hex(const struct tern_ticket_keys *k, uint32_t i, char out[33]);

/* Key i's role: TERN_TICKET_KEY_ENCRYPT for key 0 and only key 0. i < count. */
enum tern_ticket_key_role tern_ticket_keys_role(const struct tern_ticket_keys *k, uint32_t i);

/* When key i took its role, in seconds since the Unix epoch (UTC), or
 * TERN_TICKET_KEY_SINCE_UNKNOWN for a key from a bare base64 line.
 * i < count. */
int64_t tern_ticket_keys_since(const struct tern_ticket_keys *k, uint32_t i);

/* Key i's fingerprint: 12 lowercase hex digits and a NUL, the same that
 * tern_ticket_key_fingerprint() gives for its 80 bytes. i < count. */
void tern_ticket_keys_fingerprint(const struct tern_ticket_keys *k, uint32_t i,
				  char out[TERN_TICKET_KEY_FINGERPRINT_LEN + 1]);

/* The fingerprint of an 80-byte key (name, HMAC, AES): the first 12 hex
 * digits of SHA-256 over the 80 bytes, lowercase, and a NUL. 48 bits of a
 * hash tell nothing usable about 640 random bits, and are plenty to tell
 * a file's few keys apart. Returns 0, or -EIO when the digest fails.
 * Any thread. */
__attribute__((warn_unused_result))
int tern_ticket_key_fingerprint(const unsigned char key[TERN_TICKET_KEY_LEN],
				char out[TERN_TICKET_KEY_FINGERPRINT_LEN + 1]);

/* "encrypt", "staged" or "decrypt": the role's word in the key file. */
const char *tern_ticket_key_role_name(enum tern_ticket_key_role role);

/* Makes ctx encrypt and decrypt its session tickets (TLS 1.2 and 1.3) with
 * the set *current. `current` points at the owning worker's
 * pointer-to-current-set and must outlive ctx; the worker may replace
 * *current between handshakes, on its own thread, which is also the only
 * thread that runs ctx's handshakes, so the callback reads *current
 * without synchronisation. While *current is NULL no tickets are issued or
 * accepted. An SSL moved to another SSL_CTX (SSL_set_SSL_CTX, as an SNI
 * callback would) reads that context's pointer, so install every context a
 * connection may move to.
 *
 * Decryption with a key other than key 0 succeeds and asks OpenSSL for a
 * fresh ticket under key 0; so does every TLS 1.3 resumption (see
 * ticket_keys.c). A ticket whose key name is unknown is not an error: the
 * handshake is simply a full one.
 *
 * Returns 0, or -ENOMEM when OpenSSL cannot register the callback.
 * The thread building ctx, before ctx serves any handshake. */
__attribute__((warn_unused_result))
int tern_ticket_keys_install(struct ssl_ctx_st *ctx, struct tern_ticket_keys *const *current);

#endif
