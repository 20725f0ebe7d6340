"""Tables from synthetic prediction tables: formats, seeds as mean ± std, paired comparisons."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from k400ray.engine.metrics import Predictions
from k400ray.report.exports import format_csv, format_json
from k400ray.report.sheet import format_markdown
from k400ray.report.tables import TrialRecord, build_tables

N = 400  # val videos


def _preds(accuracy: float, seed: int, classes: int = 10) -> Predictions:
    """N videos; the first ``accuracy`` fraction (shuffled by seed) right at top-1, all right at top-5."""
    rng = np.random.default_rng(seed)
    labels = np.arange(N) % classes
    right = np.zeros(N, bool)
    right[rng.permutation(N)[: round(accuracy * N)]] = True
    top1 = np.where(right, labels, (labels + 1) % classes)
    top = np.stack([top1, *[(top1 + j) % classes for j in (1, 2, 3)], labels], axis=1)
    top[right, 4] = (labels[right] + 4) % classes
    return Predictions([f"vid{i:04d}" for i in range(N)], labels, top, np.ones((N, 5), np.float32))


def _record(preset, aug, seed, eff, acc, family) -> TrialRecord:
    preds = {"efficient": _preds(eff, seed), "accurate": _preds(acc, seed + 100)}
    metrics = {f"{m}_acc{k}": (100.0 * v if k == 1 else 100.0) for m, v in (("efficient", eff), ("accurate", acc))
               for k in (1, 5)}
    return TrialRecord(preset, aug, seed, metrics, preds, {"mixup_alpha": "1.0", "cutmix_alpha": "1.0"}, family)


@pytest.fixture(scope="module")
def tables():
    records = [
        _record("tsn_r50_1x1x8", "default", 0, 0.60, 0.65, "tsn"),
        _record("tsn_r50_1x1x8", "default", 1, 0.70, 0.75, "tsn"),
        _record("tsn_r50_1x1x8", "mixup", 0, 0.60, 0.65, "tsn"),
        _record("tsn_r50_1x1x8", "mixup", 1, 0.70, 0.75, "tsn"),
        _record("tsm_r50_1x1x8", "default", 0, 0.50, 0.50, "tsm"),
        _record("tsm_r50_1x1x8", "cutmix", 0, 0.90, 0.95, "tsm"),
        _record("i3d_r50_32x2x1", "randaugment", 0, 0.40, 0.45, "i3d"),
    ]
    return build_tables(records)


def test_seeds_pool_into_mean_and_std(tables):
    cells, _ = tables
    default = next(c for c in cells if (c.preset, c.aug) == ("tsn_r50_1x1x8", "default"))
    s = default.stats["efficient_acc1"]
    assert default.seeds == [0, 1] and s.seeds == 2
    assert s.mean == pytest.approx(65.0) and s.std == pytest.approx(7.0711, abs=1e-3)
    assert s.ci_low <= s.mean <= s.ci_high and s.videos == N
    md = format_markdown(cells, [])
    assert "| tsn_r50_1x1x8 | default config (2 seeds) | 65.00 ± 7.07 / 100.00 ± 0.00 |" in md


def test_paired_comparisons(tables):
    cells, comparisons = tables
    same = [x for x in comparisons if (x.preset, x.aug) == ("tsn_r50_1x1x8", "mixup")]
    assert {x.mode for x in same} == {"efficient", "accurate"}
    for x in same:  # identical predictions, seed by seed
        assert x.delta == 0 and x.p_value == 1.0 and x.seeds == [0, 1] and x.videos == N
    big = next(x for x in comparisons if (x.preset, x.aug, x.mode) == ("tsm_r50_1x1x8", "cutmix", "efficient"))
    assert big.delta == pytest.approx(40.0) and big.p_value < 1e-10 and big.ci_low > 30
    assert all(x.preset != "i3d_r50_32x2x1" for x in comparisons)  # no default cell to compare with


def test_markdown_has_one_table_per_family_like_the_sheet(tables):
    cells, comparisons = tables
    md = format_markdown(cells, comparisons, title="demo")
    assert md.index("## TSN") < md.index("## TSM") < md.index("## I3D")
    assert "| model | configs | acc1/acc5 efficient | acc1/acc5 accurate | 95% CI efficient | 95% CI accurate |" in md
    assert "| tsn_r50_1x1x8 | mixup alpha=1.0 (2 seeds) |" in md
    assert "| tsm_r50_1x1x8 | cutmix alpha=1.0 | 400 | +40.00 [" in md
    assert "| i3d_r50_32x2x1 | randaugment | 40.00 / 100.00 | 45.00 / 100.00 |" in md


def test_csv_and_json(tables):
    cells, comparisons = tables
    rows = list(csv.DictReader(io.StringIO(format_csv(cells, comparisons))))
    assert len(rows) == len(cells) == 5
    cut = next(r for r in rows if r["aug"] == "cutmix")
    assert float(cut["efficient_acc1"]) == 90.0 and float(cut["efficient_delta_acc1"]) == pytest.approx(40.0)
    assert cut["configs"] == "cutmix alpha=1.0" and float(cut["efficient_p_value"]) < 1e-10
    assert next(r for r in rows if r["aug"] == "default")["efficient_delta_acc1"] == ""
    data = json.loads(format_json(cells, comparisons, meta={"experiment": "x"}))
    assert data["experiment"] == "x" and len(data["cells"]) == 5
    assert data["cells"][-1]["stats"]["efficient_acc1"]["std"] is None  # one seed: no std (NaN -> null)
    assert len(data["comparisons_vs_default"]) == 4


def test_gluoncv_rows_like_the_sheet():
    """The sheet's GluonCV rows: tsn_r50_1x1x7 has only its GluonCV cell (nothing to compare
    with); I3D has GluonCV and default, GluonCV listed first and compared with default."""
    records = [
        _record("tsn_r50_1x1x7", "gluoncv", 0, 0.60, 0.65, "tsn"),
        _record("i3d_r50_32x2x1", "default", 0, 0.50, 0.55, "i3d"),
        _record("i3d_r50_32x2x1", "gluoncv", 0, 0.55, 0.60, "i3d"),
    ]
    cells, comparisons = build_tables(records)
    assert [(c.preset, c.aug, c.configs) for c in cells] == [
        ("tsn_r50_1x1x7", "gluoncv", "GluonCV"), ("i3d_r50_32x2x1", "gluoncv", "GluonCV"),
        ("i3d_r50_32x2x1", "default", "default config")]
    assert {(x.kind, x.preset, x.aug, x.reference) for x in comparisons} == {
        ("config", "i3d_r50_32x2x1", "gluoncv", "default"),
        ("model", "i3d_r50_32x2x1", "gluoncv", "tsn_r50_1x1x7")}  # the only TSN preset is the baseline
    md = format_markdown(cells, comparisons)
    assert "| tsn_r50_1x1x7 | GluonCV | 60.00 / 100.00 |" in md and "| i3d_r50_32x2x1 | GluonCV | 400 | +5.00 [" in md
    only_gluoncv = build_tables(records[:1])
    assert only_gluoncv[1] == [] and "GluonCV" in format_markdown(*only_gluoncv)


def test_the_sheet_says_which_weights_accurate_mode_evaluated():
    from k400ray.report.tables import accurate_source

    def rec(seed, last, used, choice=None):
        params = {"recipe.accurate_checkpoint": choice} if choice else {}
        return TrialRecord("i3d_r50_32x2x1", "default", seed, {"epoch": last, "accurate_epoch": used}, {}, params, "i3d")

    assert accurate_source([rec(0, 100, 87, "best"), rec(1, 100, 92, "best")]) == "best (epochs 87, 92)"
    assert accurate_source([rec(0, 100, 100, "last")]) == "last (epoch 100)"
    old = TrialRecord("i3d_r50_32x2x1", "default", 0, {"epoch": 100}, {}, {}, "i3d")  # before best checkpoints
    assert accurate_source([old]) == "last (epoch 100)"
    cells, _ = build_tables([rec(0, 100, 87, "best")])
    assert cells[0].accurate_from == "best (epoch 87)"
    assert "| best (epoch 87) |" in format_markdown(cells, [])


def test_top_k_of_k_or_fewer_classes_is_not_a_figure():
    """With 4 classes every video's label is among the top 5: acc5 is always 100, so the sheet
    prints n/a for it and its interval, not 100.00 with a 100.00-100.00 CI."""
    from k400ray.report.tables import num_classes

    labels = np.arange(48) % 4
    top = np.stack([labels, (labels + 1) % 4, (labels + 2) % 4, (labels + 3) % 4, -np.ones(48, int)], axis=1)
    preds = Predictions([f"v{i}" for i in range(48)], labels, top, np.ones((48, 5), np.float32))
    records = [TrialRecord("tsn_r50_1x1x8", "default", 0, {}, {"efficient": preds, "accurate": preds}, {}, "tsn")]
    assert num_classes(records) == 4  # from the -1 padding of the top-5 ...
    records[0].params["num_classes"] = "4"  # ... or the trial's param
    cells, _ = build_tables(records)
    acc5, acc1 = cells[0].stats["efficient_acc5"], cells[0].stats["efficient_acc1"]
    assert acc5.na == "top-5 of 4 classes is always right" and math.isnan(acc5.mean) and math.isnan(acc5.ci_low)
    assert acc1.mean == 100.0 and acc1.ci_high == 100.0 and acc1.ci_low == pytest.approx(92.60, abs=0.01)
    md = format_markdown(cells, [])
    assert "| tsn_r50_1x1x8 | default config | 100.00 / n/a | 100.00 / n/a | 92.60–100.00 / n/a |" in md
    assert "n/a: top-5 of 4 classes is always right" in md
    row = next(csv.DictReader(io.StringIO(format_csv(cells, []))))
    assert row["efficient_acc5"] == "" and row["efficient_acc5_na"] == "top-5 of 4 classes is always right"
    assert json.loads(format_json(cells, []))["cells"][0]["stats"]["efficient_acc5"]["mean"] is None
    # 5 classes: top-5 is still always right; 6: it is a figure
    records[0].params["num_classes"] = "5"
    assert build_tables(records)[0][0].stats["accurate_acc5"].na
    records[0].params["num_classes"] = "6"
    assert not build_tables(records)[0][0].stats["accurate_acc5"].na
