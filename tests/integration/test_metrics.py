"""The --metrics endpoint (SPEC section 5): exact values after known
traffic (full, resumed and failed handshakes, bytes each way) that match
the control socket's stats, a well-formed Prometheus text format, the HTTP
answers (200, HEAD, 404, 405, 400, 431, 503), slow and silent clients that
never hold up a scrape, and the start-up errors (exit 2 for a bad
address, exit 1 for one in use)."""

import http.client
import os
import re
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TernTestCase, check_sanitizers_at_cleanup, client_context,  # noqa: E402
                     closed_port, free_port, main, read_until_closed, scaled, tern_bin,
                     wait_for)

GARBAGE = b"\x16\x03\x01\x00\x05garbage that is no ClientHello at all" * 4
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = ("0.0005", "0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
           "1", "2.5", "5", "10", "+Inf")
# stats field -> metric sample
STATS_TO_METRIC = {
    "conns_active": "tern_connections_active",
    "conns_total": "tern_connections_total",
    "handshakes_full": 'tern_handshakes_total{kind="full"}',
    "handshakes_resumed": 'tern_handshakes_total{kind="resumed"}',
    "handshake_failures": "tern_handshake_failures_total",
    "bytes_client_in": 'tern_bytes_total{direction="client_in"}',
    "bytes_client_out": 'tern_bytes_total{direction="client_out"}',
    "tickets_requested": "tern_tickets_requested_total",
    "tickets_sent": "tern_tickets_sent_total",
    "backend_connect_failures": "tern_backend_connect_failures_total",
    "read_buffer_misses": "tern_read_buffer_misses_total",
    "conns_refused_drain": 'tern_connections_refused_total{reason="drain"}',
    "conns_refused_no_memory": 'tern_connections_refused_total{reason="no_memory"}',
    "conns_refused_overflow": 'tern_connections_refused_total{reason="overflow"}',
    "reload_failures": "tern_reload_failures_total",
    "workers": "tern_workers",
    "num_tickets": "tern_config_num_tickets",
}
# Settings, not counters: their value at start (--workers 2, --num-tickets
# default 2).
SETTINGS_AT_START = {"workers": 2, "num_tickets": 2}
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? (\S+)$')


def parse_metrics(tc, text):
    """Checks the text format and returns {'name{labels}': number}: every
    line is HELP, TYPE or a sample `name{labels} value`; each family's HELP
    and TYPE come before its samples; counters end in _total."""
    samples, types, helped = {}, {}, set()
    tc.assertTrue(text.endswith("\n"), "metrics text ends with a newline")
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            tc.assertNotIn(name, helped, "second HELP for " + name)
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            tc.assertIn(name, helped, "TYPE before HELP for " + name)
            tc.assertIn(kind, ("counter", "gauge", "histogram"), line)
            if kind == "counter":
                tc.assertTrue(name.endswith("_total"), "counter %s lacks _total" % name)
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        tc.assertIsNotNone(m, "not a sample line: %r" % line)
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = name
        if name not in types:
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            tc.assertEqual(types.get(family), "histogram", "sample before its TYPE: " + line)
        key = name + labels
        tc.assertNotIn(key, samples, "duplicate sample " + key)
        samples[key] = float(value) if ("." in value or "Inf" in value) else int(value)
    return samples


class MetricsTestCase(TernTestCase):

    def setUp(self):
        super().setUp()
        check_sanitizers_at_cleanup(self)
        self.ctl_path = os.path.join(self.tmp, "control.sock")

    def start(self, backends, workers=2, extra=()):
        return self.start_tern_with_metrics(backends, workers, extra)

    def request(self, method="GET", path="/metrics", body=None, timeout=5):
        """One request with http.client: (status, headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.mport, timeout=scaled(timeout))
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def scrape(self):
        status, headers, body = self.request()
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], CONTENT_TYPE)
        self.assertEqual(int(headers["content-length"]), len(body))
        return parse_metrics(self, body.decode("ascii"))

    def raw(self, data, timeout=5):
        """Sends raw bytes (keeping the write side open), returns what came
        back until tern closed, and how it closed."""
        s = socket.create_connection(("127.0.0.1", self.mport), timeout=scaled(timeout))
        try:
            if data:
                s.sendall(data)
            return read_until_closed(s, timeout)
        finally:
            s.close()

    def assert_histogram(self, m, count):
        prev = 0
        for le in BUCKETS:
            key = 'tern_handshake_duration_seconds_bucket{le="%s"}' % le
            self.assertIn(key, m)
            self.assertGreaterEqual(m[key], prev, "buckets are cumulative")
            prev = m[key]
        self.assertEqual(m['tern_handshake_duration_seconds_bucket{le="+Inf"}'], count)
        self.assertEqual(m["tern_handshake_duration_seconds_count"], count)
        total = m["tern_handshake_duration_seconds_sum"]
        self.assertGreaterEqual(total, 0)
        # Each handshake finished within the handshake timeout (10s).
        self.assertLess(total, count * 10 + 1e-9)
        if count:
            self.assertGreater(total, 0)


class TestMetricsValues(MetricsTestCase):

    def test_values_after_known_traffic(self):
        be = self.echo_backend()
        tern = self.start([be], workers=2)

        # Before any traffic: every metric present, all zero but settings.
        m = self.scrape()
        for field, key in STATS_TO_METRIC.items():
            self.assertEqual(m.get(key), SETTINGS_AT_START.get(field, 0), key)
        self.assert_histogram(m, 0)

        # 3 full handshakes, 1 resumed one (TLS 1.3 ticket of the third),
        # 1 garbage connection: known plaintext each way.
        ctx = client_context(min_version=ssl.TLSVersion.TLSv1_3)
        payloads = [b"a" * 100, b"b" * 2000, b"c" * 30000, b"d" * 7]
        session = None
        for i, payload in enumerate(payloads):
            c = self.client(ctx=ctx, session=session if i == 3 else None).handshake()
            self.assertEqual(c.exchange(payload, expect=len(payload)), payload)
            self.assertEqual(c.obj.session_reused, i == 3, "connection %d resumed" % i)
            session = c.obj.session
            c.shut_write("close_notify")
            c.recv_until_close()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=scaled(5))
        s.sendall(GARBAGE)
        _, how = read_until_closed(s, 5)
        s.close()
        self.assertIn(how, ("eof", "reset"))

        total = sum(len(p) for p in payloads)
        wait_for(lambda: tern.stats()["conns_active"] == 0
                 and tern.stats()["conns_total"] == 5, 5, "all 5 connections closed")
        m = self.scrape()
        stats = tern.stats()
        expect = {
            "tern_connections_active": 0,
            "tern_connections_total": 5,
            'tern_handshakes_total{kind="full"}': 3,
            'tern_handshakes_total{kind="resumed"}': 1,
            "tern_handshake_failures_total": 1,
            'tern_bytes_total{direction="client_in"}': total,
            'tern_bytes_total{direction="client_out"}': total,
            "tern_tickets_requested_total": 0,
            "tern_backend_connect_failures_total": 0,
            "tern_reload_failures_total": 0,
            "tern_workers": 2,
            "tern_config_num_tickets": 2,
        }
        for key, value in expect.items():
            self.assertEqual(m.get(key), value, key)
        self.assertGreater(m["tern_tickets_sent_total"], 0)
        self.assert_histogram(m, 4)
        # The same numbers as the control socket's stats.
        for field, key in STATS_TO_METRIC.items():
            self.assertEqual(m[key], stats[field], "%s versus stats %s" % (key, field))

        counters = tern.stop_ok()
        self.assertEqual(counters["conns_total"], 5)
        self.assertEqual(counters["handshake_failures"], 1)

    def test_scrape_while_connections_are_open(self):
        be = self.echo_backend()
        tern = self.start([be], workers=1, extra=["--num-tickets", "4"])
        clients = [self.client().handshake() for _ in range(3)]
        for c in clients:
            self.assertEqual(c.exchange(b"ping", expect=4), b"ping")
        m = self.scrape()
        self.assertEqual(m["tern_connections_active"], 3)
        self.assertEqual(m['tern_handshakes_total{kind="full"}'], 3)
        self.assertEqual(m['tern_bytes_total{direction="client_in"}'], 12)
        self.assert_histogram(m, 3)
        self.assertEqual(m["tern_workers"], 1)
        # The configured --num-tickets, as in stats.
        self.assertEqual(m["tern_config_num_tickets"], 4)
        self.assertEqual(tern.stats()["num_tickets"], 4)
        for c in clients:
            c.close()
        wait_for(lambda: self.scrape()["tern_connections_active"] == 0, 5,
                 "tern_connections_active back to 0")
        tern.stop_ok()


class TestMetricsHTTP(MetricsTestCase):

    def test_answers(self):
        be = self.echo_backend()
        tern = self.start([be])

        status, headers, body = self.request()
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], CONTENT_TYPE)
        self.assertEqual(headers["connection"], "close")
        self.assertEqual(int(headers["content-length"]), len(body))
        self.assertIn(b"\ntern_workers 2\n", body)

        # HEAD: the same headers, no body (checked on the raw bytes).
        got, how = self.raw(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(how, "eof")
        head, _, rest = got.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), got)
        self.assertIn(b"\r\nContent-Length: %d" % len(body), head)
        self.assertEqual(rest, b"")

        # A query string is ignored; HTTP/1.0 is served; absolute-form too.
        self.assertEqual(self.request(path="/metrics?name[]=tern_workers")[0], 200)
        got, _ = self.raw(b"GET /metrics HTTP/1.0\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 200 OK\r\n"), got[:100])
        self.assertIn(b"\r\n\r\n# HELP tern_connections_active ", got)
        got, _ = self.raw(b"GET http://127.0.0.1/metrics HTTP/1.1\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 200 OK\r\n"), got[:100])

        for path in ("/other", "/", "/metrics/", "/METRICS"):
            status, headers, body = self.request(path=path)
            self.assertEqual(status, 404, path)
            self.assertEqual(headers["connection"], "close")
        for method in ("POST", "PUT", "DELETE"):
            status, headers, _ = self.request(method=method, body=b"x=1" * 100)
            self.assertEqual(status, 405, method)
            self.assertEqual(headers["allow"], "GET, HEAD")
        # A big body that tern never reads: the 405 still arrives whole.
        status, _, _ = self.request(method="POST", body=b"x" * 200000)
        self.assertEqual(status, 405)

        # Garbage gets 400 at once, long before the client timeout.
        for junk in (GARBAGE, b"hello\r\n", b"GET /metrics\r\n\r\n", b"GET /metrics HTTP/2.0\r\n\r\n",
                     b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", b"\x00\x01\x02"):
            t0 = time.monotonic()
            got, how = self.raw(junk)
            self.assertTrue(got.startswith(b"HTTP/1.1 400 Bad Request\r\n"), (junk, got))
            self.assertEqual(how, "eof")
            self.assertLess(time.monotonic() - t0, scaled(2), junk)
        # A request cut short by the client's FIN: 400.
        s = socket.create_connection(("127.0.0.1", self.mport), timeout=scaled(5))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        s.shutdown(socket.SHUT_WR)
        got, _ = read_until_closed(s, 5)
        s.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 400 "), got)
        # A header that never ends within 8 KiB: 431.
        got, _ = self.raw(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 9000)
        self.assertTrue(got.startswith(b"HTTP/1.1 431 "), got[:100])

        # None of it touched the proxy.
        m = self.scrape()
        self.assertEqual(m["tern_connections_total"], 0)
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"still here", expect=10), b"still here")
        c.close()
        tern.stop_ok()

    def test_slow_clients_do_not_block_a_scrape(self):
        be = self.echo_backend()
        tern = self.start([be])
        silent = socket.create_connection(("127.0.0.1", self.mport), timeout=scaled(10))
        self.addCleanup(silent.close)
        partial = socket.create_connection(("127.0.0.1", self.mport), timeout=scaled(10))
        self.addCleanup(partial.close)
        partial.sendall(b"GET /metr")
        # A client that sends its request and never reads the answer.
        deaf = socket.create_connection(("127.0.0.1", self.mport), timeout=scaled(10))
        self.addCleanup(deaf.close)
        deaf.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        t_open = time.monotonic()

        for _ in range(3):
            t0 = time.monotonic()
            m = self.scrape()
            self.assertLess(time.monotonic() - t0, scaled(1), "a scrape waited for a slow client")
            self.assertEqual(m["tern_workers"], 2)

        # The silent and the partial client are closed at the 5 s bound,
        # not before (lower bounds are not scaled).
        for s in (silent, partial):
            _, how = read_until_closed(s, 10)
            self.assertIn(how, ("eof", "reset"))
        self.assertGreaterEqual(time.monotonic() - t_open, 4.5)
        self.assertEqual(self.scrape()["tern_workers"], 2)
        tern.stop_ok()

    def test_too_many_clients_get_503_then_recover(self):
        """Idle clients give their slots to a new one (test_overload_servers);
        a 503 is for a table full of clients being answered: here 64 that
        sent a request and hold the connection while it drains (each for at
        most the 1 s drain bound, so the 65th comes at once after them). A
        round is tried again, bounded, when one of the 64 was still idle as
        the 65th came (its request still in flight in the kernel: its slot
        was taken for the 65th) or had drained already."""
        be = self.echo_backend()
        tern = self.start([be])
        for attempt in range(3):
            held = []
            for _ in range(64):
                s = socket.create_connection(("127.0.0.1", self.mport), timeout=scaled(10))
                self.addCleanup(s.close)
                held.append(s)
            for s in held:
                s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
            # The 65th is answered at once, not queued behind the others.
            t0 = time.monotonic()
            got, how = self.raw(b"GET /metrics HTTP/1.1\r\n\r\n")
            took = time.monotonic() - t0
            for s in held:
                s.close()
            if got.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") or attempt == 2:
                break
        self.assertTrue(got.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), got[:100])
        self.assertLess(took, scaled(2))

        def ok():
            try:
                return self.request()[0] == 200
            except OSError:
                return False
        wait_for(ok, 5, "a scrape once the held clients left")
        tern.stop_ok()


def proc_limits_nofile(pid):
    """The soft "Max open files" of /proc/PID/limits."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no Max open files in /proc/%d/limits" % pid)


class TestProcessMetrics(MetricsTestCase):
    """The standard process_* series (SPEC section 5), as Prometheus'
    client libraries write them, checked against what /proc and
    prlimit(2) say of the running tern."""

    def test_process_series(self):
        be = self.echo_backend()
        t0 = time.time()
        tern = self.start([be], workers=2)
        clients = [self.client().handshake() for _ in range(3)]
        for c in clients:
            self.assertEqual(c.exchange(b"ping", expect=4), b"ping")
        _, _, body = self.request()
        text = body.decode("utf-8")
        for name, kind in (("process_cpu_seconds_total", "counter"),
                           ("process_open_fds", "gauge"), ("process_max_fds", "gauge"),
                           ("process_virtual_memory_bytes", "gauge"),
                           ("process_resident_memory_bytes", "gauge"),
                           ("process_start_time_seconds", "gauge")):
            self.assertIn("\n# TYPE %s %s\n" % (name, kind), text)
        self.assertIn("\n# HELP process_start_time_seconds Start time of the process since unix "
                      "epoch in seconds.\n", text)
        m = parse_metrics(self, text)
        pid = tern.proc.pid

        start = m["process_start_time_seconds"]
        self.assertGreaterEqual(start, t0 - 1)
        self.assertLessEqual(start, time.time())
        # 2 workers x 1 listener, the metrics and control listeners, 3
        # clients and their 3 backend sockets, at the least.
        fds = len(os.listdir("/proc/%d/fd" % pid))
        self.assertGreaterEqual(m["process_open_fds"], 2 + 2 + 3 + 3)
        # This scrape's own socket comes and goes: a few either way.
        self.assertLessEqual(abs(m["process_open_fds"] - fds), 3, (m["process_open_fds"], fds))
        soft = resource.prlimit(pid, resource.RLIMIT_NOFILE)[0]
        self.assertEqual(soft, proc_limits_nofile(pid))
        self.assertEqual(m["process_max_fds"], soft)
        self.assertGreater(m["process_resident_memory_bytes"], 1 << 20)
        self.assertGreaterEqual(m["process_virtual_memory_bytes"],
                                m["process_resident_memory_bytes"])
        with open("/proc/%d/status" % pid) as f:
            rss_kb = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))
        self.assertLess(abs(m["process_resident_memory_bytes"] - rss_kb * 1024),
                        max(rss_kb * 1024 // 2, 8 << 20))
        cpu = m["process_cpu_seconds_total"]
        self.assertGreaterEqual(cpu, 0)
        self.assertLessEqual(cpu, (time.time() - t0) * os.cpu_count() + 0.1)
        # Open fds follow the connections.
        for c in clients:
            c.close()
        # Their 6 sockets (client and backend each) close once the engine
        # has run the closes, a moment after conns_active drops.
        wait_for(lambda: self.scrape()["process_open_fds"] <= m["process_open_fds"] - 6, 5,
                 "process_open_fds down by the 3 clients' and their backends' sockets")
        self.assertGreaterEqual(self.scrape()["process_cpu_seconds_total"], cpu)
        tern.stop_ok()

    def test_promtool_check_metrics(self):
        """A real scrape passes `promtool check metrics` (Prometheus' own
        parser and linter: names, HELP, TYPE, units, counter suffixes)."""
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool not installed (Debian's prometheus package has it)")
        be = self.echo_backend()
        tern = self.start([be], workers=2)
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"x" * 100, expect=100), b"x" * 100)
        s = socket.create_connection(("127.0.0.1", self.port), timeout=scaled(5))
        s.sendall(GARBAGE)
        read_until_closed(s, 5)
        s.close()
        _, headers, body = self.request()
        self.assertEqual(headers["content-type"], CONTENT_TYPE)
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                           timeout=scaled(30))
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"", b""),
                         "promtool check metrics:\n%s%s" % (r.stdout.decode(errors="replace"),
                                                            r.stderr.decode(errors="replace")))
        c.close()
        self.finish(tern)


class TestMetricsStart(MetricsTestCase):

    def test_ticket_keys_by_fingerprint_role_and_age(self):
        """tern_ticket_key_age_seconds: one series per key held, the same
        fingerprints and roles `tern keys list` gives for the file, and
        after the file changes (a `tern keys rotate`, picked up by the
        watch) the new ones; never a key's bytes."""
        path = os.path.join(self.tmp, "ticket.keys")

        def keys(*args):
            r = subprocess.run([tern_bin(), "keys", path] + list(args), capture_output=True,
                               text=True, timeout=scaled(10))
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout
        keys("generate")
        keys("add")
        be = self.echo_backend()
        tern = self.start([be], extra=["--ticket-keys", path])

        def series():
            return {k: v for k, v in self.scrape().items()
                    if k.startswith("tern_ticket_key_age_seconds{")}

        def listed():
            return {'tern_ticket_key_age_seconds{fingerprint="%s",role="%s"}' % tuple(
                line.split()[:2]) for line in keys("list").splitlines()}
        got = series()
        self.assertEqual(set(got), listed())
        self.assertEqual(len(got), 2)
        for value in got.values():
            self.assertGreaterEqual(value, 0)
            self.assertLess(value, 600)
        keys("rotate")
        want = listed()
        wait_for(lambda: set(series()) == want, 10, "the rotated keys in /metrics")
        with open(path) as f:
            secrets = [line.split()[-1] for line in f if not line.startswith("#")]
        _, _, body = self.request()
        for secret in secrets:
            self.assertNotIn(secret[:20], body.decode())
        tern.stop_ok()

    def test_bad_address_exits_2(self):
        for value in ("x", "9100", "unix:/tmp/m.sock", "127.0.0.1:0", "[::1]", ""):
            r = self.run_tern(["--metrics", value])
            self.assertEqual(r.returncode, 2, value)
            self.assertEqual(r.stderr, "tern: --metrics: invalid value '%s' (expected HOST:PORT, "
                             "[IPV6]:PORT or *:PORT)\n" % value)
        r = self.run_tern(["--metrics"])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "tern: --metrics: missing value (expected HOST:PORT, "
                         "[IPV6]:PORT or *:PORT)\n")

    def test_port_in_use_exits_1(self):
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        addr = "127.0.0.1:%d" % port
        listen_port = free_port()
        r = self.run_tern(["--listen", "127.0.0.1:%d" % listen_port,
                           "--backend", "127.0.0.1:%d" % closed_port(),
                           "--cert", self.default_cert()["cert"], "--workers", "1",
                           "--control", self.ctl_path, "--metrics", addr])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--metrics", r.stderr)
        self.assertIn(addr, r.stderr)
        self.assertIn("in use", r.stderr)
        self.assertNotIn(" ready: ", r.stderr)
        # Nothing left behind: the control socket file is gone.
        self.assertFalse(os.path.exists(self.ctl_path))

    def test_off_by_default(self):
        be = self.echo_backend()
        tern = self.start_tern([be], extra=["--control", self.ctl_path])
        self.assertNotIn("GET /metrics", tern.log())
        self.assertEqual(tern.stats()["reload_failures"], 0)
        tern.stop_ok()


if __name__ == "__main__":
    main()
