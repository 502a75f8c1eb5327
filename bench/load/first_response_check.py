#!/usr/bin/env python3
"""Cross-checks of bench/load's first_response phase, by tools outside the
client (issue 14, part 2). Not part of bench/load/run; needs root for
tcpdump, and tcpdump, strace or valgrind installed (apt-get install -y
tcpdump strace valgrind).

  capture       For tern (--handshake-tickets at-once and with-data, on
                io_uring and on epoll), HAProxy, hitch and nginx, set up as
                bench/load/run sets them up: the data segments each sends
                from its port (tcpdump on lo, payload > 0) per connection,
                beside what first_response_client.py counted, and for the
                engines that send with system calls (tern on epoll, the
                anchors) the send calls of the whole process tree
                (strace -c: sendto, sendmsg, send, write, writev; backend
                sends included) per connection.
  instructions  tern's user-space instructions (valgrind --tool=cachegrind,
                Ir) over COUNT connections of the request and banner
                scenarios, each mode twice, on epoll: a count that the
                machine's other work cannot change.

Prints one JSON object per line.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import first_response as fr  # noqa: E402
from common import REPO, BenchError  # noqa: E402
from procs import Procs  # noqa: E402
from proxies import Proxy, free_port, make_certs, start_backend, wait_tls  # noqa: E402

SEND_CALLS = ("sendto", "sendmsg", "send", "write", "writev")


class Setup:
    """What first_response.backends() and Proxy need of bench/load/run."""

    def __init__(self, tern):
        self.procs = Procs()
        self.tmp = tempfile.mkdtemp(prefix="tern-fr-check-")
        os.chmod(self.tmp, 0o755)
        self.certs = make_certs(self.tmp)
        self.backend_port = free_port()
        start_backend(self.procs, self.tmp, self.backend_port)
        self.args = argparse.Namespace(tern=tern, tern_args="", quick=False)


def strace_sends(path):
    total = 0
    for line in open(path):
        f = line.split()
        if len(f) >= 5 and f[-1] in SEND_CALLS and f[3].isdigit():
            total += int(f[3])
    return total


def capture(s, count):
    variants = [("tern", ["--handshake-tickets", m, "--io", io], "tern %s %s" % (m, io))
                for io in ("uring", "epoll") for m in fr.TERN_MODES]
    variants += [(p, [], p) for p in ("haproxy", "hitch", "nginx")]
    for name, extra, label in variants:
        for scenario in fr.SCENARIOS:
            n = count if scenario != "silent" else 10
            px = Proxy(name, s.args, s.tmp, fr.backends(s)[scenario])
            p = px.start(s.procs, s.certs["ecdsa"], tern_extra=extra)
            try:
                measure_one(s, px, p, label, extra, scenario, n)
            except BenchError as e:
                print(json.dumps({"proxy": label, "scenario": scenario, "error": str(e)}),
                      flush=True)
            finally:
                s.procs.stop(p)


def measure_one(s, px, p, label, extra, scenario, n):
    """One proxy and scenario: tcpdump (and strace where sends are system
    calls) around n connections; both stopped whatever happens."""
    fr.client(px.port, scenario, 5, 60)  # warm-up, not captured
    pcap = os.path.join(s.tmp, "capture.txt")
    payload = ("tcp src port %d and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)"
               % px.port)
    counts = os.path.join(s.tmp, "strace.txt")
    with open(pcap, "w") as out:
        td = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-l", "-q", payload],
                              stdout=out, stderr=subprocess.PIPE)
    st = None
    try:
        time.sleep(1.0)  # tcpdump is listening
        if "uring" not in extra:
            pids = subprocess.run(["pgrep", "-g", str(p.pid)], capture_output=True,
                                  text=True).stdout.split()
            st = subprocess.Popen(["strace", "-f", "-c", "-o", counts,
                                   "-e", "trace=" + ",".join(SEND_CALLS)]
                                  + [a for pid in pids for a in ("-p", pid)],
                                  stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # attached
        r = fr.client(px.port, scenario, n, 300)
        time.sleep(0.5)  # the proxy's last segments (its close_notify)
    finally:
        for tool in (st, td):
            if tool is not None:
                tool.send_signal(signal.SIGINT)
        if st is not None:
            st.wait(10)
        err = td.communicate(timeout=10)[1].decode()
    segs = len(open(pcap).read().splitlines())
    print(json.dumps({
        "proxy": label, "scenario": scenario, "connections": n,
        "tcpdump_data_segments": segs / n,
        "client_data_segments": r["data_segs"], "client_wakeups": r["wakeups"],
        "tickets_with_first_data_pct": r["tickets_with_first_data_pct"],
        "ms_to_tickets": r["ms_to_tickets"],
        "send_calls_all_sockets": strace_sends(counts) / n if st else None,
        "tcpdump_dropped": re.findall(r"(\d+) packets dropped by kernel", err)}), flush=True)


def instructions(s, count):
    for scenario in ("request", "banner"):
        for mode in fr.TERN_MODES + fr.TERN_MODES:
            port = free_port()
            out = os.path.join(s.tmp, "cachegrind.out")
            argv = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
                    "--cachegrind-out-file=" + out, s.args.tern,
                    "-l", "127.0.0.1:%d" % port, "-b", "127.0.0.1:%d" % fr.backends(s)[scenario],
                    "-w", "1", "--cert", s.certs["ecdsa"], "--tls-min", "1.3",
                    "--ciphersuites", common.CIPHERSUITE, "--log-level", "warn", "--io", "epoll",
                    "--handshake-tickets", mode, "--drain-timeout", "1s"]
            log_path = os.path.join(s.tmp, "tern.log")
            p = s.procs.start(argv, log_path, cpu=common.PROXY_CPU)
            try:
                wait_tls(port, p, log_path, bound=60)
                fr.client(port, scenario, count, 600)
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(60)
            finally:
                s.procs.stop(p)
            m = re.search(r"^summary:\s+(\d+)", open(out).read(), re.M)
            print(json.dumps({"scenario": scenario, "mode": mode, "connections": count,
                              "instructions_whole_run": int(m.group(1))}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("capture", "instructions"))
    ap.add_argument("--tern", default=os.path.join(REPO, "build", "tern"))
    ap.add_argument("--count", type=int, default=200,
                    help="connections per scenario (silent: 10) [200]")
    args = ap.parse_args()
    s = Setup(os.path.abspath(args.tern))
    try:
        (capture if args.what == "capture" else instructions)(s, args.count)
    finally:
        s.procs.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
