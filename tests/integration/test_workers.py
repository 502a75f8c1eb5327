"""The default of --workers (SPEC section 2, issue 13): the CPUs tern may
run on, its affinity mask capped by its cgroups' CPU quota (rounded up),
with what limited it in the --check summary and the ready line
(workers_from=); --workers N is N whatever the CPUs. The affinity cases
need taskset and two CPUs; the quota cases a cgroup tern can be put in
(root, and a cgroup v2 hierarchy with the cpu controller or a v1 cpu
hierarchy): each skips with the reason otherwise."""

import contextlib
import fcntl
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TernTestCase, free_port, main, parse_kv  # noqa: E402

NO_TASKSET = "needs taskset (util-linux) to narrow the affinity mask"
# Cgroup set-ups of concurrent runs (ctest -j runs this file on both
# engines and under seccomp) take turns: one run's cleanup must not take
# the cpu controller from under another's cgroup.
CGROUP_LOCK = "/tmp/tern-test-workers-cgroup.lock"


def ceil_div(a, b):
    return -(-a // b)


def mounts():
    """(fstype, mount point, super options) of every mount, mountinfo's
    octal escapes undone."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) < 5 or len(tail) < 3:
                continue
            point = fields[4].encode().decode("unicode_escape")
            out.append((tail[0], point, tail[2].split(",")))
    return out


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class QuotaCgroup:
    """A cgroup of the test's own, with a CPU quota on it (or, nested, on
    its parent), that `launcher` puts tern into before exec. Made under
    the root of a v2 hierarchy with the cpu controller, else of a v1 cpu
    hierarchy; removed again by the test case's cleanup."""

    def __init__(self, tc, quota, period, nested=False):
        self.tc = tc
        self.dirs = []
        self.reason = None
        if os.geteuid() != 0:
            self.reason = "needs root to make a cgroup (CI runs as root)"
            return
        errors = []
        for make in (self._make_v2, self._make_v1):
            try:
                if make(quota, period, nested):
                    return
            except OSError as e:
                errors.append("%s: %s" % (make.__name__, e))
                self._remove()
        self.reason = ("no cgroup with a CPU quota can be made here (no v2 hierarchy with the "
                       "cpu controller, no v1 cpu hierarchy, or not writable): %s"
                       % ("; ".join(errors) or "no such hierarchy"))

    def _mkdir(self, parent):
        path = os.path.join(parent, "tern-test-workers-%d-%d" % (os.getpid(), len(self.dirs)))
        os.mkdir(path)
        self.dirs.append(path)
        return path

    def _make_v2(self, quota, period, nested):
        for fstype, point, _ in mounts():
            if fstype != "cgroup2":
                continue
            with open(os.path.join(point, "cgroup.controllers")) as f:
                if "cpu" not in f.read().split():
                    continue
            # The hierarchy's root, which may have processes and still
            # hand controllers down (cgroup-v2.rst, "No Internal Process
            # Constraint"). Left enabled afterwards: others may use it.
            with open(os.path.join(point, "cgroup.subtree_control")) as f:
                if "cpu" not in f.read().split():
                    write(os.path.join(point, "cgroup.subtree_control"), "+cpu")
            outer = self._mkdir(point)
            write(os.path.join(outer, "cpu.max"), "%d %d" % (quota, period))
            self.procs = os.path.join(outer, "cgroup.procs")
            if nested:
                write(os.path.join(outer, "cgroup.subtree_control"), "+cpu")
                self.procs = os.path.join(self._mkdir(outer), "cgroup.procs")
            self.token = "cpu.max:%d/%d" % (quota, period)
            return True
        return False

    def _make_v1(self, quota, period, nested):
        for fstype, point, opts in mounts():
            if fstype != "cgroup" or "cpu" not in opts:
                continue
            outer = self._mkdir(point)
            write(os.path.join(outer, "cpu.cfs_period_us"), "%d" % period)
            write(os.path.join(outer, "cpu.cfs_quota_us"), "%d" % quota)
            self.procs = os.path.join(outer, "cgroup.procs")
            if nested:
                self.procs = os.path.join(self._mkdir(outer), "cgroup.procs")
            self.token = "cpu.cfs_quota_us:%d/%d" % (quota, period)
            return True
        return False

    def _remove(self):
        # Innermost first; tern has exited (run_tern waits), so they are
        # empty.
        while self.dirs:
            path = self.dirs.pop()
            try:
                os.rmdir(path)
            except OSError as e:
                print("cannot remove cgroup %s: %s" % (path, e), file=sys.stderr)

    def launcher(self):
        """sh moves itself into the cgroup, then execs tern."""
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', self.procs]


class TestWorkers(TernTestCase):

    def base(self):
        return ["--listen", "127.0.0.1:%d" % free_port(), "--backend",
                "127.0.0.1:%d" % free_port(), "--cert", self.default_cert()["cert"], "--check"]

    def check(self, extra=(), launcher=()):
        """--check's summary line as the line and its key=value tokens."""
        r = self.run_tern(self.base() + list(extra), launcher=launcher)
        self.assertEqual(r.returncode, 0, r.stderr)
        line = r.stdout.split("\n")[0]
        self.assertTrue(line.startswith("configuration ok: workers="), r.stdout)
        return line, parse_kv(line)

    def need_cpus(self, n):
        if shutil.which("taskset") is None:
            self.skipTest(NO_TASKSET)
        if len(os.sched_getaffinity(0)) < n:
            self.skipTest("needs %d CPUs in the test's affinity mask, has %d"
                          % (n, len(os.sched_getaffinity(0))))

    def quota_limit(self):
        """The CPU count a cgroup quota limits this machine to, as tern
        reports it by default; None when none is narrower than the
        affinity mask."""
        _, kv = self.check()
        why = str(kv["workers_from"])
        if why.startswith("cpu.max:") or why.startswith("cpu.cfs_quota_us:"):
            quota, period = why.split(":")[1].split("/")
            return ceil_div(int(quota), int(period))
        return None

    def test_default_follows_the_affinity_mask(self):
        allowed = len(os.sched_getaffinity(0))
        online = os.sysconf("SC_NPROCESSORS_ONLN")
        line, kv = self.check()
        limit = self.quota_limit()
        if limit is not None:
            self.assertEqual(kv["workers"], limit, line)
            self.assertLess(limit, allowed, line)
        else:
            self.assertEqual(kv["workers"], min(allowed, 1024), line)
            self.assertEqual(kv["workers_from"], "cpus" if allowed == online else "affinity", line)

    def test_one_cpu_allowed_one_worker(self):
        # What issue 13 found: `taskset -c 0 tern --check` said workers=2.
        self.need_cpus(2)
        line, kv = self.check(launcher=["taskset", "-c", "0"])
        self.assertEqual(kv["workers"], 1, line)
        self.assertEqual(kv["workers_from"], "affinity", line)
        # The reason is its own token, right after workers=N; the rest of
        # the line keeps its shape.
        self.assertIn("configuration ok: workers=1 workers_from=affinity io=", line)

    def test_two_cpus_allowed_two_workers(self):
        self.need_cpus(2)
        limit = self.quota_limit()
        if limit is not None and limit < 2:
            self.skipTest("a cgroup CPU quota limits this machine to %d CPU" % limit)
        line, kv = self.check(launcher=["taskset", "-c", "0,1"])
        self.assertEqual(kv["workers"], 2, line)
        online = os.sysconf("SC_NPROCESSORS_ONLN")
        self.assertEqual(kv["workers_from"], "affinity" if online > 2 else "cpus", line)

    def test_workers_flag_wins_over_the_mask(self):
        self.need_cpus(1)
        for value in ("3", "1"):
            with self.subTest(workers=value):
                line, kv = self.check(["--workers", value], launcher=["taskset", "-c", "0"])
                self.assertEqual(kv["workers"], int(value), line)
                # The operator's number: no reason given, even where it
                # equals what the mask would have given.
                self.assertNotIn("workers_from", kv, line)
                self.assertIn("configuration ok: workers=%s io=" % value, line)

    def test_ready_line_names_the_reason(self):
        self.need_cpus(2)
        tern = self.start_tern([self.echo_backend()], workers=None,
                               launcher=["taskset", "-c", "0"])
        ready = [ln for ln in tern.lines() if " ready: " in ln]
        self.assertEqual(len(ready), 1, tern.log())
        self.assertIn(" ready: workers=1 workers_from=affinity io=", ready[0])
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"one", expect=3), b"one")
        c.close()
        tern.stop_ok()

    @contextlib.contextmanager
    def quota_cgroup(self, quota, period, nested=False):
        with open(CGROUP_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cg = QuotaCgroup(self, quota, period, nested)
            try:
                if cg.reason:
                    self.skipTest(cg.reason)
                yield cg
            finally:
                cg._remove()

    def need_quota_to_matter(self):
        if len(os.sched_getaffinity(0)) < 2:
            self.skipTest("one CPU allowed: a one-CPU quota would not narrow anything")

    def test_cgroup_quota_of_one_cpu(self):
        self.need_quota_to_matter()
        with self.quota_cgroup(100000, 100000) as cg:
            line, kv = self.check(launcher=cg.launcher())
            self.assertEqual(kv["workers"], 1, line)
            self.assertEqual(kv["workers_from"], cg.token, line)
            # --workers still wins inside the cgroup.
            line, kv = self.check(["--workers", "3"], launcher=cg.launcher())
            self.assertEqual(kv["workers"], 3, line)
            self.assertNotIn("workers_from", kv, line)

    def test_cgroup_quota_rounds_up(self):
        # 1.5 CPUs of time: 2 workers, not 1; the quota is named only
        # where it is narrower than the CPUs allowed.
        self.need_quota_to_matter()
        allowed = len(os.sched_getaffinity(0))
        with self.quota_cgroup(150000, 100000) as cg:
            line, kv = self.check(launcher=cg.launcher())
            self.assertEqual(kv["workers"], 2, line)
            if allowed > 2:
                self.assertEqual(kv["workers_from"], cg.token, line)
            else:
                self.assertNotEqual(kv["workers_from"], cg.token, line)

    def test_cgroup_quota_of_a_parent(self):
        # tern in a cgroup of its own without a quota, its parent with one.
        self.need_quota_to_matter()
        with self.quota_cgroup(100000, 100000, nested=True) as cg:
            line, kv = self.check(launcher=cg.launcher())
            self.assertEqual(kv["workers"], 1, line)
            self.assertEqual(kv["workers_from"], cg.token, line)


if __name__ == "__main__":
    main()
