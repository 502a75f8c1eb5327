"""--proxy-protocol (SPEC section 2): the header every backend connection
starts with, checked by a backend that decodes PROXY v1 and v2 itself
(HAProxy's doc/proxy-protocol.txt, CRC32C included) and then echoes: the
client's real address and port, the address it connected to, the SNI, the
TLS version and cipher it negotiated, the ALPN protocol, the client
certificate (CN, DER, verify result, whether it came in this connection or
only in the resumed session), and then exactly the client's bytes. With the
flag off (or absent) the backend sees the client's bytes alone."""

import os
import socket
import ssl
import struct
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Backend, TernTestCase, client_context, free_port, main,  # noqa: E402
                     run_threads, scaled, wait_for)

V2_SIG = b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ CRC32C_TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


class ProtocolError(Exception):
    pass


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ProtocolError("EOF after %d of %d header bytes" % (len(data), n))
        data += chunk
    return data


def parse_tlvs(data):
    """[(type, value)] of a TLV sequence; raises on a truncated one."""
    out = []
    at = 0
    while at < len(data):
        if len(data) - at < 3:
            raise ProtocolError("truncated TLV header at %d" % at)
        t, n = data[at], struct.unpack(">H", data[at + 1:at + 3])[0]
        if len(data) - at - 3 < n:
            raise ProtocolError("TLV 0x%02x of %d bytes overruns the header" % (t, n))
        out.append((t, data[at + 3:at + 3 + n]))
        at += 3 + n
    return out


def read_proxy_header(conn):
    """Reads one PROXY header (v1 or v2) from conn, byte-exact: nothing
    after it is consumed. Returns a dict describing it."""
    first = recv_exact(conn, 5)
    if first == b"PROXY":
        line = first
        while not line.endswith(b"\r\n"):
            if len(line) >= 107:
                raise ProtocolError("v1 line without CRLF in 107 bytes: %r" % line)
            line += recv_exact(conn, 1)
        fields = line[:-2].decode("ascii").split(" ")
        h = {"version": 1, "raw": line, "proto": fields[1]}
        if fields[1] == "UNKNOWN":
            return h
        if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
            raise ProtocolError("bad v1 line %r" % line)
        family = socket.AF_INET if fields[1] == "TCP4" else socket.AF_INET6
        for text in fields[2:4]:
            # Canonical text: what the address parses to, printed back
            # (IPv4: no leading zeros; IPv6: RFC 5952).
            if socket.inet_ntop(family, socket.inet_pton(family, text)) != text:
                raise ProtocolError("non-canonical address %r in %r" % (text, line))
        for text in fields[4:6]:
            if not text.isdigit() or str(int(text)) != text or int(text) > 65535:
                raise ProtocolError("bad port %r in %r" % (text, line))
        h.update(src=fields[2], dst=fields[3], sport=int(fields[4]), dport=int(fields[5]))
        return h
    fixed = first + recv_exact(conn, 7)
    if fixed[:12] != V2_SIG:
        raise ProtocolError("neither v1 nor v2: %r" % fixed)
    fixed += recv_exact(conn, 4)
    ver_cmd, fam, length = fixed[12], fixed[13], struct.unpack(">H", fixed[14:16])[0]
    body = recv_exact(conn, length)
    raw = fixed + body
    if ver_cmd not in (0x20, 0x21):
        raise ProtocolError("bad version/command 0x%02x" % ver_cmd)
    h = {"version": 2, "raw": raw, "command": ver_cmd & 0x0F, "fam": fam}
    if fam == 0x11:
        if length < 12:
            raise ProtocolError("short IPv4 address block")
        h["src"] = socket.inet_ntop(socket.AF_INET, body[0:4])
        h["dst"] = socket.inet_ntop(socket.AF_INET, body[4:8])
        h["sport"], h["dport"] = struct.unpack(">HH", body[8:12])
        tlv_at = 12
    elif fam == 0x21:
        if length < 36:
            raise ProtocolError("short IPv6 address block")
        h["src"] = socket.inet_ntop(socket.AF_INET6, body[0:16])
        h["dst"] = socket.inet_ntop(socket.AF_INET6, body[16:32])
        h["sport"], h["dport"] = struct.unpack(">HH", body[32:36])
        tlv_at = 36
    elif fam == 0x00:
        tlv_at = 0
    else:
        raise ProtocolError("unexpected family/transport 0x%02x" % fam)
    tlvs = parse_tlvs(body[tlv_at:])
    h["tlv_types"] = [t for t, _ in tlvs]
    h["tlvs"] = {}
    for t, v in tlvs:
        if t in h["tlvs"]:
            raise ProtocolError("TLV 0x%02x twice" % t)
        h["tlvs"][t] = v
    # CRC32C (section 2.2.3): over the whole header with the field zeroed.
    h["crc_ok"] = None
    at = 16 + tlv_at
    for t, v in tlvs:
        if t == 0x03:
            if len(v) != 4:
                raise ProtocolError("CRC32C TLV of %d bytes" % len(v))
            zeroed = raw[:at + 3] + b"\0\0\0\0" + raw[at + 7:]
            h["crc_ok"] = crc32c(zeroed) == struct.unpack(">I", v)[0]
        at += 3 + len(v)
    if 0x20 in h["tlvs"]:
        v = h["tlvs"][0x20]
        if len(v) < 5:
            raise ProtocolError("PP2_TYPE_SSL of %d bytes" % len(v))
        h["ssl_client"] = v[0]
        h["ssl_verify"] = struct.unpack(">I", v[1:5])[0]
        h["ssl_sub"] = dict(parse_tlvs(v[5:]))
    return h


class ProxyProtocolBackend(Backend):
    """Reads the PROXY header, records it, then echoes everything after it
    and records those bytes too (by connection index)."""

    def __init__(self, tc, **kw):
        self.headers = {}
        self.data = {}
        self.done = threading.Event()
        super().__init__(tc, **kw)

    def handle(self, conn, index):
        try:
            h = read_proxy_header(conn)
        except (ProtocolError, UnicodeDecodeError, ValueError, IndexError) as e:
            with self.lock:
                self.headers[index] = {"error": str(e)}
            return
        with self.lock:
            self.headers[index] = h
            self.data[index] = bytearray()
        while True:
            data = conn.recv(65536)
            if not data:
                break
            with self.lock:
                self.data[index] += data
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)


class RawEchoBackend(Backend):
    """Echoes and records every byte, from the very first one."""

    def __init__(self, tc, **kw):
        self.data = {}
        super().__init__(tc, **kw)

    def handle(self, conn, index):
        with self.lock:
            self.data[index] = bytearray()
        while True:
            data = conn.recv(65536)
            if not data:
                break
            with self.lock:
                self.data[index] += data
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)


def openssl(tc, *args):
    r = subprocess.run(["openssl"] + list(args), cwd=tc.tmp, capture_output=True,
                       timeout=scaled(60))
    if r.returncode != 0:
        raise AssertionError("openssl %s failed: %s"
                             % (" ".join(args), r.stderr.decode(errors="replace")))


def client_ca_and_cert(tc, cn):
    """A CA and a client certificate it issued, with the openssl command:
    (CA certificate path, client certificate path, client key path)."""
    p = lambda name: os.path.join(tc.tmp, name)  # noqa: E731
    openssl(tc, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", p("ca.key"))
    openssl(tc, "req", "-new", "-x509", "-key", p("ca.key"), "-out", p("ca.crt"), "-days", "2",
            "-subj", "/CN=pp test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
    openssl(tc, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", p("client.key"))
    openssl(tc, "req", "-new", "-key", p("client.key"), "-out", p("client.csr"),
            "-subj", "/O=tern tests/CN=%s" % cn)
    with open(p("client.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    openssl(tc, "x509", "-req", "-in", p("client.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
            "-set_serial", "4097", "-days", "2", "-extfile", p("client.ext"),
            "-out", p("client.crt"))
    return p("ca.crt"), p("client.crt"), p("client.key")


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class TestProxyProtocol(TernTestCase):

    def round_trip(self, c, payload):
        """Sends payload, expects it echoed, closes cleanly."""
        self.assertEqual(c.exchange(payload, expect=len(payload)), payload)
        c.shut_write("close_notify")
        c.recv_until_close()

    def header_of(self, be, c):
        """The header the backend got for client c (matched by the
        client's source port, which every header here carries)."""
        port = c.local_addr[1]

        def find():
            with be.lock:
                for i, h in be.headers.items():
                    if "error" in h or h.get("sport") == port:
                        return i, h
            return None
        index, h = wait_for(find, 5, "PROXY header for client port %d" % port)
        self.assertNotIn("error", h, "backend could not parse the header")
        return index, h

    def check_v2_tls(self, h, c, sni):
        self.assertEqual(h["command"], 0x1, "PROXY command")
        self.assertIs(h["crc_ok"], True, "CRC32C TLV present and valid")
        # CRC32C first, then ALPN (none: no --alpn in these tests),
        # AUTHORITY when the client sent SNI, then SSL.
        want_types = [0x03] + ([0x02] if sni else []) + [0x20]
        self.assertEqual(h["tlv_types"], want_types)
        if sni:
            self.assertEqual(h["tlvs"][0x02], sni.encode())
        # PP2_CLIENT_SSL alone: no client certificate, so verify is
        # non-zero (section 2.2.6: zero only for a verified certificate).
        self.assertEqual(h["ssl_client"], 0x01)
        self.assertNotEqual(h["ssl_verify"], 0)
        sub = h["ssl_sub"]
        self.assertEqual(sub.get(0x21), c.version().encode(), "PP2_SUBTYPE_SSL_VERSION")
        self.assertEqual(sub.get(0x23), c.cipher()[0].encode(), "PP2_SUBTYPE_SSL_CIPHER")
        self.assertNotIn(0x22, sub, "no CN without a client certificate")
        self.assertNotIn(0x28, sub, "no client certificate TLV without one")

    # ------------------------------------------------------------- v1

    def test_v1_ipv4(self):
        be = self.backend(ProxyProtocolBackend)
        tern = self.start_tern([be], extra=["--proxy-protocol", "v1"])
        c = self.client().handshake()
        payload = os.urandom(100000)
        self.round_trip(c, payload)
        index, h = self.header_of(be, c)
        self.assertEqual(h["raw"], b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n"
                         % (c.local_addr[1], self.port))
        self.assertEqual(bytes(be.data[index]), payload)
        tern.stop_ok()

    def test_v1_ipv6(self):
        if not have_ipv6():
            self.skipTest("no IPv6 loopback on this machine")
        be = self.backend(ProxyProtocolBackend)
        port = free_port("::1")
        tern = self.start_tern([be], listen=["[::1]:%d" % port],
                               extra=["--proxy-protocol", "v1"])
        c = self.client(port=port, host="::1").handshake()
        self.round_trip(c, b"hello over IPv6\n")
        index, h = self.header_of(be, c)
        self.assertEqual(h["raw"], b"PROXY TCP6 ::1 ::1 %d %d\r\n" % (c.local_addr[1], port))
        self.assertEqual(bytes(be.data[index]), b"hello over IPv6\n")
        tern.stop_ok()

    def test_v1_without_access_log(self):
        # The peer address is otherwise only looked up for the access log.
        be = self.backend(ProxyProtocolBackend)
        tern = self.start_tern([be], access_log=False, extra=["--proxy-protocol", "v1"])
        c = self.client().handshake()
        self.round_trip(c, b"x")
        _, h = self.header_of(be, c)
        self.assertEqual(h["raw"], b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n"
                         % (c.local_addr[1], self.port))
        tern.stop_ok()

    # ------------------------------------------------------------- v2

    def test_v2_tls13(self):
        be = self.backend(ProxyProtocolBackend)
        tern = self.start_tern([be], extra=["--proxy-protocol", "v2"])
        ctx = client_context(min_version=ssl.TLSVersion.TLSv1_3)
        c = self.client(ctx=ctx, server_hostname="localhost").handshake()
        self.assertEqual(c.version(), "TLSv1.3")
        payload = os.urandom(300000)
        self.round_trip(c, payload)
        index, h = self.header_of(be, c)
        self.assertEqual(h["fam"], 0x11)
        self.assertEqual((h["src"], h["sport"]), ("127.0.0.1", c.local_addr[1]))
        self.assertEqual((h["dst"], h["dport"]), ("127.0.0.1", self.port))
        self.check_v2_tls(h, c, "localhost")
        self.assertEqual(h["ssl_sub"][0x21], b"TLSv1.3")
        # The header, then exactly the client's bytes.
        self.assertEqual(bytes(be.data[index]), payload)
        tern.stop_ok()

    def test_v2_tls12(self):
        be = self.backend(ProxyProtocolBackend)
        tern = self.start_tern([be], extra=["--proxy-protocol", "v2"])
        ctx = client_context(max_version=ssl.TLSVersion.TLSv1_2)
        c = self.client(ctx=ctx, server_hostname="localhost").handshake()
        self.assertEqual(c.version(), "TLSv1.2")
        self.round_trip(c, b"GET / HTTP/1.0\r\n\r\n")
        index, h = self.header_of(be, c)
        self.check_v2_tls(h, c, "localhost")
        self.assertEqual(h["ssl_sub"][0x21], b"TLSv1.2")
        self.assertEqual(bytes(be.data[index]), b"GET / HTTP/1.0\r\n\r\n")
        tern.stop_ok()

    def test_v2_other_sni_and_none(self):
        be = self.backend(ProxyProtocolBackend)
        tern = self.start_tern([be], extra=["--proxy-protocol", "v2"])
        c1 = self.client(server_hostname="app.example.com").handshake()
        self.round_trip(c1, b"one")
        _, h1 = self.header_of(be, c1)
        self.check_v2_tls(h1, c1, "app.example.com")
        # No SNI at all (an IP address as the name sends none): no
        # AUTHORITY TLV.
        c2 = self.client(server_hostname=None).handshake()
        self.round_trip(c2, b"two")
        _, h2 = self.header_of(be, c2)
        self.check_v2_tls(h2, c2, None)
        tern.stop_ok()

    def test_v2_ipv6(self):
        if not have_ipv6():
            self.skipTest("no IPv6 loopback on this machine")
        be = self.backend(ProxyProtocolBackend)
        port = free_port("::1")
        tern = self.start_tern([be], listen=["[::1]:%d" % port],
                               extra=["--proxy-protocol", "v2"])
        c = self.client(port=port, host="::1").handshake()
        self.round_trip(c, b"six")
        index, h = self.header_of(be, c)
        self.assertEqual(h["fam"], 0x21)
        self.assertEqual((h["src"], h["sport"]), ("::1", c.local_addr[1]))
        self.assertEqual((h["dst"], h["dport"]), ("::1", port))
        self.check_v2_tls(h, c, "localhost")
        self.assertEqual(bytes(be.data[index]), b"six")
        tern.stop_ok()

    def test_v2_concurrent_clients_each_get_their_own(self):
        be = self.backend(ProxyProtocolBackend)
        tern = self.start_tern([be], extra=["--proxy-protocol", "v2"])
        results = {}

        def one(i):
            c = self.client(server_hostname="c%d.example" % i).handshake()
            payload = os.urandom(1000 + 997 * i)
            self.round_trip(c, payload)
            results[i] = (c, payload)

        run_threads(one, [(i,) for i in range(20)], timeout=60)
        for i, (c, payload) in sorted(results.items()):
            index, h = self.header_of(be, c)
            self.check_v2_tls(h, c, "c%d.example" % i)
            self.assertEqual(bytes(be.data[index]), payload)
        self.assertEqual(tern.stop_ok()["conns_total"], 20)

    def test_client_speaks_first_before_backend_connects(self):
        # The client's data is in tern before the backend connect
        # completes: it must still come after the header, whole.
        be = self.backend(ProxyProtocolBackend)
        tern = self.start_tern([be], extra=["--proxy-protocol", "v2", "--buffer-size", "1k"])
        c = self.client().handshake()
        payload = os.urandom(200000)
        self.assertEqual(c.exchange(payload, expect=len(payload), then="close_notify"), payload)
        c.recv_until_close()
        index, h = self.header_of(be, c)
        self.assertIs(h["crc_ok"], True)
        self.assertEqual(bytes(be.data[index]), payload)
        tern.stop_ok()

    # ------------------------------------------- mTLS and ALPN (v2)

    def test_v2_client_certificate_and_alpn(self):
        ca, crt, key = client_ca_and_cert(self, "proxy client")
        with open(crt) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        be = self.backend(ProxyProtocolBackend)
        tern = self.start_tern([be], extra=["--proxy-protocol", "v2", "--alpn", "h2,http/1.1",
                                            "--client-ca", ca, "--verify-client", "optional"])
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version):
                ctx = client_context(min_version=version, max_version=version)
                ctx.load_cert_chain(crt, key)
                ctx.set_alpn_protocols(["http/1.1", "h2"])
                c = self.client(ctx=ctx, server_hostname="localhost").handshake()
                self.assertEqual(c.obj.selected_alpn_protocol(), "h2")
                self.round_trip(c, b"with a certificate")
                index, h = self.header_of(be, c)
                self.assertIs(h["crc_ok"], True)
                self.assertEqual(h["tlv_types"], [0x03, 0x01, 0x02, 0x20])
                self.assertEqual(h["tlvs"][0x01], b"h2")
                # TLS, a certificate in this connection and its session,
                # verified: verify is 0.
                self.assertEqual(h["ssl_client"], 0x07)
                self.assertEqual(h["ssl_verify"], 0)
                sub = h["ssl_sub"]
                self.assertEqual(sub.get(0x21), c.version().encode())
                self.assertEqual(sub.get(0x22), b"proxy client")
                self.assertEqual(sub.get(0x23), c.cipher()[0].encode())
                self.assertEqual(sub.get(0x28), der, "PP2_SUBTYPE_SSL_CLIENT_CERT is the DER")
                self.assertEqual(bytes(be.data[index]), b"with a certificate")

        # optional: no certificate is fine, and says so.
        c = self.client(server_hostname="localhost").handshake()
        self.round_trip(c, b"without")
        _, h = self.header_of(be, c)
        self.check_v2_tls(h, c, "localhost")
        tern.stop_ok()

    def test_v2_resumed_session_keeps_the_certificate(self):
        ca, crt, key = client_ca_and_cert(self, "resuming client")
        be = self.backend(ProxyProtocolBackend)
        tern = self.start_tern([be], workers=1,
                               extra=["--proxy-protocol", "v2", "--client-ca", ca,
                                      "--verify-client", "require"])
        ctx = client_context(max_version=ssl.TLSVersion.TLSv1_2)
        ctx.load_cert_chain(crt, key)
        c1 = self.client(ctx=ctx).handshake()
        self.round_trip(c1, b"first")
        session = c1.obj.session
        c2 = self.client(ctx=ctx, session=session).handshake()
        self.assertTrue(c2.obj.session_reused, "the second connection did not resume")
        self.round_trip(c2, b"second")
        _, h1 = self.header_of(be, c1)
        _, h2 = self.header_of(be, c2)
        self.assertEqual(h1["ssl_client"], 0x07)
        # Resumed: the certificate belongs to the session, not presented
        # again on this connection.
        self.assertEqual(h2["ssl_client"], 0x05)
        self.assertEqual(h2["ssl_verify"], 0)
        self.assertEqual(h2["ssl_sub"].get(0x22), b"resuming client")
        self.assertEqual(h2["ssl_sub"].get(0x28), h1["ssl_sub"].get(0x28))
        tern.stop_ok()

    # ------------------------------------------------------------ off

    def test_off_sends_nothing_extra(self):
        for extra in ([], ["--proxy-protocol", "off"]):
            with self.subTest(extra=extra):
                be = self.backend(RawEchoBackend)
                tern = self.start_tern([be], extra=extra)
                c = self.client().handshake()
                payload = b"PROXY-free bytes\r\n" + os.urandom(5000)
                self.round_trip(c, payload)
                wait_for(lambda: be.data.get(0) is not None and len(be.data[0]) >= len(payload),
                         5, "backend to get the payload")
                self.assertEqual(bytes(be.data[0]), payload)
                tern.stop_ok()

    def test_bad_value_exits_2(self):
        r = self.run_tern(["--listen", "127.0.0.1:%d" % free_port(), "--proxy-protocol", "v3"])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr,
                         "tern: --proxy-protocol: invalid value 'v3' (expected off, v1 or v2)\n")


if __name__ == "__main__":
    main()
