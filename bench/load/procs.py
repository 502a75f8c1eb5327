"""The processes of a bench/load run: the servers it starts (each in its own
process group, all killed with the run) and the tools it runs to completion,
pinned to a CPU.
"""

import os
import resource
import signal
import subprocess

import common
from common import BenchError, log, tail


class Procs:
    """Every process this run starts, so that all of them die with it."""

    def __init__(self):
        self.live = []

    def start(self, argv, log_path, stdin=None, stdout=None, cpu=None):
        """Starts argv (pinned to `cpu` if given) in a process group of its
        own, stderr to `log_path`, which each start truncates."""
        if cpu is not None:
            argv = ["taskset", "-c", cpu] + argv
        logf = open(log_path, "wb")
        p = subprocess.Popen(argv, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                             stdout=stdout if stdout is not None else logf,
                             stderr=logf, start_new_session=True,
                             preexec_fn=raise_nofile)
        logf.close()
        self.live.append(p)
        return p

    def stop(self, p, grace=5.0):
        """SIGTERM to the process group, SIGKILL after `grace` seconds."""
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)  # stragglers of the group
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log("warning: process %d did not die" % p.pid)
        if p in self.live:
            self.live.remove(p)

    def stop_all(self):
        for p in list(self.live):
            self.stop(p, grace=2.0)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_tool(argv, timeout, cpu="load", check=True):
    """Runs a load generator or probe to completion on `cpu` (the load CPU
    by default, None: not pinned); returns its combined output. A timeout
    kills it and fails the phase."""
    if cpu == "load":
        cpu = common.LOAD_CPU
    if cpu is not None:
        argv = ["taskset", "-c", cpu] + argv
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout,
                           preexec_fn=raise_nofile)
    except subprocess.TimeoutExpired as e:
        raise BenchError("%s: no result within %ds" % (" ".join(argv), timeout)) from e
    out = r.stdout.decode("utf-8", "replace")
    if check and r.returncode != 0:
        raise BenchError("%s: exit %d: %s" % (" ".join(argv), r.returncode, tail(out)))
    return out
