"""The sheet for programs: ``csv`` (one row per cell, every number of the markdown sheet) and
``json`` (cells and comparisons as they are, NaN as null)."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict

from k400ray.contracts import ACC1, mode_metric
from k400ray.report import stats
from k400ray.report.tables import MODES, Cell, Comparison, baseline_model

_COMPARISON_COLUMNS = {  # csv column suffix -> Comparison field
    "delta_acc1": "delta", "delta_acc1_ci_low": "ci_low", "delta_acc1_ci_high": "ci_high", "p_value": "p_value",
    "p_holm": "p_holm", "significant": "significant", "paired_videos": "videos", "seed_pairs": "seed_pairs",
    "seed_delta_acc1": "seed_delta", "seed_delta_acc1_std": "seed_delta_std", "p_seeds": "p_seeds",
    "note": "note",
}


def baseline_of(cells: list[Cell], comparisons: list[Comparison]) -> str | None:
    """The baseline the model comparisons were made against (or would have been, by default)."""
    used = next((x.reference for x in comparisons if x.kind == "model"), None)
    return used or baseline_model([c.preset for c in cells])


def _comparison_fields(prefix: str, x: Comparison | None) -> dict:
    return {f"{prefix}{column}": (getattr(x, name) if x else None) for column, name in _COMPARISON_COLUMNS.items()}


def _cell_row(c: Cell, comparisons: list[Comparison], baseline: str | None) -> dict:
    row = {"family": c.family, "model": c.preset, "aug": c.aug, "configs": c.configs,
           "seeds": " ".join(str(s) for s in c.seeds), "accurate_from": c.accurate_from, "baseline_model": baseline}
    for key, s in c.stats.items():
        row.update({key: s.mean, f"{key}_std": s.std, f"{key}_ci_low": s.ci_low, f"{key}_ci_high": s.ci_high,
                    f"{key}_na": s.na})
    mine = {(x.kind, x.mode): x for x in comparisons if (x.preset, x.aug) == (c.preset, c.aug)}
    for mode in MODES:
        row[f"{mode}_videos"] = c.stats[mode_metric(mode, ACC1)].videos
        row.update(_comparison_fields(f"{mode}_", mine.get(("config", mode))))
        row.update(_comparison_fields(f"{mode}_vs_baseline_", mine.get(("model", mode))))
    return row


def format_csv(cells: list[Cell], comparisons: list[Comparison], *, baseline: str | None = None) -> str:
    baseline = baseline or baseline_of(cells, comparisons)
    return csv_text([_cell_row(c, comparisons, baseline) for c in cells])


def csv_text(rows: list[dict]) -> str:
    """``rows`` (dicts with the same keys) as CSV: a header, floats to 6 significant digits,
    None and NaN as empty cells; "" for no rows."""
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else
                             (f"{v:.6g}" if isinstance(v, float) else v)) for k, v in row.items()})
    return out.getvalue()


def clean_for_json(value):
    """``value`` with every NaN (at any depth of dicts and lists) as None: JSON has no NaN."""
    return _clean(value)


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
        "level": stats.LEVEL,
        "holm_family_size": sum(not math.isnan(x.p_value) for x in comparisons),
        "baseline_model": baseline or baseline_of(cells, comparisons),
        "baseline_source": baseline_source,
        "cells": [asdict(c) for c in cells],
        "comparisons_vs_default": [asdict(x) for x in comparisons if x.kind == "config"],
        "comparisons_vs_baseline_model": [asdict(x) for x in comparisons if x.kind == "model"],
    }), indent=2) + "\n"
