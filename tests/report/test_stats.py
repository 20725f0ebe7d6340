"""Bootstrap CIs and paired tests on synthetic correctness vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from k400ray.report import stats


def test_bootstrap_ci_contains_the_estimate_and_narrows_with_more_videos():
    rng = np.random.default_rng(1)
    small = rng.random(200) < 0.7
    large = rng.random(20_000) < 0.7
    lo, hi = stats.bootstrap_ci(small)
    assert lo <= 100 * small.mean() <= hi and 5 < hi - lo < 20
    lo2, hi2 = stats.bootstrap_ci(large)
    assert lo2 <= 100 * large.mean() <= hi2 and hi2 - lo2 < (hi - lo) / 5
    assert stats.bootstrap_ci(small) == (lo, hi)  # seeded: the same report every time
    assert stats.bootstrap_ci(np.ones(50, bool)) == (100.0, 100.0)


def test_bootstrap_over_seeds_uses_each_videos_mean():
    both = np.stack([np.ones(100, bool), np.zeros(100, bool)], axis=1)  # (videos, seeds)
    assert stats.bootstrap_ci(both) == (50.0, 50.0)


def test_mcnemar_identical_predictions_give_p_1():
    a = np.random.default_rng(0).random(500) < 0.6
    p, b, c = stats.mcnemar_exact(a, a.copy())
    assert (p, b, c) == (1.0, 0, 0)
    assert stats.paired_bootstrap_ci(a, a) == (0.0, 0.0)


def test_mcnemar_very_different_predictions_give_a_small_p():
    a = np.ones(300, bool)
    b = np.zeros(300, bool)
    b[:150] = True
    p, only_a, only_b = stats.mcnemar_exact(a, b)
    assert (only_a, only_b) == (150, 0) and p < 1e-40
    lo, hi = stats.paired_bootstrap_ci(a, b)
    assert 40 < lo < 50 < hi < 60


def test_mcnemar_exact_matches_the_binomial_by_hand():
    a = np.array([True] * 10 + [False] * 5)
    b = np.array([False] * 10 + [False] * 5)
    p, _, _ = stats.mcnemar_exact(a, b)
    assert p == pytest.approx(2 * 0.5 ** 10)
    a = np.array([True] * 3 + [False] * 2 + [True] * 20)
    b = np.array([False] * 3 + [True] * 2 + [True] * 20)
    expected = 2 * sum(math.comb(5, i) for i in range(3)) / 2 ** 5  # min(b, c) = 2 of 5 discordant
    assert stats.mcnemar_exact(a, b)[0] == pytest.approx(min(1.0, expected))
    with pytest.raises(ValueError):
        stats.mcnemar_exact(np.ones(3, bool), np.ones(4, bool))


def test_mean_std_over_seeds():
    assert stats.mean_std([60.0, 70.0]) == pytest.approx((65.0, math.sqrt(50.0)))
    mean, std = stats.mean_std([60.0])
    assert mean == 60.0 and math.isnan(std)


# --- Holm ------------------------------------------------------------------------------------


def test_holm_on_a_hand_made_table():
    # m = 4 tests. Sorted raw: 0.005, 0.01, 0.03, 0.04; multiply the i-th smallest by m - i + 1:
    #   0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04.
    # Step-down keeps the running maximum (an adjusted p never falls below a smaller raw p's),
    # so 0.04 -> max(0.06, 0.04) = 0.06. Back in the input order [0.01, 0.04, 0.03, 0.005]:
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Only 0.005 stays below 0.05 after adjustment, though all four raw values are.


def test_holm_is_capped_at_1_monotone_and_leaves_nan_out():
    # m = 3 (the NaN is no test): 0.2 x 3 = 0.6, 0.5 x 2 = 1.0, 0.9 x 1 -> max(1.0, 0.9) = 1.0
    adjusted = stats.holm([0.5, np.nan, 0.2, 0.9])
    assert adjusted[[0, 2, 3]] == pytest.approx([1.0, 0.6, 1.0]) and np.isnan(adjusted[1])
    assert np.isnan(stats.holm([np.nan])).all() and stats.holm([]).shape == (0,)
    assert stats.holm([0.03]) == pytest.approx([0.03])  # one test: nothing to adjust
    raw = np.random.default_rng(3).random(50) ** 3
    adj = stats.holm(raw)
    order = np.argsort(raw)
    assert (np.diff(adj[order]) >= 0).all()  # same order as the raw p-values
    assert (adj >= raw).all() and (adj <= 1).all()
    assert (adj <= np.minimum(1, raw * len(raw)) + 1e-12).all()  # never above Bonferroni


# --- the test whose unit is the seed ---------------------------------------------------------


def test_paired_t_test_by_hand():
    # df = 1: t is Cauchy, p = 1 - (2/pi) atan|t|. Deltas [1, 3]: mean 2, sd sqrt(2), t = 2 / (sqrt(2)/sqrt(2)) = 2.
    assert stats.paired_t_test([1.0, 3.0]) == pytest.approx(1 - 2 / math.pi * math.atan(2.0))
    # df = 2: p = 1 - |t| / sqrt(2 + t^2). Deltas [1, 2, 3]: mean 2, sd 1, t = 2 sqrt(3), t^2 = 12.
    assert stats.paired_t_test([1.0, 2.0, 3.0]) == pytest.approx(1 - math.sqrt(12 / 14))
    assert math.isnan(stats.paired_t_test([4.0])) and math.isnan(stats.paired_t_test([]))
    assert stats.paired_t_test([0.0, 0.0]) == 1.0 and stats.paired_t_test([2.0, 2.0]) == 0.0
    assert stats.paired_t_test([-1.0, -2.0, -3.0]) == stats.paired_t_test([1.0, 2.0, 3.0])  # two-sided


def test_t_distribution_matches_scipy_where_installed():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 7, 30):
        for t in (0.0, 0.3, 1.0, 2.5, 8.0):
            assert stats._t_two_sided_p(t, df) == pytest.approx(2 * scipy_stats.t.sf(t, df), abs=1e-12)
    d = np.random.default_rng(0).normal(1, 2, size=6)
    assert stats.paired_t_test(d) == pytest.approx(scipy_stats.ttest_1samp(d, 0).pvalue)
