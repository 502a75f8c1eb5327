"""TLS 1.3 post-handshake client authentication on demand (SPEC section
3, `verify-client ID`): the CertificateRequest and the tickets after it
counted exactly on the client, the identity in `conns` and the log, data
flowing both ways around it, openssl s_client as a second client, every
refusal (no post_handshake_auth offered, no --client-ca, TLS 1.2, unknown
IDs, a request already in flight), a certificate from another CA, the
identity carried by the tickets issued after it into a resumption, and
--client-ca re-read by a reload.

Handshake messages are seen through Python's SSLContext._msg_callback, as
test_tickets.py counts tickets: every message the client reads or writes
is logged in order per connection (MessageLog). The client must keep
reading for OpenSSL to process the CertificateRequest and answer it;
PHAConn.pump_once() reads and then sends what OpenSSL wrote in answer.
"""

import os
import random
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TernTestCase, _openssl,  # noqa: E402
                     check_sanitizers_at_cleanup, client_context, drain_stream, main,
                     read_stream_until, scaled, wait_for)

HANDSHAKE = ssl._TLSContentType.HANDSHAKE
ALERT = ssl._TLSContentType.ALERT
CERTIFICATE = ssl._TLSMessageType.CERTIFICATE
CERTIFICATE_REQUEST = ssl._TLSMessageType.CERTIFICATE_REQUEST
CERTIFICATE_VERIFY = ssl._TLSMessageType.CERTIFICATE_VERIFY
FINISHED = ssl._TLSMessageType.FINISHED
NEW_SESSION_TICKET = ssl._TLSMessageType.NEWSESSION_TICKET

# After the expected messages arrived: how long nothing more may arrive
# (a lower bound: not scaled).
QUIET = 0.3


# ------------------------------------------------------------ certificates

def make_ca(directory, name, cn):
    """A self-signed EC CA certificate (basicConstraints CA:TRUE)."""
    key = os.path.join(directory, name + ".key")
    crt = os.path.join(directory, name + ".crt")
    _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-out", key], directory)
    _openssl(["req", "-new", "-x509", "-key", key, "-out", crt, "-days", "30",
              "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], directory)
    return {"cert": crt, "key": key}


def make_client_cert(directory, ca, name, cn):
    """An EC client certificate (extendedKeyUsage clientAuth) for /CN=cn,
    signed by ca. Returns {"cert", "key"}."""
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    crt = os.path.join(directory, name + ".crt")
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-out", key], directory)
    _openssl(["req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn], directory)
    _openssl(["x509", "-req", "-in", csr, "-CA", ca["cert"], "-CAkey", ca["key"],
              "-set_serial", str(random.getrandbits(62) + 1), "-days", "30",
              "-extfile", ext, "-out", crt], directory)
    return {"cert": crt, "key": key}


class PKI:
    """Two unrelated CAs: alice and bob hold certificates from the first,
    mallory from the second. Made once for the module (setUpModule), in a
    directory of its own: a dozen openssl runs add up on a loaded
    machine."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tern-integ-pki-")
        self.ca = make_ca(self.dir, "ca", "tern test CA")
        self.other_ca = make_ca(self.dir, "other-ca", "another CA")
        self.alice = make_client_cert(self.dir, self.ca, "alice", "alice")
        self.bob = make_client_cert(self.dir, self.ca, "bob", "bob")
        self.mallory = make_client_cert(self.dir, self.other_ca, "mallory", "mallory")

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------ client

class MessageLog:
    """A client SSLContext (post_handshake_auth on unless pha=False, with
    cert loaded when given) whose message callback logs every handshake
    message and alert the client reads or writes, per connection, in
    order. All in one thread."""

    def __init__(self, cert=None, pha=True, **ctx_kw):
        self.ctx = client_context(**ctx_kw)
        if pha:
            self.ctx.post_handshake_auth = True
        if cert:
            self.ctx.load_cert_chain(cert["cert"], cert["key"])
        self.log = []  # (SSLObject, "read" | "write", content type, message or alert type)
        self.ctx._msg_callback = self._callback

    def _callback(self, conn, direction, version, content_type, msg_type, data):
        if content_type in (HANDSHAKE, ALERT):
            self.log.append((conn, direction, content_type, msg_type))


class PHAConn:
    """A TLSClient on a MessageLog context, with bounded reads that let
    OpenSSL answer a CertificateRequest (and send that answer)."""

    def __init__(self, tc, log, port, session=None):
        self.tc = tc
        self.mlog = log
        self.c = tc.client(port, ctx=log.ctx, session=session).handshake()
        self.data = bytearray()
        self.error = None  # an ssl.SSLError raised while reading (an alert)

    def messages(self, direction="read"):
        return [m for (obj, d, ct, m) in self.mlog.log
                if obj is self.c.obj and d == direction and ct == HANDSHAKE]

    def alerts(self, direction="read"):
        return [m for (obj, d, ct, m) in self.mlog.log
                if obj is self.c.obj and d == direction and ct == ALERT]

    def requests(self):
        return self.messages().count(CERTIFICATE_REQUEST)

    def tickets(self):
        return self.messages().count(NEW_SESSION_TICKET)

    def tickets_after_request(self):
        """Tickets read after the last CertificateRequest (0 without one)."""
        reads = self.messages()
        if CERTIFICATE_REQUEST not in reads:
            return 0
        last = len(reads) - 1 - reads[::-1].index(CERTIFICATE_REQUEST)
        return reads[last + 1:].count(NEW_SESSION_TICKET)

    def session(self):
        return self.c.obj.session

    def resumed(self):
        return self.c.obj.session_reused

    def ended(self):
        return self.error is not None or self.c._eof_seen()

    def round_trip(self, payload, timeout=10):
        """Sends payload through the echo backend and checks it comes back
        exactly."""
        got = self.c.exchange(payload, expect=len(payload), timeout=timeout)
        self.tc.assertEqual(len(got), len(payload), "echoed bytes")
        self.tc.assertEqual(got, payload, "echoed bytes differ")
        self.c._flush()  # what OpenSSL answered while reading, if anything

    def pump_once(self, wait):
        self.c.wait_ciphertext(wait)
        if self.error is None:
            try:
                self.c._read_available(self.data)
            except ssl.SSLError as e:
                self.error = e
        # The answer to a CertificateRequest sits in the BIO: send it.
        self.c._flush()

    def pump_for(self, seconds):
        end = time.monotonic() + seconds
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            self.pump_once(min(remaining, 0.05))

    def pump_until(self, cond, timeout, what):
        deadline = time.monotonic() + scaled(timeout)
        while not cond():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("timed out after %.1fs waiting for %s (read: %s, eof=%s, "
                                     "error=%r)" % (scaled(timeout), what, self.messages(),
                                                    self.c._eof_seen(), self.error))
            self.pump_once(min(remaining, 0.05))

    def close(self):
        self.c.close()


# ------------------------------------------------------------------- tests

_pki = None


def setUpModule():
    global _pki
    _pki = PKI()


def tearDownModule():
    _pki.close()


class VerifyClientTestCase(TernTestCase):

    def setUp(self):
        super().setUp()
        self.pki = _pki
        check_sanitizers_at_cleanup(self)
        self.ctl_path = os.path.join(self.tmp, "control.sock")

    def tern_ca(self, backends, ca=True, extra=(), **kw):
        """tern with --control and (ca=True) --client-ca the test CA, or
        ca=a path, or ca=None for none."""
        args = ["--control", self.ctl_path]
        if ca is True:
            args += ["--client-ca", self.pki.ca["cert"]]
        elif ca:
            args += ["--client-ca", ca]
        return self.start_tern(backends, extra=args + list(extra), **kw)

    def conn(self, cert=None, pha=True, session=None, **ctx_kw):
        return PHAConn(self, MessageLog(cert=cert, pha=pha, **ctx_kw), self.port, session=session)

    def assert_error(self, reply, *needles):
        self.assertIs(reply.get("ok"), False, reply)
        self.assertIsInstance(reply.get("error"), str, reply)
        for n in needles:
            self.assertIn(n, reply["error"])
        return reply["error"]

    def verified(self, tern, c, subject, timeout=5):
        """Waits (bounded) until conns shows subject for c; the entry."""
        return wait_for(lambda: (lambda e: e if e["client_cert"] == subject else None)(
            tern.conn_of(c.c)), timeout, "client_cert %s in conns" % subject)

    def entry_now(self, tern, c):
        """c's conns entry, or None when tern does not list it (no wait)."""
        for e in tern.conns():
            if e["peer"] == c.c.peer_text():
                return e
        return None

    def pha_lines(self, tern, cid=None):
        return [line for line in tern.lines() if "post-handshake client certificate" in line
                and (cid is None or (" conn %d: " % cid) in line)]


class TestVerifyClient(VerifyClientTestCase):

    def test_python_client_certificate_request_then_tickets(self):
        be = self.echo_backend()
        tern = self.tern_ca([be])
        a = self.conn(cert=self.pki.alice)
        bystander = self.conn(cert=self.pki.bob)
        self.assertEqual(a.c.version(), "TLSv1.3")
        a.pump_until(lambda: a.tickets() >= 2, 3, "the 2 automatic tickets")
        before = os.urandom(40000)
        a.round_trip(before)
        bystander.round_trip(b"bystander before\n")
        entry = tern.conn_of(a.c)
        aid = entry["id"]
        self.assertIsNone(entry["client_cert"], "a certificate before anyone asked for one")

        self.assertEqual(tern.ctl("num-tickets %d 3" % aid), {"ok": True})
        self.assertEqual(tern.ctl("verify-client %d" % aid), {"ok": True})
        # Data keeps flowing while the client answers.
        during = os.urandom(40000)
        a.round_trip(during)
        a.pump_until(lambda: a.tickets_after_request() >= 3, 5,
                     "3 tickets after the CertificateRequest")
        a.pump_for(QUIET)
        reads = a.messages("read")
        self.assertEqual(reads.count(CERTIFICATE_REQUEST), 1, reads)
        cr = reads.index(CERTIFICATE_REQUEST)
        self.assertEqual(reads[:cr].count(NEW_SESSION_TICKET), 2, reads)
        self.assertEqual(reads[cr + 1:], [NEW_SESSION_TICKET] * 3,
                         "exactly num-tickets tickets after the CertificateRequest")
        # The client answered: Certificate, CertificateVerify, Finished.
        writes = a.messages("write")
        self.assertEqual(writes[-3:], [CERTIFICATE, CERTIFICATE_VERIFY, FINISHED], writes)
        self.assertEqual(a.alerts(), [])

        entry = self.verified(tern, a, "/CN=alice")
        self.assertEqual((entry["num_tickets"], entry["tickets_sent"]), (3, 5))
        self.assertIsNone(tern.conn_of(bystander.c)["client_cert"],
                          "another connection got alice's identity")
        tern.wait_log("conn %d: post-handshake client certificate /CN=alice (verify: ok)" % aid)
        self.assertEqual(len(self.pha_lines(tern)), 1, self.pha_lines(tern))

        after = os.urandom(40000)
        a.round_trip(after)
        bystander.round_trip(b"bystander after\n")
        self.assertEqual(bystander.requests(), 0)
        entry = tern.conn_of(a.c)
        total = len(before) + len(during) + len(after)
        self.assertEqual((entry["bytes_in"], entry["bytes_out"]), (total, total))
        self.assertEqual(entry["client_cert"], "/CN=alice")
        stats = tern.stats()
        self.assertEqual(stats["tickets_sent"], 2 + 3 + 2)
        self.assertEqual(stats["handshake_failures"], 0)
        self.finish(tern, [a, bystander])

    def test_openssl_s_client(self):
        be = self.echo_backend()
        tern = self.tern_ca([be])
        p = self.popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port,
                        "-servername", "localhost", "-tls1_3", "-enable_pha",
                        "-cert", self.pki.alice["cert"], "-key", self.pki.alice["key"],
                        "-nocommands", "-msg"],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        mark1 = b"tern-pha-1-" + os.urandom(8).hex().encode() + b"\n"
        mark2 = b"tern-pha-2-" + os.urandom(8).hex().encode() + b"\n"
        p.stdin.write(mark1)
        p.stdin.flush()
        # -msg prints every message; the echo follows "read R BLOCK" lines.
        out1 = read_stream_until(p.stdout, lambda b: mark1 in b, 10, "the first echo")
        self.assertNotIn(b"CertificateRequest", out1)
        conns = tern.conns()
        self.assertEqual(len(conns), 1, conns)
        cid = conns[0]["id"]
        self.assertIsNone(conns[0]["client_cert"])
        self.assertEqual(tern.ctl("verify-client %d" % cid), {"ok": True})
        # s_client reads the request and answers it on its own.
        entry = wait_for(lambda: (lambda e: e if e[0]["client_cert"] else None)(tern.conns()),
                         5, "client_cert in conns")[0]
        self.assertEqual(entry["client_cert"], "/CN=alice")
        p.stdin.write(mark2)
        p.stdin.flush()
        out2 = read_stream_until(p.stdout, lambda b: mark2 in b, 10, "the second echo")
        text = out2.decode(errors="replace")
        self.assertRegex(text, r"<<< TLS 1\.3, Handshake \[length [0-9a-f]+\], CertificateRequest")
        request_at = text.index("CertificateRequest")
        for msg in ("Certificate", "CertificateVerify", "Finished"):
            self.assertRegex(text[request_at:], r">>> TLS 1\.3, Handshake \[length [0-9a-f]+\], "
                             + msg + r"\n", "s_client did not send its %s" % msg)
        self.assertEqual(text.count("CertificateRequest"), 1)
        tern.wait_log("conn %d: post-handshake client certificate /CN=alice (verify: ok)" % cid)
        # stdin's end: s_client sends close_notify and exits 0.
        p.stdin.close()
        rest = drain_stream(p.stdout, 10)
        self.assertEqual(p.wait(timeout=scaled(10)), 0, drain_stream(p.stderr, 1))
        self.assertEqual((out1 + out2 + rest).count(mark1), 1)
        access = tern.wait_access(1)[0]
        self.assertEqual(access["reason"], "done")
        self.assertEqual((access["bytes_in"], access["bytes_out"]),
                         (len(mark1) + len(mark2),) * 2)
        tern.stop_ok()

    def test_request_twice(self):
        be = self.echo_backend()
        tern = self.tern_ca([be])
        a = self.conn(cert=self.pki.alice)
        aid = tern.conn_of(a.c, handshake_done=True)["id"]
        # The client reads nothing between the two: the first request is
        # still unanswered when the second comes.
        self.assertEqual(tern.ctl("verify-client %d" % aid), {"ok": True})
        self.assertEqual(self.assert_error(tern.ctl("verify-client %d" % aid)),
                         "connection %d already has a certificate request in flight" % aid)
        a.round_trip(b"answer it\n")
        self.verified(tern, a, "/CN=alice")
        # The log line is written once tern took the answer as complete,
        # which is when a new request is allowed.
        wait_for(lambda: len(self.pha_lines(tern, aid)) == 1, 5, "the log line")
        a.pump_until(lambda: a.tickets_after_request() >= 2, 3, "tickets after the request")
        a.pump_for(QUIET)
        self.assertEqual(a.requests(), 1, "the refused request went out anyway")
        # Once answered, the connection may be asked again.
        self.assertEqual(tern.ctl("verify-client %d" % aid), {"ok": True})
        a.round_trip(b"answer it again\n")
        a.pump_until(lambda: a.requests() == 2 and a.tickets_after_request() >= 2, 3,
                     "the second request and its tickets")
        wait_for(lambda: len(self.pha_lines(tern, aid)) == 2, 5, "a second log line")
        self.assertEqual(tern.conn_of(a.c)["client_cert"], "/CN=alice")
        a.round_trip(b"still\n")
        self.finish(tern, [a])

    def test_tickets_after_it_carry_the_identity(self):
        be = self.echo_backend()
        tern = self.tern_ca([be])
        a = self.conn(cert=self.pki.alice)
        a.pump_until(lambda: a.tickets() >= 2, 3, "the automatic tickets")
        anonymous = a.session()  # a ticket from before the request
        aid = tern.conn_of(a.c, handshake_done=True)["id"]
        self.assertEqual(tern.ctl("num-tickets %d 1" % aid), {"ok": True})
        self.assertEqual(tern.ctl("verify-client %d" % aid), {"ok": True})
        a.round_trip(b"who am I\n")
        a.pump_until(lambda: a.tickets_after_request() >= 1, 3, "the ticket after the request")
        self.verified(tern, a, "/CN=alice")
        identified = a.session()  # the last ticket: issued after alice's Finished
        self.assertNotEqual(identified.id, anonymous.id)

        # Resuming with it: OpenSSL restores the peer certificate from the
        # session, so the new connection is alice's too, without asking.
        # (Python resumes a session only on the context that made it.)
        b = PHAConn(self, a.mlog, self.port, session=identified)
        self.assertTrue(b.resumed(), "the ticket issued after the request did not resume")
        # tern completes the handshake when the client's Finished arrives,
        # which may be a moment after the client is done: until then the
        # entry says resumed false.
        entry = wait_for(lambda: (lambda e: e if e["resumed"] is True else None)(
            tern.conn_of(b.c)), 5, "tern's entry for b says resumed")
        self.assertEqual(entry["client_cert"], "/CN=alice",
                         "the resumed connection lost the identity its ticket carries")
        self.assertEqual(b.messages("write").count(CERTIFICATE), 0,
                         "the client sent its certificate again")
        b.round_trip(b"resumed as alice\n")
        # A ticket from before the request resumes without an identity.
        c = PHAConn(self, a.mlog, self.port, session=anonymous)
        self.assertTrue(c.resumed())
        wait_for(lambda: tern.conn_of(c.c)["resumed"] is True, 5, "tern's entry for c resumed")
        self.assertIsNone(tern.conn_of(c.c)["client_cert"],
                          "a ticket from before the request carries an identity")
        c.round_trip(b"resumed anonymously\n")
        self.assertEqual(tern.stats()["handshakes_resumed"], 2)
        self.finish(tern, [a, b, c])


class TestVerifyClientRefused(VerifyClientTestCase):

    def test_client_did_not_offer_post_handshake_auth(self):
        be = self.echo_backend()
        tern = self.tern_ca([be])
        a = self.conn(cert=self.pki.alice, pha=False)
        a.round_trip(b"before\n")
        aid = tern.conn_of(a.c, handshake_done=True)["id"]
        self.assertEqual(self.assert_error(tern.ctl("verify-client %d" % aid)),
                         "the client of connection %d did not offer post-handshake "
                         "authentication" % aid)
        a.round_trip(b"after\n")
        a.pump_for(QUIET)
        self.assertEqual(a.requests(), 0, "a CertificateRequest went to a client that did "
                         "not offer post-handshake auth")
        self.assertFalse(a.ended())
        self.assertIsNone(tern.conn_of(a.c)["client_cert"])
        self.assertEqual(self.pha_lines(tern), [])
        self.finish(tern, [a])

    def test_no_client_ca(self):
        be = self.echo_backend()
        tern = self.tern_ca([be], ca=None)
        a = self.conn(cert=self.pki.alice)
        a.round_trip(b"before\n")
        aid = tern.conn_of(a.c, handshake_done=True)["id"]
        self.assert_error(tern.ctl("verify-client %d" % aid), "no --client-ca configured",
                          str(aid))
        a.round_trip(b"after\n")
        a.pump_for(QUIET)
        self.assertEqual(a.requests(), 0)
        self.assertIsNone(tern.conn_of(a.c)["client_cert"])
        self.finish(tern, [a])

    def test_tls12_and_bad_ids(self):
        be = self.echo_backend()
        tern = self.tern_ca([be])
        old = self.conn(cert=self.pki.alice, max_version=ssl.TLSVersion.TLSv1_2)
        self.assertEqual(old.c.version(), "TLSv1.2")
        old.round_trip(b"before\n")
        oid = tern.conn_of(old.c)["id"]
        self.assertEqual(self.assert_error(tern.ctl("verify-client %d" % oid)),
                         "connection %d is TLS 1.2: post-handshake authentication needs "
                         "TLS 1.3" % oid)
        old.round_trip(b"after\n")
        self.assertIsNone(tern.conn_of(old.c)["client_cert"])
        unknown = oid + 1000
        self.assert_error(tern.ctl("verify-client %d" % unknown), str(unknown))
        self.assert_error(tern.ctl("verify-client %d" % ((7 << 48) | 1)))  # no worker 7
        self.assertEqual(self.assert_error(tern.ctl("verify-client")),
                         "verify-client: expected ID")
        self.assert_error(tern.ctl("verify-client all"))  # one connection only
        self.assert_error(tern.ctl("verify-client %d 1" % oid))
        self.assertEqual(tern.stats()["conns_active"], 1)
        old.round_trip(b"unaffected\n")
        self.finish(tern, [old])


class TestForeignCertificate(VerifyClientTestCase):

    def _rejected(self, tern):
        """A client whose certificate comes from another CA answers a
        request; returns (that PHAConn, its conn ID, a bystander)."""
        bystander = self.conn(cert=self.pki.bob)
        bystander.round_trip(b"bystander\n")
        m = self.conn(cert=self.pki.mallory)
        m.round_trip(b"mallory before\n")
        mid = tern.conn_of(m.c)["id"]
        self.assertEqual(tern.ctl("verify-client %d" % mid), {"ok": True})
        try:
            m.c.exchange(b"mallory after\n", timeout=5)
        except ssl.SSLError as e:
            m.error = e
        m.pump_until(m.ended, 5, "the connection to end")
        return m, mid, bystander

    def test_other_ca_ends_that_connection_only(self):
        be = self.echo_backend()
        tern = self.tern_ca([be])
        m, mid, bystander = self._rejected(tern)
        self.assertEqual(m.requests(), 1)
        self.assertEqual(m.messages("write")[-3:], [CERTIFICATE, CERTIFICATE_VERIFY, FINISHED])
        # The connection is gone and was never listed with mallory's name.
        wait_for(lambda: all(e["id"] != mid for e in tern.conns()), 5,
                 "connection %d to leave conns" % mid)
        self.assertEqual(self.pha_lines(tern), [])
        access = [a for a in tern.wait_access(1) if a.get("id") == mid]
        self.assertEqual(len(access), 1, tern.access_lines())
        self.assertEqual(access[0]["reason"], "tls_error")
        # Other connections are unaffected, old and new; alice still gets in.
        bystander.round_trip(b"bystander still\n")
        a = self.conn(cert=self.pki.alice)
        aid = tern.conn_of(a.c, handshake_done=True)["id"]
        self.assertEqual(tern.ctl("verify-client %d" % aid), {"ok": True})
        a.round_trip(b"alice\n")
        self.verified(tern, a, "/CN=alice")
        self.assertIsNone(tern.conn_of(bystander.c)["client_cert"])
        stats = tern.stats()
        self.assertEqual((stats["conns_total"], stats["conns_active"]), (3, 2))
        self.assertEqual(stats["handshakes_full"], 3)
        counters = self.finish(tern, [a, bystander, m])
        self.assertEqual(counters["conns_total"], 3)

    def test_other_ca_gets_an_alert(self):
        be = self.echo_backend()
        tern = self.tern_ca([be])
        m, mid, bystander = self._rejected(tern)
        self.assertTrue(m.error is not None or m.alerts(),
                        "the client got EOF without a TLS alert (eof=%s ragged=%s)"
                        % (m.c.got_eof, m.c.ragged))
        self.finish(tern, [bystander, m])

    def test_other_ca_is_logged(self):
        be = self.echo_backend()
        tern = self.tern_ca([be])
        m, mid, bystander = self._rejected(tern)
        wait_for(lambda: any(re.search(r" (info|warn|error) .*conn %d\b.*(verif|certificate)"
                                       % mid, line) for line in tern.lines()),
                 2, "a log line about connection %d's rejected certificate" % mid)
        self.finish(tern, [bystander, m])


class TestClientCAReload(VerifyClientTestCase):

    def test_reload_rereads_client_ca(self):
        live = os.path.join(self.tmp, "client-ca.pem")
        shutil.copy(self.pki.ca["cert"], live)
        be = self.echo_backend()
        # --watch off: this is `reload`'s test; the watch has its own.
        tern = self.tern_ca([be], ca=live, extra=["--watch", "off"])

        def attempt(cert):
            c = self.conn(cert=cert)
            cid = tern.conn_of(c.c, handshake_done=True)["id"]
            self.assertEqual(tern.ctl("verify-client %d" % cid), {"ok": True})
            try:
                c.c.exchange(b"x", expect=1, timeout=5)
            except ssl.SSLError as e:
                c.error = e

            def subject():
                entry = self.entry_now(tern, c)
                return entry["client_cert"] if entry else None
            c.pump_until(lambda: c.ended() or subject(), 5, "the answer to be judged")
            verdict = None if c.ended() else subject()
            c.close()
            return verdict

        self.assertEqual(attempt(self.pki.alice), "/CN=alice")
        self.assertIsNone(attempt(self.pki.mallory))
        # Trust the other CA instead.
        shutil.copy(self.pki.other_ca["cert"], live + ".new")
        os.replace(live + ".new", live)
        reply = tern.ctl("reload")
        self.assertEqual(reply, {"ok": True, "generation": 1})
        self.assertEqual(attempt(self.pki.mallory), "/CN=mallory")
        self.assertIsNone(attempt(self.pki.alice))
        # A CA file that does not parse: refused, the CA in use stays.
        with open(live, "w") as f:
            f.write("not a certificate\n")
        self.assert_error(tern.ctl("reload"), live)
        self.assertEqual(tern.stats()["reload_failures"], 1)
        self.assertEqual(attempt(self.pki.mallory), "/CN=mallory")
        self.finish(tern, [])


if __name__ == "__main__":
    main()
