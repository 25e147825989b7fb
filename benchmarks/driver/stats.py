"""Medians, paired ratios and their confidence intervals.

Every repetition is a *round*: each peer runs once, one after another, in a rotated order. A peer
is compared with the baseline through the ratios of the two runs of each round (paired: a slow
drift of the machine hits both runs of a round alike), and the result is the median of those
per-round ratios with a distribution-free confidence interval for that median: the order
statistics [r(k), r(n+1-k)] for the largest k whose coverage 1 - 2 P(Bin(n, 1/2) <= k-1) is at
least 95 %. It assumes only that rounds are independent; no normality, no symmetry (the runs on
this machine kind were bimodal before the driver controlled placement). For n = 7 that is
[min, max] at 98.4 %; n = 9 gives [r(2), r(8)] at 96.1 %; below n = 6 no interval reaches 95 % and
[min, max] is given with its real coverage. A ratio whose interval contains 1.0 is "no
difference": neither a win nor a loss.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from .model import Run


def values(runs: list[Run], key: str, peer: str, metric: str) -> list[float]:
    return [float(r.data[metric]) for r in runs
            if r.config.key == key and r.peer == peer and r.ok
            and isinstance(r.data.get(metric), (int, float))
            and not isinstance(r.data.get(metric), bool)]


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def per_round(runs: list[Run], key: str, peer: str, metric: str) -> dict[int, float]:
    out = {}
    for r in runs:
        if r.config.key == key and r.peer == peer and r.ok:
            v = r.data.get(metric)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[r.rep] = float(v)
    return out


def paired_ratios(runs: list[Run], key: str, peer: str, base: str, metric: str,
                  better: str) -> list[float]:
    """Per round, peer / base (higher is better) or base / peer (lower is better): > 1 is better."""
    mine = per_round(runs, key, peer, metric)
    theirs = per_round(runs, key, base, metric)
    out = []
    for rep in sorted(mine.keys() & theirs.keys()):
        p, b = mine[rep], theirs[rep]
        num, den = (p, b) if better == "higher" else (b, p)
        if den > 0:
            out.append(num / den)
    return out


def median_ci(xs: list[float], level: float = 0.95) -> tuple[float, float, float] | None:
    """Distribution-free CI of the median: (low, high, coverage); None below two values."""
    n = len(xs)
    if n < 2:
        return None
    s = sorted(xs)

    def tail(j: int) -> float:  # P(Bin(n, 1/2) <= j)
        return sum(math.comb(n, i) for i in range(j + 1)) / 2 ** n

    k = 1
    for kk in range(1, n // 2 + 1):
        if 1 - 2 * tail(kk - 1) >= level:
            k = kk
    return s[k - 1], s[n - k], 1 - 2 * tail(k - 1)


@dataclass
class Ratio:
    median: float
    n: int
    ci: tuple[float, float, float] | None  # low, high, coverage

    @property
    def no_difference(self) -> bool:
        """True when the interval contains 1.0, or there is no interval (n < 2)."""
        return self.ci is None or self.ci[0] <= 1.0 <= self.ci[1]

    @property
    def verdict(self) -> str:
        if self.ci is None:
            return "no interval"
        if self.no_difference:
            return "no difference"
        return "better" if self.ci[0] > 1.0 else "worse"

    def against(self, target: float) -> str:
        """PASS / MISS against "ratio >= target"; NO DIFF when a 1.0 target lies inside the
        interval (at the limit: neither a win nor a loss); OPEN when any other target does."""
        if self.ci is None:
            return "PASS" if self.median >= target else "MISS"
        lo, hi, _ = self.ci
        if target == 1.0 and lo <= 1.0 <= hi:
            return "NO DIFF"
        if lo >= target:
            return "PASS"
        return "MISS" if hi < target else "OPEN"

    def text(self) -> str:
        """e.g. '0.94 [0.91–0.97]', '1.02 [0.97–1.06] no difference', '1.10 (n=1)'."""
        if self.ci is None:
            return f"{self.median:.2f} (n={self.n})"
        lo, hi, cov = self.ci
        s = f"{self.median:.2f} [{lo:.2f}–{hi:.2f}]"
        if cov < 0.95 - 1e-9:
            s += f" ({cov * 100:.0f} %)"
        return s + (" no difference" if self.no_difference else "")


def ratio(runs: list[Run], key: str, peer: str, base: str, metric: str,
          better: str) -> Ratio | None:
    xs = paired_ratios(runs, key, peer, base, metric, better)
    if not xs:
        return None
    return Ratio(statistics.median(xs), len(xs), median_ci(xs))


def self_test() -> None:
    """Known values; run by --smoke so that CI notices a broken interval."""
    lo, hi, cov = median_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])  # type: ignore[misc]
    assert (lo, hi) == (1.0, 7.0) and abs(cov - 126 / 128) < 1e-12, (lo, hi, cov)
    lo, hi, cov = median_ci([float(x) for x in range(1, 10)])  # type: ignore[misc]
    assert (lo, hi) == (2.0, 8.0) and abs(cov - (1 - 2 * 10 / 512)) < 1e-12, (lo, hi, cov)
    lo, hi, cov = median_ci([1.0, 2.0, 3.0, 4.0, 5.0])  # type: ignore[misc]
    assert (lo, hi) == (1.0, 5.0) and abs(cov - 30 / 32) < 1e-12, (lo, hi, cov)
    assert median_ci([1.0]) is None
    r = Ratio(1.03, 7, (0.97, 1.08, 0.984))
    assert r.no_difference and r.verdict == "no difference" and r.against(1.0) == "NO DIFF"
    r = Ratio(0.93, 7, (0.90, 0.96, 0.984))
    assert r.verdict == "worse" and r.against(1.0) == "MISS" and r.against(0.95) == "OPEN"
    r = Ratio(1.12, 7, (1.05, 1.20, 0.984))
    assert r.verdict == "better" and r.against(1.0) == "PASS" and r.against(1.15) == "OPEN"
