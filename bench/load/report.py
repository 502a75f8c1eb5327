"""The report of bench/load/run: the metrics it measures, their summary over
repeats, RESULTS.md (only between its markers), the gnuplot chart, and
--from-json's rewrite of both from recorded runs.
"""

import json
import os
import shutil
import statistics
import tempfile

import common
import first_response
from common import ALL_PROXIES, ANCHORS, STORM_CONTROL, log, read_text, write_file
from procs import run_tool

BEGIN_MARK = "<!-- results:begin -->"
END_MARK = "<!-- results:end -->"

# Metrics: key, label, unit, lower is better, target (tern / best anchor).
METRICS = [
    ("full_ecdsa_us", "full TLS 1.3 handshake + 1 small request, ECDSA P-256",
     "µs CPU / connection", True, 0.55),
    ("full_rsa_us", "full TLS 1.3 handshake + 1 small request, RSA-2048",
     "µs CPU / connection", True, 0.75),
    ("resumed_us", "resumed TLS 1.3 handshake + 1 small request (ECDSA cert)",
     "µs CPU / connection", True, 0.55),
    ("bulk_ns_per_byte", "bulk: 1 MiB bodies over keep-alive",
     "ns CPU / byte", True, 0.65),
    ("bulk_mb_s", "bulk: throughput reached (load generator on 1 CPU)",
     "MB/s", False, None),
    ("req1k_us", "1 KiB keep-alive request, 50 connections, open loop",
     "µs CPU / request", True, 0.55),
    ("latency_cpu_us", "1 KiB keep-alive request at the fixed rate",
     "µs CPU / request", True, None),
    ("latency_p50_us", "latency p50 at the fixed rate", "µs", True, None),
    ("latency_p99_us", "latency p99 at the fixed rate", "µs", True, 1.0),
    ("idle_rss_kib", "RSS per idle established TLS connection",
     "KiB", True, 0.4),
    ("storm_ecdsa_resumed_pct", "reconnect storm, ECDSA P-256: the wave resumed",
     "% of connections", False, None),
    ("storm_ecdsa_us", "reconnect storm, ECDSA P-256: the wave's CPU",
     "µs CPU / reconnect", True, 0.6),
    ("storm_ecdsa_back_ms", "reconnect storm, ECDSA P-256: all connections back after",
     "ms", True, None),
    ("storm_rsa_resumed_pct", "reconnect storm, RSA-2048: the wave resumed",
     "% of connections", False, None),
    ("storm_rsa_us", "reconnect storm, RSA-2048: the wave's CPU",
     "µs CPU / reconnect", True, 0.5),
    ("storm_rsa_back_ms", "reconnect storm, RSA-2048: all connections back after",
     "ms", True, None),
]
# The storm's figures shown in its own section only: what holding the
# connections costs (tern's refresh against its control), and the tickets
# each connection read while held.
STORM_METRICS = [
    ("storm_%s_hold_ms_per_s" % c, "reconnect storm, %s: the proxy's CPU while the "
     "connections were held" % n, "ms CPU / s", True, None)
    for c, n in (("ecdsa", "ECDSA P-256"), ("rsa", "RSA-2048"))] + [
    ("storm_%s_held_tickets" % c, "reconnect storm, %s: NewSessionTickets read while "
     "held" % n, "tickets / connection", False, None)
    for c, n in (("ecdsa", "ECDSA P-256"), ("rsa", "RSA-2048"))]
# The first_response phase's figures, in its own section only (columns:
# tern in both --handshake-tickets modes and the anchors).
FIRST_RESPONSE_METRICS = [
    ("fr_%s_%s" % (s, k), "first response, %s: %s" % (s, label), unit, lower, None)
    for s in ("request", "banner") for k, label, unit, lower in first_response.FIGURES] + [
    ("fr_silent_%s" % k, "first response, silent backend: %s" % label, unit, lower, None)
    for k, label, unit, lower in first_response.SILENT_FIGURES]
METRIC = {m[0]: m for m in METRICS + STORM_METRICS + FIRST_RESPONSE_METRICS}
PHASE_METRICS = {
    "full_ecdsa": ["full_ecdsa_us"],
    "full_rsa": ["full_rsa_us"],
    "resumed": ["resumed_us"],
    "bulk": ["bulk_ns_per_byte", "bulk_mb_s"],
    "req1k": ["req1k_us"],
    "latency": ["latency_cpu_us", "latency_p50_us", "latency_p99_us"],
    "idle_rss": ["idle_rss_kib"],
    "storm": ["storm_%s_%s" % (c, k) for c in ("ecdsa", "rsa")
              for k in ("resumed_pct", "us", "back_ms", "hold_ms_per_s", "held_tickets")],
    "first_response": first_response.metric_keys(),
    "floor": ["full_ecdsa_us", "full_rsa_us", "resumed_us", "bulk_ns_per_byte"],
}
# What the floor column means in each row it fills.
FLOOR_NOTES = {
    "full_ecdsa_us": "ECDSA P-256 sign + X25519 derive",
    "full_rsa_us": "RSA-2048 sign + X25519 derive",
    "resumed_us": "X25519 derive (psk_dhe_ke)",
    "bulk_ns_per_byte": "AES-128-GCM, 16 KiB blocks",
}
IDLE_RSS_ABS_TARGET_KIB = 6.0
# The storm's targets hold only at this resumption rate or more (issue 14).
STORM_RESUMED_TARGET_PCT = 99.0
# tern's refresh: at most this much more CPU while the connections are held
# than its control spends.
STORM_REFRESH_TARGET_PCT = 2.0


def summarize(runs):
    """{column: {metric: {median, min, max, n}}} over successful runs."""
    values = {}
    for r in runs:
        for k, v in (r.get("metrics") or {}).items():
            values.setdefault(r["proxy"], {}).setdefault(k, []).append(v)
    return {col: {k: {"median": statistics.median(v), "min": min(v), "max": max(v),
                      "n": len(v)} for k, v in ms.items()}
            for col, ms in values.items()}


def fmt(v):
    if v is None:
        return "–"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3f" % v


def cell(s):
    if not s:
        return "–"
    if s["n"] == 1 or s["min"] == s["max"]:
        return fmt(s["median"])
    return "%s (%s–%s)" % (fmt(s["median"]), fmt(s["min"]), fmt(s["max"]))


def best_anchor(summary, key, lower):
    vals = [(summary[a][key]["median"], a) for a in ANCHORS
            if a in summary and key in summary[a]]
    if not vals:
        return None, None
    return (min if lower else max)(vals)


def render_markdown(meta, summary, runs, proxies, errors):
    cols = [p for p in ALL_PROXIES if p in proxies]
    anchors = [a for a in ANCHORS if a in proxies]
    rows = [m for m in METRICS if any(m[0] in summary.get(c, {}) for c in cols + ["floor"])]
    L = []
    L.append("Generated by `bench/load/run` on %s; do not edit between the markers "
             "(the script rewrites this part and leaves the rest of the file alone)."
             % meta["date"])
    L.append("")
    L.append("Command: `%s`" % meta["command"])
    L.append("")
    L.append("| machine | |")
    L.append("|---|---|")
    for k in ("cpu", "kernel", "tcp congestion control", "openssl", "tern", "haproxy", "hitch", "nginx", "h2load", "wrk",
              "python", "repeats", "workers"):
        if k in meta:
            L.append("| %s | %s |" % (k, str(meta[k]).replace("|", "\\|")))
    L.append("")
    L.append("### Cost per unit of work (median of %d, min–max in parentheses)"
             % meta["repeats"])
    L.append("")
    if common.WORKERS == 1:
        where = "on CPU %s; everything else runs on CPU %s" % (common.PROXY_CPU, common.LOAD_CPU)
    else:
        where = ("with %d workers; proxy, backend and load generators all share CPUs %s"
                 % (common.WORKERS, common.PROXY_CPU))
    L.append("Lower is better except MB/s. The proxy's CPU is utime+stime of all its "
             "processes and threads (children included) %s." % where)
    L.append("")
    head = ["metric", "unit"] + cols + (["crypto floor"] if "floor" in summary else [])
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for key, label, unit, lower, target in rows:
        r = [label, unit] + [cell(summary.get(c, {}).get(key)) for c in cols]
        if "floor" in summary:
            f = summary["floor"].get(key)
            r.append("%s (%s)" % (cell(f), FLOOR_NOTES[key]) if f else "")
        L.append("| " + " | ".join(r) + " |")
    L.append("")
    if "tern" in cols and anchors:
        L.append("### Ratios")
        L.append("")
        L.append("Each anchor's median divided by tern's (`anchor ÷ tern`: above 1 means "
                 "the anchor costs more than tern, except for MB/s), and tern's median "
                 "divided by the best anchor's (`tern ÷ best`: the lowest cost, or the "
                 "highest MB/s, among the anchors), against the issue's target.")
        L.append("")
        head = ["metric"] + ["%s ÷ tern" % a for a in anchors] + ["tern ÷ best", "target", "met"]
        L.append("| " + " | ".join(head) + " |")
        L.append("|" + "---|" * len(head))
        for key, label, unit, lower, target in rows:
            t = summary.get("tern", {}).get(key)
            r = [label]
            for a in anchors:
                s = summary.get(a, {}).get(key)
                r.append("%.2f" % (s["median"] / t["median"]) if s and t and t["median"] else "–")
            bv, ba = best_anchor(summary, key, lower)
            if key.endswith("_resumed_pct") and t:
                # An absolute target: the anchors may resume nothing.
                r.append("%.2f (vs %s)" % (t["median"] / bv, ba) if bv else "–")
                met = t["median"] >= STORM_RESUMED_TARGET_PCT
                r += ["≥ %.0f %%" % STORM_RESUMED_TARGET_PCT, "yes" if met else "**no**"]
            elif t and bv:
                ratio = t["median"] / bv
                r.append("%.2f (vs %s)" % (ratio, ba))
                if target is None:
                    r += ["", ""]
                else:
                    met = ratio <= target
                    tgt = "≤ %.2f×" % target
                    if key == "idle_rss_kib":
                        tgt += " and ≤ %.0f KiB" % IDLE_RSS_ABS_TARGET_KIB
                        met = met and t["median"] <= IDLE_RSS_ABS_TARGET_KIB
                    if key.startswith("storm_"):
                        resumed = summary["tern"].get(key.replace("_us", "_resumed_pct"))
                        tgt += " at ≥ %.0f %% resumed" % STORM_RESUMED_TARGET_PCT
                        met = met and bool(resumed) and \
                            resumed["median"] >= STORM_RESUMED_TARGET_PCT
                    r += [tgt, "yes" if met else "**no**"]
            else:
                r += ["–", "", ""]
            L.append("| " + " | ".join(r) + " |")
        L.append("")
    if meta.get("png"):
        L.append("![each metric relative to the best anchor](%s)" % meta["png"])
        L.append("")
    if meta.get("storm") and any(k.startswith("storm_") for c in summary.values() for k in c):
        L += render_storm(meta["storm"], summary, runs, proxies)
    if meta.get("first_response") and any(k.startswith("fr_") for c in summary.values()
                                           for k in c):
        L += render_first_response(meta["first_response"], summary, proxies)
    L.append("### What was measured, and how")
    L.append("")
    for line in meta["methods"]:
        L.append("- " + line)
    L.append("")
    L.append("### Proxies as configured")
    L.append("")
    for name in cols:
        probe = meta["probes"].get(name, {})
        L.append("- **%s**: %s. Negotiated %s %s, key exchange %s; a second "
                 "`s_client -sess_in` %s." % (
                     name, meta["proxy_configs"].get(name, ""), probe.get("version", "?"),
                     probe.get("cipher", "?"), probe.get("temp_key", "?"),
                     "resumed" if probe.get("resumed") else
                     ("did not resume" if "resumed" in probe else "was not tried")))
    L.append("")
    if errors:
        L.append("### Failures in this run")
        L.append("")
        for e in errors:
            L.append("- %s / %s%s (repeat %d): %s" % (
                e["proxy"], e["phase"], " (%s)" % e["cert"] if e.get("cert") else "",
                e["repeat"], e["error"]))
        L.append("")
    return "\n".join(L)


def storm_label(col):
    return "tern, no refresh" if col == STORM_CONTROL else col


def render_storm(st, summary, runs, proxies):
    """The storm phase's own table: every proxy and tern's control, per
    certificate, with the lifetime its tickets announced and what holding
    the connections cost."""
    cols = []
    for p in ALL_PROXIES:
        if p in proxies:
            cols.append(p)
            if p == "tern":
                cols.append(STORM_CONTROL)
    L = ["### Reconnect storm (median of the repeats, min–max in parentheses)", ""]
    L.append("%d TLS 1.3 connections through each proxy, each sending `GET /small` every "
             "%g s and keeping the newest ticket it read, held %g s (1.5 × the session "
             "lifetime of %d s every proxy was given), then all closed and reopened at once, "
             "each offering its newest session if younger than %d s. CPU per reconnect: the "
             "proxy's CPU over the wave (closes, handshakes, one request each) / %d; all back: "
             "from the first reconnect to the last response (client's clock); CPU while held: "
             "the proxy's CPU per second of the hold (schedstat)."
             % (st["connections"], st["interval_s"], st["hold_s"], st["lifetime_s"],
                st["lifetime_s"], st["connections"]))
    L.append("")
    head = ["proxy", "cert", "ticket lifetime announced", "tickets / conn. while held",
            "wave resumed (%)", "CPU / reconnect (µs)", "all back after (ms)",
            "CPU while held (ms / s)"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for cert, cname in (("ecdsa", "ECDSA P-256"), ("rsa", "RSA-2048")):
        for col in cols:
            s = summary.get(col, {})
            if "storm_%s_us" % cert not in s:
                continue
            lifetimes = sorted({r["raw"]["lifetime_announced_s"] for r in runs
                                if r.get("phase") == "storm" and r["proxy"] == col
                                and r.get("cert") == cert and "raw" in r})
            L.append("| " + " | ".join([
                storm_label(col), cname, ", ".join("%d s" % x for x in lifetimes) or "–",
                cell(s.get("storm_%s_held_tickets" % cert)),
                cell(s.get("storm_%s_resumed_pct" % cert)),
                cell(s.get("storm_%s_us" % cert)),
                cell(s.get("storm_%s_back_ms" % cert)),
                cell(s.get("storm_%s_hold_ms_per_s" % cert))]) + " |")
    L.append("")
    lines = []
    for cert, cname in (("ecdsa", "ECDSA P-256"), ("rsa", "RSA-2048")):
        key = "storm_%s_hold_ms_per_s" % cert
        t = summary.get("tern", {}).get(key)
        c = summary.get(STORM_CONTROL, {}).get(key)
        tickets = summary.get("tern", {}).get("storm_%s_held_tickets" % cert)
        if t and c and c["median"]:
            extra = 100.0 * (t["median"] / c["median"] - 1)
            per_ticket = ""
            if tickets and tickets["median"]:
                # Extra CPU per second / refresh tickets per second.
                rate = tickets["median"] * st["connections"] / st["hold_s"]
                per_ticket = ", about %s µs per refresh ticket (%s tickets / s)" % (
                    fmt((t["median"] - c["median"]) * 1e3 / rate), fmt(rate))
            lines.append("- %s: tern spent %s ms CPU / s while holding the connections with "
                         "the refresh, %s without: %+.1f %%%s (target < %.0f %%: %s)."
                         % (cname, fmt(t["median"]), fmt(c["median"]), extra, per_ticket,
                            STORM_REFRESH_TARGET_PCT,
                            "yes" if extra < STORM_REFRESH_TARGET_PCT else "**no**"))
    if lines:
        L.append("What the refresh costs (tern against its control while held; the share "
                 "depends on how many requests the held connections send per refresh, %s s "
                 "apart per connection here against one refresh every %s s):"
                 % (fmt(st["interval_s"]), fmt(st["refresh_s"])))
        L.append("")
        L += lines
        L.append("")
    L.append("How each proxy got the lifetime (every ticket's announced lifetime is read "
             "from its NewSessionTicket and checked: the phase fails if it differs):")
    L.append("")
    for col in cols:
        if col in st.get("configs", {}):
            L.append("- **%s**: %s." % (storm_label(col), st["configs"][col]))
    L.append("")
    return L


def render_first_response(fr, summary, proxies):
    """The first_response phase's tables: one per scenario, a row per
    column (tern in both modes, the anchors), and what with-data changes
    against at-once."""
    cols = [c for c in first_response.variants([p for p in ALL_PROXIES if p in proxies])
            if c in summary]
    n = fr["connections"]
    L = ["### Handshake tickets and the first response (median of the repeats, "
         "min–max in parentheses)", ""]
    L.append("Full TLS 1.3 handshakes (ECDSA P-256), one connection at a time, %d per "
             "scenario (after %d unmeasured), through each proxy and through tern with "
             "`--handshake-tickets at-once` and `with-data`; every proxy sends 2 tickets per "
             "full handshake. Counted by the client (`bench/load/first_response_client.py`) "
             "until it had what it waited for and both tickets: the segments its socket "
             "received (TCP_INFO; data segments are those carrying bytes, i.e. the proxy's "
             "sends on loopback), its wake-ups (recv() calls that returned data), and whether "
             "the tickets came in the same wake-up as the first data. Proxy CPU: its run "
             "time (schedstat) over the scenario / connections."
             % (n["request"], n["warmup"]))
    L.append("")

    def table(scenario, figures):
        head = ["proxy"] + ["%s (%s)" % (label, unit) for _, label, unit, _ in figures]
        L.append("| " + " | ".join(head) + " |")
        L.append("|" + "---|" * len(head))
        for col in cols:
            L.append("| " + " | ".join([col] + [cell(summary[col].get("fr_%s_%s" % (scenario, k)))
                                                for k, *_ in figures]) + " |")
        L.append("")
    for scenario, what in (("request", "the client speaks first: `GET /small` (HTTP/1.1 "
                            "keep-alive) right after its Finished, the nginx backend answers"),
                           ("banner", "the server speaks first: the backend sends one line "
                            "on connect, the client sends nothing")):
        L.append("**%s** — %s:" % (scenario, what))
        L.append("")
        table(scenario, first_response.FIGURES)
    L.append("**silent** — the backend never answers, %d connections: the tickets must "
             "still come (tern with-data: after `--ticket-flush-delay`, 200 ms by default):"
             % n["silent"])
    L.append("")
    table("silent", first_response.SILENT_FIGURES)
    a, w = summary.get("tern:at-once"), summary.get("tern:with-data")
    if a and w:
        lines = []
        for scenario in ("request", "banner"):
            def d(k):
                x, y = a.get("fr_%s_%s" % (scenario, k)), w.get("fr_%s_%s" % (scenario, k))
                return (x["median"], y["median"]) if x and y else (None, None)
            segs, wakes, cpu = d("data_segs"), d("wakeups"), d("us")
            if None in segs + wakes + cpu or not cpu[0]:
                continue
            lines.append("- %s: with-data %s data segments and %s wake-ups per connection "
                         "(at-once %s and %s), proxy CPU %s µs against %s (%+.1f %%)."
                         % (scenario, fmt(segs[1]), fmt(wakes[1]), fmt(segs[0]), fmt(wakes[0]),
                            fmt(cpu[1]), fmt(cpu[0]), 100.0 * (cpu[1] / cpu[0] - 1)))
        if lines:
            L.append("tern with-data against at-once (medians):")
            L.append("")
            L += lines
            L.append("")
    return L


RESULTS_TEMPLATE = """# bench/load results

tern against HAProxy, hitch and nginx (stream) as TLS terminators in front
of the same plaintext backend, each with one worker pinned to one CPU, and
the crypto floor from `openssl speed` in the same run. How to run it and what
each phase does: `bench/load/README.md`.

%s
%s
%s

## What each lever gave

Kept by hand: `bench/load/run` only rewrites the part between the markers
above.
"""


def write_results_md(path, generated):
    block = "%s\n%s\n%s" % (BEGIN_MARK, generated, END_MARK)
    old = read_text(path) if os.path.exists(path) else None
    if old is None:
        text = RESULTS_TEMPLATE % (BEGIN_MARK, generated, END_MARK)
    elif BEGIN_MARK in old and END_MARK in old:
        pre = old.split(BEGIN_MARK, 1)[0]
        post = old.split(END_MARK, 1)[1]
        text = pre + block + post
    else:
        text = old.rstrip("\n") + "\n\n" + block + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


# Times, not costs per unit of work: left out of the chart.
NOT_CHARTED = {"storm_ecdsa_back_ms", "storm_rsa_back_ms"}


def write_png(path, summary, proxies, tmp):
    """Grouped bars: each cost metric's median (min–max as error bars) for
    every proxy, divided by the best anchor's median (or by tern's when no
    anchor ran)."""
    cols = [p for p in ALL_PROXIES if p in proxies] + (["floor"] if "floor" in summary else [])
    keys = [m for m in METRICS if m[3] and m[0] not in NOT_CHARTED
            and any(m[0] in summary.get(c, {}) for c in cols)]
    short = {"full_ecdsa_us": "full hs\\nECDSA", "full_rsa_us": "full hs\\nRSA",
             "resumed_us": "resumed\\nhs", "bulk_ns_per_byte": "bulk\\nns/byte",
             "req1k_us": "1 KiB req\\nopen loop", "latency_cpu_us": "1 KiB req\\nfixed rate",
             "latency_p50_us": "latency\\np50", "latency_p99_us": "latency\\np99",
             "idle_rss_kib": "RSS per\\nidle conn",
             "storm_ecdsa_us": "storm\\nECDSA", "storm_rsa_us": "storm\\nRSA"}
    data = os.path.join(tmp, "chart.dat")
    ymax = 1.0
    with open(data, "w") as f:
        for key, *_ in keys:
            base, _ = best_anchor(summary, key, True)
            if base is None:
                base = summary.get("tern", {}).get(key, {}).get("median")
            row = ['"%s"' % short.get(key, key)]
            for c in cols:
                s = summary.get(c, {}).get(key)
                if s and base:
                    row += ["%.4f" % (s[x] / base) for x in ("median", "min", "max")]
                    ymax = max(ymax, s["median"] / base)
                else:
                    row += ["NaN"] * 3
            f.write(" ".join(row) + "\n")
    basis = "the best anchor" if any(a in cols for a in ANCHORS) else "tern"
    titles = {"floor": "crypto floor (openssl speed)"}
    plot = ", ".join("'%s' using %d:%d:%d%s title '%s'" % (
        data, 2 + 3 * i, 3 + 3 * i, 4 + 3 * i, ":xtic(1)" if i == 0 else "", c)
        for i, c in enumerate(titles.get(c, c) for c in cols))
    script = f"""set terminal pngcairo size 1400,700 font "sans,11"
set output '{path}'
set datafile missing "NaN"
set title "Cost per unit of work relative to {basis} (= 1.0); lower is better; bars: median, whiskers: min-max (clipped)"
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left
set bmargin 5
set grid ytics
set yrange [0:{max(1.5, ymax * 1.25):.2f}]
set ylabel "relative to {basis}"
set xtics nomirror
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1
plot {plot}
"""
    sp = os.path.join(tmp, "chart.gp")
    write_file(sp, script)
    run_tool(["gnuplot", sp], timeout=60, cpu=None)


def rerender(args, out_dir):
    """--from-json: the report and the chart again from recorded runs (after
    a change to the report's layout), the figures untouched."""
    with open(args.from_json) as f:
        data = json.load(f)
    meta, runs = data["meta"], data["runs"]
    common.WORKERS = meta.get("workers", 1)
    summary = summarize(runs)
    # first_response's columns are the proxy's name and a variant after ":"
    proxies = [p for p in ALL_PROXIES
               if any(r["proxy"].split(":")[0] == p for r in runs)]
    errors = [r for r in runs if "error" in r]
    tmp = tempfile.mkdtemp(prefix="tern-bench-load-")
    try:
        if args.png:
            meta["png"] = os.path.relpath(os.path.abspath(args.png), out_dir)
            write_png(os.path.abspath(args.png), summary, proxies, tmp)
        write_results_md(args.out, render_markdown(meta, summary, runs, proxies, errors))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if os.path.abspath(args.json) != os.path.abspath(args.from_json):
        with open(args.json, "w") as f:
            json.dump(dict(data, meta=meta, summary=summary), f, indent=1)
            f.write("\n")
    log("rewrote %s%s from %s" % (args.out, ", " + args.png if args.png else "",
                                  args.from_json))
    return 0
