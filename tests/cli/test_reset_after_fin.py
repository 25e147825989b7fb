"""A peer that sends its FIN and then resets while our stdin is still open: the report must name
the peer's reset (outcome peer_reset), not an abort of ours, and the exit code is 4."""

import json
import socket
import struct
import subprocess
import threading
import time

from cli_support import BIN, TIMEOUT, cli_test


class ResetAfterFinTest(cli_test):
    def test_fin_then_rst_is_peer_reset(self):
        lst = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(lst.close)
        port = lst.getsockname()[1]

        def serve():
            s, _ = lst.accept()
            s.sendall(b"x" * 1000)
            s.shutdown(socket.SHUT_WR)
            time.sleep(0.3)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()  # RST

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        p = subprocess.Popen([BIN, "connect", "--json", f"127.0.0.1:{port}"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(p.kill)
        time.sleep(1.0)  # the FIN and the RST arrive while stdin is still open
        try:
            p.stdin.write(b"late\n")
            p.stdin.flush()
        except BrokenPipeError:
            pass
        out, err = p.stdout.read(), p.stderr.read()
        p.wait(timeout=TIMEOUT)
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
        t.join(TIMEOUT)
        self.assertEqual(p.returncode, 4, err)
        self.assertEqual(out, b"x" * 1000)
        report = json.loads(err.decode().strip().splitlines()[-1])
        self.assertEqual(report["outcome"], "peer_reset", report)
        self.assertTrue(report["peer_eof"], report)
        self.assertNotIn("aborted", report["error"], report)
