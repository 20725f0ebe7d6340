"""The text of ``k400ray tune SPEC --dry-run``: the grid's trials, their bounds and what it costs,
from :func:`k400ray.tune.cost.price_grid` (the model; this module only words it)."""

from __future__ import annotations

import math
from pathlib import Path

from k400ray.engine.recipe import TrialRecipe
from k400ray.presets import GLUONCV
from k400ray.text_table import text_table
from k400ray.tune import storage
from k400ray.tune import throughput as tp
from k400ray.tune.cluster_shape import ClusterShape, efs_price
from k400ray.tune.cost import BOUNDS, DRIVER_CPUS, DecodeCores, Dollars, GridCost, TrialCost, VideoCounts, price_grid
from k400ray.tune.spec import SearchSpec


def resources_line(spec: SearchSpec) -> str:
    """One line: what one trial holds (workers x CPUs and GPUs, the driver, decode tasks) and the
    concurrency limit of ``spec.resources``."""
    r = spec.resources
    per_worker = f"{r.cpus_per_worker:g} CPU" + (f" + {r.gpus_per_worker} GPU" if r.gpus_per_worker else "")
    gpus = r.workers_per_trial * r.gpus_per_worker
    total = f"{r.workers_per_trial * r.cpus_per_worker:g} CPU" + (f" + {gpus} GPU" if gpus else "")
    limit = f"at most {r.max_concurrent_trials} trials at once" if r.max_concurrent_trials else "no concurrency limit"
    return (f"resources per trial: {r.workers_per_trial} workers x ({per_worker}) = {total}, "
            f"+ {DRIVER_CPUS:g} CPU for the trial driver, + decode tasks ({r.decode_cpus:g} CPU each); {limit}")


def format_dry_run(spec: SearchSpec, spec_path: str | Path) -> str:
    """The text ``k400ray tune SPEC --dry-run`` prints.

    Args:
        spec (SearchSpec): the grid.
        spec_path (str | Path): the spec's file (named in the text; relative paths start there).
    Returns:
        str: lines: the grid, one table row per trial, where each rate comes from, the cost.
    """
    grid = price_grid(spec, spec_path)
    rows, shape = grid.rows, grid.shape
    lines = [
        f"{spec_path}: experiment {spec.experiment!r}, scale {spec.scale}, {len(rows)} trials ({_grid_shape(spec)})",
        resources_line(spec),
        f"videos: {grid.counts.train:,} train / {grid.counts.val:,} val ({counts_source(grid.counts, spec)})",
        "lr: the trial's base lr, the recipe's scaled linearly to the total batch (* = set by training.lr); "
        "batch: total (workers x per worker); schedule: in epochs; clips/s: training clips/s each side allows "
        "(the trial's GPUs | decode cores | storage reads), the lowest binds",
        "",
    ]
    header = ("preset", "config", "seed", "epochs", "lr", "batch", "schedule", "GMACs train/eff/acc view",
              "views eff/acc", "clips/s GPU | decode | storage", "bound", "wall h", "GPU-hours")
    lr_mark = "*" if spec.training.lr is not None else ""
    body = [
        (c.preset, c.aug, str(c.seed), str(c.epochs), f"{c.recipe.lr:.4g}{lr_mark}",
         f"{c.recipe.total_batch} ({c.recipe.world_size}x{c.recipe.batch_per_worker})", schedule_text(c.recipe),
         f"{c.train_gmacs:.2f} / {c.efficient_gmacs:.2f} / {c.accurate_gmacs:.2f}",
         f"{c.efficient_views} / {c.accurate_views}",
         " | ".join(_rate(c.bounds[b]) for b in ("GPU", "decode", "storage")), c.bottleneck, _hours(c.wall_h),
         _hours(c.gpu_hours))
        for c in rows
    ]
    lines += text_table(header, body, right={2, 3, 4, 5, 9, 11, 12})
    lines += ["", *_throughput_lines(spec, grid), ""]
    total = sum(c.gpu_hours for c in rows)
    parts = {"training": sum(c.train_h for c in rows), "efficient eval": sum(c.efficient_h for c in rows),
             "accurate eval": sum(c.accurate_h for c in rows), "start-up": sum(c.startup_h for c in rows)}
    gpus = rows[0].gpus if rows else 0
    lines.append(f"estimated cost: {_hours(total)} {shape.gpu} GPU-hours for {len(rows)} trials ("
                 + ", ".join(f"{k} {_hours(v * gpus)}" for k, v in parts.items()) + ")")
    if rows:
        lines.append(f"  wall clock: ~{_hours(max(c.wall_h for c in rows))} h per trial at most on {gpus} GPUs; "
                     f"~{_hours(grid.grid_h)} h for the grid at {grid.slots} trial(s) at once")
    if not spec.resources.gpus_per_worker:
        lines.append("  (this spec requests no GPUs; priced as if each worker had one GPU of the kind above)")
    lines += _dollar_lines(spec, shape, grid.dollars)
    lines.append("dry run: nothing was started")
    return "\n".join(lines)


def _rate(value: float) -> str:
    return "-" if math.isinf(value) else f"{value:,.0f}"


def _throughput_lines(spec: SearchSpec, grid: GridCost) -> list[str]:
    """Where each rate comes from, per preset: the GPU side, the decode side, the reads, the balance."""
    shape, cores, res = grid.shape, grid.cores, spec.cost.resolution
    staged = storage.reads_staged(spec, shape)
    if res == "prepared":
        copy = f"a prepared copy encoded {grid.encoding} ({grid.encoding_how})"
    else:
        copy = f"a raw {res} copy"
    reads = (f"each node's staged copy (data.local_cache {spec.data.local_cache}) on its local NVMe" if staged else
             "the shared file system, every epoch" + ("" if spec.data.local_cache else
                                                      " (no data.local_cache: `k400ray stage` copies it to each node)"))
    lines = [f"GPU: {shape.gpu} ({_gpu_source(shape)}); decode cores per trial: {cores.train:g} for training, "
             f"{cores.eval:g} for evaluation ({decode_cores_source(cores, shape)})",
             f"data: {copy}; {grid.size.total_gb:,.1f} GB ({grid.size.source}); decode tasks read {reads}",
             "decode limit per core from bench data x Ray Data's share of it"
             + (f" (cost.decode_efficiency {spec.cost.decode_efficiency:g})" if spec.cost.decode_efficiency else
                " (measured on 2 cores: a lower bound)")]
    seen = set()
    for c in grid.rows:
        key = (c.preset, c.aug == GLUONCV)
        if key in seen:
            continue
        seen.add(key)
        model = c.recipe.preset
        share = spec.cost.decode_efficiency or tp.ray_data_efficiency(model)
        per_core = tp.decode_videos_per_core_s(model, "train", res, grid.encoding)
        ratio = "" if res == "prepared" else f", {tp.raw_ratio(model, res):.2f}x the CPU of a prepared copy"
        name = c.preset + (f" ({GLUONCV})" if c.aug == GLUONCV else "")
        bounds = ", ".join(f"{b} {_rate(c.bounds[b])}" for b in BOUNDS)
        lines.append(
            f"  {name}: training clips/s {bounds} -> {c.bottleneck}-bound; GPU {c.gpu_rate.clips_per_s:,.0f} per GPU "
            f"({c.gpu_rate.how}); decode {per_core:.1f} clips/s per core{ratio} x {share:.2f}, "
            f"{cores.train / c.gpus:.1f} decode cores per GPU, {c.balance_cores_per_gpu:.1f} would balance it"
            + (f"; {c.decode_nodes:g} decode node(s) busy" if c.decode_nodes else ""))
    return lines


def counts_source(counts: VideoCounts, spec: SearchSpec) -> str:
    """Where ``counts`` come from: ``indexed videos in IDX``, or the Kinetics-400 sizes; and the
    cap of ``training.limit_videos``."""
    text = (f"indexed videos in {counts.index}" if counts.index is not None else
            f"Kinetics-400 sizes: no index at {spec.data.train_index} on this machine")
    return text + (f", capped by training.limit_videos={counts.limit}" if counts.limit else "")


def decode_cores_source(cores: DecodeCores, shape: ClusterShape) -> str:
    """What a trial's decode tasks were derived from: ``cost.decode_cores_per_gpu``, or the
    cluster's GPU nodes (and the decode nodes it shares), and the ``resources.decode_tasks`` cap."""
    if cores.per_gpu is not None:
        how = f"cost.decode_cores_per_gpu {cores.per_gpu:g}"
    else:
        how = f"{shape.source}: {cores.gpu_nodes} GPU node(s) x {shape.gpu_node_decode_cores:g} decode_cpu"
        if shape.decode_nodes:
            how += (f" + {shape.decode_nodes} decode node(s) x {shape.decode_node_cores:g} "
                    f"shared by {cores.shared_by} trial(s)")
    return how + (f", capped by resources.decode_tasks {cores.capped_at}" if cores.capped_at else "")


def _gpu_source(shape: ClusterShape) -> str:
    how = "measured" if shape.gpu in tp.measured_kinds() else \
        f"not measured: FLOP model calibrated on {' and '.join(tp.measured_kinds())}"
    inst = f"{shape.gpu_instance.name}, {shape.gpu_instance.gpus} per node" if shape.gpu_instance else "no priced instance"
    return f"{how}; {inst}; from {shape.source}"


def _dollar_lines(spec: SearchSpec, shape: ClusterShape, d: Dollars) -> list[str]:
    def money(value, what):
        return f"{what}: no price (add it under cost.instances)" if value is None else f"${value:,.0f} {what}"

    gpu_name = shape.gpu_instance.name if shape.gpu_instance else shape.gpu
    decode_name = shape.decode_instance.name if shape.decode_instance else "?"
    parts = [money(d.gpu_nodes, f"GPU nodes ({_hours(d.gpu_node_hours)} {gpu_name} node-hours"
                                f"{', spot' if d.gpu.on_spot else ''})")]
    if d.decode_node_hours:
        parts.append(money(d.decode_nodes, f"decode nodes ({_hours(d.decode_node_hours)} {decode_name} node-hours"
                                           f"{', spot' if d.decode.on_spot else ''})"))
    parts.append(money(d.head, f"head ({shape.head_instance.name if shape.head_instance else 'unpriced'})"))
    parts.append(f"${d.storage:,.0f} storage reads ({d.reads.gb:,.0f} GB at ${efs_price(spec):g}/GB from EFS: "
                 f"{d.reads.how})")
    shares = ", ".join(f"{name} {100 * value / d.total:.0f}%" for name, value in
                       (("GPU nodes", d.gpu_nodes), ("decode nodes", d.decode_nodes), ("head", d.head),
                        ("storage", d.storage)) if value and d.total)
    on_spot = [name for name, n in (("GPU", d.gpu), ("decode", d.decode)) if n.on_spot and n.hours]
    market = f"with {' and '.join(on_spot)} nodes on spot" if on_spot else "on demand"
    lines = [f"  dollars: ~${d.total:,.0f} {market} = " + " + ".join(parts),
             f"  shares: {shares}"]
    lines += _spot_line(spec, shape, d)
    if d.staging_h:
        lines.append(f"  staging: {d.staging_h * 60:.1f} min per node start (counted in its node-hours), "
                     f"idle timeout {shape.idle_timeout_h * 60:g} min after a node's last trial")
    lines.append("  prices: k400ray/tune/records/prices.json (on-demand list prices; override under cost.instances "
                 f"and cost.efs_usd_per_gb_read); start-up {spec.cost.startup_minutes:g} min per trial "
                 "(cost.startup_minutes)")
    return lines


def _spot_line(spec: SearchSpec, shape: ClusterShape, d: Dollars) -> list[str]:
    """Each node type's dollars on spot vs on demand, and the market the cluster file buys."""
    where = shape.source if spec.cost.cluster else "no cost.cluster"

    def usd(value):
        return "no spot price" if value is None else f"${value:,.0f}"

    def market(name: str, n, present: bool) -> str | None:
        if not present:
            return None
        buys = f"{where} buys them {'on spot' if n.on_spot else 'on demand'}"
        if not n.hours:
            return f"{name} $0 / $0 (none busy; {buys})"
        return f"{name} {usd(n.spot)} / {usd(n.on_demand)} ({buys})"

    parts = [p for p in (market("decode nodes", d.decode, bool(shape.decode_nodes)),
                         market("GPU nodes", d.gpu, shape.gpu_instance is not None)) if p]
    if not parts:
        return []
    return ["  spot vs on demand: " + "; ".join(parts) + "; spot prices are typical figures that move by zone "
            "and hour (prices.json)"]


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
