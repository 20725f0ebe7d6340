"""MLflow UI: links that open in "Model training" mode, the experiment's kind tag, and the parent
run's description (every trial's figures, then the sheet) on a SQLite store, without Ray; every
table of a real description follows the rule of the markdown renderer MLflow's UI ships."""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
import threading
from pathlib import Path

import mlflow
import numpy as np
import pytest

from k400ray.console.mlflow_ui import DescriptionRefresher, compose, link_lines, refresh_description
from k400ray.tracking.mlflow_log import GridRun
from k400ray.engine.config import TrialConfig
from k400ray.engine.metrics import Predictions
from k400ray.tracking import mlflow_log as ml
from k400ray.tracking.ui_links import ui_links

RENDER = Path(__file__).with_name("mlflow_markdown.cjs")


def test_links_carry_the_model_training_mode():
    links = ui_links("sqlite:////tmp/x/mlflow.db", "7", "abc")
    assert links["experiment"] == "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    assert links["run"] == "http://127.0.0.1:5000/#/experiments/7/runs/abc?workflowType=machine_learning"
    assert links["command"].endswith("mlflow ui --backend-store-uri sqlite:////tmp/x/mlflow.db")
    server = ui_links("https://user:token@mlflow.example:5000/", "7", view="k400ray-abc")
    assert server["experiment"] == ("https://***@mlflow.example:5000/#/experiments/7/runs?viewStateShareKey=k400ray-abc"
                                    "&workflowType=machine_learning")
    assert server["command"] == "" and "run" not in server
    lines = link_lines(links, run_id="abc", store="sqlite:////tmp/x/mlflow.db")
    assert lines[0] == "MLflow: grid run abc in sqlite:////tmp/x/mlflow.db"
    assert lines[1].startswith("  serve the UI: /") and all("workflowType=machine_learning" in ln for ln in lines[2:])
    assert [ln.split(":")[0] for ln in link_lines(server, run_id="abc", store="s")] == ["MLflow", "  runs table"]


def test_description_holds_every_trial_and_the_experiment_is_model_development(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    spec = {"grid": {"presets": ["tsn_r50_1x1x8"], "augmentations": ["default", "mixup"], "seeds": [0]}}
    grid = ml.open_grid_run(uri, "exp", "g", spec, resume=False)
    client = ml.client_for(uri)
    assert client.get_experiment(grid.experiment_id).tags[ml.EXPERIMENT_KIND_TAG] == "custom_model_development"
    for aug, status, acc in (("default", "FINISHED", 62.5), ("mixup", "FAILED", None)):
        run = client.create_run(grid.experiment_id, tags={ml.PARENT_TAG: grid.parent_run_id, "model": "tsn_r50_1x1x8",
                                                         "config": aug, "seed": "0", ml.ROLE_TAG: "trial"})
        if acc is not None:
            for key, value in (("efficient_acc1", 50.0), ("efficient_acc5", 100.0), ("accurate_acc1", acc),
                               ("accurate_acc5", 100.0)):
                client.log_metric(run.info.run_id, key, value)
        else:
            client.set_tag(run.info.run_id, ml.ERROR_TAG, "TrialFailed: boom")
        client.set_terminated(run.info.run_id, status)
    # No predictions artifacts here: the sheet cannot be built, the trials table still is.
    refresh_description(grid)
    note = client.get_run(grid.parent_run_id).data.tags[ml.NOTE_TAG]
    assert "| tsn_r50_1x1x8 | default | 0 | finished | 50.00 / 100.00 | 62.50 / 100.00 |" in note
    assert "| tsn_r50_1x1x8 | mixup | 0 | error (TrialFailed: boom) | - | - |" in note
    refresh_description(grid, sheet="# the sheet\n")
    # the sheet's title beside "Trials", its headings one level down
    assert client.get_run(grid.parent_run_id).data.tags[ml.NOTE_TAG].endswith("|\n\n## the sheet\n")


def test_a_long_sheet_is_cut_between_tables():
    trials = "## Trials\n\n| a |\n"
    sheet = "\n\n".join(f"table {i}\n" + "x" * 900 for i in range(20))
    text = compose(trials, sheet, limit=4000)
    assert len(text) <= 4000 and text.startswith(trials) and "table 0" in text and "table 19" not in text
    assert text.rstrip().endswith("of this run, or `k400ray report`.") and "first tables only" in text


def test_refresher_runs_in_the_background_and_once_more_at_close():
    calls, started, gate = [], threading.Event(), threading.Event()

    def refresh(grid, *, log_report):
        started.set()
        gate.wait(5)
        calls.append(log_report)

    refresher = DescriptionRefresher(GridRun("sqlite:///unused.db", "0", "parent", "grid"), refresh=refresh)
    refresher.request()
    assert started.wait(5)  # the first refresh runs on its own thread: request() did not wait
    for _ in range(5):
        refresher.request()  # coalesced into at most one more while it runs
    gate.set()
    refresher.close()
    assert calls[0] is False and calls[-1] is True and 2 <= len(calls) <= 3


def test_refresher_and_links_skip_a_server_that_does_not_answer():
    """A grid ending during an outage does not wait minutes on MLflow's client retries."""
    import socket

    from k400ray.console.mlflow_ui import grid_block

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{sock.getsockname()[1]}"
    calls = []
    refresher = DescriptionRefresher(GridRun(down, "0", "parent", "grid"),
                                     refresh=lambda grid, *, log_report: calls.append(log_report))
    refresher.request()
    refresher.close()
    assert calls == []
    assert grid_block(down, "parent") == [f"MLflow: grid run parent in {down}, which does not answer now"]


# --- every table of a real description renders in MLflow's UI ---------------------------------

SEPARATOR_CELL = re.compile(r"^:?-{3,}:?$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def _tables(markdown: str) -> list[list[str]]:
    """Every run of consecutive lines that start with ``|``; each must stand after a blank line."""
    lines, tables = markdown.splitlines(), []
    for i, line in enumerate(lines):
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            assert i == 0 or lines[i - 1] == "", f"no blank line before the table at line {i}: {lines[i - 1]!r}"
            tables.append([])
        if line.startswith("|"):
            tables[-1].append(line)
    return tables


def _check_rule(table: list[str]) -> None:
    """What showdown (MLflow's renderer) needs of a table: a separator row of dashes (two at least
    in its first cells; three in every cell here), and as many cells in every row as in the header
    (fewer header cells than separator cells and it stays text)."""
    header, separator, *rows = (_cells(line) for line in table)
    assert all(SEPARATOR_CELL.match(c) for c in separator), table[1]
    assert len(header) == len(separator) and all(len(r) == len(header) for r in rows), table


def _mlflow_showdown() -> str | None:
    """The JS chunk of the installed MLflow UI that holds its markdown converter."""
    js = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    return next((f for f in sorted(glob.glob(str(js / "*.js"))) if 'subParser("tables"' in Path(f).read_text(
        encoding="utf-8", errors="ignore")), None)


def _log_two_family_grid(uri: str) -> ml.GridRun:
    """TSN and TSM x default, mixup x seeds 0, 1, logged the way trials log; 4 classes."""
    grid = ml.open_grid_run(uri, "sheet", "sheet", {"grid": {"presets": ["tsn_r50_1x1x8", "tsm_r50_1x1x8"],
                                                             "augmentations": ["default", "mixup"], "seeds": [0, 1]}},
                            resume=False)
    rng = np.random.default_rng(0)
    labels = np.arange(48) % 4
    for preset, family, accuracy in (("tsn_r50_1x1x8", "tsn", 0.5), ("tsm_r50_1x1x8", "tsm", 0.9)):
        for aug in ("default", "mixup"):
            for seed in (0, 1):
                cfg = TrialConfig(preset=preset, scale="toy", aug=aug, seed=seed, train_index="/i", val_index="/i",
                                  num_classes=4, name=f"sheet-{preset}-{aug}-s{seed}")
                run = ml.TrialRun.open(grid, cfg, family=family, tune_trial_id=cfg.name, run_name=f"{family}·{aug}")
                preds = {}
                for mode in ("efficient", "accurate"):
                    top1 = np.where(rng.random(48) < accuracy, labels, (labels + 1) % 4)
                    top = np.stack([top1, (top1 + 1) % 4, (top1 + 2) % 4, (top1 + 3) % 4, -np.ones(48, int)], axis=1)
                    preds[mode] = Predictions([f"v{i:02d}" for i in range(48)], labels, top,
                                              np.ones((48, 5), np.float32))
                run.log_final({f"{m}_acc{k}": 100.0 * float((p.topk[:, :k] == labels[:, None]).any(1).mean())
                               for m, p in preds.items() for k in (1, 5)} | {"epoch": 1}, step=1)
                run.log_artifacts(cfg, preds, ["a", "b", "c", "d"])
                run.end("FINISHED", reason="done")
    ml.finish_grid_run(grid, "FINISHED", "done")
    return grid


def test_every_table_of_a_real_description_renders_in_mlflow(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    grid = _log_two_family_grid(uri)
    refresh_description(grid, log_report=False)
    note = ml.client_for(uri).get_run(grid.parent_run_id).data.tags[ml.NOTE_TAG]
    tables = _tables(note)
    # trials, then per family its table and its "vs default" table, then "Models vs tsn_r50_1x1x8"
    assert len(tables) == 6 and "## Trials (8 runs)" in note and "### Models vs tsn_r50_1x1x8" in note
    for table in tables:
        _check_rule(table)
    assert "| tsm_r50_1x1x8 | mixup alpha=1.0 (2 seeds) |" in note and "/ n/a |" in note
    chunk, node = _mlflow_showdown(), shutil.which("node")
    if chunk is None or node is None:
        pytest.skip("no node or no markdown converter in this MLflow build: the rule above is what was checked")
    html = subprocess.run([node, str(RENDER), chunk], input=note, capture_output=True, text=True, timeout=60,
                          check=True).stdout
    assert html.count("<table>") == len(tables)
    assert not re.search(r"^\|", re.sub(r"<[^>]+>", "", html), flags=re.M)  # no table left as text
    # the rule is the renderer's: the old one-dash separators stay text
    old = subprocess.run([node, str(RENDER), chunk], input="| a | b |\n|:-:|:-|\n| 1 | 2 |\n", capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "<table>" not in old
