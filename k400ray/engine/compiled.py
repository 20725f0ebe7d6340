"""Compiled steps (spec ``training.compile``): which ``torch.compile`` mode a trial's model runs
in, and applying it.

Why: eager bf16 steps at the recipes' per-GPU batches are bound by kernel launches on the host
(docs/benchmarks.md: 4-10% of an H100's peak), which is what compiling (fused kernels) and CUDA
graphs (``reduce-overhead``: one launch per graph) remove. The modes:

- ``off``: eager, as every trial ran before (the default until a GPU measurement says otherwise);
- ``default``: TorchInductor's fused kernels;
- ``reduce-overhead``: the same, replayed as CUDA graphs. The training clips have one shape
  (batch, views, frames, crop), so one graph serves an epoch; an epoch's last, shorter batch
  or one with undecodable videos dropped is another shape, recorded once more. On a CPU it
  compiles like ``default`` (Inductor skips CUDA graphs there);
- ``max-autotune``: Inductor benchmarks kernel choices while compiling (minutes per preset on a
  GPU), then uses CUDA graphs too.

Where the compile goes, as PyTorch's "Where to apply torch.compile?" page says for DDP: on the
inner module, in place (``nn.Module.compile``), before DDP wraps it; Dynamo does not trace the
DDP wrapper well. In place, the module stays the same object: its ``state_dict`` keys, the
checkpoints, ``loops.unwrap`` and DDP's buffer broadcast are unchanged, and evaluation, which runs
the unwrapped module, runs compiled too. ``copy.deepcopy`` of a compiled module gives an
uncompiled copy (PyTorch drops the compiled call): :func:`compile_model` it again.

The default decision: a GPU trial that leaves ``training.compile`` unset runs the mode in
``GPU_DEFAULT_COMPILE`` for its preset, where ``k400ray bench train --compute-only --compile``
measured that mode at least ``DEFAULT_ON_SPEEDUP`` (1.3x) faster than eager on a GPU. No
preset has such a measurement yet, so the table is empty and every trial runs eager
unless its spec says otherwise. Fill it from a record in docs/benchmarks.md, never from a guess.
"""

from __future__ import annotations

import shutil
import weakref

# The values of the spec's ``training.compile`` (and ``TrialConfig.compile``).
OFF = "off"
REDUCE_OVERHEAD = "reduce-overhead"
COMPILE_MODES: tuple[str, ...] = (OFF, "default", REDUCE_OVERHEAD, "max-autotune")

# A preset's compiled steps become the default of GPU trials from this speed-up over eager on.
DEFAULT_ON_SPEEDUP = 1.3
# preset -> compile mode that GPU trials of it run when the spec leaves training.compile unset.
# Only presets whose mode measured >= DEFAULT_ON_SPEEDUP on a GPU belong here (the record goes in
# docs/benchmarks.md); empty until infra/gpu_session.sh has run on a GPU.
GPU_DEFAULT_COMPILE: dict[str, str] = {}

# The modes of the modules compile_model compiled (weakly held: a module's entry goes with it;
# a deepcopy is not in it, matching PyTorch, which does not copy the compiled call).
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def default_compile_mode(preset: str, use_gpu: bool) -> str:
    """The mode of a trial whose spec leaves ``training.compile`` unset: the measured GPU default
    of its preset on a GPU (``GPU_DEFAULT_COMPILE``), eager otherwise."""
    return GPU_DEFAULT_COMPILE.get(preset, OFF) if use_gpu else OFF


def cpu_compiler_missing() -> str | None:
    """Why Inductor cannot compile for a CPU here (it builds C++ kernels with a system compiler),
    or None when a compiler is on PATH."""
    if shutil.which("g++") or shutil.which("c++") or shutil.which("gcc"):
        return None
    return "torch.compile on a CPU needs a C++ compiler (g++) on PATH, and none is installed"


def compile_model(module, mode: str, *, device_type: str = "cuda", backend: str = "inductor"):
    """Compile ``module``'s forward in place in ``mode`` (``off``: leave it eager); returns it.

    Call it on the plain module, before DDP wraps it. ``backend`` other than Inductor is for tests
    (``aot_eager`` captures the same forward and backward graphs without generating kernels).
    Raises ``RuntimeError`` when Inductor would need a C++ compiler this machine lacks.
    """
    if mode not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {mode!r} (known: {', '.join(COMPILE_MODES)})")
    if mode == OFF:
        return module
    if backend == "inductor" and device_type == "cpu" and (missing := cpu_compiler_missing()):
        raise RuntimeError(f"training.compile: {mode}: {missing}; set training.compile: off")
    # Only Inductor knows the modes; another backend compiles its one way.
    module.compile(backend=backend, **({"mode": mode} if backend == "inductor" else {}))
    _COMPILED[module] = mode
    return module


def compiled_mode(module) -> str:
    """The mode ``module`` (or the module inside its DDP wrapper) was compiled in; ``off`` if none."""
    inner = getattr(module, "module", module)
    return _COMPILED.get(inner, OFF)


def step_begin(module) -> None:
    """Before each forward of a model compiled with CUDA graphs: tells PyTorch a new step starts,
    so the graphs' output memory of the previous step may be reused (its outputs have been
    consumed by then: the loss and the scores are computed from them right after the forward).
    A no-op for eager and non-graph modes."""
    if compiled_mode(module) in (REDUCE_OVERHEAD, "max-autotune"):
        import torch

        torch.compiler.cudagraph_mark_step_begin()
