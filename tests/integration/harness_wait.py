"""Time bounds for tern's integration tests (part of harness.py, which
re-exports every name here).

Every wait is bounded: wait_for() polls a condition until a deadline and
fails the test with a message when the deadline passes. Upper bounds are
multiplied by TERN_TIMEOUT_SCALE (default 1) so that the suite passes under
AddressSanitizer; lower bounds (a timeout must not fire early) are not
scaled.
"""

import os
import threading
import time

SCALE = float(os.environ.get("TERN_TIMEOUT_SCALE", "1") or "1")


def scaled(seconds):
    """An upper bound in seconds, stretched for slow (sanitizer) builds."""
    return seconds * SCALE



# ---------------------------------------------------------------- waiting

class WaitTimeout(AssertionError):
    pass


def wait_for(cond, timeout, what="condition", interval=0.02):
    """Polls cond() until it returns a true value, which is returned.
    Raises WaitTimeout (an AssertionError) after `timeout` seconds (scaled)."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout("timed out after %.1fs waiting for %s" % (scaled(timeout), what))
        time.sleep(interval)


def wait_stalled(read_value, stall=1.0, timeout=20, what="progress to stall"):
    """Waits until read_value() stays the same for `stall` seconds; returns
    that value. Bounded by timeout (scaled)."""
    deadline = time.monotonic() + scaled(timeout)
    value, since = read_value(), time.monotonic()
    while True:
        time.sleep(0.05)
        now = time.monotonic()
        v = read_value()
        if v != value:
            value, since = v, now
        elif now - since >= stall:
            return value
        if now > deadline:
            raise WaitTimeout("timed out waiting for %s (still moving: %r)" % (what, value))


class PeakWatch:
    """A thread that polls read_value() every `interval` seconds while the
    with-block runs and keeps the largest value seen in .peak (0 before
    the first; a read that raises ends the polling)."""

    def __init__(self, read_value, interval=0.02):
        self.read_value, self.interval = read_value, interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.read_value())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


def run_threads(target, args_list, timeout, what="client threads"):
    """Runs target(*args) in one thread each; returns results in order.
    Re-raises the first exception; fails when a thread outlives timeout."""
    results = [None] * len(args_list)
    errors = []

    def wrap(i, args):
        try:
            results[i] = target(*args)
        except BaseException as e:  # reported below
            errors.append((i, e))
    threads = [threading.Thread(target=wrap, args=(i, a), daemon=True)
               for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + scaled(timeout)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = sum(t.is_alive() for t in threads)
    if errors:
        i, e = errors[0]
        raise AssertionError("%s: %d failed; first (#%d): %r" % (what, len(errors), i, e)) from e
    if alive:
        raise AssertionError("%s: %d still running after %.0fs" % (what, alive, scaled(timeout)))
    return results
