"""The soak test's echo backend (soak.py --role backend): asyncio in a
process of its own, printing its port, running until stdin closes.
"""

import asyncio
import sys

from soak_common import raise_nofile


async def _echo(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
            await writer.drain()
        # Wait (bounded) for tern to close its side.
        try:
            await asyncio.wait_for(reader.read(1), 30)
        except (asyncio.TimeoutError, OSError):
            pass
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.transport.abort() if writer.transport.is_closing() else writer.close()


async def _backend_main():
    server = await asyncio.start_server(_echo, "127.0.0.1", 0, backlog=4096,
                                        limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()
    # Run until stdin closes (the parent exited or closed it).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    server.close()


def role_backend():
    raise_nofile()
    asyncio.run(_backend_main())
