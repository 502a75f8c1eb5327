"""A connection closed while operations are in flight on its sockets (a
backend connect, a send the backend does not read, a send the client does
not read) ends each of them promptly: its --max-conns slot, which is
given back only when the connection's memory is freed, that is once the
last completion that names it is in (docs/connection.md), is free again
at once, not when the operation would have ended on its own (a connect
timeout a minute away, or never).

On io_uring the close cancels each operation by its user_data
(src/conn_ring.c); one left out keeps the connection, and its slot, until
it completes by itself. These tests check that on both engines."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FloodBackend, SinkBackend, TernTestCase, main, reset_socket,  # noqa: E402
                     scaled, wait_for, wait_stalled)

TCP_SYN_SENT = "02"


def syn_sent_to(port):
    """Sockets of this host in SYN_SENT towards 127.0.0.1:port
    (/proc/net/tcp: the remote address and the state, in hex)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == TCP_SYN_SENT and fields[2] == "0100007F:%04X" % port:
                n += 1
    return n


class TestCloseInflight(TernTestCase):

    def start(self, backend, extra=()):
        self.ctl_path = os.path.join(self.tmp, "control.sock")
        return self.start_tern([backend], workers=1, extra=[
            "--max-conns", "1", "--control", self.ctl_path] + list(extra))

    def only_conn_id(self, tern):
        conns = []

        def one():
            conns[:] = tern.ctl("conns")["conns"]
            return len(conns) == 1
        wait_for(one, 5, "one connection listed")
        return conns[0]["id"]

    def assert_slot_free(self, tern, within):
        """The one --max-conns slot is free again within `within` seconds:
        a new client's handshake completes. It then leaves with a reset,
        which ends it at once whatever its backend does. Returns the
        seconds the handshake took."""
        t0 = time.monotonic()
        c = self.client()
        c.handshake(timeout=within)
        waited = time.monotonic() - t0
        reset_socket(c.sock)
        tern.wait_access(2)
        return waited

    def test_close_while_connecting(self):
        # A backend whose accept queue is full: the kernel drops the SYN,
        # so tern's connect waits (here up to a minute).
        port = self.syn_dropping_port()
        base = syn_sent_to(port)
        tern = self.start("127.0.0.1:%d" % port, ["--connect-timeout", "60s"])
        c = self.client().handshake()
        self.addCleanup(c.close)
        wait_for(lambda: syn_sent_to(port) > base, 5, "tern's connect in SYN_SENT")
        self.assertEqual(tern.ctl("close %d" % self.only_conn_id(tern))["ok"], True)
        self.assertEqual(c.recv_until_close(timeout=5), b"")
        self.assertTrue(c.got_close_notify, "closed without close_notify")
        # The connect was cancelled: its socket is gone, and the slot free.
        wait_for(lambda: syn_sent_to(port) == base, 5, "tern's SYN_SENT socket gone")
        self.assert_slot_free(tern, scaled(5))
        self.assertEqual(tern.access_lines()[0]["reason"], "closed_by_control")
        counters = tern.stop_ok()
        self.assertEqual(counters["conns_total"], 2)

    def test_close_while_backend_does_not_read(self):
        # The backend reads nothing: tern's send to it never completes.
        gate = threading.Event()
        self.addCleanup(gate.set)
        be = SinkBackend(self, reply=False, gate=gate)
        tern = self.start(be)
        c = self.client().handshake()
        self.addCleanup(c.close)
        pushed = c.push_until_stalled(b"x" * 16384, 64 << 20, stall=1.0)
        self.assertLess(pushed, 64 << 20, "the backend took everything")
        self.assertEqual(tern.ctl("close %d" % self.only_conn_id(tern))["ok"], True)
        self.assertEqual(c.recv_until_close(timeout=5), b"")
        self.assertTrue(c.got_close_notify, "closed without close_notify")
        self.assert_slot_free(tern, scaled(5))
        self.assertEqual(tern.access_lines()[0]["reason"], "closed_by_control")
        tern.stop_ok()

    def test_close_while_client_does_not_read(self):
        # The backend floods, the client reads nothing: tern's send to the
        # client waits; the close_notify queued behind it never goes, so
        # the connection ends at the linger deadline (2 s), and its send is
        # cancelled then.
        be = FloodBackend(self, total=256 << 20, block=b"y" * 65536)
        tern = self.start(be)
        c = self.client().handshake()
        self.addCleanup(c.close)
        c.exchange(b"go", expect=1, timeout=5)  # the flood has begun
        wait_stalled(lambda: be.progress.get(0, 0), timeout=30)
        self.assertLess(be.progress.get(0, 0), 256 << 20, "the client took everything")
        conn_id = self.only_conn_id(tern)
        t0 = time.monotonic()
        self.assertEqual(tern.ctl("close %d" % conn_id)["ok"], True)
        self.assertEqual(tern.wait_access(1, timeout=2 + scaled(5))[0]["reason"],
                         "closed_by_control")
        waited = self.assert_slot_free(tern, scaled(5))
        self.assertLess(time.monotonic() - t0, 2 + scaled(5) + waited)
        tern.stop_ok()


if __name__ == "__main__":
    main()
