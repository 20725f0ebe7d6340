"""Uncertainty of accuracies measured on one fixed val set.

The sheet's repeated rows differ by 0.1-0.15 points, as much as several augmentation effects.
Two sources of noise are reported separately:

- **val-set sampling** (which videos happen to be in val): a 95% percentile bootstrap over
  videos, :func:`bootstrap_ci`;
- **run-to-run** (seeds): mean ± sample std over seeds, :func:`mean_std`.

Augmentation vs default is a *paired* comparison on the same videos: the delta of top-1 with a
paired bootstrap CI (:func:`paired_bootstrap_ci`) and McNemar's exact test on the discordant
videos (:func:`mcnemar_exact`). All resampling is seeded: a report is reproducible.

Shapes: ``correct`` arrays are ``(videos,)`` or ``(videos, seeds)``, bool or float in [0, 1];
accuracies are in percent.
"""

from __future__ import annotations

import math

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95
SEED = 0
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
