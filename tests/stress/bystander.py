"""The bystander of tern's stress scenarios: a separate process that does
one small TLS request every 50 ms through tern while a scenario attacks or
overloads it, and reports how long each took. A scenario measures a
baseline first (the same bystander on the quiet proxy), then runs its fault
with the bystander going, and reports how much worse the slowest request
got: no scenario may stall a bystander for more than 100 ms beyond its own
baseline (issue 16), except where docs/overload.md says why.

A process of its own, not a thread, so that the scenario's Python work
(thousands of sockets, the GIL) cannot delay the bystander and be blamed on
tern.

    with Bystander(port) as b:      # starts the process
        ... the fault ...
    b.latencies_ms                  # one float per request, in order
    b.failures                      # requests that did not complete

A routed bystander (source_ports): each request connects from the next of
these local ports, in turn, so a scenario can choose which worker serves it
(the kernel spreads a SO_REUSEPORT group by a hash of the addresses and
ports, so a given source port always lands on the same worker). The socket
closes with a reset (SO_LINGER 0) so that the port is free again at once
instead of waiting out TIME_WAIT.

kept=True: one TLS connection, made once, carries every request (an echo
round trip each); a failed one is made again. For a fault that leaves tern
no room for a new connection (scenario_fd_limit: no descriptors): what is
measured is how tern serves the connections it has.

Standalone: python3 bystander.py PORT SECONDS prints one line per request.
"""

import json
import os
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import time

INTERVAL = 0.05        # one request every 50 ms (issue 16)
REQUEST = b"bystander ping\n"
REQUEST_TIMEOUT = 5.0  # a request slower than this counts as a failure


def routed_socket(host, source_port):
    """A TCP socket bound to (host, source_port), reusable at once after it
    closes (see the module's docstring)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.bind((host, source_port))
    return raw


def connect(port, host, source_port=None):
    """A connected TCP socket: from an ephemeral port, or from source_port."""
    if source_port is None:
        return socket.create_connection((host, port), timeout=REQUEST_TIMEOUT)
    raw = routed_socket(host, source_port)
    try:
        raw.settimeout(REQUEST_TIMEOUT)
        raw.connect((host, port))
    except OSError:
        raw.close()
        raise
    return raw


def one_request(port, host, ctx, source_port=None):
    """Connect, handshake, send REQUEST, read it back (an echo backend),
    close. Returns the milliseconds it took; raises on failure."""
    start = time.monotonic()
    with connect(port, host, source_port) as raw:
        raw.settimeout(REQUEST_TIMEOUT)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(REQUEST)
            got = b""
            while len(got) < len(REQUEST):
                data = s.recv(4096)
                if not data:
                    raise ConnectionError("closed after %d bytes" % len(got))
                got += data
            if got != REQUEST:
                raise ValueError("echo mismatch: %r" % got[:64])
    return (time.monotonic() - start) * 1000.0


class KeptConnection:
    """One TLS connection for every request (kept=True); made again after
    a failure."""

    def __init__(self, port, host, ctx):
        self.port, self.host, self.ctx = port, host, ctx
        self.s = None

    def request(self):
        """One echo round trip of REQUEST; the milliseconds it took."""
        start = time.monotonic()
        try:
            if self.s is None:
                raw = socket.create_connection((self.host, self.port), timeout=REQUEST_TIMEOUT)
                raw.settimeout(REQUEST_TIMEOUT)
                self.s = self.ctx.wrap_socket(raw, server_hostname="localhost")
            self.s.sendall(REQUEST)
            got = b""
            while len(got) < len(REQUEST):
                data = self.s.recv(4096)
                if not data:
                    raise ConnectionError("closed after %d bytes" % len(got))
                got += data
            if got != REQUEST:
                raise ValueError("echo mismatch: %r" % got[:64])
        except Exception:
            if self.s is not None:
                self.s.close()
                self.s = None
            raise
        return (time.monotonic() - start) * 1000.0


def _child(port, host, seconds, source_ports=None, kept=False):
    """The bystander process: one JSON line per request on stdout until
    `seconds` pass or stdin closes (the parent stopped it)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = KeptConnection(port, host, ctx) if kept else None
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    n = 0
    while time.monotonic() < deadline:
        source_port = source_ports[n % len(source_ports)] if source_ports else None
        n += 1
        try:
            ms = conn.request() if conn else one_request(port, host, ctx, source_port)
            rec = {"ms": ms}
        except Exception as e:  # reported, not fatal: the figure is the point
            rec = {"error": "%s: %s" % (type(e).__name__, e)}
        rec["t"] = time.monotonic()
        sys.stdout.write(json.dumps(rec) + "\n")
        sys.stdout.flush()
        next_at += INTERVAL
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            next_at = time.monotonic()


class Bystander:
    """Runs the bystander process for at most max_seconds (a bound, so a
    scenario that forgets to stop it cannot leave it behind)."""

    def __init__(self, port, host="127.0.0.1", max_seconds=600, source_ports=None, kept=False):
        self.port, self.host, self.max_seconds, self.kept = port, host, max_seconds, kept
        self.source_ports = list(source_ports or [])
        self.proc = None
        self.latencies_ms = []
        self.failures = []

    def start(self):
        routed = ["--source-ports", ",".join(map(str, self.source_ports))] \
            if self.source_ports else []
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), str(self.port), str(self.max_seconds),
             self.host, "--json"] + routed + (["--kept"] if self.kept else []),
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        return self

    def stop(self):
        if self.proc is None:
            return self
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=REQUEST_TIMEOUT + 5)
        self.proc = None
        for line in out.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut by terminate()
            if "ms" in rec:
                self.latencies_ms.append(rec["ms"])
            else:
                self.failures.append(rec.get("error", "?"))
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def summary(self):
        """{'requests', 'failures', 'median_ms', 'max_ms'} of what it saw."""
        lat = self.latencies_ms
        return {
            "requests": len(lat),
            "failures": len(self.failures),
            "median_ms": statistics.median(lat) if lat else None,
            "max_ms": max(lat) if lat else None,
        }


def measure_baseline(port, seconds=2.0, host="127.0.0.1", source_ports=None, kept=False):
    """The bystander on the quiet proxy for `seconds`: its summary."""
    b = Bystander(port, host, source_ports=source_ports, kept=kept).start()
    time.sleep(seconds)  # pacing: the bystander's own run length
    return b.stop().summary()


def stall_beyond_baseline_ms(baseline, during):
    """How much longer the slowest request during the fault took than the
    slowest of the baseline (the figure issue 16 bounds at 100 ms)."""
    if during["max_ms"] is None or baseline["max_ms"] is None:
        return None
    return during["max_ms"] - baseline["max_ms"]


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: bystander.py PORT SECONDS [HOST] [--json] [--source-ports P,P...] [--kept]")
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    host = sys.argv[3] if len(sys.argv) > 3 and not sys.argv[3].startswith("--") else "127.0.0.1"
    ports = None
    if "--source-ports" in sys.argv:
        ports = [int(p) for p in sys.argv[sys.argv.index("--source-ports") + 1].split(",")]
    if "--json" in sys.argv:
        _child(port, host, seconds, ports, "--kept" in sys.argv)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            print("%.2f ms" % one_request(port, host, ctx))
            time.sleep(INTERVAL)
