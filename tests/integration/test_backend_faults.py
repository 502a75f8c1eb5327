"""Backend faults (SPEC section 6): a backend killed mid-stream, a backend
that accepts and never reads, a backend that refuses. Each fault ends only
the connections it affects, cleanly (no hang), with the reason in the
access log and the counts in `stats` and on /metrics; the other
connections keep moving exact bytes.

- Killed: a backend process (a real subprocess, SIGKILLed) streams to three
  clients while three others echo through a second backend. The three
  streams end within seconds of the kill with a prefix of what the backend
  sent, reason=backend_error, exactly the bytes each client got in
  bytes_out; the echo connections carry on; the next connection falls over
  from the dead backend to the live one and backend_connect_failures is 1.
- Never reads: four clients each try to push 64 MiB into a backend that
  never reads. Their sends block (the push stalls after what the kernel's
  socket buffers hold), tern's VmRSS grows by less than RSS_BOUND (stated
  below), four echo connections on the same worker keep moving exact
  bytes, and --idle-timeout ends the four stalled connections and only
  those (reason=idle_timeout).
- Refuses: every client gets a prompt close_notify with nothing before it,
  reason=backend_unavailable, and backend_connect_failures in stats and on
  /metrics equals the connect attempts exactly (one per client with one
  backend, two with two: with every backend down, each client still gets
  its tries; with a live second backend the clients are served, and the
  first refusal marks the refusing backend down for --backend-retry, so it
  is the only one; with --backend-retry 0 each client counts one).
"""

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Backend, TernTestCase, binary_is_sanitized,  # noqa: E402
                     check_sanitizers_at_cleanup, closed_port, main, metrics_text,
                     process_rss, run_threads, scaled, slow_payload, wait_for)

KiB = 1024
MiB = 1024 * KiB

# --------------------------------------------------------------- backends

# The killable backend: its own process, so SIGKILL is a real crash. Every
# accepted socket has SO_LINGER 0, so the kernel resets it when the process
# dies (what a crashed server with unread data does). It streams
# STREAM_CYCLE (slow_payload(1 MiB)) over and over, 16 KiB every 5 ms, to
# every client, and prints "port N" once and "accepted I" per connection.
STREAM_CYCLE = 1 * MiB
STREAM_BACKEND = r"""
import random, socket, struct, sys, threading, time
data = random.Random(1234).randbytes(%d)
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen(128)
print("port %%d" %% srv.getsockname()[1], flush=True)
def serve(c):
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    off = 0
    while True:
        c.sendall(data[off:off + 16384])
        off = (off + 16384) %% len(data)
        time.sleep(0.005)
n = 0
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
    print("accepted %%d" %% n, flush=True)
    n += 1
""" % STREAM_CYCLE


def stream_prefix_ok(got):
    """True when got is exactly the first len(got) bytes of the stream."""
    cycle = slow_payload(STREAM_CYCLE)
    for off in range(0, len(got), STREAM_CYCLE):
        piece = got[off:off + STREAM_CYCLE]
        if piece != cycle[:len(piece)]:
            return False
    return True


class NeverReadBackend(Backend):
    """Accepts and reads nothing until self.gate is set (for the test's
    last step: then it reads to the end, so that the test sees tern close
    the connection); self.ended[index] = (bytes read, "eof" or "reset")."""

    def __init__(self, tc, **kw):
        self.gate = threading.Event()
        self.ended = {}
        super().__init__(tc, **kw)

    def handle(self, conn, index):
        while not self.gate.wait(0.1):
            if self.stopping.is_set():
                return
        n, how = 0, "eof"
        conn.settimeout(scaled(30))
        while True:
            try:
                data = conn.recv(1 << 20)
            except ConnectionResetError:
                how = "reset"
                break
            if not data:
                break
            n += len(data)
        with self.lock:
            self.ended[index] = (n, how)


# ------------------------------------------------------------------ base

METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$")
STATS_TO_METRIC = {
    "conns_active": "tern_connections_active",
    "conns_total": "tern_connections_total",
    "backend_connect_failures": "tern_backend_connect_failures_total",
    "handshake_failures": "tern_handshake_failures_total",
    "bytes_client_in": 'tern_bytes_total{direction="client_in"}',
    "bytes_client_out": 'tern_bytes_total{direction="client_out"}',
}


class FaultTestCase(TernTestCase):

    def setUp(self):
        super().setUp()
        check_sanitizers_at_cleanup(self)
        self.ctl_path = os.path.join(self.tmp, "control.sock")

    def start(self, backends, workers=1, extra=()):
        return self.start_tern_with_metrics(backends, workers, extra)

    def metrics(self):
        out = {}
        for line in metrics_text(self.mport).splitlines():
            m = METRIC_LINE.match(line)
            if m and not line.startswith("#"):
                out[m.group(1)] = float(m.group(2))
        return out

    def assert_counts(self, tern, **want):
        """stats and /metrics both say exactly `want` (stats field names).
        Waits (bounded) for the values: a close is counted by the worker
        a moment after the client saw it."""
        def check():
            s = tern.stats()
            m = self.metrics()
            got_s = {k: s[k] for k in want}
            got_m = {k: m[STATS_TO_METRIC[k]] for k in want}
            return (got_s == want and got_m == want) or None
        try:
            wait_for(check, 5, "stats and /metrics to read %r" % want)
        except AssertionError:
            s = tern.stats()
            m = self.metrics()
            self.fail("want %r; stats %r; metrics %r" % (
                want, {k: s[k] for k in want}, {k: m[STATS_TO_METRIC[k]] for k in want}))

    def echo_round(self, client, size, seed):
        data = slow_payload(size + seed)[seed:]
        got = client.exchange(data, expect=len(data), timeout=20)
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest(),
                         "echo through the healthy backend: %d bytes back of %d"
                         % (len(got), len(data)))

    def close_clean(self, client):
        client.shut_write("close_notify")
        self.assertEqual(client.recv_until_close(), b"")
        self.assertTrue(client.got_close_notify)
        client.close()


# -------------------------------------------------------------- killed

class TestBackendKilled(FaultTestCase):

    def start_stream_backend(self):
        proc = self.popen([sys.executable, "-c", STREAM_BACKEND], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        lines = []

        def reader():
            for raw in proc.stdout:
                lines.append(raw.decode().strip())
        threading.Thread(target=reader, daemon=True).start()
        first = wait_for(lambda: lines[:1], 10, "the stream backend's port")[0]
        self.assertTrue(first.startswith("port "), first)
        return proc, "127.0.0.1:%s" % first.split()[1], lines

    def test_backend_killed_mid_stream(self):
        proc, addr, lines = self.start_stream_backend()
        echo = self.echo_backend()
        # One worker: its round-robin alternates stream, echo, stream, ...
        tern = self.start([addr, echo])
        streams, echoes = [], []
        for i in range(6):
            c = self.client().handshake()
            if i % 2 == 0:
                streams.append(c)
                wait_for(lambda: sum(l.startswith("accepted") for l in lines) == len(streams),
                         5, "the stream backend to accept connection %d" % i)
            else:
                echoes.append(c)
                wait_for(lambda: echo.accepted == len(echoes), 5,
                         "the echo backend to accept connection %d" % i)
        received = [bytearray() for _ in streams]
        for c, buf in zip(streams, received):
            buf += c.exchange(b"", expect=64 * KiB, timeout=10)
        for i, c in enumerate(echoes):
            self.echo_round(c, 256 * KiB, i)
        self.assert_counts(tern, conns_active=6, conns_total=6, backend_connect_failures=0)

        t0 = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        ended = []
        for c, buf in zip(streams, received):
            buf += c.recv_until_close(timeout=10)
            ended.append(time.monotonic() - t0)
            self.assertTrue(c.got_close_notify or c.got_eof or c.reset,
                            "a stream client's connection did not end")
            self.assertTrue(stream_prefix_ok(bytes(buf)),
                            "a stream client got bytes that are not the stream's prefix")
            self.assertGreaterEqual(len(buf), 64 * KiB)
        self.assertLess(max(ended), scaled(5), "stream clients ended after %r s" % ended)
        # Access log: exactly the three streams ended, each with what its
        # client got, with reason backend_error.
        for c, buf in zip(streams, received):
            a = tern.access_for(c)
            self.assertEqual(a["reason"], "backend_error", a)
            self.assertEqual(a["bytes_out"], len(buf), a)
            self.assertEqual(a["bytes_in"], 0, a)
        self.assertEqual(len(tern.access_lines()), 3, tern.access_lines())
        self.assert_counts(tern, conns_active=3, conns_total=6, backend_connect_failures=0)

        # The echo connections never noticed.
        for i, c in enumerate(echoes):
            self.echo_round(c, 1 * MiB, 10 + i)
        # The next connection's turn is the dead backend: refused, counted,
        # and served by the echo backend instead.
        late = self.client().handshake()
        self.echo_round(late, 256 * KiB, 20)
        self.assertEqual(echo.accepted, 4)
        self.assert_counts(tern, conns_active=4, conns_total=7, backend_connect_failures=1)
        for c in echoes + [late]:
            self.close_clean(c)
        for c in echoes + [late]:
            self.assertEqual(tern.access_for(c)["reason"], "done")
        self.assert_counts(tern, conns_active=0, conns_total=7, backend_connect_failures=1)
        counters = tern.stop_ok()
        self.assertEqual(counters["conns_total"], 7)
        self.assertEqual(counters["backend_connect_failures"], 1)
        self.assertEqual(counters["handshake_failures"], 0)
        sys.stderr.write("streams ended %s s after the kill; got %s bytes\n"
                         % (["%.3f" % t for t in ended], [len(b) for b in received]))


# ------------------------------------------------------------ never reads

FLOOD = 64 * MiB
BLOCK = bytes(range(256)) * 256  # 64 KiB
STALLED = 4
# tern's memory with STALLED connections each holding a 64 MiB push that
# its backend never reads: the four --buffer-size buffers (16 KiB default;
# ciphertext-out 512 bytes more) and OpenSSL's state per connection, well
# under 1 MiB each (measured: +176 KiB for all four); RSS_BOUND allows
# 1 MiB per connection. The rest of the push waits in the kernel's socket
# buffers, not in tern.
RSS_BOUND = 1 * MiB * STALLED
IDLE = 8  # --idle-timeout, seconds


def push_bound():
    """The most a push can hand over before it blocks: the client's send
    buffer, tern's receive buffer, tern's send buffer towards the backend
    and the backend's receive buffer (their sysctl maxima), plus tern's own
    buffers."""
    def top(name):
        with open("/proc/sys/net/ipv4/" + name) as f:
            return int(f.read().split()[2])
    return 2 * top("tcp_wmem") + 2 * top("tcp_rmem") + 4 * 17 * KiB


class TestBackendNeverReads(FaultTestCase):

    def test_backend_never_reads(self):
        never = self.backend(NeverReadBackend)
        echo = self.echo_backend()
        # One worker: the stalled connections and the echo ones share its
        # ring, so a blocked connection holding up the worker would show.
        tern = self.start([never, echo], extra=["--idle-timeout", "%ds" % IDLE])
        stalled, echoes = [], []
        for i in range(2 * STALLED):
            c = self.client().handshake()
            if i % 2 == 0:
                stalled.append(c)
                wait_for(lambda: never.accepted == len(stalled), 5, "never-reading accept")
            else:
                echoes.append(c)
                wait_for(lambda: echo.accepted == len(echoes), 5, "echo accept")
        for i, c in enumerate(echoes):
            self.echo_round(c, 64 * KiB, i)
        rss_before = process_rss(tern.proc.pid)

        # While the pushes run and block, the echo connections keep moving
        # exact bytes (and so never reach the idle timeout).
        pushing = threading.Event()
        pushing.set()
        during = [0]

        def echo_loop():
            while pushing.is_set():
                self.echo_round(echoes[during[0] % STALLED], 64 * KiB, 50 + during[0])
                during[0] += 1
                time.sleep(0.1)
        echo_errors = []

        def guarded():
            try:
                echo_loop()
            except Exception as e:  # re-raised in the test's thread
                echo_errors.append(e)
        echo_thread = threading.Thread(target=guarded, daemon=True)
        echo_thread.start()
        try:
            pushed = run_threads(
                lambda c: c.push_until_stalled(BLOCK, FLOOD, stall=1.0, timeout=60),
                [(c,) for c in stalled], timeout=90, what="pushing clients")
        finally:
            pushing.clear()
            echo_thread.join(scaled(30))
        self.assertFalse(echo_thread.is_alive(), "the echo loop hangs")
        if echo_errors:
            raise echo_errors[0]
        self.assertGreater(during[0], 0)
        rss_after = process_rss(tern.proc.pid)
        growth = rss_after - rss_before
        sys.stderr.write("pushes stalled after %s MiB (bound %.1f MiB); tern VmRSS %.1f -> "
                         "%.1f MiB (+%d KiB, bound +%d KiB)\n"
                         % (["%.1f" % (p / MiB) for p in pushed], push_bound() / MiB,
                            rss_before / MiB, rss_after / MiB, growth // KiB,
                            RSS_BOUND // KiB))
        for p in pushed:
            self.assertLess(p, FLOOD, "a 64 MiB push never blocked")
            self.assertLessEqual(p, push_bound(), "tern took more than the socket buffers hold")
        if not binary_is_sanitized():
            self.assertLess(growth, RSS_BOUND, "tern's VmRSS grew by %d KiB" % (growth // KiB))

        # The echo connections on the same worker are unaffected; and they
        # keep working while the idle timeout ends the stalled ones.
        t0 = time.monotonic()
        rounds = [0]

        def stalled_ended():
            self.echo_round(echoes[rounds[0] % STALLED], 256 * KiB, 100 + rounds[0])
            rounds[0] += 1
            return len(tern.access_lines()) >= STALLED
        wait_for(stalled_ended, IDLE + 10, "the idle timeout to end the stalled connections",
                 interval=0.2)
        waited = time.monotonic() - t0
        lines = tern.access_lines()
        self.assertEqual(len(lines), STALLED, lines)
        for c in stalled:
            a = tern.access_for(c)
            self.assertEqual(a["reason"], "idle_timeout", a)
            self.assertEqual(a["bytes_out"], 0, a)
            self.assertLessEqual(a["bytes_in"], FLOOD, a)
            c.recv_until_close(timeout=5)
            self.assertTrue(c.got_close_notify or c.got_eof or c.reset)
        # tern let go of the backend sockets too: once the backend reads,
        # each of its connections ends (what tern had sent, then EOF).
        never.gate.set()
        wait_for(lambda: len(never.ended) == STALLED, 30,
                 "the backend's connections to end once it reads")
        sys.stderr.write("the backend then read %r\n" % never.ended)
        for i, c in enumerate(stalled):
            a = tern.access_for(c)
            n, how = never.ended[i]
            self.assertEqual(how, "eof", "backend connection %d" % i)
            # What tern decrypted and had not yet sent when it gave up is
            # at most one --buffer-size buffer (16 KiB).
            self.assertGreaterEqual(a["bytes_in"], n, a)
            self.assertLessEqual(a["bytes_in"] - n, 16 * KiB, (a, n))
        self.assert_counts(tern, conns_active=STALLED, conns_total=2 * STALLED,
                           backend_connect_failures=0, handshake_failures=0)
        for i, c in enumerate(echoes):
            self.echo_round(c, 1 * MiB, 200 + i)
            self.close_clean(c)
            self.assertEqual(tern.access_for(c)["reason"], "done")
        self.assert_counts(tern, conns_active=0, conns_total=2 * STALLED)
        counters = tern.stop_ok()
        self.assertEqual(counters["conns_total"], 2 * STALLED)
        sys.stderr.write("%d echo rounds during the pushes; stalled connections ended "
                         "%.1f s later (idle timeout %d s), %d echo rounds meanwhile\n"
                         % (during[0], waited, IDLE, rounds[0]))


# ---------------------------------------------------------------- refuses

class TestBackendRefuses(FaultTestCase):

    def refused_clients(self, tern, n):
        """n clients, one after the other: each is closed promptly with a
        close_notify and nothing before it; reason backend_unavailable."""
        for i in range(n):
            t0 = time.monotonic()
            c = self.client().handshake()
            got = c.recv_until_close(timeout=5)
            elapsed = time.monotonic() - t0
            self.assertEqual(got, b"")
            self.assertTrue(c.got_close_notify, "closed without close_notify")
            self.assertLess(elapsed, scaled(2.0), "client %d closed after %.2fs" % (i, elapsed))
            self.assertEqual(tern.access_for(c)["reason"], "backend_unavailable")
            c.close()

    def test_one_refusing_backend(self):
        n = 5
        tern = self.start(["127.0.0.1:%d" % closed_port()], workers=2)
        self.refused_clients(tern, n)
        self.assert_counts(tern, conns_active=0, conns_total=n, backend_connect_failures=n,
                           handshake_failures=0, bytes_client_in=0, bytes_client_out=0)
        counters = tern.stop_ok()
        self.assertEqual(counters["backend_connect_failures"], n)

    def test_two_refusing_backends(self):
        # Each client: its backend, then the next one once: two attempts.
        n = 5
        tern = self.start(["127.0.0.1:%d" % closed_port(), "127.0.0.1:%d" % closed_port()],
                          workers=2)
        self.refused_clients(tern, n)
        self.assert_counts(tern, conns_active=0, conns_total=n, backend_connect_failures=2 * n,
                           handshake_failures=0)
        counters = tern.stop_ok()
        self.assertEqual(counters["backend_connect_failures"], 2 * n)

    def test_refusing_then_live_backend(self):
        # One worker: its rotation gives the second client the refusing
        # backend first; that one failure marks it down for
        # --backend-retry (10s), so every later client goes straight to
        # the echo backend: one failure in all, every client served.
        n = 5
        echo = self.echo_backend()
        tern = self.start([echo, "127.0.0.1:%d" % closed_port()])
        for i in range(n):
            c = self.client().handshake()
            self.echo_round(c, 100 * KiB, i)
            self.close_clean(c)
            self.assertEqual(tern.access_for(c)["reason"], "done")
        self.assertEqual(echo.accepted, n)
        self.assert_counts(tern, conns_active=0, conns_total=n, backend_connect_failures=1)
        counters = tern.stop_ok()
        self.assertEqual(counters["backend_connect_failures"], 1)

    def test_refusing_then_live_backend_no_skip(self):
        # --backend-retry 0: the refusing backend keeps its turn, so each
        # client counts the one refused attempt and is served by the echo
        # backend (attempts 0,1 then 2,3 ...).
        n = 5
        echo = self.echo_backend()
        tern = self.start(["127.0.0.1:%d" % closed_port(), echo], extra=["--backend-retry", "0"])
        for i in range(n):
            c = self.client().handshake()
            self.echo_round(c, 100 * KiB, i)
            self.close_clean(c)
            self.assertEqual(tern.access_for(c)["reason"], "done")
        self.assertEqual(echo.accepted, n)
        self.assert_counts(tern, conns_active=0, conns_total=n, backend_connect_failures=n)
        counters = tern.stop_ok()
        self.assertEqual(counters["backend_connect_failures"], n)

if __name__ == "__main__":
    main()
