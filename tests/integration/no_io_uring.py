#!/usr/bin/env python3
"""Runs a command with io_uring refused, as Docker's (25+) and containerd's
(2.0+) default seccomp profiles refuse it:

    python3 tests/integration/no_io_uring.py build/tern --io auto ...

installs a seccomp filter (seccomp_profile.py) that fails io_uring_setup,
io_uring_enter and io_uring_register with EPERM and allows every other
system call, then execs the command. x86_64 only (exit 77 elsewhere,
which test_io.py turns into a skip)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seccomp_profile  # noqa: E402

SUPPORTED = seccomp_profile.SUPPORTED

# What the runtimes' defaults do to io_uring, and nothing else.
PROFILE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["io_uring_setup", "io_uring_enter", "io_uring_register"],
                  "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: no_io_uring.py COMMAND [ARGS...]")
    seccomp_profile.run(PROFILE, sys.argv[1:])


if __name__ == "__main__":
    main()
