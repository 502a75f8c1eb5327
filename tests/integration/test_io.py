"""The I/O engine choice (--io, issue 12): under a seccomp filter that
refuses the io_uring system calls, as Docker's and containerd's default
profiles do (no_io_uring.py), `--io auto` logs exactly one warning naming
the reason, runs on epoll and says so (ready line, stats, info, metrics),
and bytes flow; `--io uring` exits 1 at start with the reason; `--io
epoll` never asks for io_uring. Without the filter `--io auto` runs on
io_uring with no warning. --check says which engine would run.

This test chooses the engine itself: CI's epoll pass (TERN_TEST_IO) leaves
it out."""

import http.client
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HERE, TernTestCase, binary_is_sanitized,  # noqa: E402
                     check_sanitizers_at_cleanup, free_port, main, scaled, slow_payload,
                     tern_bin, wait_for)

NO_IO_URING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "no_io_uring.py")
sys.path.insert(0, os.path.dirname(NO_IO_URING))
import no_io_uring  # noqa: E402
import seccomp_profile  # noqa: E402

# The reason the kernel gives under the filter: EPERM's text.
REFUSED = "Operation not permitted"
WARNING = re.compile(r"^\S+ warn io_uring refused \(Operation not permitted\): "
                     r"running on epoll$")
# Sizes around a TLS record and a few records long.
SIZES = (1, 16384, 16385, 200000)


def warnings(text):
    return [line for line in text.splitlines() if " warn " in line]


class IoTestCase(TernTestCase):

    def setUp(self):
        check_sanitizers_at_cleanup(self)
        super().setUp()
        self.version = self.run_tern(["--version"]).stdout.split()[1]

    def seccomp(self):
        """The launcher that refuses io_uring; skips the test where it
        cannot run."""
        if not no_io_uring.SUPPORTED:
            self.skipTest("the seccomp filter knows x86_64's system call numbers only "
                          "(no_io_uring.py)")
        return [sys.executable, NO_IO_URING]

    def start(self, io, launcher=()):
        """tern with --io io, a control socket, metrics and an echo backend."""
        be = self.echo_backend()
        self.ctl_path = os.path.join(self.tmp, "control-%s.sock" % io)
        self.mport = free_port()
        return self.start_tern([be], launcher=launcher, extra=[
            "--io", io, "--control", self.ctl_path, "--metrics", "127.0.0.1:%d" % self.mport])

    def build_info(self):
        """The tern_build_info sample line of /metrics."""
        conn = http.client.HTTPConnection("127.0.0.1", self.mport, timeout=scaled(5))
        try:
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            body = resp.read().decode()
        finally:
            conn.close()
        return [line for line in body.splitlines() if line.startswith("tern_build_info")]

    def assert_engine(self, tern, engine):
        """Every place that says which engine runs says `engine`."""
        ready = [line for line in tern.lines() if " ready: " in line]
        self.assertEqual(len(ready), 1, tern.log())
        self.assertIn(" workers=2 io=%s " % engine, ready[0])
        self.assertEqual(tern.stats()["io"], engine)
        info = tern.ctl("info")
        self.assertEqual(set(info), {"ok", "version", "uptime_s", "io", "workers"}, info)
        self.assertEqual((info["ok"], info["version"], info["io"], info["workers"]),
                         (True, self.version, engine, 2))
        self.assertIsInstance(info["uptime_s"], int)
        self.assertGreaterEqual(info["uptime_s"], 0)
        self.assertEqual(self.build_info(),
                         ['tern_build_info{version="%s",io="%s"} 1' % (self.version, engine)])

    def assert_traffic(self, tern):
        """TLS round trips through the echo backend: every byte back, and
        counted."""
        for n in SIZES:
            c = self.client().handshake()
            payload = slow_payload(n)
            self.assertEqual(c.exchange(payload, expect=n), payload, "%d bytes" % n)
            c.shut_write("close_notify")
            c.recv_until_close()
            c.close()
        wait_for(lambda: tern.stats()["conns_active"] == 0, 5, "conns_active == 0")
        stats = tern.stats()
        self.assertEqual((stats["conns_total"], stats["bytes_client_in"],
                          stats["bytes_client_out"]), (len(SIZES), sum(SIZES), sum(SIZES)))


class TestFallback(IoTestCase):

    def test_auto_under_seccomp_runs_epoll_with_one_warning(self):
        tern = self.start("auto", self.seccomp())
        self.assertEqual(len(warnings(tern.log())), 1, tern.log())
        self.assertRegex(warnings(tern.log())[0], WARNING)
        self.assert_engine(tern, "epoll")
        self.assert_traffic(tern)
        tern.stop_ok()
        self.assertEqual(len(warnings(tern.log())), 1, tern.log())

    def test_uring_under_seccomp_exits_1_with_the_reason(self):
        for extra in ([], ["--check"]):
            with self.subTest(extra=extra):
                r = self.run_tern(["--listen", "127.0.0.1:%d" % free_port(), "--backend",
                                   "127.0.0.1:9", "--cert", self.default_cert()["cert"],
                                   "--io", "uring"] + extra, launcher=self.seccomp())
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertEqual(r.stderr, "tern: cannot set up io_uring: %s (--io uring; "
                                 "--io auto would run on epoll)\n" % REFUSED)

    def test_epoll_under_seccomp_never_asks_for_io_uring(self):
        tern = self.start("epoll", self.seccomp())
        self.assertEqual(warnings(tern.log()), [])
        self.assert_engine(tern, "epoll")
        self.assert_traffic(tern)
        tern.stop_ok()
        self.assertEqual(warnings(tern.log()), [])

    def test_check_says_which_engine_would_run(self):
        base = ["--check", "--listen", "127.0.0.1:%d" % free_port(), "--backend",
                "127.0.0.1:9", "--cert", self.default_cert()["cert"]]
        cases = (("auto", True, "epoll", 1), ("epoll", True, "epoll", 0),
                 ("auto", False, "uring", 0), ("uring", False, "uring", 0),
                 ("epoll", False, "epoll", 0))
        for io, filtered, engine, num_warnings in cases:
            with self.subTest(io=io, seccomp=filtered):
                r = self.run_tern(base + ["--io", io],
                                  launcher=self.seccomp() if filtered else ())
                self.assertEqual(r.returncode, 0, r.stderr)
                first = r.stdout.splitlines()[0]
                self.assertTrue(first.startswith("configuration ok: workers="), first)
                self.assertIn("io=%s" % engine, first.split())
                self.assertEqual(len(warnings(r.stderr)), num_warnings, r.stderr)
                if num_warnings:
                    self.assertRegex(warnings(r.stderr)[0], WARNING)


class TestWithoutFilter(IoTestCase):

    def test_auto_runs_uring_and_epoll_runs_epoll_without_a_warning(self):
        for io, engine in (("auto", "uring"), ("epoll", "epoll")):
            with self.subTest(io=io):
                tern = self.start(io)
                self.assertEqual(warnings(tern.log()), [])
                self.assert_engine(tern, engine)
                self.assert_traffic(tern)
                tern.stop_ok()


PROFILE = os.path.join(HERE, "..", "..", "deploy", "seccomp", "tern.json")
IO_URING_CALLS = {"io_uring_setup", "io_uring_enter", "io_uring_register"}


class TestShippedProfile(IoTestCase):
    """deploy/seccomp/tern.json applied as Docker and Kubernetes apply a
    profile (its own default, EPERM, for every call it does not name;
    seccomp_profile.py): io_uring is back; the same profile without the
    three io_uring calls, as a runtime's default treats them, is epoll
    with the one warning. CI's seccomp pass runs the whole suite under it
    as well, with unlisted calls fatal."""

    def launcher(self, profile):
        if not seccomp_profile.SUPPORTED:
            self.skipTest("seccomp_profile.py knows x86_64's system call numbers only")
        if binary_is_sanitized(tern_bin()):
            self.skipTest("a sanitizer build: its runtime makes system calls of its own, which "
                          "the profile refuses")
        path = os.path.join(self.tmp, "profile.json")
        with open(path, "w") as f:
            json.dump(profile, f)
        return [sys.executable, os.path.join(HERE, "seccomp_profile.py"), path]

    def shipped(self):
        with open(PROFILE) as f:
            return json.load(f)

    def test_the_shipped_profile_gives_io_uring_back(self):
        launcher = self.launcher(self.shipped())
        tern = self.start("auto", launcher)
        self.assertEqual(warnings(tern.log()), [])
        self.assert_engine(tern, "uring")
        self.assert_traffic(tern)
        # `tern ctl` too, as under `docker exec` (the container's profile).
        r = subprocess.run(launcher + [tern_bin(), "ctl", "--control", self.ctl_path, "info"],
                           capture_output=True, text=True, timeout=scaled(10))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("io: uring\n", r.stdout)
        tern.stop_ok()

    def test_the_profile_without_io_uring_runs_epoll_with_one_warning(self):
        profile = self.shipped()
        for rule in profile["syscalls"]:
            rule["names"] = [n for n in rule["names"] if n not in IO_URING_CALLS]
        tern = self.start("auto", self.launcher(profile))
        self.assertEqual(len(warnings(tern.log())), 1, tern.log())
        self.assertRegex(warnings(tern.log())[0], WARNING)
        self.assert_engine(tern, "epoll")
        self.assert_traffic(tern)
        tern.stop_ok()


if __name__ == "__main__":
    main()
