"""Running under systemd: socket activation (LISTEN_FDS) and the notify
protocol (NOTIFY_SOCKET), with the test standing in for the service manager.

The launcher does what systemd does for a socket unit: the test creates the
listening socket itself, then forks, places the socket at descriptor 3 in
the child, sets LISTEN_PID to the child's own PID after the fork and execs
tern. The test keeps its own copy of the socket, as systemd does, so
connections made while no tern runs wait in the kernel backlog for the next
one."""

import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (StoppedThread, Tern, TernTestCase, free_port, main,  # noqa: E402
                     run_ctl, run_threads, scaled, tern_command, thread_id, wait_for)


class ForkedProcess:
    """The part of subprocess.Popen that harness.Tern uses, for a child
    started with os.fork() and os.execve()."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired("tern", timeout)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, sig):
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self):
        self.send_signal(signal.SIGKILL)


def spawn_activated(argv, fds, stdout_fd, stderr_fd, names=None, listen_pid=None, env=None,
                    watchdog_pid=False):
    """fork + execve of argv with fds at descriptors 3, 4, ... and the
    LISTEN_* variables of sd_listen_fds(3); LISTEN_PID is the child's own
    PID unless listen_pid is given; with watchdog_pid, WATCHDOG_PID is the
    child's own PID too, as systemd sets it. Returns the child's PID."""
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env["LISTEN_FDS"] = str(len(fds))
    if names is not None:
        child_env["LISTEN_FDNAMES"] = ":".join(names)
    devnull = os.open(os.devnull, os.O_RDONLY)
    pid = os.fork()
    if pid == 0:
        # The child: only descriptor shuffling and exec from here on.
        try:
            # Out of the way of 3, 4, ... first (a source may sit on a
            # target), close-on-exec so the copies do not leak into tern.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in fds]
            os.dup2(devnull, 0)
            os.dup2(stdout_fd, 1)
            os.dup2(stderr_fd, 2)
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i, inheritable=True)
            child_env["LISTEN_PID"] = listen_pid or str(os.getpid())
            if watchdog_pid:
                child_env["WATCHDOG_PID"] = str(os.getpid())
            os.execve(argv[0], argv, child_env)
        finally:
            os._exit(127)
    os.close(devnull)
    return pid


class ActivatedTern(Tern):
    """A tern started by spawn_activated() instead of subprocess.Popen;
    everything else (log, wait_ready, stop, cleanup) is harness.Tern's."""

    def __init__(self, tc, args, fds, names=None, listen_pid=None, env=None, ready=True,
                 name="tern", watchdog_pid=False):
        self.tc = tc
        self.args = tern_command(args)
        if not os.access(self.args[0], os.X_OK):
            raise AssertionError("tern binary not found or not executable: %s" % self.args[0])
        self.log_path = os.path.join(tc.tmp, "%s-%d.stderr" % (name, len(tc._terns)))
        self.stdout_path = self.log_path[:-len(".stderr")] + ".stdout"
        self._log = open(self.log_path, "wb")
        self._out = open(self.stdout_path, "wb")
        pid = spawn_activated(self.args, fds, self._out.fileno(), self._log.fileno(),
                              names=names, listen_pid=listen_pid, env=env,
                              watchdog_pid=watchdog_pid)
        self.proc = ForkedProcess(pid)
        self.returncode = None
        tc._terns.append(self)
        tc.addCleanup(self._cleanup)
        if ready:
            self.wait_ready()


class NotifySocket:
    """A datagram socket standing in for systemd's notify socket: bound to
    a path in the test's temp dir, or to an abstract name.

    Every datagram read is kept in `log`, in order, as (time.monotonic()
    when read, text). tern sends STATUS= lines and WATCHDOG=1 keep-alives
    on timers of its own, so they may come between any two others: recv()
    returns the next datagram that is neither, in order; wait_status() and
    keep_alives() look at those."""

    def __init__(self, tc, abstract=False):
        self.log = []
        self._next = 0  # the log index recv() looks at next
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "tern-test-notify-%d-%d" % (os.getpid(), id(self))
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            path = os.path.join(tc.tmp, "notify.sock")
            self.sock.bind(path)
            self.env_value = path
        tc.addCleanup(self.sock.close)

    @staticmethod
    def periodic(text):
        return text.startswith("STATUS=") or text == "WATCHDOG=1"

    def _read(self, deadline):
        """Reads one datagram into log; False once deadline (monotonic)
        passed without one."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return False
        self.log.append((time.monotonic(), data.decode()))
        return True

    def recv(self, timeout=5):
        """The next datagram that is not periodic (a STATUS= line, a
        keep-alive); self.index is its place in log."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            while self._next < len(self.log):
                self.index, self._next = self._next, self._next + 1
                if not self.periodic(self.log[self.index][1]):
                    return self.log[self.index][1]
            if not self._read(deadline):
                raise AssertionError("no datagram on the notify socket within %.1fs (log: %r)"
                                     % (scaled(timeout), self.texts()))

    def texts(self):
        return [text for _, text in self.log]

    def wait_status(self, pattern, timeout=5, after=0):
        """Waits for a STATUS= line whose text fullmatches the regex
        pattern, at log index `after` or later; returns (index, text)."""
        deadline = time.monotonic() + scaled(timeout)
        i = after
        while True:
            while i < len(self.log):
                text = self.log[i][1]
                if text.startswith("STATUS=") and re.fullmatch(pattern, text[len("STATUS="):]):
                    return i, text[len("STATUS="):]
                i += 1
            if not self._read(deadline):
                raise AssertionError("no STATUS= matching %r within %.1fs; got %r"
                                     % (pattern, scaled(timeout),
                                        [t for t in self.texts() if t.startswith("STATUS=")]))

    def listen(self, seconds):
        """Reads whatever comes for `seconds` (unscaled: a window in which
        something must not happen)."""
        deadline = time.monotonic() + seconds
        while self._read(deadline):
            pass

    def keep_alives(self, since=0.0):
        """When each WATCHDOG=1 read so far came (monotonic), from since."""
        return [t for t, text in self.log if text == "WATCHDOG=1" and t >= since]

    def wait_keep_alives(self, n, timeout, since=0.0):
        """Waits until n keep-alives came since `since`; returns their times."""
        deadline = time.monotonic() + scaled(timeout)
        while len(self.keep_alives(since)) < n:
            if not self._read(deadline):
                raise AssertionError("%d WATCHDOG=1 within %.1fs, not %d"
                                     % (len(self.keep_alives(since)), scaled(timeout), n))
        return self.keep_alives(since)

    def nothing_more(self):
        """Fails if a datagram other than a periodic one is waiting."""
        while self._read(time.monotonic() + 0.01):
            pass
        rest = [t for t in self.texts()[self._next:] if not self.periodic(t)]
        if rest:
            raise AssertionError("unexpected datagram(s) %r" % rest)
        return True


def listening_socket(port=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(128)
    return s


class TestSocketActivation(TernTestCase):

    def activated(self, socks, extra=(), backends=(), workers=2, names=None, **kw):
        args = []
        for b in backends:
            args += ["--backend", b.addr]
        args += ["--cert", self.default_cert()["cert"], "--workers", str(workers),
                 "--access-log"] + list(extra)
        fds = [s.fileno() if hasattr(s, "fileno") else s for s in socks]
        return ActivatedTern(self, args, fds, names=names, **kw)

    def round_trip(self, port, payload):
        c = self.client(port=port).handshake()
        got = c.exchange(payload, expect=len(payload))
        c.shut_write("close_notify")
        c.recv_until_close()
        c.close()
        return got

    def test_inherited_socket_with_two_workers(self):
        be = self.echo_backend()
        sock = listening_socket()
        self.addCleanup(sock.close)
        port = sock.getsockname()[1]
        notify = NotifySocket(self)
        tern = self.activated([sock], backends=[be], names=["web"],
                              env={"NOTIFY_SOCKET": notify.env_value})

        log = tern.log()
        self.assertIn("listening on 127.0.0.1:%d: inherited fd 3 named 'web' (socket "
                      "activation), accepted on by all 2 workers" % port, log)
        self.assertIn("replace the default --listen 0.0.0.0:8443", log)
        self.assertIn("listen=127.0.0.1:%d(inherited) " % port, log)
        # READY once ready, with MAINPID: the forked child's PID, which
        # execve kept.
        self.assertEqual(notify.recv(), "READY=1\nMAINPID=%d" % tern.proc.pid)

        # Both workers accept on the one socket; every connection is served
        # by exactly one of them.
        payloads = [b"conn %d " % i * (i + 1) for i in range(24)]
        got = run_threads(self.round_trip, [(port, p) for p in payloads], 60)
        self.assertEqual(got, payloads)
        access = tern.wait_access(len(payloads))
        self.assertEqual(len(access), len(payloads))
        self.assertEqual(len({a["id"] for a in access}), len(payloads))
        workers = {a["id"] >> 48 for a in access}
        self.assertTrue(workers <= {0, 1}, workers)

        tern.send_signal(signal.SIGTERM)
        self.assertEqual(notify.recv(), "STOPPING=1")
        self.assertEqual(tern.wait_exit(), 0)
        tern.check_sanitizers()
        notify.nothing_more()

        # tern closed only its own copy: the socket still listens, so a
        # connection made now waits in the backlog, and the next instance
        # given the same socket serves it: a restart loses no connection.
        waiting = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
        waiting.close()  # a plain TCP connect is enough to prove queueing
        c = self.client(port=port)  # handshake only once a tern runs again
        tern2 = self.activated([sock], backends=[be], name="tern-second")
        c.handshake()
        self.assertEqual(c.exchange(b"after restart", expect=13), b"after restart")
        c.shut_write("close_notify")
        c.recv_until_close()
        tern2.stop_ok()

    def test_inherited_socket_matched_to_listen(self):
        be = self.echo_backend()
        sock = listening_socket()
        self.addCleanup(sock.close)
        inherited = sock.getsockname()[1]
        bound = free_port()
        tern = self.activated([sock], backends=[be],
                              extra=["--listen", "127.0.0.1:%d" % inherited,
                                     "--listen", "127.0.0.1:%d" % bound])
        log = tern.log()
        self.assertIn("listening on 127.0.0.1:%d: inherited fd 3 (socket activation), "
                      "accepted on by all 2 workers\n" % inherited, log)
        self.assertIn("--listen 127.0.0.1:%d: no inherited socket has this address; "
                      "binding it" % bound, log)
        self.assertNotIn("--listen 127.0.0.1:%d: no inherited" % inherited, log)
        self.assertIn("listen=127.0.0.1:%d(inherited),127.0.0.1:%d " % (inherited, bound), log)
        for port in (inherited, bound):
            self.assertEqual(self.round_trip(port, b"port %d" % port), b"port %d" % port)
        tern.stop_ok()

    def test_inherited_socket_matching_no_listen_is_served_too(self):
        be = self.echo_backend()
        sock = listening_socket()
        self.addCleanup(sock.close)
        inherited = sock.getsockname()[1]
        bound = free_port()
        tern = self.activated([sock], backends=[be], extra=["--listen", "127.0.0.1:%d" % bound])
        self.assertIn("listening on 127.0.0.1:%d: inherited fd 3 (socket activation), accepted "
                      "on by all 2 workers; it matches no --listen, served too" % inherited,
                      tern.log())
        for port in (inherited, bound):
            self.assertEqual(self.round_trip(port, b"port %d" % port), b"port %d" % port)
        tern.stop_ok()

    def test_bad_inherited_descriptors_exit_1_naming_the_fd(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        quiet = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # never listens
        self.addCleanup(quiet.close)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(udp.close)
        good = listening_socket()
        self.addCleanup(good.close)
        cases = [
            ([r], "tern: inherited fd 3 (LISTEN_FDS): not a socket"),
            ([quiet], "tern: inherited fd 3 (LISTEN_FDS): not a listening socket"),
            ([udp], "tern: inherited fd 3 (LISTEN_FDS): not a listening socket"),
            ([good, quiet], "tern: inherited fd 4 (LISTEN_FDS): not a listening socket"),
        ]
        for i, (socks, message) in enumerate(cases):
            with self.subTest(message=message):
                tern = self.activated(socks, ready=False, name="bad-%d" % i)
                self.assertEqual(tern.wait_exit(), 1)
                self.assertIn(message + "\n", tern.log())
                self.assertNotIn(" ready: ", tern.log())
                tern.check_sanitizers()

    def test_listen_pid_of_another_process_is_ignored(self):
        be = self.echo_backend()
        sock = listening_socket()
        self.addCleanup(sock.close)
        port = free_port()
        tern = self.activated([sock], backends=[be], listen_pid="1",
                              extra=["--listen", "127.0.0.1:%d" % port])
        self.assertNotIn("inherited", tern.log())
        self.assertEqual(self.round_trip(port, b"own socket"), b"own socket")
        tern.stop_ok()


# How STATUS= shows a reload's time: UTC, to the second.
ISO_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


class NotifyTestCase(TernTestCase):

    def start_notified(self, notify, backends, env=None, **kw):
        """start_tern with NOTIFY_SOCKET (and env) set for that tern alone."""
        env = dict(env or {}, NOTIFY_SOCKET=notify.env_value)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return self.start_tern(backends, **kw)
        finally:
            for k, v in saved.items():
                if v is None:
                    del os.environ[k]
                else:
                    os.environ[k] = v


class TestNotify(NotifyTestCase):

    def test_ready_and_stopping_on_an_abstract_socket(self):
        be = self.echo_backend()
        notify = NotifySocket(self, abstract=True)
        tern = self.start_notified(notify, [be])
        self.assertEqual(notify.recv(), "READY=1\nMAINPID=%d" % tern.proc.pid)
        # Nothing else until the drain.
        time.sleep(0.2)
        notify.nothing_more()
        tern.send_signal(signal.SIGTERM)
        self.assertEqual(notify.recv(), "STOPPING=1")
        self.assertEqual(tern.wait_exit(), 0)
        tern.check_sanitizers()

    def test_reload_is_announced_for_type_notify_reload(self):
        """systemd >= 253's Type=notify-reload: RELOADING=1 with
        MONOTONIC_USEC when a reload starts, READY=1 when it ends, then the
        STATUS= line saying how it went."""
        be = self.echo_backend()
        notify = NotifySocket(self)
        tern = self.start_notified(notify, [be])
        self.assertEqual(notify.recv(), "READY=1\nMAINPID=%d" % tern.proc.pid)
        notify.wait_status("serving 0 connections, no reload yet")
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        tern.send_signal(signal.SIGHUP)
        reloading = notify.recv()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        head, _, usec = reloading.partition("\nMONOTONIC_USEC=")
        self.assertEqual(head, "RELOADING=1", reloading)
        self.assertTrue(before <= int(usec) <= after, (before, usec, after))
        self.assertEqual(notify.recv(), "READY=1\nMAINPID=%d" % tern.proc.pid)
        ready = notify.index
        index, _ = notify.wait_status("serving 0 connections, last reload ok at %s "
                                      "\\(generation 1\\)" % ISO_TIME)
        self.assertGreater(index, ready, "STATUS= after the reload's READY=1")
        tern.stop_ok()

    def test_failed_reload_is_announced_and_shown(self):
        """A reload that fails is announced as any other (RELOADING=1, then
        READY=1: tern serves on, on the old configuration) whether SIGHUP or
        `tern ctl reload` started it; STATUS= names the reason, and `tern
        ctl reload`, the unit's ExecReload, exits 1."""
        be = self.echo_backend()
        notify = NotifySocket(self)
        cert = os.path.join(self.tmp, "site.pem")
        shutil.copy(self.default_cert()["cert"], cert)
        control = os.path.join(self.tmp, "control.sock")
        tern = self.start_notified(notify, [be], cert=cert, extra=["--control", control])
        self.assertEqual(notify.recv(), "READY=1\nMAINPID=%d" % tern.proc.pid)
        with open(cert, "w") as f:
            f.write("not a certificate\n")

        for how in ("SIGHUP", "tern ctl reload"):
            start = len(notify.log)
            if how == "SIGHUP":
                tern.send_signal(signal.SIGHUP)
            else:
                r = run_ctl(self, ["--control", control, "reload"])
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn(cert, r.stdout + r.stderr)
            self.assertTrue(notify.recv().startswith("RELOADING=1\nMONOTONIC_USEC="), how)
            self.assertEqual(notify.recv(), "READY=1\nMAINPID=%d" % tern.proc.pid, how)
            _, text = notify.wait_status("serving 0 connections, last reload failed at %s: "
                                         "%s: .+" % (ISO_TIME, re.escape(cert)), after=start)
            self.assertNotIn("\n", text)
        # Still serving, on the old certificate.
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"old cert", expect=8), b"old cert")
        c.close()

        shutil.copy(self.default_cert()["cert"], cert)
        start = len(notify.log)
        r = run_ctl(self, ["--control", control, "reload"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(notify.recv().startswith("RELOADING=1\nMONOTONIC_USEC="))
        self.assertEqual(notify.recv(), "READY=1\nMAINPID=%d" % tern.proc.pid)
        notify.wait_status("serving [01] connections?, last reload ok at %s \\(generation 1\\)"
                           % ISO_TIME, after=start)
        tern.stop_ok()

    def test_status_counts_connections_and_the_drain(self):
        be = self.echo_backend()
        notify = NotifySocket(self)
        tern = self.start_notified(notify, [be])
        self.assertEqual(notify.recv(), "READY=1\nMAINPID=%d" % tern.proc.pid)
        clients = [self.client().handshake() for _ in range(2)]
        for c in clients:
            self.assertEqual(c.exchange(b"hi", expect=2), b"hi")
        notify.wait_status("serving 2 connections, no reload yet", timeout=3)
        clients[0].close()
        notify.wait_status("serving 1 connection, no reload yet", timeout=3)
        # A line is sent when it changes, not every period.
        notify.listen(1.5)
        statuses = [t for t in notify.texts() if t.startswith("STATUS=")]
        self.assertEqual(len(statuses), len(set(statuses)), statuses)
        # The drain, held open by the last connection.
        tern.send_signal(signal.SIGTERM)
        self.assertEqual(notify.recv(), "STOPPING=1")
        notify.wait_status("draining 1 connection, no reload yet", timeout=3)
        clients[1].shut_write("close_notify")
        clients[1].recv_until_close()
        clients[1].close()
        self.assertEqual(tern.wait_exit(), 0)
        tern.check_sanitizers()

    def test_unreachable_notify_socket_is_not_fatal(self):
        be = self.echo_backend()
        os.environ["NOTIFY_SOCKET"] = os.path.join(self.tmp, "nobody-listens.sock")
        try:
            tern = self.start_tern([be], extra=["--log-level", "debug"])
        finally:
            del os.environ["NOTIFY_SOCKET"]
        wait_for(lambda: "sd_notify READY to NOTIFY_SOCKET=" in tern.log(), 5,
                 "the debug line about the failed notify")
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"still serving", expect=13), b"still serving")
        c.shut_write("close_notify")
        c.recv_until_close()
        tern.stop_ok()


# include/tern/health.h: a worker is late after this long without answering
# a ping; the pings come once a second.
HEALTH_BOUND_S = 3.0
PING_S = 1.0


class TestWatchdog(NotifyTestCase):
    """WatchdogSec=: systemd sets WATCHDOG_USEC (and WATCHDOG_PID), and
    kills a service whose WATCHDOG=1 keep-alives stop for that long."""

    def start_watched(self, notify, usec=2000000, workers=2, env=None):
        be = self.echo_backend()
        tern = self.start_notified(notify, [be], workers=workers,
                                   env=dict(env or {}, WATCHDOG_USEC=str(usec)))
        self.assertEqual(notify.recv(), "READY=1\nMAINPID=%d" % tern.proc.pid)
        return tern

    def test_keep_alives_every_half_interval(self):
        notify = NotifySocket(self)
        tern = self.start_watched(notify, usec=2000000)
        tern.wait_log("watchdog: WATCHDOG=1 every 1000ms while every worker answers within "
                      "3000ms (WatchdogSec=)")
        times = notify.wait_keep_alives(4, 6)
        gaps = [b - a for a, b in zip(times, times[1:])]
        # Half of 2 s, on the main thread's 100 ms tick: not sooner
        # (unscaled), and not so late that systemd would fire.
        self.assertGreaterEqual(min(gaps), 0.9, gaps)
        self.assertLess(max(gaps), scaled(1.6), gaps)
        tern.stop_ok()

    def test_wedged_worker_stops_keep_alives_until_it_answers(self):
        notify = NotifySocket(self)
        tern = self.start_watched(notify, usec=2000000)
        notify.wait_keep_alives(2, 4)
        stopped = StoppedThread(thread_id(tern.proc.pid, "tern-w1"))
        self.addCleanup(stopped.resume)
        t0 = time.monotonic()
        tern.wait_log("watchdog: worker 1 has not answered for ", HEALTH_BOUND_S + 3,
                      "the keep-alives withheld")
        # Withheld once its last answer (at most a ping before the stop)
        # is more than the bound old: not before (an unscaled lower bound).
        withheld = time.monotonic()
        self.assertGreaterEqual(withheld - t0, HEALTH_BOUND_S - PING_S - 0.2)
        self.assertIn("WATCHDOG=1 withheld, so systemd restarts tern", tern.log())
        # Longer than WatchdogSec=2s with no keep-alive: systemd would kill
        # tern here (a keep-alive already on its way when the log line was
        # written is allowed).
        notify.listen(2.5)
        late = notify.keep_alives(since=withheld + 0.2)
        self.assertEqual(late, [], "keep-alives while a worker is wedged")
        # The worker runs again: it answers its queued pings, and the
        # keep-alives resume.
        stopped.resume()
        resumed = time.monotonic()
        notify.wait_keep_alives(1, PING_S + 2, since=resumed)
        tern.wait_log("watchdog: every worker answers again: WATCHDOG=1 resumed")
        tern.stop_ok()

    def test_keep_alives_go_on_through_a_drain(self):
        """A drained worker stops answering on purpose; systemd's
        TimeoutStopSec, not the watchdog, bounds a stop."""
        notify = NotifySocket(self)
        tern = self.start_watched(notify, usec=2000000)
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"held", expect=4), b"held")
        notify.wait_keep_alives(1, 3)
        tern.send_signal(signal.SIGTERM)
        self.assertEqual(notify.recv(), "STOPPING=1")
        draining = time.monotonic()
        # Past the health bound, with at least one worker finished: still
        # a keep-alive every second.
        notify.listen(HEALTH_BOUND_S + 1.5)
        got = notify.keep_alives(since=draining)
        self.assertGreaterEqual(len(got), 3, got)
        self.assertGreater(got[-1], draining + HEALTH_BOUND_S, got)
        self.assertEqual(tern.proc.poll(), None)
        c.shut_write("close_notify")
        c.recv_until_close()
        c.close()
        self.assertEqual(tern.wait_exit(), 0)
        tern.check_sanitizers()

    def test_watchdog_pid_says_whose_watchdog_it_is(self):
        # Another process's (a parent's, inherited): no keep-alive, no
        # watchdog line.
        notify = NotifySocket(self)
        tern = self.start_watched(notify, usec=500000, env={"WATCHDOG_PID": "1"})
        notify.listen(1.5)
        self.assertEqual(notify.keep_alives(), [])
        self.assertNotIn("watchdog", tern.log())
        tern.stop_ok()
        # tern's own, set after the fork as systemd does.
        be = self.echo_backend()
        sock = listening_socket()
        self.addCleanup(sock.close)
        notify = NotifySocket(self, abstract=True)
        tern = ActivatedTern(self, ["--backend", be.addr, "--cert", self.default_cert()["cert"],
                                    "--workers", "2"], [sock.fileno()], name="tern-own",
                             env={"NOTIFY_SOCKET": notify.env_value, "WATCHDOG_USEC": "500000"},
                             watchdog_pid=True)
        self.assertEqual(notify.recv(), "READY=1\nMAINPID=%d" % tern.proc.pid)
        notify.wait_keep_alives(3, 3)
        tern.stop_ok()

    def test_bad_watchdog_usec_is_said_and_ignored(self):
        notify = NotifySocket(self)
        tern = self.start_watched(notify, usec="30s")
        tern.wait_log("watchdog: WATCHDOG_USEC=30s WATCHDOG_PID=(unset) is not valid: no "
                      "watchdog")
        notify.listen(0.5)
        self.assertEqual(notify.keep_alives(), [])
        tern.stop_ok()


if __name__ == "__main__":
    main()
