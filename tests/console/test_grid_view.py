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
             TrialPlan(I3D, "i3d_r50_32x2x1", "default", 0, 2, status="finished",
                       metrics={"efficient_acc1": 40.0, "efficient_acc5": 90.0, "accurate_acc1": 45.0, "accurate_acc5": 95.0}))
    epoch = {"train_loss": 1.3863, "clips_per_s": 12.34, "data_wait_fraction": 0.4}
    final = {"efficient_acc1": 50.0, "efficient_acc5": 100.0, "accurate_acc1": 62.5, "accurate_acc5": 100.0}
    return [
        GridStarted("g", plans, 2, at=T0),
        TrialStarted(TSN, at=T0 + 1), TrialStarted(TSM, at=T0 + 2),
        EpochEnded(TSN, 1, epoch, at=T0 + 11),
        EpochEnded(TSN, 2, {**epoch, "efficient_acc1": 50.0, "efficient_acc5": 100.0}, at=T0 + 21),
        TrialTested(TSN, final, at=T0 + 25),
        TrialEnded(TSN, "finished", final, at=T0 + 27),
        TrialEnded(TSM, "error", {}, error="TrialFailed: boom", at=T0 + 30),
        # the runner repeats every trial's end once the Tuner returned: said once only
        TrialEnded(TSN, "finished", final, at=T0 + 40), TrialEnded(I3D, "finished", {}, at=T0 + 40),
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
                        "| grid ETA -")  # no pace yet: the first epoch also paid the start-up
    assert lines[5].startswith(f"epoch  {TSN} 2/2: loss 1.3863, efficient acc1/acc5 50.00/100.00, 12.3 clips/s")
    assert lines[6] == f"tested {TSN}: efficient acc1/acc5 50.00/100.00, accurate acc1/acc5 62.50/100.00"
    assert lines[7] == (f"finished {TSN} in 0:26: efficient acc1/acc5 50.00/100.00, accurate acc1/acc5 62.50/100.00 "
                        "[2/3 trials ended]")
    assert lines[8] == f"error {TSM} in 0:28 (TrialFailed: boom) [3/3 trials ended]"
    assert lines[9] == "grid g FAILED in 0:41: 1 error, 2 finished"
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
    # one epoch: the trial's ETA goes by it (10 s, start-up included); the grid's waits for a pace
    assert row.eta(T0 + 11) == 10 and row.eta(T0 + 16) == 5 and row.eta(T0 + 30) == 0
    assert board.eta(T0 + 11) is None
    board.apply(events[4])  # TSN's second epoch 10 s later: pace 10 s, no start-up beyond it
    assert board.pace() == 10 and board.start_up(10) == 0 and board.tail() == 0
    # TSN (started at +1) is due at +21; TSM (started at +2, 2 epochs) at +22: 1 s left at +21
    assert board.eta(T0 + 21) == 1
    assert board.rows[I3D].status == "finished" and board.rows[I3D].metrics["accurate_acc1"] == 45.0
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
    assert "finished" in tsn and "2/2" in tsn and "50.00" in tsn and "62.50" in tsn
    i3d = next(ln for ln in final.splitlines() if "i3d_r50_32x2x1" in ln)
    assert "40.00" in i3d and "45.00" in i3d
    assert "FAILED" in final


def test_grid_view_is_plain_without_a_terminal():
    assert isinstance(grid_view(io.StringIO()), PlainGridView)
    assert isinstance(grid_view(io.StringIO(), live=True), LiveGridView)


def _simulated_grid(trials=12, epochs=4, slots=3, start_up=30.0, epoch_s=8.0, test_s=12.0):
    """The events of a grid whose trials run ``slots`` at a time; each trial's first epoch also
    pays the start-up, its test follows the last epoch. Returns (events sorted by time, end)."""
    names = [f"g-t{i}" for i in range(trials)]
    events = [GridStarted("g", tuple(TrialPlan(n, "tsn_r50_1x1x8", "default", i, epochs) for i, n in enumerate(names)),
                          slots, at=T0)]
    free = [T0] * slots
    for name in names:
        start = min(free)
        free.remove(start)
        events.append(TrialStarted(name, at=start))
        at = start + start_up
        for e in range(1, epochs + 1):
            at += epoch_s
            events.append(EpochEnded(name, e, {"train_loss": 1.0}, at=at))
        events.append(TrialEnded(name, "finished", {}, at=at + test_s))
        free.append(at + test_s)
    events.sort(key=lambda e: e.at)
    return events, max(free)


def test_grid_eta_is_not_fooled_by_the_first_epochs():
    """The first epochs of concurrent trials end together after their start-up: time so far over
    epochs so far said 52:42 for a grid of 4:48. The pace of later epochs and the overhead of the
    trials that ended predict the end within a few seconds once known."""
    events, end = _simulated_grid()
    board, first = GridBoard(), None
    for event in events:
        board.apply(event)
        if isinstance(event, EpochEnded):
            eta = board.eta(event.at)
            if eta is not None and first is None:
                first = (event.at, eta)
            if any(r.status == "finished" for r in board.rows.values()):  # overhead measured
                assert abs(eta - (end - event.at)) <= 1, (event, eta, end - event.at)
    at, eta = first
    truth = end - at
    assert 0.6 * truth <= eta <= 1.1 * truth  # before any trial ended: the test time is not known yet


def _replay(path):
    """(board, [(time, grid ETA, the truth)] at every epoch): a recorded grid's events replayed."""
    import json

    data = json.loads(path.read_text())
    board = GridBoard()
    board.apply(GridStarted("demo", tuple(TrialPlan(t["name"], t["preset"], t["aug"], t["seed"], t["epochs"])
                                          for t in data["trials"]), data["max_concurrent"], at=0.0))
    make = {"TrialStarted": lambda e: TrialStarted(e["name"], at=e["at"]),
            "EpochEnded": lambda e: EpochEnded(e["name"], e["epoch"], {}, at=e["at"]),
            "TrialTested": lambda e: TrialTested(e["name"], {}, at=e["at"]),
            "TrialEnded": lambda e: TrialEnded(e["name"], e["status"], {}, at=e["at"])}
    seen = []
    for e in data["events"]:
        board.apply(make[e["type"]](e))
        if e["type"] == "EpochEnded":
            seen.append((e["at"], board.eta(e["at"]), data["ended_at"] - e["at"]))
    return board, seen


def test_grid_eta_on_a_recorded_demo():
    """The demo's 12 trials, 3 at a time, on the loaded 2-core machine (rebuilt from its MLflow
    store: run start and end times, the epochs' metric timestamps). The first wave of trials paid
    2 minutes of start-up, the later ones 1: the ETA starts high and comes down; the old ratio
    (epochs left x time so far / epochs so far) said 2:04:52 at the first epoch, for 4:29 left."""
    from pathlib import Path

    _, seen = _replay(Path(__file__).with_name("demo_grid_events.json"))
    (first_at, _, first_truth), shown = seen[0], [(at, eta, truth) for at, eta, truth in seen if eta is not None]
    old = 47 * first_at / 1  # 47 epochs left, one done
    assert old > 25 * first_truth
    at, eta, truth = shown[0]
    assert at - first_at < 5 and eta <= 2 * truth  # a pace after the second epoch; 6:45 for 4:27
    assert all(eta <= 3 * truth for _, eta, truth in shown)
    third_wave = 282.5  # two waves ran: their start-up, pace and tail are known
    late = [(eta, truth) for at, eta, truth in shown if at > third_wave]
    assert late and all(abs(eta - truth) <= max(0.35 * truth, 15) for eta, truth in late)


def test_a_search_adds_its_trials_as_they_start():
    """A search's trials are not known up front: each joins the board when it starts."""
    out = io.StringIO()
    sampled = TrialPlan("s-tsn_r50_1x1x8-default-s0-ab_00001", "tsn_r50_1x1x8", "default", 0, 2)
    with PlainGridView(out) as view:
        view(GridStarted("s", (), 1, at=0.0, total=4))
        view(TrialStarted(sampled.name, at=1.0, plan=sampled))
        view(EpochEnded(sampled.name, 1, {"train_loss": 1.0}, at=5.0))
        view(TrialEnded(sampled.name, "stopped early", at=6.0))
    lines = out.getvalue().splitlines()
    assert lines[0] == "grid s: 4 trials, up to 1 at a time"
    assert lines[1] == f"start  {sampled.name} (2 epochs)" and lines[2].startswith(f"epoch  {sampled.name} 1/2")
    assert "[1/4 trials ended]" in lines[3]
