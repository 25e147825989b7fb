#!/usr/bin/env python3
"""A Python `ssl` peer for the tls_stream tests. Prints "port N" (server modes) first, then
what it saw, one line each; every wait is bounded (settimeout)."""
import socket
import ssl
import sys
import time

mode, cert, key, version = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
proto = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2


def say(*a):
    print(*a, flush=True)


def read_until_eof(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def raw_drain_and_close(raw):
    try:
        read_until_eof(raw)
    except OSError as e:
        say("raw-error", e)
    raw.close()


if mode.startswith("client"):
    port = int(sys.argv[5])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert)
    ctx.minimum_version = ctx.maximum_version = proto
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    s.sendall(b"request from python\n")
    if mode == "client-first-notify":
        plain = s.unwrap()  # our close_notify, then waits for theirs
        say("unwrap-ok")
        raw_drain_and_close(plain)
    sys.exit(0)

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.minimum_version = ctx.maximum_version = proto
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
ls.settimeout(10)
say("port", ls.getsockname()[1])
raw, _ = ls.accept()
raw.settimeout(10)
try:
    s = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
except (ssl.SSLError, OSError) as e:
    say("handshake-error", e)
    sys.exit(0)
if mode == "echo-unwrap":
    req = read_until_eof(s)  # b"" = the client's close_notify
    say("request", len(req))
    s.sendall(b"reply:" + req)
    plain = s.unwrap()  # answers the close_notify
    say("unwrap-ok")
    plain.shutdown(socket.SHUT_WR)
    raw_drain_and_close(plain)
elif mode == "truncate":
    s.sendall(b"partial data")
    time.sleep(0.05)
    s.shutdown(socket.SHUT_WR)  # SSLSocket.shutdown drops TLS: a TCP FIN, no close_notify
    raw_drain_and_close(s)
elif mode == "truncate-close":
    s.sendall(b"partial data")
    time.sleep(0.05)
    s.close()  # gone at once: no close_notify, and whatever we send back meets a closed socket
elif mode in ("no-answer-fin", "no-answer-hold"):
    req = read_until_eof(s)
    say("request", len(req))
    if mode == "no-answer-hold":
        time.sleep(3)
    s.shutdown(socket.SHUT_WR)  # no close_notify in answer to ours
    raw_drain_and_close(s)
