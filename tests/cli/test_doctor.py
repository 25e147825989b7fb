"""orderly doctor against real programs that end connections badly (Python servers from leaky.py,
the C program fd_hog.c at its descriptor limit), every finding cross-checked with `ss -tanpie`
(or `ss -xanpe`) run on the same sockets in the same test; --json valid and complete; --watch;
a healthy `orderly serve` under load; bad PIDs, processes of other users."""

import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from cli_support import BIN, HERE, TIMEOUT, cli_test, client_exchange, read_line, stop

LEAKY = os.path.join(HERE, "leaky.py")
FD_HOG = os.environ.get("ORDERLY_FD_HOG", os.path.join(HERE, "..", "..", "build", "dev", "tests",
                                                       "cli", "doctor_fd_hog"))
# Readable by every user, unlike an interpreter under /root (pyenv): for processes run as nobody.
SYSTEM_PYTHON = "/usr/bin/python3"
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]

SS_STATES = {"ESTAB": "ESTABLISHED", "CLOSE-WAIT": "CLOSE_WAIT", "FIN-WAIT-1": "FIN_WAIT1",
             "FIN-WAIT-2": "FIN_WAIT2", "LAST-ACK": "LAST_ACK", "CLOSING": "CLOSING",
             "LISTEN": "LISTEN", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV"}

# Every field of the JSON, as docs/doctor.md documents them.
PROCESS_FIELDS = ["pid", "name", "command", "user", "uid", "time_unix_ms", "descriptors", "states",
                  "listeners", "connections", "orphans", "counters", "findings", "notes",
                  "changes"]
DESCRIPTOR_FIELDS = ["open", "sockets", "other_sockets", "unconnected_tcp", "soft_limit",
                     "hard_limit"]
STATE_WORDS = ["opening", "open", "half_closed_by_peer", "half_closed_by_us", "closing", "closed",
               "listening"]
SOCKET_FIELDS = ["fd", "inode", "cookie", "kind", "state", "kernel_state", "shutdown", "local",
                 "peer", "recv_queue", "send_queue", "unread_bytes", "timer", "timer_expires_ms",
                 "timer_retries", "uid", "quiet_for_ms", "send_stalled_for_ms", "unix_peer_inode",
                 "unix_peer_gone", "tcp_info", "memory"]
TCP_INFO_FIELDS = ["rtt_us", "rto_us", "last_data_sent_ms", "last_data_recv_ms",
                   "last_ack_recv_ms", "unacked_segments", "retransmits", "total_retransmits",
                   "probes", "backoff", "bytes_acked", "bytes_received", "notsent_bytes",
                   "peer_window"]
MEMORY_FIELDS = ["rmem_alloc", "rcvbuf", "wmem_alloc", "sndbuf", "wmem_queued", "drops"]
COUNTER_FIELDS = ["listen_overflows", "listen_drops", "abort_on_close", "abort_on_data"]
FINDING_FIELDS = ["kind", "count", "fds", "inodes", "quiet_for_ms", "summary", "evidence",
                  "advice"]


def ss_tcp():
    """`ss -tanpie` as one dict per socket (the -i lines are skipped)."""
    out = subprocess.run(["ss", "-tanpieH"], capture_output=True, text=True, timeout=TIMEOUT,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        if not line or line[0].isspace():
            continue
        tok = line.split()
        ino = re.search(r"\bino:(\d+)", line)
        arrow = re.search(r"\s(<->|-->|<--|---)(\s|$)", line)
        rows.append({"state": tok[0], "recv_q": int(tok[1]), "send_q": int(tok[2]),
                     "local": tok[3], "peer": tok[4], "inode": int(ino.group(1)) if ino else 0,
                     "users": [(int(p), int(f)) for p, f in
                               re.findall(r"pid=(\d+),fd=(\d+)", line)],
                     "shutdown": arrow.group(1) if arrow else None})
    return rows


def ss_unix():
    """`ss -xanpe` as one dict per stream socket; the "port" columns are socket inodes."""
    out = subprocess.run(["ss", "-xanpeH"], capture_output=True, text=True, timeout=TIMEOUT,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        tok = line.split()
        if len(tok) < 8 or tok[0] != "u_str":
            continue
        arrow = re.search(r"\s(<->|-->|<--|---)(\s|$)", line)
        rows.append({"state": tok[1], "recv_q": int(tok[2]), "send_q": int(tok[3]),
                     "local": tok[4], "inode": int(tok[5]), "peer_inode": int(tok[7]),
                     "users": [(int(p), int(f)) for p, f in
                               re.findall(r"pid=(\d+),fd=(\d+)", line)],
                     "shutdown": arrow.group(1) if arrow else None})
    return rows


class DoctorTest(cli_test):
    def leaky(self, *args, user=None, stdin=subprocess.DEVNULL):
        """Starts leaky.py in a mode; returns (process, port or path). As `user` nobody it runs
        under setpriv with the system interpreter."""
        python = sys.executable
        prefix = []
        if user == "nobody":
            python = SYSTEM_PYTHON
            prefix = AS_NOBODY
        p = subprocess.Popen([*prefix, python, "-B", LEAKY, *args], stdin=stdin,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(stop, p)
        first = read_line(p.stdout, TIMEOUT).decode().split()
        self.assertEqual(len(first), 2, first)
        return p, (int(first[1]) if first[0] == "port" else first[1])

    def expect_line(self, p, word):
        line = read_line(p.stdout, TIMEOUT).decode()
        self.assertTrue(line.startswith(word), repr(line))
        return line

    def doctor(self, *args, prefix=()):
        return subprocess.run([*prefix, BIN, "doctor", *args], capture_output=True, text=True,
                              timeout=TIMEOUT)

    def doctor_json(self, *args, code=8):
        """Runs doctor --json; `code` None accepts 0 (no findings) and 8 (findings)."""
        r = self.doctor("--json", *args)
        if code is None:
            self.assertIn(r.returncode, (0, 8), r.stderr + r.stdout)
        else:
            self.assertEqual(r.returncode, code, r.stderr + r.stdout)
        lines = r.stdout.splitlines()
        self.assertTrue(lines, r.stderr)
        return [json.loads(line) for line in lines]

    def client(self, port, request=b"", half_close=True):
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(c.close)
        if request:
            c.sendall(request)
        if half_close:
            c.shutdown(socket.SHUT_WR)
        return c

    def finding(self, proc, kind):
        found = [f for f in proc["findings"] if f["kind"] == kind]
        self.assertEqual(len(found), 1, [f["kind"] for f in proc["findings"]])
        return found[0]

    def cross_check_tcp(self, proc):
        """Every TCP socket doctor reports for the process is the row ss shows for its inode."""
        rows = {r["inode"]: r for r in ss_tcp() if r["inode"]}
        checked = 0
        for s in proc["listeners"] + proc["connections"]:
            if s["kind"] != "tcp":
                continue
            r = rows.get(s["inode"])
            self.assertIsNotNone(r, "ss does not show inode %d" % s["inode"])
            self.assertEqual(SS_STATES[r["state"]], s["kernel_state"], r)
            self.assertEqual(r["recv_q"], s["recv_queue"], r)
            self.assertEqual(r["send_q"], s["send_queue"], r)
            self.assertEqual(r["local"], s["local"], r)
            if s["kernel_state"] != "LISTEN":
                self.assertEqual(r["peer"], s["peer"], r)
            self.assertIn((proc["pid"], s["fd"]), r["users"], r)
            self.assertEqual(r["shutdown"], s["shutdown"], r)
            checked += 1
        return checked

    def fds_in_state(self, pid, ss_state):
        return sorted(f for r in ss_tcp() if r["state"] == ss_state
                      for p, f in r["users"] if p == pid)

    # The CLOSE_WAIT leak: found, cross-checked, and gone once the program closes.
    def test_close_wait_leak_is_found_with_the_fds_ss_shows(self):
        p, port = self.leaky("close-wait", "3")
        clients = []
        for i in range(3):
            clients.append(self.client(port, b"request %d" % i))
            self.expect_line(p, "served")
        for c in clients:
            self.assertTrue(c.recv(100).startswith(b"got "))
        time.sleep(0.3)
        r = self.doctor("--min-age", "200ms", str(p.pid))
        self.assertEqual(r.returncode, 8, r.stderr + r.stdout)
        self.assertIn("process %d (" % p.pid, r.stdout)
        self.assertIn("close_wait: 3 connections in CLOSE_WAIT", r.stdout)
        ss_fds = self.fds_in_state(p.pid, "CLOSE-WAIT")
        self.assertEqual(len(ss_fds), 3)
        # Each evidence line names its fd (and no separate list repeats them).
        for fd in ss_fds:
            self.assertIn("    fd %d 127.0.0.1:" % fd, r.stdout)
        self.assertNotIn("fds " + ", ".join(map(str, ss_fds)), r.stdout)
        self.assertIn("the program has read the end of stream", " ".join(r.stdout.split()))

        proc, = self.doctor_json("--min-age", "200ms", str(p.pid))
        self.assertEqual(proc["pid"], p.pid)
        f = self.finding(proc, "close_wait")
        self.assertEqual(f["count"], 3)
        self.assertEqual(f["fds"], ss_fds)
        self.assertGreaterEqual(f["quiet_for_ms"], 200)
        self.assertEqual(proc["states"]["half_closed_by_peer"], 3)
        self.assertEqual(proc["states"]["listening"], 1)
        self.assertEqual(self.cross_check_tcp(proc), 4)
        # The default --min-age (1 s) hides them until they are a second old.
        time.sleep(1.0)
        r = self.doctor(str(p.pid))
        self.assertEqual(r.returncode, 8, r.stderr + r.stdout)

    def test_the_fixed_server_has_no_findings(self):
        p, port = self.leaky("close-wait-fixed", "3")
        for i in range(3):
            c = self.client(port, b"request %d" % i)
            self.expect_line(p, "served")
            self.assertTrue(c.recv(100).startswith(b"got "))
        r = self.doctor("--min-age", "0", str(p.pid))
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertIn("no findings", r.stdout)
        self.assertEqual(self.fds_in_state(p.pid, "CLOSE-WAIT"), [])

    # Unread bytes after the peer's FIN: doctor predicts the RST, then it happens.
    def test_unread_data_then_close_resets_the_peer_as_predicted(self):
        p, port = self.leaky("unread-close", stdin=subprocess.PIPE)
        c = self.client(port, b"q" * 1000)
        self.expect_line(p, "replied")
        self.assertEqual(c.recv(100), b"reply\n")
        time.sleep(0.3)
        proc, = self.doctor_json("--min-age", "200ms", str(p.pid))
        f = self.finding(proc, "unread_after_peer_eof")
        conn, = [s for s in proc["connections"] if s["fd"] in f["fds"]]
        self.assertEqual(conn["kernel_state"], "CLOSE_WAIT")
        self.assertEqual(conn["recv_queue"], 1000 - 10 + 1)  # what ss shows: the FIN counts
        self.assertEqual(conn["unread_bytes"], 990)
        self.assertIn("990 B unread", f["evidence"][0])
        self.assertIn("RST", f["summary"])
        self.cross_check_tcp(proc)

        p.stdin.write(b"close now\n")
        p.stdin.flush()
        self.expect_line(p, "closed")
        with self.assertRaises(ConnectionResetError):
            c.recv(100)
        r = self.doctor("--min-age", "0", str(p.pid))
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)

    # A peer that stops reading: the sender's queue does not move.
    def test_a_peer_that_stops_reading_leaves_a_stuck_send_queue(self):
        p, port = self.leaky("sender")
        c = socket.socket()
        self.addCleanup(c.close)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(("127.0.0.1", port))  # and never reads
        self.expect_line(p, "stuck")
        proc = None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:  # until the persist timer runs and 300 ms passed
            proc, = self.doctor_json("--min-age", "300ms", str(p.pid), code=None)
            if any(f["kind"] == "send_queue_stuck" for f in proc["findings"]):
                break
            time.sleep(0.2)
        f = self.finding(proc, "send_queue_stuck")
        conn, = [s for s in proc["connections"] if s["fd"] in f["fds"]]
        self.assertGreater(conn["send_queue"], 0)
        self.assertEqual(conn["timer"], "persist")
        self.assertIn("receive window is zero", f["evidence"][0])
        self.cross_check_tcp(proc)

    # The C program at its descriptor limit, with a full accept queue and then CLOSE_WAITs.
    def test_a_c_program_at_its_descriptor_limit(self):
        self.assertTrue(os.access(FD_HOG, os.X_OK), "fd_hog not built: " + FD_HOG)
        p = subprocess.Popen([FD_HOG, "32"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(stop, p)
        port = int(read_line(p.stdout, TIMEOUT).split()[1])
        clients = []

        def connect(blocking):
            c = socket.socket()
            self.addCleanup(c.close)
            if blocking:
                c.settimeout(TIMEOUT)
                c.connect(("127.0.0.1", port))
            else:
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", port))
            clients.append(c)

        # One at a time (a burst would overflow the backlog of 4 and leave clients waiting for
        # SYN retransmissions): 28 accepted, the 29th makes accept() fail with EMFILE, 4 more
        # fill the accept queue (Linux holds backlog + 1), and 3 find it full.
        for _ in range(29):
            connect(True)
        accepted = int(read_line(p.stdout, TIMEOUT).split()[1])
        self.assertEqual(accepted, 32 - 4)  # stdin, stdout, stderr and the listener
        for _ in range(4):
            connect(True)
        for _ in range(3):
            connect(False)
        proc = None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            proc, = self.doctor_json("--min-age", "0", str(p.pid), code=None)
            if any(f["kind"] == "accept_queue_full" for f in proc["findings"]):
                break
            time.sleep(0.1)
        self.assertEqual(proc["descriptors"]["open"], 32)
        self.assertEqual(proc["descriptors"]["open"], len(os.listdir("/proc/%d/fd" % p.pid)))
        self.assertEqual(proc["descriptors"]["soft_limit"], 32)
        self.assertEqual(proc["descriptors"]["sockets"], 29)
        self.assertEqual(len(proc["connections"]), accepted)
        limit = self.finding(proc, "descriptors_near_limit")
        self.assertEqual(limit["count"], 32)
        self.assertIn("32 of 32 descriptors in use", limit["summary"])
        full = self.finding(proc, "accept_queue_full")
        self.assertEqual(full["fds"], [3])
        self.assertIn("5 connections wait for accept(), backlog 4", full["evidence"][0])
        self.cross_check_tcp(proc)

        # Five clients the program did accept go away: five CLOSE_WAITs, named by fd.
        by_port = {s["peer"]: s["fd"] for s in proc["connections"]}
        gone = [c for c in clients if "127.0.0.1:%d" % c.getsockname()[1] in by_port][:5]
        expected = sorted(by_port["127.0.0.1:%d" % c.getsockname()[1]] for c in gone)
        for c in gone:
            c.close()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            proc, = self.doctor_json("--min-age", "0", str(p.pid), code=None)
            cw = [f for f in proc["findings"] if f["kind"] == "close_wait"]
            if cw and cw[0]["count"] == 5:
                break
            time.sleep(0.1)
        self.assertEqual(self.finding(proc, "close_wait")["fds"], expected)
        self.assertEqual(self.fds_in_state(p.pid, "CLOSE-WAIT"), expected)

    def test_unix_socket_whose_peer_closed(self):
        path = os.path.join(tempfile.mkdtemp(prefix="orderly-doctor-"), "s.sock")
        self.addCleanup(shutil.rmtree, os.path.dirname(path), True)
        p, _ = self.leaky("unix-close-wait", path)
        c = socket.socket(socket.AF_UNIX)
        c.connect(path)
        c.sendall(b"hello")
        c.shutdown(socket.SHUT_WR)
        self.expect_line(p, "served")
        c.close()
        proc, = self.doctor_json(str(p.pid))  # a Unix socket's age is unknown: reported
        f = self.finding(proc, "close_wait")
        conn, = [s for s in proc["connections"] if s["fd"] in f["fds"]]
        self.assertEqual(conn["kind"], "unix_stream")
        self.assertTrue(conn["unix_peer_gone"])
        self.assertIsNone(conn["quiet_for_ms"])
        self.assertIn("the peer has closed its end", f["evidence"][0])
        row, = [r for r in ss_unix() if r["inode"] == conn["inode"]]
        self.assertIn((p.pid, conn["fd"]), row["users"])
        self.assertEqual(row["local"], path)
        self.assertEqual("unix:" + path, conn["local"])
        self.assertEqual(row["peer_inode"], 0)
        self.assertEqual(row["shutdown"], conn["shutdown"])
        self.assertEqual(row["recv_q"], conn["recv_queue"])

    # The lab's close-wait-leak scenario ends with the doctor's check on the lab itself.
    def test_lab_close_wait_leak_ends_with_the_doctors_finding(self):
        r = self.run_orderly("lab", "--json", "close-wait-leak", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        events = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
        notes = [e["result"] for e in events if e["kind"] == "note"]
        forgotten = [e for e in events if e["kind"] == "call" and "forgets" in e["call"]]
        self.assertEqual(len(forgotten), 5)
        found = [n for n in notes if "(this process): close_wait: 5 connections in CLOSE_WAIT" in n]
        self.assertEqual(len(found), 1, notes)
        fds = [n for n in notes if n.strip().startswith("fds ")]
        self.assertEqual(len(fds), 1, notes)
        self.assertEqual(len(fds[0].split(";")[0].split(",")), 5)
        self.assertIn("(this process): no close_wait finding", notes[-1])
        self.assertLess(notes.index(found[0]), notes.index("the fix: close() after the peer's EOF"))
        verdict = events[-1]
        self.assertTrue(verdict["showed_lesson"], verdict)
        self.assertIn("named 5 of their 5 descriptors, and none after the fix", verdict["verdict"])

    # JSON: valid, one object per process, every documented field with the documented type.
    def test_json_is_valid_and_complete(self):
        p, port = self.leaky("close-wait", "1")
        other, _ = self.leaky("close-wait-fixed", "1")
        self.client(port, b"x")
        self.expect_line(p, "served")
        procs = self.doctor_json("--min-age", "0", str(p.pid), str(other.pid))
        self.assertEqual([x["pid"] for x in procs], sorted([p.pid, other.pid]))
        proc = [x for x in procs if x["pid"] == p.pid][0]
        self.assertEqual(list(proc), PROCESS_FIELDS)
        self.assertEqual(list(proc["descriptors"]), DESCRIPTOR_FIELDS)
        self.assertEqual(list(proc["states"]), STATE_WORDS)
        self.assertEqual(list(proc["counters"]), COUNTER_FIELDS)
        self.assertIsInstance(proc["time_unix_ms"], int)
        self.assertLess(abs(proc["time_unix_ms"] / 1000 - time.time()), 60)
        self.assertEqual(proc["user"], "root" if os.geteuid() == 0 else proc["user"])
        for s in proc["listeners"] + proc["connections"]:
            self.assertEqual(list(s), SOCKET_FIELDS)
            self.assertEqual(list(s["tcp_info"]), TCP_INFO_FIELDS)
            self.assertEqual(list(s["memory"]), MEMORY_FIELDS)
            self.assertIn(s["state"], STATE_WORDS)
            self.assertIsInstance(s["fd"], int)
        for f in proc["findings"]:
            self.assertEqual(list(f), FINDING_FIELDS)
            self.assertTrue(f["summary"] and f["advice"] and f["evidence"])
        self.assertEqual(proc["changes"], [])
        self.assertEqual(self.finding(proc, "close_wait")["count"], 1)

    # --watch: what changed between looks.
    def test_watch_shows_new_close_waits(self):
        p, port = self.leaky("close-wait", "2")
        w = subprocess.Popen([BIN, "doctor", "--watch", "300ms", "--count", "8", "--min-age", "0",
                              str(p.pid)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(stop, w)
        lines = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x.decode()) for x in w.stdout],
                                  daemon=True)
        reader.start()
        first = []
        while not first or not first[-1].strip().startswith(("no findings", "1 finding")):
            first.append(lines.get(timeout=TIMEOUT))
        self.assertIn("no findings", first[-1])
        for i in range(2):
            self.client(port, b"r")
            self.expect_line(p, "served")
        self.assertEqual(w.wait(timeout=TIMEOUT), 8)
        reader.join(TIMEOUT)
        rest = []
        while not lines.empty():
            rest.append(lines.get())
        text = "".join(rest)
        self.assertIn("--- ", text)
        self.assertRegex(text, r"\+2 half_closed_by_peer \(CLOSE_WAIT\): fds \d+, \d+|"
                               r"\+1 half_closed_by_peer \(CLOSE_WAIT\): fd \d+")
        self.assertIn("new finding: close_wait", text)
        self.assertIn("close_wait 2", rest[-1])

    def test_watch_json_has_one_object_per_look_with_changes(self):
        p, _ = self.leaky("close-wait", "1")
        r = self.doctor("--json", "--watch", "100ms", "--count", "3", str(p.pid))
        self.assertEqual(r.returncode, 0, r.stderr)
        looks = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual(len(looks), 3)
        self.assertTrue(all(x["pid"] == p.pid and x["changes"] == [] for x in looks))
        self.assertLess(looks[0]["time_unix_ms"], looks[2]["time_unix_ms"])

    # A healthy orderly serve under load, on each backend: nothing to report.
    def test_healthy_orderly_serve_under_load_has_no_findings(self):
        for backend in ("epoll", "automatic"):  # automatic: io_uring where usable
            with self.subTest(backend=backend):
                self.serve_under_load(backend)

    def serve_under_load(self, backend):
        # `env` execs the server, so its PID is the server's.
        srv = self.start(["env", "ORDERLY_BACKEND=" + backend, BIN, "serve", "echo",
                          "127.0.0.1:0"])
        _, port = self.listening(srv)
        errors = []
        stop_load = threading.Event()

        def load():
            for _ in range(200):  # bounded: at most 200 exchanges per thread
                if stop_load.is_set():
                    return
                data, error = client_exchange(port, os.urandom(20000))
                if error is not None or len(data) != 20000:
                    errors.append(error or len(data))

        threads = [threading.Thread(target=load) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            for _ in range(3):
                r = self.doctor(str(srv.p.pid))
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("no findings", r.stdout)
                proc, = self.doctor_json(str(srv.p.pid), code=0)
                self.assertEqual(proc["findings"], [])
                self.assertEqual(proc["states"]["listening"], 1)
                time.sleep(0.3)
        finally:
            stop_load.set()
            for t in threads:
                t.join(TIMEOUT)
        self.assertEqual(errors, [])

    # Bad input and other users.
    def test_a_pid_that_does_not_exist_is_a_usage_error_naming_it(self):
        with open("/proc/sys/kernel/pid_max") as f:
            missing = int(f.read()) + 1
        r = self.doctor(str(missing))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no process with PID %d" % missing, r.stderr)
        self.assertEqual(r.stdout, "")

    def test_usage_errors_name_the_problem(self):
        for args, text in [((), "name the processes to examine (PID...) or --all"),
                           (("12x",), "'12x' is not a process ID"),
                           (("0",), "'0' is not a process ID"),
                           (("--all", "1"), "excludes"),
                           (("--watch", "0", "1"), "'0' must be longer than zero"),
                           (("--watch", "soon", "1"), "'soon' is not a duration"),
                           (("--count", "2", "1"), "--count: needs --watch"),
                           (("--min-age", "old", "1"), "'old' is not a duration")]:
            r = self.doctor(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(text, r.stderr, args)

    def test_a_process_without_sockets(self):
        p = subprocess.Popen(["sleep", "30"])
        self.addCleanup(stop, p)
        r = self.doctor(str(p.pid))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no TCP or Unix stream sockets", r.stdout)
        proc, = self.doctor_json(str(p.pid), code=0)
        self.assertEqual(proc["connections"], [])
        self.assertEqual(proc["listeners"], [])

    def need_root_and_nobody(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run processes as another user")
        if shutil.which("setpriv") is None or not os.access(SYSTEM_PYTHON, os.X_OK):
            self.skipTest("needs setpriv and " + SYSTEM_PYTHON)
        probe = subprocess.run([*AS_NOBODY, SYSTEM_PYTHON, "-c", "open(%r); open(%r, 'rb')"
                                % (LEAKY, BIN)], capture_output=True, timeout=TIMEOUT)
        if probe.returncode != 0:
            self.skipTest("user nobody cannot read %s or %s here" % (LEAKY, BIN))

    def test_root_examines_a_process_of_another_user(self):
        self.need_root_and_nobody()
        p, port = self.leaky("close-wait", "1", user="nobody")
        self.client(port, b"x")
        self.expect_line(p, "served")
        r = self.doctor("--min-age", "0", str(p.pid))
        self.assertEqual(r.returncode, 8, r.stderr + r.stdout)
        self.assertIn("user nobody", r.stdout)
        proc, = self.doctor_json("--min-age", "0", str(p.pid))
        self.assertEqual(proc["user"], "nobody")
        self.assertEqual(proc["uid"], 65534)
        self.assertEqual(self.finding(proc, "close_wait")["count"], 1)
        self.cross_check_tcp(proc)

    def test_an_unprivileged_doctor_says_what_to_run_instead(self):
        self.need_root_and_nobody()
        p, port = self.leaky("close-wait", "1")  # as root
        r = self.doctor(str(p.pid), prefix=AS_NOBODY)
        self.assertEqual(r.returncode, 1, r.stderr + r.stdout)
        self.assertIn("no permission to read /proc/%d/fd" % p.pid, r.stderr)
        self.assertIn("runs as user root (uid 0) and this check as user nobody", r.stderr)
        self.assertIn("sudo orderly doctor %d" % p.pid, r.stderr)
        self.assertEqual(r.stdout, "")
        # --all as nobody still works, and says what it could not read.
        r = self.doctor("--all", prefix=AS_NOBODY)
        self.assertIn(r.returncode, (0, 8), r.stderr)
        self.assertIn("processes of other users could not be read; run as root", r.stdout)

    def test_all_finds_the_leaking_process(self):
        if os.geteuid() != 0:
            self.skipTest("--all sees other users' processes only as root")
        p, port = self.leaky("close-wait", "1")
        self.client(port, b"x")
        self.expect_line(p, "served")
        r = self.doctor("--all", "--min-age", "0")
        self.assertEqual(r.returncode, 8, r.stderr)
        self.assertIn("process %d (" % p.pid, r.stdout)
        self.assertRegex(r.stdout, r"examined \d+ process(es)? with TCP or Unix stream sockets")
        procs = self.doctor_json("--all", "--min-age", "0")
        mine, = [x for x in procs if x["pid"] == p.pid]
        self.assertEqual(self.finding(mine, "close_wait")["count"], 1)


if __name__ == "__main__":
    unittest.main()
