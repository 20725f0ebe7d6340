"""From trial records to the sheet's numbers: one cell per (preset, config), seeds pooled, with
exact intervals, and two kinds of paired comparison on the same videos and the same seeds:

- each config vs ``default`` of the same preset, where the preset has a ``default`` cell (a
  preset run only with ``gluoncv``, like the sheet's tsn_r50_1x1x7, has none);
- each other preset vs the **baseline model** under the same config (TSM vs TSN, I3D vs TSN:
  the comparison the papers are about). The baseline is chosen in the spec
  (``report.baseline_model``) or with ``k400ray report --baseline``; by default the first TSN
  preset of the grid. Every other preset is compared with it, same family or not.

A comparison uses the seeds both cells ran (matched by seed number: the same data order and
draws); two cells without a seed in common get no paired comparison (a row that says so). All
comparisons of a sheet, both kinds and both modes, form one family for Holm's adjustment; a
comparison is marked significant only when its adjusted p is below ``stats.ALPHA``.

The statistics are :mod:`k400ray.report.stats`'; how the sheet shows them is
:mod:`k400ray.report.sheet` (markdown, terminal) and :mod:`k400ray.report.exports` (csv, json).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from k400ray.contracts import (
    ACCURATE_CHECKPOINT_PARAM, ACCURATE_EPOCH, ACC_AT, EPOCH, NUM_CLASSES_PARAM, alpha_param, mode_metric,
)
from k400ray.engine.metrics import Predictions, correct_at
from k400ray.presets import BATCH_MIX_CONFIGS, CONFIGS, DEFAULT, EVAL_MODES, GLUONCV, family_of
from k400ray.report import stats

MODES = EVAL_MODES
TOPK = (1, 5)
AUG_ORDER = (GLUONCV, *(c for c in CONFIGS if c != GLUONCV))  # the sheet puts its GluonCV rows first
NO_COMMON_SEED = "no seed in common"


@dataclass
class TrialRecord:
    """One finished trial as the report sees it (from its MLflow child run)."""

    preset: str
    aug: str
    seed: int
    metrics: dict[str, float]
    predictions: dict[str, Predictions] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    family: str = ""
    run_id: str = ""


@dataclass
class Stat:
    mean: float
    std: float  # over seeds; NaN with one seed
    ci_low: float  # 95% Clopper-Pearson over videos; NaN without predictions
    ci_high: float
    seeds: int
    videos: int
    na: str = ""  # why there is no figure (top-k of k or fewer classes is always right), else ""


@dataclass
class Cell:
    family: str
    preset: str
    aug: str
    configs: str
    seeds: list[int]
    stats: dict[str, Stat]  # by metric key (contracts.EFFICIENT_ACC1, ...)
    accurate_from: str = ""  # which weights accurate mode evaluated, e.g. "best (epoch 87)"


@dataclass
class Comparison:
    """One paired comparison of a cell (``preset`` x ``aug``) with its reference on the same
    videos and seeds: ``kind="config"`` against the preset's ``default`` cell, ``kind="model"``
    against the baseline preset's cell of the same config (``reference`` names which)."""

    family: str
    preset: str
    aug: str
    configs: str
    mode: str
    delta: float = math.nan  # acc1(this cell) - acc1(reference), points, paired videos x matched seeds
    ci_low: float = math.nan  # Newcombe's 95% score interval for paired proportions
    ci_high: float = math.nan
    p_value: float = math.nan  # exact sign-flip test on per-video differences (McNemar with one seed), raw
    only_this: int = 0  # videos whose difference favours this cell
    only_reference: int = 0  # ... the reference cell
    videos: int = 0  # videos both sides predicted (the intersection of their video ids)
    kind: str = "config"  # "config" (vs default) or "model" (vs the baseline model)
    reference: str = DEFAULT  # the reference config, or the baseline preset
    p_holm: float = math.nan  # Holm-adjusted over every comparison of the sheet
    significant: bool = False  # p_holm < stats.ALPHA
    seeds: list[int] = field(default_factory=list)  # the seeds both sides ran: the only ones compared
    seed_pairs: int = 0  # how many
    seed_delta: float = math.nan  # mean over those seeds of the per-seed delta, points
    seed_delta_std: float = math.nan  # its sample std over seeds
    p_seeds: float = math.nan  # paired t-test over seeds (unit: the seed), raw; NaN under 2 seeds
    note: str = ""  # why there is no comparison (NO_COMMON_SEED), else ""


def configs_label(aug: str, params: dict[str, str]) -> str:
    """The sheet's "configs" column: ``GluonCV``, ``default config``, ``randaugment``, ``mixup alpha=1.0``."""
    if aug == GLUONCV:
        return "GluonCV"
    if aug == DEFAULT:
        return "default config"
    if aug in BATCH_MIX_CONFIGS:
        alpha = params.get(alpha_param(aug))
        return f"{aug} alpha={float(alpha):.1f}" if alpha not in (None, "None") else aug
    return aug


def num_classes(records: list[TrialRecord]) -> int | None:
    """The grid's class count: the trials' ``num_classes`` param, else what the predictions
    show (a top-5 padded with -1 holds every class), else None (unknown)."""
    for r in records:
        if str(r.params.get(NUM_CLASSES_PARAM, "")).isdigit():
            return int(r.params[NUM_CLASSES_PARAM])
    for r in records:
        for p in r.predictions.values():
            if len(p) and (p.topk[0] < 0).any():
                return int((p.topk[0] >= 0).sum())
    return None


def _correct_matrix(records: list[TrialRecord], mode: str, k: int, videos: list[str] | None = None):
    """``(video_ids, (videos, seeds) bool)`` over the videos every record predicted; None when a
    record has no predictions for ``mode``."""
    if not records or any(mode not in r.predictions for r in records):
        return None
    maps = []
    for r in records:
        p = r.predictions[mode]
        maps.append(dict(zip(p.video_id, correct_at(p, k))))
    common = sorted(set.intersection(*(set(m) for m in maps))) if videos is None else videos
    if not common:
        return None
    return common, np.array([[m[v] for m in maps] for v in common], dtype=bool)


def _seed_accuracy(r: TrialRecord, mode: str, k: int) -> float | None:
    """One trial's accuracy: from its predictions (exact), else its logged metric."""
    if mode in r.predictions and len(r.predictions[mode]):
        return 100.0 * float(correct_at(r.predictions[mode], k).mean())
    value = r.metrics.get(mode_metric(mode, ACC_AT[k]))
    return None if value is None or math.isnan(value) else float(value)


def _stat(records: list[TrialRecord], mode: str, k: int, classes: int | None) -> Stat:
    if classes is not None and k >= classes:
        return Stat(math.nan, math.nan, math.nan, math.nan, len(records), 0,
                    na=f"top-{k} of {classes} classes is always right")
    per_seed = [a for a in (_seed_accuracy(r, mode, k) for r in records) if a is not None]
    mean, std = stats.mean_std(per_seed)
    matrix = _correct_matrix(records, mode, k)
    lo = hi = math.nan
    videos = 0
    if matrix is not None:
        videos = len(matrix[0])
        lo, hi = stats.accuracy_ci(matrix[1])
    return Stat(mean, std, lo, hi, len(per_seed), videos)


def cell_stats(records: list[TrialRecord], classes: int | None) -> dict[str, Stat]:
    """acc1 and acc5 of both modes over ``records`` (seeds pooled, exact intervals), by metric key."""
    return {mode_metric(mode, ACC_AT[k]): _stat(records, mode, k, classes) for mode in MODES for k in TOPK}


def seed_accuracy(r: TrialRecord, mode: str, k: int = 1) -> float | None:
    """One trial's top-``k`` accuracy in ``mode`` (percent; None: neither predictions nor metric)."""
    return _seed_accuracy(r, mode, k)


def _seed_test(xa: np.ndarray, xr: np.ndarray) -> dict:
    """The test whose unit is the seed: per-seed top-1 deltas on the paired videos (columns are
    matched seeds). Fewer than two seeds: no test."""
    per_seed = 100.0 * (xa.mean(axis=0) - xr.mean(axis=0))
    mean, std = stats.mean_std(list(per_seed))
    return {"seed_delta": mean, "seed_delta_std": std, "p_seeds": stats.paired_t_test(per_seed)}


def _compare(records: list[TrialRecord], reference: list[TrialRecord], mode: str) -> dict | None:
    """Paired statistics of ``records`` (one cell, its seeds) against ``reference`` on the
    videos both predicted and the seeds both ran, as :class:`Comparison` fields; None without
    predictions. Pairing on the intersection of video ids lets models whose val sets differ
    slightly (decode failures) still be compared on the same videos; pairing by seed number
    compares runs that shared their data order and draws, and every figure of the comparison
    (delta, interval, tests) comes from those seeds only."""
    mine, theirs = {r.seed: r for r in records}, {r.seed: r for r in reference}
    seeds = sorted(set(mine) & set(theirs))
    if not seeds:
        return {"note": NO_COMMON_SEED}
    a, r = [mine[s] for s in seeds], [theirs[s] for s in seeds]
    both = _correct_matrix(a + r, mode, 1)
    if both is None:
        return None
    videos = both[0]
    xa, xr = both[1][:, :len(seeds)], both[1][:, len(seeds):]
    lo, hi = stats.paired_difference_ci(xa, xr)
    p, only_this, only_reference = stats.sign_flip_test(xa, xr)
    return {"delta": 100.0 * float(xa.mean() - xr.mean()), "ci_low": lo, "ci_high": hi, "p_value": p,
            "only_this": only_this, "only_reference": only_reference, "videos": len(videos), "seeds": seeds,
            "seed_pairs": len(seeds), **_seed_test(xa, xr)}


def adjust(comparisons: list[Comparison], *, alpha: float = stats.ALPHA) -> list[Comparison]:
    """Holm over every comparison given (one family: the sheet), in place; returns them.
    Significance comes from the adjusted p only; a comparison without a test stays out."""
    for x, p in zip(comparisons, stats.holm([x.p_value for x in comparisons])):
        x.p_holm = float(p)
        x.significant = bool(p < alpha)
    return comparisons


def _preset_order(preset: str) -> int:
    from k400ray.presets import PRESETS

    names = list(PRESETS)
    return names.index(preset) if preset in names else len(names)


def _aug_order(aug: str) -> int:
    return AUG_ORDER.index(aug) if aug in AUG_ORDER else len(AUG_ORDER)


def accurate_source(records: list[TrialRecord]) -> str:
    """Which checkpoint the accurate figures of a cell come from: ``best (epoch 87)``, ``last
    (epoch 100)``; one epoch per seed. Runs from before best checkpoints were kept evaluated the
    last epoch."""
    kinds, epochs = [], []
    for r in records:
        last = int(r.metrics.get(EPOCH, 0))
        used = int(r.metrics.get(ACCURATE_EPOCH, last))
        choice = r.params.get(ACCURATE_CHECKPOINT_PARAM) or ("last" if used == last else "best")
        kinds.append(choice)
        epochs.append(str(used))
    if not records:
        return ""
    kind = kinds[0] if len(set(kinds)) == 1 else "/".join(dict.fromkeys(kinds))
    return f"{kind} (epoch{'s' if len(epochs) > 1 else ''} {', '.join(epochs)})"


def baseline_model(presets, requested: str | None = None) -> str | None:
    """The model every other preset is compared with: ``requested`` (spec or command line) as
    given, else the first TSN preset present (in preset order: tsn_r50_1x1x8 before 1x1x7),
    else None (no model comparisons). TSN by default because it is the frame-averaging
    reference the temporal models of the sheet are measured against."""
    if requested:
        return requested
    tsn = [p for p in dict.fromkeys(presets) if family_of(p) == "tsn"]
    return min(tsn, key=_preset_order) if tsn else None


def build_tables(records: list[TrialRecord], *, baseline: str | None = None) -> tuple[list[Cell], list[Comparison]]:
    """Cells, then the comparisons (vs default, then vs ``baseline``, :func:`baseline_model`'s
    default when None), Holm-adjusted together."""
    groups: dict[tuple[str, str], list[TrialRecord]] = {}
    for r in records:
        groups.setdefault((r.preset, r.aug), []).append(r)
    classes = num_classes(records)
    order = sorted(groups, key=lambda k: (_preset_order(k[0]), _aug_order(k[1]), k[1]))
    cells, comparisons = [], []
    for preset, aug in order:
        rs = sorted(groups[(preset, aug)], key=lambda r: r.seed)
        family = rs[0].family or family_of(preset)
        label = configs_label(aug, rs[0].params)
        cells.append(Cell(family, preset, aug, label, [r.seed for r in rs], cell_stats(rs, classes),
                          accurate_source(rs)))
        if aug != DEFAULT and (preset, DEFAULT) in groups:
            comparisons += _comparisons(rs, groups[(preset, DEFAULT)], cells[-1], "config", DEFAULT)
    baseline = baseline_model([r.preset for r in records], baseline)
    for cell in cells:
        if cell.preset != baseline and (baseline, cell.aug) in groups:
            comparisons += _comparisons(groups[(cell.preset, cell.aug)], groups[(baseline, cell.aug)], cell,
                                        "model", baseline)
    return cells, adjust(comparisons)


def _comparisons(records: list[TrialRecord], reference: list[TrialRecord], cell: Cell, kind: str,
                 name: str) -> list[Comparison]:
    """One comparison per mode that has predictions on both sides."""
    out = []
    for mode in MODES:
        result = _compare(records, reference, mode)
        if result is not None:
            out.append(Comparison(cell.family, cell.preset, cell.aug, cell.configs, mode, kind=kind, reference=name,
                                  **result))
    return out
