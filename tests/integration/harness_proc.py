"""The tern binary the integration tests run, and what they read of its
processes: sanitizer reports, RSS (part of harness.py, which re-exports
every name here).

The binary: env TERN_BIN, or `--tern PATH` on the command line (harness.main
calls set_tern_bin), or ../../build/tern relative to this file.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))

_tern_bin = os.environ.get("TERN_BIN") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "tern"))


def tern_bin():
    return _tern_bin


def set_tern_bin(path):
    """Makes tern_bin() return `path` from now on (harness.main's --tern)."""
    global _tern_bin
    _tern_bin = path


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer")


def process_rss(pid):
    """Resident set size of a process in bytes (Linux)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def binary_is_sanitized(path=None):
    """True when the binary was built with ASan or TSan: its memory use then
    says little about the program's own (shadow memory, quarantine)."""
    with open(path or tern_bin(), "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data
