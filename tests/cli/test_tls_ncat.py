"""orderly's TLS CLI against Nmap's ncat --ssl. As a server whose stdin is open, ncat answers our
close_notify with its own: every byte, clean, exit 0. As a client it ends with a bare FIN after
its stdin, never a close_notify: every byte arrives, and orderly says what it cannot know (exit 6,
tls_truncated, no close_notify received)."""

import os
import socket
import subprocess
import time

from cli_support import TIMEOUT
from tls_support import last_json, tls_test


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class NcatTlsTest(tls_test):
    def test_upload_to_ncat_is_byte_exact_and_clean(self):
        self.need("ncat")
        port = free_port()
        out = os.path.join(self.dir, "got")
        # Its stdin stays open: ncat ends its side when its stdin ends (with a bare FIN), and a
        # bare FIN before our upload is done ends TLS for both directions (exit 6).
        ncat = self.start(["sh", "-c", 'sleep 10 | ncat --ssl --ssl-cert "$1" --ssl-key "$2" -l '
                           '127.0.0.1 "$3" > "$4"', "sh", self.cert, self.key, str(port), out])
        data = os.urandom(100_000)
        for _ in range(100):  # until ncat listens (refused: exit 3)
            r = self.connect(port, input=data)
            if r.returncode != 3:
                break
            time.sleep(0.05)
        self.assertEqual(r.returncode, 0, r.stderr)
        report = last_json(r.stderr)
        self.assertEqual(report["outcome"], "clean", report)
        self.assertTrue(report["tls"]["close_notify_sent"], report)
        self.assertTrue(report["tls"]["close_notify_received"], report)
        self.assertGreater(report["bytes_sent"], len(data), report)  # TCP bytes: records
        for _ in range(100):  # ncat writes and exits after our close_notify and FIN
            if os.path.getsize(out) >= len(data):
                break
            time.sleep(0.05)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_ncat_client_data_arrives_whole_and_its_bare_fin_is_exit_6(self):
        self.need("ncat")
        pr = self.orderly("listen", "--tls-cert", self.cert, "--tls-key", self.key, "--json",
                          "--accept-timeout", "10s", "127.0.0.1:0")
        port = self.listening(pr)[1]
        data = os.urandom(80_000)
        c = subprocess.run(["ncat", "--ssl", "127.0.0.1", str(port)], input=data, capture_output=True,
                           timeout=TIMEOUT)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(pr.wait(), 6, pr.stderr)
        self.assertEqual(pr.out, data)
        report = last_json(pr.stderr.encode())
        self.assertEqual(report["outcome"], "tls_truncated", report)
        self.assertFalse(report["tls"]["close_notify_received"], report)
