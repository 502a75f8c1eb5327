"""What the soak test's three kinds of process share (part of soak.py): the
time scale, the mix of connection kinds over the slots, and the raised
descriptor limit.
"""

import os
import random
import resource

HERE = os.path.dirname(os.path.abspath(__file__))
SCALE = float(os.environ.get("TERN_TIMEOUT_SCALE", "1") or "1")

# Fractions of the slots; echo takes the rest.
MIX = [("rst", 0.08), ("slowread", 0.06), ("slowloris", 0.04), ("garbage", 0.04),
       ("halfclose", 0.08), ("idle", 0.10)]
KINDS = ["echo"] + [k for k, _ in MIX]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def slot_kinds(n):
    """Deterministic kind per slot index, the fractions above."""
    kinds = []
    for kind, frac in MIX:
        kinds += [kind] * int(round(n * frac))
    kinds += ["echo"] * (n - len(kinds))
    random.Random(7).shuffle(kinds)
    return kinds
