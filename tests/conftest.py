"""Shared fixtures: tiny videos written on the fly, and one local Ray for the whole session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_video(path: Path, frames: int = 24, size: tuple[int, int] = (64, 48), fps: int = 12) -> Path:
    """An H.264 video whose frame i has green level 8*i (mod 256) and a bar at x = 2*i:
    decoded frames can be matched back to their index."""
    import av

    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10"}
        for i in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 1] = (8 * i) % 256
            img[:, (2 * i) % w : (2 * i) % w + 4, 0] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray with more logical CPUs than cores (see k400ray.runtime)."""
    import ray

    from k400ray.runtime import init_ray

    init_ray()
    yield ray
    ray.shutdown()
