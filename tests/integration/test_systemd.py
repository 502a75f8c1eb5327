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
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Tern, TernTestCase, free_port, main, run_threads,  # noqa: E402
                     scaled, tern_command, wait_for)


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


def spawn_activated(argv, fds, stdout_fd, stderr_fd, names=None, listen_pid=None, env=None):
    """fork + execve of argv with fds at descriptors 3, 4, ... and the
    LISTEN_* variables of sd_listen_fds(3); LISTEN_PID is the child's own
    PID unless listen_pid is given. Returns the child's PID."""
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
            os.execve(argv[0], argv, child_env)
        finally:
            os._exit(127)
    os.close(devnull)
    return pid


class ActivatedTern(Tern):
    """A tern started by spawn_activated() instead of subprocess.Popen;
    everything else (log, wait_ready, stop, cleanup) is harness.Tern's."""

    def __init__(self, tc, args, fds, names=None, listen_pid=None, env=None, ready=True,
                 name="tern"):
        self.tc = tc
        self.args = tern_command(args)
        if not os.access(self.args[0], os.X_OK):
            raise AssertionError("tern binary not found or not executable: %s" % self.args[0])
        self.log_path = os.path.join(tc.tmp, "%s-%d.stderr" % (name, len(tc._terns)))
        self.stdout_path = self.log_path[:-len(".stderr")] + ".stdout"
        self._log = open(self.log_path, "wb")
        self._out = open(self.stdout_path, "wb")
        pid = spawn_activated(self.args, fds, self._out.fileno(), self._log.fileno(),
                              names=names, listen_pid=listen_pid, env=env)
        self.proc = ForkedProcess(pid)
        self.returncode = None
        tc._terns.append(self)
        tc.addCleanup(self._cleanup)
        if ready:
            self.wait_ready()


class NotifySocket:
    """A datagram socket standing in for systemd's notify socket: bound to
    a path in the test's temp dir, or to an abstract name."""

    def __init__(self, tc, abstract=False):
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

    def recv(self, timeout=5):
        self.sock.settimeout(scaled(timeout))
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            raise AssertionError("no datagram on the notify socket within %.1fs"
                                 % scaled(timeout))

    def nothing_more(self):
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return True
        raise AssertionError("unexpected datagram %r" % data)


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


class TestNotify(TernTestCase):

    def test_ready_and_stopping_on_an_abstract_socket(self):
        be = self.echo_backend()
        notify = NotifySocket(self, abstract=True)
        old = os.environ.get("NOTIFY_SOCKET")
        os.environ["NOTIFY_SOCKET"] = notify.env_value
        try:
            tern = self.start_tern([be])
        finally:
            if old is None:
                del os.environ["NOTIFY_SOCKET"]
            else:
                os.environ["NOTIFY_SOCKET"] = old
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
        MONOTONIC_USEC when a reload starts, READY=1 when it ends."""
        be = self.echo_backend()
        notify = NotifySocket(self)
        os.environ["NOTIFY_SOCKET"] = notify.env_value
        try:
            tern = self.start_tern([be])
        finally:
            del os.environ["NOTIFY_SOCKET"]
        self.assertEqual(notify.recv(), "READY=1\nMAINPID=%d" % tern.proc.pid)
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        tern.send_signal(signal.SIGHUP)
        reloading = notify.recv()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        head, _, usec = reloading.partition("\nMONOTONIC_USEC=")
        self.assertEqual(head, "RELOADING=1", reloading)
        self.assertTrue(before <= int(usec) <= after, (before, usec, after))
        self.assertEqual(notify.recv(), "READY=1\nMAINPID=%d" % tern.proc.pid)
        tern.stop_ok()

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


if __name__ == "__main__":
    main()
