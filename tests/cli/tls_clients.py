"""Many TLS clients at once on Python's `ssl`, in one thread: non-blocking sockets, a selector, and
an ssl.SSLObject over memory BIOs per client. The memory BIOs are what let a client half-close TLS
the way orderly does: SSLObject.unwrap() sends close_notify (it raises SSLWantReadError, since the
server's close_notify has not come yet), the client sends FIN, and then keeps reading the echo until
SSLZeroReturnError (the server's close_notify) and then the raw socket's b'' (the server's FIN).
A blocking SSLSocket.unwrap() would wait for the server's close_notify and discard the data before
it. Every client records what it saw, in order, so tests can say "close_notify, then FIN, no RST".
"""

import errno
import selectors
import socket
import ssl
import time

# The stream's bytes: byte i is i % 251 (a prime, so chunk boundaries never line up with it).
_PATTERN = bytes(range(251)) * 300


class tls_client:
    """One client. `payload`: what to send (None: stream until the server's close_notify).
    `end`: how the client ends its sending: "unwrap" (close_notify + FIN), "truncate" (waits for
    the whole echo, then closes TCP without close_notify), "none" (sends nothing more)."""

    def __init__(self, ctx, port, payload=None, end="unwrap", window=128 << 10, chunk=16 << 10,
                 fin_with_notify=False, host="127.0.0.1"):
        self.payload = payload
        self.end = end
        self.window = window
        self.chunk = chunk
        self.stream = payload is None  # stream a pattern until the server ends
        # True: FIN right after our close_notify (orderly's shutdown_write()). False: FIN when the
        # client closes after the server's FIN, as Python's SSLSocket.unwrap() + close() do.
        self.fin_with_notify = fin_with_notify
        self.sock = socket.socket(socket.AF_INET)
        self.sock.setblocking(False)
        err = self.sock.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, "connect")
        self.inc = ssl.MemoryBIO()
        self.outg = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.outg, server_hostname="localhost")
        self.pending = b""  # ciphertext not yet taken by the kernel
        self.sel = None  # set by run()
        self.connected = False
        self.handshaken = False
        self.sent = 0  # plaintext handed to SSLObject.write
        self.echo = bytearray()
        self.events = []  # "close_notify", "fin", "reset", "truncated", "error: ..."
        self.notified = False  # our close_notify (or truncation) went
        self.fin_sent = False
        self.done = False
        self.error = None

    # What the client sends: the payload, or a stream whose byte i is a function of i.
    def next_chunk(self):
        if self.stream:
            start = self.sent % 251
            return _PATTERN[start:start + self.chunk]
        return self.payload[self.sent:self.sent + self.chunk]

    def expected(self, n):
        if not self.stream:
            return self.payload[:n]
        return (bytes(range(251)) * (n // 251 + 1))[:n]

    def wants_write(self):
        return bool(self.pending) or self.outg.pending > 0

    def flush(self):
        if self.outg.pending:
            self.pending += self.outg.read()
        while self.pending and not self.done:
            try:
                n = self.sock.send(self.pending)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionResetError:
                self.fail("reset")
                return
            except OSError as e:
                self.fail("error: " + str(e))
                return
            self.pending = self.pending[n:]

    def step(self):
        """Advances as far as possible without blocking."""
        if self.done:
            return
        if not self.handshaken:
            try:
                self.obj.do_handshake()
                self.handshaken = True
            except ssl.SSLWantReadError:
                self.flush()
                return
            except (ssl.SSLError, OSError) as e:
                self.fail("handshake: " + str(e))
                return
        self.read_plain()
        if self.done:
            return
        self.write_plain()
        self.flush()
        if (self.fin_with_notify and self.notified and not self.fin_sent and
                not self.wants_write() and not self.done):
            self.sock.shutdown(socket.SHUT_WR)
            self.fin_sent = True

    def write_plain(self):
        if self.notified or "close_notify" in self.events:
            return
        while self.outg.pending + len(self.pending) < 256 << 10:
            if not self.stream and self.sent >= len(self.payload):
                break
            if self.stream and self.sent - len(self.echo) >= self.window:
                return
            data = self.next_chunk()
            self.obj.write(data)
            self.sent += len(data)
        if self.stream or self.sent < len(self.payload):
            return
        if self.end == "unwrap":
            # Everything the server already sent must be read first: the SSL_shutdown() inside
            # unwrap() would discard application data it finds (see the module comment).
            self.read_plain()
            try:
                self.obj.unwrap()
            except ssl.SSLWantReadError:
                pass  # our close_notify is in outg; the server's has not come yet
            self.notified = True
        elif self.end == "truncate" and len(self.echo) == len(self.payload):
            self.flush()
            self.events.append("truncated")
            self.finish()  # a FIN without close_notify (nothing unread: not a RST)

    def read_plain(self):
        while True:
            try:
                data = self.obj.read(65536)
                # b"" is the peer's close_notify while ours has not gone (SSLObject.read says
                # SSLZeroReturnError only after our own close_notify).
                if not data:
                    raise ssl.SSLZeroReturnError("close_notify")
            except ssl.SSLWantReadError:
                return
            except ssl.SSLZeroReturnError:
                if "close_notify" not in self.events:
                    self.events.append("close_notify")
                    if self.stream and not self.notified:
                        # The server stopped: answer with ours, then FIN.
                        try:
                            self.obj.unwrap()
                        except ssl.SSLWantReadError:
                            pass
                        self.notified = True
                return
            except ssl.SSLEOFError:
                self.fail("eof_without_close_notify")
                return
            except ssl.SSLError as e:
                self.fail("error: " + str(e))
                return
            self.echo += data

    def on_readable(self):
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionResetError:
            self.fail("reset")
            return
        except OSError as e:
            self.fail("error: " + str(e))
            return
        if not data:
            self.events.append("fin")
            self.inc.write_eof()
            self.read_plain()  # SSLEOFError here when no close_notify came
            self.flush()
            self.finish()
            return
        self.inc.write(data)
        self.step()

    def fail(self, what):
        self.events.append(what)
        self.error = what
        self.finish()

    def finish(self):
        if self.done and self.sock.fileno() < 0:
            return
        self.done = True
        if self.sel is not None:
            try:
                self.sel.unregister(self.sock)
            except (KeyError, ValueError):
                pass
        self.sock.close()

    def interest(self):
        want_write = not self.connected or self.wants_write()
        return selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)


def run(clients, timeout):
    """Drives every client until each is done or `timeout` seconds passed; returns the ones that
    did not finish (they are closed)."""
    sel = selectors.DefaultSelector()
    registered = {}
    for c in clients:
        c.sel = sel
        registered[c] = c.interest()
        sel.register(c.sock, registered[c], c)
    end = time.monotonic() + timeout
    live = set(clients)
    while live and time.monotonic() < end:
        for key, mask in sel.select(timeout=0.2):
            c = key.data
            if c.done:
                continue
            if mask & selectors.EVENT_WRITE:
                c.connected = True
            if mask & selectors.EVENT_READ:
                c.on_readable()
            if not c.done and mask & selectors.EVENT_WRITE:
                c.step()
        for c in list(live):
            if c.done:
                live.discard(c)
                continue
            want = c.interest()
            if registered[c] != want:
                sel.modify(c.sock, want, c)
                registered[c] = want
    for c in live:
        c.finish()
    sel.close()
    return list(live)


def client_context(cafile, version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx
