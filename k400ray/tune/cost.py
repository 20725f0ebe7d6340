"""What a grid will cost before anything starts (``k400ray tune SPEC --dry-run``), from measurements.

Per trial, on ``G`` GPUs of the trial's kind with ``D`` decode cores (``cluster_shape``)::

    train clips/s  = min(G x GPU clips/s, D x decode clips/s per core x Ray Data's share)
    epoch          = train videos / train clips/s + the epoch's pipeline start
    efficient eval = val videos / min(G x views/s / views, D_eval x decode videos/s per core x share)
    wall clock     = epochs x epoch + evaluations x efficient eval + accurate eval + start-up
    GPU-hours      = wall clock x G  (a trial holds its GPUs while it waits for data)

GPU clips/s come from ``bench train`` records (``throughput``: measured, or a FLOP model
calibrated on the measured kinds, and each row says which); decode clips/s per core from
``bench data`` on a prepared copy, divided by the raw / prepared ratio for a raw copy. The
slower side bounds the trial: the dry run names it and the decode cores per GPU that would
balance it. Efficient evaluation runs every ``eval_interval`` epochs and after the last, the
accurate mode once, with the trial's bounded evaluation decode tasks. Dollars: GPU node-hours,
decode node-hours (the trial's share of the cluster's decode nodes, for its whole wall clock),
the head for the grid's wall clock, and storage reads (EFS elastic throughput bills every GB
read: the dataset once per epoch per trial).

Each row also shows what the trial trains with: its config, the base lr after linear scaling to
the spec's workers x batch per worker, the total batch and the schedule, read from the trial's
own resolved recipe (:func:`k400ray.engine.recipe.resolve_recipe` on the ``TrialConfig`` the
trial gets: the object its workers read), and the views of that recipe's preset.

Needs no Ray and no index: without one, the Kinetics-400 split sizes are used (and said so).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

from k400ray.engine.recipe import TrialRecipe, resolve_recipe
from k400ray.presets import GLUONCV, PRESETS, ModelPreset
from k400ray.tune import throughput as tp
from k400ray.tune.cluster_shape import ClusterShape, cluster_shape, efs_price, nodes_per_trial
from k400ray.text_table import text_table
from k400ray.tune.spec import SearchSpec, trial_config

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
class DecodeCores:
    """Decode cores one trial has, for training and for evaluation, and where the figure comes from."""

    train: float
    eval: float
    how: str


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
    gpus: int
    gpu_rate: tp.Rate  # training clips/s of one GPU
    decode_rate: float  # training clips/s the trial's decode cores deliver
    balance_cores_per_gpu: float  # decode cores per GPU at which both sides are equal
    evaluations: int  # efficient-mode evaluations
    train_h: float  # all epochs, pipeline starts included
    efficient_h: float  # all efficient evaluations
    accurate_h: float
    startup_h: float

    @property
    def epochs(self) -> int:
        return self.recipe.epochs

    @property
    def bottleneck(self) -> str:
        return "decode" if self.decode_rate < self.gpus * self.gpu_rate.clips_per_s else "GPU"

    @property
    def train_clips_per_s(self) -> float:
        return min(self.decode_rate, self.gpus * self.gpu_rate.clips_per_s)

    @property
    def wall_h(self) -> float:
        return self.train_h + self.efficient_h + self.accurate_h + self.startup_h

    @property
    def gpu_hours(self) -> float:
        return self.wall_h * self.gpus


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
    from k400ray.models.summary import arch_gmacs

    arch = replace(preset.arch, pretrained=None)
    key = f"{hashlib.sha1(repr(arch).encode()).hexdigest()[:16]}:{frames}x{crop}:{num_classes}"
    if cache is not None and key in cache:
        return cache[key]
    value = arch_gmacs(arch, num_classes, (1, 3, frames, crop, crop))
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


def _reference_gmacs(cache: dict) -> tuple[dict[str, float], dict[str, str]]:
    """Training-clip GMACs (400 classes, as benchmarked) and backbones of every measured preset."""
    names = {p for kind in tp.records()["gpu_train"].values() for p in kind["presets"]}
    gmacs, backbones = {}, {}
    for name in sorted(names):
        p = PRESETS[name]
        gmacs[name] = view_gmacs(p, p.train_sampling.view_frames, p.train_crop.crop_size, 400, cache)
        backbones[name] = p.arch.backbone
    return gmacs, backbones


def trial_gpus(spec: SearchSpec) -> int:
    """GPUs of one trial; a spec without GPUs is priced as if each worker had one."""
    r = spec.resources
    return r.workers_per_trial * max(1, r.gpus_per_worker)


def concurrency(spec: SearchSpec, trials: int) -> int:
    return min(spec.resources.max_concurrent_trials or trials, max(1, trials))


def decode_cores(spec: SearchSpec, shape: ClusterShape, trials: int) -> DecodeCores:
    """Decode cores per trial: ``cost.decode_cores_per_gpu``, else the trial's GPU nodes'
    ``decode_cpu`` plus its share of the decode nodes (they serve the trials that run at once);
    then in decode tasks (each holds ``decode_cpus``, decodes on one core), capped by
    ``resources.decode_tasks``; evaluation by its own bound (``eval_decode_tasks``, default
    ``decode_tasks`` or 2 per worker)."""
    r = spec.resources
    gpus = trial_gpus(spec)
    if spec.cost.decode_cores_per_gpu is not None:
        cores, how = spec.cost.decode_cores_per_gpu * gpus, f"cost.decode_cores_per_gpu {spec.cost.decode_cores_per_gpu:g}"
    else:
        nodes = nodes_per_trial(shape, gpus)
        shared = shape.decode_nodes * shape.decode_node_cores / concurrency(spec, trials)
        cores = nodes * shape.gpu_node_decode_cores + shared
        how = f"{shape.source}: {nodes} GPU node(s) x {shape.gpu_node_decode_cores:g} decode_cpu"
        if shape.decode_nodes:
            how += (f" + {shape.decode_nodes} decode node(s) x {shape.decode_node_cores:g} "
                    f"shared by {concurrency(spec, trials)} trial(s)")
    tasks = cores / r.decode_cpus
    if r.decode_tasks:
        tasks, how = min(tasks, r.decode_tasks), how + f", capped by resources.decode_tasks {r.decode_tasks}"
    eval_tasks = min(tasks, r.eval_decode_tasks or r.decode_tasks or 2 * r.workers_per_trial)
    return DecodeCores(tasks, eval_tasks, how)


def efficient_evaluations(epochs: int, interval: int) -> int:
    """Efficient mode runs after every ``interval``-th epoch and after the last."""
    return epochs // interval + (1 if epochs % interval else 0)


def _eval_hours(videos: int, views: int, view_gmacs_: float, mode: str, preset: ModelPreset, gpus: int,
                rate: tp.Rate, train_gmacs: float, cores: float, share: float, resolution: str) -> float:
    gpu_videos = gpus * tp.eval_views_per_s(rate, train_gmacs, view_gmacs_) / views
    decode_videos = cores * share * tp.decode_videos_per_core_s(preset, mode, resolution)
    return (videos / min(gpu_videos, decode_videos) + tp.epoch_start_s(videos, shuffled=False)) / 3600


def estimate(spec: SearchSpec, counts: VideoCounts, *, num_classes: int = 400, shape: ClusterShape | None = None,
             spec_path: str | Path = "spec") -> list[TrialCost]:
    """One row per grid point, from the recipe the trial itself resolves."""
    shape = shape or cluster_shape(spec, spec_path)
    cache = _load_cache()
    before = dict(cache)
    ref_gmacs, ref_backbones = _reference_gmacs(cache)
    points = spec.grid_points()
    cores = decode_cores(spec, shape, len(points))
    gpus = trial_gpus(spec)
    resolution = spec.cost.resolution
    per_cell: dict[tuple[str, str], tuple] = {}
    rows = []
    for preset, aug, seed in points:
        recipe = resolve_recipe(trial_config(spec, preset, aug, seed, num_classes=num_classes))
        model = recipe.model_preset()
        if (preset, aug) not in per_cell:
            per_cell[(preset, aug)] = _view_costs(model, num_classes, cache)
        g_train, g_eff, v_eff, g_acc, v_acc = per_cell[(preset, aug)]
        rate = tp.train_rate(preset, model, shape.gpu, g_train, ref_gmacs, ref_backbones,
                             exact=spec.scale == "full" and aug != GLUONCV)
        share = spec.cost.decode_efficiency or tp.ray_data_efficiency(model)
        per_core = tp.decode_videos_per_core_s(model, "train", resolution) * share
        decode_rate = cores.train * per_core
        train_rate = min(decode_rate, gpus * rate.clips_per_s)
        epoch_h = (counts.train / train_rate + tp.epoch_start_s(counts.train, shuffled=True)) / 3600
        evals = efficient_evaluations(recipe.epochs, recipe.eval_interval)
        common = dict(preset=model, gpus=gpus, rate=rate, train_gmacs=g_train, cores=cores.eval, share=share,
                      resolution=resolution)
        rows.append(TrialCost(
            preset, aug, seed, recipe, g_train, g_eff, v_eff, g_acc, v_acc, gpus, rate, decode_rate,
            rate.clips_per_s / per_core, evals, recipe.epochs * epoch_h,
            evals * _eval_hours(counts.val, v_eff, g_eff, "efficient", **common),
            _eval_hours(counts.val, v_acc, g_acc, "accurate", **common),
            spec.cost.startup_minutes / 60,
        ))
    if cache != before:
        _save_cache(cache)
    return rows


def grid_wall_hours(rows: list[TrialCost], slots: int) -> float:
    """Trials in spec order, each to the first free slot (as Tune's FIFO fills them)."""
    free = [0.0] * max(1, slots)
    for row in rows:
        start = heapq.heappop(free)
        heapq.heappush(free, start + row.wall_h)
    return max(free)


def decode_nodes_used(spec: SearchSpec, shape: ClusterShape, row: TrialCost, trials: int) -> float:
    """Decode nodes a trial keeps busy: the cores it can use (its decode cores, or the balance
    when the GPU bounds it) beyond its GPU nodes' own, in whole nodes (the autoscaler starts
    whole nodes), at most its share of the cluster's decode nodes."""
    if not shape.decode_node_cores:
        return 0.0
    cores = decode_cores(spec, shape, trials)
    used = min(cores.train, row.balance_cores_per_gpu * row.gpus) * spec.resources.decode_cpus
    extra = used - nodes_per_trial(shape, row.gpus) * shape.gpu_node_decode_cores
    nodes = math.ceil(extra / shape.decode_node_cores - 1e-9) if extra > 0 else 0
    if shape.decode_nodes:
        nodes = min(nodes, shape.decode_nodes / concurrency(spec, trials))
    return float(nodes)


K400_RAW_GB = 350.0  # the CVDF copy at source resolution, train + val


def dataset_gb(spec: SearchSpec) -> tuple[float, str]:
    """GB one epoch reads from shared storage, and where the figure comes from: ``cost.dataset_gb``,
    else the bytes of the train split's indexed videos, else Kinetics-400's raw size."""
    if spec.cost.dataset_gb is not None:
        return spec.cost.dataset_gb, "cost.dataset_gb"
    try:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from k400ray.data.index import shard_paths

        total = sum(pc.sum(pq.read_table(p, columns=["bytes"])["bytes"]).as_py() or 0
                    for p in shard_paths(spec.data.train_index, "train"))
        return total / 1e9, f"the indexed train videos in {spec.data.train_index}"
    except (FileNotFoundError, OSError, KeyError, ValueError):
        return K400_RAW_GB, "Kinetics-400 raw, no index here; a prepared copy is smaller: set cost.dataset_gb"


@dataclass(frozen=True)
class Dollars:
    gpu_node_hours: float
    gpu_nodes: float | None  # None: no price for this GPU kind
    decode_node_hours: float
    decode_nodes: float | None
    head: float | None
    storage_gb: float
    storage: float

    @property
    def total(self) -> float:
        return sum(x for x in (self.gpu_nodes, self.decode_nodes, self.head, self.storage) if x is not None)


def dollars(spec: SearchSpec, shape: ClusterShape, rows: list[TrialCost], grid_h: float) -> Dollars:
    gpu_node_h = sum(r.wall_h * nodes_per_trial(shape, r.gpus) for r in rows)
    decode_node_h = sum(r.wall_h * decode_nodes_used(spec, shape, r, len(rows)) for r in rows)
    gb = dataset_gb(spec)[0] * sum(r.epochs for r in rows)

    def price(inst, hours):
        return None if inst is None else inst.usd_per_hour * hours

    return Dollars(gpu_node_h, price(shape.gpu_instance, gpu_node_h), decode_node_h,
                   price(shape.decode_instance, decode_node_h) if decode_node_h else 0.0,
                   price(shape.head_instance, grid_h), gb, gb * efs_price(spec))


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
    shape = cluster_shape(spec, spec_path)
    rows = estimate(spec, counts, shape=shape, spec_path=spec_path)
    cores = decode_cores(spec, shape, len(rows))
    lines = [
        f"{spec_path}: experiment {spec.experiment!r}, scale {spec.scale}, {len(rows)} trials ({_grid_shape(spec)})",
        resources_line(spec),
        f"videos: {counts.train:,} train / {counts.val:,} val ({counts.source})",
        "lr: the trial's base lr, the recipe's scaled linearly to the total batch (* = set by training.lr); "
        "batch: total (workers x per worker); schedule: in epochs; clips/s: training, the trial's GPUs | its decode cores",
        "",
    ]
    header = ("preset", "config", "seed", "epochs", "lr", "batch", "schedule", "GMACs train/eff/acc view",
              "views eff/acc", "clips/s GPU | decode", "bound", "wall h", "GPU-hours")
    lr_mark = "*" if spec.training.lr is not None else ""
    body = [
        (c.preset, c.aug, str(c.seed), str(c.epochs), f"{c.recipe.lr:.4g}{lr_mark}",
         f"{c.recipe.total_batch} ({c.recipe.world_size}x{c.recipe.batch_per_worker})", schedule_text(c.recipe),
         f"{c.train_gmacs:.2f} / {c.efficient_gmacs:.2f} / {c.accurate_gmacs:.2f}",
         f"{c.efficient_views} / {c.accurate_views}",
         f"{c.gpus * c.gpu_rate.clips_per_s:,.0f} | {c.decode_rate:,.0f}", c.bottleneck, _hours(c.wall_h),
         _hours(c.gpu_hours))
        for c in rows
    ]
    lines += text_table(header, body, right={2, 3, 4, 5, 9, 11, 12})
    lines += ["", *_throughput_lines(spec, shape, rows, cores), ""]
    total = sum(c.gpu_hours for c in rows)
    parts = {"training": sum(c.train_h for c in rows), "efficient eval": sum(c.efficient_h for c in rows),
             "accurate eval": sum(c.accurate_h for c in rows), "start-up": sum(c.startup_h for c in rows)}
    gpus = rows[0].gpus if rows else 0
    lines.append(f"estimated cost: {_hours(total)} {shape.gpu} GPU-hours for {len(rows)} trials ("
                 + ", ".join(f"{k} {_hours(v * gpus)}" for k, v in parts.items()) + ")")
    slots = concurrency(spec, len(rows))
    grid_h = grid_wall_hours(rows, slots)
    if rows:
        lines.append(f"  wall clock: ~{_hours(max(c.wall_h for c in rows))} h per trial at most on {gpus} GPUs; "
                     f"~{_hours(grid_h)} h for the grid at {slots} trial(s) at once")
    if not spec.resources.gpus_per_worker:
        lines.append("  (this spec requests no GPUs; priced as if each worker had one GPU of the kind above)")
    lines += _dollar_lines(spec, shape, dollars(spec, shape, rows, grid_h))
    lines.append("dry run: nothing was started")
    return "\n".join(lines)


def _throughput_lines(spec: SearchSpec, shape: ClusterShape, rows: list[TrialCost], cores: DecodeCores) -> list[str]:
    """Where each rate comes from, per preset: the GPU side, the data side, the balance."""
    res = spec.cost.resolution
    lines = [f"GPU: {shape.gpu} ({_gpu_source(shape)}); decode cores per trial: {cores.train:g} for training, "
             f"{cores.eval:g} for evaluation ({cores.how})",
             f"data: {'a prepared copy (short side 256)' if res == 'prepared' else f'a raw {res} copy'}; "
             f"decode limit per core from bench data x Ray Data's share of it"
             + (f" (cost.decode_efficiency {spec.cost.decode_efficiency:g})" if spec.cost.decode_efficiency else
                " (measured on 2 cores: a lower bound)")]
    seen = set()
    for c in rows:
        key = (c.preset, c.aug == GLUONCV)
        if key in seen:
            continue
        seen.add(key)
        model = c.recipe.model_preset()
        share = spec.cost.decode_efficiency or tp.ray_data_efficiency(model)
        per_core = tp.decode_videos_per_core_s(model, "train", res)
        ratio = "" if res == "prepared" else f", {tp.raw_ratio(model, res):.2f}x the CPU of a prepared copy"
        name = c.preset + (f" ({GLUONCV})" if c.aug == GLUONCV else "")
        lines.append(
            f"  {name}: {c.gpu_rate.clips_per_s:,.0f} train clips/s per GPU ({c.gpu_rate.how}); decode "
            f"{per_core:.1f} clips/s per core{ratio} x {share:.2f}; {c.bottleneck}-bound at "
            f"{cores.train / c.gpus:.1f} decode cores per GPU, {c.balance_cores_per_gpu:.1f} would balance it")
    return lines


def _gpu_source(shape: ClusterShape) -> str:
    how = "measured" if shape.gpu in tp.measured_kinds() else \
        f"not measured: FLOP model calibrated on {' and '.join(tp.measured_kinds())}"
    inst = f"{shape.gpu_instance.name}, {shape.gpu_instance.gpus} per node" if shape.gpu_instance else "no priced instance"
    return f"{how}; {inst}; from {shape.source}"


def _dollar_lines(spec: SearchSpec, shape: ClusterShape, d: Dollars) -> list[str]:
    def money(value, what):
        return f"{what}: no price (add it under cost.instances)" if value is None else f"${value:,.0f} {what}"

    gpu_name = shape.gpu_instance.name if shape.gpu_instance else shape.gpu
    parts = [money(d.gpu_nodes, f"GPU nodes ({_hours(d.gpu_node_hours)} {gpu_name} node-hours)")]
    if d.decode_node_hours:
        parts.append(money(d.decode_nodes, f"decode nodes ({_hours(d.decode_node_hours)} "
                                           f"{shape.decode_instance.name if shape.decode_instance else '?'} node-hours)"))
    parts.append(money(d.head, f"head ({shape.head_instance.name if shape.head_instance else 'unpriced'})"))
    gb, source = dataset_gb(spec)
    parts.append(f"${d.storage:,.0f} storage reads ({gb:,.0f} GB x epochs = {d.storage_gb:,.0f} GB at "
                 f"${efs_price(spec):g}/GB, EFS elastic throughput; {gb:,.0f} GB: {source})")
    return [f"  dollars: ~${d.total:,.0f} on demand = " + " + ".join(parts),
            "  prices: k400ray/tune/records/prices.json (on-demand list prices; override under cost.instances "
            "and cost.efs_usd_per_gb_read); start-up "
            f"{spec.cost.startup_minutes:g} min per trial (cost.startup_minutes)"]


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
