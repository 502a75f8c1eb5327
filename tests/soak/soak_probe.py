"""What the soak driver reads of the running tern from outside: /proc
(descriptors, CPU, RSS), the control socket, the metrics endpoint, and
sanitizer reports in its stderr.
"""

import json
import os
import socket
import sys
import time

from soak_common import HERE, SCALE

# /proc and the sanitizer markers as the integration harness reads them.
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness_proc import (SANITIZER_MARKERS, cpu_seconds as proc_cpu_s,  # noqa: E402,F401
                          open_fds as proc_fds, process_rss)


def proc_rss_kib(pid):
    return process_rss(pid) // 1024


class Control:
    """One connection to the control socket, kept open (tern closes a client
    silent for 30 s: then it reconnects once)."""

    def __init__(self, path):
        self.path = path
        self._connect()

    def _connect(self):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(15 * SCALE)
        self.s.connect(self.path)
        self.buf = b""

    def _cmd(self, line):
        self.s.sendall(line.encode() + b"\n")
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise ConnectionResetError("control socket closed")
            self.buf += d
        one, self.buf = self.buf.split(b"\n", 1)
        return json.loads(one)

    def cmd(self, line):
        try:
            return self._cmd(line)
        except (BrokenPipeError, ConnectionResetError):
            self.s.close()
            self._connect()
            return self._cmd(line)


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_scrape(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    out = {}
    for line in data.decode().split("\r\n\r\n", 1)[-1].splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out
