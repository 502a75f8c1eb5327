"""The soak test's driver (soak.py's default role): starts the echo
backend, tern and the client processes, drives the control socket (reloads,
`tickets all`) while sampling tern's descriptors and RSS, then checks and
prints the summary.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from soak_common import HERE, KINDS, SCALE, raise_nofile
from soak_probe import (SANITIZER_MARKERS, Control, free_port, metrics_scrape,
                        proc_cpu_s, proc_fds, proc_rss_kib, wait_until)

# The backend and client processes run soak.py with --role.
SOAK_PY = os.path.join(HERE, "soak.py")


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

        backend = subprocess.Popen([sys.executable, SOAK_PY, "--role",
                                    "backend"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        procs.append(backend)
        line = backend.stdout.readline().split()  # bounded: it prints at once or dies
        if len(line) != 2 or line[0] != b"port":
            raise RuntimeError("echo backend failed to start: %r" % line)
        bport = int(line[1])

        port, mport = free_port(), free_port()
        ctl = os.path.join(tmp, "control.sock")
        log_path = os.path.join(tmp, "tern.stderr")
        log = open(log_path, "wb")
        targs = [tern, "--workers", "2", "--listen", "127.0.0.1:%d" % port,
                 "--backend", "127.0.0.1:%d" % bport, "--cert", pem,
                 "--control", ctl, "--metrics", "127.0.0.1:%d" % mport,
                 "--max-conns", str(args.conns + 1000), "--handshake-timeout", "5s",
                 "--idle-timeout", "10m", "--connect-timeout", "10s"]
        if args.io:
            targs += ["--io", args.io]
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
        if args.io in ("uring", "epoll") and stats0.get("io") != args.io:
            violations.append("--io %s but stats says io=%s" % (args.io, stats0.get("io")))
        fd0, rss0 = proc_fds(tern_p.pid), proc_rss_kib(tern_p.pid)

        t0 = time.time() + 1.0
        cprocs = []
        for i in range(args.client_procs):
            cargs = [sys.executable, SOAK_PY, "--role", "client",
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
            ("I/O engine", "%s (--io %s)" % (stats0.get("io", "-"), args.io or "default")),
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
