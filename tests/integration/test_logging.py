#!/usr/bin/env python3
"""Security and logging (issue 15), through real clients:

- log injection: a client's SNI, ALPN and certificate subject reach the
  access log, the log and `conns` escaped and bounded (escape.h): every
  line stays one line, no forged `error` line, no forged key;
- a stderr nobody reads (a pipe, full) never stalls a worker: traffic
  keeps flowing, lines are dropped and counted (tern_log_dropped_total,
  `stats` log_dropped), and what arrives once someone reads is whole lines;
- health probes: a TCP connect that closes before sending a byte is
  counted in tern_probe_connections_total with reason=probe, never in
  handshake_failures; one byte makes it a handshake failure again.
"""

import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

from harness import (EchoBackend, TernTestCase, TLSClient, _openssl, client_context, ctl,
                     free_port, main, metrics_text, read_until_closed, reset_socket,
                     run_threads, sandbox_launcher, scaled, tern_command, wait_for)

# A line as tern writes it: UTC time, a level or "access", a message.
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug|access) \S")

FORGED = "a reason=done\n2026-12-06T00:00:00.000Z error forged"
FORGED_LOG = "a\\x20reason=done\\x0A2026-12-06T00:00:00.000Z\\x20error\\x20forged"
FORGED_JSON = "a reason=done\\x0A2026-12-06T00:00:00.000Z error forged"


def scrape(port):
    """GET /metrics: {'name{labels}': value} of the tern_ and process_ samples."""
    out = {}
    for line in metrics_text(port, timeout=10).splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def probe(port, how="fin"):
    """A health probe: connect, then close (FIN) or reset, sending nothing."""
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    if how == "reset":
        reset_socket(s)
    else:
        s.close()


def check_lines(tc, text):
    """Every line of tern's stderr is one whole line of its own format."""
    tc.assertTrue(text.endswith("\n"), "stderr ends mid-line: %r" % text[-200:])
    lines = text.split("\n")[:-1]
    for line in lines:
        tc.assertRegex(line, LINE)
    return lines


class LogInjection(TernTestCase):
    def test_sni_and_alpn(self):
        be = self.backend(EchoBackend)
        self.ctl_path = os.path.join(self.tmp, "control.sock")
        tern = self.start_tern([be], workers=1,
                               extra=["--alpn", "h2,http/1.1", "--control", self.ctl_path,
                                      "--log-level", "debug"])
        # Python's IDNA codec lets ASCII control bytes and spaces through
        # (labels up to 63 bytes); the ALPN list is the client's bytes.
        ctx = client_context()
        ctx.set_alpn_protocols(["\x01\n2026-12-06T00:00:00.000Z error alpn", "h2"])
        c = self.client(ctx=ctx, server_hostname=FORGED).handshake()
        self.assertEqual(c.exchange(b"ping", expect=4), b"ping")
        entry = tern.conn_of(c)
        self.assertEqual(entry["sni"], FORGED_JSON)
        self.assertEqual(entry["alpn"], "h2")

        # Bytes Python will not send (high bytes, quotes, backslash) and an
        # SNI at the protocol's 255-byte bound, through openssl s_client.
        odd = b'"q"\\\xff\xc3\xa9 x=1'
        long_sni = b"\x7f" * 63 + b"." + b"b" * 63 + b"." + b"c" * 63 + b"." + b"d" * 63
        self.assertEqual(len(long_sni), 255)
        for sni in (odd, long_sni):
            # stdin at EOF: it handshakes, prints, shuts down and exits
            r = subprocess.run([b"openssl", b"s_client", b"-connect",
                                b"127.0.0.1:%d" % self.port, b"-servername", sni,
                                b"-alpn", b"x\x02y,http/1.1"],
                               stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=scaled(20))
            self.assertIn(b"ALPN protocol: http/1.1", r.stdout, r.stdout + r.stderr)
        c.shut_write("close_notify")
        c.recv_until_close()
        counters = self.finish(tern)
        self.assertEqual(counters["conns_total"], 3)

        text = tern.log()
        lines = check_lines(self, text)
        self.assertFalse([l for l in lines if " error " in l[:40]], "a forged error line")
        access = [l for l in lines if " access " in l]
        self.assertEqual(len(access), 3, access)
        a = tern.access_for(c)
        self.assertEqual(a["sni"], FORGED_LOG)
        self.assertEqual(a["alpn"], "h2")
        self.assertEqual(a["reason"], "done")
        snis = [tern_kv["sni"] for tern_kv in tern.access_lines()]
        self.assertIn("\\x22q\\x22\\x5C\\xFF\\xC3\\xA9\\x20x=1", snis)
        self.assertIn("\\x7F" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 63, snis)
        # key=value holds: each access line has exactly its keys, once
        keys = ["id", "peer", "sni", "alpn", "version", "cipher", "resumed", "bytes_in",
                "bytes_out", "duration_ms", "reason"]
        for line in access:
            self.assertEqual([t.split("=", 1)[0] for t in line.split(" access ", 1)[1].split(" ")],
                             keys, line)
        self.assertEqual(sorted(kv["alpn"] for kv in tern.access_lines()),
                         ["h2", "http/1.1", "http/1.1"])

    def test_client_certificate_subject(self):
        """--verify-client require: the subject (quotes, a backslash, UTF-8,
        a newline) is escaped in `conns`, and in the log where a
        post-handshake authentication tells it."""
        crt = os.path.join(self.tmp, "client.crt")
        key = os.path.join(self.tmp, "client.key")
        _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", key], self.tmp)
        _openssl(["req", "-new", "-x509", "-key", key, "-out", crt, "-days", "3", "-utf8",
                  "-subj", '/O=a b/CN=evil "q" \\\\ Zo\u00eb\nerror forged'], self.tmp)
        be = self.backend(EchoBackend)
        self.ctl_path = os.path.join(self.tmp, "control.sock")
        tern = self.start_tern([be], workers=1,
                               extra=["--client-ca", crt, "--verify-client", "require",
                                      "--control", self.ctl_path])
        ctx = client_context()
        ctx.load_cert_chain(crt, key)
        c = self.client(ctx=ctx).handshake()
        self.assertEqual(c.exchange(b"ping", expect=4), b"ping")
        self.assertEqual(tern.conn_of(c)["client_cert"],
                         "/O=a b/CN=evil \\x22q\\x22 \\x5C Zo\\xC3\\xAB\\x0Aerror forged")
        c.shut_write("close_notify")
        c.recv_until_close()
        self.finish(tern)
        check_lines(self, tern.log())


class StalledStderr(TernTestCase):
    """tern's stderr is a pipe the test stops reading once tern is ready."""

    def start_piped(self, backends, extra=()):
        self.mport = free_port()
        self.port = free_port()
        self.ctl_path = os.path.join(self.tmp, "control.sock")
        args = ["--listen", "127.0.0.1:%d" % self.port, "--cert", self.default_cert()["cert"],
                "--workers", "2", "--access-log", "--metrics", "127.0.0.1:%d" % self.mport,
                "--control", self.ctl_path]
        for b in backends:
            args += ["--backend", b.addr]
        p = self.popen(sandbox_launcher() + tern_command(args + list(extra)),
                       stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        head = b""
        deadline = time.monotonic() + scaled(10)
        while b" ready: " not in head:
            self.assertIsNone(p.poll(), "tern exited: %r" % head)
            self.assertLess(time.monotonic(), deadline, "no ready line: %r" % head)
            if select.select([p.stderr], [], [], 0.2)[0]:
                head += os.read(p.stderr.fileno(), 65536)
        return p, head

    def test_traffic_flows_while_stderr_is_full(self):
        be = self.backend(EchoBackend)
        p, head = self.start_piped([be])
        # From here on nobody reads tern's stderr. Probes (one access line
        # each, cheaply) and round trips with a long escaped SNI (about
        # 1 KiB of access line each) fill the pipe's 64 KiB, then the log
        # buffer's 256 KiB.
        sni = ".".join(["\x01" * 60] * 4)
        ctx = client_context()
        round_trips = []

        def traffic(k):
            for i in range(40):
                t0 = time.monotonic()
                c = TLSClient(self.port, ctx=ctx, server_hostname=sni)
                try:
                    c.handshake(timeout=10)
                    payload = b"%d-%d" % (k, i)
                    self.assertEqual(c.exchange(payload, expect=len(payload), timeout=10),
                                     payload)
                finally:
                    c.close()
                round_trips.append(time.monotonic() - t0)
                for _ in range(20):
                    probe(self.port)
        deadline = time.monotonic() + scaled(120)
        dropped = 0
        rounds = 0
        while dropped == 0:
            self.assertLess(time.monotonic(), deadline, "no line dropped")
            run_threads(traffic, [(k,) for k in range(4)], 120, "traffic while stderr is full")
            rounds += 1
            dropped = scrape(self.mport)["tern_log_dropped_total"]
        # Full now: one more round, all of it while stderr takes nothing
        # (its lines are dropped too).
        run_threads(traffic, [(k,) for k in range(4)], 120, "traffic while stderr is full")
        rounds += 1
        self.assertGreater(scrape(self.mport)["tern_log_dropped_total"], dropped)
        # Bytes kept flowing both ways, each connection in bounded time,
        # while tern's stderr took nothing: no worker waited for it.
        self.assertEqual(len(round_trips), rounds * 40 * 4)
        self.assertLess(max(round_trips), scaled(10))
        self.assertIsNone(p.poll())
        # Every connection has been accepted and has ended (a probe may
        # still wait in the backlog when its client is done), so its line
        # is in the buffer or dropped. The control thread answers too, and
        # agrees.
        made = len(round_trips) * 21
        wait_for(lambda: (lambda st: st["conns_total"] == made and st["conns_active"] == 0)(
            self.ctl_stats()), 10, "%d connections to end" % made)
        stats = self.ctl_stats()
        self.assertEqual(stats["log_dropped"], scrape(self.mport)["tern_log_dropped_total"])
        conns_total, dropped = stats["conns_total"], stats["log_dropped"]

        # Someone reads now: the lines buffered arrive, whole: with those
        # dropped, one for every connection.
        got = bytearray()

        def read_all():
            while True:
                data = os.read(p.stderr.fileno(), 65536)
                if not data:
                    return
                got.extend(data)
        reader = threading.Thread(target=read_all, daemon=True)
        reader.start()
        wait_for(lambda: got.count(b" access ") + dropped >= conns_total, 30,
                 "the buffered lines")
        self.assertEqual(self.ctl_stats()["log_dropped"], dropped)
        # ... and new lines too.
        c = TLSClient(self.port, ctx=client_context(), server_hostname="after.example")
        c.handshake()
        self.assertEqual(c.exchange(b"after", expect=5), b"after")
        c.shut_write("close_notify")
        c.recv_until_close()
        c.close()
        wait_for(lambda: b"sni=after.example" in got, 10, "the access line after reading")
        conns_total += 1
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=scaled(15)), 0)
        reader.join(timeout=scaled(10))
        text = (head + bytes(got)).decode("ascii")
        lines = check_lines(self, text)
        access = [l for l in lines if " access " in l]
        self.assertIn("stopped: ", lines[-1])
        # Every connection's line either arrived or was counted as dropped
        # (at info level, every line dropped was an access line).
        self.assertEqual(len(access) + dropped, conns_total)
        self.assertLess(len(access), conns_total, "nothing was dropped")

    def ctl_stats(self):
        reply = ctl(self.ctl_path, "stats")
        self.assertIs(reply["ok"], True)
        return reply


class Probes(TernTestCase):
    def test_probe_is_not_a_handshake_failure(self):
        be = self.backend(EchoBackend)
        tern = self.start_tern_with_metrics([be])

        def counts():
            m = scrape(self.mport)
            s = tern.stats()
            self.assertEqual(m["tern_probe_connections_total"], s["probe_connections"])
            self.assertEqual(m["tern_handshake_failures_total"], s["handshake_failures"])
            return s["probe_connections"], s["handshake_failures"]

        def settled(n):
            wait_for(lambda: tern.stats()["conns_total"] == n
                     and tern.stats()["conns_active"] == 0, 5, "%d connections closed" % n)

        self.assertEqual(counts(), (0, 0))
        # A bare TCP connect and close (Kubernetes' tcpSocket probe), and
        # one that resets instead (HAProxy's check closes so).
        probe(self.port)
        settled(1)
        self.assertEqual(counts(), (1, 0))
        probe(self.port, "reset")
        settled(2)
        self.assertEqual(counts(), (2, 0))
        # One garbage byte, then close: a failed handshake, not a probe.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=scaled(5))
        s.sendall(b"\x00")
        s.shutdown(socket.SHUT_WR)
        read_until_closed(s, 5)
        s.close()
        settled(3)
        self.assertEqual(counts(), (2, 1))
        # A real client is neither.
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"ok", expect=2), b"ok")
        c.shut_write("close_notify")
        c.recv_until_close()
        settled(4)
        self.assertEqual(counts(), (2, 1))
        reasons = [a["reason"] for a in tern.wait_access(4)]
        self.assertEqual(reasons.count("probe"), 2, reasons)
        self.assertEqual(reasons.count("done"), 1, reasons)
        probes = [a for a in tern.access_lines() if a["reason"] == "probe"]
        for a in probes:
            self.assertEqual((a["sni"], a["version"], a["bytes_in"]), ("-", "-", 0))
        counters = tern.stop_ok()
        self.assertEqual(counters["handshake_failures"], 1)


if __name__ == "__main__":
    main()
