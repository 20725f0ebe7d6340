"""The sheet as people read it: a legend, one table per model family with its "vs default"
table, and the "Models vs BASELINE" table; rendered as markdown (``k400ray report``, MLflow's run
description, ``report.md``) or as aligned text that fits a terminal (``k400ray demo``).

Both renderings come from the same blocks (:func:`sheet_blocks`): headings and legend lines as
markdown text, tables as :class:`Table` with their cells already written. A column that is
empty for this sheet (``-`` in every row: the seed statistics of a one-seed grid, intervals
without predictions) is left out of both. Numbers are computed in :mod:`k400ray.report.tables`.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field

from k400ray.contracts import ACC1, ACC5, mode_metric
from k400ray.report import stats
from k400ray.report.exports import baseline_of
from k400ray.report.tables import DEFAULT, MODES, NO_COMMON_SEED, Cell, Comparison, Stat
from k400ray.text_table import drop_empty_columns, fit_columns, markdown_table, text_table

FAMILY_TITLES = {"tsn": "TSN", "tsm": "TSM", "i3d": "I3D"}


@dataclass
class Table:
    """One table of the sheet: cells as printed, ``align`` one letter per column (l, c, r), the
    columns a narrow terminal leaves out first (``drop_order``, least needed first; a tuple goes
    together) and the columns' names where the header alone is ambiguous (``p`` of which mode)."""

    header: list[str]
    rows: list[list[str]]
    align: str
    drop_order: tuple = ()
    names: list[str] = field(default_factory=list)

    def name(self, i: int) -> str:
        return self.names[i] if self.names else self.header[i]

    def without_empty_columns(self) -> "Table":
        kept = drop_empty_columns(self.header, self.rows, keep=2)
        where = {old: new for new, old in enumerate(kept)}
        order = []
        for step in self.drop_order:
            moved = tuple(where[i] for i in ((step,) if isinstance(step, int) else step) if i in where)
            if moved:
                order.append(moved)
        return Table([self.header[i] for i in kept], [[r[i] for i in kept] for r in self.rows],
                     "".join(self.align[i] for i in kept), tuple(order), [self.name(i) for i in kept])


def _num(x: float, signed: bool = False) -> str:
    if x is None or math.isnan(x):
        return "-"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def _acc(s: Stat) -> str:
    if s.na:
        return "n/a"
    if math.isnan(s.mean):
        return "-"
    return _num(s.mean) if s.seeds < 2 else f"{_num(s.mean)} ± {_num(s.std)}"


def _ci(s: Stat) -> str:
    if s.na:
        return "n/a"
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


def _cell_table(cells: list[Cell]) -> Table:
    rows = []
    for c in cells:
        s = c.stats
        configs = c.configs + (f" ({len(c.seeds)} seeds)" if len(c.seeds) > 1 else "")
        rows.append([c.preset, configs,
                     *(f"{_acc(s[mode_metric(m, ACC1)])} / {_acc(s[mode_metric(m, ACC5)])}" for m in MODES),
                     *(f"{_ci(s[mode_metric(m, ACC1)])} / {_ci(s[mode_metric(m, ACC5)])}" for m in MODES),
                     c.accurate_from or "-"])
    header = ["model", "configs", *(f"acc1/acc5 {m}" for m in MODES), *(f"95% CI {m}" for m in MODES), "accurate from"]
    return Table(header, rows, "ll" + "r" * (len(header) - 3) + "l", drop_order=(6, (4, 5))).without_empty_columns()


def _compared_label(x: Comparison, seeds: dict[tuple[str, str], list[int]]) -> str:
    """The config compared, and the seeds it was compared on when not every seed of both cells."""
    reference = (x.preset, DEFAULT) if x.kind == "config" else (x.reference, x.aug)
    if x.seeds and (x.seeds != seeds.get((x.preset, x.aug)) or x.seeds != seeds.get(reference)):
        return f"{x.configs} (seeds {', '.join(map(str, x.seeds))})"
    return x.configs


def _comparison_table(comparisons: list[Comparison], what: str, seeds: dict[tuple[str, str], list[int]]) -> Table:
    """One row per (preset, config), both modes side by side; ``what`` heads the configs column
    (``vs default``: the config compared; ``configs``: the config both ran)."""
    header = ["model", what, "videos"]
    for mode in MODES:
        header += [f"Δacc1 {mode} [95% CI]", "p", "p Holm", f"Δ per seed {mode} (p)"]
    names = [n if n not in ("p", "p Holm") else f"{n} {MODES[(i - 3) // 4]}" for i, n in enumerate(header)]
    keyed = {(x.preset, x.aug, x.mode): x for x in comparisons}
    rows = []
    for preset, aug in dict.fromkeys((x.preset, x.aug) for x in comparisons):
        mine = [keyed[(preset, aug, m)] for m in MODES if (preset, aug, m) in keyed]
        videos = " / ".join(dict.fromkeys(str(x.videos) for x in mine if not x.note)) or "-"
        row = [preset, _compared_label(mine[0], seeds), videos]
        for mode in MODES:
            x = keyed.get((preset, aug, mode))
            if x is None or x.note:
                row += [x.note if x else "-", "-", "-", "-"]
            else:
                row += [f"{_num(x.delta, True)} [{_num(x.ci_low, True)}, {_num(x.ci_high, True)}]", _p(x.p_value),
                        _p_holm(x), _per_seed(x)]
        rows.append(row)
    # a narrow terminal keeps the accurate mode's delta and p Holm longest: the sheet's figure
    return Table(header, rows, "llr" + "rrrr" * len(MODES), drop_order=((6, 10), (4, 8), 2, (3, 5)),
                 names=names).without_empty_columns()


def _model_section(cells: list[Cell], comparisons: list[Comparison], baseline: str | None, source: str,
                   seeds: dict[tuple[str, str], list[int]]) -> list:
    models = [x for x in comparisons if x.kind == "model"]
    if models:
        why = f" ({source})" if source else ""
        return [f"## Models vs {baseline}",
                f"Each other model minus the baseline {baseline}{why}, under the same config, on the videos both "
                "predicted and the seeds both ran.", _comparison_table(models, "configs", seeds)]
    if len({c.preset for c in cells}) < 2:
        return []
    if baseline is None:
        return ["No model-vs-model comparison: no TSN preset in the grid to compare with; choose a baseline with "
                "`report.baseline_model` in the spec or `k400ray report --baseline MODEL`."]
    if baseline not in {c.preset for c in cells}:
        return [f"No model-vs-model comparison: the baseline {baseline} has no finished trial."]
    return [f"No model-vs-model comparison: the baseline {baseline} shares no config with another model among "
            "the finished trials."]


def _legend(cells: list[Cell], comparisons: list[Comparison]) -> str:
    tested = sum(not math.isnan(x.p_value) for x in comparisons)
    na = next((s.na for c in cells for s in c.stats.values() if s.na), "")
    lines = [
        "- Accuracies in percent; `a ± s`: mean ± std over seeds (n seeds in the configs column)"
        + (f"; n/a: {na}" if na else "") + ". 95% CI: exact (Clopper-Pearson) over the val videos, a video "
        "counting as the share of seeds that got it right. Efficient figures: the last epoch; accurate from: the "
        "weights accurate mode evaluated (the best efficient-mode epoch, or the last).",
        "- Δ vs default, Δ vs the baseline model: top-1 points on the videos both predicted and the seeds both ran "
        "(matched by seed number; `videos`: how many), 95% CI: Newcombe's score interval for paired proportions; "
        "p: exact sign-flip test on the per-video differences averaged over those seeds (McNemar's exact test with "
        "one seed), raw.",
        f"- p Holm: adjusted over all {tested} tests of this sheet (every table, both modes); `*`: p Holm < "
        f"{stats.ALPHA:g}, the only significance call (a raw p below {stats.ALPHA:g} is not one). Every 95% "
        "interval is per comparison, not Holm-adjusted.",
    ]
    if any(x.seed_pairs >= 2 for x in comparisons):
        lines.append("- Δ per seed: mean ± std of the per-seed Δ over the seeds both sides ran, and the p of a "
                     "paired t-test whose unit is the seed (raw, not in the Holm family); `-` with fewer than two "
                     "such seeds.")
    if any(x.note == NO_COMMON_SEED for x in comparisons):
        lines.append(f"- {NO_COMMON_SEED}: the two cells ran different seeds; runs are paired by seed number "
                     "only, so there is no paired comparison.")
    return "\n".join(lines)


def sheet_blocks(cells: list[Cell], comparisons: list[Comparison], *, title: str = "", baseline: str | None = None,
                 baseline_source: str = "") -> list:
    """The sheet, top to bottom: markdown text blocks and :class:`Table` s."""
    seeds = {(c.preset, c.aug): c.seeds for c in cells}
    blocks: list = [f"# {title}"] if title else []
    blocks.append(_legend(cells, comparisons))
    for family in _families(cells):
        title = FAMILY_TITLES.get(family, family.upper())
        blocks += [f"## {title}", _cell_table([c for c in cells if c.family == family])]
        mine = [x for x in comparisons if x.family == family and x.kind == "config"]
        if mine:
            blocks.append(_comparison_table(mine, "vs default", seeds))
    blocks += _model_section(cells, comparisons, baseline or baseline_of(cells, comparisons), baseline_source, seeds)
    return blocks


def format_markdown(cells: list[Cell], comparisons: list[Comparison], **kwargs) -> str:
    """The sheet as markdown, blocks separated by blank lines (MLflow's description renderer
    needs a table to stand alone; :func:`k400ray.text_table.markdown_table` says what else)."""
    parts = []
    for block in sheet_blocks(cells, comparisons, **kwargs):
        parts.append("\n".join(markdown_table(block.header, block.rows, block.align))
                     if isinstance(block, Table) else block)
    return "\n\n".join(parts) + "\n"


def format_terminal(cells: list[Cell], comparisons: list[Comparison], *, width: int, whole: str = "",
                    **kwargs) -> str:
    """The sheet as aligned text no wider than ``width`` where it can be: tables leave out their
    least needed columns first (accurate from, the intervals, the seed statistics, raw p-values,
    videos, then the efficient mode's delta: the accurate mode's is the sheet's figure); the last
    line names what was left out and ``whole``, where the whole sheet is."""
    lines, left_out = [], []
    for block in sheet_blocks(cells, comparisons, **kwargs):
        if isinstance(block, Table):
            kept = fit_columns(block.header, block.rows, width, block.drop_order)
            left_out += [block.name(i) for i in range(len(block.header)) if i not in kept]
            right = {j for j, i in enumerate(kept) if block.align[i] == "r"}
            lines += text_table([block.header[i] for i in kept], [[r[i] for i in kept] for r in block.rows], right)
        elif block.startswith("#"):
            lines.append(block.lstrip("#").strip())
        else:
            for paragraph in block.splitlines():
                indent = "  " if paragraph.startswith("- ") else ""
                lines += textwrap.wrap(paragraph, width, subsequent_indent=indent) or [""]
        lines.append("")
    if left_out:
        lines += textwrap.wrap(f"Left out to fit {width} columns: {', '.join(dict.fromkeys(left_out))}.", width)
    if whole:
        lines.append(f"The whole sheet: {whole}" if left_out else f"The sheet as markdown: {whole}")
    return "\n".join(lines).rstrip() + "\n"
