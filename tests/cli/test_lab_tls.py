"""orderly lab's TLS scenarios (issue 14, Lab): tls-truncation and tls-orderly-close, asserted from
their JSON lines (calls always; the captured segments and their TLS record labels when running
as root) and from their SVG ladders (valid XML, the TLS rows drawn)."""

import json
import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET

from cli_support import cli_test

SVG = "{http://www.w3.org/2000/svg}"
REPLY = 2080  # 40 lines of 52 B


class LabTlsTest(cli_test):
    def lab(self, *names, svg_dir=None):
        extra = ["--svg", svg_dir] if svg_dir else []
        r = self.run_orderly("lab", "--json", *extra, *names, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
        out = {}
        for name in names:
            mine = [e for e in lines if e["scenario"] == name]
            self.assertTrue(mine, name)
            verdict = mine[-1]
            self.assertEqual(verdict["kind"], "verdict")
            self.assertTrue(verdict["showed_lesson"], verdict)
            out[name] = (mine[:-1], verdict)
        return out

    @staticmethod
    def calls(events, side, call):
        return [e for e in events if e["kind"] == "call" and e["side"] == side
                and e["call"].startswith(call)]

    @staticmethod
    def segments(events, sender=None):
        return [e for e in events if e["kind"] == "segment"
                and (sender is None or e["side"] == sender)]

    def handshakes_ok(self, events):
        for side in ("client", "server"):
            hs = self.calls(events, side, "handshake()")
            self.assertEqual(len(hs), 1, events)
            self.assertTrue(hs[0]["result"].startswith("ok: TLSv1."), hs[0])

    def no_rst(self, events, verdict):
        if verdict["captured"]:
            self.assertFalse([s for s in self.segments(events) if "RST" in s["flags"].split(",")])

    def test_tls_truncation(self):
        events, verdict = self.lab("tls-truncation")["tls-truncation"]
        self.handshakes_ok(events)
        self.assertIn("tls_truncated", verdict["verdict"])
        self.assertIn("suppress_ragged_eofs", verdict["verdict"])
        self.assertIn("would have said EOF", verdict["verdict"])
        shut = self.calls(events, "server", "TCP shutdown(SHUT_WR)")[0]
        self.assertIn("no close_notify", shut["result"])
        read = self.calls(events, "client", "read_to_end")[0]
        self.assertEqual(read["bytes"], REPLY)  # every byte came, and still it is not EOF
        self.assertIn("tls_truncated", read["result"])
        self.assertNotIn("end-of-stream", read["result"])
        close = self.calls(events, "client", "close_gracefully")[0]
        self.assertTrue(close["result"].startswith("tls_truncated"), close)
        self.assertIn("not received", close["result"])
        self.assertTrue([e for e in events if e["kind"] == "note"
                         and "suppress_ragged_eofs" in e["result"]])
        self.no_rst(events, verdict)
        if verdict["captured"]:
            server = self.segments(events, "server")
            fin = [s for s in server if "FIN" in s["flags"].split(",")]
            self.assertEqual(len(fin), 1, server)
            # Nothing from the server was a close_notify: its last data before the FIN is the reply.
            self.assertFalse([s for s in server if "close_notify" in s["result"]], server)
            before_fin = [s for s in server if s["length"] > 0 and s["t_ms"] < fin[0]["t_ms"]]
            self.assertIn("application data (reply)", before_fin[-1]["result"])
            self.assertEqual(fin[0]["length"], 0)

    def test_tls_orderly_close(self):
        events, verdict = self.lab("tls-orderly-close")["tls-orderly-close"]
        self.handshakes_ok(events)
        shut = self.calls(events, "client", "shutdown(write)")[0]
        self.assertIn("close_notify sent", shut["result"])
        eof = self.calls(events, "server", "recv")[-1]
        self.assertEqual(eof["bytes"], 0)
        self.assertIn("close_notify received", eof["result"])
        sc = self.calls(events, "server", "close_gracefully")[0]
        self.assertTrue(sc["result"].startswith("clean"), sc)
        self.assertIn("close_notify sent (24 B), received", sc["result"])
        read = self.calls(events, "client", "read_to_end")[0]
        self.assertEqual(read["bytes"], REPLY)
        self.assertIn("close_notify", read["result"])
        cc = self.calls(events, "client", "close_gracefully")[0]
        self.assertTrue(cc["result"].startswith("clean"), cc)
        self.assertIn("clean", verdict["verdict"])
        self.no_rst(events, verdict)
        if verdict["captured"]:
            for sender, call in (("client", shut), ("server", sc)):
                alerts = [s for s in self.segments(events, sender)
                          if "close_notify alert" in s["result"] and not s["retransmission"]]
                self.assertEqual(len(alerts), 1, self.segments(events, sender))
                alert = alerts[0]
                # The record the call wrote, after the call started; TLS 1.3: 24 B on the wire.
                self.assertGreaterEqual(alert["t_ms"], call["t_ms"])
                self.assertEqual(alert["length"], 24, alert)
                fins = [s for s in self.segments(events, sender) if "FIN" in s["flags"].split(",")]
                self.assertTrue(fins)
                self.assertGreaterEqual(fins[0]["t_ms"], alert["t_ms"])  # close_notify, then FIN

    def test_tls_svg_valid_with_the_tls_rows(self):
        names = ("tls-truncation", "tls-orderly-close")
        with tempfile.TemporaryDirectory() as d:
            runs = self.lab(*names, svg_dir=d)
            paths = [os.path.join(d, n + ".svg") for n in names]
            if shutil.which("xmllint"):
                lint = subprocess.run(["xmllint", "--noout", *paths], capture_output=True,
                                      timeout=60)
                self.assertEqual(lint.returncode, 0, lint.stderr)
            texts = {}
            for name, path in zip(names, paths):
                root = ET.parse(path).getroot()
                self.assertEqual(root.tag, SVG + "svg")
                texts[name] = " ".join("".join(t.itertext()) for t in root.iter(SVG + "text"))
        self.assertIn("handshake()", texts["tls-orderly-close"])
        self.assertIn("close_notify sent", texts["tls-orderly-close"])
        self.assertIn("close_notify received", texts["tls-orderly-close"])
        self.assertIn("then tls_truncated", texts["tls-truncation"])
        self.assertIn("no SSL_shutdown()", texts["tls-truncation"])
        if runs["tls-orderly-close"][1]["captured"]:
            self.assertIn("close_notify alert", texts["tls-orderly-close"])
