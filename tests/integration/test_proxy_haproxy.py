"""--proxy-protocol cross-checked against HAProxy: the same client (Python
ssl, ALPN h2, SNI localhost, TLS 1.3 and TLS 1.2, with and without a client
certificate) connects once to tern and once to HAProxy 2.6 in TCP mode
(`send-proxy-v2-ssl-cn`, or `send-proxy` for v1), both holding the same
certificate and key, each in front of a backend that decodes the PROXY
header (test_proxy_protocol's decoder) and then echoes. The two headers are
compared field by field and then byte for byte.

They differ only where docs/proxy-protocol.md ("Compared with HAProxy") and
include/tern/proxy_proto.h say they do, and the tests assert each of those
differences explicitly:
- `verify` with no client certificate: tern sends 1 (section 2.2.6: zero
  only for a verified certificate), HAProxy 0;
- PP2_SUBTYPE_SSL_CLIENT_CERT (0x28, the DER certificate): tern only;
- PP2_TYPE_CRC32C, PP2_TYPE_AUTHORITY and PP2_SUBTYPE_SSL_CIPHER: tern
  always sends them (AUTHORITY when the client sent SNI); HAProxy only with
  `proxy-v2-options crc32c,authority,ssl-cipher`. Each test runs HAProxy
  twice over: with those options (the whole header must then be tern's,
  byte for byte, once ports, that verify value and 0x28 are accounted
  for) and with plain `send-proxy-v2-ssl-cn` (HAProxy's default output);
- PP2_SUBTYPE_SSL_CN of a CN that is not a UTF8String or ASCII: tern
  sends UTF-8 (docs/proxy-protocol.md, and the specification's "in UTF8"), HAProxy 2.6
  the string's raw contents (Latin-1 for a T61String, UTF-16BE for a
  BMPString); see test_v2_cn_string_types.
The ports differ by construction: each header carries its own client's
source port and the port that client connected to.

Needs the `haproxy` command (Debian's haproxy package; CI installs it): the
whole file is skipped without it. HAProxy runs as a child process on
loopback ports (`haproxy -f CFG -db`), never as the system service; its
output is printed when a test fails."""

import copy
import itertools
import os
import shutil
import signal
import ssl
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TernTestCase, client_context, free_port, main, scaled, wait_for  # noqa: E402
from test_proxy_protocol import (ProxyProtocolBackend, crc32c, have_ipv6,  # noqa: E402
                                 openssl, parse_tlvs)


def find_haproxy():
    path = shutil.which("haproxy")
    if path:
        return path
    for candidate in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


HAPROXY = find_haproxy()

# What HAProxy 2.6 adds beside send-proxy-v2-ssl-cn to send everything tern
# does (minus 0x28, which it cannot send).
FULL_OPTIONS = ("crc32c", "authority", "ssl-cipher")
# The same cipher lists on both sides (tern's defaults, docs/tls.md), both with
# the server's preference (tern's SSL_OP_CIPHER_SERVER_PREFERENCE,
# HAProxy's default): the same client then gets the same cipher from both,
# so SSL_CIPHER can be compared byte for byte.
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
CIPHERSUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

PP2_ALPN, PP2_AUTHORITY, PP2_CRC32C, PP2_SSL = 0x01, 0x02, 0x03, 0x20
SUB_VERSION, SUB_CN, SUB_CIPHER, SUB_CLIENT_CERT = 0x21, 0x22, 0x23, 0x28
CLIENT_SSL, CERT_CONN, CERT_SESS = 0x01, 0x02, 0x04
TERN_VERIFY_NO_CERT = 1  # include/tern/proxy_proto.h TERN_PP2_VERIFY_NO_CERT


# ------------------------------------------------------------ v2 bytes

def hexdump(data):
    return " ".join("%02x" % b for b in data)


def tlv(t, value):
    return bytes([t]) + struct.pack(">H", len(value)) + value


def split_v2(raw):
    """A v2 header as its parts, every TLV kept in order: {"head": the
    first 14 bytes (signature, ver_cmd, fam), "addr": the address block,
    "tlvs": [[type, value]]}, with PP2_TYPE_SSL's value as
    [client, verify, [[subtype, value]]]. join_v2() gives the bytes back."""
    fam = raw[13]
    addr_len = {0x11: 12, 0x21: 36, 0x00: 0}[fam]
    length = struct.unpack(">H", raw[14:16])[0]
    assert len(raw) == 16 + length, "header length field %d, %d bytes" % (length, len(raw))
    parts = {"head": raw[:14], "addr": raw[16:16 + addr_len], "tlvs": []}
    for t, v in parse_tlvs(raw[16 + addr_len:]):
        if t == PP2_SSL:
            v = [v[0], struct.unpack(">I", v[1:5])[0], [list(s) for s in parse_tlvs(v[5:])]]
        parts["tlvs"].append([t, v])
    return parts


def join_v2(parts):
    """The bytes of split_v2()'s parts; a CRC32C TLV is recomputed."""
    body = bytearray(parts["addr"])
    crc_at = None
    for t, v in parts["tlvs"]:
        if t == PP2_SSL:
            client, verify, subs = v
            v = bytes([client]) + struct.pack(">I", verify) + b"".join(tlv(s, sv) for s, sv in subs)
        elif t == PP2_CRC32C:
            crc_at = 16 + len(body) + 3
            v = b"\0\0\0\0"
        body += tlv(t, v)
    raw = bytearray(parts["head"] + struct.pack(">H", len(body)) + body)
    if crc_at is not None:
        raw[crc_at:crc_at + 4] = struct.pack(">I", crc32c(bytes(raw)))
    return bytes(raw)


def set_ports(parts, sport, dport):
    addr = parts["addr"]
    parts["addr"] = addr[:-4] + struct.pack(">HH", sport, dport)


def ssl_tlv(parts):
    for t, v in parts["tlvs"]:
        if t == PP2_SSL:
            return v
    return None


# ------------------------------------------------------------- HAProxy

class HAProxy:
    """One `haproxy -f CFG -db` child: frontends in TCP mode, each on a free
    loopback port with TLS, each sending a PROXY header to its own
    server. stdout and stderr go to a file in the test's directory."""

    _made = itertools.count()  # names each one's files

    def __init__(self, tc, frontends, host="127.0.0.1"):
        """frontends: [(name, bind options after `ssl crt PEM`, server
        address "HOST:PORT", server options)]. self.ports[name]: the port."""
        self.tc = tc
        self.host = host
        self.proc = self._log = None
        self.cfg = os.path.join(tc.tmp, "haproxy-%d.cfg" % next(HAProxy._made))
        self.log_path = self.cfg[:-len(".cfg")] + ".log"
        self.args = [HAPROXY, "-f", self.cfg, "-db"]
        tc.addCleanup(self._cleanup)
        for attempt in range(3):
            ports = [free_port(host) for _ in frontends]
            while len(set(ports)) != len(ports):
                ports = [free_port(host) for _ in frontends]
            self.ports = {f[0]: port for f, port in zip(frontends, ports)}
            with open(self.cfg, "w") as f:
                f.write(self._config(frontends))
            if self._log:
                self._log.close()
            self._log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT, cwd=tc.tmp)
            if self._wait_listening():
                return
            # free_port() raced with another process for one of the ports:
            # HAProxy said so and exited; try other ports.
            if attempt == 2 or "cannot bind socket" not in self.log():
                raise AssertionError("haproxy exited with %s before listening:\n%s"
                                     % (self.proc.returncode, self.log()))

    def _config(self, frontends):
        bind_host = "[%s]" % self.host if ":" in self.host else self.host
        out = ["global",
               "    maxconn 256",
               "    nbthread 1",
               "    log stderr format raw local0 info",
               "defaults",
               "    mode tcp",
               "    log global",
               "    option tcplog",
               "    timeout connect %ds" % scaled(5),
               "    timeout client %ds" % scaled(30),
               "    timeout server %ds" % scaled(30),
               ""]
        for name, bind_opts, server, server_opts in frontends:
            out += ["frontend fe_%s" % name,
                    "    bind %s:%d %s" % (bind_host, self.ports[name], bind_opts),
                    "    default_backend be_%s" % name,
                    "backend be_%s" % name,
                    "    server be %s %s" % (server, server_opts),
                    ""]
        return "\n".join(out)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _listening(self, port):
        """True when some socket listens on host:port (/proc/net/tcp*)."""
        table = "/proc/net/tcp6" if ":" in self.host else "/proc/net/tcp"
        want = ":%04X" % port
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1].endswith(want) and fields[3] == "0A":
                    return True
        return False

    def _wait_listening(self, timeout=10):
        def ready():
            if self.proc.poll() is not None:
                return "exited"
            return all(self._listening(p) for p in self.ports.values()) and "up"
        if wait_for(ready, timeout, "haproxy listening on %s" % sorted(self.ports.values())) \
                == "exited":
            return False
        return True

    def stop(self, timeout=10):
        """SIGUSR1 (soft stop: HAProxy exits once its connections are
        done; SIGTERM kills it without a status), bounded wait; returns the
        exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)
        try:
            return self.proc.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError("haproxy did not exit within %.1fs of SIGUSR1" % scaled(timeout))

    def _cleanup(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=scaled(5))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        self._log.close()
        # Kept for the failure report: the temporary directory is gone by
        # the time TernTestCase.run() prints.
        with open(self.cfg) as f:
            cfg = f.read()
        self.tc.add_failure_report("\n----- %s -----\n%s\n----- its output -----\n%s"
                                   "----- end -----\n" % (" ".join(self.args), cfg, self.log()))


# ----------------------------------------------------------- the tests

def make_ca(tc):
    """A CA for client certificates: its certificate and key paths."""
    p = lambda name: os.path.join(tc.tmp, name)  # noqa: E731
    openssl(tc, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", p("ca.key"))
    openssl(tc, "req", "-new", "-x509", "-key", p("ca.key"), "-out", p("ca.crt"), "-days", "2",
            "-subj", "/CN=pp cross-check CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
    return p("ca.crt"), p("ca.key")


def issue_client_cert(tc, ca, name, cn, string_mask="utf8only"):
    """A client certificate from ca (make_ca's pair) with subject
    O=tern tests, CN=cn. cn is given in UTF-8 (openssl req -utf8) and
    encoded as openssl's `string_mask` says: "utf8only" a UTF8String,
    "default" the narrowest of PrintableString, T61String (Latin-1) and
    BMPString (UTF-16BE). Returns (certificate path, key path, DER)."""
    p = lambda suffix: os.path.join(tc.tmp, name + suffix)  # noqa: E731
    with open(p(".cnf"), "w") as f:
        f.write("[req]\ndistinguished_name = dn\nstring_mask = %s\n[dn]\n"
                "[ext]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = clientAuth\n"
                % string_mask)
    openssl(tc, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", p(".key"))
    openssl(tc, "req", "-new", "-utf8", "-config", p(".cnf"), "-key", p(".key"),
            "-out", p(".csr"), "-subj", "/O=tern tests/CN=%s" % cn)
    openssl(tc, "x509", "-req", "-in", p(".csr"), "-CA", ca[0], "-CAkey", ca[1],
            "-set_serial", str(4096 + len(os.listdir(tc.tmp))), "-days", "2",
            "-extfile", p(".cnf"), "-extensions", "ext", "-out", p(".crt"))
    with open(p(".crt")) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return p(".crt"), p(".key"), der


def subject_cn_tag(der):
    """The ASN.1 tag of the subject CN's string in a certificate: 0x0c
    UTF8String, 0x13 PrintableString, 0x14 T61String, 0x1e BMPString.
    The subject comes after the issuer: the last commonName in the DER."""
    at = der.rindex(b"\x06\x03\x55\x04\x03")
    return der[at + 5]


VERSIONS = (("TLSv1.3", ssl.TLSVersion.TLSv1_3), ("TLSv1.2", ssl.TLSVersion.TLSv1_2))
CN = "prøxy client \u2713"  # a UTF8String: both send these UTF-8 bytes


@unittest.skipUnless(HAPROXY, "haproxy is not installed (Debian: apt-get install haproxy; "
                     ".ci/run installs it): nothing to cross-check tern's PROXY headers with")
class TestProxyHeadersAgainstHAProxy(TernTestCase):

    # --- setup

    def start_pair(self, version="v2", mtls=False, host="127.0.0.1", workers=2):
        """tern and HAProxy with the same certificate, each before its own
        decoding backend. v2: HAProxy frontends "full" (with
        FULL_OPTIONS) and "plain" (send-proxy-v2-ssl-cn alone). v1: one
        frontend "v1" (send-proxy). mtls: --client-ca + --verify-client
        optional, and `ca-file CA verify optional`. Returns a dict."""
        cert = self.default_cert()["cert"]  # certificate and key, one PEM
        env = {"cert": cert}
        extra = ["--proxy-protocol", version, "--alpn", "h2,http/1.1",
                 "--ciphers", CIPHERS, "--ciphersuites", CIPHERSUITES]
        bind = "ssl crt %s alpn h2,http/1.1 ciphers %s ciphersuites %s" % (
            cert, CIPHERS, CIPHERSUITES)
        if mtls:
            env["ca"] = ca = make_ca(self)
            env["crt"], env["key"], env["der"] = issue_client_cert(self, ca, "client", CN)
            env["cn"] = CN
            extra += ["--client-ca", ca[0], "--verify-client", "optional"]
            bind += " ca-file %s verify optional" % ca[0]
        env["tern_be"] = self.backend(ProxyProtocolBackend)
        listen = None
        if ":" in host:
            listen = ["[%s]:%d" % (host, free_port(host))]
        env["tern"] = self.start_tern([env["tern_be"]], extra=extra, listen=listen,
                                      workers=workers)
        env["tern_port"] = int(listen[0].rsplit(":", 1)[1]) if listen else self.port
        fronts = []
        if version == "v2":
            names = (("full", "send-proxy-v2-ssl-cn proxy-v2-options %s" % ",".join(FULL_OPTIONS)),
                     ("plain", "send-proxy-v2-ssl-cn"))
        else:
            names = (("v1", "send-proxy"),)
        for name, opts in names:
            be = env["be_" + name] = self.backend(ProxyProtocolBackend)
            fronts.append((name, bind, be.addr, opts))
        env["haproxy"] = HAProxy(self, fronts, host=host)
        return env

    def context(self, tls_version, with_cert, env):
        """with_cert: False, True (env's client certificate) or a
        (certificate, key) pair."""
        ctx = client_context(min_version=tls_version, max_version=tls_version)
        ctx.set_alpn_protocols(["h2"])
        if with_cert is True:
            ctx.load_cert_chain(env["crt"], env["key"])
        elif with_cert:
            ctx.load_cert_chain(*with_cert)
        return ctx

    def connect(self, port, ctx, host="127.0.0.1", server_hostname="localhost", session=None):
        """One client connection: handshake, a round trip, a clean close."""
        c = self.client(port=port, host=host, ctx=ctx, server_hostname=server_hostname,
                        session=session).handshake()
        payload = b"cross-check %d\n" % c.local_addr[1]
        self.assertEqual(c.exchange(payload, expect=len(payload)), payload)
        c.shut_write("close_notify")
        c.recv_until_close()
        return c

    def header_of(self, be, c, who):
        port = c.local_addr[1]

        def find():
            with be.lock:
                for i, h in be.headers.items():
                    if "error" in h or h.get("sport") == port:
                        return i, h
            return None
        index, h = wait_for(find, 5, "%s's PROXY header for client port %d" % (who, port))
        self.assertNotIn("error", h, "%s's backend could not parse the header" % who)
        return h

    # --- comparison

    def check_addresses(self, h, c, port, who, host="127.0.0.1"):
        fam = 0x21 if ":" in host else 0x11
        self.assertEqual(h["command"], 0x1, "%s: command PROXY" % who)
        self.assertEqual(h["fam"], fam, "%s: family/transport" % who)
        self.assertEqual((h["src"], h["sport"]), (host, c.local_addr[1]),
                         "%s: source is the client's address and port" % who)
        self.assertEqual((h["dst"], h["dport"]), (host, port),
                         "%s: destination is the address and port the client connected to" % who)

    def compare_v2(self, ht, ct, tern_port, hh, ch, ha_port, options, cert_der=None,
                   host="127.0.0.1", cn=CN, haproxy_cn=None):
        """tern's header ht (client ct, which connected to tern_port)
        against HAProxy's hh (client ch, ha_port), HAProxy configured with
        `options` (proxy-v2-options) beside send-proxy-v2-ssl-cn. With a
        certificate (cert_der), cn is its subject CN; haproxy_cn the bytes
        HAProxy sends for it when they are not tern's UTF-8 (see
        test_v2_cn_string_types)."""
        why = "\n  tern:    %s\n  haproxy: %s" % (hexdump(ht["raw"]), hexdump(hh["raw"]))
        self.check_addresses(ht, ct, tern_port, "tern", host)
        self.check_addresses(hh, ch, ha_port, "haproxy", host)
        self.assertEqual(ct.version(), ch.version(), "both clients negotiated the same version")
        self.assertEqual(ct.cipher()[0], ch.cipher()[0],
                         "both clients negotiated the same cipher (else the configurations "
                         "differ, not the headers)")
        self.assertEqual(ct.obj.selected_alpn_protocol(), "h2")
        self.assertEqual(ch.obj.selected_alpn_protocol(), "h2")
        sni = ct.obj.server_hostname

        # TLV by TLV, in order. CRC32C: tern always, HAProxy with crc32c;
        # each valid over its own header.
        self.assertIs(ht["crc_ok"], True, "tern's CRC32C" + why)
        if "crc32c" in options:
            self.assertIs(hh["crc_ok"], True, "haproxy's CRC32C" + why)
        else:
            self.assertIsNone(hh["crc_ok"], "haproxy sends CRC32C only with crc32c" + why)
        self.assertEqual(ht["tlvs"][PP2_ALPN], b"h2", "tern's ALPN" + why)
        self.assertEqual(hh["tlvs"][PP2_ALPN], ht["tlvs"][PP2_ALPN], "ALPN" + why)
        if sni:
            self.assertEqual(ht["tlvs"].get(PP2_AUTHORITY), sni.encode(), "tern's AUTHORITY" + why)
        else:
            self.assertNotIn(PP2_AUTHORITY, ht["tlvs"], "tern: no SNI, no AUTHORITY" + why)
        if "authority" in options:
            self.assertEqual(hh["tlvs"].get(PP2_AUTHORITY), ht["tlvs"].get(PP2_AUTHORITY),
                             "AUTHORITY" + why)
        else:
            self.assertNotIn(PP2_AUTHORITY, hh["tlvs"],
                             "haproxy sends AUTHORITY only with authority" + why)
        want_types = [t for t in ht["tlv_types"]
                      if (t != PP2_CRC32C or "crc32c" in options)
                      and (t != PP2_AUTHORITY or "authority" in options)]
        self.assertEqual(hh["tlv_types"], want_types, "TLV types and order" + why)

        # PP2_TYPE_SSL: client flags, verify, sub-TLVs.
        cert = cert_der is not None
        want_client = CLIENT_SSL | ((CERT_CONN | CERT_SESS) if cert else 0)
        self.assertEqual(ht["ssl_client"], want_client, "tern's client flags" + why)
        self.assertEqual(hh["ssl_client"], ht["ssl_client"], "client flags" + why)
        if cert:
            self.assertEqual(ht["ssl_verify"], 0, "tern: verified certificate" + why)
            self.assertEqual(hh["ssl_verify"], 0, "haproxy: verified certificate" + why)
        else:
            # The documented difference (docs/proxy-protocol.md, proxy_proto.h).
            self.assertEqual(ht["ssl_verify"], TERN_VERIFY_NO_CERT,
                             "tern's verify without a certificate" + why)
            self.assertEqual(hh["ssl_verify"], 0, "haproxy's verify without a certificate" + why)
        st, sh = ht["ssl_sub"], hh["ssl_sub"]
        self.assertEqual(st.get(SUB_VERSION), ct.version().encode(), "tern's SSL_VERSION" + why)
        self.assertEqual(sh.get(SUB_VERSION), st.get(SUB_VERSION), "SSL_VERSION" + why)
        self.assertEqual(st.get(SUB_CIPHER), ct.cipher()[0].encode(), "tern's SSL_CIPHER" + why)
        if "ssl-cipher" in options:
            self.assertEqual(sh.get(SUB_CIPHER), st.get(SUB_CIPHER), "SSL_CIPHER" + why)
        else:
            self.assertNotIn(SUB_CIPHER, sh, "haproxy sends SSL_CIPHER only with ssl-cipher" + why)
        if cert:
            self.assertEqual(st.get(SUB_CN), cn.encode("utf-8"), "tern's SSL_CN" + why)
            if haproxy_cn is None:
                self.assertEqual(sh.get(SUB_CN), st.get(SUB_CN), "SSL_CN" + why)
            else:
                self.assertEqual(sh.get(SUB_CN), haproxy_cn, "haproxy's SSL_CN" + why)
            # The documented difference: the DER certificate, tern only.
            self.assertEqual(st.get(SUB_CLIENT_CERT), cert_der, "tern's SSL_CLIENT_CERT" + why)
            self.assertNotIn(SUB_CLIENT_CERT, sh, "haproxy sends no 0x28" + why)
        else:
            for sub in (SUB_CN, SUB_CLIENT_CERT):
                self.assertNotIn(sub, st, "tern: sub-TLV 0x%02x without a certificate" % sub + why)
                self.assertNotIn(sub, sh,
                                 "haproxy: sub-TLV 0x%02x without a certificate" % sub + why)

        # Byte for byte: tern's header as HAProxy would have sent it (its
        # client's ports, HAProxy's verify, no 0x28, and without what
        # `options` leave out) must be HAProxy's, to the last byte.
        pt = split_v2(ht["raw"])
        self.assertEqual(join_v2(pt), ht["raw"], "split_v2/join_v2 round trip (tern)")
        self.assertEqual(join_v2(split_v2(hh["raw"])), hh["raw"],
                         "split_v2/join_v2 round trip (haproxy)")
        want = copy.deepcopy(pt)
        set_ports(want, ch.local_addr[1], ha_port)
        want["tlvs"] = [[t, v] for t, v in want["tlvs"]
                        if (t != PP2_CRC32C or "crc32c" in options)
                        and (t != PP2_AUTHORITY or "authority" in options)]
        ssl_v = ssl_tlv(want)
        if not ssl_v[0] & CERT_SESS:
            ssl_v[1] = 0
        ssl_v[2] = [[s, haproxy_cn if s == SUB_CN and haproxy_cn is not None else v]
                    for s, v in ssl_v[2]
                    if s != SUB_CLIENT_CERT and (s != SUB_CIPHER or "ssl-cipher" in options)]
        self.assertEqual(hexdump(hh["raw"]), hexdump(join_v2(want)),
                         "haproxy's header is not tern's with the documented differences "
                         "accounted for" + why)

    def cross_check_v2(self, env, tls_version, with_cert, server_hostname="localhost",
                       host="127.0.0.1", cert=None):
        """One client of each kind to tern and to both HAProxy frontends;
        compares the headers. cert: another client certificate than env's,
        as (certificate, key, DER, CN, the CN bytes HAProxy sends)."""
        if cert:
            crt, key, der, cn, haproxy_cn = cert
            ctx = self.context(tls_version, (crt, key), env)
        else:
            ctx = self.context(tls_version, with_cert, env)
            der, cn, haproxy_cn = (env["der"], env["cn"], None) if with_cert else (None, CN, None)
        ct = self.connect(env["tern_port"], ctx, host, server_hostname)
        ht = self.header_of(env["tern_be"], ct, "tern")
        for name, options in (("full", FULL_OPTIONS), ("plain", ())):
            port = env["haproxy"].ports[name]
            ch = self.connect(port, ctx, host, server_hostname)
            hh = self.header_of(env["be_" + name], ch, "haproxy " + name)
            self.compare_v2(ht, ct, env["tern_port"], hh, ch, port, options, der, host,
                            cn, haproxy_cn)
        return ct, ht

    def finish(self, env, conns):
        counters = env["tern"].stop_ok()
        self.assertEqual(counters["conns_total"], conns)
        self.assertEqual(env["haproxy"].stop(), 0, "haproxy's exit status after SIGUSR1")

    # ------------------------------------------------------------- v2

    def test_v2_no_client_ca(self):
        env = self.start_pair()
        n = 0
        for name, version in VERSIONS:
            with self.subTest(version=name):
                ct, _ = self.cross_check_v2(env, version, with_cert=False)
                self.assertEqual(ct.version(), name)
                n += 1
        # No SNI (server_hostname None): no AUTHORITY from either, even
        # with HAProxy's authority option.
        with self.subTest(sni=None):
            self.cross_check_v2(env, ssl.TLSVersion.TLSv1_3, with_cert=False, server_hostname=None)
            n += 1
        self.finish(env, n)

    def test_v2_client_certificate_optional(self):
        env = self.start_pair(mtls=True)
        n = 0
        for name, version in VERSIONS:
            for with_cert in (True, False):
                with self.subTest(version=name, client_cert=with_cert):
                    ct, _ = self.cross_check_v2(env, version, with_cert)
                    self.assertEqual(ct.version(), name)
                    n += 1
        self.finish(env, n)

    def test_v2_cn_string_types(self):
        # SSL_CN is "the string representation (in UTF8)" of the CN
        # (doc/proxy-protocol.txt 2.2.6) and docs/proxy-protocol.md says tern sends UTF-8:
        # tern converts whatever ASN.1 string type the certificate uses
        # (ASN1_STRING_to_UTF8). HAProxy 2.6 copies the string's contents
        # as they are: the same bytes for a UTF8String or an ASCII
        # PrintableString, Latin-1 for a T61String, UTF-16BE for a
        # BMPString. Every other byte of the two headers is still equal.
        env = self.start_pair(mtls=True)
        cases = (
            ("printable", "plain client", 0x13, b"plain client"),
            ("t61", "Gr\u00fc\u00dfe client", 0x14, "Gr\u00fc\u00dfe client".encode("latin-1")),
            ("bmp", "\u20acuro client", 0x1e, "\u20acuro client".encode("utf-16-be")),
        )
        n = 0
        for name, cn, tag, haproxy_cn in cases:
            with self.subTest(string=name):
                crt, key, der = issue_client_cert(self, env["ca"], name, cn, "default")
                self.assertEqual(subject_cn_tag(der), tag, "the CN's ASN.1 string type")
                for _, version in VERSIONS:
                    self.cross_check_v2(env, version, True,
                                        cert=(crt, key, der, cn,
                                              None if tag == 0x13 else haproxy_cn))
                    n += 1
        self.assertEqual(subject_cn_tag(env["der"]), 0x0c, "env's CN is a UTF8String")
        self.finish(env, n)

    def test_v2_resumed_session_with_certificate(self):
        # A resumed session: the certificate is the session's, not sent
        # again on this connection (client 0x05), still verified (0), its
        # CN still sent. One tern worker: the TLS 1.2 session-ID cache is
        # per worker.
        env = self.start_pair(mtls=True, workers=1)
        n = 0
        for name, version in VERSIONS:
            with self.subTest(version=name):
                ctx = self.context(version, True, env)
                heads = {}
                for who, port, be in (("tern", env["tern_port"], env["tern_be"]),
                                      ("haproxy", env["haproxy"].ports["full"], env["be_full"])):
                    first = self.connect(port, ctx)
                    again = self.connect(port, ctx, session=first.obj.session)
                    self.assertTrue(again.obj.session_reused,
                                    "%s %s: the second connection did not resume" % (who, name))
                    heads[who] = (again, self.header_of(be, again, who), port)
                    self.assertEqual(heads[who][1]["ssl_client"], CLIENT_SSL | CERT_SESS,
                                     "%s %s: client flags of a resumed session" % (who, name))
                (_, ht, _), (ch, hh, hport) = heads["tern"], heads["haproxy"]
                self.assertEqual(ht["ssl_verify"], 0)
                self.assertEqual(hh["ssl_verify"], 0)
                self.assertEqual(ht["ssl_sub"].get(SUB_CN), env["cn"].encode("utf-8"))
                self.assertEqual(ht["ssl_sub"].get(SUB_CLIENT_CERT), env["der"])
                pt = split_v2(ht["raw"])
                set_ports(pt, ch.local_addr[1], hport)
                ssl_v = ssl_tlv(pt)
                ssl_v[2] = [[s, v] for s, v in ssl_v[2] if s != SUB_CLIENT_CERT]
                self.assertEqual(hexdump(hh["raw"]), hexdump(join_v2(pt)),
                                 "resumed: haproxy's header is not tern's less 0x28\n"
                                 "  tern:    %s" % hexdump(ht["raw"]))
                n += 2
        self.finish(env, n)

    def test_v2_ipv6(self):
        if not have_ipv6():
            self.skipTest("no IPv6 loopback on this machine")
        env = self.start_pair(host="::1")
        self.cross_check_v2(env, ssl.TLSVersion.TLSv1_3, with_cert=False, host="::1")
        self.finish(env, 1)

    # ------------------------------------------------------------- v1

    def test_v1(self):
        env = self.start_pair(version="v1")
        n = 0
        for name, version in VERSIONS:
            with self.subTest(version=name):
                ctx = self.context(version, False, env)
                ct = self.connect(env["tern_port"], ctx)
                port = env["haproxy"].ports["v1"]
                ch = self.connect(port, ctx)
                ht = self.header_of(env["tern_be"], ct, "tern")
                hh = self.header_of(env["be_v1"], ch, "haproxy")
                self.assertEqual(ht["raw"], b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n"
                                 % (ct.local_addr[1], env["tern_port"]))
                self.assertEqual(hh["raw"], b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n"
                                 % (ch.local_addr[1], port))
                n += 1
        self.finish(env, n)


if __name__ == "__main__":
    main()
