"""Stress: tern out of file descriptors, then back (issue 16, item 2).

tern runs under `prlimit --nofile=256` (as under `ulimit -n 256`) with
--control and --metrics. The scenario opens twice as many plain TCP
connections as tern has descriptors, so every descriptor is taken and the
rest wait in the listener's backlog; a new control client and a scrape
wait in theirs. Held for a while, then every connection is closed.

Figures: how fast a control client accepted before the exhaustion is
answered during it, tern's CPU during it (a share of one core: a loop
retrying accept() at once would take a whole one), the warnings logged
per server (control, metrics: at most one per 10 s each; the workers'
accept warnings are counted too, item 1's), the time from the
connections' close until the waiting control client and scrape are
answered and until a new TLS connection gets through, and the bystander.

The bystander: its usual form makes a new connection per request, which
costs tern two descriptors (client and backend) that this scenario has
taken on purpose; it would measure only the refusal, the same for a good
tern and a bad one. Here it keeps one TLS connection, made before the
exhaustion, and does its requests on it (Bystander(kept=True), its
baseline likewise): what it measures is whether tern, out of descriptors,
still serves what it has accepted, without a spinning thread taking the
CPU its workers need. Whether new connections get through again is the
recovery figure.
"""

import socket
import time
import unittest

from stress_common import Bystander, check_bystander, figure, measure_baseline, pick
from harness import (ControlClient, TernTestCase, cpu_seconds, ctl, main,  # noqa: F401
                     open_fds, read_until_closed, scaled, wait_for)

NAME = "fd_limit"
NOFILE = 256
HOLD_S = pick(3.0, 30.0)


class FdLimit(TernTestCase):

    def test_fd_limit(self):
        be = self.echo_backend()
        tern = self.start_tern_with_metrics([be], workers=2, extra=[
            # The connections held must stay for the whole hold.
            "--handshake-timeout", "%ds" % int(HOLD_S + 120)],
            launcher=["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), "--"])
        ctl_path, mport = self.ctl_path, self.mport
        pid = tern.proc.pid

        baseline = measure_baseline(self.port, kept=True)
        wait_for(lambda: tern.stats()["conns_active"] == 0, 10, "the baseline's connection gone")
        kept = ControlClient(ctl_path)
        self.addCleanup(kept.close)

        with Bystander(self.port, kept=True) as b:
            wait_for(lambda: tern.stats()["conns_active"] == 1, 10, "the bystander connected")
            held = []
            for _ in range(2 * NOFILE):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=scaled(10))
                self.addCleanup(s.close)
                held.append(s)
            wait_for(lambda: open_fds(pid) >= NOFILE, 20, "tern at its descriptor limit")

            waiting = ControlClient(ctl_path)
            self.addCleanup(waiting.close)
            waiting.send_raw(b"stats\n")
            scrape = socket.create_connection(("127.0.0.1", mport), timeout=scaled(10))
            self.addCleanup(scrape.close)
            scrape.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")

            # During: the client accepted before, asked every 100 ms; the CPU.
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            answers = []
            while time.monotonic() - t0 < HOLD_S:
                t1 = time.monotonic()
                kept.send_raw(b"stats\n")
                self.assertIs(kept.read_reply(timeout=5)["ok"], True)
                answers.append((time.monotonic() - t1) * 1000)
                time.sleep(0.1)  # pacing the probes
            cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
            self.assertEqual(open_fds(pid), NOFILE, "tern got descriptors back during the hold")

            # Recovery.
            for s in held:
                s.close()
            t_close = time.monotonic()
            self.assertIs(waiting.read_reply(timeout=10)["ok"], True)
            ctl_back = time.monotonic() - t_close
            got, how = read_until_closed(scrape, 10)
            self.assertTrue(got.startswith(b"HTTP/1.1 200 OK\r\n"), got[:100])
            scrape_back = time.monotonic() - t_close
            new_conn = self.client().handshake()
            new_back = time.monotonic() - t_close
            new_conn.close()
        during = b.summary()

        lines = tern.lines()
        warned = {who: sum(1 for ln in lines if "%s: accept: Too many open files" % who in ln)
                  for who in ("control", "metrics")}
        warned["workers"] = sum(1 for ln in lines if "worker" in ln and
                                "Too many open files" in ln)
        figure(NAME, "nofile", NOFILE, "")
        figure(NAME, "hold", HOLD_S, "s")
        figure(NAME, "control_answer_during_median", sorted(answers)[len(answers) // 2], "ms")
        figure(NAME, "control_answer_during_max", max(answers), "ms")
        figure(NAME, "tern_cpu_during", cpu * 100, "% of a core")
        for who, n in warned.items():
            figure(NAME, "warnings_%s" % who, n, "lines")
        figure(NAME, "recovery_control", ctl_back * 1000, "ms")
        figure(NAME, "recovery_scrape", scrape_back * 1000, "ms")
        figure(NAME, "recovery_new_tls_connection", new_back * 1000, "ms")

        self.assertLess(cpu, 0.3, "tern spun while out of descriptors")
        for who in ("control", "metrics"):
            self.assertGreaterEqual(warned[who], 1, who)
            self.assertLessEqual(warned[who], 1 + int(HOLD_S // 10) + 1, who)
        self.assertLess(max(answers), 1000 * scaled(1))
        self.assertLess(ctl_back, scaled(2))
        check_bystander(self, NAME, baseline, during)
        wait_for(lambda: tern.stats()["conns_active"] == 0, 20, "the connections gone")
        rc, _ = tern.stop()
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    main()
