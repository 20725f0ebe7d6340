"""Host batches -> device tensors, one batch ahead of the model.

A host batch is what the data pipeline hands a worker: ``clips`` uint8 ``(B, V, C, T, S, S)``,
``label``, ``video_id`` and ``valid`` (``k400ray.data.pipeline``). On a GPU the step must never
wait for its input, so :class:`DeviceFeed`:

- picks the decodable rows without a copy when every row is decodable (the usual case);
- copies the clips into page-locked (pinned) host memory in a background thread, the only host
  copy, so the transfer can run asynchronously;
- sends batch i+1 to the GPU (and converts it to normalised float in the model's memory
  format) on a side CUDA stream while the model computes batch i on the default stream.

On a CPU device it does the same selection and normalisation in line. The time the consumer
spends blocked waiting for a batch is counted in :attr:`DeviceFeed.wait_s`.

A batch with no decodable row is still handed on (``rows == 0``, all-zero clips): under DDP
every rank must run the same forward/backward/step sequence, so the training loop runs it with
a zero-weighted loss instead of skipping it.
"""

from __future__ import annotations

import queue
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from k400ray.engine.augment import normalize


@dataclass
class DeviceBatch:
    """One batch on the device. ``clips`` is normalised float ``(B * V, C, T, S, S)`` (``V = 1``
    in training, where only the first view is used); ``rows`` decodable videos (0: a stand-in
    batch that must still take part in the step), ``skipped`` videos that failed to decode."""

    clips: torch.Tensor
    labels: torch.Tensor  # int64 (B,), on the device
    label_values: np.ndarray  # the same labels on the host
    video_ids: np.ndarray  # (B,) str, on the host
    views: int
    rows: int
    skipped: int


@dataclass
class _HostBatch:
    clips: torch.Tensor  # uint8 (B, V', C, T, S, S), pinned on GPU runs
    labels: torch.Tensor
    label_values: np.ndarray
    video_ids: np.ndarray
    rows: int
    skipped: int


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor on the array's memory. Ray Data hands out read-only arrays; nothing here writes
    to them (the GPU path copies into pinned memory), so torch's warning about it is noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.ascontiguousarray(array))


def select_rows(batch: dict, *, train: bool) -> _HostBatch:
    """The decodable rows of a host batch, as CPU tensors sharing the batch's memory when every
    row is decodable. Training keeps the first view only. With no decodable row the whole
    (all-zero) batch is kept and ``rows`` is 0."""
    valid = np.asarray(batch["valid"], dtype=bool)
    clips = batch["clips"]
    labels = np.asarray(batch["label"], dtype=np.int64)
    ids = np.asarray(batch["video_id"])
    rows, skipped = int(valid.sum()), int((~valid).sum())
    if 0 < rows < len(valid):  # the only case that needs a copy
        clips, labels, ids = clips[valid], labels[valid], ids[valid]
    if train:
        clips = clips[:, :1]
    clips_t = clips if isinstance(clips, torch.Tensor) else _as_tensor(clips)
    return _HostBatch(clips_t, _as_tensor(labels), labels, ids, rows, skipped)


def _pinned(batches: Iterable[dict], *, train: bool, depth: int) -> Iterator[_HostBatch | BaseException]:
    """``select_rows`` + pin in a background thread, ``depth`` batches ahead; an exception of the
    source is handed on and re-raised by the consumer."""
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for batch in batches:
                host = select_rows(batch, train=train)
                if not host.clips.is_cuda:
                    host.clips, host.labels = host.clips.pin_memory(), host.labels.pin_memory()
                while not stop.is_set():
                    try:
                        out.put(host, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            out.put(done)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's thread
            out.put(exc)

    thread = threading.Thread(target=produce, name="k400ray-pin", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is done:
                return
            yield item
    finally:
        stop.set()


class DeviceFeed:
    """Iterate device batches from host ``batches`` (see the module docstring)."""

    def __init__(self, batches: Iterable[dict], *, device: torch.device, train: bool, memory_format=None,
                 pin_depth: int = 2) -> None:
        self.batches, self.device, self.train = batches, device, train
        self.memory_format, self.pin_depth = memory_format, pin_depth
        self.wait_s = 0.0

    def _to_device(self, host: _HostBatch, non_blocking: bool) -> DeviceBatch:
        clips = host.clips.to(self.device, non_blocking=non_blocking)
        views = clips.shape[1]
        x = normalize(clips.flatten(0, 1))  # (B * V, C, T, S, S)
        if self.memory_format is not None:
            x = x.contiguous(memory_format=self.memory_format)
        labels = host.labels.to(self.device, non_blocking=non_blocking)
        return DeviceBatch(x, labels, host.label_values, host.video_ids, views, host.rows, host.skipped)

    def __iter__(self) -> Iterator[DeviceBatch]:
        if self.device.type != "cuda":
            it = iter(self.batches)
            while True:
                asked = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    return
                self.wait_s += time.perf_counter() - asked
                yield self._to_device(select_rows(batch, train=self.train), non_blocking=False)
            return
        yield from self._iter_cuda()

    def _next_host(self, it) -> _HostBatch | None:
        asked = time.perf_counter()
        item = next(it, None)
        self.wait_s += time.perf_counter() - asked
        if isinstance(item, BaseException):
            raise item
        return item

    def _iter_cuda(self) -> Iterator[DeviceBatch]:
        side = torch.cuda.Stream(device=self.device)
        main = torch.cuda.current_stream(self.device)
        it = _pinned(self.batches, train=self.train, depth=self.pin_depth)
        try:
            host = self._next_host(it)
            staged = None
            if host is not None:
                with torch.cuda.stream(side):
                    staged = self._to_device(host, non_blocking=True)
            while staged is not None:
                main.wait_stream(side)  # the batch about to be used is on the device
                for t in (staged.clips, staged.labels):
                    t.record_stream(main)  # its memory is not reused before main is done with it
                current, staged = staged, None
                host = self._next_host(it)
                if host is not None:
                    with torch.cuda.stream(side):  # next batch's copy overlaps current's compute
                        staged = self._to_device(host, non_blocking=True)
                yield current
        finally:
            it.close()
