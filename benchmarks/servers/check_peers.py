#!/usr/bin/env python3
"""Smoke test for the benchmark peers: every peer must behave the same before we time them.

    python3 benchmarks/servers/check_peers.py BUILD_DIR [--only NAME ...]

For each peer: a 1 MiB echo read concurrently; a 100-byte half-close answered with exactly those
bytes and FIN; 256 KiB sent and half-closed before the client reads anything; 1000 concurrent one-exchange connections; a client that sends without reading
cannot make the server buffer without bound (and its reset does not hurt the server); a graceful
stop with 100 connections mid-exchange (echoes, then FIN, never RST; the listener is closed; late
bytes are drained; exit 0 soon after the clients close; nothing on stdout but the listening line). Then, for all peers at
once, a client that never closes is aborted at the 5 s stop deadline and the server still exits 0.
The TLS peers (`*_tls`) get the same checks over TLS 1.3 (check_tls.py), close_notify standing in
for the half-close. Exits non-zero on any failure.
"""
import argparse
import asyncio
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from driver.peers import io_uring_unavailable  # noqa: E402
from driver.tlscert import make_cert  # noqa: E402
import check_tls  # noqa: E402

# (name, binary, environment). orderly's loop picks io_uring where usable unless told otherwise,
# so it is checked on each backend.
NATIVE = [("bench_raw_epoll", "bench_raw_epoll", {}), ("bench_raw_uring", "bench_raw_uring", {}),
          ("bench_orderly", "bench_orderly", {"ORDERLY_BACKEND": "epoll"}),
          ("bench_orderly:io_uring", "bench_orderly", {"ORDERLY_BACKEND": "io_uring"}),
          ("bench_asio", "bench_asio", {}), ("bench_libuv", "bench_libuv", {}),
          ("bench_libevent", "bench_libevent", {})]
# Over TLS: (name, binary, environment); each gets --tls-cert/--tls-key.
TLS = [("bench_raw_epoll_tls", "bench_raw_epoll_tls", {}),
       ("bench_orderly_tls", "bench_orderly", {"ORDERLY_BACKEND": "epoll"}),
       ("bench_orderly_tls:io_uring", "bench_orderly", {"ORDERLY_BACKEND": "io_uring"}),
       ("bench_asio_tls", "bench_asio_tls", {})]
# Need io_uring: skipped, with the reason, where it is unavailable.
URING = {"bench_raw_uring", "bench_orderly:io_uring", "bench_orderly_tls:io_uring"}
# Known to fail, with the reason: skipped (and said so) unless --include-broken.
BROKEN: dict[str, str] = {}  # none at present


def find_binary(build_dir, name):
    direct = build_dir / "benchmarks" / "servers" / name
    if direct.is_file():
        return direct
    for p in build_dir.rglob(name):
        if p.is_file() and os.access(p, os.X_OK):
            return p
    return None


class Peer:
    def __init__(self, name, argv, env=None, tls=False):
        self.name, self.argv, self.tls = name, argv, tls
        self.env = dict(os.environ, **env) if env else None
        self.proc = None
        self.port = None

    def start(self):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv + ["--port", "0"], stdout=subprocess.PIPE,
                                     stderr=self.err, env=self.env)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        if not ready:
            raise AssertionError("no 'listening on' line within 10 s")
        line = self.proc.stdout.readline().decode()
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        if not m:
            raise AssertionError(f"first stdout line is {line!r}")
        self.port = int(m.group(1))

    def connect(self):
        if self.tls:
            return check_tls.connect_tls(self.port)
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def stderr_text(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def recv_to_eof(s):
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def check_big_echo(peer):
    data = os.urandom(1 << 20)
    s = peer.connect()

    def send():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=send)
    t.start()
    got = recv_to_eof(s)
    t.join()
    s.close()
    assert got == data, f"1 MiB echo: got {len(got)} bytes, equal={got == data}"


def check_half_close(peer):
    data = os.urandom(100)
    s = peer.connect()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = recv_to_eof(s)  # a RST would raise ConnectionResetError here
    s.close()
    assert got == data, f"half-close: got {len(got)} bytes, want the 100 sent"


def check_late_reader(peer):
    # The client sends, half-closes and only then reads: the echoes pile up behind a full
    # socket buffer when the FIN arrives, and must all come out before the server's FIN.
    data = os.urandom(256 << 10)
    s = peer.connect()

    def send():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=send)
    t.start()
    time.sleep(0.3)
    got = recv_to_eof(s)
    t.join()
    s.close()
    assert got == data, f"late reader: got {len(got)} of {len(data)} bytes"


def check_many(peer, n=1000):
    async def one(i):
        r, w = await asyncio.open_connection("127.0.0.1", peer.port)
        msg = b"%06d" % i * 10
        w.write(msg)
        w.write_eof()
        got = await r.read()  # to EOF
        w.close()
        await w.wait_closed()
        return got == msg

    async def run():
        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), 30)

    ok = asyncio.run(run())
    assert all(ok), f"{n} concurrent: {ok.count(False)} wrong echoes"


def check_bounded(peer, cap=64 << 20):
    # Sends without reading. Once every buffer on the way is full the server must stop reading,
    # so the client stalls long before `cap` bytes.
    s = peer.connect()
    s.setblocking(False)
    chunk = b"x" * 65536
    sent = 0
    while sent < cap:
        _, w, _ = select.select([], [s], [], 0.5)
        if not w:
            break
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            pass
    s.close()  # unread echoes in our receive queue: the server sees a reset
    assert sent < cap, f"server kept reading: the client sent {sent >> 20} MiB unread"
    check_half_close(peer)  # and it still serves


def check_graceful_stop(peer, n=100):
    conns = []
    for _ in range(n):
        s = peer.connect()
        s.sendall(b"a" * 1000)
        got = b""
        while len(got) < 1000:
            got += s.recv(1000 - len(got))
        conns.append(s)
    late = os.urandom(1000)
    for s in conns:
        s.sendall(late)  # mid-exchange: the stop may catch these bytes read or unread
    peer.proc.send_signal(signal.SIGTERM)
    for i, s in enumerate(conns):
        got = recv_to_eof(s)  # echo of what the server had read, then FIN; RST raises
        assert late.startswith(got), f"stop: connection {i} got {len(got)} bytes not sent"
    try:  # the listener must be closed by now
        socket.create_connection(("127.0.0.1", peer.port), timeout=1).close()
        raise AssertionError("stop: still accepting connections after SIGTERM")
    except ConnectionRefusedError:
        pass
    for s in conns:
        s.sendall(b"b" * 100)  # after the server's FIN: must be drained, not answered with RST
    time.sleep(0.2)
    for i, s in enumerate(conns):
        try:
            extra = s.recv(100)
        except ConnectionResetError:
            raise AssertionError(f"stop: connection {i} reset after the server's FIN")
        assert extra == b"", f"stop: connection {i} got data after EOF"
    assert peer.proc.poll() is None, "stop: exited before its peers sent EOF"
    closed_at = time.monotonic()
    for s in conns:
        s.close()
    try:
        rc = peer.proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        raise AssertionError("stop: still running 2 s after every client closed")
    took = time.monotonic() - closed_at
    assert rc == 0, f"stop: exit status {rc}"
    assert took < 1.5, f"stop: exited {took:.2f} s after the clients closed"
    rest = peer.proc.stdout.read()
    assert rest == b"", f"stop: unexpected stdout {rest[:200]!r}"


TCP_CLOSE = 7  # include/net/tcp_states.h


def tcp_state(s):
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def check_deadline(peers):
    """All peers at once: a client that never sends EOF is aborted at the 5 s deadline."""
    failures = []
    holders = []
    for p in peers:
        p.start()  # these peers all started fine moments ago
        s = p.connect()
        s.sendall(b"ping")
        assert s.recv(4) == b"ping"
        p.proc.send_signal(signal.SIGTERM)
        holders.append((s, time.monotonic()))
    for p, (s, t0) in zip(peers, holders):
        outcome = None
        if s.recv(100) != b"":
            outcome = "data instead of FIN"
        # Having read the FIN we sit in CLOSE_WAIT, and recv() keeps returning end-of-stream even
        # after a RST; only the RST moves the socket to CLOSE, so watch the state instead.
        while outcome is None and tcp_state(s) != TCP_CLOSE:
            if time.monotonic() - t0 > 9:
                outcome = "not aborted within 9 s"
            time.sleep(0.02)
        took = time.monotonic() - t0
        try:
            rc = p.proc.wait(timeout=max(0.1, 9 - took))
        except subprocess.TimeoutExpired:
            rc = "still running"
        if outcome is None and not 4.5 < took < 7.5:
            outcome = f"aborted after {took:.1f} s"
        if outcome is None and rc != 0:
            outcome = f"exit status {rc}"
        s.close()
        p.kill()
        failures.append((p.name, outcome))
    return failures


CHECKS = [
    ("1 MiB echo", check_big_echo),
    ("half-close 100 B", check_half_close),
    ("late reader", check_late_reader),
    ("1000 concurrent", check_many),
    ("bounded buffering", check_bounded),
    ("graceful stop x100", check_graceful_stop),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir", type=Path)
    ap.add_argument("--only", nargs="*", help="peer names (e.g. bench_asio asyncio_echo.py)")
    ap.add_argument("--no-deadline", action="store_true", help="skip the 5 s abort check")
    ap.add_argument("--include-broken", action="store_true",
                    help="also run the peers known to fail (BROKEN)")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    peers, missing = [], []
    for name, binary, env in NATIVE:
        path = find_binary(args.build_dir, binary)
        if path:
            peers.append(Peer(name, [str(path)], env))
        else:
            missing.append(name)
    peers.append(Peer("asyncio_echo.py", [sys.executable, str(HERE / "asyncio_echo.py")]))
    cert, key = make_cert(Path(tempfile.mkdtemp(prefix="check_peers_tls_")))
    for name, binary, env in TLS:
        path = find_binary(args.build_dir, binary)
        if path:
            peers.append(Peer(name, [str(path), "--tls-cert", str(cert), "--tls-key", str(key)],
                              env, tls=True))
        else:
            missing.append(name)
    if args.only:
        peers = [p for p in peers if p.name in args.only]
        missing = [m for m in missing if m in args.only]

    no_uring = io_uring_unavailable()
    if no_uring:
        for p in [p for p in peers if p.name in URING]:
            print(f"SKIP {p.name}: io_uring is not available here ({no_uring})")
        peers = [p for p in peers if p.name not in URING]
        missing = [m for m in missing if m not in URING]

    if not args.include_broken:
        for p in [p for p in peers if p.name in BROKEN]:
            print(f"SKIP {p.name}: known to fail: {BROKEN[p.name]}")
        peers = [p for p in peers if p.name not in BROKEN]

    failed = len(missing)
    for m in missing:
        print(f"FAIL {m}: binary not found under {args.build_dir}")
    t_all = time.monotonic()
    for p in peers:
        t0 = time.monotonic()
        try:
            p.start()
            for label, check in (check_tls.CHECKS if p.tls else CHECKS):
                try:
                    check(p)
                except Exception as e:
                    raise AssertionError(f"{label}: {type(e).__name__}: {e}") from e
            print(f"ok   {p.name:26} ({time.monotonic() - t0:.1f} s)", flush=True)
        except Exception as e:
            failed += 1
            print(f"FAIL {p.name}: {e}", flush=True)
            err = p.stderr_text().strip() if p.proc else ""
            if err:
                print("     stderr: " + err[-500:].replace("\n", "\n     "))
        finally:
            p.kill()

    if not args.no_deadline and peers:
        for name, outcome in check_deadline(peers):
            if outcome:
                failed += 1
                print(f"FAIL {name}: stop deadline: {outcome}")
            else:
                print(f"ok   {name:26} aborted at the 5 s stop deadline, exit 0")

    print(f"{'FAILED' if failed else 'passed'}: {len(peers)} peers, "
          f"{time.monotonic() - t_all:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
