/* The ticket key file, written: the role form of a key list, and the
 * atomic replacement of a file that running tern instances (and a fleet's
 * distribution) may read at any moment. See ticket_keys_file.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tern/ticket_keys.h"
#include "tern/ticket_keys_file.h"

/* base64 of 80 bytes: 27 groups of 4 characters. */
#define KEY_BASE64_LEN (((TERN_TICKET_KEY_LEN + 2) / 3) * 4)
/* The longest file tern writes: the header and 64 lines of
 * "decrypt SINCE BASE64\n". */
#define FILE_TEXT_MAX \
	(sizeof(TERN_TICKET_KEYS_FILE_HEADER) + \
	 TERN_TICKET_KEYS_FILE_MAX * (sizeof("decrypt ") + TERN_TICKET_KEY_TIME_LEN + 1 + KEY_BASE64_LEN + 1))
/* Tries at a temporary name before giving up (each name has 48 random
 * bits: a clash means something else is creating files here). */
#define TEMP_NAME_TRIES 16

/* ---- the text ---- */

/* Appends "ROLE SINCE BASE64\n" for e at out + *used. */
static int format_line(const struct tern_ticket_key_entry *e, char *out, size_t cap, size_t *used)
{
	char since[TERN_TICKET_KEY_TIME_LEN + 1];
	char b64[KEY_BASE64_LEN + 1];

	if (e->since == TERN_TICKET_KEY_SINCE_UNKNOWN ||
	    strcmp(tern_ticket_key_time_format(e->since, since), "unknown") == 0)
		return -EINVAL;
	int n = EVP_EncodeBlock((unsigned char *)b64, e->key, TERN_TICKET_KEY_LEN);
	int ret = -ENOSPC;
	if (n == KEY_BASE64_LEN) {
		int m = snprintf(out + *used, cap - *used, "%s %s %s\n", tern_ticket_key_role_name(e->role),
				 since, b64);
		if (m > 0 && (size_t)m < cap - *used) {
			*used += (size_t)m;
			ret = 0;
		}
	}
	OPENSSL_cleanse(b64, sizeof(b64));
	return ret;
}

long tern_ticket_key_list_format(const struct tern_ticket_key_list *l, char *out, size_t cap)
{
	size_t used = 0;

	/* snprintf needs room for its NUL: the text is one byte shorter
	 * than what it writes. */
	int m = snprintf(out, cap, "%s\n", TERN_TICKET_KEYS_FILE_HEADER);
	if (m < 0 || (size_t)m >= cap)
		return -ENOSPC;
	used = (size_t)m;
	for (uint32_t i = 0; i < l->num_keys; i++) {
		int ret = format_line(&l->keys[i], out, cap, &used);
		if (ret < 0) {
			OPENSSL_cleanse(out, used);
			return ret;
		}
	}
	return (long)used;
}

/* ---- the file ---- */

__attribute__((format(printf, 4, 5)))
static int write_error(int ret, char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return ret;
}

/* The directory part of path ("." for a bare name), in dir. */
static void dir_of(const char *path, char dir[PATH_MAX])
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(dir, PATH_MAX, ".");
		return;
	}
	size_t len = slash == path ? 1 : (size_t)(slash - path);
	snprintf(dir, PATH_MAX, "%.*s", (int)len, path);
}

/* Creates a new file next to target, named ".NAME.tern-keys-<12 random hex digits>"
 * (a dot file, so globs such as *.keys skip it): O_CREAT|O_EXCL, mode
 * 0600, never an existing file, never through a symlink. Returns the
 * descriptor with the name in tmp, or -errno. */
static int create_temp(const char *target, char tmp[PATH_MAX])
{
	char dir[PATH_MAX];
	const char *slash = strrchr(target, '/');
	const char *base = slash ? slash + 1 : target;

	dir_of(target, dir);
	for (int i = 0; i < TEMP_NAME_TRIES; i++) {
		unsigned char r[6];
		if (RAND_bytes(r, sizeof(r)) != 1) {
			ERR_clear_error();
			return -EIO;
		}
		int n = snprintf(tmp, PATH_MAX, "%s/.%s.tern-keys-%02x%02x%02x%02x%02x%02x", dir, base, r[0],
				 r[1], r[2], r[3], r[4], r[5]);
		if (n < 0 || n >= PATH_MAX)
			return -ENAMETOOLONG;
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd : -errno;
	}
	return -EEXIST;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Gives the new file the old one's owner and group (as root: nobody else
 * may) and its mode: 0600, or 0640 when the old file let its group read,
 * so that a tern running as that group (root:tern 0640, as
 * docs/operations.md sets up) still reads it. Set explicitly, whatever the
 * umask made of 0600. */
static int take_over_ownership(int fd, const struct stat *old)
{
	mode_t mode = S_IRUSR | S_IWUSR;
	if (old) {
		if (geteuid() == 0 && fchown(fd, old->st_uid, old->st_gid) < 0)
			return -errno;
		mode |= old->st_mode & S_IRGRP;
	}
	return fchmod(fd, mode) < 0 ? -errno : 0;
}

/* Writes text to the new file fd, with its ownership, and makes it
 * durable before it gets its name: a crash after the rename must not
 * leave an empty key file behind. Closes fd. */
static int fill_temp(int fd, const char *text, size_t len, const struct stat *old)
{
	int ret = take_over_ownership(fd, old);
	if (ret == 0)
		ret = write_all(fd, text, len);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	return ret;
}

/* Whether target is still the file that was read (old): another edit
 * that replaced it meanwhile would otherwise be lost without a word. */
static bool still_the_file(const char *target, const struct stat *old)
{
	struct stat now;
	return stat(target, &now) == 0 && now.st_dev == old->st_dev && now.st_ino == old->st_ino &&
	       now.st_size == old->st_size && now.st_mtim.tv_sec == old->st_mtim.tv_sec &&
	       now.st_mtim.tv_nsec == old->st_mtim.tv_nsec;
}

/* fsync() of the directory holding path, so that the new name survives a
 * crash. Filesystems that cannot sync a directory say EINVAL: nothing to
 * do there. */
static int sync_dir(const char *path)
{
	char dir[PATH_MAX];

	dir_of(path, dir);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int ret = fsync(fd) < 0 && errno != EINVAL ? -errno : 0;
	close(fd);
	return ret;
}

/* Puts the filled temporary file tmp in place at target: rename() over
 * the old file, or link() for a new one, which fails rather than replace
 * a file that appeared meanwhile. */
static int put_in_place(const char *path, const char *tmp, const char *target, const struct stat *old,
			char *err, size_t err_len)
{
	if (old) {
		if (!still_the_file(target, old))
			return write_error(-EAGAIN, err, err_len,
					   "%s: changed while being edited; nothing written, run the command again",
					   path);
		if (rename(tmp, target) < 0)
			return write_error(-errno, err, err_len, "%s: cannot rename %s over it: %s", path, tmp,
					   strerror(errno));
		return 0;
	}
	if (link(tmp, target) < 0) {
		if (errno == EEXIST)
			return write_error(-EEXIST, err, err_len, "%s: exists; never overwritten by generate",
					   path);
		return write_error(-errno, err, err_len, "%s: cannot create: %s", path, strerror(errno));
	}
	unlink(tmp);
	return 0;
}

int tern_ticket_key_list_write(const char *path, const struct tern_ticket_key_list *l,
			       const struct stat *old, char *err, size_t err_len)
{
	char target[PATH_MAX], tmp[PATH_MAX] = "";
	int ret;

	/* Through a symlink, the file it names is replaced (next to itself,
	 * so the rename stays within one filesystem), not the link. */
	if (old && !realpath(path, target))
		return write_error(-errno, err, err_len, "%s: cannot resolve: %s", path, strerror(errno));
	if (!old && snprintf(target, sizeof(target), "%s", path) >= (int)sizeof(target))
		return write_error(-ENAMETOOLONG, err, err_len, "%s: path too long", path);

	char *text = malloc(FILE_TEXT_MAX);
	if (!text)
		return write_error(-ENOMEM, err, err_len, "%s: out of memory", path);
	long len = tern_ticket_key_list_format(l, text, FILE_TEXT_MAX);
	if (len < 0) {
		ret = write_error((int)len, err, err_len, "%s: cannot format the keys: %s", path,
				  strerror((int)-len));
		goto out;
	}
	int fd = create_temp(target, tmp);
	if (fd < 0) {
		ret = write_error(fd, err, err_len, "%s: cannot create a temporary file next to it: %s", path,
				  strerror(-fd));
		tmp[0] = '\0'; /* nothing of ours to remove */
		goto out;
	}
	ret = fill_temp(fd, text, (size_t)len, old);
	if (ret < 0) {
		write_error(ret, err, err_len, "%s: cannot write %s: %s", path, tmp, strerror(-ret));
		goto out;
	}
	ret = put_in_place(path, tmp, target, old, err, err_len);
	if (ret < 0)
		goto out;
	tmp[0] = '\0'; /* renamed, or linked and unlinked: the key file now */
	ret = sync_dir(target);
	if (ret < 0)
		write_error(ret, err, err_len, "%s: written, but its directory cannot be synced: %s", path,
			    strerror(-ret));
out:
	if (tmp[0] != '\0')
		unlink(tmp);
	if (len > 0)
		OPENSSL_cleanse(text, (size_t)len);
	free(text);
	return ret;
}
