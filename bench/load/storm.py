"""The storm phase of bench/load/run: long-lived TLS 1.3 connections held
past their session lifetime, then all closed and reopened at once with the
newest ticket each received (issue 14, section 1).

Every proxy runs with the same short session lifetime; tern once with
--ticket-refresh below it (fresh tickets to live connections, so the wave
resumes) and once without (the control). For each proxy and certificate
the phase reports the wave's resumption rate, the proxy's CPU per
reconnect, the time until every connection is back, and the proxy's CPU
per second while the connections were held (what the refresh costs).
"""

import json
import os
import select
import subprocess
import sys
import time

import common
from common import CLK_TCK, HERE, STORM_CONTROL, BenchError, read_text, tail
from sysstat import settle_cpu, tree_cpu_ticks, tree_sched_ns

CERTS = ("ecdsa", "rsa")
# hitch 1.7 has no session lifetime setting and never calls
# SSL_CTX_set_timeout: its tickets announce OpenSSL's default session
# timeout for TLS, two hours. The phase checks that they do.
OPENSSL_DEFAULT_LIFETIME_S = 7200
# A proxied connection holds two descriptors in the proxy; during the wave
# the old ones may still be closing while the new ones open.
FDS_PER_CONN_IN_PROXY = 4


class StormConfig:
    """The phase's settings, from the command line (--storm-*) or, when a
    flag is not given, the defaults (smaller and shorter with --quick).
    With `check`, a setting the phase cannot run with raises ValueError."""

    def __init__(self, args, nofile_hard, check=True):
        def given(value, default):
            return default if value is None else value
        q = args.quick
        self.conns = given(args.storm_conns, 50 if q else 1000)
        self.lifetime = given(args.storm_lifetime, 4 if q else 30)
        # At half the lifetime: tern checks every quarter of the refresh
        # period, so a connection's newest ticket is at most 1.25 refresh
        # periods old (0.625 of the lifetime), plus the flush delay, when
        # the next one reaches the client.
        # (A third with --quick: there the lifetime is 4 s and OpenSSL
        # counts a session's age in whole seconds.)
        self.refresh = given(args.storm_refresh, self.lifetime / (3 if q else 2))
        self.interval = given(args.storm_interval, 1.0 if q else 3.0)
        # Longer than the interval between a connection's requests, so a
        # refresh ticket rides with the next response instead of a send
        # of its own; if the lifetime leaves no room for that, half of
        # what it leaves (check()).
        twice = 2 * self.interval
        room = self.flush_room()
        self.flush_delay = given(args.storm_flush_delay, twice if twice < room else room / 2)
        self.hold = 1.5 * self.lifetime
        if check:
            self.check(nofile_hard)

    def check(self, nofile_hard):
        if self.lifetime < 2:
            raise ValueError("--storm-lifetime: at least 2 (seconds)")
        if not 0.05 <= self.refresh < 0.8 * self.lifetime:
            raise ValueError("--storm-refresh: from 0.05 s to below 0.8 of the lifetime "
                             "(%d s): tern looks every quarter refresh period, so a ticket "
                             "may be 1.25 periods old when the next is asked for"
                             % self.lifetime)
        if not 0 <= self.flush_delay < self.flush_room():
            raise ValueError("--storm-flush-delay: from 0 to below the lifetime less 1.25 "
                             "refresh periods and 1 s (%.3g s): a ticket must reach the client "
                             "before the one before it expires" % self.flush_room())
        if not 0 < self.interval < self.lifetime:
            raise ValueError("--storm-interval: above 0 and below the lifetime (%d s)"
                             % self.lifetime)
        limit = min((nofile_hard - 1000) // FDS_PER_CONN_IN_PROXY, common.MAX_CONNS // 2)
        if not 1 <= self.conns <= limit:
            raise ValueError("--storm-conns: 1 to %d (the open-files hard limit %d: a proxy "
                             "holds %d descriptors per connection while the wave replaces "
                             "them, and every proxy allows %d connections)"
                             % (limit, nofile_hard, FDS_PER_CONN_IN_PROXY, common.MAX_CONNS))

    def flush_room(self):
        """How long a refresh ticket may wait: the lifetime, less the age
        the ticket before it may have when tern asks for the next (1.25
        refresh periods: it looks every quarter period), less 1 s (OpenSSL
        stamps a session with whole seconds)."""
        return self.lifetime - 1.25 * self.refresh - 1

    def as_dict(self):
        return {"connections": self.conns, "lifetime_s": self.lifetime,
                "refresh_s": self.refresh, "flush_delay_s": self.flush_delay,
                "interval_s": self.interval, "hold_s": self.hold}

    def refresh_arg(self):
        return "%dms" % round(self.refresh * 1000)

    def flush_delay_arg(self):
        return "%dms" % round(self.flush_delay * 1000)


class StormSetting:
    """What one proxy start adds for the storm: the session lifetime, and
    for tern the refresh (None: the control, no refresh)."""

    def __init__(self, lifetime, refresh_arg, flush_delay_arg=None):
        self.lifetime = lifetime
        self.refresh_arg = refresh_arg
        self.flush_delay_arg = flush_delay_arg

    def tern_args(self):
        argv = ["--session-lifetime", "%ds" % self.lifetime]
        if self.refresh_arg:
            argv += ["--ticket-refresh", self.refresh_arg,
                     "--ticket-flush-delay", self.flush_delay_arg]
        return argv


def variants(order):
    """The storm's columns: the proxies in this repeat's order, tern's
    control right after tern."""
    out = []
    for p in order:
        out.append(p)
        if p == "tern":
            out.append(STORM_CONTROL)
    return out


def expected_lifetime(variant, cfg):
    return OPENSSL_DEFAULT_LIFETIME_S if variant == "hitch" else cfg.lifetime


def describe(variant, cfg):
    """How each proxy gets the storm's lifetime, for the report."""
    L = cfg.lifetime
    return {
        "tern": "`--session-lifetime %ds --ticket-refresh %s --ticket-flush-delay %s`"
                % (L, cfg.refresh_arg(), cfg.flush_delay_arg()),
        STORM_CONTROL: "`--session-lifetime %ds`, no `--ticket-refresh` (the control)" % L,
        "haproxy": "`tune.ssl.lifetime %d` (global)" % L,
        "nginx": "`ssl_session_timeout %ds; ssl_session_tickets on;`" % L,
        "hitch": ("no lifetime setting (hitch 1.7 has none and never calls "
                  "`SSL_CTX_set_timeout`): its tickets announce OpenSSL's default, %d s; the "
                  "client offers no session older than %d s, as a hitch with that lifetime "
                  "would refuse it" % (OPENSSL_DEFAULT_LIFETIME_S, L)),
    }[variant]


class ClientLines:
    """The storm client's stdout, line by line with a time bound. Reads
    the pipe's descriptor itself: a buffered readline after select could
    keep a second line in its buffer where select no longer sees it."""

    def __init__(self, p, log_path):
        self.p = p
        self.fd = p.stdout.fileno()
        self.log_path = log_path
        self.buf = b""

    def next(self, tag, bound):
        """The next line, which must be `tag` or start with `tag` and a
        JSON object; returns the object (None for a bare tag)."""
        deadline = time.monotonic() + bound
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError("storm client: no %s within %.0f s: %s"
                                 % (tag, bound, tail(read_text(self.log_path))))
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise BenchError("storm client: exited (%s) before %s: %s"
                                 % (self.p.poll(), tag, tail(read_text(self.log_path))))
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.decode("utf-8", "replace").strip()
        if line == tag:
            return None
        if line.startswith(tag + " "):
            return json.loads(line[len(tag) + 1:])
        raise BenchError("storm client: %r where %s was expected" % (line, tag))

    def tell(self, word):
        try:
            self.p.stdin.write(word.encode() + b"\n")
            self.p.stdin.flush()
        except OSError as e:
            raise BenchError("storm client: cannot tell it %r (%s): %s"
                             % (word, e, tail(read_text(self.log_path)))) from e


def check_lifetimes(variant, cfg, seen):
    """Every NewSessionTicket read in every step must announce the lifetime
    the proxy was given (hitch: OpenSSL's default); anything else means the
    proxy's setting did not take, and the phase would compare unequal
    lifetimes."""
    want = expected_lifetime(variant, cfg)
    got = {}
    for step in seen:
        for k, v in step.items():
            got[int(k)] = got.get(int(k), 0) + v
    if not got:
        raise BenchError("no NewSessionTicket was read: the proxy issues no TLS 1.3 tickets")
    if set(got) != {want} and variant == "hitch":
        raise BenchError("hitch's tickets announce lifetimes %s (seconds: count), not "
                         "OpenSSL's default %d s that this phase knows hitch for: give it "
                         "the phase's lifetime if it now has a setting for it"
                         % (got, want))
    if set(got) != {want}:
        raise BenchError("the tickets announce lifetimes %s (seconds: count), the phase asked "
                         "for %d s: the proxy's lifetime setting (%s) did not take"
                         % (got, want, describe(variant, cfg)))
    return want


def run(runner, variant, cert_kind):
    """One proxy (or tern's control) with one certificate: start it with
    the storm's lifetime, hold the connections, run the wave. Returns
    (metrics, raw)."""
    cfg = runner.storm
    name = "tern" if variant == STORM_CONTROL else variant
    proxy = runner.proxies[name]
    refresh = variant == "tern"
    setting = StormSetting(cfg.lifetime, cfg.refresh_arg() if refresh else None,
                           cfg.flush_delay_arg() if refresh else None)
    p = proxy.start(runner.procs, runner.certs[cert_kind], setting)
    root = p.pid
    log_path = os.path.join(runner.tmp, "storm-%s-%s.log" % (variant, cert_kind))
    client = None
    try:
        runner.check_probe(name, proxy)
        client = runner.procs.start(
            [sys.executable, os.path.join(HERE, "storm_client.py"), "--port", str(proxy.port),
             "--count", str(cfg.conns), "--hold", "%g" % cfg.hold,
             "--interval", "%g" % cfg.interval, "--lifetime", "%g" % cfg.lifetime],
            log_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cpu=common.LOAD_CPU)
        lines = ClientLines(client, log_path)
        bound = 90 + cfg.conns / 20
        est = lines.next("ESTABLISHED", bound)
        t0, cpu0, sched0 = time.monotonic(), tree_cpu_ticks(root), tree_sched_ns(root)
        if est["failed"] or est["ok"] != cfg.conns:
            raise BenchError("%d of %d connections established (%d failed: %s)"
                             % (est["ok"], cfg.conns, est["failed"], est["first_error"]))
        if est["resumed"] or set(est["versions"]) != {"TLSv1.3"}:
            raise BenchError("establishing: %d resumed, versions %s (expected full TLS 1.3 "
                             "handshakes)" % (est["resumed"], est["versions"]))
        held = lines.next("HELD", cfg.hold + bound)
        t1, cpu1, sched1 = time.monotonic(), tree_cpu_ticks(root), tree_sched_ns(root)
        if held["failed"]:
            raise BenchError("while held: %d connections failed: %s"
                             % (held["failed"], held["first_error"]))
        before, sched_before = settle_cpu(root), tree_sched_ns(root)
        lines.tell("wave")
        wave = lines.next("WAVE", bound)
        after, sched_after = settle_cpu(root), tree_sched_ns(root)
        if wave["failed"] or wave["ok"] != cfg.conns:
            raise BenchError("the wave: %d of %d back (%d failed: %s)"
                             % (wave["ok"], cfg.conns, wave["failed"], wave["first_error"]))
        if set(wave["versions"]) != {"TLSv1.3"}:
            raise BenchError("the wave negotiated %s" % wave["versions"])
        lifetime = check_lifetimes(variant, cfg, (est["lifetimes"], held["lifetimes"],
                                                  wave["lifetimes"]))
        lines.tell("close")
        lines.next("CLOSED", 60)
    finally:
        if client is not None:
            runner.procs.stop(client)
        runner.procs.stop(p)
    n = cfg.conns
    hold_cpu = (cpu1 - cpu0) / CLK_TCK
    wave_cpu = (after - before) / CLK_TCK
    c = cert_kind
    metrics = {
        "storm_%s_resumed_pct" % c: 100.0 * wave["resumed"] / n,
        # schedstat too: the wave is half a second of CPU, 50 clock ticks.
        "storm_%s_us" % c: (sched_after - sched_before) / 1e3 / n,
        "storm_%s_back_ms" % c: wave["seconds_all_back"] * 1e3,
        # Run time from schedstat (ns), not clock ticks: a refresh costs a
        # few percent of the hold's CPU, finer than 10 ms ticks over it.
        "storm_%s_hold_ms_per_s" % c: (sched1 - sched0) / 1e6 / (t1 - t0),
        "storm_%s_held_tickets" % c: held["tickets"] / n,
    }
    raw = {"connections": n, "cert": cert_kind, "lifetime_announced_s": lifetime,
           "lifetime_asked_s": cfg.lifetime,
           "refresh": (setting.refresh_arg or "off") if name == "tern" else None,
           "establish": est, "hold": held, "wave": wave,
           "hold_wall_s": t1 - t0, "hold_cpu_ticks_s": hold_cpu,
           "hold_cpu_schedstat_s": (sched1 - sched0) / 1e9,
           "wave_cpu_s": wave_cpu, "wave_cpu_schedstat_s": (sched_after - sched_before) / 1e9,
           "tool": "bench/load/storm_client.py"}
    return metrics, raw

