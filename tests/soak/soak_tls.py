"""TLS for the soak test's clients: ssl.MemoryBIO over a non-blocking
socket, driven by asyncio, so close_notify, TCP FIN and RST are each under
the test's control.
"""

import asyncio
import ssl
import time


class Closed(Exception):
    pass


class AsyncTLS:
    """TLS over ssl.MemoryBIO on a non-blocking socket, driven by asyncio."""

    def __init__(self, loop, sock, ctx):
        self.loop, self.sock = loop, sock
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inb, self.outb, server_hostname="localhost")
        self.send_lock = asyncio.Lock()
        self.eof = False

    async def flush(self):
        async with self.send_lock:
            data = self.outb.read()
            if data:
                await self.loop.sock_sendall(self.sock, data)

    async def _fill(self, n=65536):
        data = await self.loop.sock_recv(self.sock, n)
        if not data:
            self.eof = True
            self.inb.write_eof()
            return False
        self.inb.write(data)
        return True

    async def handshake(self):
        self.first_reply_s = None
        while True:
            try:
                self.obj.do_handshake()
                await self.flush()
                return
            except ssl.SSLWantReadError:
                await self.flush()
                ts = time.monotonic()
                if not await self._fill():
                    raise Closed("eof during handshake")
                if self.first_reply_s is None:
                    self.first_reply_s = time.monotonic() - ts

    async def send(self, data):
        self.obj.write(data)
        await self.flush()

    async def recv(self, n=65536, raw=65536):
        """Plaintext; b"" on close_notify or EOF."""
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                if self.eof:
                    return b""
                if not await self._fill(raw):
                    continue
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLEOFError:
                return b""

    async def close_notify(self):
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except ssl.SSLError:
            pass
        await self.flush()
