"""What a run writes: the CSVs, the tables, the target lines and the generated part of the page."""

from __future__ import annotations

import csv
from pathlib import Path

from .model import BASELINE, TLS_BASELINE, URING_BASELINE, Config, Run
from .stats import median, ratio, values

MARK_BEGIN = "<!-- results:begin -->"
MARK_END = "<!-- results:end -->"
BUSY_SHARE = 0.05  # other load above this (share of all CPUs) disturbs W1/W2


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


def baselines(cfg: Config, peers: list[str]) -> list[str]:
    """What the ratios of a configuration are against: raw_epoll, and raw_uring for W1/W2;
    raw_tls for the TLS group."""
    if cfg.tls:
        return [TLS_BASELINE] if TLS_BASELINE in peers else []
    out = [BASELINE] if BASELINE in peers else []
    if cfg.workload in ("W1", "W2") and URING_BASELINE in peers:
        out.append(URING_BASELINE)
    return out


def metric_bases(cfg: Config, peers: list[str], metric: str) -> list[str]:
    """The baselines a metric's ratio columns use (client+server CPU only against raw_epoll)."""
    bases = baselines(cfg, peers)
    return bases if metric != "client_server_cpu_us_per_msg" else bases[:1]


def write_ratios_csv(runs: list[Run], configs: list[Config], peers: list[str],
                     path: Path) -> None:
    """One row per configuration, metric, peer and baseline: the median of the per-round ratios
    (> 1 is better), its interval, and the verdict ("no difference" when it contains 1.0)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "config", "metric", "peer", "baseline", "rounds", "ratio",
                    "ci_low", "ci_high", "ci_coverage", "verdict"])
        for cfg in configs:
            for m in cfg.metrics:
                if m.better not in ("higher", "lower"):
                    continue
                for base in baselines(cfg, peers):
                    for p in peers:
                        rt = ratio(runs, cfg.key, p, base, m.name, m.better)
                        if p == base or rt is None:
                            continue
                        lo, hi, cov = rt.ci if rt.ci else ("", "", "")
                        w.writerow([cfg.workload, cfg.label, m.name, p, base, rt.n,
                                    f"{rt.median:.4f}", lo if lo == "" else f"{lo:.4f}",
                                                hi if hi == "" else f"{hi:.4f}",
                                    cov if cov == "" else f"{cov:.3f}", rt.verdict])


def summary_tables(runs: list[Run], configs: list[Config], peers: list[str]) -> str:
    out = ["Each cell: median over the rounds, [min–max] next to it. **× raw_epoll** (and, for W1 "
           "and W2, **× raw_uring**; for the TLS group **× raw_tls**) is the median of the per-round ratios to that peer, oriented "
           "so that **> 1 is better** (peer/raw for throughput, raw/peer for times, latencies, "
           "CPU and bytes), with its confidence interval in brackets; **no difference** when the "
           "interval contains 1.0 (docs/benchmarks.md, \"Reading the results\"). Counts of bad "
           "events (resets, lost bytes, hung) have no ratio: 0 is the goal. *other load* is the "
           "share of the time of the CPUs the run occupied that went to neither side.", ""]
    for cfg in configs:
        if not any(r.config.key == cfg.key for r in runs):
            continue
        out.append(f"### {cfg.workload} — {cfg.label}")
        out.append("")
        head = ["peer"]
        for m in cfg.metrics:
            head.append(m.label)
            if m.better in ("higher", "lower"):
                head += [f"× {b}" for b in metric_bases(cfg, peers, m.name)]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for peer in peers:
            have = [r for r in runs if r.config.key == cfg.key and r.peer == peer]
            if not have:
                continue
            row = [peer]
            failed = sum(1 for r in have if not r.ok)
            for m in cfg.metrics:
                xs = values(runs, cfg.key, peer, m.name)
                cell = fmt_num(median(xs))
                if len(xs) > 1:
                    cell += f" [{fmt_num(min(xs))}–{fmt_num(max(xs))}]"
                row.append(cell)
                if m.better not in ("higher", "lower"):
                    continue
                for b in metric_bases(cfg, peers, m.name):
                    if peer == b:
                        row.append("1")
                        continue
                    rt = ratio(runs, cfg.key, peer, b, m.name, m.better)
                    row.append(rt.text() if rt else "–")
            if failed:
                row[0] += f" ({failed} failed)"
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


def target_lines(runs: list[Run], configs: list[Config]) -> list[str]:
    """The targets of the issues, each as a verdict on a paired ratio (stats.Ratio.against)."""
    lines: list[str] = []

    def check(cfg: Config, peer: str, base: str, metric: str, better: str, need: float,
              what: str) -> None:
        name = f"{cfg.key} {peer} >= {need:.2f}x {base} ({what})"
        rt = ratio(runs, cfg.key, peer, base, metric, better)
        if rt is None:
            # A target without data is not met: a missing peer must not read as a pass.
            lines.append(f"MISS     {name}: missing data")
            return
        p = median(values(runs, cfg.key, peer, metric))
        b = median(values(runs, cfg.key, base, metric))
        lines.append(f"{rt.against(need):8} {name}: {rt.text()} "
                     f"({fmt_num(p)} vs {fmt_num(b)})")

    orderlies = ("orderly", "orderly_uring")
    for cfg in configs:
        one = cfg.label.endswith(" x 1")
        if cfg.workload == "W1":
            for p in orderlies:
                check(cfg, p, BASELINE, "p50_us", "lower", 1.00, "p50")
        if cfg.workload == "W2":
            # issue 11: orderly on io_uring at raw_uring's level with many connections, and both
            # backends at raw epoll's with one.
            if not one:
                for metric, better, what in (("msgs_per_s", "higher", "msgs/s"),
                                             ("server_cpu_us_per_msg", "lower",
                                              "server CPU/msg")):
                    check(cfg, "orderly_uring", URING_BASELINE, metric, better, 1.00, what)
            for p in orderlies:
                if p == "orderly" or one:
                    check(cfg, p, BASELINE, "msgs_per_s", "higher", 1.00, "msgs/s")
            # the event-layer issue's, kept for the epoll backend
            for other in ("asio", "libuv"):
                check(cfg, "orderly", other, "msgs_per_s", "higher", 1.15, "msgs/s")
        if cfg.tls and cfg.workload == "W2-TLS":
            # issue 15: orderly over TLS at the raw OpenSSL reference's level and 10 % ahead of
            # Asio's ssl::stream, in msgs/s and in server CPU per message.
            for metric, better, what in (("msgs_per_s", "higher", "msgs/s"),
                                         ("server_cpu_us_per_msg", "lower", "server CPU/msg")):
                check(cfg, "orderly_tls", TLS_BASELINE, metric, better, 1.00, what)
                check(cfg, "orderly_tls", "asio_tls", metric, better, 1.10, what)
        if cfg.workload in ("W3", "W4"):
            for p in orderlies:
                check(cfg, p, BASELINE, cfg.plot_metric, "higher", 0.95, cfg.metrics[0].label)
        if cfg.workload == "W5":
            for p in orderlies:
                o = median(values(runs, cfg.key, p, "bytes_per_connection"))
                name = f"{cfg.key} {p} <= 1024 B per connection"
                lines.append(f"MISS     {name}: missing data" if o is None else
                             f"{'PASS' if o <= 1024 else 'MISS':8} {name}: {fmt_num(o)} B")
        if cfg.workload == "W6":
            for p in orderlies:
                mine = [r for r in runs if r.config.key == cfg.key and r.peer == p]
                name = f"{cfg.key} {p} 0 lost, 0 resets, 0 hung"
                if not mine or not all(r.data for r in mine):
                    lines.append(f"MISS     {name}: missing data")
                    continue
                lost = sum(r.data.get("lost_bytes") or 0 for r in mine)
                resets = sum(r.data.get("ended_reset") or 0 for r in mine)
                hung = sum(r.data.get("hung") or 0 for r in mine)
                good = lost == 0 and resets == 0 and hung == 0 and all(r.ok for r in mine)
                lines.append(f"{'PASS' if good else 'MISS':8} {name}: over {len(mine)} runs: "
                             f"lost {lost} B, {resets} resets, {hung} hung")
    return lines


def load_summary(runs: list[Run]) -> tuple[str, bool]:
    """Other load during the W1/W2 runs, and whether it was enough to disturb them."""
    xs = sorted(float(r.data["foreign_cpu_share"]) for r in runs
                if r.config.workload in ("W1", "W2", "W1-TLS", "W2-TLS")
                and isinstance(r.data.get("foreign_cpu_share"), (int, float)))
    if not xs:
        return "other load: not measured", False
    med = median(xs) or 0.0
    busy = sum(1 for x in xs if x > BUSY_SHARE)
    text = (f"other load during W1/W2 (time of the CPUs a run occupied that went to neither "
            f"side): median {med * 100:.1f} %, max {xs[-1] * 100:.1f} %; {busy} of {len(xs)} "
            f"runs above {BUSY_SHARE * 100:.0f} %")
    return text, med > BUSY_SHARE


def generated_markdown(runs: list[Run], configs: list[Config], peers: list[str],
                       machine: dict[str, str], versions: dict[str, str], placement: str,
                       targets: list[str], svg_rel: str) -> str:
    out = [MARK_BEGIN, "<!-- generated by benchmarks/run.py: edits inside the markers are "
           "overwritten -->", "", "### Machine", ""]
    for k, v in machine.items():
        out.append(f"- {k}: {v}")
    reps = sorted({(c.workload, c.reps) for c in configs})
    out.append("- rounds per configuration: " + ", ".join(f"{w} {n}" for w, n in reps))
    out.append(f"- placement: {placement}")
    load, busy = load_summary(runs)
    out.append(f"- {load}" + (" — **the machine was busy: these numbers are not results**"
                              if busy else ""))
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
