"""Shared fixtures: tiny videos written on the fly, one local Ray for the whole session, and one
indexed synthetic set for the whole session (the fits and the tune tests)."""

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

    init_ray(keep=True)  # shared by every test, the CLI commands they run included
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def synth_set(ray_local, tmp_path_factory):
    """(data root, index dir): 4 classes x (4 train, 2 val) synthetic videos of 24 frames at
    80x64, generated and indexed once for the whole session (the fits of engine/, the CLI and
    the tune tests share it). Read-only: a test that breaks videos copies the data root first
    and points ``data_root`` at its copy."""
    from k400ray.data.index import build_index
    from k400ray.data.synth import generate_synthetic

    root = tmp_path_factory.mktemp("synth-set")
    generate_synthetic(root / "data", num_classes=4, videos_per_class=(4, 2), frames=24, size=(80, 64), seed=0)
    build_index(root / "data", root / "index", progress=False)
    return root / "data", root / "index"


@pytest.fixture(scope="session")
def tiny_index(synth_set):
    """The index of :func:`synth_set` (16 train, 8 val videos of 4 classes)."""
    return synth_set[1]


TRAIN_SPEC = """\
experiment: clitest
scale: toy
data:
  train_index: {index}
grid:
  presets: [tsm_r50_1x1x8]
training:
  epochs: 1
  batch_per_worker: 4
resources:
  decode_tasks: 2
  max_failures: 0
storage_path: {runs}
"""


def _train_spec(root: Path, index: Path) -> Path:
    spec = root / "spec.yaml"
    spec.write_text(TRAIN_SPEC.format(index=index, runs=root / "runs"))
    return spec


@pytest.fixture(scope="session")
def spec_file(tiny_index, tmp_path_factory):
    """:data:`TRAIN_SPEC` on the session's set, in a directory of its own (no run in it): for the
    command-line refusals, which need a valid spec and never train."""
    return _train_spec(tmp_path_factory.mktemp("cli-train"), tiny_index)


@pytest.fixture(scope="session")
def trained(tiny_index, tmp_path_factory):
    """``k400ray train`` of one toy TSM trial on the session's set: 1 epoch, 1 worker x 4 clips,
    the recipe's lr, the default config, seed 0. The session's one fit from scratch of a single
    epoch: tests/test_cli_train.py checks what the command printed and evaluates its checkpoint;
    tests/engine/test_trial.py reads its recipe, resumes it and evaluates it.

    A namespace: ``spec`` (its YAML), ``argv`` (the command after ``k400ray``), ``result`` (the
    CliRunner result) and ``checkpoint`` (the final checkpoint's directory)."""
    import re
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from k400ray.cli import app

    spec = _train_spec(tmp_path_factory.mktemp("trained"), tiny_index)
    argv = ["train", str(spec), "--model", "tsm_r50_1x1x8", "--aug", "default", "--seed", "0"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    checkpoint = re.search(r"checkpoint (\S+)", result.output)
    assert checkpoint, result.output
    return SimpleNamespace(spec=spec, argv=argv, result=result, checkpoint=Path(checkpoint.group(1)))
