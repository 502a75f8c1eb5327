"""The soak test's client processes (soak.py --role client): each runs its
share of the connection slots on one asyncio loop, every slot keeping one
connection of its kind open session after session, and prints its counts
as one JSON line.
"""

import asyncio
import hashlib
import json
import random
import resource
import socket
import ssl
import struct
import sys
import time

from soak_common import KINDS, SCALE, raise_nofile, slot_kinds
from soak_tls import AsyncTLS, Closed

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


class Client:
    def __init__(self, args, index, nproc):
        self.a = args
        self.index = index
        self.port = args.port
        self.t0 = args.t0
        self.end = args.t0 + args.seconds
        self.ramp = args.ramp
        self.rng = random.Random(1000 + index)
        self.ctx13 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx13.load_verify_locations(args.ca)
        self.ctx12 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx12.load_verify_locations(args.ca)
        self.ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
        ch = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ch.check_hostname = False
        ch.verify_mode = ssl.CERT_NONE
        inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ch.wrap_bio(inb, outb, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.client_hello = outb.read()
        self.op_timeout = 60 * SCALE
        self.st = {
            "connects": 0, "connect_errors": 0, "handshakes": 0,
            "sessions": {k: 0 for k in KINDS},
            "verified": 0, "verified_bytes_sent": 0, "verified_bytes_recv": 0,
            "bytes_sent": 0, "bytes_recv": 0,
            "corrupt": 0, "errors": 0, "error_samples": [],
            "rst": 0, "garbage_closed": 0, "slowloris_closed": 0,
            "slowloris_close_s_max": 0.0, "slowloris_close_s_min": 1e9,
            "max_open": 0, "open": 0, "error_kinds": {},
            "handshake_s_max": 0.0, "server_hello_s_max": 0.0, "server_hello_over_1s": 0,
            "loop_lag_s_max": 0.0,
        }

    def err(self, kind, what):
        self.st["errors"] += 1
        key = "%s: %s" % (kind, what.split(":")[0])
        self.st["error_kinds"][key] = self.st["error_kinds"].get(key, 0) + 1
        if len(self.st["error_samples"]) < 20:
            self.st["error_samples"].append("%s: %s" % (kind, what))

    async def connect(self, slot):
        loop = asyncio.get_running_loop()
        src = "127.0.0.%d" % (2 + slot % 253)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        except OSError:
            pass
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            s.bind((src, 0))
            await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", self.port)),
                                   self.op_timeout)
        except BaseException:
            s.close()
            self.st["connect_errors"] += 1
            raise
        self.st["connects"] += 1
        self.st["open"] += 1
        self.st["max_open"] = max(self.st["max_open"], self.st["open"])
        return s

    def release(self, s, rst=False):
        if rst:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        self.st["open"] -= 1

    async def tls(self, slot, v12=False):
        s = await self.connect(slot)
        t = AsyncTLS(asyncio.get_running_loop(), s, self.ctx12 if v12 else self.ctx13)
        ts = time.monotonic()
        try:
            await asyncio.wait_for(t.handshake(), self.op_timeout)
        except BaseException:
            self.release(s)
            raise
        self.st["handshakes"] += 1
        self.st["handshake_s_max"] = max(self.st["handshake_s_max"], time.monotonic() - ts)
        self.st["server_hello_s_max"] = max(self.st["server_hello_s_max"], t.first_reply_s)
        if t.first_reply_s > 1:
            self.st["server_hello_over_1s"] += 1
        return s, t

    def left(self):
        return self.end - time.time()

    async def read_exact(self, t, n):
        got = bytearray()
        while len(got) < n:
            d = await asyncio.wait_for(t.recv(), self.op_timeout)
            if not d:
                break
            got += d
        return bytes(got)

    def payload(self, n):
        return self.rng.randbytes(n)

    def verdict(self, kind, hs, hr, ns, nr):
        if hs.digest() == hr.digest() and ns == nr:
            self.st["verified"] += 1
            self.st["verified_bytes_sent"] += ns
            self.st["verified_bytes_recv"] += nr
        else:
            self.st["corrupt"] += 1
            self.err(kind, "SHA-256 mismatch: sent %d bytes, got %d" % (ns, nr))

    # ---------------------------------------------------------- behaviours
    async def s_echo(self, slot):
        s, t = await self.tls(slot, v12=(slot % 10 == 3))
        hs, hr, ns, nr = hashlib.sha256(), hashlib.sha256(), 0, 0
        try:
            stop = time.time() + self.rng.uniform(10, 40)
            while time.time() < min(stop, self.end):
                data = self.payload(self.rng.choice((1, 100, 1000, 4096, 16384, 40000)
                                                    if self.rng.random() < 0.3 else (1, 100, 1000)))
                hs.update(data)
                ns += len(data)
                await asyncio.wait_for(t.send(data), self.op_timeout)
                back = await self.read_exact(t, len(data))
                hr.update(back)
                nr += len(back)
                if len(back) != len(data):
                    break
                await asyncio.sleep(self.rng.uniform(0.5, 2))
            await t.close_notify()
            # tern answers close_notify by closing the backend's write side;
            # the echo backend closes, tern sends close_notify back.
            rest = await self.read_exact(t, 1)
            hr.update(rest)
            nr += len(rest)
        finally:
            self.release(s)
        self.st["bytes_sent"] += ns
        self.st["bytes_recv"] += nr
        self.verdict("echo", hs, hr, ns, nr)

    async def s_slowread(self, slot):
        s, t = await self.tls(slot)
        total = self.rng.choice((64, 128, 256)) * 1024
        hs, hr = hashlib.sha256(), hashlib.sha256()
        nr = 0

        async def writer():
            sent = 0
            while sent < total:
                data = self.payload(min(16384, total - sent))
                hs.update(data)
                sent += len(data)
                await asyncio.wait_for(t.send(data), self.op_timeout)

        try:
            wt = asyncio.ensure_future(writer())
            while nr < total:
                d = await asyncio.wait_for(t.recv(2048, raw=2048), self.op_timeout)
                if not d:
                    break
                hr.update(d)
                nr += len(d)
                await asyncio.sleep(0.05)
            await asyncio.wait_for(wt, self.op_timeout)
            await t.close_notify()
            rest = await self.read_exact(t, 1)
            hr.update(rest)
            nr += len(rest)
        finally:
            self.release(s)
        self.st["bytes_sent"] += total
        self.st["bytes_recv"] += nr
        self.verdict("slowread", hs, hr, total, nr)

    async def s_halfclose(self, slot):
        s, t = await self.tls(slot)
        hs, hr = hashlib.sha256(), hashlib.sha256()
        ns = 0
        try:
            for _ in range(self.rng.randint(1, 8)):
                data = self.payload(self.rng.randint(1, 20000))
                hs.update(data)
                ns += len(data)
                await asyncio.wait_for(t.send(data), self.op_timeout)
            if slot % 2:
                await t.close_notify()
            else:
                s.shutdown(socket.SHUT_WR)
            back = await self.read_exact(t, ns + 1)  # to the end of the stream
            hr.update(back)
        finally:
            self.release(s)
        self.st["bytes_sent"] += ns
        self.st["bytes_recv"] += len(back)
        self.verdict("halfclose", hs, hr, ns, len(back))
        await asyncio.sleep(self.rng.uniform(0.1, 0.5))

    async def s_rst(self, slot):
        s, t = await self.tls(slot)
        try:
            await t.send(self.payload(4096))
            await self.read_exact(t, 1)
            # Mid-stream: a large write in flight, the echo not yet read.
            t.obj.write(self.payload(self.rng.randint(10000, 200000)))
            data = t.outb.read()
            try:
                s.send(data)
            except (BlockingIOError, OSError):
                pass
            await asyncio.sleep(self.rng.uniform(0, 0.2))
        finally:
            self.release(s, rst=True)
        self.st["rst"] += 1
        await asyncio.sleep(self.rng.uniform(0.1, 0.5))

    async def _until_closed(self, s, limit):
        """Reads a plain socket until EOF or reset; True if closed in time."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                d = await asyncio.wait_for(loop.sock_recv(s, 4096),
                                           max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                return False
            except (ConnectionResetError, BrokenPipeError, OSError):
                return True
            if not d:
                return True
        return False

    async def s_slowloris(self, slot):
        s = await self.connect(slot)
        t0 = time.monotonic()
        try:
            closer = asyncio.ensure_future(self._until_closed(s, 5 + 15 * SCALE))
            loop = asyncio.get_running_loop()
            for i in range(len(self.client_hello) - 1):  # never complete
                if closer.done():
                    break
                try:
                    await asyncio.wait_for(loop.sock_sendall(s, self.client_hello[i:i + 1]),
                                           self.op_timeout)
                except OSError:
                    break
                await asyncio.wait([closer], timeout=0.5)
            closed = await closer
        finally:
            self.release(s)
        dt = time.monotonic() - t0
        if closed:
            self.st["slowloris_closed"] += 1
            self.st["slowloris_close_s_max"] = max(self.st["slowloris_close_s_max"], dt)
            self.st["slowloris_close_s_min"] = min(self.st["slowloris_close_s_min"], dt)
        else:
            self.err("slowloris", "not closed by tern after %.1fs" % dt)

    async def s_garbage(self, slot):
        s = await self.connect(slot)
        try:
            junk = bytes([self.rng.choice(b"GPXZ\x00\xff")]) + self.payload(
                self.rng.randint(1, 3000))
            try:
                await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(s, junk),
                                       self.op_timeout)
            except OSError:
                pass
            closed = await self._until_closed(s, 10 + 10 * SCALE)
        finally:
            self.release(s)
        if closed:
            self.st["garbage_closed"] += 1
        else:
            self.err("garbage", "not closed by tern")
        await asyncio.sleep(self.rng.uniform(0.1, 0.5))

    async def s_idle(self, slot):
        s, t = await self.tls(slot)
        try:
            # Silence; read only to take tickets (and see an unexpected close).
            while self.left() > 0:
                try:
                    d = await asyncio.wait_for(t.recv(), max(0.05, self.left()))
                except asyncio.TimeoutError:
                    break
                if not d:
                    self.err("idle", "closed by tern while idle")
                    return
            await t.close_notify()
            await self.read_exact(t, 1)
        finally:
            self.release(s)

    async def slot(self, slot, kind):
        await asyncio.sleep(max(0.0, self.t0 + self.rng.uniform(0, self.ramp) - time.time()))
        fn = getattr(self, "s_" + kind)
        while self.left() > 0:
            try:
                await fn(slot)
                self.st["sessions"][kind] += 1
            except asyncio.TimeoutError:
                self.err(kind, "timed out after %.0fs" % self.op_timeout)
                await asyncio.sleep(1)
            except (OSError, ssl.SSLError, Closed) as e:
                self.err(kind, "%s: %s" % (type(e).__name__, e))
                await asyncio.sleep(1)

    async def lag(self):
        while self.left() > 0:
            ts = time.monotonic()
            await asyncio.sleep(0.1)
            self.st["loop_lag_s_max"] = max(self.st["loop_lag_s_max"],
                                            time.monotonic() - ts - 0.1)

    async def run(self, slots):
        await asyncio.gather(self.lag(), *(self.slot(i, k) for i, k in slots))


def role_client(args):
    raise_nofile()
    kinds = slot_kinds(args.conns)
    mine = [(i, kinds[i]) for i in range(args.conns) if i % args.client_procs == args.index]
    c = Client(args, args.index, args.client_procs)
    asyncio.run(asyncio.wait_for(c.run(mine), args.seconds + 5 * 60 * SCALE))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    c.st["cpu_s"] = ru.ru_utime + ru.ru_stime
    c.st["slots"] = {k: sum(1 for _, kk in mine if kk == k) for k in KINDS}
    sys.stdout.write(json.dumps(c.st) + "\n")
    sys.stdout.flush()
