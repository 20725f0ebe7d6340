"""Reductions of a worker's metrics and gathers of its predictions that work under NCCL.

NCCL reduces CUDA tensors only: a CPU tensor on an NCCL process group raises ``No backend type
associated with device type cpu``. A worker's metrics and per-video predictions are small host
objects, so they travel on a gloo group made beside the default group when the default one has
no CPU path, and on the default group when it has one (gloo, or ``cpu:gloo,cuda:nccl``).
Nothing here touches the GPU, so metric reductions never wait on, or slow, the training stream.

Contract: these are collectives. Every rank makes the same calls in the same order, whatever
its data (a rank with no val video still calls :meth:`Collectives.gather_predictions`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist

from k400ray.engine.metrics import Predictions


def _default_group_has_cpu_path() -> bool:
    """True for gloo and mixed ``cpu:gloo,cuda:nccl`` groups; False for NCCL (``cuda:nccl``)."""
    return "cpu:" in str(dist.get_backend_config())


class Collectives:
    """Sum metrics and gather predictions over the ranks of one Train worker group."""

    def __init__(self, group=None, *, world_size: int = 1) -> None:
        self.group = group
        self.world_size = world_size

    @classmethod
    def for_default_group(cls) -> "Collectives":
        """Every rank must call this once, at the same point: making a gloo group is a collective."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return cls()
        group = None if _default_group_has_cpu_path() else dist.new_group(backend="gloo")
        return cls(group, world_size=dist.get_world_size())

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum of ``values`` over all ranks, in one collective (float64, on the host)."""
        if self.world_size == 1:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        dist.all_reduce(t, group=self.group)
        return t.tolist()

    def gather_predictions(self, preds: Predictions) -> Predictions:
        """Every rank's predictions on every rank, sorted by video id (each video was evaluated by
        exactly one rank, so the union is the whole val set once)."""
        if self.world_size == 1:
            return preds.sorted()
        parts: list = [None] * self.world_size
        dist.all_gather_object(parts, preds, group=self.group)
        return Predictions.concat(parts).sorted()
