"""The report of a search: which points won, and how accuracy moves along each searched axis.

A search's runs say so: the parent run carries ``search.searcher`` and ``search.num_samples``
(and the spec's search section as ``search_space.json``), every trial each searched value as
the param ``search.<section>.<field>`` (names in :mod:`k400ray.contracts`). The sheet of a grid
pools a (preset, config) cell over seeds; in a search that cell mixes different values, so the
report is built on **points** instead: one preset, config and set of searched values, its seeds
(and a grid axis's repeats) pooled, with the sheet's own statistics (exact Clopper-Pearson
intervals, :func:`k400ray.report.tables.cell_stats`).

- **Best points** per preset and config, by efficient-mode top-1 (the metric ASHA and the
  searcher see; the accurate mode is shown beside it, and is missing for a trial ASHA stopped).
- **acc1 against each axis**, per preset and config: a list or choice axis per value; a sampled
  range sorted by value and cut into bins of equal trial counts (a sampled value rarely repeats),
  each row the mean over the trials in it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from k400ray.contracts import (
    ACC1, ACC5, NUM_SAMPLES_PARAM, SEARCHER_PARAM, mode_metric, search_param, searched_path,
)
from k400ray.report.exports import clean_for_json, csv_text
from k400ray.report.tables import MODES, Stat, TrialRecord, cell_stats, num_classes, seed_accuracy
from k400ray.text_table import markdown_table

TOP = 3  # best points per preset and config
BINS = 5  # bins of a sampled range with more distinct values than this
DISCRETE = ("grid", "choice")


def is_search(parent_params: dict[str, str]) -> bool:
    """Whether the grid's parent run was a search (it logged its searcher)."""
    return SEARCHER_PARAM in parent_params


@dataclass
class Point:
    """One searched point: its values (as MLflow stores params: text), seeds pooled."""

    preset: str
    aug: str
    values: dict[str, str]
    seeds: list[int]
    stats: dict[str, Stat]  # by metric key (contracts.EFFICIENT_ACC1, ...)
    rank: int = 0  # 1 = best of its preset and config by efficient acc1


@dataclass
class AxisRow:
    """acc1 over the trials of one preset and config whose ``axis`` value is ``value`` (or in
    ``[low, high]`` for a bin of a sampled range)."""

    axis: str
    preset: str
    aug: str
    value: str
    low: float | None
    high: float | None
    trials: int
    efficient_acc1: float
    accurate_acc1: float


@dataclass
class SearchTables:
    searcher: str
    num_samples: str
    axes: list[str]
    points: list[Point]
    axis_rows: list[AxisRow] = field(default_factory=list)
    top: int = TOP

    @property
    def best(self) -> list[Point]:
        return [p for p in self.points if 0 < p.rank <= self.top]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _mean(values: list[float | None]) -> float:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else math.nan


def _efficient(p: Point) -> float:
    value = p.stats[mode_metric("efficient", ACC1)].mean
    return -math.inf if math.isnan(value) else value


def build_search_tables(records: list[TrialRecord], parent_params: dict[str, str], space: dict | None = None, *,
                        top: int = TOP) -> SearchTables:
    """Points ranked within each preset and config, and the axis tables.

    Args:
        records (list[TrialRecord]): the finished trials.
        parent_params (dict): the parent run's params (searcher, samples).
        space (dict): the parent's ``search_space.json`` (its ``space`` says each axis's kind;
            without it an axis is per value when it has at most ``BINS`` values, else binned).
        top (int): best points shown per preset and config.
    """
    kinds = {path: (axis or {}).get("kind") for path, axis in ((space or {}).get("space") or {}).items()}
    axes = list(kinds) or sorted({a for r in records for a in map(searched_path, r.params) if a})
    classes = num_classes(records)
    groups: dict[tuple, list[TrialRecord]] = {}
    for r in records:
        values = tuple(r.params.get(_param(a), "") for a in axes)
        groups.setdefault((r.preset, r.aug, values), []).append(r)
    points = []
    for (preset, aug, values), rs in groups.items():
        rs = sorted(rs, key=lambda r: r.seed)
        points.append(Point(preset, aug, dict(zip(axes, values)), [r.seed for r in rs], cell_stats(rs, classes)))
    points.sort(key=lambda p: (p.preset, p.aug, -_efficient(p)))
    cell, rank = None, 0
    for p in points:
        rank = rank + 1 if (p.preset, p.aug) == cell else 1
        cell, p.rank = (p.preset, p.aug), rank
    rows = [row for axis in axes for row in _axis_rows(axis, kinds.get(axis), records)]
    return SearchTables(parent_params.get(SEARCHER_PARAM, "?"), parent_params.get(NUM_SAMPLES_PARAM, "?"), axes,
                        points, rows, top)


def _param(axis: str) -> str:
    return search_param(axis)


def _axis_rows(axis: str, kind: str | None, records: list[TrialRecord]) -> list[AxisRow]:
    """Per preset and config: one row per value (a list or choice axis, or few values), else
    equal-count bins of the trials sorted by value."""
    out = []
    cells: dict[tuple[str, str], list[TrialRecord]] = {}
    for r in records:
        if _param(axis) in r.params:
            cells.setdefault((r.preset, r.aug), []).append(r)
    for (preset, aug), rs in sorted(cells.items()):
        keyed = sorted(rs, key=lambda r: (_number(r.params[_param(axis)]) is None,
                                          _number(r.params[_param(axis)]) or 0.0, r.params[_param(axis)]))
        distinct = list(dict.fromkeys(r.params[_param(axis)] for r in keyed))
        if kind in DISCRETE or len(distinct) <= BINS or any(_number(v) is None for v in distinct):
            groups = [(v, [r for r in keyed if r.params[_param(axis)] == v]) for v in distinct]
        else:
            size = len(keyed) / BINS
            groups = []
            for b in range(BINS):
                part = keyed[round(b * size):round((b + 1) * size)]
                if part:
                    lo, hi = (_number(part[0].params[_param(axis)]), _number(part[-1].params[_param(axis)]))
                    groups.append((f"{lo:.3g}–{hi:.3g}", part))
        for label, part in groups:
            numbers = [_number(r.params[_param(axis)]) for r in part]
            known = [n for n in numbers if n is not None]
            out.append(AxisRow(axis, preset, aug, label, min(known) if known else None,
                               max(known) if known else None, len(part),
                               _mean([seed_accuracy(r, "efficient") for r in part]),
                               _mean([seed_accuracy(r, "accurate") for r in part])))
    return out


def _num(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.2f}"


def _shown(value: str) -> str:
    """A searched value as the tables show it: a drawn number to 3 significant digits
    (``0.0423012...`` -> ``0.0423``; the exports keep every digit), a short one (a listed
    ``1.0``) and anything else as logged."""
    number = _number(value)
    return value if number is None or len(value) <= 7 else f"{number:.3g}"


def _acc(s: Stat) -> str:
    if s.na:
        return "n/a"
    return "-" if math.isnan(s.mean) else (_num(s.mean) if s.seeds < 2 else f"{_num(s.mean)} ± {_num(s.std)}")


def _ci(s: Stat) -> str:
    return "n/a" if s.na else ("-" if math.isnan(s.ci_low) else f"{s.ci_low:.2f}–{s.ci_high:.2f}")


def format_search_markdown(t: SearchTables, *, title: str = "") -> str:
    """The best points per preset and config, then one acc1 table per searched axis."""
    parts = [f"# {title}"] if title else []
    parts.append(f"A search ({t.searcher} searcher, {t.num_samples} sample(s) per grid point) over "
                 f"{', '.join(t.axes) or 'no logged axis'}: {len(t.points)} points. Accuracies in percent; "
                 "`a ± s`: mean ± std over seeds; 95% CI: exact (Clopper-Pearson) over the val videos. Ranked by "
                 "efficient-mode top-1 within each preset and config; accurate `-`: a trial stopped early.")
    parts.append(f"## Best points (top {t.top} per preset and config)")
    modes = [f"acc1/acc5 {m}" for m in MODES] + [f"95% CI {m}" for m in MODES]
    header = ["model", "config", "rank", *t.axes, "seeds", *modes]
    rows = [[p.preset, p.aug, str(p.rank), *(_shown(p.values[a]) for a in t.axes), " ".join(map(str, p.seeds)),
             *(f"{_acc(p.stats[mode_metric(m, ACC1)])} / {_acc(p.stats[mode_metric(m, ACC5)])}" for m in MODES),
             *(f"{_ci(p.stats[mode_metric(m, ACC1)])} / {_ci(p.stats[mode_metric(m, ACC5)])}" for m in MODES)]
            for p in t.best]
    parts.append("\n".join(markdown_table(header, rows, "llr" + "l" * len(t.axes) + "l" + "r" * len(modes))))
    for axis in t.axes:
        mine = [r for r in t.axis_rows if r.axis == axis]
        parts.append(f"## acc1 against {axis}")
        parts.append("Mean top-1 over the trials at each value (seeds and samples), or in each bin of a sampled "
                     "range (equal trial counts, sorted by value).")
        body = [[r.preset, r.aug, _shown(r.value), str(r.trials), _num(r.efficient_acc1), _num(r.accurate_acc1)]
                for r in mine]
        parts.append("\n".join(markdown_table(["model", "config", axis, "trials", "acc1 efficient", "acc1 accurate"],
                                              body, "lllrrr")))
    return "\n\n".join(parts) + "\n"


def _point_row(t: SearchTables, p: Point) -> dict:
    row = {"model": p.preset, "config": p.aug, "rank": p.rank, "best": 0 < p.rank <= t.top,
           **{_param(a): p.values[a] for a in t.axes},
           "seeds": " ".join(map(str, p.seeds))}
    for key, s in p.stats.items():
        row.update({key: s.mean, f"{key}_std": s.std, f"{key}_ci_low": s.ci_low, f"{key}_ci_high": s.ci_high})
    return row


def search_csv(t: SearchTables) -> str:
    """One row per point (its rank, values and the figures of both modes); the axis tables are in
    the json and the markdown."""
    return csv_text([_point_row(t, p) for p in t.points])


def search_json(t: SearchTables, *, meta: dict | None = None) -> str:
    return json.dumps(clean_for_json({**(meta or {}), "searcher": t.searcher, "num_samples": t.num_samples, "axes": t.axes,
                              "top": t.top, "best": [asdict(p) for p in t.best],
                              "points": [asdict(p) for p in t.points],
                              "axis_tables": {a: [asdict(r) for r in t.axis_rows if r.axis == a] for a in t.axes}}),
                      indent=2) + "\n"


def plot_axes(t: SearchTables, records: list[TrialRecord], path: Path, *, title: str = "") -> list[Path]:
    """One PNG per axis beside ``path`` (``bars-training.lr.png``): each trial's efficient top-1
    against its value, one series per preset and config."""
    from matplotlib.figure import Figure  # object API: no pyplot, no global backend state

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for axis in t.axes:
        fig = Figure(figsize=(6.0, 4.0), layout="constrained")
        ax = fig.subplots()
        kind = {}
        for r in records:
            value = r.params.get(_param(axis))
            acc = seed_accuracy(r, "efficient")
            if value is None or acc is None:
                continue
            kind.setdefault(f"{r.preset} {r.aug}", []).append((value, acc))
        for label, pairs in kind.items():
            numeric = all(_number(v) is not None for v, _ in pairs)
            xs = [_number(v) if numeric else v for v, _ in pairs]
            ax.plot(xs, [a for _, a in pairs], "o", label=label, alpha=0.8)
        ax.set_xlabel(axis)
        ax.set_ylabel("efficient top-1 (%)")
        ax.grid(alpha=0.3)
        if kind:
            ax.legend(fontsize=7)
        if title:
            ax.set_title(title, fontsize=9)
        target = path.with_name(f"{path.stem}-{axis}{path.suffix or '.png'}")
        fig.savefig(target, dpi=110)
        out.append(target)
    return out
