"""Session ticket keys (SPEC sections 2 and 3): resumption across workers
and across tern instances sharing --ticket-keys, TLS 1.2 included, and key
rotation from the file, in memory and on a timer. The clients and helpers
are test_tickets.py's (TicketWatch counts every NewSessionTicket a client
reads)."""

import base64
import os
import random
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (free_port, main, port_refuses, scaled, tern_bin,  # noqa: E402
                     wait_for)
from test_tickets import TicketTestCase, TicketWatch, key_line, write_keys  # noqa: E402


class TestResumption(TicketTestCase):

    def test_resumption_across_workers(self):
        be = self.echo_backend()
        tern = self.tern_ctl([be], workers=2)
        watch = TicketWatch()
        first = self.full_then_session(watch)
        prev_worker = tern.conn_of(first.c)["worker"]
        session = first.session()
        first.close()
        reconnects, crossed = 0, 0
        # 40 reconnects in a row, each offering the previous session: every
        # one resumes, and some cross to the worker that did not issue it.
        while reconnects < 40:
            c = self.conn(watch, session=session)
            reconnects += 1
            self.assertTrue(c.resumed(), "reconnect #%d did not resume" % reconnects)
            worker = tern.conn_of(c.c)["worker"]
            crossed += worker != prev_worker
            c.wait_tickets(1)
            ping = b"r%d" % reconnects
            self.assertEqual(c.c.exchange(ping, expect=len(ping)), ping)
            session, prev_worker = c.session(), worker
            c.close()
        self.assertGreater(crossed, 0, "no resumption crossed workers in %d tries" % reconnects)
        wait_for(lambda: tern.stats()["conns_active"] == 0, 5, "conns_active == 0")
        stats = tern.stats()
        self.assertEqual(stats["handshakes_full"], 1)
        self.assertEqual(stats["handshakes_resumed"], reconnects)
        counters = tern.stop_ok()
        self.assertEqual(counters["handshakes_resumed"], reconnects)

    def test_tls12_resumption_across_workers(self):
        be = self.echo_backend()
        tern = self.tern_ctl([be], workers=2)
        watch = TicketWatch(max_version=ssl.TLSVersion.TLSv1_2)
        first = self.conn(watch)
        self.assertEqual(first.version(), "TLSv1.2")
        self.assertEqual(first.c.exchange(b"1", expect=1), b"1")
        session, prev_worker = first.session(), tern.conn_of(first.c)["worker"]
        first.close()
        reconnects, crossed = 0, 0
        while reconnects < 6 or (crossed == 0 and reconnects < 40):
            c = self.conn(watch, session=session)
            reconnects += 1
            self.assertTrue(c.resumed(), "TLS 1.2 reconnect #%d did not resume" % reconnects)
            self.assertEqual(c.c.exchange(b"2", expect=1), b"2")
            worker = tern.conn_of(c.c)["worker"]
            crossed += worker != prev_worker
            session, prev_worker = c.session(), worker
            c.close()
        self.assertGreater(crossed, 0, "no resumption crossed workers in %d tries" % reconnects)
        wait_for(lambda: tern.stats()["conns_active"] == 0, 5, "conns_active == 0")
        counters = tern.stop_ok()
        self.assertEqual((counters["handshakes_full"], counters["handshakes_resumed"]),
                         (1, reconnects))

    def test_in_memory_rotation(self):
        be = self.echo_backend()
        tern = self.tern_ctl([be])
        watch = TicketWatch()
        a = self.full_then_session(watch)
        old = a.session()
        a.close()
        expected_keys = [2, 3, 3]
        for n, keys in enumerate(expected_keys, 1):
            reply = self.assert_rotated(tern.ctl("rotate-ticket-keys"), keys)
            # New tickets carry the new encrypting key's name.
            probe = self.full_then_session(watch)
            self.assertEqual(probe.ticket_key_names(), [reply["encrypting_key"]] * 2)
            probe.close()
            c = self.conn(watch, session=old)
            if n < 3:
                self.assertTrue(c.resumed(), "old session refused after %d rotation(s)" % n)
            else:
                self.assertFalse(c.resumed(), "a session resumed after 3 rotations: its key "
                                 "should be gone")
            self.assertEqual(c.c.exchange(b"hi", expect=2), b"hi")
            c.close()
        # A fresh session works with the newest key.
        fresh = self.full_then_session(watch)
        d = self.conn(watch, session=fresh.session())
        self.assertTrue(d.resumed())
        # tern counts the handshake once the client's Finished arrived,
        # which may be a moment after the client is done.
        wait_for(lambda: tern.stats()["handshakes_resumed"] == 3, 5, "handshakes_resumed == 3")
        self.assertEqual(tern.stats()["handshakes_full"], 6)
        self.finish(tern, [fresh, d])

    def test_keys_names_each_key_by_fingerprint_role_and_age(self):
        """`keys` (in memory): the encrypting key first, then the ones that
        only decrypt, each by a 12-digit fingerprint that changes with
        every rotation, never the key; `--session-lifetime 5h` keeps
        1 + 5 keys for the hourly rotation."""
        be = self.echo_backend()
        tern = self.tern_ctl([be], ["--session-lifetime", "5h"])
        first = tern.ctl("keys")
        self.assertEqual(set(first), {"ok", "source", "keys", "generation", "workers_behind",
                                      "workers"})
        self.assertEqual((first["ok"], first["source"]), (True, "memory"))
        # Which set each worker uses (test_key_agreement has one behind).
        self.assertEqual((first["generation"], first["workers_behind"]), (1, 0))
        self.assertEqual(first["workers"], [{"worker": 0, "generation": 1, "queued": True},
                                            {"worker": 1, "generation": 1, "queued": True}])
        self.assertEqual(len(first["keys"]), 1)
        key = first["keys"][0]
        self.assertEqual(set(key), {"fingerprint", "role", "since", "age_s"})
        self.assertRegex(key["fingerprint"], r"^[0-9a-f]{12}$")
        self.assertEqual(key["role"], "encrypt")
        self.assertRegex(key["since"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertGreaterEqual(key["age_s"], 0)
        self.assertLess(key["age_s"], 60)
        fingerprints = [key["fingerprint"]]
        for n in range(2, 9):
            reply = tern.ctl("rotate-ticket-keys")
            self.assertEqual(reply["keys"], min(n, 6))
            keys = tern.ctl("keys")["keys"]
            self.assertEqual([k["role"] for k in keys],
                             ["encrypt"] + ["decrypt"] * (min(n, 6) - 1))
            # The newest first, then the earlier ones newest to oldest.
            self.assertNotIn(keys[0]["fingerprint"], fingerprints)
            fingerprints.insert(0, keys[0]["fingerprint"])
            self.assertEqual([k["fingerprint"] for k in keys], fingerprints[:min(n, 6)])
        # The reply names keys, it does not carry them: no long base64.
        self.assertNotRegex(str(tern.ctl("keys")), r"[A-Za-z0-9+/]{40,}")
        self.finish(tern)

    def test_rotation_timer_keeps_previous_keys(self):
        be = self.echo_backend()
        tern = self.tern_ctl([be], ["--ticket-rotate", "1s"])
        watch = TicketWatch()
        a = self.full_then_session(watch)
        session = a.session()
        a.close()
        # The timer rotates once a second: wait (bounded) for it to have
        # rotated once, then the session from before must still resume.
        tern.wait_log("ticket keys rotated", timeout=3, what="a timer rotation")
        b = self.conn(watch, session=session)
        self.assertTrue(b.resumed(), "a session from before one timer rotation did not resume")
        self.assertEqual(b.c.exchange(b"ok", expect=2), b"ok")
        self.finish(tern, [b])


class TestTicketKeyFile(TicketTestCase):

    def keyfile(self, lines, mode=0o600, name="ticket.keys"):
        path = os.path.join(self.tmp, name)
        write_keys(path, lines, mode)
        return path

    def test_fleet_shares_sessions(self):
        path = self.keyfile([key_line(), key_line()])
        be = self.echo_backend()
        a_tern = self.tern_ctl([be], ["--ticket-keys", path])
        a_port = self.port
        b_tern = self.tern_ctl([be], ["--ticket-keys", path])
        b_port = self.port
        c_tern = self.tern_ctl([be])  # random in-memory keys: not in the fleet
        c_port = self.port
        watch = TicketWatch()
        a = self.full_then_session(watch, port=a_port)
        session = a.session()
        b = self.conn(watch, session=session, port=b_port)
        self.assertTrue(b.resumed(), "a session from instance A did not resume on instance B")
        self.assertEqual(b.c.exchange(b"fleet", expect=5), b"fleet")
        c = self.conn(watch, session=session, port=c_port)
        self.assertFalse(c.resumed(), "an instance without the key file resumed A's session")
        self.assertEqual(b_tern.stats()["handshakes_resumed"], 1)
        self.assertEqual(c_tern.stats()["handshakes_resumed"], 0)
        # And the other way round.
        b.wait_tickets(1)
        d = self.conn(watch, session=b.session(), port=a_port)
        self.assertTrue(d.resumed(), "a session from instance B did not resume on instance A")
        self.finish(a_tern, [a, d])
        self.finish(b_tern, [b])
        self.finish(c_tern, [c])

    def run_refused(self, path, *needles):
        port = free_port()
        r = self.run_tern(["--listen", "127.0.0.1:%d" % port,
                           "--backend", "127.0.0.1:%d" % free_port(),
                           "--cert", self.default_cert()["cert"], "--ticket-keys", path])
        self.assertEqual(r.returncode, 1, r.stderr)
        for n in needles:
            self.assertIn(n, r.stderr)
        self.assertNotIn(" ready: ", r.stderr)
        self.assertTrue(port_refuses(port))
        return r.stderr

    def test_bad_key_files_exit_1(self):
        good = key_line()
        self.run_refused(self.keyfile([good], mode=0o644, name="world-readable.keys"),
                         os.path.join(self.tmp, "world-readable.keys"), "readable by other users")
        self.run_refused(self.keyfile([good], mode=0o602, name="world-writable.keys"),
                         os.path.join(self.tmp, "world-writable.keys"), "writable by other users")
        path = self.keyfile([good, "this is not base64!\n"], name="garbage-line.keys")
        self.run_refused(path, path + ":2:")
        path = self.keyfile([base64.b64encode(os.urandom(48)).decode() + "\n"],
                            name="short-key.keys")
        self.run_refused(path, path + ":1:", "48")
        path = self.keyfile([], name="empty.keys")
        self.run_refused(path, path)
        path = os.path.join(self.tmp, "missing.keys")
        self.run_refused(path, path)
        # 0640 is allowed (a group of operators).
        path = self.keyfile([good], mode=0o640, name="group.keys")
        be = self.echo_backend()
        tern = self.tern_ctl([be], ["--ticket-keys", path])
        tern.stop_ok()

    def test_ticket_rotate_rotates_the_key_file_itself(self):
        """--ticket-rotate with --ticket-keys: every interval tern stages a
        new key in the file, promotes the one staged an interval before and
        retires the decrypt keys older than --session-lifetime, then reads
        the file back; `tern ctl keys` holds exactly the file's keys, and a
        client that keeps its newest ticket resumes at every reconnect."""
        path = os.path.join(self.tmp, "self.keys")
        r = subprocess.run([tern_bin(), "keys", path, "generate"], capture_output=True,
                           text=True, timeout=scaled(10))
        self.assertEqual(r.returncode, 0, r.stderr)
        be = self.echo_backend()
        tern = self.tern_ctl([be], ["--ticket-keys", path, "--ticket-rotate", "500ms",
                                    "--session-lifetime", "2s"])
        watch = TicketWatch()
        a = self.full_then_session(watch)
        session = a.session()
        a.close()

        def rotations():
            return [line.split(": ", 2)[2] for line in tern.lines()
                    if " info --ticket-rotate: " in line]
        resumed = 0
        for n in range(1, 9):
            wait_for(lambda: len(rotations()) >= n, 5, "rotation %d" % n)
            c = self.conn(watch, session=session)
            resumed += c.resumed()
            self.assertEqual(c.c.exchange(b"r", expect=1), b"r")
            c.wait_tickets(1)
            session = c.session()
            c.close()
        self.assertEqual(resumed, 8, "reconnects that resumed across self-rotations")
        done = rotations()
        self.assertRegex(done[0], r"^added [0-9a-f]{12}$")
        self.assertRegex(done[1], r"^promoted [0-9a-f]{12}, demoted [0-9a-f]{12}, "
                                  r"added [0-9a-f]{12}$")
        self.assertIn("retired", " ".join(done), "no key retired after --session-lifetime")
        # The file and the instance agree: looked at between two
        # rotations (a rotation in between makes the two differ; retried).
        def agree():
            listed = subprocess.run([tern_bin(), "keys", path, "list"], capture_output=True,
                                    text=True, timeout=scaled(10)).stdout
            keys = tern.ctl("keys")["keys"]
            same = sorted((k["fingerprint"], k["role"]) for k in keys) == \
                sorted(tuple(line.split()[:2]) for line in listed.splitlines())
            return keys if same else None
        keys = wait_for(agree, 5, "tern ctl keys == tern keys list")
        # Bounded: encrypt, staged, and the decrypt keys of the last 2s.
        self.assertLessEqual(len(keys), 2 + 2 / 0.5 + 1)
        self.finish(tern)

    def test_rotate_rereads_the_file(self):
        k1, k2, k3, k4 = (os.urandom(80) for _ in range(4))
        path = self.keyfile([key_line(k1), key_line(k2)])
        be = self.echo_backend()
        # --watch off: rotate-ticket-keys re-reads the file here, not the
        # watch (test_watch.py).
        tern = self.tern_ctl([be], ["--ticket-keys", path, "--watch", "off"])
        watch = TicketWatch()
        a = self.full_then_session(watch)
        s1 = a.session()  # encrypted with k1
        a.close()

        # New first key, the old one second: old sessions still resume.
        write_keys(path, [key_line(k3), key_line(k1)])
        self.assert_rotated(tern.ctl("rotate-ticket-keys"), 2, k3)
        b = self.conn(watch, session=s1)
        self.assertTrue(b.resumed(), "k1 is still in the file, yet its session did not resume")
        b.close()

        # Without k1: its sessions do a full handshake.
        write_keys(path, [key_line(k4)])
        self.assert_rotated(tern.ctl("rotate-ticket-keys"), 1, k4)
        c = self.conn(watch, session=s1)
        self.assertFalse(c.resumed(), "a session resumed after its key left the file")
        c.wait_tickets(2)
        s4 = c.session()  # encrypted with k4
        c.close()

        # Garbage: refused, and the keys in use stay.
        write_keys(path, [key_line(k4), "garbage garbage\n"])
        self.assert_error(tern.ctl("rotate-ticket-keys"), path + ":2:")
        d = self.conn(watch, session=s4)
        self.assertTrue(d.resumed(), "a failed rotation dropped the keys in use")
        d.close()
        # A file that became readable by others: refused too.
        os.chmod(path, 0o644)
        self.assert_error(tern.ctl("rotate-ticket-keys"), path, "readable by other users")
        e = self.conn(watch, session=s4)
        self.assertTrue(e.resumed(), "a refused rotation dropped the keys in use")
        self.assertEqual(e.c.exchange(b"still", expect=5), b"still")
        stats = tern.stats()
        self.assertEqual((stats["handshakes_full"], stats["handshakes_resumed"]), (2, 3))
        self.finish(tern, [e])



if __name__ == "__main__":
    main()
