"""The command line (SPEC section 2): bad flags exit 2 with one line naming
the flag and the value and never start; unreadable files exit 1 naming the
path; --check, --help, --version; the self-signed fallback."""

import os
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TernTestCase, client_context, free_port, main, port_refuses  # noqa: E402

# (argv after the base flags, the flag the message must name, the value it must name)
BAD_FLAGS = [
    (["--workers", "abc"], "--workers", "abc"),
    (["-w", "abc"], "--workers", "abc"),
    (["--workers", "0"], "--workers", "0"),
    (["--workers", "-3"], "--workers", "-3"),
    (["--max-conns", "lots"], "--max-conns", "lots"),
    (["--handshake-timeout", "10"], "--handshake-timeout", "10"),
    (["--idle-timeout", "5 s"], "--idle-timeout", "5 s"),
    (["--drain-timeout", "1fortnight"], "--drain-timeout", "1fortnight"),
    (["--connect-timeout", "-1s"], "--connect-timeout", "-1s"),
    (["--buffer-size", "1x"], "--buffer-size", "1x"),
    (["--ring-entries", "many"], "--ring-entries", "many"),
    (["--listen", "nonsense"], "--listen", "nonsense"),
    (["--listen", "127.0.0.1:99999"], "--listen", "127.0.0.1:99999"),
    (["--backend", "nonsense"], "--backend", "nonsense"),
    (["--tls-min", "1.1"], "--tls-min", "1.1"),
    (["--tls-max", "1.4"], "--tls-max", "1.4"),
    (["--log-level", "loud"], "--log-level", "loud"),
    (["--frobnicate"], "--frobnicate", None),
    (["--workers"], "--workers", None),  # missing value
]


class TestCli(TernTestCase):

    def base(self, port):
        return ["--listen", "127.0.0.1:%d" % port, "--backend", "127.0.0.1:%d" % free_port(),
                "--cert", self.default_cert()["cert"]]

    def test_bad_flags_exit_2(self):
        for extra, flag, value in BAD_FLAGS:
            with self.subTest(argv=" ".join(extra)):
                port = free_port()
                r = self.run_tern(self.base(port) + extra)
                self.assertEqual(r.returncode, 2, "stderr: %r" % r.stderr)
                lines = r.stderr.strip("\n").split("\n")
                self.assertEqual(len(lines), 1, "want exactly one stderr line: %r" % r.stderr)
                self.assertIn(flag, lines[0])
                if value is not None:
                    self.assertIn(value, lines[0])
                self.assertNotIn(" ready: ", r.stderr)
                self.assertTrue(port_refuses(port), "something listens on the port")

    def test_missing_cert_exits_1(self):
        path = os.path.join(self.tmp, "no-such-cert.pem")
        port = free_port()
        r = self.run_tern(["--listen", "127.0.0.1:%d" % port, "--cert", path])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(path, r.stderr)
        self.assertNotIn(" ready: ", r.stderr)
        self.assertTrue(port_refuses(port))

    def test_garbage_cert_exits_1(self):
        path = os.path.join(self.tmp, "garbage.pem")
        with open(path, "wb") as f:
            f.write(b"-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n"
                    b"-----END CERTIFICATE-----\n")
        port = free_port()
        r = self.run_tern(["--listen", "127.0.0.1:%d" % port, "--cert", path])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(path, r.stderr)
        self.assertNotIn(" ready: ", r.stderr)
        self.assertTrue(port_refuses(port))

    def test_cert_without_key_exits_1(self):
        cert = self.cert("ec", combined=False)
        r = self.run_tern(["--listen", "127.0.0.1:%d" % free_port(), "--cert", cert["cert"]])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(cert["cert"], r.stderr)

    def test_key_not_matching_cert_exits_1(self):
        a = self.cert("ec", name="a", combined=False)
        b = self.cert("ec", name="b", combined=False)
        r = self.run_tern(["--listen", "127.0.0.1:%d" % free_port(), "--cert", a["cert"],
                           "--key", b["key"]])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertTrue(a["cert"] in r.stderr or b["key"] in r.stderr, r.stderr)

    def test_unreadable_key_exits_1(self):
        a = self.cert("ec", combined=False)
        missing = os.path.join(self.tmp, "missing.key")
        r = self.run_tern(["--listen", "127.0.0.1:%d" % free_port(), "--cert", a["cert"],
                           "--key", missing])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(missing, r.stderr)

    def test_check_good(self):
        port = free_port()
        r = self.run_tern(self.base(port) + ["--check"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue((r.stdout + r.stderr).strip(), "--check printed no summary")
        self.assertNotIn(" ready: ", r.stderr)
        self.assertTrue(port_refuses(port))

    def test_check_bad_cert(self):
        path = os.path.join(self.tmp, "nope.pem")
        r = self.run_tern(["--listen", "127.0.0.1:%d" % free_port(), "--cert", path, "--check"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(path, r.stdout + r.stderr)

    def test_check_bad_flag_is_2(self):
        r = self.run_tern(["--check", "--workers", "x"])
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_help(self):
        for flag in ("--help", "-h"):
            with self.subTest(flag=flag):
                r = self.run_tern([flag])
                self.assertEqual(r.returncode, 0, r.stderr)
                for word in ("--listen", "--backend", "--cert", "--workers", "--drain-timeout"):
                    self.assertIn(word, r.stdout)

    def test_version(self):
        for flag in ("--version", "-V"):
            with self.subTest(flag=flag):
                r = self.run_tern([flag])
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertRegex(r.stdout, r"\d+\.\d+\.\d+")

    def test_self_signed_without_cert(self):
        be = self.echo_backend()
        tern = self.start_tern([be], cert=None, workers=1)
        warn = [ln for ln in tern.lines() if "warn" in ln and "self-signed" in ln]
        self.assertEqual(len(warn), 1, "want one warn line about the self-signed cert")
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"hi", expect=2), b"hi")
        der = c.obj.getpeercert(binary_form=True)
        c.close()
        # The certificate is for localhost: trusting it, a client that
        # checks the name "localhost" connects.
        pem = os.path.join(self.tmp, "served.pem")
        with open(pem, "w") as f:
            f.write(ssl.DER_cert_to_PEM_cert(der))
        v = self.client(ctx=client_context(cafile=pem), server_hostname="localhost").handshake()
        self.assertEqual(v.exchange(b"ok", expect=2), b"ok")
        v.shut_write("close_notify")
        v.recv_until_close()
        tern.stop_ok()

    def test_listen_port_in_use_fails(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            r = self.run_tern(self.base(port))
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(str(port), r.stderr)
            self.assertNotIn(" ready: ", r.stderr)


if __name__ == "__main__":
    main()
