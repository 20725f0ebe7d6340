"""Compiled steps (``training.compile``): a compiled model trains and evaluates like the eager one.

The loss test compiles with the ``aot_eager`` backend, not Inductor: it runs the same capture
(Dynamo's graph of the forward, AOTAutograd's forward and backward graphs, which is where a
compiled model can silently differ from eager: graph breaks, mutated buffers such as BatchNorm's
running statistics, the temporal shift's slicing) but executes the graphs with eager kernels.
Inductor's generated C++ kernels took 70-80 s to build for one toy preset's first step on this
2-core machine (22 s for a 3-layer model), far over a test's budget; the GPU script
(infra/gpu_session.sh) runs Inductor on the full-size presets.
"""

import copy

import numpy as np
import pytest
import torch

from k400ray.engine import compiled
from k400ray.engine.augment import BatchMix
from k400ray.engine.compiled import compile_model, compiled_mode, default_compile_mode
from k400ray.engine.loops import evaluate, train_one_epoch
from k400ray.models.build import build_model
from k400ray.presets import get_preset


def _batch(rng, *, b=2, v=1, t=8, s=32, classes=4):
    return {"clips": rng.integers(0, 255, (b, v, 3, t, s, s), dtype=np.uint8), "label": np.arange(b) % classes,
            "video_id": np.array([f"v{j}" for j in range(b)]), "valid": np.ones(b, bool)}


def _steps(model, batches, *, seed=0):
    """Per-step training losses (one epoch per batch), then the eval scores of the last batch."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    mix = BatchMix(None, alpha=1.0, num_classes=4)
    losses = []
    for i, batch in enumerate(batches):
        torch.manual_seed(seed + i)  # dropout draws alike in both runs
        stats = train_one_epoch(model, [batch], opt, device=torch.device("cpu"), mix=mix, clip_grad_norm=20.0)
        losses.append(stats.loss)
    preds, _ = evaluate(model, [batches[-1]], device=torch.device("cpu"), average="prob")
    return np.array(losses), preds.topk_scores


@pytest.mark.parametrize("preset_name", ["tsm_r50_1x1x8", "i3d_r50_32x2x1"])
def test_compiled_toy_model_trains_like_eager(preset_name):
    torch.set_num_threads(1)
    preset = get_preset(preset_name, scale="toy")
    rng = np.random.default_rng(0)
    batches = [_batch(rng) for _ in range(3)]
    torch.manual_seed(0)
    eager = build_model(preset.arch, 4)
    twin = copy.deepcopy(eager)  # same weights
    compile_model(twin, "default", device_type="cpu", backend="aot_eager")
    assert compiled_mode(twin) == "default" and compiled_mode(eager) == "off"

    from torch._dynamo.utils import counters

    eager_losses, eager_scores = _steps(eager, batches)
    graphs = counters["stats"]["unique_graphs"]
    twin_losses, twin_scores = _steps(twin, batches)
    assert counters["stats"]["unique_graphs"] > graphs  # the twin really ran captured graphs

    assert eager_losses[-1] != eager_losses[0]  # the weights moved: the steps are real
    np.testing.assert_allclose(twin_losses, eager_losses, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(twin_scores, eager_scores, rtol=1e-3, atol=1e-5)
    for a, b in zip(eager.state_dict().values(), twin.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)  # BatchNorm statistics included
    # compiled in place: the state_dict keys are the eager model's (checkpoints unchanged)
    assert list(twin.state_dict()) == list(eager.state_dict())


def test_off_leaves_the_module_eager_and_unknown_modes_are_refused():
    model = torch.nn.Linear(3, 2)
    assert compile_model(model, "off") is model and compiled_mode(model) == "off"
    with pytest.raises(ValueError, match="unknown compile mode 'fast'"):
        compile_model(model, "fast")


def test_a_deepcopy_is_eager_until_compiled_again():
    model = compile_model(torch.nn.Linear(3, 2), "reduce-overhead", device_type="cpu", backend="eager")
    wrapped = torch.nn.Module()
    wrapped.module = model  # what DDP looks like to compiled_mode
    assert compiled_mode(model) == compiled_mode(wrapped) == "reduce-overhead"
    assert compiled_mode(copy.deepcopy(model)) == "off"


def test_inductor_on_cpu_without_a_compiler_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="training.compile: default: .*C\\+\\+ compiler"):
        compile_model(torch.nn.Linear(3, 2), "default", device_type="cpu")


def test_default_mode_is_eager_until_a_gpu_measurement_fills_the_table(monkeypatch):
    assert default_compile_mode("tsn_r50_1x1x8", use_gpu=True) == "off"  # nothing measured yet
    monkeypatch.setitem(compiled.GPU_DEFAULT_COMPILE, "tsn_r50_1x1x8", "reduce-overhead")
    assert default_compile_mode("tsn_r50_1x1x8", use_gpu=True) == "reduce-overhead"
    assert default_compile_mode("tsn_r50_1x1x8", use_gpu=False) == "off"  # CPU trials stay eager
