"""Backend selection (SPEC section 6): an unreachable backend closes the
client promptly and is counted; a refused backend falls over to the next
one; new connections go round-robin over the backends."""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HANDSHAKE_FAILED, Backend, EchoBackend, TernTestCase,  # noqa: E402
                     closed_port, main, scaled, wait_for)


def reset_socket(sock):
    """Closes with an RST instead of a FIN (SO_LINGER with zero timeout)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class RequestReplyBackend(Backend):
    """Speaks first ("partial reply"), waits for the client's request, then
    ends the connection: with an RST when reset is set, else with a FIN."""

    def __init__(self, tc, reset, **kw):
        self.reset = reset
        self.requests = {}
        super().__init__(tc, **kw)

    def handle(self, conn, index):
        conn.sendall(b"partial reply")
        self.requests[index] = conn.recv(100)
        if self.reset:
            reset_socket(conn)
        else:
            conn.shutdown(socket.SHUT_WR)
            conn.recv(100)


class TestBackends(TernTestCase):

    def test_backend_down_closes_client_promptly(self):
        down = "127.0.0.1:%d" % closed_port()
        tern = self.start_tern([down])
        t0 = time.monotonic()
        c = self.client()
        try:
            c.handshake()
        except HANDSHAKE_FAILED:
            # Acceptable: tern may try the backend before finishing the
            # handshake. Either way the connection must end promptly.
            pass
        else:
            got = c.recv_until_close(timeout=5)
            self.assertEqual(got, b"", "bytes from an unreachable backend")
            self.assertTrue(c.got_close_notify, "closed without close_notify")
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, scaled(2.0), "client closed only after %.2fs" % elapsed)
        a = tern.wait_access(1)[0]
        self.assertEqual(a["reason"], "backend_unavailable")
        counters = tern.stop_ok()
        self.assertGreaterEqual(counters["backend_connect_failures"], 1)
        self.assertEqual(counters["conns_total"], 1)

    def test_first_backend_down_second_used(self):
        down = "127.0.0.1:%d" % closed_port()
        be = self.echo_backend()
        tern = self.start_tern([down, be], workers=1)
        for i in range(4):
            with self.subTest(conn=i):
                c = self.client().handshake()
                data = b"conn-%d " % i * 1000
                self.assertEqual(c.exchange(data, expect=len(data)), data)
                c.shut_write("close_notify")
                self.assertEqual(c.recv_until_close(), b"")
                c.close()
        self.assertEqual(be.accepted, 4)
        lines = tern.wait_access(4)
        self.assertEqual([a["reason"] for a in lines], ["done"] * 4)
        counters = tern.stop_ok()
        # Round-robin sends at least one of four connections to the dead
        # backend first; each of those is retried on the live one.
        self.assertGreaterEqual(counters["backend_connect_failures"], 1)
        self.assertLessEqual(counters["backend_connect_failures"], 4)

    def _round_robin(self, workers, n):
        order = []
        a = self.backend(EchoBackend, order_log=order, name="A")
        b = self.backend(EchoBackend, order_log=order, name="B")
        tern = self.start_tern([a, b], workers=workers)
        for i in range(n):
            c = self.client().handshake()
            self.assertEqual(c.exchange(b"rr%d" % i, expect=len(b"rr%d" % i)), b"rr%d" % i)
            c.shut_write("close_notify")
            c.recv_until_close()
            c.close()
        tern.stop_ok()
        return order, a, b

    def test_round_robin_one_worker_alternates(self):
        order, a, b = self._round_robin(1, 20)
        self.assertEqual(len(order), 20)
        self.assertEqual(a.accepted, 10)
        self.assertEqual(b.accepted, 10)
        for i in range(1, 20):
            self.assertNotEqual(order[i], order[i - 1], "not alternating: %s" % "".join(order))

    def test_round_robin_two_workers_spreads(self):
        order, a, b = self._round_robin(2, 20)
        self.assertEqual(a.accepted + b.accepted, 20)
        # Each worker may keep its own rotation: roughly half each.
        self.assertGreaterEqual(a.accepted, 7, "".join(order))
        self.assertGreaterEqual(b.accepted, 7, "".join(order))

    def test_backend_connect_timeout(self):
        # A backend whose accept queue is full: the kernel drops the SYN,
        # so only --connect-timeout ends tern's connect.
        ls = socket.socket()
        self.addCleanup(ls.close)
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        port = ls.getsockname()[1]
        for _ in range(3):
            s = socket.socket()
            self.addCleanup(s.close)
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
        tern = self.start_tern(["127.0.0.1:%d" % port], extra=["--connect-timeout", "500ms"])
        t0 = time.monotonic()
        c = self.client()
        try:
            c.handshake()
            self.assertEqual(c.recv_until_close(timeout=10), b"")
        except HANDSHAKE_FAILED:
            pass
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.4, "closed before --connect-timeout")
        self.assertLess(elapsed, 0.5 + scaled(2.0), "closed late")
        self.assertEqual(tern.wait_access(1)[0]["reason"], "backend_unavailable")
        counters = tern.stop_ok()
        self.assertGreaterEqual(counters["backend_connect_failures"], 1)

    def _backend_ends(self, reset, reason, rounds=30):
        be = self.backend(RequestReplyBackend, reset)
        tern = self.start_tern([be])
        for i in range(rounds):
            c = self.client().handshake()
            # The request goes out at once, while the backend's first bytes
            # are on their way.
            got = c.exchange(b"go", expect=len(b"partial reply"), timeout=3)
            self.assertEqual(got, b"partial reply")
            try:
                rest = c.recv_until_close(timeout=3)
            except TimeoutError:
                self.fail("connection %d: still open 3 s later; the backend got the request: "
                          "%r" % (i, be.requests.get(i, "not yet")))
            self.assertEqual(rest, b"")
            if not reset:
                self.assertTrue(c.got_close_notify, "connection %d: no close_notify" % i)
            c.close()
        lines = tern.wait_access(rounds)
        self.assertEqual([a["reason"] for a in lines], [reason] * rounds)
        self.assertEqual([a["bytes_out"] for a in lines], [len(b"partial reply")] * rounds)
        tern.stop_ok()

    def test_backend_reset_after_request(self):
        self._backend_ends(reset=True, reason="backend_error")

    def test_backend_closes_after_request(self):
        self._backend_ends(reset=False, reason="done")

    def test_client_reset_closes_backend(self):
        be = self.echo_backend()
        tern = self.start_tern([be])
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"x" * 1000, expect=1000), b"x" * 1000)
        reset_socket(c.sock)
        wait_for(lambda: be.closed_conns == 1, 2, "tern to close the backend connection")
        a = tern.wait_access(1)[0]
        self.assertEqual(a["reason"], "client_error")
        self.assertEqual(a["bytes_in"], 1000)
        tern.stop_ok()


if __name__ == "__main__":
    main()
