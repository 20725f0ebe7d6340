"""``k400ray report``: the sheet's tables rebuilt from MLflow, with their uncertainty.

``load`` reads the newest grid of an MLflow experiment; ``tables`` pools seeds into cells,
compares each augmentation with ``default`` and each model with the baseline model on the same
videos and seeds, and Holm-adjusts all those tests together (the statistics are ``stats``');
``sheet`` renders them as markdown or for a terminal, ``exports`` as csv or json; ``plot`` draws
the bars. The rendered tables and plot are also logged to the grid's parent run.
"""

from __future__ import annotations

from pathlib import Path

from k400ray.report.load import ReportError, load_grid
from k400ray.report.search import is_search
from k400ray.report.exports import format_csv, format_json
from k400ray.report.sheet import format_markdown, format_terminal
from k400ray.report.tables import baseline_model, build_tables

__all__ = ["ReportError", "build_report", "render_report"]


def build_report(experiment: str, tracking_uri: str, *, fmt: str = "md", **kwargs) -> str:
    """The report of the newest grid in ``experiment`` as ``md``, ``csv`` or ``json`` (the
    options of :func:`render_report`)."""
    return render_report(experiment, tracking_uri, **kwargs)[fmt]


def render_report(experiment: str, tracking_uri: str, *, plot: Path | None = None, log_to_parent: bool = True,
                  baseline: str | None = None, baseline_source: str = "", width: int | None = None,
                  whole: str = "") -> dict[str, str]:
    """The report of the newest grid in ``experiment`` in every format: ``md``, ``csv``, ``json``
    and, with a ``width``, ``terminal`` (what fits that many columns; ``whole``: where the
    markdown is, for the columns left out).

    The baseline model: ``baseline`` (the command line, or a spec it was given; say which in
    ``baseline_source``), else the ``report.baseline_model`` of the spec the grid ran with, else
    the first TSN preset of the grid."""
    grid = load_grid(experiment, tracking_uri)
    if is_search(grid.parent_params):
        return _render_search(grid, experiment, plot=plot, log_to_parent=log_to_parent, width=width)
    baseline, baseline_source = _baseline(grid, baseline, baseline_source)
    cells, comparisons = build_tables(grid.records, baseline=baseline)
    title = f"{grid.grid or experiment}: {len(grid.records)} finished trials (parent run {grid.parent_run_id})"
    chosen = {"baseline": baseline, "baseline_source": baseline_source}
    rendered = {
        "md": format_markdown(cells, comparisons, title=title, **chosen),
        "csv": format_csv(cells, comparisons, baseline=baseline),
        "json": format_json(cells, comparisons, meta={
            "experiment": experiment, "grid": grid.grid, "parent_run_id": grid.parent_run_id,
            "finished_trials": len(grid.records), "unfinished_trials": grid.unfinished,
        }, **chosen),
    }
    if width is not None:
        rendered["terminal"] = format_terminal(cells, comparisons, title=title, width=width, whole=whole, **chosen)
    if grid.unfinished:
        left = ", ".join(f"{n} {status}" for status, n in grid.unfinished.items())
        for fmt in ("md", "terminal"):
            if fmt in rendered:
                rendered[fmt] += f"\nNot in the tables: trial runs that did not finish ({left}).\n"
    if plot is not None:
        from k400ray.report.plot import plot_cells

        plot_cells(cells, plot, title=grid.grid or experiment)
    if log_to_parent:
        _log(grid, {k: v for k, v in rendered.items() if k != "terminal"}, plot)
    return rendered


def _render_search(grid, experiment: str, *, plot: Path | None, log_to_parent: bool,
                   width: int | None) -> dict[str, str]:
    """A search's report (:mod:`k400ray.report.search`): best points and acc1 against each axis,
    in place of the sheet (whose cells would pool different searched values)."""
    from k400ray.report.search import build_search_tables, format_search_markdown, search_csv, search_json

    tables = build_search_tables(grid.records, grid.parent_params, grid.search_space)
    title = f"{grid.grid or experiment}: {len(grid.records)} finished trials (parent run {grid.parent_run_id})"
    md = format_search_markdown(tables, title=title)
    if grid.unfinished:
        left = ", ".join(f"{n} {status}" for status, n in grid.unfinished.items())
        md += f"\nNot in the tables: trial runs that did not finish ({left}).\n"
    rendered = {"md": md, "csv": search_csv(tables), "json": search_json(tables, meta={
        "experiment": experiment, "grid": grid.grid, "parent_run_id": grid.parent_run_id,
        "finished_trials": len(grid.records), "unfinished_trials": grid.unfinished})}
    if width is not None:
        rendered["terminal"] = md
    plots: list[Path] = []
    if plot is not None:
        from k400ray.report.search import plot_axes

        plots = plot_axes(tables, grid.records, plot, title=grid.grid or experiment)
    if log_to_parent:
        _log(grid, {k: v for k, v in rendered.items() if k != "terminal"}, None)
        from k400ray.tracking.mlflow_log import client_for

        client = client_for(grid.tracking_uri)
        for path in plots:
            client.log_artifact(grid.parent_run_id, str(path), "report")
    return rendered


def _baseline(grid, requested: str | None, source: str) -> tuple[str | None, str]:
    """(baseline model, where it came from): the caller's, the grid's spec's, or the default."""
    if requested:
        return requested, source or "chosen on the command line"
    if grid.baseline_model:
        return grid.baseline_model, "report.baseline_model of the grid's spec"
    default = baseline_model(r.preset for r in grid.records)
    return default, ("default: the first TSN preset of the grid" if default else "")


def _log(grid, rendered: dict[str, str], plot: Path | None) -> None:
    from k400ray.tracking.mlflow_log import client_for

    client = client_for(grid.tracking_uri)
    for fmt, text in rendered.items():
        client.log_text(grid.parent_run_id, text, f"report/report.{fmt}")
    if plot is not None:
        client.log_artifact(grid.parent_run_id, str(plot), "report")
