"""The command line (SPEC section 2): bad flags exit 2 with one line naming
the flag and the value and never start; unreadable files exit 1 naming the
path; --check, --help, --version, -vv (the build, and the engine --io auto
would run, checked against what a started tern runs); `tern ctl --help`
listing every command the control socket takes; the self-signed
fallback."""

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TernTestCase, client_context, ctl, free_port, main,  # noqa: E402
                     port_refuses, run_ctl)
import no_io_uring  # noqa: E402

NO_IO_URING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "no_io_uring.py")

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

    def build(self, args=("-vv",), launcher=()):
        """tern -vv: exit 0, nothing on stderr; its "key: value" lines."""
        r = self.run_tern(list(args), launcher=launcher)
        self.assertEqual((r.returncode, r.stderr), (0, ""), r.stdout)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^tern \d+\.\d+\.\d+$")
        return dict(line.split(": ", 1) for line in lines[1:])

    def test_vv_prints_the_build(self):
        info = self.build()
        self.assertEqual(set(info), {"openssl", "liburing", "kernel", "io_uring", "io", "ktls"})
        # OpenSSL: the library loaded, as the openssl command (same
        # libcrypto) names it, and the one built against.
        library = re.search(r"\(Library: (.*)\)",
                            subprocess.run(["openssl", "version"], capture_output=True,
                                           text=True).stdout)
        running, built = re.match(r"^(OpenSSL 3\.\S+ .*) \(built against (OpenSSL 3\.\S+ .*)\)$",
                                  info["openssl"]).groups()
        if library:
            self.assertEqual(running, library.group(1))
        if shutil.which("pkg-config"):
            version = subprocess.run(["pkg-config", "--modversion", "liburing"],
                                     capture_output=True, text=True).stdout.strip()
            if version:
                self.assertTrue(info["liburing"].startswith(version + " "), info["liburing"])
        u = os.uname()
        self.assertEqual(info["kernel"], "%s %s %s" % (u.sysname, u.release, u.machine))
        self.assertTrue(info["ktls"].startswith("not used by tern; OpenSSL built with"),
                        info["ktls"])
        # What --io auto would run is what it runs.
        engine = re.match(r"^--io auto would run (uring|epoll)$", info["io"]).group(1)
        self.assertEqual(info["io_uring"].startswith("works"), engine == "uring")
        be = self.echo_backend()
        tern = self.start_tern([be], workers=1, extra=["--io", "auto"])
        self.assertIn(" io=%s " % engine, tern.ready_line())
        tern.stop_ok()
        # -vv answers wherever it stands, like -V; a single -v is unknown.
        self.assertEqual(self.build(["--workers", "2", "-vv"])["io"], info["io"])
        r = self.run_tern(["-v"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("-v", r.stderr)

    def test_vv_with_io_uring_refused(self):
        """Under a seccomp filter refusing io_uring (as Docker's default
        profile does), -vv says why and that --io auto would run epoll."""
        if not no_io_uring.SUPPORTED:
            self.skipTest("the seccomp filter knows x86_64's system call numbers only")
        info = self.build(launcher=[sys.executable, NO_IO_URING])
        self.assertEqual(info["io_uring"], "refused: Operation not permitted")
        self.assertEqual(info["io"], "--io auto would run epoll")

    def test_ctl_help_lists_every_command(self):
        """`tern ctl --help` has a line for every command a running tern's
        `help` lists, close and certs among them."""
        ctl_path = os.path.join(self.tmp, "control.sock")
        be = self.echo_backend()
        tern = self.start_tern([be], workers=1, extra=["--control", ctl_path])
        commands = ctl(ctl_path, "help")["commands"]
        self.assertIn("close", commands)
        self.assertIn("certs", commands)
        r = run_ctl(self, ["--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = re.findall(r"^  ([a-z-]+)(?: |$)", r.stdout.split("\nCommands:\n", 1)[1], re.M)
        self.assertEqual(listed, commands)
        tern.stop_ok()

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
