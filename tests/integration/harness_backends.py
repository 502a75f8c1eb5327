"""Backends for tern's integration tests (part of harness.py, which
re-exports every name here): listening sockets served by threads inside the
test process (echo, banner, reply-then-close, sink, slow, flood) and an
HTTP server, plus the deterministic payloads they send.
"""

import hashlib
import os
import random
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness_wait import scaled


# --------------------------------------------------------------- backends

class Backend:
    """A listening socket served by an accept thread and a thread per
    connection. Subclasses implement handle(conn, index). Counters are
    updated under self.lock. TCP on host (127.0.0.1) and port (0: one the
    kernel picks; a given one brings a stopped backend back on its
    address), or a unix socket when unix=True (the path lies in the test's
    temp dir)."""

    def __init__(self, tc, unix=False, order_log=None, name=None, host="127.0.0.1", port=0):
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
            self.sock.bind((host, port))
            self.port = self.sock.getsockname()[1]
            self.addr = "%s:%d" % (host, self.port)
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


def slow_payload(n):
    """Deterministic bytes, so a receiver can check them."""
    return random.Random(1234).randbytes(n)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


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
