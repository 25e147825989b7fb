"""The TLS checks of check_peers.py: the same contract over TLS 1.3 (benchmarks/servers/README.md).

The half-close of TLS is close_notify: the client sends its own once it has sent everything, and
the server must finish the echoes, answer with its close_notify and then FIN, never RST. A FIN
without close_notify from the server (truncation) fails a check, and so does a reset.

The client side runs on ssl.MemoryBIO with a select() loop, so that one thread can send and read
at once (an SSLSocket must not be used from two threads) and every wait is bounded.
"""
from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import ssl
import subprocess
import time


def client_context() -> ssl.SSLContext:
    # No verification: throwaway certificate on loopback (the benchmark's client does the same).
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


CTX = client_context()


class Outcome:
    def __init__(self):
        self.echo = bytearray()
        self.notify = False  # the server's close_notify arrived
        self.fin = False     # then its FIN
        self.reset = False
        self.error = ""


def session(port: int, data: bytes, read_delay: float = 0.0, timeout: float = 20.0) -> Outcome:
    """Handshake, send `data`, then close_notify; read the echo to the server's close_notify and
    the raw socket to its FIN. Reading starts `read_delay` seconds after the first byte went."""
    out = Outcome()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = CTX.wrap_bio(inc, outg, server_hostname="localhost")
    pending = b""  # ciphertext for the socket
    sent = 0
    notify_sent = False
    handshaken = False
    t0 = time.monotonic()
    read_from = None
    try:
        while not out.fin:
            if time.monotonic() - t0 > timeout:
                out.error = f"no close_notify and FIN within {timeout:.0f} s"
                break
            if not handshaken:
                try:
                    tls.do_handshake()
                    handshaken = True
                    read_from = time.monotonic() + read_delay
                except ssl.SSLWantReadError:
                    pass
            if handshaken and sent < len(data) and len(pending) < (256 << 10):
                sent += tls.write(data[sent:sent + (64 << 10)])
            if handshaken and sent == len(data) and not notify_sent:
                notify_sent = True
                try:
                    tls.unwrap()  # writes our close_notify; completes with theirs
                except ssl.SSLWantReadError:
                    pass
            pending += outg.read()
            reading = handshaken is False or time.monotonic() >= (read_from or 0)
            r, w, _ = select.select([sock] if reading else [], [sock] if pending else [], [],
                                    0.05)
            if w:
                try:
                    pending = pending[sock.send(pending):]
                except BlockingIOError:
                    pass
            if not r:
                continue
            chunk = sock.recv(1 << 18)
            if not chunk:
                if not out.notify:
                    out.error = "FIN without close_notify (truncated)"
                out.fin = True
                break
            if out.notify:
                out.error = "bytes after the server's close_notify"
                continue
            inc.write(chunk)
            try:
                while True:
                    got = tls.read(1 << 18)
                    if not got:
                        out.notify = True
                        break
                    out.echo += got
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                out.notify = True
            if out.notify and not notify_sent:
                out.error = "close_notify before we sent ours"
    except ConnectionResetError:
        out.reset = True
        out.error = "reset by the server"
    except ssl.SSLError as e:
        out.error = f"TLS error: {e}"
    finally:
        sock.close()
    return out


def expect(out: Outcome, data: bytes, what: str) -> None:
    assert not out.error, f"{what}: {out.error} (echoed {len(out.echo)} of {len(data)} B)"
    assert bytes(out.echo) == data, f"{what}: echo of {len(out.echo)} B differs from the " \
        f"{len(data)} B sent"
    assert out.notify and out.fin, f"{what}: close_notify {out.notify}, FIN {out.fin}"


def check_big_echo(peer):
    data = os.urandom(1 << 20)
    expect(session(peer.port, data), data, "1 MiB echo")


def check_half_close(peer):
    data = os.urandom(100)
    expect(session(peer.port, data), data, "close_notify after 100 B")


def check_late_reader(peer):
    data = os.urandom(256 << 10)
    expect(session(peer.port, data, read_delay=0.3), data, "late reader")


def check_many(peer, n=300):
    async def one(i):
        r, w = await asyncio.open_connection("127.0.0.1", peer.port, ssl=CTX,
                                             server_hostname="localhost")
        msg = b"%06d" % i * 10
        w.write(msg)
        got = await r.readexactly(len(msg))
        w.close()  # close_notify; asyncio waits for the server's
        try:
            await w.wait_closed()
        except (ssl.SSLError, ConnectionError):
            return False
        return got == msg

    async def run():
        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), 30)

    ok = asyncio.run(run())
    assert all(ok), f"{n} concurrent: {ok.count(False)} wrong echoes or closes"


def connect_tls(port: int) -> ssl.SSLSocket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # suppress_ragged_eofs=False: a FIN without close_notify raises instead of reading as EOF.
    return CTX.wrap_socket(s, server_hostname="localhost", suppress_ragged_eofs=False)


def check_bounded(peer, cap=64 << 20):
    s = connect_tls(peer.port)
    s.setblocking(False)
    chunk = b"x" * 16384
    sent = 0
    while sent < cap:
        _, w, _ = select.select([], [s], [], 0.5)
        if not w:
            break
        try:
            sent += s.send(chunk)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            pass
    s.close()  # unread echoes in our receive queue: the server sees a reset
    assert sent < cap, f"server kept reading: the client sent {sent >> 20} MiB unread"
    check_half_close(peer)


def check_graceful_stop(peer, n=100):
    conns = []
    for _ in range(n):
        s = connect_tls(peer.port)
        s.sendall(b"a" * 1000)
        got = b""
        while len(got) < 1000:
            got += s.recv(1000 - len(got))
        conns.append(s)
    late = os.urandom(1000)
    for s in conns:
        s.sendall(late)
    peer.proc.send_signal(signal.SIGTERM)
    raws = []
    for i, s in enumerate(conns):
        got = b""
        while True:  # the echo of what the server had read, then its close_notify
            try:
                b = s.recv(65536)
            except ssl.SSLEOFError:
                raise AssertionError(f"stop: connection {i}: FIN without close_notify")
            if not b:
                break
            got += b
        assert late.startswith(got), f"stop: connection {i} got {len(got)} bytes not sent"
        raws.append(s.unwrap())  # our close_notify (the server is draining to our FIN)
    try:
        socket.create_connection(("127.0.0.1", peer.port), timeout=1).close()
        raise AssertionError("stop: still accepting connections after SIGTERM")
    except ConnectionRefusedError:
        pass
    for i, r in enumerate(raws):
        r.settimeout(5)
        try:
            extra = r.recv(100)
        except ConnectionResetError:
            raise AssertionError(f"stop: connection {i} reset after close_notify")
        assert extra == b"", f"stop: connection {i}: bytes after close_notify"
    closed_at = time.monotonic()
    for r in raws:
        r.close()
    try:
        rc = peer.proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        raise AssertionError("stop: still running 2 s after every client closed")
    took = time.monotonic() - closed_at
    assert rc == 0, f"stop: exit status {rc}"
    assert took < 1.5, f"stop: exited {took:.2f} s after the clients closed"
    rest = peer.proc.stdout.read()
    assert rest == b"", f"stop: unexpected stdout {rest[:200]!r}"


CHECKS = [
    ("1 MiB echo (TLS)", check_big_echo),
    ("close_notify 100 B", check_half_close),
    ("late reader (TLS)", check_late_reader),
    ("300 concurrent (TLS)", check_many),
    ("bounded buffering (TLS)", check_bounded),
    ("graceful stop x100 (TLS)", check_graceful_stop),
]
