#!/usr/bin/env python3
"""Leaky programs for reviewing `orderly doctor` (beyond tests/cli/leaky.py). Each prints
"port N" then "ready" when its sockets are in the state named, and sleeps 60 s at most.

  shut-no-close   accepts one client, shutdown(SHUT_WR) after reading its request to EOF, never
                  close(): both FINs done, the descriptor held (TCP state CLOSE: in no table)
  shut-wait       accepts one client, shutdown(SHUT_WR) at once, the client never closes:
                  FIN_WAIT2 held by a descriptor
  shut-rd         accepts one client, shutdown(SHUT_RD), the client keeps sending
  reset-held      accepts one client, the client resets; never close()
  cw-pile N       N clients half-close, the server reads to EOF and never closes (CLOSE_WAIT)
  unread-close    the client sends 100 B and waits; the server reads 10 and close()s: RST
  stuck-send      the client never reads; the server sends until the kernel takes no more
"""
import socket, struct, sys, time

mode = sys.argv[1]
lst = socket.create_server(("127.0.0.1", 0))
port = lst.getsockname()[1]
print("port", port, flush=True)
keep = []

def client():
    c = socket.create_connection(("127.0.0.1", port))
    keep.append(c)
    s, _ = lst.accept()
    keep.append(s)
    return c, s

if mode == "shut-no-close":
    c, s = client()
    c.sendall(b"req"); c.shutdown(socket.SHUT_WR)
    while s.recv(100): pass
    s.sendall(b"answer"); s.shutdown(socket.SHUT_WR)
    c.recv(100); c.recv(100); c.close()   # the peer ends in order
elif mode == "shut-wait":
    c, s = client()
    s.shutdown(socket.SHUT_WR)
elif mode == "shut-rd":
    c, s = client()
    s.shutdown(socket.SHUT_RD)
    c.sendall(b"x" * 1000)
elif mode == "reset-held":
    c, s = client()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close(); keep.remove(c)
elif mode == "cw-pile":
    for i in range(int(sys.argv[2])):
        c, s = client()
        c.shutdown(socket.SHUT_WR)
        while s.recv(100): pass
        c.close(); keep.remove(c)
elif mode == "unread-close":
    c, s = client()
    c.sendall(b"y" * 100)
    time.sleep(0.1)
    s.recv(10)
    s.close(); keep.remove(s)
elif mode == "stuck-send":
    c, s = client()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    try:
        while True: s.send(b"z" * 65536)
    except BlockingIOError:
        pass
else:
    sys.exit("unknown mode")
print("ready", flush=True)
time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 60)
