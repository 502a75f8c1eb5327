"""The load phases of bench/load/run: each starts one proxy afresh, checks
what it negotiates, runs the load on the load CPU and returns the proxy's
cost per unit of work; the crypto floor from `openssl speed`.
"""

import json
import os
import re
import select
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import common
import first_response
import storm
from common import CIPHERSUITE, CLK_TCK, HERE, BenchError, tail
from procs import run_tool
from proxies import Proxy, http_get_raw
from sysstat import (count_established, settle_cpu, softirqs, tcp_out_segments,
                     tree_rss_kib, tree_sched_ns, tree_voluntary_switches)


def s_time(port, mode, seconds, expect_bytes):
    """openssl s_time, one connection at a time: -new (full handshakes) or
    -reuse (resumed). Each connection sends GET /small HTTP/1.0 and reads
    the response to the end. Returns (connections, reused) after checking
    that every connection read exactly the expected response. With
    --workers N, N of them run side by side (one per worker) and the
    counts are their sums."""
    argv = ["openssl", "s_time", "-connect", "127.0.0.1:%d" % port,
            "-" + mode, "-www", "/small", "-time", str(seconds)]
    if common.WORKERS == 1:
        return s_time_counts(run_tool(argv, timeout=seconds + 30), expect_bytes)
    with ThreadPoolExecutor(common.WORKERS) as pool:
        outs = list(pool.map(lambda _: run_tool(argv, timeout=seconds + 30),
                             range(common.WORKERS)))
    counts = [s_time_counts(out, expect_bytes) for out in outs]
    return sum(c for c, _ in counts), sum(r for _, r in counts)


def s_time_counts(out, expect_bytes):
    m = re.search(r"^(\d+) connections in [\d.]+s;.*bytes read (\d+)", out, re.M)
    if not m:
        raise BenchError("s_time: no summary line: %s" % tail(out))
    conns, nbytes = int(m.group(1)), int(m.group(2))
    marks = "".join(re.findall(r"^[*r0-9]+$", out, re.M))
    reused = marks.count("r")
    if conns == 0:
        raise BenchError("s_time: no connection completed: %s" % tail(out))
    if nbytes != conns * expect_bytes:
        raise BenchError("s_time: %d bytes read over %d connections, expected %d each"
                         % (nbytes, conns, expect_bytes))
    if len(marks) != conns:
        raise BenchError("s_time: %d progress marks for %d connections" % (len(marks), conns))
    return conns, reused


def probe_tls(port, tmp):
    """openssl s_client twice: the first saves the session (after reading
    the response, so the tickets have arrived), the second offers it.
    Returns what was negotiated and whether the second one resumed."""
    sess = os.path.join(tmp, "probe.sess")
    if os.path.exists(sess):
        os.unlink(sess)
    info = {}
    for i, extra in enumerate((["-sess_out", sess], ["-sess_in", sess])):
        argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                "-servername", "localhost", "-ign_eof"] + extra
        try:
            r = subprocess.run(argv, input=b"GET /small HTTP/1.0\r\n\r\n",
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=20)
        except subprocess.TimeoutExpired as e:
            raise BenchError("s_client probe: the connection did not end within 20 s of the "
                             "request (the backend answers HTTP/1.0 and closes: the proxy "
                             "should then send close_notify or close)") from e
        out = r.stdout.decode("utf-8", "replace")
        m = re.search(r"^(New|Reused), (TLSv[\d.]+), Cipher is (\S+)", out, re.M)
        if not m:
            raise BenchError("s_client probe: no session line: %s" % tail(out))
        key = re.search(r"^Server Temp Key: ([^\n]+)", out, re.M)
        if i == 0:
            info.update(version=m.group(2), cipher=m.group(3),
                        temp_key=key.group(1) if key else "-")
            if not os.path.exists(sess):
                raise BenchError("s_client probe: no session saved")
        else:
            info["resumed"] = m.group(1) == "Reused"
    return info


class Runner:
    def __init__(self, args, procs, tmp, certs, backend_port, storm_cfg=None):
        self.args = args
        self.procs = procs
        self.tmp = tmp
        self.certs = certs
        self.backend_port = backend_port
        self.proxies = {n: Proxy(n, args, tmp, backend_port) for n in args.proxies}
        q = args.quick
        self.hs_seconds = 1 if q else 3
        self.load_seconds = 1 if q else 3
        self.warm_seconds = 1
        self.lat_seconds = 2 if q else 4
        self.idle_count = 200 if q else args.idle_conns
        self.small_http10 = len(http_get_raw(backend_port, "/small"))
        self.probes = {}
        self.last_sched_s = None
        self.storm = storm_cfg

    def measure(self, root, fn):
        """CPU ticks of the proxy tree spent while `fn` runs; returns
        (cpu_seconds, fn's result)."""
        before = settle_cpu(root)
        sched_before = tree_sched_ns(root)
        result = fn()
        after = settle_cpu(root)
        self.last_sched_s = (tree_sched_ns(root) - sched_before) / 1e9
        return (after - before) / CLK_TCK, result

    def check_probe(self, proxy_name, proxy):
        """The first time a proxy runs: what it negotiates, with s_client."""
        if proxy_name not in self.probes:
            self.probes[proxy_name] = probe_tls(proxy.port, self.tmp)
            probe = self.probes[proxy_name]
            if probe["version"] != "TLSv1.3" or probe["cipher"] != CIPHERSUITE:
                raise BenchError("negotiated %s %s, expected TLSv1.3 %s"
                                 % (probe["version"], probe["cipher"], CIPHERSUITE))

    def phase(self, name, proxy_name, cert_kind=None):
        """One phase through one proxy, started afresh; the storm phase runs
        once per certificate (`cert_kind`) and for tern's control too."""
        self.last_sched_s = None
        if name == "storm":
            return storm.run(self, proxy_name, cert_kind)
        if name == "first_response":
            return first_response.run(self, proxy_name)
        proxy = self.proxies[proxy_name]
        cert = self.certs["rsa" if name == "full_rsa" else "ecdsa"]
        p = proxy.start(self.procs, cert)
        try:
            self.check_probe(proxy_name, proxy)
            return getattr(self, "phase_" + name)(proxy, p.pid)
        finally:
            self.procs.stop(p)

    def _handshakes(self, proxy, root, mode, key):
        s_time(proxy.port, mode, self.warm_seconds, self.small_http10)  # warm-up
        cpu, (conns, reused) = self.measure(
            root, lambda: s_time(proxy.port, mode, self.hs_seconds, self.small_http10))
        if mode == "new" and reused:
            raise BenchError("%d of %d connections resumed in a full-handshake phase"
                             % (reused, conns))
        if mode == "reuse" and reused != conns:
            raise BenchError("only %d of %d connections resumed" % (reused, conns))
        return {key: cpu * 1e6 / conns}, {"connections": conns, "reused": reused,
                                          "cpu_s": cpu, "tool": "openssl s_time -" + mode}

    def phase_full_ecdsa(self, proxy, root):
        return self._handshakes(proxy, root, "new", "full_ecdsa_us")

    def phase_full_rsa(self, proxy, root):
        return self._handshakes(proxy, root, "new", "full_rsa_us")

    def phase_resumed(self, proxy, root):
        probe = probe_tls(proxy.port, self.tmp)
        if not probe["resumed"]:
            raise BenchError("s_client -sess_in did not resume")
        return self._handshakes(proxy, root, "reuse", "resumed_us")

    def _wrk(self, proxy, path, conns, seconds):
        out = run_tool(["wrk", "-t%d" % common.WORKERS, "-c%d" % conns, "-d%ds" % seconds,
                        "-s", os.path.join(HERE, "wrk_summary.lua"),
                        "https://127.0.0.1:%d%s" % (proxy.port, path)],
                       timeout=seconds + 30)
        m = re.search(r"^WRKJSON (\{.*\})$", out, re.M)
        if not m:
            raise BenchError("wrk: no summary: %s" % tail(out))
        r = json.loads(m.group(1))
        errors = sum(v for k, v in r.items() if k.startswith("err_"))
        if errors or r["requests"] == 0:
            raise BenchError("wrk: %d requests, errors %s" % (r["requests"], {
                k: v for k, v in r.items() if k.startswith("err_") and v}))
        return r

    def phase_bulk(self, proxy, root):
        self._wrk(proxy, "/1m", 4, self.warm_seconds)
        segs, sleeps = tcp_out_segments(), tree_voluntary_switches(root)
        irqs = softirqs(common.PROXY_CPU)
        cpu, r = self.measure(root, lambda: self._wrk(proxy, "/1m", 4, self.load_seconds))
        segs, sleeps = tcp_out_segments() - segs, tree_voluntary_switches(root) - sleeps
        irqs = {k: v - irqs.get(k, 0) for k, v in softirqs(common.PROXY_CPU).items()}
        if r["bytes"] < r["requests"] * (1 << 20):
            raise BenchError("wrk: %d bytes for %d 1 MiB responses" % (r["bytes"], r["requests"]))
        # Not in the table: what explains a run's CPU per byte. Under bbr a
        # run sometimes paces its sends: the pacing timers (HRTIMER) and
        # the loopback receives they start (NET_RX) then run on the
        # proxy's CPU, the segments per MB grow and the proxy stops
        # sleeping (RESULTS.md, "Reading the figures").
        mb = r["bytes"] / 1e6
        return ({"bulk_ns_per_byte": cpu * 1e9 / r["bytes"],
                 "bulk_mb_s": r["bytes"] / (r["duration_us"] / 1e6) / 1e6},
                dict(r, cpu_s=cpu, tool="wrk -t%d -c4" % common.WORKERS, tcp_segments_per_mb=segs / mb,
                     proxy_sleeps_per_mb=sleeps / mb,
                     proxy_cpu_hrtimer_softirqs_per_mb=irqs.get("HRTIMER", 0) / mb,
                     proxy_cpu_net_rx_softirqs_per_mb=irqs.get("NET_RX", 0) / mb))

    def phase_req1k(self, proxy, root):
        self._wrk(proxy, "/1k", 50, self.warm_seconds)
        cpu, r = self.measure(root, lambda: self._wrk(proxy, "/1k", 50, self.load_seconds))
        return {"req1k_us": cpu * 1e6 / r["requests"]}, dict(r, cpu_s=cpu, tool="wrk -t%d -c50" % common.WORKERS)

    def phase_latency(self, proxy, root):
        clients = 10
        rps = max(1, self.args.rate // clients)
        logf = os.path.join(self.tmp, "h2load-%s.log" % proxy.name)

        def go():
            if os.path.exists(logf):
                os.unlink(logf)
            # No --warm-up-time: h2load leaves its warm-up out of the
            # request count but not out of the proxy's CPU. The first second
            # (connections, handshakes) is left out of the latencies below.
            out = run_tool(["h2load", "--h1", "-c", str(clients), "--rps", str(rps),
                            "-D", str(self.lat_seconds + 1), "--log-file", logf,
                            "https://127.0.0.1:%d/1k" % proxy.port],
                           timeout=self.lat_seconds + 30)
            m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                          r"(\d+) failed, (\d+) errored, (\d+) timeout", out, re.M)
            if not m:
                raise BenchError("h2load: no summary: %s" % tail(out))
            return out, [int(x) for x in m.groups()]

        cpu, (out, counts) = self.measure(root, go)
        total, started, done, ok, failed, errored, timeouts = counts
        rows = []
        with open(logf) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    if parts[1] != "200":
                        raise BenchError("h2load: a request got status %s" % parts[1])
                    rows.append((int(parts[0]), int(parts[2])))
        expected = clients * rps * (self.lat_seconds + 1)
        if failed or errored or timeouts or ok != len(rows) or ok != total \
                or len(rows) < 0.9 * expected:
            raise BenchError("h2load: %d of %d succeeded (log %d, expected about %d), "
                             "%d failed, %d errored, %d timeout"
                             % (ok, total, len(rows), expected, failed, errored, timeouts))
        start = min(t for t, _ in rows) + 1000000
        lat = [us for t, us in rows if t >= start]
        lat.sort()
        return ({"latency_cpu_us": cpu * 1e6 / total,
                 "latency_p50_us": percentile(lat, 50),
                 "latency_p99_us": percentile(lat, 99)},
                {"requests": total, "succeeded": ok, "latencies": len(lat),
                 "rate": clients * rps, "cpu_s": cpu,
                 "tool": "h2load --h1 -c %d --rps %d" % (clients, rps)})

    def _idle_client(self, proxy, count):
        """Starts idle_conns.py; returns (process, ok, failed, error)."""
        p = self.procs.start([sys.executable, os.path.join(HERE, "idle_conns.py"),
                              "--port", str(proxy.port), "--count", str(count)],
                             os.path.join(self.tmp, "idle_conns.log"),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, cpu=common.LOAD_CPU)
        bound = 60 + count / 50
        ready, _, _ = select.select([p.stdout], [], [], bound)
        line = p.stdout.readline().decode() if ready else ""
        m = re.match(r"ESTABLISHED (\d+) (\d+) (.*)", line)
        if not m:
            self.procs.stop(p)
            raise BenchError("idle client: no report within %ds (%r)" % (bound, line))
        return p, int(m.group(1)), int(m.group(2)), m.group(3).strip()

    def _idle_close(self, p):
        try:
            p.stdin.write(b"close\n")
            p.stdin.flush()
            ready, _, _ = select.select([p.stdout], [], [], 60)
            if ready:
                p.stdout.readline()
        except OSError:
            pass
        self.procs.stop(p)

    def phase_idle_rss(self, proxy, root):
        count = self.idle_count
        # Warm-up: the first connections pay for lazy initialisation
        # (allocator arenas, OpenSSL's tables) that the baseline should hold.
        p, ok, failed, err = self._idle_client(proxy, 100)
        self._idle_close(p)
        wait_for(lambda: count_established(self.backend_port) == 0, 10,
                 "warm-up connections to close")
        rss_before = tree_rss_kib(root)
        p, ok, failed, err = self._idle_client(proxy, count)
        try:
            if ok != count:
                raise BenchError("idle client: %d of %d connections established (%d failed: %s)"
                                 % (ok, count, failed, err))
            # The proxy's backend sockets (client sockets of the proxy's tree
            # towards the backend port) must all be there too.
            wait_for(lambda: count_established(self.backend_port) >= count, 10,
                     "%d backend connections" % count)
            backend_conns = count_established(self.backend_port)
            client_conns = count_established(proxy.port)
            rss_now = tree_rss_kib(root)
            # An idle interval on purpose: proxies that release buffers of
            # idle connections (HAProxy, SSL_MODE_RELEASE_BUFFERS) have done
            # so by then.
            time.sleep(2.0)
            rss_idle = tree_rss_kib(root)
            if count_established(proxy.port) < count:
                raise BenchError("connections dropped while idle")
        finally:
            self._idle_close(p)
        return ({"idle_rss_kib": (rss_idle - rss_before) / count},
                {"connections": count, "client_conns_established": client_conns,
                 "backend_conns_established": backend_conns, "rss_before_kib": rss_before,
                 "rss_established_kib": rss_now, "rss_idle_2s_kib": rss_idle})

    def floor(self):
        """openssl speed on the proxy's CPU, the crypto a handshake or a
        byte cannot avoid."""
        secs = "1"
        out = run_tool(["openssl", "speed", "-mr", "-seconds", secs,
                        "ecdsap256", "ecdhx25519", "rsa2048"], timeout=120, cpu=common.PROXY_CPU)
        ecdsa = re.search(r"^\+F4:\d+:256:([\d.]+):", out, re.M)
        x25519 = re.search(r"^\+F5:\d+:253:([\d.]+):", out, re.M)
        rsa = re.search(r"^\+F2:\d+:2048:([\d.]+):", out, re.M)
        out2 = run_tool(["openssl", "speed", "-mr", "-seconds", secs, "-bytes", "16384",
                         "-evp", "aes-128-gcm"], timeout=60, cpu=common.PROXY_CPU)
        aes = re.search(r"^\+F:\d+:AES-128-GCM:([\d.]+)", out2, re.M)
        if not (ecdsa and x25519 and rsa and aes):
            raise BenchError("openssl speed: unexpected output: %s" % tail(out + out2))
        e, x, r, a = (float(m.group(1)) for m in (ecdsa, x25519, rsa, aes))
        raw = {"ecdsap256_sign_per_s": e, "x25519_derive_per_s": x,
               "rsa2048_sign_per_s": r, "aes128gcm_16k_bytes_per_s": a}
        return ({"full_ecdsa_us": 1e6 / e + 1e6 / x, "full_rsa_us": 1e6 / r + 1e6 / x,
                 "resumed_us": 1e6 / x, "bulk_ns_per_byte": 1e9 / a}, raw)


def wait_for(cond, bound, what):
    deadline = time.monotonic() + bound
    while not cond():
        if time.monotonic() > deadline:
            raise BenchError("timed out after %ds waiting for %s" % (bound, what))
        time.sleep(0.05)


def percentile(sorted_values, pct):
    """Nearest-rank percentile."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1,
                   int(-(-pct * len(sorted_values) // 100)) - 1))
    return sorted_values[k]
