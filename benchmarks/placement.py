#!/usr/bin/env python3
"""Interleaved A/B runs of one W2 configuration under different placements of server and client.

    python3 benchmarks/placement.py --build build/bench [--peer raw_epoll] [--size 64]
        [--connections 100] [--seconds 2] [--rounds 8] [--variants pinned,swapped,...]
        [--client uring] [--wait-quiet S]

The tool behind docs/benchmarks.md, "Placement: why runs were bimodal". Every round runs every
variant once, in a random order, so load from elsewhere hits all variants alike; per variant it
prints the msgs/s of every round (sorted: two levels show as a gap) and the means of the
kernel-side counters orderly_load reports (per CPU: busy share, NET_RX softirqs, rescheduling
IPIs and cpuidle entries per message; ksoftirqd time; other load). Variants that change a machine
setting (busy polling, halt polling) set it just around their own runs and restore it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from driver.configs import PINGPONG  # noqa: E402
from driver.model import ROOT, Config, say, warn  # noqa: E402
from driver.peers import Placement, peer_commands, run_once  # noqa: E402
from driver.stats import median_ci  # noqa: E402

HALT_POLL = "/sys/module/haltpoll/parameters/guest_halt_poll_ns"
LO_RX = "/sys/class/net/lo/queues/rx-0/"
# Receive Flow Steering on loopback: a packet's receive processing runs on the CPU where its
# socket was last read, instead of inline on the sender's CPU.
RFS = [("/proc/sys/net/core/rps_sock_flow_entries", "32768"), (LO_RX + "rps_flow_cnt", "32768"),
       (LO_RX + "rps_cpus", "3")]


@contextlib.contextmanager
def setting(path: str, value: str):
    """Writes `value` to a sysctl or module parameter for the duration; restores it after."""
    p = Path(path)
    old = p.read_text().strip()
    p.write_text(value)
    try:
        yield
    finally:
        p.write_text(old)


@contextlib.contextmanager
def settings(pairs: list[tuple[str, str]]):
    with contextlib.ExitStack() as stack:
        for path, value in pairs:
            stack.enter_context(setting(path, value))
        yield


VARIANTS: dict[str, tuple[str, Placement, list[tuple[str, str]]]] = {
    "pinned": ("server CPU 0, client CPU 1", Placement(0, 1), []),
    "swapped": ("server CPU 1, client CPU 0", Placement(1, 0), []),
    "unpinned": ("no taskset", Placement(None, None), []),
    "same-cpu": ("both on CPU 0, as the driver runs W1 and W2", Placement(0, 0), []),
    "nice": ("pinned, both at nice -10", Placement(0, 1, "nice"), []),
    "fifo": ("pinned, both SCHED_FIFO 1", Placement(0, 1, "fifo"), []),
    "busy-poll": ("pinned, net.core.busy_poll = busy_read = 50 µs", Placement(0, 1),
                  [("/proc/sys/net/core/busy_poll", "50"), ("/proc/sys/net/core/busy_read", "50")]),
    "halt-poll": ("pinned, an idle vCPU polls 200 µs before it halts", Placement(0, 1),
                  [(HALT_POLL, "200000")]),
    "halt-poll-fifo": ("pinned, halt polling and SCHED_FIFO", Placement(0, 1, "fifo"),
                       [(HALT_POLL, "200000")]),
    "busy-poll-fifo": ("pinned, busy polling and SCHED_FIFO", Placement(0, 1, "fifo"),
                       [("/proc/sys/net/core/busy_poll", "50"),
                        ("/proc/sys/net/core/busy_read", "50")]),
    "rfs-fifo": ("pinned, SCHED_FIFO, RFS on lo: receive processing on the receiver's CPU",
                 Placement(0, 1, "fifo"), RFS),
    "rps-fifo": ("pinned, SCHED_FIFO, RPS on lo over both CPUs (no flow table)",
                 Placement(0, 1, "fifo"), [(LO_RX + "rps_cpus", "3")]),
    "swapped-fifo": ("server CPU 1, client CPU 0, SCHED_FIFO", Placement(1, 0, "fifo"), []),
    "unpinned-fifo": ("no taskset, SCHED_FIFO", Placement(None, None, "fifo"), []),
    "same-cpu-fifo": ("both on CPU 0, SCHED_FIFO", Placement(0, 0, "fifo"), []),
}

SHOWN = ["client_cpu_share", "server_cpu_share", "server_cpu_us_per_msg",
         "client_server_cpu_us_per_msg", "ksoftirqd_cpu_s", "softirq_share",
         "foreign_cpu_share"]


def quiet_now() -> bool:
    return os.getloadavg()[0] < 0.5


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", type=Path, required=True)
    ap.add_argument("--peer", default="raw_epoll",
                    help="comma-separated peers; with more than one, each variant also prints "
                    "every peer's per-round ratio to the first")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--client", choices=["uring", "epoll"], default="uring")
    ap.add_argument("--variants", default="pinned,swapped,unpinned,same-cpu,fifo,halt-poll")
    ap.add_argument("--wait-quiet", type=float, default=0,
                    help="before each round, wait up to S seconds for a load average below 0.5")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "placement.jsonl")
    args = ap.parse_args()

    build = args.build if args.build.is_absolute() else ROOT / args.build
    load = build / "benchmarks" / "load" / "orderly_load"
    cmds = peer_commands(build, {})
    peers = [p.strip() for p in args.peer.split(",") if p.strip()]
    for p in peers:
        if p not in cmds:
            print(f"placement.py: no peer {p}", file=sys.stderr)
            return 2
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in names:
        if v not in VARIANTS:
            print(f"placement.py: unknown variant {v} (known: {', '.join(VARIANTS)})",
                  file=sys.stderr)
            return 2
    if any(VARIANTS[v][2] for v in names) and os.geteuid() != 0:
        print("placement.py: the busy-poll and halt-poll variants need root", file=sys.stderr)
        return 2
    cfg = Config("W2", f"{args.size} B x {args.connections}",
                 ["--workload", "pingpong", "--size", str(args.size), "--connections",
                  str(args.connections), "--seconds", str(args.seconds), "--warmup", "0.3",
                  "--client", args.client], args.seconds + 1, PINGPONG, "msgs_per_s")
    runs = [(v, p) for v in names for p in peers]
    results: dict[tuple[str, str], list[dict]] = {vp: [] for vp in runs}
    say(f"placement.py: {', '.join(peers)}, {cfg.label}, {args.seconds:g} s, {args.client} "
        f"client, {args.rounds} rounds of {', '.join(names)}")
    with args.out.open("w") as log:
        for rnd in range(args.rounds):
            if args.wait_quiet:
                t_end = time.monotonic() + args.wait_quiet
                while not quiet_now() and time.monotonic() < t_end:
                    time.sleep(5)
            la = os.getloadavg()[0]
            order = list(runs)
            random.Random(f"placement/{rnd}").shuffle(order)  # see run.py: no fixed neighbours
            for v, p in order:
                _, place, sets = VARIANTS[v]
                with settings(sets):
                    r = run_once(cfg, p, rnd + 1, cmds[p], load, place)
                if not r.ok:
                    warn(f"{v} {p} round {rnd + 1}: {r.error}")
                    continue
                r.data["load_avg"] = la
                r.data["round"] = rnd + 1
                results[(v, p)].append(r.data)
                log.write(json.dumps({"variant": v, "peer": p, **r.data}) + "\n")
                say(f"  round {rnd + 1} load {la:.2f} {v:15} {p:10} msgs/s "
                    f"{r.data['msgs_per_s']:9.0f}  other load "
                    f"{r.data.get('foreign_cpu_share', 0) * 100:4.1f} %")

    say("")
    for v, p in runs:
        rs = results[(v, p)]
        if not rs:
            continue
        xs = sorted(r["msgs_per_s"] for r in rs)
        med = statistics.median(xs)
        say(f"{v} ({VARIANTS[v][0]}), {p}: median {med:,.0f} msgs/s, min {xs[0]:,.0f}, max "
            f"{xs[-1]:,.0f} ({(xs[-1] - xs[0]) / med * 100:.0f} % of the median)")
        if p != peers[0]:
            base = {r["round"]: r for r in results[(v, peers[0])]}
            for metric, inverse in (("msgs_per_s", False), ("server_cpu_us_per_msg", True)):
                rt = [(base[r["round"]][metric] / r[metric]) if inverse else
                      (r[metric] / base[r["round"]][metric]) for r in rs if r["round"] in base]
                if rt:
                    ci = median_ci(rt)
                    say(f"  {metric} x {peers[0]} (> 1 better): median {statistics.median(rt):.3f}"
                        + (f" [{ci[0]:.3f}–{ci[1]:.3f}]" if ci else "") + "  rounds: "
                        + " ".join(f"{x:.2f}" for x in rt))
        say("  rounds: " + " ".join(f"{x / 1000:.0f}k" for x in xs))
        keys = SHOWN + sorted(k for k in rs[0] if k.startswith("cpu") and k[3:4].isdigit())
        for k in keys:
            vals = [r[k] for r in rs if isinstance(r.get(k), (int, float))]
            if vals:
                say(f"  {k:32} mean {statistics.fmean(vals):.3f}  "
                    f"[{min(vals):.3f}–{max(vals):.3f}]")
    say(f"placement.py: per-run JSON in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
