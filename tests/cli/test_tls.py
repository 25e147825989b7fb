"""orderly cert, connect --tls and listen --tls-cert against Python's ssl (TLS 1.2 and 1.3),
openssl s_client and socat: the TLS end in order (close_notify both ways, then FIN both ways),
truncation (exit 6), verification and handshake failures (exit 7)."""

import datetime
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time

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


class CertTest(tls_test):
    def test_cert_writes_a_pair_python_trusts_for_the_default_names(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.load_cert_chain(self.cert, self.key)  # the key matches the certificate
        self.assertEqual(os.stat(self.key).st_mode & 0o777, 0o600)
        der = cert_der(self.cert)
        for name in (b"localhost", bytes([127, 0, 0, 1]), bytes(15) + b"\x01"):
            self.assertIn(name, der)

    def test_cert_names(self):
        out = os.path.join(self.dir, "named", "deeper")
        r = self.run_orderly("cert", "--out", out, "--name", "example.test", "--name", "10.9.8.7")
        self.assertEqual(r.returncode, 0, r.stderr)
        der = cert_der(os.path.join(out, "cert.pem"))
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


class ConnectTlsTest(tls_test):
    REQUEST = os.urandom(150_000).hex().encode()  # 300 kB: many records both ways

    def check_clean(self, r, version):
        self.assertEqual(r.returncode, 0, r.stderr)
        report = last_json(r.stderr)
        self.assertEqual(report["outcome"], "clean", report)
        tls = report["tls"]
        self.assertTrue(tls["close_notify_sent"], tls)
        self.assertTrue(tls["close_notify_received"], tls)
        self.assertEqual(tls["version"], "TLSv" + version, tls)
        return report

    def test_half_close_request_reply_tls13_every_byte_exit_0(self):
        # TLS 1.3 half-close: our close_notify ends the request; the reply comes after it.
        got = {}

        def handler(s):
            got["request"] = read_until_close_notify(s)  # raises on a FIN without close_notify
            s.sendall(got["request"].upper())
            s.unwrap().close()  # our close_notify came; theirs goes out, then FIN

        port, t, errors = self.server(handler, "1.3")
        r = self.connect(port, input=self.REQUEST)
        t.join(TIMEOUT)
        self.assertEqual(errors, [])
        self.assertEqual(got["request"], self.REQUEST)
        self.assertEqual(r.stdout, self.REQUEST.upper())
        self.check_clean(r, "1.3")

    def test_half_close_request_reply_tls12_openssl_peer(self):
        # RFC 5246 lets a TLS 1.2 peer end at our close_notify; OpenSSL (Python) still replies.
        got = {}

        def handler(s):
            got["request"] = read_until_close_notify(s)
            s.sendall(got["request"].upper())
            s.unwrap().close()

        port, t, errors = self.server(handler, "1.2")
        r = self.connect(port, input=self.REQUEST)
        t.join(TIMEOUT)
        self.assertEqual(errors, [])
        self.assertEqual(got["request"], self.REQUEST)
        self.assertEqual(r.stdout, self.REQUEST.upper())
        self.check_clean(r, "1.2")

    def test_request_reply_tls12_every_byte_exit_0(self):
        # TLS 1.2 has no half-close (a close_notify asks for one back at once), so this server
        # reads a request of known length, replies, then unwrap()s: that reads our close_notify.
        got = {}

        def handler(s):
            got["request"] = read_exactly(s, len(self.REQUEST))
            s.sendall(got["request"].upper())
            s.unwrap().close()  # raises unless our close_notify arrives

        port, t, errors = self.server(handler, "1.2")
        r = self.connect(port, input=self.REQUEST)
        t.join(TIMEOUT)
        self.assertEqual(errors, [])
        self.assertEqual(got["request"], self.REQUEST)
        self.assertEqual(r.stdout, self.REQUEST.upper())
        self.check_clean(r, "1.2")

    def test_truncating_peer_exit_6_report_says_tls_truncated(self):
        # The server sends part of a reply and its FIN without close_notify, then reads on (so
        # the TCP end stays orderly): the TLS end says the reply may be cut short.
        for version in ("1.2", "1.3"):
            with self.subTest(version=version):
                def handler(s):
                    read_exactly(s, 5)
                    s.sendall(b"partial reply")
                    s._sslobj = None  # drop TLS without SSL_shutdown, then a plain FIN
                    socket.socket.shutdown(s, socket.SHUT_WR)
                    while socket.socket.recv(s, 4096):
                        pass
                    socket.socket.close(s)

                port, t, errors = self.server(handler, version)
                r = self.connect(port, "--on-stdin-eof", "keep", input=b"hello")
                t.join(TIMEOUT)
                self.assertEqual(errors, [])
                self.assertEqual(r.returncode, 6, r.stderr)
                self.assertEqual(r.stdout, b"partial reply")  # what came is printed
                self.assertIn(b"without close_notify", r.stderr)
                report = last_json(r.stderr)
                self.assertEqual(report["outcome"], "tls_truncated", report)
                self.assertFalse(report["tls"]["close_notify_received"], report)

    def test_truncating_peer_that_closes_at_once_exit_6(self):
        # close() without close_notify: the TLS alert OpenSSL sends about the truncation meets
        # a closed socket, so the TCP end is a reset; the exit code still says truncation.
        def handler(s):
            read_exactly(s, 5)
            s.sendall(b"partial")
            s.close()

        port, t, errors = self.server(handler, "1.3")
        r = self.connect(port, "--on-stdin-eof", "keep", input=b"hello")
        t.join(TIMEOUT)
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertEqual(r.stdout, b"partial")
        report = last_json(r.stderr)
        self.assertIn(report["outcome"], ("tls_truncated", "peer_reset"), report)
        self.assertIn("without close_notify", report["tls"]["detail"], report)

    def test_records_buffered_in_tls_are_printed_without_waiting_for_more(self):
        # 50 small records in one burst land in one TCP read; each is printed at once, not one
        # per later wake-up of poll(2) (the socket is empty while TLS still holds them).
        release = threading.Event()

        def handler(s):
            read_exactly(s, 2)
            for i in range(50):
                s.sendall(b"line %02d\n" % i)  # one record each
            release.wait(TIMEOUT)
            s.unwrap().close()  # ours first (keep waits for it), then theirs

        port, t, errors = self.server(handler, "1.3")
        from cli_support import BIN
        import select
        p = subprocess.Popen([BIN, "connect", "--tls", "--tls-ca", self.cert, "--on-stdin-eof",
                              "keep", f"127.0.0.1:{port}"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(TIMEOUT)))
        p.stdin.write(b"go")
        p.stdin.close()
        out = b""
        end = time.monotonic() + 3
        while out.count(b"\n") < 50 and time.monotonic() < end:
            ready, _, _ = select.select([p.stdout], [], [], 0.2)
            if ready:
                out += os.read(p.stdout.fileno(), 65536)
        self.assertEqual(out.count(b"\n"), 50, out)  # all, while the server still waits
        release.set()
        self.assertEqual(p.wait(TIMEOUT), 0, p.stderr.read())
        t.join(TIMEOUT)
        self.assertEqual(errors, [])
        p.stdout.close()
        p.stderr.close()

    def test_peer_that_reads_nothing_is_a_bounded_timeout_exit_5(self):
        # A TLS record cannot be half sent and resumed: the send waits for room, bounded.
        done = threading.Event()

        def handler(s):
            s.do_handshake()
            done.wait(TIMEOUT)

        port, t, _ = self.server(handler)
        start = time.monotonic()
        r = self.connect(port, "--idle-timeout", "1s", input=b"z" * (16 << 20))
        done.set()
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(last_json(r.stderr)["outcome"], "timed_out")

    def test_wrong_host_name_exit_7(self):
        port, t, _ = self.server(lambda s: None)
        r = self.connect(port, "--tls-sni", "wrong.example", input=b"x")
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertIn(b"certificate verify failed", r.stderr)
        self.assertIn(b"hostname mismatch", r.stderr)
        report = last_json(r.stderr)  # aborted: RST, so the server sees no orderly end
        self.assertEqual(report["outcome"], "aborted", report)
        self.assertIn("hostname mismatch", report["tls"]["detail"], report)

    def test_ip_address_is_verified_as_ip_san(self):
        # The certificate names 127.0.0.1 and localhost, but not 127.0.0.2.
        def handler(s):
            s.sendall(b"ok")
            read_until_close_notify(s)
            s.unwrap().close()

        port, t, errors = self.server(handler)
        r = self.connect(port, "--tls-sni", "localhost", input=b"")
        t.join(TIMEOUT)
        self.assertEqual(errors, [])
        self.assertEqual(r.stdout, b"ok")
        self.check_clean(r, "1.3")
        # [::1] is in the certificate too (an IPv6 IP SAN).
        port, t, errors = self.server(handler, host="::1")
        r = self.connect(port, host="[::1]", input=b"")
        t.join(TIMEOUT)
        self.assertEqual(errors, [])
        self.assertEqual(r.stdout, b"ok")
        self.check_clean(r, "1.3")
        # 127.0.0.2 is not: the IP address does not verify.
        port, t, _ = self.server(lambda s: None, host="127.0.0.2")
        r = self.connect(port, host="127.0.0.2", input=b"")
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertIn(b"certificate verify failed", r.stderr)
        self.assertNotIn(b"ok", r.stdout)

    def test_untrusted_certificate_exit_7(self):
        port, t, _ = self.server(lambda s: None)
        # No --tls-ca: the system store does not trust a self-signed certificate.
        r = self.run_orderly("connect", "--tls", "--timeout", "5s", f"127.0.0.1:{port}")
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertIn(b"certificate verify failed: self-signed certificate", r.stderr)

    def test_expired_certificate_exit_7(self):
        cert, key = self.expired_pair()
        port, t, _ = self.server(lambda s: None, cert=cert, key=key)
        r = self.run_orderly("connect", "--tls", "--tls-ca", cert, "--timeout", "5s",
                             f"127.0.0.1:{port}")
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertIn(b"certificate has expired", r.stderr)

    def expired_pair(self):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        import ipaddress

        k = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.timezone.utc)
        c = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
             .public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=10))
             .not_valid_after(now - datetime.timedelta(days=1))
             .add_extension(x509.SubjectAlternativeName(
                 [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
             .sign(k, hashes.SHA256()))
        cert, key = os.path.join(self.dir, "old.pem"), os.path.join(self.dir, "old-key.pem")
        with open(cert, "wb") as f:
            f.write(c.public_bytes(serialization.Encoding.PEM))
        with open(key, "wb") as f:
            f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
        return cert, key

    def test_insecure_warns_loudly_and_connects(self):
        def handler(s):
            read_until_close_notify(s)
            s.sendall(b"fine")
            s.unwrap().close()

        port, t, errors = self.server(handler)
        r = self.run_orderly("connect", "--tls", "--tls-insecure", "--timeout", "5s",
                             f"127.0.0.1:{port}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"fine")
        self.assertIn(b"WARNING: --tls-insecure", r.stderr)

    def test_alpn_is_offered_and_reported(self):
        def handler(s):
            self.assertEqual(s.selected_alpn_protocol(), "h2")
            read_until_close_notify(s)
            s.unwrap().close()

        ctx_alpn = ssl.SSLContext.set_alpn_protocols
        orig = ssl.SSLContext.load_cert_chain

        def load(ctx, *a, **kw):  # the server accepts h2 only
            orig(ctx, *a, **kw)
            ctx_alpn(ctx, ["h2"])

        ssl.SSLContext.load_cert_chain = load
        try:
            port, t, errors = self.server(handler)
        finally:
            ssl.SSLContext.load_cert_chain = orig
        r = self.connect(port, "--tls-alpn", "http/1.1,h2")
        t.join(TIMEOUT)
        self.assertEqual(errors, [])
        self.assertEqual(last_json(r.stderr)["tls"]["alpn"], "h2")

    def test_plain_tcp_peer_that_says_nothing_times_out_exit_5(self):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        self.addCleanup(ls.close)
        start = time.monotonic()
        r = self.run_orderly("connect", "--tls", "--tls-ca", self.cert, "--timeout", "1s",
                             f"127.0.0.1:{ls.getsockname()[1]}")
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertLess(time.monotonic() - start, 5)

    def test_garbage_peer_exit_7_no_hang(self):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        self.addCleanup(ls.close)

        def garbage():
            c, _ = ls.accept()
            c.recv(4096)
            c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\nnot TLS at all\n" * 20)
            c.close()

        threading.Thread(target=garbage, daemon=True).start()
        r = self.run_orderly("connect", "--tls", "--tls-ca", self.cert, "--timeout", "5s",
                             f"127.0.0.1:{ls.getsockname()[1]}")
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertIn(b"TLS handshake", r.stderr)

    def test_tls_options_need_tls(self):
        r = self.run_orderly("connect", "--tls-ca", self.cert, "127.0.0.1:1")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"--tls", r.stderr)
        r = self.run_orderly("connect", "--tls", "--tls-ca", "/nonexistent.pem", "127.0.0.1:1")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"/nonexistent.pem", r.stderr)


class PoliciesTlsTest(tls_test):
    """--on-stdin-eof over TLS: the same behaviour as over TCP, with close_notify before FIN."""

    def test_keep_sends_no_close_notify_until_the_peer_ends(self):
        seen = {}

        def handler(s):
            line = read_exactly(s, 5)
            time.sleep(0.3)  # nothing from us meanwhile: keep sends no close_notify
            s.settimeout(0.2)
            try:
                seen["early"] = s.recv(10)
            except (TimeoutError, socket.timeout):
                seen["early"] = None
            s.settimeout(TIMEOUT)
            s.sendall(b"ok: " + line)
            s.unwrap()  # ours, then theirs (after our close_notify came)
            s.close()

        port, t, errors = self.server(handler, "1.3")
        r = self.connect(port, "--on-stdin-eof", "keep", input=b"ping\n")
        t.join(TIMEOUT)
        self.assertEqual(errors, [])
        self.assertIsNone(seen["early"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"ok: ping\n")
        self.assertEqual(last_json(r.stderr)["outcome"], "clean")

    def test_quiet_reads_until_quiet_then_close_notify(self):
        # A peer that takes our end as abort: it must not see close_notify while it is sending.
        got = {}

        def handler(s):
            read_exactly(s, 4)
            for _ in range(5):
                s.sendall(b"chunk\n")
                time.sleep(0.1)
            got["rest"] = read_until_close_notify(s)  # raises on a FIN without close_notify
            s.unwrap().close()

        port, t, errors = self.server(handler, "1.3")
        r = self.connect(port, "--on-stdin-eof", "quiet=400ms", input=b"GET\n")
        t.join(TIMEOUT)
        self.assertEqual(errors, [])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"chunk\n" * 5)
        self.assertEqual(got["rest"], b"")
        self.assertEqual(last_json(r.stderr)["outcome"], "clean")

    def test_close_with_the_reply_unread_exit_1(self):
        def handler(s):
            read_exactly(s, 3)
            s.sendall(b"x" * 100_000)
            time.sleep(0.5)
            s.close()

        port, t, errors = self.server(handler, "1.3")

        def slow_stdin():
            r, w = os.pipe()
            os.write(w, b"abc")
            threading.Timer(0.3, os.close, [w]).start()
            return r

        fd = slow_stdin()
        r = subprocess.run([*self.connect_argv(port), "--on-stdin-eof", "close"], stdin=fd,
                           capture_output=True, timeout=TIMEOUT)
        os.close(fd)
        t.join(TIMEOUT)
        report = last_json(r.stderr)
        if report["unread_bytes"] > 0:  # the reply had arrived: our close was an RST
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(report["outcome"], "unread_data_discarded", report)
        else:
            self.assertEqual(r.returncode, 0, r.stderr)

    def connect_argv(self, port):
        from cli_support import BIN
        return [BIN, "connect", "--tls", "--tls-ca", self.cert, "--json", "--timeout", "5s",
                f"127.0.0.1:{port}"]


class ListenTlsTest(tls_test):
    def listen(self, *args, stdin=subprocess.DEVNULL):
        pr = self.orderly("listen", "--tls-cert", self.cert, "--tls-key", self.key, "--json",
                          "--accept-timeout", "10s", *args, "127.0.0.1:0", stdin=stdin)
        return pr, self.listening(pr)[1]

    def client(self, port, version, request):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ctx.maximum_version = VERSIONS[version]
        ctx.load_verify_locations(self.cert)
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        s = ctx.wrap_socket(c, server_hostname="localhost", suppress_ragged_eofs=False)
        return s

    def test_python_client_every_byte_both_ways(self):
        for version in ("1.2", "1.3"):
            with self.subTest(version=version):
                reply = os.urandom(100_000)
                request = os.urandom(120_000)
                with open(os.path.join(self.dir, "reply"), "wb") as f:
                    f.write(reply)
                with open(os.path.join(self.dir, "reply"), "rb") as f:
                    pr, port = self.listen(stdin=f)
                s = self.client(port, version, request)
                sender = threading.Thread(target=s.sendall, args=(request,), daemon=True)
                sender.start()
                got = read_until_close_notify(s)  # our reply, then our close_notify
                sender.join(TIMEOUT)
                s.unwrap().close()  # theirs; unwrap also reads nothing more
                self.assertEqual(pr.wait(), 0, pr.stderr)
                self.assertEqual(got, reply)
                self.assertEqual(pr.out, request)
                report = last_json(pr.stderr.encode())
                self.assertEqual(report["outcome"], "clean", report)
                self.assertEqual(report["tls"]["version"], "TLSv" + version)

    def test_alpn_is_selected_and_reported(self):
        pr, port = self.listen("--tls-alpn", "http/1.1,h2")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.cert)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        s = ctx.wrap_socket(c, server_hostname="localhost", suppress_ragged_eofs=False)
        selected = s.selected_alpn_protocol()
        s.sendall(b"x")
        read_until_close_notify(s)
        s.unwrap().close()
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertEqual(selected, "http/1.1")  # the server's preference
        self.assertEqual(last_json(pr.stderr.encode())["tls"]["alpn"], "http/1.1")

    def test_mismatched_key_exit_2_names_both_files(self):
        other = os.path.join(self.dir, "other")
        self.assertEqual(self.run_orderly("cert", "--out", other).returncode, 0)
        other_key = os.path.join(other, "key.pem")
        r = self.run_orderly("listen", "--tls-cert", self.cert, "--tls-key", other_key,
                             "127.0.0.1:0")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(self.cert.encode(), r.stderr)
        self.assertIn(other_key.encode(), r.stderr)
        self.assertIn(b"does not match", r.stderr)
        self.assertNotIn(b"listening on", r.stderr)
        r = self.run_orderly("listen", "--tls-cert", self.cert, "127.0.0.1:0")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"--tls-key", r.stderr)

    def test_plain_tcp_client_exit_7(self):
        pr, port = self.listen()
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        c.shutdown(socket.SHUT_WR)
        try:
            while c.recv(4096):
                pass
        except ConnectionResetError:
            pass
        c.close()
        self.assertEqual(pr.wait(), 7, pr.stderr)
        self.assertIn("TLS handshake", pr.stderr)

    def test_keep_goes_on_after_a_failed_handshake(self):
        pr, port = self.listen("--keep")
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        c.sendall(b"not a ClientHello\r\n" * 10)
        try:
            c.recv(4096)
        except ConnectionResetError:
            pass
        c.close()
        r = self.run_orderly("connect", "--tls", "--tls-ca", self.cert, f"localhost:{port}",
                             input=b"second")
        self.assertEqual(r.returncode, 0, r.stderr)
        end = time.monotonic() + TIMEOUT
        while "clean" not in pr.stderr and time.monotonic() < end:
            time.sleep(0.05)
        self.assertIn("TLS handshake with 127.0.0.1:", pr.stderr)
        self.assertIn('"outcome":"clean"', pr.stderr)
        pr.p.terminate()
        pr.wait()
        self.assertIn(b"second", pr.out)

    def test_orderly_connect_against_orderly_listen_with_orderly_cert(self):
        reply = os.urandom(200_000)
        path = os.path.join(self.dir, "reply")
        with open(path, "wb") as f:
            f.write(reply)
        with open(path, "rb") as f:
            pr, port = self.listen(stdin=f)
        request = os.urandom(200_000)
        r = self.run_orderly("connect", "--tls", "--tls-ca", self.cert, "--json",
                             f"localhost:{port}", input=request)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertEqual(r.stdout, reply)
        self.assertEqual(pr.out, request)
        for report in (last_json(r.stderr), last_json(pr.stderr.encode())):
            self.assertEqual(report["outcome"], "clean", report)
            self.assertTrue(report["tls"]["close_notify_sent"], report)
            self.assertTrue(report["tls"]["close_notify_received"], report)


class UnixTlsTest(tls_test):
    def test_tls_over_a_unix_socket_needs_a_name(self):
        name = f"unix:@orderly-tls-{os.getpid()}"
        r = self.run_orderly("connect", "--tls", "--tls-ca", self.cert, name)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"--tls-sni", r.stderr)
        pr = self.orderly("listen", "--tls-cert", self.cert, "--tls-key", self.key,
                          "--accept-timeout", "10s", name, stdin=subprocess.PIPE)
        self.assertTrue(pr.stderr_line().startswith("listening on "))
        pr.p.stdin.write(b"from listen")
        pr.p.stdin.close()
        r = self.run_orderly("connect", "--tls", "--tls-ca", self.cert, "--tls-sni", "localhost",
                             "--report", name, input=b"from connect")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertEqual(r.stdout, b"from listen")
        self.assertEqual(pr.out, b"from connect")
        self.assertIn(b"close report: clean", r.stderr)


class OpensslPeersTest(tls_test):
    def free_port(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def test_socat_openssl_listen_half_close_echo(self):
        self.need("socat")
        port = self.free_port()
        self.start(["socat", f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,cert={self.cert},"
                    f"key={self.key},verify=0", "EXEC:cat"])
        data = os.urandom(60_000).hex().encode()
        for _ in range(100):  # until socat listens (refused: exit 3)
            r = self.connect(port, input=data)
            if r.returncode != 3:
                break
            time.sleep(0.05)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, data)
        report = last_json(r.stderr)
        self.assertEqual(report["outcome"], "clean", report)

    def test_openssl_s_client_against_listen(self):
        self.need("openssl")
        for version in ("-tls1_2", "-tls1_3"):
            with self.subTest(version=version):
                data = os.urandom(50_000)
                path = os.path.join(self.dir, "data")
                with open(path, "wb") as f:
                    f.write(data)
                with open(path, "rb") as f:
                    pr = self.orderly("listen", "--tls-cert", self.cert, "--tls-key", self.key,
                                      "--json", "--accept-timeout", "10s", "127.0.0.1:0",
                                      stdin=f)
                    port = self.listening(pr)[1]
                # -ign_eof: s_client reads until our close_notify, answers it and closes.
                c = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                                    "-CAfile", self.cert, "-verify_return_error", "-quiet",
                                    "-ign_eof", version], stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=TIMEOUT)
                self.assertEqual(pr.wait(), 0, pr.stderr)
                self.assertEqual(c.stdout, data)
                report = last_json(pr.stderr.encode())
                self.assertEqual(report["outcome"], "clean", report)

    def test_openssl_s_server_rev_both_versions(self):
        self.need("openssl")
        for version in ("-tls1_2", "-tls1_3"):
            with self.subTest(version=version):
                port = self.free_port()
                srv = self.start(["openssl", "s_server", "-accept", f"127.0.0.1:{port}",
                                  "-cert", self.cert, "-key", self.key, "-naccept", "1", "-rev",
                                  version], stdin=subprocess.PIPE)
                for _ in range(100):  # until s_server listens (refused: exit 3)
                    r = self.connect(port, "--close-timeout", "3s", input=b"hello\nworld\n")
                    if r.returncode != 3 or srv.p.poll() is not None:
                        break
                    time.sleep(0.05)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, b"olleh\ndlrow\n")
                report = last_json(r.stderr)
                self.assertEqual(report["outcome"], "clean", report)
                self.assertEqual(report["tls"]["version"], "TLSv" + version[-3:].replace("_", "."))
