"""orderly serve with Python clients: orderly vs naive close of a reply, echo under concurrency,
discard counts, graceful stop with a summary."""

import json
import os
import signal
import socket
import threading
import time
import unittest

from cli_support import TIMEOUT, cli_test, client_exchange, expected_reply


class ServeTest(cli_test):
    def serve(self, *args):
        pr = self.orderly("serve", *args, "127.0.0.1:0")
        _, port = self.listening(pr)
        return pr, port

    def stop(self, pr):
        pr.p.send_signal(signal.SIGINT)
        return pr.wait()

    def test_reply_orderly_delivers_every_byte(self):
        size = 4 << 20
        pr, port = self.serve("reply", "--bytes", str(size), "--read", "1000", "--close",
                              "orderly", "--report")
        # A large request of which the server reads only 1000 bytes, a small receive buffer and a
        # late reader: the conditions under which a plain close() loses the reply.
        data, error = client_exchange(port, b"q" * 300_000, rcvbuf=16384, delay=0.3)
        self.assertIsNone(error)
        self.assertEqual(len(data), size)
        self.assertEqual(data, expected_reply(size))
        self.assertEqual(self.stop(pr), 0, pr.stderr)
        self.assertIn("clean", pr.stderr)
        self.assertIn("served 1 connection: clean 1", pr.stderr)

    def test_reply_naive_loses_bytes(self):
        size = 4 << 20
        pr, port = self.serve("reply", "--bytes", str(size), "--read", "1000", "--close", "naive",
                              "--report")
        data, error = client_exchange(port, b"q" * 300_000, rcvbuf=16384, delay=0.3)
        # The RST caused by the unread request throws away what was still queued for us.
        self.assertIsInstance(error, ConnectionResetError)
        self.assertLess(len(data), size)
        self.assertEqual(data, expected_reply(size)[: len(data)])
        self.assertEqual(self.stop(pr), 0, pr.stderr)
        self.assertIn("unread_data_discarded", pr.stderr)

    def test_reply_reading_until_eof(self):
        pr, port = self.serve("reply", "--bytes", "1000", "--max-connections", "1")
        data, error = client_exchange(port, b"request")
        self.assertIsNone(error)
        self.assertEqual(data, expected_reply(1000))
        self.assertEqual(pr.wait(), 0, pr.stderr)

    def test_reply_abort_resets(self):
        pr, port = self.serve("reply", "--bytes", "10", "--close", "abort", "--max-connections",
                              "1")
        data, error = client_exchange(port, b"request", delay=0.2)
        self.assertIsInstance(error, ConnectionResetError)
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertIn("aborted 1", pr.stderr)

    def test_echo_50_concurrent_clients(self):
        pr, port = self.serve("echo")
        results = [None] * 50
        payloads = [os.urandom(50_000 + i * 1000) for i in range(50)]

        def one(i):
            results[i] = client_exchange(port, payloads[i])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        for i, (data, error) in enumerate(results):
            self.assertIsNone(error, f"client {i}")
            self.assertEqual(data, payloads[i], f"client {i}")
        self.assertEqual(self.stop(pr), 0, pr.stderr)
        self.assertIn("served 50 connections: clean 50", pr.stderr)

    def test_discard_reports_byte_count(self):
        pr, port = self.serve("discard", "--json", "--max-connections", "1")
        data, error = client_exchange(port, b"d" * 12345)
        self.assertIsNone(error)
        self.assertEqual(data, b"")
        self.assertEqual(pr.wait(), 0, pr.stderr)
        reports = [json.loads(l) for l in pr.stderr.splitlines() if l.startswith("{")]
        self.assertEqual(len(reports), 1, pr.stderr)
        self.assertEqual(reports[0]["outcome"], "clean")
        self.assertEqual(reports[0]["bytes_received"], 12345)
        self.assertIn("discarded 12345 B from 127.0.0.1:", pr.stderr)

    def test_sigterm_stops_gracefully_mid_connection(self):
        pr, port = self.serve("echo", "--report")
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        s.sendall(b"hello")
        self.assertEqual(s.recv(5), b"hello")
        pr.p.send_signal(signal.SIGTERM)
        # The server finishes in order: FIN, not RST; then it waits for our EOF.
        self.assertEqual(s.recv(5), b"")
        s.shutdown(socket.SHUT_WR)
        s.close()
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertIn("served 1 connection: clean 1", pr.stderr)

    def test_stop_is_bounded_when_a_client_never_reads(self):
        # The client floods the echo server and never reads: the echo blocks on a full buffer.
        # A graceful stop still ends within the close timeout, by abort, and says so.
        pr, port = self.serve("echo", "--close-timeout", "500ms")
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        flood_error = []

        def flood():
            try:
                s.sendall(b"f" * (64 << 20))
            except OSError as e:
                flood_error.append(e)

        t = threading.Thread(target=flood, daemon=True)
        t.start()
        time.sleep(0.5)
        started = time.monotonic()
        pr.p.send_signal(signal.SIGTERM)
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertLess(time.monotonic() - started, 5)
        # Aborted either way: by the close deadline, or because the peer kept sending more than
        # the drain limit after the stop began (the flood does both; whichever comes first).
        self.assertRegex(pr.stderr, r"served 1 connection: (timed_out|drain_limit) 1")
        t.join(TIMEOUT)
        s.close()

    def test_lifetime_timeout_ends_a_client_that_trickles(self):
        # One byte every 100 ms keeps pushing the 300 ms idle timeout back; the lifetime timeout
        # is not pushed back by anything and aborts the connection 800 ms after it was accepted.
        pr, port = self.serve("echo", "--json", "--idle-timeout", "300ms",
                              "--lifetime-timeout", "800ms", "--max-connections", "1")
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        started = time.monotonic()
        ended = None
        for _ in range(50):  # at most 5 s
            try:
                s.sendall(b"t")
                if s.recv(1) == b"":
                    ended = "eof"
                    break
            except ConnectionResetError:
                ended = "reset"
                break
            time.sleep(0.1)
        took = time.monotonic() - started
        s.close()
        self.assertEqual(ended, "reset", "the trickle was not ended by an abort")
        self.assertGreaterEqual(took, 0.75)  # not the idle timeout (300 ms) ...
        self.assertLess(took, 2.0)  # ... and not long after the lifetime
        self.assertEqual(pr.wait(), 0, pr.stderr)
        reports = [json.loads(l) for l in pr.stderr.splitlines() if l.startswith("{")]
        self.assertEqual(len(reports), 1, pr.stderr)
        self.assertEqual(reports[0]["outcome"], "timed_out")
        self.assertGreaterEqual(reports[0]["bytes_received"], 5)

    def test_bad_mode_exit_2(self):
        r = self.run_orderly("serve", "chargen", "127.0.0.1:0")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"chargen", r.stderr)

    def test_bad_close_exit_2(self):
        r = self.run_orderly("serve", "reply", "--close", "sideways", "127.0.0.1:0")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"sideways", r.stderr)

    def test_bad_size_exit_2(self):
        r = self.run_orderly("serve", "reply", "--bytes", "lots", "127.0.0.1:0")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"lots", r.stderr)

    def test_help(self):
        r = self.run_orderly("serve", "--help")
        self.assertEqual(r.returncode, 0)
        for option in (b"echo", b"discard", b"reply", b"--bytes", b"--read", b"--close",
                       b"--report", b"--json", b"--max-connections", b"--lifetime-timeout"):
            self.assertIn(option, r.stdout)


if __name__ == "__main__":
    unittest.main()
