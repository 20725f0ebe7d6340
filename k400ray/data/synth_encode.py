"""H.264 encoding of rendered frames, the one way synthetic and test videos are written."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def encode(
    path: Path,
    chunks: Iterator[np.ndarray],
    *,
    width: int,
    height: int,
    fps: Fraction,
    preset: str,
    faststart: bool = False,
) -> list[int]:
    """H.264 mp4 at constant ``fps``; returns packet sizes in file order (for ``undecodable_tail``).

    One encoder thread: x264 output then depends only on the input, so the same seed gives the
    same bytes.
    """
    container = av.open(str(path), "w", format="mp4", options={"movflags": "faststart"} if faststart else {})
    try:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"preset": preset, "crf": "23", "threads": "1"}
        sizes: list[int] = []
        index = 0
        for chunk in chunks:
            for rgb in chunk:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = index
                index += 1
                for packet in stream.encode(frame):
                    sizes.append(packet.size)
                    container.mux(packet)
        for packet in stream.encode():
            sizes.append(packet.size)
            container.mux(packet)
    finally:
        container.close()
    return sizes
