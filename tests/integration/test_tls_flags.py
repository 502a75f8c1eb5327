"""--strict-sni, --tcp-keepalive and --crl (issue 15), and the certificate
lines of the start-up log and --check escaped.

--strict-sni: openssl s_client asking for a name no --cert has gets alert
unrecognized_name (112), one sending no SNI handshake_failure (40); each
is a counted handshake failure whose access-log reason names it
(sni_unknown, sni_missing); every name a certificate has is served as
without the flag.

--tcp-keepalive: the options are read back from tern's own sockets, the
accepted client socket and the backend socket of one connection: the
test takes a duplicate of each descriptor with pidfd_getfd(2) (tern is
its child: the ptrace check passes where the kernel allows tracing at
all) and asks getsockopt(2) for SO_KEEPALIVE, TCP_KEEPIDLE,
TCP_KEEPINTVL and TCP_KEEPCNT, exact values. The descriptors are found
through /proc/PID/net/tcp (the connection's ports to its inode) and
/proc/PID/fd (the inode to the descriptor).

--crl: a CA made with the openssl CLI, two client certificates, CRLs made
with `openssl ca -revoke` and `-gencrl`: the revoked certificate is
refused with alert certificate_revoked, the other gets in; the file
replaced with one revoking both is noticed by --watch (a bounded wait on
the reload's log line) and the second is refused from then on; `tern ctl
reload` does the same with --watch off; a broken CRL at reload keeps the
old one serving and counts a failed reload; a bad CRL at start exits 1
naming the path.
"""

import ctypes
import errno
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TernTestCase, _openssl, check_sanitizers_at_cleanup,  # noqa: E402
                     client_context, free_port, main, port_refuses, scaled, wait_for)

# Seconds a changed CRL may take to be served: the watch's settle time,
# the reload and the test's poll.
RELOADED_WITHIN = 5


def s_client(port, *args, timeout=20):
    """openssl s_client with stdin at EOF: handshakes (or fails to),
    prints, exits. Returns (exit status, everything it printed)."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=scaled(timeout))
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def write_atomically(path, data):
    """Replaces path as a deploy tool does: a new file renamed over it."""
    with open(path + ".new", "wb") as f:
        f.write(data)
    os.rename(path + ".new", path)


# ------------------------------------------------------------------- PKI

class CRLPKI:
    """A CA, client certificates for alice and bob, and three CRLs from
    `openssl ca`: none revoked, alice revoked, both revoked. Made once for
    the module: a dozen openssl runs add up on a loaded machine."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tern-integ-crl-")
        d = self.dir
        self.ca_key = os.path.join(d, "ca.key")
        self.ca = os.path.join(d, "ca.crt")
        _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", "30",
                  "-subj", "/CN=tern crl test CA",
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
        with open(os.path.join(d, "client.ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
        self.alice = self.client("alice", 1001)
        self.bob = self.client("bob", 1002)
        # `openssl ca` keeps its database in the directory; -revoke and
        # -gencrl need nothing else from the configuration.
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "crlnumber"), "w") as f:
            f.write("01\n")
        self.cnf = os.path.join(d, "ca.cnf")
        with open(self.cnf, "w") as f:
            f.write("[ ca ]\ndefault_ca = tern_ca\n[ tern_ca ]\n"
                    "database = %s\ncrlnumber = %s\ndefault_md = sha256\n"
                    "default_crl_days = 30\n"
                    % (os.path.join(d, "index.txt"), os.path.join(d, "crlnumber")))
        self.crl_none = self.gencrl("none")
        self.revoke(self.alice)
        self.crl_alice = self.gencrl("alice")
        self.revoke(self.bob)
        self.crl_both = self.gencrl("both")

    def client(self, name, serial):
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        crt = os.path.join(self.dir, name + ".crt")
        _openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", "/CN=" + name], self.dir)
        _openssl(["x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                  "-set_serial", str(serial), "-days", "30",
                  "-extfile", os.path.join(self.dir, "client.ext"), "-out", crt], self.dir)
        return {"cert": crt, "key": key}

    def revoke(self, who):
        _openssl(["ca", "-config", self.cnf, "-cert", self.ca, "-keyfile", self.ca_key,
                  "-revoke", who["cert"]], self.dir)

    def gencrl(self, name):
        path = os.path.join(self.dir, name + ".crl")
        _openssl(["ca", "-config", self.cnf, "-cert", self.ca, "-keyfile", self.ca_key,
                  "-gencrl", "-out", path], self.dir)
        return path

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


PKI = None


def setUpModule():
    global PKI
    PKI = CRLPKI()


def tearDownModule():
    if PKI:
        PKI.close()


# ------------------------------------------------- tern's own sockets

_SYS_pidfd_getfd = 438  # the same number on every architecture


def socket_inodes(pid):
    """The inodes of the sockets pid holds open (/proc/PID/fd)."""
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            out.add(link[len("socket:["):-1])
    return out


def tcp_inode(pid, local_port=None, remote_port=None, not_local_port=None):
    """The inode of the one established IPv4 TCP socket of pid with these
    ports (/proc/PID/net/tcp, hex fields), or None. The table lists the
    whole network namespace, the test's own client ends and connections
    of earlier tests included, so only pid's own sockets count."""
    found = []
    own = socket_inodes(pid)
    with open("/proc/%d/net/tcp" % pid) as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local = int(fields[1].split(":")[1], 16)
            remote = int(fields[2].split(":")[1], 16)
            established = fields[3] == "01"
            if established and local_port in (None, local) and remote_port in (None, remote) \
                    and local != not_local_port and fields[9] != "0" and fields[9] in own:
                found.append((fields[9], line.strip()))
    if len(found) > 1:
        raise AssertionError("several sockets with local port %s, remote port %s:\n%s"
                             % (local_port, remote_port, "\n".join(l for _, l in found)))
    return found[0][0] if found else None


def fd_of_inode(pid, inode):
    """The descriptor of pid that is socket inode, or None."""
    want = "socket:[%s]" % inode
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == want:
                return int(fd)
        except OSError:  # closed meanwhile
            pass
    return None


def keepalive_options(pid, fd):
    """(SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT) of pid's
    descriptor fd, read through a duplicate taken with pidfd_getfd(2) (the
    same open socket, so the same options). Skips the test, saying why,
    where the kernel refuses (no pidfd_getfd before Linux 5.6, a ptrace
    policy that forbids it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        dup = libc.syscall(_SYS_pidfd_getfd, pidfd, fd, 0)
        err = ctypes.get_errno()
    finally:
        os.close(pidfd)
    if dup < 0:
        if err in (errno.EPERM, errno.EACCES, errno.ENOSYS):
            raise unittest.SkipTest("pidfd_getfd refused here (%s): tern's sockets cannot be "
                                    "read back" % os.strerror(err))
        raise AssertionError("pidfd_getfd(%d, %d): %s" % (pid, fd, os.strerror(err)))
    s = socket.socket(fileno=dup)
    try:
        return (s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT))
    finally:
        s.close()  # the duplicate only: tern's descriptor stays open


# ------------------------------------------------------------ --strict-sni

class TestStrictSNI(TernTestCase):

    def setUp(self):
        super().setUp()
        check_sanitizers_at_cleanup(self)
        self.one = self.cert("ec", cn="one.example", sans=("DNS:one.example",), name="one")
        self.two = self.cert("ec", cn="two.example", sans=("DNS:*.two.example",), name="two")

    def start(self, strict=True):
        self.be = self.echo_backend()
        self.ctl_path = os.path.join(self.tmp, "control.sock")
        return self.start_tern([self.be], cert=self.one["cert"], extra=[
            "--cert", self.two["cert"], "--control", self.ctl_path]
            + (["--strict-sni"] if strict else []))

    def served(self, sni):
        """The CN of the certificate served for sni, after a round trip."""
        c = self.client(server_hostname=sni).handshake()
        der = c.obj.getpeercert(binary_form=True)
        self.assertEqual(c.exchange(b"hello", expect=5), b"hello")
        c.close()
        pem = ssl.DER_cert_to_PEM_cert(der)
        for name, made in (("one.example", self.one), ("two.example", self.two)):
            with open(made["cert_only"]) as f:
                if f.read().strip() == pem.strip():
                    return name
        return "unknown"

    def test_unknown_name_gets_unrecognized_name(self):
        tern = self.start()
        rc, out = s_client(self.port, "-servername", "unknown.example")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("tlsv1 unrecognized name", out)
        self.assertIn("SSL alert number 112", out)
        self.assertNotIn("BEGIN CERTIFICATE", out)
        self.assertIn("no peer certificate available", out)
        # The same in TLS 1.2.
        rc, out = s_client(self.port, "-servername", "two.example", "-tls1_2")
        self.assertIn("SSL alert number 112", out)
        wait_for(lambda: len(tern.access_lines()) == 2, 5, "two access lines")
        access = tern.access_lines()
        self.assertEqual([a["reason"] for a in access], ["sni_unknown", "sni_unknown"])
        self.assertEqual([a["version"] for a in access], ["-", "-"])
        stats = tern.stats()
        self.assertEqual((stats["handshake_failures"], stats["handshakes_full"]), (2, 0))
        # Every name a certificate has is served as without the flag.
        self.assertEqual(self.served("one.example"), "one.example")
        self.assertEqual(self.served("ONE.example."), "one.example")
        self.assertEqual(self.served("a.two.example"), "two.example")
        stats = tern.stats()
        self.assertEqual((stats["handshake_failures"], stats["handshakes_full"]), (2, 3))
        counters = self.finish(tern)
        self.assertEqual(counters["handshake_failures"], 2)
        self.assertEqual(counters["probe_connections"], 0)

    def test_no_sni_gets_handshake_failure(self):
        tern = self.start()
        for version in ("-tls1_3", "-tls1_2"):
            rc, out = s_client(self.port, "-noservername", version)
            self.assertNotEqual(rc, 0, out)
            self.assertIn("sslv3 alert handshake failure", out)
            self.assertIn("SSL alert number 40", out)
            self.assertIn("no peer certificate available", out)
        c = self.client(server_hostname=None)
        with self.assertRaises(ssl.SSLError) as e:
            c.handshake()
        self.assertEqual(e.exception.reason, "SSLV3_ALERT_HANDSHAKE_FAILURE")
        access = tern.wait_access(3)
        self.assertEqual([a["reason"] for a in access], ["sni_missing"] * 3)
        self.assertEqual(tern.stats()["handshake_failures"], 3)
        self.assertEqual(self.served("one.example"), "one.example")
        counters = self.finish(tern, [c])
        self.assertEqual(counters["handshake_failures"], 3)

    def test_without_the_flag_the_first_cert_serves(self):
        tern = self.start(strict=False)
        self.assertEqual(self.served("unknown.example"), "one.example")
        rc, out = s_client(self.port, "-noservername")
        self.assertIn("BEGIN CERTIFICATE", out)
        self.assertNotIn("alert", out)
        self.assertIn(" strict_sni=off ", tern.ready_line())
        counters = self.finish(tern)
        self.assertEqual(counters["handshake_failures"], 0)


# --------------------------------------------------------- --tcp-keepalive

class TestTCPKeepalive(TernTestCase):

    def setUp(self):
        super().setUp()
        check_sanitizers_at_cleanup(self)

    def sockets_of_one_connection(self, extra):
        """Starts tern, makes one proxied connection; returns (tern, the
        client, keepalive options of tern's client-side socket, of its
        backend-side socket)."""
        be = self.echo_backend()
        ctl_path = os.path.join(self.tmp, "control-%d.sock" % len(self._terns))
        tern = self.start_tern([be], workers=1, extra=["--control", ctl_path] + list(extra))
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"ping", expect=4), b"ping")
        pid = tern.proc.pid
        client_port = c.local_addr[1]
        backend_port = int(be.addr.rsplit(":", 1)[1])
        client_inode = tcp_inode(pid, local_port=self.port, remote_port=client_port)
        # Not tern's client-side sockets (local port: the listener's),
        # whose remote port is a client's, whatever it happens to be.
        backend_inode = tcp_inode(pid, remote_port=backend_port, not_local_port=self.port)
        self.assertIsNotNone(client_inode, "tern's socket for client port %d" % client_port)
        self.assertIsNotNone(backend_inode, "tern's socket to backend port %d" % backend_port)
        client_fd = fd_of_inode(pid, client_inode)
        backend_fd = fd_of_inode(pid, backend_inode)
        self.assertIsNotNone(client_fd)
        self.assertIsNotNone(backend_fd)
        self.assertNotEqual(client_fd, backend_fd)
        return tern, c, keepalive_options(pid, client_fd), keepalive_options(pid, backend_fd)

    def test_short_idle_probes_as_often(self):
        # An idle time under 10s: probes every idle time, 3 of them.
        tern, c, client, backend = self.sockets_of_one_connection(["--tcp-keepalive", "7s"])
        self.assertEqual(client, (1, 7, 7, 3))
        self.assertEqual(backend, (1, 7, 7, 3))
        self.assertIn(" tcp_keepalive=7s", tern.ready_line())
        self.finish(tern, [c])

    def test_long_idle_probes_every_ten_seconds(self):
        tern, c, client, backend = self.sockets_of_one_connection(["--tcp-keepalive", "2h"])
        self.assertEqual(client, (1, 7200, 10, 3))
        self.assertEqual(backend, (1, 7200, 10, 3))
        self.finish(tern, [c])

    def test_off_by_default_and_with_zero(self):
        for extra in ([], ["--tcp-keepalive", "0"]):
            tern, c, client, backend = self.sockets_of_one_connection(extra)
            self.assertEqual(client[0], 0, "SO_KEEPALIVE on the client side with %s" % extra)
            self.assertEqual(backend[0], 0, "SO_KEEPALIVE on the backend side with %s" % extra)
            self.finish(tern, [c])


# ------------------------------------------------------------------ --crl

class TestCRL(TernTestCase):

    def setUp(self):
        super().setUp()
        check_sanitizers_at_cleanup(self)
        self.crl = os.path.join(self.tmp, "clients.crl")
        shutil.copyfile(PKI.crl_alice, self.crl)

    def start(self, extra=()):
        self.be = self.echo_backend()
        self.ctl_path = os.path.join(self.tmp, "control.sock")
        return self.start_tern([self.be], extra=[
            "--client-ca", PKI.ca, "--verify-client", "require", "--crl", self.crl,
            "--control", self.ctl_path] + list(extra))

    def attempt(self, who):
        """A connection with who's certificate: "ok" after a round trip,
        or the reason of the alert that ended it. In TLS 1.3 the client's
        handshake is over before the server reads its certificate: the
        alert comes with the first read."""
        ctx = client_context()
        ctx.load_cert_chain(who["cert"], who["key"])
        c = self.client(ctx=ctx)
        try:
            c.handshake()
            got = c.exchange(b"hi", expect=2)
            if c.reset or got != b"hi":
                return "ended without an alert (got %r)" % got
            return "ok"
        except ssl.SSLError as e:
            return e.reason
        finally:
            c.close()

    def wait_generation(self, tern, generation):
        wait_for(lambda: "reloaded: generation %d," % generation in tern.log(), RELOADED_WITHIN,
                 "reload to generation %d" % generation)

    def test_revoked_refused_until_watch_reloads_a_new_list(self):
        tern = self.start()
        self.assertIn(" crl=%s " % self.crl, tern.ready_line())
        self.assertEqual(self.attempt(PKI.alice), "SSLV3_ALERT_CERTIFICATE_REVOKED")
        self.assertEqual(self.attempt(PKI.bob), "ok")
        access = tern.wait_access(2)
        self.assertEqual([a["reason"] for a in access], ["tls_error", "done"])
        self.assertEqual(tern.stats()["handshake_failures"], 1)
        # The list now revokes bob too: --watch reloads it.
        with open(PKI.crl_both, "rb") as f:
            write_atomically(self.crl, f.read())
        self.wait_generation(tern, 1)
        changed = [l for l in tern.lines() if "changed on disk: " in l]
        self.assertEqual(len(changed), 1, tern.log())
        self.assertIn(self.crl, changed[0])
        for _ in range(4):  # both workers
            self.assertEqual(self.attempt(PKI.bob), "SSLV3_ALERT_CERTIFICATE_REVOKED")
            self.assertEqual(self.attempt(PKI.alice), "SSLV3_ALERT_CERTIFICATE_REVOKED")
        # Counted when tern closes, after the alert left: a bounded wait.
        wait_for(lambda: tern.stats()["handshake_failures"] == 9, 5, "handshake_failures == 9")
        self.assertEqual(tern.stats()["reload_failures"], 0)
        counters = self.finish(tern)
        self.assertEqual((counters["handshake_failures"], counters["handshakes_full"]), (9, 1))

    def test_reload_command_rereads_it(self):
        tern = self.start(["--watch", "off"])
        self.assertEqual(self.attempt(PKI.bob), "ok")
        with open(PKI.crl_both, "rb") as f:
            write_atomically(self.crl, f.read())
        self.assertEqual(self.attempt(PKI.bob), "ok")  # not reloaded yet
        self.assertEqual(tern.ctl("reload")["ok"], True)
        self.assertEqual(self.attempt(PKI.bob), "SSLV3_ALERT_CERTIFICATE_REVOKED")
        # An empty list: everyone in again.
        with open(PKI.crl_none, "rb") as f:
            write_atomically(self.crl, f.read())
        self.assertEqual(tern.ctl("reload")["ok"], True)
        self.assertEqual(self.attempt(PKI.alice), "ok")
        self.assertEqual(self.attempt(PKI.bob), "ok")
        self.finish(tern)

    def test_broken_list_at_reload_keeps_the_old_one(self):
        tern = self.start()
        write_atomically(self.crl, b"-----BEGIN X509 CRL-----\nnot one\n-----END X509 CRL-----\n")
        # The line, then the counter: the counter is raised before the
        # line is handed to the log thread.
        tern.wait_log(" reload failed", RELOADED_WITHIN)
        self.assertEqual(tern.stats()["reload_failures"], 1)
        failures = [l for l in tern.lines() if " reload failed" in l]
        self.assertEqual(len(failures), 1, tern.log())
        self.assertIn("reload failed, the previous configuration keeps serving: %s: bad PEM CRL ("
                      % self.crl, failures[0])
        # The old list still answers: alice out, bob in (neither "no CRL"
        # nor "every certificate refused").
        for _ in range(2):
            self.assertEqual(self.attempt(PKI.alice), "SSLV3_ALERT_CERTIFICATE_REVOKED")
            self.assertEqual(self.attempt(PKI.bob), "ok")
        self.assertEqual(tern.ctl("reload")["ok"], False)
        self.assertEqual(tern.stats()["reload_failures"], 2)
        self.finish(tern)

    def test_bad_list_at_start_exits_1_naming_it(self):
        cert = self.default_cert()["cert"]
        port = free_port()
        base = ["--listen", "127.0.0.1:%d" % port, "--cert", cert, "--client-ca", PKI.ca, "--crl"]
        missing = os.path.join(self.tmp, "missing.crl")
        r = self.run_tern(base + [missing])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "tern: %s: cannot open: No such file or directory\n" % missing)
        # A certificate where the CRL should be, and a CRL that does not parse.
        r = self.run_tern(base + [PKI.ca])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, r"^tern: %s: no PEM CRL found \([^\n]*\)\n$" % re.escape(PKI.ca))
        bad = os.path.join(self.tmp, "bad.crl")
        with open(PKI.crl_alice, "rb") as f, open(bad, "wb") as out:
            out.write(f.read())
            out.write(b"-----BEGIN X509 CRL-----\nnot one\n-----END X509 CRL-----\n")
        for check in ([], ["--check"]):
            r = self.run_tern(base + [bad] + check)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertRegex(r.stderr, r"^tern: %s: bad PEM CRL \([^\n]*\)\n$" % re.escape(bad))
        self.assertTrue(port_refuses(port), "something listens on the port")
        # Without --client-ca: a usage error.
        r = self.run_tern(["--crl", self.crl])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stderr, "tern: --crl: invalid value '%s' (expected a --client-ca whose "
                         "client certificates it revokes)\n" % self.crl)


# ------------------------------------------ certificate lines escaped

class TestCertificateLinesEscaped(TernTestCase):

    def test_names_and_subject_escaped_in_start_up_and_check_lines(self):
        odd = self.cert("ec", cn='odd "cn" here', name="odd",
                        sans=("DNS:we ird.test", "DNS:plain.test", "IP:127.0.0.1"))
        want = ('names=we\\x20ird.test,plain.test subject=/CN=odd\\x20\\x22cn\\x22\\x20here '
                'key=EC ')
        r = self.run_tern(["--check", "--cert", odd["cert"], "--listen",
                           "127.0.0.1:%d" % free_port()])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [l for l in r.stdout.splitlines() if l.startswith("cert=")]
        self.assertEqual(len(lines), 1, r.stdout)
        self.assertIn(" " + want, lines[0])
        be = self.echo_backend()
        tern = self.start_tern([be], cert=odd["cert"])
        lines = [l for l in tern.lines() if " cert=" in l]
        self.assertEqual(len(lines), 1, tern.log())
        self.assertIn(" " + want, lines[0])
        tern.stop_ok()


if __name__ == "__main__":
    main()
