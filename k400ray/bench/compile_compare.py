"""``bench train --compile MODES``: compiled steps against eager, side by side.

A trial pays the compile once and then runs every step compiled, so a mode is worth defaulting on
where its steady-state steps are faster by enough (``engine.compiled.DEFAULT_ON_SPEEDUP``, 1.3x)
to repay the compile within a trial. Both figures are measured here, on the same batches (already
on the device), in passes that alternate which model runs first, as ``bench train`` does for the
input path: at the recipes' batch sizes eager steps are launch-bound and order alone moved a ratio
by up to 10% on the H200. This module holds the results and their record; the passes are run by
``bench.train.run_train_bench``.
"""

from __future__ import annotations

from dataclasses import dataclass

from k400ray.bench.common import Table
from k400ray.engine.compiled import DEFAULT_ON_SPEEDUP


@dataclass
class CompileComparison:
    """One preset in one mode: eager and compiled clips/s and ms per step over the same passes,
    and the compile's own cost (``compile_seconds``: the first compiled pass's time beyond what
    its steps take once compiled, CUDA-graph recording included, as a trial's first steps pay it)."""

    preset: str
    mode: str
    backend: str
    batch_size: int
    eager_clips_per_s: float
    compiled_clips_per_s: float
    eager_ms_per_step: float
    compiled_ms_per_step: float
    compile_seconds: float

    @property
    def speedup(self) -> float:
        return self.compiled_clips_per_s / self.eager_clips_per_s

    @property
    def break_even_steps(self) -> float | None:
        """Steps after which the compile has paid for itself (None: it never does)."""
        saved_s = (self.eager_ms_per_step - self.compiled_ms_per_step) / 1000
        return self.compile_seconds / saved_s if saved_s > 0 else None


def compile_table(rows: list[CompileComparison]) -> Table:
    return Table(
        ["preset", "mode", "batch", "eager ms/step", "compiled ms/step", "eager clips/s", "compiled clips/s",
         "x eager", "compile s", "break-even steps"],
        [[r.preset, r.mode if r.backend == "inductor" else f"{r.mode} ({r.backend})", r.batch_size,
          r.eager_ms_per_step, r.compiled_ms_per_step, round(r.eager_clips_per_s, 2), round(r.compiled_clips_per_s, 2),
          round(r.speedup, 3), r.compile_seconds, None if r.break_even_steps is None else round(r.break_even_steps)]
         for r in rows],
    )


def compile_targets(rows: list[CompileComparison], *, on_gpu: bool) -> list[str]:
    """One line per row against the goal that decides the GPU default (engine/compiled.py)."""
    lines = []
    for r in rows:
        if r.backend != "inductor" or not on_gpu:
            why = f"backend {r.backend}" if r.backend != "inductor" else "measured on a CPU"
            lines.append(f"{r.preset} {r.mode}: {r.speedup:.2f}x eager ({why}: says nothing about the GPU default)")
            continue
        verdict = "met: default it on for GPU trials" if r.speedup >= DEFAULT_ON_SPEEDUP else "MISSED: stays off"
        lines.append(f"{r.preset} {r.mode}: {r.speedup:.2f}x eager, compile {r.compile_seconds:.0f} s paid once per "
                     f"trial (goal >= {DEFAULT_ON_SPEEDUP}x: {verdict})")
    return lines
