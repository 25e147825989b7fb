#!/usr/bin/env python3
"""Run every benchmark workload against the six echo peers, interleaved, and write the results.

    python3 benchmarks/run.py --build build/bench [--quick | --smoke] [--reps R] [--out DIR]
                              [--only PEER,...] [--workloads W1,W2,...]

Each run gets a fresh server pinned to one CPU (taskset -c 0) and the load generator
(orderly_load) pinned to another (taskset -c 1). For every workload configuration and every
repetition the peers run in a rotated order, so slow drift of the machine (thermal, other
load) spreads over all peers instead of favouring whichever ran first. docs/benchmarks.md
explains the workloads and how to read the output.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ["raw_epoll", "orderly", "asio", "libuv", "libevent", "asyncio"]
BASELINE = "raw_epoll"
MARK_BEGIN = "<!-- results:begin -->"
MARK_END = "<!-- results:end -->"
LISTENING = re.compile(r"listening on (\S+):(\d+)")


def say(msg: str) -> None:
    print(msg, flush=True)


def warn(msg: str) -> None:
    print(f"run.py: warning: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Workload configurations


@dataclass
class Metric:
    name: str  # field of orderly_load's JSON
    label: str
    better: str  # "higher", "lower" or "zero" (a count of bad things: no ratio, 0 is the goal)


@dataclass
class Config:
    workload: str  # W1..W6
    label: str  # e.g. "64 B x 100"
    args: list[str]
    seconds: float  # estimated wall time of one run, for the projection
    metrics: list[Metric]
    plot_metric: str

    @property
    def key(self) -> str:
        return f"{self.workload} {self.label}"


LATENCY = [Metric("p50_us", "p50 µs", "lower"), Metric("p99_us", "p99 µs", "lower")]
PINGPONG = [
    Metric("msgs_per_s", "msgs/s", "higher"),
    Metric("server_cpu_us_per_msg", "server CPU µs/msg", "lower"),
    Metric("client_cpu_share", "client CPU share", "zero"),
]
BULK = [Metric("gb_per_s", "GB/s", "higher")]
CHURN = [
    Metric("connections_per_s", "conn/s", "higher"),
    Metric("resets", "resets", "zero"),
    Metric("short_replies", "short", "zero"),
    Metric("system_tcp_out_rsts_delta", "OutRsts (system)", "zero"),
]
IDLE = [Metric("bytes_per_connection", "B/conn", "lower")]
STOP = [
    Metric("server_exit_s", "stop s", "lower"),
    Metric("lost_bytes", "lost B", "zero"),
    Metric("ended_reset", "resets", "zero"),
    Metric("hung", "hung", "zero"),
]

# Fixed per-run overhead (server start, connection set-up, stop) used by the time projection.
OVERHEAD_S = 0.8


def size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def make_configs(mode: str) -> list[Config]:
    if mode == "smoke":
        return [Config("W1", "64 B", ["--workload", "latency", "--seconds", "1", "--warmup",
                                      "0.2"], 1.2, LATENCY, "p50_us")]
    full = mode == "full"
    lat_s = 5 if full else 1.5
    pp_s = 3 if full else 1.0
    warm = "0.5" if full else "0.3"
    conns = [1, 100, 1000] if full else [1, 100]
    idle_n = 10000 if full else 2000
    stop_n = 1000 if full else 200
    out = [Config("W1", "64 B x 1", ["--workload", "latency", "--seconds", str(lat_s),
                                     "--warmup", warm], lat_s + float(warm), LATENCY, "p50_us")]
    for size in (64, 4096):
        for n in conns:
            out.append(Config("W2", f"{size_label(size)} x {n}",
                              ["--workload", "pingpong", "--size", str(size), "--connections",
                               str(n), "--seconds", str(pp_s), "--warmup", warm],
                              pp_s + float(warm) + n / 2000, PINGPONG, "msgs_per_s"))
    out.append(Config("W3", "16 KiB chunks", ["--workload", "bulk", "--seconds", str(pp_s),
                                              "--warmup", warm],
                      pp_s + float(warm), BULK, "gb_per_s"))
    out.append(Config("W4", "100 B x 16", ["--workload", "churn", "--connections", "16",
                                           "--seconds", str(pp_s)], pp_s, CHURN,
                      "connections_per_s"))
    out.append(Config("W5", f"{idle_n} idle", ["--workload", "idle", "--connections",
                                               str(idle_n), "--seconds", "1"],
                      1 + idle_n / 4000, IDLE, "bytes_per_connection"))
    out.append(Config("W6", f"SIGTERM x {stop_n}", ["--workload", "stop", "--connections",
                                                    str(stop_n), "--seconds", "1"],
                      1.5 + stop_n / 2000, STOP, "server_exit_s"))
    return out


# ---------------------------------------------------------------------------------------------
# Peers


def peer_commands(build: Path, overrides: dict[str, str]) -> dict[str, list[str]]:
    """The command that starts each available peer; a missing peer is left out with a warning."""
    cmds: dict[str, list[str]] = {}
    for name in PEERS:
        if name in overrides:
            continue
        if name == "asyncio":
            script = ROOT / "benchmarks" / "servers" / "asyncio_echo.py"
            if script.is_file():
                cmds[name] = [sys.executable, str(script), "--port", "0"]
            else:
                warn(f"peer asyncio skipped: {script.relative_to(ROOT)} does not exist")
            continue
        binary = build / "benchmarks" / "servers" / f"bench_{name}"
        if os.access(binary, os.X_OK):
            cmds[name] = [str(binary), "--port", "0"]
        else:
            warn(f"peer {name} skipped: {binary} is missing (not built yet?)")
    for name, cmd in overrides.items():
        cmds[name] = shlex.split(cmd)
    return cmds


def pin(cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


class Server:
    """A peer process; reads its output (stdout and stderr merged) until it says where it listens.

    The output is drained for the whole life of the process: a server that logs per connection
    must never block on a full pipe in the middle of a measurement.
    """

    def __init__(self, cmd: list[str], cpu: int | None):
        self.proc = subprocess.Popen(pin(cpu) + cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.tail: list[str] = []
        self.endpoint: tuple[str, int] | None = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.tail = (self.tail + [line])[-20:]
            m = LISTENING.search(line)
            if m and self.endpoint is None:
                host = m.group(1)
                # Peers print 127.0.0.1; anything else that is not plain IPv4 gets loopback.
                if not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", host) or host == "0.0.0.0":
                    host = "127.0.0.1"
                self.endpoint = (host, int(m.group(2)))
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float) -> bool:
        self._ready.wait(timeout)
        return self.endpoint is not None

    def stop(self) -> int | None:
        """SIGTERM, wait up to 10 s, then SIGKILL. Returns the exit status (None if killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                warn(f"server pid {self.proc.pid} ignored SIGTERM for 10 s: SIGKILL")
                self.proc.kill()
                self.proc.wait()
                self._reader.join(2)
                return None
        self._reader.join(2)
        return self.proc.returncode


@dataclass
class Run:
    config: Config
    peer: str
    rep: int
    ok: bool
    data: dict = field(default_factory=dict)
    error: str = ""
    server_rc: int | None = 0
    wall_s: float = 0.0


def run_once(cfg: Config, peer: str, rep: int, cmd: list[str], load: Path,
             cpus: tuple[int | None, int | None]) -> Run:
    t0 = time.monotonic()
    server = Server(cmd, cpus[0])
    run = Run(cfg, peer, rep, ok=False)
    try:
        if not server.wait_ready(15):
            rc = server.proc.poll()
            why = f"exited with status {rc}" if rc is not None else "said nothing for 15 s"
            run.error = f"server {why} before 'listening on HOST:PORT': " + \
                " | ".join(server.tail[-3:])
            return run
        host, port = server.endpoint  # type: ignore[misc]
        load_cmd = pin(cpus[1]) + [str(load), "--target", f"{host}:{port}", "--server-pid",
                                   str(server.proc.pid)] + cfg.args
        try:
            res = subprocess.run(load_cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                 text=True, timeout=cfg.seconds + 60)
        except subprocess.TimeoutExpired:
            run.error = "orderly_load did not finish (driver timeout)"
            return run
        lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
        try:
            run.data = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            run.data = {}
        if not run.data:
            run.error = f"orderly_load exited {res.returncode} without JSON: " \
                        f"{res.stderr.strip()[-300:]}"
            return run
        run.ok = res.returncode == 0 and bool(run.data.get("ok"))
        if not run.ok:
            run.error = str(run.data.get("error", f"orderly_load exited {res.returncode}"))
        return run
    finally:
        run.server_rc = server.stop()
        if run.server_rc not in (0, None) and run.ok and cfg.workload == "W6":
            # A graceful stop must end with status 0: anything else is part of the result.
            run.error = f"server exited with status {run.server_rc} after SIGTERM"
            run.ok = False
        run.wall_s = time.monotonic() - t0


# ---------------------------------------------------------------------------------------------
# Machine and versions


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info(build: Path) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    compiler = ""
    cache = build / "CMakeCache.txt"
    if cache.is_file():
        m = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.*)$", cache.read_text(), re.M)
        if m:
            compiler = sh([m.group(1), "--version"]).splitlines()[0] if m.group(1) else ""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu} ({os.cpu_count()} logical CPUs)",
        "kernel": f"Linux {platform.release()}",
        "compiler": compiler or "unknown",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def peer_versions() -> dict[str, str]:
    def dpkg(pkg: str) -> str:
        return sh(["dpkg-query", "-W", "-f", "${Version}", pkg]) or "unknown"

    asio = "unknown"
    header = Path("/usr/include/asio/version.hpp")
    if header.is_file():
        m = re.search(r"#\s*define\s+ASIO_VERSION\s+(\d+)", header.read_text())
        if m:
            v = int(m.group(1))
            asio = f"{v // 100000}.{v // 100 % 1000}.{v % 100}"
    orderly = "unknown"
    m = re.search(r"project\(orderly VERSION (\S+)", (ROOT / "CMakeLists.txt").read_text())
    if m:
        orderly = m.group(1)
    rev = sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    if rev:
        orderly += f" (git {rev})"
    return {
        "raw_epoll": f"hand-written epoll loop, Linux {platform.release()}",
        "orderly": orderly,
        "asio": f"standalone Asio {asio}",
        "libuv": f"libuv {dpkg('libuv1-dev')}",
        "libevent": f"libevent {dpkg('libevent-dev')}",
        "asyncio": f"CPython {platform.python_version()} asyncio",
    }


# ---------------------------------------------------------------------------------------------
# Output: CSV, summary, plot


def unit_of(metric: str) -> str:
    if metric.endswith("_us") or metric.endswith("_us_per_msg"):
        return "us"
    if metric == "gb_per_s":
        return "GB/s"
    if metric == "mb_per_s":
        return "MB/s"
    if metric == "msgs_per_s":
        return "msg/s"
    if metric == "connections_per_s":
        return "conn/s"
    if metric.endswith("_kib"):
        return "KiB"
    if "bytes" in metric or metric == "size":
        return "B"
    if metric.endswith("_s") or metric == "seconds":
        return "s"
    if metric.endswith("_share"):
        return "fraction"
    if metric in ("ok", "server_exited", "run_ok"):
        return "bool"
    return "count"


def write_csv(runs: list[Run], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "config", "peer", "rep", "metric", "value", "unit"])
        for r in runs:
            base = [r.config.workload, r.config.label, r.peer, r.rep]
            w.writerow(base + ["run_ok", int(r.ok), "bool"])
            for k, v in r.data.items():
                if isinstance(v, bool):
                    v = int(v)
                if isinstance(v, (int, float)) and k not in ("connections", "size", "seconds"):
                    w.writerow(base + [k, v, unit_of(k)])


def values(runs: list[Run], key: str, peer: str, metric: str) -> list[float]:
    return [float(r.data[metric]) for r in runs
            if r.config.key == key and r.peer == peer and r.ok
            and isinstance(r.data.get(metric), (int, float))
            and not isinstance(r.data.get(metric), bool)]


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def ratio(peer_med: float | None, raw_med: float | None, better: str) -> float | None:
    """Ratio to raw_epoll oriented so that > 1 is better."""
    if peer_med is None or raw_med is None or better == "zero":
        return None
    if better == "higher":
        return peer_med / raw_med if raw_med > 0 else None
    return raw_med / peer_med if peer_med > 0 else None


def fmt_num(x: float | None) -> str:
    if x is None:
        return "–"
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 100000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def summary_tables(runs: list[Run], configs: list[Config], peers: list[str]) -> str:
    out = ["Each cell: median over repetitions, [min–max] below it; **× raw** is the ratio to "
           "raw_epoll's median, oriented so that **> 1 is better** for every metric "
           "(peer/raw for throughput, raw/peer for times, latencies and bytes). Counts of bad "
           "events (resets, lost bytes, hung) have no ratio: 0 is the goal.", ""]
    for cfg in configs:
        if not any(r.config.key == cfg.key for r in runs):
            continue
        out.append(f"### {cfg.workload} — {cfg.label}")
        out.append("")
        head = ["peer"]
        for m in cfg.metrics:
            head.append(m.label)
            if m.better != "zero":
                head.append("× raw (>1 better)")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for peer in peers:
            row = [peer]
            have = [r for r in runs if r.config.key == cfg.key and r.peer == peer]
            if not have:
                continue
            failed = sum(1 for r in have if not r.ok)
            for m in cfg.metrics:
                xs = values(runs, cfg.key, peer, m.name)
                med = median(xs)
                cell = fmt_num(med)
                if len(xs) > 1:
                    cell += f" [{fmt_num(min(xs))}–{fmt_num(max(xs))}]"
                row.append(cell)
                if m.better != "zero":
                    raw_med = median(values(runs, cfg.key, BASELINE, m.name))
                    rt = ratio(med, raw_med, m.better)
                    row.append(f"{rt:.2f}" if rt is not None else "–")
            if failed:
                row[0] += f" ({failed} failed)"
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


def target_lines(runs: list[Run], configs: list[Config]) -> list[str]:
    lines: list[str] = []

    def med(cfg: Config, peer: str, metric: str) -> float | None:
        return median(values(runs, cfg.key, peer, metric))

    def check(name: str, ok: bool | None, detail: str) -> None:
        # A target without data is not met: a missing peer must not read as a pass.
        lines.append(f"{'PASS' if ok else 'MISS'}  {name}: {detail}")

    for cfg in configs:
        if cfg.workload == "W2":
            o = med(cfg, "orderly", "msgs_per_s")
            for other, need in ((BASELINE, 1.00), ("asio", 1.15), ("libuv", 1.15)):
                b = med(cfg, other, "msgs_per_s")
                if o is None or b is None or b <= 0:
                    check(f"W2 {cfg.label} orderly >= {need:.2f}x {other} (msgs/s)", None,
                          "missing data")
                    continue
                check(f"W2 {cfg.label} orderly >= {need:.2f}x {other} (msgs/s)", o / b >= need,
                      f"{o / b:.2f}x ({fmt_num(o)} vs {fmt_num(b)})")
        if cfg.workload in ("W3", "W4"):
            o = med(cfg, "orderly", cfg.plot_metric)
            b = med(cfg, BASELINE, cfg.plot_metric)
            name = f"{cfg.workload} {cfg.label} orderly >= 0.95x {BASELINE}"
            if o is None or b is None or b <= 0:
                check(name, None, "missing data")
            else:
                check(name, o / b >= 0.95, f"{o / b:.2f}x ({fmt_num(o)} vs {fmt_num(b)})")
        if cfg.workload == "W5":
            o = med(cfg, "orderly", "bytes_per_connection")
            check(f"W5 {cfg.label} orderly <= 1024 B per connection",
                  None if o is None else o <= 1024,
                  "missing data" if o is None else f"{fmt_num(o)} B")
        if cfg.workload == "W6":
            mine = [r for r in runs if r.config.key == cfg.key and r.peer == "orderly"]
            if not mine or not all(r.data for r in mine):
                check(f"W6 {cfg.label} orderly 0 lost, 0 resets, 0 hung", None, "missing data")
                continue
            lost = sum(r.data.get("lost_bytes") or 0 for r in mine)
            resets = sum(r.data.get("ended_reset") or 0 for r in mine)
            hung = sum(r.data.get("hung") or 0 for r in mine)
            check(f"W6 {cfg.label} orderly 0 lost, 0 resets, 0 hung",
                  lost == 0 and resets == 0 and hung == 0 and all(r.ok for r in mine),
                  f"over {len(mine)} runs: lost {lost} B, {resets} resets, {hung} hung")
    return lines


PALETTE = {"raw_epoll": "#4d4d4d", "orderly": "#d95f02", "asio": "#1b9e77",
           "libuv": "#7570b3", "libevent": "#e7298a", "asyncio": "#66a61e"}


def esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plot_svg(runs: list[Run], configs: list[Config], peers: list[str], title: str) -> str:
    """Grouped bars: one group per workload configuration, one bar per peer, height = ratio to
    raw_epoll's median of the configuration's headline metric (> 1 is better), line at 1.0."""
    groups = []
    for cfg in configs:
        metric = next(m for m in cfg.metrics if m.name == cfg.plot_metric)
        raw_med = median(values(runs, cfg.key, BASELINE, metric.name))
        bars = [(p, ratio(median(values(runs, cfg.key, p, metric.name)), raw_med, metric.better))
                for p in peers]
        if any(r.config.key == cfg.key for r in runs):
            groups.append((cfg, metric, bars))
    cap = 2.5
    top = min(cap, max([1.25] + [v for _, _, b in groups for _, v in b if v is not None]))
    top = (int(top * 4) + 1) / 4
    bar_w, gap = 14, 22
    left, right, head, foot = 60, 20, 72, 95
    plot_h = 300
    group_w = max(bar_w * max(1, len(peers)) + gap, 96)  # room for the group's labels
    width = max(760, left + right + group_w * max(1, len(groups)))
    height = head + plot_h + foot

    def y(v: float) -> float:
        return head + plot_h - min(v, top) / top * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="20" font-size="14" font-weight="bold">{esc(title)}</text>',
             f'<text x="{left}" y="36" fill="#555">ratio to the raw_epoll median, &gt; 1 is '
             f'better (throughput: peer/raw; times and bytes: raw/peer)</text>',
             f'<text x="{left}" y="50" fill="#555">bars above {top:g} are cut and carry their '
             f'value</text>']
    tick = 0.0
    while tick <= top + 1e-9:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" '
                     f'y2="{y(tick):.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
                     f'{tick:.2f}</text>')
        tick += 0.25 if top <= 1.5 else 0.5
    for gi, (cfg, metric, bars) in enumerate(groups):
        x0 = left + gi * group_w + (group_w - bar_w * len(bars)) / 2
        for bi, (peer, v) in enumerate(bars):
            x = x0 + bi * bar_w
            color = PALETTE.get(peer, "#999999")
            if v is None:
                parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y(0) - 3:.1f}" font-size="8" '
                             f'text-anchor="middle" fill="#999">–</text>')
                continue
            parts.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w - 2}" '
                         f'height="{y(0) - y(v):.1f}" fill="{color}">'
                         f'<title>{esc(peer)} {esc(cfg.key)}: {v:.2f}</title></rect>')
            if v > top:
                # Staggered so that neighbouring cut bars' labels do not overlap.
                parts.append(f'<text x="{x + bar_w / 2 - 1:.1f}" y="{y(top) - 3 - 9 * (bi % 2):.1f}" '
                             f'font-size="8" text-anchor="middle">{v:.1f}</text>')
        cx = x0 + bar_w * len(bars) / 2
        parts.append(f'<text x="{cx:.1f}" y="{head + plot_h + 16}" text-anchor="middle">'
                     f'{esc(cfg.workload)}</text>')
        parts.append(f'<text x="{cx:.1f}" y="{head + plot_h + 30}" text-anchor="middle" '
                     f'font-size="9">{esc(cfg.label)}</text>')
        parts.append(f'<text x="{cx:.1f}" y="{head + plot_h + 43}" text-anchor="middle" '
                     f'font-size="9" fill="#555">{esc(metric.label)}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(1):.1f}" y2="{y(1):.1f}" '
                 f'stroke="black" stroke-dasharray="4 3"/>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{head}" y2="{y(0):.1f}" stroke="black"/>')
    lx = left
    for peer in peers:
        ly = height - 22
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" '
                     f'fill="{PALETTE.get(peer, "#999999")}"/>')
        parts.append(f'<text x="{lx + 14}" y="{ly}">{esc(peer)}</text>')
        lx += 14 + 8 * len(peer) + 16
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def generated_markdown(runs: list[Run], configs: list[Config], peers: list[str],
                       machine: dict[str, str], versions: dict[str, str], reps: int,
                       targets: list[str], svg_rel: str) -> str:
    out = [MARK_BEGIN, "<!-- generated by benchmarks/run.py: edits inside the markers are "
           "overwritten -->", "", "### Machine", ""]
    for k, v in machine.items():
        out.append(f"- {k}: {v}")
    out.append(f"- repetitions per peer and configuration: {reps}")
    out += ["", "### Peers", ""]
    for p in peers:
        out.append(f"- {p}: {versions.get(p, 'unknown')}")
    out += ["", f"![ratio to raw_epoll per workload]({svg_rel})", "", "### Targets", "", "```"]
    out += targets or ["(no target applies to the workloads that ran)"]
    out += ["```", "", "### Results", "", summary_tables(runs, configs, peers)]
    failures = [r for r in runs if not r.ok]
    if failures:
        out += ["### Failed runs", ""]
        out += [f"- {r.config.key}, {r.peer}, rep {r.rep}: {r.error}" for r in failures]
        out.append("")
    out.append(MARK_END)
    return "\n".join(out)


def update_docs(md_path: Path, generated: str) -> None:
    text = md_path.read_text() if md_path.is_file() else ""
    if MARK_BEGIN in text and MARK_END in text:
        before = text.split(MARK_BEGIN, 1)[0]
        after = text.split(MARK_END, 1)[1]
        text = before + generated + after
    else:
        text = text.rstrip() + "\n\n## Results\n\n" + generated + "\n"
    md_path.write_text(text)


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True, type=Path, help="build directory (build/bench)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="shorter runs, fewer configurations, "
                      "1 repetition by default (<= 3 min)")
    mode.add_argument("--smoke", action="store_true", help="every peer answers W1 for 1 s, once; "
                      "exit non-zero if any fails (for CI)")
    ap.add_argument("--reps", type=int, help="repetitions (default 3; 1 with --quick/--smoke)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench-results",
                    help="where results go (default build/bench-results/)")
    ap.add_argument("--only", help="comma-separated peers, e.g. orderly,raw_epoll")
    ap.add_argument("--workloads", help="comma-separated workloads, e.g. W1,W2")
    ap.add_argument("--peer", action="append", default=[], metavar="NAME=COMMAND",
                    help="add or replace a peer (the command must print 'listening on "
                    "HOST:PORT'), e.g. --peer 'cli=build/bench/tools/orderly/orderly serve "
                    "echo 127.0.0.1:0'")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--no-pin", action="store_true", help="do not use taskset")
    ap.add_argument("--docs", choices=["auto", "yes", "no"], default="auto",
                    help="write docs/ (auto: only for a full run of every peer and workload)")
    args = ap.parse_args()

    build = args.build if args.build.is_absolute() else ROOT / args.build
    if not build.is_dir() and (Path.cwd() / args.build).is_dir():
        build = Path.cwd() / args.build
    load = build / "benchmarks" / "load" / "orderly_load"
    if not os.access(load, os.X_OK):
        print(f"run.py: {load} is missing: build the bench preset first (./dev bench does)",
              file=sys.stderr)
        return 2
    mode_name = "smoke" if args.smoke else "quick" if args.quick else "full"
    reps = args.reps or (3 if mode_name == "full" else 1)

    overrides = {}
    for spec in args.peer:
        name, _, cmd = spec.partition("=")
        if not name or not cmd:
            ap.error(f"--peer wants NAME=COMMAND, got {spec!r}")
        overrides[name] = cmd
    cmds = peer_commands(build, overrides)
    if args.only:
        wanted = [p.strip() for p in args.only.split(",") if p.strip()]
        for p in wanted:
            if p not in cmds:
                warn(f"--only {p}: no such peer available")
        cmds = {p: c for p, c in cmds.items() if p in wanted}
    peers = [p for p in PEERS if p in cmds] + [p for p in cmds if p not in PEERS]
    if not peers:
        print("run.py: no peer available", file=sys.stderr)
        return 1
    if BASELINE not in peers and mode_name != "smoke":
        warn(f"{BASELINE} is not running: no ratios")

    configs = make_configs(mode_name)
    if args.workloads:
        wanted_w = {w.strip().upper() for w in args.workloads.split(",")}
        configs = [c for c in configs if c.workload in wanted_w]
    if not configs:
        print("run.py: no workload selected", file=sys.stderr)
        return 2

    cpus: tuple[int | None, int | None] = (args.server_cpu, args.client_cpu)
    ncpu = os.cpu_count() or 1
    if args.no_pin or not shutil.which("taskset") or ncpu < 2:
        if not args.no_pin:
            warn("not pinning (taskset missing or fewer than 2 CPUs): client and server share "
                 "the CPUs")
        cpus = (None, None)

    projected = sum((c.seconds + OVERHEAD_S) * reps * len(peers) for c in configs)
    say(f"run.py: {mode_name} run: {len(configs)} configurations x {len(peers)} peers "
        f"({', '.join(peers)}) x {reps} reps; projected {projected / 60:.1f} min")
    machine = machine_info(build)
    versions = peer_versions()
    runs: list[Run] = []
    t_start = time.monotonic()
    for ci, cfg in enumerate(configs):
        for rep in range(1, reps + 1):
            shift = (ci + rep - 1) % len(peers)
            for peer in peers[shift:] + peers[:shift]:
                r = run_once(cfg, peer, rep, cmds[peer], load, cpus)
                runs.append(r)
                shown = ", ".join(f"{m.label} {fmt_num(r.data.get(m.name))}"
                                  for m in cfg.metrics
                                  if isinstance(r.data.get(m.name), (int, float)))
                status = "ok  " if r.ok else "FAIL"
                say(f"  {status} {cfg.key:<22} rep {rep} {peer:<10} {shown}"
                    + (f"  -- {r.error}" if r.error else ""))
    elapsed = time.monotonic() - t_start

    out_dir = args.out if args.out.is_absolute() else Path.cwd() / args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"orderly benchmarks ({mode_name} run, {machine['date']})"
    targets = target_lines(runs, configs) if mode_name != "smoke" else []
    write_csv(runs, out_dir / "benchmarks.csv")
    (out_dir / "runs.jsonl").write_text(
        "".join(json.dumps({"workload": r.config.workload, "config": r.config.label,
                            "peer": r.peer, "rep": r.rep, "ok": r.ok, "error": r.error,
                            "server_rc": r.server_rc, "result": r.data}) + "\n" for r in runs))
    svg = plot_svg(runs, configs, peers, title)
    (out_dir / "benchmarks.svg").write_text(svg)
    gen = generated_markdown(runs, configs, peers, machine, versions, reps, targets,
                             "benchmarks.svg")
    (out_dir / "summary.md").write_text(gen + "\n")

    complete = mode_name == "full" and not args.only and not args.workloads and \
        not args.peer and set(PEERS) <= set(peers)
    if args.docs == "yes" or (args.docs == "auto" and complete):
        if mode_name != "full":
            warn("--docs yes ignored: only a full run writes docs/")
        else:
            docs = ROOT / "docs"
            write_csv(runs, docs / "benchmarks.csv")
            (docs / "img").mkdir(parents=True, exist_ok=True)
            (docs / "img" / "benchmarks.svg").write_text(svg)
            update_docs(docs / "benchmarks.md",
                        generated_markdown(runs, configs, peers, machine, versions, reps,
                                           targets, "img/benchmarks.svg"))
            say("run.py: wrote docs/benchmarks.csv, docs/img/benchmarks.svg, docs/benchmarks.md")
    elif mode_name == "full":
        say("run.py: docs/ left alone (not a complete run; --docs yes forces it)")

    say("")
    say(summary_tables(runs, configs, peers))
    for line in targets:
        say(line)
    failures = [r for r in runs if not r.ok]
    say(f"run.py: {len(runs)} runs, {len(failures)} failed; took {elapsed / 60:.1f} min "
        f"(projected {projected / 60:.1f}); results in {out_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
