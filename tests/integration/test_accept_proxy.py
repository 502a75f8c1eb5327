"""--accept-proxy and --accept-proxy-from (issue 15,
docs/proxy-protocol-accept.md): a PROXY protocol header from an upstream
load balancer before the TLS handshake, whose address is the client's
everywhere: the access log's peer=, `conns`, and the header tern sends on
to backends with --proxy-protocol.

Python clients write the header themselves (v1 and v2, in the same send as
the ClientHello, or byte by byte), then speak TLS over the same socket
(harness TLSClient's `sock` and `prefix`); a real HAProxy in front sends
`send-proxy-v2` (and `send-proxy`) for a real TLS client. Bad headers,
sources outside --accept-proxy-from, truncated headers, headers that never
finish and health checks (a LOCAL header, then nothing) each end only their
own connection, with their own access-log reason and counter, and none of
them is a TLS handshake failure."""

import http.client
import os
import socket
import ssl
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (EchoBackend, TernTestCase, free_port, main,  # noqa: E402
                     read_until_closed, scaled, wait_for)
from test_proxy_protocol import ProxyProtocolBackend, crc32c, have_ipv6  # noqa: E402
from test_proxy_haproxy import HAPROXY, HAProxy  # noqa: E402

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
PROXY_COUNTERS = ("proxy_not_allowed", "proxy_header_invalid", "proxy_header_truncated",
                  "proxy_header_timeout")


def v1_header(src, dst, sport, dport):
    proto = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def tlv(t, value):
    return bytes([t]) + struct.pack(">H", len(value)) + value


def v2_header(src=None, dst=None, sport=0, dport=0, tlvs=b"", crc=False, local=False):
    """A v2 header: PROXY over TCP4/TCP6 (by src), or LOCAL with no
    address. crc: a PP2_TYPE_CRC32C TLV, computed (section 2.2.3)."""
    if local:
        ver_cmd, fam, addr = 0x20, 0x00, b""
    else:
        family = socket.AF_INET6 if ":" in src else socket.AF_INET
        ver_cmd, fam = 0x21, 0x21 if family == socket.AF_INET6 else 0x11
        addr = (socket.inet_pton(family, src) + socket.inet_pton(family, dst)
                + struct.pack(">HH", sport, dport))
    body = addr + tlvs + (tlv(0x03, b"\0\0\0\0") if crc else b"")
    raw = bytearray(V2_SIG + bytes([ver_cmd, fam]) + struct.pack(">H", len(body)) + body)
    if crc:
        raw[-4:] = struct.pack(">I", crc32c(bytes(raw)))
    return bytes(raw)


def peer_text(host, port):
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


class TestAcceptProxy(TernTestCase):

    def setUp(self):
        super().setUp()
        self.ctl_path = os.path.join(self.tmp, "control.sock")

    # --- setup

    def start(self, version, allow=("127.0.0.1/32",), backends=None, extra=(), listen=None):
        """tern with --accept-proxy version, the ranges allowed, --control;
        an echo backend unless backends are given."""
        args = ["--accept-proxy", version, "--control", self.ctl_path]
        for r in allow:
            args += ["--accept-proxy-from", r]
        self.be = backends[0] if backends else self.echo_backend()
        return self.start_tern(backends or [self.be], extra=args + list(extra), listen=listen)

    def connect(self, source=None, host="127.0.0.1", port=None):
        """A plain TCP connection to tern, from source (an address on
        loopback) if given; TCP_NODELAY, so each send is a segment."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(scaled(5))
        if source:
            s.bind((source, 0))
        s.connect((host, port or self.port))
        return s

    def round_trip(self, c, payload=b"hello through the load balancer\n"):
        c.handshake()
        self.assertEqual(c.exchange(payload, expect=len(payload)), payload)
        return c

    def close_client(self, c):
        c.shut_write("close_notify")
        c.recv_until_close()
        c.close()

    def proxy_counters(self, tern):
        s = tern.stats()
        return {k: s[k] for k in PROXY_COUNTERS + ("handshake_failures", "probe_connections",
                                                   "handshakes_full")}

    def expect_counters(self, tern, **want):
        """Waits (bounded) for the stats counters named to reach the values
        given; every other of PROXY_COUNTERS, handshake_failures and
        probe_connections must be 0."""
        full = {k: 0 for k in PROXY_COUNTERS + ("handshake_failures", "probe_connections")}
        full.update(want)

        def reached():
            got = self.proxy_counters(tern)
            return all(got[k] == v for k, v in full.items()) and got
        try:
            return wait_for(reached, 5, "counters %r" % full)
        except AssertionError:
            raise AssertionError("counters: want %r, got %r" % (full, self.proxy_counters(tern)))

    def expect_closed_without_tls(self, s):
        """tern ended the connection without a byte of TLS (no alert)."""
        data, how = read_until_closed(s, 5)
        self.assertIn(how, ("eof", "reset"))
        self.assertEqual(data, b"")

    # ------------------------------------------------- configuration

    def test_check_and_ready_line(self):
        args = ["--listen", "127.0.0.1:%d" % free_port(), "--cert", self.default_cert()["cert"],
                "--accept-proxy", "any", "--accept-proxy-from", "10.0.0.0/8",
                "--accept-proxy-from", "::1"]
        r = self.run_tern(args + ["--check"])
        self.assertEqual(r.returncode, 0, r.stderr)
        first = r.stdout.splitlines()[0]
        self.assertTrue(first.endswith(" accept_proxy=any accept_proxy_from=10.0.0.0/8,::1/128"),
                        first)
        tern = self.start("v2", allow=("127.0.0.2", "10.0.0.0/8"))
        ready = tern.ready_line()
        self.assertTrue(ready.endswith(" accept_proxy=v2 accept_proxy_from=127.0.0.2/32,"
                                       "10.0.0.0/8"), ready)
        self.finish(tern)
        # Off: nothing added.
        r = self.run_tern(args[:4] + ["--check"])
        self.assertNotIn("accept_proxy", r.stdout)
        r = self.run_tern(args[:6])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "tern: --accept-proxy: invalid value 'any' (expected "
                         "--accept-proxy-from too: the sources allowed to send the header, "
                         "0.0.0.0/0 and ::/0 for all)\n")

    # ------------------------------------------------- v1, v2 and any

    def test_v1_header_then_tls(self):
        tern = self.start("v1")
        hdr = v1_header("203.0.113.7", "198.51.100.1", 40001, 443)
        c = self.client(sock=self.connect(), prefix=hdr)
        self.round_trip(c)
        # `conns` and the access log name the client the header names.
        entry = tern.conn_of("203.0.113.7:40001")
        self.assertEqual(entry["version"], c.version())
        self.assertEqual(tern.conns()[0]["peer"], "203.0.113.7:40001")
        self.close_client(c)
        a = tern.access_for("203.0.113.7:40001")
        self.assertEqual(a["reason"], "done")
        self.expect_counters(tern, handshakes_full=1)
        self.finish(tern)

    def test_v2_ipv6_with_tlvs_then_tls(self):
        tern = self.start("v2")
        # TLVs as an AWS NLB sends them (0xEA, the VPC endpoint), a
        # NOOP, and a CRC32C: skipped, the CRC checked.
        hdr = v2_header("2001:db8::7", "2001:db8::1", 40002, 443,
                        tlvs=tlv(0xEA, b"\x01vpce-0123456789abcdef") + tlv(0x04, b""), crc=True)
        c = self.client(sock=self.connect(), prefix=hdr)
        self.round_trip(c)
        tern.conn_of("[2001:db8::7]:40002")
        self.close_client(c)
        self.assertEqual(tern.access_for("[2001:db8::7]:40002")["reason"], "done")
        self.expect_counters(tern, handshakes_full=1)
        self.finish(tern)

    def test_any_takes_both(self):
        tern = self.start("any")
        for i, hdr in enumerate((v1_header("192.0.2.1", "192.0.2.2", 1001, 443),
                                 v2_header("192.0.2.3", "192.0.2.4", 1002, 443))):
            c = self.client(sock=self.connect(), prefix=hdr)
            self.round_trip(c, b"request %d\n" % i)
            self.close_client(c)
        self.assertEqual(tern.access_for("192.0.2.1:1001")["reason"], "done")
        self.assertEqual(tern.access_for("192.0.2.3:1002")["reason"], "done")
        self.expect_counters(tern, handshakes_full=2)
        self.finish(tern)

    def test_wrong_version_refused(self):
        tern = self.start("v2")
        s = self.connect()
        s.sendall(v1_header("192.0.2.1", "192.0.2.2", 1001, 443))
        self.expect_closed_without_tls(s)
        a = tern.access_for(peer_text(*s.getsockname()))
        self.assertEqual(a["reason"], "proxy_header_invalid")
        tern.wait_log("not a v2 header (a v1 one? only v2 is accepted); it began "
                      "\"PROXY TCP4 192.0.2.1 192.0.2.2 1001 443\\x0D\\x0A\"")
        self.expect_counters(tern, proxy_header_invalid=1)
        self.finish(tern)

    # --------------------------------------------------------- splits

    def test_split_byte_by_byte(self):
        tern = self.start("any")
        for i, hdr in enumerate((v1_header("198.51.100.9", "198.51.100.1", 2001, 443),
                                 v2_header("2001:db8::9", "2001:db8::1", 2002, 443, crc=True))):
            s = self.connect()
            # Byte by byte, each in a segment of its own (TCP_NODELAY);
            # the pause only makes separate reads likely, it is not
            # waited on: the unit test covers every split exactly.
            for b in hdr:
                s.send(bytes([b]))
                time.sleep(0.002)
            c = self.client(sock=s)
            self.round_trip(c, b"split %d\n" % i)
            self.close_client(c)
        self.assertEqual(tern.access_for("198.51.100.9:2001")["reason"], "done")
        self.assertEqual(tern.access_for("[2001:db8::9]:2002")["reason"], "done")
        self.expect_counters(tern, handshakes_full=2)
        self.finish(tern)

    def test_split_waits_in_conns(self):
        # Half a header, and tern holds the connection (under its real
        # address, the header not being whole) until the rest comes.
        tern = self.start("v2")
        hdr = v2_header("192.0.2.77", "192.0.2.1", 3003, 443)
        s = self.connect()
        s.sendall(hdr[:14])
        entry = tern.conn_of(peer_text(*s.getsockname()))
        self.assertIsNone(entry["version"])
        s.sendall(hdr[14:])
        c = self.client(sock=s)
        self.round_trip(c)
        tern.conn_of("192.0.2.77:3003")
        self.close_client(c)
        self.assertEqual(tern.access_for("192.0.2.77:3003")["reason"], "done")
        self.finish(tern)

    def test_header_and_client_hello_in_one_segment(self):
        # The ClientHello arrives in the same read as the header: its
        # bytes must reach TLS, not be dropped with the header's.
        tern = self.start("v1")
        hdr = v1_header("192.0.2.50", "192.0.2.1", 4004, 443)
        c = self.client(sock=self.connect(), prefix=hdr)
        with self.assertRaises(ssl.SSLWantReadError):
            c.obj.do_handshake()  # the ClientHello, into the BIO
        self.assertTrue(c._flush(), "header and ClientHello in one send()")
        self.assertEqual(c.pending, b"")
        self.round_trip(c)
        self.close_client(c)
        self.assertEqual(tern.access_for("192.0.2.50:4004")["reason"], "done")
        self.finish(tern)

    # ------------------------------------------------------ bad input

    def test_bad_headers(self):
        # Debug: the lines after the first of each second are debug ones.
        tern = self.start("any", extra=["--log-level", "debug"])
        cases = [
            # First: the first refusal of a worker is logged at info,
            # with the header's start, escaped.
            (b"PROXY UNKNOWN \x1b[31mred\r\n",
             "v1: a byte that is not printable ASCII before CRLF"),
            (b"PROXY TCP4 192.0.2.1 192.0.2.2 99999 443\r\n", "v1: bad source port"),
            (b"PROXY TCP4 ::1 192.0.2.2 1 443\r\n", "v1: bad TCP4 source address"),
            (V2_SIG + b"\x21\x21\x00\x0c" + b"\0" * 12, "v2: length too short for the address family"),
            (v2_header("192.0.2.1", "192.0.2.2", 1, 2, crc=True)[:-1] + b"\0",
             "v2: CRC32C mismatch"),
            # A TLS client that skipped the load balancer.
            (b"\x16\x03\x01\x00\xf4\x01\x00\x00\xf0\x03\x03",
             "not a PROXY header (a TLS handshake record: a client connecting directly?)"),
        ]
        peers = []
        for raw, why in cases:
            s = self.connect()
            peers.append(peer_text(*s.getsockname()))
            s.sendall(raw)
            self.expect_closed_without_tls(s)
            tern.wait_log("bad PROXY header from %s: %s" % (peers[-1], why))
        for p in peers:
            self.assertEqual(tern.access_for(p)["reason"], "proxy_header_invalid")
        # The client's bytes are escaped where they are shown.
        log = tern.log()
        self.assertNotIn("\x1b", log)
        self.assertIn("PROXY UNKNOWN \\x1B[31mred\\x0D\\x0A", log)
        # Another connection is unaffected.
        c = self.client(sock=self.connect(), prefix=v1_header("192.0.2.9", "192.0.2.1", 9, 443))
        self.round_trip(c)
        self.close_client(c)
        self.expect_counters(tern, proxy_header_invalid=len(cases), handshakes_full=1)
        self.finish(tern)

    def test_oversize_v2_refused_at_once(self):
        # A v2 length beyond --buffer-size: refused on its 16th byte, not
        # waited for.
        tern = self.start("v2", extra=["--buffer-size", "4k"])
        s = self.connect()
        s.sendall(V2_SIG + b"\x21\x11\x20\x00")
        self.expect_closed_without_tls(s)
        tern.wait_log("v2: header longer than the receive buffer")
        self.expect_counters(tern, proxy_header_invalid=1)
        self.finish(tern)

    def test_source_not_allowed(self):
        # Only 127.0.0.2 may send the header; tern listens on 127.0.0.1.
        tern = self.start("v2", allow=("127.0.0.2/32",))
        s = self.connect(source="127.0.0.1")
        s.sendall(v2_header("192.0.2.1", "192.0.2.2", 1, 443))
        self.expect_closed_without_tls(s)
        refused = peer_text(*s.getsockname())
        a = tern.access_for(refused)
        self.assertEqual(a["reason"], "proxy_not_allowed")
        tern.wait_log("%s is not in --accept-proxy-from: closed (0 more refused on this worker "
                      "since the last such line)" % refused)
        # Even one that sends nothing: it is not a probe.
        s2 = self.connect(source="127.0.0.3")
        self.expect_closed_without_tls(s2)
        self.assertEqual(tern.access_for(peer_text(*s2.getsockname()))["reason"],
                         "proxy_not_allowed")
        # From 127.0.0.2 it is taken, and the header names the client.
        c = self.client(sock=self.connect(source="127.0.0.2"),
                        prefix=v2_header("192.0.2.5", "192.0.2.2", 5555, 443))
        self.round_trip(c)
        self.close_client(c)
        self.assertEqual(tern.access_for("192.0.2.5:5555")["reason"], "done")
        self.expect_counters(tern, proxy_not_allowed=2, handshakes_full=1)
        self.finish(tern)

    def test_ipv6_ranges(self):
        if not have_ipv6():
            self.skipTest("no IPv6 loopback on this machine")
        port = free_port("::1")
        # ::/0 allows every IPv6 source, and no IPv4 one.
        tern = self.start("v1", allow=("::1/128",), listen=["[::1]:%d" % port])
        c = self.client(sock=self.connect(host="::1", port=port),
                        prefix=v1_header("192.0.2.61", "192.0.2.1", 6161, 443))
        self.round_trip(c)
        self.close_client(c)
        self.assertEqual(tern.access_for("192.0.2.61:6161")["reason"], "done")
        self.finish(tern)

        tern = self.start("v1", allow=("::/0",))
        s = self.connect()
        s.sendall(v1_header("192.0.2.62", "192.0.2.1", 6262, 443))
        self.expect_closed_without_tls(s)
        self.assertEqual(tern.access_for(peer_text(*s.getsockname()))["reason"],
                         "proxy_not_allowed")
        self.expect_counters(tern, proxy_not_allowed=1)
        self.finish(tern)

    # ---------------------------------------- probes, truncation, time

    def test_probes_and_truncated_headers(self):
        tern = self.start("any")
        # Connect and close: a probe, as without --accept-proxy.
        s = self.connect()
        probe = peer_text(*s.getsockname())
        s.close()
        self.assertEqual(tern.access_for(probe)["reason"], "probe")
        # A load balancer's health check: a LOCAL header, then nothing.
        # Still a probe, under the real address (LOCAL carries none).
        s = self.connect()
        check = peer_text(*s.getsockname())
        s.sendall(v2_header(local=True))
        s.shutdown(socket.SHUT_WR)
        self.expect_closed_without_tls(s)
        self.assertEqual(tern.access_for(check)["reason"], "probe")
        # Gone in the middle of a header: truncated, v1 and v2.
        for raw in (b"PROXY TCP4 192.0", v2_header("192.0.2.1", "192.0.2.2", 1, 2)[:20]):
            s = self.connect()
            half = peer_text(*s.getsockname())
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            self.expect_closed_without_tls(s)
            self.assertEqual(tern.access_for(half)["reason"], "proxy_header_truncated")
        self.expect_counters(tern, probe_connections=2, proxy_header_truncated=2)
        self.finish(tern)

    def test_header_timeout(self):
        tern = self.start("v1", extra=["--handshake-timeout", "1s"])
        s = self.connect()
        s.sendall(b"PROXY TCP4 ")
        start = time.monotonic()
        self.expect_closed_without_tls(s)
        self.assertGreaterEqual(time.monotonic() - start, 0.9, "closed before the timeout")
        self.assertEqual(tern.access_for(peer_text(*s.getsockname()))["reason"],
                         "proxy_header_timeout")
        self.expect_counters(tern, proxy_header_timeout=1)
        self.finish(tern)

    def test_metrics_by_reason(self):
        from test_metrics import parse_metrics
        tern = self.start_tern_with_metrics([self.echo_backend()], extra=[
            "--accept-proxy", "v1", "--accept-proxy-from", "127.0.0.2"])
        s = self.connect()  # from 127.0.0.1: not allowed
        self.expect_closed_without_tls(s)
        s = self.connect(source="127.0.0.2")
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        self.expect_closed_without_tls(s)
        for _ in range(2):
            s = self.connect(source="127.0.0.2")
            s.sendall(b"PROXY ")
            s.shutdown(socket.SHUT_WR)
            self.expect_closed_without_tls(s)
        self.expect_counters(tern, proxy_not_allowed=1, proxy_header_invalid=1,
                             proxy_header_truncated=2)
        conn = http.client.HTTPConnection("127.0.0.1", self.mport, timeout=scaled(5))
        conn.request("GET", "/metrics")
        m = parse_metrics(self, conn.getresponse().read().decode("ascii"))
        conn.close()
        series = "tern_accept_proxy_failures_total{reason=\"%s\"}"
        self.assertEqual({r: m[series % r] for r in ("not_allowed", "invalid", "truncated",
                                                     "timeout")},
                         {"not_allowed": 1, "invalid": 1, "truncated": 2, "timeout": 0})
        self.assertEqual(m["tern_handshake_failures_total"], 0)
        self.assertEqual(m["tern_probe_connections_total"], 0)
        self.finish(tern)

    # ------------------------------------------- on to the backend

    def test_proxy_protocol_to_backend_carries_the_client(self):
        for version in ("v1", "v2"):
            with self.subTest(version=version):
                be = self.backend(ProxyProtocolBackend)
                tern = self.start("any", backends=[be], extra=["--proxy-protocol", version])
                hdr = v2_header("203.0.113.80", "198.51.100.80", 8080, 8443)
                c = self.client(sock=self.connect(), prefix=hdr)
                self.round_trip(c, b"to the backend\n")
                h = wait_for(lambda: be.headers.get(0), 5, "the backend's header")
                self.assertNotIn("error", h)
                self.assertEqual((h["src"], h["sport"], h["dst"], h["dport"]),
                                 ("203.0.113.80", 8080, "198.51.100.80", 8443))
                if version == "v1":
                    self.assertEqual(h["raw"],
                                     b"PROXY TCP4 203.0.113.80 198.51.100.80 8080 8443\r\n")
                self.close_client(c)
                self.assertEqual(bytes(be.data[0]), b"to the backend\n")
                self.finish(tern)

    def test_local_header_keeps_the_real_addresses(self):
        be = self.backend(ProxyProtocolBackend)
        tern = self.start("v2", backends=[be], extra=["--proxy-protocol", "v1"])
        s = self.connect()
        real = s.getsockname()
        c = self.client(sock=s, prefix=v2_header(local=True))
        self.round_trip(c)
        h = wait_for(lambda: be.headers.get(0), 5, "the backend's header")
        self.assertEqual(h["raw"], b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n"
                         % (real[1], self.port))
        self.close_client(c)
        self.assertEqual(tern.access_for(peer_text(*real))["reason"], "done")
        self.finish(tern)

    # ------------------------------------------------- a real HAProxy

    @unittest.skipUnless(HAPROXY, "haproxy is not installed (Debian: apt-get install haproxy)")
    def test_haproxy_send_proxy(self):
        for send in ("send-proxy-v2", "send-proxy"):
            with self.subTest(send=send):
                be = self.backend(ProxyProtocolBackend)
                tern = self.start("v2" if send.endswith("v2") else "v1", backends=[be],
                                  extra=["--proxy-protocol", "v2"])
                hap = HAProxy(self, [("fe", "", "127.0.0.1:%d" % self.port, send)])
                port = hap.ports["fe"]
                c = self.client(port=port)
                self.round_trip(c, b"through haproxy\n")
                client = c.local_addr
                # tern saw the client, not HAProxy: in `conns`, in the
                # header it sends on, in the access log.
                tern.conn_of(peer_text(*client))
                h = wait_for(lambda: be.headers.get(0), 5, "the backend's header")
                self.assertNotIn("error", h)
                self.assertEqual((h["src"], h["sport"], h["dst"], h["dport"]),
                                 ("127.0.0.1", client[1], "127.0.0.1", port))
                self.assertEqual(h["ssl_sub"].get(0x21), c.version().encode())
                self.close_client(c)
                self.assertEqual(tern.access_for(peer_text(*client))["reason"], "done")
                self.expect_counters(tern, handshakes_full=1)
                self.finish(tern)
                self.assertEqual(hap.stop(), 0)


if __name__ == "__main__":
    main()
