"""``k400ray report``: the sheet's tables rebuilt from MLflow, with their uncertainty.

``load`` reads the newest grid of an MLflow experiment; ``tables`` pools seeds into cells and
compares each augmentation with ``default`` on the same videos (``stats``); ``plot`` draws the
bars. The rendered tables and plot are also logged to the grid's parent run.
"""

from __future__ import annotations

from pathlib import Path

from k400ray.report.load import ReportError, load_grid
from k400ray.report.tables import build_tables, format_csv, format_json, format_markdown

__all__ = ["ReportError", "build_report"]


def build_report(experiment: str, tracking_uri: str, *, fmt: str = "md", plot: Path | None = None,
                 log_to_parent: bool = True) -> str:
    """Render the report of the newest grid in ``experiment`` as ``md``, ``csv`` or ``json``."""
    grid = load_grid(experiment, tracking_uri)
    cells, comparisons = build_tables(grid.records)
    title = f"{grid.grid or experiment}: {len(grid.records)} finished trials (parent run {grid.parent_run_id})"
    rendered = {
        "md": format_markdown(cells, comparisons, title=title),
        "csv": format_csv(cells, comparisons),
        "json": format_json(cells, comparisons, meta={
            "experiment": experiment, "grid": grid.grid, "parent_run_id": grid.parent_run_id,
            "finished_trials": len(grid.records), "unfinished_trials": grid.unfinished,
        }),
    }
    if grid.unfinished:
        left = ", ".join(f"{n} {status}" for status, n in grid.unfinished.items())
        rendered["md"] += f"\nNot in the tables: trial runs that did not finish ({left}).\n"
    if plot is not None:
        from k400ray.report.plot import plot_cells

        plot_cells(cells, plot, title=grid.grid or experiment)
    if log_to_parent:
        _log(grid, rendered, plot)
    return rendered[fmt]


def _log(grid, rendered: dict[str, str], plot: Path | None) -> None:
    from k400ray.tracking.mlflow_log import client_for

    client = client_for(grid.tracking_uri)
    for fmt, text in rendered.items():
        client.log_text(grid.parent_run_id, text, f"report/report.{fmt}")
    if plot is not None:
        client.log_artifact(grid.parent_run_id, str(plot), "report")
