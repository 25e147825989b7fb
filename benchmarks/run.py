#!/usr/bin/env python3
"""Run every benchmark workload against the echo peers, interleaved, and write the results.

    python3 benchmarks/run.py --build build/bench [--quick | --smoke] [--reps R] [--out DIR]
                              [--only PEER,...] [--workloads W1,W2,...]

Each run gets a fresh server and load generator (orderly_load), pinned and as SCHED_FIFO. For
every workload configuration and every round (repetition) the peers run in a fresh random order,
so slow drift of the machine spreads over all peers instead of favouring one; each peer is
compared with raw_epoll (and raw_uring) through the ratios of the runs of the same round, with a
confidence interval. The TLS group (W1-TLS ... W4-TLS) runs the same way against the TLS peers
only, with raw_tls as the reference. docs/benchmarks.md explains the workloads, the method
and how to read the output. The pieces live in benchmarks/driver/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from driver import configs as cfgs  # noqa: E402
from driver import stats  # noqa: E402
from driver.model import BASELINE, ROOT, Run, say, warn  # noqa: E402
from driver.peers import (BROKEN, PEER_NAMES, TLS_PEERS, Placement,  # noqa: E402
                          io_uring_unavailable, machine_info, peer_commands, peer_versions,
                          run_once)
from driver.tlscert import make_cert  # noqa: E402
from driver.plot import plot_svg  # noqa: E402
from driver.report import (fmt_num, generated_markdown, load_summary,  # noqa: E402
                           summary_tables, target_lines, update_docs, write_csv,
                           write_ratios_csv)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True, type=Path, help="build directory (build/bench)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="shorter runs, fewer configurations, "
                      "1 round (<= 3 min); for checking that everything works, not for comparing")
    mode.add_argument("--smoke", action="store_true", help="every peer answers W1 for 1 s, once; "
                      "exit non-zero if any fails (for CI)")
    ap.add_argument("--reps", type=int, help="rounds for every configuration (default: 9 for "
                    "W1 and W2, 2 for W5, 3 for the rest; 1 with --quick/--smoke)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench-results",
                    help="where results go (default build/bench-results/)")
    ap.add_argument("--only", help="comma-separated peers, e.g. orderly,raw_epoll")
    ap.add_argument("--workloads", help="comma-separated workloads, e.g. W1,W2 or W2-TLS; "
                    "TLS: the whole TLS group, PLAIN: everything else")
    ap.add_argument("--peer", action="append", default=[], metavar="NAME=COMMAND",
                    help="add or replace a peer (the command must print 'listening on "
                    "HOST:PORT'), e.g. --peer 'cli=build/bench/tools/orderly/orderly serve "
                    "echo 127.0.0.1:0'")
    ap.add_argument("--client", choices=["uring", "epoll"], default="uring",
                    help="orderly_load's client for W1 and W2 (default uring: the cheaper one)")
    ap.add_argument("--pair-cpus", type=int, choices=[1, 2], default=1,
                    help="W1 and W2 with server and load generator on one CPU (default: the "
                    "server's cost shows in full) or each on its own, like W3-W6")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--no-pin", action="store_true", help="do not use taskset")
    ap.add_argument("--sched", choices=["none", "nice", "fifo"], default="fifo",
                    help="scheduling of both processes (default fifo: SCHED_FIFO priority 1, so "
                    "that other work on the machine waits instead of sharing their CPUs; falls "
                    "back to none where that is not permitted); nice: nice -10")
    ap.add_argument("--seed", default="orderly",
                    help="seed of the peers' order in every round (recorded in the results)")
    ap.add_argument("--docs", choices=["auto", "yes", "no"], default="auto",
                    help="write docs/ (auto: only for a full run of every peer and workload)")
    return ap.parse_args()


def main() -> int:
    args = parse_args()
    build = args.build if args.build.is_absolute() else ROOT / args.build
    if not build.is_dir() and (Path.cwd() / args.build).is_dir():
        build = Path.cwd() / args.build
    load = build / "benchmarks" / "load" / "orderly_load"
    if not os.access(load, os.X_OK):
        print(f"run.py: {load} is missing: build the bench preset first (./dev bench does)",
              file=sys.stderr)
        return 2
    mode_name = "smoke" if args.smoke else "quick" if args.quick else "full"
    if args.reps is not None and args.reps < 1:
        print("run.py: --reps must be at least 1", file=sys.stderr)
        return 2
    if mode_name == "smoke":
        stats.self_test()  # the interval arithmetic every comparison rests on

    overrides = {}
    for spec in args.peer:
        name, _, cmd = spec.partition("=")
        if not name or not cmd:
            print(f"run.py: --peer wants NAME=COMMAND, got {spec!r}", file=sys.stderr)
            return 2
        overrides[name] = cmd
    out_dir = args.out if args.out.is_absolute() else Path.cwd() / args.out
    wanted = [p.strip() for p in args.only.split(",") if p.strip()] if args.only else []
    try:
        tls_files = make_cert(out_dir / "tls")
    except RuntimeError as e:
        warn(f"TLS peers left out: {e}")
        tls_files = None
    cmds = peer_commands(build, overrides, tls_files, wanted)
    no_uring = io_uring_unavailable()
    if no_uring:
        # A container's seccomp profile or kernel.io_uring_disabled: measure what can be.
        warn(f"io_uring is not available here ({no_uring}): W1/W2 use the epoll client and "
             "the io_uring peers are left out")
        args.client = "epoll"
        for p in ("raw_uring", "orderly_uring", "orderly_tls_uring"):
            cmds.pop(p, None)
    if args.only:
        for p in wanted:
            if p not in cmds:
                warn(f"--only {p}: no such peer available")
        cmds = {p: c for p, c in cmds.items() if p in wanted}
    peers = [p for p in PEER_NAMES if p in cmds] + [p for p in cmds if p not in PEER_NAMES]
    if not peers:
        print("run.py: no peer available", file=sys.stderr)
        return 1
    if BASELINE not in peers and mode_name != "smoke":
        warn(f"{BASELINE} is not running: no ratios")

    configs = cfgs.make_configs(mode_name, args.client, args.reps, args.pair_cpus == 1)
    if args.workloads:
        wanted_w = {w.strip().upper() for w in args.workloads.split(",")}
        configs = [c for c in configs if c.workload in wanted_w
                   or ("TLS" in wanted_w and c.tls) or ("PLAIN" in wanted_w and not c.tls)]
    if not configs:
        print("run.py: no workload selected", file=sys.stderr)
        return 2

    place = Placement(args.server_cpu, args.client_cpu, args.sched)
    if not place.permitted():
        warn(f"--sched {args.sched} is not permitted here (needs root or CAP_SYS_NICE): default "
             "scheduling, so other load on the machine shares the benchmark's CPUs")
        place.sched = "none"
    ncpu = os.cpu_count() or 1
    if args.no_pin or not shutil.which("taskset") or ncpu < 2:
        if not args.no_pin:
            warn("not pinning (taskset missing or fewer than 2 CPUs): client and server share "
                 "the CPUs")
        place.server_cpu = place.client_cpu = None

    def peers_of(cfg: cfgs.Config) -> list[str]:
        """The TLS group runs the TLS peers, every other configuration the plain ones."""
        return [p for p in peers if (p in TLS_PEERS) == cfg.tls]

    configs = [c for c in configs if peers_of(c)]
    if not configs:
        print("run.py: no peer for the workloads selected", file=sys.stderr)
        return 2
    projected = sum((c.seconds + cfgs.OVERHEAD_S) * c.reps * len(peers_of(c)) for c in configs)
    groups = []
    for tls in (False, True):
        g = [p for p in peers if (p in TLS_PEERS) == tls]
        n_cfg = sum(1 for c in configs if c.tls == tls)
        if g and n_cfg:
            groups.append(f"{n_cfg} {'TLS ' if tls else ''}configurations x {len(g)} peers "
                          f"({', '.join(g)})")
    say(f"run.py: {mode_name} run: {'; '.join(groups)}; rounds " +
        ", ".join(sorted({f"{c.workload} {c.reps}" for c in configs})) +
        f"; {place.describe(any(c.one_cpu for c in configs))}; projected {projected / 60:.1f} min")
    load_avg = os.getloadavg()[0]
    if load_avg > 0.5 and mode_name == "full":
        warn(f"load average {load_avg:.2f} at the start: other work on the machine"
             + (" keeps what SCHED_FIFO leaves it (5 % of each CPU)" if place.sched == "fifo"
                else " shares the benchmark's CPUs")
             + "; the 'other load' column and the summary say how much reached the runs")
    machine = machine_info(build)
    machine["order of the peers in a round"] = f"shuffled, seed {args.seed!r}"
    versions = peer_versions()
    runs: list[Run] = []
    t_start = time.monotonic()
    for ci, cfg in enumerate(configs):
        for rep in range(1, cfg.reps + 1):
            # A fresh random order every round (docs/benchmarks.md, "How a run works").
            order = peers_of(cfg)
            random.Random(f"{args.seed}/{cfg.key}/{rep}").shuffle(order)
            for peer in order:
                r = run_once(cfg, peer, rep, cmds[peer], load, place)
                runs.append(r)
                shown = ", ".join(f"{m.label} {fmt_num(r.data.get(m.name))}"
                                  for m in cfg.metrics
                                  if isinstance(r.data.get(m.name), (int, float)))
                status = "ok  " if r.ok else "FAIL"
                say(f"  {status} {cfg.key:<22} rep {rep} {peer:<13} {shown}"
                    + (f"  -- {r.error}" if r.error else ""))
    elapsed = time.monotonic() - t_start
    peers = [p for p in peers if any(r.peer == p for r in runs)]  # what the report is about

    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"orderly benchmarks ({mode_name} run, {machine['date']})"
    targets = target_lines(runs, configs) if mode_name != "smoke" else []
    write_csv(runs, out_dir / "benchmarks.csv")
    write_ratios_csv(runs, configs, peers, out_dir / "ratios.csv")
    (out_dir / "runs.jsonl").write_text(
        "".join(json.dumps({"workload": r.config.workload, "config": r.config.label,
                            "peer": r.peer, "rep": r.rep, "ok": r.ok, "error": r.error,
                            "server_rc": r.server_rc, "wall_s": round(r.wall_s, 3),
                            "result": r.data}) + "\n" for r in runs))
    svg = plot_svg(runs, configs, peers, title)
    (out_dir / "benchmarks.svg").write_text(svg)
    where = place.describe(any(c.one_cpu for c in configs))
    gen = generated_markdown(runs, configs, peers, machine, versions, where, targets,
                             "benchmarks.svg")
    (out_dir / "summary.md").write_text(gen + "\n")

    complete = mode_name == "full" and not args.only and not args.workloads and \
        not args.peer and set(PEER_NAMES) - set(BROKEN) <= set(peers)
    if args.docs == "yes" or (args.docs == "auto" and complete):
        if mode_name != "full":
            warn("--docs yes ignored: only a full run writes docs/")
        else:
            docs = ROOT / "docs"
            write_csv(runs, docs / "benchmarks.csv")
            write_ratios_csv(runs, configs, peers, docs / "benchmark-ratios.csv")
            (docs / "img").mkdir(parents=True, exist_ok=True)
            (docs / "img" / "benchmarks.svg").write_text(svg)
            update_docs(docs / "benchmarks.md",
                        generated_markdown(runs, configs, peers, machine, versions, where,
                                           targets, "img/benchmarks.svg"))
            say("run.py: wrote docs/benchmarks.csv, docs/benchmark-ratios.csv, "
                "docs/img/benchmarks.svg, docs/benchmarks.md")
    elif mode_name == "full":
        say("run.py: docs/ left alone (not a complete run; --docs yes forces it)")

    say("")
    say(summary_tables(runs, configs, peers))
    for line in targets:
        say(line)
    text, busy = load_summary(runs)
    say(f"run.py: {text}")
    if busy and mode_name != "smoke":
        warn("the machine was busy during W1/W2: treat these numbers as a check, not a result")
    failures = [r for r in runs if not r.ok]
    say(f"run.py: {len(runs)} runs, {len(failures)} failed; took {elapsed / 60:.1f} min "
        f"(projected {projected / 60:.1f}); results in {out_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
