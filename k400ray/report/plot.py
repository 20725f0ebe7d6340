"""Grouped bars: preset groups, one bar per config, one panel per mode, top-1 with its
95% Clopper-Pearson interval as the error bar."""

from __future__ import annotations

import math
from pathlib import Path

from k400ray.contracts import ACC1, mode_metric
from k400ray.report.tables import MODES, Cell


def plot_cells(cells: list[Cell], path: Path, *, title: str = "") -> Path:
    from matplotlib.figure import Figure  # object API: no pyplot, no global backend state

    presets = list(dict.fromkeys(c.preset for c in cells))
    augs = list(dict.fromkeys(c.aug for c in cells))
    by = {(c.preset, c.aug): c for c in cells}
    width = 0.8 / max(len(augs), 1)
    fig = Figure(figsize=(max(6.0, 1.6 * len(presets) * len(MODES)), 4.5), layout="constrained")
    axes = fig.subplots(1, len(MODES), sharey=True, squeeze=False)[0]
    for ax, mode in zip(axes, MODES):
        for j, aug in enumerate(augs):
            xs, heights, err = [], [], [[], []]
            for i, preset in enumerate(presets):
                cell = by.get((preset, aug))
                if cell is None:
                    continue
                s = cell.stats[mode_metric(mode, ACC1)]
                if math.isnan(s.mean):
                    continue
                xs.append(i + (j - (len(augs) - 1) / 2) * width)
                heights.append(s.mean)
                ok = not math.isnan(s.ci_low)
                err[0].append(max(s.mean - s.ci_low, 0) if ok else 0)
                err[1].append(max(s.ci_high - s.mean, 0) if ok else 0)
            ax.bar(xs, heights, width, yerr=err, capsize=3, label=aug)
        ax.set_xticks(range(len(presets)), presets, rotation=15, fontsize=8)
        ax.set_title(f"{mode} mode")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, title="config")
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
