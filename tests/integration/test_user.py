"""--user (SPEC section 2): tern started as root binds, reads its files,
then runs every thread as the user, and still serves. Needs root, as CI
runs; skipped with a message otherwise."""

import os
import pwd
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TernTestCase, free_port, main, scaled, tern_command,  # noqa: E402
                     wait_for)

NOT_ROOT = "needs root (CI runs as root): --user switches users only from root"


def task_ids(pid):
    """{tid: (uids, gids, groups)} from /proc/PID/task/*/status, where uids
    and gids are the real, effective, saved and filesystem IDs."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        fields = {}
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.split()
        out[int(tid)] = (tuple(map(int, fields["Uid"])), tuple(map(int, fields["Gid"])),
                         tuple(map(int, fields.get("Groups", []))))
    return out


class TestUser(TernTestCase):

    def setUp(self):
        super().setUp()
        self.nobody = pwd.getpwnam("nobody")

    def test_every_thread_runs_as_the_user_and_tern_still_serves(self):
        if os.geteuid() != 0:
            self.skipTest(NOT_ROOT)
        be = self.echo_backend()
        control = os.path.join(self.tmp, "control.sock")
        tern = self.start_tern([be], workers=2, extra=["--user", "nobody", "--control", control])
        uid, gid = self.nobody.pw_uid, self.nobody.pw_gid
        self.assertIn("running as user nobody (uid %d, gid %d)" % (uid, gid), tern.log())

        tasks = task_ids(tern.proc.pid)
        # The main thread, 2 workers and the control thread (started
        # before the drop: glibc changes it too).
        self.assertGreaterEqual(len(tasks), 4, tasks)
        nobody_groups = set(os.getgrouplist("nobody", gid))
        for tid, (uids, gids, groups) in tasks.items():
            self.assertEqual(uids, (uid,) * 4, "thread %d Uid: line" % tid)
            self.assertEqual(gids, (gid,) * 4, "thread %d Gid: line" % tid)
            self.assertEqual(set(groups), nobody_groups, "thread %d Groups: line" % tid)

        c = self.client().handshake()
        self.assertEqual(c.exchange(b"as nobody", expect=9), b"as nobody")
        c.shut_write("close_notify")
        c.recv_until_close()
        # The control socket, bound as root before the drop, still serves.
        self.assertEqual(tern.stats()["conns_total"], 1)
        tern.stop_ok()

    def test_unknown_user_is_exit_2_naming_the_flag(self):
        r = self.run_tern(["--user", "tern-no-such-user", "--listen", "127.0.0.1:%d" % free_port()])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stderr, "tern: --user: invalid value 'tern-no-such-user' (expected the "
                                   "name of an existing user)\n")

    def run_as_nobody(self, args, ready_then_stop=False):
        """Runs tern as nobody (cwd /, as the temp dir is root's); returns
        (exit status, stderr)."""
        log_path = os.path.join(self.tmp, "as-nobody.stderr")
        with open(log_path, "wb") as log:
            p = subprocess.Popen(tern_command(args), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=log, cwd="/",
                                 user=self.nobody.pw_uid, group=self.nobody.pw_gid,
                                 extra_groups=[])
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))

        def read():
            with open(log_path, "rb") as f:
                return f.read().decode(errors="replace")
        if ready_then_stop:
            wait_for(lambda: " ready: " in read() or p.poll() is not None, 10, "ready")
            p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=scaled(10))
        except subprocess.TimeoutExpired:
            raise AssertionError("tern as nobody did not exit:\n" + read())
        return rc, read()

    def test_not_root_another_user_is_exit_1_with_the_reason(self):
        if os.geteuid() != 0:
            self.skipTest(NOT_ROOT + " (to start tern as nobody)")
        rc, log = self.run_as_nobody(["--user", "root", "--listen", "127.0.0.1:%d" % free_port()])
        self.assertEqual(rc, 1, log)
        self.assertIn("tern: --user root: tern runs as uid %d, not root, and only root can switch "
                      "to another user\n" % self.nobody.pw_uid, log)
        self.assertNotIn(" ready: ", log)

    def test_not_root_the_same_user_is_a_no_op(self):
        if os.geteuid() != 0:
            self.skipTest(NOT_ROOT + " (to start tern as nobody)")
        rc, log = self.run_as_nobody(["--user", "nobody", "--listen",
                                      "127.0.0.1:%d" % free_port()], ready_then_stop=True)
        self.assertIn(" ready: ", log)
        self.assertEqual(rc, 0, log)

    def io_uring_for_root_only(self):
        """kernel.io_uring_disabled=1 with no io_uring_group (-1): io_uring
        for processes with CAP_SYS_ADMIN only, so root (this test, and the
        tests running beside it) keeps it and nobody loses it. Set back in
        cleanup. Skips where the kernel has no such sysctl (before 6.6)."""
        if os.geteuid() != 0:
            self.skipTest(NOT_ROOT + " (to set kernel.io_uring_disabled)")
        knob = "/proc/sys/kernel/io_uring_disabled"
        group = "/proc/sys/kernel/io_uring_group"
        if not os.path.exists(knob) or not os.path.exists(group):
            self.skipTest("this kernel has no kernel.io_uring_disabled (Linux 6.6+)")
        saved = {}
        for path in (knob, group):
            with open(path) as f:
                saved[path] = f.read().strip()

        def restore():
            for path, value in saved.items():
                with open(path, "w") as f:
                    f.write(value)
        self.addCleanup(restore)
        with open(group, "w") as f:
            f.write("-1")
        with open(knob, "w") as f:
            f.write("1")

    def test_io_uring_allowed_to_root_only_runs_the_user_on_epoll(self):
        """The probe asks as the user the workers become: as root it would
        pass, and every worker would then fail as nobody."""
        self.io_uring_for_root_only()
        be = self.echo_backend()
        tern = self.start_tern([be], workers=2, extra=["--user", "nobody", "--io", "auto"])
        warnings = [line for line in tern.lines() if " warn " in line]
        self.assertEqual(len(warnings), 1, tern.log())
        self.assertTrue(warnings[0].endswith(" warn io_uring refused (Operation not permitted): "
                                             "running on epoll"), warnings)
        self.assertIn(" io=epoll ", tern.log())
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"epoll as nobody", expect=15), b"epoll as nobody")
        c.shut_write("close_notify")
        c.recv_until_close()
        tern.stop_ok()

        # --io uring: the refusal is the user's, at start, exit 1.
        r = self.run_tern(["--user", "nobody", "--io", "uring", "--listen",
                           "127.0.0.1:%d" % free_port(), "--backend", be.addr])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("tern: cannot set up io_uring: Operation not permitted (--io uring; "
                      "--io auto would run on epoll)\n", r.stderr)

        # Without --user, root keeps io_uring under the same sysctl.
        tern = self.start_tern([be], workers=1, extra=["--io", "auto"])
        self.assertIn(" io=uring ", tern.log())
        self.assertNotIn(" warn ", tern.log())
        tern.stop_ok()


if __name__ == "__main__":
    main()
