"""`k400ray bench train`: per-step wait/compute split, the compute-bound limit, and the CLI on toy input."""

import re
import time

import pytest
from typer.testing import CliRunner

from k400ray.bench.train import StepStats, TimedBatches, compute_bound_clips_per_s, peak_bf16_tflops
from k400ray.cli import app

runner = CliRunner()


def _slow_source(n, delay):
    for i in range(n):
        time.sleep(delay)
        yield i


def test_timed_batches_split_wait_from_compute():
    timed = TimedBatches(_slow_source(3, 0.05))
    for _ in timed:
        time.sleep(0.02)  # the "step"
    assert len(timed.wait) == 3 and len(timed.compute) == 3
    assert min(timed.wait) >= 0.05 and min(timed.compute) >= 0.02
    stats = StepStats()
    stats.add(timed, clips=6, seconds=1.0)
    assert len(stats.wait) == 2 and len(stats.first_wait) == 1  # the first step is the pipeline start
    assert 0 < stats.stall_fraction < 1 and stats.clips_per_s == 6.0


def test_compute_bound_limit_and_gpu_peaks():
    # 989.4 TFLOP/s over 3 passes x 2 FLOPs x 32.7 GMACs
    assert compute_bound_clips_per_s(989.4, 32.7) == pytest.approx(989.4e12 / (6 * 32.7e9))
    assert peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert peak_bf16_tflops("NVIDIA H100 PCIe") == 756.0
    assert peak_bf16_tflops("Some GPU") is None and peak_bf16_tflops(None) is None


@pytest.mark.slow
def test_bench_train_cli_on_toy_models(bench_work):
    work, index = bench_work
    r = runner.invoke(app, ["bench", "train", "--index", str(index), "--scale", "toy", "--presets", "tsn_r50_1x1x8",
                            "--steps", "3", "--repeats", "1", "--batch-size", "2", "--work-dir", str(work)])
    assert r.exit_code == 0, r.output
    assert "toy scale on cpu" in r.output
    compute = re.search(r"tsn_r50_1x1x8\s+compute only\s+2\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", r.output)
    ray = re.search(r"tsn_r50_1x1x8\s+ray data\s+2\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", r.output)
    assert compute and ray, r.output
    assert float(compute.group(3)) > 0 and float(ray.group(3)) > 0
    assert 0 <= float(ray.group(4)) <= 100
    cap = re.search(r"tsn_r50_1x1x8\s+([\d.]+)\s+([\d.]+)\s+(yes|no)\s+([\d.]+)\s+([\d.]+)", r.output)
    assert cap and float(cap.group(1)) > 0 and float(cap.group(4)) >= float(cap.group(5)) > 0  # tree >= driver
    assert "target tsn_r50_1x1x8: stall" in r.output


def test_bench_train_compute_only_needs_no_index_or_ray():
    r = runner.invoke(app, ["bench", "train", "--compute-only", "--scale", "toy", "--presets", "i3d_r50_32x2x1",
                            "--steps", "3", "--repeats", "1", "--batch-size", "2"])
    assert r.exit_code == 0, r.output
    assert "no decode (compute only)" in r.output and "ray data" not in r.output and "ray start-up" not in r.output
    compute = re.search(r"i3d_r50_32x2x1\s+compute only\s+2\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", r.output)
    assert compute and float(compute.group(3)) > 0, r.output
    assert "target i3d_r50_32x2x1: stall not measured (compute only)" in r.output


def test_bench_train_compile_compares_side_by_side_and_records_compile_time(tmp_path):
    """The --compile comparison end to end on a toy preset; aot_eager, since Inductor's C++ kernels
    take over a minute to build here (tests/engine/test_compiled.py)."""
    out = tmp_path / "rec.md"
    r = runner.invoke(app, ["bench", "train", "--compute-only", "--scale", "toy", "--presets", "tsn_r50_1x1x8",
                            "--steps", "2", "--repeats", "1", "--batch-size", "2", "--compile", "reduce-overhead",
                            "--compile-backend", "aot_eager", "--out", str(out)])
    assert r.exit_code == 0, r.output
    row = re.search(r"tsn_r50_1x1x8\s+reduce-overhead \(aot_eager\)\s+2\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)"
                    r"\s+([\d.]+)\s+([\d.]+)", r.output)
    assert row, r.output
    eager, compiled, speedup, compile_s = (float(row.group(i)) for i in (3, 4, 5, 6))
    assert speedup == pytest.approx(compiled / eager, rel=0.01) and compile_s > 0
    assert "says nothing about the GPU default" in r.output
    record = out.read_text()
    assert "| preset | mode | batch | eager ms/step | compiled ms/step |" in record and "compile s" in record


@pytest.mark.parametrize("args, words", [
    (["--compile", "fast"], "--compile: unknown mode(s) fast"),
    (["--compile", "default", "--compile-backend", "tvm"], "--compile-backend must be"),
])
def test_bench_train_compile_options_refuse_bad_values(args, words):
    r = runner.invoke(app, ["bench", "train", "--compute-only", *args])
    assert r.exit_code == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output


def test_compile_comparison_break_even_and_goal():
    from k400ray.bench.compile_compare import CompileComparison, compile_targets

    row = CompileComparison("tsn_r50_1x1x8", "reduce-overhead", "inductor", 32, eager_clips_per_s=400.0,
                            compiled_clips_per_s=560.0, eager_ms_per_step=80.0, compiled_ms_per_step=57.1,
                            compile_seconds=45.8)
    assert row.speedup == pytest.approx(1.4) and row.break_even_steps == pytest.approx(2000, rel=0.01)
    assert "goal >= 1.3x: met" in compile_targets([row], on_gpu=True)[0]
    slower = CompileComparison("i3d_r50_32x2x1", "default", "inductor", 8, 200.0, 210.0, 40.0, 38.1, 60.0)
    assert "MISSED: stays off" in compile_targets([slower], on_gpu=True)[0]
    assert "measured on a CPU" in compile_targets([slower], on_gpu=False)[0]
