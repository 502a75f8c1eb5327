"""The first_response phase of bench/load/run: what a proxy sends a client
between the end of a full TLS 1.3 handshake and the first response, and
what that costs (issue 14, part 2: handshake tickets that ride with the
first response).

Three scenarios, each on a proxy started afresh with the backend it needs:

  request  the client speaks first: `GET /small` (HTTP/1.1 keep-alive) to
           the nginx backend every phase uses, right after the client's
           Finished; done when the response and both tickets are in;
  banner   the server speaks first: a backend that sends one line on
           connect (first_response_backend.py --mode banner); the client
           sends nothing; done when the line and both tickets are in;
  silent   the backend never answers (first_response_backend.py --mode
           silent): done when both tickets are in, however long they take.

tern runs twice, `--handshake-tickets at-once` and `with-data` (columns
"tern:at-once" and "tern:with-data"); the anchors as in every phase (their
OpenSSL writes a full handshake's two tickets as the handshake completes).
The client is first_response_client.py, one connection at a time on the
load CPU: segments and data segments it received (its socket's TCP_INFO
counts, SYN-ACK and pure ACKs in the former), its wake-ups (recv() calls
that returned data) and whether the tickets came in the same wake-up as
the first data. The proxy's CPU over the scenario is its run time from
schedstat (ns: a connection costs a few hundred µs, finer than the 10 ms
clock tick would show over a few seconds), divided by the connections.
"""

import json
import os
import re
import sys
import time

import common
from common import CLK_TCK, HERE, BenchError, read_text, tail
from procs import run_tool
from proxies import Proxy, free_port
from sysstat import settle_cpu, tree_sched_ns, tree_voluntary_switches

SCENARIOS = ("request", "banner", "silent")
TERN_MODES = ("at-once", "with-data")
TICKETS = 2  # every proxy's tickets per full handshake: OpenSSL's default, tern's --num-tickets
# Figures per scenario: (key suffix, label, unit, lower is better). The
# silent scenario's interest is when the tickets came, not its CPU (tern
# with-data waits --ticket-flush-delay on purpose).
FIGURES = [
    ("data_segs", "data segments server → client", "segments / connection", True),
    ("segs", "all segments server → client (SYN-ACK, pure ACKs included)",
     "segments / connection", True),
    ("wakeups", "client wake-ups with data", "recv() / connection", True),
    ("with_data_pct", "tickets in the same wake-up as the first data", "% of connections",
     False),
    ("us", "proxy CPU", "µs / connection", True),
    ("sleeps", "proxy sleeps (voluntary context switches)", "/ connection", True),
]
SILENT_FIGURES = [
    ("data_segs", "data segments server → client", "segments / connection", True),
    ("wakeups", "client wake-ups with data", "recv() / connection", True),
    ("tickets_ms", "tickets arrived after the handshake", "ms", True),
]


def metric_keys():
    keys = ["fr_%s_%s" % (s, f[0]) for s in ("request", "banner") for f in FIGURES]
    return keys + ["fr_silent_%s" % f[0] for f in SILENT_FIGURES]


def variants(order, rep=0):
    """The phase's columns: the proxies in this repeat's order, tern as its
    two --handshake-tickets modes, one after the other, which goes first
    alternating with the repeat (`rep`) so that drift on the machine
    favours neither."""
    modes = TERN_MODES if rep % 2 == 0 else TERN_MODES[::-1]
    out = []
    for p in order:
        out += ["tern:" + m for m in modes] if p == "tern" else [p]
    return out


def counts(runner):
    """Connections per scenario (the silent one waits up to the flush
    delay per connection with tern with-data) and the unmeasured warm-up."""
    q = runner.args.quick
    return {"request": 100 if q else 1000, "banner": 100 if q else 1000,
            "silent": 5 if q else 20, "warmup": 20 if q else 100}


def start_backend(runner, mode):
    """The banner or the silent backend on the load CPU; returns its port."""
    port = free_port()
    log_path = os.path.join(runner.tmp, "first-response-%s-backend.log" % mode)
    p = runner.procs.start([sys.executable, os.path.join(HERE, "first_response_backend.py"),
                            "--port", str(port), "--mode", mode], log_path,
                           stdout=None, cpu=common.LOAD_CPU)
    deadline = time.monotonic() + 15
    while "READY" not in read_text(log_path):
        if p.poll() is not None or time.monotonic() > deadline:
            raise BenchError("the %s backend did not start: %s"
                             % (mode, tail(read_text(log_path))))
        time.sleep(0.05)
    return port


def backends(runner):
    """{scenario: backend port}, the banner and silent backends started
    once per run and kept."""
    if not hasattr(runner, "fr_backends"):
        runner.fr_backends = {"request": runner.backend_port,
                              "banner": start_backend(runner, "banner"),
                              "silent": start_backend(runner, "silent")}
    return runner.fr_backends


def client(port, mode, count, timeout):
    out = run_tool([sys.executable, os.path.join(HERE, "first_response_client.py"),
                    "--port", str(port), "--mode", mode, "--count", str(count),
                    "--tickets", str(TICKETS)], timeout=timeout, check=False)
    m = re.search(r"^FIRST_RESPONSE (\{.*\})$", out, re.M)
    if not m:
        raise BenchError("first_response_client: no summary: %s" % tail(out))
    r = json.loads(m.group(1))
    if r["failed"] or r["connections"] != count:
        raise BenchError("first_response_client --mode %s: %d of %d connections done (%d "
                         "failed: %s)" % (mode, r["connections"], count, r["failed"],
                                          r["first_error"]))
    return r


def run(runner, variant):
    """One column: the three scenarios, each on the proxy started afresh.
    Returns (metrics, raw)."""
    name, _, mode = variant.partition(":")
    n = counts(runner)
    metrics, raw = {}, {"tool": "bench/load/first_response_client.py", "scenarios": {}}
    for scenario in SCENARIOS:
        proxy = Proxy(name, runner.args, runner.tmp, backends(runner)[scenario])
        tern_extra = ["--handshake-tickets", mode] if mode else []
        p = proxy.start(runner.procs, runner.certs["ecdsa"], tern_extra=tern_extra)
        root = p.pid
        try:
            if scenario == "request":
                runner.check_probe(name, proxy)
            client(proxy.port, scenario, min(n["warmup"], n[scenario]), 120)
            before, sched_before = settle_cpu(root), tree_sched_ns(root)
            sleeps_before = tree_voluntary_switches(root)
            r = client(proxy.port, scenario, n[scenario], 60 + n[scenario] * 0.3)
            after, sched_after = settle_cpu(root), tree_sched_ns(root)
            sleeps = tree_voluntary_switches(root) - sleeps_before
        finally:
            runner.procs.stop(p)
        conns = r["connections"]
        r.update(cpu_ticks_s=(after - before) / CLK_TCK,
                 cpu_schedstat_s=(sched_after - sched_before) / 1e9, proxy_sleeps=sleeps,
                 proxy_args=proxy.description)
        raw["scenarios"][scenario] = r
        key = "fr_%s_" % scenario
        if scenario == "silent":
            metrics.update({key + "data_segs": r["data_segs"], key + "wakeups": r["wakeups"],
                            key + "tickets_ms": r["ms_to_tickets"]})
        else:
            metrics.update({key + "data_segs": r["data_segs"], key + "segs": r["segs"],
                            key + "wakeups": r["wakeups"],
                            key + "with_data_pct": r["tickets_with_first_data_pct"],
                            key + "us": (sched_after - sched_before) / 1e3 / conns,
                            key + "sleeps": sleeps / conns})
    if not runner.proxies[name].description:
        # "Proxies as configured" when no other phase started this one:
        # its configuration without the phase's own flags.
        runner.proxies[name].argv(runner.certs["ecdsa"])
    return metrics, raw
