/* Session ticket keys: the key set, its keys' roles and fingerprints, and
 * the OpenSSL ticket callback. See ticket_keys.h for the layout and the
 * threading rules; the key file is ticket_keys_file.c's. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "tern/ticket_keys.h"
#include "tern/ticket_keys_file.h"

#define TERN_TICKET_KEYS_MAGIC 0x544b4559u /* "TKEY" */

struct ticket_key {
	unsigned char name[TERN_TICKET_KEY_NAME_LEN];
	unsigned char hmac[TERN_TICKET_KEY_HMAC_LEN];
	unsigned char aes[TERN_TICKET_KEY_AES_LEN];
};

_Static_assert(sizeof(struct ticket_key) == TERN_TICKET_KEY_LEN, "a key is 80 bytes, unpadded");

_Static_assert(sizeof(((struct tern_ticket_key_entry *)0)->key) == sizeof(struct ticket_key),
	       "a list entry's key is a struct ticket_key, byte for byte");

/* What operators see of a key (tern ctl keys, metrics). Kept apart from
 * the keys: the ticket callback never reads it. */
struct ticket_key_meta {
	int64_t since;
	enum tern_ticket_key_role role;
	char fingerprint[TERN_TICKET_KEY_FINGERPRINT_LEN + 1];
};

struct tern_ticket_keys {
	uint32_t magic;
	_Atomic uint32_t refs;
	uint32_t num_keys;
	struct ticket_key_meta meta[TERN_TICKET_KEYS_FILE_MAX]; /* meta[i] describes keys[i] */
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

/* len bytes as 2 * len lowercase hex digits and a NUL. */
static void hex_encode(const unsigned char *bytes, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t j = 0; j < len; j++) {
		out[2 * j] = hex[bytes[j] >> 4];
		out[2 * j + 1] = hex[bytes[j] & 0xf];
	}
	out[2 * len] = '\0';
}

void tern_ticket_keys_name_hex(const struct tern_ticket_keys *k, uint32_t i, char out[33])
{
	assert(k->magic == TERN_TICKET_KEYS_MAGIC && i < k->num_keys);
	hex_encode(k->keys[i].name, TERN_TICKET_KEY_NAME_LEN, out);
}

enum tern_ticket_key_role tern_ticket_keys_role(const struct tern_ticket_keys *k, uint32_t i)
{
	assert(k->magic == TERN_TICKET_KEYS_MAGIC && i < k->num_keys);
	return k->meta[i].role;
}

int64_t tern_ticket_keys_since(const struct tern_ticket_keys *k, uint32_t i)
{
	assert(k->magic == TERN_TICKET_KEYS_MAGIC && i < k->num_keys);
	return k->meta[i].since;
}

void tern_ticket_keys_fingerprint(const struct tern_ticket_keys *k, uint32_t i,
				  char out[TERN_TICKET_KEY_FINGERPRINT_LEN + 1])
{
	assert(k->magic == TERN_TICKET_KEYS_MAGIC && i < k->num_keys);
	memcpy(out, k->meta[i].fingerprint, TERN_TICKET_KEY_FINGERPRINT_LEN + 1);
}

const char *tern_ticket_key_role_name(enum tern_ticket_key_role role)
{
	switch (role) {
	case TERN_TICKET_KEY_ENCRYPT:
		return "encrypt";
	case TERN_TICKET_KEY_STAGED:
		return "staged";
	case TERN_TICKET_KEY_DECRYPT:
		return "decrypt";
	}
	return "?";
}

int tern_ticket_key_fingerprint(const unsigned char key[TERN_TICKET_KEY_LEN],
				char out[TERN_TICKET_KEY_FINGERPRINT_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;

	_Static_assert(TERN_TICKET_KEY_FINGERPRINT_LEN % 2 == 0, "whole bytes of the digest");
	if (EVP_Digest(key, TERN_TICKET_KEY_LEN, md, &md_len, EVP_sha256(), NULL) != 1 ||
	    md_len < TERN_TICKET_KEY_FINGERPRINT_LEN / 2) {
		ERR_clear_error();
		return -EIO;
	}
	hex_encode(md, TERN_TICKET_KEY_FINGERPRINT_LEN / 2, out);
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

/* Sets key i's role and SINCE, and computes its fingerprint. */
static int key_describe(struct tern_ticket_keys *k, uint32_t i, enum tern_ticket_key_role role,
			int64_t since)
{
	k->meta[i].role = role;
	k->meta[i].since = since;
	return tern_ticket_key_fingerprint((const unsigned char *)&k->keys[i], k->meta[i].fingerprint);
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
	return tern_ticket_keys_rotate(NULL, 1, out);
}

int tern_ticket_keys_rotate(const struct tern_ticket_keys *old, uint32_t keep,
			    struct tern_ticket_keys **out)
{
	int64_t now = (int64_t)time(NULL);
	uint32_t num_old = 0;

	assert(keep >= 1 && keep <= TERN_TICKET_KEYS_FILE_MAX);
	if (old) {
		assert(old->magic == TERN_TICKET_KEYS_MAGIC);
		num_old = old->num_keys;
		if (num_old > keep - 1)
			num_old = keep - 1;
	}
	struct tern_ticket_keys *k = keys_alloc(1 + num_old);
	if (!k)
		return -ENOMEM;
	if (num_old > 0) {
		memcpy(&k->keys[1], &old->keys[0], num_old * sizeof(k->keys[0]));
		memcpy(&k->meta[1], &old->meta[0], num_old * sizeof(k->meta[0]));
		/* The old encrypting key decrypts from now on. */
		k->meta[1].role = TERN_TICKET_KEY_DECRYPT;
		k->meta[1].since = now;
	}
	int ret = random_key(&k->keys[0], &k->keys[1], num_old);
	if (ret == 0)
		ret = key_describe(k, 0, TERN_TICKET_KEY_ENCRYPT, now);
	if (ret < 0) {
		keys_free(k);
		return ret;
	}
	*out = k;
	return 0;
}

/* Copies entry e into key i of k. */
static int key_from_entry(struct tern_ticket_keys *k, uint32_t i, const struct tern_ticket_key_entry *e)
{
	memcpy(&k->keys[i], e->key, sizeof(k->keys[i]));
	return key_describe(k, i, e->role, e->since);
}

int tern_ticket_keys_from_list(const struct tern_ticket_key_list *l, struct tern_ticket_keys **out)
{
	uint32_t encrypt = 0, num_encrypt = 0;

	for (uint32_t i = 0; i < l->num_keys; i++) {
		if (l->keys[i].role == TERN_TICKET_KEY_ENCRYPT) {
			encrypt = i;
			num_encrypt++;
		}
	}
	if (l->num_keys == 0 || l->num_keys > TERN_TICKET_KEYS_FILE_MAX || num_encrypt != 1)
		return -EINVAL;
	struct tern_ticket_keys *k = keys_alloc(l->num_keys);
	if (!k)
		return -ENOMEM;
	/* The callback encrypts with key 0: the encrypting key goes first
	 * wherever the file has it; the others keep their order. */
	int ret = key_from_entry(k, 0, &l->keys[encrypt]);
	for (uint32_t i = 0, j = 1; i < l->num_keys && ret == 0; i++) {
		if (i != encrypt)
			ret = key_from_entry(k, j++, &l->keys[i]);
	}
	if (ret < 0) {
		keys_free(k);
		return ret;
	}
	*out = k;
	return 0;
}

int tern_ticket_key_list_new_key(const struct tern_ticket_key_list *l,
				 unsigned char key[TERN_TICKET_KEY_LEN])
{
	struct ticket_key fresh;
	bool taken;

	do {
		int ret = random_key(&fresh, NULL, 0);
		if (ret < 0) {
			OPENSSL_cleanse(&fresh, sizeof(fresh));
			return ret;
		}
		taken = false;
		for (uint32_t i = 0; i < l->num_keys; i++)
			taken |= memcmp(l->keys[i].key, fresh.name, TERN_TICKET_KEY_NAME_LEN) == 0;
	} while (taken); /* 2^-128 per key: but cheap */
	memcpy(key, &fresh, sizeof(fresh));
	OPENSSL_cleanse(&fresh, sizeof(fresh));
	return 0;
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
