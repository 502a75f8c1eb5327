#!/usr/bin/env python3
"""Runs a command with io_uring refused, as Docker's (25+) and containerd's
(2.0+) default seccomp profiles refuse it:

    python3 tests/integration/no_io_uring.py build/tern --io auto ...

installs a seccomp filter that fails io_uring_setup, io_uring_enter and
io_uring_register with EPERM and allows every other system call, then
execs the command, which inherits the filter (seccomp(2): a filter
survives execve and cannot be removed). No privilege needed: the filter
is installed after PR_SET_NO_NEW_PRIVS. A process of its own rather than
subprocess's preexec_fn, which is unsafe in a test process with threads
(the backends). x86_64 only (exit 77 elsewhere, which test_io.py turns
into a skip): the system call numbers and the audit architecture are
x86_64's. Python standard library only (ctypes)."""

import ctypes
import os
import platform
import sys

SUPPORTED = platform.machine() == "x86_64"
EXIT_UNSUPPORTED = 77  # the automake convention for "skipped"

# linux/prctl.h, linux/seccomp.h, linux/audit.h, linux/filter.h
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7fff0000
SECCOMP_RET_ERRNO = 0x00050000
AUDIT_ARCH_X86_64 = 0xc000003e
EPERM = 1
BPF_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JMP_JEQ_K = 0x05 | 0x10 | 0x00  # BPF_JMP | BPF_JEQ | BPF_K
BPF_RET_K = 0x06 | 0x00            # BPF_RET | BPF_K
# struct seccomp_data: int nr; __u32 arch; ...
OFFSET_NR = 0
OFFSET_ARCH = 4
# arch/x86/entry/syscalls/syscall_64.tbl
IO_URING_SYSCALLS = (425, 426, 427)  # io_uring_setup, io_uring_enter, io_uring_register


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def program():
    """Another architecture's calls (a 32-bit int 0x80) are allowed: their
    numbers mean other calls. For x86_64: each io_uring call jumps to the
    EPERM return, anything else falls through to allow."""
    n = len(IO_URING_SYSCALLS)
    insns = [(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
             (BPF_JMP_JEQ_K, 0, n + 1, AUDIT_ARCH_X86_64),  # not x86_64: to allow
             (BPF_LD_W_ABS, 0, 0, OFFSET_NR)]
    for i, nr in enumerate(IO_URING_SYSCALLS):
        insns.append((BPF_JMP_JEQ_K, n - i, 0, nr))  # to the EPERM return
    insns += [(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
              (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM)]
    return insns


def install():
    """Installs the filter on the calling process (and what it execs)."""
    insns = program()
    filters = (SockFilter * len(insns))(*[SockFilter(*i) for i in insns])
    prog = SockFprog(len(insns), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: no_io_uring.py COMMAND [ARGS...]")
    if not SUPPORTED:
        sys.stderr.write("no_io_uring.py: x86_64 only (this is %s)\n" % platform.machine())
        sys.exit(EXIT_UNSUPPORTED)
    install()
    os.execv(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
