"""Read a grid back from MLflow: the newest parent run of the experiment and its FINISHED
child runs, with their final metrics, params and per-video predictions artifacts, and the spec
the grid ran with (the parent's ``spec.json``: its ``report`` section chooses the baseline model
when the command line does not)."""

from __future__ import annotations

import tempfile
import json
from dataclasses import dataclass, field
from pathlib import Path

from k400ray.contracts import (
    FAMILY_TAG, MODEL_TAG, RUN_FINISHED, SEARCH_SPACE_ARTIFACT, SEED_TAG, SPEC_ARTIFACT, config_of,
)
from k400ray.report.tables import MODES, TrialRecord


class ReportError(RuntimeError):
    """Nothing to report (one line, for the CLI)."""


@dataclass
class GridRecords:
    experiment: str
    tracking_uri: str
    parent_run_id: str
    grid: str
    records: list[TrialRecord]
    unfinished: dict[str, int]  # status -> count of child runs left out
    spec: dict = field(default_factory=dict)  # the parent's spec.json; {} if absent or unreadable
    parent_params: dict[str, str] = field(default_factory=dict)  # a search's say so (contracts.SEARCHER_PARAM)
    search_space: dict = field(default_factory=dict)  # a search's search_space.json; {} for a grid

    @property
    def baseline_model(self) -> str | None:
        """``report.baseline_model`` of the spec the grid ran with (None: not set, or a grid
        started before the field existed)."""
        return (self.spec.get("report") or {}).get("baseline_model")


def _parent_spec(client, run_id: str, tmp: str, name: str = SPEC_ARTIFACT) -> dict:
    """The parent run's spec.json (or another JSON artifact ``name``); {} when it has none or it
    is not a JSON mapping (the report then falls back to its defaults rather than failing)."""
    if name not in {a.path for a in client.list_artifacts(run_id)}:
        return {}
    local = client.download_artifacts(run_id, name, str(Path(tmp) / "parent"))
    try:
        spec = json.loads(Path(local).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return spec if isinstance(spec, dict) else {}


def load_grid(experiment: str, tracking_uri: str) -> GridRecords:
    import pyarrow.parquet as pq

    from k400ray.engine.metrics import Predictions
    from k400ray.tracking.artifacts import predictions_artifact
    from k400ray.tracking.mlflow_log import GridRun, child_runs, client_for, find_grid_runs

    client = client_for(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ReportError(f"no MLflow experiment {experiment!r} at {tracking_uri}")
    parents = find_grid_runs(client, found.experiment_id)
    if not parents:
        raise ReportError(f"experiment {experiment!r} at {tracking_uri} has no `k400ray tune` runs")
    parent = parents[0]
    grid = GridRun.of_parent(tracking_uri, parent)
    records, unfinished = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        spec = _parent_spec(client, parent.info.run_id, tmp)
        space = _parent_spec(client, parent.info.run_id, tmp, SEARCH_SPACE_ARTIFACT)
        for run in child_runs(client, grid):
            if run.info.status != RUN_FINISHED:
                unfinished[run.info.status] = unfinished.get(run.info.status, 0) + 1
                continue
            tags = run.data.tags
            available = {a.path for a in client.list_artifacts(run.info.run_id)}
            predictions = {}
            for mode in MODES:
                name = predictions_artifact(mode)
                if name in available:
                    local = client.download_artifacts(run.info.run_id, name, str(Path(tmp) / run.info.run_id))
                    predictions[mode] = Predictions.from_table(pq.read_table(local))
            records.append(TrialRecord(
                preset=tags.get(MODEL_TAG, "?"), aug=config_of(tags), seed=int(tags.get(SEED_TAG, 0)),
                metrics=dict(run.data.metrics), predictions=predictions, params=dict(run.data.params),
                family=tags.get(FAMILY_TAG, ""), run_id=run.info.run_id,
            ))
    if not records:
        left = ", ".join(f"{n} {s}" for s, n in unfinished.items()) or "none"
        raise ReportError(f"experiment {experiment!r} (parent run {parent.info.run_id}) has no finished trial runs "
                          f"(others: {left})")
    return GridRecords(experiment, tracking_uri, parent.info.run_id, grid.grid, records, unfinished, spec,
                       dict(parent.data.params), space)
