"""The sheet on a terminal: what fits the width, columns empty for this sheet left out, and a
pointer to the whole markdown sheet for the rest."""

from __future__ import annotations

import numpy as np

from k400ray.engine.metrics import Predictions
from k400ray.report.sheet import format_markdown, format_terminal
from k400ray.report.tables import TrialRecord, build_tables

FAMILY = {"tsn_r50_1x1x8": "tsn", "tsm_r50_1x1x8": "tsm", "i3d_r50_32x2x1": "i3d"}


def _demo_like_sheet():
    """The demo's shape: 3 models x 4 configs x one seed, 48 val videos of 4 classes."""
    rng = np.random.default_rng(0)
    labels = np.arange(48) % 4
    records = []
    for preset, accuracy in (("tsn_r50_1x1x8", 0.5), ("tsm_r50_1x1x8", 0.97), ("i3d_r50_32x2x1", 0.85)):
        for aug in ("default", "randaugment", "mixup", "cutmix"):
            preds = {}
            for mode in ("efficient", "accurate"):
                top1 = np.where(rng.random(48) < accuracy, labels, (labels + 1) % 4)
                top = np.stack([top1, (top1 + 1) % 4, (top1 + 2) % 4, (top1 + 3) % 4, -np.ones(48, int)], axis=1)
                preds[mode] = Predictions([f"v{i:02d}" for i in range(48)], labels, top, np.ones((48, 5), np.float32))
            records.append(TrialRecord(preset, aug, 0, {"epoch": 4, "accurate_epoch": 4}, preds,
                                       {"num_classes": "4", "mixup_alpha": "1.0", "cutmix_alpha": "1.0"},
                                       FAMILY[preset]))
    return build_tables(records)


def test_the_terminal_sheet_fits_and_points_to_the_whole_one():
    cells, comparisons = _demo_like_sheet()
    for width in (80, 120):
        text = format_terminal(cells, comparisons, width=width, title="demo", whole="k400ray-demo/report.md")
        lines = text.splitlines()
        assert max(map(len, lines)) <= width
        assert "Δ per seed" not in text and " -  " not in text  # one seed: no seed columns, no all-"-" column
        assert "Δacc1 accurate [95% CI]" in text and "p Holm" in text  # the sheet's figure stays
        assert text.rstrip().endswith("The whole sheet: k400ray-demo/report.md")
    narrow = format_terminal(cells, comparisons, width=80, whole="report.md")
    assert "Left out to fit 80 columns: 95% CI efficient, 95% CI accurate, accurate from," in narrow
    wide = format_terminal(cells, comparisons, width=400, whole="report.md")
    assert "Left out" not in wide and wide.rstrip().endswith("The sheet as markdown: report.md")
    # markdown keeps every column that has a figure
    md = format_markdown(cells, comparisons)
    assert "| accurate from |" in md and "Δ per seed" not in md
