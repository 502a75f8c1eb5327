"""The tern binary the integration tests run, and what they read of its
processes: sanitizer reports, RSS, descriptors, CPU time; and one of its threads stopped on
purpose, a wedged worker (part of harness.py, which re-exports every name
here).

The binary: env TERN_BIN, or `--tern PATH` on the command line (harness.main
calls set_tern_bin), or ../../build/tern relative to this file; its engine:
env TERN_TEST_IO (tern_command); its sandbox: env TERN_TEST_SECCOMP
(sandbox_launcher).
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

_tern_bin = os.environ.get("TERN_BIN") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "tern"))


def tern_bin():
    return _tern_bin


def test_io():
    """TERN_TEST_IO: the I/O engine (--io) every tern the tests start runs,
    so CI runs the suite once per engine (tests/integration/CMakeLists.txt:
    integ_epoll_*); empty or unset: tern's default, auto."""
    return os.environ.get("TERN_TEST_IO", "")


def sandbox_launcher():
    """TERN_TEST_SECCOMP: a seccomp profile (deploy/seccomp/tern.json)
    every tern the tests start, `tern ctl` included, runs under, as a
    container runtime would apply it, except that a call the profile does
    not name kills tern (seccomp_profile.py --kill-unlisted), so that the
    suite finds any call missing from it. The argv to put in front of
    tern's (after a test's own launcher); [] when unset."""
    profile = os.environ.get("TERN_TEST_SECCOMP", "")
    if not profile:
        return []
    return [sys.executable, os.path.join(HERE, "seccomp_profile.py"), "--kill-unlisted",
            os.path.abspath(profile)]


def tern_command(args):
    """The argv that runs tern with args: the binary, `--io ENGINE` from
    TERN_TEST_IO unless args choose an engine themselves or run a
    subcommand (ctl, keys), then args. First, not last: a test may end
    its args with a flag that lacks its value, on purpose. Every tern the
    harness starts goes through here."""
    args = list(args)
    engine = []
    if test_io() and not any(a == "--io" or a.startswith("--io=") for a in args) \
            and not (args and args[0] in ("ctl", "keys")):
        engine = ["--io", test_io()]
    return [tern_bin()] + engine + args


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


def open_fds(pid):
    """The number of file descriptors a process holds (Linux)."""
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_seconds(pid):
    """utime + stime of a process (all its threads) so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the name: state is field 3, utime field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_share(pid, seconds):
    """The share of one core the process used over `seconds` (a
    measuring window, not a wait for anything)."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def binary_is_sanitized(path=None):
    """True when the binary was built with ASan or TSan: its memory use then
    says little about the program's own (shadow memory, quarantine)."""
    with open(path or tern_bin(), "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


# ---------------------------------------------------- stopping one thread

_PTRACE_DETACH = 17
_PTRACE_SEIZE = 0x4206
_PTRACE_INTERRUPT = 0x4207
_WALL = 0x40000000


def thread_id(pid, name):
    """The TID of the thread of process pid whose name (comm) is name, e.g.
    tern's worker 1, "tern-w1"; fails when there is none."""
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() == name:
                    return int(tid)
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
    raise AssertionError("process %d has no thread named %s" % (pid, name))


class StoppedThread:
    """Stops one thread of another process, and only that one, the way a
    wedged thread stops (no signal reaches the process, its other threads
    run on): PTRACE_SEIZE and PTRACE_INTERRUPT on the TID, which stops the
    thread in a ptrace stop until resume() (PTRACE_DETACH) or until this
    process exits (the kernel detaches then). Raises unittest.SkipTest
    when the kernel refuses to trace (Yama ptrace_scope 3, a seccomp
    filter or a missing CAP_SYS_PTRACE around the tests), naming why."""

    def __init__(self, tid):
        import ctypes
        import errno
        import unittest
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.ptrace.restype = ctypes.c_long
        self._libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                                      ctypes.c_void_p]
        self.tid = tid
        self.stopped = False
        if self._libc.ptrace(_PTRACE_SEIZE, tid, None, None) != 0:
            err = ctypes.get_errno()
            if err in (errno.EPERM, errno.EACCES, errno.ENOSYS):
                raise unittest.SkipTest("cannot ptrace a thread here (%s): a wedged worker "
                                        "cannot be made" % os.strerror(err))
            raise AssertionError("PTRACE_SEIZE %d: %s" % (tid, os.strerror(err)))
        if self._libc.ptrace(_PTRACE_INTERRUPT, tid, None, None) != 0:
            raise AssertionError("PTRACE_INTERRUPT %d: %s" % (tid, os.strerror(ctypes.get_errno())))
        # Returns once the thread is in its ptrace stop: from here on it
        # runs no instruction.
        _, status = os.waitpid(tid, _WALL)
        if not os.WIFSTOPPED(status):
            raise AssertionError("thread %d did not stop: wait status %#x" % (tid, status))
        self.stopped = True

    def resume(self):
        """Lets the thread run again (once; then a no-op)."""
        if self.stopped:
            self.stopped = False
            # ESRCH: the process was killed meanwhile; nothing to resume.
            self._libc.ptrace(_PTRACE_DETACH, self.tid, None, None)
