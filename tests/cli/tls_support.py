"""Shared by the TLS CLI tests (test_tls_connect.py, test_tls_listen.py): a certificate from
`orderly cert` per test, Python ssl servers on loopback, and readers that tell close_notify from a
bare FIN."""

import json
import os
import socket
import ssl
import tempfile
import threading

from cli_support import TIMEOUT, cli_test

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def cert_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def last_json(stderr):
    for line in reversed(stderr.decode(errors="replace").strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError("no JSON report in: " + stderr.decode(errors="replace"))


class tls_test(cli_test):
    def setUp(self):
        super().setUp()
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        r = self.run_orderly("cert", "--out", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.cert = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")

    def server(self, handler, version="1.3", cert=None, key=None, host="127.0.0.1"):
        """A Python ssl server on 127.0.0.1 for one connection; handler(ssl_sock) runs in a
        thread and its exception (if any) is kept. Returns (port, thread, errors)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ctx.maximum_version = VERSIONS[version]
        ctx.load_cert_chain(cert or self.cert, key or self.key)
        ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        ls.bind((host, 0))
        ls.listen(1)
        ls.settimeout(TIMEOUT)
        self.addCleanup(ls.close)
        errors = []

        def run():
            try:
                c, _ = ls.accept()
                c.settimeout(TIMEOUT)
                s = ctx.wrap_socket(c, server_side=True, suppress_ragged_eofs=False)
                handler(s)
            except Exception as e:  # noqa: BLE001 - reported by the test
                errors.append(e)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return ls.getsockname()[1], t, errors

    def connect(self, port, *args, input=b"", host="127.0.0.1"):
        return self.run_orderly("connect", "--tls", "--tls-ca", self.cert, "--json",
                                "--timeout", "5s", *args, f"{host}:{port}", input=input)


def read_until_close_notify(s):
    """Reads until the peer's close_notify; a TCP EOF without it raises SSLEOFError."""
    data = bytearray()
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return bytes(data)
        data += chunk


def read_exactly(s, n):
    data = bytearray()
    while len(data) < n:
        chunk = s.recv(min(65536, n - len(data)))
        if not chunk:
            raise AssertionError(f"EOF after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)
