"""Stress: idle clients hold the metrics and control slots (issue 16,
item 4).

Round after round, the scenario opens connections to the metrics port
(64 slots) and to the control socket (256 slots) that say nothing, more
than there are slots, and keeps them open; after each round, a real
scrape (GET /metrics) and a `stats` are timed. tern gives a new client
the slot of the client idle longest (poll_server.h, reclaim_idle), and
closes idle metrics clients 5 s after their accept, so every scrape and
every `stats` must be answered (200, ok) at once, however many idle
clients wait.

Figures: the idle clients opened, the scrape's and stats' latency (median
and slowest), scrapes not answered 200, the slot-reclaim warnings logged
(at most one per 10 s per server), and the bystander (a new TLS
connection per request: idle control-plane clients cost tern no data-path
descriptors worth measuring, and the bystander shows the workers are not
disturbed).
"""

import socket
import statistics
import time
import unittest  # noqa: F401

from stress_common import Bystander, check_bystander, figure, measure_baseline, pick
from harness import (ControlClient, TernTestCase, accept_queue, ctl, main,
                     scaled, wait_for)

NAME = "idle_clients"
ROUNDS = pick(10, 60)
METRICS_PER_ROUND = pick(80, 200)
CONTROL_PER_ROUND = pick(100, 200)
KEEP_ROUNDS = 3  # the test's own sockets of older rounds are closed


def scrape(port):
    """One GET /metrics on a new connection: (status line, milliseconds)."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=scaled(5)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: tern\r\n\r\n")
        got = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            got += data
    return got.split(b"\r\n", 1)[0], (time.monotonic() - t0) * 1000


class IdleClients(TernTestCase):

    def test_idle_clients(self):
        be = self.echo_backend()
        tern = self.start_tern_with_metrics([be], workers=2)
        ctl_path, mport = self.ctl_path, self.mport
        baseline = measure_baseline(self.port)

        rounds, scrapes, stats, bad = [], [], [], []
        opened_metrics = opened_control = 0
        with Bystander(self.port) as b:
            for _ in range(ROUNDS):
                socks = []
                for _ in range(METRICS_PER_ROUND):
                    socks.append(socket.create_connection(("127.0.0.1", mport),
                                                          timeout=scaled(10)))
                opened_metrics += METRICS_PER_ROUND
                for _ in range(CONTROL_PER_ROUND):
                    socks.append(ControlClient(ctl_path))
                opened_control += CONTROL_PER_ROUND
                rounds.append(socks)
                for s in rounds[0] if len(rounds) > KEEP_ROUNDS else ():
                    s.close()
                del rounds[:-KEEP_ROUNDS]
                # Each idle client taken (and so read once) before the
                # scrape is accepted: one accepted in the same burst could
                # hold an unread request, and is never taken for idle.
                wait_for(lambda: accept_queue(mport) == 0, 5, "the idle clients accepted")
                status, ms = scrape(mport)
                scrapes.append(ms)
                if status != b"HTTP/1.1 200 OK":
                    bad.append(status)
                t0 = time.monotonic()
                self.assertIs(ctl(ctl_path, "stats")["ok"], True)
                stats.append((time.monotonic() - t0) * 1000)
                time.sleep(0.2)  # pacing the rounds
        during = b.summary()
        for socks in rounds:
            for s in socks:
                s.close()

        lines = tern.lines()
        figure(NAME, "rounds", ROUNDS, "")
        figure(NAME, "idle_metrics_clients_opened", opened_metrics, "")
        figure(NAME, "idle_control_clients_opened", opened_control, "")
        figure(NAME, "scrape_median", statistics.median(scrapes), "ms")
        figure(NAME, "scrape_max", max(scrapes), "ms")
        figure(NAME, "scrape_not_200", len(bad), "")
        figure(NAME, "stats_median", statistics.median(stats), "ms")
        figure(NAME, "stats_max", max(stats), "ms")
        for who in ("metrics", "control"):
            figure(NAME, "reclaim_warnings_%s" % who,
                   sum(1 for ln in lines if "%s: all " % who in ln and "slots taken" in ln),
                   "lines")

        self.assertEqual(bad, [], "scrapes refused while idle clients held the slots")
        self.assertLess(max(scrapes), 1000 * scaled(1))
        self.assertLess(max(stats), 1000 * scaled(1))
        check_bystander(self, NAME, baseline, during)
        rc, _ = tern.stop()
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    main()
