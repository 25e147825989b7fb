#!/usr/bin/env python3
"""Pairs orderly_micro results: every `<case>:<variant>` against `<case>:raw`.

Reads Google Benchmark JSON (a file, or stdin), e.g.
    orderly_micro --benchmark_format=json | python3 benchmarks/micro/pair.py
With --benchmark_repetitions the medians are used (single runs otherwise).
"""

import json
import sys


# Times in ns whatever --benchmark_time_unit was.
TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def load(stream):
    runs = {}
    aggregated = set()
    for b in json.load(stream)["benchmarks"]:
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") != "median":
                continue
            aggregated.add(name)
        elif name in aggregated:
            continue
        runs[name] = b  # a median, once seen, replaces the single repetitions
    return runs


def ns(b, key):
    return b[key] * TO_NS[b.get("time_unit", "ns")]


def main():
    stream = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
    runs = load(stream)
    cases = {}
    for name, b in runs.items():
        case, _, variant = name.rpartition(":")
        if case:
            cases.setdefault(case, {})[variant] = b
    print(f"{'case':28} {'variant':20} {'cpu ns':>10} {'real ns':>10} {'cpu/raw':>8} {'real/raw':>8}")
    # Sorted, raw first: with --benchmark_enable_random_interleaving the input order is random.
    for case in sorted(cases):
        variants = cases[case]
        raw = variants.get("raw")
        for variant in sorted(variants, key=lambda v: (v != "raw", v)):
            b = variants[variant]
            cpu, real = ns(b, "cpu_time"), ns(b, "real_time")
            if raw and variant != "raw":
                ratios = f"{cpu / ns(raw, 'cpu_time'):8.2f} {real / ns(raw, 'real_time'):8.2f}"
            else:
                ratios = f"{'':8} {'':8}"
            print(f"{case:28} {variant:20} {cpu:10.1f} {real:10.1f} {ratios}")


if __name__ == "__main__":
    main()
