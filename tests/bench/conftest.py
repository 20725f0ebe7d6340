"""A tiny Kinetics-shaped input shared by the bench tests: two 1-second 64x48 videos, indexed once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def bench_work(ray_local, tmp_path_factory):
    """(work dir, index dir) of two generated 8-frame videos (the path `--index` is left out of)."""
    from k400ray.bench.inputs import generated_index

    work = tmp_path_factory.mktemp("bench-work")
    return work, generated_index(work, videos=2, seconds=1, fps=8, size=(64, 48), x264_preset="ultrafast")
