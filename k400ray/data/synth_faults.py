"""Broken files of the kinds a real Kinetics copy has, for the tests and ``synth --corrupt``:
public so that tests build their own broken videos the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np

from k400ray.data.synth_encode import encode

CORRUPT_KINDS = ("empty", "truncated", "random_bytes", "audio_only", "undecodable_tail")
"""Broken-file kinds in the order ``corrupt=N`` cycles through them.

- ``empty``: 0 bytes.
- ``truncated``: the first 30% of a good file; the index (``moov``, written last) is gone.
- ``random_bytes``: 1-9 KB of noise named .mp4 (real broken K400 files are often 0-9 KB).
- ``audio_only``: a valid mp4 with one AAC stream and no video.
- ``undecodable_tail``: a valid index (``moov`` first) declaring every frame, but the second half
  of the frame data zeroed: ``len(VideoReader)`` says ``frames`` while only about half decode.
"""


def write_audio_only(path: Path, rng: np.random.Generator) -> None:
    """A playable mp4 with one second of quiet AAC noise and no video stream."""
    container = av.open(str(path), "w", format="mp4")
    try:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        samples = stream.codec_context.frame_size or 1024
        for i in range(16000 // samples + 1):
            data = (rng.standard_normal((1, samples)) * 0.01).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(data, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * samples
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()


def mdat_payload_offset(data: bytes) -> int:
    """Byte offset of the first payload byte of the top-level ``mdat`` box (ISO BMFF box walk)."""
    pos = 0
    while pos + 8 <= len(data):
        size, header = int.from_bytes(data[pos : pos + 4], "big"), 8
        if size == 1:  # 64-bit largesize follows the type
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:  # box runs to the end of the file
            size = len(data) - pos
        if data[pos + 4 : pos + 8] == b"mdat":
            return pos + header
        if size < header:
            break
        pos += size
    raise ValueError("no mdat box found")


def _scratch(path: Path) -> Path:
    """Where to encode the good file a broken one is cut from: outside train/ and val/, so an
    interrupted run never leaves an extra video in a split folder."""
    return path.parent.parent / f".synth-tmp-{path.name}"


def write_corrupt(
    path: Path, kind: str, rng: np.random.Generator, render: Callable[[], Iterator[np.ndarray]], encode_kw: dict
) -> None:
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(rng.bytes(int(rng.integers(1024, 9 * 1024))))
    elif kind == "audio_only":
        write_audio_only(path, rng)
    elif kind == "truncated":
        tmp = _scratch(path)
        encode(tmp, render(), **encode_kw)
        data = tmp.read_bytes()
        tmp.unlink()
        path.write_bytes(data[: max(1, int(len(data) * 0.3))])
    elif kind == "undecodable_tail":
        # moov first (faststart) so the index survives; then zero the packets of the second half.
        # Zeros are not a decodable H.264 slice: decoders stop at the first of them.
        tmp = _scratch(path)
        sizes = encode(tmp, render(), faststart=True, **encode_kw)
        data = bytearray(tmp.read_bytes())
        tmp.unlink()
        cut = mdat_payload_offset(bytes(data)) + sum(sizes[: max(1, len(sizes) // 2)])
        data[cut:] = bytes(len(data) - cut)
        path.write_bytes(bytes(data))
    else:
        raise ValueError(f"unknown corrupt kind {kind!r}")
