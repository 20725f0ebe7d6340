"""Uncertainty of accuracies measured on one fixed val set, and the paired tests of the sheet.

The sheet's repeated rows differ by 0.1-0.15 points, as much as several augmentation effects.
Two sources of noise are reported separately:

- **val-set sampling** (which videos happen to be in val): an exact (Clopper-Pearson) 95%
  interval of each accuracy, :func:`accuracy_ci`;
- **run-to-run** (seeds): mean ± sample std over seeds, :func:`mean_std`.

Augmentation vs default, and a model vs the baseline model under one config, are *paired*
comparisons on the same videos and the same seeds: the delta of top-1 with Newcombe's score
interval for paired proportions (:func:`paired_difference_ci`) and an exact sign-flip test on the
per-video differences (:func:`sign_flip_test`; with one seed it is McNemar's exact test). A sheet
makes many such tests, so a difference is called significant only after Holm's adjustment over
all of them (:func:`holm`). With two or more seeds on both sides, a second test takes the seed as
its unit (:func:`paired_t_test` on per-seed deltas): the video-level test says nothing about how
much another training run would move the delta.

Why these and not a bootstrap: a percentile bootstrap gives a zero-width interval at 0/n and n/n
(48 of 48 right is not "100.00-100.00") and moves with its resampling seed; the intervals here are
closed-form and hold at the edges. Every interval is per comparison (95% each, not adjusted for
the sheet's multiplicity; only p Holm is).

Shapes: ``correct`` arrays are ``(videos,)`` or ``(videos, seeds)``, bool or float in [0, 1];
paired arrays are matched element-wise (same videos, same seed in each column). Accuracies and
deltas are in percent / points.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as scipy_stats

LEVEL = 0.95
ALPHA = 0.05  # family-wise error rate of a sheet: significant means Holm-adjusted p < ALPHA
EXACT_BUDGET = 5e8  # multiply-adds the exact sign-flip distribution may cost; beyond, its normal approximation


def per_video(correct: np.ndarray) -> np.ndarray:
    """``(videos,)`` correctness, a video's mean over seeds when given ``(videos, seeds)``."""
    c = np.asarray(correct, dtype=np.float64)
    if c.ndim == 2:
        c = c.mean(axis=1)
    if c.ndim != 1:
        raise ValueError(f"correct must be (videos,) or (videos, seeds), got shape {np.shape(correct)}")
    return c


def _z(level: float) -> float:
    return float(scipy_stats.norm.ppf(0.5 + level / 2))


def accuracy_ci(correct: np.ndarray, *, level: float = LEVEL) -> tuple[float, float]:
    """Clopper-Pearson interval (percent) of the accuracy over ``videos``.

    With several seeds a video counts as the fraction of seeds that got it right (the count of
    right videos is then fractional, and the beta quantiles take it as it is): the interval is
    that of one val sample of ``videos`` videos, as wide as with one seed (the seeds' agreement
    on a video is not more videos). 0/n gives ``0-upper``, n/n ``lower-100`` (48/48: 92.6-100)."""
    v = per_video(correct)
    n = len(v)
    if n == 0:
        return (math.nan, math.nan)
    x = float(v.sum())
    tail = (1 - level) / 2
    lo = 0.0 if x <= 0 else float(scipy_stats.beta.ppf(tail, x, n - x + 1))
    hi = 1.0 if x >= n else float(scipy_stats.beta.ppf(1 - tail, x + 1, n - x))
    return 100.0 * lo, 100.0 * hi


def _wilson(p: float, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` over ``n`` (fractional counts allowed, which
    scipy's binomtest does not take)."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_table(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, float, float, float]:
    """``(both right, only a, only b, both wrong)`` over videos, each video counting once (its
    share of the matched seeds in each case)."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes must have one shape, got {a.shape} and {b.shape}")
    return tuple(float(per_video(x).sum()) for x in (a & b, a & ~b, ~a & b, ~a & ~b))


def paired_difference_ci(correct_a: np.ndarray, correct_b: np.ndarray, *,
                         level: float = LEVEL) -> tuple[float, float]:
    """Newcombe's score interval (1998, method 10) of ``acc(a) - acc(b)`` in points, on the
    same videos (and matched seeds).

    It combines the Wilson intervals of both accuracies with their correlation on the paired
    table; it is never empty at the edges (all videos right on both sides gives about ±7 points
    on 48 videos, not 0) and needs no resampling."""
    both, only_a, only_b, neither = paired_table(correct_a, correct_b)
    n = both + only_a + only_b + neither
    if n == 0:
        return (math.nan, math.nan)
    z = _z(level)
    n_videos = int(round(n))
    p1, p2 = (both + only_a) / n, (both + only_b) / n
    l1, u1 = _wilson(p1, n_videos, z)
    l2, u2 = _wilson(p2, n_videos, z)
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(margins) if margins > 0 else 0.0
    delta = p1 - p2
    down = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    up = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return 100.0 * max(delta - down, -1.0), 100.0 * min(delta + up, 1.0)


def sign_flip_test(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, int, int]:
    """Two-sided exact sign-flip (permutation) test of ``acc(a) = acc(b)`` whose unit is the
    video: its difference is averaged over the matched seeds first.

    Why per video: with several seeds, a video's outcomes under the seeds are not independent
    (a video one model gets right it tends to get right with every seed), so pooling video x
    seed pairs into McNemar's test overstates the evidence (type-I error 0.14 instead of 0.05
    with 5 seeds x 400 videos). Under the null each video's difference is as likely to be
    flipped; the p is the share of the 2^videos flips whose sum is at least as far from 0.
    With one seed the differences are -1, 0, 1 and the test is McNemar's exact test.

    Returns ``(p, only_a, only_b)``: the videos whose difference favours a, and b."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes must have one shape, got {a.shape} and {b.shape}")
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    diff = a.sum(axis=1).astype(np.int64) - b.sum(axis=1)  # seeds x the per-video mean difference
    only_a, only_b = int((diff > 0).sum()), int((diff < 0).sum())
    magnitudes = np.abs(diff[diff != 0])
    if len(magnitudes) == 0:
        return 1.0, only_a, only_b
    if a.shape[1] == 1:  # McNemar's exact test: the binomial of the discordant videos
        return float(scipy_stats.binomtest(only_a, only_a + only_b, 0.5).pvalue), only_a, only_b
    return _sign_flip_p(magnitudes, int(diff.sum())), only_a, only_b


def _sign_flip_p(magnitudes: np.ndarray, observed: int) -> float:
    """``P(|sum of ±m_v| >= |observed|)`` with independent fair signs: the exact distribution, a
    convolution of one binomial per magnitude; its normal approximation when that would cost more
    than :data:`EXACT_BUDGET` (tens of thousands of videos with several seeds)."""
    values, counts = np.unique(magnitudes, return_counts=True)
    total = int((values * counts).sum())
    cost = sum(2 * int(m) * int(c) + 1 for m, c in zip(values, counts)) * (2 * total + 1)
    if cost > EXACT_BUDGET:
        sd = math.sqrt(float((magnitudes.astype(np.float64) ** 2).sum()))
        return min(1.0, float(2 * scipy_stats.norm.sf((abs(observed) - 0.5) / sd)))
    dist = np.ones(1)
    for m, c in zip(values, counts):
        m, c = int(m), int(c)
        part = np.zeros(2 * m * c + 1)  # m * (2B - c) for B ~ Binomial(c, 1/2), offset by m * c
        part[:: 2 * m] = scipy_stats.binom.pmf(np.arange(c + 1), c, 0.5)
        dist = np.convolve(dist, part)
    support = np.arange(-total, total + 1)
    return float(min(1.0, dist[np.abs(support) >= abs(observed)].sum()))


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; NaN for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return math.nan, math.nan
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else math.nan)


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values, in the order given.

    Why: a sheet makes dozens of paired tests; at 0.05 each, one of twenty null effects looks
    "significant" by chance. Holm controls the chance of *any* false call in the family at the
    nominal level, with no assumption on how the tests depend on each other, and is uniformly
    more powerful than Bonferroni. The i-th smallest of m p-values is multiplied by
    ``m - i + 1`` (i from 1), then a running maximum keeps the adjusted values in the order of
    the raw ones, and values are capped at 1. NaN p-values (no test) are not counted in ``m``
    and stay NaN.
    """
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def paired_t_test(differences) -> float:
    """Two-sided p of the paired t-test on per-seed differences (``df = seeds - 1``); NaN with
    fewer than two seeds.

    Why a t-test: its unit is the training run, so it asks whether the delta survives
    retraining, which the video-level test cannot. An exact sign-flip test over seeds would need
    no normality but cannot go below ``2 ** (1 - seeds)`` (0.5 with two seeds, 0.25 with three):
    with the seeds a sheet can afford it would never speak. All differences equal: p is the
    t-test's limit, 1 if they are 0, else 0 (equal to rounding: deltas of percentages carry it).
    """
    d = np.asarray(differences, dtype=np.float64).reshape(-1)
    if len(d) < 2:
        return math.nan
    if float(np.ptp(d)) <= 1e-9 * max(1.0, float(np.abs(d).max())):
        return 1.0 if abs(float(d.mean())) <= 1e-9 else 0.0
    return float(scipy_stats.ttest_1samp(d, 0.0).pvalue)
