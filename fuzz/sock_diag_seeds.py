#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_sock_diag: real sock_diag replies from the running kernel, one
file per datagram, as orderly::diag::parse_reply receives them.

Usage (root): unshare -n python3 fuzz/sock_diag_seeds.py fuzz/corpus/fuzz_sock_diag
In a fresh network namespace the tables hold only the sockets this script makes on loopback:
listeners, connections with queued bytes, CLOSE_WAIT, FIN_WAIT2, a socket left to the kernel,
IPv6, Unix paths, abstract names, a socketpair whose peer closed; the kernel's answer to a
request it refuses; and two variants made here (cut short, flagged as interrupted)."""

import os
import socket
import struct
import subprocess
import sys

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST_DUMP = 0x301
INFO_AND_MEMORY = (1 << (2 - 1)) | (1 << (7 - 1))  # INET_DIAG_INFO, INET_DIAG_SKMEMINFO
UNIX_SHOW = 0x01 | 0x04 | 0x10 | 0x20 | 0x40  # NAME, PEER, RQLEN, MEMINFO, UID


def request(seq, body):
    return struct.pack("=IHHII", 16 + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST_DUMP, seq,
                       0) + body


def tcp_request(seq, family):
    return request(seq, struct.pack("=BBBBI", family, socket.IPPROTO_TCP, INFO_AND_MEMORY, 0,
                                    0x0FBE) + bytes(48))


def unix_request(seq):
    return request(seq, struct.pack("=BBHIIIII", socket.AF_UNIX, 0, 0, 0xFFFFFFFF, 0, UNIX_SHOW,
                                    0, 0))


def dump(req):
    """Every datagram of the kernel's reply, up to and including the one with NLMSG_DONE."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    s.sendto(req, (0, 0))
    parts = []
    while True:
        data = s.recv(65536)
        parts.append(data)
        off = 0
        while off + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, off)
            if kind in (2, 3):  # NLMSG_ERROR, NLMSG_DONE
                s.close()
                return parts
            off += (length + 3) & ~3


def pair(family, host):
    lst = socket.socket(family)
    lst.bind((host, 0))
    lst.listen(8)
    c = socket.create_connection(lst.getsockname()[:2])
    s, _ = lst.accept()
    return lst, c, s


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    keep = []
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        lst, c, s = pair(family, host)
        c.sendall(b"unread request bytes")  # ESTABLISHED with a receive queue
        lst2, c2, s2 = pair(family, host)
        c2.sendall(b"bye")
        c2.shutdown(socket.SHUT_WR)  # s2 in CLOSE_WAIT, c2 in FIN_WAIT2
        lst3, c3, s3 = pair(family, host)
        s3.close()  # left to the kernel in FIN_WAIT2, c3 in CLOSE_WAIT
        keep += [lst, c, s, lst2, c2, s2, lst3, c3]
    path = "/tmp/orderly-seed-%d.sock" % os.getpid()
    ul = socket.socket(socket.AF_UNIX)
    ul.bind(path)
    ul.listen(4)
    uc = socket.socket(socket.AF_UNIX)
    uc.connect(path)
    us, _ = ul.accept()
    uc.sendall(b"queued")
    al = socket.socket(socket.AF_UNIX)
    al.bind("\0orderly-seed\x01name")
    al.listen(1)
    a, b = socket.socketpair()
    b.sendall(b"xyz")
    b.close()  # a: peer gone, 3 bytes unread
    keep += [ul, uc, us, al, a]

    seeds = {"tcp4": tcp_request(1, socket.AF_INET), "tcp6": tcp_request(2, socket.AF_INET6),
             "unix": unix_request(3),
             "refused": request(4, struct.pack("=BBBBI", 99, 0, 0, 0, 0) + bytes(48))}
    for name, req in seeds.items():
        for i, part in enumerate(dump(req)):
            with open(os.path.join(out, "%s-%d" % (name, i)), "wb") as f:
                f.write(part)
    # Two the kernel rarely sends: a datagram cut short, and a dump the table changed under.
    with open(os.path.join(out, "tcp4-0"), "rb") as f:
        full = f.read()
    with open(os.path.join(out, "tcp4-truncated"), "wb") as f:
        f.write(full[:100])
    flags = struct.unpack_from("=H", full, 6)[0] | 0x10  # NLM_F_DUMP_INTR
    with open(os.path.join(out, "tcp4-interrupted"), "wb") as f:
        f.write(full[:6] + struct.pack("=H", flags) + full[8:])
    os.unlink(path)
    for s in keep:
        s.close()


if __name__ == "__main__":
    main()
