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
"""

import hashlib
import json
import os
import random
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
SCALE = float(os.environ.get("TERN_TIMEOUT_SCALE", "1") or "1")

_tern_bin = os.environ.get("TERN_BIN") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "tern"))


def tern_bin():
    return _tern_bin


def scaled(seconds):
    """An upper bound in seconds, stretched for slow (sanitizer) builds."""
    return seconds * SCALE


def main():
    """unittest.main() that first takes `--tern PATH` out of argv."""
    global _tern_bin
    argv = list(sys.argv)
    if "--tern" in argv:
        i = argv.index("--tern")
        if i + 1 >= len(argv):
            sys.exit("--tern needs a path")
        _tern_bin = os.path.abspath(argv[i + 1])
        del argv[i:i + 2]
    unittest.main(argv=argv, verbosity=2)


# ---------------------------------------------------------------- waiting

class WaitTimeout(AssertionError):
    pass


def wait_for(cond, timeout, what="condition", interval=0.02):
    """Polls cond() until it returns a true value, which is returned.
    Raises WaitTimeout (an AssertionError) after `timeout` seconds (scaled)."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout("timed out after %.1fs waiting for %s" % (scaled(timeout), what))
        time.sleep(interval)


# ------------------------------------------------------------------ ports

def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind port 0, then close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def closed_port():
    """A port on which nothing listens: connecting to it is refused."""
    return free_port()


def port_refuses(port, host="127.0.0.1", timeout=1.0):
    """True when a TCP connect to host:port is refused or reset."""
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    except OSError:
        return True
    s.close()
    return False


# ------------------------------------------------------------------ certs

def _openssl(args, cwd):
    r = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s"
                           % (" ".join(args), r.stderr.decode(errors="replace")))


# Files the tests write (combined cert+key PEMs, key files) stay private,
# as tern requires of any file holding a private key or ticket keys.
os.umask(0o077)

def make_cert(directory, kind="ec", cn="localhost", sans=("DNS:localhost", "IP:127.0.0.1"),
              combined=True, name=None):
    """Makes a self-signed certificate with the openssl CLI.

    kind: "ec" (P-256) or "rsa" (2048 bits). Returns a dict with "cert" (the
    PEM with certificate and, when combined, the key), "key" (the key file)
    and "cert_only" (certificate without key)."""
    name = name or "%s-%s" % (kind, cn.replace("*", "star"))
    key = os.path.join(directory, name + ".key")
    crt = os.path.join(directory, name + ".crt")
    if kind == "ec":
        _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", key], directory)
    elif kind == "rsa":
        _openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                  "-out", key], directory)
    else:
        raise ValueError(kind)
    _openssl(["req", "-new", "-x509", "-key", key, "-out", crt, "-days", "30",
              "-subj", "/CN=" + cn, "-addext", "subjectAltName=" + ",".join(sans)], directory)
    out = {"key": key, "cert_only": crt}
    if combined:
        pem = os.path.join(directory, name + ".pem")
        with open(pem, "wb") as f, open(crt, "rb") as c, open(key, "rb") as k:
            f.write(c.read())
            f.write(k.read())
        out["cert"] = pem
    else:
        out["cert"] = crt
    return out


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


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer")


# ------------------------------------------------------------------ tern

class Tern:
    """One running tern process; stderr goes to a file in the test's dir."""

    def __init__(self, tc, args, ready=True, name="tern"):
        self.tc = tc
        self.args = [tern_bin()] + list(args)
        if not os.access(self.args[0], os.X_OK):
            raise AssertionError("tern binary not found or not executable: %s "
                                 "(build it, or set TERN_BIN / pass --tern)" % self.args[0])
        self.log_path = os.path.join(tc.tmp, "%s-%d.stderr" % (name, len(tc._terns)))
        self.stdout_path = self.log_path[:-len(".stderr")] + ".stdout"
        self._log = open(self.log_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._log, cwd=tc.tmp)
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

    def conn_of(self, client, timeout=5):
        """The conns entry of one client connection (matched by peer);
        waits for it, bounded (the worker lists it once accepted)."""
        peer = client.peer_text() if isinstance(client, TLSClient) else client
        def find():
            for c in self.conns():
                if c.get("peer") == peer:
                    return c
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
            if tmp and os.path.isdir(tmp):
                if failed and os.environ.get("TERN_KEEP_TMP"):
                    sys.stderr.write("kept %s\n" % tmp)
                else:
                    shutil.rmtree(tmp, ignore_errors=True)

    # --- certificates
    def cert(self, kind="ec", **kw):
        return make_cert(self.tmp, kind, **kw)

    def default_cert(self):
        if self._cert is None:
            self._cert = self.cert("ec")
        return self._cert

    # --- tern
    def start_tern(self, backends, extra=(), workers=2, access_log=True, cert=True,
                   listen=None, ready=True):
        """Starts tern on a free port. backends: list of "HOST:PORT" or
        "unix:/path" strings or Backend objects. cert: True (an EC cert for
        localhost), None (no --cert: tern's self-signed) or a path."""
        for attempt in range(3):
            self.port = free_port()
            try:
                return self._start_tern(backends, extra, workers, access_log, cert, listen,
                                        ready)
            except AssertionError:
                # free_port() races with other processes: another one may
                # have taken the port between our probe and tern's bind.
                if listen or attempt == 2 or not self._terns \
                        or "in use" not in self._terns[-1].log():
                    raise

    def _start_tern(self, backends, extra, workers, access_log, cert, listen, ready):
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
        return Tern(self, args, ready=ready)

    def finish(self, tern, clients=()):
        """Closes the clients, waits until tern (started with --control)
        lists no connection, and stops it: exit 0, no sanitizer report.
        Returns the stopped: counters."""
        for c in clients:
            c.close()
        wait_for(lambda: tern.stats()["conns_active"] == 0, 5, "conns_active == 0")
        return tern.stop_ok()

    def start_tern_with_metrics(self, backends, workers=2, extra=()):
        """start_tern with --control (self.ctl_path, in the test's
        directory) and --metrics on a free port (self.mport)."""
        self.ctl_path = os.path.join(self.tmp, "control.sock")
        for attempt in range(3):
            self.mport = free_port()
            try:
                return self.start_tern(backends, workers=workers, extra=[
                    "--metrics", "127.0.0.1:%d" % self.mport, "--control", self.ctl_path]
                    + list(extra))
            except AssertionError:
                # free_port() races with other processes, as in start_tern.
                if attempt == 2 or "in use" not in self._terns[-1].log():
                    raise

    def run_tern(self, args, timeout=10):
        """Runs tern to completion (CLI tests): returns CompletedProcess
        with text stdout/stderr."""
        if not os.access(tern_bin(), os.X_OK):
            raise AssertionError("tern binary not found or not executable: %s" % tern_bin())
        try:
            return subprocess.run([tern_bin()] + list(args), stdin=subprocess.DEVNULL,
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

    # --- clients
    def client(self, port=None, **kw):
        c = TLSClient(port or self.port, **kw)
        self.addCleanup(c.close)
        return c


# --------------------------------------------------------------- backends

class Backend:
    """A listening socket served by an accept thread and a thread per
    connection. Subclasses implement handle(conn, index). Counters are
    updated under self.lock. TCP on 127.0.0.1, or a unix socket when
    unix=True (the path lies in the test's temp dir)."""

    def __init__(self, tc, unix=False, order_log=None, name=None):
        self.name = name or type(self).__name__
        self.lock = threading.Lock()
        self.accepted = 0
        self.closed_conns = 0
        self.conns = []
        self.errors = []
        self.order_log = order_log  # shared list: names appended at accept
        self.stopping = threading.Event()
        if unix:
            self.path = os.path.join(tc.tmp, "%s-%d.sock" % (self.name, id(self) % 100000))
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(self.path)
            self.addr = "unix:" + self.path
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
            self.addr = "127.0.0.1:%d" % self.port
        self.sock.listen(1024)
        self.sock.settimeout(0.05)
        self.threads = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self.lock:
                index = self.accepted
                self.accepted += 1
                self.conns.append(conn)
                if self.order_log is not None:
                    self.order_log.append(self.name)
            t = threading.Thread(target=self._serve, args=(conn, index), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn, index):
        try:
            self.handle(conn, index)
        except OSError as e:
            if not self.stopping.is_set():
                with self.lock:
                    self.errors.append(e)
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self.lock:
                self.closed_conns += 1

    def handle(self, conn, index):
        raise NotImplementedError

    def close(self):
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(timeout=5)
        for t in self.threads:
            t.join(timeout=5)


class EchoBackend(Backend):
    """Echoes every byte; on EOF from the peer, shuts its write side."""

    def handle(self, conn, index):
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)


class BannerEchoBackend(EchoBackend):
    """Speaks first, as SMTP, FTP or MySQL servers do: sends `banner` on
    accept, then echoes."""

    def __init__(self, tc, banner, **kw):
        self.banner = banner
        super().__init__(tc, **kw)

    def handle(self, conn, index):
        conn.sendall(self.banner)
        super().handle(conn, index)


class ReplyThenCloseBackend(Backend):
    """Sends `payload`, then FIN (shutdown write side), then keeps reading
    what the peer sends until EOF; self.received[index] holds it."""

    def __init__(self, tc, payload, **kw):
        self.payload = payload
        self.received = {}
        super().__init__(tc, **kw)

    def handle(self, conn, index):
        conn.sendall(self.payload)
        conn.shutdown(socket.SHUT_WR)
        buf = bytearray()
        while True:
            data = conn.recv(65536)
            if not data:
                break
            buf += data
        with self.lock:
            self.received[index] = bytes(buf)


class SinkBackend(Backend):
    """Reads until EOF, counting and hashing; then, when reply is set,
    answers b"<count> <sha256 hex>\\n" and closes. self.results[index] =
    (count, sha256 hex). With gate (an Event), it does not read at all
    until the gate opens: a backend that stops reading."""

    def __init__(self, tc, reply=True, gate=None, **kw):
        self.reply = reply
        self.gate = gate  # threading.Event: when given, read only once set
        self.results = {}
        super().__init__(tc, **kw)

    def handle(self, conn, index):
        if self.gate is not None:
            while not self.gate.wait(0.1):
                if self.stopping.is_set():
                    return
        h = hashlib.sha256()
        n = 0
        while True:
            data = conn.recv(65536)
            if not data:
                break
            n += len(data)
            h.update(data)
        with self.lock:
            self.results[index] = (n, h.hexdigest())
        if self.reply:
            conn.sendall(b"%d %s\n" % (n, h.hexdigest().encode()))
        conn.shutdown(socket.SHUT_WR)


class SlowBackend(Backend):
    """Sends `total` bytes of deterministic data (slow_payload(total)) in
    `chunk`-byte pieces, one every `interval` seconds, then FIN; then reads
    and discards until the peer closes. self.sent[index] counts bytes
    sent."""

    def __init__(self, tc, total, chunk=65536, interval=0.05, **kw):
        self.total, self.chunk, self.interval = total, chunk, interval
        self.sent = {}
        super().__init__(tc, **kw)

    def handle(self, conn, index):
        data = slow_payload(self.total)
        sent = 0
        while sent < self.total and not self.stopping.is_set():
            piece = data[sent:sent + self.chunk]
            conn.sendall(piece)
            sent += len(piece)
            with self.lock:
                self.sent[index] = sent
            if sent < self.total:
                self.stopping.wait(self.interval)
        conn.shutdown(socket.SHUT_WR)
        # Keep the socket until the peer closes, so tern sees a clean FIN.
        conn.settimeout(scaled(30))
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

class FloodBackend(Backend):
    """Sends `total` bytes (`block` repeated) as fast as the peer takes
    them, then FIN; self.progress[index] counts bytes handed to the kernel."""

    def __init__(self, tc, total, block, **kw):
        self.total, self.block = total, block
        self.progress = {}
        super().__init__(tc, **kw)

    def handle(self, conn, index):
        sent = 0
        while sent < self.total and not self.stopping.is_set():
            conn.sendall(self.block)
            sent += len(self.block)
            with self.lock:
                self.progress[index] = sent
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(scaled(30))
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass


def wait_stalled(read_value, stall=1.0, timeout=20, what="progress to stall"):
    """Waits until read_value() stays the same for `stall` seconds; returns
    that value. Bounded by timeout (scaled)."""
    deadline = time.monotonic() + scaled(timeout)
    value, since = read_value(), time.monotonic()
    while True:
        time.sleep(0.05)
        now = time.monotonic()
        v = read_value()
        if v != value:
            value, since = v, now
        elif now - since >= stall:
            return value
        if now > deadline:
            raise WaitTimeout("timed out waiting for %s (still moving: %r)" % (what, value))


def process_rss(pid):
    """Resident set size of a process in bytes (Linux)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def binary_is_sanitized(path=None):
    """True when the binary was built with ASan or TSan: its memory use then
    says little about the program's own (shadow memory, quarantine)."""
    with open(path or tern_bin(), "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


def slow_payload(n):
    """Deterministic bytes, so a receiver can check them."""
    return random.Random(1234).randbytes(n)


class HTTPBackend:
    """http.server in a thread answering every GET with self.body."""

    def __init__(self, tc, body):
        outer = self
        self.body = body
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        tc.addCleanup(self.close)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# ----------------------------------------------------------------- client

def client_context(min_version=None, max_version=None, cafile=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    return ctx


class ClosedByPeer(Exception):
    pass


class TLSClient:
    """A TLS client driven through ssl.MemoryBIO over a non-blocking socket,
    in one thread: full duplex without deadlock, and exact control of
    close_notify versus TCP FIN.

    After a read loop ends, these tell how the server closed:
      got_close_notify: a TLS close_notify arrived
      got_eof:          the TCP stream ended (FIN)
      reset:            the TCP stream was reset
      ragged:           FIN without close_notify
    """

    def __init__(self, port, host="127.0.0.1", ctx=None, server_hostname="localhost",
                 connect_timeout=5, session=None):
        self.sock = socket.create_connection((host, port), timeout=scaled(connect_timeout))
        self.local_addr = self.sock.getsockname()
        self.sock.setblocking(False)
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = (ctx or client_context()).wrap_bio(self.inc, self.out, server_side=False,
                                                       server_hostname=server_hostname,
                                                       session=session)
        self.pending = b""       # ciphertext not yet sent
        self.got_close_notify = False
        self.got_eof = False
        self.reset = False
        self.ragged = False
        self.write_shut = False
        self.handshaken = False
        self.poll = select.poll()
        self.poll.register(self.sock, select.POLLIN)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def peer_text(self):
        """This client's address as tern's access log writes peer=."""
        host, port = self.local_addr[:2]
        return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)

    # --- low level
    def _flush(self):
        """Sends what ciphertext it can; True when everything went out."""
        if self.out.pending:
            self.pending += self.out.read()
        while self.pending:
            try:
                n = self.sock.send(self.pending)
            except BlockingIOError:
                return False
            except (BrokenPipeError, ConnectionResetError):
                self.reset = True
                self.pending = b""
                return True
            self.pending = self.pending[n:]
        return True

    def _fill(self):
        """Moves readable ciphertext from the socket to the BIO. Returns the
        number of bytes moved; 0 on EOF (then got_eof/reset are set)."""
        total = 0
        while True:
            try:
                data = self.sock.recv(262144)
            except BlockingIOError:
                return total
            except ConnectionResetError:
                self.reset = True
                self.inc.write_eof()
                return total
            if not data:
                self.got_eof = True
                self.inc.write_eof()
                return total
            self.inc.write(data)
            total += len(data)

    def _wait(self, want_write, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("TLS client timed out")
        events = (0 if self._eof_seen() else select.POLLIN) | (select.POLLOUT if want_write else 0)
        if not events:
            time.sleep(min(remaining, 0.01))
            return []
        self.poll.modify(self.sock, events)
        return self.poll.poll(min(remaining, 0.5) * 1000)

    def _eof_seen(self):
        return self.got_eof or self.reset

    def wait_ciphertext(self, wait):
        """Waits up to `wait` seconds for bytes from the server and moves
        them into the BIO (decrypting is the caller's); after EOF, just
        paces the caller's loop."""
        if not self._eof_seen():
            self.poll.modify(self.sock, select.POLLIN)
            self.poll.poll(max(0.0, wait) * 1000)
            self._fill()
        else:
            time.sleep(min(wait, 0.01))

    # --- handshake
    def handshake(self, timeout=5):
        deadline = time.monotonic() + scaled(timeout)
        while True:
            try:
                self.obj.do_handshake()
                self.handshaken = True
                break
            except ssl.SSLWantReadError:
                pass
            if not self._flush():
                self._wait(True, deadline)
                continue
            if self._eof_seen():
                raise ClosedByPeer("connection closed during handshake (reset=%s)" % self.reset)
            self._wait(False, deadline)
            self._fill()
        # The Finished message (and anything else) must go out.
        while not self._flush():
            self._wait(True, deadline)
        return self

    def version(self):
        return self.obj.version()

    def cipher(self):
        return self.obj.cipher()

    # --- data
    def _read_available(self, sink):
        """Decrypts what the BIO holds into sink; returns bytes added."""
        n = 0
        while True:
            try:
                data = self.obj.read(262144)
            except ssl.SSLWantReadError:
                return n
            except ssl.SSLZeroReturnError:
                self.got_close_notify = True
                return n
            except ssl.SSLEOFError:
                self.ragged = True
                return n
            if not data:
                self.got_close_notify = True
                return n
            sink += data
            n += len(data)

    def _done_reading(self):
        return self.got_close_notify or self.ragged or (self._eof_seen() and not self.inc.pending)

    def exchange(self, payload=b"", expect=None, timeout=10, then=None, chunk=16384,
                 on_progress=None):
        """Sends payload while reading, full duplex, and returns the bytes
        received. Returns once everything is sent (and `then` done) and
        either `expect` bytes arrived (when given) or the server closed its
        side (close_notify or EOF); also returns when the connection is
        reset. then: None, "close_notify" (send close_notify after the
        payload) or "fin" (TCP shutdown of the write side after the
        payload). on_progress(received) is called after each read."""
        deadline = time.monotonic() + scaled(timeout)
        received = bytearray()
        view = memoryview(payload)
        off = 0
        shut_done = False
        while True:
            progress = False
            # Feed plaintext only when earlier ciphertext has left: bounded
            # memory, real backpressure.
            if not self.reset and self._flush():
                if off < len(view):
                    n = min(chunk, len(view) - off)
                    self.obj.write(view[off:off + n])
                    off += n
                    progress = True
                elif then and not shut_done:
                    self.shut_write(then)
                    shut_done = True
                    progress = True
            if not self._eof_seen():
                self._fill()
            got = self._read_available(received)
            if got:
                progress = True
                if on_progress:
                    on_progress(received)
            if self.reset:
                return bytes(received)
            # Written means on the socket: neither in the BIO nor pending.
            sending_done = (off >= len(view) and not self.out.pending and not self.pending
                            and (shut_done or not then))
            if sending_done:
                if expect is not None and len(received) >= expect:
                    return bytes(received)
                if self._done_reading():
                    return bytes(received)
            if progress:
                continue
            self._wait(bool(self.pending), deadline)

    def push_until_stalled(self, block, limit, stall=1.0, timeout=30):
        """Writes `block` again and again (at most `limit` bytes) for as long
        as the peer takes it, reading nothing. Returns the plaintext bytes
        handed over once nothing moved for `stall` seconds, or `limit`."""
        deadline = time.monotonic() + scaled(timeout)
        sent = 0
        last_progress = time.monotonic()
        while sent < limit:
            if self._flush():
                self.obj.write(block)
                sent += len(block)
                last_progress = time.monotonic()
                continue
            if self.reset:
                raise ConnectionResetError("reset while pushing")
            before = len(self.pending)
            self.poll.modify(self.sock, select.POLLOUT)
            self.poll.poll(100)
            self._flush()
            now = time.monotonic()
            if len(self.pending) < before:
                last_progress = now
            elif now - last_progress >= stall:
                break
            if now > deadline:
                raise socket.timeout("push_until_stalled timed out")
        return sent

    def recv_until_close(self, timeout=10):
        """Reads until close_notify or EOF; returns the bytes."""
        deadline = time.monotonic() + scaled(timeout)
        received = bytearray()
        while True:
            self._fill()
            self._read_available(received)
            if self.got_close_notify or self.ragged or (self._eof_seen() and not self.inc.pending):
                if self.got_close_notify and not self._eof_seen():
                    # Let the FIN that follows close_notify arrive too.
                    try:
                        self.wait_eof(timeout=max(0.0, deadline - time.monotonic()) / SCALE)
                    except socket.timeout:
                        pass
                return bytes(received)
            self._wait(False, deadline)

    def wait_eof(self, timeout=5):
        deadline = time.monotonic() + scaled(timeout)
        while not self._eof_seen():
            self._wait(False, deadline)
            self._fill()

    def shut_write(self, how):
        """how: "close_notify" (TLS close_notify) or "fin" (TCP SHUT_WR)."""
        if how == "close_notify":
            try:
                self.obj.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass  # close_notify queued; the peer's one is read later
            except ssl.SSLError:
                pass
            deadline = time.monotonic() + scaled(5)
            while not self._flush():
                self._wait(True, deadline)
        elif how == "fin":
            deadline = time.monotonic() + scaled(5)
            while not self._flush():
                self._wait(True, deadline)
            self.sock.shutdown(socket.SHUT_WR)
        else:
            raise ValueError(how)
        self.write_shut = True


def client_hello_bytes(server_hostname="localhost"):
    """A real ClientHello as sent on the wire (TLS records)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(inc, out, server_hostname=server_hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def read_until_closed(sock, timeout):
    """Reads a plain socket until EOF or reset (or timeout). Returns
    (bytes, how) where how is "eof", "reset" or "timeout"."""
    deadline = time.monotonic() + scaled(timeout)
    buf = bytearray()
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return bytes(buf), "reset"
        if not data:
            return bytes(buf), "eof"
        buf += data
    return bytes(buf), "timeout"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def read_stream_until(stream, pred, timeout, what="output"):
    """Reads a pipe (e.g. a client tool's stdout) until pred(bytes so far)
    is true; returns the bytes. Fails on timeout or EOF before that."""
    fd = stream.fileno()
    buf = bytearray()
    deadline = time.monotonic() + scaled(timeout)
    p = select.poll()
    p.register(fd, select.POLLIN)
    while not pred(bytes(buf)):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout("timed out waiting for %s; got %r" % (what, bytes(buf[-800:])))
        if p.poll(min(remaining, 0.5) * 1000):
            data = os.read(fd, 65536)
            if not data:
                raise AssertionError("EOF before %s; got %r" % (what, bytes(buf[-800:])))
            buf += data
    return bytes(buf)


def drain_stream(stream, timeout):
    """Reads a pipe to EOF (bounded); returns the bytes."""
    fd = stream.fileno()
    buf = bytearray()
    deadline = time.monotonic() + scaled(timeout)
    p = select.poll()
    p.register(fd, select.POLLIN)
    while time.monotonic() < deadline:
        if p.poll(100):
            data = os.read(fd, 65536)
            if not data:
                break
            buf += data
    return bytes(buf)


# What a failed handshake raises in TLSClient.handshake().
HANDSHAKE_FAILED = (ssl.SSLError, ClosedByPeer, ConnectionError)


def run_threads(target, args_list, timeout, what="client threads"):
    """Runs target(*args) in one thread each; returns results in order.
    Re-raises the first exception; fails when a thread outlives timeout."""
    results = [None] * len(args_list)
    errors = []

    def wrap(i, args):
        try:
            results[i] = target(*args)
        except BaseException as e:  # reported below
            errors.append((i, e))
    threads = [threading.Thread(target=wrap, args=(i, a), daemon=True)
               for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + scaled(timeout)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = sum(t.is_alive() for t in threads)
    if errors:
        i, e = errors[0]
        raise AssertionError("%s: %d failed; first (#%d): %r" % (what, len(errors), i, e)) from e
    if alive:
        raise AssertionError("%s: %d still running after %.0fs" % (what, alive, scaled(timeout)))
    return results


# ---------------------------------------------------------------- control

class ControlClient:
    """One connection to tern's control socket (SPEC section 3): a command
    line out, one JSON line back, the connection kept for more. Every
    operation is bounded by a timeout (scaled)."""

    def __init__(self, path, timeout=5):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(scaled(timeout))
        deadline = time.monotonic() + scaled(timeout)
        while True:
            try:
                self.sock.connect(path)
                break
            except BlockingIOError:
                # A UNIX socket's full backlog (tern busy): connect() on a
                # socket with a timeout fails at once; retry, bounded.
                if time.monotonic() >= deadline:
                    self.sock.close()
                    raise socket.timeout("cannot connect to %s within %.1fs (backlog full)"
                                         % (path, scaled(timeout)))
                time.sleep(0.01)
            except OSError:
                self.sock.close()
                raise
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self, timeout=5):
        """The next reply line without its "\n", or None when tern closed
        the connection first. Raises socket.timeout past the deadline."""
        deadline = time.monotonic() + scaled(timeout)
        while b"\n" not in self.buf:
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("no control reply within %.1fs" % scaled(timeout))
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def read_reply(self, timeout=5):
        line = self.read_line(timeout)
        if line is None:
            raise AssertionError("control socket closed before a reply")
        try:
            reply = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise AssertionError("control reply is not JSON: %r (%s)" % (line[:300], e))
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise AssertionError("control reply is not an object with ok: %r" % line[:300])
        return reply

    def cmd(self, command, timeout=5):
        """Sends one command line and returns the parsed reply."""
        data = command if isinstance(command, bytes) else command.encode()
        self.send_raw(data + b"\n")
        return self.read_reply(timeout)

    def closed_by_peer(self, timeout=5):
        """True once tern closed this connection (EOF or reset), False when
        it stays open for `timeout` (scaled)."""
        deadline = time.monotonic() + scaled(timeout)
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
            self.buf += data
        return True


def ctl(path, command, timeout=5):
    """One control command on a fresh connection: the parsed reply."""
    c = ControlClient(path, timeout)
    try:
        return c.cmd(command, timeout)
    finally:
        c.close()


def run_ctl(tc, args, timeout=10, env=None):
    """Runs `tern ctl ARGS...` to completion; returns CompletedProcess with
    text stdout/stderr. env: extra environment variables."""
    full_env = dict(os.environ)
    full_env.pop("TERN_CONTROL", None)
    full_env.update(env or {})
    try:
        r = subprocess.run([tern_bin(), "ctl"] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, errors="replace",
                           timeout=scaled(timeout), cwd=tc.tmp, env=full_env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("tern ctl %s did not exit within %.1fs (stderr so far: %r)"
                             % (" ".join(args), scaled(timeout), e.stderr))
    for marker in SANITIZER_MARKERS:
        if marker in r.stderr:
            raise AssertionError("sanitizer report from tern ctl %s:\n%s"
                                 % (" ".join(args), r.stderr))
    return r


def check_sanitizers_at_cleanup(tc):
    """Registers a cleanup (it runs after every tern of the test is
    stopped or killed) that fails the test when any tern's stderr holds a
    sanitizer report, ThreadSanitizer warnings included: a test that never
    calls stop() still catches a data race. Call it first in setUp."""
    def check():
        for t in list(getattr(tc, "_terns", [])):
            t.check_sanitizers()
    tc.addCleanup(check)
