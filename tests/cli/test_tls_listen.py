"""orderly cert, and orderly listen --tls-cert against Python's ssl, orderly connect --tls,
openssl s_client/s_server and socat OPENSSL-LISTEN."""

import errno
import os
import socket
import ssl
import subprocess
import threading
import time

from cli_support import TIMEOUT
from tls_support import VERSIONS, cert_der, last_json, read_until_close_notify, tls_test


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
        try:
            # The server may already have answered the garbage with an alert and RST (ENOTCONN).
            c.shutdown(socket.SHUT_WR)
            while c.recv(4096):
                pass
        except OSError as e:
            if e.errno not in (errno.ECONNRESET, errno.ENOTCONN):
                raise
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
