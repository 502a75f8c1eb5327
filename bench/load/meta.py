"""What bench/load/run's report says about the run besides the figures: the
machine, the tools' versions and how each figure was measured.
"""

import datetime
import os
import re
import shlex
import subprocess
import sys

import common
import first_response
from common import CIPHERSUITE, CLK_TCK, REPO, read_text
from sysstat import TCP_CC


def tool_version(argv, pattern=None):
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    out = r.stdout.decode("utf-8", "replace").strip()
    line = out.splitlines()[0] if out else "?"
    if pattern:
        m = re.search(pattern, out)
        if m:
            return m.group(1)
    return line


def machine_meta(args):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = "?"
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                timeout=10).stdout.decode().strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        pass
    meta = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": " ".join(shlex.quote(a) for a in ["bench/load/run"] + sys.argv[1:]),
        "cpu": "%s, %d CPUs online" % (cpu, os.cpu_count()),
        "kernel": os.uname().release,
        # It changes every proxy's CPU per byte (RESULTS.md): say which.
        "tcp congestion control": read_text(TCP_CC).strip(),
        "openssl": tool_version(["openssl", "version"]),
        "python": sys.version.split()[0],
        "repeats": args.repeat,
        "workers": args.workers,
    }
    if "tern" in args.proxies:
        meta["tern"] = "%s (%s, git HEAD %s)" % (
            tool_version([args.tern, "-V"]), os.path.relpath(args.tern, REPO)
            if os.path.abspath(args.tern).startswith(REPO) else args.tern, commit)
    if "haproxy" in args.proxies:
        meta["haproxy"] = tool_version(["haproxy", "-v"], r"(HAProxy version \S+)")
    if "hitch" in args.proxies:
        meta["hitch"] = tool_version(["hitch", "--version"])
    meta["nginx"] = tool_version(["nginx", "-v"]) + " (backend%s)" % (
        ", stream proxy" if "nginx" in args.proxies else "")
    meta["h2load"] = tool_version(["h2load", "--version"])
    meta["wrk"] = tool_version(["wrk", "-v"], r"(wrk \S+)")
    return meta


def methods(runner, args):
    workers = [] if common.WORKERS == 1 else [
        "**Workers**: every proxy with %d workers (tern `-w %d`, HAProxy `nbthread %d`, hitch "
        "`workers = %d`, nginx `worker_processes %d`), proxy, backend and load generators "
        "all on CPUs %s (with a load generator on a CPU of its own there is no CPU left for "
        "a second worker): %d `openssl s_time` side by side in the handshake phases, "
        "`wrk -t%d` in the others. What this can show: the CPU per unit of work with the "
        "workers running at once, each proxy's threads or processes contending for what "
        "they share; what it cannot: scaling beyond two CPUs, or a proxy's CPU apart from "
        "the load's when they are on the same CPUs (the figure is still the proxy's own "
        "CPU time)." % ((common.WORKERS,) * 5 + (common.PROXY_CPU,) + (common.WORKERS,) * 2)]
    return workers + [
        "**Proxy CPU**: utime+stime+cutime+cstime from `/proc/PID/stat`, summed over the "
        "proxy's process tree (HAProxy 1 process; tern 1 process, all threads; hitch "
        "management + worker; nginx master + worker), read when the tree has been idle for "
        "0.1 s before and after each measured phase (clock tick 1/%d s). Every proxy is "
        "started afresh for every phase (after a 1 s warm-up of the same load), pinned with "
        "`taskset -c %s`; the nginx backend and every load generator run with "
        "`taskset -c %s`." % (CLK_TCK, common.PROXY_CPU, common.LOAD_CPU),
        "**TLS**: TLS 1.3 only, `%s` only, X25519 (every client offers it first), session "
        "tickets on (OpenSSL's default of 2 per full handshake everywhere); "
        "checked per proxy with `openssl s_client`." % CIPHERSUITE,
        "**Full handshake** (ECDSA P-256, then RSA-2048 with the proxy restarted on the "
        "RSA certificate): `openssl s_time -new -www /small -time %d`, one connection at a "
        "time: a new TCP connection, a full handshake without resumption, `GET /small "
        "HTTP/1.0`, the response read to the backend's close. The count is s_time's; every "
        "connection must have read exactly the %d-byte response (bytes read = count × %d) "
        "and none may show s_time's resumed mark. Proxy CPU µs / connections."
        % (runner.hs_seconds, runner.small_http10, runner.small_http10),
        "**Resumed handshake**: first `openssl s_client -sess_out` then `-sess_in` must say "
        "`Reused, TLSv1.3`; then `openssl s_time -reuse` as above, every connection resuming "
        "the first one's session (the phase fails unless s_time marks all of them `r`).",
        "**Bulk**: `wrk -t%d -c4 -d%ds` on `/1m` (1 MiB bodies, keep-alive); bytes are wrk's "
        "exact `summary.bytes` (response headers and bodies, from `wrk_summary.lua`), no "
        "errors allowed. ns/byte = proxy CPU ns / bytes; MB/s = bytes / wrk's duration / 10^6 "
        "(bounded by the load CPU, which also runs the backend)." % (common.WORKERS,
                                                                     runner.load_seconds),
        "**1 KiB request**: `wrk -t%d -c50 -d%ds` on `/1k` (keep-alive, as fast as wrk "
        "goes); proxy CPU µs / wrk's request count, no errors allowed."
        % (common.WORKERS, runner.load_seconds),
        "**Latency at a fixed rate**: `h2load --h1 -c 10 --rps %d -D %d` on `/1k` (%d "
        "requests/s in all, the same for every proxy, far below any proxy's capacity); "
        "p50/p99 (nearest rank) of the per-request times in h2load's `--log-file`, leaving "
        "out the requests started in the first second (connections and handshakes); every "
        "request must be 200 and at least 90%% of the rate reached. CPU µs / request at that "
        "rate: proxy CPU over the whole run / all its requests (about 0.2 s of CPU, so the "
        "10 ms tick weighs ±5%%)." % (max(1, args.rate // 10), runner.lat_seconds + 1,
                                      args.rate),
        "**RSS per idle TLS connection**: `bench/load/idle_conns.py` (Python asyncio+ssl on "
        "the load CPU) opens %d TLS 1.3 connections, 100 handshakes at a time, and sends one "
        "`GET /small` on each (keep-alive, so the backend connection exists), then holds "
        "them. The phase fails unless all %d answered and /proc/net/tcp shows %d "
        "established sockets towards the backend. RSS is VmRSS summed over the proxy's "
        "processes, read after a 100-connection warm-up (closed) and again after the "
        "connections have been idle for 2 s; (after − before) / %d."
        % (runner.idle_count, runner.idle_count, runner.idle_count, runner.idle_count),
        "**Reconnect storm**: `bench/load/storm_client.py` (Python ssl, one thread, "
        "non-blocking sockets, on the load CPU) opens %d TLS 1.3 connections (100 handshakes "
        "at a time, one `GET /small` each, keep-alive), then holds them %g s, 1.5 × the "
        "session lifetime of %d s every proxy gets for this phase (tern `--session-lifetime`, "
        "HAProxy `tune.ssl.lifetime`, nginx `ssl_session_timeout`; hitch has no setting, see "
        "the storm section), each sending `GET /small` every %g s and reading whatever "
        "arrives; tern runs once with `--ticket-refresh %s --ticket-flush-delay %s` and once "
        "without a refresh. The "
        "ticket_lifetime of every NewSessionTicket read (its first 4 bytes, from the client "
        "context's message callback) must be the one asked for, or the phase fails. Then the "
        "client closes every connection and opens all of them again at once, each offering "
        "the newest session it holds (`SSLSocket.session`) if younger than the lifetime, and "
        "sends one request on each; the wave is over when every connection has its response. "
        "Resumed = `session_reused`; CPU per reconnect = the proxy's run time (schedstat) from before the "
        "closes (idle) to after the last response (idle again) / %d; all back = from the "
        "first reconnect (all closed by then) to the last response, on the client's clock "
        "(the client's own handshakes on the load CPU are in it); CPU while held = the "
        "proxy's run time (schedstat) between the last connection established and the "
        "hold's end / that time. Run for ECDSA P-256 and RSA-2048, the proxy started afresh "
        "for each."
        % (runner.storm.conns, runner.storm.hold, runner.storm.lifetime,
           runner.storm.interval, runner.storm.refresh_arg(), runner.storm.flush_delay_arg(),
           runner.storm.conns),
        "**Handshake tickets and the first response**: `bench/load/first_response_client.py` "
        "(Python ssl over memory BIOs and a blocking socket, on the load CPU) makes %d full "
        "TLS 1.3 handshakes one after another per scenario (after %d unmeasured): `request` "
        "(`GET /small` keep-alive in a send of its own right after the client's Finished; the "
        "nginx backend answers), `banner` (the backend, `first_response_backend.py`, sends a "
        "line on connect; the client sends nothing) and `silent` (%d connections; the backend "
        "never answers). A connection is done when the awaited data and exactly 2 "
        "NewSessionTickets (counted by the context's message callback) are in; the client "
        "then reads its socket's TCP_INFO (`tcpi_segs_in`, `tcpi_data_segs_in`) and counts "
        "its recv() calls that returned data. tern runs with `--handshake-tickets at-once` "
        "and `with-data`, the proxy started afresh per scenario; proxy CPU is its schedstat "
        "run time over the scenario / connections."
        % (first_response.counts(runner)["request"], first_response.counts(runner)["warmup"],
           first_response.counts(runner)["silent"]),
        "**Crypto floor**: `taskset -c %s openssl speed -seconds 1` for ecdsap256, "
        "ecdhx25519, rsa2048 (sign/s, derive/s) and `-evp aes-128-gcm -bytes 16384`, "
        "once per repeat: µs per handshake = 1/sign + 1/derive (the server's X25519 key "
        "generation, the hashing and the client's side not counted: a lower bound); "
        "ns/byte = 1/AES-128-GCM throughput." % common.PROXY_CPU,
        "**Repeats**: every figure is measured %d times, phases interleaved across proxies "
        "(the proxy order rotates each repeat); the table shows the median and min–max."
        % args.repeat,
    ]
