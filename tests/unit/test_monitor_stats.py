"""greenlight/monitor/stats.py: PSI and the two-sample tests, in pure Python, against scipy as the oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from greenlight.monitor import stats


@pytest.mark.parametrize("x, dof", [(0.001, 1), (0.5, 1), (3.0, 2), (10.0, 9), (30.0, 9), (200.0, 9), (50.0, 3),
                                    (1000.0, 20), (8.0, 8), (9.0, 8), (0.2, 30), (45.0, 30)])
def test_chi2_survival_matches_scipy(x, dof):
    assert stats.chi2_sf(x, dof) == pytest.approx(scipy_stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("lam", [0.05, 0.2, 0.3, 0.5, 0.8, 1.0, 1.36, 1.63, 2.0, 3.0, 5.0])
def test_kolmogorov_survival_matches_scipy(lam):
    assert stats.kolmogorov_sf(lam) == pytest.approx(scipy_stats.kstwobign.sf(lam), rel=1e-9, abs=1e-12)


def test_chi_square_matches_scipys_contingency_test():
    base, live = [120, 80, 40, 0], [300, 260, 180, 12]
    statistic, dof, p = stats.chi_square(base, live)
    expected = scipy_stats.chi2_contingency(np.array([base, live]), correction=False)
    assert (statistic, dof) == (pytest.approx(expected.statistic, rel=1e-12), expected.dof)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_binned_ks_is_the_largest_gap_between_the_cumulative_shares():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 500), rng.normal(0.3, 1, 800)
    edges = np.quantile(a, np.linspace(0, 1, 11)[1:-1])
    count = lambda x: np.bincount(np.searchsorted(edges, x, side="left"), minlength=edges.size + 1).tolist()  # noqa: E731
    gap, p = stats.ks_binned(count(a), count(b))
    cdf_a, cdf_b = np.cumsum(count(a)) / a.size, np.cumsum(count(b)) / b.size
    assert gap == pytest.approx(np.abs(cdf_a - cdf_b).max())
    assert gap <= scipy_stats.ks_2samp(a, b).statistic  # edges only: a lower bound of the full statistic
    n = a.size * b.size / (a.size + b.size)
    assert p == pytest.approx(scipy_stats.kstwobign.sf((math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * gap))
    assert p < 0.001  # a 0.3 sigma shift in 500 and 800 rows is detected


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    assert stats.psi([10, 20, 30], [10, 20, 30]) == 0.0
    assert stats.psi([10, 20, 30], [100, 200, 300]) < 1e-3  # same shares; the pseudo-count weighs less on more rows
    small = stats.psi([100] * 10, [110, 90] * 5)
    large = stats.psi([100] * 10, [300, 0, 0, 0, 0, 0, 0, 0, 0, 700])
    assert 0.005 < small < 0.05 < 1 < large


def test_psi_matches_its_formula_with_the_pseudo_count():
    base, live = [50, 30, 20], [20, 30, 50]
    b = [(x + 0.5) / (sum(base) + 1.5) for x in base]
    a = [(x + 0.5) / (sum(live) + 1.5) for x in live]
    assert stats.psi(base, live) == pytest.approx(sum((y - x) * math.log(y / x) for x, y in zip(b, a, strict=True)))


def test_an_empty_live_bin_has_a_finite_index():
    assert math.isfinite(stats.psi([10, 10, 10], [0, 0, 30]))


@pytest.mark.parametrize("call", [lambda: stats.psi([1, 2], [1]), lambda: stats.ks_binned([0, 0], [1, 1]),
                                  lambda: stats.chi_square([1, 2], [0, 0]), lambda: stats.psi([], [])])
def test_mismatched_or_empty_counts_are_refused(call):
    with pytest.raises(ValueError):
        call()
