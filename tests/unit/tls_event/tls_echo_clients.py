#!/usr/bin/env python3
"""Concurrent Python `ssl` echo clients for the event layer's TLS server tests.

Usage: tls_echo_clients.py CA_FILE PORT CLIENTS BYTES
Each client (a thread) sends BYTES, reads the whole echo, then unwrap(): sends its close_notify
and waits for the server's; then reads the raw socket to EOF (the server's FIN, no RST). Prints
"ok N" when all N did, else one "fail I: why" line per client that did not.
With BYTES = 0 ("stream"): each client sends nothing and reads what the server streams (checking
the test pattern) until the server's close_notify, then unwrap() (ours answers it) and the FIN;
prints "ok N TOTAL_BYTES". Every wait is bounded."""
import socket
import ssl
import sys
import threading

ca, port, clients, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(ca)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
body = bytes((ord("a") + i % 23) for i in range(size))
failures = []
lock = threading.Lock()


received = [0] * clients


def stream(i, s):
    n = 0
    while True:
        chunk = s.recv(65536)
        if not chunk:  # the server's close_notify (a bare FIN would raise SSLEOFError)
            break
        for k in (0, len(chunk) - 1):
            if chunk[k] != ord("a") + (n + k) % 23:
                raise RuntimeError("byte %d is not the pattern" % (n + k))
        n += len(chunk)
    received[i] = n


def client(i):
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=60)
        s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
        if size == 0:
            stream(i, s)
            plain = s.unwrap()
            if plain.recv(65536):
                raise RuntimeError("bytes after the close_notify")
            plain.close()
            return
        s.sendall(body)
        got = bytearray()
        while len(got) < size:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("TLS EOF after %d of %d echoed bytes" % (len(got), size))
            got += chunk
        if bytes(got) != body:
            raise RuntimeError("echo differs")
        plain = s.unwrap()  # ours, then the server's close_notify
        rest = plain.recv(65536)  # the server's FIN next: b"" (an RST would raise)
        if rest:
            raise RuntimeError("%d bytes after the close_notify" % len(rest))
        plain.close()
    except Exception as e:  # noqa: BLE001 - every failure is reported
        with lock:
            failures.append("fail %d: %r" % (i, e))


threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join(90)
for f in failures:
    print(f, flush=True)
if not failures:
    print("ok", clients, *([sum(received)] if size == 0 else []), flush=True)
