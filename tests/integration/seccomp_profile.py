#!/usr/bin/env python3
"""Runs a command under a seccomp profile written in the format Docker's
`--security-opt seccomp=FILE` and Kubernetes' `seccompProfile: Localhost`
read (the OCI runtime's JSON), the way the container runtime would apply
it:

    python3 tests/integration/seccomp_profile.py [--kill-unlisted|--log-unlisted] PROFILE COMMAND [ARGS...]

builds a BPF filter from the profile's defaultAction (with
defaultErrnoRet) and its "syscalls" rules, installs it after
PR_SET_NO_NEW_PRIVS and execs the command, which inherits it (a filter
survives execve and cannot be removed). No privilege needed.

--kill-unlisted: a call the profile does not name kills the process
(SIGSYS) instead of the profile's default, so that a test finds a call
missing from deploy/seccomp/tern.json by a crash, not by a quiet EPERM
that tern might survive.

--log-unlisted: a call the profile does not name is allowed and logged
by the kernel (`dmesg | grep 'type=1326'`, syscall=NR), to find what a
change made tern call: run the suite with a TERN_BIN that execs tern
this way, then add the names to the profile.

What it understands: defaultAction and rule actions SCMP_ACT_ALLOW,
SCMP_ACT_ERRNO (errnoRet, default EPERM) and SCMP_ACT_KILL_PROCESS; rules
without "args" or "includes"/"excludes" (tern's profile has none; this
refuses what it cannot apply rather than apply less). x86_64 only: the
numbers come from this machine's <asm/unistd_64.h> (linux-libc-dev);
exit 77 elsewhere, which the tests turn into a skip. A process of its
own rather than subprocess's preexec_fn, which is unsafe in a test
process with threads. Python standard library only (ctypes)."""

import ctypes
import json
import os
import platform
import re
import sys

EXIT_UNSUPPORTED = 77  # the automake convention for "skipped"
UNISTD_64 = ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
             "/usr/include/asm/unistd_64.h")
SUPPORTED = platform.machine() == "x86_64" and any(os.path.exists(p) for p in UNISTD_64)

# linux/prctl.h, linux/seccomp.h, linux/audit.h, linux/filter.h
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ALLOW = 0x7fff0000
SECCOMP_RET_LOG = 0x7ffc0000
SECCOMP_RET_ERRNO = 0x00050000
AUDIT_ARCH_X86_64 = 0xc000003e
X32_SYSCALL_BIT = 0x40000000
EPERM = 1
BPF_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JMP_JEQ_K = 0x05 | 0x10 | 0x00  # BPF_JMP | BPF_JEQ | BPF_K
BPF_JMP_JGE_K = 0x05 | 0x30 | 0x00  # BPF_JMP | BPF_JGE | BPF_K
BPF_RET_K = 0x06 | 0x00            # BPF_RET | BPF_K
# struct seccomp_data: int nr; __u32 arch; ...
OFFSET_NR = 0
OFFSET_ARCH = 4


def syscall_numbers():
    """{name: number} for x86_64, from the kernel headers."""
    for path in UNISTD_64:
        if os.path.exists(path):
            with open(path) as f:
                return {m.group(1): int(m.group(2)) for m in
                        re.finditer(r"^#define __NR_(\w+)\s+(\d+)", f.read(), re.M)}
    raise OSError("no <asm/unistd_64.h> (install linux-libc-dev)")


def action_value(action, errno_ret):
    if action == "SCMP_ACT_ALLOW":
        return SECCOMP_RET_ALLOW
    if action == "SCMP_ACT_ERRNO":
        return SECCOMP_RET_ERRNO | (EPERM if errno_ret is None else errno_ret)
    if action in ("SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL"):
        return SECCOMP_RET_KILL_PROCESS
    raise ValueError("unsupported action %r" % action)


def program(profile, unlisted=None, numbers=None):
    """The filter's instructions, (code, jt, jf, k) each: another
    architecture or the x32 ABI gets the default (Docker lists only its
    own architectures, so the same); then one compare-and-return pair per
    named call, which needs no jump longer than one instruction however
    many calls the profile names; then the default. A name this kernel
    does not know is skipped, as runc skips it."""
    numbers = numbers if numbers is not None else syscall_numbers()
    default = unlisted if unlisted is not None else action_value(
        profile["defaultAction"], profile.get("defaultErrnoRet"))
    rules = []
    for rule in profile.get("syscalls", []):
        unsupported = set(rule) - {"names", "action", "errnoRet", "comment"}
        if unsupported:
            raise ValueError("rule %r: unsupported keys %s" % (rule.get("names"),
                                                               sorted(unsupported)))
        value = action_value(rule["action"], rule.get("errnoRet"))
        for name in rule["names"]:
            if name in numbers:
                rules.append((numbers[name], value))
    insns = [(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
             (BPF_JMP_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
             (BPF_RET_K, 0, 0, default),
             (BPF_LD_W_ABS, 0, 0, OFFSET_NR),
             (BPF_JMP_JGE_K, 0, 1, X32_SYSCALL_BIT),
             (BPF_RET_K, 0, 0, default)]
    for nr, value in rules:
        insns += [(BPF_JMP_JEQ_K, 0, 1, nr), (BPF_RET_K, 0, 0, value)]
    insns.append((BPF_RET_K, 0, 0, default))
    return insns


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def install(profile, unlisted=None):
    """Installs the profile's filter on the calling process (and what it
    execs); unlisted: the action for calls it does not name, None for
    the profile's default."""
    insns = program(profile, unlisted)
    filters = (SockFilter * len(insns))(*[SockFilter(*i) for i in insns])
    prog = SockFprog(len(insns), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def run(profile, argv, unlisted=None):
    """Installs profile and execs argv; never returns."""
    if not SUPPORTED:
        sys.stderr.write("seccomp_profile.py: x86_64 with <asm/unistd_64.h> only (this is "
                         "%s)\n" % platform.machine())
        sys.exit(EXIT_UNSUPPORTED)
    install(profile, unlisted)
    os.execv(argv[0], argv)


def main():
    args = sys.argv[1:]
    modes = {"--kill-unlisted": SECCOMP_RET_KILL_PROCESS, "--log-unlisted": SECCOMP_RET_LOG}
    unlisted = modes.get(args[0]) if args else None
    if unlisted is not None:
        args = args[1:]
    if len(args) < 2:
        sys.exit("usage: seccomp_profile.py [--kill-unlisted|--log-unlisted] PROFILE COMMAND "
                 "[ARGS...]")
    with open(args[0]) as f:
        profile = json.load(f)
    run(profile, args[1:], unlisted)


if __name__ == "__main__":
    main()
