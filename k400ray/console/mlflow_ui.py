"""What a user finds in MLflow's UI: the links that open it on the runs table ("Model training"
mode) and the parent run's page, and that page's description: every trial's figures, then the
result sheet, refreshed while the grid runs.

The description is rebuilt from MLflow itself (the child runs and ``k400ray report``'s sheet),
so ``k400ray tune``, ``k400ray demo`` and ``k400ray report`` all write the same thing. During a
grid it is refreshed on a background thread, one refresh at a time: building the sheet reads
every finished trial's predictions and must not hold up Tune's driver loop.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Callable

from k400ray.contracts import (
    ACC1, ACC5, END_TAG, ERROR, ERROR_TAG, FINISHED, KILLED, MODEL_TAG, PENDING, RUNNING, RUN_FAILED, RUN_FINISHED,
    RUN_KILLED, RUN_RUNNING, RUN_SCHEDULED, SEED_TAG, config_of, mode_metric,
)
from k400ray.text_table import markdown_table
from k400ray.tracking import mlflow_log
from k400ray.tracking.outbox import few_retries, server_answers
from k400ray.tracking.ui_links import grid_links

logger = logging.getLogger(__name__)

# MLflow's run status -> the trial status the description shows.
STATUS = {RUN_RUNNING: RUNNING, RUN_FINISHED: FINISHED, RUN_FAILED: ERROR, RUN_KILLED: KILLED,
          RUN_SCHEDULED: PENDING}


def link_lines(links: dict[str, str], *, run_id: str, store: str) -> list[str]:
    """The block ``tune``, ``demo`` and ``report`` print: the grid run, the command that serves
    the UI (for a local store), the runs table, a search's charts and the grid run's page."""
    lines = [f"MLflow: grid run {run_id} in {store}"]
    if links.get("command"):
        lines.append(f"  serve the UI: {links['command']}")
    lines.append(f"  runs table:   {links['experiment']}")
    if links.get("charts"):
        lines.append(f"  charts:       {links['charts']}")
    if links.get("run"):
        lines.append(f"  the sheet:    {links['run']}")
    return lines


def grid_block(tracking_uri: str, parent_run_id: str) -> list[str]:
    """:func:`link_lines` of the grid whose parent run is ``parent_run_id``; [] when MLflow cannot
    say (the links are a convenience: the figures are printed already)."""
    if not server_answers(tracking_uri):
        return [f"MLflow: grid run {parent_run_id} in {mlflow_log.redact_uri(tracking_uri)}, which does not answer now"]
    try:
        client = mlflow_log.client_for(tracking_uri)
        run = client.get_run(parent_run_id)
        grid = mlflow_log.GridRun.of_parent(tracking_uri, run)
        return link_lines(grid_links(grid), run_id=parent_run_id, store=mlflow_log.redact_uri(tracking_uri))
    except Exception:  # noqa: BLE001
        logger.warning("no MLflow links for run %s", parent_run_id, exc_info=True)
        return []


def _pair(metrics: dict, mode: str) -> str:
    a1, a5 = metrics.get(mode_metric(mode, ACC1)), metrics.get(mode_metric(mode, ACC5))
    return "-" if a1 is None or a5 is None else f"{a1:.2f} / {a5:.2f}"


def trials_markdown(client, grid: mlflow_log.GridRun) -> str:
    """One row per child run: model, config, seed, status, efficient and accurate acc1/acc5."""
    runs = mlflow_log.child_runs(client, grid)
    rows = []
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        status = STATUS.get(run.info.status, run.info.status.lower())
        if run.info.status == RUN_KILLED:
            status = tags.get(END_TAG, KILLED)
        rows.append((tags.get(MODEL_TAG, "?"), config_of(tags), int(tags.get(SEED_TAG, 0)),
                     status, _pair(metrics, "efficient"), _pair(metrics, "accurate"),
                     tags.get(ERROR_TAG, "")))
    rows.sort(key=lambda r: r[:3])
    table = markdown_table(
        ("model", "config", "seed", "status", "efficient acc1 / acc5", "accurate acc1 / acc5"),
        [(model, config, str(seed), status + (f" ({error})" if error else ""), eff, acc)
         for model, config, seed, status, eff, acc, error in rows], align="llrlrr")
    return "\n".join([f"## Trials ({len(rows)} runs)", "", *table]) + "\n"


def sheet_markdown(grid: mlflow_log.GridRun, *, log_report: bool) -> str:
    """The result sheet of this grid (``k400ray report``'s markdown); "" while no trial finished
    or when a newer grid of the same MLflow experiment would be reported instead."""
    from k400ray.report import ReportError, build_report

    client = mlflow_log.client_for(grid.tracking_uri)
    newest = mlflow_log.find_grid_runs(client, grid.experiment_id)
    if not newest or newest[0].info.run_id != grid.parent_run_id:
        return ""
    experiment = client.get_experiment(grid.experiment_id).name
    try:
        return build_report(experiment, grid.tracking_uri, fmt="md", log_to_parent=log_report)
    except ReportError:
        return ""


def _under(sheet: str) -> str:
    """The sheet's headings one level down: its title (the grid, its trials) beside the
    description's "Trials" heading, its family tables under the title."""
    return re.sub(r"^(#+) ", lambda m: "#" * min(len(m.group(1)) + 1, 6) + " ", sheet, flags=re.M)


def compose(trials: str, sheet: str, *, limit: int = 7800) -> str:
    """Trials first (they always fit), then as much of the sheet as fits, cut between tables."""
    head = trials + "\n"
    if not sheet:
        return head + "The result sheet appears here once a trial has finished.\n"
    sheet = _under(sheet)
    text = head + sheet
    if len(text) <= limit:
        return text
    room = limit - len(head) - 200
    blocks, kept = sheet.split("\n\n"), []
    for block in blocks:
        if sum(len(b) + 2 for b in kept) + len(block) > room:
            break
        kept.append(block)
    return (head + "\n\n".join(kept) + "\n\nThe sheet's first tables only: the whole of it is the artifact "
            "`report/report.md` of this run, or `k400ray report`.\n")


def refresh_description(grid: mlflow_log.GridRun, *, log_report: bool = False, sheet: str | None = None) -> None:
    """Rewrite the parent run's description from what MLflow holds now (``sheet``: the sheet's
    markdown when the caller just built it)."""
    client = mlflow_log.client_for(grid.tracking_uri)
    if sheet is None:
        sheet = sheet_markdown(grid, log_report=log_report)
    mlflow_log.set_description(client, grid.parent_run_id, compose(trials_markdown(client, grid), sheet))


class DescriptionRefresher:
    """Refreshes the description after each trial ends, in the background, at most one refresh
    running and one waiting; :meth:`close` waits and does the last refresh (with the report's
    artifacts). A failure is logged, never raised: the grid goes on."""

    def __init__(self, grid: mlflow_log.GridRun, refresh: Callable[..., None] = refresh_description) -> None:
        self.grid, self._refresh = grid, refresh
        self._wanted = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="k400ray-description", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wanted.set()

    def on_event(self, event) -> None:
        from k400ray.tune.events import GridStarted, TrialEnded

        if isinstance(event, (GridStarted, TrialEnded)):
            self.request()

    def _loop(self) -> None:
        while True:
            self._wanted.wait()
            if self._stop:
                return
            self._wanted.clear()
            self._safe(log_report=False)

    def _safe(self, *, log_report: bool) -> None:
        if not server_answers(self.grid.tracking_uri):  # an outage: the next event (or --resume) refreshes it
            logger.warning("MLflow server does not answer: the description of run %s is not refreshed",
                           self.grid.parent_run_id)
            return
        try:
            with few_retries():  # MLflow's client would retry for minutes, and the grid's end waits on this
                self._refresh(self.grid, log_report=log_report)
        except Exception:  # noqa: BLE001 - a description is not worth a failed grid
            logger.warning("could not refresh the description of MLflow run %s", self.grid.parent_run_id,
                           exc_info=True)

    def close(self) -> None:
        self._stop = True
        self._wanted.set()
        self._thread.join(timeout=600)
        self._safe(log_report=True)
