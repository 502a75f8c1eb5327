"""Shared pieces of tern's stress scenarios (tests/stress/scenario_*.py).

A scenario is a unittest file like the integration tests (it imports
harness from tests/integration, so TernTestCase, Tern, the backends and the
bounded waits are the same), run by `tests/stress/run`. It differs in two
ways: it prints figures (figure()), which the runner collects into one
table, and it has a short form (CI) and a long form (TERN_STRESS_LONG=1,
`run --long`, figures quoted in docs/overload.md).

Every scenario measures a bystander (bystander.py) before and during its
fault and reports it with check_bystander().
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

from bystander import Bystander, measure_baseline, stall_beyond_baseline_ms  # noqa: E402,F401

LONG = os.environ.get("TERN_STRESS_LONG") == "1"
STALL_BOUND_MS = 100.0  # issue 16: beyond the bystander's own baseline


def pick(short, long):
    """The short form's value in CI, the long form's with --long."""
    return long if LONG else short


def figure(scenario, name, value, unit=""):
    """One figure line for the runner: 'figure: SCENARIO NAME VALUE UNIT'."""
    if isinstance(value, float):
        value = "%.1f" % value
    print("figure: %s %s %s %s" % (scenario, name, value, unit), flush=True)


def check_bystander(tc, scenario, baseline, during, bound_ms=STALL_BOUND_MS, why=None):
    """Prints the bystander figures of a scenario and asserts its slowest
    request stayed within bound_ms of the baseline's slowest and that none
    failed. why: when docs/overload.md explains a larger bound, the reason (printed)."""
    stall = stall_beyond_baseline_ms(baseline, during)
    figure(scenario, "bystander_baseline_max", baseline["max_ms"], "ms")
    figure(scenario, "bystander_median", during["median_ms"], "ms")
    figure(scenario, "bystander_max", during["max_ms"], "ms")
    figure(scenario, "bystander_stall_beyond_baseline", stall, "ms")
    figure(scenario, "bystander_failures", during["failures"], "")
    if why:
        print("note: %s: bystander bound %.0f ms: %s" % (scenario, bound_ms, why), flush=True)
    tc.assertGreater(during["requests"], 0, "the bystander made no request")
    tc.assertEqual(during["failures"], 0, "bystander requests failed during %s" % scenario)
    # Sanitizer builds stretch every time; the bound stretches with them.
    from harness import SCALE
    tc.assertLessEqual(stall, bound_ms * SCALE,
                       "%s stalled the bystander %.0f ms beyond its baseline" % (scenario, stall))
    return stall
