"""Shared helpers for tern's integration tests.

The tests start the real binary on a free loopback port and drive it with
real clients (Python's ssl module, openssl s_client, curl, gnutls-cli) and
backends that run as threads inside the test process. Python standard
library only.

Conventions:
- Every wait is bounded: wait_for() polls a condition until a deadline and
  fails the test with a message when the deadline passes. Sleeps are used
  only to pace traffic (a slow backend), never to wait for something.
- Upper bounds are multiplied by TERN_TIMEOUT_SCALE (default 1) so that the
  suite passes under AddressSanitizer; lower bounds (a timeout must not fire
  early) are not scaled.
- Every test gets its own temporary directory; every process and thread it
  starts is stopped in cleanup; tern's stderr is printed when the test fails.

The binary: env TERN_BIN, or `--tern PATH` on the command line, or
../../build/tern relative to this file.

The pieces live in sibling modules, each re-exported here so that tests
import everything from harness: harness_wait (time bounds), harness_proc
(the binary, sanitizer markers, RSS), harness_net (ports, plain sockets,
pipes), harness_certs, harness_backends, harness_tls (TLSClient) and
harness_control (the control socket, `tern ctl`). This file holds Tern,
TernTestCase and main().
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

from harness_backends import (Backend, BannerEchoBackend, EchoBackend,  # noqa: F401
                              FloodBackend, HTTPBackend, ReplyThenCloseBackend,
                              SinkBackend, SlowBackend, sha256, slow_payload)
from harness_certs import _openssl, make_cert  # noqa: F401
from harness_control import ControlClient, ctl, run_ctl  # noqa: F401
from harness_net import (accept_queue, closed_port, drain_stream, free_port,  # noqa: F401
                         metrics_text, port_refuses, read_stream_until, read_until_closed,
                         reset_socket)
from harness_proc import (HERE, SANITIZER_MARKERS, StoppedThread,  # noqa: F401
                          binary_is_sanitized, cpu_seconds, cpu_share, open_fds, process_rss,
                          sandbox_launcher, set_tern_bin, tern_bin, tern_command, test_io,
                          thread_id)
from harness_tls import (HANDSHAKE_FAILED, ClosedByPeer, TLSClient,  # noqa: F401
                         client_context, client_hello_bytes)
from harness_wait import (SCALE, PeakWatch, WaitTimeout, run_threads,  # noqa: F401
                          scaled, wait_for, wait_stalled)


def main():
    """unittest.main() that first takes `--tern PATH` out of argv."""
    argv = list(sys.argv)
    if "--tern" in argv:
        i = argv.index("--tern")
        if i + 1 >= len(argv):
            sys.exit("--tern needs a path")
        set_tern_bin(os.path.abspath(argv[i + 1]))
        del argv[i:i + 2]
    unittest.main(argv=argv, verbosity=2)


# ----------------------------------------------------------------- parsing

def parse_kv(text):
    """'a=1 b=x' -> {'a': 1, 'b': 'x'} (integers converted)."""
    out = {}
    for tok in text.split():
        if "=" not in tok:
            continue
        k, v = tok.split("=", 1)
        try:
            out[k] = int(v)
        except ValueError:
            out[k] = v
    return out


# ------------------------------------------------------------------ tern

class Tern:
    """One running tern process; stderr goes to a file in the test's dir.
    launcher: argv run in front of tern's, which it must exec (for example
    no_io_uring.py); self.args stays tern's own."""

    def __init__(self, tc, args, ready=True, name="tern", launcher=()):
        self.tc = tc
        self.args = tern_command(args)
        if not os.access(self.args[0], os.X_OK):
            raise AssertionError("tern binary not found or not executable: %s "
                                 "(build it, or set TERN_BIN / pass --tern)" % self.args[0])
        self.log_path = os.path.join(tc.tmp, "%s-%d.stderr" % (name, len(tc._terns)))
        self.stdout_path = self.log_path[:-len(".stderr")] + ".stdout"
        self._log = open(self.log_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(list(launcher) + sandbox_launcher() + self.args,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._log, cwd=tc.tmp)
        self.returncode = None
        tc._terns.append(self)
        tc.addCleanup(self._cleanup)
        if ready:
            self.wait_ready()

    # --- log access
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def lines(self):
        return self.log().splitlines()

    def ready_line(self):
        """tern's ' ready: ' line (fails when there is none yet)."""
        ready = [l for l in self.lines() if " ready: " in l]
        if not ready:
            raise AssertionError("no ' ready: ' line in tern's stderr")
        return ready[0]

    def count_lines(self, needle):
        """How many lines of the log hold needle."""
        return sum(1 for line in self.lines() if needle in line)

    def wait_log(self, needle, timeout=5, what=None):
        return wait_for(lambda: needle in self.log(), timeout, what or repr(needle))

    def wait_ready(self, timeout=10):
        def ready():
            if " ready: " in self.log():
                return True
            if self.proc.poll() is not None:
                raise AssertionError("tern exited with %s before ready:\n%s"
                                     % (self.proc.returncode, self.log()))
            return False
        wait_for(ready, timeout, "tern ' ready: ' line")
        # An engine asked for is the engine that runs: CI's epoll pass
        # (TERN_TEST_IO) must not pass on io_uring.
        if "--io" in self.args:
            engine = self.args[self.args.index("--io") + 1]
            line = self.ready_line()
            if engine in ("uring", "epoll") and " io=%s " % engine not in line:
                raise AssertionError("--io %s but the ready line says otherwise: %s"
                                     % (engine, line))

    def access_lines(self):
        """Access-log records as dicts, in the order written."""
        out = []
        for line in self.lines():
            i = line.find(" access ")
            if i >= 0:
                out.append(parse_kv(line[i + len(" access "):]))
        return out

    def wait_access(self, n, timeout=5):
        """Waits until at least n access lines were written; returns them."""
        wait_for(lambda: len(self.access_lines()) >= n, timeout, "%d access-log lines" % n)
        return self.access_lines()

    def access_for(self, client, timeout=5):
        """The access-log record of one client connection (matched by its
        peer address); waits for it, bounded."""
        peer = client.peer_text() if isinstance(client, TLSClient) else client
        def find():
            for a in self.access_lines():
                if a.get("peer") == peer:
                    return a
            return None
        return wait_for(find, timeout, "access-log line for peer=%s" % peer)

    def stopped_counters(self):
        for line in reversed(self.lines()):
            i = line.find(" stopped: ")
            if i >= 0:
                return parse_kv(line[i + len(" stopped: "):])
        return None

    # --- process control
    def send_signal(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout=10):
        """Waits (bounded) for exit; returns the exit code."""
        try:
            self.returncode = self.proc.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError("tern did not exit within %.1fs" % scaled(timeout))
        return self.returncode

    def stop(self, timeout=10, sig=signal.SIGTERM):
        """SIGTERM, bounded wait; returns (exit code, stopped: counters)."""
        self.send_signal(sig)
        rc = self.wait_exit(timeout)
        self.check_sanitizers()
        return rc, self.stopped_counters()

    def stop_ok(self, timeout=10):
        """stop() and assert exit 0 and a parsable stopped: line."""
        rc, counters = self.stop(timeout)
        self.tc.assertEqual(rc, 0, "tern exit status")
        self.tc.assertIsNotNone(counters, "no ' stopped: ' line on stderr")
        for key in ("conns_total", "handshakes_full", "handshakes_resumed",
                    "handshake_failures", "backend_connect_failures",
                    "bytes_client_in", "bytes_client_out"):
            self.tc.assertIn(key, counters, "stopped: line lacks %s" % key)
            self.tc.assertIsInstance(counters[key], int, "stopped: %s is not a number" % key)
        if "--access-log" in self.args:
            # One access line per closed client connection, and the byte
            # counters are the sums of the per-connection ones.
            lines = self.access_lines()
            self.tc.assertEqual(len(lines), counters["conns_total"],
                                "access-log lines versus stopped: conns_total")
            self.tc.assertEqual(sum(a.get("bytes_in", 0) for a in lines),
                                counters["bytes_client_in"], "sum of access bytes_in")
            self.tc.assertEqual(sum(a.get("bytes_out", 0) for a in lines),
                                counters["bytes_client_out"], "sum of access bytes_out")
        return counters

    # --- control socket (--control PATH)
    def control_path(self):
        """The --control PATH this tern was started with."""
        if "--control" not in self.args:
            raise AssertionError("tern was started without --control")
        return self.args[self.args.index("--control") + 1]

    def ctl(self, command, timeout=5):
        """One command on a fresh control connection; the parsed reply."""
        return ctl(self.control_path(), command, timeout)

    def stats(self, timeout=5):
        """The control socket's stats reply (asserted ok)."""
        reply = self.ctl("stats", timeout)
        if reply.get("ok") is not True:
            raise AssertionError("stats failed: %r" % reply)
        return reply

    def conns(self, timeout=5):
        """The control socket's conns list (asserted ok)."""
        reply = self.ctl("conns", timeout)
        if reply.get("ok") is not True:
            raise AssertionError("conns failed: %r" % reply)
        return reply["conns"]

    def conn_of(self, client, timeout=5, handshake_done=False):
        """The conns entry of one client connection (matched by peer);
        waits for it, bounded (the worker lists it once accepted). With
        handshake_done, also until tern has finished the handshake: a TLS
        1.3 client has finished before tern has read its Finished."""
        peer = client.peer_text() if isinstance(client, TLSClient) else client
        def find():
            for c in self.conns():
                if c.get("peer") == peer:
                    return c if c.get("version") or not handshake_done else None
            return None
        return wait_for(find, timeout, "conns entry for peer=%s" % peer)

    def check_sanitizers(self):
        log = self.log()
        for marker in SANITIZER_MARKERS:
            if marker in log:
                raise AssertionError("sanitizer report in tern's stderr (%s)" % marker)

    def _cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._log.close()
        self._out.close()


class TernTestCase(unittest.TestCase):
    """Base class: a temp dir per test, helpers to start tern, backends and
    clients, cleanup of all of them, and tern's stderr dumped on failure."""

    maxDiff = 4000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tern-integ-")
        self._terns = []
        self._cert = None
        self._failure_reports = []

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            failed = len(result.failures) + len(result.errors) > before
            tmp = getattr(self, "tmp", None)
            if failed:
                for t in getattr(self, "_terns", []):
                    sys.stderr.write("\n----- %s (%s) stderr -----\n%s----- end -----\n"
                                     % (" ".join(t.args), t.log_path, t.log()))
                for text in getattr(self, "_failure_reports", []):
                    sys.stderr.write(text)
            if tmp and os.path.isdir(tmp):
                if failed and os.environ.get("TERN_KEEP_TMP"):
                    sys.stderr.write("kept %s\n" % tmp)
                else:
                    shutil.rmtree(tmp, ignore_errors=True)

    def add_failure_report(self, text):
        """text is printed (after tern's stderr) when the test fails: what
        a helper process said, kept before the temporary directory goes."""
        self._failure_reports.append(text)

    # --- certificates
    def cert(self, kind="ec", **kw):
        return make_cert(self.tmp, kind, **kw)

    def default_cert(self):
        if self._cert is None:
            self._cert = self.cert("ec")
        return self._cert

    # --- tern
    def start_tern(self, backends, extra=(), workers=2, access_log=True, cert=True,
                   listen=None, ready=True, launcher=()):
        """Starts tern on a free port. backends: list of "HOST:PORT" or
        "unix:/path" strings or Backend objects. cert: True (an EC cert for
        localhost), None (no --cert: tern's self-signed) or a path.
        launcher: as Tern's."""
        for attempt in range(3):
            self.port = free_port()
            try:
                return self._start_tern(backends, extra, workers, access_log, cert, listen,
                                        ready, launcher)
            except AssertionError:
                # free_port() races with other processes: another one may
                # have taken the port between our probe and tern's bind.
                if listen or attempt == 2 or not self._terns \
                        or "in use" not in self._terns[-1].log():
                    raise

    def _start_tern(self, backends, extra, workers, access_log, cert, listen, ready, launcher):
        args = []
        for addr in (listen or ["127.0.0.1:%d" % self.port]):
            args += ["--listen", addr]
        for b in backends:
            args += ["--backend", b.addr if isinstance(b, Backend) else b]
        if cert is True:
            args += ["--cert", self.default_cert()["cert"]]
        elif cert:
            args += ["--cert", cert]
        if workers is not None:
            args += ["--workers", str(workers)]
        if access_log:
            args.append("--access-log")
        args += list(extra)
        return Tern(self, args, ready=ready, launcher=launcher)

    def finish(self, tern, clients=()):
        """Closes the clients, waits until tern (started with --control)
        lists no connection, and stops it: exit 0, no sanitizer report.
        Returns the stopped: counters."""
        for c in clients:
            c.close()
        wait_for(lambda: tern.stats()["conns_active"] == 0, 5, "conns_active == 0")
        return tern.stop_ok()

    def start_tern_with_metrics(self, backends, workers=2, extra=(), **kw):
        """start_tern with --control (self.ctl_path, in the test's
        directory) and --metrics on a free port (self.mport); kw:
        start_tern's (access_log, launcher, ...)."""
        self.ctl_path = os.path.join(self.tmp, "control.sock")
        for attempt in range(3):
            self.mport = free_port()
            try:
                return self.start_tern(backends, workers=workers, extra=[
                    "--metrics", "127.0.0.1:%d" % self.mport, "--control", self.ctl_path]
                    + list(extra), **kw)
            except AssertionError:
                # free_port() races with other processes, as in start_tern.
                if attempt == 2 or "in use" not in self._terns[-1].log():
                    raise

    def run_tern(self, args, timeout=10, launcher=()):
        """Runs tern to completion (CLI tests): returns CompletedProcess
        with text stdout/stderr. launcher: as Tern's."""
        if not os.access(tern_bin(), os.X_OK):
            raise AssertionError("tern binary not found or not executable: %s" % tern_bin())
        try:
            return subprocess.run(list(launcher) + sandbox_launcher() + tern_command(args),
                                  stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, errors="replace",
                                  timeout=scaled(timeout), cwd=self.tmp)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("tern %s did not exit within %.1fs (stderr so far: %r)"
                                 % (" ".join(args), scaled(timeout), e.stderr))

    def popen(self, args, **kw):
        """Popen that is killed in cleanup."""
        p = subprocess.Popen(args, **kw)

        def kill():
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            for f in (p.stdin, p.stdout, p.stderr):
                if f:
                    f.close()
        self.addCleanup(kill)
        return p

    # --- backends
    def backend(self, cls, *args, **kw):
        b = cls(self, *args, **kw)
        self.addCleanup(b.close)
        return b

    def echo_backend(self, **kw):
        return self.backend(EchoBackend, **kw)

    def syn_dropping_port(self):
        """A loopback port whose listener's accept queue is full (backlog
        0, filled by the test's own connects): the kernel drops a new SYN,
        so a connect to it waits (retransmits) until its own timeout.
        The sockets are closed in cleanup."""
        ls = socket.socket()
        self.addCleanup(ls.close)
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        port = ls.getsockname()[1]
        for _ in range(3):
            s = socket.socket()
            self.addCleanup(s.close)
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
        return port

    # --- clients
    def client(self, port=None, **kw):
        c = TLSClient(port or self.port, **kw)
        self.addCleanup(c.close)
        return c


def check_sanitizers_at_cleanup(tc):
    """Registers a cleanup (it runs after every tern of the test is
    stopped or killed) that fails the test when any tern's stderr holds a
    sanitizer report, ThreadSanitizer warnings included: a test that never
    calls stop() still catches a data race. Call it first in setUp."""
    def check():
        for t in list(getattr(tc, "_terns", [])):
            t.check_sanitizers()
    tc.addCleanup(check)
