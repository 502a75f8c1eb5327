"""Process and connection lifecycle: graceful drain on SIGTERM/SIGINT
(SPEC sections 2 and 4), --drain-timeout, a second signal, --max-conns
and --idle-timeout."""

import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HANDSHAKE_FAILED, SlowBackend, TLSClient, TernTestCase,  # noqa: E402
                     main, reset_socket, run_threads, scaled, slow_payload, wait_for)

MiB = 1 << 20


def probe(port):
    """A new connection after shutdown began: "refused" (connect refused, or
    reset/closed before a handshake), "served" (handshake completed) or
    "hung" (accepted by the kernel, never answered)."""
    try:
        c = TLSClient(port, connect_timeout=1)
    except (ConnectionRefusedError, ConnectionResetError):
        return "refused"
    try:
        c.handshake(timeout=1)
        return "served"
    except TimeoutError:
        return "hung"
    except HANDSHAKE_FAILED:
        return "refused"
    finally:
        c.close()


class SignalWhen:
    """on_progress callback: sends sig to tern once `threshold` bytes have
    arrived, and records when."""

    def __init__(self, tern, threshold, sig=signal.SIGTERM):
        self.tern, self.threshold, self.sig = tern, threshold, sig
        self.sent_at = None
        self.event = threading.Event()

    def __call__(self, received):
        if self.sent_at is None and len(received) >= self.threshold:
            self.sent_at = time.monotonic()
            self.tern.send_signal(self.sig)
            self.event.set()


class TestLifecycle(TernTestCase):

    def test_sigterm_drains_inflight_transfer(self):
        total = 2 * MiB
        slow = self.backend(SlowBackend, total, chunk=65536, interval=0.05)
        tern = self.start_tern([slow], extra=["--drain-timeout", "20s"])
        port = self.port
        trigger = SignalWhen(tern, 128 * 1024)
        probes = []

        def prober():
            trigger.event.wait(scaled(20))
            try:
                wait_for(lambda: probes.append(probe(port)) or probes[-1] == "refused",
                         3, "new connections to be refused after SIGTERM")
            finally:
                probes.append(("received-by-then", slow.sent.get(0, 0)))
        t = threading.Thread(target=prober, daemon=True)
        t.start()

        c = self.client().handshake()
        got = c.exchange(b"", timeout=30, on_progress=trigger)
        self.assertIsNotNone(trigger.sent_at, "transfer ended before SIGTERM was sent")
        self.assertEqual(len(got), total)
        self.assertEqual(got, slow_payload(total))
        self.assertTrue(c.got_close_notify)
        t.join(scaled(10))
        self.assertEqual(probes[-2], "refused", "probes after SIGTERM: %r" % probes)
        # Refused while the transfer was still going, not after the drain.
        self.assertLess(probes[-1][1], total, "listener closed only after the drain")
        # The transfer is the last connection: once it ends, tern exits.
        c.shut_write("close_notify")
        done_at = time.monotonic()
        rc = tern.wait_exit(timeout=5)
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - done_at, scaled(2.0),
                        "tern lingered after its last connection ended")
        tern.check_sanitizers()
        counters = tern.stopped_counters()
        self.assertIsNotNone(counters, "no stopped: line")
        a = tern.access_for(c)
        self.assertEqual(a["reason"], "done")
        self.assertEqual(a["bytes_out"], total)

    def test_drain_timeout_cuts_long_transfer(self):
        total = 2 * MiB
        slow = self.backend(SlowBackend, total, chunk=65536, interval=0.1)  # ~3.2 s
        tern = self.start_tern([slow], extra=["--drain-timeout", "1s"])
        trigger = SignalWhen(tern, 65536)
        c = self.client().handshake()
        got = c.exchange(b"", timeout=15, on_progress=trigger)
        cut_at = time.monotonic()
        self.assertIsNotNone(trigger.sent_at)
        self.assertLess(len(got), total, "the transfer finished: it was not cut")
        self.assertEqual(got, slow_payload(total)[:len(got)], "bytes before the cut differ")
        rc = tern.wait_exit(timeout=5)
        exited_at = time.monotonic()
        self.assertEqual(rc, 0)
        self.assertGreaterEqual(cut_at - trigger.sent_at, 0.9, "cut before --drain-timeout")
        self.assertLess(exited_at - trigger.sent_at, 1.0 + scaled(2.0), "exit not prompt")
        tern.check_sanitizers()
        self.assertIsNotNone(tern.stopped_counters())
        a = tern.access_for(c)
        self.assertEqual(a["reason"], "drain_timeout")
        self.assertEqual(a["bytes_out"], len(got))

    def test_second_sigterm_exits_at_once(self):
        total = 2 * MiB
        slow = self.backend(SlowBackend, total, chunk=65536, interval=0.1)
        tern = self.start_tern([slow], extra=["--drain-timeout", "30s"])
        trigger = SignalWhen(tern, 65536)
        c = self.client().handshake()
        got = c.exchange(b"", expect=65536, timeout=15, on_progress=trigger)
        self.assertIsNotNone(trigger.sent_at)
        # The first signal has been handled once new connections fail.
        wait_for(lambda: probe(self.port) == "refused", 3, "refusal after the first SIGTERM")
        self.assertIsNone(tern.proc.poll(), "tern exited before the drain timeout")
        t0 = time.monotonic()
        tern.send_signal(signal.SIGTERM)
        rc = tern.wait_exit(timeout=5)
        self.assertLess(time.monotonic() - t0, scaled(1.0), "second SIGTERM did not close at once")
        self.assertEqual(rc, 0)
        tern.check_sanitizers()
        rest = c.recv_until_close(timeout=5)
        self.assertLess(len(got) + len(rest), total, "the transfer was not cut")
        self.assertIsNotNone(tern.stopped_counters())
        a = tern.access_for(c)
        self.assertEqual(a["reason"], "shutdown")

    def test_sigint_is_graceful_too(self):
        be = self.echo_backend()
        tern = self.start_tern([be])
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"x" * 1000, expect=1000), b"x" * 1000)
        c.shut_write("close_notify")
        c.recv_until_close()
        tern.wait_access(1)
        rc, counters = tern.stop(sig=signal.SIGINT)
        self.assertEqual(rc, 0)
        self.assertEqual(counters["conns_total"], 1)
        self.assertEqual(counters["bytes_client_in"], 1000)

    def test_max_conns(self):
        be = self.echo_backend()
        tern = self.start_tern([be], extra=["--max-conns", "2"])
        c1 = self.client().handshake()
        c2 = self.client().handshake()
        for c in (c1, c2):
            self.assertEqual(c.exchange(b"hi", expect=2), b"hi")
        # The third waits in the kernel backlog: TCP connects, no handshake.
        c3 = self.client()
        with self.assertRaises(TimeoutError, msg="a third connection was served"):
            c3.handshake(timeout=1.0)
        c1.shut_write("close_notify")
        c1.recv_until_close()
        c1.close()
        c3.handshake(timeout=5)
        self.assertEqual(c3.exchange(b"third", expect=5), b"third")
        # Two open again (c2, c3): a fourth waits until c2 goes.
        c4 = self.client()
        with self.assertRaises(TimeoutError, msg="a fourth connection was served"):
            c4.handshake(timeout=1.0)
        c2.close()
        c4.handshake(timeout=5)
        self.assertEqual(c4.exchange(b"fourth", expect=6), b"fourth")
        for c in (c3, c4):
            c.shut_write("close_notify")
            c.recv_until_close()
        counters = tern.stop_ok()
        self.assertEqual(counters["conns_total"], 4)
        self.assertEqual(counters["handshakes_full"], 4)

    def test_max_conns_slots_freed_on_every_close_path(self):
        # A slot leaked on any way a connection ends would, after a few
        # such ends, leave tern serving nobody.
        be = self.echo_backend()
        tern = self.start_tern([be], workers=1, extra=["--max-conns", "2"])
        for i in range(4):
            # tls_error: garbage instead of a ClientHello
            with socket.create_connection(("127.0.0.1", self.port), timeout=scaled(5)) as s:
                s.sendall(b"garbage\r\n" * 10)
                s.settimeout(scaled(5))
                try:
                    while s.recv(4096):
                        pass
                except ConnectionResetError:
                    pass
            # gone during the handshake: connect, close
            socket.create_connection(("127.0.0.1", self.port), timeout=scaled(5)).close()
            # client_error: reset after the handshake
            c = self.client().handshake()
            self.assertEqual(c.exchange(b"r", expect=1), b"r")
            reset_socket(c.sock)
            # done: a clean end
            c = self.client().handshake()
            self.assertEqual(c.exchange(b"d", expect=1), b"d")
            c.shut_write("close_notify")
            c.recv_until_close()
        tern.wait_access(16, timeout=10)
        # Both slots are free again: two at once are served, a third waits.
        a = self.client().handshake(timeout=5)
        b = self.client().handshake(timeout=5)
        third = self.client()
        with self.assertRaises(TimeoutError, msg="a third connection was served"):
            third.handshake(timeout=1.0)
        for c in (a, b):
            c.shut_write("close_notify")
            c.recv_until_close()
        third.handshake(timeout=5)
        third.shut_write("close_notify")
        third.recv_until_close()
        counters = tern.stop_ok()
        self.assertEqual(counters["conns_total"], 19)

    def test_idle_timeout(self):
        be = self.echo_backend()
        tern = self.start_tern([be], extra=["--idle-timeout", "1s"])

        def idle():
            c = TLSClient(self.port).handshake()
            try:
                c.exchange(b"once", expect=4)
                t0 = time.monotonic()
                c.recv_until_close(timeout=6)
                return time.monotonic() - t0, c.got_close_notify or c.got_eof or c.reset
            finally:
                c.close()

        def active():
            c = TLSClient(self.port).handshake()
            try:
                end = time.monotonic() + 2.5
                n = 0
                while time.monotonic() < end:
                    msg = b"tick%03d" % n
                    got = c.exchange(msg, expect=len(msg), timeout=5)
                    if got != msg:
                        return "got %r, want %r (closed: %s)" % (got, msg, c.got_close_notify)
                    n += 1
                    time.sleep(0.3)  # pacing traffic, not synchronising
                c.shut_write("close_notify")
                c.recv_until_close(timeout=5)
                return "ok"
            finally:
                c.close()
        (elapsed, closed), status = run_threads(lambda f: f(), [(idle,), (active,)], 30)
        self.assertTrue(closed)
        self.assertGreaterEqual(elapsed, 0.9, "idle connection closed before --idle-timeout")
        self.assertLess(elapsed, scaled(3.0), "idle connection closed late")
        self.assertEqual(status, "ok", "an active connection was cut")
        lines = tern.wait_access(2)
        reasons = sorted(a["reason"] for a in lines)
        self.assertEqual(reasons, ["done", "idle_timeout"])
        tern.stop_ok()


if __name__ == "__main__":
    main()
