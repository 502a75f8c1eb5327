/* The CPUs this process may use: online, affinity, cgroup quota; see
 * cpus.h. The cgroup files are the kernel's Documentation/admin-guide/
 * cgroup-v2.rst ("cpu.max") and scheduler/sched-bwc.rst (v1's
 * cpu.cfs_quota_us and cpu.cfs_period_us); /proc/self/cgroup and
 * /proc/self/mountinfo are proc(5)'s. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tern/cpus.h"

/* One cgroup hierarchy that can carry a CPU quota: v2's, or v1's with the
 * cpu controller. */
struct hierarchy {
	enum tern_cpus_limit source; /* which files: cpu.max or cpu.cfs_* */
	bool in_cgroup;              /* /proc/self/cgroup names our cgroup in it */
	char path[PATH_MAX];         /* that cgroup, as /proc/self/cgroup writes it */
	bool mounted;                /* dir below is set */
	char dir[PATH_MAX];          /* our cgroup's directory, root included */
	size_t mount_len;            /* dir's first mount_len bytes: the mount point */
};

/* root + path, with root "/" adding nothing. */
static bool under_root(const char *root, const char *path, char *out, size_t out_len)
{
	size_t root_len = strlen(root);

	while (root_len > 0 && root[root_len - 1] == '/')
		root_len--;
	int n = snprintf(out, out_len, "%.*s%s", (int)root_len, root, path);
	return n >= 0 && (size_t)n < out_len;
}

/* A whole small file as a string; false when it cannot be read or does
 * not fit (no cgroup file we read is longer than a line). */
static bool read_small(const char *path, char *out, size_t out_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, out, out_len - 1);
	close(fd);
	if (n < 0 || (size_t)n == out_len - 1)
		return false;
	out[n] = '\0';
	return true;
}

/* Decimal digits only, at least one, no overflow; *end after the last. */
static bool parse_u64(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p == s)
		return false;
	*end = p;
	*out = v;
	return true;
}

/* s is exactly one number and an optional newline. */
static bool parse_u64_line(const char *s, uint64_t *out)
{
	const char *end;

	if (!parse_u64(s, &end, out))
		return false;
	return strcmp(end, "\n") == 0 || *end == '\0';
}

/* The quota as a CPU count, rounded up: 150000/100000 is 1.5 CPUs of
 * time, which two workers use and one would not. */
static void set_quota(struct tern_cpus_quota *q, enum tern_cpus_limit source, uint64_t quota_us,
		      uint64_t period_us)
{
	uint64_t count = quota_us / period_us + (quota_us % period_us != 0);

	q->count = count > UINT_MAX ? UINT_MAX : (unsigned)count;
	q->source = source;
	q->quota_us = quota_us;
	q->period_us = period_us;
}

/* cgroup v2: cpu.max is "QUOTA PERIOD" or "max PERIOD" (no limit). */
static bool read_cpu_max(const char *dir, struct tern_cpus_quota *out)
{
	char path[PATH_MAX + 16], text[64];
	uint64_t quota, period;
	const char *p;

	if (snprintf(path, sizeof(path), "%s/cpu.max", dir) >= (int)sizeof(path) ||
	    !read_small(path, text, sizeof(text)))
		return false;
	if (!parse_u64(text, &p, &quota) || *p != ' ' || !parse_u64_line(p + 1, &period))
		return false; /* "max ..." included */
	if (quota == 0 || period == 0)
		return false;
	set_quota(out, TERN_CPUS_CPU_MAX, quota, period);
	return true;
}

/* cgroup v1: cpu.cfs_quota_us is -1 (no limit) or the quota, over
 * cpu.cfs_period_us. */
static bool read_cfs_quota(const char *dir, struct tern_cpus_quota *out)
{
	char path[PATH_MAX + 24], text[64];
	uint64_t quota, period;

	if (snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir) >= (int)sizeof(path) ||
	    !read_small(path, text, sizeof(text)) || !parse_u64_line(text, &quota))
		return false; /* "-1" included */
	if (snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir) >= (int)sizeof(path) ||
	    !read_small(path, text, sizeof(text)) || !parse_u64_line(text, &period))
		return false;
	if (quota == 0 || period == 0)
		return false;
	set_quota(out, TERN_CPUS_CFS_QUOTA, quota, period);
	return true;
}

/* Whether a comma-separated list has item. */
static bool has_item(const char *list, const char *item)
{
	size_t len = strlen(item);

	for (const char *p = list; p; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (strncmp(p, item, len) == 0 && (p[len] == ',' || p[len] == '\0'))
			return true;
	}
	return false;
}

/* One /proc/self/cgroup line, "ID:CONTROLLERS:PATH": "0::PATH" is v2's;
 * v1's with "cpu" among the controllers is the one with the quota. */
static void parse_cgroup_line(char *line, struct hierarchy *v2, struct hierarchy *v1)
{
	char *controllers = strchr(line, ':');
	char *path = controllers ? strchr(controllers + 1, ':') : NULL;
	struct hierarchy *h;

	if (!path)
		return;
	*controllers++ = '\0';
	*path++ = '\0';
	path[strcspn(path, "\n")] = '\0';
	if (strcmp(line, "0") == 0 && *controllers == '\0')
		h = v2;
	else if (has_item(controllers, "cpu"))
		h = v1;
	else
		return;
	/* A cgroup outside our cgroup namespace shows as "/../..": there is
	 * no directory of ours to walk up from. */
	if (path[0] != '/' || strstr(path, "/..") || strlen(path) >= sizeof(h->path))
		return;
	h->in_cgroup = true;
	memcpy(h->path, path, strlen(path) + 1);
}

/* mountinfo writes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* Sets h->dir to our cgroup's directory in a mount of the hierarchy whose
 * root is mnt_root at mount point mnt_point, if our cgroup is below that
 * root. A container without its own cgroup namespace has its cgroup
 * mounted as the root (mount root "/docker/ID", our path "/docker/ID"). */
static void place(const char *root, const char *mnt_root, const char *mnt_point,
		  struct hierarchy *h)
{
	size_t root_len = strcmp(mnt_root, "/") == 0 ? 0 : strlen(mnt_root);
	const char *rel = h->path + root_len;

	if (h->mounted || !h->in_cgroup || strncmp(h->path, mnt_root, root_len) != 0 ||
	    (*rel != '/' && *rel != '\0'))
		return;
	if (strcmp(rel, "/") == 0)
		rel = "";
	if (strcmp(mnt_point, "/") == 0)
		mnt_point = "";
	if (!under_root(root, mnt_point, h->dir, sizeof(h->dir)))
		return;
	h->mount_len = strlen(h->dir);
	int n = snprintf(h->dir + h->mount_len, sizeof(h->dir) - h->mount_len, "%s", rel);
	h->mounted = n >= 0 && (size_t)n < sizeof(h->dir) - h->mount_len;
}

/* One mountinfo line: ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...]
 * - FSTYPE SOURCE SUPEROPTS. v1's superoptions name its controllers. */
static void parse_mount_line(const char *root, char *line, struct hierarchy *v2,
			     struct hierarchy *v1)
{
	char *save = NULL, *mnt_root = NULL, *mnt_point = NULL, *fstype = NULL, *opts = NULL;
	unsigned field = 0, after_dash = 0;
	bool dash = false;

	for (char *tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
		if (dash) {
			if (after_dash == 0)
				fstype = tok;
			else if (after_dash == 2)
				opts = tok;
			after_dash++;
		} else if (field == 3) {
			mnt_root = tok;
		} else if (field == 4) {
			mnt_point = tok;
		} else if (field >= 6 && strcmp(tok, "-") == 0) {
			dash = true;
		}
		field++;
	}
	if (!mnt_root || !mnt_point || !fstype || !opts)
		return;
	unescape_octal(mnt_root);
	unescape_octal(mnt_point);
	if (strcmp(fstype, "cgroup2") == 0)
		place(root, mnt_root, mnt_point, v2);
	else if (strcmp(fstype, "cgroup") == 0 && has_item(opts, "cpu"))
		place(root, mnt_root, mnt_point, v1);
}

/* Calls fn on each line of the file root + path; false when it cannot be
 * opened. */
static bool each_line(const char *root, const char *path,
		      void (*fn)(const char *root, char *line, struct hierarchy *v2,
				 struct hierarchy *v1),
		      struct hierarchy *v2, struct hierarchy *v1)
{
	char full[PATH_MAX];
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	if (!under_root(root, path, full, sizeof(full)))
		return false;
	f = fopen(full, "re");
	if (!f)
		return false;
	while (getline(&line, &cap, f) >= 0)
		fn(root, line, v2, v1);
	free(line);
	fclose(f);
	return true;
}

static void cgroup_line(const char *root, char *line, struct hierarchy *v2, struct hierarchy *v1)
{
	(void)root;
	parse_cgroup_line(line, v2, v1);
}

/* Our cgroup's directory and each ancestor's up to the mount point: a
 * quota on any of them bounds us. The smallest wins; on a tie, the one
 * nearest to us, whose numbers the operator set last. */
static void walk_up(const struct hierarchy *h, struct tern_cpus_quota *best)
{
	char dir[PATH_MAX];
	size_t len = strlen(h->dir);

	memcpy(dir, h->dir, len + 1);
	for (;;) {
		struct tern_cpus_quota q;
		bool found = h->source == TERN_CPUS_CPU_MAX ? read_cpu_max(dir, &q)
							      : read_cfs_quota(dir, &q);
		if (found && (best->count == 0 || q.count < best->count))
			*best = q;
		if (len <= h->mount_len)
			break;
		char *slash = strrchr(dir, '/');
		len = slash && (size_t)(slash - dir) > h->mount_len ? (size_t)(slash - dir) : h->mount_len;
		dir[len] = '\0';
	}
}

void tern_cpus_read_quota(const char *root, struct tern_cpus_quota *out)
{
	/* Four PATH_MAX buffers: on the heap, not on the stack. */
	struct hierarchy *h = calloc(2, sizeof(*h));

	memset(out, 0, sizeof(*out));
	if (!h)
		return; /* no memory at start: the start fails later anyway */
	h[0].source = TERN_CPUS_CPU_MAX;
	h[1].source = TERN_CPUS_CFS_QUOTA;
	if (each_line(root, "/proc/self/cgroup", cgroup_line, &h[0], &h[1])) {
		/* Without mountinfo, v2 where systemd and container runtimes
		 * mount it, as the whole tree. */
		if (!each_line(root, "/proc/self/mountinfo", parse_mount_line, &h[0], &h[1]))
			place(root, "/", "/sys/fs/cgroup", &h[0]);
		for (int i = 0; i < 2; i++)
			if (h[i].mounted)
				walk_up(&h[i], out);
	}
	free(h);
}

unsigned tern_cpus_affinity(void)
{
	/* The kernel refuses (EINVAL) a mask smaller than its own, which can
	 * exceed the 1024 CPUs of a plain cpu_set_t: grow until it fits. */
	for (size_t num = 1024; num <= (size_t)1 << 20; num *= 2) {
		cpu_set_t *set = CPU_ALLOC(num);
		size_t size = CPU_ALLOC_SIZE(num);
		int ret, count = 0;

		if (!set)
			return 0;
		ret = sched_getaffinity(0, size, set);
		if (ret == 0)
			count = CPU_COUNT_S(size, set);
		int e = errno;
		CPU_FREE(set);
		if (ret == 0)
			return count > 0 ? (unsigned)count : 0;
		if (e != EINVAL)
			return 0;
	}
	return 0;
}

/* Narrows *out to count for limit when count is known and smaller. */
static void narrow(struct tern_cpus *out, unsigned count, enum tern_cpus_limit limit)
{
	if (count == 0 || (out->count != 0 && count >= out->count))
		return;
	out->count = count;
	out->limit = limit;
}

void tern_cpus_combine(unsigned online, unsigned affinity, const struct tern_cpus_quota *quota,
		       unsigned cap, struct tern_cpus *out)
{
	memset(out, 0, sizeof(*out));
	out->count = online;
	out->limit = TERN_CPUS_ONLINE;
	narrow(out, affinity, TERN_CPUS_AFFINITY);
	if (quota && quota->count > 0) {
		narrow(out, quota->count, quota->source);
		if (out->limit == quota->source) {
			out->quota_us = quota->quota_us;
			out->period_us = quota->period_us;
		}
	}
	if (out->count == 0) {
		/* Nothing could be read: one worker still runs the proxy. */
		out->count = 1;
		out->limit = TERN_CPUS_ONLINE;
	}
	narrow(out, cap, TERN_CPUS_CAP);
}

void tern_cpus_get(const char *root, unsigned cap, struct tern_cpus *out)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	struct tern_cpus_quota quota;

	tern_cpus_read_quota(root, &quota);
	tern_cpus_combine(online > 0 && online <= (long)UINT_MAX ? (unsigned)online : 0,
			  tern_cpus_affinity(), &quota, cap, out);
}

const char *tern_cpus_describe(const struct tern_cpus *c, char *out, size_t out_len)
{
	switch (c->limit) {
	case TERN_CPUS_AFFINITY:
		snprintf(out, out_len, "affinity");
		break;
	case TERN_CPUS_CPU_MAX:
		snprintf(out, out_len, "cpu.max:%llu/%llu", (unsigned long long)c->quota_us,
			 (unsigned long long)c->period_us);
		break;
	case TERN_CPUS_CFS_QUOTA:
		snprintf(out, out_len, "cpu.cfs_quota_us:%llu/%llu", (unsigned long long)c->quota_us,
			 (unsigned long long)c->period_us);
		break;
	case TERN_CPUS_CAP:
		snprintf(out, out_len, "max_workers");
		break;
	case TERN_CPUS_ONLINE:
	default:
		snprintf(out, out_len, "cpus");
		break;
	}
	return out;
}
