"""What opens MLflow's UI on a grid: the command that serves it for a local store, the links, and
the saved view of the runs table that the runs link opens.

The view: MLflow 3's UI keeps saved views of an experiment's runs table as experiment tags
``mlflow.sharedViewState.<key>`` (a JSON envelope ``{name, createdAt, updatedAt, state}`` whose
``state`` is the table's JSON state) and opens one from the URL parameter ``viewStateShareKey``
on the runs page (``#/experiments/<id>/runs?viewStateShareKey=<key>``). The view of a grid
filters the runs table to its trials (``tags.mlflow.parentRunId``), sorts them by name and shows
model, config, seed and the four accuracies instead of MLflow's default Dataset, Duration and
Source columns. The view of a search also shows each searched value (``search.<section>.<field>``
params) as a column, and holds a parallel-coordinates chart of those values against the
efficient-mode top-1: the runs page opens its chart view on it with ``compareRunsMode=CHART``
(the ``charts`` link). The chart is a card of the UI's state (``compareRunCharts``, in a section
of ``compareRunSections``), the same as one a user adds by hand and saves. A store that refuses
the tag (a server without write access to experiments) gets the plain runs link: the view is a
convenience. A UI older than saved views ignores the parameter and opens its default table.

Links carry ``workflowType=machine_learning``: MLflow 3 picks the UI's mode from the URL or the
browser's last choice, and a bare experiment URL opens the GenAI overview.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from pathlib import Path

from k400ray.contracts import (
    ACCURATE_ACC1, ACCURATE_ACC5, CONFIG_TAG, EFFICIENT_ACC1, EFFICIENT_ACC5, MODEL_TAG, PARENT_TAG, RUN_NAME_TAG,
    SEARCH_SPACE_ARTIFACT, SEARCHER_PARAM, SEED_TAG, VIEW_TAG_PREFIX, search_param,
)
from k400ray.tracking.mlflow_log import GridRun, client_for, redact_uri

VIEW_COLUMNS = (*(f"tags.`{t}`" for t in (MODEL_TAG, CONFIG_TAG, SEED_TAG)),
                *(f"metrics.`{m}`" for m in (EFFICIENT_ACC1, EFFICIENT_ACC5, ACCURATE_ACC1, ACCURATE_ACC5)))
VIEW_WIDTHS = dict(zip(VIEW_COLUMNS, (130, 110, 60)))  # px (model, config, seed); the rest keep MLflow's
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
MODE = "workflowType=machine_learning"
CHARTS = "compareRunsMode=CHART"  # the runs page's chart view
SEARCH_SECTION = "k400ray-search"  # the uuid of the charts section that holds a search's chart

logger = logging.getLogger(__name__)


def view_key(grid: GridRun) -> str:
    """The saved view's key: one per grid (its parent run), so an older grid's link keeps
    opening its own trials."""
    return f"k400ray-{grid.parent_run_id[:12]}"


def view_state(grid: GridRun, axes: list[str] | tuple[str, ...] = ()) -> dict:
    """The runs table as the grid's link opens it (MLflow's own state keys). ``axes``: a search's
    searched paths (``training.lr``): their params become columns, and a parallel-coordinates
    chart shows them against the efficient-mode top-1, every trial on it."""
    searched = [f"params.`{search_param(a)}`" for a in axes]
    columns = [*VIEW_COLUMNS[:3], *searched, *VIEW_COLUMNS[3:]]
    state = {
        "searchFilter": f"tags.`{PARENT_TAG}` = '{grid.parent_run_id}'",
        "orderByKey": f"tags.`{RUN_NAME_TAG}`", "orderByAsc": True,
        "selectedColumns": columns, "columnOrder": list(columns), "columnWidths": dict(VIEW_WIDTHS),
        "runsHiddenMode": "SHOW_ALL",
    }
    if axes:
        state["compareRunSections"] = [{"uuid": SEARCH_SECTION, "name": "Search", "display": True,
                                        "isReordered": False, "deleted": False, "isGenerated": False,
                                        "columns": 1, "cardHeight": 480}]  # the chart across the page
        state["compareRunCharts"] = [{
            "type": "PARALLEL", "uuid": f"{SEARCH_SECTION}-parallel", "metricSectionId": SEARCH_SECTION,
            "runsCountToCompare": 100,
            "deleted": False, "isGenerated": False, "showAllRuns": True,
            "selectedParams": [search_param(a) for a in axes], "selectedMetrics": [EFFICIENT_ACC1],
        }]
    return state


def searched_axes(client, grid: GridRun) -> list[str]:
    """The searched paths of a search's parent run (its ``search_space.json``), [] for a grid."""
    if SEARCHER_PARAM not in client.get_run(grid.parent_run_id).data.params:
        return []
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        space = json.loads(Path(client.download_artifacts(grid.parent_run_id, SEARCH_SPACE_ARTIFACT, tmp)).read_text())
    return list(space.get("space", {}))


def save_runs_view(client, grid: GridRun) -> str | None:
    """The grid's saved view (made once, kept after): its key, or None when the store refuses
    the experiment tag."""
    return _saved_view(client, grid)[0]


def _saved_view(client, grid: GridRun) -> tuple[str | None, bool]:
    """(:func:`save_runs_view`'s key, whether the view holds a search's chart), from one read of
    the experiment's tags (or the state just written)."""
    key = view_key(grid)
    try:
        saved = client.get_experiment(grid.experiment_id).tags.get(VIEW_TAG_PREFIX + key)
        if saved is not None:
            return key, bool(json.loads(json.loads(saved)["state"]).get("compareRunCharts"))
        state = view_state(grid, searched_axes(client, grid))
        now = int(time.time() * 1000)
        envelope = {"name": f"k400ray {grid.grid}: trials of run {grid.parent_run_id[:8]}", "createdAt": now,
                    "updatedAt": now, "state": json.dumps(state)}
        client.set_experiment_tag(grid.experiment_id, VIEW_TAG_PREFIX + key, json.dumps(envelope))
    except Exception as exc:  # noqa: BLE001 - the plain runs table is the fallback
        logger.info("no saved runs view for %s (%s); the link opens MLflow's default table", grid.parent_run_id, exc)
        return None, False
    return key, bool(state.get("compareRunCharts"))


def ui_command(tracking_uri: str) -> str:
    """The command that serves the UI on a local store, runnable as printed from any shell: the
    ``mlflow`` beside this interpreter (a venv's need not be on PATH), else ``python -m mlflow``
    of this interpreter."""
    beside = Path(sys.executable).parent / "mlflow"
    program = [str(beside)] if beside.is_file() else [sys.executable, "-m", "mlflow"]
    return shlex.join([*program, "ui", "--backend-store-uri", tracking_uri])


def ui_links(tracking_uri: str, experiment_id: str, run_id: str | None = None, *,
             view: str | None = None, charts: bool = False) -> dict[str, str]:
    """``{"base", "command", "experiment", "run"}``: the UI's address (the server itself for an
    ``http(s)`` store, credentials hidden; else where :func:`ui_command` serves it), the command
    ("" for a server), the runs table (in the saved ``view`` when given) and the run's page;
    ``charts`` (a search's view): also ``"charts"``, the view's chart page."""
    if tracking_uri.startswith(("http://", "https://")):
        base, command = redact_uri(tracking_uri).rstrip("/"), ""
    else:
        base, command = LOCAL_UI, ui_command(tracking_uri)
    runs = f"{base}/#/experiments/{experiment_id}/runs?" + (f"viewStateShareKey={view}&" if view else "") + MODE
    links = {"base": base, "command": command, "experiment": runs}
    if charts and view:
        links["charts"] = runs.replace(MODE, f"{CHARTS}&{MODE}")
    if run_id:
        links["run"] = f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{MODE}"
    return links


def grid_links(grid: GridRun) -> dict[str, str]:
    """The links of one grid, its saved view made if the store takes it."""
    view, charts = _saved_view(client_for(grid.tracking_uri), grid)
    return ui_links(grid.tracking_uri, grid.experiment_id, grid.parent_run_id, view=view, charts=charts)
