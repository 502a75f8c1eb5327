"""--handshake-tickets with-data (issue 14, part 2): a full handshake's
tickets are not written in the handshake but handed to OpenSSL right
before the first backend data, so they leave in the same send as the
first response, or alone after --ticket-flush-delay when the backend
says nothing.

What must hold for that to be usable: every common client still stores
the tickets and resumes with them (curl with two URLs, openssl s_client
-sess_out then -sess_in, Python's ssl, Node's tls, h2load reconnecting),
with exact counts: two tickets after the full handshake, one after each
resumption, none counted as requested; the tickets arrive when the backend
never answers (after the flush delay, alone) and when the client shuts its
side right after its request.

The HTTP backend answers HTTP/1.0 and closes, so every client opens a new
connection for its next request and offers the ticket it got with the
first response. --ticket-flush-delay is 10 s where the tickets must ride
with the response: a ticket that waited for the delay would make the test
time out, not pass.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HTTPBackend, client_context, main, scaled, wait_for  # noqa: E402
from test_tickets import QUIET, SpeakBackend, TicketTestCase, TicketWatch  # noqa: E402

WITH_DATA = ["--handshake-tickets", "with-data"]
BODY = b"the first response\n"
REQUEST = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"


class TestHandshakeTicketsWithData(TicketTestCase):

    def http_tern(self, flush_delay="10s", extra=()):
        be = self.backend(HTTPBackend, BODY)
        return be, self.tern_ctl([be.addr], WITH_DATA + ["--ticket-flush-delay", flush_delay]
                                 + list(extra), workers=1)

    def assert_resumed_chain(self, tern, connections):
        """`connections` connections, the first full and every later one
        resumed: the access log, the handshake counts and the tickets sent
        (2 after the full handshake, 1 after each resumption)."""
        # In the order of the connections (one worker: ids in accept
        # order), not of their closes.
        lines = sorted(tern.wait_access(connections), key=lambda a: a["id"])
        self.assertEqual([a.get("resumed") for a in lines], [0] + [1] * (connections - 1),
                         "access log: %r" % lines)
        wait_for(lambda: tern.stats()["conns_active"] == 0, 5, "conns_active == 0")
        stats = tern.stats()
        self.assertEqual((stats["handshakes_full"], stats["handshakes_resumed"]),
                         (1, connections - 1))
        self.assertEqual((stats["tickets_sent"], stats["tickets_requested"]),
                         (2 + (connections - 1), 0))
        tern.stop_ok()

    def test_curl_resumes_with_the_second_url(self):
        be, tern = self.http_tern()
        url = "https://localhost:%d/" % self.port
        r = subprocess.run(["curl", "-sS", "-k", "--tlsv1.3", "--max-time", str(scaled(10)),
                            "--resolve", "localhost:%d:127.0.0.1" % self.port, url, url],
                           capture_output=True, timeout=scaled(20))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, BODY * 2)
        self.assert_resumed_chain(tern, 2)

    def test_openssl_s_client_sess_out_then_sess_in(self):
        be, tern = self.http_tern()
        sess = os.path.join(self.tmp, "session.pem")
        outs = []
        for flags in (["-sess_out", sess], ["-sess_in", sess]):
            # -ign_eof: it reads until tern's close_notify after the response
            r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port,
                                "-servername", "localhost", "-tls1_3", "-ign_eof"] + flags,
                               input=REQUEST, capture_output=True, timeout=scaled(20))
            out = (r.stdout + r.stderr).decode(errors="replace")
            self.assertEqual(r.returncode, 0, out)
            self.assertIn(BODY.decode(), out)
            outs.append(out)
        self.assertRegex(outs[0], r"New, TLSv1\.3")
        self.assertRegex(outs[1], r"Reused, TLSv1\.3")
        self.assert_resumed_chain(tern, 2)

    def test_python_ssl_session(self):
        be, tern = self.http_tern()
        watch = TicketWatch()
        a = self.conn(watch)
        self.assertEqual(a.c.exchange(REQUEST)[-len(BODY):], BODY)
        self.assertEqual(a.tickets(), 2)
        b = self.conn(watch, session=a.session())
        self.assertTrue(b.resumed())
        self.assertEqual(b.c.exchange(REQUEST)[-len(BODY):], BODY)
        self.assertEqual(b.tickets(), 1)
        c = self.conn(watch, session=b.session())
        self.assertTrue(c.resumed(), "the ticket of a resumed connection did not resume")
        self.assertEqual(c.c.exchange(REQUEST)[-len(BODY):], BODY)
        for x in (a, b, c):
            x.close()
        self.assert_resumed_chain(tern, 3)

    def test_node_tls_session_event_then_session_option(self):
        node = shutil.which("node")
        if not node:
            self.skipTest("node (Debian package nodejs) not installed")
        script = r"""
const tls = require('tls');
const port = Number(process.argv[1]), timeoutMs = Number(process.argv[2]);
const request = 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n';
function get(session) {
  return new Promise((resolve, reject) => {
    let tickets = 0, last = null, body = '';
    const s = tls.connect({host: '127.0.0.1', port, servername: 'localhost',
                           rejectUnauthorized: false, minVersion: 'TLSv1.3', session});
    const limit = setTimeout(() => reject(new Error('no end within the bound')), timeoutMs);
    s.on('secureConnect', () => s.write(request));
    s.on('session', (sess) => { tickets++; last = sess; });
    s.on('data', (d) => { body += d; });
    s.on('end', () => {
      clearTimeout(limit);
      resolve({tickets, reused: s.isSessionReused(), session: last,
               body: body.slice(body.indexOf('\r\n\r\n') + 4)});
    });
    s.on('error', reject);
  });
}
(async () => {
  const a = await get(undefined);
  if (!a.session) throw new Error('no ticket with the first response');
  const b = await get(a.session);
  console.log(JSON.stringify({full: [a.tickets, a.reused, a.body],
                              resumed: [b.tickets, b.reused, b.body]}));
})().catch((e) => { console.error(String(e)); process.exit(1); });
"""
        be, tern = self.http_tern()
        r = subprocess.run([node, "-e", script, str(self.port), str(int(scaled(10) * 1000))],
                           capture_output=True, text=True, timeout=scaled(30))
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(got, {"full": [2, False, BODY.decode()],
                               "resumed": [1, True, BODY.decode()]})
        self.assert_resumed_chain(tern, 2)

    def test_h2load_reconnects_resumed(self):
        h2load = shutil.which("h2load")
        if not h2load:
            self.skipTest("h2load (Debian package nghttp2-client) not installed")
        be, tern = self.http_tern()
        # HTTP/1.0 answers close the connection: h2load reconnects for each
        # request, offering the session of the one before.
        r = subprocess.run([h2load, "--h1", "-n", "3", "-c", "1",
                            "https://127.0.0.1:%d/" % self.port],
                           capture_output=True, text=True, timeout=scaled(30))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"requests: 3 total, 3 started, 3 done, 3 succeeded, "
                                   r"0 failed, 0 errored")
        self.assertIn("TLS Protocol: TLSv1.3", r.stdout)
        self.assert_resumed_chain(tern, 3)

    def test_tickets_alone_after_the_delay_when_the_backend_never_answers(self):
        """The client asks; the backend never answers: the two tickets come
        alone after --ticket-flush-delay, and resume."""
        be = self.backend(SpeakBackend)
        tern = self.tern_ctl([be], WITH_DATA + ["--ticket-flush-delay", "300ms"], workers=1)
        watch = TicketWatch()
        a = self.conn(watch)
        asked = time.monotonic()
        a.c.exchange(REQUEST, expect=0)
        wait_for(lambda: bytes(be.received.get(0, b"")) == REQUEST, 5, "the request at the backend")
        a.wait_tickets(2, timeout=3)
        self.assertGreaterEqual(a.ticket_times()[0] - asked, 0.25,
                                "tickets flushed before --ticket-flush-delay")
        a.pump_for(QUIET)
        self.assertEqual((a.tickets(), len(a.data)), (2, 0))
        entry = tern.conn_of(a.c)
        self.assertEqual((entry["tickets_sent"], entry["tickets_pending"],
                          entry["tickets_requested"]), (2, 0, 0))
        b = self.conn(watch, session=a.session())
        self.assertTrue(b.resumed())
        self.finish(tern, [a, b])

    def test_tickets_before_the_response_when_the_client_shuts_its_side(self):
        """The client sends its request and at once its close_notify (or
        a TCP FIN): tern still writes both tickets, ahead of the response
        and of its own close_notify, and they resume."""
        for how in ("close_notify", "fin"):
            with self.subTest(how=how):
                be, tern = self.http_tern()
                watch = TicketWatch()
                a = self.conn(watch)
                a.c.obj.write(REQUEST)
                a.c.shut_write(how)
                a.pump_until(lambda: a.c._done_reading(), 5, "the response and tern's close")
                self.assertEqual(bytes(a.data)[-len(BODY):], BODY)
                kinds = a.kinds()
                self.assertEqual(kinds[:kinds.index("data")], ["ticket", "ticket"], kinds)
                self.assertEqual(a.tickets(), 2)
                self.assertTrue(a.c.got_close_notify)
                a.close()
                b = self.conn(watch, session=a.session())
                self.assertTrue(b.resumed())
                self.assertEqual(b.c.exchange(REQUEST)[-len(BODY):], BODY)
                b.close()
                self.assert_resumed_chain(tern, 2)



class TestFinishedAcknowledgedAtOnce(TicketTestCase):

    def assert_not_held_by_nagle(self, version, resume=False):
        """Ten connections through an echo backend, each writing a request
        after its handshake with Nagle on; the median round trip must be
        under 30 ms (with resume, every connection after the first resumes
        the previous one's session)."""
        import statistics
        ctx = client_context(version, version)
        took = []
        session = None
        for i in range(10):
            with socket.create_connection(("127.0.0.1", self.port), timeout=scaled(5)) as raw:
                self.assertEqual(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 0)
                with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
                    if resume and i > 0:
                        self.assertTrue(s.session_reused, "connection %d was not resumed" % i)
                    request = b"request %d\n" % i
                    t0 = time.monotonic()
                    s.sendall(request)
                    got = b""
                    while len(got) < len(request):
                        data = s.recv(4096)
                        self.assertTrue(data, "closed after %r" % got)
                        got += data
                    took.append((time.monotonic() - t0) * 1000)
                    self.assertEqual(got, request)
                    if resume:
                        session = s.session
        self.assertLess(statistics.median(took), 30,
                        "round trips (ms): %s" % ", ".join("%.1f" % t for t in took))

    def test_a_request_written_after_the_handshake_is_not_held_by_nagle(self):
        """With the tickets held back nothing goes to the client when its
        Finished arrives, so no segment carries the ACK of the Finished. A
        client with Nagle on (Python's and Java's default: no TCP_NODELAY)
        that writes its request after the handshake then has its kernel
        hold the request until that ACK, and the server's kernel delays
        it by at least TCP_DELACK_MIN, 40 ms, every time. tern acknowledges
        the Finished at once (TCP_QUICKACK). The bound, 30 ms for the
        median of 10 round trips, is that kernel constant's floor, not a
        performance figure: a correct tern takes a few ms here, under the
        sanitizers too; one that leaves the ACK to the timer never takes
        less than 40."""
        import ssl
        be = self.echo_backend()
        self.tern_ctl([be], WITH_DATA, workers=1)
        self.assert_not_held_by_nagle(ssl.TLSVersion.TLSv1_3)

    def test_nor_with_no_tickets_or_a_tls12_resumption(self):
        """The same holds wherever nothing follows the client's last
        flight: TLS 1.3 with --num-tickets 0 (no ticket at all), and a
        TLS 1.2 resumption, where the server's Finished goes first."""
        import ssl
        be = self.echo_backend()
        tern = self.tern_ctl([be], ["--num-tickets", "0"], workers=1)
        self.assert_not_held_by_nagle(ssl.TLSVersion.TLSv1_3)
        tern.stop_ok()
        self.tern_ctl([be], [], workers=1)
        self.assert_not_held_by_nagle(ssl.TLSVersion.TLSv1_2, resume=True)


class TestHandshakeTicketsDefault(TicketTestCase):

    def test_with_data_is_the_default_and_at_once_still_works(self):
        """Without the flag the handshake's two tickets wait for the
        backend's first data and come right before it; with
        --handshake-tickets at-once they come as the handshake ends."""
        be = self.backend(SpeakBackend)
        tern = self.tern_ctl([be], ["--ticket-flush-delay", "10s"], workers=1)
        watch = TicketWatch()
        a = self.conn(watch)
        wait_for(lambda: be.by_index.get(0), 5, "tern's backend connection")
        a.pump_for(QUIET)
        self.assertEqual(a.tickets(), 0, "the default sent the tickets without backend data")
        entry = tern.conn_of(a.c)
        self.assertEqual((entry["tickets_sent"], entry["tickets_pending"],
                          entry["tickets_requested"]), (0, 2, 0))
        be.speak(0, BODY)
        a.pump_until(lambda: len(a.data) >= len(BODY), 3, "the first response")
        kinds = a.kinds()
        self.assertEqual(kinds[:kinds.index("data")], ["ticket", "ticket"], kinds)
        self.finish(tern, [a])

        at_once = self.tern_ctl([be], ["--ticket-flush-delay", "10s",
                                       "--handshake-tickets", "at-once"], workers=1)
        b = self.conn(watch)
        b.expect_tickets(self, 2)
        self.assertEqual(len(b.data), 0)
        entry = at_once.conn_of(b.c)
        self.assertEqual((entry["tickets_sent"], entry["tickets_pending"]), (2, 0))
        self.finish(at_once, [b])


if __name__ == "__main__":
    main()
