"""orderly connect --tls against Python's ssl (TLS 1.2 and 1.3): the TLS end in order
(close_notify both ways, then FIN both ways), the --on-stdin-eof policies over TLS, truncation
(exit 6), verification and handshake failures (exit 7)."""

import datetime
import os
import socket
import ssl
import subprocess
import threading
import time

from cli_support import TIMEOUT
from tls_support import last_json, read_exactly, read_until_close_notify, tls_test


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
        # a closed socket, so the TCP end is a reset; the truncation came first and is reported.
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
        self.assertEqual(report["outcome"], "tls_truncated", report)
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
        report = last_json(r.stderr)  # RST goes out, but the reason is TLS: tls_error
        self.assertEqual(report["outcome"], "tls_error", report)
        self.assertEqual(report["method"], "abort", report)
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
        self.assertIn(b"does it speak TLS on this port?", r.stderr)  # OpenSSL's words alone
        # ("wrong version number") do not say what is wrong

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
