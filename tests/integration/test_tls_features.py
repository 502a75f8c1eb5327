"""Production TLS contexts (SPEC section 2): several --cert chosen by SNI
(exact before wildcard, one label per wildcard, default for unknown or
absent SNI), an RSA and an ECDSA certificate for the same names chosen by
the client's signature algorithms, --alpn, mTLS with --client-ca and
--verify-client, --ocsp stapling, the TLS 1.2 session cache, and the exit
codes for bad files. Certificates, CAs and OCSP responses are made with the
openssl command in each test's temporary directory."""

import calendar
import os
import re
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ClosedByPeer, TernTestCase, client_context, ctl, free_port,  # noqa: E402
                     main, port_refuses, run_ctl, scaled)


def openssl(tc, *args, stdin=None):
    """Runs the openssl command in the test's directory; its output."""
    r = subprocess.run(["openssl"] + list(args), cwd=tc.tmp, capture_output=True,
                       input=stdin, timeout=scaled(60))
    if r.returncode != 0:
        raise AssertionError("openssl %s failed: %s"
                             % (" ".join(args), r.stderr.decode(errors="replace")))
    return r.stdout.decode(errors="replace")


def keygen(tc, name, kind="ec"):
    key = os.path.join(tc.tmp, name + ".key")
    if kind == "ec":
        openssl(tc, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", key)
    else:
        openssl(tc, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                "-out", key)
    return key


def self_signed(tc, name, cn, sans=None, kind="ec"):
    """A self-signed server certificate; returns the combined PEM path
    (certificate then key), the way tern reads --cert."""
    key = keygen(tc, name, kind)
    crt = os.path.join(tc.tmp, name + ".crt")
    args = ["req", "-new", "-x509", "-key", key, "-out", crt, "-days", "2", "-subj", "/CN=" + cn]
    if sans:
        args += ["-addext", "subjectAltName=" + ",".join("DNS:" + s for s in sans)]
    openssl(tc, *args)
    pem = os.path.join(tc.tmp, name + ".pem")
    with open(pem, "wb") as out, open(crt, "rb") as c, open(key, "rb") as k:
        out.write(c.read() + k.read())
    return pem


class CA:
    """A certificate authority made with openssl: issues server and client
    certificates and answers OCSP for them from an index file."""

    def __init__(self, tc, name):
        self.tc = tc
        self.name = name
        self.key = keygen(tc, name)
        self.crt = os.path.join(tc.tmp, name + ".crt")
        openssl(tc, "req", "-new", "-x509", "-key", self.key, "-out", self.crt, "-days", "2",
                "-subj", "/CN=%s" % name,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
        self.index = os.path.join(tc.tmp, name + "-index.txt")
        open(self.index, "w").close()
        self.serial = 0x1000

    def issue(self, name, cn, sans=None, client=False):
        """Returns (cert path, key path, combined PEM path)."""
        key = keygen(self.tc, name)
        csr = os.path.join(self.tc.tmp, name + ".csr")
        crt = os.path.join(self.tc.tmp, name + ".crt")
        ext = os.path.join(self.tc.tmp, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
            if sans:
                f.write("subjectAltName=%s\n" % ",".join("DNS:" + s for s in sans))
        openssl(self.tc, "req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn)
        self.serial += 1
        openssl(self.tc, "x509", "-req", "-in", csr, "-CA", self.crt, "-CAkey", self.key,
                "-set_serial", str(self.serial), "-days", "2", "-extfile", ext, "-out", crt)
        # openssl ca's index format: status, expiry, revocation, serial
        # (hex), file, subject; "V" is valid.
        end = openssl(self.tc, "x509", "-in", crt, "-noout", "-enddate").strip()
        expiry = subprocess.run(["date", "-u", "-d", end.split("=", 1)[1], "+%y%m%d%H%M%SZ"],
                                capture_output=True, text=True, check=True).stdout.strip()
        with open(self.index, "a") as f:
            f.write("V\t%s\t\t%X\tunknown\t/CN=%s\n" % (expiry, self.serial, cn))
        pem = os.path.join(self.tc.tmp, name + ".pem")
        with open(pem, "wb") as out, open(crt, "rb") as c, open(key, "rb") as k:
            out.write(c.read() + k.read())
        return crt, key, pem

    def ocsp_response(self, crt, name):
        """A signed, successful DER OCSP response saying `good` for crt,
        as `openssl ocsp` the responder writes it (-respout)."""
        req = os.path.join(self.tc.tmp, name + ".req")
        resp = os.path.join(self.tc.tmp, name + ".der")
        openssl(self.tc, "ocsp", "-issuer", self.crt, "-cert", crt, "-reqout", req, "-no_nonce")
        openssl(self.tc, "ocsp", "-index", self.index, "-rsigner", self.crt, "-rkey", self.key,
                "-CA", self.crt, "-reqin", req, "-respout", resp, "-ndays", "1")
        return resp


def s_client(tc, port, *args, timeout=20):
    """openssl s_client with stdin at EOF: it handshakes, prints, shuts the
    connection down and exits. Returns everything it printed."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=scaled(timeout))
    return (r.stdout + r.stderr).decode(errors="replace")


def openssl_time(text):
    """openssl's "Dec  7 06:00:00 2026 GMT" as seconds since the epoch."""
    return calendar.timegm(time.strptime(" ".join(text.split()), "%b %d %H:%M:%S %Y %Z"))


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def not_after(tc, pem):
    """The certificate's notAfter, as `openssl x509 -enddate` says it."""
    out = openssl(tc, "x509", "-in", pem, "-noout", "-enddate").strip()
    return openssl_time(out.split("=", 1)[1])


def served_subject(out):
    m = re.search(r"^subject=(.*)$", out, re.M)
    return m.group(1).strip() if m else None


class TestTlsFeatures(TernTestCase):

    # ---------------------------------------------------------------- SNI

    def test_sni_picks_certificate(self):
        default = self_signed(self, "default", "default.test", ["default.test", "www.default.test"])
        b = self_signed(self, "b", "cn-is-ignored.test", ["b.test"])
        wild = self_signed(self, "wild", "wild", ["*.w.test"])
        exact = self_signed(self, "exact", "exact", ["x.w.test"])
        be = self.echo_backend()
        tern = self.start_tern([be], cert=default, extra=["--cert", b, "--cert", wild,
                                                          "--cert", exact])
        cases = [
            ("default.test", "CN = default.test"),
            ("www.default.test", "CN = default.test"),
            ("b.test", "CN = cn-is-ignored.test"),
            ("B.Test", "CN = cn-is-ignored.test"),       # case-insensitive
            ("cn-is-ignored.test", "CN = default.test"),  # SAN names, not the CN
            ("unknown.test", "CN = default.test"),        # unknown: the default
            ("a.w.test", "CN = wild"),                    # one label under *.w.test
            ("x.w.test", "CN = exact"),                   # exact before wildcard
            ("a.b.w.test", "CN = default.test"),          # two labels: no
            ("w.test", "CN = default.test"),              # the bare domain: no
        ]
        for version in ("-tls1_2", "-tls1_3"):
            for sni, want in cases:
                with self.subTest(sni=sni, version=version):
                    out = s_client(self, self.port, "-servername", sni, version)
                    self.assertEqual(served_subject(out), want, out[-2000:])
            with self.subTest(sni=None, version=version):
                out = s_client(self, self.port, "-noservername", version)
                self.assertEqual(served_subject(out), "CN = default.test", out[-2000:])
        # The access log names the SNI each connection sent.
        snis = [a.get("sni") for a in tern.access_lines()]
        self.assertIn("b.test", snis)
        self.assertIn("-", snis)
        tern.stop_ok()

    def test_check_lists_every_certificate(self):
        default = self_signed(self, "default", "default.test", ["default.test", "*.default.test"])
        rsa = self_signed(self, "rsa", "default.test", ["default.test", "*.default.test"], "rsa")
        cn_only = self_signed(self, "cn", "cn-only.test")
        r = self.run_tern(["--listen", "127.0.0.1:%d" % free_port(), "--cert", default,
                           "--cert", rsa, "--cert", cn_only, "--check"])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertIn("certs=3", lines[0])
        self.assertEqual(len(lines), 4, r.stdout)
        self.assertTrue(lines[1].startswith("cert=%s names=default.test,*.default.test " % default),
                        lines[1])
        self.assertTrue(lines[1].endswith(" default"), lines[1])
        self.assertIn("key=RSA bits=2048", lines[2])
        self.assertTrue(lines[3].startswith("cert=%s names=cn-only.test " % cn_only), lines[3])

    def test_same_names_same_key_type_exits_1(self):
        a = self_signed(self, "a", "a", ["a.test"])
        a2 = self_signed(self, "a2", "a2", ["a.test"])
        port = free_port()
        r = self.run_tern(["--listen", "127.0.0.1:%d" % port, "--cert", a, "--cert", a2])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(a2, r.stderr)
        self.assertIn("same names and key type", r.stderr)
        self.assertTrue(port_refuses(port))

    def test_dual_rsa_ecdsa_by_sigalgs(self):
        default = self_signed(self, "default", "default.test", ["default.test"])
        rsa = self_signed(self, "d-rsa", "d rsa", ["d.test"], "rsa")
        ec = self_signed(self, "d-ec", "d ec", ["d.test"])
        be = self.echo_backend()
        tern = self.start_tern([be], cert=default, extra=["--cert", rsa, "--cert", ec])
        for version in ("-tls1_2", "-tls1_3"):
            with self.subTest(version=version):
                out = s_client(self, self.port, "-servername", "d.test", version,
                               "-sigalgs", "RSA-PSS+SHA256")
                self.assertEqual(served_subject(out), "CN = d rsa", out[-2000:])
                self.assertIn("Server public key is 2048 bit", out)
                out = s_client(self, self.port, "-servername", "d.test", version,
                               "-sigalgs", "ECDSA+SHA256")
                self.assertEqual(served_subject(out), "CN = d ec", out[-2000:])
                self.assertIn("Server public key is 256 bit", out)
        tern.stop_ok()

    # --------------------------------------------------------------- ALPN

    def test_alpn_curl_http2(self):
        be = self.echo_backend()
        tern = self.start_tern([be], extra=["--alpn", "h2,http/1.1"])
        r = subprocess.run(["curl", "--http2", "-k", "-v", "-sS", "--max-time", str(scaled(5)),
                            "-o", "/dev/null", "https://localhost:%d/" % self.port],
                           capture_output=True, text=True, errors="replace",
                           timeout=scaled(20))
        # The echo backend is no HTTP/2 server: only the handshake matters.
        self.assertIn("ALPN: server accepted h2", r.stderr)
        a = tern.wait_access(1)[0]
        self.assertEqual(a.get("alpn"), "h2")
        tern.stop_ok()

    def test_alpn_s_client_and_conns(self):
        be = self.echo_backend()
        ctl = os.path.join(self.tmp, "ctl.sock")
        tern = self.start_tern([be], extra=["--alpn", "h2,http/1.1", "--control", ctl])
        # The server's preference wins over the client's order.
        out = s_client(self, self.port, "-servername", "localhost", "-alpn", "http/1.1,h2")
        self.assertIn("ALPN protocol: h2", out)
        out = s_client(self, self.port, "-servername", "localhost", "-alpn", "http/1.1")
        self.assertIn("ALPN protocol: http/1.1", out)
        # No common protocol: the handshake goes on without ALPN.
        out = s_client(self, self.port, "-servername", "localhost", "-alpn", "spdy/3")
        self.assertIn("No ALPN negotiated", out)
        self.assertRegex(out, r"New, TLSv1\.3")
        alpns = [a.get("alpn") for a in tern.wait_access(3)]
        self.assertEqual(alpns, ["h2", "http/1.1", "-"])
        # conns shows it on a live connection.
        ctx = client_context()
        ctx.set_alpn_protocols(["http/1.1", "h2"])
        c = self.client(ctx=ctx).handshake()
        self.assertEqual(c.obj.selected_alpn_protocol(), "h2")
        self.assertEqual(tern.conn_of(c)["alpn"], "h2")
        plain = self.client().handshake()
        self.assertIsNone(tern.conn_of(plain)["alpn"])
        c.close()
        plain.close()
        tern.stop_ok()

    def test_alpn_bad_value_exits_2(self):
        for value in ("", "h2,,http/1.1", "h2, http/1.1", "x" * 256):
            with self.subTest(value=value[:20]):
                r = self.run_tern(["--alpn", value, "--check"])
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("--alpn: invalid value", r.stderr)

    # --------------------------------------------------------------- mTLS

    def _mtls_setup(self, mode):
        ca = CA(self, "client-ca")
        other = CA(self, "other-ca")
        good = ca.issue("good-client", "good client", client=True)
        bad = other.issue("bad-client", "bad client", client=True)
        server = self_signed(self, "server", "localhost", ["localhost", "b.test"])
        be = self.echo_backend()
        tern = self.start_tern([be], cert=server,
                               extra=["--client-ca", ca.crt, "--verify-client", mode])
        return tern, good, bad

    def _mtls_echo(self, cert, version, sni="localhost"):
        """True when a client (with cert=(crt, key) or none) gets its bytes
        echoed; False when the handshake or the first read fails."""
        ctx = client_context(min_version=version, max_version=version)
        if cert:
            ctx.load_cert_chain(cert[0], cert[1])
        try:
            c = self.client(ctx=ctx, server_hostname=sni).handshake()
            got = c.exchange(b"ping", expect=4, timeout=5)
        except (ssl.SSLError, ClosedByPeer, ConnectionError):
            return False
        c.close()
        return got == b"ping"

    def test_mtls_require(self):
        tern, good, bad = self._mtls_setup("require")
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            for sni in ("localhost", "b.test"):
                with self.subTest(version=version, sni=sni):
                    self.assertFalse(self._mtls_echo(None, version, sni), "no cert passed")
                    self.assertTrue(self._mtls_echo(good[:2], version, sni), "good cert failed")
                    self.assertFalse(self._mtls_echo(bad[:2], version, sni),
                                     "cert of another CA passed")
        counters = tern.stop_ok()
        self.assertEqual(counters["handshake_failures"], 8)

    def test_mtls_optional(self):
        tern, good, bad = self._mtls_setup("optional")
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version):
                self.assertTrue(self._mtls_echo(None, version), "no cert failed")
                self.assertTrue(self._mtls_echo(good[:2], version), "good cert failed")
                self.assertFalse(self._mtls_echo(bad[:2], version), "cert of another CA passed")
        tern.stop_ok()

    def test_mtls_s_client_sees_ca_names(self):
        tern, good, _ = self._mtls_setup("require")
        out = s_client(self, self.port, "-servername", "localhost", "-tls1_2",
                       "-cert", good[0], "-key", good[1])
        self.assertIn("Acceptable client certificate CA names", out)
        self.assertIn("CN = client-ca", out)
        self.assertRegex(out, r"New, TLSv1\.2")
        tern.stop_ok()

    def test_mtls_flag_errors(self):
        port = free_port()
        r = self.run_tern(["--listen", "127.0.0.1:%d" % port, "--verify-client", "require"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--verify-client", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        missing = os.path.join(self.tmp, "no-such-ca.pem")
        r = self.run_tern(["--listen", "127.0.0.1:%d" % port, "--client-ca", missing,
                           "--verify-client", "require"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(missing, r.stderr)
        garbage = os.path.join(self.tmp, "garbage-ca.pem")
        with open(garbage, "w") as f:
            f.write("not a certificate\n")
        r = self.run_tern(["--listen", "127.0.0.1:%d" % port, "--client-ca", garbage])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(garbage, r.stderr)
        self.assertNotIn(" ready: ", r.stderr)
        self.assertTrue(port_refuses(port))

    # --------------------------------------------------------------- OCSP

    def test_ocsp_staple(self):
        ca = CA(self, "ocsp-ca")
        crt, _, pem = ca.issue("server", "localhost", ["localhost"])
        resp = ca.ocsp_response(crt, "server-ocsp")
        other = self_signed(self, "other", "other.test", ["other.test"])
        be = self.echo_backend()
        tern = self.start_tern([be], cert=pem, extra=["--ocsp", resp, "--cert", other])
        for version in ("-tls1_2", "-tls1_3"):
            with self.subTest(version=version):
                out = s_client(self, self.port, "-servername", "localhost", version, "-status")
                self.assertIn("OCSP Response Status: successful", out)
                self.assertIn("Cert Status: good", out)
                # A certificate without --ocsp staples nothing.
                out = s_client(self, self.port, "-servername", "other.test", version, "-status")
                self.assertIn("OCSP response: no response sent", out)
                self.assertEqual(served_subject(out), "CN = other.test")
        # --check names the response file.
        r = self.run_tern(["--cert", pem, "--ocsp", resp, "--check"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ocsp=%s" % resp, r.stdout)
        tern.stop_ok()

    # -------------------------------------------------------------- certs

    def test_certs_command(self):
        """`certs`: each certificate in --cert order, the first the
        default, with its exact names, key type and bits, notAfter as
        `openssl x509 -enddate` says it and the whole days left, and the
        OCSP staple's status and nextUpdate as `openssl ocsp` says them;
        `tern ctl certs` as a table; after a reload with a new
        certificate in the same file, the new one."""
        ca = CA(self, "certs-ca")
        ec_crt, _, ec_pem = ca.issue("ec-server", "ec.test", ["ec.test", "*.ec.test"])
        resp = ca.ocsp_response(ec_crt, "ec-ocsp")
        rsa_pem = self_signed(self, "rsa", "rsa.test", ["rsa.test", "www.rsa.test", "RSA2.test"],
                              kind="rsa")
        ctl_path = os.path.join(self.tmp, "control.sock")
        be = self.echo_backend()
        tern = self.start_tern([be], cert=ec_pem, extra=["--ocsp", resp, "--cert", rsa_pem,
                                                         "--control", ctl_path])
        before = time.time()
        reply = ctl(ctl_path, "certs")
        after = time.time() + 1
        self.assertIs(reply["ok"], True, reply)
        self.assertEqual(reply["generation"], 0)
        certs = reply["certs"]
        self.assertEqual([c["cert"] for c in certs], [ec_pem, rsa_pem])
        ec, rsa = certs
        self.assertEqual((ec["default"], rsa["default"]), (True, False))
        self.assertEqual(ec["names"], ["ec.test", "*.ec.test"])
        self.assertEqual(rsa["names"], ["rsa.test", "www.rsa.test", "rsa2.test"])  # lowercase
        self.assertEqual((ec["key_type"], ec["key_bits"]), ("EC", 256))
        self.assertEqual((rsa["key_type"], rsa["key_bits"]), ("RSA", 2048))
        for c, pem in ((ec, ec_pem), (rsa, rsa_pem)):
            end = not_after(self, pem)
            self.assertEqual(c["not_after"], rfc3339(end))
            # Whole days from tern's clock, in whole seconds, to notAfter.
            self.assertIn(c["days_left"], {(end - int(t)) // 86400 for t in (before, after)})
        # The staple: as openssl reads the response file.
        text = openssl(self, "ocsp", "-respin", resp, "-resp_text", "-noverify")
        next_update = openssl_time(re.search(r"Next Update: (.*)", text).group(1))
        self.assertEqual((ec["ocsp"], ec["ocsp_file"], ec["ocsp_status"]), (True, resp, "good"))
        self.assertEqual(ec["ocsp_next_update"], rfc3339(next_update))
        self.assertEqual((rsa["ocsp"], rsa["ocsp_file"], rsa["ocsp_status"],
                          rsa["ocsp_next_update"]), (False, None, None, None))

        # tern ctl certs: one row per certificate, names joined.
        r = run_ctl(self, ["--control", ctl_path, "certs"])
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = r.stdout.splitlines()
        self.assertEqual(len(rows), 3, r.stdout)
        # days_left may have ticked over since the JSON reply: a second.
        days = [row.split()[5] for row in rows[1:]]
        self.assertIn(days[0], (str(ec["days_left"]), str(ec["days_left"] - 1)))
        self.assertIn(days[1], (str(rsa["days_left"]), str(rsa["days_left"] - 1)))
        self.assertEqual(rows[0].split(), ["cert", "default", "key_type", "key_bits", "not_after",
                                           "days_left", "ocsp_status", "ocsp_next_update",
                                           "names"])
        self.assertEqual(rows[1].split(), [ec_pem, "true", "EC", "256", ec["not_after"], days[0],
                                           "good", ec["ocsp_next_update"], "ec.test,*.ec.test"])
        self.assertEqual(rows[2].split(), [rsa_pem, "false", "RSA", "2048", rsa["not_after"],
                                           days[1], "-", "-", "rsa.test,www.rsa.test,rsa2.test"])

        # A new certificate in the second file (EC now, other names),
        # reloaded: certs shows it, and serves it.
        fresh = self_signed(self, "fresh", "fresh.test", ["fresh.test"])
        os.replace(fresh, rsa_pem)
        self.assertEqual(ctl(ctl_path, "reload")["ok"], True)
        reply = ctl(ctl_path, "certs")
        self.assertEqual(reply["generation"], 1)
        second = reply["certs"][1]
        self.assertEqual((second["cert"], second["names"], second["key_type"], second["key_bits"]),
                         (rsa_pem, ["fresh.test"], "EC", 256))
        self.assertEqual(second["not_after"], rfc3339(not_after(self, rsa_pem)))
        out = s_client(self, self.port, "-servername", "fresh.test")
        self.assertEqual(served_subject(out), "CN = fresh.test")
        tern.stop_ok()

    def test_bad_ocsp_exits_1(self):
        cert = self_signed(self, "c", "c.test", ["c.test"])
        garbage = os.path.join(self.tmp, "garbage.der")
        with open(garbage, "wb") as f:
            f.write(b"\x30\x03not DER")
        missing = os.path.join(self.tmp, "missing.der")
        for path in (garbage, missing, cert):
            with self.subTest(path=os.path.basename(path)):
                port = free_port()
                r = self.run_tern(["--listen", "127.0.0.1:%d" % port, "--cert", cert,
                                   "--ocsp", path])
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(path + ": ", r.stderr)
                self.assertNotIn(" ready: ", r.stderr)
                self.assertTrue(port_refuses(port))
        r = self.run_tern(["--ocsp", garbage])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--ocsp: invalid value", r.stderr)

    # ----------------------------------------------------- session cache

    def _resume_by_id(self, session_cache):
        be = self.echo_backend()
        # One worker: the session cache is per worker.
        tern = self.start_tern([be], workers=1,
                               extra=["--session-cache", str(session_cache)])
        sess = os.path.join(self.tmp, "sess-%d.pem" % session_cache)
        first = s_client(self, self.port, "-servername", "localhost", "-tls1_2", "-no_ticket",
                         "-sess_out", sess)
        self.assertRegex(first, r"New, TLSv1\.2")
        second = s_client(self, self.port, "-servername", "localhost", "-tls1_2", "-no_ticket",
                          "-sess_in", sess)
        lines = tern.wait_access(2)
        return tern, second, lines

    def test_session_id_resumption(self):
        tern, out, lines = self._resume_by_id(20000)
        self.assertRegex(out, r"Reused, TLSv1\.2")
        self.assertEqual([a.get("resumed") for a in lines], [0, 1])
        # A resumed TLS 1.2 session still names its host.
        self.assertEqual([a.get("sni") for a in lines], ["localhost", "localhost"])
        counters = tern.stop_ok()
        self.assertEqual(counters["handshakes_resumed"], 1)

    def test_session_cache_off(self):
        tern, out, lines = self._resume_by_id(0)
        self.assertRegex(out, r"New, TLSv1\.2")
        self.assertNotIn("Reused", out)
        self.assertEqual([a.get("resumed") for a in lines], [0, 0])
        tern.stop_ok()


if __name__ == "__main__":
    main()
