"""The TLS client of tern's integration tests (part of harness.py, which
re-exports every name here): TLSClient, driven through ssl.MemoryBIO over a
non-blocking socket, its context, and a raw ClientHello.
"""

import select
import socket
import ssl
import time

from harness_wait import SCALE, scaled


# ----------------------------------------------------------------- client

def client_context(min_version=None, max_version=None, cafile=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    return ctx


class ClosedByPeer(Exception):
    pass


class TLSClient:
    """A TLS client driven through ssl.MemoryBIO over a non-blocking socket,
    in one thread: full duplex without deadlock, and exact control of
    close_notify versus TCP FIN.

    After a read loop ends, these tell how the server closed:
      got_close_notify: a TLS close_notify arrived
      got_eof:          the TCP stream ended (FIN)
      reset:            the TCP stream was reset
      ragged:           FIN without close_notify
    """

    def __init__(self, port, host="127.0.0.1", ctx=None, server_hostname="localhost",
                 connect_timeout=5, session=None, sock=None, prefix=b""):
        """sock: a socket connected already (port and host are then not
        used), for a test that wrote to it first; prefix: bytes sent ahead
        of the ClientHello in the same send (a PROXY header)."""
        if sock is None:
            sock = socket.create_connection((host, port), timeout=scaled(connect_timeout))
        self.sock = sock
        self.local_addr = self.sock.getsockname()
        self.sock.setblocking(False)
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = (ctx or client_context()).wrap_bio(self.inc, self.out, server_side=False,
                                                       server_hostname=server_hostname,
                                                       session=session)
        self.pending = bytes(prefix)  # bytes not yet sent: the prefix, then ciphertext
        self.got_close_notify = False
        self.got_eof = False
        self.reset = False
        self.ragged = False
        self.write_shut = False
        self.handshaken = False
        self.poll = select.poll()
        self.poll.register(self.sock, select.POLLIN)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def peer_text(self):
        """This client's address as tern's access log writes peer=."""
        host, port = self.local_addr[:2]
        return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)

    # --- low level
    def _flush(self):
        """Sends what ciphertext it can; True when everything went out."""
        if self.out.pending:
            self.pending += self.out.read()
        while self.pending:
            try:
                n = self.sock.send(self.pending)
            except BlockingIOError:
                return False
            except (BrokenPipeError, ConnectionResetError):
                self.reset = True
                self.pending = b""
                return True
            self.pending = self.pending[n:]
        return True

    def _fill(self):
        """Moves readable ciphertext from the socket to the BIO. Returns the
        number of bytes moved; 0 on EOF (then got_eof/reset are set)."""
        total = 0
        while True:
            try:
                data = self.sock.recv(262144)
            except BlockingIOError:
                return total
            except ConnectionResetError:
                self.reset = True
                self.inc.write_eof()
                return total
            if not data:
                self.got_eof = True
                self.inc.write_eof()
                return total
            self.inc.write(data)
            total += len(data)

    def _wait(self, want_write, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("TLS client timed out")
        events = (0 if self._eof_seen() else select.POLLIN) | (select.POLLOUT if want_write else 0)
        if not events:
            time.sleep(min(remaining, 0.01))
            return []
        self.poll.modify(self.sock, events)
        return self.poll.poll(min(remaining, 0.5) * 1000)

    def _eof_seen(self):
        return self.got_eof or self.reset

    def wait_ciphertext(self, wait):
        """Waits up to `wait` seconds for bytes from the server and moves
        them into the BIO (decrypting is the caller's); after EOF, just
        paces the caller's loop."""
        if not self._eof_seen():
            self.poll.modify(self.sock, select.POLLIN)
            self.poll.poll(max(0.0, wait) * 1000)
            self._fill()
        else:
            time.sleep(min(wait, 0.01))

    # --- handshake
    def handshake(self, timeout=5):
        deadline = time.monotonic() + scaled(timeout)
        while True:
            try:
                self.obj.do_handshake()
                self.handshaken = True
                break
            except ssl.SSLWantReadError:
                pass
            if not self._flush():
                self._wait(True, deadline)
                continue
            if self._eof_seen():
                raise ClosedByPeer("connection closed during handshake (reset=%s)" % self.reset)
            self._wait(False, deadline)
            self._fill()
        # The Finished message (and anything else) must go out.
        while not self._flush():
            self._wait(True, deadline)
        return self

    def version(self):
        return self.obj.version()

    def cipher(self):
        return self.obj.cipher()

    # --- data
    def _read_available(self, sink):
        """Decrypts what the BIO holds into sink; returns bytes added."""
        n = 0
        while True:
            try:
                data = self.obj.read(262144)
            except ssl.SSLWantReadError:
                return n
            except ssl.SSLZeroReturnError:
                self.got_close_notify = True
                return n
            except ssl.SSLEOFError:
                self.ragged = True
                return n
            if not data:
                self.got_close_notify = True
                return n
            sink += data
            n += len(data)

    def _done_reading(self):
        return self.got_close_notify or self.ragged or (self._eof_seen() and not self.inc.pending)

    def exchange(self, payload=b"", expect=None, timeout=10, then=None, chunk=16384,
                 on_progress=None):
        """Sends payload while reading, full duplex, and returns the bytes
        received. Returns once everything is sent (and `then` done) and
        either `expect` bytes arrived (when given) or the server closed its
        side (close_notify or EOF); also returns when the connection is
        reset. then: None, "close_notify" (send close_notify after the
        payload) or "fin" (TCP shutdown of the write side after the
        payload). on_progress(received) is called after each read."""
        deadline = time.monotonic() + scaled(timeout)
        received = bytearray()
        view = memoryview(payload)
        off = 0
        shut_done = False
        while True:
            progress = False
            # Feed plaintext only when earlier ciphertext has left: bounded
            # memory, real backpressure.
            if not self.reset and self._flush():
                if off < len(view):
                    n = min(chunk, len(view) - off)
                    self.obj.write(view[off:off + n])
                    off += n
                    progress = True
                elif then and not shut_done:
                    self.shut_write(then)
                    shut_done = True
                    progress = True
            if not self._eof_seen():
                self._fill()
            got = self._read_available(received)
            if got:
                progress = True
                if on_progress:
                    on_progress(received)
            if self.reset:
                return bytes(received)
            # Written means on the socket: neither in the BIO nor pending.
            sending_done = (off >= len(view) and not self.out.pending and not self.pending
                            and (shut_done or not then))
            if sending_done:
                if expect is not None and len(received) >= expect:
                    return bytes(received)
                if self._done_reading():
                    return bytes(received)
            if progress:
                continue
            self._wait(bool(self.pending), deadline)

    def push_until_stalled(self, block, limit, stall=1.0, timeout=30):
        """Writes `block` again and again (at most `limit` bytes) for as long
        as the peer takes it, reading nothing. Returns the plaintext bytes
        handed over once nothing moved for `stall` seconds, or `limit`."""
        deadline = time.monotonic() + scaled(timeout)
        sent = 0
        last_progress = time.monotonic()
        while sent < limit:
            if self._flush():
                self.obj.write(block)
                sent += len(block)
                last_progress = time.monotonic()
                continue
            if self.reset:
                raise ConnectionResetError("reset while pushing")
            before = len(self.pending)
            self.poll.modify(self.sock, select.POLLOUT)
            self.poll.poll(100)
            self._flush()
            now = time.monotonic()
            if len(self.pending) < before:
                last_progress = now
            elif now - last_progress >= stall:
                break
            if now > deadline:
                raise socket.timeout("push_until_stalled timed out")
        return sent

    def recv_until_close(self, timeout=10):
        """Reads until close_notify or EOF; returns the bytes."""
        deadline = time.monotonic() + scaled(timeout)
        received = bytearray()
        while True:
            self._fill()
            self._read_available(received)
            if self.got_close_notify or self.ragged or (self._eof_seen() and not self.inc.pending):
                if self.got_close_notify and not self._eof_seen():
                    # Let the FIN that follows close_notify arrive too.
                    try:
                        self.wait_eof(timeout=max(0.0, deadline - time.monotonic()) / SCALE)
                    except socket.timeout:
                        pass
                return bytes(received)
            self._wait(False, deadline)

    def wait_eof(self, timeout=5):
        deadline = time.monotonic() + scaled(timeout)
        while not self._eof_seen():
            self._wait(False, deadline)
            self._fill()

    def shut_write(self, how):
        """how: "close_notify" (TLS close_notify) or "fin" (TCP SHUT_WR)."""
        if how == "close_notify":
            try:
                self.obj.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass  # close_notify queued; the peer's one is read later
            except ssl.SSLError:
                pass
            deadline = time.monotonic() + scaled(5)
            while not self._flush():
                self._wait(True, deadline)
        elif how == "fin":
            deadline = time.monotonic() + scaled(5)
            while not self._flush():
                self._wait(True, deadline)
            self.sock.shutdown(socket.SHUT_WR)
        else:
            raise ValueError(how)
        self.write_shut = True


def client_hello_bytes(server_hostname="localhost"):
    """A real ClientHello as sent on the wire (TLS records)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(inc, out, server_hostname=server_hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


# What a failed handshake raises in TLSClient.handshake().
HANDSHAKE_FAILED = (ssl.SSLError, ClosedByPeer, ConnectionError)
