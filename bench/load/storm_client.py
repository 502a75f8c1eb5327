#!/usr/bin/env python3
"""Hold COUNT long-lived TLS 1.3 connections through a proxy, then close
them all and reopen them at once, each with the newest ticket it received.

Part of bench/load/run (the storm phase); Python standard library only,
one thread, non-blocking sockets and a selector, so that the reconnect
wave really is all connections at once.

1. Establish: COUNT connections, at most --concurrency handshakes at a
   time, each a full TLS 1.3 handshake and one HTTP/1.1 keep-alive
   request (GET --path, body read to its Content-Length).
2. Hold for --hold seconds: each connection sends one request every
   --interval seconds (the first at a random offset, so the load is even)
   and reads whatever arrives, tickets sent alone included.
3. Wave (when told): every connection is closed, then all are opened
   again at once, each offering the newest session it holds
   (`SSLSocket.session` after its last read: OpenSSL replaces it with
   every NewSessionTicket) if that session is younger than --lifetime by
   the client's clock, and each sends one request.

Every NewSessionTicket read is seen by the context's message callback,
which counts it per connection and records the ticket_lifetime it
announces (its first four bytes, RFC 8446 4.6.1).

Protocol with the parent, one line each on stdout, each with a JSON object:
  ESTABLISHED {...}   step 1 is over (every attempt ended)
  HELD {...}          step 2 is over (no request in flight)
then the client waits for a line on stdin and runs the wave:
  WAVE {...}          every reconnect ended
then it waits for a line (or EOF) on stdin, closes everything, prints
CLOSED and exits 0 (1 if any connection failed).
"""

import argparse
import collections
import errno
import heapq
import json
import random
import re
import resource
import selectors
import socket
import ssl
import sys
import time

HANDSHAKE = ssl._TLSContentType.HANDSHAKE
NEW_SESSION_TICKET = ssl._TLSMessageType.NEWSESSION_TICKET


def ticket_lifetime(msg):
    """The ticket_lifetime (seconds) a TLS 1.3 NewSessionTicket announces:
    its first four bytes (RFC 8446 4.6.1); the same reading as
    tests/integration/test_tickets.py."""
    if msg[0] == 4 and int.from_bytes(msg[1:4], "big") == len(msg) - 4:
        msg = msg[4:]  # the handshake header, when the callback includes it
    return int.from_bytes(msg[0:4], "big")


class Conn:
    """One client connection: its socket (a plain one while the TCP connect
    is in progress, then the SSLSocket), where it is, and what it saw."""

    def __init__(self, index):
        self.index = index
        self.sock = None
        self.state = "new"  # connect, handshake, send, recv, idle, failed
        self.out = b""
        self.inbuf = bytearray()
        self.tickets = 0  # NewSessionTickets read in the current step
        self.resumed = False
        self.offered = False
        self.answered = 0
        self.error = None
        self.t_back = None
        self.opening = False  # counted in Client.opening
        self.session = None  # to offer, until the TLS socket is made


class Client:
    def __init__(self, args):
        self.args = args
        self.addr = (args.host, args.port)
        self.request = ("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % args.path).encode()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx._msg_callback = self._msg
        self.sel = selectors.DefaultSelector()
        self.by_sock = {}  # SSLSocket -> Conn, for the message callback
        self.lifetimes = collections.Counter()  # of the current step
        self.versions = collections.Counter()
        self.conns = [Conn(i) for i in range(args.count)]
        self.opening = 0  # connections started and not yet answered or failed

    # -- the message callback ------------------------------------------------

    def _msg(self, conn, direction, version, content_type, msg_type, data):
        if direction == "read" and content_type == HANDSHAKE and msg_type == NEW_SESSION_TICKET:
            c = self.by_sock.get(conn)
            if c is not None:
                c.tickets += 1
            self.lifetimes[ticket_lifetime(bytes(data))] += 1

    # -- one connection's steps ---------------------------------------------

    def fail(self, c, why):
        if c.state == "failed":
            return
        c.error = "connection %d (%s): %s" % (c.index, c.state, why)
        c.state = "failed"
        self.opened(c)
        self.drop(c)

    def opened(self, c):
        if c.opening:
            c.opening = False
            self.opening -= 1

    def drop(self, c):
        if c.sock is not None:
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            self.by_sock.pop(c.sock, None)
            c.sock.close()
            c.sock = None

    def start_connect(self, c, session):
        """A non-blocking TCP connect; the TLS socket is made once it is up,
        because an SSLSocket over a socket still connecting has no TLS
        object yet."""
        c.state, c.error, c.inbuf, c.out = "connect", None, bytearray(), b""
        c.tickets, c.resumed, c.t_back = 0, False, None
        c.offered = session is not None
        c.session = session
        c.opening = True
        self.opening += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = s.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            s.close()
            self.fail(c, "connect: %s" % errno.errorcode.get(err, err))
            return
        c.sock = s
        self.sel.register(s, selectors.EVENT_WRITE, c)

    def connected(self, c):
        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.fail(c, "connect: %s" % errno.errorcode.get(err, err))
            return
        self.sel.unregister(c.sock)
        raw, c.sock = c.sock, None
        try:
            c.sock = self.ctx.wrap_socket(raw, server_hostname="localhost",
                                          do_handshake_on_connect=False, session=c.session)
        except (OSError, ValueError) as e:
            raw.close()
            self.fail(c, "wrap: %r" % e)
            return
        c.session = None
        self.by_sock[c.sock] = c
        c.state = "handshake"
        self.sel.register(c.sock, selectors.EVENT_READ, c)
        self.handshake(c)

    def handshake(self, c):
        try:
            c.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.sel.modify(c.sock, selectors.EVENT_READ, c)
            return
        except ssl.SSLWantWriteError:
            self.sel.modify(c.sock, selectors.EVENT_WRITE, c)
            return
        except (OSError, ssl.SSLError) as e:
            self.fail(c, "handshake: %r" % e)
            return
        c.resumed = c.sock.session_reused
        self.versions[c.sock.version()] += 1
        self.sel.modify(c.sock, selectors.EVENT_READ, c)
        self.send_request(c)

    def send_request(self, c):
        c.state, c.out = "send", self.request
        c.inbuf = bytearray()
        self.flush(c)

    def flush(self, c):
        try:
            n = c.sock.send(c.out)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            n = 0
        except (OSError, ssl.SSLError) as e:
            self.fail(c, "send: %r" % e)
            return
        c.out = c.out[n:]
        if c.out:
            self.sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        else:
            self.sel.modify(c.sock, selectors.EVENT_READ, c)
            c.state = "recv"

    def readable(self, c):
        """Reads everything there is: tickets (the callback counts them) and
        the response."""
        while c.sock is not None:
            try:
                data = c.sock.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            except (OSError, ssl.SSLError) as e:
                self.fail(c, "recv: %r" % e)
                return
            if not data:
                self.fail(c, "closed by the proxy")
                return
            if c.state != "recv":
                self.fail(c, "%d unexpected bytes" % len(data))
                return
            c.inbuf += data
        if c.state == "recv":
            self.parse(c)

    def parse(self, c):
        end = c.inbuf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(c.inbuf[:end])
        if not head.startswith(b"HTTP/1.1 200"):
            self.fail(c, "status line %r" % head.split(b"\r\n")[0])
            return
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if not m:
            self.fail(c, "no Content-Length")
            return
        want = end + 4 + int(m.group(1))
        if len(c.inbuf) < want:
            return
        if len(c.inbuf) > want:
            self.fail(c, "%d bytes after the response" % (len(c.inbuf) - want))
            return
        c.state = "idle"
        c.answered += 1
        if c.t_back is None:
            c.t_back = time.monotonic()
        self.opened(c)

    def dispatch(self, timeout):
        for key, events in self.sel.select(timeout):
            c = key.data
            if c.sock is None:
                continue  # failed while this batch was handled
            if c.state == "connect":
                self.connected(c)
            elif c.state == "handshake":
                self.handshake(c)
            else:
                if events & selectors.EVENT_WRITE and c.out:
                    self.flush(c)
                if events & selectors.EVENT_READ and c.sock is not None:
                    self.readable(c)

    # -- the steps ----------------------------------------------------------

    def open_all(self, sessions, concurrency, bound):
        """Connects every connection (at most `concurrency` unfinished at a
        time), each offering sessions[i] if given, until each has had its
        first response or failed; at most `bound` seconds."""
        todo = list(range(len(self.conns)))
        todo.reverse()
        deadline = time.monotonic() + bound
        while True:
            while todo and self.opening < concurrency:
                c = self.conns[todo.pop()]
                self.start_connect(c, sessions[c.index] if sessions else None)
            if not todo and self.opening == 0:
                return
            now = time.monotonic()
            if now > deadline:
                for c in self.conns:
                    if c.state in ("connect", "handshake", "send", "recv", "new"):
                        self.fail(c, "not answered within %.0f s" % bound)
                return
            self.dispatch(min(0.2, deadline - now))

    def hold(self, seconds, interval):
        """Every live connection sends a request every `interval` seconds
        for `seconds`; a connection whose previous request is still in
        flight when its turn comes skips that turn (counted as late). Then
        waits for the requests in flight."""
        live = [c for c in self.conns if c.state == "idle"]
        start = time.monotonic()
        end = start + seconds
        timers = [(start + random.uniform(0, interval), c.index) for c in live]
        heapq.heapify(timers)
        late = 0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            while timers and timers[0][0] <= now:
                t, i = heapq.heappop(timers)
                c = self.conns[i]
                if c.state == "idle":
                    self.send_request(c)
                elif c.state != "failed":
                    late += 1
                if c.state != "failed":
                    heapq.heappush(timers, (t + interval, i))
            wait = min(end, timers[0][0] if timers else end) - time.monotonic()
            self.dispatch(max(0.0, wait))
        drain = time.monotonic() + 30
        while any(c.state in ("send", "recv") for c in self.conns):
            if time.monotonic() > drain:
                for c in self.conns:
                    if c.state in ("send", "recv"):
                        self.fail(c, "a request unanswered 30 s after the hold")
                break
            self.dispatch(0.1)
        return late, time.monotonic() - start

    def summary(self, conns):
        failed = [c for c in conns if c.state == "failed"]
        tickets = [c.tickets for c in conns]
        return {"ok": sum(1 for c in conns if c.state == "idle"), "failed": len(failed),
                "first_error": failed[0].error if failed else None,
                "requests_answered": sum(c.answered for c in conns),
                "tickets": sum(tickets),
                "tickets_per_conn_min": min(tickets) if tickets else 0,
                "tickets_per_conn_max": max(tickets) if tickets else 0,
                "lifetimes": {str(k): v for k, v in sorted(self.lifetimes.items())},
                "versions": dict(self.versions)}

    def reset_counts(self):
        self.lifetimes.clear()
        self.versions.clear()
        for c in self.conns:
            c.tickets, c.answered = 0, 0


def report(tag, obj):
    print("%s %s" % (tag, json.dumps(obj, sort_keys=True)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=100,
                    help="unfinished connections at a time while establishing")
    ap.add_argument("--path", default="/small")
    ap.add_argument("--hold", type=float, required=True, help="seconds to hold")
    ap.add_argument("--interval", type=float, default=3.0,
                    help="seconds between a connection's requests while held")
    ap.add_argument("--lifetime", type=float, required=True,
                    help="a session older than this (client clock) is not offered")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.count + 100 > hard:
        sys.exit("storm_client: %d connections need more than the %d descriptors allowed"
                 % (args.count, hard))
    cl = Client(args)
    bound = 60 + args.count / 20

    t0 = time.monotonic()
    cl.open_all(None, args.concurrency, bound)
    est = cl.summary(cl.conns)
    est["seconds"] = time.monotonic() - t0
    est["resumed"] = sum(1 for c in cl.conns if c.resumed)
    report("ESTABLISHED", est)
    if est["failed"]:
        sys.exit(1)

    cl.reset_counts()
    late, held = cl.hold(args.hold, args.interval)
    h = cl.summary(cl.conns)
    h.update(seconds=held, late=late)
    report("HELD", h)
    if h["failed"]:
        sys.exit(1)

    sys.stdin.readline()
    # The wave: every connection's newest session, then all closed, then
    # all opened again at once.
    cl.reset_counts()
    t0 = time.monotonic()
    now = time.time()
    sessions, stale = [], 0
    for c in cl.conns:
        s = c.sock.session
        if s is not None and now - s.time > args.lifetime:
            s, stale = None, stale + 1
        sessions.append(s)
        cl.drop(c)
        c.state = "new"
    closed = time.monotonic()
    cl.open_all(sessions, len(cl.conns), bound)
    w = cl.summary(cl.conns)
    backs = [c.t_back for c in cl.conns if c.t_back is not None]
    w.update(offered=sum(1 for c in cl.conns if c.offered),
             resumed=sum(1 for c in cl.conns if c.resumed and c.state == "idle"),
             not_offered_stale=stale,
             not_offered_none=sum(1 for s in sessions if s is None) - stale,
             seconds_closing=closed - t0,
             seconds_all_back=(max(backs) - closed) if backs and not w["failed"] else None)
    report("WAVE", w)

    sys.stdin.readline()
    for c in cl.conns:
        cl.drop(c)
    print("CLOSED", flush=True)
    sys.exit(1 if w["failed"] else 0)


if __name__ == "__main__":
    main()
