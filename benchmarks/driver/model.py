"""What a benchmark run is made of: metrics, workload configurations, runs."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BASELINE = "raw_epoll"  # every "x raw" column divides by it
URING_BASELINE = "raw_uring"  # the reference for the io_uring targets
TLS_BASELINE = "raw_tls"  # the TLS group's reference: every ratio of a TLS configuration


def say(msg: str) -> None:
    print(msg, flush=True)


def warn(msg: str) -> None:
    print(f"run.py: warning: {msg}", file=sys.stderr, flush=True)


@dataclass
class Metric:
    name: str  # field of orderly_load's JSON
    label: str
    # "higher" or "lower" is better (gets a ratio to the baseline); "zero": a count of bad things
    # (no ratio, 0 is the goal); "info": shown, never compared.
    better: str


@dataclass
class Config:
    workload: str  # W1..W6
    label: str  # e.g. "64 B x 100"
    args: list[str]
    seconds: float  # estimated wall time of one run, for the projection
    metrics: list[Metric]
    plot_metric: str
    reps: int = 1
    # Server and load generator on one CPU (W1, W2): a round trip then costs exactly the sum of
    # both sides' work, so a server's cost shows in full (docs/benchmarks.md, "Placement").
    one_cpu: bool = False
    # The TLS group: run with orderly_load --tls against the TLS peers only, ratios to raw_tls.
    tls: bool = False

    @property
    def key(self) -> str:
        return f"{self.workload} {self.label}"


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
