"""Uncertainty of accuracies measured on one fixed val set.

The sheet's repeated rows differ by 0.1-0.15 points, as much as several augmentation effects.
Two sources of noise are reported separately:

- **val-set sampling** (which videos happen to be in val): a 95% percentile bootstrap over
  videos, :func:`bootstrap_ci`;
- **run-to-run** (seeds): mean ± sample std over seeds, :func:`mean_std`.

Augmentation vs default, and a model vs the baseline model under one config, are *paired*
comparisons on the same videos: the delta of top-1 with a paired bootstrap CI
(:func:`paired_bootstrap_ci`) and McNemar's exact test on the discordant videos
(:func:`mcnemar_exact`). A sheet makes many such tests, so a difference is called significant
only after Holm's adjustment over all of them (:func:`holm`). With two or more seeds on both
sides, a second test takes the seed as its unit (:func:`paired_t_test` on per-seed deltas): the
video bootstrap says nothing about how much another training run would move the delta.
All resampling is seeded: a report is reproducible.

Shapes: ``correct`` arrays are ``(videos,)`` or ``(videos, seeds)``, bool or float in [0, 1];
accuracies are in percent.
"""

from __future__ import annotations

import math

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95
SEED = 0
ALPHA = 0.05  # family-wise error rate of a sheet: significant means Holm-adjusted p < ALPHA
_CHUNK = 100  # resamples drawn at once: 100 x 20k videos of int64 is 16 MB


def _per_video(correct: np.ndarray) -> np.ndarray:
    c = np.asarray(correct, dtype=np.float64)
    if c.ndim == 2:  # (videos, seeds): a video's mean over seeds
        c = c.mean(axis=1)
    if c.ndim != 1:
        raise ValueError(f"correct must be (videos,) or (videos, seeds), got shape {np.shape(correct)}")
    return c


def _bootstrap_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(values)
    out = np.empty(resamples)
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        out[start:start + size] = values[rng.integers(0, n, size=(size, n))].mean(axis=1)
    return out


def _percentile_ci(values: np.ndarray, resamples: int, level: float, seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval (percent / points) of the mean of per-video ``values``."""
    if len(values) == 0:
        return (math.nan, math.nan)
    means = 100.0 * _bootstrap_means(values, resamples, seed)
    tail = 100.0 * (1 - level) / 2
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)


def bootstrap_ci(correct: np.ndarray, *, resamples: int = RESAMPLES, level: float = LEVEL,
                 seed: int = SEED) -> tuple[float, float]:
    """Percentile CI (percent) of the accuracy, resampling videos with replacement."""
    return _percentile_ci(_per_video(correct), resamples, level, seed)


def paired_bootstrap_ci(correct_a: np.ndarray, correct_b: np.ndarray, *, resamples: int = RESAMPLES,
                        level: float = LEVEL, seed: int = SEED) -> tuple[float, float]:
    """CI (points) of ``acc(a) - acc(b)``, resampling the same videos for both."""
    return _percentile_ci(_per_video(correct_a) - _per_video(correct_b), resamples, level, seed)


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, int, int]:
    """Two-sided exact McNemar test on paired bool outcomes (any shape, matched element-wise).

    Returns ``(p, b, c)``: ``b`` = right only under a, ``c`` = right only under b. Under the
    null both are equally likely, so ``min(b, c) ~ Binomial(b + c, 1/2)``.
    """
    a = np.asarray(correct_a, dtype=bool)
    b_ = np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape:
        raise ValueError(f"paired outcomes must have one shape, got {a.shape} and {b_.shape}")
    b = int((a & ~b_).sum())
    c = int((~a & b_).sum())
    n = b + c
    if n == 0:
        return 1.0, b, c
    # log-space binomial tail: exact counts of ~40k videos overflow floats, not logs.
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
            for i in range(min(b, c) + 1)]
    top = max(logs)
    tail = math.exp(top) * sum(math.exp(x - top) for x in logs)
    return min(1.0, 2.0 * tail), b, c


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


def _t_two_sided_p(t: float, df: int) -> float:
    """``P(|T| >= |t|)`` for Student's t with integer ``df`` >= 1, in closed form (Abramowitz &
    Stegun 26.7.3-4), so the report needs no scipy. ``A = P(|T| < |t|)`` is a finite series in
    ``cos(theta)``, ``theta = atan(|t| / sqrt(df))``."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if math.isinf(t):
        return 0.0
    theta = math.atan(abs(t) / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2:  # odd: A = 2/pi (theta + sin cos (1 + 2/3 c2 + 2*4/(3*5) c2^2 + ...)), df - 3 in the last power
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for j in range(1, (df - 1) // 2):
            term *= c2 * (2 * j) / (2 * j + 1)
            total += term
        a = 2.0 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    else:  # even: A = sin (1 + 1/2 c2 + 1*3/(2*4) c2^2 + ...), df - 2 in the last power
        term, total = 1.0, 1.0
        for j in range(1, df // 2):
            term *= c2 * (2 * j - 1) / (2 * j)
            total += term
        a = math.sin(theta) * total
    return min(1.0, max(0.0, 1.0 - a))


def paired_t_test(differences) -> float:
    """Two-sided p of the paired t-test on per-seed differences (``df = seeds - 1``); NaN with
    fewer than two seeds.

    Why a t-test: its unit is the training run, so it asks whether the delta survives
    retraining, which McNemar's test over videos cannot. An exact sign-flip test would need no
    normality but cannot go below ``2 ** (1 - seeds)`` (0.5 with two seeds, 0.25 with three):
    with the seeds a sheet can afford it would never speak. All differences equal: p is the
    t-test's limit, 1 if they are 0, else 0.
    """
    d = np.asarray(differences, dtype=np.float64).reshape(-1)
    n = len(d)
    if n < 2:
        return math.nan
    mean, std = float(d.mean()), float(d.std(ddof=1))
    if std == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    return _t_two_sided_p(mean / (std / math.sqrt(n)), n - 1)
