"""``k400ray tune`` / ``demo`` as the user sees them: Ray's output into a log file (its path
printed first), the grid's live view or plain lines on stdout, the MLflow block (UI command and
links) once as soon as the parent run exists, so a long grid can be followed in the UI (the
command prints it again once, at its end), and the parent run's description kept up to date."""

from __future__ import annotations

import sys
from typing import Callable

from k400ray.console.grid_view import grid_view
from k400ray.console.mlflow_ui import DescriptionRefresher, link_lines
from k400ray.console.ray_log import default_log_path, ray_output_to
from k400ray.runtime import finish_ray
from k400ray.tracking import mlflow_log
from k400ray.tracking.ui_links import grid_links


def run_grid_shown(spec, *, run_grid: Callable, smoke: bool = False, live: bool | None = None, **kwargs):
    """``run_grid(spec, **kwargs)`` (:func:`k400ray.tune.runner.run_grid`) with the console around
    it. Its exceptions (``GridError``) propagate after the terminal is restored."""
    log_path = default_log_path(spec.storage_path, spec.experiment + ("-smoke" if smoke else ""))
    print(f"Ray's output (Tune's tables, worker and raylet messages): {log_path}", flush=True)
    refresher: list[DescriptionRefresher] = []
    with ray_output_to(log_path, title=f"k400ray tune {spec.experiment}") as shown:
        view = grid_view(shown, live=live)

        def parent_opened(grid: mlflow_log.GridRun) -> None:
            for line in link_lines(grid_links(grid), run_id=grid.parent_run_id,
                                   store=mlflow_log.redact_uri(grid.tracking_uri)):
                view.note(line)
            refresher.append(DescriptionRefresher(grid))

        def on_event(event) -> None:
            view(event)
            for r in refresher:
                r.on_event(event)

        with view:
            try:
                return run_grid(spec, smoke=smoke, echo=view.note, on_event=on_event, on_parent_run=parent_opened,
                                **kwargs)
            finally:
                for r in refresher:
                    r.close()
                finish_ray()  # before the terminal is restored: Ray's last words go to the log
                sys.stdout.flush()
