"""An echo backend in a process of its own, for the stress scenarios: one
asyncio loop, so thousands of idle backend connections cost neither the
scenario's file descriptors (the test process holds the client ends) nor
a thread each (harness_backends.EchoBackend is a thread per connection).

    python3 echo_process.py      # prints "port N" once listening, echoes
                                 # until stdin closes

EchoProcess(tc).addr is the "127.0.0.1:N" for tern's --backend; the
process ends with the test (tc.popen's cleanup) or when stdin closes.
"""

import asyncio
import os
import subprocess
import sys


async def _echo(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _serve():
    server = await asyncio.start_server(_echo, "127.0.0.1", 0, backlog=4096)
    print("port %d" % server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    # Ends when the parent closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)


class EchoProcess:
    """Starts echo_process.py through tc.popen (killed at cleanup) and
    reads its port."""

    def __init__(self, tc):
        self.proc = tc.popen([sys.executable, os.path.abspath(__file__)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            raise AssertionError("echo process did not start: %r" % line)
        self.addr = "127.0.0.1:%s" % line[1]


if __name__ == "__main__":
    asyncio.run(_serve())
