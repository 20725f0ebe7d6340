"""The sheet's intervals and tests on hand-made correctness vectors: exact intervals that hold at
0/n and n/n, Newcombe's paired interval, the sign-flip test (McNemar with one seed) and its
type-I error on a simulated null with several seeds, Holm, the seed-level t-test."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from k400ray.report import stats


# --- accuracies ------------------------------------------------------------------------------


def test_accuracy_interval_is_clopper_pearson_and_holds_at_the_edges():
    # 48 of 48 right: the exact interval is (0.025^(1/48), 1) = 92.6-100, never 100-100.
    lo, hi = stats.accuracy_ci(np.ones(48, bool))
    assert hi == 100.0 and lo == pytest.approx(100 * 0.025 ** (1 / 48)) and lo == pytest.approx(92.60, abs=0.01)
    lo, hi = stats.accuracy_ci(np.zeros(48, bool))
    assert lo == 0.0 and hi == pytest.approx(100 * (1 - 0.025 ** (1 / 48)))
    for k in (1, 20, 47):  # the same as scipy's exact binomial interval wherever that applies
        exact = scipy_stats.binomtest(k, 48).proportion_ci(0.95, method="exact")
        assert stats.accuracy_ci(np.arange(48) < k) == pytest.approx((100 * exact.low, 100 * exact.high))
    assert all(math.isnan(x) for x in stats.accuracy_ci(np.zeros(0, bool)))


def test_accuracy_interval_over_seeds_counts_each_video_once():
    both = np.stack([np.ones(100, bool), np.zeros(100, bool)], axis=1)  # (videos, seeds): 50% each
    lo, hi = stats.accuracy_ci(both)
    one_seed = stats.accuracy_ci(np.arange(100) < 50)
    assert lo < 50 < hi and (lo, hi) == pytest.approx(one_seed)  # as wide as one seed of 100 videos
    assert stats.accuracy_ci(np.ones((30, 3), bool))[1] == 100.0


# --- paired differences ----------------------------------------------------------------------


def test_newcombe_interval_on_a_published_example():
    # Fagerland, Lydersen & Laake (2014), airway hyper-responsiveness: both 1, only a 1, only b 7,
    # neither 12 (n = 21); Newcombe's square-and-add (method 10): -0.5017 to -0.0361.
    a = np.array([1] * 2 + [0] * 19, bool)
    b = np.array([1] + [0] + [1] * 7 + [0] * 12, bool)
    assert stats.paired_table(a, b) == (1, 1, 7, 12)
    assert stats.paired_difference_ci(a, b) == pytest.approx((-50.17, -3.61), abs=0.01)


def test_paired_interval_is_never_empty_at_the_edges_and_covers_the_null():
    lo, hi = stats.paired_difference_ci(np.ones(48, bool), np.ones(48, bool))
    assert lo < -5 and hi > 5 and lo == pytest.approx(-hi)  # all right on both sides: about ±7.4 points
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(500):  # equal accuracies, correlated through each video's difficulty
        easy = rng.random(48)
        a, b = rng.random(48) < 0.3 + 0.6 * easy, rng.random(48) < 0.3 + 0.6 * easy
        lo, hi = stats.paired_difference_ci(a, b)
        covered += lo <= 0 <= hi
    assert covered / 500 >= 0.93
    with pytest.raises(ValueError):
        stats.paired_difference_ci(np.ones(3, bool), np.ones(4, bool))


# --- the video-level test --------------------------------------------------------------------


def test_sign_flip_with_one_seed_is_mcnemars_exact_test():
    a = np.array([True] * 3 + [False] * 2 + [True] * 20)
    b = np.array([False] * 3 + [True] * 2 + [True] * 20)
    p, only_a, only_b = stats.sign_flip_test(a, b)
    assert (only_a, only_b) == (3, 2)
    assert p == pytest.approx(min(1.0, 2 * sum(math.comb(5, i) for i in range(3)) / 2 ** 5))
    p, _, _ = stats.sign_flip_test(np.ones(300, bool), np.arange(300) < 150)
    assert p == pytest.approx(2 * 0.5 ** 150)
    assert stats.sign_flip_test(a, a.copy()) == (1.0, 0, 0)


def test_sign_flip_with_seeds_is_exact():
    """Against all 2^12 sign flips of the per-video differences."""
    rng = np.random.default_rng(0)
    a, b = rng.random((12, 3)) < 0.6, rng.random((12, 3)) < 0.45
    diff = a.sum(axis=1).astype(int) - b.sum(axis=1)
    flips = [abs(np.dot(signs, diff)) >= abs(diff.sum()) for signs in itertools.product((-1, 1), repeat=12)]
    assert stats.sign_flip_test(a, b)[0] == pytest.approx(np.mean(flips))
    assert stats.sign_flip_test(a, b)[1:] == (int((diff > 0).sum()), int((diff < 0).sum()))


def test_sign_flip_normal_approximation_beyond_the_budget(monkeypatch):
    rng = np.random.default_rng(1)
    a, b = rng.random((3000, 4)) < 0.62, rng.random((3000, 4)) < 0.6
    exact = stats.sign_flip_test(a, b)[0]
    monkeypatch.setattr(stats, "EXACT_BUDGET", 0)
    assert stats.sign_flip_test(a, b)[0] == pytest.approx(exact, rel=0.05)


def test_type_one_error_on_a_null_with_five_seeds():
    """5 seeds x 400 videos; each video has its own accuracy under each model (a model x video
    interaction that every seed shares), both models equal on average: the null the sheet tests.
    Pooling the 2000 video x seed pairs into McNemar's test rejects far too often; the sign-flip
    test on per-video differences holds its level."""
    rng = np.random.default_rng(7)
    runs, sign_flip, pooled = 1000, 0, 0
    for _ in range(runs):
        easy, interaction = rng.uniform(0.2, 0.9, 400), rng.normal(0, 0.4, 400)
        pa, pb = np.clip(easy + interaction / 2, 0, 1), np.clip(easy - interaction / 2, 0, 1)
        a, b = rng.random((400, 5)) < pa[:, None], rng.random((400, 5)) < pb[:, None]
        sign_flip += stats.sign_flip_test(a, b)[0] < stats.ALPHA
        only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
        pooled += scipy_stats.binomtest(only_a, only_a + only_b).pvalue < stats.ALPHA
    assert sign_flip / runs <= 0.07
    assert pooled / runs > 0.1  # what the sheet did before


# --- seeds, Holm ------------------------------------------------------------------------------


def test_mean_std_over_seeds():
    assert stats.mean_std([60.0, 70.0]) == pytest.approx((65.0, math.sqrt(50.0)))
    mean, std = stats.mean_std([60.0])
    assert mean == 60.0 and math.isnan(std)


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


def test_paired_t_test_over_seeds():
    # df = 1: t is Cauchy, p = 1 - (2/pi) atan|t|. Deltas [1, 3]: mean 2, sd sqrt(2), t = 2.
    assert stats.paired_t_test([1.0, 3.0]) == pytest.approx(1 - 2 / math.pi * math.atan(2.0))
    d = np.random.default_rng(0).normal(1, 2, size=6)
    assert stats.paired_t_test(d) == pytest.approx(scipy_stats.ttest_1samp(d, 0).pvalue)
    assert math.isnan(stats.paired_t_test([4.0])) and math.isnan(stats.paired_t_test([]))
    assert stats.paired_t_test([0.0, 0.0]) == 1.0 and stats.paired_t_test([2.0, 2.0]) == 0.0
