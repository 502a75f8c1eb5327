#!/usr/bin/env python3
"""Open COUNT TLS connections through a proxy and hold them idle.

Part of bench/load/run (the idle-RSS phase); Python standard library only.
Each connection completes a TLS 1.3 handshake and one HTTP/1.1 keep-alive
request (GET PATH, whose body is read to its Content-Length), so that the
proxy has also opened and used its backend connection. Handshakes run at
most --concurrency at a time, so the proxy's listen backlog never
overflows.

Protocol with the parent, one line each on stdout:
  ESTABLISHED <ok> <failed> <first error>   once every attempt has ended
then the client holds the connections until a line (or EOF) arrives on
stdin, closes them all, prints CLOSED and exits. Exit 0 only if every
connection was established.
"""

import argparse
import asyncio
import re
import resource
import ssl
import sys


async def open_one(args, ctx, sem, request):
    async with sem:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(args.host, args.port, ssl=ctx,
                                    server_hostname="localhost"),
            args.timeout)
        try:
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                          args.timeout)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError("status line %r" % head.split(b"\r\n")[0])
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if not m:
                raise RuntimeError("no Content-Length")
            await asyncio.wait_for(reader.readexactly(int(m.group(1))),
                                   args.timeout)
        except BaseException:
            writer.close()
            raise
        return writer


async def main_async(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    sem = asyncio.Semaphore(args.concurrency)
    request = ("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % args.path).encode()
    results = await asyncio.gather(
        *(open_one(args, ctx, sem, request) for _ in range(args.count)),
        return_exceptions=True)
    writers = [r for r in results if isinstance(r, asyncio.StreamWriter)]
    errors = [r for r in results if not isinstance(r, asyncio.StreamWriter)]
    first = repr(errors[0]).replace("\n", " ") if errors else "-"
    print("ESTABLISHED %d %d %s" % (len(writers), len(errors), first), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    for w in writers:
        w.close()
    await asyncio.gather(*(w.wait_closed() for w in writers),
                         return_exceptions=True)
    print("CLOSED", flush=True)
    return 0 if not errors else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--path", default="/small")
    ap.add_argument("--timeout", type=float, default=20.0,
                    help="seconds for each connect, handshake and response")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.count + 100 > hard:
        sys.exit("idle_conns: %d connections need more than the %d descriptors "
                 "allowed" % (args.count, hard))
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
