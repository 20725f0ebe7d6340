"""Fixtures of the tune tests: the CLI with the tune commands, and a tiny indexed dataset."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cli_app():
    """``k400ray.cli.app``: every command, ``tune``, ``report`` and ``demo`` included."""
    from k400ray.cli import app

    return app


@pytest.fixture(scope="module")
def tiny_index(ray_local, tmp_path_factory):
    """4 classes x (4 train, 2 val) videos of 24 frames, indexed."""
    from k400ray.data.index import build_index
    from k400ray.data.synth import generate_synthetic

    root = tmp_path_factory.mktemp("tiny")
    generate_synthetic(root / "data", num_classes=4, videos_per_class=(4, 2), frames=24)
    build_index(root / "data", root / "index", progress=False)
    return root / "index"
