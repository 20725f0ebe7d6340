"""The grid's console from fake events: plain lines (each trial's start, every epoch, its test,
its end, the grid's end), the board's ETAs, and the live table's rows."""

from __future__ import annotations

import io

from rich.console import Console

from k400ray.console.board import GridBoard, clock
from k400ray.console.grid_view import LiveGridView, PlainGridView, grid_view
from k400ray.tune.events import (
    EpochEnded, GridEnded, GridStarted, TrialEnded, TrialPlan, TrialStarted, TrialTested,
)

T0 = 1_000_000.0
TSN, TSM, I3D = "g-tsn_r50_1x1x8-default-s0", "g-tsm_r50_1x1x8-mixup-s0", "g-i3d_r50_32x2x1-default-s0"


def _events():
    plans = (TrialPlan(TSN, "tsn_r50_1x1x8", "default", 0, 2), TrialPlan(TSM, "tsm_r50_1x1x8", "mixup", 0, 2),
             TrialPlan(I3D, "i3d_r50_32x2x1", "default", 0, 2, status="done",
                       metrics={"efficient_acc1": 40.0, "efficient_acc5": 90.0, "accurate_acc1": 45.0, "accurate_acc5": 95.0}))
    epoch = {"train_loss": 1.3863, "clips_per_s": 12.34, "data_wait_fraction": 0.4}
    final = {"efficient_acc1": 50.0, "efficient_acc5": 100.0, "accurate_acc1": 62.5, "accurate_acc5": 100.0}
    return [
        GridStarted("g", plans, 2, at=T0),
        TrialStarted(TSN, at=T0 + 1), TrialStarted(TSM, at=T0 + 2),
        EpochEnded(TSN, 1, epoch, at=T0 + 11),
        EpochEnded(TSN, 2, {**epoch, "efficient_acc1": 50.0, "efficient_acc5": 100.0}, at=T0 + 21),
        TrialTested(TSN, final, at=T0 + 25),
        TrialEnded(TSN, "done", final, at=T0 + 27),
        TrialEnded(TSM, "error", {}, error="TrialFailed: boom", at=T0 + 30),
        # the runner repeats every trial's end once the Tuner returned: said once only
        TrialEnded(TSN, "done", final, at=T0 + 40), TrialEnded(I3D, "done", {}, at=T0 + 40),
        GridEnded("FAILED", at=T0 + 41),
    ]


def test_plain_lines_tell_each_step_once():
    out = io.StringIO()
    with PlainGridView(out) as view:
        view.note("MLflow UI: mlflow ui --backend-store-uri sqlite:///x.db")
        for event in _events():
            view(event)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("MLflow UI:")
    assert lines[1] == "grid g: 3 trials, up to 2 at a time (1 already finished)"
    assert lines[2] == f"start  {TSN} (2 epochs)" and lines[3] == f"start  {TSM} (2 epochs)"
    assert lines[4] == (f"epoch  {TSN} 1/2: loss 1.3863, 12.3 clips/s, data wait 40% | trial 0:10, ETA 0:10 "
                        "| grid ETA 0:33")
    assert lines[5].startswith(f"epoch  {TSN} 2/2: loss 1.3863, efficient acc1/acc5 50.00/100.00, 12.3 clips/s")
    assert lines[6] == f"tested {TSN}: efficient acc1/acc5 50.00/100.00, accurate acc1/acc5 62.50/100.00"
    assert lines[7] == (f"done {TSN} in 0:26: efficient acc1/acc5 50.00/100.00, accurate acc1/acc5 62.50/100.00 "
                        "[2/3 trials ended]")
    assert lines[8] == f"error {TSM} in 0:28 (TrialFailed: boom) [3/3 trials ended]"
    assert lines[9] == "grid g FAILED in 0:41: 2 done, 1 error"
    assert len(lines) == 10
    # no line starts with a preset name: the summary table's rows are the only ones that do
    assert not any(ln.startswith(("tsn_", "tsm_", "i3d_")) for ln in lines)


def test_board_etas():
    board = GridBoard()
    events = _events()
    for event in events[:4]:
        board.apply(event)
    row = board.rows[TSN]
    assert (row.status, row.epoch) == ("training", 1)
    assert row.eta(T0 + 11) == 10 and row.eta(T0 + 16) == 5 and row.eta(T0 + 30) == 0
    # 3 epochs left (1 of TSN, 2 of TSM; I3D finished before) at 1 epoch per 11 s of grid time
    assert board.eta(T0 + 11) == 33
    assert board.rows[I3D].status == "done" and board.rows[I3D].metrics["accurate_acc1"] == 45.0
    assert clock(None) == "-" and clock(65) == "1:05" and clock(3725) == "1:02:05" and clock(-3) == "0:00"


def test_a_resumed_trial_counts_its_own_epochs():
    board = GridBoard()
    board.apply(GridStarted("g", (TrialPlan(TSN, "tsn_r50_1x1x8", "default", 0, 4),), 1, at=T0))
    board.apply(TrialStarted(TSN, at=T0))
    board.apply(EpochEnded(TSN, 3, {"train_loss": 1.0}, at=T0 + 10))  # restored from epoch 2's checkpoint
    assert board.rows[TSN].eta(T0 + 10) == 10  # 1 epoch took 10 s, 1 left


def test_live_table_keeps_final_figures():
    out = io.StringIO()
    view = LiveGridView(Console(file=out, force_terminal=True, width=160, color_system=None))
    with view:
        for event in _events():
            view(event)
    text = out.getvalue()
    final = text[text.rindex("grid g"):]
    tsn = next(ln for ln in final.splitlines() if "tsn_r50_1x1x8" in ln)
    assert "done" in tsn and "2/2" in tsn and "50.00" in tsn and "62.50" in tsn
    i3d = next(ln for ln in final.splitlines() if "i3d_r50_32x2x1" in ln)
    assert "40.00" in i3d and "45.00" in i3d
    assert "FAILED" in final


def test_grid_view_is_plain_without_a_terminal():
    assert isinstance(grid_view(io.StringIO()), PlainGridView)
    assert isinstance(grid_view(io.StringIO(), live=True), LiveGridView)
