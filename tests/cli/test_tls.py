"""orderly cert, connect --tls and listen --tls-cert against Python's ssl (TLS 1.2 and 1.3),
openssl s_client and socat: the TLS end in order (close_notify both ways, then FIN both ways),
truncation (exit 6), verification and handshake failures (exit 7)."""

import datetime
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from cli_support import TIMEOUT, cli_test

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


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

    def server(self, handler, version="1.3", cert=None, key=None):
        """A Python ssl server on 127.0.0.1 for one connection; handler(ssl_sock) runs in a
        thread and its exception (if any) is kept. Returns (port, thread, errors)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ctx.maximum_version = VERSIONS[version]
        ctx.load_cert_chain(cert or self.cert, key or self.key)
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
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


class CertTest(tls_test):
    def test_cert_writes_a_pair_python_trusts_for_the_default_names(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.load_cert_chain(self.cert, self.key)  # the key matches the certificate
        self.assertEqual(os.stat(self.key).st_mode & 0o777, 0o600)
        der = ssl.PEM_cert_to_DER_cert(open(self.cert).read())
        for name in (b"localhost", bytes([127, 0, 0, 1]), bytes(15) + b"\x01"):
            self.assertIn(name, der)

    def test_cert_names(self):
        out = os.path.join(self.dir, "named", "deeper")
        r = self.run_orderly("cert", "--out", out, "--name", "example.test", "--name", "10.9.8.7")
        self.assertEqual(r.returncode, 0, r.stderr)
        der = ssl.PEM_cert_to_DER_cert(open(os.path.join(out, "cert.pem")).read())
        self.assertIn(b"example.test", der)
        self.assertIn(bytes([10, 9, 8, 7]), der)
        self.assertNotIn(b"localhost", der)

    def test_cert_unwritable_dir_is_a_clear_error(self):
        r = self.run_orderly("cert", "--out", "/etc/passwd/certs")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"--out /etc/passwd/certs: cannot create the directory", r.stderr)
        r = self.run_orderly("cert", "--out", self.cert)  # a file, not a directory
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"not a directory", r.stderr)
        if os.geteuid() != 0:  # root writes anywhere
            ro = os.path.join(self.dir, "ro")
            os.mkdir(ro, 0o555)
            r = self.run_orderly("cert", "--out", ro)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(b"cannot write", r.stderr)
