"""GET /healthz and /readyz on the --metrics listener (SPEC sections 2 and
5), through http.client against the real binary: 200 "ok" while every
worker answers its pings; 503 "draining" after SIGTERM while a connection
holds the drain open; and a wedged worker, made by stopping one worker
thread with ptrace (tern's other threads run on, as with a worker stuck in
a loop), fails both probes naming it, not before the bound, while /metrics
still answers, and both recover once it runs again. On io_uring and on
epoll (`--io epoll`); CI also runs the whole file on epoll and under the
seccomp profile (integ_epoll_health, integ_seccomp_*health)."""

import http.client
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (StoppedThread, TernTestCase, check_sanitizers_at_cleanup,  # noqa: E402
                     main, read_until_closed, scaled, thread_id, wait_for)

# include/tern/health.h
BOUND_S = 3.0
PING_S = 1.0
TEXT = "text/plain; charset=utf-8"
WEDGED = re.compile(r"^worker (\d+) has not answered for (\d+)\.(\d)s\n$")


class HealthTestCase(TernTestCase):

    def setUp(self):
        super().setUp()
        check_sanitizers_at_cleanup(self)

    def start(self, workers=2, extra=()):
        be = self.echo_backend()
        return self.start_tern_with_metrics([be], workers, extra)

    def probe(self, path, method="GET"):
        """One request: (status, headers, body as text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.mport, timeout=scaled(5))
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            body = resp.read().decode()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()

    def verdict(self, path):
        status, _, body = self.probe(path)
        return status, body

    def wait_verdict(self, path, status, timeout, what):
        """Polls path until it answers status; returns the body."""
        def answered():
            got, body = self.verdict(path)
            return body if got == status else None
        return wait_for(answered, timeout, what)

    def round_trip(self, c, payload):
        self.assertEqual(c.exchange(payload, expect=len(payload)), payload)


class TestHealthy(HealthTestCase):

    def test_ok_while_every_worker_answers(self):
        tern = self.start()
        # The first ping round goes out when the control thread starts, so
        # readiness follows within a round of the ready line.
        self.wait_verdict("/readyz", 200, PING_S + 2, "/readyz 200")
        for path in ("/healthz", "/readyz", "/healthz?x=1"):
            status, headers, body = self.probe(path)
            self.assertEqual((status, body), (200, "ok\n"), path)
            self.assertEqual(headers["content-type"], TEXT)
            self.assertEqual(int(headers["content-length"]), 3)
            self.assertEqual(headers["connection"], "close")
        # HEAD: the same status and headers, no body.
        s = socket.create_connection(("127.0.0.1", self.mport), timeout=scaled(5))
        s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got, how = read_until_closed(s, 5)
        s.close()
        self.assertEqual(how, "eof")
        self.assertTrue(got.startswith(b"HTTP/1.1 200 OK\r\n"), got)
        self.assertIn(b"\r\nContent-Length: 3\r\n", got)
        self.assertTrue(got.endswith(b"\r\n\r\n"), got)
        # Only GET and HEAD; near misses are not the probes.
        status, headers, _ = self.probe("/healthz", method="POST")
        self.assertEqual((status, headers["allow"]), (405, "GET, HEAD"))
        for path in ("/healthz/", "/health", "/livez", "/READYZ"):
            self.assertEqual(self.probe(path)[0], 404, path)
        # Still healthy past the bound: the pings keep coming (one ping
        # at start would have aged out by now). Time passing is the point
        # here, not a wait for something.
        time.sleep(BOUND_S + 0.5)
        self.assertEqual(self.verdict("/healthz"), (200, "ok\n"))
        # The probes never reach the proxy.
        self.assertEqual(tern.stats()["conns_total"], 0)
        tern.stop_ok()

    def test_draining_is_503_while_a_connection_holds_the_drain(self):
        tern = self.start()
        self.wait_verdict("/readyz", 200, PING_S + 2, "/readyz 200")
        c = self.client().handshake()
        self.round_trip(c, b"before")
        tern.send_signal(signal.SIGTERM)
        self.assertEqual(self.wait_verdict("/healthz", 503, 5, "/healthz 503"), "draining\n")
        # Both probes say so, and the connection still flows: the drain is
        # what they report, not a dead process.
        for path in ("/healthz", "/readyz"):
            self.assertEqual(self.verdict(path), (503, "draining\n"), path)
        status, headers, _ = self.probe("/healthz")
        self.assertEqual((status, headers["content-type"]), (503, TEXT))
        self.round_trip(c, b"during the drain")
        self.assertEqual(tern.proc.poll(), None)
        c.shut_write("close_notify")
        c.recv_until_close()
        c.close()
        self.assertEqual(tern.wait_exit(), 0)
        tern.check_sanitizers()


class TestWedgedWorker(HealthTestCase):

    def wedge_and_recover(self, extra=()):
        tern = self.start(workers=2, extra=extra)
        self.wait_verdict("/readyz", 200, PING_S + 2, "/readyz 200")
        stopped = StoppedThread(thread_id(tern.proc.pid, "tern-w1"))
        self.addCleanup(stopped.resume)
        t0 = time.monotonic()
        # Its last answer came at most a ping period before the stop, so
        # the verdict may not turn before BOUND_S - PING_S (unscaled: a
        # lower bound), and must within BOUND_S plus a round (scaled).
        body = self.wait_verdict("/healthz", 503, BOUND_S + PING_S + 1, "/healthz 503")
        waited = time.monotonic() - t0
        self.assertGreaterEqual(waited, BOUND_S - PING_S - 0.2, body)
        m = WEDGED.match(body)
        self.assertIsNotNone(m, body)
        self.assertEqual(m.group(1), "1", "the stopped worker is named: " + body)
        # Over the bound, shown in tenths cut down: 3001 ms reads 3.0s.
        self.assertGreaterEqual(float(m.group(2) + "." + m.group(3)), BOUND_S)
        status, body = self.verdict("/readyz")
        self.assertEqual(status, 503)
        self.assertRegex(body, WEDGED)
        # The metrics thread never waits for a worker: scrapes go on.
        status, _, text = self.probe("/metrics")
        self.assertEqual(status, 200)
        self.assertIn("\ntern_workers 2\n", text)
        # Running again, it answers the pings that waited in its queue.
        stopped.resume()
        self.wait_verdict("/healthz", 200, PING_S + 2, "/healthz 200 after the resume")
        self.assertEqual(self.verdict("/readyz"), (200, "ok\n"))
        c = self.client().handshake()
        self.round_trip(c, b"served again")
        c.close()
        tern.stop_ok()

    def test_wedged_worker_fails_both_probes_then_recovers(self):
        self.wedge_and_recover()

    def test_wedged_worker_on_epoll(self):
        self.wedge_and_recover(["--io", "epoll"])


if __name__ == "__main__":
    main()
