"""Backends that come and go (docs/backends.md): round-robin over the
healthy ones, passive health (--backend-retry), active checks
(--backend-check), host names resolved at run time (--resolve-interval),
the `backends` reply and the per-backend metrics.

- Passive: of two echo backends one is stopped; the first connection
  sent to it fails (one failure, counted at it), the client is served by
  the live one, and every later connection goes straight to the live one
  (counted at each backend); once --backend-retry has passed and the
  stopped one is back on its port, it gets its turn again.
- All down: a client still gets a try (the least recently failed
  backend), so a backend that came back serves at once.
- Active: --backend-check 200ms marks a stopped backend down before any
  client is sent there (no connect failure at all), and up again once it
  is back, with no client's help.
- A name that does not resolve at start: tern starts, warns, serves
  through the live backend; alone, a client ends cleanly, counted; and
  `--check` refuses it (exit 2, the flag's message).
- Re-resolution: tern runs in a private mount namespace whose /etc/hosts
  is a file of the test's (the real one is never touched; skipped where
  unshare(1) or mount is refused): a name with two addresses is used
  round-robin; once the file says one address, new connections go only
  there while a connection made before keeps its backend; a name missing
  at start starts being used once the file has it.
- `backends` and /metrics: exact values.
"""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (EchoBackend, TernTestCase, check_sanitizers_at_cleanup,  # noqa: E402
                     closed_port, main, metrics_text, scaled, wait_for)

NAME_MESSAGE = ("tern: --backend: invalid value 'nosuch.invalid:8080' (expected HOST:PORT, "
                "[IPV6]:PORT or unix:/path; cannot resolve nosuch.invalid)\n")


class BackendHealthCase(TernTestCase):

    def setUp(self):
        super().setUp()
        check_sanitizers_at_cleanup(self)

    def start(self, backends, extra=(), workers=1, launcher=()):
        """tern with --control and --metrics; one worker, so its
        round-robin order is the order clients see."""
        return self.start_tern_with_metrics(backends, workers, extra, launcher=launcher)

    def backends(self, tern):
        reply = tern.ctl("backends")
        self.assertTrue(reply["ok"], reply)
        return reply["backends"]

    def backend_of(self, tern, address):
        for b in self.backends(tern):
            if b["address"] == address:
                return b
        raise AssertionError("no backend %s in %r" % (address, self.backends(tern)))

    def wait_up(self, tern, address, up, timeout=5):
        wait_for(lambda: self.backend_of(tern, address)["up"] is up, timeout,
                 "backend %s up=%s" % (address, up))

    def metrics(self):
        return metrics_text(self.mport)

    def metric(self, text, name, backend):
        m = re.search(r'^%s\{backend="%s"\} (\d+)$' % (re.escape(name), re.escape(backend)),
                      text, re.M)
        self.assertIsNotNone(m, "no %s{backend=%s} in:\n%s" % (name, backend, text))
        return int(m.group(1))

    def echo_client(self, i):
        """One client through tern: a round trip, a clean close."""
        c = self.client().handshake()
        data = b"client %d " % i * 100
        self.assertEqual(c.exchange(data, expect=len(data)), data)
        c.shut_write("close_notify")
        self.assertEqual(c.recv_until_close(), b"")
        c.close()

    def refused_client(self, tern):
        c = self.client().handshake()
        self.assertEqual(c.recv_until_close(timeout=5), b"")
        self.assertTrue(c.got_close_notify, "closed without close_notify")
        self.assertEqual(tern.access_for(c)["reason"], "backend_unavailable")
        c.close()

    def settle(self, tern):
        wait_for(lambda: tern.stats()["conns_active"] == 0, 5, "conns_active == 0")


class TestPassive(BackendHealthCase):

    def test_dead_backend_skipped_then_retried(self):
        live = self.echo_backend(name="live")
        dead = self.echo_backend(name="dead")
        dead_port = dead.port
        dead.close()
        retry = int(scaled(2) + 0.999)  # whole seconds, as tern writes them back
        tern = self.start([live, "127.0.0.1:%d" % dead_port],
                          extra=["--backend-retry", "%ds" % retry])
        live_addr, dead_addr = live.addr, "127.0.0.1:%d" % dead_port
        # Round-robin from the first: live, then dead (refused, retried on
        # live), then live only.
        for i in range(6):
            self.echo_client(i)
        self.assertEqual(live.accepted, 6)
        self.settle(tern)
        self.assertEqual(tern.stats()["backend_connect_failures"], 1)
        self.assertEqual(tern.stats()["backend_unavailable"], 0)
        self.assertIn("backend %s down: Connection refused; skipped for %s (--backend-retry)"
                      % (dead_addr, "%ds" % retry), tern.log())
        got = self.backends(tern)
        self.assertEqual(got, [
            {"address": live_addr, "resolved": [{"address": live_addr, "up": True}],
             "up": True, "connects": 6, "failures": 0, "open": 0},
            {"address": dead_addr, "resolved": [{"address": dead_addr, "up": False}],
             "up": False, "connects": 0, "failures": 1, "open": 0},
        ])
        text = self.metrics()
        self.assertEqual(self.metric(text, "tern_backend_up", live_addr), 1)
        self.assertEqual(self.metric(text, "tern_backend_up", dead_addr), 0)
        self.assertEqual(self.metric(text, "tern_backend_connects_total", live_addr), 6)
        self.assertEqual(self.metric(text, "tern_backend_connects_total", dead_addr), 0)
        self.assertEqual(self.metric(text, "tern_backend_failures_total", live_addr), 0)
        self.assertEqual(self.metric(text, "tern_backend_failures_total", dead_addr), 1)
        self.assertEqual(self.metric(text, "tern_backend_open_connections", live_addr), 0)
        self.assertIn("\ntern_backend_connect_failures_total 1\n", text)
        self.assertIn("\ntern_backend_unavailable_total 0\n", text)

        # Back on its port; after --backend-retry it has its turn again.
        back = self.backend(EchoBackend, name="back", port=dead_port)
        self.wait_up(tern, dead_addr, True, timeout=retry + scaled(5))
        for i in range(4):
            self.echo_client(10 + i)
        self.assertEqual(back.accepted, 2)
        self.assertEqual(live.accepted, 8)
        self.settle(tern)
        b = self.backend_of(tern, dead_addr)
        self.assertEqual((b["up"], b["connects"], b["failures"]), (True, 2, 1))
        counters = tern.stop_ok()
        self.assertEqual(counters["backend_connect_failures"], 1)

    def test_open_connections_counted(self):
        live = self.echo_backend()
        tern = self.start([live])
        clients = [self.client().handshake() for _ in range(3)]
        for i, c in enumerate(clients):
            self.assertEqual(c.exchange(b"x%d" % i, expect=2), b"x%d" % i)
        self.assertEqual(self.backend_of(tern, live.addr)["open"], 3)
        self.assertEqual(self.metric(self.metrics(), "tern_backend_open_connections", live.addr), 3)
        for c in clients:
            c.close()
        wait_for(lambda: self.backend_of(tern, live.addr)["open"] == 0, 5, "open == 0")
        self.assertEqual(self.backend_of(tern, live.addr)["connects"], 3)
        tern.stop_ok()

    def test_all_down_still_tried(self):
        a = self.echo_backend(name="a")
        a_port = a.port
        a.close()
        b_port = closed_port()
        a_addr, b_addr = "127.0.0.1:%d" % a_port, "127.0.0.1:%d" % b_port
        tern = self.start([a_addr, b_addr], extra=["--backend-retry", "1h"])
        # Both refuse: a, then b; the client is told goodbye.
        self.refused_client(tern)
        self.assertEqual(tern.stats()["backend_connect_failures"], 2)
        self.assertEqual(tern.stats()["backend_unavailable"], 1)
        self.assertEqual([b["up"] for b in self.backends(tern)], [False, False])
        # a is back: both are skipped for an hour, but a client is still
        # sent to the one that failed longest ago, and a serves it.
        back = self.backend(EchoBackend, port=a_port)
        self.echo_client(1)
        self.assertEqual(back.accepted, 1)
        self.assertEqual([b["up"] for b in self.backends(tern)], [True, False])
        self.assertIn("backend %s up: a connect succeeded" % a_addr, tern.log())
        counters = tern.stop_ok()
        self.assertEqual(counters["backend_connect_failures"], 2)

    def test_retry_zero_counts_every_attempt(self):
        # --backend-retry 0: no skipping; each client tries the refusing
        # backend in its turn, as before health existed.
        live = self.echo_backend()
        tern = self.start(["127.0.0.1:%d" % closed_port(), live], extra=["--backend-retry", "0"])
        for i in range(4):
            self.echo_client(i)
        self.assertEqual(live.accepted, 4)
        counters = tern.stop_ok()
        self.assertEqual(counters["backend_connect_failures"], 4)


class TestActive(BackendHealthCase):

    def test_check_marks_down_before_any_client_and_up_again(self):
        live = self.echo_backend(name="live")
        dead = self.echo_backend(name="dead")
        dead_port = dead.port
        dead.close()
        dead_addr = "127.0.0.1:%d" % dead_port
        tern = self.start([live, dead_addr], extra=["--backend-check", "200ms"])
        self.wait_up(tern, dead_addr, False)
        tern.wait_log("backend %s down: check: Connection refused" % dead_addr)
        for i in range(4):
            self.echo_client(i)
        # The backends also see the checks' connections: tern's own count.
        self.settle(tern)
        self.assertEqual(self.backend_of(tern, live.addr)["connects"], 4)
        self.assertEqual(tern.stats()["backend_connect_failures"], 0)
        self.assertEqual(self.backend_of(tern, dead_addr)["failures"], 0)
        self.assertEqual(self.metric(self.metrics(), "tern_backend_up", dead_addr), 0)

        back = self.backend(EchoBackend, name="back", port=dead_port)
        self.wait_up(tern, dead_addr, True)
        tern.wait_log("backend %s up: check connected" % dead_addr)
        for i in range(4):
            self.echo_client(10 + i)
        self.settle(tern)
        got = {b["address"]: (b["up"], b["connects"], b["failures"]) for b in self.backends(tern)}
        self.assertEqual(got, {live.addr: (True, 6, 0), dead_addr: (True, 2, 0)})
        self.assertEqual(self.metric(self.metrics(), "tern_backend_up", dead_addr), 1)
        self.assertGreaterEqual(back.accepted, 2)
        counters = tern.stop_ok()
        self.assertEqual(counters["backend_connect_failures"], 0)


class TestNames(BackendHealthCase):

    def test_unresolvable_name_at_start(self):
        live = self.echo_backend()
        tern = self.start(["nosuch.invalid:8080", live], extra=["--resolve-interval", "200ms"])
        tern.wait_log("backend nosuch.invalid:8080: cannot resolve nosuch.invalid: ")
        self.assertIn("serving without it, trying again every 200ms", tern.log())
        for i in range(4):
            self.echo_client(i)
        self.assertEqual(live.accepted, 4)
        self.settle(tern)
        b = self.backend_of(tern, "nosuch.invalid:8080")
        self.assertEqual((b["resolved"], b["up"], b["connects"], b["failures"], b["open"]),
                         ([], False, 0, 0, 0))
        self.assertIsInstance(b["resolve_error"], str)
        self.assertNotEqual(b["resolve_error"], "")
        # A literal has no resolve_error at all.
        self.assertNotIn("resolve_error", self.backend_of(tern, live.addr))
        self.assertEqual(self.metric(self.metrics(), "tern_backend_up", "nosuch.invalid:8080"), 0)
        counters = tern.stop_ok()
        self.assertEqual(counters["backend_connect_failures"], 0)

    def test_only_an_unresolvable_name(self):
        tern = self.start(["nosuch.invalid:8080"])
        self.refused_client(tern)
        stats = tern.stats()
        self.assertEqual((stats["backend_unavailable"], stats["backend_connect_failures"]), (1, 0))
        tern.wait_log("no backend address to connect to")
        tern.stop_ok()

    def test_check_refuses_an_unresolvable_name(self):
        r = self.run_tern(["--check", "--backend", "127.0.0.1:1", "--backend",
                           "nosuch.invalid:8080", "--cert", self.default_cert()["cert"]])
        self.assertEqual((r.returncode, r.stderr), (2, NAME_MESSAGE))
        self.assertEqual(r.stdout, "")
        # Without --check the same command line starts (see above); with a
        # name that resolves, --check passes.
        r = self.run_tern(["--check", "--backend", "localhost:8080", "--cert",
                           self.default_cert()["cert"]])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(" backends=localhost:8080 ", r.stdout)


class TestReResolution(BackendHealthCase):
    """tern in a mount namespace of its own, with the test's hosts file
    bound over /etc/hosts there: glibc reads it at every lookup, and the
    test rewrites it in place (the bind mount follows the inode)."""

    def setUp(self):
        super().setUp()
        self.hosts = os.path.join(self.tmp, "hosts")
        self.write_hosts("127.0.0.1 localhost\n")
        probe = subprocess.run(self.launcher() + ["true"], capture_output=True, text=True)
        if probe.returncode != 0:
            self.skipTest("no private mount namespace here (unshare/mount refused: %s); "
                          "the set swap is unit-tested in backend_set_test"
                          % probe.stderr.strip())

    def write_hosts(self, text):
        with open(self.hosts, "r+" if os.path.exists(self.hosts) else "w") as f:
            f.truncate(0)
            f.write(text)

    def launcher(self):
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /etc/hosts && exec "$@"', self.hosts]

    def test_name_follows_its_addresses(self):
        one = self.echo_backend(name="one", host="127.0.0.1")
        two = self.backend(EchoBackend, name="two", host="127.0.0.2", port=one.port)
        port = one.port
        self.write_hosts("127.0.0.1 localhost\n127.0.0.1 svc.test\n127.0.0.2 svc.test\n")
        name = "svc.test:%d" % port
        tern = self.start([name], extra=["--resolve-interval", "200ms"], launcher=self.launcher())
        b = self.backend_of(tern, name)
        self.assertEqual(b["resolved"], [{"address": "127.0.0.1:%d" % port, "up": True},
                                         {"address": "127.0.0.2:%d" % port, "up": True}])
        self.assertIsNone(b["resolve_error"])
        for i in range(4):
            self.echo_client(i)
        self.assertEqual((one.accepted, two.accepted), (2, 2))
        # A connection through 127.0.0.1 (the next in turn) stays open
        # across the change.
        held = self.client().handshake()
        self.assertEqual(held.exchange(b"before", expect=6), b"before")
        self.assertEqual(one.accepted, 3)

        self.write_hosts("127.0.0.1 localhost\n127.0.0.2 svc.test\n")
        wait_for(lambda: self.backend_of(tern, name)["resolved"]
                 == [{"address": "127.0.0.2:%d" % port, "up": True}], 5, "one address left")
        tern.wait_log("backend %s: resolves to 127.0.0.2:%d" % (name, port))
        for i in range(3):
            self.echo_client(10 + i)
        self.assertEqual((one.accepted, two.accepted), (3, 5))
        # The old address's connection still works: its set was kept.
        self.assertEqual(held.exchange(b"after", expect=5), b"after")
        self.assertEqual(self.backend_of(tern, name)["open"], 1)
        held.close()
        self.settle(tern)
        b = self.backend_of(tern, name)
        self.assertEqual((b["connects"], b["failures"], b["open"]), (8, 0, 0))
        tern.stop_ok()

    def test_name_missing_at_start_is_picked_up(self):
        live = self.echo_backend(host="127.0.0.1")
        name = "late.test:%d" % live.port
        tern = self.start([name], extra=["--resolve-interval", "200ms"], launcher=self.launcher())
        tern.wait_log("backend %s: cannot resolve late.test: " % name)
        self.refused_client(tern)
        self.write_hosts("127.0.0.1 localhost\n127.0.0.1 late.test\n")
        wait_for(lambda: self.backend_of(tern, name)["up"], 5, "late.test resolved")
        self.assertIsNone(self.backend_of(tern, name)["resolve_error"])
        self.echo_client(1)
        self.assertEqual(live.accepted, 1)
        tern.stop_ok()


if __name__ == "__main__":
    main()
