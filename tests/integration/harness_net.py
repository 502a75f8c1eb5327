"""Ports, plain sockets and pipes for tern's integration tests (part of
harness.py, which re-exports every name here): a free or a refusing port,
bounded reads of a plain socket or of a client tool's output, and a
scrape of tern's /metrics.
"""

import http.client
import os
import select
import socket
import struct
import time

from harness_wait import WaitTimeout, scaled


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

def metrics_text(port, timeout=5):
    """GET /metrics from tern's --metrics listener on 127.0.0.1:port on a
    new connection: the body as text; fails unless the status is 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=scaled(timeout))
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read().decode("ascii")
    finally:
        conn.close()
    if resp.status != 200:
        raise AssertionError("GET /metrics: status %d: %r" % (resp.status, body[:200]))
    return body


def reset_socket(sock):
    """Closes with an RST instead of a FIN (SO_LINGER with zero timeout)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def accept_queue(port):
    """Connections waiting in the accept queue of the listener on
    127.0.0.1:port (rx_queue of a LISTEN socket in /proc/net/tcp)."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[1] == want and parts[3] == "0A":
                return int(parts[4].split(":")[1], 16)
    raise AssertionError("no listener on 127.0.0.1:%d in /proc/net/tcp" % port)


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
