#!/usr/bin/env python3
"""Count what a proxy sends a client between its handshake and its first
response: TCP segments the client received, and how often the client woke
up with data, over COUNT connections made one after another.

Part of bench/load/run (the first_response phase, issue 14 part 2);
Python standard library only. Each connection is a full TLS 1.3 handshake
through a proxy, then one of:

  request  the client sends `GET PATH HTTP/1.1` (keep-alive) in a send of
           its own right after its Finished, as clients on an OpenSSL
           socket do, and reads the response to its Content-Length;
  banner   the client sends nothing: the backend speaks first (a banner
           line, which the client reads to its newline);
  silent   the client sends a request the backend never answers: only
           the tickets come (the time they took is reported).

In every mode the connection is done when what was awaited and
--tickets NewSessionTickets have arrived; then the client closes its
socket (no close_notify) and reads its counters.

The client drives TLS through memory BIOs over a blocking socket, so every
recv() it makes is visible: a wake-up is a recv() that returned data. The
segments are the kernel's own counts for the client's socket (TCP_INFO
tcpi_segs_in, every segment; tcpi_data_segs_in, those carrying data),
taken when the handshake completed and when the connection was done, so
no packet capture is needed. Tickets are counted by the context's message
callback, in order with the application data, which shows whether they
came in the same wake-up as the first data.

Prints one line, `FIRST_RESPONSE {json}`: the means per connection and the
distribution of (data segments, wake-ups) after the handshake. Exit 1 if
any connection failed (the first error is in the JSON).
"""

import argparse
import collections
import json
import re
import socket
import ssl
import struct
import sys
import time

HANDSHAKE = ssl._TLSContentType.HANDSHAKE
NEW_SESSION_TICKET = ssl._TLSMessageType.NEWSESSION_TICKET

# struct tcp_info (linux/tcp.h): tcpi_segs_in at byte 140, tcpi_data_segs_in
# at byte 152 (Linux 4.6 and later).
TCP_INFO_LEN = 160
SEGS_IN_AT = 140
DATA_SEGS_IN_AT = 152


def segments_in(sock):
    """(segments, data segments) the socket has received so far."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_LEN)
    if len(raw) < TCP_INFO_LEN:
        raise RuntimeError("TCP_INFO has no tcpi_data_segs_in (kernel too old)")
    return (struct.unpack_from("I", raw, SEGS_IN_AT)[0],
            struct.unpack_from("I", raw, DATA_SEGS_IN_AT)[0])


class Conn:
    """One connection's TLS over memory BIOs and its counts."""

    def __init__(self, ctx, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        self.wakeups = 0
        self.tickets = 0
        self.data = bytearray()
        # Per wake-up after the handshake: (tickets, data bytes) it brought.
        self.wakes = []

    def flush(self):
        pending = self.out.read()
        if pending:
            self.sock.sendall(pending)

    def recv(self):
        b = self.sock.recv(65536)
        if not b:
            raise RuntimeError("the proxy closed the connection (%d bytes, %d tickets)"
                               % (len(self.data), self.tickets))
        self.wakeups += 1
        self.inc.write(b)

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.recv()
        self.flush()  # the client's Finished, in a send of its own

    def read_until(self, done):
        """Reads (one wake-up at a time) until done(self) holds."""
        while True:
            tickets, nbytes = self.tickets, len(self.data)
            while True:
                try:
                    chunk = self.obj.read(65536)
                except ssl.SSLWantReadError:
                    break
                if not chunk:
                    raise RuntimeError("close_notify before the awaited data")
                self.data += chunk
            self.flush()  # nothing in TLS 1.3 after the handshake, but cheap
            if (self.tickets, len(self.data)) != (tickets, nbytes):
                self.wakes.append((self.tickets - tickets, len(self.data) - nbytes))
            if done(self):
                return
            self.recv()

    def close(self):
        self.sock.close()


def response_complete(data):
    head, sep, body = bytes(data).partition(b"\r\n\r\n")
    if not sep:
        return False
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("status line %r" % head.split(b"\r\n")[0])
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if not m:
        raise RuntimeError("no Content-Length")
    return len(body) >= int(m.group(1))


def one(args, ctx, request):
    c = Conn(ctx, args.host, args.port, args.timeout)
    ctx_conns[c.obj] = c
    try:
        c.handshake()
        t_hs = time.monotonic()
        hs_wakeups = c.wakeups
        segs_hs, data_segs_hs = segments_in(c.sock)
        c.wakes = []
        first_data_t = [None]
        if args.mode in ("request", "silent"):
            c.obj.write(request)
            c.flush()  # the request, in a send of its own

        def done(c):
            if c.data and first_data_t[0] is None:
                first_data_t[0] = time.monotonic()
            if c.tickets < args.tickets:
                return False
            if args.mode == "request":
                return response_complete(c.data)
            if args.mode == "banner":
                return b"\n" in c.data
            return True

        c.read_until(done)
        t_done = time.monotonic()
        segs, data_segs = segments_in(c.sock)
        if c.tickets != args.tickets:
            raise RuntimeError("%d tickets, expected %d" % (c.tickets, args.tickets))
        # The wake-up that brought the first data: did the tickets come in it?
        first = next((w for w in c.wakes if w[1] > 0), None)
        return {
            "segs": segs, "data_segs": data_segs,
            "segs_after": segs - segs_hs, "data_segs_after": data_segs - data_segs_hs,
            "wakeups": c.wakeups, "wakeups_after": c.wakeups - hs_wakeups,
            "tickets_with_first_data": bool(first and first[0] == args.tickets),
            "ms_to_tickets": (t_done - t_hs) * 1e3 if args.mode == "silent" else None,
            "ms_to_first_data": ((first_data_t[0] - t_hs) * 1e3
                                 if first_data_t[0] is not None else None),
        }
    finally:
        ctx_conns.pop(c.obj, None)
        c.close()


ctx_conns = {}


def count_ticket(conn, direction, version, content_type, msg_type, data):
    if direction == "read" and content_type == HANDSHAKE and msg_type == NEW_SESSION_TICKET:
        c = ctx_conns.get(conn)
        if c is not None:
            c.tickets += 1


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("request", "banner", "silent"), default="request")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--tickets", type=int, default=2,
                    help="NewSessionTickets a full handshake brings [2]")
    ap.add_argument("--path", default="/small")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx._msg_callback = count_ticket
    request = ("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % args.path).encode()
    rows, errors = [], []
    t0 = time.monotonic()
    for _ in range(args.count):
        try:
            rows.append(one(args, ctx, request))
        except (OSError, ssl.SSLError, RuntimeError) as e:
            errors.append(repr(e))
    elapsed = time.monotonic() - t0
    dist = collections.Counter("%d segs/%d wakes" % (r["data_segs_after"], r["wakeups_after"])
                               for r in rows)
    out = {"mode": args.mode, "connections": len(rows), "failed": len(errors),
           "first_error": errors[0] if errors else None, "seconds": elapsed}
    for k in ("segs", "data_segs", "segs_after", "data_segs_after", "wakeups",
              "wakeups_after", "ms_to_tickets", "ms_to_first_data"):
        out[k] = mean(r[k] for r in rows)
    out["tickets_with_first_data_pct"] = (100.0 * sum(r["tickets_with_first_data"] for r in rows)
                                          / len(rows) if rows else None)
    out["after_handshake"] = dict(dist.most_common())
    print("FIRST_RESPONSE " + json.dumps(out), flush=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
