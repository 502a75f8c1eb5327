/* --user: an unknown user, the drop itself in a forked child when the test
 * runs as root (every ID changed, the user's groups, root not regained),
 * and the rules once not root: the same user is a no-op, another one is
 * refused with the reason. And tern_privs_call_as: a function run as the
 * user in a child, its answer brought back to the caller, who stays root. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "tern/privs.h"

static void test_unknown_user(void)
{
	char err[256] = "";

	CHECK_EQ_INT(tern_privs_drop("tern-no-such-user", err, sizeof(err)), -ENOENT);
	CHECK_EQ_STR(err, "--user tern-no-such-user: no such user");
}

/* Not root (or no longer): the current user is a no-op, root and any
 * other user are refused. */
static void check_unprivileged_rules(void)
{
	char err[256] = "", want[256];
	struct passwd *pw = getpwuid(geteuid());

	if (!CHECK(pw != NULL))
		return;
	char self[64];
	snprintf(self, sizeof(self), "%s", pw->pw_name);
	uid_t uid = geteuid();
	CHECK_EQ_INT(tern_privs_drop(self, err, sizeof(err)), 0);
	CHECK_EQ_UINT(geteuid(), uid);

	CHECK_EQ_INT(tern_privs_drop("root", err, sizeof(err)), -EPERM);
	snprintf(want, sizeof(want), "--user root: tern runs as uid %u, not root, and only root "
		 "can switch to another user", (unsigned)uid);
	CHECK_EQ_STR(err, want);
	CHECK_EQ_UINT(geteuid(), uid);
}

/* Runs in a forked child, as root: the process-wide IDs change for good. */
static void drop_to_nobody(void)
{
	char err[256] = "";
	struct passwd *pw = getpwnam("nobody");

	if (!CHECK(pw != NULL))
		return;
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	int ret = tern_privs_drop("nobody", err, sizeof(err));
	if (!CHECK_EQ_INT(ret, 0))
		fprintf(stderr, "    %s\n", err);

	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	CHECK_EQ_INT(getresuid(&ruid, &euid, &suid), 0);
	CHECK_EQ_INT(getresgid(&rgid, &egid, &sgid), 0);
	CHECK_EQ_UINT(ruid, uid);
	CHECK_EQ_UINT(euid, uid);
	CHECK_EQ_UINT(suid, uid);
	CHECK_EQ_UINT(rgid, gid);
	CHECK_EQ_UINT(egid, gid);
	CHECK_EQ_UINT(sgid, gid);
	/* initgroups(): nobody's groups, root's (group 0) gone. */
	gid_t groups[64];
	int n = getgroups(64, groups);
	CHECK(n >= 0);
	for (int i = 0; i < n; i++)
		CHECK(groups[i] != 0);
	/* Root cannot be regained. */
	CHECK_EQ_INT(setuid(0), -1);
	CHECK_EQ_INT(seteuid(0), -1);
	CHECK_EQ_INT(setgid(0), -1);
	CHECK_EQ_UINT(geteuid(), uid);

	check_unprivileged_rules();
}

static void test_drop(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "note: not root, so the drop itself is not tested; the rules for "
				"an unprivileged process are\n");
		check_unprivileged_rules();
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		drop_to_nobody();
		/* The child's own checks report on stderr; its status sums them. */
		_exit(check_num_failed == 0 ? 0 : 1);
	}
	int status = 0;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 0);
	CHECK_EQ_UINT(geteuid(), 0); /* the parent is untouched */
}

/* tern_privs_call_as's fn: where it ran, as whom. */
static unsigned calls_here;

static int report_uid(void *arg, char *msg, size_t msg_len)
{
	calls_here++;
	snprintf(msg, msg_len, "uid %u", (unsigned)geteuid());
	return *(int *)arg;
}

/* The call runs as the user and answers with fn's result and message;
 * the caller keeps its IDs. Without a user, or not as root, fn runs in
 * the caller (calls_here counts it). */
static void test_call_as(void)
{
	char msg[128], want[64];
	int result = -EPERM;

	calls_here = 0;
	CHECK_EQ_INT(tern_privs_call_as(NULL, report_uid, &result, msg, sizeof(msg)), -EPERM);
	snprintf(want, sizeof(want), "uid %u", (unsigned)geteuid());
	CHECK_EQ_STR(msg, want);
	CHECK_EQ_UINT(calls_here, 1);
	if (geteuid() != 0) {
		fprintf(stderr, "note: not root, so the call as another user is not tested\n");
		return;
	}
	struct passwd *pw = getpwnam("nobody");
	if (!CHECK(pw != NULL))
		return;
	uid_t nobody = pw->pw_uid;
	calls_here = 0;
	result = 0;
	fflush(NULL);
	CHECK_EQ_INT(tern_privs_call_as("nobody", report_uid, &result, msg, sizeof(msg)), 0);
	snprintf(want, sizeof(want), "uid %u", (unsigned)nobody);
	CHECK_EQ_STR(msg, want);
	CHECK_EQ_UINT(calls_here, 0); /* in the child */
	CHECK_EQ_UINT(geteuid(), 0);
	/* A user the child cannot become: the drop's answer, fn not run. */
	CHECK_EQ_INT(tern_privs_call_as("tern-no-such-user", report_uid, &result, msg,
					sizeof(msg)), -ENOENT);
	CHECK_EQ_STR(msg, "--user tern-no-such-user: no such user");
}

int main(void)
{
	test_unknown_user();
	test_call_as();
	test_drop();
	return check_summary();
}
