"""Probe one video for the index: frames that really decode, fps, size, which decoder reads it.

Container headers over-count frames for truncated or badly muxed files, and a reader that
trusts them loops or crashes later in training. So the count is the number of video packets
the demuxer actually finds, confirmed by decoding the last of them; when that fails the file
is decoded start to end and the frames that come out are counted.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from k400ray.data.decode import DecodeError, read_frames


class ProbeError(RuntimeError):
    """The file cannot be used for training; the message is the reason written to the manifest."""


@dataclass(frozen=True)
class VideoProbe:
    num_frames: int
    header_frames: int
    fps: float
    width: int
    height: int
    duration_s: float
    bytes: int
    decoder: str  # "decord", or "pyav" when decord cannot read the file

    def as_dict(self) -> dict:
        return asdict(self)


def _count_decodable(path: str) -> int:
    import av

    count = 0
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "NONE"
            for _ in container.decode(stream):
                count += 1
    except Exception:  # a truncated file ends in an error: the frames before it still count
        pass
    return count


def probe_video(path: str | os.PathLike) -> VideoProbe:
    """Probe ``path`` or raise :class:`ProbeError` with a short reason."""
    import av

    path = str(path)
    if not os.path.isfile(path):
        raise ProbeError("missing file")
    size = os.path.getsize(path)
    if size == 0:
        raise ProbeError("empty file (0 bytes)")
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise ProbeError("no video stream (audio only?)")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            header_frames = int(stream.frames or 0)
            packets = sum(1 for p in container.demux(stream) if p.size > 0)
    except ProbeError:
        raise
    except Exception as exc:
        detail = getattr(exc, "strerror", None) or (str(exc).splitlines() or [""])[0][:160]
        raise ProbeError(f"cannot open ({type(exc).__name__}: {detail})") from None
    if width <= 0 or height <= 0:
        raise ProbeError("video stream has no size")

    num_frames, decoder = 0, None
    if packets > 0 and _decord_reads(path, packets - 1):
        num_frames, decoder = packets, "decord"
    else:
        # Damaged tail or a file decord rejects: count what PyAV really decodes.
        num_frames = _count_decodable(path)
        if num_frames == 0:
            raise ProbeError("no decodable video frames")
        decoder = "decord" if _decord_reads(path, num_frames - 1) else "pyav"
    if fps <= 0:
        fps = 25.0
    return VideoProbe(
        num_frames=num_frames, header_frames=header_frames, fps=round(fps, 3), width=int(width),
        height=int(height), duration_s=round(num_frames / fps, 3), bytes=size, decoder=decoder,
    )


def _decord_reads(path: str, frame: int) -> bool:
    try:
        read_frames(path, np.array([frame]), decoder="decord")
        return True
    except DecodeError:
        return False
