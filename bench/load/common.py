"""What every part of bench/load/run shares: the run's constants, the two
CPUs, the error a phase fails with, the log and small file helpers.

PROXY_CPU and LOAD_CPU are set from --cpus when the run starts: the other
modules read them as common.PROXY_CPU and common.LOAD_CPU when they need
them, never copy them at import.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

ALL_PROXIES = ["tern", "haproxy", "hitch", "nginx"]
ANCHORS = ["haproxy", "hitch", "nginx"]
ALL_PHASES = ["floor", "full_ecdsa", "full_rsa", "resumed", "bulk", "req1k",
              "latency", "idle_rss", "first_response", "storm"]
# What a run measures without --phases: everything but the storm, which
# alone takes longer than the rest together (`--phases storm`).
DEFAULT_PHASES = [p for p in ALL_PHASES if p != "storm"]
# The storm phase's control: tern with the same session lifetime and no
# --ticket-refresh. A column of its own in the storm phase only.
STORM_CONTROL = "tern-norefresh"
CIPHERSUITE = "TLS_AES_128_GCM_SHA256"
PROXY_CPU = "0"  # --cpus may change both
LOAD_CPU = "1"
WORKERS = 1  # --workers: each proxy's; also the load generators run side by side
# What --workers 2 can measure: the phases whose load can be split over
# parallel generators (issue 14, part 3: do workers contend?).
MULTI_WORKER_PHASES = ["floor", "full_ecdsa", "full_rsa", "resumed", "bulk", "req1k"]
MAX_CONNS = 9000  # every proxy: room for 5,000+ clients; 2 fds each < 20,000
APT_PACKAGES = ["haproxy", "hitch", "nginx-light", "libnginx-mod-stream",
                "nghttp2-client", "wrk", "gnuplot-nox", "openssl"]
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A phase or a setup step failed; the message says what and why."""


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)



def tail(text, n=8):
    return " | ".join(text.strip().splitlines()[-n:])



def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def write_file(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
