#!/usr/bin/env python3
"""Soak test: many concurrent TLS connections of mixed behaviour through the
real tern binary while reloads and `tickets all` run, then checks that every
verified transfer was intact, tern is alive, its descriptors are back to the
baseline, its RSS is within a bound of the baseline and its counters agree
with what the clients saw.

Python 3 standard library only. Three kinds of process, so none needs more
than ~10,000 descriptors (the hard limit here is 20,000; each raises its soft
limit to the hard one, and tern is started with the same raise):
- this one: starts everything, drives the control socket (reloads, tickets),
  samples tern's fd count and RSS, checks, prints the summary;
- one echo backend (asyncio) in its own process (`--role backend`);
- --client-procs client processes (`--role client`), each running its share
  of the connection slots on one asyncio loop, TLS over ssl.MemoryBIO so
  close_notify, TCP FIN and RST are each under the test's control.

Every slot keeps one connection of its kind open, session after session,
until the end of the run (so the number of concurrent connections stays at
--conns once ramped up):
  echo       random chunks, SHA-256 of everything sent == of everything echoed
  slowread   a writer and a slow reader at once (backpressure), verified too
  halfclose  send, then close_notify (or a bare TCP FIN), read the echo to
             the end, verified
  rst        send some, read some, then SO_LINGER 0 + close mid-stream
  slowloris  a real ClientHello, one byte every 0.5 s: tern must cut it at
             --handshake-timeout
  garbage    non-TLS bytes: tern must close
  idle       handshake, then silence until the end of the run
Client source addresses are spread over 127.0.0.2..127.0.0.254.

Every wait is bounded; sleeps only pace traffic.

  python3 tests/soak/soak.py --tern build/tern                # the long form
  python3 tests/soak/soak.py --conns 1500 --seconds 15 --reloads 5
"""

import argparse
import asyncio
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCALE = float(os.environ.get("TERN_TIMEOUT_SCALE", "1") or "1")
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

# Fractions of the slots; echo takes the rest.
MIX = [("rst", 0.08), ("slowread", 0.06), ("slowloris", 0.04), ("garbage", 0.04),
       ("halfclose", 0.08), ("idle", 0.10)]
KINDS = ["echo"] + [k for k, _ in MIX]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def slot_kinds(n):
    """Deterministic kind per slot index, the fractions above."""
    kinds = []
    for kind, frac in MIX:
        kinds += [kind] * int(round(n * frac))
    kinds += ["echo"] * (n - len(kinds))
    random.Random(7).shuffle(kinds)
    return kinds


# ================================================================ backend

async def _echo(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
            await writer.drain()
        # Wait (bounded) for tern to close its side.
        try:
            await asyncio.wait_for(reader.read(1), 30)
        except (asyncio.TimeoutError, OSError):
            pass
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.transport.abort() if writer.transport.is_closing() else writer.close()


async def _backend_main():
    server = await asyncio.start_server(_echo, "127.0.0.1", 0, backlog=4096,
                                        limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()
    # Run until stdin closes (the parent exited or closed it).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    server.close()


def role_backend():
    raise_nofile()
    asyncio.run(_backend_main())


# ================================================================ clients

class Closed(Exception):
    pass


class AsyncTLS:
    """TLS over ssl.MemoryBIO on a non-blocking socket, driven by asyncio."""

    def __init__(self, loop, sock, ctx):
        self.loop, self.sock = loop, sock
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inb, self.outb, server_hostname="localhost")
        self.send_lock = asyncio.Lock()
        self.eof = False

    async def flush(self):
        async with self.send_lock:
            data = self.outb.read()
            if data:
                await self.loop.sock_sendall(self.sock, data)

    async def _fill(self, n=65536):
        data = await self.loop.sock_recv(self.sock, n)
        if not data:
            self.eof = True
            self.inb.write_eof()
            return False
        self.inb.write(data)
        return True

    async def handshake(self):
        self.first_reply_s = None
        while True:
            try:
                self.obj.do_handshake()
                await self.flush()
                return
            except ssl.SSLWantReadError:
                await self.flush()
                ts = time.monotonic()
                if not await self._fill():
                    raise Closed("eof during handshake")
                if self.first_reply_s is None:
                    self.first_reply_s = time.monotonic() - ts

    async def send(self, data):
        self.obj.write(data)
        await self.flush()

    async def recv(self, n=65536, raw=65536):
        """Plaintext; b"" on close_notify or EOF."""
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                if self.eof:
                    return b""
                if not await self._fill(raw):
                    continue
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLEOFError:
                return b""

    async def close_notify(self):
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except ssl.SSLError:
            pass
        await self.flush()


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


# ================================================================ driver

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Control:
    """One connection to the control socket, kept open (tern closes a client
    silent for 30 s: then it reconnects once)."""

    def __init__(self, path):
        self.path = path
        self._connect()

    def _connect(self):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(15 * SCALE)
        self.s.connect(self.path)
        self.buf = b""

    def _cmd(self, line):
        self.s.sendall(line.encode() + b"\n")
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise ConnectionResetError("control socket closed")
            self.buf += d
        one, self.buf = self.buf.split(b"\n", 1)
        return json.loads(one)

    def cmd(self, line):
        try:
            return self._cmd(line)
        except (BrokenPipeError, ConnectionResetError):
            self.s.close()
            self._connect()
            return self._cmd(line)


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_scrape(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    out = {}
    for line in data.decode().split("\r\n\r\n", 1)[-1].splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def driver(args):
    violations = []
    soft, hard = raise_nofile()
    tern = os.path.abspath(args.tern)
    tmp = tempfile.mkdtemp(prefix="tern-soak-")
    procs = []
    tern_p = None
    try:
        key, crt, pem = (os.path.join(tmp, n) for n in ("ec.key", "ec.crt", "ec.pem"))
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", key], check=True,
                       capture_output=True, timeout=60)
        subprocess.run(["openssl", "req", "-new", "-x509", "-key", key, "-out", crt,
                        "-days", "30", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        with open(pem, "wb") as f:
            f.write(open(crt, "rb").read() + open(key, "rb").read())
        os.chmod(pem, 0o600)
        os.chmod(key, 0o600)

        backend = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--role",
                                    "backend"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        procs.append(backend)
        line = backend.stdout.readline()  # bounded: the backend prints at once or dies
        if not line:
            raise RuntimeError("echo backend failed to start")
        bport = int(line)

        port, mport = free_port(), free_port()
        ctl = os.path.join(tmp, "control.sock")
        log_path = os.path.join(tmp, "tern.stderr")
        log = open(log_path, "wb")
        targs = [tern, "--workers", "2", "--listen", "127.0.0.1:%d" % port,
                 "--backend", "127.0.0.1:%d" % bport, "--cert", pem,
                 "--control", ctl, "--metrics", "127.0.0.1:%d" % mport,
                 "--max-conns", str(args.conns + 1000), "--handshake-timeout", "5s",
                 "--idle-timeout", "10m", "--connect-timeout", "10s"]
        env = dict(os.environ)
        if args.malloc_conf:
            env["MALLOC_CONF"] = args.malloc_conf
        tern_p = subprocess.Popen(targs, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=log, cwd=tmp, preexec_fn=raise_nofile, env=env)

        def tern_log():
            with open(log_path, "rb") as f:
                return f.read().decode(errors="replace")

        wait_until(lambda: " ready: " in tern_log() or tern_p.poll() is not None,
                   30 * SCALE, "tern ready")
        if tern_p.poll() is not None:
            raise RuntimeError("tern exited at start:\n" + tern_log())
        with open("/proc/%d/limits" % tern_p.pid) as f:
            tern_nofile = [l for l in f if l.startswith("Max open files")][0].split()[3]
        c = Control(ctl)
        stats0 = c.cmd("stats")
        fd0, rss0 = proc_fds(tern_p.pid), proc_rss_kib(tern_p.pid)

        t0 = time.time() + 1.0
        cprocs = []
        for i in range(args.client_procs):
            cargs = [sys.executable, os.path.abspath(__file__), "--role", "client",
                     "--index", str(i), "--client-procs", str(args.client_procs),
                     "--conns", str(args.conns), "--seconds", str(args.seconds),
                     "--port", str(port), "--ca", crt, "--t0", repr(t0),
                     "--ramp", str(args.ramp)]
            p = subprocess.Popen(cargs, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
            procs.append(p)
            cprocs.append(p)

        # During the run: reloads spaced evenly, `tickets all 1` every 2 s,
        # samples of fds, RSS and conns_active every 0.5 s.
        reload_at = [t0 + args.seconds * (k + 0.5) / args.reloads for k in range(args.reloads)]
        next_tickets = t0 + args.tickets_every
        reloads_ok, tickets_ok, tickets_reached = 0, 0, 0
        peak_rss, peak_fds, peak_active = rss0, fd0, 0
        hard_end = t0 + args.seconds + 5 * 60 * SCALE
        while any(p.poll() is None for p in cprocs):
            now = time.time()
            if now > hard_end:
                violations.append("client processes still running %.0fs after the end"
                                  % (now - t0 - args.seconds))
                break
            if tern_p.poll() is not None:
                violations.append("tern died during the run (status %s)" % tern_p.returncode)
                break
            if reload_at and now >= reload_at[0]:
                reload_at.pop(0)
                r = c.cmd("reload")
                if r.get("ok"):
                    reloads_ok += 1
                else:
                    violations.append("reload failed: %s" % r)
            if now >= next_tickets and now < t0 + args.seconds:
                next_tickets += args.tickets_every
                r = c.cmd("tickets all 1")
                if r.get("ok"):
                    tickets_ok += 1
                    tickets_reached += r.get("queued", 0)
                else:
                    violations.append("tickets all failed: %s" % r)
            peak_rss = max(peak_rss, proc_rss_kib(tern_p.pid))
            peak_fds = max(peak_fds, proc_fds(tern_p.pid))
            peak_active = max(peak_active, c.cmd("stats").get("conns_active", 0))
            time.sleep(0.5)  # sampling pace
        while reload_at and tern_p.poll() is None:  # any left (a short run)
            reload_at.pop(0)
            r = c.cmd("reload")
            reloads_ok += bool(r.get("ok"))
        run_s = time.time() - t0
        tern_cpu = proc_cpu_s(tern_p.pid) if tern_p.poll() is None else 0
        backend_cpu = proc_cpu_s(backend.pid) if backend.poll() is None else 0

        results = []
        for p in cprocs:
            try:
                out, _ = p.communicate(timeout=60 * SCALE)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate(timeout=30)
            if p.returncode != 0 or not out.strip():
                violations.append("client process exited %s" % p.returncode)
                continue
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
        tot = {}
        for r in results:
            for k, v in r.items():
                if isinstance(v, dict):
                    d = tot.setdefault(k, {})
                    for kk, vv in v.items():
                        d[kk] = d.get(kk, 0) + vv
                elif isinstance(v, list):
                    tot.setdefault(k, []).extend(v)
                elif k.endswith("_max"):
                    tot[k] = max(tot.get(k, 0), v)
                elif k.endswith("_min"):
                    tot[k] = min(tot.get(k, 1e9), v)
                else:
                    tot[k] = tot.get(k, 0) + v

        # After the run.
        alive = tern_p.poll() is None
        if not alive:
            violations.append("tern is not running after the run (status %s)" % tern_p.returncode)
        fd1 = rss1 = None
        stats1, m = {}, {}
        settle_s = None
        if alive:
            ts = time.monotonic()
            try:
                wait_until(lambda: c.cmd("stats").get("conns_active") == 0, 60 * SCALE,
                           "conns_active == 0")
            except TimeoutError as e:
                violations.append("%s (conns_active=%s)" % (e, c.cmd("stats").get("conns_active")))
            try:
                wait_until(lambda: proc_fds(tern_p.pid) <= fd0, 30 * SCALE,
                           "tern's fd count back to %d" % fd0)
            except TimeoutError as e:
                violations.append("%s (now %d)" % (e, proc_fds(tern_p.pid)))
            bound_kib = rss0 + args.rss_bound_mib * 1024
            try:
                wait_until(lambda: proc_rss_kib(tern_p.pid) <= bound_kib, 30 * SCALE,
                           "RSS <= baseline + %d MiB" % args.rss_bound_mib)
            except TimeoutError as e:
                violations.append("%s (now %.1f MiB, baseline %.1f MiB)"
                                  % (e, proc_rss_kib(tern_p.pid) / 1024, rss0 / 1024))
            settle_s = time.monotonic() - ts
            # Then watch RSS for a while (jemalloc returns freed pages over
            # ~10 s): the summary reports the lowest value seen.
            rss1 = proc_rss_kib(tern_p.pid)
            watch_end = time.monotonic() + args.rss_watch
            while time.monotonic() < watch_end:
                time.sleep(0.5)  # sampling pace
                rss1 = min(rss1, proc_rss_kib(tern_p.pid))
            fd1 = proc_fds(tern_p.pid)
            stats1 = c.cmd("stats")
            if fd1 > fd0:
                violations.append("fd count %d above the baseline %d" % (fd1, fd0))
            m = metrics_scrape(mport)
            if m.get("tern_connections_active") != 0:
                violations.append("metrics: tern_connections_active=%s" %
                                  m.get("tern_connections_active"))
            if m.get("tern_connections_total") != stats1.get("conns_total"):
                violations.append("metrics conns_total %s != stats %s"
                                  % (m.get("tern_connections_total"), stats1.get("conns_total")))

        # Clients' own findings.
        if tot.get("corrupt", 0):
            violations.append("%d verified transfer(s) corrupted" % tot["corrupt"])
        if tot.get("errors", 0):
            violations.append("%d client error(s), e.g.: %s"
                              % (tot["errors"], "; ".join(tot.get("error_samples", [])[:8])))
        for kind in ("echo", "slowread", "halfclose"):
            if tot.get("slots", {}).get(kind) and not tot["sessions"].get(kind):
                violations.append("no %s session completed" % kind)
        if reloads_ok != args.reloads:
            violations.append("%d of %d reloads ok" % (reloads_ok, args.reloads))
        # Counters against what the clients saw.
        d = lambda k: stats1.get(k, 0) - stats0.get(k, 0)  # noqa: E731
        if stats1:
            if d("conns_total") < tot.get("connects", 0):
                violations.append("conns_total grew %d < %d connections made"
                                  % (d("conns_total"), tot.get("connects", 0)))
            failed_hs = tot.get("garbage_closed", 0) + tot.get("slowloris_closed", 0)
            if d("handshake_failures") < failed_hs:
                violations.append("handshake_failures grew %d < %d garbage+slowloris closed"
                                  % (d("handshake_failures"), failed_hs))
            hs = d("handshakes_full") + d("handshakes_resumed")
            if hs < tot.get("handshakes", 0):
                violations.append("handshakes grew %d < %d client handshakes"
                                  % (hs, tot.get("handshakes", 0)))
            if d("bytes_client_in") < tot.get("verified_bytes_sent", 0):
                violations.append("bytes_client_in grew %d < %d verified bytes sent"
                                  % (d("bytes_client_in"), tot.get("verified_bytes_sent", 0)))
            if d("bytes_client_out") < tot.get("verified_bytes_recv", 0):
                violations.append("bytes_client_out grew %d < %d verified bytes received"
                                  % (d("bytes_client_out"), tot.get("verified_bytes_recv", 0)))
            if d("conns_total") > tot.get("connects", 0) + tot.get("connect_errors", 0):
                violations.append("conns_total grew %d > %d connection attempts"
                                  % (d("conns_total"),
                                     tot.get("connects", 0) + tot.get("connect_errors", 0)))
            if stats1.get("reload_failures", 0) != stats0.get("reload_failures", 0):
                violations.append("reload_failures grew")
        if tern_p.poll() is None:
            c.s.close()
            # A clean exit: SIGTERM drains (nothing is left to drain), exit 0,
            # and no sanitizer report (ASan's leak check runs at exit).
            tern_p.send_signal(signal.SIGTERM)
            try:
                rc = tern_p.wait(timeout=30 * SCALE)
                if rc != 0:
                    violations.append("tern exited %d after SIGTERM" % rc)
            except subprocess.TimeoutExpired:
                violations.append("tern did not exit within %.0fs of SIGTERM" % (30 * SCALE))
            bad = [l for l in tern_log().splitlines()
                   if any(mk in l for mk in SANITIZER_MARKERS)]
            if bad:
                violations.append("sanitizer report in tern's stderr: " + bad[0])

        mib = lambda k: "-" if k is None else "%.1f MiB" % (k / 1024)  # noqa: E731
        rows = [
            ("tern", "%s (--workers 2, RLIMIT_NOFILE %s; this process %d/%d; MALLOC_CONF=%s)"
             % (tern, tern_nofile, soft, hard, args.malloc_conf or "-")),
            ("connections (slots)", "%d over %d client processes; peak conns_active %d "
             "(sampled), peak open at the clients %d (sum of per-process peaks)"
             % (args.conns, args.client_procs, peak_active, tot.get("max_open", 0))),
            ("slots by kind", " ".join("%s=%d" % (k, tot.get("slots", {}).get(k, 0))
                                       for k in KINDS)),
            ("sessions by kind", " ".join("%s=%d" % (k, tot.get("sessions", {}).get(k, 0))
                                          for k in KINDS)),
            ("duration", "%.1f s (traffic %d s, ramp %d s)" % (run_s, args.seconds, args.ramp)),
            ("connections made", "%d (TLS handshakes %d, connect errors %d)"
             % (tot.get("connects", 0), tot.get("handshakes", 0), tot.get("connect_errors", 0))),
            ("verified transfers", "%d intact, %d corrupt; %.1f MiB sent, %.1f MiB received"
             % (tot.get("verified", 0), tot.get("corrupt", 0),
                tot.get("verified_bytes_sent", 0) / 2**20,
                tot.get("verified_bytes_recv", 0) / 2**20)),
            ("RST aborts", str(tot.get("rst", 0))),
            ("garbage / slowloris closed", "%d / %d (slowloris cut after %.1f..%.1f s)"
             % (tot.get("garbage_closed", 0), tot.get("slowloris_closed", 0),
                min(tot.get("slowloris_close_s_min", 0), 999),
                tot.get("slowloris_close_s_max", 0))),
            ("reloads / tickets all", "%d ok / %d ok (%d connections reached)"
             % (reloads_ok, tickets_ok, tickets_reached)),
            ("client errors", "%d %s" % (tot.get("errors", 0), json.dumps(tot.get("error_kinds", {})))),
            ("CPU seconds", "tern %.1f, clients %.1f, echo backend %.1f"
             % (tern_cpu, tot.get("cpu_s", 0), backend_cpu)),
            ("client handshake max", "%.2f s (ServerHello after up to %.2f s, %d over 1 s; "
             "client loop lag up to %.2f s)"
             % (tot.get("handshake_s_max", 0), tot.get("server_hello_s_max", 0),
                tot.get("server_hello_over_1s", 0), tot.get("loop_lag_s_max", 0))),
            ("tern fds", "baseline %d, peak %d, after %s" % (fd0, peak_fds, fd1)),
            ("tern RSS", "baseline %s, peak %s, after %s (lowest in the %.0f s after; "
             "bound baseline + %d MiB)" % (mib(rss0), mib(peak_rss), mib(rss1),
                                          args.rss_watch, args.rss_bound_mib)),
            ("tern handshake durations", " ".join(
                "<=%ss:%d" % (le, m.get('tern_handshake_duration_seconds_bucket{le="%s"}' % le, -1))
                for le in ("0.01", "0.1", "1", "5", "+Inf"))),
            ("settled in", "-" if settle_s is None else "%.1f s" % settle_s),
            ("counters (delta)", " ".join("%s=%d" % (k, d(k)) for k in (
                "conns_total", "handshakes_full", "handshakes_resumed", "handshake_failures",
                "bytes_client_in", "bytes_client_out", "tickets_requested", "tickets_sent",
                "backend_connect_failures")) if stats1 else "-"),
        ]
        w = max(len(r[0]) for r in rows)
        print("soak summary")
        for k, v in rows:
            print("  %-*s  %s" % (w, k, v))
        if violations:
            print("VIOLATIONS:")
            for v in violations:
                print("  - " + v)
            print("--- tern stderr (last 40 lines but reloads) ---")
            print("\n".join([l for l in tern_log().splitlines() if "reloaded:" not in l][-40:]))
            return 1
        print("soak: ok")
        return 0
    finally:
        if tern_p is not None and tern_p.poll() is None:
            tern_p.send_signal(signal.SIGINT)
            try:
                tern_p.wait(timeout=30 * SCALE)
            except subprocess.TimeoutExpired:
                tern_p.kill()
                tern_p.wait(timeout=30)
        for p in procs:
            if p.poll() is None:
                try:
                    if p.stdin:
                        p.stdin.close()
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
        if os.environ.get("TERN_KEEP_TMP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=9000)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--reloads", type=int, default=20)
    ap.add_argument("--tern", default=os.environ.get("TERN_BIN") or os.path.join(
        HERE, "..", "..", "build", "tern"))
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--ramp", type=int, default=None,
                    help="seconds over which the slots start (default: half of --seconds, "
                         "at most 30)")
    ap.add_argument("--tickets-every", type=float, default=5.0,
                    help="seconds between `tickets all 1` requests")
    ap.add_argument("--rss-watch", type=float, default=15.0,
                    help="seconds to watch RSS fall once the connections are gone")
    ap.add_argument("--malloc-conf", default="background_thread:true,dirty_decay_ms:1000,"
                    "muzzy_decay_ms:0",
                    help="MALLOC_CONF for tern's jemalloc: by default freed pages go back to "
                         "the kernel within ~1 s even while tern is idle, so RSS after the run "
                         "shows what tern still holds rather than what jemalloc caches (with "
                         "jemalloc's defaults, '' here, 60..115 MiB stayed cached after runs "
                         "of 1,500 and 9,000 connections); sanitizer builds ignore it")
    ap.add_argument("--rss-bound-mib", type=int, default=64,
                    help="RSS after the run may exceed the baseline by this much")
    ap.add_argument("--role", choices=("driver", "backend", "client"), default="driver")
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--port", type=int)
    ap.add_argument("--ca")
    ap.add_argument("--t0", type=float)
    args = ap.parse_args()
    if args.ramp is None:
        args.ramp = min(30, max(1, args.seconds // 2))
    if args.role == "backend":
        role_backend()
        return 0
    if args.role == "client":
        role_client(args)
        return 0
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
