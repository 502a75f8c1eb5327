"""In-process reload (SPEC section 4; `reload` in section 3, SIGHUP in
section 2): new connections get the re-read certificate on every worker
while a connection opened before keeps streaming exact bytes with the old
one; SIGHUP does the same; a broken certificate, a missing key or a key
that does not match leaves the old configuration serving, answers ok:false
naming the file and counts reload_failures (stats and /metrics); 100
reloads under steady traffic fail no client and leave tern's RSS bounded;
--ticket-keys is re-read, and in-memory ticket keys survive a reload.

The served certificate is compared byte for byte (DER) with the file's.
"""

import os
import re
import shutil
import signal
import ssl
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SCALE, ControlClient, TernTestCase, TLSClient,  # noqa: E402
                     binary_is_sanitized, check_sanitizers_at_cleanup, free_port, main,
                     process_rss, run_ctl, scaled, tern_bin, wait_for)
from test_tickets import TicketConn, TicketWatch, key_line, write_keys  # noqa: E402

MiB = 1 << 20
# The slow stream: one chunk echoed at a time, every PACE seconds.
CHUNK = 4096
PACE = 0.01
# 100 reloads under traffic: client threads, and the RSS growth allowed
# between the 10th and the 100th reload.
CLIENT_THREADS = 4
RSS_GROWTH_LIMIT = 16 * MiB


def der_of(path):
    """The DER of the first certificate in a PEM file."""
    with open(path) as f:
        pem = f.read()
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", pem, re.S)
    if not m:
        raise AssertionError("no certificate in %s" % path)
    return ssl.PEM_cert_to_DER_cert(m.group(0))


def replace_file(src, dst):
    """Copies src over dst atomically (as a deploy tool or a Kubernetes
    Secret update does): a reader sees the old file or the new one."""
    tmp = dst + ".tmp"
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o600)
    os.replace(tmp, dst)


class Stream(threading.Thread):
    """A slow bidirectional stream on one TLS connection: CHUNK random
    bytes out, the same bytes back through the echo backend, every PACE
    seconds, until stopped. Everything sent and received is kept. The
    TLSClient is used by this thread only once it runs."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.c = client
        self.sent = bytearray()
        self.received = bytearray()
        self.rounds = 0
        self.error = None
        self.halt = threading.Event()

    def run(self):
        try:
            while not self.halt.is_set():
                chunk = os.urandom(CHUNK)
                self.sent += chunk
                got = self.c.exchange(chunk, expect=len(chunk), timeout=10)
                self.received += got
                if got != chunk:
                    raise AssertionError("round %d: sent %d bytes, got %d back%s"
                                         % (self.rounds, len(chunk), len(got),
                                            "" if len(got) != len(chunk) else " (different)"))
                self.rounds += 1
                self.halt.wait(PACE)  # pacing the traffic, not synchronisation
        except BaseException as e:  # reported by the test
            self.error = e

    def wait_rounds(self, n, timeout=10):
        wait_for(lambda: self.rounds >= n or self.error is not None, timeout,
                 "%d stream rounds (at %d)" % (n, self.rounds))
        if self.error is not None:
            raise AssertionError("the stream failed after %d rounds: %r"
                                 % (self.rounds, self.error)) from self.error

    def finish(self, tc, timeout=15):
        self.halt.set()
        self.join(scaled(timeout))
        tc.assertFalse(self.is_alive(), "the stream thread did not end")
        if self.error is not None:
            raise AssertionError("the stream failed after %d rounds: %r"
                                 % (self.rounds, self.error)) from self.error
        tc.assertEqual(len(self.received), len(self.sent))
        tc.assertEqual(bytes(self.received), bytes(self.sent), "stream bytes differ")


class ReloadTestCase(TernTestCase):

    def setUp(self):
        super().setUp()
        check_sanitizers_at_cleanup(self)
        self.ctl_path = os.path.join(self.tmp, "control.sock")
        # Two identities for localhost, told apart by their subject.
        self.old = self.cert("ec", cn="old.example", combined=False, name="old")
        self.new = self.cert("ec", cn="new.example", combined=False, name="new")
        self.old_der = der_of(self.old["cert"])
        self.new_der = der_of(self.new["cert"])
        # The files tern is started with and that the tests rewrite.
        self.live_cert = os.path.join(self.tmp, "live.crt")
        self.live_key = os.path.join(self.tmp, "live.key")
        self.install(self.old)

    def install(self, pair):
        replace_file(pair["cert"], self.live_cert)
        replace_file(pair["key"], self.live_key)

    def garble_cert(self):
        with open(self.live_cert, "w") as f:
            f.write("not a certificate\n")

    def name_of(self, der):
        return {self.old_der: "old", self.new_der: "new"}.get(der, "unknown certificate")

    def start(self, backends, extra=(), **kw):
        # --watch off: these are the tests of SIGHUP and `reload`, which
        # test_watch.py's reloads would race with.
        return self.start_tern(backends, cert=self.live_cert,
                               extra=["--key", self.live_key, "--control", self.ctl_path,
                                      "--watch", "off"] + list(extra), **kw)

    def served(self, tern=None):
        """One new connection: (the DER it was served, its worker or None),
        after an echo round trip."""
        c = self.client().handshake()
        der = c.obj.getpeercert(binary_form=True)
        self.assertEqual(c.exchange(b"ping\n", expect=5), b"ping\n")
        worker = tern.conn_of(c)["worker"] if tern else None
        c.close()
        return der, worker

    def assert_serves(self, tern, der, workers=2, tries=60):
        """New connections get `der` on every worker (each has its own
        contexts): connections are opened until each worker was seen."""
        seen = set()
        for _ in range(tries):
            got, worker = self.served(tern)
            self.assertEqual(self.name_of(got), self.name_of(der),
                             "worker %d served the wrong certificate" % worker)
            seen.add(worker)
            if len(seen) == workers:
                return
        self.fail("only workers %s accepted in %d connections" % (sorted(seen), tries))

    def assert_error(self, reply, *needles):
        self.assertIs(reply.get("ok"), False, reply)
        self.assertIsInstance(reply.get("error"), str, reply)
        for n in needles:
            self.assertIn(n, reply["error"])
        return reply["error"]


class TestReload(ReloadTestCase):

    def test_control_reload_new_cert_for_new_connections(self):
        be = self.echo_backend()
        tern = self.start([be])
        self.assert_serves(tern, self.old_der)
        early = self.client().handshake()
        self.assertEqual(self.name_of(early.obj.getpeercert(binary_form=True)), "old")
        early_id = tern.conn_of(early)["id"]
        stream = Stream(early)
        stream.start()
        stream.wait_rounds(5)

        self.install(self.new)
        self.assertEqual(tern.ctl("reload"), {"ok": True, "generation": 1})
        tern.wait_log("reloaded: generation 1")
        at_reload = stream.rounds
        self.assert_serves(tern, self.new_der)
        # The stream from before keeps going on its old contexts.
        stream.wait_rounds(at_reload + 20)
        self.assertEqual(self.name_of(early.obj.getpeercert(binary_form=True)), "old")
        entry = tern.conn_of(early)
        self.assertEqual(entry["id"], early_id)
        stream.finish(self)
        entry = tern.conn_of(early)
        self.assertEqual((entry["bytes_in"], entry["bytes_out"]),
                         (len(stream.sent), len(stream.sent)))
        early.shut_write("close_notify")
        early.recv_until_close()
        # A second reload: the generation counts on.
        self.install(self.old)
        self.assertEqual(tern.ctl("reload"), {"ok": True, "generation": 2})
        self.assert_serves(tern, self.old_der)
        stats = tern.stats()
        self.assertEqual(stats["reload_failures"], 0)
        self.assertEqual(stats["handshake_failures"], 0)
        counters = self.finish(tern, [early])
        self.assertEqual(counters["handshake_failures"], 0)
        access = [a for a in tern.access_lines() if a.get("id") == early_id]
        self.assertEqual(len(access), 1)
        self.assertEqual(access[0]["reason"], "done")
        self.assertEqual(access[0]["bytes_in"], len(stream.sent))

    def test_sighup(self):
        be = self.echo_backend()
        tern = self.start([be])
        early = self.client().handshake()
        self.assertEqual(early.exchange(b"before\n", expect=7), b"before\n")
        self.install(self.new)
        tern.send_signal(signal.SIGHUP)
        tern.wait_log("reloaded: generation 1", what="the SIGHUP reload's log line")
        self.assertIsNone(tern.proc.poll(), "tern exited on SIGHUP")
        self.assert_serves(tern, self.new_der)
        self.assertEqual(early.exchange(b"after\n", expect=6), b"after\n")
        self.assertEqual(self.name_of(early.obj.getpeercert(binary_form=True)), "old")
        # SIGHUP and the control command share the generation.
        self.install(self.old)
        self.assertEqual(tern.ctl("reload"), {"ok": True, "generation": 2})
        self.install(self.new)
        tern.send_signal(signal.SIGHUP)
        tern.wait_log("reloaded: generation 3")
        self.assert_serves(tern, self.new_der)
        self.assertEqual(early.exchange(b"still\n", expect=6), b"still\n")
        self.finish(tern, [early])

    def test_failed_reload_keeps_the_old_configuration(self):
        be = self.echo_backend()
        for attempt in range(3):
            mport = free_port()
            try:
                tern = self.start([be], extra=["--metrics", "127.0.0.1:%d" % mport])
                break
            except AssertionError:
                # free_port() races with other processes, as in start_tern.
                if attempt == 2 or "in use" not in self._terns[-1].log():
                    raise

        def metric():
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport,
                                        timeout=scaled(5)) as r:
                text = r.read().decode()
            m = re.search(r"^tern_reload_failures_total (\d+)$", text, re.M)
            self.assertIsNotNone(m, "no tern_reload_failures_total in /metrics")
            return int(m.group(1))

        early = self.client().handshake()
        self.assertEqual(early.exchange(b"0\n", expect=2), b"0\n")
        prefix = "reload failed, the previous configuration keeps serving: "
        cases = [
            # (what, how the files are broken, the file the error names)
            ("a certificate that does not parse", self.garble_cert, self.live_cert),
            ("a missing key file", lambda: os.unlink(self.live_key), self.live_key),
            ("a key that does not match",
             lambda: replace_file(self.new["cert"], self.live_cert), self.live_key),
        ]
        for n, (what, breakage, path) in enumerate(cases, 1):
            with self.subTest(what):
                self.install(self.old)
                breakage()
                error = self.assert_error(tern.ctl("reload"), path)
                self.assertTrue(error.startswith(path + ": "), error)
                tern.wait_log(prefix + error)
                self.assertEqual(tern.stats()["reload_failures"], n)
                self.assertEqual(metric(), n)
                self.assert_serves(tern, self.old_der)
                self.assertEqual(early.exchange(b"%d\n" % n, expect=2), b"%d\n" % n)
        self.assertNotIn("reloaded: generation", tern.log())
        # `tern ctl reload` says so too, exit 1.
        r = run_ctl(self, ["--control", self.ctl_path, "reload"])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(self.live_key, r.stdout + r.stderr)
        self.assertEqual(tern.stats()["reload_failures"], 4)

        # Fixed: the next reload takes, generation 1 (failures made none).
        self.install(self.new)
        r = run_ctl(self, ["--control", self.ctl_path, "--json", "reload"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.strip(), '{"ok":true,"generation":1}')
        tern.wait_log("reloaded: generation 1")
        self.assert_serves(tern, self.new_der)
        self.assertEqual(tern.ctl("reload"), {"ok": True, "generation": 2})
        self.assertEqual(tern.stats()["reload_failures"], 4)
        self.assertEqual(metric(), 4)
        self.assertEqual(early.exchange(b"end\n", expect=4), b"end\n")
        self.finish(tern, [early])

    def test_100_reloads_under_traffic(self):
        be = self.echo_backend()
        tern = self.start([be], access_log=False)
        accepted = {self.old_der, self.new_der}
        halt = threading.Event()
        done = [0] * CLIENT_THREADS
        failures = []
        lock = threading.Lock()

        def client_loop(i):
            payload = b"%d" % i * 64
            while not halt.is_set():
                c = None
                try:
                    c = TLSClient(self.port).handshake()
                    der = c.obj.getpeercert(binary_form=True)
                    if der not in accepted:
                        raise AssertionError("served an unknown certificate")
                    got = c.exchange(payload, expect=len(payload))
                    if got != payload:
                        raise AssertionError("echo: sent %d bytes, got %d"
                                             % (len(payload), len(got)))
                    done[i] += 1
                except Exception as e:  # counted and reported below
                    with lock:
                        failures.append(repr(e))
                finally:
                    if c:
                        c.close()

        threads = [threading.Thread(target=client_loop, args=(i,), daemon=True)
                   for i in range(CLIENT_THREADS)]
        for t in threads:
            t.start()

        def stop_clients():
            halt.set()
            for t in threads:
                t.join(scaled(15))
        self.addCleanup(stop_clients)
        wait_for(lambda: min(done) >= 3, 10, "every client thread under way")

        ctl = ControlClient(self.ctl_path)
        self.addCleanup(ctl.close)
        generation = 0
        rss = {}
        started = time.monotonic()
        for n in range(1, 101):
            self.install(self.new if n % 2 else self.old)
            before = sum(done)
            reply = ctl.cmd("reload", timeout=10)
            generation += 1
            self.assertEqual(reply, {"ok": True, "generation": generation}, "reload #%d" % n)
            # Each generation serves traffic before the next reload.
            wait_for(lambda: sum(done) > before or failures, 10,
                     "a client connection after reload #%d" % n)
            self.assertEqual(failures, [], "client failures during reload #%d" % n)
            if n in (10, 100):
                rss[n] = process_rss(tern.proc.pid)
        elapsed = time.monotonic() - started
        after_last = list(done)
        wait_for(lambda: all(d >= a + 2 for d, a in zip(done, after_last)), 10,
                 "every client thread past the last reload")
        stop_clients()
        self.assertEqual(failures, [], "client connections failed during the reloads")
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assert_serves(tern, self.old_der)  # reload #100 installed the old pair

        sys.stderr.write("\n100 reloads under traffic in %.1fs, %d client connections; "
                         "RSS after 10 reloads: %.1f MiB, after 100: %.1f MiB\n"
                         % (elapsed, sum(done), rss[10] / MiB, rss[100] / MiB))
        sys.stderr.flush()
        stats = tern.stats()
        self.assertEqual(stats["reload_failures"], 0)
        self.assertEqual(stats["handshake_failures"], 0)
        self.assertEqual(stats["conns_total"], stats["handshakes_full"])
        if SCALE > 1 or binary_is_sanitized(tern_bin()):
            sys.stderr.write("(sanitizer build: the RSS bound is not checked)\n")
        else:
            self.assertLess(rss[100] - rss[10], RSS_GROWTH_LIMIT,
                            "RSS grew by %.1f MiB over 90 reloads"
                            % ((rss[100] - rss[10]) / MiB))
        self.finish(tern)


class TestReloadTicketKeys(ReloadTestCase):

    def test_ticket_key_file_reread(self):
        k1, k2, k3, k4 = (os.urandom(80) for _ in range(4))
        path = os.path.join(self.tmp, "ticket.keys")
        write_keys(path, [key_line(k1), key_line(k2)])
        be = self.echo_backend()
        tern = self.start([be], extra=["--ticket-keys", path])
        watch = TicketWatch()
        a = TicketConn(self, watch, self.port)
        a.wait_tickets(2)
        self.assertEqual(a.ticket_key_names(), [k1[:16].hex()] * 2)
        s1 = a.session()
        a.close()

        # A new first key: new sessions are made under it, and sessions
        # under a key still in the file resume.
        write_keys(path, [key_line(k3), key_line(k1)])
        self.assertEqual(tern.ctl("reload"), {"ok": True, "generation": 1})
        b = TicketConn(self, watch, self.port)
        self.assertFalse(b.resumed())
        b.wait_tickets(2)
        self.assertEqual(b.ticket_key_names(), [k3[:16].hex()] * 2,
                         "new tickets are not under the file's new first key")
        s3 = b.session()
        b.close()
        c = TicketConn(self, watch, self.port, session=s3)
        self.assertTrue(c.resumed(), "a ticket under the new key did not resume")
        self.assertEqual(c.c.exchange(b"k3", expect=2), b"k3")
        c.close()
        d = TicketConn(self, watch, self.port, session=s1)
        self.assertTrue(d.resumed(), "k1 is still in the file, yet its session did not resume")
        d.close()

        # k1 and k3 gone: their sessions make full handshakes.
        write_keys(path, [key_line(k4)])
        self.assertEqual(tern.ctl("reload"), {"ok": True, "generation": 2})
        for s in (s1, s3):
            e = TicketConn(self, watch, self.port, session=s)
            self.assertFalse(e.resumed(), "a session resumed after its key left the file")
            e.wait_tickets(2)
            self.assertEqual(e.ticket_key_names(), [k4[:16].hex()] * 2)
            s4 = e.session()
            e.close()

        # A broken key file fails the whole reload: the keys and the
        # certificate in use stay.
        write_keys(path, [key_line(k4), "garbage\n"])
        self.install(self.new)
        self.assert_error(tern.ctl("reload"), path + ":2:")
        self.assertEqual(tern.stats()["reload_failures"], 1)
        f = TicketConn(self, watch, self.port, session=s4)
        self.assertTrue(f.resumed(), "a failed reload dropped the ticket keys in use")
        f.close()
        # (A resumption shows the session's certificate: a full handshake
        # shows the one served now.)
        self.assertEqual(self.name_of(self.served()[0]), "old",
                         "a failed reload installed the new certificate anyway")
        wait_for(lambda: tern.stats()["conns_active"] == 0, 5, "conns_active == 0")
        stats = tern.stats()
        self.assertEqual((stats["handshakes_full"], stats["handshakes_resumed"]), (5, 3))
        self.finish(tern)

    def test_in_memory_ticket_keys_survive_reload(self):
        be = self.echo_backend()
        tern = self.start([be])
        watch = TicketWatch()
        a = TicketConn(self, watch, self.port)
        a.wait_tickets(2)
        session = a.session()
        a.close()
        self.install(self.new)
        self.assertEqual(tern.ctl("reload"), {"ok": True, "generation": 1})
        # Sessions from before a reload still resume (on either worker).
        for n in range(6):
            b = TicketConn(self, watch, self.port, session=session)
            self.assertTrue(b.resumed(), "resumption #%d after a reload made a full handshake"
                            % n)
            self.assertEqual(b.c.exchange(b"r", expect=1), b"r")
            b.close()
        self.finish(tern)


if __name__ == "__main__":
    main()
