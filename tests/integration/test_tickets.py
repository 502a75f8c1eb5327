"""Session tickets (SPEC sections 1, 2 and 3): the automatic tickets after
a handshake (--num-tickets), tickets on demand through the control socket
(`tickets ID|all [N]`) aligned to the connection's next backend data or
flushed alone after --ticket-flush-delay, `num-tickets` and
--ticket-refresh. Resumption and ticket keys are in test_ticket_keys.py,
which uses the clients defined here.

Tickets are counted exactly on the client: Python's ssl calls
SSLContext._msg_callback for every handshake message it reads, so each
NewSessionTicket is logged, in order with the application data the test
reads (TicketConn). Node.js, when installed, is a second, independent
client for the automatic counts.
"""

import base64
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Backend, ControlClient, TernTestCase,  # noqa: E402
                     check_sanitizers_at_cleanup, client_context, main, scaled, sha256,
                     wait_for)

HANDSHAKE = ssl._TLSContentType.HANDSHAKE
NEW_SESSION_TICKET = ssl._TLSMessageType.NEWSESSION_TICKET

# After the expected tickets arrived: how long nothing more may arrive.
QUIET = 0.3


class TicketWatch:
    """A client SSLContext whose message callback logs every
    NewSessionTicket the client reads, per connection and in order.
    TicketConn.pump() logs the application data it reads in the same list,
    so whether tickets came before data is visible. All in one thread."""

    def __init__(self, **ctx_kw):
        self.ctx = client_context(**ctx_kw)
        self.log = []  # (SSLObject, "ticket" | "data", time.monotonic(), bytes)
        self.raw = []  # (SSLObject, the NewSessionTicket message)
        self.ctx._msg_callback = self._callback

    def _callback(self, conn, direction, version, content_type, msg_type, data):
        if direction == "read" and content_type == HANDSHAKE and msg_type == NEW_SESSION_TICKET:
            self.log.append((conn, "ticket", time.monotonic(), len(data)))
            self.raw.append((conn, bytes(data)))


def ticket_lifetime(msg):
    """The ticket_lifetime (seconds) a TLS 1.3 NewSessionTicket announces:
    its first four bytes (RFC 8446 4.6.1)."""
    if msg[0] == 4 and int.from_bytes(msg[1:4], "big") == len(msg) - 4:
        msg = msg[4:]  # the handshake header, when the callback includes it
    return int.from_bytes(msg[0:4], "big")


def ticket_key_name(msg):
    """The key name (hex) a TLS 1.3 NewSessionTicket message's ticket
    starts with: OpenSSL's tickets are key name (16) | IV | data | HMAC.
    RFC 8446 4.6.1: lifetime(4) age_add(4) nonce<1> ticket<2> ..."""
    if msg[0] == 4 and int.from_bytes(msg[1:4], "big") == len(msg) - 4:
        msg = msg[4:]  # the handshake header, when the callback includes it
    off = 8
    off += 1 + msg[off]
    ticket_len = int.from_bytes(msg[off:off + 2], "big")
    ticket = msg[off + 2:off + 2 + ticket_len]
    return ticket[:16].hex()


class TicketConn:
    """A TLSClient on a TicketWatch context, with bounded reads that log
    data and count tickets."""

    def __init__(self, tc, watch, port, session=None):
        self.watch = watch
        self.c = tc.client(port, ctx=watch.ctx, session=session).handshake()
        self.handshake_done = time.monotonic()
        self.data = bytearray()

    def events(self):
        return [(kind, t, n) for (obj, kind, t, n) in self.watch.log if obj is self.c.obj]

    def kinds(self):
        return [e[0] for e in self.events()]

    def tickets(self):
        return self.kinds().count("ticket")

    def ticket_key_names(self):
        return [ticket_key_name(m) for (obj, m) in self.watch.raw if obj is self.c.obj]

    def ticket_lifetimes(self):
        return [ticket_lifetime(m) for (obj, m) in self.watch.raw if obj is self.c.obj]

    def ticket_times(self):
        return [t for (kind, t, _) in self.events() if kind == "ticket"]

    def resumed(self):
        return self.c.obj.session_reused

    def session(self):
        return self.c.obj.session

    def version(self):
        return self.c.version()

    def pump_once(self, wait):
        """Waits up to `wait` seconds for bytes, then decrypts what came."""
        self.c.wait_ciphertext(wait)
        got = bytearray()
        self.c._read_available(got)  # the message callback logs tickets
        if got:
            self.watch.log.append((self.c.obj, "data", time.monotonic(), len(got)))
            self.data += got

    def pump_for(self, seconds):
        """Reads for `seconds` (a window in which the test checks that
        nothing, or nothing more, arrives). Not scaled: it is a lower
        bound."""
        end = time.monotonic() + seconds
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            self.pump_once(min(remaining, 0.05))

    def pump_until(self, cond, timeout, what):
        """Reads until cond() holds; bounded by timeout (scaled)."""
        deadline = time.monotonic() + scaled(timeout)
        while not cond():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("timed out after %.1fs waiting for %s (tickets=%d, "
                                     "data=%d bytes, eof=%s)"
                                     % (scaled(timeout), what, self.tickets(), len(self.data),
                                        self.c._eof_seen()))
            self.pump_once(min(remaining, 0.05))

    def wait_tickets(self, n, timeout=3):
        self.pump_until(lambda: self.tickets() >= n, timeout, "%d tickets" % n)

    def expect_tickets(self, tc, n, timeout=3, quiet=QUIET, msg=""):
        """Exactly n tickets: at least n within timeout, no more within
        `quiet` seconds after that."""
        self.wait_tickets(n, timeout)
        self.pump_for(quiet)
        tc.assertEqual(self.tickets(), n, "tickets received %s" % msg)

    def close(self):
        self.c.close()


class SpeakBackend(Backend):
    """A backend that says nothing until told: speak(index, data) sends on
    its index-th connection. It reads and keeps what tern forwards; on EOF
    it shuts its write side."""

    def __init__(self, tc, **kw):
        self.by_index = {}
        self.received = {}
        super().__init__(tc, **kw)

    def handle(self, conn, index):
        with self.lock:
            self.by_index[index] = conn
            self.received[index] = bytearray()
        while True:
            data = conn.recv(65536)
            if not data:
                break
            with self.lock:
                self.received[index] += data
        conn.shutdown(socket.SHUT_WR)

    def speak(self, index, data, timeout=5):
        conn = wait_for(lambda: self.by_index.get(index), timeout,
                        "backend connection #%d" % index)
        conn.sendall(data)


def key_line(key=None):
    return base64.b64encode(key or os.urandom(80)).decode() + "\n"


def write_keys(path, lines, mode=0o600):
    """Writes a key file (lines: text lines with "\\n") with `mode`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write("".join(lines))
    os.chmod(path, mode)


class TicketTestCase(TernTestCase):

    def setUp(self):
        super().setUp()
        check_sanitizers_at_cleanup(self)
        self._ctl_n = 0

    def control_path(self):
        self._ctl_n += 1
        return os.path.join(self.tmp, "ctl-%d.sock" % self._ctl_n)

    def tern_ctl(self, backends, extra=(), **kw):
        """tern with a control socket (and the given extra flags)."""
        return self.start_tern(backends, extra=["--control", self.control_path()] + list(extra),
                               **kw)

    def conn(self, watch, session=None, port=None):
        return TicketConn(self, watch, port or self.port, session=session)

    def assert_ok(self, reply, msg=""):
        self.assertIs(reply.get("ok"), True, "%s: %r" % (msg, reply))
        return reply

    def assert_error(self, reply, *needles):
        self.assertIs(reply.get("ok"), False, reply)
        self.assertIsInstance(reply.get("error"), str, reply)
        for n in needles:
            self.assertIn(n, reply["error"])
        return reply["error"]

    def assert_rotated(self, reply, keys, first_key=None):
        """A rotate-ticket-keys reply: ok, the number of keys, and (when
        the reply names it) the encrypting key's name in hex."""
        self.assert_ok(reply, "rotate-ticket-keys")
        self.assertEqual(reply.get("keys"), keys, reply)
        if "encrypting_key" in reply:
            self.assertRegex(reply["encrypting_key"], r"^[0-9a-f]{32}$")
            if first_key is not None:
                self.assertEqual(reply["encrypting_key"], first_key[:16].hex(), reply)
        return reply

    def full_then_session(self, watch, port=None, tickets=2):
        """A full handshake that waits for its tickets; returns the conn."""
        a = self.conn(watch, port=port)
        self.assertFalse(a.resumed())
        a.wait_tickets(tickets)
        return a


class TestAutomaticTickets(TicketTestCase):

    def test_session_lifetime_is_announced_and_enforced(self):
        """--session-lifetime (2h by default) is the lifetime every TLS 1.3
        ticket announces, and a session older than it does not resume."""
        for flag, seconds in ((None, 7200), ("90s", 90), ("1s", 1)):
            with self.subTest(session_lifetime=flag):
                be = self.echo_backend()
                tern = self.tern_ctl([be], [] if flag is None else ["--session-lifetime", flag])
                watch = TicketWatch()
                a = self.conn(watch)
                a.expect_tickets(self, 2)
                self.assertEqual(a.ticket_lifetimes(), [seconds, seconds])
                session = a.session()
                a.close()
                if seconds == 1:
                    # Past its lifetime (OpenSSL counts whole seconds, so
                    # 2.2 s is past for sure): a full handshake.
                    time.sleep(2.2)
                    b = self.conn(watch, session=session)
                    self.assertFalse(b.resumed(), "a session resumed past --session-lifetime")
                else:
                    b = self.conn(watch, session=session)
                    self.assertTrue(b.resumed())
                self.finish(tern, [b])

    def test_num_tickets_after_full_and_resumed_handshakes(self):
        for flag, expect in ((None, 2), ("0", 0), ("5", 5), ("16", 16)):
            with self.subTest(num_tickets=flag):
                be = self.echo_backend()
                extra = [] if flag is None else ["--num-tickets", flag]
                tern = self.tern_ctl([be], extra)
                watch = TicketWatch()
                a = self.conn(watch)
                self.assertEqual(a.version(), "TLSv1.3")
                self.assertFalse(a.resumed())
                a.expect_tickets(self, expect, msg="after a full handshake")
                entry = tern.conn_of(a.c)
                self.assertEqual(entry["num_tickets"], expect)
                self.assertEqual(entry["tickets_sent"], expect)
                self.assertEqual(entry["tickets_requested"], 0)
                self.assertEqual(entry["tickets_pending"], 0)
                conns = [a]
                if expect:
                    # After a resumption OpenSSL sends one ticket, whatever
                    # the setting.
                    b = self.conn(watch, session=a.session())
                    self.assertTrue(b.resumed(), "the offered session did not resume")
                    b.expect_tickets(self, 1, msg="after a resumed handshake")
                    self.assertEqual(tern.conn_of(b.c)["tickets_sent"], 1)
                    conns.append(b)
                stats = tern.stats()
                self.assertEqual(stats["tickets_sent"], expect + (1 if expect else 0))
                self.assertEqual(stats["tickets_requested"], 0)
                counters = self.finish(tern, conns)
                self.assertEqual(counters["handshakes_full"], 1)
                self.assertEqual(counters["handshakes_resumed"], 1 if expect else 0)

    def test_node_client_counts_the_same(self):
        """A second, independent client: Node's tls emits one 'session'
        event per ticket."""
        node = shutil.which("node")
        if not node:
            self.skipTest("node (Debian package nodejs) not installed: "
                          "the independent ticket count is skipped")
        script = r"""
const tls = require('tls');
const port = Number(process.argv[1]), want = Number(process.argv[2]);
const quietMs = Number(process.argv[3]), timeoutMs = Number(process.argv[4]);
function conn(session, expect) {
  return new Promise((resolve, reject) => {
    let n = 0, last = null, done = false, quiet = null;
    const s = tls.connect({host: '127.0.0.1', port, servername: 'localhost',
                           rejectUnauthorized: false, minVersion: 'TLSv1.3', session});
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(quiet); clearTimeout(limit);
      const reused = s.isSessionReused();
      s.end();
      resolve({tickets: n, reused, session: last});
    };
    const limit = setTimeout(finish, timeoutMs);
    s.on('session', (sess) => {
      n++; last = sess;
      if (n >= expect) { clearTimeout(quiet); quiet = setTimeout(finish, quietMs); }
    });
    s.on('error', reject);
  });
}
(async () => {
  const a = await conn(undefined, want);
  if (!a.session) throw new Error('no ticket after the full handshake');
  const b = await conn(a.session, 1);
  console.log(JSON.stringify({full: a.tickets, full_reused: a.reused,
                              resumed: b.tickets, resumed_reused: b.reused}));
})().catch((e) => { console.error(String(e)); process.exit(1); });
"""
        be = self.echo_backend()
        tern = self.tern_ctl([be], ["--num-tickets", "3"])
        r = subprocess.run([node, "-e", script, str(self.port), "3", str(int(QUIET * 1000)),
                            str(int(scaled(5) * 1000))],
                           capture_output=True, text=True, timeout=scaled(20))
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(got, {"full": 3, "full_reused": False, "resumed": 1,
                               "resumed_reused": True})
        wait_for(lambda: tern.stats()["conns_active"] == 0, 5, "conns_active == 0")
        stats = tern.stats()
        self.assertEqual(stats["handshakes_full"], 1)
        self.assertEqual(stats["handshakes_resumed"], 1)
        self.assertEqual(stats["tickets_sent"], 4)
        tern.stop_ok()


class TestTicketsOnDemand(TicketTestCase):

    def test_tickets_wait_for_backend_data_and_go_first(self):
        be = self.backend(SpeakBackend)
        # The handshake's own tickets at once (not tern's default), so
        # that only the requested ones wait for the backend's data.
        tern = self.tern_ctl([be], ["--ticket-flush-delay", "10s",
                                    "--handshake-tickets", "at-once"])
        watch = TicketWatch()
        a = self.conn(watch)
        a.expect_tickets(self, 2)
        # The backend connection exists before the request, so the data
        # sent later is what the tickets wait for.
        wait_for(lambda: be.by_index.get(0), 5, "tern's backend connection")
        cid = tern.conn_of(a.c)["id"]
        self.assertEqual(self.assert_ok(tern.ctl("tickets %d 3" % cid)), {"ok": True, "queued": 1})
        # The backend is silent and the flush delay is 10 s: nothing comes.
        a.pump_for(0.5)
        self.assertEqual(a.tickets(), 2, "tickets went out without backend data")
        entry = tern.conn_of(a.c)
        self.assertEqual((entry["tickets_sent"], entry["tickets_pending"],
                          entry["tickets_requested"]), (2, 3, 3))
        message = b"the backend speaks now\n"
        be.speak(0, message)
        a.pump_until(lambda: len(a.data) >= len(message) and a.tickets() >= 5, 3,
                     "the backend data and 3 more tickets")
        self.assertEqual(bytes(a.data), message)
        kinds = a.kinds()
        first_data = kinds.index("data")
        self.assertEqual(kinds[:first_data].count("ticket"), 5,
                         "the 3 requested tickets must come before the data: %r" % kinds)
        a.pump_for(QUIET)
        self.assertEqual(a.tickets(), 5)
        stats = tern.stats()
        self.assertEqual(stats["tickets_requested"], 3)
        self.assertEqual(stats["tickets_sent"], 5)
        entry = tern.conn_of(a.c)
        self.assertEqual(entry["tickets_sent"], 5)
        self.assertEqual(entry["tickets_pending"], 0)
        self.assertEqual(entry["tickets_requested"], 3)
        # The connection still carries data both ways.
        a.c.exchange(b"ping\n", expect=0)
        wait_for(lambda: bytes(be.received.get(0, b"")) == b"ping\n", 5, "ping at the backend")
        self.finish(tern, [a])

    def test_handshake_tickets_with_data_ride_with_the_first_response(self):
        """--handshake-tickets with-data: a full handshake's two tickets
        wait for the first backend data and come right before it; a
        resumption's one likewise; none is counted as requested, and every
        one resumes."""
        be = self.backend(SpeakBackend)
        tern = self.tern_ctl([be], ["--handshake-tickets", "with-data",
                                    "--ticket-flush-delay", "10s"])
        watch = TicketWatch()
        a = self.conn(watch)
        wait_for(lambda: be.by_index.get(0), 5, "tern's backend connection")
        a.pump_for(0.5)
        self.assertEqual(a.tickets(), 0, "handshake tickets went out without backend data")
        entry = tern.conn_of(a.c)
        self.assertEqual((entry["num_tickets"], entry["tickets_sent"],
                          entry["tickets_pending"], entry["tickets_requested"]), (2, 0, 2, 0))
        message = b"the first response\n"
        be.speak(0, message)
        a.pump_until(lambda: len(a.data) >= len(message), 3, "the first response")
        kinds = a.kinds()
        self.assertEqual(kinds[:kinds.index("data")], ["ticket", "ticket"], kinds)
        a.pump_for(QUIET)
        self.assertEqual(a.tickets(), 2)
        # Resumed with the newest: one ticket, with the data again.
        b = self.conn(watch, session=a.session())
        self.assertTrue(b.resumed())
        wait_for(lambda: be.by_index.get(1), 5, "the second backend connection")
        be.speak(1, message)
        b.pump_until(lambda: len(b.data) >= len(message), 3, "the second response")
        b.pump_for(QUIET)
        kinds = b.kinds()
        self.assertEqual(kinds[:kinds.index("data")], ["ticket"], kinds)
        self.assertEqual(b.tickets(), 1)
        c = self.conn(watch, session=b.session())
        self.assertTrue(c.resumed(), "the ticket that rode with data did not resume")
        stats = tern.stats()
        self.assertEqual((stats["tickets_sent"], stats["tickets_requested"]), (3, 0))
        self.finish(tern, [a, b, c])

    def test_handshake_tickets_with_data_flushed_alone_after_the_delay(self):
        """A client that sends nothing still gets its tickets, after
        --ticket-flush-delay; one that closes first costs nothing."""
        be = self.echo_backend()
        tern = self.tern_ctl([be], ["--handshake-tickets", "with-data",
                                    "--ticket-flush-delay", "300ms"])
        watch = TicketWatch()
        t0 = time.monotonic()
        a = self.conn(watch)
        a.wait_tickets(2, timeout=3)
        self.assertGreaterEqual(a.ticket_times()[0] - t0, 0.25,
                                "tickets flushed before --ticket-flush-delay")
        a.pump_for(QUIET)
        self.assertEqual(a.tickets(), 2)
        gone = self.conn(watch)
        gone.close()  # before its tickets: they are dropped with it
        wait_for(lambda: tern.stats()["conns_active"] == 1, 5, "the closed one gone")
        # TLS 1.2: the ticket is in the handshake, as always.
        tls12 = client_context(max_version=ssl.TLSVersion.TLSv1_2)
        old = self.client(ctx=tls12).handshake()
        self.assertEqual(old.version(), "TLSv1.2")
        session = old.obj.session
        old.close()
        again = self.client(ctx=tls12, session=session).handshake()
        self.assertTrue(again.obj.session_reused, "a TLS 1.2 session did not resume")
        again.close()
        self.finish(tern, [a])

    def test_tickets_on_a_resumed_connection(self):
        """A resumed connection gets one automatic ticket, but as many as
        asked for on demand."""
        be = self.echo_backend()
        tern = self.tern_ctl([be], ["--ticket-flush-delay", "0"])
        watch = TicketWatch()
        a = self.full_then_session(watch)
        b = self.conn(watch, session=a.session())
        self.assertTrue(b.resumed())
        b.expect_tickets(self, 1)
        self.assertEqual(tern.ctl("tickets %d 3" % tern.conn_of(b.c)["id"]),
                         {"ok": True, "queued": 1})
        b.expect_tickets(self, 4)
        entry = tern.conn_of(b.c)
        self.assertIs(entry["resumed"], True)
        self.assertEqual((entry["tickets_sent"], entry["tickets_requested"]), (4, 3))
        # The newest ticket resumes too.
        c = self.conn(watch, session=b.session())
        self.assertTrue(c.resumed())
        self.finish(tern, [a, b, c])

    def test_tickets_flushed_alone_after_the_delay(self):
        be = self.echo_backend()
        tern = self.tern_ctl([be], ["--ticket-flush-delay", "300ms"])
        watch = TicketWatch()
        a = self.conn(watch)
        a.expect_tickets(self, 2)
        cid = tern.conn_of(a.c)["id"]
        t0 = time.monotonic()
        self.assert_ok(tern.ctl("tickets %d 2" % cid))
        a.wait_tickets(4, timeout=3)
        first = a.ticket_times()[2]
        self.assertGreaterEqual(first - t0, 0.25, "tickets flushed before --ticket-flush-delay")
        self.assertLessEqual(first - t0, scaled(3))
        a.pump_for(QUIET)
        self.assertEqual(a.tickets(), 4)
        self.assertEqual(a.data, b"")
        entry = tern.conn_of(a.c)
        self.assertEqual((entry["tickets_sent"], entry["tickets_pending"]), (4, 0))
        self.finish(tern, [a])

    def test_zero_flush_delay_sends_at_once(self):
        be = self.echo_backend()
        tern = self.tern_ctl([be], ["--ticket-flush-delay", "0"])
        watch = TicketWatch()
        a = self.conn(watch)
        a.expect_tickets(self, 2)
        cid = tern.conn_of(a.c)["id"]
        self.assert_ok(tern.ctl("tickets %d 2" % cid))
        # The worker handles control requests in order, so the next one
        # sees what the tickets request left: with no delay the tickets
        # were written at once (none pending, all counted as sent). With
        # the 200ms default they would still be pending here, unless the
        # machine stalled for that long: this can only fail when wrong.
        entry = tern.conn_of(a.c)
        self.assertEqual((entry["tickets_pending"], entry["tickets_sent"]), (0, 4), entry)
        a.wait_tickets(4, timeout=2)
        a.expect_tickets(self, 4)
        # And data still flows after them.
        got = a.c.exchange(b"after the tickets", expect=17)
        self.assertEqual(got, b"after the tickets")
        self.finish(tern, [a])

    def test_tickets_during_a_busy_transfer(self):
        total = 8 << 20
        requests = 10
        be = self.echo_backend()
        tern = self.tern_ctl([be])
        watch = TicketWatch()
        a = self.conn(watch)
        a.wait_tickets(2)
        cid = tern.conn_of(a.c)["id"]
        control = ControlClient(tern.control_path())
        self.addCleanup(control.close)
        payload = random.Random(7).randbytes(total)
        sent = []

        def on_progress(received):
            # One request each time another eleventh of the data came back:
            # all 10 while both directions are busy.
            step = total // (requests + 1)
            while len(sent) < requests and len(received) >= (len(sent) + 1) * step:
                reply = control.cmd("tickets %d 1" % cid)
                sent.append(reply)

        got = a.c.exchange(payload, expect=total, timeout=60, on_progress=on_progress)
        self.assertEqual(len(sent), requests)
        for reply in sent:
            self.assertEqual(reply, {"ok": True, "queued": 1})
        self.assertEqual(len(got), total)
        self.assertEqual(sha256(got), sha256(payload), "bytes changed on the way")
        self.assertFalse(a.c.reset or a.c.ragged or a.c.got_close_notify or a.c.got_eof)
        a.expect_tickets(self, 2 + requests, timeout=3)
        stats = tern.stats()
        self.assertEqual(stats["tickets_requested"], requests)
        self.assertEqual(stats["tickets_sent"], 2 + requests)
        entry = tern.conn_of(a.c)
        self.assertEqual((entry["tickets_sent"], entry["tickets_pending"],
                          entry["tickets_requested"]), (2 + requests, 0, requests))
        self.assertEqual((entry["bytes_in"], entry["bytes_out"]), (total, total))
        # Still usable afterwards.
        self.assertEqual(a.c.exchange(b"tail", expect=4), b"tail")
        self.finish(tern, [a])

    def test_tickets_all_and_refusals(self):
        be = self.echo_backend()
        tern = self.tern_ctl([be], workers=2)
        w13 = TicketWatch()
        w12 = TicketWatch(max_version=ssl.TLSVersion.TLSv1_2)
        tls13 = [self.conn(w13) for _ in range(3)]
        for c in tls13:
            c.wait_tickets(2)
        old = self.conn(w12)
        self.assertEqual(old.version(), "TLSv1.2")

        def workers_of(conns):
            return {tern.conn_of(c.c)["worker"] for c in conns}
        # SO_REUSEPORT spreads by hash: add TLS 1.3 connections until both
        # workers hold one (bounded), so "all" really crosses workers.
        while len(workers_of(tls13)) < 2 and len(tls13) < 16:
            c = self.conn(w13)
            c.wait_tickets(2)
            tls13.append(c)
        self.assertEqual(workers_of(tls13), {0, 1}, "connections never reached both workers")
        entries = tern.conns()
        self.assertEqual(len(entries), len(tls13) + 1)
        for e in entries:
            self.assertEqual(e["id"] >> 48, e["worker"], "the worker is not in the ID's top bits")
        for c in tls13:
            c.pump_for(0.05)
            self.assertEqual(c.tickets(), 2)
        old.pump_for(0.1)
        old_base = old.tickets()  # a TLS 1.2 handshake may carry one itself

        on_worker = [tern.conn_of(c.c)["worker"] for c in tls13]
        reply = self.assert_ok(tern.ctl("tickets all 2"))
        self.assertEqual(reply, {"ok": True, "queued": len(tls13),
                                 "workers": [{"worker": w, "queued": on_worker.count(w)}
                                             for w in (0, 1)]})
        for c in tls13:
            c.wait_tickets(4)
        for c in tls13 + [old]:
            c.pump_for(0.1)
        old.pump_for(QUIET)
        for c in tls13:
            self.assertEqual(c.tickets(), 4)
        self.assertEqual(old.tickets(), old_base, "the TLS 1.2 connection got tickets")
        stats = tern.stats()
        self.assertEqual(stats["tickets_requested"], 2 * len(tls13))
        # Every ticket written counts once, the TLS 1.2 handshake's too.
        self.assertEqual(stats["tickets_sent"], 4 * len(tls13) + old_base)

        old_id = tern.conn_of(old.c)["id"]
        some_id = tern.conn_of(tls13[0].c)["id"]
        self.assert_error(tern.ctl("tickets %d 1" % old_id), "TLS 1.2")
        self.assert_error(tern.ctl("tickets %d" % old_id), "TLS 1.2")
        ids = {e["id"] for e in tern.conns()}
        unknown = max(ids) + 1000
        self.assert_error(tern.ctl("tickets %d 1" % unknown), str(unknown))
        # A worker index past --workers in the top bits.
        self.assert_error(tern.ctl("tickets %d 1" % ((7 << 48) | 1)))
        self.assertEqual(self.assert_error(tern.ctl("tickets %d 17" % some_id)),
                         "tickets: N must be 1..16")
        self.assertEqual(self.assert_error(tern.ctl("tickets %d 0" % some_id)),
                         "tickets: N must be 1..16")
        self.assertEqual(self.assert_error(tern.ctl("tickets all 17")), "tickets: N must be 1..16")
        self.assertEqual(self.assert_error(tern.ctl("tickets")), "tickets: expected ID|all [N]")
        self.assertEqual(self.assert_error(tern.ctl("tickets -1")), "invalid connection ID '-1'")
        # `tickets ID` alone is one ticket.
        self.assertEqual(tern.ctl("tickets %d" % some_id), {"ok": True, "queued": 1})
        tls13[0].expect_tickets(self, 5)
        # None of the refusals queued anything.
        stats = tern.stats()
        self.assertEqual(stats["tickets_requested"], 2 * len(tls13) + 1)
        self.assertEqual(stats["tickets_sent"], 4 * len(tls13) + old_base + 1)
        for c in tls13:
            self.assertEqual(c.c.exchange(b"x", expect=1), b"x")
        self.assertEqual(old.c.exchange(b"y", expect=1), b"y")
        self.finish(tern, tls13 + [old])

    def test_num_tickets_on_one_connection(self):
        be = self.echo_backend()
        tern = self.tern_ctl([be])
        watch = TicketWatch()
        a, b = self.conn(watch), self.conn(watch)
        a.wait_tickets(2)
        b.wait_tickets(2)
        aid, bid = tern.conn_of(a.c)["id"], tern.conn_of(b.c)["id"]
        self.assertEqual(tern.ctl("num-tickets %d 7" % aid), {"ok": True})
        self.assertEqual(tern.conn_of(a.c)["num_tickets"], 7)
        self.assertEqual(tern.conn_of(b.c)["num_tickets"], 2)
        self.assertEqual(tern.ctl("num-tickets %d 0" % bid), {"ok": True})
        self.assertEqual(tern.conn_of(b.c)["num_tickets"], 0)
        self.assertEqual(tern.conn_of(a.c)["num_tickets"], 7)
        self.assertEqual(self.assert_error(tern.ctl("num-tickets %d 17" % aid)),
                         "num-tickets: N must be 0..16")
        self.assertEqual(self.assert_error(tern.ctl("num-tickets %d" % aid)),
                         "num-tickets: expected ID N")
        self.assert_error(tern.ctl("num-tickets %d 3" % (max(aid, bid) + 1000)))
        self.assertEqual(tern.conn_of(a.c)["num_tickets"], 7)
        # Setting it sends nothing by itself.
        a.pump_for(QUIET)
        self.assertEqual(a.tickets(), 2)
        # A new connection still gets the configured default.
        c = self.conn(watch)
        c.expect_tickets(self, 2)
        self.assertEqual(tern.conn_of(c.c)["num_tickets"], 2)
        self.finish(tern, [a, b, c])


class TestTicketRefresh(TicketTestCase):

    def test_idle_connection_gets_a_fresh_ticket(self):
        be = self.echo_backend()
        tern = self.tern_ctl([be], ["--ticket-refresh", "1s"])
        w13 = TicketWatch()
        w12 = TicketWatch(max_version=ssl.TLSVersion.TLSv1_2)
        a = self.conn(w13)
        old = self.conn(w12)
        self.assertEqual(old.version(), "TLSv1.2")
        a.wait_tickets(2)
        old.pump_for(0.05)
        old_base = old.tickets()
        requested_before = tern.stats()["tickets_requested"]
        a.wait_tickets(3, timeout=2.5)
        age = a.ticket_times()[2] - a.handshake_done
        # Its newest ticket must be older than 1s; the check runs every
        # 250ms.
        self.assertGreaterEqual(age, 0.9, "refreshed a ticket younger than --ticket-refresh")
        self.assertLessEqual(age, scaled(2.5))
        self.assertGreater(tern.stats()["tickets_requested"], requested_before)
        # The TLS 1.2 connection is just as old and gets nothing.
        old.pump_for(QUIET)
        self.assertEqual(old.tickets(), old_base, "a TLS 1.2 connection got a refresh ticket")
        entry = tern.conn_of(old.c)
        self.assertEqual((entry["tickets_requested"], entry["tickets_pending"]), (0, 0))
        self.assertEqual(a.c.exchange(b"fresh", expect=5), b"fresh")
        self.assertEqual(old.c.exchange(b"old", expect=3), b"old")
        self.finish(tern, [a, old])


if __name__ == "__main__":
    main()
