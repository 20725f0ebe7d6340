"""``k400ray bench data``: the Ray Data clip pipeline against the decoder alone and a torch DataLoader.

Three ways to turn the same index rows into the same train clips, with the same number of
processes, measured side by side in one run:

- **decode limit**: ``pipeline.decode_row`` (``load_clip``: decord ``get_batch`` of the sampled
  frames + the preset's train transforms) in a tight loop, one process per core, rows handed out
  in small chunks. Nothing can deliver clips faster on these cores with this decoder.
- **decode limit (glibc malloc)** (only with ``--methods limit-glibc``): the same with glibc's
  default allocator settings, i.e. without ``allocator.keep_freed_memory``, which every other
  method's decode processes apply: what that setting is worth.
- **ray data**: ``clip_dataset`` as a Ray Train worker builds it for each epoch (the seed's
  order of the index rows, the worker's share of them: ``shard=(0, 1)``), then
  ``iter_batches(prefetch_batches=2)`` as ``engine.worker`` does, decode capped at P concurrent
  tasks.
- **dataloader**: ``torch.utils.data.DataLoader`` over a map-style dataset calling the same
  ``decode_row``, ``num_workers=P``, shuffled, the same batch size: the MMAction2 / PySlowFast way.
  Its workers keep freed memory as the decode tasks do (same decode, not glibc's defaults).

Every method is warmed up once (worker processes start and import torch) before the measured
passes; passes are interleaved in rotating order so that load from other users of the machine
hits all methods alike, and the median of the repeats is reported. Worker processes are spawned,
never forked: forking a driver that runs Ray's threads can deadlock.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from k400ray.bench.common import Stopwatch, Table, cpu_seconds_between, median, train_clip_gmacs, tree_cpu_snapshot
from k400ray.bench.inputs import BENCH_SPLIT, index_rows, sized_index
from k400ray.data.clip import ClipSpec
from k400ray.data.index import load_manifest
from k400ray.data.pipeline import decode_row, setup_decode_process

DEFAULT_PRESETS = ("tsn_r50_1x1x8", "i3d_r50_32x2x1")
METHODS = ("decode limit", "ray data", "dataloader")
GLIBC_LIMIT = "decode limit (glibc malloc)"
# `--methods` names for them: a node without Ray (a GPU box being sized) can still measure the
# other two. The glibc-default limit is measured only when asked for.
METHOD_KEYS = {"limit": "decode limit", "ray": "ray data", "dataloader": "dataloader", "limit-glibc": GLIBC_LIMIT}
ALL_METHODS = (*METHODS, GLIBC_LIMIT)
# The reference figure: one H100 consumes about 1000 8-frame TSN-R50 clips per second. Other presets are
# scaled by their forward cost relative to that one (a GPU spends its time on FLOPs).
H100_TSN_CLIPS_PER_S = 1000.0
REFERENCE_PRESET = "tsn_r50_1x1x8"

Row = dict  # one index row (video_id, path, label, num_frames, width, height, decoder, ...)


# --- decode limit ----------------------------------------------------------------------------


def _dataloader_worker(_worker_id: int) -> None:
    setup_decode_process()  # as a Ray decode task does (pipeline.decode_batch)


def _decode_share(args: tuple[list[Row], str, ClipSpec]) -> int:
    rows, data_root, spec = args
    rng = np.random.default_rng()
    return sum(decode_row(r, data_root, spec, rng) is not None for r in rows)


class DecodeLimit:
    """P spawned processes decoding the rows, nothing else. Rows go out in small chunks (about 8
    per process) rather than one equal share each: with equal shares a process slowed down by
    another user of the machine leaves the others idle at the end, and the "limit" would drop."""

    def __init__(self, processes: int, data_root: str, *, keep_freed: bool = True) -> None:
        self.name = "decode limit" if keep_freed else GLIBC_LIMIT
        self.processes, self.data_root = processes, data_root
        self.pool = mp.get_context("spawn").Pool(processes, initializer=setup_decode_process, initargs=(keep_freed,))

    def run(self, rows: list[Row], spec: ClipSpec) -> tuple[int, float, float]:
        """(clips, seconds, seconds to the first clip: not defined here, NaN)."""
        size = max(1, len(rows) // (8 * self.processes))
        chunks = [(rows[i : i + size], self.data_root, spec) for i in range(0, len(rows), size)]
        with Stopwatch() as sw:
            clips = sum(self.pool.imap_unordered(_decode_share, chunks))
        return clips, sw.seconds, float("nan")

    def close(self) -> None:
        # Graceful: every task has returned by now. (terminate() was seen to hang with 16 spawned
        # processes on Python 3.12.)
        self.pool.close()
        self.pool.join()


# --- torch DataLoader ------------------------------------------------------------------------


class ClipRows:
    """Map-style dataset: index row i -> {clips (V, C, T, S, S) uint8, label, valid}."""

    def __init__(self, rows: list[Row], data_root: str, spec: ClipSpec) -> None:
        self.rows, self.data_root, self.spec = rows, data_root, spec

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        import torch

        clip = decode_row(self.rows[i], self.data_root, self.spec, np.random.default_rng())
        valid = clip is not None
        if clip is None:
            clip = np.zeros(self.spec.output_shape, dtype=np.uint8)
        return {"clips": torch.from_numpy(clip), "label": int(self.rows[i]["label"]), "valid": valid}


class TorchLoader:
    name = "dataloader"

    def __init__(self, rows: list[Row], data_root: str, spec: ClipSpec, *, processes: int, batch_size: int) -> None:
        from torch.utils.data import DataLoader

        self.loader = DataLoader(
            ClipRows(rows, data_root, spec), batch_size=batch_size, shuffle=True, num_workers=processes,
            persistent_workers=True, prefetch_factor=2, multiprocessing_context="spawn",
            worker_init_fn=_dataloader_worker,
        )

    def run(self, rows: list[Row], spec: ClipSpec) -> tuple[int, float, float]:
        clips, first = 0, float("nan")
        with Stopwatch() as sw:
            for batch in self.loader:
                if clips == 0:
                    first = time.perf_counter() - sw.start
                clips += int(batch["valid"].sum())
        return clips, sw.seconds, first

    def close(self) -> None:
        it = getattr(self.loader, "_iterator", None)
        if it is not None:
            it._shutdown_workers()


# --- Ray Data --------------------------------------------------------------------------------


class RayLoader:
    name = "ray data"

    def __init__(self, index_dir: Path, spec: ClipSpec, *, processes: int, batch_size: int, seed: int = 0) -> None:
        from k400ray.data.pipeline import clip_dataset

        self.batch_size, self.epoch = batch_size, 0
        self.dataset = lambda epoch: clip_dataset(index_dir, BENCH_SPLIT, spec, seed=seed, epoch=epoch, shard=(0, 1),
                                                  decode_tasks=processes, batch_size=batch_size)

    def run(self, rows: list[Row], spec: ClipSpec) -> tuple[int, float, float]:
        clips, first = 0, float("nan")
        self.epoch += 1
        with Stopwatch() as sw:
            ds = self.dataset(self.epoch)  # built inside the timing: a worker builds one every epoch
            for batch in ds.iter_batches(batch_size=self.batch_size, batch_format="numpy", prefetch_batches=2):
                if clips == 0:
                    first = time.perf_counter() - sw.start
                clips += int(np.asarray(batch["valid"]).sum())
        return clips, sw.seconds, first

    def close(self) -> None:
        self.dataset = None


# --- the benchmark ---------------------------------------------------------------------------


@dataclass
class MethodResult:
    preset: str
    method: str
    clips: int
    seconds: list[float] = field(default_factory=list)
    first_batch_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # CPU time of the whole process tree per pass
    warmup_s: float = float("nan")

    @property
    def clips_per_s(self) -> float:
        return median([self.clips / s for s in self.seconds])

    @property
    def cpu_ms_per_clip(self) -> float:
        """Median over the passes whose CPU time is known (see ``common.cpu_seconds_between``)."""
        known = [c for c in self.cpu_s if c == c]
        return 1000 * median(known) / self.clips


@dataclass
class DataBench:
    processes: int
    ray_tasks: int
    clips: int
    repeats: int
    batch_sizes: dict[str, int]
    distinct_videos: int
    results: list[MethodResult]
    gflops: dict[str, float]

    def get(self, preset: str, method: str) -> MethodResult | None:
        return next((r for r in self.results if r.preset == preset and r.method == method), None)

    def rate(self, preset: str, method: str) -> float | None:
        r = self.get(preset, method)
        return None if r is None else r.clips_per_s

    def ratios(self, preset: str) -> dict[str, float | None]:
        limit, ray, torch_ = (self.rate(preset, m) for m in METHODS)
        return {"ray/limit": _ratio(ray, limit), "ray/dataloader": _ratio(ray, torch_), "dataloader/limit": _ratio(torch_, limit)}

    def per_core(self, preset: str) -> float | None:
        limit = self.rate(preset, "decode limit")
        return None if limit is None else limit / self.processes

    def gpu_demand(self, preset: str) -> float:
        """Clips/s one H100 would consume: the reference TSN figure scaled by forward GFLOPs."""
        return H100_TSN_CLIPS_PER_S * self.gflops[REFERENCE_PRESET] / self.gflops[preset]

    def presets(self) -> list[str]:
        return list(dict.fromkeys(r.preset for r in self.results))

    def table(self) -> Table:
        rows = []
        for p in self.presets():
            limit, loader = self.get(p, "decode limit"), self.get(p, "dataloader")
            for m in ALL_METHODS:
                r = self.get(p, m)
                if r is None:
                    continue
                rows.append([
                    p, m, round(r.clips_per_s, 2), _round(_ratio(r.clips_per_s, limit and limit.clips_per_s), 3),
                    _round(_ratio(r.clips_per_s, loader and loader.clips_per_s), 3), round(r.cpu_ms_per_clip, 1),
                    _round(_ratio(limit and limit.cpu_ms_per_clip, r.cpu_ms_per_clip), 3), median(r.first_batch_s),
                    round(r.warmup_s, 1),
                ])
        return Table(["preset", "method", "clips/s", "x decode limit", "x dataloader", "CPU ms/clip",
                      "CPU efficiency", "first batch s", "warm-up s"], rows)

    def cluster_table(self) -> Table | None:
        rows = []
        for p in self.presets():
            per_core = self.per_core(p)
            if per_core is None:
                continue
            demand = self.gpu_demand(p)
            rows.append([p, round(self.gflops[p], 1), round(per_core, 2), round(demand), round(demand / per_core, 1)])
        if not rows:
            return None
        return Table(["preset", "GFLOPs/clip", "decode clips/s per core", "H100 clips/s (est.)", "decode cores per H100"], rows)

    def targets(self) -> list[str]:
        lines = []
        for p in self.presets():
            r = self.ratios(p)
            if r["ray/limit"] is None or r["ray/dataloader"] is None:
                lines.append(f"{p}: not checked (needs the decode limit, ray data and dataloader, measured together)")
                continue
            lines.append(
                f"{p}: ray data {r['ray/limit']:.2f}x decode limit (target >= 0.9: {'met' if r['ray/limit'] >= 0.9 else 'MISSED'}), "
                f"{r['ray/dataloader']:.2f}x dataloader (target >= 1.0: {'met' if r['ray/dataloader'] >= 1.0 else 'MISSED'})"
            )
        return lines


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def warm_up(loader, rows: list[Row], spec: ClipSpec, *, max_passes: int = 4) -> float:
    """Unmeasured passes until one is no more than 15% faster than the one before; total seconds.

    One pass starts the processes of the decode pool and the DataLoader. Ray needs more on a fresh
    instance: its worker pool grows over the first executions and each worker pays the torch
    import on its first decode task, so early passes are start-up, not throughput. (On a real
    epoch of thousands of decode tasks this is over within the first seconds.)
    """
    total, last = 0.0, None
    for _ in range(max_passes):
        with Stopwatch() as sw:
            loader.run(rows, spec)
        total += sw.seconds
        if last is not None and sw.seconds > 0.85 * last:
            break
        last = sw.seconds
        if not isinstance(loader, RayLoader):
            break
    return total


def epoch_start_seconds(
    index_dir: str | Path, split: str, rows: int, spec: ClipSpec, *, batch_size: int, processes: int, work_dir: str | Path,
    epochs: int = 2,
) -> dict[str, float]:
    """Seconds from asking for an epoch to its first batch over an index of ``rows`` rows, shuffled
    (train) and in order (evaluation); the median over ``epochs`` after one unmeasured epoch.

    Every epoch pays this before the first batch: for training, the seed's permutation of the
    index rows and this worker's share put into the object store; for evaluation, reading the
    index. It grows with the index, not with the clips decoded, so it only shows at Kinetics
    scale (240k rows).
    """
    from k400ray.data.pipeline import clip_dataset

    sized = sized_index(index_dir, split, rows, work_dir)
    out = {}
    for label, shuffle in (("shuffled", True), ("in order", False)):
        times = []
        for epoch in range(epochs + 1):
            with Stopwatch() as sw:
                ds = (clip_dataset(sized, BENCH_SPLIT, spec, seed=0, epoch=epoch, shard=(0, 1), decode_tasks=processes,
                                   batch_size=batch_size) if shuffle else
                      clip_dataset(sized, BENCH_SPLIT, spec, decode_tasks=processes, batch_size=batch_size))
                for _batch in ds.iter_batches(batch_size=batch_size, batch_format="numpy", prefetch_batches=2):
                    break
            times.append(sw.seconds)
        out[label] = median(times[1:])
    return out


def preset_gflops(names: list[str]) -> dict[str, float]:
    """Forward multiply-adds (1e9) of one train clip of each preset (meta-device models)."""
    from k400ray.presets import get_preset

    return {name: train_clip_gmacs(get_preset(name), 400) for name in dict.fromkeys([REFERENCE_PRESET, *names])}


def run_data_bench(
    index_dir: str | Path,
    *,
    split: str = "train",
    presets: list[str] = list(DEFAULT_PRESETS),
    clips: int = 128,
    processes: int | None = None,
    repeats: int = 3,
    batch_size: int | None = None,
    ray_tasks: int | None = None,
    methods: tuple[str, ...] = METHODS,
    work_dir: str | Path,
    log=print,
) -> DataBench:
    """Measure the three methods for each preset; Ray must be initialised (``init_ray``).

    ``ray_tasks`` (default: ``processes``) caps concurrent Ray decode tasks: more than the cores
    lets a task wait, ready, while another runs, so no core idles while the next task is
    scheduled; the other methods keep ``processes`` processes. ``methods`` (a subset of
    ``METHODS``) picks what is measured: without "ray data" Ray need not be running."""
    from k400ray.presets import get_preset

    processes = processes or os.cpu_count() or 1
    sized = sized_index(index_dir, split, clips, work_dir)
    rows = index_rows(sized, BENCH_SPLIT)
    manifest = load_manifest(sized)
    data_root = manifest["data_root"]
    results: list[MethodResult] = []
    batch_sizes = {}
    limits = [DecodeLimit(processes, data_root, keep_freed=name == "decode limit")
              for name in ("decode limit", GLIBC_LIMIT) if name in methods]
    try:
        for name in presets:
            preset = get_preset(name)
            spec = preset.clip_spec("train")
            batch = batch_size or preset.recipe.batch_per_gpu
            batch_sizes[name] = batch
            loaders = [
                *limits,
                RayLoader(sized, spec, processes=ray_tasks or processes, batch_size=batch) if "ray data" in methods else None,
                TorchLoader(rows, data_root, spec, processes=processes, batch_size=batch) if "dataloader" in methods else None,
            ]
            loaders = [ld for ld in loaders if ld is not None]
            mine = {ld.name: MethodResult(name, ld.name, clips) for ld in loaders}
            try:
                for ld in loaders:
                    mine[ld.name].warmup_s = warm_up(ld, rows, spec)
                    log(f"  {name} {ld.name}: warm-up {mine[ld.name].warmup_s:.1f} s")
                for rep in range(repeats):
                    for ld in loaders[rep % len(loaders) :] + loaders[: rep % len(loaders)]:
                        cpu = tree_cpu_snapshot()
                        got, seconds, first = ld.run(rows, spec)
                        mine[ld.name].cpu_s.append(cpu_seconds_between(cpu, tree_cpu_snapshot()))
                        if got != clips:
                            raise RuntimeError(f"{ld.name} delivered {got} valid clips, expected {clips}")
                        mine[ld.name].seconds.append(seconds)
                        mine[ld.name].first_batch_s.append(first)
                        log(f"  {name} {ld.name}: pass {rep + 1}/{repeats} {clips / seconds:.2f} clips/s")
            finally:
                for ld in loaders:
                    if ld not in limits:
                        ld.close()
            results.extend(mine[m] for m in ALL_METHODS if m in mine)
    finally:
        for limit in limits:
            limit.close()
    return DataBench(
        processes=processes, ray_tasks=ray_tasks or processes, clips=clips, repeats=repeats, batch_sizes=batch_sizes,
        distinct_videos=int(manifest.get("bench_source", {}).get("distinct_videos", clips)),
        results=results, gflops=preset_gflops(presets),
    )
