"""Real TLS clients through tern to an echo or HTTP backend: openssl
s_client, curl, gnutls-cli and Python's ssl; protocol version limits;
ECDSA and RSA certificates; the access-log fields of a connection."""

import os
import re
import ssl
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HANDSHAKE_FAILED, HTTPBackend, TernTestCase,  # noqa: E402
                     client_context, drain_stream, main, read_stream_until, scaled)

PIPES = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


class ToolRoundTrip:
    """Runs a command-line TLS client with a pipe on stdin and stdout,
    writes payload, waits (bounded) until the echo comes back, then closes
    stdin and waits for exit. Returns (exit code, all output)."""

    @staticmethod
    def run(tc, args, payload, timeout=15):
        p = tc.popen(args, **PIPES)
        p.stdin.write(payload)
        p.stdin.flush()
        out = read_stream_until(p.stdout, lambda b: payload in b, timeout,
                                "the echoed payload from %s" % args[0])
        p.stdin.close()
        out += drain_stream(p.stdout, 10)
        try:
            rc = p.wait(timeout=scaled(10))
        except subprocess.TimeoutExpired:
            tc.fail("%s did not exit after stdin closed" % args[0])
        return rc, out


def text_payload(n):
    """Printable, newline-terminated lines (s_client and gnutls-cli are
    line-friendly), starting with a marker that is not a command letter."""
    marker = b"tern-" + os.urandom(8).hex().encode()
    line = marker + b" " + os.urandom(24).hex().encode() + b"\n"
    return (line * (n // len(line) + 1))[:n - 1] + b"\n"


class TestClients(TernTestCase):

    def _s_client(self, flag, expect_version):
        be = self.echo_backend()
        tern = self.start_tern([be])
        payload = text_payload(40000)
        rc, out = ToolRoundTrip.run(self, [
            "openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port,
            "-servername", "localhost", flag, "-nocommands"], payload)
        m = re.search(rb"New, (TLSv1\.[23]|\(NONE\)), Cipher is (\S+)", out)
        self.assertIsNotNone(m, "s_client printed no 'New, ...' line: %r" % out[:2000])
        self.assertEqual(m.group(1).decode(), expect_version)
        self.assertEqual(out.count(payload), 1, "echoed payload appears exactly once")
        self.assertEqual(rc, 0, "s_client exit status")
        lines = tern.wait_access(1)
        self.assertEqual(lines[0]["version"], expect_version)
        self.assertEqual(lines[0]["bytes_in"], len(payload))
        self.assertEqual(lines[0]["bytes_out"], len(payload))
        c = tern.stop_ok()
        self.assertEqual(c["handshakes_full"], 1)
        self.assertEqual(c["handshake_failures"], 0)
        self.assertEqual(c["bytes_client_in"], len(payload))
        self.assertEqual(c["bytes_client_out"], len(payload))

    def test_openssl_s_client_tls12(self):
        self._s_client("-tls1_2", "TLSv1.2")

    def test_openssl_s_client_tls13(self):
        self._s_client("-tls1_3", "TLSv1.3")

    def _curl(self, curl_flags, expect_version):
        body = os.urandom(200000)
        http = HTTPBackend(self, body)
        self.start_tern([http.addr])
        out = os.path.join(self.tmp, "body")
        r = subprocess.run(["curl", "-sS", "-v", "-k", "--max-time", str(int(scaled(15))),
                            "-o", out] + curl_flags + ["https://127.0.0.1:%d/" % self.port],
                           capture_output=True, timeout=scaled(30))
        err = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, 0, "curl failed: %s" % err[-2000:])
        with open(out, "rb") as f:
            self.assertEqual(f.read(), body)
        m = re.search(r"SSL connection using (TLSv1\.[23])", err)
        self.assertIsNotNone(m, "curl -v names no TLS version")
        self.assertEqual(m.group(1), expect_version)
        self.assertEqual(http.requests, 1)

    def test_curl_tls13(self):
        self._curl(["--tlsv1.3"], "TLSv1.3")

    def test_curl_tls12(self):
        self._curl(["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2")

    def _gnutls(self, priority, expect):
        be = self.echo_backend()
        tern = self.start_tern([be])
        payload = text_payload(30000)
        rc, out = ToolRoundTrip.run(self, [
            "gnutls-cli", "--insecure", "--port", str(self.port), "--priority", priority,
            "127.0.0.1"], payload)
        self.assertEqual(out.count(payload), 1, "echoed payload appears exactly once")
        self.assertIn(expect.encode(), out, "gnutls-cli session description")
        lines = tern.wait_access(1)
        self.assertEqual(lines[0]["bytes_in"], len(payload))
        self.assertEqual(lines[0]["bytes_out"], len(payload))

    def test_gnutls_cli_tls13(self):
        self._gnutls("NORMAL:-VERS-ALL:+VERS-TLS1.3", "(TLS1.3")

    def test_gnutls_cli_tls12(self):
        self._gnutls("NORMAL:-VERS-ALL:+VERS-TLS1.2", "(TLS1.2")

    def test_python_roundtrip_and_access_log(self):
        be = self.echo_backend()
        tern = self.start_tern([be], workers=1)
        payload = os.urandom(300000)
        c = self.client().handshake()
        self.assertEqual(c.version(), "TLSv1.3")
        got = c.exchange(payload, expect=len(payload))
        self.assertEqual(got, payload)
        # Clean end: close_notify from us, the echo backend sees EOF and
        # closes, tern answers with close_notify and FIN.
        c.shut_write("close_notify")
        rest = c.recv_until_close()
        self.assertEqual(rest, b"")
        self.assertTrue(c.got_close_notify, "tern closed without close_notify")
        self.assertTrue(c.got_eof)

        # A second connection without SNI.
        c2 = self.client(server_hostname=None).handshake()
        self.assertEqual(c2.exchange(b"ping", expect=4), b"ping")
        c2.shut_write("close_notify")
        c2.recv_until_close()

        a, b = tern.wait_access(2)
        self.assertEqual(a["peer"], c.peer_text())
        self.assertEqual(a["sni"], "localhost")
        self.assertEqual(a["alpn"], "-")
        self.assertEqual(a["version"], "TLSv1.3")
        self.assertEqual(a["cipher"], c.cipher()[0])
        self.assertEqual(a["resumed"], 0)
        self.assertEqual(a["bytes_in"], len(payload))
        self.assertEqual(a["bytes_out"], len(payload))
        self.assertIsInstance(a["duration_ms"], int)
        self.assertEqual(a["reason"], "done")
        self.assertEqual(b["sni"], "-")
        self.assertEqual(b["bytes_in"], 4)
        self.assertEqual(b["reason"], "done")
        counters = tern.stop_ok()
        self.assertEqual(counters["conns_total"], 2)
        self.assertEqual(counters["handshakes_full"], 2)
        self.assertEqual(counters["handshakes_resumed"], 0)
        self.assertEqual(counters["handshake_failures"], 0)
        self.assertEqual(counters["backend_connect_failures"], 0)
        self.assertEqual(counters["bytes_client_in"], len(payload) + 4)
        self.assertEqual(counters["bytes_client_out"], len(payload) + 4)

    def _resumption(self, workers, tries):
        """Each connection offers the session (ticket) of the one before,
        as a real client does. Returns tern's counters."""
        be = self.echo_backend()
        tern = self.start_tern([be], workers=workers)
        for version, v in (("1.3", ssl.TLSVersion.TLSv1_3), ("1.2", ssl.TLSVersion.TLSv1_2)):
            with self.subTest(version=version):
                ctx = client_context(min_version=v, max_version=v)
                session = None
                for i in range(tries + 1):
                    c = self.client(ctx=ctx, session=session).handshake()
                    # Reading the echo also reads the tickets sent before it.
                    self.assertEqual(c.exchange(b"hi", expect=2), b"hi")
                    self.assertEqual(c.obj.session_reused, i > 0,
                                     "connection %d of %d: resumed=%s"
                                     % (i, tries + 1, c.obj.session_reused))
                    session = c.obj.session
                    c.shut_write("close_notify")
                    c.recv_until_close()
        lines = tern.wait_access(2 * (tries + 1))
        self.assertEqual([a["resumed"] for a in lines], ([0] + [1] * tries) * 2)
        counters = tern.stop_ok()
        self.assertEqual(counters["handshakes_full"], 2)
        self.assertEqual(counters["handshakes_resumed"], 2 * tries)
        return counters

    def test_session_resumption(self):
        self._resumption(workers=1, tries=3)

    def test_session_resumption_across_workers(self):
        # SPEC section 2: ticket keys are shared by all workers, so a
        # session resumes whichever worker the kernel picks (6 tries over
        # 2 workers: all on one worker by chance is 1 in 64).
        self._resumption(workers=2, tries=6)

    def test_tls_max_12(self):
        be = self.echo_backend()
        tern = self.start_tern([be], extra=["--tls-max", "1.2"])
        c = self.client().handshake()
        self.assertEqual(c.version(), "TLSv1.2")
        self.assertEqual(c.exchange(b"hello", expect=5), b"hello")
        c.close()
        # A client that speaks only TLS 1.3 must fail.
        c13 = self.client(ctx=client_context(min_version=ssl.TLSVersion.TLSv1_3))
        with self.assertRaises(HANDSHAKE_FAILED):
            c13.handshake()
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port,
                            "-tls1_3"], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=scaled(15))
        self.assertNotEqual(r.returncode, 0, "s_client -tls1_3 succeeded against --tls-max 1.2")
        counters = tern.stop_ok()
        self.assertEqual(counters["handshakes_full"], 1)
        self.assertEqual(counters["handshake_failures"], 2)

    def test_tls_min_13(self):
        be = self.echo_backend()
        tern = self.start_tern([be], extra=["--tls-min", "1.3"])
        c = self.client().handshake()
        self.assertEqual(c.version(), "TLSv1.3")
        c.close()
        c12 = self.client(ctx=client_context(max_version=ssl.TLSVersion.TLSv1_2))
        with self.assertRaises(HANDSHAKE_FAILED):
            c12.handshake()
        counters = tern.stop_ok()
        self.assertEqual(counters["handshakes_full"], 1)
        self.assertEqual(counters["handshake_failures"], 1)

    def _cert_kind(self, kind, separate_key=False):
        be = self.echo_backend()
        cert = self.cert(kind, combined=not separate_key)
        extra = ["--key", cert["key"]] if separate_key else []
        self.start_tern([be], cert=cert["cert"], extra=extra)
        # The client verifies tern's certificate against ours, by name.
        ctx = client_context(max_version=ssl.TLSVersion.TLSv1_2, cafile=cert["cert_only"])
        c = self.client(ctx=ctx).handshake()
        self.assertEqual(c.version(), "TLSv1.2")
        self.assertEqual(c.exchange(b"abc", expect=3), b"abc")
        return c.cipher()[0]

    def test_ecdsa_cert(self):
        cipher = self._cert_kind("ec")
        self.assertIn("ECDSA", cipher)

    def test_rsa_cert(self):
        cipher = self._cert_kind("rsa")
        self.assertIn("RSA", cipher)
        self.assertNotIn("ECDSA", cipher)

    def test_separate_key_file(self):
        self._cert_kind("ec", separate_key=True)

    def test_tls13_verifies_by_ip_and_name(self):
        be = self.echo_backend()
        cert = self.default_cert()
        self.start_tern([be])
        for name in ("localhost", "127.0.0.1"):
            with self.subTest(server_hostname=name):
                ctx = client_context(cafile=cert["cert_only"])
                c = self.client(ctx=ctx, server_hostname=name).handshake()
                self.assertEqual(c.exchange(b"x" * 100, expect=100), b"x" * 100)


if __name__ == "__main__":
    main()
