"""orderly lab: each scenario's timeline asserted from its JSON lines; with capture (root) the
segments themselves, otherwise the calls and TCP states. Every SVG must be well-formed XML."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

from cli_support import BIN, cli_test

SVG = "{http://www.w3.org/2000/svg}"
SCENARIOS = ["naive-close-loses-data", "orderly-close", "half-close", "shut-rd", "shut-rdwr",
             "close-wait-leak", "time-wait", "abort-rst", "tls-truncation", "tls-orderly-close"]


class LabTest(cli_test):
    def lab(self, name, *extra):
        r = self.run_orderly("lab", "--json", *extra, name, timeout=60)
        events = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
        self.assertTrue(events, r.stderr)
        verdict = events[-1]
        self.assertEqual(verdict["kind"], "verdict")
        self.assertTrue(verdict["showed_lesson"], verdict)
        self.assertEqual(r.returncode, 0, r.stderr)
        return events[:-1], verdict

    def calls(self, events, side=None, call=None):
        return [e for e in events if e["kind"] == "call" and (side is None or e["side"] == side)
                and (call is None or e["call"].startswith(call))]

    def segments(self, events, flag=None, sender=None):
        return [e for e in events if e["kind"] == "segment"
                and (flag is None or flag in e["flags"].split(","))
                and (sender is None or e["side"].startswith(sender))]

    def test_naive_close_loses_data(self):
        events, verdict = self.lab("naive-close-loses-data")
        read = self.calls(events, "client", "read_to_end")[0]
        self.assertIn("reset", read["result"])
        self.assertLess(read["bytes"], 256 * 1024)  # a short read
        close = self.calls(events, "server", "close")[0]
        self.assertIn("unread_data_discarded", close["result"])
        if verdict["captured"]:
            self.assertTrue(self.segments(events, "RST", "server"), "no RST from the server")
            self.assertFalse(self.segments(events, "FIN", "server"), "server sent FIN")

    def test_orderly_close(self):
        events, verdict = self.lab("orderly-close")
        read = self.calls(events, "client", "read_to_end")[0]
        self.assertEqual(read["bytes"], 256 * 1024)
        self.assertIn("end-of-stream", read["result"])
        self.assertIn("clean", self.calls(events, "server", "close_gracefully")[0]["result"])
        if verdict["captured"]:
            self.assertTrue(self.segments(events, "FIN", "server"))
            self.assertTrue(self.segments(events, "FIN", "client"))
            self.assertFalse(self.segments(events, "RST"))

    def test_half_close(self):
        events, verdict = self.lab("half-close")
        shut = self.calls(events, "client", "shutdown(write)")[0]
        self.assertIn(shut["client_state"], ("FIN_WAIT1", "FIN_WAIT2"))
        self.assertEqual(shut["server_state"], "CLOSE_WAIT")
        send = self.calls(events, "server", "send_all")[0]
        self.assertEqual(send["server_state"], "CLOSE_WAIT")  # sending after the peer's EOF
        self.assertEqual(self.calls(events, "client", "read_to_end")[0]["bytes"], 30)
        if verdict["captured"]:
            fins = self.segments(events, "FIN")
            self.assertEqual([f["side"] for f in fins], ["client", "server"])
            data_from_server = [e for e in self.segments(events, sender="server")
                                if e["length"] > 0]
            self.assertTrue(data_from_server)
            # The reply travelled after the client's FIN.
            self.assertGreater(data_from_server[0]["t_ms"], fins[0]["t_ms"])
            self.assertFalse(self.segments(events, "RST"))

    def test_shut_rd(self):
        events, verdict = self.lab("shut-rd")
        recv_after = self.calls(events, "server", "recv")[-1]
        self.assertEqual(recv_after["bytes"], 0)
        self.assertIn("6 B sit in the receive queue", recv_after["result"])
        if verdict["captured"]:
            shut_t = self.calls(events, "server", "shutdown(read)")[0]["t_ms"]
            close_t = self.calls(events, "server", "close")[0]["t_ms"]
            between = [e for e in self.segments(events, sender="server")
                       if shut_t <= e["t_ms"] < close_t]
            # Nothing but an ACK of the late bytes: shutdown(read) says nothing to the peer.
            for e in between:
                self.assertEqual(e["flags"], "ACK", e)
            self.assertTrue(self.segments(events, "RST", "server"))

    def test_shut_rdwr(self):
        events, verdict = self.lab("shut-rdwr")
        self.assertIn("reset", self.calls(events, "client", 'send("more")')[0]["result"])
        if verdict["captured"]:
            self.assertTrue(self.segments(events, "FIN", "server"))
            rst = self.segments(events, "RST", "server")
            self.assertTrue(rst)
            late = [e for e in self.segments(events, sender="client") if e["length"] > 0]
            self.assertLess(late[-1]["t_ms"], rst[0]["t_ms"])

    def test_close_wait_leak(self):
        events, verdict = self.lab("close-wait-leak")
        forgotten = [e for e in events if e["kind"] == "call" and "forgets" in e["call"]]
        self.assertEqual(len(forgotten), 5)
        for e in forgotten:
            self.assertEqual(e["server_state"], "CLOSE_WAIT")
            self.assertEqual(e["client_state"], "FIN_WAIT2")
        counts = [int(e["result"].split("; ")[1].split()[0]) for e in forgotten]
        self.assertEqual(counts, sorted(counts))
        self.assertEqual(counts[-1] - counts[0], 4)  # one more descriptor per connection

    def test_time_wait(self):
        events, verdict = self.lab("time-wait")
        last = self.calls(events, "client")[-1]
        self.assertEqual(last["client_state"], "TIME_WAIT")
        self.assertEqual(last["server_state"], "CLOSED")
        if verdict["captured"]:
            fins = self.segments(events, "FIN")
            self.assertEqual([f["side"] for f in fins], ["client", "server"])

    def test_abort_rst(self):
        events, verdict = self.lab("abort-rst")
        self.assertIn("aborted", self.calls(events, "client", "abort")[0]["result"])
        resets = [e for e in self.calls(events, "server", "recv") if "reset" in e["result"]]
        self.assertTrue(resets)
        if verdict["captured"]:
            self.assertTrue(self.segments(events, "RST", "client"))
            self.assertFalse(self.segments(events, "FIN"))

    def test_without_capture_says_why(self):
        events, verdict = self.lab("naive-close-loses-data", "--no-capture")
        self.assertFalse(verdict["captured"])
        self.assertIn("not shown", verdict["capture_note"])
        self.assertFalse(self.segments(events))

    def test_unprivileged_says_why(self):
        # As root, drop to nobody to see what a user without CAP_NET_RAW gets.
        if os.geteuid() != 0 or shutil.which("setpriv") is None:
            self.skipTest("needs root and setpriv to run unprivileged")
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BIN, "lab",
                "--json", "orderly-close"]
        r = subprocess.run(argv, capture_output=True, timeout=60)
        if r.returncode == 126 or b"Permission denied" in r.stderr:
            self.skipTest("the binary is not reachable for nobody")
        self.assertEqual(r.returncode, 0, r.stderr)
        verdict = json.loads(r.stdout.decode().splitlines()[-1])
        self.assertFalse(verdict["captured"])
        self.assertIn("CAP_NET_RAW", verdict["capture_note"])
        self.assertTrue(verdict["showed_lesson"])

    def test_capture_when_root(self):
        if os.geteuid() != 0:
            self.skipTest("capture needs root (CAP_NET_RAW)")
        events, verdict = self.lab("orderly-close")
        self.assertTrue(verdict["captured"], verdict)
        syn = self.segments(events, "SYN")
        self.assertEqual([s["flags"] for s in syn], ["SYN", "SYN,ACK"])

    def test_text_timeline(self):
        r = self.run_orderly("lab", "naive-close-loses-data", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertIn("== naive-close-loses-data", out)
        for column in ("t ms", "side", "call", "result", "client", "server", "bytes"):
            self.assertIn(column, out)
        self.assertIn("segments: ", out)
        self.assertIn("=> client received", out)

    def test_list(self):
        r = self.run_orderly("lab", "--list")
        self.assertEqual(r.returncode, 0)
        names = [line.split()[0] for line in r.stdout.decode().splitlines()]
        self.assertEqual(names, SCENARIOS)

    def test_unknown_scenario_exit_2(self):
        r = self.run_orderly("lab", "no-such-scenario")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"no-such-scenario", r.stderr)

    def test_svg_well_formed(self):
        with tempfile.TemporaryDirectory() as d:
            r = self.run_orderly("lab", "--svg", d, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            for name in SCENARIOS:
                path = os.path.join(d, name + ".svg")
                root = ET.parse(path).getroot()
                self.assertEqual(root.tag, "{http://www.w3.org/2000/svg}svg")
                texts = "".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
                self.assertIn(name, texts)
                self.assertIn("client", texts)
            if shutil.which("xmllint"):
                paths = [os.path.join(d, n + ".svg") for n in SCENARIOS]
                lint = subprocess.run(["xmllint", "--noout", *paths], capture_output=True,
                                      timeout=60)
                self.assertEqual(lint.returncode, 0, lint.stderr)

    # --- how a newcomer reads the diagrams (issue 17 part 4) ---

    def lab_with_svg(self, *names):
        """Runs the scenarios with --json and --svg; returns {name: (events, verdict, svg root)}."""
        with tempfile.TemporaryDirectory() as d:
            r = self.run_orderly("lab", "--json", "--svg", d, *names, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
            out = {}
            for name in names or SCENARIOS:
                mine = [e for e in lines if e["scenario"] == name]
                out[name] = (mine[:-1], mine[-1], ET.parse(os.path.join(d, name + ".svg")).getroot())
            return out

    @staticmethod
    def svg_texts(root, cls):
        return [t for t in root.iter(SVG + "text") if cls in (t.get("class") or "").split()]

    @staticmethod
    def full_text(t):
        return "".join(t.itertext())

    def test_segments_labelled_data_or_ack(self):
        if os.geteuid() != 0:
            self.skipTest("capture needs root (CAP_NET_RAW)")
        events, verdict, root = self.lab_with_svg("orderly-close")["orderly-close"]
        self.assertTrue(verdict["captured"], verdict)
        segs = self.segments(events)
        data = [s for s in segs if s["length"] > 0]
        acks = [s for s in segs if s["flags"] == "ACK" and s["length"] == 0]
        self.assertTrue(data and acks, segs)
        for s in segs:
            self.assertNotIn(" len ", s["result"], s)
        for s in data:
            self.assertTrue(s["result"].startswith("data "), s)
            self.assertNotIn("ACK", s["result"].split(",")[0], s)  # the flags are not the label
        for s in acks:
            self.assertEqual(s["result"], "ACK", s)
        labels = self.svg_texts(root, "segment-label")
        self.assertEqual(len(labels), len(segs))
        for t, s in zip(labels, segs):
            self.assertTrue(self.full_text(t).startswith(s["result"]), (self.full_text(t), s))
            if s["length"] > 0 and s["flags"] != "data":  # flags drawn small beside data
                small = [x for x in t.iter(SVG + "tspan") if x.get("class") == "flags"]
                self.assertEqual([x.text for x in small], [s["flags"]])
                self.assertLess(float(small[0].get("font-size")), float(t.get("font-size")))

    def test_retransmissions_marked(self):
        if os.geteuid() != 0:
            self.skipTest("capture needs root (CAP_NET_RAW)")
        events, verdict, root = self.lab_with_svg("orderly-close")["orderly-close"]
        down = [s for s in self.segments(events, sender="server") if s["length"] > 0]
        # The reply is 262,144 B; whatever the segments carry beyond that was sent twice.
        fresh = sum(s["length"] - s["retransmitted"] for s in down)
        self.assertEqual(fresh, 256 * 1024, down)
        again = [s for s in self.segments(events) if s["retransmitted"] > 0]
        for s in again:
            self.assertTrue(s["retransmission"], s)
            self.assertIn("retransmitted", s["result"], s)
        for s in self.segments(events):
            if s["retransmission"]:
                self.assertIn("retransmit", s["result"], s)
        marked = [e for e in root.iter(SVG + "line")
                  if "retransmission" in (e.get("class") or "").split()]
        self.assertEqual(len(marked), len([s for s in self.segments(events) if s["retransmission"]]))

    def test_calls_drawn_as_spans_with_states_at_return(self):
        events, verdict, root = self.lab_with_svg("orderly-close")["orderly-close"]
        for c in self.calls(events):
            self.assertGreaterEqual(c["t_end_ms"], c["t_ms"], c)
        close = self.calls(events, "server", "close_gracefully")[0]
        self.assertEqual(close["server_state"], "TIME_WAIT")  # its state when it returned
        # Events happened while it ran (the client's reading), so it is a span in the diagram
        # whose result sits below them.
        inside = [e for e in events if close["t_ms"] < e["t_ms"] <= close["t_end_ms"]]
        self.assertTrue(inside, close)
        starts = [t for t in self.svg_texts(root, "call")
                  if "close_gracefully" in self.full_text(t)]
        returns = [t for t in self.svg_texts(root, "call-return")
                   if "clean" in self.full_text(t) and "TIME_WAIT" in self.full_text(t)]
        self.assertEqual(len(starts), 1)
        self.assertEqual(len(returns), 1)
        y0, y1 = float(starts[0].get("y")), float(returns[0].get("y"))
        self.assertGreater(y1, y0)
        spans = [r for r in root.iter(SVG + "rect") if r.get("class") == "span"
                 and abs(float(r.get("y")) - y0) < 1]
        self.assertEqual(len(spans), 1)
        self.assertAlmostEqual(float(spans[0].get("y")) + float(spans[0].get("height")), y1, delta=5)
        if verdict["captured"]:
            fin = [t for t in self.svg_texts(root, "segment-label")
                   if "FIN" in self.full_text(t) and float(t.get("y")) > y0]
            self.assertTrue(fin)
            self.assertTrue(all(float(t.get("y")) < y1 for t in fin), "FINs drawn after the return")

    def test_one_word_for_closed_and_notes_clear_of_timelines(self):
        runs = self.lab_with_svg()
        notes = 0
        for name, (events, verdict, root) in runs.items():
            for e in self.calls(events):
                self.assertNotIn("CLOSE", (e["client_state"], e["server_state"]), e)
            for t in root.iter(SVG + "text"):
                self.assertNotRegex(self.full_text(t), r"\[CLOSE\]", name)
            xs = sorted(float(l.get("x1")) for l in root.iter(SVG + "line")
                        if l.get("class") == "timeline")
            self.assertEqual(len(xs), 2, name)
            for t in self.svg_texts(root, "note"):
                notes += 1
                half = len(self.full_text(t)) * 11 * 0.6 / 2  # monospace, font-size 11
                x = float(t.get("x"))
                self.assertEqual(t.get("text-anchor"), "middle")
                self.assertEqual(t.get("font-size"), "11")
                self.assertGreater(x - half, xs[0], (name, self.full_text(t)))
                self.assertLess(x + half, xs[1], (name, self.full_text(t)))
        self.assertGreater(notes, 0, "no note drawn at all")

    def test_text_shows_a_spanning_call_where_it_returned(self):
        r = self.run_orderly("lab", "orderly-close", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.decode().splitlines()
        start = [i for i, line in enumerate(lines)
                 if re.match(r"^ *[0-9.]+  server +close_gracefully\(\) ", line)]
        ret = [i for i, line in enumerate(lines) if "<- close_gracefully()" in line]
        self.assertEqual(len(start), 1, lines)
        self.assertEqual(len(ret), 1, lines)
        self.assertTrue(lines[start[0]].rstrip().endswith("..."), lines[start[0]])
        self.assertIn("clean", lines[ret[0]])
        self.assertIn("TIME_WAIT", lines[ret[0]])
        # The client's reading to EOF happened while it ran, so it is above the return.
        read_end = [i for i, line in enumerate(lines)
                    if "<- read_to_end()" in line and "end-of-stream" in line]
        self.assertTrue(read_end and start[0] < read_end[0] < ret[0], lines)
        fins = [i for i, line in enumerate(lines) if " segment " in line and "FIN" in line]
        for i in fins:
            self.assertLess(i, ret[0], "a FIN shown after the call that caused it returned")


if __name__ == "__main__":
    unittest.main()
