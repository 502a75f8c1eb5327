/* --ticket-rotate with --ticket-keys: tern rotating its own key file on a
 * timer (ticket_keys_file.h, tern_ticket_keys_file_rotate). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "tern/ticket_keys_file.h"

/* "promoted 3f2a9c1b04de, retired 77aa01b2c3d4, added 1c2d3e4f5a6b":
 * what the log line says of an edit. */
static void describe_changes(const struct tern_ticket_key_changes *ch, char *out, size_t out_len)
{
	size_t used = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < ch->num && used < out_len; i++) {
		const struct tern_ticket_key_change *c = &ch->c[i];
		const char *verb = c->kind == TERN_TICKET_KEY_ADDED      ? "added"
				   : c->kind == TERN_TICKET_KEY_PROMOTED ? "promoted"
				   : c->kind == TERN_TICKET_KEY_DEMOTED  ? "demoted"
				   : c->kind == TERN_TICKET_KEY_RETIRED  ? "retired"
									 : "converted";
		int m = c->kind == TERN_TICKET_KEY_CONVERTED
				? snprintf(out + used, out_len - used, "%sconverted %u bare key(s)",
					   used ? ", " : "", c->count)
				: snprintf(out + used, out_len - used, "%s%s %s", used ? ", " : "", verb,
					   c->fingerprint);
		if (m < 0)
			return;
		used += (size_t)m;
	}
}

int tern_ticket_keys_file_rotate(const char *path, int64_t now, uint64_t lifetime_ms, char *done,
				 size_t done_len, char *err, size_t err_len)
{
	struct tern_ticket_key_list l;
	struct tern_ticket_key_changes ch = {0};
	unsigned char key[TERN_TICKET_KEY_LEN];
	char why[256];
	struct stat st;
	int ret;

	if (done_len > 0)
		done[0] = '\0';
	memset(&l, 0, sizeof(l));
	ret = tern_ticket_key_list_read(path, &l, &st, err, err_len);
	if (ret < 0)
		goto out;
	ret = tern_ticket_key_list_new_key(&l, key);
	if (ret < 0) {
		snprintf(err, err_len, "%s: the random generator failed", path);
		goto out;
	}
	ret = tern_ticket_key_list_rotate(&l, now, lifetime_ms, key, &ch, why, sizeof(why));
	if (ret < 0) {
		snprintf(err, err_len, "%s: %s", path, why);
		goto out;
	}
	ret = tern_ticket_key_list_write(path, &l, &st, err, err_len);
	if (ret == 0)
		describe_changes(&ch, done, done_len);
out:
	OPENSSL_cleanse(key, sizeof(key));
	tern_ticket_key_list_clear(&l);
	return ret;
}
