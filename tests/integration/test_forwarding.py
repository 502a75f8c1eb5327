"""Bytes are forwarded exactly, both ways, any size, any split: many
concurrent full-duplex connections through an echo backend, a unix socket
backend, a tiny --buffer-size, one-byte TLS records, an IPv6 listener."""

import math
import os
import random
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TLSClient, TernTestCase, free_port, main, run_threads, sha256  # noqa: E402

MiB = 1 << 20
SEED = int(os.environ.get("TERN_TEST_SEED", "0")) or random.randrange(1, 1 << 30)


def payload_sizes(n, largest, rng):
    """Edge sizes around the 16 KiB TLS record, the largest size, and the
    rest log-uniform in [1, largest] (many small, a few large)."""
    fixed = [0, 1, 2, 100, 16383, 16384, 16385, 65536, MiB, largest]
    fixed = [s for s in fixed if s <= largest][:n]
    rest = [int(math.exp(rng.uniform(0, math.log(largest)))) for _ in range(n - len(fixed))]
    return fixed + rest


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


if __name__ == "__main__":
    main()
