"""orderly connect against real peers: the reply after EOF, and every exit code provoked for real."""

import os
import subprocess
import time
import unittest

from cli_support import BIN, TIMEOUT, cli_test


class ConnectTest(cli_test):
    def test_reply_after_eof_is_printed_and_exit_0(self):
        # The server answers only after our EOF: nc without -N and socat (0.5 s) cut this short.
        _, port = self.peer("upper-after-eof")
        r = self.run_orderly("connect", f"127.0.0.1:{port}", input=b"hello world")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"got 11 bytes: HELLO WORLD")

    def test_closed_stdin_is_empty(self):
        # `orderly connect ... <&-`: descriptor 0 must not end up being the socket.
        _, port = self.peer("upper-after-eof")
        r = subprocess.run([BIN, "connect", f"127.0.0.1:{port}"], capture_output=False,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                           preexec_fn=lambda: os.close(0), timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"got 0 bytes: ")

    def test_large_request_reply_after_eof(self):
        _, port = self.peer("upper-after-eof")
        data = os.urandom(1 << 20).hex().encode()[: 1 << 20]
        r = self.run_orderly("connect", f"127.0.0.1:{port}", input=data)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"got %d bytes: " % len(data) + data.upper())

    def test_report_and_json(self):
        _, port = self.peer("upper-after-eof")
        r = self.run_orderly("connect", "--report", f"127.0.0.1:{port}", input=b"x")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"close report: clean", r.stderr)
        _, port = self.peer("upper-after-eof")
        r = self.run_orderly("connect", "--json", f"127.0.0.1:{port}", input=b"x")
        self.assertEqual(r.returncode, 0, r.stderr)
        import json

        report = json.loads(r.stderr.decode().strip().splitlines()[-1])
        self.assertEqual(report.get("outcome"), "clean", report)

    def test_on_stdin_eof_keep_sends_no_fin(self):
        # line-reply answers one line and closes; with `keep` we wait for that close, not send ours.
        _, port = self.peer("line-reply")
        r = self.run_orderly("connect", "--on-stdin-eof", "keep", f"127.0.0.1:{port}",
                             input=b"ping\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"ok: ping\n")

    def test_closed_stdout_is_a_local_error_exit_1(self):
        # `orderly connect ... | head -c 10`: EPIPE on stdout is our failure, not a reset (4).
        server = self.orderly("serve", "reply", "--bytes", "64M", "127.0.0.1:0")
        _, port = self.listening(server)
        p = subprocess.Popen([BIN, "connect", f"127.0.0.1:{port}"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        self.assertEqual(len(p.stdout.read(10)), 10)
        p.stdout.close()
        err = p.stderr.read()
        p.stderr.close()
        self.assertEqual(p.wait(timeout=TIMEOUT), 1, err)
        self.assertIn(b"stdout", err)

    def test_refused_exit_3(self):
        # A port that was free a moment ago: bind, note it, close (nothing listens there).
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        r = self.run_orderly("connect", f"127.0.0.1:{port}")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(b"refused", r.stderr)

    def test_reset_by_peer_exit_4(self):
        _, port = self.peer("reset")
        pr = self.orderly("connect", f"127.0.0.1:{port}", stdin=subprocess.PIPE)
        pr.p.stdin.write(b"hello")  # stdin stays open: only the peer's RST can end this
        pr.p.stdin.flush()
        self.assertEqual(pr.wait(), 4, pr.stderr)
        self.assertIn("reset", pr.stderr)
        pr.p.stdin.close()

    def test_idle_timeout_exit_5(self):
        _, port = self.peer("silent")
        started = time.monotonic()
        pr = self.orderly("connect", "--idle-timeout", "300ms", f"127.0.0.1:{port}",
                          stdin=subprocess.PIPE)
        self.assertEqual(pr.wait(), 5, pr.stderr)
        self.assertLess(time.monotonic() - started, 5)
        self.assertIn("idle", pr.stderr)
        pr.p.stdin.close()

    def test_deadline_exit_5(self):
        _, port = self.peer("silent")
        pr = self.orderly("connect", "--deadline", "400ms", f"127.0.0.1:{port}",
                          stdin=subprocess.PIPE)
        self.assertEqual(pr.wait(), 5, pr.stderr)
        self.assertIn("deadline", pr.stderr)
        pr.p.stdin.close()

    def test_connect_timeout_exit_5(self):
        # A listener whose accept queue is full drops our SYN: the connect itself times out.
        _, port = self.peer("backlog-full")
        time.sleep(0.2)
        started = time.monotonic()
        r = self.run_orderly("connect", "--timeout", "500ms", f"127.0.0.1:{port}")
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertLess(time.monotonic() - started, 5)

    def test_bad_port_exit_2_names_it(self):
        r = self.run_orderly("connect", "127.0.0.1:70000")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"70000", r.stderr)

    def test_missing_port_exit_2(self):
        r = self.run_orderly("connect", "localhost")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"localhost", r.stderr)

    def test_bad_option_exit_2_names_it(self):
        r = self.run_orderly("connect", "--frobnicate", "127.0.0.1:1")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"--frobnicate", r.stderr)

    def test_bad_duration_exit_2_names_it(self):
        r = self.run_orderly("connect", "--timeout", "soon", "127.0.0.1:1")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"soon", r.stderr)

    def test_bad_choice_exit_2(self):
        r = self.run_orderly("connect", "--on-stdin-eof", "explode", "127.0.0.1:1")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"explode", r.stderr)

    def test_help_explains_every_option(self):
        r = self.run_orderly("connect", "--help")
        self.assertEqual(r.returncode, 0)
        for option in (b"--on-stdin-eof", b"--timeout", b"--idle-timeout", b"--deadline",
                       b"--report", b"--json", b"Exit codes"):
            self.assertIn(option, r.stdout)
        r = self.run_orderly("--help")
        self.assertEqual(r.returncode, 0)
        for sub in (b"connect", b"listen", b"serve", b"lab"):
            self.assertIn(sub, r.stdout)


if __name__ == "__main__":
    unittest.main()
