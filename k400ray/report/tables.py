"""From trial records to the sheet's tables: one row per (preset, config) cell, seeds pooled,
with bootstrap CIs, and two kinds of paired comparison on the same videos:

- each config vs ``default`` of the same preset, where the preset has a ``default`` cell (a
  preset run only with ``gluoncv``, like the sheet's tsn_r50_1x1x7, has none);
- each other preset vs the **baseline model** under the same config (TSM vs TSN, I3D vs TSN:
  the comparison the papers are about). The baseline is chosen in the spec
  (``report.baseline_model``) or with ``k400ray report --baseline``; by default the first TSN
  preset of the grid. Every other preset is compared with it, same family or not.

All comparisons of a sheet, both kinds and both modes, form one family for Holm's adjustment;
a comparison is marked significant only when its adjusted p is below ``stats.ALPHA``.

Formats: ``md`` (one table per model family, like the sheet, with its "vs default" table, and a
"vs baseline" table), ``csv`` (one row per cell, every number), ``json`` (cells and comparisons).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from k400ray.engine.metrics import Predictions, correct_at
from k400ray.presets import BATCH_MIX_CONFIGS, CONFIGS, DEFAULT, EVAL_MODES, GLUONCV
from k400ray.report import stats

MODES = EVAL_MODES
TOPK = (1, 5)
FAMILY_TITLES = {"tsn": "TSN", "tsm": "TSM", "i3d": "I3D"}
AUG_ORDER = (GLUONCV, *(c for c in CONFIGS if c != GLUONCV))  # the sheet puts its GluonCV rows first


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
    """One paired comparison of a cell (``preset`` x ``aug``) with its reference on the same
    videos: ``kind="config"`` against the preset's ``default`` cell, ``kind="model"`` against
    the baseline preset's cell of the same config (``reference`` names which)."""

    family: str
    preset: str
    aug: str
    configs: str
    mode: str
    delta: float  # acc1(this cell) - acc1(reference), points, on the paired videos
    ci_low: float  # 95% paired bootstrap over the paired videos
    ci_high: float
    p_value: float  # McNemar exact on top-1 correctness, raw
    only_this: int  # videos (x seed pairs) right only in this cell
    only_reference: int  # ... right only in the reference cell
    pairs: int  # video x seed pairs McNemar counted
    videos: int = 0  # videos both sides predicted (the intersection of their video ids)
    kind: str = "config"  # "config" (vs default) or "model" (vs the baseline model)
    reference: str = DEFAULT  # the reference config, or the baseline preset
    p_holm: float = math.nan  # Holm-adjusted over every comparison of the sheet
    significant: bool = False  # p_holm < stats.ALPHA
    seed_pairs: int = 0  # seeds both sides ran (matched by seed number)
    seed_delta: float = math.nan  # mean over those seeds of the per-seed delta, points
    seed_delta_std: float = math.nan  # its sample std over seeds
    p_seeds: float = math.nan  # paired t-test over seeds (unit: the seed), raw; NaN under 2 seeds


def configs_label(aug: str, params: dict[str, str]) -> str:
    """The sheet's "configs" column: ``GluonCV``, ``default config``, ``randaugment``, ``mixup alpha=1.0``."""
    if aug == GLUONCV:
        return "GluonCV"
    if aug == DEFAULT:
        return "default config"
    if aug in BATCH_MIX_CONFIGS:
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


def _seed_test(pairs: list[tuple[TrialRecord, TrialRecord]], pa: np.ndarray, pr: np.ndarray) -> dict:
    """The test whose unit is the seed: per-seed top-1 deltas on the paired videos, when both
    sides ran the same seeds (same seed number: the same data order and draws, so the pair
    shares its noise). Fewer than two such seeds: no test."""
    if not pairs or any(a.seed != r.seed for a, r in pairs):
        return {"seed_pairs": 0}
    per_seed = 100.0 * (pa.mean(axis=0) - pr.mean(axis=0))
    mean, std = stats.mean_std(list(per_seed))
    return {"seed_pairs": len(pairs), "seed_delta": mean, "seed_delta_std": std,
            "p_seeds": stats.paired_t_test(per_seed)}


def _compare(records: list[TrialRecord], reference: list[TrialRecord], mode: str, *,
             resamples: int, seed: int) -> dict | None:
    """Paired statistics of ``records`` (one cell, its seeds) against ``reference`` on the
    videos all of them predicted, as :class:`Comparison` fields; None without predictions.
    Pairing on the intersection of video ids lets models whose val sets differ slightly
    (decode failures) still be compared on the same videos."""
    both = _correct_matrix(records + reference, mode, 1)
    if both is None:
        return None
    videos = both[0]
    _, xa = _correct_matrix(records, mode, 1, videos)
    _, xr = _correct_matrix(reference, mode, 1, videos)
    delta = 100.0 * float(xa.mean(axis=1).mean() - xr.mean(axis=1).mean())
    lo, hi = stats.paired_bootstrap_ci(xa, xr, resamples=resamples, seed=seed)
    pairs = _pair_seeds(records, reference)
    pa = np.stack([_correct_matrix([ra], mode, 1, videos)[1][:, 0] for ra, _ in pairs], axis=1)
    pr = np.stack([_correct_matrix([rr], mode, 1, videos)[1][:, 0] for _, rr in pairs], axis=1)
    p, only_this, only_reference = stats.mcnemar_exact(pa, pr)
    return {"delta": delta, "ci_low": lo, "ci_high": hi, "p_value": p, "only_this": only_this,
            "only_reference": only_reference, "pairs": int(pa.size), "videos": len(videos),
            **_seed_test(pairs, pa, pr)}


def adjust(comparisons: list[Comparison], *, alpha: float = stats.ALPHA) -> list[Comparison]:
    """Holm over every comparison given (one family: the sheet), in place; returns them.
    Significance comes from the adjusted p only."""
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
        last = int(r.metrics.get("epoch", 0))
        used = int(r.metrics.get("accurate_epoch", last))
        choice = r.params.get("recipe.accurate_checkpoint") or ("last" if used == last else "best")
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
    tsn = [p for p in dict.fromkeys(presets) if _family(p) == "tsn"]
    return min(tsn, key=_preset_order) if tsn else None


def build_tables(records: list[TrialRecord], *, baseline: str | None = None, resamples: int = stats.RESAMPLES,
                 seed: int = stats.SEED) -> tuple[list[Cell], list[Comparison]]:
    """Cells, then the comparisons (vs default, then vs ``baseline``, :func:`baseline_model`'s
    default when None), Holm-adjusted together."""
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
        if aug != DEFAULT and (preset, DEFAULT) in groups:
            comparisons += _comparisons(rs, groups[(preset, DEFAULT)], cells[-1], "config", DEFAULT,
                                        resamples=resamples, seed=seed)
    baseline = baseline_model([r.preset for r in records], baseline)
    for cell in cells:
        if cell.preset != baseline and (baseline, cell.aug) in groups:
            comparisons += _comparisons(groups[(cell.preset, cell.aug)], groups[(baseline, cell.aug)], cell,
                                        "model", baseline, resamples=resamples, seed=seed)
    return cells, adjust(comparisons)


def _comparisons(records: list[TrialRecord], reference: list[TrialRecord], cell: Cell, kind: str, name: str, *,
                 resamples: int, seed: int) -> list[Comparison]:
    """One comparison per mode that has predictions on both sides."""
    out = []
    for mode in MODES:
        result = _compare(records, reference, mode, resamples=resamples, seed=seed)
        if result is not None:
            out.append(Comparison(cell.family, cell.preset, cell.aug, cell.configs, mode, kind=kind, reference=name,
                                  **result))
    return out


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
    if p is None or math.isnan(p):
        return "-"
    if p == 0:
        return "0"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def _p_holm(x: Comparison) -> str:
    """The adjusted p, with the sheet's only significance mark."""
    return _p(x.p_holm) + (" *" if x.significant else "")


def _per_seed(x: Comparison) -> str:
    """Mean ± std over seeds of the per-seed delta, and the seed-level p; "-" under two seeds."""
    if x.seed_pairs < 2:
        return "-"
    return f"{_num(x.seed_delta, True)} ± {_num(x.seed_delta_std)} (p {_p(x.p_seeds)})"


def _families(cells: list[Cell]) -> list[str]:
    seen = list(dict.fromkeys(c.family for c in cells))
    known = [f for f in FAMILY_TITLES if f in seen]
    return known + [f for f in seen if f not in FAMILY_TITLES]


def _baseline_of(cells: list[Cell], comparisons: list[Comparison]) -> str | None:
    """The baseline the model comparisons were made against (or would have been, by default)."""
    used = next((x.reference for x in comparisons if x.kind == "model"), None)
    return used or baseline_model([c.preset for c in cells])


def _comparison_table(comparisons: list[Comparison], what: str) -> list[str]:
    """Markdown rows, one per (preset, config), both modes side by side; ``what`` heads the
    configs column (``vs default``: the config compared; ``configs``: the config both ran)."""
    header = [f"| model | {what} | videos |"]
    for mode in MODES:
        header.append(f" Δacc1 {mode} [95% CI] | p | p Holm | Δ per seed {mode} (p) |")
    lines = ["".join(header), "|:-:|:-|:-:|" + ":-:|:-:|:-:|:-:|" * len(MODES)]
    keyed = {(x.preset, x.aug, x.mode): x for x in comparisons}
    for preset, aug in dict.fromkeys((x.preset, x.aug) for x in comparisons):
        mine = [keyed[(preset, aug, m)] for m in MODES if (preset, aug, m) in keyed]
        videos = " / ".join(dict.fromkeys(str(x.videos) for x in mine))
        row = [preset, mine[0].configs, videos]
        for mode in MODES:
            x = keyed.get((preset, aug, mode))
            row += (["-"] * 4 if x is None else [
                f"{_num(x.delta, True)} [{_num(x.ci_low, True)}, {_num(x.ci_high, True)}]", _p(x.p_value),
                _p_holm(x), _per_seed(x)])
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _model_section(cells: list[Cell], comparisons: list[Comparison], baseline: str | None, source: str) -> list[str]:
    models = [x for x in comparisons if x.kind == "model"]
    if models:
        why = f" ({source})" if source else ""
        return [f"## Models vs {baseline}", "",
                f"Each other model minus the baseline {baseline}{why}, under the same config, on the videos both "
                "predicted; seeds paired by seed number.", "", *_comparison_table(models, "configs"), ""]
    if len({c.preset for c in cells}) < 2:
        return []
    if baseline is None:
        return ["No model-vs-model comparison: no TSN preset in the grid to compare with; choose a baseline with "
                "`report.baseline_model` in the spec or `k400ray report --baseline MODEL`.", ""]
    if baseline not in {c.preset for c in cells}:
        return [f"No model-vs-model comparison: the baseline {baseline} has no finished trial.", ""]
    return [f"No model-vs-model comparison: the baseline {baseline} shares no config with another model among "
            "the finished trials.", ""]


def format_markdown(cells: list[Cell], comparisons: list[Comparison], *, title: str = "",
                    resamples: int = stats.RESAMPLES, baseline: str | None = None, baseline_source: str = "") -> str:
    lines = []
    if title:
        lines += [f"# {title}", ""]
    lines += [
        "- Accuracies in percent; `a ± s`: mean ± std over seeds (n seeds in the configs column). 95% CI: "
        f"percentile bootstrap over val videos ({resamples} resamples, seeded). Efficient figures: the last epoch; "
        "accurate from: the weights accurate mode evaluated (the best efficient-mode epoch, or the last).",
        "- Δ vs default, Δ vs the baseline model: top-1 points on the same videos (`videos`: how many both "
        "predicted), 95% paired-bootstrap CI; p: McNemar's exact test, raw.",
        f"- p Holm: adjusted over all {len(comparisons)} comparisons of this sheet (every table, both modes); "
        f"`*`: p Holm < {stats.ALPHA:g}, the only significance call (a raw p below {stats.ALPHA:g} is not one).",
        "- Δ per seed: mean ± std of the per-seed Δ over the seeds both sides ran, and the p of a paired t-test "
        "whose unit is the seed (raw, not in the Holm family); `-` with fewer than two such seeds.",
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
        mine_cmp = [x for x in comparisons if x.family == family and x.kind == "config"]
        if mine_cmp:
            lines += ["", *_comparison_table(mine_cmp, "vs default")]
        lines.append("")
    lines += _model_section(cells, comparisons, baseline or _baseline_of(cells, comparisons), baseline_source)
    return "\n".join(lines).rstrip() + "\n"


_COMPARISON_COLUMNS = {  # csv column suffix -> Comparison field
    "delta_acc1": "delta", "delta_acc1_ci_low": "ci_low", "delta_acc1_ci_high": "ci_high", "p_value": "p_value",
    "p_holm": "p_holm", "significant": "significant", "paired_videos": "videos", "seed_pairs": "seed_pairs",
    "seed_delta_acc1": "seed_delta", "seed_delta_acc1_std": "seed_delta_std", "p_seeds": "p_seeds",
}


def _comparison_fields(prefix: str, x: Comparison | None) -> dict:
    return {f"{prefix}{column}": (getattr(x, name) if x else None) for column, name in _COMPARISON_COLUMNS.items()}


def _cell_row(c: Cell, comparisons: list[Comparison], baseline: str | None) -> dict:
    row = {"family": c.family, "model": c.preset, "aug": c.aug, "configs": c.configs,
           "seeds": " ".join(str(s) for s in c.seeds), "accurate_from": c.accurate_from, "baseline_model": baseline}
    for key, s in c.stats.items():
        row.update({key: s.mean, f"{key}_std": s.std, f"{key}_ci_low": s.ci_low, f"{key}_ci_high": s.ci_high})
    mine = {(x.kind, x.mode): x for x in comparisons if (x.preset, x.aug) == (c.preset, c.aug)}
    for mode in MODES:
        row[f"{mode}_videos"] = c.stats[f"{mode}_acc1"].videos
        row.update(_comparison_fields(f"{mode}_", mine.get(("config", mode))))
        row.update(_comparison_fields(f"{mode}_vs_baseline_", mine.get(("model", mode))))
    return row


def format_csv(cells: list[Cell], comparisons: list[Comparison], *, baseline: str | None = None) -> str:
    baseline = baseline or _baseline_of(cells, comparisons)
    rows = [_cell_row(c, comparisons, baseline) for c in cells]
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


def format_json(cells: list[Cell], comparisons: list[Comparison], *, meta: dict | None = None,
                baseline: str | None = None, baseline_source: str = "") -> str:
    return json.dumps(_clean({
        **(meta or {}),
        "alpha": stats.ALPHA,
        "holm_family_size": len(comparisons),
        "baseline_model": baseline or _baseline_of(cells, comparisons),
        "baseline_source": baseline_source,
        "cells": [asdict(c) for c in cells],
        "comparisons_vs_default": [asdict(x) for x in comparisons if x.kind == "config"],
        "comparisons_vs_baseline_model": [asdict(x) for x in comparisons if x.kind == "model"],
    }), indent=2) + "\n"
