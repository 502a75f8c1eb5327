/* How many CPUs this process may really use: the default of --workers
 * (SPEC section 2).
 *
 * Online CPUs overstate it twice over: the affinity mask (taskset, a
 * cpuset cgroup, Kubernetes' static CPU manager) may allow fewer, and a
 * CPU quota (cgroup v2 cpu.max, cgroup v1 cpu.cfs_quota_us: a pod's
 * `limits: cpu`) lets all the CPUs run but only for so much time per
 * period. A worker per node CPU in a pod limited to one CPU is a dozen
 * threads throttled in turn.
 *
 * Main thread, at start. Nothing here fails: what cannot be read limits
 * nothing, and the count is at least 1. */
#ifndef TERN_CPUS_H
#define TERN_CPUS_H

#include <stddef.h>
#include <stdint.h>

/* What set the count, from widest to narrowest. */
enum tern_cpus_limit {
	TERN_CPUS_ONLINE,    /* every online CPU: nothing narrower applies */
	TERN_CPUS_AFFINITY,  /* the CPUs of the affinity mask */
	TERN_CPUS_CPU_MAX,   /* a cgroup v2 cpu.max quota, rounded up */
	TERN_CPUS_CFS_QUOTA, /* a cgroup v1 cpu.cfs_quota_us quota, rounded up */
	TERN_CPUS_CAP,       /* the caller's cap (TERN_MAX_WORKERS) */
};

/* A CPU quota: quota_us of CPU time per period_us, in the cgroup that
 * allows the least of the process's own and its ancestors. */
struct tern_cpus_quota {
	unsigned count;              /* ceil(quota_us / period_us), >= 1; 0: no quota */
	enum tern_cpus_limit source; /* TERN_CPUS_CPU_MAX or TERN_CPUS_CFS_QUOTA */
	uint64_t quota_us, period_us;
};

/* The CPUs to use and what limited them. */
struct tern_cpus {
	unsigned count; /* >= 1 */
	enum tern_cpus_limit limit;
	uint64_t quota_us, period_us; /* with TERN_CPUS_CPU_MAX and TERN_CPUS_CFS_QUOTA */
};

/* "cpus", "affinity", "cpu.max:150000/100000",
 * "cpu.cfs_quota_us:150000/100000" or "max_workers" fit this with room. */
#define TERN_CPUS_TEXT_MAX 64

/* The smallest CPU quota of the process's cgroups, reading the files
 * under root ("/" for the real ones; a test passes a directory with a fake
 * proc/self/cgroup, proc/self/mountinfo and sys/fs/cgroup): the v2
 * hierarchy's cpu.max and the v1 cpu controller's cpu.cfs_quota_us and
 * cpu.cfs_period_us, in the process's cgroup and each ancestor up to the
 * hierarchy's mount, since an ancestor's quota bounds its descendants.
 * Each hierarchy is found in mountinfo (without it: v2 at /sys/fs/cgroup);
 * the mount's root is taken off the cgroup's path, as a container
 * without a cgroup namespace sees its own cgroup mounted as the root.
 * Missing or malformed files limit nothing. out->count is 0 when no quota
 * applies. */
void tern_cpus_read_quota(const char *root, struct tern_cpus_quota *out);

/* The CPUs in the calling thread's affinity mask (sched_getaffinity(2),
 * with a mask as large as the kernel's), or 0 when it cannot be read. */
unsigned tern_cpus_affinity(void);

/* The narrowest of online CPUs and affinity (each 0: unknown), the quota
 * (NULL or count 0: none) and cap (0: none): each limits only when strictly
 * narrower than the ones before, so the reason names what actually cut
 * the count. Nothing known: 1 CPU, limit TERN_CPUS_ONLINE. Pure. */
void tern_cpus_combine(unsigned online, unsigned affinity, const struct tern_cpus_quota *quota,
		       unsigned cap, struct tern_cpus *out);

/* All of the above for this process: online CPUs (sysconf), its affinity
 * and its cgroups' quota under root, capped at cap. */
void tern_cpus_get(const char *root, unsigned cap, struct tern_cpus *out);

/* What limited c, as one token without spaces (see TERN_CPUS_TEXT_MAX),
 * for key=value lines. Returns out. */
const char *tern_cpus_describe(const struct tern_cpus *c, char *out, size_t out_len);

#endif
