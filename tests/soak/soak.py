#!/usr/bin/env python3
"""Soak test: many concurrent TLS connections of mixed behaviour through the
real tern binary while reloads and `tickets all` run, then checks that every
verified transfer was intact, tern is alive, its descriptors are back to the
baseline, its RSS is within a bound of the baseline and its counters agree
with what the clients saw.

Python 3 standard library only. Three kinds of process, so none needs more
than ~10,000 descriptors (the hard limit here is 20,000; each raises its soft
limit to the hard one, and tern is started with the same raise):
- this one: starts everything, drives the control socket (reloads, tickets),
  samples tern's fd count and RSS, checks, prints the summary;
- one echo backend (asyncio) in its own process (`--role backend`);
- --client-procs client processes (`--role client`), each running its share
  of the connection slots on one asyncio loop, TLS over ssl.MemoryBIO so
  close_notify, TCP FIN and RST are each under the test's control.

Every slot keeps one connection of its kind open, session after session,
until the end of the run (so the number of concurrent connections stays at
--conns once ramped up):
  echo       random chunks, SHA-256 of everything sent == of everything echoed
  slowread   a writer and a slow reader at once (backpressure), verified too
  halfclose  send, then close_notify (or a bare TCP FIN), read the echo to
             the end, verified
  rst        send some, read some, then SO_LINGER 0 + close mid-stream
  slowloris  a real ClientHello, one byte every 0.5 s: tern must cut it at
             --handshake-timeout
  garbage    non-TLS bytes: tern must close
  idle       handshake, then silence until the end of the run
Client source addresses are spread over 127.0.0.2..127.0.0.254.

Every wait is bounded; sleeps only pace traffic.

  python3 tests/soak/soak.py --tern build/tern                # the long form
  python3 tests/soak/soak.py --conns 1500 --seconds 15 --reloads 5

The parts: soak_driver.py (this process's role), soak_backend.py,
soak_client.py (with soak_tls.py), soak_probe.py (what the driver reads of
tern) and soak_common.py.
"""

import argparse
import os
import sys

from soak_backend import role_backend
from soak_client import role_client
from soak_common import HERE
from soak_driver import driver


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=9000)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--reloads", type=int, default=20)
    ap.add_argument("--tern", default=os.environ.get("TERN_BIN") or os.path.join(
        HERE, "..", "..", "build", "tern"))
    ap.add_argument("--io", choices=("auto", "uring", "epoll"),
                    default=os.environ.get("TERN_TEST_IO") or None,
                    help="tern's --io, checked against what stats says runs (default: "
                         "$TERN_TEST_IO, else tern's own default)")
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--ramp", type=int, default=None,
                    help="seconds over which the slots start (default: half of --seconds, "
                         "at most 30)")
    ap.add_argument("--tickets-every", type=float, default=5.0,
                    help="seconds between `tickets all 1` requests")
    ap.add_argument("--rss-watch", type=float, default=15.0,
                    help="seconds to watch RSS fall once the connections are gone")
    ap.add_argument("--malloc-conf", default="background_thread:true,dirty_decay_ms:1000,"
                    "muzzy_decay_ms:0",
                    help="MALLOC_CONF for tern's jemalloc: by default freed pages go back to "
                         "the kernel within ~1 s even while tern is idle, so RSS after the run "
                         "shows what tern still holds rather than what jemalloc caches (with "
                         "jemalloc's defaults, '' here, 60..115 MiB stayed cached after runs "
                         "of 1,500 and 9,000 connections); sanitizer builds ignore it")
    ap.add_argument("--rss-bound-mib", type=int, default=64,
                    help="RSS after the run may exceed the baseline by this much")
    ap.add_argument("--role", choices=("driver", "backend", "client"), default="driver")
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--port", type=int)
    ap.add_argument("--ca")
    ap.add_argument("--t0", type=float)
    args = ap.parse_args()
    if args.ramp is None:
        args.ramp = min(30, max(1, args.seconds // 2))
    if args.role == "backend":
        role_backend()
        return 0
    if args.role == "client":
        role_client(args)
        return 0
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
