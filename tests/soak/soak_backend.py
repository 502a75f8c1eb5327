"""The soak test's echo backend (soak.py --role backend): the stress
scenarios' echo process (tests/stress/echo_process.py) with this
process's descriptor limit raised first; it prints "port N" and runs until
stdin closes.
"""

import asyncio
import os
import sys

from soak_common import HERE, raise_nofile

sys.path.insert(0, os.path.join(HERE, "..", "stress"))
from echo_process import serve  # noqa: E402


def role_backend():
    raise_nofile()
    asyncio.run(serve(0, False))
