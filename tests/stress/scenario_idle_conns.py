#!/usr/bin/env python3
"""Stress: many idle TLS connections, then all closed at once (issue 16).

N clients connect through tern, complete their handshake and one echo
round trip, and then sit idle; then every one closes at the same moment.
What an idle connection costs tern (RSS and file descriptors), and whether
both come back once they are gone.

Short form: 1,000 connections. Long form: 9,000: a proxied connection
takes two descriptors in tern (client and backend), 18,000 of the 20,000 a
process may open here; the backend is a process of its own
(echo_process.py), so the test process holds only the client ends.

The bystander goes through the same tern (no --max-conns here, so it never
waits for a slot) while the connections sit idle and while they close; the
opening is set-up (a handshake storm from this test on the same CPUs).
A second round of opening and closing them all checks that what the first
left in tern's RSS is reused, not added to.

Figures: RSS per connection, descriptors per connection, the RSS and
descriptors left above the baseline after the close and after a second
round, and the bystander.
"""

import asyncio
import os
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stress_common import (Bystander, check_bystander, figure, measure_baseline,  # noqa: E402
                           pick)
from echo_process import EchoProcess  # noqa: E402
from harness import (TernTestCase, binary_is_sanitized, main, process_rss, scaled,  # noqa: E402
                     wait_for)

NAME = "idle_conns"
CONNS = pick(1000, 9000)
CONCURRENT_OPENS = 50  # handshakes in flight at once while opening


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_ms(pid):
    """User and system CPU time of a process so far, in milliseconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


def client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class IdleClients:
    """Opens n TLS connections (handshake and one echo round trip each),
    keeps them idle until close_all(). Runs on one asyncio loop that the
    scenario drives step by step."""

    def __init__(self, port, n):
        self.port, self.n = port, n
        self.writers = []
        self.loop = asyncio.new_event_loop()

    async def _open_one(self, i, ctx, gate):
        async with gate:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", self.port, ssl=ctx, server_hostname="localhost",
                ssl_handshake_timeout=scaled(60))
            payload = b"idle %d\n" % i
            writer.write(payload)
            got = await asyncio.wait_for(reader.readexactly(len(payload)), scaled(30))
            if got != payload:
                raise AssertionError("echo mismatch on connection %d: %r" % (i, got))
            self.writers.append(writer)

    async def _open_all(self):
        ctx, gate = client_ctx(), asyncio.Semaphore(CONCURRENT_OPENS)
        await asyncio.gather(*(self._open_one(i, ctx, gate) for i in range(self.n)))

    async def _close_all(self):
        # All in one go: close_notify and FIN on every connection, before
        # waiting for any of them.
        for w in self.writers:
            w.close()
        await asyncio.gather(*(w.wait_closed() for w in self.writers),
                             return_exceptions=True)
        self.writers = []

    def open_all(self):
        self.loop.run_until_complete(self._open_all())

    def close_all(self):
        self.loop.run_until_complete(self._close_all())
        self.loop.close()


class ScenarioIdleConns(TernTestCase):

    def test_idle_conns(self):
        echo = EchoProcess(self)
        ctl_path = os.path.join(self.tmp, "control.sock")
        tern = self.start_tern([echo.addr], workers=2, access_log=False,
                               extra=["--control", ctl_path])
        pid = tern.proc.pid
        baseline = measure_baseline(self.port)
        wait_for(lambda: tern.stats()["conns_active"] == 0, 10, "conns_active == 0")
        rss_base, fds_base = self.settled(tern, pid)

        # Opening them is the set-up (a handshake storm from this test,
        # which competes with the bystander for the two CPUs); the
        # bystander measures the idle hold and the close.
        clients = IdleClients(self.port, CONNS)
        t0 = time.monotonic()
        clients.open_all()
        open_s = time.monotonic() - t0
        wait_for(lambda: tern.stats()["conns_active"] >= CONNS, 30,
                 "%d connections active" % CONNS)
        rss_open, fds_open = process_rss(pid), open_fds(pid)
        with Bystander(self.port) as by:
            time.sleep(pick(2.0, 5.0))  # pacing: the idle hold the bystander measures
            t0, cpu0 = time.monotonic(), cpu_ms(pid)
            clients.close_all()
            wait_for(lambda: tern.stats()["conns_active"] == 0, pick(30, 120),
                     "every connection closed")
            close_s, close_cpu = time.monotonic() - t0, cpu_ms(pid) - cpu0
        during = by.summary()
        rss_after, fds_after = self.settled(tern, pid)

        # A second round: what the first left behind is reused, not added.
        clients = IdleClients(self.port, CONNS)
        clients.open_all()
        clients.close_all()
        wait_for(lambda: tern.stats()["conns_active"] == 0, pick(30, 120),
                 "every connection of the second round closed")
        rss_after2, fds_after2 = self.settled(tern, pid)

        mib = 1048576.0
        per_conn_kib = (rss_open - rss_base) / CONNS / 1024.0
        figure(NAME, "connections", CONNS)
        figure(NAME, "open_time", open_s, "s")
        figure(NAME, "close_time", close_s, "s")
        # tern's CPU for the close, both workers together: against the
        # bystander's stall, how much of it was tern's own work.
        figure(NAME, "tern_cpu_for_close", close_cpu, "ms")
        figure(NAME, "rss_baseline", rss_base / mib, "MiB")
        figure(NAME, "rss_open", rss_open / mib, "MiB")
        figure(NAME, "rss_per_connection", per_conn_kib, "KiB")
        figure(NAME, "fds_per_connection", "%.2f" % ((fds_open - fds_base) / CONNS))
        figure(NAME, "rss_after_close_above_baseline", (rss_after - rss_base) / mib, "MiB")
        figure(NAME, "fds_after_close_above_baseline", fds_after - fds_base)
        figure(NAME, "rss_after_second_round_above_baseline", (rss_after2 - rss_base) / mib,
               "MiB")
        figure(NAME, "fds_after_second_round_above_baseline", fds_after2 - fds_base)
        check_bystander(self, NAME, baseline, during)

        # Two descriptors per proxied connection (give or take the control
        # connection of the last stats and a bystander request), none left
        # after.
        self.assertIn(fds_open - fds_base - 2 * CONNS, (0, 1, 2), "descriptors per connection")
        self.assertEqual(fds_after, fds_base, "descriptors left after the close")
        self.assertEqual(fds_after2, fds_base, "descriptors left after the second round")
        self.assertEqual(tern.stats()["handshake_failures"], 0)
        if not binary_is_sanitized():
            # Idle connections hold no read buffers (--read-buffers): the
            # connection and OpenSSL's state, some KiB each.
            self.assertLess(per_conn_kib, 64.0, "RSS per idle connection")
            # RSS does not fall back to the baseline (the allocator keeps
            # what the connections and the close's record buffers used),
            # but a second round reuses it: nothing grows per connection.
            growth = rss_after2 - rss_after
            self.assertLess(growth, 0.1 * (rss_open - rss_base) + (4 << 20),
                            "RSS grew by %.1f MiB over a second round" % (growth / mib))

    def settled(self, tern, pid):
        """RSS and descriptors once the last connection is gone and a few
        ticks have released the spare buffers."""
        time.sleep(0.5)  # pacing: a few 50 ms ticks, then measure
        return process_rss(pid), open_fds(pid)


if __name__ == "__main__":
    main()
