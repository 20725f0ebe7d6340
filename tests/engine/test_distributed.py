"""The engine's collectives with two real ranks (spawned processes, gloo on CPU).

- NCCL has no CPU path. A process group made with backend ``cuda:gloo`` has none either, and
  rejects CPU tensors with NCCL's own error, so the worker's metric sums and prediction gathers
  are checked under it here.
- A rank whose batch has no decodable row still steps, handing the all-reduce a zero gradient:
  the epoch ends on both ranks, with the same weights and the same BatchNorm running statistics
  (rank 0's).
- A rank with no val video: evaluation (and the gather after it) completes.
Each run is bounded: a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import datetime
import multiprocessing as mp
import pickle
import traceback
from pathlib import Path

import numpy as np
import pytest

TIMEOUT_S = 120


def _rank_entry(fn_name: str, rank: int, world: int, backend: str, tmp: str) -> None:
    import torch.distributed as dist

    out = Path(tmp) / f"rank{rank}.pkl"
    try:
        dist.init_process_group(backend, init_method=f"file://{tmp}/store", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=60))
        result = globals()[fn_name](rank, world)
        dist.destroy_process_group()
        out.write_bytes(pickle.dumps(("ok", result)))
    except BaseException:  # noqa: BLE001 - reported by the parent
        out.write_bytes(pickle.dumps(("error", traceback.format_exc())))


def run_ranks(fn_name: str, tmp_path: Path, *, backend: str = "gloo", world: int = 2) -> list:
    """Run ``fn_name(rank, world)`` of this module on ``world`` spawned ranks; their results."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_rank_entry, args=(fn_name, r, world, backend, str(tmp_path))) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(TIMEOUT_S)
    hung = [r for r, p in enumerate(procs) if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert not hung, f"ranks {hung} still running after {TIMEOUT_S} s (collectives out of step)"
    results = []
    for r in range(world):
        status, value = pickle.loads((tmp_path / f"rank{r}.pkl").read_bytes())
        assert status == "ok", f"rank {r} failed:\n{value}"
        results.append(value)
    return results


def _predictions(rank: int):
    import torch

    from k400ray.engine.metrics import Predictions

    ids = [f"r{rank}_v{i}" for i in range(3)]
    return Predictions.from_scores(ids, np.array([0, 1, 2]), torch.eye(3)[[0, 1, 1]])


def nccl_like_rank(rank: int, world: int) -> dict:
    import torch
    import torch.distributed as dist

    from k400ray.engine.collectives import Collectives

    try:
        dist.all_reduce(torch.ones(1))  # what the worker did before: a CPU tensor on the default group
        cpu_error = None
    except RuntimeError as exc:
        cpu_error = str(exc)
    comm = Collectives.for_default_group()
    sums = comm.sum([rank + 1, 0.5, 10 * rank])
    gathered = comm.gather_predictions(_predictions(rank))
    return {"cpu_error": cpu_error, "sums": sums, "ids": gathered.video_id, "labels": gathered.label.tolist()}


def test_metrics_and_predictions_travel_under_a_group_without_cpu_path(tmp_path):
    results = run_ranks("nccl_like_rank", tmp_path, backend="cuda:gloo")
    for r in results:
        assert "No backend type associated with device type cpu" in r["cpu_error"]
        assert r["sums"] == [3.0, 1.0, 10.0]
        assert r["ids"] == sorted(f"r{k}_v{i}" for k in range(2) for i in range(3))
        assert r["labels"] == [0, 1, 2, 0, 1, 2]


def test_collectives_use_the_default_group_when_it_has_a_cpu_path(tmp_path):
    results = run_ranks("nccl_like_rank", tmp_path, backend="gloo")
    assert all(r["cpu_error"] is None and r["sums"] == [3.0, 1.0, 10.0] for r in results)


def _toy_ddp_model(num_classes: int = 4):
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from k400ray.models.build import build_model
    from k400ray.presets import get_preset

    torch.manual_seed(0)
    torch.set_num_threads(1)
    preset = get_preset("tsm_r50_1x1x8", scale="toy")
    return DistributedDataParallel(build_model(preset.arch, num_classes)), preset


def _host_batch(n: int, spec, *, valid: bool, start: int = 0) -> dict:
    """``n`` videos shaped as ``spec`` says (all views), all decodable or all failed."""
    rng = np.random.default_rng(start)
    shape = (n, *spec.output_shape)
    return {
        "clips": rng.integers(0, 255, shape, dtype=np.uint8) if valid else np.zeros(shape, np.uint8),
        "label": np.arange(n) % 4,
        "video_id": np.array([f"v{start + i}" for i in range(n)]),
        "valid": np.full(n, valid),
    }


def _buffers(model) -> dict:
    return {name: b.detach().numpy().copy() for name, b in model.module.named_buffers()}


def undecodable_batch_rank(rank: int, world: int) -> dict:
    """One epoch of 3 batches on each rank, rank 1's second batch undecodable; then both ranks
    score the same val video. Before it, the same epoch with the end-of-epoch buffer broadcast
    switched off, on a copy of the model: what the ranks held before it existed."""
    import torch

    from k400ray.engine import loops
    from k400ray.engine.augment import BatchMix

    model, preset = _toy_ddp_model()
    spec = preset.clip_spec("train")
    # Rank 1's second batch: every video failed to decode (e.g. a storage hiccup failed the task).
    batches = [_host_batch(4, spec, valid=not (rank == 1 and i == 1), start=10 * rank + i) for i in range(3)]

    def epoch(ddp):
        opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
        return loops.train_one_epoch(ddp, batches, opt, device=torch.device("cpu"),
                                     mix=BatchMix("mixup", alpha=1.0, num_classes=4), clip_grad_norm=20.0)

    control, _ = _toy_ddp_model()
    share, loops.share_rank0_buffers = loops.share_rank0_buffers, lambda model: None
    try:
        epoch(control)
    finally:
        loops.share_rank0_buffers = share
    steps = _record_gradients(model)
    stats = epoch(model)
    steps.handle.remove()
    val = [_host_batch(1, preset.clip_spec("efficient"), valid=True, start=99)]  # the same video on both ranks
    preds, _ = loops.evaluate(model, val, device=torch.device("cpu"), average=preset.views("efficient").average)
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    return {"clips": stats.clips, "skipped": stats.skipped_videos, "loss": stats.loss,
            "params": flat.numpy().copy(), "buffers": _buffers(model), "buffers_unshared": _buffers(control),
            "val_scores": preds.topk_scores, "grad_local": [x["local"] for x in steps],
            "grad_reduced": [x["reduced"] for x in steps]}


class _Steps(list):
    handle = None


def _record_gradients(ddp) -> _Steps:
    """Per training step, the summed absolute gradient this rank hands DDP's all-reduce
    (``local``) and the one it gets back (``reduced``, the ranks' mean), through a comm hook
    that then all-reduces as DDP's default does."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    steps = _Steps()
    steps.handle = ddp.register_forward_pre_hook(lambda module, args: steps.append({"local": 0.0, "reduced": 0.0}))

    def hook(state, bucket):
        step = steps[-1]
        step["local"] += float(bucket.buffer().abs().sum())  # before allreduce_hook divides it in place

        def reduced(fut):
            step["reduced"] += float(fut.value().abs().sum())
            return fut.value()

        return allreduce_hook(None, bucket).then(reduced)

    ddp.register_comm_hook(None, hook)
    return steps


@pytest.fixture(scope="module")
def undecodable_epoch(tmp_path_factory) -> list[dict]:
    return run_ranks("undecodable_batch_rank", tmp_path_factory.mktemp("undecodable"))


def test_a_batch_without_decodable_row_keeps_the_ranks_in_step(undecodable_epoch):
    r0, r1 = undecodable_epoch
    assert (r0["clips"], r0["skipped"]) == (12, 0)
    assert (r1["clips"], r1["skipped"]) == (8, 4)
    assert np.isfinite(r0["loss"]) and np.isfinite(r1["loss"])
    np.testing.assert_array_equal(r0["params"], r1["params"])  # the same steps on both ranks


def test_a_batch_without_decodable_row_contributes_a_zero_gradient(undecodable_epoch):
    """Rank 1's undecodable batch still takes part in the step's all-reduce, with a gradient of
    exact zeros: the step's gradient is rank 0's alone, averaged over the two ranks."""
    r0, r1 = undecodable_epoch
    assert len(r0["grad_local"]) == len(r1["grad_local"]) == 3  # three steps on each rank, hook on each
    assert r1["grad_local"][1] == 0.0
    assert all(g > 0 for g in r0["grad_local"]) and r1["grad_local"][0] > 0 and r1["grad_local"][2] > 0
    assert r0["grad_reduced"][1] == pytest.approx(r0["grad_local"][1] / 2, rel=1e-5)
    assert r1["grad_reduced"][1] == pytest.approx(r0["grad_reduced"][1], rel=1e-6)


def test_every_rank_ends_the_epoch_with_rank_0s_batchnorm_statistics(undecodable_epoch):
    """DDP leaves each rank with the running statistics of its own last batch; the epoch ends
    with rank 0's on every rank, so both ranks score a video the same."""
    r0, r1 = undecodable_epoch
    running = [name for name in r0["buffers"] if name.endswith(("running_mean", "running_var"))]
    assert running
    assert any(not np.array_equal(r0["buffers_unshared"][n], r1["buffers_unshared"][n]) for n in running)
    for name in r0["buffers"]:
        np.testing.assert_array_equal(r0["buffers"][name], r1["buffers"][name], err_msg=name)
    np.testing.assert_array_equal(r0["val_scores"], r1["val_scores"])


def no_val_video_rank(rank: int, world: int) -> dict:
    import torch

    from k400ray.engine.collectives import Collectives
    from k400ray.engine.loops import evaluate

    model, preset = _toy_ddp_model()
    comm = Collectives.for_default_group()
    spec = preset.clip_spec("accurate")
    # Rank 0 holds both val videos (a smoke run with fewer videos than workers); rank 1 none.
    batches = [_host_batch(1, spec, valid=True, start=i) for i in range(2)] if rank == 0 else []
    preds, skipped = evaluate(model, batches, device=torch.device("cpu"), average=preset.views("accurate").average)
    (total_skipped,) = comm.sum([skipped])
    gathered = comm.gather_predictions(preds)
    return {"ids": gathered.video_id, "skipped": total_skipped}


def test_evaluation_completes_when_a_rank_has_no_val_video(tmp_path):
    results = run_ranks("no_val_video_rank", tmp_path)
    assert all(r["ids"] == ["v0", "v1"] and r["skipped"] == 0 for r in results)


@pytest.mark.parametrize("world_from,world_to", [(8, 4), (2, 2)])
def test_resume_on_another_world_size_rescales_the_lr(world_from, world_to):
    import torch

    from k400ray.engine.config import TrialConfig
    from k400ray.engine.optim import build_optimizer
    from k400ray.engine.recipe import for_world, resolve_recipe
    from k400ray.engine.resume import rescale_lr
    from k400ray.presets import get_preset

    recipe = get_preset("tsm_r50_1x1x8", scale="full").recipe
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4, 5))
    saved = resolve_recipe(TrialConfig(preset="tsm_r50_1x1x8", data={"train_index": "i"}, num_classes=5,
                                       resources={"workers_per_trial": world_from},
                                       training={"weight_decay": 1e-4, "milestones": [2], "warmup_epochs": 0}))
    old_lr = recipe.scaled_lr(8 * world_from)
    assert saved.lr == pytest.approx(old_lr)
    opt, sched = build_optimizer(model, saved)
    for _ in range(3):  # past the milestone: the schedule's factor is 0.1
        sched.step()
    new_lr = recipe.scaled_lr(8 * world_to)
    assert for_world(saved, world_to).lr == pytest.approx(new_lr)  # derived from the saved recipe
    previous = rescale_lr(opt, sched, for_world(saved, world_to).lr)
    if world_from == world_to:
        assert previous is None
        return
    assert previous == pytest.approx(old_lr)
    for group in opt.param_groups:
        assert group["lr"] == pytest.approx(0.1 * new_lr * group["lr_mult"])
    sched.step()  # later epochs follow the new base lr
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * new_lr * opt.param_groups[0]["lr_mult"])
