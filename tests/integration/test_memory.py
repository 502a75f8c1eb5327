"""Memory per connection: an idle connection holds no buffer memory.

Reads go through io_uring provided buffers (--read-buffers) that a
connection borrows only while an event is handled, and every buffer that
drains is freed, so `conns` reports buffer_bytes 0 for a connection that
waits. The same holds after bulk transfers in both directions, and the
bytes stay exact when the shared buffers run out (one buffer for a
hundred busy connections) or are switched off."""

import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TLSClient, TernTestCase, binary_is_sanitized, main,  # noqa: E402
                     process_rss, run_threads, sha256, tern_bin, test_io, wait_for)

KiB = 1 << 10
MiB = 1 << 20


class TestMemory(TernTestCase):

    def start(self, extra=()):
        be = self.echo_backend()
        control = os.path.join(self.tmp, "control.sock")
        return self.start_tern([be], extra=["--control", control] + list(extra), workers=2)

    def open_clients(self, port, sizes):
        """One client per size: a handshake and an exact echo of that many
        random bytes; the clients stay open."""
        rng = random.Random(len(sizes))
        clients = []
        for n in sizes:
            c = TLSClient(port)
            clients.append(c)
            c.handshake()
            payload = rng.randbytes(n)
            got = c.exchange(payload, expect=n, timeout=30)
            self.assertEqual(sha256(got), sha256(payload), "echo of %d bytes" % n)
        return clients

    def assert_idle_conns_hold_no_buffers(self, tern, count):
        def settled():
            conns = tern.conns()
            return len(conns) == count and all(c["buffer_bytes"] == 0 for c in conns)
        try:
            wait_for(settled, 10, "%d idle connections with buffer_bytes 0" % count)
        except AssertionError:
            raise AssertionError("buffers held while idle: %r"
                                 % sorted(c["buffer_bytes"] for c in tern.conns()))

    def test_idle_connections_hold_no_buffers(self):
        tern = self.start()
        # Sizes around a record and well past the buffers, so that every
        # buffer was filled at least once (partial records kept included).
        sizes = [1, 100, 1000, 16 * KiB - 1, 16 * KiB + 1, 100 * KiB, 1 * MiB, 3 * MiB] * 4
        clients = self.open_clients(self.port, sizes)
        try:
            self.assert_idle_conns_hold_no_buffers(tern, len(sizes))
            # And a connection that is busy again still gets its bytes.
            payload = random.Random(7).randbytes(200 * KiB)
            got = clients[0].exchange(payload, expect=len(payload), timeout=30)
            self.assertEqual(sha256(got), sha256(payload))
            self.assert_idle_conns_hold_no_buffers(tern, len(sizes))
        finally:
            for c in clients:
                c.close()
        tern.stop_ok()

    def transfer_concurrently(self, port, n, size):
        payloads = [random.Random(i).randbytes(size) for i in range(n)]

        def one(payload):
            c = TLSClient(port)
            try:
                c.handshake(timeout=30)
                got = c.exchange(payload, expect=len(payload), timeout=90)
                if sha256(got) != sha256(payload):
                    raise AssertionError("%d bytes sent, %d back, content %s" % (
                        len(payload), len(got), "equal" if got == payload else "differs"))
                c.shut_write("close_notify")
            finally:
                c.close()
        run_threads(one, [(p,) for p in payloads], 120, "concurrent transfers")

    def test_one_shared_buffer_for_many_connections(self):
        # A single provided buffer: most reads find none free and fall back
        # to the connection's own buffer; no byte may be lost or reordered.
        tern = self.start(["--read-buffers", "1"])
        self.transfer_concurrently(self.port, 60, 256 * KiB)
        c = tern.stop_ok()
        self.assertEqual(c["conns_total"], 60)
        self.assertEqual(c["bytes_client_in"], 60 * 256 * KiB)
        self.assertEqual(c["bytes_client_out"], 60 * 256 * KiB)

    def test_client_that_writes_before_it_reads(self):
        # The client pushes until tern stops taking its bytes, reading
        # nothing, then reads its echo slowly: records wait in cin behind
        # full buffers in both directions, sends complete in part. A read
        # queued into cin's own memory while bytes wait there would stay
        # queued once the client falls silent (conn_test.c,
        # test_record_waiting_for_c2b, makes that happen exactly). Each
        # round must end exact and hold nothing once idle.
        tern = self.start()
        rng = random.Random(5)
        for round_ in range(3):
            c = TLSClient(self.port)
            try:
                c.handshake()
                block = rng.randbytes(16 * KiB)
                sent = c.push_until_stalled(block, 64 * MiB, stall=0.5)
                self.assertGreater(sent, 256 * KiB, "tern took too little to fill its buffers")
                # Read slowly, so that cout is still full when the last
                # of the client's bytes come in.
                got = c.exchange(expect=sent, timeout=60,
                                 on_progress=lambda received: time.sleep(0.002))
                self.assertEqual(len(got), sent)
                self.assertEqual(sha256(got), sha256(block * (sent // len(block))),
                                 "round %d" % round_)
                self.assert_idle_conns_hold_no_buffers(tern, 1)
            finally:
                c.close()
            wait_for(lambda: len(tern.conns()) == 0, 10, "the connection closed")
        tern.stop_ok()

    def idle_rss_per_conn(self, mode, count=300):
        """KiB of tern's RSS per idle connection that has answered one
        echo, with --handshake-tickets `mode` (its tickets went out with
        that answer, or in the handshake)."""
        tern = self.start(["--handshake-tickets", mode])
        warm = self.open_clients(self.port, [10] * 20)  # allocator and OpenSSL warm-up
        for c in warm:
            c.close()
        wait_for(lambda: len(tern.conns()) == 0, 10, "the warm-up connections closed")
        before = process_rss(tern.proc.pid)
        clients = self.open_clients(self.port, [10] * count)
        try:
            self.assert_idle_conns_hold_no_buffers(tern, count)
            return (process_rss(tern.proc.pid) - before) / 1024 / count
        finally:
            for c in clients:
                c.close()
            tern.stop_ok()

    def test_tickets_with_data_cost_no_memory_when_idle(self):
        # With-data's tickets are written after the handshake, and OpenSSL
        # kept its record buffers after writing them: bench/load's idle
        # connections cost 26.6 KiB each against 14.7 at-once, until tern
        # had OpenSSL release them after every ticket write
        # (tern_tls_release_buffers). 300 connections: 12 KiB each is
        # 3.5 MiB, far above the allocator's noise.
        if binary_is_sanitized(tern_bin()):
            self.skipTest("a sanitizer build: its allocator's redzones and quarantine are "
                          "the RSS")
        at_once = self.idle_rss_per_conn("at-once")
        with_data = self.idle_rss_per_conn("with-data")
        self.assertLess(with_data, at_once + 3, "KiB per idle connection: with-data %.1f, "
                        "at-once %.1f" % (with_data, at_once))

    def test_burst_of_reads_then_idle(self):
        # The worker offers the kernel only a few provided buffers at a
        # time (the most recently used, for the cache). With tern stopped,
        # forty clients send at once; when it resumes, every one of their
        # reads completes in one batch, more than the buffers offered, so
        # some find none (read_buffer_misses) and are queued again while
        # the ring offers more. Every echo must come back exact, and once
        # idle no connection may hold a buffer.
        tern = self.start()
        rng = random.Random(40)
        clients = self.open_clients(self.port, [10] * 40)
        try:
            payloads = [rng.randbytes(3000) for _ in clients]
            misses = tern.stats()["read_buffer_misses"]
            tern.proc.send_signal(signal.SIGSTOP)
            try:
                for c, p in zip(clients, payloads):
                    c.obj.write(p)
                    self.assertTrue(wait_for(c._flush, 5, "the request on the wire"))
            finally:
                tern.proc.send_signal(signal.SIGCONT)
            run_threads(lambda c, p: self.assertEqual(
                sha256(c.exchange(expect=len(p), timeout=30)), sha256(p)),
                list(zip(clients, payloads)), 60, "echoes after the burst")
            # Misses are the io_uring engine's: the kernel picks among the
            # buffers the ring offers. epoll reads a ready socket into the
            # worker's scratch buffer (src/conn_epoll.c): nothing to miss.
            if test_io() != "epoll":
                self.assertGreater(tern.stats()["read_buffer_misses"], misses)
            self.assert_idle_conns_hold_no_buffers(tern, len(clients))
        finally:
            for c in clients:
                c.close()
        tern.stop_ok()

    def test_read_buffers_off(self):
        # --read-buffers 0: each connection reads into buffers of its own,
        # which an idle connection keeps (the behaviour this flag trades).
        tern = self.start(["--read-buffers", "0"])
        self.transfer_concurrently(self.port, 20, 256 * KiB)
        clients = self.open_clients(self.port, [1000] * 3)
        try:
            def held():
                conns = tern.conns()
                return len(conns) == 3 and all(c["buffer_bytes"] >= 2 * 16 * KiB for c in conns)
            wait_for(held, 10, "each idle connection holding its two read buffers")
        finally:
            for c in clients:
                c.close()
        c = tern.stop_ok()
        self.assertEqual(c["bytes_client_in"], 20 * 256 * KiB + 3000)


if __name__ == "__main__":
    main()
