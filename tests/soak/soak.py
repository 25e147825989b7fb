#!/usr/bin/env python3
"""Soak test: churn connections against `orderly serve echo` and check that nothing accumulates.

Starts `orderly serve echo 127.0.0.1:0`, reads `listening on HOST:PORT` from its stderr, then keeps
a few dozen clients busy (one selector, non-blocking sockets). Each client connects, sends ~100
bytes unique to it, half-closes (shutdown(SHUT_WR)), reads the echo to EOF, checks it and closes.
It stops after --connections or --minutes, whichever comes first. Every second it samples the
server's open descriptors (/proc/PID/fd) and resident memory (VmRSS). At the end it stops the
server with SIGTERM and checks:

  * every connection got exactly its bytes back, then EOF: no reset, refusal, timeout or mismatch;
  * the server's descriptors are back at the baseline taken before the first client (after a
    short settle: the last connections' on_closed may still be running);
  * RSS is flat: final RSS <= RSS once 10 % of the connections were done + --rss-slack (2 MiB).
    The first 10 % warm everything that is meant to stay (allocator arenas, per-loop read buffers,
    the registry, libc's caches); anything that grows per connection after that shows up as a
    rise proportional to the remaining 90 %. 2 MiB absorbs allocator noise; the smallest leak
    it catches is 2 MiB / (0.9 N) per connection: ~116 B at 20 000, ~2 B at 1 000 000.
  * the server exits 0 after SIGTERM, and its own summary counts every connection `clean`.

Prints a summary; --csv PATH writes the samples. Exit status 0 when every check passed, 1 when
one failed, 2 on a usage or setup error.

Client ports: the client half-closes first, so it is the side that ends in TIME_WAIT, one port
per connection for 60 s. With 28 000 ephemeral ports that allows
~470 new connections per second unless net.ipv4.tcp_tw_reuse lets connect() reuse a TIME_WAIT
port (the default 2 enables it for loopback only, which is what this script uses).
"""

import argparse
import csv
import errno
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time

PAYLOAD = 100  # bytes per connection


def read_int(path, default=None):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def payload_for(i):
    head = f"conn {i:09d} ".encode()
    body = bytes((ord("a") + (i + k) % 26) for k in range(PAYLOAD - len(head) - 1))
    return head + body + b"\n"


class server:
    """`orderly serve echo` with its stderr collected by a thread (bounded: last 200 lines)."""

    def __init__(self, binary, threads):
        argv = [binary, "serve", "echo", "127.0.0.1:0"]
        if threads:
            argv[3:3] = ["--threads", str(threads)]
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        self.lines = []
        self.listening = threading.Event()
        self.address = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.p.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            del self.lines[:-200]
            m = re.match(r"listening on (\S+):(\d+)$", line)
            if m and self.address is None:
                self.address = (m.group(1).strip("[]"), int(m.group(2)))
                self.listening.set()

    def stop(self, timeout):
        """SIGTERM; the exit status, or None when it did not exit in time (then killed)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            rc = None
        self.reader.join(timeout=5)
        return rc


class client:
    __slots__ = ("i", "sock", "out", "sent", "got", "started")

    def __init__(self, i, sock):
        self.i = i
        self.sock = sock
        self.out = payload_for(i)
        self.sent = 0
        self.got = bytearray()
        self.started = time.monotonic()


class churn:
    def __init__(self, address, total, seconds, concurrency, conn_timeout):
        self.address = address
        self.total = total
        self.end_at = time.monotonic() + seconds
        self.concurrency = concurrency
        self.conn_timeout = conn_timeout
        self.sel = selectors.DefaultSelector()
        self.started = 0
        self.done = 0
        self.errors = {}  # kind -> count
        self.first_errors = []
        self.lock = threading.Lock()  # done/errors are read by the sampler

    def error(self, kind, c, detail=""):
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            if len(self.first_errors) < 10:
                self.first_errors.append(f"connection {c.i}: {kind} {detail}".strip())

    def start_one(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        c = client(self.started, s)
        self.started += 1
        rc = s.connect_ex(self.address)
        if rc not in (0, errno.EINPROGRESS):
            self.error("connect:" + errno.errorcode.get(rc, str(rc)), c)
            s.close()
            self.finish(c, ok=False)
            return
        self.sel.register(s, selectors.EVENT_WRITE, c)

    def finish(self, c, ok):
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        with self.lock:
            self.done += 1

    def on_event(self, c, mask):
        s = c.sock
        try:
            if mask & selectors.EVENT_WRITE:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self.error("connect:" + errno.errorcode.get(err, str(err)), c)
                    self.finish(c, ok=False)
                    return
                n = s.send(c.out[c.sent:])
                c.sent += n
                if c.sent == len(c.out):
                    s.shutdown(socket.SHUT_WR)  # "done sending": the server answers with FIN
                    self.sel.modify(s, selectors.EVENT_READ, c)
                return
            while True:
                data = s.recv(65536)
                if not data:
                    if bytes(c.got) == c.out:
                        self.finish(c, ok=True)
                    else:
                        self.error("wrong-reply", c, f"{len(c.got)} B back of {len(c.out)}")
                        self.finish(c, ok=False)
                    return
                c.got += data
                if len(c.got) > len(c.out):
                    self.error("wrong-reply", c, "more bytes than sent")
                    self.finish(c, ok=False)
                    return
        except BlockingIOError:
            return
        except ConnectionResetError:
            self.error("reset", c)
        except OSError as e:
            self.error("os:" + errno.errorcode.get(e.errno, str(e.errno)), c)
        self.finish(c, ok=False)

    def run(self):
        last_sweep = time.monotonic()
        while True:
            now = time.monotonic()
            may_start = self.started < self.total and now < self.end_at
            while may_start and len(self.sel.get_map()) < self.concurrency:
                self.start_one()
                may_start = self.started < self.total
            if not self.sel.get_map():
                if not may_start:
                    return
                continue
            for key, mask in self.sel.select(timeout=0.5):
                self.on_event(key.data, mask)
            if now - last_sweep > 1.0:
                last_sweep = now
                for key in list(self.sel.get_map().values()):
                    c = key.data
                    if now - c.started > self.conn_timeout:
                        self.error("timeout", c, f"{len(c.got)} B back after {self.conn_timeout} s")
                        self.finish(c, ok=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orderly", required=True, help="path of the orderly binary")
    ap.add_argument("--connections", type=int, default=20000, help="stop after N (default 20000)")
    ap.add_argument("--minutes", type=float, default=10.0, help="or after M minutes (default 10)")
    ap.add_argument("--concurrency", type=int, default=32, help="clients at once (default 32)")
    ap.add_argument("--threads", type=int, default=0, help="server loop threads (0 = its default)")
    ap.add_argument("--rss-slack", type=float, default=2.0, help="MiB of allowed growth (2)")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds to wait for descriptors to return to baseline (5)")
    ap.add_argument("--conn-timeout", type=float, default=10.0,
                    help="seconds one exchange may take before it counts as an error (10)")
    ap.add_argument("--csv", metavar="PATH", help="write the per-second samples here")
    args = ap.parse_args()
    if args.connections <= 0 or args.minutes <= 0 or args.concurrency <= 0:
        ap.error("--connections, --minutes and --concurrency must be positive")
    if not os.access(args.orderly, os.X_OK):
        print(f"soak: no executable orderly at {args.orderly}", file=sys.stderr)
        return 2

    tw_reuse = read_int("/proc/sys/net/ipv4/tcp_tw_reuse")
    ports = "?"
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            ports = hi - lo + 1
    except (OSError, ValueError):
        pass
    print(f"soak: net.ipv4.tcp_tw_reuse = {tw_reuse}, {ports} ephemeral ports", flush=True)
    if tw_reuse == 0:
        print("soak: warning: tcp_tw_reuse is 0: each client port stays in TIME_WAIT for 60 s; "
              "above ~ports/60 connections per second connect() will fail with EADDRNOTAVAIL",
              file=sys.stderr)

    srv = server(args.orderly, args.threads)
    if not srv.listening.wait(10):
        srv.stop(5)
        print("soak: the server did not say 'listening on'; stderr:\n" + "\n".join(srv.lines),
              file=sys.stderr)
        return 2
    pid = srv.p.pid
    time.sleep(0.2)  # let the loop threads finish starting
    fd_base = fd_count(pid)
    rss_base = rss_kib(pid)
    print(f"soak: server pid {pid} on {srv.address[0]}:{srv.address[1]}, "
          f"{fd_base} descriptors, RSS {rss_base} KiB", flush=True)

    work = churn(srv.address, args.connections, args.minutes * 60, args.concurrency,
                 args.conn_timeout)
    samples = []  # (seconds, done, fds, rss_kib)
    stop_sampling = threading.Event()
    t0 = time.monotonic()

    def sample():
        next_at = t0
        last_print = t0
        while not stop_sampling.is_set():
            now = time.monotonic()
            with work.lock:
                done = work.done
                errors = sum(work.errors.values())
            row = (round(now - t0, 3), done, fd_count(pid), rss_kib(pid))
            samples.append(row)
            if now - last_print >= 10:
                last_print = now
                print(f"soak: {row[0]:7.1f} s  {done} done  {errors} errors  fds {row[2]}  "
                      f"RSS {row[3]} KiB", flush=True)
            next_at += 1.0
            stop_sampling.wait(max(0.0, next_at - time.monotonic()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        work.run()
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
    elapsed = time.monotonic() - t0
    stop_sampling.set()
    sampler.join()

    # Settle: the last connections' descriptors are released on the server's loop threads.
    settle_end = time.monotonic() + args.settle
    fd_final = fd_count(pid)
    while fd_final > fd_base and time.monotonic() < settle_end:
        time.sleep(0.05)
        fd_final = fd_count(pid)
    rss_final = rss_kib(pid)
    samples.append((round(time.monotonic() - t0, 3), work.done, fd_final, rss_final))
    # The reference: the first sample once 10 % of the connections actually made were done (the
    # run may have stopped at --minutes before reaching --connections).
    rss_at_10 = next((s[3] for s in samples if s[1] >= max(1, work.done // 10)), rss_final)
    fd_max = max(s[2] for s in samples)
    rss_max = max(s[3] for s in samples)

    rc = srv.stop(15)
    summary = next((l for l in reversed(srv.lines) if l.startswith("served ")), "")

    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["seconds", "connections_done", "server_fds", "server_rss_kib"])
            w.writerows(samples)

    errors = sum(work.errors.values())
    resets = work.errors.get("reset", 0)
    ok_conns = work.done - errors
    failures = []
    if work.done != work.started:
        failures.append(f"{work.started - work.done} connections never finished")
    if errors:
        failures.append(f"{errors} failed connections: "
                        + ", ".join(f"{k} {v}" for k, v in sorted(work.errors.items())))
    if fd_final != fd_base:
        failures.append(f"descriptors {fd_final} at the end, {fd_base} at the start")
    if rss_final > rss_at_10 + args.rss_slack * 1024:
        failures.append(f"RSS grew: {rss_final} KiB at the end, {rss_at_10} KiB after 10 % "
                        f"(slack {args.rss_slack} MiB)")
    if rc != 0:
        failures.append(f"the server exited with {rc} after SIGTERM" if rc is not None
                        else "the server did not exit within 15 s of SIGTERM")
    m = re.match(r"served (\d+) connections?(?:: (.*))?$", summary)
    if not m:
        failures.append(f"no summary line from the server (got {summary!r})")
    else:
        outcomes = dict((k, int(v)) for k, v in
                        (part.rsplit(" ", 1) for part in (m.group(2) or "").split(", ") if part))
        if int(m.group(1)) != work.done or outcomes.get("clean", 0) != work.done:
            failures.append(f"the server's view differs: '{summary}' for {work.done} connections")

    print(f"connections  {work.done} ({ok_conns} ok) in {elapsed:.1f} s, "
          f"{work.done / elapsed if elapsed > 0 else 0:.0f} conn/s, concurrency {args.concurrency}")
    print(f"errors       {errors} (resets {resets})")
    print(f"descriptors  baseline {fd_base}, max {fd_max}, final {fd_final}")
    print(f"RSS          start {rss_base} KiB, after 10 % {rss_at_10} KiB, max {rss_max} KiB, "
          f"final {rss_final} KiB")
    print(f"server       exit {rc}; {summary}")
    for e in work.first_errors:
        print(f"  {e}")
    if failures:
        for f in failures:
            print(f"soak: FAIL: {f}", file=sys.stderr)
        return 1
    print("soak: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
