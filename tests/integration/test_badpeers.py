"""Peers that do not speak TLS, or stop half-way (SPEC section 6): each
such connection ends with a counted failure and no other connection is
affected."""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TernTestCase, client_hello_bytes, main, read_until_closed,  # noqa: E402
                     run_threads, scaled)

GARBAGE = b"this is not a TLS record at all\r\n" * 40
HTTP_GET = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tern-test\r\n\r\n"
# A handshake record header claiming 65535 bytes: longer than any TLS
# record may be, so it is refused on sight, not waited for.
OVERSIZED_RECORD = b"\x16\x03\x01\xff\xff" + b"\x01" * 200


def poke(port, data, timeout=5):
    """Connects, sends data, reads until tern closes. Returns (bytes read,
    "eof"|"reset"|"timeout", seconds until closed)."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    try:
        if data:
            s.sendall(data)
        got, how = read_until_closed(s, timeout)
        return got, how, time.monotonic() - t0
    finally:
        s.close()


class TestBadPeers(TernTestCase):

    def _one_bad(self, data):
        be = self.echo_backend()
        tern = self.start_tern([be])
        got, how, elapsed = poke(self.port, data)
        self.assertIn(how, ("eof", "reset"), "tern kept the connection open")
        self.assertLess(elapsed, scaled(2.0))
        self.assertNotIn(data[:10], got, "tern echoed the bytes back")
        a = tern.wait_access(1)[0]
        self.assertEqual(a["reason"], "tls_error")
        self.assertEqual(a["version"], "-")
        self.assertEqual(a["bytes_in"], 0)
        self.assertEqual(a["bytes_out"], 0)
        counters = tern.stop_ok()
        self.assertEqual(counters["conns_total"], 1)
        self.assertEqual(counters["handshake_failures"], 1)
        self.assertEqual(counters["handshakes_full"], 0)
        self.assertEqual(counters["bytes_client_in"], 0)
        return got

    def test_garbage_bytes(self):
        self._one_bad(GARBAGE)

    def test_plain_http(self):
        got = self._one_bad(HTTP_GET)
        self.assertNotIn(b"HTTP/1.1 200", got)

    def test_oversized_record(self):
        self._one_bad(OVERSIZED_RECORD)

    def test_partial_client_hello_times_out(self):
        be = self.echo_backend()
        tern = self.start_tern([be], extra=["--handshake-timeout", "1s"])
        # An established connection is not subject to the handshake timeout.
        established = self.client().handshake()
        self.assertEqual(established.exchange(b"before", expect=6), b"before")
        hello = client_hello_bytes()
        self.assertEqual(hello[0], 0x16)
        cases = [
            ("first 20 bytes of a ClientHello", hello[:20]),
            ("a record header and 3 bytes", hello[:8]),
            ("nothing", b""),
        ]
        results = run_threads(lambda d: poke(self.port, d, timeout=5),
                              [(d,) for _, d in cases], 30)
        for (name, _), (got, how, elapsed) in zip(cases, results):
            with self.subTest(case=name):
                self.assertIn(how, ("eof", "reset"), "still open after %.1fs" % elapsed)
                self.assertGreaterEqual(elapsed, 0.9, "closed before --handshake-timeout")
                self.assertLessEqual(elapsed, scaled(3.0), "closed late")
        self.assertEqual(established.exchange(b"after", expect=5), b"after",
                         "an established connection was cut by --handshake-timeout")
        established.shut_write("close_notify")
        established.recv_until_close()
        lines = [a for a in tern.wait_access(4) if a["peer"] != established.peer_text()]
        self.assertEqual([a["reason"] for a in lines], ["handshake_timeout"] * 3)
        counters = tern.stop_ok()
        # The two that sent bytes are failures; a silent one may count too.
        self.assertGreaterEqual(counters["handshake_failures"], 2)
        self.assertLessEqual(counters["handshake_failures"], 3)
        self.assertEqual(counters["handshakes_full"], 1)

    def test_garbage_burst_then_good_connection(self):
        be = self.echo_backend()
        tern = self.start_tern([be], extra=["--handshake-timeout", "3s"])
        # A good connection established before the burst...
        before = self.client().handshake()
        self.assertEqual(before.exchange(b"before", expect=6), b"before")

        total, concurrency = 500, 50
        kinds = [GARBAGE, HTTP_GET, OVERSIZED_RECORD]
        outcomes = []
        lock = threading.Lock()

        def worker(k):
            for i in range(k, total, concurrency):
                got, how, elapsed = poke(self.port, kinds[i % len(kinds)], timeout=5)
                with lock:
                    outcomes.append(how)
        run_threads(worker, [(k,) for k in range(concurrency)], 120, "garbage burst")
        self.assertEqual(len(outcomes), total)
        self.assertEqual(outcomes.count("timeout"), 0, "connections tern left open")

        # ...still works, and so does a new one.
        self.assertEqual(before.exchange(b"after", expect=5), b"after")
        after = self.client().handshake()
        self.assertEqual(after.exchange(b"new", expect=3), b"new")
        for c in (before, after):
            c.shut_write("close_notify")
            c.recv_until_close()
        counters = tern.stop_ok()
        self.assertEqual(counters["conns_total"], total + 2)
        self.assertEqual(counters["handshakes_full"], 2)
        self.assertGreaterEqual(counters["handshake_failures"], total)
        self.assertEqual(counters["bytes_client_in"], len(b"beforeafternew"))


if __name__ == "__main__":
    main()
