"""``train``, ``eval``, ``models``: one trial, one checkpoint, the presets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from k400ray.cli.common import fail
from k400ray.contracts import (
    ACC1, ACC5, ACCURATE_ACC1, ACCURATE_ACC5, EFFICIENT_ACC1, EFFICIENT_ACC5, EPOCH, MEAN_CLASS_ACC, SKIPPED_VIDEOS,
    is_tested,
)


def _load_spec_or_fail(spec_path: Path):
    from k400ray.tune.spec import SpecError, check_indexes, load_spec

    try:
        spec = load_spec(spec_path)
        return spec, check_indexes(spec, spec_path)
    except SpecError as exc:
        fail(str(exc))


def _epoch_printer(epochs: int):
    """A line per epoch of ``k400ray train``: loss, efficient acc1/acc5 when evaluated, clips/s,
    data-wait fraction; the final report (accurate mode) is printed by the caller."""
    from k400ray.console.grid_view import epoch_figures

    def show(metrics: dict) -> None:
        if is_tested(metrics) or EPOCH not in metrics:
            return
        typer.echo(f"epoch {int(metrics[EPOCH])}/{epochs}: {epoch_figures(metrics)}")

    return show


def _check_fresh_run(cfg, *, resume: bool, fresh: bool) -> None:
    """Never report an old run's figures as new: an existing Train run of this trial (same name and
    storage) is continued with --resume, replaced with --fresh, else refused (one line)."""
    from k400ray.engine.trial import existing_run, train_run_dir

    if resume and fresh:
        fail("--resume and --fresh: choose one")
    state = existing_run(cfg)
    where = train_run_dir(cfg)
    if state is None:
        if resume:
            typer.echo(f"nothing to resume at {where}: starting a new run")
        return
    if resume:
        typer.echo(f"resuming the Train run at {where} ({state})")
    elif fresh:
        import shutil

        if "://" in where:
            fail(f"--fresh deletes local runs only; delete {where} yourself or change storage_path")
        shutil.rmtree(where)
        typer.echo(f"deleted the previous Train run at {where} ({state}): starting fresh")
    else:
        fail(f"a Train run of {cfg.name} already exists at {where} ({state}): pass --resume to continue it "
             "(a finished run only re-prints its figures), or --fresh to delete it and train again")


def _run_and_print(cfg) -> None:
    """Fit one trial, a line per epoch, then both evaluation modes (exit 1 when the trial fails)."""
    from k400ray.engine.epoch_feed import epoch_reports
    from k400ray.engine.recipe import resolve_recipe
    from k400ray.engine.trial import run_trial, train_run_dir

    recipe = resolve_recipe(cfg)
    typer.echo(f"{cfg.name}: {recipe.epochs} epochs, Train run at {train_run_dir(cfg)}")
    with epoch_reports(_epoch_printer(recipe.epochs)) as callbacks:
        outcome = run_trial(cfg, recipe=recipe, callbacks=callbacks)
    if outcome.error:
        fail(f"trial {cfg.name} failed: {outcome.error}", code=1)
    m = outcome.metrics
    typer.echo(f"{cfg.name}: {m[EPOCH]} epochs, checkpoint {outcome.checkpoint_path}")
    typer.echo(f"  efficient acc1/acc5: {m[EFFICIENT_ACC1]:.2f} / {m[EFFICIENT_ACC5]:.2f}")
    typer.echo(f"  accurate  acc1/acc5: {m[ACCURATE_ACC1]:.2f} / {m[ACCURATE_ACC5]:.2f}")


def train(
    spec_path: Path = typer.Argument(..., metavar="SPEC", help="search-space YAML (data, resources, training)"),
    model: str = typer.Option(..., "--model", help="preset name, e.g. tsm_r50_1x1x8"),
    aug: str = typer.Option(
        "default", "--config", "--aug",
        help="the sheet's configs column: default | randaugment | mixup | cutmix | gluoncv "
             "(gluoncv: tsn_r50_1x1x7 and i3d_r50_32x2x1 only); --aug is its old name",
    ),
    seed: int = typer.Option(0, "--seed"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS or a local Ray)"),
    resume: bool = typer.Option(False, "--resume", help="continue this trial's existing Train run (same spec, "
                                "model, config, seed): from its last checkpoint; a finished one only re-prints"),
    fresh: bool = typer.Option(False, "--fresh", help="delete this trial's existing Train run and train again"),
) -> None:
    """Run one trial (preset x config x seed) under Ray Train, without Tune; a line per epoch, then both
    modes. An existing run of the same trial is refused unless --resume or --fresh."""
    from k400ray.presets import PRESETS, check_config

    spec, num_classes = _load_spec_or_fail(spec_path)
    if model not in PRESETS:
        fail(f"--model: unknown preset {model!r} (known: {', '.join(sorted(PRESETS))})")
    try:
        check_config(model, aug)
    except ValueError as exc:
        fail(f"--config: {exc}")
    from k400ray.runtime import init_ray
    from k400ray.tune.spec import trial_config

    cfg = trial_config(spec, model, aug, seed, num_classes=num_classes)
    _check_fresh_run(cfg, resume=resume, fresh=fresh)
    init_ray(address)
    _run_and_print(cfg)


def eval_checkpoint(
    checkpoint: Path = typer.Argument(..., help="a trial checkpoint directory (holds state.pt)"),
    index_dir: Path = typer.Option(..., "--index", help="index directory to evaluate on"),
    mode: str = typer.Option("efficient", "--mode", help="efficient | accurate"),
    split: str = typer.Option("val", "--split"),
    out: Optional[Path] = typer.Option(None, "--out", help="write per-video predictions (Parquet)"),
    device: str = typer.Option("auto", "--device", help="auto (cuda when visible) | cpu | cuda | cuda:N; bf16 on CUDA"),
    batch_videos: int = typer.Option(4, "--batch-videos", min=1, help="videos per batch (fewer for large views)"),
    decode_tasks: Optional[int] = typer.Option(None, "--decode-tasks", min=1, help="cap on parallel decode tasks"),
    weights: str = typer.Option("last", "--weights", help="last | best (the best efficient-mode epoch's weights)"),
) -> None:
    """Evaluate a saved model in efficient or accurate mode; print acc1/acc5 and mean class accuracy."""
    from k400ray.presets import EVAL_MODES

    if mode not in EVAL_MODES:
        fail(f"--mode must be 'efficient' or 'accurate', got {mode!r}")
    if weights not in ("last", "best"):
        fail(f"--weights must be 'last' or 'best', got {weights!r}")
    if device != "auto" and device != "cpu" and not (device == "cuda" or device.startswith("cuda:")):
        fail(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    from k400ray.engine.offline_eval import evaluate_checkpoint
    from k400ray.runtime import init_ray

    init_ray()
    try:
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        metrics, preds = evaluate_checkpoint(checkpoint, index_dir, mode=mode, split=split, device=device,
                                             batch_videos=batch_videos, decode_tasks=decode_tasks, weights=weights)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if out is not None:
        import pyarrow.parquet as pq

        pq.write_table(preds.to_table(), out)
    typer.echo(
        f"{metrics['preset']} {mode} on {index_dir} ({metrics['videos']} videos, {metrics[SKIPPED_VIDEOS]} skipped, "
        f"{metrics['device']}, {weights} weights, epoch {metrics[EPOCH]}): "
        f"acc1 {metrics[ACC1]:.2f}  acc5 {metrics[ACC5]:.2f}  mean class acc {metrics[MEAN_CLASS_ACC]:.2f}"
    )


def models(fmt: str = typer.Option("table", "--format", help="table | json"),
           scale: str = typer.Option("full", help="full | toy"),
           num_classes: int = typer.Option(400, help="classifier size used for the counts")) -> None:
    """List the model presets with parameters and GFLOPs (multiply-adds) per view."""
    if fmt not in ("table", "json"):
        fail(f"--format must be 'table' or 'json', got {fmt!r}")
    if scale not in ("full", "toy"):
        fail(f"--scale must be 'full' or 'toy', got {scale!r}")
    # Said before torch is imported and every preset's model is built and counted: seconds of silence otherwise.
    typer.echo(f"counting the presets' parameters and GFLOPs ({scale} scale, models built without weights)...",
               err=True)
    from k400ray.preset_summary import format_table, preset_summaries

    rows = preset_summaries(scale=scale, num_classes=num_classes)
    typer.echo(json.dumps(rows, indent=2) if fmt == "json" else format_table(rows))


def register(app: typer.Typer) -> None:
    """Add ``train``, ``eval`` and ``models`` to ``app``."""
    app.command("train")(train)
    app.command("eval")(eval_checkpoint)
    app.command("models")(models)
