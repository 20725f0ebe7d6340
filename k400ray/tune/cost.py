"""What a grid will cost before anything starts (``k400ray tune SPEC --dry-run``).

Compute only, from model FLOPs::

    per trial = epochs x (train videos x 3 x F_train + val videos x views_eff x F_eff)
                + val videos x views_acc x F_acc                  (the accurate-mode test, once)

``F`` is the FLOPs of one forward pass of one view (2 x the multiply-adds that
``k400ray.models.summary.count_gflops`` counts), and 3 x stands for forward + backward
(backward ~ 2 x forward). Divided by a sustained throughput per GPU (peak x utilisation,
printed with the estimate), it gives GPU-hours; divided again by the GPUs of a trial, hours of
wall clock. Decoding, I/O and start-up are not counted: for video training they often
dominate, so read the figure as a lower bound.

Each row also shows what the trial trains with: its config, the base lr after linear scaling to
the spec's workers x batch per worker, the total batch and the schedule, read from the trial's
own resolved recipe (:func:`k400ray.engine.recipe.resolve_recipe` on the ``TrialConfig`` the
trial gets: the object its workers read), and the views of that recipe's preset.

Needs no Ray and no index: without one, the Kinetics-400 split sizes are used (and said so).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

from k400ray.engine.recipe import TrialRecipe, resolve_recipe
from k400ray.presets import ModelPreset
from k400ray.tune.spec import SearchSpec, trial_config

# One H100-class GPU in bf16 dense (~990 TFLOP/s peak on H100 SXM, ~312 on A100): 400 is a
# middle figure for a mixed fleet; 40% model-FLOP utilisation is typical for video CNNs.
PEAK_TFLOPS = 400.0
UTILISATION = 0.40
# Kinetics-400 as released (Academic Torrents copy): ~240k train / ~19.8k val videos.
K400_TRAIN_VIDEOS = 240_000
K400_VAL_VIDEOS = 19_800
DRIVER_CPUS = 0.1  # the Tune trial function only waits on its TorchTrainer


@dataclass(frozen=True)
class VideoCounts:
    train: int
    val: int
    source: str  # where the counts come from, printed with the estimate


@dataclass(frozen=True)
class TrialCost:
    preset: str
    aug: str  # the config
    seed: int
    recipe: TrialRecipe
    train_gmacs: float  # one train clip, forward
    efficient_gmacs: float  # one efficient-mode view
    efficient_views: int
    accurate_gmacs: float
    accurate_views: int
    gpu_hours: float

    @property
    def epochs(self) -> int:
        return self.recipe.epochs


def video_counts(spec: SearchSpec) -> VideoCounts:
    """Indexed video counts when the index exists here, else the Kinetics-400 sizes."""
    from k400ray.data.index import load_manifest

    try:
        train = load_manifest(spec.data.train_index)["splits"].get("train", {}).get("videos", 0)
        val = load_manifest(spec.val_index)["splits"].get("val", {}).get("videos", 0)
        source = f"indexed videos in {spec.data.train_index}"
    except FileNotFoundError:
        train, val = K400_TRAIN_VIDEOS, K400_VAL_VIDEOS
        source = f"Kinetics-400 sizes: no index at {spec.data.train_index} on this machine"
    limit = spec.training.limit_videos
    if limit:
        train, val = min(train, limit), min(val, limit)
        source += f", capped by training.limit_videos={limit}"
    return VideoCounts(train, val, source)


def _cache_path() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "k400ray" / "gmacs.json"


def _load_cache() -> dict:
    try:
        return json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_cache(cache: dict) -> None:
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home only costs the recount next time


def view_gmacs(preset: ModelPreset, frames: int, crop: int, num_classes: int, cache: dict | None = None) -> float:
    """Multiply-adds (1e9) of one forward pass on ``(1, 3, frames, crop, crop)``.

    Counted on the ``meta`` device; cached on disk by the architecture's repr, since building
    the full models is what makes a dry run slow.
    """
    from k400ray.models.build import build_model
    from k400ray.models.summary import count_gflops

    arch = replace(preset.arch, pretrained=None)
    key = f"{hashlib.sha1(repr(arch).encode()).hexdigest()[:16]}:{frames}x{crop}:{num_classes}"
    if cache is not None and key in cache:
        return cache[key]
    import torch

    with torch.device("meta"):
        model = build_model(arch, num_classes)
    value = count_gflops(model, (1, 3, frames, crop, crop))
    if cache is not None:
        cache[key] = value
    return value


def _view_costs(preset: ModelPreset, num_classes: int, cache: dict) -> tuple[float, float, int, float, int]:
    """GMACs of one train, efficient and accurate view of ``preset``, with the views per mode."""
    p = preset
    return (
        view_gmacs(p, p.train_sampling.view_frames, p.train_crop.crop_size, num_classes, cache),
        view_gmacs(p, p.efficient.sampling.view_frames, p.efficient.crop_size, num_classes, cache),
        p.efficient.num_views,
        view_gmacs(p, p.accurate.sampling.view_frames, p.accurate.crop_size, num_classes, cache),
        p.accurate.num_views,
    )


def estimate(spec: SearchSpec, counts: VideoCounts, *, num_classes: int = 400) -> list[TrialCost]:
    """One row per grid point, from the recipe the trial itself resolves."""
    cache = _load_cache()
    before = dict(cache)
    per_cell: dict[tuple[str, str], tuple] = {}
    sustained = PEAK_TFLOPS * 1e12 * UTILISATION
    rows = []
    for preset, aug, seed in spec.grid_points():
        recipe = resolve_recipe(trial_config(spec, preset, aug, seed, num_classes=num_classes))
        if (preset, aug) not in per_cell:
            per_cell[(preset, aug)] = _view_costs(recipe.model_preset(), num_classes, cache)
        g_train, g_eff, v_eff, g_acc, v_acc = per_cell[(preset, aug)]
        flops = 2e9 * (
            recipe.epochs * (counts.train * 3 * g_train + counts.val * v_eff * g_eff) + counts.val * v_acc * g_acc
        )
        rows.append(TrialCost(preset, aug, seed, recipe, g_train, g_eff, v_eff, g_acc, v_acc,
                              flops / sustained / 3600))
    if cache != before:
        _save_cache(cache)
    return rows


def resources_line(spec: SearchSpec) -> str:
    r = spec.resources
    per_worker = f"{r.cpus_per_worker:g} CPU" + (f" + {r.gpus_per_worker} GPU" if r.gpus_per_worker else "")
    gpus = r.workers_per_trial * r.gpus_per_worker
    total = f"{r.workers_per_trial * r.cpus_per_worker:g} CPU" + (f" + {gpus} GPU" if gpus else "")
    limit = f"at most {r.max_concurrent_trials} trials at once" if r.max_concurrent_trials else "no concurrency limit"
    return (f"resources per trial: {r.workers_per_trial} workers x ({per_worker}) = {total}, "
            f"+ {DRIVER_CPUS:g} CPU for the trial driver, + decode tasks ({r.decode_cpus:g} CPU each); {limit}")


def format_dry_run(spec: SearchSpec, spec_path: str | Path) -> str:
    counts = video_counts(spec)
    rows = estimate(spec, counts)
    r = spec.resources
    lines = [
        f"{spec_path}: experiment {spec.experiment!r}, scale {spec.scale}, {len(rows)} trials ({_grid_shape(spec)})",
        resources_line(spec),
        f"videos: {counts.train:,} train / {counts.val:,} val ({counts.source})",
        "lr: the trial's base lr, the recipe's scaled linearly to the total batch (* = set by training.lr); "
        "batch: total (workers x per worker); schedule: in epochs",
        "",
    ]
    header = ("preset", "config", "seed", "epochs", "lr", "batch", "schedule", "GMACs train/eff/acc view",
              "views eff/acc", "GPU-hours")
    lr_mark = "*" if spec.training.lr is not None else ""
    body = [
        (c.preset, c.aug, str(c.seed), str(c.epochs), f"{c.recipe.lr:.4g}{lr_mark}",
         f"{c.recipe.total_batch} ({c.recipe.world_size}x{c.recipe.batch_per_worker})", schedule_text(c.recipe),
         f"{c.train_gmacs:.2f} / {c.efficient_gmacs:.2f} / {c.accurate_gmacs:.2f}",
         f"{c.efficient_views} / {c.accurate_views}", _hours(c.gpu_hours))
        for c in rows
    ]
    widths = [max(len(x[i]) for x in (header, *body)) for i in range(len(header))]
    right = {2, 3, 4, 5, 9}
    for cells in (header, tuple("-" * w for w in widths), *body):
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip())
    total = sum(c.gpu_hours for c in rows)
    lines += ["", f"estimated cost: {_hours(total)} GPU-hours for {len(rows)} trials"]
    gpus = r.workers_per_trial * r.gpus_per_worker
    if gpus:
        waves = math.ceil(len(rows) / (r.max_concurrent_trials or len(rows)))
        per_trial = max(c.gpu_hours for c in rows) / gpus
        lines.append(f"  ~{_hours(per_trial)} h wall clock per trial on {gpus} GPUs; ~{_hours(waves * per_trial)} h for the grid "
                     f"({waves} wave(s) of {r.max_concurrent_trials or len(rows)} trials)")
    else:
        lines.append("  (this spec requests no GPUs; the figure is what the same work would take on the GPU below)")
    lines.append(
        f"assumption: {PEAK_TFLOPS:.0f} TFLOP/s bf16 peak per GPU x {UTILISATION:.0%} utilisation = "
        f"{PEAK_TFLOPS * UTILISATION:.0f} TFLOP/s sustained; FLOPs = 2 x multiply-adds; backward = 2 x forward; "
        "compute only (decoding, I/O and start-up not counted)"
    )
    lines.append("dry run: nothing was started")
    return "\n".join(lines)


def _grid_shape(spec: SearchSpec) -> str:
    g = spec.grid
    if g.rows is not None:
        return f"{_n(len(g.rows), 'row')} of grid.rows"
    return f"{_n(len(g.presets), 'preset')} x {_n(len(g.augmentations), 'config')} x {_n(len(g.seeds), 'seed')}"


def schedule_text(recipe: TrialRecipe) -> str:
    """The schedule in epochs, one line: ``step x0.1 at 40,80, no warmup``, ``cosine to 0, warmup 5``."""
    if recipe.lr_policy == "cosine":
        text = "cosine to 0"
    else:
        steps = ",".join(str(m) for m in recipe.milestones)
        text = f"step x{recipe.gamma:g} at {steps}" if steps else "constant"
    return text + (f", warmup {recipe.warmup_epochs}" if recipe.warmup_epochs else ", no warmup")


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _hours(value: float) -> str:
    """One decimal for real grids; significant digits for toy ones (which cost seconds)."""
    return f"{value:,.1f}" if value >= 1 else f"{value:.2g}"
