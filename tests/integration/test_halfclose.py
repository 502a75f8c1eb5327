"""Half-close both ways (SPEC section 6): the client ends its side with
close_notify or a TCP FIN and still receives the backend's answer; the
backend ends its side first and the client sees close_notify then EOF,
while its own direction keeps flowing."""

import os
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ReplyThenCloseBackend, SinkBackend, TernTestCase,  # noqa: E402
                     client_context, main, scaled, sha256, wait_for)

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def ctx_for(version):
    v = VERSIONS[version]
    return client_context(min_version=v, max_version=v)


class TestHalfClose(TernTestCase):

    def _client_ends_first(self, how):
        sink = self.backend(SinkBackend)
        tern = self.start_tern([sink])
        sizes = []
        for i, version in enumerate(("1.3", "1.2")):
            with self.subTest(version=version, how=how):
                payload = os.urandom(300000 + i)
                sizes.append(len(payload))
                c = self.client(ctx=ctx_for(version)).handshake()
                # Send everything, end our side, and keep reading: the sink
                # answers only after it saw EOF, so the answer proves both
                # the half-close towards the backend and that the other
                # direction still flows.
                got = c.exchange(payload, then=how, timeout=20)
                expect = b"%d %s\n" % (len(payload), sha256(payload).encode())
                self.assertEqual(got, expect)
                self.assertTrue(c.got_close_notify, "no close_notify after the backend's FIN")
                if not c.got_eof:
                    c.wait_eof()
                self.assertFalse(c.reset, "connection reset instead of closed")
        lines = tern.wait_access(2)
        for a, n in zip(lines, sizes):
            self.assertEqual(a["reason"], "done")
            self.assertEqual(a["bytes_in"], n)
            self.assertEqual(a["bytes_out"], len(b"%d %s\n" % (n, b"0" * 64)))
        self.assertEqual(sorted(r[0] for r in sink.results.values()), sorted(sizes))
        tern.stop_ok()

    def test_client_close_notify_then_reply(self):
        self._client_ends_first("close_notify")

    def test_client_fin_then_reply(self):
        self._client_ends_first("fin")

    def test_backend_closes_first_clean_close_notify(self):
        """Python's ssl with suppress_ragged_eofs=False: recv returns b''
        on close_notify and raises SSLEOFError on a bare FIN."""
        payload = os.urandom(100000)
        be = self.backend(ReplyThenCloseBackend, payload)
        tern = self.start_tern([be])
        for version in ("1.3", "1.2"):
            with self.subTest(version=version):
                raw = socket.create_connection(("127.0.0.1", self.port), timeout=scaled(10))
                s = ctx_for(version).wrap_socket(raw, server_hostname="localhost",
                                                 suppress_ragged_eofs=False)
                self.addCleanup(s.close)
                buf = bytearray()
                try:
                    while True:
                        data = s.recv(65536)
                        if not data:
                            break
                        buf += data
                except ssl.SSLEOFError as e:
                    self.fail("ragged EOF (FIN without close_notify) after %d bytes: %s"
                              % (len(buf), e))
                self.assertEqual(bytes(buf), payload)
                # Our close_notify in turn; then the TCP stream ends.
                plain = s.unwrap()
                self.assertEqual(plain.recv(100), b"", "bytes after close_notify")
                plain.close()
        wait_for(lambda: len(be.received) == 2, 10, "backend to see EOF twice")
        self.assertEqual(be.received, {0: b"", 1: b""})
        lines = tern.wait_access(2)
        self.assertEqual([a["reason"] for a in lines], ["done", "done"])
        self.assertEqual([a["bytes_out"] for a in lines], [len(payload)] * 2)
        tern.stop_ok()

    def test_backend_closes_first_client_keeps_sending(self):
        payload = os.urandom(50000)
        be = self.backend(ReplyThenCloseBackend, payload)
        tern = self.start_tern([be])
        sent = {}
        for i, version in enumerate(("1.3", "1.2")):
            with self.subTest(version=version):
                c = self.client(ctx=ctx_for(version)).handshake()
                got = c.recv_until_close()
                self.assertEqual(got, payload)
                self.assertTrue(c.got_close_notify, "no close_notify after the backend's FIN")
                self.assertTrue(c.got_eof, "no FIN after close_notify")
                # The client-to-backend direction is still open.
                more = os.urandom(200000)
                sent[i] = more
                c.exchange(more, expect=0, then="close_notify", timeout=20)
                self.assertFalse(c.reset, "tern reset the half-closed connection")
                wait_for(lambda: i in be.received, 10, "the backend to see EOF")
                self.assertEqual(len(be.received[i]), len(more))
                self.assertEqual(be.received[i], more)
        lines = tern.wait_access(2)
        self.assertEqual([a["reason"] for a in lines], ["done", "done"])
        self.assertEqual(sorted(a["bytes_in"] for a in lines), [200000, 200000])
        c = tern.stop_ok()
        self.assertEqual(c["bytes_client_in"], 400000)
        self.assertEqual(c["bytes_client_out"], 2 * len(payload))

    def test_gnutls_cli_stdin_eof(self):
        # gnutls-cli sends close_notify when its stdin ends and reads on
        # until the server closes: a real client doing a TLS half-close.
        sink = self.backend(SinkBackend)
        tern = self.start_tern([sink])
        payload = os.urandom(30000).hex().encode() + b"\n"
        path = os.path.join(self.tmp, "stdin")
        with open(path, "wb") as f:
            f.write(payload)
        with open(path, "rb") as stdin:
            r = subprocess.run(["gnutls-cli", "--insecure", "--port", str(self.port),
                                "127.0.0.1"], stdin=stdin, capture_output=True,
                               timeout=scaled(20))
        expect = b"%d %s\n" % (len(payload), sha256(payload).encode())
        self.assertIn(expect, r.stdout, r.stderr.decode(errors="replace")[-1000:])
        self.assertEqual(r.returncode, 0)
        a = tern.wait_access(1)[0]
        self.assertEqual(a["reason"], "done")
        self.assertEqual(a["bytes_in"], len(payload))
        self.assertEqual(a["bytes_out"], len(expect))
        tern.stop_ok()


if __name__ == "__main__":
    main()
