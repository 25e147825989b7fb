"""The plot: one group of bars per workload configuration, one bar per peer."""

from __future__ import annotations

from .model import BASELINE, TLS_BASELINE, Config, Run
from .stats import ratio

PALETTE = {"raw_epoll": "#4d4d4d", "raw_uring": "#a6a6a6", "orderly": "#d95f02",
           "orderly_uring": "#fdae61", "asio": "#1b9e77", "libuv": "#7570b3",
           "libevent": "#e7298a", "asyncio": "#66a61e", "raw_tls": "#4d4d4d",
           "orderly_tls": "#d95f02", "orderly_tls_uring": "#fdae61", "asio_tls": "#1b9e77"}


def esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plot_svg(runs: list[Run], configs: list[Config], peers: list[str], title: str) -> str:
    """Grouped bars: one group per workload configuration, one bar per peer, height = the median
    of the per-round ratios to raw_epoll of the configuration's headline metric (> 1 is better),
    a whisker for its confidence interval, a line at 1.0."""
    groups = []
    for cfg in configs:
        metric = next(m for m in cfg.metrics if m.name == cfg.plot_metric)
        bars = []
        for p in peers:
            base = TLS_BASELINE if cfg.tls else BASELINE
            rt = ratio(runs, cfg.key, p, base, metric.name, metric.better)
            bars.append((p, rt.median if rt else None, rt.ci if rt else None))
        if any(r.config.key == cfg.key for r in runs):
            groups.append((cfg, metric, bars))
    cap = 2.5
    top = min(cap, max([1.25] + [v for _, _, b in groups for _, v, _ in b if v is not None]))
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
             f'<text x="{left}" y="36" fill="#555">median of the per-round ratios to raw_epoll, '
             f'&gt; 1 is better (throughput: peer/raw; times and bytes: raw/peer); whisker: '
             f'its confidence interval</text>',
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
        for bi, (peer, v, ci) in enumerate(bars):
            x = x0 + bi * bar_w
            color = PALETTE.get(peer, "#999999")
            if v is None:
                parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y(0) - 3:.1f}" font-size="8" '
                             f'text-anchor="middle" fill="#999">–</text>')
                continue
            parts.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w - 2}" '
                         f'height="{y(0) - y(v):.1f}" fill="{color}">'
                         f'<title>{esc(peer)} {esc(cfg.key)}: {v:.2f}</title></rect>')
            if ci is not None:
                cx = x + (bar_w - 2) / 2
                parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(ci[0]):.1f}" '
                             f'y2="{y(ci[1]):.1f}" stroke="black" stroke-width="1"/>')
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


