"""``k400ray models``: the JSON rows and the text table."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from k400ray.cli import app
from k400ray.presets import PRESETS

REQUIRED = {
    "name", "params", "params_m", "gflops", "clip_len", "frame_interval", "num_clips", "family", "backbone",
    "efficient", "accurate",
}


def test_models_json() -> None:
    result = CliRunner().invoke(app, ["models", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("counting the presets' parameters")  # at once, before the counting
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and [r["name"] for r in rows] == list(PRESETS)
    for row in rows:
        assert REQUIRED <= row.keys()
        assert row["efficient"] == PRESETS[row["name"]].efficient.description
        assert row["accurate"] == PRESETS[row["name"]].accurate.description


def test_models_table_lists_every_preset() -> None:
    result = CliRunner().invoke(app, ["models", "--format", "table", "--scale", "toy"])
    assert result.exit_code == 0, result.output
    for name in PRESETS:
        assert name in result.output


def test_models_bad_format() -> None:
    result = CliRunner().invoke(app, ["models", "--format", "xml"])
    assert result.exit_code == 2
