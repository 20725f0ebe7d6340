"""The ``tune``, ``report`` and ``demo`` commands; ``register(app)`` adds them to the CLI.

Thin like the rest of the CLI: parse, call one library function, print; user errors are one
line on stderr with exit code 2 (``k400ray.cli.common.fail``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import typer

from k400ray.cli.common import fail
from k400ray.contracts import ERROR

DEMO_DIR = Path("k400ray-demo")
DEMO_SPEC = Path(__file__).resolve().parents[2] / "search_spaces" / "demo.yaml"
# The synthetic set of the demo, built so that toy models show in 4 epochs what the set is for
# (docs/results-synthetic.md): 2 direction pairs (4 classes) of squares sliding up or down, told
# apart by colour (white, yellow), so frame-averaging TSN can reach 50% and no more; 3 squares side
# by side, each video moving 0.6-0.75 of the frame height (5-6 px between the frames the temporal
# models compare: toy I3D's conv1 sees an edge move within its 7 px kernel); 80 train videos per
# class (with 40 or 56, some seeds leave toy I3D under 85% efficient acc1; with 80, none of 8) and
# 12 val videos per class (48 val videos: enough for the paired tests to call TSM/I3D vs TSN after Holm's
# adjustment); 32 frames, the fewest that hold toy I3D's 8x4 clip.
DEMO_SYNTH = dict(num_classes=4, videos_per_class=(80, 12), frames=32, motions=("vertical",), shapes=("square",),
                  colours=("white", "yellow"), copies=3, travel=(0.6, 0.75))


def _load_spec(spec_path: Path, *, need_index: bool):
    from k400ray.tune.spec import SpecError, check_indexes, load_spec

    try:
        spec = load_spec(spec_path)
        return spec, (check_indexes(spec, spec_path) if need_index else None)
    except SpecError as exc:
        fail(str(exc))


def run_tune(spec_path: Path, *, address: Optional[str], resume: bool, smoke: bool = False, links: bool = True):
    """Validate, run the grid, print the summary and (``links``) the MLflow block; exits non-zero
    when trials failed (1) or the run was interrupted (130). Returns the spec and the outcome."""
    from k400ray.data.index import load_manifest
    from k400ray.tune.runner import GridError, format_summary, run_grid
    from k400ray.tracking.mlflow_log import resolve_tracking_uri

    spec, num_classes = _load_spec(spec_path, need_index=True)
    class_names = list(load_manifest(spec.data.train_index)["classes"])
    from k400ray.console.grid_session import run_grid_shown

    try:  # the live view (plain lines without a terminal); Ray's own output goes to a log file
        outcome = run_grid_shown(spec, run_grid=run_grid, smoke=smoke, num_classes=num_classes,
                                 class_names=class_names, address=address, resume=resume)
    except GridError as exc:
        fail(str(exc))
    typer.echo("")
    typer.echo(format_summary(outcome.trials))
    typer.echo(f"\nTune experiment: {outcome.experiment_path}")
    if links or outcome.interrupted or outcome.failed:
        _echo_links(resolve_tracking_uri(spec.mlflow.tracking_uri), outcome.parent_run_id)
    if outcome.interrupted:
        typer.echo(f"error: interrupted; resume with `k400ray tune {spec_path}{' --smoke' * smoke} --resume`", err=True)
        raise typer.Exit(130)
    if outcome.failed:
        failed = sum(t.status == ERROR for t in outcome.trials)
        typer.echo(f"error: {failed} trial(s) failed (errors above, and error.txt in their MLflow runs); "
                   f"retry them with `k400ray tune {spec_path}{' --smoke' * smoke} --resume`", err=True)
        raise typer.Exit(1)
    return spec, outcome


def _echo_links(tracking_uri: str, parent_run_id: str, *, err: bool = False) -> None:
    """The MLflow block of a grid (the UI's command, the runs table in the grid's saved view, the
    parent run), after a blank line."""
    from k400ray.console.mlflow_ui import grid_block

    lines = grid_block(tracking_uri, parent_run_id)
    if lines:
        typer.echo("\n" + "\n".join(lines), err=err)


def tune_command(
    spec_path: Path = typer.Argument(..., metavar="SPEC", help="search-space YAML (search_spaces/*.yaml)"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS or a local Ray)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print trials, resources and estimated GPU-hours; start nothing"),
    resume: bool = typer.Option(False, "--resume", help="continue an interrupted experiment; finished trials are kept"),
    smoke: bool = typer.Option(False, "--smoke", help="check a cluster end to end first: every trial for 1 epoch "
                               "on a few videos per class, both eval modes, as experiment NAME-smoke "
                               "(never mixed with the grid)"),
) -> None:
    """Run the grid (presets x augmentations x seeds) as Ray Tune trials, logged to MLflow."""
    if dry_run and smoke:
        fail("--smoke and --dry-run: choose one (a smoke run is 1 epoch per trial on a few videos per class)")
    if dry_run:
        from k400ray.tune.dry_run import format_dry_run
        from k400ray.tune.search_dry_run import format_search_dry_run

        spec, _ = _load_spec(spec_path, need_index=False)
        typer.echo((format_search_dry_run if spec.search.space else format_dry_run)(spec, spec_path))
        return
    run_tune(spec_path, address=address, resume=resume, smoke=smoke)


def report_command(
    experiment: Optional[str] = typer.Option(None, "--experiment", help="MLflow experiment (default: the spec's)"),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default: the spec's)"),
    fmt: str = typer.Option("md", "--format", help="md | csv | json"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="write grouped bars with 95% CIs to this PNG"),
    spec_path: Optional[Path] = typer.Option(None, "--spec", help="search-space YAML giving experiment and tracking URI"),
    baseline: Optional[str] = typer.Option(
        None, "--baseline", metavar="MODEL",
        help="preset the other models are compared with under the same config (default: the spec's "
             "report.baseline_model, else the first TSN preset of the grid)"),
) -> None:
    """Print the result tables (one per model family) with exact 95% intervals, paired tests vs default and vs
    the baseline model, and Holm-adjusted p-values."""
    if fmt not in ("md", "csv", "json"):
        fail(f"--format must be md, csv or json, got {fmt!r}")
    source = "--baseline"
    if baseline is not None:
        _check_preset(baseline)
    if spec_path is not None:
        spec, _ = _load_spec(spec_path, need_index=False)
        experiment = experiment or spec.mlflow_experiment
        tracking_uri = tracking_uri or spec.mlflow.tracking_uri
        if baseline is None and spec.report.baseline_model:
            baseline, source = spec.report.baseline_model, f"report.baseline_model of {spec_path}"
    if not experiment:
        fail("--experiment or --spec is required")
    rendered, parent_run_id = _report(experiment, tracking_uri or "sqlite:///mlflow.db", plot, baseline=baseline,
                                      baseline_source=source if baseline else "")
    typer.echo(rendered[fmt], nl=False)
    if parent_run_id:  # stderr: stdout is the sheet, maybe csv or json
        from k400ray.tracking.mlflow_log import resolve_tracking_uri

        _echo_links(resolve_tracking_uri(tracking_uri or "sqlite:///mlflow.db"), parent_run_id, err=True)


def _check_preset(name: str) -> None:
    """A misspelt --baseline is a one-line error, not a sheet without model comparisons."""
    from k400ray.presets import PRESETS

    if name not in PRESETS:
        fail(f"--baseline: unknown preset {name!r} (known: {', '.join(sorted(PRESETS))})")


def _report(experiment: str, tracking_uri: str, plot: Optional[Path], *, baseline: Optional[str] = None,
            baseline_source: str = "", **terminal) -> tuple[dict[str, str], str]:
    """The sheet in every format (:func:`k400ray.report.render_report`; ``terminal``: its
    ``width`` and ``whole``) and the reported grid's parent run id, whose description becomes
    the sheet."""
    from k400ray.report import ReportError, render_report
    from k400ray.tracking.mlflow_log import resolve_tracking_uri

    uri = tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        fail(f"no MLflow database at {uri}")
    try:
        rendered = render_report(experiment, resolve_tracking_uri(uri), plot=plot, baseline=baseline,
                                 baseline_source=baseline_source, **terminal)
    except ReportError as exc:
        fail(str(exc))
    return rendered, _describe_grid(experiment, resolve_tracking_uri(uri), rendered["md"])


def _describe_grid(experiment: str, tracking_uri: str, sheet: str) -> str:
    """The reported grid's parent run gets the sheet as its description (MLflow UI); returns
    its id ("" when MLflow could not take it: a note on stderr says why)."""
    from k400ray.console.mlflow_ui import refresh_description
    from k400ray.tracking.mlflow_log import GridRun, client_for, find_grid_runs

    try:
        client = client_for(tracking_uri)
        found = client.get_experiment_by_name(experiment)
        parent = find_grid_runs(client, found.experiment_id)[0]
        grid = GridRun.of_parent(tracking_uri, parent)
        refresh_description(grid, sheet=sheet)
    except Exception as exc:  # noqa: BLE001 - the sheet is printed; the description is a convenience
        typer.echo(f"note: could not update the MLflow description ({type(exc).__name__}: {exc})", err=True)
        return ""
    return grid.parent_run_id


def demo_command() -> None:
    """Synthesise a toy dataset, index it, run search_spaces/demo.yaml through `tune`, print the sheet (what
    fits the terminal; the whole of it in k400ray-demo/report.md) and the MLflow block."""
    from k400ray.data.index import build_index
    from k400ray.data.synth import generate_synthetic
    from k400ray.runtime import init_ray
    from k400ray.tracking.mlflow_log import resolve_tracking_uri
    from k400ray.tune.runner import experiment_path

    data, index = DEMO_DIR / "data", DEMO_DIR / "index"
    if (data / "annotations").is_dir():
        typer.echo(f"synthetic data: {data} (present, kept)")
    else:
        summary = generate_synthetic(data, **DEMO_SYNTH)
        typer.echo(summary.describe() if hasattr(summary, "describe") else f"synthetic data: {data}")
    spec, _ = _load_spec(DEMO_SPEC, need_index=False)
    from k400ray.console.counter import count_progress
    from k400ray.console.ray_log import default_log_path, ray_output_to

    with ray_output_to(default_log_path(spec.storage_path, spec.experiment), title="k400ray demo") as shown:
        init_ray()
        if (index / "manifest.json").is_file():
            shown.write(f"index: {index} (present, kept)\n")
        else:
            with count_progress("indexing", "videos", shown) as update:
                build_index(data, index, progress=update)
            shown.write(f"index: {index}\n")
    from ray import tune

    resume = tune.Tuner.can_restore(experiment_path(spec))  # a second `make demo` only reports
    spec, outcome = run_tune(DEMO_SPEC, address=None, resume=resume, links=False)
    sheet, plot = DEMO_DIR / "report.md", DEMO_DIR / "report.png"
    rendered, _ = _report(spec.mlflow_experiment, spec.mlflow.tracking_uri, plot,
                          width=shutil.get_terminal_size((120, 24)).columns, whole=f"{sheet} (plot: {plot})")
    sheet.write_text(rendered["md"], encoding="utf-8")
    typer.echo("")
    typer.echo(rendered["terminal"], nl=False)
    _echo_links(resolve_tracking_uri(spec.mlflow.tracking_uri), outcome.parent_run_id)


def register(app: typer.Typer) -> None:
    """Add ``tune``, ``report`` and ``demo`` to ``app``."""
    app.command("tune")(tune_command)
    app.command("report")(report_command)
    app.command("demo")(demo_command)
