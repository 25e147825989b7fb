#!/usr/bin/env python3
"""asyncio_echo.py: the echo peer on Python's asyncio (asyncio.Protocol, default event loop).

Memory: the selector transport reads into its own buffer (up to 256 KiB per recv) and hands
bytes objects to data_received; a connection's memory is its transport's write buffer, which the
write limits below keep to at most one read. asyncio's selector loop is level-triggered.
"""
import argparse
import asyncio
import resource
import signal
import socket
import struct
import sys

STOP_GRACE_S = 5.0


class Echo(asyncio.Protocol):
    def __init__(self, peers):
        self.peers = peers
        self.transport = None
        self.stopping = False
        self.writing_paused = False

    def connection_made(self, transport):
        self.transport = transport
        # High-water 0: reading pauses as soon as the kernel refuses part of an echo and resumes
        # once the buffer has drained, the rule every peer in this benchmark follows.
        transport.set_write_buffer_limits(high=0, low=0)
        self.peers.add(self)
        if self.peers.stopping:
            self.stop()

    def data_received(self, data):
        if not self.stopping:  # after the stop began, what arrives is drained, not echoed
            self.transport.write(data)

    def pause_writing(self):
        self.writing_paused = True
        if not self.stopping:
            self.transport.pause_reading()

    def resume_writing(self):
        self.writing_paused = False
        if self.transport.is_reading() is False and not self.transport.is_closing():
            self.transport.resume_reading()

    def eof_received(self):
        # write_eof() sends FIN once the buffer has drained; close() then waits for the same
        # drain. Nothing can arrive after the peer's FIN, so closing sends no RST.
        self.transport.write_eof()
        self.transport.close()
        return True  # keep the transport until the echoes are out

    def connection_lost(self, exc):
        self.peers.discard(self)

    def stop(self):
        self.stopping = True
        if not self.transport.is_closing():
            self.transport.resume_reading()  # drain to the peer's EOF, even while flushing
            self.transport.write_eof()

    def abort(self):
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


_last_logged = {}


def quiet_exception_handler(loop, context):
    # On EMFILE asyncio stops accepting for a second by itself but reports every failed accept
    # (thousands per event, with tracebacks); one line per kind per second is enough.
    msg = context.get("message", "unhandled exception")
    now = loop.time()
    if now - _last_logged.get(msg, -1.0) >= 1.0:
        _last_logged[msg] = now
        exc = context.get("exception")
        print(f"asyncio: {msg}: {exc}" if exc else f"asyncio: {msg}", file=sys.stderr)


class Peers(set):
    stopping = False


async def main(host, port):
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(quiet_exception_handler)
    peers = Peers()
    # asyncio also tries up to `backlog` accepts per readiness event, so keep it at SOMAXCONN.
    server = await loop.create_server(
        lambda: Echo(peers), host, port, backlog=socket.SOMAXCONN, reuse_address=True)
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)

    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()

    peers.stopping = True
    server.close()  # stop accepting
    for p in list(peers):
        p.stop()
    deadline = loop.time() + STOP_GRACE_S
    while peers and loop.time() < deadline:
        await asyncio.sleep(0.01)
    if peers:
        print(f"stop deadline: aborting {len(peers)} connections", file=sys.stderr)
        for p in list(peers):
            p.abort()
        await asyncio.sleep(0)  # let connection_lost run


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="asyncio echo peer")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(args.host, args.port))
