"""orderly serve --tls-cert/--tls-key with Python ssl clients: hundreds of concurrent TLS echo
clients that half-close with unwrap(), a graceful stop while clients stream, truncating clients,
the three --close modes of reply over TLS, and certificate/key errors."""

import collections
import json
import os
import resource
import signal
import socket
import ssl
import threading
import time

import tls_clients
from cli_support import TIMEOUT, expected_reply
from tls_support import read_exactly, tls_test


def outcomes(stderr):
    """The outcome of every --json report line."""
    found = collections.Counter()
    for line in stderr.splitlines():
        if line.startswith("{"):
            found[json.loads(line)["outcome"]] += 1
    return found


def json_reports(stderr):
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


class ServeTlsTest(tls_test):
    def setUp(self):
        super().setUp()
        # 500 clients here and 500 connections in the server (which inherits the limit).
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < 4096:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
        self.ctx = tls_clients.client_context(self.cert)

    def serve(self, *args):
        pr = self.orderly("serve", "--tls-cert", self.cert, "--tls-key", self.key, *args,
                          "127.0.0.1:0")
        _, port = self.listening(pr)
        return pr, port

    def stop(self, pr):
        pr.p.send_signal(signal.SIGTERM)
        return pr.wait(timeout=TIMEOUT)

    def blocking_client(self, port, rcvbuf=None, suppress_ragged_eofs=False):
        c = socket.socket()
        if rcvbuf:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        c.settimeout(TIMEOUT)
        c.connect(("127.0.0.1", port))
        return self.ctx.wrap_socket(c, server_hostname="localhost",
                                    suppress_ragged_eofs=suppress_ragged_eofs)

    def assert_clean_ends(self, clients):
        for i, c in enumerate(clients):
            self.assertIsNone(c.error, f"client {i}: {c.events}")
            # The server's close_notify, then its FIN, and nothing else (no RST).
            self.assertEqual(c.events, ["close_notify", "fin"], f"client {i}")

    # (a) Hundreds of clients at once, each a 64 KiB echo over TLS with unwrap().
    def test_500_concurrent_tls_echo_clients_half_close_with_unwrap(self):
        n = 500
        pr, port = self.serve("echo", "--threads", "2", "--json")
        clients = [tls_clients.tls_client(self.ctx, port, payload=os.urandom(64 << 10))
                   for _ in range(n)]
        started = time.monotonic()
        left = tls_clients.run(clients, timeout=45)
        took = time.monotonic() - started
        self.assertEqual(left, [], f"{len(left)} clients did not finish in {took:.1f} s")
        self.assert_clean_ends(clients)
        for i, c in enumerate(clients):
            self.assertEqual(len(c.echo), len(c.payload), f"client {i}")
            self.assertEqual(bytes(c.echo), c.payload, f"client {i}")
        self.assertEqual(self.stop(pr), 0, pr.stderr[-2000:])
        reports = json_reports(pr.stderr)
        self.assertEqual(len(reports), n)
        for r in reports:
            self.assertEqual(r["outcome"], "clean", r)
            self.assertTrue(r["tls"]["close_notify_sent"], r)
            self.assertTrue(r["tls"]["close_notify_received"], r)
            self.assertEqual(r["tls"]["close_notify_wait"], "received", r)
        self.assertIn(f"served {n} connections: clean {n}\n", pr.stderr)

    # The other TLS half-close: close_notify and FIN at once (orderly's own shutdown_write()), the
    # client's Finished, close_notify and FIN arriving right behind each other.
    def test_clients_that_fin_right_after_close_notify(self):
        n = 150
        pr, port = self.serve("echo", "--threads", "1", "--json")
        clients = [tls_clients.tls_client(self.ctx, port, payload=b"", fin_with_notify=True)
                   for _ in range(n)]
        left = tls_clients.run(clients, timeout=10)
        self.assertEqual(len(left), 0, f"{len(left)} of {n} connections stalled")
        self.assert_clean_ends(clients)
        self.assertEqual(self.stop(pr), 0, pr.stderr[-2000:])
        self.assertIn(f"served {n} connections: clean {n}\n", pr.stderr)

    # (b) SIGTERM while 300 clients stream: close_notify then FIN for each, nothing lost, no RST.
    def test_graceful_stop_while_300_tls_clients_stream(self):
        n = 300
        pr, port = self.serve("echo", "--threads", "2", "--json", "--close-timeout", "10s")
        clients = [tls_clients.tls_client(self.ctx, port, payload=None) for _ in range(n)]
        left = []
        runner = threading.Thread(target=lambda: left.extend(tls_clients.run(clients, 40)))
        runner.start()
        # Every client is streaming (some of its echo came back) before the stop.
        until = time.monotonic() + 30
        while time.monotonic() < until and not all(len(c.echo) > 0 for c in clients):
            time.sleep(0.05)
        self.assertTrue(all(len(c.echo) > 0 for c in clients), "not every client got going")
        time.sleep(0.3)
        pr.p.send_signal(signal.SIGTERM)
        runner.join(45)
        self.assertFalse(runner.is_alive())
        self.assertEqual(pr.wait(), 0, pr.stderr[-2000:])
        self.assertEqual(left, [], f"{len(left)} clients did not finish")
        self.assert_clean_ends(clients)
        for i, c in enumerate(clients):
            # What came back is exactly what was sent, in order, up to where the server stopped
            # taking input; the stream ended with close_notify, so nothing was cut.
            self.assertGreater(len(c.echo), 0)
            self.assertEqual(bytes(c.echo), c.expected(len(c.echo)), f"client {i}")
        self.assertEqual(outcomes(pr.stderr), {"clean": n})
        self.assertIn(f"served {n} connections: clean {n}\n", pr.stderr)
        self.assertNotIn("peer_reset", pr.stderr)

    # (c) Clients that end TCP without close_notify, and one that does not speak TLS.
    def test_truncating_clients_are_tls_truncated_in_report_and_summary(self):
        pr, port = self.serve("echo", "--report")
        good = [tls_clients.tls_client(self.ctx, port, payload=os.urandom(20_000))
                for _ in range(3)]
        bad = [tls_clients.tls_client(self.ctx, port, payload=os.urandom(20_000),
                                      end="truncate") for _ in range(5)]
        self.assertEqual(tls_clients.run(good + bad, timeout=TIMEOUT), [])
        self.assert_clean_ends(good)
        for c in bad:
            self.assertEqual(bytes(c.echo), c.payload)  # all of it echoed before the cut
            self.assertEqual(c.events, ["truncated"])
        plain = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        plain.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            while plain.recv(4096):
                pass
        except ConnectionResetError:
            pass
        plain.close()
        until = time.monotonic() + TIMEOUT
        while pr.stderr.count("close report") < 9 and time.monotonic() < until:
            time.sleep(0.05)
        self.assertEqual(self.stop(pr), 0, pr.stderr)
        text = pr.stderr
        self.assertEqual(text.count(": tls_truncated ("), 5, text)
        self.assertIn("close_notify sent no received no (peer_fin)", text)
        self.assertIn("the peer ended TCP without close_notify", text)
        self.assertIn("TLS handshake with 127.0.0.1:", text)  # the plain client, said once
        self.assertIn("served 9 connections: clean 3, tls_error 1, tls_truncated 5\n", text)

    def test_client_that_stops_after_client_hello_meets_the_handshake_timeout(self):
        pr, port = self.serve("echo", "--json", "--idle-timeout", "1s", "--max-connections", "1")
        obj = self.ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(),
                                server_hostname="localhost")
        with self.assertRaises(ssl.SSLWantReadError):
            obj.do_handshake()
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        raw.sendall(out.read())  # the ClientHello, then nothing
        started = time.monotonic()
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertLess(time.monotonic() - started, 5)
        raw.close()
        (r,) = json_reports(pr.stderr)
        self.assertEqual(r["outcome"], "timed_out", r)
        self.assertIn("handshake", r["tls"]["detail"], r)

    # (d) reply --close orderly / naive / abort over TLS: what the client sees.
    def test_reply_close_orderly_over_tls(self):
        size = 1 << 20
        pr, port = self.serve("reply", "--bytes", str(size), "--close", "orderly", "--json")
        c = tls_clients.tls_client(self.ctx, port, payload=b"request")
        self.assertEqual(tls_clients.run([c], TIMEOUT), [])
        self.assertEqual(c.events, ["close_notify", "fin"])  # close_notify, then FIN
        self.assertEqual(bytes(c.echo), expected_reply(size))
        self.assertEqual(self.stop(pr), 0, pr.stderr)
        (r,) = json_reports(pr.stderr)
        self.assertEqual(r["outcome"], "clean", r)

    def test_reply_close_naive_over_tls_is_a_truncation(self):
        size = 100_000
        pr, port = self.serve("reply", "--bytes", str(size), "--read", "7", "--close", "naive",
                              "--json")
        # A client that checks: every byte, then a TCP EOF without close_notify.
        s = self.blocking_client(port)
        s.sendall(b"request")  # exactly --read: nothing stays unread, so FIN, not RST
        got = read_exactly(s, size)
        with self.assertRaises(ssl.SSLEOFError):  # "EOF occurred in violation of protocol"
            s.recv(1)
        s.close()
        self.assertEqual(got, expected_reply(size))
        # Python's default (suppress_ragged_eofs=True) hides the same truncation as a plain EOF.
        s = self.blocking_client(port, suppress_ragged_eofs=True)
        s.sendall(b"request")
        got = read_exactly(s, size)
        self.assertEqual(s.recv(1), b"")
        s.close()
        until = time.monotonic() + TIMEOUT
        while len(json_reports(pr.stderr)) < 2 and time.monotonic() < until:
            time.sleep(0.05)
        self.assertEqual(self.stop(pr), 0, pr.stderr)
        for r in json_reports(pr.stderr):
            # Our side knows it: a plain close, close_notify never sent.
            self.assertEqual(r["outcome"], "closed", r)
            self.assertEqual(r["method"], "close", r)
            self.assertFalse(r["tls"]["close_notify_sent"], r)

    def test_reply_close_naive_over_tls_with_unread_request_resets(self):
        size = 4 << 20
        pr, port = self.serve("reply", "--bytes", str(size), "--read", "1000", "--close",
                              "naive", "--report")
        s = self.blocking_client(port, rcvbuf=16384)
        sender = threading.Thread(target=lambda: _send_quietly(s, b"q" * 300_000), daemon=True)
        sender.start()
        # A slow reader until the server has closed (its report is out), so that the server is
        # ahead however fast or slow (sanitizers) it runs: the reply still queued in the kernel
        # at its close() is what the RST throws away.
        got = bytearray()
        error = None
        until = time.monotonic() + TIMEOUT
        try:
            while len(got) < size and time.monotonic() < until:
                if "close report" not in pr.stderr:
                    time.sleep(0.01)
                chunk = s.recv(16384)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, ssl.SSLError) as e:
            error = e
        sender.join(TIMEOUT)
        s.close()
        # The RST cut the reply short. OpenSSL 3 reports the reset under TLS as an EOF without
        # close_notify (SSLEOFError; with Python's default suppress_ragged_eofs=True, b"").
        self.assertIsInstance(error, (ssl.SSLEOFError, ConnectionResetError))
        self.assertLess(len(got), size)
        self.assertEqual(bytes(got), expected_reply(size)[: len(got)])
        self.assertEqual(self.stop(pr), 0, pr.stderr)
        self.assertIn("unread_data_discarded", pr.stderr)

    def test_reply_close_abort_over_tls_resets(self):
        pr, port = self.serve("reply", "--bytes", "10", "--read", "7", "--close", "abort",
                              "--max-connections", "2")
        # On the wire: the 10 bytes, then RST (the raw socket's recv raises ECONNRESET).
        c = tls_clients.tls_client(self.ctx, port, payload=b"request", end="none")
        self.assertEqual(tls_clients.run([c], TIMEOUT), [])
        self.assertEqual(bytes(c.echo), expected_reply(10))
        self.assertEqual(c.events, ["reset"])
        # Python's ssl (OpenSSL 3) says the same reset as an EOF without close_notify.
        s = self.blocking_client(port)
        s.sendall(b"request")
        time.sleep(0.2)
        self.assertEqual(read_exactly(s, 10), expected_reply(10))
        with self.assertRaises((ssl.SSLEOFError, ConnectionResetError)):
            s.recv(4096)
        s.close()
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertIn("served 2 connections: aborted 2\n", pr.stderr)

    def test_report_text_has_the_tls_part(self):
        pr, port = self.serve("discard", "--report")
        c = tls_clients.tls_client(self.ctx, port, payload=b"x" * 5000)
        self.assertEqual(tls_clients.run([c], TIMEOUT), [])
        self.assertEqual(c.events, ["close_notify", "fin"])
        self.assertEqual(self.stop(pr), 0, pr.stderr)
        self.assertIn(", tls TLSv1.3 ", pr.stderr)
        self.assertIn("close_notify sent yes received yes (received)", pr.stderr)
        self.assertRegex(pr.stderr, r"discarded 5000 B from 127\.0\.0\.1:\d+ \(\d+ B of TLS "
                                    r"records\)")

    # (e) Certificate and key errors: exit 2 before listening, the files and the reason named.
    def test_bad_cert_or_key_exit_2_names_files(self):
        other = os.path.join(self.dir, "other")
        self.assertEqual(self.run_orderly("cert", "--out", other).returncode, 0)
        other_key = os.path.join(other, "key.pem")
        missing = os.path.join(self.dir, "missing.pem")
        not_pem = os.path.join(self.dir, "not.pem")
        with open(not_pem, "w") as f:
            f.write("hello\n")
        cases = [
            (["--tls-cert", self.cert, "--tls-key", other_key],
             [self.cert, other_key, "does not match"]),
            (["--tls-cert", missing, "--tls-key", self.key], [missing, "unreadable"]),
            (["--tls-cert", self.cert, "--tls-key", not_pem], [not_pem, "not PEM"]),
            (["--tls-cert", self.cert], ["--tls-cert and --tls-key go together"]),
            (["--tls-key", self.key], ["--tls-cert and --tls-key go together"]),
            (["--tls-alpn", "h2"], ["--tls-alpn needs --tls-cert and --tls-key"]),
        ]
        for args, words in cases:
            with self.subTest(args=args):
                r = self.run_orderly("serve", "echo", *args, "127.0.0.1:0")
                self.assertEqual(r.returncode, 2, r.stderr)
                for w in words:
                    self.assertIn(w.encode(), r.stderr)
                self.assertNotIn(b"listening on", r.stderr)

    def test_help_lists_tls_options(self):
        r = self.run_orderly("serve", "--help")
        self.assertEqual(r.returncode, 0)
        for opt in (b"--tls-cert", b"--tls-key", b"--tls-alpn"):
            self.assertIn(opt, r.stdout)


def _send_quietly(s, data):
    try:
        s.sendall(data)
    except (OSError, ssl.SSLError):
        pass
