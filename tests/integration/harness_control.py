"""tern's control socket from the integration tests (part of harness.py,
which re-exports every name here): a kept connection (ControlClient), one
command on a fresh connection (ctl) and the `tern ctl` command (run_ctl).
"""

import json
import os
import socket
import subprocess
import time

from harness_proc import SANITIZER_MARKERS, sandbox_launcher, tern_bin
from harness_wait import scaled


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
        r = subprocess.run(sandbox_launcher() + [tern_bin(), "ctl"] + list(args),
                           stdin=subprocess.DEVNULL,
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
