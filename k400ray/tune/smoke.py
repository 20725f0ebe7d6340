"""``k400ray tune SPEC --smoke``: the grid's every trial, one epoch on a few videos per class.

Why: a new cluster fails in ways a dry run cannot see (a node that cannot read the data, a GPU
driver, a storage bucket, the tracking server's relay, a preset that runs out of memory). The
smoke run goes through everything the real grid does, end to end (Tune, each trial's Train
workers, decoding, training, efficient *and* accurate evaluation, checkpoints, MLflow runs and
artifacts) in minutes, before the cluster spends GPU-days.

It never mixes with the real grid: its Tune experiment, its trials' Train runs and its MLflow
experiment are the spec's names + ``-smoke``, so ``k400ray report --spec SPEC`` and
``--resume`` of the real grid never see it. Its data is a small index written next to the
spec's (``<index>-smoke``, on the same shared storage every node reads): the first
:data:`VIDEOS_PER_CLASS` indexed videos of each class, of each split; the videos stay where they are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from k400ray.tune.spec import SearchSpec

VIDEOS_PER_CLASS = 2
SUFFIX = "-smoke"


def smoke_index_path(index: str) -> Path:
    return Path(index).with_name(Path(index).name + SUFFIX)


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Row numbers of the first ``per_class`` rows of every label, in index order."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    ranked = labels[order]
    starts = np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1] if len(ranked) else np.array([], int)
    rank_in_class = np.arange(len(ranked)) - np.repeat(starts, np.diff(np.r_[starts, len(ranked)]))
    return np.sort(order[rank_in_class < per_class])


def write_subset_index(index: str | Path, out: str | Path, per_class: int = VIDEOS_PER_CLASS) -> Path:
    """A copy of the index at ``index`` with only the first ``per_class`` videos of each class in
    each split (one shard per split; same classes and data root). Replaces ``out``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from k400ray.data.index import MANIFEST, load_manifest, shard_paths

    manifest = load_manifest(index)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    splits = {}
    for split, info in manifest["splits"].items():
        if not info.get("shards"):
            continue
        table = pq.read_table(shard_paths(index, split))
        table = table.take(pa.array(first_per_class(table["label"].to_numpy(), per_class), type=pa.int64()))
        rel = f"{split}/part-00000.parquet"
        (tmp / split).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, tmp / rel)
        splits[split] = {"videos": table.num_rows, "shards": [rel], "missing": 0, "corrupt": 0, "rejected": 0}
    subset = {**manifest, "splits": splits, "excluded": [], "smoke_of": str(Path(index).resolve())}
    (tmp / MANIFEST).write_text(json.dumps(subset, indent=2), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def smoke_spec(spec: SearchSpec) -> SearchSpec:
    """The smoke variant of a validated spec: every grid point for one epoch on the small
    index(es) (:func:`write_smoke_indexes` writes them), under ``-smoke`` names, with FIFO
    scheduling (every trial runs to its accurate evaluation). Writes nothing."""
    train = smoke_index_path(spec.data.train_index)
    val = smoke_index_path(spec.val_index)
    data = spec.data.model_copy(update={"train_index": str(train), "val_index": str(val)})
    training = spec.training.model_copy(update={
        "epochs": 1, "eval_interval": 1, "limit_videos": None, "milestones": None, "warmup_epochs": None,
    })
    mlflow = spec.mlflow.model_copy(update={"experiment": spec.mlflow_experiment + SUFFIX})
    return spec.model_copy(update={
        "experiment": spec.experiment + SUFFIX, "data": data, "training": training, "mlflow": mlflow,
        "scheduler": spec.scheduler.model_copy(update={"kind": "fifo"}),
    })


def write_smoke_indexes(real: SearchSpec, per_class: int = VIDEOS_PER_CLASS) -> list[Path]:
    """The small indexes of :func:`smoke_spec` (``real``: the spec as written), rewritten each run."""
    written = [write_subset_index(real.data.train_index, smoke_index_path(real.data.train_index), per_class)]
    if Path(real.val_index).resolve() != Path(real.data.train_index).resolve():
        written.append(write_subset_index(real.val_index, smoke_index_path(real.val_index), per_class))
    return written
