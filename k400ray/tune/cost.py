"""What a grid will cost before anything starts (``k400ray tune SPEC --dry-run``), from measurements.

Per trial, on ``G`` GPUs of the trial's kind with ``D`` decode cores (``cluster_shape``), four
bounds on the training clips/s, the lowest of which sets the pace (and is named)::

    GPU      = G x GPU clips/s
    decode   = D x decode clips/s per core (the prepared copy's encoding) x Ray Data's share
    storage  = read bandwidth / bytes per video   (staged local NVMe, or the shared file system)
    network  = GPU node's network / bytes per decoded clip / share decoded on other nodes
    epoch          = train videos / train clips/s + the epoch's pipeline start
    efficient eval = val videos / the same four bounds for its views
    wall clock     = epochs x epoch + evaluations x efficient eval + accurate eval + start-up
    GPU-hours      = wall clock x G  (a trial holds its GPUs while it waits for data)

GPU clips/s come from ``bench train`` records (``throughput``: measured, or a FLOP model
calibrated on the measured kinds, and each row says which); decode clips/s per core from
``bench data --encodings`` for the prepared copy's encoding, divided by the raw / prepared ratio
for a raw copy; storage and network from ``storage``. The dry run names the bound and the decode
cores per GPU that would balance the GPU side. Efficient evaluation runs every ``eval_interval``
epochs and after the last, the accurate mode once, with the trial's bounded evaluation decode
tasks. Dollars (``dollars``): GPU node-hours (each node from its start, staging included, to
its idle timeout after the grid), decode node-hours (the nodes a trial keeps decoding, for its
wall clock, plus their staging and idle time), the head for the grid's wall clock, and storage
reads (EFS bills every GB read: once per node start when nodes stage, else every epoch). GPU and
decode node-hours are priced on both markets; the total takes the one the cluster file buys
(``InstanceMarketOptions``). A reclaimed spot node's replacement stages again: not counted (how
often AWS reclaims a type is not known in advance; docs/cluster.md says what one costs).

Each row also shows what the trial trains with: its config, the base lr after linear scaling to
the spec's workers x batch per worker, the total batch and the schedule, read from the trial's
own resolved recipe (:func:`k400ray.engine.recipe.resolve_recipe` on the ``TrialConfig`` the
trial gets: the object its workers read), and the views of that recipe's preset.

Needs no Ray and no index: without one, the Kinetics-400 split sizes are used (and said so).
The text of the dry run is :mod:`k400ray.tune.dry_run`.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from k400ray.engine.recipe import TrialRecipe, resolve_recipe
from k400ray.presets import GLUONCV, PRESETS, ModelPreset
from k400ray.tune import storage
from k400ray.tune import throughput as tp
from k400ray.tune.cluster_shape import ClusterShape, Instance, cluster_shape, nodes_per_trial
from k400ray.tune.spec import SearchSpec, trial_config

# Kinetics-400 as released (Academic Torrents copy): ~240k train / ~19.8k val videos.
K400_TRAIN_VIDEOS = 240_000
K400_VAL_VIDEOS = 19_800
DRIVER_CPUS = 0.1  # the Tune trial function only waits on its TorchTrainer
BOUNDS = ("GPU", "decode", "storage", "network")


@dataclass(frozen=True)
class VideoCounts:
    train: int  # videos a trial reads per epoch (capped by training.limit_videos)
    val: int
    index: str | None = None  # the index counted; None: the Kinetics-400 sizes (no index here)
    limit: int | None = None  # training.limit_videos, when it caps the counts
    indexed_train: int | None = None  # the whole split (what staging copies); None: ``train``
    indexed_val: int | None = None

    @property
    def whole(self) -> tuple[int, int]:
        return self.indexed_train or self.train, self.indexed_val or self.val


@dataclass(frozen=True)
class DecodeCores:
    """Decode tasks one trial has, for training and for evaluation, how many of them are on its
    own GPU nodes (the rest decode on decode nodes), and what they were derived from."""

    train: float
    eval: float
    on_gpu_nodes: float = math.inf
    per_gpu: float | None = None  # cost.decode_cores_per_gpu, when the spec sets the figure
    gpu_nodes: int = 0  # the trial's GPU nodes (else: from the cluster shape)
    shared_by: int = 1  # trials that share the cluster's decode nodes
    capped_at: int | None = None  # resources.decode_tasks, when it caps the tasks


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
    storage_rate: float  # training clips/s its reads allow
    network_rate: float  # training clips/s its GPU nodes can receive from decode nodes (inf: none sent)
    balance_cores_per_gpu: float  # decode cores per GPU at which GPU and decode are equal
    decode_nodes: float  # decode nodes it keeps busy (whole nodes)
    evaluations: int  # efficient-mode evaluations
    train_h: float  # all epochs, pipeline starts included
    efficient_h: float  # all efficient evaluations
    accurate_h: float
    startup_h: float

    @property
    def epochs(self) -> int:
        return self.recipe.epochs

    @property
    def bounds(self) -> dict[str, float]:
        """Training clips/s each side allows."""
        return {"GPU": self.gpus * self.gpu_rate.clips_per_s, "decode": self.decode_rate,
                "storage": self.storage_rate, "network": self.network_rate}

    @property
    def bottleneck(self) -> str:
        bounds = self.bounds
        return min(BOUNDS, key=bounds.__getitem__)

    @property
    def train_clips_per_s(self) -> float:
        return min(self.bounds.values())

    @property
    def wall_h(self) -> float:
        return self.train_h + self.efficient_h + self.accurate_h + self.startup_h

    @property
    def gpu_hours(self) -> float:
        return self.wall_h * self.gpus


def video_counts(spec: SearchSpec) -> VideoCounts:
    """Indexed video counts when the index exists here, else the Kinetics-400 sizes.

    Args:
        spec (SearchSpec): its ``data`` indexes and ``training.limit_videos`` cap are read.
    Returns:
        VideoCounts: videos per epoch and per evaluation, the index counted (None: none here).
    """
    from k400ray.data.index import load_manifest

    index: str | None = str(spec.data.train_index)
    try:
        train = load_manifest(spec.data.train_index)["splits"].get("train", {}).get("videos", 0)
        val = load_manifest(spec.val_index)["splits"].get("val", {}).get("videos", 0)
    except FileNotFoundError:
        train, val, index = K400_TRAIN_VIDEOS, K400_VAL_VIDEOS, None
    limit = spec.training.limit_videos
    if limit:
        return VideoCounts(min(train, limit), min(val, limit), index, limit, train, val)
    return VideoCounts(train, val, index)


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
    """Trials that run at once: ``resources.max_concurrent_trials`` of ``trials``, at least 1."""
    return min(spec.resources.max_concurrent_trials or trials, max(1, trials))


def decode_cores(spec: SearchSpec, shape: ClusterShape, trials: int) -> DecodeCores:
    """Decode cores per trial: ``cost.decode_cores_per_gpu``, else the trial's GPU nodes'
    ``decode_cpu`` plus its share of the decode nodes (they serve the trials that run at once);
    then in decode tasks (each holds ``decode_cpus``, decodes on one core), capped by
    ``resources.decode_tasks``; evaluation by its own bound (``eval_decode_tasks``, default
    ``decode_tasks`` or 2 per worker)."""
    r = spec.resources
    gpus = trial_gpus(spec)
    nodes = nodes_per_trial(shape, gpus)
    if spec.cost.decode_cores_per_gpu is not None:
        cores, local = spec.cost.decode_cores_per_gpu * gpus, math.inf
    else:
        shared = shape.decode_nodes * shape.decode_node_cores / concurrency(spec, trials)
        local = nodes * shape.gpu_node_decode_cores
        cores = local + shared
    tasks = cores / r.decode_cpus
    if r.decode_tasks:
        tasks = min(tasks, r.decode_tasks)
    eval_tasks = min(tasks, r.eval_decode_tasks_total)
    return DecodeCores(tasks, eval_tasks, local / r.decode_cpus, spec.cost.decode_cores_per_gpu, nodes,
                       concurrency(spec, trials), r.decode_tasks or None)


def decode_nodes_in_use(spec: SearchSpec, shape: ClusterShape, cores: DecodeCores, balance_cores: float,
                        trials: int) -> float:
    """Decode nodes a trial keeps busy: the cores it can use (its decode cores, or the balance
    when the GPU bounds it) beyond its GPU nodes' own, in whole nodes (the autoscaler starts
    whole nodes), at most its share of the cluster's decode nodes."""
    if not shape.decode_node_cores:
        return 0.0
    used = min(cores.train, balance_cores) * spec.resources.decode_cpus
    extra = used - cores.on_gpu_nodes * spec.resources.decode_cpus
    nodes = math.ceil(extra / shape.decode_node_cores - 1e-9) if extra > 0 else 0
    if shape.decode_nodes:
        nodes = min(nodes, shape.decode_nodes / concurrency(spec, trials))
    return float(nodes)


def _uint8_bytes(preset: ModelPreset, mode: str) -> float:
    """Bytes of one video's decoded clips in ``mode`` (uint8, every view)."""
    return float(np.prod(preset.clip_spec(mode).output_shape))


@dataclass(frozen=True)
class _TrialData:
    """What one trial's data side is made of (the inputs of its decode and I/O bounds)."""

    cores: DecodeCores
    share: float  # Ray Data's share of the decode limit
    encoding: str
    resolution: str
    size: storage.DataSize


def _bounded_rate(spec: SearchSpec, shape: ClusterShape, data: _TrialData, *, gpus: int, gpu_rate: float,
                  cores: float, per_core: float, decode_nodes: float, video_bytes: float, clip_bytes: float,
                  trials: int) -> tuple[float, storage.IoBound]:
    """(decode rate, I/O bounds) in videos/s for ``cores`` decoding at ``per_core`` videos/s."""
    on_gpu = min(cores, data.cores.on_gpu_nodes)
    used = min(cores, max(on_gpu, gpu_rate / per_core if per_core else cores))
    off = 0.0 if used <= 0 else max(0.0, used - on_gpu) / used
    io = storage.io_bound(spec, shape, gpus=gpus, decode_node_share=decode_nodes,
                          concurrent=concurrency(spec, trials), off_node_fraction=off,
                          video_bytes=video_bytes, clip_bytes=clip_bytes)
    return cores * per_core, io


def _eval_hours(spec: SearchSpec, shape: ClusterShape, data: _TrialData, *, videos: int, views: int,
                view_gmacs_: float, mode: str, preset: ModelPreset, gpus: int, rate: tp.Rate, train_gmacs: float,
                decode_nodes: float, trials: int) -> float:
    gpu_videos = gpus * tp.eval_views_per_s(rate, train_gmacs, view_gmacs_) / views
    per_core = data.share * tp.decode_videos_per_core_s(preset, mode, data.resolution, data.encoding)
    decode, io = _bounded_rate(spec, shape, data, gpus=gpus, gpu_rate=gpu_videos, cores=data.cores.eval,
                               per_core=per_core, decode_nodes=decode_nodes, video_bytes=data.size.val_video_bytes,
                               clip_bytes=_uint8_bytes(preset, mode), trials=trials)
    pace = min(gpu_videos, decode, io.storage_videos_per_s, io.network_clips_per_s)
    return (videos / pace + tp.epoch_start_s(videos, shuffled=False)) / 3600


def estimate(spec: SearchSpec, counts: VideoCounts, *, num_classes: int = 400, shape: ClusterShape | None = None,
             spec_path: str | Path = "spec", encoding: str | None = None,
             size: storage.DataSize | None = None, trials: int | None = None) -> list[TrialCost]:
    """One row per grid point, from the recipe the trial itself resolves. ``encoding`` (a name of
    the decode record) and ``size`` default to what :func:`price_grid` finds; ``trials``: how many
    trials share the cluster (default: the grid points; a search runs more per point)."""
    shape = shape or cluster_shape(spec, spec_path)
    encoding = encoding or storage.prepared_encoding(spec, spec_path)[0]
    size = size or storage.data_size(spec, *counts.whole, encoding)
    cache = _load_cache()
    before = dict(cache)
    ref_gmacs, ref_backbones = _reference_gmacs(cache)
    points = spec.grid_points()
    trials = trials or len(points)
    cores = decode_cores(spec, shape, trials)
    gpus = trial_gpus(spec)
    per_cell: dict[tuple[str, str], tuple] = {}
    rows = []
    for preset, aug, seed in points:
        recipe = resolve_recipe(trial_config(spec, preset, aug, seed, num_classes=num_classes))
        model = recipe.preset
        if (preset, aug) not in per_cell:
            per_cell[(preset, aug)] = _view_costs(model, num_classes, cache)
        g_train, g_eff, v_eff, g_acc, v_acc = per_cell[(preset, aug)]
        rate = tp.train_rate(preset, model, shape.gpu, g_train, ref_gmacs, ref_backbones,
                             exact=spec.scale == "full" and aug != GLUONCV)
        data = _TrialData(cores, spec.cost.decode_efficiency or tp.ray_data_efficiency(model), encoding,
                          spec.cost.resolution, size)
        per_core = tp.decode_videos_per_core_s(model, "train", data.resolution, encoding) * data.share
        balance = gpus * rate.clips_per_s / per_core
        nodes = decode_nodes_in_use(spec, shape, cores, balance, trials)
        decode_rate, io = _bounded_rate(
            spec, shape, data, gpus=gpus, gpu_rate=gpus * rate.clips_per_s, cores=cores.train, per_core=per_core,
            decode_nodes=nodes, video_bytes=size.train_video_bytes, clip_bytes=_uint8_bytes(model, "train"),
            trials=trials)
        train_rate = min(decode_rate, gpus * rate.clips_per_s, io.storage_videos_per_s, io.network_clips_per_s)
        epoch_h = (counts.train / train_rate + tp.epoch_start_s(counts.train, shuffled=True)) / 3600
        evals = recipe.efficient_evaluations
        common = dict(preset=model, gpus=gpus, rate=rate, train_gmacs=g_train, decode_nodes=nodes, trials=trials)
        rows.append(TrialCost(
            preset, aug, seed, recipe, g_train, g_eff, v_eff, g_acc, v_acc, gpus, rate, decode_rate,
            io.storage_videos_per_s, io.network_clips_per_s, rate.clips_per_s / per_core, nodes, evals,
            recipe.epochs * epoch_h,
            evals * _eval_hours(spec, shape, data, videos=counts.val, views=v_eff, view_gmacs_=g_eff,
                                mode="efficient", **common),
            _eval_hours(spec, shape, data, videos=counts.val, views=v_acc, view_gmacs_=g_acc, mode="accurate",
                        **common),
            spec.cost.startup_minutes / 60,
        ))
    if cache != before:
        _save_cache(cache)
    return rows


def grid_wall_hours(rows: list[TrialCost], slots: int) -> float:
    """Trials in spec order, each to the first free slot (as Tune's FIFO fills them).

    Args:
        rows (list[TrialCost]): the grid's trials, in spec order.
        slots (int): trials that run at once.
    Returns:
        float: hours from the first trial's start to the last one's end.
    """
    free = [0.0] * max(1, slots)
    for row in rows:
        start = heapq.heappop(free)
        heapq.heappush(free, start + row.wall_h)
    return max(free)


@dataclass(frozen=True)
class NodeDollars:
    """One node type's node-hours priced on both markets, and the market the cluster buys."""

    hours: float
    on_demand: float | None  # None: no price for the instance
    spot: float | None  # None: no spot price for it
    on_spot: bool  # the cluster file launches this type on spot

    @property
    def billed(self) -> float | None:
        return self.spot if self.on_spot else self.on_demand


def node_dollars(inst: Instance | None, hours: float, on_spot: bool) -> NodeDollars:
    """``hours`` of node type ``inst`` (None: unpriced) priced on both markets; ``on_spot``: the
    market the cluster buys it on."""
    if not hours:
        return NodeDollars(0.0, 0.0, 0.0, on_spot)
    if inst is None:
        return NodeDollars(hours, None, None, on_spot)
    spot = None if inst.spot_usd_per_hour is None else inst.spot_usd_per_hour * hours
    return NodeDollars(hours, inst.usd_per_hour * hours, spot, on_spot)


@dataclass(frozen=True)
class Dollars:
    gpu: NodeDollars
    decode: NodeDollars
    head: float | None  # on demand (a head on spot would take the grid's driver with it)
    reads: storage.StorageReads
    storage: float
    staging_h: float  # one node's staging before it decodes (0: nodes read the shared copy)

    @property
    def gpu_node_hours(self) -> float:
        return self.gpu.hours

    @property
    def gpu_nodes(self) -> float | None:  # None: no price for this GPU kind (on the market billed)
        return self.gpu.billed

    @property
    def decode_node_hours(self) -> float:
        return self.decode.hours

    @property
    def decode_nodes(self) -> float | None:
        return self.decode.billed

    @property
    def total(self) -> float:
        return sum(x for x in (self.gpu_nodes, self.decode_nodes, self.head, self.storage) if x is not None)


def dollars(spec: SearchSpec, shape: ClusterShape, rows: list[TrialCost], grid_h: float, counts: VideoCounts,
            size: storage.DataSize) -> Dollars:
    """Node-hours as nodes are up: each of the ``slots`` GPU nodes from its start (staging
    included) until its idle timeout after its last trial; each trial's decode nodes for its wall
    clock, plus their staging and idle time; the head for the grid; storage reads."""
    slots = concurrency(spec, len(rows))
    stage_h = storage.staging_hours(spec, shape, size)
    per_trial = nodes_per_trial(shape, rows[0].gpus) if rows else 0
    gpu_starts = min(slots, len(rows)) * per_trial
    gpu_node_h = sum(r.wall_h * nodes_per_trial(shape, r.gpus) for r in rows) + gpu_starts * (stage_h + shape.idle_timeout_h)
    decode_starts = min(float(shape.decode_nodes or 0), slots * max((r.decode_nodes for r in rows), default=0.0))
    decode_node_h = sum(r.wall_h * r.decode_nodes for r in rows) + decode_starts * (stage_h + shape.idle_timeout_h)
    reads = storage.storage_reads(
        spec, shape, size, node_starts=gpu_starts + decode_starts,
        video_reads=[(r.epochs * counts.train, (r.evaluations + 1) * counts.val) for r in rows])

    head = None if shape.head_instance is None else shape.head_instance.usd_per_hour * grid_h
    return Dollars(node_dollars(shape.gpu_instance, gpu_node_h, shape.gpu_spot),
                   node_dollars(shape.decode_instance, decode_node_h, shape.decode_spot),
                   head, reads, storage.storage_dollars(spec, reads), stage_h)


@dataclass(frozen=True)
class GridCost:
    """Everything the dry run prints, priced once."""

    shape: ClusterShape
    counts: VideoCounts
    cores: DecodeCores
    encoding: str
    encoding_how: str
    size: storage.DataSize
    rows: list[TrialCost]
    slots: int
    grid_h: float
    dollars: Dollars


def price_grid(spec: SearchSpec, spec_path: str | Path = "spec", *, counts: VideoCounts | None = None,
               num_classes: int = 400) -> GridCost:
    """Price the whole grid once: every trial's bounds and hours, the grid's wall clock, dollars.

    Args:
        spec (SearchSpec): the grid.
        spec_path (str | Path): the spec's file; ``cost.cluster`` and the prepare manifest are
            found relative to it.
        counts (VideoCounts): videos per epoch and evaluation (default: :func:`video_counts`).
        num_classes (int): classes of the models priced (their multiply-adds).
    Returns:
        GridCost: what ``--dry-run`` prints (:mod:`k400ray.tune.dry_run` words it).
    """
    counts = counts or video_counts(spec)
    shape = cluster_shape(spec, spec_path)
    encoding, how = storage.prepared_encoding(spec, spec_path)
    size = storage.data_size(spec, *counts.whole, encoding)
    rows = estimate(spec, counts, num_classes=num_classes, shape=shape, spec_path=spec_path, encoding=encoding,
                    size=size)
    slots = concurrency(spec, len(rows))
    grid_h = grid_wall_hours(rows, slots)
    return GridCost(shape, counts, decode_cores(spec, shape, len(rows)), encoding, how, size, rows, slots, grid_h,
                    dollars(spec, shape, rows, grid_h, counts, size))
