"""The illustrative sheet of docs/tracking.md ("How to read the sheet") is built here, by the
report's own functions, from hand-made predictions; the test keeps the docs in step with the
code. Print it with ``python tests/report/test_docs_example.py``.

The records mimic the demo's design (temporal models far above frame-averaging TSN), with two
seeds, and one augmentation effect whose raw p is below 0.05 but whose Holm p is not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from k400ray.engine.metrics import Predictions
from k400ray.report.sheet import format_markdown
from k400ray.report.tables import TrialRecord, build_tables

N, CLASSES = 200, 10
DOC = Path(__file__).resolve().parents[2] / "docs" / "tracking.md"
# preset -> (family, top-1 right videos per seed under default)
MODELS = {"tsn_r50_1x1x8": ("tsn", (100, 103)), "tsm_r50_1x1x8": ("tsm", (178, 180)),
          "i3d_r50_32x2x1": ("i3d", (176, 172))}
# (preset, aug) -> per seed: (videos turned right, turned wrong) vs default of the same seed
EFFECTS = {("tsn_r50_1x1x8", "mixup"): ((6, 1), (5, 1)), ("tsm_r50_1x1x8", "mixup"): ((2, 2), (3, 2)),
           ("i3d_r50_32x2x1", "mixup"): ((3, 5), (2, 5))}


def _predictions(right: np.ndarray) -> Predictions:
    labels = np.arange(N) % CLASSES
    top1 = np.where(right, labels, (labels + 1) % CLASSES)
    top = np.stack([top1, *[(top1 + j) % CLASSES for j in (1, 2, 3)], labels], axis=1)
    top[right, 4] = (labels[right] + 4) % CLASSES
    top[~right & (np.arange(N) % 5 == 0), 4] = (labels[~right & (np.arange(N) % 5 == 0)] + 5) % CLASSES
    return Predictions([f"v{i:03d}" for i in range(N)], labels, top, np.ones((N, 5), np.float32))


def _flip(right: np.ndarray, up: int, down: int, rng) -> np.ndarray:
    out = right.copy()
    out[rng.choice(np.flatnonzero(~right), up, replace=False)] = True
    out[rng.choice(np.flatnonzero(right), down, replace=False)] = False
    return out


def example_records() -> list[TrialRecord]:
    """Videos ranked by difficulty once; a model of k right videos gets the k easiest, then a
    few seed-dependent swaps. Accurate mode: 3 more right than efficient."""
    rng = np.random.default_rng(2024)
    rank = rng.permutation(N)
    records = []
    for preset, (family, ks) in MODELS.items():
        for seed, k in enumerate(ks):
            default = _flip(rank < k, 4, 4, rng)
            cells = {"default": default}
            if (preset, "mixup") in EFFECTS:
                cells["mixup"] = _flip(default, *EFFECTS[(preset, "mixup")][seed], rng)
            for aug, right in cells.items():
                preds = {"efficient": _predictions(right), "accurate": _predictions(_flip(right, 3, 0, rng))}
                records.append(TrialRecord(preset, aug, seed, {"epoch": 30, "accurate_epoch": 30}, preds,
                                           {"mixup_alpha": "1.0", "recipe.accurate_checkpoint": "last"}, family))
    return records


def example_sheet() -> str:
    cells, comparisons = build_tables(example_records())
    return format_markdown(cells, comparisons, title="example: 12 hand-made trials (illustrative)",
                           baseline_source="default: the first TSN preset of the grid")


def test_the_docs_show_the_sheet_the_code_prints():
    text = DOC.read_text(encoding="utf-8")
    assert "```markdown\n" + example_sheet() + "```" in text, (
        "docs/tracking.md's example sheet is stale: paste `python tests/report/test_docs_example.py`")


if __name__ == "__main__":
    print(example_sheet(), end="")
