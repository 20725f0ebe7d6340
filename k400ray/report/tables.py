"""From trial records to the sheet's tables: one row per (preset, config) cell, seeds pooled,
with bootstrap CIs, and each config's paired difference to ``default`` where the preset has a
``default`` cell (a preset run only with ``gluoncv``, like the sheet's tsn_r50_1x1x7, has none).

Formats: ``md`` (one table per model family, like the sheet, plus a "vs default" table),
``csv`` (one row per cell, every number), ``json`` (cells and comparisons).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from k400ray.engine.metrics import Predictions, correct_at
from k400ray.report import stats

MODES = ("efficient", "accurate")
TOPK = (1, 5)
FAMILY_TITLES = {"tsn": "TSN", "tsm": "TSM", "i3d": "I3D"}
AUG_ORDER = ("gluoncv", "default", "randaugment", "mixup", "cutmix")  # the sheet puts its GluonCV rows first


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
    ci_low: float  # 95% bootstrap over videos; NaN without predictions
    ci_high: float
    seeds: int
    videos: int


@dataclass
class Cell:
    family: str
    preset: str
    aug: str
    configs: str
    seeds: list[int]
    stats: dict[str, Stat]  # "efficient_acc1", ...
    accurate_from: str = ""  # which weights accurate mode evaluated, e.g. "best (epoch 87)"


@dataclass
class Comparison:
    family: str
    preset: str
    aug: str
    configs: str
    mode: str
    delta: float  # acc1(aug) - acc1(default), points
    ci_low: float
    ci_high: float
    p_value: float  # McNemar exact on top-1 correctness
    only_aug: int  # videos (x seed pairs) right only with the augmentation
    only_default: int
    pairs: int


def configs_label(aug: str, params: dict[str, str]) -> str:
    """The sheet's "configs" column: ``GluonCV``, ``default config``, ``randaugment``, ``mixup alpha=1.0``."""
    if aug == "gluoncv":
        return "GluonCV"
    if aug == "default":
        return "default config"
    if aug in ("mixup", "cutmix"):
        alpha = params.get(f"{aug}_alpha")
        return f"{aug} alpha={float(alpha):.1f}" if alpha not in (None, "None") else aug
    return aug


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


def _stat(records: list[TrialRecord], mode: str, k: int, *, resamples: int, seed: int) -> Stat:
    key = f"{mode}_acc{k}"
    per_seed = []
    for r in records:
        if key in r.metrics and not math.isnan(r.metrics[key]):
            per_seed.append(r.metrics[key])
        elif mode in r.predictions and len(r.predictions[mode]):
            per_seed.append(100.0 * float(correct_at(r.predictions[mode], k).mean()))
    mean, std = stats.mean_std(per_seed)
    matrix = _correct_matrix(records, mode, k)
    lo = hi = math.nan
    videos = 0
    if matrix is not None:
        videos = len(matrix[0])
        lo, hi = stats.bootstrap_ci(matrix[1], resamples=resamples, seed=seed)
    return Stat(mean, std, lo, hi, len(per_seed), videos)


def _pair_seeds(a: list[TrialRecord], b: list[TrialRecord]) -> list[tuple[TrialRecord, TrialRecord]]:
    """Same seed where both cells have it; otherwise in seed order."""
    sa, sb = {r.seed: r for r in a}, {r.seed: r for r in b}
    common = sorted(set(sa) & set(sb))
    if common:
        return [(sa[s], sb[s]) for s in common]
    return list(zip(sorted(a, key=lambda r: r.seed), sorted(b, key=lambda r: r.seed)))


def _compare(cell_records: list[TrialRecord], default_records: list[TrialRecord], mode: str, *,
             resamples: int, seed: int) -> tuple[float, float, float, float, int, int, int] | None:
    both = _correct_matrix(cell_records + default_records, mode, 1)
    if both is None:
        return None
    videos = both[0]
    _, xa = _correct_matrix(cell_records, mode, 1, videos)
    _, xd = _correct_matrix(default_records, mode, 1, videos)
    delta = 100.0 * float(xa.mean(axis=1).mean() - xd.mean(axis=1).mean())
    lo, hi = stats.paired_bootstrap_ci(xa, xd, resamples=resamples, seed=seed)
    pairs = _pair_seeds(cell_records, default_records)
    pa = np.stack([_correct_matrix([ra], mode, 1, videos)[1][:, 0] for ra, _ in pairs], axis=1)
    pd = np.stack([_correct_matrix([rd], mode, 1, videos)[1][:, 0] for _, rd in pairs], axis=1)
    p, only_a, only_d = stats.mcnemar_exact(pa, pd)
    return delta, lo, hi, p, only_a, only_d, pa.size


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
        last = int(r.metrics.get("epoch", 0))
        used = int(r.metrics.get("accurate_epoch", last))
        choice = r.params.get("recipe.accurate_checkpoint") or ("last" if used == last else "best")
        kinds.append(choice)
        epochs.append(str(used))
    if not records:
        return ""
    kind = kinds[0] if len(set(kinds)) == 1 else "/".join(dict.fromkeys(kinds))
    return f"{kind} (epoch{'s' if len(epochs) > 1 else ''} {', '.join(epochs)})"


def build_tables(records: list[TrialRecord], *, resamples: int = stats.RESAMPLES,
                 seed: int = stats.SEED) -> tuple[list[Cell], list[Comparison]]:
    groups: dict[tuple[str, str], list[TrialRecord]] = {}
    for r in records:
        groups.setdefault((r.preset, r.aug), []).append(r)
    order = sorted(groups, key=lambda k: (_preset_order(k[0]), _aug_order(k[1]), k[1]))
    cells, comparisons = [], []
    for preset, aug in order:
        rs = sorted(groups[(preset, aug)], key=lambda r: r.seed)
        family = rs[0].family or _family(preset)
        label = configs_label(aug, rs[0].params)
        cells.append(Cell(family, preset, aug, label, [r.seed for r in rs], {
            f"{mode}_acc{k}": _stat(rs, mode, k, resamples=resamples, seed=seed) for mode in MODES for k in TOPK
        }, accurate_source(rs)))
        if aug != "default" and (preset, "default") in groups:
            for mode in MODES:
                result = _compare(rs, groups[(preset, "default")], mode, resamples=resamples, seed=seed)
                if result is not None:
                    comparisons.append(Comparison(family, preset, aug, label, mode, *result))
    return cells, comparisons


def _family(preset: str) -> str:
    from k400ray.presets import PRESETS

    return PRESETS[preset].arch.family if preset in PRESETS else preset.split("_", 1)[0]


# --- formatting ------------------------------------------------------------------------------


def _num(x: float, signed: bool = False) -> str:
    if x is None or math.isnan(x):
        return "-"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def _acc(s: Stat) -> str:
    if math.isnan(s.mean):
        return "-"
    return _num(s.mean) if s.seeds < 2 else f"{_num(s.mean)} ± {_num(s.std)}"


def _ci(s: Stat) -> str:
    return "-" if math.isnan(s.ci_low) else f"{s.ci_low:.2f}–{s.ci_high:.2f}"


def _p(p: float) -> str:
    if math.isnan(p):
        return "-"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def _families(cells: list[Cell]) -> list[str]:
    seen = list(dict.fromkeys(c.family for c in cells))
    known = [f for f in FAMILY_TITLES if f in seen]
    return known + [f for f in seen if f not in FAMILY_TITLES]


def format_markdown(cells: list[Cell], comparisons: list[Comparison], *, title: str = "",
                    resamples: int = stats.RESAMPLES) -> str:
    lines = []
    if title:
        lines += [f"# {title}", ""]
    lines += [
        "Accuracies in percent. `a ± s`: mean ± std over seeds (n seeds in the configs column). "
        f"95% CI: percentile bootstrap over val videos ({resamples} resamples, seeded). "
        "Δ vs default: same videos, 95% paired-bootstrap CI, p from McNemar's exact test on top-1. "
        "Efficient figures: the last epoch; accurate from: the weights accurate mode evaluated "
        "(the best efficient-mode epoch, or the last).",
        "",
    ]
    for family in _families(cells):
        mine = [c for c in cells if c.family == family]
        lines += [f"## {FAMILY_TITLES.get(family, family.upper())}", "",
                  "| model | configs | acc1/acc5 efficient | acc1/acc5 accurate | 95% CI efficient | 95% CI accurate "
                  "| accurate from |",
                  "|:-:|:-|:-:|:-:|:-:|:-:|:-:|"]
        for c in mine:
            s = c.stats
            configs = c.configs + (f" ({len(c.seeds)} seeds)" if len(c.seeds) > 1 else "")
            lines.append(
                f"| {c.preset} | {configs} | {_acc(s['efficient_acc1'])} / {_acc(s['efficient_acc5'])} | "
                f"{_acc(s['accurate_acc1'])} / {_acc(s['accurate_acc5'])} | "
                f"{_ci(s['efficient_acc1'])} / {_ci(s['efficient_acc5'])} | "
                f"{_ci(s['accurate_acc1'])} / {_ci(s['accurate_acc5'])} | {c.accurate_from or '-'} |"
            )
        mine_cmp = [x for x in comparisons if x.family == family]
        if mine_cmp:
            lines += ["", "| model | vs default | Δacc1 efficient [95% CI] | p | Δacc1 accurate [95% CI] | p |",
                      "|:-:|:-|:-:|:-:|:-:|:-:|"]
            keyed = {(x.preset, x.aug, x.mode): x for x in mine_cmp}
            for preset, aug in dict.fromkeys((x.preset, x.aug) for x in mine_cmp):
                row = [preset, next(x.configs for x in mine_cmp if (x.preset, x.aug) == (preset, aug))]
                for mode in MODES:
                    x = keyed.get((preset, aug, mode))
                    row += (["-", "-"] if x is None else
                            [f"{_num(x.delta, True)} [{_num(x.ci_low, True)}, {_num(x.ci_high, True)}]", _p(x.p_value)])
                lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _cell_row(c: Cell, comparisons: list[Comparison]) -> dict:
    row = {"family": c.family, "model": c.preset, "aug": c.aug, "configs": c.configs,
           "seeds": " ".join(str(s) for s in c.seeds), "accurate_from": c.accurate_from}
    for key, s in c.stats.items():
        row.update({key: s.mean, f"{key}_std": s.std, f"{key}_ci_low": s.ci_low, f"{key}_ci_high": s.ci_high})
    for mode in MODES:
        row[f"{mode}_videos"] = c.stats[f"{mode}_acc1"].videos
        x = next((x for x in comparisons if (x.preset, x.aug, x.mode) == (c.preset, c.aug, mode)), None)
        row.update({
            f"{mode}_delta_acc1": x.delta if x else None, f"{mode}_delta_acc1_ci_low": x.ci_low if x else None,
            f"{mode}_delta_acc1_ci_high": x.ci_high if x else None, f"{mode}_p_value": x.p_value if x else None,
        })
    return row


def format_csv(cells: list[Cell], comparisons: list[Comparison]) -> str:
    rows = [_cell_row(c, comparisons) for c in cells]
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else
                             (f"{v:.6g}" if isinstance(v, float) else v)) for k, v in row.items()})
    return out.getvalue()


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def format_json(cells: list[Cell], comparisons: list[Comparison], *, meta: dict | None = None) -> str:
    return json.dumps(_clean({
        **(meta or {}),
        "cells": [asdict(c) for c in cells],
        "comparisons_vs_default": [asdict(x) for x in comparisons],
    }), indent=2) + "\n"
