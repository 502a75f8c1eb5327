#!/usr/bin/env python3
"""A plaintext backend for the first_response phase of bench/load/run:

  banner  on every connection, one line at once (the server speaks first,
          as SMTP, FTP or a database greeting do), then it reads and drops
          whatever comes until the peer closes;
  silent  it never writes: it reads and drops until the peer closes (a
          backend that has not answered yet).

Python standard library only, one thread and a selector. Prints READY once
listening; runs until killed.
"""

import argparse
import selectors
import socket
import sys

BANNER = b"220 bench banner\r\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("banner", "silent"), required=True)
    args = ap.parse_args()

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.port))
    lsock.listen(4096)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    print("READY", flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is lsock:
                try:
                    conn, _ = lsock.accept()
                except BlockingIOError:
                    continue
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if args.mode == "banner":
                    conn.sendall(BANNER)  # a fresh socket: room for one line
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ)
                continue
            try:
                b = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                b = b""
            if not b:
                sel.unregister(s)
                s.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
