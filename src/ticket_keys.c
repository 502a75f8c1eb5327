/* Session ticket keys: the key set, the key file and the OpenSSL ticket
 * callback. See ticket_keys.h for the layout and the threading rules. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "tern/ticket_keys.h"

#define TERN_TICKET_KEYS_MAGIC 0x544b4559u /* "TKEY" */

/* A key file larger than this is not a key file: 64 keys of 108 base64
 * characters fit many times over, with room for comments. */
#define TICKET_FILE_MAX (1024 * 1024)

struct ticket_key {
	unsigned char name[TERN_TICKET_KEY_NAME_LEN];
	unsigned char hmac[TERN_TICKET_KEY_HMAC_LEN];
	unsigned char aes[TERN_TICKET_KEY_AES_LEN];
};

_Static_assert(sizeof(struct ticket_key) == TERN_TICKET_KEY_LEN, "a key is 80 bytes, unpadded");

struct tern_ticket_keys {
	uint32_t magic;
	_Atomic uint32_t refs;
	uint32_t num_keys;
	struct ticket_key keys[]; /* keys[0] encrypts, all decrypt */
};

static struct tern_ticket_keys *keys_alloc(uint32_t num_keys)
{
	struct tern_ticket_keys *k = calloc(1, sizeof(*k) + (size_t)num_keys * sizeof(k->keys[0]));
	if (!k)
		return NULL;
	k->magic = TERN_TICKET_KEYS_MAGIC;
	atomic_init(&k->refs, 1);
	k->num_keys = num_keys;
	return k;
}

static void keys_free(struct tern_ticket_keys *k)
{
	size_t len = sizeof(*k) + (size_t)k->num_keys * sizeof(k->keys[0]);
	/* Cleansing clears the magic too, so a stale pointer fails its check. */
	OPENSSL_cleanse(k, len);
	free(k);
}

struct tern_ticket_keys *tern_ticket_keys_ref(struct tern_ticket_keys *k)
{
	assert(k->magic == TERN_TICKET_KEYS_MAGIC);
	/* Relaxed: the caller already holds a reference, so the set is
	 * alive and its contents visible to this thread. */
	uint32_t old = atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
	assert(old > 0 && old < UINT32_MAX);
	(void)old;
	return k;
}

void tern_ticket_keys_unref(struct tern_ticket_keys *k)
{
	if (!k)
		return;
	assert(k->magic == TERN_TICKET_KEYS_MAGIC);
	/* acq_rel: the release orders this thread's reads of the keys before
	 * the decrement; the acquire on the final decrement orders every
	 * other holder's reads before the free. */
	uint32_t old = atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel);
	assert(old > 0);
	if (old == 1)
		keys_free(k);
}

uint32_t tern_ticket_keys_count(const struct tern_ticket_keys *k)
{
	assert(k->magic == TERN_TICKET_KEYS_MAGIC);
	return k->num_keys;
}

void tern_ticket_keys_name_hex(const struct tern_ticket_keys *k, uint32_t i, char out[33])
{
	static const char hex[] = "0123456789abcdef";
	assert(k->magic == TERN_TICKET_KEYS_MAGIC && i < k->num_keys);
	for (size_t j = 0; j < TERN_TICKET_KEY_NAME_LEN; j++) {
		out[2 * j] = hex[k->keys[i].name[j] >> 4];
		out[2 * j + 1] = hex[k->keys[i].name[j] & 0xf];
	}
	out[2 * TERN_TICKET_KEY_NAME_LEN] = '\0';
}

/* ---- in-memory keys ---- */

static bool name_in(const struct ticket_key *keys, uint32_t num_keys, const unsigned char *name)
{
	for (uint32_t i = 0; i < num_keys; i++)
		if (memcmp(keys[i].name, name, TERN_TICKET_KEY_NAME_LEN) == 0)
			return true;
	return false;
}

/* Fills a fresh key whose name differs from the num_others keys in others.
 * The name is public, so RAND_bytes; the secrets come from the private
 * generator (RAND_priv_bytes), which never shares state with public
 * output. */
static int random_key(struct ticket_key *key, const struct ticket_key *others, uint32_t num_others)
{
	do {
		if (RAND_bytes(key->name, sizeof(key->name)) != 1)
			goto fail;
	} while (name_in(others, num_others, key->name)); /* 2^-128: but cheap */
	if (RAND_priv_bytes(key->hmac, sizeof(key->hmac)) != 1 ||
	    RAND_priv_bytes(key->aes, sizeof(key->aes)) != 1)
		goto fail;
	return 0;
fail:
	ERR_clear_error();
	return -EIO;
}

int tern_ticket_keys_new_random(struct tern_ticket_keys **out)
{
	return tern_ticket_keys_rotate(NULL, out);
}

int tern_ticket_keys_rotate(const struct tern_ticket_keys *old, struct tern_ticket_keys **out)
{
	uint32_t num_old = 0;
	if (old) {
		assert(old->magic == TERN_TICKET_KEYS_MAGIC);
		num_old = old->num_keys;
		if (num_old > TERN_TICKET_KEYS_ROTATE_KEEP - 1)
			num_old = TERN_TICKET_KEYS_ROTATE_KEEP - 1;
	}
	struct tern_ticket_keys *k = keys_alloc(1 + num_old);
	if (!k)
		return -ENOMEM;
	if (num_old > 0)
		memcpy(&k->keys[1], &old->keys[0], num_old * sizeof(k->keys[0]));
	int ret = random_key(&k->keys[0], &k->keys[1], num_old);
	if (ret < 0) {
		keys_free(k);
		return ret;
	}
	*out = k;
	return 0;
}

/* ---- the key file ---- */

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

/* Decodes one 80-byte key from a line already checked by base64_check.
 * EVP_DecodeBlock writes whole 3-byte groups, padding bytes included (82
 * for an 80-byte key with one '='), so it decodes into a scratch buffer
 * that is cleansed afterwards. */
static int base64_decode_key(const char *s, size_t len, struct ticket_key *key)
{
	unsigned char scratch[TERN_TICKET_KEY_LEN + 3];
	int ret = -EIO;

	assert(len / 4 * 3 <= sizeof(scratch));
	int n = EVP_DecodeBlock(scratch, (const unsigned char *)s, (int)len);
	if (n >= TERN_TICKET_KEY_LEN) {
		memcpy(key->name, scratch, sizeof(key->name));
		memcpy(key->hmac, scratch + sizeof(key->name), sizeof(key->hmac));
		memcpy(key->aes, scratch + sizeof(key->name) + sizeof(key->hmac), sizeof(key->aes));
		ret = 0;
	}
	OPENSSL_cleanse(scratch, sizeof(scratch));
	ERR_clear_error();
	return ret;
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

/* Opens path and reads all of it into *out_data (allocated; the caller
 * cleanses and frees it). */
static int read_key_file(const char *path, char **out_data, size_t *out_len, char *err,
			 size_t err_len)
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

/* Parses the file's lines into keys[] (room for TERN_TICKET_KEYS_FILE_MAX),
 * recording each key's line for duplicate messages. */
static int parse_key_file(const char *path, const char *data, size_t data_len,
			  struct ticket_key *keys, uint32_t *out_num_keys, char *err, size_t err_len)
{
	unsigned key_line[TERN_TICKET_KEYS_FILE_MAX];
	uint32_t num_keys = 0;
	unsigned line_no = 0;
	size_t pos = 0;

	while (pos < data_len) {
		const char *line = data + pos;
		const char *nl = memchr(line, '\n', data_len - pos);
		size_t len = nl ? (size_t)(nl - line) : data_len - pos;
		pos += len + (nl ? 1 : 0);
		line_no++;

		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (blank(line, len) || line[0] == '#')
			continue;

		size_t decoded_len;
		if (!base64_check(line, len, &decoded_len)) {
			snprintf(err, err_len, "%s:%u: not base64", path, line_no);
			return -EIO;
		}
		if (decoded_len != TERN_TICKET_KEY_LEN) {
			/* 48 bytes is the old 16 name + 16 AES-128 + 16 HMAC
			 * format, which tern does not read: say what it wants. */
			snprintf(err, err_len,
				 "%s:%u: decodes to %zu bytes, expected %d (%d name + %d HMAC + %d AES)",
				 path, line_no, decoded_len, TERN_TICKET_KEY_LEN,
				 TERN_TICKET_KEY_NAME_LEN, TERN_TICKET_KEY_HMAC_LEN,
				 TERN_TICKET_KEY_AES_LEN);
			return -EIO;
		}
		if (num_keys == TERN_TICKET_KEYS_FILE_MAX) {
			snprintf(err, err_len, "%s:%u: more than %d keys", path, line_no,
				 TERN_TICKET_KEYS_FILE_MAX);
			return -EIO;
		}
		if (base64_decode_key(line, len, &keys[num_keys]) < 0) {
			snprintf(err, err_len, "%s:%u: not base64", path, line_no);
			return -EIO;
		}
		for (uint32_t i = 0; i < num_keys; i++) {
			if (memcmp(keys[i].name, keys[num_keys].name, TERN_TICKET_KEY_NAME_LEN) == 0) {
				snprintf(err, err_len, "%s:%u: duplicate key name (same as line %u)",
					 path, line_no, key_line[i]);
				return -EIO;
			}
		}
		key_line[num_keys++] = line_no;
	}
	if (num_keys == 0) {
		snprintf(err, err_len, "%s: no keys", path);
		return -EIO;
	}
	*out_num_keys = num_keys;
	return 0;
}

int tern_ticket_keys_load_file(const char *path, struct tern_ticket_keys **out, char *err,
			       size_t err_len)
{
	struct tern_ticket_keys *k = NULL;
	char *data = NULL;
	size_t data_len = 0;
	uint32_t num_keys = 0;

	/* Parsed into a full-size set first, then copied into one of the
	 * right size: both are cleansed when freed. */
	struct tern_ticket_keys *all = keys_alloc(TERN_TICKET_KEYS_FILE_MAX);
	if (!all)
		return -ENOMEM;
	int ret = read_key_file(path, &data, &data_len, err, err_len);
	if (ret < 0)
		goto out;
	ret = parse_key_file(path, data, data_len, all->keys, &num_keys, err, err_len);
	if (ret < 0)
		goto out;
	k = keys_alloc(num_keys);
	if (!k) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(k->keys, all->keys, num_keys * sizeof(k->keys[0]));
	*out = k;
	ret = 0;
out:
	if (ret == -ENOMEM)
		snprintf(err, err_len, "%s: out of memory", path);
	if (data) {
		OPENSSL_cleanse(data, data_len);
		free(data);
	}
	keys_free(all);
	return ret;
}

/* ---- the OpenSSL ticket callback ---- */

static pthread_once_t callback_once = PTHREAD_ONCE_INIT;
static int ex_index = -1;
/* Fetched once: EVP_aes_256_cbc() would make every EVP_*Init_ex look the
 * cipher up again by name in OpenSSL 3.0's provider store, which takes the
 * store's lock, on every ticket issued or read. */
static EVP_CIPHER *ticket_cipher;

static void callback_init(void)
{
	ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ticket_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
}

static int mac_init(EVP_MAC_CTX *hctx, const struct ticket_key *key)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key->hmac,
						  sizeof(key->hmac)),
		OSSL_PARAM_construct_end(),
	};
	return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/* SSL_CTX_set_tlsext_ticket_key_evp_cb(3): the ticket is OpenSSL's own
 * format (RFC 5077 section 4's recommendation): key name, IV, the session
 * encrypted with AES-256-CBC, HMAC-SHA256 over all of that. nginx and
 * HAProxy fill the same callback with the same algorithms, so a ticket is
 * readable by any of them holding the same name, HMAC secret and AES key.
 *
 * Returns 1 (parameters set), 2 (set, and issue a fresh ticket), 0 (no
 * ticket: a full handshake, or no ticket issued) or -1 (an error that
 * fails the handshake: the random generator or a cipher init failed). */
static int ticket_key_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
			 EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tern_ticket_keys *const *current = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index);
	const struct tern_ticket_keys *keys = current ? *current : NULL;
	const EVP_CIPHER *cipher = ticket_cipher;

	if (!keys)
		return 0;
	assert(keys->magic == TERN_TICKET_KEYS_MAGIC);
	if (enc) {
		const struct ticket_key *key = &keys->keys[0];
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1 ||
		    EVP_EncryptInit_ex(cctx, cipher, NULL, key->aes, iv) != 1 || mac_init(hctx, key) < 0)
			return -1;
		memcpy(key_name, key->name, TERN_TICKET_KEY_NAME_LEN);
		return 1;
	}

	uint32_t i = 0;
	while (i < keys->num_keys && memcmp(key_name, keys->keys[i].name, TERN_TICKET_KEY_NAME_LEN) != 0)
		i++;
	if (i == keys->num_keys)
		return 0; /* retired or foreign key: a full handshake, not an error */
	const struct ticket_key *key = &keys->keys[i];
	if (mac_init(hctx, key) < 0 || EVP_DecryptInit_ex(cctx, cipher, NULL, key->aes, iv) != 1)
		return -1;
	/* 2 makes OpenSSL issue a fresh ticket under key 0 in this handshake:
	 * - for an older key, so the client does not keep a ticket that stops
	 *   working two rotations from now;
	 * - always in TLS 1.3, where 1 means no ticket at all after the
	 *   resumption (OpenSSL 3.0 clears ticket_expected): a client that
	 *   uses each ticket once (RFC 8446 appendix C.4, as browsers do)
	 *   would then have none left and pay a full handshake next time.
	 *   nginx returns 2 in TLS 1.3 for the same reason. */
	if (i != 0 || SSL_version(ssl) == TLS1_3_VERSION)
		return 2;
	return 1;
}

int tern_ticket_keys_install(SSL_CTX *ctx, struct tern_ticket_keys *const *current)
{
	pthread_once(&callback_once, callback_init);
	if (ex_index < 0 || !ticket_cipher)
		goto fail;
	/* ex_data holds a non-const pointer; the callback only reads through
	 * it. */
	if (SSL_CTX_set_ex_data(ctx, ex_index, (void *)current) != 1)
		goto fail;
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb) != 1)
		goto fail;
	return 0;
fail:
	ERR_clear_error();
	return -ENOMEM;
}
