#!/usr/bin/env python3
"""Fails when tern exposes something its operator documentation does not
name: every metric family on /metrics must appear (as `name`) in
docs/metrics.md, every field of the `stats` reply and every control
command (`help`) in docs/control.md. The flags are covered by
docs_generated (docs/options.md is written from the flag table); this is
the same promise for the metrics and the control socket, whose names live
in code that no generator reads.

    check_documented.py --tern build/tern [--docs docs]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    sys.exit("check_documented: timed out waiting for %s" % what)


def ctl(tern, path, command):
    out = subprocess.run([tern, "ctl", "--control", path, "--json", command],
                         capture_output=True, text=True, timeout=20)
    reply = json.loads(out.stdout)
    if reply.get("ok") is not True:
        sys.exit("check_documented: %s failed: %r" % (command, reply))
    return reply


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tern", required=True)
    ap.add_argument("--docs", default=os.path.join(HERE, "..", "..", "docs"))
    args = ap.parse_args()
    metrics_doc = open(os.path.join(args.docs, "metrics.md"), encoding="utf-8").read()
    control_doc = open(os.path.join(args.docs, "control.md"), encoding="utf-8").read()

    with tempfile.TemporaryDirectory() as tmp:
        control = os.path.join(tmp, "control.sock")
        mport = free_port()
        with open(os.path.join(tmp, "stderr"), "wb") as log:
            proc = subprocess.Popen(
                [args.tern, "--listen", "127.0.0.1:%d" % free_port(), "--backend",
                 "127.0.0.1:%d" % free_port(), "--workers", "2", "--control", control,
                 "--metrics", "127.0.0.1:%d" % mport], stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for(lambda: os.path.exists(control) or proc.poll() is not None, 20, "the control socket")
            if proc.poll() is not None:
                sys.exit("check_documented: tern exited %s" % proc.returncode)
            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=20).read()
            families = sorted({line.split()[2] for line in body.decode().splitlines()
                               if line.startswith("# TYPE ")})
            stats = ctl(args.tern, control, "stats")
            commands = ctl(args.tern, control, "help")["commands"]
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    missing = ["metric %s (docs/metrics.md)" % f for f in families if "`%s" % f not in metrics_doc]
    missing += ["stats field %s (docs/control.md)" % k for k in stats
                if k != "ok" and "`%s`" % k not in control_doc]
    missing += ["control command %s (docs/control.md)" % c for c in commands
                if "| `%s" % c not in control_doc]
    if not families or not commands:
        sys.exit("check_documented: nothing read from tern (families=%d commands=%d)"
                 % (len(families), len(commands)))
    if missing:
        print("check_documented: tern exposes what the documentation does not name:")
        for m in missing:
            print("  " + m)
        return 1
    print("check_documented: %d metric families, %d stats fields, %d commands: all documented"
          % (len(families), len(stats) - 1, len(commands)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
