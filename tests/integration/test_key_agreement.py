"""Ticket keys reach every worker (issue 16, item 3; docs/ticket-keys-
agreement.md): one worker frozen (its thread stopped with ptrace, the way a
wedged thread stops) until its request queue is full, so a key rotation
cannot be queued to it. The split shows in `keys`, `stats`, `tern ctl keys`
and the metrics while it lasts; once the worker runs again the keys are
retried until every worker uses the newest set, and a ticket issued by
either worker resumes on the other.

The queue's bound is TERN_WORKER_QUEUE_CAPACITY (1024) requests. Each
rotation queues one request to every worker, so about a thousand
rotations (pipelined on one control connection: a second or two) fill the
frozen worker's queue; the health pings (one a second) take a few slots
too. `tickets all` would fill it as well, but each waits 2 s for the frozen
worker's answer, so it would take half an hour.
"""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ControlClient, StoppedThread, main, metrics_text, run_ctl,  # noqa: E402
                     scaled, thread_id, wait_for)
from test_tickets import TicketTestCase, TicketWatch, key_line, write_keys  # noqa: E402

QUEUE_CAPACITY = 1024  # include/tern/worker.h, TERN_WORKER_QUEUE_CAPACITY
BATCH = 32             # rotations pipelined at a time


class KeyAgreementTestCase(TicketTestCase):

    def metrics(self):
        return metrics_text(self.mport)

    def metric(self, text, series):
        """The value of one sample (series with its labels, exactly)."""
        m = re.search(r"^%s (\S+)$" % re.escape(series), text, re.M)
        self.assertIsNotNone(m, "no sample %s in the metrics" % series)
        return int(m.group(1))

    def generations(self, tern):
        """(newest generation, [generation of worker 0, 1, ...]) from keys."""
        reply = self.assert_ok(tern.ctl("keys"), "keys")
        workers = reply["workers"]
        self.assertEqual([w["worker"] for w in workers], list(range(len(workers))), reply)
        return reply["generation"], [w["generation"] for w in workers]

    def rotate_until_not_reached(self, path):
        """Rotates, BATCH at a time on one connection, until a rotation says
        a worker could not be reached (its queue is full). Every rotation
        must succeed for the process; returns (rotations, the last reply)."""
        cc = ControlClient(path, timeout=10)
        self.addCleanup(cc.close)
        replies = []
        while len(replies) < QUEUE_CAPACITY + 4 * BATCH:
            cc.send_raw(b"rotate-ticket-keys\n" * BATCH)
            for _ in range(BATCH):
                r = cc.read_reply(timeout=10)
                # Before the fix: {"ok":false,"error":"1 worker(s) too busy
                # to take the new keys"}, and that worker kept its keys.
                self.assert_ok(r, "rotation #%d while worker 1 is frozen" % (len(replies) + 1))
                replies.append(r)
            if replies[-1].get("workers_not_reached"):
                break
        else:
            self.fail("%d rotations and every one still reached every worker: is worker 1 "
                      "running?" % len(replies))
        first = replies[0]["generation"]
        self.assertEqual([r["generation"] for r in replies],
                         list(range(first, first + len(replies))))
        # Each rotation reached every worker until the frozen one's queue
        # was full; from then on, each said it could not reach that one.
        reached = [r["workers_not_reached"] for r in replies]
        full_at = reached.index(1)
        self.assertEqual(reached, [0] * full_at + [1] * (len(replies) - full_at))
        return len(replies), replies[-1]

    def sessions_cross_workers(self, tern, watch):
        """Chains reconnects, each offering the previous connection's newest
        ticket, until a ticket issued by worker 0 resumed on worker 1 and
        one issued by worker 1 on worker 0 (where SO_REUSEPORT hashing
        lands a connection is the kernel's choice: bounded tries). Every
        reconnect must resume."""
        first = self.full_then_session(watch)
        issuer = tern.conn_of(first.c)["worker"]
        session = first.session()
        first.close()
        crossed = set()
        tries = 0
        while crossed != {(0, 1), (1, 0)} and tries < 60:
            c = self.conn(watch, session=session)
            tries += 1
            worker = tern.conn_of(c.c)["worker"]
            self.assertTrue(c.resumed(), "reconnect #%d: a ticket from worker %d did not resume "
                            "on worker %d" % (tries, issuer, worker))
            if worker != issuer:
                crossed.add((issuer, worker))
            c.wait_tickets(1)  # the fresh ticket the resumption issues
            self.assertEqual(c.c.exchange(b"k%d" % tries, expect=len(b"k%d" % tries)),
                             b"k%d" % tries)
            session, issuer = c.session(), worker
            c.close()
        self.assertEqual(crossed, {(0, 1), (1, 0)},
                         "resumptions across workers seen in %d tries" % tries)
        return tries


class TestKeyAgreement(KeyAgreementTestCase):

    def test_a_frozen_worker_gets_the_keys_once_it_runs(self):
        be = self.echo_backend()
        tern = self.start_tern_with_metrics([be], workers=2)
        stopped = StoppedThread(thread_id(tern.proc.pid, "tern-w1"))
        self.addCleanup(stopped.resume)
        rotations, last = self.rotate_until_not_reached(self.ctl_path)
        # The rotation by hand, as an operator would: it succeeds, and
        # says one worker could not be reached yet.
        r = run_ctl(self, ["--control", self.ctl_path, "--json", "rotate-ticket-keys"])
        self.assertEqual(r.returncode, 0, r.stderr)
        reply = json.loads(r.stdout)
        self.assertEqual(reply["generation"], last["generation"] + 1, reply)
        self.assertEqual(reply["workers_not_reached"], 1, reply)
        newest = reply["generation"]
        self.assertGreater(newest, QUEUE_CAPACITY // 2, "rotations: %d" % rotations)

        # The split, visible while it lasts: worker 0 uses the newest set,
        # worker 1 the one it had when it stopped; the newest is not even
        # queued to it.
        wait_for(lambda: self.generations(tern)[1][0] == newest, 5, "worker 0 at the newest")
        keys = self.assert_ok(tern.ctl("keys"), "keys")
        self.assertEqual(keys["generation"], newest)
        self.assertEqual(keys["workers_behind"], 1, keys)
        self.assertEqual(keys["workers"], [
            {"worker": 0, "generation": newest, "queued": True},
            {"worker": 1, "generation": 1, "queued": False}])
        stats = tern.stats()
        self.assertEqual((stats["ticket_key_generation"], stats["ticket_key_workers_behind"]),
                         (newest, 1))
        text = self.metrics()
        self.assertEqual(self.metric(text, "tern_ticket_key_generation_latest"), newest)
        self.assertEqual(self.metric(text, 'tern_ticket_key_generation{worker="0"}'), newest)
        self.assertEqual(self.metric(text, 'tern_ticket_key_generation{worker="1"}'), 1)
        self.assertEqual(self.metric(text, "tern_ticket_key_workers_behind"), 1)
        pretty = run_ctl(self, ["--control", self.ctl_path, "keys"])
        self.assertEqual(pretty.returncode, 0, pretty.stderr)
        self.assertIn("generation: %d\nworkers_behind: 1\n" % newest, pretty.stdout)
        self.assertRegex(pretty.stdout, r"\n +1 +1  false\n")
        self.assertIn("worker 1's queue is full", tern.log())

        # Running again: it works through its queue, then the retry gives
        # it the newest set; bounded.
        t0 = time.monotonic()
        stopped.resume()
        wait_for(lambda: self.generations(tern)[1] == [newest, newest], 10,
                 "every worker at generation %d" % newest)
        agreed_s = time.monotonic() - t0
        keys = self.assert_ok(tern.ctl("keys"), "keys")
        self.assertEqual(keys["workers_behind"], 0, keys)
        self.assertEqual([w["queued"] for w in keys["workers"]], [True, True])
        self.assertEqual(self.metric(self.metrics(), "tern_ticket_key_workers_behind"), 0)
        self.assertIn("worker 1's queue has room again: key generation %d queued" % newest,
                      tern.log())
        self.assertLess(agreed_s, scaled(10))

        # A ticket issued by either worker resumes on the other.
        watch = TicketWatch()
        tries = self.sessions_cross_workers(tern, watch)
        wait_for(lambda: tern.stats()["conns_active"] == 0, 5, "conns_active == 0")
        stats = tern.stats()
        self.assertEqual((stats["handshakes_full"], stats["handshakes_resumed"]), (1, tries))
        tern.stop_ok()

    def test_a_reload_while_frozen_brings_the_file_keys_to_every_worker(self):
        """A reload of a --ticket-keys file goes the same way: the frozen
        worker's full queue refuses its new certificates (the reload says
        so) and its keys, which are retried; once it runs, both workers
        issue tickets under the file's new first key. Its old certificate
        shard reads the worker's keys, so it does not hold the keys back."""
        k1, k2 = os.urandom(80), os.urandom(80)
        path = os.path.join(self.tmp, "ticket.keys")
        write_keys(path, [key_line(k1)])
        be = self.echo_backend()
        # --watch off: the reload below is the only one.
        tern = self.start_tern_with_metrics([be], workers=2,
                                            extra=["--ticket-keys", path, "--watch", "off"])
        stopped = StoppedThread(thread_id(tern.proc.pid, "tern-w1"))
        self.addCleanup(stopped.resume)
        # Each rotation re-reads the file: the same keys, a new generation.
        _, last = self.rotate_until_not_reached(self.ctl_path)
        write_keys(path, [key_line(k2), key_line(k1)])
        reply = tern.ctl("reload")
        self.assertIs(reply["ok"], False, reply)
        self.assertEqual(reply["error"], "1 worker hand-over(s) failed: those workers keep the "
                         "previous configuration")
        newest = last["generation"] + 1
        # Worker 0 runs: the new keys are queued to it and it applies them
        # on its next turn, which may come after the reload's reply.
        wait_for(lambda: self.generations(tern) == (newest, [newest, 1]), 10,
                 "worker 0 at generation %d, worker 1 still at 1" % newest)
        keys = self.assert_ok(tern.ctl("keys"), "keys")
        self.assertEqual((keys["generation"], keys["workers_behind"]), (newest, 1), keys)
        self.assertEqual(keys["workers"][1], {"worker": 1, "generation": 1, "queued": False})

        stopped.resume()
        wait_for(lambda: self.generations(tern)[1] == [newest, newest], 10,
                 "every worker at generation %d" % newest)
        watch = TicketWatch()
        names = {}
        for _ in range(60):
            c = self.full_then_session(watch)
            names[tern.conn_of(c.c)["worker"]] = c.ticket_key_names()
            c.close()
            if len(names) == 2:
                break
        self.assertEqual(names, {0: [k2[:16].hex()] * 2, 1: [k2[:16].hex()] * 2})
        tern.stop_ok()

    def test_every_worker_reached_needs_no_retry(self):
        """The negative: with every worker running, a rotation reaches all
        of them at once, nobody is ever behind for long, and nothing is
        logged about full queues."""
        be = self.echo_backend()
        tern = self.start_tern_with_metrics([be], workers=2)
        self.assertEqual(self.generations(tern), (1, [1, 1]))
        text = self.metrics()
        self.assertEqual(self.metric(text, "tern_ticket_key_generation_latest"), 1)
        self.assertEqual(self.metric(text, 'tern_ticket_key_generation{worker="0"}'), 1)
        self.assertEqual(self.metric(text, 'tern_ticket_key_generation{worker="1"}'), 1)
        self.assertEqual(self.metric(text, "tern_ticket_key_workers_behind"), 0)
        for n in range(2, 6):
            reply = self.assert_rotated(tern.ctl("rotate-ticket-keys"), min(n, 3))
            self.assertEqual((reply["generation"], reply["workers_not_reached"]), (n, 0))
        wait_for(lambda: self.generations(tern) == (5, [5, 5]), 5, "both workers at 5")
        text = self.metrics()
        self.assertEqual(self.metric(text, "tern_ticket_key_generation_latest"), 5)
        self.assertEqual(self.metric(text, "tern_ticket_key_workers_behind"), 0)
        self.assertNotIn("queue is full", tern.log())
        watch = TicketWatch()
        self.sessions_cross_workers(tern, watch)
        tern.stop_ok()


if __name__ == "__main__":
    main()
