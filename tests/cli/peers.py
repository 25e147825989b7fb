#!/usr/bin/env python3
"""Small real peers for the CLI tests, one behaviour per mode.

Each server mode binds 127.0.0.1 port 0, prints "port N" on stdout, serves one connection and
exits; every wait is bounded so a broken test cannot leave it running for long.

  upper-after-eof  read until EOF, then reply "got N bytes: <DATA UPPERCASED>" and close
  reset            read a little, then close with SO_LINGER 0 (RST)
  silent           accept and send nothing until the client goes away (or 20 s)
  backlog-full     listen(0) and never accept; fill the queue so further SYNs are dropped
  line-reply       read one line, reply "ok: <line>", close in order (no EOF needed)
"""

import socket
import struct
import sys
import time


def listen(backlog=16):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(backlog)
    print("port", s.getsockname()[1], flush=True)
    s.settimeout(20)
    return s


def read_to_eof(c):
    data = b""
    while True:
        chunk = c.recv(65536)
        if not chunk:
            return data
        data += chunk


def main():
    mode = sys.argv[1]
    if mode == "backlog-full":
        s = listen(0)
        # One connection fills the accept queue of a listen(0) socket on Linux; a few more make
        # sure the SYN queue is busy too. None is ever accepted.
        fillers = []
        for _ in range(3):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(s.getsockname())
            fillers.append(f)
        time.sleep(20)
        return
    s = listen()
    c, _ = s.accept()
    c.settimeout(20)
    if mode == "upper-after-eof":
        data = read_to_eof(c)
        c.sendall(b"got %d bytes: " % len(data) + data.upper())
        c.shutdown(socket.SHUT_WR)
        read_to_eof(c)
        c.close()
    elif mode == "reset":
        c.recv(10)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    elif mode == "silent":
        try:
            read_to_eof(c)
        except OSError:
            pass
        c.close()
    elif mode == "line-reply":
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(1)
            if not chunk:
                break
            data += chunk
        c.sendall(b"ok: " + data)
        c.shutdown(socket.SHUT_WR)
        read_to_eof(c)
        c.close()
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
