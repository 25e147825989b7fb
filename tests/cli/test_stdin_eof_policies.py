"""--on-stdin-eof against peers that take our FIN as the end: a real nginx and `nc -l` stop sending
when they see it, so the default half-close loses data (and the report must say the peer ended
while we had half-closed); quiet=DURATION gets every byte and ends in order. Also: `close` that
resets the peer is not exit 0."""

import hashlib
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from cli_support import BIN, TIMEOUT, cli_test, proc

BIG = 50 * 1024 * 1024
HALF_CLOSED = b"the peer ended while we had half-closed"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, p, timeout=TIMEOUT):
    """Until 127.0.0.1:port accepts connections (or the process died)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and p.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def big_file(directory):
    """A 50 MB file of a repeating pattern (cheap to make, any cut or shift shows)."""
    block = bytes(range(256)) * 4096 + b"orderly"  # 1 MiB + 7: blocks do not align with 2^n
    data = (block * (BIG // len(block) + 1))[:BIG]
    with open(os.path.join(directory, "big.bin"), "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def http_body(raw):
    head, sep, body = raw.partition(b"\r\n\r\n")
    return head, body if sep else b""


def last_json(stderr):
    return json.loads(stderr.decode().strip().splitlines()[-1])


class NginxTest(cli_test):
    """A real nginx from Debian (nginx-light), on a free loopback port with its own config."""

    def setUp(self):
        super().setUp()
        self.need("nginx")
        if os.geteuid() != 0:
            self.skipTest("nginx with its own config needs root here")
        self.dir = tempfile.mkdtemp(prefix="orderly-nginx-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        html = os.path.join(self.dir, "html")
        os.mkdir(html)
        self.digest = big_file(html)
        for attempt in range(5):  # the free port may be taken between probe and bind
            self.port = free_port()
            conf = os.path.join(self.dir, "nginx.conf")
            d = self.dir
            with open(conf, "w") as f:
                f.write(f"""worker_processes 1;
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/tmp;
  proxy_temp_path {d}/tmp;
  fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp;
  scgi_temp_path {d}/tmp;
  server {{ listen 127.0.0.1:{self.port}; root {html}; }}
}}
""")
            os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
            p = subprocess.Popen(["nginx", "-e", os.path.join(d, "error.log"), "-p", d, "-c",
                                  conf], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            self.addCleanup(self._stop, p)
            if wait_listening(self.port, p):
                return
            self._stop(p)
        self.fail("nginx did not start: " + open(os.path.join(self.dir, "error.log")).read())

    @staticmethod
    def _stop(p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=TIMEOUT)

    def get(self, *options):
        return self.run_orderly("connect", *options, f"127.0.0.1:{self.port}",
                                input=b"GET /big.bin HTTP/1.0\r\n\r\n", timeout=60)

    def test_default_half_close_is_cut_short_by_nginx_and_the_report_says_so(self):
        r = self.get("--report")
        head, body = http_body(r.stdout)
        self.assertIn(b"200 OK", head)
        # TCP-wise the end was orderly (exit 0, clean), but nginx stopped sending at our FIN.
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(len(body), BIG)
        self.assertIn(b"close report: clean", r.stderr)
        self.assertIn(HALF_CLOSED, r.stderr)
        self.assertIn(b"quiet=", r.stderr)  # the hint names the policy to use

    def test_default_half_close_json_field(self):
        r = self.get("--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        report = last_json(r.stderr)
        self.assertIs(report.get("peer_ended_while_half_closed"), True, report)

    def test_quiet_gets_every_byte_and_exits_0(self):
        r = self.get("--json", "--on-stdin-eof", "quiet=1s")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, body = http_body(r.stdout)
        self.assertEqual(len(body), BIG)
        self.assertEqual(hashlib.sha256(body).hexdigest(), self.digest)
        report = last_json(r.stderr)
        self.assertEqual(report["outcome"], "clean", report)
        # nginx closed first: we never had half-closed while it was still sending.
        self.assertIs(report["peer_ended_while_half_closed"], False, report)
        self.assertTrue(report["fin_sent"], report)


class NcListenTest(cli_test):
    """OpenBSD `nc -l` sending a file: it quits when it reads our FIN."""

    def nc_sender(self, directory):
        self.need("nc")
        digest = big_file(directory)
        port = free_port()
        f = open(os.path.join(directory, "big.bin"), "rb")
        self.addCleanup(f.close)
        nc = self.start(["nc", "-l", "127.0.0.1", str(port)], stdin=f, capture_stdout=False)
        for _ in range(200):  # until nc listens (it prints nothing), bounded
            out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True)
            if out.stdout.strip():
                break
            time.sleep(0.05)
        return nc, port, digest

    def test_default_half_close_loses_data_and_report_says_so(self):
        with tempfile.TemporaryDirectory() as d:
            nc, port, _ = self.nc_sender(d)
            r = self.run_orderly("connect", "--report", f"127.0.0.1:{port}", timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertLess(len(r.stdout), BIG)
            self.assertIn(HALF_CLOSED, r.stderr)
            nc.wait()

    def test_quiet_gets_every_byte_and_exits_0(self):
        with tempfile.TemporaryDirectory() as d:
            nc, port, digest = self.nc_sender(d)
            r = self.run_orderly("connect", "--json", "--on-stdin-eof", "quiet=500ms",
                                 f"127.0.0.1:{port}", timeout=60)
            # nc -l never sends a FIN of its own: ours, after the quiet time, ends it in order.
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(len(r.stdout), BIG)
            self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), digest)
            report = last_json(r.stderr)
            self.assertEqual(report["outcome"], "clean", report)
            self.assertIs(report["peer_ended_while_half_closed"], True, report)
            self.assertEqual(nc.wait(), 0)


class PolicyTest(cli_test):
    def serve_once(self, handler):
        """A one-connection Python server running `handler(conn)` in a thread; returns port."""
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        ls.settimeout(TIMEOUT)
        self.addCleanup(ls.close)
        result = {}

        def run():
            try:
                c, _ = ls.accept()
                with c:
                    result["value"] = handler(c)
            except OSError as e:
                result["error"] = e

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.addCleanup(t.join, TIMEOUT)
        return ls.getsockname()[1], result, t

    def test_quiet_counts_from_the_last_byte_received(self):
        # Sends a chunk every 0.4 s for 2 s after our EOF and stops at our FIN, like nginx:
        # quiet=1s counted from our EOF would cut it after about two chunks.
        chunks = 5

        def handler(c):
            c.settimeout(TIMEOUT)
            sent = 0
            for i in range(chunks):
                r, _, _ = select.select([c], [], [], 0.4)
                if r and c.recv(1) == b"":
                    return sent  # our FIN: stop, as nginx does
                c.sendall(b"chunk %d\n" % i)
                sent += 1
            while c.recv(4096):  # now wait for our FIN, bounded by the timeout
                pass
            return sent

        port, result, t = self.serve_once(handler)
        start = time.monotonic()
        r = self.run_orderly("connect", "--json", "--on-stdin-eof", "quiet=1s",
                             f"127.0.0.1:{port}")
        elapsed = time.monotonic() - start
        t.join(TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(result.get("value"), chunks, result)
        self.assertEqual(r.stdout, b"".join(b"chunk %d\n" % i for i in range(chunks)))
        self.assertGreaterEqual(elapsed, 2.0 + 1.0 - 0.2)  # last chunk, then a quiet second
        self.assertEqual(last_json(r.stderr)["outcome"], "clean")

    def test_quiet_peer_that_never_ends_after_our_fin_times_out(self):
        # Our FIN comes after the quiet time; a peer that then never closes is --close-timeout.
        def handler(c):
            c.settimeout(TIMEOUT)
            c.sendall(b"hello\n")
            time.sleep(2.5)
            return True

        port, _, _ = self.serve_once(handler)
        r = self.run_orderly("connect", "--on-stdin-eof", "quiet=300ms", "--close-timeout",
                             "500ms", f"127.0.0.1:{port}")
        self.assertEqual(r.stdout, b"hello\n")
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertIn(b"close-timeout", r.stderr)

    def test_close_that_resets_the_peer_is_not_exit_0(self):
        # The peer streams until it gets an error; stdin ends while its bytes are still
        # arriving, so `close` leaves unread bytes: Linux sends RST.
        def handler(c):
            c.settimeout(TIMEOUT)
            chunk = b"x" * 65536
            try:
                for _ in range(200000):  # bounded: ~13 GB, far more than the test needs
                    c.sendall(chunk)
            except OSError as e:
                return e
            return None

        port, result, t = self.serve_once(handler)
        pr = self.orderly("connect", "--report", "--on-stdin-eof", "close", f"127.0.0.1:{port}",
                          stdin=subprocess.PIPE, capture_stdout=True)
        time.sleep(0.3)
        pr.p.stdin.close()
        rc = pr.wait()
        t.join(TIMEOUT)
        self.assertIn("unread_data_discarded", pr.stderr)
        self.assertEqual(rc, 1, pr.stderr)
        self.assertIn("RST", pr.stderr)
        self.assertIsInstance(result.get("value"), ConnectionResetError, result)

    def test_bad_quiet_value_is_a_usage_error(self):
        for bad in ("quiet=", "quiet=0", "quiet=soon", "quiet"):
            r = self.run_orderly("connect", "--on-stdin-eof", bad, "127.0.0.1:1")
            self.assertEqual(r.returncode, 2, (bad, r.stderr))
            self.assertIn(b"--on-stdin-eof", r.stderr)

    def test_help_is_honest_about_half_close(self):
        for sub in ("connect", "listen"):
            r = self.run_orderly(sub, "--help")
            self.assertEqual(r.returncode, 0)
            for word in (b"quiet=", b"nginx", b"nc -l", b"exit 1"):
                self.assertIn(word, r.stdout, (sub, word))

    def test_listen_json_has_the_field(self):
        server = self.orderly("listen", "--json", "127.0.0.1:0", stdin=subprocess.DEVNULL)
        _, port = self.listening(server)
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as c:
            c.settimeout(TIMEOUT)
            self.assertEqual(c.recv(10), b"")  # listen's stdin is empty: its FIN at once
            c.sendall(b"bye")
            c.shutdown(socket.SHUT_WR)
        self.assertEqual(server.wait(), 0, server.stderr)
        report = json.loads(server.stderr.strip().splitlines()[-1])
        self.assertIs(report["peer_ended_while_half_closed"], True, report)
