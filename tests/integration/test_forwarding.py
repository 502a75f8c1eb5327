"""Bytes are forwarded exactly, both ways, any size, any split: many
concurrent full-duplex connections through an echo backend, a unix socket
backend, a tiny --buffer-size, one-byte TLS records, an IPv6 listener."""

import hashlib
import math
import os
import random
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BannerEchoBackend, FloodBackend, SinkBackend, TLSClient,  # noqa: E402
                     TernTestCase, binary_is_sanitized, client_context, free_port, main,
                     process_rss, run_threads, sha256,
                     wait_for, wait_stalled)

MiB = 1 << 20
SEED = int(os.environ.get("TERN_TEST_SEED", "0")) or random.randrange(1, 1 << 30)


def payload_sizes(n, largest, rng):
    """Edge sizes around the 16 KiB TLS record, the largest size, and the
    rest log-uniform in [1, largest] (many small, a few large)."""
    fixed = [0, 1, 2, 100, 16383, 16384, 16385, 65536, MiB, largest]
    fixed = [s for s in fixed if s <= largest][:n]
    rest = [int(math.exp(rng.uniform(0, math.log(largest)))) for _ in range(n - len(fixed))]
    return fixed + rest


class TrickleClient(TLSClient):
    """Sends its ciphertext one byte per segment while trickle is set."""

    trickle = True

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _flush(self):
        if not self.trickle:
            return super()._flush()
        if self.out.pending:
            self.pending += self.out.read()
        while self.pending:
            try:
                self.sock.send(self.pending[:1])
            except BlockingIOError:
                return False
            self.pending = self.pending[1:]
            time.sleep(0.0005)  # pacing: one segment per byte
        return True


class TestForwarding(TernTestCase):

    def setUp(self):
        super().setUp()
        self.rng = random.Random(SEED)

    def roundtrip_many(self, port, sizes, chunk=16384, timeout=90):
        """One thread per size; each sends random bytes while reading the
        echo; checks length and SHA-256; ends with close_notify."""
        payloads = [self.rng.randbytes(n) for n in sizes]
        barrier = threading.Barrier(len(sizes))

        def one(payload):
            barrier.wait(timeout=30)
            c = TLSClient(port)
            try:
                c.handshake(timeout=30)
                got = c.exchange(payload, expect=len(payload), timeout=timeout, chunk=chunk)
                if len(got) != len(payload) or sha256(got) != sha256(payload):
                    raise AssertionError("size %d: got %d bytes back, sha256 %s"
                                         % (len(payload), len(got),
                                            "equal" if got == payload else "differs"))
                c.shut_write("close_notify")
            finally:
                c.close()
        run_threads(one, [(p,) for p in payloads], timeout + 30,
                    "round trips (seed %d)" % SEED)
        return sum(sizes)

    def test_100_concurrent_full_duplex(self):
        be = self.echo_backend()
        tern = self.start_tern([be], workers=2)
        sizes = payload_sizes(100, 4 * MiB, self.rng)
        total = self.roundtrip_many(self.port, sizes)
        lines = tern.wait_access(100, timeout=20)
        self.assertEqual(sorted(a["bytes_in"] for a in lines), sorted(sizes))
        self.assertEqual(sorted(a["bytes_out"] for a in lines), sorted(sizes))
        c = tern.stop_ok()
        self.assertEqual(c["conns_total"], 100)
        self.assertEqual(c["handshakes_full"], 100)
        self.assertEqual(c["handshake_failures"], 0)
        self.assertEqual(c["backend_connect_failures"], 0)
        self.assertEqual(c["bytes_client_in"], total)
        self.assertEqual(c["bytes_client_out"], total)
        self.assertEqual(be.accepted, 100)

    def test_unix_backend(self):
        be = self.echo_backend(unix=True)
        tern = self.start_tern([be])
        sizes = payload_sizes(10, MiB, self.rng)
        total = self.roundtrip_many(self.port, sizes)
        c = tern.stop_ok()
        self.assertEqual(c["conns_total"], 10)
        self.assertEqual(c["bytes_client_in"], total)
        self.assertEqual(c["bytes_client_out"], total)
        self.assertEqual(be.accepted, 10)

    def test_small_buffer_size(self):
        be = self.echo_backend()
        tern = self.start_tern([be], extra=["--buffer-size", "1k"])
        sizes = payload_sizes(20, 2 * MiB, self.rng)
        total = self.roundtrip_many(self.port, sizes)
        c = tern.stop_ok()
        self.assertEqual(c["bytes_client_in"], total)
        self.assertEqual(c["bytes_client_out"], total)

    def test_one_byte_records(self):
        """Every TLS record carries one byte: any split is forwarded."""
        be = self.echo_backend()
        tern = self.start_tern([be])
        self.roundtrip_many(self.port, [3000, 1500], chunk=1)
        # Odd-sized records too.
        c = self.client().handshake()
        data = self.rng.randbytes(2000)
        self.assertEqual(c.exchange(data, expect=len(data), chunk=7), data)
        c.shut_write("close_notify")
        self.assertEqual(c.recv_until_close(), b"")
        tern.stop_ok()

    def test_server_speaks_first(self):
        # The backend sends a banner on accept while the client sends its
        # first bytes right after the handshake: both must get through.
        banner = b"220 banner from the backend\r\n"
        be = self.backend(BannerEchoBackend, banner)
        tern = self.start_tern([be], workers=1)
        for i in range(40):
            c = self.client().handshake()
            msg = b"HELO %d\r\n" % i
            got = c.exchange(msg, expect=len(banner) + len(msg), timeout=3)
            self.assertEqual(got, banner + msg, "connection %d" % i)
            c.shut_write("close_notify")
            self.assertEqual(c.recv_until_close(timeout=3), b"")
            c.close()
        counters = tern.stop_ok()
        self.assertEqual(counters["conns_total"], 40)

    def test_handshake_byte_by_byte(self):
        # The client's handshake flights arrive one byte per TCP segment.
        be = self.echo_backend()
        tern = self.start_tern([be])
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version=version.name):
                c = TrickleClient(self.port, ctx=client_context(min_version=version,
                                                                max_version=version))
                self.addCleanup(c.close)
                c.handshake(timeout=20)
                c.trickle = False
                self.assertEqual(c.version(), version.name.replace("_", "."))
                data = self.rng.randbytes(70000)
                self.assertEqual(c.exchange(data, expect=len(data)), data)
                c.shut_write("close_notify")
                c.recv_until_close()
        tern.stop_ok()

    def test_ipv6_listener(self):
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                s.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback on this machine")
        be = self.echo_backend()
        port = free_port("::1")
        tern = self.start_tern([be], listen=["[::1]:%d" % port])
        c = self.client(port=port, host="::1").handshake()
        data = self.rng.randbytes(50000)
        self.assertEqual(c.exchange(data, expect=len(data)), data)
        c.shut_write("close_notify")
        c.recv_until_close()
        a = tern.access_for(c)
        self.assertEqual(a["peer"], c.peer_text())
        tern.stop_ok()

    def test_two_listeners(self):
        be = self.echo_backend()
        ports = [free_port(), free_port()]
        tern = self.start_tern([be], listen=["127.0.0.1:%d" % p for p in ports])
        for p in ports:
            c = self.client(port=p).handshake()
            self.assertEqual(c.exchange(b"port %d" % p, expect=len(b"port %d" % p)),
                             b"port %d" % p)
            c.shut_write("close_notify")
            c.recv_until_close()
        self.assertEqual(tern.stop_ok()["conns_total"], 2)


# Backpressure (SPEC section 6): with 64 MiB to move and the far side not
# reading, what tern takes in stays within what the kernel's socket buffers
# hold on loopback (a few MiB each), and so does its memory.
FLOOD_TOTAL = 64 * MiB
STALL_BOUND = 40 * MiB
RSS_GROWTH_BOUND = 32 * MiB
BLOCK = bytes(range(256)) * 256  # 64 KiB


def block_sha(total):
    h = hashlib.sha256()
    for _ in range(total // len(BLOCK)):
        h.update(BLOCK)
    return h.hexdigest()


class TestBackpressure(TernTestCase):

    def test_backend_not_reading_stops_client_reads(self):
        gate = threading.Event()
        sink = self.backend(SinkBackend, gate=gate)
        tern = self.start_tern([sink], workers=1)
        c = self.client().handshake()
        wait_for(lambda: sink.accepted == 1, 5, "tern to connect the backend")
        rss_before = process_rss(tern.proc.pid)
        pushed = c.push_until_stalled(BLOCK, FLOOD_TOTAL, stall=1.0)
        self.assertLess(pushed, STALL_BOUND,
                        "tern took %d MiB while its backend read nothing" % (pushed // MiB))
        if not binary_is_sanitized():
            growth = process_rss(tern.proc.pid) - rss_before
            self.assertLess(growth, RSS_GROWTH_BOUND, "tern grew by %d MiB" % (growth // MiB))
        gate.set()
        rest = BLOCK * ((FLOOD_TOTAL - pushed) // len(BLOCK))
        reply = c.exchange(rest, then="close_notify", timeout=60)
        self.assertEqual(reply, b"%d %s\n" % (FLOOD_TOTAL, block_sha(FLOOD_TOTAL).encode()))
        c.close()
        counters = tern.stop_ok()
        self.assertEqual(counters["bytes_client_in"], FLOOD_TOTAL)

    def test_client_not_reading_stops_backend_reads(self):
        flood = self.backend(FloodBackend, FLOOD_TOTAL, BLOCK)
        tern = self.start_tern([flood], workers=1)
        c = self.client().handshake()
        wait_for(lambda: flood.accepted == 1, 5, "tern to connect the backend")
        rss_before = process_rss(tern.proc.pid)
        stalled_at = wait_stalled(lambda: flood.progress.get(0, 0), stall=1.0,
                                  what="the backend's sending to stall")
        self.assertLess(stalled_at, STALL_BOUND,
                        "tern took %d MiB from the backend while the client read nothing"
                        % (stalled_at // MiB))
        if not binary_is_sanitized():
            growth = process_rss(tern.proc.pid) - rss_before
            self.assertLess(growth, RSS_GROWTH_BOUND, "tern grew by %d MiB" % (growth // MiB))
        h = hashlib.sha256()
        n = [0]

        def consume(received):
            h.update(received)
            n[0] += len(received)
            del received[:]
        c.exchange(b"", timeout=60, on_progress=consume)
        self.assertTrue(c.got_close_notify)
        self.assertEqual(n[0], FLOOD_TOTAL)
        self.assertEqual(h.hexdigest(), block_sha(FLOOD_TOTAL))
        c.shut_write("close_notify")
        c.close()
        counters = tern.stop_ok()
        self.assertEqual(counters["bytes_client_out"], FLOOD_TOTAL)


if __name__ == "__main__":
    main()
