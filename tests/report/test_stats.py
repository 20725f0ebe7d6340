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
