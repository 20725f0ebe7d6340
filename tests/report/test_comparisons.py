"""Model-vs-model rows, matched seeds, the seed-level test and Holm's adjustment across a sheet,
on hand-made predictions whose statistics are known in advance."""

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
from k400ray.report.tables import TrialRecord, baseline_model, build_tables

FAMILY = {"tsn_r50_1x1x8": "tsn", "tsn_r50_1x1x7": "tsn", "tsm_r50_1x1x8": "tsm", "i3d_r50_32x2x1": "i3d"}


def _preds(right, ids=None) -> Predictions:
    """One row per video; ``right[i]``: top-1 right on video ``ids[i]`` (default ``v000``...)."""
    right = np.asarray(right, bool)
    ids = ids or [f"v{i:03d}" for i in range(len(right))]
    labels = np.arange(len(right)) % 5
    top1 = np.where(right, labels, (labels + 1) % 5)
    top = np.stack([top1, *[(top1 + j) % 5 for j in (1, 2, 3, 4)]], axis=1)
    return Predictions(list(ids), labels, top, np.ones((len(right), 5), np.float32))


def _first(k: int, n: int = 100) -> np.ndarray:
    """Right on the first ``k`` of ``n`` videos."""
    return np.arange(n) < k


def _record(preset, aug, seed, right, ids=None) -> TrialRecord:
    p = _preds(right, ids)
    acc = 100.0 * float(np.mean(right))
    return TrialRecord(preset, aug, seed, {"efficient_acc1": acc, "accurate_acc1": acc},
                       {"efficient": p, "accurate": p}, {}, FAMILY[preset])


def _one(comparisons, **match):
    (x,) = [x for x in comparisons if all(getattr(x, k) == v for k, v in match.items())]
    return x


def test_model_row_tsm_right_on_90_tsn_on_50_of_the_same_videos():
    # TSN is right on videos 0-49, TSM on 0-89: 40 videos right only with TSM, none only with
    # TSN. Δ = 90% - 50% = +40 points; McNemar: min(b, c) = 0 of 40 discordant, p = 2 * 0.5^40.
    records = [_record("tsn_r50_1x1x8", "default", 0, _first(50)), _record("tsm_r50_1x1x8", "default", 0, _first(90))]
    _, comparisons = build_tables(records)
    x = _one(comparisons, kind="model", mode="efficient")
    assert (x.preset, x.reference, x.aug, x.family) == ("tsm_r50_1x1x8", "tsn_r50_1x1x8", "default", "tsm")
    assert x.delta == pytest.approx(40.0) and x.videos == 100 and x.seeds == [0]
    assert (x.only_this, x.only_reference) == (40, 0)
    assert x.p_value == pytest.approx(2 * 0.5 ** 40) and 25 < x.ci_low < 40 < x.ci_high < 55
    # two comparisons in the sheet (efficient, accurate): Holm doubles the smaller, then the
    # running maximum gives both the same value
    assert x.p_holm == pytest.approx(2 * x.p_value) and x.significant
    assert x.seed_pairs == 1 and math.isnan(x.p_seeds)  # one seed: no seed-level test


def test_models_are_paired_on_the_videos_both_predicted():
    # TSN never predicted v098, v099 (say, decode failures) and predicted 5 videos TSM has not:
    # the pair is made on the 98 shared ids. TSM right on v000-v089 (90 of them), TSN on v000-v049.
    tsn_ids = [f"v{i:03d}" for i in range(98)] + [f"x{i}" for i in range(5)]
    records = [_record("tsn_r50_1x1x8", "default", 0, _first(50, 103), tsn_ids),
               _record("tsm_r50_1x1x8", "default", 0, _first(90))]
    x = _one(build_tables(records)[1], kind="model", mode="efficient")
    assert x.videos == 98 and (x.only_this, x.only_reference) == (40, 0)
    assert x.delta == pytest.approx(100 * (90 - 50) / 98)


def _three_models(**baseline):
    records = [_record(p, "default", 0, _first(k)) for p, k in
               (("tsn_r50_1x1x8", 50), ("tsm_r50_1x1x8", 90), ("i3d_r50_32x2x1", 80))]
    records.append(_record("tsm_r50_1x1x8", "mixup", 0, _first(90)))  # TSN has no mixup cell: no model row
    return build_tables(records, **baseline)


def test_baseline_defaults_to_the_first_tsn_preset_and_can_be_chosen():
    assert baseline_model(["i3d_r50_32x2x1", "tsn_r50_1x1x7", "tsn_r50_1x1x8"]) == "tsn_r50_1x1x8"  # preset order
    assert baseline_model(["i3d_r50_32x2x1", "tsm_r50_1x1x8"]) is None
    assert baseline_model(["tsn_r50_1x1x8"], "i3d_r50_32x2x1") == "i3d_r50_32x2x1"
    _, default = _three_models()
    rows = {(x.preset, x.aug): x.delta for x in default if x.kind == "model" and x.mode == "efficient"}
    assert rows == {("tsm_r50_1x1x8", "default"): pytest.approx(40.0), ("i3d_r50_32x2x1", "default"): pytest.approx(30.0)}
    _, vs_i3d = _three_models(baseline="i3d_r50_32x2x1")
    rows = {x.preset: x.delta for x in vs_i3d if x.kind == "model" and x.mode == "efficient"}
    assert rows == {"tsn_r50_1x1x8": pytest.approx(-30.0), "tsm_r50_1x1x8": pytest.approx(10.0)}
    assert {x.reference for x in vs_i3d if x.kind == "model"} == {"i3d_r50_32x2x1"}
    # all of the sheet's comparisons form one Holm family: 1 vs default + 2 model rows, x 2 modes
    assert len(vs_i3d) == 6 and not any(math.isnan(x.p_holm) for x in vs_i3d)


def test_no_baseline_or_a_baseline_without_cells_says_so():
    records = [_record("tsm_r50_1x1x8", "default", 0, _first(90)), _record("i3d_r50_32x2x1", "default", 0, _first(80))]
    cells, comparisons = build_tables(records)
    assert not [x for x in comparisons if x.kind == "model"]
    assert "No model-vs-model comparison: no TSN preset in the grid" in format_markdown(cells, comparisons)
    cells, comparisons = build_tables(records, baseline="tsn_r50_1x1x8")
    md = format_markdown(cells, comparisons, baseline="tsn_r50_1x1x8")
    assert "the baseline tsn_r50_1x1x8 has no finished trial" in md
    records.append(_record("tsn_r50_1x1x8", "mixup", 0, _first(50)))
    cells, comparisons = build_tables(records)
    assert "the baseline tsn_r50_1x1x8 shares no config with another model" in format_markdown(cells, comparisons)


def test_seed_level_test_on_hand_made_per_seed_accuracies():
    # Seeds 0, 1, 2 on both sides. TSN: 50% every seed; TSM: 60, 62, 64%. Per-seed Δ = 10, 12, 14:
    # mean 12, sd 2, t = 12 / (2 / sqrt(3)), t^2 = 108, df = 2, p = 1 - |t| / sqrt(2 + t^2).
    records = [_record("tsn_r50_1x1x8", "default", s, _first(50)) for s in (0, 1, 2)]
    records += [_record("tsm_r50_1x1x8", "default", s, _first(k)) for s, k in ((0, 60), (1, 62), (2, 64))]
    cells, comparisons = build_tables(records)
    x = _one(comparisons, kind="model", mode="efficient")
    assert x.seed_pairs == 3 and x.seed_delta == pytest.approx(12.0) and x.seed_delta_std == pytest.approx(2.0)
    assert x.p_seeds == pytest.approx(1 - math.sqrt(108 / 110))
    assert x.seeds == [0, 1, 2] and x.delta == pytest.approx(12.0)
    tsm = next(c for c in cells if c.preset == "tsm_r50_1x1x8").stats["efficient_acc1"]
    assert (tsm.mean, tsm.std, tsm.seeds) == (pytest.approx(62.0), pytest.approx(2.0), 3)  # mean ± std over seeds
    md = format_markdown(cells, comparisons)
    assert "| tsm_r50_1x1x8 | default config | 100 | +12.00 [" in md and "| +12.00 ± 2.00 (p 0.0091) |" in md


def test_comparisons_use_matched_seeds_only():
    # TSN ran seeds 0, 1, 2 (50% each); TSM seeds 1, 2, 3 (70, 99, 60%). Only seeds 1 and 2 are
    # compared: Δ = mean(70 - 50, 99 - 50) = 34.5, though the TSM cell's mean is (70 + 99 + 60) / 3.
    tsn = [_record("tsn_r50_1x1x8", "default", s, _first(50)) for s in (0, 1, 2)]
    tsm = [_record("tsm_r50_1x1x8", "default", s, _first(k)) for s, k in ((1, 70), (2, 99), (3, 60))]
    cells, comparisons = build_tables(tsn + tsm)
    x = _one(comparisons, kind="model", mode="efficient")
    assert x.seeds == [1, 2] and x.seed_pairs == 2
    assert x.delta == pytest.approx((20 + 49) / 2) and x.seed_delta == pytest.approx((20 + 49) / 2)
    # the cell still shows all three of its seeds: 60, 70, 99 -> 76.33
    tsm_cell = next(c for c in cells if c.preset == "tsm_r50_1x1x8").stats["efficient_acc1"]
    assert tsm_cell.mean == pytest.approx((60 + 70 + 99) / 3) and tsm_cell.seeds == 3
    md = format_markdown(cells, comparisons)
    assert "| tsm_r50_1x1x8 | default config (seeds 1, 2) | 100 | +34.50 [" in md


def test_cells_without_a_common_seed_get_no_paired_comparison():
    tsn = [_record("tsn_r50_1x1x8", "default", s, _first(50)) for s in (0, 1)]
    tsm = [_record("tsm_r50_1x1x8", "default", s, _first(90)) for s in (10, 11)]
    cells, comparisons = build_tables(tsn + tsm)
    x = _one(comparisons, kind="model", mode="efficient")
    assert x.note == "no seed in common" and math.isnan(x.delta) and math.isnan(x.p_value) and x.seed_pairs == 0
    assert math.isnan(x.p_holm) and not x.significant  # not in the Holm family
    md = format_markdown(cells, comparisons)
    assert "| tsm_r50_1x1x8 | default config | no seed in common | no seed in common |" in md  # empty columns left out
    assert "over all 0 tests of this sheet" in md and "paired by seed number only" in md


def _nearly_significant_sheet():
    """TSN mixup differs from default on 7 videos, all in mixup's favour: McNemar p = 2 / 2^7
    = 0.0156 in each mode. TSN cutmix and randaugment equal default (p = 1). TSM vs TSN under
    default (TSM has no other config): 40 discordant videos, p = 2 / 2^40 ~ 1.8e-12 in each mode.
    3 configs x 2 modes + 1 model row x 2 modes = 8 comparisons. Holm: sorted p =
    [1.8e-12 (x2), 0.0156 (x2), 1 (x4)]; the model p-values become 8 x 1.8e-12 = 1.5e-11, the two
    mixup p-values max(6 x 0.0156, 5 x 0.0156) = 0.094 > 0.05 though each raw p is below 0.05."""
    return build_tables([
        _record("tsn_r50_1x1x8", "default", 0, _first(50)),
        _record("tsn_r50_1x1x8", "mixup", 0, _first(57)),
        _record("tsn_r50_1x1x8", "cutmix", 0, _first(50)),
        _record("tsn_r50_1x1x8", "randaugment", 0, _first(50)),
        _record("tsm_r50_1x1x8", "default", 0, _first(90)),
    ])


def test_significance_is_called_only_after_holm():
    cells, comparisons = _nearly_significant_sheet()
    assert len(comparisons) == 8
    mixup = _one(comparisons, aug="mixup", mode="efficient")
    assert mixup.p_value == pytest.approx(2 / 2 ** 7) and mixup.p_holm == pytest.approx(6 * 2 / 2 ** 7)
    assert not mixup.significant
    model = _one(comparisons, kind="model", mode="efficient")
    assert model.significant and model.p_holm == pytest.approx(8 * 2 * 0.5 ** 40)
    md = format_markdown(cells, comparisons)
    mixup_row = next(line for line in md.splitlines() if line.startswith("| tsn_r50_1x1x8 | mixup | 100 |"))
    # raw p and Holm p side by side in each mode; no mark although the raw p is below 0.05
    assert mixup_row.startswith("| tsn_r50_1x1x8 | mixup | 100 | +7.00 [")
    assert mixup_row.count("| 0.016 | 0.094 |") == 2 and "*" not in mixup_row
    assert "Δ per seed" not in md  # one seed: the column would be "-" in every row
    model_row = next(line for line in md.splitlines() if line.startswith("| tsm_r50_1x1x8 | default config | 100 |"))
    assert model_row.count(" * |") == 2 and "| 1.8e-12 | 1.5e-11 * |" in model_row
    assert "## Models vs tsn_r50_1x1x8" in md and "over all 8 tests of this sheet" in md
    assert md.index("## TSM") < md.index("## Models vs tsn_r50_1x1x8")


def test_csv_and_json_carry_raw_and_adjusted_p():
    cells, comparisons = _nearly_significant_sheet()
    rows = {r["model"] + "/" + r["aug"]: r for r in csv.DictReader(io.StringIO(format_csv(cells, comparisons)))}
    mixup = rows["tsn_r50_1x1x8/mixup"]
    assert float(mixup["efficient_p_value"]) == pytest.approx(0.015625)
    assert float(mixup["efficient_p_holm"]) == pytest.approx(0.09375) and mixup["efficient_significant"] == "False"
    assert mixup["efficient_vs_baseline_p_value"] == "" and mixup["baseline_model"] == "tsn_r50_1x1x8"
    tsm = rows["tsm_r50_1x1x8/default"]
    assert float(tsm["efficient_vs_baseline_delta_acc1"]) == pytest.approx(40.0)
    assert tsm["efficient_vs_baseline_significant"] == "True" and tsm["efficient_vs_baseline_paired_videos"] == "100"
    data = json.loads(format_json(cells, comparisons, baseline_source="test"))
    assert data["holm_family_size"] == 8 and data["alpha"] == 0.05 and data["baseline_model"] == "tsn_r50_1x1x8"
    assert len(data["comparisons_vs_default"]) == 6 and len(data["comparisons_vs_baseline_model"]) == 2
    (model,) = [x for x in data["comparisons_vs_baseline_model"] if x["mode"] == "accurate"]
    assert model["reference"] == "tsn_r50_1x1x8" and model["significant"] is True and model["p_seeds"] is None
