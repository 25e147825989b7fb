"""orderly listen with real clients: nc (netcat-openbsd), ncat, socat and orderly connect."""

import os
import subprocess
import tempfile
import unittest

from cli_support import BIN, TIMEOUT, cli_test


class ListenTest(cli_test):
    def start_listen(self, *args, reply=b"reply from listen\n"):
        pr = self.orderly("listen", *args, "127.0.0.1:0", stdin=subprocess.PIPE)
        host, port = self.listening(pr)
        self.assertEqual(host, "127.0.0.1")
        self.assertNotEqual(port, 0)
        pr.p.stdin.write(reply)
        pr.p.stdin.close()
        return pr, port

    def client(self, argv, data):
        return subprocess.run(argv, input=data, capture_output=True, timeout=TIMEOUT)

    def test_first_stderr_line_is_listening_on(self):
        pr = self.orderly("listen", "127.0.0.1:0")
        host, port = self.listening(pr)
        self.assertGreater(port, 0)

    def test_orderly_connect_to_orderly_listen(self):
        pr, port = self.start_listen("--report")
        r = self.client([BIN, "connect", f"127.0.0.1:{port}"], b"request from connect\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"reply from listen\n")
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertEqual(pr.out, b"request from connect\n")
        self.assertIn("clean", pr.stderr)

    def test_nc_client(self):
        self.need("nc")
        pr, port = self.start_listen()
        # -N: netcat-openbsd sends FIN on stdin EOF only when asked.
        r = self.client(["nc", "-N", "127.0.0.1", str(port)], b"hello from nc\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"reply from listen\n")
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertEqual(pr.out, b"hello from nc\n")

    def test_ncat_client(self):
        self.need("ncat")
        pr, port = self.start_listen()
        r = self.client(["ncat", "127.0.0.1", str(port)], b"hello from ncat\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"reply from listen\n")
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertEqual(pr.out, b"hello from ncat\n")

    def test_socat_client(self):
        self.need("socat")
        pr, port = self.start_listen()
        r = self.client(["socat", "-t", "5", "-", f"TCP:127.0.0.1:{port}"], b"hello from socat\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"reply from listen\n")
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertEqual(pr.out, b"hello from socat\n")

    def test_unix_socket(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "o.sock")
            pr = self.orderly("listen", f"unix:{path}", stdin=subprocess.PIPE)
            line = pr.stderr_line()
            self.assertEqual(line.strip(), f"listening on unix:{path}")
            pr.p.stdin.write(b"pong")
            pr.p.stdin.close()
            r = self.client([BIN, "connect", f"unix:{path}"], b"ping")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, b"pong")
            self.assertEqual(pr.wait(), 0, pr.stderr)
            self.assertEqual(pr.out, b"ping")

    def test_keep_accepts_one_after_another(self):
        pr = self.orderly("listen", "--keep", "--report", "127.0.0.1:0", stdin=subprocess.PIPE)
        _, port = self.listening(pr)
        pr.p.stdin.close()
        for i in range(3):
            r = self.client([BIN, "connect", f"127.0.0.1:{port}"], b"n%d" % i)
            self.assertEqual(r.returncode, 0, r.stderr)
        # Each client may exit before listen has finished with its side; wait for the third
        # report, or SIGINT would (rightly) abort a connection still in progress.
        for _ in range(3):
            while "close report" not in pr.stderr_line():
                pass
        pr.p.send_signal(2)  # SIGINT: stop listening
        self.assertEqual(pr.wait(), 0, pr.stderr)
        self.assertEqual(pr.out, b"n0n1n2")
        self.assertEqual(pr.stderr.count("close report"), 3, pr.stderr)

    def test_accept_timeout_exit_5(self):
        pr = self.orderly("listen", "--accept-timeout", "300ms", "127.0.0.1:0")
        self.listening(pr)
        self.assertEqual(pr.wait(), 5, pr.stderr)

    def test_bad_address_exit_2(self):
        r = self.run_orderly("listen", "127.0.0.1:99999")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"99999", r.stderr)

    def test_help(self):
        r = self.run_orderly("listen", "--help")
        self.assertEqual(r.returncode, 0)
        for option in (b"--keep", b"--on-stdin-eof", b"--accept-timeout", b"--idle-timeout",
                       b"--report", b"--json"):
            self.assertIn(option, r.stdout)


if __name__ == "__main__":
    unittest.main()
