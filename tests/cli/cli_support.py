"""Shared helpers of the CLI tests: run the built `orderly` binary and real peers with bounded
waits, and kill everything a test started when it ends, passed or not."""

import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("ORDERLY_BIN", os.path.join(HERE, "..", "..", "build", "dev", "tools",
                                                 "orderly", "orderly"))
PEERS = os.path.join(HERE, "peers.py")
TIMEOUT = 20  # seconds; every wait in these tests is bounded by this or less


class proc:
    """A running process whose stderr (and optionally stdout) lines are collected by threads, so
    that reading them can time out."""

    def __init__(self, argv, stdin=subprocess.DEVNULL, capture_stdout=True, env=None):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdin=stdin, env=env,
                                  stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        self.err_lines = queue.Queue()
        self.err_all = []
        self.out = b""
        self._threads = [threading.Thread(target=self._read_err, daemon=True)]
        if capture_stdout:
            self._threads.append(threading.Thread(target=self._read_out, daemon=True))
        for t in self._threads:
            t.start()

    def _read_err(self):
        for line in self.p.stderr:
            text = line.decode(errors="replace")
            self.err_all.append(text)
            self.err_lines.put(text)

    def _read_out(self):
        self.out = self.p.stdout.read()

    def stderr_line(self, timeout=TIMEOUT):
        return self.err_lines.get(timeout=timeout)

    def wait(self, timeout=TIMEOUT):
        rc = self.p.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=timeout)
        return rc

    @property
    def stderr(self):
        return "".join(self.err_all)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=TIMEOUT)
        for t in self._threads:
            t.join(timeout=TIMEOUT)
        for stream in (self.p.stdout, self.p.stderr, self.p.stdin):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass


class cli_test(unittest.TestCase):
    """Base class: every process started through it is killed at the end of the test."""

    def setUp(self):
        self.assertTrue(os.access(BIN, os.X_OK), "orderly binary not found: " + BIN)

    def start(self, argv, **kw):
        pr = proc(argv, **kw)
        self.addCleanup(pr.kill)
        return pr

    def orderly(self, *args, **kw):
        return self.start([BIN, *args], **kw)

    def run_orderly(self, *args, input=b"", timeout=TIMEOUT):
        return subprocess.run([BIN, *args], input=input, capture_output=True, timeout=timeout)

    def peer(self, mode):
        """Starts peers.py in `mode` and returns (process, port)."""
        p = subprocess.Popen([sys.executable, PEERS, mode], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.addCleanup(stop, p)
        line = read_line(p.stdout, TIMEOUT)
        self.assertTrue(line.startswith(b"port "), line)
        return p, int(line.split()[1])

    def listening(self, pr):
        """Reads the first stderr line of a listening subcommand and returns (host, port)."""
        line = pr.stderr_line()
        self.assertTrue(line.startswith("listening on "), "first stderr line: " + repr(line))
        endpoint = line[len("listening on "):].strip()
        host, _, port = endpoint.rpartition(":")
        return host.strip("[]"), int(port)

    def need(self, tool):
        if shutil.which(tool) is None:
            self.skipTest(tool + " is not installed (./dev setup installs it)")


def stop(p):
    """Kills a Popen if it still runs and reaps it."""
    if p.poll() is None:
        p.kill()
    p.wait(timeout=TIMEOUT)
    for stream in (p.stdout, p.stderr, p.stdin):
        if stream is not None:
            stream.close()


def read_line(stream, timeout):
    """readline() with a timeout (the peer may hang)."""
    result = queue.Queue()
    threading.Thread(target=lambda: result.put(stream.readline()), daemon=True).start()
    return result.get(timeout=timeout)


def reply_byte(i):
    """Byte i of every `orderly serve reply` answer: 63 letters, then a newline."""
    col = i % 64
    return 10 if col == 63 else ord("a") + col % 26


def expected_reply(n):
    line = bytes(reply_byte(i) for i in range(64))
    return (line * (n // 64 + 1))[:n]


def client_exchange(port, request, rcvbuf=None, delay=0.0, shut_wr=True, timeout=TIMEOUT):
    """A Python client: sends `request` (from a thread, so a server that replies before reading
    everything cannot deadlock us), half-closes, waits `delay`, reads to EOF.
    Returns (reply bytes, the error that ended the read or None)."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    send_error = []

    def send():
        try:
            s.sendall(request)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            send_error.append(e)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    time.sleep(delay)
    data = bytearray()
    error = None
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        error = e
    t.join(timeout)
    s.close()
    return bytes(data), error
