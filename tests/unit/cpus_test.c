/* Unit tests for src/cpus.c, the default of --workers: the cgroup quota
 * read from fake /proc/self/cgroup, /proc/self/mountinfo and cgroup trees
 * built in a temporary directory (no file, "max", rounding up, an
 * ancestor's quota, the walk stopping at the mount, malformed files, v1,
 * a container's cgroup mounted as the root, hybrid hierarchies); how
 * online CPUs, affinity, quota and cap combine and which one is named;
 * and the real affinity mask, narrowed with sched_setaffinity. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "tern/cpus.h"
#include "tmp_dir.h"

/* The fake root of the current case. */
static char root[PATH_MAX];

/* Writes text to root + path, making the directories on the way. */
static void put(const char *path, const char *text)
{
	char full[PATH_MAX];
	FILE *f;

	snprintf(full, sizeof(full), "%s%s", root, path);
	for (char *slash = strchr(full + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(full, 0755) < 0)
			CHECK_EQ_INT(errno, EEXIST);
		*slash = '/';
	}
	f = fopen(full, "w");
	if (!CHECK(f != NULL))
		return;
	fputs(text, f);
	fclose(f);
}

static void fresh_root(void)
{
	test_tmp_dir_make(root, sizeof(root), "cpus_test");
}

/* The quota the files under root give. */
static struct tern_cpus_quota quota(void)
{
	struct tern_cpus_quota q;

	memset(&q, 0xa5, sizeof(q)); /* every field must be written */
	tern_cpus_read_quota(root, &q);
	return q;
}

static void check_quota(const struct tern_cpus_quota *q, unsigned count, enum tern_cpus_limit source,
			uint64_t quota_us, uint64_t period_us)
{
	CHECK_EQ_UINT(q->count, count);
	CHECK_EQ_INT(q->source, source);
	CHECK_EQ_UINT(q->quota_us, quota_us);
	CHECK_EQ_UINT(q->period_us, period_us);
}

/* A typical v2 host: one cgroup2 mount at /sys/fs/cgroup. */
#define V2_MOUNTINFO "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
#define LEAF "/sys/fs/cgroup/kubepods.slice/pod1/c1"

static void test_no_files(void)
{
	struct tern_cpus_quota q;

	/* No /proc/self/cgroup at all (a chroot, no /proc). */
	fresh_root();
	q = quota();
	CHECK_EQ_UINT(q.count, 0);
	/* Our cgroup named, but no cpu.max anywhere (the cpu controller not
	 * enabled for it). */
	put("/proc/self/cgroup", "0::/kubepods.slice/pod1/c1\n");
	put("/proc/self/mountinfo", V2_MOUNTINFO);
	put(LEAF "/cgroup.procs", "");
	q = quota();
	CHECK_EQ_UINT(q.count, 0);
	test_tmp_dir_remove(root);
}

static void test_v2_leaf(void)
{
	struct tern_cpus_quota q;

	fresh_root();
	put("/proc/self/cgroup", "0::/kubepods.slice/pod1/c1\n");
	put("/proc/self/mountinfo", V2_MOUNTINFO);

	put(LEAF "/cpu.max", "max 100000\n");
	q = quota();
	CHECK_EQ_UINT(q.count, 0);

	/* 1.5 CPUs of time: two workers can use it, one could not. */
	put(LEAF "/cpu.max", "150000 100000\n");
	q = quota();
	check_quota(&q, 2, TERN_CPUS_CPU_MAX, 150000, 100000);

	/* Half a CPU: still one worker, never zero. */
	put(LEAF "/cpu.max", "50000 100000\n");
	q = quota();
	check_quota(&q, 1, TERN_CPUS_CPU_MAX, 50000, 100000);

	/* Exactly two: rounded up means not one more. */
	put(LEAF "/cpu.max", "200000 100000\n");
	q = quota();
	check_quota(&q, 2, TERN_CPUS_CPU_MAX, 200000, 100000);

	/* Another period, no newline. */
	put(LEAF "/cpu.max", "250000 50000");
	q = quota();
	check_quota(&q, 5, TERN_CPUS_CPU_MAX, 250000, 50000);
	test_tmp_dir_remove(root);
}

/* Without mountinfo, v2 is taken to be at /sys/fs/cgroup. */
static void test_v2_without_mountinfo(void)
{
	struct tern_cpus_quota q;

	fresh_root();
	put("/proc/self/cgroup", "0::/kubepods.slice/pod1/c1\n");
	put(LEAF "/cpu.max", "150000 100000\n");
	q = quota();
	check_quota(&q, 2, TERN_CPUS_CPU_MAX, 150000, 100000);
	test_tmp_dir_remove(root);
}

/* An ancestor's quota bounds us; the smallest of the path wins, wherever
 * it is; the mount point's own cpu.max counts (a container with its own
 * cgroup namespace sees its cgroup as "0::/"), what is above it does not. */
static void test_v2_ancestors(void)
{
	struct tern_cpus_quota q;

	fresh_root();
	put("/proc/self/cgroup", "0::/kubepods.slice/pod1/c1\n");
	put("/proc/self/mountinfo", V2_MOUNTINFO);
	put(LEAF "/cpu.max", "400000 100000\n");
	put("/sys/fs/cgroup/kubepods.slice/pod1/cpu.max", "max 100000\n");
	put("/sys/fs/cgroup/kubepods.slice/cpu.max", "100000 100000\n");
	q = quota();
	check_quota(&q, 1, TERN_CPUS_CPU_MAX, 100000, 100000);

	/* The leaf the smallest: its numbers. */
	put(LEAF "/cpu.max", "30000 100000\n");
	put("/sys/fs/cgroup/kubepods.slice/cpu.max", "300000 100000\n");
	q = quota();
	check_quota(&q, 1, TERN_CPUS_CPU_MAX, 30000, 100000);

	/* A middle one, every other unlimited. */
	put(LEAF "/cpu.max", "max 100000\n");
	put("/sys/fs/cgroup/kubepods.slice/pod1/cpu.max", "300000 100000\n");
	put("/sys/fs/cgroup/kubepods.slice/cpu.max", "max 100000\n");
	q = quota();
	check_quota(&q, 3, TERN_CPUS_CPU_MAX, 300000, 100000);
	test_tmp_dir_remove(root);

	/* The mount point itself, and nothing above it. */
	fresh_root();
	put("/proc/self/cgroup", "0::/\n");
	put("/proc/self/mountinfo", V2_MOUNTINFO);
	put("/sys/fs/cpu.max", "100000 100000\n"); /* above the mount: not ours */
	q = quota();
	CHECK_EQ_UINT(q.count, 0);
	put("/sys/fs/cgroup/cpu.max", "200000 100000\n");
	q = quota();
	check_quota(&q, 2, TERN_CPUS_CPU_MAX, 200000, 100000);
	test_tmp_dir_remove(root);
}

/* Malformed files limit nothing, and the walk goes on past them. */
static void test_malformed(void)
{
	static const char *const bad[] = {
		"", "\n", "banana\n", "150000\n", "150000 \n", " 150000 100000\n", "150000  100000\n",
		"-5 100000\n", "0 100000\n", "150000 0\n", "150000 100000 7\n", "150000 100000x\n",
		"99999999999999999999999 100000\n", "150000\t100000\n", "max\n",
	};
	struct tern_cpus_quota q;

	fresh_root();
	put("/proc/self/cgroup", "0::/kubepods.slice/pod1/c1\n");
	put("/proc/self/mountinfo", V2_MOUNTINFO);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put(LEAF "/cpu.max", bad[i]);
		q = quota();
		if (!CHECK_EQ_UINT(q.count, 0))
			fprintf(stderr, "    cpu.max \"%s\"\n", bad[i]);
	}
	/* A file longer than any cpu.max. */
	char big[200];
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put(LEAF "/cpu.max", big);
	q = quota();
	CHECK_EQ_UINT(q.count, 0);

	put(LEAF "/cpu.max", "garbage\n");
	put("/sys/fs/cgroup/kubepods.slice/pod1/cpu.max", "150000 0\n");
	put("/sys/fs/cgroup/kubepods.slice/cpu.max", "300000 100000\n");
	q = quota();
	check_quota(&q, 3, TERN_CPUS_CPU_MAX, 300000, 100000);

	/* A /proc/self/cgroup and a mountinfo of nonsense: nothing, no crash. */
	put("/proc/self/cgroup", "nonsense\n0:\n::\n0::relative/path\n0::/../..\n\n");
	put("/proc/self/mountinfo", "garbage\n1 2 3\n- - -\n30 23 0:26 / /x rw - cgroup2\n");
	q = quota();
	CHECK_EQ_UINT(q.count, 0);
	test_tmp_dir_remove(root);
}

/* cgroup v1: the cpu controller's hierarchy, wherever it is mounted. */
static void test_v1(void)
{
	struct tern_cpus_quota q;

	fresh_root();
	put("/proc/self/cgroup", "5:cpuacct:/a/b\n4:cpu:/a/b\n3:memory:/a/b\n0::/\n");
	put("/proc/self/mountinfo",
	    "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
	    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:5 - cgroup cgroup rw,cpu\n"
	    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
	    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
	/* cpuacct is not cpu: its files are not read. */
	put("/sys/fs/cgroup/cpuacct/a/b/cpu.cfs_quota_us", "50000\n");
	put("/sys/fs/cgroup/cpuacct/a/b/cpu.cfs_period_us", "100000\n");
	put("/sys/fs/cgroup/cpu/a/b/cpu.cfs_quota_us", "-1\n");
	put("/sys/fs/cgroup/cpu/a/b/cpu.cfs_period_us", "100000\n");
	q = quota();
	CHECK_EQ_UINT(q.count, 0);

	put("/sys/fs/cgroup/cpu/a/b/cpu.cfs_quota_us", "250000\n");
	q = quota();
	check_quota(&q, 3, TERN_CPUS_CFS_QUOTA, 250000, 100000);

	/* An ancestor's, with its own period. */
	put("/sys/fs/cgroup/cpu/a/cpu.cfs_quota_us", "20000\n");
	put("/sys/fs/cgroup/cpu/a/cpu.cfs_period_us", "10000\n");
	q = quota();
	check_quota(&q, 2, TERN_CPUS_CFS_QUOTA, 20000, 10000);

	/* A quota without its period file limits nothing. */
	put("/sys/fs/cgroup/cpu/a/cpu.cfs_period_us", "");
	q = quota();
	check_quota(&q, 3, TERN_CPUS_CFS_QUOTA, 250000, 100000);

	/* Hybrid: a v2 quota in the unified hierarchy too; the smaller wins,
	 * either way round. */
	put("/sys/fs/cgroup/unified/cpu.max", "100000 100000\n");
	q = quota();
	check_quota(&q, 1, TERN_CPUS_CPU_MAX, 100000, 100000);
	put("/sys/fs/cgroup/unified/cpu.max", "800000 100000\n");
	q = quota();
	check_quota(&q, 3, TERN_CPUS_CFS_QUOTA, 250000, 100000);
	test_tmp_dir_remove(root);
}

/* A container without a cgroup namespace: /proc/self/cgroup names the
 * host's path, and the runtime mounts that very cgroup as the hierarchy's
 * root (mountinfo's root field), so the path below the mount is "/". */
static void test_mount_root(void)
{
	struct tern_cpus_quota q;

	fresh_root();
	put("/proc/self/cgroup", "4:cpu,cpuacct:/docker/abc\n0::/docker/abc\n");
	put("/proc/self/mountinfo",
	    "600 500 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n");
	put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "50000\n");
	put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
	/* Where a join without the mount's root would look. */
	put("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "800000\n");
	put("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
	q = quota();
	check_quota(&q, 1, TERN_CPUS_CFS_QUOTA, 50000, 100000);
	test_tmp_dir_remove(root);

	/* v2 the same way, with a mount whose root is not ours first (it
	 * does not contain our cgroup) and a mount point with a space. */
	fresh_root();
	put("/proc/self/cgroup", "0::/system.slice/docker-abc.scope/inner\n");
	put("/proc/self/mountinfo",
	    "70 60 0:26 /other /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
	    "71 60 0:26 /system.slice/docker-abc.scope /cg\\040root rw - cgroup2 cgroup2 rw\n");
	put("/sys/fs/cgroup/inner/cpu.max", "100000 100000\n");
	put("/cg root/inner/cpu.max", "300000 100000\n");
	put("/cg root/cpu.max", "max 100000\n");
	q = quota();
	check_quota(&q, 3, TERN_CPUS_CPU_MAX, 300000, 100000);
	/* A path that only starts like the mount's root is not below it. */
	put("/proc/self/cgroup", "0::/system.slice/docker-abc.scope2\n");
	put("/cg root/cpu.max", "100000 100000\n");
	put("/cg root2/cpu.max", "100000 100000\n");
	q = quota();
	CHECK_EQ_UINT(q.count, 0);
	test_tmp_dir_remove(root);
}

static void check_combine(unsigned online, unsigned affinity, const struct tern_cpus_quota *q, unsigned cap,
			  unsigned want_count, enum tern_cpus_limit want_limit, const char *want_text)
{
	struct tern_cpus c;
	char text[TERN_CPUS_TEXT_MAX];

	memset(&c, 0xa5, sizeof(c));
	tern_cpus_combine(online, affinity, q, cap, &c);
	bool ok = CHECK_EQ_UINT(c.count, want_count);
	ok = CHECK_EQ_INT(c.limit, want_limit) && ok;
	ok = CHECK_EQ_STR(tern_cpus_describe(&c, text, sizeof(text)), want_text) && ok;
	if (!ok)
		fprintf(stderr, "    online %u, affinity %u, quota %u, cap %u\n", online, affinity,
			q ? q->count : 0, cap);
}

static void test_combine(void)
{
	struct tern_cpus_quota none = {0}, two = {2, TERN_CPUS_CPU_MAX, 150000, 100000},
			       one_v1 = {1, TERN_CPUS_CFS_QUOTA, 50000, 100000},
			       many = {1500, TERN_CPUS_CPU_MAX, 150000000, 100000};

	check_combine(2, 2, NULL, 1024, 2, TERN_CPUS_ONLINE, "cpus");
	check_combine(2, 2, &none, 1024, 2, TERN_CPUS_ONLINE, "cpus");
	check_combine(2, 1, NULL, 1024, 1, TERN_CPUS_AFFINITY, "affinity");
	check_combine(8, 4, &two, 1024, 2, TERN_CPUS_CPU_MAX, "cpu.max:150000/100000");
	check_combine(8, 8, &one_v1, 1024, 1, TERN_CPUS_CFS_QUOTA, "cpu.cfs_quota_us:50000/100000");
	/* The affinity narrower than the quota. */
	check_combine(8, 1, &two, 1024, 1, TERN_CPUS_AFFINITY, "affinity");
	/* A tie is not a limit: the quota adds nothing to the affinity. */
	check_combine(8, 2, &two, 1024, 2, TERN_CPUS_AFFINITY, "affinity");
	check_combine(2, 2, &two, 1024, 2, TERN_CPUS_ONLINE, "cpus");
	/* A quota above the CPUs there are. */
	check_combine(2, 2, &many, 1024, 2, TERN_CPUS_ONLINE, "cpus");
	/* The cap. */
	check_combine(2000, 2000, NULL, 1024, 1024, TERN_CPUS_CAP, "max_workers");
	check_combine(2000, 2000, &many, 1024, 1024, TERN_CPUS_CAP, "max_workers");
	check_combine(2000, 2000, &two, 1024, 2, TERN_CPUS_CPU_MAX, "cpu.max:150000/100000");
	check_combine(4, 4, NULL, 0, 4, TERN_CPUS_ONLINE, "cpus");
	/* Unknowns. */
	check_combine(0, 0, NULL, 1024, 1, TERN_CPUS_ONLINE, "cpus");
	check_combine(0, 3, NULL, 1024, 3, TERN_CPUS_AFFINITY, "affinity");
	check_combine(4, 0, &two, 1024, 2, TERN_CPUS_CPU_MAX, "cpu.max:150000/100000");

	/* The numbers are those of the quota that limited, not left over. */
	struct tern_cpus c;
	tern_cpus_combine(8, 1, &two, 1024, &c);
	CHECK_EQ_UINT(c.quota_us, 0);
	CHECK_EQ_UINT(c.period_us, 0);

	/* A short buffer truncates, never overflows. */
	char small[8];
	tern_cpus_combine(8, 8, &two, 1024, &c);
	CHECK_EQ_STR(tern_cpus_describe(&c, small, sizeof(small)), "cpu.max");
}

/* The real mask: all of it, then one CPU of it. */
static void test_affinity(void)
{
	cpu_set_t saved, one;
	int first = -1;

	if (!CHECK_EQ_INT(sched_getaffinity(0, sizeof(saved), &saved), 0))
		return;
	CHECK_EQ_UINT(tern_cpus_affinity(), CPU_COUNT(&saved));
	for (int i = 0; i < CPU_SETSIZE && first < 0; i++)
		if (CPU_ISSET(i, &saved))
			first = i;
	CPU_ZERO(&one);
	CPU_SET(first, &one);
	if (!CHECK_EQ_INT(sched_setaffinity(0, sizeof(one), &one), 0))
		return;
	CHECK_EQ_UINT(tern_cpus_affinity(), 1);

	/* And tern_cpus_get with it, over a fake root with a 1.5 CPU quota:
	 * the affinity is narrower. */
	struct tern_cpus c;
	fresh_root();
	put("/proc/self/cgroup", "0::/c\n");
	put("/sys/fs/cgroup/c/cpu.max", "150000 100000\n");
	tern_cpus_get(root, 1024, &c);
	CHECK_EQ_UINT(c.count, 1);
	if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
		CHECK_EQ_INT(c.limit, TERN_CPUS_AFFINITY);
	CHECK_EQ_INT(sched_setaffinity(0, sizeof(saved), &saved), 0);

	/* The whole mask again: the quota is narrower where there are more
	 * than two CPUs, and "0.5 CPU" always is where there are two. */
	put("/sys/fs/cgroup/c/cpu.max", "50000 100000\n");
	tern_cpus_get(root, 1024, &c);
	CHECK_EQ_UINT(c.count, 1);
	if (CPU_COUNT(&saved) > 1) {
		CHECK_EQ_INT(c.limit, TERN_CPUS_CPU_MAX);
		CHECK_EQ_UINT(c.quota_us, 50000);
		CHECK_EQ_UINT(c.period_us, 100000);
	}
	/* A root given with a trailing slash. */
	size_t len = strlen(root);
	root[len] = '/';
	root[len + 1] = '\0';
	tern_cpus_get(root, 1024, &c);
	CHECK_EQ_UINT(c.count, 1);
	root[len] = '\0';
	test_tmp_dir_remove(root);
}

int main(void)
{
	test_no_files();
	test_v2_leaf();
	test_v2_without_mountinfo();
	test_v2_ancestors();
	test_malformed();
	test_v1();
	test_mount_root();
	test_combine();
	test_affinity();
	return check_summary();
}
