/* Dropping root for --user; see privs.h. Mirrors what nginx and HAProxy
 * do, plus a check afterwards: a drop that silently kept a saved root ID
 * would be worse than none, since it looks done. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
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
	return 0;
}

/* What the child tells its parent: the result and the reason. */
struct call_as_reply {
	int ret;
	char msg[256];
};

int tern_privs_call_as(const char *name, tern_privs_call_fn *fn, void *arg, char *msg,
		       size_t msg_len)
{
	struct call_as_reply reply;
	int fds[2], status;
	ssize_t n;

	if (msg_len > 0)
		msg[0] = '\0';
	if (!name || geteuid() != 0)
		return fn(arg, msg, msg_len);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		int e = errno;
		snprintf(msg, msg_len, "pipe: %s", strerror(e));
		return -e;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(fds[0]);
		close(fds[1]);
		snprintf(msg, msg_len, "fork: %s", strerror(e));
		return -e;
	}
	if (pid == 0) {
		/* The child: as the user, then fn; _exit, so that nothing the
		 * parent set up (atexit handlers, stdio buffers) runs twice. */
		memset(&reply, 0, sizeof(reply));
		reply.ret = tern_privs_drop(name, reply.msg, sizeof(reply.msg));
		if (reply.ret == 0)
			reply.ret = fn(arg, reply.msg, sizeof(reply.msg));
		n = write(fds[1], &reply, sizeof(reply));
		_exit(n == (ssize_t)sizeof(reply) ? 0 : 1);
	}
	close(fds[1]);
	do
		n = read(fds[0], &reply, sizeof(reply));
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(reply)) {
		snprintf(msg, msg_len, "--user %s: the child that asks as the user ended without "
			 "an answer", name);
		return -EIO;
	}
	reply.msg[sizeof(reply.msg) - 1] = '\0';
	snprintf(msg, msg_len, "%s", reply.msg);
	return reply.ret;
}
