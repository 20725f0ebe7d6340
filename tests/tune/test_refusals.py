"""A grid the environment cannot run is refused before anything is written: an MLflow server
that does not answer, GPUs asked of a cluster that has none, a Ray address with no cluster.
One line naming the cause, exit 2, no MLflow database, no storage directory."""

from __future__ import annotations

import socket
import time

import pytest
import yaml
from typer.testing import CliRunner

from k400ray.tracking.mlflow_log import redact_uri

pytestmark = pytest.mark.slow  # the tiny index is built with Ray


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def _write_spec(tmp_path, index, **override) -> None:
    spec = {
        "experiment": "refused", "scale": "toy", "data": {"train_index": str(index)},
        "grid": {"presets": ["tsn_r50_1x1x8"], "augmentations": ["default"]},
        "mlflow": {"tracking_uri": "sqlite:///mlflow.db"}, "storage_path": "runs",
    }
    for key, value in override.items():
        spec[key] = {**spec.get(key, {}), **value}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))


def _assert_refused(result, tmp_path, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_unreachable_mlflow_server_is_refused_at_once(cli_app, tiny_index, tmp_path, monkeypatch):
    uri = f"http://user:s3cret@127.0.0.1:{_closed_port()}"
    _write_spec(tmp_path, tiny_index, mlflow={"tracking_uri": uri})
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    result = CliRunner().invoke(cli_app, ["tune", "spec.yaml"])
    assert time.monotonic() - start < 30  # MLflow's own client would retry for minutes
    _assert_refused(result, tmp_path, "MLflow tracking server", "unreachable", "mlflow.tracking_uri")
    assert "s3cret" not in result.output  # credentials never printed


def test_gpus_asked_of_a_cluster_without_gpus(cli_app, tiny_index, tmp_path, monkeypatch):
    _write_spec(tmp_path, tiny_index, resources={"workers_per_trial": 2, "gpus_per_worker": 1})
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli_app, ["tune", "spec.yaml"])
    _assert_refused(result, tmp_path, "resources.gpus_per_worker", "2 GPUs", "has 0")


def test_credentials_are_redacted_from_uris():
    assert redact_uri("https://alice:pw@mlflow.lab:5000/x") == "https://***@mlflow.lab:5000/x"
    assert redact_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert redact_uri("sqlite:////tmp/m.db") == "sqlite:////tmp/m.db"
