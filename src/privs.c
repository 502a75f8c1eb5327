/* Dropping root for --user; see privs.h. Mirrors what nginx and HAProxy
 * do, plus a check afterwards: a drop that silently kept a saved root ID
 * would be worse than none, since it looks done. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "tern/log.h"
#include "tern/privs.h"

/* Every real, effective and saved ID is the user's. */
static bool ids_are(uid_t uid, gid_t gid)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0)
		return false;
	return ruid == uid && euid == uid && suid == uid && rgid == gid && egid == gid && sgid == gid;
}

int tern_privs_drop(const char *name, char *err, size_t err_len)
{
	char user[64];

	/* getpwnam()'s static buffer: copy what is kept before another call. */
	errno = 0;
	struct passwd *pw = getpwnam(name);
	if (!pw) {
		int e = errno;
		snprintf(err, err_len, "--user %s: %s", name,
			 e == 0 || e == ENOENT || e == ESRCH ? "no such user" : strerror(e));
		return e == 0 || e == ENOENT || e == ESRCH ? -ENOENT : -e;
	}
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	snprintf(user, sizeof(user), "%s", pw->pw_name);

	if (geteuid() != 0) {
		if (getuid() == uid && geteuid() == uid) {
			tern_log(TERN_LOG_DEBUG, "--user %s: already running as it", user);
			return 0;
		}
		snprintf(err, err_len, "--user %s: tern runs as uid %u, not root, and only root can "
			 "switch to another user", user, (unsigned)geteuid());
		return -EPERM;
	}
	/* The order matters: once the uid is not root, neither the groups
	 * nor the gid can be changed any more. */
	if (initgroups(user, gid) < 0) {
		int e = errno;
		snprintf(err, err_len, "--user %s: initgroups: %s", user, strerror(e));
		return -e;
	}
	if (setgid(gid) < 0) {
		int e = errno;
		snprintf(err, err_len, "--user %s: setgid(%u): %s", user, (unsigned)gid, strerror(e));
		return -e;
	}
	if (setuid(uid) < 0) {
		int e = errno;
		snprintf(err, err_len, "--user %s: setuid(%u): %s", user, (unsigned)uid, strerror(e));
		return -e;
	}
	if (!ids_are(uid, gid)) {
		snprintf(err, err_len, "--user %s: the real, effective and saved IDs did not all "
			 "change", user);
		return -EPERM;
	}
	/* Root can be regained only if something above went wrong; the proof
	 * is to try. Not for --user root, which stays root by request. */
	if (uid != 0 && setuid(0) == 0) {
		snprintf(err, err_len, "--user %s: setuid(0) still succeeds after the drop", user);
		return -EPERM;
	}
	tern_log(TERN_LOG_INFO, "running as user %s (uid %u, gid %u)", user, (unsigned)uid,
		 (unsigned)gid);
	return 0;
}
