#!/usr/bin/env python3
"""--max-conns with clients waiting (SPEC: beyond the limit new connections
wait in the kernel backlog; issue 16): every waiting client is served as
slots free, none is closed unserved, conns_active never passes the limit,
and what tern must still refuse (a drain) is counted by reason in stats,
in /metrics and in one log line.

Before the fix a slot freed at the limit re-armed the multishot accept,
which took the whole backlog at once: one served, 64 parked, the rest
closed, uncounted."""

import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (ClosedByPeer, PeakWatch, TernTestCase, TLSClient, main,  # noqa: E402
                     metrics_text, scaled, wait_for)

LIMIT = 20
WAITERS = 200  # more than the 64 a worker used to park; half start their handshake at once
REFUSED_LINE = re.compile(r"worker (\d+): (\d+) connections refused since the last such line "
                          r"\(drain=(\d+) no_memory=0 overflow=0\)$")
REFUSED_FIELDS = ("conns_refused_drain", "conns_refused_no_memory", "conns_refused_overflow")


class Waiter(threading.Thread):
    """A client that connects now (the kernel completes the TCP handshake
    and queues it in a backlog) and then: sends its ClientHello at once
    (eager), or only when `go` is set; waits for the handshake to complete,
    does one echo round trip and closes with close_notify, freeing its
    slot for the next. result: "served", or what went wrong."""

    def __init__(self, port, i, eager, go, timeout):
        super().__init__(daemon=True)
        self.i, self.eager, self.go, self.timeout = i, eager, go, timeout
        self.client = TLSClient(port, connect_timeout=5)
        self.result = None
        self.served_at = None

    def run(self):
        try:
            if not self.eager:
                self.go.wait(self.timeout)
            self.client.handshake(timeout=self.timeout)
            self.served_at = time.monotonic()
            payload = b"waiter %d" % self.i
            got = self.client.exchange(payload, expect=len(payload), timeout=10)
            if got != payload:
                self.result = "echo mismatch: %r" % got
                return
            self.client.shut_write("close_notify")
            self.client.recv_until_close(timeout=10)
            self.result = "served"
        except ClosedByPeer as e:
            self.result = "closed unserved: %s" % e
        except Exception as e:  # reported as the thread's result
            self.result = "%s: %s" % (type(e).__name__, e)
        finally:
            self.client.close()


class TestMaxConns(TernTestCase):

    def start(self, workers=2):
        """tern at --max-conns LIMIT with --control and --metrics (self.mport)."""
        self.be = self.echo_backend()
        return self.start_tern_with_metrics([self.be], workers, ["--max-conns", str(LIMIT)],
                                            access_log=False)

    def holders(self, n):
        hold = []
        for i in range(n):
            c = self.client().handshake(timeout=5)
            self.assertEqual(c.exchange(b"hold %d" % i, expect=len(b"hold %d" % i)),
                             b"hold %d" % i)
            hold.append(c)
        return hold

    def test_waiting_clients_all_served_as_slots_free(self):
        tern = self.start()
        hold = self.holders(LIMIT)
        go = threading.Event()
        waiters = [Waiter(self.port, i, i % 2 == 0, go, timeout=scaled(120))
                   for i in range(WAITERS)]
        for w in waiters:
            w.start()
        # At the limit, nobody is served: the waiters sit in the backlogs.
        # (A lower bound: never scaled.)
        time.sleep(1.0)
        self.assertEqual([w.i for w in waiters if w.served_at], [], "served beyond the limit")
        stats = tern.stats()
        self.assertEqual(stats["conns_active"], LIMIT)
        self.assertEqual(stats["conns_total"], LIMIT)

        with PeakWatch(lambda: tern.stats()["conns_active"]) as active:
            go.set()
            # Holders go a few at a time; each frees a slot that a waiter
            # takes, and each waiter frees its own when done.
            for step in range(0, LIMIT, 5):
                for c in hold[step:step + 5]:
                    c.shut_write("close_notify")
                    c.recv_until_close()
                    c.close()
                want = min(WAITERS, step + 5)
                wait_for(lambda: sum(w.served_at is not None for w in waiters) >= want, 60,
                         "%d waiters served after %d holders left" % (want, step + 5))
            deadline = time.monotonic() + scaled(120)
            for w in waiters:
                w.join(max(0.0, deadline - time.monotonic()))
        bad = ["#%d %s" % (w.i, w.result) for w in waiters if w.result != "served"]
        self.assertEqual(bad, [], "waiting clients not served")
        self.assertLessEqual(active.peak, LIMIT, "conns_active passed --max-conns")
        wait_for(lambda: tern.stats()["conns_active"] == 0, 10, "conns_active == 0")
        stats = tern.stats()
        self.assertEqual(stats["conns_total"], LIMIT + WAITERS)
        self.assertEqual(stats["handshakes_full"], LIMIT + WAITERS)
        self.assertEqual(stats["handshake_failures"], 0)
        for field in REFUSED_FIELDS:
            self.assertEqual(stats[field], 0, field)
        self.assertNotIn("connections refused", tern.log())
        counters = tern.stop_ok()
        self.assertEqual(counters["conns_refused"], 0)

    def test_drain_refuses_the_backlog_counted(self):
        # A drain closes the listeners, and the kernel resets whoever
        # waited in their backlogs: tern takes them first, so that they are
        # counted (reason drain) and logged, not lost unseen.
        tern = self.start()
        hold = self.holders(LIMIT)
        waiting = []
        for i in range(5):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=scaled(5))
            self.addCleanup(s.close)
            waiting.append(s)
        time.sleep(0.5)  # lower bound: they are waiting, not served
        self.assertEqual(tern.stats()["conns_total"], LIMIT)
        tern.send_signal()
        wait_for(lambda: tern.stats()["conns_refused_drain"] == 5, 10,
                 "5 refused while draining")
        for s in waiting:
            s.settimeout(scaled(5))
            try:
                self.assertEqual(s.recv(1), b"", "a refused client got bytes")
            except ConnectionResetError:
                pass
        stats = tern.stats()
        self.assertEqual(stats["conns_refused_no_memory"], 0)
        self.assertEqual(stats["conns_refused_overflow"], 0)
        self.assertEqual(stats["conns_active"], LIMIT, "the holders are still served")
        metrics = metrics_text(self.mport)
        self.assertIn('tern_connections_refused_total{reason="drain"} 5\n', metrics)
        self.assertIn('tern_connections_refused_total{reason="overflow"} 0\n', metrics)
        # One line per worker at most (the tick logs what a worker refused
        # since its last line, at most once a second).
        def logged():
            total = 0
            for line in tern.lines():
                m = REFUSED_LINE.search(line)
                if m:
                    self.assertIn(" info worker ", line)
                    self.assertEqual(int(m.group(2)), int(m.group(3)), line)
                    total += int(m.group(2))
            return total
        wait_for(lambda: logged() == 5, 5, "5 refusals logged")
        workers_logged = [REFUSED_LINE.search(l).group(1) for l in tern.lines()
                          if REFUSED_LINE.search(l)]
        self.assertEqual(len(workers_logged), len(set(workers_logged)),
                         "a worker logged twice within a second: %r" % workers_logged)
        for c in hold:
            c.close()
        rc = tern.wait_exit(15)
        self.assertEqual(rc, 0)
        self.assertEqual(tern.stopped_counters()["conns_refused"], 5)


if __name__ == "__main__":
    main()
