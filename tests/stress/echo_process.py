"""An echo backend in a process of its own, for the stress scenarios: one
asyncio loop, so thousands of idle backend connections cost neither the
scenario's file descriptors (the test process holds the client ends) nor
a thread each (harness_backends.EchoBackend is a thread per connection).

    python3 echo_process.py [PORT [reuse-port]]
                                 # prints "port N" once listening, echoes
                                 # until stdin closes; a line "unlisten"
                                 # on stdin closes the listening socket
                                 # (the connections stay) and is answered
                                 # "unlistened"

EchoProcess(tc).addr is the "127.0.0.1:N" for tern's --backend; the
process ends with the test (tc.popen's cleanup) or when stdin closes.
The soak test's backend (tests/soak/soak_backend.py) runs serve() too.

Handing a port over: two processes listening on one port with
SO_REUSEPORT share its new connections; once the first one unlistens,
every new connection goes to the second, while the first keeps (and
echoes on) the connections it has. scenario_idle_conns gives its
bystander a backend of its own that way.
"""

import asyncio
import os
import select
import subprocess
import sys
import time


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


async def serve(port, reuse_port):
    server = await asyncio.start_server(_echo, "127.0.0.1", port, backlog=4096,
                                        limit=1 << 20, reuse_port=reuse_port)
    print("port %d" % server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    # Ends when the parent closes our stdin (or dies).
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        if line.strip() == "unlisten":
            server.close()  # the listening socket only (Python 3.11)
            print("unlistened", flush=True)


class EchoProcess:
    """Starts echo_process.py through tc.popen (killed at cleanup) and
    reads its port. port, reuse_port: listen on that port (0: one the
    kernel picks) with SO_REUSEPORT."""

    def __init__(self, tc, port=0, reuse_port=False):
        args = [str(port)] + (["reuse-port"] if reuse_port else [])
        self.proc = tc.popen([sys.executable, os.path.abspath(__file__)] + args,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            raise AssertionError("echo process did not start: %r" % line)
        self.port = int(line[1])
        self.addr = "127.0.0.1:%d" % self.port

    def unlisten(self, timeout=10):
        """Closes the listening socket and waits (at most timeout seconds)
        until it is closed; the connections stay."""
        self.proc.stdin.write("unlisten\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], deadline - time.monotonic())
            if ready:
                line = self.proc.stdout.readline()
                if line.strip() == "unlistened":
                    return
                raise AssertionError("echo process: unexpected %r" % line)
        raise AssertionError("echo process did not unlisten within %.0f s" % timeout)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0,
                       len(sys.argv) > 2 and sys.argv[2] == "reuse-port"))
