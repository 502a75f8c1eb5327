"""The proxied connection's hard cases (issue 11): a busy backend, a slow
reader, small buffers, a client mid-way through post-handshake
authentication, tickets asked for in every phase. One test per case of the
issue (test_caseNN_...), each through a real client: Python's ssl (tickets
and handshake messages counted exactly through SSLContext._msg_callback, as
test_tickets.py and test_verify_client.py do) or openssl s_client. Every one
failed on 553fdc3; the docstrings say what the issue saw.

(Case 8, the per-worker counts in a `tickets all` reply, is tested
elsewhere.)
"""

import os
import random
import select
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ControlClient, FloodBackend, ReplyThenCloseBackend,  # noqa: E402
                     client_context, drain_stream, free_port, main, scaled, sha256,
                     wait_for, wait_stalled)
from test_tickets import QUIET, SpeakBackend, TicketConn, TicketWatch  # noqa: E402
import test_verify_client  # noqa: E402
from test_verify_client import MessageLog, PHAConn, VerifyClientTestCase  # noqa: E402

CLOSE_NOTIFY = ssl._TLSAlertType.CLOSE_NOTIFY

# The client certificates (alice's from the test CA), made once for the
# module as test_verify_client does.
setUpModule = test_verify_client.setUpModule
tearDownModule = test_verify_client.tearDownModule


def payload(size, seed):
    """Deterministic random bytes, so a receiver can check them."""
    return random.Random(seed).randbytes(size)


def tls_records(data):
    """Splits ciphertext into its TLS records (5-byte header + body)."""
    out, i = [], 0
    while i < len(data):
        end = i + 5 + int.from_bytes(data[i + 3:i + 5], "big")
        out.append(data[i:end])
        i = end
    return out


class SelectEchoBackend:
    """An echo backend served by one thread and a selector: the harness's
    Backend takes a thread per connection, too many for the thousands of
    idle connections of case 11."""

    def __init__(self, tc):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.sock.setblocking(False)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        tc.addCleanup(self.close)

    def _loop(self):
        while not self.stopping.is_set():
            for key, _ in self.sel.select(0.05):
                if key.fileobj is self.sock:
                    try:
                        conn, _ = self.sock.accept()
                    except BlockingIOError:
                        continue
                    conn.setblocking(True)
                    self.sel.register(conn, selectors.EVENT_READ)
                    continue
                try:
                    data = key.fileobj.recv(65536)
                    if data:
                        key.fileobj.sendall(data)
                        continue
                except OSError:
                    pass
                self.sel.unregister(key.fileobj)
                key.fileobj.close()

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()


def read_paced(conn, done, timeout, step=16384, pause=0.002):
    """A slow reader: moves at most `step` bytes of ciphertext from the
    socket into conn's BIO per turn (pausing `pause` seconds between
    turns, to pace the traffic), decrypts them into conn.data and sends
    what OpenSSL answered (a Certificate for a CertificateRequest, a
    KeyUpdate). Stops once done() holds, or at EOF; bounded by timeout
    (scaled)."""
    c = conn.c
    deadline = time.monotonic() + scaled(timeout)
    while not done():
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs reading (%d bytes so far, error=%r)"
                                 % (scaled(timeout), len(conn.data), conn.error))
        if not c._eof_seen():
            c.poll.modify(c.sock, select.POLLIN)
            c.poll.poll(50)
            try:
                data = c.sock.recv(step)
            except BlockingIOError:
                data = None
            except ConnectionResetError:
                c.reset = True
                c.inc.write_eof()
                data = None
            if data == b"":
                c.got_eof = True
                c.inc.write_eof()
            elif data:
                c.inc.write(data)
        if conn.error is None:
            try:
                c._read_available(conn.data)
            except ssl.SSLError as e:
                conn.error = e
        c._flush()
        if conn.error is not None or (c._eof_seen() and not c.inc.pending):
            return
        time.sleep(pause)


class ConnCaseTestCase(VerifyClientTestCase):

    def tern(self, backends, extra=(), ca=False, **kw):
        """tern with --control, and --client-ca the test CA when ca."""
        return self.tern_ca(backends, ca=ca, extra=extra, **kw)

    def ticket_conn(self, watch=None, session=None):
        return TicketConn(self, watch or TicketWatch(), self.port, session=session)

    def pha_conn(self, log=None, session=None):
        """A TLS 1.3 client offering post-handshake auth, holding alice's
        certificate (from the test CA)."""
        return PHAConn(self, log or MessageLog(cert=self.pki.alice), self.port, session=session)

    def cid(self, tern, conn):
        return tern.conn_of(conn.c)["id"]

    def assert_no_alert(self, conn):
        """No TLS error and no alert read, close_notify aside."""
        self.assertIsNone(conn.error, "the client got a TLS error")
        self.assertEqual([a for a in conn.alerts() if a != CLOSE_NOTIFY], [],
                         "the client read an alert")
        self.assertFalse(conn.c.reset, "the connection was reset")


# ------------------------------------------------------------------ cases

class TestPostHandshakeAuthUnderLoad(ConnCaseTestCase):

    def test_case01_verify_client_during_a_download(self):
        """Case 1: `verify-client ID` while the backend streams into a slow
        reader killed the connection (the CertificateRequest write failed
        OpenSSL's pending-write check; the client got a cut-off record,
        then an alert)."""
        data = payload(6 << 20, 1)
        be = self.backend(ReplyThenCloseBackend, data)
        tern = self.tern([be], ["--buffer-size", "4k"], ca=True)
        a = self.pha_conn()
        self.assertEqual(a.c.version(), "TLSv1.3")
        aid = self.cid(tern, a)
        # The client reads nothing until tern's buffers towards it are full.
        wait_stalled(lambda: tern.conn_of(a.c)["bytes_out"], stall=0.5, timeout=10,
                     what="tern's output to the client to back up")
        self.assertEqual(tern.ctl("verify-client %d" % aid), {"ok": True})
        # Now it reads, slowly, and answers the request on the way.
        read_paced(a, lambda: a.c.got_close_notify, timeout=15)
        self.assert_no_alert(a)
        self.assertEqual(len(a.data), len(data), "bytes received")
        self.assertTrue(a.c.got_close_notify, "no close_notify after the backend's FIN")
        self.assertEqual(sha256(bytes(a.data)), sha256(data), "the stream changed on the way")
        self.assertEqual(a.requests(), 1)
        self.verified(tern, a, "/CN=alice")
        a.c.shut_write("close_notify")
        access = tern.access_for(a.c)
        self.assertEqual(access["reason"], "done", access)
        self.assertEqual(access["bytes_out"], len(data), access)
        self.finish(tern, [a])

    def test_case02_tickets_while_the_answer_is_half_in(self):
        """Case 2: `tickets ID` while the client's answer to a
        CertificateRequest has only partly arrived (SSL_new_session_ticket
        says "not now") ended the connection without an alert after the
        reply said queued:1."""
        be = self.echo_backend()
        # No flush delay: tern hands the tickets to OpenSSL at once, while
        # the answer is still half in.
        tern = self.tern([be], ["--ticket-flush-delay", "0ms"], ca=True)
        a = self.pha_conn()
        a.pump_until(lambda: a.tickets() >= 2, 3, "the 2 automatic tickets")
        a.round_trip(b"before\n")
        aid = self.cid(tern, a)
        self.assertEqual(tern.ctl("verify-client %d" % aid), {"ok": True})
        # Read the CertificateRequest; keep OpenSSL's answer instead of
        # sending it.
        deadline = time.monotonic() + scaled(5)
        while a.requests() < 1:
            self.assertLess(time.monotonic(), deadline, "no CertificateRequest arrived")
            a.c.wait_ciphertext(0.05)
            a.c._read_available(a.data)
        answer = a.c.out.read()
        records = tls_records(answer)
        self.assertGreaterEqual(len(records), 2, "the answer (Certificate, CertificateVerify, "
                                "Finished) in %d records" % len(records))
        # The first record (the Certificate) whole, then a few bytes of the
        # next: tern's OpenSSL is in the middle of reading the answer.
        head = len(records[0]) + 9
        a.c.pending = answer[:head]
        while not a.c._flush():
            a.c._wait(True, deadline)
        tern.conn_of(a.c)  # a round trip through the worker, as time to read it
        self.assertEqual(tern.ctl("tickets %d 1" % aid), {"ok": True, "queued": 1})
        a.c.pending = answer[head:]
        while not a.c._flush():
            a.c._wait(True, deadline)
        a.round_trip(b"after the answer\n")
        a.pump_until(lambda: a.tickets_after_request() >= 3, 5,
                     "num_tickets (2) + 1 tickets after the CertificateRequest")
        a.pump_for(QUIET)
        self.assertEqual(a.tickets_after_request(), 3,
                         "tickets after the CertificateRequest: %s" % a.messages())
        self.assert_no_alert(a)
        self.verified(tern, a, "/CN=alice")
        a.round_trip(b"still alive\n")
        self.finish(tern, [a])


class TestTicketsOnDemand(ConnCaseTestCase):

    def test_case03_stale_write_pending(self):
        """Case 3: with --buffer-size 4k, tickets that did not fit the
        output buffer left a stale write_pending: later requests stayed
        pending forever and the flush delay did nothing."""
        be = self.backend(SpeakBackend)
        tern = self.tern([be], ["--buffer-size", "4k"])
        a = self.ticket_conn()
        a.wait_tickets(2)
        wait_for(lambda: be.by_index.get(0), 5, "tern's backend connection")
        aid = self.cid(tern, a)
        # The client reads nothing while the 65 tickets are asked for: 64
        # at once (they do not fit the output buffer), then one more once
        # those left (so the 64 pending at most are never exceeded).
        for n in (16, 16, 16, 16):
            self.assertEqual(tern.ctl("tickets %d %d" % (aid, n)), {"ok": True, "queued": 1})
        for n in (64, 1):
            wait_for(lambda: tern.conn_of(a.c)["tickets_pending"] == 0, 3,
                     "tickets_pending 0 after %d requested (flush delay 200ms)" % n)
            if n == 64:
                self.assertEqual(tern.ctl("tickets %d 1" % aid), {"ok": True, "queued": 1})
        a.expect_tickets(self, 2 + 65, timeout=3, msg="(2 automatic, then 4x16 + 1)")
        entry = tern.conn_of(a.c)
        self.assertEqual((entry["tickets_pending"], entry["tickets_sent"]), (0, 67), entry)
        self.assertEqual(a.data, b"", "data arrived while the backend said nothing")
        message = b"the backend speaks after the tickets\n"
        be.speak(0, message)
        a.pump_until(lambda: len(a.data) >= len(message), 3, "the backend's data")
        self.assertEqual(bytes(a.data), message)
        kinds = a.kinds()
        self.assertEqual(kinds[:kinds.index("data")].count("ticket"), 67,
                         "every ticket must come before the data: %r" % kinds)
        self.finish(tern, [a])

    def test_case04_num_tickets_does_not_inflate_tickets(self):
        """Case 4: `num-tickets ID 7` then `tickets ID 1` sent 5 tickets
        (OpenSSL topped up to num_tickets)."""
        be = self.echo_backend()
        tern = self.tern([be])
        a = self.ticket_conn()
        a.expect_tickets(self, 2)
        aid = self.cid(tern, a)
        self.assertEqual(tern.ctl("num-tickets %d 7" % aid), {"ok": True})
        self.assertEqual(tern.ctl("tickets %d 1" % aid), {"ok": True, "queued": 1})
        a.expect_tickets(self, 3, msg="after num-tickets 7 and tickets 1")
        entry = tern.conn_of(a.c)
        self.assertEqual((entry["tickets_sent"], entry["tickets_pending"], entry["num_tickets"]),
                         (3, 0, 7), entry)
        self.assertEqual(tern.stats()["tickets_sent"], 3)
        self.assertEqual(a.c.exchange(b"ping", expect=4), b"ping")
        self.finish(tern, [a])

    def test_case05_no_tickets_after_the_backend_fin(self):
        """Case 5: after the backend's FIN (close_notify sent), `tickets ID`
        answered queued:1 and the ticket stayed pending forever; such
        connections counted in `tickets all` and --ticket-refresh."""
        be = self.backend(ReplyThenCloseBackend, b"all I have to say\n")
        tern = self.tern([be], ["--ticket-refresh", "1s"])
        a = self.ticket_conn()
        a.pump_until(lambda: a.c.got_close_notify, 5, "the backend's data and close_notify")
        self.assertEqual(bytes(a.data), b"all I have to say\n")
        self.assertFalse(a.c.write_shut)
        aid = self.cid(tern, a)  # still listed: the client's side is open
        tickets = a.tickets()
        requested = tern.stats()["tickets_requested"]
        with self.subTest("--ticket-refresh skips it"):
            # The refresh looks every 250ms for a newest ticket older than
            # 1s: 2.5s (a lower bound) is more than enough for it to come.
            a.pump_for(2.5)
            self.assertEqual(a.tickets(), tickets, "a refresh ticket after close_notify")
            self.assertEqual(tern.stats()["tickets_requested"], requested,
                             "--ticket-refresh asked a closing connection for tickets")
        with self.subTest("tickets ID"):
            self.assertEqual(tern.ctl("tickets %d" % aid),
                             {"ok": False, "error": "connection %d is closing" % aid})
        with self.subTest("tickets all"):
            reply = tern.ctl("tickets all")
            # (Only ok and queued: the reply may say more per worker.)
            self.assertEqual((reply.get("ok"), reply.get("queued")), (True, 0), reply)
        a.pump_for(QUIET)
        self.assertEqual(a.tickets(), tickets)
        entry = tern.conn_of(a.c)
        self.assertEqual(entry["tickets_pending"], 0, entry)
        a.c.shut_write("close_notify")
        self.assertEqual(tern.access_for(a.c)["reason"], "done")
        self.finish(tern, [a])

    def test_case06_tls12_tickets_sent_counts_what_clients_get(self):
        """Case 6: on TLS 1.2 tickets_sent counted backwards (session-ID
        sessions counted, ticket sessions not)."""
        be = self.echo_backend()
        # One worker: the session-ID cache is per worker.
        tern = self.tern([be], workers=1)
        watch = TicketWatch(max_version=ssl.TLSVersion.TLSv1_2)
        no_ticket = TicketWatch(max_version=ssl.TLSVersion.TLSv1_2)
        no_ticket.ctx.options |= ssl.OP_NO_TICKET

        def step(what, make):
            before = tern.stats()["tickets_sent"]
            c = make()
            self.assertEqual(c.version(), "TLSv1.2")
            self.assertEqual(c.c.exchange(b"x", expect=1), b"x")
            c.pump_for(QUIET)
            with self.subTest(what):
                self.assertEqual(tern.stats()["tickets_sent"] - before, c.tickets(),
                                 "tickets_sent versus the client's NewSessionTickets (%s)"
                                 % what)
            return c

        full = step("full handshake with tickets", lambda: self.ticket_conn(watch))
        self.assertEqual(full.tickets(), 1)
        by_id = step("full handshake, session ID cache", lambda: self.ticket_conn(no_ticket))
        self.assertEqual(by_id.tickets(), 0)
        again = step("resumption by session ID",
                     lambda: self.ticket_conn(no_ticket, session=by_id.session()))
        self.assertTrue(again.resumed())
        resumed = step("resumption with a ticket",
                       lambda: self.ticket_conn(watch, session=full.session()))
        self.assertTrue(resumed.resumed())
        self.finish(tern, [full, by_id, again, resumed])

    def test_case07_flush_bound_with_full_buffers(self):
        """Case 7: with buffers above 16k and a client that reads nothing,
        requested tickets waited until the whole backend-to-client buffer
        drained, whatever --ticket-flush-delay said."""
        block = payload(65521, 7)  # a prime length: misplaced bytes show
        total = len(block) * 256   # 16 MiB: more than every buffer on the way
        be = self.backend(FloodBackend, total, block)
        tern = self.tern([be], ["--buffer-size", "64k", "--ticket-flush-delay", "100ms"])
        a = self.ticket_conn()
        aid = self.cid(tern, a)
        # The client reads nothing at all: everything on the way fills up.
        wait_stalled(lambda: be.progress.get(0, 0), stall=0.5, timeout=10,
                     what="the flood to back up")
        self.assertLess(be.progress.get(0, 0), total, "the flood did not back up")
        sent = tern.stats()["tickets_sent"]
        self.assertEqual(tern.ctl("tickets %d 1" % aid), {"ok": True, "queued": 1})
        entry = wait_for(lambda: (lambda e: e if e["tickets_pending"] == 0 else None)(
            tern.conn_of(a.c)), 3, "tickets_pending 0 while the client reads nothing")
        self.assertEqual(entry["tickets_sent"], 3, entry)
        self.assertEqual(tern.stats()["tickets_sent"], sent + 1)
        # Now the client reads everything.
        a.pump_until(lambda: len(a.data) >= total and a.c.got_close_notify, 30,
                     "the whole flood and close_notify")
        self.assertEqual(len(a.data), total)
        self.assertEqual(sha256(bytes(a.data)), sha256(block * 256), "the flood changed")
        self.assertEqual(a.tickets(), 3, "2 automatic tickets and the requested one")
        a.c.shut_write("close_notify")
        self.finish(tern, [a])


class TestListingAndKeyUpdates(ConnCaseTestCase):

    def test_case09_conns_limit(self):
        """Case 9: `conns LIMIT` returned fewer than LIMIT while more
        connections existed (`conns 2` gave 1 with three open): the reply
        took whole workers' lists while they fitted."""
        be = self.echo_backend()
        tern = self.tern([be], workers=2)
        # Worker 0 with one connection, worker 1 with two (SO_REUSEPORT
        # spreads by hash: connect until that holds, close the rest).
        want = {0: 1, 1: 2}
        keep, extra = {0: [], 1: []}, []
        while len(keep[0]) < want[0] or len(keep[1]) < want[1]:
            self.assertLess(len(extra), 60, "connections never spread over both workers")
            c = self.client().handshake()
            worker = tern.conn_of(c)["worker"]
            (keep[worker] if len(keep[worker]) < want[worker] else extra).append(c)
        for c in extra:
            c.close()
        wait_for(lambda: len(tern.conns()) == 3, 5, "three connections listed")
        ids = {e["id"] for e in tern.conns()}
        for limit, expect in (("1", 1), ("2", 2), ("3", 3), ("4", 3), ("", 3)):
            with self.subTest(command="conns %s" % limit):
                reply = tern.ctl(("conns %s" % limit).strip())
                self.assertIs(reply["ok"], True, reply)
                got = [e["id"] for e in reply["conns"]]
                self.assertEqual(len(got), expect, reply)
                self.assertEqual(len(set(got)), expect, "an entry listed twice: %r" % got)
                self.assertLessEqual(set(got), ids)
        self.finish(tern, keep[0] + keep[1])

    def test_case10_key_updates_while_reading_slowly(self):
        """Case 10: a client sending KeyUpdate (update_requested) while tern's
        output to it was backed up was killed (`tls_error`, a truncated
        stream): tern called SSL_read with an SSL_write half done."""
        data = payload(8 << 20, 10)
        be = self.backend(ReplyThenCloseBackend, data)
        tern = self.tern([be], ["--buffer-size", "4k"])
        err_path = os.path.join(self.tmp, "s_client.stderr")
        # -quiet keeps s_client's own text off stdout (only the stream is
        # there); -no_ign_eof turns its commands back on: a line "K" sends
        # a KeyUpdate asking for one back.
        with open(err_path, "wb") as err:
            p = self.popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port,
                            "-servername", "localhost", "-tls1_3", "-quiet", "-no_ign_eof"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)

        def key_updates():
            with open(err_path, "rb") as f:
                return f.read().count(b"KEYUPDATE")

        entry = wait_for(lambda: tern.conns(), 5, "the s_client connection")[0]
        # Nobody reads s_client's stdout: it stops reading the socket and
        # tern's output backs up.
        wait_stalled(lambda: tern.conn_of(entry["peer"])["bytes_out"], stall=0.5, timeout=10,
                     what="tern's output to s_client to back up")
        got = bytearray()
        for n in range(1, 7):
            if p.poll() is not None:
                break  # s_client ended early: the checks below say how
            # s_client takes a command line only while its stdout is full.
            try:
                p.stdin.write(b"K\n")
                p.stdin.flush()
            except BrokenPipeError:
                break
            wait_for(lambda: key_updates() >= n or p.poll() is not None, 5,
                     "s_client's KeyUpdate #%d" % n)
            got += os.read(p.stdout.fileno(), 65536)
        got += drain_stream(p.stdout, 20)
        self.assertEqual(len(got), len(data), "bytes s_client received")
        self.assertEqual(sha256(bytes(got)), sha256(data), "the stream changed on the way")
        self.assertEqual(p.wait(timeout=scaled(10)), 0, "s_client's exit status")
        access = tern.access_for(entry["peer"])
        self.assertEqual(access["reason"], "done", access)
        self.assertNotIn("bad length", tern.log())
        self.finish(tern, [])


class TestTicketsAllAtScale(ConnCaseTestCase):

    IDLE = 1500

    def test_case11_tickets_all_does_not_freeze_the_data_path(self):
        """Case 11: `tickets all N` generated every connection's tickets in
        one go: with 9,000 connections `tickets all 16` stalled every other
        client for 7.8s."""
        be = SelectEchoBackend(self)
        tern = self.tern([be.addr], ["--ticket-flush-delay", "0ms"], workers=1,
                         access_log=False)
        ctx = client_context(min_version=ssl.TLSVersion.TLSv1_3)
        idle = []

        def close_idle():
            for s in idle:
                s.close()
        self.addCleanup(close_idle)
        for _ in range(self.IDLE):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=scaled(10))
            idle.append(ctx.wrap_socket(s, server_hostname="localhost"))
        bystander = self.client().handshake()
        self.assertEqual(bystander.exchange(b"hello", expect=5), b"hello")
        conns = self.IDLE + 1
        automatic = 2 * conns
        wait_for(lambda: tern.stats()["tickets_sent"] == automatic, 10,
                 "the %d automatic tickets" % automatic)
        total = automatic + 16 * conns
        control = ControlClient(tern.control_path(), timeout=30)
        self.addCleanup(control.close)
        control.send_raw(b"tickets all 16\n")
        # Once the worker is at it, the bystander's echo must come back
        # between its batches, long before the last ticket.
        wait_for(lambda: tern.stats()["tickets_sent"] > automatic, 10,
                 "the first requested tickets")
        self.assertEqual(bystander.exchange(b"ping", expect=4, timeout=20), b"ping")
        at_echo = tern.stats()["tickets_sent"]
        self.assertLess(at_echo, total,
                        "the bystander's echo came back only after all %d tickets"
                        % (total - automatic))
        reply = control.read_reply(timeout=20)
        self.assertEqual((reply.get("ok"), reply.get("queued")), (True, conns), reply)
        wait_for(lambda: tern.stats()["tickets_sent"] == total, 20,
                 "tickets_sent == %d" % total)
        self.assertEqual(tern.stats()["tickets_requested"], 16 * conns)
        close_idle()
        self.finish(tern, [bystander])


class TestNumTicketsSurfaced(ConnCaseTestCase):

    def test_case12_num_tickets_surfaced(self):
        """Case 12: the configured num_tickets appeared in neither stats nor
        --check; `num-tickets` on TLS 1.2 answered ok and did nothing;
        after a resumed handshake a post-handshake auth issued at most one
        ticket whatever num-tickets said."""
        with self.subTest("--check"):
            r = self.run_tern(["--check", "--listen", "127.0.0.1:%d" % free_port(),
                               "--backend", "127.0.0.1:9", "--cert",
                               self.default_cert()["cert"], "--num-tickets", "3"])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("num_tickets=3", r.stdout.split(), r.stdout)
        be = self.echo_backend()
        tern = self.tern([be], ["--num-tickets", "4"], ca=True)
        opened = []  # closed by finish(), whichever subtest failed
        with self.subTest("stats"):
            self.assertEqual(tern.stats().get("num_tickets"), 4)
        with self.subTest("num-tickets on TLS 1.2"):
            old = self.ticket_conn(TicketWatch(max_version=ssl.TLSVersion.TLSv1_2))
            opened.append(old)
            self.assertEqual(old.version(), "TLSv1.2")
            oid = self.cid(tern, old)
            self.assertEqual(tern.ctl("num-tickets %d 3" % oid),
                             {"ok": False, "error": "connection %d is TLS 1.2: tickets on "
                              "demand need TLS 1.3" % oid})
            self.assertEqual(old.c.exchange(b"old", expect=3), b"old")
        with self.subTest("resumed, then num-tickets 3 and verify-client"):
            log = MessageLog(cert=self.pki.alice)
            first = self.pha_conn(log)
            opened.append(first)
            first.pump_until(lambda: first.tickets() >= 4, 3, "the 4 automatic tickets")
            b = self.pha_conn(log, session=first.session())
            opened.append(b)
            self.assertTrue(b.resumed(), "the offered session did not resume")
            b.pump_until(lambda: b.tickets() >= 1, 3, "the ticket after a resumption")
            bid = self.cid(tern, b)
            self.assertEqual(tern.ctl("num-tickets %d 3" % bid), {"ok": True})
            self.assertEqual(tern.ctl("verify-client %d" % bid), {"ok": True})
            b.round_trip(b"answer it\n")
            b.pump_until(lambda: b.requests() == 1 and b.tickets_after_request() >= 3, 3,
                         "3 tickets after the CertificateRequest")
            b.pump_for(QUIET)
            self.assertEqual(b.tickets_after_request(), 3, b.messages())
            self.assert_no_alert(b)
            self.verified(tern, b, "/CN=alice")
        self.finish(tern, opened)


if __name__ == "__main__":
    main()
