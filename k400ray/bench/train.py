"""``k400ray bench train``: where a training step's time goes, and how far it is from the hardware.

The engine's own ``train_one_epoch`` runs unchanged; the batch iterator it receives is wrapped so
that every step is split into **data wait** (blocked in ``next()`` for the next batch) and
**compute** (from receiving a batch to asking for the next one: transfer, forward, backward,
optimiser step). On a GPU the steps are queued asynchronously, so the per-step split is only
indicative there; clips/s come from whole epochs, which end with a device synchronisation.
For each preset:

- **compute only**: the same steps on batches already in memory (on a GPU: already in device
  memory): the rate the device sustains when data is free;
- **host input path** (GPU only): the same batches handed over in pageable host memory, as the
  Ray Data iterator hands them to a worker, through the engine's ``DeviceFeed`` (pinned copy in a
  background thread, transfer on a side stream one batch ahead). Its clips/s over compute only
  is the input-path efficiency (target >= 0.95);
- **ray data**: the Ray Data pipeline as a train worker builds it for every epoch (its seeded
  share of the index, ``iter_batches(prefetch_batches=2)``); stall fraction = wait / step time over the steady-state
  steps (the first batch, which includes starting the pipeline, is reported on its own);
- **decode capacity**: the decoder alone on the decode processes (``bench.data.DecodeLimit``).
  The stall target (<= 5%) applies when it is at least the compute-only rate;
- **compiled** (``compile_modes``): a second copy of the model compiled in each mode
  (``engine.compiled``) against the eager one on the compute-only batches, passes alternating,
  with the compile time (``bench.compile_compare``).

On a CPU-only machine compute and decode share the cores, so compute is pinned to
``compute_threads`` torch threads and decode gets the other cores, the way a GPU box splits them.
``compute_only`` (``--compute-only``) measures the first alone: no index, no Ray, no decoder, for
sizing a GPU node that has none of them installed yet.
On a GPU the model runs in bf16 autocast with channels_last, and the compute-only rate is compared
with the compute-bound limit: peak dense bf16 FLOP/s / (3 x 2 x forward multiply-adds per clip),
the 3 counting forward + backward (about twice the forward).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from k400ray.bench.common import PeakMemory, Table, gib, median, train_clip_gmacs
from k400ray.bench.compile_compare import CompileComparison, compile_table, compile_targets

# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets; matched against the
# device name, first match wins (so "H100 PCIe" precedes "H100").
PEAK_BF16_TFLOPS = (
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100", 989.4),
    ("GH200", 989.4),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("A10", 125.0),
)


def peak_bf16_tflops(device_name: str | None) -> float | None:
    if not device_name:
        return None
    for key, tflops in PEAK_BF16_TFLOPS:
        if key in device_name:
            return tflops
    return None


def compute_bound_clips_per_s(peak_tflops: float, gmacs_per_clip: float) -> float:
    """Training clips/s if every FLOP ran at peak: a step costs ~3 forward passes of 2 FLOPs per MAC."""
    return peak_tflops * 1e12 / (3 * 2 * gmacs_per_clip * 1e9)


class TimedBatches:
    """Wraps a batch iterable; records, per step, the wait in ``next()`` and the time until the
    consumer asks again (the step's compute)."""

    def __init__(self, batches: Iterable[dict]) -> None:
        self.batches = batches
        self.wait: list[float] = []
        self.compute: list[float] = []

    def __iter__(self) -> Iterator[dict]:
        it = iter(self.batches)
        handed = None
        while True:
            asked = time.perf_counter()
            if handed is not None:
                self.compute.append(asked - handed)
            try:
                batch = next(it)
            except StopIteration:
                return
            self.wait.append(time.perf_counter() - asked)
            handed = time.perf_counter()
            yield batch


@dataclass
class StepStats:
    """Per-step wait and compute of the measured epochs (steady state: first step of each left out)."""

    wait: list[float] = field(default_factory=list)
    compute: list[float] = field(default_factory=list)
    first_wait: list[float] = field(default_factory=list)
    clips: int = 0
    seconds: float = 0.0

    def add(self, timed: TimedBatches, clips: int, seconds: float) -> None:
        self.first_wait.append(timed.wait[0] if timed.wait else float("nan"))
        self.wait += timed.wait[1:]
        self.compute += timed.compute[1:]
        self.clips += clips
        self.seconds += seconds

    @property
    def stall_fraction(self) -> float:
        total = sum(self.wait) + sum(self.compute)
        return sum(self.wait) / total if total else float("nan")

    @property
    def clips_per_s(self) -> float:
        return self.clips / self.seconds if self.seconds else float("nan")


@dataclass
class PresetTrainBench:
    preset: str
    scale: str
    batch_size: int
    steps: int
    compute_only: StepStats
    pipeline: StepStats | None  # None with --compute-only
    decode_limit_clips_per_s: float | None
    peak_host_gib: float
    peak_driver_gib: float
    peak_device_gib: float | None = None
    gmacs_per_clip: float = float("nan")
    limit_clips_per_s: float | None = None
    host_path: StepStats | None = None  # GPU only: pageable host batches through DeviceFeed

    @property
    def decode_suffices(self) -> bool | None:
        if self.decode_limit_clips_per_s is None:
            return None
        return self.decode_limit_clips_per_s >= self.compute_only.clips_per_s

    @property
    def input_path_efficiency(self) -> float | None:
        if self.host_path is None:
            return None
        return self.host_path.clips_per_s / self.compute_only.clips_per_s

    @property
    def ratio_to_limit(self) -> float | None:
        if not self.limit_clips_per_s:
            return None
        return self.compute_only.clips_per_s / self.limit_clips_per_s


@dataclass
class TrainBench:
    device: str
    amp: bool
    compute_threads: int
    decode_tasks: int
    results: list[PresetTrainBench]
    compiled: list[CompileComparison] = field(default_factory=list)

    def compile_table(self) -> Table | None:
        return compile_table(self.compiled) if self.compiled else None

    def compile_targets(self) -> list[str]:
        return compile_targets(self.compiled, on_gpu=self.device != "cpu")

    def table(self) -> Table:
        rows = []
        for r in self.results:
            for label, s in (("compute only", r.compute_only), ("host input path", r.host_path),
                             ("ray data", r.pipeline)):
                if s is None:
                    continue
                rows.append([
                    r.preset, label, r.batch_size, 1000 * median(s.wait) if s.wait else 0.0, 1000 * median(s.compute),
                    round(s.clips_per_s, 2), round(100 * s.stall_fraction, 1) if label == "ray data" else None,
                    median(s.first_wait) if label == "ray data" else None,
                ])
        return Table(["preset", "source", "batch", "wait ms/step", "compute ms/step", "clips/s", "stall %",
                      "first batch s"], rows)

    def capacity_table(self) -> Table:
        rows = []
        for r in self.results:
            rows.append([
                r.preset, None if r.decode_limit_clips_per_s is None else round(r.decode_limit_clips_per_s, 2),
                round(r.compute_only.clips_per_s, 2), r.decode_suffices,
                round(r.peak_host_gib, 2), round(r.peak_driver_gib, 2),
                None if r.peak_device_gib is None else round(r.peak_device_gib, 2),
                round(r.gmacs_per_clip, 3), None if r.limit_clips_per_s is None else round(r.limit_clips_per_s),
                None if r.ratio_to_limit is None else round(r.ratio_to_limit, 3),
                None if r.input_path_efficiency is None else round(r.input_path_efficiency, 3),
            ])
        return Table(["preset", "decode limit clips/s", "compute clips/s", "decode suffices", "peak host GiB",
                      "peak driver GiB", "peak device GiB", "GMACs/clip", "limit clips/s", "x limit",
                      "input path x compute"], rows)

    def targets(self) -> list[str]:
        lines = []
        for r in self.results:
            if r.input_path_efficiency is not None:
                verdict = "met" if r.input_path_efficiency >= 0.95 else "MISSED"
                lines.append(f"{r.preset}: input path {r.host_path.clips_per_s:.1f} clips/s = "
                             f"{r.input_path_efficiency:.3f} x compute only (target >= 0.95: {verdict})")
            if r.pipeline is None:
                lines.append(f"{r.preset}: stall not measured (compute only)")
                continue
            stall = r.pipeline.stall_fraction
            if r.decode_suffices:
                verdict = "met" if stall <= 0.05 else "MISSED"
                lines.append(f"{r.preset}: stall {100 * stall:.1f}% with decode capacity to spare (target <= 5%: {verdict})")
            else:
                lines.append(
                    f"{r.preset}: stall {100 * stall:.1f}%: decode-bound ({r.decode_limit_clips_per_s:.1f} clips/s of "
                    f"decode for {r.compute_only.clips_per_s:.1f} clips/s of compute), the 5% target does not apply"
                )
        return lines


def _setup(preset_name: str, scale: str, device, num_classes: int):
    from k400ray.engine.layout import to_device_layout
    from k400ray.engine.optim import sgd
    from k400ray.models.build import build_model
    from k400ray.presets import get_preset

    preset = get_preset(preset_name, scale=scale)
    model = to_device_layout(build_model(replace(preset.arch, pretrained=None), num_classes), preset.arch.family, device)
    optimizer = sgd(model, preset.recipe, lr=preset.recipe.lr, weight_decay=preset.recipe.weight_decay,
                    momentum=preset.recipe.momentum)
    return preset, model, optimizer


def _epoch(model, optimizer, batches: Iterable[dict], *, device, amp: bool, clip_grad_norm, memory_format) -> tuple[TimedBatches, int, float]:
    from k400ray.engine.augment import BatchMix
    from k400ray.engine.loops import train_one_epoch

    timed = TimedBatches(batches)
    mix = BatchMix(None, alpha=1.0, num_classes=model_num_classes(model))
    stats = train_one_epoch(model, timed, optimizer, device=device, mix=mix, clip_grad_norm=clip_grad_norm, amp=amp,
                            memory_format=memory_format)
    return timed, stats.clips, stats.seconds


def model_num_classes(model) -> int:
    from k400ray.engine.optim import classifier

    return classifier(model).out_features


def _compare_compiled(name: str, mode: str, *, eager, batches: list[dict], warm: int, repeats: int, backend: str,
                      scale: str, device, num_classes: int, kw: dict, log) -> CompileComparison:
    """A fresh copy of the preset compiled in ``mode`` against the ``eager`` (model, optimizer) on
    the same in-memory batches: one timed warm-up pass that compiles, one that records CUDA graphs
    (their second call), then ``repeats`` passes each, alternating which runs first."""
    import torch

    from k400ray.engine.compiled import compile_model

    _, twin, twin_opt = _setup(name, scale, device, num_classes)
    compile_model(twin, mode, device_type=device.type, backend=backend)
    _, _, first_s = _epoch(twin, twin_opt, batches[:warm], **kw)
    _epoch(twin, twin_opt, batches[:warm], **kw)
    runs = {"eager": StepStats(), "compiled": StepStats()}
    models = {"eager": eager, "compiled": (twin, twin_opt)}
    for rep in range(repeats):
        for key in ("eager", "compiled")[:: -1 if rep % 2 else 1]:
            runs[key].add(*_epoch(*models[key], batches, **kw))
        log(f"  {name} {mode}: pass {rep + 1}/{repeats}: eager {runs['eager'].clips_per_s:.1f} clips/s, "
            f"compiled {runs['compiled'].clips_per_s:.1f} clips/s (compile {first_s:.1f} s)")
    steps = repeats * len(batches)
    batch = len(batches[0]["label"])
    ms = {k: 1000 * r.seconds / steps for k, r in runs.items()}
    del twin, twin_opt
    torch._dynamo.reset()  # the next preset or mode compiles afresh (and under the recompile limit)
    return CompileComparison(
        preset=name, mode=mode, backend=backend, batch_size=batch, eager_clips_per_s=runs["eager"].clips_per_s,
        compiled_clips_per_s=runs["compiled"].clips_per_s, eager_ms_per_step=ms["eager"],
        compiled_ms_per_step=ms["compiled"], compile_seconds=max(0.0, first_s - warm * ms["compiled"] / 1000))


class _PipelineSource:
    """The Ray Data pipeline over ``steps * batch`` index rows, and the decode limit on the same rows."""

    def __init__(self, index_dir, split: str, spec, *, steps: int, batch: int, decode_tasks: int, work_dir, limit) -> None:
        # Imported here: --compute-only runs where pyarrow, decord and Ray are not installed.
        from k400ray.bench.inputs import BENCH_SPLIT, index_rows, sized_index
        from k400ray.data.index import load_manifest
        from k400ray.data.pipeline import clip_dataset

        sized = sized_index(index_dir, split, steps * batch, work_dir)
        self.rows = index_rows(sized, BENCH_SPLIT)
        self.spec, self.batch, self.limit, self.decode_tasks = spec, batch, limit, decode_tasks
        limit.data_root = load_manifest(sized)["data_root"]
        self.epoch = 0
        self.dataset = lambda epoch: clip_dataset(sized, BENCH_SPLIT, spec, seed=0, epoch=epoch, shard=(0, 1),
                                                  decode_tasks=decode_tasks, batch_size=batch)

    def batches(self):
        """A new epoch's batches, as ``engine.worker`` asks for them."""
        self.epoch += 1
        return self.dataset(self.epoch).iter_batches(batch_size=self.batch, batch_format="numpy", prefetch_batches=2)

    def warm_decode(self) -> None:
        self.limit.run(self.rows[: 2 * self.decode_tasks], self.spec)

    def decode_rate(self) -> float:
        got, seconds, _ = self.limit.run(self.rows, self.spec)
        return got / seconds


def run_train_bench(
    index_dir: str | Path | None,
    *,
    split: str = "train",
    presets: list[str],
    scale: str = "toy",
    steps: int = 20,
    batch_size: int | None = None,
    repeats: int = 2,
    decode_tasks: int | None = None,
    compute_threads: int = 1,
    num_classes: int = 400,
    compute_only: bool = False,
    compile_modes: tuple[str, ...] = (),
    compile_backend: str = "inductor",
    work_dir: str | Path | None = None,
    log=print,
) -> TrainBench:
    """Measure each preset; Ray must be initialised (``init_ray``) unless ``compute_only``.

    ``compute_only`` measures the model's steps alone, on batches in memory: no index, no decode,
    no Ray (``index_dir`` and ``work_dir`` are unused), e.g. to size a GPU node. ``compile_modes``
    adds, per preset and mode, compiled against eager steps on those batches (``compile_backend``
    other than Inductor only checks that the comparison runs)."""
    import torch

    from k400ray.engine.layout import input_memory_format

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if cuda:
        torch.backends.cudnn.benchmark = True  # as the engine does: fixed clip shapes
    else:
        torch.set_num_threads(compute_threads)
    cores = os.cpu_count() or 1
    decode_tasks = decode_tasks or max(1, cores - (0 if cuda else compute_threads))
    amp = cuda
    peak = peak_bf16_tflops(torch.cuda.get_device_name(0)) if cuda else None
    results, compiled = [], []
    if not compute_only:
        from k400ray.bench.data import DecodeLimit
    limit = None if compute_only else DecodeLimit(decode_tasks, "")
    try:
        for name in presets:
            preset, model, optimizer = _setup(name, scale, device, num_classes)
            batch = batch_size or preset.recipe.batch_per_gpu
            spec = preset.clip_spec("train")
            memory_format = input_memory_format(preset.arch.family, device)
            kw = dict(device=device, amp=amp, clip_grad_norm=preset.recipe.clip_grad_norm, memory_format=memory_format)
            rng = np.random.default_rng(0)
            fake = [
                {"clips": rng.integers(0, 256, size=(batch, *spec.output_shape), dtype=np.uint8),
                 "label": rng.integers(0, num_classes, size=batch), "video_id": np.array([""] * batch),
                 "valid": np.ones(batch, dtype=bool)}
                for _ in range(min(steps, 4))
            ]
            in_memory = [fake[i % len(fake)] for i in range(steps)]
            # Compute only: on a GPU the clips are already in device memory, so no transfer is timed.
            resident = [{**b, "clips": torch.from_numpy(b["clips"]).to(device)} for b in fake] if cuda else fake
            on_device = [resident[i % len(resident)] for i in range(steps)]
            pipeline = None if compute_only else _PipelineSource(index_dir, split, spec, steps=steps, batch=batch,
                                                                 decode_tasks=decode_tasks, work_dir=work_dir, limit=limit)
            computed = StepStats()
            hosted = StepStats() if cuda else None
            piped = None if pipeline is None else StepStats()
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            # Warm-up (excluded): first steps allocate and pick kernels, decode processes start.
            # (4 steps when no pipeline epochs follow: they are the only warm-up of cuDNN's autotuning)
            _epoch(model, optimizer, on_device[: 2 if pipeline else 4], **kw)
            if hosted is not None:
                _epoch(model, optimizer, in_memory[:2], **kw)  # pinned-memory pool and side stream
            if pipeline is not None:
                last = None
                for _ in range(3):  # until an epoch is no more than 15% faster (see bench.data.warm_up)
                    _, _, seconds = _epoch(model, optimizer, pipeline.batches(), **kw)
                    if last is not None and seconds > 0.85 * last:
                        break
                    last = seconds
                pipeline.warm_decode()
            decode_rates = []
            with PeakMemory() as mem:
                for rep in range(repeats):
                    # Compute only and host input path alternate which runs first: at these batch
                    # sizes eager steps are bound by kernel launches, and order alone moved a
                    # ratio by up to 10% on the H200.
                    pair = [(computed, on_device), (hosted, in_memory)] if hosted is not None else [(computed, on_device)]
                    for stats, batches in pair[:: -1 if rep % 2 else 1]:
                        stats.add(*_epoch(model, optimizer, batches, **kw))
                    line = f"  {name}: pass {rep + 1}/{repeats}: compute {computed.clips_per_s:.1f} clips/s"
                    if hosted is not None:
                        line += f", host input path {hosted.clips_per_s:.1f} clips/s"
                    if pipeline is not None:
                        piped.add(*_epoch(model, optimizer, pipeline.batches(), **kw))
                        decode_rates.append(pipeline.decode_rate())
                        line += f", ray data {piped.clips_per_s:.1f} clips/s, decode limit {decode_rates[-1]:.1f} clips/s"
                    log(line)
            gmacs = train_clip_gmacs(preset, num_classes)
            results.append(PresetTrainBench(
                preset=name, scale=scale, batch_size=batch, steps=steps, compute_only=computed, pipeline=piped,
                host_path=hosted,
                decode_limit_clips_per_s=median(decode_rates) if decode_rates else None,
                peak_host_gib=gib(mem.tree), peak_driver_gib=gib(mem.own),
                peak_device_gib=gib(torch.cuda.max_memory_allocated()) if cuda else None, gmacs_per_clip=gmacs,
                limit_clips_per_s=compute_bound_clips_per_s(peak, gmacs) if peak else None,
            ))
            for mode in compile_modes:
                compiled.append(_compare_compiled(
                    name, mode, eager=(model, optimizer), batches=on_device, warm=2 if pipeline else 4, repeats=repeats,
                    backend=compile_backend, scale=scale, device=device, num_classes=num_classes, kw=kw, log=log))
            del model, optimizer, pipeline, resident, on_device
    finally:
        if limit is not None:
            limit.close()
    return TrainBench(device=torch.cuda.get_device_name(0) if cuda else "cpu", amp=amp,
                      compute_threads=torch.get_num_threads(), decode_tasks=decode_tasks, results=results,
                      compiled=compiled)
