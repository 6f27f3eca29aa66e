"""The drift measures, in pure Python (the scheduled monitor's Lambda package has no numpy or scipy).

    psi(baseline_counts, live_counts)          population stability index over the baseline's bins
    ks_binned(baseline_counts, live_counts)    two-sample Kolmogorov-Smirnov at the bin edges: (D, p-value)
    chi_square(baseline_counts, live_counts)   chi-square test of homogeneity of the two bin counts: (stat, dof, p)

All take counts over the same bins in the same order (the baseline's). Why these and with which thresholds:
docs/decisions/0001-drift-measures.md. Tests check the p-values against scipy's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["PSEUDO_COUNT", "chi2_sf", "chi_square", "kolmogorov_sf", "ks_binned", "psi"]

# Added to every bin on both sides before shares are taken, so an empty bin has a finite logarithm and a
# small live sample's empty bins do not dominate the index (a Jeffreys-style prior on the bin shares).
PSEUDO_COUNT = 0.5


def psi(baseline: Sequence[float], live: Sequence[float], pseudo_count: float = PSEUDO_COUNT) -> float:
    """sum((live share - baseline share) * ln(live share / baseline share)) over the bins; 0 for identical shares.

    Raises:
        ValueError: the two have different numbers of bins, or no bins.
    """
    if len(baseline) != len(live) or not baseline:
        raise ValueError(f"PSI needs the same bins on both sides, got {len(baseline)} and {len(live)}")
    base_total = sum(baseline) + pseudo_count * len(baseline)
    live_total = sum(live) + pseudo_count * len(live)
    index = 0.0
    for b, a in zip(baseline, live, strict=True):
        expected, actual = (b + pseudo_count) / base_total, (a + pseudo_count) / live_total
        index += (actual - expected) * math.log(actual / expected)
    return index


def kolmogorov_sf(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution: 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 lam^2)."""
    if lam <= 0.0:
        return 1.0
    if lam < 0.2:  # the alternating series converges slowly here, and the answer is 1 to 1e-12
        return 1.0
    total, sign = 0.0, 1.0
    for j in range(1, 101):
        term = math.exp(-2.0 * j * j * lam * lam)
        total += sign * term
        if term < 1e-16:
            break
        sign = -sign
    return min(1.0, max(0.0, 2.0 * total))


def ks_binned(baseline: Sequence[float], live: Sequence[float]) -> tuple[float, float]:
    """(D, p): the largest gap between the two empirical distribution functions at the bin edges, and its
    asymptotic p-value (Kolmogorov's distribution with Stephens' small-sample correction, as Numerical
    Recipes gives it). Counting at the edges only can miss a gap inside a bin, so D is a lower bound and
    the test is conservative.

    Raises:
        ValueError: different numbers of bins, or an empty side.
    """
    n1, n2 = sum(baseline), sum(live)
    if len(baseline) != len(live) or n1 <= 0 or n2 <= 0:
        raise ValueError("the KS test needs two non-empty samples over the same bins")
    gap = c1 = c2 = 0.0
    for b, a in zip(baseline, live, strict=True):
        c1 += b
        c2 += a
        gap = max(gap, abs(c1 / n1 - c2 / n2))
    root = math.sqrt(n1 * n2 / (n1 + n2))
    return gap, kolmogorov_sf((root + 0.12 + 0.11 / root) * gap)


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for a chi-square variable with dof degrees of freedom (the regularized upper gamma Q)."""
    if x <= 0.0:
        return 1.0
    a, z = dof / 2.0, x / 2.0
    log_front = -z + a * math.log(z) - math.lgamma(a)
    if z < a + 1.0:  # the series for the lower function P converges here
        term = total = 1.0 / a
        n = a
        for _ in range(1000):
            n += 1.0
            term *= z / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    # Lentz's continued fraction for Q (Numerical Recipes' gcf)
    tiny = 1e-300
    b = z + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


def chi_square(baseline: Sequence[float], live: Sequence[float]) -> tuple[float, int, float]:
    """(statistic, degrees of freedom, p): Pearson's chi-square test that the two counts come from one
    distribution (a 2 x k contingency table; bins empty on both sides are left out).

    Raises:
        ValueError: different numbers of bins, or an empty side.
    """
    n1, n2 = sum(baseline), sum(live)
    if len(baseline) != len(live) or n1 <= 0 or n2 <= 0:
        raise ValueError("the chi-square test needs two non-empty samples over the same bins")
    total = n1 + n2
    statistic, used = 0.0, 0
    for b, a in zip(baseline, live, strict=True):
        column = b + a
        if column == 0:
            continue
        used += 1
        for observed, row in ((b, n1), (a, n2)):
            expected = row * column / total
            statistic += (observed - expected) ** 2 / expected
    dof = max(used - 1, 1)
    return statistic, dof, chi2_sf(statistic, dof)
