"""What bench/load/run reads of the host and of a proxy's process tree from
/proc: CPU time, run time, context switches, RSS, TCP segments, softirqs,
established sockets, and the host's TCP congestion control.
"""

import os
import re
import time


def proc_tree(root):
    """The pid `root` and all its descendants, from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_cpu_ticks(root):
    """utime+stime+cutime+cstime summed over the process tree (each process's
    figures already include all its threads)."""
    total = 0
    for pid in proc_tree(root):
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is field 3 (state): utime is field 14 -> index 11.
        total += sum(int(x) for x in fields[11:15])
    return total


def tree_thread_sum(root, name, value):
    """Sums value(text) over /proc/PID/task/TID/<name> of the tree's live
    threads; threads that exited during a phase are missing from it."""
    total = 0
    for pid in proc_tree(root):
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/%s" % (pid, tid, name)) as f:
                    total += value(f.read())
            except (OSError, ValueError, IndexError):
                continue
    return total


def tree_sched_ns(root):
    """Run time in ns of the tree's live threads (schedstat), a finer-grained
    cross-check of the tick counts."""
    return tree_thread_sum(root, "schedstat", lambda text: int(text.split()[0]))


def tree_voluntary_switches(root):
    """Voluntary context switches of the tree's live threads: how often the
    proxy went to sleep waiting for work."""
    def switches(text):
        return int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", text, re.M).group(1))
    return tree_thread_sum(root, "status", switches)


def tcp_out_segments():
    """The host's TCP segments sent (/proc/net/snmp OutSegs): in this
    harness all of them are on loopback, between the load, the proxy and
    the backend."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("OutSegs")])


def softirqs(cpus):
    """The softirqs each kind has run on the CPUs `cpus` ("0" or "0,1")
    so far, summed (/proc/softirqs)."""
    out = {}
    with open("/proc/softirqs") as f:
        header = f.readline().split()
        cols = [header.index("CPU%s" % c) for c in cpus.split(",")]
        for line in f:
            parts = line.split()
            if len(parts) > max(cols) + 1:
                out[parts[0].rstrip(":")] = sum(int(parts[c + 1]) for c in cols)
    return out


TCP_CC = "/proc/sys/net/ipv4/tcp_congestion_control"


def set_tcp_cc(name):
    """The host's TCP congestion control, for sockets made from now on."""
    with open(TCP_CC, "w") as f:
        f.write(name + "\n")


def tree_rss_kib(root):
    total = 0
    for pid in proc_tree(root):
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def settle_cpu(root, window=0.1, bound=2.0):
    """Waits (at most `bound` s) until the tree used no CPU for `window` s,
    so that work still draining after the load generator exits is counted;
    returns the tick count then."""
    deadline = time.monotonic() + bound
    last = tree_cpu_ticks(root)
    while time.monotonic() < deadline:
        time.sleep(window)
        now = tree_cpu_ticks(root)
        if now == last:
            return now
        last = now
    return last


def count_established(remote_port):
    """ESTABLISHED TCP sockets on this host whose remote port is
    `remote_port` (from /proc/net/tcp and tcp6)."""
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "01" and int(parts[2].rsplit(":", 1)[1], 16) == remote_port:
                        n += 1
        except OSError:
            continue
    return n
