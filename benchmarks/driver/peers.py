"""The peers: how each one is started, placed on the CPUs, run once against orderly_load, stopped."""

from __future__ import annotations

import ctypes
import datetime
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .model import ROOT, Config, Run, warn

LISTENING = re.compile(r"listening on (\S+):(\d+)")


@dataclass
class PeerSpec:
    name: str
    binary: str  # under BUILD/benchmarks/servers/, or a script under benchmarks/servers/
    env: dict[str, str] = field(default_factory=dict)
    script: bool = False  # run with this Python instead of from the build
    tls: bool = False  # a TLS peer: gets --tls-cert/--tls-key and runs the TLS group only
    broken: str = ""  # known to fail (why): left out unless named in --only


# The order of the tables; a peer is one line. orderly's loop picks io_uring where it is usable
# unless ORDERLY_BACKEND says otherwise, so both orderly rows name their backend.
PEERS = [
    PeerSpec("raw_epoll", "bench_raw_epoll"),
    PeerSpec("raw_uring", "bench_raw_uring"),
    PeerSpec("orderly", "bench_orderly", {"ORDERLY_BACKEND": "epoll"}),
    PeerSpec("orderly_uring", "bench_orderly", {"ORDERLY_BACKEND": "io_uring"}),
    PeerSpec("asio", "bench_asio"),
    PeerSpec("libuv", "bench_libuv"),
    PeerSpec("libevent", "bench_libevent"),
    PeerSpec("asyncio", "asyncio_echo.py", script=True),
    # The TLS group (issue 15): the same echo over TLS 1.3, one certificate for all.
    PeerSpec("raw_tls", "bench_raw_epoll_tls", tls=True),
    PeerSpec("orderly_tls", "bench_orderly", {"ORDERLY_BACKEND": "epoll"}, tls=True),
    PeerSpec("orderly_tls_uring", "bench_orderly", {"ORDERLY_BACKEND": "io_uring"}, tls=True),
    PeerSpec("asio_tls", "bench_asio_tls", tls=True),
]
PEER_NAMES = [p.name for p in PEERS]
TLS_PEERS = {p.name for p in PEERS if p.tls}
BROKEN = {p.name: p.broken for p in PEERS if p.broken}


def io_uring_unavailable() -> str | None:
    """None if this process may create an io_uring, else why not (no such syscall, disabled by
    kernel.io_uring_disabled, refused by seccomp, ...)."""
    nr = 425  # io_uring_setup: one number on every architecture since the unified table (5.1)
    libc = ctypes.CDLL(None, use_errno=True)
    params = (ctypes.c_char * 120)()  # struct io_uring_params, zeroed
    fd = libc.syscall(nr, 1, params)
    if fd >= 0:
        os.close(fd)
        return None
    err = ctypes.get_errno()
    return f"io_uring_setup: {os.strerror(err)}"


@dataclass
class Command:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def peer_commands(build: Path, overrides: dict[str, str],
                  tls_files: tuple[Path, Path] | None = None,
                  wanted: list[str] | None = None) -> dict[str, Command]:
    """The command that starts each available peer; a missing peer is left out with a warning.
    `tls_files` (certificate, key) for the TLS peers: without them they are left out. A broken
    peer runs only when `wanted` names it."""
    cmds: dict[str, Command] = {}
    for spec in PEERS:
        if spec.name in overrides:
            continue
        if spec.broken and spec.name not in (wanted or []):
            warn(f"peer {spec.name} left out: known to fail: {spec.broken} "
                 f"(--only {spec.name} runs it)")
            continue
        if spec.tls and tls_files is None:
            continue
        tls_args = ["--tls-cert", str(tls_files[0]), "--tls-key", str(tls_files[1])] \
            if spec.tls and tls_files else []
        if spec.script:
            path = ROOT / "benchmarks" / "servers" / spec.binary
            if path.is_file():
                cmds[spec.name] = Command([sys.executable, str(path), "--port", "0"], spec.env)
            else:
                warn(f"peer {spec.name} skipped: {path.relative_to(ROOT)} does not exist")
            continue
        binary = build / "benchmarks" / "servers" / spec.binary
        if os.access(binary, os.X_OK):
            cmds[spec.name] = Command([str(binary), "--port", "0"] + tls_args, spec.env)
        else:
            warn(f"peer {spec.name} skipped: {binary} is missing (not built yet?)")
    for name, cmd in overrides.items():
        cmds[name] = Command(shlex.split(cmd))
    return cmds


@dataclass
class Placement:
    """Where and how the server and the load generator run (docs/benchmarks.md, "Placement")."""
    server_cpu: int | None = 0
    client_cpu: int | None = 1
    sched: str = "none"  # none | nice (nice -n -10) | fifo (chrt -f 1): for both processes

    def prefix(self, cpu: int | None) -> list[str]:
        p = ["taskset", "-c", str(cpu)] if cpu is not None else []
        if self.sched == "nice":
            p = ["nice", "-n", "-10"] + p
        elif self.sched == "fifo":
            p = ["chrt", "-f", "1"] + p
        return p

    def permitted(self) -> bool:
        """Whether this user may use the scheduling asked for (SCHED_FIFO, negative nice)."""
        if self.sched == "none":
            return True
        try:
            return subprocess.run(self.prefix(None) + ["true"], capture_output=True,
                                  timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False

    def describe(self, one_cpu: bool = False) -> str:
        pin = "not pinned" if self.server_cpu is None else \
            f"server on CPU {self.server_cpu}, load generator on CPU {self.client_cpu}"
        if one_cpu and self.server_cpu is not None:
            pin += f" (W1 and W2: both on CPU {self.server_cpu})"
        sched = {"none": "default scheduling", "nice": "both at nice -10",
                 "fifo": "both SCHED_FIFO priority 1"}[self.sched]
        return f"{pin}; {sched}"


class Server:
    """A peer process; reads its output (stdout and stderr merged) until it says where it listens.

    The output is drained for the whole life of the process: a server that logs per connection
    must never block on a full pipe in the middle of a measurement.
    """

    def __init__(self, cmd: Command, prefix: list[str]):
        env = dict(os.environ, **cmd.env) if cmd.env else None
        self.proc = subprocess.Popen(prefix + cmd.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=env)
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


def run_once(cfg: Config, peer: str, rep: int, cmd: Command, load: Path,
             place: Placement) -> Run:
    t0 = time.monotonic()
    if cfg.one_cpu and place.server_cpu is not None:
        place = Placement(place.server_cpu, place.server_cpu, place.sched)
    server = Server(cmd, place.prefix(place.server_cpu))
    run = Run(cfg, peer, rep, ok=False)
    try:
        if not server.wait_ready(15):
            rc = server.proc.poll()
            why = f"exited with status {rc}" if rc is not None else "said nothing for 15 s"
            run.error = f"server {why} before 'listening on HOST:PORT': " + \
                " | ".join(server.tail[-3:])
            return run
        host, port = server.endpoint  # type: ignore[misc]
        load_cmd = place.prefix(place.client_cpu) + [
            str(load), "--target", f"{host}:{port}", "--server-pid", str(server.proc.pid)
        ] + cfg.args
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
        "raw_uring": f"hand-written io_uring loop, liburing {dpkg('liburing-dev')}, "
                     f"Linux {platform.release()}",
        "orderly": orderly + " on epoll",
        "orderly_uring": orderly + " on io_uring",
        "asio": f"standalone Asio {asio}",
        "libuv": f"libuv {dpkg('libuv1-dev')}",
        "libevent": f"libevent {dpkg('libevent-dev')}",
        "asyncio": f"CPython {platform.python_version()} asyncio",
        "raw_tls": f"hand-written epoll loop, OpenSSL {ssl_version()} on the socket",
        "orderly_tls": orderly + " on epoll, tls_filter (OpenSSL over memory BIOs)",
        "orderly_tls_uring": orderly + " on io_uring, tls_filter",
        "asio_tls": f"standalone Asio {asio}, asio::ssl::stream",
    }


def ssl_version() -> str:
    m = re.search(r"OpenSSL (\S+)", sh(["openssl", "version"]))
    return m.group(1) if m else "3 (version unknown)"
