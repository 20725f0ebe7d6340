"""Decode chosen frames of one video to uint8 RGB, resized on decode: to a short side (aspect
kept, MMAction2) or to a fixed width x height (aspect not kept, GluonCV's 340x256).

decord (``get_batch``, one thread: parallelism comes from running many decoders, one per
CPU) is the fast path; PyAV is the fallback for files decord cannot open or read. Frames
are resized by the decoder's own scaler while decoding, which is cheaper than decoding at
full size and resizing afterwards.

Where the decoding runs is the ``backend``: ``cpu`` (decord, PyAV), or ``nvdec``: the GPU's
video decoder (``data.nvdec``) in a process that sees a GPU and has PyNvVideoCodec, the CPU
decoders everywhere else and for any video NVDEC fails on. The same indices are decoded either
way, so the sampling and crops around it do not change; only the decoder's RGB conversion and
scaler differ.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


# Where frames are decoded (spec ``data.decode_backend``).
CPU = "cpu"
NVDEC = "nvdec"
DECODE_BACKENDS: tuple[str, ...] = (CPU, NVDEC)


class DecodeError(RuntimeError):
    """A video (or some of its frames) could not be decoded."""


def short_side_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the short side scaled to ``short_side``; even sizes keep scalers happy."""
    if not short_side:
        return width, height
    if width <= height:
        new_w, new_h = short_side, round(height * short_side / width)
    else:
        new_w, new_h = round(width * short_side / height), short_side
    return max(1, int(new_w)), max(1, int(new_h))


def decode_size(width: int, height: int, *, short_side: int | None,
                frame_size: tuple[int, int] | None = None) -> tuple[int, int]:
    """(width, height) every frame of a ``width`` x ``height`` video is decoded at: ``frame_size``
    as given when set (GluonCV resizes every video to 340x256 whatever its aspect ratio), else
    the short side scaled to ``short_side``."""
    if frame_size is not None:
        return int(frame_size[0]), int(frame_size[1])
    return short_side_size(width, height, short_side)


def _decode_decord(path: str, order: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    import decord

    kwargs = {"num_threads": 1}
    if size is not None:
        kwargs.update(width=size[0], height=size[1])
    reader = decord.VideoReader(path, **kwargs)
    return reader.get_batch(order.tolist()).asnumpy()


def _decode_pyav(path: str, order: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Sequential decode up to the last wanted frame: slower than decord's seeks, but it reads
    what decord rejects."""
    import av

    wanted = {int(i) for i in order}
    last = int(order.max())
    frames: dict[int, np.ndarray] = {}
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                if size is not None:
                    frames[i] = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
                else:
                    frames[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
    missing = wanted - frames.keys()
    if missing:
        raise DecodeError(f"{path}: frames {sorted(missing)[:3]}... did not decode")
    return np.stack([frames[int(i)] for i in order])


def read_frames(
    path: str | os.PathLike,
    indices: np.ndarray,
    *,
    size: tuple[int, int] | None = None,
    decoder: str = "auto",
    backend: str = CPU,
) -> np.ndarray:
    """Frames ``indices`` (any shape, any order, repeats allowed) as uint8 ``(*indices.shape, H, W, 3)``.

    ``size`` is the output (width, height), applied while decoding. ``decoder``: ``auto`` tries
    decord then PyAV, ``decord`` / ``pyav`` use only that one (the index records which decoder
    a file needs). ``backend``: ``nvdec`` tries the GPU's decoder first where this process can
    use it (``nvdec.unavailable_reason``), then those. Raises :class:`DecodeError`.
    """
    path = str(path)
    flat = np.asarray(indices, dtype=np.int64).ravel()
    unique, inverse = np.unique(flat, return_inverse=True)
    if not Path(path).is_file():
        raise DecodeError(f"{path}: file not found")
    errors = []
    backends = {"auto": (_decode_decord, _decode_pyav), "decord": (_decode_decord,), "pyav": (_decode_pyav,)}[decoder]
    if _nvdec_usable(backend):
        from k400ray.data.nvdec import decode_nvdec

        backends = (decode_nvdec, *backends)
    for fn in backends:
        try:
            frames = fn(path, unique, size)
            break
        except Exception as exc:  # decord raises bare DECORDError/RuntimeError, PyAV its own tree
            errors.append(f"{fn.__name__.split('_')[-1]}: "
                          f"{str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}")
    else:
        raise DecodeError(f"{path}: " + "; ".join(errors))
    return frames[inverse].reshape(*np.shape(indices), *frames.shape[1:])


def _nvdec_usable(backend: str) -> bool:
    """``backend`` asks for NVDEC and this process can use it."""
    if backend == CPU:
        return False
    if backend != NVDEC:
        raise ValueError(f"unknown decode backend {backend!r} (known: {', '.join(DECODE_BACKENDS)})")
    from k400ray.data.nvdec import unavailable_reason

    return unavailable_reason() is None
