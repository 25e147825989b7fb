#!/usr/bin/env python3
"""Servers that end connections badly (and one that does it right), for the tests of
`orderly doctor`. Each prints "port N" (or "path P") as its first line on stdout, then one line
per event named below, and exits by itself after 60 s at the latest.

  close-wait N        serves N connections: reads each request to EOF, answers, and forgets
                      close() (prints "served I" after each)
  close-wait-fixed N  the same with the fix: close() after the answer
  unread-close        reads 10 bytes of the request, answers ("replied"), waits for a line on
                      stdin, then close()s with the rest unread ("closed"): Linux sends RST
  sender              sends to its one client until the kernel takes no more ("stuck N")
  unix-close-wait P   like close-wait 1 on the Unix socket path P
"""

import socket
import sys
import time

from peers import listen, read_to_eof  # listen() prints "port N"

LIFETIME = 60


def say(*words):
    print(*words, flush=True)


def close_wait(lst, n, fixed):
    held = []
    for i in range(n):
        conn, _ = lst.accept()
        request = read_to_eof(conn)
        conn.sendall(b"got %d bytes\n" % len(request))
        if fixed:
            conn.close()
        else:
            held.append(conn)  # the bug: the peer has finished, and nobody closes this socket
        say("served", i + 1)
    time.sleep(LIFETIME)


def unread_close(lst):
    conn, _ = lst.accept()
    conn.recv(10)  # only the start of the request; the rest stays in the kernel
    conn.sendall(b"reply\n")
    say("replied")
    sys.stdin.readline()
    conn.close()  # with unread bytes queued: RST, not FIN
    say("closed")
    time.sleep(LIFETIME)


def sender(lst):
    conn, _ = lst.accept()
    conn.setblocking(False)
    sent = 0
    chunk = b"x" * 65536
    for _ in range(100000):
        try:
            sent += conn.send(chunk)
        except BlockingIOError:
            break
    say("stuck", sent)
    time.sleep(LIFETIME)


def main():
    mode = sys.argv[1]
    if mode == "unix-close-wait":
        lst = socket.socket(socket.AF_UNIX)
        lst.bind(sys.argv[2])
        lst.listen(16)
        say("path", sys.argv[2])
        close_wait(lst, 1, False)
    elif mode in ("close-wait", "close-wait-fixed"):
        close_wait(listen(), int(sys.argv[2]), mode == "close-wait-fixed")
    elif mode == "unread-close":
        unread_close(listen())
    elif mode == "sender":
        sender(listen())
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
